#!/bin/sh
# scripts/train_smollm2_recon.sh — the second training recipe for
# SmolLM2-135M-Instruct: a reconstruction stage, then the QA stage of
# scripts/train_smollm2.sh started from it. Resumable like that script: run it
# again after any interruption and it continues where it stopped (each stage
# resumes bit-identically; a finished stage is not run again). Long (about
# 1.5 + 1.3 hours on 2 idle cores): start it in the background,
#   nohup sh scripts/train_smollm2_recon.sh > train-recon.out 2>&1 &
#
# Why: the first recipe's decoder learned the answers' prior and ignored its
# memories (README, "Diagnosis": held-out loss 4.03 with the right contexts,
# 4.09 with swapped ones). In stage 1 the target is the passage itself (its
# first 40 words, from memories of that passage alone) and the decoder is
# frozen outright (LoRA alpha 0: its LoRA adds nothing and gets no gradient),
# so only the encoder and fusion block learn, and only through what the
# memories carry; merge size 4 gives that channel room (a first try at merge
# size 16 with the LoRA on reached, after 500 steps, held-out 3.03 with the
# right passages against 3.08 with swapped ones: the LoRA again learned the
# text's prior). Stage 2 is the QA fine-tuning of the first recipe, merge
# size 16, LoRA on (alpha 32, B starting at 0 as stage 1 left it), from
# stage 1's encoder and fusion block.
#
# Stage 1 data: ../shared/data/nq-train.jsonl, 2 passages per source row (the
# gold one + 1 other) as separate rows (scripts/train_data.py --task
# reconstruct), the rows of the last 32 source rows held out. Stage 2 data:
# as scripts/train_smollm2.sh (gold + 3 passages, last 32 rows held out).
# Settings (env overrides): encoder 8 layers, 1 fusion block, LoRA r 128 /
# dropout 0.05; stage 1 merge size 4, LoRA alpha 0, AdamW lr 1e-4, 1500
# steps; stage 2 merge size 16, LoRA alpha 32, lr 5e-5, 1422 steps (one
# epoch); cosine, 5% warmup, batch 1,
# checkpoints every 50 steps, held-out losses every 250 / 200 steps.
# Check afterwards whether the memories matter, per stage:
#   OUT=$OUT1 MERGE=4 ALPHA=0 sh scripts/diag_trained_smollm2.sh
#   OUT=$OUT2 sh scripts/diag_trained_smollm2.sh
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMI=${COMI:-$ROOT/build/comi}
BASE=${BASE:-${COMI_MODELS:-$HOME/.cache/comi/models}/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-$ROOT/../shared/data/nq-train.jsonl}
OUT1=${OUT1:-$HOME/comi-train/smollm2-recon-s1}
OUT2=${OUT2:-$HOME/comi-train/smollm2-recon-s2}
MERGE1=${MERGE1:-4}
MERGE2=${MERGE2:-16}
ALPHA1=${ALPHA1:-0}
STEPS1=${STEPS1:-1500}
STEPS2=${STEPS2:-1422}
LR1=${LR1:-1e-4}
LR2=${LR2:-5e-5}
THREADS=${THREADS:-2}
COMMON="--encoder-layers 8 --fusion-layers 1 --lora-r 128 --lora-dropout 0.05
  --schedule cosine --warmup-ratio 0.05 --weight-decay 0.01 --max-grad-norm 1
  --batch-size 1 --seed 42 --save-every 50 --threads $THREADS"

finished() { # DIR STEPS: the stage's last step is in its log
    [ -f "$1/log.jsonl" ] && python3 - "$1/log.jsonl" "$2" <<'PY'
import json, sys
steps = [json.loads(l).get("step", 0) for l in open(sys.argv[1]) if l.strip().startswith("{")]
sys.exit(0 if steps and max(steps) >= int(sys.argv[2]) else 1)
PY
}

mkdir -p "$OUT1.data" "$OUT2.data"
if [ ! -s "$OUT1.data/train.jsonl" ]; then
    python3 "$ROOT/scripts/train_data.py" "$DATA" "$OUT1.data/train.jsonl" \
        "$OUT1.data/heldout.jsonl" --docs 2 --holdout 32 --seed 1 --task reconstruct \
        --answer-words 40
fi
if [ ! -s "$OUT2.data/train.jsonl" ]; then
    python3 "$ROOT/scripts/train_data.py" "$DATA" "$OUT2.data/train.jsonl" \
        "$OUT2.data/heldout.jsonl" --docs 4 --holdout 32 --seed 1
fi

if ! finished "$OUT1" "$STEPS1"; then
    echo "stage 1: reconstruction, $STEPS1 steps -> $OUT1"
    RESUME=
    [ -f "$OUT1/trainer_state.json" ] && RESUME=--resume
    # shellcheck disable=SC2086
    "$COMI" train --model "$BASE" --data "$OUT1.data/train.jsonl" --out "$OUT1" \
        --eval-data "$OUT1.data/heldout.jsonl" --eval-every 250 --eval-limit 64 \
        --merge-size "$MERGE1" --lora-alpha "$ALPHA1" \
        --lr "$LR1" --steps "$STEPS1" --context-tokens 256 $COMMON $RESUME
fi

echo "stage 2: QA from stage 1, $STEPS2 steps -> $OUT2"
RESUME=
INIT="--init $OUT1"
if [ -f "$OUT2/trainer_state.json" ]; then RESUME=--resume; INIT=; fi
# shellcheck disable=SC2086
exec "$COMI" train --model "$BASE" --data "$OUT2.data/train.jsonl" --out "$OUT2" \
    --eval-data "$OUT2.data/heldout.jsonl" --eval-every 200 --eval-limit 32 \
    --merge-size "$MERGE2" --lora-alpha 32 \
    --lr "$LR2" --steps "$STEPS2" --context-tokens 768 $INIT $COMMON $RESUME
