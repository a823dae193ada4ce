/*
 * strmap.h — the string hash map: an open-addressing index from byte-string
 * keys to ids, where the keys stay in the caller's own storage (a string
 * pool, an array of names). The map holds only each slot's id and hash and
 * asks key(owner, id) for a key's bytes when it must compare, so a
 * vocabulary or a table of names is indexed without a second copy.
 * Linear probing, power-of-two capacity, at most half full.
 */
#ifndef COMI_STRMAP_H
#define COMI_STRMAP_H

#include "base/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* FNV-1a of s[0..len), with its high bits folded into the low ones (the
 * map takes the low bits). */
uint64_t comi_hash_bytes(const char *s, size_t len);

/* The bytes of the key of id (its length in *len), owner being the
 * caller's storage. */
typedef const char *(*comi_strmap_key_fn)(const void *owner, uint32_t id, size_t *len);

typedef struct comi_strmap {
    uint32_t *ids;    /* (cap,) id + 1; 0 = empty */
    uint64_t *hashes; /* (cap,) the hash of each occupied slot's key */
    size_t cap;       /* 0 or a power of two */
    size_t n;         /* occupied slots */
    comi_strmap_key_fn key;
    const void *owner;
} comi_strmap;

/* An empty map whose keys are key(owner, id). Allocates nothing. */
void comi_strmap_init(comi_strmap *m, comi_strmap_key_fn key, const void *owner);
void comi_strmap_free(comi_strmap *m);

/* Makes room for n keys without growing again; false with COMI_ERR_LIMIT
 * or COMI_ERR_NOMEM set in e (may be NULL). */
bool comi_strmap_reserve(comi_err *e, comi_strmap *m, size_t n);

/* The id of the key s[0..len), or -1. */
int64_t comi_strmap_find(const comi_strmap *m, const char *s, size_t len);

/* Adds id (id < UINT32_MAX), whose key is key(owner, id). When an equal key
 * is already there its id is replaced by this one (the later id wins) and
 * the previous id is returned in *prev, else *prev = -1 (prev may be NULL).
 * false with the error set in e when the map cannot grow. */
bool comi_strmap_put(comi_err *e, comi_strmap *m, uint32_t id, int64_t *prev);

#endif /* COMI_STRMAP_H */
