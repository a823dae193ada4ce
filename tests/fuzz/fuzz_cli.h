/*
 * fuzz_cli.h — the command-line sources the fuzz targets drive, included
 * whole (so their static functions are reachable) and only once, since
 * tests/test_fuzz_replay.c puts every target in one translation unit.
 */
#ifndef COMI_FUZZ_CLI_H
#define COMI_FUZZ_CLI_H

#include "fuzz.h"

#include "../../tools/cli.c"
#include "../../tools/opt.c"
#include "../../tools/cmd_merge.c"
#include "../../tools/serve/server.c"
#include "../../tools/serve/http.c"
#include "../../tools/serve/request.c"
#include "../../tools/serve/jobs.c"
#include "../../tools/serve/metrics.c"

/* A refused request: an HTTP error status and a message Jansson can quote
 * (err may hold bytes that are not UTF-8). */
static inline void fuzz_check_refusal(int code, const char *err) {
    FUZZ_CHECK(code == 400 || code == 413 || code == 422 || code == 503);
    FUZZ_CHECK(err[0] != '\0');
    char *body = serve_error_json(err);
    FUZZ_CHECK(body != NULL);
    free(body);
}

/* Runs an accepted request as a worker does; the response body must be
 * JSON. Returns it parsed (the caller checks its fields and frees it). */
static inline json_t *fuzz_run_job(comi_ctx *ctx, job *j, int *rc, int64_t *tin, int64_t *tout) {
    char *body = NULL;
    j->t_queued = serve_now_ms();
    serve_run_job(ctx, j, rc, &body, tin, tout);
    FUZZ_CHECK(body != NULL);
    json_error_t jerr;
    json_t *o = json_loads(body, 0, &jerr);
    FUZZ_CHECK(o != NULL);
    free(body);
    return o;
}

#endif /* COMI_FUZZ_CLI_H */
