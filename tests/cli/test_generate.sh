#!/bin/sh
# tests/cli/test_generate.sh — `comi generate`: --help, one-line errors with
# exit 2 for usage errors and 1 for others.
. tests/cli/lib.sh

if "$COMI" generate --help >"$TMP/help" 2>&1 && grep -q "usage: comi generate" "$TMP/help"; then
    pass generate_help
else
    fail generate_help "no usage text"
fi

expect_usage() { # NAME PATTERN CMD...: exit status 2 and the message
    name=$1; pat=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne 2 ]; then fail "$name" "exit $rc, expected 2: $(head -c 200 "$TMP/err")"; return; fi
    if ! grep -q -- "$pat" "$TMP/err"; then fail "$name" "stderr: $(head -c 200 "$TMP/err")"; return; fi
    pass "$name"
}
expect_usage generate_no_model "missing required option --model" "$COMI" generate --prompt hi
expect_usage generate_no_prompt "exactly one of --prompt" "$COMI" generate --model x.gguf
expect_usage generate_two_prompts "exactly one of --prompt" "$COMI" generate --model x.gguf --prompt a --prompt-file b
expect_usage generate_system_needs_chat "--system needs --chat" "$COMI" generate --model x.gguf --prompt a --system s
expect_usage generate_bad_max "max-new-tokens" "$COMI" generate --model x.gguf --prompt a --max-new-tokens 0
expect_usage generate_unknown_flag "unknown option '--bogus'" "$COMI" generate --model x.gguf --prompt a --bogus
expect_fail generate_missing_model "nope.gguf" "$COMI" generate --model "$TMP/nope.gguf" --prompt hi
