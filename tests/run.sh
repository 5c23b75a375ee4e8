#!/bin/bash
# Runs qtpm's tests and counts TAP results.
#   tests/run.sh [--build DIR] [--san-build DIR] [--fuzz-build DIR] [-j N] CATEGORY...
# A category is a folder under tests/ (unit, qtest, tools, interop, migration,
# libvirt: a real libvirtd, as root),
# "sanitizers" (the hostile-input tests listed in tests/sanitizer-tests, run
# from the sanitizer build), "fuzz" (each libFuzzer target of the fuzz build
# over its seeds and regressions, then FUZZ_CHECK_TIME seconds of fuzzing:
# tests/fuzz/check-target.sh), or "all". A test is a binary
# $BUILD/tests/CAT/test-* or a script tests/CAT/test-*.sh; both print TAP.
# The last line printed is "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=build
SAN_BUILD=build-san
FUZZ_BUILD=build-fuzz
JOBS=2
cats=()
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --san-build) SAN_BUILD=$2; shift 2 ;;
    --fuzz-build) FUZZ_BUILD=$2; shift 2 ;;
    -j) JOBS=$2; shift 2 ;;
    all) cats+=(unit qtest tools interop migration libvirt sanitizers fuzz); shift ;;
    *) cats+=("$1"); shift ;;
    esac
done
[ ${#cats[@]} -eq 0 ] && cats=(unit)
export BUILD SAN_BUILD FUZZ_BUILD
export SRC_PATH=$PWD
LOGDIR=$BUILD/test-logs
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

list=()
for cat in "${cats[@]}"; do
    if [ "$cat" = sanitizers ]; then
        [ -f tests/sanitizer-tests ] || continue
        while read -r t; do
            case "$t" in ''|\#*) continue ;; esac
            # A listed test that was not built fails (exit 127), never vanishes.
            list+=("san:$SAN_BUILD/tests/$t")
        done < tests/sanitizer-tests
        continue
    fi
    if [ "$cat" = fuzz ]; then
        # One entry per target source: a target that was not built fails.
        for c in tests/fuzz/fuzz-*.c; do
            [ "$c" = tests/fuzz/fuzz-util.c ] || list+=("fuzz:$(basename "$c" .c)")
        done
        continue
    fi
    for b in "$BUILD"/tests/"$cat"/test-*; do
        [ -x "$b" ] && [ -f "$b" ] && case "$b" in *.o|*.d) ;; *) list+=("bin:$b") ;; esac
    done
    for s in tests/"$cat"/test-*.sh; do
        [ -f "$s" ] && list+=("sh:$s")
    done
done

run_one() {
    local kind=${1%%:*} path=${1#*:}
    local name=$kind-$(echo "$path" | tr '/' '_')
    local log=$LOGDIR/$name.log
    local rc
    case "$kind" in
    bin|san) timeout 600 "$path" --tap -k >"$log" 2>&1; rc=$? ;;
    sh) timeout 900 bash "$path" >"$log" 2>&1; rc=$? ;;
    fuzz) timeout 900 bash tests/fuzz/check-target.sh "$FUZZ_BUILD" "$path" >"$log" 2>&1
        rc=$? ;;
    esac
    local pass fail
    pass=$(grep -cE '^ok ' "$log")
    fail=$(grep -cE '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        fail=1
        echo "not ok - $path exited with status $rc" >>"$log"
    fi
    if [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ]; then
        fail=1
        echo "not ok - $path ran no test" >>"$log"
    fi
    local tag=PASS
    [ "$fail" -gt 0 ] && tag=FAIL
    printf '%-4s %-50s %3d passed, %d failed\n' "$tag" "$kind:$path" "$pass" "$fail"
    if [ "$fail" -gt 0 ]; then
        grep -E '^not ok |^# |Bail out|ERROR|error' "$log" | grep -v '^# (Start|End) of' | head -20 | sed 's/^/     | /'
    fi
    echo "$pass $fail" >"$log.count"
}
export -f run_one
export LOGDIR

printf '%s\n' "${list[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}

passed=0
failed=0
for c in "$LOGDIR"/*.count; do
    [ -f "$c" ] || continue
    read -r p f <"$c"
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "logs: $LOGDIR"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
