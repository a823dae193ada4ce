#!/bin/sh
# scripts/reader_eval.sh — the reader evaluation of the README ("Reader
# evaluation"): SmolLM2-135M-Instruct reads each method's compressed text
# through its chat template and answers; EM/F1/accuracy per method and ratio.
#
#   sh scripts/reader_eval.sh SET [N] [OUTROOT]
#
# SET is nq20 or hotpotqa (../shared/data/SET.jsonl), N the number of
# examples (default 200, the first N of the file), OUTROOT the folder for the
# results (default eval-reader). Runs one kernel thread, and is resumable:
# run it again after an interruption and it goes on where it stopped
# (examples.jsonl keeps every finished run). The LongLLMLingua peer's
# compressed texts (scripts/llmlingua_compress.py) are scored when
# OUTROOT/SET/longllmlingua.jsonl exists; rows still missing there are left
# out and counted (metrics.json "missing"). Start in the background with
#   nohup sh scripts/reader_eval.sh nq20 200 > eval-reader/nq20.log 2>&1 &
set -eu
SET=${1:?usage: reader_eval.sh nq20|hotpotqa [N] [OUTROOT]}
N=${2:-200}
ROOT=${3:-eval-reader}
MODEL=${COMI_READER_MODEL:-$HOME/.cache/comi/models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${COMI_DATA:-../shared/data}/$SET.jsonl
COMI=${COMI:-./build/comi}
OUT=$ROOT/$SET
mkdir -p "$OUT"
METHODS=full,truncate,bm25,text
if [ -f "$OUT/longllmlingua.jsonl" ]; then
    METHODS=$METHODS,external:longllmlingua=$OUT/longllmlingua.jsonl
fi
exec "$COMI" eval --task qa --model "$MODEL" --data "$DATA" --methods "$METHODS" \
    --ratio 4,8,16,32 --limit "$N" --threads 1 --out-dir "$OUT"
