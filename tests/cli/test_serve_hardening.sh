#!/bin/sh
# tests/cli/test_serve_hardening.sh — comi serve against hostile and broken
# clients on loopback (tests/cli/serve_hardening.py): 413 answers that reach
# Python's urllib, header and body deadlines, prompt release of cut-off
# uploads, per-client and global connection caps, the bound on buffered
# request bodies, --api-key, the access log format and the default port.
# Every wait is bounded; every server is killed at the end.
. tests/cli/lib.sh
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if ! command -v "$PY" >/dev/null 2>&1; then
    fail serve_hardening "python3 is not installed"
    exit 1
fi
timeout 240 "$PY" tests/cli/serve_hardening.py "$COMI" "$TMP"
