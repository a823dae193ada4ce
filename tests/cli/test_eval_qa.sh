#!/bin/sh
# tests/cli/test_eval_qa.sh — `comi eval --task qa` on a tiny model: the
# per-example JSONL and metrics JSON agree with each other and with
# `comi answer`, scoring is applied to the pipeline's answer, an interrupted
# run resumes without redoing finished runs, and bad input fails clearly.
. tests/cli/lib.sh

if "$COMI" eval --task qa --help >"$TMP/help" 2>&1 && grep -q "usage: comi eval --task qa" "$TMP/help"; then
    pass eval_qa_help
else
    fail eval_qa_help "no usage text"
fi
M=$GOLDEN/forward/models/tiny-llama-spm.gguf
if [ ! -f "$M" ]; then
    skip eval_qa "golden tiny model not found at $M"
    exit 0
fi
if ! command -v jq >/dev/null 2>&1; then
    skip eval_qa "jq not installed"
    exit 0
fi
cat >"$TMP/d.jsonl" <<'JSONL'
{"id": "a", "input": "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.", "prompt": "When was the Eiffel Tower completed?", "answer": ["1889"]}
{"id": "b", "input": "Big Ben is the nickname for the Great Bell of the clock in London.", "prompt": "Where is Big Ben?", "answer": "London"}
{"id": "c", "input": "The Statue of Liberty stands in New York Harbor; it was dedicated in 1886.", "prompt": "When was the Statue of Liberty dedicated?", "answer": ["1886", "in 1886"]}
JSONL
run() { "$COMI" eval --task qa --data "$1" --model "$M" --ratio 2,4 \
    --methods comi,full,truncate,mean-pool --encoder-layers 2 --max-new-tokens 4 --threads 2 \
    --out-dir "$2"; }
run "$TMP/d.jsonl" "$TMP/o1" >"$TMP/out" 2>"$TMP/err" || { fail eval_qa_run "$(head -c 300 "$TMP/err")"; exit 0; }
n=$(grep -c . "$TMP/o1/examples.jsonl")
if [ "$n" -eq 21 ]; then pass eval_qa_lines; else fail eval_qa_lines "$n lines, want 3 x (3 x 2 + 1) = 21"; fi
ts=$(jq .total_samples "$TMP/o1/metrics.json")
if [ "$ts" = 3 ]; then pass eval_qa_total_samples; else fail eval_qa_total_samples "$ts"; fi
# averages in metrics.json are the means of the per-example lines
want=$(jq -s '[.[] | select(.method == "comi" and .ratio == 2) | .f1] | add / length' "$TMP/o1/examples.jsonl")
got=$(jq '.results.comi["2"].avg_f1' "$TMP/o1/metrics.json")
if awk -v a="$want" -v b="$got" 'BEGIN { exit !((a - b) < 1e-9 && (b - a) < 1e-9) }'; then
    pass eval_qa_avg_matches_lines; else fail eval_qa_avg_matches_lines "$got vs $want"; fi
comp=$(jq '.results.comi["4"].compression' "$TMP/o1/metrics.json")
if awk -v c="$comp" 'BEGIN { exit !(c > 3 && c <= 4.5) }'; then pass eval_qa_compression; else
    fail eval_qa_compression "comi@4 achieved $comp"; fi
full_mem=$(jq -s '[.[] | select(.method == "full")] | .[0] | .memory == .context_tokens' "$TMP/o1/examples.jsonl")
if [ "$full_mem" = true ]; then pass eval_qa_full_reads_all; else fail eval_qa_full_reads_all "$full_mem"; fi
for f in question prediction references memory ms; do
    if jq -e "has(\"$f\")" "$TMP/o1/examples.jsonl" >/dev/null; then pass "eval_qa_field_$f"; else
        fail "eval_qa_field_$f" "missing"; fi
done
if grep -q "<svg" "$TMP/o1/qa.svg" && grep -q "mean-pool" "$TMP/o1/qa.svg"; then pass eval_qa_svg; else
    fail eval_qa_svg "no chart"; fi

# the comi prediction is what comi answer prints
pred=$(jq -r 'select(.id == "a" and .method == "comi" and .ratio == 2) | .prediction' "$TMP/o1/examples.jsonl")
ans=$("$COMI" answer --model "$M" --encoder-layers 2 --merge-size 2 --max-new-tokens 4 \
    --context "$(jq -r 'select(.id == "a") | .input' "$TMP/d.jsonl")" \
    --question "When was the Eiffel Tower completed?" 2>/dev/null)
if [ "$pred" = "$ans" ]; then pass eval_qa_matches_answer; else fail eval_qa_matches_answer "'$pred' vs '$ans'"; fi

# scoring: a data set whose reference is that prediction scores EM 1 there
jq -c --arg p "$pred" 'select(.id == "a") | .answer = [$p]' "$TMP/d.jsonl" >"$TMP/d2.jsonl"
"$COMI" eval --task qa --data "$TMP/d2.jsonl" --model "$M" --ratio 2 --methods comi \
    --encoder-layers 2 --max-new-tokens 4 --out-dir "$TMP/o3" >/dev/null 2>"$TMP/err"
em=$(jq '.results.comi["2"].avg_em' "$TMP/o3/metrics.json" 2>/dev/null)
if [ -n "$pred" ] && awk -v e="$em" 'BEGIN { exit !(e == 1) }'; then pass eval_qa_em_scored; else
    fail eval_qa_em_scored "em '$em' for reference '$pred': $(head -c 200 "$TMP/err")"; fi

# resume: keep 10 finished lines and half of the 11th, as an interrupted run leaves them
mkdir -p "$TMP/o2"
head -n 10 "$TMP/o1/examples.jsonl" >"$TMP/o2/examples.jsonl"
sed -n 11p "$TMP/o1/examples.jsonl" | head -c 40 >>"$TMP/o2/examples.jsonl"
printf '\n' >>"$TMP/o2/examples.jsonl"
run "$TMP/d.jsonl" "$TMP/o2" >"$TMP/out" 2>"$TMP/err"
if grep -q "resuming, 10 of 21" "$TMP/err"; then pass eval_qa_resume_skips_done; else
    fail eval_qa_resume_skips_done "$(head -c 300 "$TMP/err")"; fi
valid=$(while read -r l; do echo "$l" | jq -e . >/dev/null 2>&1 && echo ok; done <"$TMP/o2/examples.jsonl" | grep -c ok)
if [ "$valid" -eq 21 ]; then pass eval_qa_resume_lines; else fail eval_qa_resume_lines "$valid valid lines"; fi
a=$(jq -S '.results | map_values(map_values(del(.seconds_per_example)))' "$TMP/o1/metrics.json")
b=$(jq -S '.results | map_values(map_values(del(.seconds_per_example)))' "$TMP/o2/metrics.json")
if [ "$a" = "$b" ]; then pass eval_qa_resume_same_metrics; else fail eval_qa_resume_same_metrics "metrics differ"; fi

# bad input
expect_fail eval_qa_no_model "missing required option --model" "$COMI" eval --task qa --data "$TMP/d.jsonl"
expect_fail eval_qa_bad_ratio "--ratio" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --ratio 0.5
expect_fail eval_qa_bad_ratio_text "--ratio" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --ratio abc
expect_fail eval_qa_bad_method "unknown method 'bm25'" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --methods comi,bm25
printf '{"id": "x", "input": "abc"}\n' >"$TMP/bad.jsonl"
expect_fail eval_qa_missing_field "line 1" "$COMI" eval --task qa --data "$TMP/bad.jsonl" --model "$M"
