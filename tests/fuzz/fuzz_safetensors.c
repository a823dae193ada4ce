/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors header parser
 * (src/formats/safetensors.c): the input is a whole .safetensors file image.
 * On success every tensor must be found by name, lie inside the input (or
 * an aligned copy of it) and have nbytes == elements x dtype size.
 */
#include "base/common.h"
#include "fuzz.h"
#include "formats/safetensors.h"

int fuzz_safetensors(const uint8_t *data, size_t size) {
    comi_err e;
    comi_err_clear(&e);
    st_model *m = NULL;
    if (st_open_memory(&e, "fuzz", data, size, &m) != COMI_OK) {
        FUZZ_CHECK(m == NULL && e.msg[0] != '\0');
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < st_n_tensors(m); i++) {
        const comi_tensor *t = st_tensor_at(m, i);
        FUZZ_CHECK(t && st_find_tensor(m, t->name) == t);
        FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= COMI_MAX_DIMS);
        FUZZ_CHECK(st_tensor_dtype(m, i) != NULL);
        size_t n = 1;
        for (int d = 0; d < COMI_MAX_DIMS; d++) {
            FUZZ_CHECK(t->ne[d] >= 0);
            n *= (size_t)t->ne[d];
        }
        size_t esize = n ? t->nbytes / n : 0;
        FUZZ_CHECK(n == 0 ? t->nbytes == 0
                          : (t->nbytes % n == 0 &&
                             (esize == 1 || esize == 2 || esize == 4 || esize == 8)));
        if (t->nbytes) {
            const uint8_t *p = t->data;
            sink ^= p[0];
            sink ^= p[t->nbytes - 1];
        }
        const comi_tensor *w = NULL;
        if (st_get_weight(&e, m, t->name, &w) == COMI_OK)
            FUZZ_CHECK(w == t && (t->type == COMI_TYPE_F32 || t->type == COMI_TYPE_F16 ||
                                  t->type == COMI_TYPE_BF16));
        else
            FUZZ_CHECK(w == NULL);
    }
    (void)sink;
    st_close(m);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_safetensors(data, size);
}
#endif
