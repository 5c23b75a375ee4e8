#!/bin/bash
# Measures migration downtime (query-migrate "downtime": from the TPM pause on
# the source to the target's go-ahead) over repeated ping-pong migrations.
#   bench/migration-downtime.sh [BUILD_DIR] [ROUNDS]
# Prints one line per configuration: min / median / max / mean in ms.
# Not a test: nothing is asserted; numbers depend on the machine.
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-${BUILD:-build}}
ROUNDS=${2:-10}
export BUILD SRC_PATH=$PWD
. tests/lib.sh
. tests/migration/migration-lib.sh

# bench_config LABEL STORAGE KEYFILE|"": ROUNDS migrations, each to a fresh
# target, with some TPM state (an NV counter, a loaded key) in play.
bench_config() {
    local label=$1 storage=$2 key=$3 cur next src_img dst_img times=() i
    src_img=$(new_image "$label-a" "$key")
    dst_img=$src_img
    [ "$storage" = non-shared ] && dst_img=$(new_image "$label-b" "$key")
    cur=${label}0
    start_qtpm "$cur" "$src_img" "$key"
    wait_qmp "$cur"
    tpm "$cur" tpm2_startup -c
    tpm "$cur" tpm2_nvdefine "$NV_COUNTER" -C o -s 8 \
        -a "nt=counter|ownerwrite|ownerread|authread|authwrite" >/dev/null
    tpm "$cur" tpm2_createprimary -C o -G ecc256 -c "$SCRATCH/$label.ctx" >/dev/null
    for i in $(seq 1 "$ROUNDS"); do
        local img=$src_img
        [ $((i % 2)) = 1 ] && img=$dst_img
        next=$label$i
        tpm "$cur" tpm2_nvincrement "$NV_COUNTER" -C o
        start_qtpm "$next" "$img" "$key" -incoming "unix:$SCRATCH/$next.mig"
        wait_for_file "$SCRATCH/$next.mig" 100
        migrate "$cur" "unix:$SCRATCH/$next.mig" "$storage" >/dev/null
        if [ "$(query_migrate "$cur" status)" != completed ]; then
            echo "$label: round $i failed: $(query_migrate "$cur" error-desc)" >&2
            return 1
        fi
        times+=("$(query_migrate "$cur" downtime)")
        eval "kill \$PID_$cur; wait \$PID_$cur" 2>/dev/null
        cur=$next
    done
    eval "kill \$PID_$cur; wait \$PID_$cur" 2>/dev/null
    printf '%s\n' "${times[@]}" | sort -n | awk -v l="$label" '
        { v[NR] = $1; s += $1 }
        END { printf "%-24s n=%d  min %d  median %d  max %d  mean %.1f ms\n",
                     l, NR, v[1], v[int((NR + 1) / 2)], v[NR], s / NR }'
}

echo "migration downtime, $ROUNDS rounds each ($(nproc) CPUs)"
bench_config shared_keyed shared "$SCRATCH/key-a"
bench_config shared_plain shared ""
bench_config nonshared_keyed non-shared "$SCRATCH/key-a"
bench_config nonshared_plain non-shared ""
