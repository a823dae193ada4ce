/*
 * encode_cache.c — encoder states kept between answers on one context
 * (comi_answer_params.encode_cache). An entry is one encoded segment: the
 * key is the exact segment and question ids and the encoder depth (ids are
 * compared, not hashed), the value its (n + n_q, d) states and query vector.
 * Entries are dropped all at once when a new one would pass max_bytes.
 */
#include "comi/pipeline.h"
#include "runtime/model.h"

#include <stdlib.h>
#include <string.h>

typedef struct ec_entry {
    int64_t nc, nq;
    int32_t k;
    int32_t *ids;  /* (nc + nq): segment ids then question ids */
    float *hidden; /* (nc + nq, d) */
    float *query;  /* (d,) */
} ec_entry;

struct comi_encode_cache {
    uint64_t serial; /* the pipeline it serves (0: none yet) */
    int64_t d;
    uint64_t max_bytes, bytes;
    ec_entry *e;
    size_t n, cap;
    uint64_t hits, misses;
};

#define EC_DEFAULT_BYTES (256ull << 20)

comi_status comi_encode_cache_new(comi_ctx *ctx, uint64_t max_bytes, comi_encode_cache **out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!out) return comi_err_set(e, COMI_ERR_INVALID_ARG, "encode cache: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return comi_err_set(e, COMI_ERR_NOMEM, "encode cache: out of memory");
    (*out)->max_bytes = max_bytes ? max_bytes : EC_DEFAULT_BYTES;
    return COMI_OK;
}

static void ec_clear(comi_encode_cache *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].ids);
        free(c->e[i].hidden);
        free(c->e[i].query);
    }
    c->n = 0;
    c->bytes = 0;
}

void comi_encode_cache_free(comi_encode_cache *c) {
    if (!c) return;
    ec_clear(c);
    free(c->e);
    free(c);
}

void comi_encode_cache_stats(const comi_encode_cache *c, uint64_t *hits, uint64_t *misses) {
    if (hits) *hits = c ? c->hits : 0;
    if (misses) *misses = c ? c->misses : 0;
}

comi_status ecache_bind(comi_err *e, comi_encode_cache *c, const comi_pipeline *pl) {
    if (!c) return COMI_OK;
    if (c->serial == 0) {
        c->serial = pl->serial;
        c->d = pl->enc->n_embd;
    } else if (c->serial != pl->serial) {
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "answer: the encode cache serves another pipeline (one cache per "
                            "pipeline)");
    }
    return COMI_OK;
}

bool ecache_get(comi_encode_cache *c, const int32_t *cids, int64_t nc, const int32_t *qids,
                int64_t nq, int32_t k, float *hidden, float *query) {
    if (!c) return false;
    for (size_t i = 0; i < c->n; i++) {
        const ec_entry *x = &c->e[i];
        if (x->nc != nc || x->nq != nq || x->k != k ||
            memcmp(x->ids, cids, (size_t)nc * sizeof *cids) != 0 ||
            memcmp(x->ids + nc, qids, (size_t)nq * sizeof *qids) != 0)
            continue;
        memcpy(hidden, x->hidden, (size_t)((nc + nq) * c->d) * sizeof(float));
        memcpy(query, x->query, (size_t)c->d * sizeof(float));
        c->hits++;
        return true;
    }
    c->misses++;
    return false;
}

void ecache_put(comi_encode_cache *c, const int32_t *cids, int64_t nc, const int32_t *qids,
                int64_t nq, int32_t k, const float *hidden, const float *query) {
    if (!c) return;
    uint64_t rows = (uint64_t)(nc + nq);
    uint64_t need = rows * sizeof(int32_t) + (rows + 1) * (uint64_t)c->d * sizeof(float);
    if (need > c->max_bytes) return; /* too large to keep: encoded again next time */
    if (c->bytes + need > c->max_bytes) ec_clear(c);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        ec_entry *ne = realloc(c->e, cap * sizeof *ne);
        if (!ne) return; /* a cache that cannot grow only costs time */
        c->e = ne;
        c->cap = cap;
    }
    ec_entry x = {.nc = nc, .nq = nq, .k = k};
    x.ids = malloc((size_t)rows * sizeof *x.ids);
    x.hidden = malloc((size_t)(rows * (uint64_t)c->d) * sizeof(float));
    x.query = malloc((size_t)c->d * sizeof(float));
    if (!x.ids || !x.hidden || !x.query) {
        free(x.ids);
        free(x.hidden);
        free(x.query);
        return;
    }
    memcpy(x.ids, cids, (size_t)nc * sizeof *cids);
    memcpy(x.ids + nc, qids, (size_t)nq * sizeof *qids);
    memcpy(x.hidden, hidden, (size_t)(rows * (uint64_t)c->d) * sizeof(float));
    memcpy(x.query, query, (size_t)c->d * sizeof(float));
    c->e[c->n++] = x;
    c->bytes += need;
}
