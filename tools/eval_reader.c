/*
 * eval_reader.c — the reader of `comi eval --task qa` text methods (see
 * eval_reader.h): prompt rendering (the model's ChatML template, or plain
 * text for models without a template), tokenizing, prefill, greedy
 * decoding and the answer's post-processing.
 *
 * The chat template: a model counts as ChatML (the family of SmolLM2 and
 * Qwen) when "<|im_start|>" and "<|im_end|>" are single control tokens of
 * its vocabulary and "<|im_end|>" ends generation; any other model is
 * refused in chat format. The prompt is not rendered through
 * comi_chat_tokenize on purpose: that renders the template to text and
 * tokenizes it with special-token parsing, as llama.cpp does, so a context
 * that contains "<|im_end|>" would end the user turn; here the control
 * tokens are inserted by id and the texts between them are tokenized
 * without parsing special tokens.
 * With the system message always given, ChatML renders as
 *   <|im_start|>system\nSYSTEM<|im_end|>\n<|im_start|>user\nUSER<|im_end|>\n
 *   <|im_start|>assistant\n
 * which is what SmolLM2's and Qwen2's own templates render for these two
 * messages with add_generation_prompt. Control tokens are inserted by id
 * and the text between them is tokenized without parsing special-token
 * text, so a context that contains "<|im_end|>" cannot end the turn.
 */
#include "eval_reader.h"

#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reader {
    comi_model *model;
    const comi_tokenizer *tok;
    comi_session *sess;
    reader_params p;
    int32_t im_start, im_end; /* ChatML control tokens (chat format) */
    int64_t n_ctx;            /* session positions */
};

reader_params reader_default_params(void) {
    return (reader_params){.format = READER_CHAT, .max_new_tokens = 24};
}

static bool fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return false;
}

/* The id of a control token spelled s, or -1 when s is not one token. */
static int32_t single_token(comi_ctx *ctx, const comi_tokenizer *tok, const char *s) {
    comi_tokenize_params tp = comi_tokenize_default_params();
    tp.add_bos = tp.add_eos = 0;
    tp.parse_special = true;
    int32_t *ids = NULL;
    size_t n = 0;
    if (comi_tokenize(ctx, tok, s, strlen(s), &tp, &ids, &n) != COMI_OK) return -1;
    int32_t id = n == 1 ? ids[0] : -1;
    comi_free(ids);
    return id;
}

bool reader_open(comi_ctx *ctx, const char *model, const reader_params *params, reader **out,
                 char *err, size_t err_len) {
    *out = NULL;
    reader *r = calloc(1, sizeof *r);
    if (!r) return fail(err, err_len, "out of memory");
    r->p = params ? *params : reader_default_params();
    if (comi_model_load(ctx, model, NULL, &r->model) != COMI_OK) {
        fail(err, err_len, "%s", comi_errmsg(ctx));
        goto bad;
    }
    r->tok = comi_model_tokenizer(r->model);
    if (!r->tok) {
        fail(err, err_len, "--model: %s has no tokenizer (the reader needs one)", model);
        goto bad;
    }
    if (r->p.format == READER_CHAT) {
        r->im_start = single_token(ctx, r->tok, "<|im_start|>");
        r->im_end = single_token(ctx, r->tok, "<|im_end|>");
        if (r->im_start < 0 || r->im_end < 0 || !comi_model_is_eos(r->model, r->im_end)) {
            fail(err, err_len,
                 "--model: %s has no chat template this build renders (ChatML: <|im_start|>, "
                 "<|im_end|>); use --prompt-format plain for a model without one",
                 model);
            goto bad;
        }
    }
    comi_model_info mi;
    comi_model_get_info(r->model, &mi);
    r->n_ctx = mi.n_ctx_train > 0 ? mi.n_ctx_train : 4096;
    if (comi_session_new(ctx, r->model, r->n_ctx, &r->sess) != COMI_OK) {
        fail(err, err_len, "%s", comi_errmsg(ctx));
        goto bad;
    }
    *out = r;
    return true;
bad:
    reader_free(r);
    return false;
}

void reader_free(reader *r) {
    if (!r) return;
    comi_session_free(r->sess);
    comi_model_free(r->model);
    free(r);
}

const char *reader_format_name(const reader *r) {
    return r->p.format == READER_CHAT ? "chatml" : "plain";
}

bool reader_count_tokens(comi_ctx *ctx, const reader *r, const char *text, int64_t *out,
                         char *err, size_t err_len) {
    comi_tokenize_params tp = comi_tokenize_default_params();
    tp.add_bos = tp.add_eos = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (comi_tokenize(ctx, r->tok, text, strlen(text), &tp, &ids, &n) != COMI_OK)
        return fail(err, err_len, "%s", comi_errmsg(ctx));
    comi_free(ids);
    *out = (int64_t)n;
    return true;
}

/* A growable id list. */
typedef struct {
    int32_t *v;
    size_t n, cap;
} ids_t;

static bool ids_push(ids_t *a, const int32_t *v, size_t n) {
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < a->n + n) cap *= 2;
        int32_t *p = realloc(a->v, cap * sizeof *p);
        if (!p) return false;
        a->v = p;
        a->cap = cap;
    }
    memcpy(a->v + a->n, v, n * sizeof *v);
    a->n += n;
    return true;
}

/* Appends the tokens of text (special-token text not parsed; BOS when bos
 * and the tokenizer adds one). */
static bool push_text(comi_ctx *ctx, const reader *r, ids_t *a, const char *text, bool bos,
                      char *err, size_t err_len) {
    comi_tokenize_params tp = comi_tokenize_default_params();
    tp.add_bos = bos ? -1 : 0;
    tp.add_eos = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (comi_tokenize(ctx, r->tok, text, strlen(text), &tp, &ids, &n) != COMI_OK)
        return fail(err, err_len, "%s", comi_errmsg(ctx));
    bool ok = ids_push(a, ids, n);
    comi_free(ids);
    return ok ? true : fail(err, err_len, "out of memory");
}

/* The text pieces of the prompt, in order; chat format puts control tokens
 * between them (see the top of this file). */
static char *user_message(const char *context, const char *question) {
    size_t n = strlen(READER_USER_HEAD) + strlen(context) + strlen(READER_USER_MID) +
               strlen(question) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s%s", READER_USER_HEAD, context, READER_USER_MID, question);
    return s;
}

static bool build_ids(comi_ctx *ctx, const reader *r, const char *context, const char *question,
                      ids_t *a, char *err, size_t err_len) {
    char *user = user_message(context, question);
    if (!user) return fail(err, err_len, "out of memory");
    bool ok;
    if (r->p.format == READER_CHAT) {
        ok = (!comi_tokenizer_adds_bos(r->tok) || push_text(ctx, r, a, "", true, err, err_len)) &&
             ids_push(a, &r->im_start, 1) &&
             push_text(ctx, r, a, "system\n" READER_SYSTEM, false, err, err_len) &&
             ids_push(a, &r->im_end, 1) && push_text(ctx, r, a, "\n", false, err, err_len) &&
             ids_push(a, &r->im_start, 1) && push_text(ctx, r, a, "user\n", false, err, err_len) &&
             push_text(ctx, r, a, user, false, err, err_len) && ids_push(a, &r->im_end, 1) &&
             push_text(ctx, r, a, "\n", false, err, err_len) && ids_push(a, &r->im_start, 1) &&
             push_text(ctx, r, a, "assistant\n", false, err, err_len);
    } else {
        size_t n = strlen(READER_SYSTEM) + 2 + strlen(user) + 9;
        char *s = malloc(n);
        ok = s != NULL;
        if (s) {
            snprintf(s, n, "%s\n\n%s\nAnswer:", READER_SYSTEM, user);
            ok = push_text(ctx, r, a, s, true, err, err_len);
            free(s);
        }
    }
    free(user);
    if (!ok && !err[0]) fail(err, err_len, "out of memory");
    return ok;
}

bool reader_render(const reader *r, const char *context, const char *question, char **out,
                   char *err, size_t err_len) {
    char *user = user_message(context, question);
    if (!user) return fail(err, err_len, "out of memory");
    size_t n = strlen(READER_SYSTEM) + strlen(user) + 128;
    *out = malloc(n);
    if (*out) {
        if (r->p.format == READER_CHAT)
            snprintf(*out, n,
                     "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n"
                     "<|im_start|>assistant\n",
                     READER_SYSTEM, user);
        else
            snprintf(*out, n, "%s\n\n%s\nAnswer:", READER_SYSTEM, user);
    }
    free(user);
    return *out ? true : fail(err, err_len, "out of memory");
}

/* The answer: the text up to its first line break, spaces trimmed. */
static char *first_line(const char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') s++;
    size_t n = strcspn(s, "\r\n");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    char *o = malloc(n + 1);
    if (o) {
        memcpy(o, s, n);
        o[n] = 0;
    }
    return o;
}

bool reader_ask(comi_ctx *ctx, reader *r, const char *context, const char *question,
                reader_answer *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    err[0] = 0;
    ids_t a = {0};
    double t0 = report_now_s();
    if (!build_ids(ctx, r, context, question, &a, err, err_len)) {
        free(a.v);
        return false;
    }
    double t1 = report_now_s();
    out->prompt_tokens = (int64_t)a.n;
    if ((int64_t)a.n + r->p.max_new_tokens > r->n_ctx) {
        free(a.v);
        return fail(err, err_len,
                    "the prompt has %zu tokens; with %d new tokens that is over the model's "
                    "context of %lld",
                    a.n, r->p.max_new_tokens, (long long)r->n_ctx);
    }
    comi_session_reset(r->sess);
    comi_status st = comi_session_eval(ctx, r->sess, a.v, NULL, (int64_t)a.n, NULL);
    free(a.v);
    if (st != COMI_OK) return fail(err, err_len, "%s", comi_errmsg(ctx));
    double t2 = report_now_s();
    /* greedy decoding (ties: lowest id) until an end-of-generation id, a line break
     * (the answer is the first line) or max_new_tokens */
    int32_t *gen = malloc(((size_t)r->p.max_new_tokens + 1) * sizeof *gen);
    int32_t n_gen = 0;
    if (!gen) return fail(err, err_len, "out of memory");
    int32_t n_vocab = comi_tokenizer_n_vocab(r->tok);
    bool text_seen = false;
    while (n_gen < r->p.max_new_tokens) {
        const float *lg = comi_session_logits(r->sess);
        int32_t best = 0;
        for (int32_t v = 1; v < n_vocab; v++)
            if (lg[v] > lg[best]) best = v;
        if (comi_model_is_eos(r->model, best)) break;
        size_t plen = 0;
        const char *piece = comi_tokenizer_piece(r->tok, best, &plen);
        gen[n_gen++] = best;
        /* a line break after some text ends the answer (SentencePiece "<0x0A>" and
         * byte-level "\u010a" both spell it in the piece) */
        bool nl = piece && (memchr(piece, '\n', plen) || memmem(piece, plen, "\xc4\x8a", 2) ||
                            memmem(piece, plen, "<0x0A>", 6));
        if (nl && text_seen) break;
        if (!nl) text_seen = true;
        if (n_gen == r->p.max_new_tokens) break;
        if (comi_session_eval(ctx, r->sess, &best, NULL, 1, NULL) != COMI_OK) {
            free(gen);
            return fail(err, err_len, "%s", comi_errmsg(ctx));
        }
    }
    double t3 = report_now_s();
    char *text = NULL;
    st = comi_detokenize(ctx, r->tok, gen, (size_t)n_gen, true, &text, NULL);
    free(gen);
    if (st != COMI_OK) return fail(err, err_len, "%s", comi_errmsg(ctx));
    out->raw = strdup(text);
    out->text = first_line(text);
    comi_free(text);
    if (!out->raw || !out->text) {
        reader_answer_free(out);
        return fail(err, err_len, "out of memory");
    }
    out->ms_tokenize = (t1 - t0) * 1e3;
    out->ms_prefill = (t2 - t1) * 1e3;
    out->ms_generate = (t3 - t2) * 1e3;
    return true;
}

void reader_answer_free(reader_answer *a) {
    free(a->text);
    free(a->raw);
    a->text = a->raw = NULL;
}
