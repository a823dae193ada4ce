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

static const char *const merge_usage =
    "usage: comi merge --context C.f32 --query Q.f32 --dim D --merge-size M --out MEM.f32\n"
    "                  [--group-sizes-out S.i32] [--alpha-select A] [--beta-select B]\n"
    "                  [--alpha-merge A] [--beta-merge B] [--no-coarse] [--no-fine]\n"
    "                  [--no-coarse-redundancy] [--no-fine-redundancy] [--threads T]\n"
    "                  [--max-context-tokens N] [--max-memory SIZE]\n";

static const char *const merge_about =
    "Merges the hidden states of one context segment into at most ceil(n / M) memory\n"
    "vectors with COMI's coarse-to-fine Marginal Information Gain (MIG):\n"
    "  coarse: the context is cut into groups of M tokens; a group whose most relevant\n"
    "          token is relevant to the query and not redundant with the other groups\n"
    "          gets a smaller reallocated group (less compression), and vice versa;\n"
    "  fine:   each group becomes one vector, the softmax(MIG)-weighted average of its\n"
    "          tokens' hidden states.\n"
    "\n"
    "Files are raw little-endian float32/int32, row-major, no header; - as an input\n"
    "file reads standard input.\n";

static const char *const merge_epilog =
    "On success prints one summary line (tokens, groups, memory vectors) on stdout.\n"
    "Exit status: 0 success; 1 bad input (missing/unreadable file, wrong file size,\n"
    "NaN/Inf values) or failure, with one line on stderr; 2 bad usage (unknown\n"
    "option, missing required option, malformed or out-of-range value).\n";

/* A read-only view of a whole float32 file: mmapped (no copy). */
typedef struct {
    const float *data;
    size_t bytes;
    void *map;    /* mmapped file, or NULL */
    float *owned; /* read from standard input, or NULL */
} f32_view;

static bool map_context(const char *path, int64_t dim, f32_view *v) {
    memset(v, 0, sizeof *v);
    if (!strcmp(path, "-")) { /* a pipe cannot be mapped: read it */
        float *data;
        size_t count;
        if (!cli_read_f32(CMD, "--context", path, &data, &count)) return false;
        if (count == 0 || count % (size_t)dim != 0) {
            free(data);
            cli_error(CMD, "--context: standard input has %zu float32 values, %s", count,
                      count ? "not a multiple of dim" : "no tokens");
            return false;
        }
        v->data = data;
        v->bytes = count * 4;
        v->owned = data;
        return true;
    }
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
    bool quiet = false;
    comi_merge_params p = comi_merge_default_params();
    cli_limits lim = {0};
    cli_opt opts[] = {
        {CLI_O("--context", CLI_FILE, &context, "C.f32",
               "hidden states, n x D float32; n = file size / (4 D)"),
         .flags = CLI_REQUIRED},
        {CLI_O("--query", CLI_FILE, &query_path, "Q.f32", "query vector, D float32"),
         .flags = CLI_REQUIRED},
        {CLI_O("--dim", CLI_I64, &dim, "D", "hidden size D (>= 1)"), .flags = CLI_REQUIRED,
         .ilo = 1, .ihi = INT32_MAX},
        {CLI_O("--merge-size", CLI_I64, &merge_size, "M",
               "compression rate: tokens per memory vector (>= 1)"),
         .flags = CLI_REQUIRED, .ilo = 1, .ihi = INT32_MAX},
        {CLI_O("--out", CLI_PATH, &out, "MEM.f32", "writes the memory vectors, n_memory x D float32"),
         .flags = CLI_REQUIRED},
        {CLI_O("--group-sizes-out", CLI_PATH, &sizes_out, "S.i32",
               "writes the group sizes, n_groups int32: with the coarse\n"
               "stage, the reallocated sizes of the ceil(n / M) groups,\n"
               "zeros included (empty groups give no memory vector);\n"
               "with --no-coarse, the uniform sizes used")},
        {CLI_O("--alpha-select", CLI_F32, &p.alpha_select, "A",
               "weight of relevance in the coarse MIG (default 1)")},
        {CLI_O("--beta-select", CLI_F32, &p.beta_select, "B",
               "weight of redundancy in the coarse MIG (default 1)")},
        {CLI_O("--alpha-merge", CLI_F32, &p.alpha_merge, "A",
               "weight of relevance in the fine MIG (default 1)")},
        {CLI_O("--beta-merge", CLI_F32, &p.beta_merge, "B",
               "weight of redundancy in the fine MIG (default 1)")},
        {CLI_O("--no-coarse", CLI_CLEAR, &p.coarse, NULL,
               "no reallocation: round(n / M) groups of equal size")},
        {CLI_O("--no-fine", CLI_CLEAR, &p.fine, NULL, "memory vector = plain mean of its group")},
        {CLI_O("--no-coarse-redundancy", CLI_CLEAR, &p.coarse_redundancy, NULL,
               "coarse MIG = alpha-select * relevance only")},
        {CLI_O("--no-fine-redundancy", CLI_CLEAR, &p.fine_redundancy, NULL,
               "fine MIG = alpha-merge * relevance only")},
        {CLI_O("--threads", CLI_I64, &threads, "T", "worker threads (default: all cores)"),
         .ilo = 0, .ihi = 256},
        {CLI_O("--quiet", CLI_FLAG, &quiet, NULL, "no summary line on stdout")},
        CLI_LIMIT_OPTS(lim),
    };
    cli_cmd spec = {.name = CMD, .usage = merge_usage, .about = merge_about, .epilog = merge_epilog,
                    .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
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
    if (ctx_view.map) munmap(ctx_view.map, ctx_view.bytes);
    free(ctx_view.owned);
    free(query);
    return rc;
}
