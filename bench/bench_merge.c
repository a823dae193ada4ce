/*
 * bench_merge.c — throughput and peak memory of the merge stage
 * (comi_merge, src/comi/mig.c) on random hidden states, one row per
 * configuration: median and fastest wall time over the runs, the median
 * process CPU time of a run (all threads; a load-independent view of the
 * cost on a shared machine), tokens/s (from the median), and
 * the peak RSS of a process that held only that configuration (each runs in
 * a forked child, so ru_maxrss is its own).
 *
 * usage: bench_merge [--runs R] [--threads T] [--quick]
 *        bench_merge --write N D DIR   (writes DIR/context.f32, DIR/query.f32
 *                                       for scripts/bench_merge_cli.sh)
 */
#include "comi.h"
#include "bench.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Uniform values in [-1, 1) from a 64-bit LCG; rows get a shared component
 * in runs of 64 tokens so relevance and redundancy are not all alike. */
static void fill_random(float *a, int64_t n, int64_t d, uint64_t seed) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n * d; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        a[i] = (float)((double)(s >> 40) * (2.0 / 16777216.0) - 1.0);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < d; c++)
            a[i * d + c] += 0.5f * a[(i / 64) * 64 * d + c];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_config(int64_t n, int64_t d, int64_t m, int runs, int threads) {
    size_t count = (size_t)n * (size_t)d;
    float *h = malloc(count * sizeof *h), *q = malloc((size_t)d * sizeof *q);
    if (!h || !q) {
        fprintf(stderr, "bench_merge: out of memory for %lld x %lld\n", (long long)n, (long long)d);
        return 1;
    }
    fill_random(h, n, d, 42);
    fill_random(q, 1, d, 7);
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = threads;
    comi_ctx *ctx = comi_ctx_new(&cp);
    comi_merge_params p = comi_merge_default_params();
    p.merge_size = m;
    double t[64], cpu[64];
    int64_t n_memory = 0;
    for (int r = 0; r < runs; r++) {
        comi_merge_result res;
        double t0 = bench_now_s(), c0 = bench_cpu_s();
        if (comi_merge(ctx, h, n, d, q, &p, &res) != COMI_OK) {
            fprintf(stderr, "bench_merge: %s\n", comi_errmsg(ctx));
            return 1;
        }
        t[r] = bench_now_s() - t0;
        cpu[r] = bench_cpu_s() - c0;
        n_memory = res.n_memory;
        comi_merge_result_free(&res);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    qsort(cpu, (size_t)runs, sizeof cpu[0], cmp_double);
    double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    double in_mb = (double)count * 4 / 1048576.0, rss_mb = bench_peak_rss_mib();
    printf("%-8s %7d %5d %3d %8.4f %8.4f %8.4f %10.0f %9.1f %10.1f %6.2f %6lld\n", "merge", (int)n,
           (int)d, (int)m, med, t[0], cpu[runs / 2], (double)n / med, in_mb, rss_mb, rss_mb / in_mb,
           (long long)n_memory);
    comi_ctx_free(ctx);
    free(h);
    free(q);
    return 0;
}

static int write_input(const char *ns, const char *ds, const char *dir) {
    int64_t n = atoll(ns), d = atoll(ds);
    if (n < 1 || d < 1) {
        fprintf(stderr, "bench_merge --write: bad sizes '%s' '%s'\n", ns, ds);
        return 1;
    }
    char path[4096];
    float *row = malloc((size_t)d * 64 * sizeof *row);
    snprintf(path, sizeof path, "%s/context.f32", dir);
    FILE *f = fopen(path, "wb");
    if (!f || !row) {
        fprintf(stderr, "bench_merge --write: cannot create '%s': %s\n", path, strerror(errno));
        return 1;
    }
    for (int64_t i = 0; i < n; i += 64) { /* 64 rows at a time keeps memory small */
        int64_t k = n - i < 64 ? n - i : 64;
        fill_random(row, k, d, 42 + (uint64_t)i);
        if (fwrite(row, sizeof *row, (size_t)(k * d), f) != (size_t)(k * d)) break;
    }
    int bad = fclose(f) != 0;
    snprintf(path, sizeof path, "%s/query.f32", dir);
    f = fopen(path, "wb");
    fill_random(row, 1, d, 7);
    bad |= !f || fwrite(row, sizeof *row, (size_t)d, f) != (size_t)d || fclose(f) != 0;
    free(row);
    if (bad) fprintf(stderr, "bench_merge --write: writing into '%s' failed\n", dir);
    return bad;
}

int main(int argc, char **argv) {
    int runs = 5, threads = 0, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--write") && i + 3 < argc)
            return write_input(argv[i + 1], argv[i + 2], argv[i + 3]);
        else {
            fprintf(stderr,
                    "usage: bench_merge [--runs R] [--threads T] [--quick] | --write N D DIR\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 64) runs = 5;
    static const int64_t cfg[][3] = {{32768, 4096, 16}, {16384, 4096, 16}, {8192, 3584, 16}};
    int n_cfg = quick ? 1 : 3;
    printf("# merge_size 16, defaults otherwise; %d runs; threads %d (0 = all cores)\n", runs,
           threads);
    printf("%-8s %7s %5s %3s %8s %8s %8s %10s %9s %10s %6s %6s\n", "bench", "n", "d", "m",
           "median_s", "min_s", "cpu_s", "tokens/s", "input_MB", "peakRSS_MB", "RSS/in", "n_mem");
    fflush(stdout);
    for (int c = n_cfg - 1; c >= 0; c--) {
        int64_t n = quick ? 2048 : cfg[c][0], d = cfg[c][1], m = cfg[c][2];
        pid_t pid = fork();
        if (pid < 0) return run_config(n, d, m, runs, threads);
        if (pid == 0) {
            int rc = run_config(n, d, m, runs, threads);
            fflush(stdout);
            _exit(rc);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    }
    return 0;
}
