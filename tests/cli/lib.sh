# tests/cli/lib.sh — helpers for shell tests of the CLI. Source it; it sets
# COMI (the binary), TMP (a scratch directory removed on exit) and GOLDEN.
COMI=${COMI:-$PWD/${BUILD:-build}/comi}
GOLDEN=${COMI_GOLDEN:-../shared/golden}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

# expect_fail NAME PATTERN CMD... — CMD must exit non-zero, not crash
# (status < 128), and print a one-line error matching PATTERN on stderr.
expect_fail() {
    name=$1; pat=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq 0 ]; then fail "$name" "exit 0, expected failure"; return; fi
    if [ "$rc" -ge 128 ]; then fail "$name" "crashed with status $rc"; return; fi
    if ! grep -q -- "$pat" "$TMP/err"; then
        fail "$name" "stderr does not match '$pat': $(head -c 300 "$TMP/err")"; return
    fi
    pass "$name"
}
