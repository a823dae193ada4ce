/*
 * cmd_answer.c — `comi answer`: the soft pipeline from the command line
 * (encoder -> merge -> fusion -> decoder) over a context and a question;
 * prints the answer. The command form is fixed by DESIGN.md's command-line
 * contract. Uses only comi.h.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_answer(int argc, char **argv); /* the entry point tools/comi.c dispatches to */

static const char *const CMD = "answer";

static const char *const answer_usage =
    "usage: comi answer --model MODEL (--context TEXT | --context-file F) --question Q\n"
    "                   [--checkpoint DIR] [--encoder-layers K] [--merge-size M]\n"
    "                   [--segment-size N] [--max-new-tokens N] [--repetition-penalty P]\n"
    "                   [--memory-out MEM.f32] [--group-sizes-out S.i32]\n"
    "                   [--logits-out L.f32] [--print-ids] [--timings] [--threads T]\n"
    "                   [--max-context-tokens N] [--max-memory SIZE]\n";

static const char *const answer_about =
    "Answers Q from the context with COMI's soft pipeline: the encoder (the first K\n"
    "layers of the model + its final norm) reads [context segment ; question], the\n"
    "coarse-to-fine MIG merge turns each segment into ~n/M memory vectors, and the\n"
    "decoder answers greedily from [memory vectors ; question token embeddings].\n";

static const char *const answer_epilog =
    "The --max-memory estimate covers the encoder, merge and decoder.\n"
    "Prints the answer on one line. Exit status: 0 success; 1 bad input or failure\n"
    "(one line on stderr); 2 bad usage.\n";

int cmd_answer(int argc, char **argv) {
    const char *model = NULL, *ckpt = NULL, *tok = NULL, *context = NULL, *context_file = NULL,
               *question = NULL, *mem_out = NULL, *sizes_out = NULL, *logits_out = NULL;
    int64_t enc_layers = -1, merge_size = -1, seg = -1, max_new = -1, threads = 0;
    float pen = -1, lora_alpha = 0;
    float weights[4] = {1, 1, 1, 1};
    bool no_coarse = false, no_fine = false, no_cr = false, no_fr = false, print_ids = false,
         timings = false, per_occ = false;
    cli_limits lim = {0};
    cli_opt opts[] = {
        {CLI_O("--model", CLI_PATH, &model, "MODEL",
               "base model: a .gguf file or a Hugging Face directory;\n"
               "alone it is used training-free (encoder = its first K\n"
               "layers, decoder = itself, no fusion; loaded once)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--checkpoint", CLI_PATH, &ckpt, "DIR",
               "a COMI checkpoint (model.safetensors as the reference\n"
               "training saves it) or the PREFIX `comi convert` wrote;\n"
               "MODEL is then its base model (config, tokenizer)")},
        {CLI_O("--tokenizer", CLI_PATH, &tok, "T",
               "tokenizer from T (.gguf, HF directory, tokenizer.json)\ninstead of MODEL")},
        {CLI_O("--lora-alpha", CLI_F32, &lora_alpha, "A",
               "decoder LoRA alpha (scale A / r) when the checkpoint has\n"
               "no adapter_config.json (default 32, the reference's)"),
         .flags = CLI_GT, .lo = 0},
        {CLI_O("--context", CLI_STR, &context, "TEXT",
               "the context (an empty context answers from the question alone)")},
        {CLI_O("--context-file", CLI_FILE, &context_file, "F", "read the context from F (- : stdin)")},
        {CLI_O("--question", CLI_STR, &question, "Q", "the question (must not be empty)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--encoder-layers", CLI_I64, &enc_layers, "K",
               "encoder depth (default 8, at most the model's layers;\n"
               "a checkpoint: its encoder's)"),
         .ilo = 1, .ihi = 4096},
        {CLI_O("--merge-size", CLI_I64, &merge_size, "M",
               "compression rate: tokens per memory vector (default 16)"),
         .ilo = 1, .ihi = INT32_MAX},
        {CLI_O("--segment-size", CLI_I64, &seg, "N",
               "context tokens per encoded segment (default 10000)"),
         .ilo = 1, .ihi = INT32_MAX},
        {CLI_O("--max-new-tokens", CLI_I64, &max_new, "N", "at most N answer tokens (default 20)"),
         .ilo = 0, .ihi = 1000000},
        {CLI_O("--repetition-penalty", CLI_F32, &pen, "P",
               "on generated ids: positive logit / P, negative * P,\n"
               "once per id among the generated ids, as Hugging Face\n"
               "generate() does (default 1.3)"),
         .flags = CLI_GT, .lo = 0},
        {CLI_O("--penalty-once", CLI_CLEAR, &per_occ, NULL, "the default rule, spelled out")},
        {CLI_O("--penalty-per-occurrence", CLI_FLAG, &per_occ, NULL,
               "apply it once per earlier occurrence (compounding)")},
        {CLI_O("--alpha-select", CLI_F32, &weights[0], "A",
               "coarse MIG relevance weight (default 1, or the checkpoint's)")},
        {CLI_O("--beta-select", CLI_F32, &weights[1], "B", "coarse MIG redundancy weight")},
        {CLI_O("--alpha-merge", CLI_F32, &weights[2], "A", "fine MIG relevance weight")},
        {CLI_O("--beta-merge", CLI_F32, &weights[3], "B", "fine MIG redundancy weight")},
        {CLI_O("--no-coarse", CLI_FLAG, &no_coarse, NULL, "merge switch, as in comi merge")},
        {CLI_O("--no-fine", CLI_FLAG, &no_fine, NULL, "merge switch, as in comi merge")},
        {CLI_O("--no-coarse-redundancy", CLI_FLAG, &no_cr, NULL, "merge switch, as in comi merge")},
        {CLI_O("--no-fine-redundancy", CLI_FLAG, &no_fr, NULL, "merge switch, as in comi merge")},
        {CLI_O("--memory-out", CLI_PATH, &mem_out, "MEM.f32",
               "merged memory vectors (n_memory x d float32, before fusion)")},
        {CLI_O("--group-sizes-out", CLI_PATH, &sizes_out, "S.i32",
               "group sizes of every segment, concatenated (int32)")},
        {CLI_O("--logits-out", CLI_PATH, &logits_out, "L.f32",
               "decoder logits at the last input position (n_vocab float32)")},
        {CLI_O("--print-ids", CLI_FLAG, &print_ids, NULL, "add a line with the generated ids")},
        {CLI_O("--timings", CLI_FLAG, &timings, NULL, "per-stage milliseconds on stderr")},
        {CLI_O("--threads", CLI_I64, &threads, "T", "worker threads (default: all cores)"),
         .ilo = 0, .ihi = 256},
        CLI_LIMIT_OPTS(lim),
        CLI_KV_OPT(lim.kv_type),
    };
    cli_cmd spec = {.name = CMD, .usage = answer_usage, .about = answer_about,
                    .epilog = answer_epilog, .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    bool have_w[4];
    static const char *const wflags[4] = {"--alpha-select", "--beta-select", "--alpha-merge",
                                          "--beta-merge"};
    for (int j = 0; j < 4; j++)
        have_w[j] = cli_find(&spec, wflags[j])->seen > 0;
    if (!context && !context_file)
        return cli_usage(CMD, "missing required option --context or --context-file");
    if (context && context_file) return cli_usage(CMD, "give only one of --context and --context-file");
    char *ctx_text = NULL;
    if (context_file && !(ctx_text = cli_read_text(CMD, "--context-file", context_file))) return 1;

    comi_ctx *ctx = cli_ctx_new((int32_t)threads, &lim);
    if (!ctx) {
        free(ctx_text);
        return cli_error(CMD, "out of memory");
    }
    comi_pipeline_load_params lp = comi_pipeline_load_default_params();
    lp.model = model;
    lp.checkpoint = ckpt;
    lp.tokenizer = tok;
    lp.lora_alpha = lora_alpha;
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
    if (pen > 0) ap.repetition_penalty = pen;
    ap.penalty_per_occurrence = per_occ;
    float *wdst[4] = {&ap.merge.alpha_select, &ap.merge.beta_select, &ap.merge.alpha_merge,
                      &ap.merge.beta_merge};
    for (int j = 0; j < 4; j++)
        if (have_w[j]) *wdst[j] = weights[j];
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
    if (print_ids) cli_print_ids(r.ids, (size_t)r.n_ids);
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
