/*
 * bench_pipeline.c — speed of the soft pipeline (encoder -> merge -> fusion
 * -> decoder) against answering from the full context with the same
 * decoder. The context is N pseudo-random token ids (speed only: a
 * random-weight model's answers mean nothing).
 *
 * usage: bench_pipeline --model M.gguf [--context-tokens 10000] [--question-tokens 16]
 *                       [--merge-size 16] [--encoder-layers 8] [--new-tokens 20]
 *                       [--threads T] [--no-full]
 *
 * Prints one row per configuration: seconds per stage, end to end, memory
 * vectors, peak RSS (getrusage ru_maxrss, MiB, cumulative over the process).
 * Make a Qwen2-0.5B-shaped model with
 *   build/bench/gen_model --arch qwen2-0.5b --type Q4_K_M \
 *       --vocab ../shared/golden/tokenizer/ggml-vocab-qwen2.gguf --out /tmp/q.gguf
 */
#include "bench.h"
#include "comi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *model = NULL;
    long n_ctx = 10000, n_q = 16, merge = 16, layers = 8, new_tokens = 20, threads = 0;
    int full = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-full")) {
            full = 0;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: bench_pipeline --model M.gguf [--context-tokens 10000] [--question-tokens 16]\n"
                   "                      [--merge-size 16] [--encoder-layers 8] [--new-tokens 20]\n"
                   "                      [--threads T] [--no-full]\n"
                   "Seconds per stage of the soft pipeline vs answering from the full context.\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bench_pipeline: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--context-tokens")) n_ctx = atol(v);
        else if (!strcmp(a, "--question-tokens")) n_q = atol(v);
        else if (!strcmp(a, "--merge-size")) merge = atol(v);
        else if (!strcmp(a, "--encoder-layers")) layers = atol(v);
        else if (!strcmp(a, "--new-tokens")) new_tokens = atol(v);
        else if (!strcmp(a, "--threads")) threads = atol(v);
        else {
            fprintf(stderr, "bench_pipeline: unknown option %s\n", a);
            return 2;
        }
    }
    if (!model || n_ctx < 1 || n_q < 1 || merge < 1 || layers < 1 || new_tokens < 0) {
        fprintf(stderr, "usage: bench_pipeline --model M.gguf [--context-tokens N] "
                        "[--question-tokens N] [--merge-size M] [--encoder-layers K] "
                        "[--new-tokens N] [--threads T] [--no-full]\n");
        return 2;
    }
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = (int32_t)threads;
    comi_ctx *ctx = comi_ctx_new(&cp);
    comi_pipeline_load_params lp = comi_pipeline_load_default_params();
    lp.model = model;
    comi_pipeline *pl = NULL;
    double t0 = bench_now_s();
    if (comi_pipeline_load(ctx, &lp, &pl) != COMI_OK) {
        fprintf(stderr, "bench_pipeline: %s\n", comi_errmsg(ctx));
        return 1;
    }
    double t_load = bench_now_s() - t0;
    comi_pipeline_info pi;
    comi_pipeline_get_info(pl, &pi);
    int32_t n_vocab = comi_tokenizer_n_vocab(comi_pipeline_tokenizer(pl));
    int32_t *ids = malloc((size_t)(n_ctx + n_q) * sizeof *ids);
    uint64_t s = 12345;
    for (long i = 0; i < n_ctx + n_q; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = 100 + (int32_t)((s >> 33) % (uint64_t)(n_vocab - 200));
    }
    printf("# %s\n# load %.2f s, %d threads, context %ld tokens, question %ld, %ld new tokens\n",
           pi.description, t_load, (int)comi_ctx_threads(ctx), n_ctx, n_q, new_tokens);
    comi_answer_params ap = comi_pipeline_answer_params(pl);
    ap.encoder_layers = (int32_t)layers;
    ap.merge.merge_size = merge;
    ap.max_new_tokens = (int32_t)new_tokens;
    ap.keep_logits = false;
    comi_answer_result r;
    t0 = bench_now_s();
    if (comi_pipeline_answer_ids(ctx, pl, ids, n_ctx, ids + n_ctx, n_q, &ap, &r) != COMI_OK) {
        fprintf(stderr, "bench_pipeline: %s\n", comi_errmsg(ctx));
        return 1;
    }
    double t_comi = bench_now_s() - t0;
    printf("%-6s ctx %6ld  m %3ld  K %2ld  encode %8.3f s  merge %7.3f s  fuse %6.3f s  "
           "prefill %7.3f s  generate %7.3f s  total %8.3f s  memory %5lld  %2d ids  "
           "%.0f tok/s in  peak %.0f MiB\n",
           "comi", n_ctx, merge, layers, r.ms_encode / 1e3, r.ms_merge / 1e3, r.ms_fuse / 1e3,
           r.ms_prefill / 1e3, r.ms_generate / 1e3, t_comi, (long long)r.n_memory, r.n_ids,
           (double)n_ctx / t_comi, bench_peak_rss_mib());
    fflush(stdout);
    double comi_dec = (r.ms_prefill + r.ms_generate) / 1e3;
    comi_answer_result_free(&r);
    if (full) {
        comi_generate_params gp = comi_generate_default_params();
        gp.max_new_tokens = (int32_t)new_tokens;
        gp.repetition_penalty = 1.3f;
        int32_t *out = malloc((size_t)(new_tokens + 1) * sizeof *out);
        int32_t n_out = 0;
        t0 = bench_now_s();
        if (comi_pipeline_decode(ctx, pl, NULL, 0, ids, n_ctx + n_q, &gp, NULL, out, &n_out) !=
            COMI_OK) {
            fprintf(stderr, "bench_pipeline: %s\n", comi_errmsg(ctx));
            return 1;
        }
        double t_full = bench_now_s() - t0;
        printf("%-6s ctx %6ld  decoder reads [context ; question] as tokens           "
               "                                  total %8.3f s  tokens %6ld  %2d ids  "
               "%.0f tok/s in  peak %.0f MiB\n",
               "full", n_ctx, t_full, n_ctx + n_q, n_out, (double)n_ctx / t_full, bench_peak_rss_mib());
        printf("# end to end: full / comi = %.2fx; decoder time: full %.3f s vs comi %.3f s "
               "(%.1fx)\n",
               t_full / t_comi, t_full, comi_dec, comi_dec > 0 ? t_full / comi_dec : 0.0);
        free(out);
    }
    free(ids);
    comi_pipeline_free(pl);
    comi_ctx_free(ctx);
    return 0;
}
