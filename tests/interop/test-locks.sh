#!/bin/bash
# File locks between processes: qtpm-io against qtpm-io, and against Debian's
# qemu-img / qemu-io (QEMU's permission lock bytes). Waits have generous upper
# bounds only; nothing here depends on how fast the machine is.
. "$(dirname "$0")/../lib.sh"

IMG=$SCRATCH/disk.raw
truncate -s 1M "$IMG"

# wait_for_line FILE REGEX: waits (up to 30 s) until FILE has a matching line.
wait_for_line() {
    local i=0
    while ! grep -qE "$2" "$1" 2>/dev/null && [ $i -lt 300 ]; do
        sleep 0.1; i=$((i + 1))
    done
    grep -qE "$2" "$1" 2>/dev/null
}
# start NAME ARGS...: runs qtpm-io ARGS in the background, output in
# $SCRATCH/NAME.out / .err, pid in $PID.
start() {
    local name=$1; shift
    # Removed here, in this shell, so that a wait_for_line that runs before
    # the child has opened its output never reads the previous run's lines.
    rm -f "$SCRATCH/$name.out" "$SCRATCH/$name.err"
    "$QTPM_IO" "$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" &
    PID=$!
    bg_pid $PID
}
# stop PID: kills a background process and reaps it.
stop() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# Waits (up to 30 s) until a QEMU process holds its "write" permission byte
# (101) on $1, as /proc/locks shows it.
wait_for_qemu_lock() {
    local ino i=0
    ino=$(stat -c %i "$1")
    while ! grep -qE ":$ino 10[01] 101( |\$)" /proc/locks && [ $i -lt 300 ]; do
        sleep 0.1; i=$((i + 1))
    done
    grep -qE ":$ino 10[01] 101( |\$)" /proc/locks
}
# qio ARGS...: qtpm-io quietly; qemu_quiet CMD...: likewise for QEMU tools.
qio() { "$QTPM_IO" "$@" >/dev/null 2>&1; }
quiet() { "$@" >/dev/null 2>&1; }
# fails_locked ARGS...: qtpm-io fails saying the image is locked.
fails_locked() {
    ! "$QTPM_IO" "$@" >/dev/null 2>"$SCRATCH/err" &&
        grep -q "is locked by another process" "$SCRATCH/err"
}

run_locks() {
    local img=$1 what=$2

    # Exclusive against exclusive: the second fails within its timeout.
    # (--inactive: open read-write without QEMU's bytes, so that it is the
    # qtpm lock that refuses, not the open.)
    start holder -c 'lock exclusive' -c 'sleep 60000' "$img"
    local holder=$PID
    check "$what: holder took the exclusive lock" wait_for_line "$SCRATCH/holder.out" '^locked exclusive'
    check "$what: second exclusive fails at once" fails_locked --inactive -c 'lock exclusive' "$img"
    check "$what: second exclusive fails within its timeout" \
        timeout 30 bash -c "! '$QTPM_IO' --inactive -c 'lock exclusive 300' '$img' 2>'$SCRATCH/err'"
    check "$what: ...saying the image is locked" grep -qF "'$img' is locked by another process" "$SCRATCH/err"
    check "$what: shared fails against exclusive" fails_locked -r -c 'lock shared 100' "$img"
    check "$what: second writer refused at open" fails_locked -c 'read 0 512' "$img"
    check "$what: a reader may still read" qio -r -c 'read 0 512' "$img"
    stop $holder

    # Shared with shared.
    start s1 -r -c 'lock shared' -c 'sleep 60000' "$img"
    local s1=$PID
    start s2 -r -c 'lock shared' -c 'sleep 60000' "$img"
    local s2=$PID
    check "$what: first shared lock" wait_for_line "$SCRATCH/s1.out" '^locked shared'
    check "$what: second shared lock" wait_for_line "$SCRATCH/s2.out" '^locked shared'
    check "$what: a third shared lock" qio -r -c 'lock shared 0' "$img"
    check "$what: exclusive fails against shared" fails_locked --inactive -c 'lock exclusive 100' "$img"
    stop $s1
    check "$what: ...and against the remaining one" fails_locked --inactive -c 'lock exclusive' "$img"
    stop $s2
    check "$what: exclusive free again" qio -c 'lock exclusive' "$img"

    # An exclusive waiter succeeds once the holder unlocks. The holder waits
    # for lock id 1, held by a gate process, before it unlocks id 0, so the
    # test decides when that happens.
    start gate --inactive -c 'lock -i 1 exclusive' -c 'sleep 60000' "$img"
    local gate=$PID
    check "$what: gate locked" wait_for_line "$SCRATCH/gate.out" '^locked exclusive \(id 1\)'
    start holder -c 'lock exclusive' -c 'lock -i 1 shared -1' -c unlock -c 'sleep 60000' "$img"
    holder=$PID
    check "$what: holder locked" wait_for_line "$SCRATCH/holder.out" '^locked exclusive \(id 0\)'
    start waiter --inactive -c 'lock exclusive 60000' "$img"
    local waiter=$PID
    sleep 0.3
    check_fails "$what: waiter is still waiting" grep -q '^locked' "$SCRATCH/waiter.out"
    stop $gate   # the kernel drops the gate's lock: the holder goes on
    check "$what: holder unlocked" wait_for_line "$SCRATCH/holder.out" '^unlocked \(id 0\)'
    check "$what: the waiter got the lock" wait "$waiter"
    check "$what: waiter says so" grep -q '^locked exclusive (id 0)' "$SCRATCH/waiter.out"
    check "$what: the holder is still alive" kill -0 $holder
    stop $holder

    # A lock is freed when its holder is killed.
    start holder -c 'lock exclusive' -c 'sleep 60000' "$img"
    holder=$PID
    check "$what: holder locked again" wait_for_line "$SCRATCH/holder.out" '^locked exclusive'
    check "$what: locked while it lives" fails_locked --inactive -c 'lock exclusive' "$img"
    kill -9 $holder
    wait $holder 2>/dev/null
    check "$what: free after kill -9" qio -c 'lock exclusive' -c 'write 0 512' "$img"

    # locking=off ignores everything.
    start holder -c 'lock exclusive' -c 'sleep 60000' "$img"
    holder=$PID
    check "$what: holder for -U" wait_for_line "$SCRATCH/holder.out" '^locked exclusive'
    check "$what: -U opens and locks anyway" qio -U -c 'lock exclusive' -c 'read 0 512' "$img"
    stop $holder
}

run_qemu_interop() {
    local img=$1 fmt=$2 what=$3

    # qtpm-io holds the image read-write: QEMU must not write it.
    start holder -f "$fmt" -c length -c 'sleep 60000' "$img"
    local holder=$PID
    check "$what: qtpm-io opened read-write" wait_for_line "$SCRATCH/holder.out" '^[0-9]+$'
    check_fails "$what: qemu-io refuses to write" quiet qemu-io -f "$fmt" -c 'write 0 512' "$img"
    check "$what: ...because of the write lock" \
        bash -c "qemu-io -f '$fmt' -c 'write 0 512' '$img' 2>&1 | grep -q 'Failed to get \"write\" lock'"
    check_fails "$what: qemu-img resize refused" quiet qemu-img resize -f "$fmt" "$img" 2M
    check "$what: qemu-img info -U works" quiet qemu-img info -U -f "$fmt" "$img"
    check "$what: qemu-io -r -U reads" quiet qemu-io -r -U -f "$fmt" -c 'read 0 512' "$img"
    stop $holder
    check "$what: qemu-io writes once qtpm-io is gone" quiet qemu-io -f "$fmt" -c 'write -P 0x5a 0 512' "$img"

    # qemu-io holds the image read-write: qtpm-io must not open it for writing.
    qemu-io -f "$fmt" -c 'sleep 60000' "$img" >/dev/null 2>&1 &
    local qemu=$!
    bg_pid $qemu
    check "$what: qemu-io holds its write lock" wait_for_qemu_lock "$img"
    check "$what: qtpm-io refuses to open for writing" fails_locked -f "$fmt" -c 'write 0 512' "$img"
    check "$what: ...naming the file and the writer" \
        grep -qF "'$img' is locked by another process (QEMU or qtpm is writing it)" "$SCRATCH/err"
    check "$what: qtpm-io -r reads what qemu-io wrote" qio -r -f "$fmt" -c 'read -P 0x5a 0 512' "$img"
    check "$what: qtpm-io -U ignores QEMU's locks" qio -U -f "$fmt" -c 'read 0 512' "$img"
    stop $qemu
    check "$what: qtpm-io opens once qemu-io is gone" qio -f "$fmt" -c 'write 0 512' "$img"
}

run_locks "$IMG" raw
run_qemu_interop "$IMG" raw raw

QIMG=$SCRATCH/disk.qcow2
qemu-img create -q -f qcow2 "$QIMG" 1M
if "$QTPM_IO" -f qcow2 -c length "$QIMG" >/dev/null 2>"$SCRATCH/qcow2.err"; then
    run_locks "$QIMG" qcow2
    run_qemu_interop "$QIMG" qcow2 qcow2
else
    not_ok "qcow2: qtpm-io opens a qemu-img image: $(cat "$SCRATCH/qcow2.err")"
fi

done_testing
