/*
 * fuzz_st_index.c — libFuzzer target for sharded safetensors directories
 * (src/formats/safetensors.c, st_open_dir): the input is written as
 * model.safetensors.index.json into a scratch directory that holds two
 * small valid shards, a.safetensors (tensors x, y) and b.safetensors
 * (tensor z), created once per process. On success every weight_map
 * entry must resolve.
 */
#include "base/common.h"
#include "fuzz.h"
#include "formats/safetensors.h"

#include <ftw.h>
#include <string.h>
#include <unistd.h>

static char st_index_dir[64];

static int st_index_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void st_index_cleanup(void) {
    if (st_index_dir[0]) nftw(st_index_dir, st_index_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static void st_index_write_shard(const char *name, const char *hdr, size_t data_len) {
    char path[128];
    uint8_t buf[512] = {0};
    size_t hl = strlen(hdr);
    FUZZ_CHECK(8 + hl + data_len <= sizeof buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    snprintf(path, sizeof path, "%s/%s", st_index_dir, name);
    comi_err e;
    FUZZ_CHECK(comi_write_file(&e, path, buf, 8 + hl + data_len) == COMI_OK);
}

static void st_index_setup(void) {
    if (st_index_dir[0]) return;
    snprintf(st_index_dir, sizeof st_index_dir, "%s/comi-fuzz-index-XXXXXX", fuzz_scratch_base());
    FUZZ_CHECK(mkdtemp(st_index_dir) != NULL);
    atexit(st_index_cleanup);
    st_index_write_shard("a.safetensors",
                         "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                         "\"y\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}",
                         16);
    st_index_write_shard("b.safetensors",
                         "{\"z\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", 6);
}

int fuzz_st_index(const uint8_t *data, size_t size) {
    st_index_setup();
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", st_index_dir);
    comi_err e;
    comi_err_clear(&e);
    FUZZ_CHECK(comi_write_file(&e, path, data, size) == COMI_OK);
    st_model *m = NULL;
    if (st_open_dir(&e, st_index_dir, &m) != COMI_OK) {
        FUZZ_CHECK(m == NULL && e.msg[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(st_n_shards(m) >= 1 && st_n_shards(m) <= 2);
    FUZZ_CHECK(st_n_tensors(m) >= 1 && st_n_tensors(m) <= 3);
    for (int64_t i = 0; i < st_n_tensors(m); i++) {
        const comi_tensor *t = st_tensor_at(m, i);
        FUZZ_CHECK(st_find_tensor(m, t->name) == t);
    }
    st_close(m);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_st_index(data, size);
}
#endif
