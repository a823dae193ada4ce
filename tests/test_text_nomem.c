/* test_text_nomem.c — text compression out of memory: the k-th heap
 * allocation of a call fails (this program defines malloc, calloc and
 * realloc and forwards the others to glibc's __libc_* allocator), for every
 * k up to the number the call makes. Each call must either fail with
 * COMI_ERR_NOMEM and a message, or succeed with exactly the text of a call
 * without failures (an allocation that has a fallback may fail silently,
 * but never change the result); it must not crash, and every block it
 * allocated must be freed again (a set of live blocks is kept while
 * counting). Word and sentence units, one text and a list of documents,
 * the LLMLingua-style question with a summary instruction. Not built with
 * AddressSanitizer, which owns malloc itself. */
#include "comi.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__) || !defined(__GLIBC__)
int main(void) {
    test_skip("text_nomem", "needs glibc's allocator (not under AddressSanitizer)");
    return test_exit();
}
#else
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "libc_alloc.h"

static atomic_flag lock = ATOMIC_FLAG_INIT;
static int counting;   /* under lock */
static long n_allocs;  /* counted allocations of this call */
static long fail_at;   /* the allocation that fails (1-based; 0 none) */
static int failed;     /* it did */

/* The blocks allocated while counting and not freed: open addressing. */
#define LIVE_CAP (1u << 16)
static void *live[LIVE_CAP];
static long n_live, live_overflow;
#define TOMB ((void *)1)

static size_t slot_of(const void *p) {
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 40) & (LIVE_CAP - 1);
}
static void live_add(void *p) {
    if (n_live >= (long)(LIVE_CAP / 2)) {
        live_overflow++;
        return;
    }
    size_t i = slot_of(p);
    while (live[i] && live[i] != TOMB) i = (i + 1) & (LIVE_CAP - 1);
    live[i] = p;
    n_live++;
}
static void live_del(void *p) {
    size_t i = slot_of(p);
    while (live[i]) {
        if (live[i] == p) {
            live[i] = TOMB;
            n_live--;
            return;
        }
        i = (i + 1) & (LIVE_CAP - 1);
    }
}

static void lock_on(void) {
    while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire)) {
    }
}
static void lock_off(void) {
    atomic_flag_clear_explicit(&lock, memory_order_release);
}
/* true: this allocation is to fail */
static int next_fails(void) {
    if (!counting) return 0;
    n_allocs++;
    if (n_allocs == fail_at) {
        failed = 1;
        return 1;
    }
    return 0;
}

void *malloc(size_t n) {
    lock_on();
    void *p = next_fails() ? NULL : __libc_malloc(n);
    if (p && counting) live_add(p);
    lock_off();
    return p;
}
void *calloc(size_t n, size_t sz) {
    lock_on();
    void *p = next_fails() ? NULL : __libc_calloc(n, sz);
    if (p && counting) live_add(p);
    lock_off();
    return p;
}
void *realloc(void *old, size_t n) {
    lock_on();
    void *p = next_fails() ? NULL : __libc_realloc(old, n);
    if (p && counting) {
        if (old) live_del(old);
        live_add(p);
    }
    lock_off();
    return p;
}
void free(void *p) {
    if (!p) return;
    lock_on();
    if (counting) live_del(p);
    lock_off();
    __libc_free(p);
}

static void start(long k) {
    lock_on();
    memset(live, 0, sizeof live);
    n_live = live_overflow = 0;
    n_allocs = 0;
    fail_at = k;
    failed = 0;
    counting = 1;
    lock_off();
}
static void stop(void) {
    lock_on();
    counting = 0;
    lock_off();
}

static const char *const docs[] = {
    "Panama Canal\nThe Panama Canal is an artificial waterway of about 82 kilometres that "
    "crosses the Isthmus of Panama. Ships that use it avoid the long passage around Cape Horn.",
    "Construction\nFrance was the first country to attempt the work, in 1881. The United States "
    "bought the French equipment in 1904. When Stevens resigned in 1907, Roosevelt gave the job "
    "to George Washington Goethals, who led the project until it was finished.",
    "Opening\nThe canal opened on 15 August 1914. Ships were counted by the thousands; "
    "written records say the first ship was the Ancon. Children watched from the banks.",
};

typedef struct {
    const char *name, *question;
    int documents, unit;
    int64_t target;
} scenario;

static comi_status run(comi_ctx *ctx, const scenario *s, comi_text_result *r) {
    comi_text_params p = comi_text_default_params();
    p.unit = s->unit;
    p.target_tokens = s->target;
    if (s->documents) return comi_compress_documents(ctx, docs, 3, s->question, &p, r);
    static char joined[2048];
    snprintf(joined, sizeof joined, "%s\n\n%s\n\n%s", docs[0], docs[1], docs[2]);
    return comi_compress_text(ctx, joined, s->question, &p, r);
}

static void check(comi_ctx *ctx, const scenario *s) {
    char name[128];
    comi_text_result ok_r;
    /* twice without failures: one-time state (the WordNet lists) exists,
     * and the second call's allocation count is the one to cover */
    comi_status st = run(ctx, s, &ok_r);
    if (!st) comi_text_result_free(&ok_r);
    start(0);
    if (!st) st = run(ctx, s, &ok_r);
    stop();
    long total = n_allocs;
    /* and without failures, nothing is left once the result is freed */
    comi_text_result again;
    start(0);
    comi_status st2 = run(ctx, s, &again);
    if (!st2) comi_text_result_free(&again);
    long left0 = n_live + live_overflow;
    stop();
    snprintf(name, sizeof name, "text_nomem_%s_no_leak", s->name);
    test_check(name, st2 == COMI_OK && left0 == 0, "status %d, %ld blocks not freed", (int)st2,
               left0);
    snprintf(name, sizeof name, "text_nomem_%s_baseline", s->name);
    if (!test_check(name, st == COMI_OK && total > 0, "status %d: %s (%ld allocations)", (int)st,
                    st ? comi_errmsg(ctx) : "ok", total))
        return;
    long bad_status = 0, bad_text = 0, leaks = 0, nomem = 0, silent = 0;
    char first[300] = "";
    for (long k = 1; k <= total; k++) {
        comi_text_result r;
        memset(&r, 0, sizeof r);
        start(k);
        st = run(ctx, s, &r);
        int hit = failed;
        /* a result despite the failure must be the result */
        int changed = st == COMI_OK && strcmp(r.text, ok_r.text) != 0;
        if (changed && !bad_text++ && !first[0])
            snprintf(first, sizeof first,
                     "allocation %ld failed silently and changed the text: '%.120s'", k, r.text);
        if (st == COMI_OK) comi_text_result_free(&r);
        long left = n_live + live_overflow;
        stop();
        if (!hit) break; /* fewer allocations this time: all covered */
        if (st == COMI_ERR_NOMEM && comi_errmsg(ctx)[0]) {
            nomem++;
        } else if (st == COMI_OK) {
            silent++;
        } else if (!bad_status++ && !first[0]) {
            snprintf(first, sizeof first, "allocation %ld: status %d (%s)", k, (int)st,
                     comi_errmsg(ctx));
        }
        if (left > 0 && !leaks++ && !first[0])
            snprintf(first, sizeof first, "allocation %ld: %ld blocks not freed", k, left);
    }
    comi_text_result_free(&ok_r);
    snprintf(name, sizeof name, "text_nomem_%s", s->name);
    test_check(name, bad_status == 0 && bad_text == 0 && leaks == 0 && nomem > 0,
               "%ld allocations: %ld NOMEM, %ld silent, %ld other statuses, %ld changed texts, "
               "%ld with leaks; first: %s",
               total, nomem, silent, bad_status, bad_text, leaks, first);
    printf("# %s: %ld allocations, each failed once: %ld COMI_ERR_NOMEM, %ld recovered\n",
           s->name, total, nomem, silent);
}

int main(void) {
    comi_ctx_params cp = comi_ctx_default_params();
    cp.n_threads = 1;
    comi_ctx *ctx = comi_ctx_new(&cp);
    if (!test_check("text_nomem_ctx", ctx != NULL, "no context")) return test_exit();
    const scenario sc[] = {
        {"text_word", "Who took over when Stevens resigned?", 0, COMI_UNIT_WORD, 20},
        {"documents_sentence", "When did the canal open?", 1, COMI_UNIT_SENTENCE, 24},
        {"documents_clause", "Who wrote the records?", 1, COMI_UNIT_CLAUSE, 18},
        {"summary", "Write a one-page summary of all news.", 1, COMI_UNIT_WORD, 30},
    };
    for (size_t i = 0; i < sizeof sc / sizeof *sc; i++) check(ctx, &sc[i]);
    comi_ctx_free(ctx);
    return test_exit();
}
#endif
