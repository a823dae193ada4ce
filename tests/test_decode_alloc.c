/* test_decode_alloc.c — a decode step (one position through the model, as
 * comi_generate runs it) allocates no heap memory once the session and the
 * context's pool exist: malloc, calloc and realloc are counted (this
 * program defines them and forwards to glibc's __libc_* allocator) while
 * single-position evals and comi_generate run, with float32 and half KV
 * caches, on one and two threads. Not built with AddressSanitizer, which
 * owns malloc itself. */
#include "comi.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__) || !defined(__GLIBC__)
int main(void) {
    test_skip("decode_no_allocation", "needs glibc's allocator (not under AddressSanitizer)");
    return test_exit();
}
#else
#include <stdatomic.h>

#include "libc_alloc.h"

static atomic_int counting;
static atomic_long n_allocs;

void *malloc(size_t n) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&n_allocs, 1);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t sz) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&n_allocs, 1);
    return __libc_calloc(n, sz);
}
void *realloc(void *p, size_t n) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&n_allocs, 1);
    return __libc_realloc(p, n);
}
void free(void *p) {
    __libc_free(p);
}

/* model: forward/models/MODEL.gguf; ids: a file of forward/ */
static void check(const char *model, const char *ids_file, int threads, int32_t kv_type) {
    char name[128];
    snprintf(name, sizeof name, "decode_no_allocation_%s_t%d_%s", model, threads,
             kv_type == COMI_KV_F16 ? "f16" : "f32");
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = threads;
    cp.kv_type = kv_type;
    comi_ctx *ctx = comi_ctx_new(&cp);
    comi_model *m = NULL;
    comi_session *s = NULL;
    int64_t n = 0;
    int32_t *ids =
        test_read_ids(test_pathf("%s/forward/%s", test_golden_dir(), ids_file), &n);
    const char *mp = test_pathf("%s/forward/models/%s.gguf", test_golden_dir(), model);
    comi_status st = comi_model_load(ctx, mp, NULL, &m);
    if (!st) st = comi_session_new(ctx, m, n + 64, &s);
    /* the prompt, then one step: the pool and its scratch come to exist */
    if (!st && ids) st = comi_session_eval(ctx, s, ids, NULL, n, NULL);
    int32_t next = ids ? ids[0] : 1;
    if (!st) st = comi_session_eval(ctx, s, &next, NULL, 1, NULL);
    long steps = 0;
    atomic_store(&n_allocs, 0);
    atomic_store(&counting, 1);
    for (int k = 0; !st && k < 16; k++, steps++) {
        next = ids[(k * 7) % n];
        st = comi_session_eval(ctx, s, &next, NULL, 1, NULL);
    }
    int32_t out[16], n_out = 0;
    comi_generate_params gp = comi_generate_default_params();
    gp.max_new_tokens = 16;
    gp.stop_at_eos = false;
    if (!st) st = comi_generate(ctx, s, &gp, out, &n_out);
    atomic_store(&counting, 0);
    long allocs = atomic_load(&n_allocs);
    test_check(name, !st && ids && n_out == 16 && allocs == 0,
               "%s: %ld allocations in %ld single-position evals and %d generated tokens",
               st ? comi_errmsg(ctx) : "ok", allocs, steps, n_out);
    comi_session_free(s);
    comi_model_free(m);
    comi_ctx_free(ctx);
    free(ids);
}

int main(void) {
    if (!test_golden_dir()) {
        test_skip("decode_no_allocation", "golden directory not found (set COMI_GOLDEN)");
        return test_exit();
    }
    /* F16 weights with q/k/v biases (qwen2), and per-head norms (qwen3) */
    check("tiny-qwen2-bpe", "tiny-qwen2-bpe/p0.ids.txt", 1, COMI_KV_F32);
    check("tiny-qwen2-bpe", "tiny-qwen2-bpe/p0.ids.txt", 2, COMI_KV_F32);
    check("tiny-qwen2-bpe", "tiny-qwen2-bpe/p0.ids.txt", 2, COMI_KV_F16);
    check("tiny-qwen3-bpe", "tiny-qwen3-bpe/p0.ids.txt", 2, COMI_KV_F16);
    check("tiny-llama-spm", "tiny-llama-spm/p0.ids.txt", 2, COMI_KV_F32);
    /* integer dot kernels (Q8_K activations) */
    check("quant-llama.Q4_K", "quant-llama/ids.txt", 2, COMI_KV_F32);
    check("quant-llama.Q4_K", "quant-llama/ids.txt", 2, COMI_KV_F16);
    return test_exit();
}
#endif
