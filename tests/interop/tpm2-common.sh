# Helpers for the scripts that drive a TPM through qtpm-tis: starting qtpm
# and the reference QEMU + swtpm, QMP, and tpm2-tools with the "cmd" TCTI.
# Source after tests/lib.sh (it uses $BUILD, $QTPM, $QTPM_TIS, bg_pid).

# start_qtpm DIR DRIVE_FILE [KEY_FILE] [EXTRA_ARGS...]: starts qtpm with its
# qtest socket DIR/q.sock and QMP socket DIR/m.sock, stderr in DIR/qtpm.err.
# Sets QTPM_PID. Fails when qtpm exits or no socket appears. TPM_VERSION=1.2
# in the environment asks for a TPM 1.2.
start_qtpm() {
    local dir=$1 img=$2 key=${3:-}
    shift 3 2>/dev/null || shift $#
    local keyopts=() tpmdev="libtpms,id=tpm0,nvram=d0"
    [ -n "${TPM_VERSION:-}" ] && tpmdev="$tpmdev,version=$TPM_VERSION"
    if [ -n "$key" ]; then
        keyopts=(-object "secret,id=k0,file=$key")
        tpmdev="$tpmdev,key-secret=k0"
    fi
    rm -f "$dir/q.sock" "$dir/m.sock"
    "$QTPM" -drive "file=$img,if=none,id=d0" "${keyopts[@]}" \
        -tpmdev "$tpmdev" -device tpm-tis,tpmdev=tpm0 \
        -qtest "unix:$dir/q.sock,server=on,wait=off" \
        -qmp "unix:$dir/m.sock,server=on,wait=off" "$@" \
        >"$dir/qtpm.out" 2>"$dir/qtpm.err" &
    QTPM_PID=$!
    bg_pid "$QTPM_PID"
    local i=0
    while [ $i -lt 200 ]; do
        [ -S "$dir/q.sock" ] && [ -S "$dir/m.sock" ] && return 0
        kill -0 "$QTPM_PID" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    diag "qtpm did not start: $(cat "$dir/qtpm.err")"
    return 1
}

# qmp DIR COMMAND_JSON...: negotiates capabilities, sends each command and
# prints every line the monitor answered.
qmp() {
    local dir=$1
    shift
    { echo '{"execute": "qmp_capabilities"}'; printf '%s\n' "$@"; } |
        timeout 30 socat -t 5 - "UNIX-CONNECT:$dir/m.sock"
}

# wait_exit PID: waits (at most 60 s) until PID has gone; its status in
# WAIT_STATUS.
wait_exit() {
    local i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    wait "$1" 2>/dev/null
    WAIT_STATUS=$?
    ! kill -0 "$1" 2>/dev/null
}

# qmp_quit DIR: QMP quit, then waits for qtpm to exit with status 0.
qmp_quit() {
    qmp "$1" '{"execute": "quit"}' >"$1/quit.out" || return 1
    grep -q '"SHUTDOWN"' "$1/quit.out" || return 1
    wait_exit "$QTPM_PID" && [ "$WAIT_STATUS" -eq 0 ]
}

# start_reference DIR: Debian's QEMU with a tpm-tis device in front of swtpm,
# qtest socket DIR/q.sock, log of qtest lines DIR/qtest.log. Sets REF_PID.
start_reference() {
    local dir=$1
    mkdir -p "$dir/state"
    swtpm socket --tpm2 --tpmstate "dir=$dir/state" \
        --ctrl "type=unixio,path=$dir/ctrl" --terminate \
        >"$dir/swtpm.log" 2>&1 &
    bg_pid $!
    wait_for_file "$dir/ctrl" || return 1
    rm -f "$dir/q.sock"
    qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
        -qtest "unix:$dir/q.sock,server=on,wait=off" \
        -qtest-log "$dir/qtest.log" \
        -chardev "socket,id=c,path=$dir/ctrl" -tpmdev emulator,id=t0,chardev=c \
        -device tpm-tis,tpmdev=t0 >"$dir/qemu.log" 2>&1 &
    REF_PID=$!
    bg_pid "$REF_PID"
    wait_for_file "$dir/q.sock" 100
}

# use_tpm DIR [QTPM_TIS_ARGS...]: points tpm2-tools at DIR/q.sock.
use_tpm() {
    local dir=$1
    shift
    export TPM2TOOLS_TCTI="cmd:$QTPM_TIS --qtest $dir/q.sock $*"
}

# tpm TOOL ARGS...: runs tpm2_TOOL (at most 120 s), quietly unless it fails;
# its stdout in $SCRATCH/tpm.out. With no resource manager in between, every
# object a tool loads stays in one of the TPM's three object slots, so after
# the tools that load objects the transient ones are flushed, as tpm2-abrmd
# would do.
tpm() {
    local tool=$1 rc=0
    shift
    if ! timeout 120 "tpm2_$tool" "$@" >"$SCRATCH/tpm.out" 2>"$SCRATCH/tpm.err"; then
        [ -n "${TPM_QUIET_FAIL:-}" ] || diag "tpm2_$tool $*: $(head -c 600 "$SCRATCH/tpm.err")"
        rc=1
    fi
    case "$tool" in
    createprimary|create|load|sign|verifysignature|evictcontrol|unseal)
        timeout 120 tpm2_flushcontext -t >/dev/null 2>"$SCRATCH/flush.err" ||
            { diag "tpm2_flushcontext -t: $(head -c 600 "$SCRATCH/flush.err")"; rc=1; }
        ;;
    esac
    return $rc
}

# tpm_fails_with RC TOOL ARGS...: the tool fails, and the TPM's response code
# (as tpm2-tools prints it, e.g. 0x99D) is RC.
tpm_fails_with() {
    local rc=$1
    shift
    if TPM_QUIET_FAIL=1 tpm "$@"; then
        diag "tpm2_$1 succeeded"
        return 1
    fi
    grep -q "($rc)" "$SCRATCH/tpm.err" ||
        { diag "tpm2_$1: expected $rc: $(head -c 600 "$SCRATCH/tpm.err")"; return 1; }
}
