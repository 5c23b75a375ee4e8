#!/bin/bash
# Boots the test guest against Debian's swtpm, once through QEMU's tpm-tis
# and once through tpm-crb, on one TPM state. It is the reference run for
# the same check against qtpm: only start_tpm below differs. Prints TAP.
#   tests/guest/try-swtpm.sh [BUILD_DIR]
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}

WORK=$(mktemp -d /tmp/qtpm-guest-swtpm.XXXXXX)
TPM_PID=
cleanup() {
    [ -n "$TPM_PID" ] && kill "$TPM_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/state"

# start_tpm SOCKET STATE_DIR LOG: serve swtpm's control protocol on SOCKET,
# in the background.
start_tpm() {
    swtpm socket --tpm2 --ctrl "type=unixio,path=$1" --tpmstate "dir=$2" \
        --log "file=$3" &
}

# Waits up to 5 s for the TPM server to exit on its own (QEMU sends
# CMD_SHUTDOWN when it powers off), else ends it.
stop_tpm() {
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$TPM_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$TPM_PID" 2>/dev/null; then
        echo "# the TPM server was still running after QEMU exited"
        kill "$TPM_PID"
    fi
    wait "$TPM_PID" 2>/dev/null
    TPM_PID=
}

"$SRC/tests/guest/build-guest.sh" "$BUILD" || { echo "Bail out! no guest"; exit 1; }

echo "1..2"
n=0
for model in tis crb; do
    n=$((n + 1))
    sock=$WORK/tpm-$model.sock
    start_tpm "$sock" "$WORK/state" "$WORK/tpm-$model.log"
    TPM_PID=$!
    for ((i = 0; i < 50; i++)); do
        [ -S "$sock" ] && break
        sleep 0.1
    done
    if "$SRC/tests/guest/boot-guest.sh" "$BUILD" "$sock" "$model" 2>&1 | sed 's/^/# /'; then
        echo "ok $n - a Linux guest uses the TPM through tpm-$model"
    else
        echo "not ok $n - a Linux guest uses the TPM through tpm-$model"
        sed 's/^/# tpm log: /' "$WORK/tpm-$model.log"
    fi
    stop_tpm
done
