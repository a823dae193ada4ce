/*
 * hfconfig.h — reader for a Hugging Face `config.json` (the model
 * hyper-parameters next to the safetensors weights), for the decoder
 * architectures comi runs (llama, qwen2, qwen3 and look-alikes).
 *
 * Required: model_type (string), hidden_size, intermediate_size,
 * num_hidden_layers, num_attention_heads, vocab_size (positive integers),
 * rms_norm_eps (positive number). Optional, with transformers' defaults:
 * num_key_value_heads (= num_attention_heads), head_dim (= hidden_size /
 * num_attention_heads; null counts as absent), rope_theta (10000; also read
 * from rope_parameters.rope_theta as newer transformers writes it),
 * tie_word_embeddings (false), attention_bias (false; Qwen2 has q/k/v
 * biases regardless of this flag, so loaders should look for the tensors),
 * max_position_embeddings (0 = not given), bos_token_id / eos_token_id
 * (integer, list of integers, or null; -1 / none when absent), torch_dtype
 * (or dtype), hidden_act, architectures[0], rope_scaling (null or an object
 * with "type" or "rope_type"; recorded, checked by hf_config_check_rope).
 *
 * Any field of the wrong JSON type, a non-positive size, a head count that
 * does not divide, or a missing required field fails with COMI_ERR_FORMAT
 * and a message naming the file and the field.
 */
#ifndef COMI_HFCONFIG_H
#define COMI_HFCONFIG_H

#include "base/common.h"

#include <stdbool.h>
#include <stdint.h>

#define HF_MAX_EOS 8

typedef enum hf_rope_kind {
    HF_ROPE_NONE = 0,   /* rope_scaling absent/null or type "default" */
    HF_ROPE_LINEAR = 1, /* positions divided by factor */
    HF_ROPE_DYNAMIC = 2,
    HF_ROPE_YARN = 3,
    HF_ROPE_LLAMA3 = 4,
    HF_ROPE_LONGROPE = 5,
    HF_ROPE_OTHER = 6 /* a type string this reader does not know */
} hf_rope_kind;

typedef struct hf_rope_scaling {
    hf_rope_kind kind;
    char type[32];                            /* the type string as written ("" when none) */
    double factor;                            /* 1 when absent */
    double low_freq_factor;                   /* llama3: 1 when absent */
    double high_freq_factor;                  /* llama3: 4 when absent */
    int64_t original_max_position_embeddings; /* 0 when absent */
} hf_rope_scaling;

typedef struct hf_config {
    char model_type[32];   /* "llama", "qwen2", "qwen3", ... */
    char architecture[64]; /* architectures[0], "" when absent */
    char torch_dtype[16];  /* "float32", "bfloat16", ...; "" when absent */
    char hidden_act[16];   /* "silu", ...; "" when absent */
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;
    int64_t head_dim;
    int64_t vocab_size;
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    bool tie_word_embeddings;
    bool attention_bias;
    int64_t bos_token_id;              /* -1 when absent */
    int64_t eos_token_ids[HF_MAX_EOS]; /* the first n_eos ids */
    int32_t n_eos;
    hf_rope_scaling rope_scaling;
} hf_config;

/* Parses config.json text (len bytes; `name` is used in messages). */
comi_status hf_config_parse(comi_err *e, const char *name, const char *json, size_t len,
                            hf_config *out);

/* Reads `path`, or `path`/config.json when path is a directory. */
comi_status hf_config_load(comi_err *e, const char *path, hf_config *out);

/* COMI_ERR_UNSUPPORTED naming the rope_scaling type unless it is NONE or
 * one of the kinds set in `supported` (bit (1u << kind)). */
comi_status hf_config_check_rope(comi_err *e, const hf_config *c, unsigned supported);

#endif /* COMI_HFCONFIG_H */
