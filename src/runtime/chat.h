/*
 * chat.h — internal interface of the chat-template stage: renders a list of
 * messages as the prompt text the model was trained on, following the
 * model's own template (GGUF tokenizer.chat_template, Hugging Face
 * tokenizer_config.json chat_template or chat_template.jinja).
 *
 * No Jinja interpreter: a template is recognised by its markers as one of
 * the families this build renders, and the family's parameters (the default
 * system prompt it inserts, a leading BOS) are read from its literals. A
 * template of no known family is an error (COMI_ERR_UNSUPPORTED), never a
 * silently different prompt. Families:
 *  - ChatML (SmolLM/SmolLM2, Qwen2, Qwen2.5, Hermes, ...):
 *    "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message, a default system
 *    message when the first is not a system one and the template has one,
 *    "<|im_start|>assistant\n" as the generation prompt.
 *  - ChatML with reasoning (Qwen3: the template mentions <think> and
 *    reasoning_content): as ChatML, and an assistant message's
 *    "<think>...</think>" part is dropped before the last user message and
 *    rendered in Qwen3's form after it.
 */
#ifndef COMI_CHAT_H
#define COMI_CHAT_H

#include "base/common.h"
#include "comi.h"

typedef enum chat_family {
    CHAT_FAMILY_CHATML = 0,
    CHAT_FAMILY_CHATML_THINK = 1 /* Qwen3 */
} chat_family;

/* What a template was recognised as. default_system points into the
 * caller's storage (owned, malloc'ed, NULL when the template has none). */
typedef struct chat_template_info {
    chat_family family;
    bool bos_prefix;      /* the template starts with {{ bos_token }} */
    char *default_system; /* malloc'ed, NUL-terminated; NULL when none */
} chat_template_info;

/* Recognises tmpl (len bytes). COMI_ERR_UNSUPPORTED with a message naming
 * the template's first characters when it is of no known family. Free
 * info->default_system with free(). */
comi_status chat_template_parse(comi_err *e, const char *tmpl, size_t len,
                                chat_template_info *info);

/* Renders msgs with the template tmpl; bos is the BOS token's text (may be
 * NULL when the template does not use it). *text malloc'ed, NUL-terminated,
 * owner the caller; *len (may be NULL) without the NUL. */
comi_status chat_render(comi_err *e, const char *tmpl, size_t tmpl_len, const char *bos,
                        const comi_chat_message *msgs, size_t n_msgs, bool add_generation_prompt,
                        char **text, size_t *len);

/* Name of a family ("chatml", "chatml-think"). */
const char *chat_family_name(chat_family f);

#endif /* COMI_CHAT_H */
