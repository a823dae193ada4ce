/*
 * fuzz.h — shared pieces of the libFuzzer targets in tests/fuzz/.
 *
 * Each fuzz_<name>.c defines `int fuzz_<name>(const uint8_t *, size_t)`
 * and, unless FUZZ_REPLAY is defined, the libFuzzer entry point calling
 * it. tests/test_fuzz_replay.c includes every target with FUZZ_REPLAY set
 * and feeds them the committed corpora and crashers under the normal
 * build, so `make test` replays them without clang or libFuzzer.
 */
#ifndef COMI_FUZZ_H
#define COMI_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int fuzz_safetensors(const uint8_t *data, size_t size);
int fuzz_hfconfig(const uint8_t *data, size_t size);
int fuzz_model_gguf(const uint8_t *data, size_t size);
int fuzz_model_hf(const uint8_t *data, size_t size);
int fuzz_gguf(const uint8_t *data, size_t size);
int fuzz_tokenizer(const uint8_t *data, size_t size);
int fuzz_quant(const uint8_t *data, size_t size);
int fuzz_st_index(const uint8_t *data, size_t size);
int fuzz_jsonl(const uint8_t *data, size_t size);
int fuzz_text(const uint8_t *data, size_t size);
int fuzz_tokenizer_json(const uint8_t *data, size_t size);
int fuzz_request(const uint8_t *data, size_t size);
int fuzz_answer(const uint8_t *data, size_t size);
int fuzz_merge(const uint8_t *data, size_t size);
int fuzz_chat(const uint8_t *data, size_t size);

/* Puts the input in an anonymous in-memory file (for parsers that take a
 * path) and writes its /proc/self/fd path into path. Returns the fd (the
 * caller closes it) or -1; *done is the number of bytes written, which is
 * size unless a write failed. */
static inline int fuzz_memfd(const uint8_t *data, size_t size, const char *name, char *path,
                             size_t path_cap, size_t *done) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    *done = 0;
    if (fd < 0) return -1;
    while (*done < size) {
        ssize_t w = write(fd, data + *done, size - *done);
        if (w <= 0) break;
        *done += (size_t)w;
    }
    snprintf(path, path_cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* A directory for per-process scratch files: /dev/shm (tmpfs) when it is
 * usable, because rewriting a file on ext4 flushes it on close (auto_da_alloc)
 * and would cut the execution rate a hundredfold; else /tmp. */
static inline const char *fuzz_scratch_base(void) {
    FILE *f = fopen("/dev/shm/.comi-fuzz-probe", "w");
    if (!f) return "/tmp";
    fclose(f);
    remove("/dev/shm/.comi-fuzz-probe");
    return "/dev/shm";
}

/* An invariant that must hold after a successful parse: a violation is a
 * finding, so abort and let libFuzzer (or the replay test) report it. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif /* COMI_FUZZ_H */
