/*
 * fuzz_cli.h — the command-line sources the fuzz targets drive, included
 * whole (so their static functions are reachable) and only once, since
 * tests/test_fuzz_replay.c puts every target in one translation unit.
 */
#ifndef COMI_FUZZ_CLI_H
#define COMI_FUZZ_CLI_H

#include "../../tools/cli.c"
#include "../../tools/cmd_merge.c"
#include "../../tools/server.c"

#endif /* COMI_FUZZ_CLI_H */
