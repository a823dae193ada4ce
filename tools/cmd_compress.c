/*
 * cmd_compress.c — `comi compress`: text-mode compression of one context
 * (or a list of documents) for one question; prints the compressed text,
 * or with --json the text plus token counts, ratio and milliseconds.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_compress(int argc, char **argv);

static const char *const compress_usage =
    "usage: comi compress --question Q (--context-file F | --context TEXT | --documents-file F)\n"
    "                     [--ratio R | --target-tokens N] [--unit sentence|clause|word]\n"
    "                     [--tokenizer MODEL] [--encoder SPEC] [--json] [--set K=V]\n"
    "                     [--max-context-tokens N] [--max-memory SIZE]\n";

static const char *const compress_about =
    "Keeps the words of the context with the most Marginal Information Gain for the\n"
    "question (coarse-to-fine: groups get budgets, units inside them are kept\n"
    "greedily) and prints them in their original order. The output never has more\n"
    "than floor(words / R) words (--ratio, default 4) or N words (--target-tokens);\n"
    "with --tokenizer, MODEL's tokens instead of words. --unit sentence keeps whole\n"
    "sentences only, each exactly as in the input (readable output, no splices).\n"
    "A file argument of - reads standard input.\n";

static const char *const compress_epilog =
    "Exit status: 0 success; 1 bad input (empty context or question, invalid UTF-8,\n"
    "missing file, unknown encoder) with one line on stderr; 2 bad usage.\n";

/* One document from a JSON value: a string or an object with "text". */
static char *doc_of(json_t *v) {
    if (json_is_object(v)) v = json_object_get(v, "text");
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* Parses a documents file into docs[0..n); false after an error line. */
static bool read_documents(const char *path, char ***docs, size_t *n) {
    char *data = cli_read_text("compress", "--documents-file", path);
    if (!data) return false;
    *docs = NULL;
    *n = 0;
    size_t cap = 0;
    bool ok = true;
    const char *p = data;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (*p == '[') {
        json_error_t je;
        json_t *arr = json_loads(data, 0, &je);
        if (!arr || !json_is_array(arr)) {
            if (arr) cli_error("compress", "--documents-file: %s: not a JSON list", path);
            else
                cli_error("compress", "--documents-file: %s: line %d, column %d: %s", path,
                          je.line, je.column, je.text);
            json_decref(arr);
            free(data);
            return false;
        }
        size_t cnt = json_array_size(arr);
        *docs = calloc(cnt ? cnt : 1, sizeof **docs);
        for (size_t i = 0; *docs && i < cnt; i++) {
            (*docs)[i] = doc_of(json_array_get(arr, i));
            if (!(*docs)[i]) {
                cli_error("compress", "--documents-file: %s: item %zu is not a string", path, i);
                ok = false;
                break;
            }
            (*n)++;
        }
        json_decref(arr);
    } else {
        int line = 0;
        char *s = data;
        while (ok && *s) {
            char *eol = strchr(s, '\n');
            if (eol) *eol = '\0';
            line++;
            const char *t = s;
            while (*t == ' ' || *t == '\t' || *t == '\r') t++;
            if (*t) {
                json_error_t je;
                json_t *v = json_loads(t, JSON_DECODE_ANY, &je);
                char *d = v ? doc_of(v) : NULL;
                json_decref(v);
                if (!d) {
                    cli_error("compress", "--documents-file: %s: line %d: %s", path, line,
                              v ? "not a string or an object with \"text\"" : je.text);
                    ok = false;
                    break;
                }
                if (*n == cap) {
                    cap = cap ? cap * 2 : 16;
                    char **nd = realloc(*docs, cap * sizeof *nd);
                    if (!nd) {
                        free(d);
                        cli_error("compress", "out of memory");
                        ok = false;
                        break;
                    }
                    *docs = nd;
                }
                (*docs)[(*n)++] = d;
            }
            if (!eol) break;
            s = eol + 1;
        }
    }
    free(data);
    if (ok && *n == 0) {
        cli_error("compress", "--documents-file: %s: no documents", path);
        ok = false;
    }
    if (!ok) {
        for (size_t i = 0; i < *n; i++) free((*docs)[i]);
        free(*docs);
        *docs = NULL;
        *n = 0;
    }
    return ok;
}

bool cli_set_text_unit(const char *name, void *target, char *err, size_t errsz) {
    comi_ctx *c = comi_ctx_new(NULL);
    if (!c) return snprintf(err, errsz, "out of memory"), false;
    bool ok = comi_text_set_unit(c, target, name) == COMI_OK;
    if (!ok) snprintf(err, errsz, "%s", comi_errmsg(c));
    comi_ctx_free(c);
    return ok;
}

bool cli_set_text_knob(const char *kv, void *target, char *err, size_t errsz) {
    comi_text_params *p = target;
    if (!strncmp(kv, "unit=", 5)) return cli_set_text_unit(kv + 5, target, err, errsz);
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return snprintf(err, errsz, "'%s' is not KEY=VALUE", kv), false;
    char name[64];
    size_t kl = (size_t)(eq - kv);
    if (kl >= sizeof name) return snprintf(err, errsz, "unknown knob '%.*s'", (int)kl, kv), false;
    memcpy(name, kv, kl);
    name[kl] = '\0';
    const char *vs = eq + 1;
    double v;
    if (!strcmp(vs, "auto")) v = -1;
    else if (!strcmp(vs, "on") || !strcmp(vs, "true")) v = 1;
    else if (!strcmp(vs, "off") || !strcmp(vs, "false")) v = 0;
    else {
        char *end;
        errno = 0;
        v = strtod(vs, &end);
        if (!*vs || *end || errno)
            return snprintf(err, errsz, "%s: '%s' is not a number", name, vs), false;
    }
    comi_ctx *c = comi_ctx_new(NULL);
    if (!c) return snprintf(err, errsz, "out of memory"), false;
    bool ok = comi_text_set_param(c, p, name, v) == COMI_OK;
    if (!ok) snprintf(err, errsz, "%s", comi_errmsg(c));
    comi_ctx_free(c);
    return ok;
}

/* One compression of the documents (when docs) or of text. */
static comi_status compress_once(comi_ctx *ctx, char **docs, size_t n_docs, const char *text,
                                 const char *question, const comi_text_params *prm,
                                 comi_text_result *res) {
    return docs ? comi_compress_documents(ctx, (const char *const *)docs, n_docs, question, prm,
                                          res)
                : comi_compress_text(ctx, text, question, prm, res);
}

int cmd_compress(int argc, char **argv) {
    const char *cmd = "compress";
    const char *question = NULL, *context = NULL, *context_file = NULL, *docs_file = NULL;
    const char *encoder_spec = "lexical", *tokenizer_path = NULL;
    bool json = false;
    comi_text_params prm = comi_text_default_params();
    double ratio = 0; /* 0: not given */
    cli_limits lim = {0};
    cli_opt opts[] = {
        {CLI_O("--question", CLI_STR, &question, "Q", "the question or instruction (required)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--context", CLI_STR, &context, "TEXT",
         "the context; blank lines separate passages (groups)")},
        {CLI_O("--context-file", CLI_FILE, &context_file, "F", "read the context from F (UTF-8)")},
        {CLI_O("--documents-file", CLI_FILE, &docs_file, "F",
         "documents: a JSON list of strings, or JSONL with one\n"
         "string (or object with \"text\") per line")},
        {CLI_O("--ratio", CLI_F64, &ratio, "R", "compression ratio >= 1 (default 4)"), .flags = CLI_MIN,
         .lo = 1},
        {CLI_O("--target-tokens", CLI_I64, &prm.target_tokens, "N",
         "keep at most N words (N >= 1; overrides --ratio)"), .ilo = 1, .ihi = INT64_MAX},
        {CLI_O("--encoder", CLI_STR, &encoder_spec, "SPEC",
         "lexical (default) | vectors:FILE (GloVe text or word2vec\n"
         "binary) | MODEL (.gguf or HF directory with a tokenizer:\n"
         "hidden states of its first 8 layers)")},
        {CLI_O("--unit", CLI_FN, &prm, "U",
         "what the output is made of: word (default: clauses, cut\n"
         "to the best words under a tight budget) | clause (whole\n"
         "clauses) | sentence (whole sentences, byte-exact; fails\n"
         "when the budget is shorter than every sentence)"),
         .fn = cli_set_text_unit},
        {CLI_O("--tokenizer", CLI_STR, &tokenizer_path, "MODEL",
         "count --ratio and --target-tokens budgets in MODEL's tokens\n"
         "(.gguf or HF directory; no BOS/EOS) instead of words")},
        {CLI_O("--json", CLI_FLAG, &json, NULL,
         "print {compressed, original_tokens, compressed_tokens,\nratio, ms}")},
        {CLI_O("--keep-titles", CLI_FLAG, &prm.keep_titles, NULL,
         "keep the first short line (title) of groups that get words")},
        {CLI_O("--no-coarse", CLI_CLEAR, &prm.coarse, NULL, "share the budget by group size instead of MIG")},
        {CLI_O("--no-redundancy", CLI_CLEAR, &prm.redundancy, NULL,
         "drop the redundancy terms (relevance only)")},
        {CLI_O("--alpha", CLI_F32, &prm.alpha, "A", "relevance weight")},
        {CLI_O("--beta", CLI_F32, &prm.beta, "B", "redundancy weight")},
        {CLI_O("--temperature", CLI_F32, &prm.temperature, "T",
         "coarse softmax temperature > 0 (lower: more concentrated)"), .flags = CLI_GT, .lo = 0},
        {CLI_O("--context-weight", CLI_F32, &prm.context_weight, "W",
         "weight of sentence/group relevance in a unit's score")},
        {CLI_O("--min-unit-words", CLI_I32, &prm.min_unit_words, "N",
         "shortest clause kept as its own unit (1..1000)"), .ilo = 1, .ihi = 1000},
        {CLI_O("--min-group-words", CLI_I32, &prm.min_group_words, "N",
         "a group whose share falls below N words gets none"), .ilo = 0, .ihi = 100000},
        {CLI_O("--window-words", CLI_I32, &prm.window_words, "N",
         "group size when the text has no paragraphs (default 120)"), .ilo = 1, .ihi = 1000000},
        {CLI_O("--bridge-weight", CLI_F32, &prm.bridge_weight, "W",
         "relevance a titled group gains when a relevant one names it")},
        {CLI_O("--lead-weight", CLI_F32, &prm.lead_weight, "W",
         "weight of 1 / (1 + position of a unit in its group)")},
        {CLI_O("--centrality-weight", CLI_F32, &prm.centrality_weight, "W",
         "weight of a unit's cosine with the context's centroid")},
        {CLI_O("--set", CLI_FN, &prm, "KEY=VALUE",
         "any knob by its name (alpha, ..., summary=auto|on|off,\n"
         "unit=sentence|clause|word);\n"
         "the same names as eval --set, the HTTP body and Python"),
         .fn = cli_set_text_knob},
        CLI_LIMIT_OPTS(lim),
        CLI_KV_OPT(lim.kv_type),
    };
    cli_cmd spec = {.name = cmd, .usage = compress_usage, .about = compress_about,
                    .epilog = compress_epilog, .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    /* the same rule as the service and Python: one budget */
    if (ratio != 0 && prm.target_tokens > 0)
        return cli_usage(cmd, "give either --ratio or --target-tokens, not both");
    if (ratio != 0) prm.ratio = ratio;
    if (lim.kv_type != COMI_KV_F32 &&
        (!strcmp(encoder_spec, "lexical") || !strncmp(encoder_spec, "vectors:", 8)))
        return cli_usage(cmd, "--kv-type f16 needs --encoder MODEL (the %s encoder keeps no KV "
                              "cache)",
                         strcmp(encoder_spec, "lexical") ? "vectors" : "lexical");
    int sources = (context != NULL) + (context_file != NULL) + (docs_file != NULL);
    if (sources != 1)
        return cli_usage(cmd, "give exactly one of --context, --context-file, --documents-file");

    comi_ctx *ctx = cli_ctx_new(0, &lim);
    if (!ctx) return cli_error(cmd, "out of memory");
    int rc = 1;
    char *file_text = NULL, **docs = NULL;
    size_t n_docs = 0;
    comi_encoder *enc = NULL;
    comi_tokenizer *tok = NULL;
    comi_text_result res = {0};
    if (context_file && !(file_text = cli_read_text(cmd, "--context-file", context_file))) goto done;
    if (docs_file && !read_documents(docs_file, &docs, &n_docs)) goto done;
    if (strcmp(encoder_spec, "lexical") != 0) {
        if (comi_encoder_load(ctx, encoder_spec, &enc) != COMI_OK) {
            cli_error(cmd, "--encoder: %s", comi_errmsg(ctx));
            goto done;
        }
        prm.encoder = enc;
    }
    if (tokenizer_path && comi_tokenizer_load(ctx, tokenizer_path, &tok) != COMI_OK) {
        cli_error(cmd, "--tokenizer: %s", comi_errmsg(ctx));
        goto done;
    }
    prm.tokenizer = tok;
    comi_status st =
        compress_once(ctx, docs, n_docs, file_text ? file_text : context, question, &prm, &res);
    if (st != COMI_OK) {
        cli_error(cmd, "%s", comi_errmsg(ctx));
        goto done;
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:f, s:f}", "compressed", res.text,
                              "original_tokens", (json_int_t)res.original_tokens,
                              "compressed_tokens", (json_int_t)res.compressed_tokens, "ratio",
                              res.ratio, "ms", res.ms);
        char *s = o ? json_dumps(o, 0) : NULL;
        json_decref(o);
        if (!s) {
            cli_error(cmd, "out of memory");
            goto done;
        }
        puts(s);
        free(s);
    } else {
        puts(res.text);
    }
    rc = 0;
done:
    comi_text_result_free(&res);
    comi_encoder_free(enc);
    comi_tokenizer_free(tok);
    for (size_t i = 0; i < n_docs; i++) free(docs[i]);
    free(docs);
    free(file_text);
    comi_ctx_free(ctx);
    return rc;
}
