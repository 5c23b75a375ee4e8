#!/bin/bash
# query-tpm over qtpm's own QMP shows the export and who is on it, with
# Debian's QEMU as the client: before QEMU connects, no client and the TPM
# stopped; with QEMU's -tpmdev emulator on the control socket, the client is
# QEMU (SO_PEERCRED: its pid, uid and gid), the data channel came with
# CMD_SET_DATAFD from the same process, and the TPM runs. A TCP control
# client shows its address and port. On a migration target the blobs QEMU
# set appear. After QEMU has gone, nobody is connected again.
# docs/qmp.md "TPMInfo".
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"

DIR=$SCRATCH
MTOOL=$SCRATCH/migration-tool
cc -O1 -Wall -o "$MTOOL" "${SRC_PATH:-.}/tests/migration/migration-tool.c" || exit 1

# start_tpm NAME CTRL [EXPORT-OPTIONS]: qtpm on a fresh image NAME.qcow2
# exporting on CTRL, its QMP on NAME.qmp. Sets PID_NAME_tpm.
start_tpm() {
    local name=$1 ctrl=$2
    rm -f "$DIR/$name.qmp"
    [ -f "$DIR/$name.qcow2" ] || "$QTPM_IMG" create "$DIR/$name.qcow2" >/dev/null
    "$QTPM" -drive "file=$DIR/$name.qcow2,if=none,id=d0" \
        -tpmdev libtpms,id=tpm0,nvram=d0 \
        -export "swtpm,id=e0,tpmdev=tpm0,ctrl=$ctrl${3:-}" \
        -qmp "unix:$DIR/$name.qmp,server=on,wait=off" >"$DIR/$name.tpm.log" 2>&1 &
    bg_pid $!
    eval "PID_${name}_tpm=$!"
    wait_for_file "$DIR/$name.qmp" 100
}

# start_qemu NAME [ARGS...]: guest-less QEMU in front of NAME.ctrl, its QMP
# on NAME.qemu.qmp. Sets PID_NAME_qemu.
start_qemu() {
    local name=$1
    shift
    rm -f "$DIR/$name.qemu.qmp"
    qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
        -qmp "unix:$DIR/$name.qemu.qmp,server=on,wait=off" \
        -chardev "socket,id=c,path=$DIR/$name.ctrl" \
        -tpmdev emulator,id=t0,chardev=c -device tpm-tis,tpmdev=t0 \
        "$@" >"$DIR/$name.qemu.log" 2>&1 &
    bg_pid $!
    eval "PID_${name}_qemu=$!"
    wait_for_file "$DIR/$name.qemu.qmp" 100
}

# tpmq NAME JQ-FILTER: query-tpm on NAME's qtpm, filtered by jq.
tpmq() {
    "$MTOOL" qmp "$DIR/$1.qmp" '{"execute": "query-tpm"}' | jq -r ".return[0]$2"
}

# wait_for NAME JQ-FILTER VALUE: until query-tpm's FILTER gives VALUE (5 s).
wait_for() {
    local i
    for i in $(seq 1 50); do
        [ "$(tpmq "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    diag "$2 is $(tpmq "$1" "$2"), not $3"
    return 1
}

check "qtpm starts with an export and a TCP data listener" \
    start_tpm a "unix:$DIR/a.ctrl" ",data=tcp:127.0.0.1:0"
check "query-tpm lists the exported TPM" test "$(tpmq a .id)" = tpm0
check "... as the export's frontend" test "$(tpmq a .model)" = swtpm-export
check "... with its backend's options" test "$(tpmq a .options.data.nvram)" = d0
check "... and the export's id and type" \
    test "$(tpmq a '.export | "\(.id) \(.type)"')" = "e0 swtpm"
check "... its control socket" test "$(tpmq a .export.ctrl)" = "unix:$DIR/a.ctrl"
data=$(tpmq a .export.data)
check "... its data listener with the bound port ($data)" \
    test "$data" != "tcp:127.0.0.1:0" -a "${data#tcp:127.0.0.1:}" -gt 0
check "... no control client" test "$(tpmq a .export.client.connected)" = false
check "... no data channel" test "$(tpmq a '.export["data-channel"].connected')" = false
check "... the TPM stopped" test "$(tpmq a '.export["tpm-running"]')" = false
check "... and no state blobs" test "$(tpmq a '.export["state-blobs"]')" = null

check "QEMU starts on the export" start_qemu a
check "the TPM runs once QEMU has initialised it" wait_for a '.export["tpm-running"]' true
check "the control client is connected" test "$(tpmq a .export.client.connected)" = true
check "... and is QEMU's process (pid $PID_a_qemu)" \
    test "$(tpmq a .export.client.pid)" = "$PID_a_qemu"
check "... under our uid and gid" \
    test "$(tpmq a '.export.client | "\(.uid) \(.gid)"')" = "$(id -u) $(id -g)"
check "the data channel is connected" \
    test "$(tpmq a '.export["data-channel"].connected')" = true
check "... passed with CMD_SET_DATAFD" \
    test "$(tpmq a '.export["data-channel"].via')" = set-datafd
check "... by QEMU, the socketpair's creator" \
    test "$(tpmq a '.export["data-channel"].pid')" = "$PID_a_qemu"
check "QEMU's own query-tpm sees an emulator TPM" \
    test "$("$MTOOL" qmp "$DIR/a.qemu.qmp" '{"execute": "query-tpm"}' |
            jq -r '.return[0].options.type')" = emulator

stream=$DIR/a.stream
check "QEMU migrates into a file" "$MTOOL" qmp "$DIR/a.qemu.qmp" \
    "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"exec:cat > $stream\"}}" \
    >/dev/null
for i in $(seq 1 100); do
    st=$("$MTOOL" qmp "$DIR/a.qemu.qmp" '{"execute": "query-migrate"}' | jq -r .return.status)
    [ "$st" = completed ] && break
    sleep 0.1
done
check "... and the migration completed" test "$st" = completed
"$MTOOL" qmp "$DIR/a.qemu.qmp" '{"execute": "quit"}' >/dev/null 2>&1
check "the source's QEMU exits" wait_exit "$PID_a_qemu"
check "QEMU's exit (CMD_SHUTDOWN) ends qtpm" wait_exit "$PID_a_tpm"

check "a target qtpm starts" start_tpm b "unix:$DIR/b.ctrl"
check "QEMU -incoming starts on the target" start_qemu b -incoming "exec:cat $stream"
check "the blobs QEMU set are shown" \
    wait_for b '.export["state-blobs"].set | join(",")' "permanent,volatile"
check "... and none was refused" \
    test "$(tpmq b '.export["state-blobs"].refused | length')" = 0
check "the target's TPM runs after INIT" wait_for b '.export["tpm-running"]' true
kill -9 "$PID_b_qemu"   # no CMD_SHUTDOWN: the client just vanishes
check "the target's QEMU is killed (-9)" wait_exit "$PID_b_qemu" 2>/dev/null
check "the client goes away with it" wait_for b .export.client.connected false
check "... and so does the data channel" \
    test "$(tpmq b '.export["data-channel"].connected')" = false
check "... and the blob record of that client" test "$(tpmq b '.export["state-blobs"]')" = null
kill "$PID_b_tpm"
wait_exit "$PID_b_tpm"

# A TCP control client: its address and port.
port_file=$DIR/port
check "qtpm starts with a TCP control socket" start_tpm c "tcp:127.0.0.1:0"
ctrl=$(tpmq c .export.ctrl)
check "... shown with its bound port ($ctrl)" test "${ctrl#tcp:127.0.0.1:}" -gt 0
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
time.sleep(30)
' "${ctrl#tcp:127.0.0.1:}" "$port_file" &
client=$!
bg_pid $client
check "a TCP client connects" wait_for_file "$port_file" 100
check "... and is shown connected" wait_for c .export.client.connected true
check "... with its address and port" \
    test "$(tpmq c '.export.client | "\(.host):\(.port)"')" = "127.0.0.1:$(cat "$port_file")"
check "... and no credentials" test "$(tpmq c .export.client.pid)" = null
kill $client
check "the TCP client goes away" wait_for c .export.client.connected false
kill "$PID_c_tpm"
wait_exit "$PID_c_tpm"

done_testing
