#!/bin/bash
# make fuzz: each target for SECONDS, one after another, from its seed
# corpora; the corpus grows in FUZZ_BUILD/fuzz-corpus/TARGET (kept between
# runs) and crashes land in FUZZ_BUILD/fuzz-artifacts/TARGET. Prints a table
# of executions per second and coverage (edges, features) per target.
#   tests/fuzz/run-fuzz.sh FUZZ_BUILD SECONDS [TARGET...]
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
fb=$1
time=$2
shift 2
case "$fb" in /*) ;; *) fb=$src/$fb ;; esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for c in "$src"/tests/fuzz/fuzz-*.c; do
        n=$(basename "$c" .c)
        [ "$n" = fuzz-util ] || targets+=("$n")
    done
fi
failed=0
rows=()
for name in "${targets[@]}"; do
    bin=$fb/tests/fuzz/$name
    work=$fb/fuzz-corpus/$name
    art=$fb/fuzz-artifacts/$name
    log=$fb/fuzz-logs/$name.log
    mkdir -p "$work" "$art" "$(dirname "$log")"
    for d in "$src/tests/fuzz/corpus/$name" "$fb/corpus/$name"; do
        [ -d "$d" ] && cp -rn "$d"/. "$work"/
    done
    echo "fuzz: $name for ${time}s"
    (cd "$art" && "$bin" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -max_total_time="$time" -artifact_prefix="$art/" -print_final_stats=1 \
        "$work") >"$log" 2>&1
    rc=$?
    done_line=$(grep -E '^#[0-9]+' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$done_line" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$done_line" | sed -n 's/.*corp: \([^ ]*\).*/\1/p')
    status=ok
    if [ $rc -ne 0 ]; then
        status="FAILED (see $log)"
        failed=1
    fi
    rows+=("$(printf '| %-22s | %10s | %8s | %6s | %7s | %-12s | %s |' \
        "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$status")")
done
printf '| %-22s | %10s | %8s | %6s | %7s | %-12s | %s |\n' target executions exec/s edges \
    features corpus result
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------------------ ------------ ---------- \
    -------- --------- -------------- --------
printf '%s\n' "${rows[@]}"
exit $failed
