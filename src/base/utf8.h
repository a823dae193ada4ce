/*
 * utf8.h — UTF-8 decoding, validation and lossy repair, the one copy the
 * library uses (built on utf8proc's decoder, RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF).
 */
#ifndef COMI_UTF8_H
#define COMI_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence at p, which has `left` bytes,
 * and its code point in *cp (may be NULL); 0 when p does not start a valid
 * sequence (or left is 0). */
size_t comi_utf8_decode(const char *p, size_t left, uint32_t *cp);

/* Offset of the first byte of s[0..len) that does not start a valid
 * sequence, or len when all of it is valid UTF-8. NUL bytes are valid. */
size_t comi_utf8_first_invalid(const char *s, size_t len);

/* Encodes cp (< 0x110000) into out (room for 4 bytes); returns the bytes
 * written (1..4). */
size_t comi_utf8_put(uint32_t cp, char *out);

/* A NUL-terminated copy of s[0..len) in which every byte that does not
 * start a valid sequence, and every NUL, becomes U+FFFD (EF BF BD): text
 * that may end inside a character (generated ids, a cut buffer) made safe
 * for JSON and printing. Free with free(); NULL when out of memory. */
char *comi_utf8_lossy(const char *s, size_t len);

#endif /* COMI_UTF8_H */
