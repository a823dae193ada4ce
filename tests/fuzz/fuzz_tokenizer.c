/*
 * fuzz_tokenizer.c — libFuzzer target for tokenizer input (stage 1).
 *
 * Input: byte 0 picks the tokenizer (bit 0: SPM or byte-level BPE) and the
 * mode (bit 1: parse_special); the rest is the text. Two small tokenizers
 * are built once with the loaders' builder functions (no files needed).
 * Invariants: valid UTF-8 encodes, every id is in range, and
 * decoding without skipping specials gives the text back byte for byte
 * (for SPM only when no special token was split out, since text after one
 * gets llama.cpp's space prefix, and when the text has no U+2581, which
 * SentencePiece decodes as a space); invalid
 * UTF-8 is refused with COMI_ERR_INVALID_ARG.
 */
#include "fuzz.h"
#include "fuzz_tiny.h"

#include <string.h>

int fuzz_tokenizer(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool spm = data[0] & 1, parse_special = (data[0] >> 1) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    /* Built once per kind and reused, as a loaded tokenizer is: building
     * (PCRE2 compilation included) costs more than most encodes. */
    static comi_tokenizer *built[2];
    if (!built[spm]) built[spm] = fuzz_tiny_tokenizer(spm);
    comi_tokenizer *t = built[spm];
    FUZZ_CHECK(t != NULL);
    comi_err e = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    comi_status st = tok_encode(&e, t, text, len, false, false, parse_special, &ids, &n);
    if (st == COMI_OK) {
        bool special = false;
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(ids[i] >= 0 && ids[i] < tok_n_vocab(t));
            special = special || (tok_attr(t, ids[i]) & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED));
        }
        char *back = NULL;
        size_t back_len = 0;
        FUZZ_CHECK(tok_decode(&e, t, ids, n, false, &back, &back_len) == COMI_OK);
        bool has_meta = memmem(text, len, "\xe2\x96\x81", 3) != NULL;
        if (!spm || (!special && !has_meta))
            FUZZ_CHECK(back_len == len && !memcmp(back, text, len));
        free(back);
    } else {
        FUZZ_CHECK(st == COMI_ERR_INVALID_ARG && strstr(e.msg, "invalid UTF-8"));
    }
    free(ids);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_tokenizer(data, size);
}
#endif
