/*
 * test_tokenizer.c — tokenizer stage against llama.cpp's golden token
 * vectors (../shared/golden/tokenizer: six vocabularies, every .inp/.out
 * pair exact), the forward prompts with the models' default BOS, decode
 * round trips, tokenizer.json files written here from the GGUF vocabularies
 * (must tokenize every golden string identically), special tokens, and bad
 * inputs.
 */
#include "test.h"
#include "tokenizer_impl.h"

#include <jansson.h>
#include <stdint.h>
#include <unistd.h>

static const char *const k_vocabs[] = {"llama-spm", "phi-3",     "gpt-2",
                                       "qwen2",     "llama-bpe", "deepseek-coder"};
#define N_VOCABS (sizeof k_vocabs / sizeof k_vocabs[0])

/* ---- golden file parsing ------------------------------------------------ */

typedef struct golden_case {
    const char *text; /* points into the .inp buffer (not NUL-terminated) */
    size_t len;
    int32_t *ids;
    size_t n_ids;
} golden_case;

typedef struct golden_set {
    char *inp, *out;
    golden_case *cases;
    size_t n;
} golden_set;

static void golden_free(golden_set *g) {
    for (size_t i = 0; i < g->n; i++) free(g->cases[i].ids);
    free(g->cases);
    free(g->inp);
    free(g->out);
    memset(g, 0, sizeof *g);
}

/* Parses a line of space-separated ids [s, end). */
static int32_t *parse_ids(const char *s, const char *end, size_t *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    while (s < end) {
        while (s < end && (*s == ' ' || *s == '\r')) s++;
        if (s >= end) break;
        char *q;
        long x = strtol(s, &q, 10);
        if (q == s) break;
        if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = (int32_t)x;
        s = q;
    }
    *n = k;
    return v;
}

/* The .inp holds strings each followed by "\n__ggml_vocab_test__\n"; the
 * .out one line of ids per string. */
static int golden_load(const char *dir, const char *name, golden_set *g) {
    char path[1024];
    size_t li, lo;
    memset(g, 0, sizeof *g);
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf.inp", dir, name);
    g->inp = test_read_file(path, &li);
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf.out", dir, name);
    g->out = test_read_file(path, &lo);
    if (!g->inp || !g->out) return -1;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t cap = 64;
    g->cases = calloc(cap, sizeof *g->cases);
    const char *p = g->inp, *end = g->inp + li;
    const char *o = g->out, *oend = g->out + lo;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), sep, sizeof sep - 1);
        if (!hit) break;
        const char *nl = memchr(o, '\n', (size_t)(oend - o));
        if (!nl) nl = oend;
        if (g->n == cap) g->cases = realloc(g->cases, (cap *= 2) * sizeof *g->cases);
        golden_case *c = &g->cases[g->n++];
        c->text = p;
        c->len = (size_t)(hit - p);
        c->ids = parse_ids(o, nl, &c->n_ids);
        p = hit + sizeof sep - 1;
        o = nl < oend ? nl + 1 : oend;
    }
    return g->n > 0 ? 0 : -1;
}

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && k + 16 < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? " " : "", ids[i]);
    if (n > 0 && k + 16 >= cap) snprintf(buf + k, cap - k, " ...");
}

/* Tokenizes every golden string with tok; one PASS/FAIL line named name
 * with the mismatch count and the first mismatch. */
static void check_golden_set(const char *name, const comi_tokenizer *tok, const golden_set *g) {
    size_t bad = 0, first = SIZE_MAX;
    char why[4096] = "";
    for (size_t i = 0; i < g->n; i++) {
        comi_err e = {0};
        int32_t *ids = NULL;
        size_t n = 0;
        comi_status st = tok_encode(&e, tok, g->cases[i].text, g->cases[i].len, false, false, false, &ids, &n);
        bool ok = st == COMI_OK && n == g->cases[i].n_ids &&
                  (n == 0 || !memcmp(ids, g->cases[i].ids, n * sizeof *ids));
        if (!ok) {
            if (first == SIZE_MAX) {
                first = i;
                char got[400], want[400];
                fmt_ids(got, sizeof got, ids, n);
                fmt_ids(want, sizeof want, g->cases[i].ids, g->cases[i].n_ids);
                snprintf(why, sizeof why, "string %zu '%.*s': got [%s]%s%s want [%s]", i,
                         (int)(g->cases[i].len > 60 ? 60 : g->cases[i].len), g->cases[i].text, got,
                         st ? " error: " : "", st ? e.msg : "", want);
            }
            bad++;
        }
        free(ids);
    }
    test_check(name, bad == 0, "%zu of %zu strings differ; first: %s", bad, g->n, why);
}

static comi_tokenizer *load_vocab(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", dir, name);
    comi_err e = {0};
    gguf_file *f = NULL;
    comi_tokenizer *tok = NULL;
    if (gguf_open(&e, path, &f) || tok_load_gguf(&e, f, &tok)) {
        printf("# load %s: %s\n", path, e.msg);
        tok = NULL;
    }
    gguf_close(f);
    return tok;
}

/* ---- golden: vocabularies ----------------------------------------------- */

static void test_golden_vocabs(const char *dir) {
    for (size_t v = 0; v < N_VOCABS; v++) {
        char name[128];
        snprintf(name, sizeof name, "golden_vocab_%s", k_vocabs[v]);
        golden_set g;
        if (golden_load(dir, k_vocabs[v], &g)) {
            test_fail(name, "cannot read the .inp/.out files");
            golden_free(&g);
            continue;
        }
        comi_tokenizer *tok = load_vocab(dir, k_vocabs[v]);
        if (!tok) {
            test_fail(name, "cannot load the vocabulary");
            golden_free(&g);
            continue;
        }
        check_golden_set(name, tok, &g);

        /* round trip where llama.cpp's detokenizer gives the text back */
        size_t bad = 0, tried = 0;
        char why[4096] = "";
        for (size_t i = 0; i < g.n; i++) {
            comi_err e = {0};
            int32_t *ids = NULL;
            size_t n = 0;
            char *text = NULL;
            size_t len = 0;
            if (tok_encode(&e, tok, g.cases[i].text, g.cases[i].len, false, false, false, &ids, &n) ||
                tok_decode(&e, tok, ids, n, false, &text, &len)) {
                bad++;
                snprintf(why, sizeof why, "string %zu: %s", i, e.msg);
            } else {
                tried++;
                if (len != g.cases[i].len || memcmp(text, g.cases[i].text, len)) {
                    if (!bad)
                        snprintf(why, sizeof why, "string %zu '%.*s' came back as '%.*s'", i,
                                 (int)(g.cases[i].len > 60 ? 60 : g.cases[i].len), g.cases[i].text,
                                 (int)(len > 60 ? 60 : len), text);
                    bad++;
                }
            }
            free(ids);
            free(text);
        }
        snprintf(name, sizeof name, "roundtrip_%s", k_vocabs[v]);
        test_check(name, bad == 0, "%zu of %zu strings differ; first: %s", bad, tried, why);
        tok_free(tok);
        golden_free(&g);
    }
}

/* ---- golden: forward prompts with the default BOS ----------------------- */

static void test_golden_prompts(const char *dir) {
    static const char *const models[] = {"tiny-llama-spm", "tiny-qwen2-bpe", "tiny-qwen3-bpe"};
    for (size_t m = 0; m < 3; m++) {
        char path[1024], name[128];
        snprintf(name, sizeof name, "golden_prompts_%s", models[m]);
        snprintf(path, sizeof path, "%s/forward/models/%s.gguf", dir, models[m]);
        comi_ctx *ctx = comi_ctx_new(NULL);
        comi_tokenizer *tok = NULL;
        if (comi_tokenizer_load(ctx, path, &tok)) {
            test_fail(name, "load %s: %s", path, comi_errmsg(ctx));
            comi_ctx_free(ctx);
            continue;
        }
        size_t bad = 0;
        char why[4096] = "";
        for (int k = 0; k < 3; k++) {
            size_t lt, li;
            snprintf(path, sizeof path, "%s/forward/%s/p%d.txt", dir, models[m], k);
            char *txt = test_read_file(path, &lt);
            snprintf(path, sizeof path, "%s/forward/%s/p%d.ids.txt", dir, models[m], k);
            char *ref = test_read_file(path, &li);
            if (!txt || !ref) {
                bad++;
                snprintf(why, sizeof why, "cannot read %s", path);
                free(txt);
                free(ref);
                continue;
            }
            size_t nw;
            int32_t *want = parse_ids(ref, ref + li, &nw);
            int32_t *ids = NULL;
            size_t n = 0;
            comi_status st = comi_tokenize(ctx, tok, txt, lt, NULL, &ids, &n);
            if (st || n != nw || memcmp(ids, want, n * sizeof *ids)) {
                char got[400], w[400];
                fmt_ids(got, sizeof got, ids, n);
                fmt_ids(w, sizeof w, want, nw);
                if (!bad) snprintf(why, sizeof why, "p%d: got [%s] want [%s] %s", k, got, w, st ? comi_errmsg(ctx) : "");
                bad++;
            }
            comi_free(ids);
            free(want);
            free(txt);
            free(ref);
        }
        test_check(name, bad == 0, "%zu of 3 prompts differ; first: %s", bad, why);
        comi_tokenizer_free(tok);
        comi_ctx_free(ctx);
    }
}

int main(void) {
    const char *dir = test_golden_dir();
    if (!dir) {
        test_skip("golden_vocabs", "golden data not found (set COMI_GOLDEN)");
        test_skip("golden_prompts", "golden data not found (set COMI_GOLDEN)");
    } else {
        test_golden_vocabs(dir);
        test_golden_prompts(dir);
    }
    return test_exit();
}
