/*
 * fuzz_text.c — libFuzzer target for text-mode compression (src/text/text.c,
 * src/text/lexical.c) with the built-in lexical encoder.
 * Input: byte 0 sets the ratio (1 + b % 32), byte 1 the switches (bit 0
 * keep_titles, bit 1 coarse, bit 2 redundancy, bit 3 document list), then
 * NUL-separated strings: the context (or, in document mode, the documents)
 * and last the question. Invariants on success: the result's token count
 * is what comi_text_count_tokens says of its text, within the budget.
 */
#include "comi.h"
#include "fuzz.h"

#include <string.h>

int fuzz_text(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    comi_text_params p = comi_text_default_params();
    p.ratio = 1.0 + (double)(data[0] % 32);
    p.keep_titles = data[1] & 1;
    p.coarse = (data[1] >> 1) & 1;
    p.redundancy = (data[1] >> 2) & 1;
    bool docs_mode = (data[1] >> 3) & 1;

    /* NUL-terminated copy; parts[] point into it. */
    size_t len = size - 2;
    char *buf = malloc(len + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data + 2, len);
    buf[len] = '\0';
    const char *parts[64];
    size_t n_parts = 0;
    parts[n_parts++] = buf;
    for (size_t i = 0; i < len && n_parts < 64; i++)
        if (buf[i] == '\0') parts[n_parts++] = buf + i + 1;
    const char *question = n_parts > 1 ? parts[n_parts - 1] : "";
    size_t n_ctx = n_parts > 1 ? n_parts - 1 : 1;

    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 1;
    comi_ctx *ctx = comi_ctx_new(&cp);
    FUZZ_CHECK(ctx != NULL);
    comi_text_result res;
    memset(&res, 0, sizeof res);
    comi_status st = docs_mode ? comi_compress_documents(ctx, parts, n_ctx, question, &p, &res)
                               : comi_compress_text(ctx, parts[0], question, &p, &res);
    if (st == COMI_OK) {
        FUZZ_CHECK(res.text != NULL);
        FUZZ_CHECK(res.compressed_tokens == comi_text_count_tokens(res.text));
        FUZZ_CHECK(res.compressed_tokens <= res.original_tokens);
        FUZZ_CHECK(res.compressed_tokens <= (int64_t)((double)res.original_tokens / p.ratio) ||
                   res.compressed_tokens <= 1);
        comi_text_result_free(&res);
    } else {
        FUZZ_CHECK(comi_errmsg(ctx)[0] != '\0');
    }
    comi_ctx_free(ctx);
    free(buf);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_text(data, size);
}
#endif
