/*
 * lora.c — LoRA adapters on the attention projections (stage: decoder LM of
 * the soft pipeline, COMI's fine-tuned decoder). Mirrors PEFT's LoraLayer
 * for nn.Linear: y = W x + (alpha / r) * B (A x), A: r x in, B: out x r,
 * read from a PEFT adapter (adapter_model.safetensors + adapter_config.json)
 * or any safetensors file with PEFT tensor names. The adapter is applied on
 * the fly (session.c), so quantized base weights are used unchanged; A and
 * B are converted to float32 with the scale folded into B.
 *
 * Row order: PEFT's B rows follow Hugging Face's q/k layout. A GGUF llama
 * model has its q/k rows permuted by the converter (rotate-half pairs made
 * adjacent), so B's q/k rows get the same permutation here.
 */
#include "runtime/model.h"

#include "formats/quant.h"
#include "formats/safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const proj_names[LORA_N] = {"q_proj", "k_proj", "v_proj", "o_proj"};

typedef struct lora_found {
    const comi_tensor *t[LORA_N][2]; /* [proj][A=0, B=1] */
} lora_found;

/* Parses "...layers.N.self_attn.P.lora_X[.adapter].weight". Returns false
 * when the name is not of that form. */
static bool parse_name(const char *name, int64_t *layer, int *proj, int *ab) {
    const char *p = strstr(name, "layers.");
    if (!p) return false;
    p += 7;
    char *end;
    long long l = strtoll(p, &end, 10);
    if (end == p || l < 0 || strncmp(end, ".self_attn.", 11) != 0) return false;
    p = end + 11;
    int k = 0;
    while (k < LORA_N && strncmp(p, proj_names[k], 6) != 0)
        k++;
    if (k == LORA_N) return false;
    p += 6;
    if (!strncmp(p, ".lora_A.", 8))
        *ab = 0;
    else if (!strncmp(p, ".lora_B.", 8))
        *ab = 1;
    else
        return false;
    p += 8;
    if (strcmp(p, "weight") != 0) {
        /* one adapter-name component, e.g. "default.weight" */
        const char *dot = strchr(p, '.');
        if (!dot || dot == p || strcmp(dot + 1, "weight") != 0) return false;
    }
    *layer = l;
    *proj = k;
    return true;
}

/* lora_alpha / r (or / sqrt(r) with use_rslora) from adapter_config.json. */
static comi_status read_scale(comi_err *e, const char *cfg_path, float *scale) {
    json_error_t je;
    json_t *root = json_load_file(cfg_path, 0, &je);
    if (!root)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: line %d: %s", cfg_path, je.line, je.text);
    json_t *r = json_object_get(root, "r"), *alpha = json_object_get(root, "lora_alpha");
    json_t *rs = json_object_get(root, "use_rslora");
    comi_status st = COMI_OK;
    if (!json_is_integer(r) || json_integer_value(r) < 1 || !json_is_number(alpha)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: needs integer 'r' >= 1 and numeric 'lora_alpha'",
                          cfg_path);
    } else {
        double rv = (double)json_integer_value(r);
        double a = json_number_value(alpha);
        *scale = (float)(a / (json_is_true(rs) ? sqrt(rv) : rv));
        if (!(*scale > 0) || !isfinite(*scale))
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s: scale lora_alpha / r = %g is not positive",
                              cfg_path, (double)*scale);
    }
    json_decref(root);
    return st;
}

static bool file_exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

comi_status lora_load(comi_err *e, comi_model *m, const comi_model_params *params) {
    const char *path = params->lora_path;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return comi_err_set(e, COMI_ERR_IO, "%s: LoRA adapter not found", path);
    char file[4096], cfg[4096];
    if (S_ISDIR(sb.st_mode)) {
        snprintf(file, sizeof file, "%s/adapter_model.safetensors", path);
        snprintf(cfg, sizeof cfg, "%s/adapter_config.json", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        const char *slash = strrchr(path, '/');
        int dl = slash ? (int)(slash - path) : 1;
        snprintf(cfg, sizeof cfg, "%.*s/adapter_config.json", dl, slash ? path : ".");
    }
    float scale = params->lora_scale;
    comi_status st;
    if (!(scale > 0)) {
        if (!file_exists(cfg))
            return comi_err_set(e, COMI_ERR_INVALID_ARG,
                                "%s: no LoRA scale given and no adapter_config.json beside it",
                                path);
        if ((st = read_scale(e, cfg, &scale))) return st;
    }
    st_model *st_m = NULL;
    if ((st = st_open_file(e, file, &st_m))) return st;

    lora_found *found = comi_calloc_array(e, (size_t)m->n_layer, sizeof *found, "LoRA index");
    if (!found) {
        st_close(st_m);
        return e->status;
    }
    const char *prefix = params->lora_prefix;
    size_t plen = prefix ? strlen(prefix) : 0;
    int64_t n_found = 0;
    for (int64_t i = 0; i < st_n_tensors(st_m) && !st; i++) {
        const comi_tensor *t = st_tensor_at(st_m, i);
        if (plen && strncmp(t->name, prefix, plen) != 0) continue;
        if (!strstr(t->name, "lora_")) continue; /* base weights, other modules */
        int64_t layer;
        int proj, ab;
        if (!parse_name(t->name, &layer, &proj, &ab)) {
            st = comi_err_set(e, COMI_ERR_UNSUPPORTED,
                              "%s: LoRA tensor '%s' is not on a q/k/v/o projection (only those "
                              "are supported)",
                              file, t->name);
        } else if (layer >= m->n_layer) {
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s: '%s': layer %lld >= the model's %lld", file,
                              t->name, (long long)layer, (long long)m->n_layer);
        } else if (found[layer].t[proj][ab]) {
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s: '%s' duplicates '%s'", file, t->name,
                              found[layer].t[proj][ab]->name);
        } else if (t->type != COMI_TYPE_F32 && t->type != COMI_TYPE_F16 &&
                   t->type != COMI_TYPE_BF16) {
            st = comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: '%s' must be F32, F16 or BF16", file,
                              t->name);
        } else {
            found[layer].t[proj][ab] = t;
            n_found++;
        }
    }
    /* shapes: A ne = (in, r), B ne = (r, out) */
    size_t total = 0;
    int64_t r_max = 0;
    for (int64_t l = 0; l < m->n_layer && !st; l++)
        for (int k = 0; k < LORA_N && !st; k++) {
            const comi_tensor *a = found[l].t[k][0], *b = found[l].t[k][1];
            if (!a && !b) continue;
            if (!a || !b) {
                st =
                    comi_err_set(e, COMI_ERR_FORMAT, "%s: layer %lld %s has lora_%s but no lora_%s",
                                 file, (long long)l, proj_names[k], a ? "A" : "B", a ? "B" : "A");
                break;
            }
            int64_t in = k == LORA_O ? m->q_dim : m->n_embd;
            int64_t out = k == LORA_Q ? m->q_dim : k == LORA_O ? m->n_embd : m->kv_dim;
            int64_t r = a->ne[1];
            if (a->n_dims != 2 || b->n_dims != 2 || a->ne[0] != in || b->ne[0] != r ||
                b->ne[1] != out || r < 1 || r > 65536) {
                st = comi_err_set(e, COMI_ERR_FORMAT,
                                  "%s: layer %lld %s: lora_A [%lld, %lld] / lora_B [%lld, %lld] do "
                                  "not fit [r, %lld] / [%lld, r]",
                                  file, (long long)l, proj_names[k], (long long)a->ne[1],
                                  (long long)a->ne[0], (long long)b->ne[1], (long long)b->ne[0],
                                  (long long)in, (long long)out);
                break;
            }
            total += (size_t)(r * (in + out));
            if (r > r_max) r_max = r;
        }
    if (!st && n_found == 0)
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: no LoRA tensors%s%s found", file,
                          prefix ? " with prefix " : "", prefix ? prefix : "");
    if (!st) m->lora_data = comi_alloc_array(e, total, sizeof(float), "LoRA weights");
    if (!st && !m->lora_data) st = e->status;
    float *next = m->lora_data;
    bool permute_qk = m->from_gguf && m->arch == MODEL_ARCH_LLAMA;
    for (int64_t l = 0; l < m->n_layer && !st; l++)
        for (int k = 0; k < LORA_N; k++) {
            const comi_tensor *a = found[l].t[k][0], *b = found[l].t[k][1];
            if (!a) continue;
            int64_t in = a->ne[0], r = a->ne[1], out = b->ne[1];
            size_t arb, brb;
            quant_row_bytes(a->type, in, &arb);
            quant_row_bytes(b->type, r, &brb);
            float *fa = next, *fb = next + r * in;
            next += r * (in + out);
            for (int64_t i = 0; i < r; i++)
                quant_dequant_row(a->type, (const uint8_t *)a->data + (size_t)i * arb, fa + i * in,
                                  in);
            for (int64_t o = 0; o < out; o++) {
                /* destination row: the GGUF converter's q/k permutation maps
                 * HF row (head h, i) to 2i for i < hd/2 and to 2(i - hd/2) + 1
                 * otherwise */
                int64_t dst = o;
                if (permute_qk && (k == LORA_Q || k == LORA_K)) {
                    int64_t hd = m->head_dim, h = o / hd, i = o % hd;
                    dst = h * hd + (i < hd / 2 ? 2 * i : 2 * (i - hd / 2) + 1);
                }
                float *row = fb + dst * r;
                quant_dequant_row(b->type, (const uint8_t *)b->data + (size_t)o * brb, row, r);
                for (int64_t j = 0; j < r; j++)
                    row[j] *= scale;
            }
            model_lora *lo = &m->layers[l].lora[k];
            lo->a = (comi_tensor){.name = a->name,
                                  .type = COMI_TYPE_F32,
                                  .n_dims = 2,
                                  .ne = {in, r, 1, 1},
                                  .data = fa,
                                  .nbytes = (size_t)(in * r) * sizeof(float)};
            lo->b = (comi_tensor){.name = b->name,
                                  .type = COMI_TYPE_F32,
                                  .n_dims = 2,
                                  .ne = {r, out, 1, 1},
                                  .data = fb,
                                  .nbytes = (size_t)(r * out) * sizeof(float)};
        }
    /* tensor names point into the safetensors file, which closes now */
    for (int64_t l = 0; l < m->n_layer; l++)
        for (int k = 0; k < LORA_N; k++) {
            m->layers[l].lora[k].a.name = "lora_A";
            m->layers[l].lora[k].b.name = "lora_B";
        }
    free(found);
    st_close(st_m);
    if (st) {
        free(m->lora_data);
        m->lora_data = NULL;
        for (int64_t l = 0; l < m->n_layer; l++)
            memset(m->layers[l].lora, 0, sizeof m->layers[l].lora);
        return st;
    }
    m->has_lora = true;
    m->lora_rank_max = r_max;
    return COMI_OK;
}
