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
#include "formats/quant_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- run-time dispatch ------------------------------------------------------
 * The SIMD table (quant_avx2.c) is used when it was built in and the CPU
 * has AVX2, FMA and F16C; COMI_SIMD=0 in the environment forces the scalar
 * references (for measuring them; results agree to float rounding). */

static const quant_simd_kernels *g_simd;
static pthread_once_t g_simd_once = PTHREAD_ONCE_INIT;

static void simd_init(void) {
    const char *env = getenv("COMI_SIMD");
    if (env && strcmp(env, "0") == 0) return;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        g_simd = quant_avx2_kernels();
#endif
}

static inline const quant_simd_kernels *simd_k(void) {
    pthread_once(&g_simd_once, simd_init);
    return g_simd;
}

bool quant_simd_avx2(void) {
    return simd_k() != NULL;
}

bool quant_simd_has(comi_type t) {
    const quant_simd_kernels *k = simd_k();
    if (!k || (unsigned)t >= COMI_TYPE_COUNT || !quant_type_name(t)) return false;
    bool dq = t == COMI_TYPE_F32 || t == COMI_TYPE_F16 || t == COMI_TYPE_BF16 || k->dq_block[t];
    bool dot = k->dot[t] || (quant_vec_type(t) == COMI_TYPE_F32 && k->dq_block[t]);
    return dq && dot;
}

const char *quant_simd_name(void) {
    return simd_k() ? simd_k()->name : "scalar";
}

void quant_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n) {
    if (simd_k()) {
        simd_k()->f32_to_f16(src, dst, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = quant_f32_to_f16(src[i]);
}

static void dq_f16_row(const uint8_t *s, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ld_f16(s + 2 * i);
}

static void dq_bf16_row(const uint8_t *s, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        y[i] = quant_bf16_to_f32(h);
    }
}


static void dequant_row(comi_type t, const uint8_t *s, float *dst, int64_t n, bool simd) {
    switch (t) {
    case COMI_TYPE_F32: memcpy(dst, s, (size_t)n * 4); return;
    case COMI_TYPE_F16:
        if (simd && simd_k()) simd_k()->dq_f16(s, dst, n);
        else dq_f16_row(s, dst, n);
        return;
    case COMI_TYPE_BF16:
        if (simd && simd_k()) simd_k()->dq_bf16(s, dst, n);
        else dq_bf16_row(s, dst, n);
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
    if (simd && simd_k() && simd_k()->dq_block[t]) fn = simd_k()->dq_block[t];
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
    case COMI_TYPE_Q8_0:
    case COMI_TYPE_Q4_1:
    case COMI_TYPE_Q5_1: return COMI_TYPE_Q8_0;
    case COMI_TYPE_Q2_K:
    case COMI_TYPE_Q3_K:
    case COMI_TYPE_Q4_K:
    case COMI_TYPE_Q5_K:
    case COMI_TYPE_Q6_K: return COMI_TYPE_Q8_K;
    default: return COMI_TYPE_F32;
    }
}

/* Q4_1 / Q5_1 weights have an offset m per block, so their dot product
 * needs sum(x) per block: the Q8_0 blocks are followed by n / 32 float32
 * values d_x * sum(q_x) (what GGML's Q8_1 keeps in an f16 field; float32
 * here, so the product stays exact to float rounding). */
static bool vec_has_sums(comi_type t) {
    return t == COMI_TYPE_Q4_1 || t == COMI_TYPE_Q5_1;
}

/* appends d_x * sum(q_x) per Q8_0 block of xq (n values) */
static void vec_sums(uint8_t *xq, int64_t n) {
    uint8_t *q = xq, *sums = xq + (size_t)(n / 32) * Q8_0_BYTES;
    for (int64_t i = 0; i < n / 32; i++, q += Q8_0_BYTES) {
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) sum += (int8_t)q[2 + j];
        float v = ld_f16(q) * (float)sum;
        memcpy(sums + 4 * i, &v, 4);
    }
}

size_t quant_vec_bytes(comi_type t, int64_t n) {
    size_t b = 0;
    if (!quant_type_name(t) || n % quant_block_elems(t) != 0) return 0;
    if (!quant_row_bytes(quant_vec_type(t), n, &b)) return 0;
    if (vec_has_sums(t)) b += (size_t)(n / 32) * 4;
    return b;
}

void quant_vec_quantize_ref(comi_type t, const float *x, void *xq, int64_t n) {
    switch (quant_vec_type(t)) {
    case COMI_TYPE_Q8_0:
        quantize_q8_0(x, xq, n);
        if (vec_has_sums(t)) vec_sums(xq, n);
        return;
    case COMI_TYPE_Q8_K: quantize_q8_k(x, xq, n); return;
    default: memcpy(xq, x, (size_t)n * sizeof(float)); return;
    }
}

void quant_vec_quantize(comi_type t, const float *x, void *xq, int64_t n) {
    const quant_simd_kernels *k = simd_k();
    switch (quant_vec_type(t)) {
    case COMI_TYPE_Q8_0:
        if (k) k->quantize_q8_0(x, xq, n);
        else quantize_q8_0(x, xq, n);
        if (vec_has_sums(t)) vec_sums(xq, n);
        return;
    case COMI_TYPE_Q8_K:
        if (k) k->quantize_q8_k(x, xq, n);
        else quantize_q8_k(x, xq, n);
        return;
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

/* Q4_1 / Q5_1: (d_w q_w + m_w) . (d_x q_x) per block; the block sum of q_x
 * is recomputed here (the SIMD kernels read the one quant_vec_quantize
 * appended: the same float product). */
static float dot_q4_1_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 20, x += Q8_0_BYTES) {
        const uint8_t *qs = w + 4;
        const int8_t *qx = (const int8_t *)(x + 2);
        int32_t sumi = 0, sumx = 0;
        for (int j = 0; j < 16; j++) {
            sumi += (qs[j] & 0xF) * qx[j] + (qs[j] >> 4) * qx[j + 16];
            sumx += qx[j] + qx[j + 16];
        }
        float dx = ld_f16(x);
        s += (float)sumi * (ld_f16(w) * dx) + ld_f16(w + 2) * (dx * (float)sumx);
    }
    return s;
}

static float dot_q5_1_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 24, x += Q8_0_BYTES) {
        uint32_t qh;
        memcpy(&qh, w + 4, 4);
        const uint8_t *qs = w + 8;
        const int8_t *qx = (const int8_t *)(x + 2);
        int32_t sumi = 0, sumx = 0;
        for (int j = 0; j < 16; j++) {
            int v0 = (qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
            int v1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            sumi += v0 * qx[j] + v1 * qx[j + 16];
            sumx += qx[j] + qx[j + 16];
        }
        float dx = ld_f16(x);
        s += (float)sumi * (ld_f16(w) * dx) + ld_f16(w + 2) * (dx * (float)sumx);
    }
    return s;
}

/* Q2_K: element e = 128c + 32j + l is bits 2j..2j+1 of qs[32c + l]; group
 * e / 16 has scale sc & 15 and min sc >> 4 (times d, dmin). */
static float dot_q2_k_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 84, x += Q8_K_BYTES) {
        const uint8_t *sc = w, *qs = w + 16;
        const int8_t *q8 = (const int8_t *)(x + 4);
        int32_t sumi = 0, summ = 0;
        for (int g = 0; g < 16; g++) {
            int32_t part = 0, xs = 0;
            for (int l = 0; l < 16; l++) {
                int e = 16 * g + l, c = e / 128, j = (e % 128) / 32;
                part += ((qs[32 * c + e % 32] >> (2 * j)) & 3) * q8[e];
                xs += q8[e];
            }
            sumi += (sc[g] & 0xF) * part;
            summ += (sc[g] >> 4) * xs;
        }
        float dx = ld_f32(x);
        s += ld_f16(w + 80) * dx * (float)sumi - ld_f16(w + 82) * dx * (float)summ;
    }
    return s;
}

/* Q3_K: element e = 128c + 32j + l is bits 2j..2j+1 of qs[32c + l], minus 4
 * when bit 4c + j of hmask[l] is clear; signed scale per 16 values. */
static float dot_q3_k_ref(const uint8_t *w, const uint8_t *x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++, w += 110, x += Q8_K_BYTES) {
        const uint8_t *hm = w, *qs = w + 32;
        const int8_t *q8 = (const int8_t *)(x + 4);
        int8_t sc[16];
        q3k_scales(w + 96, sc);
        int32_t sumi = 0;
        for (int g = 0; g < 16; g++) {
            int32_t part = 0;
            for (int l = 0; l < 16; l++) {
                int e = 16 * g + l, c = e / 128, j = (e % 128) / 32, ll = e % 32;
                int v = ((qs[32 * c + ll] >> (2 * j)) & 3) - ((hm[ll] >> (4 * c + j)) & 1 ? 0 : 4);
                part += v * q8[e];
            }
            sumi += sc[g] * part;
        }
        s += ld_f16(w + 108) * ld_f32(x) * (float)sumi;
    }
    return s;
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

/* Types without an integer kernel (Q8_1, Q8_K and the integer/F64 element
 * types as weights): dequantize 256 elements (whole blocks: n is a multiple
 * of the block size) at a time and dot them with x in float32. simd: the AVX2 dequantizer and
 * float dot (quant_vec_dot), else the scalar references. */
static float dot_generic(comi_type t, const uint8_t *w, const float *x, int64_t n, bool simd) {
    float buf[256]; /* (chunk,) one dequantized chunk; blocks are <= 256 */
    const quant_simd_kernels *k = simd ? simd_k() : NULL;
    const int64_t chunk = 256; /* a multiple of every block size */
    float s = 0;
    for (int64_t i = 0; i < n; i += chunk) {
        int64_t len = n - i < chunk ? n - i : chunk;
        size_t bytes = 0;
        quant_row_bytes(t, len, &bytes);
        dequant_row(t, w, buf, len, k != NULL);
        if (k)
            s += k->dot_f32(buf, x + i, len);
        else
            for (int64_t j = 0; j < len; j++) s += buf[j] * x[i + j];
        w += bytes;
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
    case COMI_TYPE_Q4_1: return dot_q4_1_ref(row, xq, n);
    case COMI_TYPE_Q5_1: return dot_q5_1_ref(row, xq, n);
    case COMI_TYPE_Q2_K: return dot_q2_k_ref(row, xq, n);
    case COMI_TYPE_Q3_K: return dot_q3_k_ref(row, xq, n);
    case COMI_TYPE_Q4_K: return dot_q4_k_ref(row, xq, n);
    case COMI_TYPE_Q5_K: return dot_q5_k_ref(row, xq, n);
    case COMI_TYPE_Q6_K: return dot_q6_k_ref(row, xq, n);
    default: return dot_generic(t, row, xq, n, false);
    }
}


/* ---- dot products: dispatch ---------------------------------------------- */

float quant_vec_dot(comi_type t, const void *row, const void *xq, int64_t n) {
    const quant_simd_kernels *k = simd_k();
    if (k && (unsigned)t < COMI_TYPE_COUNT && k->dot[t]) return k->dot[t](row, xq, n);
    if (k && quant_type_name(t)) return dot_generic(t, row, xq, n, true);
    return quant_vec_dot_ref(t, row, xq, n);
}

void quant_matvec(comi_type t, const void *w, size_t row_stride, const void *xq, float *y,
                  int64_t r0, int64_t r1, int64_t n) {
    const uint8_t *base = w;
    const quant_simd_kernels *k = simd_k();
    quant_dot_fn fn = k && (unsigned)t < COMI_TYPE_COUNT ? k->dot[t] : NULL;
    if (fn)
        for (int64_t r = r0; r < r1; r++) y[r] = fn(base + (size_t)r * row_stride, xq, n);
    else
        for (int64_t r = r0; r < r1; r++)
            y[r] = quant_vec_dot(t, base + (size_t)r * row_stride, xq, n);
}

float quant_dot_f32(const float *a, const float *b, int64_t n) {
    const quant_simd_kernels *k = simd_k();
    return k ? k->dot_f32(a, b, n) : dot_f32_ref(a, b, n);
}

float quant_dot_f16_f32(const uint16_t *a, const float *b, int64_t n) {
    const quant_simd_kernels *k = simd_k();
    return k ? k->dot_f16_f32(a, b, n) : dot_f16_ref((const uint8_t *)a, b, n);
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

static void quantize_q4_1(const float *x, uint8_t *y, int64_t n) {
    /* GGML's rule: m = block minimum, d = (max - min) / 15, q = round((x - m) / d) */
    for (int64_t i = 0; i < n / 32; i++, x += 32, y += 20) {
        float lo = x[0], hi = x[0];
        for (int j = 1; j < 32; j++) {
            lo = fminf(lo, x[j]);
            hi = fmaxf(hi, x[j]);
        }
        put_f16(y, (hi - lo) / 15.0f);
        put_f16(y + 2, lo);
        float d = ld_f16(y), m = ld_f16(y + 2), id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < 16; j++) {
            int a = clamp_int((x[j] - m) * id, 0, 15), b = clamp_int((x[j + 16] - m) * id, 0, 15);
            y[4 + j] = (uint8_t)(a | (b << 4));
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
    case COMI_TYPE_Q4_1:
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
    case COMI_TYPE_Q4_1: quantize_q4_1(src, y, n); break;
    case COMI_TYPE_Q5_0: quantize_q5_0(src, y, n); break;
    case COMI_TYPE_Q4_K: quantize_q4_k(src, y, n); break;
    case COMI_TYPE_Q6_K: quantize_q6_k(src, y, n); break;
    case COMI_TYPE_Q8_K: quantize_q8_k(src, y, n); break;
    default: return false;
    }
    return true;
}
