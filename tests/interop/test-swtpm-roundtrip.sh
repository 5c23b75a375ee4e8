#!/bin/bash
# A real swtpm and tpm2-tools make TPM state (a persistent primary key, an NV
# index with data); qtpm-img imports it, exports it to a new folder, and a
# real swtpm started on the export serves the same NV data and key. The same
# with swtpm-encrypted state (AES-256 and AES-128 keys, passphrases). And the
# move for real: qtpm runs on the imported state, changes it, and swtpm
# serves the change after the export.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"

NV_INDEX=0x1500016
NV_DATA="qtpm round trip $$"
PERSISTENT=0x81000001

sha() { sha256sum "$1" | cut -d' ' -f1; }

# start_swtpm DIR [swtpm args...]: starts swtpm on a free TCP port pair,
# sends TPM2_Startup(CLEAR), sets SW_PORT / SW_CTRL / SW_PID.
start_swtpm() {
    local dir=$1 try i
    shift
    for try in $(seq 1 20); do
        SW_PORT=$((20000 + (RANDOM % 20000) * 2))
        SW_CTRL=$((SW_PORT + 1))
        swtpm socket --tpm2 --tpmstate dir="$dir" \
            --server type=tcp,port=$SW_PORT,bindaddr=127.0.0.1 \
            --ctrl type=tcp,port=$SW_CTRL,bindaddr=127.0.0.1 \
            --flags not-need-init "$@" 2>"$SCRATCH/swtpm.err" &
        SW_PID=$!
        bg_pid $SW_PID
        for i in $(seq 1 100); do
            kill -0 $SW_PID 2>/dev/null || break
            if tpm2_startup -T swtpm:host=127.0.0.1,port=$SW_PORT -c 2>/dev/null; then
                export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$SW_PORT
                return 0
            fi
            sleep 0.1
        done
        kill $SW_PID 2>/dev/null
        wait $SW_PID 2>/dev/null
    done
    diag "swtpm did not start: $(cat "$SCRATCH/swtpm.err")"
    return 1
}

# stop_swtpm: orderly TPM shutdown, volatile state saved, process ends.
stop_swtpm() {
    tpm2_shutdown -c >/dev/null 2>&1
    swtpm_ioctl --tcp 127.0.0.1:$SW_CTRL -v >/dev/null &&
        swtpm_ioctl --tcp 127.0.0.1:$SW_CTRL -s >/dev/null
    local rc=$?
    wait $SW_PID 2>/dev/null
    return $rc
}

# make_state DIR [swtpm args...]: a primary key made persistent and an NV
# index holding $NV_DATA; saves the key's name to DIR.name.
make_state() {
    local dir=$1
    shift
    mkdir -p "$dir"
    start_swtpm "$dir" "$@" || return 1
    tpm2_createprimary -Q -C o -c "$SCRATCH/primary.ctx" &&
        tpm2_evictcontrol -Q -C o -c "$SCRATCH/primary.ctx" $PERSISTENT &&
        tpm2_readpublic -c $PERSISTENT -n "$dir.name" >/dev/null &&
        tpm2_nvdefine -Q $NV_INDEX -C o -s 64 -a "ownerread|ownerwrite" &&
        printf %s "$NV_DATA" | tpm2_nvwrite -Q $NV_INDEX -C o -i - ||
        { stop_swtpm; return 1; }
    stop_swtpm
}

# serves_state DIR NAMEFILE [swtpm args...]: a swtpm on DIR has the NV data
# and the persistent key of the original.
serves_state() {
    local dir=$1 name=$2 got
    shift 2
    start_swtpm "$dir" "$@" || return 1
    got=$(tpm2_nvread $NV_INDEX -C o -s ${#NV_DATA} 2>/dev/null)
    tpm2_readpublic -c $PERSISTENT -n "$SCRATCH/name.now" >/dev/null 2>&1
    local key_ok=$?
    stop_swtpm
    [ "$got" = "$NV_DATA" ] && [ $key_ok -eq 0 ] &&
        cmp -s "$name" "$SCRATCH/name.now"
}

image_clean() { qemu-img check "$1" >/dev/null 2>&1; }

head -c 32 /dev/urandom >"$SCRATCH/qtpm.key"

# --- plain swtpm state ------------------------------------------------------
SW1=$SCRATCH/sw1
check "swtpm creates plain TPM 2.0 state" make_state "$SW1"
check "swtpm wrote permall and volatilestate" \
    test -s "$SW1/tpm2-00.permall" -a -s "$SW1/tpm2-00.volatilestate"

IMG=$SCRATCH/plain.qcow2
check "import plain swtpm state into a new image" \
    "$QTPM_IMG" import --swtpm-dir "$SW1" "$IMG"
check "imported image: qtpm-img check is clean" "$QTPM_IMG" check "$IMG"
check "imported image: qemu-img check is clean" image_clean "$IMG"
check "imported image holds permanent and volatile blobs" \
    test "$("$QTPM_IMG" info --output json "$IMG" |
        jq -r '[.blobs[].type] | sort | join(",")')" = "permanent,volatile"

# The permanent blob is byte for byte swtpm's payload (header 10 + TLV 6).
"$QTPM_IMG" dump --blob permanent "$IMG" "$SCRATCH/perm.bin"
check "dumped permanent blob equals swtpm's permall payload" \
    cmp -s "$SCRATCH/perm.bin" <(tail -c +17 "$SW1/tpm2-00.permall")

SW2=$SCRATCH/sw2
check "export to a new folder" "$QTPM_IMG" export --swtpm-dir "$SW2" "$IMG"
check "exported permall is byte for byte swtpm's" \
    cmp -s "$SW2/tpm2-00.permall" "$SW1/tpm2-00.permall"
check "exported volatilestate is byte for byte swtpm's" \
    cmp -s "$SW2/tpm2-00.volatilestate" "$SW1/tpm2-00.volatilestate"
check_fails "export refuses a folder that already holds state" \
    "$QTPM_IMG" export --swtpm-dir "$SW2" "$IMG"
check "a real swtpm on the export serves the same NV data and key" \
    serves_state "$SW2" "$SW1.name"
mkdir -p "$SCRATCH/fresh"
check_fails "(control) a fresh swtpm does not serve them" \
    serves_state "$SCRATCH/fresh" "$SW1.name"

# --- the same into an encrypted qtpm image ---------------------------------
EIMG=$SCRATCH/enc.qcow2
check "import plain swtpm state into an encrypted image" \
    "$QTPM_IMG" import --swtpm-dir "$SW1" --key-file "$SCRATCH/qtpm.key" "$EIMG"
check_fails "the encrypted image gives no state without its key" \
    "$QTPM_IMG" dump --blob permanent "$EIMG" "$SCRATCH/nokey.out"
SW3=$SCRATCH/sw3
check "export from the encrypted image" \
    "$QTPM_IMG" export --swtpm-dir "$SW3" --key-file "$SCRATCH/qtpm.key" "$EIMG"
check "swtpm on that export serves the same NV data and key" \
    serves_state "$SW3" "$SW1.name"

# --- qtpm runs on the imported state; swtpm takes it back -------------------
QD=$SCRATCH/qtpm-run
QTPM_NV="changed under qtpm $$"
mkdir -p "$QD"
if start_qtpm "$QD" "$EIMG" "$SCRATCH/qtpm.key"; then
    ok "qtpm starts on the imported, encrypted image"
    use_tpm "$QD"
    check "qtpm: tpm2_startup -c" tpm startup -c
    check "qtpm serves swtpm's NV data" \
        bash -c "tpm2_nvread $NV_INDEX -C o -s ${#NV_DATA} 2>/dev/null | cmp -s - <(printf %s '$NV_DATA')"
    check "qtpm has swtpm's persistent key" \
        tpm readpublic -c $PERSISTENT -n "$QD/name"
    check "... with the same name" cmp -s "$QD/name" "$SW1.name"
    check "qtpm: write new NV data" \
        bash -c "printf %s '$QTPM_NV' | tpm2_nvwrite $NV_INDEX -C o -i - 2>/dev/null"
    check "info works while qtpm owns the image" \
        "$QTPM_IMG" info --key-file "$SCRATCH/qtpm.key" "$EIMG"
    check "check works while qtpm owns the image" \
        "$QTPM_IMG" check --key-file "$SCRATCH/qtpm.key" "$EIMG"
    "$QTPM_IMG" rekey --key-file "$SCRATCH/qtpm.key" --remove-key "$EIMG" \
        2>"$SCRATCH/rekey.err"
    check "rekey refuses the image qtpm owns, naming the lock" \
        grep -q "^qtpm-img: .*lock" "$SCRATCH/rekey.err"
    check "qtpm: orderly tpm2_shutdown" tpm shutdown -c
    check "qtpm: QMP quit" qmp_quit "$QD"
else
    not_ok "qtpm starts on the imported, encrypted image"
fi
check "after qtpm: qtpm-img check clean" \
    "$QTPM_IMG" check --key-file "$SCRATCH/qtpm.key" "$EIMG"
check "after qtpm: qemu-img check clean" image_clean "$EIMG"
SWQ=$SCRATCH/swq
check "export qtpm's state" \
    "$QTPM_IMG" export --swtpm-dir "$SWQ" --key-file "$SCRATCH/qtpm.key" "$EIMG"
SWTPM_NV=$NV_DATA
NV_DATA=$QTPM_NV
check "swtpm serves the NV data qtpm wrote, and the same key" \
    serves_state "$SWQ" "$SW1.name"
NV_DATA=$SWTPM_NV

# --- swtpm-encrypted state, AES-256 with a binary key -----------------------
head -c 32 /dev/urandom >"$SCRATCH/sw256.key"
SWE=$SCRATCH/swe
K256="file=$SCRATCH/sw256.key,mode=aes-256-cbc,format=binary"
check "swtpm creates AES-256 encrypted state" make_state "$SWE" --key "$K256"
check "swtpm's permall is encrypted (header flags 0x0009)" \
    test "$(od -An -tx1 -j4 -N2 "$SWE/tpm2-00.permall" | tr -d ' ')" = 0009

IMG2=$SCRATCH/from-enc.qcow2
check_fails "import of encrypted swtpm state without its key fails" \
    "$QTPM_IMG" import --swtpm-dir "$SWE" "$IMG2"
check "... and leaves no image behind" test ! -e "$IMG2"
head -c 32 /dev/urandom >"$SCRATCH/wrong.key"
check_fails "import with the wrong swtpm key fails" \
    "$QTPM_IMG" import --swtpm-dir "$SWE" --swtpm-key-file "$SCRATCH/wrong.key" "$IMG2"
check "... and leaves no image behind" test ! -e "$IMG2"
check "import with the swtpm key" \
    "$QTPM_IMG" import --swtpm-dir "$SWE" --swtpm-key-file "$SCRATCH/sw256.key" \
        --key-file "$SCRATCH/qtpm.key" "$IMG2"
check "qemu-img check is clean" image_clean "$IMG2"
SW4=$SCRATCH/sw4
check "plain export of imported encrypted state" \
    "$QTPM_IMG" export --swtpm-dir "$SW4" --key-file "$SCRATCH/qtpm.key" "$IMG2"
check "swtpm on the plain export serves the same NV data and key" \
    serves_state "$SW4" "$SWE.name"

# swtpm-encrypted export: swtpm reads it with its key, in hex this time
od -An -tx1 -v "$SCRATCH/sw256.key" | tr -d ' \n' >"$SCRATCH/sw256.hex"
SW5=$SCRATCH/sw5
check "encrypted export for swtpm" \
    "$QTPM_IMG" export --swtpm-dir "$SW5" --swtpm-key-file "$SCRATCH/sw256.hex" \
        --swtpm-key-format hex --key-file "$SCRATCH/qtpm.key" "$IMG2"
check "exported permall is encrypted (header flags 0x0009)" \
    test "$(od -An -tx1 -j4 -N2 "$SW5/tpm2-00.permall" | tr -d ' ')" = 0009
check "swtpm with the key serves the encrypted export" \
    serves_state "$SW5" "$SWE.name" --key "$K256"

# --- swtpm-encrypted state, AES-128 with a hex key --------------------------
head -c 16 /dev/urandom | od -An -tx1 -v | tr -d ' \n' >"$SCRATCH/sw128.hex"
SW6=$SCRATCH/sw6
check "swtpm creates AES-128 encrypted state (hex key)" \
    make_state "$SW6" --key "file=$SCRATCH/sw128.hex,mode=aes-cbc,format=hex"
IMG3=$SCRATCH/from-128.qcow2
check "import with the AES-128 hex key" \
    "$QTPM_IMG" import --swtpm-dir "$SW6" --swtpm-key-file "$SCRATCH/sw128.hex" \
        --swtpm-key-format hex "$IMG3"
SW7=$SCRATCH/sw7
"$QTPM_IMG" export --swtpm-dir "$SW7" "$IMG3"
check "swtpm on its export serves the same NV data and key" \
    serves_state "$SW7" "$SW6.name"

# --- swtpm keys derived from a passphrase (--key pwdfile=) -------------------
printf %s "swtpm passphrase $$" >"$SCRATCH/sw.pwd"
SW8=$SCRATCH/sw8
check "swtpm creates state under a pwdfile key (PBKDF2, AES-256)" \
    make_state "$SW8" --key "pwdfile=$SCRATCH/sw.pwd,mode=aes-256-cbc"
IMG4=$SCRATCH/from-pwd.qcow2
check_fails "import with the wrong swtpm passphrase fails" \
    "$QTPM_IMG" import --swtpm-dir "$SW8" --swtpm-pwd-file "$SCRATCH/wrong.key" "$IMG4"
check_fails "import with the right passphrase but the other KDF fails" \
    "$QTPM_IMG" import --swtpm-dir "$SW8" --swtpm-pwd-file "$SCRATCH/sw.pwd" \
        --swtpm-kdf sha512 "$IMG4"
check "... and leaves no image behind" test ! -e "$IMG4"
check "import with the swtpm passphrase" \
    "$QTPM_IMG" import --swtpm-dir "$SW8" --swtpm-pwd-file "$SCRATCH/sw.pwd" "$IMG4"
SW9=$SCRATCH/sw9
check "export encrypted under the same passphrase" \
    "$QTPM_IMG" export --swtpm-dir "$SW9" --swtpm-pwd-file "$SCRATCH/sw.pwd" "$IMG4"
check "swtpm with the pwdfile serves the export" \
    serves_state "$SW9" "$SW8.name" --key "pwdfile=$SCRATCH/sw.pwd,mode=aes-256-cbc"
SW10=$SCRATCH/sw10
check "swtpm creates state under a pwdfile key (SHA-512, AES-128)" \
    make_state "$SW10" --key "pwdfile=$SCRATCH/sw.pwd,kdf=sha512"
IMG5=$SCRATCH/from-pwd-sha512.qcow2
check "import with --swtpm-kdf sha512" \
    "$QTPM_IMG" import --swtpm-dir "$SW10" --swtpm-pwd-file "$SCRATCH/sw.pwd" \
        --swtpm-kdf sha512 "$IMG5"
SW11=$SCRATCH/sw11
"$QTPM_IMG" export --swtpm-dir "$SW11" "$IMG5"
check "swtpm on its plain export serves the same NV data and key" \
    serves_state "$SW11" "$SW10.name"

for i in "$IMG" "$EIMG" "$IMG2" "$IMG3" "$IMG4" "$IMG5"; do
    check "qemu-img check clean: $(basename "$i")" image_clean "$i"
done

done_testing
