/*
 * convert.c — comi_checkpoint_convert (stage: trained pipeline's weights ->
 * GGUF): loads a COMI checkpoint with ckpt_load (checkpoint.c) and writes
 * its encoder, decoder (LoRA merged into q/k/v/o) and fusion block as GGUF
 * files llama.cpp-style, plus PREFIX.comi.gguf with the COMI settings (the
 * layout is described in checkpoint.c, which reads these files back). Kept
 * apart from checkpoint.c so that the loader never calls into the pipeline
 * (pipeline.c -> checkpoint.c only; this file uses both).
 */
#include "comi/checkpoint.h"
#include "comi/pipeline.h"

#include "formats/gguf.h"
#include "formats/quant.h"
#include "runtime/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct mat_fill {
    const comi_tensor *w;  /* source matrix, ne = (in, out), HF row order */
    const model_lora *lo;  /* NULL or an adapter to merge */
    int64_t perm_hd;       /* > 0: write rows in GGUF q/k order for this head dim */
    comi_type out;
} mat_fill;

/* The HF row whose data lands in GGUF row j of a permuted q/k matrix (the
 * inverse of convert_hf_to_gguf's pairing of rotate-half halves). */
static int64_t perm_src(int64_t j, int64_t hd) {
    int64_t h = j / hd, i = j % hd;
    return h * hd + (i % 2 == 0 ? i / 2 : i / 2 + hd / 2);
}

static comi_status fill_rows(comi_err *e, void *user, void *dst, int64_t r0, int64_t r1) {
    const mat_fill *f = user;
    const int64_t in = f->w->ne[0];
    size_t srb, drb;
    quant_row_bytes(f->w->type, in, &srb);
    quant_row_bytes(f->out, in, &drb);
    float *row = comi_alloc_array(e, (size_t)in, sizeof(float), "convert row"); /* (in) */
    if (!row) return e->status;
    for (int64_t j = r0; j < r1; j++) {
        int64_t s = f->perm_hd > 0 ? perm_src(j, f->perm_hd) : j;
        quant_dequant_row(f->w->type, (const uint8_t *)f->w->data + (size_t)s * srb, row, in);
        if (f->lo && f->lo->a.data) {
            /* row += B[s] . A, with B (out x r, scale folded in), A (r x in) */
            const int64_t r = f->lo->a.ne[1];
            const float *A = f->lo->a.data, *B = (const float *)f->lo->b.data + s * r;
            for (int64_t k = 0; k < r; k++)
                for (int64_t i = 0; i < in; i++) row[i] += B[k] * A[k * in + i];
        }
        if (!quant_quantize_row(f->out, row, (uint8_t *)dst + (size_t)(j - r0) * drb, in)) {
            free(row);
            return comi_err_set(e, COMI_ERR_UNSUPPORTED, "convert: cannot quantize to %s",
                                quant_type_name(f->out));
        }
    }
    free(row);
    return COMI_OK;
}

typedef struct conv {
    comi_err *e;
    gguf_writer *w;
    mat_fill *fills; /* owned until the file is written */
    size_t n_fills, cap_fills;
    float **bufs;    /* permuted vector copies, owned likewise */
    size_t n_bufs;
    comi_type type;
    int64_t n_fallback;
} conv;

static comi_status add_matrix(conv *c, const char *name, const comi_tensor *t,
                              const model_lora *lo, int64_t perm_hd) {
    comi_type out = c->type;
    int64_t in = t->ne[0];
    if (in % quant_block_elems(out) != 0) {
        out = in % 32 == 0 ? COMI_TYPE_Q8_0 : COMI_TYPE_F16;
        c->n_fallback++;
    }
    if (c->n_fills == c->cap_fills) return comi_err_set(c->e, COMI_ERR_INTERNAL, "convert: fills");
    mat_fill *f = &c->fills[c->n_fills++];
    *f = (mat_fill){.w = t, .lo = lo, .perm_hd = perm_hd, .out = out};
    int64_t ne[2] = {t->ne[0], t->ne[1]};
    return gguf_writer_add_tensor_fill(c->e, c->w, name, out, 2, ne, fill_rows, f);
}

static comi_status add_vector(conv *c, const char *name, const float *v, int64_t n,
                              int64_t perm_hd) {
    if (!v) return COMI_OK;
    float *buf = NULL;
    if (perm_hd > 0) {
        buf = comi_alloc_array(c->e, (size_t)n, sizeof(float), "convert vector");
        if (!buf) return c->e->status;
        for (int64_t j = 0; j < n; j++) buf[j] = v[perm_src(j, perm_hd)];
        c->bufs[c->n_bufs++] = buf;
        v = buf;
    }
    int64_t ne[1] = {n};
    return gguf_writer_add_tensor(c->e, c->w, name, COMI_TYPE_F32, 1, ne, v,
                                  (size_t)n * sizeof(float), true);
}

/* Writes one model as a GGUF file (llama.cpp names and metadata). */
static comi_status write_model(comi_err *e, const comi_model *m, const char *path, comi_type type,
                               const gguf_file *tok_src, int64_t *n_fallback) {
    comi_model_info mi;
    comi_model_get_info(m, &mi);
    conv c = {.e = e, .w = gguf_writer_new(), .type = type};
    c.cap_fills = (size_t)(3 + 7 * m->n_layer);
    c.fills = calloc(c.cap_fills, sizeof *c.fills);
    c.bufs = calloc((size_t)(3 * m->n_layer + 1), sizeof *c.bufs);
    if (!c.w || !c.fills || !c.bufs) {
        gguf_writer_free(c.w);
        free(c.fills);
        free(c.bufs);
        return comi_err_set(e, COMI_ERR_NOMEM, "convert: out of memory");
    }
    const char *a = mi.arch;
    char k[128];
    comi_status st = gguf_writer_set_str(e, c.w, "general.architecture", a);
    if (!st) st = gguf_writer_set_str(e, c.w, "general.name", "comi convert");
#define U32(key, v) \
    if (!st) st = (snprintf(k, sizeof k, "%s." key, a), gguf_writer_set_u32(e, c.w, k, (uint32_t)(v)))
#define F32(key, v) \
    if (!st) st = (snprintf(k, sizeof k, "%s." key, a), gguf_writer_set_f32(e, c.w, k, (v)))
    U32("embedding_length", m->n_embd);
    U32("block_count", m->n_layer);
    U32("feed_forward_length", m->n_ff);
    U32("attention.head_count", m->n_head);
    U32("attention.head_count_kv", m->n_head_kv);
    U32("attention.key_length", m->head_dim);
    U32("attention.value_length", m->head_dim);
    U32("rope.dimension_count", m->head_dim);
    if (m->n_ctx_train > 0) U32("context_length", m->n_ctx_train);
    F32("rope.freq_base", m->rope_theta);
    F32("attention.layer_norm_rms_epsilon", m->norm_eps);
#undef U32
#undef F32
    for (int64_t i = 0; !st && tok_src && i < gguf_n_kv(tok_src); i++) {
        const gguf_kv *kv = gguf_kv_at(tok_src, i);
        if (!strncmp(kv->key, "tokenizer.", 10)) st = gguf_writer_copy_kv(e, c.w, kv);
    }
    if (!st && m->bos_id >= 0)
        st = gguf_writer_set_u32(e, c.w, "tokenizer.ggml.bos_token_id", (uint32_t)m->bos_id);
    if (!st && m->n_eos > 0)
        st = gguf_writer_set_u32(e, c.w, "tokenizer.ggml.eos_token_id", (uint32_t)m->eos_ids[0]);
    /* HF order -> GGUF order for llama's q/k rows */
    const int64_t hd = m->arch == MODEL_ARCH_LLAMA && !m->from_gguf ? m->head_dim : 0;
    if (!st) st = add_matrix(&c, "token_embd.weight", &m->tok_embd, NULL, 0);
    if (!st) st = add_vector(&c, "output_norm.weight", m->output_norm, m->n_embd, 0);
    if (!st && !m->tied) st = add_matrix(&c, "output.weight", &m->output, NULL, 0);
    for (int64_t l = 0; !st && l < m->n_layer; l++) {
        const model_layer *ly = &m->layers[l];
        char n[96];
#define N(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)l), n)
        if ((st = add_vector(&c, N("attn_norm.weight"), ly->attn_norm, m->n_embd, 0)) ||
            (st = add_matrix(&c, N("attn_q.weight"), &ly->wq, &ly->lora[LORA_Q], hd)) ||
            (st = add_matrix(&c, N("attn_k.weight"), &ly->wk, &ly->lora[LORA_K], hd)) ||
            (st = add_matrix(&c, N("attn_v.weight"), &ly->wv, &ly->lora[LORA_V], 0)) ||
            (st = add_matrix(&c, N("attn_output.weight"), &ly->wo, &ly->lora[LORA_O], 0)) ||
            (st = add_vector(&c, N("attn_q.bias"), ly->bq, m->q_dim, hd)) ||
            (st = add_vector(&c, N("attn_k.bias"), ly->bk, m->kv_dim, hd)) ||
            (st = add_vector(&c, N("attn_v.bias"), ly->bv, m->kv_dim, 0)) ||
            (st = add_vector(&c, N("attn_q_norm.weight"), ly->q_norm, m->head_dim, 0)) ||
            (st = add_vector(&c, N("attn_k_norm.weight"), ly->k_norm, m->head_dim, 0)) ||
            (st = add_vector(&c, N("ffn_norm.weight"), ly->ffn_norm, m->n_embd, 0)) ||
            (st = add_matrix(&c, N("ffn_gate.weight"), &ly->w_gate, NULL, 0)) ||
            (st = add_matrix(&c, N("ffn_up.weight"), &ly->w_up, NULL, 0)) ||
            (st = add_matrix(&c, N("ffn_down.weight"), &ly->w_down, NULL, 0)))
            break;
#undef N
    }
    if (!st) st = gguf_writer_write(e, c.w, path);
    gguf_writer_free(c.w);
    for (size_t i = 0; i < c.n_bufs; i++) free(c.bufs[i]);
    free(c.bufs);
    free(c.fills);
    *n_fallback += c.n_fallback;
    return st;
}

comi_status comi_checkpoint_convert(comi_ctx *ctx, const char *checkpoint, const char *base,
                                    const char *out_prefix, const char *type, float lora_alpha,
                                    char *summary, size_t summary_len) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!checkpoint || !base || !out_prefix)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "convert: checkpoint, base and output needed");
    comi_type t = COMI_TYPE_F16;
    if (type && (!quant_type_from_name(type, &t) ||
                 (t != COMI_TYPE_F32 && t != COMI_TYPE_F16 && t != COMI_TYPE_Q8_0 &&
                  t != COMI_TYPE_Q4_K)))
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "convert: type '%s' is not one of F32, F16, Q8_0, Q4_K", type);
    comi_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl) return comi_err_set(e, COMI_ERR_NOMEM, "convert: out of memory");
    pl->merge_default = comi_merge_default_params();
    comi_status st = ckpt_load(e, ctx, pl, checkpoint, base, lora_alpha);
    gguf_file *tok_src = NULL;
    struct stat sb;
    if (!st && stat(base, &sb) == 0 && S_ISREG(sb.st_mode)) st = gguf_open(e, base, &tok_src);
    int64_t n_fb = 0;
    char p[4200];
    const comi_model *ms[3] = {pl->enc, pl->dec, pl->fusion};
    const char *names[3] = {"encoder", "decoder", "fusion"};
    for (int i = 0; !st && i < 3; i++) {
        if (!ms[i]) continue;
        snprintf(p, sizeof p, "%s.%s.gguf", out_prefix, names[i]);
        st = write_model(e, ms[i], p, t, tok_src, &n_fb);
    }
    if (!st) {
        gguf_writer *w = gguf_writer_new();
        if (!w) st = comi_err_set(e, COMI_ERR_NOMEM, "convert: out of memory");
        static const char *const wn[4] = {"comi.alpha_select", "comi.beta_select",
                                          "comi.alpha_merge", "comi.beta_merge"};
        const float wv[4] = {pl->merge_default.alpha_select, pl->merge_default.beta_select,
                             pl->merge_default.alpha_merge, pl->merge_default.beta_merge};
        if (!st) st = gguf_writer_set_str(e, w, "general.architecture", "comi");
        if (!st) st = gguf_writer_set_u32(e, w, "comi.format_version", 1);
        if (!st) st = gguf_writer_set_u32(e, w, "comi.encoder_layers", (uint32_t)pl->enc->n_layer);
        if (!st)
            st = gguf_writer_set_u32(e, w, "comi.fusion_layers",
                                     pl->fusion ? (uint32_t)pl->fusion->n_layer : 0);
        for (int i = 0; !st && i < 4; i++) st = gguf_writer_set_f32(e, w, wn[i], wv[i]);
        if (!st) st = gguf_writer_set_str(e, w, "comi.source", checkpoint);
        int64_t de = pl->enc->n_embd, dd = pl->dec->n_embd;
        if (!st && pl->align_w)
            st = gguf_writer_add_tensor(e, w, "comi.alignment.weight", COMI_TYPE_F32, 2,
                                        (int64_t[]){de, dd}, pl->align_w,
                                        (size_t)(de * dd) * sizeof(float), true);
        if (!st && pl->align_b)
            st = gguf_writer_add_tensor(e, w, "comi.alignment.bias", COMI_TYPE_F32, 1,
                                        (int64_t[]){dd}, pl->align_b, (size_t)dd * sizeof(float),
                                        true);
        snprintf(p, sizeof p, "%s.comi.gguf", out_prefix);
        if (!st) st = gguf_writer_write(e, w, p);
        gguf_writer_free(w);
    }
    if (!st && summary)
        snprintf(summary, summary_len,
                 "wrote %s.{encoder,decoder%s,comi}.gguf: %s matrices (%lld fell back to Q8_0/F16 "
                 "for their row length), encoder %lld layers, decoder %lld layers%s, fusion %lld",
                 out_prefix, pl->fusion ? ",fusion" : "", quant_type_name(t), (long long)n_fb,
                 (long long)pl->enc->n_layer, (long long)pl->dec->n_layer,
                 pl->decoder_lora ? " (LoRA merged)" : "",
                 pl->fusion ? (long long)pl->fusion->n_layer : 0LL);
    gguf_close(tok_src);
    comi_pipeline_free(pl);
    return st;
}
