/* test_quant.c — element types: sizes, half/bfloat16 conversions, and
 * dequantization against llama.cpp's own dequantized tensors (golden). */
#include "gguf.h"
#include "quant.h"
#include "test.h"

#include <float.h>

static void check_sizes(void) {
    const struct {
        comi_type t;
        const char *name;
        int64_t qk;
        size_t bytes;
    } want[] = {{COMI_TYPE_F32, "F32", 1, 4},      {COMI_TYPE_F16, "F16", 1, 2},
                {COMI_TYPE_BF16, "BF16", 1, 2},    {COMI_TYPE_Q4_0, "Q4_0", 32, 18},
                {COMI_TYPE_Q4_1, "Q4_1", 32, 20},  {COMI_TYPE_Q5_0, "Q5_0", 32, 22},
                {COMI_TYPE_Q5_1, "Q5_1", 32, 24},  {COMI_TYPE_Q8_0, "Q8_0", 32, 34},
                {COMI_TYPE_Q8_1, "Q8_1", 32, 36},  {COMI_TYPE_Q2_K, "Q2_K", 256, 84},
                {COMI_TYPE_Q3_K, "Q3_K", 256, 110}, {COMI_TYPE_Q4_K, "Q4_K", 256, 144},
                {COMI_TYPE_Q5_K, "Q5_K", 256, 176}, {COMI_TYPE_Q6_K, "Q6_K", 256, 210},
                {COMI_TYPE_Q8_K, "Q8_K", 256, 292}, {COMI_TYPE_I8, "I8", 1, 1},
                {COMI_TYPE_I32, "I32", 1, 4},      {COMI_TYPE_F64, "F64", 1, 8}};
    int bad = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        comi_type back;
        if (strcmp(quant_type_name(want[i].t), want[i].name) != 0 ||
            quant_block_elems(want[i].t) != want[i].qk ||
            quant_block_bytes(want[i].t) != want[i].bytes ||
            !quant_type_from_name(want[i].name, &back) || back != want[i].t) {
            printf("  size table mismatch for %s\n", want[i].name);
            bad++;
        }
    }
    size_t rb = 0;
    bool ok = bad == 0 && quant_row_bytes(COMI_TYPE_Q4_K, 4096, &rb) && rb == 16 * 144 &&
              !quant_row_bytes(COMI_TYPE_Q4_K, 100, &rb) &&
              !quant_row_bytes(COMI_TYPE_F32, -1, &rb) &&
              !quant_row_bytes((comi_type)16, 256, &rb) && quant_type_name((comi_type)16) == NULL &&
              quant_type_name((comi_type)-3) == NULL && quant_block_bytes((comi_type)1000) == 0 &&
              !quant_row_bytes(COMI_TYPE_F32, INT64_MAX, &rb);
    test_check("quant_sizes", ok, "%d table mismatches", bad);
}

static uint32_t rng_state = 12345;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void check_half(void) {
    /* every half converts to float and back unchanged (NaNs stay NaN) and
     * the F16C and portable paths agree */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = quant_f16_to_f32((uint16_t)h), r = quant_f16_to_f32_ref((uint16_t)h);
        uint32_t fb, rbits;
        memcpy(&fb, &f, 4);
        memcpy(&rbits, &r, 4);
        bool nan = isnan(f);
        if (fb != rbits || (!nan && quant_f32_to_f16(f) != h) ||
            (!nan && quant_f32_to_f16_ref(f) != h) || (nan && !isnan(r)))
            if (bad++ < 3) printf("  half 0x%04x -> %g / %g\n", h, f, r);
    }
    test_check("quant_f16_roundtrip_all", bad == 0, "%d halves differ", bad);
    /* random floats (all exponents): F16C rounding == portable rounding */
    bad = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = rng();
        float f;
        memcpy(&f, &u, 4);
        uint16_t a = quant_f32_to_f16(f), b = quant_f32_to_f16_ref(f);
        if (a != b && !(isnan(f) && (a & 0x7c00) == 0x7c00 && (b & 0x7c00) == 0x7c00 &&
                        (a & 0x3ff) && (b & 0x3ff)))
            if (bad++ < 3) printf("  f32 0x%08x -> 0x%04x vs 0x%04x\n", u, a, b);
    }
    test_check("quant_f32_to_f16_matches_f16c", bad == 0, "%d floats differ", bad);
    /* known roundings */
    bool ok = quant_f32_to_f16_ref(65504.0f) == 0x7bff && quant_f32_to_f16_ref(65520.0f) == 0x7c00 &&
              quant_f32_to_f16_ref(1.0f + 0x1p-11f) == 0x3c00 && /* tie to even */
              quant_f32_to_f16_ref(1.0f + 3 * 0x1p-11f) == 0x3c02 &&
              quant_f32_to_f16_ref(0x1p-25f) == 0x0000 && /* tie to even (zero) */
              quant_f32_to_f16_ref(0x1.8p-25f) == 0x0001 &&
              quant_f32_to_f16_ref(-0x1p-14f) == 0x8400 && quant_f32_to_f16_ref(-0.0f) == 0x8000;
    test_check("quant_f16_rounding_cases", ok, "rounding edge case wrong");

    /* bfloat16: exact for its own values, round to nearest even otherwise */
    ok = quant_f32_to_bf16(1.0f) == 0x3f80 && quant_bf16_to_f32(0x3f80) == 1.0f &&
         quant_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80 &&          /* tie, even stays */
         quant_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82 &&      /* tie, odd rounds up */
         quant_f32_to_bf16(1.0f + 0x1.8p-8f) == 0x3f81 && isnan(quant_bf16_to_f32(quant_f32_to_bf16(NAN))) &&
         quant_f32_to_bf16(-INFINITY) == 0xff80;
    for (uint32_t h = 0; h < 65536 && ok; h++) {
        float f = quant_bf16_to_f32((uint16_t)h);
        if (!isnan(f) && quant_f32_to_bf16(f) != h) ok = false;
    }
    test_check("quant_bf16", ok, "bf16 conversion wrong");
}

static void check_dequant_golden(const char *g) {
    const char *types[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        char path[1024], name[128];
        snprintf(name, sizeof name, "quant_dequant_golden_%s", types[k]);
        snprintf(path, sizeof path, "%s/forward/models/quant-llama.%s.gguf", g, types[k]);
        comi_err e;
        gguf_file *f = NULL;
        if (gguf_open(&e, path, &f) != COMI_OK) {
            test_fail(name, "%s", e.msg);
            continue;
        }
        const comi_tensor *t = gguf_find_tensor(f, "blk.0.ffn_down.weight");
        size_t glen = 0;
        float *gold = NULL;
        if (strcmp(types[k], "F32") != 0) {
            snprintf(path, sizeof path, "%s/forward/quant-llama/dequant/%s.blk.0.ffn_down.weight.f32",
                     g, types[k]);
            gold = test_read_file(path, &glen);
        } else {
            /* F32: the tensor itself is the reference; compare with memcpy */
            glen = t ? t->nbytes : 0;
            gold = malloc(glen ? glen : 1);
            if (gold && t) memcpy(gold, t->data, glen);
        }
        comi_type want;
        quant_type_from_name(types[k], &want);
        if (!t || !gold || t->type != want || t->ne[0] != 768 || t->ne[1] != 256 ||
            glen != 768 * 256 * sizeof(float)) {
            test_fail(name, "missing tensor or golden file (%zu bytes)", glen);
            free(gold);
            gguf_close(f);
            continue;
        }
        size_t rb;
        quant_row_bytes(t->type, t->ne[0], &rb);
        float *out = malloc(glen);
        for (int64_t r = 0; r < t->ne[1]; r++)
            quant_dequant_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, out + r * 768, 768);
        double maxerr = 0;
        for (size_t i = 0; i < 768 * 256; i++) {
            double d = fabs((double)out[i] - (double)gold[i]);
            if (!(d <= maxerr)) maxerr = d; /* NaN counts as an error */
        }
        test_check(name, maxerr <= 1e-6, "max |err| %g", maxerr);
        free(out);
        free(gold);
        gguf_close(f);
    }
}

int main(void) {
    check_sizes();
    check_half();
    const char *g = test_golden_dir();
    if (!g)
        test_skip("quant_dequant_golden", "golden directory not found (set COMI_GOLDEN)");
    else
        check_dequant_golden(g);
    return test_exit();
}
