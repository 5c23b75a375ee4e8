#!/bin/bash
# qtpm-img: every command and its error paths. Every refused command exits 1
# (check's damage: 2) with one "qtpm-img: " sentence and leaves the image's
# sha256 unchanged; qemu-img check is clean on every image left behind.
. "$(dirname "$0")/../lib.sh"

S=$SCRATCH
sha() { sha256sum "$1" | cut -d' ' -f1; }

# fails_with DESC RC PATTERN CMD...: CMD exits RC and says one "qtpm-img: "
# sentence matching PATTERN (extended regex, any case).
fails_with() {
    local d=$1 rc=$2 pat=$3 got
    shift 3
    "$@" >"$S/out" 2>"$S/err"
    got=$?
    if [ $got -eq "$rc" ] && [ "$(wc -l <"$S/err")" -eq 1 ] &&
        grep -q '^qtpm-img: ' "$S/err" && grep -qiE "$pat" "$S/err"; then
        ok "$d"
    else
        not_ok "$d (exit $got: $(cat "$S/err"))"
    fi
}

# refused DESC PATTERN IMAGE CMD...: fails_with 1, and IMAGE is unchanged.
refused() {
    local d=$1 pat=$2 img=$3 before
    shift 3
    before=$(sha "$img")
    fails_with "$d" 1 "$pat" "$@"
    check "$d: image unchanged" test "$(sha "$img")" = "$before"
}

json() { "$QTPM_IMG" info --output json "${@:2}" "$1"; }

# be32 N: four big-endian bytes.
be32() {
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) \
        $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"
}
# swtpm_plain OUT PAYLOAD: a plain swtpm state file (blob header v2, one
# TAG_DATA), as swtpm's dir backend writes it.
swtpm_plain() {
    local n
    n=$(stat -c %s "$2")
    { printf '\x02\x01\x00\x0a\x00\x00'; be32 $((n + 16))
      printf '\x00\x01'; be32 "$n"; cat "$2"; } >"$1"
}

# --- keys --------------------------------------------------------------------
head -c 32 /dev/urandom >"$S/raw.key"
head -c 32 /dev/urandom >"$S/wrong.key"
head -c 31 /dev/urandom >"$S/short.key"
od -An -tx1 -v "$S/raw.key" | tr -d ' \n' >"$S/hex.key"; echo >>"$S/hex.key"
base64 -w0 "$S/raw.key" >"$S/b64.key"
printf %s 'correct horse battery staple' >"$S/pass"
printf %s 'not the passphrase' >"$S/wrong.pass"
K=(--key-file "$S/raw.key")
WK=(--key-file "$S/wrong.key")

# --- create ----------------------------------------------------------------
P=$S/plain.qcow2
check "create a plain image" "$QTPM_IMG" create "$P"
check "the image file has mode 0600" test "$(stat -c %a "$P")" = 600
check "the image is qcow2 v3" test "$(qemu-img info --output=json "$P" |
    jq -r '.format + " " + ."format-specific".data.compat')" = "qcow2 1.1"
check "info: plain, TPM 2.0, no blobs" test "$(json "$P" |
    jq -c '[.encrypted, .key, ."tpm-version", (.blobs | length)]')" = \
    '[false,"none","2.0",0]'
"$QTPM_IMG" info "$P" >"$S/info.txt"
check "human info names encryption and TPM version" \
    grep -q '^TPM version: 2.0' "$S/info.txt"
check "human info says unencrypted" grep -q '^encryption: none' "$S/info.txt"
check "check: a new image is clean" "$QTPM_IMG" check "$P"

P12=$S/tpm12.qcow2
check "create a TPM 1.2 image" "$QTPM_IMG" create --tpm 1.2 --size 2M "$P12"
check "info: TPM 1.2" test "$(json "$P12" | jq -r '."tpm-version"')" = 1.2
check "--size sets the virtual size" test "$(qemu-img info --output=json \
    "$P12" | jq -r '."virtual-size"')" -ge $((2 * 1024 * 1024))

E=$S/enc.qcow2
check "create with a raw key" "$QTPM_IMG" create "${K[@]}" "$E"
check "info with the key: encrypted, raw key" \
    test "$(json "$E" "${K[@]}" | jq -c '[.encrypted, .key]')" = '[true,"raw"]'
check "the hex form of the key opens it" \
    "$QTPM_IMG" check --key-file "$S/hex.key" --key-format hex "$E"
check "the base64 form of the key opens it" \
    "$QTPM_IMG" check --key-file "$S/b64.key" --key-format base64 "$E"
EH=$S/enc-hex.qcow2
check "create with a hex key" \
    "$QTPM_IMG" create --key-file "$S/hex.key" --key-format hex "$EH"
check "the raw form opens the hex-created image" "$QTPM_IMG" check "${K[@]}" "$EH"
EP=$S/pass.qcow2
check "create with a passphrase" \
    "$QTPM_IMG" create --passphrase-file "$S/pass" "$EP"
check "info: passphrase with its iteration count" test "$(json "$EP" \
    --passphrase-file "$S/pass" | jq -r '.key + " " + (."kdf-iterations" >= 600000 | tostring)')" = \
    "passphrase true"

refused "create refuses an existing image" "exists" "$P" \
    "$QTPM_IMG" create "$P"
echo "precious" >"$S/notes.txt"
refused "create refuses any existing non-empty file" "exists" "$S/notes.txt" \
    "$QTPM_IMG" create "$S/notes.txt"
: >"$S/empty.qcow2"
check "create accepts an existing empty file" "$QTPM_IMG" create "$S/empty.qcow2"
# An empty file that qemu-io holds read-write is still in use: no create.
: >"$S/held.img"
qemu-io -f raw -c 'sleep 60000' "$S/held.img" >/dev/null 2>&1 &
held=$!
for _ in $(seq 300); do
    grep -qE ":$(stat -c %i "$S/held.img") 10[01] 101( |\$)" /proc/locks && break
    sleep 0.1
done
refused "create refuses a file that qemu-io holds" "locked by another process" \
    "$S/held.img" "$QTPM_IMG" create "$S/held.img"
kill "$held"; wait "$held" 2>/dev/null
for bad in "--tpm 3.0" "--size none" "--key-file $S/short.key" \
    "--key-file $S/raw.key --passphrase-file $S/pass" "--key-format hex" \
    "--key-file $S/raw.key --key-format rot13" "--key-file $S/missing.key" \
    "--no-such-option"; do
    # shellcheck disable=SC2086
    fails_with "create $bad: refused" 1 . "$QTPM_IMG" create $bad "$S/new.qcow2"
    check "create $bad: no file left" test ! -e "$S/new.qcow2"
done
fails_with "create without IMAGE" 1 "IMAGE" "$QTPM_IMG" create
fails_with "unknown command" 1 "unknown command" "$QTPM_IMG" frobnicate
check "--help works" "$QTPM_IMG" --help

# --- import / dump / export with made-up swtpm files -------------------------
head -c 5000 /dev/urandom >"$S/perm.payload"
head -c 700 /dev/urandom >"$S/vol.payload"
SW=$S/sw
mkdir -p "$SW"
swtpm_plain "$SW/tpm2-00.permall" "$S/perm.payload"
swtpm_plain "$SW/tpm2-00.volatilestate" "$S/vol.payload"

I=$S/imported.qcow2
check "import into a new image" "$QTPM_IMG" import --swtpm-dir "$SW" "$I"
check "the new image has mode 0600" test "$(stat -c %a "$I")" = 600
check "info lists permanent and volatile blobs" test "$(json "$I" |
    jq -r '[.blobs[].type] | sort | join(",")')" = "permanent,volatile"
check "every blob has offset, length, crc32 and generation" test "$(json "$I" |
    jq '[.blobs[] | select(.offset > 0 and .length > 0 and .crc32 != null and .generation > 0)] | length')" = 2
check "dump permanent returns the swtpm payload" \
    bash -c "'$QTPM_IMG' dump --blob permanent '$I' '$S/d.perm' && cmp -s '$S/d.perm' '$S/perm.payload'"
check "dump volatile to stdout returns the swtpm payload" \
    bash -c "'$QTPM_IMG' dump --blob volatile '$I' - | cmp -s - '$S/vol.payload'"
check "dump output has mode 0600" test "$(stat -c %a "$S/d.perm")" = 600
fails_with "dump of an absent blob" 1 "savestate" \
    "$QTPM_IMG" dump --blob savestate "$I" "$S/d.save"
fails_with "dump --blob with a bad name" 1 "permanent" \
    "$QTPM_IMG" dump --blob everything "$I" "$S/d.x"
refused "dump over the image itself" "is the image" "$I" \
    "$QTPM_IMG" dump --blob permanent "$I" "$I"
refused "import into an image that holds state" "already holds" "$I" \
    "$QTPM_IMG" import --swtpm-dir "$SW" "$I"

X=$S/exported
check "export" "$QTPM_IMG" export --swtpm-dir "$X" "$I"
check "exported permall is byte for byte swtpm's plain file" \
    cmp -s "$X/tpm2-00.permall" "$SW/tpm2-00.permall"
check "exported volatilestate is byte for byte swtpm's plain file" \
    cmp -s "$X/tpm2-00.volatilestate" "$SW/tpm2-00.volatilestate"
check "no savestate exported" test ! -e "$X/tpm2-00.savestate"
fails_with "export refuses to overwrite swtpm state" 1 "exists" \
    "$QTPM_IMG" export --swtpm-dir "$X" "$I"
fails_with "export of an empty image" 1 "no TPM state" \
    "$QTPM_IMG" export --swtpm-dir "$S/x2" "$P"

check "import into an existing empty store" \
    "$QTPM_IMG" import --swtpm-dir "$SW" "$S/empty.qcow2"
check "import into an encrypted image" \
    "$QTPM_IMG" import --swtpm-dir "$SW" "${K[@]}" "$E"
check "encrypted dump returns the plaintext" \
    bash -c "'$QTPM_IMG' dump --blob permanent --key-file '$S/raw.key' '$E' - | cmp -s - '$S/perm.payload'"
check "import into a passphrase image" \
    "$QTPM_IMG" import --swtpm-dir "$SW" --passphrase-file "$S/pass" "$EP"

# blank raw image (all zeros): formatted by import
B=$S/blank.raw
truncate -s 1M "$B"
check "import into a blank raw image" "$QTPM_IMG" import --swtpm-dir "$SW" "$B"
check "... which now holds the state" \
    bash -c "'$QTPM_IMG' dump --blob permanent '$B' - | cmp -s - '$S/perm.payload'"

# TPM 1.2 state
SW12=$S/sw12
mkdir -p "$SW12"
swtpm_plain "$SW12/tpm-00.permall" "$S/perm.payload"
swtpm_plain "$SW12/tpm-00.savestate" "$S/vol.payload"
refused "TPM 1.2 state into a TPM 2.0 image" "TPM" "$S/enc-hex.qcow2" \
    "$QTPM_IMG" import --swtpm-dir "$SW12" --key-file "$S/raw.key" "$S/enc-hex.qcow2"
check "TPM 1.2 state into a TPM 1.2 image" \
    "$QTPM_IMG" import --swtpm-dir "$SW12" "$P12"
check "its savestate blob" test "$(json "$P12" |
    jq -r '[.blobs[].type] | sort | join(",")')" = "permanent,savestate"
fails_with "--tpm must match the state" 1 "TPM" \
    "$QTPM_IMG" import --tpm 2.0 --swtpm-dir "$SW12" "$S/new.qcow2"
check "... no image left" test ! -e "$S/new.qcow2"
X12=$S/exported12
check "export TPM 1.2 state" "$QTPM_IMG" export --swtpm-dir "$X12" "$P12"
check "exported as tpm-00.* files" \
    cmp -s "$X12/tpm-00.savestate" "$SW12/tpm-00.savestate"

# broken swtpm input: nothing created
mkdir -p "$S/swbad" "$S/swnone" "$S/swboth"
head -c 100 /dev/urandom >"$S/swbad/tpm2-00.permall"
cp "$SW/tpm2-00.permall" "$S/swboth/"
cp "$SW12/tpm-00.permall" "$S/swboth/"
for d in swbad swnone swboth missing; do
    fails_with "import from $d: refused" 1 . \
        "$QTPM_IMG" import --swtpm-dir "$S/$d" "$S/new.qcow2"
    check "import from $d: no image left" test ! -e "$S/new.qcow2"
done
fails_with "import with a swtpm key for plain swtpm state" 1 "not encrypted" \
    "$QTPM_IMG" import --swtpm-dir "$SW" --swtpm-key-file "$S/raw.key" "$S/new.qcow2"
check "... no image left" test ! -e "$S/new.qcow2"
fails_with "import without --swtpm-dir" 1 "swtpm-dir" \
    "$QTPM_IMG" import "$S/new.qcow2"
for bad in "--swtpm-key-file $S/raw.key --swtpm-pwd-file $S/pass" \
    "--swtpm-key-format hex" "--swtpm-kdf sha512" \
    "--swtpm-key-file $S/raw.key --swtpm-key-format base64" \
    "--swtpm-pwd-file $S/pass --swtpm-kdf md5" "--swtpm-key-file $S/short.key" \
    "--swtpm-key-file $S/b64.key --swtpm-key-format hex" \
    "--swtpm-pwd-file $S/pass"; do
    # shellcheck disable=SC2086
    fails_with "import $bad: refused" 1 . \
        "$QTPM_IMG" import --swtpm-dir "$SW" $bad "$S/new.qcow2"
    check "import $bad: no image left" test ! -e "$S/new.qcow2"
done

# --- wrong key, no key, unexpected key: nothing changes ----------------------
for cmd in "info" "check" "dump --blob permanent" "export --swtpm-dir $S/xx" \
    "rekey --remove-key" "import --swtpm-dir $SW"; do
    # shellcheck disable=SC2086
    refused "$cmd, wrong key" "key" "$E" "$QTPM_IMG" $cmd "${WK[@]}" "$E" $([ "${cmd%% *}" = dump ] && echo "$S/d.out")
    case "$cmd" in
    info|check) ;;  # readers of metadata: no key needed (see below)
    *)
        # shellcheck disable=SC2086
        refused "$cmd, no key" "key" "$E" "$QTPM_IMG" $cmd "$E" $([ "${cmd%% *}" = dump ] && echo "$S/d.out")
        ;;
    esac
    # shellcheck disable=SC2086
    refused "$cmd, wrong passphrase" "key|passphrase" "$EP" \
        "$QTPM_IMG" $cmd --passphrase-file "$S/wrong.pass" "$EP" $([ "${cmd%% *}" = dump ] && echo "$S/d.out")
    # shellcheck disable=SC2086
    refused "$cmd, unexpected key" "key|encrypt" "$I" "$QTPM_IMG" $cmd "${K[@]}" "$I" $([ "${cmd%% *}" = dump ] && echo "$S/d.out")
done
check "no dump output was written" test ! -e "$S/d.out"

# info and check open an encrypted image without its key: metadata and CRCs
before=$(sha "$E")
check "info without the key: encrypted, blobs listed" test "$(json "$E" |
    jq -c '[.encrypted, .key, (.blobs | length)]')" = '[true,"raw",2]'
"$QTPM_IMG" check "$E" >"$S/out" 2>&1
check "check without the key: CRCs clean, says tags were not checked" \
    grep -q "CRCs only" "$S/out"
check "... image unchanged" test "$(sha "$E")" = "$before"
check "no export was written" test ! -e "$S/xx"

# --- not a qtpm image ------------------------------------------------------
head -c 65536 /dev/urandom >"$S/random.raw"
qemu-img create -q -f qcow2 "$S/data.qcow2" 1M
qemu-io -c "write -P 0x61 0 4k" "$S/data.qcow2" >/dev/null
for f in random.raw data.qcow2; do
    for cmd in "info" "check" "import --swtpm-dir $SW" "rekey --new-key-file $S/raw.key"; do
        # shellcheck disable=SC2086
        refused "$f, $cmd: refused" . "$S/$f" "$QTPM_IMG" $cmd "$S/$f"
    done
done

# --- rekey: add, change, remove encryption ----------------------------------
R=$S/rekey.qcow2
cp "$I" "$R"
check "rekey: add a raw key" "$QTPM_IMG" rekey --new-key-file "$S/raw.key" "$R"
check "... it now needs the key" "$QTPM_IMG" check "${K[@]}" "$R"
refused "... and opens no longer without it" "key" "$R" \
    "$QTPM_IMG" dump --blob permanent "$R" -
check "... info says encrypted" test "$(json "$R" "${K[@]}" | jq .encrypted)" = true
check "rekey: raw key to a passphrase" \
    "$QTPM_IMG" rekey "${K[@]}" --new-passphrase-file "$S/pass" "$R"
refused "... the old key no longer opens it" "key|passphrase" "$R" \
    "$QTPM_IMG" check "${K[@]}" "$R"
refused "rekey to the current key" "current key" "$R" \
    "$QTPM_IMG" rekey --passphrase-file "$S/pass" --new-passphrase-file "$S/pass" "$R"
check "rekey: a new passphrase with --kdf-iterations" \
    "$QTPM_IMG" rekey --passphrase-file "$S/pass" --new-passphrase-file "$S/wrong.pass" \
        --kdf-iterations 700000 "$R"
check "... info shows the count" test "$(json "$R" --passphrase-file "$S/wrong.pass" |
    jq '."kdf-iterations"')" = 700000
refused "--kdf-iterations without a new passphrase" "kdf-iterations" "$R" \
    "$QTPM_IMG" rekey --passphrase-file "$S/wrong.pass" --remove-key --kdf-iterations 5 "$R"
check "rekey: passphrase to a hex key" "$QTPM_IMG" rekey --passphrase-file "$S/wrong.pass" \
    --new-key-file "$S/hex.key" --new-key-format hex "$R"
check "rekey: remove the key" "$QTPM_IMG" rekey "${K[@]}" --remove-key "$R"
check "... info says unencrypted" test "$(json "$R" | jq .encrypted)" = false
check "the state survived every rekey" \
    bash -c "'$QTPM_IMG' dump --blob permanent '$R' - | cmp -s - '$S/perm.payload' &&
             '$QTPM_IMG' dump --blob volatile '$R' - | cmp -s - '$S/vol.payload'"
refused "rekey with no new key option" "exactly one" "$R" "$QTPM_IMG" rekey "$R"
refused "rekey with two new key options" "exactly one" "$R" \
    "$QTPM_IMG" rekey --remove-key --new-key-file "$S/raw.key" "$R"
refused "rekey --remove-key on a plain image" "not encrypted" "$R" \
    "$QTPM_IMG" rekey --remove-key "$R"
refused "rekey to a 31-byte key" "32 bytes" "$R" \
    "$QTPM_IMG" rekey --new-key-file "$S/short.key" "$R"

# --- damage: check exits 2, damaged bytes are never returned ----------------
D=$S/damaged.qcow2
cp "$I" "$D"
off=$(json "$D" | jq '.blobs[] | select(.type == "permanent") | .offset')
qemu-io -c "write -P 0x5a $((off + 100)) 1" "$D" >/dev/null
fails_with "check finds a damaged blob: exit 2" 2 . "$QTPM_IMG" check "$D"
D2=$S/damaged-enc.qcow2
cp "$E" "$D2"
off=$(json "$D2" | jq '.blobs[] | select(.type == "permanent") | .offset')
qemu-io -c "write -P 0x5a $((off + 100)) 1" "$D2" >/dev/null
fails_with "check without the key finds damage in an encrypted blob" 2 . \
    "$QTPM_IMG" check "$D2"
fails_with "check with the key finds it too" 2 . "$QTPM_IMG" check "${K[@]}" "$D2"
"$QTPM_IMG" dump --blob permanent "$D" "$S/dd" 2>/dev/null
check "dump never returns the damaged bytes" \
    bash -c "[ ! -e '$S/dd' ] || cmp -s '$S/dd' '$S/perm.payload'"

# --- locks: a running owner refuses writers, readers still work -------------
L=$S/locked.qcow2
cp "$I" "$L"
mkfifo "$S/lockfifo"
"$QTPM_IO" -c "lock -i 1 exclusive" -c "sleep 60000" "$L" >"$S/lockfifo" 2>&1 &
bg_pid $!
read -r line <"$S/lockfifo"
check "a second process holds the owner lock" test "${line#locked}" != "$line"
refused "import refuses a locked image" "lock" "$L" \
    "$QTPM_IMG" import --swtpm-dir "$SW" "$L"
refused "rekey refuses a locked image" "lock" "$L" \
    "$QTPM_IMG" rekey --new-key-file "$S/raw.key" "$L"
check "info works on a locked image" "$QTPM_IMG" info "$L"
check "check works on a locked image" "$QTPM_IMG" check "$L"
check "dump works on a locked image" "$QTPM_IMG" dump --blob volatile "$L" "$S/l.vol"
check "export works on a locked image" "$QTPM_IMG" export --swtpm-dir "$S/lx" "$L"

# The same with only the store's owner lock held (an inactive open takes no
# QEMU lock bytes, like a migration target): the owner lock alone refuses.
L2=$S/owned.qcow2
cp "$I" "$L2"
mkfifo "$S/lockfifo2"
"$QTPM_IO" --inactive -c "lock -i 1 exclusive" -c "sleep 60000" "$L2" \
    >"$S/lockfifo2" 2>&1 &
bg_pid $!
read -r line <"$S/lockfifo2"
check "a second process holds only the owner lock" test "${line#locked}" != "$line"
refused "import refuses an owned image, naming the owner lock" "owner lock" \
    "$L2" "$QTPM_IMG" import --swtpm-dir "$SW" "$L2"
refused "rekey refuses an owned image, naming the owner lock" "owner lock" \
    "$L2" "$QTPM_IMG" rekey --new-key-file "$S/raw.key" "$L2"
check "info works on an owned image" "$QTPM_IMG" info "$L2"
check "check works on an owned image" "$QTPM_IMG" check "$L2"

# --- every image left behind is clean for qemu-img ---------------------------
for f in "$S"/*.qcow2; do
    check "qemu-img check clean: $(basename "$f")" qemu-img check -U "$f"
done

done_testing
