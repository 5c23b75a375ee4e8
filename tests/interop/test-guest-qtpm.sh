#!/bin/bash
# A real Linux guest on a qtpm image: Debian's kernel and a busybox
# initramfs (tests/guest/build-guest.sh) boot under Debian's QEMU with
# -tpmdev emulator and qtpm -export swtpm behind it, once through tpm-tis
# and once through tpm-crb, on one keyed image. The guest's driver binds and
# a TPM2_GetRandom written to /dev/tpm0 gets rc 0 (tests/guest/boot-guest.sh);
# qtpm exits by itself on QEMU's CMD_SHUTDOWN, and the image stays clean.
. "$(dirname "$0")/../lib.sh"

if ! "$SRC_PATH/tests/guest/build-guest.sh" "$BUILD" >"$SCRATCH/build.log" 2>&1; then
    sed 's/^/# /' "$SCRATCH/build.log"
    not_ok "the guest kernel and initramfs are built"
    done_testing
    exit 1
fi
ok "the guest kernel and initramfs are built"

IMG=$SCRATCH/tpm.qcow2
KEY=$SCRATCH/tpm.key
head -c 32 /dev/urandom >"$KEY"
check "a keyed image is created" "$QTPM_IMG" create --key-file "$KEY" "$IMG"

# boot MODEL: qtpm exports the image on a fresh socket, the guest boots
# against it, and qtpm exits 0 once QEMU has sent CMD_SHUTDOWN.
boot() {
    local model=$1 sock=$SCRATCH/tpm-$1.sock pid i rc
    "$QTPM" -drive "file=$IMG,if=none,id=d0" \
        -object "secret,id=k0,file=$KEY,format=raw" \
        -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
        -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$sock" \
        >"$SCRATCH/qtpm-$model.log" 2>&1 &
    pid=$!
    bg_pid "$pid"
    wait_for_file "$sock" 100 || { diag "qtpm did not create $sock"; return 1; }
    if ! "$SRC_PATH/tests/guest/boot-guest.sh" "$BUILD" "$sock" "$model" \
            >"$SCRATCH/guest-$model.log" 2>&1; then
        sed 's/^/# /' "$SCRATCH/guest-$model.log" "$SCRATCH/qtpm-$model.log"
        kill "$pid" 2>/dev/null
        return 1
    fi
    grep '^QTPM-GUEST: ' "$SCRATCH/guest-$model.log" | sed 's/^/# /'
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        diag "qtpm still runs after QEMU exited"
        kill "$pid"
        return 1
    fi
    wait "$pid"
    rc=$?
    [ "$rc" -eq 0 ] || { diag "qtpm exited $rc"; sed 's/^/# /' "$SCRATCH/qtpm-$model.log"; }
    [ "$rc" -eq 0 ]
}

# hex FILE: the file as one line of hex digits.
hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }
# holds_run FILE RUN: FILE's bytes contain the bytes of RUN.
holds_run() { hex "$1" | grep -qF "$(hex "$2")"; }

check "a Linux guest uses the qtpm TPM through tpm-tis" boot tis
check "the same image serves the guest again through tpm-crb" boot crb
check "qtpm-img check finds the image intact" "$QTPM_IMG" check --key-file "$KEY" "$IMG"
check "qemu-img check finds no errors or leaks" qemu-img check -q "$IMG"
# What the guest's firmware and kernel made the TPM store is sealed on disk:
# a 64-byte run of the plaintext permanent state is in the dump, not in the image.
check "the permanent state is dumped with the key" \
    "$QTPM_IMG" dump --blob permanent --key-file "$KEY" "$IMG" "$SCRATCH/perm"
dd if="$SCRATCH/perm" of="$SCRATCH/run" bs=64 skip=8 count=1 2>/dev/null
check "a 64-byte run of the permanent state is found in the dump" holds_run "$SCRATCH/perm" "$SCRATCH/run"
check_fails "the image holds no plaintext run of the permanent state" holds_run "$IMG" "$SCRATCH/run"
done_testing
