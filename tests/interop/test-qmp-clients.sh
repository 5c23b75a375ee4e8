#!/bin/bash
# A QMP client cannot stall the TPM: 1000 connections, with qtpm out of file
# descriptors or not, leave the CPU idle and the next client is served; a
# client that never reads its replies is disconnected while tpm2-tools keep
# working through qtest.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"

cd "$SCRATCH" || exit 1
qemu-img create -q -f qcow2 tpm.qcow2 1M

# flood DIR PID: 1000 connections held open on DIR/m.sock while PID's CPU
# time is measured over a second, then all closed and one more client must
# get the greeting and an answer to query-status. Prints what it saw.
flood() {
    python3 - "$1/m.sock" "$2" <<'EOF'
import errno, json, resource, socket, sys, time
path, pid = sys.argv[1], sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))

def cpu_ticks():
    f = open('/proc/%s/stat' % pid).read().rsplit(')', 1)[1].split()
    return int(f[11]) + int(f[12])      # utime + stime

socks, connected = [], 0
for i in range(1000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
        connected += 1
    except BlockingIOError:
        pass                    # the backlog is full: still an attempt held open
    socks.append(s)
time.sleep(0.5)
t0 = cpu_ticks()
time.sleep(1.0)
used = cpu_ticks() - t0
hz = 100
print('# %d of 1000 connections got through; qtpm used %d ticks (of %d) in 1 s'
      % (connected, used, hz))
for s in socks:
    s.close()
time.sleep(0.1)

c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.settimeout(10)
c.connect(path)
f = c.makefile('rwb')
greeting = json.loads(f.readline())
f.write(b'{"execute": "qmp_capabilities"}\n{"execute": "query-status"}\n')
f.flush()
caps = json.loads(f.readline())
status = json.loads(f.readline())
print('# next client: %s' % json.dumps(status))
ok = used <= hz // 10 and 'QMP' in greeting and 'return' in caps and \
    status.get('return', {}).get('status') == 'running'
sys.exit(0 if ok else 1)
EOF
}

mkdir a
start_qtpm a tpm.qcow2 || exit 1
check "1000 QMP connections leave qtpm idle, and the next client is served" \
    flood a "$QTPM_PID"

# fd_limit_leaving PID N: lowers PID's descriptor limit so that N numbers
# below it are free.
fd_limit_leaving() {
    local pid=$1 want=$2 limit=0 free=0
    while [ $free -lt "$want" ] || [ -e "/proc/$pid/fd/$limit" ]; do
        [ -e "/proc/$pid/fd/$limit" ] || free=$((free + 1))
        limit=$((limit + 1))
        [ $free -eq "$want" ] && break
    done
    prlimit --pid "$pid" --nofile="$limit:$limit"
    diag "descriptor limit $limit ($want free)"
}
# Two free descriptors: two clients get in, the third accept() fails with
# EMFILE while the listening socket stays readable.
fd_limit_leaving "$QTPM_PID" 2
check "at the descriptor limit, 1000 connections leave qtpm idle; the next client is served" \
    flood a "$QTPM_PID"
check "qtpm still runs" kill -0 "$QTPM_PID"
check "qtpm said once that it could not accept" \
    test "$(grep -c 'cannot accept a client' a/qtpm.err)" -eq 1
qmp_quit a

# A client that sends commands and never reads: its replies pile up, it is
# disconnected, and meanwhile the TPM answers through qtest.
mkdir b
start_qtpm b tpm.qcow2 || exit 1
python3 - "$SCRATCH/b/m.sock" >b/deaf.out 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(1)
line = b'{"execute": "qmp_capabilities"}\n' + b'{"execute": "query-commands"}\n' * 64
t0, sent = time.time(), 0
while time.time() - t0 < 60:
    try:
        sent += s.send(line)
    except socket.timeout:
        continue
    except OSError as e:
        print('disconnected after %d bytes sent: %s' % (sent, e))
        sys.exit(0)
print('still connected after %d bytes' % sent)
sys.exit(1)
EOF
DEAF=$!
bg_pid $DEAF
use_tpm b
tools_work() {
    local i
    tpm startup -c || return 1
    for i in 1 2 3 4 5; do
        tpm getrandom 32 -o "$SCRATCH/r" || return 1
        tpm hash -g sha256 --hex -C o "$SCRATCH/tpm.qcow2" || return 1
    done
}
# Within 30 s, or the main loop is stuck writing to the client.
tools_work_in_time() {
    local i=0
    tools_work &
    local tw=$!
    bg_pid $tw
    while kill -0 $tw 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 $tw 2>/dev/null && { diag "tpm2-tools still waiting after 30 s"; return 1; }
    wait $tw
}
# Let the client fill its socket's buffer first.
sleep 1
check "tpm2-tools keep working through qtest while a QMP client does not read" \
    tools_work_in_time
check "the client that does not read is disconnected" wait "$DEAF"
diag "$(cat b/deaf.out)"
check "qtpm says why it dropped the client" \
    grep -q "qtpm: warning: -qmp: a client does not read its replies" b/qtpm.err
deaf_rss_bounded() {
    local rss
    rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$QTPM_PID/status")
    diag "qtpm peak RSS ${rss} KiB"
    [ "$rss" -lt 102400 ]
}
check "qtpm's memory stayed bounded" deaf_rss_bounded
check "the next QMP client is served" \
    bash -c "$(declare -f qmp); qmp b '{\"execute\": \"query-status\"}' | grep -q running"
check "quit" qmp_quit b

done_testing
