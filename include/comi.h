/*
 * comi.h — the one public header of comi: coarse-to-fine context compression
 * by Marginal Information Gain (COMI, ICLR 2026).
 *
 * Conventions (apply to every function below unless it says otherwise):
 *  - Functions that can fail return a comi_status; COMI_OK (0) is success.
 *    The message of the last failure is kept in the comi_ctx passed in and
 *    read with comi_errmsg(ctx). The library never exits or aborts on bad
 *    input.
 *  - A comi_ctx is per-thread state (error message, scratch, thread count).
 *    Use one context per thread; a context is not thread-safe. Loaded models
 *    (comi_model) are immutable and may be shared by any number of contexts.
 *  - Every *_free(NULL) is a no-op. Output buffers returned by the library
 *    are owned by the caller and released with the matching *_free call.
 *  - Matrices are float32, row-major: row i of an (n x d) matrix starts at
 *    element i * d.
 */
#ifndef COMI_H
#define COMI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COMI_VERSION_MAJOR 0
#define COMI_VERSION_MINOR 1
#define COMI_VERSION_PATCH 0
#define COMI_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Status codes, contexts, errors                                           */
/* ------------------------------------------------------------------------ */

typedef enum comi_status {
    COMI_OK = 0,
    COMI_ERR_INVALID_ARG = 1, /* a parameter or argument value is out of range */
    COMI_ERR_IO = 2,          /* a file could not be opened, read or written */
    COMI_ERR_FORMAT = 3,      /* a file or request is malformed or corrupt */
    COMI_ERR_UNSUPPORTED = 4, /* valid input this build cannot handle */
    COMI_ERR_NOMEM = 5,       /* an allocation failed */
    COMI_ERR_LIMIT = 6,       /* a configured resource limit would be exceeded */
    COMI_ERR_INTERNAL = 7     /* an invariant broke; please report */
} comi_status;

/* Per-thread state. Create one per thread; free with comi_ctx_free. */
typedef struct comi_ctx comi_ctx;

typedef struct comi_ctx_params {
    int32_t n_threads; /* worker threads for kernels; <= 0 means all cores */
} comi_ctx_params;

comi_ctx_params comi_ctx_default_params(void);

/* Returns NULL only when memory is exhausted. */
comi_ctx *comi_ctx_new(const comi_ctx_params *params);
void comi_ctx_free(comi_ctx *ctx);

/* Number of threads kernels run on with this context (>= 1). */
int32_t comi_ctx_threads(const comi_ctx *ctx);

/* The message of the last failure on ctx ("" when none). The string is owned
 * by ctx and valid until the next call on ctx. */
const char *comi_errmsg(const comi_ctx *ctx);

/* A short constant name for a status code ("ok", "invalid argument", ...). */
const char *comi_status_str(comi_status status);

/* The library version, "MAJOR.MINOR.PATCH". */
const char *comi_version(void);

/* comi_free releases any buffer the library documents as "free with
 * comi_free" (plain heap memory). */
void comi_free(void *ptr);

/* ------------------------------------------------------------------------ */
/* Merge core (src/mig.c)                                                   */
/* ------------------------------------------------------------------------ */

/* The merge turns the hidden states of one context segment, H (n_tokens x
 * d_model), and a query vector q (d_model) into at most
 * ceil(n_tokens / merge_size) memory vectors, as COMI defines it:
 *  - coarse stage: the context is cut into fixed groups of merge_size
 *    tokens; each group's Marginal Information Gain (relevance of its most
 *    query-relevant token minus that token's redundancy with the other
 *    groups' representatives) sets, through a softmax, how many tokens its
 *    reallocated group gets: high MIG -> small group -> less compression.
 *    Off: n_tokens is split into round(n_tokens / merge_size) equal groups.
 *  - fine stage: inside each group, tokens are averaged with
 *    softmax(alpha_merge * relevance - beta_merge * redundancy) weights into
 *    one memory vector. Off: the plain mean.
 * Relevance is cos(H_i, q); redundancy is the largest cosine to the other
 * units. The exact semantics are in DESIGN.md ("The merge, exactly").
 *
 * Results do not depend on the context's thread count. */

typedef struct comi_merge_params {
    int64_t merge_size;     /* m >= 1: average tokens per memory vector (default 16) */
    float alpha_select;     /* coarse relevance weight (default 1) */
    float beta_select;      /* coarse redundancy weight (default 1) */
    float alpha_merge;      /* fine relevance weight (default 1) */
    float beta_merge;       /* fine redundancy weight (default 1) */
    bool coarse;            /* reallocate group sizes by group MIG (default true) */
    bool fine;              /* MIG-weighted merge; false: plain mean (default true) */
    bool coarse_redundancy; /* redundancy term of the coarse score (default true) */
    bool fine_redundancy;   /* redundancy term of the fine weights (default true) */
} comi_merge_params;

comi_merge_params comi_merge_default_params(void);

/* What comi_merge produced, including the intermediate quantities so callers
 * can inspect its decisions. Every pointer is owned by the result and
 * released by comi_merge_result_free. */
typedef struct comi_merge_result {
    int64_t n_tokens;
    int64_t d_model;
    /* Groups in layout order. Coarse on: ceil(n_tokens / merge_size) fixed
     * groups (1 when that is <= 1) whose reallocated sizes may be 0; off:
     * max(1, round_half_even(n_tokens / merge_size)) uniform groups. */
    int64_t n_groups;
    int32_t *group_sizes;      /* (n_groups,) tokens per group; sums to n_tokens */
    int64_t *group_rep;        /* (n_groups,) coarse, n_groups > 1: representative token of
                                  fixed group g (its most relevant token); else -1 */
    float *group_relevance;    /* (n_groups,) coarse: relevance of the representative; else 0 */
    float *group_redundancy;   /* (n_groups,) coarse: max cosine to the other representatives;
                                  0 when off */
    float *group_score;        /* (n_groups,) coarse: alpha_select * relevance - beta_select *
                                  redundancy (the group's MIG); else 0 */
    /* Memory vectors: one per non-empty group, in group order; memory i
     * merges tokens [memory_start[i], memory_start[i] + memory_len[i]). */
    int64_t n_memory;
    float *memory;             /* (n_memory, d_model) */
    int64_t *memory_start;     /* (n_memory,) */
    int64_t *memory_len;       /* (n_memory,) >= 1 */
    /* Per token. */
    float *relevance;          /* (n_tokens,) cos(H_i, q) */
    float *redundancy;         /* (n_tokens,) fine stage: max(0, max cosine to the other tokens
                                  of its group); 0 when fine or fine_redundancy is off */
    float *score;              /* (n_tokens,) the token's MIG: alpha_merge * relevance -
                                  beta_merge * redundancy */
    float *weight;             /* (n_tokens,) its weight in its memory vector (1/len when
                                  fine is off) */
    int64_t *memory_index;     /* (n_tokens,) the memory vector it was merged into */
} comi_merge_result;

/* Merges one segment. hidden: (n_tokens, d_model) row-major float32; query:
 * (d_model,); params NULL means the defaults. Both inputs are only read and
 * may be freed after the call. Fails (COMI_ERR_INVALID_ARG, message in ctx)
 * on NULL pointers, n_tokens < 1 or > INT32_MAX, d_model < 1, merge_size < 1,
 * non-finite weights, or a NaN/Inf anywhere in hidden or query. On success
 * *out is filled (free it with comi_merge_result_free); on failure it is
 * zeroed. Uses the context's threads; one call per context at a time. */
comi_status comi_merge(comi_ctx *ctx, const float *hidden, int64_t n_tokens, int64_t d_model,
                       const float *query, const comi_merge_params *params,
                       comi_merge_result *out);

/* Releases every array of res and zeroes it; NULL and zeroed results are fine. */
void comi_merge_result_free(comi_merge_result *res);

/* ------------------------------------------------------------------------ */
/* Models, tokenizers, forward pass (src/gguf.c, src/model.c, ...)         */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Soft pipeline (src/pipeline.c)                                           */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Text-mode compression (src/text.c)                                       */
/* ------------------------------------------------------------------------ */

/* Text mode keeps the words/phrases/sentences of a context that carry the
 * most Marginal Information Gain for a question and returns plain text any
 * LLM can read. Relevance and redundancy come from an encoder: the built-in
 * lexical one (no model), static word vectors, or a transformer model. */

/* A loaded text encoder; immutable after load, shareable across threads. */
typedef struct comi_encoder comi_encoder;

/* spec: "lexical", "vectors:FILE" (GloVe text or word2vec binary), or a
 * model path (.gguf file or Hugging Face directory). Free with
 * comi_encoder_free. */
comi_status comi_encoder_load(comi_ctx *ctx, const char *spec, comi_encoder **out);
void comi_encoder_free(comi_encoder *enc);

typedef struct comi_text_params {
    double ratio;          /* keep at most floor(original_tokens / ratio) tokens (>= 1) */
    int64_t target_tokens; /* when > 0, keep at most this many tokens (overrides ratio) */
    const comi_encoder *encoder; /* NULL: the built-in lexical encoder */
    bool keep_titles;      /* keep document titles / first lines when budget allows */
    bool coarse;           /* inter-group budget reallocation by MIG (default on) */
    bool redundancy;       /* redundancy terms (default on) */
    float alpha;           /* relevance weight (default set by the implementation) */
    float beta;            /* redundancy weight (default set by the implementation) */
} comi_text_params;

comi_text_params comi_text_default_params(void);

typedef struct comi_text_result {
    char *text;                /* compressed text, NUL-terminated; free with comi_text_result_free */
    int64_t original_tokens;   /* tokens of the input (words for the lexical encoder) */
    int64_t compressed_tokens; /* tokens of text, <= the budget */
    double ratio;              /* original_tokens / max(compressed_tokens, 1) */
    double ms;                 /* wall time of the call */
} comi_text_result;

/* Compresses one context (documents may be separated by blank lines). */
comi_status comi_compress_text(comi_ctx *ctx, const char *context, const char *question,
                               const comi_text_params *params, comi_text_result *out);
/* Compresses a list of n_docs documents (each a NUL-terminated string). */
comi_status comi_compress_documents(comi_ctx *ctx, const char *const *docs, size_t n_docs,
                                    const char *question, const comi_text_params *params,
                                    comi_text_result *out);
void comi_text_result_free(comi_text_result *res);

/* ------------------------------------------------------------------------ */
/* Evaluation (src/eval.c)                                                  */
/* ------------------------------------------------------------------------ */

#ifdef __cplusplus
}
#endif

#endif /* COMI_H */
