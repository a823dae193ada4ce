/*
 * checkpoint.h — the COMI checkpoint loader (checkpoint.c). The pipeline
 * (pipeline.c) and the converter (convert.c) call it; it calls neither, so
 * the dependency runs one way: pipeline.c / convert.c -> checkpoint.c.
 */
#ifndef COMI_CHECKPOINT_H
#define COMI_CHECKPOINT_H

#include "comi/pipeline.h"

/* Loads a COMI checkpoint (directory with model.safetensors, or the GGUF
 * PREFIX written by comi convert) onto pl, with base_path the base model.
 * Fills every field of struct comi_pipeline; on failure pl may hold partial
 * state that comi_pipeline_free releases. A checkpoint of trained tensors
 * only (comi train) gets the decoder from the base model plus its LoRA. */
comi_status ckpt_load(comi_err *e, comi_ctx *ctx, comi_pipeline *pl, const char *ckpt_path,
                      const char *base_path, float lora_alpha);

#endif /* COMI_CHECKPOINT_H */
