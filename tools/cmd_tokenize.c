/*
 * cmd_tokenize.c — `comi tokenize`: text -> token ids (stage 1, the
 * tokenizer) with a model's own tokenizer, and ids -> text with --ids.
 * Uses only the public comi.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "tokenize";

static const char *const tokenize_usage =
    "usage: comi tokenize --model MODEL [--no-bos] [--eos] [--parse-special]\n"
    "                     (--text T | --file F)\n"
    "       comi tokenize --model MODEL [--skip-special] (--ids \"ID ID ...\" | --ids-file F)\n";

static const char *const tokenize_about =
    "Prints the token ids of the text on one line, space-separated. MODEL is a .gguf\n"
    "file (full model or vocabulary only), a Hugging Face directory with\n"
    "tokenizer.json, or a tokenizer.json file. The text is taken byte for byte (no\n"
    "escape processing) and must be valid UTF-8; special-token text such as\n"
    "\"<|im_start|>\" is tokenized as plain text. BOS is added when the model's\n"
    "metadata says so. A file argument of - reads standard input.\n";

/* Parses ids separated by spaces, commas or newlines. */
static bool parse_id_list(const char *flag, const char *s, size_t len, int32_t **ids, size_t *n) {
    int32_t *v = malloc((len / 2 + 1) * sizeof *v);
    if (!v) {
        cli_error(CMD, "%s: out of memory", flag);
        return false;
    }
    size_t k = 0, i = 0;
    while (i < len) {
        char c = s[i];
        if (c == ' ' || c == ',' || c == '\n' || c == '\r' || c == '\t') {
            i++;
            continue;
        }
        size_t j = i;
        if (s[j] == '-') j++;
        long long x = 0;
        size_t digits = 0;
        while (j < len && s[j] >= '0' && s[j] <= '9' && x <= INT32_MAX) {
            x = x * 10 + (s[j] - '0');
            j++;
            digits++;
        }
        bool sep =
            j == len || s[j] == ' ' || s[j] == ',' || s[j] == '\n' || s[j] == '\r' || s[j] == '\t';
        if (!digits || !sep || x > INT32_MAX) {
            size_t w = j - i < 20 ? j - i + 1 : 20;
            cli_error(CMD, "%s: '%.*s' is not a token id", flag, (int)(i + w > len ? len - i : w),
                      s + i);
            free(v);
            return false;
        }
        v[k++] = (int32_t)(s[i] == '-' ? -x : x);
        i = j;
    }
    *ids = v;
    *n = k;
    return true;
}

int cmd_tokenize(int argc, char **argv);
int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL, *ids_arg = NULL, *ids_file = NULL;
    bool no_bos = false, eos = false, parse_special = false, skip_special = false;
    cli_opt opts[] = {
        {CLI_O("--model", CLI_PATH, &model, "MODEL",
               ".gguf, HF directory with tokenizer.json, or tokenizer.json"),
         .flags = CLI_REQUIRED},
        {CLI_O("--text", CLI_STR, &text, "T", "the text to tokenize")},
        {CLI_O("--file", CLI_FILE, &file, "F", "tokenize the whole content of file F")},
        {CLI_O("--no-bos", CLI_FLAG, &no_bos, NULL, "never add BOS")},
        {CLI_O("--eos", CLI_FLAG, &eos, NULL, "append EOS")},
        {CLI_O("--parse-special", CLI_FLAG, &parse_special, NULL,
               "recognise control-token text as the control token")},
        {CLI_O("--ids", CLI_STR, &ids_arg, "LIST",
               "decode: print the text of these ids (space- or\n"
               "comma-separated), exactly, with no newline added")},
        {CLI_O("--ids-file", CLI_FILE, &ids_file, "F", "decode the ids in file F")},
        {CLI_O("--skip-special", CLI_FLAG, &skip_special, NULL,
               "when decoding, drop control tokens (BOS, EOS, ...)")},
    };
    cli_cmd spec = {.name = CMD, .usage = tokenize_usage, .about = tokenize_about, .opts = opts,
                    .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    int inputs = (text != NULL) + (file != NULL) + (ids_arg != NULL) + (ids_file != NULL);
    if (inputs == 0)
        return cli_usage(CMD, "give the input with --text, --file, --ids or --ids-file");
    if (inputs > 1) return cli_usage(CMD, "give only one of --text, --file, --ids, --ids-file");

    char *buf = NULL;
    size_t len = 0;
    if (file && !(buf = cli_read_file(CMD, "--file", file, &len))) return 1;
    if (ids_file && !(buf = cli_read_file(CMD, "--ids-file", ids_file, &len))) return 1;
    int32_t *in_ids = NULL;
    size_t n_in = 0;
    if (ids_arg && !parse_id_list("--ids", ids_arg, strlen(ids_arg), &in_ids, &n_in)) return 1;
    if (ids_file && !parse_id_list("--ids-file", buf, len, &in_ids, &n_in)) {
        free(buf);
        return 1;
    }

    int rc = 1;
    comi_ctx *ctx = comi_ctx_new(NULL);
    comi_tokenizer *tok = NULL;
    if (!ctx) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    if (comi_tokenizer_load(ctx, model, &tok)) {
        cli_error(CMD, "%s", comi_errmsg(ctx));
        goto done;
    }
    if (ids_arg || ids_file) {
        char *out = NULL;
        size_t out_len = 0;
        if (comi_detokenize(ctx, tok, in_ids, n_in, skip_special, &out, &out_len)) {
            cli_error(CMD, "%s", comi_errmsg(ctx));
            goto done;
        }
        fwrite(out, 1, out_len, stdout);
        comi_free(out);
    } else {
        comi_tokenize_params p = comi_tokenize_default_params();
        if (no_bos) p.add_bos = 0;
        if (eos) p.add_eos = 1;
        p.parse_special = parse_special;
        int32_t *ids = NULL;
        size_t n = 0;
        const char *src = text ? text : buf;
        size_t src_len = text ? strlen(text) : len;
        if (comi_tokenize(ctx, tok, src, src_len, &p, &ids, &n)) {
            cli_error(CMD, "%s", comi_errmsg(ctx));
            goto done;
        }
        cli_print_ids(ids, n);
        comi_free(ids);
    }
    if (fflush(stdout) != 0) {
        cli_error(CMD, "cannot write the output: %s", strerror(errno));
        goto done;
    }
    rc = 0;
done:
    comi_tokenizer_free(tok);
    comi_ctx_free(ctx);
    free(in_ids);
    free(buf);
    return rc;
}
