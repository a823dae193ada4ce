/*
 * bench_train.c — training speed of comi_train: times N optimiser steps
 * (after one warm-up step, and before a last one that writes the checkpoint,
 * neither counted) on a base model and a COMI
 * JSONL file and prints one row: steps, tokens (encoder: context + question;
 * decoder: memories + question + answer), wall and CPU seconds per step,
 * tokens per wall second and per CPU second (the load-independent figure on
 * a shared machine), and peak RSS.
 *
 *   build/bench/bench_train --model BASE --data F.jsonl [--steps 5]
 *       [--encoder-layers 8] [--merge-size 16] [--lora-r 128]
 *       [--context-tokens 768] [--threads 1] [--shuffle 1|0]
 */
#include "bench.h"
#include "comi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct meter {
    int64_t last;           /* the last counted step (the run goes one further, so that
                               the final checkpoint write is not counted) */
    double t0, c0, t1, c1;  /* clocks after the warm-up step and after the last counted */
    double tok_rate0, el0;  /* the progress figures at those points */
    double tok_rate, el;
} meter;

static void on_step(void *user, const comi_train_progress *p) {
    meter *m = user;
    if (p->step == 1) {
        m->t0 = bench_now_s();
        m->c0 = bench_cpu_s();
        m->tok_rate0 = p->tokens_per_s;
        m->el0 = p->elapsed_s;
    }
    if (p->step == m->last) {
        m->t1 = bench_now_s();
        m->c1 = bench_cpu_s();
        m->tok_rate = p->tokens_per_s;
        m->el = p->elapsed_s;
    }
}

int main(int argc, char **argv) {
    comi_train_params p = comi_train_default_params();
    long steps = 5, threads = 1;
    p.context_tokens = 768;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model")) p.model = v;
        else if (!strcmp(a, "--data")) p.data = v;
        else if (!strcmp(a, "--steps")) steps = atol(v);
        else if (!strcmp(a, "--encoder-layers")) p.encoder_layers = atoi(v);
        else if (!strcmp(a, "--merge-size")) p.merge_size = atol(v);
        else if (!strcmp(a, "--lora-r")) p.lora_r = atol(v);
        else if (!strcmp(a, "--context-tokens")) p.context_tokens = atol(v);
        else if (!strcmp(a, "--threads")) threads = atol(v);
        else if (!strcmp(a, "--shuffle")) p.shuffle = atoi(v) != 0;
        else {
            fprintf(stderr, "bench_train: unknown option %s\n", a);
            return 2;
        }
    }
    if (!p.model || !p.data || steps < 1) {
        fprintf(stderr, "usage: bench_train --model BASE --data F.jsonl [--steps N] ...\n");
        return 2;
    }
    char dir[] = "/tmp/comi_bench_train_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char out[64];
    snprintf(out, sizeof out, "%s/run", dir);
    p.out_dir = out;
    p.steps = steps + 2;
    p.save_every = 0;
    p.lr = 1e-5;
    meter m = {.last = steps + 1};
    p.progress = on_step;
    p.progress_user = &m;
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = (int32_t)threads;
    comi_ctx *ctx = comi_ctx_new(&cp);
    comi_status st = comi_train(ctx, &p);
    double wall = m.t1 - m.t0, cpu = m.c1 - m.c0;
    if (st) fprintf(stderr, "bench_train: %s\n", comi_errmsg(ctx));
    comi_ctx_free(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_train: could not remove %s\n", dir);
    if (st) return 1;
    /* tokens of the counted steps, from the progress figures */
    double tokens = m.tok_rate * m.el - m.tok_rate0 * m.el0;
    int64_t n = steps;
    printf("steps %lld  tokens %.0f  wall %.2f s/step  cpu %.2f s/step  %.1f tok/s  %.1f tok/cpu-s  "
           "peak RSS %.0f MiB\n",
           (long long)n, tokens, wall / (double)n, cpu / (double)n, tokens / wall, tokens / cpu,
           bench_peak_rss_mib());
    return 0;
}
