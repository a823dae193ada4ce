/*
 * report.h — pieces the evaluation subcommands (comi eval, comi eval --task
 * qa) share: loading the data set and ordering its examples (seeded
 * shuffle, limit), XML escaping for the SVG charts, and the progress line
 * with ETA on a terminal.
 */
#ifndef COMI_REPORT_H
#define COMI_REPORT_H

#include "comi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Seconds on the monotonic clock. */
double report_now_s(void);

/* Loads the JSONL data set (comi_dataset_load) and notes skipped lines on
 * stderr; prints "--data: ..." and returns false on failure. */
bool report_load_dataset(comi_ctx *ctx, const char *cmd, const char *data, bool skip_bad,
                         comi_dataset **ds);

/* The examples of ds to run, in order: all of them, shuffled with seed when
 * shuffle is set, then cut to the first limit (limit < 0: no cut). Returns
 * a malloc'ed array of *n pointers into ds, NULL when out of memory. */
comi_example **report_examples(const comi_dataset *ds, bool shuffle, uint64_t seed, int64_t limit,
                               size_t *n);

/* Shuffles ex[0..n) in place (Fisher-Yates, splitmix64 seeded with seed), so
 * a seed gives the same order on every run and machine. */
void report_shuffle(comi_example **ex, size_t n, uint64_t seed);

/* Writes s with <, >, & and " escaped, for SVG/XML text and attributes. */
void report_xml_escape(FILE *f, const char *s);

/* A "\r[label] done/todo unit (pct%) [rate/s]  ETA m:ss" line on stderr,
 * redrawn in place. Fill label, unit, show_rate and min_interval (seconds
 * between redraws; the last one is always drawn), then report_progress_start
 * before the first run. */
typedef struct report_progress {
    const char *label, *unit;
    bool show_rate;
    double min_interval;
    double t0, last_print;
} report_progress;

void report_progress_start(report_progress *p);
void report_progress_update(report_progress *p, size_t done, size_t todo);

#endif /* COMI_REPORT_H */
