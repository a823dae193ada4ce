/*
 * fuzz_model_hf.c — libFuzzer target for the model loader on Hugging Face
 * directories (src/runtime/model.c over src/formats/hfconfig.c and src/formats/safetensors.c).
 * Input: u16 little-endian length L, L bytes of config.json, then the
 * bytes of model.safetensors; both are written into a scratch directory
 * (one per process) that comi_model_load opens. A model that loads runs
 * the checks of fuzz_model.h.
 */
#include "comi.h"
#include "base/common.h"
#include "fuzz.h"
#include "fuzz_model.h"

#include <ftw.h>
#include <unistd.h>

static char model_hf_dir[64];

static int model_hf_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void model_hf_cleanup(void) {
    if (model_hf_dir[0]) nftw(model_hf_dir, model_hf_rm, 8, FTW_DEPTH | FTW_PHYS);
}

int fuzz_model_hf(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    if (!model_hf_dir[0]) {
        snprintf(model_hf_dir, sizeof model_hf_dir, "%s/comi-fuzz-hf-XXXXXX", fuzz_scratch_base());
        FUZZ_CHECK(mkdtemp(model_hf_dir) != NULL);
        atexit(model_hf_cleanup);
    }
    size_t clen = (size_t)data[0] | ((size_t)data[1] << 8);
    if (clen > size - 2) clen = size - 2;
    char path[128];
    comi_err e;
    snprintf(path, sizeof path, "%s/config.json", model_hf_dir);
    FUZZ_CHECK(comi_write_file(&e, path, data + 2, clen) == COMI_OK);
    snprintf(path, sizeof path, "%s/model.safetensors", model_hf_dir);
    FUZZ_CHECK(comi_write_file(&e, path, data + 2 + clen, size - 2 - clen) == COMI_OK);

    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 1;
    comi_ctx *ctx = comi_ctx_new(&cp);
    FUZZ_CHECK(ctx != NULL);
    comi_model *m = NULL;
    if (comi_model_load(ctx, model_hf_dir, NULL, &m) != COMI_OK) {
        FUZZ_CHECK(m == NULL && comi_errmsg(ctx)[0] != '\0');
    } else {
        fuzz_exercise_model(ctx, m);
        comi_model_free(m);
    }
    comi_ctx_free(ctx);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_model_hf(data, size);
}
#endif
