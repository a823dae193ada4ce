#!/bin/sh
# tests/cli/test_serve_answer.sh — load and faults of comi serve's /v1/answer
# with the real SmolLM2-135M (tests/cli/serve_answer.py): concurrent answers
# equal the serial ones and `comi answer`'s, a timed-out request gets 504 and
# frees its worker (cooperative cancellation), a client that disconnects
# mid-request frees its worker (also mid-prefill: the forward pass stops
# between two layers), SIGTERM with answers in flight answers them
# and exits 0. The model comes from scripts/fetch_models.sh (or
# $COMI_SMOLLM2); when it cannot be had the test FAILS.
. tests/cli/lib.sh
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if ! command -v "$PY" >/dev/null 2>&1; then
    fail serve_answer "python3 is not installed"
    exit 1
fi
S=${COMI_SMOLLM2:-}
if [ -z "$S" ] && [ -f scripts/fetch_models.sh ]; then S=$(sh scripts/fetch_models.sh --quiet 2>/dev/null | head -n 1); fi
[ -n "$S" ] || S=$HOME/.cache/comi/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$S" ]; then
    fail serve_answer "the real model is not at '$S' (scripts/fetch_models.sh fetches it)"
    exit 1
fi
timeout 240 "$PY" tests/cli/serve_answer.py "$COMI" "$S" "$TMP"
