#!/bin/bash
# qtpm-tis as a TIS driver: against Debian's QEMU tpm-tis + swtpm (the
# reference that keeps our protocol honest) and against build/qtpm.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"

# TPM2_Startup(CLEAR) and TPM2_GetRandom(8) as raw bytes.
STARTUP='\x80\x01\x00\x00\x00\x0c\x00\x00\x01\x44\x00\x00'
GETRANDOM8='\x80\x01\x00\x00\x00\x0c\x00\x00\x01\x7b\x00\x08'

# raw DIR [ARGS...]: qtpm-tis with stdin from the caller, output as hex.
raw() {
    local dir=$1
    shift
    timeout 60 "$QTPM_TIS" --qtest "$dir/q.sock" "$@" | xxd -p | tr -d '\n'
}

matches() { [[ $1 =~ $2 ]]; }

# Two GetRandom(8) responses: header, TPM2B size 8, 8 bytes; each 20 bytes.
two_randoms_ok() {
    [[ $1 =~ ^80010000001400000000 ]] && [ ${#1} -eq 80 ] &&
        [[ ${1:40} =~ ^800100000014000000000008 ]]
}

# Sets interrupts up in locality 0 as a guest driver would (and leaves them
# on), so that the server sends "IRQ raise" lines while qtpm-tis runs.
enable_irqs() {
    printf '%s\n' 'irq_intercept_in ioapic' 'writeb 0xfed40000 0x02' \
        'writel 0xfed40008 0x80000087' 'writeb 0xfed40000 0x20' |
        timeout 10 socat -t 2 - "UNIX-CONNECT:$1/q.sock" >"$1/irq.out"
    [ "$(grep -c '^OK' "$1/irq.out")" -eq 4 ]
}

# start_proxy DIR [NAME]: DIR/NAME.sock forwards to DIR/q.sock and records
# the traffic in DIR/NAME.traffic, to see what qtpm-tis sent and received
# whatever the server.
start_proxy() {
    local name=${2:-p}
    socat -v "UNIX-LISTEN:$1/$name.sock,fork" "UNIX-CONNECT:$1/q.sock" \
        2>"$1/$name.traffic" &
    bg_pid $!
    wait_for_file "$1/$name.sock"
}

# Request lines other than readl (the polls, whose number depends on timing).
count_non_poll_lines() { grep -cE '^(writeb|writew|writel|write|readb|readw|read) ' "$1"; }

# qtest_lines DIR LINE...: sends LINEs to DIR/q.sock as a client of its own;
# the replies in DIR/lines.out; true when each got an OK.
qtest_lines() {
    local dir=$1
    shift
    printf '%s\n' "$@" | timeout 10 socat -t 2 - "UNIX-CONNECT:$dir/q.sock" >"$dir/lines.out"
    [ "$(grep -c '^OK' "$dir/lines.out")" -eq $# ]
}

# no_active_or_pending FILE: every "OK 0x.." ACCESS value in FILE has
# activeLocality (0x20) and pendingRequest (0x04) clear.
no_active_or_pending() {
    local v
    for v in $(sed -n 's/^OK //p' "$1"); do
        [ $((v & 0x24)) -eq 0 ] || { diag "ACCESS $v"; return 1; }
    done
}

# suite NAME DIR: DIR/q.sock reaches a TPM 2.0 behind a TIS.
suite() {
    local name=$1 dir=$2 out

    out=$(printf "$STARTUP" | raw "$dir")
    check "$name: raw TPM2_Startup answers success" [ "$out" = 80010000000a00000000 ]

    out=$(printf "$GETRANDOM8$GETRANDOM8" | raw "$dir")
    check "$name: two commands in one stream give two responses" two_randoms_ok "$out"

    out=$(printf "$GETRANDOM8" | raw "$dir" --locality 2 --timeout 30000)
    check "$name: --locality 2 works" matches "$out" ^800100000014000000000008

    check "$name: a recording proxy" start_proxy "$dir"
    use_tpm "$dir"
    check "$name: tpm2_getrandom 32 through the cmd TCTI" tpm getrandom 32 -o "$dir/r"
    check "$name: 32 random bytes" [ "$(stat -c %s "$dir/r" 2>/dev/null)" = 32 ]

    # Long command (1000 data bytes) and a digest to compare: bytes travel
    # unchanged both ways across many bursts.
    head -c 1000 /dev/urandom >"$dir/data"
    use_tpm "$dir" --qtest "$dir/p.sock"
    check "$name: tpm2_hash of 1000 bytes" tpm hash -g sha256 --hex -C o "$dir/data"
    check "$name: the TPM's digest equals sha256sum's" \
        [ "$(cat "$SCRATCH/tpm.out")" = "$(sha256sum <"$dir/data" | cut -d' ' -f1)" ]
    check "$name: a 1300-byte-answer command (tpm2_getcap properties-fixed)" \
        tpm getcap properties-fixed
    check "$name: its answer parses" grep -q TPM2_PT_FAMILY_INDICATOR "$SCRATCH/tpm.out"

    check "$name: interrupts enabled by another client" enable_irqs "$dir"
    out=$(printf "$GETRANDOM8" | raw "$dir" --qtest "$dir/p.sock")
    check "$name: qtpm-tis tolerates IRQ lines among the replies" \
        matches "$out" ^800100000014000000000008
    check "$name: the server did send qtpm-tis an IRQ line" \
        grep -q '^IRQ raise 5' "$dir/p.traffic"

    check "$name: data moved in 64-byte XDATA_FIFO writes" \
        grep -q '^write 0xfed40080 0x40 0x' "$dir/p.traffic"
    check "$name: ... and 64-byte XDATA_FIFO reads" \
        grep -q '^read 0xfed40080 0x40' "$dir/p.traffic"
    check_fails "$name: no byte-wise FIFO access" \
        grep -qE '^(writeb|readb) 0xfed4[0-4]0(24|80)' "$dir/p.traffic"

    # One short command: locality request, commandReady, one FIFO write,
    # tpmGo, header read, body read, commandReady, relinquish; plus polls.
    check "$name: a second recording proxy" start_proxy "$dir" p1
    out=$(printf "$GETRANDOM8" | raw "$dir" --qtest "$dir/p1.sock")
    check "$name: GetRandom(8) through it" matches "$out" ^800100000014000000000008
    check "$name: ... costs 8 qtest lines besides register polls" \
        [ "$(count_non_poll_lines "$dir/p1.traffic")" -eq 8 ]

    printf '\x80\x01\x00\x00\x00\x0c\x00' | "$QTPM_TIS" --qtest "$dir/q.sock" \
        2>"$dir/err" >/dev/null
    check "$name: a truncated command is refused with exit 1" [ $? -eq 1 ]
    check "$name: ... and one sentence" grep -qx 'qtpm-tis: stdin ended inside a command header (7 of 10 bytes)' "$dir/err"
    printf '\x80\x01\x7f\x00\x00\x00\x00\x00\x01\x7b' | "$QTPM_TIS" --qtest "$dir/q.sock" \
        2>"$dir/err" >/dev/null
    check "$name: an absurd command size is refused" grep -q '^qtpm-tis: a command on stdin gives size 2130706432' "$dir/err"
    # Locality 0 held by another client: a request for locality 1 stays
    # pending until --timeout; qtpm-tis withdraws it before exiting, so once
    # locality 0 is released the device serves locality 0 again.
    check "$name: another client takes locality 0" qtest_lines "$dir" 'writeb 0xfed40000 0x02'
    printf "$GETRANDOM8" | "$QTPM_TIS" --qtest "$dir/q.sock" --locality 1 --timeout 500 \
        2>"$dir/err" >/dev/null
    check "$name: locality 1 is not granted meanwhile: exit 1" [ $? -eq 1 ]
    check "$name: ... one sentence" grep -q '^qtpm-tis: locality 1 was not granted within 500 ms (ACCESS 0x' "$dir/err"
    check "$name: the other client releases locality 0" qtest_lines "$dir" 'writeb 0xfed40000 0x20'
    check "$name: ACCESS of localities 0 and 1" qtest_lines "$dir" 'readb 0xfed40000' 'readb 0xfed41000'
    check "$name: ... neither is active or pending" no_active_or_pending "$dir/lines.out"

    # The TPM still works after the refusals.
    out=$(printf "$GETRANDOM8" | raw "$dir")
    check "$name: the device still transmits" matches "$out" ^800100000014000000000008
}

# --- option and connection errors, no server needed
"$QTPM_TIS" --qtest "$SCRATCH/nothing.sock" </dev/null 2>"$SCRATCH/err"
check "no socket: exit 1" [ $? -eq 1 ]
check "no socket: one sentence" grep -qx "qtpm-tis: cannot connect to qtest socket '$SCRATCH/nothing.sock': No such file or directory" "$SCRATCH/err"
check_fails "--locality 5 is refused" "$QTPM_TIS" --qtest x --locality 5 </dev/null 2>/dev/null
check_fails "--timeout 0 is refused" "$QTPM_TIS" --qtest x --timeout 0 </dev/null 2>/dev/null
"$QTPM_TIS" </dev/null 2>"$SCRATCH/err"
check "--qtest is required" grep -qx 'qtpm-tis: --qtest PATH is required' "$SCRATCH/err"

# --- servers that misbehave: one sentence each, never a hang or a crash
# fake_server NAME SHELL_CMD: a one-connection server on $SCRATCH/NAME.sock
# whose stdin/stdout are the connection.
fake_server() {
    socat "UNIX-LISTEN:$SCRATCH/$1.sock" "SYSTEM:$2" 2>/dev/null &
    bg_pid $!
    wait_for_file "$SCRATCH/$1.sock"
}
# tis_against NAME: qtpm-tis with one GetRandom against the fake server NAME;
# its stderr in $SCRATCH/err; true when it exits 1.
tis_against() {
    printf "$GETRANDOM8" | timeout 60 "$QTPM_TIS" --qtest "$SCRATCH/$1.sock" \
        >/dev/null 2>"$SCRATCH/err"
    [ $? -eq 1 ]
}
fake_server fail 'while read -r l; do echo "FAIL nope"; done'
check "a server answering FAIL: exit 1" tis_against fail
check "... naming the reply and the line" grep -qx "qtpm-tis: the qtest server answered 'FAIL nope' to 'readl 0xfed40f00'" "$SCRATCH/err"
fake_server closing 'exit 0'
check "a server that hangs up: exit 1" tis_against closing
check "... one sentence" grep -qx 'qtpm-tis: the qtest server closed the connection' "$SCRATCH/err"
fake_server garbage 'read -r l; echo "OK 0xZZ"; cat >/dev/null'
check "a server answering a readl with garbage: exit 1" tis_against garbage
check "... one sentence" grep -qx "qtpm-tis: the qtest server answered 'OK 0xZZ' to a readl" "$SCRATCH/err"
fake_server endless 'head -c 100000 /dev/zero | tr "\\0" a; cat >/dev/null'
check "a server sending an endless line: exit 1" tis_against endless
check "... one sentence" grep -qx 'qtpm-tis: the qtest server sent a line longer than 4096 bytes' "$SCRATCH/err"

# --- reference: Debian's QEMU and swtpm
REF=$SCRATCH/ref
mkdir -p "$REF"
if start_reference "$REF"; then
    ok "QEMU + swtpm started"
    suite "QEMU+swtpm" "$REF"
else
    not_ok "QEMU + swtpm started: $(cat "$REF"/*.log)"
fi

# A machine without the device: every TIS register reads as all-ones.
NODEV=$SCRATCH/nodev
mkdir -p "$NODEV"
qemu-system-x86_64 -machine q35 -S -nodefaults -display none \
    -qtest "unix:$NODEV/q.sock,server=on,wait=off" -qtest-log /dev/null 2>/dev/null &
bg_pid $!
wait_for_file "$NODEV/q.sock"
printf "$GETRANDOM8" | timeout 60 "$QTPM_TIS" --qtest "$NODEV/q.sock" 2>"$NODEV/err" >/dev/null
check "no TIS device: exit 1" [ $? -eq 1 ]
check "no TIS device: one sentence" grep -qx 'qtpm-tis: no TPM TIS device answers at 0xfed40000' "$NODEV/err"

# --- qtpm
Q=$SCRATCH/qtpm
mkdir -p "$Q"
if "$QTPM_IMG" create "$Q/tpm.qcow2" >/dev/null &&
    start_qtpm "$Q" "$Q/tpm.qcow2"; then
    ok "qtpm started"
    suite "qtpm" "$Q"
    check "qtpm: QMP quit" qmp_quit "$Q"
else
    not_ok "qtpm started"
fi

# --- qtpm with a TPM 1.2: the same 10-byte header carries the size
T12=$SCRATCH/tpm12
mkdir -p "$T12"
if "$QTPM_IMG" create --tpm 1.2 "$T12/tpm.qcow2" >/dev/null &&
    TPM_VERSION=1.2 start_qtpm "$T12" "$T12/tpm.qcow2"; then
    ok "qtpm with a TPM 1.2 started"
    # TPM_Startup(ST_CLEAR), then TPM_GetRandom(8), in one stream.
    out=$(printf '\x00\xc1\x00\x00\x00\x0c\x00\x00\x00\x99\x00\x01\x00\xc1\x00\x00\x00\x0e\x00\x00\x00\x46\x00\x00\x00\x08' |
        raw "$T12")
    check "TPM 1.2: TPM_Startup and TPM_GetRandom(8) succeed" \
        matches "$out" '^00c40000000a0000000000c4000000160000000000000008[0-9a-f]{16}$'
    check "TPM 1.2: QMP quit" qmp_quit "$T12"
else
    not_ok "qtpm with a TPM 1.2 started"
fi

done_testing
