/*
 * cmd_convert.c — `comi convert`: turns a COMI checkpoint (model.safetensors
 * as the reference training saves it) plus its base model into GGUF files
 * the runtime maps directly, with the decoder's LoRA merged and optional
 * quantization (comi_checkpoint_convert). Uses only comi.h.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int cmd_convert(int argc, char **argv); /* the entry point tools/comi.c dispatches to */

static const char *const CMD = "convert";

static const char *const convert_usage =
    "usage: comi convert --checkpoint DIR --model BASE --out PREFIX [--type F16|Q8_0|Q4_K|F32]\n"
    "                    [--lora-alpha A] [--threads T]\n";

static const char *const convert_about =
    "Reads the COMI checkpoint DIR (model.safetensors: encoder., decoder. with PEFT LoRA,\n"
    "memory_fusion_layer., semantic_alignment_layer., alpha/beta scalars) on its base\n"
    "model BASE (.gguf file or Hugging Face directory) and writes\n"
    "  PREFIX.encoder.gguf  PREFIX.decoder.gguf (LoRA merged)  [PREFIX.fusion.gguf]\n"
    "  PREFIX.comi.gguf     alpha/beta, layer counts, alignment layer\n"
    "Use them with: comi answer --checkpoint PREFIX --model BASE ...\n";

int cmd_convert(int argc, char **argv) {
    const char *ckpt = NULL, *model = NULL, *out = NULL, *type = "F16";
    float alpha = 0;
    int64_t threads = 0;
    cli_opt opts[] = {
        {CLI_O("--checkpoint", CLI_PATH, &ckpt, "DIR", "the COMI checkpoint directory"),
         .flags = CLI_REQUIRED},
        {CLI_O("--model", CLI_PATH, &model, "BASE", "its base model (.gguf or HF directory)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--out", CLI_PATH, &out, "PREFIX", "prefix of the GGUF files written"),
         .flags = CLI_REQUIRED},
        {CLI_O("--type", CLI_STR, &type, "T",
               "weight matrices as F16 (default), Q8_0, Q4_K or F32; rows whose\n"
               "length the block size does not divide fall back to Q8_0 / F16")},
        {CLI_O("--lora-alpha", CLI_F32, &alpha, "A",
               "LoRA alpha when DIR has no adapter_config.json (default 32)"),
         .flags = CLI_GT, .lo = 0},
        {CLI_O("--threads", CLI_I64, &threads, "T", "worker threads (default: all cores)"),
         .ilo = 0, .ihi = 256},
    };
    cli_cmd spec = {.name = CMD, .usage = convert_usage, .about = convert_about, .opts = opts,
                    .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = (int32_t)threads;
    comi_ctx *ctx = comi_ctx_new(&cp);
    if (!ctx) return cli_error(CMD, "out of memory");
    char summary[1024];
    int rc = 0;
    if (comi_checkpoint_convert(ctx, ckpt, model, out, type, alpha, summary,
                                sizeof summary) != COMI_OK)
        rc = cli_error(CMD, "%s", comi_errmsg(ctx));
    else
        printf("%s\n", summary);
    comi_ctx_free(ctx);
    return rc;
}
