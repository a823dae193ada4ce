/*
 * train_ops.c — the kernels of COMI training whose backward pass is not a
 * plain matrix product: RMSNorm, rotary embeddings and causal grouped-query
 * attention, forward and backward side by side (the llm.c habit). Shapes as
 * in Hugging Face's modeling_llama / modeling_qwen2 / modeling_qwen3, which
 * the training goldens were computed with.
 */
#include "comi/train.h"

#include <cblas.h>
#include <math.h>

/* ---- RMSNorm: y = x * rs * w, rs = 1 / sqrt(mean(x^2) + eps) ---- */

void tr_rmsnorm_fwd(float *y, float *rs, const float *x, const float *w, int64_t n, int64_t d,
                    float eps) {
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * d;
        double ss = 0;
        for (int64_t i = 0; i < d; i++) ss += (double)xt[i] * xt[i];
        float r = (float)(1.0 / sqrt(ss / (double)d + eps));
        rs[t] = r;
        for (int64_t i = 0; i < d; i++) y[t * d + i] = xt[i] * r * (w ? w[i] : 1.0f);
    }
}

/* With xh = x rs: dL/dw = sum_t dy xh; dL/dx = rs (g - xh mean(g xh)), g = dy w. */
void tr_rmsnorm_bwd(float *dx, float *gw, const float *dy, const float *x, const float *rs,
                    const float *w, int64_t n, int64_t d) {
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * d, *dyt = dy + t * d;
        const float r = rs[t];
        double dot = 0;
        for (int64_t i = 0; i < d; i++) {
            double xh = (double)xt[i] * r;
            double g = (double)dyt[i] * (w ? w[i] : 1.0f);
            dot += g * xh;
            if (gw) gw[i] += (float)(dyt[i] * xh);
        }
        dot /= (double)d;
        for (int64_t i = 0; i < d; i++) {
            double xh = (double)xt[i] * r;
            double g = (double)dyt[i] * (w ? w[i] : 1.0f);
            dx[t * d + i] += (float)(r * (g - xh * dot));
        }
    }
}

/* ---- RoPE: the rotation is orthogonal, so its backward is the rotation by
 * -theta of the incoming gradient ---- */

void tr_rope(float *x, int64_t n, int64_t ld, int64_t n_head, int64_t hd, float theta,
             ops_rope_mode mode, bool inverse) {
    const int64_t half = hd / 2;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < half; i++) {
            /* inv_freq as Hugging Face computes it; the angle in double */
            double ang = (double)t * pow((double)theta, -2.0 * (double)i / (double)hd);
            float c = (float)cos(ang), s = (float)sin(ang);
            if (inverse) s = -s;
            for (int64_t h = 0; h < n_head; h++) {
                float *xh = x + t * ld + h * hd;
                int64_t a = mode == OPS_ROPE_NEOX ? i : 2 * i;
                int64_t b = mode == OPS_ROPE_NEOX ? i + half : 2 * i + 1;
                float x0 = xh[a], x1 = xh[b];
                xh[a] = x0 * c - x1 * s;
                xh[b] = x1 * c + x0 * s;
            }
        }
}

/* ---- causal GQA attention, one head at a time through BLAS ---- */

void tr_attn_fwd(float *o, float *p, const float *q, const float *k, const float *v, int64_t n,
                 int64_t n_head, int64_t n_kv, int64_t hd) {
    const int64_t qd = n_head * hd, kd = n_kv * hd, grp = n_head / n_kv;
    const float scale = (float)(1.0 / sqrt((double)hd));
    for (int64_t h = 0; h < n_head; h++) {
        const int64_t kh = h / grp;
        float *P = p + h * n * n; /* (n, n) */
        /* S = scale Q_h K_h^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)hd, scale,
                    q + h * hd, (int)qd, k + kh * hd, (int)kd, 0.0f, P, (int)n);
        for (int64_t i = 0; i < n; i++) {
            float *row = P + i * n;
            float mx = row[0];
            for (int64_t j = 1; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
            double sum = 0;
            for (int64_t j = 0; j <= i; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            float inv = (float)(1.0 / sum);
            for (int64_t j = 0; j <= i; j++) row[j] *= inv;
            for (int64_t j = i + 1; j < n; j++) row[j] = 0;
        }
        /* O_h = P V_h */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)hd, (int)n, 1.0f, P,
                    (int)n, v + kh * hd, (int)kd, 0.0f, o + h * hd, (int)qd);
    }
}

/* dP = dO V^T; dV += P^T dO; dS = P (dP - rowsum(P dP)); dQ = scale dS K;
 * dK += scale dS^T Q. Masked entries have P = 0, so dS = 0 there. */
void tr_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *p,
                 const float *q, const float *k, const float *v, int64_t n, int64_t n_head,
                 int64_t n_kv, int64_t hd, float *ds) {
    const int64_t qd = n_head * hd, kd = n_kv * hd, grp = n_head / n_kv;
    const float scale = (float)(1.0 / sqrt((double)hd));
    for (int64_t i = 0; i < n * kd; i++) dk[i] = dv[i] = 0;
    for (int64_t h = 0; h < n_head; h++) {
        const int64_t kh = h / grp;
        const float *P = p + h * n * n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)hd, 1.0f,
                    dout + h * hd, (int)qd, v + kh * hd, (int)kd, 0.0f, ds, (int)n);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)hd, (int)n, 1.0f, P,
                    (int)n, dout + h * hd, (int)qd, 1.0f, dv + kh * hd, (int)kd);
        for (int64_t i = 0; i < n; i++) {
            const float *pr = P + i * n;
            float *dr = ds + i * n;
            double dot = 0;
            for (int64_t j = 0; j <= i; j++) dot += (double)pr[j] * dr[j];
            for (int64_t j = 0; j <= i; j++) dr[j] = pr[j] * (float)(dr[j] - dot);
            for (int64_t j = i + 1; j < n; j++) dr[j] = 0;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)hd, (int)n, scale, ds,
                    (int)n, k + kh * hd, (int)kd, 0.0f, dq + h * hd, (int)qd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)hd, (int)n, scale, ds,
                    (int)n, q + h * hd, (int)qd, 1.0f, dk + kh * hd, (int)kd);
    }
}
