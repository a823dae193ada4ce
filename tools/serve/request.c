/*
 * request.c — request bodies of `comi serve`: a POST body is parsed (Jansson,
 * duplicates refused) and checked field by field into a job; every refusal
 * is an HTTP status (400 malformed, 413 too large, 422 out of range) and a
 * message naming the field. Also the {"error": ...} body of every refusal
 * and the Content-Type check.
 */
#include "serve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* {"error": msg} as malloc'ed JSON text (NULL only when out of memory). */
char *serve_error_json(const char *msg) {
    json_t *o = json_object();
    /* msg may quote request bytes that are not UTF-8; json_string would
     * refuse them, so fall back to a lossy but valid copy. */
    json_t *s = json_string(msg);
    if (!s) {
        size_t n = strlen(msg);
        char *ascii = malloc(n + 1);
        if (ascii) {
            for (size_t i = 0; i < n; i++)
                ascii[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
            ascii[n] = '\0';
            s = json_string(ascii);
            free(ascii);
        }
    }
    char *text = NULL;
    if (o && s && json_object_set_new(o, "error", s) == 0)
        text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
    else
        json_decref(s);
    json_decref(o);
    return text;
}

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

/* Whitespace-separated words (ASCII and Unicode spaces): the lexical
 * encoder's token count, used to refuse an oversize context (--max-tokens)
 * before any work is queued and to spot empty fields. */
int64_t serve_count_words(const char *s) {
    return comi_text_count_tokens(s);
}

/* An optional integer field in [lo, hi]: 0 when absent or valid (*out
 * set when present), else the HTTP status with the message in err. */
static int get_int_field(json_t *root, const char *name, int64_t lo, int64_t hi, bool *present,
                         int64_t *out, char *err, size_t errsz) {
    json_t *v = json_object_get(root, name);
    *present = v != NULL;
    if (!v) return 0;
    if (!json_is_integer(v)) {
        snprintf(err, errsz, "'%s' must be an integer, got %s", name, json_type_name(v));
        return 400;
    }
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        snprintf(err, errsz, "'%s' must be in [%lld, %lld], got %lld", name, (long long)lo,
                 (long long)hi, (long long)x);
        return 422;
    }
    *out = (int64_t)x;
    return 0;
}

/* The fields every POST endpoint shares: the JSON object itself, no fields
 * beyond `known`, "context" | "documents", and "question". An empty context
 * is refused only when `need_context`. Returns 0 or the HTTP status. */
static int parse_common(const char *body, size_t len, job *j, const char *const *known,
                        size_t n_known, bool need_context, char *err, size_t errsz) {
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errsz, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return 400;
    }
    j->root = root;
    if (!json_is_object(root)) {
        snprintf(err, errsz, "the request body must be a JSON object, got %s",
                 json_type_name(root));
        return 400;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        bool ok = false;
        for (size_t i = 0; i < n_known; i++)
            ok |= !strcmp(key, known[i]);
        if (!ok) {
            char list[256] = "";
            for (size_t i = 0; i < n_known; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         known[i]);
            snprintf(err, errsz, "unknown field '%.100s' (known: %s)", key, list);
            return 400;
        }
    }
    json_t *ctx = json_object_get(root, "context");
    json_t *docs = json_object_get(root, "documents");
    json_t *q = json_object_get(root, "question");
    if (ctx && docs) {
        snprintf(err, errsz, "give either 'context' or 'documents', not both");
        return 400;
    }
    if (!ctx && !docs) {
        snprintf(err, errsz,
                 "missing field 'context' (a string) or 'documents' (a list of strings)");
        return 400;
    }
    int64_t words = 0;
    if (ctx) {
        if (!json_is_string(ctx)) {
            snprintf(err, errsz, "'context' must be a string, got %s", json_type_name(ctx));
            return 400;
        }
        j->context = json_string_value(ctx);
        words = serve_count_words(j->context);
        if (words == 0 && need_context) {
            snprintf(err, errsz, "'context' is empty");
            return 422;
        }
    } else {
        if (!json_is_array(docs)) {
            snprintf(err, errsz, "'documents' must be a list of strings, got %s",
                     json_type_name(docs));
            return 400;
        }
        size_t n = json_array_size(docs);
        if (n == 0 && need_context) {
            snprintf(err, errsz, "'documents' is an empty list");
            return 422;
        }
        j->docs = calloc(n ? n : 1, sizeof *j->docs);
        if (!j->docs) {
            snprintf(err, errsz, "out of memory for %zu documents", n);
            return 503;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *d = json_array_get(docs, i);
            if (!json_is_string(d)) {
                snprintf(err, errsz, "'documents'[%zu] must be a string, got %s", i,
                         json_type_name(d));
                return 400;
            }
            j->docs[i] = json_string_value(d);
            words += serve_count_words(j->docs[i]);
        }
        j->n_docs = n;
        if (words == 0 && need_context) {
            snprintf(err, errsz, "'documents' holds only empty strings");
            return 422;
        }
    }
    if (!q) {
        snprintf(err, errsz, "missing field 'question' (a string)");
        return 400;
    }
    if (!json_is_string(q)) {
        snprintf(err, errsz, "'question' must be a string, got %s", json_type_name(q));
        return 400;
    }
    j->question = json_string_value(q);
    if (serve_count_words(j->question) == 0) {
        snprintf(err, errsz, "'question' is empty");
        return 422;
    }
    if (srv.max_tokens > 0 && words > srv.max_tokens) {
        snprintf(err, errsz, "the context has %lld words, over this server's --max-tokens %lld",
                 (long long)words, (long long)srv.max_tokens);
        return 413;
    }
    return 0;
}

/* "unit" (sentence | clause | word), "readable" (true: unit sentence, the
 * readable mode) and "tokenizer" (this server's --tokenizer, or "words")
 * of a /v1/compress body into j->params. Returns 0 or the HTTP status. */
static int parse_unit(job *j, char *err, size_t errsz) {
    json_t *unit = json_object_get(j->root, "unit");
    json_t *readable = json_object_get(j->root, "readable");
    json_t *tok = json_object_get(j->root, "tokenizer");
    if (unit) {
        if (!json_is_string(unit)) {
            snprintf(err, errsz, "'unit' must be a string (sentence, clause or word), got %s",
                     json_type_name(unit));
            return 400;
        }
        comi_ctx *c = comi_ctx_new(NULL);
        if (!c) {
            snprintf(err, errsz, "out of memory");
            return 500;
        }
        comi_status st = comi_text_set_unit(c, &j->params, json_string_value(unit));
        if (st != COMI_OK) snprintf(err, errsz, "%s", comi_errmsg(c));
        comi_ctx_free(c);
        if (st != COMI_OK) return 422;
    }
    if (readable) {
        if (!json_is_boolean(readable)) {
            snprintf(err, errsz, "'readable' must be true or false, got %s",
                     json_type_name(readable));
            return 400;
        }
        if (json_is_true(readable)) {
            if (unit && j->params.unit != COMI_UNIT_SENTENCE) {
                snprintf(err, errsz, "'readable': true means unit sentence, but 'unit' is '%s'",
                         comi_text_unit_name(j->params.unit));
                return 422;
            }
            j->params.unit = COMI_UNIT_SENTENCE;
        }
    }
    if (tok) {
        if (!json_is_string(tok)) {
            snprintf(err, errsz, "'tokenizer' must be a string, got %s", json_type_name(tok));
            return 400;
        }
        const char *t = json_string_value(tok);
        if (!strcmp(t, "words")) {
            j->params.tokenizer = NULL;
        } else if (!srv.tokenizer_spec || strcmp(t, srv.tokenizer_spec) != 0) {
            snprintf(err, errsz,
                     "'tokenizer' is '%.200s' but this server %s%.200s%s (use that, \"words\", or "
                     "leave it out)",
                     t, srv.tokenizer_spec ? "loaded '" : "was started without --tokenizer",
                     srv.tokenizer_spec ? srv.tokenizer_spec : "", srv.tokenizer_spec ? "'" : "");
            return 422;
        }
    }
    return 0;
}

/* Parses and checks a /v1/compress body into j (inputs only). Returns 0 on
 * success, else the HTTP status with the message in err. */
int serve_parse_compress(const char *body, size_t len, job *j, char *err, size_t errsz) {
    /* the request fields, then every text-mode knob by its name */
    const char *known[40] = {"context",       "documents", "question", "ratio",
                             "target_tokens", "encoder",   "unit",     "readable",
                             "tokenizer"};
    enum { N_FIELDS = 9 };
    size_t n_known = N_FIELDS;
    for (const char *const *k = comi_text_param_names(); *k && n_known < 40; k++)
        if (strcmp(*k, "ratio") && strcmp(*k, "target_tokens")) known[n_known++] = *k;
    int code = parse_common(body, len, j, known, n_known, true, err, errsz);
    if (code) return code;
    json_t *ratio = json_object_get(j->root, "ratio");
    json_t *target = json_object_get(j->root, "target_tokens");
    json_t *enc = json_object_get(j->root, "encoder");
    j->kind = JOB_COMPRESS;
    j->params = comi_text_default_params();
    j->params.encoder = srv.enc;
    j->params.tokenizer = srv.tok;
    if ((code = parse_unit(j, err, errsz))) return code;
    if (ratio && target) {
        snprintf(err, errsz, "give either 'ratio' or 'target_tokens', not both");
        return 400;
    }
    if (ratio) {
        if (!json_is_number(ratio)) {
            snprintf(err, errsz, "'ratio' must be a number, got %s", json_type_name(ratio));
            return 400;
        }
        double r = json_number_value(ratio);
        if (!(r >= 1) || !isfinite(r)) {
            snprintf(err, errsz, "'ratio' must be a finite number >= 1, got %g", r);
            return 422;
        }
        j->params.ratio = r;
        j->params.target_tokens = 0;
    }
    if (target) {
        if (!json_is_integer(target)) {
            snprintf(err, errsz, "'target_tokens' must be an integer, got %s",
                     json_type_name(target));
            return 400;
        }
        json_int_t t = json_integer_value(target);
        if (t <= 0) {
            snprintf(err, errsz, "'target_tokens' must be > 0, got %lld", (long long)t);
            return 422;
        }
        j->params.target_tokens = (int64_t)t;
    }
    for (size_t k = N_FIELDS; k < n_known; k++) {
        json_t *v = json_object_get(j->root, known[k]);
        if (!v) continue;
        double x;
        if (json_is_boolean(v)) x = json_is_true(v);
        else if (json_is_number(v)) x = json_number_value(v);
        else if (!strcmp(known[k], "summary") && json_is_string(v) &&
                 (!strcmp(json_string_value(v), "auto") || !strcmp(json_string_value(v), "on") ||
                  !strcmp(json_string_value(v), "off")))
            x = !strcmp(json_string_value(v), "auto") ? -1 : !strcmp(json_string_value(v), "on");
        else {
            snprintf(err, errsz, "'%s' must be a number, got %s", known[k], json_type_name(v));
            return 400;
        }
        comi_ctx *c = comi_ctx_new(NULL);
        if (!c) {
            snprintf(err, errsz, "out of memory");
            return 500;
        }
        comi_status st = comi_text_set_param(c, &j->params, known[k], x);
        if (st != COMI_OK) snprintf(err, errsz, "%s", comi_errmsg(c));
        comi_ctx_free(c);
        if (st != COMI_OK) return 422;
    }
    if (enc) {
        if (!json_is_string(enc)) {
            snprintf(err, errsz, "'encoder' must be a string, got %s", json_type_name(enc));
            return 400;
        }
        const char *e = json_string_value(enc);
        if (!strcmp(e, "lexical")) {
            j->params.encoder = NULL; /* the built-in lexical encoder */
        } else if (strcmp(e, srv.encoder_spec) != 0) {
            snprintf(err, errsz,
                     "'encoder' is '%.200s' but this server loaded '%.200s' (use that, "
                     "\"lexical\", or leave it out)",
                     e, srv.encoder_spec);
            return 422;
        }
    }
    return 0;
}

/* Parses and checks a /v1/answer body (the model pipeline's knobs start
 * from the loaded pipeline's defaults). Returns 0 or the HTTP status. */
int serve_parse_answer(const char *body, size_t len, job *j, char *err, size_t errsz) {
    static const char *const known[] = {"context",     "documents",      "question",
                                        "merge_size",  "max_new_tokens", "encoder_layers",
                                        "segment_size"};
    int code = parse_common(body, len, j, known, sizeof known / sizeof known[0], false, err, errsz);
    if (code) return code;
    j->kind = JOB_ANSWER;
    j->aparams = comi_pipeline_answer_params(srv.pl);
    j->aparams.keep_logits = false;
    /* The pipeline's default applies when the request gives none, but never
     * beyond this server's --max-new-tokens (found by fuzz_answer). */
    if (j->aparams.max_new_tokens > srv.max_new_tokens)
        j->aparams.max_new_tokens = (int32_t)srv.max_new_tokens;
    bool has;
    int64_t v;
    if ((code = get_int_field(j->root, "merge_size", 1, 1 << 20, &has, &v, err, errsz)))
        return code;
    if (has) j->aparams.merge.merge_size = v;
    if ((code =
             get_int_field(j->root, "max_new_tokens", 1, srv.max_new_tokens, &has, &v, err, errsz)))
        return code;
    if (has) j->aparams.max_new_tokens = (int32_t)v;
    if ((code = get_int_field(j->root, "encoder_layers", 1, srv.pl_info.encoder_n_layer, &has, &v,
                              err, errsz)))
        return code;
    if (has) j->aparams.encoder_layers = (int32_t)v;
    if ((code = get_int_field(j->root, "segment_size", 1, INT32_MAX, &has, &v, err, errsz)))
        return code;
    if (has) j->aparams.segment_size = v;
    return 0;
}

/* Content types a JSON body may arrive with: JSON itself, none, and the
 * ones curl -d and browsers default to; anything else is refused (415) so
 * a form upload gets a clear answer instead of a JSON syntax error. */
bool serve_content_type_ok(const char *ct) {
    if (!ct) return true;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    static const char *const ok[] = {"application/json", "text/plain",
                                     "application/x-www-form-urlencoded"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && !strncasecmp(ct, ok[i], n)) return true;
    /* application/<anything>+json */
    return n > 5 && !strncasecmp(ct + n - 5, "+json", 5);
}

