#!/bin/sh
# scripts/fuzz_coverage.sh [TARGET...] — line coverage of each fuzz target's
# corpus (tests/fuzz/corpus/<t> + crashes, plus build-fuzz/corpus/<t> when a
# campaign left one) over the source files the target is meant to exercise.
# Builds tests/test_fuzz_replay.c and the library with clang source-based
# coverage into build-cov/, replays one target at a time (COMI_FUZZ_ONLY),
# and prints one row per target: lines covered / lines, and the files.
# Needs clang, llvm-profdata and llvm-cov (Debian: clang, llvm). Run from the
# repository root.
set -eu
B=${COV_BUILD:-build-cov}
CC=${COV_CC:-clang}
PROFDATA=${LLVM_PROFDATA:-$(command -v llvm-profdata-14 || command -v llvm-profdata)}
COV=${LLVM_COV:-$(command -v llvm-cov-14 || command -v llvm-cov)}
PKGS="jansson libpcre2-8 libutf8proc libmicrohttpd"
mkdir -p "$B/obj"
FLAGS="-O1 -g -std=c11 -mavx2 -mfma -mf16c -D_GNU_SOURCE -pthread -Iinclude -Isrc -Itests -Itests/fuzz \
 -I/usr/include/x86_64-linux-gnu/openblas-pthread $(pkg-config --cflags $PKGS) \
 -fprofile-instr-generate -fcoverage-mapping"
objs=""
for f in src/*/*.c; do
    o=$B/obj/$(basename "$f" .c).o
    if [ ! -f "$o" ] || [ "$f" -nt "$o" ]; then $CC $FLAGS -c "$f" -o "$o"; fi
    objs="$objs $o"
done
# shellcheck disable=SC2086
$CC $FLAGS -o "$B/replay" tests/test_fuzz_replay.c $objs $(pkg-config --libs $PKGS) -lopenblas -lm
files_for() {
    case $1 in
    gguf) echo src/formats/gguf.c ;;
    safetensors | st_index) echo src/formats/safetensors.c ;;
    hfconfig) echo src/formats/hfconfig.c ;;
    quant) echo src/formats/quant.c ;;
    model_gguf) echo src/runtime/model.c src/formats/gguf.c ;;
    model_hf) echo src/runtime/model.c src/formats/safetensors.c src/formats/hfconfig.c ;;
    tokenizer) echo src/runtime/tokenizer.c src/runtime/tokenizer_vocab.c src/runtime/tokenizer_gguf.c ;;
    tokenizer_json) echo src/runtime/tokenizer_hf.c src/runtime/tokenizer_vocab.c ;;
    chat) echo src/runtime/chat.c ;;
    jsonl) echo src/eval/eval.c ;;
    text) echo src/text/text.c src/text/lexical.c ;;
    request) echo tools/serve/request.c tools/serve/jobs.c src/text/text.c ;;
    answer) echo tools/serve/request.c tools/serve/jobs.c src/comi/pipeline.c ;;
    merge) echo tools/cmd_merge.c src/comi/mig.c ;;
    *) echo "" ;;
    esac
}
targets=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/fuzz_\(.*\)\.c|\1|')}
printf '%-15s %17s  %s\n' target "lines covered" files
for t in $targets; do
    rm -rf "$B/dir" && mkdir -p "$B/dir/corpus/$t" "$B/dir/crashes"
    cp tests/fuzz/corpus/"$t"/* "$B/dir/corpus/$t/" 2>/dev/null || true
    [ -d "build-fuzz/corpus/$t" ] && cp build-fuzz/corpus/"$t"/* "$B/dir/corpus/$t/" 2>/dev/null || true
    [ -d "tests/fuzz/crashes/$t" ] && cp -r "tests/fuzz/crashes/$t" "$B/dir/crashes/"
    rm -f "$B/$t.profraw"
    COMI_FUZZ_ONLY=$t COMI_FUZZ_DIR=$B/dir LLVM_PROFILE_FILE=$B/$t.profraw "$B/replay" >"$B/$t.log" 2>&1 ||
        { echo "$t: replay failed (see $B/$t.log)"; continue; }
    "$PROFDATA" merge -sparse "$B/$t.profraw" -o "$B/$t.profdata"
    files=$(files_for "$t")
    # shellcheck disable=SC2086
    row=$("$COV" report "$B/replay" -instr-profile="$B/$t.profdata" $files | tail -n 1)
    # TOTAL regions missed cover functions missed exec lines missed cover ...
    lines=$(echo "$row" | awk '{print $8}')
    missed=$(echo "$row" | awk '{print $9}')
    pct=$(echo "$row" | awk '{print $10}')
    printf '%-15s %6s/%-6s %6s  %s\n' "$t" "$((lines - missed))" "$lines" "$pct" "$files"
done
