/*
 * gguf.c — GGUF v2/v3 reader (model loading stage) and v3 writer.
 *
 * Mirrors ggml's gguf.cpp (gguf_init_from_file_impl, gguf_write_to_file):
 * the file is mapped read-only and every count, string length, array
 * length, type, dimension and data offset is checked against the bytes
 * that remain before it is trusted; keys and tensor names are copied
 * NUL-terminated, everything else points into the mapping. Assumes a
 * little-endian host, like the format.
 */
#include "formats/gguf.h"

#include "base/strmap.h"
#include "base/vec.h"
#include "formats/quant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_DEFAULT_ALIGNMENT 32u
/* Smallest possible encodings, used to bound counts by the bytes left:
 * a kv is key length (8) + type (4) + at least one value byte; a tensor
 * info is name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8). */
#define GGUF_MIN_KV_BYTES 13u
#define GGUF_MIN_TENSOR_BYTES 32u

struct gguf_file {
    char *path; /* owned copy */
    comi_mmap map;
    uint32_t version;
    uint32_t alignment;
    size_t data_offset; /* file offset where the tensor data section starts */
    int64_t n_kv;
    gguf_kv *kvs; /* (n_kv,) keys and string tables owned here */
    int64_t n_tensors;
    comi_tensor *tensors; /* (n_tensors,) names owned here */
    comi_strmap kv_index;     /* key -> kv index (keys in kvs) */
    comi_strmap tensor_index; /* name -> tensor index (names in tensors) */
};

/* ---- names ----------------------------------------------------------------- */

/* Keys of the two name indexes: the names live in the kvs and tensors. */
static const char *kv_key(const void *owner, uint32_t i, size_t *len) {
    const char *k = ((const gguf_file *)owner)->kvs[i].key;
    *len = strlen(k);
    return k;
}

static const char *tensor_key(const void *owner, uint32_t i, size_t *len) {
    const char *k = ((const gguf_file *)owner)->tensors[i].name;
    *len = strlen(k);
    return k;
}

/* ---- value types ----------------------------------------------------------- */

size_t gguf_vtype_size(gguf_vtype t) {
    switch (t) {
    case GGUF_T_UINT8:
    case GGUF_T_INT8:
    case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16:
    case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32:
    case GGUF_T_INT32:
    case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64:
    case GGUF_T_INT64:
    case GGUF_T_FLOAT64: return 8;
    case GGUF_T_STRING:
    case GGUF_T_ARRAY: return 0;
    }
    return 0;
}

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *const names[] = {"uint8", "int8",   "uint16", "int16", "uint32",
                                        "int32", "float32", "bool",   "string", "array",
                                        "uint64", "int64",  "float64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static bool vtype_valid(uint32_t t) {
    return t <= GGUF_T_FLOAT64;
}

/* ---- bounded reading ------------------------------------------------------- */

typedef struct reader {
    comi_err *e;
    const char *path;
    const uint8_t *base;
    size_t size;
    size_t pos;
    uint64_t need; /* bytes the last failed read wanted */
} reader;

static bool rd_take(reader *r, uint64_t n, const uint8_t **p) {
    if (n > (uint64_t)(r->size - r->pos)) {
        r->need = n;
        return false;
    }
    *p = r->base + r->pos;
    r->pos += (size_t)n;
    return true;
}

static bool rd_u32(reader *r, uint32_t *v) {
    const uint8_t *p;
    if (!rd_take(r, 4, &p)) return false;
    memcpy(v, p, 4);
    return true;
}

static bool rd_u64(reader *r, uint64_t *v) {
    const uint8_t *p;
    if (!rd_take(r, 8, &p)) return false;
    memcpy(v, p, 8);
    return true;
}

static bool rd_str(reader *r, gguf_str *s) {
    uint64_t len;
    const uint8_t *p;
    if (!rd_u64(r, &len) || !rd_take(r, len, &p)) return false;
    s->ptr = (const char *)p;
    s->len = len;
    return true;
}

/* A read ran past the end: "<path>: <context>: need N bytes at offset O,
 * only R remain (file size S)". */
static comi_status COMI_PRINTF(2, 3) rd_trunc(reader *r, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return comi_err_set(r->e, COMI_ERR_FORMAT,
                        "%s: %s: need %llu bytes at offset %zu but only %zu remain (file size %zu)",
                        r->path, what, (unsigned long long)r->need, r->pos, r->size - r->pos,
                        r->size);
}

/* Any other failure: "<path>: <message>". */
static comi_status COMI_PRINTF(3, 4) rd_fail(reader *r, comi_status st, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return comi_err_set(r->e, st, "%s: %s", r->path, what);
}

/* Copies a key or tensor name, rejecting embedded NULs (the copy would
 * silently name something else). */
static comi_status copy_name(reader *r, const gguf_str *s, char **out, const char *what, int64_t i) {
    if (memchr(s->ptr, 0, (size_t)s->len))
        return rd_fail(r, COMI_ERR_FORMAT, "%s %lld: name contains a NUL byte", what, (long long)i);
    char *c = comi_alloc_array(r->e, (size_t)s->len + 1, 1, "gguf name");
    if (!c) return r->e ? r->e->status : COMI_ERR_NOMEM;
    memcpy(c, s->ptr, (size_t)s->len);
    c[s->len] = '\0';
    *out = c;
    return COMI_OK;
}

/* ---- reader ---------------------------------------------------------------- */

static comi_status read_value(reader *r, gguf_kv *kv, int64_t i) {
    const char *key = kv->key;
    long long li = (long long)i;
    if (kv->type == GGUF_T_STRING) {
        if (!rd_str(r, &kv->str)) return rd_trunc(r, "kv %lld '%s': string value", li, key);
        kv->data = (const uint8_t *)kv->str.ptr;
        return COMI_OK;
    }
    if (kv->type != GGUF_T_ARRAY) {
        const uint8_t *p;
        if (!rd_take(r, gguf_vtype_size(kv->type), &p))
            return rd_trunc(r, "kv %lld '%s': %s value", li, key, gguf_vtype_name(kv->type));
        kv->data = p;
        return COMI_OK;
    }
    uint32_t at;
    uint64_t n;
    if (!rd_u32(r, &at)) return rd_trunc(r, "kv %lld '%s': array element type", li, key);
    if (!vtype_valid(at))
        return rd_fail(r, COMI_ERR_FORMAT, "kv %lld '%s': unknown array element type %u", li, key,
                       at);
    if (at == GGUF_T_ARRAY)
        return rd_fail(r, COMI_ERR_UNSUPPORTED, "kv %lld '%s': nested arrays are not supported",
                       li, key);
    if (!rd_u64(r, &n)) return rd_trunc(r, "kv %lld '%s': array length", li, key);
    kv->arr_type = (gguf_vtype)at;
    kv->arr_n = n;
    size_t left = r->size - r->pos;
    if (at == GGUF_T_STRING) {
        /* each element takes at least its 8-byte length */
        if (n > left / 8)
            return rd_fail(r, COMI_ERR_FORMAT,
                           "kv %lld '%s': string array length %llu cannot fit in the %zu bytes "
                           "that remain at offset %zu",
                           li, key, (unsigned long long)n, left, r->pos);
        gguf_str *strs = comi_alloc_array(r->e, (size_t)n, sizeof *strs, "gguf string array");
        if (!strs) return r->e ? r->e->status : COMI_ERR_NOMEM;
        kv->strs = strs;
        kv->data = r->base + r->pos;
        for (uint64_t j = 0; j < n; j++)
            if (!rd_str(r, &strs[j]))
                return rd_trunc(r, "kv %lld '%s': string element %llu of %llu", li, key,
                                (unsigned long long)j, (unsigned long long)n);
        return COMI_OK;
    }
    size_t es = gguf_vtype_size(kv->arr_type);
    if (n > left / es)
        return rd_fail(r, COMI_ERR_FORMAT,
                       "kv %lld '%s': %s array length %llu needs more than the %zu bytes that "
                       "remain at offset %zu",
                       li, key, gguf_vtype_name(kv->arr_type), (unsigned long long)n, left, r->pos);
    kv->data = r->base + r->pos;
    r->pos += (size_t)(n * es); /* fits: checked above */
    return COMI_OK;
}

static comi_status read_kvs(reader *r, gguf_file *f) {
    for (int64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kvs[i];
        gguf_str key;
        uint32_t type;
        long long li = (long long)i;
        if (!rd_str(r, &key)) return rd_trunc(r, "kv %lld of %lld: key", li, (long long)f->n_kv);
        char *k = NULL;
        comi_status st = copy_name(r, &key, &k, "kv", i);
        if (st) return st;
        kv->key = k;
        int64_t prev;
        if (!comi_strmap_put(r->e, &f->kv_index, (uint32_t)i, &prev))
            return r->e ? r->e->status : COMI_ERR_NOMEM;
        if (prev >= 0)
            return rd_fail(r, COMI_ERR_FORMAT, "kv %lld: duplicate key '%s' (first at kv %lld)",
                           li, k, (long long)prev);
        if (!rd_u32(r, &type)) return rd_trunc(r, "kv %lld '%s': value type", li, k);
        if (!vtype_valid(type))
            return rd_fail(r, COMI_ERR_FORMAT, "kv %lld '%s': unknown value type %u", li, k, type);
        kv->type = (gguf_vtype)type;
        st = read_value(r, kv, i);
        if (st) return st;
    }
    const gguf_kv *al = gguf_find_kv(f, "general.alignment");
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (al) {
        uint32_t a;
        if (al->type != GGUF_T_UINT32)
            return rd_fail(r, COMI_ERR_FORMAT, "general.alignment has type %s, expected uint32",
                           gguf_vtype_name(al->type));
        memcpy(&a, al->data, 4);
        if (a == 0 || (a & (a - 1)) != 0)
            return rd_fail(r, COMI_ERR_FORMAT, "general.alignment %u is not a power of two", a);
        f->alignment = a;
    }
    return COMI_OK;
}

static comi_status read_tensor_infos(reader *r, gguf_file *f, uint64_t *offsets) {
    for (int64_t i = 0; i < f->n_tensors; i++) {
        comi_tensor *t = &f->tensors[i];
        long long li = (long long)i;
        gguf_str name;
        if (!rd_str(r, &name))
            return rd_trunc(r, "tensor %lld of %lld: name", li, (long long)f->n_tensors);
        char *nm = NULL;
        comi_status st = copy_name(r, &name, &nm, "tensor", i);
        if (st) return st;
        t->name = nm;
        int64_t prev;
        if (!comi_strmap_put(r->e, &f->tensor_index, (uint32_t)i, &prev))
            return r->e ? r->e->status : COMI_ERR_NOMEM;
        if (prev >= 0)
            return rd_fail(r, COMI_ERR_FORMAT,
                           "tensor %lld: duplicate tensor name '%s' (first at tensor %lld)", li,
                           nm, (long long)prev);

        uint32_t n_dims;
        if (!rd_u32(r, &n_dims)) return rd_trunc(r, "tensor %lld '%s': n_dims", li, nm);
        if (n_dims < 1 || n_dims > COMI_MAX_DIMS)
            return rd_fail(r, COMI_ERR_FORMAT, "tensor %lld '%s': n_dims %u is not in 1..%d", li,
                           nm, n_dims, COMI_MAX_DIMS);
        t->n_dims = (int32_t)n_dims;
        int64_t n_elem = 1;
        for (int d = 0; d < COMI_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < n_dims; d++) {
            uint64_t ne;
            if (!rd_u64(r, &ne)) return rd_trunc(r, "tensor %lld '%s': ne[%u]", li, nm, d);
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                return rd_fail(r, COMI_ERR_FORMAT, "tensor %lld '%s': ne[%u] = %llu is out of range",
                               li, nm, d, (unsigned long long)ne);
            if (__builtin_mul_overflow(n_elem, (int64_t)ne, &n_elem))
                return rd_fail(r, COMI_ERR_FORMAT,
                               "tensor %lld '%s': element count overflows at ne[%u] = %llu", li,
                               nm, d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
        }
        uint32_t type;
        if (!rd_u32(r, &type)) return rd_trunc(r, "tensor %lld '%s': type", li, nm);
        if (type >= COMI_TYPE_COUNT || quant_block_bytes((comi_type)type) == 0)
            return rd_fail(r, COMI_ERR_UNSUPPORTED,
                           "tensor %lld '%s': element type %u is unknown or not supported", li,
                           nm, type);
        t->type = (comi_type)type;
        size_t row;
        if (!quant_row_bytes(t->type, t->ne[0], &row))
            return rd_fail(r, COMI_ERR_FORMAT,
                           "tensor %lld '%s': ne[0] = %lld is not a multiple of the %s block size "
                           "%lld",
                           li, nm, (long long)t->ne[0], quant_type_name(t->type),
                           (long long)quant_block_elems(t->type));
        size_t nb;
        if (!comi_mul_size(row, (size_t)(n_elem / t->ne[0]), &nb))
            return rd_fail(r, COMI_ERR_FORMAT, "tensor %lld '%s': byte size overflows", li, nm);
        t->nbytes = nb;
        if (!rd_u64(r, &offsets[i])) return rd_trunc(r, "tensor %lld '%s': data offset", li, nm);
    }
    return COMI_OK;
}

static comi_status place_tensors(reader *r, gguf_file *f, const uint64_t *offsets) {
    if (f->n_tensors == 0) {
        f->data_offset = r->size;
        return COMI_OK;
    }
    size_t a = f->alignment;
    size_t start = r->pos + (a - r->pos % a) % a; /* pos <= size, cannot overflow */
    if (start > r->size)
        return rd_fail(r, COMI_ERR_FORMAT,
                       "tensor data section would start at offset %zu (after padding to %zu), "
                       "past the end of the file (size %zu)",
                       start, a, r->size);
    f->data_offset = start;
    size_t avail = r->size - start;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        comi_tensor *t = &f->tensors[i];
        uint64_t off = offsets[i];
        if (off % a != 0)
            return rd_fail(r, COMI_ERR_FORMAT,
                           "tensor %lld '%s': data offset %llu is not a multiple of the alignment "
                           "%zu",
                           (long long)i, t->name, (unsigned long long)off, a);
        if (off > avail || t->nbytes > avail - off)
            return rd_fail(r, COMI_ERR_FORMAT,
                           "tensor %lld '%s': data at offset %llu + %zu bytes (%s) ends past the "
                           "%zu bytes of the data section (file size %zu)",
                           (long long)i, t->name, (unsigned long long)off, t->nbytes,
                           quant_type_name(t->type), avail, r->size);
        /* the mapping is page-aligned, so file offsets give address
         * alignment; consumers read F32/F64/I32/I64 data through typed
         * pointers, which needs natural alignment (blocks are read with
         * memcpy) */
        size_t need = quant_block_elems(t->type) == 1 ? quant_block_bytes(t->type) : 1;
        if ((start + off) % need != 0)
            return rd_fail(r, COMI_ERR_FORMAT,
                           "tensor %lld '%s': data at file offset %llu is not aligned to its %zu-byte "
                           "%s elements (general.alignment %zu too small)",
                           (long long)i, t->name, (unsigned long long)(start + off), need,
                           quant_type_name(t->type), a);
        t->data = r->base + start + off;
    }
    return COMI_OK;
}

static comi_status parse(reader *r, gguf_file *f) {
    const uint8_t *magic;
    uint64_t n_tensors, n_kv;
    if (!rd_take(r, 4, &magic)) return rd_trunc(r, "magic");
    if (memcmp(magic, "GGUF", 4) != 0)
        return rd_fail(r, COMI_ERR_FORMAT, "bad magic %02x %02x %02x %02x (expected \"GGUF\")",
                       magic[0], magic[1], magic[2], magic[3]);
    if (!rd_u32(r, &f->version)) return rd_trunc(r, "version");
    if (f->version == 1)
        return rd_fail(r, COMI_ERR_UNSUPPORTED, "GGUF version 1 is not supported (need 2 or 3)");
    if (f->version != 2 && f->version != 3)
        return rd_fail(r, COMI_ERR_FORMAT, "unknown GGUF version %u (0x%08x; need 2 or 3)%s",
                       f->version, f->version,
                       (f->version & 0xffff) == 0 ? ", maybe a big-endian file" : "");
    if (!rd_u64(r, &n_tensors)) return rd_trunc(r, "n_tensors");
    if (!rd_u64(r, &n_kv)) return rd_trunc(r, "n_kv");
    size_t left = r->size - r->pos;
    if (n_tensors > left / GGUF_MIN_TENSOR_BYTES)
        return rd_fail(r, COMI_ERR_FORMAT,
                       "n_tensors %llu is impossible: the %zu bytes after the header hold at most "
                       "%zu tensor infos",
                       (unsigned long long)n_tensors, left, left / GGUF_MIN_TENSOR_BYTES);
    if (n_kv > left / GGUF_MIN_KV_BYTES)
        return rd_fail(r, COMI_ERR_FORMAT,
                       "n_kv %llu is impossible: the %zu bytes after the header hold at most %zu "
                       "key/values",
                       (unsigned long long)n_kv, left, left / GGUF_MIN_KV_BYTES);
    if (n_kv >= UINT32_MAX || n_tensors >= UINT32_MAX) /* the name indexes hold 32-bit ids */
        return rd_fail(r, COMI_ERR_FORMAT, "n_kv %llu / n_tensors %llu: too many entries",
                       (unsigned long long)n_kv, (unsigned long long)n_tensors);
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;
    f->kvs = comi_calloc_array(r->e, (size_t)n_kv, sizeof *f->kvs, "gguf kvs");
    if (!f->kvs) return r->e ? r->e->status : COMI_ERR_NOMEM;
    f->tensors = comi_calloc_array(r->e, (size_t)n_tensors, sizeof *f->tensors, "gguf tensors");
    if (!f->tensors) return r->e ? r->e->status : COMI_ERR_NOMEM;
    comi_strmap_init(&f->kv_index, kv_key, f);
    comi_strmap_init(&f->tensor_index, tensor_key, f);
    if (!comi_strmap_reserve(r->e, &f->kv_index, (size_t)f->n_kv) ||
        !comi_strmap_reserve(r->e, &f->tensor_index, (size_t)f->n_tensors))
        return r->e ? r->e->status : COMI_ERR_NOMEM;

    comi_status st = read_kvs(r, f);
    if (st) return st;
    uint64_t *offsets = comi_calloc_array(r->e, (size_t)n_tensors, sizeof *offsets, "gguf offsets");
    if (!offsets) return r->e ? r->e->status : COMI_ERR_NOMEM;
    st = read_tensor_infos(r, f, offsets);
    if (!st) st = place_tensors(r, f, offsets);
    free(offsets);
    return st;
}

comi_status gguf_open(comi_err *e, const char *path, gguf_file **out) {
    *out = NULL;
    comi_err local;
    if (!e) e = &local;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
    }
    comi_status st = comi_mmap_open(e, path, &f->map);
    if (st) {
        gguf_close(f);
        return st;
    }
    reader r = {e, path, f->map.data, f->map.size, 0, 0};
    st = parse(&r, f);
    if (st) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return COMI_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (int64_t i = 0; f->kvs && i < f->n_kv; i++) {
        free((void *)f->kvs[i].key);
        free((void *)f->kvs[i].strs);
    }
    for (int64_t i = 0; f->tensors && i < f->n_tensors; i++) free((void *)f->tensors[i].name);
    free(f->kvs);
    free(f->tensors);
    comi_strmap_free(&f->kv_index);
    comi_strmap_free(&f->tensor_index);
    comi_mmap_close(&f->map);
    free(f->path);
    free(f);
}

/* ---- queries --------------------------------------------------------------- */

uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}

const char *gguf_path(const gguf_file *f) {
    return f->path;
}

uint32_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}

size_t gguf_data_offset(const gguf_file *f) {
    return f->data_offset;
}

size_t gguf_file_size(const gguf_file *f) {
    return f->map.size;
}

int64_t gguf_n_kv(const gguf_file *f) {
    return f->n_kv;
}

const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_kv ? &f->kvs[i] : NULL;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    int64_t i = comi_strmap_find(&f->kv_index, key, strlen(key));
    return i >= 0 ? &f->kvs[i] : NULL;
}

int64_t gguf_n_tensors(const gguf_file *f) {
    return f->n_tensors;
}

const comi_tensor *gguf_tensor_at(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const comi_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t i = comi_strmap_find(&f->tensor_index, name, strlen(name));
    return i >= 0 ? &f->tensors[i] : NULL;
}

/* Reads element i of a numeric value of type t at p as int64 (false for
 * floats, and for uint64 values above INT64_MAX). */
static bool num_i64(gguf_vtype t, const uint8_t *p, int64_t *out) {
    switch (t) {
    case GGUF_T_UINT8: *out = p[0]; return true;
    case GGUF_T_INT8: *out = (int8_t)p[0]; return true;
    case GGUF_T_BOOL: *out = p[0] != 0; return true;
    case GGUF_T_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return true;
    }
    case GGUF_T_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return true;
    }
    case GGUF_T_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    case GGUF_T_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    case GGUF_T_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
        return true;
    }
    case GGUF_T_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        *out = v;
        return true;
    }
    default: return false;
    }
}

static bool num_f64(gguf_vtype t, const uint8_t *p, double *out) {
    if (t == GGUF_T_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    if (t == GGUF_T_FLOAT64) {
        memcpy(out, p, 8);
        return true;
    }
    if (t == GGUF_T_UINT64) {
        uint64_t v;
        memcpy(&v, p, 8);
        *out = (double)v;
        return true;
    }
    int64_t v;
    if (!num_i64(t, p, &v)) return false;
    *out = (double)v;
    return true;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    int64_t v;
    if (!kv || kv->type == GGUF_T_BOOL || !num_i64(kv->type, kv->data, &v)) return false;
    *out = v;
    return true;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    int64_t v;
    if (!gguf_get_i64(f, key, &v) || v < 0 || v > (int64_t)UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    double v;
    if (!kv || (kv->type != GGUF_T_FLOAT32 && kv->type != GGUF_T_FLOAT64)) return false;
    num_f64(kv->type, kv->data, &v);
    *out = (float)v;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_T_BOOL) return false;
    *out = kv->data[0] != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_T_STRING) return false;
    *out = kv->str;
    return true;
}

bool gguf_get_arr(const gguf_file *f, const char *key, gguf_vtype elem_type, const gguf_kv **out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_T_ARRAY || kv->arr_type != elem_type) return false;
    *out = kv;
    return true;
}

bool gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out) {
    if (kv->type != GGUF_T_ARRAY || i >= kv->arr_n || kv->arr_type == GGUF_T_STRING) return false;
    return num_f64(kv->arr_type, kv->data + i * gguf_vtype_size(kv->arr_type), out);
}

bool gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out) {
    if (kv->type != GGUF_T_ARRAY || i >= kv->arr_n || kv->arr_type == GGUF_T_STRING) return false;
    return num_i64(kv->arr_type, kv->data + i * gguf_vtype_size(kv->arr_type), out);
}

/* ---- writer ----------------------------------------------------------------
 * Mirrors gguf_write_to_file: header, key/values in insertion order, tensor
 * infos with offsets relative to the data section, padding to the
 * alignment after the infos and after every tensor. Each value is encoded
 * (everything after its type field) when it is set, so writing only copies
 * bytes. */

typedef struct wkv {
    char *key;
    gguf_vtype type;
    uint8_t *val; /* (val_len,) encoded value bytes */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    comi_type type;
    int32_t n_dims;
    int64_t ne[COMI_MAX_DIMS];
    size_t nbytes;
    const void *data; /* borrowed or owned (owned != NULL), or NULL with fill */
    void *owned;
    gguf_fill_fn fill;
    void *fill_user;
} wtensor;

struct gguf_writer {
    wkv *kvs;
    int64_t n_kv, cap_kv;
    wtensor *ts;
    int64_t n_t, cap_t;
};

gguf_writer *gguf_writer_new(void) {
    return calloc(1, sizeof(gguf_writer));
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    for (int64_t i = 0; i < w->n_t; i++) {
        free(w->ts[i].name);
        free(w->ts[i].owned);
    }
    free(w->kvs);
    free(w->ts);
    free(w);
}

/* Growable byte buffer used to encode one value. */
typedef struct bbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} bbuf;

static void bb_put(bbuf *b, const void *d, size_t n) {
    if (b->oom || n == 0) return; /* d may be NULL for an empty array */
    if (n > SIZE_MAX - b->n) {
        b->oom = true;
        return;
    }
    if (!COMI_VEC_RESERVE(NULL, b->p, b->cap, b->n + n, "gguf writer")) {
        b->oom = true;
        return;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void bb_u32(bbuf *b, uint32_t v) {
    bb_put(b, &v, 4);
}

static void bb_str(bbuf *b, const char *s, uint64_t len) {
    bb_put(b, &len, 8);
    bb_put(b, s, (size_t)len);
}

/* Stores key -> (type, encoded value), replacing an existing key in place
 * (as gguf_set_* does). Takes ownership of enc->p in every case. */
static comi_status wr_put_kv(comi_err *e, gguf_writer *w, const char *key, gguf_vtype type,
                             bbuf *enc) {
    if (enc->oom) {
        free(enc->p);
        return comi_err_set(e, COMI_ERR_NOMEM, "gguf writer: out of memory encoding '%s'", key);
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].val);
            w->kvs[i].type = type;
            w->kvs[i].val = enc->p;
            w->kvs[i].val_len = enc->n;
            return COMI_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *k = realloc(w->kvs, (size_t)cap * sizeof *k);
        if (!k) {
            free(enc->p);
            return comi_err_set(e, COMI_ERR_NOMEM, "gguf writer: out of memory adding '%s'", key);
        }
        w->kvs = k;
        w->cap_kv = cap;
    }
    char *kc = strdup(key);
    if (!kc) {
        free(enc->p);
        return comi_err_set(e, COMI_ERR_NOMEM, "gguf writer: out of memory adding '%s'", key);
    }
    w->kvs[w->n_kv++] = (wkv){kc, type, enc->p, enc->n};
    return COMI_OK;
}

static comi_status wr_scalar(comi_err *e, gguf_writer *w, const char *key, gguf_vtype t,
                             const void *v) {
    bbuf b = {0};
    bb_put(&b, v, gguf_vtype_size(t));
    return wr_put_kv(e, w, key, t, &b);
}

comi_status gguf_writer_set_u32(comi_err *e, gguf_writer *w, const char *key, uint32_t v) {
    return wr_scalar(e, w, key, GGUF_T_UINT32, &v);
}

comi_status gguf_writer_set_i32(comi_err *e, gguf_writer *w, const char *key, int32_t v) {
    return wr_scalar(e, w, key, GGUF_T_INT32, &v);
}

comi_status gguf_writer_set_f32(comi_err *e, gguf_writer *w, const char *key, float v) {
    return wr_scalar(e, w, key, GGUF_T_FLOAT32, &v);
}

comi_status gguf_writer_set_bool(comi_err *e, gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return wr_scalar(e, w, key, GGUF_T_BOOL, &b);
}

comi_status gguf_writer_set_scalar(comi_err *e, gguf_writer *w, const char *key, gguf_vtype type,
                                   const void *v) {
    if (gguf_vtype_size(type) == 0)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "gguf writer: '%s': %s is not a scalar type",
                            key, gguf_vtype_name(type));
    return wr_scalar(e, w, key, type, v);
}

comi_status gguf_writer_set_str(comi_err *e, gguf_writer *w, const char *key, const char *v) {
    bbuf b = {0};
    bb_str(&b, v, strlen(v));
    return wr_put_kv(e, w, key, GGUF_T_STRING, &b);
}

comi_status gguf_writer_set_arr(comi_err *e, gguf_writer *w, const char *key, gguf_vtype elem_type,
                                const void *data, uint64_t n) {
    size_t es = gguf_vtype_size(elem_type), bytes;
    if (es == 0)
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "gguf writer: '%s': %s arrays need gguf_writer_set_arr_str", key,
                            gguf_vtype_name(elem_type));
    if (n > SIZE_MAX || !comi_mul_size((size_t)n, es, &bytes))
        return comi_err_set(e, COMI_ERR_LIMIT, "gguf writer: '%s': array of %llu too large", key,
                            (unsigned long long)n);
    bbuf b = {0};
    bb_u32(&b, elem_type);
    bb_put(&b, &n, 8);
    bb_put(&b, data, bytes);
    return wr_put_kv(e, w, key, GGUF_T_ARRAY, &b);
}

/* String array from (ptr, len) pairs or NUL-terminated strings. */
static comi_status wr_arr_str(comi_err *e, gguf_writer *w, const char *key, const gguf_str *gs,
                              const char *const *cs, uint64_t n) {
    bbuf b = {0};
    bb_u32(&b, GGUF_T_STRING);
    bb_put(&b, &n, 8);
    for (uint64_t i = 0; i < n && !b.oom; i++) {
        if (gs)
            bb_str(&b, gs[i].ptr, gs[i].len);
        else
            bb_str(&b, cs[i], strlen(cs[i]));
    }
    return wr_put_kv(e, w, key, GGUF_T_ARRAY, &b);
}

comi_status gguf_writer_set_arr_str(comi_err *e, gguf_writer *w, const char *key,
                                    const char *const *strs, uint64_t n) {
    return wr_arr_str(e, w, key, NULL, strs, n);
}

comi_status gguf_writer_copy_kv(comi_err *e, gguf_writer *w, const gguf_kv *kv) {
    if (kv->type == GGUF_T_STRING) {
        bbuf b = {0};
        bb_str(&b, kv->str.ptr, kv->str.len);
        return wr_put_kv(e, w, kv->key, GGUF_T_STRING, &b);
    }
    if (kv->type == GGUF_T_ARRAY) {
        if (kv->arr_type == GGUF_T_STRING) return wr_arr_str(e, w, kv->key, kv->strs, NULL, kv->arr_n);
        return gguf_writer_set_arr(e, w, kv->key, kv->arr_type, kv->data, kv->arr_n);
    }
    return gguf_writer_set_scalar(e, w, kv->key, kv->type, kv->data);
}

static comi_status wr_tensor_info(comi_err *e, gguf_writer *w, const char *name, comi_type type,
                                  int32_t n_dims, const int64_t *ne, wtensor *out) {
    memset(out, 0, sizeof *out);
    if (!quant_type_name(type))
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "gguf writer: tensor '%s': unknown type %d",
                            name, (int)type);
    if (n_dims < 1 || n_dims > COMI_MAX_DIMS)
        return comi_err_set(e, COMI_ERR_INVALID_ARG, "gguf writer: tensor '%s': n_dims %d", name,
                            (int)n_dims);
    size_t rows = 1, row_bytes;
    for (int d = 0; d < COMI_MAX_DIMS; d++) out->ne[d] = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || (d > 0 && !comi_mul_size(rows, (size_t)ne[d], &rows)))
            return comi_err_set(e, COMI_ERR_INVALID_ARG,
                                "gguf writer: tensor '%s': bad ne[%d] = %lld", name, d,
                                (long long)ne[d]);
        out->ne[d] = ne[d];
    }
    if (!quant_row_bytes(type, ne[0], &row_bytes) || !comi_mul_size(rows, row_bytes, &out->nbytes))
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "gguf writer: tensor '%s': ne[0] = %lld does not fit type %s", name,
                            (long long)ne[0], quant_type_name(type));
    for (int64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0)
            return comi_err_set(e, COMI_ERR_INVALID_ARG, "gguf writer: duplicate tensor '%s'", name);
    if (w->n_t == w->cap_t) {
        int64_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *t = realloc(w->ts, (size_t)cap * sizeof *t);
        if (!t) return comi_err_set(e, COMI_ERR_NOMEM, "gguf writer: out of memory");
        w->ts = t;
        w->cap_t = cap;
    }
    out->name = strdup(name);
    if (!out->name) return comi_err_set(e, COMI_ERR_NOMEM, "gguf writer: out of memory");
    out->type = type;
    out->n_dims = n_dims;
    return COMI_OK;
}

comi_status gguf_writer_add_tensor(comi_err *e, gguf_writer *w, const char *name, comi_type type,
                                   int32_t n_dims, const int64_t *ne, const void *data,
                                   size_t nbytes, bool borrow) {
    wtensor t;
    comi_status st = wr_tensor_info(e, w, name, type, n_dims, ne, &t);
    if (st) return st;
    if (nbytes != t.nbytes) {
        free(t.name);
        return comi_err_set(e, COMI_ERR_INVALID_ARG,
                            "gguf writer: tensor '%s': %zu bytes given, %s shape needs %zu", name,
                            nbytes, quant_type_name(type), t.nbytes);
    }
    if (borrow) {
        t.data = data;
    } else {
        t.owned = malloc(nbytes);
        if (!t.owned) {
            free(t.name);
            return comi_err_set(e, COMI_ERR_NOMEM, "gguf writer: out of memory copying '%s'", name);
        }
        memcpy(t.owned, data, nbytes);
        t.data = t.owned;
    }
    w->ts[w->n_t++] = t;
    return COMI_OK;
}

comi_status gguf_writer_add_tensor_fill(comi_err *e, gguf_writer *w, const char *name,
                                        comi_type type, int32_t n_dims, const int64_t *ne,
                                        gguf_fill_fn fill, void *user) {
    wtensor t;
    comi_status st = wr_tensor_info(e, w, name, type, n_dims, ne, &t);
    if (st) return st;
    t.fill = fill;
    t.fill_user = user;
    w->ts[w->n_t++] = t;
    return COMI_OK;
}

static bool wr_pad(FILE *fp, uint64_t *pos, size_t align) {
    static const uint8_t zeros[256];
    while (*pos % align) {
        size_t k = (size_t)(align - *pos % align);
        if (k > sizeof zeros) k = sizeof zeros;
        if (fwrite(zeros, 1, k, fp) != k) return false;
        *pos += k;
    }
    return true;
}

static bool wr_bytes(FILE *fp, uint64_t *pos, const void *d, size_t n) {
    if (n && fwrite(d, 1, n, fp) != n) return false;
    *pos += n;
    return true;
}

/* Streams a fill-callback tensor in chunks of about 16 MiB of rows. */
static comi_status wr_fill(comi_err *e, FILE *fp, uint64_t *pos, const wtensor *t,
                           const char *path) {
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    size_t row_bytes = t->nbytes / (size_t)rows;
    int64_t chunk = (int64_t)((16u << 20) / row_bytes);
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    uint8_t *buf = comi_alloc_array(e, (size_t)chunk, row_bytes, "gguf writer chunk");
    if (!buf) return e ? e->status : COMI_ERR_NOMEM;
    comi_status st = COMI_OK;
    for (int64_t r = 0; r < rows && !st; r += chunk) {
        int64_t r1 = r + chunk < rows ? r + chunk : rows;
        st = t->fill(e, t->fill_user, buf, r, r1);
        if (!st && !wr_bytes(fp, pos, buf, (size_t)(r1 - r) * row_bytes))
            st = comi_err_set(e, COMI_ERR_IO, "%s: write failed in tensor '%s'", path, t->name);
    }
    free(buf);
    return st;
}

comi_status gguf_writer_write(comi_err *e, const gguf_writer *w, const char *path) {
    size_t align = GGUF_DEFAULT_ALIGNMENT;
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        uint32_t a = 0;
        if (w->kvs[i].type == GGUF_T_UINT32) memcpy(&a, w->kvs[i].val, 4);
        if (w->kvs[i].type != GGUF_T_UINT32 || a == 0 || (a & (a - 1)) != 0)
            return comi_err_set(e, COMI_ERR_INVALID_ARG,
                                "gguf writer: general.alignment must be a uint32 power of two");
        align = a;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        comi_status st = comi_err_set(e, COMI_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    comi_status st = COMI_OK;
    uint64_t pos = 0;
    uint32_t version = 3;
    uint64_t n_t = (uint64_t)w->n_t, n_kv = (uint64_t)w->n_kv;
    bool ok = wr_bytes(fp, &pos, "GGUF", 4) && wr_bytes(fp, &pos, &version, 4) &&
              wr_bytes(fp, &pos, &n_t, 8) && wr_bytes(fp, &pos, &n_kv, 8);
    for (int64_t i = 0; ok && i < w->n_kv; i++) {
        const wkv *k = &w->kvs[i];
        uint64_t kl = strlen(k->key);
        uint32_t ty = k->type;
        ok = wr_bytes(fp, &pos, &kl, 8) && wr_bytes(fp, &pos, k->key, (size_t)kl) &&
             wr_bytes(fp, &pos, &ty, 4) && wr_bytes(fp, &pos, k->val, k->val_len);
    }
    uint64_t off = 0;
    for (int64_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        uint64_t nl = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims, ty = (uint32_t)t->type;
        ok = wr_bytes(fp, &pos, &nl, 8) && wr_bytes(fp, &pos, t->name, (size_t)nl) &&
             wr_bytes(fp, &pos, &nd, 4);
        for (int d = 0; ok && d < t->n_dims; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            ok = wr_bytes(fp, &pos, &ne, 8);
        }
        ok = ok && wr_bytes(fp, &pos, &ty, 4) && wr_bytes(fp, &pos, &off, 8);
        off += t->nbytes;
        off += (align - off % align) % align;
    }
    if (ok && w->n_t) ok = wr_pad(fp, &pos, align);
    for (int64_t i = 0; ok && !st && i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        if (t->fill)
            st = wr_fill(e, fp, &pos, t, tmp);
        else
            ok = wr_bytes(fp, &pos, t->data, t->nbytes);
        if (ok && !st) ok = wr_pad(fp, &pos, align); /* data_start is aligned too */
    }
    if (!ok && !st) st = comi_err_set(e, COMI_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (fclose(fp) != 0 && !st)
        st = comi_err_set(e, COMI_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = comi_err_set(e, COMI_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (st) remove(tmp);
    free(tmp);
    return st;
}
