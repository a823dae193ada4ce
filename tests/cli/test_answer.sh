#!/bin/sh
# tests/cli/test_answer.sh — `comi answer` on the golden pipeline cases
# (forward/pipeline: encoder 2 layers, merge size 4, weights 1, repetition
# penalty 1.3, 12 new tokens): group sizes exact, memory and decoder logits
# NMSE <= 1e-4, all 12 greedy ids exact (HF rule by default); --help, the empty-context note and
# one-line errors for bad input.
. tests/cli/lib.sh

nmse() {
    od -An -v -f "$1" | tr -s ' ' '\n' | grep -v '^$' >"$TMP/a.txt"
    od -An -v -f "$2" | tr -s ' ' '\n' | grep -v '^$' >"$TMP/b.txt"
    if [ "$(wc -l <"$TMP/a.txt")" -ne "$(wc -l <"$TMP/b.txt")" ]; then echo nan; return; fi
    paste "$TMP/a.txt" "$TMP/b.txt" |
        awk '{ d = $1 - $2; num += d * d; den += $2 * $2; n++ }
             END { if (n == 0 || den == 0) print "nan"; else printf "%.3g\n", num / den }'
}
le() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x != "nan" && x + 0 <= y + 0) }'; }

if "$COMI" answer --help >"$TMP/help" 2>&1 && grep -q "usage: comi answer" "$TMP/help"; then
    pass answer_help
else
    fail answer_help "no usage text"
fi
expect_fail answer_no_model "missing required option --model" "$COMI" answer --question q --context c
expect_fail answer_no_question "missing required option --question" "$COMI" answer --model x --context c
expect_fail answer_bad_merge "merge-size" "$COMI" answer --model x --context c --question q --merge-size 0
expect_fail answer_bad_penalty "repetition-penalty" "$COMI" answer --model x --context c --question q --repetition-penalty abc
expect_fail answer_missing_model "nope.gguf" "$COMI" answer --model "$TMP/nope.gguf" --context c --question q
expect_fail answer_missing_context_file "cannot open" "$COMI" answer --model x --context-file "$TMP/none.txt" --question q

P=$GOLDEN/forward/pipeline
if [ ! -d "$P" ]; then
    skip answer_golden "golden data not found at $GOLDEN"
    exit 0
fi
if ! command -v jq >/dev/null 2>&1; then
    skip answer_golden "jq not installed (needed to read the golden JSON)"
    exit 0
fi

for m in tiny-llama-spm tiny-qwen2-bpe; do
    model=$GOLDEN/forward/models/$m.gguf
    jq -j .context "$P/$m.json" >"$TMP/ctx.txt"
    q=$(jq -r .question "$P/$m.json")
    for mode in hf occ; do
        extra=""
        key=greedy_rep1_3
        [ $mode = occ ] && { extra=--penalty-per-occurrence; key=greedy_compounding; }
        want=$(jq -r ".$key | join(\" \")" "$P/$m.json")
        "$COMI" answer --model "$model" --encoder-layers 2 --merge-size 4 \
            --alpha-select 1 --beta-select 1 --alpha-merge 1 --beta-merge 1 \
            --context-file "$TMP/ctx.txt" --question "$q" --max-new-tokens 12 \
            --repetition-penalty 1.3 --memory-out "$TMP/mem.f32" --group-sizes-out "$TMP/gs.i32" \
            --logits-out "$TMP/l.f32" --print-ids $extra >"$TMP/out" 2>"$TMP/err"
        rc=$?
        if [ $rc -ne 0 ]; then
            fail "answer_${m}_$mode" "exit $rc: $(head -c 300 "$TMP/err")"
            continue
        fi
        if [ "$(wc -l <"$TMP/out")" -eq 2 ]; then pass "answer_${m}_${mode}_two_lines"; else
            fail "answer_${m}_${mode}_two_lines" "$(wc -l <"$TMP/out") lines"; fi
        if cmp -s "$TMP/gs.i32" "$P/$m.group_sizes.i32"; then pass "answer_${m}_${mode}_group_sizes"; else
            fail "answer_${m}_${mode}_group_sizes" "differ from golden"; fi
        e=$(nmse "$TMP/mem.f32" "$P/$m.memory.f32")
        echo "# $m $mode memory nmse $e"
        if le "$e" 1e-4; then pass "answer_${m}_${mode}_memory"; else
            fail "answer_${m}_${mode}_memory" "nmse $e > 1e-4"; fi
        e=$(nmse "$TMP/l.f32" "$P/$m.dec.logits_last.f32")
        echo "# $m $mode logits nmse $e"
        if le "$e" 1e-4; then pass "answer_${m}_${mode}_logits"; else
            fail "answer_${m}_${mode}_logits" "nmse $e > 1e-4"; fi
        # default (hf): greedy_rep1_3, Hugging Face's once-per-id rule;
        # --penalty-per-occurrence: the reference-only compounding ids.
        got=$(sed -n 2p "$TMP/out")
        if [ "$got" = "$want" ]; then pass "answer_${m}_${mode}_all_12_ids"; else
            fail "answer_${m}_${mode}_all_12_ids" "got '$got', want '$want'"; fi
    done

    # the question alone when the context is empty, with a note on stderr
    "$COMI" answer --model "$model" --context "" --question "$q" --max-new-tokens 4 \
        --print-ids >"$TMP/out" 2>"$TMP/err"
    if [ $? -eq 0 ] && grep -q "context is empty" "$TMP/err" && [ "$(wc -w <"$TMP/out")" -ge 1 ]; then
        pass "answer_${m}_empty_context"
    else
        fail "answer_${m}_empty_context" "$(head -c 300 "$TMP/err")"
    fi
done

m=tiny-llama-spm
model=$GOLDEN/forward/models/$m.gguf
expect_fail answer_empty_question "question is empty" "$COMI" answer --model "$model" --context abc --question " "
expect_fail answer_too_many_layers "encoder has 3 layers" "$COMI" answer --model "$model" --context abc --question q --encoder-layers 9
# default depth 8 is clamped to the model's 3 layers
if "$COMI" answer --model "$model" --context "Paris is in France." --question "Where is Paris?" \
    --max-new-tokens 2 --timings >"$TMP/out" 2>"$TMP/err" && grep -q "encoder layers 3" "$TMP/err"; then
    pass answer_default_layers_clamped
else
    fail answer_default_layers_clamped "$(head -c 300 "$TMP/err")"
fi

# comi convert: usage and bad input (conversion itself: tests/test_checkpoint.c)
if "$COMI" convert --help >"$TMP/help" 2>&1 && grep -q "usage: comi convert" "$TMP/help"; then
    pass convert_help
else
    fail convert_help "no usage text"
fi
expect_fail convert_no_out "missing required option --out" "$COMI" convert --checkpoint x --model y
expect_fail convert_missing_ckpt "checkpoint not found" "$COMI" convert --checkpoint "$TMP/none" --model "$model" --out "$TMP/p"
expect_fail answer_missing_ckpt "checkpoint not found" "$COMI" answer --checkpoint "$TMP/none" --model "$model" --context a --question b
