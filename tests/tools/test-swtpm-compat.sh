#!/bin/bash
# The swtpm front doors run for real: --print-capabilities parses and says
# exactly what is implemented; swtpm_setup makes a qtpm image (plain and
# with a passphrase from a pipe) and keeps or replaces it as told; `swtpm
# socket` with libvirt 9.0's command line serves Debian's QEMU and the
# state persists across restarts; swtpm_ioctl -s stops it with the image
# clean; a wrong passphrase is refused with one sentence and the image is
# byte-identical; missing state is created only in a directory without any.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../interop/tpm2-common.sh"

COMPAT=$BUILD/swtpm-compat
SWTPM=$COMPAT/swtpm
SETUP=$COMPAT/swtpm_setup
IOCTL=$COMPAT/swtpm_ioctl
NV_COUNTER=0x01500041
PW=correct-horse-battery
hex_of() { xxd -p "$1" | tr -d '\n'; }
quiet() { "$@" >/dev/null 2>&1; }
sum_of() { sha256sum "$1" | cut -d' ' -f1; }

# --print-capabilities: JSON, with exactly the features implemented.
"$SWTPM" socket --print-capabilities >"$SCRATCH/caps.json"
check "swtpm socket --print-capabilities is JSON" quiet jq -e . "$SCRATCH/caps.json"
check "... of type swtpm with exactly the implemented features" [ \
    "$(jq -c '[.type, (.features | sort)]' "$SCRATCH/caps.json")" = \
    '["swtpm",["cmdarg-key-fd","cmdarg-migration","cmdarg-pwd-fd","nvram-backend-dir","nvram-backend-file","tpm-1.2","tpm-2.0","tpm-send-command-header"]]' ]
"$SETUP" --print-capabilities >"$SCRATCH/scaps.json"
check "swtpm_setup --print-capabilities is JSON" quiet jq -e . "$SCRATCH/scaps.json"
check "... of type swtpm_setup with exactly the implemented features" [ \
    "$(jq -c '[.type, (.features | sort)]' "$SCRATCH/scaps.json")" = \
    '["swtpm_setup",["cmdarg-pwdfile-fd","tpm-2.0"]]' ]

# swtpm_setup with libvirt's first-start command line.
ST=$SCRATCH/swtpm/U/tpm2
LOG=$SCRATCH/log/vm-swtpm.log
mkdir -p "$ST" "$SCRATCH/log" "$SCRATCH/ca"
export QTPM_CA_DIR=$SCRATCH/ca
check "swtpm_setup with libvirt's command line" "$SETUP" --tpm2 --tpm-state "$ST" \
    --vmid vm:U --logfile "$LOG" --createek --create-ek-cert \
    --create-platform-cert --lock-nvram --not-overwrite
check "... made a qtpm image" quiet "$QTPM_IMG" check "$ST/tpm2-00.qcow2"
check "... and left no temporary file" [ "$(ls -A "$ST")" = tpm2-00.qcow2 ]
MANUFACTURED=$SCRATCH/manufactured.qcow2
mv "$ST/tpm2-00.qcow2" "$MANUFACTURED"
FST=$SCRATCH/swtpm/F/tpm2
mkdir -p "$FST"
: >"$SCRATCH/not-a-dir"
check_fails "a failing manufacture (the CA directory is a file) fails swtpm_setup" \
    env QTPM_CA_DIR="$SCRATCH/not-a-dir" "$SETUP" --tpm2 --tpm-state "$FST" \
    --vmid vm:F --logfile "$LOG" --createek --create-ek-cert \
    --create-platform-cert --lock-nvram --not-overwrite
check "... saying so in the log" grep -q "qtpm-img manufacture' failed" "$LOG"
check "... and leaves the state directory empty" [ -z "$(ls -A "$FST")" ]

check "swtpm_setup makes a TPM 2.0 image" "$SETUP" --tpm2 --tpm-state "$ST" \
    --vmid vm:U --logfile "$LOG" --not-overwrite
check "... which qtpm-img info knows as TPM 2.0" \
    bash -c "'$QTPM_IMG' info --output json '$ST/tpm2-00.qcow2' | jq -e '.\"tpm-version\" == \"2.0\" and .key == \"none\"' >/dev/null"
SUM=$(sum_of "$ST/tpm2-00.qcow2")
UUID=$("$QTPM_IMG" info --output json "$ST/tpm2-00.qcow2" | jq -r .uuid)
"$SETUP" --tpm2 --tpm-state "$ST" --logfile "$LOG" --not-overwrite 2>"$SCRATCH/err"
check "--not-overwrite on an existing image succeeds" [ $? -eq 0 ]
check "... says it did nothing" grep -q "not overwritten (--not-overwrite)" "$SCRATCH/err"
check "... and the image is byte-identical" [ "$(sum_of "$ST/tpm2-00.qcow2")" = "$SUM" ]
check_fails "neither --overwrite nor --not-overwrite on an existing image fails" \
    "$SETUP" --tpm2 --tpm-state "$ST" --logfile "$LOG"
check "... naming both" grep -q "give --overwrite to replace it or --not-overwrite" "$LOG"
check "... and the image is byte-identical" [ "$(sum_of "$ST/tpm2-00.qcow2")" = "$SUM" ]
check "--overwrite replaces it" "$SETUP" --tpm2 --tpm-state "$ST" --logfile "$LOG" \
    --overwrite
check "... with a new store" [ \
    "$("$QTPM_IMG" info --output json "$ST/tpm2-00.qcow2" | jq -r .uuid)" != "$UUID" ]
check "an unknown option is refused" bash -c \
    "'$SETUP' --tpm2 --tpm-state '$ST' --frob 2>&1 | grep -qx 'swtpm_setup: --frob: unknown option (see --help)'"

# --runas: root switches to the user before anything is made.
RST=$SCRATCH/runas
mkdir -p "$RST"
if [ "$(id -u)" -eq 0 ]; then
    chmod 0711 "$SCRATCH"
    chown nobody "$RST"
    check "swtpm_setup --runas nobody" "$SETUP" --tpm2 --tpm-state "$RST" --runas nobody
    check "... made the image as nobody" [ "$(stat -c %U "$RST/tpm2-00.qcow2")" = nobody ]
else
    check "--runas as another user than root is refused" bash -c \
        "'$SETUP' --tpm2 --tpm-state '$RST' --runas root 2>&1 | grep -q 'only root can change the user'"
fi

# swtpm socket with libvirt 9.0's command line, in front of Debian's QEMU.
SOCK=$SCRATCH/run/1-vm-swtpm.sock
mkdir -p "$SCRATCH/run"
VM=$SCRATCH/vm
mkdir -p "$VM"

start_swtpm() {
    rm -f "$SOCK"
    "$SWTPM" socket --ctrl "type=unixio,path=$SOCK,mode=0600" \
        --tpmstate "dir=$ST,mode=0600" --log "file=$LOG" --terminate --tpm2 "$@" \
        2>>"$SCRATCH/swtpm.err" &
    SWTPM_PID=$!
    bg_pid "$SWTPM_PID"
    wait_for_file "$SOCK" 100 || { diag "no socket: $(cat "$SCRATCH/swtpm.err")"; return 1; }
}
start_qemu() {
    rm -f "$VM/q.sock" "$VM/m.sock"
    qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
        -qtest "unix:$VM/q.sock,server=on,wait=off" \
        -qmp "unix:$VM/m.sock,server=on,wait=off" \
        -chardev "socket,id=chrtpm,path=$SOCK" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm \
        -device tpm-tis,tpmdev=tpm0 >>"$VM/qemu.log" 2>&1 &
    QEMU_PID=$!
    bg_pid "$QEMU_PID"
    wait_for_file "$VM/q.sock" 100 && wait_for_file "$VM/m.sock" 100 ||
        { diag "QEMU did not start: $(cat "$VM/qemu.log")"; return 1; }
}
# QEMU quits; with --terminate qtpm follows when the control channel closes.
stop_qemu() {
    qmp "$VM" '{"execute": "quit"}' >/dev/null || return 1
    wait_exit "$QEMU_PID" || return 1
    wait_exit "$SWTPM_PID" && [ "$WAIT_STATUS" -eq 0 ] ||
        { diag "swtpm: status $WAIT_STATUS: $(cat "$SCRATCH/swtpm.err")"; return 1; }
}

use_tpm "$VM"
check "swtpm socket with libvirt's command line starts" start_swtpm
check "... the socket has mode 0600" [ "$(stat -c %a "$SOCK")" = 600 ]
check "... the process is qtpm, under the pid libvirt started" \
    grep -q qtpm "/proc/$SWTPM_PID/cmdline"
check "QEMU 7.2 starts on it" start_qemu
check "tpm2_startup -c through QEMU" tpm startup -c
check "tpm2_nvdefine a counter" \
    tpm nvdefine $NV_COUNTER -C o -s 8 -a "nt=counter|ownerread|ownerwrite"
check "tpm2_nvincrement" tpm nvincrement $NV_COUNTER -C o
check "QEMU quits and the TPM exits with status 0" stop_qemu
check "the image is clean" quiet "$QTPM_IMG" check "$ST/tpm2-00.qcow2"
check "swtpm socket starts again" start_swtpm
check "QEMU starts again" start_qemu
check "tpm2_startup -c" tpm startup -c
check "the counter persisted" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c1"
check "... with value 1" [ "$(hex_of "$SCRATCH/c1")" = 0000000000000001 ]
check "QEMU quits again" stop_qemu

# The manufactured TPM, seen through QEMU: the EK certificate in NV verifies
# against the local CA and the persistent EK is there.
PLAIN_IMG=$SCRATCH/plain.qcow2
mv "$ST/tpm2-00.qcow2" "$PLAIN_IMG"
mv "$MANUFACTURED" "$ST/tpm2-00.qcow2"
check "swtpm socket starts on the manufactured image" start_swtpm
check "QEMU starts on it" start_qemu
check "tpm2_startup -c" tpm startup -c
check "tpm2_nvread the RSA EK certificate at 0x01c00002" \
    tpm nvread 0x01c00002 -C o -o "$SCRATCH/ek.der"
check "... it verifies against the local CA" bash -c \
    "openssl x509 -inform DER -in '$SCRATCH/ek.der' -out '$SCRATCH/ek.pem' &&
     openssl verify -CAfile '$QTPM_CA_DIR/swtpm-localca-rootca-cert.pem' \
         -untrusted '$QTPM_CA_DIR/issuercert.pem' '$SCRATCH/ek.pem' >/dev/null"
check "... its subject is the --vmid" bash -c \
    "openssl x509 -in '$SCRATCH/ek.pem' -noout -subject | grep -q 'vm:U'"
check "tpm2_readpublic of the persistent RSA EK 0x81010001" \
    tpm readpublic -c 0x81010001
check "QEMU quits" stop_qemu
mv "$PLAIN_IMG" "$ST/tpm2-00.qcow2"

# libvirt stops the TPM with swtpm_ioctl --unix PATH -s.
check "swtpm socket starts with --pid" start_swtpm --pid "file=$SCRATCH/run/vm.pid"
check "... the pid file names it" [ "$(cat "$SCRATCH/run/vm.pid")" = "$SWTPM_PID" ]
check "swtpm_ioctl -c answers" bash -c \
    "'$IOCTL' --unix '$SOCK' -c | grep -q '^ptm capability is 0x'"
wait_exit "$SWTPM_PID"
check "... and with --terminate the TPM exits when the client goes, status 0" \
    [ "$WAIT_STATUS" -eq 0 ]
check "... removing its pid file" [ ! -e "$SCRATCH/run/vm.pid" ]
check "swtpm socket starts once more" start_swtpm
check "swtpm_ioctl --unix PATH -s succeeds" "$IOCTL" --unix "$SOCK" -s
wait_exit "$SWTPM_PID"
check "... and the TPM exits with status 0" [ "$WAIT_STATUS" -eq 0 ]
check "... and the image is clean" quiet "$QTPM_IMG" check "$ST/tpm2-00.qcow2"
check_fails "swtpm_ioctl on a socket nobody serves fails" "$IOCTL" --unix "$SOCK" -s

# Encrypted, as libvirt runs it: the same passphrase through pipes.
EST=$SCRATCH/enc/tpm2
mkdir -p "$EST"
check "swtpm_setup --pwdfile-fd from a pipe, libvirt's encrypted command line" bash -c \
    "'$SETUP' --tpm2 --pwdfile-fd 3 --cipher aes-256-cbc --tpm-state '$EST' \
     --vmid vm:E --logfile '$LOG' --createek --create-ek-cert \
     --create-platform-cert --lock-nvram --not-overwrite 3< <(printf %s '$PW')"
check "... the image takes the passphrase" \
    quiet "$QTPM_IMG" check --passphrase-file <(printf %s "$PW") "$EST/tpm2-00.qcow2"
check "... and is encrypted" \
    bash -c "'$QTPM_IMG' info --output json '$EST/tpm2-00.qcow2' | jq -e '.key == \"passphrase\"'"
ESUM=$(sum_of "$EST/tpm2-00.qcow2")
start_enc() {
    rm -f "$SOCK"
    "$SWTPM" socket --ctrl "type=unixio,path=$SOCK,mode=0600" \
        --tpmstate "dir=$EST,mode=0600" --log "file=$LOG" --tpm2 \
        --key pwdfd=3,mode=aes-256-cbc --migration-key pwdfd=4,mode=aes-256-cbc \
        3< <(printf %s "$1") 4< <(printf %s "$2") 2>"$SCRATCH/enc.err" &
    SWTPM_PID=$!
    bg_pid "$SWTPM_PID"
}
start_enc "$PW" "$PW"
check "swtpm socket --key pwdfd= --migration-key pwdfd= starts" wait_for_file "$SOCK" 100
check "... CMD_INIT starts the TPM from the encrypted image" "$IOCTL" --unix "$SOCK" -i
check "... swtpm_ioctl -s" "$IOCTL" --unix "$SOCK" -s
wait_exit "$SWTPM_PID"
check "... exit status 0" [ "$WAIT_STATUS" -eq 0 ]
ESUM=$(sum_of "$EST/tpm2-00.qcow2")
start_enc wrong-passphrase wrong-passphrase
wait_exit "$SWTPM_PID"
check "a wrong passphrase: swtpm socket fails" [ "$WAIT_STATUS" -ne 0 ]
check "... with one sentence naming the wrong key" bash -c \
    "[ \$(wc -l <'$SCRATCH/enc.err') -eq 1 ] && grep -q 'wrong key' '$SCRATCH/enc.err'"
check "... and the image is byte-identical" [ "$(sum_of "$EST/tpm2-00.qcow2")" = "$ESUM" ]
check "... and no socket appeared" [ ! -e "$SOCK" ]
start_enc "$PW" other-passphrase
wait_exit "$SWTPM_PID"
check "a --migration-key other than --key is refused" [ "$WAIT_STATUS" -ne 0 ]
check "... with its sentence" grep -qx \
    "swtpm: --migration-key: qtpm seals migrated state with the --key, so the migration key must be the same key" \
    "$SCRATCH/enc.err"
check "... and the image is byte-identical" [ "$(sum_of "$EST/tpm2-00.qcow2")" = "$ESUM" ]

# Missing state: fresh only where there is no state of any kind.
FRESH=$SCRATCH/fresh
mkdir -p "$FRESH"
rm -f "$SOCK"
"$SWTPM" socket --tpmstate "dir=$FRESH,mode=0640" --ctrl "type=unixio,path=$SOCK" \
    --tpm2 --log "file=$SCRATCH/fresh.log" 2>"$SCRATCH/fresh.err" &
SWTPM_PID=$!
bg_pid "$SWTPM_PID"
check "swtpm socket on an empty state directory starts a fresh TPM" wait_for_file "$SOCK" 100
check "... and says so in the log" grep -q "created a fresh TPM" "$SCRATCH/fresh.log"
check "... mode= is applied to the image" [ "$(stat -c %a "$FRESH/tpm2-00.qcow2")" = 640 ]
check "... swtpm_ioctl -s" "$IOCTL" --unix "$SOCK" -s
wait_exit "$SWTPM_PID"
OLD=$SCRATCH/old
mkdir -p "$OLD"
echo swtpm-state >"$OLD/tpm2-00.permall"
check_fails "swtpm state without a qtpm image is refused" "$SWTPM" socket \
    --tpmstate "dir=$OLD" --ctrl "type=unixio,path=$SOCK" --tpm2
check "... nothing was created" [ "$(ls "$OLD")" = tpm2-00.permall ]
check "... the sentence points at qtpm-img import" bash -c \
    "'$SWTPM' socket --tpmstate 'dir=$OLD' --ctrl 'type=unixio,path=$SOCK' --tpm2 2>&1 | grep -q 'qtpm-img import --swtpm-dir'"
check_fails "an option qtpm cannot honour is refused" "$SWTPM" socket \
    --tpmstate "dir=$FRESH" --ctrl "type=unixio,path=$SOCK" --tpm2 --flags not-need-init
check "... naming it" bash -c "'$SWTPM' socket --tpmstate 'dir=$FRESH' \
    --ctrl 'type=unixio,path=$SOCK' --tpm2 --flags not-need-init 2>&1 |
    grep -q '^swtpm: --flags: '"

# Shared storage: a target continues the source's image and never makes one.
MIG=$SCRATCH/mig
mkdir -p "$MIG"
"$SWTPM" socket --tpmstate "dir=$MIG,mode=0600" --ctrl "type=unixio,path=$SOCK" \
    --tpm2 --migration release-lock-outgoing,incoming >/dev/null 2>"$SCRATCH/mig.err"
check "--migration incoming without the source's image fails" [ $? -ne 0 ]
check "... with one sentence naming the image" grep -qx \
    "swtpm: --migration incoming: '$MIG/tpm2-00.qcow2' does not exist; an incoming migration on shared storage continues the source's image" \
    "$SCRATCH/mig.err"
check "... and creates nothing" [ -z "$(ls -A "$MIG")" ]
done_testing
