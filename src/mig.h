/*
 * mig.h — internal kernels of the merge stage (src/mig.c), shared with the
 * tests and with other stages that need the same dot products. Not public.
 *
 * Every dot product multiplies float32 inputs into double (the products are
 * exact) and accumulates them in 8 double lanes, lane l holding the elements
 * i with i % 8 == l, then reduces the lanes in one fixed order and adds the
 * d % 8 tail elements in index order. The SIMD kernels and the scalar
 * references (*_ref) follow that order exactly, so they agree bit for bit
 * whether or not the machine has AVX2/FMA.
 */
#ifndef COMI_MIG_H
#define COMI_MIG_H

#include <stdint.h>

/* sum_i x[i] * y[i] over d elements. */
double mig_dot(const float *x, const float *y, int64_t d);
double mig_dot_ref(const float *x, const float *y, int64_t d);

/* out[r] = mig_dot(x, y[r], d) for r < 4, bit-identical, x read once. */
void mig_dot4(const float *x, const float *const y[4], int64_t d, double out[4]);

/* acc[c] = fma(w, x[c], acc[c]) for c < d (acc: (d,) doubles). */
void mig_axpy(double *acc, double w, const float *x, int64_t d);
void mig_axpy_ref(double *acc, double w, const float *x, int64_t d);

#endif /* COMI_MIG_H */
