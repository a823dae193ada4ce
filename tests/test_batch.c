/* test_batch.c — comi_compress_batch: every pair's result is what
 * comi_compress_text gives alone, a failing pair is recorded with its own
 * status and message and the others still run, NULL arrays are refused. */
#include "comi.h"
#include "test.h"

int main(void) {
    comi_ctx *ctx = comi_ctx_new(NULL);
    const char *contexts[] = {
        "The Eiffel Tower is in Paris. It was finished in 1889. Bananas are yellow.",
        "Marie Curie was born in Warsaw in 1867. She won two Nobel prizes. Cats sleep.",
        NULL, /* refused by comi_compress_text */
        "Water boils at 100 degrees Celsius at sea level. Ice melts at zero degrees.",
    };
    const char *questions[] = {"When was the tower finished?", "Where was Curie born?",
                               "anything?", "When does water boil?"};
    enum { N = 4 };
    comi_text_params p = comi_text_default_params();
    p.ratio = 2;
    comi_text_result res[N];
    comi_status st[N];
    char *errs[N];
    comi_status all = comi_compress_batch(ctx, contexts, questions, N, &p, res, st, errs);
    test_check("batch_reports_first_failure", all == COMI_ERR_INVALID_ARG &&
                   strstr(comi_errmsg(ctx), "batch item 2: ") != NULL,
               "status %d, '%s'", (int)all, comi_errmsg(ctx));
    for (int i = 0; i < N; i++) {
        char name[64];
        snprintf(name, sizeof name, "batch_item_%d", i);
        comi_text_result one;
        comi_status s1 = comi_compress_text(ctx, contexts[i], questions[i], &p, &one);
        if (s1 != COMI_OK) {
            test_check(name, st[i] == s1 && errs[i] && strcmp(errs[i], comi_errmsg(ctx)) == 0 &&
                                 res[i].text == NULL,
                       "status %d vs %d, message '%s' vs '%s'", (int)st[i], (int)s1,
                       errs[i] ? errs[i] : "(null)", comi_errmsg(ctx));
        } else {
            test_check(name, st[i] == COMI_OK && errs[i] == NULL && res[i].text &&
                                 strcmp(res[i].text, one.text) == 0 &&
                                 res[i].original_tokens == one.original_tokens &&
                                 res[i].compressed_tokens == one.compressed_tokens,
                       "status %d, '%s' vs '%s'", (int)st[i], res[i].text ? res[i].text : "",
                       one.text);
        }
        comi_text_result_free(&one);
        comi_text_result_free(&res[i]);
        comi_free(errs[i]);
    }

    /* all good: COMI_OK and no message; errors may be NULL */
    all = comi_compress_batch(ctx, contexts, questions, 2, &p, res, st, NULL);
    test_check("batch_all_ok", all == COMI_OK && st[0] == COMI_OK && st[1] == COMI_OK &&
                                   strcmp(comi_errmsg(ctx), "") == 0,
               "status %d '%s'", (int)all, comi_errmsg(ctx));
    comi_text_result_free(&res[0]);
    comi_text_result_free(&res[1]);

    test_check("batch_empty", comi_compress_batch(ctx, NULL, NULL, 0, &p, NULL, NULL, NULL) ==
                                  COMI_OK, "n = 0 must succeed");
    all = comi_compress_batch(ctx, contexts, NULL, 2, &p, res, st, NULL);
    test_check("batch_null_arrays", all == COMI_ERR_INVALID_ARG, "status %d", (int)all);
    comi_ctx_free(ctx);
    return test_n_failed ? 1 : 0;
}
