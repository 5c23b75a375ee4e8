#!/bin/bash
# qtpm-io: every command, size suffixes, blkdebug actions and the error paths
# (one "qtpm-io: ..." sentence on stderr, exit status 1).
. "$(dirname "$0")/../lib.sh"

IMG=$SCRATCH/disk.raw
OUT=$SCRATCH/out
ERR=$SCRATCH/err
truncate -s 64k "$IMG"

# io ARGS...: runs qtpm-io, stdout to $OUT, stderr to $ERR.
io() { "$QTPM_IO" "$@" >"$OUT" 2>"$ERR"; }
# fails_with TEXT ARGS...: qtpm-io exits 1 with one sentence containing TEXT.
fails_with() {
    local text=$1; shift
    io "$@"
    local rc=$?
    [ $rc -eq 1 ] && [ "$(wc -l <"$ERR")" -eq 1 ] &&
        grep -q '^qtpm-io: ' "$ERR" && grep -qF -- "$text" "$ERR"
}

check "write prints like qemu-io" io -c 'write -P 0xab 512 1k' "$IMG"
check "write output line" grep -qx 'wrote 1024/1024 bytes at offset 512' "$OUT"
check "read -P verifies the pattern" io -c 'read -P 0xab 512 1024' "$IMG"
check "read output line" grep -qx 'read 1024/1024 bytes at offset 512' "$OUT"
check "bytes landed at the right offset" \
    bash -c "cmp -s <(dd if='$IMG' bs=1 skip=512 count=1024 2>/dev/null) <(head -c 1024 /dev/zero | tr '\\0' '\\253')"
check "untouched bytes stay zero" io -c 'read -P 0 0 512' -c 'read -P 0 1536 1k' "$IMG"
check_fails "read -P fails on a mismatch" io -c 'read -P 0xab 0 2k' "$IMG"
check "mismatch names the offset" fails_with "pattern verification failed at offset 0" -c 'read -P 0xab 0 2k' "$IMG"
check "default write pattern is 0xcd" io -c 'write 4k 16' -c 'read -P 0xcd 4k 16' "$IMG"
check "write -z zeroes" io -c 'write -z 512 1k' -c 'read -P 0 512 1k' "$IMG"
check "commands run in order" io -c 'write -P 1 0 512' -c 'write -P 2 0 256' -c 'read -P 2 0 256' -c 'read -P 1 256 256' "$IMG"
check "read -v dumps hex" io -c 'read -v 0 16' "$IMG"
check "hex dump line" grep -q '^00000000: 02 02 02' "$OUT"

check "length prints bytes" io -c length "$IMG"
check "length is 64k" grep -qx 65536 "$OUT"
check "truncate with M suffix" io -c 'truncate 1M' -c length "$IMG"
check "new length" grep -qx 1048576 "$OUT"
check "hex offsets" io -c 'write -P 3 0x800 0x200' -c 'read -P 3 2048 512' "$IMG"
check "flush" io -c 'write 0 512' -c flush "$IMG"
check "info" io -c info "$IMG"
check "info names the format" grep -qx 'file format: raw' "$OUT"
check "info virtual size" grep -qx 'virtual size: 1048576' "$OUT"
check "-f raw" io -f raw -c 'read 0 512' "$IMG"
check "lock and unlock" io -c 'lock exclusive' -c 'lock shared 100' -c unlock -c unlock -c 'lock -i 3 shared 0' -c 'unlock -i 3' "$IMG"
check "lock output" grep -qx 'locked exclusive (id 0)' "$OUT"
check "sleep" io -c 'sleep 10' "$IMG"
check "-U opens without locks" io -U -c 'lock exclusive' "$IMG"
check "-r reads" io -r -c 'read 0 4k' "$IMG"
check "--inactive reads" io --inactive -c 'read 0 512' "$IMG"
check "--inactive then activate writes" io --inactive -c activate -c 'write 0 512' -c inactivate "$IMG"

# Error paths
check "missing file" fails_with "'$SCRATCH/nope': could not open: No such file" -c length "$SCRATCH/nope"
check "unknown format" fails_with "unknown format 'vmdk'" -f vmdk -c length "$IMG"
check "unknown command" fails_with "unknown command 'frob'" -c frob "$IMG"
check "bad size" fails_with "invalid length '12q'" -c 'read 0 12q' "$IMG"
check "negative offset" fails_with "invalid offset '-1'" -c 'read -1 1' "$IMG"
check "read past the end" fails_with "'$IMG': read of 2 bytes at offset 1048575 is past the end" -c 'read 1048575 2' "$IMG"
check "write past the end" fails_with "past the end" -c 'write 1M 1' "$IMG"
check "write on read-only" fails_with "'$IMG': the image is open read-only" -r -c 'write 0 1' "$IMG"
check "write while inactive" fails_with "inactive" --inactive -c 'write 0 1' "$IMG"
check "shrink refused" fails_with "cannot shrink" -c 'truncate 4k' "$IMG"
check "bad lock mode" fails_with "mode must be 'shared' or 'exclusive'" -c 'lock frob' "$IMG"
check "bad lock id" fails_with "invalid lock id '8'" -c 'lock -i 8 shared' "$IMG"
check "exclusive on read-only" fails_with "exclusive lock needs the image open read-write" -r -c 'lock exclusive' "$IMG"
check "wrong arity" fails_with "usage: flush" -c 'flush now' "$IMG"
check "-z with -P" fails_with "-z and -P cannot be used together" -c 'write -z -P 1 0 1' "$IMG"
check "bad pattern" fails_with "invalid pattern '300'" -c 'write -P 300 0 1' "$IMG"
check "no file" fails_with "expected one image file name" -c length
check "stops at the first failure" bash -c "! '$QTPM_IO' -c 'read 0 4M' -c 'write -P 9 0 1' '$IMG' >/dev/null 2>&1"
check "nothing after the failure ran" io -c 'read -P 0xcd 0 1' "$IMG"

# blkdebug
check "blkdebug needs --blkdebug" fails_with "was not opened with --blkdebug" -c 'blkdebug status' "$IMG"
check "blkdebug unknown action" fails_with "unknown action 'frob'" --blkdebug -c 'blkdebug frob' "$IMG"
check "fail-write fails the Nth write" fails_with "injected write error" --blkdebug -c 'blkdebug fail-write 2' -c 'write -P 4 0 512' -c 'write -P 5 512 512' "$IMG"
check "...and only that one" io -c 'read -P 4 0 512' -c 'read -P 0 512 512' "$IMG"
check "fail-flush" fails_with "injected flush error" --blkdebug -c 'blkdebug fail-flush 1' -c 'write 0 512' -c flush "$IMG"
check "status" io --blkdebug -c 'write -P 6 0 512' -c 'write -P 6 512 512' -c flush -c 'write -P 6 1k 512' -c 'blkdebug status' "$IMG"
check "status line" grep -qx 'blkdebug: 3 writes, 1 flushes, 1 unflushed writes' "$OUT"
check "tear-write crashes" fails_with "torn write" --blkdebug -c 'blkdebug tear-write 1 100' -c 'write -P 7 0 512' "$IMG"
check "torn write left its first bytes" io -c 'read -P 7 0 100' -c 'read -P 6 100 412' "$IMG"
check "crash-write" fails_with "simulated crash before a write" --blkdebug -c 'blkdebug crash-write 2' -c 'write -P 10 0 1' -c 'write -P 11 1 1' "$IMG"
check "...the write before it landed, the crashed one did not" io -c 'read -P 10 0 1' -c 'read -P 7 1 1' "$IMG"
check "I/O after a crash fails" fails_with "after a simulated crash" --blkdebug -c 'blkdebug power-loss 0' -c 'read 0 1' "$IMG"
check "power-loss drops the chosen writes" io --blkdebug -c 'write -z 4k 512' -c flush -c 'write -P 8 0 512' -c 'write -P 9 4k 512' -c 'blkdebug power-loss 0x2' "$IMG"
check "...kept write 0, lost write 1" io -c 'read -P 8 0 512' -c 'read -P 0 4k 512' "$IMG"
check "reset ends a crash" io --blkdebug -c 'blkdebug crash-write 1' -c 'blkdebug reset' -c 'write 0 1' "$IMG"

# qcow2 through the same commands
QIMG=$SCRATCH/disk.qcow2
qemu-img create -q -f qcow2 "$QIMG" 4M
check "qcow2: probed" io -c info "$QIMG"
check "qcow2: info names the format" grep -qx 'file format: qcow2' "$OUT"
check "qcow2: length" io -c length "$QIMG"
check "qcow2: virtual size" grep -qx 4194304 "$OUT"
check "qcow2: write and read back" io -f qcow2 -c 'write -P 0x11 0 100k' -c 'write -P 0x22 1M 512' -c 'write -z 4k 4k' -c flush -c 'read -P 0x11 0 4k' -c 'read -P 0 4k 4k' "$QIMG"
check "qcow2: qemu-img check is clean" qemu-img check -q "$QIMG"
check "qcow2: qemu-io reads our data" bash -c "qemu-io -f qcow2 -c 'read -P 0x11 0 4k' -c 'read -P 0 4k 4k' -c 'read -P 0x11 8k 92k' -c 'read -P 0x22 1M 512' '$QIMG' | grep -c '^read' | grep -qx 4"
check "qcow2 opened as raw shows the header" io -f raw -c 'read -v 0 4' "$QIMG"
check "...with the qcow2 magic" grep -q '^00000000: 51 46 49 fb' "$OUT"
check "qcow2: a torn metadata write crashes" fails_with "torn write" --blkdebug -c 'blkdebug tear-write 2 100' -c 'write -P 0x33 2M 64k' "$QIMG"
check "qcow2: after the crash, check finds no corruption" bash -c "qemu-img check -q '$QIMG' >/dev/null 2>&1; [ \$? -ne 2 ]"
check "qcow2: old data intact after the crash" io -c 'read -P 0x22 1M 512' -c 'read -P 0x11 0 4k' -c 'read -P 0 4k 4k' -c 'read -P 0x11 8k 92k' "$QIMG"

done_testing
