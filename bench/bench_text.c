/* bench_text.c — text-mode compression speed: one row per configuration
 * (MB of input per second on one core, examples per second, peak RSS).
 *
 *   build/bench/bench_text [DATA.jsonl] [REPEATS]
 *
 * With a COMI JSONL file (default ../shared/data/nq20.jsonl) every example
 * is compressed at 4x, 8x and 32x with the lexical encoder (documents when
 * given), on the calling thread only; the input size counted is the bytes
 * of the texts compressed. Without the file, a synthetic 1 MB text is used.
 * Loading and JSON parsing are timed separately (the "load" row). */
#include "bench.h"
#include "comi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* secs: wall time; cpu: CPU time of this thread (throughput per core is
 * computed from it, so a loaded machine does not hide the code's speed). */
static void row(const char *name, double secs, double cpu, double bytes, size_t n) {
    printf("%-28s %8.3f s %8.3f s %9.1f MB/s %9.0f ex/s %8.1f MB\n", name, secs, cpu,
           bytes / 1e6 / (cpu > 0 ? cpu : 1e-9), (double)n / (cpu > 0 ? cpu : 1e-9),
           bench_peak_rss_mib());
}

static char *synthetic(size_t bytes) {
    static const char *words[] = {"the", "canal", "opened", "in", "1914,", "and", "ships",
                                  "pass", "through", "locks.", "Engineers", "built", "dams",
                                  "across", "rivers;", "workers", "died", "of", "fever."};
    char *s = malloc(bytes + 32);
    size_t k = 0, i = 0;
    uint64_t r = 88172645463325252ull;
    while (k < bytes) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        const char *w = words[r % (sizeof words / sizeof words[0])];
        size_t l = strlen(w);
        memcpy(s + k, w, l);
        k += l;
        s[k++] = (++i % 400 == 0) ? '\n' : ' ';
        if (i % 400 == 0) s[k++] = '\n';
    }
    s[k] = '\0';
    return s;
}

int main(int argc, char **argv) {
    const char *data = argc > 1 ? argv[1] : "../shared/data/nq20.jsonl";
    int repeats = argc > 2 ? atoi(argv[2]) : 1;
    if (repeats < 1) repeats = 1;
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 1;
    comi_ctx *ctx = comi_ctx_new(&cp);
    printf("%-28s %10s %10s %14s %14s %11s\n", "config", "wall", "cpu", "MB/s per core",
           "examples/s", "peak RSS");
    double t0 = bench_now_s(), c0 = bench_thread_cpu_s();
    comi_dataset *ds = NULL;
    if (comi_dataset_load(ctx, data, false, &ds) != COMI_OK) {
        fprintf(stderr, "bench_text: %s; using a synthetic 1 MB text\n", comi_errmsg(ctx));
        char *text = synthetic(1 << 20);
        const double ratios[] = {4, 8, 32};
        for (int r = 0; r < 3; r++) {
            comi_text_params p = comi_text_default_params();
            p.ratio = ratios[r];
            double t = bench_now_s(), c = bench_thread_cpu_s();
            for (int k = 0; k < repeats; k++) {
                comi_text_result res;
                if (comi_compress_text(ctx, text, "when did the canal open to ships", &p, &res) !=
                    COMI_OK) {
                    fprintf(stderr, "bench_text: %s\n", comi_errmsg(ctx));
                    return 1;
                }
                comi_text_result_free(&res);
            }
            char name[64];
            snprintf(name, sizeof name, "synthetic-1MB %gx", ratios[r]);
            row(name, bench_now_s() - t, bench_thread_cpu_s() - c, (double)strlen(text) * repeats, (size_t)repeats);
        }
        free(text);
        comi_ctx_free(ctx);
        return 0;
    }
    double in_bytes = 0;
    for (size_t i = 0; i < ds->n_examples; i++) {
        const comi_example *x = &ds->examples[i];
        if (x->n_documents)
            for (size_t d = 0; d < x->n_documents; d++) in_bytes += (double)strlen(x->documents[d]);
        else in_bytes += (double)strlen(x->input);
    }
    row("load+parse JSONL", bench_now_s() - t0, bench_thread_cpu_s() - c0, in_bytes, ds->n_examples);
    const double ratios[] = {4, 8, 32};
    for (int r = 0; r < 3; r++) {
        comi_text_params p = comi_text_default_params();
        double t = bench_now_s(), c = bench_thread_cpu_s();
        for (int k = 0; k < repeats; k++)
            for (size_t i = 0; i < ds->n_examples; i++) {
                const comi_example *x = &ds->examples[i];
                p.target_tokens = comi_text_count_tokens(x->input) / (int64_t)ratios[r];
                if (p.target_tokens < 1) p.target_tokens = 1;
                comi_text_result res;
                comi_status st =
                    x->n_documents
                        ? comi_compress_documents(ctx, (const char *const *)x->documents,
                                                  x->n_documents, x->prompt, &p, &res)
                        : comi_compress_text(ctx, x->input, x->prompt, &p, &res);
                if (st != COMI_OK) {
                    fprintf(stderr, "bench_text: line %lld: %s\n", (long long)x->line,
                            comi_errmsg(ctx));
                    return 1;
                }
                comi_text_result_free(&res);
            }
        char name[64];
        const char *base = strrchr(data, '/');
        snprintf(name, sizeof name, "%s lexical %gx", base ? base + 1 : data, ratios[r]);
        row(name, bench_now_s() - t, bench_thread_cpu_s() - c, in_bytes * repeats, ds->n_examples * (size_t)repeats);
    }
    comi_dataset_free(ds);
    comi_ctx_free(ctx);
    return 0;
}
