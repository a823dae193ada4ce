/*
 * tokenizer_api.c — the public comi_tokenizer_* functions of include/comi.h:
 * loading picks the loader by what the path is (a Hugging Face directory, a
 * tokenizer.json file, or a GGUF file), the rest wraps the engine.
 */
#include "runtime/tokenizer_impl.h"

#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

comi_status comi_tokenizer_load(comi_ctx *ctx, const char *path, comi_tokenizer **out) {
    if (!out) return COMI_ERR_INVALID_ARG;
    *out = NULL;
    comi_err *e = ctx ? &ctx->err : NULL;
    if (!path || !*path)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "tokenizer: empty model path");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return comi_err_set(e, COMI_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(sb.st_mode)) return tok_load_hf_dir(e, path, out);
    size_t pl = strlen(path);
    if (pl >= 5 && !strcmp(path + pl - 5, ".json")) return tok_load_hf_json(e, path, out);
    gguf_file *f = NULL;
    comi_status st = gguf_open(e, path, &f);
    if (st) return st;
    st = tok_load_gguf(e, f, out);
    gguf_close(f);
    return st;
}

void comi_tokenizer_free(comi_tokenizer *tok) {
    tok_free(tok);
}

comi_tokenize_params comi_tokenize_default_params(void) {
    comi_tokenize_params p = {.add_bos = -1, .add_eos = -1, .parse_special = false};
    return p;
}

comi_status comi_tokenize(comi_ctx *ctx, const comi_tokenizer *tok, const char *text, size_t len,
                          const comi_tokenize_params *params, int32_t **ids, size_t *n_ids) {
    comi_err *e = ctx ? &ctx->err : NULL;
    if (!ids || !n_ids) return comi_err_set(e, COMI_ERR_INVALID_ARG, "comi_tokenize: NULL output");
    comi_tokenize_params def = comi_tokenize_default_params();
    if (!params) params = &def;
    bool bos = params->add_bos < 0 ? tok_add_bos(tok) : params->add_bos > 0;
    bool eos = params->add_eos < 0 ? tok_add_eos(tok) : params->add_eos > 0;
    return tok_encode(e, tok, text, len, bos, eos, params->parse_special, ids, n_ids);
}

comi_status comi_detokenize(comi_ctx *ctx, const comi_tokenizer *tok, const int32_t *ids,
                            size_t n_ids, bool skip_special, char **text, size_t *len) {
    comi_err *e = ctx ? &ctx->err : NULL;
    if (!text) return comi_err_set(e, COMI_ERR_INVALID_ARG, "comi_detokenize: NULL output");
    return tok_decode(e, tok, ids, n_ids, skip_special, text, len);
}

int32_t comi_tokenizer_n_vocab(const comi_tokenizer *tok) {
    return tok_n_vocab(tok);
}
int32_t comi_tokenizer_bos(const comi_tokenizer *tok) {
    return tok_bos(tok);
}
int32_t comi_tokenizer_eos(const comi_tokenizer *tok) {
    return tok_eos(tok);
}
bool comi_tokenizer_adds_bos(const comi_tokenizer *tok) {
    return tok_add_bos(tok);
}
bool comi_tokenizer_is_eog(const comi_tokenizer *tok, int32_t id) {
    return tok_is_eog(tok, id);
}

const char *comi_tokenizer_piece(const comi_tokenizer *tok, int32_t id, size_t *len) {
    return tok_piece(tok, id, len);
}

const char *comi_tokenizer_chat_template(const comi_tokenizer *tok) {
    return tok_chat_template(tok);
}
