/*
 * utf8.c — UTF-8 decoding, validation and lossy repair (see utf8.h).
 */
#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

size_t comi_utf8_decode(const char *p, size_t left, uint32_t *cp) {
    if (left == 0) return 0;
    const uint8_t *u = (const uint8_t *)p;
    if (u[0] < 0x80) {
        if (cp) *cp = u[0];
        return 1;
    }
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate(u, (utf8proc_ssize_t)(left < 4 ? left : 4), &c);
    if (n <= 0 || c < 0) return 0;
    if (cp) *cp = (uint32_t)c;
    return (size_t)n;
}

size_t comi_utf8_first_invalid(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if ((uint8_t)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = comi_utf8_decode(s + i, len - i, NULL);
        if (n == 0) return i;
        i += n;
    }
    return len;
}

size_t comi_utf8_put(uint32_t cp, char *out) {
    return (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out);
}

char *comi_utf8_lossy(const char *s, size_t len) {
    size_t cap; /* each input byte becomes at most 3 output bytes, plus the NUL */
    if (__builtin_mul_overflow(len, (size_t)3, &cap) || __builtin_add_overflow(cap, 1, &cap))
        return NULL;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = s[i] ? comi_utf8_decode(s + i, len - i, NULL) : 0;
        if (n) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}
