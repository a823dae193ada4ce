/*
 * fuzz_tiny.h — small in-memory fixtures for the fuzz targets: two
 * tokenizers built with the loaders' builder functions (no files), and a
 * one-layer random-weight llama model over the SentencePiece one, written
 * once to the scratch directory, wrapped in a training-free pipeline.
 */
#ifndef COMI_FUZZ_TINY_H
#define COMI_FUZZ_TINY_H

#include "comi.h"
#include "fuzz.h"
#include "formats/gguf.h"
#include "runtime/tokenizer_impl.h"

#include <string.h>

/* spm: a SentencePiece vocabulary (4 specials, 256 byte pieces, 13 words;
 * 273 entries); else a byte-level BPE one (256 bytes, 4 specials, 3
 * merges). NULL when building fails. */
static comi_tokenizer *fuzz_tiny_tokenizer(bool spm) {
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

/* The tiny model's shape: a llama with the SentencePiece vocabulary. */
#define FUZZ_TINY_EMBD 8
#define FUZZ_TINY_FF 16
#define FUZZ_TINY_VOCAB 273

/* Deterministic weights in [-0.5, 0.5). */
static void fuzz_tiny_fill(float *w, size_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        w[i] = (float)(x >> 8) / (float)(1u << 24) - 0.5f;
    }
}

static comi_status fuzz_tiny_tensor(comi_err *e, gguf_writer *w, const char *name, int64_t ne0,
                                    int64_t ne1, uint32_t seed) {
    size_t n = (size_t)(ne0 * ne1);
    float *data = malloc(n * sizeof *data);
    if (!data) return comi_err_set(e, COMI_ERR_NOMEM, "fixture");
    fuzz_tiny_fill(data, n, seed);
    if (ne1 == 1) /* norm weights near 1 */
        for (size_t i = 0; i < n; i++)
            data[i] += 1.0f;
    int64_t ne[2] = {ne0, ne1};
    comi_status st = gguf_writer_add_tensor(e, w, name, COMI_TYPE_F32, ne1 == 1 ? 1 : 2, ne, data,
                                            n * sizeof *data, false);
    free(data);
    return st;
}

/* Writes a random-weight llama of the tiny vocabulary to path: n_layer
 * layers of width d (2 query heads, 1 KV head) and feed-forward width ff,
 * a 4096-position context. */
static comi_status fuzz_tiny_write_model_shape(comi_err *e, const char *path, int n_layer,
                                               int64_t d, int64_t ff) {
    const int64_t v = FUZZ_TINY_VOCAB, hd = d / 2;
    gguf_writer *w = gguf_writer_new();
    if (!w) return comi_err_set(e, COMI_ERR_NOMEM, "fixture");
    comi_status st;
    if ((st = gguf_writer_set_str(e, w, "general.architecture", "llama")) ||
        (st = gguf_writer_set_u32(e, w, "llama.embedding_length", (uint32_t)d)) ||
        (st = gguf_writer_set_u32(e, w, "llama.block_count", (uint32_t)n_layer)) ||
        (st = gguf_writer_set_u32(e, w, "llama.feed_forward_length", (uint32_t)ff)) ||
        (st = gguf_writer_set_u32(e, w, "llama.attention.head_count", 2)) ||
        (st = gguf_writer_set_u32(e, w, "llama.attention.head_count_kv", 1)) ||
        (st = gguf_writer_set_u32(e, w, "llama.context_length", 4096)) ||
        (st = gguf_writer_set_f32(e, w, "llama.attention.layer_norm_rms_epsilon", 1e-5f)) ||
        (st = fuzz_tiny_tensor(e, w, "token_embd.weight", d, v, 1)) ||
        (st = fuzz_tiny_tensor(e, w, "output_norm.weight", d, 1, 2)) ||
        (st = fuzz_tiny_tensor(e, w, "output.weight", d, v, 3)))
        goto done;
    for (int l = 0; l < n_layer; l++) {
        static const char *const names[] = {"attn_norm", "attn_q",   "attn_k",    "attn_v",
                                            "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                                            "ffn_down"};
        const int64_t shape[9][2] = {{d, 1}, {d, d},  {d, hd},  {d, hd}, {d, d},
                                     {d, 1}, {d, ff}, {d, ff}, {ff, d}};
        for (int t = 0; t < 9; t++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[t]);
            /* layer 0 keeps the seeds of the one-layer fixture */
            if ((st = fuzz_tiny_tensor(e, w, name, shape[t][0], shape[t][1],
                                       (uint32_t)(4 + t + 16 * l))))
                goto done;
        }
    }
    st = gguf_writer_write(e, w, path);
done:
    gguf_writer_free(w);
    return st;
}

/* Writes the tiny model (one layer, width 8) to path. */
static comi_status fuzz_tiny_write_model(comi_err *e, const char *path) {
    return fuzz_tiny_write_model_shape(e, path, 1, FUZZ_TINY_EMBD, FUZZ_TINY_FF);
}

/* The tiny pipeline (encoder = decoder = the tiny model, SentencePiece
 * tokenizer), built on first use and kept for the process; NULL when
 * building fails (the message is printed). */
static inline comi_pipeline *fuzz_tiny_pipeline(comi_ctx *ctx) {
    static comi_pipeline *pl;
    static comi_model *model;
    static comi_tokenizer *tok;
    if (pl) return pl;
    char path[512];
    snprintf(path, sizeof path, "%s/comi-fuzz-tiny-%d.gguf", fuzz_scratch_base(), (int)getpid());
    comi_err e = {0};
    if (fuzz_tiny_write_model(&e, path)) {
        fprintf(stderr, "fuzz_tiny: %s\n", e.msg);
        return NULL;
    }
    comi_status st = comi_model_load(ctx, path, NULL, &model);
    remove(path); /* the mapping stays valid */
    if (st) {
        fprintf(stderr, "fuzz_tiny: %s\n", comi_errmsg(ctx));
        return NULL;
    }
    tok = fuzz_tiny_tokenizer(true);
    if (!tok || comi_pipeline_from_models(ctx, model, model, tok, &pl)) {
        fprintf(stderr, "fuzz_tiny: %s\n", tok ? comi_errmsg(ctx) : "tokenizer");
        return NULL;
    }
    return pl;
}

#endif /* COMI_FUZZ_TINY_H */
