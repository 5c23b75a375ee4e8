#!/bin/bash
# A VM running on swtpm today live-migrates onto qtpm: Debian's QEMU with
# swtpm 0.7.1 behind its -tpmdev emulator migrates into a QEMU -incoming
# whose TPM is qtpm -export swtpm on a fresh image without a key. swtpm's
# plain state blobs arrive through CMD_SET_STATEBLOB: PCR 16 and an NV
# counter are there, the counter keeps incrementing, and after the target's
# QEMU and qtpm are restarted on the image the counter is still there. A
# target with a key takes the same blobs.
# docs/qemu.md "Moving a VM from swtpm to qtpm".
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"
. "$(dirname "$0")/qemu-migration-lib.sh"

DIGEST=$(echo "measured on swtpm" | sha256sum | cut -d' ' -f1)

# start_swtpm NAME: swtpm serving a TPM 2.0 in $SCRATCH/NAME.state on
# $SCRATCH/NAME.ctrl; sets PID_NAME_tpm. Log in $SCRATCH/NAME.tpm.log.
start_swtpm() {
    local name=$1
    rm -f "$SCRATCH/$name.ctrl"
    mkdir -p "$SCRATCH/$name.state"
    swtpm socket --tpm2 --ctrl "type=unixio,path=$SCRATCH/$name.ctrl" \
        --tpmstate "dir=$SCRATCH/$name.state" \
        --log "file=$SCRATCH/$name.tpm.log" >"$SCRATCH/$name.swtpm.out" 2>&1 &
    bg_pid $!
    eval "PID_${name}_tpm=$!"
    wait_for_file "$SCRATCH/$name.ctrl" 100
}

# stop_vm NAME: quits NAME's QEMU (which sends CMD_SHUTDOWN) and waits for it
# and its TPM to exit; the TPM's exit status is left in EXIT_STATUS.
stop_vm() {
    qmpc "$SCRATCH/$1.qmp" '{"execute": "quit"}' >/dev/null 2>&1
    eval "wait_exit \$PID_${1}_qemu 100"
    eval "wait_exit \$PID_${1}_tpm 100"
}

check "source: swtpm 0.7.1 starts" start_swtpm src
check "source: QEMU starts on swtpm" start_qemu src
check "source: TPM2_Startup through QEMU's TIS" tpm src tpm2_startup -c
check "source: PCR 16 extended" tpm src tpm2_pcrextend "16:sha256=$DIGEST"
check "source: NV counter defined" nv_counter_define src
for i in 1 2 3; do
    check "source: NV counter increment $i" tpm src tpm2_nvincrement "$NV_COUNTER" -C o
done
pcr=$(pcr16 src)
check "source: PCR 16 is set" test -n "$pcr"
check "source: NV counter is 3" test "$(nv_counter src)" = 3

stream=$SCRATCH/swtpm.stream
check "source: QEMU migrates into a file" migrate_to_file src "$stream"

img=$(new_image dst)
check "target: qtpm starts on a fresh image without a key" start_export dst "$img" ""
check "target: QEMU starts with -incoming" start_qemu dst -incoming "exec:cat $stream"
st=$(wait_incoming dst)
check "target: the stream from swtpm loads (run state $st)" test "$st" = prelaunch
check "target: ... and its migration completed" \
    test "$(query_migrate dst status)" = completed
check_fails "target: qtpm refused no blob" \
    grep -q CMD_SET_STATEBLOB "$SCRATCH/dst.tpm.log"
check "target: PCR 16 arrived" test "$(pcr16 dst)" = "$pcr"
check "target: the NV counter arrived" test "$(nv_counter dst)" = 3
check "target: the NV counter increments to 4" \
    tpm dst tpm2_nvincrement "$NV_COUNTER" -C o
check "target: ... and reads 4" test "$(nv_counter dst)" = 4
check "source: swtpm keeps answering" test "$(nv_counter src)" = 3

stop_vm dst
check "target: QEMU's quit stops qtpm cleanly (exit $EXIT_STATUS)" test "$EXIT_STATUS" = 0
check "target: qtpm starts again on the image" start_export dst "$img" ""
check "target: QEMU starts again" start_qemu dst
check "target: TPM2_Startup after the restart" tpm dst tpm2_startup -c
check "target: the NV counter is still 4 after the restart" \
    test "$(nv_counter dst)" = 4
check "target: ... and increments to 5" tpm dst tpm2_nvincrement "$NV_COUNTER" -C o
check "target: ... and reads 5" test "$(nv_counter dst)" = 5

stop_vm dst

# A target whose image has a key takes the same plain blobs and seals them
# into its image.
img=$(new_image dstk "$SCRATCH/key-a")
check "keyed target: qtpm starts on a fresh image with a key" \
    start_export dstk "$img" "$SCRATCH/key-a"
check "keyed target: QEMU starts with -incoming" \
    start_qemu dstk -incoming "exec:cat $stream"
st=$(wait_incoming dstk)
check "keyed target: the stream from swtpm loads (run state $st)" test "$st" = prelaunch
check "keyed target: PCR 16 arrived" test "$(pcr16 dstk)" = "$pcr"
check "keyed target: the NV counter arrived" test "$(nv_counter dstk)" = 3
stop_vm dstk
check "keyed target: qtpm stops cleanly (exit $EXIT_STATUS)" test "$EXIT_STATUS" = 0

stop_vm src

done_testing
