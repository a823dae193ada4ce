/*
 * checkpoint.c — COMI checkpoints (stage: weights of the trained pipeline).
 */
#include "pipeline.h"

comi_status ckpt_load(comi_err *e, comi_ctx *ctx, comi_pipeline *pl, const char *ckpt_path,
                      const char *base_path, float lora_alpha) {
    (void)ctx;
    (void)pl;
    (void)base_path;
    (void)lora_alpha;
    return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: COMI checkpoints are not supported yet",
                        ckpt_path);
}
