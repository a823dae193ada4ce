/*
 * session.c — the forward pass of llama / qwen2 / qwen3 over a KV cache,
 * and greedy generation (stage: encoder/decoder LM). Mirrors llama.cpp's
 * llm_build_llama / llm_build_qwen2 / llm_build_qwen3 graphs and
 * transformers' LlamaModel / Qwen2Model / Qwen3Model forward:
 *
 *   x = embedding rows
 *   per layer: h = RMSNorm(x) * attn_norm
 *              q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv)
 *              qwen3: q, k = per-head RMSNorm(q) * q_norm, ... * k_norm
 *              q, k = RoPE(q), RoPE(k); append k, v to the cache
 *              x += causal_attention(q, K, V) Wo
 *              h = RMSNorm(x) * ffn_norm
 *              x += (silu(h Wgate) * (h Wup)) Wdown
 *   hidden = RMSNorm(x) * output_norm;  logits = hidden Woutput
 *
 * Batches are processed in micro-batches of at most SESS_UBATCH positions so
 * scratch memory stays bounded for any prompt length.
 *
 * Cancellation (comi_ctx_cancel) is checked before each layer of each
 * micro-batch, never inside a kernel: a cancelled eval returns
 * COMI_ERR_CANCELLED after at most one layer over one micro-batch, and
 * leaves the session as it was before the call (n_past, the cached
 * positions below it, the depth and the last logits); the rows it wrote for
 * positions from n_past on are discarded (the next eval overwrites them).
 */
#include "runtime/model.h"

#include "base/pool.h"
#include "formats/quant.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESS_UBATCH 512

struct comi_session {
    const comi_model *m;
    int64_t max_tokens;
    int64_t n_past;
    int64_t depth;     /* layers whose cache covers every position < n_past */
    int32_t kv_type;   /* COMI_KV_F32 or COMI_KV_F16: the element type of kv */
    void *kv;          /* per layer l: K at element 2l * max_tokens * kv_dim, V right after;
                          each (max_tokens x kv_dim) float32 or IEEE half values */
    float *knew;       /* half cache: (ub x kv_dim) keys of the micro-batch before rounding */
    float *vnew;       /* half cache: (ub x kv_dim) values */
    int64_t ub;        /* micro-batch capacity */
    float *x;          /* (ub x n_embd) residual stream */
    float *xn;         /* (ub x n_embd) normalised input / projection output */
    float *q;          /* (ub x q_dim) queries */
    float *att;        /* (ub x q_dim) attention output */
    float *gate;       /* (ub x n_ff) */
    float *up;         /* (ub x n_ff) */
    float *cs;         /* (ub x head_dim) RoPE cos/sin table */
    float *logits;     /* (n_vocab) last position's logits */
    float *pen_logits; /* (n_vocab) logits after the repetition penalty */
    float *lora_r;     /* (ub x lora_rank_max) A x */
    float *lora_out;   /* (ub x max(q_dim, n_embd)) B (A x) */
    bool have_logits;
};

/* element offset of layer l's K (which = 0) or V (which = 1) cache */
static size_t kv_off(const comi_session *s, int64_t l, int which) {
    return (size_t)(2 * l + which) * (size_t)s->max_tokens * (size_t)s->m->kv_dim;
}

static size_t kv_elem_bytes(int32_t kv_type) {
    return kv_type == COMI_KV_F16 ? 2 : 4;
}

/* The cache (kv_bytes) and the float32 scratch (scratch_floats) of a session. */
static bool sess_sizes(const comi_model *m, int64_t max_tokens, int32_t kv_type, size_t *kv_bytes,
                       size_t *scratch_floats) {
    int64_t ub = max_tokens < SESS_UBATCH ? max_tokens : SESS_UBATCH;
    size_t a, per_tok, kv_elems;
    if (!comi_mul3_size((size_t)m->n_layer * 2, (size_t)max_tokens, (size_t)m->kv_dim, &kv_elems) ||
        !comi_mul_size(kv_elems, kv_elem_bytes(kv_type), kv_bytes))
        return false;
    per_tok = (size_t)(2 * m->n_embd + 2 * m->q_dim + 2 * m->n_ff + m->head_dim);
    if (kv_type == COMI_KV_F16) per_tok += (size_t)(2 * m->kv_dim);
    if (m->has_lora)
        per_tok += (size_t)(m->lora_rank_max + (m->q_dim > m->n_embd ? m->q_dim : m->n_embd));
    if (!comi_mul_size(per_tok, (size_t)ub, &a)) return false;
    return comi_add_size(a, 2 * (size_t)m->n_vocab, scratch_floats);
}

uint64_t model_session_bytes(const comi_model *m, int64_t max_tokens, int32_t kv_type) {
    size_t kvb, scf, tot;
    if (max_tokens < 1 || !sess_sizes(m, max_tokens, kv_type, &kvb, &scf) ||
        !comi_mul_size(scf, sizeof(float), &tot) || !comi_add_size(kvb, tot, &tot))
        return UINT64_MAX;
    return tot;
}

uint64_t comi_model_session_bytes(const comi_model *m, int64_t max_tokens) {
    return model_session_bytes(m, max_tokens, COMI_KV_F32);
}

uint64_t comi_session_bytes(const comi_ctx *ctx, const comi_model *m, int64_t max_tokens) {
    return m ? model_session_bytes(m, max_tokens, comi_ctx_kv_type(ctx)) : UINT64_MAX;
}

/* The one range check of a session's capacity (before the limits, so a bad
 * value is an invalid argument, not a limit). */
static comi_status check_max_tokens(comi_err *e, int64_t max_tokens) {
    if (max_tokens < 1 || max_tokens > ((int64_t)1 << 31))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "session: max_tokens %lld out of range",
                            (long long)max_tokens);
    return COMI_OK;
}

comi_status comi_session_new(comi_ctx *ctx, const comi_model *m, int64_t max_tokens,
                             comi_session **out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!out || !m) return comi_err_set(e, COMI_ERR_INVALID_ARG, "session: NULL argument");
    *out = NULL;
    comi_status st = check_max_tokens(e, max_tokens);
    if (st) return st;
    if ((st = comi_check_tokens(ctx, "session", max_tokens))) return st;
    char what[64];
    snprintf(what, sizeof what, "session of %lld tokens", (long long)max_tokens);
    if ((st = comi_check_bytes(ctx, what, model_session_bytes(m, max_tokens, ctx->kv_type), 0,
                               NULL)))
        return st;
    return model_session_new(e, m, max_tokens, ctx->kv_type, out);
}

comi_status model_session_new(comi_err *e, const comi_model *m, int64_t max_tokens,
                              int32_t kv_type, comi_session **out) {
    *out = NULL;
    comi_status st = check_max_tokens(e, max_tokens);
    if (st) return st;
    if (kv_type != COMI_KV_F32 && kv_type != COMI_KV_F16)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "session: unknown KV cache type %d",
                            (int)kv_type);
    size_t kvb, scf;
    if (!sess_sizes(m, max_tokens, kv_type, &kvb, &scf))
        return comi_err_set(e, COMI_ERR_LIMIT, "session: %lld tokens overflow the cache size",
                            (long long)max_tokens);
    comi_session *s = calloc(1, sizeof *s);
    if (!s) return comi_err_set(e, COMI_ERR_NOMEM, "session: out of memory");
    s->m = m;
    s->max_tokens = max_tokens;
    s->kv_type = kv_type;
    s->depth = m->n_layer;
    s->ub = max_tokens < SESS_UBATCH ? max_tokens : SESS_UBATCH;
    /* malloc, not calloc: pages of the cache are touched only when filled */
    s->kv = comi_alloc_array(e, kvb, 1, "KV cache");
    float *sc = s->kv ? comi_alloc_array(e, scf, sizeof(float), "session scratch") : NULL;
    if (!sc) {
        free(s->kv);
        free(s);
        return e->status;
    }
    s->x = sc;
    s->xn = s->x + s->ub * m->n_embd;
    s->q = s->xn + s->ub * m->n_embd;
    s->att = s->q + s->ub * m->q_dim;
    s->gate = s->att + s->ub * m->q_dim;
    s->up = s->gate + s->ub * m->n_ff;
    s->cs = s->up + s->ub * m->n_ff;
    s->logits = s->cs + s->ub * m->head_dim;
    s->pen_logits = s->logits + m->n_vocab;
    float *next = s->pen_logits + m->n_vocab;
    if (m->has_lora) {
        s->lora_r = next;
        s->lora_out = s->lora_r + s->ub * m->lora_rank_max;
        next = s->lora_out + s->ub * (m->q_dim > m->n_embd ? m->q_dim : m->n_embd);
    }
    if (kv_type == COMI_KV_F16) {
        s->knew = next;
        s->vnew = s->knew + s->ub * m->kv_dim;
    }
    *out = s;
    return COMI_OK;
}

void comi_session_free(comi_session *s) {
    if (!s) return;
    free(s->x);
    free(s->kv);
    free(s);
}

void comi_session_reset(comi_session *s) {
    s->n_past = 0;
    s->depth = s->m->n_layer;
    s->have_logits = false;
}

int64_t comi_session_n_past(const comi_session *s) {
    return s->n_past;
}

int64_t comi_session_max_tokens(const comi_session *s) {
    return s->max_tokens;
}

const float *comi_session_logits(const comi_session *s) {
    return s->have_logits ? s->logits : NULL;
}

comi_eval_params comi_eval_default_params(void) {
    comi_eval_params p = {.n_layers = 0, .hidden_out = NULL, .logits_out = NULL, .n_logits = 0};
    return p;
}

/* ---- one micro-batch --------------------------------------------------- */

static void add_rows_bias(float *y, int64_t n, int64_t ld, const float *b, int64_t m) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++)
            y[i * ld + j] += b[j];
}

static void head_norm(float *y, int64_t n, int64_t ld, int64_t n_head, int64_t hd, const float *w,
                      float eps) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t h = 0; h < n_head; h++)
            ops_rmsnorm(y + i * ld + h * hd, y + i * ld + h * hd, w, hd, eps);
}

/* y (c x ldy) += B (A x) for the adapter lo, if any; x (c x in). */
static comi_status apply_lora(comi_err *e, comi_pool *pool, comi_session *s, const model_lora *lo,
                              const float *x, int64_t c, float *y, int64_t ldy) {
    if (!lo->a.data) return COMI_OK;
    int64_t r = lo->a.ne[1], out = lo->b.ne[1];
    comi_status st;
    if ((st = ops_matmul(e, pool, &lo->a, x, c, s->lora_r, r)) ||
        (st = ops_matmul(e, pool, &lo->b, s->lora_r, c, s->lora_out, out)))
        return st;
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < out; j++)
            y[i * ldy + j] += s->lora_out[i * out + j];
    return COMI_OK;
}

/* COMI_ERR_CANCELLED when ctx was cancelled, naming the layer about to run. */
static comi_status check_layer_cancel(comi_ctx *ctx, int64_t l, int64_t n_layers, int64_t p0,
                                      int64_t c) {
    if (!atomic_load_explicit(&ctx->cancelled, memory_order_relaxed)) return COMI_OK;
    return comi_err_set(&ctx->err, COMI_ERR_CANCELLED,
                        "eval: cancelled before layer %lld of %lld (positions %lld..%lld)",
                        (long long)l + 1, (long long)n_layers, (long long)p0,
                        (long long)(p0 + c - 1));
}

/* Runs layers [0, n_layers) on the c rows of s->x at positions p0..p0+c-1,
 * checking ctx's cancel flag before each layer. */
static comi_status run_layers(comi_ctx *ctx, comi_pool *pool, comi_session *s, int64_t p0,
                              int64_t c, int64_t n_layers) {
    comi_err *e = &ctx->err;
    const comi_model *m = s->m;
    const int64_t d = m->n_embd, kvd = m->kv_dim;
    comi_status st;
    ops_rope_table(s->cs, p0, c, m->head_dim, m->rope_theta);
    const bool half = s->kv_type == COMI_KV_F16;
    for (int64_t l = 0; l < n_layers; l++) {
        if ((st = check_layer_cancel(ctx, l, n_layers, p0, c))) return st;
        const model_layer *ly = &m->layers[l];
        /* (c x kv_dim) new rows: in the float cache itself, or in scratch
         * that is rounded into the half cache once RoPE is applied */
        float *kc = NULL, *vc = NULL, *kn = s->knew, *vn = s->vnew;
        uint16_t *kc16 = NULL, *vc16 = NULL;
        if (half) {
            kc16 = (uint16_t *)s->kv + kv_off(s, l, 0);
            vc16 = (uint16_t *)s->kv + kv_off(s, l, 1);
        } else {
            kc = (float *)s->kv + kv_off(s, l, 0);
            vc = (float *)s->kv + kv_off(s, l, 1);
            kn = kc + p0 * kvd;
            vn = vc + p0 * kvd;
        }
        ops_rmsnorm_rows(pool, s->xn, s->x, ly->attn_norm, c, d, m->norm_eps);
        const ops_mm_item qkv[3] = {
            {&ly->wq, s->q, m->q_dim}, {&ly->wk, kn, kvd}, {&ly->wv, vn, kvd}};
        if ((st = ops_matmul_group(e, pool, qkv, 3, s->xn, c)) ||
            (st = apply_lora(e, pool, s, &ly->lora[LORA_Q], s->xn, c, s->q, m->q_dim)) ||
            (st = apply_lora(e, pool, s, &ly->lora[LORA_K], s->xn, c, kn, kvd)) ||
            (st = apply_lora(e, pool, s, &ly->lora[LORA_V], s->xn, c, vn, kvd)))
            return st;
        if (ly->bq) {
            add_rows_bias(s->q, c, m->q_dim, ly->bq, m->q_dim);
            add_rows_bias(kn, c, kvd, ly->bk, kvd);
            add_rows_bias(vn, c, kvd, ly->bv, kvd);
        }
        if (ly->q_norm) {
            head_norm(s->q, c, m->q_dim, m->n_head, m->head_dim, ly->q_norm, m->norm_eps);
            head_norm(kn, c, kvd, m->n_head_kv, m->head_dim, ly->k_norm, m->norm_eps);
        }
        ops_rope_apply(s->q, c, m->q_dim, m->n_head, m->head_dim, s->cs, m->rope_mode);
        ops_rope_apply(kn, c, kvd, m->n_head_kv, m->head_dim, s->cs, m->rope_mode);
        if (half) {
            quant_f32_to_f16_row(kn, kc16 + p0 * kvd, c * kvd);
            quant_f32_to_f16_row(vn, vc16 + p0 * kvd, c * kvd);
        }
        ops_attn_args a = {.q = s->q,
                           .ldq = m->q_dim,
                           .k = kc,
                           .v = vc,
                           .k16 = kc16,
                           .v16 = vc16,
                           .ldkv = kvd,
                           .o = s->att,
                           .ldo = m->q_dim,
                           .n = c,
                           .pos0 = p0,
                           .n_kv = p0 + c,
                           .n_head = m->n_head,
                           .n_kv_head = m->n_head_kv,
                           .head_dim = m->head_dim,
                           .scale = (float)(1.0 / sqrt((double)m->head_dim))};
        if ((st = ops_attention(e, pool, &a))) return st;
        if ((st = ops_matmul(e, pool, &ly->wo, s->att, c, s->xn, d)) ||
            (st = apply_lora(e, pool, s, &ly->lora[LORA_O], s->att, c, s->xn, d)))
            return st;
        for (int64_t i = 0; i < c * d; i++)
            s->x[i] += s->xn[i];

        ops_rmsnorm_rows(pool, s->xn, s->x, ly->ffn_norm, c, d, m->norm_eps);
        const ops_mm_item gate_up[2] = {{&ly->w_gate, s->gate, m->n_ff},
                                        {&ly->w_up, s->up, m->n_ff}};
        if ((st = ops_matmul_group(e, pool, gate_up, 2, s->xn, c))) return st;
        ops_swiglu_rows(pool, s->gate, s->up, c, m->n_ff);
        if ((st = ops_matmul(e, pool, &ly->w_down, s->gate, c, s->xn, d))) return st;
        for (int64_t i = 0; i < c * d; i++)
            s->x[i] += s->xn[i];
    }
    return COMI_OK;
}

static comi_status eval_batches(comi_ctx *ctx, comi_session *s, const int32_t *ids,
                                const float *embd, int64_t n, const comi_eval_params *params,
                                int64_t nl, bool full, comi_pool *pool);

comi_status comi_session_eval(comi_ctx *ctx, comi_session *s, const int32_t *ids, const float *embd,
                              int64_t n, const comi_eval_params *params) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    comi_eval_params def = comi_eval_default_params();
    if (!params) params = &def;
    const comi_model *m = s->m;
    if ((ids == NULL) == (embd == NULL))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "eval: give exactly one of ids and embd");
    if (n < 1)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "eval: empty batch (n = %lld)", (long long)n);
    if (n > s->max_tokens - s->n_past)
        return comi_err_set(e, COMI_ERR_LIMIT,
                            "eval: %lld positions do not fit the session (%lld of %lld used)",
                            (long long)n, (long long)s->n_past, (long long)s->max_tokens);
    int64_t nl = params->n_layers == 0 ? m->n_layer : params->n_layers;
    if (nl < 1 || nl > m->n_layer)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "eval: layer count %d out of range [1, %lld]",
                            params->n_layers, (long long)m->n_layer);
    int64_t depth = s->n_past == 0 ? m->n_layer : s->depth;
    if (nl > depth)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "eval: the session's cache holds only %lld layers (an earlier eval ran "
                            "fewer); reset it to run %lld",
                            (long long)depth, (long long)nl);
    bool full = nl == m->n_layer;
    if (params->logits_out && (params->n_logits < 0 || params->n_logits > n || !full))
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "eval: n_logits %lld must be in [0, %lld] and needs all layers",
                            (long long)params->n_logits, (long long)n);
    if (ids)
        for (int64_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= m->n_vocab)
                return comi_err_set(
                    e, COMI_ERR_INVALID_ARG,
                    "token id %d at position %lld is outside the vocabulary [0, %lld)", ids[i],
                    (long long)i, (long long)m->n_vocab);
    comi_pool *pool = comi_ctx_pool(ctx);
    if (!pool) return e->status;

    comi_status st;
    const bool had_logits = s->have_logits;
    ops_blas_enter(); /* one OpenBLAS thread-count switch per call, not per matmul */
    st = eval_batches(ctx, s, ids, embd, n, params, nl, full, pool);
    ops_blas_leave();
    if (st) {
        /* cancellation is checked only before a layer, so before the last
         * logits are overwritten: the session is as before the call */
        if (st == COMI_ERR_CANCELLED) s->have_logits = had_logits;
        return st;
    }
    s->depth = depth < nl ? depth : nl;
    if (s->n_past == 0) s->depth = nl;
    s->n_past += n;
    s->have_logits = full;
    return COMI_OK;
}

static comi_status eval_batches(comi_ctx *ctx, comi_session *s, const int32_t *ids,
                                const float *embd, int64_t n, const comi_eval_params *params,
                                int64_t nl, bool full, comi_pool *pool) {
    const comi_model *m = s->m;
    const int64_t d = m->n_embd;
    comi_err *e = &ctx->err;
    int64_t logit_from = params->logits_out ? n - params->n_logits : n;
    s->have_logits = false;
    comi_status st;
    for (int64_t b0 = 0; b0 < n; b0 += s->ub) {
        int64_t c = n - b0 < s->ub ? n - b0 : s->ub;
        int64_t p0 = s->n_past + b0;
        if (ids) {
            if ((st = comi_model_embed(ctx, m, ids + b0, c, s->x))) return st;
        } else {
            memcpy(s->x, embd + b0 * d, (size_t)(c * d) * sizeof(float));
        }
        if ((st = run_layers(ctx, pool, s, p0, c, nl))) return st;
        ops_rmsnorm_rows(pool, s->xn, s->x, m->output_norm, c, d, m->norm_eps);
        if (params->hidden_out)
            memcpy(params->hidden_out + b0 * d, s->xn, (size_t)(c * d) * sizeof(float));
        if (!full) continue;
        /* logits of rows [lr0, c) of this micro-batch */
        int64_t lr0 = logit_from > b0 ? logit_from - b0 : 0;
        if (lr0 < c) {
            float *dst = params->logits_out + (b0 + lr0 - logit_from) * m->n_vocab;
            if ((st = ops_matmul(e, pool, &m->output, s->xn + lr0 * d, c - lr0, dst, m->n_vocab)))
                return st;
        }
        if (b0 + c == n) {
            if (lr0 < c) {
                memcpy(s->logits, params->logits_out + (n - 1 - logit_from) * m->n_vocab,
                       (size_t)m->n_vocab * sizeof(float));
            } else if ((st = ops_matmul(e, pool, &m->output, s->xn + (c - 1) * d, 1, s->logits,
                                        m->n_vocab))) {
                return st;
            }
        }
    }
    return COMI_OK;
}

/* ---- generation -------------------------------------------------------- */

comi_generate_params comi_generate_default_params(void) {
    comi_generate_params p = {
        .max_new_tokens = 20, .repetition_penalty = 1.0f, .stop_at_eos = true};
    return p;
}

comi_status comi_generate(comi_ctx *ctx, comi_session *s, const comi_generate_params *params,
                          int32_t *out_ids, int32_t *n_out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    comi_generate_params def = comi_generate_default_params();
    if (!params) params = &def;
    if (!n_out || (params->max_new_tokens > 0 && !out_ids))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "generate: NULL output");
    *n_out = 0;
    if (params->max_new_tokens < 0)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "generate: max_new_tokens %d < 0",
                            params->max_new_tokens);
    if (!(params->repetition_penalty > 0) || !isfinite(params->repetition_penalty))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "generate: repetition penalty %g must be > 0",
                            (double)params->repetition_penalty);
    if (!s->have_logits)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "generate: the session has no logits (run a full-depth eval first)");
    const comi_model *m = s->m;
    const float pen = params->repetition_penalty;
    for (int32_t step = 0; step < params->max_new_tokens; step++) {
        comi_status cst = comi_check_cancel(ctx, "generate");
        if (cst) return cst; /* the ids so far stay in out_ids[0 .. *n_out) */
        /* HF semantics: gather the logits of the ids generated so far,
         * penalise, scatter back (a repeated id is penalised once) — on a
         * copy, so comi_session_logits stays the model's output */
        float *lg = s->pen_logits;
        memcpy(lg, s->logits, (size_t)m->n_vocab * sizeof(float));
        for (int32_t j = 0; pen != 1.0f && j < step; j++) {
            float x = s->logits[out_ids[j]];
            lg[out_ids[j]] = x > 0 ? x / pen : x * pen;
        }
        int32_t best = 0;
        for (int64_t v = 1; v < m->n_vocab; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        if (params->stop_at_eos && comi_model_is_eos(m, best)) break;
        out_ids[step] = best;
        *n_out = step + 1;
        if (step + 1 == params->max_new_tokens) break;
        comi_eval_params ep = comi_eval_default_params();
        comi_status st = comi_session_eval(ctx, s, &best, NULL, 1, &ep);
        if (st) return st;
    }
    return COMI_OK;
}
