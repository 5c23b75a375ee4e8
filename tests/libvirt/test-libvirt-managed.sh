#!/bin/bash
# libvirt's managed TPM (<backend type='emulator'>) on qtpm: a real libvirtd
# (private runtime, tests/libvirt/libvirt-lib.sh) with the swtpm front doors
# first on its PATH runs swtpm_setup, swtpm socket and swtpm_ioctl, which
# are qtpm's. Two TCG domains, one plain and one with <encryption
# secret=...>: libvirt made a qtpm image and runs qtpm; the guest's tpm_crb
# binds and TPM2_GetRandom answers; the EK certificate in NV verifies
# against the local CA; an NV value written from the host survives virsh
# destroy and start, and virsh save and restore; the encrypted domain's
# save file holds no plaintext TPM state (the same search finds the value
# in the plain domain's); a changed secret keeps the domain from starting
# with qtpm's sentence and the image as it was; virsh undefine removes the
# state, unless --keep-tpm.
. "$(dirname "$0")/../lib.sh"
. "$SRC_PATH/tests/interop/tpm2-common.sh"
. "$SRC_PATH/tests/libvirt/libvirt-lib.sh"
# Every path below lies under LV_DIR: without the harness, touch nothing.
if [ -z "${LV_DIR:-}" ]; then
    not_ok "tests/libvirt/libvirt-lib.sh is loaded (run through tests/run.sh)"
    done_testing
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    # libvirtd's system instance and its QEMU user need root; CI runs as root.
    not_ok "the libvirt tests run as root (they start libvirtd's system instance)"
    done_testing
    exit 1
fi

COMPAT=$BUILD/swtpm-compat
# The opt-in of docs/libvirt.md: the front doors first on libvirtd's PATH.
LIBVIRTD_PATH=$COMPAT:/usr/sbin:/usr/bin:/sbin:/bin
# libvirt reports a TPM that dies at start-up only when its orphans are
# reaped at once (libvirt-lib.sh, LV_REAPER).
LV_LIBVIRTD_WRAPPER=$LV_REAPER
# The front doors' default CA directory, private like libvirt's folders,
# writable by libvirt's swtpm_user (tss) as docs/swtpm-compat.md says.
LV_PRIVATE_DIRS="$LV_PRIVATE_DIRS /var/lib/qtpm"
CA=$LV_DIR/var/lib/qtpm/localca
SWTPM_USER=tss
NV_INDEX=0x01500031
PW=qtpm-managed-secret-$RANDOM$RANDOM
SECRET_UUID=6dd3e4a5-1d76-44ce-961e-f1a3e5d1c0b7
PW_FILE=$SCRATCH/pw
CRB="<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"
ENC_CRB="<tpm model='tpm-crb'><backend type='emulator' version='2.0'><encryption secret='$SECRET_UUID'/></backend></tpm>"
printf %s "$PW" >"$PW_FILE"
# An NV payload that is easy to find in a save file: 32 bytes of text.
NV_PAYLOAD=$SCRATCH/nv.bin
printf 'QTPM-NV-%s' "$(head -c 12 /dev/urandom | xxd -p)" | head -c 32 >"$NV_PAYLOAD"

sum_of() { sha256sum "$1" | cut -d' ' -f1; }
quiet() { "$@" >/dev/null 2>&1; }

# state_dir NAME: where libvirt keeps NAME's TPM state, seen from the host.
state_dir() { echo "$LV_DIR/var/lib/libvirt/swtpm/$(lv_virsh domuuid "$1")/tpm2"; }
image_of() { echo "$(state_dir "$1")/tpm2-00.qcow2"; }
swtpm_log() { echo "$LV_DIR/var/log/swtpm/libvirt/qemu/$1-swtpm.log"; }

# host_export IMAGE [PASSPHRASE_FILE]: lv_host_export with the domain's key.
host_export() { lv_host_export "$1" ${2:+passphrase "$2"}; }
host_stop() { lv_host_stop; }

# ek_cert_verifies IMAGE [PASSPHRASE_FILE]: the RSA EK certificate at 0x01c00002 verifies
# against the local CA and names the domain; the persistent EK exists.
ek_cert_verifies() {
    local rc=0
    host_export "$@" || return 1
    timeout 30 tpm2_nvread 0x01c00002 -C o -o "$SCRATCH/ek.der" >/dev/null 2>&1 || rc=1
    timeout 30 tpm2_readpublic -c 0x81010001 >/dev/null 2>&1 || rc=1
    host_stop || rc=1
    [ "$rc" -eq 0 ] &&
        openssl x509 -inform DER -in "$SCRATCH/ek.der" -out "$SCRATCH/ek.pem" &&
        openssl verify -CAfile "$CA/swtpm-localca-rootca-cert.pem" \
            -untrusted "$CA/issuercert.pem" "$SCRATCH/ek.pem" >/dev/null
}

# nv_write IMAGE [PASSPHRASE_FILE]: NV_INDEX defined and NV_PAYLOAD written.
nv_write() {
    local rc=0
    host_export "$@" || return 1
    timeout 30 tpm2_nvdefine "$NV_INDEX" -C o -s 32 -a "ownerread|ownerwrite" \
        >/dev/null || rc=1
    [ "$rc" -eq 0 ] && { timeout 30 tpm2_nvwrite "$NV_INDEX" -C o -i "$NV_PAYLOAD" || rc=1; }
    host_stop && [ "$rc" -eq 0 ]
}

# nv_reads_back IMAGE [PASSPHRASE_FILE]
nv_reads_back() {
    host_export "$@" || return 1
    timeout 30 tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$SCRATCH/nv.out" >/dev/null ||
        { host_stop; return 1; }
    host_stop && cmp -s "$NV_PAYLOAD" "$SCRATCH/nv.out"
}

# run_guest NAME: virsh start; the guest boots, uses its TPM and powers off.
run_guest() {
    lv_start "$1" || { sed 's/^/# /' "$LV_DIR/$1.virsh"; lv_log 10; return 1; }
    lv_wait_shutoff "$1" 120 || return 1
    lv_guest_ok "$1" crb
}

# tpm_pid NAME: the pid in libvirt's pid file of NAME's TPM.
tpm_pid() { cat "$LV_DIR"/run/libvirt/qemu/swtpm/*-"$1"-swtpm.pid 2>/dev/null; }
# served_by_qtpm NAME: the process libvirt started for NAME's TPM, which
# serves its socket, is the build's qtpm.
SEEN_PIDS=()
served_by_qtpm() {
    local pid
    pid=$(tpm_pid "$1")
    SEEN_PIDS+=("$pid")
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$QTPM")" ] &&
        ls -l /proc/"$pid"/fd 2>/dev/null | grep -q socket
}

# save_restore NAME PASSPHRASE_FILE|"": started paused, saved to
# $LV_DIR/NAME.save, restored running; the guest then boots and uses its TPM.
save_restore() {
    local name=$1
    rm -f "$LV_DIR/$name.console" "$LV_DIR/$name.save"
    lv_virsh start --paused "$name" >"$LV_DIR/$name.virsh" 2>&1 &&
        lv_virsh save "$name" "$LV_DIR/$name.save" >>"$LV_DIR/$name.virsh" 2>&1 &&
        lv_wait_shutoff "$name" 30 ||
        { sed 's/^/# /' "$LV_DIR/$name.virsh"; return 1; }
}
restore_runs() {
    local name=$1
    lv_virsh restore --running "$LV_DIR/$name.save" >"$LV_DIR/$name.virsh" 2>&1 ||
        { sed 's/^/# /' "$LV_DIR/$name.virsh"; lv_log 10; return 1; }
    lv_wait_shutoff "$name" 120 && lv_guest_ok "$name" crb
}
# in_save NAME: the NV payload appears in NAME's save file as it is.
in_save() { grep -qaF "$(cat "$NV_PAYLOAD")" "$LV_DIR/$1.save"; }

mkdir -p "$CA"
chown "$SWTPM_USER:$SWTPM_USER" "$CA"
chmod 0750 "$CA"
check "libvirtd and virtlogd run with the front doors first on PATH" libvirt_start
check "the guest kernel and initramfs are ready for libvirt" lv_guest_files

# libvirt asked the front doors what they can do, and believed them.
check "swtpm --print-capabilities answers libvirt's probe" bash -c \
    "'$COMPAT/swtpm' socket --print-capabilities | jq -e '.features | index(\"cmdarg-pwd-fd\")' >/dev/null"

# 1. The plain domain.
check "the domain with a managed TPM is defined" lv_define plain "$CRB"
if lv_virsh start --paused plain >"$LV_DIR/plain.virsh" 2>&1; then
    ok "the domain starts (paused)"
    check "the process libvirt started for the TPM is qtpm, serving a socket" \
        served_by_qtpm plain
    lv_virsh destroy plain >/dev/null 2>&1
    lv_wait_shutoff plain 30
else
    not_ok "the domain starts (paused): $(cat "$LV_DIR/plain.virsh")"
    lv_log 20
fi
IMG=$(image_of plain)
check "libvirt ran qtpm's swtpm_setup: the state directory holds a qtpm image" \
    bash -c "'$QTPM_IMG' info --output json '$IMG' | jq -e '.\"tpm-version\" == \"2.0\" and .key == \"none\"' >/dev/null"
check "... and nothing else" test "$(ls -A "$(state_dir plain)")" = tpm2-00.qcow2
check "... owned by libvirt's swtpm user" test "$(stat -c %U "$IMG")" = "$SWTPM_USER"
check "the guest's tpm_crb binds the managed TPM and GetRandom answers" run_guest plain
check "the EK certificate in NV verifies against the local CA" ek_cert_verifies "$IMG"
check "... and names the domain" bash -c \
    "openssl x509 -in '$SCRATCH/ek.pem' -noout -subject | grep -q 'plain:'"
check "an NV value is written from the host" nv_write "$IMG"

# 2. virsh destroy in the middle of a run, then start: the state is kept.
if lv_start plain; then
    lv_wait_console plain '^QTPM-GUEST: kernel' 120
    check "virsh destroy ends the running domain" lv_destroy plain
else
    not_ok "the domain starts again: $(cat "$LV_DIR/plain.virsh")"
fi
check "... libvirt stopped its TPM" test -z "$(tpm_pid plain)"
check "after virsh destroy the domain starts and the guest uses its TPM" run_guest plain
check "the NV value reads back" nv_reads_back "$IMG"

# 3. save and restore, plain: the search finds the payload.
check "the plain domain is saved" save_restore plain
check "the plain domain's save file holds the NV payload (the search works)" in_save plain
check "the plain domain restores and the guest uses its TPM" restore_runs plain
check "... and the NV value reads back" nv_reads_back "$IMG"
check "qemu-img check finds no errors or leaks" qemu-img check -q "$IMG"

# 4. The encrypted domain.
cat >"$SCRATCH/secret.xml" <<EOF
<secret ephemeral='no' private='yes'>
  <uuid>$SECRET_UUID</uuid>
  <usage type='vtpm'><name>qtpm-managed-test</name></usage>
</secret>
EOF
check "a vtpm secret is defined" quiet lv_virsh secret-define "$SCRATCH/secret.xml"
check "... and given its value" quiet lv_virsh secret-set-value --secret "$SECRET_UUID" \
    --file "$PW_FILE" --plain
check "the domain with an encrypted managed TPM is defined" lv_define enc "$ENC_CRB"
check "the encrypted domain starts and the guest uses its TPM" run_guest enc
EIMG=$(image_of enc)
check "its image is a qtpm image with a passphrase key" bash -c \
    "'$QTPM_IMG' info --output json '$EIMG' | jq -e '.key == \"passphrase\"' >/dev/null"
check "... which is the secret's value" quiet "$QTPM_IMG" check --passphrase-file "$PW_FILE" "$EIMG"
check "the EK certificate of the encrypted TPM verifies against the local CA" \
    ek_cert_verifies "$EIMG" "$PW_FILE"
check "an NV value is written from the host" nv_write "$EIMG" "$PW_FILE"
check "the encrypted domain is saved" save_restore enc
check "its save file does not hold the NV payload" eval "! in_save enc"
check "... nor the passphrase" eval "! grep -qaF '$PW' '$LV_DIR/enc.save'"
check "the encrypted domain restores and the guest uses its TPM" restore_runs enc
check "... and the NV value reads back" nv_reads_back "$EIMG" "$PW_FILE"

# 5. A changed secret: qtpm refuses, libvirt reports it, the image is kept.
ESUM=$(sum_of "$EIMG")
printf %s "another-$PW" >"$SCRATCH/pw2"
check "the secret's value is changed" quiet lv_virsh secret-set-value \
    --secret "$SECRET_UUID" --file "$SCRATCH/pw2" --plain
check_fails "with the wrong secret virsh start fails" lv_start enc
sed "s/^/# /" "$LV_DIR/enc.virsh"; sed "s/^/# log: /" "$(swtpm_log enc)" | tail -n 3
check "libvirt's error carries qtpm's sentence" \
    grep -qF "swtpm died and reported: qtpm: -tpmdev id=tpm0: '/var/lib/libvirt/swtpm/$(lv_virsh domuuid enc)/tpm2/tpm2-00.qcow2': wrong key" \
    "$LV_DIR/enc.virsh"
check "the domain is shut off" test "$(lv_state enc)" = "shut off"
check "the image is byte-identical" test "$(sum_of "$EIMG")" = "$ESUM"
check "no TPM process is left" test -z "$(tpm_pid enc)"
check "the secret's value is restored" quiet lv_virsh secret-set-value \
    --secret "$SECRET_UUID" --file "$PW_FILE" --plain

# 6. undefine: --keep-tpm keeps the state, a plain undefine removes it.
EDIR=$(dirname "$(state_dir enc)")
PDIR=$(dirname "$(state_dir plain)")
check "virsh undefine --keep-tpm" lv_undefine enc --keep-tpm
check "... keeps the TPM state" test -f "$EIMG"
check "virsh undefine" lv_undefine plain
check "... removes the TPM state" test ! -e "$PDIR"
rm -rf "$EDIR"
quiet lv_virsh secret-undefine "$SECRET_UUID"

daemons="$LV_LIBVIRTD_PID $LV_VIRTLOGD_PID"
libvirt_stop
gone() { local p; for p in "$@"; do ! kill -0 "$p" 2>/dev/null || return 1; done; }
# shellcheck disable=SC2086
check "libvirtd and virtlogd have stopped" gone $daemons
# shellcheck disable=SC2086
check "the TPM processes libvirt started have exited" gone "${SEEN_PIDS[@]}"
done_testing
