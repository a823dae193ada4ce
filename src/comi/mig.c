/*
 * mig.c — the merge stage: relevance, redundancy, coarse group reallocation
 * and fine MIG-weighted merging of one segment's hidden states into memory
 * vectors.
 *
 * Mirrors the authors' GroupReallocator.reallocate_group_size (coarse stage)
 * and TKDR.compress_by_mrmr (fine stage) as DESIGN.md "The merge, exactly"
 * specifies them, including the documented deviation: fine redundancy is
 * max(0, max cosine to the other tokens of the group) in every group.
 *
 * Numerics: relevance (which picks the coarse representatives) comes from
 * dot products accumulated in double (mig_dot2); the redundancy cosines use
 * float32 fused multiply-adds (mig_dotf_2x4 inside groups, OpenBLAS sgemm
 * between representatives, on rows normalised in double); scores, softmaxes,
 * quotas and the memory vectors are double until the final rounding.
 * Work is split by output (token rows, groups, column blocks) and every sum
 * runs in a fixed order, so results are bit-identical for any thread count.
 */
#include "comi/mig.h"

#include "base/common.h"
#include "base/pool.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define MIG_AVX2 1
#else
#define MIG_AVX2 0
#endif

/* Norms below this are clamped, as F.normalize(eps=1e-12) does. */
#define MIG_NORM_EPS 1e-12
/* Groups longer than this get their redundancy and weighted sum split over
 * threads; shorter ones are one task each (their rows stay in cache). */
#define MIG_SMALL_GROUP 256
/* Rows of the representative cosine matrix computed per ssyrk/sgemm step;
 * bounds the scratch to MIG_GRAM_BLOCK x n_groups floats. */
#define MIG_GRAM_BLOCK 256
/* Below this norm a float32 dot product cannot overflow: every product and
 * partial sum is at most |x| |y| <= 1e36 < FLT_MAX (Cauchy-Schwarz). */
#define MIG_F32_DOT_MAX_NORM 1e18
/* Columns per task when one long group's weighted sum is split. */
#define MIG_COL_BLOCK 512
/* Columns of a memory row accumulated at a time (4 KiB of doubles). */
#define MIG_SUM_BLOCK 512

/* ------------------------------------------------------------------------ */
/* Kernels                                                                  */
/* ------------------------------------------------------------------------ */

/* The fixed reduction of the 8 lanes: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). */
static double reduce8(const double acc[8]) {
    double v0 = acc[0] + acc[4], v1 = acc[1] + acc[5], v2 = acc[2] + acc[6], v3 = acc[3] + acc[7];
    return (v0 + v2) + (v1 + v3);
}

static float reduce8f(const float acc[8]) {
    float v0 = acc[0] + acc[4], v1 = acc[1] + acc[5], v2 = acc[2] + acc[6], v3 = acc[3] + acc[7];
    return (v0 + v2) + (v1 + v3);
}

double mig_dot_ref(const float *x, const float *y, int64_t d) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t d8 = d - d % 8;
    for (int64_t i = 0; i < d8; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += (double)x[i + l] * (double)y[i + l];
    double s = reduce8(acc);
    for (int64_t i = d8; i < d; i++)
        s += (double)x[i] * (double)y[i];
    return s;
}

float mig_dotf_ref(const float *x, const float *y, int64_t d) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t d8 = d - d % 8;
    for (int64_t i = 0; i < d8; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] = fmaf(x[i + l], y[i + l], acc[l]);
    float s = reduce8f(acc);
    for (int64_t i = d8; i < d; i++)
        s = fmaf(x[i], y[i], s);
    return s;
}

void mig_axpy_ref(double *acc, double w, const float *x, int64_t d) {
    for (int64_t c = 0; c < d; c++)
        acc[c] = fma(w, (double)x[c], acc[c]);
}

#if MIG_AVX2
static inline __m256d load4(const float *p) {
    return _mm256_cvtps_pd(_mm_loadu_ps(p));
}

/* Lanes 0-3 in lo, 4-7 in hi; same reduction as reduce8. */
static inline double reduce_lohi(__m256d lo, __m256d hi) {
    __m256d v = _mm256_add_pd(lo, hi); /* v0..v3 */
    __m128d h =
        _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1)); /* v0+v2, v1+v3 */
    return _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));
}

/* Same reduction as reduce8f. */
static inline float reduce_ps(__m256 a) {
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)); /* v0..v3 */
    __m128 h = _mm_add_ps(v, _mm_movehl_ps(v, v)); /* v0+v2, v1+v3 */
    return _mm_cvtss_f32(h) + _mm_cvtss_f32(_mm_shuffle_ps(h, h, 1));
}

double mig_dot(const float *x, const float *y, int64_t d) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int64_t d8 = d - d % 8;
    for (int64_t i = 0; i < d8; i += 8) {
        lo = _mm256_fmadd_pd(load4(x + i), load4(y + i), lo);
        hi = _mm256_fmadd_pd(load4(x + i + 4), load4(y + i + 4), hi);
    }
    double s = reduce_lohi(lo, hi);
    for (int64_t i = d8; i < d; i++)
        s += (double)x[i] * (double)y[i];
    return s;
}

void mig_dot2(const float *x, const float *y0, const float *y1, int64_t d, double out[2]) {
    __m256d l0 = _mm256_setzero_pd(), h0 = l0, l1 = l0, h1 = l0;
    int64_t d8 = d - d % 8;
    for (int64_t i = 0; i < d8; i += 8) {
        __m256d xl = load4(x + i), xh = load4(x + i + 4);
        l0 = _mm256_fmadd_pd(xl, load4(y0 + i), l0);
        h0 = _mm256_fmadd_pd(xh, load4(y0 + i + 4), h0);
        l1 = _mm256_fmadd_pd(xl, load4(y1 + i), l1);
        h1 = _mm256_fmadd_pd(xh, load4(y1 + i + 4), h1);
    }
    double s0 = reduce_lohi(l0, h0), s1 = reduce_lohi(l1, h1);
    for (int64_t i = d8; i < d; i++) {
        s0 += (double)x[i] * (double)y0[i];
        s1 += (double)x[i] * (double)y1[i];
    }
    out[0] = s0;
    out[1] = s1;
}

void mig_dotf_2x4(const float *const x[2], const float *const y[4], int64_t d, float out[8]) {
    const float *x0 = x[0], *x1 = x[1], *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3];
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00,
           a12 = a00, a13 = a00;
    int64_t d8 = d - d % 8;
    for (int64_t i = 0; i < d8; i += 8) {
        __m256 u = _mm256_loadu_ps(x0 + i), v = _mm256_loadu_ps(x1 + i), t;
        t = _mm256_loadu_ps(y0 + i);
        a00 = _mm256_fmadd_ps(u, t, a00);
        a10 = _mm256_fmadd_ps(v, t, a10);
        t = _mm256_loadu_ps(y1 + i);
        a01 = _mm256_fmadd_ps(u, t, a01);
        a11 = _mm256_fmadd_ps(v, t, a11);
        t = _mm256_loadu_ps(y2 + i);
        a02 = _mm256_fmadd_ps(u, t, a02);
        a12 = _mm256_fmadd_ps(v, t, a12);
        t = _mm256_loadu_ps(y3 + i);
        a03 = _mm256_fmadd_ps(u, t, a03);
        a13 = _mm256_fmadd_ps(v, t, a13);
    }
    float s[8] = {reduce_ps(a00), reduce_ps(a01), reduce_ps(a02), reduce_ps(a03),
                  reduce_ps(a10), reduce_ps(a11), reduce_ps(a12), reduce_ps(a13)};
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 4; c++) {
            for (int64_t i = d8; i < d; i++)
                s[r * 4 + c] = fmaf(x[r][i], y[c][i], s[r * 4 + c]);
            out[r * 4 + c] = s[r * 4 + c];
        }
}

void mig_axpy(double *acc, double w, const float *x, int64_t d) {
    __m256d wv = _mm256_set1_pd(w);
    int64_t d4 = d - d % 4;
    for (int64_t c = 0; c < d4; c += 4)
        _mm256_storeu_pd(acc + c, _mm256_fmadd_pd(wv, load4(x + c), _mm256_loadu_pd(acc + c)));
    for (int64_t c = d4; c < d; c++)
        acc[c] = fma(w, (double)x[c], acc[c]);
}
#else
double mig_dot(const float *x, const float *y, int64_t d) {
    return mig_dot_ref(x, y, d);
}

void mig_dot2(const float *x, const float *y0, const float *y1, int64_t d, double out[2]) {
    out[0] = mig_dot_ref(x, y0, d);
    out[1] = mig_dot_ref(x, y1, d);
}

void mig_dotf_2x4(const float *const x[2], const float *const y[4], int64_t d, float out[8]) {
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 4; c++)
            out[r * 4 + c] = mig_dotf_ref(x[r], y[c], d);
}

void mig_axpy(double *acc, double w, const float *x, int64_t d) {
    mig_axpy_ref(acc, w, x, d);
}
#endif

/* ------------------------------------------------------------------------ */
/* Parameters and results                                                   */
/* ------------------------------------------------------------------------ */

comi_merge_params comi_merge_default_params(void) {
    comi_merge_params p = {
        .merge_size = 16,
        .alpha_select = 1.0f,
        .beta_select = 1.0f,
        .alpha_merge = 1.0f,
        .beta_merge = 1.0f,
        .coarse = true,
        .fine = true,
        .coarse_redundancy = true,
        .fine_redundancy = true,
    };
    return p;
}

void comi_merge_result_free(comi_merge_result *res) {
    if (!res) return;
    free(res->group_sizes);
    free(res->group_rep);
    free(res->group_relevance);
    free(res->group_redundancy);
    free(res->group_score);
    free(res->memory);
    free(res->memory_start);
    free(res->memory_len);
    free(res->relevance);
    free(res->redundancy);
    free(res->score);
    free(res->weight);
    free(res->memory_index);
    memset(res, 0, sizeof *res);
}

/* ------------------------------------------------------------------------ */
/* Relevance                                                                */
/* ------------------------------------------------------------------------ */

/* Shared, read-only inputs and per-token scratch of one merge call. */
typedef struct {
    const float *h; /* (n, d) hidden states */
    const float *q; /* (d,) query */
    int64_t n, d;
    double q_den;  /* max(||q||, eps) */
    double *den;   /* (n,) max(||H_i||, eps); NaN marks a row with a non-finite value */
    double *rel;   /* (n,) cos(H_i, q) */
    double *red;   /* (n,) fine redundancy */
    double *w;     /* (n,) fine weights */
    double *acc;   /* (n_threads, MIG_SUM_BLOCK) per-worker accumulators */
    float *memory; /* (n_memory, d) output */
    const int64_t *mem_start, *mem_len; /* (n_memory,) spans */
    double a_m, b_m;
    bool fine, fine_red;
    /* coarse representatives */
    const int64_t *rep; /* (G,) */
    float *reps;        /* (G, d) normalised representative rows */
    /* one long group being processed by the split path */
    int64_t big_start, big_len, big_mem;
} merge_job;

/* den[i] and rel[i] for rows [b, e): ||H_i|| and H_i . q in one sweep. */
static void relevance_rows(void *arg, int64_t b, int64_t e, int worker) {
    (void)worker;
    merge_job *J = arg;
    for (int64_t i = b; i < e; i++) {
        const float *hi = J->h + i * J->d;
        double o[2];
        mig_dot2(hi, hi, J->q, J->d, o);
        if (!isfinite(o[0])) { /* sum of squares of finite floats cannot overflow */
            J->den[i] = NAN;
            J->rel[i] = 0;
            continue;
        }
        double den = fmax(sqrt(o[0]), MIG_NORM_EPS);
        J->den[i] = den;
        J->rel[i] = o[1] / (den * J->q_den);
    }
}

/* ------------------------------------------------------------------------ */
/* Coarse stage                                                             */
/* ------------------------------------------------------------------------ */

/* reps[g] = H_rep[g] / den, rounded to float32 (the F.normalize rows). */
static void normalise_reps(void *arg, int64_t b, int64_t e, int worker) {
    (void)worker;
    merge_job *J = arg;
    for (int64_t g = b; g < e; g++) {
        const float *src = J->h + J->rep[g] * J->d;
        float *dst = J->reps + g * J->d;
        double den = J->den[J->rep[g]];
        for (int64_t c = 0; c < J->d; c++)
            dst[c] = (float)((double)src[c] / den);
    }
}

/* Folds the cosines of a block of representative pairs into the running
 * maxima: c (rows x cols, row stride cols) holds reps[r0 + i] . reps[c0 + j];
 * only pairs with c0 + j > r0 + i are used (the upper triangle). */
static void fold_rep_cos(const float *c, int64_t rows, int64_t cols, int64_t r0, int64_t c0,
                         double *red) {
    for (int64_t i = 0; i < rows; i++) {
        const float *row = c + i * cols;
        double m = red[r0 + i];
        for (int64_t j = r0 + i + 1 > c0 ? r0 + i + 1 - c0 : 0; j < cols; j++) {
            double v = row[j];
            if (v > m) m = v;
            if (v > red[c0 + j]) red[c0 + j] = v;
        }
        red[r0 + i] = m;
    }
}

/* red[g] = max over h != g of cos(rep g, rep h), G >= 2. The upper triangle
 * of the G x G cosine matrix is computed in row blocks of MIG_GRAM_BLOCK:
 * ssyrk for the block's own triangle, sgemm for the block against the later
 * representatives, so every pair is computed once and the scratch stays at
 * MIG_GRAM_BLOCK x n_groups floats. max is exact, so the order of the
 * updates does not matter. */
static comi_status coarse_redundancy(comi_ctx *ctx, merge_job *J, int64_t G, double *red) {
    comi_err *e = &ctx->err;
    int64_t d = J->d;
    if (G > INT_MAX || d > INT_MAX)
        return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                            "merge: %lld groups of dimension %lld exceed the BLAS int range",
                            (long long)G, (long long)d);
    int64_t blk = MIG_GRAM_BLOCK < G ? MIG_GRAM_BLOCK : G;
    J->reps = comi_alloc_array(e, (size_t)G * (size_t)d, sizeof(float), "merge representatives");
    /* cos_blk: (blk, blk) block triangle, then (blk, G - blk) block x later */
    float *cos_blk = comi_calloc_array(e, (size_t)blk * (size_t)G, sizeof(float),
                                       "merge representative cosines");
    if (!J->reps || !cos_blk) {
        free(J->reps);
        J->reps = NULL;
        free(cos_blk);
        return e->status;
    }
    pool_for(comi_ctx_pool(ctx), G, 16, normalise_reps, J);
    for (int64_t g = 0; g < G; g++)
        red[g] = -INFINITY;
    float *tri = cos_blk, *rect = cos_blk + blk * blk;
    for (int64_t b = 0; b < G; b += blk) {
        int64_t rows = G - b < blk ? G - b : blk, rest = G - b - rows;
        const float *rb = J->reps + b * d;
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)rows, (int)d, 1.0f, rb, (int)d,
                    0.0f, tri, (int)rows);
        fold_rep_cos(tri, rows, rows, b, b, red);
        if (rest > 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)rest, (int)d, 1.0f,
                        rb, (int)d, rb + rows * d, (int)d, 0.0f, rect, (int)rest);
            fold_rep_cos(rect, rows, rest, b, b + rows, red);
        }
    }
    free(cos_blk);
    free(J->reps);
    J->reps = NULL;
    return COMI_OK;
}

typedef struct {
    double frac;
    int64_t g;
} frac_rank;

/* Larger fractional part first; lower index first on ties. */
static int cmp_frac(const void *pa, const void *pb) {
    const frac_rank *a = pa, *b = pb;
    if (a->frac != b->frac) return a->frac > b->frac ? -1 : 1;
    return (a->g > b->g) - (a->g < b->g);
}

/* Sizes from quota_g = n * softmax(-score)_g: floors, plus one token for the
 * n - sum(floors) groups with the largest fractional parts. */
static comi_status sizes_from_scores(comi_err *e, const double *score, int64_t G, int64_t n,
                                     int32_t *sizes) {
    frac_rank *fr = comi_alloc_array(e, (size_t)G, sizeof *fr, "merge quotas");
    if (!fr) return e->status;
    double mx = -INFINITY, sum = 0;
    for (int64_t g = 0; g < G; g++)
        mx = fmax(mx, -score[g]);
    for (int64_t g = 0; g < G; g++) {
        fr[g].frac = exp(-score[g] - mx);
        sum += fr[g].frac;
    }
    int64_t total = 0;
    for (int64_t g = 0; g < G; g++) {
        double quota = (double)n * (fr[g].frac / sum);
        double fl = floor(quota);
        sizes[g] = (int32_t)fl;
        total += sizes[g];
        fr[g].frac = quota - fl;
        fr[g].g = g;
    }
    int64_t rem = n - total;
    if (rem < 0 || rem > G) {
        free(fr);
        return comi_err_set(e, COMI_ERR_INTERNAL,
                            "merge: quotas of %lld groups floor to %lld of %lld tokens",
                            (long long)G, (long long)total, (long long)n);
    }
    qsort(fr, (size_t)G, sizeof *fr, cmp_frac);
    for (int64_t r = 0; r < rem; r++)
        sizes[fr[r].g]++;
    free(fr);
    return COMI_OK;
}

/* Coarse stage on: fills res->group_* (n_groups already set). */
static comi_status coarse_stage(comi_ctx *ctx, merge_job *J, const comi_merge_params *p,
                                comi_merge_result *res) {
    int64_t G = res->n_groups, n = J->n, m = p->merge_size;
    if (G == 1) {
        res->group_sizes[0] = (int32_t)n;
        res->group_rep[0] = -1;
        return COMI_OK;
    }
    int64_t *rep = comi_alloc_array(&ctx->err, (size_t)G, sizeof *rep, "merge groups");
    double *red = comi_calloc_array(&ctx->err, (size_t)G, sizeof *red, "merge groups");
    double *score = comi_alloc_array(&ctx->err, (size_t)G, sizeof *score, "merge groups");
    comi_status st = ctx->err.status;
    if (rep && red && score) {
        for (int64_t g = 0; g < G; g++) {
            int64_t b = g * m, e = b + m < n ? b + m : n, best = b;
            for (int64_t i = b + 1; i < e; i++)
                if (J->rel[i] > J->rel[best]) best = i;
            rep[g] = best;
        }
        J->rep = rep;
        st = p->coarse_redundancy ? coarse_redundancy(ctx, J, G, red) : COMI_OK;
        J->rep = NULL;
    }
    if (st == COMI_OK) {
        for (int64_t g = 0; g < G; g++) {
            double grel = J->rel[rep[g]];
            score[g] = (double)p->alpha_select * grel - (double)p->beta_select * red[g];
            res->group_rep[g] = rep[g];
            res->group_relevance[g] = (float)grel;
            res->group_redundancy[g] = (float)red[g];
            res->group_score[g] = (float)score[g];
        }
        st = sizes_from_scores(&ctx->err, score, G, n, res->group_sizes);
    }
    free(rep);
    free(red);
    free(score);
    return st;
}

/* Coarse stage off: G = max(1, round_half_even(n / m)) groups of n // G
 * tokens, the first n % G one longer. */
static int64_t uniform_group_count(int64_t n, int64_t m) {
    int64_t G = n / m, r = n % m;
    if (r > m - r || (r == m - r && G % 2 == 1)) G++; /* 2r vs m without overflow */
    return G < 1 ? 1 : G;
}

/* ------------------------------------------------------------------------ */
/* Fine stage                                                               */
/* ------------------------------------------------------------------------ */

static inline double pair_cos(const merge_job *J, int64_t i, int64_t j, double dot) {
    return dot / (J->den[i] * J->den[j]);
}

/* w[s..s+k) = softmax(a_m * rel - b_m * red) over one group (fine on). */
static void group_weights(merge_job *J, int64_t s, int64_t k) {
    double mx = -INFINITY, sum = 0;
    for (int64_t j = s; j < s + k; j++) {
        J->w[j] = J->a_m * J->rel[j] - J->b_m * J->red[j];
        mx = fmax(mx, J->w[j]);
    }
    for (int64_t j = s; j < s + k; j++) {
        J->w[j] = exp(J->w[j] - mx);
        sum += J->w[j];
    }
    for (int64_t j = s; j < s + k; j++)
        J->w[j] /= sum;
}

/* Memory columns [c0, c1) of memory row `mem` spanning tokens [s, s+k), in
 * column blocks so the accumulator stays in L1; each element still sums its
 * tokens in index order. */
static void group_sum(merge_job *J, int64_t mem, int64_t s, int64_t k, int64_t c0, int64_t c1,
                      double *acc) {
    float *out = J->memory + mem * J->d;
    for (int64_t cb = c0; cb < c1; cb += MIG_SUM_BLOCK) {
        int64_t w = c1 - cb < MIG_SUM_BLOCK ? c1 - cb : MIG_SUM_BLOCK;
        memset(acc, 0, (size_t)w * sizeof *acc);
        for (int64_t j = s; j < s + k; j++)
            mig_axpy(acc, J->fine ? J->w[j] : 1.0, J->h + j * J->d + cb, w);
        if (J->fine)
            for (int64_t c = 0; c < w; c++)
                out[cb + c] = (float)acc[c];
        else
            for (int64_t c = 0; c < w; c++)
                out[cb + c] = (float)(acc[c] / (double)k);
    }
}

/* Fine redundancy of the group [s, s + k), rows [r0, r1) (relative to s)
 * against the group's other rows: for every pair (row, col) with col > row
 * when upper (red[col] is updated too), or every col != row otherwise, the
 * cosine is folded into the running max red[row]. Rows go two at a time, columns four at a time
 * through mig_dotf_2x4; the ragged edges repeat the last row/column and
 * ignore those results (every kernel slot rounds identically). Groups with
 * huge rows (whose float32 products could overflow) use mig_dot instead. */
static void fold_pair_cos(merge_job *J, int64_t s, int64_t k, int64_t r0, int64_t r1, bool upper) {
    const int64_t d = J->d;
    bool wide = false; /* a float32 dot product could overflow: use the double kernel */
    for (int64_t t = s; t < s + k; t++)
        wide |= J->den[t] > MIG_F32_DOT_MAX_NORM;
    for (int64_t i = r0; i < r1; i += 2) {
        int64_t rows[2] = {i, i + 1 < r1 ? i + 1 : i};
        const float *x[2] = {J->h + (s + rows[0]) * d, J->h + (s + rows[1]) * d};
        for (int64_t j = upper ? i + 1 : 0; j < k; j += 4) {
            const float *y[4];
            for (int c = 0; c < 4; c++)
                y[c] = J->h + (s + (j + c < k ? j + c : k - 1)) * d;
            double o[8];
            if (wide) {
                for (int t = 0; t < 8; t++)
                    o[t] = mig_dot(x[t / 4], y[t % 4], d);
            } else {
                float of[8];
                mig_dotf_2x4(x, y, d, of);
                for (int t = 0; t < 8; t++)
                    o[t] = of[t];
            }
            for (int r = 0; r < (rows[1] != rows[0] ? 2 : 1); r++) {
                int64_t a = s + rows[r];
                for (int c = 0; c < 4 && j + c < k; c++) {
                    int64_t col = j + c, b = s + col;
                    if (col == rows[r] || (upper && col < rows[r])) continue;
                    double cs = pair_cos(J, a, b, o[r * 4 + c]);
                    if (cs > J->red[a]) J->red[a] = cs;
                    if (upper && cs > J->red[b]) J->red[b] = cs;
                }
            }
        }
    }
}

/* Short groups, one task each: pairwise cosines (upper triangle), weights,
 * weighted sum, all while the group's rows are in cache. */
static void small_groups(void *arg, int64_t b, int64_t e, int worker) {
    merge_job *J = arg;
    double *acc = J->acc + (int64_t)worker * MIG_SUM_BLOCK;
    for (int64_t mem = b; mem < e; mem++) {
        int64_t s = J->mem_start[mem], k = J->mem_len[mem];
        if (k > MIG_SMALL_GROUP) continue;
        if (J->fine) {
            bool pairs = k > 1 && J->fine_red;
            for (int64_t j = s; j < s + k; j++)
                J->red[j] = pairs ? -INFINITY : 0;
            if (pairs) {
                fold_pair_cos(J, s, k, 0, k, true);
                for (int64_t j = s; j < s + k; j++)
                    J->red[j] = fmax(J->red[j], 0.0);
            }
            group_weights(J, s, k);
        }
        group_sum(J, mem, s, k, 0, J->d, acc);
    }
}

/* Long group, split by rows: each row against the whole group. */
static void big_group_red(void *arg, int64_t b, int64_t e, int worker) {
    (void)worker;
    merge_job *J = arg;
    int64_t s = J->big_start, k = J->big_len;
    for (int64_t i = s + b; i < s + e; i++)
        J->red[i] = -INFINITY;
    fold_pair_cos(J, s, k, b, e, false);
    for (int64_t i = s + b; i < s + e; i++)
        J->red[i] = fmax(J->red[i], 0.0);
}

/* Long group, split by column blocks of the memory row. */
static void big_group_sum(void *arg, int64_t b, int64_t e, int worker) {
    merge_job *J = arg;
    double *acc = J->acc + (int64_t)worker * MIG_SUM_BLOCK;
    for (int64_t blk = b; blk < e; blk++) {
        int64_t c0 = blk * MIG_COL_BLOCK,
                c1 = c0 + MIG_COL_BLOCK < J->d ? c0 + MIG_COL_BLOCK : J->d;
        group_sum(J, J->big_mem, J->big_start, J->big_len, c0, c1, acc);
    }
}

static void fine_stage(comi_pool *pool, merge_job *J, int64_t n_memory) {
    int nt = pool_threads(pool);
    int64_t grain = n_memory / (8 * (int64_t)nt);
    pool_for(pool, n_memory, grain < 1 ? 1 : grain, small_groups, J);
    for (int64_t mem = 0; mem < n_memory; mem++) {
        int64_t s = J->mem_start[mem], k = J->mem_len[mem];
        if (k <= MIG_SMALL_GROUP) continue;
        J->big_start = s;
        J->big_len = k;
        J->big_mem = mem;
        if (J->fine) {
            if (J->fine_red)
                pool_for(pool, k, 4, big_group_red, J);
            else
                for (int64_t j = s; j < s + k; j++)
                    J->red[j] = 0;
            group_weights(J, s, k);
        }
        pool_for(pool, (J->d + MIG_COL_BLOCK - 1) / MIG_COL_BLOCK, 1, big_group_sum, J);
    }
}

/* ------------------------------------------------------------------------ */
/* The merge                                                                */
/* ------------------------------------------------------------------------ */

static comi_status check_args(comi_err *e, const float *hidden, int64_t n, int64_t d,
                              const float *query, const comi_merge_params *p) {
    if (!hidden) return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge: hidden states are NULL");
    if (!query) return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge: query is NULL");
    if (n < 1 || n > INT32_MAX)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge: n_tokens = %lld, must be in [1, %d]",
                            (long long)n, INT32_MAX);
    if (d < 1)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge: d_model = %lld, must be >= 1",
                            (long long)d);
    if (p->merge_size < 1)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge: merge_size = %lld, must be >= 1",
                            (long long)p->merge_size);
    const float wv[4] = {p->alpha_select, p->beta_select, p->alpha_merge, p->beta_merge};
    static const char *const wn[4] = {"alpha_select", "beta_select", "alpha_merge", "beta_merge"};
    for (int i = 0; i < 4; i++)
        if (!isfinite(wv[i]))
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge: %s = %g is not finite", wn[i],
                                (double)wv[i]);
    size_t bytes;
    if (!comi_mul3_size((size_t)n, (size_t)d, sizeof(float), &bytes) || bytes > PTRDIFF_MAX)
        return comi_err_set(e, COMI_ERR_LIMIT, "merge: %lld x %lld hidden states overflow",
                            (long long)n, (long long)d);
    for (int64_t c = 0; c < d; c++)
        if (!isfinite(query[c]))
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge: query[%lld] = %g is not finite",
                                (long long)c, (double)query[c]);
    return COMI_OK;
}

/* Allocates every array of res once n_groups is known (n_memory later). */
static comi_status alloc_result(comi_err *e, comi_merge_result *res) {
    size_t n = (size_t)res->n_tokens, G = (size_t)res->n_groups;
    res->group_sizes = comi_calloc_array(e, G, sizeof(int32_t), "merge group sizes");
    res->group_rep = comi_calloc_array(e, G, sizeof(int64_t), "merge group sizes");
    res->group_relevance = comi_calloc_array(e, G, sizeof(float), "merge group sizes");
    res->group_redundancy = comi_calloc_array(e, G, sizeof(float), "merge group sizes");
    res->group_score = comi_calloc_array(e, G, sizeof(float), "merge group sizes");
    res->relevance = comi_calloc_array(e, n, sizeof(float), "merge token scores");
    res->redundancy = comi_calloc_array(e, n, sizeof(float), "merge token scores");
    res->score = comi_calloc_array(e, n, sizeof(float), "merge token scores");
    res->weight = comi_calloc_array(e, n, sizeof(float), "merge token scores");
    res->memory_index = comi_calloc_array(e, n, sizeof(int64_t), "merge token scores");
    bool ok = res->group_sizes && res->group_rep && res->group_relevance && res->group_redundancy &&
              res->group_score && res->relevance && res->redundancy && res->score && res->weight &&
              res->memory_index;
    return ok ? COMI_OK : e->status;
}

static int64_t group_count(int64_t n, const comi_merge_params *p) {
    int64_t m = p->merge_size;
    return p->coarse ? n / m + (n % m != 0) : uniform_group_count(n, m);
}

uint64_t mig_merge_bytes(int64_t n, int64_t d, const comi_merge_params *p, int32_t n_threads) {
    if (n < 1 || d < 1 || p->merge_size < 1 || n_threads < 1) return 0;
    uint64_t G = (uint64_t)group_count(n, p), un = (uint64_t)n, ud = (uint64_t)d;
    /* result: group_sizes/rep/relevance/redundancy/score (4+8+4+4+4 per group),
     * relevance/redundancy/score/weight/memory_index (4+4+4+4+8 per token),
     * at most G memory vectors with start and length */
    uint64_t b = comi_add_sat(comi_mul_sat(G, 24), comi_mul_sat(un, 24));
    b = comi_add_sat(b, comi_mul_sat(G, comi_add_sat(16, comi_mul_sat(ud, sizeof(float)))));
    /* scratch: den, rel, red, w per token, MIG_SUM_BLOCK doubles per worker */
    b = comi_add_sat(
        b, comi_mul_sat(comi_add_sat(comi_mul_sat(un, 4), (uint64_t)n_threads * MIG_SUM_BLOCK),
                        sizeof(double)));
    if (p->coarse && G > 1) {
        /* rep/red/score and quotas per group; normalised representatives
         * (G x d) and the MIG_GRAM_BLOCK x G cosine block */
        uint64_t blk = G < MIG_GRAM_BLOCK ? G : MIG_GRAM_BLOCK;
        b = comi_add_sat(b, comi_mul_sat(G, 24 + sizeof(frac_rank)));
        b = comi_add_sat(b, comi_mul_sat(comi_mul_sat(G, ud), sizeof(float)));
        b = comi_add_sat(b, comi_mul_sat(comi_mul_sat(blk, G), sizeof(float)));
    }
    return b;
}

comi_status comi_merge(comi_ctx *ctx, const float *hidden, int64_t n_tokens, int64_t d_model,
                       const float *query, const comi_merge_params *params,
                       comi_merge_result *out) {
    return mig_merge(ctx, hidden, n_tokens, d_model, query, params, true, out);
}

comi_status mig_merge(comi_ctx *ctx, const float *hidden, int64_t n_tokens, int64_t d_model,
                      const float *query, const comi_merge_params *params, bool check_limits,
                      comi_merge_result *out) {
    if (!ctx) return COMI_ERR_INVALID_ARG;
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!out) return comi_err_set(e, COMI_ERR_INVALID_ARG, "merge: result pointer is NULL");
    memset(out, 0, sizeof *out);
    comi_merge_params def = comi_merge_default_params();
    const comi_merge_params *p = params ? params : &def;
    comi_status st = check_args(e, hidden, n_tokens, d_model, query, p);
    if (st != COMI_OK) return st;
    if (check_limits) {
        char what[96];
        snprintf(what, sizeof what, "merge of %lld x %lld hidden states", (long long)n_tokens,
                 (long long)d_model);
        if ((st = comi_check_tokens(ctx, "merge context", n_tokens)) ||
            (st = comi_check_bytes(ctx, what, mig_merge_bytes(n_tokens, d_model, p, ctx->n_threads),
                                   0, NULL)))
            return st;
    }

    int64_t n = n_tokens, d = d_model;
    comi_merge_result res = {.n_tokens = n, .d_model = d};
    res.n_groups = group_count(n, p);
    merge_job J = {.h = hidden,
                   .q = query,
                   .n = n,
                   .d = d,
                   .a_m = p->alpha_merge,
                   .b_m = p->beta_merge,
                   .fine = p->fine,
                   .fine_red = p->fine && p->fine_redundancy};
    comi_pool *pool = comi_ctx_pool(ctx);
    if (!pool) return e->status;
    int nt = pool_threads(pool);
    double *scratch = NULL;
    if ((st = alloc_result(e, &res)) != COMI_OK) goto fail;
    /* scratch: den, rel, red, w (n each), then the per-worker accumulators */
    size_t n_scratch;
    if (!comi_add_size(4 * (size_t)n, (size_t)nt * MIG_SUM_BLOCK, &n_scratch)) {
        st = comi_err_set(e, COMI_ERR_LIMIT, "merge: scratch size overflows");
        goto fail;
    }
    scratch = comi_calloc_array(e, n_scratch, sizeof(double), "merge scratch");
    if (!scratch) {
        st = e->status;
        goto fail;
    }
    J.den = scratch;
    J.rel = scratch + n;
    J.red = scratch + 2 * n;
    J.w = scratch + 3 * n;
    J.acc = scratch + 4 * n;

    J.q_den = fmax(sqrt(mig_dot(query, query, d)), MIG_NORM_EPS);
    pool_for(pool, n, 64, relevance_rows, &J);
    for (int64_t i = 0; i < n; i++) {
        if (!isnan(J.den[i])) continue;
        for (int64_t c = 0; c < d; c++)
            if (!isfinite(hidden[i * d + c])) {
                st = comi_err_set(e, COMI_ERR_INVALID_ARG,
                                  "merge: hidden[%lld][%lld] = %g is not finite", (long long)i,
                                  (long long)c, (double)hidden[i * d + c]);
                goto fail;
            }
    }

    /* group sizes */
    if (p->coarse) {
        if ((st = coarse_stage(ctx, &J, p, &res)) != COMI_OK) goto fail;
    } else {
        int64_t G = res.n_groups;
        for (int64_t g = 0; g < G; g++) {
            res.group_sizes[g] = (int32_t)(n / G + (g < n % G));
            res.group_rep[g] = -1;
        }
    }

    /* layout: non-empty groups as consecutive spans from token 0 */
    for (int64_t g = 0; g < res.n_groups; g++)
        res.n_memory += res.group_sizes[g] > 0;
    res.memory_start = comi_alloc_array(e, (size_t)res.n_memory, sizeof(int64_t), "merge spans");
    res.memory_len = comi_alloc_array(e, (size_t)res.n_memory, sizeof(int64_t), "merge spans");
    res.memory =
        comi_alloc_array(e, (size_t)res.n_memory * (size_t)d, sizeof(float), "merge memory");
    if (!res.memory_start || !res.memory_len || !res.memory) {
        st = e->status;
        goto fail;
    }
    int64_t pos = 0, mem = 0;
    for (int64_t g = 0; g < res.n_groups; g++) {
        int64_t k = res.group_sizes[g];
        if (k == 0) continue;
        res.memory_start[mem] = pos;
        res.memory_len[mem] = k;
        for (int64_t i = pos; i < pos + k; i++)
            res.memory_index[i] = mem;
        pos += k;
        mem++;
    }
    if (pos != n) {
        st = comi_err_set(e, COMI_ERR_INTERNAL, "merge: group sizes sum to %lld, not %lld",
                          (long long)pos, (long long)n);
        goto fail;
    }

    J.memory = res.memory;
    J.mem_start = res.memory_start;
    J.mem_len = res.memory_len;
    fine_stage(pool, &J, res.n_memory);

    for (int64_t i = 0; i < n; i++) {
        double k = (double)res.memory_len[res.memory_index[i]];
        res.relevance[i] = (float)J.rel[i];
        res.redundancy[i] = (float)J.red[i];
        res.score[i] = (float)(J.a_m * J.rel[i] - J.b_m * J.red[i]);
        res.weight[i] = (float)(p->fine ? J.w[i] : 1.0 / k);
    }
    free(scratch);
    *out = res;
    return COMI_OK;

fail:
    free(scratch);
    comi_merge_result_free(&res);
    return st;
}
