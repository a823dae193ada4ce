/*
 * fuzz_answer.c — libFuzzer target for the HTTP service's POST /v1/answer
 * path (tools/serve/request.c, jobs.c), with a loaded pipeline: a one-layer random-weight
 * llama over a SentencePiece vocabulary (tests/fuzz/fuzz_tiny.h).
 *
 * The input is the request body. Parsing must give 0 or an error status
 * with a message that Jansson can quote; an accepted request of at most
 * FA_RUN_MAX bytes is answered exactly as a worker answers it: the pipeline tokenizes,
 * encodes, merges and decodes, and the response must be valid JSON with
 * the documented fields: ids in the vocabulary, at most max_new_tokens of
 * them, memory vectors no more than the context tokens. Longer bodies
 * are only parsed: with coverage instrumentation the attention's cost,
 * quadratic in the context, would slow the target without reaching new
 * code (the forward pass is fuzzed for shapes by model_gguf/model_hf).
 */
#include "fuzz.h"
#include "fuzz_cli.h"
#include "fuzz_tiny.h"

#define FA_RUN_MAX 300
#define FA_MAX_NEW 4

int fuzz_answer(const uint8_t *data, size_t size) {
    static comi_ctx *ctx;
    static comi_pipeline *pl;
    if (!ctx) {
        comi_ctx_params cp = comi_ctx_default_params();
        cp.n_threads = 1;
        ctx = comi_ctx_new(&cp);
        FUZZ_CHECK(ctx != NULL);
        pl = fuzz_tiny_pipeline(ctx);
        FUZZ_CHECK(pl != NULL);
    }
    srv.pl = pl;
    comi_pipeline_get_info(pl, &srv.pl_info);
    srv.max_new_tokens = FA_MAX_NEW;
    srv.max_tokens = 4096;

    job j;
    memset(&j, 0, sizeof j);
    char err[700] = "";
    int code = serve_parse_answer((const char *)data, size, &j, err, sizeof err);
    if (code != 0) {
        FUZZ_CHECK(code != 503); /* the pipeline is loaded */
        fuzz_check_refusal(code, err);
    } else {
        FUZZ_CHECK(j.kind == JOB_ANSWER && j.question && serve_count_words(j.question) > 0);
        FUZZ_CHECK(j.aparams.merge.merge_size >= 1);
        FUZZ_CHECK(j.aparams.max_new_tokens >= 1 && j.aparams.max_new_tokens <= FA_MAX_NEW);
        FUZZ_CHECK(j.aparams.segment_size >= 1);
        if (size <= FA_RUN_MAX) {
            int rc;
            int64_t tin, tout;
            json_t *o = fuzz_run_job(ctx, &j, &rc, &tin, &tout);
            if (rc == 200) {
                FUZZ_CHECK(json_is_string(json_object_get(o, "answer")));
                json_t *ids = json_object_get(o, "ids");
                FUZZ_CHECK(json_is_array(ids) && json_array_size(ids) <= FA_MAX_NEW);
                for (size_t i = 0; i < json_array_size(ids); i++) {
                    json_int_t id = json_integer_value(json_array_get(ids, i));
                    FUZZ_CHECK(id >= 0 && id < FUZZ_TINY_VOCAB);
                }
                json_int_t nctx = json_integer_value(json_object_get(o, "context_tokens"));
                json_int_t nmem = json_integer_value(json_object_get(o, "memory_vectors"));
                FUZZ_CHECK(nctx >= 0 && nmem >= 0 && nmem <= nctx);
                FUZZ_CHECK(json_integer_value(json_object_get(o, "question_tokens")) >= 1);
                FUZZ_CHECK(json_is_number(json_object_get(o, "ms")));
                FUZZ_CHECK(tin == nctx && tout == (int64_t)json_array_size(ids));
            } else {
                /* Refusals a valid request may still get: over a limit,
                 * or a context the tokenizer cannot take. */
                FUZZ_CHECK((rc == 413 || rc == 422) &&
                           json_is_string(json_object_get(o, "error")));
            }
            json_decref(o);
        }
    }
    json_decref(j.root);
    free(j.docs);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_answer(data, size);
}
#endif
