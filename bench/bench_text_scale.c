/* bench_text_scale.c — how text-mode time grows with the input, on shapes
 * chosen to stress each stage (the scaling curve of the README).
 *
 *   build/bench/bench_text_scale [MAX_WORDS] [SHAPE,...] [LIMIT_S]
 *
 * Shapes (synthetic text from a 50,000-word vocabulary, Zipf-like, seeded):
 *   paras    distinct paragraphs of 100 words (blank lines between)
 *   tiny     one-word paragraphs (the many-groups worst case)
 *   onepara  one paragraph of 20-word sentences, no line breaks
 *   onesent  one sentence: no punctuation, no line breaks
 *   lines    30-word lines, single newlines
 *   docs     documents of 100 words (comi_compress_documents, <= 65,535)
 * Sizes 10k, 30k, 100k, 300k, 1M words up to MAX_WORDS (default 1,000,000),
 * ratio 4, lexical encoder, one thread. A shape stops growing once one call
 * takes longer than LIMIT_S seconds (default 20). Prints wall and CPU
 * seconds and words per CPU second per row. */
#include "bench.h"
#include "comi.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* A pseudo-word for rank r: letters from r's digits in base 20. */
static size_t word(char *out, uint64_t r) {
    static const char *syl[20] = {"ka", "to", "mi", "re", "su", "no", "la", "ve", "di", "po",
                                  "ra", "ne", "shi", "ku", "ma", "te", "lo", "ga", "bi", "zu"};
    size_t k = 0;
    do {
        const char *s = syl[r % 20];
        size_t l = strlen(s);
        memcpy(out + k, s, l);
        k += l;
        r /= 20;
    } while (r);
    return k;
}

/* Zipf-like rank in [0, 50000): the square of a uniform variate. */
static uint64_t zipf(void) {
    double u = (double)(next() >> 11) / 9007199254740992.0;
    return (uint64_t)(u * u * u * 50000.0);
}

static char *make(const char *shape, size_t n) {
    char *s = malloc(n * 24 + 64);
    if (!s) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        k += word(s + k, zipf());
        bool last = i + 1 == n;
        if (!strcmp(shape, "paras")) {
            if ((i + 1) % 20 == 0) s[k++] = '.';
            if ((i + 1) % 100 == 0 && !last) { s[k++] = '\n'; s[k++] = '\n'; continue; }
        } else if (!strcmp(shape, "tiny")) {
            if (!last) { s[k++] = '\n'; s[k++] = '\n'; continue; }
        } else if (!strcmp(shape, "onepara") || !strcmp(shape, "docs")) {
            if ((i + 1) % 20 == 0) s[k++] = '.';
            else if ((i + 1) % 7 == 0) s[k++] = ',';
        } else if (!strcmp(shape, "lines")) {
            if ((i + 1) % 10 == 0) s[k++] = '.';
            if ((i + 1) % 30 == 0 && !last) { s[k++] = '\n'; continue; }
        }
        s[k++] = ' ';
    }
    s[k] = '\0';
    return s;
}

int main(int argc, char **argv) {
    size_t max_words = argc > 1 ? (size_t)atoll(argv[1]) : 1000000;
    const char *shapes = argc > 2 ? argv[2] : "paras,tiny,onepara,onesent,lines,docs";
    double limit = argc > 3 ? atof(argv[3]) : 20;
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 1;
    comi_ctx *ctx = comi_ctx_new(&cp);
    if (!ctx) return 1;
    const size_t sizes[] = {10000, 30000, 100000, 300000, 1000000, 3000000};
    const char *q = "when did the kato mire sunola open to ships";
    printf("%-8s %9s %9s %10s %10s %12s %9s\n", "shape", "words", "MB", "wall s", "cpu s",
           "words/cpu-s", "RSS MB");
    char *list = strdup(shapes);
    for (char *sh = strtok(list, ","); sh; sh = strtok(NULL, ",")) {
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0] && sizes[si] <= max_words; si++) {
            size_t n = sizes[si];
            rng = 88172645463325252ull;
            char *text = make(sh, n);
            if (!text) return 1;
            double mb = (double)strlen(text) / 1e6;
            comi_text_params p = comi_text_default_params();
            p.ratio = 4;
            comi_text_result res;
            double t = bench_now_s(), c = bench_thread_cpu_s();
            comi_status st;
            if (!strcmp(sh, "docs")) {
                size_t nd = 0, cap = n / 100 + 2;
                const char **docs = malloc(cap * sizeof *docs);
                char *p0 = text;
                /* cut at every 100th space */
                size_t sp = 0;
                docs[nd++] = p0;
                for (char *x = text; *x; x++)
                    if (*x == ' ' && ++sp % 100 == 0 && x[1] && nd < 65535) {
                        *x = '\0';
                        docs[nd++] = x + 1;
                    }
                st = comi_compress_documents(ctx, docs, nd, q, &p, &res);
                free(docs);
            } else {
                st = comi_compress_text(ctx, text, q, &p, &res);
            }
            double wall = bench_now_s() - t, cpu = bench_thread_cpu_s() - c;
            if (st != COMI_OK) {
                printf("%-8s %9zu failed: %s\n", sh, n, comi_errmsg(ctx));
                free(text);
                break;
            }
            printf("%-8s %9zu %9.2f %10.3f %10.3f %12.0f %9.1f\n", sh, n, mb, wall, cpu, (double)n / (cpu > 0 ? cpu : 1e-9),
                   bench_peak_rss_mib());
            fflush(stdout);
            comi_text_result_free(&res);
            free(text);
            if (wall > limit) break;
        }
    }
    free(list);
    comi_ctx_free(ctx);
    return 0;
}
