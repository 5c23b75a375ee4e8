#!/bin/bash
# One fuzz target as make check runs it, in TAP: over its seed corpora (the
# small one in tests/fuzz/corpus/TARGET and, when made, the one
# tests/fuzz/make-corpus.sh writes to FUZZ_BUILD/corpus/TARGET), over every
# input in tests/fuzz/regressions/TARGET, then fuzzed for FUZZ_CHECK_TIME
# seconds from those seeds. A crash or hang fails and names the input.
#   tests/fuzz/check-target.sh FUZZ_BUILD TARGET
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
fb=$1
name=$2
. "$src/tests/lib.sh"
case "$fb" in /*) ;; *) fb=$src/$fb ;; esac
bin=$fb/tests/fuzz/$name
time=${FUZZ_CHECK_TIME:-10}
# Per input: a hang is a failure after 10 s; memory is bounded.
opts=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024)

if [ ! -x "$bin" ]; then
    not_ok "$name: $bin is not built (make fuzz-build)"
    done_testing
    exit
fi
ok "$name is built"

seeds=()
for d in "$src/tests/fuzz/corpus/$name" "$fb/corpus/$name"; do
    [ -d "$d" ] && [ -n "$(ls -A "$d")" ] && seeds+=("$d")
done
if [ ${#seeds[@]} -eq 0 ]; then
    not_ok "$name has a seed corpus (tests/fuzz/corpus/$name)"
else
    # -runs=0: every seed runs once, nothing is mutated.
    if (cd "$SCRATCH" && "$bin" "${opts[@]}" -runs=0 "${seeds[@]}") \
            >"$SCRATCH/seeds.log" 2>&1; then
        ok "$name runs its seed corpus ($(find "${seeds[@]}" -type f | wc -l) inputs)"
    else
        not_ok "$name runs its seed corpus"
        grep -E 'ERROR|SUMMARY|Test unit|Running' "$SCRATCH/seeds.log" | tail -5 | sed 's/^/# /'
    fi
fi

reg=$src/tests/fuzz/regressions/$name
if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    for f in "$reg"/*; do
        if (cd "$SCRATCH" && "$bin" "${opts[@]}" "$f") >"$SCRATCH/reg.log" 2>&1; then
            ok "$name: regression $(basename "$f")"
        else
            not_ok "$name: regression $(basename "$f")"
            grep -E 'ERROR|SUMMARY|runtime error' "$SCRATCH/reg.log" | head -5 | sed 's/^/# /'
        fi
    done
else
    diag "$name: no regression inputs yet"
fi

# The timed run mutates a copy: the seeds in the tree stay as they are.
work=$SCRATCH/corpus
art=$fb/fuzz-artifacts/$name
mkdir -p "$work" "$art"
for d in "${seeds[@]}"; do cp -r "$d"/. "$work"/; done
if (cd "$SCRATCH" && "$bin" "${opts[@]}" -max_total_time="$time" \
        -artifact_prefix="$art/" -print_final_stats=1 "$work") \
        >"$SCRATCH/fuzz.log" 2>&1; then
    stats=$(grep -E '^#[0-9]+.*DONE' "$SCRATCH/fuzz.log" | tail -1)
    ok "$name fuzzed for ${time}s: ${stats:-no stats}"
else
    not_ok "$name fuzzed for ${time}s"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$SCRATCH/fuzz.log" | head -6 | sed 's/^/# /'
    diag "keep the input: cp $art/<crash-or-timeout-file> $reg/ (docs/fuzzing.md)"
fi
done_testing
