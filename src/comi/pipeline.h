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
};

/* The default encoder depth for a base model: min(8, n_layer). */
int32_t pipeline_default_layers(const comi_model *m);

#endif /* COMI_PIPELINE_H */
