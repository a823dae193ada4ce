#!/bin/sh
# scripts/test_python_package.sh — the Python package as users get it (CI
# runs this after `make test`; it needs PyPI):
#  1. `pip install ".[langchain,llama-index,ray]"` from this checkout into a
#     fresh virtual environment (the C library is built by the package's
#     build step and shipped inside it);
#  2. `import comi` from another directory with no environment variables;
#  3. the package's unit tests (python/tests) against the installed package;
#  4. the integrations against the real langchain-core (+ langchain-classic
#     for ContextualCompressionRetriever), llama-index-core and Ray Data
#     (python/tests/integration; a 2-worker Ray job on a few thousand rows);
#  5. `python -m build` (sdist, then a wheel from it), the wheel installed in
#     a second fresh environment and imported.
# Prints PASS/FAIL lines, the seconds each stage took, and
# "N passed, N failed, N skipped" last; exit status 1 on any failure.
# COMI_PKG_STAGES="install unit integration build" picks stages (default all).
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
STAGES=${COMI_PKG_STAGES:-install unit integration build}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
VENV=$WORK/venv
LOG=$WORK/log
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
now() { date +%s; }
stage() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
count() { # adds the PASS/FAIL/SKIP lines of a harness log
    p=$(grep -c '^PASS ' "$1"); f=$(grep -c '^FAIL ' "$1"); s=$(grep -c '^SKIP ' "$1")
    grep -E '^(FAIL|SKIP) ' "$1"
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}
unset COMI_LIBRARY PYTHONPATH

t=$(now)
if ! "$PY" -m venv "$VENV" >"$LOG" 2>&1; then
    ko pkg_venv "python3 -m venv failed (Debian: apt-get install python3-venv): $(tail -n 2 "$LOG")"
    echo "$pass passed, $fail failed, $skip skipped"; exit 1
fi
if "$VENV/bin/pip" install -q ".[langchain,llama-index,ray]" langchain-classic >"$LOG" 2>&1; then
    ok pkg_pip_install
else
    ko pkg_pip_install "$(tail -n 5 "$LOG" | tr '\n' ' ')"
    echo "$pass passed, $fail failed, $skip skipped"; exit 1
fi
echo "stage install: $(($(now) - t)) s"

if stage install; then
    # from another directory, no environment: the installed package and the
    # library inside it
    out=$(cd "$WORK" && env -i HOME="$WORK" "$VENV/bin/python" -c '
import comi, os
print(comi.__version__, os.path.dirname(comi.__file__), comi.library_path())
print(comi.compress("The Eiffel Tower is in Paris. It was finished in 1889. Bananas are yellow.",
                    "When was the Eiffel Tower finished?", ratio=2))' 2>&1)
    ver=$(sed -n 's/^#define COMI_VERSION_STRING "\(.*\)".*/\1/p' include/comi.h)
    first=$(echo "$out" | head -n 1)
    case "$first" in
        "$ver $VENV/lib/"*"/site-packages/comi $VENV/lib/"*"/site-packages/comi/libcomi.so")
            ok pkg_import_anywhere ;;
        *) ko pkg_import_anywhere "$out" ;;
    esac
    want=$(./build/comi compress --context "The Eiffel Tower is in Paris. It was finished in 1889. Bananas are yellow." \
           --question "When was the Eiffel Tower finished?" --ratio 2 2>&1)
    if [ "$(echo "$out" | sed -n 2p)" = "$want" ]; then ok pkg_same_as_cli
    else ko pkg_same_as_cli "'$(echo "$out" | sed -n 2p)' vs CLI '$want'"; fi
    typed=$("$VENV/bin/python" -c 'import comi, os; print(os.path.exists(os.path.join(os.path.dirname(comi.__file__), "py.typed")))')
    [ "$typed" = True ] && ok pkg_py_typed || ko pkg_py_typed "py.typed not installed"
fi

if stage unit; then
    t=$(now)
    COMI_TEST_INSTALLED=1 COMI_CLI=$REPO/build/comi timeout 600 \
        "$VENV/bin/python" python/tests/run.py python/tests >"$LOG" 2>&1
    count "$LOG"
    echo "stage unit: $(($(now) - t)) s"
fi

if stage integration; then
    t=$(now)
    COMI_TEST_INSTALLED=1 timeout 900 \
        "$VENV/bin/python" python/tests/run.py python/tests/integration >"$LOG" 2>&1
    rc=$?
    count "$LOG"
    grep '^ray job:' "$LOG"
    [ "$rc" -eq 0 ] || grep -q '^FAIL ' "$LOG" || ko pkg_integration "exit $rc: $(tail -n 5 "$LOG" | tr '\n' ' ')"
    echo "stage integration: $(($(now) - t)) s"
fi

if stage build; then
    t=$(now)
    if "$VENV/bin/pip" install -q build >"$LOG" 2>&1 &&
       "$VENV/bin/python" -m build --outdir "$WORK/dist" . >"$LOG" 2>&1; then
        ok pkg_python_m_build
    else
        ko pkg_python_m_build "$(tail -n 5 "$LOG" | tr '\n' ' ')"
    fi
    whl=$(ls "$WORK"/dist/*.whl 2>/dev/null | head -n 1)
    if [ -n "$whl" ] && "$VENV/bin/python" -m zipfile -l "$whl" | grep -q 'comi/libcomi.so' &&
       "$VENV/bin/python" -m zipfile -l "$whl" | grep -q 'comi/py.typed'; then
        ok pkg_wheel_contents
    else
        ko pkg_wheel_contents "no wheel, or it lacks comi/libcomi.so or comi/py.typed: $whl"
    fi
    if [ -n "$whl" ] && "$PY" -m venv "$WORK/venv2" >"$LOG" 2>&1 &&
       "$WORK/venv2/bin/pip" install -q "$whl" >"$LOG" 2>&1 &&
       (cd "$WORK" && env -i HOME="$WORK" "$WORK/venv2/bin/python" -c \
           'import comi; assert comi.Compressor(ratio=2).compress("a b c d", "b").text') >"$LOG" 2>&1; then
        ok pkg_wheel_installs
    else
        ko pkg_wheel_installs "$(tail -n 5 "$LOG" | tr '\n' ' ')"
    fi
    echo "stage build: $(($(now) - t)) s"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
