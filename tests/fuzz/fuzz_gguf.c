/*
 * fuzz_gguf.c — libFuzzer target for the GGUF reader (src/formats/gguf.c): the
 * input is a whole .gguf file image, written to an anonymous memfd and
 * opened through /proc/self/fd because gguf_open takes a path. On success
 * every key, string and tensor must be readable, found by name and inside
 * the file.
 */
#include "base/common.h"
#include "fuzz.h"
#include "formats/gguf.h"

#include <sys/mman.h>
#include <unistd.h>

static void touch_kv(const gguf_file *f, const gguf_kv *kv) {
    volatile uint8_t sink = 0;
    FUZZ_CHECK(kv && kv->key && gguf_find_kv(f, kv->key) == kv);
    if (kv->type == GGUF_T_STRING) {
        if (kv->str.len) sink ^= (uint8_t)kv->str.ptr[kv->str.len - 1];
    } else if (kv->type == GGUF_T_ARRAY) {
        if (kv->arr_type == GGUF_T_STRING) {
            for (uint64_t i = 0; i < kv->arr_n; i++)
                if (kv->strs[i].len) sink ^= (uint8_t)kv->strs[i].ptr[kv->strs[i].len - 1];
        } else if (kv->arr_n) {
            double d;
            int64_t v;
            (void)gguf_arr_f64(kv, 0, &d);
            (void)gguf_arr_f64(kv, kv->arr_n - 1, &d);
            (void)gguf_arr_i64(kv, kv->arr_n - 1, &v);
            FUZZ_CHECK(!gguf_arr_i64(kv, kv->arr_n, &v));
        }
    } else {
        uint32_t u;
        int64_t i;
        float x;
        bool b;
        gguf_str s;
        (void)gguf_get_u32(f, kv->key, &u);
        (void)gguf_get_i64(f, kv->key, &i);
        (void)gguf_get_f32(f, kv->key, &x);
        (void)gguf_get_bool(f, kv->key, &b);
        FUZZ_CHECK(!gguf_get_str(f, kv->key, &s));
    }
    (void)sink;
}

int fuzz_gguf(const uint8_t *data, size_t size) {
    char path[64];
    size_t done = 0;
    int fd = fuzz_memfd(data, size, "fuzz-gguf", path, sizeof path, &done);
    if (fd < 0) return 0;
    comi_err e;
    comi_err_clear(&e);
    gguf_file *f = NULL;
    comi_status st = done == size ? gguf_open(&e, path, &f) : COMI_ERR_IO;
    close(fd);
    if (st != COMI_OK) {
        FUZZ_CHECK(f == NULL && (done != size || e.msg[0] != '\0'));
        return 0;
    }
    FUZZ_CHECK(gguf_version(f) == 2 || gguf_version(f) == 3);
    FUZZ_CHECK(gguf_file_size(f) == size && gguf_data_offset(f) <= size);
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        touch_kv(f, gguf_kv_at(f, i));
    FUZZ_CHECK(gguf_kv_at(f, gguf_n_kv(f)) == NULL);
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const comi_tensor *t = gguf_tensor_at(f, i);
        FUZZ_CHECK(t && gguf_find_tensor(f, t->name) == t);
        FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= COMI_MAX_DIMS);
        FUZZ_CHECK(t->nbytes <= size - gguf_data_offset(f));
        if (t->nbytes) {
            const uint8_t *p = t->data;
            sink ^= p[0];
            sink ^= p[t->nbytes - 1];
        }
    }
    (void)sink;
    gguf_close(f);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_gguf(data, size);
}
#endif
