/*
 * safetensors.c — model-loading stage for Hugging Face checkpoints: maps
 * `.safetensors` files read-only and turns their JSON headers into
 * comi_tensor descriptors, for one file or a sharded model directory.
 *
 * Mirrors the header validation of the reference `safetensors` crate
 * (header length limit, dtype sizes, offsets inside the data section, no
 * overlapping tensors) and transformers' sharded-checkpoint layout
 * (`model.safetensors.index.json` with a `weight_map` name -> shard file).
 * See safetensors.h for the accepted dtypes and the shape convention.
 */
#include "formats/safetensors.h"

#include "base/vec.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct st_dtype_info {
    const char *name; /* spelling in the safetensors spec */
    size_t size;      /* bytes per element */
    comi_type type;   /* COMI_TYPE_COUNT when comi has no such type */
} st_dtype_info;

static const st_dtype_info st_dtypes[] = {
    {"F64", 8, COMI_TYPE_F64},    {"F32", 4, COMI_TYPE_F32},       {"F16", 2, COMI_TYPE_F16},
    {"BF16", 2, COMI_TYPE_BF16},  {"I64", 8, COMI_TYPE_I64},       {"I32", 4, COMI_TYPE_I32},
    {"I16", 2, COMI_TYPE_I16},    {"I8", 1, COMI_TYPE_I8},         {"U64", 8, COMI_TYPE_COUNT},
    {"U32", 4, COMI_TYPE_COUNT},  {"U16", 2, COMI_TYPE_COUNT},     {"U8", 1, COMI_TYPE_COUNT},
    {"BOOL", 1, COMI_TYPE_COUNT}, {"F8_E4M3", 1, COMI_TYPE_COUNT}, {"F8_E5M2", 1, COMI_TYPE_COUNT},
};
#define ST_N_DTYPES ((int32_t)(sizeof st_dtypes / sizeof st_dtypes[0]))

typedef struct st_shard {
    char *path;    /* file path, or the name given to st_open_memory */
    comi_mmap map; /* empty for st_open_memory */
} st_shard;

typedef struct st_entry {
    comi_tensor t;  /* t.name is owned (malloc'ed) by the entry */
    int32_t dtype;  /* index into st_dtypes */
    int32_t shard;  /* index into st_model.shards */
    uint64_t begin; /* byte range [begin, end) inside the data section */
    uint64_t end;
    void *owned; /* aligned copy of misaligned data, else NULL */
} st_entry;

typedef struct st_name_ref {
    const char *name;
    int64_t index;
} st_name_ref;

struct st_model {
    st_shard *shards; /* (n_shards,) */
    int32_t n_shards;
    st_entry *tensors; /* (n_tensors,), capacity cap */
    int64_t n_tensors;
    size_t cap;
    st_name_ref *by_name; /* (n_tensors,) sorted by name for bsearch */
    char *source;         /* the file or directory opened, for messages */
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static char *dup_str(comi_err *e, const char *s, const char *what) {
    size_t n = strlen(s);
    char *d = comi_alloc_array(e, n + 1, 1, what);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* dir + "/" + name, malloc'ed; NULL with a message on allocation failure. */
static char *path_join(comi_err *e, const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name), n;
    if (!comi_add_size(a, b, &n) || !comi_add_size(n, 2, &n)) {
        comi_err_set(e, COMI_ERR_LIMIT, "%s: path too long", dir);
        return NULL;
    }
    char *p = comi_alloc_array(e, n, 1, "path");
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool is_regular(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int32_t find_dtype(const char *s) {
    for (int32_t i = 0; i < ST_N_DTYPES; i++)
        if (strcmp(st_dtypes[i].name, s) == 0) return i;
    return -1;
}

/* A non-negative JSON integer as uint64; false for anything else. */
static bool json_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return false;
    json_int_t x = json_integer_value(v);
    if (x < 0) return false;
    *out = (uint64_t)x;
    return true;
}

static st_model *model_new(comi_err *e, int32_t n_shards) {
    st_model *m = comi_calloc_array(e, 1, sizeof *m, "safetensors model");
    if (!m) return NULL;
    m->shards = comi_calloc_array(e, (size_t)n_shards, sizeof *m->shards, "safetensors shards");
    if (!m->shards) {
        free(m);
        return NULL;
    }
    m->n_shards = n_shards;
    return m;
}

static st_entry *push_entry(comi_err *e, st_model *m) {
    if (!COMI_VEC_RESERVE(e, m->tensors, m->cap, (size_t)m->n_tensors + 1, "safetensors tensors"))
        return NULL;
    st_entry *en = &m->tensors[m->n_tensors++];
    memset(en, 0, sizeof *en);
    return en;
}

/* Data-offset order inside one shard; ties by end then name, so the order
 * does not depend on the JSON key order. */
static int cmp_offset(const void *pa, const void *pb) {
    const st_entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return strcmp(a->t.name, b->t.name);
}

static int cmp_name_ref(const void *pa, const void *pb) {
    const st_name_ref *a = pa, *b = pb;
    return strcmp(a->name, b->name);
}

/* ---- one header --------------------------------------------------------- */

/* Parses one tensor entry `val` named `key` of a header; appends it to m. */
static comi_status parse_entry(comi_err *e, st_model *m, int32_t shard, const char *path,
                               const char *key, const json_t *val, uint64_t data_size) {
    if (!json_is_object(val))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path,
                            key);
    const json_t *jd = json_object_get(val, "dtype");
    const json_t *js = json_object_get(val, "shape");
    const json_t *jo = json_object_get(val, "data_offsets");
    if (!json_is_string(jd))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: tensor '%s': field 'dtype' %s", path, key,
                            jd ? "is not a string" : "is missing");
    if (!json_is_array(js))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: tensor '%s': field 'shape' %s", path, key,
                            js ? "is not an array" : "is missing");
    if (!json_is_array(jo))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' %s", path,
                            key, jo ? "is not an array" : "is missing");

    const char *dname = json_string_value(jd);
    int32_t dt = find_dtype(dname);
    if (dt < 0)
        return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%.32s'", path,
                            key, dname);

    size_t rank = json_array_size(js);
    if (rank > COMI_MAX_DIMS)
        return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                            "%s: tensor '%s': %zu dimensions, at most %d are supported", path, key,
                            rank, COMI_MAX_DIMS);
    int64_t ne[COMI_MAX_DIMS] = {1, 1, 1, 1};
    size_t nelem = 1;
    for (size_t i = 0; i < rank; i++) {
        uint64_t d;
        if (!json_u64(json_array_get(js, i), &d))
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: tensor '%s': shape[%zu] is not a non-negative integer", path,
                                key, i);
        /* PyTorch order is outermost first; ne[0] is the contiguous dim. */
        ne[rank - 1 - i] = (int64_t)d;
        if (d > SIZE_MAX || !comi_mul_size(nelem, (size_t)d, &nelem))
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: tensor '%s': element count of the shape overflows", path, key);
    }
    size_t nbytes;
    if (!comi_mul_size(nelem, st_dtypes[dt].size, &nbytes))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: tensor '%s': byte size of the shape overflows",
                            path, key);

    uint64_t begin, end;
    if (json_array_size(jo) != 2 || !json_u64(json_array_get(jo, 0), &begin) ||
        !json_u64(json_array_get(jo, 1), &end))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets must be two non-negative integers", path,
                            key);
    if (begin > end)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] are reversed", path, key,
                            (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets end %llu is past the data section "
                            "(%llu bytes; file truncated?)",
                            path, key, (unsigned long long)end, (unsigned long long)data_size);
    if (end - begin != (uint64_t)nbytes)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets span %llu bytes but shape x %s needs "
                            "%zu",
                            path, key, (unsigned long long)(end - begin), st_dtypes[dt].name,
                            nbytes);

    st_entry *en = push_entry(e, m);
    if (!en) return e ? e->status : COMI_ERR_NOMEM;
    en->t.name = dup_str(e, key, "tensor name");
    if (!en->t.name) {
        m->n_tensors--;
        return e ? e->status : COMI_ERR_NOMEM;
    }
    en->t.type = st_dtypes[dt].type;
    en->t.n_dims = rank ? (int32_t)rank : 1;
    memcpy(en->t.ne, ne, sizeof ne);
    en->t.nbytes = nbytes;
    en->dtype = dt;
    en->shard = shard;
    en->begin = begin;
    en->end = end;
    return COMI_OK;
}

/* Parses the shard whose bytes are data[0, size) and appends its tensors
 * to m (in data-offset order). */
static comi_status parse_shard(comi_err *e, st_model *m, int32_t shard, const uint8_t *data,
                               size_t size) {
    const char *path = m->shards[shard].path;
    if (size < 8)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: %zu bytes, too short for the 8-byte header length", path, size);
    uint64_t hlen = read_le64(data);
    if (hlen > ST_MAX_HEADER_BYTES)
        return comi_err_set(e, COMI_ERR_LIMIT,
                            "%s: header length %llu exceeds the limit of %llu bytes", path,
                            (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER_BYTES);
    if (hlen > size - 8)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: header length %llu runs past the end of the file (%zu bytes)",
                            path, (unsigned long long)hlen, size);
    if (hlen < 2 || data[8] != '{')
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: header does not start with a JSON object",
                            path);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: header is not valid JSON: %s (line %d, column %d, header byte "
                            "%d)",
                            path, jerr.text, jerr.line, jerr.column, jerr.position);
    comi_status st = COMI_OK;
    if (!json_is_object(root)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }

    uint64_t data_size = (uint64_t)size - 8 - hlen;
    int64_t first = m->n_tensors;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            /* Free-form string -> string map; its content is not used. */
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) {
                st =
                    comi_err_set(e, COMI_ERR_FORMAT, "%s: __metadata__ is not a JSON object", path);
                goto done;
            }
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    st = comi_err_set(e, COMI_ERR_FORMAT,
                                      "%s: __metadata__ value '%.64s' is not a string", path, mk);
                    goto done;
                }
            }
            continue;
        }
        st = parse_entry(e, m, shard, path, key, val, data_size);
        if (st != COMI_OK) goto done;
    }

    /* Overlap check in offset order; empty tensors cannot overlap. */
    size_t n = (size_t)(m->n_tensors - first);
    st_entry *ents = n ? m->tensors + first : NULL; /* tensors is NULL when none */
    if (n) qsort(ents, n, sizeof *ents, cmp_offset);
    uint64_t max_end = 0;
    const char *max_name = NULL;
    for (size_t i = 0; i < n; i++) {
        if (ents[i].begin == ents[i].end) continue;
        if (max_name && ents[i].begin < max_end) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s' (ends at "
                              "%llu)",
                              path, ents[i].t.name, (unsigned long long)ents[i].begin,
                              (unsigned long long)ents[i].end, max_name,
                              (unsigned long long)max_end);
            goto done;
        }
        max_end = ents[i].end;
        max_name = ents[i].t.name;
    }

    /* Data pointers; misaligned data gets an aligned copy (malloc aligns
     * to at least 16 bytes, more than any element size). */
    const uint8_t *base = data + 8 + hlen;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = base + ents[i].begin;
        size_t esize = st_dtypes[ents[i].dtype].size;
        if (ents[i].t.nbytes && ((uintptr_t)p % esize) != 0) {
            void *copy = comi_alloc_array(e, ents[i].t.nbytes, 1, "aligned tensor copy");
            if (!copy) {
                st = e ? e->status : COMI_ERR_NOMEM;
                goto done;
            }
            memcpy(copy, p, ents[i].t.nbytes);
            ents[i].owned = copy;
            p = copy;
        }
        ents[i].t.data = p;
    }
done:
    json_decref(root);
    return st;
}

/* Builds the name index; fails on a name present in two shards. */
static comi_status build_index(comi_err *e, st_model *m) {
    m->by_name = comi_alloc_array(e, (size_t)m->n_tensors, sizeof *m->by_name, "tensor index");
    if (!m->by_name) return e ? e->status : COMI_ERR_NOMEM;
    for (int64_t i = 0; i < m->n_tensors; i++) {
        m->by_name[i].name = m->tensors[i].t.name;
        m->by_name[i].index = i;
    }
    if (m->n_tensors) qsort(m->by_name, (size_t)m->n_tensors, sizeof *m->by_name, cmp_name_ref);
    for (int64_t i = 1; i < m->n_tensors; i++) {
        if (strcmp(m->by_name[i - 1].name, m->by_name[i].name) == 0) {
            const st_entry *a = &m->tensors[m->by_name[i - 1].index];
            const st_entry *b = &m->tensors[m->by_name[i].index];
            return comi_err_set(e, COMI_ERR_FORMAT, "tensor '%s' appears in both %s and %s",
                                a->t.name, m->shards[a->shard].path, m->shards[b->shard].path);
        }
    }
    return COMI_OK;
}

/* ---- public ------------------------------------------------------------- */

void st_close(st_model *m) {
    if (!m) return;
    for (int64_t i = 0; i < m->n_tensors; i++) {
        free((char *)m->tensors[i].t.name);
        free(m->tensors[i].owned);
    }
    for (int32_t i = 0; i < m->n_shards; i++) {
        free(m->shards[i].path);
        comi_mmap_close(&m->shards[i].map);
    }
    free(m->shards);
    free(m->tensors);
    free(m->by_name);
    free(m->source);
    free(m);
}

comi_status st_open_memory(comi_err *e, const char *name, const void *data, size_t size,
                           st_model **out) {
    *out = NULL;
    st_model *m = model_new(e, 1);
    if (!m) return e ? e->status : COMI_ERR_NOMEM;
    comi_status st = COMI_OK;
    m->shards[0].path = dup_str(e, name ? name : "<memory>", "shard name");
    m->source = dup_str(e, name ? name : "<memory>", "model name");
    if (!m->shards[0].path || !m->source) st = e ? e->status : COMI_ERR_NOMEM;
    if (st == COMI_OK) st = parse_shard(e, m, 0, data, size);
    if (st == COMI_OK) st = build_index(e, m);
    if (st != COMI_OK) {
        st_close(m);
        return st;
    }
    *out = m;
    return COMI_OK;
}

comi_status st_open_file(comi_err *e, const char *path, st_model **out) {
    *out = NULL;
    st_model *m = model_new(e, 1);
    if (!m) return e ? e->status : COMI_ERR_NOMEM;
    comi_status st = COMI_OK;
    m->shards[0].path = dup_str(e, path, "shard path");
    m->source = dup_str(e, path, "model name");
    if (!m->shards[0].path || !m->source) st = e ? e->status : COMI_ERR_NOMEM;
    if (st == COMI_OK) st = comi_mmap_open(e, path, &m->shards[0].map);
    if (st == COMI_OK) st = parse_shard(e, m, 0, m->shards[0].map.data, m->shards[0].map.size);
    if (st == COMI_OK) st = build_index(e, m);
    if (st != COMI_OK) {
        st_close(m);
        return st;
    }
    *out = m;
    return COMI_OK;
}

static int cmp_cstr(const void *pa, const void *pb) {
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* A shard name from an index must stay inside the model directory. */
static bool shard_name_ok(const char *s) {
    if (!*s || s[0] == '/') return false;
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 0 || (len == 2 && p[0] == '.' && p[1] == '.')) return false;
        p += len;
        if (*p == '/') p++;
    }
    return true;
}

/* metadata.total_size of an index, when present (null counts as absent):
 * transformers writes the sum of the tensors' data bytes, which the shards
 * must then hold. It must be a non-negative integer, and not smaller than
 * the tensor bytes found in the shards (then the index and the shards come
 * from different saves). A larger figure is accepted: writers in the wild
 * also count the shard headers (mlx-lm adds whole file sizes) or keep the
 * figure of tensors a script removed later. */
static comi_status check_total_size(comi_err *e, const char *index_path, const json_t *root,
                                    const st_model *m) {
    const json_t *md = json_object_get(root, "metadata");
    if (!md || json_is_null(md)) return COMI_OK;
    if (!json_is_object(md))
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: field 'metadata' is not an object",
                            index_path);
    const json_t *ts = json_object_get(md, "total_size");
    if (!ts || json_is_null(ts)) return COMI_OK;
    if (!json_is_integer(ts) || json_integer_value(ts) < 0)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: metadata.total_size is not a non-negative integer", index_path);
    uint64_t declared = (uint64_t)json_integer_value(ts), sum = 0;
    for (int64_t i = 0; i < m->n_tensors; i++)
        if (__builtin_add_overflow(sum, (uint64_t)m->tensors[i].t.nbytes, &sum))
            return comi_err_set(e, COMI_ERR_FORMAT, "%s: tensor sizes overflow", index_path);
    if (declared < sum)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: metadata.total_size is %llu bytes but the shards hold %llu "
                            "bytes of tensor data (%lld tensors); the index and the shards do "
                            "not belong together",
                            index_path, (unsigned long long)declared, (unsigned long long)sum,
                            (long long)m->n_tensors);
    return COMI_OK;
}

/* Opens a sharded checkpoint described by the index file at `index_path`
 * inside `dir`. */
static comi_status open_index(comi_err *e, const char *dir, const char *index_path,
                              st_model **out) {
    char *text = NULL;
    size_t len = 0;
    comi_status st = comi_read_file(e, index_path, &text, &len);
    if (st != COMI_OK) return st;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)",
                            index_path, jerr.text, jerr.line, jerr.column);
    const char **names = NULL;
    st_model *m = NULL;
    const json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: field 'weight_map' %s", index_path,
                          json_is_object(root) ? (wm ? "is not an object" : "is missing")
                                               : "is missing (the file is not a JSON object)");
        goto done;
    }
    size_t n_map = json_object_size(wm);
    if (n_map == 0) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: weight_map is empty", index_path);
        goto done;
    }
    names = comi_alloc_array(e, n_map, sizeof *names, "shard names");
    if (!names) {
        st = e ? e->status : COMI_ERR_NOMEM;
        goto done;
    }
    size_t n_names = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)wm, key, val) {
        if (!json_is_string(val)) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: weight_map entry for tensor '%s' is not a string", index_path,
                              key);
            goto done;
        }
        const char *s = json_string_value(val);
        if (!shard_name_ok(s)) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: weight_map names shard '%.200s' for tensor '%s'; shard names "
                              "must be relative paths inside the directory",
                              index_path, s, key);
            goto done;
        }
        names[n_names++] = s;
    }
    qsort(names, n_names, sizeof *names, cmp_cstr);
    size_t n_unique = 0;
    for (size_t i = 0; i < n_names; i++)
        if (n_unique == 0 || strcmp(names[n_unique - 1], names[i]) != 0)
            names[n_unique++] = names[i];
    if (n_unique > INT32_MAX) {
        st = comi_err_set(e, COMI_ERR_LIMIT, "%s: too many shards", index_path);
        goto done;
    }

    m = model_new(e, (int32_t)n_unique);
    if (!m || !(m->source = dup_str(e, dir, "model name"))) {
        st = e ? e->status : COMI_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_unique; i++) {
        st_shard *sh = &m->shards[i];
        sh->path = path_join(e, dir, names[i]);
        if (!sh->path) {
            st = e ? e->status : COMI_ERR_NOMEM;
            goto done;
        }
        comi_err sub;
        comi_err_clear(&sub);
        st = comi_mmap_open(&sub, sh->path, &sh->map);
        if (st != COMI_OK) {
            comi_err_set(e, st, "%s: shard '%s' named by weight_map: %s", index_path, names[i],
                         sub.msg);
            goto done;
        }
        st = parse_shard(e, m, (int32_t)i, sh->map.data, sh->map.size);
        if (st != COMI_OK) goto done;
    }
    st = build_index(e, m);
    if (st != COMI_OK) goto done;

    /* Every weight_map entry must be where the index says. */
    json_object_foreach((json_t *)wm, key, val) {
        const char *s = json_string_value(val);
        st_name_ref k = {key, 0};
        const st_name_ref *r =
            bsearch(&k, m->by_name, (size_t)m->n_tensors, sizeof *m->by_name, cmp_name_ref);
        if (!r) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: weight_map lists tensor '%s' in shard '%s', which does not "
                              "contain it",
                              index_path, key, s);
            goto done;
        }
        const st_entry *en = &m->tensors[r->index];
        const char *actual = m->shards[en->shard].path;
        size_t la = strlen(actual), ls = strlen(s), ld = strlen(dir);
        if (la != ld + 1 + ls || strcmp(actual + ld + 1, s) != 0) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: weight_map lists tensor '%s' in shard '%s' but it is in %s",
                              index_path, key, s, actual);
            goto done;
        }
    }
    st = check_total_size(e, index_path, root, m);
done:
    if (st == COMI_OK) {
        *out = m;
    } else {
        st_close(m);
    }
    free(names);
    json_decref(root);
    return st;
}

comi_status st_open_dir(comi_err *e, const char *dir, st_model **out) {
    *out = NULL;
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return comi_err_set(e, COMI_ERR_IO, "%s: no such file or directory", dir);
    if (S_ISREG(sb.st_mode)) return st_open_file(e, dir, out);
    if (!S_ISDIR(sb.st_mode))
        return comi_err_set(e, COMI_ERR_IO, "%s: not a file or directory", dir);

    char *index = path_join(e, dir, "model.safetensors.index.json");
    if (!index) return e ? e->status : COMI_ERR_NOMEM;
    if (is_regular(index)) {
        comi_status st = open_index(e, dir, index, out);
        free(index);
        return st;
    }
    free(index);
    char *single = path_join(e, dir, "model.safetensors");
    if (!single) return e ? e->status : COMI_ERR_NOMEM;
    comi_status st;
    if (is_regular(single))
        st = st_open_file(e, single, out);
    else
        st = comi_err_set(e, COMI_ERR_IO,
                          "%s: no model.safetensors or model.safetensors.index.json in this "
                          "directory",
                          dir);
    free(single);
    return st;
}

int64_t st_n_tensors(const st_model *m) {
    return m ? m->n_tensors : 0;
}

const comi_tensor *st_tensor_at(const st_model *m, int64_t i) {
    if (!m || i < 0 || i >= m->n_tensors) return NULL;
    return &m->tensors[i].t;
}

const char *st_tensor_dtype(const st_model *m, int64_t i) {
    if (!m || i < 0 || i >= m->n_tensors) return NULL;
    return st_dtypes[m->tensors[i].dtype].name;
}

static const st_entry *find_entry(const st_model *m, const char *name) {
    if (!m || !name || m->n_tensors == 0) return NULL;
    st_name_ref k = {name, 0};
    const st_name_ref *r =
        bsearch(&k, m->by_name, (size_t)m->n_tensors, sizeof *m->by_name, cmp_name_ref);
    return r ? &m->tensors[r->index] : NULL;
}

const comi_tensor *st_find_tensor(const st_model *m, const char *name) {
    const st_entry *en = find_entry(m, name);
    return en ? &en->t : NULL;
}

comi_status st_get_weight(comi_err *e, const st_model *m, const char *name,
                          const comi_tensor **out) {
    *out = NULL;
    const st_entry *en = find_entry(m, name);
    if (!en)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: missing tensor '%s'",
                            m && m->source ? m->source : "safetensors", name);
    comi_type t = en->t.type;
    if (t != COMI_TYPE_F32 && t != COMI_TYPE_F16 && t != COMI_TYPE_BF16)
        return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                            "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                            m->shards[en->shard].path, name, st_dtypes[en->dtype].name);
    *out = &en->t;
    return COMI_OK;
}

int32_t st_n_shards(const st_model *m) {
    return m ? m->n_shards : 0;
}
