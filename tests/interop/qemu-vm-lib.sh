# Shell helpers for tests that run Debian's QEMU (guest-less, -S, tpm-tis)
# with qtpm -export swtpm behind it on a keyed image. Source it after
# lib.sh and tpm2-common.sh; set IMG, KEY and DIR (a folder for the sockets
# and logs) first.

# start_vm: qtpm exporting the image on DIR/ctrl.sock, QEMU on it with its
# qtest socket DIR/q.sock and QMP socket DIR/m.sock. Sets QTPM_PID, QEMU_PID.
# Logs are appended to DIR/qtpm.log and DIR/qemu.log.
start_vm() {
    rm -f "$DIR/ctrl.sock" "$DIR/q.sock" "$DIR/m.sock"
    "$QTPM" -drive "file=$IMG,if=none,id=d0" \
        -object "secret,id=k0,file=$KEY,format=raw" \
        -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
        -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$DIR/ctrl.sock" \
        >>"$DIR/qtpm.log" 2>&1 &
    QTPM_PID=$!
    bg_pid "$QTPM_PID"
    wait_for_file "$DIR/ctrl.sock" 100 || { diag "no control socket: $(cat "$DIR/qtpm.log")"; return 1; }
    qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
        -qtest "unix:$DIR/q.sock,server=on,wait=off" \
        -qmp "unix:$DIR/m.sock,server=on,wait=off" \
        -chardev "socket,id=chrtpm,path=$DIR/ctrl.sock" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm \
        -device tpm-tis,tpmdev=tpm0 >>"$DIR/qemu.log" 2>&1 &
    QEMU_PID=$!
    bg_pid "$QEMU_PID"
    wait_for_file "$DIR/q.sock" 100 && wait_for_file "$DIR/m.sock" 100 ||
        { diag "QEMU did not start: $(cat "$DIR/qemu.log")"; return 1; }
}

# qemu_qmp COMMAND_JSON: one command to QEMU's monitor; the answers in DIR/qmp.out.
qemu_qmp() { qmp "$DIR" "$1" >"$DIR/qmp.out" && grep -q '"return"' "$DIR/qmp.out"; }

# stop_vm: QEMU quits; on its way out it sends CMD_SHUTDOWN, which ends qtpm (0).
stop_vm() {
    qemu_qmp '{"execute": "quit"}' || return 1
    wait_exit "$QEMU_PID" || return 1
    wait_exit "$QTPM_PID" && [ "$WAIT_STATUS" -eq 0 ] ||
        { diag "qtpm: status $WAIT_STATUS: $(cat "$DIR/qtpm.log")"; return 1; }
}
