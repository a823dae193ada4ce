/*
 * fuzz_http.c — libFuzzer target for the HTTP service's request handling
 * (tools/server.c, included here so its static validation functions are
 * reachable without a socket). Byte 0 picks the path (bit 7 also sets
 * --max-tokens 50):
 *   0: the rest is a /v1/compress body: parse_compress, then run_compress
 *      on success; the response body must be valid JSON;
 *   1: utf8_lossy on the rest: the result must be valid UTF-8 for Jansson;
 *   2: content_type_ok on the rest as a header value.
 * Rejected bodies must come with a 4xx/503 code and a message.
 */
#include "../../tools/cli.c"
#include "../../tools/server.c"
#include "fuzz.h"

static void http_compress(const char *body, size_t len) {
    job j;
    memset(&j, 0, sizeof j);
    char err[1024] = "";
    int code = parse_compress(body, len, &j, err, sizeof err);
    if (code) {
        FUZZ_CHECK((code == 400 || code == 413 || code == 422 || code == 503) && err[0]);
    } else {
        FUZZ_CHECK(j.question && (j.context || j.docs));
        comi_ctx_params cp = comi_ctx_default_params();
        cp.n_threads = 1;
        comi_ctx *ctx = comi_ctx_new(&cp);
        FUZZ_CHECK(ctx != NULL);
        char *out = NULL;
        int64_t tin = 0, tout = 0;
        j.t_queued = now_ms();
        run_compress(ctx, &j, &code, &out, &tin, &tout);
        FUZZ_CHECK(out != NULL);
        json_t *resp = json_loads(out, 0, NULL);
        FUZZ_CHECK(resp != NULL);
        if (code == 200) FUZZ_CHECK(json_is_string(json_object_get(resp, "compressed")));
        json_decref(resp);
        free(out);
        comi_ctx_free(ctx);
    }
    json_decref(j.root);
    free(j.docs);
}

int fuzz_http(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    /* What cmd_serve sets before serving. */
    srv.encoder_spec = "lexical";
    srv.max_new_tokens = 256;
    srv.max_tokens = (data[0] & 0x80) ? 50 : 0;
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    switch ((data[0] & 0x7f) % 3) {
    case 0:
        http_compress(rest, len);
        break;
    case 1: {
        char *s = utf8_lossy(rest, len);
        FUZZ_CHECK(s != NULL);
        json_t *js = json_string(s);
        FUZZ_CHECK(js != NULL);
        json_decref(js);
        free(s);
        break;
    }
    default: {
        char *s = malloc(len + 1);
        FUZZ_CHECK(s != NULL);
        memcpy(s, rest, len);
        s[len] = '\0';
        (void)content_type_ok(s);
        free(s);
        break;
    }
    }
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_http(data, size);
}
#endif
