/* test_train.c — COMI training against PyTorch autograd
 * (golden/train/: per-example losses, every gradient, one AdamW step, a
 * 12-step trajectory, for a llama and a qwen2 tiny model), plus central
 * finite differences of our own on every kind of tensor (encoder, fusion,
 * LoRA, biases, q/k norms of a qwen3 model, embeddings) and on the kernels
 * (RMSNorm, both RoPE layouts, attention). */
#include "comi.h"
#include "base/common.h"
#include "comi/train.h"
#include "formats/safetensors.h"
#include "runtime/model.h"
#include "test.h"

#include <jansson.h>
#include <stdlib.h>

static const char *golden;

typedef struct gex {
    int32_t *ids[3];
    int64_t n[3];
} gex;

static int32_t *json_ids(json_t *a, int64_t *n) {
    *n = (int64_t)json_array_size(a);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int64_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return v;
}

static tr_example ex_of(const gex *g) {
    return (tr_example){.ctx = g->ids[0],
                        .q = g->ids[1],
                        .ans = g->ids[2],
                        .n_ctx = g->n[0],
                        .n_q = g->n[1],
                        .n_ans = g->n[2]};
}

static double nmse_f(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

/* A golden tensor as float32 (F32 or F64 stored), or NULL. */
static float *golden_tensor(st_model *st, const char *name, int64_t n) {
    const comi_tensor *t = st_find_tensor(st, name);
    if (!t) return NULL;
    int64_t tn = 1;
    for (int d = 0; d < t->n_dims; d++) tn *= t->ne[d];
    if (tn != n) return NULL;
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = t->type == COMI_TYPE_F64 ? (float)((const double *)t->data)[i]
                                        : ((const float *)t->data)[i];
    return v;
}

static tr_model *golden_model(comi_ctx *ctx, const char *dir, json_t *cfg, comi_model **base) {
    char p[1024];
    snprintf(p, sizeof p, "%s/forward/models/%s", golden,
             json_string_value(json_object_get(cfg, "base")));
    if (comi_model_load(ctx, p, NULL, base)) {
        printf("load %s: %s\n", p, comi_errmsg(ctx));
        return NULL;
    }
    tr_opts o = tr_default_opts();
    o.encoder_layers = (int32_t)json_integer_value(json_object_get(cfg, "encoder_layers"));
    o.fusion_layers = (int32_t)json_integer_value(json_object_get(cfg, "fusion_layers"));
    o.merge_size = json_integer_value(json_object_get(cfg, "merge_size"));
    o.lora_r = json_integer_value(json_object_get(cfg, "lora_r"));
    o.lora_alpha = (float)json_number_value(json_object_get(cfg, "lora_alpha"));
    o.lora_dropout = (float)json_number_value(json_object_get(cfg, "lora_dropout"));
    comi_err e = {0};
    tr_model *m = NULL;
    if (tr_model_new(&e, *base, &o, &m)) {
        printf("tr_model_new: %s\n", e.msg);
        return NULL;
    }
    snprintf(p, sizeof p, "%s/init.safetensors", dir);
    if (tr_model_load(&e, m, p, true)) {
        printf("tr_model_load: %s\n", e.msg);
        tr_model_free(m);
        return NULL;
    }
    return m;
}

static void test_golden(comi_ctx *ctx, const char *name) {
    char dir[1024], p[1100], tn[256];
    snprintf(dir, sizeof dir, "%s/train/%s", golden, name);
    snprintf(p, sizeof p, "%s/golden.json", dir);
    json_error_t je;
    json_t *g = json_load_file(p, 0, &je);
    snprintf(tn, sizeof tn, "train %s: golden.json", name);
    if (!test_check(tn, g != NULL, "%s: %s", p, je.text)) return;
    comi_model *base = NULL;
    tr_model *m = golden_model(ctx, dir, g, &base);
    snprintf(tn, sizeof tn, "train %s: module from base + init.safetensors", name);
    if (!test_check(tn, m != NULL, "see above")) {
        json_decref(g);
        comi_model_free(base);
        return;
    }
    json_t *exs = json_object_get(g, "examples");
    int n_ex = (int)json_array_size(exs);
    gex *G = calloc((size_t)n_ex, sizeof *G);
    for (int i = 0; i < n_ex; i++) {
        json_t *x = json_array_get(exs, i);
        G[i].ids[0] = json_ids(json_object_get(x, "context_ids"), &G[i].n[0]);
        G[i].ids[1] = json_ids(json_object_get(x, "question_ids"), &G[i].n[1]);
        G[i].ids[2] = json_ids(json_object_get(x, "answer_ids"), &G[i].n[2]);
    }
    comi_err e = {0};
    /* losses and gradients of one accumulated step */
    tr_zero_grad(m);
    double worst = 0;
    bool ok = true;
    for (int i = 0; i < n_ex; i++) {
        tr_example ex = ex_of(&G[i]);
        double loss;
        int64_t n_mem = 0;
        if (tr_example_step(&e, ctx, m, &ex, true, 1.0f / (float)n_ex, 0, &loss, &n_mem)) {
            printf("step: %s\n", e.msg);
            ok = false;
            break;
        }
        double want = json_number_value(json_array_get(json_object_get(g, "losses"), i));
        double rel = fabs(loss - want) / fabs(want);
        printf("  %s example %d: loss %.9f golden %.9f rel %.2e, memories %lld\n", name, i, loss,
               want, rel, (long long)n_mem);
        if (rel > worst) worst = rel;
        int64_t want_mem = json_integer_value(json_array_get(json_object_get(g, "n_memory"), i));
        if (n_mem != want_mem) ok = false;
    }
    snprintf(tn, sizeof tn, "train %s: per-example losses (rel <= 1e-5) and memory counts", name);
    test_check(tn, ok && worst <= 1e-5, "worst relative error %.3e", worst);

    snprintf(p, sizeof p, "%s/grad.safetensors", dir);
    st_model *gs = NULL;
    if (st_open_file(&e, p, &gs)) {
        snprintf(tn, sizeof tn, "train %s: grad.safetensors", name);
        test_fail(tn, "%s", e.msg);
    } else {
        double wn = 0;
        const char *wname = "";
        int n_cmp = 0;
        for (int32_t i = 0; i < m->n_params; i++) {
            tr_param *pr = &m->params[i];
            float *want = golden_tensor(gs, pr->name, pr->n);
            if (!want) {
                printf("  missing golden gradient %s\n", pr->name);
                wn = INFINITY;
                wname = pr->name;
                continue;
            }
            double v = nmse_f(pr->g, want, pr->n);
            if (!(v <= wn)) {
                wn = v;
                wname = pr->name;
            }
            n_cmp++;
            free(want);
        }
        snprintf(tn, sizeof tn, "train %s: all %d gradient tensors (NMSE <= 1e-5)", name,
                 m->n_params);
        printf("  %s: %d gradients compared, worst NMSE %.3e (%s)\n", name, n_cmp, wn, wname);
        test_check(tn, n_cmp == (int)st_n_tensors(gs) && wn <= 1e-5, "worst NMSE %.3e at %s",
                   wn, wname);
        double gn = tr_grad_norm(m),
               gw = json_number_value(json_object_get(g, "grad_norm"));
        snprintf(tn, sizeof tn, "train %s: global gradient norm", name);
        test_check(tn, fabs(gn - gw) <= 1e-4 * gw, "%.9f vs golden %.9f", gn, gw);

        /* one AdamW step from the golden mid-training state, on the golden gradient */
        json_t *ad = json_object_get(g, "adamw");
        tr_adamw o = {.lr = json_number_value(json_object_get(ad, "lr")),
                      .beta1 = json_number_value(json_object_get(ad, "beta1")),
                      .beta2 = json_number_value(json_object_get(ad, "beta2")),
                      .eps = json_number_value(json_object_get(ad, "eps")),
                      .weight_decay = json_number_value(json_object_get(ad, "weight_decay"))};
        double clip = json_number_value(json_object_get(ad, "clip_scale"));
        int64_t t = json_integer_value(json_object_get(ad, "step"));
        snprintf(p, sizeof p, "%s/adamw.safetensors", dir);
        st_model *as = NULL;
        /* the clip scale as the Trainer computes it from the golden gradients */
        double gsum = 0;
        for (int64_t i = 0; i < st_n_tensors(gs); i++) {
            const comi_tensor *ti = st_tensor_at(gs, i);
            int64_t n = ti->ne[0] * ti->ne[1] * ti->ne[2] * ti->ne[3];
            float *v = golden_tensor(gs, ti->name, n);
            for (int64_t j = 0; j < n; j++) gsum += (double)v[j] * v[j];
            free(v);
        }
        double my_clip = 1.0 / (sqrt(gsum) + 1e-6);
        snprintf(tn, sizeof tn, "train %s: clip scale max_norm / (norm + 1e-6)", name);
        test_check(tn, fabs(my_clip - clip) <= 1e-6 * clip, "%.12f vs golden %.12f", my_clip,
                   clip);
        if (st_open_file(&e, p, &as)) {
            snprintf(tn, sizeof tn, "train %s: adamw.safetensors", name);
            test_fail(tn, "%s", e.msg);
        } else {
            json_t *tl = json_object_get(ad, "tensors");
            double worst_a = 0;
            const char *wa = "";
            int n_a = 0;
            for (size_t i = 0; i < json_array_size(tl); i++) {
                const char *k = json_string_value(json_array_get(tl, i));
                tr_param *pr = tr_find(m, k);
                if (!pr || !pr->g) {
                    worst_a = INFINITY;
                    wa = k;
                    continue;
                }
                char kn[300];
                float *gg = golden_tensor(gs, k, pr->n), *s[5];
                const char *pre[5] = {"m0.", "v0.", "m1.", "v1.", "p1."};
                bool have = gg != NULL;
                for (int j = 0; j < 5; j++) {
                    snprintf(kn, sizeof kn, "%s%s", pre[j], k);
                    s[j] = golden_tensor(as, kn, pr->n);
                    have = have && s[j];
                }
                if (have) {
                    tr_param q = *pr;
                    float *w = malloc((size_t)pr->n * sizeof *w);
                    memcpy(w, pr->w, (size_t)pr->n * sizeof *w); /* init = p0 */
                    q.w = w;
                    q.g = gg;
                    q.m = s[0];
                    q.v = s[1];
                    tr_adamw_param(&o, &q, clip, t);
                    double a1 = nmse_f(q.m, s[2], pr->n), a2 = nmse_f(q.v, s[3], pr->n),
                           a3 = nmse_f(q.w, s[4], pr->n);
                    double mx = fmax(a1, fmax(a2, a3));
                    if (mx > worst_a) {
                        worst_a = mx;
                        wa = k;
                    }
                    n_a++;
                    free(w);
                } else {
                    worst_a = INFINITY;
                    wa = k;
                }
                free(gg);
                for (int j = 0; j < 5; j++) free(s[j]);
            }
            printf("  %s: AdamW on %d tensors, worst NMSE %.3e (%s)\n", name, n_a, worst_a, wa);
            snprintf(tn, sizeof tn, "train %s: one AdamW step, m/v/p of %d tensors (NMSE <= 1e-6)",
                     name, n_a);
            test_check(tn, n_a > 0 && worst_a <= 1e-6, "worst NMSE %.3e at %s", worst_a, wa);
            st_close(as);
        }
        st_close(gs);
    }

    /* 12-step trajectory: fresh state, lr 1e-3 constant, wd 0.01, clip 1 */
    tr_model_free(m);
    comi_model_free(base);
    base = NULL;
    m = golden_model(ctx, dir, g, &base);
    json_t *tj = json_object_get(g, "trajectory");
    json_t *tls = json_object_get(tj, "losses");
    tr_adamw o = {.lr = json_number_value(json_object_get(tj, "lr")),
                  .beta1 = 0.9,
                  .beta2 = 0.999,
                  .eps = 1e-8,
                  .weight_decay = 0.01};
    double worst_t = 0;
    int n_t = 0;
    for (size_t s = 0; m && s < json_array_size(tls); s++) {
        tr_example ex = ex_of(&G[s % (size_t)n_ex]);
        double loss;
        tr_zero_grad(m);
        if (tr_example_step(&e, ctx, m, &ex, true, 1.0f, 0, &loss, NULL)) break;
        double want = json_number_value(json_array_get(tls, s));
        double rel = fabs(loss - want) / fabs(want);
        printf("  %s step %zu: loss %.6f golden %.6f rel %.2e\n", name, s + 1, loss, want, rel);
        if (rel > worst_t) worst_t = rel;
        n_t++;
        double gn = tr_grad_norm(m);
        double clip = fmin(1.0, 1.0 / (gn + 1e-6));
        tr_adamw_step(m, &o, clip, (int64_t)s + 1);
    }
    snprintf(tn, sizeof tn, "train %s: 12-step trajectory (rel <= 2e-3)", name);
    test_check(tn, n_t == (int)json_array_size(tls) && worst_t <= 2e-3,
               "%d steps, worst relative error %.3e", n_t, worst_t);

    for (int i = 0; i < n_ex; i++)
        for (int j = 0; j < 3; j++) free(G[i].ids[j]);
    free(G);
    tr_model_free(m);
    comi_model_free(base);
    json_decref(g);
}


/* A GGUF base (llama: q/k rows permuted by the converter, un-permuted at
 * load) gives the golden losses too. */
static void test_gguf_base(comi_ctx *ctx, const char *name) {
    char p[1200], tn[700];
    snprintf(p, sizeof p, "%s/train/%s/golden.json", golden, name);
    json_t *g = json_load_file(p, 0, NULL);
    if (!g) return;
    json_t *cfg = json_deep_copy(g);
    char b[300];
    const char *hf = json_string_value(json_object_get(g, "base"));
    snprintf(b, sizeof b, "%.*s.gguf", (int)strlen(hf) - 3, hf);
    json_object_set_new(cfg, "base", json_string(b));
    snprintf(p, sizeof p, "%s/train/%s", golden, name);
    comi_model *base = NULL;
    tr_model *m = golden_model(ctx, p, cfg, &base);
    double worst = INFINITY;
    if (m) {
        worst = 0;
        json_t *exs = json_object_get(g, "examples");
        for (size_t i = 0; i < json_array_size(exs); i++) {
            json_t *x = json_array_get(exs, i);
            gex ge;
            ge.ids[0] = json_ids(json_object_get(x, "context_ids"), &ge.n[0]);
            ge.ids[1] = json_ids(json_object_get(x, "question_ids"), &ge.n[1]);
            ge.ids[2] = json_ids(json_object_get(x, "answer_ids"), &ge.n[2]);
            tr_example ex = ex_of(&ge);
            double l = NAN;
            comi_err e = {0};
            tr_example_step(&e, ctx, m, &ex, false, 1.0f, 0, &l, NULL);
            double want = json_number_value(json_array_get(json_object_get(g, "losses"), i));
            double rel = fabs(l - want) / want;
            if (!(rel <= worst)) worst = rel;
            for (int j = 0; j < 3; j++) free(ge.ids[j]);
        }
    }
    snprintf(tn, sizeof tn, "train %s: GGUF base (%s) gives the golden losses (rel <= 1e-5)", name, b);
    test_check(tn, worst <= 1e-5, "worst relative error %.3e", worst);
    tr_model_free(m);
    comi_model_free(base);
    json_decref(cfg);
    json_decref(g);
}

/* ---- finite differences ------------------------------------------------ */

static uint64_t fd_rng = 12345;
static double fd_unif(void) {
    fd_rng = fd_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(fd_rng >> 11) * (1.0 / 9007199254740992.0);
}

/* Central difference of the summed loss along v = (g/|g| + r)/|.| (r a
 * random unit direction, so errors orthogonal to g show too) against g . v,
 * for one tensor; rows limits the direction to the first rows of the
 * tensor's 2-D view (0: all; embeddings: rows whose ids occur). */
static double fd_check(comi_ctx *ctx, tr_model *m, tr_param *p, const tr_example *ex, int n_ex,
                       const int32_t *rows, int n_rows, double *fd_out, double *an_out) {
    comi_err e = {0};
    tr_zero_grad(m);
    double l0 = 0, l;
    static tr_layout lay[2];
    for (int i = 0; i < n_ex; i++) {
        m->layout_in = NULL;
        m->layout_out = &lay[i];
        if (tr_example_step(&e, ctx, m, &ex[i], true, 1.0f, 7 + (uint64_t)i, &l, NULL)) return -1;
        l0 += l;
    }
    m->layout_out = NULL;
    double *v = calloc((size_t)p->n, sizeof *v);
    int64_t cols = p->n_dims == 2 ? p->shape[1] : p->n;
    double gn = 0, rn = 0;
    for (int64_t i = 0; i < p->n; i++) {
        bool on = true;
        if (rows) {
            on = false;
            for (int k = 0; k < n_rows; k++) on = on || rows[k] == i / cols;
        }
        if (on) {
            v[i] = 2 * fd_unif() - 1;
            gn += (double)p->g[i] * p->g[i];
            rn += v[i] * v[i];
        }
    }
    gn = sqrt(gn);
    rn = sqrt(rn);
    double vn = 0;
    for (int64_t i = 0; i < p->n; i++) {
        v[i] = (gn > 0 ? p->g[i] / gn : 0) * (v[i] != 0) + v[i] / rn;
        vn += v[i] * v[i];
    }
    vn = sqrt(vn);
    double an = 0;
    for (int64_t i = 0; i < p->n; i++) {
        v[i] /= vn;
        an += p->g[i] * v[i];
    }
    /* step: about 1e-3 of the tensor's typical size */
    double scale = 0;
    for (int64_t i = 0; i < p->n; i++) scale += (double)p->w[i] * p->w[i];
    scale = sqrt(scale / (double)p->n);
    double h = 1e-3 * (scale > 1e-3 ? scale : 1e-3) * sqrt((double)p->n);
    if (h > 3e-2) h = 3e-2;
    float *w0 = malloc((size_t)p->n * sizeof *w0);
    memcpy(w0, p->w, (size_t)p->n * sizeof *w0);
    double lp = 0, lm = 0;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        for (int64_t i = 0; i < p->n; i++) p->w[i] = (float)(w0[i] + sgn * h * v[i]);
        double acc = 0;
        for (int i = 0; i < n_ex; i++) {
            m->layout_in = &lay[i];
            if (tr_example_step(&e, ctx, m, &ex[i], false, 1.0f, 7 + (uint64_t)i, &l, NULL))
                return -1;
            acc += l;
        }
        if (sgn < 0) lm = acc;
        else lp = acc;
    }
    m->layout_in = NULL;
    memcpy(p->w, w0, (size_t)p->n * sizeof *w0);
    free(w0);
    free(v);
    double fd = (lp - lm) / (2 * h);
    *fd_out = fd;
    *an_out = an;
    return fabs(fd - an) / fmax(fabs(an), 1e-3);
}

/* A small module (2 encoder layers, merge size 4, LoRA r 4) on base_name, a
 * tiny model directory of the goldens; checks named "train TAG base_name:
 * ...". False (both left NULL) when the base or the module cannot be made. */
static bool tiny_module(comi_ctx *ctx, const char *tag, const char *base_name, float lora_alpha,
                        float dropout, comi_model **base, tr_model **m) {
    char p[1024], tn[300];
    snprintf(p, sizeof p, "%s/forward/models/%s", golden, base_name);
    *base = NULL;
    *m = NULL;
    snprintf(tn, sizeof tn, "train %s %s: base loads", tag, base_name);
    if (!test_check(tn, comi_model_load(ctx, p, NULL, base) == COMI_OK, "%s", comi_errmsg(ctx)))
        return false;
    tr_opts o = tr_default_opts();
    o.encoder_layers = 2;
    o.merge_size = 4;
    o.lora_r = 4;
    o.lora_alpha = lora_alpha;
    o.lora_dropout = dropout;
    comi_err e = {0};
    snprintf(tn, sizeof tn, "train %s %s: module builds from the base", tag, base_name);
    if (!test_check(tn, tr_model_new(&e, *base, &o, m) == COMI_OK, "%s", e.msg)) {
        comi_model_free(*base);
        *base = NULL;
        return false;
    }
    return true;
}

/* Every LoRA B of m set to uniform values in [-0.1, 0.1) (PEFT starts them
 * at 0, where some gradients and effects vanish). */
static void randomize_lora_b(tr_model *m) {
    for (int32_t i = 0; i < m->n_params; i++)
        if (strstr(m->params[i].name, "lora_B"))
            for (int64_t j = 0; j < m->params[i].n; j++)
                m->params[i].w[j] = (float)(0.2 * (fd_unif() - 0.5));
}

/* Every kind of tensor of a module on base (a tiny model directory), with
 * LoRA B made non-zero and, when dropout > 0, dropout masks on. */
static void test_fd_model(comi_ctx *ctx, const char *base_name, float dropout) {
    char tn[300];
    comi_model *base = NULL;
    tr_model *m = NULL;
    if (!tiny_module(ctx, "fd", base_name, 8, dropout, &base, &m)) return;
    randomize_lora_b(m);
    /* ids well inside every tiny vocabulary; two examples */
    int32_t ctx_ids[2][40], q_ids[2][5], ans_ids[2][4], rows[64];
    int n_rows = 0;
    for (int x = 0; x < 2; x++) {
        for (int i = 0; i < 40; i++) ctx_ids[x][i] = 100 + (int32_t)(fd_unif() * 2000);
        for (int i = 0; i < 5; i++) q_ids[x][i] = 100 + (int32_t)(fd_unif() * 2000);
        for (int i = 0; i < 4; i++) ans_ids[x][i] = 100 + (int32_t)(fd_unif() * 2000);
    }
    rows[n_rows++] = ctx_ids[0][3];
    rows[n_rows++] = q_ids[1][2];
    rows[n_rows++] = ctx_ids[1][39];
    tr_example ex[2];
    for (int x = 0; x < 2; x++)
        ex[x] = (tr_example){.ctx = ctx_ids[x], .q = q_ids[x], .ans = ans_ids[x], .n_ctx = 40,
                             .n_q = 5, .n_ans = 4};
    /* one tensor of every kind */
    const char *kinds[] = {"encoder.model.embed_tokens.weight",
                           "encoder.model.layers.0.input_layernorm.weight",
                           "encoder.model.layers.0.self_attn.q_proj.weight",
                           "encoder.model.layers.0.self_attn.k_proj.weight",
                           "encoder.model.layers.1.self_attn.v_proj.weight",
                           "encoder.model.layers.1.self_attn.o_proj.weight",
                           "encoder.model.layers.0.self_attn.q_proj.bias",
                           "encoder.model.layers.1.self_attn.k_proj.bias",
                           "encoder.model.layers.0.self_attn.v_proj.bias",
                           "encoder.model.layers.0.self_attn.q_norm.weight",
                           "encoder.model.layers.1.self_attn.k_norm.weight",
                           "encoder.model.layers.1.post_attention_layernorm.weight",
                           "encoder.model.layers.1.mlp.gate_proj.weight",
                           "encoder.model.layers.0.mlp.up_proj.weight",
                           "encoder.model.layers.0.mlp.down_proj.weight",
                           "encoder.model.norm.weight",
                           "memory_fusion_layer.model.layers.0.self_attn.q_proj.weight",
                           "memory_fusion_layer.model.layers.0.mlp.down_proj.weight",
                           "memory_fusion_layer.model.norm.weight",
                           "decoder.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight",
                           "decoder.base_model.model.model.layers.1.self_attn.k_proj.lora_B.default.weight",
                           "decoder.base_model.model.model.layers.2.self_attn.v_proj.lora_A.default.weight",
                           "decoder.base_model.model.model.layers.2.self_attn.o_proj.lora_B.default.weight",
                           "decoder.base_model.model.model.layers.0.self_attn.o_proj.lora_A.default.weight"};
    int n_checked = 0;
    double worst = 0;
    const char *wk = "";
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        tr_param *pr = tr_find(m, kinds[k]);
        if (!pr) continue; /* biases / q-k norms exist only for qwen2 / qwen3 */
        bool emb = strstr(kinds[k], "embed_tokens") != NULL;
        double fd = 0, an = 0;
        double rel = fd_check(ctx, m, pr, ex, 2, emb ? rows : NULL, emb ? n_rows : 0, &fd, &an);
        printf("  fd %s %s: numeric %.6e analytic %.6e rel %.2e\n", base_name, kinds[k], fd, an,
               rel);
        if (rel < 0 || rel > worst) {
            worst = rel < 0 ? INFINITY : rel;
            wk = kinds[k];
        }
        n_checked++;
    }
    snprintf(tn, sizeof tn,
             "train fd %s%s: %d tensor kinds, central differences = analytic (rel <= 2e-2)",
             base_name, dropout > 0 ? " with LoRA dropout" : "", n_checked);
    test_check(tn, n_checked >= 15 && worst <= 2e-2, "worst %.3e at %s", worst, wk);
    tr_model_free(m);
    comi_model_free(base);
}

/* Kernels alone in float32: L = sum(r * y) for random r. */
static void test_fd_kernels(void) {
    enum { N = 7, NH = 4, NKV = 2, HD = 8 };
    const int64_t qd = NH * HD, kd = NKV * HD;
    float q[N * qd], k[N * kd], v[N * kd], o[N * qd], pr[NH * N * N], r[N * qd];
    float dq[N * qd], dk[N * kd], dv[N * kd], ds[N * N];
    for (int i = 0; i < N * qd; i++) q[i] = (float)(fd_unif() - 0.5), r[i] = (float)(fd_unif() - 0.5);
    for (int i = 0; i < N * kd; i++) k[i] = (float)(fd_unif() - 0.5), v[i] = (float)(fd_unif() - 0.5);
    tr_attn_fwd(o, pr, q, k, v, N, NH, NKV, HD);
    tr_attn_bwd(dq, dk, dv, r, pr, q, k, v, N, NH, NKV, HD, ds);
    double worst = 0;
    float *xs[3] = {q, k, v}, *gs[3] = {dq, dk, dv};
    int ns[3] = {N * (int)qd, N * (int)kd, N * (int)kd};
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < ns[t]; i += 3) {
            float x0 = xs[t][i];
            double l[2];
            for (int s = 0; s < 2; s++) {
                xs[t][i] = x0 + (s ? 1e-2f : -1e-2f);
                tr_attn_fwd(o, pr, q, k, v, N, NH, NKV, HD);
                l[s] = 0;
                for (int j = 0; j < N * qd; j++) l[s] += (double)r[j] * o[j];
            }
            xs[t][i] = x0;
            double fd = (l[1] - l[0]) / 2e-2, err = fabs(fd - gs[t][i]);
            if (err > worst) worst = err;
        }
    test_check("train fd kernel: causal GQA attention backward", worst < 2e-3,
               "worst absolute error %.3e", worst);

    /* RMSNorm */
    float x[N * qd], w[qd], y[N * qd], rs[N], dx[N * qd], gw[qd];
    for (int i = 0; i < N * qd; i++) x[i] = (float)(fd_unif() - 0.5);
    for (int i = 0; i < qd; i++) w[i] = (float)(0.5 + fd_unif()), gw[i] = 0;
    memset(dx, 0, sizeof dx);
    tr_rmsnorm_fwd(y, rs, x, w, N, qd, 1e-5f);
    tr_rmsnorm_bwd(dx, gw, r, x, rs, w, N, qd);
    worst = 0;
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < (t ? (int)qd : N * (int)qd); i += 2) {
            float *z = t ? w : x, z0 = z[i];
            double l[2];
            for (int s = 0; s < 2; s++) {
                z[i] = z0 + (s ? 1e-2f : -1e-2f);
                tr_rmsnorm_fwd(y, rs, x, w, N, qd, 1e-5f);
                l[s] = 0;
                for (int j = 0; j < N * qd; j++) l[s] += (double)r[j] * y[j];
            }
            z[i] = z0;
            double fd = (l[1] - l[0]) / 2e-2, err = fabs(fd - (t ? gw[i] : dx[i]));
            if (err > worst) worst = err;
        }
    test_check("train fd kernel: RMSNorm backward (input and weight)", worst < 2e-3,
               "worst absolute error %.3e", worst);

    /* RoPE, both layouts: rotate, then the inverse is the exact transpose:
     * <R x, r> = <x, R^T r> */
    for (int mode = 0; mode < 2; mode++) {
        float a[N * qd], b[N * qd];
        memcpy(a, x, sizeof a);
        memcpy(b, r, sizeof b);
        tr_rope(a, N, qd, NH, HD, 10000.0f, mode ? OPS_ROPE_NEOX : OPS_ROPE_NORMAL, false);
        tr_rope(b, N, qd, NH, HD, 10000.0f, mode ? OPS_ROPE_NEOX : OPS_ROPE_NORMAL, true);
        double l1 = 0, l2 = 0;
        for (int j = 0; j < N * qd; j++) l1 += (double)a[j] * r[j], l2 += (double)x[j] * b[j];
        /* and it matches the runtime's own forward rotation */
        float c[N * qd], cs[N * HD];
        memcpy(c, x, sizeof c);
        ops_rope_table(cs, 0, N, HD, 10000.0f);
        ops_rope_apply(c, N, qd, NH, HD, cs, mode ? OPS_ROPE_NEOX : OPS_ROPE_NORMAL);
        double md = 0;
        for (int j = 0; j < N * qd; j++) md = fmax(md, fabs((double)c[j] - a[j]));
        char tn[160];
        snprintf(tn, sizeof tn, "train fd kernel: RoPE %s backward = transpose, forward = runtime",
                 mode ? "NEOX" : "NORMAL");
        test_check(tn, fabs(l1 - l2) < 1e-5 && md < 1e-5, "<Rx,r> %.9f vs <x,R^T r> %.9f, max diff "
                   "to ops_rope_apply %.3e", l1, l2, md);
    }
}

/* ---- comi_train (the public loop) ---------------------------------------- */

static char tmpdir[] = "/tmp/comi_test_train_XXXXXX";

/* Writes the golden examples as pre-tokenized rows. */
static bool write_golden_rows(json_t *g, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    json_t *exs = json_object_get(g, "examples");
    for (size_t i = 0; i < json_array_size(exs); i++) {
        json_t *x = json_array_get(exs, i);
        json_t *r = json_pack("{s:O,s:O,s:O}", "context_ids", json_object_get(x, "context_ids"),
                              "question_ids", json_object_get(x, "question_ids"), "answer_ids",
                              json_object_get(x, "answer_ids"));
        char *js = json_dumps(r, JSON_COMPACT);
        fprintf(f, "%s\n", js);
        free(js);
        json_decref(r);
    }
    return fclose(f) == 0;
}

static bool files_equal(const char *a, const char *b) {
    size_t la, lb;
    char *x = NULL, *y = NULL;
    comi_err e = {0};
    bool eq = !comi_read_file(&e, a, &x, &la) && !comi_read_file(&e, b, &y, &lb) && la == lb &&
              !memcmp(x, y, la);
    free(x);
    free(y);
    return eq;
}

static void test_api(comi_ctx *ctx, const char *name) {
    char dir[1024], p[1500], base[1200], rows[1200], init[1200], tn[300];
    snprintf(dir, sizeof dir, "%s/train/%s", golden, name);
    snprintf(p, sizeof p, "%s/golden.json", dir);
    json_t *g = json_load_file(p, 0, NULL);
    if (!g) return;
    snprintf(base, sizeof base, "%s/forward/models/%s", golden,
             json_string_value(json_object_get(g, "base")));
    snprintf(rows, sizeof rows, "%s/%s.jsonl", tmpdir, name);
    snprintf(init, sizeof init, "%s/init.safetensors", dir);
    write_golden_rows(g, rows);
    comi_train_params tp = comi_train_default_params();
    tp.model = base;
    tp.data = rows;
    tp.init = init;
    tp.encoder_layers = (int32_t)json_integer_value(json_object_get(g, "encoder_layers"));
    tp.merge_size = json_integer_value(json_object_get(g, "merge_size"));
    tp.lora_r = json_integer_value(json_object_get(g, "lora_r"));
    tp.lora_alpha = (float)json_number_value(json_object_get(g, "lora_alpha"));
    tp.lora_dropout = 0;

    /* --dump-grad: the mean loss and every gradient of the golden step */
    char gpath[1300];
    snprintf(gpath, sizeof gpath, "%s/%s.grad.safetensors", tmpdir, name);
    comi_train_params dp = tp;
    double dl = NAN;
    dp.dump_grad = gpath;
    dp.dump_loss = &dl;
    comi_status st = comi_train(ctx, &dp);
    double want = json_number_value(json_object_get(g, "mean_loss"));
    snprintf(tn, sizeof tn, "train api %s: dump-grad mean loss (rel <= 1e-5)", name);
    test_check(tn, !st && fabs(dl - want) <= 1e-5 * want, "status %d (%s), loss %.9f vs %.9f", st,
               comi_errmsg(ctx), dl, want);
    st_model *mine = NULL, *gold = NULL;
    comi_err e = {0};
    snprintf(p, sizeof p, "%s/grad.safetensors", dir);
    double worst = INFINITY;
    int n = 0;
    if (!st && !st_open_file(&e, gpath, &mine) && !st_open_file(&e, p, &gold)) {
        worst = 0;
        for (int64_t i = 0; i < st_n_tensors(gold); i++) {
            const comi_tensor *t = st_tensor_at(gold, i);
            const comi_tensor *u = st_find_tensor(mine, t->name);
            int64_t cnt = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
            float *gv = golden_tensor(gold, t->name, cnt);
            double v = u && u->nbytes == (size_t)cnt * 4 ? nmse_f(u->data, gv, cnt) : INFINITY;
            free(gv);
            if (!(v <= worst)) worst = v;
            n++;
        }
        if (st_n_tensors(mine) != st_n_tensors(gold)) worst = INFINITY;
    }
    st_close(mine);
    st_close(gold);
    snprintf(tn, sizeof tn, "train api %s: dump-grad file = golden gradients (%d tensors, NMSE <= 1e-5)",
             name, n);
    test_check(tn, n > 0 && worst <= 1e-5, "worst NMSE %.3e", worst);

    /* resume: 6 steps straight vs 3 + resume 3, with LoRA dropout and shuffling */
    char da[1300], db[1300];
    snprintf(da, sizeof da, "%s/%s.a", tmpdir, name);
    snprintf(db, sizeof db, "%s/%s.b", tmpdir, name);
    comi_train_params rp = tp;
    rp.lora_dropout = 0.1f;
    rp.steps = 6;
    rp.save_every = 2;
    rp.lr = 1e-3;
    rp.out_dir = da;
    st = comi_train(ctx, &rp);
    snprintf(tn, sizeof tn, "train api %s: 6 steps run", name);
    test_check(tn, st == COMI_OK, "%s", comi_errmsg(ctx));
    rp.out_dir = db;
    rp.stop_after = 3;
    comi_status s1 = comi_train(ctx, &rp);
    rp.stop_after = 0;
    rp.resume = true;
    comi_status s2 = s1 ? s1 : comi_train(ctx, &rp);
    char fa[1400], fb[1400];
    bool same = true;
    const char *files[] = {"model.safetensors", "optimizer.safetensors", "log.jsonl"};
    for (int i = 0; i < 3; i++) {
        snprintf(fa, sizeof fa, "%s/%s", da, files[i]);
        snprintf(fb, sizeof fb, "%s/%s", db, files[i]);
        bool eq = files_equal(fa, fb);
        if (i == 2) {
            /* logs differ only in elapsed_s: compare the losses line by line */
            FILE *x = fopen(fa, "rb"), *y = fopen(fb, "rb");
            char lx[1024], ly[1024];
            int lines = 0;
            eq = x && y;
            while (eq && fgets(lx, sizeof lx, x)) {
                eq = fgets(ly, sizeof ly, y) != NULL;
                json_t *jx = json_loads(lx, 0, NULL), *jy = eq ? json_loads(ly, 0, NULL) : NULL;
                eq = eq && jx && jy &&
                     json_equal(json_object_get(jx, "loss"), json_object_get(jy, "loss")) &&
                     json_equal(json_object_get(jx, "grad_norm"), json_object_get(jy, "grad_norm")) &&
                     json_equal(json_object_get(jx, "step"), json_object_get(jy, "step"));
                json_decref(jx);
                json_decref(jy);
                lines++;
            }
            eq = eq && lines == 6 && !fgets(ly, sizeof ly, y);
            if (x) fclose(x);
            if (y) fclose(y);
        }
        if (!eq) {
            printf("  %s differs between the straight and the resumed run\n", files[i]);
            same = false;
        }
    }
    snprintf(tn, sizeof tn, "train api %s: --stop-after 3 + --resume = 6 straight steps, bit for bit",
             name);
    test_check(tn, !s1 && !s2 && same, "status %d/%d: %s", s1, s2, comi_errmsg(ctx));

    /* the checkpoint loads into the soft pipeline: its decoder logits at the
     * last question position give the trainer's loss of the first answer id */
    comi_pipeline_load_params lp = comi_pipeline_load_default_params();
    char tok[1300];
    snprintf(tok, sizeof tok, "%s/forward/models/%.*s.gguf", golden,
             (int)(strlen(json_string_value(json_object_get(g, "base"))) - 3),
             json_string_value(json_object_get(g, "base")));
    lp.model = base;
    lp.checkpoint = da;
    lp.tokenizer = tok;
    comi_pipeline *pl = NULL;
    st = comi_pipeline_load(ctx, &lp, &pl);
    snprintf(tn, sizeof tn, "train api %s: comi_pipeline_load reads the written checkpoint", name);
    if (test_check(tn, st == COMI_OK, "%s", comi_errmsg(ctx))) {
        json_t *x = json_array_get(json_object_get(g, "examples"), 0);
        gex ge;
        ge.ids[0] = json_ids(json_object_get(x, "context_ids"), &ge.n[0]);
        ge.ids[1] = json_ids(json_object_get(x, "question_ids"), &ge.n[1]);
        ge.ids[2] = json_ids(json_object_get(x, "answer_ids"), &ge.n[2]);
        comi_answer_params ap = comi_pipeline_answer_params(pl);
        ap.merge.merge_size = tp.merge_size;
        ap.max_new_tokens = 1;
        comi_answer_result ar = {0};
        st = comi_pipeline_answer_ids(ctx, pl, ge.ids[0], ge.n[0], ge.ids[1], ge.n[1], &ap, &ar);
        double pl_loss = NAN, tr_loss = NAN;
        if (!st && ar.logits) {
            double mx = -INFINITY, sum = 0;
            for (int64_t i = 0; i < ar.n_vocab; i++) mx = fmax(mx, ar.logits[i]);
            for (int64_t i = 0; i < ar.n_vocab; i++) sum += exp(ar.logits[i] - mx);
            pl_loss = mx + log(sum) - ar.logits[ge.ids[2][0]];
        }
        comi_model *bm = NULL;
        tr_opts o = tr_default_opts();
        o.encoder_layers = tp.encoder_layers;
        o.merge_size = tp.merge_size;
        o.lora_r = tp.lora_r;
        o.lora_alpha = tp.lora_alpha;
        tr_model *m = NULL;
        snprintf(p, sizeof p, "%s/model.safetensors", da);
        if (!comi_model_load(ctx, base, NULL, &bm) && !tr_model_new(&e, bm, &o, &m) &&
            !tr_model_load(&e, m, p, true)) {
            tr_example ex = ex_of(&ge);
            ex.n_ans = 1;
            tr_example_step(&e, ctx, m, &ex, false, 1.0f, 0, &tr_loss, NULL);
        }
        printf("  %s: pipeline loss of the first answer id %.7f, trainer %.7f\n", name, pl_loss,
               tr_loss);
        snprintf(tn, sizeof tn,
                 "train api %s: pipeline on the checkpoint = trainer forward (rel <= 1e-4)", name);
        test_check(tn, fabs(pl_loss - tr_loss) <= 1e-4 * fabs(tr_loss), "%.7f vs %.7f", pl_loss,
                   tr_loss);
        tr_model_free(m);
        comi_model_free(bm);
        comi_answer_result_free(&ar);
        for (int j = 0; j < 3; j++) free(ge.ids[j]);
        comi_pipeline_free(pl);
    }

    /* a non-finite loss stops the run and keeps the last good checkpoint */
    char dn[1300];
    snprintf(dn, sizeof dn, "%s/%s.nan", tmpdir, name);
    comi_train_params np = tp;
    np.out_dir = dn;
    np.steps = 4;
    np.save_every = 1;
    np.lr = 1e30;
    np.max_grad_norm = 0;
    np.weight_decay = 0;
    st = comi_train(ctx, &np);
    snprintf(p, sizeof p, "%s/trainer_state.json", dn);
    json_t *ts = json_load_file(p, 0, NULL);
    int64_t saved = ts ? json_integer_value(json_object_get(ts, "step")) : -1;
    json_decref(ts);
    snprintf(tn, sizeof tn, "train api %s: a NaN stops with a message, last good checkpoint kept",
             name);
    test_check(tn, st == COMI_ERR_INTERNAL && strstr(comi_errmsg(ctx), "last good checkpoint") &&
                       saved >= 1,
               "status %d, '%s', saved step %lld", st, comi_errmsg(ctx), (long long)saved);
    printf("  %s: %s\n", name, comi_errmsg(ctx));
    json_decref(g);
}

/* Unusable rows fail with the file and line number. */
static void test_bad_rows(comi_ctx *ctx) {
    char base[1200], rows[1200];
    snprintf(base, sizeof base, "%s/forward/models/tiny-llama-spm.hf", golden);
    snprintf(rows, sizeof rows, "%s/bad.jsonl", tmpdir);
    static const char *const cases[][2] = {
        {"{\"context_ids\":[1,2,3],\"question_ids\":[4],\"answer_ids\":[5]}\n\n{\"context_ids\":[1],"
         "\"question_ids\":[],\"answer_ids\":[5]}\n",
         ":3: the question has no tokens"},
        {"{\"context_ids\":[1,2,3],\"question_ids\":[4],\"answer_ids\":[99999999]}\n",
         ":1: 'answer_ids'[0] is not a token id"},
        {"{\"context_ids\":[1],\"question_ids\":[4],\"answer_ids\":[5]}\nnot json\n", ":2: bad JSON"},
        {"{\"input\":\"x\",\"prompt\":\"y\",\"answer\":[\"z\"]}\n", ":1: the base model has no tokenizer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(rows, "wb");
        fputs(cases[i][0], f);
        fclose(f);
        comi_train_params tp = comi_train_default_params();
        tp.model = base;
        tp.data = rows;
        tp.encoder_layers = 1;
        tp.lora_r = 2;
        tp.merge_size = 2;
        char out[1300];
        snprintf(out, sizeof out, "%s/bad%zu", tmpdir, i);
        tp.out_dir = out;
        comi_status st = comi_train(ctx, &tp);
        char tn[200];
        snprintf(tn, sizeof tn, "train api: unusable row %zu is named with its line", i);
        test_check(tn, st == COMI_ERR_FORMAT && strstr(comi_errmsg(ctx), cases[i][1]),
                   "status %d, '%s' (want '%s')", st, comi_errmsg(ctx), cases[i][1]);
    }
}

/* --lora-alpha 0 freezes the decoder outright: its LoRA adds nothing to the
 * loss (a non-zero B changes nothing), gets zero gradients, and B stays 0
 * through AdamW steps while the encoder and fusion block still learn. */
static void test_frozen_decoder(comi_ctx *ctx, const char *base_name) {
    char tn[300];
    comi_model *base = NULL;
    tr_model *m = NULL;
    if (!tiny_module(ctx, "lora alpha 0", base_name, 0, 0.1f, &base, &m)) return;
    comi_err e = {0};
    int32_t c_ids[40], q_ids[5], a_ids[4];
    for (int i = 0; i < 40; i++) c_ids[i] = 100 + (int32_t)(fd_unif() * 2000);
    for (int i = 0; i < 5; i++) q_ids[i] = 100 + (int32_t)(fd_unif() * 2000);
    for (int i = 0; i < 4; i++) a_ids[i] = 100 + (int32_t)(fd_unif() * 2000);
    tr_example ex = {.ctx = c_ids, .q = q_ids, .ans = a_ids, .n_ctx = 40, .n_q = 5, .n_ans = 4};
    double l0 = NAN, l1 = NAN;
    bool ok = tr_example_step(&e, ctx, m, &ex, false, 1.0f, 0, &l0, NULL) == COMI_OK;
    randomize_lora_b(m); /* a non-zero B must not change the loss */
    ok = ok && tr_example_step(&e, ctx, m, &ex, false, 1.0f, 0, &l1, NULL) == COMI_OK;
    snprintf(tn, sizeof tn, "train lora alpha 0 %s: LoRA adds nothing (loss %.9f = %.9f)",
             base_name, l0, l1);
    test_check(tn, ok && l0 == l1, "%s", ok ? "the losses differ" : e.msg);
    for (int32_t i = 0; i < m->n_params; i++)
        if (strstr(m->params[i].name, "lora_B"))
            memset(m->params[i].w, 0, sizeof(float) * (size_t)m->params[i].n);
    tr_param *q = tr_find(m, "encoder.model.layers.0.self_attn.q_proj.weight");
    float q0 = q ? q->w[7] : 0;
    tr_adamw opt = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0};
    int64_t lora_nonzero_g = 0, lora_nonzero_b = 0, n_lora = 0;
    for (int s = 1; ok && s <= 2; s++) {
        tr_zero_grad(m);
        ok = tr_example_step(&e, ctx, m, &ex, true, 1.0f, (uint64_t)s, &l1, NULL) == COMI_OK;
        for (int32_t i = 0; i < m->n_params; i++) {
            if (!strstr(m->params[i].name, "lora_")) continue;
            n_lora++;
            for (int64_t j = 0; j < m->params[i].n; j++) lora_nonzero_g += m->params[i].g[j] != 0;
        }
        tr_adamw_step(m, &opt, 1.0, s);
    }
    for (int32_t i = 0; i < m->n_params; i++)
        if (strstr(m->params[i].name, "lora_B"))
            for (int64_t j = 0; j < m->params[i].n; j++) lora_nonzero_b += m->params[i].w[j] != 0;
    snprintf(tn, sizeof tn,
             "train lora alpha 0 %s: LoRA gradients 0, B stays 0, the encoder learns", base_name);
    test_check(tn, ok && n_lora > 0 && lora_nonzero_g == 0 && lora_nonzero_b == 0 && q &&
                       q->w[7] != q0,
               "%s: %lld non-zero LoRA gradients, %lld non-zero B entries, encoder q %s",
               ok ? "steps ran" : e.msg, (long long)lora_nonzero_g, (long long)lora_nonzero_b,
               q && q->w[7] != q0 ? "moved" : "did not move");
    tr_model_free(m);
    comi_model_free(base);
}

int main(void) {
    golden = test_golden_dir();
    comi_ctx *ctx = comi_ctx_new(NULL);
    if (!golden) {
        test_skip("train goldens", "golden data not found (set COMI_GOLDEN)");
    } else {
        test_golden(ctx, "tiny-llama-spm");
        test_golden(ctx, "tiny-qwen2-bpe");
        test_gguf_base(ctx, "tiny-llama-spm");
        test_gguf_base(ctx, "tiny-qwen2-bpe");
        test_fd_model(ctx, "tiny-llama-spm.hf", 0.0f);
        test_fd_model(ctx, "tiny-qwen2-bpe.hf", 0.0f);
        test_fd_model(ctx, "tiny-qwen3-bpe.hf", 0.0f);
        test_fd_model(ctx, "tiny-llama-spm.hf", 0.1f);
        test_frozen_decoder(ctx, "tiny-llama-spm.hf");
        if (!mkdtemp(tmpdir)) {
            test_fail("train api: temporary directory", "mkdtemp failed");
        } else {
            test_api(ctx, "tiny-llama-spm");
            test_api(ctx, "tiny-qwen2-bpe");
            test_bad_rows(ctx);
            char cmd[300];
            snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
            if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
        }
    }
    test_fd_kernels();
    comi_ctx_free(ctx);
    return test_n_failed ? 1 : 0;
}
