#!/bin/bash
# qtpm-img manufacture: what it prints, the one commit it makes, the CA
# directory it creates, and every refusal: exit 1, one "qtpm-img: "
# sentence, the image byte for byte as it was. What the TPM then holds is
# checked with tpm2-tools and openssl in tests/interop/test-manufacture.sh.
. "$(dirname "$0")/../lib.sh"

S=$SCRATCH
# the scratch stores go here, so that what is left behind can be seen
export TMPDIR=$S/tmp
mkdir -p "$TMPDIR"
quiet() { "$@" >/dev/null 2>&1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
mode_of() { stat -c %a "$1"; }
blobs() { "$QTPM_IMG" info --output json "${@:2}" "$1" | jq -c '[.blobs[].type]'; }
# into OUT CMD...: CMD with its stdout in OUT (not the TAP line's).
into() { local out=$1; shift; "$@" >"$out"; }
generation() { "$QTPM_IMG" info --output json "${@:2}" "$1" | jq .generation; }

# refused DESC PATTERN IMAGE CMD...: CMD exits 1 with one "qtpm-img: "
# sentence matching PATTERN, prints nothing on stdout, and IMAGE is unchanged.
refused() {
    local d=$1 pat=$2 img=$3 before got
    shift 3
    before=$(sha "$img")
    "$@" >"$S/out" 2>"$S/err"
    got=$?
    if [ $got -eq 1 ] && [ "$(wc -l <"$S/err")" -eq 1 ] && [ ! -s "$S/out" ] &&
        grep -q '^qtpm-img: ' "$S/err" && grep -qiE "$pat" "$S/err"; then
        ok "$d"
    else
        not_ok "$d (exit $got: $(cat "$S/err"))"
    fi
    check "$d: image unchanged" test "$(sha "$img")" = "$before"
}

"$QTPM_IMG" create "$S/a.qcow2" >/dev/null

# --- a first manufacture -------------------------------------------------
check "manufacture succeeds on a new image" \
    into "$S/made" "$QTPM_IMG" manufacture --ca-dir "$S/ca" --vmid vm1 "$S/a.qcow2"
check "it prints one line per thing made (CA, 2 EKs, 3 certificates)" \
    test "$(wc -l <"$S/made")" -eq 6
check "... the CA" grep -q "^created a local CA in '$S/ca'$" "$S/made"
check "... the RSA EK at 0x81010001" \
    grep -q '^created RSA 2048 endorsement key at persistent handle 0x81010001$' "$S/made"
check "... the ECC EK at 0x81010002" \
    grep -q '^created ECC NIST P-256 endorsement key at persistent handle 0x81010002$' "$S/made"
for idx in 0x01c00002 0x01c0000a 0x01c08000; do
    check "... a write-locked certificate at $idx" \
        grep -qE "^wrote the .* certificate \([0-9]+ bytes\) to NV index $idx, write-locked$" "$S/made"
done
check "the image holds exactly one permanent blob" \
    test "$(blobs "$S/a.qcow2")" = '["permanent"]'
check "written in one commit (generation 1 -> 2)" \
    test "$(generation "$S/a.qcow2")" = 2
check "qemu-img check is clean" quiet qemu-img check -q "$S/a.qcow2"
check "no scratch directory is left behind" \
    test -z "$(ls -A "$TMPDIR")"

for f in swtpm-localca-rootca-privkey.pem signkey.pem; do
    check "CA: $f has mode 0600" test "$(mode_of "$S/ca/$f")" = 600
done
for f in swtpm-localca-rootca-cert.pem issuercert.pem; do
    check "CA: $f has mode 0644" test "$(mode_of "$S/ca/$f")" = 644
done
check "CA: the directory has mode 0700" test "$(mode_of "$S/ca")" = 700
check "CA: the signing CA is signed by the root" \
    quiet openssl verify -CAfile "$S/ca/swtpm-localca-rootca-cert.pem" "$S/ca/issuercert.pem"
check "CA: the signing CA is a CA named CN=swtpm-localca" \
    bash -c "openssl x509 -in '$S/ca/issuercert.pem' -noout -text |
             grep -q 'CA:TRUE' && openssl x509 -in '$S/ca/issuercert.pem' \
             -noout -subject | grep -q 'CN = swtpm-localca$'"
ca_sum=$(cat "$S/ca"/*.pem | sha256sum)

# --- refusals ----------------------------------------------------------------
refused "a second manufacture is refused: the TPM has an EK" \
    "already has an endorsement key at 0x81010001.*--overwrite" "$S/a.qcow2" \
    "$QTPM_IMG" manufacture --ca-dir "$S/ca" "$S/a.qcow2"
refused "manufacture without --ca-dir" "needs --ca-dir" "$S/a.qcow2" \
    "$QTPM_IMG" manufacture "$S/a.qcow2"
refused "an unknown option is named" "unknown option.*--allow-signing" "$S/a.qcow2" \
    "$QTPM_IMG" manufacture --ca-dir "$S/ca" --allow-signing "$S/a.qcow2"
refused "no image" "takes IMAGE" "$S/a.qcow2" \
    "$QTPM_IMG" manufacture --ca-dir "$S/ca"

"$QTPM_IMG" create --tpm 1.2 "$S/t12.qcow2" >/dev/null
refused "a TPM 1.2 image is refused" "TPM 1.2.*TPM 2.0 only" "$S/t12.qcow2" \
    "$QTPM_IMG" manufacture --ca-dir "$S/ca" "$S/t12.qcow2"

"$QTPM_IMG" create "$S/b.qcow2" >/dev/null
: >"$S/plainfile"
refused "a CA directory that cannot be made stops it before the TPM" \
    "CA directory '$S/plainfile/ca': could not create it" "$S/b.qcow2" \
    "$QTPM_IMG" manufacture --ca-dir "$S/plainfile/ca" "$S/b.qcow2"
refused "a scratch directory that cannot be made: refused, image as it was" \
    "scratch directory" "$S/b.qcow2" \
    env TMPDIR="$S/plainfile" "$QTPM_IMG" manufacture --ca-dir "$S/ca" "$S/b.qcow2"
check "the CA is the same after the refusals" \
    test "$(cat "$S/ca"/*.pem | sha256sum)" = "$ca_sum"

# --- keys ------------------------------------------------------------------
head -c 32 /dev/urandom >"$S/k"
head -c 32 /dev/urandom >"$S/wrong"
"$QTPM_IMG" create --key-file "$S/k" "$S/enc.qcow2" >/dev/null
refused "an encrypted image without its key" "key" "$S/enc.qcow2" \
    "$QTPM_IMG" manufacture --ca-dir "$S/ca" "$S/enc.qcow2"
refused "an encrypted image with a wrong key" "key" "$S/enc.qcow2" \
    "$QTPM_IMG" manufacture --key-file "$S/wrong" --ca-dir "$S/ca" "$S/enc.qcow2"
check "an encrypted image with its key" \
    into "$S/made.enc" "$QTPM_IMG" manufacture --key-file "$S/k" --ca-dir "$S/ca" \
    "$S/enc.qcow2"
check "... the existing CA is used, not made again" \
    bash -c "! grep -q 'local CA' '$S/made.enc' && test \"\$(cat '$S/ca'/*.pem | sha256sum)\" = '$ca_sum'"
check "... and the image still checks under the key" \
    quiet "$QTPM_IMG" check --key-file "$S/k" "$S/enc.qcow2"

# --- the --no-* options and --overwrite -----------------------------------------
"$QTPM_IMG" create "$S/bare.qcow2" >/dev/null
check "--no-ek-cert --no-platform-cert: EKs only" \
    into "$S/made.bare" "$QTPM_IMG" manufacture --ca-dir "$S/unused-ca" \
    --no-ek-cert --no-platform-cert "$S/bare.qcow2"
check "... two lines" test "$(wc -l <"$S/made.bare")" -eq 2
check "... and no CA made when no certificate is wanted" test ! -e "$S/unused-ca"

"$QTPM_IMG" create "$S/open.qcow2" >/dev/null
check "--no-lock-nvram" \
    into "$S/made.open" "$QTPM_IMG" manufacture --ca-dir "$S/ca" --no-lock-nvram \
    "$S/open.qcow2"
check "... no index is write-locked" bash -c "! grep -q write-locked '$S/made.open'"

perm_before=$(sha256sum < <("$QTPM_IMG" dump --blob permanent "$S/a.qcow2" -))
check "--overwrite manufactures a fresh TPM in place of one with an EK" \
    into "$S/made.over" "$QTPM_IMG" manufacture --ca-dir "$S/ca" --overwrite "$S/a.qcow2"
check "... 5 lines (no CA made)" test "$(wc -l <"$S/made.over")" -eq 5
check "... a new permanent state" \
    test "$(sha256sum < <("$QTPM_IMG" dump --blob permanent "$S/a.qcow2" -))" != "$perm_before"
check "... in one more commit" test "$(generation "$S/a.qcow2")" = 3
check "... qemu-img check is clean" quiet qemu-img check -q "$S/a.qcow2"

# --- two first uses of one CA directory at once make one CA ------------------
for i in 1 2 3; do "$QTPM_IMG" create "$S/c$i.qcow2" >/dev/null; done
for i in 1 2 3; do
    "$QTPM_IMG" manufacture --ca-dir "$S/ca2" "$S/c$i.qcow2" >"$S/made.c$i" 2>&1 &
    pids[$i]=$!
    bg_pid $!
done
rc=0
for i in 1 2 3; do wait "${pids[$i]}" || rc=1; done
check "three manufactures into one new CA directory at once all succeed" test $rc = 0
check "... exactly one of them made the CA" \
    test "$(cat "$S"/made.c? | grep -c 'created a local CA')" -eq 1

done_testing
