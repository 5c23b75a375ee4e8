#!/bin/bash
# A TPM made by qtpm-img manufacture, seen by tpm2-tools through qtpm and by
# openssl: the persistent EKs exist, the certificates in NV verify against
# the local CA and carry the EKs' own public keys, the indices are
# write-locked, tpm2_getekcertificate finds them; once on an encrypted
# image. --overwrite then gives a new EK with new certificates. The CA
# directory serves swtpm_setup's swtpm-localca, and the other way round.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"

S=$SCRATCH
CA=$S/ca
quiet() { "$@" >/dev/null 2>&1; }
# spki_of_cert CERT_PEM / spki_of_pub PUB_PEM: the SubjectPublicKeyInfo, DER hex.
spki_of_cert() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform der | xxd -p | tr -d '\n'; }
spki_of_pub() { openssl pkey -pubin -in "$1" -outform der | xxd -p | tr -d '\n'; }
verify() {
    openssl verify -CAfile "$CA/swtpm-localca-rootca-cert.pem" \
        -untrusted "$CA/issuercert.pem" "$1" >"$S/verify.out" 2>&1 ||
        { diag "$(cat "$S/verify.out")"; return 1; }
}
# raw_is YAML FIELD VALUE: tpm2_readpublic's "FIELD:" has "raw: VALUE".
raw_is() { grep -A2 "^$2:" "$1" | grep -q "^  raw: $3$"; }
text_has() { openssl x509 -in "$1" -noout -text | grep -qE "$2"; }

# check_tpm NAME DIR: the manufactured TPM behind DIR/q.sock.
check_tpm() {
    local name=$1 dir=$2 what idx handle
    use_tpm "$dir"
    check "$name: tpm2_startup -c" tpm startup -c
    for what in rsa:0x81010001 ecc:0x81010002; do
        check "$name: tpm2_readpublic ${what#*:} (${what%%:*} EK)" \
            tpm readpublic -c "${what#*:}" -f pem -o "$dir/${what%%:*}.pub"
    done
    tpm2_readpublic -c 0x81010001 >"$dir/rsa.yaml" 2>/dev/null
    tpm2_readpublic -c 0x81010002 >"$dir/ecc.yaml" 2>/dev/null
    check "$name: the RSA EK is template L-1: RSA 2048, AES-128-CFB, restricted decrypt" \
        bash -c "$(declare -f raw_is); raw_is '$dir/rsa.yaml' type 0x1 &&
                 raw_is '$dir/rsa.yaml' attributes 0x300b2 &&
                 raw_is '$dir/rsa.yaml' sym-alg 0x6 && raw_is '$dir/rsa.yaml' sym-mode 0x43 &&
                 grep -q '^bits: 2048$' '$dir/rsa.yaml' &&
                 grep -q '^sym-keybits: 128$' '$dir/rsa.yaml'"
    check "$name: the ECC EK is template L-2: NIST P-256, AES-128-CFB, restricted decrypt" \
        bash -c "$(declare -f raw_is); raw_is '$dir/ecc.yaml' type 0x23 &&
                 raw_is '$dir/ecc.yaml' attributes 0x300b2 &&
                 raw_is '$dir/ecc.yaml' curve-id 0x3 &&
                 raw_is '$dir/ecc.yaml' sym-alg 0x6 && raw_is '$dir/ecc.yaml' sym-mode 0x43"
    check "$name: both EKs carry the PolicySecret(endorsement) authPolicy" \
        bash -c "tpm2_readpublic -c 0x81010001 | grep -qi 'authorization policy: 837197674484B3F81A90CC8D46A5D724FD52D76E06520B64F2A1DA1B331469AA' &&
                 tpm2_readpublic -c 0x81010002 | grep -qi 'authorization policy: 837197674484B3F81A90CC8D46A5D724FD52D76E06520B64F2A1DA1B331469AA'"
    for what in rsa:0x01c00002 ecc:0x01c0000a plat:0x01c08000; do
        idx=${what#*:}
        check "$name: tpm2_nvread $idx" tpm nvread "$idx" -o "$dir/${what%%:*}.der"
        check "$name: $idx holds a DER certificate" \
            quiet openssl x509 -inform der -in "$dir/${what%%:*}.der" -out "$dir/${what%%:*}.crt"
        check "$name: openssl verify accepts it against the CA in --ca-dir" \
            verify "$dir/${what%%:*}.crt"
        check "$name: $idx is write-locked and platform-created" \
            bash -c "tpm2_nvreadpublic $idx | grep -q 'writelocked' &&
                     tpm2_nvreadpublic $idx | grep -q 'platformcreate'"
        echo overwritten >"$dir/junk"
        check "$name: tpm2_nvwrite to $idx fails: TPM_RC_NV_LOCKED" \
            tpm_fails_with 0x148 nvwrite "$idx" -C p -i "$dir/junk"
    done
    check "$name: the RSA EK certificate's key is the persistent RSA EK's" \
        test "$(spki_of_cert "$dir/rsa.crt")" = "$(spki_of_pub "$dir/rsa.pub")"
    check "$name: the ECC EK certificate's key is the persistent ECC EK's" \
        test "$(spki_of_cert "$dir/ecc.crt")" = "$(spki_of_pub "$dir/ecc.pub")"
    check "$name: the platform certificate's key is the RSA EK's" \
        test "$(spki_of_cert "$dir/plat.crt")" = "$(spki_of_pub "$dir/rsa.pub")"
    check "$name: EK certificates: extended key usage 2.23.133.8.1" \
        bash -c "$(declare -f text_has); text_has '$dir/rsa.crt' '^ *2\.23\.133\.8\.1' &&
                 text_has '$dir/ecc.crt' '^ *2\.23\.133\.8\.1'"
    check "$name: platform certificate: extended key usage 2.23.133.8.2" \
        text_has "$dir/plat.crt" '^ *2\.23\.133\.8\.2'
    check "$name: critical SAN with the TPM's manufacturer, model and version" \
        bash -c "$(declare -f text_has); text_has '$dir/rsa.crt' 'Subject Alternative Name: critical' &&
                 text_has '$dir/rsa.crt' 'DirName:/2\.23\.133\.2\.1=id:00001014/2\.23\.133\.2\.2=swtpm/2\.23\.133\.2\.3=id:'"
    check "$name: basicConstraints CA:FALSE, critical" \
        bash -c "openssl x509 -in '$dir/ecc.crt' -noout -text | grep -A1 'Basic Constraints: critical' | grep -q 'CA:FALSE'"
    check "$name: key usage keyEncipherment (RSA) and keyAgreement (ECC)" \
        bash -c "$(declare -f text_has); text_has '$dir/rsa.crt' 'Key Encipherment' &&
                 text_has '$dir/ecc.crt' 'Key Agreement'"
    check "$name: --vmid is the subject" \
        bash -c "openssl x509 -in '$dir/rsa.crt' -noout -subject | grep -q 'CN = $name-vm'"
    check "$name: tpm2_getekcertificate reads both EK certificates from NV" \
        tpm getekcertificate -o "$dir/ek1.der" -o "$dir/ek2.der"
    check "$name: ... the same bytes as tpm2_nvread" \
        bash -c "cmp -s '$dir/ek1.der' '$dir/rsa.der' && cmp -s '$dir/ek2.der' '$dir/ecc.der'"
}

head -c 32 /dev/urandom >"$S/key"
for name in plain keyed; do
    dir=$S/$name
    mkdir -p "$dir"
    keyopt=()
    [ $name = keyed ] && keyopt=(--key-file "$S/key")
    "$QTPM_IMG" create "${keyopt[@]}" "$dir/tpm.qcow2" >/dev/null
    check "$name: qtpm-img manufacture" \
        quiet "$QTPM_IMG" manufacture "${keyopt[@]}" --ca-dir "$CA" --vmid "$name-vm" \
        "$dir/tpm.qcow2"
    if start_qtpm "$dir" "$dir/tpm.qcow2" "$([ $name = keyed ] && echo "$S/key")"; then
        check_tpm "$name" "$dir"
        check "$name: qtpm quits" qmp_quit "$dir"
    else
        not_ok "$name: qtpm starts on the manufactured image"
    fi
done

# --overwrite: a fresh TPM, so a new EK, and new certificates for it.
dir=$S/plain
cp "$dir/rsa.pub" "$S/old-rsa.pub"
check "--overwrite replaces the manufactured TPM" \
    quiet "$QTPM_IMG" manufacture --ca-dir "$CA" --vmid plain-vm --overwrite "$dir/tpm.qcow2"
if start_qtpm "$dir" "$dir/tpm.qcow2"; then
    check_tpm plain "$dir"
    check "--overwrite: a new RSA EK" \
        test "$(spki_of_pub "$dir/rsa.pub")" != "$(spki_of_pub "$S/old-rsa.pub")"
    # Without its EKs, a new manufacture gets as far as making two EKs on
    # its scratch copy and then fails on the certificate indices that are
    # still there: the image must not change.
    check "the EKs removed with tpm2_evictcontrol" \
        bash -c "$(declare -f tpm); SCRATCH='$SCRATCH'; tpm evictcontrol -C o -c 0x81010001 &&
                 tpm evictcontrol -C o -c 0x81010002"
    check "--overwrite: qtpm quits" qmp_quit "$dir"
else
    not_ok "qtpm starts on the image manufactured again"
fi
before=$(sha256sum <"$dir/tpm.qcow2")
"$QTPM_IMG" manufacture --ca-dir "$CA" "$dir/tpm.qcow2" >"$S/out" 2>"$S/err"
rc=$?
check "a manufacture failing after its EKs were made exits 1, one sentence" \
    bash -c "[ $rc = 1 ] && [ \$(wc -l <'$S/err') = 1 ] && [ ! -s '$S/out' ] &&
             grep -q \"already has NV index 0x01c00002; --overwrite\" '$S/err'"
check "... and leaves the image byte for byte as it was" \
    test "$(sha256sum <"$dir/tpm.qcow2")" = "$before"

# The CA directory is swtpm-localca's: each tool signs with the other's CA.
# swtpm_setup_conf NAME CA_DIR: a swtpm_setup config ($S/NAME-setup.conf)
# whose swtpm-localca uses CA_DIR.
swtpm_setup_conf() {
    printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
        "$2" "$2" "$2" "$2" >"$S/$1-localca.conf"
    printf 'create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = /etc/swtpm-localca.options\n' \
        "$S/$1-localca.conf" >"$S/$1-setup.conf"
}
swtpm_setup_conf ours "$CA"
ca_sum=$(cat "$CA"/*.pem | sha256sum)
mkdir -p "$S/sw-state"
check "swtpm_setup signs its EK certificates with a CA that qtpm-img made" \
    quiet swtpm_setup --tpm2 --tpmstate "$S/sw-state" --config "$S/ours-setup.conf" \
    --createek --create-ek-cert --create-platform-cert --lock-nvram --vmid sw
check "... and leaves that CA as it was" test "$(cat "$CA"/*.pem | sha256sum)" = "$ca_sum"

mkdir -p "$S/swca" "$S/sw-state2"
swtpm_setup_conf theirs "$S/swca"
check "swtpm_setup makes a CA with swtpm-localca" \
    quiet swtpm_setup --tpm2 --tpmstate "$S/sw-state2" --config "$S/theirs-setup.conf" \
    --createek --create-ek-cert --vmid sw
dir=$S/theirs
mkdir -p "$dir"
"$QTPM_IMG" create "$dir/tpm.qcow2" >/dev/null
check "qtpm-img manufacture signs with the CA swtpm-localca made" \
    quiet "$QTPM_IMG" manufacture --ca-dir "$S/swca" --vmid theirs "$dir/tpm.qcow2"
if start_qtpm "$dir" "$dir/tpm.qcow2"; then
    use_tpm "$dir"
    tpm startup -c
    check "... its RSA EK certificate verifies against swtpm-localca's chain" \
        bash -c "tpm2_nvread 0x01c00002 -o '$dir/rsa.der' 2>/dev/null &&
                 openssl x509 -inform der -in '$dir/rsa.der' -out '$dir/rsa.crt' &&
                 openssl verify -CAfile '$S/swca/swtpm-localca-rootca-cert.pem' \
                     -untrusted '$S/swca/issuercert.pem' '$dir/rsa.crt' >/dev/null"
    check "... qtpm quits" qmp_quit "$dir"
else
    not_ok "qtpm starts on the image signed by swtpm-localca's CA"
fi

done_testing
