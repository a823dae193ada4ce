/* test_ops.c — transformer kernels against naive double-precision
 * references: rmsnorm, softmax, swiglu, dot, RoPE (both modes and their
 * equivalence under the GGUF q/k row permutation), matmul for every weight
 * type on both the dot and the BLAS-tile path, and tiled causal GQA
 * attention; plus bit-identical results for 1, 2 and 3 threads. */
#include "base/common.h"
#include "runtime/ops.h"
#include "base/pool.h"
#include "formats/quant.h"
#include "test.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static float *rand_vec(int64_t n, float amp) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = frand() * amp;
    return v;
}

static double max_rel_err(const float *a, const double *ref, int64_t n) {
    double mx = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (d > mx) mx = d;
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return mx / (scale > 0 ? scale : 1);
}

static void test_elementwise(void) {
    int64_t n = 333;
    float *x = rand_vec(n, 3), *w = rand_vec(n, 1), *y = malloc((size_t)n * sizeof *y);
    double *ref = malloc((size_t)n * sizeof *ref);
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    double sc = 1.0 / sqrt(ss / (double)n + 1e-5);
    for (int64_t i = 0; i < n; i++)
        ref[i] = x[i] * sc * w[i];
    ops_rmsnorm(y, x, w, n, 1e-5f);
    double err = max_rel_err(y, ref, n);
    test_check("rmsnorm", err < 1e-6, "max rel err %g", err);

    memcpy(y, x, (size_t)n * sizeof *y);
    ops_softmax(y, n);
    double mx = -1e300, sum = 0;
    for (int64_t i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int64_t i = 0; i < n; i++)
        sum += exp(x[i] - mx);
    for (int64_t i = 0; i < n; i++)
        ref[i] = exp(x[i] - mx) / sum;
    err = max_rel_err(y, ref, n);
    test_check("softmax", err < 1e-6, "max rel err %g", err);

    memcpy(y, x, (size_t)n * sizeof *y);
    ops_swiglu(y, w, n);
    for (int64_t i = 0; i < n; i++)
        ref[i] = x[i] / (1 + exp(-(double)x[i])) * w[i];
    err = max_rel_err(y, ref, n);
    test_check("swiglu", err < 1e-6, "max rel err %g", err);

    {
        int64_t ne = 4003;
        float *xs = malloc((size_t)ne * sizeof *xs), *ys = malloc((size_t)ne * sizeof *ys);
        double worst = 0;
        int same = 1;
        for (int64_t i = 0; i < ne; i++)
            xs[i] = -80.0f + 160.0f * (float)i / (float)(ne - 1);
        ops_exp(ys, xs, ne);
        for (int64_t i = 0; i < ne; i++) {
            double r = exp((double)xs[i]), rel = fabs(ys[i] - r) / r;
            if (rel > worst) worst = rel;
            if (ys[i] != ops_exp_ref(xs[i])) same = 0;
        }
        test_check("exp_vs_double", worst < 5e-7, "max rel err %g", worst);
        test_check("exp_simd_equals_scalar", same, "AVX2 and scalar exp differ");
        free(xs);
        free(ys);
    }
    free(x);
    free(w);
    free(y);
    free(ref);
}

static void test_rope(void) {
    const int64_t n = 7, n_head = 3, hd = 16, pos0 = 5, ld = n_head * hd;
    const float base = 10000.0f;
    float *hf = rand_vec(n * ld, 1), *gg = malloc((size_t)(n * ld) * sizeof(float));
    float *cs = malloc((size_t)(n * hd) * sizeof(float));
    double *ref = malloc((size_t)(n * ld) * sizeof(double));
    /* GGUF llama row order: within each head, GGUF row 2i = HF row i and GGUF
     * row 2i+1 = HF row i + hd/2 (the converter's permute). */
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < n_head; h++)
            for (int64_t i = 0; i < hd / 2; i++) {
                gg[t * ld + h * hd + 2 * i] = hf[t * ld + h * hd + i];
                gg[t * ld + h * hd + 2 * i + 1] = hf[t * ld + h * hd + i + hd / 2];
            }
    /* reference: HF rotate_half form in double */
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < n_head; h++)
            for (int64_t i = 0; i < hd / 2; i++) {
                double th = (double)(pos0 + t) * pow(base, -2.0 * (double)i / (double)hd);
                double x0 = hf[t * ld + h * hd + i], x1 = hf[t * ld + h * hd + i + hd / 2];
                ref[t * ld + h * hd + i] = x0 * cos(th) - x1 * sin(th);
                ref[t * ld + h * hd + i + hd / 2] = x1 * cos(th) + x0 * sin(th);
            }
    ops_rope_table(cs, pos0, n, hd, base);
    ops_rope_apply(hf, n, ld, n_head, hd, cs, OPS_ROPE_NEOX);
    ops_rope_apply(gg, n, ld, n_head, hd, cs, OPS_ROPE_NORMAL);
    double err = max_rel_err(hf, ref, n * ld);
    test_check("rope_neox_vs_ref", err < 1e-6, "max rel err %g", err);
    int same = 1;
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < n_head; h++)
            for (int64_t i = 0; i < hd / 2; i++)
                if (gg[t * ld + h * hd + 2 * i] != hf[t * ld + h * hd + i] ||
                    gg[t * ld + h * hd + 2 * i + 1] != hf[t * ld + h * hd + i + hd / 2])
                    same = 0;
    test_check("rope_normal_on_permuted_equals_neox", same,
               "NORMAL mode on GGUF-permuted rows differs from NEOX on HF rows");
    free(hf);
    free(gg);
    free(cs);
    free(ref);
}

/* Encodes a float32 (m x k) matrix as a weight of type t in *bytes. */
static comi_tensor make_weight(comi_type t, const float *wf, int64_t m, int64_t k, void **bytes) {
    comi_tensor w = {.name = "w", .type = t, .n_dims = 2, .ne = {k, m, 1, 1}};
    size_t rb = 0;
    quant_row_bytes(t, k, &rb);
    uint8_t *b = malloc(rb * (size_t)m);
    for (int64_t r = 0; r < m; r++)
        quant_quantize_row(t, wf + r * k, b + r * rb, k);
    w.data = b;
    w.nbytes = rb * (size_t)m;
    *bytes = b;
    return w;
}

static void test_matmul(void) {
    static const comi_type types[] = {COMI_TYPE_F32,  COMI_TYPE_F16,  COMI_TYPE_BF16,
                                      COMI_TYPE_Q8_0, COMI_TYPE_Q4_0, COMI_TYPE_Q4_K,
                                      COMI_TYPE_Q6_K};
    static const int64_t ns[] = {1, 3, 4, 37};
    const int64_t k = 512, m = 150; /* k: two K-quant blocks; m not a multiple of the tile */
    comi_pool *pools[3] = {pool_new(1), pool_new(2), pool_new(3)};
    /* the BLAS policy: our calls run OpenBLAS single-threaded and give the
     * caller's thread count back (checked after the loops) */
    openblas_set_num_threads(3);
    int blas_before = openblas_get_num_threads();
    float *wf = rand_vec(m * k, 1);
    float *x = rand_vec(37 * k, 1);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        void *bytes;
        comi_tensor w = make_weight(types[ti], wf, m, k, &bytes);
        float *wd = malloc((size_t)(m * k) * sizeof(float)); /* dequantized */
        size_t rb;
        quant_row_bytes(w.type, k, &rb);
        for (int64_t r = 0; r < m; r++)
            quant_dequant_row(w.type, (const uint8_t *)bytes + r * rb, wd + r * k, k);
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            int64_t n = ns[ni], ldy = m + 5;
            double *ref = malloc((size_t)(n * ldy) * sizeof(double));
            float *y[3];
            for (int64_t i = 0; i < n; i++)
                for (int64_t r = 0; r < m; r++) {
                    double s = 0;
                    for (int64_t c = 0; c < k; c++)
                        s += (double)x[i * k + c] * wd[r * k + c];
                    ref[i * ldy + r] = s;
                }
            comi_err e;
            comi_err_clear(&e);
            int ok = 1;
            for (int p = 0; p < 3; p++) {
                y[p] = calloc((size_t)(n * ldy), sizeof(float));
                if (ops_matmul(&e, pools[p], &w, x, n, y[p], ldy) != COMI_OK) ok = 0;
            }
            double err = 0, num = 0, den = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t r = 0; r < m; r++) {
                    double d = fabs(y[0][i * ldy + r] - ref[i * ldy + r]);
                    if (d > err) err = d;
                    num += d * d;
                    den += ref[i * ldy + r] * ref[i * ldy + r];
                }
            /* the BLAS path and float dot kernels are exact up to float
             * rounding; the dot path of quantized types rounds the input to
             * 8 bits first (as llama.cpp), so it gets an NMSE bound */
            bool q8_input = n < OPS_GEMM_MIN_ROWS && quant_vec_type(w.type) != COMI_TYPE_F32;
            char name[96];
            snprintf(name, sizeof name, "matmul_%s_n%lld", quant_type_name(w.type), (long long)n);
            if (q8_input)
                test_check(name, ok && num / den < 1e-4, "status ok=%d, nmse %g", ok, num / den);
            else
                test_check(name, ok && err < 2e-4, "status ok=%d, max abs err %g", ok, err);
            snprintf(name, sizeof name, "matmul_%s_n%lld_threads_identical",
                     quant_type_name(w.type), (long long)n);
            test_check(name,
                       !memcmp(y[0], y[1], (size_t)(n * ldy) * sizeof(float)) &&
                           !memcmp(y[0], y[2], (size_t)(n * ldy) * sizeof(float)),
                       "1/2/3 threads differ");
            for (int p = 0; p < 3; p++)
                free(y[p]);
            free(ref);
        }
        free(wd);
        free(bytes);
    }
    test_check("matmul_restores_openblas_threads", openblas_get_num_threads() == blas_before,
               "OpenBLAS threads %d after the calls, %d before", openblas_get_num_threads(),
               blas_before);
    openblas_set_num_threads(1);
    free(wf);
    free(x);
    for (int p = 0; p < 3; p++)
        pool_free(pools[p]);
}

/* ops_matmul_group gives, bit for bit, one ops_matmul per item: mixed
 * weight types (two that share the Q8_K input conversion, one with its
 * own, one float), every row count of both paths, no pool and 1-3 threads. */
static void test_matmul_group(void) {
    static const comi_type types[] = {COMI_TYPE_Q4_K, COMI_TYPE_Q4_1, COMI_TYPE_Q6_K,
                                      COMI_TYPE_F16};
    static const int64_t ms[] = {70, 33, 129, 40}, ns[] = {1, 2, 3, 5};
    const int64_t k = 256;
    comi_pool *pools[4] = {NULL, pool_new(1), pool_new(2), pool_new(3)};
    float *x = rand_vec(5 * k, 7);
    comi_tensor w[4];
    void *bytes[4];
    float *wf[4];
    for (int i = 0; i < 4; i++) {
        wf[i] = rand_vec(ms[i] * k, 11 + i);
        w[i] = make_weight(types[i], wf[i], ms[i], k, &bytes[i]);
    }
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        int64_t n = ns[ni];
        int same = 1, ok = 1;
        for (int p = 0; p < 4; p++) {
            float *ya[4], *yb[4];
            ops_mm_item items[4];
            comi_err e;
            comi_err_clear(&e);
            for (int i = 0; i < 4; i++) {
                int64_t ldy = ms[i] + 3;
                ya[i] = calloc((size_t)(n * ldy), sizeof(float));
                yb[i] = calloc((size_t)(n * ldy), sizeof(float));
                items[i] = (ops_mm_item){&w[i], ya[i], ldy};
                if (ops_matmul(&e, pools[p], &w[i], x, n, yb[i], ldy) != COMI_OK) ok = 0;
            }
            if (ops_matmul_group(&e, pools[p], items, 4, x, n) != COMI_OK) ok = 0;
            for (int i = 0; i < 4; i++) {
                if (memcmp(ya[i], yb[i], (size_t)(n * (ms[i] + 3)) * sizeof(float))) same = 0;
                free(ya[i]);
                free(yb[i]);
            }
        }
        char name[64];
        snprintf(name, sizeof name, "matmul_group_n%lld_identical", (long long)n);
        test_check(name, ok && same, "status ok=%d, outputs identical=%d", ok, same);
    }
    /* a weight of another width, and a group size out of range, are refused */
    comi_err e;
    comi_err_clear(&e);
    float *wf2 = rand_vec(8 * 512, 3), y[64];
    void *b2;
    comi_tensor wide = make_weight(COMI_TYPE_Q8_0, wf2, 8, 512, &b2);
    ops_mm_item bad[2] = {{&w[0], y, 70}, {&wide, y, 8}};
    comi_status st1 = ops_matmul_group(&e, pools[2], bad, 2, x, 1);
    comi_status st2 = ops_matmul_group(&e, pools[2], bad, 0, x, 1);
    comi_status st3 = ops_matmul_group(&e, pools[2], bad, OPS_GROUP_MAX + 1, x, 1);
    test_check("matmul_group_refuses_bad_shapes",
               st1 == COMI_ERR_INVALID_ARG && st2 == COMI_ERR_INVALID_ARG &&
                   st3 == COMI_ERR_INVALID_ARG,
               "statuses %d %d %d", (int)st1, (int)st2, (int)st3);
    free(b2);
    free(wf2);
    for (int i = 0; i < 4; i++) {
        free(bytes[i]);
        free(wf[i]);
    }
    free(x);
    for (int p = 1; p < 4; p++)
        pool_free(pools[p]);
}

static void attn_ref(const ops_attn_args *a, double *o) {
    int64_t G = a->n_head / a->n_kv_head, hd = a->head_dim;
    double *s = malloc((size_t)a->n_kv * sizeof(double));
    for (int64_t t = 0; t < a->n; t++)
        for (int64_t h = 0; h < a->n_head; h++) {
            int64_t kvh = h / G, last = a->pos0 + t;
            double mx = -1e300, sum = 0;
            for (int64_t j = 0; j <= last; j++) {
                double d = 0;
                for (int64_t c = 0; c < hd; c++)
                    d += (double)a->q[t * a->ldq + h * hd + c] * a->k[j * a->ldkv + kvh * hd + c];
                s[j] = d * a->scale;
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = 0; j <= last; j++)
                sum += (s[j] = exp(s[j] - mx));
            for (int64_t c = 0; c < hd; c++) {
                double acc = 0;
                for (int64_t j = 0; j <= last; j++)
                    acc += s[j] * a->v[j * a->ldkv + kvh * hd + c];
                o[t * a->ldo + h * hd + c] = acc / sum;
            }
        }
    free(s);
}

static void test_attention(void) {
    struct {
        int64_t n, pos0, n_kv, n_head, n_kv_head, hd;
    } cases[] = {
        {1, 0, 1, 4, 2, 16},     {70, 0, 70, 4, 2, 16},   {20, 50, 70, 4, 2, 16},
        {1, 299, 300, 6, 2, 32}, {300, 0, 300, 6, 2, 32}, {45, 0, 45, 3, 3, 8},
    };
    comi_pool *pools[3] = {pool_new(1), pool_new(2), pool_new(3)};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ops_attn_args a = {0};
        a.n = cases[ci].n;
        a.pos0 = cases[ci].pos0;
        a.n_kv = cases[ci].n_kv;
        a.n_head = cases[ci].n_head;
        a.n_kv_head = cases[ci].n_kv_head;
        a.head_dim = cases[ci].hd;
        a.ldq = a.n_head * a.head_dim + 3;
        a.ldkv = a.n_kv_head * a.head_dim + 1;
        a.ldo = a.n_head * a.head_dim;
        a.scale = 1.0f / sqrtf((float)a.head_dim);
        float *q = rand_vec(a.n * a.ldq, 2), *k = rand_vec(a.n_kv * a.ldkv, 2);
        float *v = rand_vec(a.n_kv * a.ldkv, 1);
        a.q = q;
        a.k = k;
        a.v = v;
        double *ref = malloc((size_t)(a.n * a.ldo) * sizeof(double));
        attn_ref(&a, ref);
        float *o[3];
        int ok = 1;
        for (int p = 0; p < 3; p++) {
            o[p] = calloc((size_t)(a.n * a.ldo), sizeof(float));
            a.o = o[p];
            comi_err e;
            comi_err_clear(&e);
            if (ops_attention(&e, pools[p], &a) != COMI_OK) ok = 0;
        }
        double err = max_rel_err(o[0], ref, a.n * a.ldo);
        char name[96];
        snprintf(name, sizeof name, "attention_n%lld_pos%lld_h%lld_kv%lld", (long long)a.n,
                 (long long)a.pos0, (long long)a.n_head, (long long)a.n_kv_head);
        test_check(name, ok && err < 2e-6, "status ok=%d, max rel err %g", ok, err);
        strncat(name, "_threads_identical", sizeof name - strlen(name) - 1);
        test_check(name,
                   !memcmp(o[0], o[1], (size_t)(a.n * a.ldo) * sizeof(float)) &&
                       !memcmp(o[0], o[2], (size_t)(a.n * a.ldo) * sizeof(float)),
                   "1/2/3 threads differ");
        for (int p = 0; p < 3; p++)
            free(o[p]);
        free(ref);
        free(q);
        free(k);
        free(v);
    }
    for (int p = 0; p < 3; p++)
        pool_free(pools[p]);
}

int main(void) {
    test_elementwise();
    test_rope();
    test_matmul();
    test_matmul_group();
    test_attention();
    return test_exit();
}
