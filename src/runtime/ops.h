/*
 * ops.h — the numerical kernels of the transformer forward pass (stage:
 * encoder/decoder LM). Mirrors what llama.cpp's ggml CPU backend and Hugging
 * Face's modeling_llama / modeling_qwen2 / modeling_qwen3 compute: RMSNorm,
 * rotary position embeddings (interleaved and NEOX), softmax, SwiGLU,
 * activation x weight matmuls for every supported weight type, and causal
 * grouped-query attention.
 *
 * Threading: functions that take a comi_pool split their work into chunks
 * whose boundaries depend only on the problem shape, and every output
 * element is computed by exactly one chunk with a fixed operation order, so
 * results are bit-identical for any thread count. pool may be NULL (runs on
 * the calling thread). OpenBLAS runs single-threaded inside our calls (see
 * ops_blas_enter).
 */
#ifndef COMI_OPS_H
#define COMI_OPS_H

#include "base/common.h"
#include "base/pool.h"
#include "formats/tensor.h"

#include <stdint.h>

/* BLAS threading policy. Our pool calls cblas_sgemm from its own threads
 * on disjoint tiles, so OpenBLAS must not thread inside those calls (it
 * would oversubscribe the cores, and its results could depend on its
 * thread count). Debian 12's OpenBLAS (0.3.21) has only the process-wide
 * openblas_set_num_threads (no per-call control), so every entry point
 * that runs BLAS brackets its work with ops_blas_enter / ops_blas_leave:
 * the first enter in the process saves openblas_get_num_threads() and sets
 * 1 if it differs; the last leave restores the saved count. Nested and
 * concurrent brackets (several contexts in several threads) share one
 * save/restore through a counter under a mutex. Outside comi calls the
 * caller's setting (numpy's, under the Python binding) is untouched; BLAS
 * calls that other threads make while a comi call runs see one thread. */
void ops_blas_enter(void);
void ops_blas_leave(void);

/* y (n) = x / sqrt(mean(x^2) + eps) * w; w may be NULL (no scale). y may
 * equal x. */
void ops_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);

/* y (n) = exp(x), vectorised (about 2 ulp; inputs clamped to [-87.3, 88.7]);
 * ops_exp_ref is the scalar version of the same arithmetic. */
void ops_exp(float *y, const float *x, int64_t n);
float ops_exp_ref(float x);

/* ops_rmsnorm on each of n_rows rows of d values (row stride d). */
void ops_rmsnorm_rows(comi_pool *pool, float *y, const float *x, const float *w, int64_t n_rows,
                      int64_t d, float eps);

/* In-place softmax over x (n). */
void ops_softmax(float *x, int64_t n);

/* gate (n) = silu(gate) * up, silu(g) = g / (1 + exp(-g)). */
void ops_swiglu(float *gate, const float *up, int64_t n);
void ops_swiglu_rows(comi_pool *pool, float *gate, const float *up, int64_t n_rows, int64_t d);

/* Rotary position embeddings.
 * NORMAL: pairs (x[2i], x[2i+1]) rotate by pos * base^(-2i/d) — GGUF llama,
 *   whose q/k weight rows were permuted by the converter for this layout.
 * NEOX: pairs (x[i], x[i + d/2]) — qwen2/qwen3 in any format, and Hugging
 *   Face llama (un-permuted rows: HF's rotate_half is exactly this pairing,
 *   and the GGUF permutation maps row i / i + d/2 onto 2i / 2i + 1, so HF
 *   llama + NEOX equals GGUF llama + NORMAL). */
typedef enum ops_rope_mode { OPS_ROPE_NORMAL = 0, OPS_ROPE_NEOX = 1 } ops_rope_mode;

/* cs (n x head_dim): for token t at position pos0 + t, cs[t*hd + 2i] =
 * cos(theta), cs[t*hd + 2i + 1] = sin(theta), theta = (pos0+t) * base^(-2i/hd),
 * i < hd/2. Computed in double precision. */
void ops_rope_table(float *cs, int64_t pos0, int64_t n, int64_t head_dim, float base);

/* Rotates n rows of x in place; row t has n_head heads of head_dim values
 * starting at x + t * ld. cs from ops_rope_table for the same rows. */
void ops_rope_apply(float *x, int64_t n, int64_t ld, int64_t n_head, int64_t head_dim,
                    const float *cs, ops_rope_mode mode);

/* True when w can be a matmul weight: 2-D (ne[2] = ne[3] = 1) of a type
 * whose rows this build can convert to float32. */
bool ops_weight_supported(const comi_tensor *w);

/* y (n x m, row stride ldy >= m) = x (n x k, row stride k) times the weight
 * W (ne[0] = k, ne[1] = m) transposed: y[i][r] = dot(x[i], W row r).
 * Batches (n >= OPS_GEMM_MIN_ROWS) run cblas_sgemm on float32 tiles of W
 * (OPS_TILE_ROWS rows dequantized at a time, per worker); fewer rows use
 * one dot product per output (quant_matvec: the input is first rounded to
 * Q8_0 / Q8_K for quantized weights, as llama.cpp does, so those results
 * differ slightly from the BLAS path). Fails only on allocation failure. */
#define OPS_GEMM_MIN_ROWS 4
#define OPS_TILE_ROWS 256
#define OPS_DOT_ROWS 32 /* output rows per chunk on the dot path */
comi_status ops_matmul(comi_err *e, comi_pool *pool, const comi_tensor *w, const float *x,
                       int64_t n, float *y, int64_t ldy);

/* Several products of the same input x (n x k) at once: items[i].y (n x
 * items[i].ldy) = x times items[i].w transposed, every weight with ne[0] = k
 * (at most OPS_GROUP_MAX). The results are bit for bit those of one
 * ops_matmul per item; on the dot path (n < OPS_GEMM_MIN_ROWS) all the
 * items' rows run in one parallel loop, so a decode step pays one wake-up
 * and one join for q/k/v (or gate/up) instead of one per matrix. */
#define OPS_GROUP_MAX 4
typedef struct ops_mm_item {
    const comi_tensor *w;
    float *y;
    int64_t ldy;
} ops_mm_item;
comi_status ops_matmul_group(comi_err *e, comi_pool *pool, const ops_mm_item *items, int n_items,
                             const float *x, int64_t n);

/* Causal multi-head attention with grouped-query heads, never holding more
 * than a tile of scores (online softmax over key blocks, flash-attention
 * style).
 *  q (n x ldq): query t (position pos0 + t) has n_head heads of head_dim;
 *  k, v (n_kv x ldkv): keys/values of positions [0, n_kv), n_kv_head heads
 *    each; query head h reads kv head h / (n_head / n_kv_head);
 *  o (n x ldo): output heads in the same layout as q.
 * Query t attends to keys [0, pos0 + t] (pos0 + n <= n_kv). scale multiplies
 * the scores (1/sqrt(head_dim)). */
typedef struct ops_attn_args {
    const float *q;
    int64_t ldq;
    const float *k, *v;
    const uint16_t *k16, *v16; /* instead of k, v (NULL: unused): an IEEE half cache,
                                  converted a key block at a time */
    int64_t ldkv;
    float *o;
    int64_t ldo;
    int64_t n, pos0, n_kv;
    int64_t n_head, n_kv_head, head_dim;
    float scale;
} ops_attn_args;

comi_status ops_attention(comi_err *e, comi_pool *pool, const ops_attn_args *a);

#endif /* COMI_OPS_H */
