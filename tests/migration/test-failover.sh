#!/bin/bash
# Failures around the shared-storage hand-off (docs/migration.md §4): a target
# killed mid-stream lets the source fail back; a source killed after the
# switchover leaves the target running; a target's early key check never
# sees a torn state while the source commits.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"

KA=$SCRATCH/key-a
KB=$SCRATCH/key-b

img=$(new_image shared "$KA")
start_source src "$img" "$KA" 0000000000000000000000000000000000000000000000000000000000000003
nv_counter_define src
tpm src tpm2_nvincrement "$NV_COUNTER" -C o
pcr=$(pcr16 src)

# --- target killed mid-stream ------------------------------------------------
start_qtpm victim "$img" "$KA" -incoming "unix:$SCRATCH/victim.mig"
wait_for_file "$SCRATCH/victim.mig" 100
"$MTOOL" relay "$SCRATCH/victim.relay" "$SCRATCH/victim.mig" stall 1000 &
bg_pid $!
wait_for_file "$SCRATCH/victim.relay" 100
qmpc "$SCRATCH/src.qmp" "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"unix:$SCRATCH/victim.relay\"}}" >/dev/null
for i in $(seq 1 50); do
    [ "$(query_migrate victim status)" = active ] && break
    sleep 0.1
done
check "killed target: the target was receiving" test "$(query_migrate victim status)" = active
kill -9 "$PID_victim"
check "killed target: source fails" test "$(wait_migration src)" = failed
diag "killed target: $(query_migrate src error-desc)"
check "killed target: source runs" test "$(runstate src)" = running
check "killed target: source answers" tpm src tpm2_getrandom 8 -o /dev/null
check "killed target: PCR 16 kept" test "$(pcr16 src)" = "$pcr"
check "killed target: the source owns its image again (NV write)" \
    tpm src tpm2_nvincrement "$NV_COUNTER" -C o
check "killed target: NV counter 2" test "$(nv_counter src)" = 2

# --- torn-state loop: early key checks while the source commits -------------
# Every NV increment is a commit; targets start (key check against the whole
# image, as readers) and are stopped again, many times.
(
    n=0
    while [ ! -e "$SCRATCH/stop-loop" ]; do
        tpm src tpm2_nvincrement "$NV_COUNTER" -C o 2>/dev/null && n=$((n + 1))
    done
    echo "$n" > "$SCRATCH/loop-count"
) &
loop=$!
bg_pid $loop
good=0
wrong_ok=0
rounds=25
for r in $(seq 1 $rounds); do
    rm -f "$SCRATCH/early.mig"
    start_qtpm early "$img" "$KA" -incoming "unix:$SCRATCH/early.mig"
    if wait_for_file "$SCRATCH/early.mig" 100; then
        good=$((good + 1))
    else
        diag "round $r: $(cat "$SCRATCH/early.err")"
    fi
    kill "$PID_early"
    wait "$PID_early" 2>/dev/null
    if [ $((r % 5)) = 0 ]; then
        start_qtpm early "$img" "$KB" -incoming "unix:$SCRATCH/early.mig"
        wait_exit "$PID_early" 100
        if [ "$EXIT_STATUS" = 1 ] && grep -q 'wrong key' "$SCRATCH/early.err"; then
            wrong_ok=$((wrong_ok + 1))
        else
            diag "round $r, wrong key: $EXIT_STATUS $(cat "$SCRATCH/early.err")"
        fi
    fi
done
touch "$SCRATCH/stop-loop"
wait "$loop"
count=$(cat "$SCRATCH/loop-count")
diag "$count commits during $rounds early key checks"
check "torn state: the source committed during the checks" test "$count" -gt 0
check "torn state: every right-key target passed its check" test "$good" = $rounds
check "torn state: every wrong-key target said 'wrong key'" test "$wrong_ok" = $((rounds / 5))
check "torn state: the NV counter is exact" test "$(nv_counter src)" = $((2 + count))
expect=$((2 + count))

# --- source killed after the switchover ------------------------------------
start_qtpm heir "$img" "$KA" -incoming "unix:$SCRATCH/heir.mig"
wait_for_file "$SCRATCH/heir.mig" 100
"$MTOOL" relay "$SCRATCH/heir.relay" "$SCRATCH/heir.mig" hold-reply &
bg_pid $!
wait_for_file "$SCRATCH/heir.relay" 100
qmpc "$SCRATCH/src.qmp" "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"unix:$SCRATCH/heir.relay\"}}" >/dev/null
for i in $(seq 1 100); do
    [ "$(query_migrate heir status)" = completed ] && break
    sleep 0.1
done
check "killed source: the target took over" test "$(query_migrate heir status)" = completed
check "killed source: the source still waits for the reply" \
    test "$(query_migrate src status)" = active
kill -9 "$PID_src"
wait "$PID_src" 2>/dev/null
check "killed source: the target runs" test "$(runstate heir)" = running
check "killed source: PCR 16 on the target" test "$(pcr16 heir)" = "$pcr"
check "killed source: NV counter exact on the target" test "$(nv_counter heir)" = "$expect"
check "killed source: the target commits" tpm heir tpm2_nvincrement "$NV_COUNTER" -C o
check "killed source: NV counter +1" test "$(nv_counter heir)" = $((expect + 1))
kill "$PID_heir"
wait "$PID_heir" 2>/dev/null
check "qemu-img check clean" qemu-img check -q "$img"

done_testing
