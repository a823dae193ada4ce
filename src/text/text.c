/*
 * text.c — text mode, stage 2: coarse-to-fine MIG selection of the words to
 * keep. Mirrors the two MIG stages of the merge (DESIGN.md "The merge,
 * exactly", src/comi/mig.c) at the level of text instead of hidden states:
 *
 *  coarse: the context is cut into groups (documents, paragraphs, lines or
 *    windows of sentences). Each group g gets MIG score
 *      alpha * rel_g - beta * red_g
 *    (rel = BM25 relevance to the question scaled to [0, 1], red = the
 *    largest cosine with another group), and the word budget B is shared
 *    as B * softmax(score / temperature) — relevant, non-redundant groups
 *    keep more words, like the paper's reallocation of group sizes.
 *  fine: inside a group, units (clauses of sentences, never shorter than
 *    min_unit_words so short answer phrases stay whole) are kept greedily
 *    by marginal gain: unit relevance (own BM25 plus context_weight times
 *    its sentence's and group's) minus beta times its largest cosine with
 *    what is already kept. The group's quota is filled exactly: when no
 *    whole unit fits, the best remaining unit is cut to the window of words
 *    around its question matches.
 *
 * Kept words are written in their original order. Relevance and
 * redundancy come from the encoder: lexical (BM25 / TF-IDF sparse vectors
 * over the context's own units) or static word vectors (IDF-weighted mean
 * vectors, mixed with the lexical relevance).
 */
#include "text/text.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

comi_text_params comi_text_default_params(void) {
    comi_text_params p = {
        .ratio = 4.0,
        .target_tokens = 0,
        .encoder = NULL,
        .keep_titles = false,
        .coarse = true,
        .redundancy = true,
        .alpha = 1.0f,
        .beta = 0.3f,
        .temperature = 0.15f,
        .context_weight = 0.5f,
        .min_unit_words = 6,
        .min_group_words = 6,
        .window_words = 120,
        .bridge_weight = 1.0f,
        .centrality_weight = 0.0f,
        .lead_weight = 2.0f,
        .summary = -1,
        .tokenizer = NULL,
        .unit = COMI_UNIT_WORD,
        .answer_first = false,
    };
    return p;
}

static const char *const unit_names[] = {"word", "clause", "sentence"};

const char *comi_text_unit_name(int32_t unit) {
    return unit >= 0 && unit <= COMI_UNIT_SENTENCE ? unit_names[unit] : NULL;
}

comi_status comi_text_set_unit(comi_ctx *ctx, comi_text_params *p, const char *name) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!name) return comi_err_set(e, COMI_ERR_INVALID_ARG, "unit: NULL name");
    for (int32_t u = 0; u <= COMI_UNIT_SENTENCE; u++)
        if (!strcmp(name, unit_names[u])) {
            p->unit = u;
            return COMI_OK;
        }
    if (!strcmp(name, "readable")) {
        p->unit = COMI_UNIT_SENTENCE;
        return COMI_OK;
    }
    return comi_err_set(e, COMI_ERR_INVALID_ARG,
                        "unit: '%.64s' is not sentence, clause, word (or readable)", name);
}

static const char *const param_names[] = {
    "alpha", "beta", "temperature", "context_weight", "min_unit_words", "min_group_words",
    "window_words", "bridge_weight", "lead_weight", "centrality_weight", "summary",
    "keep_titles", "coarse", "redundancy", "answer_first", "ratio", "target_tokens", NULL};

const char *const *comi_text_param_names(void) {
    return param_names;
}

comi_status comi_text_set_param(comi_ctx *ctx, comi_text_params *p, const char *name,
                                double v) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!name) return comi_err_set(e, COMI_ERR_INVALID_ARG, "knob: NULL name");
    if (!isfinite(v)) return comi_err_set(e, COMI_ERR_INVALID_ARG, "%s: %g is not finite", name, v);
#define F32(N, COND, WHAT)                                                                       \
    if (!strcmp(name, #N)) {                                                                    \
        if (!(COND) || fabs(v) > 1e30)                                                           \
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "%s: %g must be %s", name, v, WHAT);   \
        p->N = (float)v;                                                                         \
        return COMI_OK;                                                                          \
    }
#define I32(N, LO, HI)                                                                           \
    if (!strcmp(name, #N)) {                                                                    \
        if (v != floor(v) || v < (LO) || v > (HI))                                               \
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "%s: %g must be an integer in [%d, %d]", \
                                name, v, (int)(LO), (int)(HI));                                  \
        p->N = (int32_t)v;                                                                       \
        return COMI_OK;                                                                          \
    }
#define FLAG(N)                                                                                  \
    if (!strcmp(name, #N)) {                                                                    \
        if (v != 0 && v != 1)                                                                    \
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "%s: %g must be 0 or 1", name, v);     \
        p->N = v != 0;                                                                           \
        return COMI_OK;                                                                          \
    }
    F32(alpha, 1, "finite")
    F32(beta, 1, "finite")
    F32(temperature, v > 0, "> 0")
    F32(context_weight, 1, "finite")
    F32(bridge_weight, 1, "finite")
    F32(lead_weight, 1, "finite")
    F32(centrality_weight, 1, "finite")
    I32(min_unit_words, 1, 100000)
    I32(min_group_words, 0, 100000)
    I32(window_words, 1, 1000000)
    I32(summary, -1, 1)
    FLAG(keep_titles)
    FLAG(coarse)
    FLAG(redundancy)
    FLAG(answer_first)
#undef F32
#undef I32
#undef FLAG
    if (!strcmp(name, "ratio")) {
        if (v < 1) return comi_err_set(e, COMI_ERR_INVALID_ARG, "ratio: %g must be >= 1", v);
        p->ratio = v;
        p->target_tokens = 0;
        return COMI_OK;
    }
    if (!strcmp(name, "target_tokens")) {
        if (v != floor(v) || v < 1 || v > 9.2e18)
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "target_tokens: %g must be an integer >= 1",
                                v);
        p->target_tokens = (int64_t)v;
        return COMI_OK;
    }
    return comi_err_set(e, COMI_ERR_INVALID_ARG,
                        "unknown knob '%.64s' (alpha, beta, temperature, context_weight, "
                        "min_unit_words, min_group_words, window_words, bridge_weight, "
                        "lead_weight, centrality_weight, summary, keep_titles, coarse, "
                        "redundancy, answer_first, ratio, target_tokens)",
                        name);
}

/* ------------------------------------------------------------ encoders */

comi_status comi_encoder_load(comi_ctx *ctx, const char *spec, comi_encoder **out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    *out = NULL;
    if (!spec || !*spec) return comi_err_set(e, COMI_ERR_INVALID_ARG, "encoder: empty spec");
    comi_encoder *enc = calloc(1, sizeof *enc);
    if (!enc) return comi_err_set(e, COMI_ERR_NOMEM, "encoder: out of memory");
    if (!strcmp(spec, "lexical")) {
        enc->kind = ENC_LEXICAL;
    } else if (!strncmp(spec, "vectors:", 8)) {
        enc->kind = ENC_VECTORS;
        comi_status st = vec_load(e, spec + 8, &enc->vec);
        if (st != COMI_OK) {
            free(enc);
            return st;
        }
    } else {
        /* A transformer: its first layers (at most 8, the soft pipeline's
         * default encoder depth) give contextual unit vectors. */
        enc->kind = ENC_MODEL;
        comi_status st = comi_model_load(ctx, spec, NULL, &enc->model);
        if (st != COMI_OK) {
            char msg[sizeof e->msg];
            memcpy(msg, e->msg, sizeof msg);
            free(enc);
            return comi_err_set(e, st, "encoder '%s' (not 'lexical', 'vectors:FILE' or a "
                                "loadable model): %.400s", spec, msg);
        }
        if (!comi_model_tokenizer(enc->model)) {
            comi_model_free(enc->model);
            free(enc);
            return comi_err_set(e, COMI_ERR_UNSUPPORTED, "encoder '%s': the model has no tokenizer",
                                spec);
        }
        comi_model_info info;
        comi_model_get_info(enc->model, &info);
        enc->model_layers = info.n_layer < 8 ? info.n_layer : 8;
    }
    *out = enc;
    return COMI_OK;
}

void comi_encoder_free(comi_encoder *enc) {
    if (!enc) return;
    vec_free(enc->vec);
    comi_model_free(enc->model);
    free(enc);
}

/* Sort keys: a value and the index it belongs to (ties: lower index first,
 * so every order is deterministic). */
typedef struct {
    double key;
    uint32_t i;
} kv_t;

static int kv_desc(const void *a, const void *b) {
    const kv_t *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int kv_desc_late(const void *a, const void *b) {
    const kv_t *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->i > y->i ? -1 : x->i < y->i;
}

static int kv_asc(const void *a, const void *b) {
    const kv_t *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* ------------------------------------------------------- sparse vectors */

/* A sparse vector: entries [off, off + len) of the pool, sorted by term. */
typedef struct {
    uint32_t term;
    float w;
} sp_entry;

typedef struct {
    sp_entry *e;
    size_t n, cap;
} sp_pool;

static bool sp_push(comi_err *e, sp_pool *p, uint32_t term, float w) {
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 1024;
        sp_entry *ne = realloc(p->e, nc * sizeof *ne);
        if (!ne) {
            comi_err_set(e, COMI_ERR_NOMEM, "sparse vectors: out of memory");
            return false;
        }
        p->e = ne;
        p->cap = nc;
    }
    p->e[p->n++] = (sp_entry){term, w};
    return true;
}


/* ---------------------------------------------------------- work state */

typedef struct {
    uint32_t w0, w1;  /* words [w0, w1) */
    uint32_t group, sent;
    uint32_t n_terms; /* non-stop terms (BM25 length) */
    bool title;
    bool answer;      /* matches the question and holds a candidate answer */
    float rel;        /* BM25 of the unit */
    float score;      /* relevance used by the fine stage */
    float cent;       /* cosine with the context centroid */
    size_t v_off, v_len; /* redundancy vector in the pool */
    float *dense;     /* (dim,) unit-normalised, vectors encoder only */
} unit_t;

typedef struct {
    uint32_t w0, w1, u0, u1; /* words and units */
    uint32_t n_terms;
    float rel, red, score;
    double p;
    int64_t quota, size;
    size_t v_off, v_len;
} group_t;

typedef struct {
    comi_ctx *ctx;
    comi_err *e;
    const comi_text_params *prm; /* &params */
    comi_text_params params;     /* the caller's, adjusted in summary mode */
    bool summary;                /* summary mode (stage_parse) */
    int answer_type;             /* ANS_* the question asks for (stage_parse) */
    uint8_t *cand;               /* (n_words,) 1 if the word can be that answer */
    const comi_encoder *enc;
    const char *const *srcs;
    size_t n_srcs;
    text_dict dict;
    text_words words;   /* the context */
    text_words qwords;  /* the question */
    uint32_t *word_group; /* (n_words,) */
    unit_t *units;
    size_t n_units, cap_units;
    group_t *groups;
    size_t n_groups;
    sp_pool pool;
    uint32_t *df;       /* (n_terms,) units containing the term */
    float *idf;         /* (n_terms,) */
    uint8_t *in_q;      /* (n_terms,) 1 if a query term */
    uint32_t *qterms;   /* unique non-stop query terms */
    size_t n_qterms;
    float *qdense;      /* (dim,) question vector (vectors encoder) */
    uint32_t *tf;       /* (n_terms,) scratch counts, kept zeroed */
    uint32_t *touched;  /* scratch list of terms touched in tf */
    float *sent_rel;    /* (n_sents,) */
    int32_t dense_dim;  /* dimension of unit dense vectors (0: none) */
    float *acc;         /* (n_terms,) scatter buffer for sparse dots, kept zeroed */
    uint32_t n_sents;
    size_t n_bytes; /* bytes of the sources together */
    int64_t budget; /* words to keep */
    float max_g;    /* best group BM25 before bridges (stage_relevance) */
} work_t;

static void work_free(work_t *w) {
    text_dict_free(&w->dict);
    text_words_free(&w->words);
    text_words_free(&w->qwords);
    free(w->word_group);
    free(w->cand);
    if (w->units)
        for (size_t i = 0; i < w->n_units; i++) free(w->units[i].dense);
    free(w->units);
    free(w->groups);
    free(w->pool.e);
    free(w->df);
    free(w->idf);
    free(w->in_q);
    free(w->qterms);
    free(w->qdense);
    free(w->tf);
    free(w->touched);
    free(w->sent_rel);
    free(w->acc);
}

static bool push_unit(work_t *w, unit_t u) {
    if (w->n_units == w->cap_units) {
        size_t nc = w->cap_units ? w->cap_units * 2 : 256;
        unit_t *nu = realloc(w->units, nc * sizeof *nu);
        if (!nu) {
            comi_err_set(w->e, COMI_ERR_NOMEM, "units: out of memory");
            return false;
        }
        w->units = nu;
        w->cap_units = nc;
    }
    w->units[w->n_units++] = u;
    return true;
}

/* ------------------------------------------------------------ grouping */

/* Longest document, paragraph or line kept as one group (words): longer
 * ones are cut at the first sentence end after it, or at twice it. */
#define GROUP_MAX_WORDS 2048

/* Groups: one per document when docs_mode, else paragraphs (blank lines),
 * else long lines, else windows of whole sentences. Fills w->groups (units
 * not yet). */
static comi_status make_groups(work_t *w, bool docs_mode) {
    size_t n = w->words.n;
    const text_word *tw = w->words.w;
    size_t cap = 16, ng = 0;
    group_t *g = calloc(cap, sizeof *g);
    if (!g) return comi_err_set(w->e, COMI_ERR_NOMEM, "groups: out of memory");
    /* Breaks: a word that starts a new group. */
    int mode; /* 0 docs, 1 paragraphs, 2 lines, 3 windows */
    if (docs_mode) {
        mode = 0;
    } else {
        size_t paras = 1, lines = 1;
        for (size_t i = 1; i < n; i++) {
            if (tw[i].flags & TW_PARA_BEFORE) paras++;
            if (tw[i].flags & TW_LINE_BEFORE) lines++;
        }
        if (paras > 1) mode = 1;
        else if (lines > 1 && n / lines >= 15) mode = 2;
        else mode = 3;
    }
    size_t start = 0;
    int64_t win = w->prm->window_words > 0 ? w->prm->window_words : 120;
    for (size_t i = 1; i <= n; i++) {
        bool brk = i == n;
        if (!brk) {
            if (mode == 0) brk = tw[i].src != tw[i - 1].src;
            else if (mode == 1) brk = (tw[i].flags & TW_PARA_BEFORE) != 0;
            else if (mode == 2) brk = (tw[i].flags & TW_LINE_BEFORE) != 0;
            else brk = (int64_t)(i - start) >= win && (tw[i - 1].flags & TW_SENT_END);
            if (mode == 3 && !brk && (int64_t)(i - start) >= 4 * win) brk = true;
            /* A huge document, paragraph or line is cut into pieces of whole
             * sentences (the fine stage is quadratic in a group's units). */
            if (mode != 3 && !brk && (i - start) >= GROUP_MAX_WORDS &&
                ((tw[i - 1].flags & TW_SENT_END) || (i - start) >= 2 * GROUP_MAX_WORDS))
                brk = true;
        }
        if (!brk) continue;
        if (ng == cap) {
            cap *= 2;
            group_t *ngp = realloc(g, cap * sizeof *ngp);
            if (!ngp) {
                free(g);
                return comi_err_set(w->e, COMI_ERR_NOMEM, "groups: out of memory");
            }
            g = ngp;
        }
        memset(&g[ng], 0, sizeof g[ng]);
        g[ng].w0 = (uint32_t)start;
        g[ng].w1 = (uint32_t)i;
        g[ng].size = (int64_t)(i - start);
        ng++;
        start = i;
    }
    w->groups = g;
    w->n_groups = ng;
    w->word_group = comi_alloc_array(w->e, n ? n : 1, sizeof *w->word_group, "word groups");
    if (!w->word_group) return w->e->status;
    for (size_t k = 0; k < ng; k++)
        for (uint32_t i = g[k].w0; i < g[k].w1; i++) w->word_group[i] = (uint32_t)k;
    return COMI_OK;
}

/* Units of group k: an optional title (a short first line), then clauses of
 * sentences, clauses shorter than min_unit_words merged forward (the last
 * one backward) so a short answer phrase is never split off its clause;
 * with unit sentence, whole sentences. */
static bool make_units(work_t *w, size_t k) {
    group_t *g = &w->groups[k];
    const text_word *tw = w->words.w;
    int64_t min_unit = w->prm->min_unit_words > 0 ? w->prm->min_unit_words : 1;
    g->u0 = (uint32_t)w->n_units;
    uint32_t i = g->w0;
    /* Title: the group's first line when short and followed by more lines. */
    for (uint32_t j = g->w0 + 1; j < g->w1 && j - g->w0 <= 16; j++) {
        if (tw[j].flags & TW_LINE_BEFORE) {
            unit_t u = {.w0 = g->w0, .w1 = j, .group = (uint32_t)k, .sent = w->n_sents++,
                        .title = true};
            if (!push_unit(w, u)) return false;
            i = j;
            break;
        }
    }
    while (i < g->w1) {
        /* One sentence [i, s1). */
        uint32_t s1 = i;
        while (s1 < g->w1 && !(tw[s1].flags & TW_SENT_END)) s1++;
        if (s1 < g->w1) s1++;
        uint32_t sent = w->n_sents++;
        uint32_t c0 = i;
        size_t first_unit = w->n_units;
        if (w->prm->unit == COMI_UNIT_SENTENCE) { /* the whole sentence is the unit */
            unit_t u = {.w0 = i, .w1 = s1, .group = (uint32_t)k, .sent = sent};
            if (!push_unit(w, u)) return false;
            c0 = s1;
        }
        while (c0 < s1) {
            uint32_t c1 = c0;
            while (c1 < s1) {
                bool end = (tw[c1].flags & TW_CLAUSE_END) != 0;
                c1++;
                if (end && (int64_t)(c1 - c0) >= min_unit) break;
            }
            if (w->n_units > first_unit && (int64_t)(c1 - c0) < min_unit) {
                w->units[w->n_units - 1].w1 = c1; /* short tail: merge backward */
            } else {
                unit_t u = {.w0 = c0, .w1 = c1, .group = (uint32_t)k, .sent = sent};
                if (!push_unit(w, u)) return false;
            }
            c0 = c1;
        }
        i = s1;
    }
    g->u1 = (uint32_t)w->n_units;
    return true;
}

/* ----------------------------------------------------------- relevance */

#define BM25_K1 1.2f
#define BM25_B 0.75f

/* BM25 of the words [w0, w1) against the query terms; counts the terms in
 * w->tf (left zeroed on return). *n_terms gets the non-stop term count. */
static float bm25_span(work_t *w, uint32_t w0, uint32_t w1, float avglen, uint32_t *n_terms) {
    const text_word *tw = w->words.w;
    size_t nt = 0, len = 0;
    for (uint32_t i = w0; i < w1; i++) {
        if (tw[i].flags & TW_STOP) continue;
        uint32_t t = tw[i].term;
        len++;
        if (!w->in_q[t]) continue;
        if (w->tf[t]++ == 0) w->touched[nt++] = t;
    }
    float s = 0;
    float norm = BM25_K1 * (1 - BM25_B + BM25_B * (float)len / (avglen > 0 ? avglen : 1));
    for (size_t j = 0; j < nt; j++) {
        uint32_t t = w->touched[j];
        float f = (float)w->tf[t];
        s += w->idf[t] * f * (BM25_K1 + 1) / (f + norm);
        w->tf[t] = 0;
    }
    if (n_terms) *n_terms = (uint32_t)len;
    return s;
}

/* TF-IDF vector of words [w0, w1) (non-stop, non-query terms), unit
 * length, appended to the pool (entries in first-occurrence order; dot
 * products scatter one vector into w->acc). */
static bool tfidf_span(work_t *w, uint32_t w0, uint32_t w1, size_t *off, size_t *len) {
    const text_word *tw = w->words.w;
    size_t nt = 0;
    for (uint32_t i = w0; i < w1; i++) {
        if (tw[i].flags & TW_STOP) continue;
        uint32_t t = tw[i].term;
        if (w->in_q[t]) continue; /* shared question terms are not redundancy */
        if (w->tf[t]++ == 0) w->touched[nt++] = t;
    }
    *off = w->pool.n;
    double ss = 0;
    for (size_t j = 0; j < nt; j++) {
        uint32_t t = w->touched[j];
        float x = (1.0f + logf((float)w->tf[t])) * w->idf[t];
        w->tf[t] = 0;
        ss += (double)x * x;
        if (!sp_push(w->e, &w->pool, t, x)) return false;
    }
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0;
    for (size_t j = *off; j < w->pool.n; j++) w->pool.e[j].w *= inv;
    *len = w->pool.n - *off;
    return true;
}

/* Dense vector of words [w0, w1): IDF-weighted mean of the word vectors,
 * unit length; NULL entries when nothing is known. */
static bool dense_span(work_t *w, const text_words *ws, uint32_t w0, uint32_t w1, float **out) {
    int32_t d = vec_dim(w->enc->vec);
    float *v = calloc((size_t)d, sizeof *v);
    if (!v) {
        comi_err_set(w->e, COMI_ERR_NOMEM, "dense vectors: out of memory");
        return false;
    }
    for (uint32_t i = w0; i < w1; i++) {
        const text_word *x = &ws->w[i];
        if (x->flags & TW_STOP) continue;
        uint32_t t = x->term;
        const float *wv = vec_lookup(w->enc->vec, w->dict.chars + w->dict.offs[t],
                                     w->dict.offs[t + 1] - w->dict.offs[t]);
        if (!wv) continue;
        float wt = t < w->dict.n && w->idf ? w->idf[t] : 1.0f;
        for (int32_t j = 0; j < d; j++) v[j] += wt * wv[j];
    }
    double ss = 0;
    for (int32_t j = 0; j < d; j++) ss += (double)v[j] * v[j];
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0;
    for (int32_t j = 0; j < d; j++) v[j] *= inv;
    *out = v;
    return true;
}

static void normalize_vec(float *v, int32_t d) {
    double ss = 0;
    for (int32_t j = 0; j < d; j++) ss += (double)v[j] * v[j];
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0;
    for (int32_t j = 0; j < d; j++) v[j] *= inv;
}

/* Unit and question vectors from the transformer encoder. */
static comi_status model_vectors(work_t *w, const char *question) {
    int32_t d = w->dense_dim;
    size_t nu = w->n_units;
    char **texts = calloc(nu ? nu : 1, sizeof *texts);
    float *uv = NULL;
    w->qdense = calloc((size_t)d, sizeof *w->qdense);
    comi_status st = COMI_OK;
    size_t bytes;
    if (!texts || !w->qdense || !comi_mul3_size(nu ? nu : 1, (size_t)d, sizeof(float), &bytes) ||
        !(uv = malloc(bytes))) {
        st = comi_err_set(w->e, COMI_ERR_NOMEM, "model encoder: out of memory");
        goto out;
    }
    for (size_t u = 0; u < nu && st == COMI_OK; u++) {
        size_t len = 1;
        for (uint32_t i = w->units[u].w0; i < w->units[u].w1; i++)
            len += w->words.w[i].end - w->words.w[i].start + 1;
        texts[u] = malloc(len);
        if (!texts[u]) {
            st = comi_err_set(w->e, COMI_ERR_NOMEM, "model encoder: out of memory");
            break;
        }
        size_t k = 0;
        for (uint32_t i = w->units[u].w0; i < w->units[u].w1; i++) {
            const text_word *x = &w->words.w[i];
            if (k) texts[u][k++] = ' ';
            memcpy(texts[u] + k, w->srcs[x->src] + x->start, x->end - x->start);
            k += x->end - x->start;
        }
        texts[u][k] = '\0';
    }
    if (st == COMI_OK)
        st = tm_encode(w->ctx, w->enc, (const char *const *)texts, nu, question, uv, w->qdense);
    if (st == COMI_OK) {
        normalize_vec(w->qdense, d);
        for (size_t u = 0; u < nu && st == COMI_OK; u++) {
            w->units[u].dense = malloc((size_t)d * sizeof(float));
            if (!w->units[u].dense) {
                st = comi_err_set(w->e, COMI_ERR_NOMEM, "model encoder: out of memory");
                break;
            }
            memcpy(w->units[u].dense, uv + u * (size_t)d, (size_t)d * sizeof(float));
            normalize_vec(w->units[u].dense, d);
        }
    }
out:
    if (texts)
        for (size_t u = 0; u < nu; u++) free(texts[u]);
    free(texts);
    free(uv);
    return st;
}

static float dense_dot(const float *a, const float *b, int32_t d) {
    float s = 0;
    for (int32_t j = 0; j < d; j++) s += a[j] * b[j];
    return s;
}

/* Sparse dot products: scatter one vector into acc, gather others against
 * it, clear it again (O(entries), no sorting). */
static void sp_scatter(work_t *w, size_t off, size_t len, bool set) {
    for (size_t j = off; j < off + len; j++) w->acc[w->pool.e[j].term] = set ? w->pool.e[j].w : 0;
}

static float sp_gather(const work_t *w, size_t off, size_t len) {
    float s = 0;
    for (size_t j = off; j < off + len; j++) s += w->acc[w->pool.e[j].term] * w->pool.e[j].w;
    return s;
}

/* Redundancy of unit a against units list[0..n): the largest cosine. */
static float unit_red(work_t *w, const unit_t *a, const uint32_t *list, size_t n);

static int32_t enc_dim(const comi_encoder *enc) {
    return enc->kind == ENC_MODEL ? tm_dim(enc) : vec_dim(enc->vec);
}

static float unit_red(work_t *w, const unit_t *a, const uint32_t *list, size_t n) {
    float r = 0;
    if (a->dense) {
        for (size_t j = 0; j < n; j++) {
            float c = dense_dot(a->dense, w->units[list[j]].dense, w->dense_dim);
            if (c > r) r = c;
        }
        return r;
    }
    sp_scatter(w, a->v_off, a->v_len, true);
    for (size_t j = 0; j < n; j++) {
        const unit_t *b = &w->units[list[j]];
        float c = sp_gather(w, b->v_off, b->v_len);
        if (c > r) r = c;
    }
    sp_scatter(w, a->v_off, a->v_len, false);
    return r;
}

/* Groups whose bodies are searched for other groups' titles: the most
 * relevant ones. */
#define BRIDGE_MAX_SOURCES 64

/* Raises the relevance of groups whose title terms all occur in the body
 * of a relevant group: rel_h += bridge_weight * max_g rel_g (relative).
 * Body terms of each group are stamped in w->tf (restored to zero). */
static bool bridge_scores(work_t *w, float max_g) {
    size_t ng = w->n_groups;
    float *add = calloc(ng ? ng : 1, sizeof *add);
    uint32_t *tt = malloc((ng ? ng : 1) * 17 * sizeof *tt); /* (ng, 17) title terms */
    uint8_t *ntt = calloc(ng ? ng : 1, 1);
    if (!add || !tt || !ntt) {
        free(add);
        free(tt);
        free(ntt);
        comi_err_set(w->e, COMI_ERR_NOMEM, "bridges: out of memory");
        return false;
    }
    size_t n_titled = 0;
    for (size_t h = 0; h < ng; h++) {
        const group_t *g = &w->groups[h];
        if (!(g->u1 > g->u0 && w->units[g->u0].title)) continue;
        const unit_t *t = &w->units[g->u0];
        if (t->w1 - t->w0 > 16) continue;
        for (uint32_t i = t->w0; i < t->w1; i++) {
            if (w->words.w[i].flags & TW_STOP) continue;
            uint32_t term = w->words.w[i].term;
            bool dup = false;
            for (size_t j = 0; j < ntt[h]; j++) dup |= tt[h * 17 + j] == term;
            if (!dup) tt[h * 17 + ntt[h]++] = term;
        }
        n_titled += ntt[h] > 0;
    }
    /* Sources: the BRIDGE_MAX_SOURCES most relevant groups (linear work). */
    size_t n_src = 0;
    kv_t *src = n_titled ? comi_alloc_array(w->e, ng, sizeof *src, "bridges") : NULL;
    uint32_t *tgroups =
        n_titled ? comi_alloc_array(w->e, n_titled, sizeof *tgroups, "bridges") : NULL;
    if (n_titled && (!src || !tgroups)) {
        free(src);
        free(tgroups);
        free(add);
        free(tt);
        free(ntt);
        return false;
    }
    for (size_t k = 0, j = 0; n_titled && k < ng; k++) {
        if (w->groups[k].rel > 0) src[n_src++] = (kv_t){w->groups[k].rel, (uint32_t)k};
        if (ntt[k]) tgroups[j++] = (uint32_t)k;
    }
    if (n_src > BRIDGE_MAX_SOURCES) {
        qsort(src, n_src, sizeof *src, kv_desc);
        n_src = BRIDGE_MAX_SOURCES;
    }
    for (size_t si = 0; si < n_src; si++) {
        size_t k = src[si].i;
        const group_t *g = &w->groups[k];
        bool titled = g->u1 > g->u0 && w->units[g->u0].title;
        uint32_t b0 = titled ? w->units[g->u0].w1 : g->w0;
        for (uint32_t i = b0; i < g->w1; i++)
            if (!(w->words.w[i].flags & TW_STOP)) w->tf[w->words.w[i].term] = 1;
        float r = g->rel / max_g;
        for (size_t ti = 0; ti < n_titled; ti++) {
            size_t h = tgroups[ti];
            if (h == k || r <= add[h]) continue;
            size_t hit = 0;
            for (size_t j = 0; j < ntt[h]; j++) hit += w->tf[tt[h * 17 + j]];
            if (hit == ntt[h]) add[h] = r;
        }
        for (uint32_t i = b0; i < g->w1; i++)
            if (!(w->words.w[i].flags & TW_STOP)) w->tf[w->words.w[i].term] = 0;
    }
    for (size_t h = 0; h < ng; h++) w->groups[h].rel += w->prm->bridge_weight * add[h] * max_g;
    free(src);
    free(tgroups);
    free(add);
    free(tt);
    free(ntt);
    return true;
}

/* ------------------------------------------------------------- coarse */

/* Continuous water-filling over the K groups of best share (byp[0..K)):
 * each gets B * p / psum of what is left, a group whose share reaches its
 * size is capped at its size and the rest shared again. Groups are visited
 * by size / p ascending (bycap), the order in which they reach their caps,
 * so one pass finds the fixpoint. frac[g] gets the share of each kept group;
 * returns the share per unit of p of the groups left uncapped. */
static double waterfill(group_t *g, const kv_t *byp, const kv_t *bycap, const uint32_t *rank,
                        size_t n, size_t K, double B, uint8_t *capped, double *frac) {
    double psum = 0, left = B;
    for (size_t r = 0; r < K; r++) psum += g[byp[r].i].p;
    for (size_t r = 0; r < K; r++) capped[byp[r].i] = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t k = bycap[j].i;
        if (rank[k] >= K) continue;
        if (!(psum > 0) || left * g[k].p / psum < (double)g[k].size) break;
        capped[k] = 1;
        left -= (double)g[k].size;
        psum -= g[k].p;
    }
    double t = psum > 0 && left > 0 ? left / psum : 0;
    for (size_t r = 0; r < K; r++) {
        uint32_t k = byp[r].i;
        frac[k] = capped[k] ? (double)g[k].size : t * g[k].p;
    }
    return t;
}

/* Integer quotas of the best K groups from their shares (frac): floors,
 * then one more word for the largest remainders (lower index first on
 * ties). rem is scratch (K entries). */
static void round_quotas(group_t *g, const kv_t *byp, size_t K, int64_t B, const double *frac,
                         kv_t *rem) {
    int64_t total = 0;
    size_t n_rem = 0;
    for (size_t r = 0; r < K; r++) {
        uint32_t k = byp[r].i;
        g[k].quota = (int64_t)floor(frac[k]);
        if (g[k].quota > g[k].size) g[k].quota = g[k].size;
        total += g[k].quota;
        if (g[k].quota < g[k].size) rem[n_rem++] = (kv_t){frac[k] - (double)g[k].quota, k};
    }
    qsort(rem, n_rem, sizeof *rem, kv_desc);
    for (size_t j = 0; j < n_rem && total < B; j++, total++) g[rem[j].i].quota++;
}

/* Whether keeping the best K groups leaves none with a quota below
 * min_words that is not its whole size. */
static bool alloc_ok(group_t *g, const kv_t *byp, const kv_t *bycap, const uint32_t *rank,
                     size_t n, size_t K, int64_t B, int64_t min_words, uint8_t *capped,
                     double *frac, kv_t *rem) {
    waterfill(g, byp, bycap, rank, n, K, (double)B, capped, frac);
    round_quotas(g, byp, K, B, frac, rem);
    for (size_t r = 0; r < K; r++) {
        const group_t *x = &g[byp[r].i];
        if (x->quota < min_words && x->quota < x->size) return false;
    }
    return true;
}

/* Shares budget B over groups in proportion to p, capped at each group's
 * size; the groups of smallest share are dropped while the smallest
 * uncapped share is below min_words (their share goes to the others) and
 * the rest can still hold B; integer quotas by largest remainder (lower
 * index first on ties). O(ng log ng): the number of groups kept is found by
 * bisection (a share only shrinks as groups are added). */
static comi_status allocate(work_t *w, int64_t min_words) {
    group_t *g = w->groups;
    size_t ng = w->n_groups;
    int64_t B = w->budget;
    kv_t *byp = comi_alloc_array(w->e, ng + 1, sizeof *byp, "coarse stage");
    kv_t *bycap = comi_alloc_array(w->e, ng + 1, sizeof *bycap, "coarse stage");
    uint32_t *rank = comi_alloc_array(w->e, ng + 1, sizeof *rank, "coarse stage");
    uint8_t *capped = comi_calloc_array(w->e, ng + 1, 1, "coarse stage");
    double *frac = comi_calloc_array(w->e, ng + 1, sizeof *frac, "coarse stage");
    kv_t *rem = comi_alloc_array(w->e, ng + 1, sizeof *rem, "coarse stage");
    if (!byp || !bycap || !rank || !capped || !frac || !rem) {
        free(rem);
        free(byp);
        free(bycap);
        free(rank);
        free(capped);
        free(frac);
        return w->e->status;
    }
    size_t n = 0; /* groups with words */
    for (size_t k = 0; k < ng; k++) {
        g[k].quota = 0;
        rank[k] = UINT32_MAX;
        if (g[k].size == 0) continue;
        byp[n] = (kv_t){g[k].p, (uint32_t)k};
        bycap[n] = (kv_t){g[k].p > 0 ? (double)g[k].size / g[k].p : DBL_MAX, (uint32_t)k};
        n++;
    }
    qsort(byp, n, sizeof *byp, kv_desc_late); /* on ties the earlier group is dropped first */
    qsort(bycap, n, sizeof *bycap, kv_asc);
    for (size_t r = 0; r < n; r++) rank[byp[r].i] = (uint32_t)r;
    /* Kmin: fewest best groups that can hold the budget. */
    size_t kmin = 0;
    int64_t room = 0;
    while (kmin < n && room < B) room += g[byp[kmin++].i].size;
    size_t K = n;
    if (min_words > 0 && n > 0) {
        size_t lo = kmin, hi = n;
        if (!alloc_ok(g, byp, bycap, rank, n, lo, B, min_words, capped, frac, rem)) {
            K = lo;
        } else {
            while (lo < hi) { /* largest ok K in [lo, hi] */
                size_t mid = lo + (hi - lo + 1) / 2;
                if (alloc_ok(g, byp, bycap, rank, n, mid, B, min_words, capped, frac, rem)) lo = mid;
                else hi = mid - 1;
            }
            K = lo;
        }
    }
    for (size_t r = 0; r < n; r++) g[byp[r].i].quota = 0;
    waterfill(g, byp, bycap, rank, n, K, (double)B, capped, frac);
    round_quotas(g, byp, K, B, frac, rem);
    free(rem);
    free(byp);
    free(bycap);
    free(rank);
    free(capped);
    free(frac);
    return COMI_OK;
}

/* --------------------------------------------------------------- fine */

/* Score of word i inside a cut window: the IDF of a question word, a
 * little for any other content word. */
static double word_score(const work_t *w, uint32_t i) {
    const text_word *x = &w->words.w[i];
    if (x->term == TEXT_NO_TERM || (x->flags & TW_STOP)) return 0;
    return w->in_q[x->term] ? w->idf[x->term] : 0.01;
}

/* Keeps the best window of n words of unit u (its question matches, the
 * candidate answers, then content words); marks them in keep. */
static void keep_window(work_t *w, const unit_t *u, int64_t n, uint8_t *keep) {
    const text_word *tw = w->words.w;
    int64_t len = u->w1 - u->w0;
    if (n >= len) {
        for (uint32_t i = u->w0; i < u->w1; i++) keep[i] = 1;
        return;
    }
    double best = -1, cur = 0;
    int64_t best_at = 0, n_cand = 0, n_match = 0;
    /* a window holding a question word and a candidate answer gains one and
     * a half times the unit's best question match: under a tight budget the
     * date of a "when" question beats one more question word */
    double cand_w = 0;
    for (uint32_t i = u->w0; i < u->w1; i++)
        if (!(tw[i].flags & TW_STOP) && w->in_q[tw[i].term] && w->idf[tw[i].term] > cand_w)
            cand_w = w->idf[tw[i].term];
    cand_w *= 1.5;
    for (int64_t i = 0; i < len; i++) {
        double s = word_score(w, u->w0 + (uint32_t)i);
        cur += s;
        n_match += s >= 0.1;
        n_cand += w->cand[u->w0 + i];
        if (i >= n) {
            double o = word_score(w, u->w0 + (uint32_t)(i - n));
            cur -= o;
            n_match -= o >= 0.1;
            n_cand -= w->cand[u->w0 + i - n];
        }
        double v = cur + (n_cand > 0 && n_match > 0 ? cand_w : 0);
        if (i >= n - 1 && v > best + 1e-9) {
            best = v;
            best_at = i - n + 1;
        }
    }
    for (int64_t i = 0; i < n; i++) keep[u->w0 + best_at + i] = 1;
}

/* The working set of one compression, checked against the context's byte
 * limit once words, terms and units are known and before the vectors, the
 * term tables and the selection buffers are allocated: words (both lists),
 * term dictionary, units, groups, the per-term, per-word and per-unit
 * tables, sparse vectors (at most one entry per word for units and again
 * for groups, doubled for growth), dense unit vectors (the model encoder
 * also holds its own copies and tm_work_bytes), the output text. */
static comi_status check_memory(work_t *w) {
    uint64_t nw = w->words.n, nq = w->qwords.n, nt = w->dict.n, nu = w->n_units;
    uint64_t b = comi_mul_sat(comi_add_sat(w->words.cap, w->qwords.cap), sizeof(text_word));
    b = comi_add_sat(b, comi_mul_sat(w->dict.cap, sizeof(uint32_t)));
    b = comi_add_sat(b, comi_add_sat(comi_mul_sat(w->dict.n_alloc, 8 + 4 + 1), w->dict.chars_cap));
    b = comi_add_sat(b, comi_mul_sat(w->cap_units, sizeof(unit_t)));
    b = comi_add_sat(b, comi_mul_sat(w->n_groups, sizeof(group_t) + 4));
    /* df, idf, in_q, tf, acc per term; word_group, touched, keep, idx per word;
     * sent_rel, ukept, ured, kept_list per unit (a unit is at least one sentence) */
    b = comi_add_sat(b, comi_mul_sat(nt + 1, 4 + 4 + 1 + 4 + 4));
    b = comi_add_sat(b, comi_mul_sat(nw + nq + 1, 4 + 4 + 1 + 4));
    b = comi_add_sat(b, comi_mul_sat(comi_add_sat(nu, w->n_sents) + 1, 4 + 1 + 4 + 4));
    b = comi_add_sat(b, comi_mul_sat(comi_mul_sat(nw + 1, 4), sizeof(sp_entry)));
    if (w->enc && w->enc->kind != ENC_LEXICAL) {
        uint64_t vec = comi_mul_sat(nu + 1, (uint64_t)enc_dim(w->enc) * sizeof(float));
        b = comi_add_sat(b, vec);
        if (w->enc->kind == ENC_MODEL) {
            /* uv, the unit texts (a copy of the words) and the encoder's work */
            b = comi_add_sat(b, comi_add_sat(vec, comi_add_sat(w->n_bytes, comi_mul_sat(nu, 8))));
            b = comi_add_sat(b, tm_work_bytes(w->enc, w->ctx->kv_type, nu, w->n_bytes));
        }
    }
    b = comi_add_sat(b, comi_add_sat(w->n_bytes, nw + 1));
    char what[96];
    snprintf(what, sizeof what, "text compression of %llu words (%llu units)",
             (unsigned long long)nw, (unsigned long long)nu);
    return comi_check_bytes(w->ctx, what, b, 0, NULL);
}

/* ------------------------------------------------------------- stages */

/* Summary mode's unit weights: centrality (cosine with the context's
 * centroid) and the smallest redundancy weight. */
#define SUMMARY_CENTRALITY 2.0f

/* Words of instructions that ask for a summary without naming content
 * (normalised, unstemmed): the question names no content when it holds
 * one of the first list and otherwise only these and stopwords. */
static const char *const summary_words[] = {
    "summary", "summaries", "summarize", "summarise", "summarized", "summarised",
    "summarization", "summarisation", "summarizing", "summarising", "overview", "tldr",
    "recap", "digest", "abstract", "highlights", "gist", "synopsis"};
static const char *const instruction_words[] = {
    "write", "writing", "give", "provide", "produce", "generate", "create", "compose", "make",
    "please", "briefly", "brief", "short", "concise", "concisely", "one", "page", "onepage",
    "paragraph", "paragraphs", "sentence", "sentences", "words", "word", "main", "key",
    "points", "point", "news", "passage", "passages", "article", "articles", "document",
    "documents", "text", "texts", "story", "stories", "report", "reports", "given", "several",
    "following", "above", "below", "all", "whole", "entire", "context", "content", "read",
    "describe", "topic", "topics", "in", "less", "than", "under", "within", "few", "some",
    "multiple", "various", "these", "this", "those", "the", "its", "their", "you", "are",
    "is", "be"};

static bool in_list(const char *const *list, size_t n, const char *s, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && !memcmp(list[i], s, len)) return true;
    return false;
}

/* Whether the question asks for a summary and names no content. */
static bool names_no_content(const work_t *w, const char *question) {
    bool asks = false;
    char buf[256];
    for (size_t i = 0; i < w->qwords.n; i++) {
        const text_word *x = &w->qwords.w[i];
        size_t len = x->end - x->start;
        if (len * 4 + 4 > sizeof buf) return false;
        size_t n = lex_normalize_word(question + x->start, len, false, buf);
        if (n == 0) continue;
        if (in_list(summary_words, sizeof summary_words / sizeof *summary_words, buf, n))
            asks = true;
        else if (!(x->flags & TW_STOP) &&
                 !in_list(instruction_words, sizeof instruction_words / sizeof *instruction_words,
                          buf, n))
            return false;
    }
    return asks;
}

/* What a question asks for: a number or date ("when", "how many", "what
 * year"), a name ("who", "where", "which"), or nothing in particular. */
enum { ANS_NONE = 0, ANS_NUMBER = 1, ANS_NAME = 2 };

/* Weight of a unit holding a candidate answer (a number or date for "when"
 * questions, a name for "who" questions) next to its question relevance. */
#define ANSWER_WEIGHT 1.0f

static int answer_type(const work_t *w, const char *question) {
    char buf[64], prev[64] = "";
    for (size_t i = 0; i < w->qwords.n && i < 8; i++) {
        const text_word *x = &w->qwords.w[i];
        size_t len = x->end - x->start;
        if (len * 4 + 4 > sizeof buf) continue;
        size_t n = lex_normalize_word(question + x->start, len, false, buf);
        buf[n] = '\0';
        if (!strcmp(buf, "when")) return ANS_NUMBER;
        if (!strcmp(prev, "how") && (!strcmp(buf, "many") || !strcmp(buf, "much") ||
                                     !strcmp(buf, "long") || !strcmp(buf, "old") ||
                                     !strcmp(buf, "far") || !strcmp(buf, "tall") ||
                                     !strcmp(buf, "high") || !strcmp(buf, "big")))
            return ANS_NUMBER;
        if ((!strcmp(prev, "what") || !strcmp(prev, "which")) &&
            (!strcmp(buf, "year") || !strcmp(buf, "date") || !strcmp(buf, "age") ||
             !strcmp(buf, "century") || !strcmp(buf, "decade") || !strcmp(buf, "percentage") ||
             !strcmp(buf, "population") || !strcmp(buf, "number")))
            return ANS_NUMBER;
        if (!strcmp(buf, "who") || !strcmp(buf, "whom") || !strcmp(buf, "whose") ||
            !strcmp(buf, "where"))
            return ANS_NAME;
        memcpy(prev, buf, n + 1);
    }
    return ANS_NONE;
}

static bool is_month(const char *s, size_t n) {
    static const char *const m[] = {"january", "february", "march", "april", "may", "june",
                                    "july", "august", "september", "october", "november",
                                    "december"};
    for (size_t i = 0; i < 12; i++)
        if (strlen(m[i]) == n && !memcmp(m[i], s, n)) return true;
    return false;
}

/* Marks the words that can answer the question (w->cand): numbers and
 * months for ANS_NUMBER; for ANS_NAME capitalised words that do not start
 * a sentence and are not question words. */
static bool mark_candidates(work_t *w) {
    size_t nw = w->words.n;
    w->cand = comi_calloc_array(w->e, nw + 1, 1, "answer candidates");
    if (!w->cand) return false;
    if (w->answer_type == ANS_NONE) return true;
    const text_word *tw = w->words.w;
    for (size_t i = 0; i < nw; i++) {
        const text_word *x = &tw[i];
        if (x->term == TEXT_NO_TERM || w->in_q[x->term]) continue;
        const char *s = w->srcs[x->src] + x->start;
        size_t len = x->end - x->start;
        if (w->answer_type == ANS_NUMBER) {
            bool digit = false;
            for (size_t j = 0; j < len; j++) digit |= s[j] >= '0' && s[j] <= '9';
            char low[64];
            size_t tl = len * 4 + 4 <= sizeof low ? lex_normalize_word(s, len, false, low) : 0;
            w->cand[i] = digit || is_month(low, tl);
        } else {
            bool starts = i == 0 || (tw[i - 1].flags & TW_SENT_END);
            w->cand[i] = !starts && !(x->flags & TW_STOP) && s[0] >= 'A' && s[0] <= 'Z';
        }
    }
    return true;
}

/* Stage 1 (parse): the question's words, the word budget, sentence and
 * clause boundaries, groups and units; the working set is checked against
 * the context's byte limit before anything large is allocated. */
static comi_status stage_parse(work_t *w, bool docs_mode, const char *question) {
    comi_err *e = w->e;
    const comi_text_params *prm = w->prm;
    size_t nw = w->words.n;
    if (nw == 0) return comi_err_set(e, COMI_ERR_INVALID_ARG, "context: empty (no words)");
    lex_opts qo = {.stem = !w->enc || w->enc->kind == ENC_LEXICAL, .stopwords = true};
    comi_status st = lex_split(e, "question", question, strlen(question), 0, &qo, &w->dict,
                               &w->qwords);
    if (st != COMI_OK) return st;
    if (w->qwords.n == 0) return comi_err_set(e, COMI_ERR_INVALID_ARG, "question: empty (no words)");
    w->answer_type = answer_type(w, question);
    if (prm->summary > 0 || (prm->summary < 0 && names_no_content(w, question))) {
        /* Summary mode: no question relevance; the budget shared by group
         * size; units by centrality, short units, strong redundancy. */
        w->summary = true;
        w->params.alpha = 0;
        w->params.bridge_weight = 0;
        w->params.coarse = false;
        w->params.lead_weight = 0;
        w->params.centrality_weight = SUMMARY_CENTRALITY;
        if (w->params.beta < 1) w->params.beta = 1;
        w->params.min_unit_words = 3;
    }

    if (prm->target_tokens > 0) {
        w->budget = prm->target_tokens < (int64_t)nw ? prm->target_tokens : (int64_t)nw;
    } else {
        w->budget = (int64_t)floor((double)nw / prm->ratio);
        if (w->budget > (int64_t)nw) w->budget = (int64_t)nw;
        /* Never an empty success: when the ratio leaves no word of a short
         * context, the best word is kept. */
        if (w->budget < 1) w->budget = 1;
    }

    /* Boundaries per source, then groups and units. */
    for (size_t i = 0; i < nw;) {
        size_t j = i;
        while (j < nw && w->words.w[j].src == w->words.w[i].src) j++;
        lex_mark_boundaries(&w->words, i, j, w->srcs);
        i = j;
    }
    if ((st = make_groups(w, docs_mode)) != COMI_OK) return st;
    for (size_t k = 0; k < w->n_groups; k++)
        if (!make_units(w, k)) return e->status;
    return check_memory(w);
}

/* Stage 2 (terms): the per-term tables, document frequencies over units,
 * IDF (BM25's, always positive) and the question's terms. */
static comi_status stage_terms(work_t *w) {
    comi_err *e = w->e;
    size_t nw = w->words.n, nt = w->dict.n;
    w->df = comi_calloc_array(e, nt ? nt : 1, sizeof *w->df, "df");
    w->idf = comi_calloc_array(e, nt ? nt : 1, sizeof *w->idf, "idf");
    w->in_q = comi_calloc_array(e, nt ? nt : 1, 1, "query terms");
    w->tf = comi_calloc_array(e, nt ? nt : 1, sizeof *w->tf, "tf");
    w->touched = comi_alloc_array(e, nw + w->qwords.n + 1, sizeof *w->touched, "terms");
    w->qterms = comi_alloc_array(e, w->qwords.n + 1, sizeof *w->qterms, "query terms");
    w->sent_rel = comi_calloc_array(e, w->n_sents + 1, sizeof *w->sent_rel, "sentences");
    w->acc = comi_calloc_array(e, nt ? nt : 1, sizeof *w->acc, "scatter buffer");
    if (!w->df || !w->idf || !w->in_q || !w->tf || !w->touched || !w->qterms || !w->sent_rel ||
        !w->acc)
        return e->status;

    for (size_t u = 0; u < w->n_units; u++) {
        size_t n_touch = 0;
        for (uint32_t i = w->units[u].w0; i < w->units[u].w1; i++) {
            uint32_t t = w->words.w[i].term;
            if (t == TEXT_NO_TERM || w->tf[t]) continue;
            w->tf[t] = 1;
            w->touched[n_touch++] = t;
        }
        for (size_t j = 0; j < n_touch; j++) {
            w->df[w->touched[j]]++;
            w->tf[w->touched[j]] = 0;
        }
    }
    double N = (double)w->n_units;
    for (size_t t = 0; t < nt; t++)
        w->idf[t] = (float)log(1.0 + (N - w->df[t] + 0.5) / (w->df[t] + 0.5));

    /* Query terms: unique non-stop terms (all terms if only stopwords). */
    bool any_content = false;
    for (size_t i = 0; i < w->qwords.n; i++)
        if (!(w->qwords.w[i].flags & TW_STOP)) any_content = true;
    for (size_t i = 0; i < w->qwords.n; i++) {
        const text_word *x = &w->qwords.w[i];
        if (x->term == TEXT_NO_TERM || (any_content && (x->flags & TW_STOP))) continue;
        if (!w->in_q[x->term]) {
            w->in_q[x->term] = 1;
            w->qterms[w->n_qterms++] = x->term;
        }
    }
    if (!any_content) /* stopword-only question: let its terms count */
        for (size_t i = 0; i < nw; i++)
            if (w->words.w[i].term != TEXT_NO_TERM && w->in_q[w->words.w[i].term])
                w->words.w[i].flags &= (uint16_t)~TW_STOP;
    if (!mark_candidates(w)) return e->status;
    return COMI_OK;
}

/* Stage 3 (relevance): BM25 of units, sentences and groups, TF-IDF
 * redundancy vectors, bridges, dense vectors of the vectors/model encoders,
 * centrality and lead: each unit's fine-stage score. Sets w->max_g. */
static comi_status stage_relevance(work_t *w, const char *question) {
    comi_err *e = w->e;
    const comi_text_params *prm = w->prm;
    size_t nt = w->dict.n;
    comi_status st;
    double sum_len = 0;
    for (size_t u = 0; u < w->n_units; u++) {
        uint32_t len = 0;
        for (uint32_t i = w->units[u].w0; i < w->units[u].w1; i++)
            len += !(w->words.w[i].flags & TW_STOP);
        w->units[u].n_terms = len;
        sum_len += len;
    }
    float avg_u = w->n_units ? (float)(sum_len / (double)w->n_units) : 1;
    float avg_g = w->n_groups ? (float)(sum_len / (double)w->n_groups) : 1;
    float max_u = 0, max_s = 0, max_g = 0;
    for (size_t u = 0; u < w->n_units; u++) {
        unit_t *x = &w->units[u];
        x->rel = bm25_span(w, x->w0, x->w1, avg_u, NULL);
        if (x->rel > max_u) max_u = x->rel;
        if (!tfidf_span(w, x->w0, x->w1, &x->v_off, &x->v_len)) return e->status;
    }
    /* Sentence relevance: BM25 of the whole sentence (units share sent). */
    for (size_t u = 0; u < w->n_units;) {
        size_t v = u;
        while (v < w->n_units && w->units[v].sent == w->units[u].sent) v++;
        float r = bm25_span(w, w->units[u].w0, w->units[v - 1].w1, avg_u, NULL);
        w->sent_rel[w->units[u].sent] = r;
        if (r > max_s) max_s = r;
        u = v;
    }
    for (size_t k = 0; k < w->n_groups; k++) {
        group_t *g = &w->groups[k];
        g->rel = bm25_span(w, g->w0, g->w1, avg_g, &g->n_terms);
        if (g->rel > max_g) max_g = g->rel;
        if (!tfidf_span(w, g->w0, g->w1, &g->v_off, &g->v_len)) return e->status;
    }
    /* Bridges (multi-hop): a group whose title is named inside a relevant
     * group is relevant through it ("the arena where X played" -> the
     * arena's own document). */
    if (prm->bridge_weight > 0 && max_g > 0 && !bridge_scores(w, max_g)) return e->status;

    /* Dense vectors (vectors or model encoder): mix cosine relevance in. */
    bool dense = w->enc && w->enc->kind != ENC_LEXICAL;
    if (dense) {
        int32_t d = enc_dim(w->enc);
        w->dense_dim = d;
        if (w->enc->kind == ENC_VECTORS) {
            if (!dense_span(w, &w->qwords, 0, (uint32_t)w->qwords.n, &w->qdense))
                return e->status;
            for (size_t u = 0; u < w->n_units; u++) {
                unit_t *x = &w->units[u];
                if (!dense_span(w, &w->words, x->w0, x->w1, &x->dense)) return e->status;
            }
        } else if ((st = model_vectors(w, question)) != COMI_OK) {
            return st;
        }
        for (size_t u = 0; u < w->n_units; u++) {
            float c = dense_dot(w->units[u].dense, w->qdense, d);
            w->units[u].rel = (max_u > 0 ? w->units[u].rel / max_u : 0) + (c > 0 ? c : 0);
        }
        max_u = 0;
        for (size_t u = 0; u < w->n_units; u++)
            if (w->units[u].rel > max_u) max_u = w->units[u].rel;
    }
    /* Centrality: cosine of a unit with the centroid of the whole context
     * (what the context is about), for instructions that name no content
     * ("summarise the news"); lead: earlier units of a group first. */
    float cw = prm->context_weight, cent_w = prm->centrality_weight, lead_w = prm->lead_weight;
    if (cent_w != 0) {
        double ss = 0;
        for (size_t j = 0; j < w->pool.n; j++) w->acc[w->pool.e[j].term] += w->pool.e[j].w;
        for (size_t t = 0; t < nt; t++) ss += (double)w->acc[t] * w->acc[t];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0;
        for (size_t t = 0; t < nt; t++) w->acc[t] *= inv;
        for (size_t u = 0; u < w->n_units; u++)
            w->units[u].cent = sp_gather(w, w->units[u].v_off, w->units[u].v_len);
        memset(w->acc, 0, nt * sizeof *w->acc);
    }
    for (size_t u = 0; u < w->n_units; u++) {
        unit_t *x = &w->units[u];
        float r = max_u > 0 ? x->rel / max_u : 0;
        float s = max_s > 0 ? w->sent_rel[x->sent] / max_s : 0;
        float gr = max_g > 0 ? w->groups[x->group].rel / max_g : 0;
        float lead = 1.0f / (1.0f + (float)(u - w->groups[x->group].u0));
        x->score = prm->alpha * (r + cw * (s + gr)) + cent_w * x->cent + lead_w * lead;
        if (w->answer_type != ANS_NONE && x->rel > 0 && !w->summary) {
            for (uint32_t i = x->w0; i < x->w1 && !x->answer; i++) x->answer = w->cand[i];
            if (x->answer) x->score += prm->alpha * ANSWER_WEIGHT;
        }
    }
    w->max_g = max_g;
    return COMI_OK;
}

/* Stage 4 (coarse): group MIG scores, budget shares by softmax (or by size
 * without the coarse stage) and integer quotas. */
static comi_status stage_coarse(work_t *w) {
    const comi_text_params *prm = w->prm;
    size_t ng = w->n_groups, nw = w->words.n;
    float max_g = w->max_g;
    for (size_t k = 0; k < ng; k++) {
        group_t *g = &w->groups[k];
        float red = 0;
        if (prm->redundancy) {
            /* Against at most 64 neighbours on each side keeps this linear. */
            size_t lo = k > 64 ? k - 64 : 0, hi = k + 65 < ng ? k + 65 : ng;
            sp_scatter(w, g->v_off, g->v_len, true);
            for (size_t h = lo; h < hi; h++) {
                if (h == k) continue;
                float c = sp_gather(w, w->groups[h].v_off, w->groups[h].v_len);
                if (c > red) red = c;
            }
            sp_scatter(w, g->v_off, g->v_len, false);
        }
        g->red = red;
        g->score = prm->alpha * (max_g > 0 ? g->rel / max_g : 0) - prm->beta * red;
    }
    if (prm->coarse && ng > 1) {
        float tau = prm->temperature > 1e-4f ? prm->temperature : 1e-4f;
        double mx = -DBL_MAX, sum = 0;
        for (size_t k = 0; k < ng; k++)
            if (w->groups[k].score > mx) mx = w->groups[k].score;
        for (size_t k = 0; k < ng; k++) {
            w->groups[k].p = exp((w->groups[k].score - mx) / tau);
            sum += w->groups[k].p;
        }
        for (size_t k = 0; k < ng; k++) w->groups[k].p /= sum;
    } else {
        /* No coarse stage: shares proportional to group size. */
        for (size_t k = 0; k < ng; k++) w->groups[k].p = (double)w->groups[k].size / (double)nw;
    }
    return allocate(w, prm->coarse ? prm->min_group_words : 0);
}

/* Units kept earlier that a group's units are compared with for redundancy:
 * the most recent ones (contexts of the shared sets keep fewer). */
#define RED_MAX_KEPT 128

/* The units [*a0, *a1) of group g's best answer sentence: a sentence
 * (not a title) none of whose units is kept, of at most left words, that
 * matches the question and holds a candidate answer (w->cand), the one of
 * highest sentence relevance (earliest on ties). False when there is none
 * or the question asks for no particular kind of answer. */
static bool answer_sentence(const work_t *w, const group_t *g, int64_t left,
                            const uint8_t *ukept, uint32_t *a0, uint32_t *a1) {
    if (w->answer_type == ANS_NONE || w->summary) return false;
    float best = 0;
    bool found = false;
    for (uint32_t u = g->u0; u < g->u1;) {
        uint32_t v = u;
        bool kept = false;
        while (v < g->u1 && w->units[v].sent == w->units[u].sent) kept |= ukept[v++];
        const unit_t *x = &w->units[u];
        float rel = w->sent_rel[x->sent];
        int64_t len = w->units[v - 1].w1 - x->w0;
        if (!kept && !x->title && rel > best && len <= left) {
            bool cand = false;
            for (uint32_t i = x->w0; i < w->units[v - 1].w1 && !cand; i++) cand = w->cand[i];
            if (cand) {
                best = rel;
                *a0 = u;
                *a1 = v;
                found = true;
            }
        }
        u = v;
    }
    return found;
}

/* Whole-unit modes keep a title only as the heading of its group's kept
 * text, never alone (a list of bare titles is noise to a reader): the words
 * a unit u costs are its own plus its group's title when that is not kept
 * yet. Word mode: the unit's own words. */
static int64_t unit_cost(const work_t *w, uint32_t u, const uint8_t *ukept) {
    const unit_t *x = &w->units[u];
    int64_t len = x->w1 - x->w0;
    if (w->prm->unit == COMI_UNIT_WORD) return len;
    const group_t *g = &w->groups[x->group];
    const unit_t *t = &w->units[g->u0];
    if (g->u1 > g->u0 && t->title && g->u0 != u && !ukept[g->u0]) len += t->w1 - t->w0;
    return len;
}

/* Keeps unit u (and, in whole-unit modes, its group's title when not kept
 * yet): marks the words, returns how many were added. */
static int64_t keep_unit(work_t *w, uint32_t u, uint8_t *keep, uint8_t *ukept) {
    int64_t cost = unit_cost(w, u, ukept);
    const unit_t *x = &w->units[u];
    if (cost > x->w1 - x->w0) {
        uint32_t t = w->groups[x->group].u0;
        for (uint32_t i = w->units[t].w0; i < w->units[t].w1; i++) keep[i] = 1;
        ukept[t] = 1;
    }
    for (uint32_t i = x->w0; i < x->w1; i++) keep[i] = 1;
    ukept[u] = 1;
    return cost;
}

/* Whole-unit modes: the groups' quotas rarely end on unit boundaries, so
 * what they leave (left words) goes to the best remaining units of any
 * group that still fit, by fine-stage score. Fails, rather than return an
 * empty text, when no unit at all was kept (n_kept 0 and none fits). */
static comi_status fill_whole(work_t *w, uint8_t *keep, uint8_t *ukept, int64_t left,
                              size_t n_kept) {
    kv_t *cand = comi_alloc_array(w->e, w->n_units + 1, sizeof *cand, "whole units");
    if (!cand) return w->e->status;
    size_t n = 0;
    int64_t shortest = INT64_MAX;
    for (size_t u = 0; u < w->n_units; u++) {
        if (w->units[u].title) continue; /* kept only with its group's text */
        int64_t len = w->units[u].w1 - w->units[u].w0, cost = unit_cost(w, (uint32_t)u, ukept);
        if (cost < shortest) shortest = cost;
        if (!ukept[u] && len <= left) cand[n++] = (kv_t){w->units[u].score, (uint32_t)u};
    }
    qsort(cand, n, sizeof *cand, kv_desc);
    /* units that share no term with the question are filler a reader must
     * skip: they fill only when nothing else was kept (or in summary mode) */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && n_kept > 0) break;
        for (size_t j = 0; j < n && left > 0; j++) {
            if (ukept[cand[j].i] || unit_cost(w, cand[j].i, ukept) > left) continue;
            if (pass == 0 && !w->summary && !(w->units[cand[j].i].rel > 0)) continue;
            left -= keep_unit(w, cand[j].i, keep, ukept);
            n_kept++;
        }
    }
    free(cand);
    if (n_kept == 0)
        return comi_err_set(w->e, COMI_ERR_INVALID_ARG,
                            "budget of %lld words is shorter than every %s of the context (the "
                            "shortest has %lld words): raise the budget, or use unit word",
                            (long long)w->budget, comi_text_unit_name(w->prm->unit),
                            (long long)shortest);
    return COMI_OK;
}

/* Stage 5 (fine): greedy MIG inside each group, best groups first
 * (redundancy is measured against everything kept so far); marks the kept
 * words in keep (nw bytes, zeroed). */
static comi_status stage_fine(work_t *w, uint8_t *keep) {
    comi_err *e = w->e;
    const comi_text_params *prm = w->prm;
    size_t ng = w->n_groups;
    kv_t *order = comi_alloc_array(e, ng + 1, sizeof *order, "group order");
    uint8_t *ukept = comi_calloc_array(e, w->n_units + 1, 1, "kept units");
    float *ured = comi_calloc_array(e, w->n_units + 1, sizeof *ured, "unit redundancy");
    uint32_t *kept_list = comi_alloc_array(e, w->n_units + 1, sizeof *kept_list, "kept units");
    comi_status st = COMI_OK;
    /* whole units only (unit clause or sentence): none is ever cut */
    bool whole = prm->unit != COMI_UNIT_WORD;
    if (!order || !ukept || !ured || !kept_list) {
        st = e->status;
        goto out;
    }
    for (size_t k = 0; k < ng; k++) order[k] = (kv_t){w->groups[k].score, (uint32_t)k};
    qsort(order, ng, sizeof *order, kv_desc); /* best first, earlier first on ties */
    size_t n_kept_units = 0, n_whole = 0;
    int64_t used = 0;
    for (size_t oi = 0; oi < ng; oi++) {
        group_t *g = &w->groups[order[oi].i];
        int64_t left = g->quota;
        if (whole && left > w->budget - used) left = w->budget - used; /* after borrowing */
        if (left <= 0) continue;
        bool first = true;
        if (prm->keep_titles && g->u1 > g->u0 && w->units[g->u0].title) {
            unit_t *t = &w->units[g->u0];
            int64_t tl = t->w1 - t->w0;
            if (tl + 3 <= left) {
                for (uint32_t i = t->w0; i < t->w1; i++) keep[i] = 1;
                ukept[g->u0] = 1;
                left -= tl;
                used += tl;
                n_whole++;
            }
        }
        /* Redundancy of this group's units against what is kept (the last
         * RED_MAX_KEPT units kept, so the work stays linear in the input). */
        size_t n_red = n_kept_units < RED_MAX_KEPT ? n_kept_units : RED_MAX_KEPT;
        for (uint32_t u = g->u0; u < g->u1; u++)
            ured[u] = prm->redundancy && n_red
                          ? unit_red(w, &w->units[u], kept_list + n_kept_units - n_red, n_red)
                          : 0;
        /* Answer first (knob answer_first): the group's best sentence that
         * matches the question and holds a candidate answer, when its share
         * can hold it, is kept before the greedy picks, so a long lead
         * sentence cannot crowd it out under a tight budget. */
        uint32_t a0, a1;
        int64_t tcost = 0; /* the title that a first kept unit brings along */
        if (whole && g->u1 > g->u0 + 1) tcost = unit_cost(w, g->u1 - 1, ukept) -
                                                (w->units[g->u1 - 1].w1 - w->units[g->u1 - 1].w0);
        if (prm->answer_first && answer_sentence(w, g, left - tcost, ukept, &a0, &a1)) {
            for (uint32_t u = a0; u < a1; u++) {
                int64_t c = keep_unit(w, u, keep, ukept);
                left -= c;
                used += c;
                kept_list[n_kept_units++] = u;
                n_whole++;
            }
            first = false;
            if (prm->redundancy)
                for (uint32_t u = g->u0; u < g->u1; u++) {
                    if (ukept[u]) continue;
                    float c = unit_red(w, &w->units[u], kept_list + n_kept_units - (a1 - a0),
                                       a1 - a0);
                    if (c > ured[u]) ured[u] = c;
                }
        }
        while (left > 0) {
            int64_t best = -1, best_any = -1;
            float bg = -FLT_MAX, bga = -FLT_MAX;
            for (uint32_t u = g->u0; u < g->u1; u++) {
                if (ukept[u]) continue;
                const unit_t *x = &w->units[u];
                if (whole && x->title) continue; /* kept only with its group's text */
                float gain = x->score - prm->beta * ured[u];
                if (gain > bga) {
                    bga = gain;
                    best_any = u;
                }
                if (unit_cost(w, u, ukept) <= left && gain > bg) {
                    bg = gain;
                    best = u;
                }
            }
            if (best_any < 0) break;
            /* whole units: a group's best unit that is longer than the group's
             * quota is taken whole when the budget can still hold it (the
             * words come from the groups ranked after this one) */
            if (whole && first && best != best_any &&
                unit_cost(w, (uint32_t)best_any, ukept) <= w->budget - used) {
                best = best_any;
                left = unit_cost(w, (uint32_t)best_any, ukept);
            }
            first = false;
            bool trim = best < 0;
            if (trim && whole) break; /* never cut a unit: what is left goes to the fill */
            int64_t pick = trim ? best_any : best;
            unit_t *x = &w->units[pick];
            if (trim) {
                keep_window(w, x, left, keep);
                used += left;
                left = 0;
            } else {
                int64_t c = keep_unit(w, (uint32_t)pick, keep, ukept);
                left -= c;
                used += c;
            }
            ukept[pick] = 1;
            kept_list[n_kept_units++] = (uint32_t)pick;
            n_whole++;
            if (prm->redundancy)
                for (uint32_t u = g->u0; u < g->u1; u++) {
                    if (ukept[u]) continue;
                    uint32_t one = (uint32_t)pick;
                    float c = unit_red(w, &w->units[u], &one, 1);
                    if (c > ured[u]) ured[u] = c;
                }
        }
    }
    if (whole) st = fill_whole(w, keep, ukept, w->budget - used, n_whole);
out:
    free(order);
    free(ukept);
    free(ured);
    free(kept_list);
    return st;
}

/* Whole-unit output: every run of consecutive kept words is copied byte
 * for byte from its source (the text between its words included), so each
 * kept sentence or clause is exactly as in the input; runs are joined by a
 * line break when a line break, paragraph, group or document lies between
 * them, else by a space. */
static comi_status join_runs(work_t *w, const uint8_t *keep, char **out) {
    const text_word *tw = w->words.w;
    size_t nw = w->words.n, bytes = 1;
    for (size_t i = 0; i < nw;) { /* sizes first: each run's source span and a separator */
        if (!keep[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < nw && keep[j + 1] && tw[j + 1].src == tw[i].src) j++;
        bytes += tw[j].end - tw[i].start + 1;
        i = j + 1;
    }
    char *o = malloc(bytes);
    if (!o) return comi_err_set(w->e, COMI_ERR_NOMEM, "output: out of memory (%zu bytes)", bytes);
    size_t k = 0;
    int64_t prev = -1; /* last word of the previous run */
    for (size_t i = 0; i < nw;) {
        if (!keep[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < nw && keep[j + 1] && tw[j + 1].src == tw[i].src) j++;
        if (prev >= 0) {
            bool line = tw[prev].src != tw[i].src || w->word_group[prev] != w->word_group[i];
            for (size_t m = (size_t)prev + 1; m <= i && !line; m++)
                line = (tw[m].flags & (TW_LINE_BEFORE | TW_PARA_BEFORE)) != 0;
            o[k++] = line ? '\n' : ' ';
        }
        size_t len = tw[j].end - tw[i].start;
        memcpy(o + k, w->srcs[tw[i].src] + tw[i].start, len);
        k += len;
        prev = (int64_t)j;
        i = j + 1;
    }
    o[k] = '\0';
    *out = o;
    return COMI_OK;
}

/* Stage 6 (output): the kept words in their original order. */
static comi_status stage_output(work_t *w, const uint8_t *keep, comi_text_result *out) {
    comi_err *e = w->e;
    size_t nw = w->words.n, n_keep = 0;
    for (size_t i = 0; i < nw; i++) n_keep += keep[i];
    comi_status st;
    if (w->prm->unit != COMI_UNIT_WORD) {
        st = join_runs(w, keep, &out->text);
    } else {
        uint32_t *idx = comi_alloc_array(e, n_keep + 1, sizeof *idx, "kept words");
        if (!idx) return e->status;
        n_keep = 0;
        for (size_t i = 0; i < nw; i++)
            if (keep[i]) idx[n_keep++] = (uint32_t)i;
        st = text_join(e, &w->words, w->srcs, idx, n_keep, w->word_group, &out->text);
        free(idx);
    }
    if (st == COMI_OK) {
        out->original_tokens = (int64_t)nw;
        out->compressed_tokens = (int64_t)n_keep;
        out->ratio = (double)nw / (double)(n_keep ? n_keep : 1);
    }
    return st;
}

static comi_status compress_core(work_t *w, bool docs_mode, const char *question,
                                 comi_text_result *out) {
    /* comi_ctx_cancel is checked before each stage (and the model encoder
     * checks before each segment) */
    comi_status st;
    if ((st = comi_check_cancel(w->ctx, "compress: parse")) != COMI_OK) return st;
    if ((st = stage_parse(w, docs_mode, question)) != COMI_OK) return st;
    if ((st = comi_check_cancel(w->ctx, "compress: terms")) != COMI_OK) return st;
    if ((st = stage_terms(w)) != COMI_OK) return st;
    if ((st = comi_check_cancel(w->ctx, "compress: relevance")) != COMI_OK) return st;
    if ((st = stage_relevance(w, question)) != COMI_OK) return st;
    if ((st = comi_check_cancel(w->ctx, "compress: coarse")) != COMI_OK) return st;
    if ((st = stage_coarse(w)) != COMI_OK) return st;
    if ((st = comi_check_cancel(w->ctx, "compress: fine")) != COMI_OK) return st;
    uint8_t *keep = comi_calloc_array(w->e, w->words.n, 1, "kept words");
    if (!keep) return w->e->status;
    st = stage_fine(w, keep);
    if (st == COMI_OK) st = stage_output(w, keep, out);
    free(keep);
    return st;
}

static comi_status check_params(comi_err *e, const comi_text_params *p) {
    if (p->target_tokens < 0)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "target_tokens: %lld is negative",
                            (long long)p->target_tokens);
    if (p->target_tokens == 0 && (!isfinite(p->ratio) || p->ratio < 1.0))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "ratio: %g must be a finite number >= 1",
                            p->ratio);
    if (!isfinite(p->alpha) || !isfinite(p->beta) || !isfinite(p->temperature) ||
        !isfinite(p->context_weight))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "alpha/beta/temperature/context_weight "
                                                     "must be finite");
    if (p->temperature <= 0)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "temperature: %g must be > 0",
                            (double)p->temperature);
    if (!comi_text_unit_name(p->unit))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "unit: %d is not a comi_text_unit",
                            (int)p->unit);
    return COMI_OK;
}

static comi_status run_words(comi_ctx *ctx, const char *const *srcs, size_t n_srcs,
                             bool docs_mode, const char *question, const comi_text_params *params,
                             comi_text_result *out) {
    double t0 = comi_now_ms();
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    memset(out, 0, sizeof *out);
    comi_text_params def = comi_text_default_params();
    if (!params) params = &def;
    comi_status st = check_params(e, params);
    if (st != COMI_OK) return st;
    if (!question) return comi_err_set(e, COMI_ERR_INVALID_ARG, "question: NULL");
    if (n_srcs > UINT16_MAX)
        return comi_err_set(e, COMI_ERR_LIMIT, "documents: %zu is over the limit of %u", n_srcs,
                            (unsigned)UINT16_MAX);
    work_t w;
    memset(&w, 0, sizeof w);
    w.ctx = ctx;
    w.e = e;
    w.params = *params;
    w.prm = &w.params;
    w.enc = params->encoder;
    w.srcs = srcs;
    w.n_srcs = n_srcs;
    text_dict_init(&w.dict);
    lex_opts lo = {.stem = !w.enc || w.enc->kind == ENC_LEXICAL, .stopwords = true};
    /* count first, so an oversize context is refused before its word list exists */
    if ((st = lex_check_word_limit(ctx, docs_mode ? "document list" : "context", srcs, n_srcs))) {
        work_free(&w);
        return st;
    }
    for (size_t i = 0; i < n_srcs && st == COMI_OK; i++) {
        if (!srcs[i]) {
            st = comi_err_set(e, COMI_ERR_INVALID_ARG, "documents[%zu]: NULL", i);
            break;
        }
        size_t len = strlen(srcs[i]);
        if (!comi_add_size(w.n_bytes, len + 1, &w.n_bytes)) {
            st = comi_err_set(e, COMI_ERR_LIMIT, "documents: total size overflows");
            break;
        }
        char what[48];
        if (docs_mode) snprintf(what, sizeof what, "documents[%zu]", i);
        else snprintf(what, sizeof what, "context");
        st = lex_split(e, what, srcs[i], len, (uint16_t)i, &lo, &w.dict, &w.words);
    }
    if (st == COMI_OK && w.words.n > UINT32_MAX - 1)
        st = comi_err_set(e, COMI_ERR_LIMIT, "context: too many words");
    if (st == COMI_OK) st = compress_core(&w, docs_mode, question, out);
    work_free(&w);
    if (st != COMI_OK) {
        comi_text_result_free(out);
        return st;
    }
    out->ms = comi_now_ms() - t0;
    return COMI_OK;
}

/* Model tokens of s (no BOS/EOS); -1 on failure (message in ctx). */
static int64_t model_tokens(comi_ctx *ctx, const comi_tokenizer *tok, const char *s) {
    comi_tokenize_params tp = comi_tokenize_default_params();
    tp.add_bos = 0;
    tp.add_eos = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (comi_tokenize(ctx, tok, s, strlen(s), &tp, &ids, &n) != COMI_OK) return -1;
    comi_free(ids);
    return (int64_t)n;
}

/* Tries of run_tokens: each is one whole compression. */
#define TOKEN_TRIES 12

/* Budgets in a model's tokens (params->tokenizer): budget = target_tokens,
 * or floor(model tokens of the input / ratio), at least 1. Text mode
 * selects by words, so the word budget starts at budget * words / tokens
 * and is searched for the largest one whose output fits: an overshoot
 * shrinks it in proportion, an output under 90% of the budget grows it,
 * never past a word budget known to overshoot (at most TOKEN_TRIES
 * compressions). When no word budget fits, the one-word result is returned
 * (text mode always keeps something) or, for whole units, the failure.
 * out's counts are then model tokens. */
static comi_status run_tokens(comi_ctx *ctx, const char *const *srcs, size_t n_srcs,
                              bool docs_mode, const char *question,
                              const comi_text_params *params, comi_text_result *out) {
    double t0 = comi_now_ms();
    comi_err *e = &ctx->err;
    memset(out, 0, sizeof *out);
    comi_status st = check_params(e, params);
    if (st != COMI_OK) return st;
    const comi_tokenizer *tok = params->tokenizer;
    int64_t total = 0, words_est = 0;
    for (size_t i = 0; i < n_srcs; i++) {
        if (!srcs[i]) return comi_err_set(e, COMI_ERR_INVALID_ARG, "documents[%zu]: NULL", i);
        int64_t t = model_tokens(ctx, tok, srcs[i]);
        if (t < 0) return e->status;
        total += t;
        words_est += comi_text_count_tokens(srcs[i]);
    }
    int64_t budget = params->target_tokens > 0 ? params->target_tokens
                                               : (int64_t)floor((double)total / params->ratio);
    if (budget < 1) budget = 1;
    comi_text_params p = *params;
    p.tokenizer = NULL;
    p.ratio = 1;
    int64_t w = total > 0 ? (int64_t)((double)budget * (double)(words_est ? words_est : 1) /
                                      (double)total)
                          : 1;
    if (w < 1) w = 1;
    int64_t lo = 0, hi = INT64_MAX; /* word budgets known to fit / to overshoot (or fail) */
    int64_t best_got = -1;
    comi_text_result best = {0}, cur;
    comi_status fail = COMI_OK;
    char fail_msg[sizeof e->msg] = "";
    for (int tries = 0; tries < TOKEN_TRIES && lo + 1 < hi; tries++) {
        p.target_tokens = w;
        st = run_words(ctx, srcs, n_srcs, docs_mode, question, &p, &cur);
        int64_t got = -1;
        if (st == COMI_OK && (got = model_tokens(ctx, tok, cur.text)) < 0) {
            comi_text_result_free(&cur);
            comi_text_result_free(&best);
            return e->status;
        }
        if (st != COMI_OK) {
            /* whole units: a word budget shorter than every unit fails; a
             * larger one may fit. Anything else is a real failure. */
            if (st != COMI_ERR_INVALID_ARG || p.unit == COMI_UNIT_WORD) {
                comi_text_result_free(&best);
                return st;
            }
            fail = st;
            memcpy(fail_msg, e->msg, sizeof fail_msg);
            lo = w;
        } else {
            bool fits = got <= budget;
            if (fits && got > best_got) {
                comi_text_result_free(&best);
                best = cur;
                best.original_tokens = total;
                best.compressed_tokens = got;
                best_got = got;
            } else {
                comi_text_result_free(&cur);
            }
            if (fits) {
                lo = w;
                if ((double)got >= 0.9 * (double)budget) break;
            } else {
                hi = w;
            }
        }
        /* the next word budget: in proportion to the miss, else halfway
         * between the bounds (doubling while nothing overshoots) */
        int64_t next = st == COMI_OK && got > 0
                           ? (int64_t)((double)w * (double)budget / (double)got)
                           : -1;
        if (next <= lo || next >= hi) next = hi == INT64_MAX ? 2 * lo : lo + (hi - lo) / 2;
        w = next;
    }
    if (best_got < 0) {
        if (fail != COMI_OK) return comi_err_set(e, fail, "%s", fail_msg);
        /* nothing fits: the single best word (text mode never returns nothing) */
        p.target_tokens = 1;
        if ((st = run_words(ctx, srcs, n_srcs, docs_mode, question, &p, &best)) != COMI_OK)
            return st;
        if ((best_got = model_tokens(ctx, tok, best.text)) < 0) {
            comi_text_result_free(&best);
            return e->status;
        }
        best.original_tokens = total;
        best.compressed_tokens = best_got;
    }
    best.ratio = (double)total / (double)(best_got > 0 ? best_got : 1);
    best.ms = comi_now_ms() - t0;
    *out = best;
    return COMI_OK;
}

static comi_status run(comi_ctx *ctx, const char *const *srcs, size_t n_srcs, bool docs_mode,
                       const char *question, const comi_text_params *params,
                       comi_text_result *out) {
    if (params && params->tokenizer)
        return run_tokens(ctx, srcs, n_srcs, docs_mode, question, params, out);
    return run_words(ctx, srcs, n_srcs, docs_mode, question, params, out);
}

comi_status comi_compress_text(comi_ctx *ctx, const char *context, const char *question,
                               const comi_text_params *params, comi_text_result *out) {
    if (!context) {
        memset(out, 0, sizeof *out);
        return comi_err_set(&ctx->err, COMI_ERR_INVALID_ARG, "context: NULL");
    }
    const char *srcs[1] = {context};
    return run(ctx, srcs, 1, false, question, params, out);
}

comi_status comi_compress_documents(comi_ctx *ctx, const char *const *docs, size_t n_docs,
                                    const char *question, const comi_text_params *params,
                                    comi_text_result *out) {
    if (!docs || n_docs == 0) {
        memset(out, 0, sizeof *out);
        return comi_err_set(&ctx->err, COMI_ERR_INVALID_ARG, "documents: empty list");
    }
    return run(ctx, docs, n_docs, true, question, params, out);
}

void comi_text_result_free(comi_text_result *res) {
    if (!res) return;
    free(res->text);
    res->text = NULL;
}
