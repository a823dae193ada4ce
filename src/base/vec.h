/*
 * vec.h — the growable-array helper: one checked way to make room in a
 * `T *items; size_t n, cap;` array, instead of a hand-written doubling
 * loop with its own overflow checks in every file.
 *
 *     if (!COMI_VEC_RESERVE(e, v->items, v->cap, v->n + 1, "items")) return e->status;
 *     v->items[v->n++] = x;
 */
#ifndef COMI_VEC_H
#define COMI_VEC_H

#include "base/common.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for `need` elements of `elem` bytes in the array *pp (pp is
 * the address of a T *), whose capacity is *cap elements: grows it to the
 * larger of need and twice *cap (at least 16). On failure the array is
 * left as it was (still the caller's to free), *cap unchanged, and false
 * returned with COMI_ERR_LIMIT (the size overflows) or COMI_ERR_NOMEM set
 * in e (may be NULL), naming what. */
static inline bool comi_vec_reserve(comi_err *e, void *pp, size_t *cap, size_t need, size_t elem,
                                    const char *what) {
    if (need <= *cap) return true;
    size_t nc = *cap > SIZE_MAX / 2 ? need : *cap * 2, bytes;
    if (nc < need) nc = need;
    if (nc < 16) nc = 16;
    if (!comi_mul_size(nc, elem, &bytes)) {
        comi_err_set(e, COMI_ERR_LIMIT, "%s: %zu elements of %zu bytes overflow", what, need, elem);
        return false;
    }
    void *old;
    memcpy(&old, pp, sizeof old); /* T * and void * share their representation (POSIX) */
    void *p = realloc(old, bytes);
    if (!p) {
        comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory for %zu bytes", what, bytes);
        return false;
    }
    memcpy(pp, &p, sizeof p);
    *cap = nc;
    return true;
}

/* comi_vec_reserve on an array lvalue and its size_t capacity lvalue. */
#define COMI_VEC_RESERVE(e, arr, cap, need, what)                                                  \
    comi_vec_reserve((e), &(arr), &(cap), (need), sizeof *(arr), (what))

#endif /* COMI_VEC_H */
