/* test_pipeline.c — the soft pipeline against $COMI_GOLDEN/forward/pipeline
 * (llama.cpp encoder/decoder + the authors' TKDR merge): the merge stage fed
 * the golden encoder output (group sizes exact, memory NMSE <= 1e-4), the
 * decoder input layout [memory ; question embeddings] (no BOS), and the
 * whole path through the C API from ids and from text (group sizes, memory
 * and decoder logits NMSE <= 1e-4, first 4 greedy ids exact); stages called
 * one by one agree with the one-call path; segments, empty context and bad
 * input. COMI checkpoints built here from the tiny HF twins: see
 * test_checkpoint.c. */
#include "comi.h"
#include "limits.h"
#include "test.h"

#include <jansson.h>
#include <stdint.h>

static const char *golden;

static int32_t *json_ids(json_t *arr, int64_t *n) {
    size_t k = json_array_size(arr);
    int32_t *ids = malloc((k + 1) * sizeof *ids);
    for (size_t i = 0; i < k; i++) {
        json_t *v = json_array_get(arr, i);
        ids[i] = json_is_string(v) ? (int32_t)atol(json_string_value(v))
                                   : (int32_t)json_integer_value(v);
    }
    *n = (int64_t)k;
    return ids;
}

typedef struct golden_case {
    const char *name;
    json_t *js;
    int32_t *cids, *qids, *gs, *greedy, *greedy_comp;
    int64_t nc, nq, n_gs, n_greedy, n_greedy_comp, n_mem;
    float *enc, *mem, *dec_in, *logits;
    size_t n_enc, n_memf, n_dec_in, n_logits;
} golden_case;

static bool load_case(const char *name, golden_case *c) {
    memset(c, 0, sizeof *c);
    c->name = name;
    json_error_t je;
    c->js = json_load_file(test_pathf("%s/forward/pipeline/%s.json", golden, name), 0, &je);
    if (!c->js) return false;
    c->cids = json_ids(json_object_get(c->js, "context_ids"), &c->nc);
    c->qids = json_ids(json_object_get(c->js, "question_ids"), &c->nq);
    c->gs = json_ids(json_object_get(c->js, "group_sizes"), &c->n_gs);
    c->greedy = json_ids(json_object_get(c->js, "greedy_rep1_3"), &c->n_greedy);
    c->greedy_comp = json_ids(json_object_get(c->js, "greedy_compounding"), &c->n_greedy_comp);
    c->n_mem = json_integer_value(json_object_get(c->js, "n_memory"));
    c->enc = test_read_f32(test_pathf("%s/forward/pipeline/%s.enc.hidden.f32", golden, name),
                           &c->n_enc);
    c->mem = test_read_f32(test_pathf("%s/forward/pipeline/%s.memory.f32", golden, name),
                           &c->n_memf);
    c->dec_in = test_read_f32(
        test_pathf("%s/forward/pipeline/%s.decoder_input.f32", golden, name), &c->n_dec_in);
    c->logits = test_read_f32(
        test_pathf("%s/forward/pipeline/%s.dec.logits_last.f32", golden, name), &c->n_logits);
    return c->enc && c->mem && c->dec_in && c->logits;
}

static void free_case(golden_case *c) {
    json_decref(c->js);
    free(c->cids);
    free(c->qids);
    free(c->gs);
    free(c->greedy);
    free(c->greedy_comp);
    free(c->enc);
    free(c->mem);
    free(c->dec_in);
    free(c->logits);
}

static void check_sizes(const char *name, const int32_t *got, int64_t n_got, const golden_case *c) {
    int64_t bad = n_got == c->n_gs ? -1 : 0;
    for (int64_t i = 0; bad < 0 && i < n_got; i++)
        if (got[i] != c->gs[i]) bad = i;
    test_check(name, bad < 0, "%lld groups (want %lld), first difference at %lld: %d vs %d",
               (long long)n_got, (long long)c->n_gs, (long long)bad,
               bad >= 0 && bad < n_got ? got[bad] : -1, bad >= 0 && bad < c->n_gs ? c->gs[bad] : -1);
}

/* Merge stage fed the golden encoder output. */
static void test_merge_stage(comi_ctx *ctx, const golden_case *c) {
    char name[128];
    const int64_t d = (int64_t)c->n_enc / (c->nc + c->nq);
    comi_merge_params mp = comi_merge_default_params();
    mp.merge_size = 4;
    comi_merge_result r;
    comi_status st = comi_pipeline_merge(ctx, c->enc, c->nc, c->nq, d, &mp, &r);
    snprintf(name, sizeof name, "%s merge stage runs", c->name);
    if (!test_check(name, st == COMI_OK, "%s", comi_errmsg(ctx))) return;
    snprintf(name, sizeof name, "%s merge stage group sizes exact", c->name);
    check_sizes(name, r.group_sizes, r.n_groups, c);
    snprintf(name, sizeof name, "%s merge stage memory", c->name);
    if (test_check(name, r.n_memory == c->n_mem && (size_t)(r.n_memory * d) == c->n_memf,
                   "%lld memories, want %lld", (long long)r.n_memory, (long long)c->n_mem))
        test_check_nmse(name, r.memory, c->mem, c->n_memf, 1e-4);
    comi_merge_result_free(&r);
}

/* The decoder input is [memory ; question embeddings], no BOS. */
static void test_decoder_input(comi_ctx *ctx, const comi_model *m, const golden_case *c) {
    char name[128];
    const int64_t d = (int64_t)c->n_memf / c->n_mem;
    float *in = malloc((size_t)(c->n_mem + c->nq) * (size_t)d * sizeof(float));
    memcpy(in, c->mem, c->n_memf * sizeof(float));
    comi_status st = comi_model_embed(ctx, m, c->qids, c->nq, in + c->n_memf);
    snprintf(name, sizeof name, "%s decoder input = [memory ; question embeddings], no BOS",
             c->name);
    if (test_check(name, !st && (size_t)((c->n_mem + c->nq) * d) == c->n_dec_in,
                   "%zu golden floats, layout gives %lld", c->n_dec_in,
                   (long long)((c->n_mem + c->nq) * d)))
        test_check_nmse(name, in, c->dec_in, c->n_dec_in, 1e-10);
    free(in);
}

static void check_answer(const char *what, const golden_case *c, const comi_answer_result *r,
                         bool compound) {
    char name[160];
    snprintf(name, sizeof name, "%s %s group sizes exact", c->name, what);
    check_sizes(name, r->group_sizes, r->n_groups, c);
    snprintf(name, sizeof name, "%s %s memory", c->name, what);
    if (test_check(name, r->n_memory == c->n_mem, "%lld memories, want %lld",
                   (long long)r->n_memory, (long long)c->n_mem))
        test_check_nmse(name, r->memory, c->mem, c->n_memf, 1e-4);
    snprintf(name, sizeof name, "%s %s decoder logits", c->name, what);
    if (test_check(name, r->logits && (size_t)r->n_vocab == c->n_logits, "no logits"))
        test_check_nmse(name, r->logits, c->logits, c->n_logits, 1e-4);
    /* greedy_rep1_3 follows the Hugging Face rule (once per id); the
     * compounding rule is checked against the files' greedy_compounding. */
    const int32_t *want = compound ? c->greedy_comp : c->greedy;
    const int64_t n_want = compound ? c->n_greedy_comp : c->n_greedy;
    const int n_check = 4;
    snprintf(name, sizeof name, "%s %s first %d greedy ids (%s penalty)", c->name, what, n_check,
             compound ? "per-occurrence" : "HF");
    bool ok = want && n_want >= n_check && r->n_ids >= n_check;
    for (int i = 0; ok && i < n_check; i++) ok = r->ids[i] == want[i];
    printf("# %s ids:", name);
    for (int i = 0; i < r->n_ids; i++) printf(" %d", r->ids[i]);
    printf(" (golden:");
    for (int i = 0; i < n_want; i++) printf(" %d", want[i]);
    printf(")\n");
    test_check(name, ok, "first 4 ids differ");
}

static comi_answer_params golden_params(const comi_pipeline *pl) {
    comi_answer_params ap = comi_pipeline_answer_params(pl);
    ap.encoder_layers = 2;
    ap.merge.merge_size = 4;
    ap.max_new_tokens = 12;
    ap.repetition_penalty = 1.3f;
    return ap;
}

/* ---- limits ---------------------------------------------------------- */

/* kind 0: answer_ids, 1: answer (text), 2: answer_tokens (whole context) */
static comi_status limited_answer(int kind, const comi_pipeline *pl, const golden_case *c,
                                  const char *ctext, const char *qtext,
                                  const comi_answer_params *ap, int64_t max_tokens,
                                  uint64_t max_bytes, char *msg, size_t msg_len) {
    comi_ctx *x = limits_ctx(0, max_tokens, max_bytes);
    comi_answer_result r;
    comi_status st = kind == 0
                         ? comi_pipeline_answer_ids(x, pl, c->cids, c->nc, c->qids, c->nq, ap, &r)
                     : kind == 1 ? comi_pipeline_answer(x, pl, ctext, qtext, ap, &r)
                                 : comi_pipeline_answer_tokens(x, pl, ctext, qtext, -1, ap, &r);
    snprintf(msg, msg_len, "%s", comi_errmsg(x));
    if (st == COMI_OK) comi_answer_result_free(&r);
    comi_ctx_free(x);
    return st;
}

static void test_answer_limits(const comi_pipeline *pl, const golden_case *c, const char *ctext,
                               const char *qtext, comi_answer_params ap) {
    static const char *const kinds[3] = {"answer_ids", "answer", "answer_tokens"};
    char name[200], msg[600], want[96], want_limit[96];
    for (int k = 0; k < 3; k++) {
        comi_status st = limited_answer(k, pl, c, ctext, qtext, &ap, c->nc - 1, 0, msg, sizeof msg);
        snprintf(want, sizeof want, "has %lld tokens", (long long)c->nc);
        snprintf(want_limit, sizeof want_limit, "limit of %lld", (long long)c->nc - 1);
        snprintf(name, sizeof name, "%s %s max_context_tokens just below refuses", c->name,
                 kinds[k]);
        test_check(name, st == COMI_ERR_LIMIT && strstr(msg, want) && strstr(msg, want_limit),
                   "status %d: %s", st, msg);
        st = limited_answer(k, pl, c, ctext, qtext, &ap, c->nc, 0, msg, sizeof msg);
        snprintf(name, sizeof name, "%s %s max_context_tokens at the context runs", c->name,
                 kinds[k]);
        test_check(name, st == COMI_OK, "status %d: %s", st, msg);

        st = limited_answer(k, pl, c, ctext, qtext, &ap, 0, 1, msg, sizeof msg);
        unsigned long long need = limits_needs_figure(msg);
        snprintf(name, sizeof name, "%s %s max_bytes names the need", c->name, kinds[k]);
        if (!test_check(name, st == COMI_ERR_LIMIT && need > 1000, "status %d: %s", st, msg))
            continue;
        st = limited_answer(k, pl, c, ctext, qtext, &ap, 0, need - 1, msg, sizeof msg);
        snprintf(want, sizeof want, "needs %llu bytes", need);
        snprintf(want_limit, sizeof want_limit, "max_bytes limit of %llu bytes", need - 1);
        snprintf(name, sizeof name, "%s %s max_bytes just below refuses", c->name, kinds[k]);
        test_check(name, st == COMI_ERR_LIMIT && strstr(msg, want) && strstr(msg, want_limit),
                   "status %d: %s", st, msg);
        st = limited_answer(k, pl, c, ctext, qtext, &ap, 0, need, msg, sizeof msg);
        snprintf(name, sizeof name, "%s %s max_bytes at the need runs", c->name, kinds[k]);
        test_check(name, st == COMI_OK, "status %d: %s", st, msg);

        /* comi_answer_params.max_bytes overrides the context's limit, both ways */
        comi_answer_params over = ap;
        over.max_bytes = need;
        st = limited_answer(k, pl, c, ctext, qtext, &over, 0, 1, msg, sizeof msg);
        snprintf(name, sizeof name, "%s %s per-call max_bytes overrides a smaller ctx limit",
                 c->name, kinds[k]);
        test_check(name, st == COMI_OK, "status %d: %s", st, msg);
        over.max_bytes = need - 1;
        st = limited_answer(k, pl, c, ctext, qtext, &over, 0, 0, msg, sizeof msg);
        snprintf(name, sizeof name, "%s %s per-call max_bytes just below refuses", c->name,
                 kinds[k]);
        test_check(name,
                   st == COMI_ERR_LIMIT && strstr(msg, "per-call max_bytes") && strstr(msg, want),
                   "status %d: %s", st, msg);
    }
}

/* The stage functions check the limits on their own: encode the context's
 * tokens and its session, decode its session. */
static void test_stage_limits(const comi_pipeline *pl, const golden_case *c) {
    char name[160], want[64];
    comi_pipeline_info pi;
    comi_pipeline_get_info(pl, &pi);
    float *q = malloc((size_t)pi.d_encoder * sizeof(float));
    comi_ctx *x = limits_ctx(0, c->nc - 1, 0);
    comi_status st = comi_pipeline_encode(x, pl, c->cids, c->nc, c->qids, c->nq, 2, NULL, q);
    snprintf(want, sizeof want, "encode: context has %lld tokens", (long long)c->nc);
    snprintf(name, sizeof name, "%s encode stage over max_context_tokens refuses", c->name);
    test_check(name, st == COMI_ERR_LIMIT && strstr(comi_errmsg(x), want), "status %d: %s", st,
               comi_errmsg(x));
    comi_ctx_free(x);
    x = limits_ctx(0, c->nc, 0);
    st = comi_pipeline_encode(x, pl, c->cids, c->nc, c->qids, c->nq, 2, NULL, q);
    snprintf(name, sizeof name, "%s encode stage at max_context_tokens runs", c->name);
    test_check(name, st == COMI_OK, "status %d: %s", st, comi_errmsg(x));
    comi_ctx_free(x);
    x = limits_ctx(0, 0, 1024);
    st = comi_pipeline_encode(x, pl, c->cids, c->nc, c->qids, c->nq, 2, NULL, q);
    snprintf(name, sizeof name, "%s encode stage over max_bytes refuses", c->name);
    test_check(name, st == COMI_ERR_LIMIT && strstr(comi_errmsg(x), "encode: ") &&
                         strstr(comi_errmsg(x), "limit of 1024 bytes"),
               "status %d: %s", st, comi_errmsg(x));
    int32_t ids[4], n_ids = 0;
    comi_generate_params gp = comi_generate_default_params();
    gp.max_new_tokens = 4;
    st = comi_pipeline_decode(x, pl, NULL, 0, c->qids, c->nq, &gp, NULL, ids, &n_ids);
    snprintf(name, sizeof name, "%s decode stage over max_bytes refuses", c->name);
    test_check(name, st == COMI_ERR_LIMIT && strstr(comi_errmsg(x), "decode: ") &&
                         strstr(comi_errmsg(x), "limit of 1024 bytes"),
               "status %d: %s", st, comi_errmsg(x));
    comi_ctx_free(x);
    free(q);
}

/* comi_session_new: max_tokens against max_context_tokens, and
 * comi_model_session_bytes against max_bytes. */
static void test_session_limits(const comi_model *m, const char *cname) {
    char name[160];
    comi_session *s = NULL;
    comi_ctx *x = limits_ctx(0, 64, 0);
    comi_status st = comi_session_new(x, m, 65, &s);
    snprintf(name, sizeof name, "%s session over max_context_tokens refuses", cname);
    test_check(name,
               st == COMI_ERR_LIMIT && s == NULL && strstr(comi_errmsg(x), "65 tokens") &&
                   strstr(comi_errmsg(x), "limit of 64"),
               "status %d: %s", st, comi_errmsg(x));
    st = comi_session_new(x, m, 64, &s);
    snprintf(name, sizeof name, "%s session at max_context_tokens opens", cname);
    test_check(name, st == COMI_OK && comi_session_max_tokens(s) == 64, "status %d: %s", st,
               comi_errmsg(x));
    comi_session_free(s);
    s = NULL;
    comi_ctx_free(x);
    uint64_t need = comi_model_session_bytes(m, 64);
    x = limits_ctx(0, 0, need - 1);
    st = comi_session_new(x, m, 64, &s);
    char want[64];
    snprintf(want, sizeof want, "needs %llu bytes", (unsigned long long)need);
    snprintf(name, sizeof name, "%s session over max_bytes refuses with its size", cname);
    test_check(name, st == COMI_ERR_LIMIT && s == NULL && strstr(comi_errmsg(x), want),
               "status %d: %s", st, comi_errmsg(x));
    comi_ctx_free(x);
    x = limits_ctx(0, 0, need);
    st = comi_session_new(x, m, 64, &s);
    snprintf(name, sizeof name, "%s session at max_bytes opens", cname);
    test_check(name, st == COMI_OK, "status %d: %s", st, comi_errmsg(x));
    comi_session_free(s);
    comi_ctx_free(x);
}

/* The encode cache: answers through it equal answers without it, byte for
 * byte, over merge sizes, merge switches and two segments; repeated
 * segments are hits; another question, depth or pipeline is not. */
static bool same_answer(const comi_answer_result *a, const comi_answer_result *b) {
    return a->n_memory == b->n_memory && a->n_ids == b->n_ids && a->d_model == b->d_model &&
           !memcmp(a->memory, b->memory, (size_t)(a->n_memory * a->d_model) * sizeof(float)) &&
           !memcmp(a->ids, b->ids, (size_t)a->n_ids * sizeof(int32_t)) &&
           (!a->logits || !memcmp(a->logits, b->logits, (size_t)a->n_vocab * sizeof(float)));
}

static void test_encode_cache(comi_ctx *ctx, const comi_pipeline *pl, const golden_case *c,
                              comi_answer_params ap, const char *mpath) {
    char name[160];
    comi_encode_cache *ec = NULL;
    snprintf(name, sizeof name, "%s encode cache created", c->name);
    if (!test_check(name, comi_encode_cache_new(ctx, 0, &ec) == COMI_OK, "%s", comi_errmsg(ctx)))
        return;
    /* (merge size, segment size, coarse, fine, encoder layers) */
    static const int64_t runs[][5] = {{4, 10000, 1, 1, 0}, {8, 10000, 1, 1, 0}, {4, 10000, 0, 1, 0},
                                      {4, 10000, 0, 0, 0}, {4, 64, 1, 1, 0},    {8, 64, 1, 0, 0},
                                      {4, 10000, 1, 1, 3}};
    /* the misses each run must add: new, hit, hit, hit, 2 new segments, 2 hits, new depth */
    static const uint64_t want_miss[] = {1, 1, 1, 1, 3, 3, 4};
    bool all_same = true, counts = true;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        comi_answer_params a = ap;
        a.merge.merge_size = runs[i][0];
        a.segment_size = runs[i][1];
        a.merge.coarse = runs[i][2] != 0;
        a.merge.fine = runs[i][3] != 0;
        if (runs[i][4]) a.encoder_layers = (int32_t)runs[i][4];
        comi_answer_result plain, cached;
        if (comi_pipeline_answer_ids(ctx, pl, c->cids, c->nc, c->qids, c->nq, &a, &plain)) {
            test_fail(name, "%s", comi_errmsg(ctx));
            break;
        }
        a.encode_cache = ec;
        if (comi_pipeline_answer_ids(ctx, pl, c->cids, c->nc, c->qids, c->nq, &a, &cached)) {
            test_fail(name, "%s", comi_errmsg(ctx));
            comi_answer_result_free(&plain);
            break;
        }
        all_same &= same_answer(&plain, &cached);
        uint64_t hits = 0, misses = 0;
        comi_encode_cache_stats(ec, &hits, &misses);
        counts &= misses == want_miss[i];
        comi_answer_result_free(&plain);
        comi_answer_result_free(&cached);
    }
    uint64_t hits = 0, misses = 0;
    comi_encode_cache_stats(ec, &hits, &misses);
    snprintf(name, sizeof name, "%s answers through the encode cache equal answers without it",
             c->name);
    test_check(name, all_same, "an answer differs with the cache");
    snprintf(name, sizeof name, "%s encode cache reuses a context's segments (4 misses, 5 hits)",
               c->name);
    test_check(name, counts && misses == 4 && hits == 5, "%llu hits, %llu misses",
               (unsigned long long)hits, (unsigned long long)misses);

    /* another question is a miss */
    comi_answer_params a = ap;
    a.encode_cache = ec;
    comi_answer_result r;
    if (c->nq > 1 &&
        comi_pipeline_answer_ids(ctx, pl, c->cids, c->nc, c->qids, c->nq - 1, &a, &r) == COMI_OK)
        comi_answer_result_free(&r);
    uint64_t m2 = 0;
    comi_encode_cache_stats(ec, NULL, &m2);
    snprintf(name, sizeof name, "%s encode cache: another question is encoded", c->name);
    test_check(name, c->nq < 2 || m2 == misses + 1, "%llu misses", (unsigned long long)m2);

    /* a cache serves one pipeline */
    comi_pipeline_load_params lp = comi_pipeline_load_default_params();
    lp.model = mpath;
    comi_pipeline *pl2 = NULL;
    snprintf(name, sizeof name, "%s second pipeline loads", c->name);
    if (test_check(name, comi_pipeline_load(ctx, &lp, &pl2) == COMI_OK, "%s", comi_errmsg(ctx))) {
        snprintf(name, sizeof name, "%s encode cache refuses a second pipeline", c->name);
        comi_status st = comi_pipeline_answer_ids(ctx, pl2, c->cids, c->nc, c->qids, c->nq, &a, &r);
        test_check(name, st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "another pipeline"),
                   "%d %s", st, comi_errmsg(ctx));
        if (st == COMI_OK) comi_answer_result_free(&r);
        comi_pipeline_free(pl2);
    }
    /* a tiny cache keeps nothing and still answers the same */
    comi_encode_cache *tiny = NULL;
    snprintf(name, sizeof name, "%s tiny encode cache created", c->name);
    if (test_check(name, comi_encode_cache_new(ctx, 16, &tiny) == COMI_OK, "%s",
                   comi_errmsg(ctx))) {
        snprintf(name, sizeof name, "%s encode cache smaller than a segment encodes every time",
                 c->name);
        a.encode_cache = tiny;
        comi_answer_result r1, r2;
        bool ok = comi_pipeline_answer_ids(ctx, pl, c->cids, c->nc, c->qids, c->nq, &a, &r1) ==
                  COMI_OK;
        ok = ok && comi_pipeline_answer_ids(ctx, pl, c->cids, c->nc, c->qids, c->nq, &a, &r2) ==
                       COMI_OK;
        uint64_t th = 9, tm = 0;
        comi_encode_cache_stats(tiny, &th, &tm);
        test_check(name, ok && th == 0 && tm == 2 && same_answer(&r1, &r2), "%llu hits %llu misses",
                   (unsigned long long)th, (unsigned long long)tm);
        if (ok) {
            comi_answer_result_free(&r1);
            comi_answer_result_free(&r2);
        }
    }
    comi_encode_cache_free(tiny);
    comi_encode_cache_free(ec);
}

static void test_end_to_end(comi_ctx *ctx, const golden_case *c) {
    char name[160];
    const char *mpath = test_pathf("%s/forward/models/%s.gguf", golden, c->name);
    comi_pipeline_load_params lp = comi_pipeline_load_default_params();
    lp.model = mpath;
    comi_pipeline *pl = NULL;
    snprintf(name, sizeof name, "%s pipeline loads", c->name);
    if (!test_check(name, comi_pipeline_load(ctx, &lp, &pl) == COMI_OK, "%s", comi_errmsg(ctx)))
        return;
    comi_pipeline_info pi;
    comi_pipeline_get_info(pl, &pi);
    snprintf(name, sizeof name, "%s training-free pipeline shares one model", c->name);
    test_check(name, pi.shared_model && pi.fusion_layers == 0 && pi.encoder_layers == 3,
               "shared %d fusion %d default layers %d", pi.shared_model, pi.fusion_layers,
               pi.encoder_layers);

    comi_answer_params ap = golden_params(pl);
    snprintf(name, sizeof name, "%s default repetition penalty is once per id (HF)", c->name);
    test_check(name, !ap.penalty_per_occurrence, "default is per occurrence");
    comi_answer_result r;
    snprintf(name, sizeof name, "%s answer from ids", c->name);
    if (test_check(name, comi_pipeline_answer_ids(ctx, pl, c->cids, c->nc, c->qids, c->nq, &ap,
                                                  &r) == COMI_OK,
                   "%s", comi_errmsg(ctx))) {
        check_answer("ids", c, &r, false);
        snprintf(name, sizeof name, "%s default penalty gives all 12 golden ids", c->name);
        test_check(name, r.n_ids == 12 && c->n_greedy == 12 &&
                             !memcmp(r.ids, c->greedy, 12 * sizeof(int32_t)),
                   "%d ids", r.n_ids);
        snprintf(name, sizeof name, "%s answer text present", c->name);
        test_check(name, r.text != NULL && !r.empty_context && r.n_segments == 1, "no text");
        comi_answer_result_free(&r);
    }
    comi_answer_params apc = ap;
    apc.penalty_per_occurrence = true;
    snprintf(name, sizeof name, "%s answer from ids, per-occurrence penalty", c->name);
    if (test_check(name, comi_pipeline_answer_ids(ctx, pl, c->cids, c->nc, c->qids, c->nq, &apc,
                                                  &r) == COMI_OK,
                   "%s", comi_errmsg(ctx))) {
        check_answer("ids", c, &r, true);
        snprintf(name, sizeof name, "%s per-occurrence penalty gives all 12 greedy_compounding ids", c->name);
        test_check(name, r.n_ids == 12 && c->n_greedy_comp == 12 &&
                             !memcmp(r.ids, c->greedy_comp, 12 * sizeof(int32_t)),
                   "%d ids", r.n_ids);
        comi_answer_result_free(&r);
    }

    /* from text: the tokenization must give the golden ids */
    const char *ctext = json_string_value(json_object_get(c->js, "context"));
    const char *qtext = json_string_value(json_object_get(c->js, "question"));
    snprintf(name, sizeof name, "%s answer from text", c->name);
    if (test_check(name, comi_pipeline_answer(ctx, pl, ctext, qtext, &ap, &r) == COMI_OK, "%s",
                   comi_errmsg(ctx))) {
        snprintf(name, sizeof name, "%s text tokenized without special tokens", c->name);
        test_check(name, r.n_context_tokens == c->nc && r.n_question_tokens == c->nq,
                   "%lld + %lld tokens, want %lld + %lld", (long long)r.n_context_tokens,
                   (long long)r.n_question_tokens, (long long)c->nc, (long long)c->nq);
        check_answer("text", c, &r, false);
        printf("# %s answer: \"%s\" (encode %.2f ms, merge %.2f ms, prefill %.2f ms, "
               "generate %.2f ms)\n",
               c->name, r.text, r.ms_encode, r.ms_merge, r.ms_prefill, r.ms_generate);

        /* the stages one by one give the same */
        const int64_t d = r.d_model;
        float *hid = malloc((size_t)(c->nc + c->nq) * (size_t)d * sizeof(float));
        float *q = malloc((size_t)d * sizeof(float));
        comi_merge_result mr;
        memset(&mr, 0, sizeof mr);
        float *fused = NULL, *lg = malloc((size_t)r.n_vocab * sizeof(float));
        int32_t ids[12], n_ids = 0;
        comi_generate_params gp = comi_generate_default_params();
        gp.max_new_tokens = 12;
        gp.repetition_penalty = 1.3f;
        comi_status st = comi_pipeline_encode(ctx, pl, c->cids, c->nc, c->qids, c->nq, 2, hid, q);
        if (!st) st = comi_pipeline_merge(ctx, hid, c->nc, c->nq, d, &ap.merge, &mr);
        if (!st) {
            fused = malloc((size_t)mr.n_memory * (size_t)d * sizeof(float));
            st = comi_pipeline_fuse(ctx, pl, mr.memory, mr.n_memory, fused);
        }
        if (!st)
            st = comi_pipeline_decode(ctx, pl, fused, mr.n_memory, c->qids, c->nq, &gp, lg, ids,
                                      &n_ids);
        snprintf(name, sizeof name, "%s stages one by one equal the one-call path", c->name);
        bool same = !st && mr.n_memory == r.n_memory && n_ids == r.n_ids &&
                    !memcmp(mr.memory, r.memory, (size_t)(r.n_memory * d) * sizeof(float)) &&
                    !memcmp(lg, r.logits, (size_t)r.n_vocab * sizeof(float)) &&
                    !memcmp(ids, r.ids, (size_t)n_ids * sizeof(int32_t));
        test_check(name, same, "st %d (%s), %lld vs %lld memories, %d vs %d ids", st,
                   comi_errmsg(ctx), (long long)mr.n_memory, (long long)r.n_memory, n_ids,
                   r.n_ids);
        /* golden encoder output: the stage's own states against llama.cpp's */
        snprintf(name, sizeof name, "%s encoder stage states", c->name);
        if (!st) test_check_nmse(name, hid, c->enc, c->n_enc, 1e-4);
        free(hid);
        free(q);
        free(fused);
        free(lg);
        comi_merge_result_free(&mr);
        comi_answer_result_free(&r);
    }

    /* segments: two segments encode separately, memories concatenate */
    ap.segment_size = 64;
    snprintf(name, sizeof name, "%s two segments", c->name);
    if (test_check(name, comi_pipeline_answer_ids(ctx, pl, c->cids, c->nc, c->qids, c->nq, &ap,
                                                  &r) == COMI_OK,
                   "%s", comi_errmsg(ctx))) {
        comi_answer_result r1;
        comi_answer_params ap1 = ap;
        ap1.segment_size = 10000;
        bool ok = r.n_segments == 2;
        /* segment 1 alone, then segment 2 alone, must give the same memories */
        int64_t off = 0;
        for (int s = 0; ok && s < 2; s++) {
            int64_t len = s == 0 ? 64 : c->nc - 64;
            ok = comi_pipeline_answer_ids(ctx, pl, c->cids + s * 64, len, c->qids, c->nq, &ap1,
                                          &r1) == COMI_OK &&
                 off + r1.n_memory <= r.n_memory &&
                 !memcmp(r1.memory, r.memory + off * r.d_model,
                         (size_t)(r1.n_memory * r.d_model) * sizeof(float));
            off += r1.n_memory;
            comi_answer_result_free(&r1);
        }
        test_check(name, ok && off == r.n_memory, "segment memories differ (%lld segments)",
                   (long long)r.n_segments);
        comi_answer_result_free(&r);
    }
    ap.segment_size = 10000;

    /* empty context: the question alone */
    snprintf(name, sizeof name, "%s empty context answers from the question", c->name);
    if (test_check(name, comi_pipeline_answer(ctx, pl, " \n", qtext, &ap, &r) == COMI_OK, "%s",
                   comi_errmsg(ctx))) {
        comi_generate_params gp = comi_generate_default_params();
        gp.max_new_tokens = 12;
        gp.repetition_penalty = 1.3f;
        int32_t ids[12], n_ids = 0;
        comi_status st = comi_pipeline_decode(ctx, pl, NULL, 0, c->qids, c->nq, &gp, NULL, ids,
                                              &n_ids);
        test_check(name, r.empty_context && r.n_memory == 0 && !st && n_ids == r.n_ids &&
                             !memcmp(ids, r.ids, (size_t)n_ids * sizeof(int32_t)),
                   "flag %d memories %lld", r.empty_context, (long long)r.n_memory);
        comi_answer_result_free(&r);
    }

    test_encode_cache(ctx, pl, c, ap, mpath);

    /* bad input */
    snprintf(name, sizeof name, "%s empty question fails", c->name);
    comi_status st = comi_pipeline_answer(ctx, pl, ctext, "  ", &ap, &r);
    test_check(name, st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "question"), "%d %s",
               st, comi_errmsg(ctx));
    comi_answer_params bad = ap;
    bad.encoder_layers = 4;
    snprintf(name, sizeof name, "%s encoder layers > n_layer fails", c->name);
    st = comi_pipeline_answer(ctx, pl, ctext, qtext, &bad, &r);
    test_check(name, st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "3 layers"), "%d %s",
               st, comi_errmsg(ctx));
    bad = ap;
    bad.merge.merge_size = 0;
    snprintf(name, sizeof name, "%s merge size 0 fails", c->name);
    st = comi_pipeline_answer(ctx, pl, ctext, qtext, &bad, &r);
    test_check(name, st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "merge size"), "%d %s",
               st, comi_errmsg(ctx));
    bad = ap;
    bad.max_bytes = 1 << 20;
    snprintf(name, sizeof name, "%s context too long for memory fails early with the figure",
             c->name);
    st = comi_pipeline_answer(ctx, pl, ctext, qtext, &bad, &r);
    test_check(name, st == COMI_ERR_LIMIT && strstr(comi_errmsg(ctx), "MiB"), "%d %s", st,
               comi_errmsg(ctx));
    test_answer_limits(pl, c, ctext, qtext, ap);
    test_stage_limits(pl, c);
    comi_pipeline_free(pl);
}

int main(void) {
    golden = test_golden_dir();
    comi_ctx *ctx = comi_ctx_new(NULL);
    comi_pipeline_free(NULL);
    comi_answer_result_free(NULL);
    test_pass("free(NULL) is a no-op");
    if (!golden) {
        test_skip("pipeline golden cases", "golden data not found (set COMI_GOLDEN)");
    } else {
        static const char *const cases[] = {"tiny-llama-spm", "tiny-qwen2-bpe"};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            golden_case c;
            if (!load_case(cases[i], &c)) {
                test_fail(cases[i], "cannot read the golden files");
                free_case(&c);
                continue;
            }
            test_merge_stage(ctx, &c);
            comi_model *m = NULL;
            if (comi_model_load(ctx, test_pathf("%s/forward/models/%s.gguf", golden, cases[i]),
                                NULL, &m) == COMI_OK) {
                test_decoder_input(ctx, m, &c);
                test_session_limits(m, cases[i]);
                comi_model_free(m);
            } else {
                test_fail(cases[i], "model load: %s", comi_errmsg(ctx));
            }
            test_end_to_end(ctx, &c);
            free_case(&c);
        }
    }
    comi_ctx_free(ctx);
    return test_n_failed ? 1 : 0;
}
