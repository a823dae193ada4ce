#!/bin/sh
# bench/train_vs_torch.sh — training speed of `comi train` (build/bench/bench_train)
# next to the same COMI step in PyTorch (bench/train_torch.py), on the same
# rows, the same settings and the same thread count, A/B interleaved.
#
#   sh tests/oracle/setup_torch.sh          # once: the PyTorch venv
#   make bench                               # build/bench/bench_train
#   nice -n 10 sh bench/train_vs_torch.sh
#
# Env: BASE (default the SmolLM2-135M-Instruct Q4_1 GGUF; both sides
# dequantize it to float32), STEPS counted steps per run (default 5; each
# run also does one warm-up step, not counted), ROUNDS (default 1: comi,
# torch), THREADS (default 1), CTX context tokens per row (default 768),
# TORCH_PY (the venv's python), KEEP_IDS (copy the rows' ids there). Settings: the recipe's
# (scripts/train_smollm2.sh): encoder 8 layers, merge 16, 1 fusion block,
# LoRA r 128 / alpha 32 / dropout 0.05 on q/k/v/o, AdamW, batch 1.
# Rows: the first STEPS + 2 rows of ../shared/data/nq-train.jsonl as
# scripts/train_data.py shortens them (gold passage + 3 others), tokenized
# once by `comi tokenize` (no BOS; answer + EOS) so both sides read the same
# ids, in file order.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMI=${COMI:-$ROOT/build/comi}
BENCH=${BENCH:-$ROOT/build/bench/bench_train}
BASE=${BASE:-/root/.cache/comi/models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-$ROOT/../shared/data/nq-train.jsonl}
TORCH_PY=${TORCH_PY:-$HOME/.cache/comi/torch-venv/bin/python}
STEPS=${STEPS:-5}
ROUNDS=${ROUNDS:-1}
THREADS=${THREADS:-1}
CTX=${CTX:-768}
for f in "$COMI" "$BENCH" "$TORCH_PY" "$BASE" "$DATA"; do
    [ -e "$f" ] || { echo "train_vs_torch: $f not found (make bench; sh tests/oracle/setup_torch.sh)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/comi_train_vs_torch_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 "$ROOT/scripts/train_data.py" "$DATA" "$WORK/train.jsonl" "$WORK/held.jsonl" \
    --docs 4 --holdout 32 --seed 1
head -n $((STEPS + 2)) "$WORK/train.jsonl" > "$WORK/rows.jsonl"
python3 - "$COMI" "$BASE" "$CTX" "$WORK/rows.jsonl" "$WORK/ids.jsonl" <<'PY'
import json, subprocess, sys, tempfile
comi, base, ctx, src, dst = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def ids(text, eos=False):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        cmd = [comi, "tokenize", "--model", base, "--no-bos", "--file", f.name] + (["--eos"] if eos else [])
        return [int(x) for x in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()]
with open(src) as fi, open(dst, "w") as fo:
    for line in fi:
        r = json.loads(line)
        ans = r["answer"][0] if isinstance(r["answer"], list) else r["answer"]
        fo.write(json.dumps({"context_ids": ids(r["input"])[:ctx], "question_ids": ids(r["prompt"]),
                             "answer_ids": ids(ans, eos=True)}) + "\n")
PY
[ -z "${KEEP_IDS:-}" ] || cp "$WORK/ids.jsonl" "$KEEP_IDS"
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
SET="--encoder-layers 8 --merge-size 16 --lora-r 128"
echo "model $BASE; $STEPS counted steps (+1 warm-up); $THREADS thread(s); context <= $CTX tokens; load $(cut -d' ' -f1-3 /proc/loadavg)"
# the same computation: comi's loss of row 1 at the starting weights (LoRA B = 0, so
# dropout cannot matter) is torch's first step loss (its stderr line)
head -n 1 "$WORK/ids.jsonl" > "$WORK/row1.jsonl"
printf 'comi loss of row 1 at the start: '
"$COMI" train --model "$BASE" --data "$WORK/row1.jsonl" --dump-grad "$WORK/g.safetensors" \
    --threads "$THREADS" --context-tokens "$CTX" --quiet $SET
rm -f "$WORK/g.safetensors"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    printf 'comi  (round %d): ' "$r"
    "$BENCH" --model "$BASE" --data "$WORK/ids.jsonl" --steps "$STEPS" --threads "$THREADS" \
        --context-tokens "$CTX" --shuffle 0 $SET
    printf 'torch (round %d): ' "$r"
    "$TORCH_PY" "$ROOT/bench/train_torch.py" --model "$BASE" --data "$WORK/ids.jsonl" --steps "$STEPS" \
        --threads "$THREADS" $SET --lora-alpha 32 --lora-dropout 0.05
    r=$((r + 1))
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
