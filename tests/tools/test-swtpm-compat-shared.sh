#!/bin/bash
# libvirt's migration on shared storage through the swtpm front doors: the
# source's `swtpm socket` runs with libvirt 9.0's command line and
# `--migration release-lock-outgoing`, the target's on the same state
# directory with `--migration release-lock-outgoing,incoming` (libvirt runs
# no swtpm_setup there), each in front of Debian's QEMU; plain and with
# libvirt's passphrase on pipes. The target starts while the source owns the
# image, QEMU migrates the running VM, PCR 16 and the NV counter arrive, the
# target's qtpm then owns the image and the source's refuses commands.
. "$(dirname "$0")/../lib.sh"
. "$SRC_PATH/tests/migration/migration-lib.sh"
. "$SRC_PATH/tests/migration/qemu-migration-lib.sh"

COMPAT=$BUILD/swtpm-compat
PW=shared-storage-passphrase
export QTPM_CA_DIR=$SCRATCH/ca
mkdir -p "$QTPM_CA_DIR"
printf %s "$PW" >"$SCRATCH/pw"
DIGEST=$(echo "measured before a migration through the front doors" | sha256sum | cut -d' ' -f1)
# A running q35 would execute its firmware, which uses the TPM: a 64 KiB
# BIOS whose reset vector halts instead.
HALT_BIOS=$SCRATCH/halt.bin
{ head -c 65520 /dev/zero; printf '\xfa\xf4\xeb\xfd'; head -c 12 /dev/zero; } >"$HALT_BIOS"

# front_door NAME DIR MODE MIGRATION: `swtpm socket` as libvirt runs it on
# $SCRATCH/NAME.ctrl (the socket start_qemu connects to), MODE plain or
# keyed; sets PID_NAME_tpm, which is qtpm's pid since the front door execs.
front_door() {
    local name=$1 dir=$2 mode=$3 mig=$4 keyargs=()
    [ "$mode" = keyed ] &&
        keyargs=(--key pwdfd=3,mode=aes-256-cbc --migration-key pwdfd=4,mode=aes-256-cbc)
    rm -f "$SCRATCH/$name.ctrl"
    "$COMPAT/swtpm" socket --ctrl "type=unixio,path=$SCRATCH/$name.ctrl,mode=0600" \
        --tpmstate "dir=$dir,mode=0600" --log "file=$SCRATCH/$name.log" --terminate \
        --tpm2 "${keyargs[@]}" --migration "$mig" \
        3< <(printf %s "$PW") 4< <(printf %s "$PW") 2>"$SCRATCH/$name.tpm.log" &
    bg_pid $!
    eval "PID_${name}_tpm=$!"
    wait_for_file "$SCRATCH/$name.ctrl" 100 ||
        { diag "$name: $(cat "$SCRATCH/$name.tpm.log")"; return 1; }
}

# incoming_qemu NAME: QEMU NAME waits for a migration on $SCRATCH/NAME.mig.
incoming_qemu() {
    start_qemu "$1" -bios "$HALT_BIOS" -incoming defer &&
        qmpc "$SCRATCH/$1.qmp" "{\"execute\": \"migrate-incoming\",
            \"arguments\": {\"uri\": \"unix:$SCRATCH/$1.mig\"}}" |
        grep -q '"return"' && wait_for_file "$SCRATCH/$1.mig" 100
}

pid_of() { eval "echo \$PID_$1"; }

for mode in plain keyed; do
    dir=$SCRATCH/nfs/$mode/tpm2
    img=$dir/tpm2-00.qcow2
    src=src_$mode dst=dst_$mode
    mkdir -p "$dir"
    setup_key=()
    [ "$mode" = keyed ] && setup_key=(--pwdfile-fd 3 --cipher aes-256-cbc)
    check "$mode: swtpm_setup with libvirt's command line" "$COMPAT/swtpm_setup" --tpm2 \
        "${setup_key[@]}" --tpm-state "$dir" --vmid "vm:$mode" \
        --logfile "$SCRATCH/setup.log" --createek --create-ek-cert \
        --create-platform-cert --lock-nvram --not-overwrite 3< <(printf %s "$PW")

    check "$mode: the source's swtpm socket --migration release-lock-outgoing" \
        front_door "$src" "$dir" "$mode" release-lock-outgoing
    check "$mode: ... runs qtpm with release-lock-outgoing=on" \
        grep -qa "release-lock-outgoing=on" "/proc/$(pid_of "${src}_tpm")/cmdline"
    check "$mode: source QEMU: startup, PCR 16 extended, NV counter at 2" eval \
        'start_qemu "$src" -bios "$HALT_BIOS" && tpm "$src" tpm2_startup -c &&
         tpm "$src" tpm2_pcrextend "16:sha256=$DIGEST" && nv_counter_define "$src" &&
         tpm "$src" tpm2_nvincrement "$NV_COUNTER" -C o &&
         tpm "$src" tpm2_nvincrement "$NV_COUNTER" -C o &&
         qmpc "$SCRATCH/$src.qmp" "{\"execute\": \"cont\"}" | grep -q return'
    pcr=$(pcr16 "$src")
    check "$mode: the source's qtpm owns the image" \
        holds_owner_lock "$(pid_of "${src}_tpm")" "$img"

    before=$(image_sum "$img")
    check "$mode: the target's swtpm socket --migration release-lock-outgoing,incoming starts while the source runs" \
        front_door "$dst" "$dir" "$mode" release-lock-outgoing,incoming
    check "$mode: ... runs qtpm with incoming=on,release-lock-outgoing=on" \
        grep -qa "incoming=on,release-lock-outgoing=on" "/proc/$(pid_of "${dst}_tpm")/cmdline"
    check "$mode: ... as a reader: it does not own the image" \
        eval "! holds_owner_lock $(pid_of "${dst}_tpm") $img"
    check "$mode: ... and has not written to it" test "$(image_sum "$img")" = "$before"
    check "$mode: target QEMU waits for the migration" incoming_qemu "$dst"

    qmpc "$SCRATCH/$src.qmp" "{\"execute\": \"migrate\",
        \"arguments\": {\"uri\": \"unix:$SCRATCH/$dst.mig\"}}" >/dev/null
    st=$(wait_migration "$src")
    check "$mode: QEMU migrates the running VM ($st)" test "$st" = completed
    st=$(wait_incoming "$dst")
    check "$mode: the target loaded the state ($st)" test "$st" = paused
    check "$mode: PCR 16 arrived" test "$(pcr16 "$dst")" = "$pcr"
    check "$mode: the NV counter arrived" test "$(nv_counter "$dst")" = 2
    check "$mode: the target's TPM works on: the counter increments to 3" \
        tpm "$dst" tpm2_nvincrement "$NV_COUNTER" -C o
    check "$mode: the target's qtpm owns the image" \
        holds_owner_lock "$(pid_of "${dst}_tpm")" "$img"
    check "$mode: the source's does not" \
        eval "! holds_owner_lock $(pid_of "${src}_tpm") $img"
    check_fails "$mode: the source's TPM refuses commands" \
        tpm "$src" tpm2_nvincrement "$NV_COUNTER" -C o
    qmpc "$SCRATCH/$src.qmp" '{"execute": "quit"}' >/dev/null
    qmpc "$SCRATCH/$dst.qmp" '{"execute": "quit"}' >/dev/null
    wait_exit "$(pid_of "${dst}_tpm")" 100
    check "$mode: with --terminate the target's qtpm exits when QEMU quits" \
        test "$EXIT_STATUS" = 0
    key=()
    [ "$mode" = keyed ] && key=(--passphrase-file "$SCRATCH/pw")
    check "$mode: the image checks clean" "$QTPM_IMG" check "${key[@]}" "$img"
done
done_testing
