#!/bin/bash
# The qtpm demo (`make demo`): a TPM 2.0 whose state lives encrypted in a
# qcow2 image, driven by the stock tpm2-tools through qtpm-tis.
#   scripts/demo.sh BUILD_DIR
# Every step runs for real; the demo stops at the first one that fails.
set -u
BUILD=${1:-build}
SRC=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
for tool in qtpm qtpm-img qtpm-io qtpm-tis; do
    if [ ! -x "$BUILD/$tool" ]; then
        echo "demo: $BUILD/$tool is missing; run make first" >&2
        exit 1
    fi
done
export PATH="$BUILD:$PATH"

WORK=$(mktemp -d /tmp/qtpm-demo.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1

if [ -t 1 ]; then B=$'\e[1m' D=$'\e[2m' R=$'\e[0m'; else B= D= R=; fi

title() { printf '\n%s== %s ==%s\n' "$B" "$*" "$R"; }
say() { printf '%s\n' "$*"; }
die() {
    printf '\ndemo: FAILED: %s\n' "$*" >&2
    exit 1
}
# Output of a step, indented and dimmed.
indent() { sed "s/^/    $D/; s/\$/$R/"; }
# cmdline ARGS...: the words as one would type them, quoted where needed.
cmdline() {
    local out= w
    for w in "$@"; do
        case "$w" in
        *[!A-Za-z0-9_./:=,@%+-]*|'') out+=" '$w'" ;;
        *) out+=" $w" ;;
        esac
    done
    printf '%s' "${out# }"
}
# show CMD...: prints the command, runs it, prints its output.
show() {
    printf '$ %s\n' "$(cmdline "$@")"
    "$@" >"$WORK/out" 2>&1
    local rc=$?
    indent <"$WORK/out"
    [ $rc -eq 0 ] || die "$(cmdline "$@") (exit status $rc)"
}
# show_sh 'SHELL LINE': the same for a line with pipes or redirections.
show_sh() {
    printf '$ %s\n' "$1"
    bash -c "$1" >"$WORK/out" 2>&1
    local rc=$?
    indent <"$WORK/out"
    [ $rc -eq 0 ] || die "$1 (exit status $rc)"
}
# quietly CMD...: prints the command and runs it; output only on failure.
quietly() {
    printf '$ %s\n' "$(cmdline "$@")"
    "$@" >"$WORK/out" 2>&1 || { indent <"$WORK/out"; die "$(cmdline "$@")"; }
}

# The command line of qtpm, as a user would type it.
qtpm_args() {
    local key=$1
    echo -drive file=tpm.qcow2,if=none,id=d0 \
        -object "secret,id=k0,file=$key" \
        -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
        -device tpm-tis,tpmdev=tpm0 \
        -qtest unix:q.sock,server=on,wait=off \
        -qmp unix:m.sock,server=on,wait=off
}

# wait_started PID WHO ERRFILE STALLED SOCKET...: waits (10 s at most) until
# every SOCKET exists; stops the demo if PID exits first or time runs out.
wait_started() {
    local pid=$1 who=$2 err=$3 stalled=$4 i=0 s
    shift 4
    for s in "$@"; do
        until [ -S "$s" ]; do
            kill -0 "$pid" 2>/dev/null || die "$who did not start: $(cat "$err")"
            [ $i -lt 200 ] || die "$stalled"
            sleep 0.05
            i=$((i + 1))
        done
    done
}

start_qtpm() {
    rm -f q.sock m.sock
    # shellcheck disable=SC2046
    printf '$ qtpm %s &\n' "$(qtpm_args "$1")"
    qtpm $(qtpm_args "$1") 2>qtpm.err &
    QTPM_PID=$!
    PIDS+=("$QTPM_PID")
    wait_started "$QTPM_PID" qtpm qtpm.err "qtpm did not open its sockets" \
        q.sock m.sock
}

qmp_quit() {
    say "QMP (socat to m.sock): {\"execute\": \"qmp_capabilities\"} {\"execute\": \"quit\"}"
    printf '%s\n' '{"execute": "qmp_capabilities"}' '{"execute": "quit"}' |
        timeout 30 socat -t 5 - UNIX-CONNECT:m.sock >qmp.out 2>&1
    grep -v '"QMP"' qmp.out | indent
    local i=0
    while kill -0 "$QTPM_PID" 2>/dev/null; do
        [ $i -lt 300 ] || die "qtpm did not exit after quit"
        sleep 0.1
        i=$((i + 1))
    done
    wait "$QTPM_PID" || die "qtpm exited with status $?: $(cat qtpm.err)"
    say "qtpm has exited."
}

# tpm2-tools keep transient objects in the TPM when no resource manager sits
# in between; flush them after the tools that load objects.
flush() { tpm2_flushcontext -t >/dev/null 2>&1 || die "tpm2_flushcontext -t"; }

say "${B}qtpm demo${R}: a virtual TPM 2.0 (libtpms) behind a TIS register interface,"
say "whose state is kept encrypted in a qcow2 image. The stock tpm2-tools reach it"
say "through qtpm-tis, a TIS driver speaking QEMU's qtest protocol."
say "Working folder: $WORK (removed at the end)."

# ---------------------------------------------------------------------------
title "1. The block layer: qcow2 and file locks"
show qemu-img create -f qcow2 disk.qcow2 1M
show qtpm-io -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' disk.qcow2
say "A process holds the image (qtpm-io -c 'lock exclusive' ..., in the background);"
say "a second writer must be refused:"
qtpm-io -c 'lock exclusive' -c length -c 'sleep 60000' disk.qcow2 >holder.out 2>&1 &
HOLDER=$!
PIDS+=("$HOLDER")
i=0
until grep -q '^locked' holder.out; do
    kill -0 "$HOLDER" 2>/dev/null || die "the lock holder failed: $(cat holder.out)"
    [ $i -lt 200 ] || die "the lock holder did not take its lock"
    sleep 0.05
    i=$((i + 1))
done
printf "\$ qtpm-io -c 'write -P 0xcd 0 4k' disk.qcow2\n"
if qtpm-io -c 'write -P 0xcd 0 4k' disk.qcow2 >out 2>&1; then
    die "the second writer was not refused"
fi
indent <out
say "Refused, as it must be. Once the holder is gone the data is intact:"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
show qtpm-io -c 'read -P 0xab 0 64k' disk.qcow2
show qemu-img check disk.qcow2

# ---------------------------------------------------------------------------
title "2. An encrypted TPM image"
show_sh 'head -c 32 /dev/urandom > tpm.key    # a random 256-bit key'
show qtpm-img create --key-file tpm.key tpm.qcow2
start_qtpm tpm.key
say "tpm2-tools reach the TPM through qtpm-tis, as a tpm2-tss \"cmd\" TCTI:"
export TPM2TOOLS_TCTI="cmd:qtpm-tis --qtest $WORK/q.sock"
say "$ export TPM2TOOLS_TCTI=\"cmd:qtpm-tis --qtest q.sock\""

# ---------------------------------------------------------------------------
title "3. Using the TPM"
quietly tpm2_startup -c
show tpm2_getrandom --hex 16
echo
DIGEST=$(echo "boot loader v1.0" | sha256sum | cut -d' ' -f1)
say "Measure something into PCR 16 (PCR = SHA-256(PCR || digest)):"
quietly tpm2_pcrextend "16:sha256=$DIGEST"
show tpm2_pcrread sha256:16
EXPECTED=$({ head -c 32 /dev/zero; echo -n "$DIGEST" | xxd -r -p; } | sha256sum | cut -d' ' -f1)
grep -qi "0x$EXPECTED" out || die "PCR 16 is not SHA-256(zeros || digest)"
say "    ${D}(equals SHA-256(32 zero bytes || digest), computed outside the TPM)$R"

say "A storage key (derived from the TPM's seed) and a secret sealed under it:"
quietly tpm2_createprimary -C o -G ecc -c primary.ctx
flush
echo "The cake is in the second drawer." >secret.txt
quietly tpm2_create -C primary.ctx -i secret.txt -u seal.pub -r seal.priv
flush
quietly tpm2_load -C primary.ctx -u seal.pub -r seal.priv -c seal.ctx
flush
show tpm2_unseal -c seal.ctx
flush
rm -f seal.ctx primary.ctx
say "seal.pub and seal.priv hold the secret encrypted by the TPM; only this TPM"
say "can open them."

say "A monotonic counter in the TPM's non-volatile memory:"
quietly tpm2_nvdefine 0x01500016 -C o -s 8 -a "nt=counter|ownerread|ownerwrite"
quietly tpm2_nvincrement 0x01500016 -C o
quietly tpm2_nvincrement 0x01500016 -C o
show_sh 'tpm2_nvread 0x01500016 -C o -s 8 | xxd -p'
[ "$(tail -1 out)" = 0000000000000002 ] || die "the counter does not read 2"

# ---------------------------------------------------------------------------
title "4. Power off, power on"
say "QMP quit is a power cut: no TPM2_Shutdown. Every TPM command that changed"
say "permanent state was committed to the image before it answered."
qmp_quit
start_qtpm tpm.key
quietly tpm2_startup -c
say "The same primary key again: it is derived from the seed stored in the image."
quietly tpm2_createprimary -C o -G ecc -c primary.ctx
flush
quietly tpm2_load -C primary.ctx -u seal.pub -r seal.priv -c seal.ctx
flush
show tpm2_unseal -c seal.ctx
flush
cmp -s out secret.txt || die "the unsealed secret differs"
show_sh 'tpm2_nvread 0x01500016 -C o -s 8 | xxd -p'
[ "$(tail -1 out)" = 0000000000000002 ] || die "the counter did not survive"
say "    ${D}(the secret and the counter survived the restart)$R"
qmp_quit

# ---------------------------------------------------------------------------
title "5. The image"
show qtpm-img info --key-file tpm.key tpm.qcow2
show qemu-img check tpm.qcow2

# ---------------------------------------------------------------------------
title "6. A wrong key is refused"
show_sh 'head -c 32 /dev/urandom > wrong.key'
show sha256sum tpm.qcow2
BEFORE=$(sha256sum <tpm.qcow2)
printf '$ qtpm %s\n' "$(qtpm_args wrong.key)"
# shellcheck disable=SC2046
timeout 60 qtpm $(qtpm_args wrong.key) >out 2>&1
RC=$?
indent <out
[ $RC -eq 1 ] || die "qtpm with a wrong key exited with status $RC, not 1"
say "    ${D}(exit status 1)$R"
show sha256sum tpm.qcow2
[ "$BEFORE" = "$(sha256sum <tpm.qcow2)" ] || die "the refused start changed the image"
say "The image is unchanged."

# ---------------------------------------------------------------------------
title "7. Live migration: the key is checked before the target accepts"
# qmp SOCKET JSON: one QMP command after the handshake; prints its reply.
qmp() {
    printf '%s\n' '{"execute": "qmp_capabilities"}' "$2" |
        timeout 30 socat -t 1 - "UNIX-CONNECT:$1" 2>&1 | tr -d '\r' |
        awk '/"QMP"|"event"/ { next } /^\{"return"/ && !n++ { next } { print }'
}
# target_args KEY: a second qtpm on the same image, waiting for the stream.
target_args() {
    echo -drive file=tpm.qcow2,if=none,id=d0 \
        -object "secret,id=k0,file=$1" \
        -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
        -device tpm-tis,tpmdev=tpm0 \
        -qtest unix:q2.sock,server=on,wait=off \
        -qmp unix:m2.sock,server=on,wait=off \
        -incoming unix:mig.sock
}
start_qtpm tpm.key
quietly tpm2_startup -c
quietly tpm2_pcrextend "23:sha256=$DIGEST"
quietly tpm2_nvincrement 0x01500016 -C o
show tpm2_pcrread sha256:23
PCR23=$(grep -o '0x[0-9A-F]*' out)

say "A target with the wrong key opens the shared image as a reader, checks"
say "the key, and ends before it listens:"
printf '$ qtpm %s\n' "$(target_args wrong.key)"
# shellcheck disable=SC2046
timeout 60 qtpm $(target_args wrong.key) >out 2>&1
RC=$?
indent <out
[ $RC -eq 1 ] || die "the wrong-key target exited with status $RC, not 1"
[ ! -e mig.sock ] || die "the wrong-key target listened"
say "    ${D}(exit status 1; nothing ever listened on mig.sock)$R"
say "QMP to the source: migrate, then query-migrate:"
qmp m.sock '{"execute": "migrate", "arguments": {"uri": "unix:mig.sock"}}' | indent
sleep 0.5
qmp m.sock '{"execute": "query-migrate"}' >out
indent <out
grep -q '"failed"' out || die "the source's migration did not fail"
say "The source keeps running, its TPM answers:"
show tpm2_getrandom --hex 8
echo

say "Now a target with the right key:"
printf '$ qtpm %s &\n' "$(target_args tpm.key)"
# shellcheck disable=SC2046
qtpm $(target_args tpm.key) 2>target.err &
TARGET_PID=$!
PIDS+=("$TARGET_PID")
wait_started "$TARGET_PID" "the target" target.err "the target did not listen" \
    mig.sock m2.sock
qmp m.sock '{"execute": "migrate", "arguments": {"uri": "unix:mig.sock"}}' | indent
i=0
until qmp m.sock '{"execute": "query-migrate"}' >out && grep -q '"completed"\|"failed"' out; do
    [ $i -lt 100 ] || die "the migration did not finish"
    sleep 0.1
    i=$((i + 1))
done
indent <out
grep -q '"completed"' out || die "the migration failed: $(cat out target.err)"
say "    ${D}(downtime: from the TPM pause on the source to the target's go-ahead)$R"
export TPM2TOOLS_TCTI="cmd:qtpm-tis --qtest $WORK/q2.sock"
say "$ export TPM2TOOLS_TCTI=\"cmd:qtpm-tis --qtest q2.sock\"    # the target"
show tpm2_pcrread sha256:23
grep -q "$PCR23" out || die "PCR 23 did not migrate"
show_sh 'tpm2_nvread 0x01500016 -C o -s 8 | xxd -p'
[ "$(tail -1 out)" = 0000000000000003 ] || die "the counter did not migrate"
say "    ${D}(PCR 23, a volatile value, and the counter arrived; the target owns the image)$R"
kill "$QTPM_PID" "$TARGET_PID"
wait "$QTPM_PID" "$TARGET_PID" 2>/dev/null
show qemu-img check tpm.qcow2

title "A real VM: an unmodified QEMU boots Linux on the same image"
say "qtpm serves the TPM over swtpm's control and data socket protocol; Debian's"
say "QEMU reaches it with its own -tpmdev emulator, and a Linux guest (Debian's"
say "kernel, a busybox initramfs) talks to /dev/tpm0:"
quietly "$SRC/tests/guest/build-guest.sh" "$BUILD"
EXPORT_ARGS="-drive file=tpm.qcow2,if=none,id=d0 -object secret,id=k0,file=tpm.key \
-tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 -export swtpm,id=e0,tpmdev=tpm0,ctrl=unix:tpm.sock"
printf '$ qtpm %s &\n' "$EXPORT_ARGS"
# shellcheck disable=SC2086
qtpm $EXPORT_ARGS 2>export.err &
EXPORT_PID=$!
PIDS+=("$EXPORT_PID")
wait_started "$EXPORT_PID" "qtpm -export" export.err "qtpm did not open tpm.sock" tpm.sock
say "$ qemu-system-x86_64 -machine q35 -accel tcg -kernel vmlinuz -initrd initramfs.cpio.gz \\"
say "      -chardev socket,id=chrtpm,path=tpm.sock -tpmdev emulator,id=tpm0,chardev=chrtpm \\"
say "      -device tpm-tis,tpmdev=tpm0 ..."
GUEST_LOG=$WORK/guest.log "$SRC/tests/guest/boot-guest.sh" "$BUILD" "$WORK/tpm.sock" tis \
    >boot.out 2>&1 || { indent <boot.out; die "the guest did not use the TPM"; }
grep '^QTPM-GUEST: ' boot.out | grep -v 'dmesg: .*ACPI' | indent
i=0
while kill -0 "$EXPORT_PID" 2>/dev/null; do
    [ $i -lt 100 ] || die "qtpm did not exit after QEMU's CMD_SHUTDOWN"
    sleep 0.1
    i=$((i + 1))
done
wait "$EXPORT_PID" || die "qtpm -export exited with status $?: $(cat export.err)"
say "    ${D}(the guest's kernel bound tpm_tis and got an answer from the TPM; QEMU's$R"
say "    ${D}CMD_SHUTDOWN at power-off ended qtpm, the state is in the image)$R"
show qemu-img check tpm.qcow2

printf '\n%sDemo complete.%s Run "make check" for the test suites.\n' "$B" "$R"
