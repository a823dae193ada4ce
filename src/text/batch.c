/*
 * batch.c — comi_compress_batch: many (context, question) pairs in one call,
 * so a binding crosses into C once per batch (Python's ctypes releases the
 * GIL for the whole call). Each pair is compressed by comi_compress_text
 * exactly as it would be alone; a failing pair is recorded with its own
 * status and message and the others go on.
 */
#include "base/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

comi_status comi_compress_batch(comi_ctx *ctx, const char *const *contexts,
                                const char *const *questions, size_t n,
                                const comi_text_params *params, comi_text_result *results,
                                comi_status *statuses, char **errors) {
    if (!ctx) return COMI_ERR_INVALID_ARG;
    if (n > 0 && (!contexts || !questions || !results || !statuses))
        return comi_err_set(&ctx->err, COMI_ERR_INVALID_ARG,
                            "batch: contexts, questions, results and statuses must not be NULL");
    comi_status first = COMI_OK;
    size_t first_i = 0;
    char first_msg[sizeof ctx->err.msg];
    first_msg[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        comi_status st = comi_check_cancel(ctx, "batch");
        if (st == COMI_OK)
            st = comi_compress_text(ctx, contexts[i], questions[i], params, &results[i]);
        statuses[i] = st;
        if (errors) errors[i] = NULL;
        if (st == COMI_OK) continue;
        if (errors) errors[i] = strdup(comi_errmsg(ctx)); /* NULL when out of memory */
        if (first == COMI_OK) {
            first = st;
            first_i = i;
            snprintf(first_msg, sizeof first_msg, "%s", comi_errmsg(ctx));
        }
    }
    if (first != COMI_OK)
        return comi_err_set(&ctx->err, first, "batch item %zu: %s", first_i, first_msg);
    comi_err_clear(&ctx->err);
    return COMI_OK;
}
