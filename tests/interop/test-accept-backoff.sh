#!/bin/bash
# Listening sockets out of file descriptors (the swtpm export's control
# and data sockets, qtest): a waiting client does not make qtpm spin on
# accept(), and is served once a descriptor is free again.
. "$(dirname "$0")/../lib.sh"

cd "$SCRATCH" || exit 1
qemu-img create -q -f qcow2 tpm.qcow2 1M
qemu-img create -q -f qcow2 tis.qcow2 1M

# at_limit PID SOCKET KIND: no descriptor below PID's limit is free; a
# client connects to SOCKET (queued: accept() fails with EMFILE); PID's CPU
# time over a second must stay low; then the limit goes up and the client's
# request must be answered. KIND: ctrl (CMD_GET_CAPABILITY), data (a TPM
# command framed as QEMU sends it), qtest (a register read).
at_limit() {
    local pid=$1 sock=$2 kind=$3 limit=0 hard
    while [ -e "/proc/$pid/fd/$limit" ]; do limit=$((limit + 1)); done
    hard=$(awk '/^Max open files/ { print $5 }' "/proc/$pid/limits")
    prlimit --pid "$pid" --nofile="$limit:$hard"
    diag "$kind: descriptor limit $limit (none free)"
    python3 - "$sock" "$pid" "$hard" "$kind" <<'EOF2'
import socket, struct, subprocess, sys, time
path, pid, hard, kind = sys.argv[1:5]
def ticks():
    f = open('/proc/%s/stat' % pid).read().rsplit(')', 1)[1].split()
    return int(f[11]) + int(f[12])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
time.sleep(0.3)
t0 = ticks()
time.sleep(1.0)
used = ticks() - t0
print('# %s: qtpm used %d ticks (of 100) in 1 s at the limit' % (kind, used))
subprocess.run(['prlimit', '--pid', pid, '--nofile=%s:%s' % (hard, hard)], check=True)
s.settimeout(10)
if kind == 'ctrl':
    s.sendall(struct.pack('>I', 1))          # CMD_GET_CAPABILITY
    want = 8
elif kind == 'data':
    # TPM2_GetRandom(8): tag, size, ordinal, bytesRequested
    s.sendall(struct.pack('>HIIH', 0x8001, 12, 0x17b, 8))
    want = 10
else:
    s.sendall(b'readl 0xfed40f00\n')
    want = 3
answer = b''
while len(answer) < want:
    chunk = s.recv(want - len(answer))
    if not chunk:
        break
    answer += chunk
print('# %s: answer %s' % (kind, answer.hex()))
ok = len(answer) == want
if kind == 'ctrl':
    ok = ok and struct.unpack('>II', answer) [0] == 0
elif kind == 'qtest':
    ok = ok and answer == b'OK '
sys.exit(0 if used <= 10 and ok else 1)
EOF2
}

"$QTPM" -drive file=tpm.qcow2,if=none,id=d0 -tpmdev libtpms,id=tpm0,nvram=d0 \
    -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$SCRATCH/ctrl.sock,data=unix:$SCRATCH/data.sock" \
    >qtpm.out 2>qtpm.err &
QTPM_PID=$!
bg_pid $QTPM_PID
wait_for_file "$SCRATCH/ctrl.sock" 300 || { diag "$(cat qtpm.err)"; exit 1; }

check "a queued control client at the descriptor limit leaves qtpm idle, and is served later" \
    at_limit "$QTPM_PID" "$SCRATCH/ctrl.sock" ctrl
check "a queued data client at the descriptor limit leaves qtpm idle, and is served later" \
    at_limit "$QTPM_PID" "$SCRATCH/data.sock" data
check "qtpm still runs" kill -0 "$QTPM_PID"
kill -TERM "$QTPM_PID"
check "SIGTERM ends it with status 0" wait "$QTPM_PID"

"$QTPM" -drive file=tis.qcow2,if=none,id=d0 -tpmdev libtpms,id=tpm0,nvram=d0 \
    -device tpm-tis,tpmdev=tpm0 -qtest "unix:$SCRATCH/q.sock,server=on,wait=off" \
    >tis.out 2>tis.err &
TIS_PID=$!
bg_pid $TIS_PID
wait_for_file "$SCRATCH/q.sock" 300 || { diag "$(cat tis.err)"; exit 1; }
check "a queued qtest client at the descriptor limit leaves qtpm idle, and is served later" \
    at_limit "$TIS_PID" "$SCRATCH/q.sock" qtest
kill -TERM "$TIS_PID"
check "SIGTERM ends the qtest one with status 0" wait "$TIS_PID"

done_testing
