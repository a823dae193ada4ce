/*
 * fuzz_jsonl.c — libFuzzer target for the evaluation input (src/eval/eval.c):
 * the input is a COMI JSONL file, loaded strictly and with skip_bad. Every
 * loaded example is then scored (its prompt against its answers, recall of
 * the answers in its input), so the metric code sees fuzzed strings too.
 * Scores must lie in [0, 1].
 */
#include "comi.h"
#include "base/common.h"
#include "fuzz.h"

#include <unistd.h>

static void jsonl_check_dataset(comi_ctx *ctx, const comi_dataset *ds) {
    for (size_t i = 0; i < ds->n_examples; i++) {
        const comi_example *ex = &ds->examples[i];
        FUZZ_CHECK(ex->id && ex->input && ex->prompt && ex->line >= 1);
        FUZZ_CHECK(ex->n_answers == 0 || ex->answers);
        FUZZ_CHECK(ex->n_documents == 0 || ex->documents);
        const char *const *refs = (const char *const *)ex->answers;
        comi_answer_scores sc;
        if (comi_score_answer(ctx, ex->prompt, refs, ex->n_answers, &sc) == COMI_OK)
            FUZZ_CHECK(sc.exact_match >= 0 && sc.exact_match <= 1 && sc.f1 >= 0 && sc.f1 <= 1 &&
                       sc.accuracy >= 0 && sc.accuracy <= 1);
        double r = -1;
        if (comi_answer_recall(ctx, ex->input, refs, ex->n_answers, &r) == COMI_OK)
            FUZZ_CHECK(r == 0 || r == 1);
        char *norm = NULL;
        if (comi_normalize_answer(ctx, ex->prompt, &norm) == COMI_OK) FUZZ_CHECK(norm != NULL);
        comi_free(norm);
    }
}

static char jsonl_path[96];

static void jsonl_cleanup(void) {
    remove(jsonl_path);
}

int fuzz_jsonl(const uint8_t *data, size_t size) {
    const char *path = jsonl_path;
    if (!jsonl_path[0]) {
        snprintf(jsonl_path, sizeof jsonl_path, "%s/comi-fuzz-jsonl-%ld.jsonl",
                 fuzz_scratch_base(), (long)getpid());
        atexit(jsonl_cleanup);
    }
    comi_err e;
    FUZZ_CHECK(comi_write_file(&e, path, data, size) == COMI_OK);
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 1;
    comi_ctx *ctx = comi_ctx_new(&cp);
    FUZZ_CHECK(ctx != NULL);
    for (int skip = 0; skip <= 1; skip++) {
        comi_dataset *ds = NULL;
        if (comi_dataset_load(ctx, path, skip, &ds) != COMI_OK) {
            FUZZ_CHECK(ds == NULL && comi_errmsg(ctx)[0] != '\0');
            continue;
        }
        FUZZ_CHECK(ds != NULL && (ds->n_examples == 0 || ds->examples));
        if (!skip) FUZZ_CHECK(ds->n_skipped == 0);
        jsonl_check_dataset(ctx, ds);
        comi_dataset_free(ds);
    }
    comi_ctx_free(ctx);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_jsonl(data, size);
}
#endif
