/*
 * fuzz_hfconfig.c — libFuzzer target for the config.json reader
 * (src/formats/hfconfig.c): the input is the JSON text. On success the derived
 * fields must be consistent (head_dim set, kv heads dividing the heads).
 */
#include "base/common.h"
#include "fuzz.h"
#include "formats/hfconfig.h"

int fuzz_hfconfig(const uint8_t *data, size_t size) {
    comi_err e;
    comi_err_clear(&e);
    hf_config c;
    if (hf_config_parse(&e, "config.json", (const char *)data, size, &c) != COMI_OK) {
        FUZZ_CHECK(e.msg[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(c.model_type[0] != '\0' || c.hidden_size > 0);
    FUZZ_CHECK(c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0);
    FUZZ_CHECK(c.num_attention_heads > 0 && c.num_key_value_heads > 0 && c.head_dim > 0);
    FUZZ_CHECK(c.num_attention_heads % c.num_key_value_heads == 0);
    FUZZ_CHECK(c.rms_norm_eps > 0 && c.rope_theta > 0 && c.vocab_size > 0);
    FUZZ_CHECK(c.n_eos >= 0 && c.n_eos <= HF_MAX_EOS);
    FUZZ_CHECK(c.rope_scaling.kind >= HF_ROPE_NONE && c.rope_scaling.kind <= HF_ROPE_OTHER);
    comi_status st = hf_config_check_rope(&e, &c, 0);
    FUZZ_CHECK(st == COMI_OK || e.msg[0] != '\0');
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_hfconfig(data, size);
}
#endif
