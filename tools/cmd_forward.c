/*
 * cmd_forward.c — `comi forward`: runs a model over token ids (stage:
 * encoder/decoder LM) and writes hidden states after K layers (final norm
 * applied), logits of every position, and/or N greedy continuation ids.
 * Uses only the public comi.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "forward";

/* Positions evaluated per call: bounds the logits buffer for long inputs. */
#define FWD_CHUNK 256

static const char *const forward_usage =
    "usage: comi forward --model MODEL --ids FILE [--layers K] [--hidden-out H.f32]\n"
    "                    [--logits-out L.f32] [--generate N] [--threads T]\n"
    "                    [--repetition-penalty P] [--stop-at-eos]\n"
    "                    [--max-context-tokens N] [--max-memory SIZE]\n";

static const char *const forward_about =
    "Runs MODEL (a .gguf file or a Hugging Face directory) over the token ids in FILE\n"
    "(one line of space-separated integers; - reads standard input), positions from 0.\n";

static const char *const forward_epilog =
    "Here --max-context-tokens counts the ids plus --generate N, the positions of the\n"
    "session; --max-memory bounds its KV cache and scratch.\n"
    "Exit status: 0 success; 1 bad input or failure; 2 bad usage.\n";

/* Parses one line of space-separated token ids. Prints an error and returns
 * false on a bad token, an empty file or an unreadable file. */
static bool read_ids(const char *path, int32_t **ids, int64_t *n) {
    *ids = NULL;
    *n = 0;
    size_t len;
    char *txt = cli_read_file(CMD, "--ids", path, &len);
    if (!txt) return false;
    /* at most one id per two bytes ("1 2 ..."), plus one */
    int32_t *out =
        len / 2 + 1 <= SIZE_MAX / sizeof *out ? malloc((len / 2 + 1) * sizeof *out) : NULL;
    int64_t k = 0;
    char *p = txt;
    bool ok = out != NULL;
    while (ok) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX ||
            (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')) {
            int w = 0;
            while (p[w] && p[w] != ' ' && p[w] != '\n' && w < 20)
                w++;
            cli_error(CMD, "--ids: '%s': token %lld ('%.*s') is not an integer", path,
                      (long long)k + 1, w, p);
            ok = false;
            break;
        }
        out[k++] = (int32_t)v;
        p = end;
    }
    free(txt);
    if (ok && k == 0) {
        cli_error(CMD, "--ids: '%s' holds no token ids", path);
        ok = false;
    }
    if (!ok) {
        free(out);
        return false;
    }
    *ids = out;
    *n = k;
    return true;
}

int cmd_forward(int argc, char **argv);
int cmd_forward(int argc, char **argv) {
    const char *model_path = NULL, *ids_path = NULL, *hidden_path = NULL, *logits_path = NULL;
    int64_t layers = 0, n_gen = 0, threads = 0;
    double penalty = 1.0;
    bool stop_eos = false;
    cli_limits lim = {0};
    cli_opt opts[] = {
        {CLI_O("--model", CLI_PATH, &model_path, "MODEL", "a .gguf file or a Hugging Face directory"),
         .flags = CLI_REQUIRED},
        {CLI_O("--ids", CLI_FILE, &ids_path, "FILE", "token ids, one line, space-separated"),
         .flags = CLI_REQUIRED},
        {CLI_O("--layers", CLI_I64, &layers, "K", "run only the first K layers (default: all)"),
         .ilo = 1, .ihi = 1 << 20},
        {CLI_O("--hidden-out", CLI_PATH, &hidden_path, "H.f32",
               "hidden states after K layers with the final RMSNorm\n"
               "applied, float32 (n_tokens x n_embd)")},
        {CLI_O("--logits-out", CLI_PATH, &logits_path, "L.f32",
               "logits of every position, float32 (n_tokens x n_vocab);\nneeds all layers")},
        {CLI_O("--generate", CLI_I64, &n_gen, "N", "print N greedy continuation ids on one line"),
         .ilo = 0, .ihi = 1 << 20},
        {CLI_O("--repetition-penalty", CLI_F64, &penalty, "P",
               "penalise ids already generated (HF semantics, default 1)"),
         .flags = CLI_GT, .lo = 0},
        {CLI_O("--stop-at-eos", CLI_FLAG, &stop_eos, NULL,
               "stop generating at the model's end-of-sequence id")},
        {CLI_O("--threads", CLI_I64, &threads, "T",
               "worker threads (default: all cores); results do not\ndepend on T"),
         .ilo = 1, .ihi = 256},
        CLI_LIMIT_OPTS(lim),
        CLI_KV_OPT(lim.kv_type),
    };
    cli_cmd spec = {.name = CMD, .usage = forward_usage, .about = forward_about,
                    .epilog = forward_epilog, .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;

    int32_t *ids;
    int64_t n;
    if (!read_ids(ids_path, &ids, &n)) return 1;

    comi_ctx *ctx = cli_ctx_new((int32_t)threads, &lim);
    comi_model *model = NULL;
    comi_session *sess = NULL;
    FILE *fh = NULL, *fl = NULL;
    float *hidden = NULL, *logits = NULL;
    int32_t *gen = NULL;
    int rc = 1;
    if (!ctx) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    if (comi_model_load(ctx, model_path, NULL, &model)) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    comi_model_info info;
    comi_model_get_info(model, &info);
    if (layers > info.n_layer) {
        cli_error(CMD, "--layers: %lld is out of range [1, %d] for this model", (long long)layers,
                  info.n_layer);
        goto done;
    }
    bool full = layers == 0 || layers == info.n_layer;
    if (!full && (logits_path || n_gen > 0)) {
        cli_error(CMD, "--logits-out and --generate need all %d layers (--layers %lld given)",
                  info.n_layer, (long long)layers);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= info.n_vocab) {
            cli_error(CMD, "--ids: token id %d (position %lld) is outside the vocabulary [0, %d)",
                      ids[i], (long long)i, info.n_vocab);
            goto done;
        }
    if (comi_session_new(ctx, model, n + n_gen, &sess)) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    if (hidden_path && !(fh = fopen(hidden_path, "wb"))) {
        cli_error(CMD, "--hidden-out: cannot create '%s': %s", hidden_path, strerror(errno));
        goto done;
    }
    if (logits_path && !(fl = fopen(logits_path, "wb"))) {
        cli_error(CMD, "--logits-out: cannot create '%s': %s", logits_path, strerror(errno));
        goto done;
    }
    int64_t chunk = n < FWD_CHUNK ? n : FWD_CHUNK;
    hidden = fh ? malloc((size_t)chunk * (size_t)info.n_embd * sizeof(float)) : NULL;
    logits = fl ? malloc((size_t)chunk * (size_t)info.n_vocab * sizeof(float)) : NULL;
    if ((fh && !hidden) || (fl && !logits)) {
        cli_error(CMD, "out of memory for %lld positions of output", (long long)chunk);
        goto done;
    }
    for (int64_t b = 0; b < n; b += chunk) {
        int64_t c = n - b < chunk ? n - b : chunk;
        comi_eval_params ep = comi_eval_default_params();
        ep.n_layers = (int32_t)layers;
        ep.hidden_out = hidden;
        ep.logits_out = logits;
        ep.n_logits = logits ? c : 0;
        if (comi_session_eval(ctx, sess, ids + b, NULL, c, &ep)) {
            cli_error(CMD, "%s", comi_errmsg(ctx));
            goto done;
        }
        if ((fh &&
             fwrite(hidden, sizeof(float) * (size_t)info.n_embd, (size_t)c, fh) != (size_t)c) ||
            (fl &&
             fwrite(logits, sizeof(float) * (size_t)info.n_vocab, (size_t)c, fl) != (size_t)c)) {
            cli_error(CMD, "write failed: %s", strerror(errno));
            goto done;
        }
    }
    if (fh) {
        int bad = fclose(fh);
        fh = NULL;
        if (bad) {
            cli_error(CMD, "--hidden-out: write to '%s' failed", hidden_path);
            goto done;
        }
    }
    if (fl) {
        int bad = fclose(fl);
        fl = NULL;
        if (bad) {
            cli_error(CMD, "--logits-out: write to '%s' failed", logits_path);
            goto done;
        }
    }
    if (n_gen > 0) {
        gen = malloc((size_t)n_gen * sizeof *gen);
        comi_generate_params gp = comi_generate_default_params();
        gp.max_new_tokens = (int32_t)n_gen;
        gp.repetition_penalty = (float)penalty;
        gp.stop_at_eos = stop_eos;
        int32_t n_out = 0;
        if (!gen || comi_generate(ctx, sess, &gp, gen, &n_out)) {
            cli_error(CMD, "%s", gen ? comi_errmsg(ctx) : "out of memory");
            goto done;
        }
        cli_print_ids(gen, (size_t)n_out);
    }
    rc = 0;
done:
    if (fh) fclose(fh);
    if (fl) fclose(fl);
    free(hidden);
    free(logits);
    free(gen);
    free(ids);
    comi_session_free(sess);
    comi_model_free(model);
    comi_ctx_free(ctx);
    return rc;
}
