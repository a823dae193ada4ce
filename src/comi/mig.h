/*
 * mig.h — internal kernels of the merge stage (src/comi/mig.c), shared with the
 * tests and with other stages that need the same dot products. Not public.
 *
 * Dot products use fixed lanes: lane l accumulates the elements i with
 * i % 8 == l, the 8 lanes are reduced as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))
 * and the d % 8 tail elements are added in index order. The double kernels
 * accumulate exact float products in double; the float kernels (mig_dotf*)
 * use one fused multiply-add per element. The SIMD kernels and the scalar
 * references (*_ref) follow that order exactly, so they agree bit for bit with
 * or without AVX2/FMA, and every slot of a multi-row kernel rounds like the
 * single-pair reference (so x . y == y . x bit for bit).
 */
#ifndef COMI_MIG_H
#define COMI_MIG_H

#include "comi.h"

#include <stdbool.h>
#include <stdint.h>

/* Bytes comi_merge allocates (result arrays, scratch, coarse-stage
 * representatives and cosine block) for n tokens of width d with params p on
 * n_threads workers; UINT64_MAX when that overflows. */
uint64_t mig_merge_bytes(int64_t n, int64_t d, const comi_merge_params *p, int32_t n_threads);

/* comi_merge; check_limits false skips the context's limits, for callers
 * that checked their whole need themselves (the pipeline). */
comi_status mig_merge(comi_ctx *ctx, const float *hidden, int64_t n_tokens, int64_t d_model,
                      const float *query, const comi_merge_params *params, bool check_limits,
                      comi_merge_result *out);

/* sum_i x[i] * y[i] over d elements, accumulated in double. */
double mig_dot(const float *x, const float *y, int64_t d);
double mig_dot_ref(const float *x, const float *y, int64_t d);

/* out[0] = mig_dot(x, y0, d), out[1] = mig_dot(x, y1, d), bit-identical, x read once. */
void mig_dot2(const float *x, const float *y0, const float *y1, int64_t d, double out[2]);

/* sum_i x[i] * y[i] accumulated in float32 with fmaf. */
float mig_dotf_ref(const float *x, const float *y, int64_t d);

/* out[r * 4 + c] = mig_dotf_ref(x[r], y[c], d) for r < 2, c < 4, bit-identical. */
void mig_dotf_2x4(const float *const x[2], const float *const y[4], int64_t d, float out[8]);

/* acc[c] = fma(w, x[c], acc[c]) for c < d (acc: (d,) doubles). */
void mig_axpy(double *acc, double w, const float *x, int64_t d);
void mig_axpy_ref(double *acc, double w, const float *x, int64_t d);

#endif /* COMI_MIG_H */
