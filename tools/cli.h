/*
 * cli.h — shared pieces of the `comi` command-line tool: the subcommand
 * entry points and argument helpers. Tools use only the public comi.h.
 */
#ifndef COMI_CLI_H
#define COMI_CLI_H

#include "comi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each subcommand: argv[0] is the subcommand name. Returns the exit status. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* Prints "comi <cmd>: <message>" on one line to stderr and returns 1. */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing of a flag's value: the whole string must be a number
 * in range; on failure prints an error naming flag and value, returns false. */
bool cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi,
                   int64_t *out);
bool cli_parse_f64(const char *cmd, const char *flag, const char *s, double *out);

/* A size in bytes (--max-memory): digits, optionally followed by a unit:
 * B; K, M, G, T or KiB, MiB, GiB, TiB (powers of 1024); kB, MB, GB, TB
 * (powers of 1000); letters in either case. No sign, no fraction, no
 * spaces. On failure (junk, a sign, a value over 2^64 - 1 bytes) prints an
 * error naming flag and value and returns false. */
bool cli_parse_size(const char *cmd, const char *flag, const char *s, uint64_t *out);

/* The context limits every command that reads a context takes. */
typedef struct cli_limits {
    int64_t max_context_tokens; /* --max-context-tokens N (0: none) */
    uint64_t max_bytes;         /* --max-memory SIZE (0: physical memory) */
} cli_limits;

/* When argv[*i] is --max-context-tokens or --max-memory: parses its value
 * into lim, advances *i and returns 1, or prints an error and returns -1
 * (missing or bad value); returns 0 for any other argument. */
int cli_limit_flag(const char *cmd, int argc, char **argv, int *i, cli_limits *lim);

/* A context with n_threads kernel threads (<= 0: all cores) and the
 * limits; NULL when memory is exhausted. */
comi_ctx *cli_ctx_new(int32_t n_threads, const cli_limits *lim);

/* --help lines of the two limit flags. */
#define CLI_LIMITS_HELP                                                                            \
    "  --max-context-tokens N   refuse a context of more than N tokens (default 0: no\n"           \
    "                           limit; text mode counts words)\n"                                  \
    "  --max-memory SIZE        refuse work whose buffers would need more than SIZE bytes\n"       \
    "                           (suffixes K, M, G, T = KiB...TiB, kB, MB, GB = powers of\n"        \
    "                           1000; default 0: physical memory)\n"

/* For a flag that takes a value: returns argv[*i + 1] and advances *i, or
 * prints "missing value for FLAG" and returns NULL. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);

/* Reads a whole file of raw little-endian float32 values. On success
 * *data (free with free()) and *count. Prints an error and returns false on
 * failure (missing file, size not a multiple of 4). */
bool cli_read_f32(const char *cmd, const char *flag, const char *path, float **data,
                  size_t *count);

/* Reads a whole file (a pipe too) into a malloc'ed buffer with a NUL after
 * its *len bytes. Prints "FLAG: cannot open/read 'PATH'" and returns NULL on
 * failure. */
char *cli_read_file(const char *cmd, const char *flag, const char *path, size_t *len);

/* Writes raw little-endian arrays; prints an error and returns false. */
bool cli_write_bytes(const char *cmd, const char *path, const void *data, size_t bytes);

/* Is stderr a terminal (for progress output)? */
bool cli_stderr_is_tty(void);

#endif /* COMI_CLI_H */
