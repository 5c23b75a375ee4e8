# Shell helpers for qtpm's script tests: TAP output and scratch folders.
# Source it; $BUILD names the build folder (default build).
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
QTPM=$BUILD/qtpm
QTPM_IMG=$BUILD/qtpm-img
QTPM_IO=$BUILD/qtpm-io
QTPM_TIS=$BUILD/qtpm-tis
TAP_N=0
TAP_FAILED=0
SCRATCH=$(mktemp -d /tmp/qtpm-test.XXXXXX)
_cleanup_pids=()
cleanup() {
    for p in "${_cleanup_pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
# bg_pid PID: kill PID when the test ends.
bg_pid() { _cleanup_pids+=("$1"); }
ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# check_fails DESCRIPTION COMMAND...: ok when COMMAND fails.
check_fails() { local d=$1; shift; if "$@"; then not_ok "$d"; else ok "$d"; fi; }
diag() { echo "# $*"; }
done_testing() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }
# wait_for_file PATH [TENTHS]: waits until PATH exists.
wait_for_file() {
    local i=0 n=${2:-100}
    while [ ! -e "$1" ] && [ $i -lt "$n" ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$1" ]
}
