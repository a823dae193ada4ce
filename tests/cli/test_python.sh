#!/bin/sh
# tests/cli/test_python.sh — the Python package (python/comi) under Debian's
# python3 unittest, through python/tests/run.py, which prints PASS/FAIL/SKIP
# lines for the harness. Uses $BUILD/libcomi.so; with a sanitizer build the
# sanitizer runtimes are preloaded into python3 (leak checks off: the
# interpreter itself keeps memory until exit).
. tests/cli/lib.sh

PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if ! command -v "$PY" >/dev/null 2>&1; then
    skip python "python3 is not installed"
    exit 0
fi
COMI_LIBRARY=$PWD/${BUILD:-build}/libcomi.so
COMI_CLI=$COMI
export COMI_LIBRARY COMI_CLI
if [ ! -f "$COMI_LIBRARY" ]; then
    fail python "no $COMI_LIBRARY (run make)"
    exit 1
fi
if nm -D "$COMI_LIBRARY" 2>/dev/null | grep -q '__asan_init'; then
    LD_PRELOAD="$(${CC:-cc} -print-file-name=libasan.so) $(${CC:-cc} -print-file-name=libubsan.so)"
    ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
    export LD_PRELOAD ASAN_OPTIONS
fi
timeout 300 "$PY" python/tests/run.py
