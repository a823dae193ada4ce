#!/bin/sh
# scripts/bench_merge_cli.sh — times the whole `comi merge` process (file
# reading, merge, writing) on random hidden states, N x D float32 (default
# 32768 x 4096, 512 MiB, merge size 16), with /usr/bin/time -v: wall time and
# peak RSS of each run. The input is written under $TMPDIR (default /tmp),
# never into the repository, and removed afterwards unless KEEP=1.
#
# usage: sh scripts/bench_merge_cli.sh [N] [D] [RUNS]     (after `make bench`)
set -e
N=${1:-32768}
D=${2:-4096}
RUNS=${3:-5}
BUILD=${BUILD:-build}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/comi-bench-merge.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT
[ -x "$BUILD/comi" ] && [ -x "$BUILD/bench/bench_merge" ] || { echo "run 'make bench' first" >&2; exit 1; }

"$BUILD/bench/bench_merge" --write "$N" "$D" "$DIR"
bytes=$(wc -c <"$DIR/context.f32")
echo "# comi merge on $N x $D float32 ($((bytes / 1048576)) MiB), merge size 16; load: $(uptime)"
# one untimed run so the input is in the page cache, as it is for every timed run
"$BUILD/comi" merge --context "$DIR/context.f32" --query "$DIR/query.f32" --dim "$D" \
    --merge-size 16 --out "$DIR/mem.f32" --quiet
printf '%-4s %9s %9s %9s %11s %7s\n' run wall_s user_s sys_s peakRSS_MB RSS/in
i=1
while [ "$i" -le "$RUNS" ]; do
    /usr/bin/time -v "$BUILD/comi" merge --context "$DIR/context.f32" --query "$DIR/query.f32" \
        --dim "$D" --merge-size 16 --out "$DIR/mem.f32" --quiet 2>"$DIR/time.txt"
    awk -v run="$i" -v bytes="$bytes" '
        /Elapsed \(wall clock\)/ { n = split($NF, t, ":"); wall = (n == 3) ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2] }
        /User time/ { user = $NF }
        /System time/ { sys = $NF }
        /Maximum resident set size/ { rss = $NF }
        END { printf "%-4d %9.3f %9.3f %9.3f %11.1f %7.3f\n", run, wall, user, sys, rss / 1024, rss * 1024 / bytes }' "$DIR/time.txt"
    i=$((i + 1))
done
echo "# load after: $(uptime)"
