/*
 * pool.c — a fixed set of pthread workers that execute pool_for loops.
 * Chunks are claimed from an atomic counter; the caller works too and
 * returns when every chunk has finished.
 *
 * Wake-up: a decode step is ~10 short loops per layer (tens of
 * microseconds each), so sleeping on a condition variable between them
 * costs a context switch per loop per worker. Workers and the waiting
 * caller therefore spin (with a pause instruction) on the job counter for
 * an adaptive budget (up to 0.2 ms, see spin_until) before they sleep on
 * the condition variable; a new job or the last finished chunk wakes
 * sleepers only when someone sleeps. The budget's ceiling is
 * COMI_POOL_SPIN_US in the environment (microseconds; 0 sleeps at once, as
 * the pool did before).
 *
 * Sleeping is a Dekker-style handshake on sequentially consistent atomics:
 * a sleeper announces itself (sleepers / caller_sleeping) and then re-reads
 * the state under the mutex; a waker changes the state and then reads the
 * announcement, taking the mutex to signal. One of the two always sees the
 * other, so no wake-up is lost.
 */
#include "base/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define POOL_SPIN_NS_DEFAULT 200000 /* 0.2 ms */

struct comi_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a new job or shutdown */
    pthread_cond_t done; /* the last worker finished its part of a job */
    atomic_ullong generation; /* bumped per job (after the job is written) */
    atomic_int busy;          /* workers still inside the current job */
    atomic_int sleepers;      /* workers asleep (or about to be) on wake */
    atomic_int caller_sleeping;
    atomic_bool stop;
    long long spin_ns;       /* the most a waiting thread spins */
    long long caller_budget; /* the caller's current spin budget (see spin_until) */
    /* the current job (written before generation is bumped) */
    pool_fn fn;
    void *arg;
    int64_t n, grain, n_chunks;
    atomic_llong next;
    /* pool_scratch buffers (caller thread only) */
    void *scratch[POOL_SCRATCH_SLOTS];
    size_t scratch_bytes[POOL_SCRATCH_SLOTS];
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spins (pause instruction) until cond(p, v) holds or *budget ns pass;
 * true if it holds. The budget adapts per waiting thread: doubled (up to
 * max_ns) when the wait ends while spinning, halved when it runs out. On a
 * machine with more runnable threads than cores a thread we wait for is
 * often descheduled and a spinner only burns its own share (and scheduler
 * credit), so there the budget falls towards zero and the pool behaves as
 * a plain condition-variable pool. */
static bool spin_until(const comi_pool *p, bool (*cond)(const comi_pool *, uint64_t), uint64_t v,
                       long long *budget) {
    if (cond(p, v)) return true;
    if (p->spin_ns <= 0) return false;
    if (*budget < 1000) {
        /* still probe now and then, so an idle machine recovers the budget */
        *budget += 100;
        return false;
    }
    long long deadline = now_ns() + *budget;
    for (unsigned i = 1;; i++) {
        cpu_relax();
        if (cond(p, v)) {
            *budget = *budget * 2 < p->spin_ns ? *budget * 2 : p->spin_ns;
            return true;
        }
        if ((i & 63) == 0 && now_ns() >= deadline) {
            *budget /= 2;
            return false;
        }
    }
}

static bool has_new_job(const comi_pool *p, uint64_t seen) {
    return atomic_load(&p->generation) != seen || atomic_load(&p->stop);
}

static bool job_done(const comi_pool *p, uint64_t unused) {
    (void)unused;
    return atomic_load(&p->busy) == 0;
}

static void run_chunks(comi_pool *p, int worker) {
    for (;;) {
        int64_t c = atomic_fetch_add(&p->next, 1);
        if (c >= p->n_chunks) break;
        int64_t b = c * p->grain;
        int64_t e = b + p->grain < p->n ? b + p->grain : p->n;
        p->fn(p->arg, b, e, worker);
    }
}

typedef struct {
    comi_pool *p;
    int worker;
} worker_arg;

static void *worker_main(void *varg) {
    worker_arg *wa = varg;
    comi_pool *p = wa->p;
    int worker = wa->worker;
    free(wa);
    uint64_t seen = 0;
    long long budget = p->spin_ns;
    for (;;) {
        if (!spin_until(p, has_new_job, seen, &budget)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (!has_new_job(p, seen)) pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load(&p->generation);
        run_chunks(p, worker);
        if (atomic_fetch_sub(&p->busy, 1) == 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

comi_pool *pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    comi_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    p->spin_ns = POOL_SPIN_NS_DEFAULT;
    const char *env = getenv("COMI_POOL_SPIN_US");
    if (env && *env) {
        char *end;
        long long us = strtoll(env, &end, 10);
        if (*end == '\0' && us >= 0 && us <= 1000000) p->spin_ns = us * 1000;
    }
    p->caller_budget = p->spin_ns;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            pool_free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa || (wa->p = p, wa->worker = i,
                        pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0)) {
                free(wa);
                p->n_threads = i; /* only i-1 workers exist */
                pool_free(p);
                return NULL;
            }
        }
    }
    return p;
}

void pool_free(comi_pool *p) {
    if (!p) return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stop, true);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
        free(p->threads);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    for (int i = 0; i < POOL_SCRATCH_SLOTS; i++) free(p->scratch[i]);
    free(p);
}

void *pool_scratch(comi_pool *p, int slot, size_t bytes) {
    if (!p || slot < 0 || slot >= POOL_SCRATCH_SLOTS) return NULL;
    if (bytes == 0) bytes = 1;
    if (p->scratch_bytes[slot] < bytes) {
        free(p->scratch[slot]); /* contents need not survive: no copy */
        /* a quarter more, so a slowly growing need (a KV cache filling up)
         * does not reallocate every step */
        size_t want = bytes + bytes / 4 > bytes ? bytes + bytes / 4 : bytes;
        p->scratch[slot] = malloc(want);
        p->scratch_bytes[slot] = p->scratch[slot] ? want : 0;
    }
    return p->scratch[slot];
}

int pool_threads(const comi_pool *p) {
    return p ? p->n_threads : 1;
}

void pool_for(comi_pool *p, int64_t n, int64_t grain, pool_fn fn, void *arg) {
    if (n <= 0) return;
    int nt = pool_threads(p);
    if (grain <= 0) {
        grain = n / (4 * nt);
        if (grain < 1) grain = 1;
    }
    int64_t n_chunks = (n + grain - 1) / grain;
    if (!p || nt == 1 || n_chunks == 1) {
        for (int64_t b = 0; b < n; b += grain) fn(arg, b, b + grain < n ? b + grain : n, 0);
        return;
    }
    /* workers are all outside run_chunks here (busy was 0 when the last
     * call returned), so the job fields can be written without the lock */
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->grain = grain;
    p->n_chunks = n_chunks;
    atomic_store(&p->next, 0);
    atomic_store(&p->busy, nt - 1);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_chunks(p, 0);
    if (!spin_until(p, job_done, 0, &p->caller_budget)) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeping, 1);
        while (atomic_load(&p->busy) > 0) pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->caller_sleeping, 0);
        pthread_mutex_unlock(&p->mu);
    }
}
