/*
 * bench_quant.c — single-thread throughput of the weight kernels in
 * src/formats/quant.c: the decode dot products (AVX2 and scalar reference) and the
 * tile dequantization used for prefill.
 *
 * usage: bench_quant [--rows R] [--cols K] [--reps N] [--types Q4_1,Q2_K,...]
 *
 * For each weight type: a random R x K matrix (default 2048 x 4096) is
 * quantized once (types without a quantizer: random blocks with small
 * scales); then one row per kernel: milliseconds per R x K
 * matrix-vector product (or per dequantization of the whole matrix), the
 * weight bytes streamed per second, and the process's peak RSS. The four
 * kernels (SIMD and scalar matvec, SIMD and scalar dequantization) run
 * interleaved, one of each per repetition, and the best time is kept, so a
 * load change on a shared machine hits all of them alike. "simd" says
 * whether the dispatched kernels of the type are SIMD (quant_simd_has).
 */
#include "formats/quant.h"

#include "base/common.h"
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static uint64_t rng_s = 88172645463325252ull;
static float rnd(void) {
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return (float)(rng_s >> 40) / 16777216.0f - 0.5f;
}

/* true when name is in the comma-separated list (NULL: every name) */
static bool type_selected(const char *list, const char *name) {
    if (!list) return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* random quant bytes with small finite scales in every scale field */
static void random_blocks(comi_type t, uint8_t *q, size_t nbytes) {
    for (size_t i = 0; i < nbytes; i++) {
        rng_s = rng_s * 6364136223846793005ull + 1;
        q[i] = (uint8_t)(rng_s >> 56);
    }
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
    size_t bb = quant_block_bytes(t);
    uint16_t h = quant_f32_to_f16(0.001f);
    float d = 0.001f;
    for (size_t b = 0; b < nbytes / bb; b++) {
        if (t == COMI_TYPE_Q8_K) memcpy(q + b * bb, &d, 4);
        for (int k = 0; k < 2; k++)
            if (offs[k] >= 0) memcpy(q + b * bb + (size_t)offs[k], &h, 2);
    }
}

int main(int argc, char **argv) {
    int64_t rows = 2048, cols = 4096;
    int reps = 5;
    const char *only = NULL; /* comma-separated type names, NULL: all */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc) cols = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: bench_quant [--rows R] [--cols K] [--reps N] [--types T,...]\n");
            return 2;
        }
    }
    if (rows < 1 || cols < 256 || cols % 256 || reps < 1) {
        fprintf(stderr, "bench_quant: need rows >= 1, cols a multiple of 256, reps >= 1\n");
        return 2;
    }
    const comi_type types[] = {COMI_TYPE_F32,  COMI_TYPE_F16,  COMI_TYPE_BF16, COMI_TYPE_Q8_0,
                               COMI_TYPE_Q4_0, COMI_TYPE_Q4_1, COMI_TYPE_Q5_0, COMI_TYPE_Q5_1,
                               COMI_TYPE_Q8_1, COMI_TYPE_Q2_K, COMI_TYPE_Q3_K, COMI_TYPE_Q4_K,
                               COMI_TYPE_Q5_K, COMI_TYPE_Q6_K, COMI_TYPE_Q8_K};
    float *w = malloc((size_t)rows * (size_t)cols * sizeof(float)); /* (rows, cols) */
    float *x = malloc((size_t)cols * sizeof(float));                   /* (cols,) */
    float *y = malloc((size_t)rows * sizeof(float));                   /* (rows,) */
    float *tile = malloc((size_t)rows * (size_t)cols * sizeof(float)); /* (rows, cols) */
    uint8_t *q = malloc((size_t)rows * (size_t)cols * sizeof(float));
    uint8_t *xq = malloc((size_t)cols * sizeof(float) + 4096);
    if (!w || !x || !y || !tile || !q || !xq) {
        fprintf(stderr, "bench_quant: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < rows * cols; i++) w[i] = rnd() * 0.05f;
    for (int64_t i = 0; i < cols; i++) x[i] = rnd();
    printf("%-5s %-14s %10s %10s %10s  (rows %lld, cols %lld, 1 thread, %s kernels)\n", "type",
           "kernel", "ms", "GB/s", "RSS MiB", (long long)rows, (long long)cols, quant_simd_name());
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        comi_type t = types[k];
        if (!type_selected(only, quant_type_name(t))) continue;
        size_t rb;
        quant_row_bytes(t, cols, &rb);
        if (quant_can_quantize(t)) {
            for (int64_t r = 0; r < rows; r++)
                quant_quantize_row(t, w + r * cols, q + (size_t)r * rb, cols);
        } else {
            random_blocks(t, q, (size_t)rows * rb);
        }
        double bytes = (double)rows * (double)rb;
        double best[4] = {1e30, 1e30, 1e30, 1e30};
        float sink = 0;
        for (int rep = 0; rep < reps; rep++) {
            for (int kernel = 0; kernel < 4; kernel++) {
                double t0 = comi_now_ms();
                if (kernel >= 2) {
                    if (kernel == 2)
                        quant_dequant_rows(t, q, rb, tile, rows, cols);
                    else
                        for (int64_t r = 0; r < rows; r++)
                            quant_dequant_row_ref(t, q + (size_t)r * rb, tile + r * cols, cols);
                    sink += tile[rows * cols - 1];
                } else {
                    quant_vec_quantize(t, x, xq, cols);
                    for (int64_t r = 0; r < rows; r++)
                        y[r] = kernel == 0 ? quant_vec_dot(t, q + (size_t)r * rb, xq, cols)
                                           : quant_vec_dot_ref(t, q + (size_t)r * rb, xq, cols);
                    sink += y[rows - 1];
                }
                double ms = comi_now_ms() - t0;
                if (ms < best[kernel]) best[kernel] = ms;
            }
        }
        const char *kn[4] = {"matvec", "matvec_ref", "dequant_rows", "dequant_ref"};
        for (int kernel = 0; kernel < 4; kernel++)
            printf("%-5s %-14s %10.3f %10.2f %10.0f%s%s\n", quant_type_name(t), kn[kernel],
                   best[kernel], bytes / best[kernel] / 1e6, bench_peak_rss_mib(),
                   kernel == 0 ? (quant_simd_has(t) ? "  simd" : "  scalar") : "",
                   sink == 12345.0f ? " " : "");
    }
    free(w);
    free(x);
    free(y);
    free(tile);
    free(q);
    free(xq);
    return 0;
}
