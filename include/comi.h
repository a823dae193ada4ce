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
 *  - Structs that grow. Every public struct ends in `reserved`
 *    (COMI_RESERVED_BYTES bytes). A later minor version takes the fields it
 *    adds from that tail, so the size and every offset of a struct stay the
 *    same and a program built against an older comi.h keeps working with a
 *    newer library (and a binding that mirrors a struct stays right). The
 *    library never reads `reserved`; *_default_params() zero it. Get every
 *    params struct from its *_default_params() and set the fields you need,
 *    so fields added later start at their defaults; structs the library
 *    fills (results, info) are only read. Fields are never reordered or
 *    removed within a major version; when a tail runs out, the major
 *    version (and the shared library's SONAME) changes. tests/test_base.c
 *    pins every struct's size: a new field must shrink `reserved` by its
 *    size.
 *  - OpenBLAS threading: model calls (comi_session_eval, comi_generate and
 *    everything built on them) run cblas_sgemm from the context's own
 *    threads, so they run OpenBLAS single-threaded: the call saves
 *    OpenBLAS's process-wide thread count, sets 1 if it differs, and
 *    restores the saved count when it returns (OpenBLAS 0.3.21, Debian 12,
 *    has no per-call setting). Between calls the caller's setting (numpy's,
 *    under the Python binding) is untouched; BLAS work other threads do
 *    while a model call runs sees one thread. comi_merge uses OpenBLAS
 *    with whatever setting the caller has.
 *  - CPU kernels: the library is built for plain x86-64 and picks AVX2 /
 *    FMA / F16C kernels at run time when the CPU has them (COMI_SIMD=0 in
 *    the environment forces the portable ones; results agree to float
 *    rounding). The thread pool's workers spin briefly before sleeping
 *    (adaptive; COMI_POOL_SPIN_US caps it, 0 disables spinning).
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

/* COMI_API marks the functions libcomi.so exports. The library is built with
 * -fvisibility=hidden, so everything else (the internal cross-file symbols)
 * stays inside it; tests/cli/test_exports.sh checks that the exported symbols
 * are exactly the functions declared here. */
#if defined(_WIN32)
#define COMI_API
#elif defined(__GNUC__) || defined(__clang__)
#define COMI_API __attribute__((visibility("default")))
#else
#define COMI_API
#endif

/* Bytes each public struct keeps at its end for fields of later versions
 * (see "Structs that grow" above). */
#define COMI_RESERVED_BYTES 64

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
    COMI_ERR_INTERNAL = 7,    /* an invariant broke; please report */
    COMI_ERR_CANCELLED = 8    /* the call was cancelled with comi_ctx_cancel */
} comi_status;

/* Per-thread state. Create one per thread; free with comi_ctx_free. */
typedef struct comi_ctx comi_ctx;

typedef struct comi_ctx_params {
    int32_t n_threads; /* worker threads for kernels; <= 0 means all cores */
    /* Resource limits, checked by every call that takes this context before
     * its large allocations; a call over a limit fails with COMI_ERR_LIMIT and
     * a message naming the figure and the limit. */
    int64_t max_context_tokens; /* <= 0 (default): none. Else the most tokens a context may
                                   have: the context of comi_pipeline_answer*, the words
                                   of comi_compress_* (text mode counts words), n_tokens of
                                   comi_merge, max_tokens of comi_session_new */
    uint64_t max_bytes;         /* 0 (default): physical memory. Else the most bytes the working
                                   buffers of one call may take (an estimate made before they are
                                   allocated: merge results and scratch; session KV cache and
                                   scratch; pipeline sessions and buffers; text-mode words,
                                   units, sparse and dense vectors). comi_answer_params.max_bytes,
                                   when nonzero, overrides it for that call. */
    int32_t kv_type;            /* element type of the KV cache of every session made
                                   through this context (comi_session_new, the pipeline's
                                   and the model encoder's sessions): COMI_KV_F32 (default)
                                   or COMI_KV_F16 (half the cache memory; keys and values
                                   rounded to half precision, as llama.cpp's default
                                   cache does); any other value means COMI_KV_F32 */
    uint8_t reserved[COMI_RESERVED_BYTES - 4]; /* fields of later versions (see comi.h top) */
} comi_ctx_params;

/* KV cache element types (comi_ctx_params.kv_type). */
enum { COMI_KV_F32 = 0, COMI_KV_F16 = 1 };

COMI_API comi_ctx_params comi_ctx_default_params(void);

/* Returns NULL only when memory is exhausted. */
COMI_API comi_ctx *comi_ctx_new(const comi_ctx_params *params);
COMI_API void comi_ctx_free(comi_ctx *ctx);

/* Number of threads kernels run on with this context (>= 1). */
COMI_API int32_t comi_ctx_threads(const comi_ctx *ctx);
/* The context's limits: max_context_tokens (0: none) and the byte limit in
 * force (max_bytes, or physical memory when that is 0). */
COMI_API int64_t comi_ctx_max_context_tokens(const comi_ctx *ctx);
COMI_API uint64_t comi_ctx_max_bytes(const comi_ctx *ctx);
/* The context's KV cache type (COMI_KV_F32 or COMI_KV_F16). */
COMI_API int32_t comi_ctx_kv_type(const comi_ctx *ctx);

/* Cooperative cancellation. comi_ctx_cancel may be called from any thread
 * while another thread runs a call on ctx (the one exception to "one thread
 * per context"): that call, and every later call on ctx, stops at its next
 * check and returns COMI_ERR_CANCELLED, until comi_ctx_reset_cancel(ctx).
 * Checked by every model forward pass (comi_session_eval, so also the soft
 * pipeline's encoder, fusion and decoder prefills, comi_generate's steps and
 * the text-mode model encoder) before each transformer layer of each
 * micro-batch of at most 512 positions; by the soft pipeline
 * (comi_pipeline_answer*) before each segment and before decoding; by
 * comi_generate before each generated token; by comi_compress_text/_documents
 * before each stage (parse, terms, relevance, coarse, fine) and, with a model
 * encoder, before each encoder segment; and by comi_compress_batch before each
 * item. Never inside a kernel: the step that has begun (one layer over one
 * micro-batch, or a non-model stage of text compression) runs to its end, so
 * a call stops within about one such step of the cancel, however long its
 * prompt. A cancelled call leaves the context and its sessions usable: a
 * session keeps the positions it held before the eval that was cancelled (see
 * comi_session_eval); comi_generate reports the ids it made before the cancel;
 * the other calls free their partial results and return none. */
COMI_API void comi_ctx_cancel(comi_ctx *ctx);
COMI_API void comi_ctx_reset_cancel(comi_ctx *ctx);
COMI_API bool comi_ctx_cancelled(const comi_ctx *ctx);

/* The message of the last failure on ctx ("" when none). The string is owned
 * by ctx and valid until the next call on ctx. */
COMI_API const char *comi_errmsg(const comi_ctx *ctx);

/* A short constant name for a status code ("ok", "invalid argument", ...). */
COMI_API const char *comi_status_str(comi_status status);

/* The library version, "MAJOR.MINOR.PATCH". */
COMI_API const char *comi_version(void);

/* comi_free releases any buffer the library documents as "free with
 * comi_free" (plain heap memory). */
COMI_API void comi_free(void *ptr);

/* ------------------------------------------------------------------------ */
/* Merge core (src/comi/mig.c)                                                   */
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
 * Cost: O(n d) for relevance and the weighted sums, O(n m d) for the
 * redundancy inside groups, O((n/m)^2 d) for the redundancy between the
 * coarse representatives (OpenBLAS sgemm, on OpenBLAS's own threads; set
 * OPENBLAS_NUM_THREADS to bound them). Extra memory beyond hidden: about
 * 2 (n/m) d floats (representatives and memory vectors) plus 128 (n/m) floats.
 * Results are bit-identical for any thread count of the context or of
 * OpenBLAS. */

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
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_merge_params;

COMI_API comi_merge_params comi_merge_default_params(void);

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
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_merge_result;

/* Merges one segment. hidden: (n_tokens, d_model) row-major float32; query:
 * (d_model,); params NULL means the defaults. Both inputs are only read and
 * may be freed after the call. Fails (COMI_ERR_INVALID_ARG, message in ctx)
 * on NULL pointers, n_tokens < 1 or > INT32_MAX, d_model < 1, merge_size < 1,
 * non-finite weights, or a NaN/Inf anywhere in hidden or query; with
 * COMI_ERR_LIMIT when n_tokens is over the context's max_context_tokens or
 * the merge's buffers (results, scratch, coarse representatives; not hidden)
 * over its max_bytes. On success *out is filled (free it with comi_merge_result_free); on failure it is
 * zeroed. Uses the context's threads; one call per context at a time. */
COMI_API comi_status comi_merge(comi_ctx *ctx, const float *hidden, int64_t n_tokens,
                                int64_t d_model, const float *query,
                                const comi_merge_params *params, comi_merge_result *out);

/* Releases every array of res and zeroes it; NULL and zeroed results are fine. */
COMI_API void comi_merge_result_free(comi_merge_result *res);

/* ------------------------------------------------------------------------ */
/* Models, tokenizers, forward pass (src/formats/gguf.c, src/runtime/model.c, ...)         */
/* ------------------------------------------------------------------------ */

/* ---- Tokenizers (src/runtime/tokenizer*.c) ------------------------------------------------ */

/* A loaded tokenizer: SentencePiece-style (GGUF tokenizer.ggml.model
 * "llama") or byte-level / byte-fallback BPE (GGUF "gpt2", Hugging Face
 * tokenizer.json). Token ids are exactly llama.cpp's. Immutable after load;
 * may be shared by any number of threads and contexts. */
typedef struct comi_tokenizer comi_tokenizer;

/* path: a .gguf file (full model or vocabulary-only), a Hugging Face model
 * directory (tokenizer.json, tokenizer_config.json for add_bos/add_eos and
 * the BOS/EOS tokens), or a tokenizer.json file. Fails with a message naming
 * the file when it is missing, not a GGUF, has no tokenizer, or uses a
 * tokenizer type or pre-tokenizer this build does not support. Free with
 * comi_tokenizer_free. */
COMI_API comi_status comi_tokenizer_load(comi_ctx *ctx, const char *path, comi_tokenizer **out);
COMI_API void comi_tokenizer_free(comi_tokenizer *tok);

typedef struct comi_tokenize_params {
    int32_t add_bos;    /* -1: as the tokenizer's metadata says (default); 0: no; 1: yes */
    int32_t add_eos;    /* -1: as the metadata says (default); 0: no; 1: yes */
    bool parse_special; /* recognise control-token text such as "<|im_start|>" as that
                           token (default false: it is tokenized as plain text; added
                           non-special tokens are always recognised, as in llama.cpp) */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_tokenize_params;

COMI_API comi_tokenize_params comi_tokenize_default_params(void);

/* Tokenizes len bytes of UTF-8 text (no NUL needed; no escape processing).
 * Invalid UTF-8 fails with COMI_ERR_INVALID_ARG naming the byte offset.
 * params NULL means defaults. *ids (free with comi_free; NULL when *n_ids
 * is 0) receives *n_ids ids. */
COMI_API comi_status comi_tokenize(comi_ctx *ctx, const comi_tokenizer *tok, const char *text,
                                   size_t len, const comi_tokenize_params *params, int32_t **ids,
                                   size_t *n_ids);

/* Turns ids back into text: *text is NUL-terminated (free with comi_free),
 * *len (may be NULL) its length without the NUL. skip_special drops control
 * and unknown tokens (and a leading BOS). The bytes are what the pieces
 * spell, so an id sequence that splits a character gives invalid UTF-8.
 * Fails on an id outside [0, n_vocab). For SentencePiece vocabularies the
 * space the tokenizer put in front of the text is removed again. */
COMI_API comi_status comi_detokenize(comi_ctx *ctx, const comi_tokenizer *tok, const int32_t *ids,
                                     size_t n_ids, bool skip_special, char **text, size_t *len);

COMI_API int32_t comi_tokenizer_n_vocab(const comi_tokenizer *tok);
COMI_API int32_t comi_tokenizer_bos(const comi_tokenizer *tok); /* -1 when none */
COMI_API int32_t comi_tokenizer_eos(const comi_tokenizer *tok); /* -1 when none */
/* Whether comi_tokenize adds BOS by default (the model's metadata). */
COMI_API bool comi_tokenizer_adds_bos(const comi_tokenizer *tok);
/* End of generation: EOS, EOT and end-of-turn tokens such as <|im_end|>. */
COMI_API bool comi_tokenizer_is_eog(const comi_tokenizer *tok, int32_t id);
/* The vocabulary string of a token (not NUL-terminated, *len bytes; owned
 * by tok), NULL when id is out of range. */
COMI_API const char *comi_tokenizer_piece(const comi_tokenizer *tok, int32_t id, size_t *len);

/* ---- Chat templates (src/runtime/chat.c) ---------------------------------------------------
 *
 * A chat model reads a conversation as text laid out by its own chat
 * template (GGUF tokenizer.chat_template; Hugging Face tokenizer_config.json
 * chat_template or chat_template.jinja). comi recognises the template's
 * family by its markers and renders exactly what Hugging Face's
 * apply_chat_template prints for it (checked against Jinja2 on SmolLM2's own
 * template in tests/test_smollm2.c):
 *  - ChatML (SmolLM2, Qwen2, Qwen2.5, ...): "<|im_start|>ROLE\nCONTENT<|im_end|>\n"
 *    per message, preceded by the template's default system message when the
 *    first message is not a system one (SmolLM2: "You are a helpful AI
 *    assistant named SmolLM, trained by Hugging Face"; Qwen2.5: "You are
 *    Qwen, created by Alibaba Cloud. ..."), then "<|im_start|>assistant\n"
 *    when add_generation_prompt.
 *  - ChatML with reasoning (Qwen3): as ChatML; an assistant message's
 *    "<think>...</think>" part is dropped before the last user message.
 * A template of any other family fails with COMI_ERR_UNSUPPORTED (and a
 * message quoting its start): never a silently different prompt. */

typedef struct comi_chat_message {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8, NUL-terminated */
} comi_chat_message;

/* The chat template that came with tok (NUL-terminated, owned by tok), NULL
 * when the model has none. */
COMI_API const char *comi_tokenizer_chat_template(const comi_tokenizer *tok);

/* Renders msgs[0 .. n_msgs) with a chat template: tmpl, or when tmpl is NULL
 * the tokenizer's own (tok may be NULL when tmpl is given and does not use
 * bos_token). add_generation_prompt appends the assistant turn's opening so
 * the model answers next. *text (free with comi_free) is NUL-terminated,
 * *len (may be NULL) its length without the NUL. It contains special-token
 * text such as "<|im_start|>": tokenize it with parse_special (or use
 * comi_chat_tokenize). Fails with COMI_ERR_UNSUPPORTED when the template is
 * missing or of no known family, COMI_ERR_INVALID_ARG on a role other than
 * system/user/assistant or a NULL content. Thread-safe (tok is only read). */
COMI_API comi_status comi_chat_apply(comi_ctx *ctx, const comi_tokenizer *tok, const char *tmpl,
                                     const comi_chat_message *msgs, size_t n_msgs,
                                     bool add_generation_prompt, char **text, size_t *len);

/* comi_chat_apply, then tokenizes the text as llama.cpp does for a chat
 * prompt: special-token text parsed as tokens, BOS added when the metadata
 * says so and the template did not write it. *ids (free with comi_free)
 * receives *n_ids ids. Fails as comi_chat_apply and comi_tokenize do. */
COMI_API comi_status comi_chat_tokenize(comi_ctx *ctx, const comi_tokenizer *tok, const char *tmpl,
                                        const comi_chat_message *msgs, size_t n_msgs,
                                        bool add_generation_prompt, int32_t **ids, size_t *n_ids);

/* ---- Models (src/runtime/model.c, src/runtime/session.c, src/runtime/ops.c) ---------------------
 *
 * A comi_model is a decoder-only transformer (llama, qwen2, qwen3) loaded
 * from a GGUF file or a Hugging Face directory (config.json + safetensors,
 * sharded or not). Weight matrices stay memory-mapped and are never copied.
 * A loaded model is immutable: any number of threads may use it at once,
 * each through its own comi_ctx and comi_session.
 *
 * Per-run state (KV cache, activation scratch, the last logits) lives in a
 * comi_session. A session belongs to one model, is used by one thread at a
 * time, and must be freed before its model. Kernels run on the threads of
 * the comi_ctx passed to each call; results are bit-identical for any
 * thread count. */

typedef struct comi_model comi_model;
typedef struct comi_session comi_session;
typedef struct comi_tokenizer comi_tokenizer;

typedef struct comi_model_params {
    /* LoRA adapter on the q/k/v/o projections (NULL: none): a PEFT directory
     * (adapter_model.safetensors + adapter_config.json) or a .safetensors file
     * with tensors named ...layers.N.self_attn.{q,k,v,o}_proj.lora_{A,B}[.default].weight
     * (A: r x in, B: out x r, Hugging Face row order). Applied on the fly,
     * y = W x + scale * B (A x), so quantized base weights stay as they are;
     * A and B are kept as float32 copies. */
    const char *lora_path;
    const char *lora_prefix; /* use only tensors whose names start with this (e.g.
                                "decoder." in a COMI checkpoint); NULL: all */
    float lora_scale;        /* alpha / r; <= 0: from adapter_config.json beside the adapter
                                (lora_alpha / r, or / sqrt(r) with use_rslora) */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_model_params;

COMI_API comi_model_params comi_model_default_params(void);

/* Loads path: a .gguf file or a directory with config.json and
 * model.safetensors (or model.safetensors.index.json + shards). Checks the
 * architecture, every hyper-parameter and every tensor's shape and type;
 * a failure names the file and the field or tensor. params NULL means the
 * defaults. On success *out owns the model (free with comi_model_free). */
COMI_API comi_status comi_model_load(comi_ctx *ctx, const char *path,
                                     const comi_model_params *params, comi_model **out);
/* Frees the model, its mappings and its tokenizer. No session of the model
 * may be alive. */
COMI_API void comi_model_free(comi_model *model);

typedef struct comi_model_info {
    const char *arch;        /* "llama", "qwen2", "qwen3" (static string) */
    const char *format;      /* "gguf" or "hf" (static string) */
    int32_t n_embd;          /* d_model */
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    int32_t n_ff;
    int32_t n_vocab;
    int32_t n_ctx_train;     /* trained context length (0 when unknown) */
    float rope_theta;
    float norm_eps;
    bool tied_embeddings;    /* the output matrix is the token embedding matrix */
    bool qkv_bias;           /* q/k/v projections have biases (qwen2) */
    bool qk_norm;            /* per-head q/k RMSNorm (qwen3) */
    bool has_lora;           /* a LoRA adapter is applied */
    const char *weight_type; /* type of most matrix bytes ("F16", "Q4_K", ...) */
    const char *embd_type;   /* type of the token embedding matrix */
    int64_t n_params;        /* parameters of every tensor */
    uint64_t weight_bytes;   /* bytes of every tensor as stored (mapped) */
    int32_t bos_id;          /* -1 when unknown */
    int32_t eos_id;          /* -1 when unknown (first of the EOS ids) */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_model_info;

/* Fills *out. Strings point to static or model-owned memory. */
COMI_API void comi_model_get_info(const comi_model *model, comi_model_info *out);

/* Tensors of the model's file(s), in file order (for inspection). */
typedef struct comi_tensor_info {
    const char *name;  /* owned by the model */
    const char *type;  /* "F32", "F16", "Q4_K", ... ("?" for types without a name) */
    int32_t n_dims;
    int64_t shape[4];  /* outermost first, as PyTorch writes it: a weight matrix is
                          [out_features, in_features]; unused entries are 0 */
    uint64_t nbytes;
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_tensor_info;

COMI_API int64_t comi_model_n_tensors(const comi_model *model);
/* Fills *out for tensor i; false when i is out of range. */
COMI_API bool comi_model_tensor_info(const comi_model *model, int64_t i, comi_tensor_info *out);

/* Bytes a session of max_tokens positions allocates (KV cache + scratch)
 * with a float32 KV cache; comi_session_bytes gives the figure for the
 * cache type of a context. */
COMI_API uint64_t comi_model_session_bytes(const comi_model *model, int64_t max_tokens);
/* Bytes comi_session_new(ctx, model, max_tokens, ...) allocates: the KV
 * cache in ctx's kv_type plus scratch (UINT64_MAX on overflow or a bad
 * max_tokens). */
COMI_API uint64_t comi_session_bytes(const comi_ctx *ctx, const comi_model *model,
                                     int64_t max_tokens);

/* The model's tokenizer, or NULL when the file/directory has none. Owned by
 * the model; valid until comi_model_free. */
COMI_API const comi_tokenizer *comi_model_tokenizer(const comi_model *model);

/* True when id is one of the model's end-of-sequence ids. */
COMI_API bool comi_model_is_eos(const comi_model *model, int32_t id);

/* Token embedding rows, dequantized to float32: out (n x n_embd) row i is
 * the embedding of ids[i]. Fails on ids outside [0, n_vocab). */
COMI_API comi_status comi_model_embed(comi_ctx *ctx, const comi_model *model, const int32_t *ids,
                                      int64_t n, float *out);

/* A session holds the KV cache of up to max_tokens positions (memory is
 * reserved up front but touched only as positions fill) and the logits of
 * the last evaluated position. *out owned by the caller (comi_session_free).
 * COMI_ERR_LIMIT when max_tokens is over the context's max_context_tokens or
 * comi_session_bytes(ctx, model, max_tokens) over its max_bytes. The cache
 * holds float32 or half values as ctx's kv_type says. */
COMI_API comi_status comi_session_new(comi_ctx *ctx, const comi_model *model, int64_t max_tokens,
                                      comi_session **out);
COMI_API void comi_session_free(comi_session *sess);
/* Forgets every position (the next eval starts at position 0). */
COMI_API void comi_session_reset(comi_session *sess);
/* Positions held in the KV cache (the next eval's first position). */
COMI_API int64_t comi_session_n_past(const comi_session *sess);
COMI_API int64_t comi_session_max_tokens(const comi_session *sess);

typedef struct comi_eval_params {
    int32_t n_layers;   /* run the first n_layers layers (0 = all) */
    float *hidden_out;  /* NULL or (n x n_embd): states after n_layers layers with the
                           final RMSNorm applied */
    float *logits_out;  /* NULL or (n_logits x n_vocab): logits of the batch's last
                           n_logits positions (needs n_layers = all) */
    int64_t n_logits;   /* 0..n; with logits_out */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_eval_params;

COMI_API comi_eval_params comi_eval_default_params(void);

/* Appends n positions to the session and runs them through the model:
 * either token ids (ids != NULL, each in [0, n_vocab)) or input embedding
 * rows (embd != NULL, n x n_embd, e.g. [memory vectors ; question token
 * embeddings]); exactly one of the two. Positions are n_past .. n_past+n-1;
 * attention is causal over the whole cache. When all layers run, the logits
 * of the last position are kept in the session (comi_session_logits) for
 * comi_generate. Running fewer layers leaves the deeper layers' cache empty:
 * the session then only accepts evals of at most that many layers until
 * comi_session_reset. Fails (nothing appended) when n_past + n would exceed
 * max_tokens, on a bad id or on bad parameters.
 * Checks comi_ctx_cancel before each layer of each micro-batch (of at most
 * 512 positions), so a long prefill stops within one layer's pass over one
 * micro-batch: COMI_ERR_CANCELLED then, with the session as it was before
 * the call (n_past, its cached positions and its last logits unchanged; the
 * positions this call would have appended are discarded, and an eval after
 * comi_ctx_reset_cancel gives the same results as if the cancelled one had
 * never run); hidden_out and logits_out hold unspecified values. */
COMI_API comi_status comi_session_eval(comi_ctx *ctx, comi_session *sess, const int32_t *ids,
                                       const float *embd, int64_t n,
                                       const comi_eval_params *params);

/* The logits (n_vocab) of the last position of the last full-depth eval, or
 * NULL when there is none. Owned by the session; valid until the next call
 * on it. */
COMI_API const float *comi_session_logits(const comi_session *sess);

typedef struct comi_generate_params {
    int32_t max_new_tokens;   /* default 20 */
    float repetition_penalty; /* 1 = off (default). Hugging Face semantics over the ids
                                 generated by this call: a positive logit is divided by it,
                                 a negative one multiplied */
    bool stop_at_eos;         /* stop before emitting an EOS id (default true) */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_generate_params;

COMI_API comi_generate_params comi_generate_default_params(void);

/* Greedy decoding from the session's last logits (an eval must come
 * first). Writes up to max_new_tokens ids to out_ids and their count to
 * *n_out; an EOS id ends generation and is not written. Every emitted id
 * except the last is appended to the session (so a later eval continues
 * after the last id once the caller evaluates it). Ties pick the lowest id.
 * Checks comi_ctx_cancel before each token (and before each layer of the
 * eval that appends it): COMI_ERR_CANCELLED then, with the ids generated so
 * far in out_ids[0 .. *n_out); the session holds the positions whose evals
 * completed (comi_session_n_past says how many). */
COMI_API comi_status comi_generate(comi_ctx *ctx, comi_session *sess,
                                   const comi_generate_params *params, int32_t *out_ids,
                                   int32_t *n_out);

/* ------------------------------------------------------------------------ */
/* Soft pipeline (src/comi/pipeline.c)                                           */
/* ------------------------------------------------------------------------ */

/* The soft pipeline is the paper's system: an encoder LM turns
 * [context segment ; question] into hidden states, the merge (comi_merge)
 * turns each segment's context rows into ~n/merge_size memory vectors, an
 * optional trained fusion block transforms them, and a decoder LM answers
 * greedily from [memory vectors ; question token embeddings]. The exact
 * semantics are DESIGN.md's "The soft pipeline".
 *
 * A comi_pipeline holds the weights: encoder, decoder, optional fusion block
 * or alignment layer, the tokenizer, and the defaults a COMI checkpoint
 * carries (its trained alpha/beta and encoder depth). It is immutable after
 * load and may be shared by threads, each calling with its own comi_ctx.
 *
 * Weights, two ways:
 *  - training-free: one base model (GGUF file or Hugging Face directory),
 *    loaded once; encoder = its first encoder_layers layers (+ final norm),
 *    decoder = the whole model, no fusion;
 *  - trained: a COMI checkpoint directory as the reference training saves it
 *    (model.safetensors with encoder., decoder. (PEFT LoRA),
 *    memory_fusion_layer., semantic_alignment_layer. and the four
 *    alpha/beta scalars) plus its base model (config, tokenizer), or the
 *    GGUF files `comi convert` made from one (see README "Checkpoints"). */

typedef struct comi_pipeline comi_pipeline;

typedef struct comi_pipeline_load_params {
    const char *model;      /* base model: .gguf file or HF directory (required) */
    const char *checkpoint; /* NULL: training-free; else a COMI checkpoint directory
                               (model.safetensors) or the PREFIX `comi convert` wrote */
    const char *tokenizer;  /* NULL: the base model's; else a .gguf file, HF directory or
                               tokenizer.json (for a base directory without one) */
    float lora_alpha;       /* decoder LoRA alpha (scale = alpha / r); <= 0: from
                               adapter_config.json in the checkpoint directory, else 32
                               (the reference training's default) */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_pipeline_load_params;

COMI_API comi_pipeline_load_params comi_pipeline_load_default_params(void);

/* Loads the weights. Every key of a checkpoint is accounted for: a missing or
 * unknown key, or a shape that disagrees with the base model, fails with a
 * message naming the tensor (and both shapes). *out: free with
 * comi_pipeline_free. */
COMI_API comi_status comi_pipeline_load(comi_ctx *ctx, const comi_pipeline_load_params *params,
                                        comi_pipeline **out);

/* A training-free pipeline over models the caller already loaded (borrowed:
 * they must outlive the pipeline; encoder may equal decoder). tokenizer may
 * be NULL: then only the *_ids calls work. Fails when the hidden sizes
 * differ (no alignment layer to map them). */
COMI_API comi_status comi_pipeline_from_models(comi_ctx *ctx, const comi_model *encoder,
                                               const comi_model *decoder,
                                               const comi_tokenizer *tokenizer,
                                               comi_pipeline **out);
COMI_API void comi_pipeline_free(comi_pipeline *pl);

typedef struct comi_pipeline_info {
    const char *description; /* one line: what was loaded (owned by the pipeline) */
    int32_t encoder_layers;  /* default encoder depth (checkpoint: its encoder's) */
    int32_t encoder_n_layer; /* layers the encoder weights have */
    int32_t d_encoder, d_decoder;
    int32_t fusion_layers;   /* 0: no fusion block */
    bool alignment;          /* a linear alignment layer maps encoder -> decoder width */
    bool decoder_lora;
    bool shared_model;       /* encoder and decoder are one loaded model */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_pipeline_info;

COMI_API void comi_pipeline_get_info(const comi_pipeline *pl, comi_pipeline_info *out);
/* The pipeline's tokenizer (owned by it), or NULL when it has none. */
COMI_API const comi_tokenizer *comi_pipeline_tokenizer(const comi_pipeline *pl);

typedef struct comi_answer_params {
    int32_t encoder_layers;   /* K >= 1; 0: the pipeline's default (8 for a base model,
                                 clamped to its layer count; a checkpoint's own depth) */
    int64_t segment_size;     /* context tokens per encoded segment (default 10000) */
    comi_merge_params merge;  /* merge_size = compression rate (default 16), weights,
                                 switches */
    int32_t max_new_tokens;   /* default 20 */
    float repetition_penalty; /* on generated ids (default 1.3): a positive logit is divided
                                 by it, a negative one multiplied */
    bool penalty_per_occurrence; /* false (default): once per id that occurs among the
                                    generated ids, as Hugging Face's generate() and the
                                    authors do (the golden pipeline ids); true: once per
                                    earlier occurrence, compounding (an explicit option) */
    uint64_t max_bytes;          /* refuse (COMI_ERR_LIMIT, before any work) a context whose
                                    buffers would exceed this; 0 (default): the context's
                                    max_bytes (comi_ctx_params), itself physical memory when 0.
                                    Nonzero overrides the context's limit for this call */
    bool keep_logits;         /* fill comi_answer_result.logits (default true) */
    struct comi_encode_cache *encode_cache; /* NULL (default), or a cache of encoder states:
                                 answers on the same context and question (same pipeline,
                                 encoder depth and segments) reuse them instead of encoding
                                 again, e.g. one context at several merge sizes or merge
                                 switches. Results are identical with or without it */
    uint8_t reserved[COMI_RESERVED_BYTES - sizeof(void *)]; /* fields of later versions */
} comi_answer_params;

/* Encoder states kept between answers on one context (comi_answer_params.
 * encode_cache). It holds the segments of the last context encoded (at most
 * max_bytes of states; 0: 256 MiB), is bound to the first pipeline it serves
 * (another pipeline fails with COMI_ERR_INVALID_ARG) and must be freed before
 * that pipeline. Not thread-safe: one caller at a time. */
typedef struct comi_encode_cache comi_encode_cache;
COMI_API comi_status comi_encode_cache_new(comi_ctx *ctx, uint64_t max_bytes,
                                           comi_encode_cache **out);
COMI_API void comi_encode_cache_free(comi_encode_cache *cache);
/* Lookups answered from the cache and lookups that encoded. */
COMI_API void comi_encode_cache_stats(const comi_encode_cache *cache, uint64_t *hits,
                                      uint64_t *misses);

/* Generic defaults (merge weights 1, switches on). */
COMI_API comi_answer_params comi_answer_default_params(void);
/* The defaults for this pipeline: a checkpoint's trained alpha/beta and
 * encoder depth. */
COMI_API comi_answer_params comi_pipeline_answer_params(const comi_pipeline *pl);

typedef struct comi_answer_result {
    char *text;               /* the answer, special tokens stripped, surrounding
                                 whitespace trimmed, valid UTF-8 (bytes that form no
                                 character, as when generation stops inside one, are
                                 U+FFFD) (NULL for *_ids calls on a pipeline without
                                 tokenizer) */
    int32_t *ids;             /* (n_ids,) generated ids, EOS not included */
    int32_t n_ids;
    bool empty_context;       /* the context had no tokens: answered from the question alone */
    int64_t n_context_tokens;
    int64_t n_question_tokens;
    int64_t n_segments;
    int32_t encoder_layers;   /* the depth used */
    int64_t d_model;          /* width of memory (the encoder's) */
    int64_t n_memory;         /* memory vectors over all segments */
    float *memory;            /* (n_memory, d_model) merged memory, segment after segment
                                 (before fusion / alignment) */
    int64_t n_groups;
    int32_t *group_sizes;     /* (n_groups,) every segment's group sizes, concatenated
                                 (coarse on: zeros included) */
    int64_t n_vocab;
    float *logits;            /* (n_vocab,) decoder logits at the last input position, or
                                 NULL when keep_logits is false */
    double ms_tokenize, ms_encode, ms_merge, ms_fuse, ms_prefill, ms_generate, ms_total;
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_answer_result;

/* Answers question from context (UTF-8, NUL-terminated). Tokenizes both
 * without special tokens; an empty (or all-whitespace) context answers from
 * the question alone and sets empty_context; an empty question fails. */
COMI_API comi_status comi_pipeline_answer(comi_ctx *ctx, const comi_pipeline *pl,
                                          const char *context, const char *question,
                                          const comi_answer_params *params,
                                          comi_answer_result *out);
/* The same with the context given as n_docs passages (joined with "\n"). */
COMI_API comi_status comi_pipeline_answer_documents(comi_ctx *ctx, const comi_pipeline *pl,
                                                    const char *const *docs, size_t n_docs,
                                                    const char *question,
                                                    const comi_answer_params *params,
                                                    comi_answer_result *out);
/* The same from token ids (n_context may be 0; n_question >= 1). */
COMI_API comi_status comi_pipeline_answer_ids(comi_ctx *ctx, const comi_pipeline *pl,
                                              const int32_t *context_ids, int64_t n_context,
                                              const int32_t *question_ids, int64_t n_question,
                                              const comi_answer_params *params,
                                              comi_answer_result *out);
COMI_API void comi_answer_result_free(comi_answer_result *res);

/* Baselines without compression: the decoder reads [the first
 * max_context_tokens context tokens (all when < 0) ; question tokens] as
 * plain tokens (no BOS), then decodes as above — "full context" and
 * "truncation" in evaluations. n_memory reports the context tokens kept;
 * memory and group_sizes stay NULL. */
COMI_API comi_status comi_pipeline_answer_tokens(comi_ctx *ctx, const comi_pipeline *pl,
                                                 const char *context, const char *question,
                                                 int64_t max_context_tokens,
                                                 const comi_answer_params *params,
                                                 comi_answer_result *out);

/* Converts a COMI checkpoint (directory with model.safetensors) plus its
 * base model into GGUF files the runtime maps directly (layout in README
 * "COMI checkpoints"): PREFIX.encoder.gguf, PREFIX.decoder.gguf (LoRA merged
 * into q/k/v/o), PREFIX.fusion.gguf when the checkpoint has a fusion block,
 * and PREFIX.comi.gguf (alpha/beta, layer counts, alignment layer). type:
 * "F32", "F16" (NULL: F16), "Q8_0" or "Q4_K" for the weight matrices (rows
 * whose length the block size does not divide fall back to Q8_0, then F16);
 * norms and biases stay F32. lora_alpha as in comi_pipeline_load_params.
 * summary (may be NULL) receives one line on what was written. Load the
 * result with comi_pipeline_load(checkpoint = PREFIX, model = base). */
COMI_API comi_status comi_checkpoint_convert(comi_ctx *ctx, const char *checkpoint,
                                             const char *base, const char *out_prefix,
                                             const char *type, float lora_alpha, char *summary,
                                             size_t summary_len);

/* ---- the stages, one by one ---- */

/* Encoder: runs [context_ids ; question_ids] (n = n_context + n_question,
 * positions from 0, causal) through the first encoder_layers layers (0: the
 * pipeline's default) and the final norm. hidden_out: NULL or (n, d_encoder);
 * query_out: NULL or (d_encoder,), the mean of the question rows. */
COMI_API comi_status comi_pipeline_encode(comi_ctx *ctx, const comi_pipeline *pl,
                                          const int32_t *context_ids, int64_t n_context,
                                          const int32_t *question_ids, int64_t n_question,
                                          int32_t encoder_layers, float *hidden_out,
                                          float *query_out);

/* Merge of one segment from encoder output: hidden is (n_context +
 * n_question, d) with the context rows first; the query is the mean of the
 * question rows; then comi_merge on the context rows. */
COMI_API comi_status comi_pipeline_merge(comi_ctx *ctx, const float *hidden, int64_t n_context,
                                         int64_t n_question, int64_t d_model,
                                         const comi_merge_params *params, comi_merge_result *out);

/* Fusion of one segment's memory (n_memory, d_encoder) into the decoder's
 * input space: out (n_memory, d_decoder). The fusion block(s) + final norm
 * run causally over the memory alone (positions from 0); without a block, the
 * alignment layer when the widths differ, else a copy. */
COMI_API comi_status comi_pipeline_fuse(comi_ctx *ctx, const comi_pipeline *pl, const float *memory,
                                        int64_t n_memory, float *out);

/* Decoder: input embeddings [memory (n_memory, d_decoder) ; embedding rows of
 * question_ids], positions from 0, then greedy decoding with gen (NULL:
 * 20 tokens, penalty 1.3, stop at EOS). logits_out: NULL or (n_vocab,), the
 * logits at the last input position. ids_out has room for max_new_tokens. */
COMI_API comi_status comi_pipeline_decode(comi_ctx *ctx, const comi_pipeline *pl,
                                          const float *memory, int64_t n_memory,
                                          const int32_t *question_ids, int64_t n_question,
                                          const comi_generate_params *gen, float *logits_out,
                                          int32_t *ids_out, int32_t *n_out);

/* ------------------------------------------------------------------------ */
/* Text-mode compression (src/text/text.c)                                       */
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
COMI_API comi_status comi_encoder_load(comi_ctx *ctx, const char *spec, comi_encoder **out);
COMI_API void comi_encoder_free(comi_encoder *enc);

typedef struct comi_text_params {
    double ratio;          /* keep at most floor(original_tokens / ratio) tokens (>= 1) */
    int64_t target_tokens; /* when > 0, keep at most this many tokens (overrides ratio) */
    const comi_encoder *encoder; /* NULL: the built-in lexical encoder */
    bool keep_titles;      /* keep document titles / first lines when budget allows */
    bool coarse;           /* inter-group budget reallocation by MIG (default on) */
    bool redundancy;       /* redundancy terms (default on) */
    float alpha;           /* relevance weight (default set by the implementation) */
    float beta;            /* redundancy weight (default set by the implementation) */
    /* Knobs added after the first release (defaults from comi_text_default_params). */
    float temperature;     /* coarse softmax temperature: lower = budget more concentrated
                              on the best groups */
    float context_weight;  /* weight of a unit's sentence and group relevance in its own */
    int32_t min_unit_words; /* clauses shorter than this merge with their neighbour */
    int32_t min_group_words; /* a group whose quota falls below this gets none */
    int32_t window_words;  /* group size when the text has no paragraphs or documents */
    float bridge_weight;   /* relevance a titled group gains when a relevant group names
                              its title (multi-hop questions); 0 = off */
    float centrality_weight; /* weight of a unit's cosine with the whole context's
                                centroid (helps generic instructions); 0 = off */
    float lead_weight;     /* weight of 1 / (1 + position of the unit in its group) */
    int32_t summary;       /* -1 (default): automatic; 1: the question names no content
                              (a "summarise" instruction), keep the context's central,
                              non-redundant content; 0: always question-driven */
    /* Fields taken from the reserved tail (both zero = the earlier behaviour). */
    const comi_tokenizer *tokenizer; /* non-NULL: ratio and target_tokens budgets, and the
                                        result's token counts, are this tokenizer's tokens
                                        (no BOS/EOS) instead of words; the text is still
                                        selected by words, with the word budget shrunk until
                                        the output's tokens fit (at most 12 compressions) */
    int32_t unit;          /* comi_text_unit: what the output is made of (default word) */
    bool answer_first;     /* for "who/when/how many" questions, keep each group's most
                              relevant sentence holding a candidate answer (a name, number
                              or date) whole before the other picks, when its share can
                              hold it, so a long lead sentence cannot crowd it out
                              (default off: on the shared sets it moves recall by -0.013
                              to +0.007, README) */
    uint8_t reserved[COMI_RESERVED_BYTES - 13]; /* fields of later versions (see comi.h top) */
} comi_text_params;

/* The granularity of text mode's output (comi_text_params.unit). */
typedef enum comi_text_unit {
    COMI_UNIT_WORD = 0,     /* clauses, and under a tight budget the best window of words of a
                               clause (the default: best answer recall) */
    COMI_UNIT_CLAUSE = 1,   /* whole clauses only (never cut inside one) */
    COMI_UNIT_SENTENCE = 2  /* whole sentences only, each byte for byte as in the input, in
                               their input order; consecutive kept sentences keep the input's
                               own separator, others are joined by a space (same line) or a
                               line break (other line, paragraph or document), so a title line
                               never runs into its text. A budget shorter than every sentence
                               fails (COMI_ERR_INVALID_ARG) instead of cutting one */
} comi_text_unit;

COMI_API comi_text_params comi_text_default_params(void);

/* Sets one knob of p by its name (the field names above: "alpha", "beta",
 * "temperature", "context_weight", "min_unit_words", "min_group_words",
 * "window_words", "bridge_weight", "lead_weight", "centrality_weight",
 * "summary", "keep_titles", "coarse", "redundancy", "answer_first", "ratio",
 * "target_tokens"), checking its range; the one place the CLI, the service
 * and Python turn a knob's name and value into params. COMI_ERR_INVALID_ARG
 * naming the knob (and listing the names when it is unknown). */
COMI_API comi_status comi_text_set_param(comi_ctx *ctx, comi_text_params *p, const char *name,
                                double value);

/* The knob names comi_text_set_param accepts (NULL-terminated list). */
COMI_API const char *const *comi_text_param_names(void);

/* Sets p->unit from its name: "word", "clause", "sentence" or "readable" (the
 * service's and Python's name for "sentence"). COMI_ERR_INVALID_ARG naming
 * the value otherwise. */
COMI_API comi_status comi_text_set_unit(comi_ctx *ctx, comi_text_params *p, const char *name);

/* The name of a comi_text_unit ("word", "clause", "sentence"), NULL when
 * unit is none of them. */
COMI_API const char *comi_text_unit_name(int32_t unit);

typedef struct comi_text_result {
    char *text;                /* compressed text, NUL-terminated; free with comi_text_result_free */
    int64_t original_tokens;   /* tokens of the input (words for the lexical encoder) */
    int64_t compressed_tokens; /* tokens of text, <= the budget */
    double ratio;              /* original_tokens / max(compressed_tokens, 1) */
    double ms;                 /* wall time of the call */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_text_result;

/* Compresses one context (documents may be separated by blank lines).
 * COMI_ERR_LIMIT when its words are over the context's max_context_tokens
 * (counted before the word list is built) or the working set is over its
 * max_bytes (checked once words and units are known, before the vectors). */
COMI_API comi_status comi_compress_text(comi_ctx *ctx, const char *context, const char *question,
                                        const comi_text_params *params, comi_text_result *out);
/* Compresses a list of n_docs documents (each a NUL-terminated string). */
COMI_API comi_status comi_compress_documents(comi_ctx *ctx, const char *const *docs, size_t n_docs,
                                             const char *question, const comi_text_params *params,
                                             comi_text_result *out);
COMI_API void comi_text_result_free(comi_text_result *res);

/* Compresses n (context, question) pairs with the same params, one after
 * another on ctx, each exactly as comi_compress_text would: results[i] and
 * statuses[i] (arrays of n, filled by the call) receive pair i's result and
 * status; errors (NULL, or an array of n) receives NULL or a copy of pair
 * i's failure message (free each with comi_free). A failing pair does not
 * stop the others; its result is zeroed. Returns COMI_OK when every pair
 * succeeded, else the first failure's status with "batch item I: ..." in
 * comi_errmsg; COMI_ERR_INVALID_ARG (nothing filled) on NULL arrays with
 * n > 0. Free every result with comi_text_result_free. */
COMI_API comi_status comi_compress_batch(comi_ctx *ctx, const char *const *contexts,
                                         const char *const *questions, size_t n,
                                         const comi_text_params *params,
                                         comi_text_result *results, comi_status *statuses,
                                         char **errors);

/* Number of tokens text mode counts in text with the lexical encoder:
 * whitespace-separated words (ASCII and Unicode spaces). */
COMI_API int64_t comi_text_count_tokens(const char *text);

/* ------------------------------------------------------------------------ */
/* Evaluation (src/eval/eval.c)                                                  */
/* ------------------------------------------------------------------------ */

/* Answer metrics, exactly as DESIGN.md "Metrics" defines them (the SQuAD
 * conventions): normalise = lower-case, drop ASCII punctuation, drop the
 * words a/an/the, collapse whitespace. */

/* Writes the normalised form of s to *out (NUL-terminated; free with
 * comi_free). Fails on invalid UTF-8. */
COMI_API comi_status comi_normalize_answer(comi_ctx *ctx, const char *s, char **out);

typedef struct comi_answer_scores {
    double exact_match; /* 1 if normalised prediction == a normalised reference */
    double f1;          /* token-overlap F1 of the normalised strings */
    double accuracy;    /* 1 if a normalised reference occurs in the normalised prediction */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_answer_scores;

/* Scores a prediction against n_refs references (maximum over references;
 * all zero when n_refs is 0). */
COMI_API comi_status comi_score_answer(comi_ctx *ctx, const char *prediction,
                                       const char *const *refs, size_t n_refs,
                                       comi_answer_scores *out);

/* Answer recall of a compressed text: 1 if a normalised reference occurs
 * inside the normalised text, else 0 (maximum over references). */
COMI_API comi_status comi_answer_recall(comi_ctx *ctx, const char *text, const char *const *refs,
                                        size_t n_refs, double *out);

/* A 95% percentile-bootstrap interval of the mean of v[0..n): resamples
 * (100..1000000) means of n values drawn with replacement (splitmix64 seeded
 * with seed, so the interval is reproducible), and their 2.5th and 97.5th
 * percentiles (linear interpolation) in *lo, *hi. n = 0 gives [0, 0]. */
COMI_API comi_status comi_bootstrap_interval(comi_ctx *ctx, const double *v, size_t n,
                                             int32_t resamples, uint64_t seed, double *lo,
                                             double *hi);

/* One example of a COMI JSONL file: `input` (context), `prompt` (question),
 * `answer` (string or list of strings), optional `documents` (list of
 * strings) and `id` (string or number). */
typedef struct comi_example {
    char *id;          /* the `id` field, or "line:N" when absent */
    char *input;       /* the whole context */
    char *prompt;      /* the question or instruction */
    char **answers;    /* n_answers reference strings */
    size_t n_answers;
    char **documents;  /* n_documents passages, NULL when absent */
    size_t n_documents;
    int64_t line;      /* 1-based line number in the file */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_example;

typedef struct comi_dataset {
    comi_example *examples;
    size_t n_examples;
    size_t n_skipped;     /* bad lines skipped (skip_bad only) */
    char first_error[512]; /* message of the first skipped line ("" when none) */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_dataset;

/* Loads a COMI JSONL file. Blank lines are ignored. A malformed line
 * (bad JSON, missing or mistyped field, invalid UTF-8) fails the load with a
 * message naming the file, line and field — or, with skip_bad, is counted in
 * n_skipped and left out. Free with comi_dataset_free. */
COMI_API comi_status comi_dataset_load(comi_ctx *ctx, const char *path, bool skip_bad,
                                       comi_dataset **out);
COMI_API void comi_dataset_free(comi_dataset *ds);

/* Baseline compressors the evaluation compares against; every one keeps at
 * most budget whitespace-separated words. */
typedef enum comi_baseline {
    COMI_BASELINE_TRUNCATE = 0, /* the first budget words */
    COMI_BASELINE_RANDOM = 1,   /* budget words drawn uniformly (seeded), original order */
    COMI_BASELINE_BM25 = 2      /* sentences ranked by BM25 against the question, the top
                                   ones that fit, original order */
} comi_baseline;

/* Runs a baseline on context (question is used by BM25 only). The result's
 * fields are filled as for comi_compress_text; free with
 * comi_text_result_free. */
COMI_API comi_status comi_compress_baseline(comi_ctx *ctx, comi_baseline method,
                                            const char *context, const char *question,
                                            int64_t budget, uint64_t seed, comi_text_result *out);

/* ------------------------------------------------------------------------ */
/* Training (src/comi/train*.c)                                             */
/* ------------------------------------------------------------------------ */

/* Fine-tunes a COMI compressor for a base model on CPU, as the authors'
 * instruction_finetune.py does (DESIGN.md "Training"): encoder = base layers
 * 0..K-1 + final norm + embeddings, fully trained; merge with gradients
 * through the fine MIG weights; fusion block(s) initialised from base layers
 * 0.. + final norm; frozen decoder with LoRA on q/k/v/o; loss = mean
 * cross-entropy over the answer ids; AdamW as the Hugging Face Trainer
 * applies it. float32 master weights. */

typedef struct comi_train_progress {
    int64_t step, total_steps; /* optimiser steps done / planned */
    double loss;               /* mean loss of this step's batch */
    double lr;                 /* learning rate this step used */
    double grad_norm;          /* global gradient norm before clipping */
    double eval_loss;          /* NaN unless an evaluation ran after this step */
    double elapsed_s, eta_s;   /* wall time so far (this run) and estimated remaining */
    double tokens_per_s;       /* encoder + decoder tokens per second (this run) */
    bool checkpoint_saved;     /* a checkpoint was written after this step */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_train_progress;

typedef void (*comi_train_progress_fn)(void *user, const comi_train_progress *p);

typedef struct comi_train_params {
    const char *model;       /* base model: .gguf file or HF directory (required) */
    const char *data;        /* COMI JSONL (input/prompt/answer, or context_ids/question_ids/
                                answer_ids) (required) */
    const char *out_dir;     /* checkpoint directory (required unless dump_grad) */
    const char *init;        /* NULL, or a checkpoint (directory or .safetensors) whose tensors
                                replace the base-initialised ones */
    const char *log;         /* JSONL log path; NULL: out_dir/log.jsonl */
    const char *dump_grad;   /* non-NULL: write d(mean loss over all data)/d(tensor) at the
                                starting weights to this safetensors file (no dropout), set
                                *dump_loss, train nothing */
    const char *eval_data;   /* NULL, or held-out COMI JSONL for evaluation losses */
    int32_t encoder_layers;  /* default 8 */
    int32_t fusion_layers;   /* default 1 */
    int64_t merge_size;      /* default 16 */
    int64_t lora_r;          /* default 128 */
    float lora_alpha;        /* default 32 */
    float lora_dropout;      /* default 0.05 */
    double lr;               /* default 1e-5 */
    bool cosine;             /* cosine schedule (default true); false: constant */
    double warmup_ratio;     /* default 0.1 */
    double weight_decay;     /* default 0.01 (tensors of 2+ dimensions) */
    double max_grad_norm;    /* default 1.0; <= 0: no clipping */
    int32_t batch_size;      /* examples per optimiser step (losses averaged; default 1) */
    int64_t steps;           /* > 0: this many optimiser steps; 0: from epochs */
    double epochs;           /* default 1 */
    bool shuffle;            /* reshuffle every epoch from the seed (default true) */
    uint64_t seed;           /* default 42: LoRA init, data order, dropout */
    bool resume;             /* continue from out_dir's last checkpoint, bit-identically */
    int64_t stop_after;      /* > 0: stop after this step (with a checkpoint) although the
                                schedule plans more; --resume continues (time-sliced runs) */
    int64_t save_every;      /* checkpoint every N steps (default 100) and at the end */
    int64_t eval_every;      /* evaluate every N steps (default 0: only at the end) */
    int64_t eval_limit;      /* at most N evaluation rows (default 64; 0: all) */
    int64_t context_tokens;  /* > 0: keep the first N context tokens of each row (the
                                context limit max_context_tokens of the ctx applies after) */
    comi_train_progress_fn progress; /* called after every step (may be NULL) */
    void *progress_user;
    double *dump_loss;       /* receives the mean loss of dump_grad (may be NULL) */
    uint8_t reserved[COMI_RESERVED_BYTES]; /* fields of later versions (see comi.h top) */
} comi_train_params;

COMI_API comi_train_params comi_train_default_params(void);

/* Trains. Writes out_dir/model.safetensors (trained tensors and the MIG
 * scalars under the authors' checkpoint names; comi_pipeline_load reads it
 * with the base model), adapter_config.json, optimizer.safetensors and
 * trainer_state.json (for resume) every save_every steps and at the end,
 * and one JSON line per step to the log. A row that cannot be used fails
 * the run (COMI_ERR_FORMAT) with the file and line number; a non-finite
 * loss or gradient stops it (COMI_ERR_INTERNAL) and leaves the last good
 * checkpoint in place. Uses ctx's threads. */
COMI_API comi_status comi_train(comi_ctx *ctx, const comi_train_params *params);

#ifdef __cplusplus
}
#endif

#endif /* COMI_H */
