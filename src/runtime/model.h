/*
 * model.h — internal layout of a loaded decoder-only transformer (llama,
 * qwen2, qwen3) shared by the loader (model.c) and the forward pass
 * (session.c). Public handles: comi_model / comi_session in comi.h.
 */
#ifndef COMI_MODEL_H
#define COMI_MODEL_H

#include "base/common.h"
#include "runtime/ops.h"
#include "formats/tensor.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum model_arch { MODEL_ARCH_LLAMA = 0, MODEL_ARCH_QWEN2, MODEL_ARCH_QWEN3 } model_arch;

#define MODEL_MAX_EOS 8

/* A LoRA adapter on one projection: y += B (A x), with the scale alpha/r
 * folded into B at load. Both are float32 copies owned by the model,
 * described as weights so ops_matmul runs them. a.data == NULL: none. */
typedef struct model_lora {
    comi_tensor a; /* ne = (in, r) */
    comi_tensor b; /* ne = (r, out), scaled */
} model_lora;

enum { LORA_Q = 0, LORA_K, LORA_V, LORA_O, LORA_N };

/* One transformer block. Matrices are descriptors of mmapped bytes (or of
 * model-owned float32 copies when a LoRA adapter was merged); vectors are
 * float32 copies owned by the model (NULL when the architecture has none). */
typedef struct model_layer {
    const float *attn_norm;       /* (n_embd) */
    const float *bq, *bk, *bv;    /* (q_dim), (kv_dim), (kv_dim): qwen2 biases */
    const float *q_norm, *k_norm; /* (head_dim): qwen3 per-head RMSNorm */
    const float *ffn_norm;        /* (n_embd) */
    comi_tensor wq;               /* ne = (n_embd, q_dim) */
    comi_tensor wk, wv;           /* ne = (n_embd, kv_dim) */
    comi_tensor wo;               /* ne = (q_dim, n_embd) */
    comi_tensor w_gate, w_up;     /* ne = (n_embd, n_ff) */
    comi_tensor w_down;           /* ne = (n_ff, n_embd) */
    model_lora lora[LORA_N];      /* q, k, v, o adapters */
} model_layer;

struct gguf_file;
struct st_model;

struct comi_model {
    model_arch arch;
    bool from_gguf;
    int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train;
    int64_t q_dim, kv_dim; /* n_head * head_dim, n_head_kv * head_dim */
    float rope_theta, norm_eps;
    ops_rope_mode rope_mode;
    bool tied, qkv_bias, qk_norm, has_lora;

    comi_tensor tok_embd;     /* ne = (n_embd, n_vocab) */
    comi_tensor output;       /* ne = (n_embd, n_vocab); == tok_embd when tied */
    const float *output_norm; /* (n_embd) */
    model_layer *layers;      /* (n_layer) */

    int32_t bos_id;
    int32_t eos_ids[MODEL_MAX_EOS];
    int32_t n_eos;

    int64_t n_params;
    uint64_t weight_bytes;
    comi_type weight_type; /* type holding most matrix bytes */

    /* owned storage */
    float *vectors;        /* every norm/bias vector, converted to float32 */
    float *lora_data;      /* every LoRA A/B matrix (float32), or NULL */
    int64_t lora_rank_max; /* largest r over the adapters (0: none) */
    struct gguf_file *gguf;
    struct st_model *st;
    comi_tokenizer *tok;
};

struct hf_config;
/* Tensor lookup for model_load_custom: the tensor a Hugging Face model would
 * call hf_name, or NULL when absent. */
typedef const comi_tensor *(*model_lookup_fn)(void *ud, const char *hf_name);

/* Builds a model in Hugging Face layout (hyper-parameters from cfg, q/k rows
 * in HF order) whose tensors come from lookup — e.g. one component of a COMI
 * checkpoint (pipeline). The tensors' storage is borrowed and must outlive
 * the model; the model has no tokenizer and lists no tensors. path names the
 * source in messages. No LoRA (call lora_load after). */
comi_status model_load_custom(comi_err *e, const char *path, const struct hf_config *cfg,
                              model_lookup_fn lookup, void *ud, comi_model **out);

/* Loads the LoRA adapter at params->lora_path onto m (see comi.h). */
comi_status lora_load(comi_err *e, comi_model *m, const comi_model_params *params);

/* comi_session_new without the context's limits, for stages that checked
 * their whole need themselves (the pipeline, text mode's model encoder);
 * kv_type: the cache's element type (the context's, ctx->kv_type). */
comi_status model_session_new(comi_err *e, const comi_model *m, int64_t max_tokens,
                              int32_t kv_type, comi_session **out);
/* comi_model_session_bytes for a cache of kv_type (COMI_KV_F32 / F16). */
uint64_t model_session_bytes(const comi_model *m, int64_t max_tokens, int32_t kv_type);

/* Converts n elements of a F32/F16/BF16 vector tensor to float32. */
void model_vector_to_f32(const comi_tensor *t, float *dst);

#endif /* COMI_MODEL_H */
