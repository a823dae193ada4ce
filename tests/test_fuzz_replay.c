/* test_fuzz_replay.c — replays every committed fuzz corpus file and
 * crasher (tests/fuzz/corpus/<target>/, tests/fuzz/crashes/<target>/)
 * through the fuzz targets' entry functions in the ordinary build, so
 * `make test` (and `make SAN=address,undefined test`) keeps them fixed.
 * A target's invariant violation aborts the program (reported as a failure
 * by tests/run.sh); a passing target prints one PASS line with its count.
 * The fuzz directory is $COMI_FUZZ_DIR, default tests/fuzz (run from the
 * repository root, as make test does). $COMI_FUZZ_ONLY, when set, names the
 * one target to replay (scripts/fuzz_coverage.sh measures each target's
 * line coverage that way). */
#define FUZZ_REPLAY 1
#include "fuzz/fuzz_gguf.c"
#include "fuzz/fuzz_hfconfig.c"
#include "fuzz/fuzz_jsonl.c"
#include "fuzz/fuzz_model_gguf.c"
#include "fuzz/fuzz_model_hf.c"
#include "fuzz/fuzz_quant.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_tokenizer.c"
#include "fuzz/fuzz_st_index.c"
#include "fuzz/fuzz_text.c"
#include "fuzz/fuzz_tokenizer_json.c"
#include "fuzz/fuzz_request.c"
#include "fuzz/fuzz_answer.c"
#include "fuzz/fuzz_merge.c"
#include "fuzz/fuzz_chat.c"
#include "test.h"

#include <dirent.h>

typedef struct fuzz_target {
    const char *name;
    int (*fn)(const uint8_t *data, size_t size);
} fuzz_target;

static const fuzz_target targets[] = {
    {"gguf", fuzz_gguf},
    {"hfconfig", fuzz_hfconfig},
    {"jsonl", fuzz_jsonl},
    {"model_gguf", fuzz_model_gguf},
    {"model_hf", fuzz_model_hf},
    {"quant", fuzz_quant},
    {"safetensors", fuzz_safetensors},
    {"tokenizer", fuzz_tokenizer},
    {"st_index", fuzz_st_index},
    {"text", fuzz_text},
    {"tokenizer_json", fuzz_tokenizer_json},
    {"request", fuzz_request},
    {"answer", fuzz_answer},
    {"merge", fuzz_merge},
    {"chat", fuzz_chat},
};

/* Feeds every regular file of dir to fn; returns the number fed, or -1
 * when the directory cannot be opened. */
static long replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t)) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        size_t len = 0;
        uint8_t *buf = test_read_file(path, &len);
        if (!buf) continue;
        /* An exact-size copy, so reads past the end are caught by ASan as
         * they would be under libFuzzer. */
        uint8_t *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        free(buf);
        fn(exact, len);
        free(exact);
        n++;
    }
    closedir(d);
    return n;
}

int main(void) {
    const char *root = getenv("COMI_FUZZ_DIR");
    if (!root || !*root) root = "tests/fuzz";
    const char *only = getenv("COMI_FUZZ_ONLY");
    bool found = !only || !*only;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        if (only && *only && strcmp(only, targets[i].name)) continue;
        found = true;
        char dir[512], name[128];
        snprintf(dir, sizeof dir, "%s/corpus/%s", root, targets[i].name);
        long nc = replay_dir(dir, targets[i].fn);
        snprintf(dir, sizeof dir, "%s/crashes/%s", root, targets[i].name);
        long nx = replay_dir(dir, targets[i].fn);
        snprintf(name, sizeof name, "fuzz_replay_%s", targets[i].name);
        test_check(name, nc > 0, "no corpus files in %s/corpus/%s", root, targets[i].name);
        printf("  %s: %ld corpus files, %ld crashers replayed\n", targets[i].name, nc,
               nx < 0 ? 0 : nx);
    }
    test_check("fuzz_replay_target_known", found, "COMI_FUZZ_ONLY=%s names no target", only);
    return test_exit();
}
