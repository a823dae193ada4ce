/*
 * bench_bandwidth.c — STREAM-like read bandwidth, and the decode floor it
 * implies for a model.
 *
 * usage: bench_bandwidth [--mib N] [--threads T] [--reps R] [--model M.gguf]
 *
 * Reads a buffer of N MiB (default 1024, well beyond any cache) with T
 * threads (default 2), each summing its contiguous share with 256-bit loads
 * (AVX2, chosen at run time; 64-bit loads otherwise), R times (default 7).
 * Prints the best and median GB/s (1e9 bytes/s), on the wall clock and per
 * thread CPU-second (what the threads read while they ran: on a machine
 * shared with other jobs the wall figure mostly measures the scheduler).
 * With --model it also
 * prints the bytes a decode step reads (every weight tensor once: with
 * tied embeddings, as SmolLM2 has, the table is read once as the output
 * matrix; an untied model's input table, of which a step reads one row, is
 * counted too, so there it is an over-estimate; the KV cache, small at short
 * contexts, is left out) and the tokens/s that bandwidth allows: the floor
 * a memory-bound decode cannot beat.
 */
#include "bench.h"
#include "comi.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    return out[0] + out[1] + out[2] + out[3];
}
#endif

static uint64_t sum_scalar(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) {
        a0 += q[i];
        a1 += q[i + 1];
        a2 += q[i + 2];
        a3 += q[i + 3];
    }
    return a0 + a1 + a2 + a3;
}

typedef struct {
    const uint8_t *p;
    size_t n;
    int avx2;
    uint64_t sum;
    double cpu_s; /* the reader thread's CPU seconds */
} part;

static void *reader(void *arg) {
    part *w = arg;
    double c0 = bench_thread_cpu_s();
#ifdef HAVE_AVX2_PATH
    w->sum = w->avx2 ? sum_avx2(w->p, w->n) : sum_scalar(w->p, w->n);
#else
    w->sum = sum_scalar(w->p, w->n);
#endif
    w->cpu_s = bench_thread_cpu_s() - c0;
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long mib = 1024;
    int threads = 2, reps = 7;
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = atol(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else {
            fprintf(stderr, "usage: bench_bandwidth [--mib N] [--threads T] [--reps R] [--model M]\n");
            return 2;
        }
    }
    if (mib < 1 || threads < 1 || threads > 256 || reps < 1 || reps > 1000) {
        fprintf(stderr, "bench_bandwidth: bad --mib, --threads or --reps\n");
        return 2;
    }
    int avx2 = 0;
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2");
#endif
    size_t n = (size_t)mib << 20;
    uint8_t *buf = aligned_alloc(4096, n);
    if (!buf) {
        fprintf(stderr, "bench_bandwidth: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)i; /* touch every page */
    size_t share = (n / (size_t)threads) & ~(size_t)4095;
    double *gbs = malloc((size_t)reps * sizeof *gbs), *gbs_cpu = malloc((size_t)reps * sizeof *gbs);
    pthread_t *th = malloc((size_t)threads * sizeof *th);
    part *parts = malloc((size_t)threads * sizeof *parts);
    uint64_t check = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_s();
        for (int t = 0; t < threads; t++) {
            parts[t] = (part){buf + (size_t)t * share, share, avx2, 0, 0};
            pthread_create(&th[t], NULL, reader, &parts[t]);
        }
        double cpu = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            check += parts[t].sum;
            cpu += parts[t].cpu_s;
        }
        gbs[r] = (double)share * threads / (bench_now_s() - t0) / 1e9;
        /* as if each thread had its core to itself: bytes per thread-CPU-second x threads */
        gbs_cpu[r] = cpu > 0 ? (double)share * threads / (cpu / threads) / 1e9 : 0;
    }
    qsort(gbs, (size_t)reps, sizeof *gbs, cmp_double);
    qsort(gbs_cpu, (size_t)reps, sizeof *gbs_cpu, cmp_double);
    double best = gbs[reps - 1], med = gbs[reps / 2];
    printf("read bandwidth: %ld MiB, %d threads, %s loads: wall best %.2f GB/s, median %.2f GB/s; "
           "per thread-CPU-time (cores to ourselves) best %.2f, median %.2f GB/s (checksum %llu)\n",
           mib, threads, avx2 ? "256-bit" : "64-bit", best, med, gbs_cpu[reps - 1],
           gbs_cpu[reps / 2], (unsigned long long)(check & 0xff));
    if (model) {
        comi_ctx *ctx = comi_ctx_new(NULL);
        comi_model *m = NULL;
        if (!ctx || comi_model_load(ctx, model, NULL, &m)) {
            fprintf(stderr, "bench_bandwidth: %s\n", ctx ? comi_errmsg(ctx) : "out of memory");
            return 1;
        }
        comi_model_info in;
        comi_model_get_info(m, &in);
        double bytes = (double)in.weight_bytes;
        printf("model %s: %s, %.1f MiB of weights read per decode step; bandwidth ceiling on decode: "
               "wall best %.1f tokens/s (median %.1f), CPU-time best %.1f tokens/s (median %.1f)\n",
               model, in.weight_type, bytes / 1048576.0, best * 1e9 / bytes, med * 1e9 / bytes,
               gbs_cpu[reps - 1] * 1e9 / bytes, gbs_cpu[reps / 2] * 1e9 / bytes);
        comi_model_free(m);
        comi_ctx_free(ctx);
    }
    free(buf);
    free(gbs);
    free(gbs_cpu);
    free(th);
    free(parts);
    return 0;
}
