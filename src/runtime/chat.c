/*
 * chat.c — chat templates: messages -> the prompt text a chat model was
 * trained on (see chat.h). Mirrors what Hugging Face's apply_chat_template
 * (Jinja2 over the model's template, the oracle of the SmolLM2 goldens)
 * prints for the template families it recognises; llama.cpp's
 * llm_chat_detect_template does the same kind of marker-based recognition.
 */
#include "runtime/chat.h"

#include "runtime/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_im_start[] = "<|im_start|>";
static const char k_im_end[] = "<|im_end|>";
static const char k_sys_open[] = "<|im_start|>system\n";

const char *chat_family_name(chat_family f) {
    return f == CHAT_FAMILY_CHATML_THINK ? "chatml-think" : "chatml";
}

static bool has(const char *s, size_t len, const char *needle) {
    size_t n = strlen(needle);
    if (n > len) return false;
    for (size_t i = 0; i + n <= len; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, n)) return true;
    return false;
}

/* Decodes the Jinja string literal starting at s[0] (a quote) into out
 * (room for len bytes); returns the bytes consumed including both quotes,
 * 0 when the literal is not closed. *out_len receives the value's length. */
static size_t jinja_literal(const char *s, size_t len, char *out, size_t *out_len) {
    char q = s[0];
    size_t o = 0;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (c == q) {
            *out_len = o;
            return i + 1;
        }
        if (c == '\\' && i + 1 < len) {
            char d = s[++i];
            switch (d) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            default: c = d; break; /* \\ \' \" and anything else: the character */
            }
        }
        out[o++] = c;
    }
    return 0;
}

/* Calls fn on every string literal inside {{ }} and {% %} blocks. */
typedef bool (*literal_fn)(const char *v, size_t n, void *user);

static bool each_literal(const char *t, size_t len, char *buf, literal_fn fn, void *user) {
    size_t i = 0;
    while (i + 1 < len) {
        if (t[i] != '{' || (t[i + 1] != '{' && t[i + 1] != '%')) {
            i++;
            continue;
        }
        char close = t[i + 1] == '{' ? '}' : '%';
        i += 2;
        while (i + 1 < len && !(t[i] == close && t[i + 1] == '}')) {
            if (t[i] == '\'' || t[i] == '"') {
                size_t n = 0, used = jinja_literal(t + i, len - i, buf, &n);
                if (!used) return true; /* unclosed: stop scanning */
                buf[n] = '\0';
                if (fn(buf, n, user)) return true;
                i += used;
            } else {
                i++;
            }
        }
        i += 2;
    }
    return false;
}

typedef struct scan_state {
    bool im_start, im_end, gen_prompt;
    char *default_system;
    comi_err *e;
    comi_status st;
} scan_state;

static bool scan_literal(const char *v, size_t n, void *user) {
    scan_state *s = user;
    if (has(v, n, k_im_start)) s->im_start = true;
    if (has(v, n, k_im_end)) s->im_end = true;
    if (n >= sizeof "<|im_start|>assistant\n" - 1 &&
        !memcmp(v, "<|im_start|>assistant\n", sizeof "<|im_start|>assistant\n" - 1))
        s->gen_prompt = true;
    /* '<|im_start|>system\nTEXT<|im_end|>\n' as one literal: the default
     * system message (the literal with the system's own content is split
     * around messages[0]['content'] and never matches). */
    size_t a = sizeof k_sys_open - 1, b = sizeof k_im_end - 1;
    if (!s->default_system && n > a + b && !memcmp(v, k_sys_open, a)) {
        size_t end = n;
        if (v[end - 1] == '\n') end--;
        if (end >= a + b && !memcmp(v + end - b, k_im_end, b)) {
            size_t m = end - b - a;
            s->default_system = malloc(m + 1);
            if (!s->default_system) {
                s->st = comi_err_set(s->e, COMI_ERR_NOMEM, "chat template: out of memory");
                return true;
            }
            memcpy(s->default_system, v + a, m);
            s->default_system[m] = '\0';
        }
    }
    return false;
}

/* The template's first line (at most 60 bytes) for error messages. */
static int head_len(const char *t, size_t len) {
    size_t n = 0;
    while (n < len && n < 60 && t[n] != '\n')
        n++;
    return (int)n;
}

comi_status chat_template_parse(comi_err *e, const char *tmpl, size_t len,
                                chat_template_info *info) {
    memset(info, 0, sizeof *info);
    if (!tmpl || !len)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "chat template: the template is empty");
    char *buf = malloc(len + 1);
    if (!buf) return comi_err_set(e, COMI_ERR_NOMEM, "chat template: out of memory");
    scan_state s = {.e = e};
    each_literal(tmpl, len, buf, scan_literal, &s);
    free(buf);
    if (s.st) {
        free(s.default_system);
        return s.st;
    }
    bool role = has(tmpl, len, "message['role']") || has(tmpl, len, "message[\"role\"]") ||
                has(tmpl, len, "message.role");
    bool content = has(tmpl, len, "message['content']") ||
                   has(tmpl, len, "message[\"content\"]") || has(tmpl, len, "message.content");
    if (!(s.im_start && s.im_end && s.gen_prompt && role && content)) {
        free(s.default_system);
        return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                            "chat template not recognised (this build renders the ChatML family: "
                            "SmolLM2, Qwen2, Qwen2.5, Qwen3); it starts '%.*s'",
                            head_len(tmpl, len), tmpl);
    }
    /* {{ bos_token }} is rendered only as the very first block. */
    size_t i = 0;
    while (i < len && (tmpl[i] == ' ' || tmpl[i] == '\n')) i++;
    static const char *const bos_forms[] = {"{{ bos_token }}", "{{- bos_token }}",
                                            "{{bos_token}}", "{{- bos_token -}}"};
    for (size_t k = 0; k < sizeof bos_forms / sizeof *bos_forms; k++) {
        size_t n = strlen(bos_forms[k]);
        if (len - i >= n && !memcmp(tmpl + i, bos_forms[k], n)) {
            info->bos_prefix = true;
            i += n;
            break;
        }
    }
    if (has(tmpl + i, len - i, "bos_token")) {
        free(s.default_system);
        return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                            "chat template not recognised: it uses bos_token other than as its "
                            "first block; it starts '%.*s'",
                            head_len(tmpl, len), tmpl);
    }
    info->family = has(tmpl, len, "<think>") && has(tmpl, len, "reasoning_content")
                       ? CHAT_FAMILY_CHATML_THINK
                       : CHAT_FAMILY_CHATML;
    info->default_system = s.default_system;
    return COMI_OK;
}

/* ---- rendering ------------------------------------------------------------ */

/* The growing prompt text, kept NUL-terminated. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static comi_status put(comi_err *e, sbuf *b, const char *s, size_t n) {
    size_t need;
    if (!comi_add_size(b->n, n, &need) || !comi_add_size(need, 1, &need))
        return comi_err_set(e, COMI_ERR_LIMIT, "chat template: prompt too large");
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p) return comi_err_set(e, COMI_ERR_NOMEM, "chat template: out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return COMI_OK;
}
static comi_status puts_(comi_err *e, sbuf *b, const char *s) {
    return put(e, b, s, strlen(s));
}

/* Python's s.split(sep)[0] / [-1] as (start, length) views. */
static const char *find(const char *s, size_t n, const char *sep) {
    size_t m = strlen(sep);
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(s + i, sep, m)) return s + i;
    return NULL;
}
static const char *rfind(const char *s, size_t n, const char *sep) {
    size_t m = strlen(sep);
    if (m > n) return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (!memcmp(s + i, sep, m)) return s + i;
    return NULL;
}
static void lstrip_nl(const char **s, size_t *n) {
    while (*n && **s == '\n') (*s)++, (*n)--;
}
static void rstrip_nl(const char *s, size_t *n) {
    while (*n && s[*n - 1] == '\n') (*n)--;
}

/* Qwen3's assistant message: reasoning split off at </think>. */
static comi_status render_think_assistant(comi_err *e, sbuf *b, const char *c, bool after_query,
                                          bool last) {
    size_t n = strlen(c);
    const char *content = c, *reason = "";
    size_t content_n = n, reason_n = 0;
    const char *end_tag = find(c, n, "</think>");
    if (end_tag) {
        reason = c;
        reason_n = (size_t)(end_tag - c);
        rstrip_nl(reason, &reason_n);
        const char *open = rfind(reason, reason_n, "<think>");
        if (open) {
            reason_n -= (size_t)(open + 7 - reason);
            reason = open + 7;
        }
        lstrip_nl(&reason, &reason_n);
        const char *last_end = rfind(c, n, "</think>");
        content = last_end + 8;
        content_n = n - (size_t)(content - c);
        lstrip_nl(&content, &content_n);
    }
    comi_status st = puts_(e, b, "<|im_start|>assistant\n");
    if (!st && after_query && (last || reason_n)) {
        lstrip_nl(&reason, &reason_n);
        rstrip_nl(reason, &reason_n);
        lstrip_nl(&content, &content_n);
        if (!st) st = puts_(e, b, "<think>\n");
        if (!st) st = put(e, b, reason, reason_n);
        if (!st) st = puts_(e, b, "\n</think>\n\n");
    }
    if (!st) st = put(e, b, content, content_n);
    return st;
}

comi_status chat_render(comi_err *e, const char *tmpl, size_t tmpl_len, const char *bos,
                        const comi_chat_message *msgs, size_t n_msgs, bool add_generation_prompt,
                        char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    if (n_msgs && !msgs)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "chat template: NULL messages");
    for (size_t i = 0; i < n_msgs; i++) {
        const char *r = msgs[i].role;
        if (!r || (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")))
            return comi_err_set(e, COMI_ERR_INVALID_ARG,
                                "chat message %zu: role '%s' (expected system, user or assistant)",
                                i, r ? r : "(null)");
        if (!msgs[i].content)
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "chat message %zu: NULL content", i);
    }
    chat_template_info info;
    comi_status st = chat_template_parse(e, tmpl, tmpl_len, &info);
    if (st) return st;
    if (info.bos_prefix && !bos) {
        free(info.default_system);
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "chat template starts with bos_token but the tokenizer has no BOS");
    }
    /* Qwen3: the last user message (going back) not wrapping a tool response. */
    size_t last_query = n_msgs ? n_msgs - 1 : 0;
    for (size_t i = n_msgs; i-- > 0;) {
        const char *c = msgs[i].content;
        size_t n = strlen(c);
        bool tool = n >= 15 && !strncmp(c, "<tool_response>", 15) && n >= 16 &&
                    !strcmp(c + n - 16, "</tool_response>");
        if (!strcmp(msgs[i].role, "user") && !tool) {
            last_query = i;
            break;
        }
    }
    sbuf b = {0};
    if (info.bos_prefix) st = puts_(e, &b, bos);
    if (!st && info.default_system && (n_msgs == 0 || strcmp(msgs[0].role, "system"))) {
        if (!st) st = puts_(e, &b, k_sys_open);
        if (!st) st = puts_(e, &b, info.default_system);
        if (!st) st = puts_(e, &b, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n_msgs && !st; i++) {
        if (info.family == CHAT_FAMILY_CHATML_THINK && !strcmp(msgs[i].role, "assistant")) {
            st = render_think_assistant(e, &b, msgs[i].content, i > last_query, i + 1 == n_msgs);
        } else {
            st = puts_(e, &b, k_im_start);
            if (!st) st = puts_(e, &b, msgs[i].role);
            if (!st) st = puts_(e, &b, "\n");
            if (!st) st = puts_(e, &b, msgs[i].content);
        }
        if (!st) st = puts_(e, &b, "<|im_end|>\n");
    }
    if (!st && add_generation_prompt) st = puts_(e, &b, "<|im_start|>assistant\n");
    if (!st && !b.p) st = put(e, &b, "", 0); /* an empty, NUL-terminated text */
    free(info.default_system);
    if (st) {
        free(b.p);
        return st;
    }
    *text = b.p;
    if (len) *len = b.n;
    return COMI_OK;
}

/* ---- public API ----------------------------------------------------------- */

comi_status comi_chat_apply(comi_ctx *ctx, const comi_tokenizer *tok, const char *tmpl,
                            const comi_chat_message *msgs, size_t n_msgs,
                            bool add_generation_prompt, char **text, size_t *len) {
    comi_err *e = ctx ? &ctx->err : NULL;
    if (!text) return comi_err_set(e, COMI_ERR_INVALID_ARG, "comi_chat_apply: NULL output");
    *text = NULL;
    if (len) *len = 0;
    if (!tmpl) {
        if (!tok)
            return comi_err_set(e, COMI_ERR_INVALID_ARG,
                                "comi_chat_apply: neither a tokenizer nor a template");
        tmpl = tok_chat_template(tok);
        if (!tmpl)
            return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                                "this model has no chat template (GGUF tokenizer.chat_template / "
                                "tokenizer_config.json chat_template)");
    }
    char bos_text[256] = "";
    const char *bos = NULL;
    size_t bl;
    const char *p = tok ? tok_piece(tok, tok_bos(tok), &bl) : NULL;
    if (p && bl < sizeof bos_text) {
        memcpy(bos_text, p, bl);
        bos_text[bl] = '\0';
        bos = bos_text;
    }
    return chat_render(e, tmpl, strlen(tmpl), bos, msgs, n_msgs, add_generation_prompt, text,
                       len);
}

comi_status comi_chat_tokenize(comi_ctx *ctx, const comi_tokenizer *tok, const char *tmpl,
                               const comi_chat_message *msgs, size_t n_msgs,
                               bool add_generation_prompt, int32_t **ids, size_t *n_ids) {
    comi_err *e = ctx ? &ctx->err : NULL;
    if (!ids || !n_ids) return comi_err_set(e, COMI_ERR_INVALID_ARG, "comi_chat_tokenize: NULL output");
    *ids = NULL;
    *n_ids = 0;
    if (!tok) return comi_err_set(e, COMI_ERR_INVALID_ARG, "comi_chat_tokenize: NULL tokenizer");
    char *text = NULL;
    size_t len = 0;
    comi_status st =
        comi_chat_apply(ctx, tok, tmpl, msgs, n_msgs, add_generation_prompt, &text, &len);
    if (st) return st;
    chat_template_info info;
    const char *t = tmpl ? tmpl : tok_chat_template(tok);
    st = chat_template_parse(e, t, strlen(t), &info);
    if (!st) {
        free(info.default_system);
        /* BOS as the metadata says, unless the template wrote it already. */
        bool bos = tok_add_bos(tok) && !info.bos_prefix;
        st = tok_encode(e, tok, text, len, bos, false, true, ids, n_ids);
    }
    free(text);
    return st;
}
