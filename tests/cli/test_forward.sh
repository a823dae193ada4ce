#!/bin/sh
# tests/cli/test_forward.sh — `comi forward` and `comi inspect` against the
# golden llama.cpp outputs (hidden states NMSE, greedy ids), their --help,
# and one-line errors for bad input.
. tests/cli/lib.sh

# nmse A.f32 B.f32 — prints sum((a-b)^2)/sum(b^2) of two float32 files
nmse() {
    od -An -v -f "$1" | tr -s ' ' '\n' | grep -v '^$' >"$TMP/a.txt"
    od -An -v -f "$2" | tr -s ' ' '\n' | grep -v '^$' >"$TMP/b.txt"
    paste "$TMP/a.txt" "$TMP/b.txt" |
        awk '{ d = $1 - $2; num += d * d; den += $2 * $2; n++ }
             END { if (n == 0 || den == 0) print "nan"; else printf "%.3g\n", num / den }'
}

# le X Y — X <= Y for numbers
le() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x != "nan" && x + 0 <= y + 0) }'; }

for c in forward inspect; do
    if "$COMI" $c --help >"$TMP/help" 2>&1 && grep -q "usage: comi $c" "$TMP/help"; then
        pass "${c}_help"
    else
        fail "${c}_help" "no usage text"
    fi
done

F=$GOLDEN/forward
if [ ! -d "$F" ]; then
    skip forward_golden "golden data not found at $GOLDEN"
    exit 0
fi

for m in tiny-llama-spm tiny-qwen3-bpe; do
    for fmt in gguf hf; do
        if [ $fmt = gguf ]; then mp=$F/models/$m.gguf; else mp=$F/models/$m.hf; fi
        "$COMI" forward --model "$mp" --ids "$F/$m/p0.ids.txt" --hidden-out "$TMP/h.f32" \
            --generate 4 --threads 2 >"$TMP/gen" 2>"$TMP/err"
        rc=$?
        if [ $rc -ne 0 ]; then
            fail "forward_${m}_$fmt" "exit $rc: $(head -c 300 "$TMP/err")"
            continue
        fi
        e=$(nmse "$TMP/h.f32" "$F/$m/p0.hidden.f32")
        if le "$e" 1e-5; then pass "forward_${m}_${fmt}_hidden"; else
            fail "forward_${m}_${fmt}_hidden" "nmse $e > 1e-5"; fi
        want=$(tr -s ' ' '\n' <"$F/$m/p0.greedy.txt" | head -n 4 | tr '\n' ' ' | sed 's/ $//')
        got=$(cat "$TMP/gen")
        if [ "$got" = "$want" ]; then pass "forward_${m}_${fmt}_greedy4"; else
            fail "forward_${m}_${fmt}_greedy4" "got '$got', want '$want'"; fi
    done
done

# two layers + logits of every position
m=tiny-qwen2-bpe
"$COMI" forward --model "$F/models/$m.gguf" --ids "$F/$m/p1.ids.txt" --layers 2 \
    --hidden-out "$TMP/h2.f32" 2>"$TMP/err"
e=$(nmse "$TMP/h2.f32" "$F/$m/p1.first2.hidden.f32")
if le "$e" 1e-5; then pass forward_layers2_hidden; else fail forward_layers2_hidden "nmse $e: $(cat "$TMP/err")"; fi
"$COMI" forward --model "$F/models/$m.gguf" --ids "$F/$m/p1.ids.txt" --logits-out "$TMP/l.f32" 2>"$TMP/err"
n=$(wc -w <"$F/$m/p1.ids.txt")
size=$(wc -c <"$TMP/l.f32" 2>/dev/null || echo 0)
if [ "$size" -eq $((n * 50257 * 4)) ]; then pass forward_logits_size; else
    fail forward_logits_size "size $size, want $((n * 50257 * 4))"; fi
# last two rows against the golden logits_last2
tail -c $((2 * 50257 * 4)) "$TMP/l.f32" >"$TMP/l2.f32"
e=$(nmse "$TMP/l2.f32" "$F/$m/p1.logits_last2.f32")
if le "$e" 1e-5; then pass forward_logits_last2; else fail forward_logits_last2 "nmse $e"; fi

# the output bytes do not depend on --threads
for t in 1 3; do
    "$COMI" forward --model "$F/models/$m.gguf" --ids "$F/$m/p1.ids.txt" --threads $t \
        --hidden-out "$TMP/ht$t.f32" --logits-out "$TMP/lt$t.f32" --generate 3 >"$TMP/gt$t" 2>"$TMP/err"
done
if cmp -s "$TMP/ht1.f32" "$TMP/ht3.f32" && cmp -s "$TMP/lt1.f32" "$TMP/lt3.f32" &&
    cmp -s "$TMP/gt1" "$TMP/gt3" && [ -s "$TMP/ht1.f32" ]; then
    pass forward_threads_1_3_identical
else
    fail forward_threads_1_3_identical "outputs differ: $(cat "$TMP/err")"
fi

# inspect
if "$COMI" inspect "$F/models/tiny-qwen3-bpe.gguf" >"$TMP/insp" 2>&1 &&
    grep -q "architecture: *qwen3" "$TMP/insp" && grep -q "n_embd: *64" "$TMP/insp" &&
    grep -q "q/k norm" "$TMP/insp"; then
    pass inspect_qwen3
else
    fail inspect_qwen3 "$(head -c 300 "$TMP/insp")"
fi
# --kv-type f16 halves the cache: quant-llama has 2 layers x 2 x 128 kv dims,
# so 4096 positions are 8 MiB of float32 cache and 4 MiB of half
if "$COMI" inspect "$F/models/quant-llama.Q4_K.gguf" --ctx 4096 >"$TMP/i32" 2>&1 &&
    "$COMI" inspect "$F/models/quant-llama.Q4_K.gguf" --ctx 4096 --kv-type f16 >"$TMP/i16" 2>&1; then
    a=$(sed -n 's/.*+ \([0-9.]*\) MiB per session.*/\1/p' "$TMP/i32")
    b=$(sed -n 's/.*+ \([0-9.]*\) MiB per session.*(f16 KV cache)/\1/p' "$TMP/i16")
    if [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d > 3.4 && d <= 4.0) }'; then
        pass inspect_kv_f16_halves_cache
    else
        fail inspect_kv_f16_halves_cache "f32 '$a' MiB, f16 '$b' MiB"
    fi
else
    fail inspect_kv_f16_halves_cache "$(head -c 300 "$TMP/i16")"
fi
if "$COMI" inspect "$F/models/quant-llama.Q4_K.gguf" --tensors >"$TMP/insp" 2>&1 &&
    grep -q "weights: *Q4_K" "$TMP/insp" && grep -q "blk.0.ffn_down.weight *Q4_K *\[256, 768\]" "$TMP/insp"; then
    pass inspect_q4k_tensors
else
    fail inspect_q4k_tensors "$(head -c 300 "$TMP/insp")"
fi

# bad input: one line on stderr, non-zero exit
mp=$F/models/tiny-llama-spm.gguf
printf '1 2 99999\n' >"$TMP/bad_ids.txt"
: >"$TMP/empty.txt"
printf '1 two 3\n' >"$TMP/word.txt"
head -c 100000 "$mp" >"$TMP/trunc.gguf"
printf 'not a model' >"$TMP/junk.gguf"
expect_fail forward_missing_model "cannot open" "$COMI" forward --model "$TMP/nope.gguf" --ids "$F/tiny-llama-spm/p0.ids.txt"
expect_fail forward_truncated_model "trunc.gguf" "$COMI" forward --model "$TMP/trunc.gguf" --ids "$F/tiny-llama-spm/p0.ids.txt"
expect_fail forward_corrupt_model "junk.gguf" "$COMI" forward --model "$TMP/junk.gguf" --ids "$F/tiny-llama-spm/p0.ids.txt"
expect_fail forward_id_outside_vocab "99999.*outside the vocabulary" "$COMI" forward --model "$mp" --ids "$TMP/bad_ids.txt"
expect_fail forward_empty_ids "no token ids" "$COMI" forward --model "$mp" --ids "$TMP/empty.txt"
expect_fail forward_non_integer_id "not an integer" "$COMI" forward --model "$mp" --ids "$TMP/word.txt"
expect_fail forward_layers_out_of_range "out of range" "$COMI" forward --model "$mp" --ids "$F/tiny-llama-spm/p0.ids.txt" --layers 4
expect_fail forward_layers_zero "out of range" "$COMI" forward --model "$mp" --ids "$F/tiny-llama-spm/p0.ids.txt" --layers 0
expect_fail forward_logits_need_all_layers "need all" "$COMI" forward --model "$mp" --ids "$F/tiny-llama-spm/p0.ids.txt" --layers 2 --logits-out "$TMP/x.f32"
expect_fail forward_missing_ids_flag "missing required option --ids" "$COMI" forward --model "$mp"
expect_fail forward_unknown_flag "unknown option" "$COMI" forward --model "$mp" --ids x --bogus
expect_fail inspect_missing "cannot open" "$COMI" inspect "$TMP/nope.gguf"
expect_fail inspect_truncated "trunc.gguf" "$COMI" inspect "$TMP/trunc.gguf"
# every failure above printed exactly one line
"$COMI" forward --model "$mp" --ids "$TMP/bad_ids.txt" 2>"$TMP/err" >/dev/null
if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then pass forward_error_one_line; else
    fail forward_error_one_line "$(wc -l <"$TMP/err") lines on stderr"; fi
exit 0
