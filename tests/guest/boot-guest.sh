#!/bin/bash
# Boots the test guest under QEMU with its TPM behind -tpmdev emulator, and
# checks what the guest reports: the kernel's TPM driver bound to the
# expected device and TPM2_GetRandom(8) through /dev/tpm0 answered rc 0.
#   tests/guest/boot-guest.sh BUILD_DIR TPM_SOCKET [tis|crb]
# TPM_SOCKET is the control socket of whatever serves swtpm's protocol.
# Environment: QEMU (default qemu-system-x86_64), GUEST_TIMEOUT (seconds,
# default 120), GUEST_LOG (where the serial console goes; default a
# temporary file, removed at the end).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: boot-guest.sh BUILD_DIR TPM_SOCKET [tis|crb]}
SOCKET=${2:?usage: boot-guest.sh BUILD_DIR TPM_SOCKET [tis|crb]}
MODEL=${3:-tis}
QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${GUEST_TIMEOUT:-120}

case "$MODEL" in
tis) driver=tpm_tis ;;
crb) driver=tpm_crb ;;
*) echo "boot-guest: model '$MODEL' is not tis or crb" >&2; exit 2 ;;
esac
[ -S "$SOCKET" ] || { echo "boot-guest: '$SOCKET' is not a socket" >&2; exit 2; }

"$SRC/tests/guest/build-guest.sh" "$BUILD" || exit 1
GUEST=$BUILD/guest

if [ -n "${GUEST_LOG:-}" ]; then
    LOG=$GUEST_LOG
    keep_log=1
else
    LOG=$(mktemp /tmp/qtpm-guest.XXXXXX)
    keep_log=0
fi
ERR=$(mktemp /tmp/qtpm-guest-qemu.XXXXXX)
: >"$LOG"

start=$(date +%s.%N)
timeout "$TIMEOUT" "$QEMU" \
    -machine q35 -accel tcg -smp 1 -m 256 \
    -nodefaults -display none -monitor none -serial "file:$LOG" -no-reboot \
    -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initramfs.cpio.gz" \
    -append "quiet console=ttyS0 panic=-1" \
    -chardev "socket,id=chrtpm,path=$SOCKET" \
    -tpmdev emulator,id=tpm0,chardev=chrtpm \
    -device "tpm-$MODEL,tpmdev=tpm0" 2>"$ERR"
qemu_rc=$?
end=$(date +%s.%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

grep -a '^QTPM-GUEST: ' "$LOG" | tr -d '\r'

fail=
if [ "$qemu_rc" -eq 124 ]; then
    fail="the guest did not power off within ${TIMEOUT}s"
elif [ "$qemu_rc" -ne 0 ]; then
    fail="$QEMU exited with status $qemu_rc"
elif ! grep -aq "^QTPM-GUEST: tpm0 bound driver=$driver " "$LOG"; then
    fail="the guest's $driver driver did not bind"
elif ! grep -aq '^QTPM-GUEST: size=00000014 rc=00000000' "$LOG"; then
    fail="TPM2_GetRandom(8) from the guest did not succeed"
fi

if [ -n "$fail" ]; then
    echo "boot-guest: tpm-$MODEL: $fail (after ${secs}s)" >&2
    echo "--- QEMU's stderr" >&2
    cat "$ERR" >&2
    echo "--- serial console" >&2
    tr -d '\r' <"$LOG" >&2
    echo "---" >&2
    rm -f "$ERR"
    [ "$keep_log" -eq 1 ] || rm -f "$LOG"
    exit 1
fi
rm -f "$ERR"
[ "$keep_log" -eq 1 ] || rm -f "$LOG"
echo "boot-guest: tpm-$MODEL: guest booted, driver bound, GetRandom rc 0, in ${secs}s"
