/*
 * fuzz_model.h — the checks the model-loading fuzz targets run on a model
 * that loaded: tensor listing, then (for small models) a 2-token forward
 * pass through every layer, so a shape or hyper-parameter check that lets
 * an inconsistent model through shows up as an out-of-bounds access.
 */
#ifndef COMI_FUZZ_MODEL_H
#define COMI_FUZZ_MODEL_H

#include "comi.h"
#include "fuzz.h"

static void fuzz_exercise_model(comi_ctx *ctx, const comi_model *m) {
    comi_model_info info;
    comi_model_get_info(m, &info);
    FUZZ_CHECK(info.n_embd > 0 && info.n_vocab > 0 && info.n_layer > 0);
    for (int64_t i = 0; i < comi_model_n_tensors(m); i++) {
        comi_tensor_info ti;
        FUZZ_CHECK(comi_model_tensor_info(m, i, &ti) && ti.name);
    }
    FUZZ_CHECK(!comi_model_tensor_info(m, comi_model_n_tensors(m), &(comi_tensor_info){0}));
    /* The input bounds the weight bytes, but a session's scratch scales
     * with the dimensions: only small models run. */
    if (comi_model_session_bytes(m, 4) > ((uint64_t)64 << 20)) return;
    comi_session *s = NULL;
    if (comi_session_new(ctx, m, 4, &s) != COMI_OK) return;
    int32_t ids[2] = {0, info.n_vocab - 1};
    comi_eval_params ep = comi_eval_default_params();
    if (comi_session_eval(ctx, s, ids, NULL, 2, &ep) == COMI_OK)
        FUZZ_CHECK(comi_session_logits(s) != NULL && comi_session_n_past(s) == 2);
    comi_session_free(s);
}

#endif /* COMI_FUZZ_MODEL_H */
