#!/bin/bash
# libvirt's external TPM backend on qtpm: a real libvirtd (private runtime,
# tests/libvirt/libvirt-lib.sh) runs a TCG domain whose
# <tpm model='tpm-crb'><backend type='external'> connects QEMU to a qtpm
# started as qtpm@.service starts it (its ExecStart line, with
# NOTIFY_SOCKET as systemd sets it) or with qtpm-instance --daemonize. The
# guest's tpm_crb binds and TPM2_GetRandom answers; an NV value written
# from the host survives virsh destroy and two more runs; a wrong key or a
# socket QEMU's user cannot reach keeps the domain from starting, and the
# image is left as it was.
. "$(dirname "$0")/../lib.sh"
. "$SRC_PATH/tests/interop/tpm2-common.sh"
. "$SRC_PATH/tests/libvirt/libvirt-lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    # libvirtd's system instance and its QEMU user need root; CI runs as root.
    not_ok "the libvirt tests run as root (they start libvirtd's system instance)"
    done_testing
    exit 1
fi

INSTANCE=$SRC_PATH/contrib/qtpm-instance
UNIT=$SRC_PATH/contrib/systemd/qtpm@.service
NAME=vm1
ETC=$SCRATCH/etc/qtpm
RUN=$SCRATCH/run/qtpm
IMG=$SCRATCH/$NAME.qcow2
KEY=$ETC/$NAME.key
SOCK=$RUN/$NAME.sock
NV_INDEX=0x01500030
NV_DATA=$SCRATCH/nv.bin
export QTPM QTPM_CONFIG_DIR=$ETC
mkdir -p "$ETC" "$RUN"
chmod 0755 "$SCRATCH/run" "$RUN"

# write_config FILE [EXTRA_LINES]: the instance's config, as
# contrib/qtpm-sample.conf has it, with private paths.
write_config() {
    cat >"$1" <<EOF
# $NAME's TPM
IMAGE=$IMG
KEY_FILE="$KEY"
SOCKET=$SOCK
SOCKET_USER=$QEMU_USER
SOCKET_MODE=0600
${2:-}
EOF
}

# notify_listen: a datagram socket $SCRATCH/notify, as systemd's notify
# socket; what arrives is appended to $SCRATCH/notify.out.
notify_listen() {
    [ -n "${NOTIFY_PID:-}" ] && kill "$NOTIFY_PID" 2>/dev/null
    rm -f "$SCRATCH/notify" "$SCRATCH/notify.out"
    socat -u "UNIX-RECV:$SCRATCH/notify" "OPEN:$SCRATCH/notify.out,creat,append" &
    NOTIFY_PID=$!
    bg_pid "$NOTIFY_PID"
    wait_for_file "$SCRATCH/notify" 50 || { diag "socat did not bind"; return 1; }
}

# unit_start: qtpm runs as systemd's ExecStart line runs it, in the
# foreground, with a private notify socket; returns once READY=1 came.
# Sets INST_PID.
unit_start() {
    local cmd i
    cmd=$(sed -n 's/^ExecStart=//p' "$UNIT")
    cmd=${cmd//\/usr\/bin\/qtpm-instance/$INSTANCE}
    cmd=${cmd//%i/$NAME}
    notify_listen || return 1
    # shellcheck disable=SC2086
    NOTIFY_SOCKET=$SCRATCH/notify $cmd >"$SCRATCH/instance.log" 2>&1 &
    INST_PID=$!
    bg_pid "$INST_PID"
    for ((i = 0; i < 100; i++)); do
        grep -q 'READY=1' "$SCRATCH/notify.out" 2>/dev/null && return 0
        kill -0 "$INST_PID" 2>/dev/null || break
        sleep 0.1
    done
    diag "no READY=1 from qtpm: $(cat "$SCRATCH/instance.log")"
    return 1
}

# daemon_start: the flow without systemd; returns once the socket listens.
# Sets INST_PID from the pid file.
daemon_start() {
    "$INSTANCE" --daemonize --pidfile "$RUN/$NAME.pid" "$NAME" \
        >"$SCRATCH/instance.log" 2>&1 || { diag "$(cat "$SCRATCH/instance.log")"; return 1; }
    INST_PID=$(cat "$RUN/$NAME.pid")
    bg_pid "$INST_PID"
    [ -S "$SOCK" ]
}

# host_export: the image served to tpm2-tools (the instance is not running).
host_export() { lv_host_export "$IMG" key "$KEY"; }
host_stop() { lv_host_stop; }

nv_write() {
    local rc=0
    host_export || return 1
    timeout 30 tpm2_nvdefine "$NV_INDEX" -C o -s 16 -a "ownerread|ownerwrite" >/dev/null ||
        rc=1
    [ "$rc" -eq 0 ] && { timeout 30 tpm2_nvwrite "$NV_INDEX" -C o -i "$NV_DATA" || rc=1; }
    host_stop && [ "$rc" -eq 0 ]
}

nv_reads_back() {
    host_export || return 1
    timeout 30 tpm2_nvread "$NV_INDEX" -C o -s 16 -o "$SCRATCH/nv.out" >/dev/null ||
        { host_stop; return 1; }
    host_stop && cmp -s "$NV_DATA" "$SCRATCH/nv.out"
}

# run_guest: virsh start; the guest boots, uses its TPM and powers off.
run_guest() {
    lv_start "$NAME" || { sed 's/^/# /' "$LV_DIR/$NAME.virsh"; lv_log 10; return 1; }
    lv_wait_shutoff "$NAME" 120 || return 1
    lv_guest_ok "$NAME" crb
}

# inst_exited STATUS: the instance's qtpm (started in the foreground) has
# exited with STATUS.
inst_exited() { wait_exit "$INST_PID" && [ "$WAIT_STATUS" -eq "$1" ]; }
# daemon_exited: the daemonized qtpm (not our child: no status to reap) has
# gone through its clean exit, which removes its pid file.
daemon_exited() {
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$INST_PID" 2>/dev/null || break
        sleep 0.1
    done
    ! kill -0 "$INST_PID" 2>/dev/null && [ ! -e "$RUN/$NAME.pid" ]
}

check "libvirtd and virtlogd run on a private runtime" libvirt_start
check "the guest kernel and initramfs are ready for libvirt" lv_guest_files
# Debian's default user= of qemu.conf; QEMU runs as it.
QEMU_USER=libvirt-qemu
id -u "$QEMU_USER" >/dev/null 2>&1 || { not_ok "user $QEMU_USER exists"; done_testing; exit 1; }

head -c 32 /dev/urandom >"$KEY"
chmod 0600 "$KEY"
head -c 16 /dev/urandom >"$NV_DATA"
check "a keyed image is created" "$QTPM_IMG" create --key-file "$KEY" "$IMG"
write_config "$ETC/$NAME.conf"

# The config file becomes one qtpm command line.
"$INSTANCE" --print "$NAME" >"$SCRATCH/print.out" 2>&1
check "qtpm-instance --print shows the command line from the config" grep -qF -- \
    "-tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0 -export swtpm,id=export0,tpmdev=tpm0,ctrl=unix:$SOCK,mode=0600,uid=$(id -u "$QEMU_USER")" \
    "$SCRATCH/print.out"
# A passphrase, a family and a comma in a path reach qtpm as its options.
write_config "$SCRATCH/pass.conf" "PASSPHRASE_FILE='$SCRATCH/a,b.pass'
TPM_VERSION=1.2"
sed -i '/^KEY_FILE=/d' "$SCRATCH/pass.conf"
"$INSTANCE" --print "$SCRATCH/pass.conf" >"$SCRATCH/print.out" 2>&1
check "PASSPHRASE_FILE and TPM_VERSION become passphrase-secret and version" grep -qF -- \
    "-object secret,id=key0,file=$SCRATCH/a,,b.pass,format=raw -tpmdev libtpms,id=tpm0,nvram=drive0,version=1.2,passphrase-secret=key0" \
    "$SCRATCH/print.out"
write_config "$SCRATCH/both.conf" "PASSPHRASE_FILE=$KEY"
out=$("$INSTANCE" --print "$SCRATCH/both.conf" 2>&1)
check "KEY_FILE and PASSPHRASE_FILE together are refused" \
    test "$out" = "qtpm-instance: $SCRATCH/both.conf: KEY_FILE= and PASSPHRASE_FILE= exclude each other"
write_config "$SCRATCH/bad.conf" "SOCKET_OWNER=root"
out=$("$INSTANCE" "$SCRATCH/bad.conf" 2>&1)
rc=$?
check "an unknown config key is one sentence and exit 1" \
    test "$rc" -eq 1 -a "$out" = "qtpm-instance: $SCRATCH/bad.conf:7: unknown key 'SOCKET_OWNER'"

TPM_XML="<tpm model='tpm-crb'><backend type='external'><source type='unix' mode='connect' path='$SOCK'/></backend></tpm>"
check "the domain with an external TPM backend is defined" lv_define "$NAME" "$TPM_XML"
has_external() { lv_virsh dumpxml "$NAME" | grep -q "<backend type='external'>"; }
check "libvirt keeps the external backend in the domain XML" has_external

# 1. qtpm as the unit runs it; the guest sees the TPM.
if unit_start && [ -S "$SOCK" ]; then
    ok "READY=1 arrives after the socket exists ($(stat -c '%U %a' "$SOCK"))"
else
    not_ok "READY=1 arrives after the socket exists"
fi
check "the socket belongs to QEMU's user" test "$(stat -c %U "$SOCK")" = "$QEMU_USER"
check "the guest's tpm_crb binds the external qtpm TPM and GetRandom answers" run_guest
check "qtpm exits 0 on QEMU's CMD_SHUTDOWN at the end of the run" inst_exited 0
check "qtpm said STOPPING=1 on its way out" grep -q 'STOPPING=1' "$SCRATCH/notify.out"

# 2. State from the host, then virsh destroy in the middle of a run.
check "an NV value is written from the host through an export of the image" nv_write
check "qtpm-instance --daemonize returns once the socket listens" daemon_start
if lv_start "$NAME"; then
    lv_wait_console "$NAME" '^QTPM-GUEST: tpm0 bound' 120
    lv_virsh destroy "$NAME" >"$LV_DIR/destroy.out" 2>&1
    check "virsh destroy ends the running domain" lv_wait_shutoff "$NAME" 30
else
    not_ok "the domain starts again: $(cat "$LV_DIR/$NAME.virsh")"
fi
# A killed QEMU may not have sent CMD_SHUTDOWN: qtpm then keeps serving.
if kill -0 "$INST_PID" 2>/dev/null; then
    diag "qtpm still serves after the destroy"
else
    daemon_start || not_ok "qtpm-instance starts again after the destroy"
fi
check "after virsh destroy the domain starts again and the guest uses its TPM" run_guest
check "qtpm exits cleanly after the second run, its pid file removed" daemon_exited
check "the NV value written before the runs reads back" nv_reads_back
check "qtpm-img check finds the image intact" "$QTPM_IMG" check --key-file "$KEY" "$IMG"
check "qemu-img check finds no errors or leaks" qemu-img check -q "$IMG"

# 3. A wrong key: qtpm refuses before its socket exists; the domain does not start.
cp "$IMG" "$SCRATCH/before.qcow2"
head -c 32 /dev/urandom >"$ETC/wrong.key"
write_config "$ETC/$NAME.conf"
sed -i "s|^KEY_FILE=.*|KEY_FILE=$ETC/wrong.key|" "$ETC/$NAME.conf"
rm -f "$SOCK"
notify_listen
out=$(NOTIFY_SOCKET=$SCRATCH/notify "$INSTANCE" "$NAME" 2>&1)
rc=$?
diag "$out"
sleep 0.2
check "with a wrong key qtpm sends no READY=1" test ! -s "$SCRATCH/notify.out"
check "with a wrong key qtpm exits 1" test "$rc" -eq 1
check "with a wrong key qtpm says one sentence naming the image and the cause" \
    test "$out" = "qtpm: -tpmdev id=tpm0: '$IMG': wrong key (the key check value does not match)"
check "with a wrong key no socket exists" test ! -e "$SOCK"
check_fails "with a wrong key virsh start fails" lv_start "$NAME"
diag "$(head -n 2 "$LV_DIR/$NAME.virsh")"
check "libvirt's error names the TPM socket" grep -qF "$SOCK" "$LV_DIR/$NAME.virsh"
check "the domain is shut off" test "$(lv_state "$NAME")" = "shut off"
check "the image is byte-identical after the refused start" cmp -s "$IMG" "$SCRATCH/before.qcow2"

# 4. libvirt does not give the socket to QEMU's user: a root-owned socket
# keeps the domain from starting.
write_config "$ETC/$NAME.conf"
sed -i '/^SOCKET_USER=/d' "$ETC/$NAME.conf"
check "qtpm-instance starts with a root-owned socket" daemon_start
check_fails "virsh start fails when QEMU's user cannot connect to the socket" lv_start "$NAME"
diag "$(head -n 2 "$LV_DIR/$NAME.virsh")"
check "libvirt's error is QEMU's permission error" grep -qi 'permission denied' "$LV_DIR/$NAME.virsh"
check "libvirt left the socket's owner as it was" test "$(stat -c %U "$SOCK")" = root
kill "$INST_PID"
check "qtpm exits cleanly on SIGTERM, its pid file removed" daemon_exited

check "virsh undefine removes the domain" lv_undefine "$NAME"
daemons="$LV_LIBVIRTD_PID $LV_VIRTLOGD_PID"
libvirt_stop
gone() { local p; for p in "$@"; do ! kill -0 "$p" 2>/dev/null || return 1; done; }
# shellcheck disable=SC2086
check "libvirtd and virtlogd have stopped" gone $daemons
done_testing
