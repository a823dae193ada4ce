/*
 * util.c — error records, checked allocation, file reading/writing and
 * read-only mmaps used by every other module.
 */
#include "base/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

comi_status comi_err_set(comi_err *e, comi_status status, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->status = status;
    }
    return status;
}

void comi_err_clear(comi_err *e) {
    if (e) {
        e->status = COMI_OK;
        e->msg[0] = '\0';
    }
}

void *comi_alloc_array(comi_err *e, size_t n, size_t sz, const char *what) {
    size_t bytes;
    if (!comi_mul_size(n, sz, &bytes)) {
        comi_err_set(e, COMI_ERR_LIMIT, "%s: size %zu x %zu overflows", what, n, sz);
        return NULL;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (!p) comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory allocating %zu bytes", what, bytes);
    return p;
}

void *comi_calloc_array(comi_err *e, size_t n, size_t sz, const char *what) {
    size_t bytes;
    if (!comi_mul_size(n, sz, &bytes)) {
        comi_err_set(e, COMI_ERR_LIMIT, "%s: size %zu x %zu overflows", what, n, sz);
        return NULL;
    }
    void *p = calloc(bytes ? n : 1, bytes ? sz : 1);
    if (!p) comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory allocating %zu bytes", what, bytes);
    return p;
}

comi_status comi_read_file(comi_err *e, const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return comi_err_set(e, COMI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return comi_err_set(e, COMI_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, size);
    }
    size_t got = size ? fread(buf, 1, size, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (got != size || bad) {
        free(buf);
        return comi_err_set(e, COMI_ERR_IO, "%s: read failed after %zu of %zu bytes", path, got,
                            size);
    }
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return COMI_OK;
}

comi_status comi_write_file(comi_err *e, const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return comi_err_set(e, COMI_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t put = len ? fwrite(data, 1, len, f) : 0;
    int bad = (put != len) | (fclose(f) != 0);
    if (bad) return comi_err_set(e, COMI_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return COMI_OK;
}

comi_status comi_mmap_open(comi_err *e, const char *path, comi_mmap *m) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return comi_err_set(e, COMI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return comi_err_set(e, COMI_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return comi_err_set(e, COMI_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    m->data = p;
    m->size = (size_t)st.st_size;
    return COMI_OK;
}

void comi_mmap_close(comi_mmap *m) {
    if (m && m->data) munmap((void *)m->data, m->size);
    if (m) {
        m->data = NULL;
        m->size = 0;
    }
}

double comi_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int32_t comi_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int32_t)n);
}

void comi_free(void *ptr) {
    free(ptr);
}

uint64_t comi_physical_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || psz <= 0) return UINT64_MAX;
    return comi_mul_sat((uint64_t)pages, (uint64_t)psz);
}
