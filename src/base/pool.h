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

#include <stddef.h>
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

/* Scratch owned by the pool, reused across calls so that a decode step
 * (one position: ~10 small kernels per layer) allocates nothing: a buffer
 * of at least `bytes` bytes for `slot`, grown when a larger one is asked
 * for, freed by pool_free. Contents are undefined; the buffer stays valid
 * until the next pool_scratch call for the same slot. For the thread that
 * calls pool_for (workers get their part through the job's argument).
 * NULL when p is NULL (the caller allocates its own) or on allocation
 * failure. */
enum { POOL_SCRATCH_MATVEC = 0, POOL_SCRATCH_ATTN = 1, POOL_SCRATCH_SLOTS = 2 };
void *pool_scratch(comi_pool *p, int slot, size_t bytes);

#endif /* COMI_POOL_H */
