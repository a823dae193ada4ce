/*
 * pool.c — a fixed set of pthread workers that execute pool_for loops.
 * Chunks are claimed from an atomic counter; the caller works too and
 * returns when every chunk has finished.
 */
#include "base/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct comi_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a new job or shutdown */
    pthread_cond_t done; /* a worker finished its part of a job */
    uint64_t generation; /* bumped per job */
    int busy;            /* workers still inside the current job */
    bool stop;
    /* the current job */
    pool_fn fn;
    void *arg;
    int64_t n, grain, n_chunks;
    atomic_llong next;
};

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
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, worker);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

comi_pool *pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    comi_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
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
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
        free(p->threads);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
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
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->grain = grain;
    p->n_chunks = n_chunks;
    atomic_store(&p->next, 0);
    p->busy = nt - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
