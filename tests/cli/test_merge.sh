#!/bin/sh
# tests/cli/test_merge.sh — `comi merge`: golden cases through the CLI
# (memory within 1e-4 * max(1, |golden|), group sizes byte-identical),
# thread-count independence of the output bytes, --help, and one check per
# class of bad input (non-zero exit, one line on stderr naming the problem).
. tests/cli/lib.sh
M=$GOLDEN/mig

# close_f32 A B — A and B are float32 files of equal length, max |a-b| <= 1e-4 max(1, |b|)
close_f32() {
    python3 - "$1" "$2" <<'EOF'
import array, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
if len(a) != len(b):
    print("length %d vs %d" % (len(a), len(b))); sys.exit(1)
worst = max([abs(x - y) / max(1.0, abs(y)) for x, y in zip(a, b)] or [0.0])
if worst > 1e-4:
    print("max relative error %g" % worst); sys.exit(1)
EOF
}

# golden_case NAME ID DIM M FLAGS... — runs the case and compares its outputs
golden_case() {
    name=$1; id=$2; dim=$3; m=$4; shift 4
    if [ ! -f "$M/$id.context.f32" ]; then skip "$name" "golden data not found at $M"; return; fi
    sizes_flag=""
    [ -f "$M/$id.group_sizes.i32" ] && sizes_flag="--group-sizes-out $TMP/$id.sizes.i32"
    # shellcheck disable=SC2086
    if ! "$COMI" merge --context "$M/$id.context.f32" --query "$M/$id.query.f32" --dim "$dim" \
        --merge-size "$m" --out "$TMP/$id.mem.f32" $sizes_flag "$@" >"$TMP/out" 2>"$TMP/err"; then
        fail "$name" "exit $?: $(head -c 300 "$TMP/err")"; return
    fi
    if [ -n "$sizes_flag" ] && ! cmp -s "$TMP/$id.sizes.i32" "$M/$id.group_sizes.i32"; then
        fail "$name" "group sizes differ from golden"; return
    fi
    if ! why=$(close_f32 "$TMP/$id.mem.f32" "$M/$id.memory.f32"); then
        fail "$name" "memory: $why"; return
    fi
    pass "$name"
}

# --help documents every flag
if "$COMI" merge --help >"$TMP/help" 2>&1; then
    missing=""
    for f in --context --query --dim --merge-size --alpha-select --beta-select --alpha-merge \
        --beta-merge --no-coarse --no-fine --no-coarse-redundancy --no-fine-redundancy --out \
        --group-sizes-out --threads; do
        grep -q -- "$f" "$TMP/help" || missing="$missing $f"
    done
    if [ -z "$missing" ]; then pass "merge --help lists every flag"; else fail "merge --help" "missing$missing"; fi
else
    fail "merge --help" "non-zero exit"
fi

golden_case "merge golden case041 (empty group, fine off)" case041 8 2 \
    --alpha-select 2 --beta-select 1 --alpha-merge 1 --beta-merge 1 --no-fine --no-coarse-redundancy
golden_case "merge golden case003 (600 x 896)" case003 896 4 \
    --alpha-select 1 --beta-select 1 --alpha-merge 0.5 --beta-merge 2
golden_case "merge golden case005 (coarse off)" case005 896 8 \
    --alpha-select 2 --beta-select 1 --alpha-merge 0.5 --beta-merge 2 --no-coarse --no-coarse-redundancy
golden_case "merge golden case040 (dups, fine redundancy off)" case040 64 8 \
    --alpha-select 1 --beta-select 0.5 --no-fine --no-fine-redundancy
golden_case "merge golden case031 (512 groups)" case031 64 8 \
    --alpha-select 1 --beta-select 0.5 --alpha-merge 0.5 --beta-merge 2
golden_case "merge golden case057 (defaults for omitted flags)" case057 128 32 \
    --alpha-select 2 --beta-merge 0.5

# the output bytes do not depend on --threads nor on OpenBLAS's thread count
# (case031: 512 representatives, so both the ssyrk and the sgemm blocks run)
if [ -f "$M/case031.context.f32" ]; then
    ok=1
    for t in 1 2 3; do
        for b in 1 2; do
            OPENBLAS_NUM_THREADS=$b "$COMI" merge --context "$M/case031.context.f32" \
                --query "$M/case031.query.f32" --dim 64 --merge-size 8 --threads $t --quiet \
                --beta-select 0.5 --alpha-merge 0.5 --beta-merge 2 \
                --out "$TMP/t$t.$b.f32" --group-sizes-out "$TMP/t$t.$b.i32" || ok=0
            cmp -s "$TMP/t$t.$b.f32" "$TMP/t1.1.f32" && cmp -s "$TMP/t$t.$b.i32" "$TMP/t1.1.i32" || ok=0
        done
    done
    if [ $ok = 1 ]; then pass "merge output identical for --threads 1/2/3 x OPENBLAS_NUM_THREADS 1/2"
    else fail "merge threads" "outputs differ between thread counts"; fi
else
    skip "merge threads" "golden data not found at $M"
fi

# the README's bundled example runs and writes 16 memory vectors of 16 floats
if "$COMI" merge --context examples/merge/context.f32 --query examples/merge/query.f32 --dim 16 \
    --merge-size 4 --out "$TMP/ex.f32" --group-sizes-out "$TMP/ex.i32" >"$TMP/out" 2>"$TMP/err" &&
    [ "$(wc -c <"$TMP/ex.f32")" -eq 1024 ] && [ "$(wc -c <"$TMP/ex.i32")" -eq 64 ] &&
    python3 -c "
import array, sys
s = array.array('i'); s.frombytes(open('$TMP/ex.i32', 'rb').read())
sys.exit(0 if sum(s) == 64 and min(s) >= 0 else 1)"; then
    pass "merge bundled example (64 x 16, m = 4)"
else
    fail "merge bundled example" "$(cat "$TMP/out" "$TMP/err" | head -c 300)"
fi

# the summary line and a hand-checkable result: 4 tokens, m = 2, coarse off,
# fine off -> memory = the means of rows (0,1) and (2,3)
python3 -c "
import array
array.array('f', [1, 2, 3, 4, 5, 6, 7, 8]).tofile(open('$TMP/c.f32', 'wb'))
array.array('f', [1, 0]).tofile(open('$TMP/q.f32', 'wb'))"
if "$COMI" merge --context "$TMP/c.f32" --query "$TMP/q.f32" --dim 2 --merge-size 2 --no-coarse \
    --no-fine --out "$TMP/mean.f32" --group-sizes-out "$TMP/mean.i32" >"$TMP/out" 2>"$TMP/err" &&
    python3 -c "
import array, sys
m = array.array('f'); m.frombytes(open('$TMP/mean.f32', 'rb').read())
s = array.array('i'); s.frombytes(open('$TMP/mean.i32', 'rb').read())
sys.exit(0 if list(m) == [2, 3, 6, 7] and list(s) == [2, 2] else 1)" &&
    grep -q "merged 4 tokens x 2 into 2 memory vectors" "$TMP/out"; then
    pass "merge means and summary line on a hand-made input"
else
    fail "merge hand-made input" "$(cat "$TMP/out" "$TMP/err" | head -c 300)"
fi

# bad input: every class gives a non-zero exit and one line naming the problem
C="$TMP/c.f32"; Q="$TMP/q.f32"; O="$TMP/o.f32"
python3 -c "
import array, math
array.array('f', [1, 2, 3, float('nan'), 5, 6]).tofile(open('$TMP/nan.f32', 'wb'))
array.array('f', [1, float('inf')]).tofile(open('$TMP/inf.f32', 'wb'))
open('$TMP/odd.f32', 'wb').write(b'\0' * 12)
open('$TMP/empty.f32', 'wb').close()
array.array('f', [1, 0, 0]).tofile(open('$TMP/q3.f32', 'wb'))"
mkdir -p "$TMP/adir"
expect_fail "merge missing context file" "cannot open '$TMP/none.f32'" \
    "$COMI" merge --context "$TMP/none.f32" --query "$Q" --dim 2 --merge-size 2 --out "$O"
expect_fail "merge unreadable context (a directory)" "not a regular file" \
    "$COMI" merge --context "$TMP/adir" --query "$Q" --dim 2 --merge-size 2 --out "$O"
expect_fail "merge missing query file" "--query: cannot open" \
    "$COMI" merge --context "$C" --query "$TMP/none.f32" --dim 2 --merge-size 2 --out "$O"
expect_fail "merge context size not a multiple of 4*dim" "12 bytes, not a multiple of 4 x dim = 8" \
    "$COMI" merge --context "$TMP/odd.f32" --query "$Q" --dim 2 --merge-size 2 --out "$O"
expect_fail "merge empty context" "is empty" \
    "$COMI" merge --context "$TMP/empty.f32" --query "$Q" --dim 2 --merge-size 2 --out "$O"
expect_fail "merge query of the wrong size" "holds 3 float32 values, --dim is 2" \
    "$COMI" merge --context "$C" --query "$TMP/q3.f32" --dim 2 --merge-size 2 --out "$O"
expect_fail "merge dim 0" "--dim: 0 is out of range" \
    "$COMI" merge --context "$C" --query "$Q" --dim 0 --merge-size 2 --out "$O"
expect_fail "merge merge size 0" "--merge-size: 0 is out of range" \
    "$COMI" merge --context "$C" --query "$Q" --dim 2 --merge-size 0 --out "$O"
expect_fail "merge merge size negative" "--merge-size: -4 is out of range" \
    "$COMI" merge --context "$C" --query "$Q" --dim 2 --merge-size -4 --out "$O"
expect_fail "merge merge size not a number" "--merge-size: 'four' is not an integer" \
    "$COMI" merge --context "$C" --query "$Q" --dim 2 --merge-size four --out "$O"
expect_fail "merge weight not a number" "--beta-merge: 'x' is not a finite number" \
    "$COMI" merge --context "$C" --query "$Q" --dim 2 --merge-size 2 --beta-merge x --out "$O"
expect_fail "merge NaN in context" "hidden\[1\]\[1\] = nan is not finite" \
    "$COMI" merge --context "$TMP/nan.f32" --query "$Q" --dim 2 --merge-size 2 --out "$O"
expect_fail "merge Inf in query" "query\[1\] = inf is not finite" \
    "$COMI" merge --context "$C" --query "$TMP/inf.f32" --dim 2 --merge-size 2 --out "$O"
expect_fail "merge unknown flag" "unknown option '--bogus'" \
    "$COMI" merge --context "$C" --query "$Q" --dim 2 --merge-size 2 --out "$O" --bogus
expect_fail "merge missing value" "missing value for --out" \
    "$COMI" merge --context "$C" --query "$Q" --dim 2 --merge-size 2 --out
expect_fail "merge unwritable output" "cannot create '$TMP/none/o.f32'" \
    "$COMI" merge --context "$C" --query "$Q" --dim 2 --merge-size 2 --out "$TMP/none/o.f32"
for flag in --context --query --dim --merge-size --out; do
    set -- --context "$C" --query "$Q" --dim 2 --merge-size 2 --out "$O"
    args=""
    while [ $# -gt 0 ]; do
        [ "$1" = "$flag" ] || args="$args $1 $2"
        shift 2
    done
    # shellcheck disable=SC2086
    expect_fail "merge missing required $flag" "missing required option $flag" "$COMI" merge $args
done
# every failure above wrote exactly one line on stderr
"$COMI" merge --context "$TMP/nan.f32" --query "$Q" --dim 2 --merge-size 2 --out "$O" 2>"$TMP/err"
lines=$(wc -l <"$TMP/err")
if [ "$lines" -eq 1 ]; then pass "merge failure prints one stderr line"; else fail "merge stderr" "$lines lines"; fi
