/*
 * safetensors.h — reader for Hugging Face safetensors checkpoints: a single
 * `.safetensors` file, or a model directory holding `model.safetensors` or a
 * sharded `model.safetensors.index.json` + shard files. Files are mapped
 * read-only; tensors point into the mappings.
 *
 * File format: u64 little-endian header length N, N bytes of JSON (an object
 * mapping tensor name -> {"dtype", "shape", "data_offsets": [begin, end]},
 * plus an optional "__metadata__" object), then the data section; offsets
 * are relative to the start of the data section.
 *
 * Dtypes: every dtype of the safetensors spec (F64 F32 F16 BF16 I64 I32 I16
 * I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2) is accepted and size-checked, so a
 * checkpoint carrying an integer buffer (e.g. position_ids) still opens.
 * comi_tensor.type is the matching comi_type where one exists; the unsigned,
 * bool and 8-bit float dtypes have none and get COMI_TYPE_COUNT. Only F32,
 * F16 and BF16 are usable as weights: st_get_weight rejects the rest with
 * COMI_ERR_UNSUPPORTED naming the tensor and dtype. Any other dtype string
 * fails the open with COMI_ERR_UNSUPPORTED.
 *
 * Shapes: the JSON shape is outermost first (PyTorch order); comi_tensor.ne
 * is reversed, so ne[0] is the last (contiguous) dimension. At most
 * COMI_MAX_DIMS dimensions (more: COMI_ERR_UNSUPPORTED). A scalar (shape [])
 * becomes n_dims = 1, ne[0] = 1.
 *
 * Checks: header length within the file and <= 100 MB, header a JSON object
 * without duplicate keys, every entry's fields present and of the right JSON
 * type, 0 <= begin <= end <= data section size, end - begin ==
 * product(shape) * dtype size (all with overflow checks), no two tensors'
 * byte ranges overlapping, tensor names unique across shards, shard names
 * from the index relative and without "..". Failures return COMI_ERR_FORMAT
 * (or _IO / _UNSUPPORTED / _LIMIT) with a message naming the file, the
 * tensor and the field.
 *
 * Alignment: writers since 2023 pad the header so data is aligned; for older
 * files a tensor whose data is not aligned to its element size is copied
 * once into an aligned heap buffer owned by the model, so comi_tensor.data
 * is always aligned for its element type.
 *
 * Thread rules: an st_model is immutable after open and may be read from any
 * number of threads.
 */
#ifndef COMI_SAFETENSORS_H
#define COMI_SAFETENSORS_H

#include "base/common.h"
#include "formats/tensor.h"

#include <stdint.h>

typedef struct st_model st_model;

/* Largest accepted JSON header (the reference implementation's limit). */
#define ST_MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)

/* Opens one .safetensors file. Owner: the caller, st_close. */
comi_status st_open_file(comi_err *e, const char *path, st_model **out);

/* Opens a Hugging Face model directory: `model.safetensors.index.json`
 * (sharded; each shard file mapped once) if present, else
 * `model.safetensors`. A path naming a regular file is opened as with
 * st_open_file. Owner: the caller, st_close. */
comi_status st_open_dir(comi_err *e, const char *dir, st_model **out);

/* Parses safetensors bytes already in memory (tests and fuzzers). `name` is
 * used in messages. The bytes are borrowed: they must outlive the model. */
comi_status st_open_memory(comi_err *e, const char *name, const void *data, size_t size,
                           st_model **out);

/* st_close(NULL) is a no-op. Invalidates every tensor pointer. */
void st_close(st_model *m);

/* Tensors are listed shard by shard (shards in file-name order), each in
 * data-offset order. */
int64_t st_n_tensors(const st_model *m);
const comi_tensor *st_tensor_at(const st_model *m, int64_t i); /* NULL if out of range */
/* The safetensors dtype string of tensor i ("F16", "I64", ...). */
const char *st_tensor_dtype(const st_model *m, int64_t i);
/* Lookup by exact name, O(log n); NULL if absent. */
const comi_tensor *st_find_tensor(const st_model *m, const char *name);

/* The tensor `name` for use as a weight: COMI_ERR_FORMAT "missing tensor"
 * when absent, COMI_ERR_UNSUPPORTED when its dtype is not F32/F16/BF16. */
comi_status st_get_weight(comi_err *e, const st_model *m, const char *name,
                          const comi_tensor **out);

/* Number of shard files (1 for a single file). */
int32_t st_n_shards(const st_model *m);

#endif /* COMI_SAFETENSORS_H */
