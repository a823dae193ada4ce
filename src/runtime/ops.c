/*
 * ops.c — transformer kernels (stage: encoder/decoder LM forward pass).
 * Mirrors the math of llama.cpp's ggml CPU ops (rms_norm, rope in normal and
 * NEOX mode, soft_max, swiglu, mul_mat, flash_attn_ext) and of Hugging
 * Face's LlamaRMSNorm / apply_rotary_pos_emb / eager attention, in float32
 * with double-precision reductions where they are cheap.
 *
 * Matmuls: batches go through cblas_sgemm on float32 copies of
 * OPS_TILE_ROWS weight rows at a time (the copy stays in cache, the weight
 * stays mmapped and quantized); single rows use dot products. Attention
 * walks key blocks with an online softmax so memory stays O(tile), never
 * O(n^2).
 */
#include "runtime/ops.h"

#include "formats/quant.h"

#include <cblas.h>
/* The vector loops below are compiled for AVX2/FMA through target
 * attributes (the rest of the file for plain x86-64) and run only when
 * quant_simd_avx2() says the CPU has them; the scalar versions do the same
 * operations (see exp), so results do not depend on which runs. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(COMI_NO_SIMD)
#include <immintrin.h>
#define OPS_SIMD 1
#define OPS_AVX2 __attribute__((target("avx2,fma")))
#endif
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_users;    /* brackets open in the process */
static int blas_saved = 1; /* the OpenBLAS thread count before the first */

void ops_blas_enter(void) {
    pthread_mutex_lock(&blas_mu);
    if (blas_users++ == 0) {
        blas_saved = openblas_get_num_threads();
        if (blas_saved != 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_mu);
}

void ops_blas_leave(void) {
    pthread_mutex_lock(&blas_mu);
    if (--blas_users == 0 && blas_saved != 1) openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_mu);
}

/* ---- elementwise ------------------------------------------------------- */

#ifdef OPS_SIMD
OPS_AVX2 static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
#endif

void ops_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    if (w)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * scale * w[i];
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * scale;
}

/* exp(x) by Cephes' expf recipe: x = n ln2 + r with |r| <= ln2/2, a degree-6
 * polynomial for e^r, 2^n through the exponent bits. Relative error about
 * 2 ulp; inputs are clamped to [-87.3, 88.7] (so exp(-inf) is ~1e-38, not
 * 0). The scalar and AVX2 versions do the same operations, so an element's
 * value does not depend on where it falls in a vector. */
#define EXP_HI 88.3762626647949f
#define EXP_LO -87.3365478515625f
#define EXP_LOG2E 1.44269504088896341f
#define EXP_C1 0.693359375f
#define EXP_C2 -2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

float ops_exp_ref(float x) {
    x = fminf(fmaxf(x, EXP_LO), EXP_HI);
    float fx = nearbyintf(x * EXP_LOG2E);
    float r = fmaf(fx, -EXP_C1, x);
    r = fmaf(fx, -EXP_C2, r);
    float y = EXP_P0;
    y = fmaf(y, r, EXP_P1);
    y = fmaf(y, r, EXP_P2);
    y = fmaf(y, r, EXP_P3);
    y = fmaf(y, r, EXP_P4);
    y = fmaf(y, r, EXP_P5);
    y = fmaf(y, r * r, r + 1.0f);
    int32_t e = ((int32_t)fx + 127) << 23;
    float p2;
    memcpy(&p2, &e, 4);
    return y * p2;
}

#ifdef OPS_SIMD
OPS_AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(fx, _mm256_set1_ps(-EXP_C1), x);
    r = _mm256_fmadd_ps(fx, _mm256_set1_ps(-EXP_C2), r);
    __m256 y = _mm256_set1_ps(EXP_P0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P5));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}
#endif

#ifdef OPS_SIMD
OPS_AVX2 static int64_t exp_avx2(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    return i;
}
#endif

void ops_exp(float *y, const float *x, int64_t n) {
    int64_t i = 0;
#ifdef OPS_SIMD
    if (quant_simd_avx2()) i = exp_avx2(y, x, n);
#endif
    for (; i < n; i++)
        y[i] = ops_exp_ref(x[i]);
}

/* y[i] = exp(x[i] - m) for i < n; returns the sum in float32, accumulated
 * in 8 lanes then reduced (a fixed order for a given n). */
#ifdef OPS_SIMD
OPS_AVX2 static float exp_shift_sum_avx2(float *y, const float *x, float m, int64_t n) {
    int64_t i = 0;
    __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 v = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(y + i, v);
        acc = _mm256_add_ps(acc, v);
    }
    float s = hsum256(acc);
    for (; i < n; i++)
        s += (y[i] = ops_exp_ref(x[i] - m));
    return s;
}
#endif

static float exp_shift_sum(float *y, const float *x, float m, int64_t n) {
#ifdef OPS_SIMD
    if (quant_simd_avx2()) return exp_shift_sum_avx2(y, x, m, n);
#endif
    int64_t i = 0;
    /* the same 8-lane partial sums as the AVX2 path, so results match */
    float lane[8] = {0};
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            lane[k] += (y[i + k] = ops_exp_ref(x[i + k] - m));
    float s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) +
              ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    for (; i < n; i++)
        s += (y[i] = ops_exp_ref(x[i] - m));
    return s;
}

void ops_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float inv = 1.0f / exp_shift_sum(x, x, mx, n);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

#ifdef OPS_SIMD
OPS_AVX2 static int64_t swiglu_avx2(float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    return i;
}
#endif

void ops_swiglu(float *gate, const float *up, int64_t n) {
    int64_t i = 0;
#ifdef OPS_SIMD
    if (quant_simd_avx2()) i = swiglu_avx2(gate, up, n);
#endif
    for (; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + ops_exp_ref(-g)) * up[i];
    }
}

typedef struct rows_job {
    float *y;
    const float *x, *w;
    int64_t d;
    float eps;
} rows_job;

static void rmsnorm_chunk(void *arg, int64_t b, int64_t e, int worker) {
    const rows_job *j = arg;
    (void)worker;
    for (int64_t i = b; i < e; i++)
        ops_rmsnorm(j->y + i * j->d, j->x + i * j->d, j->w, j->d, j->eps);
}

void ops_rmsnorm_rows(comi_pool *pool, float *y, const float *x, const float *w, int64_t n_rows,
                      int64_t d, float eps) {
    rows_job j = {.y = y, .x = x, .w = w, .d = d, .eps = eps};
    pool_for(pool, n_rows, 16, rmsnorm_chunk, &j);
}

static void swiglu_chunk(void *arg, int64_t b, int64_t e, int worker) {
    const rows_job *j = arg;
    (void)worker;
    ops_swiglu(j->y + b * j->d, j->x + b * j->d, (e - b) * j->d);
}

void ops_swiglu_rows(comi_pool *pool, float *gate, const float *up, int64_t n_rows, int64_t d) {
    rows_job j = {.y = gate, .x = up, .d = d};
    pool_for(pool, n_rows, 16, swiglu_chunk, &j);
}

/* ---- rotary embeddings ------------------------------------------------- */

void ops_rope_table(float *cs, int64_t pos0, int64_t n, int64_t head_dim, float base) {
    int64_t half = head_dim / 2;
    for (int64_t t = 0; t < n; t++) {
        double p = (double)(pos0 + t);
        for (int64_t i = 0; i < half; i++) {
            double theta = p * pow((double)base, -2.0 * (double)i / (double)head_dim);
            cs[t * head_dim + 2 * i] = (float)cos(theta);
            cs[t * head_dim + 2 * i + 1] = (float)sin(theta);
        }
    }
}

void ops_rope_apply(float *x, int64_t n, int64_t ld, int64_t n_head, int64_t head_dim,
                    const float *cs, ops_rope_mode mode) {
    int64_t half = head_dim / 2;
    for (int64_t t = 0; t < n; t++) {
        const float *c = cs + t * head_dim;
        for (int64_t h = 0; h < n_head; h++) {
            float *v = x + t * ld + h * head_dim;
            for (int64_t i = 0; i < half; i++) {
                int64_t i0 = mode == OPS_ROPE_NEOX ? i : 2 * i;
                int64_t i1 = mode == OPS_ROPE_NEOX ? i + half : 2 * i + 1;
                float x0 = v[i0], x1 = v[i1];
                float co = c[2 * i], si = c[2 * i + 1];
                v[i0] = x0 * co - x1 * si;
                v[i1] = x0 * si + x1 * co;
            }
        }
    }
}

/* ---- matmul ------------------------------------------------------------ */

bool ops_weight_supported(const comi_tensor *w) {
    if (!w || w->ne[2] != 1 || w->ne[3] != 1 || w->ne[0] < 1 || w->ne[1] < 1) return false;
    size_t rb;
    return quant_row_bytes(w->type, w->ne[0], &rb) && quant_block_elems(w->type) > 0;
}

typedef struct mm_job {
    const comi_tensor *w;
    size_t row_bytes;
    int64_t k;
    const float *x; /* (n x k) */
    int64_t n;
    float *y; /* (n x ldy) */
    int64_t ldy;
    float *bufs; /* gemm: n_workers x (OPS_TILE_ROWS x k) dequantized tiles */
    int64_t buf_elems;
    int64_t *cached;       /* gemm: per worker, the row tile held in its buffer (-1: none) */
    int64_t n_tb, tb_rows; /* gemm: token blocks per row tile and their height */
    const uint8_t *xq;     /* dot: the n input rows in the weight's vec type */
    size_t xq_bytes;       /* bytes per converted row */
} mm_job;

/* One gemm task: weight rows [r0, r1) x token rows [t0, t1). Consecutive
 * tasks of a worker often share the weight tile; it is dequantized once. */
static void mm_gemm_task(const mm_job *j, int64_t task, int worker) {
    int64_t rt = task / j->n_tb, tb = task % j->n_tb;
    int64_t r0 = rt * OPS_TILE_ROWS,
            r1 = r0 + OPS_TILE_ROWS < j->w->ne[1] ? r0 + OPS_TILE_ROWS : j->w->ne[1];
    int64_t t0 = tb * j->tb_rows, t1 = t0 + j->tb_rows < j->n ? t0 + j->tb_rows : j->n;
    if (t0 >= t1) return;
    const uint8_t *base = (const uint8_t *)j->w->data + (size_t)r0 * j->row_bytes;
    const float *wt = (const float *)base; /* F32 weights are used in place */
    if (j->w->type != COMI_TYPE_F32) {
        float *buf = j->bufs + (size_t)worker * (size_t)j->buf_elems;
        if (j->cached[worker] != rt) {
            quant_dequant_rows(j->w->type, base, j->row_bytes, buf, r1 - r0, j->k);
            j->cached[worker] = rt;
        }
        wt = buf;
    }
    /* y[t0:t1, r0:r1] = x[t0:t1] (rows x k) * wt^T (k x (r1-r0)) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(t1 - t0), (int)(r1 - r0), (int)j->k,
                1.0f, j->x + t0 * j->k, (int)j->k, wt, (int)j->k, 0.0f, j->y + t0 * j->ldy + r0,
                (int)j->ldy);
}

static void mm_gemm_chunk(void *arg, int64_t b, int64_t e, int worker) {
    for (int64_t t = b; t < e; t++)
        mm_gemm_task(arg, t, worker);
}

static void mm_dot_chunk(void *arg, int64_t r0, int64_t r1, int worker) {
    const mm_job *j = arg;
    (void)worker;
    for (int64_t i = 0; i < j->n; i++)
        quant_matvec(j->w->type, j->w->data, j->row_bytes, j->xq + (size_t)i * j->xq_bytes,
                     j->y + i * j->ldy, r0, r1, j->k);
}

comi_status ops_matmul(comi_err *e, comi_pool *pool, const comi_tensor *w, const float *x,
                       int64_t n, float *y, int64_t ldy) {
    mm_job j = {.w = w, .k = w->ne[0], .x = x, .n = n, .y = y, .ldy = ldy};
    if (n <= 0) return COMI_OK;
    if (!quant_row_bytes(w->type, w->ne[0], &j.row_bytes))
        return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: weight type %d unsupported in matmul",
                            w->name ? w->name : "weight", (int)w->type);
    if (n >= OPS_GEMM_MIN_ROWS) {
        /* tasks: row tiles x token blocks. Narrow matrices (k/v projections)
         * get their tokens split so every thread has work; the split depends
         * only on the shape, never on the thread count. */
        int nt = pool_threads(pool);
        int64_t n_rt = (w->ne[1] + OPS_TILE_ROWS - 1) / OPS_TILE_ROWS;
        j.n_tb = 1;
        while (n_rt * j.n_tb < 8 && n / (j.n_tb * 2) >= 64)
            j.n_tb *= 2;
        j.tb_rows = (n + j.n_tb - 1) / j.n_tb;
        j.buf_elems = w->type == COMI_TYPE_F32 ? 1 : OPS_TILE_ROWS * j.k;
        j.bufs =
            comi_alloc_array(e, (size_t)nt, (size_t)j.buf_elems * sizeof(float), "matmul tile");
        j.cached = j.bufs ? comi_alloc_array(e, (size_t)nt, sizeof(int64_t), "matmul tile") : NULL;
        if (!j.cached) {
            free(j.bufs);
            return e ? e->status : COMI_ERR_NOMEM;
        }
        for (int i = 0; i < nt; i++)
            j.cached[i] = -1;
        ops_blas_enter();
        pool_for(pool, n_rt * j.n_tb, 1, mm_gemm_chunk, &j);
        ops_blas_leave();
        free(j.bufs);
        free(j.cached);
        return COMI_OK;
    }
    /* few rows: convert each input row once (Q8_0 / Q8_K for quantized
     * weights, as llama.cpp does), then one dot product per output */
    j.xq_bytes = quant_vec_bytes(w->type, j.k);
    if (!j.xq_bytes)
        return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: no dot kernel for type %s",
                            w->name ? w->name : "weight", quant_type_name(w->type));
    uint8_t *xq, *own = NULL;
    if (pool) { /* reused: a decode step allocates nothing */
        xq = pool_scratch(pool, POOL_SCRATCH_MATVEC, (size_t)n * j.xq_bytes);
        if (!xq) return comi_err_set(e, COMI_ERR_NOMEM, "matmul input: out of memory");
    } else {
        xq = own = comi_alloc_array(e, (size_t)n, j.xq_bytes, "matmul input");
        if (!xq) return e ? e->status : COMI_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++)
        quant_vec_quantize(w->type, x + i * j.k, xq + (size_t)i * j.xq_bytes, j.k);
    j.xq = xq;
    pool_for(pool, w->ne[1], OPS_DOT_ROWS, mm_dot_chunk, &j);
    free(own);
    return COMI_OK;
}

typedef struct mm_group_job {
    mm_job items[OPS_GROUP_MAX];
    /* item i owns the global rows [first_row[i], first_row[i + 1]) */
    int64_t first_row[OPS_GROUP_MAX + 1];
    int n_items;
} mm_group_job;

static void mm_group_chunk(void *arg, int64_t r0, int64_t r1, int worker) {
    const mm_group_job *g = arg;
    for (int i = 0; i < g->n_items; i++) {
        int64_t b = r0 > g->first_row[i] ? r0 : g->first_row[i];
        int64_t end = r1 < g->first_row[i + 1] ? r1 : g->first_row[i + 1];
        if (b < end)
            mm_dot_chunk((void *)&g->items[i], b - g->first_row[i], end - g->first_row[i], worker);
    }
}

comi_status ops_matmul_group(comi_err *e, comi_pool *pool, const ops_mm_item *items, int n_items,
                             const float *x, int64_t n) {
    if (n_items < 1 || n_items > OPS_GROUP_MAX)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "matmul group of %d items (1..%d)", n_items,
                            OPS_GROUP_MAX);
    if (n >= OPS_GEMM_MIN_ROWS || n_items == 1) {
        for (int i = 0; i < n_items; i++) {
            comi_status st = ops_matmul(e, pool, items[i].w, x, n, items[i].y, items[i].ldy);
            if (st) return st;
        }
        return COMI_OK;
    }
    if (n <= 0) return COMI_OK;
    mm_group_job g = {.n_items = n_items};
    size_t off[OPS_GROUP_MAX], total = 0;
    const int64_t k = items[0].w->ne[0];
    for (int i = 0; i < n_items; i++) {
        const comi_tensor *w = items[i].w;
        mm_job *j = &g.items[i];
        *j = (mm_job){.w = w, .k = k, .x = x, .n = n, .y = items[i].y, .ldy = items[i].ldy};
        if (w->ne[0] != k)
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "%s: %lld columns in a group of %lld",
                                w->name ? w->name : "weight", (long long)w->ne[0], (long long)k);
        if (!quant_row_bytes(w->type, k, &j->row_bytes))
            return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: weight type %d unsupported in matmul",
                                w->name ? w->name : "weight", (int)w->type);
        j->xq_bytes = quant_vec_bytes(w->type, k);
        if (!j->xq_bytes)
            return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: no dot kernel for type %s",
                                w->name ? w->name : "weight", quant_type_name(w->type));
        off[i] = total;
        total += (size_t)n * j->xq_bytes;
        g.first_row[i + 1] = g.first_row[i] + w->ne[1];
    }
    uint8_t *xq, *own = NULL;
    if (pool) { /* reused: a decode step allocates nothing */
        xq = pool_scratch(pool, POOL_SCRATCH_MATVEC, total);
        if (!xq) return comi_err_set(e, COMI_ERR_NOMEM, "matmul input: out of memory");
    } else {
        xq = own = comi_alloc_array(e, 1, total, "matmul input");
        if (!xq) return e ? e->status : COMI_ERR_NOMEM;
    }
    for (int i = 0; i < n_items; i++) {
        mm_job *j = &g.items[i];
        j->xq = xq + off[i];
        /* the same conversion as an earlier item's: share its rows */
        int same = -1;
        for (int p = 0; p < i && same < 0; p++)
            if (quant_vec_type(g.items[p].w->type) == quant_vec_type(j->w->type)) same = p;
        if (same >= 0) j->xq = g.items[same].xq;
        else
            for (int64_t t = 0; t < n; t++)
                quant_vec_quantize(j->w->type, x + t * k,
                                   (uint8_t *)j->xq + (size_t)t * j->xq_bytes, k);
    }
    pool_for(pool, g.first_row[n_items], OPS_DOT_ROWS, mm_group_chunk, &g);
    free(own);
    return COMI_OK;
}

/* ---- attention --------------------------------------------------------- */

#define ATT_BQ 32  /* query tokens per task */
#define ATT_BK 128 /* keys per block */

typedef struct att_job {
    const ops_attn_args *a;
    int64_t group; /* query heads per kv head */
    int64_t n_qblocks;
    float *scratch; /* n_workers x scratch_elems */
    int64_t scratch_elems;
} att_job;

static void att_task(const att_job *j, int64_t task, float *ws) {
    const ops_attn_args *a = j->a;
    const int64_t hd = a->head_dim, G = j->group;
    int64_t h = task / j->n_qblocks, qb = task % j->n_qblocks;
    int64_t t0 = qb * ATT_BQ, t1 = t0 + ATT_BQ < a->n ? t0 + ATT_BQ : a->n;
    int64_t R = (t1 - t0) * G;          /* rows: (token, head in group) */
    float *Q = ws;                      /* (R x hd) scaled queries */
    float *O = Q + ATT_BQ * G * hd;     /* (R x hd) unnormalised output */
    float *S = O + ATT_BQ * G * hd;     /* (R x ATT_BK) scores, then probabilities */
    float *M = S + ATT_BQ * G * ATT_BK; /* (R) running max */
    float *L = M + ATT_BQ * G;          /* (R) running sum */
    float *Kf = L + ATT_BQ * G;         /* half cache: (ATT_BK x hd) keys as float32 */
    float *Vf = Kf + ATT_BK * hd;       /* half cache: (ATT_BK x hd) values */

    for (int64_t t = t0; t < t1; t++)
        for (int64_t g = 0; g < G; g++) {
            const float *src = a->q + t * a->ldq + (h * G + g) * hd;
            float *dst = Q + ((t - t0) * G + g) * hd;
            for (int64_t d = 0; d < hd; d++)
                dst[d] = src[d] * a->scale;
        }
    memset(O, 0, (size_t)(R * hd) * sizeof(float));
    for (int64_t r = 0; r < R; r++) {
        M[r] = -INFINITY;
        L[r] = 0;
    }
    int64_t last_key = a->pos0 + t1 - 1; /* inclusive */
    for (int64_t s0 = 0; s0 <= last_key; s0 += ATT_BK) {
        int64_t nk = last_key + 1 - s0 < ATT_BK ? last_key + 1 - s0 : ATT_BK;
        const float *K, *V;
        int64_t ldk = a->ldkv;
        if (a->k16) {
            for (int64_t i = 0; i < nk; i++) {
                size_t off = (size_t)(s0 + i) * (size_t)a->ldkv + (size_t)(h * hd);
                quant_dequant_row(COMI_TYPE_F16, a->k16 + off, Kf + i * hd, hd);
                quant_dequant_row(COMI_TYPE_F16, a->v16 + off, Vf + i * hd, hd);
            }
            K = Kf;
            V = Vf;
            ldk = hd;
        } else {
            K = a->k + s0 * a->ldkv + h * hd;
            V = a->v + s0 * a->ldkv + h * hd;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)nk, (int)hd, 1.0f, Q,
                    (int)hd, K, (int)ldk, 0.0f, S, (int)nk);
        for (int64_t r = 0; r < R; r++) {
            float *srow = S + r * nk;
            int64_t pos = a->pos0 + t0 + r / G;
            int64_t c = pos - s0 + 1; /* keys of this block visible to the row */
            if (c > nk) c = nk;
            if (c <= 0) {
                memset(srow, 0, (size_t)nk * sizeof(float));
                continue;
            }
            float mx = srow[0];
            for (int64_t i = 1; i < c; i++)
                if (srow[i] > mx) mx = srow[i];
            float m_new = mx > M[r] ? mx : M[r];
            float corr = expf(M[r] - m_new);
            float sum = exp_shift_sum(srow, srow, m_new, c);
            for (int64_t i = c; i < nk; i++)
                srow[i] = 0;
            L[r] = L[r] * corr + sum;
            M[r] = m_new;
            if (corr != 1.0f) {
                float *orow = O + r * hd;
                for (int64_t d = 0; d < hd; d++)
                    orow[d] *= corr;
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)hd, (int)nk, 1.0f, S,
                    (int)nk, V, (int)ldk, 1.0f, O, (int)hd);
    }
    for (int64_t t = t0; t < t1; t++)
        for (int64_t g = 0; g < G; g++) {
            int64_t r = (t - t0) * G + g;
            float inv = 1.0f / L[r];
            float *dst = a->o + t * a->ldo + (h * G + g) * hd;
            for (int64_t d = 0; d < hd; d++)
                dst[d] = O[r * hd + d] * inv;
        }
}

static void att_chunk(void *arg, int64_t b, int64_t e, int worker) {
    const att_job *j = arg;
    float *ws = j->scratch + (size_t)worker * (size_t)j->scratch_elems;
    for (int64_t task = b; task < e; task++)
        att_task(j, task, ws);
}

comi_status ops_attention(comi_err *e, comi_pool *pool, const ops_attn_args *a) {
    if (a->n <= 0) return COMI_OK;
    if (a->n_kv_head < 1 || a->n_head % a->n_kv_head != 0 || a->pos0 < 0 ||
        a->pos0 + a->n > a->n_kv)
        return comi_err_set(e, COMI_ERR_INTERNAL,
                            "attention: bad shape (heads %lld/%lld, pos0 %lld, n %lld, n_kv %lld)",
                            (long long)a->n_head, (long long)a->n_kv_head, (long long)a->pos0,
                            (long long)a->n, (long long)a->n_kv);
    att_job j = {.a = a, .group = a->n_head / a->n_kv_head};
    j.n_qblocks = (a->n + ATT_BQ - 1) / ATT_BQ;
    int64_t rows = ATT_BQ * j.group;
    j.scratch_elems =
        rows * (2 * a->head_dim + ATT_BK + 2) + (a->k16 ? 2 * ATT_BK * a->head_dim : 0);
    int nt = pool_threads(pool);
    float *own = NULL;
    size_t bytes;
    if (!comi_mul3_size((size_t)nt, (size_t)j.scratch_elems, sizeof(float), &bytes))
        return comi_err_set(e, COMI_ERR_LIMIT, "attention scratch: size overflows");
    if (pool) { /* reused across layers and steps */
        j.scratch = pool_scratch(pool, POOL_SCRATCH_ATTN, bytes);
        if (!j.scratch) return comi_err_set(e, COMI_ERR_NOMEM, "attention scratch: out of memory");
    } else {
        j.scratch = own = comi_alloc_array(e, (size_t)nt, (size_t)j.scratch_elems * sizeof(float),
                                           "attention scratch");
        if (!j.scratch) return e ? e->status : COMI_ERR_NOMEM;
    }
    ops_blas_enter();
    pool_for(pool, a->n_kv_head * j.n_qblocks, 1, att_chunk, &j);
    ops_blas_leave();
    free(own);
    return COMI_OK;
}
