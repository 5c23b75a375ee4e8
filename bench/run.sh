#!/bin/bash
# qtpm benchmarks against today's standard (Debian's QEMU tpm-tis + swtpm).
#   bench/run.sh [BUILD_DIR]          (make bench)
# Environment: BENCH_RUNS (hyperfine runs per command, default 60),
# BENCH_COMMITS (NVRAM commits per phase, default 300), BENCH_STARTS
# (start-ups per configuration, default 10), BENCH_DATA_N (data channel
# round trips per command, default 2000), BENCH_SECTIONS (the sections to
# run, e.g. "5 6"; default all).
# Prints tables (median, min, max, ratios); asserts nothing. What each
# number means: docs/benchmarks.md.
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-${BUILD:-build}}
RUNS=${BENCH_RUNS:-60}
COMMITS=${BENCH_COMMITS:-300}
STARTS=${BENCH_STARTS:-10}
export BUILD
. tests/lib.sh
. tests/interop/tpm2-common.sh

for t in hyperfine swtpm qemu-system-x86_64 tpm2_getrandom socat jq strace; do
    command -v "$t" >/dev/null || { echo "bench: $t is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is not installed" >&2; exit 1; }

NV=0x1500016
# want N: section N is to run.
want() { [ -z "${BENCH_SECTIONS:-}" ] || [[ " $BENCH_SECTIONS " == *" $1 "* ]]; }
DIDVID=0xfed40f00

# ms VALUE_IN_SECONDS -> milliseconds with 3 decimals
ms() { awk -v s="$1" -v d="${2:-1}" 'BEGIN { printf "%.3f", s * 1000 / d }'; }

# stats LABEL: reads one number (ms) per line, prints median/min/max/mean.
stats() {
    sort -g | awk -v l="$1" '
        { v[NR] = $1; s += $1 }
        END { printf "  %-34s n=%-3d median %8.3f  min %8.3f  max %8.3f  mean %8.3f ms\n",
                     l, NR, v[int((NR + 1) / 2)], v[1], v[NR], s / NR }'
}

# median_of: the median of numbers on stdin
median_of() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# serve NAME WRAP... -- CMD...: a server in the background, output in
# $SCRATCH/NAME.log; NAME_PID (the server itself, also under a wrapper) and
# NAME_WPID.
serve() {
    local name=$1 w=() pid
    shift
    while [ "$1" != -- ]; do w+=("$1"); shift; done
    shift
    "${w[@]}" "$@" >"$SCRATCH/$name.log" 2>&1 &
    pid=$!
    bg_pid "$pid"
    eval "${name}_WPID=$pid"
    sleep 0.05
    eval "${name}_PID=$(child_of "$pid")"
    eval "bg_pid \$${name}_PID"
}
wait_sock() { local i=0; until [ -S "$1" ]; do i=$((i + 1)); [ $i -gt 2500 ] && return 1; sleep 0.002; done; }

# col FILE PHASE FIELD(median|p99)
col() { awk -v p="$2" -v f="$3" '$1 == p { for (i = 2; i < NF; i++) if ($i == f) print $(i + 1) }' "$1"; }

# target LABEL VALUE LIMIT: VALUE/LIMIT and PASS when at most 1.
target() {
    awk -v l="$1" -v v="$2" -v m="$3" 'BEGIN {
        if (v == "" || m == "" || m == 0) { printf "  %-58s (no number)\n", l; exit }
        printf "  %-58s %6.2f  %s\n", l, v / m, (v <= m ? "PASS" : "MISS") }'
}

# qtest_answers DIR: a qtest client gets DID_VID back from DIR/q.sock.
qtest_answers() {
    printf 'readl %s\n' "$DIDVID" |
        timeout 2 socat -t 1 - "UNIX-CONNECT:$1/q.sock" 2>/dev/null | grep -q '^OK 0x'
}

wait_answer() {
    local i=0
    until qtest_answers "$1"; do
        i=$((i + 1))
        [ $i -gt 5000 ] && return 1
        sleep 0.002
    done
}

# Servers. Each may run under a wrapper (WRAP=(/usr/bin/time -v -o F)); the
# pid to signal is then the wrapped child, found by parent pid.
child_of() { local c; c=$(pgrep -P "$1" | head -1); echo "${c:-$1}"; }

# qtpm_up DIR IMAGE KEY_FILE: qtpm with a keyed image; QTPM_PID, QTPM_WPID.
qtpm_up() {
    local dir=$1
    rm -f "$dir/q.sock"
    "${WRAP[@]}" "$QTPM" -drive "file=$2,if=none,id=d0" \
        -object "secret,id=k0,file=$3" \
        -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 -device tpm-tis,tpmdev=tpm0 \
        -qtest "unix:$dir/q.sock,server=on,wait=off" 2>"$dir/qtpm.err" &
    QTPM_WPID=$!
    bg_pid "$QTPM_WPID"
    wait_answer "$dir" || { echo "bench: qtpm did not start: $(cat "$dir/qtpm.err")" >&2; return 1; }
    QTPM_PID=$(child_of "$QTPM_WPID")
    bg_pid "$QTPM_PID"
}

qtpm_down() { kill "$QTPM_PID" 2>/dev/null; wait "$QTPM_WPID" 2>/dev/null; }

# ref_up DIR: swtpm (dir backend, state DIR/state) behind Debian's QEMU;
# SWTPM_PID, QEMU_PID (and _WPID for the wrappers).
ref_up() {
    local dir=$1
    mkdir -p "$dir/state"
    rm -f "$dir/q.sock" "$dir/ctrl"
    "${WRAP_SWTPM[@]}" swtpm socket --tpm2 --tpmstate "dir=$dir/state" \
        --ctrl "type=unixio,path=$dir/ctrl" --terminate >"$dir/swtpm.log" 2>&1 &
    SWTPM_WPID=$!
    bg_pid "$SWTPM_WPID"
    until [ -S "$dir/ctrl" ]; do sleep 0.002; done
    "${WRAP[@]}" qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
        -qtest "unix:$dir/q.sock,server=on,wait=off" -qtest-log /dev/null \
        -chardev "socket,id=c,path=$dir/ctrl" -tpmdev emulator,id=t0,chardev=c \
        -device tpm-tis,tpmdev=t0 >"$dir/qemu.log" 2>&1 &
    QEMU_WPID=$!
    bg_pid "$QEMU_WPID"
    wait_answer "$dir" || { echo "bench: QEMU did not start: $(cat "$dir/qemu.log")" >&2; return 1; }
    SWTPM_PID=$(child_of "$SWTPM_WPID")
    QEMU_PID=$(child_of "$QEMU_WPID")
    bg_pid "$SWTPM_PID"
    bg_pid "$QEMU_PID"
}

ref_down() {
    kill "$QEMU_PID" 2>/dev/null
    wait "$QEMU_WPID" 2>/dev/null
    kill "$SWTPM_PID" 2>/dev/null
    wait "$SWTPM_WPID" 2>/dev/null
}

tcti() { echo "cmd:$QTPM_TIS --qtest $1/q.sock"; }

# prepare DIR: TPM2_Startup and an NV counter, as a guest's first boot would.
prepare() {
    local T; T=$(tcti "$1")
    tpm2_startup -T "$T" -c >/dev/null 2>&1
    tpm2_nvdefine -T "$T" "$NV" -C o -s 8 \
        -a "nt=counter|ownerwrite|ownerread|authread|authwrite" >/dev/null 2>&1
    tpm2_nvincrement -T "$T" "$NV" -C o >/dev/null
}

QD=$SCRATCH/qtpm
RD=$SCRATCH/ref
mkdir -p "$QD" "$RD"
head -c 32 /dev/urandom >"$SCRATCH/key"
IMG=$QD/tpm.qcow2
"$QTPM_IMG" create --key-file "$SCRATCH/key" "$IMG" >/dev/null || exit 1

echo "qtpm benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r)"
echo "  $(swtpm --version 2>&1 | head -1); $(qemu-system-x86_64 --version | head -1)"
echo

# --- 1. NVRAM commit ---------------------------------------------------------
eval "$(sed -n 's/^\(CC\|QEMU_CFLAGS\|LIBS\)=\(.*\)/\1="\2"/p' "$BUILD/config-host.mak")"
if want 1; then
nc_targets=""
echo "1. NVRAM commit: 173 KB permall + 4000 B volatile, durable, through the store"
if $CC $QEMU_CFLAGS -Iinclude -I"$BUILD" bench/nvram-commit.c -o "$BUILD/nvram-commit" \
        "$BUILD/libqtpm.a" $LIBS; then
    for cfg in "qcow2 key" "qcow2 plain" "raw key"; do
        set -- $cfg
        "$BUILD/nvram-commit" "$SCRATCH" "$1" "$COMMITS" "$2" >"$SCRATCH/nc.out" || continue
        while IFS= read -r l; do printf "  %-12s %s\n" "$1/$2" "$l"; done <"$SCRATCH/nc.out"
        nc_commit=$(sed -n 's/^permall+volatile n=.* median *\([0-9.]*\).*/\1/p' "$SCRATCH/nc.out")
        nc_replay=$(sed -n 's/^permall+volatile replay:.* median *\([0-9.]*\) ms.*/\1/p' "$SCRATCH/nc.out")
        nc_targets="$nc_targets$1/$2 $nc_commit $nc_replay
"
    done
    echo "  targets: a large commit at most 1.3 x the writes and flushes it needs (the replay)"
    printf '%s' "$nc_targets" | while read -r cfg c r; do
        [ -n "$cfg" ] || continue
        target "$cfg permall+volatile: commit / (1.3 x replay)" "$c" \
            "$(awk -v r="$r" 'BEGIN { if (r != "") print 1.3 * r }')"
    done
    if command -v valgrind >/dev/null; then
        valgrind --tool=callgrind --callgrind-out-file="$SCRATCH/cg.out" \
            "$BUILD/nvram-commit" "$SCRATCH" qcow2 20 key full >/dev/null 2>"$SCRATCH/cg1.err"
        valgrind --tool=callgrind --callgrind-out-file="$SCRATCH/cg.out" \
            "$BUILD/nvram-commit" "$SCRATCH" qcow2 120 key full >/dev/null 2>"$SCRATCH/cg2.err"
        i1=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$SCRATCH/cg1.err")
        i2=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$SCRATCH/cg2.err")
        [ -n "$i1" ] && [ -n "$i2" ] &&
            awk -v a="$i1" -v b="$i2" 'BEGIN { printf "  callgrind: %.0f instructions per permall+volatile commit (qcow2, key)\n", (b - a) / 100 }'
    fi
else
    echo "  (nvram-commit did not compile)"
fi
echo
fi

# --- 2. TPM command round trip -----------------------------------------------
if want 2; then
echo "2. TPM command round trip through qtpm-tis (tpm2-tools cmd TCTI), hyperfine, $RUNS runs"
qtpm_up "$QD" "$IMG" "$SCRATCH/key" || exit 1
ref_up "$RD" || exit 1
prepare "$QD"
prepare "$RD"
hf() {  # hf NAME COMMAND_FOR_DIR: one hyperfine comparison, qtpm first
    local name=$1 q r
    q="tpm2_$2 -T '$(tcti "$QD")'"
    r="tpm2_$2 -T '$(tcti "$RD")'"
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$SCRATCH/$name.json" \
        -n qtpm "$q" -n qemu+swtpm "$r" >/dev/null 2>"$SCRATCH/$name.hf.err" ||
        { echo "  $name: hyperfine failed: $(tail -3 "$SCRATCH/$name.hf.err")"; return; }
    jq -r '.results[] | [.command, .median, .min, .max, .mean] | @tsv' "$SCRATCH/$name.json" |
        while IFS=$'\t' read -r c med mn mx mean; do
            printf "  %-34s median %8s  min %8s  max %8s  mean %8s ms\n" "$name $c" \
                "$(ms "$med")" "$(ms "$mn")" "$(ms "$mx")" "$(ms "$mean")"
        done
    jq -r '"  " + "'"$name"'" + ": qtpm / qemu+swtpm median ratio " +
           ((.results[0].median / .results[1].median * 100 | round) / 100 | tostring)' \
        "$SCRATCH/$name.json"
}
hf getrandom "getrandom 8"
hf nvincrement "nvincrement $NV -C o"

# The device path alone, without a tool's start-up: BATCH raw commands
# through one qtpm-tis process (TPM2_GetRandom(8); TPM2_NV_Increment with an
# empty owner password), per command.
BATCH=100
for i in $(seq $BATCH); do printf '\x80\x01\x00\x00\x00\x0c\x00\x00\x01\x7b\x00\x08'; done >"$SCRATCH/getrandom.bin"
# NV index 0x01500016 ($NV)
for i in $(seq $BATCH); do
    printf '\x80\x02\x00\x00\x00\x1f\x00\x00\x01\x34\x40\x00\x00\x01\x01\x50\x00\x16'
    printf '\x00\x00\x00\x09\x40\x00\x00\x09\x00\x00\x00\x00\x00'
done >"$SCRATCH/nvincrement.bin"
batch() {  # batch NAME RESPONSE_LEN
    local name=$1 len=$2 d got
    for d in "$QD" "$RD"; do
        got=$("$QTPM_TIS" --qtest "$d/q.sock" <"$SCRATCH/$name.bin" | wc -c)
        [ "$got" = $((BATCH * len)) ] ||
            echo "  ($name batch on ${d##*/}: $got response bytes, expected $((BATCH * len)))"
    done
    hyperfine --warmup 1 --runs 10 --export-json "$SCRATCH/b$name.json" \
        -n qtpm "$QTPM_TIS --qtest $QD/q.sock <$SCRATCH/$name.bin >/dev/null" \
        -n qemu+swtpm "$QTPM_TIS --qtest $RD/q.sock <$SCRATCH/$name.bin >/dev/null" \
        >/dev/null 2>"$SCRATCH/b$name.hf.err" ||
        { echo "  $name batch: hyperfine failed: $(tail -3 "$SCRATCH/b$name.hf.err")"; return; }
    jq -r '.results[] | [.command, .median, .min, .max] | @tsv' "$SCRATCH/b$name.json" |
        while IFS=$'\t' read -r c med mn mx; do
            printf "  %-34s median %8s  min %8s  max %8s ms per command\n" "$name x$BATCH $c" \
                "$(ms "$med" $BATCH)" "$(ms "$mn" $BATCH)" "$(ms "$mx" $BATCH)"
        done
    jq -r '"  " + "'"$name"' x'"$BATCH"'" + ": qtpm / qemu+swtpm median ratio " +
           ((.results[0].median / .results[1].median * 100 | round) / 100 | tostring)' \
        "$SCRATCH/b$name.json"
}
echo "  device path only: $BATCH raw commands through one qtpm-tis process, hyperfine, 10 runs"
batch getrandom 20
batch nvincrement 19

# Flushes per durable NV update: syscalls of each server over 20 increments.
echo "  durable syscalls per tpm2_nvincrement (strace -c -f over 20 increments):"
count_syncs() {  # count_syncs LABEL DIR PID...
    local label=$1 dir=$2 spid i
    shift 2
    local pargs=()
    for p in "$@"; do pargs+=(-p "$p"); done
    strace -f -qq -c -e trace=fsync,fdatasync,sync_file_range,rename,renameat,renameat2,pwrite64,write \
        -o "$dir/strace.out" "${pargs[@]}" 2>/dev/null &
    spid=$!
    sleep 0.5
    for i in $(seq 20); do
        tpm2_nvincrement -T "$(tcti "$dir")" "$NV" -C o >/dev/null
    done
    kill -INT "$spid"
    wait "$spid" 2>/dev/null
    awk -v l="$label" '
        $NF ~ /^(fsync|fdatasync|sync_file_range|rename|renameat|renameat2|pwrite64|write)$/ {
            c[$NF] = $4 }
        END {
            s = c["fsync"] + c["fdatasync"] + c["sync_file_range"]
            r = c["rename"] + c["renameat"] + c["renameat2"]
            printf "    %-12s fsync+fdatasync %5.2f  rename %5.2f  pwrite64 %6.2f  write %6.2f\n",
                   l, s / 20, r / 20, c["pwrite64"] / 20, c["write"] / 20 }' "$dir/strace.out"
}
count_syncs qtpm "$QD" "$QTPM_PID"
count_syncs swtpm "$RD" "$SWTPM_PID"
qtpm_down
ref_down
echo
fi

# --- 3. Start-up and peak RSS ------------------------------------------------
if want 3; then
echo "3. Start-up to a usable TPM (launch until a qtest readl of DID_VID answers), $STARTS starts"
WRAP=()
WRAP_SWTPM=()
for i in $(seq "$STARTS"); do
    t0=$EPOCHREALTIME
    qtpm_up "$QD" "$IMG" "$SCRATCH/key" || break
    t1=$EPOCHREALTIME
    qtpm_down
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
done >"$SCRATCH/start.qtpm"
for i in $(seq "$STARTS"); do
    t0=$EPOCHREALTIME
    ref_up "$RD" || break
    t1=$EPOCHREALTIME
    ref_down
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
done >"$SCRATCH/start.ref"
stats "qtpm (keyed qcow2, key checked)" <"$SCRATCH/start.qtpm"
stats "qemu+swtpm (dir state)" <"$SCRATCH/start.ref"
awk -v a="$(median_of <"$SCRATCH/start.qtpm")" -v b="$(median_of <"$SCRATCH/start.ref")" \
    'BEGIN { printf "  start-up: qtpm / qemu+swtpm median ratio %.2f\n", a / b }'
echo

echo "   Peak RSS (/usr/bin/time -v) over start-up, startup, getrandom, nvincrement, createprimary ecc256"
workload() {
    local T; T=$(tcti "$1")
    tpm2_startup -T "$T" -c >/dev/null 2>&1
    tpm2_getrandom -T "$T" 8 >/dev/null
    tpm2_nvincrement -T "$T" "$NV" -C o >/dev/null
    tpm2_createprimary -T "$T" -C o -G ecc256 -c "$1/p.ctx" >/dev/null
    tpm2_flushcontext -T "$T" -t >/dev/null
}
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
WRAP=(/usr/bin/time -v -o "$SCRATCH/rss.qtpm")
qtpm_up "$QD" "$IMG" "$SCRATCH/key" && workload "$QD"
qtpm_down
WRAP=(/usr/bin/time -v -o "$SCRATCH/rss.qemu")
WRAP_SWTPM=(/usr/bin/time -v -o "$SCRATCH/rss.swtpm")
ref_up "$RD" && workload "$RD"
ref_down
WRAP=()
WRAP_SWTPM=()
q=$(rss "$SCRATCH/rss.qtpm")
s=$(rss "$SCRATCH/rss.swtpm")
e=$(rss "$SCRATCH/rss.qemu")
printf "  %-34s %8s KiB\n" qtpm "$q" swtpm "$s" qemu-system-x86_64 "$e" "swtpm + qemu" "$((s + e))"
awk -v a="$q" -v b="$((s + e))" 'BEGIN { printf "  peak RSS: qtpm / (swtpm + qemu) %.2f\n", a / b }'
echo
fi

# --- 4. Migration downtime ---------------------------------------------------
if want 4; then
echo "4. Migration downtime (query-migrate downtime; bench/migration-downtime.sh)"
bench/migration-downtime.sh "$BUILD" 5 | sed 's/^/  /'
echo
fi

# --- 5. Data channel, side by side with the floor ------------------------------
DATA_N=${BENCH_DATA_N:-2000}
CLIENT=$BUILD/swtpm-client
$CC $QEMU_CFLAGS bench/swtpm-client.c -o "$CLIENT" $LIBS || { echo "  (swtpm-client did not compile)"; exit 1; }
if want 5; then
echo "5. Data channel round trip (bench/swtpm-client.c, unix sockets, $DATA_N per command, microseconds)"
DD=$SCRATCH/data
mkdir -p "$DD/swtpm"
DIMG=$DD/tpm.qcow2
"$QTPM_IMG" create --key-file "$SCRATCH/key" "$DIMG" >/dev/null || exit 1

# qtpm_export_cmd / swtpm_cmd: the two servers, control and data on unix sockets.
qtpm_export_cmd() {
    echo "$QTPM" -drive "file=$DIMG,if=none,id=d0" -object "secret,id=k0,file=$SCRATCH/key" \
        -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
        -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$DD/q.ctrl,data=unix:$DD/q.data"
}
swtpm_cmd() {
    echo swtpm socket --tpm2 --tpmstate "dir=$DD/swtpm" \
        --ctrl "type=unixio,path=$DD/s.ctrl" --server "type=unixio,path=$DD/s.data"
}

rm -f "$DD"/*.ctrl "$DD"/*.data
serve QX -- $(qtpm_export_cmd)
serve SX -- $(swtpm_cmd)
serve EX -- "$CLIENT" echo-server "$DD/echo.sock"
wait_sock "$DD/q.data" && wait_sock "$DD/s.data" && wait_sock "$DD/echo.sock" ||
    { echo "  a server did not start: $(cat "$SCRATCH"/[QSE]X.log)"; exit 1; }
# Warm-up, then the measured runs, interleaved so that load hits all alike.
"$CLIENT" tpm "$DD/q.ctrl" "$DD/q.data" 50 >/dev/null &&
    "$CLIENT" tpm "$DD/s.ctrl" "$DD/s.data" 50 >/dev/null || exit 1
"$CLIENT" echo "$DD/echo.sock" "$DATA_N" >"$DD/r.echo"
"$CLIENT" tpm "$DD/q.ctrl" "$DD/q.data" "$DATA_N" >"$DD/r.qtpm"
"$CLIENT" tpm "$DD/s.ctrl" "$DD/s.data" "$DATA_N" >"$DD/r.swtpm"
"$CLIENT" libtpms "$DATA_N" >"$DD/r.libtpms"

# The bytes of one durable commit of qtpm, as it writes them, while the
# client makes five NV increments: the pwrite64s of the last commit, with a
# "sync" where it flushes before the directory (ordered commits). A commit
# ends with the flush after its directory slot ("QTPMDIR1").
strace -f -qq -e trace=pwrite64,fdatasync -o "$DD/commit.strace" -p "$QX_PID" 2>/dev/null &
spid=$!
sleep 0.5
"$CLIENT" tpm "$DD/q.ctrl" "$DD/q.data" 5 >/dev/null
kill -INT "$spid"; wait "$spid" 2>/dev/null
extents=$(awk '/pwrite64\(/ { match($0, /, [0-9]+, [0-9]+\)/); split(substr($0, RSTART + 2, RLENGTH - 3), a, ", ");
                              cur = cur " " a[1] "@" a[2]; if ($0 ~ /QTPMDIR1/) dir = 1 }
               /fdatasync\(/ { if (dir) { last = pend cur; pend = "" } else { pend = pend cur " sync" }
                               cur = ""; dir = 0 }
               END { print last }' "$DD/commit.strace")
cp --sparse=always "$DIMG" "$DD/flush.img"
if [ -n "$extents" ]; then
    "$CLIENT" flush "$DD/flush.img" "$DATA_N" $extents >"$DD/r.flush"
else
    echo "  (no commit seen in strace)"
fi
kill "$EX_PID" 2>/dev/null
kill "$QX_PID" "$SX_PID" 2>/dev/null
wait "$QX_WPID" "$SX_WPID" "$EX_WPID" 2>/dev/null

printf "  %-20s %9s %9s %9s %9s %9s\n" command echo libtpms "pwr+sync" qtpm swtpm
for p in getrandom16 pcr_extend nv_increment; do
    for f in median p99; do
        printf "  %-20s %9s %9s %9s %9s %9s\n" "$p $f" "$(col "$DD/r.echo" $p $f)" \
            "$(col "$DD/r.libtpms" $p $f)" \
            "$([ $p = nv_increment ] && col "$DD/r.flush" pwrite_fdatasync $f)" \
            "$(col "$DD/r.qtpm" $p $f)" "$(col "$DD/r.swtpm" $p $f)"
    done
done
echo "  qtpm's commit writes:$extents, then fdatasync; $(sed -n 's/^libtpms_stores /libtpms NV stores /p' "$DD/r.libtpms") over $DATA_N increments"
e=$(col "$DD/r.echo" getrandom16 median)
b=$(col "$DD/r.libtpms" getrandom16 median)
q=$(col "$DD/r.qtpm" getrandom16 median)
s=$(col "$DD/r.swtpm" getrandom16 median)
target "GetRandom: qtpm / (1.5 x (echo + bare libtpms)), target <= 1" "$q" \
    "$(awk -v e="$e" -v b="$b" 'BEGIN { print 1.5 * (e + b) }')"
target "GetRandom: qtpm / swtpm, target < 1" "$q" "$s"
b=$(col "$DD/r.libtpms" nv_increment median)
f=$(col "$DD/r.flush" pwrite_fdatasync median)
q=$(col "$DD/r.qtpm" nv_increment median)
target "NV_Increment: qtpm / (1.3 x (bare libtpms + pwrite+fdatasync))" "$q" \
    "$(awk -v f="$f" -v b="$b" 'BEGIN { if (f != "") print 1.3 * (f + b) }')"
echo
fi

# --- 6. Start-up to the first control answer -----------------------------------
if want 6; then
echo "6. Start-up to the first answer on the control socket (fork to CMD_GET_CAPABILITY answered), $STARTS starts"
SD=$SCRATCH/start
mkdir -p "$SD/swtpm" "$SD/swtpm-key"
SIMG=$SD/tpm.qcow2
"$QTPM_IMG" create --key-file "$SCRATCH/key" "$SIMG" >/dev/null || exit 1
xxd -p -c 64 "$SCRATCH/key" | head -c 64 >"$SD/swtpm.key"  # swtpm takes the key in hex
q_args=("$QTPM" -drive "file=$SIMG,if=none,id=d0" -object "secret,id=k0,file=$SCRATCH/key"
        -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0
        -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$SD/q.ctrl,data=unix:$SD/q.data")
s_args=(swtpm socket --tpm2 --tpmstate "dir=$SD/swtpm"
        --ctrl "type=unixio,path=$SD/s.ctrl" --server "type=unixio,path=$SD/s.data")
k_args=(swtpm socket --tpm2 --tpmstate "dir=$SD/swtpm-key"
        --key "file=$SD/swtpm.key,format=hex,mode=aes-256-cbc"
        --ctrl "type=unixio,path=$SD/k.ctrl" --server "type=unixio,path=$SD/k.data")
# Each with the same TPM state: started once, the client's workload of
# section 5 (an NV counter, 50 of each command), shut down.
for who in q s k; do
    eval "args=(\"\${${who}_args[@]}\")"
    "${args[@]}" >"$SD/$who.log" 2>&1 &
    pid=$!
    bg_pid "$pid"
    wait_sock "$SD/$who.data" || { echo "  ($who did not start: $(cat "$SD/$who.log"))"; continue; }
    "$CLIENT" tpm "$SD/$who.ctrl" "$SD/$who.data" 50 shutdown >/dev/null
    wait "$pid"
done
echo "  state: qtpm image $(stat -c %s "$SIMG") B; swtpm dir $(du -sb "$SD/swtpm" | cut -f1) B, keyed $(du -sb "$SD/swtpm-key" | cut -f1) B"
for who in q s k; do
    eval "args=(\"\${${who}_args[@]}\")"
    for i in $(seq "$STARTS"); do
        "$CLIENT" first-answer "$SD/$who.ctrl" -- "${args[@]}"
    done >"$SD/first.$who" 2>"$SD/first.$who.err"
done
stats "qtpm (keyed qcow2, key checked)" <"$SD/first.q"
stats "swtpm (dir state)" <"$SD/first.s"
stats "swtpm --key (dir state, aes-256-cbc)" <"$SD/first.k"
mq=$(median_of <"$SD/first.q")
target "start-up: qtpm / (0.5 x swtpm), target <= 1" "$mq" \
    "$(awk -v s="$(median_of <"$SD/first.s")" 'BEGIN { print 0.5 * s }')"
target "start-up: qtpm / (0.5 x swtpm --key), target <= 1" "$mq" \
    "$(awk -v s="$(median_of <"$SD/first.k")" 'BEGIN { print 0.5 * s }')"
echo
fi

# --- 7. Migration through QEMU, qtpm vs swtpm --------------------------------
if want 7; then
echo "7. Migration through QEMU, qtpm vs swtpm (bench/migration-downtime-qemu.sh)"
bench/migration-downtime-qemu.sh "$BUILD" 5 | sed 's/^/  /'
echo
fi

# --- 8. Peak RSS, the same client workload on both servers ----------------------
if want 8; then
RSS_N=${BENCH_RSS_N:-500}
echo "8. Peak RSS (/usr/bin/time -v) while bench/swtpm-client.c runs $RSS_N each of GetRandom, PCR_Extend, NV_Increment"
RD8=$SCRATCH/rss
mkdir -p "$RD8/swtpm"
RIMG=$RD8/tpm.qcow2
"$QTPM_IMG" create --key-file "$SCRATCH/key" "$RIMG" >/dev/null || exit 1
# rss_run WHO CTRL DATA CMD...: WHO's server under time -v, the client, then
# CMD_SHUTDOWN; peak RSS, and the private memory at the end (smaps_rollup).
rss_run() {
    local who=$1 ctrl=$2 data=$3 pid spid
    shift 3
    rm -f "$ctrl" "$data"
    /usr/bin/time -v -o "$RD8/$who.time" "$@" >"$RD8/$who.log" 2>&1 &
    pid=$!
    bg_pid "$pid"
    wait_sock "$data" || { echo "  ($who did not start: $(cat "$RD8/$who.log"))"; return; }
    spid=$(child_of "$pid")
    "$CLIENT" tpm "$ctrl" "$data" "$RSS_N" >/dev/null
    awk '/^(Private_Clean|Private_Dirty|Pss|Anonymous):/ { v[$1] = $2 }
         END { printf "%d %d %d\n", v["Private_Clean:"] + v["Private_Dirty:"], v["Pss:"], v["Anonymous:"] }' \
        "/proc/$spid/smaps_rollup" >"$RD8/$who.priv"
    "$CLIENT" tpm "$ctrl" "$data" 1 shutdown >/dev/null
    wait "$pid"
    read -r priv pss anon <"$RD8/$who.priv"
    printf "  %-8s peak RSS %6s KiB   at the end: private %6s KiB  PSS %6s KiB  anonymous %6s KiB\n" \
        "$who" "$(rss "$RD8/$who.time")" "$priv" "$pss" "$anon"
}
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
rss_run qtpm "$RD8/q.ctrl" "$RD8/q.data" "$QTPM" -drive "file=$RIMG,if=none,id=d0" \
    -object "secret,id=k0,file=$SCRATCH/key" -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
    -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$RD8/q.ctrl,data=unix:$RD8/q.data"
rss_run swtpm "$RD8/s.ctrl" "$RD8/s.data" swtpm socket --tpm2 --tpmstate "dir=$RD8/swtpm" \
    --ctrl "type=unixio,path=$RD8/s.ctrl" --server "type=unixio,path=$RD8/s.data"
target "peak RSS: qtpm / swtpm, target <= 1" "$(rss "$RD8/qtpm.time")" "$(rss "$RD8/swtpm.time")"
# Private pages count the libraries' pages no other process maps right now,
# so they move with what else runs; anonymous memory is each server's own.
target "anonymous memory: qtpm / swtpm" "$(cut -d' ' -f3 "$RD8/qtpm.priv")" "$(cut -d' ' -f3 "$RD8/swtpm.priv")"
# What loading each server's libraries alone costs: a program that only
# reads its own RSS, linked with qtpm's libraries, and with libtpms alone.
printf '#include <stdio.h>\n#include <string.h>\nint main(void) { char b[256]; FILE *f = fopen("/proc/self/status", "r");\n  while (fgets(b, sizeof(b), f)) if (!strncmp(b, "VmRSS:", 6)) fputs(b + 6, stdout); return 0; }\n' >"$RD8/nop.c"
if $CC -o "$RD8/nop-qtpm" "$RD8/nop.c" -Wl,--no-as-needed $LIBS &&
        $CC -o "$RD8/nop-tpms" "$RD8/nop.c" -Wl,--no-as-needed -ltpms; then
    echo "  libraries alone (a program that links them and exits): qtpm's $(echo $LIBS | tr ' ' '\n' | grep '^-l' | tr '\n' ' ')$("$RD8/nop-qtpm" | tr -d ' \t'); -ltpms alone $("$RD8/nop-tpms" | tr -d ' \t')"
fi
echo
fi
