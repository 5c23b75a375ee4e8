#!/bin/bash
# The swtpm export's control socket out of file descriptors: a waiting
# client does not make qtpm spin on accept(), and is served once a
# descriptor is free again.
. "$(dirname "$0")/../lib.sh"

cd "$SCRATCH" || exit 1
qemu-img create -q -f qcow2 tpm.qcow2 1M
"$QTPM" -drive file=tpm.qcow2,if=none,id=d0 -tpmdev libtpms,id=tpm0,nvram=d0 \
    -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$SCRATCH/ctrl.sock" \
    >qtpm.out 2>qtpm.err &
QTPM_PID=$!
bg_pid $QTPM_PID
wait_for_file "$SCRATCH/ctrl.sock" 300 || { diag "$(cat qtpm.err)"; exit 1; }

# No descriptor below the limit is free.
limit=0
while [ -e "/proc/$QTPM_PID/fd/$limit" ]; do limit=$((limit + 1)); done
HARD=$(awk '/^Max open files/ { print $5 }' "/proc/$QTPM_PID/limits")
prlimit --pid "$QTPM_PID" --nofile="$limit:$HARD"
diag "descriptor limit $limit (none free)"

# A client connects (queued: accept() fails with EMFILE); qtpm's CPU time
# over a second; then the limit goes up and the client's CMD_GET_CAPABILITY
# must be answered.
check "a queued control client at the descriptor limit leaves qtpm idle, and is served later" \
    python3 - "$SCRATCH/ctrl.sock" "$QTPM_PID" "$HARD" <<'EOF'
import socket, struct, subprocess, sys, time
path, pid, hard = sys.argv[1], sys.argv[2], sys.argv[3]
def ticks():
    f = open('/proc/%s/stat' % pid).read().rsplit(')', 1)[1].split()
    return int(f[11]) + int(f[12])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
time.sleep(0.3)
t0 = ticks()
time.sleep(1.0)
used = ticks() - t0
print('# qtpm used %d ticks (of 100) in 1 s at the limit' % used)
subprocess.run(['prlimit', '--pid', pid, '--nofile=%s:%s' % (hard, hard)], check=True)
s.settimeout(10)
s.sendall(struct.pack('>I', 1))          # CMD_GET_CAPABILITY
answer = b''
while len(answer) < 8:
    chunk = s.recv(8 - len(answer))
    if not chunk:
        break
    answer += chunk
result, caps = struct.unpack('>II', answer) if len(answer) == 8 else (None, 0)
print('# CMD_GET_CAPABILITY: result %s, capabilities 0x%x' % (result, caps))
sys.exit(0 if used <= 10 and result == 0 and caps else 1)
EOF
check "qtpm still runs" kill -0 "$QTPM_PID"
kill -TERM "$QTPM_PID"
check "SIGTERM ends it with status 0" wait "$QTPM_PID"

done_testing
