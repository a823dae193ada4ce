#!/bin/sh
# tests/run.sh — runs every test program in $BUILD/tests and every script
# tests/cli/test_*.sh, counts PASS/FAIL/SKIP lines, and prints
# "N passed, N failed, N skipped" as the last line. Exit status 1 if any
# check failed. Run from the repository root (make test does).
BUILD=${BUILD:-build}
export BUILD
COMI_GOLDEN=${COMI_GOLDEN:-../shared/golden}
export COMI_GOLDEN
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
log_dir=$BUILD/test-logs
mkdir -p "$log_dir"
pass=0; fail=0; skip=0

if [ ! -d "$COMI_GOLDEN" ]; then
    echo "################################################################"
    echo "# WARNING: golden data not found at $COMI_GOLDEN"
    echo "# Every comparison against independent implementations is SKIPPED."
    echo "# Set COMI_GOLDEN to the shared/golden directory to run them."
    echo "################################################################"
fi

run_one() {
    name=$1; shift
    log=$log_dir/$name.log
    timeout "$TEST_TIMEOUT" "$@" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
    grep -E '^(FAIL|SKIP) ' "$log" | sed "s|^|  [$name] |"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "  [$name] FAIL: exited with status $rc without reporting a failure; log: $log"
        tail -n 5 "$log" | sed "s|^|    |"
        f=1
    fi
    if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$s" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "  [$name] FAIL: reported no checks at all"
        f=1
    fi
    printf '%-34s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for t in tests/cli/test_*.sh; do
    [ -f "$t" ] || continue
    run_one "cli_$(basename "$t" .sh)" sh "$t"
done

if [ "$skip" -gt 0 ]; then
    echo "NOTE: $skip checks were SKIPPED (see SKIP lines above)."
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
