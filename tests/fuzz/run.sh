#!/bin/sh
# tests/fuzz/run.sh TARGET... — runs each built libFuzzer target for
# $FUZZ_SECONDS seconds (or until $FUZZ_RUNS executions, when set, whichever
# comes first) and prints one summary row per target: executions,
# edge coverage (cov), features (ft), corpus size, and crashers found.
# Logs: $FUZZ_BUILD/logs/<target>.log. Exit status 1 if any target found a
# crash. Run from the repository root (make fuzz does).
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
runs=""
[ -n "${FUZZ_RUNS:-}" ] && runs="-runs=$FUZZ_RUNS"
mkdir -p "$FUZZ_BUILD/logs"
# The targets are single-threaded; OpenBLAS threads would only contend with
# other runs.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
status=0
printf '%-14s %10s %8s %8s %8s %6s %s\n' target execs exec/s cov ft corpus result
for t in "$@"; do
    bin=$FUZZ_BUILD/fuzz_$t
    work=$FUZZ_BUILD/corpus/$t
    crashes=tests/fuzz/crashes/$t
    mkdir -p "$work" "$crashes"
    dict=""
    [ -f "tests/fuzz/dict/$t.dict" ] && dict="-dict=tests/fuzz/dict/$t.dict"
    log=$FUZZ_BUILD/logs/$t.log
    # -rss_limit_mb guards against a parser that allocates what a header
    # claims; new inputs go to $work, the committed seeds are read only.
    "$bin" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$crashes/" $dict $runs \
        "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    # 72: libFuzzer's exit status when interrupted (SIGINT/SIGTERM), not a finding.
    if [ "$rc" -eq 0 ]; then result=ok
    elif [ "$rc" -eq 72 ]; then result="interrupted"; status=1
    else result="FINDING (rc $rc, see $log)"; status=1; fi
    printf '%-14s %10s %8s %8s %8s %6s %s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$result"
done
exit $status
