#!/bin/sh
# tests/cli/test_options.sh — the option parser every command shares
# (tools/opt.c): in every command a usage error (unknown option, missing
# value, malformed value, stray argument, missing required option) exits 2
# with exactly one stderr line naming the option and `comi CMD --help`;
# --opt=value gives the same result as --opt value; a misspelt option gets
# "did you mean"; a file argument of - reads standard input; --help prints
# the option table and exits 0.
. tests/cli/lib.sh

# usage_error NAME PATTERN CMD... — exit 2, one stderr line matching PATTERN
# that points to --help, nothing on stdout.
usage_error() {
    name=$1; pat=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    rc=$?
    if [ "$rc" -ne 2 ]; then fail "$name" "exit $rc, expected 2: $(head -c 300 "$TMP/err")"; return; fi
    if [ "$(wc -l <"$TMP/err")" -ne 1 ]; then
        fail "$name" "stderr is not one line: $(head -c 300 "$TMP/err")"; return
    fi
    if ! grep -q -- "$pat" "$TMP/err"; then
        fail "$name" "stderr does not match '$pat': $(cat "$TMP/err")"; return
    fi
    if ! grep -q -- "--help" "$TMP/err"; then fail "$name" "no pointer to --help: $(cat "$TMP/err")"; return; fi
    if [ -s "$TMP/out" ]; then fail "$name" "wrote to stdout: $(head -c 200 "$TMP/out")"; return; fi
    pass "$name"
}

# Every command: CMD, one numeric option with a malformed value, the
# arguments that satisfy its required options (paths need not exist: usage
# errors come before any file is read).
while IFS='|' read -r cmd bad req; do
    tag=$(echo "$cmd" | tr ' -' '__')
    # shellcheck disable=SC2086
    usage_error "${tag}_unknown" "unknown option '--frobnicate'" "$COMI" $cmd $req --frobnicate
    # shellcheck disable=SC2086
    usage_error "${tag}_missing_value" "missing value for ${bad%%=*}" "$COMI" $cmd $req "${bad%%=*}"
    # shellcheck disable=SC2086
    usage_error "${tag}_malformed" "${bad%%=*}: " "$COMI" $cmd $req "$bad"
    # shellcheck disable=SC2086
    usage_error "${tag}_stray" "unexpected argument 'stray1'" "$COMI" $cmd $req stray1 stray
    # shellcheck disable=SC2086
    usage_error "${tag}_flag_value" "takes no value" "$COMI" $cmd $req --help=yes
    # shellcheck disable=SC2086
    if "$COMI" $cmd --help >"$TMP/help" 2>"$TMP/err" && grep -q "usage: comi ${cmd%% *}" "$TMP/help" &&
        grep -q -- "-h, --help" "$TMP/help" && [ ! -s "$TMP/err" ]; then pass "${tag}_help"; else
        fail "${tag}_help" "$(head -c 200 "$TMP/help") $(head -c 200 "$TMP/err")"; fi
done <<EOF
compress|--ratio=abc|--question=q
eval|--limit=x|--data=d.jsonl
eval --task qa|--limit=x|--data=d.jsonl
answer|--merge-size=x|--model=m
convert|--threads=x|--checkpoint=c
forward|--layers=1.5|--model=m
inspect|--ctx=x|m.gguf
tokenize|--model=|--text=t
merge|--dim=x|--context=c.f32
serve|--port=x|--host=h
train|--steps=x|--model=m --data=d.jsonl --out=o
EOF
usage_error eval_qa_unknown "comi eval --task qa: unknown option '--frobnicate'" \
    "$COMI" eval --task qa --data d --model m --frobnicate
usage_error eval_qa_eq_form "unknown option '--frobnicate'" "$COMI" eval --task=qa --frobnicate
usage_error eval_qa_malformed "--limit: 'x' is not an integer" "$COMI" eval --task qa --data d --model m --limit x

# the "flag value" check above used --help=yes; a real flag too, and the
# stray check above stops at the first stray word
usage_error compress_flag_with_value "--json takes no value" "$COMI" compress --question q --context c --json=1
usage_error version_stray "unexpected argument 'x'" "$COMI" version x
usage_error version_unknown "unknown option '--bogus'" "$COMI" version --bogus

# missing required options, one per command
usage_error compress_required "missing required option --question" "$COMI" compress --context c
usage_error eval_required "missing required option --data" "$COMI" eval
usage_error eval_qa_required "missing required option --model" "$COMI" eval --task qa --data d
usage_error answer_required "missing required option --question" "$COMI" answer --model m --context c
usage_error convert_required "missing required option --out" "$COMI" convert --checkpoint c --model m
usage_error forward_required "missing required option --ids" "$COMI" forward --model m
usage_error inspect_required "missing MODEL" "$COMI" inspect
usage_error tokenize_required "missing required option --model" "$COMI" tokenize --text t
usage_error merge_required "missing required option --dim" "$COMI" merge --context c --query q
usage_error serve_required "missing value for --port" "$COMI" serve --port  # --port has a default (8080)
# out of range is a usage error too, and so are conflicting sources
usage_error compress_ratio_range "--ratio: 0.5 must be >= 1" "$COMI" compress --question q --context c --ratio 0.5
usage_error compress_temperature_range "--temperature: 0 must be > 0" "$COMI" compress --question q --context c --temperature 0
usage_error merge_dim_range "--dim: 0 is out of range" "$COMI" merge --context c --query q --dim 0 --merge-size 2 --out o
usage_error compress_two_sources "exactly one of" "$COMI" compress --question q --context c --context-file f
usage_error eval_bad_method "unknown method 'magic'" "$COMI" eval --data d --methods comi,magic
usage_error eval_bad_set "--set: unknown knob 'nope'" "$COMI" eval --data d --set nope=1

# did you mean: options (edit distance, transpositions count 1) and commands
usage_error compress_did_you_mean "did you mean --ratio?" "$COMI" compress --question q --context c --ratoi 4
usage_error merge_did_you_mean "did you mean --merge-size?" "$COMI" merge --merge-sise 4
usage_error answer_did_you_mean "did you mean --max-new-tokens?" "$COMI" answer --max-new-token 4
usage_error eq_did_you_mean "unknown option '--questoin'; did you mean --question?" "$COMI" compress --questoin=q
usage_error command_did_you_mean "did you mean compress?" "$COMI" comprss
usage_error command_unknown "unknown command 'zzz'" "$COMI" zzz
usage_error command_missing "missing command" "$COMI"
if "$COMI" help compress | grep -q "usage: comi compress"; then pass help_command; else fail help_command "comi help compress"; fi

# --opt=value: the same output as --opt value
EX=examples/panama-canal.txt
Q="Who took over as chief engineer when John Stevens resigned?"
"$COMI" compress --context-file "$EX" --question "$Q" --ratio 8 --json >"$TMP/a" 2>"$TMP/err"
"$COMI" compress --context-file="$EX" --question="$Q" --ratio=8 --json >"$TMP/b" 2>>"$TMP/err"
if [ -s "$TMP/a" ] && [ "$(jq -r .compressed "$TMP/a")" = "$(jq -r .compressed "$TMP/b")" ]; then
    pass compress_eq_form; else fail compress_eq_form "outputs differ: $(head -c 200 "$TMP/err")"; fi
# a value that contains '=' is kept whole; a value starting with '-' is a value
"$COMI" compress --context "a=b c d e f g h" --question="a=b" --target-tokens=2 >"$TMP/c" 2>"$TMP/err"
if [ "$(cat "$TMP/c")" = "a=b c" ]; then pass eq_in_value; else fail eq_in_value "got '$(cat "$TMP/c")' $(cat "$TMP/err")"; fi
"$COMI" compress --context "x y z w" --question "-dash" --target-tokens 1 >"$TMP/c" 2>"$TMP/err"
if [ "$?" -eq 0 ] && [ -s "$TMP/c" ]; then pass dash_value; else fail dash_value "$(cat "$TMP/err")"; fi

# - reads standard input
cat "$EX" | "$COMI" compress --context-file - --question "$Q" --ratio 8 --json >"$TMP/d" 2>"$TMP/err"
if [ -s "$TMP/a" ] && [ "$(jq -r .compressed "$TMP/a")" = "$(jq -r .compressed "$TMP/d")" ]; then
    pass compress_stdin; else fail compress_stdin "differs from the file: $(head -c 200 "$TMP/err")"; fi
printf '["The canal opened in 1914.", "Goethals ran the work."]' |
    "$COMI" compress --documents-file - --question "who ran the work" --target-tokens 3 >"$TMP/e" 2>"$TMP/err"
if [ "$(cat "$TMP/e")" = "Goethals ran the" ] || [ "$(cat "$TMP/e")" = "ran the work." ]; then pass documents_stdin; else
    fail documents_stdin "got '$(cat "$TMP/e")' $(cat "$TMP/err")"; fi
usage_error two_stdin "--context-file and --documents-file both read standard input" \
    "$COMI" compress --question q --context-file - --documents-file -

printf '{"input": "The Panama Canal opened in 1914 after ten years of work.", "prompt": "When did the canal open?", "answer": "1914"}\n' >"$TMP/d.jsonl"
SCORES='[.results[][] | {recall, f1, compression, n}]'
"$COMI" eval --data "$TMP/d.jsonl" --methods comi,truncate --ratio 2 --out-dir "$TMP/e1" >/dev/null 2>"$TMP/err"
"$COMI" eval --data - --methods comi,truncate --ratio 2 --out-dir "$TMP/e2" <"$TMP/d.jsonl" >/dev/null 2>>"$TMP/err"
if [ -s "$TMP/e1/metrics.json" ] && [ "$(jq -c "$SCORES" "$TMP/e1/metrics.json")" = "$(jq -c "$SCORES" "$TMP/e2/metrics.json")" ]; then
    pass eval_stdin; else fail eval_stdin "metrics differ: $(head -c 300 "$TMP/err")"; fi

# merge: raw float32 context on standard input, the same memory bytes
python3 -c "
import array, random
random.seed(3)
open('$TMP/h.f32','wb').write(array.array('f',[random.uniform(-1,1) for _ in range(12*4)]).tobytes())
open('$TMP/q.f32','wb').write(array.array('f',[random.uniform(-1,1) for _ in range(4)]).tobytes())"
"$COMI" merge --context "$TMP/h.f32" --query "$TMP/q.f32" --dim 4 --merge-size 3 --out "$TMP/m1.f32" --quiet 2>"$TMP/err"
"$COMI" merge --context - --query="$TMP/q.f32" --dim=4 --merge-size=3 --out="$TMP/m2.f32" --quiet <"$TMP/h.f32" 2>>"$TMP/err"
if [ -s "$TMP/m1.f32" ] && cmp -s "$TMP/m1.f32" "$TMP/m2.f32"; then pass merge_stdin; else
    fail merge_stdin "memory differs: $(head -c 300 "$TMP/err")"; fi

M=$GOLDEN/forward/models/tiny-llama-spm.gguf
if [ -f "$M" ]; then
    P=$GOLDEN/forward/tiny-llama-spm/p0.txt
    a=$("$COMI" tokenize --model "$M" --file "$P")
    b=$("$COMI" tokenize --model="$M" --file=- <"$P")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then pass tokenize_stdin; else fail tokenize_stdin "'$a' vs '$b'"; fi
    "$COMI" forward --model "$M" --ids "$GOLDEN/forward/tiny-llama-spm/p0.ids.txt" --generate 3 >"$TMP/f1" 2>"$TMP/err"
    "$COMI" forward --model "$M" --ids - --generate=3 <"$GOLDEN/forward/tiny-llama-spm/p0.ids.txt" >"$TMP/f2" 2>>"$TMP/err"
    if [ -s "$TMP/f1" ] && cmp -s "$TMP/f1" "$TMP/f2"; then pass forward_stdin; else
        fail forward_stdin "$(head -c 300 "$TMP/err")"; fi
else
    skip tokenize_stdin "golden model not found at $M"
    skip forward_stdin "golden model not found at $M"
fi
exit 0
