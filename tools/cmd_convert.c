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

static void usage(FILE *out) {
    fprintf(out,
        "usage: comi convert --checkpoint DIR --model BASE --out PREFIX [--type F16|Q8_0|Q4_K|F32]\n"
        "                    [--lora-alpha A] [--threads T]\n"
        "\n"
        "Reads the COMI checkpoint DIR (model.safetensors: encoder., decoder. with PEFT LoRA,\n"
        "memory_fusion_layer., semantic_alignment_layer., alpha/beta scalars) on its base\n"
        "model BASE (.gguf file or Hugging Face directory) and writes\n"
        "  PREFIX.encoder.gguf  PREFIX.decoder.gguf (LoRA merged)  [PREFIX.fusion.gguf]\n"
        "  PREFIX.comi.gguf     alpha/beta, layer counts, alignment layer\n"
        "Use them with: comi answer --checkpoint PREFIX --model BASE ...\n"
        "\n"
        "  --type T        weight matrices as F16 (default), Q8_0, Q4_K or F32; rows whose\n"
        "                  length the block size does not divide fall back to Q8_0 / F16\n"
        "  --lora-alpha A  LoRA alpha when DIR has no adapter_config.json (default 32)\n"
        "  -h, --help      this text\n");
}

int cmd_convert(int argc, char **argv) {
    const char *ckpt = NULL, *model = NULL, *out = NULL, *type = "F16", *v;
    double alpha = 0;
    int64_t threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--checkpoint")) {
            if (!(ckpt = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--model")) {
            if (!(model = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(out = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--type")) {
            if (!(type = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--lora-alpha")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_f64(CMD, a, v, &alpha)) return 1;
            if (!(alpha > 0) || !isfinite(alpha))
                return cli_error(CMD, "--lora-alpha: %s must be a number > 0", v);
        } else if (!strcmp(a, "--threads")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 0, 256, &threads))
                return 1;
        } else {
            cli_error(CMD, "unknown option '%s' (comi convert --help lists them)", a);
            return 2;
        }
    }
    if (!ckpt || !model || !out) {
        cli_error(CMD, "missing required option %s (comi convert --help)",
                  !ckpt ? "--checkpoint" : !model ? "--model" : "--out");
        return 2;
    }
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = (int32_t)threads;
    comi_ctx *ctx = comi_ctx_new(&cp);
    if (!ctx) return cli_error(CMD, "out of memory");
    char summary[1024];
    int rc = 0;
    if (comi_checkpoint_convert(ctx, ckpt, model, out, type, (float)alpha, summary,
                                sizeof summary) != COMI_OK)
        rc = cli_error(CMD, "%s", comi_errmsg(ctx));
    else
        printf("%s\n", summary);
    comi_ctx_free(ctx);
    return rc;
}
