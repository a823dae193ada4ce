/* test_lora.c — LoRA on q/k/v/o applied on the fly equals the same model
 * with W + (alpha/r) B A merged into its weights by this test in double
 * precision (written as a float32 Hugging Face directory); B = 0 equals the
 * base model bit for bit; GGUF llama bases (permuted q/k rows) give the same
 * result as HF bases; malformed adapters fail with a message. */
#include "comi.h"
#include "base/common.h"
#include "formats/quant.h"
#include "formats/safetensors.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static const char *golden;
static char tmpdir[] = "/tmp/comi_test_lora_XXXXXX";

typedef struct st_entry {
    char name[160];
    int64_t rows, cols; /* cols = 0: a vector of rows elements */
    float *data;
} st_entry;

/* Writes a float32 safetensors file. */
static int write_st(const char *path, const st_entry *es, int n) {
    size_t cap = 256 + (size_t)n * 256, len = 0, off = 0;
    char *hdr = malloc(cap);
    len += (size_t)snprintf(hdr + len, cap - len, "{");
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)(es[i].rows * (es[i].cols ? es[i].cols : 1)) * 4;
        if (es[i].cols)
            len += (size_t)snprintf(hdr + len, cap - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],"
                                    "\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", es[i].name, (long long)es[i].rows,
                                    (long long)es[i].cols, off, off + bytes);
        else
            len +=
                (size_t)snprintf(hdr + len, cap - len,
                                 "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],"
                                 "\"data_offsets\":[%zu,%zu]}",
                                 i ? "," : "", es[i].name, (long long)es[i].rows, off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8)
        hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return 0;
    }
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, len, f);
    for (int i = 0; i < n; i++)
        fwrite(es[i].data, 4, (size_t)(es[i].rows * (es[i].cols ? es[i].cols : 1)), f);
    fclose(f);
    free(hdr);
    return 1;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static comi_status run(comi_ctx *ctx, const char *model, const comi_model_params *mp,
                       const int32_t *ids, int64_t n, float **hidden, float **logits) {
    comi_model *m = NULL;
    comi_status st = comi_model_load(ctx, model, mp, &m);
    if (st) return st;
    comi_model_info in;
    comi_model_get_info(m, &in);
    *hidden = malloc((size_t)(n * in.n_embd) * sizeof(float));
    *logits = malloc((size_t)(n * in.n_vocab) * sizeof(float));
    comi_session *s = NULL;
    st = comi_session_new(ctx, m, n, &s);
    comi_eval_params ep = comi_eval_default_params();
    ep.hidden_out = *hidden;
    ep.logits_out = *logits;
    ep.n_logits = n;
    if (!st) st = comi_session_eval(ctx, s, ids, NULL, n, &ep);
    comi_session_free(s);
    comi_model_free(m);
    return st;
}

/* Builds adapter (r = 4, alpha = 8) and merged reference for one HF model. */
static void test_model(comi_ctx *ctx, const char *name) {
    char hf[1024], gguf[1024], path[2048], adir[1200], mdir[1200];
    snprintf(hf, sizeof hf, "%s/forward/models/%s.hf", golden, name);
    snprintf(gguf, sizeof gguf, "%s/forward/models/%s.gguf", golden, name);
    snprintf(adir, sizeof adir, "%s/%s.adapter", tmpdir, name);
    snprintf(mdir, sizeof mdir, "%s/%s.merged", tmpdir, name);
    mkdir(adir, 0700);
    mkdir(mdir, 0700);
    comi_err e;
    comi_err_clear(&e);
    st_model *base = NULL;
    if (st_open_dir(&e, hf, &base)) {
        test_fail("lora_setup", "%s", e.msg);
        return;
    }
    const int64_t r = 4;
    const float alpha = 8, scale = alpha / (float)r;
    int64_t nt = st_n_tensors(base);
    st_entry *merged = calloc((size_t)nt, sizeof *merged);
    st_entry *lora = calloc((size_t)nt * 2, sizeof *lora);
    st_entry *zero = calloc((size_t)nt * 2, sizeof *zero);
    int n_lora = 0;
    for (int64_t i = 0; i < nt; i++) {
        const comi_tensor *t = st_tensor_at(base, i);
        st_entry *me = &merged[i];
        snprintf(me->name, sizeof me->name, "%s", t->name);
        me->rows = t->n_dims == 2 ? t->ne[1] : t->ne[0];
        me->cols = t->n_dims == 2 ? t->ne[0] : 0;
        int64_t nel = t->ne[0] * (t->n_dims == 2 ? t->ne[1] : 1);
        me->data = malloc((size_t)nel * sizeof(float));
        quant_dequant_row(t->type, t->data, me->data, nel);
        const char *proj = strstr(t->name, "self_attn.");
        if (!proj || !strstr(t->name, "_proj.weight")) continue;
        /* adapter for this projection: A (r x in), B (out x r) */
        int64_t in = me->cols, out = me->rows;
        char stem[120];
        snprintf(stem, sizeof stem, "base_model.model.%.*s", (int)(strlen(t->name) - 7) & 63,
                 t->name);
        st_entry *a = &lora[n_lora], *b = &lora[n_lora + 1];
        snprintf(a->name, sizeof a->name, "%s.lora_A.weight", stem);
        snprintf(b->name, sizeof b->name, "%s.lora_B.weight", stem);
        a->rows = r, a->cols = in, b->rows = out, b->cols = r;
        a->data = malloc((size_t)(r * in) * sizeof(float));
        b->data = malloc((size_t)(out * r) * sizeof(float));
        for (int64_t k = 0; k < r * in; k++)
            a->data[k] = frand() * 0.2f;
        for (int64_t k = 0; k < out * r; k++)
            b->data[k] = frand() * 0.2f;
        zero[n_lora] = *a;
        zero[n_lora + 1] = *b;
        zero[n_lora + 1].data = calloc((size_t)(out * r), sizeof(float));
        for (int64_t o = 0; o < out; o++)
            for (int64_t c = 0; c < in; c++) {
                double acc = 0;
                for (int64_t j = 0; j < r; j++)
                    acc += (double)b->data[o * r + j] * a->data[j * in + c];
                me->data[o * in + c] = (float)((double)me->data[o * in + c] + scale * acc);
            }
        n_lora += 2;
    }
    st_close(base);
    snprintf(path, sizeof path, "%s/model.safetensors", mdir);
    int ok = write_st(path, merged, (int)nt);
    size_t cl;
    snprintf(path, sizeof path, "%s/config.json", hf);
    char *cfg = test_read_file(path, &cl);
    snprintf(path, sizeof path, "%s/config.json", mdir);
    ok = ok && cfg && comi_write_file(&e, path, cfg, cl) == COMI_OK;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", adir);
    ok = ok && write_st(path, lora, n_lora);
    snprintf(path, sizeof path, "%s/adapter_config.json", adir);
    const char *acfg = "{\"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\", \"k_proj\", "
                       "\"v_proj\", \"o_proj\"]}";
    ok = ok && comi_write_file(&e, path, acfg, strlen(acfg)) == COMI_OK;
    char zpath[1300];
    snprintf(zpath, sizeof zpath, "%s/zero.safetensors", adir);
    ok = ok && write_st(zpath, zero, n_lora);
    free(cfg);
    if (!test_check("lora_files_written", ok, "could not write temp files")) return;

    char ip[1024];
    snprintf(ip, sizeof ip, "%s/forward/%s/p1.ids.txt", golden, name);
    int64_t n = 0;
    int32_t *ids = test_read_ids(ip, &n);
    float *h_ref = NULL, *l_ref = NULL, *h = NULL, *l = NULL, *h0 = NULL, *l0 = NULL;
    comi_status st = run(ctx, mdir, NULL, ids, n, &h_ref, &l_ref);
    test_check("lora_merged_reference_runs", st == COMI_OK, "%s", comi_errmsg(ctx));
    comi_model_params mp = comi_model_default_params();
    mp.lora_path = adir;
    comi_model *mm = NULL;
    comi_model_info info = {0};
    if (comi_model_load(ctx, hf, NULL, &mm) == COMI_OK) comi_model_get_info(mm, &info);
    comi_model_free(mm);
    size_t nh = (size_t)(n * info.n_embd), nl = (size_t)(n * info.n_vocab);
    const char *bases[2] = {hf, gguf};
    for (int b = 0; b < 2 && !st; b++) {
        const char *fmt = b ? "gguf" : "hf";
        char tn[128];
        comi_status s2 = run(ctx, bases[b], &mp, ids, n, &h, &l);
        snprintf(tn, sizeof tn, "lora_%s_%s_loads_and_runs", name, fmt);
        if (test_check(tn, s2 == COMI_OK, "%s", comi_errmsg(ctx))) {
            double eh = test_nmse(h, h_ref, nh), el = test_nmse(l, l_ref, nl);
            double base_eh = 0;
            float *hb = NULL, *lb = NULL;
            if (!run(ctx, bases[b], NULL, ids, n, &hb, &lb)) base_eh = test_nmse(hb, h_ref, nh);
            printf("# lora %s %s: hidden nmse vs merged %.3g (base model vs merged %.3g), logits "
                   "%.3g\n",
                   name, fmt, eh, base_eh, el);
            snprintf(tn, sizeof tn, "lora_%s_%s_equals_merged", name, fmt);
            test_check(tn, eh < 1e-10 && el < 1e-10 && base_eh > 1e-4,
                       "hidden %.3g logits %.3g (base differs by %.3g)", eh, el, base_eh);
            free(hb);
            free(lb);
        }
        free(h);
        free(l);
        h = l = NULL;
        /* B = 0 equals the base model exactly */
        comi_model_params zp = comi_model_default_params();
        zp.lora_path = zpath;
        zp.lora_scale = 2.0f;
        s2 = run(ctx, bases[b], &zp, ids, n, &h, &l);
        comi_status s3 = run(ctx, bases[b], NULL, ids, n, &h0, &l0);
        snprintf(tn, sizeof tn, "lora_%s_%s_zero_B_equals_base", name, fmt);
        test_check(tn, !s2 && !s3 && !memcmp(h, h0, nh * 4) && !memcmp(l, l0, nl * 4), "%s",
                   s2 || s3 ? comi_errmsg(ctx) : "outputs differ");
        free(h);
        free(l);
        free(h0);
        free(l0);
        h = l = h0 = l0 = NULL;
    }
    /* errors: no scale and no config; wrong shape; prefix matching nothing */
    comi_model *bad = NULL;
    comi_model_params ep = comi_model_default_params();
    ep.lora_path = zpath;
    rename(path, "/tmp/comi_lora_cfg_moved.json"); /* hide adapter_config.json */
    st = comi_model_load(ctx, hf, &ep, &bad);
    test_check("lora_no_scale_fails",
               st != COMI_OK && bad == NULL && strstr(comi_errmsg(ctx), "scale"), "status %d: %s",
               st, comi_errmsg(ctx));
    rename("/tmp/comi_lora_cfg_moved.json", path);
    ep.lora_prefix = "decoder.";
    ep.lora_scale = 1;
    st = comi_model_load(ctx, hf, &ep, &bad);
    test_check("lora_prefix_no_match_fails",
               st == COMI_ERR_FORMAT && strstr(comi_errmsg(ctx), "no LoRA"), "status %d: %s", st,
               comi_errmsg(ctx));
    zero[0].cols -= 1; /* lora_A of the first projection: wrong input width */
    write_st(zpath, zero, n_lora);
    ep.lora_prefix = NULL;
    st = comi_model_load(ctx, hf, &ep, &bad);
    test_check("lora_bad_shape_fails", st == COMI_ERR_FORMAT && strstr(comi_errmsg(ctx), "lora_A"),
               "status %d: %s", st, comi_errmsg(ctx));
    for (int i = 0; i < n_lora; i++) {
        free(lora[i].data);
        if (i % 2) free(zero[i].data);
    }
    for (int64_t i = 0; i < nt; i++)
        free(merged[i].data);
    free(merged);
    free(lora);
    free(zero);
    free(ids);
    free(h_ref);
    free(l_ref);
}

int main(void) {
    golden = test_golden_dir();
    if (!golden) {
        test_skip("lora_golden", "golden directory not found (set COMI_GOLDEN)");
        return test_exit();
    }
    if (!mkdtemp(tmpdir)) {
        test_fail("lora_tmpdir", "mkdtemp failed");
        return test_exit();
    }
    comi_ctx *ctx = comi_ctx_new(NULL);
    test_model(ctx, "tiny-llama-spm");
    test_model(ctx, "tiny-qwen2-bpe");
    comi_ctx_free(ctx);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    return test_exit();
}
