#!/bin/bash
# tpm2-tools through QEMU's own tpm-tis with qtpm behind it: qtpm-tis
# drives Debian's qemu-system-x86_64 over its qtest socket, QEMU's
# -tpmdev emulator talks to qtpm -export swtpm on a keyed image. PCRs and an
# NV counter work; after a system_reset (QEMU re-initialises the TPM) the
# counter is kept and the PCRs are reset; after QEMU exits (and qtpm with it)
# and both are started again on the same image, the counter is still there.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"

NV_COUNTER=0x01500031
IMG=$SCRATCH/tpm.qcow2
KEY=$SCRATCH/tpm.key
DIR=$SCRATCH/vm
mkdir -p "$DIR"

quiet() { "$@" >/dev/null; }
hex_of() { xxd -p "$1" | tr -d '\n'; }
ZERO_PCR=$(printf '0%.0s' {1..64})

# start_vm: qtpm exporting the image on DIR/ctrl.sock, QEMU on it with its
# qtest socket DIR/q.sock and QMP socket DIR/m.sock. Sets QTPM_PID, QEMU_PID.
start_vm() {
    rm -f "$DIR/ctrl.sock" "$DIR/q.sock" "$DIR/m.sock"
    "$QTPM" -drive "file=$IMG,if=none,id=d0" \
        -object "secret,id=k0,file=$KEY,format=raw" \
        -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
        -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$DIR/ctrl.sock" \
        >"$DIR/qtpm.log" 2>&1 &
    QTPM_PID=$!
    bg_pid "$QTPM_PID"
    wait_for_file "$DIR/ctrl.sock" 100 || { diag "no control socket: $(cat "$DIR/qtpm.log")"; return 1; }
    qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
        -qtest "unix:$DIR/q.sock,server=on,wait=off" \
        -qmp "unix:$DIR/m.sock,server=on,wait=off" \
        -chardev "socket,id=chrtpm,path=$DIR/ctrl.sock" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm \
        -device tpm-tis,tpmdev=tpm0 >"$DIR/qemu.log" 2>&1 &
    QEMU_PID=$!
    bg_pid "$QEMU_PID"
    wait_for_file "$DIR/q.sock" 100 && wait_for_file "$DIR/m.sock" 100 ||
        { diag "QEMU did not start: $(cat "$DIR/qemu.log")"; return 1; }
}

# qemu_qmp COMMAND_JSON: one command to QEMU's monitor; the answers in DIR/qmp.out.
qemu_qmp() { qmp "$DIR" "$1" >"$DIR/qmp.out" && grep -q '"return"' "$DIR/qmp.out"; }

# stop_vm: QEMU quits; on its way out it sends CMD_SHUTDOWN, which ends qtpm (0).
stop_vm() {
    qemu_qmp '{"execute": "quit"}' || return 1
    wait_exit "$QEMU_PID" || return 1
    wait_exit "$QTPM_PID" && [ "$WAIT_STATUS" -eq 0 ] ||
        { diag "qtpm: status $WAIT_STATUS: $(cat "$DIR/qtpm.log")"; return 1; }
}

head -c 32 /dev/urandom >"$KEY"
check "a keyed image is created" "$QTPM_IMG" create --key-file "$KEY" "$IMG"
use_tpm "$DIR"

check "qtpm and QEMU start" start_vm
check "tpm2_startup -c through QEMU's tpm-tis" tpm startup -c
check "tpm2_getrandom 16" tpm getrandom 16 -o "$SCRATCH/rand"
check "... 16 bytes" [ "$(stat -c %s "$SCRATCH/rand")" = 16 ]
DIGEST=$(echo "measured behind QEMU" | sha256sum | cut -d' ' -f1)
check "tpm2_pcrextend 16" tpm pcrextend "16:sha256=$DIGEST"
check "tpm2_pcrread 16" tpm pcrread sha256:16 -o "$SCRATCH/pcr16"
check "... PCR 16 is no longer zero" [ "$(hex_of "$SCRATCH/pcr16")" != "$ZERO_PCR" ]
check "tpm2_nvdefine a counter" \
    tpm nvdefine $NV_COUNTER -C o -s 8 -a "nt=counter|ownerread|ownerwrite"
check "tpm2_nvincrement" tpm nvincrement $NV_COUNTER -C o
check "tpm2_nvread the counter" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c1"
check "... reads 1" [ "$(hex_of "$SCRATCH/c1")" = 0000000000000001 ]

# A machine reset: QEMU's tpm-tis resets and sends CMD_INIT again.
check "system_reset" qemu_qmp '{"execute": "system_reset"}'
check "tpm2_startup -c after the reset" tpm startup -c
check "PCR 16 was reset" tpm pcrread sha256:16 -o "$SCRATCH/pcr16b"
check "... to zeros" [ "$(hex_of "$SCRATCH/pcr16b")" = "$ZERO_PCR" ]
check "tpm2_nvincrement after the reset" tpm nvincrement $NV_COUNTER -C o
check "tpm2_nvread" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c2"
check "... reads 2" [ "$(hex_of "$SCRATCH/c2")" = 0000000000000002 ]
# QEMU exits without a TPM2_Shutdown: the counter must be durable anyway.
check "QEMU quits, and qtpm exits with status 0" stop_vm

check "qtpm and QEMU start again on the same image" start_vm
check "tpm2_startup -c" tpm startup -c
check "the counter kept its value" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c3"
check "... 2" [ "$(hex_of "$SCRATCH/c3")" = 0000000000000002 ]
check "tpm2_nvincrement" tpm nvincrement $NV_COUNTER -C o
check "tpm2_nvread" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c4"
check "... reads 3" [ "$(hex_of "$SCRATCH/c4")" = 0000000000000003 ]
check "orderly tpm2_shutdown" tpm shutdown -c
check "QEMU quits again, and so does qtpm" stop_vm
check "qtpm-img check finds the image intact" quiet "$QTPM_IMG" check --key-file "$KEY" "$IMG"
check "qemu-img check finds no errors or leaks" qemu-img check -q "$IMG"
done_testing
