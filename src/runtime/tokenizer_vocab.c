/*
 * tokenizer_vocab.c — the tokenizer object: its vocabulary (piece texts,
 * scores, attributes, the text -> id map), BPE merges, pre-tokenizer regex
 * steps, special tokens and EOG set (tok_finalize, mirroring llama.cpp's
 * llama_vocab::load special-token and EOG detection), and the accessors.
 * Built by the loaders (tokenizer_gguf.c, tokenizer_hf.c), read by the
 * engine (tokenizer.c). Also the byte-level and buffer helpers they share.
 */
#include "runtime/tokenizer_impl.h"

#include "base/strmap.h"
#include "base/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static uint64_t hash_pair(int32_t a, int32_t b) {
    uint64_t x = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return 289u + (b - 127u); /* 127..160 */
    return 323u;                            /* 173 */
}

comi_status tok_buf_reserve(comi_err *e, tok_buf *b, size_t extra) {
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

comi_status tok_buf_add(comi_err *e, tok_buf *b, const char *s, size_t len) {
    comi_status st = tok_buf_reserve(e, b, len);
    if (st) return st;
    if (len) memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
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
    tok_buf b = {tok->pool, tok->pool_len, tok->pool_cap};
    comi_status st = tok_buf_add(e, &b, s, len);
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
    for (size_t i = (size_t)comi_hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
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
        for (size_t i = (size_t)comi_hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
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

int32_t tok_merge_find(const comi_tokenizer *tok, int32_t l, int32_t r) {
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
    if (res < 0 || tok_merge_find(tok, li, ri) >= 0) {
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
            size_t n = comi_utf8_put(tok_byte_to_cp((uint8_t)b), buf);
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
    free(tok->chat_template);
    free(tok);
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

const char *tok_chat_template(const comi_tokenizer *tok) {
    return tok ? tok->chat_template : NULL;
}

const char *tok_pre_name(const comi_tokenizer *tok) {
    return tok ? tok->pre_name : "";
}
