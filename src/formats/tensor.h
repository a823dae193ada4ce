/*
 * tensor.h — the tensor descriptor shared by the GGUF and safetensors
 * readers and the model loader. Type numbers are GGML's, so GGUF files map
 * one to one.
 */
#ifndef COMI_TENSOR_H
#define COMI_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum comi_type {
    COMI_TYPE_F32 = 0,
    COMI_TYPE_F16 = 1,
    COMI_TYPE_Q4_0 = 2,
    COMI_TYPE_Q4_1 = 3,
    COMI_TYPE_Q5_0 = 6,
    COMI_TYPE_Q5_1 = 7,
    COMI_TYPE_Q8_0 = 8,
    COMI_TYPE_Q8_1 = 9,
    COMI_TYPE_Q2_K = 10,
    COMI_TYPE_Q3_K = 11,
    COMI_TYPE_Q4_K = 12,
    COMI_TYPE_Q5_K = 13,
    COMI_TYPE_Q6_K = 14,
    COMI_TYPE_Q8_K = 15,
    COMI_TYPE_I8 = 24,
    COMI_TYPE_I16 = 25,
    COMI_TYPE_I32 = 26,
    COMI_TYPE_I64 = 27,
    COMI_TYPE_F64 = 28,
    COMI_TYPE_BF16 = 30,
    COMI_TYPE_COUNT = 40 /* upper bound for tables indexed by type */
} comi_type;

#define COMI_MAX_DIMS 4

/* A tensor whose bytes live elsewhere (usually an mmap of the model file).
 * ne[0] is the contiguous dimension: a weight matrix that PyTorch calls
 * [out_features, in_features] has ne[0] = in_features, ne[1] = out_features,
 * and row r (one output feature) starts at byte r * row_bytes. Unused
 * dimensions are 1. */
typedef struct comi_tensor {
    const char *name; /* NUL-terminated, owned by the file object */
    comi_type type;
    int32_t n_dims;
    int64_t ne[COMI_MAX_DIMS];
    const void *data; /* points into the mapping; never written */
    size_t nbytes;    /* exact size of the data in bytes */
} comi_tensor;

#endif /* COMI_TENSOR_H */
