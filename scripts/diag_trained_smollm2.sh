#!/bin/sh
# scripts/diag_trained_smollm2.sh — the loss checks of the README ("Diagnosis"):
# mean answer cross-entropy of the held-out rows of scripts/train_smollm2.sh
#   1. for the trained checkpoint with the right contexts,
#   2. for the trained checkpoint with every row given the next row's context,
#   3. for the untrained module (the base's layers, LoRA B = 0) with the right contexts.
# If 1 and 2 are close, the decoder does not use its memories.
# MERGE (16) and ALPHA (32) as the checkpoint was trained with.
# Needs a checkpoint of scripts/train_smollm2.sh or of a stage of
# scripts/train_smollm2_recon.sh (OUT as there, OUT.data beside it). ~5 CPU-min.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMI=${COMI:-$ROOT/build/comi}
BASE=${BASE:-${COMI_MODELS:-$HOME/.cache/comi/models}/SmolLM2-135M-Instruct.Q4_1.gguf}
C=${OUT:-$HOME/comi-train/smollm2-nq-s700}
D=$C.data
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$D/heldout.jsonl" "$TMP/swapped.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w") as f:
    for i, r in enumerate(rows):
        s = dict(r)
        s["input"] = rows[(i + 1) % len(rows)]["input"]
        f.write(json.dumps(s) + "\n")
PY
A="--model $BASE --encoder-layers 8 --fusion-layers 1 --merge-size ${MERGE:-16} --lora-r 128
   --lora-alpha ${ALPHA:-32}
   --context-tokens 768 --threads ${THREADS:-1} --quiet"
# shellcheck disable=SC2086
echo "trained, right contexts:   $("$COMI" train $A --init "$C" --data "$D/heldout.jsonl" --dump-grad "$TMP/g.safetensors" | tail -1)"
# shellcheck disable=SC2086
echo "trained, swapped contexts: $("$COMI" train $A --init "$C" --data "$TMP/swapped.jsonl" --dump-grad "$TMP/g.safetensors" | tail -1)"
# shellcheck disable=SC2086
echo "untrained, right contexts: $("$COMI" train $A --data "$D/heldout.jsonl" --dump-grad "$TMP/g.safetensors" | tail -1)"
