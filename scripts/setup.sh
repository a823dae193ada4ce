#!/bin/sh
# scripts/setup.sh — installs the Debian packages comi builds and tests with.
# Idempotent: does nothing when everything is present. Needs root (or sudo).
set -e
PKGS="build-essential pkg-config libopenblas-dev libpcre2-dev libutf8proc-dev libjansson-dev
      libmicrohttpd-dev libstemmer-dev wordnet-base clang libclang-rt-14-dev python3 python3-venv curl jq"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "setup: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing >/dev/null
