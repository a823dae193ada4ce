/*
 * cmd_generate.c — `comi generate`: greedy text continuation with a model,
 * optionally as a chat turn laid out by the model's own chat template
 * (comi_chat_tokenize). Uses only the public comi.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "generate";

static const char *const generate_usage =
    "usage: comi generate --model MODEL (--prompt P | --prompt-file F) [--chat]\n"
    "                     [--system S] [--max-new-tokens N] [--print-ids]\n"
    "                     [--repetition-penalty P] [--parse-special] [--threads T]\n";

static const char *const generate_about =
    "Prints the model's greedy continuation of the prompt (the generated text only,\n"
    "special tokens left out, then a newline). Generation stops at the model's end\n"
    "of turn / end of text token (e.g. <|im_end|>) or after N tokens. With --chat\n"
    "the prompt is a user message laid out by the model's own chat template (with\n"
    "its default system message unless --system is given), and the assistant's\n"
    "turn is opened.\n";

int cmd_generate(int argc, char **argv);
int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *prompt_file = NULL, *system = NULL;
    bool chat = false, print_ids = false, parse_special = false;
    int64_t max_new = 128, threads = 0;
    double penalty = 1.0;
    cli_limits lim = {0};
    cli_opt opts[] = {
        {CLI_O("--model", CLI_PATH, &model, "MODEL", "a .gguf file or a Hugging Face directory"),
         .flags = CLI_REQUIRED},
        {CLI_O("--prompt", CLI_STR, &prompt, "P", "the prompt text")},
        {CLI_O("--prompt-file", CLI_FILE, &prompt_file, "F", "the prompt is the content of file F")},
        {CLI_O("--chat", CLI_FLAG, &chat, NULL,
               "wrap the prompt as a user message in the model's own\nchat template")},
        {CLI_O("--system", CLI_STR, &system, "S", "the system message (needs --chat)")},
        {CLI_O("--max-new-tokens", CLI_I64, &max_new, "N",
               "generate at most N tokens (default 128)"),
         .ilo = 1, .ihi = 1 << 20},
        {CLI_O("--print-ids", CLI_FLAG, &print_ids, NULL, "add a line with the generated ids")},
        {CLI_O("--repetition-penalty", CLI_F64, &penalty, "P",
               "Hugging Face repetition penalty (default 1: off)"),
         .flags = CLI_GT, .lo = 0},
        {CLI_O("--parse-special", CLI_FLAG, &parse_special, NULL,
               "without --chat: read special-token text such as\n<|im_start|> in the prompt as "
               "those tokens")},
        {CLI_O("--threads", CLI_I64, &threads, "T", "kernel threads (default: all cores)"),
         .ilo = 1, .ihi = 1024},
        CLI_LIMIT_OPTS(lim),
        CLI_KV_OPT(lim.kv_type),
    };
    cli_cmd spec = {.name = CMD, .usage = generate_usage, .about = generate_about, .opts = opts,
                    .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if ((prompt != NULL) == (prompt_file != NULL))
        return cli_usage(CMD, "give the prompt with exactly one of --prompt and --prompt-file");
    if (system && !chat) return cli_usage(CMD, "--system needs --chat");

    int rc = 1;
    char *buf = NULL;
    size_t len = 0;
    comi_ctx *ctx = NULL;
    comi_model *m = NULL;
    comi_session *s = NULL;
    int32_t *ids = NULL, *out = NULL;
    size_t n_ids = 0;
    if (prompt_file && !(buf = cli_read_file(CMD, "--prompt-file", prompt_file, &len))) goto done;
    const char *text = prompt ? prompt : buf;
    if (prompt) len = strlen(prompt);
    if (!(ctx = cli_ctx_new((int32_t)threads, &lim))) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    if (comi_model_load(ctx, model, NULL, &m)) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    const comi_tokenizer *tok = comi_model_tokenizer(m);
    if (!tok) {
        cli_error(CMD, "%s: the model has no tokenizer", model);
        goto done;
    }
    if (memchr(text, '\0', len)) {
        cli_error(CMD, "the prompt contains a NUL byte");
        goto done;
    }
    if (chat) {
        comi_chat_message msgs[2];
        size_t nm = 0;
        if (system) msgs[nm++] = (comi_chat_message){"system", system};
        msgs[nm++] = (comi_chat_message){"user", text};
        if (comi_chat_tokenize(ctx, tok, NULL, msgs, nm, true, &ids, &n_ids)) {
            cli_error(CMD, "%s", comi_errmsg(ctx));
            goto done;
        }
    } else {
        comi_tokenize_params tp = comi_tokenize_default_params();
        tp.parse_special = parse_special;
        if (comi_tokenize(ctx, tok, text, len, &tp, &ids, &n_ids)) {
            cli_error(CMD, "%s", comi_errmsg(ctx));
            goto done;
        }
    }
    if (n_ids == 0) {
        cli_error(CMD, "the prompt is empty (no tokens)");
        goto done;
    }
    if (comi_session_new(ctx, m, (int64_t)n_ids + max_new, &s) ||
        comi_session_eval(ctx, s, ids, NULL, (int64_t)n_ids, NULL)) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    comi_generate_params gp = comi_generate_default_params();
    gp.max_new_tokens = (int32_t)max_new;
    gp.repetition_penalty = (float)penalty;
    gp.stop_at_eos = true;
    if (!(out = malloc((size_t)max_new * sizeof *out))) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    int32_t n_out = 0;
    if (comi_generate(ctx, s, &gp, out, &n_out)) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    char *gen = NULL;
    size_t gl = 0;
    if (comi_detokenize(ctx, tok, out, (size_t)n_out, true, &gen, &gl)) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    fwrite(gen, 1, gl, stdout);
    printf("\n");
    comi_free(gen);
    if (print_ids) cli_print_ids(out, (size_t)n_out);
    if (fflush(stdout) != 0) {
        cli_error(CMD, "cannot write the output: %s", strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(out);
    comi_free(ids);
    comi_session_free(s);
    comi_model_free(m);
    comi_ctx_free(ctx);
    free(buf);
    return rc;
}
