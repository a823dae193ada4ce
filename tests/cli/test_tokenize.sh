#!/bin/sh
# tests/cli/test_tokenize.sh — `comi tokenize`: ids of the golden forward
# prompts (default BOS, --no-bos), decoding back with --ids, --help, and
# one-line errors for a missing file, a non-GGUF, a model without tokenizer,
# invalid UTF-8 and bad arguments.
. tests/cli/lib.sh

if "$COMI" tokenize --help >"$TMP/help" 2>&1 && grep -q "usage: comi tokenize" "$TMP/help"; then
    pass tokenize_help
else
    fail tokenize_help "no usage text"
fi

expect_fail tokenize_no_model "missing required option --model" "$COMI" tokenize --text hi
expect_fail tokenize_no_input "give the input" "$COMI" tokenize --model x.gguf
expect_fail tokenize_two_inputs "only one of" "$COMI" tokenize --model x.gguf --text a --file b
expect_fail tokenize_unknown_flag "unknown option '--bogus'" "$COMI" tokenize --model x.gguf --bogus
expect_fail tokenize_missing_model "$TMP/nope.gguf" "$COMI" tokenize --model "$TMP/nope.gguf" --text hi
printf 'not a gguf file at all' >"$TMP/bad.gguf"
expect_fail tokenize_not_gguf "bad.gguf" "$COMI" tokenize --model "$TMP/bad.gguf" --text hi
mkdir -p "$TMP/hfdir"
expect_fail tokenize_hf_without_tokenizer "tokenizer.json" "$COMI" tokenize --model "$TMP/hfdir" --text hi

F=$GOLDEN/forward
if [ ! -d "$F" ]; then
    skip tokenize_golden "golden data not found at $GOLDEN"
    exit 0
fi
M=$F/models/tiny-llama-spm.gguf
expect_fail tokenize_missing_file "nope.txt" "$COMI" tokenize --model "$M" --file "$TMP/nope.txt"
printf 'ok \377 bad' >"$TMP/bad.txt"
expect_fail tokenize_invalid_utf8 "invalid UTF-8 .*offset 3" "$COMI" tokenize --model "$M" --file "$TMP/bad.txt"
expect_fail tokenize_bad_id "not a token id" "$COMI" tokenize --model "$M" --ids "1 x2"
expect_fail tokenize_id_out_of_range "out of range" "$COMI" tokenize --model "$M" --ids "1 32000"

for m in tiny-llama-spm tiny-qwen2-bpe tiny-qwen3-bpe; do
    for k in 0 1 2; do
        want=$(cat "$F/$m/p$k.ids.txt")
        got=$("$COMI" tokenize --model "$F/models/$m.gguf" --file "$F/$m/p$k.txt" 2>"$TMP/err")
        if [ "$got" = "$want" ]; then pass "tokenize_${m}_p$k"; else
            fail "tokenize_${m}_p$k" "got '$got' want '$want' $(head -c 200 "$TMP/err")"; fi
        # decode back: the prompt text, byte for byte
        "$COMI" tokenize --model "$F/models/$m.gguf" --skip-special --ids "$want" >"$TMP/dec" 2>"$TMP/err"
        if cmp -s "$TMP/dec" "$F/$m/p$k.txt"; then pass "detokenize_${m}_p$k"; else
            fail "detokenize_${m}_p$k" "decoded text differs: $(head -c 200 "$TMP/dec") $(head -c 200 "$TMP/err")"; fi
    done
done

# --text with the same prompt, BOS handling
txt=$(cat "$F/tiny-llama-spm/p0.txt")
want=$(cat "$F/tiny-llama-spm/p0.ids.txt")
got=$("$COMI" tokenize --model "$M" --text "$txt")
if [ "$got" = "$want" ]; then pass tokenize_text_flag; else fail tokenize_text_flag "got '$got'"; fi
got=$("$COMI" tokenize --model "$M" --no-bos --text "$txt")
if [ "$got" = "${want#1 }" ]; then pass tokenize_no_bos; else fail tokenize_no_bos "got '$got'"; fi
# special-token text is plain text unless --parse-special
got=$("$COMI" tokenize --model "$M" --no-bos --text "<s>")
if [ "$got" != "1" ] && [ -n "$got" ]; then pass tokenize_special_as_text; else
    fail tokenize_special_as_text "got '$got'"; fi
got=$("$COMI" tokenize --model "$M" --no-bos --parse-special --text "<s>")
if [ "$got" = "1" ]; then pass tokenize_parse_special; else fail tokenize_parse_special "got '$got'"; fi
got=$("$COMI" tokenize --model "$M" --no-bos --text "")
if [ -z "$got" ]; then pass tokenize_empty; else fail tokenize_empty "got '$got'"; fi
