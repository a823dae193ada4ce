/* test_units.c — text mode's output units (comi_text_params.unit) and
 * budgets in a model's tokens (comi_text_params.tokenizer):
 *  - unit sentence: every piece of the output is a whole sentence of the
 *    input, byte for byte (an oracle of its own below: each output line is
 *    cut into the longest pieces that occur verbatim in a document, and each
 *    piece must start and end at a sentence boundary of that document), on
 *    nq20, HotpotQA and MultiNews at 4x to 32x, with the budget kept;
 *  - titles and line structure: a title line never runs into its text;
 *  - unit clause: whole pieces of the input, budget kept;
 *  - answer_first: a short answer-bearing sentence wins over a long lead one;
 *  - a budget shorter than every sentence fails instead of cutting one;
 *    unit names and bad values; the oracle rejects word mode's cuts;
 *  - tokenizer budgets with the real SmolLM2 tokenizer (FAIL when the model
 *    cannot be had): the reported counts are the tokenizer's own count of
 *    the input and of the output, and the output fits the budget.
 */
#include "comi.h"
#include "test.h"

#include <stdbool.h>
#include <stdint.h>

static comi_ctx *ctx;

/* ---- the oracle ---------------------------------------------------------- */

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Length of s[0, n) without trailing closing quotes and brackets. */
static size_t strip_closers(const char *s, size_t n) {
    for (;;) {
        if (n >= 1 && strchr("\"')]}", s[n - 1]) && s[n - 1]) {
            n--;
        } else if (n >= 3 && (uint8_t)s[n - 3] == 0xe2 && (uint8_t)s[n - 2] == 0x80 &&
                   ((uint8_t)s[n - 1] == 0x9d || (uint8_t)s[n - 1] == 0x99)) {
            n -= 3; /* ” ’ */
        } else {
            return n;
        }
    }
}

/* Does s[0, n) end with sentence-final punctuation (closers aside)? */
static bool ends_with_stop(const char *s, size_t n) {
    n = strip_closers(s, n);
    if (n >= 1 && (s[n - 1] == '.' || s[n - 1] == '!' || s[n - 1] == '?')) return true;
    return n >= 3 && (uint8_t)s[n - 3] == 0xe3 && (uint8_t)s[n - 2] == 0x80 &&
           (uint8_t)s[n - 1] == 0x82; /* 。 */
}

/* Does a sentence start at src[off]: the start of the document, a line
 * start, or after sentence-final punctuation (and spaces)? */
static bool starts_sentence(const char *src, size_t off) {
    if (off == 0) return true;
    size_t i = off;
    while (i > 0 && is_space(src[i - 1])) {
        if (src[i - 1] == '\n') return true;
        i--;
    }
    if (i == 0) return true;
    return ends_with_stop(src, i);
}

/* Does a sentence end at src[end]: sentence-final punctuation before it, or
 * the end of its line or document after it? */
static bool ends_sentence(const char *src, size_t start, size_t end) {
    if (ends_with_stop(src + start, end - start)) return true;
    while (src[end] == ' ' || src[end] == '\t' || src[end] == '\r') end++;
    return src[end] == '\n' || src[end] == '\0';
}

/* Is c a free-standing dash at src[i] (ASCII hyphen, en or em dash between spaces)? */
static size_t dash_len(const char *s) {
    if (s[0] == '-' && (s[1] == ' ' || s[1] == '\n' || !s[1])) return 1;
    if ((uint8_t)s[0] == 0xe2 && (uint8_t)s[1] == 0x80 &&
        ((uint8_t)s[2] == 0x93 || (uint8_t)s[2] == 0x94) && (s[3] == ' ' || s[3] == '\n' || !s[3]))
        return 3;
    return 0;
}

/* Does a clause start at src[off]: a sentence start, after , ; : or a
 * free-standing dash, or at an opening bracket? */
static bool starts_clause(const char *src, size_t off) {
    if (starts_sentence(src, off) || src[off] == '(' || src[off] == '[') return true;
    size_t i = off;
    while (i > 0 && is_space(src[i - 1])) i--;
    if (i == off || i == 0) return i == 0;
    char c = src[i - 1];
    if (c == ',' || c == ';' || c == ':') return true;
    return (i >= 1 && src[i - 1] == '-' && (i == 1 || is_space(src[i - 2]))) ||
           (i >= 3 && (uint8_t)src[i - 3] == 0xe2 && (uint8_t)src[i - 2] == 0x80 &&
            ((uint8_t)src[i - 1] == 0x93 || (uint8_t)src[i - 1] == 0x94));
}

/* Does a clause end at src[end]: a sentence end, , ; : before it, or an
 * opening bracket or a free-standing dash after it? */
static bool ends_clause(const char *src, size_t start, size_t end) {
    if (ends_sentence(src, start, end)) return true;
    size_t m = strip_closers(src + start, end - start);
    if (m && (src[start + m - 1] == ',' || src[start + m - 1] == ';' || src[start + m - 1] == ':'))
        return true;
    if (m && dash_len(src + start + m - 1) == 1) return true;
    if (m >= 3 && dash_len(src + start + m - 3) == 3) return true;
    while (src[end] == ' ' || src[end] == '\t' || src[end] == '\r') end++;
    return src[end] == '(' || src[end] == '[' || dash_len(src + end) > 0;
}

/* Whether piece (n bytes) occurs in one of the n_docs documents as whole
 * sentences (clauses: as whole clauses); found_any tells whether it occurs
 * at all. */
static bool occurs_whole(const char *const *docs, size_t n_docs, const char *piece, size_t n,
                         bool clauses, bool *found_any) {
    *found_any = false;
    for (size_t d = 0; d < n_docs; d++) {
        const char *src = docs[d];
        size_t len = strlen(src);
        const char *p = src;
        while ((p = memmem(p, len - (size_t)(p - src), piece, n)) != NULL) {
            *found_any = true;
            size_t off = (size_t)(p - src);
            if (clauses ? starts_clause(src, off) && ends_clause(src, off, off + n)
                        : starts_sentence(src, off) && ends_sentence(src, off, off + n))
                return true;
            p++;
        }
    }
    return false;
}

/* Checks that out is made of whole sentences (clauses) of docs, each
 * verbatim: every line of out is cut greedily into the longest pieces that
 * occur in a document as whole sentences (clauses), where a sentence piece
 * may end only at sentence-final punctuation before a space or at the line
 * end and a clause piece at any space. why gets the first offending piece. */
static bool whole_pieces(const char *out, const char *const *docs, size_t n_docs, bool clauses,
                         char *why, size_t why_n) {
    const char *line = out;
    while (*line) {
        size_t ll = strcspn(line, "\n");
        size_t p = 0;
        while (p < ll) {
            while (p < ll && line[p] == ' ') p++;
            if (p >= ll) break;
            /* candidate ends, shortest first; occurrence is monotone */
            size_t best = 0, last_found = 0;
            for (size_t q = p + 1; q <= ll; q++) {
                if (q < ll && !(line[q] == ' ' && (clauses || ends_with_stop(line + p, q - p))))
                    continue;
                bool any;
                bool whole = occurs_whole(docs, n_docs, line + p, q - p, clauses, &any);
                if (!any) break;
                last_found = q;
                if (whole) best = q;
            }
            if (!best) {
                size_t show = (last_found ? last_found : ll) - p;
                snprintf(why, why_n, "%s: '%.*s'",
                         last_found ? "not whole there" : "not in the input",
                         (int)(show < 160 ? show : 160), line + p);
                return false;
            }
            p = best;
        }
        line += ll;
        if (*line == '\n') line++;
    }
    return true;
}

static bool whole_sentences(const char *out, const char *const *docs, size_t n_docs, char *why,
                            size_t why_n) {
    return whole_pieces(out, docs, n_docs, false, why, why_n);
}

/* s with every run of whitespace made one space (malloc'ed). */
static char *squeeze(const char *s, size_t n) {
    char *o = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; o && i < n; i++) {
        if (is_space(s[i])) {
            if (k && o[k - 1] != ' ') o[k++] = ' ';
        } else {
            o[k++] = s[i];
        }
    }
    if (o) o[k] = '\0';
    return o;
}

/* A title (a document's first line, when more lines follow) in a whole-unit
 * output must head text of its own document: the next output line begins
 * with text found in that document after its title (whitespace runs made
 * one space; compared up to its first ". , ; : ! ?" or bracket, as kept units
 * share a line, and at most three words or 40 bytes). NULL when every title is headed, else the
 * first bare one. */
static const char *bare_title(const char *out, const char *const *docs, size_t n_docs) {
    static char line[256];
    const char *p = out;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && is_space(p[n - 1])) n--;
        const char *next = e ? e + 1 : p + strlen(p);
        while (*next == '\n') next++; /* the input's own blank lines may follow */
        char *nx = squeeze(next, strcspn(next, "\n"));
        size_t nn = nx ? strlen(nx) : 0, spaces = 0;
        for (size_t k = 0; k < nn; k++) {
            if (nx[k] == ' ' && ++spaces == 3) { /* three words */
                nn = k;
                break;
            }
            if (strchr(".,;:!?", nx[k]) && k > 0) {
                nn = k + 1;
                break;
            }
            if (strchr("([", nx[k]) && k > 3) {
                nn = k;
                break;
            }
        }
        if (nn > 40) nn = 40;
        bool title = false, headed = false;
        for (size_t d = 0; d < n_docs && n > 0 && nx; d++) {
            const char *t_end = strchr(docs[d], '\n');
            if (!t_end || (size_t)(t_end - docs[d]) != n || memcmp(docs[d], p, n)) continue;
            title = true;
            char *body = squeeze(t_end + 1, strlen(t_end + 1));
            for (const char *q = body; q && nn > 0 && !headed && *q; q++)
                headed = !strncmp(q, nx, nn);
            free(body);
        }
        free(nx);
        if (title && !headed) {
            snprintf(line, sizeof line, "%.*s", (int)(n < 200 ? n : 200), p);
            return line;
        }
        if (!e) break;
        p = title ? next + strcspn(next, "\n") : e + 1; /* a heading's text is no title */
        if (*p == '\n') p++;
    }
    return NULL;
}

/* ---- unit sentence / clause on the shared data --------------------------- */

static void data_tests(void) {
    const char *dir = test_data_dir();
    if (!dir) {
        test_fail("units_data", "shared data not found ($COMI_DATA or ../shared/data)");
        return;
    }
    const char *sets[] = {"nq20.jsonl", "hotpotqa.jsonl", "multinews.jsonl"};
    const double ratios[] = {4, 8, 16, 32};
    for (int s = 0; s < 3; s++) {
        char path[512], name[128];
        snprintf(path, sizeof path, "%s/%s", dir, sets[s]);
        comi_dataset *ds = NULL;
        if (comi_dataset_load(ctx, path, false, &ds) != COMI_OK) {
            snprintf(name, sizeof name, "units_data_load_%s", sets[s]);
            test_fail(name, "%s", comi_errmsg(ctx));
            continue;
        }
        size_t n = ds->n_examples < 25 ? ds->n_examples : 25;
        for (int unit = COMI_UNIT_CLAUSE; unit <= COMI_UNIT_SENTENCE; unit++) {
            int bad = 0, over = 0, errors = 0, runs = 0, bare = 0;
            char first_bare[300] = "";
            double fill = 0;
            char first[400] = "";
            for (size_t i = 0; i < n; i++) {
                comi_example *x = &ds->examples[i];
                const char *one[1] = {x->input};
                const char *const *docs = x->documents ? (const char *const *)x->documents : one;
                size_t n_docs = x->documents ? x->n_documents : 1;
                int64_t words = 0;
                for (size_t d = 0; d < n_docs; d++) words += comi_text_count_tokens(docs[d]);
                for (size_t r = 0; r < sizeof ratios / sizeof *ratios; r++) {
                    comi_text_params p = comi_text_default_params();
                    p.ratio = ratios[r];
                    p.unit = unit;
                    comi_text_result res;
                    runs++;
                    if (comi_compress_documents(ctx, docs, n_docs, x->prompt, &p, &res) != COMI_OK) {
                        if (!errors++)
                            snprintf(first, sizeof first, "example %zu at %gx: %s", i, ratios[r],
                                     comi_errmsg(ctx));
                        continue;
                    }
                    int64_t budget = (int64_t)(words / ratios[r]);
                    int64_t got = comi_text_count_tokens(res.text);
                    if (got > budget || res.compressed_tokens != got) {
                        if (!over++)
                            snprintf(first, sizeof first,
                                     "example %zu at %gx: %lld words (reported %lld), budget %lld",
                                     i, ratios[r], (long long)got,
                                     (long long)res.compressed_tokens, (long long)budget);
                    }
                    fill += budget > 0 ? (double)got / (double)budget : 1;
                    char why[300];
                    bool ok;
                    if (unit == COMI_UNIT_SENTENCE) {
                        ok = whole_sentences(res.text, docs, n_docs, why, sizeof why);
                    } else { /* clauses: pieces ending at clause punctuation, verbatim */
                        ok = whole_pieces(res.text, docs, n_docs, true, why, sizeof why);
                    }
                    if (!ok && !bad++)
                        snprintf(first, sizeof first, "example %zu at %gx: %s", i, ratios[r], why);
                    const char *bt = bare_title(res.text, docs, n_docs);
                    if (bt && !bare++)
                        snprintf(first_bare, sizeof first_bare, "example %zu at %gx: '%s'", i,
                                 ratios[r], bt);
                    comi_text_result_free(&res);
                }
            }
            const char *u = comi_text_unit_name(unit);
            snprintf(name, sizeof name, "units_%s_verbatim_%s", u, sets[s]);
            test_check(name, bad == 0 && errors == 0, "%d of %d outputs bad, %d errors; first: %s",
                       bad, runs, errors, first);
            /* a title is kept only as the heading of its document's kept text */
            snprintf(name, sizeof name, "units_%s_titles_headed_%s", u, sets[s]);
            test_check(name, bare == 0, "%d of %d outputs hold a bare title; first: %s", bare,
                       runs, first_bare);
            snprintf(name, sizeof name, "units_%s_budget_%s", u, sets[s]);
            test_check(name, over == 0 && errors == 0, "%d of %d over budget; first: %s", over,
                       runs, first);
            /* the fill pass hands what the groups left to whole units elsewhere */
            snprintf(name, sizeof name, "units_%s_budget_used_%s", u, sets[s]);
            test_check(name, runs > errors && fill / (runs - errors) >= 0.8,
                       "mean budget use %.3f < 0.8", fill / (runs > errors ? runs - errors : 1));
            printf("# %s unit %s: mean budget use %.3f over %d runs\n", sets[s], u,
                   fill / (runs > errors ? runs - errors : 1), runs);
        }
        comi_dataset_free(ds);
    }
}

/* ---- hand-made cases ------------------------------------------------------ */

static const char *const canal =
    "The Panama Canal is an artificial waterway of about 82 kilometres that crosses the Isthmus "
    "of Panama. Ships that use it avoid the long and dangerous passage around Cape Horn.\n\n"
    "Construction\n"
    "France was the first country to attempt the work, in 1881. The United States bought the "
    "French equipment and excavations in 1904, after Panama separated from Colombia. When "
    "Stevens resigned in 1907, Roosevelt gave the job to the army engineer George Washington "
    "Goethals, who led the project until it was finished. The canal opened on 15 August 1914.\n";

static void hand_tests(void) {
    comi_text_params p = comi_text_default_params();
    comi_status st;
    comi_text_result r;
    const char *docs[1] = {canal};
    char why[300] = "";

    /* a title is no sentence: at 7 words (the shortest sentence, "The canal
     * opened on 15 August 1914.", plus its heading "Construction" make 8)
     * the budget holds nothing, an error rather than a bare title */
    p.unit = COMI_UNIT_SENTENCE;
    p.target_tokens = 7;
    st = comi_compress_text(ctx, canal, "When did the canal open?", &p, &r);
    test_check("units_sentence_no_bare_title", st == COMI_ERR_INVALID_ARG &&
                   strstr(comi_errmsg(ctx), "shorter than every sentence"),
               "status %d: %s", (int)st, st ? comi_errmsg(ctx) : r.text);
    if (st == COMI_OK) comi_text_result_free(&r);
    p.target_tokens = 8;
    st = comi_compress_text(ctx, canal, "When did the canal open?", &p, &r);
    test_check("units_sentence_title_heads_sentence",
               st == COMI_OK && !strcmp(r.text, "Construction\nThe canal opened on 15 August 1914."),
               "status %d: '%s'", (int)st, st ? comi_errmsg(ctx) : r.text);
    if (st == COMI_OK) comi_text_result_free(&r);

    /* what the groups leave is filled only with sentences that match the
     * question: "Cats sleep a lot." (and its heading) would fit the 6 words
     * left, but it is filler to a reader */
    {
        const char *two[2] = {"Tower\nThe tower opened in 1889. It was built of iron by many "
                              "workers over two years.",
                              "Cats\nCats sleep a lot."};
        p.target_tokens = 12;
        st = comi_compress_documents(ctx, two, 2, "When did the tower open?", &p, &r);
        test_check("units_sentence_fill_matches_question",
                   st == COMI_OK && !strcmp(r.text, "Tower\nThe tower opened in 1889."),
                   "status %d: '%s'", (int)st, st ? comi_errmsg(ctx) : r.text);
        if (st == COMI_OK) comi_text_result_free(&r);
        /* a question that matches nothing still gets text, never an empty success */
        p.target_tokens = 6;
        st = comi_compress_documents(ctx, two, 2, "What do dogs eat?", &p, &r);
        test_check("units_sentence_fill_no_match", st == COMI_OK && r.compressed_tokens > 0,
                   "status %d: %s", (int)st, st ? comi_errmsg(ctx) : "empty");
        if (st == COMI_OK) comi_text_result_free(&r);
    }

    /* whole sentences, verbatim, at every target from tight to loose */
    int bad = 0, fails = 0;
    for (int64_t t = 8; t <= 80; t += 2) {
        p.unit = COMI_UNIT_SENTENCE;
        p.target_tokens = t;
        st = comi_compress_text(ctx, canal, "Who led the project until it was finished?", &p, &r);
        if (st != COMI_OK) {
            fails++;
            continue;
        }
        if (!whole_sentences(r.text, docs, 1, why, sizeof why) ||
            comi_text_count_tokens(r.text) > t)
            bad++;
        /* a title line never runs into its text: "Construction" ends its line */
        const char *c = strstr(r.text, "Construction");
        if (c && c[12] != '\n' && c[12] != '\0') bad++;
        comi_text_result_free(&r);
    }
    test_check("units_sentence_canal_targets", bad == 0 && fails == 0,
               "%d bad outputs, %d failures (%s)", bad, fails, why);

    /* the splice the issue quotes cannot happen: the Goethals sentence is
     * whole (word mode cuts it to "Stevens resigned who led the project ...") */
    p.unit = COMI_UNIT_SENTENCE;
    p.target_tokens = 0;
    p.ratio = 3;
    st = comi_compress_text(ctx, canal, "Who led the project until it was finished?", &p, &r);
    test_check("units_sentence_answer_whole",
               st == COMI_OK && strstr(r.text, "When Stevens resigned in 1907, Roosevelt gave the "
                                               "job to the army engineer George Washington "
                                               "Goethals, who led the project until it was "
                                               "finished."),
               "%s", st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);

    /* answer_first: under a tight budget (ratio 3: 30 words for the
     * 41-word paragraph) the 24-word answer sentence of a "who" question is
     * kept whole instead of the lead sentence and a cut of the answer clause */
    for (int unit = COMI_UNIT_WORD; unit <= COMI_UNIT_SENTENCE; unit += 2) {
        comi_text_params a = comi_text_default_params();
        a.ratio = 3;
        a.unit = unit;
        bool set = comi_text_set_param(ctx, &a, "answer_first", 1) == COMI_OK && a.answer_first;
        st = comi_compress_text(ctx, canal, "Who led the project until it was finished?", &a, &r);
        test_check(unit ? "units_answer_first_sentence" : "units_answer_first_word",
                   set && st == COMI_OK &&
                       strstr(r.text, "When Stevens resigned in 1907, Roosevelt gave the job to "
                                      "the army engineer George Washington Goethals, who led the "
                                      "project until it was finished.") &&
                       comi_text_count_tokens(r.text) <= comi_text_count_tokens(canal) / 3,
                   "%s", st == COMI_OK ? r.text : comi_errmsg(ctx));
        if (st == COMI_OK) comi_text_result_free(&r);
    }

    /* the oracle itself: it rejects word mode's cut of the same input */
    p.unit = COMI_UNIT_WORD;
    st = comi_compress_text(ctx, canal, "Who led the project until it was finished?", &p, &r);
    test_check("units_oracle_rejects_cuts",
               st == COMI_OK && !whole_sentences(r.text, docs, 1, why, sizeof why) &&
                   whole_pieces("France was the first country to attempt the work,", docs, 1,
                                true, why, sizeof why) &&
                   !whole_pieces("France was the first country", docs, 1, true, why, sizeof why),
               "%s", st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);
    p.unit = COMI_UNIT_SENTENCE;

    /* consecutive sentences keep the input's own separator (the title's line break) */
    p.ratio = 1;
    st = comi_compress_text(ctx, canal, "canal", &p, &r);
    test_check("units_sentence_ratio1_is_input",
               st == COMI_OK && strncmp(r.text, canal, strlen(canal) - 1) == 0 &&
                   strlen(r.text) == strlen(canal) - 1,
               "%s", st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);

    /* a budget shorter than every sentence fails, naming the shortest */
    p.target_tokens = 3;
    st = comi_compress_text(ctx, "One two three four five six seven. Eight nine ten eleven twelve.",
                            "seven", &p, &r);
    test_check("units_sentence_budget_too_small",
               st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "shorter than every sentence") &&
                   strstr(comi_errmsg(ctx), "5 words"),
               "status %d: %s", st, comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);
    /* ... while unit word keeps the best words */
    p.unit = COMI_UNIT_WORD;
    st = comi_compress_text(ctx, "One two three four five six seven. Eight nine ten eleven twelve.",
                            "seven", &p, &r);
    test_check("units_word_budget_small", st == COMI_OK && comi_text_count_tokens(r.text) == 3 &&
                                              strstr(r.text, "seven"),
               "%s", st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);

    /* clause: whole clauses, never a cut one: the output is one of the
     * subsets of the three clauses that fit, joined by spaces */
    static const char *const clauses[3] = {"When Stevens resigned in 1907,",
                                           "Roosevelt gave the job to Goethals,",
                                           "who led the project until it was finished."};
    p.unit = COMI_UNIT_CLAUSE;
    p.min_unit_words = 1;
    bad = 0;
    for (int64_t t = 5; t <= 19; t++) {
        p.target_tokens = t;
        st = comi_compress_text(ctx, "When Stevens resigned in 1907, Roosevelt gave the job to "
                                "Goethals, who led the project until it was finished.",
                                "Who led the project?", &p, &r);
        if (st != COMI_OK) {
            bad++;
            continue;
        }
        bool match = false;
        for (int m = 1; m < 8 && !match; m++) {
            char want[200] = "";
            for (int c = 0; c < 3; c++)
                if (m & (1 << c))
                    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s",
                             *want ? " " : "", clauses[c]);
            match = !strcmp(r.text, want) && comi_text_count_tokens(want) <= t;
        }
        if (!match) {
            snprintf(why, sizeof why, "target %lld: '%s'", (long long)t, r.text);
            bad++;
        }
        comi_text_result_free(&r);
    }
    test_check("units_clause_whole", bad == 0, "%d bad (%s)", bad, why);
    p.min_unit_words = comi_text_default_params().min_unit_words;

    /* text without spaces (Chinese): whole sentences, byte-exact, no space added */
    const char *zh = "北京是中国的首都。长城很长。上海是中国最大的城市，人口约两千四百万。";
    comi_text_params z = comi_text_default_params();
    z.unit = COMI_UNIT_SENTENCE;
    z.target_tokens = 20;
    z.lead_weight = 0; /* (the lead bonus would keep the two first sentences instead) */
    const char *zdocs[1] = {zh};
    st = comi_compress_text(ctx, zh, "上海的人口是多少", &z, &r);
    test_check("units_sentence_cjk",
               st == COMI_OK && strstr(r.text, "上海是中国最大的城市，人口约两千四百万。") &&
                   !strchr(r.text, ' ') && r.compressed_tokens <= 20 &&
                   whole_sentences(r.text, zdocs, 1, why, sizeof why),
               "%s", st == COMI_OK ? r.text : comi_errmsg(ctx));
    if (st == COMI_OK) comi_text_result_free(&r);

    /* names */
    comi_text_params q = comi_text_default_params();
    bool ok = q.unit == COMI_UNIT_WORD;
    ok &= comi_text_set_unit(ctx, &q, "sentence") == COMI_OK && q.unit == COMI_UNIT_SENTENCE;
    ok &= comi_text_set_unit(ctx, &q, "clause") == COMI_OK && q.unit == COMI_UNIT_CLAUSE;
    ok &= comi_text_set_unit(ctx, &q, "readable") == COMI_OK && q.unit == COMI_UNIT_SENTENCE;
    ok &= comi_text_set_unit(ctx, &q, "word") == COMI_OK && q.unit == COMI_UNIT_WORD;
    ok &= comi_text_set_unit(ctx, &q, "Sentence") == COMI_ERR_INVALID_ARG &&
          strstr(comi_errmsg(ctx), "'Sentence'") != NULL && q.unit == COMI_UNIT_WORD;
    ok &= !strcmp(comi_text_unit_name(COMI_UNIT_SENTENCE), "sentence") &&
          comi_text_unit_name(3) == NULL && comi_text_unit_name(-1) == NULL;
    q.unit = 3;
    ok &= comi_compress_text(ctx, canal, "canal", &q, &r) == COMI_ERR_INVALID_ARG &&
          strstr(comi_errmsg(ctx), "unit: 3") != NULL;
    test_check("units_names", ok, "%s", comi_errmsg(ctx));
}

/* ---- budgets in SmolLM2's tokens ----------------------------------------- */

static int64_t count_ids(const comi_tokenizer *tok, const char *s) {
    comi_tokenize_params tp = comi_tokenize_default_params();
    tp.add_bos = 0;
    tp.add_eos = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (comi_tokenize(ctx, tok, s, strlen(s), &tp, &ids, &n) != COMI_OK) return -1;
    comi_free(ids);
    return (int64_t)n;
}

static void tokenizer_tests(void) {
    char *path = test_smollm2_path();
    if (!path) {
        test_fail("units_tokenizer_model",
                  "SmolLM2 cannot be had: scripts/fetch_models.sh failed and COMI_SMOLLM2 is not "
                  "set");
        return;
    }
    comi_tokenizer *tok = NULL;
    if (comi_tokenizer_load(ctx, path, &tok) != COMI_OK) {
        test_fail("units_tokenizer_model", "%s: %s", path, comi_errmsg(ctx));
        free(path);
        return;
    }
    const char *dir = test_data_dir();
    comi_dataset *ds = NULL;
    char dpath[512];
    snprintf(dpath, sizeof dpath, "%s/nq20.jsonl", dir ? dir : "../shared/data");
    if (comi_dataset_load(ctx, dpath, false, &ds) != COMI_OK) {
        test_fail("units_tokenizer_data", "%s", comi_errmsg(ctx));
        comi_tokenizer_free(tok);
        free(path);
        return;
    }
    int bad = 0, runs = 0;
    char first[400] = "";
    double use = 0;
    for (size_t i = 0; i < 6 && i < ds->n_examples; i++) {
        const comi_example *x = &ds->examples[i];
        int64_t total = count_ids(tok, x->input);
        for (int unit = COMI_UNIT_WORD; unit <= COMI_UNIT_SENTENCE; unit += 2) {
            for (int k = 0; k < 3; k++) {
                comi_text_params p = comi_text_default_params();
                p.tokenizer = tok;
                p.unit = unit;
                if (k < 2) p.ratio = k ? 16 : 4;
                else p.target_tokens = 200;
                int64_t budget = k < 2 ? (int64_t)(total / p.ratio) : 200;
                comi_text_result r;
                runs++;
                if (comi_compress_text(ctx, x->input, x->prompt, &p, &r) != COMI_OK) {
                    if (!bad++) snprintf(first, sizeof first, "%s", comi_errmsg(ctx));
                    continue;
                }
                int64_t got = count_ids(tok, r.text);
                if (r.original_tokens != total || r.compressed_tokens != got || got > budget ||
                    got < 1) {
                    if (!bad++)
                        snprintf(first, sizeof first,
                                 "example %zu unit %d: original %lld (tokenizer: %lld), "
                                 "compressed %lld (tokenizer: %lld), budget %lld",
                                 i, unit, (long long)r.original_tokens, (long long)total,
                                 (long long)r.compressed_tokens, (long long)got,
                                 (long long)budget);
                }
                use += (double)got / (double)budget;
                if (unit == COMI_UNIT_SENTENCE) {
                    const char *one[1] = {x->input};
                    char why[300];
                    if (!whole_sentences(r.text, one, 1, why, sizeof why) && !bad++)
                        snprintf(first, sizeof first, "%s", why);
                }
                comi_text_result_free(&r);
            }
        }
    }
    test_check("units_tokenizer_budgets", bad == 0, "%d of %d runs bad; first: %s", bad, runs,
               first);
    test_check("units_tokenizer_budget_used", runs && use / runs >= 0.75,
               "mean use %.3f of the token budget", runs ? use / runs : 0);
    printf("# tokenizer budgets: mean use %.3f over %d runs\n", runs ? use / runs : 0, runs);
    /* documents: the counts are the sum over documents */
    const comi_example *x = &ds->examples[0];
    if (x->documents) {
        int64_t total = 0;
        for (size_t d = 0; d < x->n_documents; d++) total += count_ids(tok, x->documents[d]);
        comi_text_params p = comi_text_default_params();
        p.tokenizer = tok;
        p.target_tokens = 100;
        comi_text_result r;
        comi_status st = comi_compress_documents(ctx, (const char *const *)x->documents,
                                                 x->n_documents, x->prompt, &p, &r);
        int64_t got = st == COMI_OK ? count_ids(tok, r.text) : -1;
        test_check("units_tokenizer_documents",
                   st == COMI_OK && r.original_tokens == total && r.compressed_tokens == got &&
                       got <= 100 && got >= 75,
                   "status %d, original %lld vs %lld, compressed %lld vs %lld", st,
                   st == COMI_OK ? (long long)r.original_tokens : -1LL, (long long)total,
                   st == COMI_OK ? (long long)r.compressed_tokens : -1LL, (long long)got);
        if (st == COMI_OK) comi_text_result_free(&r);
    }
    comi_dataset_free(ds);
    comi_tokenizer_free(tok);
    free(path);
}

int main(void) {
    ctx = comi_ctx_new(NULL);
    hand_tests();
    data_tests();
    tokenizer_tests();
    comi_ctx_free(ctx);
    return test_exit();
}
