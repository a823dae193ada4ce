/*
 * strmap.c — the string hash map (see strmap.h).
 */
#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t comi_hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

void comi_strmap_init(comi_strmap *m, comi_strmap_key_fn key, const void *owner) {
    memset(m, 0, sizeof *m);
    m->key = key;
    m->owner = owner;
}

void comi_strmap_free(comi_strmap *m) {
    if (!m) return;
    free(m->ids);
    free(m->hashes);
    m->ids = NULL;
    m->hashes = NULL;
    m->cap = m->n = 0;
}

/* Rebuilds the table with cap slots (a power of two > 2 n). */
static bool rehash(comi_err *e, comi_strmap *m, size_t cap) {
    uint32_t *ids = comi_calloc_array(e, cap, sizeof *ids, "string map");
    uint64_t *hashes = ids ? comi_alloc_array(e, cap, sizeof *hashes, "string map") : NULL;
    if (!hashes) {
        free(ids);
        return false;
    }
    size_t mask = cap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->ids[i]) continue;
        size_t j = (size_t)m->hashes[i] & mask;
        while (ids[j])
            j = (j + 1) & mask;
        ids[j] = m->ids[i];
        hashes[j] = m->hashes[i];
    }
    free(m->ids);
    free(m->hashes);
    m->ids = ids;
    m->hashes = hashes;
    m->cap = cap;
    return true;
}

bool comi_strmap_reserve(comi_err *e, comi_strmap *m, size_t n) {
    size_t cap = m->cap ? m->cap : 16;
    while (cap / 2 < n + 1) {
        if (cap > SIZE_MAX / 4) {
            comi_err_set(e, COMI_ERR_LIMIT, "string map: %zu keys are too many", n);
            return false;
        }
        cap *= 2;
    }
    return cap == m->cap || rehash(e, m, cap);
}

/* The slot holding the key s[0..len) with hash h, or the empty slot where
 * it would go. */
static size_t slot_of(const comi_strmap *m, const char *s, size_t len, uint64_t h) {
    size_t mask = m->cap - 1;
    for (size_t j = (size_t)h & mask;; j = (j + 1) & mask) {
        if (!m->ids[j]) return j;
        if (m->hashes[j] != h) continue;
        size_t kl;
        const char *k = m->key(m->owner, m->ids[j] - 1, &kl);
        if (kl == len && !memcmp(k, s, len)) return j;
    }
}

int64_t comi_strmap_find(const comi_strmap *m, const char *s, size_t len) {
    if (!m->cap) return -1;
    size_t j = slot_of(m, s, len, comi_hash_bytes(s, len));
    return m->ids[j] ? (int64_t)m->ids[j] - 1 : -1;
}

bool comi_strmap_put(comi_err *e, comi_strmap *m, uint32_t id, int64_t *prev) {
    if (prev) *prev = -1;
    if (id == UINT32_MAX) {
        comi_err_set(e, COMI_ERR_LIMIT, "string map: id %u out of range", (unsigned)id);
        return false;
    }
    if (!comi_strmap_reserve(e, m, m->n + 1)) return false;
    size_t len;
    const char *s = m->key(m->owner, id, &len);
    uint64_t h = comi_hash_bytes(s, len);
    size_t j = slot_of(m, s, len, h);
    if (m->ids[j]) {
        if (prev) *prev = (int64_t)m->ids[j] - 1;
    } else {
        m->n++;
        m->hashes[j] = h;
    }
    m->ids[j] = id + 1;
    return true;
}
