/*
 * quant.c — tensor element types (model loading stage): block sizes, IEEE
 * half / bfloat16 conversions, and dequantization of weight rows to float32.
 *
 * Block layouts mirror GGML's ggml-common.h (block_q4_0, block_q4_K, ...)
 * and the dequantize_row_* reference routines in ggml-quants.c; all
 * multi-byte fields are little-endian and read with memcpy because GGUF
 * data is only 32-byte aligned at the tensor start and blocks have odd sizes.
 */
#include "quant.h"

#include "common.h"

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

static inline float ld_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return quant_f16_to_f32(h);
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

void quant_dequant_row(comi_type t, const void *src, float *dst, int64_t n) {
    const uint8_t *s = src;
    switch (t) {
    case COMI_TYPE_F32: memcpy(dst, s, (size_t)n * 4); return;
    case COMI_TYPE_F16: dq_f16_row(s, dst, n); return;
    case COMI_TYPE_BF16: dq_bf16_row(s, dst, n); return;
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
    int64_t qk = quant_block_elems(t);
    size_t bb = quant_block_bytes(t);
    if (!fn || qk <= 0) return; /* unreachable for types the loaders accept */
    for (int64_t i = 0; i < n / qk; i++) fn(s + (size_t)i * bb, dst + i * qk);
}
