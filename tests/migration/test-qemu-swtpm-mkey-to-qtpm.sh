#!/bin/bash
# A VM on swtpm started with --migration-key live-migrates onto qtpm given
# the same key: Debian's QEMU with swtpm 0.7.1 behind its -tpmdev emulator
# migrates into a file, and a QEMU -incoming with qtpm -export swtpm behind
# it loads it. Three sources: a binary AES-256 key file, a passphrase on a
# pipe (pwdfd=, as libvirt passes it) with AES-128 and PBKDF2, and a
# passphrase file with kdf=sha512. The stream holds no plaintext NV data;
# PCR 16, an NV counter and an NV payload arrive. A target with a wrong
# key, a key of the other size, or no key refuses the blobs with
# TPM_DECRYPT_ERROR (0x21) and one line in its log, its image unchanged and
# its TPM never started; the source keeps answering.
# docs/qemu.md "Moving a VM from swtpm to qtpm", docs/swtpm-state.md.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"
. "$(dirname "$0")/qemu-migration-lib.sh"

DIGEST=$(echo "measured on swtpm with a migration key" | sha256sum | cut -d' ' -f1)
NV_DATA=0x1500020
PAYLOAD="qtpm-mkey-payload-7f3a9c2e51d84b"   # 32 bytes, searched in streams
printf '%s' "$PAYLOAD" > "$SCRATCH/payload"
PASS_PIPE="the passphrase libvirt writes into a pipe"
printf 'a passphrase in a file\n' > "$SCRATCH/pass-file"
head -c 16 /dev/urandom > "$SCRATCH/key16"

# start_swtpm NAME MIGRATION-KEY-OPTIONS|"": swtpm serving a TPM 2.0 on
# $SCRATCH/NAME.ctrl with --migration-key OPTIONS; with pwdfd=3
# the passphrase $PASS_PIPE arrives on fd 3, a pipe. Sets PID_NAME_tpm.
start_swtpm() {
    local name=$1 mkey=()
    [ -n "$2" ] && mkey=(--migration-key "$2")
    rm -f "$SCRATCH/$name.ctrl"
    mkdir -p "$SCRATCH/$name.state"
    swtpm socket --tpm2 --ctrl "type=unixio,path=$SCRATCH/$name.ctrl" \
        --tpmstate "dir=$SCRATCH/$name.state" "${mkey[@]}" \
        --log "file=$SCRATCH/$name.tpm.log" >"$SCRATCH/$name.swtpm.out" 2>&1 \
        3< <(printf '%s' "$PASS_PIPE") &
    bg_pid $!
    eval "PID_${name}_tpm=$!"
    wait_for_file "$SCRATCH/$name.ctrl" 100
}

# start_target NAME IMAGE [SECRET-OPTIONS EXPORT-KEY-OPTIONS]: qtpm on IMAGE
# behind $SCRATCH/NAME.ctrl; the secret's options are -object
# secret,id=mk,... and the export's follow swtpm-migration-key=mk. A
# passphrase for the pipe case is on fd 3. Sets PID_NAME_tpm.
start_target() {
    local name=$1 img=$2 secret=${3:-} exportopts=${4:-} args=()
    [ -n "$secret" ] && args=(-object "secret,id=mk,$secret")
    rm -f "$SCRATCH/$name.ctrl"
    "$QTPM" "${args[@]}" -drive "file=$img,if=none,id=d0" \
        -tpmdev "libtpms,id=t0,nvram=d0" \
        -export "swtpm,id=e0,tpmdev=t0,ctrl=unix:$SCRATCH/$name.ctrl${secret:+,swtpm-migration-key=mk}$exportopts" \
        >"$SCRATCH/$name.tpm.log" 2>&1 3< <(printf '%s' "$PASS_PIPE") &
    bg_pid $!
    eval "PID_${name}_tpm=$!"
    wait_for_file "$SCRATCH/$name.ctrl" 100
}

stop_vm() {
    qmpc "$SCRATCH/$1.qmp" '{"execute": "quit"}' >/dev/null 2>&1
    eval "wait_exit \$PID_${1}_qemu 100"
    eval "wait_exit \$PID_${1}_tpm 100"
}

nv_payload() { tpm "$1" tpm2_nvread "$NV_DATA" -C o -s 32 2>/dev/null; }

# source NAME MIGRATION-KEY-OPTIONS: a swtpm source with state, migrated into
# $SCRATCH/NAME.stream; leaves PCR 16's value in $pcr.
source_vm() {
    local name=$1
    check "$name: swtpm 0.7.1 starts with --migration-key $2" start_swtpm "$name" "$2"
    check "$name: QEMU starts on swtpm" start_qemu "$name"
    check "$name: TPM2_Startup" tpm "$name" tpm2_startup -c
    check "$name: PCR 16 extended" tpm "$name" tpm2_pcrextend "16:sha256=$DIGEST"
    check "$name: NV counter defined" nv_counter_define "$name"
    check "$name: NV counter incremented" tpm "$name" tpm2_nvincrement "$NV_COUNTER" -C o
    check "$name: NV counter incremented again" tpm "$name" tpm2_nvincrement "$NV_COUNTER" -C o
    check "$name: NV payload index defined" tpm "$name" tpm2_nvdefine "$NV_DATA" -C o \
        -s 32 -a "ownerwrite|ownerread|authread|authwrite" >/dev/null
    check "$name: NV payload written" tpm "$name" tpm2_nvwrite "$NV_DATA" -C o \
        -i "$SCRATCH/payload"
    pcr=$(pcr16 "$name")
    # QEMU's tpm-tis migrates its command buffer, which still holds the tail
    # of the last long command (the NV write): a long answer overwrites it,
    # so what is searched below is the TPM's state alone.
    check "$name: a long answer fills QEMU's TIS buffer" \
        tpm "$name" tpm2_getcap properties-fixed >/dev/null
    check "$name: QEMU migrates into a file" migrate_to_file "$name" "$SCRATCH/$name.stream"
    if [ -n "$2" ]; then
        check_fails "$name: the stream holds no plaintext NV payload" \
            grep -q "$PAYLOAD" "$SCRATCH/$name.stream"
    else
        check "$name: the plain stream holds the NV payload (the search works)" \
            grep -q "$PAYLOAD" "$SCRATCH/$name.stream"
    fi
}

# target NAME STREAM SECRET EXPORTOPTS: a qtpm target that takes STREAM.
target_ok() {
    local name=$1 stream=$2 img
    img=$(new_image "$name")
    check "$name: qtpm starts with the swtpm migration key" \
        start_target "$name" "$img" "$3" "$4"
    check "$name: QEMU starts with -incoming" start_qemu "$name" -incoming "exec:cat $stream"
    st=$(wait_incoming "$name")
    check "$name: the sealed stream from swtpm loads (run state $st)" test "$st" = prelaunch
    check "$name: ... and its migration completed" \
        test "$(query_migrate "$name" status)" = completed
    check_fails "$name: qtpm refused no blob" grep -q CMD_SET_STATEBLOB "$SCRATCH/$name.tpm.log"
    check "$name: PCR 16 arrived" test "$(pcr16 "$name")" = "$pcr"
    check "$name: the NV counter arrived" test "$(nv_counter "$name")" = 2
    check "$name: the NV payload arrived" test "$(nv_payload "$name")" = "$PAYLOAD"
    check "$name: the NV counter increments to 3" \
        tpm "$name" tpm2_nvincrement "$NV_COUNTER" -C o
    stop_vm "$name"
    check "$name: qtpm stops cleanly (exit $EXIT_STATUS)" test "$EXIT_STATUS" = 0
}

# target_refused NAME STREAM SECRET EXPORTOPTS SENTENCE: a qtpm target that
# refuses STREAM's blobs with 0x21 and SENTENCE in its log.
target_refused() {
    local name=$1 stream=$2 img before
    img=$(new_image "$name")
    check "$name: qtpm starts" start_target "$name" "$img" "$3" "$4"
    before=$(image_sum "$img")
    check "$name: QEMU starts with -incoming" start_qemu "$name" -incoming "exec:cat $stream"
    st=$(wait_incoming "$name")
    check "$name: the stream does not load (QEMU $st)" test "$st" = exited
    check "$name: QEMU saw TPM_DECRYPT_ERROR" \
        grep -q "stateblob.*failed with a TPM error 0x21" "$SCRATCH/$name.qemu.log"
    check "$name: qtpm says why in one line: $5" \
        test "$(grep -c "CMD_SET_STATEBLOB: .*$5" "$SCRATCH/$name.tpm.log")" = 1
    check "$name: qtpm is still running" eval "kill -0 \$PID_${name}_tpm"
    check "$name: the image is unchanged" test "$(image_sum "$img")" = "$before"
    eval "kill \$PID_${name}_tpm; wait_exit \$PID_${name}_tpm 100"
}

# 0. Without --migration-key the payload is in the stream for all to read.
source_vm plain ""
stop_vm plain

# 1. A binary AES-256 key file, as swtpm's file=K,format=binary,mode=aes-256-cbc.
source_vm file "file=$SCRATCH/key-a,format=binary,mode=aes-256-cbc"
target_ok file_dst "$SCRATCH/file.stream" "file=$SCRATCH/key-a,format=raw"
target_refused file_wrong "$SCRATCH/file.stream" "file=$SCRATCH/key-b,format=raw" "" \
    "does not open under swtpm-migration-key=mk: a wrong key or a damaged blob"
target_refused file_short "$SCRATCH/file.stream" "file=$SCRATCH/key16,format=raw" "" \
    "sealed under a 256-bit swtpm migration key but swtpm-migration-key=mk holds a 128-bit key"
target_refused file_nokey "$SCRATCH/file.stream" "" "" \
    "sealed under swtpm's migration key and the export has no swtpm-migration-key="
check "file: swtpm keeps answering after the refusals" test "$(nv_counter file)" = 2
check "file: ... and its NV payload is intact" test "$(nv_payload file)" = "$PAYLOAD"
stop_vm file

# 2. A passphrase on a pipe, as libvirt passes it: pwdfd=, AES-128, PBKDF2.
source_vm pipe "pwdfd=3,mode=aes-cbc"
target_ok pipe_dst "$SCRATCH/pipe.stream" "file=/dev/fd/3,format=raw" \
    ",swtpm-migration-key-format=passphrase"
target_refused pipe_sha "$SCRATCH/pipe.stream" "file=/dev/fd/3,format=raw" \
    ",swtpm-migration-key-format=passphrase,swtpm-migration-key-kdf=sha512" \
    "does not open under swtpm-migration-key=mk"
stop_vm pipe

# 3. A passphrase file with kdf=sha512, AES-256.
source_vm pwd "pwdfile=$SCRATCH/pass-file,kdf=sha512,mode=aes-256-cbc"
target_ok pwd_dst "$SCRATCH/pwd.stream" "file=$SCRATCH/pass-file,format=raw" \
    ",swtpm-migration-key-format=passphrase,swtpm-migration-key-kdf=sha512"
target_refused pwd_raw "$SCRATCH/pwd.stream" "file=$SCRATCH/pass-file,format=raw" \
    ",swtpm-migration-key-format=passphrase" \
    "does not open under swtpm-migration-key=mk"
stop_vm pwd

done_testing
