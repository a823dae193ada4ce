/*
 * bench_forward.c — prefill and decode throughput of the forward pass.
 *
 * usage: bench_forward MODEL [--threads T] [--prompts 512,4096] [--gen N]
 *                            [--logits-all] [--kv-type f32|f16]
 *
 * For each prompt length P: a fresh session evaluates P pseudo-random token
 * ids (logits of the last position only, as llama-bench's pp test does),
 * then greedily generates N tokens one at a time (tg). One row per P:
 * wall seconds and tokens/s of both phases, their CPU seconds (all threads),
 * tokens per CPU-second x threads (what the wall rate would be with the
 * threads' cores to ourselves), and the process's peak RSS so far
 * (getrusage ru_maxrss).
 */
#include "bench.h"
#include "comi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *path = NULL, *prompts = "512,4096";
    int threads = 2, n_gen = 32;
    bool logits_all = false;
    int kv_type = COMI_KV_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompts") && i + 1 < argc)
            prompts = argv[++i];
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc)
            n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--logits-all"))
            logits_all = true;
        else if (!strcmp(argv[i], "--kv-type") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "f32") || !strcmp(argv[i + 1], "f16")))
            kv_type = !strcmp(argv[++i], "f16") ? COMI_KV_F16 : COMI_KV_F32;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_forward MODEL [--threads T] [--prompts 512,4096] "
                            "[--gen N] [--logits-all] [--kv-type f32|f16]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "bench_forward: MODEL is required\n");
        return 2;
    }
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = threads;
    cp.kv_type = kv_type;
    comi_ctx *ctx = comi_ctx_new(&cp);
    comi_model *m = NULL;
    double t0 = bench_now_s();
    if (!ctx || comi_model_load(ctx, path, NULL, &m)) {
        fprintf(stderr, "bench_forward: %s\n", ctx ? comi_errmsg(ctx) : "out of memory");
        return 1;
    }
    double t_load = bench_now_s() - t0;
    comi_model_info in;
    comi_model_get_info(m, &in);
    printf("# kv cache %s\n", kv_type == COMI_KV_F16 ? "f16" : "f32");
    printf("# model %s: %s %s, n_embd %d, n_layer %d, n_vocab %d, %.1f MiB; load %.3f s; "
           "threads %d\n",
           path, in.arch, in.weight_type, in.n_embd, in.n_layer, in.n_vocab,
           (double)in.weight_bytes / 1048576.0, t_load, threads);
    printf("%-6s %-6s %6s %9s %9s %9s %10s %4s %7s %7s %7s %9s %8s\n", "arch", "type", "prompt",
           "pp_s", "pp_tps", "pp_cpu_s", "pp_tps_cpu", "gen", "tg_s", "tg_tps", "tg_cpu_s",
           "tg_tps_cpu", "rss_mib");
    const char *p = prompts;
    while (*p) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n < 1) break;
        p = *end == ',' ? end + 1 : end;
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        uint64_t x = 88172645463325252ull;
        for (long i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ids[i] = (int32_t)(x % (uint64_t)in.n_vocab);
        }
        float *logits = logits_all ? malloc((size_t)n * (size_t)in.n_vocab * sizeof(float)) : NULL;
        comi_session *s = NULL;
        if (comi_session_new(ctx, m, n + n_gen, &s)) {
            fprintf(stderr, "bench_forward: %s\n", comi_errmsg(ctx));
            return 1;
        }
        comi_eval_params ep = comi_eval_default_params();
        ep.logits_out = logits;
        ep.n_logits = logits ? n : 0;
        t0 = bench_now_s();
        double c0 = bench_cpu_s();
        if (comi_session_eval(ctx, s, ids, NULL, n, &ep)) {
            fprintf(stderr, "bench_forward: %s\n", comi_errmsg(ctx));
            return 1;
        }
        double t_pp = bench_now_s() - t0, c_pp = bench_cpu_s() - c0;
        int32_t *gen = malloc((size_t)(n_gen > 0 ? n_gen : 1) * sizeof *gen);
        int32_t n_out = 0;
        comi_generate_params gp = comi_generate_default_params();
        gp.max_new_tokens = n_gen;
        gp.stop_at_eos = false;
        t0 = bench_now_s();
        c0 = bench_cpu_s();
        if (n_gen > 0 && comi_generate(ctx, s, &gp, gen, &n_out)) {
            fprintf(stderr, "bench_forward: %s\n", comi_errmsg(ctx));
            return 1;
        }
        double t_tg = bench_now_s() - t0, c_tg = bench_cpu_s() - c0;
        /* generate evaluates every id but the last: n_out - 1 decode steps */
        int32_t steps = n_out > 1 ? n_out - 1 : 0;
        printf("%-6s %-6s %6ld %9.3f %9.2f %9.3f %10.2f %4d %7.3f %7.2f %7.3f %9.2f %8.1f\n",
               in.arch, in.weight_type, n, t_pp, (double)n / t_pp, c_pp, (double)n * threads / c_pp,
               steps, t_tg, steps ? (double)steps / t_tg : 0.0, c_tg,
               steps && c_tg > 0 ? (double)steps * threads / c_tg : 0.0, bench_peak_rss_mib());
        fflush(stdout);
        comi_session_free(s);
        free(gen);
        free(logits);
        free(ids);
    }
    comi_model_free(m);
    comi_ctx_free(ctx);
    return 0;
}
