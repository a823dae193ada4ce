/*
 * cli.h — shared pieces of the `comi` command-line tool: the subcommand
 * entry points and argument helpers. Tools use only the public comi.h.
 */
#ifndef COMI_CLI_H
#define COMI_CLI_H

#include "comi.h"
#include "opt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each subcommand: argv[0] is the subcommand name. Returns the exit status:
 * 0 success, 2 usage error (cli_parse, cli_usage), 1 any other failure. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* Prints "comi <cmd>: <message>" on one line to stderr and returns 1 (a
 * failure that is not a usage error; those go through cli_usage). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The context limits every command that reads a context takes. */
typedef struct cli_limits {
    int64_t max_context_tokens; /* --max-context-tokens N (0: none) */
    uint64_t max_bytes;         /* --max-memory SIZE (0: physical memory) */
    int32_t kv_type;            /* --kv-type (CLI_KV_OPT; COMI_KV_F32 when absent) */
} cli_limits;

/* The two option-table rows of the limits, writing into lim (a cli_limits). */
#define CLI_LIMIT_OPTS(lim)                                                                        \
    {CLI_O("--max-context-tokens", CLI_I64, &(lim).max_context_tokens, "N",                        \
           "refuse a context of more than N tokens (default 0: no\n"                               \
           "limit; text mode counts words)"),                                                      \
     .ilo = 0, .ihi = INT64_MAX},                                                                  \
    {                                                                                              \
        CLI_O("--max-memory", CLI_SIZE, &(lim).max_bytes, "SIZE",                                  \
              "refuse work whose buffers would need more than SIZE bytes\n"                        \
              "(suffixes K, M, G, T = KiB...TiB, kB, MB, GB = powers of\n"                         \
              "1000; default 0: physical memory)")                                                 \
    }

/* --kv-type f32|f16 (CLI_FN parser): *(int32_t *)target = COMI_KV_F32 / F16. */
bool cli_parse_kv_type(const char *value, void *target, char *err, size_t errsz);

/* The option-table row of --kv-type, writing into kv (an int32_t). */
#define CLI_KV_OPT(kv)                                                                             \
    {                                                                                              \
        CLI_O("--kv-type", CLI_FN, &(kv), "f32|f16",                                               \
              "KV cache element type: f32 (default) or f16 (half the\n"                            \
              "cache memory; keys and values rounded to half precision)"),                         \
            .fn = cli_parse_kv_type                                                                \
    }

/* A context with n_threads kernel threads (<= 0: all cores) and the
 * limits; NULL when memory is exhausted. */
comi_ctx *cli_ctx_new(int32_t n_threads, const cli_limits *lim);

/* Reads a whole file of raw little-endian float32 values (path `-`:
 * standard input). On success
 * *data (free with free()) and *count. Prints an error and returns false on
 * failure (missing file, size not a multiple of 4). */
bool cli_read_f32(const char *cmd, const char *flag, const char *path, float **data,
                  size_t *count);

/* Reads a whole file (a pipe too; path `-`: standard input) into a malloc'ed buffer with a NUL after
 * its *len bytes. Prints "FLAG: cannot open/read 'PATH'" and returns NULL on
 * failure. */
char *cli_read_file(const char *cmd, const char *flag, const char *path, size_t *len);

/* cli_read_file for text: also refuses a NUL byte (one error line naming
 * flag and path). Free with free(). */
char *cli_read_text(const char *cmd, const char *flag, const char *path);

/* Writes raw little-endian arrays; prints an error and returns false. */
bool cli_write_bytes(const char *cmd, const char *path, const void *data, size_t bytes);

/* Is stderr a terminal (for progress output)? */
bool cli_stderr_is_tty(void);

/* Prints n token ids on one line of stdout, space-separated (the contract's
 * id line of tokenize, forward --generate, answer/generate --print-ids). */
void cli_print_ids(const int32_t *ids, size_t n);

/* `--set KEY=VALUE` of compress and eval (a cli_opt CLI_FN; target is a
 * comi_text_params): any knob comi_text_set_param knows; VALUE a number,
 * or auto/on/off for summary, true/false for the flags; unit=NAME as
 * cli_set_text_unit. */
bool cli_set_text_knob(const char *kv, void *target, char *err, size_t errsz);

/* `--unit NAME` (a cli_opt CLI_FN; target is a comi_text_params):
 * comi_text_set_unit's names (sentence, clause, word, readable). */
bool cli_set_text_unit(const char *name, void *target, char *err, size_t errsz);

#endif /* COMI_CLI_H */
