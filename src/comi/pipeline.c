/*
 * pipeline.c — the soft pipeline (stage: encoder -> merge -> fusion ->
 * decoder), DESIGN.md "The soft pipeline". Mirrors the reference COMI
 * model's build_comi_memory / generate_tkdr_memorys / forward (generation
 * branch):
 *
 *   per segment of segment_size context tokens:
 *     H = encoder_K([segment ; question])      (n_seg + n_q, d_enc), final norm
 *     q = mean of H's question rows
 *     M_s = merge(H's context rows, q)          (~n_seg / m, d_enc)
 *     F_s = fusion(M_s) | align(M_s) | M_s      (~n_seg / m, d_dec)
 *   decoder([F_1 ; ... ; F_S ; embed(question)]), greedy, repetition penalty
 *
 * Fusion runs per segment, as the reference applies its memory fusion layer
 * inside the per-segment memory builder (one segment: the whole memory).
 * The encoder and decoder may be one loaded model (training-free use).
 */
#include "comi/checkpoint.h"
#include "comi/pipeline.h"

#include "base/utf8.h"
#include "comi/mig.h"
#include "runtime/model.h"
#include "formats/safetensors.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIPE_DEFAULT_LAYERS 8

/* ---- parameters -------------------------------------------------------- */

comi_pipeline_load_params comi_pipeline_load_default_params(void) {
    comi_pipeline_load_params p = {.model = NULL, .checkpoint = NULL, .lora_alpha = 0};
    return p;
}

comi_answer_params comi_answer_default_params(void) {
    comi_answer_params p;
    memset(&p, 0, sizeof p);
    p.encoder_layers = 0;
    p.segment_size = 10000;
    p.merge = comi_merge_default_params();
    p.max_new_tokens = 20;
    p.repetition_penalty = 1.3f;
    p.penalty_per_occurrence = false;
    p.max_bytes = 0;
    p.keep_logits = true;
    return p;
}

comi_answer_params comi_pipeline_answer_params(const comi_pipeline *pl) {
    comi_answer_params p = comi_answer_default_params();
    if (pl) {
        p.encoder_layers = pl->enc_layers_default;
        p.merge = pl->merge_default;
    }
    return p;
}

int32_t pipeline_default_layers(const comi_model *m) {
    return m->n_layer < PIPE_DEFAULT_LAYERS ? (int32_t)m->n_layer : PIPE_DEFAULT_LAYERS;
}

/* ---- load / free ------------------------------------------------------- */

static comi_pipeline *pipeline_new(comi_err *e) {
    comi_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl) {
        comi_err_set(e, COMI_ERR_NOMEM, "pipeline: out of memory");
        return NULL;
    }
    static atomic_uint_fast64_t next_serial = 1;
    pl->merge_default = comi_merge_default_params();
    pl->serial = (uint64_t)atomic_fetch_add(&next_serial, 1);
    return pl;
}

void comi_pipeline_free(comi_pipeline *pl) {
    if (!pl) return;
    for (int32_t i = pl->n_owned - 1; i >= 0; i--) comi_model_free(pl->owned[i]);
    st_close(pl->ckpt);
    comi_tokenizer_free(pl->own_tok);
    free(pl->align_w);
    free(pl->align_b);
    free(pl);
}

static void describe_base(comi_pipeline *pl, const char *path) {
    comi_model_info mi;
    comi_model_get_info(pl->dec, &mi);
    snprintf(pl->desc, sizeof pl->desc,
             "training-free: %s (%s, %d layers, d %d); encoder = its first K layers "
             "(default %d), decoder = the whole model, no fusion",
             path ? path : "model", mi.arch, (int)mi.n_layer, (int)mi.n_embd,
             (int)pl->enc_layers_default);
}

comi_status comi_pipeline_from_models(comi_ctx *ctx, const comi_model *encoder,
                                      const comi_model *decoder, const comi_tokenizer *tokenizer,
                                      comi_pipeline **out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!out || !encoder || !decoder)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "pipeline: NULL argument");
    *out = NULL;
    if (encoder->n_embd != decoder->n_embd)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "pipeline: encoder width %lld differs from decoder width %lld and "
                            "there is no alignment layer",
                            (long long)encoder->n_embd, (long long)decoder->n_embd);
    comi_pipeline *pl = pipeline_new(e);
    if (!pl) return e->status;
    pl->enc = encoder;
    pl->dec = decoder;
    pl->tok = tokenizer;
    pl->enc_layers_default = pipeline_default_layers(encoder);
    describe_base(pl, NULL);
    *out = pl;
    return COMI_OK;
}

comi_status comi_pipeline_load(comi_ctx *ctx, const comi_pipeline_load_params *params,
                               comi_pipeline **out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!out || !params || !params->model)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "pipeline: a base model path is required");
    *out = NULL;
    comi_pipeline *pl = pipeline_new(e);
    if (!pl) return e->status;
    comi_status st;
    if (params->checkpoint) {
        st = ckpt_load(e, ctx, pl, params->checkpoint, params->model, params->lora_alpha);
    } else {
        comi_model *m = NULL;
        st = comi_model_load(ctx, params->model, NULL, &m);
        if (!st) {
            pl->owned[pl->n_owned++] = m;
            pl->enc = pl->dec = m;
            pl->enc_layers_default = pipeline_default_layers(m);
            describe_base(pl, params->model);
        }
    }
    if (!st) {
        const char *tp = params->tokenizer ? params->tokenizer : params->model;
        st = comi_tokenizer_load(ctx, tp, &pl->own_tok);
        pl->tok = pl->own_tok;
    }
    if (st) {
        comi_pipeline_free(pl);
        return st;
    }
    *out = pl;
    return COMI_OK;
}

const comi_tokenizer *comi_pipeline_tokenizer(const comi_pipeline *pl) {
    return pl ? pl->tok : NULL;
}

void comi_pipeline_get_info(const comi_pipeline *pl, comi_pipeline_info *o) {
    memset(o, 0, sizeof *o);
    o->description = pl->desc;
    o->encoder_layers = pl->enc_layers_default;
    o->encoder_n_layer = (int32_t)pl->enc->n_layer;
    o->d_encoder = (int32_t)pl->enc->n_embd;
    o->d_decoder = (int32_t)pl->dec->n_embd;
    o->fusion_layers = pl->fusion ? (int32_t)pl->fusion->n_layer : 0;
    o->alignment = !pl->fusion && pl->align_w && pl->enc->n_embd != pl->dec->n_embd;
    o->decoder_lora = pl->decoder_lora;
    o->shared_model = pl->enc == pl->dec;
}

/* ---- stages ------------------------------------------------------------ */

static comi_status resolve_layers(comi_err *e, const comi_pipeline *pl, int32_t k, int32_t *out) {
    if (k == 0) k = pl->enc_layers_default;
    if (k < 1 || k > pl->enc->n_layer)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "encoder layers %d out of range: the encoder has %lld layers", (int)k,
                            (long long)pl->enc->n_layer);
    *out = k;
    return COMI_OK;
}

/* Encodes [context ; question] on a session of the encoder (reset first),
 * positions from 0. hidden: NULL or (n_context + n_question, d_enc);
 * query: NULL or (d_enc,) the mean of the question rows (needs hidden). */
static comi_status encode_on(comi_ctx *ctx, const comi_model *enc, comi_session *s,
                             const int32_t *cids, int64_t nc, const int32_t *qids, int64_t nq,
                             int32_t k, float *hidden, float *query) {
    const int64_t d = enc->n_embd;
    comi_session_reset(s);
    comi_eval_params ep = comi_eval_default_params();
    ep.n_layers = k;
    comi_status st;
    if (nc > 0) {
        ep.hidden_out = hidden;
        if ((st = comi_session_eval(ctx, s, cids, NULL, nc, &ep))) return st;
    }
    ep.hidden_out = hidden ? hidden + nc * d : NULL;
    if ((st = comi_session_eval(ctx, s, qids, NULL, nq, &ep))) return st;
    if (query) {
        for (int64_t j = 0; j < d; j++) {
            double acc = 0;
            for (int64_t i = 0; i < nq; i++) acc += hidden[(nc + i) * d + j];
            query[j] = (float)(acc / (double)nq);
        }
    }
    return COMI_OK;
}

comi_status comi_pipeline_encode(comi_ctx *ctx, const comi_pipeline *pl,
                                 const int32_t *context_ids, int64_t n_context,
                                 const int32_t *question_ids, int64_t n_question,
                                 int32_t encoder_layers, float *hidden_out, float *query_out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!pl || n_context < 0 || (n_context > 0 && !context_ids))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "encode: bad context arguments");
    if (n_question < 1 || !question_ids)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "encode: the question has no tokens");
    int32_t k = 0;
    comi_status st = resolve_layers(e, pl, encoder_layers, &k);
    if (st) return st;
    const int64_t n = n_context + n_question, d = pl->enc->n_embd;
    if ((st = comi_check_tokens(ctx, "encode: context", n_context))) return st;
    uint64_t need = comi_session_bytes(ctx, pl->enc, n);
    if (!hidden_out && query_out)
        need = comi_add_sat(need, comi_mul_sat((uint64_t)n, (uint64_t)d * sizeof(float)));
    char what[96];
    snprintf(what, sizeof what, "encode: %lld tokens", (long long)n);
    if ((st = comi_check_bytes(ctx, what, need, 0, NULL))) return st;
    float *hid = hidden_out;
    if (!hid && query_out && !(hid = comi_alloc_array(e, (size_t)n, (size_t)d * sizeof(float),
                                                      "encoder states")))
        return e->status;
    comi_session *s = NULL;
    st = model_session_new(e, pl->enc, n, ctx->kv_type, &s);
    if (!st) st = encode_on(ctx, pl->enc, s, context_ids, n_context, question_ids, n_question, k,
                            hid, query_out);
    comi_session_free(s);
    if (hid != hidden_out) free(hid);
    return st;
}

comi_status comi_pipeline_merge(comi_ctx *ctx, const float *hidden, int64_t n_context,
                                int64_t n_question, int64_t d_model,
                                const comi_merge_params *params, comi_merge_result *out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (out) memset(out, 0, sizeof *out);
    if (!hidden || !out || n_context < 1 || n_question < 1 || d_model < 1)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "pipeline merge: need hidden states, n_context >= 1 (got %lld), "
                            "n_question >= 1 (got %lld), d_model >= 1 (got %lld)",
                            (long long)n_context, (long long)n_question, (long long)d_model);
    float *q = comi_alloc_array(e, (size_t)d_model, sizeof(float), "query vector");
    if (!q) return e->status;
    for (int64_t j = 0; j < d_model; j++) {
        double acc = 0;
        for (int64_t i = 0; i < n_question; i++) acc += hidden[(n_context + i) * d_model + j];
        q[j] = (float)(acc / (double)n_question);
    }
    comi_status st = comi_merge(ctx, hidden, n_context, d_model, q, params, out);
    free(q);
    return st;
}

/* Fusion without the context's limits (the caller checked them). */
static comi_status fuse_on(comi_ctx *ctx, const comi_pipeline *pl, const float *memory,
                           int64_t n_memory, float *out) {
    comi_err *e = &ctx->err;
    if (n_memory == 0) return COMI_OK;
    const int64_t di = pl->enc->n_embd, dout = pl->dec->n_embd;
    if (pl->fusion) {
        comi_session *s = NULL;
        comi_status st = model_session_new(e, pl->fusion, n_memory, ctx->kv_type, &s);
        if (st) return st;
        comi_eval_params ep = comi_eval_default_params();
        ep.hidden_out = out;
        st = comi_session_eval(ctx, s, NULL, memory, n_memory, &ep);
        comi_session_free(s);
        return st;
    }
    if (di != dout) {
        if (!pl->align_w)
            return comi_err_set(e, COMI_ERR_INVALID_ARG,
                                "fuse: encoder width %lld != decoder width %lld and no alignment "
                                "layer",
                                (long long)di, (long long)dout);
        /* out = memory W^T + b; W is (dout, di) as nn.Linear stores it */
        for (int64_t i = 0; i < n_memory; i++)
            for (int64_t o = 0; o < dout; o++) {
                const float *w = pl->align_w + o * di, *x = memory + i * di;
                double acc = pl->align_b ? pl->align_b[o] : 0;
                for (int64_t j = 0; j < di; j++) acc += (double)w[j] * x[j];
                out[i * dout + o] = (float)acc;
            }
        return COMI_OK;
    }
    if (out != memory) memmove(out, memory, (size_t)(n_memory * di) * sizeof(float));
    return COMI_OK;
}

comi_status comi_pipeline_fuse(comi_ctx *ctx, const comi_pipeline *pl, const float *memory,
                               int64_t n_memory, float *out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!pl || n_memory < 0 || (n_memory > 0 && (!memory || !out)))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "fuse: bad arguments");
    if (pl->fusion && n_memory > 0) {
        char what[96];
        snprintf(what, sizeof what, "fuse: %lld memory vectors", (long long)n_memory);
        comi_status st =
            comi_check_bytes(ctx, what, comi_session_bytes(ctx, pl->fusion, n_memory), 0, NULL);
        if (st) return st;
    }
    return fuse_on(ctx, pl, memory, n_memory, out);
}

/* Greedy decoding with the repetition penalty applied once per earlier
 * occurrence of an id (compounding), the variant the golden pipeline ids
 * follow; comi_generate implements the Hugging Face rule (once per id).
 * Same contract as comi_generate. */
static comi_status generate_compound(comi_ctx *ctx, comi_session *s, const comi_model *m,
                                     const comi_generate_params *gen, int32_t *ids, int32_t *n_out) {
    comi_err *e = &ctx->err;
    *n_out = 0;
    float *lg = comi_alloc_array(e, (size_t)m->n_vocab, sizeof(float), "logits"); /* (n_vocab) */
    if (!lg) return e->status;
    comi_status st = COMI_OK;
    const float pen = gen->repetition_penalty;
    for (int32_t step = 0; step < gen->max_new_tokens; step++) {
        if ((st = comi_check_cancel(ctx, "answer: decoding"))) break;
        memcpy(lg, comi_session_logits(s), (size_t)m->n_vocab * sizeof(float));
        for (int32_t j = 0; j < step; j++) lg[ids[j]] = lg[ids[j]] > 0 ? lg[ids[j]] / pen : lg[ids[j]] * pen;
        int32_t best = 0;
        for (int64_t v = 1; v < m->n_vocab; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        if (gen->stop_at_eos && comi_model_is_eos(m, best)) break;
        ids[step] = best;
        *n_out = step + 1;
        if (step + 1 == gen->max_new_tokens) break;
        comi_eval_params ep = comi_eval_default_params();
        if ((st = comi_session_eval(ctx, s, &best, NULL, 1, &ep))) break;
    }
    free(lg);
    return st;
}

/* Prefill of [memory ; question embeddings] on a fresh decoder session and
 * greedy generation. */
static comi_status decode_on(comi_ctx *ctx, const comi_pipeline *pl, comi_session *s,
                             const float *memory, int64_t n_mem, const int32_t *qids, int64_t nq,
                             const comi_generate_params *gen, bool compound, float *logits_out,
                             int32_t *ids_out, int32_t *n_out, double *ms_prefill,
                             double *ms_gen) {
    double t0 = comi_now_ms();
    comi_session_reset(s);
    comi_eval_params ep = comi_eval_default_params();
    comi_status st;
    if (n_mem > 0 && (st = comi_session_eval(ctx, s, NULL, memory, n_mem, &ep))) return st;
    /* the question's embedding rows are what the ids path looks up */
    if ((st = comi_session_eval(ctx, s, qids, NULL, nq, &ep))) return st;
    const float *lg = comi_session_logits(s);
    if (!lg) return comi_err_set(&ctx->err, COMI_ERR_INTERNAL, "decode: no logits after prefill");
    if (logits_out) memcpy(logits_out, lg, (size_t)pl->dec->n_vocab * sizeof(float));
    double t1 = comi_now_ms();
    st = compound ? generate_compound(ctx, s, pl->dec, gen, ids_out, n_out)
                  : comi_generate(ctx, s, gen, ids_out, n_out);
    if (ms_prefill) *ms_prefill = t1 - t0;
    if (ms_gen) *ms_gen = comi_now_ms() - t1;
    return st;
}

static comi_generate_params default_gen(void) {
    comi_generate_params g = comi_generate_default_params();
    g.max_new_tokens = 20;
    g.repetition_penalty = 1.3f;
    g.stop_at_eos = true;
    return g;
}

comi_status comi_pipeline_decode(comi_ctx *ctx, const comi_pipeline *pl, const float *memory,
                                 int64_t n_memory, const int32_t *question_ids,
                                 int64_t n_question, const comi_generate_params *gen,
                                 float *logits_out, int32_t *ids_out, int32_t *n_out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    comi_generate_params def = default_gen();
    if (!gen) gen = &def;
    if (!pl || !n_out || n_memory < 0 || (n_memory > 0 && !memory) ||
        (gen->max_new_tokens > 0 && !ids_out))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "decode: bad arguments");
    if (n_question < 1 || !question_ids)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "decode: the question has no tokens");
    if (gen->max_new_tokens < 0)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "decode: max new tokens %d < 0",
                            (int)gen->max_new_tokens);
    const int64_t n_dec = n_memory + n_question + gen->max_new_tokens;
    char what[96];
    snprintf(what, sizeof what, "decode: %lld positions", (long long)n_dec);
    comi_status st = comi_check_bytes(ctx, what, comi_session_bytes(ctx, pl->dec, n_dec), 0, NULL);
    if (st) return st;
    comi_session *s = NULL;
    if ((st = model_session_new(e, pl->dec, n_dec, ctx->kv_type, &s))) return st;
    st = decode_on(ctx, pl, s, memory, n_memory, question_ids, n_question, gen, false, logits_out,
                   ids_out, n_out, NULL, NULL);
    comi_session_free(s);
    return st;
}

/* ---- the whole pipeline ------------------------------------------------ */

void comi_answer_result_free(comi_answer_result *r) {
    if (!r) return;
    free(r->text);
    free(r->ids);
    free(r->memory);
    free(r->group_sizes);
    free(r->logits);
    memset(r, 0, sizeof *r);
}

/* Removes leading and trailing ASCII whitespace in place (byte-level BPE
 * answers start with the space of their first piece). */
static void trim_space(char *s) {
    size_t n = strlen(s), b = 0;
    while (b < n && (s[b] == ' ' || s[b] == '\n' || s[b] == '\t' || s[b] == '\r')) b++;
    while (n > b && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    memmove(s, s + b, n - b);
    s[n - b] = '\0';
}

/* Detokenizes the answer ids into clean text: special tokens dropped,
 * valid UTF-8, surrounding whitespace trimmed. */
static comi_status answer_text(comi_ctx *ctx, const comi_tokenizer *tok, const int32_t *ids,
                               int32_t n, char **out) {
    char *raw = NULL;
    comi_status st = comi_detokenize(ctx, tok, ids, (size_t)n, true, &raw, NULL);
    if (st) return st;
    /* generation can stop inside a character (or a random model can emit
     * byte pieces that never form one): each invalid byte becomes U+FFFD */
    *out = comi_utf8_lossy(raw, strlen(raw));
    comi_free(raw);
    if (!*out) return comi_err_set(&ctx->err, COMI_ERR_NOMEM, "answer: out of memory");
    trim_space(*out);
    return COMI_OK;
}

static comi_status check_params(comi_err *e, const comi_pipeline *pl, const comi_answer_params *p,
                                int32_t *k) {
    comi_status st = resolve_layers(e, pl, p->encoder_layers, k);
    if (st) return st;
    if (p->segment_size < 1)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "segment size %lld must be >= 1",
                            (long long)p->segment_size);
    if (p->merge.merge_size < 1)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge size %lld must be >= 1",
                            (long long)p->merge.merge_size);
    if (p->max_new_tokens < 0 || p->max_new_tokens > 1000000)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "max new tokens %d out of range [0, 1000000]",
                            (int)p->max_new_tokens);
    if (!(p->repetition_penalty > 0) || !isfinite(p->repetition_penalty))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "repetition penalty %g must be > 0",
                            (double)p->repetition_penalty);
    return COMI_OK;
}

comi_status comi_pipeline_answer_ids(comi_ctx *ctx, const comi_pipeline *pl,
                                     const int32_t *cids, int64_t nc, const int32_t *qids,
                                     int64_t nq, const comi_answer_params *params,
                                     comi_answer_result *out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    comi_answer_params def = comi_pipeline_answer_params(pl);
    if (!params) params = &def;
    if (!out || !pl) return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: NULL argument");
    memset(out, 0, sizeof *out);
    if (nc < 0 || (nc > 0 && !cids))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: bad context ids");
    if (nq < 1 || !qids)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: the question is empty (no tokens)");
    int32_t k = 0;
    comi_status st = check_params(e, pl, params, &k);
    if (st) return st;
    if ((st = comi_check_tokens(ctx, "answer: context", nc))) return st;
    if (nq > INT32_MAX || nc > INT64_MAX / 2)
        return comi_err_set(e, COMI_ERR_LIMIT,
                            "answer: %lld context and %lld question tokens are out of range",
                            (long long)nc, (long long)nq);
    double t_start = comi_now_ms();
    const comi_model *enc = pl->enc, *dec = pl->dec;
    const int64_t d = enc->n_embd, dd = dec->n_embd, m = params->merge.merge_size;
    /* one segment when the context fits (keeps s0 + seg below 2^63) */
    const int64_t seg = nc > 0 && params->segment_size > nc ? nc : params->segment_size;
    const int64_t n_seg = nc / seg + (nc % seg != 0);
    const int64_t seg_max = nc < seg ? nc : seg;
    /* memories and groups over all segments: at most ceil(len / m) each */
    int64_t n_mem_max = 0;
    for (int64_t s0 = 0; s0 < nc; s0 += seg) {
        int64_t len = nc - s0 < seg ? nc - s0 : seg;
        n_mem_max += len / m + (len % m != 0);
    }
    int64_t dec_tokens = n_mem_max + nq + params->max_new_tokens;

    if (dec_tokens > INT32_MAX)
        return comi_err_set(e, COMI_ERR_LIMIT,
                            "answer: context of %lld tokens gives %lld decoder positions, more "
                            "than %d; use a larger --merge-size",
                            (long long)nc, (long long)dec_tokens, INT32_MAX);

    /* the memory this answer needs, checked before any work: the encoder and
     * fusion sessions of one segment, the merge of one segment, the decoder
     * session, encoder states, memory and fused memory, ids and logits */
    uint64_t enc_bytes = n_seg ? comi_session_bytes(ctx, enc, seg_max + nq) : 0;
    uint64_t dec_bytes = comi_session_bytes(ctx, dec, dec_tokens);
    if (n_seg && pl->fusion)
        enc_bytes = comi_add_sat(
            enc_bytes, comi_session_bytes(ctx, pl->fusion, seg_max / m + (seg_max % m != 0)));
    uint64_t buf_bytes = comi_mul_sat((uint64_t)(seg_max + nq), (uint64_t)d * 4);
    buf_bytes =
        comi_add_sat(buf_bytes, comi_mul_sat((uint64_t)n_mem_max, (uint64_t)(d + dd + 1) * 4));
    buf_bytes = comi_add_sat(buf_bytes, (uint64_t)(params->max_new_tokens + dec->n_vocab + d) * 4);
    if (n_seg)
        buf_bytes =
            comi_add_sat(buf_bytes, mig_merge_bytes(seg_max, d, &params->merge, ctx->n_threads));
    uint64_t need = comi_add_sat(comi_add_sat(enc_bytes, dec_bytes), buf_bytes);
    char what[256];
    snprintf(what, sizeof what,
             "answer: context of %lld tokens (+ %lld question tokens; encoder %.1f MiB, decoder "
             "%.1f MiB, buffers %.1f MiB)",
             (long long)nc, (long long)nq, (double)enc_bytes / 1048576.0,
             (double)dec_bytes / 1048576.0, (double)buf_bytes / 1048576.0);
    if ((st = comi_check_bytes(ctx, what, need, params->max_bytes,
                               "use a smaller --segment-size or a larger --merge-size")))
        return st;

    float *hidden = NULL, *query = NULL, *fused = NULL;
    comi_session *es = NULL, *ds = NULL;
    out->empty_context = nc == 0;
    out->n_context_tokens = nc;
    out->n_question_tokens = nq;
    out->n_segments = n_seg;
    out->encoder_layers = k;
    out->d_model = d;
    out->n_vocab = dec->n_vocab;
    int32_t max_new = params->max_new_tokens;
    if (!(out->ids = comi_alloc_array(e, (size_t)(max_new > 0 ? max_new : 1), sizeof(int32_t),
                                      "answer ids")) ||
        (n_mem_max && !(out->memory = comi_alloc_array(e, (size_t)n_mem_max,
                                                       (size_t)d * sizeof(float), "memory"))) ||
        (n_mem_max && !(out->group_sizes = comi_alloc_array(e, (size_t)n_mem_max, sizeof(int32_t),
                                                            "group sizes"))) ||
        (n_mem_max && !(fused = comi_alloc_array(e, (size_t)n_mem_max, (size_t)dd * sizeof(float),
                                                 "decoder memory"))) ||
        (n_seg && !(hidden = comi_alloc_array(e, (size_t)(seg_max + nq), (size_t)d * sizeof(float),
                                              "encoder states"))) ||
        !(query = comi_alloc_array(e, (size_t)d, sizeof(float), "query vector")) ||
        (params->keep_logits &&
         !(out->logits = comi_alloc_array(e, (size_t)dec->n_vocab, sizeof(float), "logits")))) {
        st = e->status;
        goto fail;
    }
    if ((st = ecache_bind(e, params->encode_cache, pl))) goto fail;
    for (int64_t s0 = 0; s0 < nc; s0 += seg) {
        int64_t len = nc - s0 < seg ? nc - s0 : seg;
        if ((st = comi_check_cancel(ctx, "answer: encoding"))) goto fail;
        double t0 = comi_now_ms();
        if (!ecache_get(params->encode_cache, cids + s0, len, qids, nq, k, hidden, query)) {
            if (!es && (st = model_session_new(e, enc, seg_max + nq, ctx->kv_type, &es)))
                goto fail;
            if ((st = encode_on(ctx, enc, es, cids + s0, len, qids, nq, k, hidden, query)))
                goto fail;
            ecache_put(params->encode_cache, cids + s0, len, qids, nq, k, hidden, query);
        }
        double t1 = comi_now_ms();
        comi_merge_result mr;
        if ((st = mig_merge(ctx, hidden, len, d, query, &params->merge, false, &mr))) goto fail;
        if (out->n_memory + mr.n_memory > n_mem_max || out->n_groups + mr.n_groups > n_mem_max) {
            comi_merge_result_free(&mr);
            st = comi_err_set(e, COMI_ERR_INTERNAL, "answer: merge gave more memories than "
                                                    "ceil(n / m)");
            goto fail;
        }
        memcpy(out->memory + out->n_memory * d, mr.memory, (size_t)(mr.n_memory * d) * sizeof(float));
        memcpy(out->group_sizes + out->n_groups, mr.group_sizes,
               (size_t)mr.n_groups * sizeof(int32_t));
        int64_t first = out->n_memory;
        out->n_memory += mr.n_memory;
        out->n_groups += mr.n_groups;
        comi_merge_result_free(&mr);
        double t2 = comi_now_ms();
        if ((st = fuse_on(ctx, pl, out->memory + first * d, out->n_memory - first,
                          fused + first * dd)))
            goto fail;
        out->ms_encode += t1 - t0;
        out->ms_merge += t2 - t1;
        out->ms_fuse += comi_now_ms() - t2;
    }
    comi_session_free(es);
    es = NULL;
    free(hidden);
    hidden = NULL;

    if ((st = comi_check_cancel(ctx, "answer: before decoding"))) goto fail;
    comi_generate_params gen = comi_generate_default_params();
    gen.max_new_tokens = max_new;
    gen.repetition_penalty = params->repetition_penalty;
    gen.stop_at_eos = true;
    if ((st = model_session_new(e, dec, out->n_memory + nq + (max_new > 0 ? max_new : 1),
                                ctx->kv_type, &ds)))
        goto fail;
    if ((st = decode_on(ctx, pl, ds, fused, out->n_memory, qids, nq, &gen,
                        params->penalty_per_occurrence, out->logits, out->ids, &out->n_ids,
                        &out->ms_prefill, &out->ms_generate)))
        goto fail;
    comi_session_free(ds);
    ds = NULL;
    if (pl->tok) {
        double t0 = comi_now_ms();
        if ((st = answer_text(ctx, pl->tok, out->ids, out->n_ids, &out->text))) goto fail;
        out->ms_tokenize += comi_now_ms() - t0;
    }
    free(fused);
    free(query);
    out->ms_total = comi_now_ms() - t_start;
    return COMI_OK;
fail:
    comi_session_free(es);
    comi_session_free(ds);
    free(hidden);
    free(query);
    free(fused);
    comi_answer_result_free(out);
    return st;
}

static comi_status tokenize_plain(comi_ctx *ctx, const comi_tokenizer *tok, const char *text,
                                  int32_t **ids, size_t *n) {
    comi_tokenize_params tp = comi_tokenize_default_params();
    tp.add_bos = 0;
    tp.add_eos = 0;
    tp.parse_special = false;
    return comi_tokenize(ctx, tok, text, strlen(text), &tp, ids, n);
}

static bool all_space(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' && *s != '\v')
            return false;
    return true;
}

comi_status comi_pipeline_answer(comi_ctx *ctx, const comi_pipeline *pl, const char *context,
                                 const char *question, const comi_answer_params *params,
                                 comi_answer_result *out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (out) memset(out, 0, sizeof *out);
    if (!pl || !out || !question)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: NULL argument");
    if (!pl->tok)
        return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                            "answer: the model has no tokenizer (use token ids)");
    if (all_space(question))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: the question is empty");
    double t0 = comi_now_ms();
    int32_t *cids = NULL, *qids = NULL;
    size_t nc = 0, nq = 0;
    comi_status st = COMI_OK;
    if (context && !all_space(context)) st = tokenize_plain(ctx, pl->tok, context, &cids, &nc);
    if (!st) st = tokenize_plain(ctx, pl->tok, question, &qids, &nq);
    if (!st && nq == 0)
        st = comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: the question has no tokens");
    double t1 = comi_now_ms();
    if (!st) st = comi_pipeline_answer_ids(ctx, pl, cids, (int64_t)nc, qids, (int64_t)nq, params, out);
    if (!st) {
        out->ms_tokenize += t1 - t0;
        out->ms_total += t1 - t0;
    }
    comi_free(cids);
    comi_free(qids);
    return st;
}

comi_status comi_pipeline_answer_documents(comi_ctx *ctx, const comi_pipeline *pl,
                                           const char *const *docs, size_t n_docs,
                                           const char *question,
                                           const comi_answer_params *params,
                                           comi_answer_result *out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (n_docs > 0 && !docs) return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: NULL documents");
    size_t len = 1;
    for (size_t i = 0; i < n_docs; i++) {
        if (!docs[i]) return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: document %zu is NULL", i);
        if (!comi_add_size(len, strlen(docs[i]) + 1, &len))
            return comi_err_set(e, COMI_ERR_LIMIT, "answer: documents too long");
    }
    char *joined = comi_alloc_array(e, len, 1, "joined documents");
    if (!joined) return e->status;
    size_t off = 0;
    for (size_t i = 0; i < n_docs; i++) {
        size_t l = strlen(docs[i]);
        if (i) joined[off++] = '\n';
        memcpy(joined + off, docs[i], l);
        off += l;
    }
    joined[off] = '\0';
    comi_status st = comi_pipeline_answer(ctx, pl, joined, question, params, out);
    free(joined);
    return st;
}

comi_status comi_pipeline_answer_tokens(comi_ctx *ctx, const comi_pipeline *pl,
                                        const char *context, const char *question,
                                        int64_t max_context_tokens,
                                        const comi_answer_params *params,
                                        comi_answer_result *out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    comi_answer_params def = comi_pipeline_answer_params(pl);
    if (!params) params = &def;
    if (out) memset(out, 0, sizeof *out);
    if (!pl || !out || !question)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: NULL argument");
    if (!pl->tok)
        return comi_err_set(e, COMI_ERR_UNSUPPORTED, "answer: the model has no tokenizer");
    if (all_space(question))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: the question is empty");
    int32_t k = 0;
    comi_status st = check_params(e, pl, params, &k);
    if (st) return st;
    double t0 = comi_now_ms();
    int32_t *cids = NULL, *qids = NULL, *all = NULL;
    size_t nc = 0, nq = 0;
    comi_session *ds = NULL;
    if (context && !all_space(context)) st = tokenize_plain(ctx, pl->tok, context, &cids, &nc);
    if (!st) st = tokenize_plain(ctx, pl->tok, question, &qids, &nq);
    if (!st && nq == 0)
        st = comi_err_set(e, COMI_ERR_INVALID_ARG, "answer: the question has no tokens");
    if (st) goto done;
    out->ms_tokenize = comi_now_ms() - t0;
    if ((st = comi_check_tokens(ctx, "answer: context", (int64_t)nc))) goto done;
    int64_t keep = max_context_tokens < 0 || (size_t)max_context_tokens > nc
                       ? (int64_t)nc
                       : max_context_tokens;
    const int32_t max_new = params->max_new_tokens;
    const int64_t n_in = keep + (int64_t)nq;
    uint64_t need = comi_session_bytes(ctx, pl->dec, n_in + max_new + 1);
    need = comi_add_sat(need, (uint64_t)(n_in + max_new + pl->dec->n_vocab + 1) * 4);
    char what[96];
    snprintf(what, sizeof what, "answer: %lld context tokens (decoder cache and buffers)",
             (long long)keep);
    if ((st = comi_check_bytes(ctx, what, need, params->max_bytes, NULL))) goto done;
    out->empty_context = keep == 0;
    out->n_context_tokens = (int64_t)nc;
    out->n_question_tokens = (int64_t)nq;
    out->n_memory = keep;
    out->encoder_layers = k;
    out->d_model = pl->dec->n_embd;
    out->n_vocab = pl->dec->n_vocab;
    if (!(all = comi_alloc_array(e, (size_t)n_in, sizeof(int32_t), "decoder ids")) ||
        !(out->ids = comi_alloc_array(e, (size_t)(max_new > 0 ? max_new : 1), sizeof(int32_t),
                                      "answer ids")) ||
        (params->keep_logits &&
         !(out->logits = comi_alloc_array(e, (size_t)pl->dec->n_vocab, sizeof(float), "logits")))) {
        st = e->status;
        goto done;
    }
    if (keep) memcpy(all, cids, (size_t)keep * sizeof(int32_t));
    memcpy(all + keep, qids, nq * sizeof(int32_t));
    comi_generate_params gen = comi_generate_default_params();
    gen.max_new_tokens = max_new;
    gen.repetition_penalty = params->repetition_penalty;
    if ((st = model_session_new(e, pl->dec, n_in + (max_new > 0 ? max_new : 1), ctx->kv_type,
                                &ds)))
        goto done;
    /* the ids as one prompt: [context ; question], no memory rows */
    if ((st = decode_on(ctx, pl, ds, NULL, 0, all, n_in, &gen, params->penalty_per_occurrence,
                        out->logits, out->ids, &out->n_ids, &out->ms_prefill, &out->ms_generate)))
        goto done;
    double t1 = comi_now_ms();
    if ((st = answer_text(ctx, pl->tok, out->ids, out->n_ids, &out->text))) goto done;
    out->ms_tokenize += comi_now_ms() - t1;
    out->ms_total = comi_now_ms() - t0;
done:
    comi_session_free(ds);
    comi_free(cids);
    comi_free(qids);
    free(all);
    if (st) comi_answer_result_free(out);
    return st;
}
