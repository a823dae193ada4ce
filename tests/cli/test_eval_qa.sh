#!/bin/sh
# tests/cli/test_eval_qa.sh — `comi eval --task qa` on a tiny model: the
# per-example JSONL and metrics JSON agree with each other and with
# `comi answer`, scoring is applied to the pipeline's answer, an interrupted
# run resumes without redoing finished runs, and bad input fails clearly.
# The text methods (the reader) on the tiny model: what each compressor hands
# the reader, the documented prompt, external rows, intervals, resuming;
# and a smoke test of the real SmolLM2 reading through its chat template.
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
    --methods comi,soft-full,soft-truncate,mean-pool --encoder-layers 2 --max-new-tokens 4 --threads 2 \
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
full_mem=$(jq -s '[.[] | select(.method == "soft-full")] | .[0] | .memory == .context_tokens' "$TMP/o1/examples.jsonl")
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
a=$(jq -S '.results | map_values(map_values(del(.seconds_per_example, .compressor_seconds_per_example)))' "$TMP/o1/metrics.json")
b=$(jq -S '.results | map_values(map_values(del(.seconds_per_example, .compressor_seconds_per_example)))' "$TMP/o2/metrics.json")
if [ "$a" = "$b" ]; then pass eval_qa_resume_same_metrics; else fail eval_qa_resume_same_metrics "metrics differ"; fi

# bad input
expect_fail eval_qa_no_model "missing required option --model" "$COMI" eval --task qa --data "$TMP/d.jsonl"
expect_fail eval_qa_bad_ratio "--ratio" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --ratio 0.5
expect_fail eval_qa_bad_ratio_text "--ratio" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --ratio abc
expect_fail eval_qa_bad_method "unknown method 'bogus'" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --methods comi,bogus
printf '{"id": "x", "input": "abc"}\n' >"$TMP/bad.jsonl"
expect_fail eval_qa_missing_field "line 1" "$COMI" eval --task qa --data "$TMP/bad.jsonl" --model "$M"

# ---- text methods: the reader (plain prompt on the tiny model, which has no chat template)
printf '{"id": "a", "ratio": 2, "compressed": "The Eiffel Tower was completed in 1889.", "ms": 5}\n{"id": "b", "ratio": 2, "compressed": "Big Ben is in London.", "ms": 7}\n{"id": "a", "ratio": 4, "compressed": "1889"}\n' >"$TMP/peer.jsonl"
trun() { "$COMI" eval --task qa --data "$1" --model "$M" --ratio 2,4 --prompt-format plain \
    --methods "full,truncate,bm25,text,external:peer=$TMP/peer.jsonl" --max-new-tokens 4 \
    --threads 2 --save-text --out-dir "$2"; }
trun "$TMP/d.jsonl" "$TMP/t1" >"$TMP/out" 2>"$TMP/err" || { fail eval_qa_text_run "$(head -c 300 "$TMP/err")"; exit 0; }
n=$(grep -c . "$TMP/t1/examples.jsonl")
if [ "$n" -eq 24 ]; then pass eval_qa_text_lines; else fail eval_qa_text_lines "$n lines, want 3 x (1 + 3 x 2) + 3 external rows = 24"; fi
# full hands the reader the whole input; truncate the first floor(words / ratio) words
ok=$(jq -s --slurpfile d "$TMP/d.jsonl" '[.[] | select(.method == "full") | . as $l |
    ($d[] | select(.id == $l.id) | .input) == $l.compressed and $l.memory == $l.context_tokens] | all' "$TMP/t1/examples.jsonl")
if [ "$ok" = true ]; then pass eval_qa_text_full_whole_input; else fail eval_qa_text_full_whole_input "$ok"; fi
ok=$(jq -s --slurpfile d "$TMP/d.jsonl" '[.[] | select(.method == "truncate") | . as $l |
    ($d[] | select(.id == $l.id) | .input | split(" ")) as $w |
    ($w[0:(($w | length) / $l.ratio | floor)] | join(" ")) == $l.compressed] | all' "$TMP/t1/examples.jsonl")
if [ "$ok" = true ]; then pass eval_qa_text_truncate_budget; else fail eval_qa_text_truncate_budget "$ok"; fi
ok=$(jq -s --slurpfile d "$TMP/d.jsonl" '[.[] | select(.method == "text" or .method == "bm25") | . as $l |
    ($d[] | select(.id == $l.id) | .input | split(" ") | length) as $n |
    (.compressed | split(" ") | map(select(. != "")) | length) <= ($n / $l.ratio | floor)] | all' "$TMP/t1/examples.jsonl")
if [ "$ok" = true ]; then pass eval_qa_text_bm25_text_budget; else fail eval_qa_text_bm25_text_budget "$ok"; fi
# the reader reads exactly the documented plain prompt: BOS + its tokens
jq -r 'select(.id == "b") | .input' "$TMP/d.jsonl" >"$TMP/ctx_b"
sys=$(jq -r .reader.system "$TMP/t1/metrics.json")
printf '%s\n\nDocuments:\n%s\n\nQuestion: %s\nAnswer:' "$sys" "$(cat "$TMP/ctx_b")" "Where is Big Ben?" >"$TMP/prompt_b"
want=$("$COMI" tokenize --model "$M" --file "$TMP/prompt_b" | wc -w)
got=$(jq 'select(.id == "b" and .method == "full") | .prompt_tokens' "$TMP/t1/examples.jsonl")
if [ "$got" -eq "$want" ] 2>/dev/null; then pass eval_qa_text_prompt; else fail eval_qa_text_prompt "$got prompt tokens, the documented prompt has $want"; fi
# external rows: scored where present, counted as missing where not, read as given
ne=$(jq '.results["external:peer"]["2"].n' "$TMP/t1/metrics.json")
mi=$(jq '.results["external:peer"]["2"].missing' "$TMP/t1/metrics.json")
if [ "$ne" = 2 ] && [ "$mi" = 1 ]; then pass eval_qa_external_missing; else fail eval_qa_external_missing "n $ne missing $mi"; fi
want=$("$COMI" tokenize --model "$M" --no-bos --text "Big Ben is in London." | wc -w)
got=$(jq 'select(.id == "b" and .method == "external:peer") | .memory' "$TMP/t1/examples.jsonl")
if [ "$got" -eq "$want" ] 2>/dev/null; then pass eval_qa_external_text; else fail eval_qa_external_text "$got vs $want tokens"; fi
ms=$(jq '.results["external:peer"]["2"].compressor_seconds_per_example' "$TMP/t1/metrics.json")
if awk -v m="$ms" 'BEGIN { exit !(m > 0.0059 && m < 0.0061) }'; then pass eval_qa_external_ms; else fail eval_qa_external_ms "$ms s, want the rows' mean 6 ms"; fi
# averages, intervals
want=$(jq -s '[.[] | select(.method == "bm25" and .ratio == 2) | .f1] | add / length' "$TMP/t1/examples.jsonl")
got=$(jq '.results.bm25["2"].avg_f1' "$TMP/t1/metrics.json")
if awk -v a="$want" -v b="$got" 'BEGIN { exit !((a - b) < 1e-9 && (b - a) < 1e-9) }'; then
    pass eval_qa_text_avg; else fail eval_qa_text_avg "$got vs $want"; fi
ok=$(jq '[.results[][] | (.accuracy_ci[0] <= .avg_accuracy and .avg_accuracy <= .accuracy_ci[1] and
    .f1_ci[0] <= .avg_f1 and .avg_f1 <= .f1_ci[1] and .em_ci[0] <= .avg_em)] | all' "$TMP/t1/metrics.json")
if [ "$ok" = true ]; then pass eval_qa_text_intervals; else fail eval_qa_text_intervals "$ok"; fi
# the text-method prediction is scored: with that prediction as the reference, EM is 1
pred=$(jq -r 'select(.id == "a" and .method == "bm25" and .ratio == 2) | .prediction' "$TMP/t1/examples.jsonl")
jq -c --arg p "$pred" 'select(.id == "a") | .answer = [$p]' "$TMP/d.jsonl" >"$TMP/d3.jsonl"
"$COMI" eval --task qa --data "$TMP/d3.jsonl" --model "$M" --ratio 2 --methods bm25 --prompt-format plain \
    --max-new-tokens 4 --out-dir "$TMP/t3" >/dev/null 2>"$TMP/err"
em=$(jq '.results.bm25["2"].avg_em' "$TMP/t3/metrics.json" 2>/dev/null)
if [ -n "$pred" ] && awk -v e="$em" 'BEGIN { exit !(e == 1) }'; then pass eval_qa_text_em_scored; else
    fail eval_qa_text_em_scored "em '$em' for reference '$pred': $(head -c 200 "$TMP/err")"; fi
# resume: finished lines are kept; a line read with another prompt is run again
mkdir -p "$TMP/t2"
head -n 5 "$TMP/t1/examples.jsonl" | sed '1s/"reader":"[^"]*"/"reader":"plain-0000000000000000"/' >"$TMP/t2/examples.jsonl"
trun "$TMP/d.jsonl" "$TMP/t2" >"$TMP/out" 2>"$TMP/err"
if grep -q "resuming, 4 of 27" "$TMP/err" && grep -q "1 lines .* another prompt" "$TMP/err"; then
    pass eval_qa_text_resume; else fail eval_qa_text_resume "$(head -c 300 "$TMP/err")"; fi
a=$(jq -S '.results | map_values(map_values(del(.seconds_per_example, .compressor_seconds_per_example)))' "$TMP/t1/metrics.json")
b=$(jq -S '.results | map_values(map_values(del(.seconds_per_example, .compressor_seconds_per_example)))' "$TMP/t2/metrics.json")
if [ "$a" = "$b" ]; then pass eval_qa_text_resume_same_metrics; else fail eval_qa_text_resume_same_metrics "metrics differ"; fi
if grep -q "<svg" "$TMP/t1/qa.svg" && grep -q "external:peer" "$TMP/t1/qa.svg"; then pass eval_qa_text_svg; else
    fail eval_qa_text_svg "no chart"; fi
# the text method's knobs (--set, --unit): its text is what comi compress makes with them,
# they are stored with its rows, and a resume with other knobs runs those rows again
cat >"$TMP/s.jsonl" <<'JSONL'
{"id": "s", "input": "Paris is big. The tower opened in 1889. It is very tall. Many people visit it every year.", "prompt": "When did the tower open?", "answer": "1889"}
JSONL
krun() { d=$1; shift; "$COMI" eval --task qa --data "$TMP/s.jsonl" --model "$M" --ratio 2 \
    --prompt-format plain --methods text,bm25 --max-new-tokens 4 --threads 2 --save-text --out-dir "$d" "$@"; }
B=$(( $(jq -r .input "$TMP/s.jsonl" | wc -w) / 2 ))
krun "$TMP/k1" --set unit=sentence --set lead_weight=0 >"$TMP/out" 2>"$TMP/err" || fail eval_qa_set_run "$(head -c 300 "$TMP/err")"
want=$("$COMI" compress --context "$(jq -r .input "$TMP/s.jsonl")" --question "When did the tower open?" \
    --target-tokens $B --unit sentence --set lead_weight=0)
got=$(jq -r 'select(.method == "text") | .compressed' "$TMP/k1/examples.jsonl")
kn=$(jq -r 'select(.method == "text") | .text_knobs' "$TMP/k1/examples.jsonl")
mk=$(jq -r .reader.text_knobs "$TMP/k1/metrics.json")
if [ -n "$want" ] && [ "$got" = "$want" ] && [ "$kn" = "unit=sentence,lead_weight=0" ] && [ "$mk" = "$kn" ]; then
    pass eval_qa_set_text; else fail eval_qa_set_text "text '$got' vs compress '$want', knobs '$kn' / '$mk'"; fi
dflt=$("$COMI" compress --context "$(jq -r .input "$TMP/s.jsonl")" --question "When did the tower open?" --target-tokens $B)
if [ "$dflt" != "$want" ]; then pass eval_qa_set_differs; else fail eval_qa_set_differs "the knobs change nothing here: '$dflt'"; fi
krun "$TMP/k1" --unit sentence --set lead_weight=0 >"$TMP/out" 2>"$TMP/err"
if grep -q "resuming, 2 of 2" "$TMP/err"; then pass eval_qa_set_resume_same; else fail eval_qa_set_resume_same "$(head -c 300 "$TMP/err")"; fi
krun "$TMP/k1" >"$TMP/out" 2>"$TMP/err"
got=$(jq -r 'select(.method == "text" and (has("text_knobs") | not)) | .compressed' "$TMP/k1/examples.jsonl")
if grep -q "resuming, 1 of 2" "$TMP/err" && grep -q "other text knobs (defaults now)" "$TMP/err" && [ "$got" = "$dflt" ]; then
    pass eval_qa_set_resume_other; else fail eval_qa_set_resume_other "text '$got' vs '$dflt': $(head -c 300 "$TMP/err")"; fi
expect_fail eval_qa_set_bad_knob "unknown knob 'bogus'" "$COMI" eval --task qa --data "$TMP/s.jsonl" --model "$M" --set bogus=1

# bad input
expect_fail eval_qa_no_chat_template "no chat template" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --methods full
expect_fail eval_qa_bad_format "--prompt-format" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --prompt-format xml
expect_fail eval_qa_external_syntax "external:NAME=FILE" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --methods external:peer
expect_fail eval_qa_external_missing_file "cannot open" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --methods "external:p=$TMP/nope.jsonl"
printf '{"id": "a", "ratio": 2, "compressed": "x"}\n{"id": "a", "ratio": "two", "compressed": "x"}\n' >"$TMP/badpeer.jsonl"
expect_fail eval_qa_external_bad_row "line 2" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --methods "external:p=$TMP/badpeer.jsonl"
expect_fail eval_qa_method_twice "given twice" "$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --methods bm25,bm25
"$COMI" eval --task qa --data "$TMP/d.jsonl" --model "$M" --methods bogus >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 2 ]; then pass eval_qa_bad_method_exit2; else fail eval_qa_bad_method_exit2 "exit $rc"; fi

# ---- the real SmolLM2-135M-Instruct reads through its chat template (a few seconds)
S=${COMI_SMOLLM2:-}
if [ -z "$S" ] && [ -f scripts/fetch_models.sh ]; then S=$(sh scripts/fetch_models.sh --quiet 2>/dev/null | head -n 1); fi
[ -n "$S" ] || S=$HOME/.cache/comi/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$S" ]; then
    fail eval_qa_smollm2 "the real model is not at '$S' (scripts/fetch_models.sh fetches it)"
    exit 0
fi
head -n 2 "$TMP/d.jsonl" >"$TMP/d2r.jsonl"
if "$COMI" eval --task qa --data "$TMP/d2r.jsonl" --model "$S" --methods full --ratio 4 --threads 2 \
    --out-dir "$TMP/r1" >"$TMP/out" 2>"$TMP/err"; then
    acc=$(jq '.results.full["1"].avg_accuracy' "$TMP/r1/metrics.json")
    fmt=$(jq -r '.reader.format' "$TMP/r1/metrics.json")
    # both answers are in their one-sentence contexts; the random-weight models score 0
    if [ "$fmt" = chatml ] && awk -v a="$acc" 'BEGIN { exit !(a >= 0.5) }'; then pass eval_qa_smollm2_reads; else
        fail eval_qa_smollm2_reads "format $fmt, accuracy $acc: $(jq -r .prediction "$TMP/r1/examples.jsonl" | tr '\n' '|')"; fi
else
    fail eval_qa_smollm2_reads "$(head -c 300 "$TMP/err")"
fi
