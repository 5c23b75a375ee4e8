# Helpers for the migration tests: start qtpm sources and targets, speak QMP,
# run tpm2-tools through qtpm-tis. Source after tests/lib.sh.

# No QMP client is among the project's dependencies: a small C helper
# (qmp, qtest, relay; see its header) is built for each test run.
MTOOL=$SCRATCH/migration-tool
cc -O1 -Wall -o "$MTOOL" "${SRC_PATH:-.}/tests/migration/migration-tool.c" || exit 1
# qmpc SOCKET JSON [UNTIL]
qmpc() { "$MTOOL" qmp "$@"; }

# Key material: two different 32-byte keys.
head -c 32 /dev/urandom > "$SCRATCH/key-a"
head -c 32 /dev/urandom > "$SCRATCH/key-b"

# new_image NAME [KEYFILE]: a formatted, empty TPM 2.0 image.
new_image() {
    local img=$SCRATCH/$1.qcow2
    if [ -n "${2:-}" ]; then
        "$QTPM_IMG" create --key-file "$2" "$img" >/dev/null || return 1
    else
        "$QTPM_IMG" create "$img" >/dev/null || return 1
    fi
    echo "$img"
}

# start_qtpm NAME IMAGE KEYFILE|"" [EXTRA ARGS...]: starts qtpm with qtest
# at $SCRATCH/NAME.qtest and QMP at $SCRATCH/NAME.qmp; sets PID_<NAME>.
# Stderr goes to $SCRATCH/NAME.err.
start_qtpm() {
    local name=$1 img=$2 key=$3
    shift 3
    local keyargs=()
    rm -f "$SCRATCH/$name.qtest" "$SCRATCH/$name.qmp"
    if [ -n "$key" ]; then
        keyargs=(-object "secret,id=k0,file=$key,format=raw")
    fi
    "$QTPM" "${keyargs[@]}" \
        -drive "file=$img,if=none,id=d0" \
        -tpmdev "libtpms,id=t0,nvram=d0${key:+,key-secret=k0}" \
        -device tpm-tis,tpmdev=t0 \
        -qtest "unix:$SCRATCH/$name.qtest,server=on,wait=off" \
        -qmp "unix:$SCRATCH/$name.qmp,server=on,wait=off" \
        "$@" 2>"$SCRATCH/$name.err" &
    local pid=$!
    bg_pid "$pid"
    eval "PID_${name//[^A-Za-z0-9_]/_}=$pid"
}

# wait_qmp NAME: waits until NAME's QMP socket exists.
wait_qmp() { wait_for_file "$SCRATCH/$1.qmp" 100; }

# start_source NAME IMAGE KEYFILE|"" DIGEST: starts qtpm NAME on IMAGE, starts
# its TPM and extends PCR 16 with the sha256 DIGEST (64 hex digits).
start_source() {
    local name=$1 img=$2 key=$3 digest=$4
    start_qtpm "$name" "$img" "$key"
    wait_qmp "$name"
    tpm "$name" tpm2_startup -c
    tpm "$name" tpm2_pcrextend "16:sha256=$digest"
}

# tpm NAME TOOL ARGS...: runs a tpm2-tools command against NAME.
tpm() {
    local name=$1 tool=$2
    shift 2
    "$tool" -T "cmd:$QTPM_TIS --qtest $SCRATCH/$name.qtest" "$@"
}

# migstatus NAME: the status field of query-migrate.
migstatus() { qmpc "$SCRATCH/$1.qmp" '{"execute": "query-migrate"}' | jq -r '.return.status // "none"'; }

# wait_migration NAME: waits until NAME's migration is no longer setup/active
# (60 s at most) and prints the final status.
wait_migration() {
    local i s
    for i in $(seq 1 600); do
        s=$(migstatus "$1")
        case "$s" in completed|failed|cancelled) echo "$s"; return 0 ;; esac
        sleep 0.1
    done
    echo "timeout"
}

# wait_exit PID [TENTHS]: waits until PID (a child of this shell) exits and
# sets EXIT_STATUS to its status, or to "running" after TENTHS (300).
wait_exit() {
    local i n=${2:-300}
    EXIT_STATUS=running
    for i in $(seq 1 "$n"); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1" 2>/dev/null
            EXIT_STATUS=$?
            return 0
        fi
        sleep 0.1
    done
}

# pcr16 NAME: the sha256 PCR 16 value.
pcr16() { tpm "$1" tpm2_pcrread sha256:16 2>/dev/null | awk '/16 *:/ {print $2}'; }

# migrate NAME URI [STORAGE]: starts NAME's outgoing migration and waits for
# its final MIGRATION event; prints the event lines.
migrate() {
    local args="\"uri\": \"$2\""
    [ -n "${3:-}" ] && args="$args, \"storage\": \"$3\""
    qmpc "$SCRATCH/$1.qmp" "{\"execute\": \"migrate\", \"arguments\": {$args}}" \
        '"completed"|"failed"|"cancelled"'
}

# query_migrate NAME FIELD: one field of query-migrate's return.
query_migrate() {
    qmpc "$SCRATCH/$1.qmp" '{"execute": "query-migrate"}' | jq -r ".return[\"$2\"] // empty"
}

# runstate NAME: query-status's status.
runstate() { qmpc "$SCRATCH/$1.qmp" '{"execute": "query-status"}' | jq -r '.return.status'; }

# qtest NAME LINE...: raw qtest lines against NAME's device.
qtest() { local n=$1; shift; "$MTOOL" qtest "$SCRATCH/$n.qtest" "$@"; }

# tis_access NAME LOCALITY: the ACCESS register of a locality (hex byte).
tis_access() {
    local v
    v=$(qtest "$1" "readb $(printf 0x%x $((0xfed40000 + $2 * 0x1000)))" |
        awk '{print $2}')
    [ -n "$v" ] && printf '0x%02x\n' "$v"
}

NV_COUNTER=0x1500016
# nv_counter_define NAME: defines the NV counter on NAME's TPM.
nv_counter_define() {
    tpm "$1" tpm2_nvdefine "$NV_COUNTER" -C o -s 8 \
        -a "nt=counter|ownerwrite|ownerread|authread|authwrite" >/dev/null
}
# nv_counter NAME: the counter's value in decimal.
nv_counter() {
    local hex
    hex=$(tpm "$1" tpm2_nvread "$NV_COUNTER" -C o 2>/dev/null | xxd -p) || return 1
    [ -n "$hex" ] && echo $((16#$hex))
}

# image_sum IMAGE: a digest of the image file.
image_sum() { sha256sum < "$1" | cut -d' ' -f1; }
