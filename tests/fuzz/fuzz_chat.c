/*
 * fuzz_chat.c — libFuzzer target for chat templates (src/runtime/chat.c):
 * the input is a template's text. Invariants: recognition either fails with
 * COMI_ERR_UNSUPPORTED / COMI_ERR_INVALID_ARG and a message, or the render
 * of a fixed conversation holds every message in ChatML form, in order, and
 * ends with the generation prompt.
 */
#include "fuzz.h"

#include "runtime/chat.h"

#include <stdlib.h>
#include <string.h>

int fuzz_chat(const uint8_t *data, size_t size) {
    comi_err e = {0};
    static const comi_chat_message msgs[3] = {
        {"system", "sys"}, {"user", "hello"}, {"assistant", "<think>\nr\n</think>\n\nhi"}};
    char *text = NULL;
    size_t len = 0;
    comi_status st = chat_render(&e, (const char *)data, size, "<s>", msgs, 3, true, &text, &len);
    if (st == COMI_OK) {
        FUZZ_CHECK(text && strlen(text) == len);
        const char *sys = strstr(text, "<|im_start|>system\nsys<|im_end|>\n");
        const char *usr = strstr(text, "<|im_start|>user\nhello<|im_end|>\n");
        FUZZ_CHECK(sys && usr && sys < usr);
        const char *gen = "<|im_start|>assistant\n";
        FUZZ_CHECK(len >= strlen(gen) && !strcmp(text + len - strlen(gen), gen));
    } else {
        FUZZ_CHECK(!text && (st == COMI_ERR_UNSUPPORTED || st == COMI_ERR_INVALID_ARG) && e.msg[0]);
    }
    free(text);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_chat(data, size);
}
#endif
