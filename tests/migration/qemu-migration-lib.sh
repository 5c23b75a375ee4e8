# Helpers for the migration tests that run Debian's QEMU in front of a TPM
# behind -tpmdev emulator: start qtpm exports and guest-less QEMUs, wait for an incoming
# migration, migrate into a file. Source after tests/lib.sh and
# migration-lib.sh.

# start_export NAME IMAGE KEYFILE|"" [EXPORT KEYS]: qtpm serving IMAGE on
# $SCRATCH/NAME.ctrl, EXPORT KEYS (e.g. incoming=on) added to its -export;
# sets PID_NAME_tpm. Log in $SCRATCH/NAME.tpm.log.
start_export() {
    local name=$1 img=$2 key=$3 keys=${4:-} keyargs=()
    [ -n "$key" ] && keyargs=(-object "secret,id=k0,file=$key,format=raw")
    rm -f "$SCRATCH/$name.ctrl"
    "$QTPM" "${keyargs[@]}" -drive "file=$img,if=none,id=d0" \
        -tpmdev "libtpms,id=t0,nvram=d0${key:+,key-secret=k0}" \
        -export "swtpm,id=e0,tpmdev=t0,ctrl=unix:$SCRATCH/$name.ctrl${keys:+,$keys}" \
        >"$SCRATCH/$name.tpm.log" 2>&1 &
    bg_pid $!
    eval "PID_${name}_tpm=$!"
    wait_for_file "$SCRATCH/$name.ctrl" 100
}

# start_qemu NAME [QEMU ARGS...]: Debian's QEMU with a tpm-tis in front of
# $SCRATCH/NAME.ctrl, qtest at $SCRATCH/NAME.qtest and QMP at
# $SCRATCH/NAME.qmp (so migration-lib's tpm, qmpc and friends reach it);
# sets PID_NAME_qemu.
start_qemu() {
    local name=$1
    shift
    rm -f "$SCRATCH/$name.qtest" "$SCRATCH/$name.qmp"
    qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
        -qtest "unix:$SCRATCH/$name.qtest,server=on,wait=off" \
        -qmp "unix:$SCRATCH/$name.qmp,server=on,wait=off" \
        -chardev "socket,id=c,path=$SCRATCH/$name.ctrl" \
        -tpmdev emulator,id=t0,chardev=c -device tpm-tis,tpmdev=t0 \
        "$@" >"$SCRATCH/$name.qemu.log" 2>&1 &
    bg_pid $!
    eval "PID_${name}_qemu=$!"
    wait_for_file "$SCRATCH/$name.qmp" 100 && wait_for_file "$SCRATCH/$name.qtest" 100
}

# wait_incoming NAME: waits until NAME's QEMU has left "inmigrate" (or
# exited); prints the run state.
wait_incoming() {
    local i s
    for i in $(seq 1 300); do
        s=$(qmpc "$SCRATCH/$1.qmp" '{"execute": "query-status"}' 2>/dev/null |
            jq -r '.return.status // empty' 2>/dev/null)
        case "$s" in inmigrate|"") ;; *) echo "$s"; return 0 ;; esac
        eval "kill -0 \$PID_${1}_qemu" 2>/dev/null || { echo exited; return 0; }
        sleep 0.1
    done
    echo timeout
}

# migrate_to_file NAME FILE: QEMU NAME's migration into FILE, completed.
# (QEMU sends MIGRATION events only with the events capability: poll.)
migrate_to_file() {
    qmpc "$SCRATCH/$1.qmp" \
        "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"exec:cat > $2\"}}" \
        >/dev/null &&
        test "$(wait_migration "$1")" = completed
}

# holds_owner_lock PID IMAGE: process PID holds the NVRAM owner lock of IMAGE
# (an OFD write lock on byte 0x10001, docs/block-layer.md "qtpm lock ids").
holds_owner_lock() {
    local fd ino
    ino=$(stat -c %i "$2")
    for fd in /proc/"$1"/fd/*; do
        [ "$(stat -L -c %i "$fd" 2>/dev/null)" = "$ino" ] || continue
        grep -Eq "^lock:.*OFDLCK +ADVISORY +WRITE .* 65537 65537$" \
            "/proc/$1/fdinfo/${fd##*/}" && return 0
    done
    return 1
}

# set_return_path NAME: QEMU NAME reports the target's failure to the source.
set_return_path() {
    qmpc "$SCRATCH/$1.qmp" '{"execute": "migrate-set-capabilities", "arguments":
        {"capabilities": [{"capability": "return-path", "state": true}]}}' |
        grep -q '"return"'
}
