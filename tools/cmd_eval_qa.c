/*
 * cmd_eval_qa.c — `comi eval --task qa`: the soft pipeline and its
 * ablations/baselines answer every example of a COMI JSONL data set at each
 * compression ratio; scored by EM / F1 / accuracy (DESIGN.md "Metrics",
 * comi_score_answer). Methods, as the paper compares them:
 *   comi           coarse-to-fine MIG merge, merge size = ratio
 *   no-redundancy  both redundancy terms off
 *   coarse-only    fine stage off (plain mean inside reallocated groups)
 *   fine-only      coarse stage off (uniform groups, MIG-weighted)
 *   mean-pool      both stages off (uniform groups, plain mean)
 *   truncate       the decoder reads the first floor(n / ratio) context tokens
 *   full           the decoder reads the whole context (one run, every ratio)
 * Writes DIR/examples.jsonl (one line per example x method x ratio; lines
 * already there are not run again, so an interrupted run resumes),
 * DIR/metrics.json and DIR/qa.svg. Uses only comi.h.
 */
#include "cli.h"
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
    "usage: comi eval --task qa --data F.jsonl --model MODEL [--checkpoint DIR]\n"
    "                 [--ratio 4,8,16,32]\n"
    "                 [--methods comi,full,truncate,mean-pool,no-redundancy,coarse-only,fine-only]\n"
    "                 [--limit N] [--shuffle --seed S] [--out-dir DIR] [--encoder-layers K]\n"
    "                 [--max-new-tokens N] [--segment-size N] [--threads T] [--skip-bad]\n"
    "                 [--max-context-tokens N] [--max-memory SIZE]\n";

static const char *const qa_about =
    "Answers every example's `prompt` from its `input` with the soft pipeline (comi answer)\n"
    "and its ablations at each ratio (merge size = ratio), and scores the answers against\n"
    "`answer` by exact match, token F1 and accuracy (a reference inside the answer).\n";

static const char *const qa_epilog =
    "The limits apply per example and method; an example over a limit stops the run\n"
    "with its line number.\n";

enum { M_COMI, M_NO_RED, M_COARSE_ONLY, M_FINE_ONLY, M_MEAN_POOL, M_TRUNCATE, M_FULL, M_N };
static const char *const method_names[M_N] = {"comi",      "no-redundancy", "coarse-only",
                                              "fine-only", "mean-pool",     "truncate",
                                              "full"};

typedef struct qa_cell {
    size_t ex;
    int method;
    size_t ri;      /* ratio index (full: 0) */
    bool done;
    double em, f1, acc;
    int64_t ctx_tokens, memory;
    double ms[7]; /* tokenize, encode, merge, fuse, prefill, generate, total */
} qa_cell;

static const char *const stage_names[7] = {"tokenize", "encode", "merge", "fuse",
                                           "prefill",  "generate", "total"};

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

static bool parse_methods(const char *s, bool *on) {
    char buf[512];
    if (strlen(s) >= sizeof buf) return false;
    strcpy(buf, s);
    int n = 0;
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        int k = 0;
        while (k < M_N && strcmp(method_names[k], t)) k++;
        if (k == M_N) {
            cli_usage(QA, "--methods: unknown method '%s' for --task qa (comi, full, truncate, "
                           "mean-pool, no-redundancy, coarse-only, fine-only)",
                      t);
            return false;
        }
        on[k] = true;
        n++;
    }
    if (!n) cli_usage(QA, "--methods: empty list");
    return n > 0;
}

static double ratio_of(const qa_cell *c, const double *ratios) {
    return c->method == M_FULL ? 1.0 : ratios[c->ri];
}

static void write_line(FILE *f, const comi_example *x, const qa_cell *c, const double *ratios,
                       const char *pred) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(x->id));
    json_object_set_new(o, "line", json_integer(x->line));
    json_object_set_new(o, "method", json_string(method_names[c->method]));
    json_object_set_new(o, "ratio", json_real(ratio_of(c, ratios)));
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
    json_t *ms = json_object();
    for (int i = 0; i < 7; i++) json_object_set_new(ms, stage_names[i], json_real(c->ms[i]));
    json_object_set_new(o, "ms", ms);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s) {
        fputs(s, f);
        fputc('\n', f);
        free(s);
    }
    fflush(f);
}

/* Marks cells found in an earlier examples.jsonl as done. */
static size_t resume(const char *path, comi_example **ex, qa_cell *cells, size_t n_cells,
                     const double *ratios) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = 0, cap = 0;
    char *line = NULL;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o) continue; /* a line cut by an interruption */
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *m = json_string_value(json_object_get(o, "method"));
        json_t *rv = json_object_get(o, "ratio");
        for (size_t i = 0; id && m && json_is_number(rv) && i < n_cells; i++) {
            qa_cell *c = &cells[i];
            if (c->done || strcmp(method_names[c->method], m) || strcmp(ex[c->ex]->id, id) ||
                fabs(ratio_of(c, ratios) - json_number_value(rv)) > 1e-9)
                continue;
            c->em = json_number_value(json_object_get(o, "em"));
            c->f1 = json_number_value(json_object_get(o, "f1"));
            c->acc = json_number_value(json_object_get(o, "accuracy"));
            c->ctx_tokens = json_integer_value(json_object_get(o, "context_tokens"));
            c->memory = json_integer_value(json_object_get(o, "memory"));
            json_t *ms = json_object_get(o, "ms");
            for (int k = 0; k < 7; k++)
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

typedef struct qa_agg {
    double em, f1, acc, ctx, mem, ms[7];
    size_t n;
} qa_agg;

/* F1 against the ratio (log2 axis), one line per method. */
static bool write_svg(const char *path, const char *title, const qa_agg *a, const bool *on,
                      const double *ratios, size_t nr) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    static const char *const col[M_N] = {"#d62728", "#ff7f0e", "#9467bd", "#8c564b",
                                         "#1f77b4", "#7f7f7f", "#2ca02c"};
    const double W = 720, H = 440, L = 70, R = 190, T = 50, B = 60, pw = W - L - R, ph = H - T - B;
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
               "text-anchor=\"middle\">compression ratio (merge size, log scale)</text>\n"
               "<text transform=\"translate(20 %.1f) rotate(-90)\" font-size=\"13\" "
               "text-anchor=\"middle\">answer F1</text>\n",
            L, T, pw, ph, L + pw / 2, H - 18, T + ph / 2);
    int row = 0;
    for (int m = 0; m < M_N; m++) {
        if (!on[m]) continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"%s points=\"", col[m],
                m == M_FULL ? " stroke-dasharray=\"6 4\"" : "");
        for (size_t i = 0; i < nr; i++) {
            const qa_agg *g = &a[m * nr + (m == M_FULL ? 0 : i)];
            fprintf(f, "%.1f,%.1f ", L + pw * (log2(ratios[i]) - x0) / (x1 - x0),
                    T + ph - ph * g->f1);
        }
        double ly = T + 12 + 24.0 * row++;
        fprintf(f, "\"/>\n<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2.5\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>\n",
                L + pw + 14, ly, L + pw + 38, ly, col[m], L + pw + 46, ly + 4, method_names[m]);
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0;
}

int cmd_eval_qa(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *ckpt = NULL, *tok = NULL, *out_dir = "eval-qa-out";
    const char *ratios_s = "4,8,16,32",
               *methods_s = "comi,full,truncate,mean-pool,no-redundancy,coarse-only,fine-only";
    const char *task = NULL;
    int64_t limit = -1, seed = 0, threads = 0, enc_layers = 0, max_new = -1, seg = -1;
    double pen = -1;
    bool shuffle = false, skip_bad = false;
    cli_limits lim = {0};
    cli_opt opts[] = {
        {CLI_O("--task", CLI_STR, &task, "qa", "this evaluation (--task recall: comi eval --help)")},
        {CLI_O("--data", CLI_FILE, &data, "F.jsonl", "the COMI JSONL data set (- : stdin)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--model", CLI_PATH, &model, "MODEL", "as in comi answer"), .flags = CLI_REQUIRED},
        {CLI_O("--checkpoint", CLI_PATH, &ckpt, "DIR", "as in comi answer")},
        {CLI_O("--tokenizer", CLI_PATH, &tok, "T", "as in comi answer")},
        {CLI_O("--ratio", CLI_STR, &ratios_s, "LIST",
               "whole-number ratios, comma-separated (default 4,8,16,32)"),
         .alias = "--ratios"},
        {CLI_O("--methods", CLI_STR, &methods_s, "LIST",
               "comi, no-redundancy, coarse-only, fine-only, mean-pool (merge\n"
               "variants); truncate (decoder reads the first n/ratio context\n"
               "tokens); full (the whole context; run once, shown at every ratio)")},
        {CLI_O("--limit", CLI_I64, &limit, "N", "only the first N examples (after --shuffle)"),
         .ilo = 0, .ihi = INT32_MAX},
        {CLI_O("--shuffle", CLI_FLAG, &shuffle, NULL, "shuffle the examples first")},
        {CLI_O("--seed", CLI_I64, &seed, "S", "seed of --shuffle (default 0)"), .ilo = 0,
         .ihi = INT32_MAX},
        {CLI_O("--out-dir", CLI_PATH, &out_dir, "DIR",
               "DIR/examples.jsonl (resumable), DIR/metrics.json, DIR/qa.svg\n"
               "(default eval-qa-out)")},
        {CLI_O("--encoder-layers", CLI_I64, &enc_layers, "K", "as in comi answer"), .ilo = 0,
         .ihi = INT32_MAX},
        {CLI_O("--max-new-tokens", CLI_I64, &max_new, "N", "as in comi answer"), .ilo = 0,
         .ihi = INT32_MAX},
        {CLI_O("--segment-size", CLI_I64, &seg, "N", "as in comi answer"), .ilo = 1,
         .ihi = INT32_MAX},
        {CLI_O("--repetition-penalty", CLI_F64, &pen, "P", "as in comi answer"), .flags = CLI_GT,
         .lo = 0},
        {CLI_O("--skip-bad", CLI_FLAG, &skip_bad, NULL,
               "skip malformed JSONL lines (counted) instead of stopping")},
        {CLI_O("--threads", CLI_I64, &threads, "T", "kernel threads (default: all cores)"),
         .ilo = 0, .ihi = INT32_MAX},
        CLI_LIMIT_OPTS(lim),
    };
    cli_cmd spec = {.name = QA, .usage = qa_usage, .about = qa_about, .epilog = qa_epilog,
                    .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if (task && strcmp(task, "qa")) return cli_usage(QA, "--task: both qa and '%s' given", task);
    double ratios[16];
    size_t nr;
    if (!parse_list_ratios(ratios_s, ratios, &nr))
        return cli_usage(QA, "--ratio: '%s' is not a comma-separated list of whole numbers >= 1 "
                              "(at most 16)",
                         ratios_s);
    bool on[M_N] = {false};
    if (!parse_methods(methods_s, on)) return CLI_EXIT_USAGE;

    comi_ctx *ctx = cli_ctx_new((int32_t)threads, &lim);
    if (!ctx) return cli_error(CMD, "out of memory");
    int rc = 1;
    comi_dataset *ds = NULL;
    comi_pipeline *pl = NULL;
    comi_example **ex = NULL;
    qa_cell *cells = NULL;
    qa_agg *agg = NULL;
    FILE *jf = NULL;
    char path[4096];
    if (!report_load_dataset(ctx, CMD, data, skip_bad, &ds)) goto done;
    comi_pipeline_load_params lp = comi_pipeline_load_default_params();
    lp.model = model;
    lp.checkpoint = ckpt;
    lp.tokenizer = tok;
    if (comi_pipeline_load(ctx, &lp, &pl) != COMI_OK) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
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
    cells = calloc(n_ex * M_N * nr, sizeof *cells);
    agg = calloc(M_N * nr, sizeof *agg);
    if (!cells || !agg) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    for (size_t e = 0; e < n_ex; e++)
        for (int m = 0; m < M_N; m++)
            for (size_t ri = 0; on[m] && ri < (m == M_FULL ? 1 : nr); ri++)
                cells[n_cells++] = (qa_cell){.ex = e, .method = m, .ri = ri};
    snprintf(path, sizeof path, "%s/examples.jsonl", out_dir);
    size_t n_resumed = resume(path, ex, cells, n_cells, ratios);
    if (n_resumed)
        fprintf(stderr, "comi eval: resuming, %zu of %zu runs already in %s\n", n_resumed, n_cells,
                path);
    if (!(jf = fopen(path, "ab"))) {
        cli_error(CMD, "--out-dir: cannot write '%s': %s", path, strerror(errno));
        goto done;
    }
    comi_answer_params base = comi_pipeline_answer_params(pl);
    if (enc_layers > 0) base.encoder_layers = (int32_t)enc_layers;
    if (max_new >= 0) base.max_new_tokens = (int32_t)max_new;
    if (seg > 0) base.segment_size = seg;
    if (pen > 0) base.repetition_penalty = (float)pen;
    base.keep_logits = false;
    bool tty = cli_stderr_is_tty();
    size_t n_todo = n_cells - n_resumed, n_now = 0;
    report_progress prog = {.label = "eval qa", .unit = "runs"};
    report_progress_start(&prog);
    for (size_t i = 0; i < n_cells; i++) {
        qa_cell *c = &cells[i];
        if (c->done) continue;
        const comi_example *x = ex[c->ex];
        comi_answer_params ap = base;
        int64_t ratio = (int64_t)ratios[c->ri];
        ap.merge.merge_size = ratio;
        if (c->method == M_NO_RED) ap.merge.coarse_redundancy = ap.merge.fine_redundancy = false;
        if (c->method == M_COARSE_ONLY) ap.merge.fine = false;
        if (c->method == M_FINE_ONLY) ap.merge.coarse = false;
        if (c->method == M_MEAN_POOL) ap.merge.coarse = ap.merge.fine = false;
        comi_answer_result r;
        comi_status st = COMI_OK;
        if (c->method == M_FULL || c->method == M_TRUNCATE) {
            int64_t keep = -1;
            if (c->method == M_TRUNCATE) {
                /* the budget: floor(context tokens / ratio), as many tokens as
                 * comi's memory vectors at most */
                comi_tokenize_params tp = comi_tokenize_default_params();
                tp.add_bos = tp.add_eos = 0;
                int32_t *ids = NULL;
                size_t n_ids = 0;
                st = comi_tokenize(ctx, comi_pipeline_tokenizer(pl), x->input, strlen(x->input),
                                   &tp, &ids, &n_ids);
                comi_free(ids);
                keep = (int64_t)n_ids / ratio;
            }
            if (!st) st = comi_pipeline_answer_tokens(ctx, pl, x->input, x->prompt, keep, &ap, &r);
        } else {
            st = comi_pipeline_answer(ctx, pl, x->input, x->prompt, &ap, &r);
        }
        if (st) {
            cli_error(CMD, "line %lld (id %s), method %s, ratio %lld: %s", (long long)x->line,
                      x->id, method_names[c->method], (long long)ratio, comi_errmsg(ctx));
            goto done;
        }
        comi_answer_scores sc;
        if (comi_score_answer(ctx, r.text, (const char *const *)x->answers, x->n_answers, &sc)) {
            cli_error(CMD, "line %lld: scoring: %s", (long long)x->line, comi_errmsg(ctx));
            comi_answer_result_free(&r);
            goto done;
        }
        c->em = sc.exact_match;
        c->f1 = sc.f1;
        c->acc = sc.accuracy;
        c->ctx_tokens = r.n_context_tokens;
        c->memory = r.n_memory;
        double ms[7] = {r.ms_tokenize, r.ms_encode, r.ms_merge,   r.ms_fuse,
                        r.ms_prefill,  r.ms_generate, r.ms_total};
        memcpy(c->ms, ms, sizeof ms);
        c->done = true;
        write_line(jf, x, c, ratios, r.text);
        comi_answer_result_free(&r);
        n_now++;
        if (tty) report_progress_update(&prog, n_now, n_todo);
    }
    if (tty && n_todo) fprintf(stderr, "\n");

    for (size_t i = 0; i < n_cells; i++) {
        const qa_cell *c = &cells[i];
        qa_agg *g = &agg[(size_t)c->method * nr + c->ri];
        g->em += c->em;
        g->f1 += c->f1;
        g->acc += c->acc;
        g->ctx += (double)c->ctx_tokens;
        g->mem += (double)c->memory;
        for (int k = 0; k < 7; k++) g->ms[k] += c->ms[k];
        g->n++;
    }
    json_t *root = json_object(), *res = json_object();
    json_object_set_new(root, "data", json_string(data));
    json_object_set_new(root, "task", json_string("qa"));
    comi_pipeline_info pi;
    comi_pipeline_get_info(pl, &pi);
    json_object_set_new(root, "pipeline", json_string(pi.description));
    json_object_set_new(root, "total_samples", json_integer((json_int_t)n_ex));
    json_object_set_new(root, "skipped_lines", json_integer((json_int_t)ds->n_skipped));
    printf("data %s, %zu examples, task qa (%s)\n%-14s", data, n_ex, pi.description, "method");
    for (size_t ri = 0; ri < nr; ri++) {
        char h[32];
        snprintf(h, sizeof h, "EM/F1/acc@%gx", ratios[ri]);
        printf(" %20s", h);
    }
    printf("\n");
    for (int m = 0; m < M_N; m++) {
        if (!on[m]) continue;
        json_t *mo = json_object();
        printf("%-14s", method_names[m]);
        for (size_t ri = 0; ri < (m == M_FULL ? 1 : nr); ri++) {
            qa_agg *g = &agg[(size_t)m * nr + ri];
            double n = g->n ? (double)g->n : 1;
            json_t *o = json_object(), *sec = json_object();
            json_object_set_new(o, "n", json_integer((json_int_t)g->n));
            json_object_set_new(o, "avg_em", json_real(g->em / n));
            json_object_set_new(o, "avg_f1", json_real(g->f1 / n));
            json_object_set_new(o, "avg_accuracy", json_real(g->acc / n));
            json_object_set_new(o, "compression", json_real(g->mem > 0 ? g->ctx / g->mem : 0));
            for (int k = 0; k < 7; k++)
                json_object_set_new(sec, stage_names[k], json_real(g->ms[k] / n / 1000.0));
            json_object_set_new(o, "seconds_per_example", sec);
            char key[32];
            snprintf(key, sizeof key, "%g", m == M_FULL ? 1.0 : ratios[ri]);
            json_object_set_new(mo, key, o);
        }
        for (size_t ri = 0; ri < nr; ri++) {
            const qa_agg *g = &agg[(size_t)m * nr + (m == M_FULL ? 0 : ri)];
            double n = g->n ? (double)g->n : 1;
            char cellt[48];
            snprintf(cellt, sizeof cellt, "%.3f/%.3f/%.3f", g->em / n, g->f1 / n, g->acc / n);
            printf(" %20s", cellt);
        }
        printf("\n");
        json_object_set_new(res, method_names[m], mo);
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
    snprintf(title, sizeof title, "Answer F1 vs compression, %s (%zu examples)", bn ? bn + 1 : data,
             n_ex);
    if (!write_svg(path, title, agg, on, ratios, nr)) {
        cli_error(CMD, "cannot write '%s'", path);
        goto done;
    }
    printf("wrote %s/examples.jsonl, %s/metrics.json, %s\n", out_dir, out_dir, path);
    rc = 0;
done:
    if (jf) fclose(jf);
    free(agg);
    free(cells);
    free(ex);
    comi_pipeline_free(pl);
    comi_dataset_free(ds);
    comi_ctx_free(ctx);
    return rc;
}
