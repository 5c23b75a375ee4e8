#!/bin/bash
# The PBKDF2 iteration count is the image's word: a crafted image that asks
# for 100000000 iterations is refused at once by qtpm, qtpm-img info and
# qtpm-img check, and leaves the image as it was; qtpm-img rekey refuses a
# count below the minimum or above the maximum (docs/keys.md).
. "$(dirname "$0")/../lib.sh"

cd "$SCRATCH" || exit 1
printf 'correct horse battery staple' >pass
"$QTPM_IMG" create --passphrase-file pass good.qcow2 >/dev/null

# craft ITERATIONS OUT: good.qcow2 with every directory slot asking for
# ITERATIONS, its CRC made right again (the MAC needs the key, which the
# count must be checked before deriving).
craft() {
    qemu-img convert -f qcow2 -O raw good.qcow2 crafted.raw &&
    python3 - "$1" crafted.raw <<'EOF' &&
import struct, sys, zlib
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, 'r+b') as f:
    for off in (4096, 8192):
        f.seek(off)
        slot = bytearray(f.read(1024))
        if slot[:8] != b'QTPMDIR1':
            continue
        struct.pack_into('>I', slot, 44, n)
        struct.pack_into('>I', slot, 1020, zlib.crc32(bytes(slot[:1020])))
        f.seek(off)
        f.write(slot)
EOF
    qemu-img convert -f raw -O qcow2 crafted.raw "$2" && rm -f crafted.raw
}
craft 100000000 crafted.qcow2
SUM=$(sha256sum <crafted.qcow2)

# refused_fast TEXT COMMAND...: status 1 (or 2 for check) within 3 s, one
# line holding TEXT on stderr, the image unchanged.
refused_fast() {
    local text=$1; shift
    local t0 rc ms
    t0=$(date +%s%N)
    timeout 60 "$@" >out 2>err
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    diag "$1 $2: status $rc in $ms ms: $(cat err)"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $ms -lt 3000 ] &&
        [ "$(wc -l <err)" -eq 1 ] && grep -qF -- "$text" err &&
        [ "$(sha256sum <crafted.qcow2)" = "$SUM" ]
}
MSG="asks for 100000000 PBKDF2 iterations, more than the 10000000 qtpm accepts"
check "qtpm-img info refuses a 100M-iteration image at once" \
    refused_fast "$MSG" "$QTPM_IMG" info --passphrase-file pass crafted.qcow2
check "qtpm-img check refuses it at once" \
    refused_fast "$MSG" "$QTPM_IMG" check --passphrase-file pass crafted.qcow2
check "qtpm refuses it at once" \
    refused_fast "$MSG" "$QTPM" -object secret,id=p0,file=pass \
    -drive file=crafted.qcow2,if=none,id=drive0 \
    -tpmdev libtpms,id=tpm0,nvram=drive0,passphrase-secret=p0 \
    -device tpm-tis,tpmdev=tpm0
check "qtpm's refusal names the -tpmdev" grep -q "^qtpm: -tpmdev id=tpm0: " err

# The same crafting with a count inside the limits is not refused for its
# count (it fails later, on the directory's MAC): the refusal above is the cap's.
craft 1000 small.qcow2
small_derives() {
    "$QTPM_IMG" info --passphrase-file pass small.qcow2 >out 2>err
    ! grep -q "PBKDF2 iterations, more than" err
}
check "a count within the limits is not refused for its size" small_derives

printf 'another passphrase' >pass2
ORIG=$(sha256sum <good.qcow2)
rekey_refused() {
    local n=$1 text=$2
    "$QTPM_IMG" rekey --passphrase-file pass --new-passphrase-file pass2 \
        --kdf-iterations "$n" good.qcow2 >out 2>err
    [ $? -eq 1 ] && [ "$(wc -l <err)" -eq 1 ] && grep -qF -- "$text" err &&
        [ "$(sha256sum <good.qcow2)" = "$ORIG" ] || { diag "$(cat err)"; return 1; }
}
check "rekey refuses 99999 iterations" \
    rekey_refused 99999 "--kdf-iterations 99999 is too few to slow down a guessed passphrase (at least 100000)"
check "rekey refuses 10000001 iterations" \
    rekey_refused 10000001 "--kdf-iterations 10000001 is more than the 10000000 qtpm accepts"
rekey_min() {
    "$QTPM_IMG" rekey --passphrase-file pass --new-passphrase-file pass2 \
        --kdf-iterations 100000 good.qcow2 &&
        [ "$("$QTPM_IMG" info --output json --passphrase-file pass2 good.qcow2 |
             jq '."kdf-iterations"')" = 100000 ]
}
check "rekey takes the minimum, 100000" rekey_min

done_testing
