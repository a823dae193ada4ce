/*
 * fuzz_request.c — libFuzzer target for the HTTP service's request path
 * (tools/serve/request.c, jobs.c): the input is a POST /v1/compress body. Parsing must
 * give 0 or an error status with a message; an accepted request is run
 * through the lexical compressor exactly as a worker runs it, and the
 * response body must be valid JSON with the documented fields; the lossy
 * UTF-8 repair the pipeline applies to answers (comi_utf8_lossy) must give
 * valid UTF-8 for any bytes. The server sources are included whole.
 */
#include "fuzz.h"

#include "fuzz_cli.h"

#include "base/utf8.h"

int fuzz_request(const uint8_t *data, size_t size) {
    static comi_ctx *ctx;
    if (!ctx) {
        comi_ctx_params cp = comi_ctx_default_params();
        cp.n_threads = 1;
        ctx = comi_ctx_new(&cp);
        FUZZ_CHECK(ctx != NULL);
    }
    srv.encoder_spec = "lexical";
    srv.enc = NULL;
    srv.max_tokens = 4096;

    job j;
    memset(&j, 0, sizeof j);
    char err[700] = "";
    int code = serve_parse_compress((const char *)data, size, &j, err, sizeof err);
    if (code != 0) {
        fuzz_check_refusal(code, err);
    } else {
        FUZZ_CHECK(j.question && serve_count_words(j.question) > 0);
        FUZZ_CHECK(j.context ? serve_count_words(j.context) > 0 : j.n_docs > 0);
        FUZZ_CHECK(j.params.target_tokens > 0 || j.params.ratio >= 1);
        int rc;
        int64_t tin, tout;
        json_t *o = fuzz_run_job(ctx, &j, &rc, &tin, &tout);
        if (rc == 200) {
            FUZZ_CHECK(json_is_string(json_object_get(o, "compressed")));
            FUZZ_CHECK(json_is_integer(json_object_get(o, "original_tokens")));
            FUZZ_CHECK(json_is_integer(json_object_get(o, "compressed_tokens")));
            FUZZ_CHECK(json_is_number(json_object_get(o, "ratio")));
            FUZZ_CHECK(json_is_number(json_object_get(o, "ms")));
            FUZZ_CHECK(tout <= tin);
        } else {
            FUZZ_CHECK(rc >= 400 && json_is_string(json_object_get(o, "error")));
        }
        json_decref(o);
    }
    json_decref(j.root);
    free(j.docs);

    /* Answers may end inside a character: the repaired copy must always be
     * UTF-8 that Jansson accepts. */
    char *lossy = comi_utf8_lossy((const char *)data, size);
    FUZZ_CHECK(lossy != NULL);
    json_t *str = json_string(lossy);
    FUZZ_CHECK(str != NULL);
    json_decref(str);
    free(lossy);

    /* The Content-Type check sees header text: any NUL-free prefix. */
    char ct[128];
    size_t n = 0;
    while (n < size && n < sizeof ct - 1 && data[n]) {
        ct[n] = (char)data[n];
        n++;
    }
    ct[n] = '\0';
    (void)serve_content_type_ok(ct);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_request(data, size);
}
#endif
