/*
 * fuzz_merge.c — libFuzzer target for `comi merge` argument and file
 * handling (tools/cmd_merge.c, run in-process through cmd_merge).
 *
 * Input: ARGS, a NUL byte, then FILES. ARGS is split at spaces and newlines
 * into at most 32 arguments; the words @c, @q, @o and @s stand for the
 * context file, the query file, the memory output and the group-size
 * output. FILES: byte 0 is the query's length in float32 values, that many
 * values follow (fewer if the input ends), the rest (at most
 * FM_MAX_CONTEXT bytes) is the context file.
 * Both files live in memory (memfd). Any other value given to a path
 * option becomes a file name in the scratch directory, so the fuzzer
 * cannot read or write outside it.
 *
 * Invariants: the exit status is 0, 1 or 2; on success without --help the
 * memory file holds whole rows of finite values, each coordinate inside
 * the range of that coordinate over the context's tokens (every memory
 * vector is a convex combination of its group's hidden states), and the
 * group sizes (when written) are >= 0, sum to the token count, and the
 * non-empty ones match the memory rows one to one.
 */
#include "base/common.h"
#include "fuzz.h"
#include "fuzz_cli.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define FM_MAX_ARGS 32
/* Context bytes used (the rest is ignored): the merge's similarity work is
 * quadratic in the tokens, and bigger files reach no new code. */
#define FM_MAX_CONTEXT 4096

/* A whole output file (the library's reader); NULL when it is missing. */
static uint8_t *fm_read(const char *path, size_t *len) {
    comi_err e = {0};
    char *data = NULL;
    return comi_read_file(&e, path, &data, len) == COMI_OK ? (uint8_t *)data : NULL;
}

int fuzz_merge(const uint8_t *data, size_t size) {
    static char dir[256];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s", fuzz_scratch_base());
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) return 0;
    size_t args_len = (size_t)(nul - data);
    const uint8_t *files = nul + 1;
    size_t files_len = size - args_len - 1;

    /* The two input files. */
    size_t q_vals = files_len > 0 ? files[0] : 0;
    size_t q_bytes = files_len > 0 ? files_len - 1 : 0;
    if (q_bytes > q_vals * 4) q_bytes = q_vals * 4;
    const uint8_t *q_data = files_len > 0 ? files + 1 : files;
    const uint8_t *c_data = q_data + q_bytes;
    size_t c_bytes = files_len > 0 ? files_len - 1 - q_bytes : 0;
    if (c_bytes > FM_MAX_CONTEXT) c_bytes = FM_MAX_CONTEXT;
    char q_path[64], c_path[64], o_path[320], s_path[320], x_path[4][320];
    size_t done;
    int qfd = fuzz_memfd(q_data, q_bytes, "fuzz-merge-q", q_path, sizeof q_path, &done);
    FUZZ_CHECK(qfd >= 0 && done == q_bytes);
    int cfd = fuzz_memfd(c_data, c_bytes, "fuzz-merge-c", c_path, sizeof c_path, &done);
    FUZZ_CHECK(cfd >= 0 && done == c_bytes);
    int pid = (int)getpid();
    snprintf(o_path, sizeof o_path, "%s/comi-fuzz-merge-%d.out", dir, pid);
    snprintf(s_path, sizeof s_path, "%s/comi-fuzz-merge-%d.sizes", dir, pid);
    for (int k = 0; k < 4; k++)
        snprintf(x_path[k], sizeof x_path[k], "%s/comi-fuzz-merge-%d.other%d", dir, pid, k);
    char *scratch[6] = {o_path, s_path, x_path[0], x_path[1], x_path[2], x_path[3]};
    for (int k = 0; k < 6; k++)
        remove(scratch[k]);

    /* The arguments, read the way cmd_merge reads them (a value-taking
     * option takes the next argument, whatever it is), so the harness
     * knows which files the command uses. */
    char *text = malloc(args_len + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, args_len);
    text[args_len] = '\0';
    char *argv[FM_MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "merge";
    for (char *tok = strtok(text, " \n"); tok && argc <= FM_MAX_ARGS; tok = strtok(NULL, " \n"))
        argv[argc++] = !strcmp(tok, "@c")   ? c_path
                       : !strcmp(tok, "@q") ? q_path
                       : !strcmp(tok, "@o") ? o_path
                       : !strcmp(tok, "@s") ? s_path
                                            : tok;
    argv[argc] = NULL;
    static const char *const path_flags[4] = {"--context", "--query", "--out", "--group-sizes-out"};
    static const char *const value_flags[] = {
        "--dim",         "--merge-size", "--threads",    "--alpha-select",      "--beta-select",
        "--alpha-merge", "--beta-merge", "--max-memory", "--max-context-tokens"};
    const char *used[4] = {NULL, NULL, NULL, NULL}; /* the file each path option names */
    bool help = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) help = true;
        bool takes = false;
        for (size_t k = 0; k < sizeof value_flags / sizeof value_flags[0]; k++)
            takes = takes || !strcmp(argv[i], value_flags[k]);
        for (int k = 0; k < 4; k++) {
            if (strcmp(argv[i], path_flags[k]) || i + 1 >= argc) continue;
            char *v = argv[i + 1];
            bool ours = v == c_path || v == q_path || v == o_path || v == s_path;
            if (!ours) argv[i + 1] = x_path[k]; /* never a path the fuzzer chose */
            used[k] = argv[i + 1];
            takes = true;
        }
        if (takes) i++;
    }

    /* cmd_merge reports on stdout/stderr: keep the fuzzer's log readable. */
    static FILE *null_out;
    if (!null_out) null_out = fopen("/dev/null", "w");
    FUZZ_CHECK(null_out != NULL);
    FILE *old_out = stdout, *old_err = stderr;
    stdout = null_out;
    stderr = null_out;
    int rc = cmd_merge(argc, argv);
    stdout = old_out;
    stderr = old_err;
    FUZZ_CHECK(rc == 0 || rc == 1 || rc == 2);

    size_t o_len = 0, s_len = 0;
    uint8_t *o = used[2] ? fm_read(used[2], &o_len) : NULL;
    uint8_t *s = used[3] ? fm_read(used[3], &s_len) : NULL;
    if (rc == 0 && !help) {
        /* Success writes the memory (and the sizes when asked); only
         * --help succeeds without. */
        FUZZ_CHECK(o != NULL);
        FUZZ_CHECK(!used[3] || s != NULL);
    }
    /* The structure checks need to know the context's bytes and two
     * distinct output files. */
    const uint8_t *in = used[0] == c_path ? c_data : used[0] == q_path ? q_data : NULL;
    size_t in_bytes = used[0] == c_path ? c_bytes : q_bytes;
    if (rc == 0 && !help && in && used[2] != used[3] && used[2] != used[0] && used[3] != used[0] &&
        s) {
        FUZZ_CHECK(s_len % 4 == 0 && o_len % 4 == 0);
        const int32_t *sz = (const int32_t *)(const void *)s;
        size_t n_groups = s_len / 4, nonempty = 0;
        int64_t sum = 0;
        for (size_t g = 0; g < n_groups; g++) {
            FUZZ_CHECK(sz[g] >= 0);
            sum += sz[g];
            nonempty += sz[g] > 0;
        }
        FUZZ_CHECK(nonempty > 0 && o_len % nonempty == 0);
        size_t row = o_len / nonempty; /* bytes of one memory vector: 4 * dim */
        FUZZ_CHECK(row % 4 == 0 && in_bytes % row == 0 && (int64_t)(in_bytes / row) == sum);
        size_t dim = row / 4, n = in_bytes / row;
        const float *mem = (const float *)(const void *)o;
        float *ctx_copy = malloc(in_bytes);
        FUZZ_CHECK(ctx_copy != NULL);
        memcpy(ctx_copy, in, in_bytes);
        for (size_t d = 0; d < dim; d++) {
            float lo = FLT_MAX, hi = -FLT_MAX;
            for (size_t t = 0; t < n; t++) {
                float v = ctx_copy[t * dim + d];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            float slack = 1e-4f * (fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi)) + 1e-30f;
            for (size_t r = 0; r < nonempty; r++) {
                float v = mem[r * dim + d];
                FUZZ_CHECK(isfinite(v) && v >= lo - slack && v <= hi + slack);
            }
        }
        free(ctx_copy);
    }
    free(o);
    free(s);
    free(text);
    close(qfd);
    close(cfd);
    for (int k = 0; k < 6; k++)
        remove(scratch[k]);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_merge(data, size);
}
#endif
