/*
 * text.h — internals of text-mode compression shared by src/text/lexical.c
 * (words, terms, sentences), src/text/text.c (the coarse-to-fine MIG selection),
 * src/text/vectors.c (static word vectors) and src/eval/eval.c (baselines).
 * Not part of the public API (see include/comi.h).
 */
#ifndef COMI_TEXT_H
#define COMI_TEXT_H

#include "base/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest input (bytes) text mode accepts: word offsets are 32-bit. */
#define TEXT_MAX_BYTES ((size_t)INT32_MAX)
#define TEXT_NO_TERM UINT32_MAX

/* Word flags. */
enum {
    TW_SENT_END = 1u << 0,   /* the word ends a sentence */
    TW_CLAUSE_END = 1u << 1, /* the word ends a clause (, ; : or a sentence end) */
    TW_LINE_BEFORE = 1u << 2, /* a line break precedes the word */
    TW_PARA_BEFORE = 1u << 3, /* a blank line precedes the word */
    TW_STOP = 1u << 4,        /* its term is a stopword (or it has no term) */
    TW_OPEN = 1u << 5,        /* the word starts with an opening bracket */
    TW_GLUE = 1u << 6         /* no space before the word (unspaced scripts: CJK) */
};

/* One whitespace-separated word: bytes [start, end) of its source string
 * (source src of a text_words), its term id (TEXT_NO_TERM when the word has
 * no letters or digits) and its TW_* flags. */
typedef struct text_word {
    uint32_t start, end;
    uint32_t term;
    uint16_t src;
    uint16_t flags;
} text_word;

/* Term dictionary: normalised term bytes -> dense ids 0..n-1. */
typedef struct text_dict {
    uint32_t *slots;  /* (cap,) id + 1, 0 = empty; cap is a power of two */
    size_t cap;
    uint64_t *hashes; /* (n,) hash of each term */
    uint32_t *offs;   /* (n + 1,) offsets of each term's bytes in chars */
    char *chars;
    size_t n, n_alloc, chars_len, chars_cap;
    uint8_t *stop;    /* (n,) 1 if the term is a stopword */
} text_dict;

/* Words of one or more source strings, in order. */
typedef struct text_words {
    text_word *w;
    size_t n, cap;
} text_words;

/* How words become terms. */
typedef struct lex_opts {
    bool stem;      /* WordNet exceptions + Snowball English stemming */
    bool stopwords; /* mark stopwords (TW_STOP) */
} lex_opts;

void text_dict_init(text_dict *d);
void text_dict_free(text_dict *d);
/* The id of a term (added when new); UINT32_MAX and e set on failure. */
uint32_t text_dict_id(comi_err *e, text_dict *d, const char *s, size_t len, bool is_stop);

/* The id of a term, UINT32_MAX when absent. */
uint32_t text_dict_find(const text_dict *d, const char *s, size_t len);

/* Validates UTF-8 in s[0, len) and appends its words (source index src) to
 * out, with terms from dict. Fails with COMI_ERR_FORMAT naming the byte
 * offset of invalid UTF-8, COMI_ERR_LIMIT for inputs over TEXT_MAX_BYTES. */
comi_status lex_split(comi_err *e, const char *what, const char *s, size_t len, uint16_t src,
                      const lex_opts *opt, text_dict *dict, text_words *out);

/* Marks sentence and clause ends (TW_SENT_END, TW_CLAUSE_END) on words
 * [begin, end) of w whose text lives in srcs[w.src]. */
void lex_mark_boundaries(text_words *w, size_t begin, size_t end, const char *const *srcs);

/* Normalises one word into buf (cap >= 4 * len + 4): lower-case, letters and
 * digits only, optionally stemmed; returns the length (0: no term). */
size_t lex_normalize_word(const char *s, size_t len, bool stem, char *buf);

/* Whether WordNet's exception lists were found (irregular forms map to
 * their base: "wrote" -> "write"); without them stemming is Snowball only. */
bool lex_wordnet_loaded(void);

/* Is the normalised term a stopword? */
bool lex_is_stopword(const char *s, size_t len);

/* Whitespace test used everywhere words are counted: ASCII whitespace, NEL,
 * NBSP and the Unicode space separators. *clen is the byte length of the
 * code point at p (p has at least one byte before end). */
bool lex_is_space(const uint8_t *p, const uint8_t *end, size_t *clen);

/* Number of whitespace-separated words in s. */
int64_t lex_count_words(const char *s);

/* The context's max_context_tokens for text mode, which counts words: when
 * a limit is set, counts the words of the n sources (NULL ones count 0)
 * and refuses (COMI_ERR_LIMIT, naming what) more than the limit, before
 * any word list is built. COMI_OK when no limit is set. */
comi_status lex_check_word_limit(comi_ctx *ctx, const char *what, const char *const *srcs,
                                 size_t n);

void text_words_free(text_words *w);

/* Appends words idx[0..n) (indices into w, ascending) of sources srcs to a
 * new string: words joined by one space, a newline where a kept word starts a
 * new group (group[i] != group[i-1] when group is non-NULL). *out is
 * malloc'ed (caller frees). */
comi_status text_join(comi_err *e, const text_words *w, const char *const *srcs,
                      const uint32_t *idx, size_t n, const uint32_t *group, char **out);

/* Static word vectors (src/text/vectors.c). */
typedef struct vec_table vec_table;
comi_status vec_load(comi_err *e, const char *path, vec_table **out);
void vec_free(vec_table *t);
int32_t vec_dim(const vec_table *t);
/* The vector (dim,) of a normalised lower-case word, NULL when unknown. */
const float *vec_lookup(const vec_table *t, const char *word, size_t len);

/* Encoder kinds behind the public comi_encoder. */
typedef enum { ENC_LEXICAL = 0, ENC_VECTORS = 1, ENC_MODEL = 2 } enc_kind;
struct comi_encoder {
    enc_kind kind;
    vec_table *vec;       /* ENC_VECTORS */
    comi_model *model;    /* ENC_MODEL, owned */
    int32_t model_layers; /* ENC_MODEL: layers run (the soft pipeline's encoder_layers) */
};

/* Transformer encoder (src/text/textmodel.c). */
int32_t tm_dim(const comi_encoder *enc);
/* Bytes tm_encode allocates beyond uv and q for n_units units of n_bytes
 * text in all: one segment's session and hidden states, the unit and
 * question token ids (at most one per byte); UINT64_MAX on overflow. The
 * session's cache has kv_type's elements (the context's). */
uint64_t tm_work_bytes(const comi_encoder *enc, int32_t kv_type, size_t n_units,
                       size_t n_bytes);
/* uv (n_units x dim): mean hidden state of each unit's tokens; q (dim,): mean
 * state of the question's tokens, segments encoded as [units ; question]. */
comi_status tm_encode(comi_ctx *ctx, const comi_encoder *enc, const char *const *texts,
                      size_t n_units, const char *question, float *uv, float *q);

#endif /* COMI_TEXT_H */
