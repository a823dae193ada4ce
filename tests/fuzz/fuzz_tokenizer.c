/*
 * fuzz_tokenizer.c — libFuzzer target for tokenizer input (stage 1).
 *
 * Input: byte 0 picks the tokenizer (bit 0: SPM or byte-level BPE) and the
 * mode (bit 1: parse_special); the rest is the text. Two small tokenizers
 * are built per input with the loaders' builder functions (no files
 * needed). Invariants: valid UTF-8 encodes, every id is in range, and
 * decoding without skipping specials gives the text back byte for byte
 * (for SPM only when no special token was split out, since text after one
 * gets llama.cpp's space prefix, and when the text has no U+2581, which
 * SentencePiece decodes as a space); invalid
 * UTF-8 is refused with COMI_ERR_INVALID_ARG.
 */
#include "fuzz.h"
#include "tokenizer_impl.h"

#include <string.h>

static comi_tokenizer *build(bool spm) {
    comi_err e = {0};
    comi_tokenizer *t = NULL;
    static const char *const words[] = {"\xe2\x96\x81",
                                        "\xe2\x96\x81t",
                                        "he",
                                        "\xe2\x96\x81the",
                                        "e",
                                        "t",
                                        "h",
                                        "a",
                                        "\xe2\x96\x81"
                                        "a",
                                        "an",
                                        "\xe2\x96\x81"
                                        "an",
                                        "<s",
                                        "s>"};
    static const char *const specials[] = {"<s>", "</s>", "<|im_start|>", "<tool>"};
    if (spm) {
        int32_t n = 4 + 256 + 13;
        if (tok_new(&e, TOK_KIND_SPM, n, &t)) return NULL;
        t->score = calloc((size_t)n, sizeof *t->score);
        for (int i = 0; i < 4; i++)
            tok_set_piece(&e, t, i, specials[i], strlen(specials[i]));
        t->attr[0] = t->attr[1] = t->attr[2] = TOK_ATTR_CONTROL;
        t->attr[3] = TOK_ATTR_USER_DEFINED;
        for (int b = 0; b < 256; b++) {
            char buf[8];
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            tok_set_piece(&e, t, 4 + b, buf, 6);
            t->attr[4 + b] = TOK_ATTR_BYTE;
        }
        for (int i = 0; i < 13; i++) {
            tok_set_piece(&e, t, 260 + i, words[i], strlen(words[i]));
            if (t->score) t->score[260 + i] = -(float)(i % 5);
        }
        t->add_space_prefix = t->strip_space = t->dec_metaspace = true;
        t->bos = 0;
        t->eos = 1;
        if (!t->score || tok_finalize(&e, t, NULL)) {
            tok_free(t);
            return NULL;
        }
        return t;
    }
    int32_t n = 256 + 4 + 3;
    if (tok_new(&e, TOK_KIND_BPE, n, &t)) return NULL;
    for (int b = 0; b < 256; b++) {
        char buf[4];
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        size_t k = 0;
        if (cp < 0x80)
            buf[k++] = (char)cp;
        else {
            buf[k++] = (char)(0xC0 | (cp >> 6));
            buf[k++] = (char)(0x80 | (cp & 0x3F));
        }
        tok_set_piece(&e, t, b, buf, k);
    }
    for (int i = 0; i < 4; i++)
        tok_set_piece(&e, t, 256 + i, specials[i], strlen(specials[i]));
    t->attr[256] = t->attr[257] = t->attr[258] = TOK_ATTR_CONTROL;
    t->attr[259] = TOK_ATTR_USER_DEFINED;
    tok_set_piece(&e, t, 260, "th", 2);
    tok_set_piece(&e, t, 261, "\xc4\xa0th", 4); /* " th" */
    tok_set_piece(&e, t, 262, "\xc4\xa0the", 5);
    t->byte_level = true;
    t->bos = t->eos = 256;
    static const char re[] =
        "(?:'[sS]|'[tT])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    if (tok_build_map(&e, t) || tok_add_merge(&e, t, "t", 1, "h", 1) ||
        tok_add_merge(&e, t, "\xc4\xa0", 2, "th", 2) ||
        tok_add_merge(&e, t, "\xc4\xa0th", 4, "e", 1) ||
        tok_add_pre_regex(&e, t, re, sizeof re - 1, false, true, "fuzz") ||
        tok_finalize(&e, t, NULL)) {
        tok_free(t);
        return NULL;
    }
    return t;
}

int fuzz_tokenizer(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool spm = data[0] & 1, parse_special = (data[0] >> 1) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    comi_tokenizer *t = build(spm);
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
    tok_free(t);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_tokenizer(data, size);
}
#endif
