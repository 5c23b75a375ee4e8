#!/bin/bash
# Live migration keeps the TPM: PCR values, an NV counter, a loaded key, and
# the TIS state (a locality active, a command half written), with shared and
# non-shared storage, with and without a key. docs/migration.md.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"

EXTEND=0000000000000000000000000000000000000000000000000000000000000001

# prepare_source NAME: a TPM with PCR 16 extended, the NV counter at 3 and
# an ECC signing key loaded at 0x80000000.
prepare_source() {
    local n=$1
    tpm "$n" tpm2_startup -c &&
    tpm "$n" tpm2_pcrextend "16:sha256=$EXTEND" &&
    nv_counter_define "$n" &&
    tpm "$n" tpm2_nvincrement "$NV_COUNTER" -C o &&
    tpm "$n" tpm2_nvincrement "$NV_COUNTER" -C o &&
    tpm "$n" tpm2_nvincrement "$NV_COUNTER" -C o &&
    tpm "$n" tpm2_createprimary -C o -G ecc256:ecdsa-sha256 \
        -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' \
        -c "$SCRATCH/prim-$n.ctx" >/dev/null
}

# run_case LABEL STORAGE KEYED: one migration, then every check on the target.
run_case() {
    local label=$1 storage=$2 keyed=$3 key="" src_img dst_img pcr events
    [ "$keyed" = yes ] && key=$SCRATCH/key-a
    src_img=$(new_image "src-$label" "$key")
    if [ "$storage" = shared ]; then
        dst_img=$src_img
    else
        dst_img=$(new_image "dst-$label" "$key")
    fi
    start_qtpm "s$label" "$src_img" "$key"
    wait_qmp "s$label"
    check "$label: source prepared" prepare_source "s$label"
    pcr=$(pcr16 "s$label")
    check "$label: PCR 16 extended on the source" test -n "$pcr"

    # Locality 2 becomes active just before the migration.
    qtest "s$label" "writeb 0xfed42000 0x02" >/dev/null
    check "$label: locality 2 active on the source" \
        test "$(tis_access "s$label" 2)" = 0xa1

    start_qtpm "d$label" "$dst_img" "$key" -incoming "unix:$SCRATCH/$label.mig"
    wait_for_file "$SCRATCH/$label.mig" 100
    events=$(migrate "s$label" "unix:$SCRATCH/$label.mig" "$storage")
    check "$label: MIGRATION completed event" grep -q '"completed"' <<<"$events"
    check "$label: source query-migrate completed" \
        test "$(query_migrate "s$label" status)" = completed
    check "$label: downtime reported" test -n "$(query_migrate "s$label" downtime)"
    check "$label: source is postmigrate" test "$(runstate "s$label")" = postmigrate
    wait_qmp "d$label"
    check "$label: target query-migrate completed" \
        test "$(query_migrate "d$label" status)" = completed
    check "$label: target runs" test "$(runstate "d$label")" = running

    check "$label: locality 2 still active on the target" \
        test "$(tis_access "d$label" 2)" = 0xa1
    check "$label: locality 0 not active on the target" \
        test "$(tis_access "d$label" 0)" = 0x81
    qtest "d$label" "writeb 0xfed42000 0x20" >/dev/null
    check "$label: PCR 16 equal on the target" test "$(pcr16 "d$label")" = "$pcr"
    check "$label: NV counter is 3 on the target" test "$(nv_counter "d$label")" = 3
    check "$label: key still loaded at 0x80000000" \
        grep -q 0x80000000 <(tpm "d$label" tpm2_getcap handles-transient)
    echo "message $label" > "$SCRATCH/msg-$label"
    check "$label: the loaded key signs on the target" \
        tpm "d$label" tpm2_sign -c 0x80000000 -g sha256 \
        -o "$SCRATCH/sig-$label" "$SCRATCH/msg-$label"
    check "$label: the signature verifies" \
        tpm "d$label" tpm2_verifysignature -c 0x80000000 -g sha256 \
        -m "$SCRATCH/msg-$label" -s "$SCRATCH/sig-$label"
    check "$label: the target commits NV writes" \
        tpm "d$label" tpm2_nvincrement "$NV_COUNTER" -C o
    check "$label: NV counter is 4 after one more increment" \
        test "$(nv_counter "d$label")" = 4
    eval "kill \$PID_s$label \$PID_d$label"
    eval "wait \$PID_s$label \$PID_d$label" 2>/dev/null
    check "$label: qemu-img check clean (target image)" \
        qemu-img check -q "$dst_img"
}

run_case shk shared yes
run_case nsk non-shared yes
run_case au auto no
run_case ns non-shared no

# A command half written into the FIFO migrates with the TIS buffer: the
# target takes the rest, runs it and answers (TPM2_GetRandom of 8 bytes).
img=$(new_image half)
start_qtpm hs "$img" ""
wait_qmp hs
tpm hs tpm2_startup -c
qtest hs "writeb 0xfed40000 0x02" "writeb 0xfed40018 0x40" \
    "writeb 0xfed40024 0x80" "writeb 0xfed40024 0x01" \
    "writeb 0xfed40024 0x00" "writeb 0xfed40024 0x00" \
    "writeb 0xfed40024 0x00" "writeb 0xfed40024 0x0c" >/dev/null
start_qtpm hd "$img" "" -incoming "unix:$SCRATCH/half.mig"
wait_for_file "$SCRATCH/half.mig" 100
migrate hs "unix:$SCRATCH/half.mig" >/dev/null
check "half command: migration completed" test "$(query_migrate hs status)" = completed
wait_qmp hd
out=$(qtest hd "writeb 0xfed40024 0x00" "writeb 0xfed40024 0x00" \
    "writeb 0xfed40024 0x01" "writeb 0xfed40024 0x7b" \
    "writeb 0xfed40024 0x00" "writeb 0xfed40024 0x08" \
    "readb 0xfed40018")
sts=$(tail -1 <<<"$out" | awk '{print $2}')
check "half command: the target expects no more bytes (STS.expect clear)" \
    test $((sts & 0x08)) -eq 0
qtest hd "writeb 0xfed40018 0x20" >/dev/null
for i in $(seq 1 100); do
    sts=$(qtest hd "readb 0xfed40018" | awk '{print $2}')
    [ $((sts & 0x10)) -ne 0 ] && break
    sleep 0.05
done
check "half command: a response is available" test $((sts & 0x10)) -ne 0
# The FIFO returns one byte per read; read ten bytes one at a time.
hdr=""
for i in $(seq 1 10); do
    b=$(qtest hd "readb 0xfed40024" | awk '{print $2}')
    hdr="$hdr$(printf %02x "$b")"
done
check "half command: TPM2_GetRandom succeeded (20-byte success response)" \
    test "$hdr" = 80010000001400000000

done_testing
