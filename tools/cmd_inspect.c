/*
 * cmd_inspect.c — `comi inspect`: loads a model (validating every tensor)
 * and prints its architecture, hyper-parameters, tensor types and shapes,
 * tokenizer and the memory a run needs. Uses only the public comi.h.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char *CMD = "inspect";

static const char *const inspect_usage = "usage: comi inspect MODEL [--tensors] [--ctx N]\n"
                                         "       comi inspect --model MODEL [--tensors] [--ctx N]\n";

static const char *const inspect_about =
    "Loads MODEL (a .gguf file or a Hugging Face directory), checks every tensor\n"
    "against the architecture, and prints the architecture, shapes, types,\n"
    "tokenizer and the memory needed.\n";

static double mib(uint64_t b) {
    return (double)b / (1024.0 * 1024.0);
}

int cmd_inspect(int argc, char **argv);
int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool list = false;
    int64_t n_ctx = 0;
    const char *model_opt = NULL;
    int32_t kv_type = COMI_KV_F32;
    cli_opt opts[] = {
        {CLI_O("--model", CLI_PATH, &model_opt, "MODEL", "the model (or give it as the argument)")},
        {CLI_O("--tensors", CLI_FLAG, &list, NULL,
               "list every tensor: name, type, shape (outermost first), bytes")},
        {CLI_O("--ctx", CLI_I64, &n_ctx, "N",
               "size the session memory estimate for N tokens (default: the\n"
               "trained context length, at most 32768)"),
         .ilo = 1, .ihi = (int64_t)1 << 31},
        CLI_KV_OPT(kv_type),
    };
    cli_cmd spec = {.name = CMD, .usage = inspect_usage, .about = inspect_about, .opts = opts,
                    .n_opts = CLI_N(opts), .pos = &path, .pos_meta = "MODEL"};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if (path && model_opt) return cli_usage(CMD, "give MODEL once (argument '%s', --model '%s')", path, model_opt);
    if (model_opt) path = model_opt;
    if (!path) return cli_usage(CMD, "missing MODEL");
    comi_ctx_params cp = comi_ctx_default_params();
    cp.kv_type = kv_type;
    comi_ctx *ctx = comi_ctx_new(&cp);
    if (!ctx) return cli_error(CMD, "out of memory");
    comi_model *m = NULL;
    if (comi_model_load(ctx, path, NULL, &m)) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        comi_ctx_free(ctx);
        return 1;
    }
    comi_model_info in;
    comi_model_get_info(m, &in);
    if (n_ctx == 0) n_ctx = in.n_ctx_train > 0 && in.n_ctx_train < 32768 ? in.n_ctx_train : 32768;
    printf("model:          %s\n", path);
    printf("format:         %s\n", in.format);
    printf("architecture:   %s\n", in.arch);
    printf("n_embd:         %d\n", in.n_embd);
    printf("n_layer:        %d\n", in.n_layer);
    printf("n_head:         %d (kv heads %d, head dim %d)\n", in.n_head, in.n_head_kv, in.head_dim);
    printf("n_ff:           %d\n", in.n_ff);
    printf("n_vocab:        %d\n", in.n_vocab);
    printf("n_ctx_train:    %d\n", in.n_ctx_train);
    printf("rope theta:     %g\n", (double)in.rope_theta);
    printf("rms norm eps:   %g\n", (double)in.norm_eps);
    printf("features:       %s embeddings%s%s%s\n", in.tied_embeddings ? "tied" : "separate output",
           in.qkv_bias ? ", q/k/v biases" : "", in.qk_norm ? ", q/k norm" : "",
           in.has_lora ? ", LoRA merged" : "");
    printf("weights:        %s (embedding %s), %lld parameters, %.2f MiB mapped\n",
           in.weight_type ? in.weight_type : "?", in.embd_type ? in.embd_type : "?",
           (long long)in.n_params, mib(in.weight_bytes));
    printf("bos / eos:      %d / %d\n", in.bos_id, in.eos_id);
    const comi_tokenizer *tok = comi_model_tokenizer(m);
    if (tok)
        printf("tokenizer:      %d tokens, bos %d, eos %d, adds bos: %s\n",
               comi_tokenizer_n_vocab(tok), comi_tokenizer_bos(tok), comi_tokenizer_eos(tok),
               comi_tokenizer_adds_bos(tok) ? "yes" : "no");
    else
        printf("tokenizer:      none\n");
    int64_t nt = comi_model_n_tensors(m);
    /* count tensors per type */
    const char *names[16] = {0};
    int64_t counts[16] = {0};
    int n_types = 0;
    for (int64_t i = 0; i < nt; i++) {
        comi_tensor_info ti;
        if (!comi_model_tensor_info(m, i, &ti)) continue;
        int k = 0;
        while (k < n_types && strcmp(names[k], ti.type) != 0)
            k++;
        if (k == n_types && n_types < 16) names[n_types++] = ti.type;
        if (k < n_types) counts[k]++;
    }
    printf("tensors:        %lld (", (long long)nt);
    for (int k = 0; k < n_types; k++)
        printf(k ? ", %s x%lld" : "%s x%lld", names[k], (long long)counts[k]);
    printf(")\n");
    uint64_t sb = comi_session_bytes(ctx, m, n_ctx);
    printf("memory:         %.2f MiB weights (mmapped) + %.2f MiB per session of %lld tokens "
           "(%s KV cache)\n",
           mib(in.weight_bytes), mib(sb), (long long)n_ctx, kv_type == COMI_KV_F16 ? "f16" : "f32");
    if (list) {
        for (int64_t i = 0; i < nt; i++) {
            comi_tensor_info ti;
            if (!comi_model_tensor_info(m, i, &ti)) continue;
            printf("  %-48s %-5s [", ti.name, ti.type);
            for (int32_t d = 0; d < ti.n_dims; d++)
                printf(d ? ", %lld" : "%lld", (long long)ti.shape[d]);
            printf("] %llu bytes\n", (unsigned long long)ti.nbytes);
        }
    }
    comi_model_free(m);
    comi_ctx_free(ctx);
    return 0;
}
