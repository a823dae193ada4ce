/*
 * opt.c — the table-driven option parser of the `comi` commands (see opt.h
 * for the rules every command shares). One pass over argv: each argument is
 * looked up in the command's table, its value parsed by kind into the
 * target; any mistake is one line on stderr and exit status 2.
 */
#include "opt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "comi %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (comi %s --help)\n", cmd);
    return CLI_EXIT_USAGE;
}

/* ------------------------------------------------------------ suggestions */

int cli_edit_distance(const char *a, const char *b) {
    /* optimal string alignment: insert, delete, substitute, swap neighbours */
    enum { MAXL = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= MAXL || m >= MAXL) return 255;
    int d[MAXL + 1][MAXL + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m] > 255 ? 255 : d[n][m];
}

const char *cli_suggest(const char *word, const char *const *cands, size_t n) {
    const char *w = word;
    while (*w == '-')
        w++;
    size_t wl = strlen(w);
    if (wl == 0) return NULL;
    /* a few typos per word length; never more than half the word */
    int limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
    const char *best = NULL, *prefix_of = NULL;
    int best_d = limit + 1, n_prefix = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i]) continue;
        const char *c = cands[i];
        while (*c == '-')
            c++;
        int d = cli_edit_distance(w, c);
        if (d < best_d) best_d = d, best = cands[i];
        if (wl >= 3 && !strncmp(c, w, wl)) n_prefix++, prefix_of = cands[i];
    }
    if (best) return best;
    return n_prefix == 1 ? prefix_of : NULL;
}

/* ----------------------------------------------------------------- values */

bool cli_size_value(const char *s, uint64_t *out, char *err, size_t errsz) {
    static const struct {
        const char *name;
        uint64_t mul;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"k", 1ull << 10},
                 {"kib", 1ull << 10},
                 {"m", 1ull << 20},
                 {"mib", 1ull << 20},
                 {"g", 1ull << 30},
                 {"gib", 1ull << 30},
                 {"t", 1ull << 40},
                 {"tib", 1ull << 40},
                 {"kb", 1000ull},
                 {"mb", 1000000ull},
                 {"gb", 1000000000ull},
                 {"tb", 1000000000000ull}};
    const char *p = s;
    uint64_t v = 0;
    bool overflow = false;
    while (*p >= '0' && *p <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            overflow = true;
        p++;
    }
    if (p == s) {
        snprintf(err, errsz,
                 "'%s' is not a size (bytes, or a number with K, M, G, T, KiB, MiB, GiB, TiB, "
                 "kB, MB, GB or TB)",
                 s);
        return false;
    }
    char unit[4];
    size_t n = strlen(p);
    for (size_t k = 0; k < n && k < sizeof unit - 1; k++)
        unit[k] = (char)(p[k] >= 'A' && p[k] <= 'Z' ? p[k] - 'A' + 'a' : p[k]);
    unit[n < sizeof unit - 1 ? n : sizeof unit - 1] = '\0';
    for (size_t u = 0; n < sizeof unit && u < sizeof units / sizeof units[0]; u++) {
        if (strcmp(unit, units[u].name)) continue;
        if (overflow || __builtin_mul_overflow(v, units[u].mul, &v)) {
            snprintf(err, errsz, "'%s' is over the largest size, %llu bytes", s,
                     (unsigned long long)UINT64_MAX);
            return false;
        }
        *out = v;
        return true;
    }
    snprintf(err, errsz,
             "'%s' has an unknown unit '%s' (use K, M, G, T, KiB, MiB, GiB, TiB, kB, MB, GB or "
             "TB)",
             s, p);
    return false;
}

static bool int_value(const cli_opt *o, const char *s, char *err, size_t errsz) {
    int64_t lo = o->ilo, hi = o->ihi;
    if (lo == 0 && hi == 0) {
        lo = o->kind == CLI_I32 ? INT32_MIN : INT64_MIN;
        hi = o->kind == CLI_I32 ? INT32_MAX : INT64_MAX;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno == ERANGE) {
        snprintf(err, errsz, "'%s' is not an integer", s);
        return false;
    }
    if (v < lo || v > hi) {
        snprintf(err, errsz, "%lld is out of range [%lld, %lld]", v, (long long)lo,
                 (long long)hi);
        return false;
    }
    if (o->kind == CLI_I32) *(int32_t *)o->target = (int32_t)v;
    else *(int64_t *)o->target = v;
    return true;
}

static bool float_value(const cli_opt *o, const char *s, char *err, size_t errsz) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v)) {
        snprintf(err, errsz, "'%s' is not a finite number", s);
        return false;
    }
    if (o->kind == CLI_F32 && !isfinite((float)v)) {
        snprintf(err, errsz, "%s overflows float32", s);
        return false;
    }
    if ((o->flags & CLI_GT) && !(v > o->lo)) {
        snprintf(err, errsz, "%s must be > %g", s, o->lo);
        return false;
    }
    if ((o->flags & CLI_MIN) && !(v >= o->lo)) {
        snprintf(err, errsz, "%s must be >= %g", s, o->lo);
        return false;
    }
    if ((o->flags & CLI_MAX) && !(v <= o->hi)) {
        snprintf(err, errsz, "%s must be <= %g", s, o->hi);
        return false;
    }
    if (o->kind == CLI_F32) *(float *)o->target = (float)v;
    else *(double *)o->target = v;
    return true;
}

/* Stores the value of o; false with a message in err. */
static bool set_value(const cli_opt *o, const char *v, char *err, size_t errsz) {
    switch (o->kind) {
    case CLI_STR:
    case CLI_FILE:
    case CLI_PATH:
        if (o->kind != CLI_STR && !*v) {
            snprintf(err, errsz, "empty path");
            return false;
        }
        *(const char **)o->target = v;
        return true;
    case CLI_I64:
    case CLI_I32:
        return int_value(o, v, err, errsz);
    case CLI_F64:
    case CLI_F32:
        return float_value(o, v, err, errsz);
    case CLI_SIZE:
        return cli_size_value(v, (uint64_t *)o->target, err, errsz);
    case CLI_FN:
        return o->fn(v, o->target, err, errsz);
    case CLI_FLAG:
    case CLI_CLEAR:
        break;
    }
    snprintf(err, errsz, "takes no value");
    return false;
}

/* ---------------------------------------------------------------- parsing */

static bool name_is(const char *name, const char *a, size_t len) {
    return name && strlen(name) == len && !strncmp(name, a, len);
}

const cli_opt *cli_find(const cli_cmd *c, const char *name) {
    for (size_t k = 0; k < c->n_opts; k++)
        if (!strcmp(c->opts[k].name, name) || (c->opts[k].alias && !strcmp(c->opts[k].alias, name)))
            return &c->opts[k];
    return NULL;
}

static int unknown_option(const cli_cmd *c, const char *a, size_t len) {
    const char *cands[256];
    size_t n = 0;
    for (size_t k = 0; k < c->n_opts && n + 2 < CLI_N(cands); k++) {
        cands[n++] = c->opts[k].name;
        if (c->opts[k].alias) cands[n++] = c->opts[k].alias;
    }
    cands[n++] = "--help";
    char word[128];
    snprintf(word, sizeof word, "%.*s", (int)(len < 127 ? len : 127), a);
    const char *s = cli_suggest(word, cands, n);
    if (s) return cli_usage(c->name, "unknown option '%s'; did you mean %s?", word, s);
    return cli_usage(c->name, "unknown option '%s'", word);
}

int cli_parse(cli_cmd *c, int argc, char **argv) {
    const char *stdin_by = NULL; /* the option that reads standard input */
    bool options_done = false;
    for (size_t k = 0; k < c->n_opts; k++)
        c->opts[k].seen = 0;
    if (c->pos) *c->pos = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && !strcmp(a, "--")) {
            options_done = true;
            continue;
        }
        if (!options_done && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            cli_print_help(c, stdout);
            return 0;
        }
        if (!options_done && !strncmp(a, "--help=", 7))
            return cli_usage(c->name, "--help takes no value (given '%s')", a + 7);
        if (options_done || a[0] != '-' || !strcmp(a, "-")) {
            if (!c->pos) return cli_usage(c->name, "unexpected argument '%s'", a);
            if (*c->pos)
                return cli_usage(c->name, "unexpected argument '%s' (%s is '%s')", a, c->pos_meta,
                                 *c->pos);
            *c->pos = a;
            continue;
        }
        const char *eq = !strncmp(a, "--", 2) ? strchr(a, '=') : NULL;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        cli_opt *o = NULL;
        for (size_t k = 0; k < c->n_opts && !o; k++)
            if (name_is(c->opts[k].name, a, len) || name_is(c->opts[k].alias, a, len))
                o = &c->opts[k];
        if (!o) return unknown_option(c, a, len);
        o->seen++;
        if (o->kind == CLI_FLAG || o->kind == CLI_CLEAR) {
            if (eq) return cli_usage(c->name, "%s takes no value (given '%s')", o->name, eq + 1);
            *(bool *)o->target = o->kind == CLI_FLAG;
            continue;
        }
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!v) return cli_usage(c->name, "missing value for %s", o->name);
        char err[256];
        if (!set_value(o, v, err, sizeof err)) return cli_usage(c->name, "%s: %s", o->name, err);
        if (o->kind == CLI_FILE && !strcmp(v, "-")) {
            if (stdin_by && strcmp(stdin_by, o->name))
                return cli_usage(c->name, "%s and %s both read standard input ('-')", stdin_by,
                                 o->name);
            stdin_by = o->name;
        }
    }
    for (size_t k = 0; k < c->n_opts; k++)
        if ((c->opts[k].flags & CLI_REQUIRED) && !c->opts[k].seen)
            return cli_usage(c->name, "missing required option %s", c->opts[k].name);
    if (c->pos && c->pos_required && !*c->pos)
        return cli_usage(c->name, "missing %s", c->pos_meta);
    return -1;
}

/* ------------------------------------------------------------------- help */

void cli_print_help(const cli_cmd *c, FILE *f) {
    enum { COL = 27 }; /* where the descriptions start */
    fputs(c->usage, f);
    if (c->about) fprintf(f, "\n%s", c->about);
    fputc('\n', f);
    for (size_t k = 0; k <= c->n_opts; k++) {
        char head[128];
        const char *help;
        if (k == c->n_opts) {
            snprintf(head, sizeof head, "  -h, --help");
            help = "this text";
        } else {
            const cli_opt *o = &c->opts[k];
            if (o->flags & CLI_HIDDEN) continue;
            int n = snprintf(head, sizeof head, "  %s", o->name);
            if (o->alias && o->alias[1] != '-')
                n = snprintf(head, sizeof head, "  %s, %s", o->alias, o->name);
            if (o->meta && n > 0 && (size_t)n < sizeof head)
                snprintf(head + n, sizeof head - (size_t)n, " %s", o->meta);
            help = o->help ? o->help : "";
        }
        size_t hl = strlen(head);
        if (hl + 1 >= COL) fprintf(f, "%s\n%*s", head, COL, "");
        else fprintf(f, "%s%*s", head, (int)(COL - hl), "");
        for (const char *p = help; *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            fprintf(f, "%.*s\n", (int)n, p);
            if (!nl) break;
            p = nl + 1;
            if (*p) fprintf(f, "%*s", COL, "");
        }
        if (!*help) fputc('\n', f);
    }
    if (c->epilog) fprintf(f, "\n%s", c->epilog);
}
