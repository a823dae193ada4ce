#!/bin/sh
# scripts/train_smollm2.sh — the recipe that trains a COMI compressor for
# SmolLM2-135M-Instruct on CPU (2 cores) with `comi train`. Resumable: run
# it again after any interruption and it continues from the last checkpoint
# (bit-identically). Long: start it in the background, e.g.
#   nohup sh scripts/train_smollm2.sh > train.out 2>&1 &
#
# Data: ../shared/data/nq-train.jsonl (the training split; never the
# evaluation sets), shortened by scripts/train_data.py to the gold passage +
# 3 other passages per row (~500 tokens of context), the last 32 rows held
# out for evaluation losses.
# Settings (env overrides): merge size 16, encoder 8 layers, 1 fusion block,
# LoRA r 128 / alpha 32 / dropout 0.05 on the decoder, AdamW lr 5e-5 cosine
# with 5% warmup, batch 1, 700 steps (about half an epoch of the 1422 rows:
# what fits a 3-hour session on 2 shared cores; STEPS=1422 for one epoch),
# checkpoints every 50 steps.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMI=${COMI:-$ROOT/build/comi}
BASE=${BASE:-${COMI_MODELS:-$HOME/.cache/comi/models}/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-$ROOT/../shared/data/nq-train.jsonl}
OUT=${OUT:-$HOME/comi-train/smollm2-nq-s700}
MERGE=${MERGE:-16}
STEPS=${STEPS:-700}
LR=${LR:-5e-5}
THREADS=${THREADS:-2}
WORK=$OUT.data
mkdir -p "$WORK"
if [ ! -s "$WORK/train.jsonl" ]; then
    python3 "$ROOT/scripts/train_data.py" "$DATA" "$WORK/train.jsonl" "$WORK/heldout.jsonl" \
        --docs 4 --holdout 32 --seed 1
fi
RESUME=
[ -f "$OUT/trainer_state.json" ] && RESUME=--resume
exec "$COMI" train --model "$BASE" --data "$WORK/train.jsonl" --out "$OUT" \
    --eval-data "$WORK/heldout.jsonl" --eval-every 100 --eval-limit 32 \
    --encoder-layers 8 --fusion-layers 1 --merge-size "$MERGE" \
    --lora-r 128 --lora-alpha 32 --lora-dropout 0.05 \
    --lr "$LR" --schedule cosine --warmup-ratio 0.05 --weight-decay 0.01 --max-grad-norm 1 \
    --batch-size 1 --steps "$STEPS" --seed 42 --save-every 50 --context-tokens 768 \
    --threads "$THREADS" $RESUME
