/*
 * gguf.h — GGUF v2/v3 reader (read-only mmap, every count, length and
 * offset checked against the file) and writer.
 *
 * Format: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv
 * key/value pairs, n_tensors tensor infos, padding to general.alignment
 * (default 32), tensor data. All little-endian.
 */
#ifndef COMI_GGUF_H
#define COMI_GGUF_H

#include "base/common.h"
#include "formats/tensor.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum gguf_vtype {
    GGUF_T_UINT8 = 0,
    GGUF_T_INT8 = 1,
    GGUF_T_UINT16 = 2,
    GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4,
    GGUF_T_INT32 = 5,
    GGUF_T_FLOAT32 = 6,
    GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8,
    GGUF_T_ARRAY = 9,
    GGUF_T_UINT64 = 10,
    GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12
} gguf_vtype;

/* A string inside the mapping: not NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

/* One metadata key/value. For scalars, `data` points at the value bytes in
 * the mapping (possibly unaligned: read with memcpy). For arrays, arr_type
 * and arr_n describe the elements; numeric elements start at `data`, string
 * elements are listed in `strs` (arr_n entries, allocated by the reader). */
typedef struct gguf_kv {
    const char *key; /* NUL-terminated copy owned by the file object */
    gguf_vtype type;
    gguf_vtype arr_type;
    uint64_t arr_n;
    const uint8_t *data;
    gguf_str str;        /* the value when type == GGUF_T_STRING */
    const gguf_str *strs; /* the elements when type == ARRAY of STRING */
} gguf_kv;

typedef struct gguf_file gguf_file;

/* Opens and validates a GGUF file (the file object owns the mapping; every
 * pointer it hands out lives until gguf_close; a file object is read-only
 * after open and may be shared by threads). Fails with COMI_ERR_IO/COMI_ERR_FORMAT/
 * COMI_ERR_UNSUPPORTED and a message naming the file and the offending field
 * (bad magic, version, counts, string lengths past the end, unknown tensor
 * types, out-of-file or misaligned tensor data, duplicate names). */
comi_status gguf_open(comi_err *e, const char *path, gguf_file **out);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
const char *gguf_path(const gguf_file *f);
/* general.alignment (default 32), the file offset where tensor data starts
 * (the file size when there are no tensors), and the file size. */
uint32_t gguf_alignment(const gguf_file *f);
size_t gguf_data_offset(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);

/* Bytes of one scalar of type t (0 for STRING, ARRAY and unknown types) and
 * its name as the GGUF spec writes it ("uint32", "string", ...). */
size_t gguf_vtype_size(gguf_vtype t);
const char *gguf_vtype_name(gguf_vtype t);

int64_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key); /* NULL if absent */

/* Typed scalar getters. Integer getters accept any integer type whose value
 * fits; float getters accept FLOAT32/FLOAT64. Return false when the key is
 * absent or of an incompatible type or value (out is then untouched). */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* The array kv `key` when its elements have type elem_type (e.g.
 * tokenizer.ggml.tokens with GGUF_T_STRING: then (*out)->strs[0..arr_n)). */
bool gguf_get_arr(const gguf_file *f, const char *key, gguf_vtype elem_type, const gguf_kv **out);

/* Element i of a numeric array kv converted to double / int64 (false when
 * out of range or not numeric). */
bool gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out);
bool gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out);

int64_t gguf_n_tensors(const gguf_file *f);
const comi_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
const comi_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */

/* ---- writer ------------------------------------------------------------ */

typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
/* Metadata setters copy key and value; NULL-safe free. The writer returns
 * COMI_ERR_INVALID_ARG for bad tensor shapes/sizes, duplicate tensor names,
 * or a general.alignment that is not a uint32 power of two. */
comi_status gguf_writer_set_u32(comi_err *e, gguf_writer *w, const char *key, uint32_t v);
comi_status gguf_writer_set_i32(comi_err *e, gguf_writer *w, const char *key, int32_t v);
comi_status gguf_writer_set_f32(comi_err *e, gguf_writer *w, const char *key, float v);
comi_status gguf_writer_set_bool(comi_err *e, gguf_writer *w, const char *key, bool v);
comi_status gguf_writer_set_str(comi_err *e, gguf_writer *w, const char *key, const char *v);
/* Copies a key/value (any type, arrays included) from an open file. */
comi_status gguf_writer_copy_kv(comi_err *e, gguf_writer *w, const gguf_kv *kv);
/* Numeric array (elem_type a numeric gguf_vtype, n elements at data) and
 * string array. */
comi_status gguf_writer_set_arr(comi_err *e, gguf_writer *w, const char *key, gguf_vtype elem_type,
                                const void *data, uint64_t n);
comi_status gguf_writer_set_arr_str(comi_err *e, gguf_writer *w, const char *key,
                                    const char *const *strs, uint64_t n);
/* Adds a tensor; data (nbytes, which must match type and ne) is copied
 * unless `borrow` is true, in which case it must stay valid until write. */
comi_status gguf_writer_add_tensor(comi_err *e, gguf_writer *w, const char *name, comi_type type,
                                   int32_t n_dims, const int64_t *ne, const void *data,
                                   size_t nbytes, bool borrow);
/* A tensor whose data is produced while the file is written (for files
 * larger than memory): fill writes rows [r0, r1) of the tensor, each
 * quant_row_bytes(type, ne[0]) bytes, contiguously at dst; rows count over
 * ne[1] * ne[2] * ne[3]. Called in row order, chunks of about 16 MiB. */
typedef comi_status (*gguf_fill_fn)(comi_err *e, void *user, void *dst, int64_t r0, int64_t r1);
comi_status gguf_writer_add_tensor_fill(comi_err *e, gguf_writer *w, const char *name,
                                        comi_type type, int32_t n_dims, const int64_t *ne,
                                        gguf_fill_fn fill, void *user);
/* Any scalar type (value bytes at v, gguf_vtype_size(type) of them). */
comi_status gguf_writer_set_scalar(comi_err *e, gguf_writer *w, const char *key, gguf_vtype type,
                                   const void *v);
/* Writes a GGUF v3 file (alignment 32 unless general.alignment was set):
 * kvs in the order first set (setting a key again replaces its value in
 * place), tensors in the order added, each tensor's data aligned. Written
 * to PATH.tmp, then renamed over path. */
comi_status gguf_writer_write(comi_err *e, const gguf_writer *w, const char *path);

#endif /* COMI_GGUF_H */
