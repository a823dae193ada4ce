/* test_quant.c — element types: sizes, half/bfloat16 conversions, and
 * dequantization against llama.cpp's own dequantized tensors (golden). */
#include "formats/gguf.h"
#include "formats/quant.h"
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

/* Standard normal-ish values (sum of uniforms), scaled. */
static float rnd_normal(void) {
    float s = 0;
    for (int i = 0; i < 4; i++) s += (float)(rng() >> 8) / 16777216.0f;
    return (s - 2.0f) * 1.7320508f;
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

        /* the decode kernels on llama.cpp's rows: SIMD == reference ==
         * dequantized weights . dequantized activations */
        float *x = malloc(768 * 4), *xd = malloc(768 * 4);
        uint8_t *xq = malloc(quant_vec_bytes(t->type, 768));
        for (int i = 0; i < 768; i++) x[i] = rnd_normal();
        quant_vec_quantize(t->type, x, xq, 768);
        quant_dequant_row(quant_vec_type(t->type), xq, xd, 768);
        double worst = 0;
        for (int64_t r = 0; r < t->ne[1]; r++) {
            const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;
            double ref_dot = 0, mag = 0;
            for (int i = 0; i < 768; i++) {
                ref_dot += (double)out[r * 768 + i] * xd[i];
                mag += fabs((double)out[r * 768 + i] * xd[i]);
            }
            double e1 = fabs(quant_vec_dot(t->type, row, xq, 768) - ref_dot) / mag;
            double e2 = fabs(quant_vec_dot_ref(t->type, row, xq, 768) - ref_dot) / mag;
            if (!(e1 <= worst)) worst = e1;
            if (!(e2 <= worst)) worst = e2;
        }
        snprintf(name, sizeof name, "quant_vec_dot_golden_rows_%s", types[k]);
        test_check(name, worst <= 2e-6, "relative error %g", worst);
        free(x);
        free(xd);
        free(xq);
        free(out);
        free(gold);
        gguf_close(f);
    }
}

/* Random bytes for a weight row of type t with sane block scales: every
 * f16 scale field gets a small positive value (random bytes there could be
 * inf/nan). */
static void random_row(comi_type t, uint8_t *row, int64_t n) {
    size_t rb = 0;
    quant_row_bytes(t, n, &rb);
    if (t == COMI_TYPE_F32 || t == COMI_TYPE_F16 || t == COMI_TYPE_BF16) {
        for (int64_t i = 0; i < n; i++) {
            float v = rnd_normal() * 0.05f;
            if (t == COMI_TYPE_F32)
                memcpy(row + 4 * i, &v, 4);
            else {
                uint16_t h = t == COMI_TYPE_F16 ? quant_f32_to_f16(v) : quant_f32_to_bf16(v);
                memcpy(row + 2 * i, &h, 2);
            }
        }
        return;
    }
    for (size_t i = 0; i < rb; i++) row[i] = (uint8_t)rng();
    size_t bb = quant_block_bytes(t);
    /* byte offsets of the f16 scale fields in each block */
    int offs[2] = {-1, -1};
    switch (t) {
    case COMI_TYPE_Q4_0: case COMI_TYPE_Q5_0: case COMI_TYPE_Q8_0: offs[0] = 0; break;
    case COMI_TYPE_Q4_1: case COMI_TYPE_Q5_1: case COMI_TYPE_Q8_1:
    case COMI_TYPE_Q4_K: case COMI_TYPE_Q5_K: offs[0] = 0; offs[1] = 2; break;
    case COMI_TYPE_Q2_K: offs[0] = 80; offs[1] = 82; break;
    case COMI_TYPE_Q3_K: offs[0] = 108; break;
    case COMI_TYPE_Q6_K: offs[0] = 208; break;
    default: break;
    }
    for (size_t b = 0; b < rb / bb; b++) {
        if (t == COMI_TYPE_Q8_K) {
            float d = 0.001f * (float)(1 + rng() % 100) / 100.0f;
            memcpy(row + b * bb, &d, 4);
        }
        for (int k = 0; k < 2; k++)
            if (offs[k] >= 0) {
                uint16_t h = quant_f32_to_f16(0.0005f + 0.002f * (float)(rng() % 1000) / 1000.0f);
                memcpy(row + b * bb + (size_t)offs[k], &h, 2);
            }
    }
}

static void check_dot(comi_type t, int64_t n, int n_rows) {
    size_t rb = 0;
    quant_row_bytes(t, n, &rb);
    size_t xb = quant_vec_bytes(t, n);
    uint8_t *w = malloc(rb * (size_t)n_rows);
    uint8_t *xq = malloc(xb);
    float *x = malloc((size_t)n * 4), *xd = malloc((size_t)n * 4), *wd = malloc((size_t)n * 4);
    float *y = malloc((size_t)n_rows * 4);
    double worst_simd = 0, worst_deq = 0, worst_float = 0;
    for (int64_t i = 0; i < n; i++) x[i] = rnd_normal();
    x[0] = 4.0f; /* one outlier, as real activations have */
    for (int r = 0; r < n_rows; r++) random_row(t, w + (size_t)r * rb, n);
    quant_vec_quantize(t, x, xq, n);
    quant_dequant_row(quant_vec_type(t), xq, xd, n);
    quant_matvec(t, w, rb, xq, y, 0, n_rows, n);
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *row = w + (size_t)r * rb;
        float simd = quant_vec_dot(t, row, xq, n), ref = quant_vec_dot_ref(t, row, xq, n);
        quant_dequant_row(t, row, wd, n);
        double deq = 0, flt = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) {
            deq += (double)wd[i] * xd[i];
            flt += (double)wd[i] * x[i];
            mag += fabs((double)wd[i] * x[i]);
        }
        double e1 = fabs(simd - ref) / mag, e2 = fabs(ref - deq) / mag, e3 = fabs(simd - flt) / mag;
        if (y[r] != simd) e1 = INFINITY;
        if (!(e1 <= worst_simd)) worst_simd = e1;
        if (!(e2 <= worst_deq)) worst_deq = e2;
        if (!(e3 <= worst_float)) worst_float = e3;
    }
    char name[128];
    /* integer block sums are exact; only float summation order differs */
    snprintf(name, sizeof name, "quant_dot_simd_vs_ref_%s_n%lld", quant_type_name(t), (long long)n);
    test_check(name, worst_simd <= 2e-6, "relative error %g", worst_simd);
    snprintf(name, sizeof name, "quant_dot_ref_vs_dequant_%s_n%lld", quant_type_name(t), (long long)n);
    test_check(name, worst_deq <= 2e-6, "relative error %g", worst_deq);
    /* against unquantized x: only the activation rounding (Q8: ~0.4%) */
    double bound = quant_vec_type(t) == COMI_TYPE_F32 ? 2e-6 : 1e-2;
    snprintf(name, sizeof name, "quant_dot_vs_float_%s_n%lld", quant_type_name(t), (long long)n);
    test_check(name, worst_float <= bound, "relative error %g (bound %g)", worst_float, bound);
    free(w);
    free(xq);
    free(x);
    free(xd);
    free(wd);
    free(y);
}

/* SIMD dequantization equals the scalar reference bit for bit. */
static void check_dequant_simd(void) {
    const comi_type types[] = {COMI_TYPE_F32,  COMI_TYPE_F16,  COMI_TYPE_BF16, COMI_TYPE_Q8_0,
                               COMI_TYPE_Q4_0, COMI_TYPE_Q5_0, COMI_TYPE_Q4_1, COMI_TYPE_Q5_1,
                               COMI_TYPE_Q2_K, COMI_TYPE_Q3_K, COMI_TYPE_Q4_K, COMI_TYPE_Q5_K,
                               COMI_TYPE_Q6_K, COMI_TYPE_Q8_K, COMI_TYPE_Q8_1};
    const int64_t n = 2048 + 256;
    size_t rb = 0;
    uint8_t *row = malloc(n * 4);
    float *a = malloc(n * 4), *b = malloc(n * 4), *tile = malloc(3 * n * 4);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        comi_type t = types[k];
        quant_row_bytes(t, n, &rb);
        int bad = 0;
        for (int rep = 0; rep < 8; rep++) {
            random_row(t, row, n);
            quant_dequant_row(t, row, a, n);
            quant_dequant_row_ref(t, row, b, n);
            if (memcmp(a, b, n * 4) != 0) bad++;
        }
        /* tiles: rows at a stride larger than a row */
        uint8_t *w3 = malloc(3 * (rb + 64));
        for (int r = 0; r < 3; r++) memcpy(w3 + r * (rb + 64), row, rb);
        quant_dequant_rows(t, w3, rb + 64, tile, 3, n);
        for (int r = 0; r < 3; r++)
            if (memcmp(tile + r * n, a, n * 4) != 0) bad++;
        free(w3);
        char name[64];
        snprintf(name, sizeof name, "quant_dequant_simd_eq_ref_%s", quant_type_name(t));
        test_check(name, bad == 0, "%d rows differ", bad);
    }
    /* odd lengths for the per-element types (tails) */
    for (int64_t m = 1; m < 40; m += 3) {
        random_row(COMI_TYPE_BF16, row, m);
        quant_dequant_row(COMI_TYPE_BF16, row, a, m);
        quant_dequant_row_ref(COMI_TYPE_BF16, row, b, m);
        random_row(COMI_TYPE_F16, row + 2 * m, m);
        quant_dequant_row(COMI_TYPE_F16, row + 2 * m, a + m, m);
        quant_dequant_row_ref(COMI_TYPE_F16, row + 2 * m, b + m, m);
        if (memcmp(a, b, 2 * (size_t)m * 4) != 0) {
            test_fail("quant_dequant_simd_tails", "length %lld differs", (long long)m);
            break;
        }
        if (m + 3 >= 40) test_pass("quant_dequant_simd_tails");
    }
    free(row);
    free(a);
    free(b);
    free(tile);
}

/* byte offsets of a block's f16 scale fields (-1: none), as random_row */
static void scale_offsets(comi_type t, int offs[2]) {
    offs[0] = offs[1] = -1;
    switch (t) {
    case COMI_TYPE_Q4_0: case COMI_TYPE_Q5_0: case COMI_TYPE_Q8_0: offs[0] = 0; break;
    case COMI_TYPE_Q4_1: case COMI_TYPE_Q5_1: case COMI_TYPE_Q8_1:
    case COMI_TYPE_Q4_K: case COMI_TYPE_Q5_K: offs[0] = 0; offs[1] = 2; break;
    case COMI_TYPE_Q2_K: offs[0] = 80; offs[1] = 82; break;
    case COMI_TYPE_Q3_K: offs[0] = 108; break;
    case COMI_TYPE_Q6_K: offs[0] = 208; break;
    default: break;
    }
}

/* Edge blocks: every quant byte 0x00 or 0xFF (largest unsigned values,
 * every high bit set or clear, extreme 6-bit scales) with extreme finite
 * scale fields (65504, the smallest subnormal, negative), dequantized by
 * the SIMD kernels and the references: bit-identical; then dot products
 * with activations at the clamp (+-127 after rounding) and all zero. */
static void check_edges(void) {
    const comi_type types[] = {COMI_TYPE_Q8_0, COMI_TYPE_Q4_0, COMI_TYPE_Q5_0, COMI_TYPE_Q4_1,
                               COMI_TYPE_Q5_1, COMI_TYPE_Q8_1, COMI_TYPE_Q2_K, COMI_TYPE_Q3_K,
                               COMI_TYPE_Q4_K, COMI_TYPE_Q5_K, COMI_TYPE_Q6_K, COMI_TYPE_Q8_K};
    const uint16_t scales[] = {0x7bff, 0x0001, 0xc000, 0x3c00}; /* 65504, 2^-24, -2, 1 */
    const int64_t n = 512;
    uint8_t row[512 * 4];
    float a[512], b[512], x[512];
    uint8_t xq[512 * 4 + 64];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        comi_type t = types[k];
        size_t rb = 0, bb = quant_block_bytes(t);
        quant_row_bytes(t, n, &rb);
        int offs[2];
        scale_offsets(t, offs);
        int bad_dq = 0, bad_dot = 0;
        double worst = 0;
        for (int fill = 0; fill < 3; fill++)
            for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
                for (size_t i = 0; i < rb; i++)
                    row[i] = fill == 0 ? 0x00 : fill == 1 ? 0xFF : (uint8_t)(i & 1 ? 0xAA : 0x55);
                for (size_t blk = 0; blk < rb / bb; blk++) {
                    uint8_t *p = row + blk * bb;
                    if (t == COMI_TYPE_Q8_K) {
                        float d = si == 0 ? 1e30f : si == 1 ? 1e-30f : si == 2 ? -2.0f : 1.0f;
                        memcpy(p, &d, 4);
                    }
                    for (int o = 0; o < 2; o++)
                        if (offs[o] >= 0) memcpy(p + offs[o], &scales[(si + (size_t)o) % 4], 2);
                }
                quant_dequant_row(t, row, a, n);
                quant_dequant_row_ref(t, row, b, n);
                if (memcmp(a, b, sizeof a) != 0) bad_dq++;
                /* dots only with finite products (65504-scale blocks overflow
                 * no float here: |values| <= 65504 * 63 * 127 * 512) */
                for (int xs = 0; xs < 3; xs++) {
                    for (int64_t i = 0; i < n; i++)
                        x[i] = xs == 2 ? 0.0f : (xs == 0 ? 1.0f : (i % 3 ? -1.0f : 1.0f));
                    quant_vec_quantize(t, x, xq, n);
                    float s1 = quant_vec_dot(t, row, xq, n), s2 = quant_vec_dot_ref(t, row, xq, n);
                    double mag = 0;
                    for (int64_t i = 0; i < n; i++) mag += fabs((double)b[i]);
                    double err = fabs((double)s1 - s2) / (mag > 0 ? mag : 1);
                    /* integer block sums are exact; the float path (Q8_1, Q8_K
                     * weights) sums n products: error up to ~n ulp */
                    double bound = quant_vec_type(t) == COMI_TYPE_F32 ? (double)n * 0x1p-23 : 2e-6;
                    if (!(err <= bound) || (xs == 2 && (s1 != 0 || s2 != 0))) bad_dot++;
                    if (err > worst) worst = err;
                }
            }
        char name[64];
        snprintf(name, sizeof name, "quant_edge_dequant_simd_eq_ref_%s", quant_type_name(t));
        test_check(name, bad_dq == 0, "%d of 12 edge rows differ", bad_dq);
        snprintf(name, sizeof name, "quant_edge_dot_simd_vs_ref_%s", quant_type_name(t));
        test_check(name, bad_dot == 0, "%d of 36 edge dots differ (worst relative %g)", bad_dot,
                   worst);
    }
    /* every weight type has SIMD kernels where the CPU has AVX2 */
    if (!quant_simd_avx2()) {
        test_skip("quant_simd_covers_every_weight_type", "no AVX2 on this CPU (or COMI_SIMD=0)");
        return;
    }
    const comi_type all[] = {COMI_TYPE_F32,  COMI_TYPE_F16,  COMI_TYPE_BF16, COMI_TYPE_Q4_0,
                             COMI_TYPE_Q4_1, COMI_TYPE_Q5_0, COMI_TYPE_Q5_1, COMI_TYPE_Q8_0,
                             COMI_TYPE_Q8_1, COMI_TYPE_Q2_K, COMI_TYPE_Q3_K, COMI_TYPE_Q4_K,
                             COMI_TYPE_Q5_K, COMI_TYPE_Q6_K, COMI_TYPE_Q8_K};
    int missing = 0;
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (!quant_simd_has(all[k])) {
            printf("  no SIMD kernel for %s\n", quant_type_name(all[k]));
            missing++;
        }
    test_check("quant_simd_covers_every_weight_type", missing == 0, "%d types fall back to scalar",
               missing);
}

static void check_dots(void) {
    const comi_type types[] = {COMI_TYPE_F32,  COMI_TYPE_F16,  COMI_TYPE_BF16, COMI_TYPE_Q8_0,
                               COMI_TYPE_Q4_0, COMI_TYPE_Q4_K, COMI_TYPE_Q5_K, COMI_TYPE_Q6_K,
                               COMI_TYPE_Q4_1, COMI_TYPE_Q5_0, COMI_TYPE_Q5_1, COMI_TYPE_Q2_K,
                               COMI_TYPE_Q3_K, COMI_TYPE_Q8_K, COMI_TYPE_Q8_1, COMI_TYPE_I8};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_dot(types[i], 4096, 16);
        check_dot(types[i], 256, 16);
    }
    /* float kernels with lengths that exercise the tails */
    check_dot(COMI_TYPE_F32, 4096 + 13, 4);
    check_dot(COMI_TYPE_F16, 64 + 7, 4);
    check_dot(COMI_TYPE_BF16, 3, 4);
    float a[19], b[19];
    uint16_t h[19];
    double want = 0;
    for (int i = 0; i < 19; i++) {
        a[i] = (float)(i - 9) * 0.25f;
        b[i] = (float)i * 0.5f;
        h[i] = quant_f32_to_f16(a[i]);
        want += (double)a[i] * b[i];
    }
    test_check("quant_dot_f32_f16_exact", quant_dot_f32(a, b, 19) == (float)want &&
                                              quant_dot_f16_f32(h, b, 19) == (float)want,
               "%g %g want %g", quant_dot_f32(a, b, 19), quant_dot_f16_f32(h, b, 19), want);
    test_check("quant_vec_types",
               quant_vec_type(COMI_TYPE_Q4_K) == COMI_TYPE_Q8_K &&
                   quant_vec_type(COMI_TYPE_Q4_0) == COMI_TYPE_Q8_0 &&
                   quant_vec_type(COMI_TYPE_Q5_0) == COMI_TYPE_Q8_0 &&
                   quant_vec_type(COMI_TYPE_F16) == COMI_TYPE_F32 &&
                   quant_vec_bytes(COMI_TYPE_Q6_K, 512) == 2 * 292 &&
                   quant_vec_bytes(COMI_TYPE_Q8_0, 64) == 2 * 34 &&
                   quant_vec_bytes(COMI_TYPE_F16, 10) == 40 &&
                   quant_vec_bytes(COMI_TYPE_Q4_K, 100) == 0,
               "vec type table wrong");
}

/* Quantize random rows, dequantize, and bound the error. */
static void check_quantizers(void) {
    const struct {
        comi_type t;
        double max_nmse;
    } cases[] = {{COMI_TYPE_F32, 0},      {COMI_TYPE_F16, 1e-7},   {COMI_TYPE_BF16, 1e-5},
                 {COMI_TYPE_Q8_0, 5e-5},  {COMI_TYPE_Q4_0, 1.2e-2}, {COMI_TYPE_Q4_1, 1e-2}, {COMI_TYPE_Q4_K, 1e-2}, {COMI_TYPE_Q5_0, 3e-3},
                 {COMI_TYPE_Q6_K, 6e-4},  {COMI_TYPE_Q8_K, 3e-4}};
    const int64_t n = 8192;
    float *x = malloc(n * 4), *back = malloc(n * 4);
    uint8_t *q = malloc(n * 4);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        comi_type t = cases[c].t;
        for (int64_t i = 0; i < n; i++) x[i] = rnd_normal() * 0.02f;
        for (int64_t i = 0; i < 64; i++) x[i] = 0; /* an all-zero block must work */
        x[300] = 0.5f;                              /* and an outlier */
        bool ok = quant_can_quantize(t) && quant_quantize_row(t, x, q, n);
        quant_dequant_row(t, q, back, n);
        double nmse = test_nmse(back, x, (size_t)n), maxrel = 0;
        int64_t qk = quant_block_elems(t);
        /* per block: no value moves by more than the block's range / 8 */
        for (int64_t b = 0; b < n; b += (qk < 32 ? 32 : qk)) {
            float amax = 0;
            for (int64_t j = b; j < b + (qk < 32 ? 32 : qk); j++) amax = fmaxf(amax, fabsf(x[j]));
            for (int64_t j = b; j < b + (qk < 32 ? 32 : qk); j++) {
                double e = fabs((double)back[j] - x[j]) / (amax > 0 ? amax : 1);
                if (amax == 0 && back[j] != 0) e = INFINITY;
                if (!(e <= maxrel)) maxrel = e;
            }
        }
        char name[64];
        snprintf(name, sizeof name, "quant_roundtrip_%s", quant_type_name(t));
        test_check(name, ok && nmse <= cases[c].max_nmse && maxrel <= 0.26,
                   "ok %d nmse %g (bound %g) max err / block max %g", ok, nmse, cases[c].max_nmse,
                   maxrel);
    }
    test_check("quant_unsupported_quantizer",
               !quant_can_quantize(COMI_TYPE_Q5_K) &&
                   !quant_quantize_row(COMI_TYPE_Q5_K, x, q, 256) &&
                   !quant_quantize_row(COMI_TYPE_Q4_K, x, q, 100),
               "accepted an unsupported conversion");
    free(x);
    free(back);
    free(q);
}

/* Our quantizers on llama.cpp's F32 weights: error within a small factor
 * of llama.cpp's own quantization of the same tensor. */
static void check_quantizers_golden(const char *g) {
    char path[1024];
    snprintf(path, sizeof path, "%s/forward/models/quant-llama.F32.gguf", g);
    comi_err e;
    gguf_file *f = NULL;
    if (gguf_open(&e, path, &f) != COMI_OK) {
        test_fail("quant_vs_llamacpp", "%s", e.msg);
        return;
    }
    const comi_tensor *t = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    const float *w = t->data; /* (256 x 768) */
    const char *types[] = {"Q8_0", "Q4_0", "Q4_K", "Q6_K"};
    size_t n = 768 * 256;
    float *back = malloc(n * 4);
    uint8_t *q = malloc(n * 4);
    for (size_t k = 0; k < 4; k++) {
        comi_type ty;
        quant_type_from_name(types[k], &ty);
        size_t glen = 0;
        snprintf(path, sizeof path, "%s/forward/quant-llama/dequant/%s.blk.0.ffn_down.weight.f32",
                 g, types[k]);
        float *gold = test_read_file(path, &glen);
        size_t rb;
        quant_row_bytes(ty, 768, &rb);
        for (int r = 0; r < 256; r++) {
            quant_quantize_row(ty, w + r * 768, q + r * rb, 768);
            quant_dequant_row(ty, q + r * rb, back + r * 768, 768);
        }
        double ours = test_nmse(back, w, n), theirs = gold ? test_nmse(gold, w, n) : -1;
        char name[64];
        snprintf(name, sizeof name, "quant_vs_llamacpp_%s", types[k]);
        test_check(name, gold && glen == n * 4 && ours <= 2.0 * theirs,
                   "nmse ours %g, llama.cpp %g", ours, theirs);
        printf("  %s nmse ours %.3g llama.cpp %.3g\n", types[k], ours, theirs);
        free(gold);
    }
    free(back);
    free(q);
    gguf_close(f);
}

/* Activation quantization: the dispatched (SIMD) version writes the same
 * bytes as the scalar reference, including exact .5 ties (a block whose
 * max is 127 has scale 1, so x = k + 0.5 lands on a tie). */
static void check_vec_quantize(void) {
    const comi_type types[] = {COMI_TYPE_Q8_0, COMI_TYPE_Q4_1, COMI_TYPE_Q5_1, COMI_TYPE_Q4_K,
                               COMI_TYPE_F16};
    const int64_t n = 1024;
    float *x = malloc(n * 4);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        comi_type t = types[k];
        size_t xb = quant_vec_bytes(t, n);
        uint8_t *a = malloc(xb), *b = malloc(xb);
        int bad = 0;
        for (int rep = 0; rep < 4; rep++) {
            for (int64_t i = 0; i < n; i++) x[i] = rnd_normal() * (rep == 0 ? 1e-3f : 3.0f);
            if (rep >= 2)
                for (int64_t i = 0; i < n; i++)
                    x[i] = i % 32 == 0 ? 127.0f : (float)((int)(rng() % 200) - 100) + 0.5f;
            if (rep == 3) memset(x, 0, 64 * 4); /* an all-zero block */
            quant_vec_quantize(t, x, a, n);
            quant_vec_quantize_ref(t, x, b, n);
            if (memcmp(a, b, xb) != 0) bad++;
        }
        char name[64];
        snprintf(name, sizeof name, "quant_vec_quantize_eq_ref_%s", quant_type_name(t));
        test_check(name, bad == 0, "%d of 4 inputs differ", bad);
        free(a);
        free(b);
    }
    free(x);
}

int main(void) {
    printf("  dispatched kernels: %s (COMI_SIMD=0 forces scalar)\n", quant_simd_name());
    check_sizes();
    check_half();
    check_dots();
    check_vec_quantize();
    check_dequant_simd();
    check_edges();
    check_quantizers();
    const char *g = test_golden_dir();
    if (!g)
        test_skip("quant_dequant_golden", "golden directory not found (set COMI_GOLDEN)");
    else {
        check_dequant_golden(g);
        check_quantizers_golden(g);
    }
    return test_exit();
}
