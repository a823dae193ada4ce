#!/bin/sh
# tests/cli/test_limits.sh — --max-context-tokens and --max-memory of every
# command that reads a context (merge, compress, eval in both modes, answer,
# forward; serve is in test_serve.sh): --help documents them, a limit just
# below the need exits 1 with one stderr line naming the figure and the
# limit, at the need it runs, and bad SIZE values exit 2 (a usage error)
# naming the value.
. tests/cli/lib.sh

# expect_exit NAME RC PATTERN CMD... — CMD exits with RC; when RC != 0 its
# stderr is one line matching PATTERN.
expect_exit() {
    name=$1; want=$2; pat=$3; shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "$name" "exit $rc, expected $want: $(head -c 300 "$TMP/err")"; return
    fi
    if [ "$want" -ne 0 ]; then
        if [ "$(wc -l <"$TMP/err")" -ne 1 ]; then fail "$name" "stderr is not one line: $(head -c 300 "$TMP/err")"; return; fi
        if ! grep -q -- "$pat" "$TMP/err"; then fail "$name" "stderr does not match '$pat': $(head -c 300 "$TMP/err")"; return; fi
    fi
    pass "$name"
}

# needs — the N of "needs N bytes" in the last stderr
needs() { sed -n 's/.* needs \([0-9][0-9]*\) bytes.*/\1/p' "$TMP/err"; }

# --- --help of every command documents both flags ------------------------
for c in merge compress eval "eval --task qa" answer forward serve; do
    # shellcheck disable=SC2086
    "$COMI" $c --help >"$TMP/help" 2>&1
    if grep -q -- "--max-context-tokens N" "$TMP/help" && grep -q -- "--max-memory SIZE" "$TMP/help" &&
        grep -q "physical memory" "$TMP/help"; then
        pass "help_limits_$c"
    else
        fail "help_limits_$c" "--help lacks --max-context-tokens / --max-memory"
    fi
done

# --- SIZE parsing (one parser for every command) --------------------------
TEN="one two three four five six seven eight nine ten"
for bad in -1 +5 18446744073709551616 99999999999999999999999 5x 1.5G 12Q "" " 5" "5 " 1KiBB 17179869184T; do
    expect_exit "size_bad_[$bad]" 2 "--max-memory: '$bad'" \
        "$COMI" compress --question three --context "$TEN" --max-memory "$bad"
done
expect_exit size_missing 2 "missing value for --max-memory" "$COMI" compress --question three --context "$TEN" --max-memory
expect_exit tokens_negative 2 "--max-context-tokens: -1 is out of range" \
    "$COMI" compress --question three --context "$TEN" --max-context-tokens -1
expect_exit tokens_junk 2 "--max-context-tokens: '1k' is not an integer" \
    "$COMI" compress --question three --context "$TEN" --max-context-tokens 1k
# units: the refusal names the limit in bytes
for pair in 1000:1000 1K:1024 1k:1024 2KiB:2048 1kB:1000 3KB:3000 1M:1048576 1MiB:1048576 1MB:1000000 7b:7; do
    v=${pair%%:*}; bytes=${pair#*:}
    if [ "$bytes" -lt 20000 ]; then
        expect_exit "size_unit_$v" 1 "limit of $bytes bytes" \
            "$COMI" compress --question three --context "$TEN" --max-memory "$v"
    else
        expect_exit "size_unit_$v" 0 "" "$COMI" compress --question three --context "$TEN" --max-memory "$v"
    fi
done
expect_exit size_unit_G 0 "" "$COMI" compress --question three --context "$TEN" --max-memory 1G
expect_exit size_unit_TiB 0 "" "$COMI" compress --question three --context "$TEN" --max-memory 1TiB
expect_exit size_zero_is_physical 0 "" "$COMI" compress --question three --context "$TEN" --max-memory 0

# --- compress --------------------------------------------------------------
expect_exit compress_tokens_below 1 "context has 10 tokens, more than the limit of 9" \
    "$COMI" compress --question three --context "$TEN" --max-context-tokens 9
expect_exit compress_tokens_at 0 "" "$COMI" compress --question three --context "$TEN" --max-context-tokens 10
expect_exit compress_memory_tiny 1 "needs [0-9]* bytes.*limit of 100 bytes; raise it" \
    "$COMI" compress --question three --context "$TEN" --max-memory 100
N=$(needs)
if [ -n "$N" ]; then
    expect_exit compress_memory_below 1 "needs $N bytes" \
        "$COMI" compress --question three --context "$TEN" --max-memory $((N - 1))
    expect_exit compress_memory_at 0 "" "$COMI" compress --question three --context "$TEN" --max-memory "$N"
else
    fail compress_memory_below "no figure in: $(cat "$TMP/err")"
fi

# --- merge (10 tokens x 4, merge size 4, 1 thread: 5028 bytes) -------------
python3 - "$TMP" <<'PY'
import array, sys
h = array.array('f', [float((i * 7) % 11 - 5) for i in range(40)])
open(sys.argv[1] + "/h.f32", "wb").write(h.tobytes())
open(sys.argv[1] + "/q.f32", "wb").write(array.array('f', [1, 2, 3, 4]).tobytes())
PY
MERGE="$COMI merge --context $TMP/h.f32 --query $TMP/q.f32 --dim 4 --merge-size 4 --out $TMP/m.f32 --threads 1"
# shellcheck disable=SC2086
expect_exit merge_tokens_below 1 "merge context has 10 tokens, more than the limit of 9" $MERGE --max-context-tokens 9
# shellcheck disable=SC2086
expect_exit merge_tokens_at 0 "" $MERGE --max-context-tokens 10
# shellcheck disable=SC2086
expect_exit merge_memory_below 1 "merge of 10 x 4 hidden states needs 5028 bytes.*limit of 5027 bytes" $MERGE --max-memory 5027
# shellcheck disable=SC2086
expect_exit merge_memory_at 0 "" $MERGE --max-memory 5028
# shellcheck disable=SC2086
expect_exit merge_bad_size 2 "--max-memory: '5GG'" $MERGE --max-memory 5GG

# --- eval (recall) ---------------------------------------------------------
printf '{"input": "%s", "prompt": "which number is three?", "answer": "three"}\n' "$TEN" >"$TMP/d.jsonl"
EVAL="$COMI eval --data $TMP/d.jsonl --ratio 2 --methods comi,bm25"
# shellcheck disable=SC2086
expect_exit eval_tokens_below 1 "line 1 (id line:1), method comi: context has 10 tokens, more than the limit of 9" \
    $EVAL --out-dir "$TMP/ev1" --max-context-tokens 9
# shellcheck disable=SC2086
expect_exit eval_tokens_at 0 "" $EVAL --out-dir "$TMP/ev2" --max-context-tokens 10
if [ -f "$TMP/ev2/examples.jsonl" ] && [ "$(wc -l <"$TMP/ev2/examples.jsonl")" -eq 2 ]; then
    pass eval_tokens_at_wrote_cells
else fail eval_tokens_at_wrote_cells "examples.jsonl lacks the 2 cells"; fi
# shellcheck disable=SC2086
expect_exit eval_memory_below 1 "needs [0-9]* bytes.*limit of 1024 bytes" $EVAL --out-dir "$TMP/ev3" --max-memory 1K
# shellcheck disable=SC2086
expect_exit eval_bad_size 2 "--max-memory: '-3'" $EVAL --out-dir "$TMP/ev4" --max-memory -3

# --- answer, forward, eval --task qa: a golden model ----------------------
MODEL=$GOLDEN/forward/models/tiny-llama-spm.gguf
if [ ! -f "$MODEL" ]; then
    for t in answer_tokens_below answer_tokens_at answer_memory_below answer_memory_at \
        forward_tokens_below forward_tokens_at forward_generate_counts forward_memory_below \
        eval_qa_tokens_below; do
        skip "$t" "no golden model $MODEL"
    done
else
    CTXT="The Eiffel Tower is in Paris. It was finished in 1889."
    ANS="$COMI answer --model $MODEL --question When? --max-new-tokens 2"
    # shellcheck disable=SC2086
    expect_exit answer_tokens_below 1 "answer: context has [0-9]* tokens, more than the limit of 5" \
        $ANS --context "$CTXT" --max-context-tokens 5
    NT=$(sed -n 's/.*context has \([0-9][0-9]*\) tokens.*/\1/p' "$TMP/err")
    # shellcheck disable=SC2086
    expect_exit answer_tokens_at 0 "" $ANS --context "$CTXT" --max-context-tokens "${NT:-0}"
    # shellcheck disable=SC2086
    expect_exit answer_memory_tiny 1 "answer: context of [0-9]* tokens.*needs [0-9]* bytes.*limit of 1024 bytes" \
        $ANS --context "$CTXT" --max-memory 1K
    N=$(needs)
    # shellcheck disable=SC2086
    expect_exit answer_memory_below 1 "needs $N bytes" $ANS --context "$CTXT" --max-memory $((N - 1))
    # shellcheck disable=SC2086
    expect_exit answer_memory_at 0 "" $ANS --context "$CTXT" --max-memory "$N"
    # shellcheck disable=SC2086
    expect_exit answer_bad_size 2 "--max-memory: '1x'" $ANS --context "$CTXT" --max-memory 1x

    echo "1 2 3 4 5" >"$TMP/ids.txt"
    FWD="$COMI forward --model $MODEL --ids $TMP/ids.txt"
    # shellcheck disable=SC2086
    expect_exit forward_tokens_below 1 "session has 5 tokens, more than the limit of 4" $FWD --max-context-tokens 4
    # shellcheck disable=SC2086
    expect_exit forward_tokens_at 0 "" $FWD --max-context-tokens 5
    # shellcheck disable=SC2086
    expect_exit forward_generate_counts 1 "session has 7 tokens, more than the limit of 5" \
        $FWD --max-context-tokens 5 --generate 2
    # shellcheck disable=SC2086
    expect_exit forward_memory_below 1 "session of 5 tokens needs [0-9]* bytes.*limit of 1024 bytes" $FWD --max-memory 1K
    N=$(needs)
    # shellcheck disable=SC2086
    expect_exit forward_memory_at 0 "" $FWD --max-memory "$N"
    # shellcheck disable=SC2086
    expect_exit forward_bad_size 2 "--max-memory: 'G'" $FWD --max-memory G

    printf '{"input": "%s", "prompt": "When was it finished?", "answer": "1889"}\n' "$CTXT" >"$TMP/qa.jsonl"
    QA="$COMI eval --task qa --data $TMP/qa.jsonl --model $MODEL --methods comi --ratio 4 --max-new-tokens 2"
    # shellcheck disable=SC2086
    expect_exit eval_qa_tokens_below 1 "line 1 (id line:1).*answer: context has [0-9]* tokens, more than the limit of 5" \
        $QA --out-dir "$TMP/qa1" --max-context-tokens 5
    # shellcheck disable=SC2086
    expect_exit eval_qa_tokens_at 0 "" $QA --out-dir "$TMP/qa2" --max-context-tokens "${NT:-0}"
    # shellcheck disable=SC2086
    expect_exit eval_qa_memory_below 1 "needs [0-9]* bytes.*limit of 1024 bytes" $QA --out-dir "$TMP/qa3" --max-memory 1K
    # shellcheck disable=SC2086
    expect_exit eval_qa_bad_size 2 "--max-memory: '1.0'" $QA --out-dir "$TMP/qa4" --max-memory 1.0
fi
exit 0
