/*
 * limits.h — pieces the library tests of the resource limits share
 * (comi_ctx_params.max_context_tokens and max_bytes).
 */
#ifndef COMI_TEST_LIMITS_H
#define COMI_TEST_LIMITS_H

#include "comi.h"

#include <stdlib.h>
#include <string.h>

/* A context with n_threads kernel threads (<= 0: all cores) and the given
 * limits. */
static inline comi_ctx *limits_ctx(int32_t n_threads, int64_t max_tokens, uint64_t max_bytes) {
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = n_threads;
    cp.max_context_tokens = max_tokens;
    cp.max_bytes = max_bytes;
    return comi_ctx_new(&cp);
}

/* The N of "needs N bytes" in a limit message, 0 when absent. */
static inline unsigned long long limits_needs_figure(const char *msg) {
    const char *p = strstr(msg, "needs ");
    return p ? strtoull(p + 6, NULL, 10) : 0;
}

#endif /* COMI_TEST_LIMITS_H */
