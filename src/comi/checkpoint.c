/*
 * checkpoint.c — COMI checkpoints (stage: the trained pipeline's weights).
 * Reads model.safetensors as the reference training saves the whole COMI
 * module's state dict (the authors' COMI class):
 *
 *   encoder.model.{embed_tokens,layers.N.*,norm}.weight, encoder.lm_head.weight
 *       the encoder, an AutoModelForCausalLM cut to encoder_layers layers
 *       (fully fine-tuned by default; PEFT-wrapped names when it has LoRA)
 *   decoder.base_model.model.model.layers.N.self_attn.q_proj.base_layer.weight
 *   decoder.base_model.model.model.layers.N.self_attn.q_proj.lora_A.default.weight
 *       the decoder wrapped by PEFT: base weights (base_layer. on the LoRA
 *       targets) and LoRA A/B on q/k/v/o, scale lora_alpha / r
 *   memory_fusion_layer.model.{embed_tokens,layers.N.*,norm}.weight, ...
 *       the fusion block(s): a CausalLM of num_mem_fusion_layers layers whose
 *       last hidden state (after the final norm) over the memory sequence is
 *       the decoder's memory input (absent when trained without it)
 *   semantic_alignment_layer.{weight,bias}
 *       nn.Linear(encoder width, decoder width), used only without fusion
 *       when the widths differ
 *   alpha_select, beta_select, alpha_merge, beta_merge   scalars
 *
 * Old checkpoints name the encoder icae.; the reference renames that prefix
 * to encoder., and so do we. Hyper-parameters come from the base model
 * (config.json, or a GGUF's metadata); every component's layer count is
 * counted from its keys. Every key must be used or explicitly known
 * (lm_head of a component whose output is not used, rotary inv_freq
 * buffers); anything else fails the load, named.
 */
#include "comi/checkpoint.h"

#include "formats/gguf.h"
#include "formats/hfconfig.h"
#include "runtime/model.h"
#include "formats/quant.h"
#include "formats/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CKPT_LORA_ALPHA_DEFAULT 32.0f

typedef struct ckpt {
    comi_err *e;
    st_model *st;
    char file[4096];
    const char *prefix;           /* component being looked up */
    const comi_tensor **used;     /* tensors a lookup handed out */
    size_t n_used, cap;
} ckpt;

static void mark_used(ckpt *c, const comi_tensor *t) {
    if (c->n_used == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        const comi_tensor **u = realloc(c->used, cap * sizeof *u);
        if (!u) return; /* accounting then reports the key as unknown: fails loudly */
        c->used = u;
        c->cap = cap;
    }
    c->used[c->n_used++] = t;
}

static bool was_used(const ckpt *c, const comi_tensor *t) {
    for (size_t i = 0; i < c->n_used; i++)
        if (c->used[i] == t) return true;
    return false;
}

/* Resolves a Hugging Face name inside the current component: plain
 * (prefix + name), PEFT-wrapped (prefix + base_model.model. + name), and
 * on a LoRA target (... .base_layer.weight / .base_layer.bias). */
static const comi_tensor *ck_lookup(void *ud, const char *name) {
    ckpt *c = ud;
    char buf[1024];
    const comi_tensor *t;
    snprintf(buf, sizeof buf, "%s%s", c->prefix, name);
    if ((t = st_find_tensor(c->st, buf))) goto found;
    snprintf(buf, sizeof buf, "%sbase_model.model.%s", c->prefix, name);
    if ((t = st_find_tensor(c->st, buf))) goto found;
    const char *dot = strrchr(name, '.');
    if (dot) {
        snprintf(buf, sizeof buf, "%sbase_model.model.%.*s.base_layer%s", c->prefix,
                 (int)(dot - name), name, dot);
        if ((t = st_find_tensor(c->st, buf))) goto found;
    }
    /* the fusion block never reads its embeddings: a checkpoint of trained
     * tensors only leaves them out, the encoder's (same shape) stand in */
    if (!strcmp(c->prefix, "memory_fusion_layer.") && !strcmp(name, "model.embed_tokens.weight")) {
        if ((t = st_find_tensor(c->st, "encoder.model.embed_tokens.weight"))) goto found;
        if ((t = st_find_tensor(c->st, "icae.model.embed_tokens.weight"))) goto found;
    }
    return NULL;
found:
    mark_used(c, t);
    return t;
}

static bool has_prefix(const char *s, const char *p) {
    return strncmp(s, p, strlen(p)) == 0;
}

/* Does every key under prefix name a LoRA tensor? */
static bool comp_lora_only(const ckpt *c, const char *prefix) {
    for (int64_t i = 0; i < st_n_tensors(c->st); i++) {
        const char *n = st_tensor_at(c->st, i)->name;
        if (has_prefix(n, prefix) && !strstr(n, ".lora_A.") && !strstr(n, ".lora_B.")) return false;
    }
    return true;
}

/* Layers of a component: 1 + the largest N in "<prefix>...layers.N." (0
 * when it has no layer keys); *n_keys counts its keys, *lora_r is the rank
 * of its first lora_A (0 when none). */
static int64_t comp_scan(const ckpt *c, const char *prefix, int64_t *n_keys, int64_t *lora_r) {
    int64_t n = 0;
    *n_keys = 0;
    *lora_r = 0;
    for (int64_t i = 0; i < st_n_tensors(c->st); i++) {
        const comi_tensor *t = st_tensor_at(c->st, i);
        if (!has_prefix(t->name, prefix)) continue;
        (*n_keys)++;
        if (!*lora_r && strstr(t->name, ".lora_A.") && t->n_dims == 2) *lora_r = t->ne[1];
        const char *p = strstr(t->name + strlen(prefix), "layers.");
        if (!p) continue;
        char *end;
        long long l = strtoll(p + 7, &end, 10);
        if (end != p + 7 && *end == '.' && l >= 0 && l < 1000000 && l + 1 > n) n = l + 1;
    }
    return n;
}

/* The base model's hyper-parameters as a config.json would give them. */
static comi_status base_config(comi_err *e, comi_ctx *ctx, const char *base, hf_config *cfg) {
    struct stat sb;
    if (stat(base, &sb) != 0) return comi_err_set(e, COMI_ERR_IO, "%s: base model not found", base);
    if (S_ISDIR(sb.st_mode)) return hf_config_load(e, base, cfg);
    comi_model *m = NULL;
    comi_status st = comi_model_load(ctx, base, NULL, &m);
    if (st) return st;
    comi_model_info mi;
    comi_model_get_info(m, &mi);
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", mi.arch);
    snprintf(cfg->hidden_act, sizeof cfg->hidden_act, "silu");
    cfg->hidden_size = mi.n_embd;
    cfg->intermediate_size = mi.n_ff;
    cfg->num_hidden_layers = mi.n_layer;
    cfg->num_attention_heads = mi.n_head;
    cfg->num_key_value_heads = mi.n_head_kv;
    cfg->head_dim = mi.head_dim;
    cfg->vocab_size = mi.n_vocab;
    cfg->max_position_embeddings = mi.n_ctx_train;
    cfg->rms_norm_eps = mi.norm_eps;
    cfg->rope_theta = mi.rope_theta;
    cfg->tie_word_embeddings = mi.tied_embeddings;
    cfg->bos_token_id = mi.bos_id;
    cfg->n_eos = 0;
    for (int32_t id = 0; id < mi.n_vocab && cfg->n_eos < HF_MAX_EOS; id++)
        if (comi_model_is_eos(m, id)) cfg->eos_token_ids[cfg->n_eos++] = id;
    comi_model_free(m);
    return COMI_OK;
}

static comi_status read_scalar(ckpt *c, const char *name, float *out) {
    const comi_tensor *t = st_find_tensor(c->st, name);
    if (!t)
        return comi_err_set(c->e, COMI_ERR_FORMAT, "%s: missing key '%s' (a COMI checkpoint holds "
                                                   "alpha_select, beta_select, alpha_merge, beta_merge)",
                            c->file, name);
    if (t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3] != 1 ||
        (t->type != COMI_TYPE_F32 && t->type != COMI_TYPE_F16 && t->type != COMI_TYPE_BF16))
        return comi_err_set(c->e, COMI_ERR_FORMAT, "%s: '%s' must be one F32/F16/BF16 number",
                            c->file, name);
    quant_dequant_row(t->type, t->data, out, 1);
    mark_used(c, t);
    return COMI_OK;
}

/* lora_alpha from adapter_config.json in dir, if there is one. */
static bool adapter_alpha(const char *dir, float *alpha) {
    char p[4200];
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    if (!root) return false;
    json_t *a = json_object_get(root, "lora_alpha");
    bool ok = json_is_number(a) && json_number_value(a) > 0;
    if (ok) *alpha = (float)json_number_value(a);
    json_decref(root);
    return ok;
}

/* Builds one component (prefix) with n_layer layers from the checkpoint;
 * LoRA tensors under the prefix are applied with scale alpha / r. */
static comi_status load_comp(ckpt *c, comi_pipeline *pl, const hf_config *base, const char *prefix,
                             int64_t n_layer, bool output_used, int64_t lora_r, float alpha,
                             comi_model **out) {
    hf_config cfg = *base;
    cfg.num_hidden_layers = n_layer;
    c->prefix = prefix;
    /* a component whose logits are never used may come without lm_head */
    if (!output_used && !ck_lookup(c, "lm_head.weight")) cfg.tie_word_embeddings = true;
    char where[4200];
    snprintf(where, sizeof where, "%s (%s)", c->file, prefix);
    comi_status st = model_load_custom(c->e, where, &cfg, ck_lookup, c, out);
    if (st) return st;
    pl->owned[pl->n_owned++] = *out;
    if (lora_r > 0) {
        comi_model_params mp = comi_model_default_params();
        mp.lora_path = c->file;
        mp.lora_prefix = prefix;
        mp.lora_scale = alpha / (float)lora_r;
        if ((st = lora_load(c->e, *out, &mp))) return st;
        (*out)->has_lora = true;
    }
    return COMI_OK;
}

/* Every key must have been used or be known-unused. */
static comi_status account_keys(ckpt *c, const char *const *lora_prefixes, int n_lp,
                                bool dec_tied) {
    int64_t n_bad = 0;
    const char *first = NULL;
    for (int64_t i = 0; i < st_n_tensors(c->st); i++) {
        const comi_tensor *t = st_tensor_at(c->st, i);
        if (was_used(c, t)) continue;
        const char *n = t->name;
        size_t len = strlen(n);
        bool known = len >= 19 && !strcmp(n + len - 19, "rotary_emb.inv_freq");
        for (int k = 0; !known && k < n_lp; k++)
            known = lora_prefixes[k] && has_prefix(n, lora_prefixes[k]) &&
                    (strstr(n, ".lora_A.") || strstr(n, ".lora_B."));
        /* lm_head of the encoder / fusion block: their logits are not used;
         * the decoder's when it ties its output to the embeddings */
        if (!known && strstr(n, "lm_head.") &&
            (has_prefix(n, "encoder.") || has_prefix(n, "icae.") ||
             has_prefix(n, "memory_fusion_layer.") || (dec_tied && has_prefix(n, "decoder."))))
            known = true;
        if (!known) {
            if (!first) first = n;
            n_bad++;
        }
    }
    if (n_bad)
        return comi_err_set(c->e, COMI_ERR_FORMAT,
                            "%s: unknown key '%s'%s (%lld unknown in all): not part of a COMI "
                            "checkpoint for this base model",
                            c->file, first, n_bad > 1 ? " and others" : "", (long long)n_bad);
    return COMI_OK;
}

static comi_status load_st(ckpt *c, comi_err *e, comi_ctx *ctx, comi_pipeline *pl,
                           const char *ckpt_path, const char *base_path, float lora_alpha) {
    struct stat sb;
    if (stat(ckpt_path, &sb) != 0)
        return comi_err_set(e, COMI_ERR_IO, "%s: checkpoint not found", ckpt_path);
    bool is_dir = S_ISDIR(sb.st_mode);
    if (is_dir) snprintf(c->file, sizeof c->file, "%s/model.safetensors", ckpt_path);
    else snprintf(c->file, sizeof c->file, "%s", ckpt_path);
    hf_config base;
    comi_status st = base_config(e, ctx, base_path, &base);
    if (st) return st;
    if ((st = st_open_dir(e, is_dir ? ckpt_path : c->file, &c->st))) return st;
    pl->ckpt = c->st;

    const char *enc_prefix = "encoder.";
    int64_t nk_enc, nk_dec, nk_fus, r_enc, r_dec, r_fus;
    int64_t l_enc = comp_scan(c, enc_prefix, &nk_enc, &r_enc);
    if (nk_enc == 0) {
        enc_prefix = "icae.";
        l_enc = comp_scan(c, enc_prefix, &nk_enc, &r_enc);
    }
    int64_t l_dec = comp_scan(c, "decoder.", &nk_dec, &r_dec);
    int64_t l_fus = comp_scan(c, "memory_fusion_layer.", &nk_fus, &r_fus);
    if (nk_enc == 0 || l_enc == 0)
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: no encoder. layer keys (not a COMI checkpoint?)",
                          c->file);
    else if (nk_dec == 0 || l_dec == 0)
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: no decoder. layer keys (not a COMI checkpoint?)",
                          c->file);
    else if (l_enc > base.num_hidden_layers || l_fus > base.num_hidden_layers)
        st = comi_err_set(e, COMI_ERR_FORMAT,
                          "%s: the %s has %lld layers, more than the base model's %lld", c->file,
                          l_enc > base.num_hidden_layers ? "encoder" : "fusion block",
                          (long long)(l_enc > base.num_hidden_layers ? l_enc : l_fus),
                          (long long)base.num_hidden_layers);
    else if (l_dec != base.num_hidden_layers)
        st = comi_err_set(e, COMI_ERR_FORMAT,
                          "%s: the decoder has %lld layers, the base model %s has %lld", c->file,
                          (long long)l_dec, base_path, (long long)base.num_hidden_layers);
    if (st) return st;

    float alpha = lora_alpha;
    const char *alpha_src = "given";
    if (!(alpha > 0)) {
        alpha = CKPT_LORA_ALPHA_DEFAULT;
        alpha_src = "reference default";
        if (is_dir && adapter_alpha(ckpt_path, &alpha)) alpha_src = "adapter_config.json";
    }
    comi_model *enc = NULL, *dec = NULL, *fus = NULL;
    /* a checkpoint of trained tensors only (comi train, golden/train/): the
     * decoder is the base model itself with the checkpoint's LoRA */
    bool dec_lora_only = r_dec > 0 && comp_lora_only(c, "decoder.");
    if (dec_lora_only) {
        comi_model_params mp = comi_model_default_params();
        mp.lora_path = c->file;
        mp.lora_prefix = "decoder.";
        mp.lora_scale = alpha / (float)r_dec;
        if ((st = comi_model_load(ctx, base_path, &mp, &dec))) {
            comi_err_set(e, st, "%s", comi_errmsg(ctx));
            return st;
        }
        pl->owned[pl->n_owned++] = dec;
    }
    if ((st = load_comp(c, pl, &base, enc_prefix, l_enc, false, r_enc, alpha, &enc)) ||
        (!dec_lora_only &&
         (st = load_comp(c, pl, &base, "decoder.", l_dec, true, r_dec, alpha, &dec))) ||
        (l_fus > 0 &&
         (st = load_comp(c, pl, &base, "memory_fusion_layer.", l_fus, false, r_fus, alpha, &fus))))
        return st;
    if (nk_fus > 0 && l_fus == 0)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: memory_fusion_layer. keys but no layers",
                            c->file);

    float *w[4] = {&pl->merge_default.alpha_select, &pl->merge_default.beta_select,
                   &pl->merge_default.alpha_merge, &pl->merge_default.beta_merge};
    static const char *const wn[4] = {"alpha_select", "beta_select", "alpha_merge", "beta_merge"};
    for (int i = 0; i < 4; i++)
        if ((st = read_scalar(c, wn[i], w[i]))) return st;

    /* semantic_alignment_layer: nn.Linear(d_enc, d_dec) */
    const comi_tensor *aw = st_find_tensor(c->st, "semantic_alignment_layer.weight");
    const comi_tensor *ab = st_find_tensor(c->st, "semantic_alignment_layer.bias");
    const int64_t de = enc->n_embd, dd = dec->n_embd;
    if (aw || ab) {
        if (!aw || !ab)
            return comi_err_set(e, COMI_ERR_FORMAT, "%s: semantic_alignment_layer has only its %s",
                                c->file, aw ? "weight" : "bias");
        if (aw->n_dims != 2 || aw->ne[0] != de || aw->ne[1] != dd || ab->n_dims != 1 ||
            ab->ne[0] != dd)
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: semantic_alignment_layer.weight is [%lld, %lld] and bias [%lld], "
                                "expected [%lld, %lld] and [%lld]",
                                c->file, (long long)aw->ne[1], (long long)aw->ne[0],
                                (long long)ab->ne[0], (long long)dd, (long long)de, (long long)dd);
        if ((aw->type != COMI_TYPE_F32 && aw->type != COMI_TYPE_F16 && aw->type != COMI_TYPE_BF16) ||
            (ab->type != COMI_TYPE_F32 && ab->type != COMI_TYPE_F16 && ab->type != COMI_TYPE_BF16))
            return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                                "%s: semantic_alignment_layer must be F32, F16 or BF16", c->file);
        pl->align_w = comi_alloc_array(e, (size_t)dd, (size_t)de * sizeof(float), "alignment");
        pl->align_b = comi_alloc_array(e, (size_t)dd, sizeof(float), "alignment bias");
        if (!pl->align_w || !pl->align_b) return e->status;
        size_t rb;
        quant_row_bytes(aw->type, de, &rb);
        for (int64_t o = 0; o < dd; o++)
            quant_dequant_row(aw->type, (const uint8_t *)aw->data + (size_t)o * rb,
                              pl->align_w + o * de, de);
        quant_dequant_row(ab->type, ab->data, pl->align_b, dd);
        mark_used(c, aw);
        mark_used(c, ab);
    }
    if (!fus && de != dd && !pl->align_w)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: encoder width %lld != decoder width %lld and the checkpoint has "
                            "neither memory_fusion_layer nor semantic_alignment_layer",
                            c->file, (long long)de, (long long)dd);
    const char *lp[3] = {r_enc ? enc_prefix : NULL, r_dec ? "decoder." : NULL,
                         r_fus ? "memory_fusion_layer." : NULL};
    st = account_keys(c, lp, 3, dec->tied);
    if (st) return st;

    pl->enc = enc;
    pl->dec = dec;
    pl->fusion = fus;
    pl->decoder_lora = r_dec > 0;
    pl->enc_layers_default = (int32_t)l_enc;
    char lora[160] = "no LoRA";
    if (r_dec || r_enc || r_fus)
        snprintf(lora, sizeof lora, "LoRA r %lld, alpha %g (%s)",
                 (long long)(r_dec ? r_dec : r_enc ? r_enc : r_fus), (double)alpha, alpha_src);
    snprintf(pl->desc, sizeof pl->desc,
             "COMI checkpoint %s on %s: encoder %lld layers, decoder %lld layers, %s, fusion %lld "
             "layer(s)%s; alpha/beta select %g/%g merge %g/%g",
             ckpt_path, base_path, (long long)l_enc, (long long)l_dec, lora, (long long)l_fus,
             pl->align_w ? (fus || de == dd ? ", alignment layer (unused)" : ", alignment layer")
                         : "",
             (double)pl->merge_default.alpha_select, (double)pl->merge_default.beta_select,
             (double)pl->merge_default.alpha_merge, (double)pl->merge_default.beta_merge);
    return COMI_OK;
}

static comi_status load_gguf_ckpt(comi_err *e, comi_ctx *ctx, comi_pipeline *pl,
                                  const char *prefix, const char *base_path);
static bool file_exists(const char *p);

comi_status ckpt_load(comi_err *e, comi_ctx *ctx, comi_pipeline *pl, const char *ckpt_path,
                      const char *base_path, float lora_alpha) {
    char meta[4200];
    snprintf(meta, sizeof meta, "%s.comi.gguf", ckpt_path);
    if (file_exists(meta)) return load_gguf_ckpt(e, ctx, pl, ckpt_path, base_path);
    ckpt c = {.e = e};
    comi_status st = load_st(&c, e, ctx, pl, ckpt_path, base_path, lora_alpha);
    free(c.used);
    return st;
}

/* ---- converted checkpoints (GGUF) -------------------------------------- */

/* Layout written by comi_checkpoint_convert and read back below:
 *   PREFIX.encoder.gguf  the encoder (its own layer count), llama.cpp names
 *   PREFIX.decoder.gguf  the decoder, LoRA merged into q/k/v/o
 *   PREFIX.fusion.gguf   the fusion block(s), when the checkpoint has them
 *   PREFIX.comi.gguf     comi.format_version = 1, comi.encoder_layers,
 *                        comi.fusion_layers, comi.alpha_select, comi.beta_select,
 *                        comi.alpha_merge, comi.beta_merge (f32),
 *                        comi.source (string); tensors comi.alignment.weight
 *                        (ne = d_enc x d_dec, F32) and comi.alignment.bias
 * Model files carry the usual <arch>.* hyper-parameters and, when the base
 * model is a GGUF file, its tokenizer.* metadata; llama q/k rows are in
 * GGUF order (permuted from Hugging Face's, as convert_hf_to_gguf does). */

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static comi_status load_gguf_ckpt(comi_err *e, comi_ctx *ctx, comi_pipeline *pl,
                                  const char *prefix, const char *base_path) {
    char p[4200];
    snprintf(p, sizeof p, "%s.comi.gguf", prefix);
    gguf_file *meta = NULL;
    comi_status st = gguf_open(e, p, &meta);
    if (st) return st;
    int64_t ver = 0, kl = 0, fl = 0;
    float w[4];
    static const char *const wn[4] = {"comi.alpha_select", "comi.beta_select", "comi.alpha_merge",
                                      "comi.beta_merge"};
    if (!gguf_get_i64(meta, "comi.format_version", &ver) || ver != 1 ||
        !gguf_get_i64(meta, "comi.encoder_layers", &kl) ||
        !gguf_get_i64(meta, "comi.fusion_layers", &fl))
        st = comi_err_set(e, COMI_ERR_FORMAT,
                          "%s: not a comi convert file (comi.format_version 1, comi.encoder_layers, "
                          "comi.fusion_layers)",
                          p);
    for (int i = 0; !st && i < 4; i++)
        if (!gguf_get_f32(meta, wn[i], &w[i]))
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s: missing metadata '%s'", p, wn[i]);
    const char *names[3] = {"encoder", "decoder", "fusion"};
    comi_model *m[3] = {NULL, NULL, NULL};
    for (int i = 0; !st && i < (fl > 0 ? 3 : 2); i++) {
        char mp[4200];
        snprintf(mp, sizeof mp, "%s.%s.gguf", prefix, names[i]);
        if (!(st = comi_model_load(ctx, mp, NULL, &m[i]))) pl->owned[pl->n_owned++] = m[i];
    }
    if (!st && (m[0]->n_layer != kl || (m[2] && m[2]->n_layer != fl)))
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: layer counts disagree with %s.*.gguf", p, prefix);
    hf_config base;
    if (!st) st = base_config(e, ctx, base_path, &base);
    if (!st && (base.hidden_size != m[1]->n_embd || base.vocab_size != m[1]->n_vocab))
        st = comi_err_set(e, COMI_ERR_FORMAT,
                          "%s.decoder.gguf: hidden size %lld / vocabulary %lld, the base model %s "
                          "has %lld / %lld",
                          prefix, (long long)m[1]->n_embd, (long long)m[1]->n_vocab, base_path,
                          (long long)base.hidden_size, (long long)base.vocab_size);
    const comi_tensor *aw = st ? NULL : gguf_find_tensor(meta, "comi.alignment.weight");
    const comi_tensor *ab = st ? NULL : gguf_find_tensor(meta, "comi.alignment.bias");
    if (!st && aw && ab) {
        int64_t de = m[0]->n_embd, dd = m[1]->n_embd;
        if (aw->type != COMI_TYPE_F32 || ab->type != COMI_TYPE_F32 || aw->ne[0] != de ||
            aw->ne[1] != dd || ab->ne[0] != dd) {
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s: comi.alignment tensors have the wrong shape "
                                                  "or type",
                              p);
        } else {
            pl->align_w = comi_alloc_array(e, (size_t)dd, (size_t)de * sizeof(float), "alignment");
            pl->align_b = comi_alloc_array(e, (size_t)dd, sizeof(float), "alignment bias");
            if (!pl->align_w || !pl->align_b) st = e->status;
            else {
                memcpy(pl->align_w, aw->data, (size_t)(dd * de) * sizeof(float));
                memcpy(pl->align_b, ab->data, (size_t)dd * sizeof(float));
            }
        }
    }
    gguf_str src = {0};
    if (!st) gguf_get_str(meta, "comi.source", &src);
    if (!st) {
        pl->enc = m[0];
        pl->dec = m[1];
        pl->fusion = m[2];
        pl->enc_layers_default = (int32_t)kl;
        pl->merge_default.alpha_select = w[0];
        pl->merge_default.beta_select = w[1];
        pl->merge_default.alpha_merge = w[2];
        pl->merge_default.beta_merge = w[3];
        comi_model_info mi;
        comi_model_get_info(m[1], &mi);
        snprintf(pl->desc, sizeof pl->desc,
                 "converted COMI checkpoint %s (%s, from %.*s): encoder %lld layers, decoder %d "
                 "layers (LoRA merged), fusion %lld layer(s); alpha/beta select %g/%g merge %g/%g",
                 prefix, mi.weight_type ? mi.weight_type : "?", (int)(src.len > 200 ? 200 : src.len),
                 src.ptr ? src.ptr : "", (long long)kl, (int)mi.n_layer, (long long)fl, (double)w[0],
                 (double)w[1], (double)w[2], (double)w[3]);
    }
    gguf_close(meta);
    return st;
}
