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
#
#   sh scripts/reader_eval.sh --snapshot SET [OUTROOT]
#
# while a run goes on: copies OUTROOT/SET/examples.jsonl to
# OUTROOT/SET-snapshot/ and lets comi eval write metrics.json and qa.svg
# there for the first K examples, K = how many have every built-in method's
# run done (so nothing is run again; external rows still missing count as
# missing). The README table comes from these (scripts/reader_table.py).
set -eu
SNAP=
if [ "${1:-}" = --snapshot ]; then SNAP=1; shift; fi
SET=${1:?usage: reader_eval.sh [--snapshot] nq20|hotpotqa [N] [OUTROOT]}
if [ -n "$SNAP" ]; then N=0; ROOT=${2:-eval-reader}; else N=${2:-200}; ROOT=${3:-eval-reader}; fi
MODEL=${COMI_READER_MODEL:-$HOME/.cache/comi/models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${COMI_DATA:-../shared/data}/$SET.jsonl
COMI=${COMI:-./build/comi}
OUT=$ROOT/$SET
mkdir -p "$OUT"
METHODS=full,truncate,bm25,text
if [ -f "$OUT/longllmlingua.jsonl" ]; then
    METHODS=$METHODS,external:longllmlingua=$OUT/longllmlingua.jsonl
fi
if [ -n "$SNAP" ]; then
    mkdir -p "$OUT-snapshot"
    cp "$OUT/examples.jsonl" "$OUT-snapshot/examples.jsonl"
    # examples in file order whose 17 built-in runs (full + 4 methods x 4 ratios) are done
    N=$(python3 -c '
import json, sys
done = {}
for line in open(sys.argv[1]):
    try: o = json.loads(line)
    except ValueError: continue
    if not o["method"].startswith("external:"): done.setdefault(o["id"], set()).add((o["method"], o["ratio"]))
k = 0
for line in open(sys.argv[2]):
    if not line.strip(): continue
    if len(done.get(str(json.loads(line)["id"]), ())) < 17: break
    k += 1
print(k)' "$OUT/examples.jsonl" "$DATA")
    echo "snapshot of $SET: the first $N examples" >&2
    [ "$N" -gt 0 ] || exit 0
    OUT=$OUT-snapshot
fi
# the text method reads whole sentences (--unit sentence, the readable mode:
# README "Reader evaluation"); COMI_TEXT_UNIT=word for the default units
exec "$COMI" eval --task qa --model "$MODEL" --data "$DATA" --methods "$METHODS" \
    --unit "${COMI_TEXT_UNIT:-sentence}" --ratio 4,8,16,32 --limit "$N" --threads 1 --out-dir "$OUT"
