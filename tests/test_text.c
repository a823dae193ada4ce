/* test_text.c — text-mode compression: the budget is never exceeded and is
 * filled (property test over random inputs and ratios), original order,
 * determinism, Unicode-safe splitting, documents input, argument errors,
 * static word vectors (GloVe text, word2vec binary, broken files), and on
 * the shared data (SKIP when absent): budget compliance on every example
 * and answer recall at least the truncation baseline's. */
#include "comi.h"
#include "limits.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static comi_ctx *ctx;
static uint64_t rng = 12345;

static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* Words of s split at ASCII whitespace and the Unicode spaces used here. */
static size_t split_words(const char *s, char ***out) {
    size_t cap = 16, n = 0;
    char **w = malloc(cap * sizeof *w);
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' ||
               ((uint8_t)p[0] == 0xe3 && (uint8_t)p[1] == 0x80 && (uint8_t)p[2] == 0x80)) {
            p += (*p == ' ' || *p == '\n' || *p == '\t') ? 1 : 3;
        }
        if (!*p) break;
        const char *b = p;
        while (*p && *p != ' ' && *p != '\n' && *p != '\t' &&
               !((uint8_t)p[0] == 0xe3 && (uint8_t)p[1] == 0x80 && (uint8_t)p[2] == 0x80))
            p++;
        if (n == cap) w = realloc(w, (cap *= 2) * sizeof *w);
        w[n++] = strndup(b, (size_t)(p - b));
    }
    *out = w;
    return n;
}

static void free_words(char **w, size_t n) {
    for (size_t i = 0; i < n; i++) free(w[i]);
    free(w);
}

/* Every whitespace-separated piece of out occurs in in, each after the
 * previous one (order kept; a piece is a word, or adjacent CJK letters
 * joined again without a space). */
static int subsequence(const char *out, const char *in) {
    char **a;
    size_t na = split_words(out, &a);
    const char *cur = in;
    int ok = 1;
    for (size_t i = 0; i < na && ok; i++) {
        const char *f = strstr(cur, a[i]);
        if (!f) ok = 0;
        else cur = f + strlen(a[i]);
    }
    free_words(a, na);
    return ok;
}

static int valid_utf8(const char *s) {
    const uint8_t *p = (const uint8_t *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        if (!n) return 0;
        for (int k = 1; k < n; k++)
            if ((p[k] & 0xc0) != 0x80) return 0;
        p += n;
    }
    return 1;
}

static const char *vocab[] = {
    "the", "capital", "of", "France", "is", "Paris.", "river", "Seine,", "flows", "through",
    "city;", "(founded", "in", "300", "BC)", "and", "population", "2.1", "million.", "Where",
    "does", "Mr.", "Smith", "live?", "He", "lives", "at", "Fort", "Riley,", "Kansas.", "—",
    "naïve", "café", "e\xcc\x81t\xc3\xa9", "東京は日本の首都です。", "😀👍🏽", "Ἴκαρος", "U.S.",
    "don't", "\"quoted\"", "x", "ZZZ!", "1968.", "a", "an"};
#define N_VOCAB (sizeof vocab / sizeof vocab[0])

static char *random_text(size_t n_words) {
    size_t cap = n_words * 40 + 16, k = 0;
    char *s = malloc(cap);
    for (size_t i = 0; i < n_words; i++) {
        const char *w = vocab[rnd(N_VOCAB)];
        size_t l = strlen(w);
        memcpy(s + k, w, l);
        k += l;
        uint32_t r = rnd(40);
        const char *sep = r == 0 ? "\n\n" : r == 1 ? "\n" : r == 2 ? "\t" : r == 3 ? "\xe3\x80\x80" : " ";
        memcpy(s + k, sep, strlen(sep));
        k += strlen(sep);
    }
    s[k] = '\0';
    return s;
}

static void property_tests(void) {
    int bad_budget = 0, bad_order = 0, bad_det = 0, bad_utf8 = 0, bad_count = 0, runs = 0;
    char msg[256] = "";
    for (int it = 0; it < 400; it++) {
        size_t nw = 1 + rnd(it < 200 ? 60 : 700);
        char *text = random_text(nw);
        comi_text_params p = comi_text_default_params();
        if (rnd(3) == 0) p.target_tokens = 1 + rnd((uint32_t)nw + 5);
        else p.ratio = 1.0 + rnd(4000) / 100.0;
        p.redundancy = rnd(4) != 0;
        p.coarse = rnd(4) != 0;
        p.keep_titles = rnd(2) != 0;
        const char *q = vocab[rnd(N_VOCAB)];
        if (!strcmp(q, "—")) q = "capital";
        comi_text_result a, b;
        comi_status st = comi_compress_text(ctx, text, q, &p, &a);
        if (st != COMI_OK) {
            /* only texts with no words or questions with no words may fail */
            free(text);
            continue;
        }
        runs++;
        int64_t nwords = comi_text_count_tokens(text);
        int64_t budget = p.target_tokens > 0 ? (p.target_tokens < nwords ? p.target_tokens : nwords)
                                             : (int64_t)floor((double)nwords / p.ratio);
        if (budget < 1) budget = 1; /* never empty: the best word at least */
        int64_t got = comi_text_count_tokens(a.text);
        if (got > budget || a.compressed_tokens != got || a.original_tokens != nwords) {
            bad_budget++;
            snprintf(msg, sizeof msg, "words %lld budget %lld got %lld (reported %lld)",
                     (long long)nwords, (long long)budget, (long long)got,
                     (long long)a.compressed_tokens);
        }
        if (got != budget) { /* the budget is filled exactly */
            if (bad_count++ == 0)
                printf("# not filled: words %lld budget %lld got %lld coarse %d red %d titles %d\n",
                       (long long)nwords, (long long)budget, (long long)got, p.coarse,
                       p.redundancy, p.keep_titles);
        }
        if (!subsequence(a.text, text)) bad_order++;
        if (!valid_utf8(a.text)) bad_utf8++;
        st = comi_compress_text(ctx, text, q, &p, &b);
        if (st != COMI_OK || strcmp(a.text, b.text)) bad_det++;
        comi_text_result_free(&a);
        comi_text_result_free(&b);
        free(text);
    }
    test_check("prop_budget_never_exceeded", bad_budget == 0, "%d of %d runs: %s", bad_budget,
               runs, msg);
    test_check("prop_budget_filled", bad_count == 0, "%d of %d runs not filled", bad_count, runs);
    test_check("prop_order_preserved", bad_order == 0, "%d of %d runs", bad_order, runs);
    test_check("prop_valid_utf8_words_whole", bad_utf8 == 0, "%d of %d runs", bad_utf8, runs);
    test_check("prop_deterministic", bad_det == 0, "%d of %d runs", bad_det, runs);
    test_check("prop_ran", runs > 300, "only %d runs", runs);
}

static void basic_tests(void) {
    const char *ctxt =
        "Paris\nParis is the capital and most populous city of France. The Seine flows through "
        "it.\n\n"
        "Bananas\nBananas are elongated, edible fruit, botanically a berry, produced by several "
        "kinds of large herbaceous flowering plants.\n\n"
        "Mount Everest\nMount Everest is Earth's highest mountain above sea level, located in "
        "the Himalayas. Its elevation is 8,849 metres.";
    comi_text_params p = comi_text_default_params();
    p.target_tokens = 10;
    comi_text_result r;
    comi_status st = comi_compress_text(ctx, ctxt, "How high is Mount Everest?", &p, &r);
    test_check("relevant_group_kept",
               st == COMI_OK && strstr(r.text, "8,849") && r.compressed_tokens == 10,
               "'%s'", st == COMI_OK ? r.text : comi_errmsg(ctx));
    comi_text_result_free(&r);
    st = comi_compress_text(ctx, ctxt, "What is the capital of France?", &p, &r);
    test_check("relevant_sentence_kept", st == COMI_OK && strstr(r.text, "capital"), "'%s'",
               st == COMI_OK ? r.text : comi_errmsg(ctx));
    comi_text_result_free(&r);

    /* ratio 1 keeps everything */
    p = comi_text_default_params();
    p.ratio = 1;
    st = comi_compress_text(ctx, ctxt, "anything", &p, &r);
    test_check("ratio_one_keeps_all",
               st == COMI_OK && r.compressed_tokens == comi_text_count_tokens(ctxt) && r.ratio == 1,
               "%lld words", (long long)r.compressed_tokens);
    comi_text_result_free(&r);

    /* documents */
    const char *docs[] = {"Bananas\nBananas are yellow fruit grown in the tropics.",
                          "Everest\nMount Everest is 8,849 metres high.",
                          "Paris\nParis is the capital of France."};
    p = comi_text_default_params();
    p.target_tokens = 6;
    st = comi_compress_documents(ctx, docs, 3, "How high is Everest?", &p, &r);
    test_check("documents_budget_relevant",
               st == COMI_OK && r.compressed_tokens == 6 && strstr(r.text, "8,849") &&
                   r.original_tokens == 23,
               "'%s' %lld/%lld", st == COMI_OK ? r.text : comi_errmsg(ctx),
               (long long)r.compressed_tokens, (long long)r.original_tokens);
    comi_text_result_free(&r);
    p.target_tokens = 1000;
    st = comi_compress_documents(ctx, docs, 3, "How high is Everest?", &p, &r);
    test_check("documents_order_kept", st == COMI_OK && strstr(r.text, "Bananas\n") == NULL &&
                                           strncmp(r.text, "Bananas Bananas", 15) == 0 &&
                                           strstr(r.text, "tropics.\nEverest"),
               "'%s'", st == COMI_OK ? r.text : comi_errmsg(ctx));
    comi_text_result_free(&r);

    /* Unicode: words are never cut, output stays valid UTF-8 */
    const char *uni = "東京は日本の首都です。 大阪は大きい都市です。 😀👍🏽 naïve cafe\xcc\x81 "
                      "Ἴκαρος flew too close. Tokyo is the capital of Japan.";
    p = comi_text_default_params();
    p.target_tokens = 3;
    st = comi_compress_text(ctx, uni, "東京は日本の首都です。 capital", &p, &r);
    test_check("unicode_whole_words", st == COMI_OK && valid_utf8(r.text) && subsequence(r.text, uni) &&
                                          r.compressed_tokens == 3,
               "'%s'", st == COMI_OK ? r.text : comi_errmsg(ctx));
    comi_text_result_free(&r);

    /* Never an empty success: a ratio that leaves no word keeps the best one. */
    p = comi_text_default_params();
    p.ratio = 8;
    st = comi_compress_text(ctx, "one two three", "two", &p, &r);
    test_check("budget_rounds_to_zero_keeps_best_word",
               st == COMI_OK && !strcmp(r.text, "two") && r.compressed_tokens == 1, "'%s'",
               st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);
    p.ratio = 1e9;
    st = comi_compress_text(ctx, "Everest is 8,849 metres high. Bananas are yellow.", "how high is everest",
                            &p, &r);
    test_check("huge_ratio_not_empty", st == COMI_OK && r.compressed_tokens == 1 && r.text[0],
               "'%s'", st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);

    /* Word forms: WordNet's irregular forms, then Snowball stems. */
    const char *forms =
        "The bridge was painted red in 1950 by the city.\n\n"
        "The canal opened to ships on 15 August 1914 after ten years of work.\n\n"
        "Her second novel was written in Paris during the war years.\n\n"
        "The old engineer died of yellow fever in 1889 near the coast.";
    const char *qs[][2] = {{"When did the canal open?", "1914"},
                           {"Where did she write her second novel?", "Paris"},
                           {"When did the old engineer die?", "1889"}};
    int morph_ok = 0;
    char morph_msg[256] = "";
    for (int i = 0; i < 3; i++) {
        p = comi_text_default_params();
        p.target_tokens = 12;
        p.lead_weight = 0;
        st = comi_compress_text(ctx, forms, qs[i][0], &p, &r);
        if (st == COMI_OK && strstr(r.text, qs[i][1])) morph_ok++;
        else snprintf(morph_msg, sizeof morph_msg, "%s -> '%s'", qs[i][0],
                      st == COMI_OK ? r.text : comi_errmsg(ctx));
        if (st == COMI_OK) comi_text_result_free(&r);
    }
    test_check("morph_word_forms_match", morph_ok == 3, "%s", morph_msg);
    p = comi_text_default_params();
    p.target_tokens = 12;
    p.lead_weight = 0;
    st = comi_compress_text(ctx, forms, "What was wrote?", &p, &r);
    test_check("morph_irregular_wrote_written", st == COMI_OK && strstr(r.text, "written"),
               "'%s' (WordNet exceptions in /usr/share/wordnet: package wordnet-base)",
               st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);

    /* An instruction that names no content ("write a summary"): summary mode
     * covers every document; question-driven mode follows the words
     * "news" and "summary" into the one document that repeats them. */
    const char *news[] = {
        "News summary: the news agency said the news summary of the news was late. The "
        "editor published the summary of news on Monday after a long delay.",
        "Heavy rain flooded the valley towns and closed the mountain roads. Rescue teams "
        "evacuated four hundred residents from the riverside villages overnight.",
        "The central bank raised interest rates by half a point to fight inflation. "
        "Markets fell sharply and the currency gained against the dollar."};
    int covered[2] = {0, 0};
    for (int mode = 0; mode < 2; mode++) {
        p = comi_text_default_params();
        p.target_tokens = 24;
        p.summary = mode ? -1 : 0;
        st = comi_compress_documents(ctx, news, 3, "Write a one-page summary of all news.", &p, &r);
        if (st != COMI_OK) continue;
        covered[mode] = (strstr(r.text, "news") || strstr(r.text, "summary") ||
                         strstr(r.text, "editor")) +
                        (strstr(r.text, "rain") || strstr(r.text, "valley") ||
                         strstr(r.text, "Rescue") || strstr(r.text, "residents")) +
                        (strstr(r.text, "bank") || strstr(r.text, "rates") ||
                         strstr(r.text, "Markets") || strstr(r.text, "inflation"));
        comi_text_result_free(&r);
    }
    test_check("summary_mode_covers_documents", covered[1] == 3 && covered[0] < 3,
               "documents covered: summary mode %d, question-driven %d", covered[1], covered[0]);

    /* Answer-aware cut: for a "when" question the kept window holds a date
     * next to the question's words rather than one more question word. */
    p = comi_text_default_params();
    p.target_tokens = 8;
    st = comi_compress_text(ctx,
                            "The population of the city of Paris was officially estimated by the "
                            "national statistics office in January 2023 at 2.1 million residents.",
                            "When was the population of Paris estimated?", &p, &r);
    test_check("answer_window_keeps_date",
               st == COMI_OK && strstr(r.text, "estimated") && strstr(r.text, "January"), "'%s'",
               st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);

    /* Knobs by name: the one setter of the CLI, the service and Python. */
    p = comi_text_default_params();
    int knobs_ok = comi_text_set_param(ctx, &p, "lead_weight", 0.5) == COMI_OK &&
                   p.lead_weight == 0.5f &&
                   comi_text_set_param(ctx, &p, "summary", 1) == COMI_OK && p.summary == 1 &&
                   comi_text_set_param(ctx, &p, "target_tokens", 7) == COMI_OK &&
                   p.target_tokens == 7 && comi_text_set_param(ctx, &p, "ratio", 3) == COMI_OK &&
                   p.ratio == 3 && p.target_tokens == 0;
    test_check("set_param_by_name", knobs_ok, "%s", comi_errmsg(ctx));
    st = comi_text_set_param(ctx, &p, "lead", 1);
    test_check("set_param_unknown", st == COMI_ERR_INVALID_ARG &&
                                        strstr(comi_errmsg(ctx), "unknown knob 'lead'") &&
                                        strstr(comi_errmsg(ctx), "lead_weight"),
               "%s", comi_errmsg(ctx));
    st = comi_text_set_param(ctx, &p, "temperature", 0);
    test_check("set_param_range", st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "> 0"),
               "%s", comi_errmsg(ctx));
    size_t n_names = 0;
    for (const char *const *k = comi_text_param_names(); *k; k++) n_names++;
    test_check("param_names", n_names == 17, "%zu", n_names);

    /* Text without spaces (Chinese, Japanese): every letter is a word. */
    const char *zh = "北京是中国的首都。长城很长。上海是中国最大的城市，人口约两千四百万。";
    test_check("cjk_count_letters", comi_text_count_tokens(zh) == 30 &&
                                        comi_text_count_tokens("東京タワー Tokyo") == 6,
               "%lld", (long long)comi_text_count_tokens(zh));
    p = comi_text_default_params();
    p.ratio = 2;
    st = comi_compress_text(ctx, zh, "上海的人口是多少", &p, &r);
    test_check("cjk_compresses",
               st == COMI_OK && r.compressed_tokens == 15 && subsequence(r.text, zh) &&
                   comi_text_count_tokens(r.text) == 15 && !strstr(r.text, "北 京"),
               "'%s'", st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);

    /* errors */
    p = comi_text_default_params();
    st = comi_compress_text(ctx, "  \n\t ", "q", &p, &r);
    test_check("err_empty_context", st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "context"),
               "%d '%s'", st, comi_errmsg(ctx));
    st = comi_compress_text(ctx, "some text", " ", &p, &r);
    test_check("err_empty_question",
               st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "question") && r.text == NULL,
               "%d '%s'", st, comi_errmsg(ctx));
    p.ratio = 0.5;
    st = comi_compress_text(ctx, "some text", "q", &p, &r);
    test_check("err_ratio_below_one", st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "ratio"),
               "%d '%s'", st, comi_errmsg(ctx));
    p.ratio = NAN;
    st = comi_compress_text(ctx, "some text", "q", &p, &r);
    test_check("err_ratio_nan", st == COMI_ERR_INVALID_ARG, "%d", st);
    p = comi_text_default_params();
    p.target_tokens = -3;
    st = comi_compress_text(ctx, "some text", "q", &p, &r);
    test_check("err_negative_target", st == COMI_ERR_INVALID_ARG, "%d", st);
    p = comi_text_default_params();
    st = comi_compress_text(ctx, "ok \xe6\x9d text", "q", &p, &r);
    test_check("err_invalid_utf8", st == COMI_ERR_FORMAT && strstr(comi_errmsg(ctx), "byte 3"),
               "%d '%s'", st, comi_errmsg(ctx));
    st = comi_compress_documents(ctx, docs, 0, "q", &p, &r);
    test_check("err_no_documents", st == COMI_ERR_INVALID_ARG, "%d", st);
    comi_encoder *enc = NULL;
    st = comi_encoder_load(ctx, "/no/such/model.gguf", &enc);
    test_check("encoder_unknown_or_missing_model",
               st != COMI_OK && enc == NULL && strstr(comi_errmsg(ctx), "/no/such/model.gguf"),
               "%d '%s'", st, comi_errmsg(ctx));
    st = comi_encoder_load(ctx, "lexical", &enc);
    test_check("encoder_lexical", st == COMI_OK && enc, "%d", st);
    comi_encoder_free(enc);
    comi_encoder_free(NULL);
    comi_text_result_free(NULL);
    test_check("count_tokens", comi_text_count_tokens(" a\u00a0b\u3000c\n\nd ") == 4 &&
                                   comi_text_count_tokens("") == 0,
               "%lld", (long long)comi_text_count_tokens(" a\u00a0b\u3000c\n\nd "));
}

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "/tmp/comi_test_text_%d_%s", (int)getpid(), name);
    return buf[k];
}

static void write_bytes(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
}

static void check_vec_error(const char *name, const char *content, size_t len, const char *want) {
    const char *p = tmp_path(name);
    write_bytes(p, content, len);
    char spec[300];
    snprintf(spec, sizeof spec, "vectors:%s", p);
    comi_encoder *enc = NULL;
    comi_status st = comi_encoder_load(ctx, spec, &enc);
    test_check(name, st != COMI_OK && enc == NULL && strstr(comi_errmsg(ctx), want),
               "status %d '%s' (want '%s')", st, comi_errmsg(ctx), want);
    comi_encoder_free(enc);
    unlink(p);
}

/* A tiny embedding space: two topics (geography, fruit) in 4 dimensions. */
static const char *glove =
    "mountain 1 0 0 0.1\nhigh 0.9 0.1 0 0\nelevation 0.95 0 0.1 0\neverest 1 0.1 0 0\n"
    "metres 0.8 0 0.2 0\nbanana 0 1 0 0\nfruit 0.1 0.9 0 0\nyellow 0 0.8 0.2 0\n"
    "tall 0.9 0 0 0.1\n, 0 0 0 1\n";

static void vector_tests(void) {
    const char *p = tmp_path("glove.txt");
    write_bytes(p, glove, strlen(glove));
    char spec[300];
    snprintf(spec, sizeof spec, "vectors:%s", p);
    comi_encoder *enc = NULL;
    comi_status st = comi_encoder_load(ctx, spec, &enc);
    test_check("vectors_glove_load", st == COMI_OK && enc, "%d '%s'", st, comi_errmsg(ctx));
    if (enc) {
        const char *docs[] = {"Bananas are a yellow fruit. They grow in bunches.",
                              "Everest has an elevation of 8,849 metres. It is in Nepal."};
        comi_text_params prm = comi_text_default_params();
        prm.encoder = enc;
        prm.target_tokens = 8;
        comi_text_result r;
        /* "tall" is not in the context: only the vectors link it to elevation */
        st = comi_compress_documents(ctx, docs, 2, "How tall?", &prm, &r);
        test_check("vectors_dense_relevance",
                   st == COMI_OK && strstr(r.text, "8,849") && r.compressed_tokens == 8, "'%s'",
                   st == COMI_OK ? r.text : comi_errmsg(ctx));
        comi_text_result_free(&r);
        comi_encoder_free(enc);
    }
    unlink(p);

    /* word2vec binary with the same vectors */
    const char *words[] = {"mountain", "banana", "tall"};
    float vecs[3][4] = {{1, 0, 0, 0.1f}, {0, 1, 0, 0}, {0.9f, 0, 0, 0.1f}};
    char bin[512];
    size_t k = (size_t)snprintf(bin, sizeof bin, "3 4\n");
    for (int i = 0; i < 3; i++) {
        k += (size_t)snprintf(bin + k, sizeof bin - k, "%s ", words[i]);
        memcpy(bin + k, vecs[i], sizeof vecs[i]);
        k += sizeof vecs[i];
        bin[k++] = '\n';
    }
    p = tmp_path("w2v.bin");
    write_bytes(p, bin, k);
    snprintf(spec, sizeof spec, "vectors:%s", p);
    st = comi_encoder_load(ctx, spec, &enc);
    test_check("vectors_word2vec_binary_load", st == COMI_OK, "%d '%s'", st, comi_errmsg(ctx));
    comi_encoder_free(enc);
    unlink(p);
    check_vec_error("vectors_w2v_truncated", bin, k - 9, "truncated");
    /* word2vec text: the same "count dim" header, then GloVe-style lines */
    p = tmp_path("w2v.txt");
    const char *w2vt = "2 3\nMountain 1 0 0.5\nbanana 0 1 -2e-1\n";
    write_bytes(p, w2vt, strlen(w2vt));
    snprintf(spec, sizeof spec, "vectors:%s", p);
    st = comi_encoder_load(ctx, spec, &enc);
    test_check("vectors_word2vec_text_load", st == COMI_OK, "%d '%s'", st, comi_errmsg(ctx));
    comi_encoder_free(enc);
    unlink(p);
    check_vec_error("vectors_inconsistent_dim", "a 1 2 3\nb 1 2\n", 14, "line 2: 2 values, expected 3");
    check_vec_error("vectors_bad_number", "a 1 2 3\nb 1 x 3\n", 16, "line 2: value 2 'x'");
    check_vec_error("vectors_header_count", "5 2\na 1 2\nb 3 4\n", 16, "header says 5");
    check_vec_error("vectors_no_values", "a\n", 2, "line 1: a word with no values");
    check_vec_error("vectors_bad_header", "0 3\na 1 2 3\n", 12, "count must be > 0");
    check_vec_error("vectors_nan", "a 1 nan 3\n", 10, "not a finite number");
    st = comi_encoder_load(ctx, "vectors:/no/such/file.txt", &enc);
    test_check("vectors_missing_file", st == COMI_ERR_IO && strstr(comi_errmsg(ctx), "/no/such/file"),
               "%d '%s'", st, comi_errmsg(ctx));
    check_vec_error("vectors_empty_file", "", 0, "empty");
}

/* The transformer encoder on a small random-weight model from the golden
 * set: the vectors are meaningless, but budget, order, determinism and the
 * segmenting of a context longer than one segment are checked. */
static void model_tests(void) {
    const char *g = test_golden_dir();
    if (!g) {
        test_skip("model_encoder", "golden data not found ($COMI_GOLDEN)");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/forward/models/tiny-llama-spm.gguf", g);
    comi_encoder *enc = NULL;
    comi_status st = comi_encoder_load(ctx, path, &enc);
    if (!test_check("model_encoder_load", st == COMI_OK, "%d '%s'", st, comi_errmsg(ctx))) return;
    size_t len = 0;
    char *text = test_read_file("examples/panama-canal.txt", &len);
    if (!text) {
        test_fail("model_encoder_example", "examples/panama-canal.txt not readable");
        comi_encoder_free(enc);
        return;
    }
    /* four copies: well past one segment of the tiny model */
    size_t n4 = 4 * len + 8;
    char *big = malloc(n4);
    snprintf(big, n4, "%s\n\n%s\n\n%s\n\n%s", text, text, text, text);
    comi_text_params p = comi_text_default_params();
    p.encoder = enc;
    p.ratio = 6;
    comi_text_result a, b;
    st = comi_compress_text(ctx, big, "Who took over as chief engineer?", &p, &a);
    int64_t budget = comi_text_count_tokens(big) / 6;
    int ok = st == COMI_OK;
    test_check("model_encoder_budget", ok && a.compressed_tokens == budget &&
                                           comi_text_count_tokens(a.text) == budget,
               "%d '%s' %lld vs %lld", st, comi_errmsg(ctx), ok ? (long long)a.compressed_tokens : -1LL,
               (long long)budget);
    if (ok) {
        test_check("model_encoder_order", subsequence(a.text, big), "not a subsequence");
        st = comi_compress_text(ctx, big, "Who took over as chief engineer?", &p, &b);
        test_check("model_encoder_deterministic", st == COMI_OK && !strcmp(a.text, b.text), "differs");
        comi_text_result_free(&b);
        comi_text_result_free(&a);
    }
    free(big);
    free(text);
    comi_encoder_free(enc);
}

static void data_tests(void) {
    const char *dir = test_data_dir();
    if (!dir) {
        test_skip("data_budget_every_example", "shared data not found ($COMI_DATA or ../shared/data)");
        test_skip("data_recall_at_least_truncate", "shared data not found");
        return;
    }
    const char *sets[] = {"nq20.jsonl", "hotpotqa.jsonl"};
    for (int s = 0; s < 2; s++) {
        char path[512], name[128];
        snprintf(path, sizeof path, "%s/%s", dir, sets[s]);
        comi_dataset *ds = NULL;
        if (comi_dataset_load(ctx, path, false, &ds) != COMI_OK) {
            snprintf(name, sizeof name, "data_load_%s", sets[s]);
            test_fail(name, "%s", comi_errmsg(ctx));
            continue;
        }
        size_t n = ds->n_examples < 50 ? ds->n_examples : 50;
        int over = 0, errors = 0;
        double rec_comi = 0, rec_trunc = 0;
        for (size_t i = 0; i < n; i++) {
            comi_example *x = &ds->examples[i];
            int64_t budget = comi_text_count_tokens(x->input) / 8;
            comi_text_params p = comi_text_default_params();
            p.target_tokens = budget;
            comi_text_result a, b;
            if (comi_compress_documents(ctx, (const char *const *)x->documents, x->n_documents,
                                        x->prompt, &p, &a) != COMI_OK) {
                errors++;
                continue;
            }
            if (comi_text_count_tokens(a.text) > budget) over++;
            comi_compress_baseline(ctx, COMI_BASELINE_TRUNCATE, x->input, x->prompt, budget, 0, &b);
            double r1 = 0, r2 = 0;
            comi_answer_recall(ctx, a.text, (const char *const *)x->answers, x->n_answers, &r1);
            comi_answer_recall(ctx, b.text, (const char *const *)x->answers, x->n_answers, &r2);
            rec_comi += r1;
            rec_trunc += r2;
            comi_text_result_free(&a);
            comi_text_result_free(&b);
        }
        snprintf(name, sizeof name, "data_budget_every_example_%s", sets[s]);
        test_check(name, over == 0 && errors == 0, "%d over budget, %d errors of %zu", over, errors, n);
        snprintf(name, sizeof name, "data_recall_at_least_truncate_%s", sets[s]);
        test_check(name, rec_comi >= rec_trunc, "comi %g < truncate %g (of %zu)", rec_comi,
                   rec_trunc, n);
        printf("# %s first %zu at 8x: recall comi %.3f, truncate %.3f\n", sets[s], n, rec_comi / n,
               rec_trunc / n);
        comi_dataset_free(ds);
    }
}

/* ---- limits: max_context_tokens (words) and max_bytes ------------------ */

/* Runs method (0: comi_compress_text, 1: comi_compress_documents, 2..4: the
 * baselines) on a context of ten words under the given limits. */
static comi_status limited_run(int method, int64_t max_tokens, uint64_t max_bytes, char *msg,
                               size_t msg_len, int64_t *orig) {
    static const char *const docs[2] = {"one two three four five six.", "seven eight nine ten."};
    const char *context = "one two three four five six. seven eight nine ten.";
    comi_ctx *c = limits_ctx(0, max_tokens, max_bytes);
    comi_text_result r;
    comi_status st;
    if (method == 0)
        st = comi_compress_text(c, context, "three", NULL, &r);
    else if (method == 1)
        st = comi_compress_documents(c, docs, 2, "three", NULL, &r);
    else
        st = comi_compress_baseline(c, (comi_baseline)(method - 2), context, "three", 3, 1, &r);
    snprintf(msg, msg_len, "%s", comi_errmsg(c));
    *orig = st == COMI_OK ? r.original_tokens : -1;
    if (st == COMI_OK) comi_text_result_free(&r);
    comi_ctx_free(c);
    return st;
}

static void limit_tests(void) {
    static const char *const names[5] = {"text", "documents", "truncate", "random", "bm25"};
    char name[96], msg[600];
    for (int m = 0; m < 5; m++) {
        int64_t orig;
        comi_status st = limited_run(m, 9, 0, msg, sizeof msg, &orig);
        snprintf(name, sizeof name, "limit_%s_tokens_below", names[m]);
        test_check(name,
                   st == COMI_ERR_LIMIT && strstr(msg, "has 10 tokens") &&
                       strstr(msg, "limit of 9") && strstr(msg, "--max-context-tokens"),
                   "status %d: %s", st, msg);
        st = limited_run(m, 10, 0, msg, sizeof msg, &orig);
        snprintf(name, sizeof name, "limit_%s_tokens_at", names[m]);
        test_check(name, st == COMI_OK && orig == 10, "status %d (%lld words): %s", st,
                   (long long)orig, msg);

        /* the working-set estimate: the figure a refusal names is the threshold */
        st = limited_run(m, 0, 1, msg, sizeof msg, &orig);
        unsigned long long need = limits_needs_figure(msg);
        snprintf(name, sizeof name, "limit_%s_bytes_tiny", names[m]);
        test_check(name, st == COMI_ERR_LIMIT && need > 1000 && need < (1u << 20),
                   "status %d, need %llu: %s", st, need, msg);
        if (need <= 1) continue;
        st = limited_run(m, 0, need - 1, msg, sizeof msg, &orig);
        char want[96];
        snprintf(want, sizeof want, "needs %llu bytes", need);
        char want_limit[96];
        snprintf(want_limit, sizeof want_limit, "limit of %llu bytes", need - 1);
        snprintf(name, sizeof name, "limit_%s_bytes_below", names[m]);
        test_check(name,
                   st == COMI_ERR_LIMIT && strstr(msg, want) && strstr(msg, want_limit) &&
                       strstr(msg, "--max-memory"),
                   "status %d: %s", st, msg);
        st = limited_run(m, 0, need, msg, sizeof msg, &orig);
        snprintf(name, sizeof name, "limit_%s_bytes_at", names[m]);
        test_check(name, st == COMI_OK && orig == 10, "status %d: %s", st, msg);
    }
}

/* The model encoder's estimate adds its session and unit vectors. */
static void model_limit_tests(void) {
    const char *g = test_golden_dir();
    if (!g) {
        test_skip("limit_model_encoder", "golden data not found ($COMI_GOLDEN)");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/forward/models/tiny-llama-spm.gguf", g);
    comi_encoder *enc = NULL;
    if (!test_check("limit_model_encoder_load", comi_encoder_load(ctx, path, &enc) == COMI_OK, "%s",
                    comi_errmsg(ctx)))
        return;
    const char *context = "The canal opened in 1914. Its chief engineer was John Stevens, "
                          "then George Goethals took over. Locks lift ships 26 metres.";
    comi_text_params p = comi_text_default_params();
    p.encoder = enc;
    unsigned long long need = 0, lexical_need = 0;
    for (int pass = 0; pass < 2; pass++) {
        comi_ctx *c = limits_ctx(0, 0, 1);
        comi_text_result r;
        p.encoder = pass == 0 ? NULL : enc;
        comi_status st = comi_compress_text(c, context, "Who took over?", &p, &r);
        unsigned long long *dst = pass == 0 ? &lexical_need : &need;
        *dst = st == COMI_ERR_LIMIT ? limits_needs_figure(comi_errmsg(c)) : 0;
        comi_ctx_free(c);
    }
    test_check("limit_model_encoder_counts_vectors_and_session", need > lexical_need + 4096,
               "model %llu, lexical %llu", need, lexical_need);
    for (int k = 0; k < 2 && need > 1; k++) {
        comi_ctx *c = limits_ctx(0, 0, k == 0 ? need - 1 : need);
        comi_text_result r;
        comi_status st = comi_compress_text(c, context, "Who took over?", &p, &r);
        test_check(k == 0 ? "limit_model_encoder_below" : "limit_model_encoder_at",
                   k == 0 ? st == COMI_ERR_LIMIT : st == COMI_OK, "status %d: %s", st,
                   comi_errmsg(c));
        if (st == COMI_OK) comi_text_result_free(&r);
        comi_ctx_free(c);
    }
    comi_encoder_free(enc);
}

/* Shapes that were cubic or superlinear (the group stage): many one-word
 * paragraphs, one huge paragraph, one huge sentence. Checked for the
 * budget and the answer; their speed is measured by bench_text_scale. */
static void scale_tests(void) {
    size_t n = 20000, cap = n * 16 + 256, k = 0;
    char *s = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        if (i == n / 2) k += (size_t)snprintf(s + k, cap - k, "Quetzalcoatlus\n\n");
        else k += (size_t)snprintf(s + k, cap - k, "w%zu\n\n", i);
    }
    comi_text_params p = comi_text_default_params();
    p.ratio = 8;
    comi_text_result r;
    comi_status st = comi_compress_text(ctx, s, "where is quetzalcoatlus", &p, &r);
    test_check("scale_many_tiny_paragraphs",
               st == COMI_OK && r.compressed_tokens == (int64_t)(n + 0) / 8 &&
                   strstr(r.text, "Quetzalcoatlus"),
               "%s %lld", st == COMI_OK ? "" : comi_errmsg(ctx),
               st == COMI_OK ? (long long)r.compressed_tokens : -1LL);
    if (st == COMI_OK) comi_text_result_free(&r);
    /* one paragraph of 60,000 words after a short one; the answer sentence
     * in its middle */
    k = (size_t)snprintf(s, cap, "Intro line.\n\n");
    for (size_t i = 0; i < 6000; i++) {
        if (i == 3000) k += (size_t)snprintf(s + k, cap - k, "The Quetzalcoatlus fossil was found in Texas. ");
        else k += (size_t)snprintf(s + k, cap - k, "Some w%zu filler text goes on, here again. ", i);
    }
    p.ratio = 100;
    st = comi_compress_text(ctx, s, "where was the quetzalcoatlus fossil found", &p, &r);
    int64_t words = comi_text_count_tokens(s);
    test_check("scale_one_huge_paragraph",
               st == COMI_OK && r.compressed_tokens == words / 100 && strstr(r.text, "in Texas."),
               "%s", st == COMI_OK ? "" : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);
    /* one sentence: no punctuation, no line breaks */
    k = 0;
    for (size_t i = 0; i < 20000; i++)
        k += (size_t)snprintf(s + k, cap - k, i == 12345 ? "quetzalcoatlus " : "w%zu ", i % 997);
    p.ratio = 50;
    st = comi_compress_text(ctx, s, "quetzalcoatlus", &p, &r);
    test_check("scale_one_huge_sentence",
               st == COMI_OK && r.compressed_tokens == 400 && strstr(r.text, "quetzalcoatlus"),
               "%s", st == COMI_OK ? "" : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);
    free(s);
}

int main(void) {
    ctx = comi_ctx_new(NULL);
    limit_tests();
    model_limit_tests();
    basic_tests();
    property_tests();
    scale_tests();
    vector_tests();
    model_tests();
    data_tests();
    comi_ctx_free(ctx);
    return test_exit();
}
