/*
 * fuzz_quant.c — libFuzzer target for the dequantization kernels
 * (src/formats/quant.c): byte 0 picks a tensor type, the rest is raw blocks of it,
 * dequantized into an exact-size buffer (ASan catches any write past it).
 * The F16C half conversions are checked bit for bit against the scalar
 * references on the same bytes, read as halves and as floats.
 */
#include "base/common.h"
#include "fuzz.h"
#include "formats/quant.h"

#include <string.h>

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int fuzz_quant(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    comi_type t = (comi_type)(data[0] % COMI_TYPE_COUNT);
    const uint8_t *src = data + 1;
    size_t len = size - 1;

    int64_t be = quant_block_elems(t);
    size_t bb = quant_block_bytes(t);
    if (be > 0 && bb > 0) {
        int64_t n_blocks = (int64_t)(len / bb);
        if (n_blocks > 64) n_blocks = 64;
        int64_t n = n_blocks * be;
        size_t rb = 0;
        FUZZ_CHECK(quant_row_bytes(t, n, &rb) && rb == (size_t)n_blocks * bb);
        if (n > 0) {
            /* Copy so the source is exactly the blocks read. */
            uint8_t *blocks = malloc(rb);
            float *dst = malloc((size_t)n * sizeof *dst);
            FUZZ_CHECK(blocks && dst);
            memcpy(blocks, src, rb);
            quant_dequant_row(t, blocks, dst, n);
            free(blocks);
            free(dst);
        }
        FUZZ_CHECK(be == 1 || !quant_row_bytes(t, be + 1, &rb));
    }

    for (size_t i = 0; i + 2 <= len; i += 2) {
        uint16_t h = (uint16_t)(src[i] | (src[i + 1] << 8));
        float a = quant_f16_to_f32(h), b = quant_f16_to_f32_ref(h);
        FUZZ_CHECK(f32_bits(a) == f32_bits(b) || (a != a && b != b));
    }
    for (size_t i = 0; i + 4 <= len; i += 4) {
        float f;
        memcpy(&f, src + i, sizeof f);
        uint16_t a = quant_f32_to_f16(f), b = quant_f32_to_f16_ref(f);
        /* NaN payloads may differ; both must still be NaN. */
        FUZZ_CHECK(a == b || (f != f && (a & 0x7c00) == 0x7c00 && (a & 0x3ff) &&
                              (b & 0x7c00) == 0x7c00 && (b & 0x3ff)));
    }
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_quant(data, size);
}
#endif
