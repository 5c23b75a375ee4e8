#!/bin/bash
# tpm2-tools end to end through qtpm-tis and qtpm: random numbers, PCRs,
# keys, signatures, NV indices and counters, a PCR policy, and what survives
# a QMP quit and a restart. Once on an encrypted image made by qtpm-img and
# once on a blank qcow2 made by qemu-img that qtpm formats; qemu-img check
# must stay clean.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"

NV_DATA=0x01500016
NV_COUNTER=0x01500017
PERSISTENT_KEY=0x81000001

qemu_img_check_clean() { qemu-img check "$1" >"$SCRATCH/check.out" 2>&1 || { diag "$(cat "$SCRATCH/check.out")"; return 1; }; }
quiet() { "$@" >/dev/null; }
same_file() { cmp -s "$1" "$2"; }
hex_of() { xxd -p "$1" | tr -d '\n'; }
# pcr_after DIGEST_HEX: the value of a zeroed SHA-256 PCR extended once.
pcr_after() { { head -c 32 /dev/zero; echo -n "$1" | xxd -r -p; } | sha256sum | cut -d' ' -f1; }

# unseal_with_pcr_policy DIR OUT: a policy session satisfied by PCR 16 as it
# is now, then TPM2_Unseal of DIR/seal.ctx.
unseal_with_pcr_policy() {
    local dir=$1 out=$2 rc=0
    tpm startauthsession --policy-session -S "$dir/s.ctx" || return 1
    tpm policypcr -S "$dir/s.ctx" -l sha256:16 &&
        tpm unseal -c "$dir/seal.ctx" -p "session:$dir/s.ctx" -o "$out" || rc=1
    tpm flushcontext "$dir/s.ctx" || rc=1
    return $rc
}

# policy_unseal_fails DIR OUT: as above, and the unseal fails a policy check.
policy_unseal_fails() {
    local dir=$1 out=$2 rc=0
    tpm startauthsession --policy-session -S "$dir/s.ctx" || return 1
    tpm policypcr -S "$dir/s.ctx" -l sha256:16 &&
        tpm_fails_with 0x99D unseal -c "$dir/seal.ctx" -p "session:$dir/s.ctx" -o "$out" || rc=1
    tpm flushcontext "$dir/s.ctx" || rc=1
    return $rc
}

# load_primary_and_sealed DIR: the storage primary (deterministic: the same
# after a restart) and the sealed object loaded under it.
load_primary_and_sealed() {
    local dir=$1
    tpm createprimary -C o -G ecc -c "$dir/prim.ctx" &&
        tpm load -C "$dir/prim.ctx" -u "$dir/seal.pub" -r "$dir/seal.priv" \
            -c "$dir/seal.ctx"
}

first_life() {
    local name=$1 dir=$2

    check "$name: tpm2_startup -c" tpm startup -c
    check "$name: tpm2_getrandom 16" tpm getrandom 16 -o "$dir/rand"
    check "$name: ... 16 bytes" [ "$(stat -c %s "$dir/rand")" = 16 ]

    local digest
    digest=$(echo "measured thing" | sha256sum | cut -d' ' -f1)
    echo "$digest" >"$dir/digest"
    check "$name: tpm2_pcrextend 16" tpm pcrextend "16:sha256=$digest"
    check "$name: tpm2_pcrread 16" tpm pcrread sha256:16 -o "$dir/pcr16"
    check "$name: PCR 16 = SHA-256(zeros || digest)" \
        [ "$(hex_of "$dir/pcr16")" = "$(pcr_after "$digest")" ]

    check "$name: tpm2_createprimary RSA 2048 (a key generation: STS polled meanwhile)" \
        tpm createprimary -C o -G rsa2048 -c "$dir/rsa.ctx"
    check "$name: tpm2_createprimary (ECC, owner hierarchy)" \
        tpm createprimary -C o -G ecc -c "$dir/prim.ctx"
    check "$name: tpm2_create a signing key" \
        tpm create -C "$dir/prim.ctx" -G ecc -u "$dir/key.pub" -r "$dir/key.priv"
    check "$name: tpm2_load it" \
        tpm load -C "$dir/prim.ctx" -u "$dir/key.pub" -r "$dir/key.priv" -c "$dir/key.ctx"
    echo "message to sign" >"$dir/msg"
    check "$name: tpm2_sign" tpm sign -c "$dir/key.ctx" -g sha256 -o "$dir/sig" "$dir/msg"
    check "$name: tpm2_verifysignature accepts it" \
        tpm verifysignature -c "$dir/key.ctx" -g sha256 -m "$dir/msg" -s "$dir/sig"
    echo "another message" >"$dir/msg2"
    check "$name: ... and rejects it for another message (TPM_RC_SIGNATURE)" \
        tpm_fails_with 0x2DB verifysignature -c "$dir/key.ctx" -g sha256 -m "$dir/msg2" -s "$dir/sig"
    check "$name: tpm2_evictcontrol makes the key persistent" \
        tpm evictcontrol -C o -c "$dir/key.ctx" $PERSISTENT_KEY

    head -c 32 /dev/urandom >"$dir/nvdata"
    check "$name: tpm2_nvdefine a 32-byte index" \
        tpm nvdefine $NV_DATA -C o -s 32 -a "ownerread|ownerwrite"
    check "$name: tpm2_nvwrite" tpm nvwrite $NV_DATA -C o -i "$dir/nvdata"
    check "$name: tpm2_nvread" tpm nvread $NV_DATA -C o -s 32 -o "$dir/nvread"
    check "$name: ... gives the written bytes" same_file "$dir/nvdata" "$dir/nvread"
    check "$name: tpm2_nvdefine a counter" \
        tpm nvdefine $NV_COUNTER -C o -s 8 -a "nt=counter|ownerread|ownerwrite"
    check "$name: tpm2_nvincrement x3" eval \
        'tpm nvincrement $NV_COUNTER -C o && tpm nvincrement $NV_COUNTER -C o && tpm nvincrement $NV_COUNTER -C o'
    check "$name: the counter reads 3" tpm nvread $NV_COUNTER -C o -s 8 -o "$dir/counter"
    check "$name: ... exactly" [ "$(hex_of "$dir/counter")" = 0000000000000003 ]

    # A secret sealed to PCR 16's current value.
    echo "the secret is 42" >"$dir/secret"
    check "$name: trial session for a PCR policy" tpm startauthsession -S "$dir/trial.ctx"
    check "$name: tpm2_policypcr" \
        tpm policypcr -S "$dir/trial.ctx" -l sha256:16 -L "$dir/pcr.policy"
    check "$name: flush the trial session" tpm flushcontext "$dir/trial.ctx"
    check "$name: tpm2_create a sealed object under the policy" \
        tpm create -C "$dir/prim.ctx" -L "$dir/pcr.policy" -i "$dir/secret" \
            -u "$dir/seal.pub" -r "$dir/seal.priv"
    check "$name: load it" tpm load -C "$dir/prim.ctx" -u "$dir/seal.pub" \
        -r "$dir/seal.priv" -c "$dir/seal.ctx"
    check "$name: unseal with the policy session" unseal_with_pcr_policy "$dir" "$dir/unsealed"
    check "$name: ... gives the secret" same_file "$dir/secret" "$dir/unsealed"
    check "$name: unseal without the policy is refused (TPM_RC_AUTH_UNAVAILABLE)" \
        tpm_fails_with 0x12F unseal -c "$dir/seal.ctx" -o "$dir/unsealed2"
    check "$name: extend PCR 16 again" tpm pcrextend "16:sha256=$digest"
    check "$name: then the policy no longer unseals (TPM_RC_POLICY_FAIL)" \
        policy_unseal_fails "$dir" "$dir/unsealed3"
}

second_life() {
    local name=$1 dir=$2 digest
    digest=$(cat "$dir/digest")

    check "$name: tpm2_startup -c after the restart" tpm startup -c
    check "$name: PCR 16 was reset by the restart" tpm pcrread sha256:16 -o "$dir/pcr16b"
    check "$name: ... to zeros" [ "$(hex_of "$dir/pcr16b")" = "$(printf '0%.0s' {1..64})" ]
    check "$name: the NV index kept its bytes" tpm nvread $NV_DATA -C o -s 32 -o "$dir/nvread2"
    check "$name: ... the same 32" same_file "$dir/nvdata" "$dir/nvread2"
    check "$name: the counter kept its value" tpm nvread $NV_COUNTER -C o -s 8 -o "$dir/counter2"
    check "$name: ... 3" [ "$(hex_of "$dir/counter2")" = 0000000000000003 ]
    check "$name: tpm2_nvincrement after the restart" tpm nvincrement $NV_COUNTER -C o
    tpm nvread $NV_COUNTER -C o -s 8 -o "$dir/counter3"
    check "$name: ... reads 4" [ "$(hex_of "$dir/counter3")" = 0000000000000004 ]

    check "$name: the persistent key signs" \
        tpm sign -c $PERSISTENT_KEY -g sha256 -o "$dir/sig2" "$dir/msg"
    check "$name: ... verifiably" \
        tpm verifysignature -c $PERSISTENT_KEY -g sha256 -m "$dir/msg" -s "$dir/sig2"
    check "$name: the first life's signature still verifies" \
        tpm verifysignature -c $PERSISTENT_KEY -g sha256 -m "$dir/msg" -s "$dir/sig"

    check "$name: the same primary again; the sealed blobs load under it" \
        load_primary_and_sealed "$dir"
    check "$name: with PCR 16 at zero the policy does not unseal" \
        policy_unseal_fails "$dir" "$dir/unsealed4"
    check "$name: extend PCR 16 as before" tpm pcrextend "16:sha256=$digest"
    check "$name: unseal after the restart" unseal_with_pcr_policy "$dir" "$dir/unsealed5"
    check "$name: ... gives the secret" same_file "$dir/secret" "$dir/unsealed5"
    check "$name: orderly tpm2_shutdown" tpm shutdown -c
}

# image_contains IMG FILE: FILE's bytes appear in IMG as they are.
image_contains() {
    xxd -p "$1" | tr -d '\n' | grep -q "$(hex_of "$2")"
}

# run_image NAME DIR IMG [KEY_FILE]
run_image() {
    local name=$1 dir=$2 img=$3 key=${4:-}

    use_tpm "$dir"
    if start_qtpm "$dir" "$img" "$key"; then
        ok "$name: qtpm started"
        first_life "$name" "$dir"
    else
        not_ok "$name: qtpm started"
    fi
    # Power off without TPM2_Shutdown: the state must be durable anyway.
    check "$name: QMP quit" qmp_quit "$dir"
    check "$name: qemu-img check clean between the lives" qemu_img_check_clean "$img"
    if [ -n "$key" ]; then
        check_fails "$name: the NV index's random bytes are not in the image in clear" \
            image_contains "$img" "$dir/nvdata"
    else
        check "$name: the NV index's random bytes are in the plain image" \
            image_contains "$img" "$dir/nvdata"
    fi
    if start_qtpm "$dir" "$img" "$key"; then
        ok "$name: qtpm restarted on the same image"
        second_life "$name" "$dir"
    else
        not_ok "$name: qtpm restarted on the same image"
    fi
    check "$name: QMP quit again" qmp_quit "$dir"
    check "$name: qemu-img check: no errors, no leaks" qemu_img_check_clean "$img"
    local keyopt=()
    [ -n "$key" ] && keyopt=(--key-file "$key")
    check "$name: qtpm-img check clean" quiet "$QTPM_IMG" check "${keyopt[@]}" "$img"
}

ENC=$SCRATCH/enc
mkdir -p "$ENC"
head -c 32 /dev/urandom >"$ENC/key.bin"
check "qtpm-img create --key-file (32-byte key)" \
    "$QTPM_IMG" create --key-file "$ENC/key.bin" "$ENC/tpm.qcow2"
run_image encrypted "$ENC" "$ENC/tpm.qcow2" "$ENC/key.bin"

PLAIN=$SCRATCH/plain
mkdir -p "$PLAIN"
check "qemu-img create: a blank qcow2 that qtpm formats" \
    qemu-img create -q -f qcow2 "$PLAIN/tpm.qcow2" 4M
run_image plain "$PLAIN" "$PLAIN/tpm.qcow2"

done_testing
