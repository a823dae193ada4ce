/*
 * opt.h — the option parser every `comi` command shares (after llama.cpp's
 * common/arg.cpp): each command declares its options once, in a table of
 * cli_opt (name, value kind, target, help), and the same table parses argv
 * and prints `--help`.
 *
 * Rules, the same in every command:
 *   --name VALUE and --name=VALUE; a flag takes no value (--flag=x is an
 *   error); -h and --help print the help on stdout and exit 0; `--` ends the
 *   options. A value is taken as given, even when it starts with '-'
 *   (--alpha -1). An option given twice keeps the last value.
 *   Every usage error (unknown option, missing or malformed value, value out
 *   of range, stray argument, missing required option, conflicting options)
 *   prints ONE line on stderr,
 *     comi CMD: WHAT (comi CMD --help)
 *   naming the option, and the command exits 2. An unknown option that is
 *   close to a known one (edit distance) gets "did you mean --xyz?".
 *   A CLI_FILE value of `-` means standard input; at most one option of a
 *   command may read it.
 */
#ifndef COMI_OPT_H
#define COMI_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The exit status of a usage error. */
#define CLI_EXIT_USAGE 2

typedef enum cli_kind {
    CLI_FLAG,  /* no value: *(bool *)target = true */
    CLI_CLEAR, /* no value: *(bool *)target = false (--no-xyz switches) */
    CLI_STR,   /* *(const char **)target = the value (any string) */
    CLI_FILE,  /* *(const char **)target = an input file path; `-` = stdin */
    CLI_PATH,  /* *(const char **)target = an output path or a model/dir path */
    CLI_I64,   /* *(int64_t *)target, an integer in [ilo, ihi] */
    CLI_I32,   /* *(int32_t *)target, an integer in [ilo, ihi] */
    CLI_F64,   /* *(double *)target, a finite number; range: see flags */
    CLI_F32,   /* *(float *)target, a number finite as float32; range: see flags */
    CLI_SIZE,  /* *(uint64_t *)target, bytes with an optional unit (cli_parse_size) */
    CLI_FN,    /* fn(value, target, err, errsz) parses the value */
} cli_kind;

enum {
    CLI_REQUIRED = 1u << 0, /* a usage error when absent */
    CLI_MIN = 1u << 1,      /* float kinds: value >= lo */
    CLI_GT = 1u << 2,       /* float kinds: value > lo (implies a lower bound) */
    CLI_MAX = 1u << 3,      /* float kinds: value <= hi */
    CLI_HIDDEN = 1u << 4,   /* parsed, not listed by --help (aliases kept for old forms) */
};

/* A value parser for CLI_FN: returns false with a message (no option
 * name, no newline) in err on a malformed value. */
typedef bool (*cli_value_fn)(const char *value, void *target, char *err, size_t errsz);

typedef struct cli_opt {
    const char *name;   /* "--ratio" */
    cli_kind kind;      /* what the value is */
    void *target;       /* where it goes (type by kind) */
    const char *meta;   /* the value's name in --help ("R"); NULL for flags */
    const char *help;   /* description; '\n' starts an indented continuation line */
    unsigned flags;     /* CLI_REQUIRED, CLI_MIN, CLI_GT, CLI_MAX, CLI_HIDDEN */
    int64_t ilo, ihi;   /* integer kinds: the range (both 0: the type's range) */
    double lo, hi;      /* float kinds: bounds selected by CLI_MIN/CLI_GT/CLI_MAX */
    cli_value_fn fn;    /* CLI_FN */
    const char *alias;  /* a second accepted name ("--ratios", "-q"), or NULL */
    int seen;           /* set by cli_parse: how many times it was given */
} cli_opt;

/* One command's interface. `usage` is the synopsis line(s) ("usage: comi
 * compress --question Q ...\n"), `about` the paragraph after it, `epilog`
 * what follows the option list (exit codes, notes); about and epilog may be
 * NULL. A command with a positional argument sets pos/pos_meta (one
 * argument at most; pos_required makes it a usage error to omit it). */
typedef struct cli_cmd {
    const char *name; /* "compress", "eval --task qa": used in messages */
    const char *usage;
    const char *about;
    const char *epilog;
    cli_opt *opts;
    size_t n_opts;
    const char **pos;
    const char *pos_meta;
    bool pos_required;
} cli_cmd;

/* The five fields every row sets, as designated initializers; add
 * .flags, .ilo/.ihi, .lo/.hi, .fn, .alias after it:
 *   {CLI_O("--ratio", CLI_F64, &ratio, "R", "ratio >= 1"), .flags = CLI_MIN, .lo = 1} */
#define CLI_O(name_, kind_, target_, meta_, help_)                                                 \
    .name = (name_), .kind = (kind_), .target = (target_), .meta = (meta_), .help = (help_)

#define CLI_N(a) (sizeof(a) / sizeof((a)[0]))

/* Parses argv[1..argc) (argv[0] is the command name) into the targets.
 * Returns -1 when the command should go on; otherwise the exit status to
 * return at once: 0 after printing --help, 2 after a usage error line. */
int cli_parse(cli_cmd *c, int argc, char **argv);

/* Prints the help of c (usage, about, the option table, epilog) to f. */
void cli_print_help(const cli_cmd *c, FILE *f);

/* Prints "comi CMD: MESSAGE (comi CMD --help)" on one line to stderr and
 * returns CLI_EXIT_USAGE: for usage errors a command finds after parsing
 * (conflicting or missing options). */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The option of c named name (NULL if none): to ask opt->seen. */
const cli_opt *cli_find(const cli_cmd *c, const char *name);

/* Parses a size in bytes (see cli_parse_size in cli.h); false with a
 * message in err (no option name) when s is not one. */
bool cli_size_value(const char *s, uint64_t *out, char *err, size_t errsz);

/* Edit distance (Levenshtein) between a and b, capped at 255. */
int cli_edit_distance(const char *a, const char *b);

/* The candidate closest to word when it is close enough to suggest
 * ("did you mean"), else NULL. */
const char *cli_suggest(const char *word, const char *const *cands, size_t n);

#endif /* COMI_OPT_H */
