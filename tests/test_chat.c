/*
 * test_chat.c — chat templates (src/runtime/chat.c) without a model:
 *  - SmolLM2's own template (from tests/golden/smollm2/chat.json) renders
 *    every golden conversation exactly as Jinja2 did;
 *  - short ChatML-family templates written here with the markers Qwen2.5 and
 *    Qwen3 templates have (Jinja string escapes, a default system message,
 *    <think> / reasoning_content) render what the real Qwen2.5 / Qwen3
 *    templates print for those messages (the short ones only carry the
 *    markers comi recognises the family by);
 *  - templates of other families, an empty template, bad roles and NULL
 *    contents are clear errors.
 */
#include "comi.h"
#include "test.h"

#include <jansson.h>

static comi_ctx *ctx;

static char *render(const char *tmpl, const comi_chat_message *m, size_t n, bool gen,
                    comi_status *st) {
    char *text = NULL;
    *st = comi_chat_apply(ctx, NULL, tmpl, m, n, gen, &text, NULL);
    return text;
}

static void check_render(const char *name, const char *tmpl, const comi_chat_message *m, size_t n,
                         bool gen, const char *want) {
    comi_status st;
    char *got = render(tmpl, m, n, gen, &st);
    test_check(name, !st && got && !strcmp(got, want), "%s\n--- got ---\n%s\n--- want ---\n%s",
               st ? comi_errmsg(ctx) : "differs", got ? got : "(null)", want);
    comi_free(got);
}

static void test_smollm2_golden(void) {
    json_error_t jerr;
    json_t *root = json_load_file("tests/golden/smollm2/chat.json", 0, &jerr);
    if (!root) {
        test_fail("chat_smollm2_golden", "tests/golden/smollm2/chat.json: %s", jerr.text);
        return;
    }
    const char *tmpl = json_string_value(json_object_get(root, "chat_template"));
    const json_t *chats = json_object_get(root, "chats");
    size_t bad = 0, n = json_array_size(chats);
    for (size_t c = 0; c < n; c++) {
        const json_t *ch = json_array_get(chats, c);
        const json_t *msgs = json_object_get(ch, "messages");
        comi_chat_message mv[8];
        size_t nm = json_array_size(msgs) < 8 ? json_array_size(msgs) : 8;
        for (size_t i = 0; i < nm; i++) {
            mv[i].role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
            mv[i].content = json_string_value(json_object_get(json_array_get(msgs, i), "content"));
        }
        comi_status st;
        char *got = render(tmpl, mv, nm, true, &st);
        const char *want = json_string_value(json_object_get(ch, "prompt"));
        if (st || !want || strcmp(got, want)) bad++;
        comi_free(got);
    }
    test_check("chat_smollm2_golden", n >= 10 && bad == 0, "%zu of %zu prompts differ", bad, n);
    /* without add_generation_prompt: no assistant opening */
    comi_chat_message u = {"user", "Hi"};
    check_render("chat_smollm2_no_generation_prompt", tmpl, &u, 1, false,
                 "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                 "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    json_decref(root);
}

/* Qwen2.5's structure: escaped newlines inside the literals, the default
 * system message in an else branch, message.role attribute access. */
static const char k_qwen25_like[] =
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are Qwen, a test assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\") %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' "
    "}}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n";

static void test_qwen25_like(void) {
    comi_chat_message m[3] = {{"user", "Q1"}, {"assistant", "A1"}, {"user", "Q2"}};
    check_render("chat_chatml_default_system", k_qwen25_like, m, 3, true,
                 "<|im_start|>system\nYou are Qwen, a test assistant.<|im_end|>\n"
                 "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                 "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n");
    comi_chat_message s[2] = {{"system", "Be brief."}, {"user", "Q"}};
    check_render("chat_chatml_own_system", k_qwen25_like, s, 2, true,
                 "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
                 "<|im_start|>assistant\n");
}

/* Qwen3's structure: no default system message, reasoning_content and
 * <think> handling of assistant turns. */
static const char k_qwen3_like[] =
    "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + "
    "'<|im_end|>\\n' }}{%- endif %}\n"
    "{%- for message in messages %}{%- if message.role == \"user\" %}{{- '<|im_start|>' + "
    "message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "{%- elif message.role == \"assistant\" %}{%- set reasoning_content = '' %}"
    "{%- if '</think>' in message.content %}{%- set content = "
    "message.content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
    "{{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content + '\\n</think>\\n\\n' "
    "+ content }}{{- '<|im_end|>\\n' }}{%- endif %}{%- endfor %}\n"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

static void test_qwen3_like(void) {
    comi_chat_message m[3] = {
        {"user", "Q1"}, {"assistant", "<think>\nplan\n</think>\n\nA1"}, {"user", "Q2"}};
    /* before the last user message: the reasoning is dropped */
    check_render("chat_think_history_stripped", k_qwen3_like, m, 3, true,
                 "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                 "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n");
    comi_chat_message t[2] = {{"user", "Q"}, {"assistant", "<think>\nr\n</think>\n\nA"}};
    /* after it: rendered in the <think> form */
    check_render("chat_think_last_turn_kept", k_qwen3_like, t, 2, false,
                 "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\n"
                 "A<|im_end|>\n");
}

static void test_errors(void) {
    comi_chat_message u = {"user", "Hi"};
    static const char *const other[] = {
        /* Llama 3 */
        "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}",
        /* Gemma */
        "{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\\n' + "
        "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}",
        /* Mistral */
        "{% for message in messages %}[INST] {{ message['content'] }} [/INST]{% endfor %}",
        /* not a template */
        "hello",
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        comi_status st;
        char *t = render(other[i], &u, 1, true, &st);
        char name[64];
        snprintf(name, sizeof name, "chat_unknown_family_%zu", i);
        test_check(name, st == COMI_ERR_UNSUPPORTED && !t &&
                             strstr(comi_errmsg(ctx), "chat template not recognised"),
                   "status %d, message '%s'", (int)st, comi_errmsg(ctx));
        comi_free(t);
    }
    comi_status st;
    char *t = render("", &u, 1, true, &st);
    test_check("chat_empty_template", st != COMI_OK && !t, "accepted");
    comi_chat_message bad = {"tool", "x"};
    t = render(k_qwen25_like, &bad, 1, true, &st);
    test_check("chat_bad_role", st == COMI_ERR_INVALID_ARG && strstr(comi_errmsg(ctx), "role 'tool'"),
               "status %d, message '%s'", (int)st, comi_errmsg(ctx));
    comi_free(t);
    comi_chat_message nul = {"user", NULL};
    t = render(k_qwen25_like, &nul, 1, true, &st);
    test_check("chat_null_content", st == COMI_ERR_INVALID_ARG, "status %d", (int)st);
    comi_free(t);
    /* bos_token outside the first block is not a form this build renders */
    t = render("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
               "message['content'] + '<|im_end|>\\n' + bos_token }}{% endfor %}"
               "{{ '<|im_start|>assistant\\n' }}",
               &u, 1, true, &st);
    test_check("chat_bos_elsewhere", st == COMI_ERR_UNSUPPORTED, "status %d", (int)st);
    comi_free(t);
    /* a model without a template */
    t = NULL;
    st = comi_chat_apply(ctx, NULL, NULL, &u, 1, true, &t, NULL);
    test_check("chat_no_template_no_tokenizer", st == COMI_ERR_INVALID_ARG && !t, "status %d",
               (int)st);
}

int main(void) {
    ctx = comi_ctx_new(NULL);
    test_smollm2_golden();
    test_qwen25_like();
    test_qwen3_like();
    test_errors();
    comi_ctx_free(ctx);
    return test_exit();
}
