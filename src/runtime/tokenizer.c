/*
 * tokenizer.c — stage 1 of the pipeline: text <-> token ids.
 *
 * Mirrors llama.cpp's llama-vocab.cpp (the oracle of the golden token
 * vectors): llm_tokenizer_spm (highest-score bigram merging, byte fallback),
 * llm_tokenizer_bpe (regex pre-tokenization per tokenizer.ggml.pre, then
 * lowest-rank merges over GPT-2 byte-level characters), special-token
 * partitioning (tokenizer_st_partition) and token_to_piece/detokenize. The
 * pre-tokenizer regular expressions are the ones llama.cpp lists per
 * pre-tokenizer name, compiled with PCRE2 in UTF + UCP mode; where llama.cpp
 * applies several in sequence, so do we (matches and gaps both become
 * pieces). Also the GGUF loader and the public comi_tokenizer_* API; the
 * Hugging Face tokenizer.json loader is in tokenizer_hf.c.
 *
 * Deliberate differences from llama.cpp: invalid UTF-8 input is rejected
 * (llama.cpp silently maps each bad byte to U+FFFD in BPE); an unrecognised
 * tokenizer.ggml.pre is an error (llama.cpp falls back to "default" with a
 * warning; a missing key still means "default"); merges whose parts are not
 * vocabulary pieces are ignored.
 */
#include "runtime/tokenizer_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_pair(int32_t a, int32_t b) {
    uint64_t x = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Byte length of the UTF-8 sequence a lead byte announces, as llama.cpp's
 * unicode_len_utf8 (continuation bytes count as 1). */
static size_t utf8_len(uint8_t c) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Offset of the first byte that does not start a valid UTF-8 sequence
 * (RFC 3629: no overlongs, surrogates or code points above U+10FFFF), or len
 * when the whole text is valid. */
static size_t utf8_first_invalid(const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) return i;
        i += (size_t)n;
    }
    return len;
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return 289u + (b - 127u); /* 127..160 */
    return 323u;                            /* 173 */
}

/* Inverse of tok_byte_to_cp; -1 for code points no byte maps to. */
static int cp_to_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 289 + 127);
    if (cp == 323) return 173;
    return -1;
}

/* Growable byte buffer and id vector (per call scratch). */
typedef struct bbuf {
    char *p;
    size_t n, cap;
} bbuf;

static comi_status bbuf_reserve(comi_err *e, bbuf *b, size_t extra) {
    size_t need;
    if (!comi_add_size(b->n, extra, &need) || !comi_add_size(need, 1, &need))
        return comi_err_set(e, COMI_ERR_LIMIT, "tokenizer: text too large");
    if (need <= b->cap) return COMI_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return COMI_OK;
}

static comi_status bbuf_add(comi_err *e, bbuf *b, const char *s, size_t len) {
    comi_status st = bbuf_reserve(e, b, len);
    if (st) return st;
    if (len) memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
    return COMI_OK;
}

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static comi_status ivec_push(comi_err *e, ivec *iv, int32_t x) {
    if (iv->n == iv->cap) {
        size_t cap = iv->cap ? iv->cap * 2 : 64;
        int32_t *v = comi_alloc_array(e, cap, sizeof *v, "token ids");
        if (!v) return e ? e->status : COMI_ERR_NOMEM;
        if (iv->n) memcpy(v, iv->v, iv->n * sizeof *v);
        free(iv->v);
        iv->v = v;
        iv->cap = cap;
    }
    iv->v[iv->n++] = x;
    return COMI_OK;
}

/* ------------------------------------------------------------------------ */
/* Builder                                                                  */
/* ------------------------------------------------------------------------ */

comi_status tok_new(comi_err *e, tok_kind kind, int32_t n_vocab, comi_tokenizer **out) {
    *out = NULL;
    if (n_vocab <= 0) return comi_err_set(e, COMI_ERR_FORMAT, "tokenizer: empty vocabulary");
    comi_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    t->kind = kind;
    t->n_vocab = n_vocab;
    t->bos = t->eos = t->eot = t->eom = t->unk = t->pad = -1;
    for (int i = 0; i < 256; i++)
        t->byte_id[i] = -1;
    size_t n = (size_t)n_vocab;
    t->piece_off = comi_calloc_array(e, n, sizeof *t->piece_off, "piece offsets");
    t->piece_len = comi_calloc_array(e, n, sizeof *t->piece_len, "piece lengths");
    t->attr = comi_alloc_array(e, n, sizeof *t->attr, "token attributes");
    if (!t->piece_off || !t->piece_len || !t->attr) {
        tok_free(t);
        return e ? e->status : COMI_ERR_NOMEM;
    }
    memset(t->attr, TOK_ATTR_NORMAL, n);
    *out = t;
    return COMI_OK;
}

comi_status tok_set_piece(comi_err *e, comi_tokenizer *tok, int32_t id, const char *s, size_t len) {
    if (id < 0 || id >= tok->n_vocab)
        return comi_err_set(e, COMI_ERR_FORMAT, "tokenizer: token id %d out of range [0, %d)",
                            (int)id, (int)tok->n_vocab);
    if (len > UINT32_MAX)
        return comi_err_set(e, COMI_ERR_FORMAT, "tokenizer: token %d is %zu bytes long", (int)id,
                            len);
    bbuf b = {tok->pool, tok->pool_len, tok->pool_cap};
    comi_status st = bbuf_add(e, &b, s, len);
    tok->pool = b.p;
    tok->pool_cap = b.cap;
    if (st) return st;
    tok->piece_off[id] = tok->pool_len;
    tok->piece_len[id] = (uint32_t)len;
    tok->pool_len = b.n + 1; /* keep each piece NUL-terminated */
    return COMI_OK;
}

int32_t tok_lookup(const comi_tokenizer *tok, const char *s, size_t len) {
    if (!tok->map) return -1;
    size_t mask = tok->map_cap - 1;
    for (size_t i = (size_t)hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        int32_t id = tok->map[i];
        if (id < 0) return -1;
        if (tok->piece_len[id] == len && !memcmp(tok->pool + tok->piece_off[id], s, len)) return id;
    }
}

comi_status tok_build_map(comi_err *e, comi_tokenizer *tok) {
    size_t cap = 16;
    while (cap < (size_t)tok->n_vocab * 2)
        cap *= 2;
    free(tok->map);
    tok->map = comi_alloc_array(e, cap, sizeof *tok->map, "vocabulary index");
    if (!tok->map) return e ? e->status : COMI_ERR_NOMEM;
    memset(tok->map, 0xff, cap * sizeof *tok->map);
    tok->map_cap = cap;
    size_t mask = cap - 1;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        const char *s = tok->pool + tok->piece_off[id];
        size_t len = tok->piece_len[id];
        if (len == 0) continue; /* placeholders for ids a vocabulary skips */
        for (size_t i = (size_t)hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
            int32_t o = tok->map[i];
            if (o < 0) {
                tok->map[i] = id;
                break;
            }
            if (tok->piece_len[o] == len && !memcmp(tok->pool + tok->piece_off[o], s, len)) {
                tok->map[i] = id; /* later id wins, as llama.cpp's token_to_id */
                break;
            }
        }
    }
    return COMI_OK;
}

static int32_t merge_find(const comi_tokenizer *tok, int32_t l, int32_t r) {
    if (!tok->merge_map) return -1;
    size_t mask = tok->merge_map_cap - 1;
    for (size_t i = (size_t)hash_pair(l, r) & mask;; i = (i + 1) & mask) {
        int32_t m = tok->merge_map[i];
        if (m < 0) return -1;
        if (tok->merges[m].left == l && tok->merges[m].right == r) return m;
    }
}

static comi_status merge_map_grow(comi_err *e, comi_tokenizer *tok) {
    size_t cap = tok->merge_map_cap ? tok->merge_map_cap * 2 : 1024;
    int32_t *mm = comi_alloc_array(e, cap, sizeof *mm, "merge index");
    if (!mm) return e ? e->status : COMI_ERR_NOMEM;
    memset(mm, 0xff, cap * sizeof *mm);
    size_t mask = cap - 1;
    for (size_t k = 0; k < tok->n_merges; k++) {
        size_t i = (size_t)hash_pair(tok->merges[k].left, tok->merges[k].right) & mask;
        while (mm[i] >= 0)
            i = (i + 1) & mask;
        mm[i] = (int32_t)k;
    }
    free(tok->merge_map);
    tok->merge_map = mm;
    tok->merge_map_cap = cap;
    return COMI_OK;
}

comi_status tok_add_merge(comi_err *e, comi_tokenizer *tok, const char *l, size_t l_len,
                          const char *r, size_t r_len) {
    size_t rank = tok->n_merges + tok->n_merges_skipped;
    if (rank >= INT32_MAX) return comi_err_set(e, COMI_ERR_LIMIT, "tokenizer: too many merges");
    int32_t li = tok_lookup(tok, l, l_len), ri = tok_lookup(tok, r, r_len);
    int32_t res = -1;
    if (li >= 0 && ri >= 0) {
        /* the concatenation is a piece whose text is l + r */
        char small[256];
        char *buf = small;
        if (l_len + r_len > sizeof small) {
            buf = malloc(l_len + r_len);
            if (!buf) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
        }
        memcpy(buf, l, l_len);
        memcpy(buf + l_len, r, r_len);
        res = tok_lookup(tok, buf, l_len + r_len);
        if (buf != small) free(buf);
    }
    if (res < 0 || merge_find(tok, li, ri) >= 0) {
        /* not expressible on pieces, or a duplicate (the first rank wins) */
        tok->n_merges_skipped++;
        return COMI_OK;
    }
    if (tok->n_merges == tok->merges_cap) {
        size_t cap = tok->merges_cap ? tok->merges_cap * 2 : 1024;
        tok_merge *m = comi_alloc_array(e, cap, sizeof *m, "merges");
        if (!m) return e ? e->status : COMI_ERR_NOMEM;
        if (tok->n_merges) memcpy(m, tok->merges, tok->n_merges * sizeof *m);
        free(tok->merges);
        tok->merges = m;
        tok->merges_cap = cap;
    }
    if ((tok->n_merges + 1) * 2 > tok->merge_map_cap) {
        comi_status st = merge_map_grow(e, tok);
        if (st) return st;
    }
    tok_merge *m = &tok->merges[tok->n_merges];
    m->left = li;
    m->right = ri;
    m->result = res;
    m->rank = (int32_t)rank;
    size_t mask = tok->merge_map_cap - 1;
    size_t i = (size_t)hash_pair(li, ri) & mask;
    while (tok->merge_map[i] >= 0)
        i = (i + 1) & mask;
    tok->merge_map[i] = (int32_t)tok->n_merges;
    tok->n_merges++;
    return COMI_OK;
}

pcre2_code *tok_compile_regex(comi_err *e, const char *pattern, size_t len, bool dollar_endonly,
                              const char *what) {
    int err = 0;
    PCRE2_SIZE off = 0;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | (dollar_endonly ? PCRE2_DOLLAR_ENDONLY : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        comi_err_set(e, COMI_ERR_FORMAT, "%s: regex /%.*s/ does not compile at offset %zu: %s",
                     what, (int)(len > 200 ? 200 : len), pattern, (size_t)off, (const char *)msg);
        return NULL;
    }
    /* JIT is an optimisation only: on failure the interpreter runs the same
     * pattern. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

comi_status tok_add_pre_regex(comi_err *e, comi_tokenizer *tok, const char *pattern, size_t len,
                              bool remove, bool dollar_endonly, const char *what) {
    tok_pre *p = realloc(tok->pre, (tok->n_pre + 1) * sizeof *p);
    if (!p) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    tok->pre = p;
    pcre2_code *re = tok_compile_regex(e, pattern, len, dollar_endonly, what);
    if (!re) return e ? e->status : COMI_ERR_FORMAT;
    memset(&p[tok->n_pre], 0, sizeof *p);
    p[tok->n_pre].kind = remove ? TOK_PRE_SPLIT_REMOVE : TOK_PRE_SPLIT;
    p[tok->n_pre].re = re;
    tok->n_pre++;
    return COMI_OK;
}

/* Token texts llama.cpp treats as end-of-generation / end-of-turn / FIM
 * markers (llama_vocab::impl::load, "auto-detect special tokens by text"). */
static const char *const k_eot_names[] = {"<|eot_id|>",
                                          "<|im_end|>",
                                          "<|end|>",
                                          "<end_of_turn>",
                                          "<|endoftext|>",
                                          "<|end_of_text|>",
                                          "<EOT>",
                                          "_<EOT>",
                                          "<\xef\xbd\x9c"
                                          "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                          "<end_of_utterance>",
                                          NULL};
static const char *const k_eom_names[] = {"<|eom_id|>", NULL};
static const char *const k_fim_pre_names[] = {"<|fim_prefix|>",
                                              "<fim-prefix>",
                                              "<fim_prefix>",
                                              "<\xef\xbd\x9c"
                                              "fim\xe2\x96\x81"
                                              "begin\xef\xbd\x9c>",
                                              "<PRE>",
                                              "\xe2\x96\x81<PRE>",
                                              "<|code_prefix|>",
                                              NULL};
static const char *const k_fim_suf_names[] = {"<|fim_suffix|>",
                                              "<fim-suffix>",
                                              "<fim_suffix>",
                                              "<\xef\xbd\x9c"
                                              "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                                              "<SUF>",
                                              "\xe2\x96\x81<SUF>",
                                              "<|code_suffix|>",
                                              NULL};
static const char *const k_fim_mid_names[] = {"<|fim_middle|>",
                                              "<fim-middle>",
                                              "<fim_middle>",
                                              "<\xef\xbd\x9c"
                                              "fim\xe2\x96\x81"
                                              "end\xef\xbd\x9c>",
                                              "<MID>",
                                              "\xe2\x96\x81<MID>",
                                              "<|code_middle|>",
                                              NULL};
static const char *const k_fim_pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                              NULL};
static const char *const k_fim_rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                              "<REPO>",       "<reponame>",    NULL};
static const char *const k_fim_sep_names[] = {"<|file_sep|>", NULL};
static const char *const k_eog_names[] = {
    "<|eot_id|>",      "<|im_end|>",         "<|end|>",    "<|return|>", "<|call|>",
    "<end_of_turn>",   "<|endoftext|>",      "<|eom_id|>", "<EOT>",      "_<EOT>",
    "<|end_of_text|>", "<end_of_utterance>", NULL};

static bool name_in(const char *s, size_t len, const char *const *names) {
    for (; *names; names++)
        if (strlen(*names) == len && !memcmp(*names, s, len)) return true;
    return false;
}

static bool piece_is(const comi_tokenizer *tok, int32_t id, const char *s) {
    size_t n = strlen(s);
    return tok->piece_len[id] == n && !memcmp(tok->pool + tok->piece_off[id], s, n);
}

/* Auto-detection of one special id by text: when *id is unset, the first
 * piece (lowest id) whose text is in names becomes it; llama.cpp also makes
 * that piece a control token. */
static void detect_special(comi_tokenizer *tok, int32_t *id, const char *const *names) {
    if (*id >= 0) return;
    for (int32_t i = 0; i < tok->n_vocab; i++) {
        if (name_in(tok->pool + tok->piece_off[i], tok->piece_len[i], names)) {
            *id = i;
            tok->attr[i] = TOK_ATTR_CONTROL;
            return;
        }
    }
}

/* Sort key of a special token: longer text first, then lower id. */
typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static bool contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t k = 0;
        while (k < n && p[k] &&
               (char)(p[k] | ((p[k] >= 'A' && p[k] <= 'Z') ? 0x20 : 0)) == needle[k])
            k++;
        if (k == n) return true;
    }
    return false;
}

comi_status tok_finalize(comi_err *e, comi_tokenizer *tok, const char *model_name) {
    if (!tok->map) {
        comi_status st = tok_build_map(e, tok);
        if (st) return st;
    }
    /* byte tables */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int32_t id = -1;
        if (tok->kind == TOK_KIND_BPE && tok->byte_level) {
            size_t n = utf8_put(tok_byte_to_cp((uint8_t)b), buf);
            id = tok_lookup(tok, buf, n);
        } else {
            static const char hex[] = "0123456789ABCDEF";
            buf[0] = '<';
            buf[1] = '0';
            buf[2] = 'x';
            buf[3] = hex[b >> 4];
            buf[4] = hex[b & 15];
            buf[5] = '>';
            id = tok_lookup(tok, buf, 6);
            if (id < 0 && tok->kind == TOK_KIND_SPM) {
                /* llama.cpp's byte_to_token falls back to the byte itself */
                buf[0] = (char)b;
                id = tok_lookup(tok, buf, 1);
            }
        }
        tok->byte_id[b] = id;
    }
    /* SPM: may fragments be cut in front of U+2581 (see spm_encode)? */
    tok->spm_ws_split = tok->kind == TOK_KIND_SPM;
    for (int32_t id = 0; id < tok->n_vocab && tok->spm_ws_split; id++) {
        const char *p = tok->pool + tok->piece_off[id];
        size_t len = tok->piece_len[id], lead = 0;
        while (lead + 3 <= len && !memcmp(p + lead, "\xe2\x96\x81", 3))
            lead += 3;
        if (lead < len && memmem(p + lead, len - lead, "\xe2\x96\x81", 3))
            tok->spm_ws_split = false;
    }
    /* Control-looking tokens (llama.cpp: auto-detect special tokens by text). */
    int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    detect_special(tok, &tok->eot, k_eot_names);
    detect_special(tok, &tok->eom, k_eom_names);
    detect_special(tok, &fim_pre, k_fim_pre_names);
    detect_special(tok, &fim_suf, k_fim_suf_names);
    detect_special(tok, &fim_mid, k_fim_mid_names);
    detect_special(tok, &fim_pad, k_fim_pad_names);
    detect_special(tok, &fim_rep, k_fim_rep_names);
    detect_special(tok, &fim_sep, k_fim_sep_names);
    /* end-of-generation set */
    size_t n_eog = 0, cap = 16;
    int32_t *eog = malloc(cap * sizeof *eog);
    if (!eog) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    int32_t fixed[6] = {fim_pad, fim_rep, fim_sep, tok->eos, tok->eot, tok->eom};
    bool has_return = false, has_call = false;
    int32_t end_id = -1;
    for (int32_t i = 0; i < tok->n_vocab + 6; i++) {
        int32_t id;
        if (i < tok->n_vocab) {
            id = i;
            if (!name_in(tok->pool + tok->piece_off[i], tok->piece_len[i], k_eog_names)) continue;
            tok->attr[i] =
                (uint8_t)((tok->attr[i] & TOK_ATTR_CONTROL) ? tok->attr[i] : TOK_ATTR_CONTROL);
            if (piece_is(tok, i, "<|return|>")) has_return = true;
            if (piece_is(tok, i, "<|call|>")) has_call = true;
            if (piece_is(tok, i, "<|end|>")) end_id = i;
        } else {
            id = fixed[i - tok->n_vocab];
            if (id < 0) continue;
        }
        bool dup = false;
        for (size_t k = 0; k < n_eog; k++)
            dup = dup || eog[k] == id;
        if (dup) continue;
        if (n_eog == cap) {
            cap *= 2;
            int32_t *ne = realloc(eog, cap * sizeof *ne);
            if (!ne) {
                free(eog);
                return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
            }
            eog = ne;
        }
        eog[n_eog++] = id;
    }
    /* gpt-oss (o200k_harmony): <|end|> is not an end of generation there */
    if (has_return && has_call && end_id >= 0) {
        size_t w = 0;
        for (size_t k = 0; k < n_eog; k++)
            if (eog[k] != end_id) eog[w++] = eog[k];
        n_eog = w;
        tok->attr[end_id] = TOK_ATTR_USER_DEFINED;
    }
    for (int32_t i = 0; i < tok->n_vocab; i++)
        if (piece_is(tok, i, "<|channel|>") || piece_is(tok, i, "<|message|>") ||
            piece_is(tok, i, "<|start|>") || piece_is(tok, i, "<|constrain|>"))
            tok->attr[i] = TOK_ATTR_USER_DEFINED;
    qsort(eog, n_eog, sizeof *eog, cmp_i32);
    free(tok->eog);
    tok->eog = eog;
    tok->n_eog = n_eog;

    /* special tokens: control, user-defined, unknown; longest first */
    size_t ns = 0;
    for (int32_t i = 0; i < tok->n_vocab; i++)
        if ((tok->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) &&
            tok->piece_len[i] > 0)
            ns++;
    free(tok->special);
    free(tok->special_fb);
    tok->special = malloc((ns ? ns : 1) * sizeof *tok->special);
    tok->special_fb = malloc((ns ? ns : 1) * sizeof *tok->special_fb);
    if (!tok->special || !tok->special_fb)
        return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    ns = 0;
    for (int32_t i = 0; i < tok->n_vocab; i++)
        if ((tok->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) &&
            tok->piece_len[i] > 0)
            tok->special[ns++] = i;
    tok->n_special = ns;
    special_key *keys = malloc((ns ? ns : 1) * sizeof *keys);
    if (!keys) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t k = 0; k < ns; k++)
        keys[k] = (special_key){tok->piece_len[tok->special[k]], tok->special[k]};
    qsort(keys, ns, sizeof *keys, cmp_special);
    for (size_t k = 0; k < ns; k++)
        tok->special[k] = keys[k].id;
    free(keys);

    /* per-model strip attributes (llama.cpp: set attributes by model name) */
    if (strstr(tok->pre_name, "jina-v2-de") || strstr(tok->pre_name, "jina-v2-es") ||
        strstr(tok->pre_name, "jina-v2-code")) {
        int32_t m = tok_lookup(tok, "<mask>", 6);
        if (m >= 0) tok->attr[m] |= TOK_ATTR_LSTRIP;
    } else if (model_name &&
               (contains_ci(model_name, "phi-3") || contains_ci(model_name, "phi3"))) {
        for (size_t k = 0; k < ns; k++)
            tok->attr[tok->special[k]] |= TOK_ATTR_RSTRIP;
        int32_t id = tok_lookup(tok, "</s>", 4);
        if (id >= 0) tok->attr[id] |= TOK_ATTR_RSTRIP;
        const char *off[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int k = 0; k < 3; k++) {
            id = tok_lookup(tok, off[k], strlen(off[k]));
            if (id >= 0) tok->attr[id] &= (uint8_t)~TOK_ATTR_RSTRIP;
        }
    }

    /* group by first byte, keeping priority order inside each group */
    memset(tok->by_byte, 0, sizeof tok->by_byte);
    for (size_t k = 0; k < ns; k++)
        tok->by_byte[(uint8_t)tok->pool[tok->piece_off[tok->special[k]]] + 1]++;
    for (int c = 0; c < 256; c++)
        tok->by_byte[c + 1] += tok->by_byte[c];
    uint32_t fill[256];
    memcpy(fill, tok->by_byte, sizeof fill);
    for (size_t k = 0; k < ns; k++) {
        uint8_t c = (uint8_t)tok->pool[tok->piece_off[tok->special[k]]];
        tok->special_fb[fill[c]++] = (int32_t)k;
    }
    return COMI_OK;
}

void tok_free(comi_tokenizer *tok) {
    if (!tok) return;
    free(tok->pool);
    free(tok->piece_off);
    free(tok->piece_len);
    free(tok->score);
    free(tok->attr);
    free(tok->map);
    free(tok->merges);
    free(tok->merge_map);
    for (size_t i = 0; i < tok->n_norm; i++) {
        free(tok->norm[i].a);
        free(tok->norm[i].b);
        pcre2_code_free(tok->norm[i].re);
    }
    free(tok->norm);
    for (size_t i = 0; i < tok->n_pre; i++)
        pcre2_code_free(tok->pre[i].re);
    free(tok->pre);
    free(tok->special);
    free(tok->special_fb);
    free(tok->eog);
    free(tok);
}

/* ------------------------------------------------------------------------ */
/* Pre-tokenizer regexes per tokenizer.ggml.pre (llama.cpp's                */
/* llm_tokenizer_bpe constructor)                                           */
/* ------------------------------------------------------------------------ */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_CONTRACTIONS_CI "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3                                                                                  \
    RE_CONTRACTIONS_CI                                                                             \
        "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"               \
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                   \
    RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"     \
                       "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"
#define RE_TEKKEN_WORDS                                                                            \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?(" \
    "(?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"

static const char *const re_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+",
                                         "[0-9][0-9][0-9]", NULL};
static const char *const re_llama3[] = {RE_LLAMA3, NULL};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-"
    "\xc6\xbf\xc7\x84-"
    "\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-"
    "\xcd\xbd\xcd\xbf\xce\x86\xce"
    "\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4"
    "\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1"
    "\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5"
    "\xb7\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-"
    "\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd"
    "\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-"
    "\xe1\xbe\xbc\xe1\xbe\xbe\xe1"
    "\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-"
    "\xe1\xbf\x9b"
    "\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-"
    "\xe1\xbf\xbc\xe2\x84\x82\xe2\x84"
    "\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2"
    "\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-"
    "\xe2\x84\xbf"
    "\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1"
    "\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-"
    "\xea\x99\xad\xea"
    "\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87\xea\x9e\x8b-"
    "\xea\x9e\x8e"
    "\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-"
    "\xef\xbc"
    "\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-"
    "\xf0\x90\x93\x93"
    "\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-"
    "\xf0\x90\xb3"
    "\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+",
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80"
    "\x80-\xe3\x80\x82]+",
    "\\s+$",
    RE_CJK,
    "\\p{N}+",
    NULL};
static const char *const re_deepseek3[] = {
    "\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]"
    "+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_deepseek_coder[] = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
                                                RE_CJK,   "\\p{N}",      NULL};
static const char *const re_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]",
                                        NULL};
static const char *const re_starcoder[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const re_gpt2[] = {RE_GPT2, NULL};
static const char *const re_qwen2[] = {RE_QWEN2, NULL};
static const char *const re_poro[] = {
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
    NULL};
static const char *const re_viking[] = {
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
    "\\p{N}", NULL};
static const char *const re_tekken[] = {
    RE_TEKKEN_WORDS "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL};
static const char *const re_gpt4o[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" RE_CONTRACTIONS_CI
    "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" RE_CONTRACTIONS_CI
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_seed_coder[] = {
    RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|"
                       "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};

typedef struct pre_def {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *const *regexes;
    bool ignore_merges;
    bool add_bos;
} pre_def;

static const pre_def k_pre_defs[] = {
    {"default", re_default, false, false},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2", re_llama3, true, true},
    {"dbrx|smaug-bpe|chatglm-bpe|glm4", re_llama3, false, false},
    {"deepseek-llm", re_deepseek_llm, false, false},
    {"deepseek-v3|hunyuan-dense", re_deepseek3, false, false},
    {"deepseek-coder", re_deepseek_coder, false, false},
    {"falcon", re_falcon, false, false},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", re_starcoder, false, false},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|jina-v1-en|"
     "jina-v2-code|roberta-bpe|exaone4|mpt|olmo|jais|trillion|granite-docling",
     re_gpt2, false, false},
    {"qwen2|qwen2.5|qwen-2.5|deepseek-r1-qwen|kormo|megrez|stablelm2|hunyuan|grok-2", re_qwen2,
     false, false},
    {"poro-chat|bloom|gpt3-finnish", re_poro, false, false},
    {"viking", re_viking, false, false},
    {"tekken", re_tekken, true, true},
    {"gpt-4o|llama4|minimax-m2", re_gpt4o, false, false},
    {"bailingmoe|bailingmoe2|llada-moe", re_bailingmoe, false, false},
    {"seed-coder", re_seed_coder, false, false},
};

static bool name_in_list(const char *list, const char *name, size_t len) {
    const char *p = list;
    while (*p) {
        const char *q = strchr(p, '|');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == len && !memcmp(p, name, len)) return true;
        if (!q) break;
        p = q + 1;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* GGUF loader                                                              */
/* ------------------------------------------------------------------------ */

static bool gguf_token_id(const gguf_file *f, const char *key, int32_t n_vocab, int32_t *id) {
    int64_t v;
    if (!gguf_get_i64(f, key, &v)) return false;
    if (v < 0 || v >= n_vocab) return false; /* llama.cpp: warn, keep the default */
    *id = (int32_t)v;
    return true;
}

comi_status tok_load_gguf(comi_err *e, const gguf_file *f, comi_tokenizer **out) {
    *out = NULL;
    const char *path = gguf_path(f);
    gguf_str model;
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: no tokenizer in this file (key tokenizer.ggml.model missing)",
                            path);
    tok_kind kind;
    if (model.len == 5 && !memcmp(model.ptr, "llama", 5))
        kind = TOK_KIND_SPM;
    else if (model.len == 4 && !memcmp(model.ptr, "gpt2", 4))
        kind = TOK_KIND_BPE;
    else if ((model.len == 8 && !memcmp(model.ptr, "no_vocab", 8)) ||
             (model.len == 4 && !memcmp(model.ptr, "none", 4)))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: no tokenizer in this file (tokenizer.ggml.model = '%.*s')", path,
                            (int)model.len, model.ptr);
    else
        return comi_err_set(
            e, COMI_ERR_UNSUPPORTED,
            "%s: tokenizer.ggml.model '%.*s' is not supported (only 'llama' and 'gpt2')", path,
            (int)(model.len > 64 ? 64 : model.len), model.ptr);

    const gguf_kv *tokens = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_T_ARRAY || tokens->arr_type != GGUF_T_STRING ||
        !tokens->strs)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tokenizer.ggml.tokens missing or not a string array", path);
    if (tokens->arr_n == 0 || tokens->arr_n > INT32_MAX)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", path,
                            (unsigned long long)tokens->arr_n);
    int32_t n_vocab = (int32_t)tokens->arr_n;
    const gguf_kv *scores = gguf_find_kv(f, "tokenizer.ggml.scores");
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (scores && (scores->type != GGUF_T_ARRAY || scores->arr_n != tokens->arr_n ||
                   scores->arr_type == GGUF_T_STRING || scores->arr_type == GGUF_T_ARRAY))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tokenizer.ggml.scores must be a numeric array of %d entries", path,
                            (int)n_vocab);
    if (types && (types->type != GGUF_T_ARRAY || types->arr_n != tokens->arr_n ||
                  types->arr_type == GGUF_T_STRING || types->arr_type == GGUF_T_ARRAY))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tokenizer.ggml.token_type must be an integer array of %d entries",
                            path, (int)n_vocab);

    comi_tokenizer *tok;
    comi_status st = tok_new(e, kind, n_vocab, &tok);
    if (st) return st;
    if (scores) {
        tok->score = comi_alloc_array(e, (size_t)n_vocab, sizeof *tok->score, "token scores");
        if (!tok->score) goto fail;
    }
    for (int32_t i = 0; i < n_vocab; i++) {
        const gguf_str *s = &tokens->strs[i];
        if (s->len == 0) {
            /* llama.cpp renames empty pieces so they stay distinct */
            char buf[32];
            int n = snprintf(buf, sizeof buf, "[EMPTY_%d]", (int)i);
            st = tok_set_piece(e, tok, i, buf, (size_t)n);
        } else {
            st = tok_set_piece(e, tok, i, s->ptr, (size_t)s->len);
        }
        if (st) goto fail;
        if (scores) {
            double d;
            if (!gguf_arr_f64(scores, (uint64_t)i, &d)) {
                st = comi_err_set(e, COMI_ERR_FORMAT, "%s: tokenizer.ggml.scores[%d] unreadable",
                                  path, (int)i);
                goto fail;
            }
            tok->score[i] = (float)d + 0.0f; /* -0 == +0 as in llama.cpp's comparisons */
        }
        if (types) {
            int64_t t;
            if (!gguf_arr_i64(types, (uint64_t)i, &t)) {
                st = comi_err_set(e, COMI_ERR_FORMAT,
                                  "%s: tokenizer.ggml.token_type[%d] unreadable", path, (int)i);
                goto fail;
            }
            /* 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte;
             * anything else is "undefined" (no attribute bit) */
            tok->attr[i] = (t >= 1 && t <= 6) ? (uint8_t)(1u << (t - 1)) : 0;
        }
    }
    st = tok_build_map(e, tok);
    if (st) goto fail;

    gguf_str pre = {"", 0};
    bool have_pre = gguf_get_str(f, "tokenizer.ggml.pre", &pre);
    if (kind == TOK_KIND_BPE) {
        tok->byte_level = true;
        const pre_def *def = NULL;
        if (!have_pre) {
            def = &k_pre_defs[0];
        } else {
            for (size_t k = 0; k < sizeof k_pre_defs / sizeof k_pre_defs[0] && !def; k++)
                if (name_in_list(k_pre_defs[k].names, pre.ptr, (size_t)pre.len))
                    def = &k_pre_defs[k];
        }
        if (!def) {
            st = comi_err_set(e, COMI_ERR_UNSUPPORTED,
                              "%s: pre-tokenizer tokenizer.ggml.pre = '%.*s' is not supported",
                              path, (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
            goto fail;
        }
        snprintf(tok->pre_name, sizeof tok->pre_name, "%.*s", (int)(have_pre ? pre.len : 7),
                 have_pre ? pre.ptr : "default");
        for (const char *const *r = def->regexes; *r; r++) {
            st = tok_add_pre_regex(e, tok, *r, strlen(*r), false, true, path);
            if (st) goto fail;
        }
        tok->ignore_merges = def->ignore_merges;
        tok->add_bos = def->add_bos;
        tok->bos = n_vocab > 11 ? 11 : -1; /* llama.cpp's gpt2 defaults */
        tok->eos = tok->bos;
        if (name_in_list("chatglm-bpe|glm4", pre.ptr, (size_t)pre.len)) tok->bos = -1;

        const gguf_kv *merges = gguf_find_kv(f, "tokenizer.ggml.merges");
        if (!merges || merges->type != GGUF_T_ARRAY || merges->arr_type != GGUF_T_STRING ||
            !merges->strs) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: tokenizer.ggml.merges missing or not a string array", path);
            goto fail;
        }
        for (uint64_t i = 0; i < merges->arr_n; i++) {
            const gguf_str *m = &merges->strs[i];
            /* "left right", split at the first space after position 0 */
            const char *sp = m->len > 1 ? memchr(m->ptr + 1, ' ', (size_t)m->len - 1) : NULL;
            if (!sp) {
                tok->n_merges_skipped++;
                continue;
            }
            size_t l = (size_t)(sp - m->ptr);
            st = tok_add_merge(e, tok, m->ptr, l, sp + 1, (size_t)m->len - l - 1);
            if (st) goto fail;
        }
    } else {
        tok->dec_metaspace = true;
        tok->add_space_prefix = true;
        tok->add_bos = true;
        tok->bos = n_vocab > 1 ? 1 : -1;
        tok->eos = n_vocab > 2 ? 2 : -1;
        tok->unk = 0;
        if (!tok->score) {
            tok->score = comi_calloc_array(e, (size_t)n_vocab, sizeof *tok->score, "token scores");
            if (!tok->score) goto fail;
        }
    }
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b)) tok->add_space_prefix = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b)) tok->add_bos = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b)) tok->add_eos = b;
    tok->strip_space = tok->kind == TOK_KIND_SPM && tok->add_space_prefix;
    gguf_token_id(f, "tokenizer.ggml.bos_token_id", n_vocab, &tok->bos);
    gguf_token_id(f, "tokenizer.ggml.eos_token_id", n_vocab, &tok->eos);
    gguf_token_id(f, "tokenizer.ggml.eot_token_id", n_vocab, &tok->eot);
    gguf_token_id(f, "tokenizer.ggml.eom_token_id", n_vocab, &tok->eom);
    gguf_token_id(f, "tokenizer.ggml.unknown_token_id", n_vocab, &tok->unk);
    gguf_token_id(f, "tokenizer.ggml.padding_token_id", n_vocab, &tok->pad);

    gguf_str name = {"", 0};
    char model_name[128] = "";
    if (gguf_get_str(f, "general.name", &name))
        snprintf(model_name, sizeof model_name, "%.*s", (int)(name.len > 127 ? 127 : name.len),
                 name.ptr);
    st = tok_finalize(e, tok, model_name);
    if (st) goto fail;
    *out = tok;
    return COMI_OK;
fail:
    tok_free(tok);
    return e ? e->status : st;
}

/* ------------------------------------------------------------------------ */
/* Encoding: special-token partition                                        */
/* ------------------------------------------------------------------------ */

/* A fragment of the input: raw text [off, off + len) or a token. */
typedef struct frag {
    size_t off, len;
    int32_t token; /* -1: raw text */
} frag;

typedef struct fragv {
    frag *v;
    size_t n, cap;
} fragv;

static comi_status fragv_insert(comi_err *e, fragv *fv, size_t at, frag f) {
    if (fv->n == fv->cap) {
        size_t cap = fv->cap ? fv->cap * 2 : 16;
        frag *v = realloc(fv->v, cap * sizeof *v);
        if (!v) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
        fv->v = v;
        fv->cap = cap;
    }
    memmove(fv->v + at + 1, fv->v + at, (fv->n - at) * sizeof *fv->v);
    fv->v[at] = f;
    fv->n++;
    return COMI_OK;
}

static bool is_space_c(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* A candidate occurrence of a special token in the input. */
typedef struct occ {
    uint32_t prio; /* index in tok->special order: lower first */
    size_t pos;
} occ;

static int cmp_occ(const void *a, const void *b) {
    const occ *x = a, *y = b;
    if (x->prio != y->prio) return x->prio < y->prio ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Splits text into raw fragments and special tokens exactly as llama.cpp's
 * tokenizer_st_partition: special tokens are taken one at a time, longest
 * first, and each one's occurrences are cut out of the raw fragments left to
 * right (lstrip/rstrip tokens also swallow the whitespace beside them).
 * Control and unknown tokens only count when parse_special is set. All
 * occurrences are found in one scan over the text; accepting one means it
 * still lies wholly inside a raw fragment when its token's turn comes. */
static comi_status partition(comi_err *e, const comi_tokenizer *tok, const char *text, size_t len,
                             bool parse_special, fragv *out) {
    out->n = 0;
    if (len == 0) return COMI_OK;
    comi_status st = fragv_insert(e, out, 0, (frag){0, len, -1});
    if (st || tok->n_special == 0) return st;
    occ *occs = NULL;
    size_t n_occ = 0, cap_occ = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)text[i];
        for (uint32_t k = tok->by_byte[c]; k < tok->by_byte[c + 1]; k++) {
            uint32_t prio = (uint32_t)tok->special_fb[k];
            int32_t id = tok->special[prio];
            if (!parse_special && (tok->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
            size_t pl = tok->piece_len[id];
            if (pl > len - i || memcmp(text + i, tok->pool + tok->piece_off[id], pl)) continue;
            if (n_occ == cap_occ) {
                cap_occ = cap_occ ? cap_occ * 2 : 16;
                occ *no = realloc(occs, cap_occ * sizeof *no);
                if (!no) {
                    free(occs);
                    return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
                }
                occs = no;
            }
            occs[n_occ++] = (occ){prio, i};
        }
    }
    if (n_occ == 0) return COMI_OK;
    qsort(occs, n_occ, sizeof *occs, cmp_occ);
    for (size_t k = 0; k < n_occ; k++) {
        int32_t id = tok->special[occs[k].prio];
        size_t pos = occs[k].pos, pl = tok->piece_len[id];
        /* the last fragment starting at or before pos (fragments are in text order) */
        size_t lo = 0, hi = out->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (out->v[mid].off <= pos)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == 0) continue;
        lo--;
        frag f = out->v[lo];
        if (f.token >= 0 || pos < f.off || pos + pl > f.off + f.len) continue;
        size_t left_len = pos - f.off;
        if (tok->attr[id] & TOK_ATTR_LSTRIP)
            while (left_len > 0 && is_space_c(text[f.off + left_len - 1]))
                left_len--;
        size_t r_off = pos + pl, r_len = f.off + f.len - r_off;
        if (tok->attr[id] & TOK_ATTR_RSTRIP)
            while (r_len > 0 && is_space_c(text[r_off])) {
                r_off++;
                r_len--;
            }
        /* replace f by [left] token [right] */
        size_t at = lo;
        memmove(out->v + at, out->v + at + 1, (out->n - at - 1) * sizeof *out->v);
        out->n--;
        if (left_len > 0) {
            st = fragv_insert(e, out, at++, (frag){f.off, left_len, -1});
            if (st) break;
        }
        /* a token fragment keeps its text position so the search stays ordered */
        st = fragv_insert(e, out, at++, (frag){pos, pl, id});
        if (st) break;
        if (r_len > 0) {
            st = fragv_insert(e, out, at, (frag){r_off, r_len, -1});
            if (st) break;
        }
    }
    free(occs);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Encoding: SPM (llm_tokenizer_spm_session)                                */
/* ------------------------------------------------------------------------ */

typedef struct sym {
    int32_t prev, next;
    uint32_t start, len; /* bytes in the word/text */
    int32_t id;          /* BPE: current piece; SPM: unused */
} sym;

/* A bigram candidate: key orders the min-heap (SPM: higher score first,
 * then lower left index; BPE: lower rank first, then lower left index). */
typedef struct bigram {
    uint64_t key;
    int32_t left, right;
    uint32_t size;  /* bytes of left + right when queued: a mismatch = stale */
    int32_t result; /* BPE: the merged piece */
} bigram;

typedef struct scratch {
    sym *syms;
    size_t syms_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
    bbuf text;  /* normalized fragment / escaped SPM text */
    bbuf word;  /* byte-level encoded word (ignore_merges lookups) */
    bbuf arena; /* pre-tokenizer pieces' text */
    struct piece {
        size_t off, len;
    } * pieces, *pieces2;
    size_t n_pieces, n_pieces2, pieces_cap, pieces2_cap;
    pcre2_match_data *md;
} scratch;

static comi_status heap_push(comi_err *e, scratch *s, bigram b) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        bigram *h = realloc(s->heap, cap * sizeof *h);
        if (!h) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
        s->heap = h;
        s->heap_cap = cap;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->heap[p].key <= b.key) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = b;
    return COMI_OK;
}

static bigram heap_pop(scratch *s) {
    bigram top = s->heap[0];
    bigram last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && s->heap[c + 1].key < s->heap[c].key) c++;
        if (last.key <= s->heap[c].key) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

static comi_status syms_reserve(comi_err *e, scratch *s, size_t n) {
    if (n <= s->syms_cap) return COMI_OK;
    if (n > INT32_MAX) return comi_err_set(e, COMI_ERR_LIMIT, "tokenizer: text fragment too long");
    size_t cap = s->syms_cap ? s->syms_cap : 64;
    while (cap < n)
        cap *= 2;
    sym *v = realloc(s->syms, cap * sizeof *v);
    if (!v) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    s->syms = v;
    s->syms_cap = cap;
    return COMI_OK;
}

/* Descending order key of a float score. */
static uint32_t score_key_desc(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending */
    return ~u;
}

static comi_status spm_try_bigram(comi_err *e, const comi_tokenizer *tok, scratch *s,
                                  const char *text, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return COMI_OK;
    const sym *a = &s->syms[l], *b = &s->syms[r];
    int32_t id = tok_lookup(tok, text + a->start, (size_t)a->len + b->len);
    if (id < 0) return COMI_OK;
    bigram g = {((uint64_t)score_key_desc(tok->score[id]) << 32) | (uint32_t)l, l, r,
                a->len + b->len, id};
    return heap_push(e, s, g);
}

static comi_status spm_segment(comi_err *e, const comi_tokenizer *tok, scratch *s, const char *text,
                               size_t len, ivec *out) {
    if (len == 0) return COMI_OK;
    comi_status st = syms_reserve(e, s, len);
    if (st) return st;
    int32_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t cl = utf8_len((uint8_t)text[off]);
        if (cl > len - off) cl = len - off;
        s->syms[n] = (sym){n - 1, off + cl == len ? -1 : n + 1, (uint32_t)off, (uint32_t)cl, -1};
        off += cl;
        n++;
    }
    s->heap_n = 0;
    for (int32_t i = 1; i < n; i++)
        if ((st = spm_try_bigram(e, tok, s, text, i - 1, i))) return st;
    while (s->heap_n) {
        bigram g = heap_pop(s);
        sym *a = &s->syms[g.left], *b = &s->syms[g.right];
        if (a->len == 0 || b->len == 0 || a->len + b->len != g.size) continue;
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (b->next >= 0) s->syms[b->next].prev = g.left;
        if ((st = spm_try_bigram(e, tok, s, text, a->prev, g.left))) return st;
        if ((st = spm_try_bigram(e, tok, s, text, g.left, a->next))) return st;
    }
    for (int32_t i = 0; i != -1; i = s->syms[i].next) {
        const sym *y = &s->syms[i];
        int32_t id = tok_lookup(tok, text + y->start, y->len);
        if (id >= 0) {
            if ((st = ivec_push(e, out, id))) return st;
            continue;
        }
        /* not a piece: one byte piece per byte */
        for (uint32_t j = 0; j < y->len; j++) {
            int32_t bid = tok->byte_id[(uint8_t)text[y->start + j]];
            if (bid < 0) bid = tok->unk;
            if (bid < 0)
                return comi_err_set(
                    e, COMI_ERR_FORMAT,
                    "tokenizer: byte 0x%02X has no <0x%02X> piece and there is no unknown token",
                    (uint8_t)text[y->start + j], (uint8_t)text[y->start + j]);
            if ((st = ivec_push(e, out, bid))) return st;
        }
    }
    return COMI_OK;
}

/* llama.cpp merges the whole fragment at once. When no piece has U+2581
 * after another character (tok->spm_ws_split, checked at load), no merge
 * can cross the boundary in front of a U+2581 that follows another
 * character, so the segments between such boundaries are merged one at a
 * time with the same result and a small, cache-friendly heap. */
static comi_status spm_encode(comi_err *e, const comi_tokenizer *tok, scratch *s, const char *text,
                              size_t len, ivec *out) {
    if (!tok->spm_ws_split) return spm_segment(e, tok, s, text, len, out);
    size_t start = 0, i = 0;
    while (i + 3 <= len) {
        const char *hit = memmem(text + i, len - i, "\xe2\x96\x81", 3);
        if (!hit) break;
        size_t at = (size_t)(hit - text);
        bool after_space = at >= 3 && !memcmp(text + at - 3, "\xe2\x96\x81", 3);
        if (at > start && !after_space) {
            comi_status st = spm_segment(e, tok, s, text + start, at - start, out);
            if (st) return st;
            start = at;
        }
        i = at + 3;
    }
    return spm_segment(e, tok, s, text + start, len - start, out);
}

/* ------------------------------------------------------------------------ */
/* Encoding: BPE (llm_tokenizer_bpe_session / HF BPE::merge_word)          */
/* ------------------------------------------------------------------------ */

static comi_status bpe_try_bigram(comi_err *e, const comi_tokenizer *tok, scratch *s, int32_t l,
                                  int32_t r) {
    if (l < 0 || r < 0) return COMI_OK;
    const sym *a = &s->syms[l], *b = &s->syms[r];
    if (a->id < 0 || b->id < 0) return COMI_OK;
    int32_t m = merge_find(tok, a->id, b->id);
    if (m < 0) return COMI_OK;
    bigram g = {((uint64_t)(uint32_t)tok->merges[m].rank << 32) | (uint32_t)l, l, r,
                a->len + b->len, tok->merges[m].result};
    return heap_push(e, s, g);
}

static comi_status bpe_word(comi_err *e, const comi_tokenizer *tok, scratch *s, const char *w,
                            size_t len, ivec *out) {
    if (len == 0) return COMI_OK;
    comi_status st;
    if (tok->ignore_merges) {
        int32_t id;
        if (tok->byte_level) {
            s->word.n = 0;
            if (len > SIZE_MAX / 4)
                return comi_err_set(e, COMI_ERR_LIMIT, "tokenizer: word too long");
            if ((st = bbuf_reserve(e, &s->word, len * 2))) return st;
            for (size_t i = 0; i < len; i++)
                s->word.n += utf8_put(tok_byte_to_cp((uint8_t)w[i]), s->word.p + s->word.n);
            id = tok_lookup(tok, s->word.p, s->word.n);
        } else {
            id = tok_lookup(tok, w, len);
        }
        if (id >= 0) return ivec_push(e, out, id);
    }
    if ((st = syms_reserve(e, s, len))) return st;
    int32_t n = 0;
    if (tok->byte_level) {
        for (size_t i = 0; i < len; i++, n++)
            s->syms[n] = (sym){n - 1, n + 1, (uint32_t)i, 1, tok->byte_id[(uint8_t)w[i]]};
    } else {
        for (size_t off = 0; off < len;) {
            size_t cl = utf8_len((uint8_t)w[off]);
            if (cl > len - off) cl = len - off;
            int32_t id = tok_lookup(tok, w + off, cl);
            if (id < 0 && tok->byte_fallback) {
                bool all = true;
                for (size_t j = 0; j < cl; j++)
                    all = all && tok->byte_id[(uint8_t)w[off + j]] >= 0;
                if (all) {
                    for (size_t j = 0; j < cl; j++, n++)
                        s->syms[n] = (sym){n - 1, n + 1, (uint32_t)(off + j), 1,
                                           tok->byte_id[(uint8_t)w[off + j]]};
                    off += cl;
                    continue;
                }
            }
            if (id < 0) {
                id = tok->unk;
                if (tok->fuse_unk && n > 0 && s->syms[n - 1].id == tok->unk && id >= 0) {
                    s->syms[n - 1].len += (uint32_t)cl;
                    off += cl;
                    continue;
                }
            }
            s->syms[n] = (sym){n - 1, n + 1, (uint32_t)off, (uint32_t)cl, id};
            off += cl;
            n++;
        }
    }
    s->syms[n - 1].next = -1;
    s->heap_n = 0;
    for (int32_t i = 1; i < n; i++)
        if ((st = bpe_try_bigram(e, tok, s, i - 1, i))) return st;
    while (s->heap_n) {
        bigram g = heap_pop(s);
        sym *a = &s->syms[g.left], *b = &s->syms[g.right];
        if (a->len == 0 || b->len == 0 || a->len + b->len != g.size) continue;
        a->len += b->len;
        a->id = g.result;
        b->len = 0;
        a->next = b->next;
        if (b->next >= 0) s->syms[b->next].prev = g.left;
        if ((st = bpe_try_bigram(e, tok, s, a->prev, g.left))) return st;
        if ((st = bpe_try_bigram(e, tok, s, g.left, a->next))) return st;
    }
    for (int32_t i = 0; i != -1; i = s->syms[i].next)
        if (s->syms[i].id >= 0 && (st = ivec_push(e, out, s->syms[i].id))) return st;
    return COMI_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding: normalizers and pre-tokenizer (Hugging Face pipeline)          */
/* ------------------------------------------------------------------------ */

/* Replaces every non-overlapping occurrence of pat in src by rep. */
static comi_status replace_all(comi_err *e, const char *src, size_t len, const char *pat,
                               size_t pat_len, const char *rep, size_t rep_len, bbuf *dst) {
    dst->n = 0;
    comi_status st = bbuf_reserve(e, dst, len);
    if (st) return st;
    if (pat_len == 0) return bbuf_add(e, dst, src, len);
    size_t i = 0;
    while (i < len) {
        const char *hit = memmem(src + i, len - i, pat, pat_len);
        if (!hit) break;
        size_t at = (size_t)(hit - src);
        if ((st = bbuf_add(e, dst, src + i, at - i))) return st;
        if ((st = bbuf_add(e, dst, rep, rep_len))) return st;
        i = at + pat_len;
    }
    return bbuf_add(e, dst, src + i, len - i);
}

static comi_status apply_normalizers(comi_err *e, const comi_tokenizer *tok, scratch *s,
                                     const char *text, size_t len, bbuf *out) {
    out->n = 0;
    comi_status st = bbuf_add(e, out, text, len);
    if (st) return st;
    bbuf tmp = {0};
    for (size_t k = 0; k < tok->n_norm && !st; k++) {
        const tok_norm *nm = &tok->norm[k];
        tmp.n = 0;
        switch (nm->kind) {
        case TOK_NORM_NFC:
        case TOK_NORM_NFKC:
        case TOK_NORM_NFD:
        case TOK_NORM_NFKD: {
            int opt = UTF8PROC_STABLE;
            if (nm->kind == TOK_NORM_NFC || nm->kind == TOK_NORM_NFKC)
                opt |= UTF8PROC_COMPOSE;
            else
                opt |= UTF8PROC_DECOMPOSE;
            if (nm->kind == TOK_NORM_NFKC || nm->kind == TOK_NORM_NFKD) opt |= UTF8PROC_COMPAT;
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t n =
                utf8proc_map((const utf8proc_uint8_t *)out->p, (utf8proc_ssize_t)out->n, &dst,
                             (utf8proc_option_t)opt);
            if (n < 0) {
                st = comi_err_set(e, COMI_ERR_INVALID_ARG, "tokenizer: normalization failed: %s",
                                  utf8proc_errmsg(n));
                break;
            }
            st = bbuf_add(e, &tmp, (const char *)dst, (size_t)n);
            free(dst);
            break;
        }
        case TOK_NORM_LOWERCASE:
            for (size_t i = 0; i < out->n && !st;) {
                utf8proc_int32_t cp;
                utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)out->p + i,
                                                      (utf8proc_ssize_t)(out->n - i), &cp);
                if (n <= 0) n = 1, cp = (uint8_t)out->p[i];
                char buf[4];
                size_t m = utf8_put((uint32_t)utf8proc_tolower(cp), buf);
                st = bbuf_add(e, &tmp, buf, m);
                i += (size_t)n;
            }
            break;
        case TOK_NORM_PREPEND:
            if (out->n > 0) {
                st = bbuf_add(e, &tmp, nm->a, nm->a_len);
                if (!st) st = bbuf_add(e, &tmp, out->p, out->n);
            }
            break;
        case TOK_NORM_REPLACE:
            if (!nm->re) {
                st = replace_all(e, out->p, out->n, nm->a, nm->a_len, nm->b, nm->b_len, &tmp);
            } else {
                size_t i = 0, gap = 0;
                while (i <= out->n && !st) {
                    int rc = pcre2_match(nm->re, (PCRE2_SPTR)out->p, out->n, i, PCRE2_NO_UTF_CHECK,
                                         s->md, NULL);
                    if (rc < 0) break;
                    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
                    if (ov[1] == ov[0]) {
                        i = ov[0] + (ov[0] < out->n ? utf8_len((uint8_t)out->p[ov[0]]) : 1);
                        continue;
                    }
                    st = bbuf_add(e, &tmp, out->p + gap, ov[0] - gap);
                    if (!st) st = bbuf_add(e, &tmp, nm->b, nm->b_len);
                    gap = i = ov[1];
                }
                if (!st) st = bbuf_add(e, &tmp, out->p + gap, out->n - gap);
            }
            break;
        case TOK_NORM_STRIP: {
            size_t a = 0, b = out->n;
            if (nm->a[0] == '1')
                while (a < b && is_space_c(out->p[a]))
                    a++;
            if (nm->b[0] == '1')
                while (b > a && is_space_c(out->p[b - 1]))
                    b--;
            st = bbuf_add(e, &tmp, out->p + a, b - a);
            break;
        }
        }
        if (st) break;
        bbuf sw = *out;
        *out = tmp;
        tmp = sw;
    }
    free(tmp.p);
    return st;
}

static comi_status pieces_push(comi_err *e, struct piece **v, size_t *n, size_t *cap, size_t off,
                               size_t len) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        struct piece *nv = realloc(*v, c * sizeof *nv);
        if (!nv) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
        *v = nv;
        *cap = c;
    }
    (*v)[*n].off = off;
    (*v)[*n].len = len;
    (*n)++;
    return COMI_OK;
}

/* Runs the pre-tokenizer steps over s->arena[0 .. n) (one fragment) and
 * leaves the words in s->pieces. first: the fragment starts the input. */
static comi_status pre_tokenize(comi_err *e, const comi_tokenizer *tok, scratch *s, bool first) {
    s->n_pieces = 0;
    comi_status st = pieces_push(e, &s->pieces, &s->n_pieces, &s->pieces_cap, 0, s->arena.n);
    if (st) return st;
    for (size_t k = 0; k < tok->n_pre; k++) {
        const tok_pre *p = &tok->pre[k];
        s->n_pieces2 = 0;
        for (size_t i = 0; i < s->n_pieces && !st; i++) {
            size_t off = s->pieces[i].off, len = s->pieces[i].len;
            if (p->kind == TOK_PRE_PREFIX_SPACE || p->kind == TOK_PRE_METASPACE) {
                /* rewrite the piece into new arena text */
                size_t start = s->arena.n;
                bool pre_space = false;
                if (p->kind == TOK_PRE_PREFIX_SPACE) {
                    pre_space = len == 0 || s->arena.p[off] != ' ';
                    if (pre_space) st = bbuf_add(e, &s->arena, " ", 1);
                    if (!st) st = bbuf_reserve(e, &s->arena, len);
                    if (!st) {
                        memmove(s->arena.p + s->arena.n, s->arena.p + off, len);
                        s->arena.n += len;
                    }
                } else {
                    size_t rl = strlen(p->repl);
                    bool prepend = p->prepend == 2 || (p->prepend == 1 && first && i == 0);
                    bool has = len > 0 && (s->arena.p[off] == ' ' ||
                                           (len >= rl && !memcmp(s->arena.p + off, p->repl, rl)));
                    if (prepend && !has) st = bbuf_add(e, &s->arena, p->repl, rl);
                    for (size_t j = 0; j < len && !st; j++) {
                        char c = s->arena.p[off + j];
                        st = c == ' ' ? bbuf_add(e, &s->arena, p->repl, rl)
                                      : bbuf_add(e, &s->arena, &c, 1);
                    }
                }
                if (!st)
                    st = pieces_push(e, &s->pieces2, &s->n_pieces2, &s->pieces2_cap, start,
                                     s->arena.n - start);
                continue;
            }
            /* regex split: matches (unless removed) and gaps become pieces */
            const char *subj = s->arena.p + off;
            size_t pos = 0, gap = 0;
            while (pos < len) {
                int rc =
                    pcre2_match(p->re, (PCRE2_SPTR)subj, len, pos, PCRE2_NO_UTF_CHECK, s->md, NULL);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) {
                    PCRE2_UCHAR msg[128];
                    pcre2_get_error_message(rc, msg, sizeof msg);
                    st = comi_err_set(e, COMI_ERR_INTERNAL, "tokenizer: regex match failed: %s",
                                      (const char *)msg);
                    break;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
                size_t ms = ov[0], me = ov[1];
                if (me <= ms) { /* empty match: no piece, move one character on */
                    pos = ms + utf8_len((uint8_t)subj[ms]);
                    continue;
                }
                if (ms > gap)
                    st = pieces_push(e, &s->pieces2, &s->n_pieces2, &s->pieces2_cap, off + gap,
                                     ms - gap);
                if (!st && p->kind == TOK_PRE_SPLIT)
                    st = pieces_push(e, &s->pieces2, &s->n_pieces2, &s->pieces2_cap, off + ms,
                                     me - ms);
                if (st) break;
                gap = pos = me;
            }
            if (!st && gap < len)
                st = pieces_push(e, &s->pieces2, &s->n_pieces2, &s->pieces2_cap, off + gap,
                                 len - gap);
        }
        if (st) return st;
        struct piece *sw = s->pieces;
        size_t swc = s->pieces_cap;
        s->pieces = s->pieces2;
        s->pieces_cap = s->pieces2_cap;
        s->n_pieces = s->n_pieces2;
        s->pieces2 = sw;
        s->pieces2_cap = swc;
    }
    return COMI_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding: driver                                                         */
/* ------------------------------------------------------------------------ */

static void scratch_free(scratch *s) {
    free(s->syms);
    free(s->heap);
    free(s->text.p);
    free(s->word.p);
    free(s->arena.p);
    free(s->pieces);
    free(s->pieces2);
    pcre2_match_data_free(s->md);
}

static comi_status encode_fragment(comi_err *e, const comi_tokenizer *tok, scratch *s,
                                   const char *text, size_t len, bool first, bool after_special,
                                   ivec *out) {
    comi_status st;
    if (tok->kind == TOK_KIND_SPM) {
        /* llama.cpp: ' ' prefix when the fragment starts the input or follows
         * a special token, then every ' ' becomes U+2581 */
        s->text.n = 0;
        if (tok->add_space_prefix && after_special &&
            (st = bbuf_add(e, &s->text, "\xe2\x96\x81", 3)))
            return st;
        if ((st = apply_normalizers(e, tok, s, text, len, &s->arena))) return st;
        if ((st = replace_all(e, s->arena.p, s->arena.n, " ", 1, "\xe2\x96\x81", 3, &s->word)))
            return st;
        if ((st = bbuf_add(e, &s->text, s->word.p, s->word.n))) return st;
        return spm_encode(e, tok, s, s->text.p, s->text.n, out);
    }
    if (tok->n_norm) {
        if ((st = apply_normalizers(e, tok, s, text, len, &s->text))) return st;
        text = s->text.p;
        len = s->text.n;
    }
    s->arena.n = 0;
    if ((st = bbuf_add(e, &s->arena, text, len))) return st;
    if ((st = pre_tokenize(e, tok, s, first))) return st;
    for (size_t i = 0; i < s->n_pieces; i++)
        if ((st = bpe_word(e, tok, s, s->arena.p + s->pieces[i].off, s->pieces[i].len, out)))
            return st;
    return COMI_OK;
}

comi_status tok_encode(comi_err *e, const comi_tokenizer *tok, const char *text, size_t len,
                       bool add_bos, bool add_eos, bool parse_special, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (!tok) return comi_err_set(e, COMI_ERR_INVALID_ARG, "tokenizer: no tokenizer");
    if (!text && len) return comi_err_set(e, COMI_ERR_INVALID_ARG, "tokenizer: text is NULL");
    size_t bad = utf8_first_invalid(text, len);
    if (bad < len)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "invalid UTF-8 in input text at byte offset %zu (byte 0x%02X)", bad,
                            (uint8_t)text[bad]);
    ivec out = {0};
    scratch s = {0};
    fragv fv = {0};
    comi_status st = COMI_OK;
    if (add_bos && tok->bos >= 0) st = ivec_push(e, &out, tok->bos);
    if (!st) st = partition(e, tok, text, len, parse_special, &fv);
    if (!st && tok->n_pre + tok->n_norm > 0) {
        s.md = pcre2_match_data_create(2, NULL);
        if (!s.md) st = comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    }
    bool after_special = true;
    for (size_t i = 0; i < fv.n && !st; i++) {
        if (fv.v[i].token >= 0) {
            st = ivec_push(e, &out, fv.v[i].token);
            after_special = true;
        } else {
            st = encode_fragment(e, tok, &s, text + fv.v[i].off, fv.v[i].len, i == 0, after_special,
                                 &out);
            after_special = false;
        }
    }
    if (!st && add_eos && tok->eos >= 0) st = ivec_push(e, &out, tok->eos);
    scratch_free(&s);
    free(fv.v);
    if (st) {
        free(out.v);
        return st;
    }
    *ids = out.v;
    *n = out.n;
    return COMI_OK;
}

/* ------------------------------------------------------------------------ */
/* Decoding (token_to_piece / detokenize)                                   */
/* ------------------------------------------------------------------------ */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

comi_status tok_decode(comi_err *e, const comi_tokenizer *tok, const int32_t *ids, size_t n,
                       bool skip_special, char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    if (!tok) return comi_err_set(e, COMI_ERR_INVALID_ARG, "tokenizer: no tokenizer");
    if (!ids && n) return comi_err_set(e, COMI_ERR_INVALID_ARG, "tokenizer: ids is NULL");
    bbuf out = {0};
    comi_status st = bbuf_reserve(e, &out, 16);
    if (st) return st;
    out.p[0] = '\0';
    size_t i = 0;
    if (skip_special && n > 0 && tok->add_bos && ids[0] == tok->bos) i = 1;
    bool first = true;
    for (; i < n && !st; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->n_vocab) {
            st = comi_err_set(e, COMI_ERR_INVALID_ARG, "token id %d out of range [0, %d)", (int)id,
                              (int)tok->n_vocab);
            break;
        }
        size_t start = out.n;
        const char *p = tok->pool + tok->piece_off[id];
        size_t pl = tok->piece_len[id];
        uint8_t a = tok->attr[id];
        if (a & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)) {
            if (!skip_special) st = bbuf_add(e, &out, p, pl);
        } else if (a & TOK_ATTR_USER_DEFINED) {
            st = bbuf_add(e, &out, p, pl);
        } else if ((a & TOK_ATTR_BYTE) && tok->dec_metaspace && pl == 6 && hexval(p[3]) >= 0 &&
                   hexval(p[4]) >= 0) {
            char c = (char)(hexval(p[3]) * 16 + hexval(p[4]));
            st = bbuf_add(e, &out, &c, 1);
        } else if (a & TOK_ATTR_NORMAL) {
            if (tok->byte_level) {
                for (size_t j = 0; j < pl && !st;) {
                    utf8proc_int32_t cp;
                    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + j,
                                                          (utf8proc_ssize_t)(pl - j), &cp);
                    if (k <= 0) k = 1, cp = -1;
                    int b = cp >= 0 ? cp_to_byte((uint32_t)cp) : -1;
                    if (b >= 0) {
                        char c = (char)b;
                        st = bbuf_add(e, &out, &c, 1);
                    } else {
                        st = bbuf_add(e, &out, p + j, (size_t)k); /* not a byte character: as is */
                    }
                    j += (size_t)k;
                }
            } else if (tok->dec_metaspace) {
                /* U+2581 -> ' ', everything else as is */
                size_t j = 0;
                while (j < pl && !st) {
                    const char *hit = memmem(p + j, pl - j, "\xe2\x96\x81", 3);
                    size_t upto = hit ? (size_t)(hit - p) : pl;
                    st = bbuf_add(e, &out, p + j, upto - j);
                    if (!st && hit) st = bbuf_add(e, &out, " ", 1);
                    j = hit ? upto + 3 : pl;
                }
            } else {
                st = bbuf_add(e, &out, p, pl);
            }
        }
        if (!st && first && tok->strip_space && out.n > start && out.p[start] == ' ') {
            memmove(out.p + start, out.p + start + 1, out.n - start - 1);
            out.n--;
            out.p[out.n] = '\0';
        }
        first = false;
    }
    if (st) {
        free(out.p);
        return st;
    }
    *text = out.p;
    if (len) *len = out.n;
    return COMI_OK;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                */
/* ------------------------------------------------------------------------ */

const char *tok_piece(const comi_tokenizer *tok, int32_t id, size_t *len) {
    if (!tok || id < 0 || id >= tok->n_vocab) return NULL;
    if (len) *len = tok->piece_len[id];
    return tok->pool + tok->piece_off[id];
}

int32_t tok_n_vocab(const comi_tokenizer *tok) {
    return tok ? tok->n_vocab : 0;
}
int32_t tok_bos(const comi_tokenizer *tok) {
    return tok ? tok->bos : -1;
}
int32_t tok_eos(const comi_tokenizer *tok) {
    return tok ? tok->eos : -1;
}
int32_t tok_eot(const comi_tokenizer *tok) {
    return tok ? tok->eot : -1;
}
int32_t tok_unk(const comi_tokenizer *tok) {
    return tok ? tok->unk : -1;
}
bool tok_add_bos(const comi_tokenizer *tok) {
    return tok && tok->add_bos && tok->bos >= 0;
}
bool tok_add_eos(const comi_tokenizer *tok) {
    return tok && tok->add_eos && tok->eos >= 0;
}

bool tok_is_eog(const comi_tokenizer *tok, int32_t id) {
    if (!tok || id < 0) return false;
    size_t lo = 0, hi = tok->n_eog;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tok->eog[mid] == id) return true;
        if (tok->eog[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

uint32_t tok_attr(const comi_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_vocab) return 0;
    return tok->attr[id];
}

bool tok_is_control(const comi_tokenizer *tok, int32_t id) {
    return (tok_attr(tok, id) & TOK_ATTR_CONTROL) != 0;
}

const char *tok_kind_name(const comi_tokenizer *tok) {
    return tok && tok->kind == TOK_KIND_SPM ? "spm" : "bpe";
}

const char *tok_pre_name(const comi_tokenizer *tok) {
    return tok ? tok->pre_name : "";
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

comi_status comi_tokenizer_load(comi_ctx *ctx, const char *path, comi_tokenizer **out) {
    if (!out) return COMI_ERR_INVALID_ARG;
    *out = NULL;
    comi_err *e = ctx ? &ctx->err : NULL;
    if (!path || !*path)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "tokenizer: empty model path");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return comi_err_set(e, COMI_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(sb.st_mode)) return tok_load_hf_dir(e, path, out);
    size_t pl = strlen(path);
    if (pl >= 5 && !strcmp(path + pl - 5, ".json")) return tok_load_hf_json(e, path, out);
    gguf_file *f = NULL;
    comi_status st = gguf_open(e, path, &f);
    if (st) return st;
    st = tok_load_gguf(e, f, out);
    gguf_close(f);
    return st;
}

void comi_tokenizer_free(comi_tokenizer *tok) {
    tok_free(tok);
}

comi_tokenize_params comi_tokenize_default_params(void) {
    comi_tokenize_params p = {.add_bos = -1, .add_eos = -1, .parse_special = false};
    return p;
}

comi_status comi_tokenize(comi_ctx *ctx, const comi_tokenizer *tok, const char *text, size_t len,
                          const comi_tokenize_params *params, int32_t **ids, size_t *n_ids) {
    comi_err *e = ctx ? &ctx->err : NULL;
    if (!ids || !n_ids) return comi_err_set(e, COMI_ERR_INVALID_ARG, "comi_tokenize: NULL output");
    comi_tokenize_params def = comi_tokenize_default_params();
    if (!params) params = &def;
    bool bos = params->add_bos < 0 ? tok_add_bos(tok) : params->add_bos > 0;
    bool eos = params->add_eos < 0 ? tok_add_eos(tok) : params->add_eos > 0;
    return tok_encode(e, tok, text, len, bos, eos, params->parse_special, ids, n_ids);
}

comi_status comi_detokenize(comi_ctx *ctx, const comi_tokenizer *tok, const int32_t *ids,
                            size_t n_ids, bool skip_special, char **text, size_t *len) {
    comi_err *e = ctx ? &ctx->err : NULL;
    if (!text) return comi_err_set(e, COMI_ERR_INVALID_ARG, "comi_detokenize: NULL output");
    return tok_decode(e, tok, ids, n_ids, skip_special, text, len);
}

int32_t comi_tokenizer_n_vocab(const comi_tokenizer *tok) {
    return tok_n_vocab(tok);
}
int32_t comi_tokenizer_bos(const comi_tokenizer *tok) {
    return tok_bos(tok);
}
int32_t comi_tokenizer_eos(const comi_tokenizer *tok) {
    return tok_eos(tok);
}
bool comi_tokenizer_adds_bos(const comi_tokenizer *tok) {
    return tok_add_bos(tok);
}
bool comi_tokenizer_is_eog(const comi_tokenizer *tok, int32_t id) {
    return tok_is_eog(tok, id);
}

const char *comi_tokenizer_piece(const comi_tokenizer *tok, int32_t id, size_t *len) {
    return tok_piece(tok, id, len);
}
