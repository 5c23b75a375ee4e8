#!/bin/bash
# Migration downtime through Debian's QEMU, qtpm vs swtpm behind the same
# guest-less machine (-machine q35 -S, tpm-tis, -tpmdev emulator): QEMU
# migrates to a QEMU -incoming on a unix socket, each with its own TPM
# (non-shared storage: the TPM state travels in QEMU's stream through
# CMD_GET_STATEBLOB / CMD_SET_STATEBLOB). Ping-pong, each round to a fresh
# target. Two numbers per round: query-migrate's "downtime" on the source
# (source stopped until the target was told to run), and from the source's
# migrate command until the target has left "inmigrate" and its TPM has
# answered tpm2_getrandom through the target QEMU's TIS (polled with QMP
# query-status, so a few ms of client start-up are in it, the same for both).
#   bench/migration-downtime-qemu.sh [BUILD_DIR] [ROUNDS]
# Not a test: nothing is asserted; numbers depend on the machine.
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-${BUILD:-build}}
ROUNDS=${2:-5}
export BUILD SRC_PATH=$PWD
. tests/lib.sh
. tests/migration/migration-lib.sh
. tests/migration/qemu-migration-lib.sh

# start_swtpm NAME: swtpm serving a TPM 2.0 in $SCRATCH/NAME.state on
# $SCRATCH/NAME.ctrl; sets PID_NAME_tpm.
start_swtpm() {
    local name=$1
    rm -f "$SCRATCH/$name.ctrl"
    mkdir -p "$SCRATCH/$name.state"
    swtpm socket --tpm2 --ctrl "type=unixio,path=$SCRATCH/$name.ctrl" \
        --tpmstate "dir=$SCRATCH/$name.state" >"$SCRATCH/$name.tpm.log" 2>&1 &
    bg_pid $!
    eval "PID_${name}_tpm=$!"
    wait_for_file "$SCRATCH/$name.ctrl" 100
}

# start_tpm KIND NAME: a TPM of KIND (qtpm-plain, qtpm-keyed, swtpm) for NAME.
start_tpm() {
    case "$1" in
    qtpm-plain) start_export "$2" "$(new_image "$2")" "" ;;
    qtpm-keyed) start_export "$2" "$(new_image "$2" "$SCRATCH/key-a")" "$SCRATCH/key-a" ;;
    swtpm) start_swtpm "$2" ;;
    esac
}

stop_vm() {
    eval "kill \$PID_${1}_qemu; wait \$PID_${1}_qemu" 2>/dev/null
    eval "kill \$PID_${1}_tpm; wait \$PID_${1}_tpm" 2>/dev/null
}

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

# bench_kind KIND: ROUNDS migrations with an NV counter, PCR 16 and a
# loaded key in the TPM.
bench_kind() {
    local kind=$1 cur next i t0 tr t1 times=() answers=() runs=()
    cur=${kind//-/_}0
    start_tpm "$kind" "$cur" && start_qemu "$cur" || { echo "$kind: does not start" >&2; return 1; }
    tpm "$cur" tpm2_startup -c
    nv_counter_define "$cur"
    tpm "$cur" tpm2_pcrextend "16:sha256=$(echo bench | sha256sum | cut -d' ' -f1)"
    tpm "$cur" tpm2_createprimary -C o -G ecc256 -c "$SCRATCH/$cur.ctx" >/dev/null
    for i in $(seq 1 "$ROUNDS"); do
        next=${kind//-/_}$i
        tpm "$cur" tpm2_nvincrement "$NV_COUNTER" -C o
        start_tpm "$kind" "$next" && start_qemu "$next" -incoming "unix:$SCRATCH/$next.mig" ||
            { echo "$kind: round $i: the target does not start" >&2; return 1; }
        wait_for_file "$SCRATCH/$next.mig" 100
        t0=$(now_ms)
        qmpc "$SCRATCH/$cur.qmp" \
            "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"unix:$SCRATCH/$next.mig\"}}" \
            >/dev/null
        # The target's TPM is up once its QEMU leaves "inmigrate" (a TIS
        # command before that would wait for a backend not yet started).
        until [ "$(runstate "$next" 2>/dev/null)" != inmigrate ]; do
            [ $(($(now_ms) - t0)) -gt 30000 ] && break
        done
        tr=$(now_ms)
        tpm "$next" tpm2_getrandom 8 >/dev/null
        t1=$(now_ms)
        if [ "$(wait_migration "$cur")" != completed ]; then
            echo "$kind: round $i failed: $(query_migrate "$cur" error-desc)" >&2
            return 1
        fi
        times+=("$(query_migrate "$cur" downtime)")
        answers+=($((t1 - t0)))
        runs+=($((tr - t0)))
        stop_vm "$cur"
        cur=$next
    done
    [ "$(nv_counter "$cur")" = "$ROUNDS" ] ||
        echo "$kind: the NV counter reads $(nv_counter "$cur"), not $ROUNDS" >&2
    stop_vm "$cur"
    summary() {
        sort -n | awk -v l="$1" '{ v[NR] = $1; s += $1 }
            END { printf "%-46s n=%d  min %d  median %d  max %d  mean %.1f ms\n",
                         l, NR, v[1], v[int((NR + 1) / 2)], v[NR], s / NR }'
    }
    printf '%s\n' "${times[@]}" | summary "$kind: query-migrate downtime"
    printf '%s\n' "${runs[@]}" | summary "$kind: migrate to target out of inmigrate"
    printf '%s\n' "${answers[@]}" | summary "$kind: migrate to target TPM answer"
}

echo "migration through QEMU, non-shared storage, $ROUNDS rounds each ($(nproc) CPUs)"
bench_kind qtpm-plain
bench_kind qtpm-keyed
bench_kind swtpm
