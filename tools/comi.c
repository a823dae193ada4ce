/*
 * comi.c — the `comi` command-line tool: dispatches to one subcommand.
 * Each subcommand lives in tools/cmd_<name>.c and uses only comi.h.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* Subcommand entry points (tools/cmd_*.c). */
int cmd_version(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_answer(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_compress(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_train(int argc, char **argv);

typedef struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} command;

/* One row per subcommand; keep in the order `comi --help` lists them. */
static const command commands[] = {
    {"forward", cmd_forward, "run a model over token ids: hidden states, logits, greedy ids"},
    {"inspect", cmd_inspect, "print a model's architecture, tensors and memory needs"},
    {"generate", cmd_generate, "continue a prompt or answer a chat message with a model"},
    {"tokenize", cmd_tokenize, "text -> token ids with a model's tokenizer (and back with --ids)"},
    {"compress", cmd_compress, "compress a context for a question (text mode)"},
    {"eval", cmd_eval, "evaluate compression on a COMI JSONL data set"},
    {"version", cmd_version, "print the library version"},
    {"convert", cmd_convert, "convert a COMI checkpoint to GGUF files (LoRA merged, quantized)"},
    {"answer", cmd_answer, "answer a question from a context (encoder -> merge -> decoder)"},
    {"merge", cmd_merge, "merge hidden states into memory vectors (coarse + fine MIG)"},
    {"serve", cmd_serve, "run the HTTP service (compression API, metrics)"},
    {"train", cmd_train, "fine-tune a COMI compressor (encoder, fusion, decoder LoRA) on CPU"},
};

static void usage(FILE *out) {
    fprintf(out,
            "comi %s — coarse-to-fine context compression by Marginal Information Gain\n"
            "\n"
            "usage: comi <command> [options]      comi <command> --help for details\n"
            "\n"
            "commands:\n",
            comi_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int cmd_version(int argc, char **argv) {
    cli_cmd spec = {.name = "version", .usage = "usage: comi version\n",
                    .about = "Prints the library version.\n"};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    printf("comi %s\n", comi_version());
    return 0;
}

int main(int argc, char **argv) {
    enum { N = sizeof commands / sizeof commands[0] };
    if (argc < 2) {
        fprintf(stderr, "comi: missing command (comi --help lists them)\n");
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || (!strcmp(name, "help") && argc == 2)) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) return cmd_version(argc - 1, argv + 1);
    if (!strcmp(name, "help")) { /* comi help CMD = comi CMD --help */
        char *help_argv[] = {argv[2], "--help", NULL};
        for (size_t i = 0; i < N; i++)
            if (!strcmp(argv[2], commands[i].name)) return commands[i].fn(2, help_argv);
        name = argv[2];
    } else {
        for (size_t i = 0; i < N; i++)
            if (!strcmp(name, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    }
    const char *names[N];
    for (size_t i = 0; i < N; i++)
        names[i] = commands[i].name;
    const char *s = cli_suggest(name, names, N);
    if (s) fprintf(stderr, "comi: unknown command '%s'; did you mean %s? (comi --help)\n", name, s);
    else fprintf(stderr, "comi: unknown command '%s' (comi --help lists them)\n", name);
    return CLI_EXIT_USAGE;
}
