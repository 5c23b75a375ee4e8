#!/bin/bash
# tpm2-tools through QEMU's own tpm-tis with qtpm behind it: qtpm-tis
# drives Debian's qemu-system-x86_64 over its qtest socket, QEMU's
# -tpmdev emulator talks to qtpm -export swtpm on a keyed image. PCRs and an
# NV counter work; after a system_reset (QEMU re-initialises the TPM) the
# counter is kept and the PCRs are reset; after QEMU exits (and qtpm with it)
# and both are started again on the same image, the counter is still there.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tpm2-common.sh"
. "$(dirname "$0")/qemu-vm-lib.sh"

NV_COUNTER=0x01500031
IMG=$SCRATCH/tpm.qcow2
KEY=$SCRATCH/tpm.key
DIR=$SCRATCH/vm
mkdir -p "$DIR"

quiet() { "$@" >/dev/null; }
hex_of() { xxd -p "$1" | tr -d '\n'; }
ZERO_PCR=$(printf '0%.0s' {1..64})

head -c 32 /dev/urandom >"$KEY"
check "a keyed image is created" "$QTPM_IMG" create --key-file "$KEY" "$IMG"
use_tpm "$DIR"

check "qtpm and QEMU start" start_vm
check "tpm2_startup -c through QEMU's tpm-tis" tpm startup -c
check "tpm2_getrandom 16" tpm getrandom 16 -o "$SCRATCH/rand"
check "... 16 bytes" [ "$(stat -c %s "$SCRATCH/rand")" = 16 ]
DIGEST=$(echo "measured behind QEMU" | sha256sum | cut -d' ' -f1)
check "tpm2_pcrextend 16" tpm pcrextend "16:sha256=$DIGEST"
check "tpm2_pcrread 16" tpm pcrread sha256:16 -o "$SCRATCH/pcr16"
check "... PCR 16 is no longer zero" [ "$(hex_of "$SCRATCH/pcr16")" != "$ZERO_PCR" ]
check "tpm2_nvdefine a counter" \
    tpm nvdefine $NV_COUNTER -C o -s 8 -a "nt=counter|ownerread|ownerwrite"
check "tpm2_nvincrement" tpm nvincrement $NV_COUNTER -C o
check "tpm2_nvread the counter" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c1"
check "... reads 1" [ "$(hex_of "$SCRATCH/c1")" = 0000000000000001 ]

# A machine reset: QEMU's tpm-tis resets and sends CMD_INIT again.
check "system_reset" qemu_qmp '{"execute": "system_reset"}'
check "tpm2_startup -c after the reset" tpm startup -c
check "PCR 16 was reset" tpm pcrread sha256:16 -o "$SCRATCH/pcr16b"
check "... to zeros" [ "$(hex_of "$SCRATCH/pcr16b")" = "$ZERO_PCR" ]
check "tpm2_nvincrement after the reset" tpm nvincrement $NV_COUNTER -C o
check "tpm2_nvread" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c2"
check "... reads 2" [ "$(hex_of "$SCRATCH/c2")" = 0000000000000002 ]
# QEMU exits without a TPM2_Shutdown: the counter must be durable anyway.
check "QEMU quits, and qtpm exits with status 0" stop_vm

check "qtpm and QEMU start again on the same image" start_vm
check "tpm2_startup -c" tpm startup -c
check "the counter kept its value" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c3"
check "... 2" [ "$(hex_of "$SCRATCH/c3")" = 0000000000000002 ]
check "tpm2_nvincrement" tpm nvincrement $NV_COUNTER -C o
check "tpm2_nvread" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/c4"
check "... reads 3" [ "$(hex_of "$SCRATCH/c4")" = 0000000000000003 ]
check "orderly tpm2_shutdown" tpm shutdown -c
check "QEMU quits again, and so does qtpm" stop_vm
check "qtpm-img check finds the image intact" quiet "$QTPM_IMG" check --key-file "$KEY" "$IMG"
check "qemu-img check finds no errors or leaks" qemu-img check -q "$IMG"
done_testing
