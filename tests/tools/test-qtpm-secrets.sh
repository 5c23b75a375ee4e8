#!/bin/bash
# build/qtpm's secrets and process hygiene: a secret that never ends or never
# arrives does not hold or grow start-up, SIGTERM and SIGINT end start-up
# wherever it waits, pipes still carry secrets, data= leaves the process
# list, and the process is not dumpable unless -dumpable on says so.
. "$(dirname "$0")/../lib.sh"

cd "$SCRATCH" || exit 1
ERR=$SCRATCH/err
OUT=$SCRATCH/out
head -c 32 /dev/urandom >key.bin
qemu-img create -q -f qcow2 tpm.qcow2 1M

run_qtpm() { timeout 60 "$QTPM" "$@" >"$OUT" 2>"$ERR"; }

# start_qtpm NAME ARGS...: qtpm in the background with a QMP socket NAME.sock;
# waits until it listens (start-up finished).
start_qtpm() {
    local name=$1; shift
    rm -f "$SCRATCH/$name.sock"
    "$QTPM" "$@" -qmp "unix:$SCRATCH/$name.sock,server=on,wait=off" \
        >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" &
    QTPM_PID=$!
    bg_pid $QTPM_PID
    wait_for_file "$SCRATCH/$name.sock" 300
}
stop_qtpm() { kill -TERM "$QTPM_PID"; wait "$QTPM_PID"; }

TPM_ARGS=(-drive file=tpm.qcow2,if=none,id=drive0
          -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0
          -device tpm-tis,tpmdev=tpm0)

start_qtpm first -object secret,id=key0,file=key.bin "${TPM_ARGS[@]}"
check "qtpm formats the image with a key from a file" stop_qtpm
SUM=$(sha256sum <tpm.qcow2)

# refused TEXT ARGS...: status 1 within 10 s, one line on stderr holding
# TEXT, the image unchanged.
refused() {
    local text=$1; shift
    run_qtpm "$@"
    local rc=$? ok=1
    [ $rc -eq 1 ] || { diag "exit status $rc"; ok=0; }
    [ "$(wc -l <"$ERR")" -eq 1 ] || { diag "stderr: $(cat "$ERR")"; ok=0; }
    grep -qF -- "$text" "$ERR" || { diag "stderr: $(cat "$ERR")"; ok=0; }
    [ "$(sha256sum <tpm.qcow2)" = "$SUM" ] || { diag "image changed"; ok=0; }
    [ $ok -eq 1 ]
}

# /dev/zero never ends: refused after the limit, in bounded memory and time.
zero_bounded() {
    local t0=$SECONDS
    /usr/bin/time -f %M -o "$SCRATCH/rss" \
        "$QTPM" -object secret,id=key0,file=/dev/zero "${TPM_ARGS[@]}" \
        >"$OUT" 2>"$ERR"
    local rc=$? rss
    rss=$(tail -1 "$SCRATCH/rss")
    diag "/dev/zero: status $rc, peak RSS ${rss} KiB, $((SECONDS - t0)) s"
    [ $rc -eq 1 ] && [ "$rss" -lt 65536 ] && [ $((SECONDS - t0)) -lt 10 ] &&
        grep -qF "qtpm: -object id=key0: secret 'key0': '/dev/zero' holds more than 8192 bytes, the limit for a secret" "$ERR"
}
check "/dev/zero as a secret is refused in bounded time and memory" zero_bounded
check "the image is unchanged after /dev/zero" \
    test "$(sha256sum <tpm.qcow2)" = "$SUM"
head -c 8193 /dev/urandom >big.bin
check "a secret file above 8192 bytes is refused" \
    refused "secret 'key0': 'big.bin' holds more than 8192 bytes" \
    -object secret,id=key0,file=big.bin "${TPM_ARGS[@]}"
# The data= warning comes first, then the refusal.
data_too_big() {
    run_qtpm -object secret,id=key0,data="$(head -c 8193 /dev/zero | tr '\0' a)" \
        "${TPM_ARGS[@]}"
    [ $? -eq 1 ] && [ "$(wc -l <"$ERR")" -eq 2 ] &&
        grep -qF "qtpm: -object id=key0: secret 'key0': the data holds more than 8192 bytes, the limit for a secret" "$ERR" &&
        [ "$(sha256sum <tpm.qcow2)" = "$SUM" ]
}
check "data= above 8192 bytes is refused" data_too_big

# A FIFO nobody writes to is refused at once instead of holding start-up.
mkfifo nowriter.fifo
fifo_refused_at_once() {
    local t0=$SECONDS
    refused "secret 'key0': 'nowriter.fifo' is a pipe that nothing was written to" \
        -object secret,id=key0,file=nowriter.fifo "${TPM_ARGS[@]}" &&
        [ $((SECONDS - t0)) -lt 5 ]
}
check "a FIFO without a writer is refused at once" fifo_refused_at_once

# A FIFO whose writer never writes holds start-up in read(); a signal ends it.
# $1: the signal.
signal_ends_blocked_read() {
    local sig=$1 fifo=$SCRATCH/silent-$1.fifo holder rc i=0
    mkfifo "$fifo"
    sleep 600 <>"$fifo" &
    holder=$!
    bg_pid $holder
    "$QTPM" -object secret,id=key0,file="$fifo" "${TPM_ARGS[@]}" >"$OUT" 2>"$ERR" &
    QTPM_PID=$!
    bg_pid $QTPM_PID
    # Blocked in read() of the FIFO: the kernel says pipe_read.
    while [ $i -lt 50 ] && ! grep -q pipe_read "/proc/$QTPM_PID/wchan" 2>/dev/null; do
        sleep 0.1; i=$((i + 1))
    done
    grep -q pipe_read "/proc/$QTPM_PID/wchan" || diag "wchan: $(cat /proc/$QTPM_PID/wchan)"
    kill -"$sig" "$QTPM_PID"
    i=0
    while [ $i -lt 30 ] && kill -0 "$QTPM_PID" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$QTPM_PID" 2>/dev/null && { diag "still running after SIG$sig"; return 1; }
    wait "$QTPM_PID"
    rc=$?
    kill "$holder"
    [ $rc -eq 1 ] && grep -q "terminating on signal" "$ERR" &&
        [ "$(sha256sum <tpm.qcow2)" = "$SUM" ]
}
check "SIGTERM ends start-up blocked reading a secret's FIFO" signal_ends_blocked_read TERM
check "SIGINT ends start-up blocked reading a secret's FIFO" signal_ends_blocked_read INT

# Pipes still carry secrets, as libvirt passes them: /dev/fd/N and
# /proc/self/fd/N of an inherited pipe.
pipe_secret() {
    local path=$1
    start_qtpm pipe -object secret,id=key0,file="$path" "${TPM_ARGS[@]}" &&
        stop_qtpm
}
check "a secret through /dev/fd/N of a process substitution" \
    pipe_secret <(cat key.bin)
fd_pipe_secret() {
    cat key.bin | {
        start_qtpm pipe -object secret,id=key0,file=/proc/self/fd/3 "${TPM_ARGS[@]}" 3<&0 &&
            stop_qtpm
    }
}
check "a secret through /proc/self/fd/3 of a pipe" fd_pipe_secret

# data= is kept, warned about once, and gone from /proc/PID/cmdline.
HEXKEY=$(od -An -tx1 key.bin | tr -d ' \n')
data_scrubbed() {
    start_qtpm data -object secret,id=key0,data="$HEXKEY",format=hex "${TPM_ARGS[@]}" ||
        return 1
    local ok=1
    tr '\0' ' ' <"/proc/$QTPM_PID/cmdline" >"$SCRATCH/cmdline"
    grep -q "$HEXKEY" "$SCRATCH/cmdline" && { diag "key in cmdline"; ok=0; }
    grep -q "id=key0,data=x*,format=hex" "$SCRATCH/cmdline" ||
        { diag "cmdline: $(cat "$SCRATCH/cmdline")"; ok=0; }
    [ "$(grep -c 'data= shows the secret to other users' "$SCRATCH/data.err")" -eq 1 ] ||
        { diag "stderr: $(cat "$SCRATCH/data.err")"; ok=0; }
    stop_qtpm || ok=0
    [ $ok -eq 1 ]
}
check "data= works, warns once and leaves /proc/PID/cmdline" data_scrubbed

check "-dumpable maybe is refused" \
    refused "qtpm: -dumpable maybe: give 'on' or 'off'" -dumpable maybe

# A crash writes no core by default.
# $1: "core" when one must be written, "none" when not.
core_after_abort() {
    local want=$1; shift
    local dir=$SCRATCH/core-$want
    mkdir -p "$dir"
    (
        cd "$dir" && ulimit -c unlimited &&
        exec "$QTPM" "$@" -object secret,id=key0,file="$SCRATCH/key.bin" \
            -drive file="$SCRATCH/tpm.qcow2",if=none,id=drive0 \
            -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0 \
            -device tpm-tis,tpmdev=tpm0 \
            -qmp "unix:$dir/q.sock,server=on,wait=off"
    ) >"$OUT" 2>"$ERR" &
    QTPM_PID=$!
    bg_pid $QTPM_PID
    wait_for_file "$dir/q.sock" 300 || return 1
    kill -ABRT "$QTPM_PID"
    wait "$QTPM_PID"
    local cores
    cores=$(find "$dir" -mindepth 1 -name 'core*' | head -1)
    if [ "$want" = none ]; then
        [ -z "$cores" ] || { diag "core written: $cores"; return 1; }
        return 0
    fi
    [ -n "$cores" ] || { diag "no core written"; return 1; }
    # The secret's pages are left out of the dump.
    CORE_FILE=$cores
}
if [ "$(cat /proc/sys/kernel/core_pattern)" = core ]; then
    check "SIGABRT writes no core by default" core_after_abort none
    check "with -dumpable on, SIGABRT writes a core" core_after_abort core -dumpable on
    key_not_in_core() {
        python3 - "$CORE_FILE" key.bin <<'EOF'
import sys
core = open(sys.argv[1], 'rb').read()
key = open(sys.argv[2], 'rb').read()
n = core.count(key)
print("# the key appears %d times in the %d-byte core" % (n, len(core)))
sys.exit(0 if n == 0 else 1)
EOF
    }
    check "the dump does not hold the key" key_not_in_core
    # The same for a passphrase: its secret, the store's copy, PBKDF2's
    # keyed HMAC state.
    key_not_in_core_of() {
        python3 - "$CORE_FILE" "$1" <<'EOF'
import sys
core = open(sys.argv[1], 'rb').read()
key = open(sys.argv[2], 'rb').read()
n = core.count(key)
print("# %s appears %d times in the %d-byte core" % (sys.argv[2], n, len(core)))
sys.exit(0 if n == 0 else 1)
EOF
    }
    passphrase_not_in_core() {
        local dir=$SCRATCH/core-pass
        mkdir -p "$dir"
        printf 'a passphrase only this test knows' >pass
        qemu-img create -q -f qcow2 pass.qcow2 1M
        (
            cd "$dir" && ulimit -c unlimited &&
            exec "$QTPM" -dumpable on -object secret,id=p0,file="$SCRATCH/pass" \
                -drive file="$SCRATCH/pass.qcow2",if=none,id=drive0 \
                -tpmdev libtpms,id=tpm0,nvram=drive0,passphrase-secret=p0 \
                -device tpm-tis,tpmdev=tpm0 \
                -qmp "unix:$dir/q.sock,server=on,wait=off"
        ) >"$OUT" 2>"$ERR" &
        QTPM_PID=$!
        bg_pid $QTPM_PID
        wait_for_file "$dir/q.sock" 300 || return 1
        kill -ABRT "$QTPM_PID"
        wait "$QTPM_PID"
        CORE_FILE=$(find "$dir" -mindepth 1 -name 'core*' | head -1)
        [ -n "$CORE_FILE" ] && key_not_in_core_of pass
    }
    check "a dump does not hold the passphrase" passphrase_not_in_core
else
    diag "core_pattern is not 'core': the core file checks rely on Dumpable"
fi

# Same-user /proc/PID/mem (what gcore reads): refused unless -dumpable on.
NOBODY_DIR=$SCRATCH/nobody
mkdir -m 0755 "$NOBODY_DIR"
chmod 0755 "$SCRATCH"
cp key.bin "$NOBODY_DIR/key.bin"
qemu-img create -q -f qcow2 "$NOBODY_DIR/tpm.qcow2" 1M
chown -R nobody: "$NOBODY_DIR"
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
# $1: "refused" or "allowed"; the rest: qtpm's extra options. A
# non-dumpable process's /proc/PID files belong to root; the read of
# /proc/PID/mem (what gcore does) is refused to its own user.
read_mem_as_nobody() {
    local want=$1; shift
    "${NOBODY[@]}" "$QTPM" "$@" -object secret,id=key0,file="$NOBODY_DIR/key.bin" \
        -drive file="$NOBODY_DIR/tpm.qcow2",if=none,id=drive0 \
        -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0 \
        -device tpm-tis,tpmdev=tpm0 \
        -qmp "unix:$NOBODY_DIR/q.sock,server=on,wait=off" >"$OUT" 2>"$ERR" &
    QTPM_PID=$!
    bg_pid $QTPM_PID
    wait_for_file "$NOBODY_DIR/q.sock" 300 || { diag "$(cat "$ERR")"; return 1; }
    local addr rc owner
    owner=$(stat -c %U "/proc/$QTPM_PID/status")
    addr=$(awk '$2 ~ /^r/ { split($1, a, "-"); print a[1]; exit }' "/proc/$QTPM_PID/maps")
    "${NOBODY[@]}" dd if="/proc/$QTPM_PID/mem" of=/dev/null bs=16 count=1 \
        iflag=skip_bytes skip=$((16#$addr)) 2>"$SCRATCH/mem.err"
    rc=$?
    diag "as nobody: /proc/PID/status owned by $owner; reading /proc/PID/mem: status $rc $(grep -v records "$SCRATCH/mem.err" | tail -1)"
    kill -TERM "$QTPM_PID"
    wait "$QTPM_PID"
    rm -f "$NOBODY_DIR/q.sock"
    if [ "$want" = refused ]; then
        [ $rc -ne 0 ] && [ "$owner" = root ]
    else
        [ $rc -eq 0 ] && [ "$owner" = nobody ]
    fi
}
check "not dumpable: the same user cannot read /proc/PID/mem" read_mem_as_nobody refused
check "-dumpable on: the same user can (so the refusal is the setting's)" \
    read_mem_as_nobody allowed -dumpable on

# qtpm-img is not dumpable either: held reading a key from a silent FIFO,
# its /proc/PID files belong to root although it runs as nobody.
qtpm_img_not_dumpable() {
    local fifo=$NOBODY_DIR/silent.fifo holder pid owner i=0
    mkfifo -m 0666 "$fifo"
    sleep 600 <>"$fifo" &
    holder=$!
    bg_pid $holder
    "${NOBODY[@]}" "$QTPM_IMG" info --passphrase-file "$fifo" "$NOBODY_DIR/tpm.qcow2" \
        >"$OUT" 2>"$ERR" &
    pid=$!
    bg_pid $pid
    while [ $i -lt 50 ] && ! grep -q pipe_read "/proc/$pid/wchan" 2>/dev/null; do
        sleep 0.1; i=$((i + 1))
    done
    owner=$(stat -c %U "/proc/$pid/status")
    kill "$pid" "$holder"
    wait "$pid" 2>/dev/null
    diag "qtpm-img as nobody: /proc/PID/status owned by $owner"
    [ "$owner" = root ]
}
check "qtpm-img is not dumpable" qtpm_img_not_dumpable

done_testing
