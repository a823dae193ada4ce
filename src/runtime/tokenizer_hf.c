/*
 * tokenizer_hf.c — stage 1 (tokenizer) input from Hugging Face files:
 * tokenizer.json (the `tokenizers` library's serialization) plus, in a model
 * directory, tokenizer_config.json (add_bos_token, add_eos_token,
 * bos/eos/unk tokens), config.json and generation_config.json (BOS/EOS ids).
 *
 * Supported: model type "BPE" — byte-level (GPT-2, Llama-3, Qwen2, DeepSeek:
 * pre_tokenizer ByteLevel and/or Split regexes taken from the file itself,
 * Digits) and character-level with byte_fallback (LLaMA-2 style: normalizer
 * Prepend("▁") + Replace(" ", "▁"), or a Metaspace pre-tokenizer).
 * Normalizers NFC/NFKC/NFD/NFKD, Lowercase, Prepend, Replace, Strip,
 * Sequence. Anything else (Unigram, WordPiece, Precompiled normalizers,
 * Whitespace pre-tokenizers, ...) is refused with a message naming it.
 * Added tokens become control tokens when "special", user-defined otherwise,
 * the same mapping llama.cpp's converter uses, so tokenization follows the
 * GGUF path exactly (special-token text is plain text unless parse_special).
 */
#include "runtime/tokenizer_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How many unused ids a tokenizer.json may leave below its largest id. */
#define TOK_HF_MAX_ID_GAP 65536

/* GPT-2's pre-tokenizer regex as the ByteLevel pre-tokenizer applies it. */
static const char k_bytelevel_re[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *jstr(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jbool(const json_t *obj, const char *key, bool dflt) {
    const json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* A token given as "text" or {"content": "text", ...}. */
static const char *token_text(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return jstr(v, "content");
    return NULL;
}

static json_t *load_json(comi_err *e, const char *path, bool required, comi_status *st) {
    *st = COMI_OK;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (required) *st = comi_err_set(e, COMI_ERR_IO, "%s: no such file", path);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_DECODE_ANY, &jerr);
    if (!root) {
        *st = comi_err_set(e, COMI_ERR_FORMAT, "%s: line %d column %d: %s", path, jerr.line,
                           jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *st = comi_err_set(e, COMI_ERR_FORMAT, "%s: not a JSON object", path);
        return NULL;
    }
    return root;
}

/* Regex for a Split pattern: {"Regex": r} as is, {"String": s} escaped. */
static char *split_pattern(comi_err *e, const char *path, const json_t *pat, size_t *len) {
    const char *re = jstr(pat, "Regex");
    if (re) {
        *len = strlen(re);
        char *out = malloc(*len + 1);
        if (!out)
            comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
        else
            memcpy(out, re, *len + 1);
        return out;
    }
    const char *s = jstr(pat, "String");
    if (!s) {
        comi_err_set(e, COMI_ERR_FORMAT,
                     "%s: Split pattern is neither {\"Regex\"} nor {\"String\"}", path);
        return NULL;
    }
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1);
    if (!out) {
        comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (c < 0x80 && !alnum) out[k++] = '\\';
        out[k++] = (char)c;
    }
    out[k] = '\0';
    *len = k;
    return out;
}

static comi_status add_norm(comi_err *e, comi_tokenizer *tok, tok_norm_kind kind, const char *a,
                            const char *b) {
    tok_norm *v = realloc(tok->norm, (tok->n_norm + 1) * sizeof *v);
    if (!v) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    tok->norm = v;
    tok_norm *nm = &v[tok->n_norm];
    memset(nm, 0, sizeof *nm);
    nm->kind = kind;
    nm->a_len = a ? strlen(a) : 0;
    nm->b_len = b ? strlen(b) : 0;
    nm->a = malloc(nm->a_len + 1);
    nm->b = malloc(nm->b_len + 1);
    tok->n_norm++; /* owned from here on, freed by tok_free */
    if (!nm->a || !nm->b) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(nm->a, a ? a : "", nm->a_len + 1);
    memcpy(nm->b, b ? b : "", nm->b_len + 1);
    return COMI_OK;
}

static comi_status parse_normalizer(comi_err *e, const char *path, comi_tokenizer *tok,
                                    const json_t *n, int depth) {
    if (!n || json_is_null(n)) return COMI_OK;
    if (depth > 8)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: normalizers nested too deeply", path);
    const char *type = jstr(n, "type");
    if (!type) return comi_err_set(e, COMI_ERR_FORMAT, "%s: normalizer without a \"type\"", path);
    if (!strcmp(type, "Sequence")) {
        const json_t *arr = json_object_get(n, "normalizers");
        if (!json_is_array(arr))
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: Sequence normalizer without \"normalizers\"", path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            comi_status st = parse_normalizer(e, path, tok, json_array_get(arr, i), depth + 1);
            if (st) return st;
        }
        return COMI_OK;
    }
    if (!strcmp(type, "NFC")) return add_norm(e, tok, TOK_NORM_NFC, NULL, NULL);
    if (!strcmp(type, "NFKC")) return add_norm(e, tok, TOK_NORM_NFKC, NULL, NULL);
    if (!strcmp(type, "NFD")) return add_norm(e, tok, TOK_NORM_NFD, NULL, NULL);
    if (!strcmp(type, "NFKD")) return add_norm(e, tok, TOK_NORM_NFKD, NULL, NULL);
    if (!strcmp(type, "Lowercase")) return add_norm(e, tok, TOK_NORM_LOWERCASE, NULL, NULL);
    if (!strcmp(type, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (!p)
            return comi_err_set(e, COMI_ERR_FORMAT, "%s: Prepend normalizer without \"prepend\"",
                                path);
        return add_norm(e, tok, TOK_NORM_PREPEND, p, NULL);
    }
    if (!strcmp(type, "Strip")) {
        return add_norm(e, tok, TOK_NORM_STRIP, jbool(n, "strip_left", true) ? "1" : "0",
                        jbool(n, "strip_right", true) ? "1" : "0");
    }
    if (!strcmp(type, "Replace")) {
        const json_t *pat = json_object_get(n, "pattern");
        const char *content = jstr(n, "content");
        if (!json_is_object(pat) || !content)
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: Replace normalizer needs \"pattern\" and \"content\"", path);
        const char *s = jstr(pat, "String");
        if (s) return add_norm(e, tok, TOK_NORM_REPLACE, s, content);
        size_t len;
        char *re = split_pattern(e, path, pat, &len);
        if (!re) return e ? e->status : COMI_ERR_FORMAT;
        comi_status st = add_norm(e, tok, TOK_NORM_REPLACE, re, content);
        if (!st) {
            tok->norm[tok->n_norm - 1].re = tok_compile_regex(e, re, len, false, path);
            if (!tok->norm[tok->n_norm - 1].re) st = e ? e->status : COMI_ERR_FORMAT;
        }
        free(re);
        return st;
    }
    return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: normalizer type '%s' is not supported", path,
                        type);
}

static comi_status add_pre_step(comi_err *e, comi_tokenizer *tok, tok_pre step) {
    tok_pre *v = realloc(tok->pre, (tok->n_pre + 1) * sizeof *v);
    if (!v) return comi_err_set(e, COMI_ERR_NOMEM, "tokenizer: out of memory");
    tok->pre = v;
    v[tok->n_pre++] = step;
    return COMI_OK;
}

static comi_status parse_pre(comi_err *e, const char *path, comi_tokenizer *tok, const json_t *p,
                             int depth) {
    if (!p || json_is_null(p)) return COMI_OK;
    if (depth > 8)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: pre-tokenizers nested too deeply", path);
    const char *type = jstr(p, "type");
    if (!type)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: pre_tokenizer without a \"type\"", path);
    comi_status st = COMI_OK;
    if (!strcmp(type, "Sequence")) {
        const json_t *arr = json_object_get(p, "pretokenizers");
        if (!json_is_array(arr))
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: Sequence pre_tokenizer without \"pretokenizers\"", path);
        for (size_t i = 0; i < json_array_size(arr) && !st; i++)
            st = parse_pre(e, path, tok, json_array_get(arr, i), depth + 1);
        return st;
    }
    if (!strcmp(type, "Split")) {
        const char *beh = jstr(p, "behavior");
        bool remove = beh && !strcmp(beh, "Removed");
        if (beh && !remove && strcmp(beh, "Isolated"))
            return comi_err_set(
                e, COMI_ERR_UNSUPPORTED,
                "%s: Split behavior '%s' is not supported (only Isolated and Removed)", path, beh);
        if (jbool(p, "invert", false))
            return comi_err_set(e, COMI_ERR_UNSUPPORTED,
                                "%s: Split with invert=true is not supported", path);
        size_t len;
        char *re = split_pattern(e, path, json_object_get(p, "pattern"), &len);
        if (!re) return e ? e->status : COMI_ERR_FORMAT;
        st = tok_add_pre_regex(e, tok, re, len, remove, false, path);
        free(re);
        return st;
    }
    if (!strcmp(type, "ByteLevel")) {
        tok->byte_level = true;
        if (jbool(p, "add_prefix_space", false))
            st = add_pre_step(e, tok, (tok_pre){.kind = TOK_PRE_PREFIX_SPACE});
        if (!st && jbool(p, "use_regex", true))
            st = tok_add_pre_regex(e, tok, k_bytelevel_re, sizeof k_bytelevel_re - 1, false, false,
                                   path);
        return st;
    }
    if (!strcmp(type, "Digits")) {
        const char *re = jbool(p, "individual_digits", false) ? "\\p{N}" : "\\p{N}+";
        return tok_add_pre_regex(e, tok, re, strlen(re), false, false, path);
    }
    if (!strcmp(type, "Metaspace")) {
        tok_pre step = {.kind = TOK_PRE_METASPACE, .prepend = 2};
        const char *r = jstr(p, "replacement");
        if (!r) r = "\xe2\x96\x81";
        if (strlen(r) >= sizeof step.repl || !*r)
            return comi_err_set(e, COMI_ERR_FORMAT,
                                "%s: Metaspace replacement '%s' is not one character", path, r);
        memcpy(step.repl, r, strlen(r) + 1);
        const char *scheme = jstr(p, "prepend_scheme");
        if (scheme)
            step.prepend = !strcmp(scheme, "never") ? 0 : !strcmp(scheme, "first") ? 1 : 2;
        else if (!jbool(p, "add_prefix_space", true))
            step.prepend = 0;
        st = add_pre_step(e, tok, step);
        tok->dec_metaspace = true;
        tok->strip_space = step.prepend != 0;
        if (!st && jbool(p, "split", true)) {
            /* split before every replacement character (merged with the next) */
            char re[64];
            int n = snprintf(re, sizeof re, "%s[^%s]*", step.repl, step.repl);
            st = tok_add_pre_regex(e, tok, re, (size_t)n, false, false, path);
        }
        return st;
    }
    return comi_err_set(e, COMI_ERR_UNSUPPORTED, "%s: pre_tokenizer type '%s' is not supported",
                        path, type);
}

/* Decoder: only tells how ids become text (byte-level or metaspace style). */
static void parse_decoder(comi_tokenizer *tok, const json_t *d, int depth) {
    if (!d || !json_is_object(d) || depth > 8) return;
    const char *type = jstr(d, "type");
    if (!type) return;
    if (!strcmp(type, "Sequence")) {
        const json_t *arr = json_object_get(d, "decoders");
        for (size_t i = 0; i < json_array_size(arr); i++)
            parse_decoder(tok, json_array_get(arr, i), depth + 1);
    } else if (!strcmp(type, "ByteLevel")) {
        tok->byte_level = true;
    } else if (!strcmp(type, "Metaspace")) {
        tok->dec_metaspace = true;
        const char *scheme = jstr(d, "prepend_scheme");
        tok->strip_space =
            scheme ? strcmp(scheme, "never") != 0 : jbool(d, "add_prefix_space", true);
    } else if (!strcmp(type, "Replace") || !strcmp(type, "ByteFallback")) {
        tok->dec_metaspace = true;
    } else if (!strcmp(type, "Strip")) {
        const json_t *st = json_object_get(d, "start");
        if (json_is_integer(st) && json_integer_value(st) > 0) tok->strip_space = true;
    }
}

/* Reads an id or the first of a list of ids. */
static bool json_first_id(const json_t *v, int64_t *out) {
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (!json_is_integer(v)) return false;
    *out = json_integer_value(v);
    return true;
}

static comi_status load_tokenizer_json(comi_err *e, const char *path, comi_tokenizer **out) {
    *out = NULL;
    comi_status st;
    json_t *root = load_json(e, path, true, &st);
    if (!root) return st;
    comi_tokenizer *tok = NULL;
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: no \"model\" object", path);
        goto done;
    }
    const char *mtype = jstr(model, "type");
    if (!mtype && json_object_get(model, "merges")) mtype = "BPE";
    if (!mtype || strcmp(mtype, "BPE")) {
        st = comi_err_set(e, COMI_ERR_UNSUPPORTED,
                          "%s: tokenizer model type '%s' is not supported (only BPE)", path,
                          mtype ? mtype : "?");
        goto done;
    }
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: model.vocab is not an object", path);
        goto done;
    }
    const char *pfx = jstr(model, "continuing_subword_prefix"),
               *sfx = jstr(model, "end_of_word_suffix");
    if ((pfx && *pfx) || (sfx && *sfx)) {
        st = comi_err_set(
            e, COMI_ERR_UNSUPPORTED,
            "%s: BPE continuing_subword_prefix / end_of_word_suffix are not supported", path);
        goto done;
    }
    /* vocabulary size: one past the largest id */
    int64_t max_id = -1;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= INT32_MAX) {
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s: model.vocab[\"%.40s\"] is not a valid id",
                              path, key);
            goto done;
        }
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        const json_t *id = json_object_get(a, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= INT32_MAX || !jstr(a, "content")) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: added_tokens[%zu] needs an \"id\" and a \"content\"", path, i);
            goto done;
        }
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    /* Ids may leave gaps (ids no piece names stay unused), but the table is
     * sized by the largest id, so a hostile file with one huge id must not
     * make us allocate gigabytes: bound it by the entries the file holds. */
    size_t n_entries = json_object_size(vocab) + json_array_size(added);
    if (max_id >= (int64_t)n_entries + TOK_HF_MAX_ID_GAP) {
        st = comi_err_set(e, COMI_ERR_FORMAT,
                          "%s: largest token id %lld is far beyond the %zu vocabulary entries",
                          path, (long long)max_id, n_entries);
        goto done;
    }
    if ((st = tok_new(e, TOK_KIND_BPE, (int32_t)(max_id + 1), &tok))) goto done;
    snprintf(tok->pre_name, sizeof tok->pre_name, "tokenizer.json");
    /* ids no piece names stay empty and unused */
    memset(tok->attr, TOK_ATTR_UNUSED, (size_t)tok->n_vocab);
    json_object_foreach((json_t *)vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        if (tok->attr[id] != TOK_ATTR_UNUSED) {
            st = comi_err_set(e, COMI_ERR_FORMAT, "%s: id %d appears twice in model.vocab", path,
                              (int)id);
            goto done;
        }
        if ((st = tok_set_piece(e, tok, id, key, strlen(key)))) goto done;
        tok->attr[id] = TOK_ATTR_NORMAL;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        int32_t id = (int32_t)json_integer_value(json_object_get(a, "id"));
        const char *content = jstr(a, "content");
        size_t cl = strlen(content);
        if (tok->piece_len[id] != cl || memcmp(tok->pool + tok->piece_off[id], content, cl))
            if ((st = tok_set_piece(e, tok, id, content, cl))) goto done;
        uint8_t attr = jbool(a, "special", false) ? TOK_ATTR_CONTROL : TOK_ATTR_USER_DEFINED;
        if (jbool(a, "lstrip", false)) attr |= TOK_ATTR_LSTRIP;
        if (jbool(a, "rstrip", false)) attr |= TOK_ATTR_RSTRIP;
        tok->attr[id] = attr;
    }
    if ((st = tok_build_map(e, tok))) goto done;

    tok->byte_fallback = jbool(model, "byte_fallback", false);
    tok->ignore_merges = jbool(model, "ignore_merges", false);
    tok->fuse_unk = jbool(model, "fuse_unk", false);
    const char *unk = jstr(model, "unk_token");
    if (unk) tok->unk = tok_lookup(tok, unk, strlen(unk));

    const json_t *merges = json_object_get(model, "merges");
    if (merges && !json_is_array(merges)) {
        st = comi_err_set(e, COMI_ERR_FORMAT, "%s: model.merges is not an array", path);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(merges); i++) {
        const json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            size_t len = json_string_length(m);
            const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            if (!sp) {
                st = comi_err_set(e, COMI_ERR_FORMAT,
                                  "%s: merges[%zu] '%.40s' is not \"left right\"", path, i, s);
                goto done;
            }
            st = tok_add_merge(e, tok, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp - s) - 1);
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            const json_t *l = json_array_get(m, 0), *r = json_array_get(m, 1);
            st = tok_add_merge(e, tok, json_string_value(l), json_string_length(l),
                               json_string_value(r), json_string_length(r));
        } else {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, i);
        }
        if (st) goto done;
    }

    if ((st = parse_normalizer(e, path, tok, json_object_get(root, "normalizer"), 0))) goto done;
    if ((st = parse_pre(e, path, tok, json_object_get(root, "pre_tokenizer"), 0))) goto done;
    parse_decoder(tok, json_object_get(root, "decoder"), 0);
    /* byte pieces of a byte-fallback vocabulary decode to their byte */
    if (tok->byte_fallback && !tok->byte_level) {
        tok->dec_metaspace = true;
        for (int32_t id = 0; id < tok->n_vocab; id++) {
            const char *p = tok->pool + tok->piece_off[id];
            if (tok->attr[id] == TOK_ATTR_NORMAL && tok->piece_len[id] == 6 &&
                !memcmp(p, "<0x", 3) && p[5] == '>')
                tok->attr[id] = TOK_ATTR_BYTE;
        }
    }
    /* post_processor TemplateProcessing: a special token before / after $A
     * means BOS / EOS are added (LLaMA-2, Llama-3) */
    const json_t *post = json_object_get(root, "post_processor");
    if (json_is_object(post) && jstr(post, "type") &&
        !strcmp(jstr(post, "type"), "TemplateProcessing")) {
        const json_t *single = json_object_get(post, "single");
        size_t n = json_array_size(single);
        for (size_t k = 0; k<n; k += n> 1 ? n - 1 : 1) {
            const json_t *sp = json_object_get(json_array_get(single, k), "SpecialToken");
            const char *name = sp ? jstr(sp, "id") : NULL;
            if (!name) continue;
            int32_t id = tok_lookup(tok, name, strlen(name));
            if (id < 0) continue;
            if (k == 0) {
                tok->bos = id;
                tok->add_bos = true;
            } else {
                tok->eos = id;
                tok->add_eos = true;
            }
        }
    }
    *out = tok;
    tok = NULL;
done:
    tok_free(tok);
    json_decref(root);
    return st;
}

comi_status tok_load_hf_json(comi_err *e, const char *path, comi_tokenizer **out) {
    comi_status st = load_tokenizer_json(e, path, out);
    if (st) return st;
    st = tok_finalize(e, *out, NULL);
    if (st) {
        tok_free(*out);
        *out = NULL;
    }
    return st;
}

static int32_t id_of_token(const comi_tokenizer *tok, const json_t *v) {
    const char *s = token_text(v);
    return s ? tok_lookup(tok, s, strlen(s)) : -1;
}

/* tokenizer_config.json's chat_template: a string, or a list of
 * {"name", "template"} of which "default" is the chat template. */
static comi_status set_chat_template(comi_err *e, comi_tokenizer *tok, const json_t *v) {
    if (json_is_array(v)) {
        const json_t *pick = NULL;
        size_t i;
        const json_t *it;
        json_array_foreach(v, i, it) {
            const char *name = json_string_value(json_object_get(it, "name"));
            if (name && !strcmp(name, "default")) pick = json_object_get(it, "template");
        }
        v = pick;
    }
    if (!json_is_string(v) || !json_string_length(v)) return COMI_OK;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (memchr(s, '\0', n)) return COMI_OK;
    free(tok->chat_template);
    tok->chat_template = comi_alloc_array(e, n + 1, 1, "chat template");
    if (!tok->chat_template) return e ? e->status : COMI_ERR_NOMEM;
    memcpy(tok->chat_template, s, n + 1);
    return COMI_OK;
}

comi_status tok_load_hf_dir(comi_err *e, const char *dir, comi_tokenizer **out) {
    *out = NULL;
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (stat(path, &sb) != 0) {
        char spm[4096];
        snprintf(spm, sizeof spm, "%s/tokenizer.model", dir);
        if (stat(spm, &sb) == 0)
            return comi_err_set(
                e, COMI_ERR_UNSUPPORTED,
                "%s: only tokenizer.model (SentencePiece) is present; a tokenizer.json is needed",
                dir);
        return comi_err_set(
            e, COMI_ERR_IO,
            "%s: no tokenizer.json (this model has no tokenizer; only token-id input works)", dir);
    }
    comi_tokenizer *tok = NULL;
    comi_status st = load_tokenizer_json(e, path, &tok);
    if (st) return st;
    /* tokenizer_config.json: add_bos/add_eos and the special tokens */
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg = load_json(e, path, false, &st);
    if (st) goto fail;
    if (cfg) {
        int32_t id;
        if ((id = id_of_token(tok, json_object_get(cfg, "bos_token"))) >= 0) tok->bos = id;
        if ((id = id_of_token(tok, json_object_get(cfg, "eos_token"))) >= 0) tok->eos = id;
        if ((id = id_of_token(tok, json_object_get(cfg, "unk_token"))) >= 0) tok->unk = id;
        if ((id = id_of_token(tok, json_object_get(cfg, "pad_token"))) >= 0) tok->pad = id;
        const json_t *v = json_object_get(cfg, "add_bos_token");
        if (json_is_boolean(v)) tok->add_bos = json_is_true(v);
        v = json_object_get(cfg, "add_eos_token");
        if (json_is_boolean(v)) tok->add_eos = json_is_true(v);
        st = set_chat_template(e, tok, json_object_get(cfg, "chat_template"));
        json_decref(cfg);
        if (st) goto fail;
    }
    /* chat_template.jinja (newer exports) when tokenizer_config.json has none */
    if (!tok->chat_template) {
        snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            char *data = NULL; /* NUL-terminated by comi_read_file */
            size_t n = 0;
            if ((st = comi_read_file(e, path, &data, &n))) goto fail;
            if (n && !memchr(data, '\0', n))
                tok->chat_template = data; /* owned by tok from here */
            else
                free(data);
        }
    }
    /* config.json / generation_config.json: ids when still unknown */
    static const char *const extra[] = {"config.json", "generation_config.json"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, extra[k]);
        json_t *c = load_json(e, path, false, &st);
        if (st) goto fail;
        if (!c) continue;
        int64_t id;
        if (tok->bos < 0 && json_first_id(json_object_get(c, "bos_token_id"), &id) && id >= 0 &&
            id < tok->n_vocab)
            tok->bos = (int32_t)id;
        if (tok->eos < 0 && json_first_id(json_object_get(c, "eos_token_id"), &id) && id >= 0 &&
            id < tok->n_vocab)
            tok->eos = (int32_t)id;
        json_decref(c);
    }
    if ((st = tok_finalize(e, tok, NULL))) goto fail;
    *out = tok;
    return COMI_OK;
fail:
    tok_free(tok);
    return st;
}
