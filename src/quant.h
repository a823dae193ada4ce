/*
 * quant.h — tensor element types: sizes, conversion to float32, and the
 * dot-product kernels the forward pass uses (scalar reference + AVX2).
 * Block layouts follow GGML's (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, ...).
 */
#ifndef COMI_QUANT_H
#define COMI_QUANT_H

#include "tensor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Name as GGML spells it ("F32", "Q4_K", ...), or NULL for unknown types. */
const char *quant_type_name(comi_type t);
/* Elements per block (1 for F32/F16/BF16) and bytes per block; 0 if the
 * type is unknown or not supported for weights by this build. */
int64_t quant_block_elems(comi_type t);
size_t quant_block_bytes(comi_type t);
/* Bytes of a row of n elements; false if n is not a multiple of the block
 * size, the type is unsupported, or the size overflows. */
bool quant_row_bytes(comi_type t, int64_t n, size_t *out);
/* The type whose quant_type_name is name; false if none. */
bool quant_type_from_name(const char *name, comi_type *out);

/* IEEE half and bfloat16 conversions. */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);
/* Portable scalar versions of the half conversions (the ones above use F16C
 * when the build has it); both round to nearest even. */
float quant_f16_to_f32_ref(uint16_t h);
uint16_t quant_f32_to_f16_ref(float f);

/* Converts one row of n elements of type t at src to float32. n must be a
 * multiple of the block size (guaranteed by quant_row_bytes at load). */
void quant_dequant_row(comi_type t, const void *src, float *dst, int64_t n);

#endif /* COMI_QUANT_H */
