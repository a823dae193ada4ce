/*
 * gen_model.c — writes random-weight GGUF models with the real shapes,
 * tensor names and metadata of llama.cpp conversions (Qwen2-0.5B,
 * Qwen2.5-1.5B, LLaMA-2-7B), for SPEED benchmarks only: the weights are
 * noise, so the outputs say nothing about quality.
 *
 * usage: gen_model --arch qwen2-0.5b|qwen2.5-1.5b|llama-2-7b|smollm2-135m
 *                  --type F16|Q8_0|Q4_K_M|Q4_1 --vocab VOCAB.gguf --out OUT.gguf
 *                  [--layers N] [--seed S] [--threads T]
 *
 * Tokenizer metadata (every tokenizer.* key) is copied from VOCAB.gguf, and
 * the vocabulary size is its token count. Matrices are N(0, 0.02), biases
 * N(0, 0.02), norm weights 1. Q4_K_M picks types as llama.cpp's Q4_K_M
 * does (Q4_K; Q6_K for the output matrix and for attn_v / ffn_down in the
 * "more bits" layers; rows whose width is not a multiple of 256 fall back
 * to Q5_0 / Q8_0); Q4_1 is llama.cpp's Q4_1 mix (Q6_K, or Q8_0 when the width
 * does not fit, for the output matrix). Tensors are generated and quantized while the file is
 * written (rows in parallel, each row seeded from (tensor, row), so the
 * file does not depend on --threads). Prints one row: arch, type, layers,
 * parameters, file size, seconds, MB/s written, peak RSS.
 */
#include "formats/gguf.h"
#include "bench.h"
#include "base/pool.h"
#include "formats/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

typedef struct arch_spec {
    const char *name; /* --arch value */
    const char *arch; /* general.architecture */
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    float rope_base, rms_eps;
    bool tied;     /* output shares token_embd (no output.weight) */
    bool qkv_bias; /* attn_{q,k,v}.bias */
} arch_spec;

static const arch_spec k_archs[] = {
    {"qwen2-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, true, true},
    {"qwen2.5-1.5b", "qwen2", 1536, 28, 12, 2, 8960, 151936, 32768, 1000000.0f, 1e-6f, true, true},
    {"llama-2-7b", "llama", 4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, 1e-5f, false, false},
    {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 49152, 8192, 100000.0f, 1e-5f, true, false},
};

typedef enum out_type { OUT_F16, OUT_Q8_0, OUT_Q4_K_M, OUT_Q4_1 } out_type;

typedef struct gen {
    comi_pool *pool;
    int n_threads;
    float **scratch; /* (n_threads,) rows of max_ne0 floats */
    uint64_t seed;
} gen;

/* One tensor's recipe, read by the fill callback while the file is written. */
typedef struct tensor_job {
    gen *g;
    comi_type type;
    int64_t ne0;
    size_t row_bytes;
    float std;   /* normal weights with this deviation, or */
    float value; /* when std == 0, every element = value */
    uint64_t id; /* seeds the rows */
} tensor_job;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Approximately normal (Irwin-Hall with 4 uniforms, unit variance): the
 * weights only need a sane scale, and this is cheap for 7e9 values. */
static void fill_normal(float *x, int64_t n, float std, uint64_t seed) {
    uint64_t s = seed;
    const float k = std * 1.7320508f / 32768.0f; /* sqrt(3) / 2^15 */
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&s);
        int32_t a = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
                    (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48) - 131070;
        x[i] = (float)a * k;
    }
}

typedef struct rows_arg {
    tensor_job *job;
    uint8_t *dst;
    int64_t r0;
} rows_arg;

static void gen_rows(void *varg, int64_t b, int64_t e, int worker) {
    rows_arg *a = varg;
    tensor_job *j = a->job;
    float *x = j->g->scratch[worker];
    for (int64_t r = b; r < e; r++) {
        int64_t row = a->r0 + r;
        if (j->std > 0)
            fill_normal(x, j->ne0, j->std, j->g->seed ^ (j->id << 40) ^ ((uint64_t)row * 0x2545F4914F6CDD1Dull));
        else
            for (int64_t i = 0; i < j->ne0; i++) x[i] = j->value;
        quant_quantize_row(j->type, x, a->dst + (size_t)r * j->row_bytes, j->ne0);
    }
}

static comi_status fill_tensor(comi_err *e, void *user, void *dst, int64_t r0, int64_t r1) {
    (void)e;
    tensor_job *j = user;
    rows_arg a = {j, dst, r0};
    pool_for(j->g->pool, r1 - r0, 8, gen_rows, &a);
    return COMI_OK;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third layer in between get more bits in the _M mixes. */
static bool more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* What llama.cpp does when a row width does not fit the 256-wide K blocks. */
static comi_type fit_width(comi_type t, int64_t ne0) {
    if (ne0 % 256 == 0) return t;
    if (t == COMI_TYPE_Q4_K) return COMI_TYPE_Q5_0;
    if (t == COMI_TYPE_Q6_K) return COMI_TYPE_Q8_0;
    return t;
}

typedef enum mat_kind { M_EMBD, M_OUTPUT, M_Q, M_K, M_V, M_O, M_GATE, M_UP, M_DOWN } mat_kind;

static comi_type matrix_type(out_type ot, mat_kind kind, int64_t layer, const arch_spec *a,
                             int64_t ne0) {
    if (ot == OUT_F16) return COMI_TYPE_F16;
    if (ot == OUT_Q8_0) return COMI_TYPE_Q8_0;
    if (ot == OUT_Q4_1) /* llama.cpp's Q4_1 mix: Q6_K for the output matrix, else Q4_1 */
        return fit_width(kind == M_OUTPUT || (kind == M_EMBD && a->tied) ? COMI_TYPE_Q6_K : COMI_TYPE_Q4_1,
                         ne0);
    comi_type t = COMI_TYPE_Q4_K;
    if (kind == M_OUTPUT || (kind == M_EMBD && a->tied)) t = COMI_TYPE_Q6_K;
    if ((kind == M_V || kind == M_DOWN) && more_bits(layer, a->n_layer)) t = COMI_TYPE_Q6_K;
    return fit_width(t, ne0);
}

typedef struct plan {
    tensor_job *jobs;
    int n;
    int64_t n_params;
} plan;

static comi_status add(comi_err *e, gguf_writer *w, plan *p, gen *g, const char *name,
                       comi_type type, int64_t ne0, int64_t ne1, float std, float value) {
    tensor_job *j = &p->jobs[p->n];
    *j = (tensor_job){g, type, ne0, 0, std, value, (uint64_t)p->n + 1};
    quant_row_bytes(type, ne0, &j->row_bytes);
    int64_t ne[2] = {ne0, ne1};
    comi_status st = gguf_writer_add_tensor_fill(e, w, name, type, ne1 > 1 ? 2 : 1, ne, fill_tensor, j);
    if (!st) {
        p->n++;
        p->n_params += ne0 * ne1;
    }
    return st;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: gen_model --arch qwen2-0.5b|qwen2.5-1.5b|llama-2-7b|smollm2-135m\n"
            "                 --type F16|Q8_0|Q4_K_M|Q4_1\n"
            "                 --vocab VOCAB.gguf --out OUT.gguf [--layers N] [--seed S] [--threads T]\n"
            "Writes a random-weight model with real shapes (for speed benchmarks only).\n");
}

int main(int argc, char **argv) {
    const char *arch_name = NULL, *type_name = NULL, *vocab = NULL, *out = NULL;
    int64_t layers = -1;
    uint64_t seed = 1;
    int threads = comi_cpu_count();
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gen_model: %s needs a value (or unknown option)\n", o);
            return 2;
        }
        const char *v = argv[++i];
        char *end = NULL;
        if (!strcmp(o, "--arch")) arch_name = v;
        else if (!strcmp(o, "--type")) type_name = v;
        else if (!strcmp(o, "--vocab")) vocab = v;
        else if (!strcmp(o, "--out")) out = v;
        else if (!strcmp(o, "--layers")) layers = strtoll(v, &end, 10);
        else if (!strcmp(o, "--seed")) seed = strtoull(v, &end, 10);
        else if (!strcmp(o, "--threads")) threads = (int)strtol(v, &end, 10);
        else {
            fprintf(stderr, "gen_model: unknown option %s (see --help)\n", o);
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "gen_model: %s: '%s' is not a number\n", o, v);
            return 2;
        }
    }
    if (!arch_name || !type_name || !vocab || !out) {
        fprintf(stderr, "gen_model: --arch, --type, --vocab and --out are required (see --help)\n");
        return 2;
    }
    const arch_spec *as = NULL;
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
        if (!strcmp(k_archs[i].name, arch_name)) as = &k_archs[i];
    if (!as) {
        fprintf(stderr, "gen_model: --arch %s: unknown (qwen2-0.5b, qwen2.5-1.5b, llama-2-7b, smollm2-135m)\n",
                arch_name);
        return 2;
    }
    out_type ot;
    uint32_t file_type;
    if (!strcmp(type_name, "F16")) ot = OUT_F16, file_type = 1;
    else if (!strcmp(type_name, "Q8_0")) ot = OUT_Q8_0, file_type = 7;
    else if (!strcmp(type_name, "Q4_K_M")) ot = OUT_Q4_K_M, file_type = 15;
    else if (!strcmp(type_name, "Q4_1")) ot = OUT_Q4_1, file_type = 3;
    else {
        fprintf(stderr, "gen_model: --type %s: unknown (F16, Q8_0, Q4_K_M, Q4_1)\n", type_name);
        return 2;
    }
    arch_spec a = *as;
    if (layers != -1) {
        if (layers < 1 || layers > 1000) {
            fprintf(stderr, "gen_model: --layers %lld: must be 1..1000\n", (long long)layers);
            return 2;
        }
        a.n_layer = layers;
    }
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "gen_model: --threads %d: must be 1..1024\n", threads);
        return 2;
    }

    comi_err e;
    comi_err_clear(&e);
    gguf_file *vf = NULL;
    if (gguf_open(&e, vocab, &vf)) {
        fprintf(stderr, "gen_model: %s\n", e.msg);
        return 1;
    }
    const gguf_kv *toks = NULL;
    if (!gguf_get_arr(vf, "tokenizer.ggml.tokens", GGUF_T_STRING, &toks)) {
        fprintf(stderr, "gen_model: %s: no tokenizer.ggml.tokens string array\n", vocab);
        gguf_close(vf);
        return 1;
    }
    if ((int64_t)toks->arr_n != a.n_vocab)
        fprintf(stderr, "gen_model: note: %s has %llu tokens, %s has %lld; using %llu\n", vocab,
                (unsigned long long)toks->arr_n, a.name, (long long)a.n_vocab,
                (unsigned long long)toks->arr_n);
    a.n_vocab = (int64_t)toks->arr_n;

    gen g = {pool_new(threads), threads, NULL, seed};
    int64_t max_ne0 = a.n_ff > a.n_embd ? a.n_ff : a.n_embd;
    g.scratch = calloc((size_t)threads, sizeof *g.scratch);
    for (int i = 0; g.scratch && i < threads; i++) g.scratch[i] = malloc((size_t)max_ne0 * sizeof(float));
    plan p = {calloc((size_t)(3 + 12 * a.n_layer), sizeof(tensor_job)), 0, 0};
    gguf_writer *w = gguf_writer_new();
    if (!g.pool || !g.scratch || !p.jobs || !w) {
        fprintf(stderr, "gen_model: out of memory\n");
        return 1;
    }

    /* metadata in llama.cpp's order and spelling */
    char key[128], name[160];
    const char *A = a.arch;
    comi_status st = gguf_writer_set_str(&e, w, "general.architecture", A);
    snprintf(name, sizeof name, "comi random-weight %s (benchmark only)", a.name);
    st = st ? st : gguf_writer_set_str(&e, w, "general.name", name);
#define SET_U32(k, v) \
    (snprintf(key, sizeof key, "%s." k, A), st = st ? st : gguf_writer_set_u32(&e, w, key, (uint32_t)(v)))
#define SET_F32(k, v) \
    (snprintf(key, sizeof key, "%s." k, A), st = st ? st : gguf_writer_set_f32(&e, w, key, (v)))
    SET_U32("block_count", a.n_layer);
    SET_U32("context_length", a.n_ctx);
    SET_U32("embedding_length", a.n_embd);
    SET_U32("feed_forward_length", a.n_ff);
    SET_U32("attention.head_count", a.n_head);
    SET_U32("attention.head_count_kv", a.n_head_kv);
    SET_F32("rope.freq_base", a.rope_base);
    SET_F32("attention.layer_norm_rms_epsilon", a.rms_eps);
    if (!strcmp(A, "llama")) {
        SET_U32("vocab_size", a.n_vocab);
        SET_U32("rope.dimension_count", a.n_embd / a.n_head);
    }
    st = st ? st : gguf_writer_set_u32(&e, w, "general.file_type", file_type);
    st = st ? st : gguf_writer_set_bool(&e, w, "comi.random_weights", true);
    for (int64_t i = 0; i < gguf_n_kv(vf) && !st; i++) {
        const gguf_kv *kv = gguf_kv_at(vf, i);
        if (!strncmp(kv->key, "tokenizer.", 10)) st = gguf_writer_copy_kv(&e, w, kv);
    }
    if (ot != OUT_F16) st = st ? st : gguf_writer_set_u32(&e, w, "general.quantization_version", 2);

    /* tensors, in the order llama.cpp's converter writes them */
    const float sd = 0.02f;
    int64_t E = a.n_embd, hd = a.n_embd / a.n_head, kv_dim = a.n_head_kv * hd;
    st = st ? st : add(&e, w, &p, &g, "token_embd.weight", matrix_type(ot, M_EMBD, 0, &a, E), E, a.n_vocab, sd, 0);
    st = st ? st : add(&e, w, &p, &g, "output_norm.weight", COMI_TYPE_F32, E, 1, 0, 1.0f);
    if (!a.tied) st = st ? st : add(&e, w, &p, &g, "output.weight", matrix_type(ot, M_OUTPUT, 0, &a, E), E, a.n_vocab, sd, 0);
    for (int64_t l = 0; l < a.n_layer && !st; l++) {
        const struct {
            const char *n;
            mat_kind kind; /* M_EMBD marks a 1-D tensor */
            int64_t ne0, ne1;
            float value;
        } t[] = {{"attn_norm.weight", M_EMBD, E, 1, 1.0f},  {"attn_q.weight", M_Q, E, E, 0},
                 {"attn_k.weight", M_K, E, kv_dim, 0},      {"attn_v.weight", M_V, E, kv_dim, 0},
                 {"attn_output.weight", M_O, E, E, 0},      {"ffn_norm.weight", M_EMBD, E, 1, 1.0f},
                 {"ffn_gate.weight", M_GATE, E, a.n_ff, 0}, {"ffn_up.weight", M_UP, E, a.n_ff, 0},
                 {"ffn_down.weight", M_DOWN, a.n_ff, E, 0}, {"attn_q.bias", M_EMBD, E, 1, 0},
                 {"attn_k.bias", M_EMBD, kv_dim, 1, 0},     {"attn_v.bias", M_EMBD, kv_dim, 1, 0}};
        int n_t = a.qkv_bias ? 12 : 9;
        for (int i = 0; i < n_t && !st; i++) {
            snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, t[i].n);
            bool vec = t[i].ne1 == 1;
            comi_type ty = vec ? COMI_TYPE_F32 : matrix_type(ot, t[i].kind, l, &a, t[i].ne0);
            float std = vec && t[i].value != 0 ? 0 : sd; /* norms constant, biases random */
            st = add(&e, w, &p, &g, name, ty, t[i].ne0, t[i].ne1, std, t[i].value);
        }
    }
    double t0 = comi_now_ms();
    st = st ? st : gguf_writer_write(&e, w, out);
    double secs = (comi_now_ms() - t0) / 1000.0;
    int rc = 0;
    if (st) {
        fprintf(stderr, "gen_model: %s\n", e.msg);
        rc = 1;
    } else {
        struct stat sb;
        double bytes = stat(out, &sb) == 0 ? (double)sb.st_size : 0;
        printf("%-14s %-7s layers %3lld  params %6.3f G  file %8.1f MiB  %7.2f s  %7.1f MB/s  "
               "threads %d  peak RSS %.0f MiB  -> %s\n",
               a.name, type_name, (long long)a.n_layer, (double)p.n_params / 1e9,
               bytes / 1048576.0, secs, bytes / 1e6 / (secs > 0 ? secs : 1), threads,
               bench_peak_rss_mib(), out);
    }
    gguf_writer_free(w);
    gguf_close(vf);
    for (int i = 0; i < threads; i++) free(g.scratch[i]);
    free(g.scratch);
    free(p.jobs);
    pool_free(g.pool);
    return rc;
}
