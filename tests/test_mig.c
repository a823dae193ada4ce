/*
 * test_mig.c — the merge stage (src/comi/mig.c): the dot/axpy kernels against
 * their scalar references, the 60 golden cases produced by the authors'
 * PyTorch code (../shared/golden/mig), every switch combination and edge
 * shape against a plain double-precision reference written here, thread-count
 * independence, and argument validation.
 */
#include "comi.h"
#include "comi/mig.h"
#include "limits.h"
#include "test.h"

#include <jansson.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Deterministic inputs                                                     */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state;

static double rng_uniform(void) { /* [0, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static float rng_normal(void) {
    double u = rng_uniform() + 1e-12, v = rng_uniform();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static float *random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
    rng_state = seed;
    float *a = malloc((size_t)(rows * cols) * sizeof *a + 1);
    for (int64_t i = 0; i < rows * cols; i++)
        a[i] = rng_normal();
    return a;
}

/* ------------------------------------------------------------------------ */
/* The plain reference: DESIGN.md "The merge, exactly", in double, no tricks */
/* ------------------------------------------------------------------------ */

static double ref_cos(const float *a, const float *b, int64_t d) {
    double na = 0, nb = 0, dot = 0;
    for (int64_t c = 0; c < d; c++) {
        na += (double)a[c] * a[c];
        nb += (double)b[c] * b[c];
        dot += (double)a[c] * b[c];
    }
    return dot / (fmax(sqrt(na), 1e-12) * fmax(sqrt(nb), 1e-12));
}

/* sizes: out (at least ceil(n/m)+1 entries), returns n_groups; memory: out
 * (n_memory x d), *n_memory set. */
static int64_t ref_merge(const float *h, int64_t n, int64_t d, const float *q,
                         const comi_merge_params *p, int32_t *sizes, float *memory,
                         int64_t *n_memory) {
    int64_t m = p->merge_size, G;
    double *rel = malloc((size_t)n * sizeof *rel);
    for (int64_t i = 0; i < n; i++)
        rel[i] = ref_cos(h + i * d, q, d);
    if (p->coarse) {
        G = (n + m - 1) / m;
        if (G <= 1) {
            G = 1;
            sizes[0] = (int32_t)n;
        } else {
            int64_t *rep = malloc((size_t)G * sizeof *rep);
            double *score = malloc((size_t)G * sizeof *score),
                   *quota = malloc((size_t)G * sizeof *quota);
            for (int64_t g = 0; g < G; g++) {
                rep[g] = g * m;
                for (int64_t i = g * m; i < (g + 1) * m && i < n; i++)
                    if (rel[i] > rel[rep[g]]) rep[g] = i;
            }
            double mx = -INFINITY, sum = 0;
            for (int64_t g = 0; g < G; g++) {
                double red = -INFINITY;
                for (int64_t o = 0; o < G; o++)
                    if (o != g) red = fmax(red, ref_cos(h + rep[g] * d, h + rep[o] * d, d));
                if (!p->coarse_redundancy) red = 0;
                score[g] = p->alpha_select * rel[rep[g]] - p->beta_select * red;
                mx = fmax(mx, -score[g]);
            }
            for (int64_t g = 0; g < G; g++)
                sum += exp(-score[g] - mx);
            int64_t total = 0;
            for (int64_t g = 0; g < G; g++) {
                quota[g] = (double)n * exp(-score[g] - mx) / sum;
                sizes[g] = (int32_t)floor(quota[g]);
                total += sizes[g];
            }
            for (int64_t r = 0; r < n - total; r++) { /* largest fraction, lowest index */
                int64_t best = -1;
                for (int64_t g = 0; g < G; g++) {
                    if (quota[g] < 0) continue; /* already given its extra token */
                    double f = quota[g] - floor(quota[g]);
                    if (best < 0 || f > quota[best] - floor(quota[best])) best = g;
                }
                sizes[best]++;
                quota[best] = -1;
            }
            free(rep);
            free(score);
            free(quota);
        }
    } else {
        double x = (double)n / (double)m, fl = floor(x);
        G = (int64_t)fl;
        if (x - fl > 0.5 || (x - fl == 0.5 && G % 2 == 1)) G++;
        if (G < 1) G = 1;
        for (int64_t g = 0; g < G; g++)
            sizes[g] = (int32_t)(n / G + (g < n % G ? 1 : 0));
    }
    int64_t pos = 0, mem = 0;
    for (int64_t g = 0; g < G; g++) {
        int64_t k = sizes[g];
        if (k == 0) continue;
        double *w = malloc((size_t)k * sizeof *w), mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < k; j++) {
            double red = 0;
            if (p->fine_redundancy)
                for (int64_t l = 0; l < k; l++)
                    if (l != j) red = fmax(red, ref_cos(h + (pos + j) * d, h + (pos + l) * d, d));
            w[j] = p->alpha_merge * rel[pos + j] - p->beta_merge * red;
            mx = fmax(mx, w[j]);
        }
        for (int64_t j = 0; j < k; j++)
            sum += (w[j] = exp(w[j] - mx));
        for (int64_t c = 0; c < d; c++) {
            double acc = 0;
            for (int64_t j = 0; j < k; j++)
                acc += (p->fine ? w[j] / sum : 1.0 / (double)k) * h[(pos + j) * d + c];
            memory[mem * d + c] = (float)acc;
        }
        free(w);
        pos += k;
        mem++;
    }
    *n_memory = mem;
    free(rel);
    return G;
}

/* Checks comi_merge against ref_merge: same sizes, memory within tol. */
static void check_against_ref(comi_ctx *ctx, const char *name, const float *h, int64_t n, int64_t d,
                              const float *q, const comi_merge_params *p, double tol) {
    int32_t *sizes = calloc((size_t)(n / p->merge_size + 2), sizeof *sizes);
    float *memory = malloc((size_t)(n * d) * sizeof *memory);
    int64_t n_mem = 0;
    int64_t G = ref_merge(h, n, d, q, p, sizes, memory, &n_mem);
    comi_merge_result r;
    comi_status st = comi_merge(ctx, h, n, d, q, p, &r);
    if (st != COMI_OK) {
        test_fail(name, "comi_merge failed: %s", comi_errmsg(ctx));
    } else if (r.n_groups != G || r.n_memory != n_mem) {
        test_fail(name, "n_groups %lld n_memory %lld, reference %lld %lld", (long long)r.n_groups,
                  (long long)r.n_memory, (long long)G, (long long)n_mem);
    } else {
        int64_t bad = -1;
        for (int64_t g = 0; g < G && bad < 0; g++)
            if (r.group_sizes[g] != sizes[g]) bad = g;
        double err = 0;
        for (int64_t i = 0; i < n_mem * d; i++)
            err = fmax(err, fabs(r.memory[i] - memory[i]));
        if (bad >= 0)
            test_fail(name, "group %lld has %d tokens, reference %d", (long long)bad,
                      r.group_sizes[bad], sizes[bad]);
        else
            test_check(name, err <= tol, "memory max |err| %.3g > %.3g", err, tol);
    }
    comi_merge_result_free(&r);
    free(sizes);
    free(memory);
}

/* ------------------------------------------------------------------------ */
/* Kernels                                                                  */
/* ------------------------------------------------------------------------ */

static void test_kernels(void) {
    static const int64_t dims[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 100, 896, 4096, 4099};
    int bad = 0, bad2 = 0, badf = 0, bad_axpy = 0, bad_sym = 0;
    double worst_f = 0;
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
        int64_t d = dims[t];
        float *a = random_matrix(6, d, 100 + (uint64_t)t);
        for (int64_t i = 0; i < d; i += 7)
            a[i] *= 1e3f; /* mixed magnitudes */
        const float *x[2] = {a, a + 5 * d};
        const float *y[4] = {a + d, a + 2 * d, a + 3 * d, a + 4 * d};
        float of[8];
        mig_dotf_2x4(x, y, d, of);
        for (int c = 0; c < 4; c++) {
            double ref = mig_dot_ref(a, y[c], d), o2[2];
            if (mig_dot(a, y[c], d) != ref) bad++;
            if (mig_dot(y[c], a, d) != ref) bad_sym++;
            mig_dot2(a, y[c], a, d, o2);
            if (o2[0] != ref || o2[1] != mig_dot_ref(a, a, d)) bad2++;
            for (int r = 0; r < 2; r++) {
                float rf = mig_dotf_ref(x[r], y[c], d);
                if (of[r * 4 + c] != rf) badf++;
                if (mig_dotf_ref(y[c], x[r], d) != rf) bad_sym++;
                double exact = mig_dot_ref(x[r], y[c], d);
                double scale = sqrt(mig_dot_ref(x[r], x[r], d) * mig_dot_ref(y[c], y[c], d));
                worst_f = fmax(worst_f, fabs(rf - exact) / scale);
            }
        }
        double *acc = calloc((size_t)d, sizeof *acc), *acc_ref = calloc((size_t)d, sizeof *acc);
        for (int r = 0; r < 4; r++) {
            mig_axpy(acc, 0.1 + 0.3 * r, y[r], d);
            mig_axpy_ref(acc_ref, 0.1 + 0.3 * r, y[r], d);
        }
        if (memcmp(acc, acc_ref, (size_t)d * sizeof *acc) != 0) bad_axpy++;
        free(acc);
        free(acc_ref);
        free(a);
    }
    test_check("kernel mig_dot == mig_dot_ref bitwise", bad == 0, "%d mismatches", bad);
    test_check("kernel mig_dot2 == mig_dot_ref bitwise", bad2 == 0, "%d mismatches", bad2);
    test_check("kernel mig_dotf_2x4 == mig_dotf_ref bitwise", badf == 0, "%d mismatches", badf);
    test_check("kernel dot products symmetric bitwise", bad_sym == 0, "%d mismatches", bad_sym);
    test_check("kernel mig_dotf_ref within 1e-5 of the double dot (relative to |x||y|)",
               worst_f <= 1e-5, "error %g", worst_f);
    test_check("kernel mig_axpy == mig_axpy_ref bitwise", bad_axpy == 0, "%d mismatches", bad_axpy);
    float x3[3] = {1, 2, 3}, y3[3] = {4, -5, 6};
    test_check("kernel mig_dot value",
               mig_dot(x3, y3, 3) == 12.0 && mig_dotf_ref(x3, y3, 3) == 12.0f, "got %g",
               mig_dot(x3, y3, 3));
}

/* ------------------------------------------------------------------------ */
/* Golden cases                                                             */
/* ------------------------------------------------------------------------ */

static void *load_golden(const char *dir, const char *file, size_t want) {
    char path[1024];
    snprintf(path, sizeof path, "%s/mig/%s", dir, file);
    size_t len = 0;
    void *buf = test_read_file(path, &len);
    if (buf && len != want) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void test_golden(comi_ctx *ctx) {
    const char *dir = test_golden_dir();
    if (!dir) {
        test_skip("golden mig (60 cases)",
                  "golden data not found ($COMI_GOLDEN or ../shared/golden)");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/mig/manifest.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    json_t *cases = root ? json_object_get(root, "cases") : NULL;
    if (!json_is_array(cases)) {
        test_fail("golden mig manifest", "%s: %s", path, root ? "no cases array" : jerr.text);
        json_decref(root);
        return;
    }
    test_check("golden mig manifest has 60 cases", json_array_size(cases) == 60, "%zu cases",
               json_array_size(cases));
    size_t idx;
    json_t *c;
    json_array_foreach(cases, idx, c) {
        char name[128];
        const char *id = json_string_value(json_object_get(c, "id"));
        snprintf(name, sizeof name, "golden mig %s", id ? id : "?");
        int64_t n = json_integer_value(json_object_get(c, "n_tokens"));
        int64_t d = json_integer_value(json_object_get(c, "dim"));
        int64_t n_mem = json_integer_value(json_object_get(c, "n_memory"));
        comi_merge_params p = comi_merge_default_params();
        p.merge_size = json_integer_value(json_object_get(c, "merge_size"));
        p.alpha_select = (float)json_number_value(json_object_get(c, "alpha_select"));
        p.beta_select = (float)json_number_value(json_object_get(c, "beta_select"));
        p.alpha_merge = (float)json_number_value(json_object_get(c, "alpha_merge"));
        p.beta_merge = (float)json_number_value(json_object_get(c, "beta_merge"));
        p.coarse = json_is_true(json_object_get(c, "coarse_grained_on"));
        p.fine = json_is_true(json_object_get(c, "fine_grained_on"));
        p.coarse_redundancy = json_is_true(json_object_get(c, "redun_coarse"));
        p.fine_redundancy = json_is_true(json_object_get(c, "redun_fine"));
        json_t *files = json_object_get(c, "files");
        const char *fc = json_string_value(json_object_get(files, "context"));
        const char *fq = json_string_value(json_object_get(files, "query"));
        const char *fm = json_string_value(json_object_get(files, "memory"));
        const char *fs = json_string_value(json_object_get(files, "group_sizes"));
        int64_t G = p.coarse ? json_integer_value(json_object_get(c, "n_groups")) : 0;
        if (n < 1 || d < 1 || !fc || !fq || !fm || (p.coarse && (!fs || G < 1))) {
            test_fail(name, "manifest entry incomplete");
            continue;
        }
        float *h = load_golden(dir, fc, (size_t)(n * d) * 4);
        float *q = load_golden(dir, fq, (size_t)d * 4);
        float *mem = load_golden(dir, fm, (size_t)(n_mem * d) * 4);
        int32_t *sizes = p.coarse ? load_golden(dir, fs, (size_t)G * 4) : NULL;
        comi_merge_result r;
        if (!h || !q || !mem || (p.coarse && !sizes)) {
            test_fail(name, "golden files missing or of the wrong size");
        } else if (comi_merge(ctx, h, n, d, q, &p, &r) != COMI_OK) {
            test_fail(name, "comi_merge failed: %s", comi_errmsg(ctx));
        } else {
            int ok = 1;
            if (p.coarse) {
                if (r.n_groups != G) {
                    test_fail(name, "n_groups %lld, golden %lld", (long long)r.n_groups,
                              (long long)G);
                    ok = 0;
                }
                for (int64_t g = 0; ok && g < G; g++)
                    if (r.group_sizes[g] != sizes[g]) {
                        test_fail(name, "group %lld size %d, golden %d", (long long)g,
                                  r.group_sizes[g], sizes[g]);
                        ok = 0;
                    }
            }
            if (ok && r.n_memory != n_mem) {
                test_fail(name, "n_memory %lld, golden %lld", (long long)r.n_memory,
                          (long long)n_mem);
                ok = 0;
            }
            if (ok) {
                double worst = 0;
                int64_t at = 0;
                for (int64_t i = 0; i < n_mem * d; i++) {
                    double rel_err = fabs((double)r.memory[i] - mem[i]) / fmax(1.0, fabs(mem[i]));
                    if (rel_err > worst) {
                        worst = rel_err;
                        at = i;
                    }
                }
                test_check(name, worst <= 1e-4, "memory[%lld][%lld] = %.7g, golden %.7g",
                           (long long)(at / d), (long long)(at % d), r.memory[at], mem[at]);
            }
            comi_merge_result_free(&r);
        }
        free(h);
        free(q);
        free(mem);
        free(sizes);
    }
    json_decref(root);
}

/* ------------------------------------------------------------------------ */
/* Switches, edge shapes, threads, validation                               */
/* ------------------------------------------------------------------------ */

static void test_switches(comi_ctx *ctx) {
    const int64_t n = 203, d = 24, m = 8; /* n not a multiple of m */
    float *h = random_matrix(n, d, 7), *q = random_matrix(1, d, 8);
    for (int64_t c = 0; c < d; c++) /* a few near-duplicates so redundancy matters */
        for (int64_t i = 40; i < 48; i++)
            h[i * d + c] = h[40 * d + c] + 0.05f * h[i * d + c];
    for (int combo = 0; combo < 16; combo++) {
        comi_merge_params p = comi_merge_default_params();
        p.merge_size = m;
        p.alpha_select = 1.5f;
        p.beta_select = 0.75f;
        p.alpha_merge = 2.0f;
        p.beta_merge = 1.25f;
        p.coarse = combo & 1;
        p.fine = (combo >> 1) & 1;
        p.coarse_redundancy = (combo >> 2) & 1;
        p.fine_redundancy = (combo >> 3) & 1;
        char name[128];
        snprintf(name, sizeof name,
                 "switches coarse=%d fine=%d coarse_red=%d fine_red=%d vs reference", p.coarse,
                 p.fine, p.coarse_redundancy, p.fine_redundancy);
        check_against_ref(ctx, name, h, n, d, q, &p, 1e-5);
    }
    free(h);
    free(q);
}

/* Random shapes, weights and switches against the reference. */
static void test_random_configs(comi_ctx *ctx) {
    for (int t = 0; t < 120; t++) {
        rng_state = 1000 + (uint64_t)t;
        int64_t n = 1 + (int64_t)(rng_uniform() * 300), d = 1 + (int64_t)(rng_uniform() * 40);
        comi_merge_params p = comi_merge_default_params();
        p.merge_size = 1 + (int64_t)(rng_uniform() * 20);
        p.alpha_select = (float)(rng_uniform() * 4 - 1);
        p.beta_select = (float)(rng_uniform() * 4 - 1);
        p.alpha_merge = (float)(rng_uniform() * 4 - 1);
        p.beta_merge = (float)(rng_uniform() * 4 - 1);
        int sw = (int)(rng_uniform() * 16);
        p.coarse = sw & 1;
        p.fine = (sw >> 1) & 1;
        p.coarse_redundancy = (sw >> 2) & 1;
        p.fine_redundancy = (sw >> 3) & 1;
        float *h = random_matrix(n, d, 2000 + (uint64_t)t),
              *q = random_matrix(1, d, 3000 + (uint64_t)t);
        char name[160];
        snprintf(name, sizeof name,
                 "random config %d (n=%lld d=%lld m=%lld switches=%d) vs reference", t,
                 (long long)n, (long long)d, (long long)p.merge_size, sw);
        check_against_ref(ctx, name, h, n, d, q, &p, 1e-5);
        free(h);
        free(q);
    }
}

static void test_edges(comi_ctx *ctx) {
    struct {
        const char *what;
        int64_t n, d, m;
    } shapes[] = {
        {"n=1", 1, 16, 4},
        {"n<m", 5, 16, 8},
        {"m=1", 37, 16, 1},
        {"d=1", 50, 1, 4},
        {"n%m!=0", 101, 12, 16},
        {"m>n coarse G=1", 16, 8, 64},
        {"n=2 m=1", 2, 5, 1},
        {"long groups", 700, 9, 600},
        {"d%8!=0 big d", 64, 1001, 4},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        float *h = random_matrix(shapes[s].n, shapes[s].d, 20 + s),
              *q = random_matrix(1, shapes[s].d, 40 + s);
        for (int combo = 0; combo < 4; combo++) {
            comi_merge_params p = comi_merge_default_params();
            p.merge_size = shapes[s].m;
            p.coarse = combo & 1;
            p.fine = (combo >> 1) & 1;
            char name[128];
            snprintf(name, sizeof name, "edge %s coarse=%d fine=%d vs reference", shapes[s].what,
                     p.coarse, p.fine);
            check_against_ref(ctx, name, h, shapes[s].n, shapes[s].d, q, &p, 1e-5);
        }
        free(h);
        free(q);
    }

    /* n = 1: the memory is the token itself, exactly */
    {
        float h[4] = {0.5f, -1.25f, 3.0f, 7.0f}, q[4] = {1, 0, 0, 0};
        comi_merge_result r;
        comi_status st = comi_merge(ctx, h, 1, 4, q, NULL, &r);
        test_check("edge n=1 memory is the token",
                   st == COMI_OK && r.n_memory == 1 && r.n_groups == 1 && r.group_sizes[0] == 1 &&
                       memcmp(r.memory, h, sizeof h) == 0 && r.weight[0] == 1.0f &&
                       r.redundancy[0] == 0.0f,
                   "status %d n_memory %lld", (int)st, (long long)r.n_memory);
        comi_merge_result_free(&r);
    }
    /* all rows equal: every memory equals the row; redundancy 1 everywhere */
    {
        int64_t n = 40, d = 6;
        float *h = malloc((size_t)(n * d) * sizeof *h), q[6] = {1, 2, 3, 4, 5, 6};
        for (int64_t i = 0; i < n * d; i++)
            h[i] = (float)(i % d) - 2.5f;
        comi_merge_params p = comi_merge_default_params();
        p.merge_size = 8;
        comi_merge_result r;
        comi_status st = comi_merge(ctx, h, n, d, q, &p, &r);
        double err = 0, red_err = 0;
        int32_t total = 0;
        for (int64_t i = 0; st == COMI_OK && i < r.n_memory * d; i++)
            err = fmax(err, fabs(r.memory[i] - h[i % d]));
        for (int64_t i = 0; st == COMI_OK && i < n; i++)
            if (r.memory_len[r.memory_index[i]] > 1)
                red_err = fmax(red_err, fabs(r.redundancy[i] - 1));
        for (int64_t g = 0; st == COMI_OK && g < r.n_groups; g++)
            total += r.group_sizes[g];
        test_check("edge all rows equal",
                   st == COMI_OK && err <= 1e-6 && red_err <= 1e-6 && total == n && r.n_groups == 5,
                   "status %d memory err %g redundancy err %g", (int)st, err, red_err);
        comi_merge_result_free(&r);
        check_against_ref(ctx, "edge all rows equal vs reference", h, n, d, q, &p, 1e-6);
        free(h);
    }
    /* zero vectors: cos is 0, never NaN */
    {
        int64_t n = 24, d = 8;
        float *h = random_matrix(n, d, 99), q0[8] = {0}, *q = random_matrix(1, d, 98);
        for (int64_t i = 0; i < n; i += 3)
            memset(h + i * d, 0, (size_t)d * sizeof *h);
        comi_merge_params p = comi_merge_default_params();
        p.merge_size = 4;
        comi_merge_result r;
        comi_status st = comi_merge(ctx, h, n, d, q0, &p, &r);
        int finite = st == COMI_OK;
        for (int64_t i = 0; finite && i < r.n_memory * d; i++)
            finite = isfinite(r.memory[i]);
        for (int64_t i = 0; finite && i < n; i++)
            finite = r.relevance[i] == 0.0f;
        test_check("edge zero query and zero rows stay finite", finite, "status %d: %s", (int)st,
                   comi_errmsg(ctx));
        comi_merge_result_free(&r);
        check_against_ref(ctx, "edge zero rows vs reference", h, n, d, q, &p, 1e-5);
        check_against_ref(ctx, "edge zero query vs reference", h, n, d, q0, &p, 1e-5);
        memset(h, 0, (size_t)(n * d) * sizeof *h);
        check_against_ref(ctx, "edge all-zero context vs reference", h, n, d, q, &p, 1e-6);
        free(h);
        free(q);
    }
    /* huge values: float32 dot products would overflow; results stay exact */
    {
        int64_t n = 40, d = 12;
        float *h = random_matrix(n, d, 77), *q = random_matrix(1, d, 78);
        for (int64_t i = 0; i < n * d; i++)
            h[i] *= (i / d) % 3 == 0 ? 1e30f : 1.0f;
        comi_merge_params p = comi_merge_default_params();
        p.merge_size = 4;
        check_against_ref(ctx, "edge rows of norm 1e30 vs reference", h, n, d, q, &p, 1e-5 * 1e30);
        comi_merge_result r;
        comi_status st = comi_merge(ctx, h, n, d, q, &p, &r);
        int finite = st == COMI_OK;
        for (int64_t i = 0; finite && i < n; i++)
            finite = isfinite(r.redundancy[i]) && r.redundancy[i] <= 1.0f + 1e-6f &&
                     isfinite(r.weight[i]);
        test_check("edge rows of norm 1e30 give finite redundancy and weights", finite, "status %d",
                   (int)st);
        comi_merge_result_free(&r);
        free(h);
        free(q);
    }
    /* the result's bookkeeping is consistent */
    {
        int64_t n = 333, d = 16;
        float *h = random_matrix(n, d, 5), *q = random_matrix(1, d, 6);
        comi_merge_params p = comi_merge_default_params();
        p.merge_size = 4;
        p.alpha_select = 6.0f; /* spread the sizes so some groups get none */
        comi_merge_result r;
        comi_status st = comi_merge(ctx, h, n, d, q, &p, &r);
        int ok = st == COMI_OK, zeros = 0;
        int64_t pos = 0, mem = 0;
        for (int64_t g = 0; ok && g < r.n_groups; g++) {
            if (r.group_sizes[g] == 0) {
                zeros++;
                continue;
            }
            ok = r.memory_start[mem] == pos && r.memory_len[mem] == r.group_sizes[g];
            double wsum = 0;
            for (int64_t i = pos; i < pos + r.group_sizes[g]; i++) {
                ok = ok && r.memory_index[i] == mem;
                wsum += r.weight[i];
            }
            ok = ok && fabs(wsum - 1) < 1e-5;
            pos += r.group_sizes[g];
            mem++;
        }
        ok = ok && pos == n && mem == r.n_memory && r.n_groups == 84;
        for (int64_t g = 0; ok && g < r.n_groups; g++) {
            int64_t rp = r.group_rep[g];
            ok = rp >= g * 4 && rp < g * 4 + 4 && r.group_relevance[g] == r.relevance[rp];
        }
        test_check("result spans, weights and representatives are consistent", ok, "status %d (%s)",
                   (int)st, comi_errmsg(ctx));
        test_check("coarse stage can produce empty groups", ok && zeros > 0, "%d empty groups",
                   zeros);
        comi_merge_result_free(&r);
        free(h);
        free(q);
    }
}

static int same_result(const comi_merge_result *a, const comi_merge_result *b) {
    int64_t n = a->n_tokens, d = a->d_model;
    return a->n_groups == b->n_groups && a->n_memory == b->n_memory &&
           !memcmp(a->group_sizes, b->group_sizes, (size_t)a->n_groups * 4) &&
           !memcmp(a->group_redundancy, b->group_redundancy, (size_t)a->n_groups * 4) &&
           !memcmp(a->memory, b->memory, (size_t)(a->n_memory * d) * 4) &&
           !memcmp(a->relevance, b->relevance, (size_t)n * 4) &&
           !memcmp(a->redundancy, b->redundancy, (size_t)n * 4) &&
           !memcmp(a->weight, b->weight, (size_t)n * 4);
}

static void test_threads(void) {
    struct {
        int64_t n, d, m;
        bool coarse;
    } cfg[] = {{1500, 96, 4, true}, {2000, 40, 700, false}, {1200, 33, 500, true}};
    static const int threads[] = {1, 2, 3, 7};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        float *h = random_matrix(cfg[c].n, cfg[c].d, 300 + c),
              *q = random_matrix(1, cfg[c].d, 400 + c);
        comi_merge_params p = comi_merge_default_params();
        p.merge_size = cfg[c].m;
        p.coarse = cfg[c].coarse;
        comi_merge_result base = {0};
        int ok = 1;
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            comi_ctx_params cp = comi_ctx_default_params();
            cp.n_threads = threads[t];
            comi_ctx *ctx = comi_ctx_new(&cp);
            comi_merge_result r;
            if (comi_merge(ctx, h, cfg[c].n, cfg[c].d, q, &p, &r) != COMI_OK)
                ok = 0;
            else if (t == 0)
                base = r;
            else {
                ok = ok && same_result(&base, &r);
                comi_merge_result_free(&r);
            }
            comi_ctx_free(ctx);
        }
        char name[128];
        snprintf(name, sizeof name,
                 "threads 1/2/3/7 bit-identical (n=%lld d=%lld m=%lld coarse=%d)",
                 (long long)cfg[c].n, (long long)cfg[c].d, (long long)cfg[c].m, cfg[c].coarse);
        test_check(name, ok, "results differ between thread counts");
        comi_merge_result_free(&base);
        free(h);
        free(q);
    }
}

static void expect_invalid(comi_ctx *ctx, const char *name, const float *h, int64_t n, int64_t d,
                           const float *q, const comi_merge_params *p, const char *needle) {
    comi_merge_result r;
    memset(&r, 0xab, sizeof r);
    comi_status st = comi_merge(ctx, h, n, d, q, p, &r);
    int zeroed = r.memory == NULL && r.group_sizes == NULL && r.n_memory == 0;
    test_check(name, st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), needle) && zeroed,
               "status %d, message '%s'", (int)st, comi_errmsg(ctx));
}

static void test_validation(comi_ctx *ctx) {
    float h[8] = {1, 2, 3, 4, 5, 6, 7, 8}, q[4] = {1, 1, 1, 1};
    comi_merge_params p = comi_merge_default_params();
    comi_merge_result r;
    test_check("invalid NULL ctx", comi_merge(NULL, h, 2, 4, q, &p, &r) == COMI_ERR_INVALID_ARG,
               "accepted");
    expect_invalid(ctx, "invalid NULL hidden", NULL, 2, 4, q, &p, "hidden");
    expect_invalid(ctx, "invalid NULL query", h, 2, 4, NULL, &p, "query");
    expect_invalid(ctx, "invalid n_tokens 0", h, 0, 4, q, &p, "n_tokens = 0");
    expect_invalid(ctx, "invalid d_model 0", h, 2, 0, q, &p, "d_model = 0");
    p.merge_size = 0;
    expect_invalid(ctx, "invalid merge_size 0", h, 2, 4, q, &p, "merge_size = 0");
    p.merge_size = -3;
    expect_invalid(ctx, "invalid merge_size -3", h, 2, 4, q, &p, "merge_size = -3");
    p = comi_merge_default_params();
    p.beta_merge = NAN;
    expect_invalid(ctx, "invalid beta_merge NaN", h, 2, 4, q, &p, "beta_merge");
    p = comi_merge_default_params();
    h[6] = NAN;
    expect_invalid(ctx, "invalid NaN in hidden", h, 2, 4, q, &p, "hidden[1][2]");
    h[6] = INFINITY;
    expect_invalid(ctx, "invalid Inf in hidden", h, 2, 4, q, &p, "hidden[1][2]");
    h[6] = 7;
    q[3] = -INFINITY;
    expect_invalid(ctx, "invalid Inf in query", h, 2, 4, q, &p, "query[3]");
    q[3] = 1;
    test_check("valid after errors",
               comi_merge(ctx, h, 2, 4, q, &p, &r) == COMI_OK && comi_errmsg(ctx)[0] == '\0', "%s",
               comi_errmsg(ctx));
    comi_merge_result_free(&r);
    comi_merge_result_free(&r); /* zeroed: a second free is a no-op */
    comi_merge_result_free(NULL);
    test_pass("comi_merge_result_free twice and on NULL");
}

/* max_context_tokens and max_bytes: refused with COMI_ERR_LIMIT before any
 * allocation, just below the need; accepted at it. */
static void test_limits(void) {
    enum { N = 10, D = 4 };
    float hidden[N * D], q[D];
    for (int i = 0; i < N * D; i++)
        hidden[i] = (float)((i * 7) % 11) - 5.0f;
    for (int c = 0; c < D; c++)
        q[c] = (float)c + 1.0f;
    comi_merge_params p = comi_merge_default_params();
    p.merge_size = 4;
    /* By hand, 1 thread, 3 groups of merge size 4 over 10 tokens:
     * result 3 x 24 + 10 x 24 + 3 memories x (16 + 4 x 4) = 408;
     * scratch (4 x 10 + 512) doubles = 4416; coarse: 3 x (24 + 16) quotas and
     * group arrays + 3 x 4 floats of representatives + 3 x 3 cosines = 204. */
    const uint64_t need = 5028;
    test_check("limit_merge_bytes_formula", mig_merge_bytes(N, D, &p, 1) == need, "%llu",
               (unsigned long long)mig_merge_bytes(N, D, &p, 1));
    test_check("limit_merge_bytes_overflow",
               mig_merge_bytes(INT32_MAX, INT64_MAX / 2, &p, 1) == UINT64_MAX, "no saturation");

    comi_merge_result r;
    comi_ctx *c = limits_ctx(1, N - 1, 0);
    comi_status st = comi_merge(c, hidden, N, D, q, &p, &r);
    test_check("limit_merge_tokens_below",
               st == COMI_ERR_LIMIT && strstr(comi_errmsg(c), "10 tokens") &&
                   strstr(comi_errmsg(c), "limit of 9") &&
                   strstr(comi_errmsg(c), "max_context_tokens") && r.memory == NULL,
               "status %d: %s", st, comi_errmsg(c));
    test_check("limit_ctx_getters",
               comi_ctx_max_context_tokens(c) == N - 1 && comi_ctx_max_bytes(c) > need, "%lld %llu",
               (long long)comi_ctx_max_context_tokens(c),
               (unsigned long long)comi_ctx_max_bytes(c));
    comi_ctx_free(c);
    c = limits_ctx(1, N, 0);
    st = comi_merge(c, hidden, N, D, q, &p, &r);
    test_check("limit_merge_tokens_at", st == COMI_OK && r.n_memory >= 1, "status %d: %s", st,
               comi_errmsg(c));
    comi_merge_result_free(&r);
    comi_ctx_free(c);

    c = limits_ctx(1, 0, need - 1);
    st = comi_merge(c, hidden, N, D, q, &p, &r);
    test_check("limit_merge_bytes_below",
               st == COMI_ERR_LIMIT && strstr(comi_errmsg(c), "needs 5028 bytes") &&
                   strstr(comi_errmsg(c), "limit of 5027 bytes") &&
                   strstr(comi_errmsg(c), "--max-memory"),
               "status %d: %s", st, comi_errmsg(c));
    test_check("limit_ctx_getter_bytes", comi_ctx_max_bytes(c) == need - 1, "%llu",
               (unsigned long long)comi_ctx_max_bytes(c));
    comi_ctx_free(c);
    c = limits_ctx(1, 0, need);
    st = comi_merge(c, hidden, N, D, q, &p, &r);
    test_check("limit_merge_bytes_at", st == COMI_OK && r.n_memory >= 1, "status %d: %s", st,
               comi_errmsg(c));
    comi_merge_result_free(&r);
    comi_ctx_free(c);

    /* no coarse stage: no representatives, uniform groups (round(10 / 4) = 2):
     * 2 x 24 + 240 + 2 x 32 + 4416 */
    p.coarse = false;
    test_check("limit_merge_bytes_no_coarse", mig_merge_bytes(N, D, &p, 1) == 4768, "%llu",
               (unsigned long long)mig_merge_bytes(N, D, &p, 1));
    comi_ctx_params dp = comi_ctx_default_params();
    test_check("limit_ctx_defaults", dp.max_context_tokens == 0 && dp.max_bytes == 0,
               "defaults %lld %llu", (long long)dp.max_context_tokens,
               (unsigned long long)dp.max_bytes);
}

int main(void) {
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 2;
    comi_ctx *ctx = comi_ctx_new(&cp);
    test_kernels();
    test_golden(ctx);
    test_switches(ctx);
    test_edges(ctx);
    test_random_configs(ctx);
    test_threads();
    test_validation(ctx);
    test_limits();
    comi_ctx_free(ctx);
    return test_exit();
}
