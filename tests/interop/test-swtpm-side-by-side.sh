#!/bin/bash
# qtpm -export swtpm side by side with swtpm, through swtpm_ioctl and
# tpm2-tools: CMD_GET_INFO's JSON, before and after CMD_INIT, for TPM 2.0
# and TPM 1.2, must be swtpm's; CMD_HASH_START/DATA/END (the locality-4
# measurement of a dynamic launch) with the same data must give the same
# PCR 17, established bit and answers in the wrong state. GET_CAPABILITY
# advertises PTM_CAP_HASHING and PTM_CAP_GET_INFO.
. "$(dirname "$0")/../lib.sh"

IMG=$SCRATCH/tpm.qcow2
IMG12=$SCRATCH/tpm12.qcow2
mkdir -p "$SCRATCH/sw" "$SCRATCH/sw12"

# start TYPE [1.2]: qtpm or swtpm, TPM 2.0 or 1.2, on a free TCP port pair,
# not initialised; sets <TYPE>_PORT.
start() {
    local type=$1 v=${2:-2.0} try i port
    for try in $(seq 1 20); do
        port=$((20000 + (RANDOM % 20000) * 2))
        if [ "$type" = qtpm ]; then
            "$QTPM" -drive "file=$([ "$v" = 1.2 ] && echo "$IMG12" || echo "$IMG"),if=none,id=d0" \
                -tpmdev libtpms,id=tpm0,nvram=d0 \
                -export "swtpm,id=e0,tpmdev=tpm0,ctrl=tcp:127.0.0.1:$((port + 1)),data=tcp:127.0.0.1:$port" \
                >"$SCRATCH/$type.log" 2>&1 &
        else
            swtpm socket $([ "$v" = 2.0 ] && echo --tpm2) \
                --tpmstate "dir=$SCRATCH/$([ "$v" = 1.2 ] && echo sw12 || echo sw)" \
                --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
                --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
                >"$SCRATCH/$type.log" 2>&1 &
        fi
        local pid=$!
        bg_pid "$pid"
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            if timeout 10 swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -c >/dev/null 2>&1; then
                eval "${type^^}_PORT=$port"
                return 0
            fi
            sleep 0.1
        done
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    diag "$type did not start: $(cat "$SCRATCH/$type.log")"
    return 1
}

# on TYPE COMMAND...: COMMAND with $CTRL and $TCTI of TYPE; stdout and
# stderr in $SCRATCH/TYPE.out.
on() {
    local type=$1 port
    shift
    eval "port=\$${type^^}_PORT"
    CTRL="127.0.0.1:$((port + 1))" TCTI="swtpm:host=127.0.0.1,port=$port" \
        timeout 60 bash -c "$*" >"$SCRATCH/$type.out" 2>&1
}

# same COMMAND...: COMMAND succeeds on both, with the same output.
same() {
    on qtpm "$@" || { diag "qtpm: $(head -c 600 "$SCRATCH/qtpm.out")"; return 1; }
    on swtpm "$@" || { diag "swtpm: $(head -c 600 "$SCRATCH/swtpm.out")"; return 1; }
    cmp -s "$SCRATCH/qtpm.out" "$SCRATCH/swtpm.out" ||
        { diag "qtpm: $(cat "$SCRATCH/qtpm.out") swtpm: $(cat "$SCRATCH/swtpm.out")"; return 1; }
}

# same_info WHEN: GET_INFO with each flag and all of them gives swtpm's JSON.
same_info() {
    local f
    for f in 1 2 3; do
        check "GET_INFO $f $1: swtpm's JSON" same "swtpm_ioctl --tcp \$CTRL --info $f"
    done
}

check "qemu-img create" qemu-img create -q -f qcow2 "$IMG" 1M
check "qtpm-img create --tpm 1.2" "$QTPM_IMG" create --tpm 1.2 "$IMG12"

check "qtpm starts (TPM 1.2)" start qtpm 1.2
check "swtpm starts (TPM 1.2)" start swtpm 1.2
check "GET_CAPABILITY advertises PTM_CAP_GET_INFO and PTM_CAP_HASHING" \
    on qtpm '(( ($(swtpm_ioctl --tcp $CTRL -c | sed "s/.* 0x/0x/") & 0x4010) == 0x4010 ))'
same_info "before CMD_INIT (TPM 1.2)"
check "CMD_INIT on both" same 'swtpm_ioctl --tcp $CTRL -i'
same_info "after CMD_INIT (TPM 1.2)"
check "CMD_SHUTDOWN on both" same 'swtpm_ioctl --tcp $CTRL -s'

check "qtpm starts" start qtpm
check "swtpm starts" start swtpm
same_info "before CMD_INIT"
check "CMD_INIT on both" same 'swtpm_ioctl --tcp $CTRL -i'
same_info "after CMD_INIT"
check "tpm2_startup -c on both" same 'tpm2_startup -T $TCTI -c'
check "not established yet, on both" same 'swtpm_ioctl --tcp $CTRL -e'
check "the hash sequence succeeds on both" same 'swtpm_ioctl --tcp $CTRL -h "a measured launch"'
check "PCR 17 and 18 are the same on both" same 'tpm2_pcrread -T $TCTI sha256:17,18'
check "... and PCR 17 is no longer its reset value" \
    eval '! grep -q "17: 0xF\{64\}$" "$SCRATCH/qtpm.out"'
check "established now, on both" same 'swtpm_ioctl --tcp $CTRL -e'
check "a second sequence with data from stdin" same 'echo more | swtpm_ioctl --tcp $CTRL -h -'
check "PCR 17 is again the same" same 'tpm2_pcrread -T $TCTI sha256:17'
check "RESET_TPMESTABLISHED at locality 3 on both" same 'swtpm_ioctl --tcp $CTRL -r 3'
check "not established after the reset, on both" same 'swtpm_ioctl --tcp $CTRL -e'
check "swtpm_ioctl --save permanent reads qtpm's whole blob" \
    on qtpm "swtpm_ioctl --tcp \$CTRL --save permanent '$SCRATCH/saved.perm'"
check "... the bytes of the stored permanent state" \
    bash -c "'$QTPM_IMG' dump --blob permanent '$IMG' '$SCRATCH/dump.perm' >/dev/null &&
             cmp '$SCRATCH/saved.perm' '$SCRATCH/dump.perm'"
check "STOP on both" same 'swtpm_ioctl --tcp $CTRL --stop'
check "HASH_START with the TPM stopped fails on both" \
    same '! swtpm_ioctl --tcp $CTRL -h x 2>&1'
check "CMD_SHUTDOWN on both" same 'swtpm_ioctl --tcp $CTRL -s'
check "qemu-img check finds no errors or leaks" qemu-img check -q "$IMG"
done_testing
