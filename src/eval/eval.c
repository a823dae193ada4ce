/*
 * eval.c — evaluation: answer metrics, COMI JSONL data sets and the
 * baseline compressors. The metrics mirror the SQuAD / LongBench reference
 * scripts that the COMI paper's numbers come from (DESIGN.md "Metrics"):
 * normalise = lower-case, drop ASCII punctuation, replace the words
 * a/an/the (as `\b(a|an|the)\b` matches them) by a space, collapse
 * whitespace; EM, token F1 (Counter intersection), accuracy and answer
 * recall (substring of the normalised text, as Python's `in`).
 */
#include "text/text.h"

#include "base/vec.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------ normalise */

static bool is_ascii_punct(uint8_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
}

/* Python's \w for str patterns: letters, numbers, underscore. */
static bool is_word_cp(utf8proc_int32_t cp) {
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
               cp == '_';
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

static comi_status normalize(comi_err *e, const char *what, const char *s, char **out) {
    *out = NULL;
    size_t n = strlen(s);
    /* Lower-casing can grow a code point by at most one byte in UTF-8
     * (e.g. U+023A -> U+2C65); 2n + 1 is a safe bound. */
    size_t cap;
    if (!comi_mul_size(n, 2, &cap) || !comi_add_size(cap, 2, &cap))
        return comi_err_set(e, COMI_ERR_LIMIT, "%s: too long", what);
    char *a = malloc(cap), *b = malloc(cap);
    if (!a || !b) {
        free(a);
        free(b);
        return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", what);
    }
    /* 1-2: lower-case, drop ASCII punctuation. */
    size_t k = 0;
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            uint8_t c = *p++;
            if (is_ascii_punct(c)) continue;
            a[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(p, end - p, &cp);
        if (l <= 0) {
            free(a);
            free(b);
            return comi_err_set(e, COMI_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu", what,
                                (size_t)(p - (const uint8_t *)s));
        }
        k += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)a + k);
        p += l;
    }
    a[k] = '\0';
    /* 3: whole word runs equal to a/an/the become a space. */
    size_t o = 0;
    p = (const uint8_t *)a;
    end = p + k;
    while (p < end) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(p, end - p, &cp);
        if (l <= 0) l = 1, cp = *p;
        if (!is_word_cp(cp)) {
            memcpy(b + o, p, (size_t)l);
            o += (size_t)l;
            p += l;
            continue;
        }
        const uint8_t *r = p;
        while (r < end) {
            utf8proc_ssize_t m = utf8proc_iterate(r, end - r, &cp);
            if (m <= 0 || !is_word_cp(cp)) break;
            r += m;
        }
        size_t rl = (size_t)(r - p);
        if ((rl == 1 && p[0] == 'a') || (rl == 2 && !memcmp(p, "an", 2)) ||
            (rl == 3 && !memcmp(p, "the", 3))) {
            b[o++] = ' ';
        } else {
            memcpy(b + o, p, rl);
            o += rl;
        }
        p = r;
    }
    /* 4: split on whitespace, join with one space. */
    k = 0;
    p = (const uint8_t *)b;
    end = p + o;
    bool pending = false;
    while (p < end) {
        size_t cl;
        if (lex_is_space(p, end, &cl)) {
            pending = k > 0;
            p += cl;
            continue;
        }
        if (pending) a[k++] = ' ';
        pending = false;
        a[k++] = (char)*p++;
    }
    a[k] = '\0';
    free(b);
    *out = a;
    return COMI_OK;
}

comi_status comi_normalize_answer(comi_ctx *ctx, const char *s, char **out) {
    comi_err_clear(&ctx->err);
    if (!s) return comi_err_set(&ctx->err, COMI_ERR_INVALID_ARG, "text: NULL");
    return normalize(&ctx->err, "text", s, out);
}

/* ----------------------------------------------------------------- F1 */

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits normalised s (single spaces) in place into tokens; returns count. */
static size_t tokens(char *s, char **tok) {
    size_t n = 0;
    char *p = s;
    while (*p) {
        tok[n++] = p;
        char *sp = strchr(p, ' ');
        if (!sp) break;
        *sp = '\0';
        p = sp + 1;
    }
    return n;
}

/* SQuAD F1 of two normalised strings (they are modified). */
static comi_status f1_norm(comi_err *e, char *pred, char *ref, double *out) {
    size_t np = strlen(pred) / 2 + 1, nr = strlen(ref) / 2 + 1;
    char **tp = malloc(np * sizeof *tp), **tr = malloc(nr * sizeof *tr);
    if (!tp || !tr) {
        free(tp);
        free(tr);
        return comi_err_set(e, COMI_ERR_NOMEM, "f1: out of memory");
    }
    np = tokens(pred, tp);
    nr = tokens(ref, tr);
    qsort(tp, np, sizeof *tp, cmp_cstr);
    qsort(tr, nr, sizeof *tr, cmp_cstr);
    size_t same = 0, i = 0, j = 0;
    while (i < np && j < nr) {
        int c = strcmp(tp[i], tr[j]);
        if (c < 0) i++;
        else if (c > 0) j++;
        else same++, i++, j++;
    }
    free(tp);
    free(tr);
    if (same == 0) {
        *out = 0;
        return COMI_OK;
    }
    double prec = (double)same / (double)np, rec = (double)same / (double)nr;
    *out = 2 * prec * rec / (prec + rec);
    return COMI_OK;
}

/* Normalizes refs[r] into *out (caller frees), naming it "references[r]" in
 * an error. */
static comi_status normalize_ref(comi_err *e, const char *const *refs, size_t r, char **out) {
    char what[48];
    snprintf(what, sizeof what, "references[%zu]", r);
    if (!refs[r]) return comi_err_set(e, COMI_ERR_INVALID_ARG, "%s: NULL", what);
    return normalize(e, what, refs[r], out);
}

comi_status comi_score_answer(comi_ctx *ctx, const char *prediction, const char *const *refs,
                              size_t n_refs, comi_answer_scores *out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    memset(out, 0, sizeof *out);
    if (!prediction) return comi_err_set(e, COMI_ERR_INVALID_ARG, "prediction: NULL");
    if (n_refs && !refs) return comi_err_set(e, COMI_ERR_INVALID_ARG, "references: NULL");
    char *np = NULL;
    comi_status st = normalize(e, "prediction", prediction, &np);
    if (st != COMI_OK) return st;
    for (size_t r = 0; r < n_refs && st == COMI_OK; r++) {
        char *nr = NULL;
        if ((st = normalize_ref(e, refs, r, &nr)) != COMI_OK) break;
        if (!strcmp(np, nr)) out->exact_match = 1;
        if (strstr(np, nr)) out->accuracy = 1;
        char *pc = strdup(np);
        if (!pc) {
            free(nr);
            st = comi_err_set(e, COMI_ERR_NOMEM, "f1: out of memory");
            break;
        }
        double f1 = 0;
        st = f1_norm(e, pc, nr, &f1);
        if (f1 > out->f1) out->f1 = f1;
        free(pc);
        free(nr);
    }
    free(np);
    if (st != COMI_OK) memset(out, 0, sizeof *out);
    return st;
}

comi_status comi_answer_recall(comi_ctx *ctx, const char *text, const char *const *refs,
                               size_t n_refs, double *out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    *out = 0;
    if (!text) return comi_err_set(e, COMI_ERR_INVALID_ARG, "text: NULL");
    if (n_refs && !refs) return comi_err_set(e, COMI_ERR_INVALID_ARG, "references: NULL");
    char *nt = NULL;
    comi_status st = normalize(e, "text", text, &nt);
    if (st != COMI_OK) return st;
    for (size_t r = 0; r < n_refs; r++) {
        char *nr = NULL;
        if ((st = normalize_ref(e, refs, r, &nr)) != COMI_OK) break;
        bool hit = strstr(nt, nr) != NULL;
        free(nr);
        if (hit) {
            *out = 1;
            break;
        }
    }
    free(nt);
    if (st != COMI_OK) *out = 0;
    return st;
}

/* ---------------------------------------------------- confidence intervals */

static uint64_t boot_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n) by linear interpolation (numpy's default). */
static double quantile(const double *v, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t i = (size_t)floor(pos);
    if (i + 1 >= n) return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

comi_status comi_bootstrap_interval(comi_ctx *ctx, const double *v, size_t n, int32_t resamples,
                                    uint64_t seed, double *lo, double *hi) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    *lo = *hi = 0;
    if (n && !v) return comi_err_set(e, COMI_ERR_INVALID_ARG, "values: NULL");
    if (resamples < 100 || resamples > 1000000)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "resamples: %d is not in [100, 1000000]",
                            (int)resamples);
    if (n == 0) return COMI_OK;
    double *means = malloc((size_t)resamples * sizeof *means);
    if (!means) return comi_err_set(e, COMI_ERR_NOMEM, "out of memory");
    uint64_t s = seed;
    for (int32_t b = 0; b < resamples; b++) {
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += v[boot_next(&s) % n];
        means[b] = sum / (double)n;
    }
    qsort(means, (size_t)resamples, sizeof *means, cmp_double);
    *lo = quantile(means, (size_t)resamples, 0.025);
    *hi = quantile(means, (size_t)resamples, 0.975);
    free(means);
    return COMI_OK;
}

/* -------------------------------------------------------------- JSONL */

static void example_free(comi_example *x) {
    free(x->id);
    free(x->input);
    free(x->prompt);
    for (size_t i = 0; i < x->n_answers; i++) free(x->answers[i]);
    free(x->answers);
    for (size_t i = 0; i < x->n_documents; i++) free(x->documents[i]);
    free(x->documents);
    memset(x, 0, sizeof *x);
}

void comi_dataset_free(comi_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n_examples; i++) example_free(&ds->examples[i]);
    free(ds->examples);
    free(ds);
}

/* A string field; "" and COMI_OK when absent and optional. */
static comi_status get_string(comi_err *e, const char *path, int64_t line, json_t *obj,
                              const char *key, bool required, char **out) {
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (!required) return COMI_OK;
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: missing field '%s'", path,
                            (long long)line, key);
    }
    if (!json_is_string(v))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: field '%s' is not a string", path,
                            (long long)line, key);
    *out = strdup(json_string_value(v));
    if (!*out) return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
    return COMI_OK;
}

/* A list of strings (or, when allow_string, one string) into *out. */
static comi_status get_strings(comi_err *e, const char *path, int64_t line, json_t *obj,
                               const char *key, bool required, bool allow_string, char ***out,
                               size_t *n) {
    *out = NULL;
    *n = 0;
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (!required) return COMI_OK;
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: missing field '%s'", path,
                            (long long)line, key);
    }
    size_t cnt = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !(allow_string && json_is_string(v)))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: field '%s' is not a %s", path,
                            (long long)line, key,
                            allow_string ? "string or list of strings" : "list of strings");
    char **arr = calloc(cnt ? cnt : 1, sizeof *arr);
    if (!arr) return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < cnt; i++) {
        json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(s)) {
            for (size_t j = 0; j < i; j++) free(arr[j]);
            free(arr);
            return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: %s[%zu] is not a string",
                                path, (long long)line, key, i);
        }
        arr[i] = strdup(json_string_value(s));
        if (!arr[i]) {
            for (size_t j = 0; j < i; j++) free(arr[j]);
            free(arr);
            return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    *out = arr;
    *n = cnt;
    return COMI_OK;
}

static comi_status parse_line(comi_err *e, const char *path, int64_t line, const char *s,
                              size_t len, comi_example *x) {
    memset(x, 0, sizeof *x);
    x->line = line;
    json_error_t je;
    json_t *obj = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!obj)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld, column %d: %s", path,
                            (long long)line, je.column, je.text);
    comi_status st = COMI_OK;
    if (!json_is_object(obj)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: not a JSON object", path,
                          (long long)line);
        goto done;
    }
    if ((st = get_string(e, path, line, obj, "input", true, &x->input)) != COMI_OK) goto done;
    if ((st = get_string(e, path, line, obj, "prompt", true, &x->prompt)) != COMI_OK) goto done;
    if ((st = get_strings(e, path, line, obj, "answer", true, true, &x->answers,
                          &x->n_answers)) != COMI_OK)
        goto done;
    if ((st = get_strings(e, path, line, obj, "documents", false, false, &x->documents,
                          &x->n_documents)) != COMI_OK)
        goto done;
    json_t *id = json_object_get(obj, "id");
    char buf[64];
    if (id && json_is_string(id)) {
        x->id = strdup(json_string_value(id));
    } else if (id && json_is_integer(id)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(id));
        x->id = strdup(buf);
    } else if (id && !json_is_null(id)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: line %lld: field 'id' is not a string or "
                          "integer", path, (long long)line);
        goto done;
    } else {
        snprintf(buf, sizeof buf, "line:%lld", (long long)line);
        x->id = strdup(buf);
    }
    if (!x->id) st = comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
done:
    json_decref(obj);
    if (st != COMI_OK) example_free(x);
    return st;
}

comi_status comi_dataset_load(comi_ctx *ctx, const char *path, bool skip_bad,
                              comi_dataset **out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    *out = NULL;
    char *data;
    size_t len;
    comi_status st = comi_read_file(e, path, &data, &len);
    if (st != COMI_OK) return st;
    comi_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        free(data);
        return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t cap = 0;
    int64_t line = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t eol = pos;
        while (eol < len && data[eol] != '\n') eol++;
        line++;
        size_t b = pos, en = eol;
        while (b < en && (data[b] == ' ' || data[b] == '\t' || data[b] == '\r')) b++;
        while (en > b && (data[en - 1] == ' ' || data[en - 1] == '\t' || data[en - 1] == '\r')) en--;
        pos = eol + 1;
        if (b == en) continue;
        if (!COMI_VEC_RESERVE(e, ds->examples, cap, ds->n_examples + 1, path)) {
            st = e->status;
            break;
        }
        comi_err le;
        comi_err_clear(&le);
        st = parse_line(&le, path, line, data + b, en - b, &ds->examples[ds->n_examples]);
        if (st == COMI_OK) {
            ds->n_examples++;
            continue;
        }
        if (!skip_bad || st == COMI_ERR_NOMEM) {
            *e = le;
            break;
        }
        if (ds->n_skipped++ == 0)
            memcpy(ds->first_error, le.msg, sizeof ds->first_error);
        st = COMI_OK;
    }
    free(data);
    if (st != COMI_OK) {
        comi_dataset_free(ds);
        return st;
    }
    *out = ds;
    return COMI_OK;
}

/* ---------------------------------------------------------- baselines */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct {
    uint32_t w0, w1;
    double score;
} bm_sent;

static int cmp_sent(const void *a, const void *b) {
    const bm_sent *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->w0 > y->w0) - (x->w0 < y->w0);
}

/* Okapi BM25 as rank_bm25's BM25Okapi computes it (k1 = 1.5, b = 0.75,
 * negative IDF floored at 0.25 x the mean IDF), sentences as documents,
 * tokens = lower-cased words without punctuation, no stemming. */
static comi_status bm25_select(comi_err *e, const text_words *w, const char *const *srcs,
                               text_dict *dict, const char *question, int64_t budget,
                               uint8_t *keep) {
    size_t nw = w->n;
    text_words q = {0};
    lex_opts lo = {.stem = false, .stopwords = false};
    comi_status st = lex_split(e, "question", question, strlen(question), 0, &lo, dict, &q);
    if (st != COMI_OK) return st;
    size_t nt = dict->n, ns = 0;
    bm_sent *s = comi_alloc_array(e, nw + 1, sizeof *s, "sentences");
    uint32_t *df = comi_calloc_array(e, nt + 1, sizeof *df, "df");
    uint32_t *tf = comi_calloc_array(e, nt + 1, sizeof *tf, "tf");
    uint32_t *last = comi_alloc_array(e, nt + 1, sizeof *last, "terms");
    double *idf = comi_alloc_array(e, nt + 1, sizeof *idf, "idf");
    if (!s || !df || !tf || !last || !idf) {
        st = e->status;
        goto out;
    }
    for (size_t i = 0; i < nw;) {
        size_t j = i;
        while (j < nw && !(w->w[j].flags & TW_SENT_END)) j++;
        if (j < nw) j++;
        s[ns].w0 = (uint32_t)i;
        s[ns].w1 = (uint32_t)j;
        s[ns].score = 0;
        ns++;
        i = j;
    }
    memset(last, 0xff, (nt + 1) * sizeof *last);
    double total_len = 0;
    for (size_t k = 0; k < ns; k++) {
        for (uint32_t i = s[k].w0; i < s[k].w1; i++) {
            uint32_t t = w->w[i].term;
            if (t == TEXT_NO_TERM) continue;
            total_len++;
            if (last[t] != k) {
                last[t] = (uint32_t)k;
                df[t]++;
            }
        }
    }
    double avgdl = ns ? total_len / (double)ns : 1, idf_sum = 0;
    size_t n_idf = 0;
    for (size_t t = 0; t < nt; t++) {
        if (!df[t]) {
            idf[t] = 0;
            continue;
        }
        idf[t] = log(((double)ns - df[t] + 0.5) / (df[t] + 0.5));
        idf_sum += idf[t];
        n_idf++;
    }
    double floor_idf = n_idf ? 0.25 * idf_sum / (double)n_idf : 0;
    for (size_t t = 0; t < nt; t++)
        if (df[t] && idf[t] < 0) idf[t] = floor_idf;
    const double k1 = 1.5, b = 0.75;
    for (size_t k = 0; k < ns; k++) {
        double dl = 0;
        for (uint32_t i = s[k].w0; i < s[k].w1; i++) {
            uint32_t t = w->w[i].term;
            if (t == TEXT_NO_TERM) continue;
            dl++;
            tf[t]++;
        }
        double score = 0;
        for (size_t j = 0; j < q.n; j++) {
            uint32_t t = q.w[j].term;
            if (t == TEXT_NO_TERM || t >= nt || !df[t]) continue;
            double f = tf[t];
            score += idf[t] * f * (k1 + 1) / (f + k1 * (1 - b + b * dl / (avgdl > 0 ? avgdl : 1)));
        }
        for (uint32_t i = s[k].w0; i < s[k].w1; i++)
            if (w->w[i].term != TEXT_NO_TERM) tf[w->w[i].term] = 0;
        s[k].score = score;
    }
    qsort(s, ns, sizeof *s, cmp_sent);
    int64_t left = budget;
    for (size_t k = 0; k < ns && left > 0; k++) {
        int64_t len = s[k].w1 - s[k].w0;
        if (len > left) continue; /* the top ones that fit */
        for (uint32_t i = s[k].w0; i < s[k].w1; i++) keep[i] = 1;
        left -= len;
    }
    (void)srcs;
out:
    text_words_free(&q);
    free(s);
    free(df);
    free(tf);
    free(last);
    free(idf);
    return st;
}

comi_status comi_compress_baseline(comi_ctx *ctx, comi_baseline method, const char *context,
                                   const char *question, int64_t budget, uint64_t seed,
                                   comi_text_result *out) {
    double t0 = comi_now_ms();
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    memset(out, 0, sizeof *out);
    if (!context) return comi_err_set(e, COMI_ERR_INVALID_ARG, "context: NULL");
    if (!question) return comi_err_set(e, COMI_ERR_INVALID_ARG, "question: NULL");
    if (budget < 0)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "budget: %lld is negative", (long long)budget);
    if (method != COMI_BASELINE_TRUNCATE && method != COMI_BASELINE_RANDOM &&
        method != COMI_BASELINE_BM25)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "baseline: unknown method %d", (int)method);
    text_dict dict;
    text_dict_init(&dict);
    text_words w = {0};
    lex_opts lo = {.stem = false, .stopwords = false};
    const char *srcs[1] = {context};
    uint8_t *keep = NULL;
    uint32_t *idx = NULL;
    comi_status st = lex_check_word_limit(ctx, "context", srcs, 1);
    if (st != COMI_OK) goto out;
    size_t len = strlen(context);
    if ((st = lex_split(e, "context", context, len, 0, &lo, &dict, &w)) != COMI_OK) goto out;
    size_t nw = w.n;
    /* working set: words, dictionary, kept flags and indices, BM25 sentences
     * and per-term tables, the output text */
    uint64_t bytes = comi_mul_sat(w.cap, sizeof(text_word));
    bytes = comi_add_sat(bytes, comi_add_sat(comi_mul_sat(dict.cap, 4), dict.chars_cap));
    bytes = comi_add_sat(bytes, comi_mul_sat(dict.n_alloc, 8 + 4 + 1));
    bytes = comi_add_sat(bytes, comi_mul_sat((uint64_t)nw + 1, 1 + 4 + sizeof(bm_sent)));
    bytes = comi_add_sat(bytes, comi_mul_sat((uint64_t)dict.n + 1, 4 + 4 + 4 + 8));
    bytes = comi_add_sat(bytes, comi_add_sat(len, nw + 1));
    char what[64];
    snprintf(what, sizeof what, "baseline on %zu words", nw);
    if ((st = comi_check_bytes(ctx, what, bytes, 0, NULL)) != COMI_OK) goto out;
    if (budget > (int64_t)nw) budget = (int64_t)nw;
    keep = comi_calloc_array(e, nw + 1, 1, "kept words");
    idx = comi_alloc_array(e, nw + 1, sizeof *idx, "kept words");
    if (!keep || !idx) {
        st = e->status;
        goto out;
    }
    if (method == COMI_BASELINE_TRUNCATE) {
        for (int64_t i = 0; i < budget; i++) keep[i] = 1;
    } else if (method == COMI_BASELINE_RANDOM) {
        /* Selection sampling (Knuth's algorithm S): each subset of size
         * budget equally likely, one pass, order kept. */
        uint64_t rs = seed;
        int64_t need = budget;
        for (size_t i = 0; i < nw && need > 0; i++) {
            double u = (double)(splitmix64(&rs) >> 11) * (1.0 / 9007199254740992.0);
            if ((double)(nw - i) * u < (double)need) {
                keep[i] = 1;
                need--;
            }
        }
    } else {
        lex_mark_boundaries(&w, 0, nw, srcs);
        st = bm25_select(e, &w, srcs, &dict, question, budget, keep);
        if (st != COMI_OK) goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < nw; i++)
        if (keep[i]) idx[n++] = (uint32_t)i;
    st = text_join(e, &w, srcs, idx, n, NULL, &out->text);
    if (st == COMI_OK) {
        out->original_tokens = (int64_t)nw;
        out->compressed_tokens = (int64_t)n;
        out->ratio = (double)nw / (double)(n ? n : 1);
        out->ms = comi_now_ms() - t0;
    }
out:
    free(keep);
    free(idx);
    text_words_free(&w);
    text_dict_free(&dict);
    return st;
}
