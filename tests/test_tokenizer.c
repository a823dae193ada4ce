/*
 * test_tokenizer.c — tokenizer stage against llama.cpp's golden token
 * vectors (../shared/golden/tokenizer: six vocabularies, every .inp/.out
 * pair exact), the forward prompts with the models' default BOS, decode
 * round trips, tokenizer.json files written here from the GGUF vocabularies
 * (must tokenize every golden string identically), special tokens, and bad
 * inputs.
 */
#include "test.h"
#include "runtime/tokenizer_impl.h"

#include <jansson.h>
#include <pthread.h>
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
    for (size_t i = 0; i < g->n; i++)
        free(g->cases[i].ids);
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
        while (s < end && (*s == ' ' || *s == '\r'))
            s++;
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
    size_t li = 0, lo = 0;
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
    for (size_t i = 0; i < n && k + 16 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? " " : "", ids[i]);
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
        comi_status st =
            tok_encode(&e, tok, g->cases[i].text, g->cases[i].len, false, false, false, &ids, &n);
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
            if (tok_encode(&e, tok, g.cases[i].text, g.cases[i].len, false, false, false, &ids,
                           &n) ||
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
                if (!bad)
                    snprintf(why, sizeof why, "p%d: got [%s] want [%s] %s", k, got, w,
                             st ? comi_errmsg(ctx) : "");
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

/* ---- tokenizer.json written from a GGUF vocabulary ---------------------- */

typedef struct spm_merge {
    float score;
    int32_t id, l, r;
} spm_merge;

static int cmp_spm_merge(const void *a, const void *b) {
    const spm_merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

static json_t *jpiece(const comi_tokenizer *tok, int32_t id) {
    size_t len;
    const char *p = tok_piece(tok, id, &len);
    return json_stringn(p, len);
}

/* Writes DIR/tokenizer.json equivalent to the GGUF vocabulary `name`, the
 * way Hugging Face serializes that family: style "bytelevel" (GPT-2:
 * ByteLevel pre-tokenizer with its own regex), "split" (Split regexes then
 * ByteLevel without regex; digits adds Digits(individual)), "spm"
 * (LLaMA-2: BPE with byte_fallback, Prepend/Replace normalizer, merges built
 * from the scores as HF's SentencePiece converter does). */
static int write_fixture(const char *golden, const char *name, const char *dir, const char *style,
                         const char *const *regexes, bool digits, bool ignore_merges) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", golden, name);
    comi_err e = {0};
    gguf_file *f = NULL;
    comi_tokenizer *tok = NULL;
    if (gguf_open(&e, path, &f) || tok_load_gguf(&e, f, &tok)) {
        printf("# fixture %s: %s\n", name, e.msg);
        gguf_close(f);
        return -1;
    }
    json_t *root = json_object(), *model = json_object(), *vocab = json_object();
    json_t *added = json_array(), *merges = json_array();
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        size_t len;
        const char *p = tok_piece(tok, id, &len);
        char key[1024];
        if (len >= sizeof key) continue;
        memcpy(key, p, len);
        key[len] = '\0';
        json_object_set_new(vocab, key, json_integer(id));
        uint8_t a = tok->attr[id];
        if (a & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN | TOK_ATTR_USER_DEFINED)) {
            json_t *t = json_object();
            json_object_set_new(t, "id", json_integer(id));
            json_object_set_new(t, "content", jpiece(tok, id));
            json_object_set_new(t, "special", json_boolean(!(a & TOK_ATTR_USER_DEFINED)));
            json_array_append_new(added, t);
        }
    }
    if (!strcmp(style, "spm")) {
        size_t cap = 1 << 16, n = 0;
        spm_merge *m = malloc(cap * sizeof *m);
        for (int32_t id = 0; id < tok->n_vocab; id++) {
            size_t len;
            const char *p = tok_piece(tok, id, &len);
            for (size_t k = 1; k < len; k++) {
                if (((uint8_t)p[k] & 0xC0) == 0x80) continue; /* split between characters */
                int32_t l = tok_lookup(tok, p, k), r = tok_lookup(tok, p + k, len - k);
                if (l < 0 || r < 0) continue;
                if (n == cap) m = realloc(m, (cap *= 2) * sizeof *m);
                m[n++] = (spm_merge){tok->score[id], id, l, r};
            }
        }
        qsort(m, n, sizeof *m, cmp_spm_merge);
        for (size_t i = 0; i < n; i++) {
            json_t *pair = json_array();
            json_array_append_new(pair, jpiece(tok, m[i].l));
            json_array_append_new(pair, jpiece(tok, m[i].r));
            json_array_append_new(merges, pair);
        }
        free(m);
        json_object_set_new(model, "byte_fallback", json_true());
        json_object_set_new(model, "fuse_unk", json_true());
        json_object_set_new(model, "unk_token", json_string("<unk>"));
        json_object_set_new(root, "normalizer",
                            json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}", "type",
                                      "Sequence", "normalizers", "type", "Prepend", "prepend",
                                      "\xe2\x96\x81", "type", "Replace", "pattern", "String", " ",
                                      "content", "\xe2\x96\x81"));
        json_object_set_new(root, "pre_tokenizer", json_null());
        json_object_set_new(
            root, "decoder",
            json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type",
                      "Sequence", "decoders", "type", "Replace", "pattern", "String",
                      "\xe2\x96\x81", "content", " ", "type", "ByteFallback", "type", "Fuse",
                      "type", "Strip", "content", " ", "start", 1, "stop", 0));
        json_object_set_new(root, "post_processor",
                            json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}]}", "type",
                                      "TemplateProcessing", "single", "SpecialToken", "id", "<s>",
                                      "type_id", 0, "Sequence", "id", "A", "type_id", 0));
    } else {
        const gguf_kv *mk = gguf_find_kv(f, "tokenizer.ggml.merges");
        for (uint64_t i = 0; mk && i < mk->arr_n; i++)
            json_array_append_new(merges, json_stringn(mk->strs[i].ptr, mk->strs[i].len));
        if (!strcmp(style, "bytelevel")) {
            json_object_set_new(root, "pre_tokenizer",
                                json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel",
                                          "add_prefix_space", 0, "trim_offsets", 1, "use_regex",
                                          1));
        } else {
            json_t *seq = json_array();
            for (const char *const *r = regexes; *r; r++)
                json_array_append_new(seq, json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split",
                                                     "pattern", "Regex", *r, "behavior", "Isolated",
                                                     "invert", 0));
            if (digits)
                json_array_append_new(
                    seq, json_pack("{s:s, s:b}", "type", "Digits", "individual_digits", 1));
            json_array_append_new(seq, json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel",
                                                 "add_prefix_space", 0, "trim_offsets", 0,
                                                 "use_regex", 0));
            json_object_set_new(root, "pre_tokenizer",
                                json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", seq));
        }
        json_object_set_new(root, "decoder", json_pack("{s:s}", "type", "ByteLevel"));
        json_object_set_new(root, "normalizer", json_null());
    }
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "ignore_merges", json_boolean(ignore_merges));
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", merges);
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "model", model);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    int rc = json_dump_file(root, path, JSON_COMPACT);
    json_decref(root);
    tok_free(tok);
    gguf_close(f);
    return rc;
}

static void test_hf_fixtures(const char *golden) {
    /* the regexes as the models' own tokenizer.json files write them */
    static const char *const re_qwen2[] = {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{"
                                           "L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                           "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                                           NULL};
    static const char *const re_llama3[] = {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?"
                                            "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                            "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                                            NULL};
    static const char *const re_deepseek_coder[] = {
        "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
        "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+", NULL};
    static const struct {
        const char *name, *style;
        const char *const *re;
        bool digits, ignore_merges;
    } fx[] = {
        {"gpt-2", "bytelevel", NULL, false, false},
        {"qwen2", "split", re_qwen2, false, false},
        {"llama-bpe", "split", re_llama3, false, true},
        {"deepseek-coder", "split", re_deepseek_coder, true, false},
        {"llama-spm", "spm", NULL, false, false},
    };
    char tmpl[] = "/tmp/comi-tok-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        test_fail("hf_fixtures", "cannot create a temporary directory");
        return;
    }
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        char name[128], path[1024];
        snprintf(name, sizeof name, "hf_tokenizer_json_%s", fx[i].name);
        if (write_fixture(golden, fx[i].name, dir, fx[i].style, fx[i].re, fx[i].digits,
                          fx[i].ignore_merges)) {
            test_fail(name, "cannot write the fixture");
            continue;
        }
        golden_set g;
        comi_ctx *ctx = comi_ctx_new(NULL);
        comi_tokenizer *tok = NULL;
        if (golden_load(golden, fx[i].name, &g) || comi_tokenizer_load(ctx, dir, &tok)) {
            test_fail(name, "load: %s", comi_errmsg(ctx));
        } else {
            check_golden_set(name, tok, &g);
            if (!strcmp(fx[i].name, "llama-spm")) {
                /* the post-processor adds BOS; decoding strips the prefix space */
                static const char txt[] = "The capital of France is Paris. Paris is known for the "
                                          "Eiffel Tower, which was completed in 1889.";
                static const int32_t want[] = {1,     450,   7483,  310,   3444,  338,   3681,
                                               29889, 3681,  338,   2998,  363,   278,   382,
                                               2593,  295,   23615, 29892, 607,   471,   8676,
                                               297,   29871, 29896, 29947, 29947, 29929, 29889};
                int32_t *ids = NULL;
                size_t n = 0;
                char *back = NULL;
                comi_status st = comi_tokenize(ctx, tok, txt, sizeof txt - 1, NULL, &ids, &n);
                bool ok =
                    !st && n == sizeof want / sizeof want[0] && !memcmp(ids, want, sizeof want);
                test_check("hf_llama_spm_default_bos", ok, "status %d, %zu ids", (int)st, n);
                st = comi_detokenize(ctx, tok, ids, n, true, &back, NULL);
                test_check("hf_llama_spm_decode", !st && back && !strcmp(back, txt), "got '%s'",
                           back ? back : "");
                comi_free(ids);
                comi_free(back);
            }
        }
        comi_tokenizer_free(tok);
        comi_ctx_free(ctx);
        golden_free(&g);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        unlink(path);
    }
    rmdir(dir);
}

/* ---- special tokens, end of generation ---------------------------------- */

static bool encode_eq(const comi_tokenizer *tok, const char *text, bool parse_special,
                      const int32_t *want, size_t n_want, char *why, size_t why_cap) {
    comi_err e = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    comi_status st = tok_encode(&e, tok, text, strlen(text), false, false, parse_special, &ids, &n);
    bool ok = !st && n == n_want && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
    if (!ok) {
        char got[400], w[400];
        fmt_ids(got, sizeof got, ids, n);
        fmt_ids(w, sizeof w, want, n_want);
        snprintf(why, why_cap, "'%s': got [%s] want [%s] %s", text, got, w, st ? e.msg : "");
    }
    free(ids);
    return ok;
}

static bool contains_id(const comi_tokenizer *tok, const char *text, bool parse_special,
                        int32_t id) {
    comi_err e = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    bool found = false;
    if (!tok_encode(&e, tok, text, strlen(text), false, false, parse_special, &ids, &n))
        for (size_t i = 0; i < n; i++)
            found = found || ids[i] == id;
    free(ids);
    return found;
}

static void test_specials(const char *golden) {
    char why[4096] = "";
    comi_tokenizer *qwen = load_vocab(golden, "qwen2");
    if (qwen) {
        /* control-token text is plain text unless parse_special */
        test_check("special_text_not_parsed", !contains_id(qwen, "<|im_start|>user", false, 151644),
                   "<|im_start|> became its control token without parse_special");
        const int32_t want[] = {151644, 872, 198, 151645};
        test_check("special_text_parsed",
                   encode_eq(qwen, "<|im_start|>user\n<|im_end|>", true, want, 4, why, sizeof why),
                   "%s", why);
        test_check("eog_qwen2",
                   tok_is_eog(qwen, 151643) && tok_is_eog(qwen, 151645) &&
                       !tok_is_eog(qwen, 151644) && !tok_is_eog(qwen, 872) &&
                       tok_is_control(qwen, 151644) && !tok_is_control(qwen, 872),
                   "end-of-generation / control flags wrong");
        test_check("qwen2_no_default_bos", !tok_add_bos(qwen) && tok_eos(qwen) == 151643,
                   "add_bos %d eos %d", (int)tok_add_bos(qwen), (int)tok_eos(qwen));
        /* skip_special drops control tokens when decoding */
        comi_err e = {0};
        char *txt = NULL;
        const int32_t ids[] = {151644, 872, 151645};
        bool ok = !tok_decode(&e, qwen, ids, 3, true, &txt, NULL) && !strcmp(txt, "user");
        free(txt);
        txt = NULL;
        ok = ok && !tok_decode(&e, qwen, ids, 3, false, &txt, NULL) &&
             !strcmp(txt, "<|im_start|>user<|im_end|>");
        test_check("decode_skip_special", ok, "got '%s' %s", txt ? txt : "", e.msg);
        free(txt);
        tok_free(qwen);
    }
    comi_tokenizer *l3 = load_vocab(golden, "llama-bpe");
    if (l3) {
        test_check("eog_llama3",
                   tok_is_eog(l3, 128001) && tok_is_eog(l3, 128009) && !tok_is_eog(l3, 128000) &&
                       tok_bos(l3) == 128000 && tok_add_bos(l3),
                   "llama-bpe: eog/bos wrong (bos %d add_bos %d)", (int)tok_bos(l3),
                   (int)tok_add_bos(l3));
        tok_free(l3);
    }
    comi_tokenizer *ds = load_vocab(golden, "deepseek-coder");
    if (ds) {
        /* user-defined (added, non-special) tokens are always split out first,
         * as llama.cpp does: 'ö' is piece 32011 in this vocabulary */
        test_check("user_defined_always_split", contains_id(ds, "sch\xc3\xb6n", false, 32011),
                   "user-defined token not split out");
        test_check("fim_tokens_are_control",
                   tok_is_control(ds, 32015) && tok_is_control(ds, 32016) &&
                       tok_is_control(ds, 32017) && !tok_is_control(ds, 32018),
                   "deepseek FIM tokens should be control (llama.cpp auto-detection)");
        tok_free(ds);
    }
    comi_tokenizer *phi = load_vocab(golden, "phi-3");
    if (phi) {
        /* '</s>' is user-defined with rstrip in phi-3 (llama.cpp's per-model
         * attributes): spaces after it vanish and the next text gets the
         * SentencePiece space prefix */
        comi_err e = {0};
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        bool ok = !tok_encode(&e, phi, "Hi</s>   there", 14, false, false, false, &a, &na) &&
                  !tok_encode(&e, phi, "Hi</s>there", 11, false, false, false, &b, &nb) &&
                  na == nb && !memcmp(a, b, na * sizeof *a);
        bool has2 = false;
        for (size_t i = 0; ok && i < na; i++)
            has2 = has2 || a[i] == 2;
        test_check("phi3_rstrip_user_defined", ok && has2,
                   "'</s>' split/rstrip differs from llama.cpp's rules");
        free(a);
        free(b);
        tok_free(phi);
    }
}

/* ---- bad inputs ------------------------------------------------------- */

static void test_bad_inputs(const char *golden) {
    comi_tokenizer *tok = golden ? load_vocab(golden, "gpt-2") : NULL;
    if (tok) {
        static const struct {
            const char *s;
            size_t len, off;
        } bad[] = {{"ab\xff", 3, 2},   {"\xc0\x80", 2, 0},         {"x\xed\xa0\x80", 4, 1},
                   {"\xe2\x82", 2, 0}, {"\xf4\x90\x80\x80", 4, 0}, {"ok\x80", 3, 2}};
        size_t wrong = 0;
        char why[1024] = "";
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            comi_err e = {0};
            int32_t *ids = NULL;
            size_t n = 0;
            char want[64];
            snprintf(want, sizeof want, "offset %zu", bad[i].off);
            comi_status st =
                tok_encode(&e, tok, bad[i].s, bad[i].len, false, false, false, &ids, &n);
            if (st != COMI_ERR_INVALID_ARG || !strstr(e.msg, "invalid UTF-8") ||
                !strstr(e.msg, want)) {
                wrong++;
                snprintf(why, sizeof why, "case %zu: status %d '%s'", i, (int)st, e.msg);
            }
            free(ids);
        }
        test_check("invalid_utf8_rejected", wrong == 0, "%s", why);
        comi_err e = {0};
        int32_t *ids = NULL;
        size_t n = 0;
        static const char nul[] = "a\0b \xf0\x9f\x99\x82";
        bool ok =
            !tok_encode(&e, tok, nul, sizeof nul - 1, false, false, false, &ids, &n) && n >= 3;
        char *txt = NULL;
        size_t tl = 0;
        ok = ok && !tok_decode(&e, tok, ids, n, false, &txt, &tl) && tl == sizeof nul - 1 &&
             !memcmp(txt, nul, tl);
        test_check("nul_and_emoji_roundtrip", ok, "%s", e.msg);
        free(ids);
        free(txt);
        ids = NULL;
        ok = !tok_encode(&e, tok, "", 0, true, true, false, &ids, &n) && n == 2 &&
             ids[0] == 50256 && ids[1] == 50256;
        test_check("empty_text_bos_eos", ok, "n %zu", n);
        free(ids);
        const int32_t badids[] = {15496, 50257};
        txt = NULL;
        comi_status st = tok_decode(&e, tok, badids, 2, false, &txt, NULL);
        test_check("decode_id_out_of_range",
                   st == COMI_ERR_INVALID_ARG && strstr(e.msg, "50257") && !txt, "status %d",
                   (int)st);
        const int32_t neg[] = {-1};
        st = tok_decode(&e, tok, neg, 1, false, &txt, NULL);
        test_check("decode_negative_id", st == COMI_ERR_INVALID_ARG && !txt, "status %d", (int)st);
        tok_free(tok);
    }

    /* GGUF files with broken or missing tokenizer metadata */
    char tmpl[] = "/tmp/comi-tokbad-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        test_fail("bad_gguf", "no temporary directory");
        return;
    }
    static const char *const toks[] = {"a", "b", "ab"};
    static const float scores[] = {0, 0};
    struct {
        const char *name, *model, *pre, *want;
        bool bad_scores;
        comi_status status;
    } cases[] = {
        {"gguf_no_tokenizer", NULL, NULL, "no tokenizer", false, COMI_ERR_FORMAT},
        {"gguf_unsupported_model", "bert", NULL, "'bert' is not supported", false,
         COMI_ERR_UNSUPPORTED},
        {"gguf_unknown_pre", "gpt2", "no-such-pre", "'no-such-pre' is not supported", false,
         COMI_ERR_UNSUPPORTED},
        {"gguf_bad_scores", "llama", NULL, "tokenizer.ggml.scores", true, COMI_ERR_FORMAT},
        {"gguf_none_model", "none", NULL, "no tokenizer", false, COMI_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/t%zu.gguf", dir, i);
        comi_err e = {0};
        gguf_writer *w = gguf_writer_new();
        gguf_writer_set_str(&e, w, "general.architecture", "llama");
        if (cases[i].model) {
            gguf_writer_set_str(&e, w, "tokenizer.ggml.model", cases[i].model);
            gguf_writer_set_arr_str(&e, w, "tokenizer.ggml.tokens", toks, 3);
            const char *merges[] = {"a b"};
            gguf_writer_set_arr_str(&e, w, "tokenizer.ggml.merges", merges, 1);
        }
        if (cases[i].pre) gguf_writer_set_str(&e, w, "tokenizer.ggml.pre", cases[i].pre);
        if (cases[i].bad_scores)
            gguf_writer_set_arr(&e, w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, scores, 2);
        comi_status st = gguf_writer_write(&e, w, path);
        gguf_writer_free(w);
        comi_ctx *ctx = comi_ctx_new(NULL);
        comi_tokenizer *t = NULL;
        if (st) {
            test_fail(cases[i].name, "cannot write fixture: %s", e.msg);
        } else {
            st = comi_tokenizer_load(ctx, path, &t);
            test_check(cases[i].name,
                       st == cases[i].status && strstr(comi_errmsg(ctx), cases[i].want) && !t,
                       "status %d message '%s'", (int)st, comi_errmsg(ctx));
        }
        comi_tokenizer_free(t);
        comi_ctx_free(ctx);
        unlink(path);
    }
    /* a minimal valid gpt2 vocabulary: "ab" merges */
    {
        char path[1024];
        snprintf(path, sizeof path, "%s/ok.gguf", dir);
        comi_err e = {0};
        gguf_writer *w = gguf_writer_new();
        gguf_writer_set_str(&e, w, "tokenizer.ggml.model", "gpt2");
        gguf_writer_set_str(&e, w, "tokenizer.ggml.pre", "gpt-2");
        gguf_writer_set_arr_str(&e, w, "tokenizer.ggml.tokens", toks, 3);
        const char *merges[] = {"a b", "nospace"};
        gguf_writer_set_arr_str(&e, w, "tokenizer.ggml.merges", merges, 2);
        gguf_writer_write(&e, w, path);
        gguf_writer_free(w);
        comi_ctx *ctx = comi_ctx_new(NULL);
        comi_tokenizer *t = NULL;
        int32_t *ids = NULL;
        size_t n = 0;
        comi_tokenize_params p = comi_tokenize_default_params();
        bool ok = !comi_tokenizer_load(ctx, path, &t) &&
                  !comi_tokenize(ctx, t, "abba", 4, &p, &ids, &n) && n == 3 && ids[0] == 2 &&
                  ids[1] == 1 && ids[2] == 0;
        test_check("gguf_minimal_bpe", ok, "%s (n %zu)", comi_errmsg(ctx), n);
        comi_free(ids);
        comi_tokenizer_free(t);
        comi_ctx_free(ctx);
        unlink(path);
    }
    /* Hugging Face directories and files */
    {
        comi_ctx *ctx = comi_ctx_new(NULL);
        comi_tokenizer *t = NULL;
        comi_status st = comi_tokenizer_load(ctx, dir, &t);
        test_check("hf_dir_without_tokenizer",
                   st == COMI_ERR_IO && strstr(comi_errmsg(ctx), "no tokenizer.json") && !t,
                   "status %d '%s'", (int)st, comi_errmsg(ctx));
        char path[1024];
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        FILE *f = fopen(path, "w");
        fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}}}", f);
        fclose(f);
        st = comi_tokenizer_load(ctx, dir, &t);
        test_check("hf_json_malformed",
                   st == COMI_ERR_FORMAT && strstr(comi_errmsg(ctx), "line 1") && !t,
                   "status %d '%s'", (int)st, comi_errmsg(ctx));
        f = fopen(path, "w");
        fputs("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", f);
        fclose(f);
        st = comi_tokenizer_load(ctx, dir, &t);
        test_check("hf_json_unigram_unsupported",
                   st == COMI_ERR_UNSUPPORTED && strstr(comi_errmsg(ctx), "Unigram") && !t,
                   "status %d '%s'", (int)st, comi_errmsg(ctx));
        f = fopen(path, "w");
        fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
              " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}",
              f);
        fclose(f);
        st = comi_tokenizer_load(ctx, dir, &t);
        test_check("hf_json_unsupported_pre",
                   st == COMI_ERR_UNSUPPORTED && strstr(comi_errmsg(ctx), "BertPreTokenizer") && !t,
                   "status %d '%s'", (int)st, comi_errmsg(ctx));
        f = fopen(path, "w");
        fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 100000017},"
              " \"merges\": []}}",
              f);
        fclose(f);
        st = comi_tokenizer_load(ctx, dir, &t);
        test_check("hf_json_huge_id_refused",
                   st == COMI_ERR_FORMAT && strstr(comi_errmsg(ctx), "100000017") && !t,
                   "status %d '%s'", (int)st, comi_errmsg(ctx));
        unlink(path);
        st = comi_tokenizer_load(ctx, "/nonexistent/model.gguf", &t);
        test_check("load_missing_path",
                   st == COMI_ERR_IO && strstr(comi_errmsg(ctx), "/nonexistent/model.gguf") && !t,
                   "status %d '%s'", (int)st, comi_errmsg(ctx));
        comi_ctx_free(ctx);
    }
    rmdir(dir);
}

/* ---- normalizers and pre-tokenizers of a hand-written tokenizer.json ----- */

static void test_hf_normalizers(void) {
    char tmpl[] = "/tmp/comi-toknorm-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        test_fail("hf_normalizers", "no temporary directory");
        return;
    }
    /* byte-level vocabulary: piece of byte b = GPT-2 character of b, id b */
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char buf[8] = {0};
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        if (cp < 0x80)
            buf[0] = (char)cp;
        else {
            buf[0] = (char)(0xC0 | (cp >> 6));
            buf[1] = (char)(0x80 | (cp & 0x3F));
        }
        json_object_set_new(vocab, buf, json_integer(b));
    }
    json_object_set_new(vocab, "ab", json_integer(256));
    json_t *root =
        json_pack("{s:{s:s, s:o, s:[s]}, s:{s:s, s:[{s:s}, {s:s}]}, s:{s:s, s:b, s:b}}", "model",
                  "type", "BPE", "vocab", vocab, "merges", "a b", "normalizer", "type", "Sequence",
                  "normalizers", "type", "NFC", "type", "Lowercase", "pre_tokenizer", "type",
                  "ByteLevel", "add_prefix_space", 1, "use_regex", 1);
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    json_dump_file(root, path, JSON_COMPACT);
    json_decref(root);
    comi_ctx *ctx = comi_ctx_new(NULL);
    comi_tokenizer *t = NULL;
    if (comi_tokenizer_load(ctx, path, &t)) {
        test_fail("hf_normalizers", "load: %s", comi_errmsg(ctx));
    } else {
        /* "AB" -> lowercase "ab" -> prefix space " ab" -> [' ', 'ab'];
         * "E\u0301" -> NFC "\u00c9" -> lowercase "\u00e9" -> ' ' C3 A9 */
        char why[4096] = "";
        const int32_t w1[] = {32, 256};
        const int32_t w2[] = {32, 0xC3, 0xA9};
        bool ok1 = encode_eq(t, "AB", false, w1, 2, why, sizeof why);
        test_check("hf_lowercase_prefix_space_merge", ok1, "%s", why);
        bool ok2 = encode_eq(t, "E\xcc\x81", false, w2, 3, why, sizeof why);
        test_check("hf_nfc_lowercase", ok2, "%s", why);
    }
    comi_tokenizer_free(t);
    comi_ctx_free(ctx);
    unlink(path);
    rmdir(dir);
}

/* ---- one tokenizer, several threads ---------------------------------- */

typedef struct thread_job {
    const comi_tokenizer *tok;
    const golden_set *g;
    size_t bad;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    for (int rep = 0; rep < 20; rep++)
        for (size_t i = 0; i < j->g->n; i++) {
            comi_err e = {0};
            int32_t *ids = NULL;
            size_t n = 0;
            if (tok_encode(&e, j->tok, j->g->cases[i].text, j->g->cases[i].len, false, false, false,
                           &ids, &n) ||
                n != j->g->cases[i].n_ids ||
                (n && memcmp(ids, j->g->cases[i].ids, n * sizeof *ids)))
                j->bad++;
            free(ids);
        }
    return NULL;
}

static void test_threads(const char *golden) {
    golden_set g;
    comi_tokenizer *tok = load_vocab(golden, "qwen2");
    if (!tok || golden_load(golden, "qwen2", &g)) {
        test_fail("threads_share_tokenizer", "cannot load qwen2");
        tok_free(tok);
        return;
    }
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){tok, &g, 0};
        pthread_create(&th[i], NULL, thread_main, &jobs[i]);
    }
    size_t bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        bad += jobs[i].bad;
    }
    test_check("threads_share_tokenizer", bad == 0, "%zu mismatches across 4 threads", bad);
    golden_free(&g);
    tok_free(tok);
}

/* ---- every tokenizer.ggml.pre this build knows compiles and runs -------- */

static void test_pre_types(void) {
    static const char *const names[] = {"default",
                                        "llama3",
                                        "llama-v3",
                                        "llama-bpe",
                                        "falcon3",
                                        "falcon-h1",
                                        "pixtral",
                                        "midm-2.0",
                                        "lfm2",
                                        "dbrx",
                                        "smaug-bpe",
                                        "chatglm-bpe",
                                        "glm4",
                                        "deepseek-llm",
                                        "deepseek-v3",
                                        "hunyuan-dense",
                                        "deepseek-coder",
                                        "falcon",
                                        "starcoder",
                                        "refact",
                                        "command-r",
                                        "smollm",
                                        "codeshell",
                                        "exaone",
                                        "minerva-7b",
                                        "gpt-2",
                                        "phi-2",
                                        "jina-es",
                                        "jina-de",
                                        "gigachat",
                                        "jina-v2-es",
                                        "jina-v2-de",
                                        "a.x-4.0",
                                        "mellum",
                                        "jina-v1-en",
                                        "jina-v2-code",
                                        "roberta-bpe",
                                        "exaone4",
                                        "mpt",
                                        "olmo",
                                        "jais",
                                        "trillion",
                                        "granite-docling",
                                        "qwen2",
                                        "qwen2.5",
                                        "qwen-2.5",
                                        "deepseek-r1-qwen",
                                        "kormo",
                                        "megrez",
                                        "stablelm2",
                                        "hunyuan",
                                        "grok-2",
                                        "poro-chat",
                                        "bloom",
                                        "gpt3-finnish",
                                        "viking",
                                        "tekken",
                                        "gpt-4o",
                                        "llama4",
                                        "minimax-m2",
                                        "bailingmoe",
                                        "bailingmoe2",
                                        "llada-moe",
                                        "seed-coder"};
    char tmpl[] = "/tmp/comi-tokpre-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        test_fail("pre_types_all", "no temporary directory");
        return;
    }
    /* vocabulary: the 256 byte-level characters */
    char *pieces[256];
    for (int b = 0; b < 256; b++) {
        pieces[b] = calloc(4, 1);
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        if (cp < 0x80)
            pieces[b][0] = (char)cp;
        else {
            pieces[b][0] = (char)(0xC0 | (cp >> 6));
            pieces[b][1] = (char)(0x80 | (cp & 0x3F));
        }
    }
    static const char text[] =
        "Hello, World! It's 2024-11-25: 12345 apples;\n\n  caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd "
        "\xf0\x9f\x99\x82 ABCdef \xce\x91\xce\xb2 tab\there ";
    size_t bad = 0;
    char why[4096] = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/pre.gguf", dir);
        comi_err e = {0};
        gguf_writer *w = gguf_writer_new();
        gguf_writer_set_str(&e, w, "tokenizer.ggml.model", "gpt2");
        gguf_writer_set_str(&e, w, "tokenizer.ggml.pre", names[i]);
        gguf_writer_set_arr_str(&e, w, "tokenizer.ggml.tokens", (const char *const *)pieces, 256);
        const char *merges[] = {"H e"};
        gguf_writer_set_arr_str(&e, w, "tokenizer.ggml.merges", merges, 1);
        gguf_writer_write(&e, w, path);
        gguf_writer_free(w);
        comi_ctx *ctx = comi_ctx_new(NULL);
        comi_tokenizer *t = NULL;
        int32_t *ids = NULL;
        size_t n = 0;
        char *back = NULL;
        size_t bl = 0;
        comi_tokenize_params p = comi_tokenize_default_params();
        p.add_bos = 0;
        bool ok = !comi_tokenizer_load(ctx, path, &t) &&
                  !comi_tokenize(ctx, t, text, sizeof text - 1, &p, &ids, &n) &&
                  n == sizeof text - 1 && !comi_detokenize(ctx, t, ids, n, false, &back, &bl) &&
                  bl == sizeof text - 1 && !memcmp(back, text, bl);
        if (!ok) {
            if (!bad)
                snprintf(why, sizeof why, "pre '%s': %s (n %zu)", names[i], comi_errmsg(ctx), n);
            bad++;
        }
        comi_free(ids);
        comi_free(back);
        comi_tokenizer_free(t);
        comi_ctx_free(ctx);
        unlink(path);
    }
    for (int b = 0; b < 256; b++)
        free(pieces[b]);
    rmdir(dir);
    test_check("pre_types_all", bad == 0, "%zu of %zu pre-tokenizer names fail; first: %s", bad,
               sizeof names / sizeof names[0], why);
}

int main(void) {
    const char *dir = test_golden_dir();
    if (!dir) {
        test_skip("golden_vocabs", "golden data not found (set COMI_GOLDEN)");
        test_skip("golden_prompts", "golden data not found (set COMI_GOLDEN)");
    } else {
        test_golden_vocabs(dir);
        test_golden_prompts(dir);
        test_hf_fixtures(dir);
        test_specials(dir);
        test_threads(dir);
    }
    test_bad_inputs(dir);
    test_hf_normalizers();
    test_pre_types();
    return test_exit();
}
