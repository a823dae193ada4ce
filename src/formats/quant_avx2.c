/*
 * quant_avx2.c — AVX2 / FMA / F16C kernels for quant.c: block
 * dequantization (prefill tiles) and dot products of weight rows with
 * converted activations (decode). The Makefile builds this file alone with
 * the SIMD flags; quant.c calls these only when the CPU has the features
 * (see quant_impl.h), so the rest of the library stays plain x86-64.
 *
 * Every kernel here has a scalar reference in quant.c (same layouts, same
 * integer block sums, which are exact; only the order of the float
 * accumulation differs) and tests/test_quant.c compares each pair.
 * Dequantizers do the same float operations in the same order as the
 * references (-std=c11: no FMA contraction), hence bit-identical results.
 */
#include "formats/quant_impl.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

/* ---- dequantization ------------------------------------------------------- */

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
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        y[i] = quant_bf16_to_f32(h);
    }
}

/* y[0..32) = d * v + m for 32 unsigned bytes v (Q4_1 / Q5_1) */
static inline void st32_u8_dpm(float *y, __m256i v, float d, float m) {
    __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++)
        _mm256_storeu_ps(y + 8 * k, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k])), dv), mv));
}

static void dq_q4_1_simd(const uint8_t *b, float *y) {
    __m128i q = _mm_loadu_si128((const __m128i *)(b + 4));
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    st32_u8_dpm(y, v, ld_f16(b), ld_f16(b + 2));
}

/* the 32 fifth bits of a Q5_0 / Q5_1 block as 0 or 16 per byte */
static inline __m256i q5_high_bits(const uint8_t *qhp) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    uint32_t qh;
    memcpy(&qh, qhp, 4);
    __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit), _mm256_set1_epi8(16));
}

static void dq_q5_1_simd(const uint8_t *b, float *y) {
    __m128i q = _mm_loadu_si128((const __m128i *)(b + 8));
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    st32_u8_dpm(y, _mm256_or_si256(v, q5_high_bits(b + 4)), ld_f16(b), ld_f16(b + 2));
}

/* y[0..16) = d * v - m for 16 unsigned bytes v (Q2_K) */
static inline void st16_u8_dm(float *y, __m128i v, float d, float m) {
    __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(dv, lo), mv));
    _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(dv, hi), mv));
}

/* Q2_K: per 32 bytes of qs (c) and bit pair j, 32 values in order; the
 * first 16 take group 8c + 2j, the next 16 group 8c + 2j + 1 */
static void dq_q2_k_simd(const uint8_t *b, float *y) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const uint8_t *sc = b;
    float d = ld_f16(b + 80), dmin = ld_f16(b + 82);
    for (int c = 0; c < 2; c++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
        for (int j = 0; j < 4; j++, y += 32) {
            __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
            int g = 8 * c + 2 * j;
            st16_u8_dm(y, _mm256_castsi256_si128(v), d * (float)(sc[g] & 0xF),
                       dmin * (float)(sc[g] >> 4));
            st16_u8_dm(y + 16, _mm256_extracti128_si256(v, 1), d * (float)(sc[g + 1] & 0xF),
                       dmin * (float)(sc[g + 1] >> 4));
        }
    }
}

/* Q3_K: value = (bits 2j..2j+1 of qs) | (bit 4c + j of hmask) << 2, minus 4 */
static void dq_q3_k_simd(const uint8_t *b, float *y) {
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1), four = _mm256_set1_epi8(4);
    int8_t sc[16];
    q3k_scales(b + 96, sc);
    float d = ld_f16(b + 108);
    __m256i hm = _mm256_loadu_si256((const __m256i *)b);
    for (int c = 0; c < 2; c++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * c));
        for (int j = 0; j < 4; j++, y += 32) {
            __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
            __m256i hb = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * c + j)), one);
            __m256i v = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hb, 2)), four);
            int g = 8 * c + 2 * j;
            st16_i8(y, _mm256_castsi256_si128(v), d * (float)sc[g]);
            st16_i8(y + 16, _mm256_extracti128_si256(v, 1), d * (float)sc[g + 1]);
        }
    }
}

/* Q5_K: Q4_K's nibbles plus a fifth bit from qh (bit 2j / 2j + 1 of qh[l]) */
static void dq_q5_k_simd(const uint8_t *b, float *y) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    float d = ld_f16(b), dmin = ld_f16(b + 2);
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
    for (int j = 0; j < 4; j++, y += 64) {
        uint8_t sc, m, sc2, m2;
        scale_min_k4(2 * j, b + 4, &sc, &m);
        scale_min_k4(2 * j + 1, b + 4, &sc2, &m2);
        __m256i m0 = _mm256_set1_epi8((char)(1 << (2 * j)));
        __m256i m1 = _mm256_set1_epi8((char)(2 << (2 * j)));
        __m256i h0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m0), m0), sixteen);
        __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m1), m1), sixteen);
        __m256i q = _mm256_loadu_si256((const __m256i *)(b + 48 + 32 * j));
        st32_u8_dm(y, _mm256_or_si256(_mm256_and_si256(q, lo4), h0), d * (float)sc,
                   dmin * (float)m);
        st32_u8_dm(y + 32, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), lo4), h1),
                   d * (float)sc2, dmin * (float)m2);
    }
}

static void dq_q8_1_simd(const uint8_t *b, float *y) {
    st32_i8(y, _mm256_loadu_si256((const __m256i *)(b + 4)), ld_f16(b));
}

static void dq_q8_k_simd(const uint8_t *b, float *y) {
    float d = ld_f32(b);
    for (int k = 0; k < 8; k++)
        st32_i8(y + 32 * k, _mm256_loadu_si256((const __m256i *)(b + 4 + 32 * k)), d);
}

static void dq_f16_simd(const uint8_t *s, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
    for (; i < n; i++) y[i] = ld_f16(s + 2 * i);
}

/* ---- dot products --------------------------------------------------------- */

static float tail_f16(const uint8_t *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += ld_f16(a + 2 * i) * b[i];
    return s;
}

static float tail_bf16(const uint8_t *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, a + 2 * i, 2);
        s += quant_bf16_to_f32(h) * b[i];
    }
    return s;
}


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

DOT_HALF_SIMD(dot_f16_simd, ld8_f16, tail_f16)
DOT_HALF_SIMD(dot_bf16_simd, ld8_bf16, tail_bf16)

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

/* The 8 scales and 8 mins of a Q4_K / Q5_K block (12 packed bytes, see
 * scale_min_k4) as int16: scales in the low 128 bits, mins in the high. */
static inline __m256i k4_scales_mins(const uint8_t *packed) {
    uint32_t u[3];
    memcpy(u, packed, 12);
    const uint32_t m6 = 0x3f3f3f3fu, m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    uint32_t sc_lo = u[0] & m6, sc_hi = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
    uint32_t mn_lo = u[1] & m6, mn_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
    return _mm256_cvtepu8_epi16(_mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo));
}

/* Sum of the Q8_K activations over each 32-value sub-block (8 int16) from
 * the 16 bsums of 16 values each. */
static inline __m128i k_sub_sums(const uint8_t *x) {
    __m256i bs = _mm256_loadu_si256((const __m256i *)(x + 260));
    return _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
}

/* The start of a Q4_K / Q5_K block's dot: adds the mins' term, dmin * dx *
 * sum_j min_j * (sum of q8 over sub-block j), to *accm and returns the 8
 * scales as int16 in both 128-bit lanes. */
static inline __m256i k4_block_start(const uint8_t *w, const uint8_t *x, float dx, __m128 *accm) {
    __m256i sm = k4_scales_mins(w + 4);
    __m128i pm = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), k_sub_sums(x));
    *accm = _mm_fmadd_ps(_mm_set1_ps(ld_f16(w + 2) * dx), _mm_cvtepi32_ps(pm), *accm);
    __m128i sc128 = _mm256_castsi256_si128(sm);
    return _mm256_set_m128i(sc128, sc128);
}

static inline float hsum4(__m128 v) {
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
}

/* Broadcasts int16 element k of each 128-bit lane. */
static inline __m256i bcast_i16(__m256i v, int k) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)((2 * k + 1) << 8 | 2 * k)));
}

static float dot_q4_k_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, w += 144, x += Q8_K_BYTES) {
        float dx = ld_f32(x);
        __m256i sc = k4_block_start(w, x, dx, &accm);
        const uint8_t *qs = w + 16, *q8 = x + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_and_si256(q4, lo4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), lo4);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
            __m256i phi =
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
            plo = _mm256_madd_epi16(plo, bcast_i16(sc, 2 * j));
            phi = _mm256_madd_epi16(phi, bcast_i16(sc, 2 * j + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(w) * dx), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc) - hsum4(accm);
}

static float dot_q5_k_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, w += 176, x += Q8_K_BYTES) {
        float dx = ld_f32(x);
        __m256i sc = k4_block_start(w, x, dx, &accm);
        const uint8_t *qs = w + 48, *q8 = x + 4;
        __m256i qh = _mm256_loadu_si256((const __m256i *)(w + 16));
        __m256i sumi = _mm256_setzero_si256();
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
            plo = _mm256_madd_epi16(plo, bcast_i16(sc, 2 * j));
            phi = _mm256_madd_epi16(phi, bcast_i16(sc, 2 * j + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(w) * dx), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc) - hsum4(accm);
}

static float dot_q6_k_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), lo2 = _mm256_set1_epi8(3);
    __m256 accf = _mm256_setzero_ps();
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
        /* remove the +32 bias: sum_g sc[g] * 32 * (sum of q8 over group g);
         * lanes need not match, only the total counts */
        __m256i bias = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc)),
                                         _mm256_loadu_si256((const __m256i *)(x + 260)));
        acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(bias, 5));
        accf = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(w + 208) * ld_f32(x)), _mm256_cvtepi32_ps(acc), accf);
    }
    return hsum8(accf);
}

/* Q4_1 / Q5_1 against Q8_0 activations plus their block sums (quant.c's
 * quant_vec_quantize appends d_x * sum(q_x) per block as float32):
 * sum_i (d_w q_w + m_w) d_x q_x = d_w d_x sum(q_w q_x) + m_w (d_x sum q_x).
 * The weight values are unsigned (0..15 / 0..31), so maddubs takes them
 * directly. */
static float dot_q4_1_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const uint8_t *sx = x + (size_t)(n / 32) * Q8_0_BYTES;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 20, x += Q8_0_BYTES) {
        __m128i q = _mm_loadu_si128((const __m128i *)(w + 4));
        __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo4);
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(v, qx), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(w) * ld_f16(x)), _mm256_cvtepi32_ps(p), acc);
        accm += ld_f16(w + 2) * ld_f32(sx + 4 * i);
    }
    return hsum8(acc) + accm;
}

static float dot_q5_1_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i lo4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const uint8_t *sx = x + (size_t)(n / 32) * Q8_0_BYTES;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 24, x += Q8_0_BYTES) {
        __m128i q = _mm_loadu_si128((const __m128i *)(w + 8));
        __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo4);
        v = _mm256_or_si256(v, q5_high_bits(w + 4));
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(v, qx), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ld_f16(w) * ld_f16(x)), _mm256_cvtepi32_ps(p), acc);
        accm += ld_f16(w + 2) * ld_f32(sx + 4 * i);
    }
    return hsum8(acc) + accm;
}

/* Q2_K: element 128c + 32j + l is bits 2j..2j+1 of qs[32c + l]; its 16-value
 * group g = 8c + 2j + l / 16 has scale sc[g] & 15 and min sc[g] >> 4. */
static float dot_q2_k_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i m3 = _mm256_set1_epi8(3);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 84, x += Q8_K_BYTES) {
        const uint8_t *sc = w, *q8 = x + 4;
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * c));
            for (int j = 0; j < 4; j++) {
                __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
                __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)(q8 + 128 * c + 32 * j)));
                int g = 8 * c + 2 * j;
                __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1] & 0xF), _mm_set1_epi16(sc[g] & 0xF));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scv));
            }
        }
        int32_t summ = 0;
        for (int g = 0; g < 16; g++) summ += (sc[g] >> 4) * q8k_bsum(x, g);
        float dx = ld_f32(x);
        s += ld_f16(w + 80) * dx * (float)hsum8_i32(acc) - ld_f16(w + 82) * dx * (float)summ;
    }
    return s;
}

/* Q3_K: element 128c + 32j + l is bits 2j..2j+1 of qs[32c + l] minus 4 when
 * bit 4c + j of hmask[l] is clear; signed 6-bit scale per 16 values. As
 * unsigned u = low | hbit << 2 (0..7) the value is u - 4, removed with the
 * Q8_K bsums. */
static float dot_q3_k_simd(const uint8_t *w, const uint8_t *x, int64_t n) {
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 110, x += Q8_K_BYTES) {
        /* the 16 scales as q3k_scales unpacks them, four at a time */
        uint32_t a[4], tmp;
        memcpy(a, w + 96, 12);
        tmp = a[2];
        a[2] = ((a[0] >> 4) & 0x0f0f0f0fu) | (((tmp >> 4) & 0x03030303u) << 4);
        a[3] = ((a[1] >> 4) & 0x0f0f0f0fu) | (((tmp >> 6) & 0x03030303u) << 4);
        a[0] = (a[0] & 0x0f0f0f0fu) | ((tmp & 0x03030303u) << 4);
        a[1] = (a[1] & 0x0f0f0f0fu) | (((tmp >> 2) & 0x03030303u) << 4);
        int8_t sc[16];
        __m128i scv8 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)a), _mm_set1_epi8(32));
        _mm_storeu_si128((__m128i *)sc, scv8);
        const uint8_t *q8 = x + 4;
        __m256i hm = _mm256_loadu_si256((const __m256i *)w);
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(w + 32 + 32 * c));
            for (int j = 0; j < 4; j++) {
                __m256i bit = _mm256_set1_epi8((char)(1 << (4 * c + j)));
                __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
                __m256i hb =
                    _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four);
                __m256i qx = _mm256_loadu_si256((const __m256i *)(q8 + 128 * c + 32 * j));
                __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(lo, hb), qx);
                int g = 8 * c + 2 * j;
                __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scv));
            }
        }
        /* remove the +4 bias: 4 * sum_g sc[g] * bsum[g] */
        __m256i bias = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(x + 260)),
                                         _mm256_cvtepi8_epi16(scv8));
        acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(bias, 2));
        s += ld_f16(w + 108) * ld_f32(x) * (float)hsum8_i32(acc);
    }
    return s;
}


/* ---- activation quantization ----------------------------------------------
 * Bit-identical to quant.c's quantize_q8_0 / quantize_q8_k: the same max,
 * the same scale arithmetic, and roundf's half-away-from-zero rounding
 * (not the vector unit's half-to-even) then the clamp to [-127, 127]. */

static inline __m256 round_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t)); /* exact */
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    t = _mm256_add_ps(t, _mm256_and_ps(up, one));
    return _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
}

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 floats times id, rounded, as 32 int8 in order; the four int32 vectors
 * come back in q[] for the callers' sums */
static inline __m256i q8_32(const float *x, __m256 idv, __m256i q[4]) {
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), idv)));
    __m256i a = _mm256_packs_epi32(q[0], q[1]), b = _mm256_packs_epi32(q[2], q[3]);
    return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b),
                                       _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float amax32(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    for (int k = 1; k < 4; k++) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
    return hmax8(m);
}

static void quantize_q8_0_simd(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32, y += Q8_0_BYTES) {
        float amax = amax32(x);
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        uint16_t h = _cvtss_sh(d, 0);
        memcpy(y, &h, 2);
        __m256i q[4];
        _mm256_storeu_si256((__m256i *)(y + 2), q8_32(x, _mm256_set1_ps(id), q));
    }
}

static void quantize_q8_k_simd(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, x += 256, y += Q8_K_BYTES) {
        float amax = 0;
        for (int k = 0; k < 8; k++) {
            float a = amax32(x + 32 * k);
            amax = a > amax ? a : amax;
        }
        float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
        memcpy(y, &d, 4);
        __m256 idv = _mm256_set1_ps(id);
        for (int k = 0; k < 8; k++) {
            __m256i q[4];
            _mm256_storeu_si256((__m256i *)(y + 4 + 32 * k), q8_32(x + 32 * k, idv, q));
            int16_t s0 = (int16_t)hsum8_i32(_mm256_add_epi32(q[0], q[1]));
            int16_t s1 = (int16_t)hsum8_i32(_mm256_add_epi32(q[2], q[3]));
            memcpy(y + 260 + 4 * k, &s0, 2);
            memcpy(y + 262 + 4 * k, &s1, 2);
        }
    }
}

static void f32_to_f16_simd(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = _cvtss_sh(x[i], 0);
}

/* ---- the table ---------------------------------------------------------- */

#define AS_DOT(NAME)                                                                   \
    static float NAME##_v(const void *w, const void *x, int64_t n) {                   \
        return NAME(w, x, n);                                                          \
    }
AS_DOT(dot_f32_simd)
AS_DOT(dot_f16_simd)
AS_DOT(dot_bf16_simd)
AS_DOT(dot_q8_0_simd)
AS_DOT(dot_q4_0_simd)
AS_DOT(dot_q5_0_simd)
AS_DOT(dot_q4_1_simd)
AS_DOT(dot_q5_1_simd)
AS_DOT(dot_q2_k_simd)
AS_DOT(dot_q3_k_simd)
AS_DOT(dot_q4_k_simd)
AS_DOT(dot_q5_k_simd)
AS_DOT(dot_q6_k_simd)

static float dot_f16_f32_simd(const uint16_t *a, const float *b, int64_t n) {
    return dot_f16_simd((const uint8_t *)a, b, n);
}

static const quant_simd_kernels k_avx2 = {
    .name = "avx2",
    .dot =
        {
            [COMI_TYPE_F32] = dot_f32_simd_v,
            [COMI_TYPE_F16] = dot_f16_simd_v,
            [COMI_TYPE_BF16] = dot_bf16_simd_v,
            [COMI_TYPE_Q8_0] = dot_q8_0_simd_v,
            [COMI_TYPE_Q4_0] = dot_q4_0_simd_v,
            [COMI_TYPE_Q5_0] = dot_q5_0_simd_v,
            [COMI_TYPE_Q4_1] = dot_q4_1_simd_v,
            [COMI_TYPE_Q5_1] = dot_q5_1_simd_v,
            [COMI_TYPE_Q2_K] = dot_q2_k_simd_v,
            [COMI_TYPE_Q3_K] = dot_q3_k_simd_v,
            [COMI_TYPE_Q4_K] = dot_q4_k_simd_v,
            [COMI_TYPE_Q5_K] = dot_q5_k_simd_v,
            [COMI_TYPE_Q6_K] = dot_q6_k_simd_v,
        },
    .dq_block =
        {
            [COMI_TYPE_Q8_0] = dq_q8_0_simd,
            [COMI_TYPE_Q4_0] = dq_q4_0_simd,
            [COMI_TYPE_Q5_0] = dq_q5_0_simd,
            [COMI_TYPE_Q4_1] = dq_q4_1_simd,
            [COMI_TYPE_Q5_1] = dq_q5_1_simd,
            [COMI_TYPE_Q4_K] = dq_q4_k_simd,
            [COMI_TYPE_Q6_K] = dq_q6_k_simd,
            [COMI_TYPE_Q2_K] = dq_q2_k_simd,
            [COMI_TYPE_Q3_K] = dq_q3_k_simd,
            [COMI_TYPE_Q5_K] = dq_q5_k_simd,
            [COMI_TYPE_Q8_1] = dq_q8_1_simd,
            [COMI_TYPE_Q8_K] = dq_q8_k_simd,
        },
    .dq_f16 = dq_f16_simd,
    .dq_bf16 = dq_bf16_simd,
    .dot_f32 = dot_f32_simd,
    .dot_f16_f32 = dot_f16_f32_simd,
    .quantize_q8_0 = quantize_q8_0_simd,
    .quantize_q8_k = quantize_q8_k_simd,
    .f32_to_f16 = f32_to_f16_simd,
};

const quant_simd_kernels *quant_avx2_kernels(void) {
    return &k_avx2;
}

#else /* built without AVX2/FMA/F16C: no table, quant.c runs the references */

const quant_simd_kernels *quant_avx2_kernels(void) {
    return NULL;
}

#endif
