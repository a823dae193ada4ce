/* test_core.c — contexts, status strings, the thread pool. */
#include "comi.h"
#include "base/common.h"
#include "base/pool.h"
#include "test.h"

#include <stdatomic.h>

typedef struct {
    int64_t *out;
} fill_arg;

static void fill(void *varg, int64_t b, int64_t e, int worker) {
    fill_arg *a = varg;
    (void)worker;
    for (int64_t i = b; i < e; i++) a->out[i] = i * i;
}

int main(void) {
    comi_ctx *ctx = comi_ctx_new(NULL);
    test_check("ctx_new", ctx != NULL, "comi_ctx_new returned NULL");
    test_check("ctx_threads", comi_ctx_threads(ctx) >= 1, "threads %d", comi_ctx_threads(ctx));
    test_check("errmsg_empty", strcmp(comi_errmsg(ctx), "") == 0, "'%s'", comi_errmsg(ctx));
    comi_ctx_free(ctx);
    comi_ctx_free(NULL);
    test_check("status_str", strcmp(comi_status_str(COMI_ERR_IO), "i/o error") == 0, "%s",
               comi_status_str(COMI_ERR_IO));
    test_check("version", strcmp(comi_version(), COMI_VERSION_STRING) == 0, "%s", comi_version());

    /* spin budgets 0 (sleep at once), 1 us (spins time out) and the
     * default: the same results */
    for (int v = 0; v < 6; v++) {
        int nt = v < 5 ? v + 1 : 3;
        const char *spin = v < 3 ? NULL : (v == 3 ? "0" : "1");
        if (spin) setenv("COMI_POOL_SPIN_US", spin, 1);
        comi_pool *p = pool_new(nt);
        unsetenv("COMI_POOL_SPIN_US");
        int64_t n = 10007;
        int64_t *out = calloc((size_t)n, sizeof *out);
        fill_arg a = {out};
        int ok = 1;
        for (int rep = 0; rep < 50 && ok; rep++) {
            memset(out, 0xff, (size_t)n * sizeof *out);
            pool_for(p, n, 97, fill, &a);
            for (int64_t i = 0; i < n; i++)
                if (out[i] != i * i) ok = 0;
        }
        char name[64];
        snprintf(name, sizeof name, "pool_for_threads_%d_spin_%s", nt, spin ? spin : "default");
        test_check(name, ok, "wrong output");
        free(out);
        pool_free(p);
    }

    comi_err e;
    comi_err_clear(&e);
    size_t big = (size_t)1 << 62;
    void *ptr = comi_alloc_array(&e, big, 16, "test");
    test_check("alloc_overflow", ptr == NULL && e.status == COMI_ERR_LIMIT, "status %d", e.status);
    return test_exit();
}
