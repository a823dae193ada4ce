/*
 * quant.c — tensor element types (model loading stage): block sizes, IEEE
 * half / bfloat16 conversions, and dequantization of weight rows to float32.
 *
 * Block layouts mirror GGML's ggml-common.h (block_q4_0, block_q4_K, ...)
 * and the dequantize_row_* reference routines in ggml-quants.c; all
 * multi-byte fields are little-endian and read with memcpy because GGUF
 * data is only 32-byte aligned at the tensor start and blocks have odd sizes.
 */
#include "formats/quant.h"

#include "base/common.h"

#include <math.h>
#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

/* ---- type table ------------------------------------------------------------ */

typedef struct type_info {
    const char *name;
    int64_t block_elems;
    size_t block_bytes;
} type_info;

/* Indexed by comi_type; GGML's numbering. Types missing here (IQ*, the
 * removed Q4_2/Q4_3, TQ*) have a zero entry and are rejected at load. */
static const type_info k_types[COMI_TYPE_COUNT] = {
    [COMI_TYPE_F32] = {"F32", 1, 4},
    [COMI_TYPE_F16] = {"F16", 1, 2},
    [COMI_TYPE_Q4_0] = {"Q4_0", 32, 18},  /* f16 d, 16 bytes of nibbles */
    [COMI_TYPE_Q4_1] = {"Q4_1", 32, 20},  /* f16 d, f16 m, 16 bytes of nibbles */
    [COMI_TYPE_Q5_0] = {"Q5_0", 32, 22},  /* f16 d, u32 high bits, 16 bytes */
    [COMI_TYPE_Q5_1] = {"Q5_1", 32, 24},  /* f16 d, f16 m, u32 high bits, 16 */
    [COMI_TYPE_Q8_0] = {"Q8_0", 32, 34},  /* f16 d, 32 int8 */
    [COMI_TYPE_Q8_1] = {"Q8_1", 32, 36},  /* f16 d, f16 s, 32 int8 */
    [COMI_TYPE_Q2_K] = {"Q2_K", 256, 84}, /* 16 scales, 64 qs, f16 d, f16 dmin */
    [COMI_TYPE_Q3_K] = {"Q3_K", 256, 110}, /* 32 hmask, 64 qs, 12 scales, f16 d */
    [COMI_TYPE_Q4_K] = {"Q4_K", 256, 144}, /* f16 d, f16 dmin, 12 scales, 128 qs */
    [COMI_TYPE_Q5_K] = {"Q5_K", 256, 176}, /* d, dmin, 12 scales, 32 qh, 128 qs */
    [COMI_TYPE_Q6_K] = {"Q6_K", 256, 210}, /* 128 ql, 64 qh, 16 int8 scales, d */
    [COMI_TYPE_Q8_K] = {"Q8_K", 256, 292}, /* f32 d, 256 int8, 16 int16 bsums */
    [COMI_TYPE_I8] = {"I8", 1, 1},
    [COMI_TYPE_I16] = {"I16", 1, 2},
    [COMI_TYPE_I32] = {"I32", 1, 4},
    [COMI_TYPE_I64] = {"I64", 1, 8},
    [COMI_TYPE_F64] = {"F64", 1, 8},
    [COMI_TYPE_BF16] = {"BF16", 1, 2},
};

static const type_info *type_get(comi_type t) {
    if ((unsigned)t >= COMI_TYPE_COUNT || k_types[t].block_bytes == 0) return NULL;
    return &k_types[t];
}

const char *quant_type_name(comi_type t) {
    const type_info *ti = type_get(t);
    return ti ? ti->name : NULL;
}

int64_t quant_block_elems(comi_type t) {
    const type_info *ti = type_get(t);
    return ti ? ti->block_elems : 0;
}

size_t quant_block_bytes(comi_type t) {
    const type_info *ti = type_get(t);
    return ti ? ti->block_bytes : 0;
}

bool quant_row_bytes(comi_type t, int64_t n, size_t *out) {
    const type_info *ti = type_get(t);
    if (!ti || n < 0 || n % ti->block_elems != 0) return false;
    return comi_mul_size((size_t)(n / ti->block_elems), ti->block_bytes, out);
}

bool quant_type_from_name(const char *name, comi_type *out) {
    for (int t = 0; t < COMI_TYPE_COUNT; t++) {
        if (k_types[t].name && strcmp(k_types[t].name, name) == 0) {
            *out = (comi_type)t;
            return true;
        }
    }
    return false;
}

/* ---- half / bfloat16 ------------------------------------------------------- */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float quant_f16_to_f32_ref(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) {
        /* inf, or nan made quiet as vcvtph2ps does */
        return bits_f32(sign | 0x7f800000u | (man ? 0x400000u : 0) | (man << 13));
    }
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t quant_f32_to_f16_ref(float f) {
    /* Round to nearest even, as the F16C instruction does with imm 0. */
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t exp = (u >> 23) & 0xff;
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) {
        if (man == 0) return sign | 0x7c00;
        return (uint16_t)(sign | 0x7e00 | (man >> 13)); /* quiet nan, keep payload top */
    }
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00; /* overflow to inf */
    if (e <= 0) {
        /* subnormal half (or zero): value = m * 2^-24 with m = full mantissa
         * shifted right by (14 - e) bits (for e <= 0). */
        if (e < -10) return sign; /* below half of the smallest subnormal */
        uint32_t m = man | 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q); /* q may carry into the exponent: correct */
    }
    uint32_t q = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++; /* carry may reach inf: correct */
    return (uint16_t)(sign | q);
}

float quant_f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return quant_f16_to_f32_ref(h);
#endif
}

uint16_t quant_f32_to_f16(float f) {
#if defined(__F16C__)
    return _cvtss_sh(f, 0);
#else
    return quant_f32_to_f16_ref(f);
#endif
}

float quant_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t quant_f32_to_bf16(float f) {
    /* Round to nearest even; NaNs stay NaN (quiet bit forced) as GGML does. */
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

/* ---- dequantization (reference) ------------------------------------------- */

/* inline conversion: an out-of-line call in the dot kernels' loops costs a
 * vzeroupper and ymm spills per block */
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

/* The 16 signed 6-bit scales of a Q3_K block (12 packed bytes): low
 * nibbles of bytes 0..7 then high nibbles, with 2 high bits each from
 * bytes 8..11; stored with a +32 bias. */
static void q3k_scales(const uint8_t *p, int8_t out[16]) {
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? p[i] & 0xF : p[i - 8] >> 4;
        int hi = (p[8 + i % 4] >> (2 * (i / 4))) & 3;
        out[i] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = ld_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0xF) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    float d = ld_f16(b), m = ld_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0xF) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

static void dq_q5_0(const uint8_t *b, float *y) {
    float d = ld_f16(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (float)(((qs[j] & 0xF) | h0) - 16) * d;
        y[j + 16] = (float)(((qs[j] >> 4) | h1) - 16) * d;
    }
}

static void dq_q5_1(const uint8_t *b, float *y) {
    float d = ld_f16(b), m = ld_f16(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (float)((qs[j] & 0xF) | h0) * d + m;
        y[j + 16] = (float)((qs[j] >> 4) | h1) * d + m;
    }
}

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = ld_f16(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

static void dq_q8_1(const uint8_t *b, float *y) {
    float d = ld_f16(b);
    const int8_t *qs = (const int8_t *)(b + 4);
    for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *q = b + 16;
    float d = ld_f16(b + 80), dmin = ld_f16(b + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128, q += 32) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; half++, is++) {
                float dl = d * (float)(sc[is] & 0xF), ml = dmin * (float)(sc[is] >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
            }
        }
    }
}

static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *q = b + 32;
    float d = ld_f16(b + 108);
    int8_t scales[16];
    q3k_scales(b + 96, scales);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < 256; n += 128, q += 32) {
        for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
            for (int half = 0; half < 2; half++, is++) {
                float dl = d * (float)scales[is];
                for (int l = 16 * half; l < 16 * half + 16; l++)
                    *y++ = dl * (float)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            }
        }
    }
}

static void dq_q4_k(const uint8_t *b, float *y) {
    float d = ld_f16(b), dmin = ld_f16(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    for (int j = 0; j < 8; j += 2, q += 32) {
        uint8_t sc, m;
        scale_min_k4(j, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(j + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
    }
}

static void dq_q5_k(const uint8_t *b, float *y) {
    float d = ld_f16(b), dmin = ld_f16(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 8; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        uint8_t sc, m;
        scale_min_k4(j, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(j + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = ld_f16(b + 208);
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

static void dq_q8_k(const uint8_t *b, float *y) {
    float d = ld_f32(b);
    const int8_t *qs = (const int8_t *)(b + 4);
    for (int j = 0; j < 256; j++) y[j] = d * (float)qs[j];
}

typedef void (*dq_block_fn)(const uint8_t *b, float *y);

static dq_block_fn dq_block(comi_type t) {
    switch (t) {
    case COMI_TYPE_Q4_0: return dq_q4_0;
    case COMI_TYPE_Q4_1: return dq_q4_1;
    case COMI_TYPE_Q5_0: return dq_q5_0;
    case COMI_TYPE_Q5_1: return dq_q5_1;
    case COMI_TYPE_Q8_0: return dq_q8_0;
    case COMI_TYPE_Q8_1: return dq_q8_1;
    case COMI_TYPE_Q2_K: return dq_q2_k;
    case COMI_TYPE_Q3_K: return dq_q3_k;
    case COMI_TYPE_Q4_K: return dq_q4_k;
    case COMI_TYPE_Q5_K: return dq_q5_k;
    case COMI_TYPE_Q6_K: return dq_q6_k;
    case COMI_TYPE_Q8_K: return dq_q8_k;
    default: return NULL;
    }
}

static void dq_f16_row(const uint8_t *s, float *y, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
#endif
    for (; i < n; i++) y[i] = ld_f16(s + 2 * i);
}

static void dq_bf16_row(const uint8_t *s, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        y[i] = quant_bf16_to_f32(h);
    }
}

/* AVX2 block dequantizers for the common weight types: the same float
 * operations in the same order as the scalar ones above (the build uses
 * -std=c11, so no FMA contraction), hence bit-identical results. */
#if defined(__AVX2__) && defined(__F16C__)
/* y[0..32) = d * v for 32 signed bytes v */
static inline void st32_i8(float *y, __m256i v, float d) {
    __m256 dv = _mm256_set1_ps(d);
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), dv));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), dv));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), dv));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), dv));
}

/* y[0..16) = d * v for 16 signed bytes v */
static inline void st16_i8(float *y, __m128i v, float d) {
    __m256 dv = _mm256_set1_ps(d);
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), dv));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8))), dv));
}

/* y[0..32) = d * v - m for 32 unsigned bytes v */
static inline void st32_u8_dm(float *y, __m256i v, float d, float m) {
    __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++)
        _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(_mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]))), mv));
}

static void dq_q8_0_simd(const uint8_t *b, float *y) {
    st32_i8(y, _mm256_loadu_si256((const __m256i *)(b + 2)), ld_f16(b));
}

static void dq_q4_0_simd(const uint8_t *b, float *y) {
    __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    st32_i8(y, _mm256_sub_epi8(v, _mm256_set1_epi8(8)), ld_f16(b));
}

static void dq_q5_0_simd(const uint8_t *b, float *y) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit), _mm256_set1_epi8(16));
    __m128i q = _mm_loadu_si128((const __m128i *)(b + 6));
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    st32_i8(y, _mm256_sub_epi8(_mm256_or_si256(v, hb), _mm256_set1_epi8(16)), ld_f16(b));
}

static void dq_q4_k_simd(const uint8_t *b, float *y) {
    float d = ld_f16(b), dmin = ld_f16(b + 2);
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < 4; j++, y += 64) {
        uint8_t sc, m, sc2, m2;
        scale_min_k4(2 * j, b + 4, &sc, &m);
        scale_min_k4(2 * j + 1, b + 4, &sc2, &m2);
        __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * j));
        st32_u8_dm(y, _mm256_and_si256(q, lo4), d * (float)sc, dmin * (float)m);
        st32_u8_dm(y + 32, _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4), d * (float)sc2,
                   dmin * (float)m2);
    }
}

static void dq_q6_k_simd(const uint8_t *b, float *y) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), lo2 = _mm256_set1_epi8(3), b32 = _mm256_set1_epi8(32);
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = ld_f16(b + 208);
    for (int c = 0; c < 2; c++, y += 128) {
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * c));
        __m256i l0 = _mm256_loadu_si256((const __m256i *)(b + 64 * c));
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(b + 64 * c + 32));
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, lo4), _mm256_slli_epi16(_mm256_and_si256(qh, lo2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, lo4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), lo2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), lo4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), lo2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), lo4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), lo2), 4));
        for (int g = 0; g < 4; g++) {
            __m256i v = _mm256_sub_epi8(q[g], b32);
            int is = 8 * c + 2 * g;
            st16_i8(y + 32 * g, _mm256_castsi256_si128(v), d * (float)sc[is]);
            st16_i8(y + 32 * g + 16, _mm256_extracti128_si256(v, 1), d * (float)sc[is + 1]);
        }
    }
}

static void dq_bf16_simd(const uint8_t *s, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + 2 * i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    dq_bf16_row(s + 2 * i, y + i, n - i);
}
#define QUANT_SIMD_DEQUANT 1
#endif

static void dequant_row(comi_type t, const uint8_t *s, float *dst, int64_t n, bool simd) {
    switch (t) {
    case COMI_TYPE_F32: memcpy(dst, s, (size_t)n * 4); return;
    case COMI_TYPE_F16:
        if (simd) {
            dq_f16_row(s, dst, n);
        } else {
            for (int64_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, s + 2 * i, 2);
                dst[i] = quant_f16_to_f32_ref(h);
            }
        }
        return;
    case COMI_TYPE_BF16:
#ifdef QUANT_SIMD_DEQUANT
        if (simd) {
            dq_bf16_simd(s, dst, n);
            return;
        }
#endif
        dq_bf16_row(s, dst, n);
        return;
    case COMI_TYPE_F64:
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, s + 8 * i, 8);
            dst[i] = (float)v;
        }
        return;
    case COMI_TYPE_I8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(int8_t)s[i];
        return;
    case COMI_TYPE_I16:
        for (int64_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, s + 2 * i, 2);
            dst[i] = (float)v;
        }
        return;
    case COMI_TYPE_I32:
        for (int64_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, s + 4 * i, 4);
            dst[i] = (float)v;
        }
        return;
    case COMI_TYPE_I64:
        for (int64_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, s + 8 * i, 8);
            dst[i] = (float)v;
        }
        return;
    default: break;
    }
    dq_block_fn fn = dq_block(t);
#ifdef QUANT_SIMD_DEQUANT
    switch (simd ? t : COMI_TYPE_COUNT) {
    case COMI_TYPE_Q8_0: fn = dq_q8_0_simd; break;
    case COMI_TYPE_Q4_0: fn = dq_q4_0_simd; break;
    case COMI_TYPE_Q5_0: fn = dq_q5_0_simd; break;
    case COMI_TYPE_Q4_K: fn = dq_q4_k_simd; break;
    case COMI_TYPE_Q6_K: fn = dq_q6_k_simd; break;
    default: break;
    }
#endif
    int64_t qk = quant_block_elems(t);
    size_t bb = quant_block_bytes(t);
    if (!fn || qk <= 0) return; /* unreachable for types the loaders accept */
    for (int64_t i = 0; i < n / qk; i++) fn(s + (size_t)i * bb, dst + i * qk);
}

void quant_dequant_row(comi_type t, const void *src, float *dst, int64_t n) {
    dequant_row(t, src, dst, n, true);
}

void quant_dequant_row_ref(comi_type t, const void *src, float *dst, int64_t n) {
    dequant_row(t, src, dst, n, false);
}

void quant_dequant_rows(comi_type t, const void *src, size_t row_stride, float *dst,
                        int64_t n_rows, int64_t n_cols) {
    const uint8_t *s = src;
    for (int64_t r = 0; r < n_rows; r++)
        quant_dequant_row(t, s + (size_t)r * row_stride, dst + r * n_cols, n_cols);
}

/* ---- activation quantization ----------------------------------------------
 * Q8_0 block (34 bytes): f16 d, int8 q[32].
 * Q8_K block (292 bytes): f32 d, int8 q[256], int16 bsums[16] (sum of q
 * over each 16 consecutive values). Both are GGML's layouts. */

#define Q8_0_BYTES 34
#define Q8_K_BYTES 292

static inline int8_t round_i8(float v) {
    float r = roundf(v);
    return (int8_t)(r > 127.0f ? 127 : (r < -127.0f ? -127 : r));
}

static void quantize_q8_0(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32, y += Q8_0_BYTES) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        uint16_t h = quant_f32_to_f16(d);
        memcpy(y, &h, 2);
        for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)round_i8(x[j] * id);
    }
}

static void quantize_q8_k(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, x += 256, y += Q8_K_BYTES) {
        float amax = 0;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
        memcpy(y, &d, 4);
        int8_t *q = (int8_t *)(y + 4);
        for (int j = 0; j < 256; j++) q[j] = round_i8(x[j] * id);
        for (int g = 0; g < 16; g++) {
            int16_t s = 0;
            for (int j = 0; j < 16; j++) s = (int16_t)(s + q[16 * g + j]);
            memcpy(y + 260 + 2 * g, &s, 2);
        }
    }
}

comi_type quant_vec_type(comi_type t) {
    switch (t) {
    case COMI_TYPE_Q4_0:
    case COMI_TYPE_Q5_0:
    case COMI_TYPE_Q8_0: return COMI_TYPE_Q8_0;
    case COMI_TYPE_Q4_K:
    case COMI_TYPE_Q5_K:
    case COMI_TYPE_Q6_K: return COMI_TYPE_Q8_K;
    default: return COMI_TYPE_F32;
    }
}

size_t quant_vec_bytes(comi_type t, int64_t n) {
    size_t b = 0;
    if (!quant_type_name(t) || n % quant_block_elems(t) != 0) return 0;
    if (!quant_row_bytes(quant_vec_type(t), n, &b)) return 0;
    return b;
}

void quant_vec_quantize(comi_type t, const float *x, void *xq, int64_t n) {
    switch (quant_vec_type(t)) {
    case COMI_TYPE_Q8_0: quantize_q8_0(x, xq, n); return;
    case COMI_TYPE_Q8_K: quantize_q8_k(x, xq, n); return;
    default: memcpy(xq, x, (size_t)n * sizeof(float)); return;
    }
}

/* ---- dot products: scalar reference --------------------------------------- */

static float dot_f32_ref(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static float dot_f16_ref(const uint8_t *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += ld_f16(a + 2 * i) * b[i];
    return s;
}

static float dot_bf16_ref(const uint8_t *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, a + 2 * i, 2);
        s += quant_bf16_to_f32(h) * b[i];
    }
    return s;
}

static float dot_q8_0_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 34, x += Q8_0_BYTES) {
        const int8_t *qw = (const int8_t *)(w + 2), *qx = (const int8_t *)(x + 2);
        int32_t sumi = 0;
        for (int j = 0; j < 32; j++) sumi += qw[j] * qx[j];
        s += (float)sumi * (ld_f16(w) * ld_f16(x));
    }
    return s;
}

static float dot_q4_0_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 18, x += Q8_0_BYTES) {
        const uint8_t *qs = w + 2;
        const int8_t *qx = (const int8_t *)(x + 2);
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += ((qs[j] & 0xF) - 8) * qx[j] + ((qs[j] >> 4) - 8) * qx[j + 16];
        s += (float)sumi * (ld_f16(w) * ld_f16(x));
    }
    return s;
}

static float dot_q5_0_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 22, x += Q8_0_BYTES) {
        uint32_t qh;
        memcpy(&qh, w + 2, 4);
        const uint8_t *qs = w + 6;
        const int8_t *qx = (const int8_t *)(x + 2);
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++) {
            int v0 = ((qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - 16;
            int v1 = ((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
            sumi += v0 * qx[j] + v1 * qx[j + 16];
        }
        s += (float)sumi * (ld_f16(w) * ld_f16(x));
    }
    return s;
}

/* Sum over the 8 sub-blocks of min_j * (sum of q8 over sub-block j), from
 * the Q8_K bsums (two per 32-value sub-block). */
static int32_t k_min_sum(const uint8_t *mins, const uint8_t *x) {
    int32_t s = 0;
    for (int j = 0; j < 8; j++) {
        int16_t b0, b1;
        memcpy(&b0, x + 260 + 4 * j, 2);
        memcpy(&b1, x + 262 + 4 * j, 2);
        s += mins[j] * (b0 + b1);
    }
    return s;
}

static void k4_unpack(const uint8_t *packed, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 8; j++) scale_min_k4(j, packed, &sc[j], &mn[j]);
}

static float dot_q4_k_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 144, x += Q8_K_BYTES) {
        uint8_t sc[8], mn[8];
        k4_unpack(w + 4, sc, mn);
        const uint8_t *qs = w + 16;
        const int8_t *q8 = (const int8_t *)(x + 4);
        int32_t sumi = 0;
        for (int j = 0; j < 4; j++) {
            int32_t lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo += (qs[32 * j + l] & 0xF) * q8[64 * j + l];
                hi += (qs[32 * j + l] >> 4) * q8[64 * j + 32 + l];
            }
            sumi += sc[2 * j] * lo + sc[2 * j + 1] * hi;
        }
        float dx = ld_f32(x);
        s += ld_f16(w) * dx * (float)sumi - ld_f16(w + 2) * dx * (float)k_min_sum(mn, x);
    }
    return s;
}

static float dot_q5_k_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 176, x += Q8_K_BYTES) {
        uint8_t sc[8], mn[8];
        k4_unpack(w + 4, sc, mn);
        const uint8_t *qh = w + 16, *qs = w + 48;
        const int8_t *q8 = (const int8_t *)(x + 4);
        int32_t sumi = 0;
        for (int j = 0; j < 4; j++) {
            int32_t lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                int v0 = (qs[32 * j + l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4);
                int v1 = (qs[32 * j + l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4);
                lo += v0 * q8[64 * j + l];
                hi += v1 * q8[64 * j + 32 + l];
            }
            sumi += sc[2 * j] * lo + sc[2 * j + 1] * hi;
        }
        float dx = ld_f32(x);
        s += ld_f16(w) * dx * (float)sumi - ld_f16(w + 2) * dx * (float)k_min_sum(mn, x);
    }
    return s;
}

/* The 6-bit value of element e (0..255) of a Q6_K block, bias included:
 * element 128c + 32g + l lives in the nibble (g >> 1) of ql[64c + 32(g&1) + l]
 * and in bits 2g..2g+1 of qh[32c + l]. */
static inline int q6k_value(const uint8_t *ql, const uint8_t *qh, int e) {
    int c = e / 128, g = (e % 128) / 32, l = e % 32;
    int lo = ql[64 * c + 32 * (g & 1) + l] >> (4 * (g >> 1)) & 0xF;
    int hi = (qh[32 * c + l] >> (2 * g)) & 3;
    return lo | (hi << 4);
}

static float dot_q6_k_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 210, x += Q8_K_BYTES) {
        const int8_t *sc = (const int8_t *)(w + 192);
        const int8_t *q8 = (const int8_t *)(x + 4);
        int32_t sumi = 0;
        for (int g = 0; g < 16; g++) {
            int32_t part = 0;
            for (int l = 0; l < 16; l++) {
                int e = 16 * g + l;
                part += (q6k_value(w, w + 128, e) - 32) * q8[e];
            }
            sumi += sc[g] * part;
        }
        s += ld_f16(w + 208) * ld_f32(x) * (float)sumi;
    }
    return s;
}

/* Types without an integer kernel: dequantize a block at a time. */
static float dot_generic(comi_type t, const uint8_t *w, const float *x, int64_t n) {
    float buf[256]; /* (block,) one dequantized block; blocks are <= 256 */
    int64_t qk = quant_block_elems(t);
    size_t bb = quant_block_bytes(t);
    float s = 0;
    for (int64_t i = 0; i < n; i += qk, w += bb) {
        quant_dequant_row(t, w, buf, qk);
        for (int64_t j = 0; j < qk; j++) s += buf[j] * x[i + j];
    }
    return s;
}

float quant_vec_dot_ref(comi_type t, const void *row, const void *xq, int64_t n) {
    switch (t) {
    case COMI_TYPE_F32: return dot_f32_ref(row, xq, n);
    case COMI_TYPE_F16: return dot_f16_ref(row, xq, n);
    case COMI_TYPE_BF16: return dot_bf16_ref(row, xq, n);
    case COMI_TYPE_Q8_0: return dot_q8_0_ref(row, xq, n);
    case COMI_TYPE_Q4_0: return dot_q4_0_ref(row, xq, n);
    case COMI_TYPE_Q5_0: return dot_q5_0_ref(row, xq, n);
    case COMI_TYPE_Q4_K: return dot_q4_k_ref(row, xq, n);
    case COMI_TYPE_Q5_K: return dot_q5_k_ref(row, xq, n);
    case COMI_TYPE_Q6_K: return dot_q6_k_ref(row, xq, n);
    default: return dot_generic(t, row, xq, n);
    }
}

/* ---- dot products: AVX2 / FMA / F16C --------------------------------------
 * Same arithmetic as the references above: integer block sums are exact,
 * only the order of the float accumulation differs. */

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define QUANT_SIMD 1

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int32_t hsum8_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* int8 a . int8 b as 8 int32 partial sums. maddubs needs one unsigned
 * operand, so |a| is paired with b carrying a's sign; exact as long as b
 * has no -128 (activations are clamped to [-127, 127]). */
static inline __m256i mul_sum_i8(__m256i a, __m256i b) {
    __m256i dot = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(dot, _mm256_set1_epi16(1));
}

static float dot_f32_simd(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
           s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline __m256 ld8_f16(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 ld8_bf16(const uint8_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

#define DOT_HALF_SIMD(NAME, LOAD8, REF)                                                      \
    static float NAME(const uint8_t *a, const float *b, int64_t n) {                         \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), \
               s3 = _mm256_setzero_ps();                                                     \
        int64_t i = 0;                                                                       \
        for (; i + 32 <= n; i += 32) {                                                       \
            s0 = _mm256_fmadd_ps(LOAD8(a + 2 * i), _mm256_loadu_ps(b + i), s0);              \
            s1 = _mm256_fmadd_ps(LOAD8(a + 2 * i + 16), _mm256_loadu_ps(b + i + 8), s1);     \
            s2 = _mm256_fmadd_ps(LOAD8(a + 2 * i + 32), _mm256_loadu_ps(b + i + 16), s2);    \
            s3 = _mm256_fmadd_ps(LOAD8(a + 2 * i + 48), _mm256_loadu_ps(b + i + 24), s3);    \
        }                                                                                    \
        for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(LOAD8(a + 2 * i), _mm256_loadu_ps(b + i), s0); \
        float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));        \
        return s + REF(a + 2 * i, b + i, n - i);                                             \
    }

DOT_HALF_SIMD(dot_f16_simd, ld8_f16, dot_f16_ref)
DOT_HALF_SIMD(dot_bf16_simd, ld8_bf16, dot_bf16_ref)

static float dot_q8_0_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, w += 34, x += Q8_0_BYTES) {
        __m256i qw = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        __m256 p = _mm256_cvtepi32_ps(mul_sum_i8(qw, qx));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(w) * ld_f16(x)), p, acc);
    }
    return hsum8(acc);
}

static float dot_q4_0_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, w += 18, x += Q8_0_BYTES) {
        __m128i q = _mm_loadu_si128((const __m128i *)(w + 2));
        /* low nibbles are values 0..15, high nibbles 16..31 */
        __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
        v = _mm256_sub_epi8(_mm256_and_si256(v, lo4), eight);
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        __m256 p = _mm256_cvtepi32_ps(mul_sum_i8(v, qx));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(w) * ld_f16(x)), p, acc);
    }
    return hsum8(acc);
}

static float dot_q5_0_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    /* value k (0..31) takes bit k of qh: spread byte k / 8 of qh to lane
     * k, then test bit k % 8 */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256 acc = _mm256_setzero_ps();
    const __m256i high = _mm256_set1_epi8((char)0xF0);
    for (int64_t i = 0; i < n / 32; i++, w += 22, x += Q8_0_BYTES) {
        uint32_t qh;
        memcpy(&qh, w + 2, 4);
        __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
        hb = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
        __m128i q = _mm_loadu_si128((const __m128i *)(w + 6));
        __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo4);
        /* (nibble | bit << 4) - 16 as int8: the nibble itself where the bit
         * is set, else the nibble with 0xF0 above it (nibble - 16) */
        v = _mm256_or_si256(v, _mm256_andnot_si256(hb, high));
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        __m256 p = _mm256_cvtepi32_ps(mul_sum_i8(v, qx));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(w) * ld_f16(x)), p, acc);
    }
    return hsum8(acc);
}

static float dot_q4_k_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 144, x += Q8_K_BYTES) {
        uint8_t sc[8], mn[8];
        k4_unpack(w + 4, sc, mn);
        const uint8_t *qs = w + 16, *q8 = x + 4;
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_and_si256(q4, lo4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), lo4);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
            __m256i phi =
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
            plo = _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * j]));
            phi = _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * j + 1]));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(plo, phi));
        }
        float dx = ld_f32(x);
        s += ld_f16(w) * dx * (float)hsum8_i32(acc) - ld_f16(w + 2) * dx * (float)k_min_sum(mn, x);
    }
    return s;
}

static float dot_q5_k_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 176, x += Q8_K_BYTES) {
        uint8_t sc[8], mn[8];
        k4_unpack(w + 4, sc, mn);
        const uint8_t *qs = w + 48, *q8 = x + 4;
        __m256i qh = _mm256_loadu_si256((const __m256i *)(w + 16));
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            __m256i m0 = _mm256_set1_epi8((char)(1 << (2 * j)));
            __m256i m1 = _mm256_set1_epi8((char)(1 << (2 * j + 1)));
            /* bit 2j / 2j+1 of qh[l] is the fifth bit of value l / 32 + l */
            __m256i h0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m0), m0), sixteen);
            __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m1), m1), sixteen);
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q4, lo4), h0);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4, 4), lo4), h1);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
            __m256i phi =
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
            plo = _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * j]));
            phi = _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * j + 1]));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(plo, phi));
        }
        float dx = ld_f32(x);
        s += ld_f16(w) * dx * (float)hsum8_i32(acc) - ld_f16(w + 2) * dx * (float)k_min_sum(mn, x);
    }
    return s;
}

static float dot_q6_k_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), lo2 = _mm256_set1_epi8(3);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 210, x += Q8_K_BYTES) {
        const uint8_t *ql = w, *qhp = w + 128, *q8 = x + 4;
        const int8_t *sc = (const int8_t *)(w + 192);
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            __m256i qh = _mm256_loadu_si256((const __m256i *)(qhp + 32 * c));
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * c));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * c + 32));
            /* unsigned 6-bit values (bias 32 kept) of the four 32-groups */
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, lo4),
                                   _mm256_slli_epi16(_mm256_and_si256(qh, lo2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, lo4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), lo2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), lo4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), lo2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), lo4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), lo2), 4));
            for (int g = 0; g < 4; g++) {
                int is = 8 * c + 2 * g; /* scale of the group's first 16 values */
                __m256i p = _mm256_maddubs_epi16(
                    q[g], _mm256_loadu_si256((const __m256i *)(q8 + 128 * c + 32 * g)));
                __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[is + 1]), _mm_set1_epi16(sc[is]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scv));
            }
        }
        /* remove the +32 bias: sum_g sc[g] * 32 * (sum of q8 over group g) */
        int32_t bias = 0;
        for (int g = 0; g < 16; g++) {
            int16_t b;
            memcpy(&b, x + 260 + 2 * g, 2);
            bias += sc[g] * b;
        }
        s += ld_f16(w + 208) * ld_f32(x) * (float)(hsum8_i32(acc) - 32 * bias);
    }
    return s;
}
#endif /* AVX2 */

float quant_vec_dot(comi_type t, const void *row, const void *xq, int64_t n) {
#ifdef QUANT_SIMD
    switch (t) {
    case COMI_TYPE_F32: return dot_f32_simd(row, xq, n);
    case COMI_TYPE_F16: return dot_f16_simd(row, xq, n);
    case COMI_TYPE_BF16: return dot_bf16_simd(row, xq, n);
    case COMI_TYPE_Q8_0: return dot_q8_0_simd(row, xq, n);
    case COMI_TYPE_Q4_0: return dot_q4_0_simd(row, xq, n);
    case COMI_TYPE_Q5_0: return dot_q5_0_simd(row, xq, n);
    case COMI_TYPE_Q4_K: return dot_q4_k_simd(row, xq, n);
    case COMI_TYPE_Q5_K: return dot_q5_k_simd(row, xq, n);
    case COMI_TYPE_Q6_K: return dot_q6_k_simd(row, xq, n);
    default: break;
    }
#endif
    return quant_vec_dot_ref(t, row, xq, n);
}

void quant_matvec(comi_type t, const void *w, size_t row_stride, const void *xq, float *y,
                  int64_t r0, int64_t r1, int64_t n) {
    const uint8_t *base = w;
    for (int64_t r = r0; r < r1; r++) y[r] = quant_vec_dot(t, base + (size_t)r * row_stride, xq, n);
}

float quant_dot_f32(const float *a, const float *b, int64_t n) {
#ifdef QUANT_SIMD
    return dot_f32_simd(a, b, n);
#else
    return dot_f32_ref(a, b, n);
#endif
}

float quant_dot_f16_f32(const uint16_t *a, const float *b, int64_t n) {
#ifdef QUANT_SIMD
    return dot_f16_simd((const uint8_t *)a, b, n);
#else
    return dot_f16_ref((const uint8_t *)a, b, n);
#endif
}

/* ---- quantizers -----------------------------------------------------------
 * Round-to-nearest with block scales taken from the block's extremes. The
 * stored f16 scales are read back before the values are rounded, so the
 * values are rounded against the scale the dequantizer will use. */

static void put_f16(uint8_t *p, float v) {
    uint16_t h = quant_f32_to_f16(v);
    memcpy(p, &h, 2);
}

static inline int clamp_int(float v, int lo, int hi) {
    float r = roundf(v);
    return r < (float)lo ? lo : (r > (float)hi ? hi : (int)r);
}

static void quantize_q4_0(const float *x, uint8_t *y, int64_t n) {
    /* GGML's rule: the value of largest magnitude maps to -8 exactly */
    for (int64_t i = 0; i < n / 32; i++, x += 32, y += 18) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        put_f16(y, max / -8.0f);
        float d = ld_f16(y), id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < 16; j++) {
            int a = clamp_int(x[j] * id + 8.0f, 0, 15), b = clamp_int(x[j + 16] * id + 8.0f, 0, 15);
            y[2 + j] = (uint8_t)(a | (b << 4));
        }
    }
}

static void quantize_q5_0(const float *x, uint8_t *y, int64_t n) {
    /* GGML's rule: the value of largest magnitude maps to -16 exactly */
    for (int64_t i = 0; i < n / 32; i++, x += 32, y += 22) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        put_f16(y, max / -16.0f);
        float d = ld_f16(y), id = d != 0 ? 1.0f / d : 0.0f;
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int a = clamp_int(x[j] * id + 16.0f, 0, 31), b = clamp_int(x[j + 16] * id + 16.0f, 0, 31);
            y[6 + j] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
            qh |= (uint32_t)(a >> 4) << j;
            qh |= (uint32_t)(b >> 4) << (j + 16);
        }
        memcpy(y + 2, &qh, 4);
    }
}

static void quantize_q8_0_w(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32, y += 34) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        put_f16(y, amax / 127.0f);
        float d = ld_f16(y), id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)(int8_t)clamp_int(x[j] * id, -127, 127);
    }
}

static void quantize_q4_k(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, x += 256, y += 144) {
        /* per 32-value sub-block: value = scale * q - min, q in 0..15 */
        float scale[8], mins[8], max_scale = 0, max_min = 0;
        for (int s = 0; s < 8; s++) {
            float lo = 0, hi = 0; /* min clamped to <= 0 so the offset is >= 0 */
            for (int l = 0; l < 32; l++) {
                lo = fminf(lo, x[32 * s + l]);
                hi = fmaxf(hi, x[32 * s + l]);
            }
            scale[s] = (hi - lo) / 15.0f;
            mins[s] = -lo;
            max_scale = fmaxf(max_scale, scale[s]);
            max_min = fmaxf(max_min, mins[s]);
        }
        put_f16(y, max_scale / 63.0f);
        put_f16(y + 2, max_min / 63.0f);
        float d = ld_f16(y), dmin = ld_f16(y + 2);
        uint8_t sc[8], mn[8];
        for (int s = 0; s < 8; s++) {
            sc[s] = (uint8_t)(d > 0 ? clamp_int(scale[s] / d, 0, 63) : 0);
            mn[s] = (uint8_t)(dmin > 0 ? clamp_int(mins[s] / dmin, 0, 63) : 0);
        }
        uint8_t *packed = y + 4;
        for (int j = 0; j < 4; j++) {
            packed[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
            packed[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
            packed[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
        }
        uint8_t q[256];
        for (int s = 0; s < 8; s++) {
            float ds = d * (float)sc[s], ms = dmin * (float)mn[s], ids = ds > 0 ? 1.0f / ds : 0.0f;
            for (int l = 0; l < 32; l++)
                q[32 * s + l] = (uint8_t)clamp_int((x[32 * s + l] + ms) * ids, 0, 15);
        }
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++)
                y[16 + 32 * j + l] = (uint8_t)(q[64 * j + l] | (q[64 * j + 32 + l] << 4));
    }
}

static void quantize_q6_k(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, x += 256, y += 210) {
        /* per 16 values: value = scale * q, q in -32..31; the value of
         * largest magnitude maps to -32 (as GGML), scales then to int8 */
        float scale[16], smax = 0;
        for (int g = 0; g < 16; g++) {
            float amax = 0, max = 0;
            for (int l = 0; l < 16; l++)
                if (fabsf(x[16 * g + l]) > amax) {
                    amax = fabsf(x[16 * g + l]);
                    max = x[16 * g + l];
                }
            scale[g] = max / -32.0f;
            smax = fmaxf(smax, fabsf(scale[g]));
        }
        put_f16(y + 208, smax / 127.0f);
        float d = ld_f16(y + 208);
        int8_t *sc = (int8_t *)(y + 192);
        uint8_t *ql = y, *qh = y + 128;
        memset(y, 0, 192);
        for (int g = 0; g < 16; g++) {
            sc[g] = (int8_t)(d > 0 ? clamp_int(scale[g] / d, -128, 127) : 0);
            float ds = d * (float)sc[g], ids = ds != 0 ? 1.0f / ds : 0.0f;
            for (int l = 0; l < 16; l++) {
                int e = 16 * g + l;
                int q = clamp_int(x[e] * ids, -32, 31) + 32;
                int c = e / 128, grp = (e % 128) / 32, ll = e % 32;
                ql[64 * c + 32 * (grp & 1) + ll] |= (uint8_t)((q & 0xF) << (4 * (grp >> 1)));
                qh[32 * c + ll] |= (uint8_t)((q >> 4) << (2 * grp));
            }
        }
    }
}

bool quant_can_quantize(comi_type t) {
    switch (t) {
    case COMI_TYPE_F32:
    case COMI_TYPE_F16:
    case COMI_TYPE_BF16:
    case COMI_TYPE_Q8_0:
    case COMI_TYPE_Q4_0:
    case COMI_TYPE_Q5_0:
    case COMI_TYPE_Q4_K:
    case COMI_TYPE_Q6_K:
    case COMI_TYPE_Q8_K: return true;
    default: return false;
    }
}

bool quant_quantize_row(comi_type t, const float *src, void *dst, int64_t n) {
    uint8_t *y = dst;
    if (!quant_can_quantize(t) || n < 0 || n % quant_block_elems(t) != 0) return false;
    switch (t) {
    case COMI_TYPE_F32: memcpy(y, src, (size_t)n * 4); break;
    case COMI_TYPE_F16:
        for (int64_t i = 0; i < n; i++) put_f16(y + 2 * i, src[i]);
        break;
    case COMI_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = quant_f32_to_bf16(src[i]);
            memcpy(y + 2 * i, &h, 2);
        }
        break;
    case COMI_TYPE_Q8_0: quantize_q8_0_w(src, y, n); break;
    case COMI_TYPE_Q4_0: quantize_q4_0(src, y, n); break;
    case COMI_TYPE_Q5_0: quantize_q5_0(src, y, n); break;
    case COMI_TYPE_Q4_K: quantize_q4_k(src, y, n); break;
    case COMI_TYPE_Q6_K: quantize_q6_k(src, y, n); break;
    case COMI_TYPE_Q8_K: quantize_q8_k(src, y, n); break;
    default: return false;
    }
    return true;
}
