/* test_safetensors.c — safetensors files, sharded HF directories and
 * config.json: the golden tiny models, a sharded copy built here, and a
 * corpus of broken files that must fail with a clear message. */
#include "base/common.h"
#include "formats/gguf.h"
#include "formats/hfconfig.h"
#include "formats/safetensors.h"
#include "test.h"

#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir) {
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A safetensors image: header text, padded with spaces so that
 * (8 + header length) % 8 == pad_mod, then `data_len` bytes of `data` (or
 * zeros when data is NULL). Caller frees. */
static uint8_t *build_st(const char *hdr, int pad_mod, const void *data, size_t data_len,
                         size_t *size) {
    size_t hl = strlen(hdr);
    while ((8 + hl) % 8 != (size_t)pad_mod)
        hl++;
    *size = 8 + hl + data_len;
    uint8_t *buf = calloc(1, *size);
    put_le64(buf, hl);
    memset(buf + 8, ' ', hl);
    memcpy(buf + 8, hdr, strlen(hdr));
    if (data) memcpy(buf + 8 + hl, data, data_len);
    return buf;
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static int write_text(const char *path, const char *s) {
    return write_bytes(path, s, strlen(s));
}

/* Expects st_open_memory on hdr + data_len zero bytes to fail with a
 * message containing `want`. */
static void expect_bad_mem(const char *name, const char *hdr, size_t data_len, const char *want) {
    size_t size;
    uint8_t *buf = build_st(hdr, 0, NULL, data_len, &size);
    comi_err e;
    comi_err_clear(&e);
    st_model *m = NULL;
    comi_status st = st_open_memory(&e, name, buf, size, &m);
    test_check(name, st != COMI_OK && m == NULL && strstr(e.msg, want) != NULL,
               "status %d, message '%s', wanted '%s'", st, e.msg, want);
    st_close(m);
    free(buf);
}

static void expect_bad_raw(const char *name, const uint8_t *buf, size_t size, const char *want) {
    comi_err e;
    comi_err_clear(&e);
    st_model *m = NULL;
    comi_status st = st_open_memory(&e, name, buf, size, &m);
    test_check(name, st != COMI_OK && m == NULL && strstr(e.msg, want) != NULL,
               "status %d, message '%s', wanted '%s'", st, e.msg, want);
    st_close(m);
}

static void expect_bad_dir(const char *name, const char *dir, const char *want) {
    comi_err e;
    comi_err_clear(&e);
    st_model *m = NULL;
    comi_status st = st_open_dir(&e, dir, &m);
    test_check(name, st != COMI_OK && m == NULL && strstr(e.msg, want) != NULL,
               "status %d, message '%s', wanted '%s'", st, e.msg, want);
    st_close(m);
}

static void expect_bad_config(const char *name, const char *json, const char *want) {
    comi_err e;
    comi_err_clear(&e);
    hf_config c;
    comi_status st = hf_config_parse(&e, "config.json", json, strlen(json), &c);
    test_check(name, st != COMI_OK && strstr(e.msg, want) != NULL,
               "status %d, message '%s', wanted '%s'", st, e.msg, want);
}

/* ---- golden tiny models ------------------------------------------------- */

typedef struct model_spec {
    const char *name;
    const char *arch;
    int64_t vocab, ffn;
    bool biases, qk_norm, lm_head, tied;
} model_spec;

static const model_spec specs[] = {
    {"tiny-llama-spm", "llama", 32000, 176, false, false, true, false},
    {"tiny-qwen2-bpe", "qwen2", 50257, 160, true, false, false, true},
    {"tiny-qwen3-bpe", "qwen3", 50257, 160, false, true, false, true},
};

typedef struct expect_t {
    char name[96];
    comi_type type;
    int32_t n_dims;
    int64_t ne0, ne1; /* ne0 = contiguous (last PyTorch) dim */
} expect_t;

static int add_exp(expect_t *x, int n, const char *name, comi_type t, int64_t rows, int64_t cols) {
    snprintf(x[n].name, sizeof x[n].name, "%s", name);
    x[n].type = t;
    x[n].n_dims = rows ? 2 : 1;
    x[n].ne0 = cols;
    x[n].ne1 = rows ? rows : 1;
    return n + 1;
}

/* The tensor list the README table implies: hidden 64, 3 layers, 4 heads
 * of 16, 2 kv heads; matrices F16, norms and biases F32. */
static int expected_tensors(const model_spec *s, expect_t *x) {
    int n = 0;
    char b[96];
    n = add_exp(x, n, "model.embed_tokens.weight", COMI_TYPE_F16, s->vocab, 64);
    n = add_exp(x, n, "model.norm.weight", COMI_TYPE_F32, 0, 64);
    if (s->lm_head) n = add_exp(x, n, "lm_head.weight", COMI_TYPE_F16, s->vocab, 64);
    for (int l = 0; l < 3; l++) {
#define T(suffix, type, rows, cols)                                                                \
    do {                                                                                           \
        snprintf(b, sizeof b, "model.layers.%d.%s", l, suffix);                                    \
        n = add_exp(x, n, b, type, rows, cols);                                                    \
    } while (0)
        T("input_layernorm.weight", COMI_TYPE_F32, 0, 64);
        T("post_attention_layernorm.weight", COMI_TYPE_F32, 0, 64);
        T("self_attn.q_proj.weight", COMI_TYPE_F16, 64, 64);
        T("self_attn.k_proj.weight", COMI_TYPE_F16, 32, 64);
        T("self_attn.v_proj.weight", COMI_TYPE_F16, 32, 64);
        T("self_attn.o_proj.weight", COMI_TYPE_F16, 64, 64);
        T("mlp.gate_proj.weight", COMI_TYPE_F16, s->ffn, 64);
        T("mlp.up_proj.weight", COMI_TYPE_F16, s->ffn, 64);
        T("mlp.down_proj.weight", COMI_TYPE_F16, 64, s->ffn);
        if (s->biases) {
            T("self_attn.q_proj.bias", COMI_TYPE_F32, 0, 64);
            T("self_attn.k_proj.bias", COMI_TYPE_F32, 0, 32);
            T("self_attn.v_proj.bias", COMI_TYPE_F32, 0, 32);
        }
        if (s->qk_norm) {
            T("self_attn.q_norm.weight", COMI_TYPE_F32, 0, 16);
            T("self_attn.k_norm.weight", COMI_TYPE_F32, 0, 16);
        }
#undef T
    }
    return n;
}

/* GGUF name of a Hugging Face tensor name ("" when there is none). */
static void gguf_name(const char *hf, char *out, size_t cap) {
    static const char *const map[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.q_norm.weight", "attn_q_norm.weight"},
        {"self_attn.k_norm.weight", "attn_k_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    int layer;
    char rest[96];
    out[0] = '\0';
    if (strcmp(hf, "model.embed_tokens.weight") == 0)
        snprintf(out, cap, "token_embd.weight");
    else if (strcmp(hf, "model.norm.weight") == 0)
        snprintf(out, cap, "output_norm.weight");
    else if (strcmp(hf, "lm_head.weight") == 0)
        snprintf(out, cap, "output.weight");
    else if (sscanf(hf, "model.layers.%d.%95s", &layer, rest) == 2)
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (strcmp(rest, map[i][0]) == 0) snprintf(out, cap, "blk.%d.%s", layer, map[i][1]);
}

/* The same weights through the GGUF twin: identical bytes for every tensor,
 * except llama's q/k whose rows GGUF stores permuted: within each head of
 * hd rows, GGUF row 2j+k holds Hugging Face row k*hd/2 + j. */
static void test_gguf_twin(const char *golden, const model_spec *s, const st_model *m) {
    char path[512], name[160], gname[128], why[256] = "";
    snprintf(path, sizeof path, "%s/forward/models/%s.gguf", golden, s->name);
    comi_err e;
    comi_err_clear(&e);
    gguf_file *g = NULL;
    snprintf(name, sizeof name, "%s_gguf_twin_open", s->name);
    if (!test_check(name, gguf_open(&e, path, &g) == COMI_OK, "%s", e.msg)) return;
    int bad = 0, n_same = 0, n_perm = 0;
    for (int64_t i = 0; i < st_n_tensors(m); i++) {
        const comi_tensor *t = st_tensor_at(m, i);
        gguf_name(t->name, gname, sizeof gname);
        const comi_tensor *u = gname[0] ? gguf_find_tensor(g, gname) : NULL;
        if (!u || u->type != t->type || memcmp(u->ne, t->ne, sizeof t->ne) != 0 ||
            u->nbytes != t->nbytes) {
            bad++;
            snprintf(why, sizeof why, "%.80s -> %.80s: missing or different type/shape", t->name,
                     gname);
            continue;
        }
        int permuted = strcmp(s->arch, "llama") == 0 &&
                       (strstr(t->name, "q_proj.weight") || strstr(t->name, "k_proj.weight"));
        if (!permuted) {
            if (memcmp(u->data, t->data, t->nbytes) != 0) {
                bad++;
                snprintf(why, sizeof why, "%.80s: bytes differ", t->name);
            } else {
                n_same++;
            }
            continue;
        }
        const int64_t hd = 16, rows = t->ne[1];
        const size_t row_bytes = t->nbytes / (size_t)rows;
        int ok = 1;
        for (int64_t r = 0; r < rows; r++) {
            int64_t h = r / hd, j = (r % hd) / 2, k = r % 2;
            int64_t hf_row = h * hd + k * (hd / 2) + j;
            if (memcmp((const uint8_t *)u->data + (size_t)r * row_bytes,
                       (const uint8_t *)t->data + (size_t)hf_row * row_bytes, row_bytes) != 0)
                ok = 0;
        }
        if (ok) {
            n_perm++;
        } else {
            bad++;
            snprintf(why, sizeof why, "%.80s: rows are not the llama q/k permutation", t->name);
        }
    }
    snprintf(name, sizeof name, "%s_gguf_twin_values", s->name);
    test_check(name, bad == 0 && n_same > 0 && st_n_tensors(m) == gguf_n_tensors(g),
               "%d mismatches (last: %s), %d equal, %d permuted, %lld vs %lld tensors", bad, why,
               n_same, n_perm, (long long)st_n_tensors(m), (long long)gguf_n_tensors(g));
    if (strcmp(s->arch, "llama") == 0) {
        snprintf(name, sizeof name, "%s_gguf_twin_qk_permuted", s->name);
        test_check(name, n_perm == 6, "%d q/k tensors matched the permutation, expected 6", n_perm);
    }
    gguf_close(g);
}

static void test_golden_model(const char *golden, const model_spec *s) {
    char dir[512], name[160];
    snprintf(dir, sizeof dir, "%s/forward/models/%s.hf", golden, s->name);

    comi_err e;
    comi_err_clear(&e);
    st_model *m = NULL;
    snprintf(name, sizeof name, "%s_open", s->name);
    if (!test_check(name, st_open_dir(&e, dir, &m) == COMI_OK, "%s", e.msg)) return;

    expect_t x[64];
    int n = expected_tensors(s, x);
    snprintf(name, sizeof name, "%s_count", s->name);
    test_check(name, st_n_tensors(m) == n, "%lld tensors, expected %d", (long long)st_n_tensors(m),
               n);
    int bad = 0;
    char why[256] = "";
    for (int i = 0; i < n; i++) {
        const comi_tensor *t = st_find_tensor(m, x[i].name);
        if (!t) {
            bad++;
            snprintf(why, sizeof why, "missing %.90s", x[i].name);
            continue;
        }
        size_t esz = t->type == COMI_TYPE_F32 ? 4 : 2;
        if (t->type != x[i].type || t->n_dims != x[i].n_dims || t->ne[0] != x[i].ne0 ||
            t->ne[1] != x[i].ne1 || t->ne[2] != 1 || t->ne[3] != 1 ||
            t->nbytes != (size_t)(x[i].ne0 * x[i].ne1) * esz || strcmp(t->name, x[i].name) != 0 ||
            ((uintptr_t)t->data % esz) != 0) {
            bad++;
            snprintf(why, sizeof why, "%.90s: type %d dims %d ne %lld x %lld nbytes %zu", x[i].name,
                     t->type, t->n_dims, (long long)t->ne[0], (long long)t->ne[1], t->nbytes);
        }
    }
    snprintf(name, sizeof name, "%s_tensor_shapes", s->name);
    test_check(name, bad == 0, "%d wrong; last: %s", bad, why);

    /* Listing order is data-offset order and every listed tensor is found
     * by name; the data pointers follow each other without gaps. */
    int order_ok = 1;
    for (int64_t i = 0; i < st_n_tensors(m); i++) {
        const comi_tensor *t = st_tensor_at(m, i);
        if (st_find_tensor(m, t->name) != t) order_ok = 0;
        if (i > 0) {
            const comi_tensor *p = st_tensor_at(m, i - 1);
            if ((const uint8_t *)p->data + p->nbytes != (const uint8_t *)t->data) order_ok = 0;
        }
    }
    snprintf(name, sizeof name, "%s_order_lookup", s->name);
    test_check(name,
               order_ok && st_tensor_at(m, -1) == NULL &&
                   st_tensor_at(m, st_n_tensors(m)) == NULL && st_find_tensor(m, "nope") == NULL &&
                   st_n_shards(m) == 1,
               "listing/lookup mismatch");

    /* Norm weights of a random model are not all zero, F16 values finite. */
    const comi_tensor *norm = NULL;
    snprintf(name, sizeof name, "%s_get_weight", s->name);
    test_check(name, st_get_weight(&e, m, "model.norm.weight", &norm) == COMI_OK && norm, "%s",
               e.msg);

    test_gguf_twin(golden, s, m);

    hf_config c;
    snprintf(name, sizeof name, "%s_config", s->name);
    if (test_check(name, hf_config_load(&e, dir, &c) == COMI_OK, "%s", e.msg)) {
        snprintf(name, sizeof name, "%s_config_values", s->name);
        test_check(name,
                   strcmp(c.model_type, s->arch) == 0 && c.hidden_size == 64 &&
                       c.intermediate_size == s->ffn && c.num_hidden_layers == 3 &&
                       c.num_attention_heads == 4 && c.num_key_value_heads == 2 &&
                       c.head_dim == 16 && c.vocab_size == s->vocab &&
                       fabs(c.rms_norm_eps - 1e-5) < 1e-12 && c.rope_theta == 10000.0 &&
                       c.tie_word_embeddings == s->tied && c.max_position_embeddings == 1024 &&
                       c.rope_scaling.kind == HF_ROPE_NONE && c.bos_token_id == -1 &&
                       c.n_eos == 0 && strcmp(c.hidden_act, "silu") == 0 &&
                       strcmp(c.torch_dtype, "float32") == 0,
                   "model_type %s hidden %lld ffn %lld heads %lld/%lld head_dim %lld vocab %lld "
                   "tied %d",
                   c.model_type, (long long)c.hidden_size, (long long)c.intermediate_size,
                   (long long)c.num_attention_heads, (long long)c.num_key_value_heads,
                   (long long)c.head_dim, (long long)c.vocab_size, c.tie_word_embeddings);
    }
    st_close(m);
}

/* ---- sharded copy ------------------------------------------------------- */

/* Writes the tensors [lo, hi) of m into a new safetensors file at path,
 * offsets renumbered; the header is padded so that (8 + len) % 8 ==
 * pad_mod (1 makes the data misaligned on purpose). */
static int write_shard(const st_model *m, int64_t lo, int64_t hi, const char *path, int pad_mod,
                       const char *extra_tensor) {
    json_t *h = json_object();
    uint64_t off = 0;
    for (int64_t i = lo; i < hi; i++) {
        const comi_tensor *t = st_tensor_at(m, i);
        json_t *shape = json_array();
        for (int d = t->n_dims - 1; d >= 0; d--)
            json_array_append_new(shape, json_integer(t->ne[d]));
        json_t *ent =
            json_pack("{s:s, s:o, s:[I,I]}", "dtype", st_tensor_dtype(m, i), "shape", shape,
                      "data_offsets", (json_int_t)off, (json_int_t)(off + t->nbytes));
        json_object_set_new(h, t->name, ent);
        off += t->nbytes;
    }
    if (extra_tensor) {
        /* An empty tensor under an existing name, for the duplicate test. */
        json_object_set_new(h, extra_tensor,
                            json_pack("{s:s, s:[i], s:[I,I]}", "dtype", "F32", "shape", 0,
                                      "data_offsets", (json_int_t)off, (json_int_t)off));
    }
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    char *hdr = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    uint8_t *data = malloc(off ? off : 1);
    uint64_t pos = 0;
    for (int64_t i = lo; i < hi; i++) {
        const comi_tensor *t = st_tensor_at(m, i);
        memcpy(data + pos, t->data, t->nbytes);
        pos += t->nbytes;
    }
    size_t size;
    uint8_t *img = build_st(hdr, pad_mod, data, off, &size);
    int rc = write_bytes(path, img, size);
    free(img);
    free(data);
    free(hdr);
    return rc;
}

/* An index.json mapping tensors [0, split) to shard a and the rest to b. */
static int write_index(const st_model *m, int64_t split, const char *path, const char *a,
                       const char *b) {
    json_t *wm = json_object();
    json_int_t total = 0; /* what transformers writes: the tensors' data bytes */
    for (int64_t i = 0; i < st_n_tensors(m); i++) {
        json_object_set_new(wm, st_tensor_at(m, i)->name, json_string(i < split ? a : b));
        total += (json_int_t)st_tensor_at(m, i)->nbytes;
    }
    json_t *root = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", total, "weight_map", wm);
    int rc = json_dump_file(root, path, JSON_INDENT(1));
    json_decref(root);
    return rc;
}

static void test_sharded(const char *golden, const char *tmp) {
    char src[512], dir[600], p[700];
    snprintf(src, sizeof src, "%s/forward/models/tiny-qwen3-bpe.hf/model.safetensors", golden);
    comi_err e;
    comi_err_clear(&e);
    st_model *ref = NULL;
    if (!test_check("sharded_src_open", st_open_file(&e, src, &ref) == COMI_OK, "%s", e.msg))
        return;
    int64_t n = st_n_tensors(ref), split = n / 2;
    const char *a = "model-00001-of-00002.safetensors", *b = "model-00002-of-00002.safetensors";

    snprintf(dir, sizeof dir, "%s/sharded", tmp);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/%s", dir, a);
    int ok = write_shard(ref, 0, split, p, 0, NULL) == 0;
    snprintf(p, sizeof p, "%s/%s", dir, b);
    ok &= write_shard(ref, split, n, p, 1, NULL) == 0; /* misaligned data */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    ok &= write_index(ref, split, p, a, b) == 0;
    test_check("sharded_build", ok, "could not write the sharded fixture");

    st_model *m = NULL;
    if (test_check("sharded_open", st_open_dir(&e, dir, &m) == COMI_OK, "%s", e.msg)) {
        int same = st_n_tensors(m) == n && st_n_shards(m) == 2;
        int aligned = 1;
        for (int64_t i = 0; i < n && same; i++) {
            const comi_tensor *r = st_tensor_at(ref, i);
            const comi_tensor *t = st_find_tensor(m, r->name);
            if (!t || t->type != r->type || t->n_dims != r->n_dims ||
                memcmp(t->ne, r->ne, sizeof t->ne) != 0 || t->nbytes != r->nbytes ||
                memcmp(t->data, r->data, r->nbytes) != 0)
                same = 0;
            else if ((uintptr_t)t->data % (t->type == COMI_TYPE_F32 ? 4 : 2) != 0)
                aligned = 0;
        }
        test_check("sharded_same_tensors", same, "sharded copy differs from the single file");
        test_check("sharded_misaligned_copied", aligned, "a tensor pointer is misaligned");
    }
    st_close(m);

    /* Duplicate tensor across shards: shard b also holds tensor 0's name. */
    snprintf(dir, sizeof dir, "%s/dup", tmp);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/%s", dir, a);
    write_shard(ref, 0, split, p, 0, NULL);
    snprintf(p, sizeof p, "%s/%s", dir, b);
    write_shard(ref, split, n, p, 0, st_tensor_at(ref, 0)->name);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_index(ref, split, p, a, b);
    expect_bad_dir("sharded_duplicate_tensor", dir, "appears in both");

    /* The index names a shard that does not exist. */
    snprintf(dir, sizeof dir, "%s/missing", tmp);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/%s", dir, a);
    write_shard(ref, 0, split, p, 0, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_index(ref, split, p, a, b);
    expect_bad_dir("sharded_missing_shard", dir, "model-00002-of-00002.safetensors");

    /* The index puts every tensor in shard a: the second half is elsewhere. */
    snprintf(dir, sizeof dir, "%s/wrongmap", tmp);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/%s", dir, a);
    write_shard(ref, 0, split, p, 0, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_index(ref, n, p, a, a);
    expect_bad_dir("sharded_tensor_not_in_shard", dir, "does not contain it");

    /* Shard names must stay inside the directory. */
    snprintf(dir, sizeof dir, "%s/escape", tmp);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, "{\"weight_map\": {\"x\": \"../model.safetensors\"}}");
    expect_bad_dir("sharded_shard_escapes_dir", dir, "relative paths");
    write_text(p, "{\"weight_map\": [1, 2]}");
    expect_bad_dir("sharded_weight_map_not_object", dir, "'weight_map' is not an object");
    write_text(p, "{\"weight_map\": {}}");
    expect_bad_dir("sharded_weight_map_empty", dir, "weight_map is empty");
    write_text(p, "{\"weight_map\": {\"x\": 3}}");
    expect_bad_dir("sharded_weight_map_value", dir, "tensor 'x' is not a string");
    write_text(p, "{\"weight_map\": ");
    expect_bad_dir("sharded_index_not_json", dir, "not valid JSON");

    snprintf(dir, sizeof dir, "%s/empty", tmp);
    mkdir(dir, 0700);
    expect_bad_dir("dir_without_model", dir, "no model.safetensors");
    snprintf(p, sizeof p, "%s/does-not-exist", tmp);
    expect_bad_dir("dir_missing", p, "no such file");

    /* A truncated copy of the real file. */
    snprintf(p, sizeof p, "%s/trunc.safetensors", tmp);
    size_t len;
    uint8_t *whole = test_read_file(src, &len);
    if (whole) {
        write_bytes(p, whole, len / 2);
        free(whole);
    }
    expect_bad_dir("truncated_file", p, "past the data section");
    st_close(ref);
}

/* ---- metadata.total_size of a sharded index (no golden data needed) ---- */

/* Writes DIR/model.safetensors.index.json with the given metadata text (NULL:
 * no metadata) for two shards of one F32 tensor each (8 + 12 = 20 bytes of
 * tensor data), then opens DIR. */
static comi_status open_with_metadata(const char *dir, const char *metadata, comi_err *e) {
    char p[700], idx[512];
    snprintf(idx, sizeof idx,
             "{%s%s\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}",
             metadata ? "\"metadata\": " : "", metadata ? metadata : "");
    if (metadata) {
        /* the comma after the metadata value */
        char *w = strstr(idx, "\"weight_map\"");
        memmove(w + 2, w, strlen(w) + 1);
        w[0] = ',';
        w[1] = ' ';
    }
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, idx);
    comi_err_clear(e);
    st_model *m = NULL;
    comi_status st = st_open_dir(e, dir, &m);
    st_close(m);
    return st;
}

static void test_index_total_size(const char *tmp) {
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s/total", tmp);
    mkdir(dir, 0700);
    size_t n1, n2;
    uint8_t *s1 = build_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0,
                           NULL, 8, &n1);
    uint8_t *s2 = build_st("{\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", 0,
                           NULL, 12, &n2);
    snprintf(p, sizeof p, "%s/s1.safetensors", dir);
    int ok = write_bytes(p, s1, n1) == 0;
    snprintf(p, sizeof p, "%s/s2.safetensors", dir);
    ok &= write_bytes(p, s2, n2) == 0;
    free(s1);
    free(s2);
    if (!test_check("total_size_fixture", ok, "could not write the shards")) return;
    comi_err e;
    static const struct {
        const char *name, *metadata;
    } good[] = {{"total_size_exact", "{\"total_size\": 20}"},
                {"total_size_absent", NULL},
                {"total_size_no_key", "{\"format\": \"pt\"}"},
                {"total_size_null", "{\"total_size\": null}"},
                {"metadata_null", "null"},
                /* larger: writers that count shard headers (whole file sizes) */
                {"total_size_larger", "{\"total_size\": 292}"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        comi_status st = open_with_metadata(dir, good[i].metadata, &e);
        test_check(good[i].name, st == COMI_OK, "status %d: %s", st, e.msg);
    }
    static const struct {
        const char *name, *metadata, *want;
    } bad[] = {{"total_size_smaller", "{\"total_size\": 19}",
                "metadata.total_size is 19 bytes but the shards hold 20 bytes"},
               {"total_size_zero", "{\"total_size\": 0}", "is 0 bytes but the shards hold 20"},
               {"total_size_negative", "{\"total_size\": -20}", "not a non-negative integer"},
               {"total_size_string", "{\"total_size\": \"20\"}", "not a non-negative integer"},
               {"total_size_real", "{\"total_size\": 20.0}", "not a non-negative integer"},
               {"metadata_not_object", "[20]", "'metadata' is not an object"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        comi_status st = open_with_metadata(dir, bad[i].metadata, &e);
        test_check(bad[i].name,
                   st == COMI_ERR_FORMAT && strstr(e.msg, bad[i].want) &&
                       strstr(e.msg, "model.safetensors.index.json"),
                   "status %d, message '%s', wanted '%s'", st, e.msg, bad[i].want);
    }
}

/* ---- handcrafted bad headers -------------------------------------------- */

static void test_bad_headers(void) {
    uint8_t raw[32];
    memset(raw, 0xff, sizeof raw);
    expect_bad_raw("bad_huge_header_len", raw, sizeof raw, "exceeds the limit");
    put_le64(raw, 1000);
    memcpy(raw + 8, "{}", 2);
    expect_bad_raw("bad_header_len_past_eof", raw, sizeof raw, "runs past the end");
    expect_bad_raw("bad_too_short", raw, 5, "too short");
    put_le64(raw, 0);
    expect_bad_raw("bad_header_len_zero", raw, 8, "does not start with a JSON object");

    expect_bad_mem("bad_not_json", "{not json", 0, "not valid JSON");
    expect_bad_mem("bad_not_object", "[1, 2, 3]", 0, "does not start with a JSON object");
    expect_bad_mem("bad_trailing_garbage", "{} x", 0, "not valid JSON");
    expect_bad_mem("bad_entry_not_object", "{\"a\": 5}", 0, "entry is not a JSON object");
    expect_bad_mem("bad_missing_dtype", "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                   "'dtype' is missing");
    expect_bad_mem("bad_missing_shape", "{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}",
                   4, "'shape' is missing");
    expect_bad_mem("bad_missing_offsets", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
                   "'data_offsets' is missing");
    expect_bad_mem("bad_unknown_dtype",
                   "{\"a\": {\"dtype\": \"F17\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                   "unknown dtype 'F17'");
    expect_bad_mem("bad_offsets_out_of_range",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4,
                   "past the data section");
    expect_bad_mem("bad_offsets_reversed",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8,
                   "reversed");
    expect_bad_mem("bad_offsets_negative",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 8,
                   "two non-negative integers");
    expect_bad_mem("bad_offsets_float",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4.0]}}", 8,
                   "two non-negative integers");
    expect_bad_mem("bad_offsets_three",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
                   "two non-negative integers");
    expect_bad_mem("bad_size_mismatch",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
                   "needs 12");
    expect_bad_mem("bad_shape_negative",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 8,
                   "shape[0]");
    expect_bad_mem("bad_shape_overflow",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, "
                   "4611686018427387904], \"data_offsets\": [0, 4]}}",
                   8, "overflows");
    expect_bad_mem("bad_bytes_overflow",
                   "{\"a\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], "
                   "\"data_offsets\": [0, 4]}}",
                   8, "overflows");
    expect_bad_mem("bad_too_many_dims",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1], \"data_offsets\": [0, "
                   "4]}}",
                   8, "at most 4");
    expect_bad_mem("bad_overlap",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                   " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                   12, "overlaps");
    expect_bad_mem("bad_duplicate_key",
                   "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                   " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                   8, "duplicate");
    expect_bad_mem("bad_metadata_not_object", "{\"__metadata__\": [1]}", 0,
                   "__metadata__ is not a JSON object");
    expect_bad_mem("bad_metadata_value", "{\"__metadata__\": {\"format\": 1}}", 0,
                   "__metadata__ value 'format'");
}

/* Every proper prefix of a valid file (a download cut short anywhere) fails
 * with a message naming the file; the whole file opens. */
static void test_every_prefix(void) {
    const char *hdr = "{\"__metadata__\": {\"format\": \"pt\"},"
                      " \"a\": {\"dtype\": \"F16\", \"shape\": [2, 3], \"data_offsets\": [0, 12]},"
                      " \"b\": {\"dtype\": \"I8\", \"shape\": [5], \"data_offsets\": [12, 17]}}";
    size_t size;
    uint8_t *buf = build_st(hdr, 0, NULL, 17, &size);
    size_t n_bad = 0, first = 0;
    char first_msg[600] = "";
    for (size_t cut = 0; cut < size; cut++) {
        uint8_t *p = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
        memcpy(p, buf, cut);
        comi_err e;
        comi_err_clear(&e);
        st_model *m = NULL;
        comi_status st = st_open_memory(&e, "cut.safetensors", p, cut, &m);
        if (st != COMI_ERR_FORMAT || m != NULL || !strstr(e.msg, "cut.safetensors")) {
            if (n_bad++ == 0) {
                first = cut;
                snprintf(first_msg, sizeof first_msg, "status %d '%s'", (int)st, e.msg);
            }
        }
        st_close(m);
        free(p);
    }
    test_check("every_prefix_fails", n_bad == 0, "%zu of %zu prefixes, first at %zu: %s", n_bad,
               size, first, first_msg);
    comi_err e;
    comi_err_clear(&e);
    st_model *m = NULL;
    test_check("every_prefix_whole_opens", st_open_memory(&e, "cut.safetensors", buf, size, &m) ==
                                               COMI_OK,
               "%s", e.msg);
    st_close(m);
    free(buf);
}

/* Valid corner cases: scalars, empty tensors, integer dtypes, metadata. */
static void test_good_corners(void) {
    const char *hdr =
        "{\"__metadata__\": {\"format\": \"pt\"},"
        " \"ids\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 16]},"
        " \"flag\": {\"dtype\": \"BOOL\", \"shape\": [], \"data_offsets\": [24, 25]},"
        " \"w\": {\"dtype\": \"BF16\", \"shape\": [2, 1, 2], \"data_offsets\": [16, 24]},"
        " \"empty\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [24, 24]}}";
    size_t size;
    uint8_t *buf = build_st(hdr, 0, NULL, 25, &size);
    comi_err e;
    comi_err_clear(&e);
    st_model *m = NULL;
    if (test_check("corners_open", st_open_memory(&e, "mem", buf, size, &m) == COMI_OK, "%s",
                   e.msg)) {
        const comi_tensor *w = st_find_tensor(m, "w"), *ids = st_find_tensor(m, "ids");
        const comi_tensor *flag = st_find_tensor(m, "flag"), *empty = st_find_tensor(m, "empty");
        test_check("corners_shapes",
                   w && ids && flag && empty && w->type == COMI_TYPE_BF16 && w->n_dims == 3 &&
                       w->ne[0] == 2 && w->ne[1] == 1 && w->ne[2] == 2 && w->ne[3] == 1 &&
                       ids->type == COMI_TYPE_I64 && ids->ne[0] == 2 && flag->n_dims == 1 &&
                       flag->ne[0] == 1 && flag->type == COMI_TYPE_COUNT && empty->nbytes == 0 &&
                       empty->ne[0] == 3 && empty->ne[1] == 0 && st_n_tensors(m) == 4,
                   "shape/type mismatch");
        test_check("corners_order",
                   strcmp(st_tensor_at(m, 0)->name, "ids") == 0 &&
                       strcmp(st_tensor_at(m, 1)->name, "w") == 0 &&
                       strcmp(st_tensor_dtype(m, 1), "BF16") == 0,
                   "order %s %s", st_tensor_at(m, 0)->name, st_tensor_at(m, 1)->name);
        const comi_tensor *t = NULL;
        comi_status st = st_get_weight(&e, m, "ids", &t);
        test_check("weight_rejects_i64",
                   st == COMI_ERR_UNSUPPORTED && !t && strstr(e.msg, "dtype I64"), "%d %s", st,
                   e.msg);
        st = st_get_weight(&e, m, "missing.weight", &t);
        test_check("weight_missing", st == COMI_ERR_FORMAT && strstr(e.msg, "missing tensor"),
                   "%d %s", st, e.msg);
        test_check("weight_bf16_ok", st_get_weight(&e, m, "w", &t) == COMI_OK && t == w, "%s",
                   e.msg);
    }
    st_close(m);
    st_close(NULL);
    free(buf);
}

/* ---- config.json -------------------------------------------------------- */

#define CFG_BASE                                                                                   \
    "\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, "                 \
    "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100, "                  \
    "\"rms_norm_eps\": 1e-6"

static void test_config(void) {
    comi_err e;
    comi_err_clear(&e);
    hf_config c;
    const char *j = "{" CFG_BASE ", \"head_dim\": null, \"eos_token_id\": [2, 7], "
                    "\"bos_token_id\": 1, \"rope_scaling\": {\"rope_type\": \"llama3\", "
                    "\"factor\": 8.0, \"original_max_position_embeddings\": 8192}}";
    if (test_check("config_defaults", hf_config_parse(&e, "c", j, strlen(j), &c) == COMI_OK, "%s",
                   e.msg)) {
        test_check("config_default_values",
                   c.num_key_value_heads == 4 && c.head_dim == 16 && c.rope_theta == 10000.0 &&
                       !c.tie_word_embeddings && !c.attention_bias && c.bos_token_id == 1 &&
                       c.n_eos == 2 && c.eos_token_ids[1] == 7 &&
                       c.rope_scaling.kind == HF_ROPE_LLAMA3 && c.rope_scaling.factor == 8.0 &&
                       c.rope_scaling.original_max_position_embeddings == 8192 &&
                       c.architecture[0] == '\0' && c.max_position_embeddings == 0,
                   "kv %lld head_dim %lld eos %d", (long long)c.num_key_value_heads,
                   (long long)c.head_dim, c.n_eos);
        comi_status st = hf_config_check_rope(&e, &c, 1u << HF_ROPE_LINEAR);
        test_check("config_rope_unsupported",
                   st == COMI_ERR_UNSUPPORTED && strstr(e.msg, "'llama3'"), "%d %s", st, e.msg);
        test_check("config_rope_supported",
                   hf_config_check_rope(&e, &c, 1u << HF_ROPE_LLAMA3) == COMI_OK, "%s", e.msg);
    }
    j = "{" CFG_BASE ", \"rope_parameters\": {\"rope_theta\": 1000000.0, \"rope_type\": "
        "\"default\"}, \"eos_token_id\": 5}";
    test_check("config_rope_parameters",
               hf_config_parse(&e, "c", j, strlen(j), &c) == COMI_OK && c.rope_theta == 1e6 &&
                   c.rope_scaling.kind == HF_ROPE_NONE && c.n_eos == 1 && c.eos_token_ids[0] == 5,
               "%s theta %g", e.msg, c.rope_theta);

    expect_bad_config("config_not_json", "{\"model_type\": ", "not valid JSON");
    expect_bad_config("config_not_object", "[]", "not a JSON object");
    expect_bad_config("config_missing_model_type", "{\"hidden_size\": 4}",
                      "'model_type' is missing");
    expect_bad_config("config_missing_hidden",
                      "{\"model_type\": \"llama\", \"intermediate_size\": 8, "
                      "\"num_hidden_layers\": 1, \"num_attention_heads\": 1, \"vocab_size\": 4, "
                      "\"rms_norm_eps\": 1e-6}",
                      "'hidden_size' is missing");
    expect_bad_config("config_missing_eps",
                      "{\"model_type\": \"llama\", \"hidden_size\": 4, \"intermediate_size\": 8, "
                      "\"num_hidden_layers\": 1, \"num_attention_heads\": 1, \"vocab_size\": 4}",
                      "'rms_norm_eps' is missing");
    expect_bad_config("config_duplicate_key", "{" CFG_BASE ", \"hidden_size\": \"64\"}",
                      "duplicate");
    expect_bad_config("config_hidden_type",
                      "{\"model_type\": \"llama\", \"hidden_size\": \"64\", "
                      "\"intermediate_size\": 8, \"num_hidden_layers\": 1, "
                      "\"num_attention_heads\": 1, \"vocab_size\": 4, \"rms_norm_eps\": 1e-6}",
                      "'hidden_size' must be an integer");
    expect_bad_config("config_model_type_type", "{\"model_type\": 3, \"hidden_size\": 64}",
                      "'model_type' must be a string");
    expect_bad_config("config_zero_layers",
                      "{\"model_type\": \"llama\", \"hidden_size\": 4, \"intermediate_size\": 8, "
                      "\"num_hidden_layers\": 0, \"num_attention_heads\": 1, \"vocab_size\": 4, "
                      "\"rms_norm_eps\": 1e-6}",
                      "'num_hidden_layers' = 0 is out of range");
    expect_bad_config("config_kv_heads", "{" CFG_BASE ", \"num_key_value_heads\": 3}",
                      "not a multiple of num_key_value_heads");
    expect_bad_config("config_tie_type", "{" CFG_BASE ", \"tie_word_embeddings\": 1}",
                      "'tie_word_embeddings' must be true or false");
    expect_bad_config("config_theta_negative", "{" CFG_BASE ", \"rope_theta\": -5}",
                      "'rope_theta' = -5 must be positive");
    expect_bad_config("config_eos_type", "{" CFG_BASE ", \"eos_token_id\": \"</s>\"}",
                      "'eos_token_id' must be a non-negative token id");
    expect_bad_config("config_rope_scaling_type", "{" CFG_BASE ", \"rope_scaling\": 2}",
                      "'rope_scaling' must be an object");
    expect_bad_config("config_rope_scaling_no_type",
                      "{" CFG_BASE ", \"rope_scaling\": {\"factor\": 2}}", "no 'type'");
    expect_bad_config("config_architectures_type", "{" CFG_BASE ", \"architectures\": \"x\"}",
                      "'architectures' must be a list");

    comi_status st = hf_config_load(&e, "/nonexistent/dir/config.json", &c);
    test_check("config_load_missing", st == COMI_ERR_IO && strstr(e.msg, "cannot open"), "%d %s",
               st, e.msg);
}

int main(void) {
    const char *golden = test_golden_dir();
    char tmp[] = "/tmp/comi-st-XXXXXX";
    if (!mkdtemp(tmp)) {
        test_fail("mkdtemp", "cannot create a temporary directory");
        return test_exit();
    }
    if (golden) {
        for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
            test_golden_model(golden, &specs[i]);
        test_sharded(golden, tmp);
    } else {
        test_skip("golden_models", "golden data not found ($COMI_GOLDEN)");
        test_skip("sharded", "golden data not found ($COMI_GOLDEN)");
    }
    test_index_total_size(tmp);
    test_bad_headers();
    test_every_prefix();
    test_good_corners();
    test_config();
    rm_tree(tmp);
    return test_exit();
}
