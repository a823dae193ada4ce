/*
 * common.h — internal helpers shared by every module: error records,
 * overflow-checked size arithmetic, whole-file reads and read-only mmaps.
 * Not part of the public API (see include/comi.h).
 */
#ifndef COMI_COMMON_H
#define COMI_COMMON_H

#include "comi.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An error record: the status of the last failure and its message. Every
 * internal function that can fail takes one and returns its status. */
typedef struct comi_err {
    comi_status status;
    char msg[512];
} comi_err;

#if defined(__GNUC__)
#define COMI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define COMI_PRINTF(a, b)
#endif

/* Records status and a printf-style message in e (e may be NULL); returns
 * status so callers can write `return comi_err_set(e, ...)`. */
comi_status comi_err_set(comi_err *e, comi_status status, const char *fmt, ...)
    COMI_PRINTF(3, 4);
void comi_err_clear(comi_err *e);

/* The per-thread context behind the public comi_ctx handle. */
struct comi_pool;
struct comi_ctx {
    comi_err err;
    int32_t n_threads;
    int64_t max_context_tokens; /* 0: no limit (comi_ctx_params) */
    uint64_t max_bytes;         /* 0: physical memory (comi_ctx_params) */
    int32_t kv_type;            /* COMI_KV_F32 / COMI_KV_F16 (comi_ctx_params) */
    struct comi_pool *pool;     /* created on first use by comi_ctx_pool */
    atomic_int cancelled;       /* comi_ctx_cancel: set from any thread */
};

/* COMI_ERR_CANCELLED naming where, when comi_ctx_cancel was called on ctx. */
static inline comi_status comi_check_cancel(comi_ctx *ctx, const char *where) {
    if (!atomic_load_explicit(&ctx->cancelled, memory_order_relaxed)) return COMI_OK;
    return comi_err_set(&ctx->err, COMI_ERR_CANCELLED, "%s: cancelled", where);
}

/* The context's thread pool, created on first use; NULL on allocation
 * failure (ctx->err is set). */
struct comi_pool *comi_ctx_pool(comi_ctx *ctx);

/* Overflow-checked arithmetic on sizes: return false on overflow. */
static inline bool comi_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool comi_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
/* *out = a * b * c, false on overflow. */
static inline bool comi_mul3_size(size_t a, size_t b, size_t c, size_t *out) {
    size_t t;
    return comi_mul_size(a, b, &t) && comi_mul_size(t, c, out);
}

/* Saturating arithmetic for memory estimates: an overflow gives UINT64_MAX,
 * which every limit refuses (never a wrapped, small figure). */
static inline uint64_t comi_add_sat(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}
static inline uint64_t comi_mul_sat(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Physical memory in bytes (UINT64_MAX when the system does not say). */
uint64_t comi_physical_bytes(void);

/* The context limits (comi_ctx_params), checked by every entry point that
 * takes a context before its large allocations.
 * comi_check_tokens: COMI_ERR_LIMIT naming what, n and the limit when
 * ctx->max_context_tokens is set and n is over it.
 * comi_check_bytes: COMI_ERR_LIMIT naming what, need and the limit when
 * need (an estimate of the call's working buffers; UINT64_MAX = the
 * arithmetic overflowed) is over the limit: override when nonzero (a
 * per-call limit such as comi_answer_params.max_bytes), else
 * ctx->max_bytes, else physical memory. hint (may be NULL) is appended as
 * another way to need less. */
comi_status comi_check_tokens(comi_ctx *ctx, const char *what, int64_t n);
comi_status comi_check_bytes(comi_ctx *ctx, const char *what, uint64_t need, uint64_t override,
                             const char *hint);

/* calloc/malloc of n elements of size sz with overflow check; NULL and
 * a COMI_ERR_NOMEM / COMI_ERR_LIMIT message in e on failure. */
void *comi_alloc_array(comi_err *e, size_t n, size_t sz, const char *what);
void *comi_calloc_array(comi_err *e, size_t n, size_t sz, const char *what);

/* Reads a whole file into a malloc'ed buffer (NUL-terminated, the NUL not
 * counted in *len). Owner: the caller, free(). */
comi_status comi_read_file(comi_err *e, const char *path, char **data, size_t *len);

/* Writes len bytes to path (created or truncated). */
comi_status comi_write_file(comi_err *e, const char *path, const void *data, size_t len);

/* A read-only memory mapping of a whole file. */
typedef struct comi_mmap {
    const uint8_t *data;
    size_t size;
} comi_mmap;

comi_status comi_mmap_open(comi_err *e, const char *path, comi_mmap *m);
void comi_mmap_close(comi_mmap *m);

/* Monotonic clock in milliseconds. */
double comi_now_ms(void);

/* Number of online CPU cores (>= 1). */
int32_t comi_cpu_count(void);

#endif /* COMI_COMMON_H */
