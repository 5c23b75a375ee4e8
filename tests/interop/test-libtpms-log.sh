#!/bin/bash
# libtpms's own error lines reach qtpm's log with qtpm's prefix and the
# -tpmdev's name, not raw on stderr: a permanent state with a broken magic
# handed over swtpm's control channel (swtpm_ioctl --load) makes libtpms
# complain while CMD_INIT fails.
. "$(dirname "$0")/../lib.sh"

cd "$SCRATCH" || exit 1
mkdir st
swtpm socket --tpm2 --tpmstate "dir=$SCRATCH/st" \
    --ctrl "type=unixio,path=$SCRATCH/sw.ctrl" \
    --flags not-need-init,startup-clear --terminate >swtpm.log 2>&1 &
bg_pid $!
wait_for_file "$SCRATCH/sw.ctrl" || exit 1
swtpm_ioctl --unix "$SCRATCH/sw.ctrl" -s
wait_for_file st/tpm2-00.permall || exit 1
# The first byte of libtpms's PERSISTENT_ALL magic, behind swtpm's header.
cp st/tpm2-00.permall bad.permall
printf '\x00' | dd of=bad.permall bs=1 seek=18 conv=notrunc 2>/dev/null

qemu-img create -q -f qcow2 tpm.qcow2 1M
"$QTPM" -drive file=tpm.qcow2,if=none,id=d0 -tpmdev libtpms,id=tpm0,nvram=d0 \
    -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$SCRATCH/c.sock" -D qtpm.log \
    >qtpm.out 2>qtpm.err &
QTPM_PID=$!
bg_pid $QTPM_PID
wait_for_file "$SCRATCH/c.sock" 300 || { diag "$(cat qtpm.err)"; exit 1; }
swtpm_ioctl --unix "$SCRATCH/c.sock" --stop
check "the broken state blob is taken" \
    swtpm_ioctl --unix "$SCRATCH/c.sock" --load permanent bad.permall
check_fails "CMD_INIT fails on it" bash -c "swtpm_ioctl --unix $SCRATCH/c.sock -i 2>/dev/null"
sleep 0.3
kill -TERM "$QTPM_PID"
wait "$QTPM_PID"
diag "$(cat qtpm.err)"
check "libtpms's line is on stderr with qtpm's prefix and the -tpmdev" \
    grep -q "^qtpm: warning: -tpmdev id=tpm0: libtpms/tpm2: .*Invalid magic" qtpm.err
check "no line on stderr is libtpms's own" bash -c "! grep -v '^qtpm: ' qtpm.err"
check "the -D log has it too" grep -q "tpmdev id=tpm0: libtpms/tpm2: .*Invalid magic" qtpm.log

done_testing
