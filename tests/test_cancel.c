/* test_cancel.c — cooperative cancellation (comi_ctx_cancel): a cancelled
 * context makes the soft pipeline and comi_compress_batch return
 * COMI_ERR_CANCELLED, from this thread or another one, and works again after
 * comi_ctx_reset_cancel with the same results as before. */
#include "comi.h"
#include "fuzz/fuzz_tiny.h"
#include "test.h"

#include <pthread.h>

static const char *const CONTEXT =
    "the cat sat on the mat and the dog ran in the park while the bird sang a song "
    "the cat sat on the mat and the dog ran in the park while the bird sang a song";

typedef struct {
    comi_ctx *ctx;
    const comi_pipeline *pl;
    comi_status st;
    int started;
} job_arg;

static comi_answer_params params(const comi_pipeline *pl) {
    comi_answer_params p = comi_pipeline_answer_params(pl);
    p.merge.merge_size = 2;
    p.segment_size = 4; /* many segments: a check before each */
    p.max_new_tokens = 64;
    p.penalty_per_occurrence = true; /* a check before each token */
    return p;
}

static void *run_answers(void *varg) {
    job_arg *a = varg;
    comi_answer_params p = params(a->pl);
    __atomic_store_n(&a->started, 1, __ATOMIC_SEQ_CST);
    /* answer until cancelled (a bounded number of times) */
    for (int i = 0; i < 100000; i++) {
        comi_answer_result r;
        a->st = comi_pipeline_answer(a->ctx, a->pl, CONTEXT, "where did the cat sit?", &p, &r);
        comi_answer_result_free(&r);
        if (a->st != COMI_OK) break;
    }
    return NULL;
}

int main(void) {
    comi_ctx *ctx = comi_ctx_new(NULL);
    comi_pipeline *pl = fuzz_tiny_pipeline(ctx);
    if (!test_check("cancel_fixture", pl != NULL, "the tiny pipeline could not be built"))
        return 1;
    comi_answer_params p = params(pl);

    comi_answer_result first;
    comi_status st = comi_pipeline_answer(ctx, pl, CONTEXT, "where did the cat sit?", &p, &first);
    test_check("cancel_baseline", st == COMI_OK, "%s", comi_errmsg(ctx));

    test_check("cancel_flag_off", !comi_ctx_cancelled(ctx), "cancelled before any cancel");
    comi_ctx_cancel(ctx);
    test_check("cancel_flag_on", comi_ctx_cancelled(ctx), "not cancelled after comi_ctx_cancel");
    comi_answer_result r;
    st = comi_pipeline_answer(ctx, pl, CONTEXT, "where did the cat sit?", &p, &r);
    test_check("cancel_answer", st == COMI_ERR_CANCELLED && strstr(comi_errmsg(ctx), "cancelled") &&
                                    r.ids == NULL && r.text == NULL,
               "status %d '%s'", (int)st, comi_errmsg(ctx));
    comi_answer_result_free(&r);
    test_check("cancel_status_str", strcmp(comi_status_str(COMI_ERR_CANCELLED), "cancelled") == 0,
               "%s", comi_status_str(COMI_ERR_CANCELLED));

    const char *ctxs[2] = {"alpha beta gamma delta", "one two three four five six"};
    const char *qs[2] = {"beta?", "five?"};
    comi_text_params tp = comi_text_default_params();
    tp.ratio = 2;
    comi_text_result tr[2];
    comi_status sts[2];
    st = comi_compress_batch(ctx, ctxs, qs, 2, &tp, tr, sts, NULL);
    test_check("cancel_batch", st == COMI_ERR_CANCELLED && sts[0] == COMI_ERR_CANCELLED &&
                                   sts[1] == COMI_ERR_CANCELLED && !tr[0].text && !tr[1].text,
               "status %d, items %d %d", (int)st, (int)sts[0], (int)sts[1]);

    comi_ctx_reset_cancel(ctx);
    st = comi_pipeline_answer(ctx, pl, CONTEXT, "where did the cat sit?", &p, &r);
    bool same = st == COMI_OK && r.n_ids == first.n_ids &&
                (r.n_ids == 0 || memcmp(r.ids, first.ids, (size_t)r.n_ids * sizeof(int32_t)) == 0);
    test_check("cancel_reset_same_answer", same, "status %d '%s', %d vs %d ids", (int)st,
               comi_errmsg(ctx), r.n_ids, first.n_ids);
    comi_answer_result_free(&r);
    comi_answer_result_free(&first);

    /* from another thread: the worker answers in a loop until its context
     * is cancelled; the cancel must stop it (the loop is bounded) */
    comi_ctx *wctx = comi_ctx_new(NULL);
    job_arg a = {wctx, pl, COMI_OK, 0};
    pthread_t th;
    pthread_create(&th, NULL, run_answers, &a);
    while (!__atomic_load_n(&a.started, __ATOMIC_SEQ_CST)) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    struct timespec d = {0, 20 * 1000000};
    nanosleep(&d, NULL);
    comi_ctx_cancel(wctx);
    pthread_join(th, NULL);
    test_check("cancel_other_thread", a.st == COMI_ERR_CANCELLED, "worker ended with %d '%s'",
               (int)a.st, comi_errmsg(wctx));
    comi_ctx_free(wctx);
    comi_ctx_free(ctx);
    return test_n_failed ? 1 : 0;
}
