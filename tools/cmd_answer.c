/*
 * cmd_answer.c — `comi answer`: the soft pipeline from the command line
 * (encoder -> merge -> fusion -> decoder) over a context and a question;
 * prints the answer. The command form is fixed by DESIGN.md's command-line
 * contract. Uses only comi.h.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_answer(int argc, char **argv); /* the entry point tools/comi.c dispatches to */

static const char *const CMD = "answer";

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: comi answer --model MODEL (--context TEXT | --context-file F) --question Q\n"
        "                   [--checkpoint DIR] [--encoder-layers K] [--merge-size M]\n"
        "                   [--segment-size N] [--max-new-tokens N] [--repetition-penalty P]\n"
        "                   [--memory-out MEM.f32] [--group-sizes-out S.i32]\n"
        "                   [--logits-out L.f32] [--print-ids] [--timings] [--threads T]\n"
        "                   [--max-context-tokens N] [--max-memory SIZE]\n"
        "\n"
        "Answers Q from the context with COMI's soft pipeline: the encoder (the first K\n"
        "layers of the model + its final norm) reads [context segment ; question], the\n"
        "coarse-to-fine MIG merge turns each segment into ~n/M memory vectors, and the\n"
        "decoder answers greedily from [memory vectors ; question token embeddings].\n"
        "\n"
        "  --model MODEL            base model: a .gguf file or a Hugging Face directory;\n"
        "                           alone it is used training-free (encoder = its first K\n"
        "                           layers, decoder = itself, no fusion; loaded once)\n"
        "  --checkpoint DIR         a COMI checkpoint (model.safetensors as the reference\n"
        "                           training saves it) or the PREFIX `comi convert` wrote;\n"
        "                           MODEL is then its base model (config, tokenizer)\n"
        "  --tokenizer T            tokenizer from T (.gguf, HF directory, tokenizer.json)\n"
        "                           instead of MODEL\n"
        "  --lora-alpha A           decoder LoRA alpha (scale A / r) when the checkpoint has\n"
        "                           no adapter_config.json (default 32, the reference's)\n"
        "  --context TEXT           the context; --context-file F reads it from F\n"
        "                           (an empty context answers from the question alone)\n"
        "  --question Q             the question (must not be empty)\n"
        "  --encoder-layers K       encoder depth (default 8, at most the model's layers;\n"
        "                           a checkpoint: its encoder's)\n"
        "  --merge-size M           compression rate: tokens per memory vector (default 16)\n"
        "  --segment-size N         context tokens per encoded segment (default 10000)\n"
        "  --max-new-tokens N       at most N answer tokens (default 20)\n"
        "  --repetition-penalty P   on generated ids: positive logit / P, negative * P,\n"
        "                           once per id among the generated ids, as Hugging Face\n"
        "                           generate() does (default 1.3)\n"
        "  --penalty-once           the default rule, spelled out\n"
        "  --penalty-per-occurrence apply it once per earlier occurrence (compounding)\n"
        "  --alpha-select A  --beta-select B  --alpha-merge A  --beta-merge B\n"
        "                           MIG weights (default 1, or the checkpoint's)\n"
        "  --no-coarse  --no-fine  --no-coarse-redundancy  --no-fine-redundancy\n"
        "                           merge switches, as in comi merge\n"
        "  --memory-out MEM.f32     merged memory vectors (n_memory x d float32, before fusion)\n"
        "  --group-sizes-out S.i32  group sizes of every segment, concatenated (int32)\n"
        "  --logits-out L.f32       decoder logits at the last input position (n_vocab float32)\n"
        "  --print-ids              add a line with the generated ids\n"
        "  --timings                per-stage milliseconds on stderr\n"
        "  --threads T              worker threads (default: all cores)\n" CLI_LIMITS_HELP
        "                           (the estimate covers the encoder, merge and decoder)\n"
        "  -h, --help               this text\n"
        "\n"
        "Prints the answer on one line. Exit status: 0 success; 1 bad input or failure\n"
        "(one line on stderr); 2 bad usage.\n");
}

static char *read_text(const char *path) {
    size_t len;
    char *buf = cli_read_file(CMD, "--context-file", path, &len);
    if (!buf) return NULL;
    if (strlen(buf) != len) {
        free(buf);
        cli_error(CMD, "--context-file: '%s' contains a NUL byte", path);
        return NULL;
    }
    return buf;
}

int cmd_answer(int argc, char **argv) {
    const char *model = NULL, *ckpt = NULL, *tok = NULL, *context = NULL, *context_file = NULL,
               *question = NULL, *mem_out = NULL, *sizes_out = NULL, *logits_out = NULL, *v;
    int64_t enc_layers = -1, merge_size = -1, seg = -1, max_new = -1, threads = 0;
    double pen = -1, lora_alpha = 0, x;
    double weights[4];
    bool have_w[4] = {false, false, false, false};
    bool no_coarse = false, no_fine = false, no_cr = false, no_fr = false, print_ids = false,
         timings = false, per_occ = false;
    static const char *const wflags[4] = {"--alpha-select", "--beta-select", "--alpha-merge",
                                          "--beta-merge"};
    cli_limits lim = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int w = -1;
        int lf = cli_limit_flag(CMD, argc, argv, &i, &lim);
        if (lf < 0) return 1;
        if (lf > 0) continue;
        for (int j = 0; j < 4; j++)
            if (!strcmp(a, wflags[j])) w = j;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (w >= 0) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_f64(CMD, a, v, &x)) return 1;
            if (!isfinite((float)x)) return cli_error(CMD, "%s: %s overflows float32", a, v);
            weights[w] = x;
            have_w[w] = true;
        } else if (!strcmp(a, "--model")) {
            if (!(model = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--checkpoint")) {
            if (!(ckpt = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(tok = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--context")) {
            if (!(context = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--context-file")) {
            if (!(context_file = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--question")) {
            if (!(question = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--memory-out")) {
            if (!(mem_out = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--group-sizes-out")) {
            if (!(sizes_out = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--logits-out")) {
            if (!(logits_out = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--encoder-layers")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 1, 4096, &enc_layers))
                return 1;
        } else if (!strcmp(a, "--merge-size")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 1, INT32_MAX, &merge_size))
                return 1;
        } else if (!strcmp(a, "--segment-size")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 1, INT32_MAX, &seg))
                return 1;
        } else if (!strcmp(a, "--max-new-tokens")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 0, 1000000, &max_new))
                return 1;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 0, 256, &threads))
                return 1;
        } else if (!strcmp(a, "--repetition-penalty")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_f64(CMD, a, v, &pen)) return 1;
            if (!(pen > 0) || !isfinite((float)pen))
                return cli_error(CMD, "--repetition-penalty: %s must be a number > 0", v);
        } else if (!strcmp(a, "--lora-alpha")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_f64(CMD, a, v, &lora_alpha))
                return 1;
            if (!(lora_alpha > 0) || !isfinite((float)lora_alpha))
                return cli_error(CMD, "--lora-alpha: %s must be a number > 0", v);
        } else if (!strcmp(a, "--no-coarse")) {
            no_coarse = true;
        } else if (!strcmp(a, "--no-fine")) {
            no_fine = true;
        } else if (!strcmp(a, "--no-coarse-redundancy")) {
            no_cr = true;
        } else if (!strcmp(a, "--no-fine-redundancy")) {
            no_fr = true;
        } else if (!strcmp(a, "--print-ids")) {
            print_ids = true;
        } else if (!strcmp(a, "--timings")) {
            timings = true;
        } else if (!strcmp(a, "--penalty-per-occurrence")) {
            per_occ = true;
        } else if (!strcmp(a, "--penalty-once")) {
            per_occ = false;
        } else {
            cli_error(CMD, "unknown option '%s' (comi answer --help lists them)", a);
            return 2;
        }
    }
    if (!model || !question || (!context && !context_file)) {
        cli_error(CMD, "missing required option %s (comi answer --help)",
                  !model ? "--model" : !question ? "--question" : "--context or --context-file");
        return 2;
    }
    if (context && context_file) {
        cli_error(CMD, "give only one of --context and --context-file");
        return 2;
    }
    char *ctx_text = NULL;
    if (context_file && !(ctx_text = read_text(context_file))) return 1;

    comi_ctx *ctx = cli_ctx_new((int32_t)threads, &lim);
    if (!ctx) {
        free(ctx_text);
        return cli_error(CMD, "out of memory");
    }
    comi_pipeline_load_params lp = comi_pipeline_load_default_params();
    lp.model = model;
    lp.checkpoint = ckpt;
    lp.tokenizer = tok;
    lp.lora_alpha = (float)lora_alpha;
    comi_pipeline *pl = NULL;
    comi_answer_result r;
    memset(&r, 0, sizeof r);
    int rc = 1;
    if (comi_pipeline_load(ctx, &lp, &pl) != COMI_OK) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    comi_answer_params ap = comi_pipeline_answer_params(pl);
    if (enc_layers > 0) ap.encoder_layers = (int32_t)enc_layers;
    if (merge_size > 0) ap.merge.merge_size = merge_size;
    if (seg > 0) ap.segment_size = seg;
    if (max_new >= 0) ap.max_new_tokens = (int32_t)max_new;
    if (pen > 0) ap.repetition_penalty = (float)pen;
    ap.penalty_per_occurrence = per_occ;
    float *wdst[4] = {&ap.merge.alpha_select, &ap.merge.beta_select, &ap.merge.alpha_merge,
                      &ap.merge.beta_merge};
    for (int j = 0; j < 4; j++)
        if (have_w[j]) *wdst[j] = (float)weights[j];
    if (no_coarse) ap.merge.coarse = false;
    if (no_fine) ap.merge.fine = false;
    if (no_cr) ap.merge.coarse_redundancy = false;
    if (no_fr) ap.merge.fine_redundancy = false;
    ap.keep_logits = logits_out != NULL;
    if (comi_pipeline_answer(ctx, pl, ctx_text ? ctx_text : context, question, &ap, &r) != COMI_OK) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    if (r.empty_context)
        fprintf(stderr, "comi answer: note: the context is empty; answering from the question "
                        "alone\n");
    if (mem_out && !cli_write_bytes(CMD, mem_out, r.memory,
                                    (size_t)(r.n_memory * r.d_model) * sizeof(float)))
        goto done;
    if (sizes_out &&
        !cli_write_bytes(CMD, sizes_out, r.group_sizes, (size_t)r.n_groups * sizeof(int32_t)))
        goto done;
    if (logits_out &&
        !cli_write_bytes(CMD, logits_out, r.logits, (size_t)r.n_vocab * sizeof(float)))
        goto done;
    printf("%s\n", r.text ? r.text : "");
    if (print_ids) {
        for (int32_t i = 0; i < r.n_ids; i++) printf(i ? " %d" : "%d", r.ids[i]);
        printf("\n");
    }
    if (timings)
        fprintf(stderr,
                "comi answer: %lld context + %lld question tokens, %lld segment(s), %lld memory "
                "vectors (%.1fx), encoder layers %d\n"
                "comi answer: ms: tokenize %.2f, encode %.2f, merge %.2f, fuse %.2f, prefill "
                "%.2f, generate %.2f, total %.2f\n",
                (long long)r.n_context_tokens, (long long)r.n_question_tokens,
                (long long)r.n_segments, (long long)r.n_memory,
                r.n_memory ? (double)r.n_context_tokens / (double)r.n_memory : 0.0,
                (int)r.encoder_layers, r.ms_tokenize, r.ms_encode, r.ms_merge, r.ms_fuse,
                r.ms_prefill, r.ms_generate, r.ms_total);
    rc = fflush(stdout) == 0 ? 0 : cli_error(CMD, "cannot write the answer");
done:
    comi_answer_result_free(&r);
    comi_pipeline_free(pl);
    comi_ctx_free(ctx);
    free(ctx_text);
    return rc;
}
