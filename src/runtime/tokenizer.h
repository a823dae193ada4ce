/*
 * tokenizer.h — internal interface of the tokenizer stage (text <-> ids).
 *
 * Two tokenizer families, loaded from a GGUF file's tokenizer.ggml.* metadata
 * or from a Hugging Face tokenizer.json (+ tokenizer_config.json):
 *  - SPM: SentencePiece-style, merges the adjacent pair whose concatenation is
 *    the vocabulary piece with the highest score (llama.cpp's
 *    llm_tokenizer_spm); spaces become U+2581, unknown characters fall back
 *    to <0xXX> byte pieces. GGUF tokenizer.ggml.model = "llama".
 *  - BPE: ranked merges over pre-tokenized words (llama.cpp's
 *    llm_tokenizer_bpe, Hugging Face's BPE model), byte-level (GPT-2
 *    byte-to-unicode mapping, GGUF tokenizer.ggml.model = "gpt2") or
 *    character-level with byte fallback (Hugging Face LLaMA-2 export).
 *
 * A comi_tokenizer is immutable after load and may be shared by threads;
 * every call allocates its own scratch. Token semantics follow llama.cpp:
 * control/unknown token text in the input is recognised as that token only
 * when parse_special is set; user-defined (added, non-special) tokens are
 * always split out first.
 */
#ifndef COMI_TOKENIZER_H
#define COMI_TOKENIZER_H

#include "base/common.h"
#include "formats/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Token attributes (bit set per token). The first six mirror GGUF's
 * tokenizer.ggml.token_type values 1..6 (normal, unknown, control,
 * user-defined, unused, byte); LSTRIP/RSTRIP make special-token splitting
 * swallow adjacent whitespace. */
enum {
    TOK_ATTR_NORMAL = 1u << 0,
    TOK_ATTR_UNKNOWN = 1u << 1,
    TOK_ATTR_CONTROL = 1u << 2,
    TOK_ATTR_USER_DEFINED = 1u << 3,
    TOK_ATTR_UNUSED = 1u << 4,
    TOK_ATTR_BYTE = 1u << 5,
    TOK_ATTR_LSTRIP = 1u << 6,
    TOK_ATTR_RSTRIP = 1u << 7
};

/* Loads the tokenizer described by a GGUF file's metadata (the file may be a
 * full model or vocabulary-only). Strings are copied: the tokenizer does not
 * keep pointers into f. Errors: COMI_ERR_FORMAT (no tokenizer, bad arrays),
 * COMI_ERR_UNSUPPORTED (tokenizer model or pre-tokenizer this build lacks). */
comi_status tok_load_gguf(comi_err *e, const gguf_file *f, comi_tokenizer **out);

/* Loads DIR/tokenizer.json (+ DIR/tokenizer_config.json, DIR/config.json and
 * DIR/generation_config.json for BOS/EOS ids and add_bos). A directory
 * without tokenizer.json fails with COMI_ERR_IO and a message saying so. */
comi_status tok_load_hf_dir(comi_err *e, const char *dir, comi_tokenizer **out);

/* Loads one tokenizer.json file (no companion files). */
comi_status tok_load_hf_json(comi_err *e, const char *path, comi_tokenizer **out);

void tok_free(comi_tokenizer *tok);

/* Encodes len bytes of UTF-8 text (need not be NUL-terminated). add_bos /
 * add_eos prepend/append BOS/EOS when the tokenizer has them; parse_special
 * recognises control-token text. Invalid UTF-8 is an error
 * (COMI_ERR_INVALID_ARG naming the byte offset). On success *ids (malloc'ed,
 * owner the caller, free()) holds *n ids; *ids may be NULL when *n is 0. */
comi_status tok_encode(comi_err *e, const comi_tokenizer *tok, const char *text, size_t len,
                       bool add_bos, bool add_eos, bool parse_special, int32_t **ids, size_t *n);

/* Decodes ids to text (malloc'ed, NUL-terminated, owner the caller, free();
 * *len excludes the NUL). SPM: U+2581 -> space, <0xXX> -> byte, one leading
 * space of the first piece dropped when the tokenizer adds a space prefix.
 * BPE: byte-level pieces mapped back to bytes. skip_special: control and
 * unknown tokens (and a leading BOS) produce no text. The result is the raw
 * bytes, which need not be valid UTF-8 when ids split a character. */
comi_status tok_decode(comi_err *e, const comi_tokenizer *tok, const int32_t *ids, size_t n,
                       bool skip_special, char **text, size_t *len);

/* The vocabulary string of id (not NUL-terminated; *len its length), NULL
 * when id is out of range. */
const char *tok_piece(const comi_tokenizer *tok, int32_t id, size_t *len);

int32_t tok_n_vocab(const comi_tokenizer *tok);
int32_t tok_bos(const comi_tokenizer *tok); /* -1 when none */
int32_t tok_eos(const comi_tokenizer *tok); /* -1 when none */
int32_t tok_eot(const comi_tokenizer *tok); /* -1 when none */
int32_t tok_unk(const comi_tokenizer *tok); /* -1 when none */
/* Whether encoding adds BOS/EOS by default (the model's metadata). */
bool tok_add_bos(const comi_tokenizer *tok);
bool tok_add_eos(const comi_tokenizer *tok);
/* End-of-generation: EOS, EOT, EOM and tokens whose text marks an end of
 * turn (<|eot_id|>, <|im_end|>, <|endoftext|>, ...), as llama.cpp decides. */
bool tok_is_eog(const comi_tokenizer *tok, int32_t id);
bool tok_is_control(const comi_tokenizer *tok, int32_t id);
uint32_t tok_attr(const comi_tokenizer *tok, int32_t id); /* 0 when out of range */
/* The chat template that came with the tokenizer (GGUF
 * tokenizer.chat_template, tokenizer_config.json chat_template or
 * chat_template.jinja), NUL-terminated; NULL when none. */
const char *tok_chat_template(const comi_tokenizer *tok);
/* "spm" or "bpe", and the pre-tokenizer name ("" for SPM). */
const char *tok_kind_name(const comi_tokenizer *tok);
const char *tok_pre_name(const comi_tokenizer *tok);

#endif /* COMI_TOKENIZER_H */
