/*
 * hfconfig.c — model-loading stage: reads a Hugging Face config.json into
 * hf_config. Field names, defaults and the head_dim / kv-head rules mirror
 * transformers' LlamaConfig, Qwen2Config and Qwen3Config.
 */
#include "formats/hfconfig.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Sizes above this are rejected so downstream products of two sizes stay
 * far from overflow. */
#define HF_MAX_DIM ((int64_t)INT32_MAX)

/* A JSON value absent or null counts as "not given". */
static const json_t *get_field(const json_t *root, const char *key) {
    const json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

/* Looks key up into *v (NULL: not given); absence is an error only when
 * required. */
static comi_status get_present(comi_err *e, const char *name, const json_t *root, const char *key,
                               bool required, const json_t **v) {
    *v = get_field(root, key);
    if (!*v && required)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: required field '%s' is missing", name, key);
    return COMI_OK;
}

/* Positive integer field in [1, HF_MAX_DIM]; `required` decides whether
 * absence is an error (then *out keeps its default). */
static comi_status get_dim(comi_err *e, const char *name, const json_t *root, const char *key,
                           bool required, int64_t *out) {
    const json_t *v;
    comi_status st = get_present(e, name, root, key, required, &v);
    if (st != COMI_OK || !v) return st;
    if (!json_is_integer(v))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field '%s' must be an integer", name, key);
    json_int_t x = json_integer_value(v);
    if (x < 1 || x > HF_MAX_DIM)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field '%s' = %lld is out of range [1, %lld]",
                            name, key, (long long)x, (long long)HF_MAX_DIM);
    *out = (int64_t)x;
    return COMI_OK;
}

static comi_status get_number(comi_err *e, const char *name, const json_t *root, const char *key,
                              bool required, double *out) {
    const json_t *v;
    comi_status st = get_present(e, name, root, key, required, &v);
    if (st != COMI_OK || !v) return st;
    if (!json_is_number(v))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field '%s' must be a number", name, key);
    double x = json_number_value(v);
    if (!(x > 0) || !isfinite(x))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field '%s' = %g must be positive", name, key,
                            x);
    *out = x;
    return COMI_OK;
}

static comi_status get_bool(comi_err *e, const char *name, const json_t *root, const char *key,
                            bool *out) {
    const json_t *v = get_field(root, key);
    if (!v) return COMI_OK;
    if (!json_is_boolean(v))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field '%s' must be true or false", name, key);
    *out = json_is_true(v);
    return COMI_OK;
}

/* Copies a string field into buf (cap bytes); too long is an error so a
 * truncated name can never be mistaken for a different valid one. */
static comi_status get_string(comi_err *e, const char *name, const json_t *v, const char *key,
                              char *buf, size_t cap) {
    if (!v) return COMI_OK;
    if (!json_is_string(v))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field '%s' must be a string", name, key);
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (n >= cap)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field '%s' is too long (%zu bytes, max %zu)",
                            name, key, n, cap - 1);
    memcpy(buf, s, n + 1);
    return COMI_OK;
}

static comi_status get_token_id(comi_err *e, const char *name, const json_t *v, const char *key,
                                int64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)INT32_MAX)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field '%s' must be a non-negative token id",
                            name, key);
    *out = (int64_t)json_integer_value(v);
    return COMI_OK;
}

static comi_status parse_rope_scaling(comi_err *e, const char *name, const json_t *v,
                                      hf_rope_scaling *rs) {
    rs->kind = HF_ROPE_NONE;
    rs->factor = 1.0;
    rs->low_freq_factor = 1.0;
    rs->high_freq_factor = 4.0;
    if (!v) return COMI_OK;
    if (!json_is_object(v))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: field 'rope_scaling' must be an object or null", name);
    const json_t *t = get_field(v, "rope_type");
    const char *tkey = "rope_scaling.rope_type";
    if (!t) {
        t = get_field(v, "type");
        tkey = "rope_scaling.type";
    }
    if (!t)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: rope_scaling has no 'type' or 'rope_type'",
                            name);
    comi_status st = get_string(e, name, t, tkey, rs->type, sizeof rs->type);
    if (st != COMI_OK) return st;
    static const struct {
        const char *s;
        hf_rope_kind k;
    } kinds[] = {{"default", HF_ROPE_NONE},    {"linear", HF_ROPE_LINEAR},
                 {"dynamic", HF_ROPE_DYNAMIC}, {"yarn", HF_ROPE_YARN},
                 {"llama3", HF_ROPE_LLAMA3},   {"longrope", HF_ROPE_LONGROPE},
                 {"su", HF_ROPE_LONGROPE}};
    rs->kind = HF_ROPE_OTHER;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(rs->type, kinds[i].s) == 0) rs->kind = kinds[i].k;
    if ((st = get_number(e, name, v, "factor", false, &rs->factor)) != COMI_OK) return st;
    if ((st = get_number(e, name, v, "low_freq_factor", false, &rs->low_freq_factor)) != COMI_OK)
        return st;
    if ((st = get_number(e, name, v, "high_freq_factor", false, &rs->high_freq_factor)) != COMI_OK)
        return st;
    return get_dim(e, name, v, "original_max_position_embeddings", false,
                   &rs->original_max_position_embeddings);
}

static comi_status parse_root(comi_err *e, const char *name, const json_t *root, hf_config *c) {
    comi_status st;
    const json_t *mt = get_field(root, "model_type");
    if (!mt)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: required field 'model_type' is missing", name);
    if ((st = get_string(e, name, mt, "model_type", c->model_type, sizeof c->model_type)))
        return st;

    const json_t *arch = get_field(root, "architectures");
    if (arch) {
        if (!json_is_array(arch))
            return comi_err_set(e, COMI_ERR_FORMAT, "%s: field 'architectures' must be a list",
                                name);
        if (json_array_size(arch) > 0 &&
            (st = get_string(e, name, json_array_get(arch, 0), "architectures[0]", c->architecture,
                             sizeof c->architecture)))
            return st;
    }
    const json_t *dt = get_field(root, "torch_dtype");
    const char *dkey = "torch_dtype";
    if (!dt) {
        dt = get_field(root, "dtype");
        dkey = "dtype";
    }
    if ((st = get_string(e, name, dt, dkey, c->torch_dtype, sizeof c->torch_dtype))) return st;
    if ((st = get_string(e, name, get_field(root, "hidden_act"), "hidden_act", c->hidden_act,
                         sizeof c->hidden_act)))
        return st;

    if ((st = get_dim(e, name, root, "hidden_size", true, &c->hidden_size))) return st;
    if ((st = get_dim(e, name, root, "intermediate_size", true, &c->intermediate_size))) return st;
    if ((st = get_dim(e, name, root, "num_hidden_layers", true, &c->num_hidden_layers))) return st;
    if ((st = get_dim(e, name, root, "num_attention_heads", true, &c->num_attention_heads)))
        return st;
    if ((st = get_dim(e, name, root, "vocab_size", true, &c->vocab_size))) return st;
    c->num_key_value_heads = c->num_attention_heads;
    if ((st = get_dim(e, name, root, "num_key_value_heads", false, &c->num_key_value_heads)))
        return st;
    c->head_dim = 0;
    if ((st = get_dim(e, name, root, "head_dim", false, &c->head_dim))) return st;
    if ((st =
             get_dim(e, name, root, "max_position_embeddings", false, &c->max_position_embeddings)))
        return st;
    if ((st = get_number(e, name, root, "rms_norm_eps", true, &c->rms_norm_eps))) return st;

    c->rope_theta = 10000.0;
    const json_t *rp = get_field(root, "rope_parameters");
    if (get_field(root, "rope_theta")) {
        if ((st = get_number(e, name, root, "rope_theta", false, &c->rope_theta))) return st;
    } else if (json_is_object(rp)) {
        if ((st = get_number(e, name, rp, "rope_theta", false, &c->rope_theta))) return st;
    }
    if ((st = get_bool(e, name, root, "tie_word_embeddings", &c->tie_word_embeddings))) return st;
    if ((st = get_bool(e, name, root, "attention_bias", &c->attention_bias))) return st;

    const json_t *rs = get_field(root, "rope_scaling");
    if (!rs && json_is_object(rp) && get_field(rp, "rope_type")) rs = rp;
    if ((st = parse_rope_scaling(e, name, rs, &c->rope_scaling))) return st;

    c->bos_token_id = -1;
    const json_t *bos = get_field(root, "bos_token_id");
    if (json_is_array(bos)) {
        /* Some configs list several; the first is the one prepended. */
        if (json_array_size(bos) > 0 &&
            (st = get_token_id(e, name, json_array_get(bos, 0), "bos_token_id", &c->bos_token_id)))
            return st;
    } else if (bos && (st = get_token_id(e, name, bos, "bos_token_id", &c->bos_token_id))) {
        return st;
    }
    const json_t *eos = get_field(root, "eos_token_id");
    c->n_eos = 0;
    if (json_is_array(eos)) {
        size_t n = json_array_size(eos);
        if (n > HF_MAX_EOS)
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: field 'eos_token_id' lists %zu ids, max %d", name, n,
                                HF_MAX_EOS);
        for (size_t i = 0; i < n; i++)
            if ((st = get_token_id(e, name, json_array_get(eos, i), "eos_token_id",
                                   &c->eos_token_ids[c->n_eos++])))
                return st;
    } else if (eos) {
        if ((st = get_token_id(e, name, eos, "eos_token_id", &c->eos_token_ids[0]))) return st;
        c->n_eos = 1;
    }

    /* Consistency, as transformers' attention modules require it. */
    if (c->head_dim == 0) {
        if (c->hidden_size % c->num_attention_heads != 0)
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: hidden_size %lld is not a multiple of num_attention_heads "
                                "%lld and head_dim is not given",
                                name, (long long)c->hidden_size, (long long)c->num_attention_heads);
        c->head_dim = c->hidden_size / c->num_attention_heads;
    }
    if (c->num_attention_heads % c->num_key_value_heads != 0)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: num_attention_heads %lld is not a multiple of "
                            "num_key_value_heads %lld",
                            name, (long long)c->num_attention_heads,
                            (long long)c->num_key_value_heads);
    return COMI_OK;
}

comi_status hf_config_parse(comi_err *e, const char *name, const char *json, size_t len,
                            hf_config *out) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", name,
                            jerr.text, jerr.line, jerr.column);
    comi_status st;
    if (!json_is_object(root))
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: not a JSON object", name);
    else
        st = parse_root(e, name, root, out);
    json_decref(root);
    return st;
}

comi_status hf_config_load(comi_err *e, const char *path, hf_config *out) {
    memset(out, 0, sizeof *out);
    struct stat sb;
    char *file = NULL;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path) + sizeof "/config.json";
        file = comi_alloc_array(e, n, 1, "config path");
        if (!file) return e ? e->status : COMI_ERR_NOMEM;
        snprintf(file, n, "%s/config.json", path);
    }
    const char *p = file ? file : path;
    char *text = NULL;
    size_t len = 0;
    comi_status st = comi_read_file(e, p, &text, &len);
    if (st == COMI_OK) st = hf_config_parse(e, p, text, len, out);
    free(text);
    free(file);
    return st;
}

comi_status hf_config_check_rope(comi_err *e, const hf_config *c, unsigned supported) {
    hf_rope_kind k = c->rope_scaling.kind;
    if (k == HF_ROPE_NONE || (supported & (1u << k))) return COMI_OK;
    return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                        "config.json: rope_scaling type '%s' is not supported by this build",
                        c->rope_scaling.type);
}
