/* test_gguf.c — the GGUF reader on llama.cpp's files (golden models and
 * vocabularies) and on a corpus of broken files built here byte by byte:
 * every prefix of a small valid file, bad magic/version/counts, lengths
 * past the end, bad types, dimensions, offsets and duplicate names. */
#include "formats/gguf.h"
#include "formats/quant.h"
#include "test.h"

#include <unistd.h>

/* ---- golden files ----------------------------------------------------------- */

typedef struct model_case {
    const char *file;
    const char *arch;
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_tensors;
    bool tied;       /* no output.weight */
    bool qkv_bias;   /* blk.N.attn_{q,k,v}.bias */
    bool qk_norm;    /* blk.N.attn_{q,k}_norm.weight */
    comi_type wtype; /* type of the matrices */
} model_case;

static bool shape_is(const comi_tensor *t, int nd, int64_t a, int64_t b) {
    return t && t->n_dims == nd && t->ne[0] == a && t->ne[1] == b && t->ne[2] == 1 && t->ne[3] == 1;
}

static void check_model(const char *gdir, const model_case *mc) {
    char path[1024], name[256], key[128];
    snprintf(path, sizeof path, "%s/forward/models/%s", gdir, mc->file);
    comi_err e;
    gguf_file *f = NULL;
    snprintf(name, sizeof name, "gguf_open_%s", mc->file);
    if (!test_check(name, gguf_open(&e, path, &f) == COMI_OK, "%s", e.msg)) return;

    gguf_str arch = {0};
    snprintf(name, sizeof name, "gguf_meta_%s", mc->file);
    bool ok = gguf_get_str(f, "general.architecture", &arch) && arch.len == strlen(mc->arch) &&
              memcmp(arch.ptr, mc->arch, arch.len) == 0;
    const struct {
        const char *suffix;
        int64_t want;
    } ints[] = {{"embedding_length", mc->n_embd},
                {"block_count", mc->n_layer},
                {"attention.head_count", mc->n_head},
                {"attention.head_count_kv", mc->n_head_kv},
                {"feed_forward_length", mc->n_ff},
                {"context_length", 1024}};
    char bad[256] = "";
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v = -1;
        uint32_t u = 0;
        snprintf(key, sizeof key, "%s.%s", mc->arch, ints[i].suffix);
        if (!gguf_get_i64(f, key, &v) || v != ints[i].want || !gguf_get_u32(f, key, &u) ||
            u != (uint32_t)ints[i].want) {
            ok = false;
            snprintf(bad, sizeof bad, "%s = %lld, want %lld", key, (long long)v,
                     (long long)ints[i].want);
        }
    }
    float eps = 0;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", mc->arch);
    if (!gguf_get_f32(f, key, &eps) || eps != 1e-5f) ok = false;
    const gguf_kv *toks = NULL;
    if (!gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_T_STRING, &toks) ||
        toks->arr_n != (uint64_t)mc->n_vocab)
        ok = false;
    test_check(name, ok, "arch '%.*s' %s eps %g tokens %llu", (int)arch.len, arch.ptr, bad, eps,
               toks ? (unsigned long long)toks->arr_n : 0ull);

    /* tensors: count, shapes, types, placement inside the file */
    snprintf(name, sizeof name, "gguf_tensors_%s", mc->file);
    int64_t hd = mc->n_embd / mc->n_head;
    ok = gguf_n_tensors(f) == mc->n_tensors;
    snprintf(bad, sizeof bad, "n_tensors %lld want %lld", (long long)gguf_n_tensors(f),
             (long long)mc->n_tensors);
    const comi_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (ok && !(shape_is(te, 2, mc->n_embd, mc->n_vocab) && te->type == mc->wtype)) {
        ok = false;
        snprintf(bad, sizeof bad, "token_embd.weight shape/type");
    }
    if (ok && (gguf_find_tensor(f, "output.weight") == NULL) != mc->tied) {
        ok = false;
        snprintf(bad, sizeof bad, "output.weight presence");
    }
    if (ok && !shape_is(gguf_find_tensor(f, "output_norm.weight"), 1, mc->n_embd, 1)) {
        ok = false;
        snprintf(bad, sizeof bad, "output_norm.weight");
    }
    for (int64_t l = 0; ok && l < mc->n_layer; l++) {
        const struct {
            const char *n;
            int nd;
            int64_t a, b;
            bool mat;
        } want[] = {{"attn_norm.weight", 1, mc->n_embd, 1, false},
                    {"attn_q.weight", 2, mc->n_embd, mc->n_head * hd, true},
                    {"attn_k.weight", 2, mc->n_embd, mc->n_head_kv * hd, true},
                    {"attn_v.weight", 2, mc->n_embd, mc->n_head_kv * hd, true},
                    {"attn_output.weight", 2, mc->n_head * hd, mc->n_embd, true},
                    {"ffn_norm.weight", 1, mc->n_embd, 1, false},
                    {"ffn_gate.weight", 2, mc->n_embd, mc->n_ff, true},
                    {"ffn_up.weight", 2, mc->n_embd, mc->n_ff, true},
                    {"ffn_down.weight", 2, mc->n_ff, mc->n_embd, true}};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            char tn[128];
            snprintf(tn, sizeof tn, "blk.%lld.%s", (long long)l, want[i].n);
            const comi_tensor *t = gguf_find_tensor(f, tn);
            if (!shape_is(t, want[i].nd, want[i].a, want[i].b) ||
                t->type != (want[i].mat ? mc->wtype : COMI_TYPE_F32)) {
                ok = false;
                snprintf(bad, sizeof bad, "%s: %s", tn, t ? quant_type_name(t->type) : "missing");
                break;
            }
        }
        char tn[128];
        snprintf(tn, sizeof tn, "blk.%lld.attn_k.bias", (long long)l);
        const comi_tensor *kb = gguf_find_tensor(f, tn);
        if (ok && (mc->qkv_bias ? !shape_is(kb, 1, mc->n_head_kv * hd, 1) : kb != NULL)) {
            ok = false;
            snprintf(bad, sizeof bad, "%s", tn);
        }
        snprintf(tn, sizeof tn, "blk.%lld.attn_q_norm.weight", (long long)l);
        const comi_tensor *qn = gguf_find_tensor(f, tn);
        if (ok && (mc->qk_norm ? !shape_is(qn, 1, hd, 1) : qn != NULL)) {
            ok = false;
            snprintf(bad, sizeof bad, "%s", tn);
        }
    }
    const uint8_t *lo = NULL;
    for (int64_t i = 0; ok && i < gguf_n_tensors(f); i++) {
        const comi_tensor *t = gguf_tensor_at(f, i);
        size_t row, nb;
        if (gguf_find_tensor(f, t->name) != t || !quant_row_bytes(t->type, t->ne[0], &row) ||
            !comi_mul_size(row, (size_t)(t->ne[1] * t->ne[2] * t->ne[3]), &nb) || nb != t->nbytes) {
            ok = false;
            snprintf(bad, sizeof bad, "tensor %s lookup/size", t->name);
        }
        if (!lo || (const uint8_t *)t->data < lo) lo = t->data;
    }
    /* the lowest tensor starts the aligned data section */
    if (ok && (lo == NULL || gguf_data_offset(f) % gguf_alignment(f) != 0)) {
        ok = false;
        snprintf(bad, sizeof bad, "data offset %zu", gguf_data_offset(f));
    }
    test_check(name, ok, "%s", bad);
    test_check("gguf_absent_lookups", !gguf_find_tensor(f, "nope") && !gguf_find_kv(f, "nope") &&
                                          !gguf_tensor_at(f, -1) && !gguf_kv_at(f, gguf_n_kv(f)),
               "lookup of an absent name succeeded");
    gguf_close(f);
}

typedef struct vocab_case {
    const char *file;
    const char *model; /* tokenizer.ggml.model */
    uint64_t n_tokens, n_merges;
    bool scores;
    int64_t bos;
    const char *bos_text;
} vocab_case;

static void check_vocab(const char *gdir, const vocab_case *vc) {
    char path[1024], name[256];
    snprintf(path, sizeof path, "%s/tokenizer/%s", gdir, vc->file);
    comi_err e;
    gguf_file *f = NULL;
    snprintf(name, sizeof name, "gguf_vocab_%s", vc->file);
    if (!test_check(name, gguf_open(&e, path, &f) == COMI_OK, "%s", e.msg)) return;
    gguf_str model = {0};
    const gguf_kv *toks = NULL, *merges = NULL, *scores = NULL, *types = NULL;
    int64_t bos = -1;
    bool ok = gguf_get_str(f, "tokenizer.ggml.model", &model) &&
              model.len == strlen(vc->model) && memcmp(model.ptr, vc->model, model.len) == 0 &&
              gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_T_STRING, &toks) &&
              toks->arr_n == vc->n_tokens &&
              gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_T_INT32, &types) &&
              types->arr_n == vc->n_tokens && gguf_n_tensors(f) == 0 &&
              gguf_get_i64(f, "tokenizer.ggml.bos_token_id", &bos) && bos == vc->bos;
    if (ok && vc->n_merges)
        ok = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_T_STRING, &merges) &&
             merges->arr_n == vc->n_merges;
    if (ok && vc->scores) {
        double s = 1;
        ok = gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_T_FLOAT32, &scores) &&
             scores->arr_n == vc->n_tokens && gguf_arr_f64(scores, 0, &s) &&
             !gguf_arr_f64(scores, vc->n_tokens, &s);
    }
    if (ok) {
        const gguf_str *b = &toks->strs[bos];
        ok = b->len == strlen(vc->bos_text) && memcmp(b->ptr, vc->bos_text, b->len) == 0;
    }
    int64_t tt = -1;
    if (ok) ok = gguf_arr_i64(types, (uint64_t)bos, &tt) && tt == 3; /* CONTROL */
    test_check(name, ok, "model '%.*s' tokens %llu bos %lld type %lld", (int)model.len, model.ptr,
               toks ? (unsigned long long)toks->arr_n : 0ull, (long long)bos, (long long)tt);
    gguf_close(f);
}

/* ---- handcrafted files ------------------------------------------------------ */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) {
    put(b, &v, 4);
}
static void put_u64(buf *b, uint64_t v) {
    put(b, &v, 8);
}
static void put_strn(buf *b, const char *s, uint64_t len_field, size_t n) {
    put_u64(b, len_field);
    put(b, s, n);
}
static void put_str(buf *b, const char *s) {
    put_strn(b, s, strlen(s), strlen(s));
}

/* Knobs that break one field of the small valid file; zero = valid. */
typedef struct spec {
    const char *magic;
    uint32_t version;
    uint64_t n_tensors, n_kv;   /* override when nonzero */
    uint64_t key0_len;          /* override of the first key's length */
    uint64_t arr_len;           /* override of the string array's length */
    uint32_t arr_type;          /* override of the string array's element type (+1) */
    uint32_t kv_type;           /* override of the 2nd kv's value type (+1) */
    bool dup_key, dup_tensor, key_nul;
    uint32_t align;             /* general.alignment value (0 = 32) */
    bool align_f32;             /* write general.alignment as float32 */
    uint32_t t1_type;           /* type of tensor b (+1) */
    uint64_t t1_offset;         /* offset of tensor b (+1) */
    uint32_t t0_ndims;          /* n_dims of tensor a (+1) */
    uint64_t t0_ne0;            /* ne[0] of tensor a (+1) */
    uint64_t t0_ne1;            /* ne[1] of tensor a (+1) */
    uint64_t t0_offset;         /* offset of tensor a (+1) */
    size_t truncate;            /* drop this many bytes at the end */
} spec;

/* The valid file: 6 kvs (string, u32, string array, i32 array, f32,
 * alignment) and 3 tensors a F32 [4,2], b Q8_0 [32], c F16 [8]. Tensor a's
 * data holds 0..7, b one block with d = 1 and q = j-16, c halves of 0.5*j. */
static buf build(const spec *s) {
    buf b = {0};
    uint32_t align = s->align ? s->align : 32;
    put(&b, s->magic ? s->magic : "GGUF", 4);
    put_u32(&b, s->version ? s->version : 3);
    put_u64(&b, s->n_tensors ? s->n_tensors : 3);
    put_u64(&b, s->n_kv ? s->n_kv : 6);
    /* kv 0 */
    if (s->key0_len)
        put_strn(&b, "general.architecture", s->key0_len, strlen("general.architecture"));
    else if (s->key_nul)
        put_strn(&b, "general\0architecture", 20, 20);
    else
        put_str(&b, "general.architecture");
    put_u32(&b, GGUF_T_STRING);
    put_str(&b, "llama");
    /* kv 1 */
    put_str(&b, s->dup_key ? "general.architecture" : "llama.block_count");
    put_u32(&b, s->kv_type ? s->kv_type - 1 : GGUF_T_UINT32);
    put_u32(&b, 7);
    /* kv 2 */
    put_str(&b, "tokenizer.ggml.tokens");
    put_u32(&b, GGUF_T_ARRAY);
    put_u32(&b, s->arr_type ? s->arr_type - 1 : GGUF_T_STRING);
    put_u64(&b, s->arr_len ? s->arr_len : 3);
    put_str(&b, "<s>");
    put_str(&b, "");
    put_str(&b, "hello");
    /* kv 3 */
    put_str(&b, "tokenizer.ggml.token_type");
    put_u32(&b, GGUF_T_ARRAY);
    put_u32(&b, GGUF_T_INT32);
    put_u64(&b, 3);
    int32_t tt[3] = {3, 1, -5};
    put(&b, tt, sizeof tt);
    /* kv 4 */
    put_str(&b, "llama.rope.freq_base");
    put_u32(&b, GGUF_T_FLOAT32);
    float fb = 10000.0f;
    put(&b, &fb, 4);
    /* kv 5 */
    put_str(&b, "general.alignment");
    if (s->align_f32) {
        put_u32(&b, GGUF_T_FLOAT32);
        float fa = 32;
        put(&b, &fa, 4);
    } else {
        put_u32(&b, GGUF_T_UINT32);
        put_u32(&b, align);
    }
    /* tensor infos */
    put_str(&b, "a");
    put_u32(&b, s->t0_ndims ? s->t0_ndims - 1 : 2);
    put_u64(&b, s->t0_ne0 ? s->t0_ne0 - 1 : 4);
    put_u64(&b, s->t0_ne1 ? s->t0_ne1 - 1 : 2);
    put_u32(&b, COMI_TYPE_F32);
    put_u64(&b, s->t0_offset ? s->t0_offset - 1 : 0);
    put_str(&b, s->dup_tensor ? "a" : "b");
    put_u32(&b, 1);
    put_u64(&b, 32);
    put_u32(&b, s->t1_type ? s->t1_type - 1 : COMI_TYPE_Q8_0);
    put_u64(&b, s->t1_offset ? s->t1_offset - 1 : 32);
    put_str(&b, "c");
    put_u32(&b, 1);
    put_u64(&b, 8);
    put_u32(&b, COMI_TYPE_F16);
    put_u64(&b, 96);
    while (b.n % align) put(&b, "", 1);
    for (int i = 0; i < 8; i++) {
        float v = (float)i;
        put(&b, &v, 4);
    }
    uint16_t one = quant_f32_to_f16(1.0f);
    put(&b, &one, 2);
    for (int j = 0; j < 32; j++) {
        int8_t q = (int8_t)(j - 16);
        put(&b, &q, 1);
    }
    while (b.n % 32) put(&b, "", 1); /* b ends at data offset 66, c starts at 96 */
    for (int j = 0; j < 8; j++) {
        uint16_t h = quant_f32_to_f16(0.5f * (float)j);
        put(&b, &h, 2);
    }
    b.n -= s->truncate < b.n ? s->truncate : b.n;
    return b;
}

static const char *tmp_path(void) {
    static char path[256];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/comi_test_gguf_%d.gguf", (int)getpid());
    return path;
}

static comi_status open_bytes(const buf *b, comi_err *e, gguf_file **f) {
    FILE *fp = fopen(tmp_path(), "wb");
    if (!fp) {
        comi_err_set(e, COMI_ERR_IO, "cannot write %s", tmp_path());
        return COMI_ERR_IO;
    }
    if (b->n) fwrite(b->p, 1, b->n, fp);
    fclose(fp);
    return gguf_open(e, tmp_path(), f);
}

static void check_valid(void) {
    spec s = {0};
    buf b = build(&s);
    comi_err e;
    gguf_file *f = NULL;
    if (!test_check("gguf_small_valid_open", open_bytes(&b, &e, &f) == COMI_OK, "%s", e.msg)) {
        free(b.p);
        return;
    }
    gguf_str arch = {0};
    uint32_t blocks = 0;
    float fb = 0;
    const gguf_kv *toks = NULL, *tt = NULL;
    int64_t v = 0, v2 = 0;
    double d = 0;
    bool ok = gguf_version(f) == 3 && gguf_n_kv(f) == 6 && gguf_n_tensors(f) == 3 &&
              gguf_get_str(f, "general.architecture", &arch) && arch.len == 5 &&
              memcmp(arch.ptr, "llama", 5) == 0 && gguf_get_u32(f, "llama.block_count", &blocks) &&
              blocks == 7 && gguf_get_f32(f, "llama.rope.freq_base", &fb) && fb == 10000.0f &&
              !gguf_get_u32(f, "llama.rope.freq_base", &blocks) &&
              !gguf_get_f32(f, "llama.block_count", &fb) &&
              !gguf_get_str(f, "llama.block_count", &arch) &&
              gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_T_STRING, &toks) && toks->arr_n == 3 &&
              toks->strs[0].len == 3 && memcmp(toks->strs[0].ptr, "<s>", 3) == 0 &&
              toks->strs[1].len == 0 && toks->strs[2].len == 5 &&
              memcmp(toks->strs[2].ptr, "hello", 5) == 0 &&
              !gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_T_INT32, &tt) &&
              gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_T_INT32, &tt) &&
              gguf_arr_i64(tt, 0, &v) && v == 3 && gguf_arr_i64(tt, 2, &v2) && v2 == -5 &&
              gguf_arr_f64(tt, 2, &d) && d == -5.0 && !gguf_arr_i64(tt, 3, &v) &&
              !gguf_arr_i64(toks, 0, &v) && gguf_alignment(f) == 32 &&
              strcmp(gguf_path(f), tmp_path()) == 0;
    test_check("gguf_small_valid_meta", ok, "metadata mismatch");
    const comi_tensor *a = gguf_find_tensor(f, "a"), *bt = gguf_find_tensor(f, "b"),
                      *c = gguf_find_tensor(f, "c");
    ok = a && bt && c && shape_is(a, 2, 4, 2) && a->type == COMI_TYPE_F32 && a->nbytes == 32 &&
         shape_is(bt, 1, 32, 1) && bt->type == COMI_TYPE_Q8_0 && bt->nbytes == 34 &&
         shape_is(c, 1, 8, 1) && c->type == COMI_TYPE_F16 && c->nbytes == 16 &&
         gguf_data_offset(f) % 32 == 0 && gguf_file_size(f) == b.n;
    if (ok) {
        float av[8];
        memcpy(av, a->data, sizeof av);
        for (int i = 0; i < 8; i++) ok = ok && av[i] == (float)i;
        const uint8_t *bp = bt->data;
        uint16_t h;
        memcpy(&h, bp, 2);
        ok = ok && quant_f16_to_f32(h) == 1.0f && (int8_t)bp[2 + 31] == 15;
        memcpy(&h, (const uint8_t *)c->data + 14, 2);
        ok = ok && quant_f16_to_f32(h) == 3.5f;
        ok = ok && (const uint8_t *)c->data - (const uint8_t *)a->data == 96;
    }
    test_check("gguf_small_valid_tensors", ok, "tensor mismatch");
    gguf_close(f);
    gguf_close(NULL);

    /* v2 is the same layout */
    s.version = 2;
    buf b2 = build(&s);
    ok = open_bytes(&b2, &e, &f) == COMI_OK;
    test_check("gguf_small_valid_v2", ok && gguf_version(f) == 2, "%s", e.msg);
    if (ok) gguf_close(f);
    free(b2.p);

    /* every proper prefix fails cleanly, naming the file */
    int n_bad = 0;
    size_t first_bad = 0;
    char msg[600] = "";
    for (size_t len = 0; len < b.n; len++) {
        buf p = {b.p, len, len};
        comi_err_clear(&e);
        f = NULL;
        comi_status st = open_bytes(&p, &e, &f);
        if (st == COMI_OK || f != NULL || strstr(e.msg, tmp_path()) == NULL ||
            (st != COMI_ERR_FORMAT && st != COMI_ERR_IO)) {
            if (!n_bad++) {
                first_bad = len;
                snprintf(msg, sizeof msg, "%s", e.msg);
            }
            gguf_close(f);
        }
    }
    test_check("gguf_every_prefix_fails", n_bad == 0, "%d of %zu prefixes, first at %zu: '%s'",
               n_bad, b.n, first_bad, msg);
    /* a prefix that cuts a tensor's data says so */
    spec st = {.truncate = 1};
    buf bt2 = build(&st);
    comi_err_clear(&e);
    comi_status r = open_bytes(&bt2, &e, &f);
    test_check("gguf_truncated_data_message", r == COMI_ERR_FORMAT && strstr(e.msg, "'c'") &&
                                                  strstr(e.msg, "past the"),
               "%d '%s'", r, e.msg);
    free(bt2.p);
    free(b.p);
}

typedef struct bad_case {
    const char *name;
    spec s;
    comi_status want;
    const char *needle; /* must appear in the message */
} bad_case;

static void check_bad(void) {
    const bad_case cases[] = {
        {"bad_magic", {.magic = "GGML"}, COMI_ERR_FORMAT, "bad magic"},
        {"version_1", {.version = 1}, COMI_ERR_UNSUPPORTED, "version 1"},
        {"version_99", {.version = 99}, COMI_ERR_FORMAT, "version 99"},
        {"version_bigendian", {.version = 0x03000000u}, COMI_ERR_FORMAT, "big-endian"},
        {"absurd_n_tensors", {.n_tensors = 1ull << 40}, COMI_ERR_FORMAT, "n_tensors 1099511627776"},
        {"absurd_n_kv", {.n_kv = UINT64_MAX}, COMI_ERR_FORMAT, "n_kv 18446744073709551615"},
        {"too_many_kv", {.n_kv = 7}, COMI_ERR_FORMAT, "tensor 0 of 3: name"},
        {"key_len_past_end", {.key0_len = 1ull << 50}, COMI_ERR_FORMAT, "kv 0 of 6: key"},
        {"key_len_huge", {.key0_len = UINT64_MAX}, COMI_ERR_FORMAT, "need 18446744073709551615"},
        {"key_nul", {.key_nul = true}, COMI_ERR_FORMAT, "NUL"},
        {"dup_key", {.dup_key = true}, COMI_ERR_FORMAT, "duplicate key 'general.architecture'"},
        {"unknown_vtype", {.kv_type = 13 + 1}, COMI_ERR_FORMAT, "unknown value type 13"},
        {"arr_len_absurd", {.arr_len = 1ull << 61}, COMI_ERR_FORMAT, "string array length"},
        {"arr_len_past_end", {.arr_len = 20}, COMI_ERR_FORMAT, "string element"},
        {"arr_type_unknown", {.arr_type = 77 + 1}, COMI_ERR_FORMAT, "unknown array element type 77"},
        {"arr_nested", {.arr_type = GGUF_T_ARRAY + 1}, COMI_ERR_UNSUPPORTED, "nested"},
        {"arr_wrong_type", {.arr_type = GGUF_T_UINT64 + 1, .arr_len = 1ull << 60}, COMI_ERR_FORMAT,
         "uint64 array length"},
        {"align_not_pow2", {.align = 48}, COMI_ERR_FORMAT, "general.alignment 48"},
        {"align_zero_type", {.align_f32 = true}, COMI_ERR_FORMAT, "general.alignment has type"},
        {"dup_tensor", {.dup_tensor = true}, COMI_ERR_FORMAT, "duplicate tensor name 'a'"},
        {"unknown_tensor_type", {.t1_type = 16 + 1}, COMI_ERR_UNSUPPORTED, "element type 16"},
        {"huge_tensor_type", {.t1_type = 4000000000u + 1}, COMI_ERR_UNSUPPORTED,
         "element type 4000000000"},
        {"ndims_5", {.t0_ndims = 5 + 1}, COMI_ERR_FORMAT, "n_dims 5"},
        {"ndims_0", {.t0_ndims = 0 + 1}, COMI_ERR_FORMAT, "n_dims 0"},
        {"ne_zero", {.t0_ne0 = 0 + 1}, COMI_ERR_FORMAT, "ne[0] = 0"},
        {"ne_negative", {.t0_ne0 = UINT64_MAX - 1 + 1}, COMI_ERR_FORMAT, "ne[0] = 1844674407370955"},
        {"ne_product_overflow", {.t0_ne0 = (1ull << 62) + 1, .t0_ne1 = 4 + 1}, COMI_ERR_FORMAT,
         "overflows"},
        {"bytes_overflow", {.t0_ne0 = (1ull << 61) + 1, .t0_ne1 = 2 + 1}, COMI_ERR_FORMAT,
         "byte size overflows"},
        {"ne0_not_block_multiple", {.t1_type = COMI_TYPE_Q4_K + 1}, COMI_ERR_FORMAT,
         "not a multiple of the Q4_K block size 256"},
        {"offset_misaligned", {.t1_offset = 33 + 1}, COMI_ERR_FORMAT,
         "'b': data offset 33 is not a multiple of the alignment 32"},
        {"offset_past_end", {.t1_offset = 4096 + 1}, COMI_ERR_FORMAT, "'b': data at offset 4096"},
        {"offset_huge", {.t1_offset = (UINT64_MAX & ~31ull) + 1}, COMI_ERR_FORMAT, "'b': data at"},
        {"offset_data_overrun", {.t1_offset = 96 + 1}, COMI_ERR_FORMAT, "ends past the"},
        {"tensor_too_big", {.t0_ne1 = 1000 + 1}, COMI_ERR_FORMAT, "'a': data at offset 0 + 16000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *c = &cases[i];
        buf b = build(&c->s);
        comi_err e;
        comi_err_clear(&e);
        gguf_file *f = NULL;
        comi_status st = open_bytes(&b, &e, &f);
        char name[128];
        snprintf(name, sizeof name, "gguf_bad_%s", c->name);
        test_check(name, st == c->want && f == NULL && strstr(e.msg, c->needle) != NULL &&
                             strstr(e.msg, tmp_path()) != NULL,
                   "status %d (want %d), message '%s' (want '%s')", st, c->want, e.msg,
                   c->needle);
        if (f) gguf_close(f);
        free(b.p);
    }
    /* general.alignment 2 lets an F32 tensor sit at a 2 mod 4 address:
     * exactly one of the offsets 0 and 2 must be refused, by name */
    int refused = 0, accepted = 0;
    char amsg[600] = "";
    for (uint64_t off0 = 0; off0 <= 2; off0 += 2) {
        spec s = {.align = 2, .t0_offset = off0 + 1};
        buf b = build(&s);
        comi_err e;
        gguf_file *f = NULL;
        comi_status st = open_bytes(&b, &e, &f);
        if (st == COMI_ERR_FORMAT && strstr(e.msg, "'a': data at file offset") &&
            strstr(e.msg, "4-byte F32")) {
            refused++;
            snprintf(amsg, sizeof amsg, "%s", e.msg);
        } else if (st == COMI_OK) {
            accepted++;
        }
        gguf_close(f);
        free(b.p);
    }
    test_check("gguf_bad_f32_misaligned", refused == 1 && accepted == 1, "refused %d accepted %d: %s",
               refused, accepted, amsg);

    comi_err e;
    gguf_file *f = NULL;
    test_check("gguf_missing_file",
               gguf_open(&e, "/nonexistent/x.gguf", &f) == COMI_ERR_IO && f == NULL &&
                   strstr(e.msg, "/nonexistent/x.gguf") != NULL,
               "%s", e.msg);
}

/* ---- writer ------------------------------------------------------------------ */

static bool kv_equal(const gguf_kv *a, const gguf_kv *b) {
    if (strcmp(a->key, b->key) != 0 || a->type != b->type) return false;
    if (a->type == GGUF_T_STRING)
        return a->str.len == b->str.len && memcmp(a->str.ptr, b->str.ptr, a->str.len) == 0;
    if (a->type != GGUF_T_ARRAY) return memcmp(a->data, b->data, gguf_vtype_size(a->type)) == 0;
    if (a->arr_type != b->arr_type || a->arr_n != b->arr_n) return false;
    if (a->arr_type != GGUF_T_STRING)
        return memcmp(a->data, b->data, a->arr_n * gguf_vtype_size(a->arr_type)) == 0;
    for (uint64_t i = 0; i < a->arr_n; i++)
        if (a->strs[i].len != b->strs[i].len ||
            memcmp(a->strs[i].ptr, b->strs[i].ptr, a->strs[i].len) != 0)
            return false;
    return true;
}

typedef struct fill_ctx {
    size_t row_bytes;
    int calls;
} fill_ctx;

/* Row r of the streamed tensor: bytes (r * 7 + i) mod 251. */
static comi_status fill_rows(comi_err *e, void *user, void *dst, int64_t r0, int64_t r1) {
    fill_ctx *fc = user;
    (void)e;
    fc->calls++;
    uint8_t *d = dst;
    for (int64_t r = r0; r < r1; r++)
        for (size_t i = 0; i < fc->row_bytes; i++)
            *d++ = (uint8_t)((r * 7 + (int64_t)i) % 251);
    return COMI_OK;
}

static void check_writer(const char *gdir) {
    comi_err e;
    comi_err_clear(&e);
    gguf_writer *w = gguf_writer_new();
    const char *path = tmp_path();
    /* every scalar type */
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint64_t u64 = 0xFEDCBA9876543210ull;
    int64_t i64 = -1234567890123ll;
    double f64 = 3.14159265358979;
    comi_status st = gguf_writer_set_scalar(&e, w, "t.u8", GGUF_T_UINT8, &u8);
    st = st ? st : gguf_writer_set_scalar(&e, w, "t.i8", GGUF_T_INT8, &i8);
    st = st ? st : gguf_writer_set_scalar(&e, w, "t.u16", GGUF_T_UINT16, &u16);
    st = st ? st : gguf_writer_set_scalar(&e, w, "t.i16", GGUF_T_INT16, &i16);
    st = st ? st : gguf_writer_set_u32(&e, w, "t.u32", 4000000000u);
    st = st ? st : gguf_writer_set_i32(&e, w, "t.i32", -2000000000);
    st = st ? st : gguf_writer_set_f32(&e, w, "t.f32", 0.25f);
    st = st ? st : gguf_writer_set_bool(&e, w, "t.bool", true);
    st = st ? st : gguf_writer_set_str(&e, w, "t.str", "temporary");
    st = st ? st : gguf_writer_set_scalar(&e, w, "t.u64", GGUF_T_UINT64, &u64);
    st = st ? st : gguf_writer_set_scalar(&e, w, "t.i64", GGUF_T_INT64, &i64);
    st = st ? st : gguf_writer_set_scalar(&e, w, "t.f64", GGUF_T_FLOAT64, &f64);
    st = st ? st : gguf_writer_set_str(&e, w, "t.str", "h\xC3\xA9llo"); /* replaces */
    st = st ? st : gguf_writer_set_str(&e, w, "t.empty", "");
    const float farr[3] = {1.5f, -2.0f, 1e-30f};
    const int32_t iarr[4] = {1, -2, 3, INT32_MIN};
    const char *sarr[4] = {"a", "", "<|endoftext|>", "\xE2\x96\x81x"};
    st = st ? st : gguf_writer_set_arr(&e, w, "t.farr", GGUF_T_FLOAT32, farr, 3);
    st = st ? st : gguf_writer_set_arr(&e, w, "t.iarr", GGUF_T_INT32, iarr, 4);
    st = st ? st : gguf_writer_set_arr(&e, w, "t.earr", GGUF_T_UINT8, NULL, 0);
    st = st ? st : gguf_writer_set_arr_str(&e, w, "t.sarr", sarr, 4);
    st = st ? st : gguf_writer_set_u32(&e, w, "general.alignment", 64);
    test_check("gguf_writer_set", st == COMI_OK, "%s", e.msg);

    /* tensors: F32 2-D, F16, Q8_0, Q4_K 3-D (borrowed), Q6_K streamed */
    float a[6] = {0, 1, 2, 3, 4, 5};
    int64_t ne_a[2] = {3, 2}, ne_h[1] = {5}, ne_q8[2] = {64, 3}, ne_k[3] = {256, 2, 2},
            ne_6[2] = {512, 300};
    uint16_t h[5];
    for (int i = 0; i < 5; i++) h[i] = quant_f32_to_f16((float)i - 2.0f);
    uint8_t q8[3 * 68], qk[4 * 144];
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (uint8_t)(i * 13);
    for (size_t i = 0; i < sizeof qk; i++) qk[i] = (uint8_t)(i * 29 + 1);
    fill_ctx fc = {2 * 210, 0};
    st = gguf_writer_add_tensor(&e, w, "a", COMI_TYPE_F32, 2, ne_a, a, sizeof a, false);
    st = st ? st : gguf_writer_add_tensor(&e, w, "h", COMI_TYPE_F16, 1, ne_h, h, sizeof h, false);
    st = st ? st : gguf_writer_add_tensor(&e, w, "q8", COMI_TYPE_Q8_0, 2, ne_q8, q8, sizeof q8, false);
    st = st ? st : gguf_writer_add_tensor(&e, w, "blk.0.k", COMI_TYPE_Q4_K, 3, ne_k, qk, sizeof qk, true);
    st = st ? st : gguf_writer_add_tensor_fill(&e, w, "q6", COMI_TYPE_Q6_K, 2, ne_6, fill_rows, &fc);
    test_check("gguf_writer_add", st == COMI_OK, "%s", e.msg);
    a[0] = 99; /* copied, so the file keeps 0 */

    /* rejected inputs leave the writer usable */
    comi_status s1 = gguf_writer_add_tensor(&e, w, "a", COMI_TYPE_F32, 2, ne_a, a, sizeof a, false);
    bool m1 = strstr(e.msg, "duplicate tensor 'a'") != NULL;
    comi_status s2 = gguf_writer_add_tensor(&e, w, "z", COMI_TYPE_F32, 2, ne_a, a, 20, false);
    bool m2 = strstr(e.msg, "20 bytes given") != NULL;
    comi_status s3 = gguf_writer_add_tensor(&e, w, "z", COMI_TYPE_Q4_K, 1, ne_h, qk, 144, false);
    comi_status s4 = gguf_writer_add_tensor(&e, w, "z", (comi_type)19, 1, ne_h, qk, 5, false);
    int64_t ne_bad[2] = {4, 0};
    comi_status s5 = gguf_writer_add_tensor(&e, w, "z", COMI_TYPE_F32, 2, ne_bad, a, 0, false);
    test_check("gguf_writer_rejects", s1 && m1 && s2 && m2 && s3 && s4 && s5,
               "%d %d %d %d %d %d %d", s1, m1, s2, m2, s3, s4, s5);

    st = gguf_writer_write(&e, w, path);
    test_check("gguf_writer_write", st == COMI_OK && fc.calls >= 1, "%s", e.msg);
    gguf_file *f = NULL;
    st = gguf_open(&e, path, &f);
    if (!test_check("gguf_writer_reopen", st == COMI_OK, "%s", e.msg)) {
        gguf_writer_free(w);
        return;
    }
    uint32_t vu32 = 0;
    int64_t vi = 0;
    float vf = 0;
    bool vb = false;
    gguf_str vs = {0};
    const gguf_kv *kv;
    bool ok = gguf_version(f) == 3 && gguf_n_kv(f) == 18 && gguf_alignment(f) == 64 &&
              strcmp(gguf_kv_at(f, 0)->key, "t.u8") == 0 &&
              strcmp(gguf_kv_at(f, 8)->key, "t.str") == 0 && /* replaced in place */
              gguf_get_i64(f, "t.u8", &vi) && vi == 200 && gguf_get_i64(f, "t.i8", &vi) &&
              vi == -100 && gguf_get_i64(f, "t.u16", &vi) && vi == 60000 &&
              gguf_get_i64(f, "t.i16", &vi) && vi == -30000 && gguf_get_u32(f, "t.u32", &vu32) &&
              vu32 == 4000000000u && gguf_get_i64(f, "t.i32", &vi) && vi == -2000000000 &&
              !gguf_get_u32(f, "t.i32", &vu32) && gguf_get_f32(f, "t.f32", &vf) && vf == 0.25f &&
              gguf_get_bool(f, "t.bool", &vb) && vb && gguf_get_str(f, "t.str", &vs) &&
              vs.len == 6 && memcmp(vs.ptr, "h\xC3\xA9llo", 6) == 0 &&
              !gguf_get_i64(f, "t.u64", &vi) && (kv = gguf_find_kv(f, "t.u64")) &&
              kv->type == GGUF_T_UINT64 && memcmp(kv->data, &u64, 8) == 0 &&
              gguf_get_i64(f, "t.i64", &vi) && vi == i64 && gguf_get_f32(f, "t.f64", &vf) &&
              vf == (float)f64 && (kv = gguf_find_kv(f, "t.f64")) &&
              memcmp(kv->data, &f64, 8) == 0 && gguf_get_str(f, "t.empty", &vs) && vs.len == 0;
    test_check("gguf_writer_scalars", ok, "scalar mismatch");
    const gguf_kv *fa = NULL, *ia = NULL, *sa = NULL, *ea = NULL;
    double dv = 0;
    ok = gguf_get_arr(f, "t.farr", GGUF_T_FLOAT32, &fa) && fa->arr_n == 3 &&
         gguf_arr_f64(fa, 2, &dv) && (float)dv == 1e-30f &&
         gguf_get_arr(f, "t.iarr", GGUF_T_INT32, &ia) && gguf_arr_i64(ia, 3, &vi) &&
         vi == INT32_MIN && gguf_get_arr(f, "t.earr", GGUF_T_UINT8, &ea) && ea->arr_n == 0 &&
         gguf_get_arr(f, "t.sarr", GGUF_T_STRING, &sa) && sa->arr_n == 4;
    for (int i = 0; ok && i < 4; i++)
        ok = sa->strs[i].len == strlen(sarr[i]) && memcmp(sa->strs[i].ptr, sarr[i], sa->strs[i].len) == 0;
    test_check("gguf_writer_arrays", ok, "array mismatch");

    const comi_tensor *ta = gguf_find_tensor(f, "a"), *th = gguf_find_tensor(f, "h"),
                      *tq = gguf_find_tensor(f, "q8"), *tk = gguf_find_tensor(f, "blk.0.k"),
                      *t6 = gguf_find_tensor(f, "q6");
    ok = gguf_n_tensors(f) == 5 && ta && th && tq && tk && t6 && shape_is(ta, 2, 3, 2) &&
         ta->type == COMI_TYPE_F32 && th->n_dims == 1 && th->ne[0] == 5 &&
         th->type == COMI_TYPE_F16 && tq->type == COMI_TYPE_Q8_0 && shape_is(tq, 2, 64, 3) &&
         tk->n_dims == 3 && tk->ne[0] == 256 && tk->ne[1] == 2 && tk->ne[2] == 2 &&
         tk->type == COMI_TYPE_Q4_K && t6->type == COMI_TYPE_Q6_K && shape_is(t6, 2, 512, 300) &&
         t6->nbytes == 300 * 420;
    if (ok) {
        float a0[6] = {0, 1, 2, 3, 4, 5};
        ok = memcmp(ta->data, a0, sizeof a0) == 0 && memcmp(th->data, h, sizeof h) == 0 &&
             memcmp(tq->data, q8, sizeof q8) == 0 && memcmp(tk->data, qk, sizeof qk) == 0;
        const uint8_t *d6 = t6->data;
        for (int64_t r = 0; ok && r < 300; r++)
            for (size_t i = 0; i < 420; i++)
                if (d6[r * 420 + (int64_t)i] != (uint8_t)((r * 7 + (int64_t)i) % 251)) {
                    ok = false;
                    break;
                }
        for (int64_t i = 0; ok && i < 5; i++)
            ok = ((size_t)((const uint8_t *)gguf_tensor_at(f, i)->data -
                           (const uint8_t *)ta->data) % 64) == 0;
    }
    test_check("gguf_writer_tensors", ok, "tensor mismatch");
    gguf_close(f);

    /* bad alignment and an unwritable path fail with messages */
    gguf_writer_set_f32(&e, w, "general.alignment", 3.0f);
    st = gguf_writer_write(&e, w, path);
    test_check("gguf_writer_bad_alignment", st == COMI_ERR_INVALID_ARG && strstr(e.msg, "alignment"),
               "%d %s", st, e.msg);
    gguf_writer_set_u32(&e, w, "general.alignment", 32);
    st = gguf_writer_write(&e, w, "/nonexistent/dir/x.gguf");
    test_check("gguf_writer_bad_path", st == COMI_ERR_IO && strstr(e.msg, "/nonexistent/dir/x.gguf"),
               "%d %s", st, e.msg);
    gguf_writer_free(w);
    gguf_writer_free(NULL);

    /* a real vocabulary survives a copy of all its kvs */
    if (!gdir) {
        test_skip("gguf_writer_copy_vocab", "golden directory not found");
        return;
    }
    char vpath[1024];
    snprintf(vpath, sizeof vpath, "%s/tokenizer/ggml-vocab-qwen2.gguf", gdir);
    gguf_file *src = NULL;
    if (!test_check("gguf_writer_copy_vocab_open", gguf_open(&e, vpath, &src) == COMI_OK, "%s", e.msg))
        return;
    w = gguf_writer_new();
    st = COMI_OK;
    for (int64_t i = 0; i < gguf_n_kv(src) && !st; i++) st = gguf_writer_copy_kv(&e, w, gguf_kv_at(src, i));
    if (!st) st = gguf_writer_write(&e, w, path);
    f = NULL;
    if (!st) st = gguf_open(&e, path, &f);
    ok = st == COMI_OK && gguf_n_kv(f) == gguf_n_kv(src) && gguf_n_tensors(f) == 0;
    for (int64_t i = 0; ok && i < gguf_n_kv(src); i++) ok = kv_equal(gguf_kv_at(src, i), gguf_kv_at(f, i));
    test_check("gguf_writer_copy_vocab", ok, "status %d %s", st, e.msg);
    gguf_close(f);
    gguf_close(src);
    gguf_writer_free(w);
}

int main(void) {
    check_writer(test_golden_dir());
    check_valid();
    check_bad();
    unlink(tmp_path());

    const char *g = test_golden_dir();
    if (!g) {
        test_skip("gguf_golden", "golden directory not found (set COMI_GOLDEN)");
        return test_exit();
    }
    const model_case models[] = {
        {"tiny-llama-spm.gguf", "llama", 64, 3, 4, 2, 176, 32000, 30, false, false, false,
         COMI_TYPE_F16},
        {"tiny-qwen2-bpe.gguf", "qwen2", 64, 3, 4, 2, 160, 50257, 38, true, true, false,
         COMI_TYPE_F16},
        {"tiny-qwen3-bpe.gguf", "qwen3", 64, 3, 4, 2, 160, 50257, 35, true, false, true,
         COMI_TYPE_F16},
        {"quant-llama.F32.gguf", "llama", 256, 2, 4, 2, 768, 512, 21, false, false, false,
         COMI_TYPE_F32},
        {"quant-llama.F16.gguf", "llama", 256, 2, 4, 2, 768, 512, 21, false, false, false,
         COMI_TYPE_F16},
        {"quant-llama.BF16.gguf", "llama", 256, 2, 4, 2, 768, 512, 21, false, false, false,
         COMI_TYPE_BF16},
        {"quant-llama.Q8_0.gguf", "llama", 256, 2, 4, 2, 768, 512, 21, false, false, false,
         COMI_TYPE_Q8_0},
        {"quant-llama.Q4_0.gguf", "llama", 256, 2, 4, 2, 768, 512, 21, false, false, false,
         COMI_TYPE_Q4_0},
        {"quant-llama.Q4_K.gguf", "llama", 256, 2, 4, 2, 768, 512, 21, false, false, false,
         COMI_TYPE_Q4_K},
        {"quant-llama.Q5_K.gguf", "llama", 256, 2, 4, 2, 768, 512, 21, false, false, false,
         COMI_TYPE_Q5_K},
        {"quant-llama.Q6_K.gguf", "llama", 256, 2, 4, 2, 768, 512, 21, false, false, false,
         COMI_TYPE_Q6_K},
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) check_model(g, &models[i]);

    const vocab_case vocabs[] = {
        {"ggml-vocab-llama-spm.gguf", "llama", 32000, 0, true, 1, "<s>"},
        {"ggml-vocab-phi-3.gguf", "llama", 32064, 0, true, 1, "<s>"},
        {"ggml-vocab-gpt-2.gguf", "gpt2", 50257, 50000, false, 50256, "<|endoftext|>"},
        {"ggml-vocab-qwen2.gguf", "gpt2", 151936, 151387, false, 151643, "<|endoftext|>"},
        {"ggml-vocab-llama-bpe.gguf", "gpt2", 128256, 280147, false, 128000,
         "<|begin_of_text|>"},
        {"ggml-vocab-deepseek-coder.gguf", "gpt2", 32256, 31757, false, 32013,
         "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"},
    };
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) check_vocab(g, &vocabs[i]);
    return test_exit();
}
