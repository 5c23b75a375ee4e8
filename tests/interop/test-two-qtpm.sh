#!/bin/bash
# Two qtpm processes on one image: the second refuses at startup, naming the
# lock, exits 1 and writes nothing; the first keeps working.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"

# second_qtpm DIR IMG [KEY]: a second qtpm on IMG in the foreground (at most
# 60 s); its exit status in SECOND_STATUS, stderr in DIR/second.err.
second_qtpm() {
    local dir=$1 img=$2 key=${3:-} keyopts=() tpmdev="libtpms,id=tpm0,nvram=state"
    if [ -n "$key" ]; then
        keyopts=(-object "secret,id=k0,file=$key")
        tpmdev="$tpmdev,key-secret=k0"
    fi
    timeout 60 "$QTPM" -drive "file=$img,if=none,id=state" "${keyopts[@]}" \
        -tpmdev "$tpmdev" -device tpm-tis,tpmdev=tpm0 \
        -qtest "unix:$dir/q2.sock,server=on,wait=off" \
        -qmp "unix:$dir/m2.sock,server=on,wait=off" >/dev/null 2>"$dir/second.err"
    SECOND_STATUS=$?
}

one_line_naming_lock() {
    [ "$(wc -l <"$1")" -eq 1 ] &&
        grep -q "^qtpm: -drive id=state: '.*tpm.qcow2' is locked by another process" "$1" ||
        { diag "stderr: $(cat "$1")"; return 1; }
}

getrandom_ok() { tpm getrandom 8 -o "$1/r" && [ "$(stat -c %s "$1/r")" = 8 ]; }

# run NAME DIR IMG [KEY]
run() {
    local name=$1 dir=$2 img=$3 key=${4:-} before after

    use_tpm "$dir"
    check "$name: first qtpm started" start_qtpm "$dir" "$img" "$key"
    check "$name: first qtpm runs TPM2_Startup" tpm startup -c
    check "$name: ... and TPM2_GetRandom" getrandom_ok "$dir"
    before=$(sha256sum <"$img")

    second_qtpm "$dir" "$img" "$key"
    check "$name: the second qtpm exits 1" [ "$SECOND_STATUS" -eq 1 ]
    check "$name: ... with one sentence naming the drive and the lock" \
        one_line_naming_lock "$dir/second.err"
    check "$name: ... and left no sockets behind" \
        eval "[ ! -e '$dir/q2.sock' ] && [ ! -e '$dir/m2.sock' ]"
    after=$(sha256sum <"$img")
    check "$name: the image is unchanged by the refused start" [ "$before" = "$after" ]
    check "$name: the first qtpm still works" getrandom_ok "$dir"
    check "$name: ... and its NV writes still land" \
        tpm nvdefine 0x01500020 -C o -s 8 -a "nt=counter|ownerread|ownerwrite"

    check "$name: QMP quit of the first" qmp_quit "$dir"
    check "$name: now a second qtpm starts on the image" start_qtpm "$dir" "$img" "$key"
    check "$name: ... its TPM works" tpm startup -c
    check "$name: ... and kept the first one's NV index" \
        tpm nvincrement 0x01500020 -C o
    check "$name: QMP quit" qmp_quit "$dir"
    check "$name: qemu-img check clean" quiet qemu-img check "$img"
}

quiet() { "$@" >/dev/null 2>&1; }

PLAIN=$SCRATCH/plain
mkdir -p "$PLAIN"
check "plain image created" quiet "$QTPM_IMG" create "$PLAIN/tpm.qcow2"
run plain "$PLAIN" "$PLAIN/tpm.qcow2"

ENC=$SCRATCH/enc
mkdir -p "$ENC"
head -c 32 /dev/urandom >"$ENC/key.bin"
check "encrypted image created" quiet "$QTPM_IMG" create --key-file "$ENC/key.bin" "$ENC/tpm.qcow2"
run encrypted "$ENC" "$ENC/tpm.qcow2" "$ENC/key.bin"

# QEMU's own tools see qtpm's lock too: qemu-io may not write the image.
Q=$SCRATCH/qemu
mkdir -p "$Q"
"$QTPM_IMG" create "$Q/tpm.qcow2" >/dev/null
check "qtpm started for the qemu-io check" start_qtpm "$Q" "$Q/tpm.qcow2"
before=$(sha256sum <"$Q/tpm.qcow2")
check_fails "qemu-io cannot write an image qtpm holds" \
    quiet qemu-io -c 'write 0 512' "$Q/tpm.qcow2"
check "... and the image is unchanged" [ "$before" = "$(sha256sum <"$Q/tpm.qcow2")" ]
check "QMP quit" qmp_quit "$Q"

done_testing
