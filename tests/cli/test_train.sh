#!/bin/sh
# tests/cli/test_train.sh — `comi train` end to end on the tiny GGUF llama
# (text rows, its own tokenizer): a short run writes the checkpoint files and
# a JSONL log with step/loss/lr/grad_norm, `comi answer --checkpoint` loads
# what it wrote, --dump-grad prints the loss; usage errors exit 2, unusable
# rows exit 1 naming the line. (Gradients, AdamW and resume are checked
# against the goldens in tests/test_train.c.)
. tests/cli/lib.sh

BASE=$GOLDEN/forward/models/tiny-llama-spm.gguf
if "$COMI" train --help >"$TMP/help" 2>&1 && grep -q "usage: comi train" "$TMP/help"; then
    pass train_help
else
    fail train_help "no usage text"
fi
expect_fail train_no_model "required" "$COMI" train --data x --out y
expect_fail train_unknown "unknown option" "$COMI" train --model x --data y --out z --bogus
expect_fail train_bad_lr "lr" "$COMI" train --model x --data y --out z --lr=abc
expect_fail train_bad_schedule "schedule" "$COMI" train --model x --data y --out z --schedule linear
"$COMI" train --model x --data y --out z --steps 0 >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 2 ]; then pass train_usage_exit_2; else fail train_usage_exit_2 "exit $rc"; fi

if [ ! -f "$BASE" ]; then
    skip train_cli "golden data not found at $GOLDEN"
    exit 0
fi
cat >"$TMP/data.jsonl" <<'EOF'
{"input": "The Eiffel Tower was completed in 1889 in Paris. It is made of iron.", "prompt": "When was the Eiffel Tower completed?", "answer": ["1889"]}
{"input": "Mount Everest was first climbed by Tenzing Norgay and Edmund Hillary in 1953.", "prompt": "Who first climbed Everest?", "answer": "Tenzing Norgay and Edmund Hillary"}
{"input": "The Statue of Liberty was dedicated in 1886 in New York Harbor.", "prompt": "When was the statue dedicated?", "answer": ["1886", "in 1886"]}
EOF
OUT=$TMP/run
if "$COMI" train --model "$BASE" --data "$TMP/data.jsonl" --out "$OUT" --encoder-layers 2 \
    --merge-size 4 --lora-r 4 --lr 1e-3 --steps 4 --save-every 2 --eval-data "$TMP/data.jsonl" \
    --quiet --threads 1 2>"$TMP/err"; then
    ok=1
    for f in model.safetensors adapter_config.json optimizer.safetensors trainer_state.json log.jsonl; do
        [ -s "$OUT/$f" ] || { ok=0; fail train_cli_files "$f missing"; }
    done
    lines=$(wc -l <"$OUT/log.jsonl")
    keys=$(head -1 "$OUT/log.jsonl" | grep -c '"step": 1, "loss": .*"lr": .*"grad_norm": ')
    evl=$(tail -1 "$OUT/log.jsonl" | grep -c '"eval_loss"')
    if [ "$ok" -eq 1 ] && [ "$lines" -eq 4 ] && [ "$keys" -eq 1 ] && [ "$evl" -eq 1 ]; then
        pass train_cli_run
    else
        fail train_cli_run "log has $lines lines, keys $keys, eval $evl: $(head -2 "$OUT/log.jsonl")"
    fi
    if "$COMI" answer --model "$BASE" --checkpoint "$OUT" --context "The tower was completed in 1889." \
        --question "When?" --max-new-tokens 3 --print-ids >"$TMP/ans" 2>"$TMP/err2" &&
        [ "$(wc -l <"$TMP/ans")" -ge 1 ]; then
        pass train_cli_answer_loads_checkpoint
    else
        fail train_cli_answer_loads_checkpoint "$(head -c 300 "$TMP/err2")"
    fi
else
    fail train_cli_run "$(head -c 300 "$TMP/err")"
fi
expect_fail train_cli_exists "already holds" "$COMI" train --model "$BASE" --data "$TMP/data.jsonl" \
    --out "$OUT" --encoder-layers 2 --merge-size 4 --lora-r 4 --steps 4 --quiet
expect_fail train_cli_resume_mismatch "different 'lr'" "$COMI" train --model "$BASE" \
    --data "$TMP/data.jsonl" --out "$OUT" --encoder-layers 2 --merge-size 4 --lora-r 4 --steps 4 \
    --lr 5e-4 --resume --quiet

loss=$("$COMI" train --model "$BASE" --data "$TMP/data.jsonl" --dump-grad "$TMP/g.safetensors" \
    --encoder-layers 2 --merge-size 4 --lora-r 4 --quiet 2>"$TMP/err3")
if [ -s "$TMP/g.safetensors" ] && awk -v l="$loss" 'BEGIN { exit !(l + 0 > 0) }'; then
    pass train_cli_dump_grad
else
    fail train_cli_dump_grad "loss '$loss': $(head -c 300 "$TMP/err3")"
fi
# --data - reads the rows from standard input: the same loss
loss2=$("$COMI" train --model "$BASE" --data - --dump-grad "$TMP/g2.safetensors" \
    --encoder-layers 2 --merge-size 4 --lora-r 4 --quiet <"$TMP/data.jsonl" 2>"$TMP/err4")
if [ -n "$loss" ] && [ "$loss2" = "$loss" ]; then pass train_cli_data_stdin; else
    fail train_cli_data_stdin "loss '$loss2' vs '$loss': $(head -c 300 "$TMP/err4")"; fi

printf '%s\n' '{"input": "a b c", "prompt": "q", "answer": ["x"]}' '{"input": "a b c", "answer": ["x"]}' \
    >"$TMP/bad.jsonl"
"$COMI" train --model "$BASE" --data "$TMP/bad.jsonl" --out "$TMP/bad" --encoder-layers 2 \
    --lora-r 4 --quiet >/dev/null 2>"$TMP/err4"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "bad.jsonl:2: missing string field 'prompt'" "$TMP/err4" &&
    [ "$(wc -l <"$TMP/err4")" -eq 1 ]; then
    pass train_cli_bad_row
else
    fail train_cli_bad_row "exit $rc: $(head -c 300 "$TMP/err4")"
fi

"$COMI" train --model "$BASE" --data "$TMP/data.jsonl" --out "$TMP/lim" --encoder-layers 2 \
    --lora-r 4 --max-context-tokens 5 --quiet >/dev/null 2>"$TMP/err5"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "data.jsonl:1: .*context-tokens" "$TMP/err5"; then
    pass train_cli_context_limit
else
    fail train_cli_context_limit "exit $rc: $(head -c 300 "$TMP/err5")"
fi
if "$COMI" train --model "$BASE" --data "$TMP/data.jsonl" --out "$TMP/lim2" --encoder-layers 2 \
    --lora-r 4 --max-context-tokens 5 --context-tokens 5 --steps 1 --quiet 2>"$TMP/err6"; then
    pass train_cli_context_tokens
else
    fail train_cli_context_tokens "$(head -c 300 "$TMP/err6")"
fi
