/* test_cancel.c — cooperative cancellation (comi_ctx_cancel): a cancelled
 * context makes the soft pipeline, comi_generate, text-mode compression and
 * comi_compress_batch return COMI_ERR_CANCELLED, from this thread or another
 * one, and works again after comi_ctx_reset_cancel with the same results as
 * before. The checks inside long calls (each decoded token, each compression
 * stage and model-encoder segment) run on the real SmolLM2-135M, whose calls
 * take seconds: a cancel from another thread must stop them part-way. The
 * model comes from scripts/fetch_models.sh (or $COMI_SMOLLM2); when it
 * cannot be had the test FAILS. The check before each layer of a forward
 * pass runs on a random-weight 4-layer model: a prefill cancelled before
 * its first layer or part-way (from another thread) returns
 * COMI_ERR_CANCELLED and leaves the session as it was, so that resuming
 * gives a fresh run's logits bit for bit. No check depends on timing. */
#include "comi.h"
#include "fuzz/fuzz_tiny.h"
#include "test.h"

#include <pthread.h>
#include <time.h>

static void sleep_ms(long ms) {
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

/* ---- comi_generate on the real model ------------------------------------ */

enum { GEN_MAX = 200 };

typedef struct {
    comi_ctx *ctx;
    comi_session *s;
    const int32_t *prompt;
    int64_t n_prompt;
    int32_t ids[GEN_MAX];
    int32_t n_out;
    comi_status st;
    int started;
} gen_arg;

/* Prefill of the prompt on a fresh session, then greedy decoding of up to
 * max_new tokens (no EOS stop, so an uncancelled call makes them all). */
static comi_status prefill_generate(comi_ctx *ctx, comi_session *s, const int32_t *prompt,
                                    int64_t n_prompt, int32_t max_new, int32_t *ids,
                                    int32_t *n_out, int *started) {
    comi_session_reset(s);
    comi_eval_params ep = comi_eval_default_params();
    comi_status st = comi_session_eval(ctx, s, prompt, NULL, n_prompt, &ep);
    if (st) return st;
    comi_generate_params g = comi_generate_default_params();
    g.max_new_tokens = max_new;
    g.stop_at_eos = false;
    g.repetition_penalty = 1.3f;
    if (started) __atomic_store_n(started, 1, __ATOMIC_SEQ_CST);
    return comi_generate(ctx, s, &g, ids, n_out);
}

static void *run_generate(void *varg) {
    gen_arg *a = varg;
    a->st = prefill_generate(a->ctx, a->s, a->prompt, a->n_prompt, GEN_MAX, a->ids, &a->n_out,
                             &a->started);
    return NULL;
}

typedef struct {
    comi_ctx *ctx;
    const char *context;
    comi_text_params tp;
    comi_status st;
    int started;
} text_arg;

static void *run_text(void *varg) {
    text_arg *a = varg;
    comi_text_result r;
    __atomic_store_n(&a->started, 1, __ATOMIC_SEQ_CST);
    a->st = comi_compress_text(a->ctx, a->context, "Which river flows through the city?", &a->tp, &r);
    comi_text_result_free(&r);
    return NULL;
}

static void wait_started(int *started) {
    for (int i = 0; i < 100000 && !__atomic_load_n(started, __ATOMIC_SEQ_CST); i++)
        sleep_ms(1);
}

static void test_real_model(void) {
    char *path = test_smollm2_path();
    if (!path) {
        test_fail("cancel_smollm2", "the real model cannot be had (scripts/fetch_models.sh "
                                    "failed; set COMI_SMOLLM2)");
        return;
    }
    comi_ctx *ctx = comi_ctx_new(NULL);
    comi_model *m = NULL;
    if (comi_model_load(ctx, path, NULL, &m)) {
        test_fail("cancel_smollm2", "%s: %s", path, comi_errmsg(ctx));
        comi_ctx_free(ctx);
        free(path);
        return;
    }
    const char *text = "Write a long story about a dragon who lives in a cave near a village.";
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    comi_tokenize_params tkp = comi_tokenize_default_params();
    comi_session *s = NULL;
    comi_status st = comi_tokenize(ctx, comi_model_tokenizer(m), text, strlen(text), &tkp, &prompt,
                                   &n_prompt);
    if (!st) st = comi_session_new(ctx, m, (int64_t)n_prompt + GEN_MAX, &s);
    if (!test_check("cancel_smollm2_fixture", st == COMI_OK && n_prompt > 0, "%s",
                    comi_errmsg(ctx)))
        goto done;

    /* cancelled before the call: no token */
    int32_t ids[GEN_MAX], n_out = -1;
    comi_ctx_cancel(ctx);
    int started = 0;
    comi_session_reset(s);
    comi_eval_params ep = comi_eval_default_params();
    comi_ctx_reset_cancel(ctx);
    st = comi_session_eval(ctx, s, prompt, NULL, (int64_t)n_prompt, &ep);
    comi_ctx_cancel(ctx);
    comi_generate_params g = comi_generate_default_params();
    g.max_new_tokens = 8;
    if (st == COMI_OK) st = comi_generate(ctx, s, &g, ids, &n_out);
    test_check("cancel_generate_preset", st == COMI_ERR_CANCELLED && n_out == 0 &&
                                             strstr(comi_errmsg(ctx), "cancelled"),
               "status %d, %d ids, '%s'", (int)st, (int)n_out, comi_errmsg(ctx));
    comi_ctx_reset_cancel(ctx);

    /* from another thread, while decoding GEN_MAX tokens (seconds): it must
     * stop part-way, with a prefix of the uncancelled ids */
    gen_arg a = {.ctx = ctx, .s = s, .prompt = prompt, .n_prompt = (int64_t)n_prompt};
    pthread_t th;
    pthread_create(&th, NULL, run_generate, &a);
    wait_started(&a.started);
    sleep_ms(30);
    comi_ctx_cancel(ctx);
    pthread_join(th, NULL);
    test_check("cancel_generate_other_thread", a.st == COMI_ERR_CANCELLED && a.n_out < GEN_MAX,
               "status %d '%s' after %d of %d tokens", (int)a.st, comi_errmsg(ctx), (int)a.n_out,
               GEN_MAX);
    comi_ctx_reset_cancel(ctx);
    if (a.n_out > 0) {
        st = prefill_generate(ctx, s, prompt, (int64_t)n_prompt, a.n_out, ids, &n_out, &started);
        test_check("cancel_generate_prefix", st == COMI_OK && n_out == a.n_out &&
                                                 !memcmp(ids, a.ids, (size_t)n_out * sizeof *ids),
                   "status %d, %d vs %d ids", (int)st, (int)n_out, (int)a.n_out);
    } else {
        test_pass("cancel_generate_prefix"); /* stopped before its first token: nothing to compare */
    }

    /* text-mode compression with the model encoder: a context of many
     * segments (seconds), cancelled from another thread */
    comi_encoder *enc = NULL;
    st = comi_encoder_load(ctx, path, &enc);
    if (!test_check("cancel_text_encoder", st == COMI_OK, "%s", comi_errmsg(ctx))) goto done;
    size_t cap = 200000, len = 0;
    char *big = malloc(cap);
    for (int i = 0; big && len + 200 < cap && i < 600; i++)
        len += (size_t)snprintf(big + len, cap - len,
                                "Sentence %d says that the old bridge near the market was "
                                "painted blue in the year %d by the town council. ",
                                i, 1800 + i % 200);
    text_arg t = {.ctx = ctx, .context = big, .tp = comi_text_default_params()};
    t.tp.encoder = enc;
    t.tp.ratio = 4;
    pthread_create(&th, NULL, run_text, &t);
    wait_started(&t.started);
    sleep_ms(30);
    comi_ctx_cancel(ctx);
    pthread_join(th, NULL);
    test_check("cancel_text_model_other_thread", t.st == COMI_ERR_CANCELLED,
               "status %d '%s' (the compression ran to its end)", (int)t.st, comi_errmsg(ctx));
    comi_ctx_reset_cancel(ctx);
    free(big);
    comi_encoder_free(enc);
done:
    comi_session_free(s);
    comi_free(prompt);
    comi_model_free(m);
    comi_ctx_free(ctx);
    free(path);
}

/* ---- a prefill cancelled part-way (random-weight 4-layer model) ------- */

enum { PF_PREFIX = 100, PF_CHUNK = 1500, PF_LAYERS = 4 };

typedef struct {
    comi_ctx *ctx;
    comi_session *s;
    const int32_t *ids; /* PF_PREFIX + PF_CHUNK ids */
    comi_status st;
    int64_t n_past_before; /* the session's positions before the eval that failed */
    int failed_at;         /* 0: the prefix's eval, 1: the chunk's */
    int rounds;
    int started;
} pf_arg;

/* The prefix's eval then the chunk's on a fresh session, over and over
 * until one fails (bounded): only a check inside comi_session_eval can stop
 * it, as nothing else here looks at the cancel flag. */
static void *run_prefills(void *varg) {
    pf_arg *a = varg;
    comi_eval_params ep = comi_eval_default_params();
    __atomic_store_n(&a->started, 1, __ATOMIC_SEQ_CST);
    a->st = COMI_OK;
    for (a->rounds = 0; a->rounds < 200 && a->st == COMI_OK; a->rounds++) {
        comi_session_reset(a->s);
        a->failed_at = 0;
        a->n_past_before = comi_session_n_past(a->s);
        if ((a->st = comi_session_eval(a->ctx, a->s, a->ids, NULL, PF_PREFIX, &ep))) break;
        a->failed_at = 1;
        a->n_past_before = comi_session_n_past(a->s);
        a->st = comi_session_eval(a->ctx, a->s, a->ids + PF_PREFIX, NULL, PF_CHUNK, &ep);
    }
    return NULL;
}

static bool same_logits(const comi_session *s, const float *want, int64_t n_vocab) {
    const float *got = comi_session_logits(s);
    return got && memcmp(got, want, (size_t)n_vocab * sizeof *got) == 0;
}

static void test_prefill_cancel(int32_t kv_type) {
    const char *kv = kv_type == COMI_KV_F16 ? "f16" : "f32";
    char name[96];
    comi_ctx_params cp = comi_ctx_default_params();
    cp.kv_type = kv_type;
    comi_ctx *ctx = comi_ctx_new(&cp);
    char path[512];
    snprintf(path, sizeof path, "%s/comi-cancel-layers-%d.gguf", fuzz_scratch_base(),
             (int)getpid());
    comi_err e = {0};
    comi_model *m = NULL;
    comi_session *s = NULL, *fresh = NULL;
    int32_t *ids = malloc((PF_PREFIX + PF_CHUNK) * sizeof *ids);
    float *want_prefix = malloc(FUZZ_TINY_VOCAB * sizeof(float));
    float *want_all = malloc(FUZZ_TINY_VOCAB * sizeof(float));
    comi_status st = fuzz_tiny_write_model_shape(&e, path, PF_LAYERS, 64, 128);
    if (st == COMI_OK) st = comi_model_load(ctx, path, NULL, &m);
    remove(path);
    if (!st) st = comi_session_new(ctx, m, PF_PREFIX + PF_CHUNK, &s);
    if (!st) st = comi_session_new(ctx, m, PF_PREFIX + PF_CHUNK, &fresh);
    snprintf(name, sizeof name, "cancel_prefill_fixture_%s", kv);
    if (!test_check(name, st == COMI_OK && ids && want_prefix && want_all, "%s %s", e.msg,
                    comi_errmsg(ctx)))
        goto done;
    for (int i = 0; i < PF_PREFIX + PF_CHUNK; i++) ids[i] = 4 + (i * 37 + i / 7) % 269;

    /* the uncancelled logits, after the prefix and after the whole prompt */
    comi_eval_params ep = comi_eval_default_params();
    st = comi_session_eval(ctx, fresh, ids, NULL, PF_PREFIX, &ep);
    if (!st) memcpy(want_prefix, comi_session_logits(fresh), FUZZ_TINY_VOCAB * sizeof(float));
    if (!st) st = comi_session_eval(ctx, fresh, ids + PF_PREFIX, NULL, PF_CHUNK, &ep);
    if (!st) memcpy(want_all, comi_session_logits(fresh), FUZZ_TINY_VOCAB * sizeof(float));
    snprintf(name, sizeof name, "cancel_prefill_baseline_%s", kv);
    if (!test_check(name, st == COMI_OK, "%s", comi_errmsg(ctx))) goto done;

    /* a cancel set before the call: it stops before the first layer, and the
     * session keeps its prefix and that prefix's logits */
    st = comi_session_eval(ctx, s, ids, NULL, PF_PREFIX, &ep);
    comi_ctx_cancel(ctx);
    comi_status cst = st ? st : comi_session_eval(ctx, s, ids + PF_PREFIX, NULL, PF_CHUNK, &ep);
    snprintf(name, sizeof name, "cancel_prefill_preset_%s", kv);
    test_check(name,
               cst == COMI_ERR_CANCELLED &&
                   strstr(comi_errmsg(ctx),
                          "eval: cancelled before layer 1 of 4 (positions 100..") &&
                   comi_session_n_past(s) == PF_PREFIX &&
                   same_logits(s, want_prefix, FUZZ_TINY_VOCAB),
               "status %d '%s', n_past %lld", (int)cst, comi_errmsg(ctx),
               (long long)comi_session_n_past(s));
    /* a later call on the still-cancelled context stops too: a decode step */
    int32_t one = 5;
    cst = comi_session_eval(ctx, s, &one, NULL, 1, &ep);
    snprintf(name, sizeof name, "cancel_prefill_preset_decode_%s", kv);
    test_check(name, cst == COMI_ERR_CANCELLED && comi_session_n_past(s) == PF_PREFIX,
               "status %d, n_past %lld", (int)cst, (long long)comi_session_n_past(s));
    comi_ctx_reset_cancel(ctx);
    st = comi_session_eval(ctx, s, ids + PF_PREFIX, NULL, PF_CHUNK, &ep);
    snprintf(name, sizeof name, "cancel_prefill_preset_resume_%s", kv);
    test_check(name,
               st == COMI_OK && comi_session_n_past(s) == PF_PREFIX + PF_CHUNK &&
                   same_logits(s, want_all, FUZZ_TINY_VOCAB),
               "status %d '%s': the resumed prefill's logits differ from a fresh run's", (int)st,
               comi_errmsg(ctx));

    /* from another thread while prefills run: the eval under way stops
     * (between two layers), its positions are discarded, and finishing the
     * prompt gives the fresh run's logits bit for bit */
    pf_arg a = {.ctx = ctx, .s = s, .ids = ids};
    pthread_t th;
    pthread_create(&th, NULL, run_prefills, &a);
    wait_started(&a.started);
    sleep_ms(20);
    comi_ctx_cancel(ctx);
    pthread_join(th, NULL);
    snprintf(name, sizeof name, "cancel_prefill_other_thread_%s", kv);
    test_check(name,
               a.st == COMI_ERR_CANCELLED &&
                   strstr(comi_errmsg(ctx), "eval: cancelled before layer") &&
                   comi_session_n_past(s) == a.n_past_before,
               "status %d '%s' after %d rounds, n_past %lld (before the eval %lld)", (int)a.st,
               comi_errmsg(ctx), a.rounds, (long long)comi_session_n_past(s),
               (long long)a.n_past_before);
    comi_ctx_reset_cancel(ctx);
    st = COMI_OK;
    if (a.failed_at == 0) st = comi_session_eval(ctx, s, ids, NULL, PF_PREFIX, &ep);
    if (!st) st = comi_session_eval(ctx, s, ids + PF_PREFIX, NULL, PF_CHUNK, &ep);
    snprintf(name, sizeof name, "cancel_prefill_other_thread_resume_%s", kv);
    test_check(name, st == COMI_OK && same_logits(s, want_all, FUZZ_TINY_VOCAB),
               "status %d '%s' (cancelled in the %s): the resumed prefill's logits differ from a "
               "fresh run's",
               (int)st, comi_errmsg(ctx), a.failed_at ? "chunk" : "prefix");

    /* comi_generate after a cancelled prefill of its prompt: the same ids
     * as after an uncancelled one */
    int32_t got[8], want[8], n_got = 0, n_want = 0;
    comi_generate_params g = comi_generate_default_params();
    g.max_new_tokens = 8;
    g.stop_at_eos = false;
    comi_session_reset(s);
    comi_session_reset(fresh);
    st = comi_session_eval(ctx, fresh, ids, NULL, PF_CHUNK, &ep);
    if (!st) st = comi_generate(ctx, fresh, &g, want, &n_want);
    comi_ctx_cancel(ctx);
    cst = st ? st : comi_session_eval(ctx, s, ids, NULL, PF_CHUNK, &ep);
    comi_ctx_reset_cancel(ctx);
    if (!st) st = comi_session_eval(ctx, s, ids, NULL, PF_CHUNK, &ep);
    if (!st) st = comi_generate(ctx, s, &g, got, &n_got);
    snprintf(name, sizeof name, "cancel_prefill_then_generate_%s", kv);
    test_check(name,
               st == COMI_OK && cst == COMI_ERR_CANCELLED && n_got == 8 && n_want == 8 &&
                   memcmp(got, want, sizeof got) == 0,
               "status %d/%d '%s', %d vs %d ids", (int)st, (int)cst, comi_errmsg(ctx), (int)n_got,
               (int)n_want);
done:
    comi_session_free(s);
    comi_session_free(fresh);
    comi_model_free(m);
    comi_ctx_free(ctx);
    free(ids);
    free(want_prefix);
    free(want_all);
}

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

    /* text-mode compression checks before each stage */
    comi_text_result one;
    st = comi_compress_text(ctx, ctxs[1], qs[1], &tp, &one);
    test_check("cancel_compress_text", st == COMI_ERR_CANCELLED && !one.text &&
                                           strstr(comi_errmsg(ctx), "compress: parse: cancelled"),
               "status %d '%s'", (int)st, comi_errmsg(ctx));
    comi_text_result_free(&one);
    st = comi_compress_documents(ctx, ctxs, 2, qs[0], &tp, &one);
    test_check("cancel_compress_documents", st == COMI_ERR_CANCELLED && !one.text,
               "status %d '%s'", (int)st, comi_errmsg(ctx));
    comi_text_result_free(&one);

    comi_ctx_reset_cancel(ctx);
    st = comi_compress_text(ctx, ctxs[1], qs[1], &tp, &one);
    test_check("cancel_compress_reset", st == COMI_OK && one.text && one.compressed_tokens > 0,
               "status %d '%s'", (int)st, comi_errmsg(ctx));
    comi_text_result_free(&one);

    /* the default decoding (comi_generate, no penalty_per_occurrence) of
     * the soft pipeline: cancelled before decoding */
    comi_answer_params pd = p;
    pd.penalty_per_occurrence = false;
    comi_ctx_cancel(ctx);
    st = comi_pipeline_answer(ctx, pl, CONTEXT, "where did the cat sit?", &pd, &r);
    test_check("cancel_answer_default_decoding", st == COMI_ERR_CANCELLED && !r.ids,
               "status %d '%s'", (int)st, comi_errmsg(ctx));
    comi_answer_result_free(&r);
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

    test_prefill_cancel(COMI_KV_F32);
    test_prefill_cancel(COMI_KV_F16);
    test_real_model();
    return test_n_failed ? 1 : 0;
}
