/*
 * quant_impl.h — private to src/formats/quant*.c: block field readers shared
 * by the scalar references (quant.c) and the SIMD kernels (quant_avx2.c), and
 * the SIMD kernel table that quant.c dispatches to at run time.
 */
#ifndef COMI_QUANT_IMPL_H
#define COMI_QUANT_IMPL_H

#include "formats/quant.h"

#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#define Q8_0_BYTES 34
#define Q8_K_BYTES 292

/* inline conversion: an out-of-line call in the dot kernels' loops costs a
 * vzeroupper and ymm spills per block. F16C where the file is built with it
 * (quant_avx2.c), the portable version elsewhere. */
static inline float ld_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return quant_f16_to_f32_ref(h);
#endif
}

static inline float ld_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K block's 12 packed bytes:
 * the first four pairs sit in the low 6 bits of bytes 0..7, the last four
 * are split between the nibbles of bytes 8..11 and the top 2 bits of 0..7. */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static inline void k4_unpack(const uint8_t *packed, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 8; j++) scale_min_k4(j, packed, &sc[j], &mn[j]);
}

/* Sum over the 8 sub-blocks of min_j * (sum of q8 over sub-block j), from
 * the Q8_K bsums (two per 32-value sub-block). */
static inline int32_t k_min_sum(const uint8_t *mins, const uint8_t *x) {
    int32_t s = 0;
    for (int j = 0; j < 8; j++) {
        int16_t b0, b1;
        memcpy(&b0, x + 260 + 4 * j, 2);
        memcpy(&b1, x + 262 + 4 * j, 2);
        s += mins[j] * (b0 + b1);
    }
    return s;
}

/* The 16 signed 6-bit scales of a Q3_K block (12 packed bytes): low
 * nibbles of bytes 0..7 then high nibbles, with 2 high bits each from
 * bytes 8..11; stored with a +32 bias. */
static inline void q3k_scales(const uint8_t *p, int8_t out[16]) {
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? p[i] & 0xF : p[i - 8] >> 4;
        int hi = (p[8 + i % 4] >> (2 * (i / 4))) & 3;
        out[i] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* Q8_K bsum g (sum of the 16 int8 values g*16..g*16+15) of the block at x. */
static inline int32_t q8k_bsum(const uint8_t *x, int g) {
    int16_t b;
    memcpy(&b, x + 260 + 2 * g, 2);
    return b;
}

/* ---- the SIMD kernel table ------------------------------------------------
 * quant_avx2.c fills it when it is built with AVX2/FMA/F16C (the Makefile's
 * SIMD flags, for that file only); quant.c uses it only when the CPU reports
 * those features (__builtin_cpu_supports), so the library runs on any
 * x86-64 and on other architectures with the scalar references. */

/* one row . converted activations (quant_vec_type layout), n elements */
typedef float (*quant_dot_fn)(const void *row, const void *xq, int64_t n);
/* one block of a quantized type to float32 */
typedef void (*quant_dq_block_fn)(const uint8_t *b, float *y);
/* n elements of a per-element type (F16, BF16) to float32 */
typedef void (*quant_dq_elems_fn)(const uint8_t *s, float *y, int64_t n);

typedef struct quant_simd_kernels {
    const char *name;
    quant_dot_fn dot[COMI_TYPE_COUNT];             /* NULL: no SIMD kernel */
    quant_dq_block_fn dq_block[COMI_TYPE_COUNT];   /* NULL: no SIMD kernel */
    quant_dq_elems_fn dq_f16, dq_bf16;
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    float (*dot_f16_f32)(const uint16_t *a, const float *b, int64_t n);
    /* activations to Q8_0 / Q8_K (quant_vec_quantize), bit-identical */
    void (*quantize_q8_0)(const float *x, uint8_t *y, int64_t n);
    void (*quantize_q8_k)(const float *x, uint8_t *y, int64_t n);
    /* float32 to IEEE half, round to nearest even (quant_f32_to_f16_row) */
    void (*f32_to_f16)(const float *x, uint16_t *y, int64_t n);
} quant_simd_kernels;

/* The AVX2 table, or NULL when quant_avx2.c was built without the flags. */
const quant_simd_kernels *quant_avx2_kernels(void);

#endif /* COMI_QUANT_IMPL_H */
