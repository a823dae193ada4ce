/*
 * train.c — the COMI module in float32 master weights: built from a base
 * model, loaded from / saved to the authors' checkpoint names, and one
 * example's forward pass with saved activations followed by its backward
 * pass (the authors' COMI.forward in its default training set-up, with the
 * merge of TKDR.compress_by_mrmr; DESIGN.md "Training").
 *
 *   encoder  [ctx ; question] ids -> embed -> K blocks -> norm -> H (n, d)
 *   merge    group sizes from mig_merge (no gradient); fine weights
 *            w = softmax(a_m rel - b_m red) and memory = sum w H (gradient)
 *   fusion   memories -> F blocks -> norm (positions from 0, causal)
 *   decoder  [fused ; question embeds ; answer embeds] -> frozen blocks with
 *            LoRA on q/k/v/o -> norm -> lm_head on the answer-predicting rows
 *   loss     mean cross-entropy over the answer ids
 *
 * Each block's forward and backward are side by side below; big products go
 * through cblas_sgemm. Shapes in comments are (rows, cols), row-major.
 */
#include "comi/train.h"

#include "comi/mig.h"
#include "formats/quant.h"
#include "formats/safetensors.h"
#include "runtime/model.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* storage                                                                  */
/* ------------------------------------------------------------------------ */

static float *tr_alloc(comi_err *e, tr_model *m, int64_t n) {
    if (m->n_allocs == m->cap_allocs) {
        int32_t cap = m->cap_allocs ? 2 * m->cap_allocs : 256;
        void **a = realloc(m->allocs, (size_t)cap * sizeof *a);
        if (!a) {
            comi_err_set(e, COMI_ERR_NOMEM, "out of memory (training tensors)");
            return NULL;
        }
        m->allocs = a;
        m->cap_allocs = cap;
    }
    float *p = comi_calloc_array(e, (size_t)(n > 0 ? n : 1), sizeof(float), "training tensor");
    if (p) m->allocs[m->n_allocs++] = p;
    return p;
}

void tr_model_free(tr_model *m) {
    if (!m) return;
    for (int32_t i = 0; i < m->n_allocs; i++) free(m->allocs[i]);
    free(m->allocs);
    free(m->params);
    free(m->enc);
    free(m->fus);
    free(m->dec);
    free(m->g_enc);
    free(m->g_fus);
    free(m->g_dec);
    free(m);
}

tr_opts tr_default_opts(void) {
    return (tr_opts){.encoder_layers = 8,
                     .fusion_layers = 1,
                     .merge_size = 16,
                     .lora_r = 128,
                     .lora_alpha = 32.0f,
                     .lora_dropout = 0.05f,
                     .seed = 42};
}

/* Registers a trainable tensor: value, gradient and both AdamW moments. */
static float *add_param(comi_err *e, tr_model *m, float **grad, int32_t n_dims, int64_t r,
                        int64_t c, const char *fmt, ...) COMI_PRINTF(7, 8);
static float *add_param(comi_err *e, tr_model *m, float **grad, int32_t n_dims, int64_t r,
                        int64_t c, const char *fmt, ...) {
    tr_param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->n_dims = n_dims;
    p->shape[0] = r;
    p->shape[1] = n_dims == 2 ? c : 1;
    p->n = r * p->shape[1];
    if (!(p->w = tr_alloc(e, m, p->n)) || !(p->g = tr_alloc(e, m, p->n)) ||
        !(p->m = tr_alloc(e, m, p->n)) || !(p->v = tr_alloc(e, m, p->n)))
        return NULL;
    m->n_params++;
    if (grad) *grad = p->g;
    return p->w;
}

/* Copies a (rows, cols) weight (ne = (cols, rows)) to float32; perm_hd > 0
 * un-permutes GGUF llama q/k rows back to Hugging Face order. */
static void deq_matrix(const comi_tensor *t, float *dst, int64_t perm_hd) {
    const int64_t cols = t->ne[0], rows = t->ne[1];
    size_t rb;
    quant_row_bytes(t->type, cols, &rb);
    for (int64_t o = 0; o < rows; o++) {
        int64_t src = o;
        if (perm_hd > 0) {
            int64_t h = o / perm_hd, i = o % perm_hd;
            src = h * perm_hd + (i < perm_hd / 2 ? 2 * i : 2 * (i - perm_hd / 2) + 1);
        }
        quant_dequant_row(t->type, (const uint8_t *)t->data + (size_t)src * rb, dst + o * cols,
                          cols);
    }
}

static void copy_vec(float *dst, const float *src, int64_t n) {
    if (src) memcpy(dst, src, (size_t)n * sizeof(float));
}

static const char *const proj_name[TR_NPROJ] = {"q", "k", "v", "o"};

/* A fully trained block (encoder or fusion) named prefix + "layers.L.",
 * initialised from base layer bl. */
static comi_status add_block(comi_err *e, tr_model *m, const comi_model *base, int64_t bl,
                             const char *prefix, int32_t l, tr_block *w, tr_block *g) {
    const tr_cfg *c = &m->c;
    const model_layer *L = &base->layers[bl];
    const int64_t perm = base->rope_mode == OPS_ROPE_NORMAL ? c->hd : 0;
#define P2(field, r, cc, what)                                                                     \
    if (!(w->field = add_param(e, m, &g->field, 2, r, cc, "%slayers.%d.%s", prefix, l, what)))    \
    return e->status
#define P1(field, r, what)                                                                         \
    if (!(w->field = add_param(e, m, &g->field, 1, r, 1, "%slayers.%d.%s", prefix, l, what)))     \
    return e->status
    P1(attn_norm, c->d, "input_layernorm.weight");
    copy_vec(w->attn_norm, L->attn_norm, c->d);
    P2(wq, c->q_dim, c->d, "self_attn.q_proj.weight");
    deq_matrix(&L->wq, w->wq, perm);
    if (c->bias) {
        P1(bq, c->q_dim, "self_attn.q_proj.bias");
        copy_vec(w->bq, L->bq, c->q_dim);
    }
    P2(wk, c->kv_dim, c->d, "self_attn.k_proj.weight");
    deq_matrix(&L->wk, w->wk, perm);
    if (c->bias) {
        P1(bk, c->kv_dim, "self_attn.k_proj.bias");
        copy_vec(w->bk, L->bk, c->kv_dim);
    }
    P2(wv, c->kv_dim, c->d, "self_attn.v_proj.weight");
    deq_matrix(&L->wv, w->wv, 0);
    if (c->bias) {
        P1(bv, c->kv_dim, "self_attn.v_proj.bias");
        copy_vec(w->bv, L->bv, c->kv_dim);
    }
    P2(wo, c->d, c->q_dim, "self_attn.o_proj.weight");
    deq_matrix(&L->wo, w->wo, 0);
    if (c->qk_norm) {
        P1(qn, c->hd, "self_attn.q_norm.weight");
        copy_vec(w->qn, L->q_norm, c->hd);
        P1(kn, c->hd, "self_attn.k_norm.weight");
        copy_vec(w->kn, L->k_norm, c->hd);
    }
    P1(ffn_norm, c->d, "post_attention_layernorm.weight");
    copy_vec(w->ffn_norm, L->ffn_norm, c->d);
    P2(wg, c->ff, c->d, "mlp.gate_proj.weight");
    deq_matrix(&L->w_gate, w->wg, 0);
    P2(wu, c->ff, c->d, "mlp.up_proj.weight");
    deq_matrix(&L->w_up, w->wu, 0);
    P2(wd, c->d, c->ff, "mlp.down_proj.weight");
    deq_matrix(&L->w_down, w->wd, 0);
#undef P1
#undef P2
    return COMI_OK;
}

/* splitmix64: the generator behind LoRA initialisation and dropout masks. */
static uint64_t mix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) {
    return (double)(mix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* A frozen decoder block with trainable LoRA on q/k/v/o. */
static comi_status add_dec_block(comi_err *e, tr_model *m, const comi_model *base, int32_t l,
                                 uint64_t *rng) {
    const tr_cfg *c = &m->c;
    const model_layer *L = &base->layers[l];
    tr_block *w = &m->dec[l], *g = &m->g_dec[l];
    const int64_t perm = base->rope_mode == OPS_ROPE_NORMAL ? c->hd : 0;
#define FZ(field, n)                                                                               \
    if (!(w->field = tr_alloc(e, m, n))) return e->status
    FZ(attn_norm, c->d);
    copy_vec(w->attn_norm, L->attn_norm, c->d);
    FZ(ffn_norm, c->d);
    copy_vec(w->ffn_norm, L->ffn_norm, c->d);
    FZ(wq, c->q_dim * c->d);
    deq_matrix(&L->wq, w->wq, perm);
    FZ(wk, c->kv_dim * c->d);
    deq_matrix(&L->wk, w->wk, perm);
    FZ(wv, c->kv_dim * c->d);
    deq_matrix(&L->wv, w->wv, 0);
    FZ(wo, c->d * c->q_dim);
    deq_matrix(&L->wo, w->wo, 0);
    FZ(wg, c->ff * c->d);
    deq_matrix(&L->w_gate, w->wg, 0);
    FZ(wu, c->ff * c->d);
    deq_matrix(&L->w_up, w->wu, 0);
    FZ(wd, c->d * c->ff);
    deq_matrix(&L->w_down, w->wd, 0);
    if (c->bias) {
        FZ(bq, c->q_dim);
        copy_vec(w->bq, L->bq, c->q_dim);
        FZ(bk, c->kv_dim);
        copy_vec(w->bk, L->bk, c->kv_dim);
        FZ(bv, c->kv_dim);
        copy_vec(w->bv, L->bv, c->kv_dim);
    }
    if (c->qk_norm) {
        FZ(qn, c->hd);
        copy_vec(w->qn, L->q_norm, c->hd);
        FZ(kn, c->hd);
        copy_vec(w->kn, L->k_norm, c->hd);
    }
#undef FZ
    const int64_t in[TR_NPROJ] = {c->d, c->d, c->d, c->q_dim};
    const int64_t out[TR_NPROJ] = {c->q_dim, c->kv_dim, c->kv_dim, c->d};
    for (int k = 0; k < TR_NPROJ; k++) {
        w->la[k] = add_param(e, m, &g->la[k], 2, m->lora_r, in[k],
                             "decoder.base_model.model.model.layers.%d.self_attn.%s_proj.lora_A."
                             "default.weight",
                             l, proj_name[k]);
        if (!w->la[k]) return e->status;
        w->lb[k] = add_param(e, m, &g->lb[k], 2, out[k], m->lora_r,
                             "decoder.base_model.model.model.layers.%d.self_attn.%s_proj.lora_B."
                             "default.weight",
                             l, proj_name[k]);
        if (!w->lb[k]) return e->status;
        /* PEFT: kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); B = 0 */
        const double bound = 1.0 / sqrt((double)in[k]);
        for (int64_t i = 0; i < m->lora_r * in[k]; i++)
            w->la[k][i] = (float)((2.0 * unif(rng) - 1.0) * bound);
    }
    return COMI_OK;
}

comi_status tr_model_new(comi_err *e, const comi_model *base, const tr_opts *o, tr_model **out) {
    *out = NULL;
    if (o->encoder_layers < 1 || o->encoder_layers > base->n_layer)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "encoder layers %d: the base has %lld",
                            o->encoder_layers, (long long)base->n_layer);
    if (o->fusion_layers < 0 || o->fusion_layers > base->n_layer)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "fusion layers %d: must be 0..%lld",
                            o->fusion_layers, (long long)base->n_layer);
    if (o->lora_r < 1 || o->merge_size < 1 || !(o->lora_dropout >= 0 && o->lora_dropout < 1))
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "lora r %lld, merge size %lld, dropout %g: out of range",
                            (long long)o->lora_r, (long long)o->merge_size, o->lora_dropout);
    if (base->has_lora)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "the base model must not carry a LoRA");
    tr_model *m = calloc(1, sizeof *m);
    if (!m) return comi_err_set(e, COMI_ERR_NOMEM, "out of memory (trainer)");
    tr_cfg *c = &m->c;
    c->d = base->n_embd;
    c->n_head = base->n_head;
    c->n_kv = base->n_head_kv;
    c->hd = base->head_dim;
    c->q_dim = base->q_dim;
    c->kv_dim = base->kv_dim;
    c->ff = base->n_ff;
    c->vocab = base->n_vocab;
    c->eps = base->norm_eps;
    c->theta = base->rope_theta;
    c->rope = OPS_ROPE_NEOX;
    c->bias = base->qkv_bias;
    c->qk_norm = base->qk_norm;
    m->n_enc = o->encoder_layers;
    m->n_fus = o->fusion_layers;
    m->n_dec = (int32_t)base->n_layer;
    m->lora_r = o->lora_r;
    m->lora_alpha = o->lora_alpha;
    m->lora_dropout = o->lora_dropout;
    m->merge = comi_merge_default_params();
    m->merge.merge_size = o->merge_size;
    m->eos_id = base->n_eos > 0 ? base->eos_ids[0] : -1;
    /* at most 18 tensors per block, 8 LoRA per decoder block, embed + 2 norms */
    int32_t cap = 18 * (m->n_enc + m->n_fus) + 8 * m->n_dec + 4;
    m->params = calloc((size_t)cap, sizeof *m->params);
    m->enc = calloc((size_t)m->n_enc, sizeof *m->enc);
    m->g_enc = calloc((size_t)m->n_enc, sizeof *m->g_enc);
    m->fus = calloc((size_t)m->n_fus + 1, sizeof *m->fus);
    m->g_fus = calloc((size_t)m->n_fus + 1, sizeof *m->g_fus);
    m->dec = calloc((size_t)m->n_dec, sizeof *m->dec);
    m->g_dec = calloc((size_t)m->n_dec, sizeof *m->g_dec);
    comi_status st = COMI_OK;
    if (!m->params || !m->enc || !m->g_enc || !m->fus || !m->g_fus || !m->dec || !m->g_dec)
        st = comi_err_set(e, COMI_ERR_NOMEM, "out of memory (trainer)");
    /* decoder (frozen) and its LoRA first: the checkpoint's key order */
    uint64_t rng = o->seed;
    if (!st && (!(m->dec_embd = tr_alloc(e, m, c->vocab * c->d)) ||
                !(m->dec_norm = tr_alloc(e, m, c->d))))
        st = e->status;
    if (!st) {
        deq_matrix(&base->tok_embd, m->dec_embd, 0);
        copy_vec(m->dec_norm, base->output_norm, c->d);
        if (base->output.data == base->tok_embd.data) {
            m->lm_head = m->dec_embd;
        } else if (!(m->lm_head = tr_alloc(e, m, c->vocab * c->d))) {
            st = e->status;
        } else {
            deq_matrix(&base->output, m->lm_head, 0);
        }
    }
    for (int32_t l = 0; !st && l < m->n_dec; l++) st = add_dec_block(e, m, base, l, &rng);
    if (!st && !(m->enc_embd = add_param(e, m, &m->g_enc_embd, 2, c->vocab, c->d,
                                         "encoder.model.embed_tokens.weight")))
        st = e->status;
    if (!st) memcpy(m->enc_embd, m->dec_embd, (size_t)(c->vocab * c->d) * sizeof(float));
    for (int32_t l = 0; !st && l < m->n_enc; l++)
        st = add_block(e, m, base, l, "encoder.model.", l, &m->enc[l], &m->g_enc[l]);
    if (!st && !(m->enc_norm = add_param(e, m, &m->g_enc_norm, 1, c->d, 1,
                                         "encoder.model.norm.weight")))
        st = e->status;
    if (!st) copy_vec(m->enc_norm, base->output_norm, c->d);
    for (int32_t l = 0; !st && l < m->n_fus; l++)
        st = add_block(e, m, base, l, "memory_fusion_layer.model.", l, &m->fus[l], &m->g_fus[l]);
    if (!st && m->n_fus > 0) {
        if (!(m->fus_norm = add_param(e, m, &m->g_fus_norm, 1, c->d, 1,
                                      "memory_fusion_layer.model.norm.weight")))
            st = e->status;
        else
            copy_vec(m->fus_norm, base->output_norm, c->d);
    }
    static const char *const mig_names[4] = {"alpha_select", "beta_select", "alpha_merge",
                                             "beta_merge"};
    for (int i = 0; i < 4; i++) {
        m->mig_val[i] = 1.0f;
        tr_param *p = &m->mig[i];
        snprintf(p->name, sizeof p->name, "%s", mig_names[i]);
        p->n_dims = 1;
        p->shape[0] = p->shape[1] = 1;
        p->n = 1;
        p->w = &m->mig_val[i];
    }
    if (st) {
        tr_model_free(m);
        return st;
    }
    *out = m;
    return COMI_OK;
}

tr_param *tr_find(tr_model *m, const char *name) {
    for (int32_t i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    for (int i = 0; i < 4; i++)
        if (!strcmp(m->mig[i].name, name)) return &m->mig[i];
    return NULL;
}

static bool has_prefix(const char *s, const char *p) {
    return strncmp(s, p, strlen(p)) == 0;
}

/* Keys of an authors' checkpoint that hold the base model's own (frozen)
 * tensors or outputs the module does not use. */
static bool base_own_key(const char *k) {
    if (has_prefix(k, "decoder.") && !strstr(k, ".lora_")) return true;
    if (has_prefix(k, "encoder.lm_head.") || has_prefix(k, "memory_fusion_layer.lm_head.") ||
        has_prefix(k, "memory_fusion_layer.model.embed_tokens."))
        return true;
    return strstr(k, "rotary_emb.inv_freq") != NULL;
}

comi_status tr_model_load(comi_err *e, tr_model *m, const char *path, bool require_all) {
    st_model *st = NULL;
    comi_status s = st_open_file(e, path, &st);
    if (s) return s;
    int32_t found = 0;
    for (int64_t i = 0; !s && i < st_n_tensors(st); i++) {
        const comi_tensor *t = st_tensor_at(st, i);
        char name[256];
        if (has_prefix(t->name, "icae."))
            snprintf(name, sizeof name, "encoder.%s", t->name + 5);
        else
            snprintf(name, sizeof name, "%s", t->name);
        tr_param *p = tr_find(m, name);
        if (!p) {
            if (base_own_key(name)) continue;
            s = comi_err_set(e, COMI_ERR_FORMAT,
                             "%s: tensor '%s' is not part of this module (encoder layers %d, "
                             "fusion layers %d, LoRA r %lld)",
                             path, t->name, m->n_enc, m->n_fus, (long long)m->lora_r);
            break;
        }
        int64_t n = 1;
        for (int d = 0; d < t->n_dims; d++) n *= t->ne[d];
        bool shape_ok = n == p->n && (t->n_dims == p->n_dims || p->n == 1) &&
                        (p->n_dims == 1 || (t->ne[0] == p->shape[1] && t->ne[1] == p->shape[0]));
        if (!shape_ok) {
            s = comi_err_set(e, COMI_ERR_FORMAT, "%s: tensor '%s' has the wrong shape", path,
                             t->name);
            break;
        }
        if (t->type != COMI_TYPE_F32 && t->type != COMI_TYPE_F16 && t->type != COMI_TYPE_BF16) {
            s = comi_err_set(e, COMI_ERR_FORMAT, "%s: tensor '%s' is %s (need F32, F16 or BF16)",
                             path, t->name, quant_type_name(t->type));
            break;
        }
        quant_dequant_row(t->type, t->data, p->w, p->n);
        if (p->g) found++;
    }
    if (!s && require_all && found < m->n_params)
        s = comi_err_set(e, COMI_ERR_FORMAT, "%s: holds %d of the module's %d trained tensors", path,
                         found, m->n_params);
    for (int i = 0; i < 4; i++) {
        /* the merge reads the scalars from here */
        float v = m->mig_val[i];
        if (i == 0) m->merge.alpha_select = v;
        if (i == 1) m->merge.beta_select = v;
        if (i == 2) m->merge.alpha_merge = v;
        if (i == 3) m->merge.beta_merge = v;
    }
    st_close(st);
    return s;
}

comi_status tr_model_save(comi_err *e, const tr_model *m, const char *path, bool with_grad) {
    json_t *hdr = json_object();
    size_t off = 0;
    int32_t n_total = m->n_params + (with_grad ? 0 : 4);
    for (int32_t i = 0; i < n_total; i++) {
        const tr_param *p = i < m->n_params ? &m->params[i] : &m->mig[i - m->n_params];
        json_t *shape = p->n_dims == 2 ? json_pack("[II]", (json_int_t)p->shape[0],
                                                   (json_int_t)p->shape[1])
                                       : json_pack("[I]", (json_int_t)p->shape[0]);
        size_t bytes = (size_t)p->n * sizeof(float);
        json_object_set_new(hdr, p->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", "F32", "shape", shape,
                                      "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + bytes)));
        off += bytes;
    }
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    char *js = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    if (!js) return comi_err_set(e, COMI_ERR_NOMEM, "out of memory (checkpoint header)");
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8;
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(js);
        return comi_err_set(e, COMI_ERR_IO, "%s: cannot write", tmp);
    }
    uint64_t hlen = hl + pad;
    bool ok = fwrite(&hlen, 8, 1, f) == 1 && fwrite(js, 1, hl, f) == hl &&
              fwrite("        ", 1, pad, f) == pad;
    free(js);
    for (int32_t i = 0; ok && i < n_total; i++) {
        const tr_param *p = i < m->n_params ? &m->params[i] : &m->mig[i - m->n_params];
        const float *src = with_grad ? p->g : p->w;
        ok = fwrite(src, sizeof(float), (size_t)p->n, f) == (size_t)p->n;
    }
    if (fclose(f) != 0) ok = false;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return comi_err_set(e, COMI_ERR_IO, "%s: write failed", path);
    }
    return COMI_OK;
}

/* ------------------------------------------------------------------------ */
/* scratch of one example                                                   */
/* ------------------------------------------------------------------------ */

typedef struct scratch {
    void **p;
    int32_t n, cap;
    comi_err *e;
    bool failed;
} scratch;

static float *sc_get(scratch *s, int64_t n) {
    if (s->failed) return NULL;
    if (s->n == s->cap) {
        int32_t cap = s->cap ? 2 * s->cap : 512;
        void **np = realloc(s->p, (size_t)cap * sizeof *np);
        if (!np) goto fail;
        s->p = np;
        s->cap = cap;
    }
    float *b = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!b) goto fail;
    s->p[s->n++] = b;
    return b;
fail:
    s->failed = true;
    comi_err_set(s->e, COMI_ERR_NOMEM, "out of memory (training activations, %lld floats)",
                 (long long)n);
    return NULL;
}

static void sc_free(scratch *s) {
    for (int32_t i = 0; i < s->n; i++) free(s->p[i]);
    free(s->p);
}

/* ------------------------------------------------------------------------ */
/* matrix products: Y (n, out) = X (n, in) W^T with W (out, in)            */
/* ------------------------------------------------------------------------ */

static void mm_fwd(float *y, const float *x, const float *w, int64_t n, int64_t in, int64_t out,
                   float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, 1.0f, x,
                (int)in, w, (int)in, beta, y, (int)out);
}

/* dx (n, in) += dy (n, out) W */
static void mm_bwd_x(float *dx, const float *dy, const float *w, int64_t n, int64_t in,
                     int64_t out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)out, 1.0f, dy,
                (int)out, w, (int)in, 1.0f, dx, (int)in);
}

/* dW (out, in) += dy^T x */
static void mm_bwd_w(float *dw, const float *dy, const float *x, int64_t n, int64_t in,
                     int64_t out) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n, 1.0f, dy,
                (int)out, x, (int)in, 1.0f, dw, (int)in);
}

static void bias_fwd(float *y, const float *b, int64_t n, int64_t out) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < out; i++) y[t * out + i] += b[i];
}

static void bias_bwd(float *gb, const float *dy, int64_t n, int64_t out) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < out; i++) gb[i] += dy[t * out + i];
}

/* ------------------------------------------------------------------------ */
/* one transformer block                                                    */
/* ------------------------------------------------------------------------ */

typedef struct bact {
    int64_t n;
    const float *x;           /* (n, d) input */
    float *xn1, *rs1;         /* (n, d), (n) attention RMSNorm */
    float *q, *k, *v;         /* (n, q_dim), (n, kv_dim) x2: projections (+bias, +LoRA) */
    float *rsq, *rsk;         /* (n * n_head), (n * n_kv): q/k-norm rstd, or NULL */
    float *qr, *kr;           /* q, k after q/k-norm and RoPE */
    float *lx[TR_NPROJ];      /* LoRA input after dropout (n, in), or NULL: the input itself */
    float *lmask[TR_NPROJ];   /* dropout multipliers (n, in), or NULL */
    float *lu[TR_NPROJ];      /* (n, r) = lx A^T */
    float *p;                 /* (n_head, n, n) attention probabilities */
    float *att;               /* (n, q_dim) attention output */
    float *h1;                /* (n, d) residual after attention */
    float *xn2, *rs2;         /* (n, d), (n) MLP RMSNorm */
    float *g, *u, *a;         /* (n, ff): gate, up, silu(gate) * up */
} bact;

/* y (n, out) += s (xd A^T) B^T; xd = dropout(x) when dropout is on. */
static bool lora_fwd(scratch *sc, const tr_model *M, const tr_block *w, int k, bact *a,
                     const float *x, int64_t n, int64_t in, int64_t out, float *y,
                     uint64_t *rng) {
    const int64_t r = M->lora_r;
    const float s = M->lora_alpha / (float)r;
    const float *xd = x;
    if (M->lora_dropout > 0 && rng) {
        float *mask = sc_get(sc, n * in), *xc = sc_get(sc, n * in);
        if (!mask || !xc) return false;
        const float keep = 1.0f / (1.0f - M->lora_dropout);
        for (int64_t i = 0; i < n * in; i++) {
            mask[i] = unif(rng) < M->lora_dropout ? 0.0f : keep;
            xc[i] = x[i] * mask[i];
        }
        a->lmask[k] = mask;
        a->lx[k] = xc;
        xd = xc;
    }
    float *u = a->lu[k] = sc_get(sc, n * r);
    if (!u) return false;
    mm_fwd(u, xd, w->la[k], n, in, r, 0.0f);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)r, s, u, (int)r,
                w->lb[k], (int)r, 1.0f, y, (int)out);
    return true;
}

/* Given dy (n, out): gB += s dy^T u; du = s dy B; gA += du^T xd; dx += (du A) mask. */
static bool lora_bwd(scratch *sc, const tr_model *M, const tr_block *w, const tr_block *gw,
                     int k, const bact *a, const float *x, int64_t n, int64_t in, int64_t out,
                     const float *dy, float *dx) {
    const int64_t r = M->lora_r;
    const float s = M->lora_alpha / (float)r;
    float *du = sc_get(sc, n * r); /* (n, r) */
    if (!du) return false;
    if (gw->lb[k])
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)r, (int)n, s, dy,
                    (int)out, a->lu[k], (int)r, 1.0f, gw->lb[k], (int)r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)r, (int)out, s, dy,
                (int)out, w->lb[k], (int)r, 0.0f, du, (int)r);
    const float *xd = a->lx[k] ? a->lx[k] : x;
    if (gw->la[k]) mm_bwd_w(gw->la[k], du, xd, n, in, r);
    if (a->lmask[k]) {
        float *dxd = sc_get(sc, n * in);
        if (!dxd) return false;
        mm_bwd_x(dxd, du, w->la[k], n, in, r);
        for (int64_t i = 0; i < n * in; i++) dx[i] += dxd[i] * a->lmask[k][i];
    } else {
        mm_bwd_x(dx, du, w->la[k], n, in, r);
    }
    return true;
}

/* out (n, d) = block(x); saves what the backward pass needs in a. rng:
 * dropout generator (NULL: no dropout). */
static bool block_fwd(scratch *sc, const tr_model *M, const tr_block *w, bact *a, const float *x,
                      int64_t n, float *out, uint64_t *rng) {
    const tr_cfg *c = &M->c;
    const int64_t d = c->d, qd = c->q_dim, kd = c->kv_dim, ff = c->ff;
    memset(a, 0, sizeof *a);
    a->n = n;
    a->x = x;
    if (!(a->xn1 = sc_get(sc, n * d)) || !(a->rs1 = sc_get(sc, n)) ||
        !(a->q = sc_get(sc, n * qd)) || !(a->k = sc_get(sc, n * kd)) ||
        !(a->v = sc_get(sc, n * kd)) || !(a->qr = sc_get(sc, n * qd)) ||
        !(a->kr = sc_get(sc, n * kd)) || !(a->p = sc_get(sc, c->n_head * n * n)) ||
        !(a->att = sc_get(sc, n * qd)) || !(a->h1 = sc_get(sc, n * d)) ||
        !(a->xn2 = sc_get(sc, n * d)) || !(a->rs2 = sc_get(sc, n)) ||
        !(a->g = sc_get(sc, n * ff)) || !(a->u = sc_get(sc, n * ff)) ||
        !(a->a = sc_get(sc, n * ff)))
        return false;
    /* attention */
    tr_rmsnorm_fwd(a->xn1, a->rs1, x, w->attn_norm, n, d, c->eps);
    mm_fwd(a->q, a->xn1, w->wq, n, d, qd, 0.0f);
    mm_fwd(a->k, a->xn1, w->wk, n, d, kd, 0.0f);
    mm_fwd(a->v, a->xn1, w->wv, n, d, kd, 0.0f);
    if (w->bq) {
        bias_fwd(a->q, w->bq, n, qd);
        bias_fwd(a->k, w->bk, n, kd);
        bias_fwd(a->v, w->bv, n, kd);
    }
    if (w->la[TR_Q]) {
        if (!lora_fwd(sc, M, w, TR_Q, a, a->xn1, n, d, qd, a->q, rng) ||
            !lora_fwd(sc, M, w, TR_K, a, a->xn1, n, d, kd, a->k, rng) ||
            !lora_fwd(sc, M, w, TR_V, a, a->xn1, n, d, kd, a->v, rng))
            return false;
    }
    if (w->qn) {
        if (!(a->rsq = sc_get(sc, n * c->n_head)) || !(a->rsk = sc_get(sc, n * c->n_kv)))
            return false;
        tr_rmsnorm_fwd(a->qr, a->rsq, a->q, w->qn, n * c->n_head, c->hd, c->eps);
        tr_rmsnorm_fwd(a->kr, a->rsk, a->k, w->kn, n * c->n_kv, c->hd, c->eps);
    } else {
        memcpy(a->qr, a->q, (size_t)(n * qd) * sizeof(float));
        memcpy(a->kr, a->k, (size_t)(n * kd) * sizeof(float));
    }
    tr_rope(a->qr, n, qd, c->n_head, c->hd, c->theta, c->rope, false);
    tr_rope(a->kr, n, kd, c->n_kv, c->hd, c->theta, c->rope, false);
    tr_attn_fwd(a->att, a->p, a->qr, a->kr, a->v, n, c->n_head, c->n_kv, c->hd);
    /* h1 = x + att Wo^T (+ LoRA) */
    memcpy(a->h1, x, (size_t)(n * d) * sizeof(float));
    mm_fwd(a->h1, a->att, w->wo, n, qd, d, 1.0f);
    if (w->la[TR_O] && !lora_fwd(sc, M, w, TR_O, a, a->att, n, qd, d, a->h1, rng)) return false;
    /* MLP: out = h1 + (silu(xn2 Wg^T) * (xn2 Wu^T)) Wd^T */
    tr_rmsnorm_fwd(a->xn2, a->rs2, a->h1, w->ffn_norm, n, d, c->eps);
    mm_fwd(a->g, a->xn2, w->wg, n, d, ff, 0.0f);
    mm_fwd(a->u, a->xn2, w->wu, n, d, ff, 0.0f);
    for (int64_t i = 0; i < n * ff; i++) {
        float g = a->g[i];
        a->a[i] = g / (1.0f + expf(-g)) * a->u[i];
    }
    memcpy(out, a->h1, (size_t)(n * d) * sizeof(float));
    mm_fwd(out, a->a, w->wd, n, ff, d, 1.0f);
    return true;
}

/* dx (n, d) = d/dx given dout (n, d); adds the gradient of every tensor gw
 * has a pointer for. */
static bool block_bwd(scratch *sc, const tr_model *M, const tr_block *w, const tr_block *gw,
                      const bact *a, const float *dout, float *dx) {
    const tr_cfg *c = &M->c;
    const int64_t n = a->n, d = c->d, qd = c->q_dim, kd = c->kv_dim, ff = c->ff;
    float *dh1 = sc_get(sc, n * d), *da = sc_get(sc, n * ff), *dxn2 = sc_get(sc, n * d),
          *datt = sc_get(sc, n * qd), *dq = sc_get(sc, n * qd), *dk = sc_get(sc, n * kd),
          *dv = sc_get(sc, n * kd), *dxn1 = sc_get(sc, n * d), *ds = sc_get(sc, n * n);
    if (!dh1 || !da || !dxn2 || !datt || !dq || !dk || !dv || !dxn1 || !ds) return false;
    /* MLP */
    memcpy(dh1, dout, (size_t)(n * d) * sizeof(float));
    mm_bwd_x(da, dout, w->wd, n, ff, d);
    if (gw->wd) mm_bwd_w(gw->wd, dout, a->a, n, ff, d);
    /* da -> dgate (in da), dup (in a fresh buffer) */
    float *dup = sc_get(sc, n * ff);
    if (!dup) return false;
    for (int64_t i = 0; i < n * ff; i++) {
        float g = a->g[i], sg = 1.0f / (1.0f + expf(-g));
        dup[i] = da[i] * g * sg;
        da[i] = da[i] * a->u[i] * sg * (1.0f + g * (1.0f - sg));
    }
    if (gw->wg) mm_bwd_w(gw->wg, da, a->xn2, n, d, ff);
    if (gw->wu) mm_bwd_w(gw->wu, dup, a->xn2, n, d, ff);
    mm_bwd_x(dxn2, da, w->wg, n, d, ff);
    mm_bwd_x(dxn2, dup, w->wu, n, d, ff);
    tr_rmsnorm_bwd(dh1, gw->ffn_norm, dxn2, a->h1, a->rs2, w->ffn_norm, n, d);
    /* attention output projection */
    mm_bwd_x(datt, dh1, w->wo, n, qd, d);
    if (gw->wo) mm_bwd_w(gw->wo, dh1, a->att, n, qd, d);
    if (w->la[TR_O] && !lora_bwd(sc, M, w, gw, TR_O, a, a->att, n, qd, d, dh1, datt)) return false;
    /* attention -> d(q, k after rope), dv */
    tr_attn_bwd(dq, dk, dv, datt, a->p, a->qr, a->kr, a->v, n, c->n_head, c->n_kv, c->hd, ds);
    tr_rope(dq, n, qd, c->n_head, c->hd, c->theta, c->rope, true);
    tr_rope(dk, n, kd, c->n_kv, c->hd, c->theta, c->rope, true);
    if (w->qn) {
        float *dq0 = sc_get(sc, n * qd), *dk0 = sc_get(sc, n * kd);
        if (!dq0 || !dk0) return false;
        tr_rmsnorm_bwd(dq0, gw->qn, dq, a->q, a->rsq, w->qn, n * c->n_head, c->hd);
        tr_rmsnorm_bwd(dk0, gw->kn, dk, a->k, a->rsk, w->kn, n * c->n_kv, c->hd);
        dq = dq0;
        dk = dk0;
    }
    if (gw->bq) bias_bwd(gw->bq, dq, n, qd);
    if (gw->bk) bias_bwd(gw->bk, dk, n, kd);
    if (gw->bv) bias_bwd(gw->bv, dv, n, kd);
    if (gw->wq) mm_bwd_w(gw->wq, dq, a->xn1, n, d, qd);
    if (gw->wk) mm_bwd_w(gw->wk, dk, a->xn1, n, d, kd);
    if (gw->wv) mm_bwd_w(gw->wv, dv, a->xn1, n, d, kd);
    mm_bwd_x(dxn1, dq, w->wq, n, d, qd);
    mm_bwd_x(dxn1, dk, w->wk, n, d, kd);
    mm_bwd_x(dxn1, dv, w->wv, n, d, kd);
    if (w->la[TR_Q]) {
        if (!lora_bwd(sc, M, w, gw, TR_Q, a, a->xn1, n, d, qd, dq, dxn1) ||
            !lora_bwd(sc, M, w, gw, TR_K, a, a->xn1, n, d, kd, dk, dxn1) ||
            !lora_bwd(sc, M, w, gw, TR_V, a, a->xn1, n, d, kd, dv, dxn1))
            return false;
    }
    memcpy(dx, dh1, (size_t)(n * d) * sizeof(float));
    tr_rmsnorm_bwd(dx, gw->attn_norm, dxn1, a->x, a->rs1, w->attn_norm, n, d);
    return true;
}

/* ------------------------------------------------------------------------ */
/* the fine merge: w = softmax(a_m cos(H_j, q) - b_m max(0, max cos(H_j, H_l))) */
/* ------------------------------------------------------------------------ */

typedef struct fine_act {
    int64_t n_mem;
    const int64_t *start, *len; /* (n_mem) spans over the context rows */
    double *nrm;                /* (n_ctx) max(|H_j|, 1e-12) */
    double *w;                  /* (n_ctx) fine weights (1/k when fine is off) */
    double *rel;                /* (n_ctx) cos(H_j, q) */
    int64_t *partner;           /* (n_ctx) the l of the redundancy max, -1: none / clamped */
    double qn;                  /* max(|q|, 1e-12) */
} fine_act;

static double dotd(const float *x, const double *y, int64_t d) {
    double s = 0;
    for (int64_t i = 0; i < d; i++) s += (double)x[i] * y[i];
    return s;
}

static double dotff(const float *x, const float *y, int64_t d) {
    double s = 0;
    for (int64_t i = 0; i < d; i++) s += (double)x[i] * y[i];
    return s;
}

static void fine_fwd(const tr_model *M, fine_act *f, const float *H, const double *q,
                     int64_t d, float *mem) {
    const comi_merge_params *p = &M->merge;
    double qq = 0;
    for (int64_t i = 0; i < d; i++) qq += q[i] * q[i];
    f->qn = fmax(sqrt(qq), 1e-12);
    for (int64_t g = 0; g < f->n_mem; g++) {
        const int64_t s = f->start[g], k = f->len[g];
        for (int64_t j = s; j < s + k; j++) {
            const float *h = H + j * d;
            f->nrm[j] = fmax(sqrt(dotff(h, h, d)), 1e-12);
            f->rel[j] = dotd(h, q, d) / (f->nrm[j] * f->qn);
            f->partner[j] = -1;
        }
        if (p->fine) {
            double mx = -INFINITY;
            for (int64_t j = s; j < s + k; j++) {
                double red = 0;
                if (p->fine_redundancy && k > 1) {
                    double best = -INFINITY;
                    int64_t bl = -1;
                    for (int64_t l = s; l < s + k; l++) {
                        if (l == j) continue;
                        double cs = dotff(H + j * d, H + l * d, d) / (f->nrm[j] * f->nrm[l]);
                        if (cs > best) {
                            best = cs;
                            bl = l;
                        }
                    }
                    /* torch.clamp(min=0) passes the gradient where x >= 0 */
                    if (best >= 0) f->partner[j] = bl;
                    red = fmax(best, 0.0);
                }
                f->w[j] = p->alpha_merge * f->rel[j] - p->beta_merge * red;
                if (f->w[j] > mx) mx = f->w[j];
            }
            double sum = 0;
            for (int64_t j = s; j < s + k; j++) sum += (f->w[j] = exp(f->w[j] - mx));
            for (int64_t j = s; j < s + k; j++) f->w[j] /= sum;
        } else {
            for (int64_t j = s; j < s + k; j++) f->w[j] = 1.0 / (double)k;
        }
        for (int64_t i = 0; i < d; i++) {
            double v = 0;
            for (int64_t j = s; j < s + k; j++) v += f->w[j] * H[j * d + i];
            mem[g * d + i] = (float)v;
        }
    }
}

/* d cos(a, b) / da scaled by coef, added to ga (d); na, nb the clamped norms. */
static void cos_grad(double *ga, double coef, const float *a, double na, const float *b,
                     double nb, double cs, int64_t d) {
    const bool clamped = na <= 1e-12;
    for (int64_t i = 0; i < d; i++)
        ga[i] += coef * ((double)b[i] / (na * nb) - (clamped ? 0.0 : cs * a[i] / (na * na)));
}

/* dH (n_ctx, d) += d/dH, dq (d) += d/dq, given dmem (n_mem, d). */
static void fine_bwd(const tr_model *M, const fine_act *f, const float *H, const double *q,
                     int64_t d, const float *dmem, double *dH, double *dq) {
    const comi_merge_params *p = &M->merge;
    for (int64_t g = 0; g < f->n_mem; g++) {
        const int64_t s = f->start[g], k = f->len[g];
        const float *dm = dmem + g * d;
        double dsum = 0;
        for (int64_t j = s; j < s + k; j++) {
            for (int64_t i = 0; i < d; i++) dH[j * d + i] += f->w[j] * dm[i];
            dsum += f->w[j] * dotff(dm, H + j * d, d);
        }
        if (!p->fine) continue;
        for (int64_t j = s; j < s + k; j++) {
            const float *hj = H + j * d;
            double ds = f->w[j] * (dotff(dm, hj, d) - dsum);
            double drel = p->alpha_merge * ds;
            /* rel = cos(H_j, q): both sides (q in double) */
            const bool qcl = f->qn <= 1e-12;
            for (int64_t i = 0; i < d; i++) {
                dH[j * d + i] += drel * (q[i] / (f->nrm[j] * f->qn) -
                                         (f->nrm[j] <= 1e-12 ? 0.0
                                                             : f->rel[j] * hj[i] /
                                                                   (f->nrm[j] * f->nrm[j])));
                dq[i] += drel * ((double)hj[i] / (f->nrm[j] * f->qn) -
                                 (qcl ? 0.0 : f->rel[j] * q[i] / (f->qn * f->qn)));
            }
            int64_t l = f->partner[j];
            if (l >= 0) {
                double dred = -p->beta_merge * ds;
                const float *hl = H + l * d;
                double cs = dotff(hj, hl, d) / (f->nrm[j] * f->nrm[l]);
                cos_grad(dH + j * d, dred, hj, f->nrm[j], hl, f->nrm[l], cs, d);
                cos_grad(dH + l * d, dred, hl, f->nrm[l], hj, f->nrm[j], cs, d);
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* one example, forward and backward                                        */
/* ------------------------------------------------------------------------ */

comi_status tr_example_step(comi_err *e, comi_ctx *ctx, tr_model *M, const tr_example *ex,
                            bool backward, float scale, uint64_t dropout_seed, double *loss,
                            int64_t *n_memory) {
    const tr_cfg *c = &M->c;
    const int64_t d = c->d, V = c->vocab;
    if (ex->n_ctx < 1 || ex->n_q < 1 || ex->n_ans < 1)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "example needs a context, a question and an answer (got %lld, %lld, "
                            "%lld tokens)",
                            (long long)ex->n_ctx, (long long)ex->n_q, (long long)ex->n_ans);
    const int32_t *lists[3] = {ex->ctx, ex->q, ex->ans};
    const int64_t counts[3] = {ex->n_ctx, ex->n_q, ex->n_ans};
    for (int li = 0; li < 3; li++)
        for (int64_t i = 0; i < counts[li]; i++)
            if (lists[li][i] < 0 || lists[li][i] >= V)
                return comi_err_set(e, COMI_ERR_INVALID_ARG, "token id %d out of range (vocab %lld)",
                                    lists[li][i], (long long)V);
    const int64_t n_enc = ex->n_ctx + ex->n_q;
    {
        /* the saved activations: per block about 12 rows of d, 5 of ff and
         * n_head x n attention probabilities per token, twice with the
         * backward's buffers; checked before any allocation */
        const int64_t nd = ex->n_ctx / (M->merge.merge_size > 0 ? M->merge.merge_size : 1) + 1 +
                           ex->n_q + ex->n_ans;
        double per_tok = (double)(16 * c->d + 6 * c->ff + 2 * (c->q_dim + c->kv_dim)) * 4.0;
        double need = (double)M->n_enc * (double)n_enc * (per_tok + 8.0 * c->n_head * n_enc) +
                      (double)(M->n_dec + M->n_fus) * (double)nd * (per_tok + 8.0 * c->n_head * nd) +
                      (double)ex->n_ans * (double)V * 4.0;
        comi_status ls = comi_check_bytes(ctx, "training activations",
                                          need >= 1.8e19 ? UINT64_MAX : (uint64_t)need, 0,
                                          "a shorter context (comi train --max-context-tokens)");
        if (ls) {
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", comi_errmsg(ctx));
            return comi_err_set(e, ls, "%s", msg);
        }
    }
    scratch sc = {.e = e};
    comi_status st = COMI_OK;
    comi_merge_result mr = {0};
    uint64_t rng_state = dropout_seed, *rng = M->lora_dropout > 0 && dropout_seed ? &rng_state : NULL;

    /* ---- encoder: X_0 = embed(ids), X_{l+1} = block_l(X_l), H = norm(X_K) ---- */
    float **ex_x = (float **)sc_get(&sc, 2 * (M->n_enc + 1)); /* (n_enc + 1) pointers */
    bact *ea = (bact *)sc_get(&sc, (int64_t)((M->n_enc + M->n_fus + M->n_dec) * sizeof(bact) / 4 + 1));
    if (!ex_x || !ea) goto nomem;
    bact *fa = ea + M->n_enc, *da = fa + M->n_fus;
    for (int32_t l = 0; l <= M->n_enc; l++)
        if (!(ex_x[l] = sc_get(&sc, n_enc * d))) goto nomem;
    for (int64_t t = 0; t < n_enc; t++) {
        int32_t id = t < ex->n_ctx ? ex->ctx[t] : ex->q[t - ex->n_ctx];
        memcpy(ex_x[0] + t * d, M->enc_embd + (int64_t)id * d, (size_t)d * sizeof(float));
    }
    for (int32_t l = 0; l < M->n_enc; l++)
        if (!block_fwd(&sc, M, &M->enc[l], &ea[l], ex_x[l], n_enc, ex_x[l + 1], NULL)) goto nomem;
    float *H = sc_get(&sc, n_enc * d), *rsH = sc_get(&sc, n_enc);
    double *qv = (double *)sc_get(&sc, 2 * d); /* (d) query vector */
    float *qf = sc_get(&sc, d);
    if (!H || !rsH || !qv || !qf) goto nomem;
    tr_rmsnorm_fwd(H, rsH, ex_x[M->n_enc], M->enc_norm, n_enc, d, c->eps);
    for (int64_t i = 0; i < d; i++) {
        double s = 0;
        for (int64_t t = ex->n_ctx; t < n_enc; t++) s += H[t * d + i];
        qv[i] = s / (double)ex->n_q;
        qf[i] = (float)qv[i];
    }

    /* ---- merge: group layout from mig_merge, memories recomputed with gradient ---- */
    for (int64_t i = 0; i < n_enc * d; i++)
        if (!isfinite(H[i])) {
            st = comi_err_set(e, COMI_ERR_INTERNAL, "the encoder output is not finite");
            goto done;
        }
    const tr_layout *lay = M->layout_in;
    if (!lay) {
        st = mig_merge(ctx, H, ex->n_ctx, d, qf, &M->merge, false, &mr);
        if (st) {
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", comi_errmsg(ctx));
            comi_err_set(e, st, "merge: %s", msg);
            goto done;
        }
    }
    const int64_t n_mem = lay ? lay->n_mem : mr.n_memory;
    if (n_memory) *n_memory = n_mem;
    fine_act fact = {.n_mem = n_mem,
                     .start = lay ? lay->start : mr.memory_start,
                     .len = lay ? lay->len : mr.memory_len};
    if (M->layout_out && n_mem <= TR_MAX_LAYOUT) {
        M->layout_out->n_mem = n_mem;
        memcpy(M->layout_out->start, fact.start, (size_t)n_mem * sizeof(int64_t));
        memcpy(M->layout_out->len, fact.len, (size_t)n_mem * sizeof(int64_t));
    }
    fact.nrm = (double *)sc_get(&sc, 2 * ex->n_ctx);
    fact.w = (double *)sc_get(&sc, 2 * ex->n_ctx);
    fact.rel = (double *)sc_get(&sc, 2 * ex->n_ctx);
    fact.partner = (int64_t *)sc_get(&sc, 2 * ex->n_ctx);
    float *mem = sc_get(&sc, n_mem * d);
    if (!fact.nrm || !fact.w || !fact.rel || !fact.partner || !mem) goto nomem;
    fine_fwd(M, &fact, H, qv, d, mem);

    /* ---- fusion: Y_0 = mem, Y_{l+1} = block_l(Y_l), F = norm(Y_F) ---- */
    float **fy = (float **)sc_get(&sc, 2 * (M->n_fus + 1));
    if (!fy) goto nomem;
    fy[0] = mem;
    for (int32_t l = 0; l < M->n_fus; l++) {
        if (!(fy[l + 1] = sc_get(&sc, n_mem * d))) goto nomem;
        if (!block_fwd(&sc, M, &M->fus[l], &fa[l], fy[l], n_mem, fy[l + 1], NULL)) goto nomem;
    }
    float *F = fy[M->n_fus], *rsF = NULL;
    if (M->n_fus > 0) {
        if (!(F = sc_get(&sc, n_mem * d)) || !(rsF = sc_get(&sc, n_mem))) goto nomem;
        tr_rmsnorm_fwd(F, rsF, fy[M->n_fus], M->fus_norm, n_mem, d, c->eps);
    }

    /* ---- decoder over [F ; embed(question) ; embed(answer)] ---- */
    const int64_t nd = n_mem + ex->n_q + ex->n_ans, r0 = n_mem + ex->n_q - 1, na = ex->n_ans;
    float **dz = (float **)sc_get(&sc, 2 * (M->n_dec + 1));
    if (!dz) goto nomem;
    for (int32_t l = 0; l <= M->n_dec; l++)
        if (!(dz[l] = sc_get(&sc, nd * d))) goto nomem;
    memcpy(dz[0], F, (size_t)(n_mem * d) * sizeof(float));
    for (int64_t t = 0; t < ex->n_q + ex->n_ans; t++) {
        int32_t id = t < ex->n_q ? ex->q[t] : ex->ans[t - ex->n_q];
        memcpy(dz[0] + (n_mem + t) * d, M->dec_embd + (int64_t)id * d, (size_t)d * sizeof(float));
    }
    for (int32_t l = 0; l < M->n_dec; l++)
        if (!block_fwd(&sc, M, &M->dec[l], &da[l], dz[l], nd, dz[l + 1], rng)) goto nomem;
    /* rows r0 .. r0 + na - 1 predict the answer ids */
    float *Z = sc_get(&sc, na * d), *rsZ = sc_get(&sc, na), *logits = sc_get(&sc, na * V);
    if (!Z || !rsZ || !logits) goto nomem;
    tr_rmsnorm_fwd(Z, rsZ, dz[M->n_dec] + r0 * d, M->dec_norm, na, d, c->eps);
    mm_fwd(logits, Z, M->lm_head, na, d, V, 0.0f);
    double total = 0;
    for (int64_t t = 0; t < na; t++) {
        float *lg = logits + t * V;
        float mx = lg[0];
        for (int64_t i = 1; i < V; i++) mx = lg[i] > mx ? lg[i] : mx;
        double sum = 0;
        for (int64_t i = 0; i < V; i++) sum += exp((double)lg[i] - mx);
        double lse = mx + log(sum);
        total += lse - lg[ex->ans[t]];
        /* logits become d(scale * mean CE)/d(logits) = scale (softmax - onehot) / na */
        for (int64_t i = 0; i < V; i++)
            lg[i] = (float)(exp((double)lg[i] - lse) * scale / (double)na);
        lg[ex->ans[t]] -= (float)(scale / (double)na);
    }
    *loss = total / (double)na;
    if (!isfinite(*loss)) {
        st = comi_err_set(e, COMI_ERR_INTERNAL, "loss is %g (not finite)", *loss);
        goto done;
    }
    if (!backward) goto done;

    /* ---- backward: decoder ---- */
    float *dZ = sc_get(&sc, na * d), *gz = sc_get(&sc, nd * d), *gz2 = sc_get(&sc, nd * d);
    if (!dZ || !gz || !gz2) goto nomem;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)na, (int)d, (int)V, 1.0f, logits,
                (int)V, M->lm_head, (int)d, 0.0f, dZ, (int)d);
    tr_rmsnorm_bwd(gz + r0 * d, NULL, dZ, dz[M->n_dec] + r0 * d, rsZ, M->dec_norm, na, d);
    for (int32_t l = M->n_dec - 1; l >= 0; l--) {
        if (!block_bwd(&sc, M, &M->dec[l], &M->g_dec[l], &da[l], gz, gz2)) goto nomem;
        float *t = gz;
        gz = gz2;
        gz2 = t;
    }
    /* ---- fusion (gz rows 0..n_mem-1 = d/dF) ---- */
    float *gm = gz; /* (n_mem, d) gradient flowing back to the memories */
    if (M->n_fus > 0) {
        float *gy = sc_get(&sc, n_mem * d), *gy2 = sc_get(&sc, n_mem * d);
        if (!gy || !gy2) goto nomem;
        tr_rmsnorm_bwd(gy, M->g_fus_norm, gz, fy[M->n_fus], rsF, M->fus_norm, n_mem, d);
        for (int32_t l = M->n_fus - 1; l >= 0; l--) {
            if (!block_bwd(&sc, M, &M->fus[l], &M->g_fus[l], &fa[l], gy, gy2)) goto nomem;
            float *t = gy;
            gy = gy2;
            gy2 = t;
        }
        gm = gy;
    }
    /* ---- merge ---- */
    double *dH = (double *)sc_get(&sc, 2 * n_enc * d), *dq = (double *)sc_get(&sc, 2 * d);
    float *gH = sc_get(&sc, n_enc * d);
    if (!dH || !dq || !gH) goto nomem;
    fine_bwd(M, &fact, H, qv, d, gm, dH, dq);
    for (int64_t t = ex->n_ctx; t < n_enc; t++)
        for (int64_t i = 0; i < d; i++) dH[t * d + i] += dq[i] / (double)ex->n_q;
    for (int64_t i = 0; i < n_enc * d; i++) gH[i] = (float)dH[i];
    /* ---- encoder ---- */
    float *gx = sc_get(&sc, n_enc * d), *gx2 = sc_get(&sc, n_enc * d);
    if (!gx || !gx2) goto nomem;
    tr_rmsnorm_bwd(gx, M->g_enc_norm, gH, ex_x[M->n_enc], rsH, M->enc_norm, n_enc, d);
    for (int32_t l = M->n_enc - 1; l >= 0; l--) {
        if (!block_bwd(&sc, M, &M->enc[l], &M->g_enc[l], &ea[l], gx, gx2)) goto nomem;
        float *t = gx;
        gx = gx2;
        gx2 = t;
    }
    for (int64_t t = 0; t < n_enc; t++) {
        int32_t id = t < ex->n_ctx ? ex->ctx[t] : ex->q[t - ex->n_ctx];
        float *g = M->g_enc_embd + (int64_t)id * d;
        for (int64_t i = 0; i < d; i++) g[i] += gx[t * d + i];
    }
    goto done;
nomem:
    st = e->status ? e->status : comi_err_set(e, COMI_ERR_NOMEM, "out of memory (training)");
done:
    comi_merge_result_free(&mr);
    sc_free(&sc);
    return st;
}

/* ------------------------------------------------------------------------ */
/* optimiser                                                                */
/* ------------------------------------------------------------------------ */

void tr_zero_grad(tr_model *m) {
    for (int32_t i = 0; i < m->n_params; i++)
        memset(m->params[i].g, 0, (size_t)m->params[i].n * sizeof(float));
}

double tr_grad_norm(const tr_model *m) {
    double s = 0;
    for (int32_t i = 0; i < m->n_params; i++)
        for (int64_t j = 0; j < m->params[i].n; j++)
            s += (double)m->params[i].g[j] * m->params[i].g[j];
    return sqrt(s);
}

void tr_adamw_param(const tr_adamw *o, tr_param *p, double clip, int64_t t) {
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    const double step = o->lr / bc1, sbc2 = sqrt(bc2);
    const float decay = p->n_dims >= 2 ? (float)(1.0 - o->lr * o->weight_decay) : 1.0f;
    for (int64_t i = 0; i < p->n; i++) {
        const float g = (float)(p->g[i] * clip);
        float w = p->w[i] * decay;
        float m1 = (float)(o->beta1 * p->m[i] + (1.0 - o->beta1) * g);
        float v1 = (float)(o->beta2 * p->v[i] + (1.0 - o->beta2) * (double)g * g);
        p->m[i] = m1;
        p->v[i] = v1;
        /* torch: denom = sqrt(v) / sqrt(bc2) + eps; p -= lr / bc1 * m / denom */
        double denom = sqrt((double)v1) / sbc2 + o->eps;
        p->w[i] = (float)(w - step * m1 / denom);
    }
}

void tr_adamw_step(tr_model *m, const tr_adamw *o, double clip, int64_t t) {
    for (int32_t i = 0; i < m->n_params; i++) tr_adamw_param(o, &m->params[i], clip, t);
}

double tr_lr_at(double lr, bool cosine, double warmup_ratio, int64_t s, int64_t total) {
    int64_t warm = (int64_t)ceil(warmup_ratio * (double)total);
    if (s < warm) return lr * (double)s / (double)(warm > 1 ? warm : 1);
    if (!cosine) return lr;
    int64_t span = total - warm > 1 ? total - warm : 1;
    double progress = (double)(s - warm) / (double)span;
    double f = 0.5 * (1.0 + cos(M_PI * progress));
    return lr * (f > 0 ? f : 0);
}
