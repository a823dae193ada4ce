/*
 * cmd_eval.c — `comi eval`: runs compression methods over a COMI JSONL data
 * set at several ratios and scores them. Writes per-example JSONL
 * (resumable: examples already there are not run again), a metrics JSON,
 * an SVG chart of the main metric against the ratio, and a table.
 *
 * Structure: a task says what a method must produce and how it is scored
 * (task "recall": the compressed text, scored by answer recall and token
 * F1 against the references); a method turns one example and a word budget
 * into that output. The model-based task "qa" (answer with the soft
 * pipeline, EM/F1/accuracy) lives in tools/cmd_eval_qa.c and is dispatched
 * from cmd_eval on `--task qa`.
 */
#include "cli.h"
#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int cmd_eval(int argc, char **argv);

static const char *const eval_usage =
    "usage: comi eval --data F.jsonl [--task recall] [--ratio 4,8,16,32]\n"
    "                 [--methods comi,truncate,random,bm25,no-redundancy,no-coarse]\n"
    "                 [--limit N] [--shuffle] [--seed S] [--out-dir DIR] [--encoder SPEC]\n"
    "                 [--threads T] [--no-documents] [--skip-bad] [--save-text] [--set K=V]\n"
    "                 [--max-context-tokens N] [--max-memory SIZE]\n";

static const char *const eval_about =
    "Compresses every example's context with each method at each ratio (budget =\n"
    "floor(words of `input` / ratio), the same for every method) and scores it.\n";

static const char *const eval_epilog =
    "The limits apply per example and method; an example over a limit stops the run\n"
    "with its line number.\n"
    "The model-based QA evaluation: comi eval --task qa --help.\n";

/* ---------------------------------------------------------------- methods */

typedef enum { M_COMI, M_NO_RED, M_NO_COARSE, M_TRUNCATE, M_RANDOM, M_BM25, M_FULL } method_id;

typedef struct {
    const char *name;
    method_id id;
    const char *label; /* legend text */
} method_def;

static const method_def methods_all[] = {
    {"comi", M_COMI, "COMI text (MIG)"},
    {"no-redundancy", M_NO_RED, "COMI, no redundancy"},
    {"no-coarse", M_NO_COARSE, "COMI, no coarse stage"},
    {"bm25", M_BM25, "BM25 sentences"},
    {"truncate", M_TRUNCATE, "truncate"},
    {"random", M_RANDOM, "random words"},
    {"full", M_FULL, "full context (no compression)"},
};
#define N_METHODS_ALL (sizeof methods_all / sizeof methods_all[0])

/* ------------------------------------------------------------------ tasks */

#define MAX_METRICS 4

typedef struct eval_cfg eval_cfg;

/* A task: produces and scores one (example, method, ratio) cell. */
typedef struct {
    const char *name;
    int n_metrics;
    const char *metrics[MAX_METRICS]; /* metrics[0] is the one charted */
    /* Runs the method, fills scores[n_metrics], *out_tokens, *ms and (when
     * wanted) *text (malloc'ed). Returns false with msg filled on error. */
    bool (*run)(const eval_cfg *cfg, comi_ctx *ctx, const comi_example *x, const method_def *m,
                double ratio, int64_t budget, double *scores, int64_t *out_tokens, double *ms,
                char **text, char *msg, size_t msg_len);
} task_def;

struct eval_cfg {
    comi_text_params base; /* knobs for the comi methods (--set) */
    const comi_encoder *encoder;
    bool use_documents;
    uint64_t seed;
};

/* Compressed text of example x by method m within budget words. */
static comi_status compress_one(const eval_cfg *cfg, comi_ctx *ctx, const comi_example *x,
                                const method_def *m, int64_t budget, comi_text_result *res) {
    memset(res, 0, sizeof *res);
    if (m->id == M_FULL) { /* the upper bound: the whole input, any ratio */
        res->text = strdup(x->input);
        if (!res->text) return COMI_ERR_NOMEM;
        res->original_tokens = res->compressed_tokens = comi_text_count_tokens(x->input);
        res->ratio = 1;
        return COMI_OK;
    }
    if (budget <= 0) { /* nothing fits: every method returns "" */
        res->text = calloc(1, 1);
        return res->text ? COMI_OK : COMI_ERR_NOMEM;
    }
    if (m->id == M_TRUNCATE || m->id == M_RANDOM || m->id == M_BM25) {
        comi_baseline b = m->id == M_TRUNCATE ? COMI_BASELINE_TRUNCATE
                          : m->id == M_RANDOM ? COMI_BASELINE_RANDOM
                                              : COMI_BASELINE_BM25;
        /* The random seed depends on the example line too, so examples differ. */
        uint64_t seed = cfg->seed * 1000003u + (uint64_t)x->line;
        return comi_compress_baseline(ctx, b, x->input, x->prompt, budget, seed, res);
    }
    comi_text_params p = cfg->base;
    p.encoder = cfg->encoder;
    p.target_tokens = budget;
    if (m->id == M_NO_RED) p.redundancy = false;
    if (m->id == M_NO_COARSE) p.coarse = false;
    if (cfg->use_documents && x->n_documents > 0)
        return comi_compress_documents(ctx, (const char *const *)x->documents, x->n_documents,
                                       x->prompt, &p, res);
    return comi_compress_text(ctx, x->input, x->prompt, &p, res);
}

static bool run_recall(const eval_cfg *cfg, comi_ctx *ctx, const comi_example *x,
                       const method_def *m, double ratio, int64_t budget, double *scores,
                       int64_t *out_tokens, double *ms, char **text, char *msg, size_t msg_len) {
    (void)ratio;
    comi_text_result res;
    comi_status st = compress_one(cfg, ctx, x, m, budget, &res);
    if (st != COMI_OK) {
        snprintf(msg, msg_len, "%s", comi_errmsg(ctx));
        return false;
    }
    double rec = 0;
    comi_answer_scores sc;
    if (comi_answer_recall(ctx, res.text, (const char *const *)x->answers, x->n_answers, &rec) !=
            COMI_OK ||
        comi_score_answer(ctx, res.text, (const char *const *)x->answers, x->n_answers, &sc) !=
            COMI_OK) {
        snprintf(msg, msg_len, "%s", comi_errmsg(ctx));
        comi_text_result_free(&res);
        return false;
    }
    scores[0] = rec;
    scores[1] = sc.f1;
    *out_tokens = comi_text_count_tokens(res.text);
    *ms = res.ms;
    if (text) *text = res.text;
    else comi_text_result_free(&res);
    return true;
}

static const task_def tasks[] = {
    {"recall", 2, {"recall", "f1"}, run_recall},
};

/* ------------------------------------------------------------------ cells */

typedef struct {
    size_t ex, mi, ri;        /* example, method, ratio index */
    bool done;
    double scores[MAX_METRICS];
    int64_t budget, in_tokens, out_tokens;
    double ms;
} cell;

typedef struct {
    const task_def *task;
    const eval_cfg *cfg;
    comi_example **ex;
    size_t n_ex;
    const method_def **methods;
    size_t n_methods;
    double *ratios;
    size_t n_ratios;
    cell *cells;
    size_t n_cells, next, n_done_now, n_todo;
    pthread_mutex_t mu;
    FILE *jsonl;
    bool save_text, tty, failed;
    cli_limits limits; /* applied to every worker's context */
    char err[1200];
    report_progress prog;
} runner;

static void cell_json(const runner *r, const cell *c, const char *text, FILE *f) {
    const comi_example *x = r->ex[c->ex];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(x->id));
    json_object_set_new(o, "line", json_integer(x->line));
    json_object_set_new(o, "method", json_string(r->methods[c->mi]->name));
    json_object_set_new(o, "ratio", json_real(r->ratios[c->ri]));
    json_object_set_new(o, "budget", json_integer(c->budget));
    json_object_set_new(o, "original_tokens", json_integer(c->in_tokens));
    json_object_set_new(o, "compressed_tokens", json_integer(c->out_tokens));
    for (int k = 0; k < r->task->n_metrics; k++)
        json_object_set_new(o, r->task->metrics[k], json_real(c->scores[k]));
    json_object_set_new(o, "ms", json_real(c->ms));
    if (text) json_object_set_new(o, "compressed", json_string(text));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s) {
        fputs(s, f);
        fputc('\n', f);
        free(s);
    }
}

static void progress(runner *r) {
    if (!r->tty) return;
    report_progress_update(&r->prog, r->n_done_now, r->n_todo);
}

static void *worker(void *arg) {
    runner *r = arg;
    comi_ctx *ctx = cli_ctx_new(1, &r->limits);
    if (!ctx) {
        pthread_mutex_lock(&r->mu);
        r->failed = true;
        snprintf(r->err, sizeof r->err, "out of memory");
        pthread_mutex_unlock(&r->mu);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->next < r->n_cells && r->cells[r->next].done) r->next++;
        if (r->failed || r->next >= r->n_cells) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        cell *c = &r->cells[r->next++];
        pthread_mutex_unlock(&r->mu);
        const comi_example *x = r->ex[c->ex];
        c->in_tokens = comi_text_count_tokens(x->input);
        c->budget = (int64_t)floor((double)c->in_tokens / r->ratios[c->ri]);
        char msg[600], *text = NULL;
        bool ok = r->task->run(r->cfg, ctx, x, r->methods[c->mi], r->ratios[c->ri], c->budget,
                               c->scores, &c->out_tokens, &c->ms, r->save_text ? &text : NULL,
                               msg, sizeof msg);
        pthread_mutex_lock(&r->mu);
        if (!ok) {
            if (!r->failed)
                snprintf(r->err, sizeof r->err, "line %lld (id %s), method %s: %s",
                         (long long)x->line, x->id, r->methods[c->mi]->name, msg);
            r->failed = true;
        } else {
            c->done = true;
            cell_json(r, c, text, r->jsonl);
            fflush(r->jsonl);
            r->n_done_now++;
            progress(r);
        }
        pthread_mutex_unlock(&r->mu);
        free(text);
    }
    comi_ctx_free(ctx);
    return NULL;
}

/* --------------------------------------------------------------- resuming */

/* ---------------------------------------------------------------- settings */

/* A knob as stored: 6 significant digits (0.3f is 0.3, not 0.30000001). */
static double knob6(float x) {
    char b[32];
    snprintf(b, sizeof b, "%.6g", (double)x);
    return strtod(b, NULL);
}

static uint64_t fnv1a(uint64_t h, const char *s) {
    if (!s) s = "";
    for (const unsigned char *p = (const unsigned char *)s; ; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
        if (!*p) break; /* the NUL separates fields */
    }
    return h;
}

/* What the cells' values depend on: library version, task, encoder, every
 * comi knob, documents on/off, the seed of `random` and a hash of the data
 * (ids, inputs, prompts, documents and answers of every example). Stored in
 * DIR/settings.json and metrics.json; a resume with other settings refuses. */
static json_t *eval_settings(const char *task, const char *encoder_spec,
                             const comi_text_params *p, bool use_docs, uint64_t seed,
                             const comi_dataset *ds) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < ds->n_examples; i++) {
        const comi_example *x = &ds->examples[i];
        h = fnv1a(h, x->id);
        h = fnv1a(h, x->input);
        h = fnv1a(h, x->prompt);
        for (size_t d = 0; d < x->n_documents; d++) h = fnv1a(h, x->documents[d]);
        for (size_t a = 0; a < x->n_answers; a++) h = fnv1a(h, x->answers[a]);
    }
    char hash[40];
    snprintf(hash, sizeof hash, "fnv1a64:%016llx", (unsigned long long)h);
    json_t *k = json_pack("{s:b,s:b,s:b,s:f,s:f,s:f,s:f,s:i,s:i,s:i,s:f,s:f,s:f,s:i}",
                          "keep_titles", p->keep_titles, "coarse", p->coarse, "redundancy",
                          p->redundancy, "alpha", knob6(p->alpha), "beta", knob6(p->beta),
                          "temperature", knob6(p->temperature), "context_weight",
                          knob6(p->context_weight), "min_unit_words", (json_int_t)p->min_unit_words,
                          "min_group_words", (json_int_t)p->min_group_words, "window_words",
                          (json_int_t)p->window_words, "bridge_weight", knob6(p->bridge_weight),
                          "centrality_weight", knob6(p->centrality_weight), "lead_weight",
                          knob6(p->lead_weight), "summary", (json_int_t)p->summary);
    /* unit only when not the default, so settings written before it existed
     * still match a default run's */
    if (k && p->unit != COMI_UNIT_WORD)
        json_object_set_new(k, "unit", json_string(comi_text_unit_name(p->unit)));
    if (k && p->answer_first) json_object_set_new(k, "answer_first", json_true());
    return json_pack("{s:s,s:s,s:s,s:o,s:b,s:I,s:s,s:I}", "comi_version", comi_version(), "task",
                     task, "encoder", encoder_spec ? encoder_spec : "lexical", "knobs", k,
                     "documents", use_docs, "seed", (json_int_t)seed, "data_hash", hash,
                     "n_examples", (json_int_t)ds->n_examples);
}

/* Names the first setting in which a and b differ (into buf). */
static void settings_diff(const json_t *a, const json_t *b, const char *prefix, char *buf,
                          size_t n) {
    const char *key;
    json_t *va;
    json_object_foreach((json_t *)a, key, va) {
        json_t *vb = json_object_get(b, key);
        if (vb && json_equal(va, vb)) continue;
        if (json_is_object(va) && json_is_object(vb)) {
            settings_diff(va, vb, key, buf, n);
            return;
        }
        char *sa = json_dumps(va, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(6));
        char *sb = vb ? json_dumps(vb, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        snprintf(buf, n, "%s%s%s: %s now, %s there", prefix, *prefix ? "." : "", key,
                 sa ? sa : "?", sb ? sb : "absent");
        free(sa);
        free(sb);
        return;
    }
    snprintf(buf, n, "a setting stored there is not in this version");
}

/* Checks DIR/settings.json against this run's settings (writes it when the
 * directory holds no results yet). False with a message on a mismatch. */
static bool check_settings(const char *cmd, const char *out_dir, const json_t *settings) {
    char sp[4096], ep[4096];
    snprintf(sp, sizeof sp, "%s/settings.json", out_dir);
    snprintf(ep, sizeof ep, "%s/examples.jsonl", out_dir);
    struct stat st;
    bool have_results = stat(ep, &st) == 0 && st.st_size > 0;
    json_error_t jerr;
    json_t *old = json_load_file(sp, 0, &jerr);
    if (old) {
        bool same = json_equal(old, settings);
        if (!same) {
            char why[512];
            settings_diff(settings, old, "", why, sizeof why);
            if (!have_results) {
                json_decref(old);
                goto write; /* nothing computed with the old settings */
            }
            cli_error(cmd, "--out-dir: %s holds results of other settings (%s); use another "
                      "--out-dir or remove it", out_dir, why);
            json_decref(old);
            return false;
        }
        json_decref(old);
        return true;
    }
    if (have_results) {
        cli_error(cmd, "--out-dir: %s has results but no settings.json (an older run: their "
                  "encoder and knobs are unknown); use another --out-dir or remove it", out_dir);
        return false;
    }
write:
    if (json_dump_file(settings, sp, JSON_INDENT(2)) != 0) {
        cli_error(cmd, "--out-dir: cannot write '%s'", sp);
        return false;
    }
    return true;
}

/* Marks cells already in an existing examples.jsonl as done (with their
 * scores). Lines that do not match a cell of this run are ignored. */
static void resume(runner *r, const char *path, size_t *n_resumed) {
    *n_resumed = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o) continue;
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *mname = json_string_value(json_object_get(o, "method"));
        json_t *rv = json_object_get(o, "ratio");
        if (id && mname && json_is_number(rv)) {
            double ratio = json_number_value(rv);
            for (size_t c = 0; c < r->n_cells; c++) {
                cell *x = &r->cells[c];
                if (x->done || strcmp(r->ex[x->ex]->id, id) != 0 ||
                    strcmp(r->methods[x->mi]->name, mname) != 0 ||
                    fabs(r->ratios[x->ri] - ratio) > 1e-9)
                    continue;
                for (int k = 0; k < r->task->n_metrics; k++)
                    x->scores[k] = json_number_value(json_object_get(o, r->task->metrics[k]));
                x->budget = json_integer_value(json_object_get(o, "budget"));
                x->in_tokens = json_integer_value(json_object_get(o, "original_tokens"));
                x->out_tokens = json_integer_value(json_object_get(o, "compressed_tokens"));
                x->ms = json_number_value(json_object_get(o, "ms"));
                x->done = true;
                (*n_resumed)++;
                break;
            }
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
}

/* ------------------------------------------------------------------ report */

typedef struct {
    double metric[MAX_METRICS];
    double compression; /* sum of input words / sum of output words */
    double ms;          /* mean per example */
    size_t n;
} agg;

static void aggregate(const runner *r, agg *a) {
    size_t na = r->n_methods * r->n_ratios;
    double *in = calloc(na, sizeof *in), *out = calloc(na, sizeof *out);
    memset(a, 0, na * sizeof *a);
    for (size_t c = 0; c < r->n_cells; c++) {
        const cell *x = &r->cells[c];
        if (!x->done) continue;
        size_t k = x->mi * r->n_ratios + x->ri;
        for (int m = 0; m < r->task->n_metrics; m++) a[k].metric[m] += x->scores[m];
        a[k].ms += x->ms;
        a[k].n++;
        if (in && out) {
            in[k] += (double)x->in_tokens;
            out[k] += (double)x->out_tokens;
        }
    }
    for (size_t k = 0; k < na; k++) {
        if (a[k].n) {
            for (int m = 0; m < r->task->n_metrics; m++) a[k].metric[m] /= (double)a[k].n;
            a[k].ms /= (double)a[k].n;
        }
        a[k].compression = in && out && out[k] > 0 ? in[k] / out[k] : 0;
    }
    free(in);
    free(out);
}

static bool write_metrics(const runner *r, const agg *a, const char *data, const char *path,
                          size_t n_skipped, json_t *settings) {
    json_t *o = json_object();
    json_object_set(o, "settings", settings);
    json_object_set_new(o, "data", json_string(data));
    json_object_set_new(o, "task", json_string(r->task->name));
    json_object_set_new(o, "total_samples", json_integer((json_int_t)r->n_ex));
    json_object_set_new(o, "skipped_lines", json_integer((json_int_t)n_skipped));
    json_object_set_new(o, "budget", json_string("floor(words of input / ratio)"));
    json_t *res = json_object();
    for (size_t mi = 0; mi < r->n_methods; mi++) {
        json_t *mo = json_object();
        for (size_t ri = 0; ri < r->n_ratios; ri++) {
            const agg *g = &a[mi * r->n_ratios + ri];
            json_t *c = json_object();
            for (int m = 0; m < r->task->n_metrics; m++)
                json_object_set_new(c, r->task->metrics[m], json_real(g->metric[m]));
            json_object_set_new(c, "compression", json_real(g->compression));
            json_object_set_new(c, "ms", json_real(g->ms));
            json_object_set_new(c, "n", json_integer((json_int_t)g->n));
            char key[32];
            snprintf(key, sizeof key, "%g", r->ratios[ri]);
            json_object_set_new(mo, key, c);
        }
        json_object_set_new(res, r->methods[mi]->name, mo);
    }
    json_object_set_new(o, "results", res);
    int rc = json_dump_file(o, path, JSON_INDENT(2));
    json_decref(o);
    return rc == 0;
}

/* A line chart of metric 0 against the ratio (log2 x axis), one line per
 * method, hand-written SVG. */
static bool write_svg(const runner *r, const agg *a, const char *title, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    static const char *const colors[] = {"#d62728", "#ff7f0e", "#9467bd", "#1f77b4",
                                         "#7f7f7f", "#2ca02c", "#8c564b", "#e377c2"};
    const double W = 720, H = 440, L = 70, R = 200, T = 50, B = 60;
    double pw = W - L - R, ph = H - T - B;
    double lx0 = log2(r->ratios[0]), lx1 = lx0;
    for (size_t i = 0; i < r->n_ratios; i++) {
        double v = log2(r->ratios[i]);
        if (v < lx0) lx0 = v;
        if (v > lx1) lx1 = v;
    }
    if (lx1 - lx0 < 1e-9) lx0 -= 1, lx1 += 1;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"28\" font-size=\"17\" font-weight=\"bold\">", L);
    report_xml_escape(f, title);
    fprintf(f, "</text>\n");
    for (int t = 0; t <= 10; t += 2) { /* y grid 0..1 */
        double y = T + ph - ph * t / 10.0;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\" "
                "fill=\"#444\">%.1f</text>\n",
                L, y, L + pw, y, L - 8, y + 4, t / 10.0);
    }
    for (size_t i = 0; i < r->n_ratios; i++) {
        double x = L + pw * (log2(r->ratios[i]) - lx0) / (lx1 - lx0);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
                "fill=\"#444\">%gx</text>\n",
                x, T, x, T + ph, x, T + ph + 18, r->ratios[i]);
    }
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#888\"/>\n",
            L, T, pw, ph);
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">compression "
            "ratio (log scale)</text>\n",
            L + pw / 2, H - 18);
    fprintf(f,
            "<text transform=\"translate(20 %.1f) rotate(-90)\" font-size=\"13\" "
            "text-anchor=\"middle\">answer %s</text>\n",
            T + ph / 2, r->task->metrics[0]);
    for (size_t mi = 0; mi < r->n_methods; mi++) {
        const char *col = colors[mi % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\" points=\"", col);
        for (size_t ri = 0; ri < r->n_ratios; ri++) {
            double x = L + pw * (log2(r->ratios[ri]) - lx0) / (lx1 - lx0);
            double y = T + ph - ph * a[mi * r->n_ratios + ri].metric[0];
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        fprintf(f, "\"/>\n");
        for (size_t ri = 0; ri < r->n_ratios; ri++) {
            double x = L + pw * (log2(r->ratios[ri]) - lx0) / (lx1 - lx0);
            double y = T + ph - ph * a[mi * r->n_ratios + ri].metric[0];
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x, y, col);
        }
        double ly = T + 12 + 24.0 * (double)mi;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"2.5\"/>\n<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">",
                L + pw + 16, ly, L + pw + 40, ly, col, L + pw + 28, ly, col, L + pw + 48, ly + 4);
        report_xml_escape(f, r->methods[mi]->label);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0;
}

static void print_table(const runner *r, const agg *a) {
    printf("%-16s", "method");
    for (size_t ri = 0; ri < r->n_ratios; ri++) {
        char h[32];
        snprintf(h, sizeof h, "%s@%gx", r->task->metrics[0], r->ratios[ri]);
        printf(" %12s", h);
    }
    printf(" %10s %9s\n", "achieved", "ms/ex");
    for (size_t mi = 0; mi < r->n_methods; mi++) {
        printf("%-16s", r->methods[mi]->name);
        double ms = 0, comp = 0;
        for (size_t ri = 0; ri < r->n_ratios; ri++) {
            const agg *g = &a[mi * r->n_ratios + ri];
            printf(" %12.3f", g->metric[0]);
            ms += g->ms;
            comp = g->compression;
        }
        printf(" %9.1fx %9.2f\n", comp, ms / (double)r->n_ratios);
    }
    if (r->task->n_metrics > 1)
        for (int m = 1; m < r->task->n_metrics; m++) {
            printf("\n%-16s", "method");
            for (size_t ri = 0; ri < r->n_ratios; ri++) {
                char h[32];
                snprintf(h, sizeof h, "%s@%gx", r->task->metrics[m], r->ratios[ri]);
                printf(" %12s", h);
            }
            printf("\n");
            for (size_t mi = 0; mi < r->n_methods; mi++) {
                printf("%-16s", r->methods[mi]->name);
                for (size_t ri = 0; ri < r->n_ratios; ri++)
                    printf(" %12.3f", a[mi * r->n_ratios + ri].metric[m]);
                printf("\n");
            }
        }
}

/* ------------------------------------------------------------------- main */

static bool parse_ratios(const char *s, double *out, size_t *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || v < 1 || *n >= 16) return false;
        out[(*n)++] = v;
        if (*end == ',') end++;
        else if (*end) return false;
        p = end;
    }
    return *n > 0;
}

static bool parse_methods(const char *s, const method_def **out, size_t *n) {
    *n = 0;
    char buf[512];
    if (strlen(s) >= sizeof buf) return false;
    strcpy(buf, s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        size_t k = 0;
        while (k < N_METHODS_ALL && strcmp(methods_all[k].name, tok)) k++;
        if (k == N_METHODS_ALL) {
            cli_usage("eval", "--methods: unknown method '%s' (known: comi, no-redundancy, "
                      "no-coarse, bm25, truncate, random, full)", tok);
            return false;
        }
        for (size_t j = 0; j < *n; j++)
            if (out[j] == &methods_all[k]) goto next;
        out[(*n)++] = &methods_all[k];
    next:;
    }
    if (*n == 0) cli_usage("eval", "--methods: empty list");
    return *n > 0;
}

/* --set KEY=VALUE: one comi_text_params knob (a cli_value_fn). */
int cmd_eval_qa(int argc, char **argv); /* --task qa: tools/cmd_eval_qa.c */

int cmd_eval(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if ((!strcmp(argv[i], "--task") && i + 1 < argc && !strcmp(argv[i + 1], "qa")) ||
            !strcmp(argv[i], "--task=qa"))
            return cmd_eval_qa(argc, argv);
    const char *cmd = "eval";
    const char *data = NULL, *task_name = "recall", *out_dir = "eval-out";
    const char *ratios_s = "4,8,16,32", *methods_s = "comi,truncate,random,bm25,no-redundancy,no-coarse";
    const char *encoder_spec = NULL;
    int64_t limit = -1, seed = 0, threads = 1;
    bool shuffle = false, skip_bad = false, save_text = false, use_docs = true;
    comi_text_params base = comi_text_default_params();
    cli_limits lim = {0};
    cli_opt opts[] = {
        {CLI_O("--data", CLI_FILE, &data, "F.jsonl", "the COMI JSONL data set (- : stdin)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--task", CLI_STR, &task_name, "TASK",
               "recall (default): answer recall of the compressed text (a\n"
               "normalised reference occurs in it) and token F1 against the\n"
               "references; qa: comi eval --task qa --help")},
        {CLI_O("--ratio", CLI_STR, &ratios_s, "LIST", "ratios, comma-separated (default 4,8,16,32)"),
         .alias = "--ratios"},
        {CLI_O("--methods", CLI_STR, &methods_s, "LIST",
               "comi: coarse-to-fine MIG (documents when the example has them)\n"
               "no-redundancy, no-coarse: comi without that part\n"
               "truncate: first words; random: random words (seeded);\n"
               "bm25: BM25 sentence selection; full: the whole input\n"
               "(an upper bound; not in the default list)")},
        {CLI_O("--limit", CLI_I64, &limit, "N", "only the first N examples (after --shuffle)"),
         .ilo = 0, .ihi = INT64_MAX},
        {CLI_O("--shuffle", CLI_FLAG, &shuffle, NULL, "shuffle the examples first")},
        {CLI_O("--seed", CLI_I64, &seed, "S", "seed of --shuffle and of `random` (default 0)"),
         .ilo = 0, .ihi = INT64_MAX},
        {CLI_O("--out-dir", CLI_PATH, &out_dir, "DIR",
               "writes DIR/examples.jsonl (per example; resumable),\n"
               "DIR/metrics.json and DIR/recall.svg (default eval-out)")},
        {CLI_O("--encoder", CLI_STR, &encoder_spec, "SPEC",
               "encoder for the comi methods (lexical | vectors:FILE | MODEL)")},
        {CLI_O("--threads", CLI_I64, &threads, "T", "examples in parallel (default 1)"), .ilo = 1,
         .ihi = 256},
        {CLI_O("--no-documents", CLI_CLEAR, &use_docs, NULL,
               "compress `input` even when `documents` are given")},
        {CLI_O("--skip-bad", CLI_FLAG, &skip_bad, NULL,
               "skip malformed lines (counted) instead of stopping")},
        {CLI_O("--save-text", CLI_FLAG, &save_text, NULL,
               "also store each compressed text in examples.jsonl")},
        {CLI_O("--set", CLI_FN, &base, "KEY=VALUE",
               "a comi knob: alpha, beta, temperature, context_weight,\n"
               "min_unit_words, min_group_words, window_words, keep_titles,\n"
               "bridge_weight, lead_weight, centrality_weight,\n"
               "summary=auto|on|off, unit=sentence|clause|word (repeatable)"),
         .fn = cli_set_text_knob},
        {CLI_O("--unit", CLI_FN, &base, "U",
               "output units of the comi methods: word (default) |\n"
               "clause | sentence (as compress --unit)"),
         .fn = cli_set_text_unit},
        CLI_LIMIT_OPTS(lim),
    };
    cli_cmd spec = {.name = cmd, .usage = eval_usage, .about = eval_about, .epilog = eval_epilog,
                    .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    const task_def *task = NULL;
    for (size_t k = 0; k < sizeof tasks / sizeof tasks[0]; k++)
        if (!strcmp(tasks[k].name, task_name)) task = &tasks[k];
    if (!task)
        return cli_usage(cmd, "--task: unknown task '%s' (recall or qa)", task_name);
    double ratios[16];
    size_t n_ratios;
    if (!parse_ratios(ratios_s, ratios, &n_ratios))
        return cli_usage(cmd, "--ratio: '%s' is not a comma-separated list of numbers >= 1 (at "
                         "most 16)", ratios_s);
    const method_def *methods[N_METHODS_ALL];
    size_t n_methods;
    if (!parse_methods(methods_s, methods, &n_methods)) return CLI_EXIT_USAGE;

    comi_ctx *ctx = cli_ctx_new(0, &lim);
    if (!ctx) return cli_error(cmd, "out of memory");
    int rc = 1;
    comi_dataset *ds = NULL;
    comi_encoder *enc = NULL;
    comi_example **ex = NULL;
    cell *cells = NULL;
    agg *a = NULL;
    FILE *jf = NULL;
    json_t *settings = NULL;
    char path[4096];
    if (encoder_spec && comi_encoder_load(ctx, encoder_spec, &enc) != COMI_OK) {
        cli_error(cmd, "--encoder: %s", comi_errmsg(ctx));
        goto done;
    }
    if (!report_load_dataset(ctx, cmd, data, skip_bad, &ds)) goto done;
    if (ds->n_examples == 0) {
        cli_error(cmd, "--data: %s has no examples", data);
        goto done;
    }
    size_t n_ex = 0;
    if (!(ex = report_examples(ds, shuffle, (uint64_t)seed, limit, &n_ex))) {
        cli_error(cmd, "out of memory");
        goto done;
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        cli_error(cmd, "--out-dir: cannot create '%s': %s", out_dir, strerror(errno));
        goto done;
    }
    settings = eval_settings(task->name, encoder_spec, &base, use_docs, (uint64_t)seed, ds);
    if (!settings) {
        cli_error(cmd, "out of memory");
        goto done;
    }
    if (!check_settings(cmd, out_dir, settings)) goto done;
    size_t n_cells = n_ex * n_methods * n_ratios;
    cells = calloc(n_cells ? n_cells : 1, sizeof *cells);
    a = calloc(n_methods * n_ratios, sizeof *a);
    if (!cells || !a) {
        cli_error(cmd, "out of memory");
        goto done;
    }
    size_t c = 0;
    for (size_t e = 0; e < n_ex; e++)
        for (size_t mi = 0; mi < n_methods; mi++)
            for (size_t ri = 0; ri < n_ratios; ri++) cells[c++] = (cell){.ex = e, .mi = mi, .ri = ri};
    eval_cfg cfg = {.base = base, .encoder = enc, .use_documents = use_docs, .seed = (uint64_t)seed};
    runner r = {.task = task,
                .cfg = &cfg,
                .ex = ex,
                .n_ex = n_ex,
                .methods = methods,
                .n_methods = n_methods,
                .ratios = ratios,
                .n_ratios = n_ratios,
                .cells = cells,
                .n_cells = n_cells,
                .save_text = save_text,
                .tty = cli_stderr_is_tty(),
                .limits = lim,
                .prog = {.label = "eval", .unit = "cells", .show_rate = true, .min_interval = 0.1}};
    snprintf(path, sizeof path, "%s/examples.jsonl", out_dir);
    size_t n_resumed;
    resume(&r, path, &n_resumed);
    if (n_resumed) fprintf(stderr, "comi eval: resuming, %zu cells already in %s\n", n_resumed, path);
    r.n_todo = n_cells - n_resumed;
    jf = fopen(path, "ab");
    if (!jf) {
        cli_error(cmd, "--out-dir: cannot write '%s': %s", path, strerror(errno));
        goto done;
    }
    r.jsonl = jf;
    pthread_mutex_init(&r.mu, NULL);
    report_progress_start(&r.prog);
    pthread_t tids[256];
    int started = 0;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tids[started], NULL, worker, &r) == 0) started++;
    worker(&r);
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    pthread_mutex_destroy(&r.mu);
    if (r.tty) fprintf(stderr, "\n");
    double wall = report_now_s() - r.prog.t0;
    if (r.failed) {
        cli_error(cmd, "%s", r.err);
        goto done;
    }
    aggregate(&r, a);
    snprintf(path, sizeof path, "%s/metrics.json", out_dir);
    if (!write_metrics(&r, a, data, path, ds->n_skipped, settings)) {
        cli_error(cmd, "cannot write '%s'", path);
        goto done;
    }
    snprintf(path, sizeof path, "%s/%s.svg", out_dir, task->metrics[0]);
    const char *fname = strrchr(data, '/');
    char title[256];
    snprintf(title, sizeof title, "Answer %s vs compression — %s (%zu examples)",
             task->metrics[0], fname ? fname + 1 : data, n_ex);
    if (!write_svg(&r, a, title, path)) {
        cli_error(cmd, "cannot write '%s'", path);
        goto done;
    }
    printf("data %s, %zu examples, task %s, budget = floor(input words / ratio)\n", data, n_ex,
           task->name);
    print_table(&r, a);
    printf("\n%zu cells in %.2f s; wrote %s/examples.jsonl, %s/metrics.json, %s\n",
           r.n_todo, wall, out_dir, out_dir, path);
    rc = 0;
done:
    json_decref(settings);
    if (jf) fclose(jf);
    free(a);
    free(cells);
    free(ex);
    comi_dataset_free(ds);
    comi_encoder_free(enc);
    comi_ctx_free(ctx);
    return rc;
}
