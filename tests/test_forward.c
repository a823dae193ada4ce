/* test_forward.c — the transformer forward pass against llama.cpp's
 * outputs in $COMI_GOLDEN/forward (tolerances from its README): tiny llama /
 * qwen2 / qwen3 models from GGUF and from their Hugging Face twins (hidden
 * states after all layers and after 2, logits of the last two positions,
 * first 4 greedy ids), every quantized llama type (logits NMSE against the
 * F32 golden logits), thread-count independence, KV-cache generation versus
 * recomputation, embedding input versus id input, and bad input. */
#include "comi.h"
#include "formats/gguf.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static const char *golden;
static const char *g_pfx = ""; /* test-name prefix: "" or "kvf16_" (half KV cache) */

static comi_ctx *ctx_threads(int nt) {
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = nt;
    return comi_ctx_new(&cp);
}

/* Runs ids through the model: hidden (n x d) after n_layers (0 = all), and
 * when logits != NULL the logits of the last n_logits positions. */
static comi_status run(comi_ctx *ctx, const comi_model *m, const int32_t *ids, int64_t n,
                       int32_t n_layers, float *hidden, float *logits, int64_t n_logits) {
    comi_session *s;
    comi_status st = comi_session_new(ctx, m, n + 20, &s);
    if (st) return st;
    comi_eval_params ep = comi_eval_default_params();
    ep.n_layers = n_layers;
    ep.hidden_out = hidden;
    ep.logits_out = logits;
    ep.n_logits = logits ? n_logits : 0;
    st = comi_session_eval(ctx, s, ids, NULL, n, &ep);
    comi_session_free(s);
    return st;
}

static void test_tiny(comi_ctx *ctx, const char *model, bool hf) {
    char tag[96];
    snprintf(tag, sizeof tag, "%s%s%s", g_pfx, model, hf ? ".hf" : "");
    comi_model *m = NULL;
    const char *mp = test_pathf("%s/forward/models/%s%s", golden, model, hf ? ".hf" : ".gguf");
    comi_status st = comi_model_load(ctx, mp, NULL, &m);
    if (!test_check(test_pathf("%s_load", tag), st == COMI_OK, "%s", comi_errmsg(ctx))) return;
    comi_model_info info;
    comi_model_get_info(m, &info);
    int64_t d = info.n_embd, nv = info.n_vocab;
    const comi_tokenizer *tok = comi_model_tokenizer(m);
    if (!hf) test_check(test_pathf("%s_has_tokenizer", tag), tok != NULL, "no tokenizer attached");
    for (int p = 0; p < 3; p++) {
        int64_t n = 0;
        int32_t *ids = test_read_ids(test_pathf("%s/forward/%s/p%d.ids.txt", golden, model, p), &n);
        size_t nh = 0, nh2 = 0, nl = 0;
        float *gh =
            test_read_f32(test_pathf("%s/forward/%s/p%d.hidden.f32", golden, model, p), &nh);
        float *gh2 = test_read_f32(
            test_pathf("%s/forward/%s/p%d.first2.hidden.f32", golden, model, p), &nh2);
        float *gl =
            test_read_f32(test_pathf("%s/forward/%s/p%d.logits_last2.f32", golden, model, p), &nl);
        int64_t ng = 0;
        int32_t *gg =
            test_read_ids(test_pathf("%s/forward/%s/p%d.greedy.txt", golden, model, p), &ng);
        if (!ids || !gh || !gh2 || !gl || !gg || nh != (size_t)(n * d) || nh2 != nh ||
            nl != (size_t)(2 * nv) || ng < 4) {
            test_fail(test_pathf("%s_p%d_golden", tag, p), "golden files missing or of wrong size");
            goto next;
        }
        if (tok) {
            size_t tl;
            char *txt = test_read_file(test_pathf("%s/forward/%s/p%d.txt", golden, model, p), &tl);
            int32_t *tids = NULL;
            size_t ntids = 0;
            st = txt ? comi_tokenize(ctx, tok, txt, tl, NULL, &tids, &ntids) : COMI_ERR_IO;
            test_check(test_pathf("%s_p%d_tokenize_matches_ids", tag, p),
                       st == COMI_OK && ntids == (size_t)n && !memcmp(tids, ids, (size_t)n * 4),
                       "%s (%zu ids, want %lld)", comi_errmsg(ctx), ntids, (long long)n);
            comi_free(tids);
            free(txt);
        }
        float *h = malloc(nh * sizeof *h), *lg = malloc(nl * sizeof *lg);
        st = run(ctx, m, ids, n, 0, h, lg, 2);
        if (test_check(test_pathf("%s_p%d_eval", tag, p), st == COMI_OK, "%s", comi_errmsg(ctx))) {
            test_check_nmse(test_pathf("%s_p%d_hidden", tag, p), h, gh, nh, 1e-5);
            test_check_nmse(test_pathf("%s_p%d_logits_last2", tag, p), lg, gl, nl, 1e-5);
        }
        st = run(ctx, m, ids, n, 2, h, NULL, 0);
        if (test_check(test_pathf("%s_p%d_eval_2_layers", tag, p), st == COMI_OK, "%s",
                       comi_errmsg(ctx)))
            test_check_nmse(test_pathf("%s_p%d_first2_hidden", tag, p), h, gh2, nh, 1e-5);

        comi_session *s;
        int32_t out[16];
        int32_t n_out = 0;
        comi_generate_params gp = comi_generate_default_params();
        gp.max_new_tokens = 16;
        gp.stop_at_eos = false;
        st = comi_session_new(ctx, m, n + 16, &s);
        if (!st) st = comi_session_eval(ctx, s, ids, NULL, n, NULL);
        if (!st) st = comi_generate(ctx, s, &gp, out, &n_out);
        if (test_check(test_pathf("%s_p%d_generate", tag, p), st == COMI_OK && n_out == 16,
                       "%s (n_out %d)", comi_errmsg(ctx), n_out)) {
            int same4 = !memcmp(out, gg, 4 * sizeof *out);
            int same = 0;
            while (same < 16 && out[same] == gg[same])
                same++;
            printf("# %s_p%d greedy: %d of 16 ids match llama.cpp\n", tag, p, same);
            test_check(test_pathf("%s_p%d_greedy_first4", tag, p), same4,
                       "got %d %d %d %d, want %d %d %d %d", out[0], out[1], out[2], out[3], gg[0],
                       gg[1], gg[2], gg[3]);
        }
        comi_session_free(s);
        free(h);
        free(lg);
    next:
        free(ids);
        free(gh);
        free(gh2);
        free(gl);
        free(gg);
    }
    comi_model_free(m);
}

static void test_quant(comi_ctx *ctx) {
    static const struct {
        const char *type;
        double llama_cpp_nmse; /* llama.cpp's logits NMSE vs F32 (golden README) */
    } types[] = {{"F32", 0},       {"F16", 5.7e-7},   {"BF16", 1.17e-4}, {"Q8_0", 1.05e-3},
                 {"Q6_K", 7.4e-3}, {"Q5_K", 3.03e-2}, {"Q4_K", 1.12e-1}, {"Q4_0", 1.60e-1}};
    int64_t n = 0;
    int32_t *ids = test_read_ids(test_pathf("%s/forward/quant-llama/ids.txt", golden), &n);
    size_t n_gl = 0, n_gh = 0;
    float *gl = test_read_f32(test_pathf("%s/forward/quant-llama/F32.logits.f32", golden), &n_gl);
    float *gh = test_read_f32(test_pathf("%s/forward/quant-llama/F32.hidden.f32", golden), &n_gh);
    if (!ids || !gl || !gh) {
        test_fail("quant_golden", "golden quant-llama files missing");
        free(ids);
        free(gl);
        free(gh);
        return;
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const char *ty = types[t].type;
        comi_model *m = NULL;
        comi_status st = comi_model_load(
            ctx, test_pathf("%s/forward/models/quant-llama.%s.gguf", golden, ty), NULL, &m);
        if (!test_check(test_pathf("%squant_%s_load", g_pfx, ty), st == COMI_OK, "%s",
                        comi_errmsg(ctx)))
            continue;
        comi_model_info info;
        comi_model_get_info(m, &info);
        size_t nh = (size_t)(n * info.n_embd), nl = (size_t)(n * info.n_vocab);
        if (nh != n_gh || nl != n_gl) {
            test_fail(test_pathf("%squant_%s_shape", g_pfx, ty),
                      "golden sizes do not match the model");
            comi_model_free(m);
            continue;
        }
        float *h = malloc(nh * sizeof *h), *lg = malloc(nl * sizeof *lg);
        st = run(ctx, m, ids, n, 0, h, lg, n);
        if (test_check(test_pathf("%squant_%s_eval", g_pfx, ty), st == COMI_OK, "%s",
                       comi_errmsg(ctx))) {
            double tol = 1.5 * types[t].llama_cpp_nmse + 1e-6;
            test_check_nmse(test_pathf("%squant_%s_logits_vs_F32", g_pfx, ty), lg, gl, nl, tol);
            if (t == 0) test_check_nmse(test_pathf("%squant_F32_hidden", g_pfx), h, gh, nh, 1e-6);
            size_t nown;
            float *own = test_read_f32(
                test_pathf("%s/forward/quant-llama/%s.logits.f32", golden, ty), &nown);
            if (own && nown == nl)
                printf("# %squant_%s logits nmse vs llama.cpp's %s logits: %.3g\n", g_pfx, ty, ty,
                       test_nmse(lg, own, nl));
            free(own);
        }
        if (t == 0) {
            size_t n2;
            float *g2 = test_read_f32(
                test_pathf("%s/forward/quant-llama/F32.first2.hidden.f32", golden), &n2);
            st = run(ctx, m, ids, n, 2, h, NULL, 0);
            if (g2 && n2 == nh && st == COMI_OK)
                test_check_nmse(test_pathf("%squant_F32_first2_hidden", g_pfx), h, g2, nh, 1e-6);
            else
                test_fail(test_pathf("%squant_F32_first2_hidden", g_pfx), "%s",
                          st ? comi_errmsg(ctx) : "golden missing");
            free(g2);
            int64_t ng = 0;
            int32_t *gg =
                test_read_ids(test_pathf("%s/forward/quant-llama/F32.greedy.txt", golden), &ng);
            comi_session *s;
            int32_t out[8], n_out = 0;
            comi_generate_params gp = comi_generate_default_params();
            gp.max_new_tokens = 8;
            gp.stop_at_eos = false;
            st = comi_session_new(ctx, m, n + 8, &s);
            if (!st) st = comi_session_eval(ctx, s, ids, NULL, n, NULL);
            if (!st) st = comi_generate(ctx, s, &gp, out, &n_out);
            test_check(test_pathf("%squant_F32_greedy_first4", g_pfx),
                       st == COMI_OK && gg && ng >= 4 && n_out >= 4 && !memcmp(out, gg, 16), "%s",
                       st ? comi_errmsg(ctx) : "ids differ");
            comi_session_free(s);
            free(gg);
        }
        free(h);
        free(lg);
        comi_model_free(m);
    }
    free(ids);
    free(gl);
    free(gh);
}

/* The half cache is in use: half the cache bytes, and logits that differ
 * from the float cache's (by rounding only: the goldens above bound it),
 * also for single-position steps after a prompt (decode). */
static void test_kv_f16(comi_ctx *ctx, comi_ctx *ctx16) {
    comi_model *m = NULL;
    comi_status st = comi_model_load(
        ctx, test_pathf("%s/forward/models/quant-llama.F32.gguf", golden), NULL, &m);
    if (!test_check("kvf16_load", st == COMI_OK, "%s", comi_errmsg(ctx))) return;
    comi_model_info info;
    comi_model_get_info(m, &info);
    const int64_t N = 4096;
    uint64_t b32 = comi_session_bytes(ctx, m, N), b16 = comi_session_bytes(ctx16, m, N);
    uint64_t kv32 =
        (uint64_t)info.n_layer * 2 * (uint64_t)N * (uint64_t)(info.n_head_kv * info.head_dim) * 4;
    test_check("kvf16_session_bytes", comi_ctx_kv_type(ctx16) == COMI_KV_F16 &&
                                         b32 == comi_model_session_bytes(m, N) &&
                                         b32 - b16 >= kv32 / 2 - kv32 / 16 && b32 - b16 <= kv32 / 2,
               "f32 %llu bytes, f16 %llu bytes, f32 cache %llu", (unsigned long long)b32,
               (unsigned long long)b16, (unsigned long long)kv32);
    int64_t n = 0;
    int32_t *ids = test_read_ids(test_pathf("%s/forward/quant-llama/ids.txt", golden), &n);
    size_t nv = (size_t)info.n_vocab;
    float *l32 = malloc(2 * nv * 4), *l16 = malloc(2 * nv * 4);
    comi_session *s32 = NULL, *s16 = NULL;
    comi_eval_params ep = comi_eval_default_params();
    bool ok = ids && n > 8 && !comi_session_new(ctx, m, n, &s32) &&
              !comi_session_new(ctx16, m, n, &s16);
    /* prompt minus 2, then two single positions (the decode path) */
    for (int c = 0; ok && c < 2; c++) {
        comi_session *s = c ? s16 : s32;
        comi_ctx *cx = c ? ctx16 : ctx;
        float *out = c ? l16 : l32;
        ok = !comi_session_eval(cx, s, ids, NULL, n - 2, &ep);
        for (int k = 0; ok && k < 2; k++) {
            ok = !comi_session_eval(cx, s, ids + n - 2 + k, NULL, 1, &ep);
            if (ok) memcpy(out + (size_t)k * nv, comi_session_logits(s), nv * 4);
        }
    }
    double e = ok ? test_nmse(l16, l32, 2 * nv) : -1;
    printf("# kv f16 vs f32 cache, decode logits nmse %.3g\n", e);
    test_check("kvf16_decode_rounds_but_stays_close", ok && e > 0 && e < 1e-5, "%s nmse %g",
               ok ? "" : comi_errmsg(ctx16), e);
    comi_session_free(s32);
    comi_session_free(s16);
    free(l32);
    free(l16);
    free(ids);
    comi_model_free(m);
}

/* 1, 2 and 3 threads give bit-identical hidden states and logits. */
static void test_threads(void) {
    const char *mp = test_pathf("%s/forward/models/tiny-qwen2-bpe.gguf", golden);
    int64_t n = 0;
    int32_t *ids = test_read_ids(test_pathf("%s/forward/tiny-qwen2-bpe/p1.ids.txt", golden), &n);
    float *res_h[3] = {0}, *res_l[3] = {0};
    int ok = ids != NULL;
    for (int t = 0; t < 3 && ok; t++) {
        comi_ctx *ctx = ctx_threads(t + 1);
        comi_model *m = NULL;
        if (comi_model_load(ctx, mp, NULL, &m)) {
            ok = 0;
        } else {
            comi_model_info info;
            comi_model_get_info(m, &info);
            res_h[t] = malloc((size_t)(n * info.n_embd) * sizeof(float));
            res_l[t] = malloc((size_t)(n * info.n_vocab) * sizeof(float));
            if (run(ctx, m, ids, n, 0, res_h[t], res_l[t], n)) ok = 0;
            if (t > 0 && ok)
                ok = !memcmp(res_h[0], res_h[t], (size_t)(n * info.n_embd) * sizeof(float)) &&
                     !memcmp(res_l[0], res_l[t], (size_t)(n * info.n_vocab) * sizeof(float));
        }
        comi_model_free(m);
        comi_ctx_free(ctx);
    }
    test_check("threads_1_2_3_bit_identical", ok, "results differ between thread counts");
    /* the decode path of a quantized model (Q8_K activations, dot kernels) */
    int32_t gen[3][8];
    const int32_t qids[5] = {1, 284, 498, 466, 99};
    ok = 1;
    for (int t = 0; t < 3 && ok; t++) {
        comi_ctx *ctx = ctx_threads(t + 1);
        comi_model *m = NULL;
        comi_session *s = NULL;
        int32_t n_out = 0;
        comi_generate_params gp = comi_generate_default_params();
        gp.max_new_tokens = 8;
        gp.stop_at_eos = false;
        ok = !comi_model_load(ctx, test_pathf("%s/forward/models/quant-llama.Q4_K.gguf", golden),
                              NULL, &m) &&
             !comi_session_new(ctx, m, 5 + 8, &s) &&
             !comi_session_eval(ctx, s, qids, NULL, 5, NULL) &&
             !comi_generate(ctx, s, &gp, gen[t], &n_out) && n_out == 8;
        if (!ok) printf("# %s\n", comi_errmsg(ctx));
        if (ok && t > 0) ok = !memcmp(gen[0], gen[t], sizeof gen[0]);
        comi_session_free(s);
        comi_model_free(m);
        comi_ctx_free(ctx);
    }
    test_check("threads_1_2_3_generate_q4k_identical", ok, "generated ids differ");
    for (int t = 0; t < 3; t++) {
        free(res_h[t]);
        free(res_l[t]);
    }
    free(ids);
}

/* Generation with the KV cache (one position per step) equals recomputing
 * the whole sequence without a cache; splitting a prompt over two evals
 * equals one eval; embedding rows equal ids. */
static void test_cache(comi_ctx *ctx) {
    const char *mp = test_pathf("%s/forward/models/tiny-llama-spm.gguf", golden);
    int64_t n = 0;
    int32_t *ids = test_read_ids(test_pathf("%s/forward/tiny-llama-spm/p1.ids.txt", golden), &n);
    comi_model *m = NULL;
    if (!ids || comi_model_load(ctx, mp, NULL, &m)) {
        test_fail("cache_setup", "%s", comi_errmsg(ctx));
        free(ids);
        return;
    }
    comi_model_info info;
    comi_model_get_info(m, &info);
    const int32_t G = 8;
    int64_t d = info.n_embd, nv = info.n_vocab;
    comi_session *s;
    int32_t gen[8], n_out = 0;
    comi_generate_params gp = comi_generate_default_params();
    gp.max_new_tokens = G;
    gp.stop_at_eos = false;
    gp.repetition_penalty = 1.3f;
    comi_status st = comi_session_new(ctx, m, n + G, &s);
    if (!st) st = comi_session_eval(ctx, s, ids, NULL, n, NULL);
    if (!st) st = comi_generate(ctx, s, &gp, gen, &n_out);
    float *cached_last = malloc((size_t)nv * sizeof(float));
    if (!st) memcpy(cached_last, comi_session_logits(s), (size_t)nv * sizeof(float));
    test_check("cache_generate", st == COMI_OK && n_out == G, "%s", comi_errmsg(ctx));
    test_check("cache_n_past", comi_session_n_past(s) == n + G - 1, "n_past %lld",
               (long long)comi_session_n_past(s));
    comi_session_free(s);

    /* recompute: every step from scratch, penalty applied by hand */
    int32_t *seq = malloc((size_t)(n + G) * sizeof *seq);
    memcpy(seq, ids, (size_t)n * sizeof *seq);
    float *lg = malloc((size_t)nv * sizeof *lg);
    int ok = st == COMI_OK;
    for (int32_t g = 0; g < G && ok; g++) {
        if (run(ctx, m, seq, n + g, 0, NULL, lg, 1)) {
            ok = 0;
            break;
        }
        if (g == G - 1) {
            double e = test_nmse(cached_last, lg, (size_t)nv);
            printf("# cache vs recompute last logits nmse %.3g\n", e);
            test_check("cache_logits_vs_recompute", e < 1e-9, "nmse %.3g", e);
        }
        for (int32_t j = 0; j < g; j++) {
            float *x = &lg[seq[n + j]];
            bool dup = false;
            for (int32_t i = 0; i < j; i++)
                dup |= seq[n + i] == seq[n + j];
            if (!dup) *x = *x > 0 ? *x / 1.3f : *x * 1.3f;
        }
        int32_t best = 0;
        for (int64_t v = 1; v < nv; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        seq[n + g] = best;
    }
    test_check("cache_generate_equals_recompute", ok && !memcmp(seq + n, gen, (size_t)G * 4),
               "ids differ from recomputation");

    /* split prompt and embeddings input */
    float *h1 = malloc((size_t)(n * d) * sizeof(float)),
          *h2 = malloc((size_t)(n * d) * sizeof(float));
    float *emb = malloc((size_t)(n * d) * sizeof(float));
    ok = run(ctx, m, ids, n, 0, h1, NULL, 0) == COMI_OK;
    st = comi_session_new(ctx, m, n, &s);
    int64_t half = n / 2;
    comi_eval_params ep = comi_eval_default_params();
    ep.hidden_out = h2;
    if (!st) st = comi_session_eval(ctx, s, ids, NULL, half, &ep);
    ep.hidden_out = h2 + half * d;
    if (!st) st = comi_session_eval(ctx, s, ids + half, NULL, n - half, &ep);
    double e = test_nmse(h2, h1, (size_t)(n * d));
    test_check("split_prompt_equals_whole", ok && st == COMI_OK && e < 1e-10, "%s nmse %.3g",
               comi_errmsg(ctx), e);
    comi_session_reset(s);
    st = comi_model_embed(ctx, m, ids, n, emb);
    ep.hidden_out = h2;
    if (!st) st = comi_session_eval(ctx, s, NULL, emb, n, &ep);
    test_check("embd_input_equals_ids", st == COMI_OK && !memcmp(h1, h2, (size_t)(n * d) * 4), "%s",
               comi_errmsg(ctx));
    /* bad input */
    comi_session_reset(s);
    int32_t bad[2] = {1, (int32_t)nv};
    st = comi_session_eval(ctx, s, bad, NULL, 2, NULL);
    test_check("eval_id_out_of_vocab",
               st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "outside the vocabulary"),
               "status %d: %s", st, comi_errmsg(ctx));
    ep = comi_eval_default_params();
    ep.n_layers = info.n_layer + 1;
    st = comi_session_eval(ctx, s, ids, NULL, 2, &ep);
    test_check("eval_layers_out_of_range", st == COMI_ERR_INVALID_ARG, "status %d", st);
    st = comi_session_eval(ctx, s, ids, NULL, n, NULL);
    if (!st) st = comi_session_eval(ctx, s, ids, NULL, 1, NULL);
    test_check("eval_over_capacity", st == COMI_ERR_LIMIT, "status %d: %s", st, comi_errmsg(ctx));
    comi_session_reset(s);
    ep.n_layers = 2;
    st = comi_session_eval(ctx, s, ids, NULL, 3, &ep);
    if (!st) st = comi_session_eval(ctx, s, ids, NULL, 3, NULL);
    test_check("eval_deeper_than_cache", st == COMI_ERR_INVALID_ARG, "status %d", st);
    comi_session_free(s);
    free(h1);
    free(h2);
    free(emb);
    free(seq);
    free(lg);
    free(cached_last);
    free(ids);
    comi_model_free(m);
}

static void test_bad_files(comi_ctx *ctx) {
    comi_model *m = NULL;
    comi_status st = comi_model_load(ctx, "/nonexistent/model.gguf", NULL, &m);
    test_check("load_missing_file",
               st != COMI_OK && m == NULL && strstr(comi_errmsg(ctx), "nonexistent"),
               "status %d: %s", st, comi_errmsg(ctx));
    size_t len;
    char *bytes = test_read_file(test_pathf("%s/forward/models/tiny-qwen3-bpe.gguf", golden), &len);
    char tmp[] = "/tmp/comi_test_fwd_XXXXXX";
    int fd = mkstemp(tmp);
    if (!bytes || fd < 0) {
        test_fail("load_truncated", "setup failed");
        free(bytes);
        return;
    }
    FILE *f = fdopen(fd, "wb");
    fwrite(bytes, 1, len - 1000, f);
    fclose(f);
    st = comi_model_load(ctx, tmp, NULL, &m);
    test_check("load_truncated", st != COMI_OK && m == NULL, "status %d", st);
    remove(tmp);
    free(bytes);
    /* a quant tensor-type / arch mismatch: a tokenizer-only GGUF has no weights */
    st = comi_model_load(ctx, test_pathf("%s/tokenizer/ggml-vocab-llama-spm.gguf", golden), NULL,
                         &m);
    test_check("load_vocab_only_gguf", st != COMI_OK && m == NULL, "status %d: %s", st,
               comi_errmsg(ctx));
    printf("# vocab-only load message: %s\n", comi_errmsg(ctx));
}

/* Rewrites a tiny GGUF with one change and checks the load error names it:
 * drop_tensor / shrink_tensor (ne[1] - 1 rows, last row dropped) / a
 * metadata key removed or a string replaced. */
typedef struct mutation {
    const char *name;
    const char *drop_tensor;
    const char *shrink_tensor;
    const char *drop_key;
    const char *set_key, *set_val;
    const char *expect; /* substring of the error message */
} mutation;

static void test_mutations(comi_ctx *ctx) {
    static const mutation muts[] = {
        {"load_missing_tensor_named", "blk.1.ffn_up.weight", NULL, NULL, NULL, NULL,
         "missing tensor 'blk.1.ffn_up.weight'"},
        {"load_wrong_shape_named", NULL, "blk.0.attn_k.weight", NULL, NULL, NULL,
         "'blk.0.attn_k.weight' has shape"},
        {"load_missing_qk_norm_named", "blk.2.attn_k_norm.weight", NULL, NULL, NULL, NULL,
         "attn_k_norm"},
        {"load_missing_block_count", NULL, NULL, "qwen3.block_count", NULL, NULL, "block_count"},
        {"load_unsupported_arch", NULL, NULL, NULL, "general.architecture", "gpt2", "gpt2"},
    };
    comi_err e;
    comi_err_clear(&e);
    gguf_file *f = NULL;
    if (gguf_open(&e, test_pathf("%s/forward/models/tiny-qwen3-bpe.gguf", golden), &f)) {
        test_fail("load_mutations", "%s", e.msg);
        return;
    }
    char tmp[] = "/tmp/comi_test_mut_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) close(fd);
    for (size_t k = 0; k < sizeof muts / sizeof muts[0]; k++) {
        const mutation *mu = &muts[k];
        gguf_writer *w = gguf_writer_new();
        comi_status st = COMI_OK;
        for (int64_t i = 0; i < gguf_n_kv(f) && !st; i++) {
            const gguf_kv *kv = gguf_kv_at(f, i);
            if (mu->drop_key && !strcmp(kv->key, mu->drop_key)) continue;
            if (mu->set_key && !strcmp(kv->key, mu->set_key))
                st = gguf_writer_set_str(&e, w, kv->key, mu->set_val);
            else
                st = gguf_writer_copy_kv(&e, w, kv);
        }
        for (int64_t i = 0; i < gguf_n_tensors(f) && !st; i++) {
            const comi_tensor *t = gguf_tensor_at(f, i);
            if (mu->drop_tensor && !strcmp(t->name, mu->drop_tensor)) continue;
            int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
            size_t nb = t->nbytes;
            if (mu->shrink_tensor && !strcmp(t->name, mu->shrink_tensor)) {
                nb -= nb / (size_t)ne[1];
                ne[1] -= 1;
            }
            st = gguf_writer_add_tensor(&e, w, t->name, t->type, t->n_dims, ne, t->data, nb, true);
        }
        if (!st) st = gguf_writer_write(&e, w, tmp);
        gguf_writer_free(w);
        if (st) {
            test_fail(mu->name, "writing the mutated file: %s", e.msg);
            continue;
        }
        comi_model *m = NULL;
        st = comi_model_load(ctx, tmp, NULL, &m);
        printf("# %s: %s\n", mu->name, comi_errmsg(ctx));
        test_check(mu->name, st != COMI_OK && m == NULL && strstr(comi_errmsg(ctx), mu->expect),
                   "status %d: '%s' does not mention '%s'", st, comi_errmsg(ctx), mu->expect);
        comi_model_free(m);
    }
    remove(tmp);
    gguf_close(f);
}

int main(void) {
    golden = test_golden_dir();
    if (!golden) {
        test_skip("forward_golden", "golden directory not found (set COMI_GOLDEN)");
        return test_exit();
    }
    comi_ctx *ctx = ctx_threads(2);
    static const char *tiny[] = {"tiny-llama-spm", "tiny-qwen2-bpe", "tiny-qwen3-bpe"};
    for (int i = 0; i < 3; i++) {
        test_tiny(ctx, tiny[i], false);
        test_tiny(ctx, tiny[i], true);
    }
    test_quant(ctx);
    /* the same goldens and tolerances with a half-precision KV cache */
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 2;
    cp.kv_type = COMI_KV_F16;
    comi_ctx *ctx16 = comi_ctx_new(&cp);
    g_pfx = "kvf16_";
    for (int i = 0; i < 3; i++)
        test_tiny(ctx16, tiny[i], false);
    test_quant(ctx16);
    g_pfx = "";
    test_kv_f16(ctx, ctx16);
    comi_ctx_free(ctx16);
    test_threads();
    test_cache(ctx);
    test_bad_files(ctx);
    test_mutations(ctx);
    comi_ctx_free(ctx);
    return test_exit();
}
