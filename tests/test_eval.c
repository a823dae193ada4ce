/* test_eval.c — answer metrics on hand-written cases (the SQuAD
 * normalisation: case, punctuation, articles, whitespace; lists of
 * references), COMI JSONL loading and its errors (with line numbers), and
 * the baseline compressors; bootstrap intervals of a mean. */
#include "comi.h"
#include "test.h"

#include <unistd.h>

static comi_ctx *ctx;

static void check_norm(const char *name, const char *in, const char *want) {
    char *out = NULL;
    comi_status st = comi_normalize_answer(ctx, in, &out);
    test_check(name, st == COMI_OK && out && !strcmp(out, want), "normalize('%s') = '%s', want '%s'",
               in, out ? out : "(null)", want);
    comi_free(out);
}

static comi_answer_scores score(const char *pred, const char *const *refs, size_t n) {
    comi_answer_scores s;
    comi_status st = comi_score_answer(ctx, pred, refs, n, &s);
    if (st != COMI_OK) printf("# score error: %s\n", comi_errmsg(ctx));
    return s;
}

static double recall(const char *text, const char *const *refs, size_t n) {
    double r = -1;
    if (comi_answer_recall(ctx, text, refs, n, &r) != COMI_OK) return -1;
    return r;
}

static const char *write_tmp(const char *name, const char *content) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/comi_test_eval_%d_%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    fputs(content, f);
    fclose(f);
    return path;
}

static void check_load_error(const char *name, const char *content, comi_status want,
                             const char *must_contain) {
    const char *p = write_tmp(name, content);
    comi_dataset *ds = NULL;
    comi_status st = comi_dataset_load(ctx, p, false, &ds);
    test_check(name, st == want && ds == NULL && strstr(comi_errmsg(ctx), must_contain) != NULL,
               "status %d, message '%s' (want %d containing '%s')", st, comi_errmsg(ctx), want,
               must_contain);
    comi_dataset_free(ds);
    unlink(p);
}

static int is_subsequence(const char *out, const char *in) {
    /* every word of out appears in in, in order */
    char *o = strdup(out), *i = strdup(in);
    char *so, *si;
    char *wi = strtok_r(i, " \n\t", &si);
    int ok = 1;
    for (char *wo = strtok_r(o, " \n\t", &so); wo; wo = strtok_r(NULL, " \n\t", &so)) {
        while (wi && strcmp(wi, wo)) wi = strtok_r(NULL, " \n\t", &si);
        if (!wi) {
            ok = 0;
            break;
        }
        wi = strtok_r(NULL, " \n\t", &si);
    }
    free(o);
    free(i);
    return ok;
}

int main(void) {
    ctx = comi_ctx_new(NULL);

    /* normalisation */
    check_norm("norm_case_punct", "The Quick, Brown fox!", "quick brown fox");
    check_norm("norm_articles_only", "  a  An THE  ", "");
    check_norm("norm_article_inside_word", "theater anthem a-ha", "theater anthem aha");
    check_norm("norm_dotted", "U.S.A.", "usa");
    check_norm("norm_underscore", "the_cat", "thecat");
    check_norm("norm_unicode_lower", "ÉCOLE Théâtre", "école théâtre");
    check_norm("norm_whitespace", "\tFort\n\n Riley,\u00a0Kansas ", "fort riley kansas");
    check_norm("norm_article_before_unicode_punct", "the\u2014end", "\u2014end");
    check_norm("norm_empty", "", "");
    char *bad = NULL;
    test_check("norm_invalid_utf8", comi_normalize_answer(ctx, "ab\xff", &bad) == COMI_ERR_FORMAT,
               "status");

    /* EM / F1 / accuracy */
    const char *r1[] = {"eiffel tower"};
    comi_answer_scores s = score("The Eiffel Tower", r1, 1);
    test_check("em_articles_case", s.exact_match == 1 && s.f1 == 1 && s.accuracy == 1,
               "em %g f1 %g acc %g", s.exact_match, s.f1, s.accuracy);
    const char *r2[] = {"Kansas"};
    s = score("Fort Riley, Kansas", r2, 1);
    test_check("f1_partial", s.exact_match == 0 && fabs(s.f1 - 0.5) < 1e-12 && s.accuracy == 1,
               "em %g f1 %g acc %g", s.exact_match, s.f1, s.accuracy);
    const char *r3[] = {"y y z"};
    s = score("x y y", r3, 1);
    test_check("f1_counts_duplicates", fabs(s.f1 - 2.0 / 3.0) < 1e-12, "f1 %g", s.f1);
    const char *r4[] = {"Texas"};
    s = score("it is in Fort Riley, Kansas.", r4, 1);
    test_check("no_match", s.exact_match == 0 && s.f1 == 0 && s.accuracy == 0, "em %g f1 %g acc %g",
               s.exact_match, s.f1, s.accuracy);
    const char *r5[] = {"nope", "Kansas", "Fort Riley"};
    s = score("kansas", r5, 3);
    test_check("max_over_refs", s.exact_match == 1 && s.f1 == 1 && s.accuracy == 1,
               "em %g f1 %g acc %g", s.exact_match, s.f1, s.accuracy);
    s = score("Fort Riley", r5, 0);
    test_check("no_refs_zero", s.exact_match == 0 && s.f1 == 0 && s.accuracy == 0, "em %g",
               s.exact_match);
    const char *r6[] = {"the"};
    s = score("", r6, 1);
    test_check("empty_vs_article_only", s.exact_match == 1 && s.f1 == 0,
               "em %g f1 %g (SQuAD: both normalise to '', F1 0)", s.exact_match, s.f1);

    /* answer recall */
    const char *ra[] = {"Kansas", "Fort Riley, Kansas"};
    test_check("recall_hit", recall("Soldiers return to Fort Riley, Kansas.", ra, 2) == 1, "miss");
    test_check("recall_miss", recall("Soldiers return to Fort Riley.", r4, 1) == 0, "hit");
    test_check("recall_substring_semantics", recall("Arkansas", r2, 1) == 1,
               "Python `in` semantics: 'kansas' in 'arkansas'");
    const char *rb[] = {"U.S. Army"};
    test_check("recall_punct_normalised", recall("the US army's base", rb, 1) == 1, "miss");
    test_check("recall_no_refs", recall("text", rb, 0) == 0, "hit");

    /* JSONL */
    const char *good =
        "{\"id\": \"q1\", \"input\": \"Doc one. Doc two.\", \"prompt\": \"Q?\", \"answer\": "
        "[\"a1\", \"a2\"], \"documents\": [\"Doc one.\", \"Doc two.\"], \"extra\": 1}\n"
        "\n"
        "{\"id\": 7, \"input\": \"x\", \"prompt\": \"y\", \"answer\": \"z\"}\n"
        "{\"input\": \"x\", \"prompt\": \"y\", \"answer\": []}\r\n";
    const char *p = write_tmp("good.jsonl", good);
    comi_dataset *ds = NULL;
    comi_status st = comi_dataset_load(ctx, p, false, &ds);
    test_check("jsonl_load", st == COMI_OK && ds && ds->n_examples == 3, "status %d: %s", st,
               comi_errmsg(ctx));
    if (ds && ds->n_examples == 3) {
        comi_example *x = &ds->examples[0];
        test_check("jsonl_fields",
                   !strcmp(x->id, "q1") && !strcmp(x->prompt, "Q?") && x->n_answers == 2 &&
                       !strcmp(x->answers[1], "a2") && x->n_documents == 2 &&
                       !strcmp(x->documents[1], "Doc two.") && x->line == 1,
                   "fields wrong");
        x = &ds->examples[1];
        test_check("jsonl_answer_string_id_int",
                   !strcmp(x->id, "7") && x->n_answers == 1 && !strcmp(x->answers[0], "z") &&
                       x->documents == NULL && x->line == 3,
                   "id '%s' answers %zu line %lld", x->id, x->n_answers, (long long)x->line);
        x = &ds->examples[2];
        test_check("jsonl_no_id", !strcmp(x->id, "line:4") && x->n_answers == 0, "id '%s'", x->id);
    }
    comi_dataset_free(ds);
    unlink(p);
    comi_dataset_free(NULL);

    check_load_error("jsonl_bad_json_line",
                     "{\"input\":\"x\",\"prompt\":\"y\",\"answer\":\"z\"}\n{\"input\": \n",
                     COMI_ERR_FORMAT, "line 2");
    check_load_error("jsonl_missing_prompt",
                     "{\"input\":\"x\",\"prompt\":\"y\",\"answer\":\"z\"}\n\n"
                     "{\"input\":\"x\",\"answer\":\"z\"}\n",
                     COMI_ERR_FORMAT, "line 3: missing field 'prompt'");
    check_load_error("jsonl_answer_number", "{\"input\":\"x\",\"prompt\":\"y\",\"answer\":3}\n",
                     COMI_ERR_FORMAT, "line 1: field 'answer'");
    check_load_error("jsonl_documents_not_strings",
                     "{\"input\":\"x\",\"prompt\":\"y\",\"answer\":\"a\",\"documents\":[1]}\n",
                     COMI_ERR_FORMAT, "documents[0] is not a string");
    check_load_error("jsonl_not_object", "[1, 2]\n", COMI_ERR_FORMAT, "line 1: not a JSON object");
    check_load_error("jsonl_invalid_utf8", "{\"input\":\"x\xff\",\"prompt\":\"y\",\"answer\":\"a\"}\n",
                     COMI_ERR_FORMAT, "line 1");
    st = comi_dataset_load(ctx, "/nonexistent/comi.jsonl", false, &ds);
    test_check("jsonl_missing_file", st == COMI_ERR_IO && strstr(comi_errmsg(ctx), "/nonexistent"),
               "status %d '%s'", st, comi_errmsg(ctx));

    p = write_tmp("skip.jsonl", "{\"input\":\"x\",\"prompt\":\"y\",\"answer\":\"z\"}\nnot json\n"
                                "{\"input\":\"x\"}\n{\"input\":\"x\",\"prompt\":\"y\",\"answer\":\"z\"}\n");
    st = comi_dataset_load(ctx, p, true, &ds);
    test_check("jsonl_skip_bad",
               st == COMI_OK && ds->n_examples == 2 && ds->n_skipped == 2 &&
                   strstr(ds->first_error, "line 2") && ds->examples[1].line == 4,
               "status %d, n %zu skipped %zu first '%s'", st, ds ? ds->n_examples : 0,
               ds ? ds->n_skipped : 0, ds ? ds->first_error : "");
    comi_dataset_free(ds);
    st = comi_dataset_load(ctx, p, false, &ds);
    test_check("jsonl_stop_on_bad", st == COMI_ERR_FORMAT && strstr(comi_errmsg(ctx), "line 2"),
               "status %d '%s'", st, comi_errmsg(ctx));
    unlink(p);

    /* baselines */
    const char *text = "Alpha beta gamma. The capital of France is Paris. Delta epsilon zeta eta.";
    comi_text_result res;
    st = comi_compress_baseline(ctx, COMI_BASELINE_TRUNCATE, text, "q", 4, 0, &res);
    test_check("baseline_truncate", st == COMI_OK && !strcmp(res.text, "Alpha beta gamma. The") &&
                                        res.compressed_tokens == 4 && res.original_tokens == 13,
               "'%s' %lld/%lld", res.text, (long long)res.compressed_tokens,
               (long long)res.original_tokens);
    comi_text_result_free(&res);
    st = comi_compress_baseline(ctx, COMI_BASELINE_BM25, text, "What is the capital of France?", 7,
                                0, &res);
    test_check("baseline_bm25", st == COMI_OK && !strcmp(res.text, "The capital of France is Paris."),
               "'%s'", res.text);
    comi_text_result_free(&res);
    comi_text_result r_a, r_b;
    comi_compress_baseline(ctx, COMI_BASELINE_RANDOM, text, "q", 6, 42, &r_a);
    comi_compress_baseline(ctx, COMI_BASELINE_RANDOM, text, "q", 6, 42, &r_b);
    test_check("baseline_random",
               r_a.compressed_tokens == 6 && comi_text_count_tokens(r_a.text) == 6 &&
                   !strcmp(r_a.text, r_b.text) && is_subsequence(r_a.text, text),
               "'%s' vs '%s'", r_a.text, r_b.text);
    comi_text_result_free(&r_a);
    comi_text_result_free(&r_b);
    st = comi_compress_baseline(ctx, COMI_BASELINE_TRUNCATE, text, "q", -1, 0, &res);
    test_check("baseline_negative_budget", st == COMI_ERR_INVALID_ARG, "status %d", st);

    /* 95% bootstrap intervals of a mean */
    {
        double v[100], lo = -1, hi = -1, lo2 = -1, hi2 = -1;
        for (int i = 0; i < 100; i++) v[i] = 0.75;
        st = comi_bootstrap_interval(ctx, v, 100, 1000, 1, &lo, &hi);
        test_check("bootstrap_constant", st == COMI_OK && lo == 0.75 && hi == 0.75, "[%g, %g]", lo,
                   hi);
        /* 50 of 100 right: the normal-approximation interval is 0.5 -+ 1.96 * 0.05 =
         * [0.402, 0.598]; the percentile bootstrap lands within a resampling error of it */
        for (int i = 0; i < 100; i++) v[i] = i % 2;
        st = comi_bootstrap_interval(ctx, v, 100, 2000, 7, &lo, &hi);
        test_check("bootstrap_binary", st == COMI_OK && fabs(lo - 0.402) < 0.02 &&
                                           fabs(hi - 0.598) < 0.02 && lo < 0.5 && hi > 0.5,
                   "[%g, %g]", lo, hi);
        comi_bootstrap_interval(ctx, v, 100, 2000, 7, &lo2, &hi2);
        test_check("bootstrap_seeded", lo2 == lo && hi2 == hi, "[%g, %g] vs [%g, %g]", lo2, hi2, lo,
                   hi);
        /* 10 of 20 right: the interval widens with fewer examples */
        st = comi_bootstrap_interval(ctx, v, 20, 2000, 7, &lo2, &hi2);
        test_check("bootstrap_width", st == COMI_OK && hi2 - lo2 > 1.8 * (hi - lo) && lo2 < 0.5 &&
                                          hi2 > 0.5,
                   "n 20 [%g, %g] vs n 100 [%g, %g]", lo2, hi2, lo, hi);
        st = comi_bootstrap_interval(ctx, v, 0, 1000, 1, &lo, &hi);
        test_check("bootstrap_empty", st == COMI_OK && lo == 0 && hi == 0, "[%g, %g]", lo, hi);
        st = comi_bootstrap_interval(ctx, v, 10, 5, 1, &lo, &hi);
        test_check("bootstrap_bad_resamples", st == COMI_ERR_INVALID_ARG, "status %d", st);
    }

    comi_ctx_free(ctx);
    return test_exit();
}
