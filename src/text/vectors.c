/*
 * vectors.c — text mode, the static word-vector encoder. Reads GloVe text
 * files ("word v1 ... vd" per line), word2vec text files (the same with a
 * "count dim" first line) and word2vec binary files ("count dim\n", then per
 * word: the word, one space, dim little-endian float32, an optional
 * newline), detected from the bytes. Words are normalised like context
 * words (lower-case, letters and digits only, no stemming) so lookups match
 * lexical terms; the first vector of a normalised word wins. Every count,
 * dimension and value is checked against the bytes that remain.
 */
#include "text/text.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VEC_MAX_DIM 4096

struct vec_table {
    text_dict dict;  /* normalised word -> row */
    float *data;     /* (n, dim) */
    size_t n, cap;
    int32_t dim;
};

int32_t vec_dim(const vec_table *t) {
    return t->dim;
}

const float *vec_lookup(const vec_table *t, const char *word, size_t len) {
    uint32_t id = text_dict_find(&t->dict, word, len);
    return id == UINT32_MAX ? NULL : t->data + (size_t)id * (size_t)t->dim;
}

void vec_free(vec_table *t) {
    if (!t) return;
    text_dict_free(&t->dict);
    free(t->data);
    free(t);
}

/* Adds a word's vector (copied from v); duplicates after normalisation and
 * words with no letters or digits are ignored. */
static comi_status add_word(comi_err *e, vec_table *t, const char *word, size_t wl,
                            const float *v) {
    char stackbuf[256];
    if (wl * 4 + 4 > sizeof stackbuf) return COMI_OK; /* absurdly long word: skip */
    size_t nl = lex_normalize_word(word, wl, false, stackbuf);
    if (nl == 0) return COMI_OK;
    size_t before = t->dict.n;
    uint32_t id = text_dict_id(e, &t->dict, stackbuf, nl, false);
    if (id == UINT32_MAX) return e->status;
    if (t->dict.n == before) return COMI_OK; /* already present */
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 1024, bytes;
        if (!comi_mul3_size(nc, (size_t)t->dim, sizeof(float), &bytes))
            return comi_err_set(e, COMI_ERR_LIMIT, "vectors: table too large");
        float *nd = realloc(t->data, bytes);
        if (!nd) return comi_err_set(e, COMI_ERR_NOMEM, "vectors: out of memory");
        t->data = nd;
        t->cap = nc;
    }
    memcpy(t->data + t->n * (size_t)t->dim, v, (size_t)t->dim * sizeof(float));
    t->n++;
    return COMI_OK;
}

static bool parse_header(const char *line, size_t len, long long *count, long long *dim) {
    char buf[64];
    if (len >= sizeof buf) return false;
    memcpy(buf, line, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    *count = strtoll(buf, &end, 10);
    if (end == buf || *end != ' ' || errno) return false;
    char *p = end + 1;
    *dim = strtoll(p, &end, 10);
    if (end == p || errno) return false;
    while (*end == ' ' || *end == '\r') end++;
    return *end == '\0';
}

static comi_status load_text(comi_err *e, const char *path, const char *s, size_t n,
                             size_t start, long long header_count, vec_table *t) {
    float v[VEC_MAX_DIM];
    size_t pos = start;
    long long line = header_count >= 0 ? 2 : 1, rows = 0;
    while (pos < n) {
        size_t eol = pos;
        while (eol < n && s[eol] != '\n') eol++;
        size_t le = eol;
        if (le > pos && s[le - 1] == '\r') le--;
        if (le > pos) {
            size_t ws = pos;
            while (ws < le && s[ws] != ' ' && s[ws] != '\t') ws++;
            if (ws == le)
                return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: a word with no values",
                                    path, line);
            int32_t k = 0;
            const char *p = s + ws;
            while (p < s + le) {
                while (p < s + le && (*p == ' ' || *p == '\t')) p++;
                if (p >= s + le) break;
                char num[64];
                size_t nl = 0;
                while (p + nl < s + le && p[nl] != ' ' && p[nl] != '\t') nl++;
                if (nl >= sizeof num)
                    return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: value %d too long",
                                        path, line, k + 1);
                memcpy(num, p, nl);
                num[nl] = '\0';
                char *end;
                errno = 0;
                float x = strtof(num, &end);
                if (*end || errno == ERANGE || !isfinite(x))
                    return comi_err_set(e, COMI_ERR_FORMAT,
                                        "%s: line %lld: value %d '%s' is not a finite number",
                                        path, line, k + 1, num);
                if (k >= VEC_MAX_DIM)
                    return comi_err_set(e, COMI_ERR_FORMAT,
                                        "%s: line %lld: more than %d values", path, line,
                                        VEC_MAX_DIM);
                v[k++] = x;
                p += nl;
            }
            if (t->dim == 0) t->dim = k;
            if (k != t->dim)
                return comi_err_set(e, COMI_ERR_FORMAT,
                                    "%s: line %lld: %d values, expected %d like the first line",
                                    path, line, k, t->dim);
            comi_status st = add_word(e, t, s + pos, ws - pos, v);
            if (st != COMI_OK) return st;
            rows++;
        }
        pos = eol + 1;
        line++;
    }
    if (header_count >= 0 && rows != header_count)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: header says %lld words, file has %lld", path,
                            header_count, rows);
    return COMI_OK;
}

static comi_status load_binary(comi_err *e, const char *path, const uint8_t *s, size_t n,
                               size_t pos, long long count, vec_table *t) {
    size_t row_bytes = (size_t)t->dim * sizeof(float);
    float v[VEC_MAX_DIM];
    for (long long r = 0; r < count; r++) {
        while (pos < n && (s[pos] == '\n' || s[pos] == ' ')) pos++;
        size_t ws = pos;
        while (pos < n && s[pos] != ' ') pos++;
        if (pos >= n || pos == ws)
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: word %lld of %lld: truncated (file ends at byte %zu)", path,
                                r + 1, count, n);
        size_t we = pos++;
        if (n - pos < row_bytes)
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: word %lld of %lld: vector truncated (%zu bytes left, %zu "
                                "needed)",
                                path, r + 1, count, n - pos, row_bytes);
        memcpy(v, s + pos, row_bytes); /* little-endian hosts only (x86-64, arm64) */
        for (int32_t j = 0; j < t->dim; j++)
            if (!isfinite(v[j]))
                return comi_err_set(e, COMI_ERR_FORMAT,
                                    "%s: word %lld: value %d is not finite", path, r + 1, j + 1);
        pos += row_bytes;
        comi_status st = add_word(e, t, (const char *)s + ws, we - ws, v);
        if (st != COMI_OK) return st;
    }
    return COMI_OK;
}

comi_status vec_load(comi_err *e, const char *path, vec_table **out) {
    *out = NULL;
    if (!*path) return comi_err_set(e, COMI_ERR_INVALID_ARG, "vectors: empty file name");
    comi_mmap m;
    comi_status st = comi_mmap_open(e, path, &m);
    if (st != COMI_OK) return st;
    vec_table *t = calloc(1, sizeof *t);
    if (!t) {
        comi_mmap_close(&m);
        return comi_err_set(e, COMI_ERR_NOMEM, "vectors: out of memory");
    }
    text_dict_init(&t->dict);
    const char *s = (const char *)m.data;
    size_t n = m.size, eol = 0;
    while (eol < n && s[eol] != '\n') eol++;
    size_t hl = eol > 0 && s[eol - 1] == '\r' ? eol - 1 : eol;
    long long count = -1, dim = 0;
    if (parse_header(s, hl, &count, &dim)) {
        if (count <= 0 || dim <= 0 || dim > VEC_MAX_DIM) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: header '%lld %lld': count must be > 0 and dim in [1, %d]",
                              path, count, dim, VEC_MAX_DIM);
            goto done;
        }
        t->dim = (int32_t)dim;
        /* Text when the first record is a line "word v1 ... vdim" of numbers;
         * binary otherwise. */
        size_t p = eol + 1, q = p;
        while (q < n && s[q] != '\n') q++;
        bool binary = true;
        size_t ws = p;
        while (ws < q && s[ws] != ' ') ws++;
        if (ws < q) {
            long long k = 0;
            const char *c = s + ws;
            bool numeric = true;
            while (numeric && c < s + q) {
                while (c < s + q && (*c == ' ' || *c == '\t' || *c == '\r')) c++;
                if (c >= s + q) break;
                const char *b = c;
                while (c < s + q && *c != ' ' && *c != '\t' && *c != '\r') {
                    if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '+' ||
                          *c == 'e' || *c == 'E'))
                        numeric = false;
                    c++;
                }
                if (c > b) k++;
            }
            binary = !(numeric && k == dim);
        }
        if (binary) st = load_binary(e, path, m.data, n, eol + 1, count, t);
        else st = load_text(e, path, s, n, eol + 1, count, t);
    } else {
        for (size_t j = 0; j < n; j++)
            if (s[j] == '\0') {
                st = comi_err_set(e, COMI_ERR_FORMAT,
                                  "%s: not a GloVe/word2vec text file (NUL byte at %zu) and no "
                                  "'count dim' header for word2vec binary",
                                  path, j);
                goto done;
            }
        st = load_text(e, path, s, n, 0, -1, t);
    }
    if (st == COMI_OK && t->n == 0)
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: no word vectors found", path);
done:
    comi_mmap_close(&m);
    if (st != COMI_OK) {
        vec_free(t);
        return st;
    }
    *out = t;
    return COMI_OK;
}
