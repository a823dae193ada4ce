/*
 * eval_reader.h — the reader of `comi eval --task qa` text methods: a model
 * reads a (compressed) context and a question through its chat template
 * with one fixed prompt (READER_SYSTEM / READER_USER below) and answers
 * greedily. Uses only comi.h.
 */
#ifndef COMI_EVAL_READER_H
#define COMI_EVAL_READER_H

#include "comi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fixed prompt. The system message is always given, so the model's
 * template renders it instead of any default system message of its own. */
#define READER_SYSTEM                                                                              \
    "You are a helpful assistant. Answer the question using only the documents given. Reply "    \
    "with the answer alone, in a few words."
/* The user message: READER_USER_HEAD, the context, READER_USER_MID, the
 * question. */
#define READER_USER_HEAD "Documents:\n"
#define READER_USER_MID "\n\nQuestion: "

typedef enum reader_format {
    READER_CHAT = 0, /* the model's own chat template (an unknown one is an error) */
    READER_PLAIN = 1 /* no template: system, blank line, user message, "\nAnswer:" (for
                        models without one, such as the random-weight test models) */
} reader_format;

typedef struct reader reader;

typedef struct reader_params {
    reader_format format;
    int32_t max_new_tokens; /* default 24; decoding also stops at a line break after text */
} reader_params;

reader_params reader_default_params(void);

/* Every call below returns false with a one-line message in err on failure. */

/* Loads the model (a .gguf file or HF directory). Fails when the model has
 * no tokenizer, or format is READER_CHAT and its chat template is not one
 * this build renders. */
bool reader_open(comi_ctx *ctx, const char *model, const reader_params *params, reader **out,
                 char *err, size_t err_len);
void reader_free(reader *r);

/* Model tokens of text (no special tokens added). */
bool reader_count_tokens(comi_ctx *ctx, const reader *r, const char *text, int64_t *out,
                         char *err, size_t err_len);

typedef struct reader_answer {
    char *text;            /* the answer: the generated text up to its first line break,
                              trimmed (free with reader_answer_free) */
    char *raw;             /* the whole generated text, special tokens stripped */
    int64_t prompt_tokens; /* tokens the model read */
    double ms_tokenize, ms_prefill, ms_generate;
} reader_answer;

/* Renders the prompt for context and question (for --print-prompt and the
 * tests); *out free with free(). */
bool reader_render(const reader *r, const char *context, const char *question, char **out,
                   char *err, size_t err_len);

/* Answers question from context. A prompt longer than the model's trained
 * context (minus max_new_tokens) fails with the figures. */
bool reader_ask(comi_ctx *ctx, reader *r, const char *context, const char *question,
                reader_answer *out, char *err, size_t err_len);
void reader_answer_free(reader_answer *a);

/* "chatml" or "plain": what reader_open found / was told. */
const char *reader_format_name(const reader *r);

#endif /* COMI_EVAL_READER_H */
