/*
 * tokenizer_hf.c — Hugging Face tokenizer.json loader (placeholder: reports that it is
 * not implemented yet).
 */
#include "tokenizer_impl.h"

comi_status tok_load_hf_json(comi_err *e, const char *path, comi_tokenizer **out) {
    *out = NULL;
    return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: Hugging Face tokenizer.json loading is not implemented yet", path);
}

comi_status tok_load_hf_dir(comi_err *e, const char *dir, comi_tokenizer **out) {
    return tok_load_hf_json(e, dir, out);
}
