/*
 * ctx.c — the per-thread context: last error, thread count, thread pool.
 */
#include "common.h"
#include "pool.h"

#include <stdlib.h>

comi_ctx_params comi_ctx_default_params(void) {
    comi_ctx_params p = {.n_threads = 0};
    return p;
}

comi_ctx *comi_ctx_new(const comi_ctx_params *params) {
    comi_ctx_params def = comi_ctx_default_params();
    if (!params) params = &def;
    comi_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->n_threads = params->n_threads > 0 ? params->n_threads : comi_cpu_count();
    if (ctx->n_threads > 256) ctx->n_threads = 256;
    return ctx;
}

void comi_ctx_free(comi_ctx *ctx) {
    if (!ctx) return;
    pool_free(ctx->pool);
    free(ctx);
}

int32_t comi_ctx_threads(const comi_ctx *ctx) {
    return ctx ? ctx->n_threads : 1;
}

struct comi_pool *comi_ctx_pool(comi_ctx *ctx) {
    if (!ctx->pool) {
        ctx->pool = pool_new(ctx->n_threads);
        if (!ctx->pool) comi_err_set(&ctx->err, COMI_ERR_NOMEM, "cannot start %d threads",
                                     (int)ctx->n_threads);
    }
    return ctx->pool;
}

const char *comi_errmsg(const comi_ctx *ctx) {
    return ctx ? ctx->err.msg : "no context";
}

const char *comi_status_str(comi_status status) {
    switch (status) {
    case COMI_OK: return "ok";
    case COMI_ERR_INVALID_ARG: return "invalid argument";
    case COMI_ERR_IO: return "i/o error";
    case COMI_ERR_FORMAT: return "malformed input";
    case COMI_ERR_UNSUPPORTED: return "unsupported";
    case COMI_ERR_NOMEM: return "out of memory";
    case COMI_ERR_LIMIT: return "limit exceeded";
    case COMI_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *comi_version(void) {
    return COMI_VERSION_STRING;
}
