/*
 * pool.h — a small pthread pool for data-parallel loops.
 *
 * pool_for splits [0, n) into chunks of `grain` items (the last may be
 * shorter) and runs fn on each chunk on some worker; chunk boundaries depend
 * only on n and grain, never on the thread count, so kernels that write
 * disjoint outputs per chunk give the same results for any thread count.
 */
#ifndef COMI_POOL_H
#define COMI_POOL_H

#include <stdint.h>

typedef struct comi_pool comi_pool;

/* fn(arg, begin, end, worker): process items [begin, end); worker is in
 * [0, pool_threads(p)) and identifies per-thread scratch. */
typedef void (*pool_fn)(void *arg, int64_t begin, int64_t end, int worker);

/* n_threads >= 1 (the calling thread counts as one). NULL on failure. */
comi_pool *pool_new(int n_threads);
void pool_free(comi_pool *p);
int pool_threads(const comi_pool *p);

/* Runs fn over [0, n) in chunks of grain (grain <= 0 means an even split
 * into about 4 chunks per thread); returns when every chunk is done. Calls
 * on one pool must not overlap (a pool belongs to one comi_ctx). p may be
 * NULL: then everything runs on the calling thread. */
void pool_for(comi_pool *p, int64_t n, int64_t grain, pool_fn fn, void *arg);

#endif /* COMI_POOL_H */
