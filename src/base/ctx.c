/*
 * ctx.c — the per-thread context: last error, thread count, thread pool and
 * the resource limits every entry point checks before allocating.
 */
#include "base/common.h"
#include "base/pool.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

comi_ctx_params comi_ctx_default_params(void) {
    comi_ctx_params p = {
        .n_threads = 0, .max_context_tokens = 0, .max_bytes = 0, .kv_type = COMI_KV_F32};
    return p;
}

comi_ctx *comi_ctx_new(const comi_ctx_params *params) {
    comi_ctx_params def = comi_ctx_default_params();
    if (!params) params = &def;
    comi_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->n_threads = params->n_threads > 0 ? params->n_threads : comi_cpu_count();
    if (ctx->n_threads > 256) ctx->n_threads = 256;
    ctx->max_context_tokens = params->max_context_tokens > 0 ? params->max_context_tokens : 0;
    ctx->max_bytes = params->max_bytes;
    /* an unknown type (a later version's) falls back to the exact one */
    ctx->kv_type = params->kv_type == COMI_KV_F16 ? COMI_KV_F16 : COMI_KV_F32;
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

int64_t comi_ctx_max_context_tokens(const comi_ctx *ctx) {
    return ctx ? ctx->max_context_tokens : 0;
}

int32_t comi_ctx_kv_type(const comi_ctx *ctx) {
    return ctx ? ctx->kv_type : COMI_KV_F32;
}

uint64_t comi_ctx_max_bytes(const comi_ctx *ctx) {
    return ctx && ctx->max_bytes ? ctx->max_bytes : comi_physical_bytes();
}

comi_status comi_check_tokens(comi_ctx *ctx, const char *what, int64_t n) {
    if (ctx->max_context_tokens <= 0 || n <= ctx->max_context_tokens) return COMI_OK;
    return comi_err_set(&ctx->err, COMI_ERR_LIMIT,
                        "%s has %lld tokens, more than the limit of %lld (max_context_tokens; "
                        "raise it, or 0 for none: --max-context-tokens in the CLI)",
                        what, (long long)n, (long long)ctx->max_context_tokens);
}

/* " (12.3 MiB)" for sizes of 1 KiB and more, "" below. */
static void human_size(uint64_t b, char *buf, size_t len) {
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (b < 1024) {
        buf[0] = '\0';
        return;
    }
    double v = (double)b / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, " (%.1f %s)", v, unit[u]);
}

comi_status comi_check_bytes(comi_ctx *ctx, const char *what, uint64_t need, uint64_t override,
                             const char *hint) {
    const char *src = override         ? "per-call max_bytes"
                      : ctx->max_bytes ? "max_bytes"
                                       : "physical memory";
    uint64_t limit = override ? override : ctx->max_bytes ? ctx->max_bytes : comi_physical_bytes();
    if (need <= limit && need != UINT64_MAX) return COMI_OK;
    char hn[32], hl[32];
    human_size(need, hn, sizeof hn);
    human_size(limit, hl, sizeof hl);
    if (need == UINT64_MAX)
        return comi_err_set(&ctx->err, COMI_ERR_LIMIT,
                            "%s: the size of its buffers overflows 64 bits (%s limit %" PRIu64
                            " bytes)%s%s",
                            what, src, limit, hint ? "; " : "", hint ? hint : "");
    return comi_err_set(&ctx->err, COMI_ERR_LIMIT,
                        "%s needs %" PRIu64 " bytes%s, more than the %s limit of %" PRIu64
                        " bytes%s; raise it with max_bytes (--max-memory in the CLI)%s%s",
                        what, need, hn, src, limit, hl, hint ? " or " : "", hint ? hint : "");
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
    case COMI_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

void comi_ctx_cancel(comi_ctx *ctx) {
    if (ctx) atomic_store(&ctx->cancelled, 1);
}

void comi_ctx_reset_cancel(comi_ctx *ctx) {
    if (ctx) atomic_store(&ctx->cancelled, 0);
}

bool comi_ctx_cancelled(const comi_ctx *ctx) {
    return ctx && atomic_load(&((comi_ctx *)ctx)->cancelled) != 0;
}

const char *comi_version(void) {
    return COMI_VERSION_STRING;
}
