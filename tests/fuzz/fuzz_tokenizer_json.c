/*
 * fuzz_tokenizer_json.c — libFuzzer target for the Hugging Face
 * tokenizer.json loader (src/runtime/tokenizer_hf.c): the input is the JSON text,
 * written to a scratch file. A tokenizer that loads encodes a fixed
 * multilingual sample (with and without special-token parsing) and the
 * ids decode; every id must be in range.
 */
#include "base/common.h"
#include "fuzz.h"
#include "runtime/tokenizer.h"

#include <string.h>
#include <unistd.h>

static char tokjson_path[96];

static void tokjson_cleanup(void) {
    remove(tokjson_path);
}

static void tokjson_exercise(const comi_tokenizer *t) {
    static const char sample[] = "Hello world! 123 4567 the th\xc3\xa9\xc3\xa2tre \xe2\x96\x81x "
                                 "<s> </s> <|endoftext|> \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\n\n";
    for (int special = 0; special <= 1; special++) {
        comi_err e;
        comi_err_clear(&e);
        int32_t *ids = NULL;
        size_t n = 0;
        if (tok_encode(&e, t, sample, sizeof sample - 1, true, true, special, &ids, &n) !=
            COMI_OK) {
            FUZZ_CHECK(e.msg[0] != '\0');
            continue;
        }
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < tok_n_vocab(t));
        char *text = NULL;
        size_t len = 0;
        if (tok_decode(&e, t, ids, n, special, &text, &len) == COMI_OK)
            FUZZ_CHECK(text != NULL && text[len] == '\0');
        free(text);
        free(ids);
    }
    size_t plen = 0;
    FUZZ_CHECK(tok_piece(t, -1, &plen) == NULL && tok_piece(t, tok_n_vocab(t), &plen) == NULL);
}

int fuzz_tokenizer_json(const uint8_t *data, size_t size) {
    if (!tokjson_path[0]) {
        snprintf(tokjson_path, sizeof tokjson_path, "%s/comi-fuzz-tokenizer-%ld.json",
                 fuzz_scratch_base(), (long)getpid());
        atexit(tokjson_cleanup);
    }
    comi_err e;
    comi_err_clear(&e);
    FUZZ_CHECK(comi_write_file(&e, tokjson_path, data, size) == COMI_OK);
    comi_tokenizer *t = NULL;
    if (tok_load_hf_json(&e, tokjson_path, &t) != COMI_OK) {
        FUZZ_CHECK(t == NULL && e.msg[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(tok_n_vocab(t) > 0);
    tokjson_exercise(t);
    tok_free(t);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_tokenizer_json(data, size);
}
#endif
