#!/bin/bash
# tpm2-tools straight to qtpm with tpm2-tss's swtpm TCTI: qtpm -export swtpm
# listens on a TCP data port N and control port N+1, as swtpm --server/--ctrl
# type=tcp do. swtpm_ioctl sends CMD_INIT (the TCTI sends none); startup,
# getrandom, pcrextend/pcrread and an NV counter work, and after CMD_SHUTDOWN
# and a new qtpm on the same keyed image the counter still has its value.
. "$(dirname "$0")/../lib.sh"

NV_COUNTER=0x01500021
IMG=$SCRATCH/tpm.qcow2
KEY=$SCRATCH/tpm.key

hex_of() { xxd -p "$1" | tr -d '\n'; }
# pcr_after DIGEST_HEX: the value of a zeroed SHA-256 PCR extended once.
pcr_after() { { head -c 32 /dev/zero; echo -n "$1" | xxd -r -p; } | sha256sum | cut -d' ' -f1; }

# tpm TOOL ARGS...: tpm2_TOOL (at most 60 s), quiet unless it fails; stdout
# in $SCRATCH/tpm.out.
tpm() {
    local tool=$1
    shift
    timeout 60 "tpm2_$tool" "$@" >"$SCRATCH/tpm.out" 2>"$SCRATCH/tpm.err" && return 0
    diag "tpm2_$tool $*: $(head -c 600 "$SCRATCH/tpm.err")"
    return 1
}

quiet() { "$@" >/dev/null; }
ctrl() { timeout 30 swtpm_ioctl --tcp "127.0.0.1:$CTRL_PORT" "$@"; }

# start_export: qtpm on a free TCP port pair (PORT, PORT + 1), the TPM
# started with CMD_INIT. Sets PORT, CTRL_PORT, QTPM_PID, TPM2TOOLS_TCTI.
start_export() {
    local try i
    for try in $(seq 1 20); do
        PORT=$((20000 + (RANDOM % 20000) * 2))
        CTRL_PORT=$((PORT + 1))
        "$QTPM" -drive "file=$IMG,if=none,id=d0" \
            -object "secret,id=k0,file=$KEY,format=raw" \
            -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
            -export "swtpm,id=e0,tpmdev=tpm0,ctrl=tcp:127.0.0.1:$CTRL_PORT,data=tcp:127.0.0.1:$PORT" \
            >"$SCRATCH/qtpm.log" 2>&1 &
        QTPM_PID=$!
        bg_pid "$QTPM_PID"
        for i in $(seq 1 100); do
            kill -0 "$QTPM_PID" 2>/dev/null || break
            if ctrl -i >/dev/null 2>&1; then
                export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$PORT
                return 0
            fi
            sleep 0.1
        done
        kill "$QTPM_PID" 2>/dev/null
        wait "$QTPM_PID" 2>/dev/null
    done
    diag "qtpm did not start: $(cat "$SCRATCH/qtpm.log")"
    return 1
}

# stop_export: CMD_SHUTDOWN, and qtpm exits 0 by itself.
stop_export() {
    local i
    ctrl -s >/dev/null || return 1
    for i in $(seq 1 100); do
        kill -0 "$QTPM_PID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$QTPM_PID"
}

head -c 32 /dev/urandom >"$KEY"
check "a keyed image is created" "$QTPM_IMG" create --key-file "$KEY" "$IMG"

check "qtpm exports the image on TCP ports; CMD_INIT over the control port" start_export
check "tpm2_startup -c" tpm startup -c
check "tpm2_getrandom 16" tpm getrandom 16 -o "$SCRATCH/rand"
check "... gives 16 bytes" [ "$(stat -c %s "$SCRATCH/rand")" = 16 ]
DIGEST=$(echo "measured over the swtpm TCTI" | sha256sum | cut -d' ' -f1)
check "tpm2_pcrextend 16" tpm pcrextend "16:sha256=$DIGEST"
check "tpm2_pcrread 16" tpm pcrread sha256:16 -o "$SCRATCH/pcr16"
check "... PCR 16 = SHA-256(zeros || digest)" \
    [ "$(hex_of "$SCRATCH/pcr16")" = "$(pcr_after "$DIGEST")" ]
check "tpm2_nvdefine a counter" \
    tpm nvdefine $NV_COUNTER -C o -s 8 -a "nt=counter|ownerread|ownerwrite"
check "tpm2_nvincrement x2" eval \
    'tpm nvincrement $NV_COUNTER -C o && tpm nvincrement $NV_COUNTER -C o'
check "tpm2_nvread the counter" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/counter"
check "... reads 2" [ "$(hex_of "$SCRATCH/counter")" = 0000000000000002 ]
# No TPM2_Shutdown first: the counter must be durable without one.
check "CMD_SHUTDOWN ends qtpm with status 0" stop_export

check "a new qtpm on the same image" start_export
check "tpm2_startup -c after the restart" tpm startup -c
check "the counter kept its value" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/counter2"
check "... 2" [ "$(hex_of "$SCRATCH/counter2")" = 0000000000000002 ]
check "tpm2_nvincrement after the restart" tpm nvincrement $NV_COUNTER -C o
check "tpm2_nvread" tpm nvread $NV_COUNTER -C o -s 8 -o "$SCRATCH/counter3"
check "... reads 3" [ "$(hex_of "$SCRATCH/counter3")" = 0000000000000003 ]
check "PCR 16 was reset by the restart" tpm pcrread sha256:16 -o "$SCRATCH/pcr16b"
check "... to zeros" [ "$(hex_of "$SCRATCH/pcr16b")" = "$(printf '0%.0s' {1..64})" ]
check "orderly tpm2_shutdown" tpm shutdown -c
check "CMD_SHUTDOWN again" stop_export
check "qtpm-img check finds the image intact" quiet "$QTPM_IMG" check --key-file "$KEY" "$IMG"
check "qemu-img check finds no errors or leaks" qemu-img check -q "$IMG"
done_testing
