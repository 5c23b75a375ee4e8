#!/bin/bash
# Ping-pong: one shared image migrates back and forth 20 times, with an NV
# write before every hop. The counter must be exact and qemu-img check clean.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"

KA=$SCRATCH/key-a
HOPS=20
img=$(new_image pp "$KA")
start_source p0 "$img" "$KA" 0000000000000000000000000000000000000000000000000000000000000004
nv_counter_define p0
pcr=$(pcr16 p0)

hops_ok=0
cur=p0
for h in $(seq 1 $HOPS); do
    next=p$h
    tpm "$cur" tpm2_nvincrement "$NV_COUNTER" -C o || diag "hop $h: increment failed"
    start_qtpm "$next" "$img" "$KA" -incoming "unix:$SCRATCH/$next.mig"
    wait_for_file "$SCRATCH/$next.mig" 100
    migrate "$cur" "unix:$SCRATCH/$next.mig" >/dev/null
    if [ "$(query_migrate "$cur" status)" = completed ] &&
       [ "$(query_migrate "$next" status)" = completed ]; then
        hops_ok=$((hops_ok + 1))
    else
        diag "hop $h: $(query_migrate "$cur" error-desc) $(cat "$SCRATCH/$next.err")"
    fi
    eval "kill \$PID_$cur; wait \$PID_$cur" 2>/dev/null
    cur=$next
done
check "all $HOPS hops completed" test "$hops_ok" = $HOPS
check "NV counter is exactly $HOPS" test "$(nv_counter "$cur")" = $HOPS
check "PCR 16 survived every hop" test "$(pcr16 "$cur")" = "$pcr"
check "the last target runs" test "$(runstate "$cur")" = running
eval "kill \$PID_$cur; wait \$PID_$cur" 2>/dev/null
check "qemu-img check clean" qemu-img check -q "$img"
check "qtpm-img check clean" "$QTPM_IMG" check --key-file "$KA" "$img"

done_testing
