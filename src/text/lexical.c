/*
 * lexical.c — text mode, stage 1: words, terms and boundaries. Splits a
 * context into whitespace-separated words (the token unit of lexical mode,
 * so budgets count exactly what `wc -w`-style counting sees), validates
 * UTF-8, maps each word to a normalised term (lower-case, letters and
 * digits only, light English plural stripping, stopwords marked) and marks
 * sentence and clause ends. The lexical encoder's BM25 weights in text.c
 * are built on these terms. Words end at whitespace; in scripts written
 * without spaces (Han, Hiragana, Katakana) every letter is a word of its own
 * (with the punctuation after it), marked TW_GLUE so adjacent kept letters
 * are joined again without a space. A multi-byte code point, an emoji
 * sequence or a base letter with its combining marks is never cut.
 */
#include "text/text.h"

#include "base/strmap.h"

#include <libstemmer.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---------------------------------------------------------------- words */

bool lex_is_space(const uint8_t *p, const uint8_t *end, size_t *clen) {
    uint8_t c = p[0];
    *clen = 1;
    if (c < 0x80) return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
    size_t left = (size_t)(end - p);
    if (c == 0xc2 && left >= 2 && (p[1] == 0x85 || p[1] == 0xa0)) {
        *clen = 2;
        return true;
    }
    if (left < 3) return false;
    *clen = 3;
    if (c == 0xe1 && p[1] == 0x9a && p[2] == 0x80) return true;       /* U+1680 */
    if (c == 0xe2 && p[1] == 0x80 && (p[2] <= 0x8a || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
        return true;                                                  /* U+2000-200A, 2028/9, 202F */
    if (c == 0xe2 && p[1] == 0x81 && p[2] == 0x9f) return true;       /* U+205F */
    if (c == 0xe3 && p[1] == 0x80 && p[2] == 0x80) return true;       /* U+3000 */
    *clen = 1;
    return false;
}

/* Letters of scripts written without spaces between words (Han,
 * Hiragana, Katakana and their iteration marks): each one is a word of its
 * own, so Chinese and Japanese text compresses character by character. */
static bool is_unspaced_letter(int32_t cp) {
    return (cp >= 0x3005 && cp <= 0x3007) || (cp >= 0x3040 && cp <= 0x30ff) ||
           (cp >= 0x31f0 && cp <= 0x31ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
           (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xf900 && cp <= 0xfaff) ||
           (cp >= 0xff66 && cp <= 0xff9f) || (cp >= 0x20000 && cp <= 0x3134f);
}

/* Punctuation and symbols (utf8proc categories P* and S*): they stay with
 * the unspaced letter before them ("す。" is one word, a sentence end). */
static bool is_punct(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_SO;
}

/* The end of the word that starts at p (p is not a space): up to the next
 * space, or a single unspaced letter with the punctuation after it, or a
 * run of other text up to the next unspaced letter. An invalid sequence
 * counts as one byte; *bad (when not NULL) gets its position. */
static const uint8_t *scan_word(const uint8_t *p, const uint8_t *end, const uint8_t **bad) {
    bool first = true, unspaced = false;
    while (p < end) {
        size_t cl;
        if (*p < 0x80) {
            if (*p == ' ' || (*p >= '\t' && *p <= '\r') || (*p >= 0x1c && *p <= 0x1f)) break;
            if (unspaced && !is_punct(*p)) break;
            p++;
            first = false;
            continue;
        }
        if (lex_is_space(p, end, &cl)) break;
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, end - p, &cp);
        if (k <= 0) {
            if (bad && !*bad) *bad = p;
            p++;
            first = false;
            continue;
        }
        if (is_unspaced_letter(cp)) {
            if (!first) break;
            unspaced = true;
        } else if (unspaced && !is_punct(cp)) {
            break;
        }
        p += k;
        first = false;
    }
    return p;
}

int64_t lex_count_words(const char *s) {
    if (!s) return 0;
    const uint8_t *p = (const uint8_t *)s, *end = p + strlen(s);
    int64_t n = 0;
    while (p < end) {
        size_t cl;
        if (lex_is_space(p, end, &cl)) {
            p += cl;
            continue;
        }
        p = scan_word(p, end, NULL);
        n++;
    }
    return n;
}

comi_status lex_check_word_limit(comi_ctx *ctx, const char *what, const char *const *srcs,
                                 size_t n) {
    if (ctx->max_context_tokens <= 0) return COMI_OK;
    int64_t words = 0;
    for (size_t i = 0; i < n; i++)
        words += lex_count_words(srcs[i]);
    return comi_check_tokens(ctx, what, words);
}

int64_t comi_text_count_tokens(const char *text) {
    return lex_count_words(text);
}

/* ------------------------------------------------------------ stopwords */

/* A compact English stopword list (function words only: content words such
 * as numbers or "first" stay searchable), sorted, with the index of the
 * first word of each initial letter (stop_start['z' - 'a' + 1] = count) so a
 * lookup compares a handful of words. */
static const char *const stopwords[] = {
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and",
    "any", "are", "as", "at", "be", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on",
    "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she",
    "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then",
    "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "whose", "why", "will", "with", "would", "you", "your", "yours"};
static const uint8_t stop_start[27] = {
    0, 15, 24, 26, 32, 33, 36, 36, 49, 57, 58, 58, 58, 63, 67, 79, 79, 79, 79, 85, 100, 103, 104, 119, 119, 122, 122};

bool lex_is_stopword(const char *s, size_t len) {
    if (len == 0) return true;
    if (len > 7 || s[0] < 'a' || s[0] > 'z') return false;
    int c = s[0] - 'a';
    for (int i = stop_start[c]; i < stop_start[c + 1]; i++)
        if (!strncmp(stopwords[i], s, len) && stopwords[i][len] == '\0') return true;
    return false;
}

/* --------------------------------------------------------------- terms */

/* Morphology: WordNet's exception lists map irregular forms to their base
 * ("wrote", "written" -> "write"; "children" -> "child"), then the Snowball
 * English (Porter2) stemmer of libstemmer reduces regular forms ("opened" ->
 * "open", "died" -> "die", "cities" -> "citi"). Only ASCII words without
 * digits are stemmed (numbers, names in other scripts stay as written). */

/* WordNet exceptions, "form base" per line (verb.exc and noun.exc of the
 * Debian package wordnet-base, read once from COMI_WORDNET_DIR or
 * /usr/share/wordnet); entries normalised like terms, sorted by form. */
typedef struct {
    char *form, *base;
} wn_exc;
static wn_exc *wn_list;
static size_t wn_n;
static bool wn_loaded;
static pthread_once_t wn_once = PTHREAD_ONCE_INIT;

static int wn_cmp(const void *a, const void *b) {
    return strcmp(((const wn_exc *)a)->form, ((const wn_exc *)b)->form);
}

/* Keeps lower-case ASCII letters and digits of s (in place). */
static void wn_norm(char *s) {
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) s[o++] = c;
    }
    s[o] = '\0';
}

static void wn_load(void) {
    const char *dir = getenv("COMI_WORDNET_DIR");
    if (!dir || !*dir) dir = "/usr/share/wordnet";
    static const char *const files[] = {"verb.exc", "noun.exc"};
    size_t cap = 0;
    for (size_t f = 0; f < 2; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        FILE *fp = fopen(path, "r");
        if (!fp) continue;
        char line[512];
        while (fgets(line, sizeof line, fp)) {
            char *form = strtok(line, " \t\r\n"), *base = strtok(NULL, " \t\r\n");
            if (!form || !base || strchr(form, '_') || strchr(base, '_')) continue;
            wn_norm(form);
            wn_norm(base);
            if (!*form || !*base || !strcmp(form, base)) continue;
            if (wn_n == cap) {
                size_t nc = cap ? cap * 2 : 4096;
                wn_exc *nl = realloc(wn_list, nc * sizeof *nl);
                if (!nl) break;
                wn_list = nl;
                cap = nc;
            }
            wn_list[wn_n].form = strdup(form);
            wn_list[wn_n].base = strdup(base);
            if (!wn_list[wn_n].form || !wn_list[wn_n].base) {
                free(wn_list[wn_n].form);
                free(wn_list[wn_n].base);
                break;
            }
            wn_n++;
        }
        fclose(fp);
        wn_loaded = true;
    }
    if (wn_n) {
        /* stable: the first entry of a form (verbs before nouns) wins */
        qsort(wn_list, wn_n, sizeof *wn_list, wn_cmp);
        size_t o = 0;
        for (size_t i = 0; i < wn_n; i++) {
            if (o && !strcmp(wn_list[o - 1].form, wn_list[i].form)) {
                free(wn_list[i].form);
                free(wn_list[i].base);
                continue;
            }
            wn_list[o++] = wn_list[i];
        }
        wn_n = o;
    }
}

bool lex_wordnet_loaded(void) {
    pthread_once(&wn_once, wn_load);
    return wn_loaded && wn_n > 0;
}

static const char *wn_base(const char *w) {
    pthread_once(&wn_once, wn_load);
    size_t lo = 0, hi = wn_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(wn_list[mid].form, w);
        if (!c) return wn_list[mid].base;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Stems the term w[0, n) in place (w has room for 4 n + 4 bytes); returns
 * the new length. sb is a Snowball English stemmer (NULL: exceptions only). */
static size_t stem(struct sb_stemmer *sb, char *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w[i] >= 0x80 || (w[i] >= '0' && w[i] <= '9')) return n;
    if (n <= 2) return n;
    char tmp[128];
    if (n < sizeof tmp) {
        memcpy(tmp, w, n);
        tmp[n] = '\0';
        const char *b = wn_base(tmp);
        if (b) {
            size_t bl = strlen(b);
            if (bl <= 4 * n + 3) {
                memcpy(w, b, bl);
                n = bl;
            }
        }
    }
    if (!sb) return n;
    const sb_symbol *r = sb_stemmer_stem(sb, (const sb_symbol *)w, (int)n);
    if (!r) return n;
    int rl = sb_stemmer_length(sb);
    if (rl <= 0 || (size_t)rl > n) return n;
    memcpy(w, r, (size_t)rl);
    return (size_t)rl;
}

size_t lex_normalize_word(const char *s, size_t len, bool do_stem, char *buf) {
    /* A trailing possessive 's / ’s belongs to the word, not the term. */
    if (len >= 2 && s[len - 1] == 's' && s[len - 2] == '\'') len -= 2;
    else if (len >= 4 && s[len - 1] == 's' && (uint8_t)s[len - 4] == 0xe2 &&
             (uint8_t)s[len - 3] == 0x80 && (uint8_t)s[len - 2] == 0x99)
        len -= 4;
    size_t o = 0;
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            if (c >= 'A' && c <= 'Z') buf[o++] = (char)(c + 32);
            else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) buf[o++] = (char)c;
            p++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, end - p, &cp);
        if (k <= 0) { /* validated before; defensive */
            p++;
            continue;
        }
        utf8proc_category_t cat = utf8proc_category(cp);
        bool keep = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                    (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME) ||
                    (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
        if (keep) o += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)buf + o);
        p += k;
    }
    if (do_stem && o) {
        struct sb_stemmer *sb = sb_stemmer_new("english", "UTF_8");
        o = stem(sb, buf, o);
        if (sb) sb_stemmer_delete(sb);
    }
    return o;
}

/* ---------------------------------------------------------- dictionary */

void text_dict_init(text_dict *d) {
    memset(d, 0, sizeof *d);
}

void text_dict_free(text_dict *d) {
    if (!d) return;
    free(d->slots);
    free(d->hashes);
    free(d->offs);
    free(d->chars);
    free(d->stop);
    memset(d, 0, sizeof *d);
}

static bool dict_grow_slots(comi_err *e, text_dict *d) {
    size_t cap = d->cap ? d->cap * 2 : 1024;
    uint32_t *slots = comi_calloc_array(e, cap, sizeof *slots, "term dictionary");
    if (!slots) return false;
    for (size_t i = 0; i < d->n; i++) {
        size_t j = d->hashes[i] & (cap - 1);
        while (slots[j]) j = (j + 1) & (cap - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->cap = cap;
    return true;
}

uint32_t text_dict_find(const text_dict *d, const char *s, size_t len) {
    if (!d->cap) return UINT32_MAX;
    uint64_t h = comi_hash_bytes(s, len);
    size_t j = h & (d->cap - 1);
    while (d->slots[j]) {
        uint32_t id = d->slots[j] - 1;
        if (d->hashes[id] == h && d->offs[id + 1] - d->offs[id] == len &&
            memcmp(d->chars + d->offs[id], s, len) == 0)
            return id;
        j = (j + 1) & (d->cap - 1);
    }
    return UINT32_MAX;
}

uint32_t text_dict_id(comi_err *e, text_dict *d, const char *s, size_t len, bool is_stop) {
    if ((d->n + 1) * 2 > d->cap && !dict_grow_slots(e, d)) return UINT32_MAX;
    uint64_t h = comi_hash_bytes(s, len);
    size_t j = h & (d->cap - 1);
    while (d->slots[j]) {
        uint32_t id = d->slots[j] - 1;
        if (d->hashes[id] == h && d->offs[id + 1] - d->offs[id] == len &&
            memcmp(d->chars + d->offs[id], s, len) == 0)
            return id;
        j = (j + 1) & (d->cap - 1);
    }
    if (d->n >= UINT32_MAX - 2) {
        comi_err_set(e, COMI_ERR_LIMIT, "more than %u distinct terms", (unsigned)(UINT32_MAX - 2));
        return UINT32_MAX;
    }
    if (d->n + 1 >= d->n_alloc) {
        size_t na = d->n_alloc ? d->n_alloc * 2 : 1024;
        uint64_t *hs = realloc(d->hashes, na * sizeof *hs);
        if (hs) d->hashes = hs;
        uint32_t *of = realloc(d->offs, (na + 1) * sizeof *of);
        if (of) d->offs = of;
        uint8_t *st = realloc(d->stop, na);
        if (st) d->stop = st;
        if (!hs || !of || !st) {
            comi_err_set(e, COMI_ERR_NOMEM, "term dictionary: out of memory");
            return UINT32_MAX;
        }
        if (d->n_alloc == 0) d->offs[0] = 0;
        d->n_alloc = na;
    }
    if (d->chars_len + len > d->chars_cap) {
        size_t nc = d->chars_cap ? d->chars_cap * 2 : 8192;
        while (nc < d->chars_len + len) nc *= 2;
        char *c = realloc(d->chars, nc);
        if (!c) {
            comi_err_set(e, COMI_ERR_NOMEM, "term dictionary: out of memory");
            return UINT32_MAX;
        }
        d->chars = c;
        d->chars_cap = nc;
    }
    if (d->chars_len + len > UINT32_MAX) {
        comi_err_set(e, COMI_ERR_LIMIT, "term dictionary over 4 GiB");
        return UINT32_MAX;
    }
    memcpy(d->chars + d->chars_len, s, len);
    d->chars_len += len;
    uint32_t id = (uint32_t)d->n++;
    d->hashes[id] = h;
    d->offs[id + 1] = (uint32_t)d->chars_len;
    d->stop[id] = is_stop;
    d->slots[j] = id + 1;
    return id;
}

/* ---------------------------------------------------------- splitting */

void text_words_free(text_words *w) {
    if (!w) return;
    free(w->w);
    w->w = NULL;
    w->n = w->cap = 0;
}

static bool words_push(comi_err *e, text_words *w, text_word x) {
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 256;
        text_word *nw = comi_alloc_array(e, nc, sizeof *nw, "word list");
        if (!nw) return false;
        if (w->n) memcpy(nw, w->w, w->n * sizeof *nw);
        free(w->w);
        w->w = nw;
        w->cap = nc;
    }
    w->w[w->n++] = x;
    return true;
}

comi_status lex_split(comi_err *e, const char *what, const char *s, size_t len, uint16_t src,
                      const lex_opts *opt, text_dict *dict, text_words *out) {
    if (len > TEXT_MAX_BYTES)
        return comi_err_set(e, COMI_ERR_LIMIT, "%s: %zu bytes is over the %zu-byte limit", what,
                            len, TEXT_MAX_BYTES);
    const uint8_t *base = (const uint8_t *)s, *p = base, *end = base + len;
    int newlines = 0;
    bool first = true;
    const uint8_t *prev_end = NULL;
    char stackbuf[256];
    char *buf = stackbuf;
    size_t buf_cap = sizeof stackbuf;
    comi_status st = COMI_OK;
    struct sb_stemmer *sb = NULL; /* one per call: a stemmer is not thread-safe */
    if (opt->stem && !(sb = sb_stemmer_new("english", "UTF_8")))
        return comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory (stemmer)", what);
    while (p < end) {
        size_t cl;
        if (lex_is_space(p, end, &cl)) {
            if (*p == '\n' || (cl == 3 && p[2] >= 0xa8 && p[2] <= 0xa9 && p[0] == 0xe2)) newlines++;
            p += cl;
            continue;
        }
        const uint8_t *ws = p, *bad = NULL;
        bool glue = !first && ws == prev_end; /* no space since the last word */
        p = scan_word(p, end, &bad);
        if (bad) {
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu", what,
                              (size_t)(bad - base));
            goto done;
        }
        prev_end = p;
        size_t wl = (size_t)(p - ws);
        if (wl * 4 + 4 > buf_cap) {
            if (buf != stackbuf) free(buf);
            buf_cap = wl * 4 + 4;
            buf = malloc(buf_cap);
            if (!buf) {
                buf = stackbuf;
                st = comi_err_set(e, COMI_ERR_NOMEM, "%s: out of memory", what);
                goto done;
            }
        }
        size_t tl = lex_normalize_word((const char *)ws, wl, false, buf);
        bool is_stop = tl == 0 || (opt->stopwords && lex_is_stopword(buf, tl));
        if (tl && opt->stem) tl = stem(sb, buf, tl);
        text_word w = {.start = (uint32_t)(ws - base), .end = (uint32_t)(p - base),
                       .term = TEXT_NO_TERM, .src = src, .flags = 0};
        if (tl) {
            w.term = text_dict_id(e, dict, buf, tl, is_stop);
            if (w.term == UINT32_MAX) {
                st = e ? e->status : COMI_ERR_NOMEM;
                goto done;
            }
        }
        if (is_stop) w.flags |= TW_STOP;
        if (!first && newlines >= 1) w.flags |= TW_LINE_BEFORE;
        if (!first && newlines >= 2) w.flags |= TW_PARA_BEFORE;
        if (*ws == '(' || *ws == '[') w.flags |= TW_OPEN;
        if (glue) w.flags |= TW_GLUE;
        if (!words_push(e, out, w)) {
            st = COMI_ERR_NOMEM;
            goto done;
        }
        first = false;
        newlines = 0;
    }
done:
    if (buf != stackbuf) free(buf);
    if (sb) sb_stemmer_delete(sb);
    return st;
}

/* ---------------------------------------------------------- boundaries */

/* Abbreviations whose period does not end a sentence. */
static const char *const abbrevs[] = {"ave", "co", "corp", "dr", "gen", "gov", "inc", "jr",
                                      "lt", "mr", "mrs", "ms", "mt", "no", "prof", "rev",
                                      "sgt", "sr", "st", "vs"};

static bool is_abbrev(const uint8_t *s, size_t n) {
    /* s[0, n) is the word without its final period. */
    if (n == 1 && ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return true; /* an initial: "J." */
    if (n > 4) return false;
    char low[5];
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
        low[i] = (char)(c | 32);
    }
    low[n] = '\0';
    for (size_t i = 0; i < sizeof abbrevs / sizeof abbrevs[0]; i++)
        if (!strcmp(low, abbrevs[i])) return true;
    return false;
}

/* Strips closing quotes/brackets from the end of [s, s+n); returns new n. */
static size_t strip_closers(const uint8_t *s, size_t n) {
    for (;;) {
        if (n >= 1 && (s[n - 1] == ')' || s[n - 1] == ']' || s[n - 1] == '"' || s[n - 1] == '\'')) {
            n--;
            continue;
        }
        /* ” ’ » */
        if (n >= 3 && s[n - 3] == 0xe2 && s[n - 2] == 0x80 && (s[n - 1] == 0x9d || s[n - 1] == 0x99)) {
            n -= 3;
            continue;
        }
        if (n >= 2 && s[n - 2] == 0xc2 && s[n - 1] == 0xbb) {
            n -= 2;
            continue;
        }
        return n;
    }
}

void lex_mark_boundaries(text_words *tw, size_t begin, size_t end, const char *const *srcs) {
    for (size_t i = begin; i < end; i++) {
        text_word *w = &tw->w[i];
        const uint8_t *s = (const uint8_t *)srcs[w->src] + w->start;
        size_t n = w->end - w->start;
        bool last = i + 1 == end;
        const text_word *nx = last ? NULL : &tw->w[i + 1];
        bool next_break = last || (nx->flags & TW_LINE_BEFORE);
        size_t m = strip_closers(s, n);
        bool sent = false;
        if (m >= 1 && (s[m - 1] == '!' || s[m - 1] == '?')) sent = true;
        else if (m >= 3 && s[m - 3] == 0xe3 && s[m - 2] == 0x80 && s[m - 1] == 0x82) sent = true; /* 。 */
        else if (m >= 3 && s[m - 3] == 0xef && s[m - 2] == 0xbc &&
                 (s[m - 1] == 0x81 || s[m - 1] == 0x9f)) sent = true; /* ！ ？ */
        else if (m >= 2 && s[m - 1] == '.' && s[m - 2] != '.') {
            if (next_break) {
                sent = true;
            } else if (!is_abbrev(s, m - 1)) {
                const uint8_t *ns = (const uint8_t *)srcs[nx->src] + nx->start;
                uint8_t c = ns[0];
                /* The next word must look like a sentence start. */
                sent = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '"' ||
                       c == '\'' || c == '(' || c == '[' || c >= 0x80;
                /* "U.S. Army": an inner period before a capital is ambiguous; keep. */
                if (sent && m >= 4 && memchr(s, '.', m - 1) && m <= 6) sent = false;
            }
        }
        if (next_break && !last) sent = true; /* a line break ends a sentence (titles, lists) */
        if (sent) w->flags |= TW_SENT_END | TW_CLAUSE_END;
        else if (n >= 1 && (s[n - 1] == ',' || s[n - 1] == ';' || s[n - 1] == ':'))
            w->flags |= TW_CLAUSE_END;
        else if (n >= 3 && ((s[n - 3] == 0xe3 && s[n - 2] == 0x80 && s[n - 1] == 0x81) ||
                            (s[n - 3] == 0xef && s[n - 2] == 0xbc &&
                             (s[n - 1] == 0x8c || s[n - 1] == 0x9b || s[n - 1] == 0x9a))))
            w->flags |= TW_CLAUSE_END; /* 、 ， ； ： */
        else if ((n == 1 && s[0] == '-') ||
                 (n == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0x93 || s[2] == 0x94)))
            w->flags |= TW_CLAUSE_END; /* a free-standing dash */
        else if (nx && (nx->flags & TW_OPEN))
            w->flags |= TW_CLAUSE_END; /* a parenthesis starts a new clause */
    }
    if (end > begin) tw->w[end - 1].flags |= TW_SENT_END | TW_CLAUSE_END;
}

/* --------------------------------------------------------------- join */

comi_status text_join(comi_err *e, const text_words *w, const char *const *srcs,
                      const uint32_t *idx, size_t n, const uint32_t *group, char **out) {
    size_t bytes = 1;
    for (size_t i = 0; i < n; i++) bytes += w->w[idx[i]].end - w->w[idx[i]].start + 1;
    char *o = malloc(bytes);
    if (!o) return comi_err_set(e, COMI_ERR_NOMEM, "output: out of memory (%zu bytes)", bytes);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const text_word *x = &w->w[idx[i]];
        bool same = i && (!group || group[idx[i]] == group[idx[i - 1]]);
        /* words written without a space between them (CJK) stay joined */
        if (i && !(same && (x->flags & TW_GLUE) && idx[i] == idx[i - 1] + 1))
            o[k++] = same ? ' ' : '\n';
        memcpy(o + k, srcs[x->src] + x->start, x->end - x->start);
        k += x->end - x->start;
    }
    o[k] = '\0';
    *out = o;
    return COMI_OK;
}
