/*
 * tokenizer.c — stage 1 of the pipeline: text <-> token ids (the engine).
 *
 * Mirrors llama.cpp's llama-vocab.cpp (the oracle of the golden token
 * vectors): llm_tokenizer_spm (highest-score bigram merging, byte fallback),
 * llm_tokenizer_bpe (regex pre-tokenization, then lowest-rank merges over
 * GPT-2 byte-level characters), special-token partitioning
 * (tokenizer_st_partition) and token_to_piece/detokenize. Where llama.cpp
 * applies several pre-tokenizer regexes in sequence, so do we (matches and
 * gaps both become pieces). The tokenizer object is built by
 * tokenizer_vocab.c from one of the loaders (tokenizer_gguf.c,
 * tokenizer_hf.c); the public comi_tokenizer_* API is tokenizer_api.c.
 *
 * Deliberate differences from llama.cpp: invalid UTF-8 input is rejected
 * (llama.cpp silently maps each bad byte to U+FFFD in BPE); merges whose
 * parts are not vocabulary pieces are ignored.
 */
#include "runtime/tokenizer_impl.h"

#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

/* Byte length of the UTF-8 sequence a lead byte announces, as llama.cpp's
 * unicode_len_utf8 (continuation bytes count as 1). */
static size_t utf8_len(uint8_t c) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
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

/* Growable id vector (per call scratch). */
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
    tok_buf text;  /* normalized fragment / escaped SPM text */
    tok_buf word;  /* byte-level encoded word (ignore_merges lookups) */
    tok_buf arena; /* pre-tokenizer pieces' text */
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
    int32_t m = tok_merge_find(tok, a->id, b->id);
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
            if ((st = tok_buf_reserve(e, &s->word, len * 2))) return st;
            for (size_t i = 0; i < len; i++)
                s->word.n += comi_utf8_put(tok_byte_to_cp((uint8_t)w[i]), s->word.p + s->word.n);
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
                               size_t pat_len, const char *rep, size_t rep_len, tok_buf *dst) {
    dst->n = 0;
    comi_status st = tok_buf_reserve(e, dst, len);
    if (st) return st;
    if (pat_len == 0) return tok_buf_add(e, dst, src, len);
    size_t i = 0;
    while (i < len) {
        const char *hit = memmem(src + i, len - i, pat, pat_len);
        if (!hit) break;
        size_t at = (size_t)(hit - src);
        if ((st = tok_buf_add(e, dst, src + i, at - i))) return st;
        if ((st = tok_buf_add(e, dst, rep, rep_len))) return st;
        i = at + pat_len;
    }
    return tok_buf_add(e, dst, src + i, len - i);
}

static comi_status apply_normalizers(comi_err *e, const comi_tokenizer *tok, scratch *s,
                                     const char *text, size_t len, tok_buf *out) {
    out->n = 0;
    comi_status st = tok_buf_add(e, out, text, len);
    if (st) return st;
    tok_buf tmp = {0};
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
            st = tok_buf_add(e, &tmp, (const char *)dst, (size_t)n);
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
                size_t m = comi_utf8_put((uint32_t)utf8proc_tolower(cp), buf);
                st = tok_buf_add(e, &tmp, buf, m);
                i += (size_t)n;
            }
            break;
        case TOK_NORM_PREPEND:
            if (out->n > 0) {
                st = tok_buf_add(e, &tmp, nm->a, nm->a_len);
                if (!st) st = tok_buf_add(e, &tmp, out->p, out->n);
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
                    st = tok_buf_add(e, &tmp, out->p + gap, ov[0] - gap);
                    if (!st) st = tok_buf_add(e, &tmp, nm->b, nm->b_len);
                    gap = i = ov[1];
                }
                if (!st) st = tok_buf_add(e, &tmp, out->p + gap, out->n - gap);
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
            st = tok_buf_add(e, &tmp, out->p + a, b - a);
            break;
        }
        }
        if (st) break;
        tok_buf sw = *out;
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
                    if (pre_space) st = tok_buf_add(e, &s->arena, " ", 1);
                    if (!st) st = tok_buf_reserve(e, &s->arena, len);
                    if (!st) {
                        memmove(s->arena.p + s->arena.n, s->arena.p + off, len);
                        s->arena.n += len;
                    }
                } else {
                    size_t rl = strlen(p->repl);
                    bool prepend = p->prepend == 2 || (p->prepend == 1 && first && i == 0);
                    bool has = len > 0 && (s->arena.p[off] == ' ' ||
                                           (len >= rl && !memcmp(s->arena.p + off, p->repl, rl)));
                    if (prepend && !has) st = tok_buf_add(e, &s->arena, p->repl, rl);
                    for (size_t j = 0; j < len && !st; j++) {
                        char c = s->arena.p[off + j];
                        st = c == ' ' ? tok_buf_add(e, &s->arena, p->repl, rl)
                                      : tok_buf_add(e, &s->arena, &c, 1);
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
            (st = tok_buf_add(e, &s->text, "\xe2\x96\x81", 3)))
            return st;
        if ((st = apply_normalizers(e, tok, s, text, len, &s->arena))) return st;
        if ((st = replace_all(e, s->arena.p, s->arena.n, " ", 1, "\xe2\x96\x81", 3, &s->word)))
            return st;
        if ((st = tok_buf_add(e, &s->text, s->word.p, s->word.n))) return st;
        return spm_encode(e, tok, s, s->text.p, s->text.n, out);
    }
    if (tok->n_norm) {
        if ((st = apply_normalizers(e, tok, s, text, len, &s->text))) return st;
        text = s->text.p;
        len = s->text.n;
    }
    s->arena.n = 0;
    if ((st = tok_buf_add(e, &s->arena, text, len))) return st;
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
    size_t bad = comi_utf8_first_invalid(text, len);
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
    tok_buf out = {0};
    comi_status st = tok_buf_reserve(e, &out, 16);
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
            if (!skip_special) st = tok_buf_add(e, &out, p, pl);
        } else if (a & TOK_ATTR_USER_DEFINED) {
            st = tok_buf_add(e, &out, p, pl);
        } else if ((a & TOK_ATTR_BYTE) && tok->dec_metaspace && pl == 6 && hexval(p[3]) >= 0 &&
                   hexval(p[4]) >= 0) {
            char c = (char)(hexval(p[3]) * 16 + hexval(p[4]));
            st = tok_buf_add(e, &out, &c, 1);
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
                        st = tok_buf_add(e, &out, &c, 1);
                    } else {
                        st = tok_buf_add(e, &out, p + j, (size_t)k); /* not a byte character: as is */
                    }
                    j += (size_t)k;
                }
            } else if (tok->dec_metaspace) {
                /* U+2581 -> ' ', everything else as is */
                size_t j = 0;
                while (j < pl && !st) {
                    const char *hit = memmem(p + j, pl - j, "\xe2\x96\x81", 3);
                    size_t upto = hit ? (size_t)(hit - p) : pl;
                    st = tok_buf_add(e, &out, p + j, upto - j);
                    if (!st && hit) st = tok_buf_add(e, &out, " ", 1);
                    j = hit ? upto + 3 : pl;
                }
            } else {
                st = tok_buf_add(e, &out, p, pl);
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
