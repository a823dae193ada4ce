/* test_checkpoint.c — COMI checkpoint import (src/comi/checkpoint.c) with
 * checkpoints this test builds from the tiny Hugging Face twins in
 * $COMI_GOLDEN/forward/models, named as the reference training saves them
 * (encoder., decoder.base_model.model. + PEFT lora_A/lora_B .default,
 * memory_fusion_layer., semantic_alignment_layer., alpha/beta scalars):
 *  - LoRA with B = 0 answers exactly like the base model training-free;
 *  - non-zero LoRA equals a decoder whose q/k/v/o weights the test merged
 *    itself (W + alpha/r B A), written as an HF directory;
 *  - a fine-tuned encoder (changed final norm) is read from the checkpoint;
 *  - a fusion block with known weights (the base's layer 0) equals the base
 *    model's first layer + final norm run over the memory rows;
 *  - the checkpoint's alpha/beta become the pipeline's defaults;
 *  - a missing key, an unknown key, a shape mismatch and a missing scalar
 *    fail with messages naming the tensor. */
#include "comi.h"
#include "formats/quant.h"
#include "formats/safetensors.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static const char *golden;
static char tmpdir[256];

typedef struct wt {
    char name[600];
    const char *dtype; /* "F16" or "F32" */
    int nd;
    int64_t shape[4]; /* outermost first */
    const void *data;
    size_t nbytes;
    void *owned;
} wt;

typedef struct wlist {
    wt *t;
    size_t n, cap;
} wlist;

static wt *wl_add(wlist *l, const char *name, const char *dtype, int nd, const int64_t *shape,
                  const void *data, size_t nbytes) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = realloc(l->t, l->cap * sizeof *l->t);
    }
    wt *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->nd = nd;
    for (int i = 0; i < nd; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = nbytes;
    return t;
}

static float *wl_add_f32(wlist *l, const char *name, int nd, const int64_t *shape) {
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)shape[i];
    float *d = calloc(n ? n : 1, sizeof(float));
    wt *t = wl_add(l, name, "F32", nd, shape, d, n * sizeof(float));
    t->owned = d;
    return d;
}

static void wl_free(wlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->t[i].owned);
    free(l->t);
    memset(l, 0, sizeof *l);
}

/* Writes a safetensors file: u64 header length, JSON header, data. */
static bool st_write(const char *path, const wlist *l) {
    size_t cap = 1 << 16, len = 0, off = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (size_t i = 0; i < l->n; i++) {
        const wt *t = &l->t[i];
        if (cap - len < 1024) h = realloc(h, cap *= 2);
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                i ? "," : "", t->name, t->dtype);
        for (int d = 0; d < t->nd; d++)
            len += (size_t)snprintf(h + len, cap - len, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + t->nbytes);
        off += t->nbytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(h);
        return false;
    }
    uint64_t hl = len;
    bool ok = fwrite(&hl, 8, 1, f) == 1 && fwrite(h, 1, len, f) == len;
    for (size_t i = 0; ok && i < l->n; i++)
        ok = fwrite(l->t[i].data, 1, l->t[i].nbytes, f) == l->t[i].nbytes;
    free(h);
    return fclose(f) == 0 && ok;
}

static void copy_file(const char *from, const char *to) {
    size_t len;
    char *d = test_read_file(from, &len);
    FILE *f = fopen(to, "wb");
    if (d && f) fwrite(d, 1, len, f);
    if (f) fclose(f);
    free(d);
}

/* Deterministic small pseudo-random numbers. */
static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5);
}

static bool is_proj(const char *name, const char **which) {
    static const char *const p[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    for (int i = 0; i < 4; i++)
        if (strstr(name, p[i])) {
            *which = p[i];
            return true;
        }
    return false;
}

static int layer_of(const char *name) {
    const char *p = strstr(name, "layers.");
    return p ? atoi(p + 7) : -1;
}

static float *to_f32(const comi_tensor *t) {
    size_t n = (size_t)(t->ne[0] * t->ne[1]);
    float *f = malloc(n * sizeof(float));
    quant_dequant_row(t->type, t->data, f, (int64_t)n);
    return f;
}

typedef struct build_opts {
    int enc_layers;
    bool lora_zero;        /* B = 0 */
    bool fusion;           /* memory_fusion_layer = base layer 0 + embed + norm */
    float enc_norm_scale;  /* multiply the encoder's final norm (fine-tuned encoder) */
    const char *drop;      /* leave out this checkpoint key */
    const char *extra;     /* add this unknown key */
    const char *bad_shape; /* give this key a wrong shape */
    bool no_scalars;
} build_opts;

#define LORA_R 4
#define LORA_ALPHA 8.0f

/* Builds DIR/model.safetensors from base; when merged_dir is given, also
 * writes the decoder with the LoRA merged (HF directory) and the encoder
 * reference (HF directory of the base with the changed norm). */
static bool build(const char *base, const char *dir, const build_opts *o, const char *merged_dir,
                  const char *enc_dir) {
    comi_err e;
    st_model *st = NULL;
    if (st_open_dir(&e, base, &st)) return false;
    wlist ck = {0}, mg = {0}, en = {0};
    char name[600];
    const float scale = LORA_ALPHA / LORA_R;
    for (int64_t i = 0; i < st_n_tensors(st); i++) {
        const comi_tensor *t = st_tensor_at(st, i);
        const char *dt = t->type == COMI_TYPE_F16 ? "F16" : "F32";
        int64_t shape[4];
        for (int d = 0; d < t->n_dims; d++) shape[d] = t->ne[t->n_dims - 1 - d];
        int L = layer_of(t->name);
        /* encoder: the first enc_layers layers + the rest */
        if (L < o->enc_layers) {
            snprintf(name, sizeof name, "encoder.%s", t->name);
            if (o->enc_norm_scale != 0 && !strcmp(t->name, "model.norm.weight")) {
                float *d = wl_add_f32(&ck, name, t->n_dims, shape);
                quant_dequant_row(t->type, t->data, d, t->ne[0]);
                for (int64_t j = 0; j < t->ne[0]; j++) d[j] *= o->enc_norm_scale;
                if (enc_dir) wl_add(&en, t->name, "F32", t->n_dims, shape, d, t->ne[0] * 4);
            } else {
                wl_add(&ck, name, dt, t->n_dims, shape, t->data, t->nbytes);
                if (enc_dir) wl_add(&en, t->name, dt, t->n_dims, shape, t->data, t->nbytes);
            }
        } else if (enc_dir) {
            wl_add(&en, t->name, dt, t->n_dims, shape, t->data, t->nbytes);
        }
        /* fusion block: the base's layer 0 and the rest */
        if (o->fusion && L <= 0) {
            snprintf(name, sizeof name, "memory_fusion_layer.%s", t->name);
            wl_add(&ck, name, dt, t->n_dims, shape, t->data, t->nbytes);
        }
        /* decoder, PEFT-wrapped */
        const char *proj;
        bool target = L >= 0 && is_proj(t->name, &proj);
        if (target) {
            const char *dot = strrchr(t->name, '.');
            snprintf(name, sizeof name, "decoder.base_model.model.%.*s.base_layer%s",
                     (int)(dot - t->name), t->name, dot);
        } else {
            snprintf(name, sizeof name, "decoder.base_model.model.%s", t->name);
        }
        wl_add(&ck, name, dt, t->n_dims, shape, t->data, t->nbytes);
        bool weight = target && strstr(t->name, ".weight");
        if (!weight) {
            if (merged_dir) wl_add(&mg, t->name, dt, t->n_dims, shape, t->data, t->nbytes);
            continue;
        }
        int64_t out = shape[0], in = shape[1];
        char pre[400];
        snprintf(pre, sizeof pre, "decoder.base_model.model.%.*s", (int)(strrchr(t->name, '.') - t->name),
                 t->name);
        snprintf(name, sizeof name, "%s.lora_A.default.weight", pre);
        float *A = wl_add_f32(&ck, name, 2, (int64_t[]){LORA_R, in});
        snprintf(name, sizeof name, "%s.lora_B.default.weight", pre);
        float *B = wl_add_f32(&ck, name, 2, (int64_t[]){out, LORA_R});
        for (int64_t j = 0; j < LORA_R * in; j++) A[j] = frand() * 0.5f;
        for (int64_t j = 0; !o->lora_zero && j < out * LORA_R; j++) B[j] = frand() * 0.2f;
        if (merged_dir) {
            float *W = to_f32(t);
            float *M = wl_add_f32(&mg, t->name, 2, shape);
            for (int64_t r = 0; r < out; r++)
                for (int64_t c = 0; c < in; c++) {
                    double acc = 0;
                    for (int k = 0; k < LORA_R; k++) acc += (double)B[r * LORA_R + k] * A[k * in + c];
                    M[r * in + c] = (float)(W[r * in + c] + scale * acc);
                }
            free(W);
        }
    }
    const comi_tensor *emb = st_find_tensor(st, "model.embed_tokens.weight");
    int64_t d = emb->ne[0];
    if (!o->no_scalars) {
        static const char *const sc[4] = {"alpha_select", "beta_select", "alpha_merge", "beta_merge"};
        static const float v[4] = {1.5f, 0.5f, 2.0f, 0.25f};
        for (int i = 0; i < 4; i++) *wl_add_f32(&ck, sc[i], 0, NULL) = v[i];
    }
    float *aw = wl_add_f32(&ck, "semantic_alignment_layer.weight", 2, (int64_t[]){d, d});
    for (int64_t j = 0; j < d * d; j++) aw[j] = frand();
    wl_add_f32(&ck, "semantic_alignment_layer.bias", 1, (int64_t[]){d});
    if (o->extra) wl_add_f32(&ck, o->extra, 1, (int64_t[]){3});
    if (o->drop)
        for (size_t i = 0; i < ck.n; i++)
            if (!strcmp(ck.t[i].name, o->drop)) {
                free(ck.t[i].owned);
                ck.t[i] = ck.t[--ck.n];
            }
    if (o->bad_shape)
        for (size_t i = 0; i < ck.n; i++)
            if (!strcmp(ck.t[i].name, o->bad_shape) && ck.t[i].nd == 2) {
                ck.t[i].shape[0] /= 2; /* half the rows, half the bytes */
                ck.t[i].nbytes /= 2;
            }
    char path[1024];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    bool ok = st_write(path, &ck);
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s/config.json", base);
    if (ok && merged_dir) {
        mkdir(merged_dir, 0755);
        snprintf(path, sizeof path, "%s/model.safetensors", merged_dir);
        ok = st_write(path, &mg);
        snprintf(path, sizeof path, "%s/config.json", merged_dir);
        copy_file(cfg, path);
    }
    if (ok && enc_dir) {
        mkdir(enc_dir, 0755);
        snprintf(path, sizeof path, "%s/model.safetensors", enc_dir);
        ok = st_write(path, &en);
        snprintf(path, sizeof path, "%s/config.json", enc_dir);
        copy_file(cfg, path);
    }
    wl_free(&ck);
    wl_free(&mg);
    wl_free(&en);
    st_close(st);
    return ok;
}

static int32_t golden_ids[3][64];

static comi_answer_params params_for(const comi_pipeline *pl) {
    comi_answer_params ap = comi_pipeline_answer_params(pl);
    ap.merge.merge_size = 4;
    ap.max_new_tokens = 8;
    return ap;
}

static void run_model(const char *mname) {
    char base[1024], tokp[1024], name[256];
    snprintf(base, sizeof base, "%s/forward/models/%s.hf", golden, mname);
    snprintf(tokp, sizeof tokp, "%s/forward/models/%s.gguf", golden, mname);
    comi_ctx *ctx = comi_ctx_new(NULL);
    /* context and question: a fixed slice of ids */
    int32_t cids[40], qids[6];
    for (int i = 0; i < 40; i++) cids[i] = 100 + 37 * i;
    for (int i = 0; i < 6; i++) qids[i] = 500 + 11 * i;
    (void)golden_ids;

    /* 1. B = 0: the checkpoint pipeline equals the base used training-free */
    char d1[512];
    snprintf(d1, sizeof d1, "%s/%s-zero", tmpdir, mname);
    build_opts o = {.enc_layers = 2, .lora_zero = true};
    snprintf(name, sizeof name, "%s build B=0 checkpoint", mname);
    if (!test_check(name, build(base, d1, &o, NULL, NULL), "cannot write %s", d1)) goto out;
    comi_pipeline_load_params lp = comi_pipeline_load_default_params();
    lp.model = base;
    lp.checkpoint = d1;
    lp.tokenizer = tokp;
    lp.lora_alpha = LORA_ALPHA;
    comi_pipeline *pc = NULL, *pb = NULL;
    snprintf(name, sizeof name, "%s load B=0 checkpoint", mname);
    if (!test_check(name, comi_pipeline_load(ctx, &lp, &pc) == COMI_OK, "%s", comi_errmsg(ctx)))
        goto out;
    comi_pipeline_info pi;
    comi_pipeline_get_info(pc, &pi);
    printf("# %s\n", pi.description);
    snprintf(name, sizeof name, "%s checkpoint info", mname);
    test_check(name, pi.encoder_layers == 2 && pi.encoder_n_layer == 2 && pi.decoder_lora &&
                         pi.fusion_layers == 0 && !pi.shared_model,
               "layers %d/%d lora %d fusion %d", pi.encoder_layers, pi.encoder_n_layer,
               pi.decoder_lora, pi.fusion_layers);
    comi_answer_params ap = params_for(pc);
    snprintf(name, sizeof name, "%s checkpoint alpha/beta become the defaults", mname);
    test_check(name, ap.merge.alpha_select == 1.5f && ap.merge.beta_select == 0.5f &&
                         ap.merge.alpha_merge == 2.0f && ap.merge.beta_merge == 0.25f &&
                         ap.encoder_layers == 2,
               "%g %g %g %g", (double)ap.merge.alpha_select, (double)ap.merge.beta_select,
               (double)ap.merge.alpha_merge, (double)ap.merge.beta_merge);
    lp.checkpoint = NULL;
    if (comi_pipeline_load(ctx, &lp, &pb) != COMI_OK) {
        test_fail(name, "base: %s", comi_errmsg(ctx));
        comi_pipeline_free(pc);
        goto out;
    }
    comi_answer_result rc, rb;
    comi_status s1 = comi_pipeline_answer_ids(ctx, pc, cids, 40, qids, 6, &ap, &rc);
    comi_status s2 = comi_pipeline_answer_ids(ctx, pb, cids, 40, qids, 6, &ap, &rb);
    snprintf(name, sizeof name, "%s LoRA B=0 equals the base", mname);
    if (test_check(name, !s1 && !s2, "%s", comi_errmsg(ctx))) {
        double e1 = test_nmse(rc.memory, rb.memory, (size_t)(rb.n_memory * rb.d_model));
        double e2 = test_nmse(rc.logits, rb.logits, (size_t)rb.n_vocab);
        printf("# %s B=0: memory nmse %.3g, logits nmse %.3g\n", mname, e1, e2);
        test_check(name, rc.n_memory == rb.n_memory && e1 == 0 && e2 <= 1e-12 &&
                             rc.n_ids == rb.n_ids &&
                             !memcmp(rc.ids, rb.ids, (size_t)rc.n_ids * sizeof(int32_t)),
                   "memory nmse %g logits nmse %g", e1, e2);
        comi_answer_result_free(&rc);
        comi_answer_result_free(&rb);
    }
    comi_pipeline_free(pc);
    comi_pipeline_free(pb);
    pc = pb = NULL;

    /* 2. non-zero LoRA + fine-tuned encoder against independently merged weights */
    char d2[512], dm[512], de[512];
    snprintf(d2, sizeof d2, "%s/%s-lora", tmpdir, mname);
    snprintf(dm, sizeof dm, "%s/%s-merged", tmpdir, mname);
    snprintf(de, sizeof de, "%s/%s-enc", tmpdir, mname);
    o = (build_opts){.enc_layers = 2, .enc_norm_scale = 1.5f};
    snprintf(name, sizeof name, "%s LoRA equals weights merged in the test", mname);
    if (!test_check(name, build(base, d2, &o, dm, de), "cannot write %s", d2)) goto out;
    lp.checkpoint = d2;
    comi_model *menc = NULL, *mdec = NULL;
    if (comi_pipeline_load(ctx, &lp, &pc) || comi_model_load(ctx, de, NULL, &menc) ||
        comi_model_load(ctx, dm, NULL, &mdec) ||
        comi_pipeline_from_models(ctx, menc, mdec, NULL, &pb)) {
        test_fail(name, "%s", comi_errmsg(ctx));
    } else {
        ap = params_for(pc);
        s1 = comi_pipeline_answer_ids(ctx, pc, cids, 40, qids, 6, &ap, &rc);
        ap.encoder_layers = 2;
        s2 = comi_pipeline_answer_ids(ctx, pb, cids, 40, qids, 6, &ap, &rb);
        if (test_check(name, !s1 && !s2, "%s", comi_errmsg(ctx))) {
            double e1 = test_nmse(rc.memory, rb.memory, (size_t)(rb.n_memory * rb.d_model));
            double e2 = test_nmse(rc.logits, rb.logits, (size_t)rb.n_vocab);
            printf("# %s LoRA: memory nmse %.3g, logits nmse %.3g\n", mname, e1, e2);
            test_check(name, rc.n_memory == rb.n_memory && e1 <= 1e-10 && e2 <= 1e-6,
                       "memory nmse %g logits nmse %g", e1, e2);
            snprintf(name, sizeof name, "%s LoRA changes the logits (B != 0 is applied)", mname);
            comi_answer_result r0;
            comi_answer_params apb = ap;
            comi_pipeline *pbase = NULL;
            lp.checkpoint = NULL;
            if (!comi_pipeline_load(ctx, &lp, &pbase) &&
                !comi_pipeline_answer_ids(ctx, pbase, cids, 40, qids, 6, &apb, &r0)) {
                double e3 = test_nmse(rc.logits, r0.logits, (size_t)r0.n_vocab);
                test_check(name, e3 > 1e-4, "nmse vs base %g", e3);
                comi_answer_result_free(&r0);
            }
            comi_pipeline_free(pbase);
            comi_answer_result_free(&rc);
            comi_answer_result_free(&rb);
        }
    }
    comi_pipeline_free(pc);
    comi_pipeline_free(pb);
    comi_model_free(menc);
    comi_model_free(mdec);
    pc = pb = NULL;

    /* 3. fusion block with known weights (the base's layer 0 + final norm) */
    char d3[512];
    snprintf(d3, sizeof d3, "%s/%s-fusion", tmpdir, mname);
    o = (build_opts){.enc_layers = 2, .lora_zero = true, .fusion = true};
    snprintf(name, sizeof name, "%s fusion block equals the base's first layer + final norm", mname);
    lp.checkpoint = d3;
    comi_model *mb = NULL;
    if (!build(base, d3, &o, NULL, NULL) || comi_pipeline_load(ctx, &lp, &pc) ||
        comi_model_load(ctx, base, NULL, &mb)) {
        test_fail(name, "%s", comi_errmsg(ctx));
    } else {
        comi_pipeline_get_info(pc, &pi);
        ap = params_for(pc);
        s1 = comi_pipeline_answer_ids(ctx, pc, cids, 40, qids, 6, &ap, &rc);
        if (test_check(name, !s1 && pi.fusion_layers == 1, "%s (fusion %d)", comi_errmsg(ctx),
                       pi.fusion_layers)) {
            int64_t nm = rc.n_memory, d = rc.d_model;
            float *fused = malloc((size_t)(nm * d) * sizeof(float));
            float *ref = malloc((size_t)(nm * d) * sizeof(float));
            comi_session *s = NULL;
            comi_eval_params ep = comi_eval_default_params();
            ep.n_layers = 1;
            ep.hidden_out = ref;
            comi_status st = comi_pipeline_fuse(ctx, pc, rc.memory, nm, fused);
            if (!st) st = comi_session_new(ctx, mb, nm, &s);
            if (!st) st = comi_session_eval(ctx, s, NULL, rc.memory, nm, &ep);
            if (test_check(name, !st, "%s", comi_errmsg(ctx))) {
                double e1 = test_nmse(fused, ref, (size_t)(nm * d));
                printf("# %s fusion nmse %.3g\n", mname, e1);
                test_check(name, e1 <= 1e-12, "nmse %g", e1);
                /* and the decoder reads the fused memory */
                float *lg = malloc((size_t)rc.n_vocab * sizeof(float));
                int32_t ids[8], n_ids;
                comi_generate_params gp = comi_generate_default_params();
                gp.max_new_tokens = 8;
                gp.repetition_penalty = 1.3f;
                st = comi_pipeline_decode(ctx, pc, ref, nm, qids, 6, &gp, lg, ids, &n_ids);
                snprintf(name, sizeof name, "%s decoder reads the fused memory", mname);
                test_check(name, !st && test_nmse(rc.logits, lg, (size_t)rc.n_vocab) <= 1e-12 &&
                                     n_ids == rc.n_ids,
                           "%s", comi_errmsg(ctx));
                free(lg);
            }
            comi_session_free(s);
            free(fused);
            free(ref);
            comi_answer_result_free(&rc);
        }
    }
    comi_pipeline_free(pc);
    comi_model_free(mb);
    pc = NULL;

    /* 4. comi convert: the GGUF files answer like the checkpoint they came from */
    char d5[512], pre[512];
    snprintf(d5, sizeof d5, "%s/%s-conv", tmpdir, mname);
    o = (build_opts){.enc_layers = 2, .fusion = true, .enc_norm_scale = 1.25f};
    lp.checkpoint = d5;
    pc = NULL;
    snprintf(name, sizeof name, "%s convert: checkpoint with LoRA + fusion loads", mname);
    if (test_check(name, build(base, d5, &o, NULL, NULL) && !comi_pipeline_load(ctx, &lp, &pc),
                   "%s", comi_errmsg(ctx))) {
        ap = params_for(pc);
        comi_answer_result r0;
        s1 = comi_pipeline_answer_ids(ctx, pc, cids, 40, qids, 6, &ap, &r0);
        static const char *const types[] = {"F32", "F16", "Q8_0", "Q4_K"};
        static const double tol[] = {1e-9, 1e-4, 3e-2, 3e-2};
        for (int ti = 0; !s1 && ti < 4; ti++) {
            char summary[512];
            snprintf(pre, sizeof pre, "%s/%s-%s", tmpdir, mname, types[ti]);
            snprintf(name, sizeof name, "%s convert to %s", mname, types[ti]);
            comi_status st = comi_checkpoint_convert(ctx, d5, base, pre, types[ti], LORA_ALPHA,
                                                     summary, sizeof summary);
            if (!test_check(name, !st, "%s", comi_errmsg(ctx))) continue;
            printf("# %s\n", summary);
            comi_pipeline *pg = NULL;
            comi_pipeline_load_params lg = lp;
            lg.checkpoint = pre;
            lg.lora_alpha = 0;
            snprintf(name, sizeof name, "%s converted %s answers like the checkpoint", mname,
                     types[ti]);
            if (!test_check(name, !comi_pipeline_load(ctx, &lg, &pg), "%s", comi_errmsg(ctx)))
                continue;
            comi_pipeline_info gi;
            comi_pipeline_get_info(pg, &gi);
            comi_answer_params apg = params_for(pg);
            st = comi_pipeline_answer_ids(ctx, pg, cids, 40, qids, 6, &apg, &rc);
            if (test_check(name, !st && gi.fusion_layers == 1 && gi.encoder_layers == 2 &&
                                     apg.merge.alpha_merge == 2.0f,
                           "%s (fusion %d, layers %d)", comi_errmsg(ctx), gi.fusion_layers,
                           gi.encoder_layers)) {
                double e1 = test_nmse(rc.memory, r0.memory, (size_t)(r0.n_memory * r0.d_model));
                double e2 = test_nmse(rc.logits, r0.logits, (size_t)r0.n_vocab);
                printf("# %s %s: memory nmse %.3g, logits nmse %.3g\n", mname, types[ti], e1, e2);
                test_check(name, rc.n_memory == r0.n_memory && e1 <= tol[ti] && e2 <= tol[ti],
                           "memory nmse %g logits nmse %g > %g", e1, e2, tol[ti]);
                comi_answer_result_free(&rc);
            }
            if (ti == 3) {
                snprintf(name, sizeof name, "%s Q4_K rows of 64 fall back and say so", mname);
                test_check(name, strstr(summary, "fell back") && !strstr(summary, "(0 fell"),
                           "%s", summary);
            }
            comi_pipeline_free(pg);
        }
        if (!s1) comi_answer_result_free(&r0);
        snprintf(name, sizeof name, "%s convert rejects an unknown type", mname);
        test_check(name, comi_checkpoint_convert(ctx, d5, base, pre, "Q2_K", 0, NULL, 0) ==
                             COMI_ERR_INVALID_ARG,
                   "%s", comi_errmsg(ctx));
    }
    comi_pipeline_free(pc);
    pc = NULL;

    /* 5. bad checkpoints */
    struct {
        const char *what;
        build_opts o;
        const char *want;
    } bad[] = {
        {"missing key", {.enc_layers = 2, .drop = "encoder.model.layers.1.mlp.up_proj.weight"},
         "model.layers.1.mlp.up_proj.weight"},
        {"unknown key", {.enc_layers = 2, .extra = "decoder.base_model.model.score.weight"},
         "decoder.base_model.model.score.weight"},
        {"shape mismatch", {.enc_layers = 2, .bad_shape = "encoder.model.layers.0.mlp.gate_proj.weight"},
         "model.layers.0.mlp.gate_proj.weight' has shape"},
        {"missing scalar", {.enc_layers = 2, .no_scalars = true}, "alpha_select"},
        {"missing LoRA half",
         {.enc_layers = 2,
          .drop = "decoder.base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight"},
         "v_proj"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char d4[512];
        snprintf(d4, sizeof d4, "%s/%s-bad%zu", tmpdir, mname, i);
        snprintf(name, sizeof name, "%s bad checkpoint: %s", mname, bad[i].what);
        lp.checkpoint = d4;
        comi_status st = build(base, d4, &bad[i].o, NULL, NULL) ? comi_pipeline_load(ctx, &lp, &pc)
                                                                : COMI_ERR_IO;
        printf("# %s -> %s\n", name, comi_errmsg(ctx));
        test_check(name, st != COMI_OK && pc == NULL && strstr(comi_errmsg(ctx), bad[i].want),
                   "status %d, message '%s' lacks '%s'", st, comi_errmsg(ctx), bad[i].want);
        comi_pipeline_free(pc);
        pc = NULL;
    }
out:
    comi_ctx_free(ctx);
}

int main(void) {
    golden = test_golden_dir();
    if (!golden) {
        test_skip("checkpoint import", "golden data (tiny HF models) not found (set COMI_GOLDEN)");
        return 0;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/comi-ckpt-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        test_fail("tmpdir", "mkdtemp failed");
        return 1;
    }
    run_model("tiny-llama-spm");
    run_model("tiny-qwen2-bpe");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    return test_n_failed ? 1 : 0;
}
