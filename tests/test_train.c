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

int main(void) {
    golden = test_golden_dir();
    comi_ctx *ctx = comi_ctx_new(NULL);
    if (!golden) {
        test_skip("train goldens", "golden data not found (set COMI_GOLDEN)");
    } else {
        test_golden(ctx, "tiny-llama-spm");
        test_golden(ctx, "tiny-qwen2-bpe");
    }
    comi_ctx_free(ctx);
    return test_n_failed ? 1 : 0;
}
