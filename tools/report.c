/*
 * report.c — shared report helpers of the evaluation subcommands (see
 * report.h): data set and example order, XML escaping, progress with ETA.
 */
#include "report.h"

#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

double report_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: one step of the seeded generator. */
static uint64_t mix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void report_shuffle(comi_example **ex, size_t n, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(mix64(&s) % i);
        comi_example *t = ex[i - 1];
        ex[i - 1] = ex[j];
        ex[j] = t;
    }
}

bool report_load_dataset(comi_ctx *ctx, const char *cmd, const char *data, bool skip_bad,
                         comi_dataset **ds) {
    /* `-`: standard input, which the library reads by its path */
    if (comi_dataset_load(ctx, strcmp(data, "-") ? data : "/dev/stdin", skip_bad, ds) != COMI_OK) {
        cli_error(cmd, "--data: %s", comi_errmsg(ctx));
        return false;
    }
    if ((*ds)->n_skipped)
        fprintf(stderr, "comi eval: skipped %zu bad lines; first: %s\n", (*ds)->n_skipped,
                (*ds)->first_error);
    return true;
}

comi_example **report_examples(const comi_dataset *ds, bool shuffle, uint64_t seed, int64_t limit,
                               size_t *n) {
    size_t n_ex = ds->n_examples;
    comi_example **ex = calloc(n_ex ? n_ex : 1, sizeof *ex);
    if (!ex) return NULL;
    for (size_t i = 0; i < n_ex; i++)
        ex[i] = &ds->examples[i];
    if (shuffle) report_shuffle(ex, n_ex, seed);
    if (limit >= 0 && (size_t)limit < n_ex) n_ex = (size_t)limit;
    *n = n_ex;
    return ex;
}

void report_xml_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

void report_progress_start(report_progress *p) {
    p->t0 = report_now_s();
    p->last_print = 0;
}

void report_progress_update(report_progress *p, size_t done, size_t todo) {
    double t = report_now_s();
    if (t - p->last_print < p->min_interval && done < todo) return;
    p->last_print = t;
    double el = t - p->t0;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(todo - done) / rate : 0;
    fprintf(stderr, "\r[%s] %zu/%zu %s (%.0f%%)", p->label, done, todo, p->unit,
            todo ? 100.0 * (double)done / (double)todo : 100.0);
    if (p->show_rate) fprintf(stderr, " %.1f/s", rate);
    fprintf(stderr, "  ETA %d:%02d   ", (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}
