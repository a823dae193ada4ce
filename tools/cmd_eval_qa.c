/*
 * cmd_eval_qa.c — `comi eval --task qa`: every method answers every example
 * of a COMI JSONL data set at each compression ratio; answers are scored by
 * EM / F1 / accuracy (DESIGN.md "Metrics", comi_score_answer) with 95%
 * bootstrap intervals.
 *
 * Two kinds of method:
 *  - soft (the paper's system, comi answer): comi (merge size = ratio),
 *    no-redundancy, coarse-only, fine-only, mean-pool; soft-truncate (the
 *    decoder reads the first floor(n / ratio) context tokens); soft-full
 *    (the whole context, one run shown at every ratio);
 *  - text: a compressor turns the context into text within floor(words of
 *    input / ratio) words, and the reader (eval_reader.h: the model, its
 *    chat template, one fixed prompt, greedy) answers from it: full (the
 *    whole input, one run), truncate (first words), bm25 (BM25 sentence
 *    selection), text (comi text mode, --encoder), external:NAME=FILE
 *    (rows {"id", "ratio", "compressed"} made by any other compressor).
 * Writes DIR/examples.jsonl (one line per example x method x ratio; lines
 * already there are not run again, so an interrupted run resumes),
 * DIR/metrics.json and DIR/qa.svg. Uses only comi.h.
 */
#include "cli.h"
#include "eval_reader.h"
#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int cmd_eval_qa(int argc, char **argv); /* comi eval --task qa */

static const char *const CMD = "eval";
/* the name usage errors carry: "comi eval --task qa: ... (comi eval --task qa --help)" */
static const char *const QA = "eval --task qa";

static const char *const qa_usage =
    "usage: comi eval --task qa --data F.jsonl --model MODEL [--methods LIST]\n"
    "                 [--ratio 4,8,16,32] [--limit N] [--shuffle --seed S] [--out-dir DIR]\n"
    "                 [--encoder SPEC] [--no-documents] [--prompt-format chat|plain]\n"
    "                 [--checkpoint DIR] [--encoder-layers K] [--max-new-tokens N]\n"
    "                 [--segment-size N] [--threads T] [--skip-bad] [--save-text]\n"
    "                 [--max-context-tokens N] [--max-memory SIZE] [--set K=V] [--unit U]\n";

static const char *const qa_about =
    "Answers every example's `prompt` from its `input` with each method at each ratio and\n"
    "scores the answers against `answer` by exact match, token F1 and accuracy (a\n"
    "reference inside the answer), with 95% bootstrap intervals.\n";

static const char *const qa_epilog =
    "The reader's prompt (fixed): system \"" READER_SYSTEM "\";\n"
    "user \"Documents:\\n<compressed context>\\n\\nQuestion: <question>\"; the answer is\n"
    "the generated text up to its first line break (greedy, at most 24 tokens).\n"
    "The limits apply per example and method; an example over a limit stops the run\n"
    "with its line number.\n";

/* ---------------------------------------------------------------- methods */

typedef enum {
    K_COMI,
    K_NO_RED,
    K_COARSE_ONLY,
    K_FINE_ONLY,
    K_MEAN_POOL,
    K_SOFT_TRUNCATE,
    K_SOFT_FULL,
    K_FULL,
    K_TRUNCATE,
    K_BM25,
    K_TEXT,
    K_EXTERNAL,
    K_N
} method_kind;

static const char *const kind_names[K_N] = {
    "comi",          "no-redundancy", "coarse-only", "fine-only", "mean-pool", "soft-truncate",
    "soft-full",     "full",          "truncate",    "bm25",      "text",      "external"};

static bool is_soft(method_kind k) { return k <= K_SOFT_FULL; }
static bool runs_once(method_kind k) { return k == K_SOFT_FULL || k == K_FULL; }

typedef struct ext_row {
    char *id;
    double ratio, ms;
    char *text;
} ext_row;

typedef struct qa_method {
    method_kind kind;
    char name[160]; /* results key: the kind, or external:NAME */
    ext_row *rows;  /* external rows */
    size_t n_rows;
} qa_method;

#define MAX_METHODS 24

/* Reads an external compressor's JSONL: {"id", "ratio", "compressed"[, "ms"]}. */
static bool load_external(qa_method *m, const char *file) {
    FILE *f = fopen(file, "rb");
    if (!f) return cli_error(CMD, "--methods %s: cannot open '%s': %s", m->name, file,
                             strerror(errno)) == 0;
    size_t cap = 0, lcap = 0, ln = 0;
    char *line = NULL;
    bool ok = true;
    while (ok && getline(&line, &lcap, f) > 0) {
        ln++;
        size_t k = strspn(line, " \t\r\n");
        if (!line[k]) continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        json_t *id = o ? json_object_get(o, "id") : NULL, *ra = o ? json_object_get(o, "ratio") : NULL,
               *tx = o ? json_object_get(o, "compressed") : NULL,
               *ms = o ? json_object_get(o, "ms") : NULL;
        if (!o || !(json_is_string(id) || json_is_integer(id)) || !json_is_number(ra) ||
            !json_is_string(tx)) {
            cli_error(CMD, "--methods %s: %s line %zu: %s", m->name, file, ln,
                      !o ? je.text : "needs \"id\" (string), \"ratio\" (number), \"compressed\" "
                                     "(string)");
            ok = false;
        } else {
            if (m->n_rows == cap) {
                cap = cap ? cap * 2 : 256;
                ext_row *p = realloc(m->rows, cap * sizeof *p);
                if (!p) {
                    ok = false;
                    cli_error(CMD, "out of memory");
                    json_decref(o);
                    break;
                }
                m->rows = p;
            }
            ext_row *r = &m->rows[m->n_rows];
            char idbuf[32];
            if (json_is_integer(id)) snprintf(idbuf, sizeof idbuf, "%lld",
                                              (long long)json_integer_value(id));
            r->id = strdup(json_is_string(id) ? json_string_value(id) : idbuf);
            r->text = strdup(json_string_value(tx));
            r->ratio = json_number_value(ra);
            r->ms = json_is_number(ms) ? json_number_value(ms) : 0;
            if (!r->id || !r->text) {
                free(r->id);
                free(r->text);
                ok = false;
                cli_error(CMD, "out of memory");
            } else {
                m->n_rows++;
            }
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return ok;
}

static const ext_row *find_row(const qa_method *m, const char *id, double ratio) {
    for (size_t i = m->n_rows; i-- > 0;) /* the last row for a cell wins */
        if (fabs(m->rows[i].ratio - ratio) < 1e-9 && !strcmp(m->rows[i].id, id))
            return &m->rows[i];
    return NULL;
}

/* Returns 0, or the exit status: 2 for a malformed list, 1 for an external
 * file that cannot be read. */
static int parse_methods(const char *s, qa_method *ms, size_t *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= 4096) {
            cli_usage(QA, "--methods: empty or overlong item in '%s'", s);
            return CLI_EXIT_USAGE;
        }
        char item[4096];
        memcpy(item, p, len);
        item[len] = 0;
        p += len + (p[len] == ',');
        if (*n >= MAX_METHODS) {
            cli_usage(QA, "--methods: more than %d methods", MAX_METHODS);
            return CLI_EXIT_USAGE;
        }
        qa_method *m = &ms[*n];
        memset(m, 0, sizeof *m);
        if (!strncmp(item, "external:", 9)) {
            char *eq = strchr(item + 9, '=');
            if (!eq || eq == item + 9 || !eq[1] || (size_t)(eq - item) >= sizeof m->name) {
                cli_usage(QA, "--methods: '%s' is not external:NAME=FILE.jsonl", item);
                return CLI_EXIT_USAGE;
            }
            m->kind = K_EXTERNAL;
            memcpy(m->name, item, (size_t)(eq - item));
            m->name[eq - item] = 0;
            if (!load_external(m, eq + 1)) return 1;
        } else {
            int k = 0;
            while (k < K_EXTERNAL && strcmp(kind_names[k], item)) k++;
            if (k == K_EXTERNAL) {
                cli_usage(QA, "--methods: unknown method '%s' for --task qa (full, truncate, "
                               "bm25, text, external:NAME=FILE, comi, no-redundancy, "
                               "coarse-only, fine-only, mean-pool, soft-truncate, soft-full)",
                          item);
                return CLI_EXIT_USAGE;
            }
            m->kind = (method_kind)k;
            strcpy(m->name, kind_names[k]); /* shorter than the buffer */
        }
        (*n)++; /* counted before the check, so the caller frees its rows */
        for (size_t j = 0; j + 1 < *n; j++)
            if (!strcmp(ms[j].name, m->name)) {
                cli_usage(QA, "--methods: '%s' given twice", m->name);
                return CLI_EXIT_USAGE;
            }
    }
    if (!*n) return cli_usage(QA, "--methods: empty list");
    return 0;
}

static void free_methods(qa_method *ms, size_t n) {
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r < ms[i].n_rows; r++) {
            free(ms[i].rows[r].id);
            free(ms[i].rows[r].text);
        }
        free(ms[i].rows);
    }
}

static bool parse_list_ratios(const char *s, double *out, size_t *n) {
    *n = 0;
    while (*s) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || !isfinite(v) || v < 1 || v != floor(v) || v > 1e6 || *n >= 16)
            return false;
        out[(*n)++] = v;
        if (*end == ',') end++;
        else if (*end) return false;
        s = end;
    }
    return *n > 0;
}

/* ------------------------------------------------------------------ cells */

enum { ST_TOKENIZE, ST_ENCODE, ST_MERGE, ST_FUSE, ST_PREFILL, ST_GENERATE, ST_TOTAL, ST_COMPRESS,
       N_ST };
static const char *const stage_names[N_ST] = {"tokenize", "encode",   "merge", "fuse",
                                              "prefill",  "generate", "total", "compress"};

typedef struct qa_cell {
    size_t ex, mi, ri; /* example, method, ratio index (run-once methods: 0) */
    bool done, missing;
    double em, f1, acc;
    int64_t ctx_tokens, memory; /* model tokens of the context / memories or compressed text */
    int64_t prompt_tokens;      /* text methods: tokens the reader read */
    double ms[N_ST];
} qa_cell;

typedef struct run_cfg {
    comi_example **ex;
    qa_method *methods;
    const double *ratios;
    const char *reader_tag; /* format and prompt fingerprint of the reader */
    const char *text_knobs; /* the text method's knobs that are not the default ("" none) */
} run_cfg;

static double ratio_of(const run_cfg *rc, const qa_cell *c) {
    return runs_once(rc->methods[c->mi].kind) ? 1.0 : rc->ratios[c->ri];
}

/* Replaces bytes that are not valid UTF-8 (a generation cut inside a
 * character) by '?', in place. */
static void utf8_sanitize(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
                                 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = n > 0 && !(n == 2 && *p < 0xc2);
        for (int k = 1; ok && k < n; k++) ok = (p[k] & 0xc0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static void write_line(FILE *f, const run_cfg *rc, const qa_cell *c, const char *pred,
                       const char *text) {
    const comi_example *x = rc->ex[c->ex];
    const qa_method *m = &rc->methods[c->mi];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(x->id));
    json_object_set_new(o, "line", json_integer(x->line));
    json_object_set_new(o, "method", json_string(m->name));
    json_object_set_new(o, "ratio", json_real(ratio_of(rc, c)));
    json_object_set_new(o, "question", json_string(x->prompt));
    json_object_set_new(o, "prediction", json_string(pred ? pred : ""));
    json_t *refs = json_array();
    for (size_t i = 0; i < x->n_answers; i++) json_array_append_new(refs, json_string(x->answers[i]));
    json_object_set_new(o, "references", refs);
    json_object_set_new(o, "context_tokens", json_integer(c->ctx_tokens));
    json_object_set_new(o, "memory", json_integer(c->memory));
    json_object_set_new(o, "em", json_real(c->em));
    json_object_set_new(o, "f1", json_real(c->f1));
    json_object_set_new(o, "accuracy", json_real(c->acc));
    if (m->kind == K_TEXT && rc->text_knobs[0])
        json_object_set_new(o, "text_knobs", json_string(rc->text_knobs));
    if (!is_soft(m->kind)) {
        json_object_set_new(o, "reader", json_string(rc->reader_tag));
        json_object_set_new(o, "prompt_tokens", json_integer(c->prompt_tokens));
    }
    json_t *ms = json_object();
    for (int i = 0; i < N_ST; i++) json_object_set_new(ms, stage_names[i], json_real(c->ms[i]));
    json_object_set_new(o, "ms", ms);
    if (text) json_object_set_new(o, "compressed", json_string(text));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s) {
        fputs(s, f);
        fputc('\n', f);
        free(s);
    }
    fflush(f);
}

/* Marks cells found in an earlier examples.jsonl as done. Text-method lines
 * count only when their reader tag is this run's (same prompt and format). */
static size_t resume(const char *path, const run_cfg *rc, qa_cell *cells, size_t n_cells,
                     size_t *n_stale) {
    *n_stale = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = 0, cap = 0;
    char *line = NULL;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o) continue; /* a line cut by an interruption */
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *m = json_string_value(json_object_get(o, "method"));
        const char *tag = json_string_value(json_object_get(o, "reader"));
        json_t *rv = json_object_get(o, "ratio");
        for (size_t i = 0; id && m && json_is_number(rv) && i < n_cells; i++) {
            qa_cell *c = &cells[i];
            const qa_method *qm = &rc->methods[c->mi];
            if (c->done || strcmp(qm->name, m) || strcmp(rc->ex[c->ex]->id, id) ||
                fabs(ratio_of(rc, c) - json_number_value(rv)) > 1e-9)
                continue;
            if (!is_soft(qm->kind) && (!tag || strcmp(tag, rc->reader_tag))) {
                (*n_stale)++;
                break;
            }
            /* text rows made with other knobs (none stored: the defaults) */
            const char *kn = json_string_value(json_object_get(o, "text_knobs"));
            if (qm->kind == K_TEXT && strcmp(kn ? kn : "", rc->text_knobs)) {
                (*n_stale)++;
                break;
            }
            c->em = json_number_value(json_object_get(o, "em"));
            c->f1 = json_number_value(json_object_get(o, "f1"));
            c->acc = json_number_value(json_object_get(o, "accuracy"));
            c->ctx_tokens = json_integer_value(json_object_get(o, "context_tokens"));
            c->memory = json_integer_value(json_object_get(o, "memory"));
            c->prompt_tokens = json_integer_value(json_object_get(o, "prompt_tokens"));
            json_t *ms = json_object_get(o, "ms");
            for (int k = 0; k < N_ST; k++)
                c->ms[k] = json_number_value(json_object_get(ms, stage_names[k]));
            c->done = true;
            n++;
            break;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return n;
}

/* ---------------------------------------------------------------- running */

typedef struct runner {
    comi_ctx *ctx;
    comi_pipeline *pl;
    reader *rd;
    comi_answer_params base;
    const comi_encoder *encoder;
    comi_text_params text; /* the text method's knobs (--set, --unit) */
    bool use_documents, save_text;
} runner;

/* The compressed text of a text method (malloc'ed), its compressor time. */
static bool compress_text(runner *R, const run_cfg *rc, const qa_cell *c, char **out, double *ms,
                          char *err, size_t err_len) {
    const comi_example *x = rc->ex[c->ex];
    const qa_method *m = &rc->methods[c->mi];
    *ms = 0;
    *out = NULL;
    if (m->kind == K_FULL) {
        *out = strdup(x->input);
    } else if (m->kind == K_EXTERNAL) {
        const ext_row *row = find_row(m, x->id, rc->ratios[c->ri]);
        if (row) {
            *out = strdup(row->text);
            *ms = row->ms;
        }
    } else {
        int64_t budget = (int64_t)floor((double)comi_text_count_tokens(x->input) /
                                        rc->ratios[c->ri]);
        comi_text_result res;
        comi_status st;
        if (budget <= 0) {
            *out = strdup("");
            return *out ? true : (snprintf(err, err_len, "out of memory"), false);
        }
        if (m->kind == K_TEXT) {
            comi_text_params p = R->text;
            p.encoder = R->encoder;
            p.target_tokens = budget;
            st = R->use_documents && x->n_documents > 0
                     ? comi_compress_documents(R->ctx, (const char *const *)x->documents,
                                               x->n_documents, x->prompt, &p, &res)
                     : comi_compress_text(R->ctx, x->input, x->prompt, &p, &res);
        } else {
            st = comi_compress_baseline(R->ctx,
                                        m->kind == K_BM25 ? COMI_BASELINE_BM25
                                                          : COMI_BASELINE_TRUNCATE,
                                        x->input, x->prompt, budget, 0, &res);
        }
        if (st != COMI_OK) {
            snprintf(err, err_len, "%s", comi_errmsg(R->ctx));
            return false;
        }
        *ms = res.ms;
        *out = strdup(res.text);
        comi_text_result_free(&res);
        if (!*out) snprintf(err, err_len, "out of memory");
        return *out != NULL;
    }
    if (m->kind == K_FULL && !*out) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    return true; /* external without a row: *out NULL, the cell is missing */
}

/* Runs one cell: fills its scores and timings; *pred (and *text when
 * saving) malloc'ed. Returns false with err filled on failure. */
static bool run_cell(runner *R, const run_cfg *rc, qa_cell *c, char **pred, char **text,
                     char *err, size_t err_len) {
    const comi_example *x = rc->ex[c->ex];
    const qa_method *m = &rc->methods[c->mi];
    *pred = *text = NULL;
    if (is_soft(m->kind)) {
        comi_answer_params ap = R->base;
        int64_t ratio = (int64_t)rc->ratios[c->ri];
        ap.merge.merge_size = ratio;
        if (m->kind == K_NO_RED) ap.merge.coarse_redundancy = ap.merge.fine_redundancy = false;
        if (m->kind == K_COARSE_ONLY) ap.merge.fine = false;
        if (m->kind == K_FINE_ONLY) ap.merge.coarse = false;
        if (m->kind == K_MEAN_POOL) ap.merge.coarse = ap.merge.fine = false;
        comi_answer_result r;
        comi_status st = COMI_OK;
        if (m->kind == K_SOFT_FULL || m->kind == K_SOFT_TRUNCATE) {
            int64_t keep = -1;
            if (m->kind == K_SOFT_TRUNCATE) {
                comi_tokenize_params tp = comi_tokenize_default_params();
                tp.add_bos = tp.add_eos = 0;
                int32_t *ids = NULL;
                size_t n_ids = 0;
                st = comi_tokenize(R->ctx, comi_pipeline_tokenizer(R->pl), x->input,
                                   strlen(x->input), &tp, &ids, &n_ids);
                comi_free(ids);
                keep = (int64_t)n_ids / ratio;
            }
            if (!st)
                st = comi_pipeline_answer_tokens(R->ctx, R->pl, x->input, x->prompt, keep, &ap,
                                                 &r);
        } else {
            st = comi_pipeline_answer(R->ctx, R->pl, x->input, x->prompt, &ap, &r);
        }
        if (st) {
            snprintf(err, err_len, "%s", comi_errmsg(R->ctx));
            return false;
        }
        c->ctx_tokens = r.n_context_tokens;
        c->memory = r.n_memory;
        double ms[N_ST] = {r.ms_tokenize, r.ms_encode, r.ms_merge,   r.ms_fuse,
                           r.ms_prefill,  r.ms_generate, r.ms_total, 0};
        memcpy(c->ms, ms, sizeof ms);
        *pred = strdup(r.text ? r.text : "");
        comi_answer_result_free(&r);
    } else {
        char *ctext = NULL;
        double ms_c = 0;
        if (!compress_text(R, rc, c, &ctext, &ms_c, err, err_len)) return false;
        if (!ctext) { /* external: no row for this cell */
            c->missing = true;
            return true;
        }
        utf8_sanitize(ctext);
        reader_answer a;
        if (!reader_count_tokens(R->ctx, R->rd, x->input, &c->ctx_tokens, err, err_len) ||
            !reader_count_tokens(R->ctx, R->rd, ctext, &c->memory, err, err_len) ||
            !reader_ask(R->ctx, R->rd, ctext, x->prompt, &a, err, err_len)) {
            free(ctext);
            return false;
        }
        c->prompt_tokens = a.prompt_tokens;
        c->ms[ST_COMPRESS] = ms_c;
        c->ms[ST_TOKENIZE] = a.ms_tokenize;
        c->ms[ST_PREFILL] = a.ms_prefill;
        c->ms[ST_GENERATE] = a.ms_generate;
        c->ms[ST_TOTAL] = ms_c + a.ms_tokenize + a.ms_prefill + a.ms_generate;
        *pred = a.text;
        a.text = NULL;
        reader_answer_free(&a);
        if (R->save_text) *text = ctext;
        else free(ctext);
    }
    if (!*pred) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    utf8_sanitize(*pred);
    comi_answer_scores sc;
    if (comi_score_answer(R->ctx, *pred, (const char *const *)x->answers, x->n_answers, &sc)) {
        snprintf(err, err_len, "scoring: %s", comi_errmsg(R->ctx));
        return false;
    }
    c->em = sc.exact_match;
    c->f1 = sc.f1;
    c->acc = sc.accuracy;
    return true;
}

/* ------------------------------------------------------------------ report */

typedef struct qa_agg {
    double em, f1, acc, ctx, mem, ms[N_ST];
    double ci[3][2]; /* em, f1, accuracy: 95% bootstrap interval */
    size_t n, missing;
} qa_agg;

/* Accuracy against the ratio (log2 axis), one line per method; run-once
 * methods dashed. */
static bool write_svg(const char *path, const char *title, const qa_agg *a, const qa_method *ms,
                      size_t nm, const double *ratios, size_t nr) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    static const char *const col[] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#7f7f7f", "#e377c2"};
    const double W = 760, H = 440, L = 70, R = 230, T = 50, B = 60, pw = W - L - R, ph = H - T - B;
    double x0 = log2(ratios[0]), x1 = x0;
    for (size_t i = 0; i < nr; i++) {
        x0 = fmin(x0, log2(ratios[i]));
        x1 = fmax(x1, log2(ratios[i]));
    }
    if (x1 - x0 < 1e-9) x0 -= 1, x1 += 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"%.0f\" y=\"28\" font-size=\"16\" font-weight=\"bold\">",
            W, H, L);
    report_xml_escape(f, title);
    fprintf(f, "</text>\n");
    for (int t = 0; t <= 10; t += 2) {
        double y = T + ph - ph * t / 10.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%.1f</text>\n",
                L, y, L + pw, y, L - 8, y + 4, t / 10.0);
    }
    for (size_t i = 0; i < nr; i++) {
        double x = L + pw * (log2(ratios[i]) - x0) / (x1 - x0);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%gx</text>\n",
                x, T + ph + 18, ratios[i]);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#888\"/>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" "
               "text-anchor=\"middle\">compression ratio (log scale)</text>\n"
               "<text transform=\"translate(20 %.1f) rotate(-90)\" font-size=\"13\" "
               "text-anchor=\"middle\">answer accuracy</text>\n",
            L, T, pw, ph, L + pw / 2, H - 18, T + ph / 2);
    for (size_t m = 0; m < nm; m++) {
        const char *cl = col[m % 8];
        bool once = runs_once(ms[m].kind);
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"%s points=\"", cl,
                once ? " stroke-dasharray=\"6 4\"" : "");
        for (size_t i = 0; i < nr; i++) {
            const qa_agg *g = &a[m * nr + (once ? 0 : i)];
            fprintf(f, "%.1f,%.1f ", L + pw * (log2(ratios[i]) - x0) / (x1 - x0),
                    T + ph - ph * g->acc);
        }
        double ly = T + 12 + 24.0 * (double)m;
        fprintf(f, "\"/>\n<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2.5\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">",
                L + pw + 14, ly, L + pw + 38, ly, cl, L + pw + 46, ly + 4);
        report_xml_escape(f, ms[m].name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0;
}

/* FNV-1a of the reader's prompt and format: lines made with another prompt
 * are not resumed. */
static void reader_tag(reader_format fmt, char *out, size_t n) {
    const char *parts[] = {READER_SYSTEM, READER_USER_HEAD, READER_USER_MID};
    uint64_t h = 1469598103934665603ull;
    for (size_t p = 0; p < 3; p++) {
        for (const char *s = parts[p]; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    snprintf(out, n, "%s-%016llx", fmt == READER_CHAT ? "chatml" : "plain", (unsigned long long)h);
}

/* The text method's knobs that differ from the defaults, as "unit=sentence,
 * lead_weight=0" (empty for the defaults): stored with its rows, so a
 * resume with other knobs runs them again. */
static void text_knobs_tag(const comi_text_params *p, char *out, size_t n) {
    comi_text_params d = comi_text_default_params();
    size_t k = 0;
    out[0] = '\0';
#define ADD(...)                                                                                 \
    do {                                                                                         \
        if (k < n) k += (size_t)snprintf(out + k, n - k, "%s", k ? "," : "");                   \
        if (k < n) k += (size_t)snprintf(out + k, n - k, __VA_ARGS__);                          \
    } while (0)
#define KF(N)                                                                                    \
    if (p->N != d.N) ADD(#N "=%g", (double)p->N)
    if (p->unit != d.unit) ADD("unit=%s", comi_text_unit_name(p->unit));
    KF(alpha);
    KF(beta);
    KF(temperature);
    KF(context_weight);
    KF(min_unit_words);
    KF(min_group_words);
    KF(window_words);
    KF(bridge_weight);
    KF(lead_weight);
    KF(centrality_weight);
    KF(summary);
    KF(keep_titles);
    KF(coarse);
    KF(redundancy);
    KF(answer_first);
#undef KF
#undef ADD
}

int cmd_eval_qa(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *ckpt = NULL, *tok = NULL, *out_dir = "eval-qa-out";
    const char *ratios_s = "4,8,16,32", *methods_s = "full,truncate,bm25,text";
    const char *enc_spec = NULL, *fmt_s = "chat";
    int64_t limit = -1, seed = 0, threads = 0, enc_layers = 0, max_new = -1, seg = -1;
    double pen = -1;
    bool shuffle = false, skip_bad = false, no_docs = false, save_text = false;
    cli_limits lim = {0};
    const char *task = NULL;
    comi_text_params text_knobs = comi_text_default_params();
    cli_opt opts[] = {
        {CLI_O("--task", CLI_STR, &task, "qa", "this evaluation (--task recall: comi eval --help)")},
        {CLI_O("--data", CLI_FILE, &data, "F.jsonl", "the COMI JSONL data set (- : stdin)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--model", CLI_PATH, &model, "MODEL",
               "the reader of the text methods and the soft pipeline's model"),
         .flags = CLI_REQUIRED},
        {CLI_O("--methods", CLI_STR, &methods_s, "LIST",
               "text methods (the model reads the compressed text through its chat\n"
               "template with a fixed prompt; budget floor(words of input / ratio)):\n"
               "full (the whole input; run once, shown at every ratio), truncate\n"
               "(first words), bm25 (BM25 sentence selection), text (comi text\n"
               "mode, --encoder), external:NAME=FILE.jsonl (rows {\"id\", \"ratio\",\n"
               "\"compressed\"[, \"ms\"]} from another compressor; cells without a\n"
               "row are left out and counted as missing);\n"
               "soft methods (comi answer: memory vectors, merge size = ratio):\n"
               "comi, no-redundancy, coarse-only, fine-only, mean-pool,\n"
               "soft-truncate (first n/ratio context tokens), soft-full\n"
               "(default full,truncate,bm25,text)")},
        {CLI_O("--ratio", CLI_STR, &ratios_s, "LIST",
               "whole-number ratios, comma-separated (default 4,8,16,32)"),
         .alias = "--ratios"},
        {CLI_O("--encoder", CLI_STR, &enc_spec, "SPEC",
               "text method's encoder: lexical (default) | vectors:FILE | MODEL")},
        {CLI_O("--no-documents", CLI_FLAG, &no_docs, NULL,
               "text method compresses `input` even when `documents` are given")},
        {CLI_O("--set", CLI_FN, &text_knobs, "KEY=VALUE",
               "a knob of the text method, as comi compress --set (alpha, beta,\n"
               "temperature, ..., unit=sentence|clause|word; repeatable); stored\n"
               "with its rows, a resume with other knobs runs them again"),
         .fn = cli_set_text_knob},
        {CLI_O("--unit", CLI_FN, &text_knobs, "U",
               "the text method's output units: word (default) | clause | sentence"),
         .fn = cli_set_text_unit},
        {CLI_O("--prompt-format", CLI_STR, &fmt_s, "chat|plain",
               "chat (default): the model's chat template (ChatML); plain: no\n"
               "template (models without one)")},
        {CLI_O("--limit", CLI_I64, &limit, "N", "only the first N examples (after --shuffle)"),
         .ilo = 0, .ihi = INT32_MAX},
        {CLI_O("--shuffle", CLI_FLAG, &shuffle, NULL, "shuffle the examples first")},
        {CLI_O("--seed", CLI_I64, &seed, "S", "seed of --shuffle (default 0)"), .ilo = 0,
         .ihi = INT32_MAX},
        {CLI_O("--out-dir", CLI_PATH, &out_dir, "DIR",
               "DIR/examples.jsonl (resumable), DIR/metrics.json, DIR/qa.svg\n"
               "(default eval-qa-out)")},
        {CLI_O("--save-text", CLI_FLAG, &save_text, NULL,
               "also store each compressed text in examples.jsonl")},
        {CLI_O("--max-new-tokens", CLI_I64, &max_new, "N",
               "answer length (reader default 24, soft default 20)"),
         .ilo = 0, .ihi = INT32_MAX},
        {CLI_O("--checkpoint", CLI_PATH, &ckpt, "DIR", "soft methods: as in comi answer")},
        {CLI_O("--tokenizer", CLI_PATH, &tok, "T", "soft methods: as in comi answer")},
        {CLI_O("--encoder-layers", CLI_I64, &enc_layers, "K", "soft methods: as in comi answer"),
         .ilo = 0, .ihi = INT32_MAX},
        {CLI_O("--segment-size", CLI_I64, &seg, "N", "soft methods: as in comi answer"), .ilo = 1,
         .ihi = INT32_MAX},
        {CLI_O("--repetition-penalty", CLI_F64, &pen, "P",
               "soft methods: as in comi answer (the reader is plain greedy)"),
         .flags = CLI_GT, .lo = 0},
        {CLI_O("--skip-bad", CLI_FLAG, &skip_bad, NULL,
               "skip malformed JSONL lines (counted) instead of stopping")},
        {CLI_O("--threads", CLI_I64, &threads, "T", "kernel threads (default: all cores)"),
         .ilo = 0, .ihi = INT32_MAX},
        CLI_LIMIT_OPTS(lim),
        CLI_KV_OPT(lim.kv_type),
    };
    cli_cmd spec = {.name = QA, .usage = qa_usage, .about = qa_about, .epilog = qa_epilog,
                    .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if (task && strcmp(task, "qa")) return cli_usage(QA, "--task: both qa and '%s' given", task);
    if (strcmp(fmt_s, "chat") && strcmp(fmt_s, "plain"))
        return cli_usage(QA, "--prompt-format: '%s' is not chat or plain", fmt_s);
    double ratios[16];
    size_t nr;
    if (!parse_list_ratios(ratios_s, ratios, &nr))
        return cli_usage(QA, "--ratio: '%s' is not a comma-separated list of whole numbers >= 1 "
                              "(at most 16)",
                         ratios_s);
    qa_method methods[MAX_METHODS];
    size_t nm = 0;
    int mrc = parse_methods(methods_s, methods, &nm);
    if (mrc) {
        free_methods(methods, nm);
        return mrc;
    }
    bool any_soft = false, any_text = false;
    for (size_t m = 0; m < nm; m++) {
        if (is_soft(methods[m].kind)) any_soft = true;
        else any_text = true;
    }

    comi_ctx *ctx = cli_ctx_new((int32_t)threads, &lim);
    if (!ctx) {
        free_methods(methods, nm);
        return cli_error(CMD, "out of memory");
    }
    int rc = 1;
    comi_dataset *ds = NULL;
    comi_encoder *enc = NULL;
    comi_encode_cache *ecache = NULL;
    runner R = {.ctx = ctx, .use_documents = !no_docs, .save_text = save_text,
                .text = text_knobs};
    comi_example **ex = NULL;
    qa_cell *cells = NULL;
    qa_agg *agg = NULL;
    double *vals = NULL;
    FILE *jf = NULL;
    char path[4096], err[1200], tag[64], knobs_tag[512];
    text_knobs_tag(&text_knobs, knobs_tag, sizeof knobs_tag);
    reader_format fmt = !strcmp(fmt_s, "plain") ? READER_PLAIN : READER_CHAT;
    reader_tag(fmt, tag, sizeof tag);
    if (!report_load_dataset(ctx, CMD, data, skip_bad, &ds)) goto done;
    if (any_soft) {
        comi_pipeline_load_params lp = comi_pipeline_load_default_params();
        lp.model = model;
        lp.checkpoint = ckpt;
        lp.tokenizer = tok;
        if (comi_pipeline_load(ctx, &lp, &R.pl) != COMI_OK) {
            cli_error(CMD, "%s", comi_errmsg(ctx));
            goto done;
        }
        R.base = comi_pipeline_answer_params(R.pl);
        if (enc_layers > 0) R.base.encoder_layers = (int32_t)enc_layers;
        if (max_new >= 0) R.base.max_new_tokens = (int32_t)max_new;
        if (seg > 0) R.base.segment_size = seg;
        if (pen > 0) R.base.repetition_penalty = (float)pen;
        R.base.keep_logits = false;
        /* the soft methods and ratios of one example share its encoder states */
        if (comi_encode_cache_new(ctx, 64ull << 20, &ecache) != COMI_OK) {
            cli_error(CMD, "%s", comi_errmsg(ctx));
            goto done;
        }
        R.base.encode_cache = ecache;
    }
    if (any_text) {
        reader_params rp = reader_default_params();
        rp.format = fmt;
        if (max_new >= 0) rp.max_new_tokens = (int32_t)max_new;
        if (!reader_open(ctx, model, &rp, &R.rd, err, sizeof err)) {
            cli_error(CMD, "%s", err);
            goto done;
        }
        if (enc_spec && strcmp(enc_spec, "lexical")) {
            if (comi_encoder_load(ctx, enc_spec, &enc) != COMI_OK) {
                cli_error(CMD, "--encoder: %s", comi_errmsg(ctx));
                goto done;
            }
            R.encoder = enc;
        }
    }
    size_t n_ex = 0;
    if (!(ex = report_examples(ds, shuffle, (uint64_t)seed, limit, &n_ex))) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    if (n_ex == 0) {
        cli_error(CMD, "--data: %s has no examples", data);
        goto done;
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        cli_error(CMD, "--out-dir: cannot create '%s': %s", out_dir, strerror(errno));
        goto done;
    }
    size_t n_cells = 0;
    cells = calloc(n_ex * nm * nr, sizeof *cells);
    agg = calloc(nm * nr, sizeof *agg);
    vals = calloc(n_ex, sizeof *vals);
    if (!cells || !agg || !vals) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    for (size_t e = 0; e < n_ex; e++)
        for (size_t m = 0; m < nm; m++)
            for (size_t ri = 0; ri < (runs_once(methods[m].kind) ? 1 : nr); ri++)
                cells[n_cells++] = (qa_cell){.ex = e, .mi = m, .ri = ri};
    run_cfg rcfg = {.ex = ex, .methods = methods, .ratios = ratios, .reader_tag = tag,
                    .text_knobs = knobs_tag};
    snprintf(path, sizeof path, "%s/examples.jsonl", out_dir);
    size_t n_stale = 0, n_resumed = resume(path, &rcfg, cells, n_cells, &n_stale);
    if (n_resumed)
        fprintf(stderr, "comi eval: resuming, %zu of %zu runs already in %s\n", n_resumed, n_cells,
                path);
    if (n_stale)
        fprintf(stderr,
                "comi eval: %zu lines of %s were read with another prompt or format (reader "
                "%s now) or made with other text knobs (%s now): run again\n",
                n_stale, path, tag, knobs_tag[0] ? knobs_tag : "defaults");
    if (!(jf = fopen(path, "ab"))) {
        cli_error(CMD, "--out-dir: cannot write '%s': %s", path, strerror(errno));
        goto done;
    }
    bool tty = cli_stderr_is_tty();
    size_t n_todo = n_cells - n_resumed, n_now = 0;
    report_progress prog = {.label = "eval qa", .unit = "runs"};
    report_progress_start(&prog);
    double last_log = report_now_s();
    for (size_t i = 0; i < n_cells; i++) {
        qa_cell *c = &cells[i];
        if (c->done) continue;
        char *pred = NULL, *text = NULL;
        if (!run_cell(&R, &rcfg, c, &pred, &text, err, sizeof err)) {
            const comi_example *x = ex[c->ex];
            cli_error(CMD, "line %lld (id %s), method %s, ratio %g: %s", (long long)x->line,
                      x->id, methods[c->mi].name, ratio_of(&rcfg, c), err);
            free(pred);
            free(text);
            goto done;
        }
        n_now++;
        if (!c->missing) {
            c->done = true;
            write_line(jf, &rcfg, c, pred, text);
        }
        free(pred);
        free(text);
        if (tty) {
            report_progress_update(&prog, n_now, n_todo);
        } else if (report_now_s() - last_log > 60) { /* a log line a minute in the background */
            last_log = report_now_s();
            fprintf(stderr, "comi eval: %zu/%zu runs, %.0f s\n", n_now, n_todo,
                    last_log - prog.t0);
        }
    }
    if (tty && n_todo) fprintf(stderr, "\n");

    for (size_t i = 0; i < n_cells; i++) {
        const qa_cell *c = &cells[i];
        qa_agg *g = &agg[c->mi * nr + c->ri];
        if (c->missing) g->missing++;
        if (!c->done) continue;
        g->em += c->em;
        g->f1 += c->f1;
        g->acc += c->acc;
        g->ctx += (double)c->ctx_tokens;
        g->mem += (double)c->memory;
        for (int k = 0; k < N_ST; k++) g->ms[k] += c->ms[k];
        g->n++;
    }
    /* bootstrap intervals, one seed per cell so they do not depend on the method list */
    for (size_t m = 0; m < nm; m++)
        for (size_t ri = 0; ri < (runs_once(methods[m].kind) ? 1 : nr); ri++) {
            qa_agg *g = &agg[m * nr + ri];
            for (int k = 0; k < 3; k++) {
                size_t n = 0;
                for (size_t i = 0; i < n_cells; i++) {
                    const qa_cell *c = &cells[i];
                    if (c->mi == m && c->ri == ri && c->done)
                        vals[n++] = k == 0 ? c->em : k == 1 ? c->f1 : c->acc;
                }
                if (comi_bootstrap_interval(ctx, vals, n, 1000, 20260 + (uint64_t)k, &g->ci[k][0],
                                            &g->ci[k][1]) != COMI_OK) {
                    cli_error(CMD, "%s", comi_errmsg(ctx));
                    goto done;
                }
            }
        }
    json_t *root = json_object(), *res = json_object();
    json_object_set_new(root, "data", json_string(data));
    json_object_set_new(root, "task", json_string("qa"));
    json_object_set_new(root, "model", json_string(model));
    if (R.pl) {
        comi_pipeline_info pi;
        comi_pipeline_get_info(R.pl, &pi);
        json_object_set_new(root, "pipeline", json_string(pi.description));
    }
    if (R.rd) {
        json_t *ro = json_object();
        json_object_set_new(ro, "format", json_string(reader_format_name(R.rd)));
        json_object_set_new(ro, "tag", json_string(tag));
        json_object_set_new(ro, "system", json_string(READER_SYSTEM));
        json_object_set_new(ro, "user", json_string(READER_USER_HEAD "{context}" READER_USER_MID
                                                                    "{question}"));
        json_object_set_new(ro, "max_new_tokens",
                            json_integer(max_new >= 0 ? max_new
                                                      : reader_default_params().max_new_tokens));
        json_object_set_new(ro, "decoding", json_string("greedy, answer = first line"));
        json_object_set_new(ro, "encoder", json_string(enc_spec ? enc_spec : "lexical"));
        json_object_set_new(ro, "text_knobs", json_string(knobs_tag));
        json_object_set_new(ro, "budget", json_string("floor(words of input / ratio)"));
        json_object_set_new(root, "reader", ro);
    }
    json_object_set_new(root, "total_samples", json_integer((json_int_t)n_ex));
    json_object_set_new(root, "skipped_lines", json_integer((json_int_t)ds->n_skipped));
    json_object_set_new(root, "interval", json_string("95% percentile bootstrap, 1000 resamples"));
    printf("data %s, %zu examples, task qa\n%-24s", data, n_ex, "method (accuracy, n)");
    for (size_t ri = 0; ri < nr; ri++) {
        char h[32];
        snprintf(h, sizeof h, "@%gx", ratios[ri]);
        printf(" %20s", h);
    }
    printf(" %14s\n", "compress s/ex");
    static const char *const ci_names[3] = {"em_ci", "f1_ci", "accuracy_ci"};
    for (size_t m = 0; m < nm; m++) {
        json_t *mo = json_object();
        bool once = runs_once(methods[m].kind);
        double comp_ms = 0;
        size_t comp_n = 0;
        for (size_t ri = 0; ri < (once ? 1 : nr); ri++) {
            qa_agg *g = &agg[m * nr + ri];
            double n = g->n ? (double)g->n : 1;
            json_t *o = json_object(), *sec = json_object();
            json_object_set_new(o, "n", json_integer((json_int_t)g->n));
            json_object_set_new(o, "avg_em", json_real(g->em / n));
            json_object_set_new(o, "avg_f1", json_real(g->f1 / n));
            json_object_set_new(o, "avg_accuracy", json_real(g->acc / n));
            for (int k = 0; k < 3; k++) {
                json_t *ci = json_array();
                json_array_append_new(ci, json_real(g->ci[k][0]));
                json_array_append_new(ci, json_real(g->ci[k][1]));
                json_object_set_new(o, ci_names[k], ci);
            }
            json_object_set_new(o, "compression", json_real(g->mem > 0 ? g->ctx / g->mem : 0));
            if (methods[m].kind == K_EXTERNAL)
                json_object_set_new(o, "missing", json_integer((json_int_t)g->missing));
            for (int k = 0; k < N_ST; k++)
                json_object_set_new(sec, stage_names[k], json_real(g->ms[k] / n / 1000.0));
            json_object_set_new(o, "seconds_per_example", sec);
            json_object_set_new(o, "compressor_seconds_per_example",
                                json_real(g->ms[is_soft(methods[m].kind) ? ST_ENCODE : ST_COMPRESS] /
                                              n / 1000.0 +
                                          (is_soft(methods[m].kind) ? g->ms[ST_MERGE] / n / 1000.0
                                                                    : 0)));
            comp_ms += is_soft(methods[m].kind) ? g->ms[ST_ENCODE] + g->ms[ST_MERGE]
                                                : g->ms[ST_COMPRESS];
            comp_n += g->n;
            char key[32];
            snprintf(key, sizeof key, "%g", once ? 1.0 : ratios[ri]);
            json_object_set_new(mo, key, o);
        }
        printf("%-24s", methods[m].name);
        for (size_t ri = 0; ri < nr; ri++) {
            const qa_agg *g = &agg[m * nr + (once ? 0 : ri)];
            char cellt[48];
            snprintf(cellt, sizeof cellt, "%.3f (%zu)", g->n ? g->acc / (double)g->n : 0, g->n);
            printf(" %20s", cellt);
        }
        printf(" %14.4f\n", comp_n ? comp_ms / (double)comp_n / 1000.0 : 0);
        json_object_set_new(res, methods[m].name, mo);
    }
    json_object_set_new(root, "results", res);
    snprintf(path, sizeof path, "%s/metrics.json", out_dir);
    int jrc = json_dump_file(root, path, JSON_INDENT(2));
    json_decref(root);
    if (jrc != 0) {
        cli_error(CMD, "cannot write '%s'", path);
        goto done;
    }
    snprintf(path, sizeof path, "%s/qa.svg", out_dir);
    const char *bn = strrchr(data, '/');
    char title[256];
    snprintf(title, sizeof title, "Answer accuracy vs compression, %s (%zu examples)",
             bn ? bn + 1 : data, n_ex);
    if (!write_svg(path, title, agg, methods, nm, ratios, nr)) {
        cli_error(CMD, "cannot write '%s'", path);
        goto done;
    }
    printf("wrote %s/examples.jsonl, %s/metrics.json, %s\n", out_dir, out_dir, path);
    rc = 0;
done:
    if (jf) fclose(jf);
    free(vals);
    free(agg);
    free(cells);
    free(ex);
    reader_free(R.rd);
    comi_encoder_free(enc);
    comi_encode_cache_free(ecache);
    comi_pipeline_free(R.pl);
    comi_dataset_free(ds);
    comi_ctx_free(ctx);
    free_methods(methods, nm);
    return rc;
}
