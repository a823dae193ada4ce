/*
 * cmd_train.c — `comi train`: fine-tunes a COMI compressor (stage:
 * training; comi_train in comi.h does the work). Options are declared once
 * in the shared table (tools/opt.h) that both parses and prints --help.
 * Progress with loss and ETA goes to stderr. Uses only comi.h.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "train";

static const char train_usage[] =
    "usage: comi train --model BASE --data F.jsonl --out DIR [options]\n";
static const char train_about[] =
    "Fine-tunes a COMI compressor for BASE (a .gguf file or a Hugging Face directory)\n"
    "as the authors' training does: encoder = the first K layers + final norm +\n"
    "embeddings (trained), merge with gradients through the fine MIG weights, fusion\n"
    "block(s) initialised from layers 0.. (trained), frozen decoder with LoRA on\n"
    "q/k/v/o; loss = cross-entropy of the answer; AdamW as the Hugging Face Trainer.\n"
    "Data rows: COMI JSONL (input, prompt, answer: string or list, the first is the\n"
    "target) or pre-tokenized context_ids / question_ids / answer_ids.\n"
    "DIR receives model.safetensors (load with comi answer --checkpoint DIR --model\n"
    "BASE), adapter_config.json, optimizer.safetensors and trainer_state.json.\n";
static const char train_epilog[] =
    "Exit status: 0 done, 2 usage error, 1 any other failure (an unusable data row,\n"
    "named with its line; a non-finite loss, which keeps the last good checkpoint).\n";

typedef struct progress_state {
    bool tty;
    bool quiet;
} progress_state;

static void on_progress(void *user, const comi_train_progress *pr) {
    progress_state *ps = user;
    if (ps->quiet) return;
    double eta = pr->eta_s;
    int h = (int)(eta / 3600), mi = (int)(fmod(eta, 3600) / 60), s = (int)fmod(eta, 60);
    fprintf(stderr, "%sstep %lld/%lld  loss %.4f  lr %.3g  grad_norm %.3g  %.0f tok/s  ETA %d:%02d:%02d",
            ps->tty ? "\r" : "", (long long)pr->step, (long long)pr->total_steps, pr->loss, pr->lr,
            pr->grad_norm, pr->tokens_per_s, h, mi, s);
    if (!isnan(pr->eval_loss)) fprintf(stderr, "  eval_loss %.4f", pr->eval_loss);
    if (pr->checkpoint_saved) fprintf(stderr, "  [saved]");
    fprintf(stderr, "%s", ps->tty && !pr->checkpoint_saved && pr->step < pr->total_steps ? "\033[K" : "\n");
    fflush(stderr);
}

int cmd_train(int argc, char **argv);
int cmd_train(int argc, char **argv) {
    comi_train_params p = comi_train_default_params();
    const char *schedule = "cosine";
    int64_t seed = (int64_t)p.seed, threads = 0;
    bool no_shuffle = false, quiet = false;
    cli_limits lim = {0};
    cli_opt opts[] = {
        {CLI_O("--model", CLI_PATH, &p.model, "BASE", "base model (.gguf or HF directory)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--data", CLI_FILE, &p.data, "F.jsonl", "training rows, COMI JSONL"),
         .flags = CLI_REQUIRED},
        {CLI_O("--out", CLI_PATH, &p.out_dir, "DIR", "checkpoint directory (required unless\n"
                                                    "--dump-grad)")},
        {CLI_O("--init", CLI_PATH, &p.init, "CKPT",
               "start from this checkpoint's tensors (directory or\n.safetensors)")},
        {CLI_O("--encoder-layers", CLI_I32, &p.encoder_layers, "K", "encoder depth (default 8)"),
         .ilo = 1, .ihi = 4096},
        {CLI_O("--merge-size", CLI_I64, &p.merge_size, "M",
               "tokens per memory vector, the compression rate (default 16)"),
         .ilo = 1, .ihi = 1 << 20},
        {CLI_O("--fusion-layers", CLI_I32, &p.fusion_layers, "N",
               "fusion blocks (default 1; 0: none)"),
         .ilo = 0, .ihi = 4096},
        {CLI_O("--lora-r", CLI_I64, &p.lora_r, "R", "decoder LoRA rank (default 128)"), .ilo = 1,
         .ihi = 65536},
        {CLI_O("--lora-alpha", CLI_F32, &p.lora_alpha, "A",
               "LoRA alpha, scale A / R (default 32; 0: the decoder frozen outright, its LoRA "
               "adds nothing and learns nothing)"),
         .flags = CLI_MIN, .lo = 0},
        {CLI_O("--lora-dropout", CLI_F32, &p.lora_dropout, "P", "LoRA dropout (default 0.05)"),
         .flags = CLI_MIN | CLI_MAX, .lo = 0, .hi = 0.999},
        {CLI_O("--lr", CLI_F64, &p.lr, "LR", "peak learning rate (default 1e-5)"),
         .flags = CLI_MIN, .lo = 0},
        {CLI_O("--schedule", CLI_STR, &schedule, "S", "cosine (default) or constant")},
        {CLI_O("--warmup-ratio", CLI_F64, &p.warmup_ratio, "W",
               "linear warmup over this fraction of the steps (default 0.1)"),
         .flags = CLI_MIN | CLI_MAX, .lo = 0, .hi = 1},
        {CLI_O("--weight-decay", CLI_F64, &p.weight_decay, "WD",
               "decoupled, on tensors of 2+ dimensions (default 0.01)"),
         .flags = CLI_MIN, .lo = 0},
        {CLI_O("--max-grad-norm", CLI_F64, &p.max_grad_norm, "G",
               "global-norm clipping (default 1; 0: off)"),
         .flags = CLI_MIN, .lo = 0},
        {CLI_O("--batch-size", CLI_I32, &p.batch_size, "B",
               "examples per optimiser step, losses averaged (default 1)"),
         .ilo = 1, .ihi = 1 << 20},
        {CLI_O("--steps", CLI_I64, &p.steps, "N", "optimiser steps (default: from --epochs)"),
         .ilo = 1, .ihi = INT64_MAX},
        {CLI_O("--epochs", CLI_F64, &p.epochs, "E", "passes over the data (default 1)"),
         .flags = CLI_GT, .lo = 0},
        {CLI_O("--no-shuffle", CLI_FLAG, &no_shuffle, NULL,
               "keep the data order (default: reshuffle every epoch from\nthe seed)")},
        {CLI_O("--seed", CLI_I64, &seed, "S", "LoRA init, data order, dropout (default 42)"),
         .ilo = 0, .ihi = INT64_MAX},
        {CLI_O("--log", CLI_PATH, &p.log, "F.jsonl",
               "one JSON object per step (default DIR/log.jsonl)")},
        {CLI_O("--resume", CLI_FLAG, &p.resume, NULL,
               "continue from DIR's last checkpoint (bit-identical to an\nuninterrupted run)")},
        {CLI_O("--stop-after", CLI_I64, &p.stop_after, "N",
               "stop after step N with a checkpoint (continue with --resume)"),
         .ilo = 1, .ihi = INT64_MAX},
        {CLI_O("--save-every", CLI_I64, &p.save_every, "N",
               "checkpoint every N steps (default 100) and at the end"),
         .ilo = 0, .ihi = INT64_MAX},
        {CLI_O("--eval-data", CLI_PATH, &p.eval_data, "F.jsonl",
               "held-out COMI JSONL for evaluation losses")},
        {CLI_O("--eval-every", CLI_I64, &p.eval_every, "N",
               "evaluate every N steps (default 0: at the end only)"),
         .ilo = 0, .ihi = INT64_MAX},
        {CLI_O("--eval-limit", CLI_I64, &p.eval_limit, "N",
               "at most N evaluation rows (default 64; 0: all)"),
         .ilo = 0, .ihi = INT64_MAX},
        {CLI_O("--context-tokens", CLI_I64, &p.context_tokens, "N",
               "keep only the first N context tokens of each row\n(default 0: all)"),
         .ilo = 0, .ihi = INT64_MAX},
        {CLI_O("--dump-grad", CLI_PATH, &p.dump_grad, "G.safetensors",
               "write the gradient of the mean loss over all of --data at\n"
               "the starting weights (no dropout), print the loss, exit")},
        {CLI_O("--threads", CLI_I64, &threads, "T", "worker threads (default: all cores)"),
         .ilo = 1, .ihi = 256},
        {CLI_O("--quiet", CLI_FLAG, &quiet, NULL, "no progress on stderr")},
        CLI_LIMIT_OPTS(lim),
    };
    cli_cmd spec = {.name = CMD, .usage = train_usage, .about = train_about,
                    .epilog = train_epilog, .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if (p.data && !strcmp(p.data, "-")) p.data = "/dev/stdin"; /* read once, by path */
    if (!strcmp(schedule, "cosine")) p.cosine = true;
    else if (!strcmp(schedule, "constant")) p.cosine = false;
    else return cli_usage(CMD, "--schedule: '%s' is not cosine or constant", schedule);
    if (!p.out_dir && !p.dump_grad) return cli_usage(CMD, "missing required option --out");
    p.shuffle = !no_shuffle;
    p.seed = (uint64_t)seed;
    progress_state ps = {.tty = cli_stderr_is_tty(), .quiet = quiet};
    p.progress = on_progress;
    p.progress_user = &ps;
    double dump_loss = NAN;
    p.dump_loss = &dump_loss;
    comi_ctx *ctx = cli_ctx_new((int32_t)threads, &lim);
    if (!ctx) return cli_error(CMD, "out of memory");
    comi_status st = comi_train(ctx, &p);
    int rc = 0;
    if (st) rc = cli_error(CMD, "%s", comi_errmsg(ctx));
    else if (p.dump_grad) printf("%.9g\n", dump_loss);
    comi_ctx_free(ctx);
    return rc;
}
