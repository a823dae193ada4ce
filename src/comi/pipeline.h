/*
 * pipeline.h — the soft pipeline's state (pipeline.c), which the COMI
 * checkpoint loader (checkpoint.c, declared in checkpoint.h) fills. Public
 * handle: comi_pipeline in comi.h.
 */
#ifndef COMI_PIPELINE_H
#define COMI_PIPELINE_H

#include "base/common.h"

#include <stdbool.h>
#include <stdint.h>

#define PIPELINE_MAX_OWNED 4

struct st_model;

struct comi_pipeline {
    const comi_model *enc;    /* encoder weights (its first K layers run) */
    const comi_model *dec;    /* decoder (may equal enc) */
    const comi_model *fusion; /* fusion block(s) + final norm, or NULL */
    const comi_tokenizer *tok; /* NULL: only the *_ids calls work */
    float *align_w;           /* (d_dec, d_enc) semantic alignment weight (out x in), or NULL */
    float *align_b;           /* (d_dec,) its bias */
    int32_t enc_layers_default;
    comi_merge_params merge_default;
    bool decoder_lora;
    /* owned storage: models are freed in reverse order, then the mappings
     * their tensors may point into */
    comi_model *owned[PIPELINE_MAX_OWNED];
    int32_t n_owned;
    struct st_model *ckpt;     /* the checkpoint's safetensors, or NULL */
    comi_tokenizer *own_tok;   /* the tokenizer when the pipeline loaded it */
    char desc[512];
    uint64_t serial;           /* unique per pipeline in this process (encode caches bind to it) */
};

/* The default encoder depth for a base model: min(8, n_layer). */
int32_t pipeline_default_layers(const comi_model *m);

/* encode_cache.c: binds a cache to pl on first use (NULL cache: no-op);
 * get copies a hit's states into hidden/query and returns true; put stores
 * a copy (silently skipped when it cannot). */
comi_status ecache_bind(comi_err *e, comi_encode_cache *c, const comi_pipeline *pl);
bool ecache_get(comi_encode_cache *c, const int32_t *cids, int64_t nc, const int32_t *qids,
                int64_t nq, int32_t k, float *hidden, float *query);
void ecache_put(comi_encode_cache *c, const int32_t *cids, int64_t nc, const int32_t *qids,
                int64_t nq, int32_t k, const float *hidden, const float *query);

#endif /* COMI_PIPELINE_H */
