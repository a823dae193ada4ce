/*
 * model.c — loading a decoder-only transformer (stage: encoder/decoder LM)
 * from a GGUF file (llama.cpp's tensor names and `<arch>.*` metadata, as
 * written by convert_hf_to_gguf.py) or a Hugging Face directory
 * (config.json + safetensors, the names of transformers' LlamaForCausalLM /
 * Qwen2ForCausalLM / Qwen3ForCausalLM). Every hyper-parameter is range
 * checked and every tensor's presence, shape and type validated against the
 * architecture before the model is handed out. Matrices stay mmapped; only
 * norm and bias vectors are converted to owned float32 copies.
 */
#include "runtime/model.h"

#include "formats/gguf.h"
#include "formats/hfconfig.h"
#include "formats/quant.h"
#include "formats/safetensors.h"
#include "runtime/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Sanity limits on hyper-parameters (far above any real model, low enough
 * that products of them cannot overflow int64). */
#define MAX_DIM ((int64_t)1 << 20)
#define MAX_LAYERS 4096
#define MAX_VOCAB ((int64_t)1 << 24)

static const char *arch_name(model_arch a) {
    switch (a) {
    case MODEL_ARCH_LLAMA:
        return "llama";
    case MODEL_ARCH_QWEN2:
        return "qwen2";
    case MODEL_ARCH_QWEN3:
        return "qwen3";
    }
    return "?";
}

static bool arch_from_name(const char *s, size_t len, model_arch *out) {
    static const model_arch all[] = {MODEL_ARCH_LLAMA, MODEL_ARCH_QWEN2, MODEL_ARCH_QWEN3};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *n = arch_name(all[i]);
        if (strlen(n) == len && !memcmp(n, s, len)) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

void model_vector_to_f32(const comi_tensor *t, float *dst) {
    quant_dequant_row(t->type, t->data, dst, t->ne[0]);
}

/* ---- the loader: one tensor namespace, two naming schemes -------------- */

typedef struct loader {
    comi_err *e;
    comi_model *m;
    const char *path;
    float *vec_next; /* next free float in m->vectors */
    uint64_t bytes_by_type[COMI_TYPE_COUNT];
    model_lookup_fn lookup; /* model_load_custom: tensors by Hugging Face name */
    void *lookup_ud;
} loader;

static const comi_tensor *find_tensor(const loader *L, const char *name) {
    if (L->lookup) return L->lookup(L->lookup_ud, name);
    if (L->m->gguf) return gguf_find_tensor(L->m->gguf, name);
    return st_find_tensor(L->m->st, name);
}

static void shape_str(const comi_tensor *t, char *buf, size_t len) {
    int off = snprintf(buf, len, "[");
    for (int i = 0; i < t->n_dims && off > 0 && (size_t)off < len; i++)
        off += snprintf(buf + off, len - (size_t)off, i ? ", %lld" : "%lld", (long long)t->ne[i]);
    if (off > 0 && (size_t)off < len) snprintf(buf + off, len - (size_t)off, "]");
}

static bool has_shape(const comi_tensor *t, int64_t ne0, int64_t ne1) {
    if (t->ne[0] != ne0 || t->ne[2] != 1 || t->ne[3] != 1) return false;
    return ne1 ? t->ne[1] == ne1 : t->ne[1] == 1;
}

/* A weight matrix with ne = (ne0, ne1) (ne0 = input features). */
static comi_status get_matrix(loader *L, const char *name, int64_t ne0, int64_t ne1,
                              comi_tensor *out) {
    const comi_tensor *t = find_tensor(L, name);
    if (!t)
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: missing tensor '%s' (%s)", L->path, name,
                            arch_name(L->m->arch));
    if (!has_shape(t, ne0, ne1)) {
        char got[96];
        shape_str(t, got, sizeof got);
        return comi_err_set(L->e, COMI_ERR_FORMAT,
                            "%s: tensor '%s' has shape %s, expected [%lld, %lld] (ne0 = inputs)",
                            L->path, name, got, (long long)ne0, (long long)ne1);
    }
    if (!ops_weight_supported(t)) {
        const char *tn = quant_type_name(t->type);
        return comi_err_set(L->e, COMI_ERR_UNSUPPORTED,
                            "%s: tensor '%s' has type %s, not supported for weight matrices",
                            L->path, name, tn ? tn : "unknown");
    }
    *out = *t;
    if ((int)t->type >= 0 && (int)t->type < COMI_TYPE_COUNT) L->bytes_by_type[t->type] += t->nbytes;
    L->m->n_params += ne0 * ne1;
    L->m->weight_bytes += t->nbytes;
    return COMI_OK;
}

/* A vector of n elements (F32/F16/BF16), converted into model storage. A
 * missing optional vector leaves *out NULL. */
static comi_status get_vector(loader *L, const char *name, int64_t n, bool optional,
                              const float **out) {
    *out = NULL;
    const comi_tensor *t = find_tensor(L, name);
    if (!t) {
        if (optional) return COMI_OK;
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: missing tensor '%s' (%s)", L->path, name,
                            arch_name(L->m->arch));
    }
    if (!has_shape(t, n, 0)) {
        char got[96];
        shape_str(t, got, sizeof got);
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected [%lld]",
                            L->path, name, got, (long long)n);
    }
    if (t->type != COMI_TYPE_F32 && t->type != COMI_TYPE_F16 && t->type != COMI_TYPE_BF16) {
        const char *tn = quant_type_name(t->type);
        return comi_err_set(L->e, COMI_ERR_UNSUPPORTED,
                            "%s: tensor '%s' has type %s, expected F32, F16 or BF16", L->path, name,
                            tn ? tn : "unknown");
    }
    model_vector_to_f32(t, L->vec_next);
    *out = L->vec_next;
    L->vec_next += n;
    L->m->n_params += n;
    L->m->weight_bytes += t->nbytes;
    return COMI_OK;
}

/* ---- hyper-parameters -------------------------------------------------- */

static comi_status check_range(loader *L, const char *field, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: %s = %lld is out of range [%lld, %lld]",
                            L->path, field, (long long)v, (long long)lo, (long long)hi);
    return COMI_OK;
}

static comi_status check_hparams(loader *L) {
    comi_model *m = L->m;
    comi_status st;
    if ((st = check_range(L, "embedding length", m->n_embd, 1, MAX_DIM)) ||
        (st = check_range(L, "block count", m->n_layer, 1, MAX_LAYERS)) ||
        (st = check_range(L, "feed-forward length", m->n_ff, 1, MAX_DIM)) ||
        (st = check_range(L, "head count", m->n_head, 1, 4096)) ||
        (st = check_range(L, "kv head count", m->n_head_kv, 1, m->n_head)) ||
        (st = check_range(L, "head dim", m->head_dim, 2, 4096)) ||
        (st = check_range(L, "vocabulary size", m->n_vocab, 1, MAX_VOCAB)))
        return st;
    if (m->n_head % m->n_head_kv != 0)
        return comi_err_set(L->e, COMI_ERR_FORMAT,
                            "%s: head count %lld is not a multiple of kv head count %lld", L->path,
                            (long long)m->n_head, (long long)m->n_head_kv);
    if (m->head_dim % 2 != 0)
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: head dim %lld is odd (RoPE needs pairs)",
                            L->path, (long long)m->head_dim);
    if (!(m->norm_eps > 0 && m->norm_eps < 1))
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: RMSNorm epsilon %g is out of range (0, 1)",
                            L->path, (double)m->norm_eps);
    if (!(m->rope_theta > 1 && m->rope_theta < 1e12f))
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: RoPE base %g is out of range (1, 1e12)",
                            L->path, (double)m->rope_theta);
    m->q_dim = m->n_head * m->head_dim;
    m->kv_dim = m->n_head_kv * m->head_dim;
    if ((st = check_range(L, "heads x head dim", m->q_dim, 1, MAX_DIM))) return st;
    m->qk_norm = m->arch == MODEL_ARCH_QWEN3;
    return COMI_OK;
}

static comi_status gguf_int(loader *L, const char *arch, const char *key, bool required,
                            int64_t def, int64_t *out) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (gguf_get_i64(L->m->gguf, full, out)) return COMI_OK;
    if (gguf_find_kv(L->m->gguf, full) || required)
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: metadata '%s' %s", L->path, full,
                            gguf_find_kv(L->m->gguf, full) ? "is not a valid integer"
                                                           : "is missing");
    *out = def;
    return COMI_OK;
}

static comi_status gguf_float(loader *L, const char *arch, const char *key, bool required,
                              float def, float *out) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (gguf_get_f32(L->m->gguf, full, out)) return COMI_OK;
    if (gguf_find_kv(L->m->gguf, full) || required)
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: metadata '%s' %s", L->path, full,
                            gguf_find_kv(L->m->gguf, full) ? "is not a float" : "is missing");
    *out = def;
    return COMI_OK;
}

static void add_eos(comi_model *m, int64_t id) {
    if (id < 0 || id >= m->n_vocab || m->n_eos >= MODEL_MAX_EOS) return;
    for (int32_t i = 0; i < m->n_eos; i++)
        if (m->eos_ids[i] == id) return;
    m->eos_ids[m->n_eos++] = (int32_t)id;
}

static comi_status hparams_gguf(loader *L) {
    comi_model *m = L->m;
    gguf_str a;
    if (!gguf_get_str(m->gguf, "general.architecture", &a))
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: metadata 'general.architecture' missing",
                            L->path);
    if (!arch_from_name(a.ptr, (size_t)a.len, &m->arch))
        return comi_err_set(L->e, COMI_ERR_UNSUPPORTED,
                            "%s: architecture '%.*s' is not supported (llama, qwen2, qwen3)",
                            L->path, (int)(a.len > 64 ? 64 : a.len), a.ptr);
    const char *an = arch_name(m->arch);
    comi_status st;
    int64_t key_len, val_len, rot;
    if ((st = gguf_int(L, an, "embedding_length", true, 0, &m->n_embd)) ||
        (st = gguf_int(L, an, "block_count", true, 0, &m->n_layer)) ||
        (st = gguf_int(L, an, "feed_forward_length", true, 0, &m->n_ff)) ||
        (st = gguf_int(L, an, "attention.head_count", true, 0, &m->n_head)) ||
        (st = gguf_int(L, an, "attention.head_count_kv", false, m->n_head, &m->n_head_kv)) ||
        (st = gguf_int(L, an, "context_length", false, 0, &m->n_ctx_train)) ||
        (st = gguf_float(L, an, "rope.freq_base", false, 10000.0f, &m->rope_theta)) ||
        (st = gguf_float(L, an, "attention.layer_norm_rms_epsilon", true, 0, &m->norm_eps)))
        return st;
    if (m->n_head < 1) return check_range(L, "attention.head_count", m->n_head, 1, 4096);
    if ((st = gguf_int(L, an, "attention.key_length", false, m->n_embd / m->n_head, &key_len)) ||
        (st = gguf_int(L, an, "attention.value_length", false, key_len, &val_len)) ||
        (st = gguf_int(L, an, "rope.dimension_count", false, key_len, &rot)))
        return st;
    if (val_len != key_len || rot != key_len)
        return comi_err_set(L->e, COMI_ERR_UNSUPPORTED,
                            "%s: value length %lld / rope dimension %lld differ from key length "
                            "%lld (not supported)",
                            L->path, (long long)val_len, (long long)rot, (long long)key_len);
    m->head_dim = key_len;
    gguf_str scal;
    char sk[96];
    snprintf(sk, sizeof sk, "%s.rope.scaling.type", an);
    if (gguf_get_str(m->gguf, sk, &scal) && !(scal.len == 4 && !memcmp(scal.ptr, "none", 4)))
        return comi_err_set(L->e, COMI_ERR_UNSUPPORTED, "%s: %s '%.*s' is not supported", L->path,
                            sk, (int)(scal.len > 32 ? 32 : scal.len), scal.ptr);
    const comi_tensor *emb = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb)
        return comi_err_set(L->e, COMI_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'",
                            L->path);
    m->n_vocab = emb->ne[1];
    m->rope_mode = m->arch == MODEL_ARCH_LLAMA ? OPS_ROPE_NORMAL : OPS_ROPE_NEOX;
    int64_t id;
    m->bos_id =
        gguf_get_i64(m->gguf, "tokenizer.ggml.bos_token_id", &id) && id >= 0 && id < m->n_vocab
            ? (int32_t)id
            : -1;
    if (gguf_get_i64(m->gguf, "tokenizer.ggml.eos_token_id", &id)) add_eos(m, id);
    if (gguf_get_i64(m->gguf, "tokenizer.ggml.eot_token_id", &id)) add_eos(m, id);
    if (gguf_get_i64(m->gguf, "tokenizer.ggml.eom_token_id", &id)) add_eos(m, id);
    return check_hparams(L);
}

static comi_status hparams_hf(loader *L, const hf_config *c) {
    comi_model *m = L->m;
    if (!arch_from_name(c->model_type, strlen(c->model_type), &m->arch))
        return comi_err_set(L->e, COMI_ERR_UNSUPPORTED,
                            "%s: model_type '%s' is not supported (llama, qwen2, qwen3)", L->path,
                            c->model_type);
    comi_status st = hf_config_check_rope(L->e, c, 0);
    if (st) return st;
    if (c->attention_bias && m->arch == MODEL_ARCH_LLAMA)
        return comi_err_set(L->e, COMI_ERR_UNSUPPORTED,
                            "%s: attention_bias = true (o_proj bias) is not supported", L->path);
    if (c->hidden_act[0] && strcmp(c->hidden_act, "silu") != 0)
        return comi_err_set(L->e, COMI_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported",
                            L->path, c->hidden_act);
    m->n_embd = c->hidden_size;
    m->n_layer = c->num_hidden_layers;
    m->n_ff = c->intermediate_size;
    m->n_head = c->num_attention_heads;
    m->n_head_kv = c->num_key_value_heads;
    m->head_dim = c->head_dim;
    m->n_vocab = c->vocab_size;
    m->n_ctx_train = c->max_position_embeddings;
    m->rope_theta = (float)c->rope_theta;
    m->norm_eps = (float)c->rms_norm_eps;
    m->tied = c->tie_word_embeddings;
    /* HF keeps q/k rows in rotate_half order for every architecture. */
    m->rope_mode = OPS_ROPE_NEOX;
    m->bos_id =
        c->bos_token_id >= 0 && c->bos_token_id < c->vocab_size ? (int32_t)c->bos_token_id : -1;
    for (int32_t i = 0; i < c->n_eos; i++)
        add_eos(m, c->eos_token_ids[i]);
    return check_hparams(L);
}

/* ---- tensors ----------------------------------------------------------- */

static int64_t vector_floats(const comi_model *m) {
    int64_t per_layer = 2 * m->n_embd + m->q_dim + 2 * m->kv_dim; /* norms, optional biases */
    if (m->qk_norm) per_layer += 2 * m->head_dim;
    return per_layer * m->n_layer + m->n_embd;
}

static comi_status load_tensors(loader *L) {
    comi_model *m = L->m;
    bool g = m->gguf != NULL;
    comi_status st;
    m->vectors = comi_alloc_array(L->e, (size_t)vector_floats(m), sizeof(float), "norm vectors");
    m->layers = comi_calloc_array(L->e, (size_t)m->n_layer, sizeof *m->layers, "layers");
    if (!m->vectors || !m->layers) return L->e->status;
    L->vec_next = m->vectors;

    if ((st = get_matrix(L, g ? "token_embd.weight" : "model.embed_tokens.weight", m->n_embd,
                         m->n_vocab, &m->tok_embd)))
        return st;
    if ((st = get_vector(L, g ? "output_norm.weight" : "model.norm.weight", m->n_embd, false,
                         &m->output_norm)))
        return st;
    const char *out_name = g ? "output.weight" : "lm_head.weight";
    if (g) m->tied = find_tensor(L, out_name) == NULL;
    if (m->tied) {
        m->output = m->tok_embd;
    } else if ((st = get_matrix(L, out_name, m->n_embd, m->n_vocab, &m->output))) {
        return st;
    }

    for (int64_t il = 0; il < m->n_layer; il++) {
        model_layer *ly = &m->layers[il];
        char n[160];
#define NAME(gg, hf)                                                                               \
    (snprintf(n, sizeof n, g ? "blk.%lld." gg : "model.layers.%lld." hf, (long long)il), n)
        if ((st = get_vector(L, NAME("attn_norm.weight", "input_layernorm.weight"), m->n_embd,
                             false, &ly->attn_norm)) ||
            (st = get_matrix(L, NAME("attn_q.weight", "self_attn.q_proj.weight"), m->n_embd,
                             m->q_dim, &ly->wq)) ||
            (st = get_matrix(L, NAME("attn_k.weight", "self_attn.k_proj.weight"), m->n_embd,
                             m->kv_dim, &ly->wk)) ||
            (st = get_matrix(L, NAME("attn_v.weight", "self_attn.v_proj.weight"), m->n_embd,
                             m->kv_dim, &ly->wv)) ||
            (st = get_matrix(L, NAME("attn_output.weight", "self_attn.o_proj.weight"), m->q_dim,
                             m->n_embd, &ly->wo)) ||
            (st = get_vector(L, NAME("ffn_norm.weight", "post_attention_layernorm.weight"),
                             m->n_embd, false, &ly->ffn_norm)) ||
            (st = get_matrix(L, NAME("ffn_gate.weight", "mlp.gate_proj.weight"), m->n_embd, m->n_ff,
                             &ly->w_gate)) ||
            (st = get_matrix(L, NAME("ffn_up.weight", "mlp.up_proj.weight"), m->n_embd, m->n_ff,
                             &ly->w_up)) ||
            (st = get_matrix(L, NAME("ffn_down.weight", "mlp.down_proj.weight"), m->n_ff, m->n_embd,
                             &ly->w_down)))
            return st;
        /* q/k/v biases: required by qwen2, used by llama when present */
        bool opt = m->arch != MODEL_ARCH_QWEN2;
        if ((st = get_vector(L, NAME("attn_q.bias", "self_attn.q_proj.bias"), m->q_dim, opt,
                             &ly->bq)) ||
            (st = get_vector(L, NAME("attn_k.bias", "self_attn.k_proj.bias"), m->kv_dim, opt,
                             &ly->bk)) ||
            (st = get_vector(L, NAME("attn_v.bias", "self_attn.v_proj.bias"), m->kv_dim, opt,
                             &ly->bv)))
            return st;
        if ((ly->bq != NULL) != (ly->bk != NULL) || (ly->bq != NULL) != (ly->bv != NULL))
            return comi_err_set(L->e, COMI_ERR_FORMAT,
                                "%s: layer %lld has only some of the q/k/v biases", L->path,
                                (long long)il);
        if (ly->bq) m->qkv_bias = true;
        if (m->qk_norm &&
            ((st = get_vector(L, NAME("attn_q_norm.weight", "self_attn.q_norm.weight"), m->head_dim,
                              false, &ly->q_norm)) ||
             (st = get_vector(L, NAME("attn_k_norm.weight", "self_attn.k_norm.weight"), m->head_dim,
                              false, &ly->k_norm))))
            return st;
#undef NAME
    }
    /* the weight type: the one holding the most matrix bytes */
    uint64_t best = 0;
    for (int t = 0; t < COMI_TYPE_COUNT; t++)
        if (L->bytes_by_type[t] > best) {
            best = L->bytes_by_type[t];
            m->weight_type = (comi_type)t;
        }
    return COMI_OK;
}

/* ---- public ------------------------------------------------------------ */

comi_model_params comi_model_default_params(void) {
    comi_model_params p = {.lora_path = NULL, .lora_prefix = NULL, .lora_scale = 0};
    return p;
}

void comi_model_free(comi_model *m) {
    if (!m) return;
    gguf_close(m->gguf);
    st_close(m->st);
    free(m->layers);
    free(m->vectors);
    free(m->lora_data);
    tok_free(m->tok);
    free(m);
}

static bool file_exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode);
}

/* The tokenizer shipped with the weights (GGUF tokenizer.ggml.* metadata,
 * or tokenizer.json in an HF directory), when there is one. A tokenizer
 * that is present but cannot be loaded fails the model load: silently
 * dropping it would only move the error to the first tokenize call. Its
 * BOS/EOS ids complete those the model metadata lacks. */
static comi_status attach_tokenizer(loader *L) {
    comi_model *m = L->m;
    comi_status st = COMI_OK;
    if (m->gguf) {
        if (!gguf_find_kv(m->gguf, "tokenizer.ggml.model")) return COMI_OK;
        st = tok_load_gguf(L->e, m->gguf, &m->tok);
    } else {
        char p[4096];
        snprintf(p, sizeof p, "%s/tokenizer.json", L->path);
        if (!file_exists(p)) return COMI_OK;
        st = tok_load_hf_dir(L->e, L->path, &m->tok);
    }
    if (st) return st;
    if (tok_n_vocab(m->tok) > m->n_vocab)
        return comi_err_set(L->e, COMI_ERR_FORMAT,
                            "%s: the tokenizer has %d tokens, more than the model's %lld rows",
                            L->path, tok_n_vocab(m->tok), (long long)m->n_vocab);
    if (m->bos_id < 0 && tok_bos(m->tok) >= 0) m->bos_id = tok_bos(m->tok);
    add_eos(m, tok_eos(m->tok));
    add_eos(m, tok_eot(m->tok));
    return COMI_OK;
}

static bool is_dir(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 && S_ISDIR(s.st_mode);
}

comi_status comi_model_load(comi_ctx *ctx, const char *path, const comi_model_params *params,
                            comi_model **out) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    comi_model_params def = comi_model_default_params();
    if (!params) params = &def;
    if (!out || !path) return comi_err_set(e, COMI_ERR_INVALID_ARG, "model load: NULL argument");
    *out = NULL;
    comi_model *m = calloc(1, sizeof *m);
    if (!m) return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
    loader L = {.e = e, .m = m, .path = path};
    comi_status st;
    if (is_dir(path)) {
        hf_config cfg;
        st = hf_config_load(e, path, &cfg);
        if (!st) st = st_open_dir(e, path, &m->st);
        if (!st) st = hparams_hf(&L, &cfg);
    } else {
        m->from_gguf = true;
        st = gguf_open(e, path, &m->gguf);
        if (!st) st = hparams_gguf(&L);
    }
    if (!st) st = load_tensors(&L);
    if (!st) st = attach_tokenizer(&L);
    if (!st && params->lora_path) st = lora_load(e, m, params);
    if (st) {
        comi_model_free(m);
        return st;
    }
    *out = m;
    return COMI_OK;
}

comi_status model_load_custom(comi_err *e, const char *path, const hf_config *cfg,
                              model_lookup_fn lookup, void *ud, comi_model **out) {
    *out = NULL;
    comi_model *m = calloc(1, sizeof *m);
    if (!m) return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
    loader L = {.e = e, .m = m, .path = path, .lookup = lookup, .lookup_ud = ud};
    comi_status st = hparams_hf(&L, cfg);
    if (!st) st = load_tensors(&L);
    if (st) {
        comi_model_free(m);
        return st;
    }
    *out = m;
    return COMI_OK;
}

void comi_model_get_info(const comi_model *m, comi_model_info *o) {
    memset(o, 0, sizeof *o);
    o->arch = arch_name(m->arch);
    o->format = m->from_gguf ? "gguf" : "hf";
    o->n_embd = (int32_t)m->n_embd;
    o->n_layer = (int32_t)m->n_layer;
    o->n_head = (int32_t)m->n_head;
    o->n_head_kv = (int32_t)m->n_head_kv;
    o->head_dim = (int32_t)m->head_dim;
    o->n_ff = (int32_t)m->n_ff;
    o->n_vocab = (int32_t)m->n_vocab;
    o->n_ctx_train = (int32_t)(m->n_ctx_train > INT32_MAX ? INT32_MAX : m->n_ctx_train);
    o->rope_theta = m->rope_theta;
    o->norm_eps = m->norm_eps;
    o->tied_embeddings = m->tied;
    o->qkv_bias = m->qkv_bias;
    o->qk_norm = m->qk_norm;
    o->has_lora = m->has_lora;
    o->weight_type = quant_type_name(m->weight_type);
    o->embd_type = quant_type_name(m->tok_embd.type);
    o->n_params = m->n_params;
    o->weight_bytes = m->weight_bytes;
    o->bos_id = m->bos_id;
    o->eos_id = m->n_eos ? m->eos_ids[0] : -1;
}

const comi_tokenizer *comi_model_tokenizer(const comi_model *m) {
    return m ? m->tok : NULL;
}

bool comi_model_is_eos(const comi_model *m, int32_t id) {
    if (m->tok && id >= 0 && id < tok_n_vocab(m->tok) && tok_is_eog(m->tok, id)) return true;
    for (int32_t i = 0; i < m->n_eos; i++)
        if (m->eos_ids[i] == id) return true;
    return false;
}

comi_status comi_model_embed(comi_ctx *ctx, const comi_model *m, const int32_t *ids, int64_t n,
                             float *out) {
    comi_err_clear(&ctx->err);
    if (n < 0 || (n > 0 && (!ids || !out)))
        return comi_err_set(&ctx->err, COMI_ERR_INVALID_ARG, "embed: bad arguments (n = %lld)",
                            (long long)n);
    size_t rb;
    if (!quant_row_bytes(m->tok_embd.type, m->n_embd, &rb))
        return comi_err_set(&ctx->err, COMI_ERR_INTERNAL, "embed: bad embedding row size");
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->n_vocab)
            return comi_err_set(&ctx->err, COMI_ERR_INVALID_ARG,
                                "token id %d at position %lld is outside the vocabulary [0, %lld)",
                                ids[i], (long long)i, (long long)m->n_vocab);
        quant_dequant_row(m->tok_embd.type, (const uint8_t *)m->tok_embd.data + (size_t)ids[i] * rb,
                          out + i * m->n_embd, m->n_embd);
    }
    return COMI_OK;
}

int64_t comi_model_n_tensors(const comi_model *m) {
    return m->gguf ? gguf_n_tensors(m->gguf) : m->st ? st_n_tensors(m->st) : 0;
}

bool comi_model_tensor_info(const comi_model *m, int64_t i, comi_tensor_info *out) {
    const comi_tensor *t = m->gguf ? gguf_tensor_at(m->gguf, i)
                           : m->st ? st_tensor_at(m->st, i)
                                   : NULL;
    if (i < 0 || i >= comi_model_n_tensors(m) || !t) return false;
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->type = quant_type_name(t->type);
    if (!out->type) out->type = m->st ? st_tensor_dtype(m->st, i) : "?";
    out->n_dims = t->n_dims;
    for (int32_t d = 0; d < t->n_dims && d < 4; d++)
        out->shape[d] = t->ne[t->n_dims - 1 - d];
    out->nbytes = t->nbytes;
    return true;
}
