/*
 * tokenizer_gguf.c — builds a tokenizer from a GGUF file's tokenizer.ggml.*
 * metadata, as llama.cpp's llama_vocab::load does: the pieces, scores,
 * token types and merges, and the pre-tokenizer regular expressions that
 * llama.cpp lists per tokenizer.ggml.pre (llm_tokenizer_bpe's constructor).
 * An unrecognised tokenizer.ggml.pre is an error (llama.cpp falls back to
 * "default" with a warning; a missing key still means "default").
 */
#include "runtime/tokenizer_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Pre-tokenizer regexes per tokenizer.ggml.pre (llama.cpp's                */
/* llm_tokenizer_bpe constructor)                                           */
/* ------------------------------------------------------------------------ */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_CONTRACTIONS_CI "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3                                                                                  \
    RE_CONTRACTIONS_CI                                                                             \
        "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"               \
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                   \
    RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"     \
                       "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"
#define RE_TEKKEN_WORDS                                                                            \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?(" \
    "(?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"

static const char *const re_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+",
                                         "[0-9][0-9][0-9]", NULL};
static const char *const re_llama3[] = {RE_LLAMA3, NULL};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-"
    "\xc6\xbf\xc7\x84-"
    "\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-"
    "\xcd\xbd\xcd\xbf\xce\x86\xce"
    "\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4"
    "\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1"
    "\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5"
    "\xb7\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-"
    "\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd"
    "\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-"
    "\xe1\xbe\xbc\xe1\xbe\xbe\xe1"
    "\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-"
    "\xe1\xbf\x9b"
    "\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-"
    "\xe1\xbf\xbc\xe2\x84\x82\xe2\x84"
    "\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2"
    "\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-"
    "\xe2\x84\xbf"
    "\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1"
    "\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-"
    "\xea\x99\xad\xea"
    "\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87\xea\x9e\x8b-"
    "\xea\x9e\x8e"
    "\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-"
    "\xef\xbc"
    "\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-"
    "\xf0\x90\x93\x93"
    "\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-"
    "\xf0\x90\xb3"
    "\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+",
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80"
    "\x80-\xe3\x80\x82]+",
    "\\s+$",
    RE_CJK,
    "\\p{N}+",
    NULL};
static const char *const re_deepseek3[] = {
    "\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]"
    "+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_deepseek_coder[] = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
                                                RE_CJK,   "\\p{N}",      NULL};
static const char *const re_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]",
                                        NULL};
static const char *const re_starcoder[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const re_gpt2[] = {RE_GPT2, NULL};
static const char *const re_qwen2[] = {RE_QWEN2, NULL};
static const char *const re_poro[] = {
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
    NULL};
static const char *const re_viking[] = {
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
    "\\p{N}", NULL};
static const char *const re_tekken[] = {
    RE_TEKKEN_WORDS "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL};
static const char *const re_gpt4o[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" RE_CONTRACTIONS_CI
    "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" RE_CONTRACTIONS_CI
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_seed_coder[] = {
    RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|"
                       "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};

typedef struct pre_def {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *const *regexes;
    bool ignore_merges;
    bool add_bos;
} pre_def;

static const pre_def k_pre_defs[] = {
    {"default", re_default, false, false},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2", re_llama3, true, true},
    {"dbrx|smaug-bpe|chatglm-bpe|glm4", re_llama3, false, false},
    {"deepseek-llm", re_deepseek_llm, false, false},
    {"deepseek-v3|hunyuan-dense", re_deepseek3, false, false},
    {"deepseek-coder", re_deepseek_coder, false, false},
    {"falcon", re_falcon, false, false},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", re_starcoder, false, false},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|jina-v1-en|"
     "jina-v2-code|roberta-bpe|exaone4|mpt|olmo|jais|trillion|granite-docling",
     re_gpt2, false, false},
    {"qwen2|qwen2.5|qwen-2.5|deepseek-r1-qwen|kormo|megrez|stablelm2|hunyuan|grok-2", re_qwen2,
     false, false},
    {"poro-chat|bloom|gpt3-finnish", re_poro, false, false},
    {"viking", re_viking, false, false},
    {"tekken", re_tekken, true, true},
    {"gpt-4o|llama4|minimax-m2", re_gpt4o, false, false},
    {"bailingmoe|bailingmoe2|llada-moe", re_bailingmoe, false, false},
    {"seed-coder", re_seed_coder, false, false},
};

static bool name_in_list(const char *list, const char *name, size_t len) {
    const char *p = list;
    while (*p) {
        const char *q = strchr(p, '|');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == len && !memcmp(p, name, len)) return true;
        if (!q) break;
        p = q + 1;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* GGUF loader                                                              */
/* ------------------------------------------------------------------------ */

static bool gguf_token_id(const gguf_file *f, const char *key, int32_t n_vocab, int32_t *id) {
    int64_t v;
    if (!gguf_get_i64(f, key, &v)) return false;
    if (v < 0 || v >= n_vocab) return false; /* llama.cpp: warn, keep the default */
    *id = (int32_t)v;
    return true;
}

comi_status tok_load_gguf(comi_err *e, const gguf_file *f, comi_tokenizer **out) {
    *out = NULL;
    const char *path = gguf_path(f);
    gguf_str model;
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: no tokenizer in this file (key tokenizer.ggml.model missing)",
                            path);
    tok_kind kind;
    if (model.len == 5 && !memcmp(model.ptr, "llama", 5))
        kind = TOK_KIND_SPM;
    else if (model.len == 4 && !memcmp(model.ptr, "gpt2", 4))
        kind = TOK_KIND_BPE;
    else if ((model.len == 8 && !memcmp(model.ptr, "no_vocab", 8)) ||
             (model.len == 4 && !memcmp(model.ptr, "none", 4)))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: no tokenizer in this file (tokenizer.ggml.model = '%.*s')", path,
                            (int)model.len, model.ptr);
    else
        return comi_err_set(
            e, COMI_ERR_UNSUPPORTED,
            "%s: tokenizer.ggml.model '%.*s' is not supported (only 'llama' and 'gpt2')", path,
            (int)(model.len > 64 ? 64 : model.len), model.ptr);

    const gguf_kv *tokens = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_T_ARRAY || tokens->arr_type != GGUF_T_STRING ||
        !tokens->strs)
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tokenizer.ggml.tokens missing or not a string array", path);
    if (tokens->arr_n == 0 || tokens->arr_n > INT32_MAX)
        return comi_err_set(e, COMI_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", path,
                            (unsigned long long)tokens->arr_n);
    int32_t n_vocab = (int32_t)tokens->arr_n;
    const gguf_kv *scores = gguf_find_kv(f, "tokenizer.ggml.scores");
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (scores && (scores->type != GGUF_T_ARRAY || scores->arr_n != tokens->arr_n ||
                   scores->arr_type == GGUF_T_STRING || scores->arr_type == GGUF_T_ARRAY))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tokenizer.ggml.scores must be a numeric array of %d entries", path,
                            (int)n_vocab);
    if (types && (types->type != GGUF_T_ARRAY || types->arr_n != tokens->arr_n ||
                  types->arr_type == GGUF_T_STRING || types->arr_type == GGUF_T_ARRAY))
        return comi_err_set(e, COMI_ERR_FORMAT,
                            "%s: tokenizer.ggml.token_type must be an integer array of %d entries",
                            path, (int)n_vocab);

    comi_tokenizer *tok;
    comi_status st = tok_new(e, kind, n_vocab, &tok);
    if (st) return st;
    if (scores) {
        tok->score = comi_alloc_array(e, (size_t)n_vocab, sizeof *tok->score, "token scores");
        if (!tok->score) goto fail;
    }
    for (int32_t i = 0; i < n_vocab; i++) {
        const gguf_str *s = &tokens->strs[i];
        if (s->len == 0) {
            /* llama.cpp renames empty pieces so they stay distinct */
            char buf[32];
            int n = snprintf(buf, sizeof buf, "[EMPTY_%d]", (int)i);
            st = tok_set_piece(e, tok, i, buf, (size_t)n);
        } else {
            st = tok_set_piece(e, tok, i, s->ptr, (size_t)s->len);
        }
        if (st) goto fail;
        if (scores) {
            double d;
            if (!gguf_arr_f64(scores, (uint64_t)i, &d)) {
                st = comi_err_set(e, COMI_ERR_FORMAT, "%s: tokenizer.ggml.scores[%d] unreadable",
                                  path, (int)i);
                goto fail;
            }
            tok->score[i] = (float)d + 0.0f; /* -0 == +0 as in llama.cpp's comparisons */
        }
        if (types) {
            int64_t t;
            if (!gguf_arr_i64(types, (uint64_t)i, &t)) {
                st = comi_err_set(e, COMI_ERR_FORMAT,
                                  "%s: tokenizer.ggml.token_type[%d] unreadable", path, (int)i);
                goto fail;
            }
            /* 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte;
             * anything else is "undefined" (no attribute bit) */
            tok->attr[i] = (t >= 1 && t <= 6) ? (uint8_t)(1u << (t - 1)) : 0;
        }
    }
    st = tok_build_map(e, tok);
    if (st) goto fail;

    gguf_str pre = {"", 0};
    bool have_pre = gguf_get_str(f, "tokenizer.ggml.pre", &pre);
    if (kind == TOK_KIND_BPE) {
        tok->byte_level = true;
        const pre_def *def = NULL;
        if (!have_pre) {
            def = &k_pre_defs[0];
        } else {
            for (size_t k = 0; k < sizeof k_pre_defs / sizeof k_pre_defs[0] && !def; k++)
                if (name_in_list(k_pre_defs[k].names, pre.ptr, (size_t)pre.len))
                    def = &k_pre_defs[k];
        }
        if (!def) {
            st = comi_err_set(e, COMI_ERR_UNSUPPORTED,
                              "%s: pre-tokenizer tokenizer.ggml.pre = '%.*s' is not supported",
                              path, (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
            goto fail;
        }
        snprintf(tok->pre_name, sizeof tok->pre_name, "%.*s", (int)(have_pre ? pre.len : 7),
                 have_pre ? pre.ptr : "default");
        for (const char *const *r = def->regexes; *r; r++) {
            st = tok_add_pre_regex(e, tok, *r, strlen(*r), false, true, path);
            if (st) goto fail;
        }
        tok->ignore_merges = def->ignore_merges;
        tok->add_bos = def->add_bos;
        tok->bos = n_vocab > 11 ? 11 : -1; /* llama.cpp's gpt2 defaults */
        tok->eos = tok->bos;
        if (name_in_list("chatglm-bpe|glm4", pre.ptr, (size_t)pre.len)) tok->bos = -1;

        const gguf_kv *merges = gguf_find_kv(f, "tokenizer.ggml.merges");
        if (!merges || merges->type != GGUF_T_ARRAY || merges->arr_type != GGUF_T_STRING ||
            !merges->strs) {
            st = comi_err_set(e, COMI_ERR_FORMAT,
                              "%s: tokenizer.ggml.merges missing or not a string array", path);
            goto fail;
        }
        for (uint64_t i = 0; i < merges->arr_n; i++) {
            const gguf_str *m = &merges->strs[i];
            /* "left right", split at the first space after position 0 */
            const char *sp = m->len > 1 ? memchr(m->ptr + 1, ' ', (size_t)m->len - 1) : NULL;
            if (!sp) {
                tok->n_merges_skipped++;
                continue;
            }
            size_t l = (size_t)(sp - m->ptr);
            st = tok_add_merge(e, tok, m->ptr, l, sp + 1, (size_t)m->len - l - 1);
            if (st) goto fail;
        }
    } else {
        tok->dec_metaspace = true;
        tok->add_space_prefix = true;
        tok->add_bos = true;
        tok->bos = n_vocab > 1 ? 1 : -1;
        tok->eos = n_vocab > 2 ? 2 : -1;
        tok->unk = 0;
        if (!tok->score) {
            tok->score = comi_calloc_array(e, (size_t)n_vocab, sizeof *tok->score, "token scores");
            if (!tok->score) goto fail;
        }
    }
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b)) tok->add_space_prefix = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b)) tok->add_bos = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b)) tok->add_eos = b;
    tok->strip_space = tok->kind == TOK_KIND_SPM && tok->add_space_prefix;
    gguf_token_id(f, "tokenizer.ggml.bos_token_id", n_vocab, &tok->bos);
    gguf_token_id(f, "tokenizer.ggml.eos_token_id", n_vocab, &tok->eos);
    gguf_token_id(f, "tokenizer.ggml.eot_token_id", n_vocab, &tok->eot);
    gguf_token_id(f, "tokenizer.ggml.eom_token_id", n_vocab, &tok->eom);
    gguf_token_id(f, "tokenizer.ggml.unknown_token_id", n_vocab, &tok->unk);
    gguf_token_id(f, "tokenizer.ggml.padding_token_id", n_vocab, &tok->pad);

    gguf_str name = {"", 0};
    char model_name[128] = "";
    if (gguf_get_str(f, "general.name", &name))
        snprintf(model_name, sizeof model_name, "%.*s", (int)(name.len > 127 ? 127 : name.len),
                 name.ptr);
    gguf_str tmpl;
    if (gguf_get_str(f, "tokenizer.chat_template", &tmpl) && tmpl.len &&
        !memchr(tmpl.ptr, '\0', tmpl.len)) {
        tok->chat_template = comi_alloc_array(e, tmpl.len + 1, 1, "chat template");
        if (!tok->chat_template) {
            st = e ? e->status : COMI_ERR_NOMEM;
            goto fail;
        }
        memcpy(tok->chat_template, tmpl.ptr, tmpl.len);
        tok->chat_template[tmpl.len] = '\0';
    }
    st = tok_finalize(e, tok, model_name);
    if (st) goto fail;
    *out = tok;
    return COMI_OK;
fail:
    tok_free(tok);
    return e ? e->status : st;
}
