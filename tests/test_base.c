/*
 * test_base.c — the shared base modules: UTF-8 decoding/validation/repair
 * (src/base/utf8.c) against a decoder written from RFC 3629 here, the
 * string hash map (src/base/strmap.c) against a linear scan, and the
 * growable-array helper (src/base/vec.h) with its overflow check.
 */
#include "test.h"

#include "base/common.h"
#include "base/strmap.h"
#include "base/utf8.h"
#include "base/vec.h"
#include "comi.h"

#include <stddef.h>

/* RFC 3629 by the table of its section 4: the length of the well-formed
 * sequence at p (1..4) or 0. */
static size_t ref_decode(const uint8_t *p, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = p[0];
    if (c < 0x80) return *cp = c, 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    uint32_t v = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < len; i++)
        v = v << 6 | (p[i] & 0x3F);
    *cp = v;
    return len;
}

static void test_utf8(void) {
    /* every 1-, 2- and 3-byte input, and 4-byte inputs over the lead bytes
     * with a spread of continuation bytes */
    size_t bad = 0, checked = 0;
    uint8_t b[4];
    for (uint32_t x = 0; x < (1u << 24); x++) {
        b[0] = (uint8_t)(x >> 16), b[1] = (uint8_t)(x >> 8), b[2] = (uint8_t)x;
        for (size_t n = 1; n <= 3; n++) {
            /* n bytes: each distinct n-byte prefix once */
            if ((n == 1 && (x & 0xFFFFu)) || (n == 2 && (x & 0xFFu))) continue;
            uint32_t c1 = 0, c2 = 0;
            size_t l1 = comi_utf8_decode((const char *)b, n, &c1), l2 = ref_decode(b, n, &c2);
            checked++;
            if (l1 != l2 || (l1 && c1 != c2)) {
                if (bad++ < 3)
                    printf("# %02x %02x %02x (n %zu): decode %zu U+%X, reference %zu U+%X\n", b[0],
                           b[1], b[2], n, l1, c1, l2, c2);
            }
        }
    }
    static const uint8_t conts[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    for (uint32_t lead = 0xF0; lead <= 0xFF; lead++)
        for (size_t i = 0; i < sizeof conts; i++)
            for (size_t j = 0; j < sizeof conts; j++)
                for (size_t k = 0; k < sizeof conts; k++) {
                    uint8_t q[4] = {(uint8_t)lead, conts[i], conts[j], conts[k]};
                    uint32_t c1 = 0, c2 = 0;
                    size_t l1 = comi_utf8_decode((const char *)q, 4, &c1), l2 = ref_decode(q, 4, &c2);
                    checked++;
                    if (l1 != l2 || (l1 && c1 != c2)) bad++;
                }
    test_check("utf8_decode_matches_rfc3629", bad == 0, "%zu of %zu inputs differ", bad, checked);

    /* encode -> decode round trip of every scalar value */
    size_t rt_bad = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char out[4];
        uint32_t back = 0;
        size_t n = comi_utf8_put(cp, out);
        if (comi_utf8_decode(out, n, &back) != n || back != cp) rt_bad++;
    }
    test_check("utf8_put_roundtrip", rt_bad == 0, "%zu code points differ", rt_bad);

    const char mixed[] = "ok \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xC0\x80 \xED\xA0\x80 end\xE2\x82";
    size_t mlen = sizeof mixed - 1;
    test_check("utf8_first_invalid", comi_utf8_first_invalid(mixed, mlen) == 15 &&
                                         comi_utf8_first_invalid(mixed, 14) == 14 &&
                                         comi_utf8_first_invalid("", 0) == 0,
               "got %zu", comi_utf8_first_invalid(mixed, mlen));
    char *fixed = comi_utf8_lossy(mixed, mlen);
    const char want[] = "ok \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBD\xEF\xBF\xBD "
                        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end\xEF\xBF\xBD\xEF\xBF\xBD";
    test_check("utf8_lossy", fixed && !strcmp(fixed, want), "got '%s'", fixed ? fixed : "(null)");
    free(fixed);
    char *nul = comi_utf8_lossy("a\0b", 3);
    test_check("utf8_lossy_nul", nul && !strcmp(nul, "a\xEF\xBF\xBD" "b"), "NUL not replaced");
    free(nul);
    char *same = comi_utf8_lossy(mixed, 14);
    test_check("utf8_lossy_valid_unchanged", same && strlen(same) == 14 && !memcmp(same, mixed, 14),
               "valid text changed");
    free(same);
}

/* strmap keys: fixed-width decimal strings in one pool */
typedef struct pool {
    char buf[20000][12];
} pool;

static const char *pool_key(const void *owner, uint32_t id, size_t *len) {
    const char *k = ((const pool *)owner)->buf[id];
    *len = strlen(k);
    return k;
}

static void test_strmap(void) {
    static pool p;
    enum { N = 20000 };
    comi_strmap m;
    comi_strmap_init(&m, pool_key, &p);
    test_check("strmap_empty_find", comi_strmap_find(&m, "x", 1) == -1, "found a key in an empty map");
    bool ok = true;
    for (uint32_t i = 0; i < N; i++) {
        snprintf(p.buf[i], sizeof p.buf[i], "k%u", (i * 7919u) % N);
        int64_t prev = 0;
        ok &= comi_strmap_put(NULL, &m, i, &prev) && prev == -1;
    }
    test_check("strmap_put_grows", ok && m.n == N && m.cap >= 2 * N, "n %zu cap %zu", m.n, m.cap);
    size_t wrong = 0;
    for (uint32_t i = 0; i < N; i++)
        if (comi_strmap_find(&m, p.buf[i], strlen(p.buf[i])) != (int64_t)i) wrong++;
    test_check("strmap_find_all", wrong == 0, "%zu keys not found at their id", wrong);
    test_check("strmap_find_missing",
               comi_strmap_find(&m, "k20000", 6) == -1 && comi_strmap_find(&m, "k1", 1) == -1 &&
                   comi_strmap_find(&m, "", 0) == -1,
               "found a key never added");
    /* a key equal to one present: the later id wins, the earlier is reported */
    uint32_t dup = 0;
    int64_t first = comi_strmap_find(&m, "k7919", 5);
    snprintf(p.buf[dup], sizeof p.buf[dup], "k7919");
    int64_t prev = -2;
    bool put = comi_strmap_put(NULL, &m, dup, &prev);
    test_check("strmap_duplicate", put && prev == first && m.n == N &&
                                       comi_strmap_find(&m, "k7919", 5) == (int64_t)dup,
               "prev %lld (want %lld), n %zu", (long long)prev, (long long)first, m.n);
    comi_strmap_free(&m);
    comi_strmap_free(&m); /* twice: a no-op */
    test_check("strmap_hash_fnv1a", comi_hash_bytes("", 0) == (1469598103934665603ull ^ (1469598103934665603ull >> 29)),
               "FNV-1a offset basis not kept");
}

static void test_vec(void) {
    int32_t *a = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    for (int32_t i = 0; i < 100000 && ok; i++) {
        ok = COMI_VEC_RESERVE(NULL, a, cap, n + 1, "test");
        if (ok) a[n++] = i;
    }
    bool vals = ok;
    for (size_t i = 0; ok && i < n; i++)
        vals &= a[i] == (int32_t)i;
    test_check("vec_grows", ok && vals && n == 100000 && cap >= n && cap < 2 * n + 16,
               "n %zu cap %zu", n, cap);
    comi_err e;
    comi_err_clear(&e);
    int32_t *before = a;
    size_t cap_before = cap;
    bool r = COMI_VEC_RESERVE(&e, a, cap, SIZE_MAX / 2, "huge");
    test_check("vec_overflow_refused",
               !r && e.status == COMI_ERR_LIMIT && a == before && cap == cap_before &&
                   strstr(e.msg, "huge") != NULL,
               "reserve returned %d, status %d '%s'", r, (int)e.status, e.msg);
    test_check("vec_no_growth_needed", COMI_VEC_RESERVE(NULL, a, cap, 5, "small") && a == before,
               "moved an array that had room");
    free(a);
}

/* "Structs that grow" (comi.h): the size of every public struct is fixed
 * within a major version; a field added later must take its bytes from
 * `reserved`. Sizes for the x86-64 (LP64) ABI the project builds for. */
static void test_struct_sizes(void) {
#define SZ(t, n) {#t, sizeof(t), n}
    static const struct {
        const char *name;
        size_t size, want;
    } sizes[] = {
        SZ(comi_ctx_params, 88),       SZ(comi_merge_params, 96),
        SZ(comi_merge_result, 200),    SZ(comi_tokenize_params, 76),
        SZ(comi_model_params, 88),     SZ(comi_model_info, 168),
        SZ(comi_tensor_info, 128),     SZ(comi_eval_params, 96),
        SZ(comi_generate_params, 76),  SZ(comi_pipeline_load_params, 96),
        SZ(comi_pipeline_info, 96),    SZ(comi_answer_params, 208),
        SZ(comi_answer_result, 232),   SZ(comi_text_params, 136),
        SZ(comi_text_result, 104),     SZ(comi_answer_scores, 88),
        SZ(comi_example, 128),         SZ(comi_dataset, 600),
        SZ(comi_train_progress, 144),  SZ(comi_train_params, 304),
    };
#undef SZ
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "struct_size_%s", sizes[i].name);
        test_check(name, sizes[i].size == sizes[i].want,
                   "sizeof %zu, pinned %zu: a new field must shrink `reserved` by its size "
                   "(comi.h, \"Structs that grow\")",
                   sizes[i].size, sizes[i].want);
    }
    comi_text_params tp = comi_text_default_params();
    comi_answer_params ap = comi_answer_default_params();
    bool zero = true;
    for (size_t i = 0; i < sizeof tp.reserved; i++) zero &= tp.reserved[i] == 0;
    for (size_t i = 0; i < sizeof ap.reserved; i++) zero &= ap.reserved[i] == 0;
    for (size_t i = 0; i < sizeof ap.merge.reserved; i++) zero &= ap.merge.reserved[i] == 0;
    zero &= ap.encode_cache == NULL;
    test_check("answer_params_tail_fields",
               offsetof(comi_answer_params, keep_logits) == 136 &&
                   offsetof(comi_answer_params, encode_cache) == 144,
               "keep_logits at %zu, encode_cache at %zu", offsetof(comi_answer_params, keep_logits),
               offsetof(comi_answer_params, encode_cache));
    /* fields taken from the tail keep every earlier offset and start at the
     * earlier behaviour (NULL tokenizer, word units) */
    test_check("text_params_tail_fields",
               offsetof(comi_text_params, tokenizer) == 72 &&
                   offsetof(comi_text_params, unit) == 80 &&
                   offsetof(comi_text_params, answer_first) == 84 &&
                   offsetof(comi_text_params, reserved) == 85 && tp.tokenizer == NULL &&
                   tp.unit == COMI_UNIT_WORD && !tp.answer_first,
               "tokenizer at %zu, unit at %zu, reserved at %zu", offsetof(comi_text_params, tokenizer),
               offsetof(comi_text_params, unit), offsetof(comi_text_params, reserved));
    test_check("struct_reserved_zero_in_defaults", zero, "a default params struct has nonzero reserved bytes");
}

int main(void) {
    test_struct_sizes();
    test_utf8();
    test_strmap();
    test_vec();
    return test_n_failed ? 1 : 0;
}
