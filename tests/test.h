/*
 * test.h — the tiny test harness every tests/test_*.c program uses.
 *
 * A test program prints one line per check outcome:
 *   PASS <name>            FAIL <name>: <why>            SKIP <name>: <why>
 * tests/run.sh counts those lines over all programs and prints the
 * "N passed, N failed, N skipped" summary. A program that crashes or exits
 * non-zero without a FAIL line is counted as one failure.
 */
#ifndef COMI_TEST_H
#define COMI_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int test_n_failed;

static inline void test_pass(const char *name) {
    printf("PASS %s\n", name);
    fflush(stdout);
}

static inline void test_fail(const char *name, const char *fmt, ...) {
    va_list ap;
    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    test_n_failed++;
}

static inline void test_skip(const char *name, const char *fmt, ...) {
    va_list ap;
    printf("SKIP %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Reports name as passed when cond holds, failed with the message otherwise;
 * returns cond. */
static inline int test_check(const char *name, int cond, const char *fmt, ...) {
    if (cond) {
        test_pass(name);
    } else {
        va_list ap;
        printf("FAIL %s: ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        test_n_failed++;
    }
    return cond;
}

/* The directory named by $env, else fallback; NULL when it does not exist. */
static inline const char *test_env_dir(const char *env, const char *fallback) {
    const char *g = getenv(env);
    if (!g || !*g) g = fallback;
    struct stat st;
    if (stat(g, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return g;
}

/* The golden data directory: $COMI_GOLDEN, else ../shared/golden. Returns
 * NULL (and the caller must SKIP loudly) when it does not exist. */
static inline const char *test_golden_dir(void) {
    return test_env_dir("COMI_GOLDEN", "../shared/golden");
}

/* The shared data directory: $COMI_DATA, else ../shared/data; NULL if absent. */
static inline const char *test_data_dir(void) {
    return test_env_dir("COMI_DATA", "../shared/data");
}

/* The real SmolLM2-135M-Instruct GGUF: $COMI_SMOLLM2, else the path
 * scripts/fetch_models.sh prints (it fetches the model once into its cache);
 * malloc'ed, NULL when it cannot be had (callers fail loudly). */
static inline char *test_smollm2_path(void) {
    const char *env = getenv("COMI_SMOLLM2");
    if (env && *env) return strdup(env);
    FILE *p = popen("sh scripts/fetch_models.sh --quiet", "r");
    if (!p) return NULL;
    char buf[4096] = "";
    char *line = fgets(buf, sizeof buf, p);
    int rc = pclose(p);
    if (!line || rc != 0) return NULL;
    buf[strcspn(buf, "\n")] = '\0';
    return *buf ? strdup(buf) : NULL;
}

/* Reads a whole binary file; returns malloc'ed bytes (caller frees) and the
 * size in *len, or NULL when it cannot be read. */
static inline void *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)sz + 1);
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[sz] = '\0';
        *len = (size_t)sz;
    }
    return buf;
}

/* Formats a path into one of four rotating static buffers, so up to four
 * results can be used at once (e.g. as arguments of one call). */
static inline char *test_pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *test_pathf(const char *fmt, ...) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf[k], sizeof buf[k], fmt, ap);
    va_end(ap);
    return buf[k];
}

/* Reads a golden ids file (decimal ids separated by white space); returns
 * malloc'ed ids (caller frees) and their count in *n, or NULL when the file
 * cannot be read. */
static inline int32_t *test_read_ids(const char *path, int64_t *n) {
    size_t len;
    char *txt = test_read_file(path, &len);
    if (!txt) return NULL;
    /* each id takes at least one digit and one separator */
    int32_t *ids = malloc((len / 2 + 2) * sizeof *ids);
    int64_t k = 0;
    char *p = txt, *end;
    for (;;) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        ids[k++] = (int32_t)v;
        p = end;
    }
    free(txt);
    *n = k;
    return ids;
}

/* Reads a raw little-endian float32 file; returns malloc'ed values (caller
 * frees) and their count in *n, or NULL when it cannot be read. */
static inline float *test_read_f32(const char *path, size_t *n) {
    size_t len;
    float *f = test_read_file(path, &len);
    if (f) *n = len / 4;
    return f;
}

/* NMSE(a, b) = sum((a-b)^2) / sum(b^2), b the reference. */
static inline double test_nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? num / den : num;
}

/* Checks NMSE(got, want) <= tol under name, printing the measured value as a
 * comment line. */
static inline void test_check_nmse(const char *name, const float *got, const float *want, size_t n,
                                   double tol) {
    double e = test_nmse(got, want, n);
    printf("# %s nmse %.3g (tolerance %.3g)\n", name, e, tol);
    test_check(name, e <= tol, "NMSE %.3g > %.3g", e, tol);
}

/* The exit status a test program returns from main. */
static inline int test_exit(void) {
    return test_n_failed ? 1 : 0;
}

#endif /* COMI_TEST_H */
