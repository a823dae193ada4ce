/*
 * cmd_train.c — `comi train`: fine-tunes a COMI compressor (stage:
 * training; comi_train in comi.h does the work). Options are declared once
 * in a table that both parses (--opt VALUE and --opt=VALUE) and prints
 * --help. Progress with loss and ETA goes to stderr. Uses only comi.h.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "train";

typedef enum { OPT_STR, OPT_I64, OPT_F64, OPT_ON, OPT_OFF, OPT_SCHED } opt_kind;

typedef struct opt {
    const char *name;
    opt_kind kind;
    void *dst;
    double lo, hi;
    const char *help;
} opt;

typedef struct train_cli {
    comi_train_params p;
    const char *schedule;
    int64_t encoder_layers, fusion_layers, lora_r, batch_size, seed, threads;
    double lora_alpha, lora_dropout;
    bool quiet;
} train_cli;

static void usage(FILE *out, const opt *o, size_t n) {
    fprintf(out,
            "usage: comi train --model BASE --data F.jsonl --out DIR [options]\n"
            "\n"
            "Fine-tunes a COMI compressor for BASE (a .gguf file or a Hugging Face directory)\n"
            "as the authors' training does: encoder = the first K layers + final norm +\n"
            "embeddings (trained), merge with gradients through the fine MIG weights, fusion\n"
            "block(s) initialised from layers 0.. (trained), frozen decoder with LoRA on\n"
            "q/k/v/o; loss = cross-entropy of the answer; AdamW as the Hugging Face Trainer.\n"
            "Data rows: COMI JSONL (input, prompt, answer: string or list, the first is the\n"
            "target) or pre-tokenized context_ids / question_ids / answer_ids.\n"
            "DIR receives model.safetensors (load with comi answer --checkpoint DIR --model\n"
            "BASE), adapter_config.json, optimizer.safetensors and trainer_state.json.\n"
            "\n");
    for (size_t i = 0; i < n; i++) {
        const char *arg = o[i].kind == OPT_STR   ? " X"
                          : o[i].kind == OPT_I64 ? " N"
                          : o[i].kind == OPT_F64 ? " V"
                          : o[i].kind == OPT_SCHED ? " S"
                                                   : "";
        char left[64];
        snprintf(left, sizeof left, "%s%s", o[i].name, arg);
        fprintf(out, "  %-24s %s\n", left, o[i].help);
    }
    fprintf(out, "%s", CLI_LIMITS_HELP
                 "                           (--max-memory bounds one example's activations)\n");
}

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
    train_cli c = {.p = comi_train_default_params(), .schedule = NULL};
    c.encoder_layers = c.p.encoder_layers;
    c.fusion_layers = c.p.fusion_layers;
    c.lora_r = c.p.lora_r;
    c.lora_alpha = c.p.lora_alpha;
    c.lora_dropout = c.p.lora_dropout;
    c.batch_size = c.p.batch_size;
    c.seed = (int64_t)c.p.seed;
    const opt opts[] = {
        {"--model", OPT_STR, &c.p.model, 0, 0, "base model (.gguf or HF directory) (required)"},
        {"--data", OPT_STR, &c.p.data, 0, 0, "training rows, COMI JSONL (required)"},
        {"--out", OPT_STR, &c.p.out_dir, 0, 0, "checkpoint directory (required)"},
        {"--init", OPT_STR, &c.p.init, 0, 0,
         "start from this checkpoint's tensors (directory or .safetensors)"},
        {"--encoder-layers", OPT_I64, &c.encoder_layers, 1, 4096, "encoder depth K (default 8)"},
        {"--merge-size", OPT_I64, &c.p.merge_size, 1, 1 << 20,
         "tokens per memory vector, the compression rate (default 16)"},
        {"--fusion-layers", OPT_I64, &c.fusion_layers, 0, 4096,
         "fusion blocks (default 1; 0: none)"},
        {"--lora-r", OPT_I64, &c.lora_r, 1, 65536, "decoder LoRA rank (default 128)"},
        {"--lora-alpha", OPT_F64, &c.lora_alpha, 1e-6, 1e6, "LoRA alpha, scale alpha/r (default 32)"},
        {"--lora-dropout", OPT_F64, &c.lora_dropout, 0, 0.999, "LoRA dropout (default 0.05)"},
        {"--lr", OPT_F64, &c.p.lr, 0, 10, "peak learning rate (default 1e-5)"},
        {"--schedule", OPT_SCHED, &c.schedule, 0, 0, "cosine (default) or constant"},
        {"--warmup-ratio", OPT_F64, &c.p.warmup_ratio, 0, 1,
         "linear warmup over this fraction of the steps (default 0.1)"},
        {"--weight-decay", OPT_F64, &c.p.weight_decay, 0, 10,
         "decoupled, on tensors of 2+ dimensions (default 0.01)"},
        {"--max-grad-norm", OPT_F64, &c.p.max_grad_norm, 0, 1e30,
         "global-norm clipping (default 1; 0: off)"},
        {"--batch-size", OPT_I64, &c.batch_size, 1, 1 << 20,
         "examples per optimiser step, losses averaged (default 1)"},
        {"--steps", OPT_I64, &c.p.steps, 1, 1e15, "optimiser steps (default: from --epochs)"},
        {"--epochs", OPT_F64, &c.p.epochs, 1e-9, 1e9, "passes over the data (default 1)"},
        {"--no-shuffle", OPT_OFF, &c.p.shuffle, 0, 0, "keep the data order (default: reshuffle "
                                                      "every epoch from the seed)"},
        {"--seed", OPT_I64, &c.seed, 0, 9.2e18, "LoRA init, data order, dropout (default 42)"},
        {"--log", OPT_STR, &c.p.log, 0, 0, "JSONL log, one object per step (default DIR/log.jsonl)"},
        {"--resume", OPT_ON, &c.p.resume, 0, 0,
         "continue from DIR's last checkpoint (bit-identical to an uninterrupted run)"},
        {"--stop-after", OPT_I64, &c.p.stop_after, 1, 1e15,
         "stop after step N with a checkpoint (continue with --resume)"},
        {"--save-every", OPT_I64, &c.p.save_every, 0, 1e15,
         "checkpoint every N steps (default 100) and at the end"},
        {"--eval-data", OPT_STR, &c.p.eval_data, 0, 0, "held-out COMI JSONL for evaluation losses"},
        {"--eval-every", OPT_I64, &c.p.eval_every, 0, 1e15,
         "evaluate every N steps (default 0: at the end only)"},
        {"--eval-limit", OPT_I64, &c.p.eval_limit, 0, 1e15,
         "at most N evaluation rows (default 64; 0: all)"},
        {"--context-tokens", OPT_I64, &c.p.context_tokens, 0, 1e15,
         "keep only the first N context tokens of each row (default 0: all)"},
        {"--dump-grad", OPT_STR, &c.p.dump_grad, 0, 0,
         "write the gradient of the mean loss over all of --data at the starting\n"
         "                           weights (no dropout) to G.safetensors, print the loss, exit"},
        {"--threads", OPT_I64, &c.threads, 0, 4096, "worker threads (default: all cores)"},
        {"--quiet", OPT_ON, &c.quiet, 0, 0, "no progress on stderr"},
    };
    const size_t n_opts = sizeof opts / sizeof opts[0];
    cli_limits lim = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int lf = cli_limit_flag(CMD, argc, argv, &i, &lim);
        if (lf < 0) return 2;
        if (lf > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, opts, n_opts);
            return 0;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq && !strncmp(a, "--", 2) ? (size_t)(eq - a) : strlen(a);
        const opt *o = NULL;
        for (size_t k = 0; k < n_opts && !o; k++)
            if (strlen(opts[k].name) == nl && !strncmp(opts[k].name, a, nl)) o = &opts[k];
        if (!o) {
            cli_error(CMD, "unknown option '%s' (comi train --help lists them)", a);
            return 2;
        }
        const char *v = NULL;
        if (o->kind == OPT_ON || o->kind == OPT_OFF) {
            if (eq) {
                cli_error(CMD, "%s takes no value", o->name);
                return 2;
            }
            *(bool *)o->dst = o->kind == OPT_ON;
            continue;
        }
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else {
            cli_error(CMD, "missing value for %s", o->name);
            return 2;
        }
        if (o->kind == OPT_STR || o->kind == OPT_SCHED) {
            if (!*v) {
                cli_error(CMD, "%s: empty value", o->name);
                return 2;
            }
            *(const char **)o->dst = v;
        } else if (o->kind == OPT_I64) {
            if (!cli_parse_i64(CMD, o->name, v, (int64_t)o->lo, (int64_t)o->hi, o->dst)) return 2;
        } else {
            double x;
            if (!cli_parse_f64(CMD, o->name, v, &x)) return 2;
            if (!(x >= o->lo && x <= o->hi)) {
                cli_error(CMD, "%s: %s is out of range [%g, %g]", o->name, v, o->lo, o->hi);
                return 2;
            }
            *(double *)o->dst = x;
        }
    }
    if (c.schedule) {
        if (!strcmp(c.schedule, "cosine")) c.p.cosine = true;
        else if (!strcmp(c.schedule, "constant")) c.p.cosine = false;
        else {
            cli_error(CMD, "--schedule: '%s' (use cosine or constant)", c.schedule);
            return 2;
        }
    }
    if (!c.p.model || !c.p.data || (!c.p.out_dir && !c.p.dump_grad)) {
        cli_error(CMD, "--model, --data and --out are required (comi train --help)");
        return 2;
    }
    c.p.encoder_layers = (int32_t)c.encoder_layers;
    c.p.fusion_layers = (int32_t)c.fusion_layers;
    c.p.lora_r = c.lora_r;
    c.p.lora_alpha = (float)c.lora_alpha;
    c.p.lora_dropout = (float)c.lora_dropout;
    c.p.batch_size = (int32_t)c.batch_size;
    c.p.seed = (uint64_t)c.seed;
    progress_state ps = {.tty = cli_stderr_is_tty(), .quiet = c.quiet};
    c.p.progress = on_progress;
    c.p.progress_user = &ps;
    double dump_loss = NAN;
    c.p.dump_loss = &dump_loss;
    comi_ctx *ctx = cli_ctx_new((int32_t)c.threads, &lim);
    if (!ctx) return cli_error(CMD, "out of memory");
    comi_status st = comi_train(ctx, &c.p);
    int rc = 0;
    if (st) rc = cli_error(CMD, "%s", comi_errmsg(ctx));
    else if (c.p.dump_grad) printf("%.9g\n", dump_loss);
    comi_ctx_free(ctx);
    return rc;
}
