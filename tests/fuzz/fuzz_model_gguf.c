/*
 * fuzz_model_gguf.c — libFuzzer target for the model loader on GGUF input
 * (src/runtime/model.c over src/formats/gguf.c): the input is a whole .gguf file image
 * (memfd, opened through /proc/self/fd). A model that loads runs the
 * checks of fuzz_model.h (tensor listing, 2-token forward pass).
 */
#include "comi.h"
#include "fuzz.h"
#include "fuzz_model.h"

#include <sys/mman.h>
#include <unistd.h>

int fuzz_model_gguf(const uint8_t *data, size_t size) {
    char path[64];
    size_t done = 0;
    int fd = fuzz_memfd(data, size, "fuzz-model", path, sizeof path, &done);
    if (fd < 0) return 0;
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 1;
    comi_ctx *ctx = comi_ctx_new(&cp);
    FUZZ_CHECK(ctx != NULL);
    comi_model *m = NULL;
    comi_status st = done == size ? comi_model_load(ctx, path, NULL, &m) : COMI_ERR_IO;
    close(fd);
    if (st != COMI_OK) {
        FUZZ_CHECK(m == NULL && (done != size || comi_errmsg(ctx)[0] != '\0'));
        comi_ctx_free(ctx);
        return 0;
    }
    fuzz_exercise_model(ctx, m);
    comi_model_free(m);
    comi_ctx_free(ctx);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_model_gguf(data, size);
}
#endif
