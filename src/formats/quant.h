/*
 * quant.h — tensor element types: sizes, conversion to float32, and the
 * dot-product kernels the forward pass uses (scalar reference + AVX2).
 * Block layouts follow GGML's (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, ...).
 */
#ifndef COMI_QUANT_H
#define COMI_QUANT_H

#include "formats/tensor.h"

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
/* n floats to halves (quant_f32_to_f16 each; F16C 8 at a time where the CPU
 * has it, the same bits). */
void quant_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);
/* Portable scalar versions of the half conversions (the ones above use F16C
 * when the build has it); both round to nearest even. */
float quant_f16_to_f32_ref(uint16_t h);
uint16_t quant_f32_to_f16_ref(float f);

/* Converts one row of n elements of type t at src to float32. n must be a
 * multiple of the block size (guaranteed by quant_row_bytes at load). Any
 * type with a name above is accepted. src need not be aligned. */
void quant_dequant_row(comi_type t, const void *src, float *dst, int64_t n);
/* The portable scalar version; quant_dequant_row (AVX2 for F16, BF16 and
 * every block type: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K..Q6_K, Q8_K)
 * gives bit-identical results. */
void quant_dequant_row_ref(comi_type t, const void *src, float *dst, int64_t n);

/* ---- forward-pass kernels -------------------------------------------------
 *
 * Prefill (many tokens): dequantize a tile of weight rows to float32 and
 * hand it to BLAS sgemm.
 *
 * Decode (one token): y = W x as one dot product per weight row. x is first
 * converted ONCE into the "vec type" of W's type (what GGML calls
 * vec_dot_type), then every row is dotted with that buffer:
 *
 *   weight type t          quant_vec_type(t)   kernel
 *   F32, F16, BF16         F32 (x as is)       float FMA (F16 via F16C)
 *   Q4_0, Q5_0, Q8_0       Q8_0                int8 dot per 32-block
 *   Q4_1, Q5_1             Q8_0 + block sums   int8 dot per 32-block, plus
 *                                              m_w * d_x * sum(q_x)
 *   Q2_K..Q6_K             Q8_K                int8 dot per 256-block
 *   Q8_1, Q8_K, I8..F64    F32 (x as is)       dequantize block + float dot
 *                                              (both SIMD where the CPU has
 *                                              AVX2; converters write none)
 *
 * For Q4_1 / Q5_1 the Q8_0 blocks are followed by n / 32 float32 values
 * d_x * sum(q_x) (GGML's Q8_1 keeps them in f16; float32 here), so
 * quant_vec_bytes is n / 32 * (34 + 4).
 *
 * Usage (per matrix-vector product):
 *   size_t xb = quant_vec_bytes(t, n);       // scratch, sized once up front
 *   quant_vec_quantize(t, x, xq, n);          // x: (n,) floats
 *   for (r...) y[r] = quant_vec_dot(t, w + r * row_bytes, xq, n);
 * or quant_matvec() for a range of rows. n must be a multiple of
 * quant_block_elems(t) (true for every tensor the loaders accept). Buffers
 * need no particular alignment. Rounding x to Q8_0/Q8_K costs accuracy like
 * it does in llama.cpp (logits NMSE vs F32 ~1e-3 for Q8_0 models).
 *
 * Every kernel has a portable scalar reference (`_ref`); the default
 * functions dispatch at run time to the AVX2/FMA/F16C kernels of
 * quant_avx2.c when that file was built with them and the CPU has them
 * (COMI_SIMD=0 in the environment forces the references), and agree with
 * the reference to float rounding (summation order differs).
 * All functions are thread-safe (no shared state but the one-time CPU
 * check). */

/* "avx2" or "scalar": the kernels the default functions use. */
const char *quant_simd_name(void);
/* true when the AVX2/FMA/F16C kernels are in use (other files' vector
 * loops, e.g. ops.c's exp, follow the same choice). */
bool quant_simd_avx2(void);
/* true when both the dequantization (prefill) and the dot product (decode)
 * of weight type t run SIMD kernels (for Q8_1 and Q8_K weights: SIMD
 * dequantization of a block, then the SIMD float dot). */
bool quant_simd_has(comi_type t);

/* Dequantizes n_rows rows of n_cols elements into dst (n_rows x n_cols,
 * row-major); row r starts at (const uint8_t *)src + r * row_stride. */
void quant_dequant_rows(comi_type t, const void *src, size_t row_stride, float *dst,
                        int64_t n_rows, int64_t n_cols);

/* The type x is converted to for dot products with rows of type t (see the
 * table above): COMI_TYPE_F32, COMI_TYPE_Q8_0 or COMI_TYPE_Q8_K. */
comi_type quant_vec_type(comi_type t);
/* Bytes of the converted x for n elements (n * 4 for F32); 0 if n is not a
 * multiple of the vec type's block or t is unknown. */
size_t quant_vec_bytes(comi_type t, int64_t n);
/* Converts x (n,) into quant_vec_type(t) at xq (quant_vec_bytes(t, n)
 * bytes). Q8_0: per 32 values d = max|x|/127 (stored f16), q = round(x/d).
 * Q8_K: per 256 values d = max|x|/127 (f32), q = round(x/d), plus the 16
 * sums of q over each 16 values (bsums) the K-quant kernels use. */
void quant_vec_quantize(comi_type t, const float *x, void *xq, int64_t n);
/* The scalar reference; quant_vec_quantize gives identical bytes. */
void quant_vec_quantize_ref(comi_type t, const float *x, void *xq, int64_t n);
/* Dot product of one row (n elements of type t at row) with xq from
 * quant_vec_quantize(t, ...). */
float quant_vec_dot(comi_type t, const void *row, const void *xq, int64_t n);
float quant_vec_dot_ref(comi_type t, const void *row, const void *xq, int64_t n);
/* y[r] = quant_vec_dot(t, w + r * row_stride, xq, n) for r in [r0, r1). */
void quant_matvec(comi_type t, const void *w, size_t row_stride, const void *xq, float *y,
                  int64_t r0, int64_t r1, int64_t n);

/* Float dot products used by the F32/F16/BF16 kernels, exposed for
 * attention (q . k over a KV cache): sum_i a[i] * b[i]. */
float quant_dot_f32(const float *a, const float *b, int64_t n);
float quant_dot_f16_f32(const uint16_t *a, const float *b, int64_t n);

/* ---- quantizers (model writing: converter, benchmark model generator) ----
 *
 * Converts n floats (a multiple of the block size) to type t at dst
 * (quant_row_bytes(t, n) bytes). Supported: F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1, Q5_0, Q4_K, Q6_K, Q8_K; false for other types. Quality is round-to-nearest
 * with per-block scales from the block's extremes (not llama.cpp's
 * searched scales, so slightly worse error for the same size). */
bool quant_can_quantize(comi_type t);
bool quant_quantize_row(comi_type t, const float *src, void *dst, int64_t n);

#endif /* COMI_QUANT_H */
