#!/bin/bash
# QEMU-to-QEMU live migration with qtpm behind each QEMU's -tpmdev emulator,
# on shared storage: both qtpm exports serve the SAME image, the source with
# release-lock-outgoing=on, the target with incoming=on. The target starts
# while the source owns the image; after the migration the target owns it,
# the source does not, and PCR 16 and the NV counter are the source's. A
# target with the wrong key exits 1 before its socket exists and the source
# runs on; a migration that fails after the target took the image gives it
# back, and QEMU's CMD_LOCK_STORAGE lets the source's TPM work again.
# docs/swtpm-protocol.md "Shared storage", docs/qemu.md "Migration on shared
# storage".
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"
. "$(dirname "$0")/qemu-migration-lib.sh"

DIGEST=$(echo "measured before a shared-storage migration" | sha256sum | cut -d' ' -f1)
# The VMs run (QEMU relocks a failed source only when it runs again), and a
# running q35 executes its firmware, which would start and reconfigure the
# TPM: a 64 KiB BIOS whose reset vector halts instead.
HALT_BIOS=$SCRATCH/halt.bin
{ head -c 65520 /dev/zero; printf '\xfa\xf4\xeb\xfd'; head -c 12 /dev/zero; } >"$HALT_BIOS"

# source_with_state NAME IMAGE KEY: qtpm (release-lock-outgoing) and a
# running QEMU for NAME; TPM started, PCR 16 extended, NV counter at 3.
source_with_state() {
    local name=$1 i
    start_export "$name" "$2" "$3" release-lock-outgoing=on || return 1
    start_qemu "$name" -bios "$HALT_BIOS" || return 1
    tpm "$name" tpm2_startup -c &&
        tpm "$name" tpm2_pcrextend "16:sha256=$DIGEST" &&
        nv_counter_define "$name" || return 1
    for i in 1 2 3; do
        tpm "$name" tpm2_nvincrement "$NV_COUNTER" -C o || return 1
    done
    qmpc "$SCRATCH/$name.qmp" '{"execute": "cont"}' | grep -q '"return"' &&
        set_return_path "$name"
}

# incoming_qemu NAME: QEMU NAME waits for a migration on $SCRATCH/NAME.mig.
incoming_qemu() {
    local name=$1
    shift
    start_qemu "$name" -bios "$HALT_BIOS" -incoming defer "$@" &&
        set_return_path "$name" &&
        qmpc "$SCRATCH/$name.qmp" "{\"execute\": \"migrate-incoming\",
            \"arguments\": {\"uri\": \"unix:$SCRATCH/$name.mig\"}}" |
        grep -q '"return"' && wait_for_file "$SCRATCH/$name.mig" 100
}

# migrate_to NAME TARGET: NAME's QEMU migrates into TARGET's; prints the
# source's final status.
migrate_to() {
    qmpc "$SCRATCH/$1.qmp" "{\"execute\": \"migrate\",
        \"arguments\": {\"uri\": \"unix:$SCRATCH/$2.mig\"}}" >/dev/null
    wait_migration "$1"
}

pid_of() { eval "echo \$PID_$1"; }

for mode in plain keyed; do
    key=""
    [ "$mode" = keyed ] && key=$SCRATCH/key-a
    src=src_$mode dst=dst_$mode
    img=$(new_image "shared_$mode" "$key")

    check "$mode: source QEMU on qtpm: startup, PCR extend, NV counter at 3" \
        source_with_state "$src" "$img" "$key"
    pcr=$(pcr16 "$src")
    check "$mode: source PCR 16 is set" test -n "$pcr"
    check "$mode: the source's qtpm owns the image" \
        holds_owner_lock "$(pid_of "${src}_tpm")" "$img"

    check "$mode: the target qtpm starts on the same image while the source owns it" \
        start_export "$dst" "$img" "$key" incoming=on
    check "$mode: ... as a reader: it does not own the image" \
        eval "! holds_owner_lock $(pid_of "${dst}_tpm") $img"
    check "$mode: target QEMU waits for the migration" incoming_qemu "$dst"

    st=$(migrate_to "$src" "$dst")
    check "$mode: QEMU migrates the running VM ($st)" test "$st" = completed
    diag "$mode: downtime $(query_migrate "$src" downtime) ms, total $(query_migrate "$src" total-time) ms"
    st=$(wait_incoming "$dst")
    check "$mode: the target loaded the state (run state $st, -S)" test "$st" = paused
    check "$mode: PCR 16 arrived" test "$(pcr16 "$dst")" = "$pcr"
    check "$mode: the NV counter arrived" test "$(nv_counter "$dst")" = 3
    check "$mode: the target's TPM works on: NV counter increments to 4" \
        tpm "$dst" tpm2_nvincrement "$NV_COUNTER" -C o
    check "$mode: ... and reads 4" test "$(nv_counter "$dst")" = 4
    check "$mode: the target's qtpm owns the image" \
        holds_owner_lock "$(pid_of "${dst}_tpm")" "$img"
    check "$mode: the source's qtpm no longer does" \
        eval "! holds_owner_lock $(pid_of "${src}_tpm") $img"
    check "$mode: the source's qtpm handed over without a warning" \
        test ! -s "$SCRATCH/$src.tpm.log"
    check_fails "$mode: the source's TPM refuses commands now" \
        tpm "$src" tpm2_nvincrement "$NV_COUNTER" -C o
    check "$mode: the image checks clean" "$QTPM_IMG" check ${key:+--key-file "$key"} \
        "$img"
done

# --- a wrong key: the target exits 1 before its socket exists -------------
img=$SCRATCH/shared_keyed.qcow2
src=dst_keyed
rm -f "$SCRATCH/wrong.ctrl"
# (LeakSanitizer cannot run under ptrace: a sanitizer build skips only that.)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -f -qq -e trace=bind -o "$SCRATCH/wrong.strace" \
    "$QTPM" -object "secret,id=k0,file=$SCRATCH/key-b,format=raw" \
    -drive "file=$img,if=none,id=d0" -tpmdev libtpms,id=t0,nvram=d0,key-secret=k0 \
    -export "swtpm,id=e0,tpmdev=t0,ctrl=unix:$SCRATCH/wrong.ctrl,incoming=on" \
    >"$SCRATCH/wrong.tpm.log" 2>&1
st=$?
check "wrong key: the target qtpm exits 1 ($st)" test "$st" = 1
check "wrong key: ... with one sentence" test "$(wc -l < "$SCRATCH/wrong.tpm.log")" = 1
diag "wrong key: $(cat "$SCRATCH/wrong.tpm.log")"
check "wrong key: ... that names the key" grep -q "wrong key" "$SCRATCH/wrong.tpm.log"
check "wrong key: its control socket never existed (no bind)" \
    eval "! grep -q bind $SCRATCH/wrong.strace && test ! -e $SCRATCH/wrong.ctrl"
timeout 30 qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
    -chardev "socket,id=c,path=$SCRATCH/wrong.ctrl" \
    -tpmdev emulator,id=t0,chardev=c -device tpm-tis,tpmdev=t0 \
    -incoming defer >"$SCRATCH/wrong.qemu.log" 2>&1
st=$?
check "wrong key: QEMU -incoming on the target cannot start ($st)" \
    test "$st" != 0 -a "$st" != 124
diag "wrong key: $(head -1 "$SCRATCH/wrong.qemu.log")"
check "wrong key: the running VM's TPM keeps answering: NV counter at 4" \
    test "$(nv_counter "$src")" = 4
check "wrong key: ... and increments to 5" tpm "$src" tpm2_nvincrement "$NV_COUNTER" -C o
check "wrong key: ... the VM keeps its image" \
    holds_owner_lock "$(pid_of "${src}_tpm")" "$img"

# --- a migration that fails after the target took the image ----------------
# The source has a device the target lacks: its section comes after the TPM's,
# so the target has started the TPM when QEMU fails the load.
img=$(new_image shared_fail)
check "failed: source QEMU on qtpm with an extra device" \
    eval 'start_export fsrc "$img" "" release-lock-outgoing=on &&
        start_qemu fsrc -bios "$HALT_BIOS" -device virtio-rng-pci &&
        tpm fsrc tpm2_startup -c && tpm fsrc tpm2_pcrextend "16:sha256=$DIGEST" &&
        nv_counter_define fsrc && tpm fsrc tpm2_nvincrement "$NV_COUNTER" -C o &&
        qmpc "$SCRATCH/fsrc.qmp" "{\"execute\": \"cont\"}" | grep -q return &&
        set_return_path fsrc'
pcr=$(pcr16 fsrc)
check "failed: the target qtpm starts on the same image" \
    start_export fdst "$img" "" incoming=on
check "failed: target QEMU without the device waits" incoming_qemu fdst
st=$(migrate_to fsrc fdst)
check "failed: the migration fails ($st)" test "$st" = failed
wait_exit "$PID_fdst_qemu" 100
check "failed: the target QEMU gave up ($EXIT_STATUS)" test "$EXIT_STATUS" != running
diag "failed: $(tail -1 "$SCRATCH/fdst.qemu.log")"
check "failed: the target had taken the image and handed it back" \
    grep -q "the image is handed back to the migration source" "$SCRATCH/fdst.tpm.log"
check "failed: the source VM runs again" test "$(runstate fsrc)" = running
check "failed: QEMU's CMD_LOCK_STORAGE gave the source its image back" \
    holds_owner_lock "$PID_fsrc_tpm" "$img"
check "failed: the target's qtpm let it go" eval "! holds_owner_lock $PID_fdst_tpm $img"
check "failed: the source's TPM works: PCR 16" test "$(pcr16 fsrc)" = "$pcr"
check "failed: ... and the NV counter increments to 2" \
    tpm fsrc tpm2_nvincrement "$NV_COUNTER" -C o
check "failed: ... and reads 2" test "$(nv_counter fsrc)" = 2
check "failed: the image checks clean" "$QTPM_IMG" check "$img"

# --- not the same state: a target on a copy taken before the last NV write --
img=$(new_image shared_stale)
check "stale: source QEMU on qtpm, NV counter at 1" \
    eval 'start_export ssrc "$img" "" release-lock-outgoing=on &&
        start_qemu ssrc -bios "$HALT_BIOS" && tpm ssrc tpm2_startup -c &&
        nv_counter_define ssrc && tpm ssrc tpm2_nvincrement "$NV_COUNTER" -C o &&
        qmpc "$SCRATCH/ssrc.qmp" "{\"execute\": \"cont\"}" | grep -q return &&
        set_return_path ssrc'
cp "$img" "$SCRATCH/stale-copy.qcow2"
check "stale: the source moves on: NV counter at 2" \
    tpm ssrc tpm2_nvincrement "$NV_COUNTER" -C o
before=$(image_sum "$SCRATCH/stale-copy.qcow2")
check "stale: a target qtpm starts on the copy" \
    start_export sdst "$SCRATCH/stale-copy.qcow2" "" incoming=on
check "stale: its QEMU waits" incoming_qemu sdst
st=$(migrate_to ssrc sdst)
check "stale: the migration fails ($st)" test "$st" = failed
check "stale: the target refuses the permanent blob, in one sentence" \
    test "$(grep -c "CMD_SET_STATEBLOB: the permanent state blob is not the permanent state in the shared image" \
        "$SCRATCH/sdst.tpm.log")" = 1
diag "stale: $(grep -m1 CMD_SET_STATEBLOB "$SCRATCH/sdst.tpm.log")"
eval "wait_exit \$PID_sdst_qemu 100"
check "stale: the copy is unchanged" test "$(image_sum "$SCRATCH/stale-copy.qcow2")" = "$before"
check "stale: the target qtpm does not keep it locked" \
    eval "! holds_owner_lock $PID_sdst_tpm $SCRATCH/stale-copy.qcow2"
check "stale: the source runs on with its image: NV counter at 2" \
    test "$(nv_counter ssrc)" = 2
check "stale: ... and increments to 3" tpm ssrc tpm2_nvincrement "$NV_COUNTER" -C o

done_testing
