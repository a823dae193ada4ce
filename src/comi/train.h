/*
 * train.h — internals of COMI training (src/comi/train*.c): the trainable
 * module in float32 master weights, its forward pass with saved activations,
 * the backward pass, and the Hugging Face Trainer's AdamW. Mirrors the
 * authors' COMI module in its default training set-up (DESIGN.md
 * "Training"): encoder = base layers 0..K-1 + final norm + embeddings, merge
 * with gradients through the fine MIG weights, fusion block(s) + final norm,
 * frozen decoder with LoRA on q/k/v/o; loss = answer cross-entropy.
 *
 * Every weight is held in Hugging Face layout (rows = output features, q/k
 * rows in HF order, RoPE pairs (i, i + head_dim/2)); a GGUF llama base has
 * its q/k rows un-permuted at load, so checkpoints need no permutation.
 * Not public: the CLI reaches it through comi_train_* in comi.h.
 */
#ifndef COMI_TRAIN_H
#define COMI_TRAIN_H

#include "base/common.h"
#include "runtime/ops.h"

#include <stdbool.h>
#include <stdint.h>

enum { TR_Q = 0, TR_K, TR_V, TR_O, TR_NPROJ };

/* Hyper-parameters shared by every block (one base model). */
typedef struct tr_cfg {
    int64_t d, n_head, n_kv, hd, q_dim, kv_dim, ff, vocab;
    float eps, theta;
    ops_rope_mode rope; /* layout of the q/k rows (NEOX after load) */
    bool bias, qk_norm; /* qwen2 q/k/v biases, qwen3 per-head q/k RMSNorm */
} tr_cfg;

/* One transformer block's tensors (float32, row-major, PyTorch shapes). In
 * a gradient block every pointer is NULL or the gradient of the same
 * tensor. */
typedef struct tr_block {
    float *attn_norm, *ffn_norm; /* (d) */
    float *wq;                   /* (q_dim, d) */
    float *wk, *wv;              /* (kv_dim, d) */
    float *wo;                   /* (d, q_dim) */
    float *wg, *wu;              /* (ff, d) */
    float *wd;                   /* (d, ff) */
    float *bq, *bk, *bv;         /* (q_dim), (kv_dim), (kv_dim) or NULL */
    float *qn, *kn;              /* (hd) or NULL */
    float *la[TR_NPROJ];         /* LoRA A (r, in) or NULL */
    float *lb[TR_NPROJ];         /* LoRA B (out, r) or NULL */
} tr_block;

/* One tensor of the module under its checkpoint name. w is the value; g
 * its gradient (NULL: frozen, not saved); m, v the AdamW moments. */
typedef struct tr_param {
    char name[192];
    int32_t n_dims;
    int64_t shape[2];
    int64_t n;
    float *w, *g, *m, *v;
} tr_param;

typedef struct tr_model {
    tr_cfg c;
    int32_t n_enc, n_fus, n_dec; /* layers */
    int64_t lora_r;
    float lora_alpha, lora_dropout;
    comi_merge_params merge; /* merge_size, switches and the four MIG scalars */
    int32_t eos_id;

    float *enc_embd; /* (vocab, d) trained */
    float *enc_norm; /* (d) */
    tr_block *enc;   /* (n_enc) */
    tr_block *fus;   /* (n_fus) */
    float *fus_norm; /* (d) or NULL when n_fus = 0 */
    float *dec_embd; /* (vocab, d) frozen */
    float *dec_norm; /* (d) frozen */
    float *lm_head;  /* (vocab, d) frozen; may equal dec_embd */
    tr_block *dec;   /* (n_dec) frozen + LoRA */
    /* gradients, same shapes (NULL where frozen) */
    float *g_enc_embd, *g_enc_norm, *g_fus_norm;
    tr_block *g_enc, *g_fus, *g_dec;

    /* test hook: when layout_in is set, the merge uses these groups instead
     * of mig_merge's (group sizes carry no gradient, so finite differences
     * hold them fixed); layout_out, when set, receives the groups used */
    const struct tr_layout *layout_in;
    struct tr_layout *layout_out;

    tr_param *params; /* the trainable tensors, checkpoint order */
    int32_t n_params;
    tr_param mig[4]; /* alpha_select, beta_select, alpha_merge, beta_merge: saved, not trained */
    float mig_val[4];
    /* owned storage: every allocation is in allocs */
    void **allocs;
    int32_t n_allocs, cap_allocs;
} tr_model;

/* The memories' spans over the context rows. */
#define TR_MAX_LAYOUT 4096
typedef struct tr_layout {
    int64_t n_mem;
    int64_t start[TR_MAX_LAYOUT], len[TR_MAX_LAYOUT];
} tr_layout;

/* Settings of the module (what `comi train` takes besides the optimiser). */
typedef struct tr_opts {
    int32_t encoder_layers; /* K (default 8, at most n_layer) */
    int32_t fusion_layers;  /* default 1 */
    int64_t merge_size;     /* default 16 */
    int64_t lora_r;         /* default 128 */
    float lora_alpha;       /* default 32 */
    float lora_dropout;     /* default 0.05 */
    uint64_t seed;          /* LoRA A initialisation */
} tr_opts;

tr_opts tr_default_opts(void);

/* Builds the module from a loaded base model: encoder and fusion blocks
 * copy base layers 0.. (dequantized to float32), LoRA A as PEFT initialises
 * it (uniform in +-1/sqrt(in), from seed), B = 0. */
comi_status tr_model_new(comi_err *e, const comi_model *base, const tr_opts *o, tr_model **out);
void tr_model_free(tr_model *m);

/* The parameter named name (trainable ones and the MIG scalars), or NULL. */
tr_param *tr_find(tr_model *m, const char *name);

/* Overwrites tensors from a safetensors file of checkpoint names (F32, F16
 * or BF16); every trainable tensor must be present when require_all. Keys
 * it does not know fail the load unless they are the base's own (decoder
 * base weights, lm_head, ...), which are skipped. */
comi_status tr_model_load(comi_err *e, tr_model *m, const char *path, bool require_all);

/* Writes the trainable tensors and MIG scalars under their checkpoint
 * names as a float32 safetensors file; with_grad writes the gradients
 * instead (of the trainable tensors only). */
comi_status tr_model_save(comi_err *e, const tr_model *m, const char *path, bool with_grad);

/* One example: ids of the context, the question and the answer (answer
 * already ends with EOS). */
typedef struct tr_example {
    const int32_t *ctx, *q, *ans;
    int64_t n_ctx, n_q, n_ans;
} tr_example;

/* Runs the module on ex and returns its loss (mean cross-entropy over the
 * answer ids) in *loss; when backward, adds scale * d(loss)/d(tensor) to
 * every gradient. dropout_seed picks the LoRA dropout masks; 0 means no
 * dropout (evaluation). n_memory (may be NULL) receives the memory count. */
comi_status tr_example_step(comi_err *e, comi_ctx *ctx, tr_model *m, const tr_example *ex,
                            bool backward, float scale, uint64_t dropout_seed, double *loss,
                            int64_t *n_memory);

void tr_zero_grad(tr_model *m);

/* Global L2 norm of every gradient (double accumulation). */
double tr_grad_norm(const tr_model *m);

/* AdamW as torch.optim.AdamW inside the Hugging Face Trainer: gradients
 * scaled by clip (1 or max_norm / (norm + 1e-6)), then p *= 1 - lr wd (on
 * tensors of 2+ dimensions), moments, bias-corrected update at step t (1-based). */
typedef struct tr_adamw {
    double lr, beta1, beta2, eps, weight_decay;
} tr_adamw;

void tr_adamw_param(const tr_adamw *o, tr_param *p, double clip, int64_t t);
void tr_adamw_step(tr_model *m, const tr_adamw *o, double clip, int64_t t);

/* The Hugging Face learning rate at optimiser step s (0-based) of total:
 * linear warmup over ceil(warmup_ratio * total) steps, then cosine to 0
 * (cosine) or flat (constant: no warmup unless asked). */
double tr_lr_at(double lr, bool cosine, double warmup_ratio, int64_t s, int64_t total);

/* ---- kernels (train_ops.c), exposed for the finite-difference tests ---- */

/* y (n, d) = rmsnorm(x) * w, rs (n) = 1/sqrt(mean(x^2) + eps). */
void tr_rmsnorm_fwd(float *y, float *rs, const float *x, const float *w, int64_t n, int64_t d,
                    float eps);
/* dx (n, d) += d/dx, gw (d) += d/dw (gw may be NULL), given dy. */
void tr_rmsnorm_bwd(float *dx, float *gw, const float *dy, const float *x, const float *rs,
                    const float *w, int64_t n, int64_t d);

/* Rotates x (n rows of n_head heads of hd, row stride ld) by +theta
 * (inverse false) or -theta (inverse true, the backward pass), positions
 * from 0, in the given pair layout. */
void tr_rope(float *x, int64_t n, int64_t ld, int64_t n_head, int64_t hd, float theta,
             ops_rope_mode mode, bool inverse);

/* Causal GQA attention over n tokens: q (n, n_head*hd), k/v (n, n_kv*hd);
 * o (n, n_head*hd), p (n_head, n, n) the saved probabilities. */
void tr_attn_fwd(float *o, float *p, const float *q, const float *k, const float *v, int64_t n,
                 int64_t n_head, int64_t n_kv, int64_t hd);
/* dq = d/dq (overwritten), dk, dv (overwritten), given dout; ds: (n, n)
 * scratch. */
void tr_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *p,
                 const float *q, const float *k, const float *v, int64_t n, int64_t n_head,
                 int64_t n_kv, int64_t hd, float *ds);

#endif /* COMI_TRAIN_H */
