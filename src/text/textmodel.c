/*
 * textmodel.c — text mode, the transformer encoder: unit and question
 * vectors from a model's hidden states, as the soft pipeline encodes a
 * context (DESIGN.md "The soft pipeline": the first encoder_layers layers
 * plus the final RMSNorm, causal attention, each segment encoded as
 * [segment ; question], the query vector = mean of the question positions'
 * states). A unit's vector is the mean of its tokens' states. Units are
 * tokenized one by one (no BOS) and packed into segments in order, so the
 * vectors are contextual within a segment.
 */
#include "text/text.h"

#include "runtime/model.h"

#include <stdlib.h>
#include <string.h>

int32_t tm_dim(const comi_encoder *enc) {
    comi_model_info info;
    comi_model_get_info(enc->model, &info);
    return info.n_embd;
}

/* Tokens per encoded segment: the trained context when shorter than 1024. */
static int64_t tm_segment(const comi_encoder *enc) {
    comi_model_info info;
    comi_model_get_info(enc->model, &info);
    return info.n_ctx_train > 0 && info.n_ctx_train < 1024 ? info.n_ctx_train : 1024;
}

uint64_t tm_work_bytes(const comi_encoder *enc, int32_t kv_type, size_t n_units,
                       size_t n_bytes) {
    int64_t seg = tm_segment(enc);
    uint64_t b = model_session_bytes(enc->model, seg, kv_type); /* the session of tm_encode */
    /* hidden (seg x d), ids and all (seg each), pos (n_units + 1), per-unit
     * id arrays and counts, the ids themselves */
    b = comi_add_sat(b, comi_mul_sat((uint64_t)seg, (uint64_t)tm_dim(enc) * sizeof(float) + 8));
    b = comi_add_sat(b, comi_mul_sat((uint64_t)n_units + 1, 3 * sizeof(int64_t)));
    return comi_add_sat(b, comi_mul_sat((uint64_t)n_bytes + 1, sizeof(int32_t)));
}

/* Runs one segment: ids (n_ctx context ids, then nq question ids) through
 * the first layers; adds each unit's mean state to its row of uv (units
 * [u0, u1) own context positions pos[u]..pos[u+1]) and the question's mean
 * state to q. */
static comi_status run_segment(comi_ctx *ctx, const comi_encoder *enc, comi_session *sess,
                               const int32_t *ids, int64_t n_ctx, const int32_t *qids,
                               int64_t nq, const int64_t *pos, size_t u0, size_t u1,
                               float *uv, float *q, float *hidden, int32_t d) {
    int32_t *all = malloc((size_t)(n_ctx + nq) * sizeof *all);
    if (!all) return comi_err_set(&ctx->err, COMI_ERR_NOMEM, "model encoder: out of memory");
    memcpy(all, ids, (size_t)n_ctx * sizeof *all);
    memcpy(all + n_ctx, qids, (size_t)nq * sizeof *all);
    comi_session_reset(sess);
    comi_eval_params ep = comi_eval_default_params();
    ep.n_layers = enc->model_layers;
    ep.hidden_out = hidden;
    comi_status st = comi_session_eval(ctx, sess, all, NULL, n_ctx + nq, &ep);
    free(all);
    if (st != COMI_OK) return st;
    for (size_t u = u0; u < u1; u++) {
        int64_t a = pos[u], b = pos[u + 1];
        float *row = uv + u * (size_t)d;
        for (int64_t t = a; t < b; t++)
            for (int32_t j = 0; j < d; j++) row[j] += hidden[(size_t)t * (size_t)d + j];
        if (b > a)
            for (int32_t j = 0; j < d; j++) row[j] /= (float)(b - a);
    }
    for (int64_t t = n_ctx; t < n_ctx + nq; t++)
        for (int32_t j = 0; j < d; j++) q[j] += hidden[(size_t)t * (size_t)d + j] / (float)nq;
    return COMI_OK;
}

comi_status tm_encode(comi_ctx *ctx, const comi_encoder *enc, const char *const *texts,
                      size_t n_units, const char *question, float *uv, float *q) {
    comi_err *e = &ctx->err;
    const comi_tokenizer *tok = comi_model_tokenizer(enc->model);
    if (!tok) return comi_err_set(e, COMI_ERR_UNSUPPORTED, "model encoder: the model has no tokenizer");
    int32_t d = tm_dim(enc);
    int64_t seg = tm_segment(enc);
    comi_tokenize_params tp = comi_tokenize_default_params();
    tp.add_bos = 0;
    tp.add_eos = 0;
    int32_t *qids = NULL, **uids = NULL;
    size_t nq = 0, *un = NULL;
    int32_t *ids = NULL;
    int64_t *pos = NULL;
    float *hidden = NULL;
    comi_session *sess = NULL;
    comi_status st = comi_tokenize(ctx, tok, question, strlen(question), &tp, &qids, &nq);
    if (st != COMI_OK) goto out;
    if (nq == 0) {
        st = comi_err_set(e, COMI_ERR_INVALID_ARG, "model encoder: the question has no tokens");
        goto out;
    }
    if ((int64_t)nq > seg / 2) nq = (size_t)(seg / 2); /* keep room for context */
    int64_t room = seg - (int64_t)nq;
    uids = calloc(n_units ? n_units : 1, sizeof *uids);
    un = calloc(n_units ? n_units : 1, sizeof *un);
    ids = malloc((size_t)room * sizeof *ids);
    pos = malloc((n_units + 1) * sizeof *pos);
    hidden = malloc((size_t)seg * (size_t)d * sizeof *hidden);
    if (!uids || !un || !ids || !pos || !hidden) {
        st = comi_err_set(e, COMI_ERR_NOMEM, "model encoder: out of memory");
        goto out;
    }
    for (size_t u = 0; u < n_units; u++) {
        st = comi_tokenize(ctx, tok, texts[u], strlen(texts[u]), &tp, &uids[u], &un[u]);
        if (st != COMI_OK) goto out;
        if ((int64_t)un[u] > room) un[u] = (size_t)room; /* a very long unit: its head */
    }
    /* the caller checked the limits with tm_work_bytes */
    if ((st = model_session_new(e, enc->model, seg, ctx->kv_type, &sess)) != COMI_OK) goto out;
    memset(uv, 0, n_units * (size_t)d * sizeof *uv);
    memset(q, 0, (size_t)d * sizeof *q);
    size_t u0 = 0;
    int n_segs = 0;
    while (u0 < n_units) {
        int64_t n = 0;
        size_t u1 = u0;
        while (u1 < n_units && n + (int64_t)un[u1] <= room) {
            pos[u1] = n;
            memcpy(ids + n, uids[u1], un[u1] * sizeof *ids);
            n += (int64_t)un[u1];
            u1++;
        }
        pos[u1] = n;
        if ((st = comi_check_cancel(ctx, "model encoder: segment")) != COMI_OK) goto out;
        st = run_segment(ctx, enc, sess, ids, n, qids, (int64_t)nq, pos, u0, u1, uv, q, hidden, d);
        if (st != COMI_OK) goto out;
        n_segs++;
        u0 = u1;
    }
    if (n_segs > 1)
        for (int32_t j = 0; j < d; j++) q[j] /= (float)n_segs;
out:
    comi_session_free(sess);
    if (uids)
        for (size_t u = 0; u < n_units; u++) comi_free(uids[u]);
    free(uids);
    free(un);
    free(ids);
    free(pos);
    free(hidden);
    comi_free(qids);
    return st;
}
