#!/bin/sh
# bench/serve_wrk.sh — /v1/compress under wrk on loopback: the first NQ-20
# example at RATIO (default 8) against `comi serve --threads THREADS`
# (default 2), CONNS connections (default 8), SECONDS (default 5).
# Run from the repository root after `make`: sh bench/serve_wrk.sh
set -e
BUILD=${BUILD:-build}
DATA=${COMI_DATA:-../shared/data}
RATIO=${RATIO:-8}; THREADS=${THREADS:-2}; CONNS=${CONNS:-8}; SECONDS_=${SECONDS:-5}
command -v wrk >/dev/null || { echo "serve_wrk: wrk is not installed" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'kill "$SPID" 2>/dev/null; rm -rf "$TMP"' EXIT
head -n 1 "$DATA/nq20.jsonl" | python3 -c 'import json,sys; e=json.loads(sys.stdin.readline()); print(json.dumps({"context": e["input"], "question": e["prompt"], "ratio": float(sys.argv[1])}))' "$RATIO" >"$TMP/body.json"
"$BUILD/comi" serve --host 127.0.0.1 --port 0 --threads "$THREADS" --queue 1024 >"$TMP/out" 2>"$TMP/err" &
SPID=$!
i=0
while ! grep -q listening "$TMP/out" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PORT=$(sed -n 's|.*127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$TMP/out")
[ -n "$PORT" ] || { echo "serve_wrk: server did not start: $(cat "$TMP/err")" >&2; exit 1; }
echo "# wrk -t2 -c$CONNS -d${SECONDS_}s, comi serve --threads $THREADS, NQ-20 line 1 at ${RATIO}x; $(uptime)"
COMI_BODY=$TMP/body.json wrk -t2 -c"$CONNS" -d"${SECONDS_}s" --latency -s bench/serve_post.lua \
    "http://127.0.0.1:$PORT/v1/compress"
kill -TERM "$SPID"; wait "$SPID" || true
