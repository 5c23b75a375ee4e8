#!/bin/bash
# No acknowledged TPM update is lost when a process dies: qtpm -export swtpm
# on a keyed image behind Debian's QEMU (tpm-tis, guest-less, driven over its
# qtest socket by tpm2-tools through qtpm-tis). A loop increments an NV
# counter and records every increment that returned success; at a random
# moment QEMU (one round) or qtpm (the other) gets SIGKILL. Started again on
# the same image, the counter is at least the last acknowledged value and at
# most one more (the increment in flight), and both image checkers are happy.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"
. "$(dirname "$0")/qemu-vm-lib.sh"

NV_COUNTER=0x01500032
IMG=$SCRATCH/tpm.qcow2
KEY=$SCRATCH/tpm.key
DIR=$SCRATCH/vm
mkdir -p "$DIR"

quiet() { "$@" >/dev/null; }

# read_counter: the counter's value in decimal on stdout.
read_counter() {
    tpm nvread $NV_COUNTER -C o -s 8 -o "$DIR/counter" || return 1
    echo $((16#$(xxd -p "$DIR/counter" | tr -d '\n')))
}

# increment_loop FIRST ACKED: increments the counter until an increment
# fails; after each one that succeeded, appends the value it produced
# (FIRST, FIRST+1, ...) to ACKED.
increment_loop() {
    local n=$1
    while timeout 30 tpm2_nvincrement $NV_COUNTER -C o >/dev/null 2>&1; do
        echo "$n" >>"$2"
        n=$((n + 1))
    done
}

# kill_round VICTIM BASE: with the counter at BASE, kill -9 VICTIM (qemu or
# qtpm) while the loop runs; then the other process is killed too. Sets
# LAST_ACKED.
kill_round() {
    local victim=$1 base=$2 acked=$DIR/acked.$1 loop_pid i
    : >"$acked"
    increment_loop $((base + 1)) "$acked" &
    loop_pid=$!
    bg_pid "$loop_pid"
    # Some increments land first, then the kill comes 0-2 s later.
    for i in $(seq 1 300); do [ -s "$acked" ] && break; sleep 0.1; done
    [ -s "$acked" ] || { diag "no increment acknowledged"; return 1; }
    sleep "$((RANDOM % 20 / 10)).$((RANDOM % 10))"
    case "$victim" in
    qemu) kill -9 "$QEMU_PID" ;;
    qtpm) kill -9 "$QTPM_PID" ;;
    esac
    wait_exit "$loop_pid" || { diag "the loop did not end"; return 1; }
    kill -9 "$QEMU_PID" "$QTPM_PID" 2>/dev/null
    wait_exit "$QEMU_PID" && wait_exit "$QTPM_PID" || return 1
    LAST_ACKED=$(tail -n 1 "$acked")
    diag "$victim killed after $(wc -l <"$acked") acknowledged increments, last $LAST_ACKED"
}

# counter_within LO: the counter read now is LO or LO+1.
counter_within() {
    local v
    v=$(read_counter) || return 1
    diag "counter reads $v"
    COUNTER=$v
    [ "$v" -ge "$1" ] && [ "$v" -le $(($1 + 1)) ]
}

head -c 32 /dev/urandom >"$KEY"
check "a keyed image is created" "$QTPM_IMG" create --key-file "$KEY" "$IMG"
use_tpm "$DIR"

check "qtpm and QEMU start" start_vm
check "tpm2_startup -c" tpm startup -c
check "tpm2_nvdefine a counter" \
    tpm nvdefine $NV_COUNTER -C o -s 8 -a "nt=counter|ownerread|ownerwrite"
check "tpm2_nvincrement" tpm nvincrement $NV_COUNTER -C o
COUNTER=$(read_counter)
check "the counter reads" [ -n "$COUNTER" ]

for victim in qemu qtpm; do
    check "kill -9 $victim while the counter is incremented" kill_round "$victim" "$COUNTER"
    check "qtpm-img check after $victim was killed" \
        quiet "$QTPM_IMG" check --key-file "$KEY" "$IMG"
    check "qemu-img check after $victim was killed" qemu-img check -q "$IMG"
    check "qtpm and QEMU start again on the same image" start_vm
    check "tpm2_startup -c" tpm startup -c
    check "no acknowledged increment was lost, at most one more landed" \
        counter_within "$LAST_ACKED"
    check "the counter still counts" tpm nvincrement $NV_COUNTER -C o
    check "... by one" counter_within $((COUNTER + 1))
done

check "orderly tpm2_shutdown" tpm shutdown -c
check "QEMU quits, and qtpm with it" stop_vm
check "qtpm-img check finds the image intact" quiet "$QTPM_IMG" check --key-file "$KEY" "$IMG"
check "qemu-img check finds no errors or leaks" qemu-img check -q "$IMG"
done_testing
