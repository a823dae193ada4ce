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
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
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
