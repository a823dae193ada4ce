/*
 * cmd_merge.c — `comi merge`: runs the merge stage (comi_merge) on hidden
 * states and a query vector stored as raw float32 files and writes the
 * memory vectors (and optionally the reallocated group sizes). The command
 * form is fixed by DESIGN.md's command-line contract.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int cmd_merge(int argc, char **argv); /* the entry point tools/comi.c dispatches to */

static const char *const CMD = "merge";

static void merge_usage(FILE *out) {
    fprintf(out,
            "usage: comi merge --context C.f32 --query Q.f32 --dim D --merge-size M --out MEM.f32\n"
            "                  [--group-sizes-out S.i32] [--alpha-select A] [--beta-select B]\n"
            "                  [--alpha-merge A] [--beta-merge B] [--no-coarse] [--no-fine]\n"
            "                  [--no-coarse-redundancy] [--no-fine-redundancy] [--threads T]\n"
            "                  [--max-context-tokens N] [--max-memory SIZE]\n"
            "\n"
            "Merges the hidden states of one context segment into at most ceil(n / M) memory\n"
            "vectors with COMI's coarse-to-fine Marginal Information Gain (MIG):\n"
            "  coarse: the context is cut into groups of M tokens; a group whose most relevant\n"
            "          token is relevant to the query and not redundant with the other groups\n"
            "          gets a smaller reallocated group (less compression), and vice versa;\n"
            "  fine:   each group becomes one vector, the softmax(MIG)-weighted average of its\n"
            "          tokens' hidden states.\n"
            "\n"
            "Files are raw little-endian float32/int32, row-major, no header.\n"
            "  --context C.f32          hidden states, n x D float32; n = file size / (4 D)\n"
            "  --query Q.f32            query vector, D float32\n"
            "  --dim D                  hidden size D (>= 1)\n"
            "  --merge-size M           compression rate: tokens per memory vector (>= 1)\n"
            "  --out MEM.f32            writes the memory vectors, n_memory x D float32\n"
            "  --group-sizes-out S.i32  writes the group sizes, n_groups int32: with the coarse\n"
            "                           stage, the reallocated sizes of the ceil(n / M) groups,\n"
            "                           zeros included (empty groups give no memory vector);\n"
            "                           with --no-coarse, the uniform sizes used\n"
            "  --alpha-select A         weight of relevance in the coarse MIG (default 1)\n"
            "  --beta-select B          weight of redundancy in the coarse MIG (default 1)\n"
            "  --alpha-merge A          weight of relevance in the fine MIG (default 1)\n"
            "  --beta-merge B           weight of redundancy in the fine MIG (default 1)\n"
            "  --no-coarse              no reallocation: round(n / M) groups of equal size\n"
            "  --no-fine                memory vector = plain mean of its group\n"
            "  --no-coarse-redundancy   coarse MIG = alpha-select * relevance only\n"
            "  --no-fine-redundancy     fine MIG = alpha-merge * relevance only\n"
            "  --threads T              worker threads (default: all cores)\n"
            "  --quiet                  no summary line on stdout\n" CLI_LIMITS_HELP
            "  -h, --help               this text\n"
            "\n"
            "On success prints one summary line (tokens, groups, memory vectors) on stdout.\n"
            "Exit status: 0 success; 1 bad input (missing/unreadable file, wrong file size,\n"
            "NaN/Inf values, out-of-range value) or failure, with one line on stderr; 2 bad\n"
            "usage (unknown option, missing required option).\n");
}

/* A read-only view of a whole float32 file: mmapped (no copy). */
typedef struct {
    const float *data;
    size_t bytes;
    void *map;
} f32_view;

static bool map_context(const char *path, int64_t dim, f32_view *v) {
    memset(v, 0, sizeof *v);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_error(CMD, "--context: cannot open '%s': %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        cli_error(CMD, "--context: '%s' is not a regular file", path);
        return false;
    }
    size_t bytes = (size_t)st.st_size, row = (size_t)dim * 4;
    if (bytes == 0) {
        close(fd);
        cli_error(CMD, "--context: '%s' is empty (no tokens)", path);
        return false;
    }
    if (bytes % row != 0) {
        close(fd);
        cli_error(CMD, "--context: '%s' has %zu bytes, not a multiple of 4 x dim = %zu", path,
                  bytes, row);
        return false;
    }
    void *map = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    int err = errno;
    close(fd);
    if (map == MAP_FAILED) {
        cli_error(CMD, "--context: cannot map '%s': %s", path, strerror(err));
        return false;
    }
    v->data = map;
    v->bytes = bytes;
    v->map = map;
    return true;
}

int cmd_merge(int argc, char **argv) {
    const char *context = NULL, *query_path = NULL, *out = NULL, *sizes_out = NULL;
    int64_t dim = 0, merge_size = 0, threads = 0;
    bool have_dim = false, have_m = false, quiet = false;
    comi_merge_params p = comi_merge_default_params();
    cli_limits lim = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        double x;
        int lf = cli_limit_flag(CMD, argc, argv, &i, &lim);
        if (lf < 0) return 1;
        if (lf > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            merge_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--context")) {
            if (!(context = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--query")) {
            if (!(query_path = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(out = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--group-sizes-out")) {
            if (!(sizes_out = cli_value(CMD, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--dim")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 1, INT32_MAX, &dim))
                return 1;
            have_dim = true;
        } else if (!strcmp(a, "--merge-size")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 1, INT32_MAX, &merge_size))
                return 1;
            have_m = true;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) ||
                !cli_parse_i64(CMD, a, v, 0, 256, &threads))
                return 1;
        } else if (!strcmp(a, "--alpha-select") || !strcmp(a, "--beta-select") ||
                   !strcmp(a, "--alpha-merge") || !strcmp(a, "--beta-merge")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_f64(CMD, a, v, &x)) return 1;
            if (!isfinite((float)x)) return cli_error(CMD, "%s: %s overflows float32", a, v);
            float *dst = !strcmp(a, "--alpha-select")  ? &p.alpha_select
                         : !strcmp(a, "--beta-select") ? &p.beta_select
                         : !strcmp(a, "--alpha-merge") ? &p.alpha_merge
                                                       : &p.beta_merge;
            *dst = (float)x;
        } else if (!strcmp(a, "--no-coarse")) {
            p.coarse = false;
        } else if (!strcmp(a, "--no-fine")) {
            p.fine = false;
        } else if (!strcmp(a, "--no-coarse-redundancy")) {
            p.coarse_redundancy = false;
        } else if (!strcmp(a, "--no-fine-redundancy")) {
            p.fine_redundancy = false;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else {
            cli_error(CMD, "unknown option '%s' (comi merge --help lists them)", a);
            return 2;
        }
    }
    const char *missing = !context      ? "--context"
                          : !query_path ? "--query"
                          : !have_dim   ? "--dim"
                          : !have_m     ? "--merge-size"
                          : !out        ? "--out"
                                        : NULL;
    if (missing) {
        cli_error(CMD, "missing required option %s (comi merge --help)", missing);
        return 2;
    }
    p.merge_size = merge_size;

    float *query = NULL;
    size_t q_count = 0;
    if (!cli_read_f32(CMD, "--query", query_path, &query, &q_count)) return 1;
    if (q_count != (size_t)dim) {
        free(query);
        return cli_error(CMD, "--query: '%s' holds %zu float32 values, --dim is %lld", query_path,
                         q_count, (long long)dim);
    }
    f32_view ctx_view;
    if (!map_context(context, dim, &ctx_view)) {
        free(query);
        return 1;
    }
    int64_t n = (int64_t)(ctx_view.bytes / ((size_t)dim * 4));

    int rc = 1;
    comi_ctx *ctx = cli_ctx_new((int32_t)threads, &lim);
    comi_merge_result res = {0};
    if (!ctx) {
        cli_error(CMD, "out of memory");
    } else if (comi_merge(ctx, ctx_view.data, n, dim, query, &p, &res) != COMI_OK) {
        const char *msg = comi_errmsg(ctx);
        if (!strncmp(msg, "merge: ", 7)) msg += 7;
        if (!strncmp(msg, "hidden[", 7))
            cli_error(CMD, "--context '%s': %s", context, msg);
        else if (!strncmp(msg, "query[", 6))
            cli_error(CMD, "--query '%s': %s", query_path, msg);
        else
            cli_error(CMD, "%s", msg);
    } else if (cli_write_bytes(CMD, out, res.memory,
                               (size_t)res.n_memory * (size_t)dim * sizeof(float)) &&
               (!sizes_out || cli_write_bytes(CMD, sizes_out, res.group_sizes,
                                              (size_t)res.n_groups * sizeof(int32_t)))) {
        if (!quiet)
            printf("merged %lld tokens x %lld into %lld memory vectors (%lld groups, merge size "
                   "%lld)\n",
                   (long long)n, (long long)dim, (long long)res.n_memory, (long long)res.n_groups,
                   (long long)merge_size);
        rc = 0;
    }
    comi_merge_result_free(&res);
    comi_ctx_free(ctx);
    munmap(ctx_view.map, ctx_view.bytes);
    free(query);
    return rc;
}
