#!/bin/bash
# build/qtpm's command line: every wrong option, missing reference, locked
# image and wrong key stops qtpm with exit status 1 and one sentence naming
# the option, and leaves the image byte for byte unchanged.
. "$(dirname "$0")/../lib.sh"

cd "$SCRATCH" || exit 1
ERR=$SCRATCH/err
OUT=$SCRATCH/out
head -c 32 /dev/urandom >key.bin
head -c 32 /dev/urandom >other.bin
head -c 31 /dev/urandom >short.bin
qemu-img create -q -f qcow2 tpm.qcow2 1M

# run_qtpm ARGS...: runs qtpm in the foreground (it must exit by itself).
run_qtpm() { timeout 60 "$QTPM" "$@" >"$OUT" 2>"$ERR"; }

# start_qtpm NAME ARGS...: starts qtpm with a QMP socket NAME.sock and waits
# until it listens (so start-up has finished).
start_qtpm() {
    local name=$1; shift
    rm -f "$SCRATCH/$name.sock"
    "$QTPM" "$@" -qmp "unix:$SCRATCH/$name.sock,server=on,wait=off" \
        >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" &
    QTPM_PID=$!
    bg_pid $QTPM_PID
    wait_for_file "$SCRATCH/$name.sock" 300
}

# stop_qtpm: SIGTERM and the exit status.
stop_qtpm() { kill -TERM "$QTPM_PID"; wait "$QTPM_PID"; }

TPM_ARGS=(-drive file=tpm.qcow2,if=none,id=drive0
          -object secret,id=key0,file=key.bin
          -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0
          -device tpm-tis,tpmdev=tpm0)

# The first start formats the blank image and manufactures the TPM.
start_qtpm first "${TPM_ARGS[@]}"
check "qtpm starts on a blank image" kill -0 "$QTPM_PID"
check "SIGTERM shuts qtpm down with status 0" stop_qtpm
check "the socket is removed at exit" test ! -e "$SCRATCH/first.sock"
check "the image now holds the TPM's permanent state" \
    bash -c "'$QTPM_IMG' info --key-file key.bin tpm.qcow2 | grep -q permanent"
SUM=$(sha256sum <tpm.qcow2)

# fails_with TEXT ARGS...: exit status 1, exactly one line on stderr that
# starts with "qtpm: " and contains TEXT, nothing on stdout, and the image
# unchanged.
fails_with() {
    local text=$1; shift
    run_qtpm "$@"
    local rc=$?
    local ok=1
    [ $rc -eq 1 ] || { diag "exit status $rc"; ok=0; }
    [ "$(wc -l <"$ERR")" -eq 1 ] || { diag "stderr: $(cat "$ERR")"; ok=0; }
    grep -q '^qtpm: ' "$ERR" || ok=0
    grep -qF -- "$text" "$ERR" || { diag "stderr: $(cat "$ERR")"; ok=0; }
    [ ! -s "$OUT" ] || { diag "stdout: $(cat "$OUT")"; ok=0; }
    [ "$(sha256sum <tpm.qcow2)" = "$SUM" ] || { diag "image changed"; ok=0; }
    [ $ok -eq 1 ]
}

# Options.
check "unknown option" fails_with "qtpm: -foo: invalid option" -foo
check "not an option" fails_with "qtpm: stray: not an option" stray
check "missing argument" fails_with "qtpm: -drive: requires an argument" -drive
check "unknown -drive parameter" \
    fails_with "qtpm: -drive id=d: 'cache' is not a parameter of -drive" \
    -drive file=tpm.qcow2,if=none,id=d,cache=none
check "-drive without id" fails_with "qtpm: -drive file=tpm.qcow2: parameter 'id' is missing" \
    -drive file=tpm.qcow2
check "-drive without file" fails_with "parameter 'file' is missing" -drive if=none,id=d
check "-drive if=ide" fails_with "if=ide is not supported" -drive file=tpm.qcow2,if=ide,id=d
check "-drive format=vmdk" fails_with "format 'vmdk' is not qcow2 or raw" \
    -drive file=tpm.qcow2,if=none,id=d,format=vmdk
check "-drive locking=maybe" fails_with "'locking' expects 'on' or 'off'" \
    -drive file=tpm.qcow2,if=none,id=d,locking=maybe
check "-drive file that does not exist" fails_with "qtpm: -drive id=d: " \
    -drive file=nonexistent.qcow2,if=none,id=d
check "duplicate drive id" fails_with "id 'd' is used twice" \
    -drive file=tpm.qcow2,if=none,id=d -drive file=tpm.qcow2,if=none,id=d
check "parameter given twice" fails_with "parameter 'id' is given twice" \
    -tpmdev null,id=a,id=b
check "unknown backend" \
    fails_with "qtpm: -tpmdev id=t: 'foo' is not a TPM backend type (see -tpmdev help)" \
    -tpmdev foo,id=t
check "-tpmdev without a type" fails_with "qtpm: -tpmdev id=t: the backend type is missing" \
    -tpmdev id=t
check "-device without a model" fails_with "qtpm: -device tpmdev=t: the device model is missing" \
    -tpmdev null,id=t -device tpmdev=t
check "-tpmdev without id" fails_with "qtpm: -tpmdev null: parameter 'id' is missing" \
    -tpmdev null
check "unknown -tpmdev parameter" \
    fails_with "qtpm: -tpmdev id=t: 'path' is not a parameter of -tpmdev libtpms" \
    -drive file=tpm.qcow2,if=none,id=d -tpmdev libtpms,id=t,nvram=d,path=/x
check "libtpms without nvram" fails_with "qtpm: -tpmdev id=t: parameter 'nvram' is missing" \
    -tpmdev libtpms,id=t
check "missing drive" \
    fails_with "qtpm: -tpmdev id=tpm0: nvram=nodrive names no -drive" \
    -tpmdev libtpms,id=tpm0,nvram=nodrive
check "missing secret" \
    fails_with "qtpm: -tpmdev id=tpm0: key-secret=nokey names no -object secret" \
    -drive file=tpm.qcow2,if=none,id=drive0 -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=nokey
check "bad version" fails_with "qtpm: -tpmdev id=tpm0: version '3.0' is not 2.0 or 1.2" \
    -drive file=tpm.qcow2,if=none,id=drive0 -object secret,id=key0,file=key.bin \
    -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0,version=3.0
check "bad version for null, as for libtpms" \
    fails_with "qtpm: -tpmdev id=t: version '3.0' is not 2.0 or 1.2" \
    -tpmdev null,id=t,version=3.0
check "version=2 is not a version of either backend" \
    fails_with "qtpm: -tpmdev id=t: version '2' is not 2.0 or 1.2" -tpmdev null,id=t,version=2
check "-tpmdev parameters are checked before any drive is opened" \
    fails_with "qtpm: -tpmdev id=t: 'path' is not a parameter of -tpmdev libtpms" \
    -drive file=nonexistent.qcow2,if=none,id=d -tpmdev libtpms,id=t,nvram=d,path=/x
check "a secret format outside the choices" \
    fails_with "qtpm: -object id=s: secret 's': format 'x' is not raw, base64 or hex" \
    -object secret,id=s,file=key.bin,format=x
check "read-only drive" fails_with "qtpm: -tpmdev id=tpm0: -drive id=drive0 is read-only, but the TPM must write its state" \
    -drive file=tpm.qcow2,if=none,id=drive0,read-only=on -object secret,id=key0,file=key.bin \
    -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0
check "key-secret of the wrong size" \
    fails_with "qtpm: -tpmdev id=tpm0: secret 'key0' is 31 bytes; key-secret needs a 32-byte key" \
    -drive file=tpm.qcow2,if=none,id=drive0 -object secret,id=key0,file=short.bin \
    -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0
check "both key and passphrase" fails_with "exclude each other" \
    -drive file=tpm.qcow2,if=none,id=drive0 -object secret,id=key0,file=key.bin \
    -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0,passphrase-secret=key0
check "unknown object type" fails_with "qtpm: -object id=x: 'memory-backend-ram' is not an object type" \
    -object memory-backend-ram,id=x
check "secret file that does not exist" fails_with "qtpm: -object id=s: " \
    -object secret,id=s,file=nonexistent.bin
check "unknown secret parameter" fails_with "qtpm: -object id=s: 'bogus' is not a parameter of -object secret" \
    -object secret,id=s,file=key.bin,bogus=1
# A secret given as data= never appears in an error message.
secret_not_echoed() {
    ! run_qtpm "$@" && [ -s "$ERR" ] && ! grep -q TOPSECRETDATA "$ERR"
}
check "a secret's data is not echoed in a parse error" \
    secret_not_echoed -object secret,id=s,data=TOPSECRETDATA,format=raw,format=hex
check "... nor when the id is missing" secret_not_echoed -object secret,data=TOPSECRETDATA
check "-pidfile naming the image is refused" fails_with "holds no process id" \
    -drive file=tpm.qcow2,if=none,id=drive0 -object secret,id=key0,file=key.bin \
    -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0 -device tpm-tis,tpmdev=tpm0 \
    -pidfile tpm.qcow2
check "-D naming the image is refused" \
    fails_with "qtpm: -D tpm.qcow2: the file is the image of -drive id=drive0; refusing to write the log into it" \
    "${TPM_ARGS[@]}" -D tpm.qcow2
ln -f tpm.qcow2 tpm-link.qcow2
check "... and so is another name of the image" \
    fails_with "qtpm: -D $SCRATCH/tpm-link.qcow2: the file is the image of -drive id=drive0" \
    "${TPM_ARGS[@]}" -D "$SCRATCH/tpm-link.qcow2"
rm -f tpm-link.qcow2
# A -qtest socket path naming a regular file never deletes it.
echo precious >"$SCRATCH/not-a-socket"
check "-qtest on a regular file is refused" fails_with "cannot listen on" \
    -tpmdev null,id=t -device tpm-tis,tpmdev=t \
    -qtest "unix:$SCRATCH/not-a-socket,server=on,wait=off"
check "... and the file is kept" grep -qx precious "$SCRATCH/not-a-socket"
check "a malformed -qtest leaves a valid image unchanged" \
    fails_with "qtpm: -qtest unix:$SCRATCH/x.sock,server=off: 'unix:$SCRATCH/x.sock,server=off': only server=on is supported" \
    "${TPM_ARGS[@]}" -qtest "unix:$SCRATCH/x.sock,server=off"
check "a -qtest transport we lack names the option once" \
    fails_with "qtpm: -qtest tcp:1234: 'tcp:1234' is neither" \
    -tpmdev null,id=t -device tpm-tis,tpmdev=t -qtest tcp:1234
check "an unknown -qtest key with a value is named" \
    fails_with "qtpm: -qtest unix:$SCRATCH/x.sock,bogus=1: unknown option 'bogus' in 'unix:$SCRATCH/x.sock,bogus=1'" \
    -tpmdev null,id=t -device tpm-tis,tpmdev=t -qtest "unix:$SCRATCH/x.sock,bogus=1"
check "-qtest noserver is server=off, refused" \
    fails_with "qtpm: -qtest unix:$SCRATCH/x.sock,noserver: 'unix:$SCRATCH/x.sock,noserver': only server=on is supported" \
    -tpmdev null,id=t -device tpm-tis,tpmdev=t -qtest "unix:$SCRATCH/x.sock,noserver"
check "a -qtest boolean takes on or off" \
    fails_with "qtpm: -qtest unix:$SCRATCH/x.sock,wait=maybe: parameter 'wait' expects 'on' or 'off', not 'maybe'" \
    -tpmdev null,id=t -device tpm-tis,tpmdev=t -qtest "unix:$SCRATCH/x.sock,wait=maybe"
check "an unknown -qmp key is named with the table's keys" \
    fails_with "qtpm: -qmp unix:$SCRATCH/x.sock,bogus=1: 'bogus' is not a parameter of -qmp (expected: path, server, wait)" \
    -tpmdev null,id=t -qmp "unix:$SCRATCH/x.sock,bogus=1"
check "unknown device" fails_with "qtpm: -device tpm-crb,tpmdev=t: 'tpm-crb' is not a device model" \
    -tpmdev null,id=t -device tpm-crb,tpmdev=t
check "device without tpmdev" fails_with "parameter 'tpmdev' is missing" -device tpm-tis
check "device naming no tpmdev" fails_with "qtpm: -device tpm-tis,tpmdev=none: tpmdev=none names no -tpmdev" \
    -device tpm-tis,tpmdev=none
check "irq out of range" fails_with "parameter 'irq' is 24, outside 0..23" \
    -tpmdev null,id=t -device tpm-tis,tpmdev=t,irq=24
check "two devices" fails_with "only one tpm-tis device" \
    -tpmdev null,id=t -device tpm-tis,tpmdev=t -device tpm-tis,tpmdev=t
qemu-img create -q -f qcow2 other.qcow2 1M
OTHER_SUM=$(sha256sum <other.qcow2)
check "two libtpms backends" fails_with "only one libtpms backend per process" \
    -drive file=tpm.qcow2,if=none,id=drive0 -object secret,id=key0,file=key.bin \
    -drive file=other.qcow2,if=none,id=drive1 \
    -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0 \
    -tpmdev libtpms,id=tpm1,nvram=drive1,key-secret=key0
check "... and the second image is untouched" test "$(sha256sum <other.qcow2)" = "$OTHER_SUM"
check "unknown log item" fails_with "qtpm: -d: 'bogus' is not a log item" -d bogus
check "-display other than none" fails_with "qtpm: -display gtk:" -display gtk
check "two -qmp" fails_with "qtpm: -qmp unix:b.sock: only one -qmp is supported" \
    -qmp unix:a.sock -qmp unix:b.sock
check "bad qmp transport" fails_with "qtpm: -qmp tcp:1234: " -tpmdev null,id=t -qmp tcp:1234
check "qmp socket in a missing folder" \
    fails_with "qtpm: -qmp unix:$SCRATCH/nodir/q.sock,server=on,wait=off: '$SCRATCH/nodir': the folder does not exist" \
    "${TPM_ARGS[@]}" -qmp "unix:$SCRATCH/nodir/q.sock,server=on,wait=off"
check "pidfile in a missing folder" fails_with "qtpm: -pidfile $SCRATCH/nodir/q.pid: " \
    "${TPM_ARGS[@]}" -pidfile "$SCRATCH/nodir/q.pid"
check "-incoming with a bad URI" fails_with "qtpm: -incoming bogus:" -incoming bogus:x

# The store's own refusals.
check "wrong key" fails_with "qtpm: -tpmdev id=tpm0: 'tpm.qcow2': wrong key" \
    -drive file=tpm.qcow2,if=none,id=drive0 -object secret,id=key0,file=other.bin \
    -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0 -device tpm-tis,tpmdev=tpm0
check "no key for an encrypted image" fails_with "qtpm: -tpmdev id=tpm0: 'tpm.qcow2' is encrypted" \
    -drive file=tpm.qcow2,if=none,id=drive0 \
    -tpmdev libtpms,id=tpm0,nvram=drive0 -device tpm-tis,tpmdev=tpm0
check "TPM version other than the image's" fails_with "holds TPM 2.0 state, not TPM 1.2" \
    -drive file=tpm.qcow2,if=none,id=drive0 -object secret,id=key0,file=key.bin \
    -tpmdev libtpms,id=tpm0,nvram=drive0,key-secret=key0,version=1.2 -device tpm-tis,tpmdev=tpm0
dd if=/dev/urandom of=junk.raw bs=64k count=1 status=none
cp junk.raw junk.orig
check "an image that is not a store" fails_with "qtpm: -tpmdev id=tpm0: " \
    -drive file=junk.raw,if=none,id=drive0,format=raw \
    -tpmdev libtpms,id=tpm0,nvram=drive0 -device tpm-tis,tpmdev=tpm0
check "... and it is left alone" cmp -s junk.raw junk.orig

# Damaged state on a raw image: the permanent blob sits at 0x3000.
truncate -s 1M state.raw
RAW_ARGS=(-drive file=state.raw,if=none,id=drive0,format=raw
          -tpmdev libtpms,id=tpm0,nvram=drive0 -device tpm-tis,tpmdev=tpm0)
check "a plain raw store starts and keeps its state" \
    bash -c "printf '' | timeout 60 '$QTPM' ${RAW_ARGS[*]} -qtest stdio"
printf '\377' | dd of=state.raw bs=1 seek=$((0x3000 + 100)) conv=notrunc status=none
cp state.raw state.orig
check "damaged permanent state stops start-up with the store's sentence" \
    fails_with "qtpm: -tpmdev id=tpm0: 'state.raw': no usable NVRAM directory" \
    "${RAW_ARGS[@]}" -qtest stdio
check "... and the damaged image is left as it was" cmp -s state.raw state.orig

# A damaged newest directory slot: the store falls back to the older slot,
# and qtpm says so in one warning line (and in the -D log).
PLAIN_ARGS=(-drive file=fb.qcow2,if=none,id=d0
            -tpmdev libtpms,id=tpm0,nvram=d0 -device tpm-tis,tpmdev=tpm0)
# starts_quietly ARGS...: qtpm -qtest stdio starts, exits 0 at end of input,
# and prints nothing.
starts_quietly() {
    printf '' | run_qtpm "$@" -qtest stdio || { diag "stderr: $(cat "$ERR")"; return 1; }
    [ ! -s "$ERR" ] || { diag "stderr: $(cat "$ERR")"; return 1; }
}
# tpm_commits: TPM2_Startup and an NV index definition through tpm2-tools,
# each a commit of the permanent state.
tpm_commits() {
    local tcti="cmd:$QTPM_TIS --qtest $SCRATCH/fb-q.sock"
    start_qtpm fb "${PLAIN_ARGS[@]}" -qtest "unix:$SCRATCH/fb-q.sock,server=on,wait=off" || return 1
    tpm2_startup -c -T "$tcti" || return 1
    tpm2_nvdefine -T "$tcti" 0x1500016 -s 8 >/dev/null || return 1
    stop_qtpm
}
"$QTPM_IMG" create fb.qcow2 >/dev/null
check "a freshly formatted image (slot B empty) starts without a warning" \
    starts_quietly "${PLAIN_ARGS[@]}"
check "TPM commits through tpm2-tools" tpm_commits
check "an older valid slot next to the newest is no reason to warn" \
    starts_quietly "${PLAIN_ARGS[@]}"
NEW_SLOT=$("$QTPM_IMG" info --output json fb.qcow2 | sed -n 's/^ *"slot" : "\(.\)".*/\1/p')
NEW_GEN=$("$QTPM_IMG" info --output json fb.qcow2 | sed -n 's/^  "generation" : \([0-9]*\).*/\1/p')
if [ "$NEW_SLOT" = A ]; then SLOT_OFF=4096 OLD_SLOT=B; else SLOT_OFF=8192 OLD_SLOT=A; fi
# The newest, acknowledged state damaged: refused at start-up, naming the
# damaged and the intact generation; only check --repair --accept-rollback
# goes back.
cp fb.qcow2 fb2.qcow2
PERM_OFF=$("$QTPM_IMG" info --output json fb2.qcow2 | jq '.blobs[] | select(.type == "permanent") | .offset')
"$QTPM_IO" -c "write -P 0x5a $((PERM_OFF + 100)) 1" fb2.qcow2 >/dev/null
cp fb2.qcow2 fb2.orig
FB2_ARGS=(-drive file=fb2.qcow2,if=none,id=d0 "${PLAIN_ARGS[@]:2}")
check "damage to the newest state stops start-up, naming both generations" \
    fails_with "qtpm: -tpmdev id=tpm0: 'fb2.qcow2': NVRAM generation $NEW_GEN (slot $NEW_SLOT) is damaged (" \
    "${FB2_ARGS[@]}" -qtest stdio
check "... and the intact one and the way back" \
    grep -q "generation $((NEW_GEN - 1)) (slot $OLD_SLOT) is intact: 'qtpm-img check --repair --accept-rollback fb2.qcow2' goes back to it, losing generation $NEW_GEN\$" "$ERR"
check "... and the image is left as it was" cmp -s fb2.qcow2 fb2.orig
check "check reports it as damage" \
    test "$("$QTPM_IMG" check fb2.qcow2 >/dev/null 2>&1; echo $?)" -eq 2
check "check --repair alone does not go back" \
    test "$("$QTPM_IMG" check --repair fb2.qcow2 >/dev/null 2>&1; echo $?)" -eq 2
check "... and leaves the image as it was" cmp -s fb2.qcow2 fb2.orig
check "--accept-rollback without --repair is refused in one sentence" \
    bash -c "out=\$('$QTPM_IMG' check --accept-rollback fb2.qcow2 2>&1); [ \$? -eq 1 ] &&
             [ \"\$out\" = 'qtpm-img: --accept-rollback goes with --repair' ]"
check "check --repair --accept-rollback goes back, naming the loss" \
    bash -c "'$QTPM_IMG' check --repair --accept-rollback fb2.qcow2 | grep -qx \"'fb2.qcow2': generation $NEW_GEN was damaged and is lost; the newest intact state is now generation $((NEW_GEN + 1)).\""
check "... after which check is clean" "$QTPM_IMG" check fb2.qcow2
check "... and qtpm starts quietly from the older state" starts_quietly "${FB2_ARGS[@]}"

# One copy of the newest directory damaged is repaired, not fallen back from.
cp fb.qcow2 fb1.qcow2
"$QTPM_IO" -c "write -P 0x55 $((SLOT_OFF + 2048)) 1" fb1.qcow2 >/dev/null
check "one damaged copy of the newest directory is found by check" \
    test "$("$QTPM_IMG" check fb1.qcow2 >/dev/null 2>&1; echo $?)" -eq 2
check "... qtpm starts from the newest state and rewrites the directory" \
    starts_quietly -drive file=fb1.qcow2,if=none,id=d0 "${PLAIN_ARGS[@]:2}"
check "... after which check is clean" "$QTPM_IMG" check fb1.qcow2
check "... at generation $((NEW_GEN + 2))" \
    bash -c "'$QTPM_IMG' info --output json fb1.qcow2 | grep -q '\"generation\" : $((NEW_GEN + 2))'"
# The magic's first byte, 'Q', becomes 'U', in both copies: no copy is readable.
"$QTPM_IO" -c "write -P 0x55 $SLOT_OFF 1" -c "write -P 0x55 $((SLOT_OFF + 2048)) 1" \
    fb.qcow2 >/dev/null
cp fb.qcow2 fbq.qcow2
check "the newest slot ($NEW_SLOT, generation $NEW_GEN) is now damaged" \
    test "$("$QTPM_IMG" check fb.qcow2 >/dev/null 2>&1; echo $?)" -eq 2
printf '' | run_qtpm "${PLAIN_ARGS[@]}" -qtest stdio -D "$SCRATCH/fb.log"
check "qtpm still starts from the older slot" test $? -eq 0
check "... and warns in exactly one line" test "$(wc -l <"$ERR")" -eq 1
check "... in the house style, naming the drive and the damaged slot" \
    grep -q "^qtpm: warning: -drive id=d0: slot $NEW_SLOT is not usable (" "$ERR"
check "... and the state in use" \
    grep -q "; the TPM state of generation $((NEW_GEN - 1)) in slot $OLD_SLOT is in use\$" "$ERR"
check "... and the -D log holds the same line" grep -qxF -- "$(cat "$ERR")" "$SCRATCH/fb.log"

# The same fact reaches a management tool: the first QMP client receives
# the TPM_STATE_FALLBACK event of start-up after qmp_capabilities.
fallback_event() {
    local pid rc
    rm -f "$SCRATCH/fbq.qmp"
    "$QTPM" -drive file=fbq.qcow2,if=none,id=d0 "${PLAIN_ARGS[@]:2}" \
        -qmp "unix:$SCRATCH/fbq.qmp,server=on,wait=off" 2>/dev/null &
    pid=$!
    bg_pid "$pid"
    wait_for_file "$SCRATCH/fbq.qmp" 300 || return 1
    python3 - "$SCRATCH/fbq.qmp" "$NEW_SLOT" "$OLD_SLOT" "$((NEW_GEN - 1))" <<'EOF2'
import json, socket, sys
path, bad, good, gen = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.settimeout(10)
f = s.makefile('rw')
json.loads(f.readline())                       # greeting
f.write('{"execute": "qmp_capabilities"}\n'); f.flush()
msgs = [json.loads(f.readline()) for _ in range(2)]
ev = [m for m in msgs if m.get('event') == 'TPM_STATE_FALLBACK']
print('# %s' % ev)
d = ev[0]['data'] if ev else {}
ok = (len(ev) == 1 and d.get('id') == 'tpm0' and d.get('drive') == 'd0' and
      d.get('slot') == good and d.get('unusable-slot') == bad and
      d.get('generation') == gen and d.get('cause'))
sys.exit(0 if ok else 1)
EOF2
    rc=$?
    kill "$pid"
    wait "$pid"
    return $rc
}
check "... and the first QMP client receives a TPM_STATE_FALLBACK event" fallback_event

# Store failures reported by the libtpms backend read as qtpm's sentences,
# never GLib's "** (process:N): WARNING **". The image may not grow past
# the file size limit (SIGXFSZ ignored, so the write fails with EFBIG).
with_fsize_limit() { ( trap '' XFSZ; ulimit -f "$1"; shift; "$@" ); }
truncate -s 12288 small.raw
SMALL_ARGS=(-drive file=small.raw,if=none,id=d0,format=raw
            -tpmdev libtpms,id=tpm0,nvram=d0 -device tpm-tis,tpmdev=tpm0)
with_fsize_limit 12 run_qtpm "${SMALL_ARGS[@]}" -qtest stdio </dev/null
check "a store failure at start-up stops qtpm" test $? -eq 1
check "... with the store's sentence" \
    grep -q "^qtpm: -tpmdev id=tpm0: 'small.raw': NVRAM commit failed: " "$ERR"
check "... and only qtpm's lines on stderr" bash -c "! grep -qv '^qtpm: ' '$ERR'"
check "... in one sentence, not a warning and then the error" test "$(wc -l <"$ERR")" -eq 1
check "the TPM manufactured when the image may grow" starts_quietly "${SMALL_ARGS[@]}"
# The first blob sits at 16 KiB - 4 KiB; a new one would go at 16 KiB.
commit_fails_at_runtime() {
    start_qtpm small "${SMALL_ARGS[@]}" -D "$SCRATCH/small.log" \
        -qtest "unix:$SCRATCH/small-q.sock,server=on,wait=off" || return 1
    tpm2_startup -c -T "cmd:$QTPM_TIS --qtest $SCRATCH/small-q.sock" >/dev/null 2>&1
    stop_qtpm
}
with_fsize_limit 16 commit_fails_at_runtime
check "a store failure while running is one warning line on stderr" \
    test "$(grep -c "^qtpm: warning: TPM backend 'tpm0': 'small.raw': NVRAM commit failed: " \
            "$SCRATCH/small.err")" -eq 1
check "... not in GLib's format" bash -c "! grep -q 'WARNING \*\*' '$SCRATCH/small.err'"
check "... and the -D log holds the same line" \
    grep -qxF -- "$(grep '^qtpm: warning: ' "$SCRATCH/small.err")" "$SCRATCH/small.log"

# Two processes on one image: the second refuses at start-up, naming the lock.
start_qtpm owner "${TPM_ARGS[@]}"
check "first qtpm owns the image" kill -0 "$QTPM_PID"
check "second qtpm refuses, naming the lock" fails_with "locked" "${TPM_ARGS[@]}"
check "second qtpm's sentence names the drive" grep -q "^qtpm: -drive id=drive0: 'tpm.qcow2' is locked" "$ERR"
# -qtest is checked with the other options, before any drive is opened: the
# locked image would be the complaint otherwise.
check "a malformed -qtest fails before the drive is opened" \
    fails_with "qtpm: -qtest unix:$SCRATCH/x.sock,bogus: unknown option 'bogus' in 'unix:$SCRATCH/x.sock,bogus'" \
    "${TPM_ARGS[@]}" -qtest "unix:$SCRATCH/x.sock,bogus"
check "... and creates no socket" test ! -e "$SCRATCH/x.sock"
check "first qtpm still runs" kill -0 "$QTPM_PID"
check "first qtpm exits cleanly" stop_qtpm
check "the image is clean for qemu-img" qemu-img check -q tpm.qcow2
SUM=$(sha256sum <tpm.qcow2)

# Help and version: exit 0, text on stdout.
check "--version" bash -c "'$QTPM' --version | grep -q '^qtpm version '"
check "-h lists -tpmdev" bash -c "'$QTPM' -h | grep -q '^-tpmdev libtpms'"
check "-tpmdev help lists both types" \
    bash -c "'$QTPM' -tpmdev help | grep -q libtpms && '$QTPM' -tpmdev help | grep -q null"
check "-device help lists tpm-tis" bash -c "'$QTPM' -device help | grep -q tpm-tis"
check "-object help lists secret" bash -c "'$QTPM' -object help | grep -q secret"
check "-drive format=help lists the formats" \
    bash -c "'$QTPM' -drive file=x,if=none,id=d,format=help | grep -qx -- '-drive format= takes: qcow2 raw'"
check "-tpmdev version=help lists the versions" \
    bash -c "'$QTPM' -tpmdev libtpms,id=t,version=help | grep -q '2.0 1.2'"
check "-tpmdev help lists each type with its description" \
    bash -c "'$QTPM' -tpmdev help | grep -qx -- '      null   answers every command with a failure response'"
check "-tpmdev libtpms,help lists its keys from its table" \
    bash -c "'$QTPM' -tpmdev libtpms,help | grep -q '^  nvram=DRIVE_ID .*(required)$' &&
             '$QTPM' -tpmdev libtpms,help | grep -q '^  version=2.0|1.2 .*(default: 2.0)$'"
check "-device help gives tpm-tis's keys" \
    bash -c "'$QTPM' -device help | grep -q 'properties tpmdev=ID\[,irq=N\]'"
check "-device tpm-tis,help gives irq's range and default" \
    bash -c "'$QTPM' -device tpm-tis,help | grep -q '^  irq=N .*(0..23, default: 5)$'"
check "--help has each backend's keys" \
    bash -c "'$QTPM' --help | grep -qx -- '-tpmdev null,id=ID\[,version=2.0|1.2\]'"
check "--help shows -qtest's server=on as optional, as the parser has it" \
    bash -c "'$QTPM' --help | grep -q -- '^-qtest unix:PATH\[,server=on\]\[,wait=off\] | stdio$'"
check "-qtest help lists its keys from its table" \
    bash -c "'$QTPM' -qtest help | grep -q '^  wait=off .*(default: on)$'"
check "-qmp help lists its keys from its table" \
    bash -c "'$QTPM' -qmp help | grep -q '^  server=on .*(default: on)$'"
check "--help gives -qmp's keys from its table" \
    bash -c "'$QTPM' --help | grep -qx -- '-qmp unix:PATH\[,server=on\]\[,wait=off\]'"
check "-d help lists items" bash -c "'$QTPM' -d help | grep -q '^tpm '"

# -S, -name, -pidfile, -D/-d, -nodefaults, -display none with the null backend.
start_qtpm misc -tpmdev null,id=t -device tpm-tis,tpmdev=t -S -name vm1 \
    -pidfile "$SCRATCH/q.pid" -D "$SCRATCH/q.log" -d tpm,qmp -nodefaults -display none
wait_for_file "$SCRATCH/q.pid" 100
check "pidfile holds the pid" test "$(cat "$SCRATCH/q.pid" 2>/dev/null)" = "$QTPM_PID"
check "stops on SIGINT" bash -c "kill -INT $QTPM_PID"
wait "$QTPM_PID"
check "exit status 0 after SIGINT" test $? -eq 0
check "pidfile removed at exit" test ! -e "$SCRATCH/q.pid"

# -qmp with wait=on (QEMU's default) holds start-up until a client comes;
# a signal still ends it cleanly.
"$QTPM" -tpmdev null,id=t -qmp "unix:$SCRATCH/w.sock,server=on" \
    -pidfile "$SCRATCH/w.pid" 2>"$SCRATCH/w.err" &
WPID=$!
bg_pid $WPID
wait_for_file "$SCRATCH/w.sock" 300
check "wait=on says it waits" grep -q "waiting for a connection on $SCRATCH/w.sock" "$SCRATCH/w.err"
check "wait=on: no pidfile before a client came" test ! -e "$SCRATCH/w.pid"
kill -TERM $WPID
wait $WPID
check "wait=on: SIGTERM ends qtpm with status 0" test $? -eq 0

# -qtest unix:PATH listens without server=on, as QMP's; wait=on (the
# default) holds start-up until the client comes.
"$QTPM" -tpmdev null,id=t -device tpm-tis,tpmdev=t -qtest "unix:$SCRATCH/plain.sock" \
    -pidfile "$SCRATCH/plain.pid" 2>"$SCRATCH/plain.err" &
PLAIN_PID=$!
bg_pid $PLAIN_PID
wait_for_file "$SCRATCH/plain.sock" 300
check "-qtest unix:PATH: no pidfile before a client came" test ! -e "$SCRATCH/plain.pid"
check "-qtest unix:PATH without server=on listens and answers" \
    bash -c "printf 'readl 0xfed40f00\n' | timeout 10 socat -t 2 - 'UNIX-CONNECT:$SCRATCH/plain.sock' | grep -qx 'OK 0x0000000000011014'"
kill -TERM $PLAIN_PID
wait $PLAIN_PID
check "-qtest unix:PATH: SIGTERM ends qtpm with status 0" test $? -eq 0

# QEMU's spellings "server" and "nowait" listen at once.
start_qtpm legacy -tpmdev null,id=t -device tpm-tis,tpmdev=t \
    -qtest "unix:$SCRATCH/legacy-qtest.sock,server,nowait"
check "-qtest unix:PATH,server,nowait listens without waiting" \
    bash -c "printf 'readl 0xfed40f00\n' | timeout 10 socat -t 2 - 'UNIX-CONNECT:$SCRATCH/legacy-qtest.sock' | grep -qx 'OK 0x0000000000011014'"
check "... and SIGTERM ends it with status 0" stop_qtpm

# -qtest stdio: the device answers on stdout; end of input shuts qtpm down.
check "-qtest stdio reads DID_VID and exits 0 at end of input" \
    bash -c "printf 'readl 0xfed40f00\n' | timeout 60 '$QTPM' -tpmdev null,id=t -device tpm-tis,tpmdev=t -qtest stdio | grep -qx 'OK 0x0000000000011014'"

# -daemonize: the parent returns once start-up succeeded.
check "-daemonize returns 0" "$QTPM" "${TPM_ARGS[@]}" -daemonize -pidfile "$SCRATCH/d.pid"
DPID=$(cat "$SCRATCH/d.pid" 2>/dev/null)
check "the daemon runs" kill -0 "$DPID"
check "a daemon's start-up error still reaches the caller" \
    fails_with "locked" "${TPM_ARGS[@]}" -daemonize
kill -TERM "$DPID" 2>/dev/null
for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
check "the daemon exits on SIGTERM" bash -c "! kill -0 $DPID 2>/dev/null"
check "the daemon removed its pidfile" test ! -e "$SCRATCH/d.pid"

done_testing
