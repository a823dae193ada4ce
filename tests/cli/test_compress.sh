#!/bin/sh
# test_compress.sh — `comi compress` and `comi eval` end to end: budgets,
# --json fields, documents input, and one-line errors for bad arguments.
. tests/cli/lib.sh
EX=examples/panama-canal.txt
Q="Who took over as chief engineer of the Panama Canal when John Stevens resigned?"

words=$(wc -w <"$EX")
out=$("$COMI" compress --context-file "$EX" --question "$Q" --ratio 8 2>"$TMP/err")
n=$(printf '%s' "$out" | wc -w)
if [ "$n" -eq $((words / 8)) ]; then pass compress_ratio_budget; else fail compress_ratio_budget "$n words, want $((words / 8))"; fi
case "$out" in *Goethals*) pass compress_keeps_answer ;; *) fail compress_keeps_answer "$out" ;; esac

out=$("$COMI" compress --context-file "$EX" --question "$Q" --target-tokens 7)
n=$(printf '%s' "$out" | wc -w)
if [ "$n" -eq 7 ]; then pass compress_target_tokens; else fail compress_target_tokens "$n words"; fi

"$COMI" compress --context-file "$EX" --question "$Q" --ratio 16 --json >"$TMP/j"
if python3 -c "
import json,sys
d=json.load(open('$TMP/j'))
assert set(d)=={'compressed','original_tokens','compressed_tokens','ratio','ms'}, d.keys()
assert d['original_tokens']==$words and d['compressed_tokens']==len(d['compressed'].split())
assert d['compressed_tokens']<=$words//16 and abs(d['ratio']-$words/d['compressed_tokens'])<1e-6
" 2>"$TMP/perr"; then pass compress_json; else fail compress_json "$(tail -1 "$TMP/perr")"; fi

a=$("$COMI" compress --context-file "$EX" --question "$Q" --ratio 5)
b=$("$COMI" compress --context "$(cat "$EX")" --question "$Q" --ratio 5)
if [ "$a" = "$b" ]; then pass compress_context_flag_same; else fail compress_context_flag_same "differs"; fi

printf '["Bananas are yellow.", "Mount Everest is 8,849 metres high.", "Paris is in France."]' >"$TMP/docs.json"
out=$("$COMI" compress --documents-file "$TMP/docs.json" --question "How high is Everest?" --target-tokens 6)
case "$out" in *8,849*) pass compress_documents_json ;; *) fail compress_documents_json "$out" ;; esac
printf '"Bananas are yellow."\n\n{"text": "Mount Everest is 8,849 metres high."}\n' >"$TMP/docs.jsonl"
out=$("$COMI" compress --documents-file "$TMP/docs.jsonl" --question "How high is Everest?" --target-tokens 6)
case "$out" in *8,849*) pass compress_documents_jsonl ;; *) fail compress_documents_jsonl "$out" ;; esac

"$COMI" compress --help >"$TMP/help" && grep -q -- "--target-tokens" "$TMP/help" && pass compress_help || fail compress_help "no usage"

expect_fail err_empty_context "context: empty" "$COMI" compress --context "   " --question q
expect_fail err_empty_question "question: empty" "$COMI" compress --context "some words" --question " "
expect_fail err_ratio_below_one "ratio" "$COMI" compress --context "some words" --question q --ratio 0.5
expect_fail err_ratio_not_number "not a finite number" "$COMI" compress --context "x" --question q --ratio abc
expect_fail err_target_zero "target-tokens" "$COMI" compress --context "some words" --question q --target-tokens 0
printf 'bad \377 utf8\n' >"$TMP/bad.txt"
expect_fail err_invalid_utf8 "invalid UTF-8 at byte 4" "$COMI" compress --context-file "$TMP/bad.txt" --question q
expect_fail err_missing_file "cannot open" "$COMI" compress --context-file "$TMP/none.txt" --question q
expect_fail err_unknown_encoder "not 'lexical', 'vectors:FILE' or a loadable model" "$COMI" compress --context x --question q --encoder /no/model.gguf
printf 'a 1 2\nb 1\n' >"$TMP/vec.txt"
expect_fail err_bad_vectors "line 2: 1 values, expected 2" "$COMI" compress --context x --question q --encoder "vectors:$TMP/vec.txt"
expect_fail err_two_sources "exactly one" "$COMI" compress --context x --context-file "$EX" --question q
expect_fail err_bad_docs "item 1 is not a string" sh -c "printf '[\"a\", 3]' >$TMP/d.json; \"$COMI\" compress --documents-file $TMP/d.json --question q"
expect_fail err_unknown_flag "unknown option" "$COMI" compress --context x --question q --frobnicate

# every error is one line
"$COMI" compress --context "   " --question q 2>"$TMP/err" >/dev/null
if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then pass err_one_line; else fail err_one_line "$(cat "$TMP/err")"; fi

# eval on a tiny data set: files, resumability, recall values
cat >"$TMP/d.jsonl" <<'JSONL'
{"id": "a", "input": "Bananas are yellow fruit. Mount Everest is 8,849 metres high. Paris is in France.", "prompt": "How high is Mount Everest?", "answer": ["8,849 metres"]}
{"id": "b", "input": "The sky is blue. Grass is green. Snow is white and cold.", "prompt": "What colour is snow?", "answer": "white", "documents": ["The sky is blue.", "Grass is green.", "Snow is white and cold."]}
JSONL
"$COMI" eval --data "$TMP/d.jsonl" --ratio 2,3 --methods comi,truncate,bm25 --out-dir "$TMP/ev" >"$TMP/ev.out" 2>"$TMP/ev.err"
if [ -f "$TMP/ev/metrics.json" ] && [ -f "$TMP/ev/recall.svg" ] && [ "$(wc -l <"$TMP/ev/examples.jsonl")" -eq 12 ]; then
    pass eval_files
else
    fail eval_files "$(cat "$TMP/ev.err")"
fi
if python3 -c "
import json
m=json.load(open('$TMP/ev/metrics.json'))
assert m['total_samples']==2
assert m['results']['comi']['2']['recall']==1.0, m['results']['comi']
assert m['results']['truncate']['2']['recall']==0.0, m['results']['truncate']
" 2>"$TMP/perr"; then pass eval_metrics_values; else fail eval_metrics_values "$(tail -1 "$TMP/perr")"; fi
"$COMI" eval --data "$TMP/d.jsonl" --ratio 2,3 --methods comi,truncate,bm25 --out-dir "$TMP/ev" >"$TMP/ev.out" 2>"$TMP/ev.err"
if grep -q "resuming, 12 cells" "$TMP/ev.err" && [ "$(wc -l <"$TMP/ev/examples.jsonl")" -eq 12 ]; then
    pass eval_resume
else
    fail eval_resume "$(cat "$TMP/ev.err")"
fi
# knobs: the same names in compress --set, eval --set, the HTTP body and Python
expect_fail compress_ratio_and_target "give either --ratio or --target-tokens, not both" \
    "$COMI" compress --context "a b c d e f g h" --question b --ratio 2 --target-tokens 3
"$COMI" compress --context "Alpha beta gamma delta. Epsilon zeta eta theta iota." --question zeta \
    --target-tokens 3 --set lead_weight=0 --set summary=off --lead-weight 0 >"$TMP/k.out" 2>"$TMP/k.err"
if [ $? -eq 0 ] && [ "$(wc -w <"$TMP/k.out")" -eq 3 ]; then pass compress_set_knobs; else fail compress_set_knobs "$(cat "$TMP/k.err")"; fi
expect_fail compress_set_unknown_knob "unknown knob 'lead'" \
    "$COMI" compress --context "a b c" --question b --set lead=1
expect_fail compress_set_bad_value "temperature: -1 must be > 0" \
    "$COMI" compress --context "a b c" --question b --set temperature=-1
# the settings are stored with the results; a resume with others refuses
if python3 -c "
import json
s=json.load(open('$TMP/ev/metrics.json'))['settings']
t=json.load(open('$TMP/ev/settings.json'))
assert s==t and s['encoder']=='lexical' and s['knobs']['beta']==0.3 and s['data_hash'].startswith('fnv1a64:'), s
" 2>"$TMP/perr"; then pass eval_settings_stored; else fail eval_settings_stored "$(tail -1 "$TMP/perr")"; fi
expect_fail eval_resume_other_settings "other settings (knobs.beta: 0.5 now, 0.3 there)" \
    "$COMI" eval --data "$TMP/d.jsonl" --ratio 2,3 --methods comi,truncate,bm25 --out-dir "$TMP/ev" --set beta=0.5
expect_fail eval_resume_other_documents "other settings (documents: false now, true there)" \
    "$COMI" eval --data "$TMP/d.jsonl" --ratio 2,3 --methods comi --out-dir "$TMP/ev" --no-documents
mkdir -p "$TMP/ev4" && cp "$TMP/ev/examples.jsonl" "$TMP/ev4/"
expect_fail eval_resume_unknown_settings "no settings.json" \
    "$COMI" eval --data "$TMP/d.jsonl" --ratio 2,3 --methods comi --out-dir "$TMP/ev4"
"$COMI" eval --data "$TMP/d.jsonl" --ratio 4 --methods full,truncate --out-dir "$TMP/ev3" >"$TMP/ev3.out" 2>&1
if python3 -c "
import json
m=json.load(open('$TMP/ev3/metrics.json'))['results']
assert m['full']['4']['recall']==1.0 and m['full']['4']['compression']==1.0, m['full']
" 2>"$TMP/perr"; then pass eval_full_method; else fail eval_full_method "$(tail -1 "$TMP/perr")"; fi
printf '{"input": "x", "prompt": "y", "answer": "z"}\n{"input": 5}\n' >"$TMP/bad.jsonl"
expect_fail eval_bad_line "line 2: field 'input' is not a string" "$COMI" eval --data "$TMP/bad.jsonl" --out-dir "$TMP/ev2"
expect_fail eval_unknown_method "unknown method 'magic'" "$COMI" eval --data "$TMP/d.jsonl" --methods comi,magic
expect_fail eval_unknown_task "unknown task" "$COMI" eval --data "$TMP/d.jsonl" --task nope
expect_fail eval_missing_data "cannot open" "$COMI" eval --data "$TMP/none.jsonl"

# --tokenizer MODEL: budgets in that model's tokens, checked against an
# independent count by `comi tokenize --no-bos` of the output.
TOKM=$GOLDEN/forward/models/tiny-qwen2-bpe.gguf
if [ -f "$TOKM" ]; then
    total=$("$COMI" tokenize --model "$TOKM" --no-bos --file "$EX" | wc -w)
    for r in 4 8 16; do
        "$COMI" compress --context-file "$EX" --question "$Q" --ratio $r --tokenizer "$TOKM" --json >"$TMP/tj" 2>"$TMP/err"
        python3 -c "import json; print(json.load(open('$TMP/tj'))['compressed'], end='')" >"$TMP/tout"
        got=$("$COMI" tokenize --model "$TOKM" --no-bos --file "$TMP/tout" | wc -w)
        if python3 -c "
import json
d=json.load(open('$TMP/tj'))
assert d['original_tokens']==$total, (d['original_tokens'], $total)
assert d['compressed_tokens']==$got, (d['compressed_tokens'], $got)
assert 1 <= $got <= $total//$r, ($got, $total//$r)
assert $got >= ($total//$r)*0.6, ('budget badly underused', $got, $total//$r)
" 2>"$TMP/perr"; then pass compress_tokenizer_ratio_$r; else fail compress_tokenizer_ratio_$r "$(tail -1 "$TMP/perr")"; fi
    done
    out=$("$COMI" compress --context-file "$EX" --question "$Q" --target-tokens 30 --tokenizer "$TOKM")
    printf '%s' "$out" >"$TMP/tout"
    got=$("$COMI" tokenize --model "$TOKM" --no-bos --file "$TMP/tout" | wc -w)
    if [ "$got" -ge 1 ] && [ "$got" -le 30 ]; then pass compress_tokenizer_target; else
        fail compress_tokenizer_target "$got model tokens for a budget of 30"; fi
    expect_fail compress_tokenizer_missing "--tokenizer" \
        "$COMI" compress --context-file "$EX" --question "$Q" --tokenizer "$TMP/none.gguf"
else
    skip compress_tokenizer "golden model not found at $TOKM"
fi

# --unit sentence: whole sentences, byte-exact (checked here by cutting the
# output at sentence ends and finding every piece in the input); the three
# spellings are the same; bad values are usage errors (exit 2)
for form in "--unit sentence" "--unit=sentence" "--set unit=sentence" "--unit readable"; do
    # shellcheck disable=SC2086
    "$COMI" compress --context-file "$EX" --question "$Q" --ratio 4 $form >"$TMP/u.out" 2>"$TMP/u.err"
    if python3 -c "
import re
src=open('$EX').read(); out=open('$TMP/u.out').read().rstrip('\n')
words=len(src.split()); assert 0 < len(out.split()) <= words//4, (len(out.split()), words//4)
for line in out.split('\n'):
    for piece in re.split(r'(?<=[.!?])\s+', line):
        assert piece and piece in src and re.search(r'[.!?]\$', piece), piece
" 2>"$TMP/perr"; then pass "compress_unit_sentence_${form%% *}"; else
        fail "compress_unit_sentence_${form%% *}" "$(tail -1 "$TMP/perr") $(cat "$TMP/u.err")"; fi
done
a=$("$COMI" compress --context-file "$EX" --question "$Q" --ratio 4 --unit sentence)
b=$("$COMI" compress --context-file "$EX" --question "$Q" --ratio 4 --unit=sentence)
c=$("$COMI" compress --context-file "$EX" --question "$Q" --ratio 4 --unit word)
d=$("$COMI" compress --context-file "$EX" --question "$Q" --ratio 4)
if [ "$a" = "$b" ] && [ "$c" = "$d" ] && [ "$a" != "$c" ]; then pass compress_unit_forms; else
    fail compress_unit_forms "sentence forms differ, or word is not the default"; fi
"$COMI" compress --context x --question q --unit paragraph >/dev/null 2>"$TMP/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "'paragraph' is not sentence, clause, word" "$TMP/err" &&
    [ "$(wc -l <"$TMP/err")" -eq 1 ]; then pass compress_unit_bad; else
    fail compress_unit_bad "exit $rc: $(cat "$TMP/err")"; fi
"$COMI" compress --context x --question q --unit >/dev/null 2>"$TMP/err"
if [ $? -eq 2 ]; then pass compress_unit_missing_value; else fail compress_unit_missing_value "$(cat "$TMP/err")"; fi
"$COMI" compress --context "One two three four five six. Seven eight nine ten eleven." --question six \
    --target-tokens 3 --unit sentence >/dev/null 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "shorter than every sentence" "$TMP/err"; then pass compress_unit_budget_too_small; else
    fail compress_unit_budget_too_small "exit $rc: $(cat "$TMP/err")"; fi
"$COMI" compress --help | grep -q -- "--unit U" && pass compress_unit_help || fail compress_unit_help "no --unit in --help"

# --tokenizer with the real SmolLM2 (FAIL when it cannot be had): the
# budget in its tokens, checked with `comi tokenize --no-bos`, sentence
# units too
SMOL=${COMI_SMOLLM2:-$(sh scripts/fetch_models.sh --quiet 2>/dev/null)}
if [ -n "$SMOL" ] && [ -f "$SMOL" ]; then
    total=$("$COMI" tokenize --model "$SMOL" --no-bos --file "$EX" | wc -w)
    for u in word sentence; do
        "$COMI" compress --context-file "$EX" --question "$Q" --ratio 4 --unit $u --tokenizer "$SMOL" --json >"$TMP/sj"
        python3 -c "import json; print(json.load(open('$TMP/sj'))['compressed'], end='')" >"$TMP/sout"
        got=$("$COMI" tokenize --model "$SMOL" --no-bos --file "$TMP/sout" | wc -w)
        if python3 -c "
import json
d=json.load(open('$TMP/sj'))
assert d['original_tokens']==$total and d['compressed_tokens']==$got, (d, $total, $got)
assert 0.75*($total//4) <= $got <= $total//4, ($got, $total//4)
" 2>"$TMP/perr"; then pass compress_smollm2_tokens_$u; else fail compress_smollm2_tokens_$u "$(tail -1 "$TMP/perr")"; fi
    done
else
    fail compress_smollm2_tokens "SmolLM2 cannot be had: scripts/fetch_models.sh failed and COMI_SMOLLM2 is not set"
fi

# --kv-type f16 with a model encoder: the encoder's session is made with a
# half cache, which the memory check sees (its need drops), so a
# --max-memory between the two needs refuses f32 and lets f16 run, with the
# text of an unlimited f16 run; without a model encoder it is a usage error
rc2() { "$@" >"$TMP/out" 2>"$TMP/err"; echo $?; }
r=$(rc2 "$COMI" compress --context x --question q --kv-type f16)
if [ "$r" = 2 ] && grep -q -- "--kv-type f16 needs --encoder MODEL (the lexical encoder" "$TMP/err"; then
    pass compress_kv_needs_model; else fail compress_kv_needs_model "exit $r: $(head -c 200 "$TMP/err")"; fi
r=$(rc2 "$COMI" compress --context x --question q --kv-type f8 --encoder x.gguf)
if [ "$r" = 2 ] && grep -q -- "--kv-type: 'f8' is not f32 or f16" "$TMP/err"; then
    pass compress_kv_bad; else fail compress_kv_bad "exit $r: $(head -c 200 "$TMP/err")"; fi
ENCM=$GOLDEN/forward/models/tiny-llama-spm.gguf
if [ -f "$ENCM" ]; then
    need() { # KV: the bytes text compression with the model encoder needs
        "$COMI" compress --context-file "$EX" --question "$Q" --encoder "$ENCM" --kv-type "$1" \
            --max-memory 1 2>&1 >/dev/null | sed -n 's/.* needs \([0-9][0-9]*\) bytes.*/\1/p'
    }
    n32=$(need f32); n16=$(need f16)
    if [ -n "$n32" ] && [ -n "$n16" ] && [ "$n16" -lt "$n32" ]; then
        pass compress_kv_f16_needs_less
        mid=$(( (n16 + n32) / 2 ))
        "$COMI" compress --context-file "$EX" --question "$Q" --encoder "$ENCM" --kv-type f16 >"$TMP/kv16" 2>&1
        r32=$(rc2 "$COMI" compress --context-file "$EX" --question "$Q" --encoder "$ENCM" --kv-type f32 --max-memory $mid)
        grep -q "needs $n32 bytes" "$TMP/err" || r32="$r32 ($(head -c 200 "$TMP/err"))"
        r16=$(rc2 "$COMI" compress --context-file "$EX" --question "$Q" --encoder "$ENCM" --kv-type f16 --max-memory $mid)
        if [ "$r32" = 1 ] && [ "$r16" = 0 ] && [ -s "$TMP/out" ] && cmp -s "$TMP/out" "$TMP/kv16"; then
            pass compress_kv_f16_fits; else fail compress_kv_f16_fits "at --max-memory $mid: f32 exit $r32, f16 exit $r16"; fi
    else
        fail compress_kv_f16_needs_less "f32 needs '$n32' bytes, f16 '$n16'"
    fi
else
    skip compress_kv_f16 "golden model not found at $ENCM"
fi
