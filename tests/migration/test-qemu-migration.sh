#!/bin/bash
# QEMU-to-QEMU migration with qtpm behind each QEMU's -tpmdev emulator, on
# non-shared storage: two Debian QEMUs (guest-less -S machines, qtest for the
# TIS), each with its own qtpm -export swtpm on its own image. QEMU's own
# migration carries the TPM state blobs; a PCR and an NV counter arrive, and
# with a key the stream holds no run of the plaintext state. A target with
# another key, or none, refuses the blobs at CMD_SET_STATEBLOB with one
# sentence, its image unchanged, and the source keeps answering.
# docs/swtpm-protocol.md "SET_STATEBLOB", "Sealed state blob".
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"
. "$(dirname "$0")/qemu-migration-lib.sh"

NV_DATA=0x1500017
DIGEST=$(echo "measured before migration" | sha256sum | cut -d' ' -f1)
# A payload that can only be found in the stream as TPM state: NV data.
head -c 32 /dev/urandom > "$SCRATCH/nv-payload"

# stream_has_payload FILE: the NV payload occurs in FILE.
stream_has_payload() {
    local hex
    hex=$(xxd -p "$SCRATCH/nv-payload" | tr -d '\n')
    xxd -p "$1" | tr -d '\n' | grep -q "$hex"
}

# source_with_state NAME IMAGE KEY: qtpm and QEMU for NAME; TPM started,
# PCR 16 extended, NV counter at 3, NV data holding the payload.
source_with_state() {
    local name=$1 i
    start_export "$name" "$2" "$3" || return 1
    start_qemu "$name" || return 1
    tpm "$name" tpm2_startup -c &&
        tpm "$name" tpm2_pcrextend "16:sha256=$DIGEST" &&
        nv_counter_define "$name" || return 1
    for i in 1 2 3; do
        tpm "$name" tpm2_nvincrement "$NV_COUNTER" -C o || return 1
    done
    tpm "$name" tpm2_nvdefine "$NV_DATA" -C o -s 32 -a "ownerwrite|ownerread" \
        >/dev/null &&
        tpm "$name" tpm2_nvwrite "$NV_DATA" -C o -i "$SCRATCH/nv-payload"
}

nv_data_is_payload() {
    tpm "$1" tpm2_nvread "$NV_DATA" -C o -s 32 -o "$SCRATCH/$1.nvdata" &&
        cmp -s "$SCRATCH/$1.nvdata" "$SCRATCH/nv-payload"
}

# refused_target NAME IMAGE KEY|"" STREAM SENTENCE: a QEMU -incoming from
# STREAM on a qtpm with KEY fails, qtpm logs SENTENCE once, IMAGE unchanged.
refused_target() {
    local name=$1 img=$2 key=$3 stream=$4 sentence=$5 before st
    start_export "$name" "$img" "$key" || { not_ok "$name: qtpm starts"; return; }
    before=$(image_sum "$img")
    start_qemu "$name" -incoming "exec:cat $stream"
    st=$(wait_incoming "$name")
    eval "wait_exit \$PID_${name}_qemu 100"
    check "$name: the incoming QEMU fails the migration ($st, exit $EXIT_STATUS)" \
        test "$EXIT_STATUS" != running -a "$EXIT_STATUS" != 0
    check "$name: QEMU names the TPM's refusal" \
        grep -q "tpm-emulator" "$SCRATCH/$name.qemu.log"
    diag "$name: $(grep -m1 tpm-emulator "$SCRATCH/$name.qemu.log")"
    check "$name: qtpm logs the cause once" \
        test "$(grep -c "CMD_SET_STATEBLOB: .*$sentence" "$SCRATCH/$name.tpm.log")" = 1
    diag "$name: $(grep -m1 CMD_SET_STATEBLOB "$SCRATCH/$name.tpm.log")"
    check "$name: no plaintext state reached the backend or the store" \
        test "$(image_sum "$img")" = "$before"
    eval "kill \$PID_${name}_tpm"
    eval "wait_exit \$PID_${name}_tpm 50"
}

pcr=""
for mode in plain keyed; do
    key=""
    [ "$mode" = keyed ] && key=$SCRATCH/key-a
    src=src_$mode dst=dst_$mode
    img_src=$(new_image "$src" "$key")
    img_dst=$(new_image "$dst" "$key")

    check "$mode: source QEMU on qtpm: startup, PCR extend, NV counter, NV data" \
        source_with_state "$src" "$img_src" "$key"
    pcr=$(pcr16 "$src")
    check "$mode: source PCR 16 is set" test -n "$pcr"
    check "$mode: source NV counter is 3" test "$(nv_counter "$src")" = 3

    stream=$SCRATCH/$mode.stream
    check "$mode: QEMU migrates into a file" migrate_to_file "$src" "$stream"
    if [ "$mode" = keyed ]; then
        check_fails "$mode: the stream holds no run of the plaintext NV payload" \
            stream_has_payload "$stream"
        check "$mode: qtpm handed the blobs out sealed" grep -q QTPMSBLB "$stream"
    else
        check "$mode: (the search works) the plain stream holds the NV payload" \
            stream_has_payload "$stream"
    fi

    check "$mode: target qtpm starts on its own image" \
        start_export "$dst" "$img_dst" "$key"
    check "$mode: target QEMU starts with -incoming" \
        start_qemu "$dst" -incoming "exec:cat $stream"
    st=$(wait_incoming "$dst")
    check "$mode: the target loads the stream (run state $st)" test "$st" = prelaunch
    check "$mode: ... and its migration completed" \
        test "$(query_migrate "$dst" status)" = completed
    check "$mode: PCR 16 arrived" test "$(pcr16 "$dst")" = "$pcr"
    check "$mode: the NV counter arrived" test "$(nv_counter "$dst")" = 3
    check "$mode: the NV data arrived" nv_data_is_payload "$dst"
    check "$mode: the target's TPM works on: NV counter increments to 4" \
        tpm "$dst" tpm2_nvincrement "$NV_COUNTER" -C o
    check "$mode: ... and reads 4" test "$(nv_counter "$dst")" = 4
    check "$mode: the source keeps answering" test "$(pcr16 "$src")" = "$pcr"
done

# --- refusals: the keyed stream on a target with another key, or none -------
stream=$SCRATCH/keyed.stream
refused_target wrong "$(new_image wrong "$SCRATCH/key-b")" "$SCRATCH/key-b" \
    "$stream" "sealed under another key"
refused_target nokey "$(new_image nokey)" "" "$stream" "has no key to open it"
# A damaged blob: a byte flipped inside the first sealed blob's ciphertext.
off=$(grep -obaF QTPMSBLB "$stream" | head -1 | cut -d: -f1)
cp "$stream" "$SCRATCH/damaged.stream"
printf '\xff' | dd of="$SCRATCH/damaged.stream" bs=1 seek=$((off + 100)) conv=notrunc \
    status=none
refused_target damaged "$(new_image damaged "$SCRATCH/key-a")" "$SCRATCH/key-a" \
    "$SCRATCH/damaged.stream" "is damaged"
check "after the refusals the source keeps answering: PCR 16" \
    test "$(pcr16 src_keyed)" = "$pcr"
check "... and the NV counter" test "$(nv_counter src_keyed)" = 3

done_testing
