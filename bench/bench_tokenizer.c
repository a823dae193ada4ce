/*
 * bench_tokenizer.c — throughput of tokenization (text -> ids) and
 * detokenization (ids -> text).
 *
 * usage: bench_tokenizer [--golden DIR] [--text FILE] [--mb N] [VOCAB ...]
 *
 * VOCAB names a golden vocabulary (gpt-2, qwen2, llama-bpe, deepseek-coder,
 * llama-spm, phi-3; default: all six) or a path to a .gguf / Hugging Face
 * directory. The text is FILE (default DIR/../DESIGN.md, English prose)
 * repeated to N MiB (default 4). One row per vocabulary: load seconds,
 * encode wall and CPU seconds, MB/s (by CPU time, steadier on a shared
 * machine) and tokens/s, decode MB/s, and the process's peak RSS so far
 * (getrusage ru_maxrss).
 */
#include "bench.h"
#include "comi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

int main(int argc, char **argv) {
    const char *golden = getenv("COMI_GOLDEN");
    if (!golden || !*golden) golden = "../shared/golden";
    const char *text_path = NULL;
    double mb = 4;
    const char *vocabs[32];
    int n_vocabs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--golden") && i + 1 < argc)
            golden = argv[++i];
        else if (!strcmp(argv[i], "--text") && i + 1 < argc)
            text_path = argv[++i];
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = atof(argv[++i]);
        else if (argv[i][0] != '-' && n_vocabs < 32)
            vocabs[n_vocabs++] = argv[i];
        else {
            fprintf(stderr,
                    "usage: bench_tokenizer [--golden DIR] [--text FILE] [--mb N] [VOCAB ...]\n");
            return 2;
        }
    }
    static const char *const all[] = {"gpt-2",          "qwen2",     "llama-bpe",
                                      "deepseek-coder", "llama-spm", "phi-3"};
    if (n_vocabs == 0)
        for (int i = 0; i < 6; i++)
            vocabs[n_vocabs++] = all[i];
    char path[4096];
    if (!text_path) {
        snprintf(path, sizeof path, "%s/../DESIGN.md", golden);
        text_path = path;
    }
    size_t seed_len;
    char *seed = read_file(text_path, &seed_len);
    if (!seed || mb <= 0) {
        fprintf(stderr, "bench_tokenizer: cannot read the text '%s'\n", text_path);
        return 1;
    }
    size_t len = (size_t)(mb * 1024 * 1024);
    char *text = malloc(len);
    if (!text) return 1;
    for (size_t k = 0; k < len; k += seed_len)
        memcpy(text + k, seed, k + seed_len <= len ? seed_len : len - k);
    /* do not end inside a UTF-8 character */
    while (len > 0 && ((unsigned char)text[len - 1] & 0xC0) == 0x80)
        len--;
    if (len > 0 && (unsigned char)text[len - 1] >= 0xC0) len--;
    free(seed);

    comi_ctx *ctx = comi_ctx_new(NULL);
    printf("%-16s %7s %7s %9s %9s %11s %9s %8s\n", "vocab", "load_s", "enc_s", "enc_cpu_s",
           "enc_MB/s", "tokens/s", "dec_MB/s", "rss_MiB");
    for (int v = 0; v < n_vocabs; v++) {
        char vp[4096];
        if (strchr(vocabs[v], '/') || strchr(vocabs[v], '.'))
            snprintf(vp, sizeof vp, "%s", vocabs[v]);
        else
            snprintf(vp, sizeof vp, "%s/tokenizer/ggml-vocab-%s.gguf", golden, vocabs[v]);
        comi_tokenizer *tok = NULL;
        double t0 = bench_now_s();
        if (comi_tokenizer_load(ctx, vp, &tok)) {
            printf("%-16s error: %s\n", vocabs[v], comi_errmsg(ctx));
            continue;
        }
        double t1 = bench_now_s(), c1 = bench_cpu_s();
        comi_tokenize_params p = comi_tokenize_default_params();
        p.add_bos = 0;
        int32_t *ids = NULL;
        size_t n = 0;
        if (comi_tokenize(ctx, tok, text, len, &p, &ids, &n)) {
            printf("%-16s error: %s\n", vocabs[v], comi_errmsg(ctx));
            comi_tokenizer_free(tok);
            continue;
        }
        double t2 = bench_now_s(), c2 = bench_cpu_s();
        char *back = NULL;
        size_t back_len = 0;
        comi_status st = comi_detokenize(ctx, tok, ids, n, false, &back, &back_len);
        double c3 = bench_cpu_s();
        double m = (double)len / 1e6;
        printf("%-16s %7.3f %7.3f %9.3f %9.2f %11.0f %9.1f %8.1f%s\n", vocabs[v], t1 - t0, t2 - t1,
               c2 - c1, m / (c2 - c1), (double)n / (c2 - c1),
               st ? 0.0 : (double)back_len / 1e6 / (c3 - c2), bench_peak_rss_mib(),
               !st && back_len == len && !memcmp(back, text, len) ? "" : "  (no round trip)");
        comi_free(back);
        comi_free(ids);
        comi_tokenizer_free(tok);
    }
    comi_ctx_free(ctx);
    free(text);
    return 0;
}
