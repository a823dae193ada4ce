/*
 * tokenizer_impl.h — the tokenizer object, the builder functions
 * (tokenizer_vocab.c) the loaders use (tokenizer_gguf.c, tokenizer_hf.c) and
 * the helpers the builder and the engine (tokenizer.c) share. Private to the
 * tokenizer files (and white-box tests). Dependencies, no cycles:
 * vocab <- gguf, hf, engine <- api.
 */
#ifndef COMI_TOKENIZER_IMPL_H
#define COMI_TOKENIZER_IMPL_H

#include "runtime/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef enum tok_kind { TOK_KIND_SPM = 0, TOK_KIND_BPE = 1 } tok_kind;

/* Normalizer steps (Hugging Face normalizers), applied in order to every
 * text fragment between special tokens before pre-tokenization. */
typedef enum tok_norm_kind {
    TOK_NORM_NFC,
    TOK_NORM_NFKC,
    TOK_NORM_NFD,
    TOK_NORM_NFKD,
    TOK_NORM_LOWERCASE,
    TOK_NORM_PREPEND, /* a = the prefix; skipped on empty text */
    TOK_NORM_REPLACE, /* every a -> b (re != NULL: a regex pattern) */
    TOK_NORM_STRIP    /* a[0] = strip left, b[0] = strip right (whitespace) */
} tok_norm_kind;

typedef struct tok_norm {
    tok_norm_kind kind;
    char *a, *b; /* NUL-terminated, owned */
    size_t a_len, b_len;
    pcre2_code *re; /* owned; only for regex replace */
} tok_norm;

/* Pre-tokenizer steps, applied in order to the list of pieces. */
typedef enum tok_pre_kind {
    TOK_PRE_SPLIT,        /* regex: matches and the gaps between them become pieces */
    TOK_PRE_SPLIT_REMOVE, /* regex: gaps become pieces, matches are dropped */
    TOK_PRE_PREFIX_SPACE, /* Hugging Face ByteLevel add_prefix_space: ' ' before every piece not
                             starting with one */
    TOK_PRE_METASPACE     /* ' ' -> replacement; prepend per scheme (a = replacement) */
} tok_pre_kind;

typedef struct tok_pre {
    tok_pre_kind kind;
    pcre2_code *re; /* owned, SPLIT kinds */
    char repl[8];   /* METASPACE replacement (UTF-8), NUL-terminated */
    int prepend;    /* METASPACE: 0 never, 1 first fragment only, 2 always */
} tok_pre;

/* One BPE merge: (left, right) -> result, priority rank (lower first). */
typedef struct tok_merge {
    int32_t left, right, result, rank;
} tok_merge;

struct comi_tokenizer {
    tok_kind kind;
    int32_t n_vocab;

    /* Vocabulary: piece id i is pool[piece_off[i] .. + piece_len[i]) */
    char *pool;
    size_t pool_len, pool_cap;
    size_t *piece_off;   /* (n_vocab,) */
    uint32_t *piece_len; /* (n_vocab,) */
    float *score;        /* (n_vocab,) SPM scores; NULL when none */
    uint8_t *attr;       /* (n_vocab,) TOK_ATTR_* bits */

    /* piece text -> id, open addressing, -1 = empty slot; a later id with
     * the same text replaces an earlier one (llama.cpp's token_to_id). */
    int32_t *map; /* (map_cap,) */
    size_t map_cap;

    /* BPE merges and their (left, right) index; first occurrence wins. */
    tok_merge *merges; /* (n_merges,) */
    size_t n_merges, merges_cap;
    int32_t *merge_map; /* (merge_map_cap,) index into merges, -1 empty */
    size_t merge_map_cap;
    size_t n_merges_skipped; /* merges whose parts or result are not pieces */

    /* byte_id[b]: SPM and byte-fallback: the <0xXX> piece; byte-level BPE:
     * the piece of byte b's GPT-2 unicode character. -1 when absent. */
    int32_t byte_id[256];

    bool byte_level;       /* BPE over GPT-2 byte-to-unicode characters */
    bool byte_fallback;    /* char-level BPE: unknown char -> <0xXX> pieces */
    bool fuse_unk;         /* char-level BPE: consecutive unknowns -> one unk */
    bool ignore_merges;    /* BPE: a word that is a piece is emitted whole */
    bool add_space_prefix; /* SPM: ' ' before text that starts the input or follows a special token
                            */
    bool strip_space;      /* decode: drop one leading space of the first piece */
    bool dec_metaspace;    /* decode: U+2581 -> ' ' and <0xXX> -> byte (SPM style) */
    bool spm_ws_split;     /* SPM: no piece has U+2581 after another character */

    tok_norm *norm;
    size_t n_norm;
    tok_pre *pre;
    size_t n_pre;

    /* Special tokens (control, user-defined, unknown), longest text first,
     * then lower id; by_byte[c] .. by_byte[c+1] index special_fb, the same
     * ids grouped by first byte (in priority order) for the input scan. */
    int32_t *special; /* (n_special,) */
    size_t n_special;
    int32_t *special_fb; /* (n_special,) */
    uint32_t by_byte[257];

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos;
    int32_t *eog; /* (n_eog,) sorted */
    size_t n_eog;

    char pre_name[64];
    char *chat_template; /* NUL-terminated, owned; NULL when none */
};

/* ---- builder (used by the loaders, in this order) ---------------------- */

/* A tokenizer with n_vocab empty pieces (attr NORMAL, score 0). */
comi_status tok_new(comi_err *e, tok_kind kind, int32_t n_vocab, comi_tokenizer **out);
/* Sets the text of piece id (copied). */
comi_status tok_set_piece(comi_err *e, comi_tokenizer *tok, int32_t id, const char *s, size_t len);
/* Builds the text -> id map once every piece is set. */
comi_status tok_build_map(comi_err *e, comi_tokenizer *tok);
/* Id of a piece text, -1 when absent (needs the map). */
int32_t tok_lookup(const comi_tokenizer *tok, const char *s, size_t len);
/* Index into merges of the merge (l, r), -1 when none. */
int32_t tok_merge_find(const comi_tokenizer *tok, int32_t l, int32_t r);
/* Appends a merge of two piece texts with the next rank; a merge whose
 * parts or concatenation are not pieces is counted in n_merges_skipped. */
comi_status tok_add_merge(comi_err *e, comi_tokenizer *tok, const char *l, size_t l_len,
                          const char *r, size_t r_len);
/* Compiles a pre-tokenizer regex step (UTF + UCP; dollar_endonly as
 * llama.cpp's std::regex treats '$'). what names the source in errors. */
comi_status tok_add_pre_regex(comi_err *e, comi_tokenizer *tok, const char *pattern, size_t len,
                              bool remove, bool dollar_endonly, const char *what);
/* Compiles a regex for other uses (normalizer Replace). */
pcre2_code *tok_compile_regex(comi_err *e, const char *pattern, size_t len, bool dollar_endonly,
                              const char *what);
/* Byte tables, EOG set and special-token list; model_name (may be NULL) and
 * pre_name select llama.cpp's per-model lstrip/rstrip attributes. Call last. */
comi_status tok_finalize(comi_err *e, comi_tokenizer *tok, const char *model_name);

/* GPT-2 byte-to-unicode: the code point byte b stands for. */
uint32_t tok_byte_to_cp(uint8_t b);

/* ---- helpers shared by the builder and the engine ------------------------ */


/* Growable byte buffer, kept NUL-terminated (p is malloc'ed, owner the user). */
typedef struct tok_buf {
    char *p;
    size_t n, cap;
} tok_buf;
/* Room for extra more bytes plus the NUL; COMI_ERR_LIMIT / NOMEM on failure. */
comi_status tok_buf_reserve(comi_err *e, tok_buf *b, size_t extra);
/* Appends len bytes of s. */
comi_status tok_buf_add(comi_err *e, tok_buf *b, const char *s, size_t len);

#endif /* COMI_TOKENIZER_IMPL_H */
