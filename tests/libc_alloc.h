/* tests/libc_alloc.h — for the tests that replace malloc, calloc, realloc
 * and free with counting versions (test_decode_alloc.c, test_text_nomem.c):
 * glibc's own allocator entry points, which the replacements forward to, and
 * the prototypes of the replacements (defined by the including test).
 * glibc only; not under AddressSanitizer, which owns malloc itself. */
#ifndef COMI_TESTS_LIBC_ALLOC_H
#define COMI_TESTS_LIBC_ALLOC_H

#include <stddef.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t sz);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

void *malloc(size_t n);
void *calloc(size_t n, size_t sz);
void *realloc(void *p, size_t n);
void free(void *p);

#endif
