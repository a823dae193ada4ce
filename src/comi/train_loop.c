/*
 * train_loop.c — comi_train: the Hugging Face Trainer's loop around the
 * module of train.c (stage: training). Data rows -> token ids, a seeded
 * order per epoch, gradient accumulation over batch_size examples, global
 * norm clipping, AdamW with the Trainer's schedules, a JSONL log,
 * checkpoints with optimiser state that a resumed run continues from bit
 * for bit, held-out evaluation losses, and a stop with the last good
 * checkpoint kept when a loss or gradient stops being finite.
 *
 * Checkpoint directory:
 *   model.safetensors      trained tensors + alpha/beta scalars (F32),
 *                          __metadata__ {"step": N}
 *   adapter_config.json    PEFT-style LoRA settings + COMI settings
 *   optimizer.safetensors  "m.<name>", "v.<name>" AdamW moments, same step
 *   trainer_state.json     step, settings; written last (the commit point)
 */
#include "comi/train.h"

#include "runtime/model.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

comi_train_params comi_train_default_params(void) {
    return (comi_train_params){.encoder_layers = 8,
                               .fusion_layers = 1,
                               .merge_size = 16,
                               .lora_r = 128,
                               .lora_alpha = 32.0f,
                               .lora_dropout = 0.05f,
                               .lr = 1e-5,
                               .cosine = true,
                               .warmup_ratio = 0.1,
                               .weight_decay = 0.01,
                               .max_grad_norm = 1.0,
                               .batch_size = 1,
                               .steps = 0,
                               .epochs = 1.0,
                               .shuffle = true,
                               .seed = 42,
                               .save_every = 100,
                               .eval_every = 0,
                               .eval_limit = 64};
}

/* ---- data ---------------------------------------------------------------- */

typedef struct tr_row {
    int32_t *ids; /* ctx, then question, then answer */
    int64_t n_ctx, n_q, n_ans;
    int64_t line;
} tr_row;

typedef struct tr_data {
    tr_row *rows;
    int64_t n, cap;
} tr_data;

static void data_free(tr_data *d) {
    for (int64_t i = 0; i < d->n; i++) free(d->rows[i].ids);
    free(d->rows);
    memset(d, 0, sizeof *d);
}

static tr_example row_example(const tr_row *r) {
    return (tr_example){.ctx = r->ids,
                        .q = r->ids + r->n_ctx,
                        .ans = r->ids + r->n_ctx + r->n_q,
                        .n_ctx = r->n_ctx,
                        .n_q = r->n_q,
                        .n_ans = r->n_ans};
}

/* ids of a JSON array of integers in [0, vocab). */
static comi_status json_id_list(comi_err *e, const char *file, int64_t line, const char *field,
                                json_t *a, int64_t vocab, int32_t **ids, size_t *n) {
    if (!json_is_array(a))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s:%lld: '%s' must be an array of token ids",
                            file, (long long)line, field);
    *n = json_array_size(a);
    *ids = malloc((*n ? *n : 1) * sizeof **ids);
    if (!*ids) return comi_err_set(e, COMI_ERR_NOMEM, "out of memory (token ids)");
    for (size_t i = 0; i < *n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= vocab)
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s:%lld: '%s'[%zu] is not a token id in [0, %lld)", file,
                                (long long)line, field, i, (long long)vocab);
        (*ids)[i] = (int32_t)json_integer_value(v);
    }
    return COMI_OK;
}

static comi_status tokenize_field(comi_err *e, comi_ctx *ctx, const comi_tokenizer *tok,
                                  const char *file, int64_t line, const char *field,
                                  const char *text, int32_t **ids, size_t *n) {
    comi_tokenize_params tp = comi_tokenize_default_params();
    tp.add_bos = 0;
    tp.add_eos = 0;
    if (comi_tokenize(ctx, tok, text, strlen(text), &tp, ids, n))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s:%lld: '%s': %s", file, (long long)line, field,
                            comi_errmsg(ctx));
    return COMI_OK;
}

/* One row -> ids (see comi_train_params.data). */
static comi_status parse_row(comi_err *e, comi_ctx *ctx, const comi_model *base, const char *file,
                             int64_t line, json_t *o, int64_t max_ctx, tr_row *out) {
    int32_t *part[3] = {NULL, NULL, NULL};
    size_t n[3] = {0, 0, 0};
    comi_status st = COMI_OK;
    static const char *const idf[3] = {"context_ids", "question_ids", "answer_ids"};
    if (!json_is_object(o)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s:%lld: not a JSON object", file, (long long)line);
    } else if (json_object_get(o, "context_ids")) {
        for (int k = 0; k < 3 && !st; k++)
            st = json_id_list(e, file, line, idf[k], json_object_get(o, idf[k]), base->n_vocab,
                              &part[k], &n[k]);
    } else {
        const comi_tokenizer *tok = base->tok;
        json_t *in = json_object_get(o, "input"), *pr = json_object_get(o, "prompt"),
               *an = json_object_get(o, "answer");
        if (json_is_array(an)) an = json_array_get(an, 0);
        if (!tok)
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s:%lld: the base model has no tokenizer; give context_ids, "
                              "question_ids and answer_ids",
                              file, (long long)line);
        else if (!json_is_string(in))
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s:%lld: missing string field 'input'", file,
                              (long long)line);
        else if (!json_is_string(pr))
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s:%lld: missing string field 'prompt'", file,
                              (long long)line);
        else if (!json_is_string(an))
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s:%lld: 'answer' must be a string or a list whose first entry "
                              "is a string",
                              file, (long long)line);
        if (!st)
            st = tokenize_field(e, ctx, tok, file, line, "input", json_string_value(in), &part[0],
                                &n[0]);
        if (!st)
            st = tokenize_field(e, ctx, tok, file, line, "prompt", json_string_value(pr), &part[1],
                                &n[1]);
        if (!st)
            st = tokenize_field(e, ctx, tok, file, line, "answer", json_string_value(an), &part[2],
                                &n[2]);
        if (!st) {
            if (base->n_eos < 1)
                st = comi_err_set(e, COMI_ERR_FORMAT, "the base model has no EOS id");
            int32_t *a = st ? NULL : realloc(part[2], (n[2] + 1) * sizeof *a);
            if (!st && !a) st = comi_err_set(e, COMI_ERR_NOMEM, "out of memory (answer ids)");
            if (!st) {
                part[2] = a;
                a[n[2]++] = base->eos_ids[0];
            }
        }
    }
    if (!st && max_ctx > 0 && (int64_t)n[0] > max_ctx) n[0] = (size_t)max_ctx;
    if (!st && comi_check_tokens(ctx, "context", (int64_t)n[0])) {
        char msg[sizeof e->msg];
        snprintf(msg, sizeof msg, "%s", comi_errmsg(ctx));
        st = comi_err_set(e, COMI_ERR_LIMIT, "%s:%lld: %s (comi train --context-tokens keeps the "
                          "first N)", file, (long long)line, msg);
    }
    static const char *const what[3] = {"context", "question", "answer"};
    for (int k = 0; k < 3 && !st; k++)
        if (n[k] == 0)
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s:%lld: the %s has no tokens", file,
                              (long long)line, what[k]);
    if (!st) {
        out->line = line;
        out->n_ctx = (int64_t)n[0];
        out->n_q = (int64_t)n[1];
        out->n_ans = (int64_t)n[2];
        out->ids = malloc((n[0] + n[1] + n[2]) * sizeof(int32_t));
        if (!out->ids) st = comi_err_set(e, COMI_ERR_NOMEM, "out of memory (token ids)");
        else {
            memcpy(out->ids, part[0], n[0] * sizeof(int32_t));
            memcpy(out->ids + n[0], part[1], n[1] * sizeof(int32_t));
            memcpy(out->ids + n[0] + n[1], part[2], n[2] * sizeof(int32_t));
        }
    }
    for (int k = 0; k < 3; k++) free(part[k]);
    return st;
}

static comi_status data_load(comi_err *e, comi_ctx *ctx, const comi_model *base, const char *path,
                             int64_t max_ctx, int64_t limit, tr_data *d) {
    memset(d, 0, sizeof *d);
    FILE *f = !strcmp(path, "-") ? stdin : fopen(path, "rb");
    if (!f) return comi_err_set(e, COMI_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t line = 0;
    comi_status st = COMI_OK;
    while (!st && (limit <= 0 || d->n < limit) && (len = getline(&buf, &cap, f)) >= 0) {
        line++;
        bool blank = true;
        for (ssize_t i = 0; i < len && blank; i++)
            blank = buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n';
        if (blank) continue;
        json_error_t je;
        json_t *o = json_loadb(buf, (size_t)len, 0, &je);
        if (!o) {
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s:%lld: bad JSON: %s", path, (long long)line,
                              je.text);
            break;
        }
        if (d->n == d->cap) {
            int64_t nc = d->cap ? 2 * d->cap : 256;
            tr_row *r = realloc(d->rows, (size_t)nc * sizeof *r);
            if (!r) {
                json_decref(o);
                st = comi_err_set(e, COMI_ERR_NOMEM, "out of memory (data rows)");
                break;
            }
            d->rows = r;
            d->cap = nc;
        }
        st = parse_row(e, ctx, base, path, line, o, max_ctx, &d->rows[d->n]);
        json_decref(o);
        if (!st) d->n++;
    }
    free(buf);
    if (f != stdin) fclose(f);
    if (!st && d->n == 0) st = comi_err_set(e, COMI_ERR_FORMAT, "%s: no data rows", path);
    if (st) data_free(d);
    return st;
}

/* ---- order and seeds ------------------------------------------------------ */

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The row of the k-th example drawn (k counts over all epochs). */
static int64_t example_row(const comi_train_params *p, int64_t n, int64_t k, int64_t *perm,
                           int64_t *perm_epoch) {
    int64_t epoch = k / n, pos = k % n;
    if (!p->shuffle) return pos;
    if (*perm_epoch != epoch) {
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        uint64_t s = mix(p->seed ^ mix((uint64_t)epoch + 1));
        for (int64_t i = n - 1; i > 0; i--) {
            s = mix(s);
            int64_t j = (int64_t)(s % (uint64_t)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        *perm_epoch = epoch;
    }
    return perm[pos];
}

/* ---- checkpoints ---------------------------------------------------------- */

static comi_status write_json(comi_err *e, const char *path, json_t *j) {
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(j, tmp, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (rc != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return comi_err_set(e, COMI_ERR_IO, "%s: cannot write", path);
    }
    return COMI_OK;
}

/* Writes the AdamW moments as "m.<name>" / "v.<name>" (float32). */
static comi_status save_optimizer(comi_err *e, const tr_model *m, const char *path, int64_t step) {
    json_t *hdr = json_object();
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int32_t i = 0; i < m->n_params; i++) {
            const tr_param *p = &m->params[i];
            char k[256];
            snprintf(k, sizeof k, "%s.%s", pass ? "v" : "m", p->name);
            size_t b = (size_t)p->n * sizeof(float);
            json_object_set_new(hdr, k,
                                json_pack("{s:s,s:[I],s:[I,I]}", "dtype", "F32", "shape",
                                          (json_int_t)p->n, "data_offsets", (json_int_t)off,
                                          (json_int_t)(off + b)));
            off += b;
        }
    char sstep[32];
    snprintf(sstep, sizeof sstep, "%lld", (long long)step);
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "step", sstep));
    char *js = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    if (!js) return comi_err_set(e, COMI_ERR_NOMEM, "out of memory (optimizer header)");
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8;
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    bool ok = f != NULL;
    uint64_t hlen = hl + pad;
    if (ok)
        ok = fwrite(&hlen, 8, 1, f) == 1 && fwrite(js, 1, hl, f) == hl &&
             fwrite("        ", 1, pad, f) == pad;
    free(js);
    for (int pass = 0; ok && pass < 2; pass++)
        for (int32_t i = 0; ok && i < m->n_params; i++) {
            const tr_param *p = &m->params[i];
            ok = fwrite(pass ? p->v : p->m, sizeof(float), (size_t)p->n, f) == (size_t)p->n;
        }
    if (f && fclose(f) != 0) ok = false;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return comi_err_set(e, COMI_ERR_IO, "%s: write failed", path);
    }
    return COMI_OK;
}

#include "formats/safetensors.h"

static comi_status load_optimizer(comi_err *e, tr_model *m, const char *path) {
    st_model *st = NULL;
    comi_status s = st_open_file(e, path, &st);
    if (s) return s;
    for (int pass = 0; !s && pass < 2; pass++)
        for (int32_t i = 0; !s && i < m->n_params; i++) {
            tr_param *p = &m->params[i];
            char k[256];
            snprintf(k, sizeof k, "%s.%s", pass ? "v" : "m", p->name);
            const comi_tensor *t = st_find_tensor(st, k);
            if (!t || t->type != COMI_TYPE_F32 || t->nbytes != (size_t)p->n * sizeof(float))
                s = comi_err_set(e, COMI_ERR_FORMAT, "%s: missing or mis-shaped '%s'", path, k);
            else
                memcpy(pass ? p->v : p->m, t->data, t->nbytes);
        }
    st_close(st);
    return s;
}

static json_t *settings_json(const comi_train_params *p, int64_t total) {
    return json_pack("{s:i,s:i,s:I,s:I,s:f,s:f,s:f,s:s,s:f,s:f,s:f,s:i,s:I,s:b,s:I,s:I}",
                     "encoder_layers", p->encoder_layers, "fusion_layers", p->fusion_layers,
                     "merge_size", (json_int_t)p->merge_size, "lora_r", (json_int_t)p->lora_r,
                     "lora_alpha", (double)p->lora_alpha, "lora_dropout", (double)p->lora_dropout,
                     "lr", p->lr, "schedule", p->cosine ? "cosine" : "constant", "warmup_ratio",
                     p->warmup_ratio, "weight_decay", p->weight_decay, "max_grad_norm",
                     p->max_grad_norm, "batch_size", p->batch_size, "total_steps",
                     (json_int_t)total, "shuffle", p->shuffle, "seed", (json_int_t)p->seed,
                     "context_tokens", (json_int_t)p->context_tokens);
}

static comi_status save_checkpoint(comi_err *e, const tr_model *m, const comi_train_params *p,
                                   int64_t step, int64_t total, int64_t n_rows) {
    char path[4200];
    comi_status st;
    /* optimizer, model, then state: a crash between the renames leaves an
     * optimizer of another step than the state, which --resume detects */
    snprintf(path, sizeof path, "%s/optimizer.safetensors", p->out_dir);
    if ((st = save_optimizer(e, m, path, step))) return st;
    snprintf(path, sizeof path, "%s/model.safetensors", p->out_dir);
    if ((st = tr_model_save(e, m, path, false))) return st;
    json_t *ac = json_pack("{s:s,s:s,s:I,s:f,s:f,s:[s,s,s,s],s:s,s:i,s:i,s:I}", "peft_type",
                           "LORA", "base_model_name_or_path", p->model, "r", (json_int_t)p->lora_r,
                           "lora_alpha", (double)p->lora_alpha, "lora_dropout",
                           (double)p->lora_dropout, "target_modules", "q_proj", "k_proj",
                           "v_proj", "o_proj", "task_type", "CAUSAL_LM", "encoder_layers",
                           p->encoder_layers, "fusion_layers", p->fusion_layers, "merge_size",
                           (json_int_t)p->merge_size);
    snprintf(path, sizeof path, "%s/adapter_config.json", p->out_dir);
    st = write_json(e, path, ac);
    json_decref(ac);
    if (st) return st;
    json_t *ts = json_pack("{s:I,s:I,s:s,s:o}", "step", (json_int_t)step, "n_rows",
                           (json_int_t)n_rows, "data", p->data, "settings",
                           settings_json(p, total));
    snprintf(path, sizeof path, "%s/trainer_state.json", p->out_dir);
    st = write_json(e, path, ts);
    json_decref(ts);
    return st;
}

/* The "step" of a safetensors file's __metadata__, or -1. */
static long long header_step(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint64_t hl = 0;
    long long step = -1;
    char *h = NULL;
    if (fread(&hl, 8, 1, f) == 1 && hl > 0 && hl < (1u << 26) && (h = malloc(hl + 1)) &&
        fread(h, 1, hl, f) == hl) {
        json_t *j = json_loadb(h, hl, 0, NULL);
        const char *v = json_string_value(json_object_get(json_object_get(j, "__metadata__"),
                                                          "step"));
        if (v) step = strtoll(v, NULL, 10);
        json_decref(j);
    }
    free(h);
    fclose(f);
    return step;
}

/* Restores a checkpoint written by save_checkpoint with the same settings;
 * returns its step in *step. */
static comi_status load_checkpoint(comi_err *e, tr_model *m, const comi_train_params *p,
                                   int64_t total, int64_t n_rows, int64_t *step) {
    char path[4200];
    snprintf(path, sizeof path, "%s/trainer_state.json", p->out_dir);
    json_error_t je;
    json_t *ts = json_load_file(path, 0, &je);
    if (!ts)
        return comi_err_set(e, COMI_ERR_IO, "--resume: %s: %s (no checkpoint to resume from)",
                            path, je.text);
    json_t *want = settings_json(p, total);
    json_t *have = json_object_get(ts, "settings");
    comi_status st = COMI_OK;
    if (!json_equal(want, have)) {
        const char *key;
        json_t *v;
        const char *bad = "?";
        json_object_foreach(want, key, v) {
            if (!json_equal(v, json_object_get(have, key))) {
                bad = key;
                break;
            }
        }
        st = comi_err_set(e, COMI_ERR_INVALID_ARG,
                          "--resume: %s was trained with a different '%s' (settings must match)",
                          p->out_dir, bad);
    } else if (json_integer_value(json_object_get(ts, "n_rows")) != n_rows) {
        st = comi_err_set(e, COMI_ERR_INVALID_ARG,
                          "--resume: the data has %lld usable rows, the checkpoint's run had %lld",
                          (long long)n_rows,
                          (long long)json_integer_value(json_object_get(ts, "n_rows")));
    }
    *step = json_integer_value(json_object_get(ts, "step"));
    json_decref(want);
    json_decref(ts);
    if (st) return st;
    snprintf(path, sizeof path, "%s/model.safetensors", p->out_dir);
    if ((st = tr_model_load(e, m, path, true))) return st;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", p->out_dir);
    if ((st = load_optimizer(e, m, path))) return st;
    /* the three files must be of one step (a crash between the renames) */
    long long os = header_step(path);
    if (os != *step)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "--resume: %s is of step %lld, trainer_state.json of step %lld", path,
                            os, (long long)*step);
    return COMI_OK;
}

/* Keeps the log lines of steps <= step (a resumed run rewrites the rest). */
static comi_status trim_log(comi_err *e, const char *path, int64_t step) {
    FILE *f = fopen(path, "rb");
    if (!f) return COMI_OK;
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "wb");
    if (!o) {
        fclose(f);
        return comi_err_set(e, COMI_ERR_IO, "%s: cannot write", tmp);
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        json_t *j = json_loadb(buf, (size_t)len, 0, NULL);
        bool keep = j && json_integer_value(json_object_get(j, "step")) <= step;
        json_decref(j);
        if (keep) fwrite(buf, 1, (size_t)len, o);
    }
    free(buf);
    fclose(f);
    if (fclose(o) != 0 || rename(tmp, path) != 0)
        return comi_err_set(e, COMI_ERR_IO, "%s: cannot rewrite", path);
    return COMI_OK;
}

/* ---- the loop ------------------------------------------------------------- */

static comi_status eval_loss(comi_err *e, comi_ctx *ctx, tr_model *m, const tr_data *d,
                             double *out) {
    double s = 0;
    for (int64_t i = 0; i < d->n; i++) {
        tr_example ex = row_example(&d->rows[i]);
        double l;
        comi_status st = tr_example_step(e, ctx, m, &ex, false, 1.0f, 0, &l, NULL);
        if (st) return st;
        s += l;
    }
    *out = s / (double)d->n;
    return COMI_OK;
}

static comi_status train_run(comi_err *e, comi_ctx *ctx, const comi_train_params *p,
                             const comi_model *base) {
    tr_opts o = tr_default_opts();
    o.encoder_layers = p->encoder_layers;
    o.fusion_layers = p->fusion_layers;
    o.merge_size = p->merge_size;
    o.lora_r = p->lora_r;
    o.lora_alpha = p->lora_alpha;
    o.lora_dropout = p->lora_dropout;
    o.seed = p->seed;
    tr_data data = {0}, held = {0};
    tr_model *m = NULL;
    FILE *log = NULL;
    int64_t *perm = NULL;
    comi_status st = data_load(e, ctx, base, p->data, p->context_tokens, 0, &data);
    if (!st && p->eval_data)
        st = data_load(e, ctx, base, p->eval_data, p->context_tokens, p->eval_limit, &held);
    if (!st) st = tr_model_new(e, base, &o, &m);
    if (!st && p->init) {
        char path[4200];
        struct stat sb;
        if (stat(p->init, &sb) == 0 && S_ISDIR(sb.st_mode))
            snprintf(path, sizeof path, "%s/model.safetensors", p->init);
        else
            snprintf(path, sizeof path, "%s", p->init);
        st = tr_model_load(e, m, path, false);
    }
    if (st) goto done;

    if (p->dump_grad) {
        tr_zero_grad(m);
        double s = 0;
        for (int64_t i = 0; i < data.n && !st; i++) {
            tr_example ex = row_example(&data.rows[i]);
            double l;
            st = tr_example_step(e, ctx, m, &ex, true, 1.0f / (float)data.n, 0, &l, NULL);
            if (st) {
                char msg[sizeof e->msg];
                snprintf(msg, sizeof msg, "%s", e->msg);
                comi_err_set(e, st, "%s:%lld: %s", p->data, (long long)data.rows[i].line, msg);
            }
            s += l;
        }
        if (!st) st = tr_model_save(e, m, p->dump_grad, true);
        if (!st && p->dump_loss) *p->dump_loss = s / (double)data.n;
        goto done;
    }

    const int64_t B = p->batch_size;
    int64_t total = p->steps > 0 ? p->steps : (int64_t)ceil(p->epochs * (double)data.n / (double)B);
    if (total < 1) total = 1;
    if (mkdir(p->out_dir, 0777) != 0 && errno != EEXIST) {
        st = comi_err_set(e, COMI_ERR_IO, "%s: cannot create (%s)", p->out_dir, strerror(errno));
        goto done;
    }
    int64_t step = 0;
    if (p->resume) {
        if ((st = load_checkpoint(e, m, p, total, data.n, &step))) goto done;
    } else {
        char ts[4200];
        snprintf(ts, sizeof ts, "%s/trainer_state.json", p->out_dir);
        struct stat sb;
        if (stat(ts, &sb) == 0) {
            st = comi_err_set(e, COMI_ERR_INVALID_ARG,
                              "%s already holds a training run (use --resume, or another --out)",
                              p->out_dir);
            goto done;
        }
    }
    char logpath[4200];
    if (p->log) snprintf(logpath, sizeof logpath, "%s", p->log);
    else snprintf(logpath, sizeof logpath, "%s/log.jsonl", p->out_dir);
    if (p->resume && (st = trim_log(e, logpath, step))) goto done;
    if (!(log = fopen(logpath, p->resume ? "ab" : "wb"))) {
        st = comi_err_set(e, COMI_ERR_IO, "%s: cannot write the log", logpath);
        goto done;
    }
    perm = malloc((size_t)data.n * sizeof *perm);
    if (!perm) {
        st = comi_err_set(e, COMI_ERR_NOMEM, "out of memory (data order)");
        goto done;
    }
    int64_t perm_epoch = -1, last_saved = step;
    const tr_adamw ad = {.lr = p->lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                         .weight_decay = p->weight_decay};
    const double t0 = comi_now_ms();
    double tokens = 0;
    const int64_t first = step;
    for (; step < total; step++) {
        tr_zero_grad(m);
        double loss = 0;
        for (int64_t j = 0; j < B && !st; j++) {
            int64_t k = step * B + j;
            const tr_row *r = &data.rows[example_row(p, data.n, k, perm, &perm_epoch)];
            tr_example ex = row_example(r);
            double l;
            int64_t n_mem = 0;
            uint64_t ds = mix(p->seed * 0x100000001B3ull ^ mix((uint64_t)k)) | 1;
            st = tr_example_step(e, ctx, m, &ex, true, 1.0f / (float)B, ds, &l, &n_mem);
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            if (st == COMI_ERR_INTERNAL) {
                comi_err_set(e, st,
                             "step %lld (%s line %lld): %s; stopped, the last good checkpoint "
                             "(step %lld) is kept in %s",
                             (long long)step + 1, p->data, (long long)r->line, msg,
                             (long long)last_saved, p->out_dir);
            } else if (st) {
                comi_err_set(e, st, "%s:%lld: %s", p->data, (long long)r->line, msg);
            }
            loss += l / (double)B;
            /* tokens through the encoder + through the decoder */
            tokens += (double)(r->n_ctx + 2 * r->n_q + n_mem + r->n_ans);
        }
        if (st) break;
        double gn = tr_grad_norm(m);
        if (!isfinite(gn)) {
            st = comi_err_set(e, COMI_ERR_INTERNAL,
                              "step %lld: gradient norm is %g; stopped, the last good checkpoint "
                              "(step %lld) is kept in %s",
                              (long long)step + 1, gn, (long long)last_saved, p->out_dir);
            break;
        }
        double clip = p->max_grad_norm > 0 ? fmin(1.0, p->max_grad_norm / (gn + 1e-6)) : 1.0;
        double lr = tr_lr_at(p->lr, p->cosine, p->warmup_ratio, step, total);
        tr_adamw a = ad;
        a.lr = lr;
        tr_adamw_step(m, &a, clip, step + 1);
        comi_train_progress pr = {.step = step + 1,
                                  .total_steps = total,
                                  .loss = loss,
                                  .lr = lr,
                                  .grad_norm = gn,
                                  .eval_loss = NAN};
        bool last = step + 1 == total || step + 1 == p->stop_after;
        if (held.n > 0 && (last || (p->eval_every > 0 && (step + 1) % p->eval_every == 0))) {
            if ((st = eval_loss(e, ctx, m, &held, &pr.eval_loss))) break;
        }
        if (last || (p->save_every > 0 && (step + 1) % p->save_every == 0)) {
            if ((st = save_checkpoint(e, m, p, step + 1, total, data.n))) break;
            last_saved = step + 1;
            pr.checkpoint_saved = true;
        }
        pr.elapsed_s = (comi_now_ms() - t0) / 1000.0;
        double per = pr.elapsed_s / (double)(step + 1 - first);
        pr.eta_s = per * (double)(total - step - 1);
        pr.tokens_per_s = tokens / (pr.elapsed_s > 0 ? pr.elapsed_s : 1e-9);
        fprintf(log,
                "{\"step\": %lld, \"loss\": %.8g, \"lr\": %.8g, \"grad_norm\": %.8g, \"epoch\": "
                "%.6g, \"elapsed_s\": %.3f",
                (long long)pr.step, pr.loss, pr.lr, pr.grad_norm,
                (double)((step + 1) * B) / (double)data.n, pr.elapsed_s);
        if (!isnan(pr.eval_loss)) fprintf(log, ", \"eval_loss\": %.8g", pr.eval_loss);
        fprintf(log, "}\n");
        fflush(log);
        if (p->progress) p->progress(p->progress_user, &pr);
        if (step + 1 == p->stop_after) break;
    }
done:
    if (log) fclose(log);
    free(perm);
    tr_model_free(m);
    data_free(&data);
    data_free(&held);
    return st;
}

comi_status comi_train(comi_ctx *ctx, const comi_train_params *p) {
    comi_err *e = &ctx->err;
    comi_err_clear(e);
    if (!p || !p->model || !p->data || (!p->out_dir && !p->dump_grad))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "train: model, data and out_dir are required");
    if (p->batch_size < 1 || !(p->lr >= 0) || !(p->warmup_ratio >= 0 && p->warmup_ratio <= 1) ||
        !(p->weight_decay >= 0) || !(p->epochs > 0) || p->steps < 0 || p->save_every < 0 ||
        p->eval_every < 0 || p->stop_after < 0)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "train: batch size, lr, warmup ratio, weight decay, epochs or steps "
                            "out of range");
    comi_model *base = NULL;
    comi_status st = comi_model_load(ctx, p->model, NULL, &base);
    if (st) return st;
    ops_blas_enter(); /* BLAS from our pool threads: OpenBLAS single-threaded (ops.h) */
    st = train_run(e, ctx, p, base);
    ops_blas_leave();
    comi_model_free(base);
    return st;
}
