/*
 * cli.c — argument parsing and file helpers shared by the subcommands.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "comi %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

bool cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi,
                   int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno == ERANGE) {
        cli_error(cmd, "%s: '%s' is not an integer", flag, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_error(cmd, "%s: %lld is out of range [%lld, %lld]", flag, v, (long long)lo,
                  (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_f64(const char *cmd, const char *flag, const char *s, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v)) {
        cli_error(cmd, "%s: '%s' is not a finite number", flag, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_size(const char *cmd, const char *flag, const char *s, uint64_t *out) {
    static const struct {
        const char *name;
        uint64_t mul;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"k", 1ull << 10},
                 {"kib", 1ull << 10},
                 {"m", 1ull << 20},
                 {"mib", 1ull << 20},
                 {"g", 1ull << 30},
                 {"gib", 1ull << 30},
                 {"t", 1ull << 40},
                 {"tib", 1ull << 40},
                 {"kb", 1000ull},
                 {"mb", 1000000ull},
                 {"gb", 1000000000ull},
                 {"tb", 1000000000000ull}};
    const char *p = s;
    uint64_t v = 0;
    bool overflow = false;
    while (*p >= '0' && *p <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            overflow = true;
        p++;
    }
    if (p == s) {
        cli_error(cmd,
                  "%s: '%s' is not a size (bytes, or a number with K, M, G, T, KiB, MiB, "
                  "GiB, TiB, kB, MB, GB or TB)",
                  flag, s);
        return false;
    }
    char unit[4];
    size_t n = strlen(p);
    for (size_t k = 0; k < n && k < sizeof unit - 1; k++)
        unit[k] = (char)(p[k] >= 'A' && p[k] <= 'Z' ? p[k] - 'A' + 'a' : p[k]);
    unit[n < sizeof unit - 1 ? n : sizeof unit - 1] = '\0';
    for (size_t u = 0; n < sizeof unit && u < sizeof units / sizeof units[0]; u++) {
        if (strcmp(unit, units[u].name)) continue;
        if (overflow || __builtin_mul_overflow(v, units[u].mul, &v)) {
            cli_error(cmd, "%s: '%s' is over the largest size, %llu bytes", flag, s,
                      (unsigned long long)UINT64_MAX);
            return false;
        }
        *out = v;
        return true;
    }
    cli_error(cmd,
              "%s: '%s' has an unknown unit '%s' (use K, M, G, T, KiB, MiB, GiB, TiB, kB, "
              "MB, GB or TB)",
              flag, s, p);
    return false;
}

int cli_limit_flag(const char *cmd, int argc, char **argv, int *i, cli_limits *lim) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--max-context-tokens")) {
        int64_t n;
        if (!(v = cli_value(cmd, argc, argv, i)) || !cli_parse_i64(cmd, a, v, 0, INT64_MAX, &n))
            return -1;
        lim->max_context_tokens = n;
        return 1;
    }
    if (!strcmp(a, "--max-memory")) {
        uint64_t b;
        if (!(v = cli_value(cmd, argc, argv, i)) || !cli_parse_size(cmd, a, v, &b)) return -1;
        lim->max_bytes = b;
        return 1;
    }
    return 0;
}

comi_ctx *cli_ctx_new(int32_t n_threads, const cli_limits *lim) {
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = n_threads;
    cp.max_context_tokens = lim->max_context_tokens;
    cp.max_bytes = lim->max_bytes;
    return comi_ctx_new(&cp);
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error(cmd, "missing value for %s", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

bool cli_read_f32(const char *cmd, const char *flag, const char *path, float **data,
                  size_t *count) {
    *data = NULL;
    *count = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error(cmd, "%s: cannot open '%s': %s", flag, path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        cli_error(cmd, "%s: '%s' is not a regular file", flag, path);
        return false;
    }
    size_t size = (size_t)st.st_size;
    if (size % 4 != 0) {
        fclose(f);
        cli_error(cmd, "%s: '%s' has %zu bytes, not a multiple of 4 (float32)", flag, path, size);
        return false;
    }
    float *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        cli_error(cmd, "%s: out of memory reading '%s' (%zu bytes)", flag, path, size);
        return false;
    }
    size_t got = size ? fread(buf, 1, size, f) : 0;
    fclose(f);
    if (got != size) {
        free(buf);
        cli_error(cmd, "%s: short read on '%s'", flag, path);
        return false;
    }
    *data = buf;
    *count = size / 4;
    return true;
}

char *cli_read_file(const char *cmd, const char *flag, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error(cmd, "%s: cannot open '%s': %s", flag, path, strerror(errno));
        return NULL;
    }
    /* buf: cap bytes, the first n read; one byte always kept for the NUL */
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    bool err = ferror(f) != 0;
    fclose(f);
    if (!buf || err) {
        free(buf);
        cli_error(cmd, "%s: cannot read '%s'", flag, path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

bool cli_write_bytes(const char *cmd, const char *path, const void *data, size_t bytes) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        cli_error(cmd, "cannot create '%s': %s", path, strerror(errno));
        return false;
    }
    size_t put = bytes ? fwrite(data, 1, bytes, f) : 0;
    if ((fclose(f) != 0) | (put != bytes)) {
        cli_error(cmd, "write to '%s' failed: %s", path, strerror(errno));
        return false;
    }
    return true;
}

bool cli_stderr_is_tty(void) {
    return isatty(STDERR_FILENO) != 0;
}
