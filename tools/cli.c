/*
 * cli.c — what the subcommands share besides option parsing (opt.c): error
 * lines, reading input files (`-`: standard input), writing outputs, the
 * context with the limits.
 */
#include "cli.h"

#include <errno.h>
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

comi_ctx *cli_ctx_new(int32_t n_threads, const cli_limits *lim) {
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = n_threads;
    cp.max_context_tokens = lim->max_context_tokens;
    cp.max_bytes = lim->max_bytes;
    cp.kv_type = lim->kv_type;
    return comi_ctx_new(&cp);
}

bool cli_parse_kv_type(const char *value, void *target, char *err, size_t errsz) {
    int32_t *kv = target;
    if (!strcmp(value, "f32") || !strcmp(value, "F32")) *kv = COMI_KV_F32;
    else if (!strcmp(value, "f16") || !strcmp(value, "F16")) *kv = COMI_KV_F16;
    else return snprintf(err, errsz, "'%s' is not f32 or f16", value), false;
    return true;
}

bool cli_read_f32(const char *cmd, const char *flag, const char *path, float **data,
                  size_t *count) {
    *data = NULL;
    *count = 0;
    if (!strcmp(path, "-")) {
        size_t len = 0;
        char *buf = cli_read_file(cmd, flag, path, &len);
        if (!buf) return false;
        if (len % 4 != 0) {
            free(buf);
            cli_error(cmd, "%s: standard input has %zu bytes, not a multiple of 4 (float32)",
                      flag, len);
            return false;
        }
        *data = (float *)(void *)buf;
        *count = len / 4;
        return true;
    }
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
    bool is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
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
    if (!is_stdin) fclose(f);
    if (!buf || err) {
        free(buf);
        cli_error(cmd, "%s: cannot read '%s'", flag, is_stdin ? "standard input" : path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

char *cli_read_text(const char *cmd, const char *flag, const char *path) {
    size_t len = 0;
    char *buf = cli_read_file(cmd, flag, path, &len);
    if (buf && strlen(buf) != len) {
        free(buf);
        cli_error(cmd, "%s: '%s' contains a NUL byte (not UTF-8 text)", flag,
                  strcmp(path, "-") ? path : "standard input");
        return NULL;
    }
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

void cli_print_ids(const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    printf("\n");
}

bool cli_stderr_is_tty(void) {
    return isatty(STDERR_FILENO) != 0;
}
