#!/bin/bash
# Seed corpora for the fuzz targets, made by the real programs:
#   qemu-img and qemu-io (qcow2 variants, written images), qtpm-img (plain,
#   keyed and passphrase images), qtpm with libtpms (images holding a started
#   TPM, migration streams to file:, plain and keyed, shared and not),
#   swtpm_setup and swtpm (state files plain and encrypted, migration blobs
#   from swtpm_ioctl --save), qtpm -export swtpm (sealed blobs, and the
#   control requests a real QEMU 7.2 sends it, read off the socket with
#   strace), and the command lines libvirt 9.0 runs swtpm with.
#   tests/fuzz/make-corpus.sh BUILD OUTDIR
# BUILD is the normal build (qtpm, qtpm-img, qtpm-tis); each target's seeds
# go to OUTDIR/TARGET. A step whose program fails is reported and the
# script ends non-zero after the others ran.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
export BUILD=$1
out=$2
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
cd "$src"
export SRC_PATH=$src
. tests/lib.sh
. tests/migration/migration-lib.sh
status=0
step() { echo "make-corpus: $*"; }
failed() { echo "make-corpus: $* failed" >&2; status=1; }
for t in qcow2 nvram migration-stream swtpm-blob swtpm-codec swtpm-compat; do
    rm -rf "$out/fuzz-$t"
    mkdir -p "$out/fuzz-$t"
done

step "qcow2 images from qemu-img and qemu-io"
n=0
for o in "cluster_size=512" "cluster_size=4096" "cluster_size=65536" "compat=0.10" \
        "lazy_refcounts=on" "refcount_bits=1" "refcount_bits=64" \
        "cluster_size=16384,extended_l2=on" "cluster_size=4096,preallocation=metadata"; do
    n=$((n + 1))
    f=$SCRATCH/q$n.qcow2
    qemu-img create -q -f qcow2 -o "$o" "$f" 1M || { failed "qemu-img create -o $o"; continue; }
    cp "$f" "$out/fuzz-qcow2/qemu-img-${o//[=,]/-}"
    qemu-io -f qcow2 -c "write -P 0xab 0 8k" -c "write -P 0x5a 600k 5k" \
        -c "write -z 4k 4k" -c "discard 0 4k" "$f" >/dev/null ||
        { failed "qemu-io on -o $o"; continue; }
    cp "$f" "$out/fuzz-qcow2/qemu-io-${o//[=,]/-}"
done

step "qtpm-img images: plain, keyed, passphrase"
head -c 32 /dev/zero | tr '\0' '\1' >"$SCRATCH/raw.key"
# The fuzz targets' own key (tests/fuzz/fuzz-util.c): bytes 0x00..0x1f.
printf "$(printf '\\x%02x' $(seq 0 31))" >"$SCRATCH/fuzz.key"
printf 'correct horse' >"$SCRATCH/pass"
"$QTPM_IMG" create "$SCRATCH/plain.qcow2" >/dev/null || failed "qtpm-img create"
"$QTPM_IMG" create --key-file "$SCRATCH/fuzz.key" "$SCRATCH/keyed.qcow2" >/dev/null ||
    failed "qtpm-img create --key-file"
"$QTPM_IMG" create --tpm 1.2 --key-file "$SCRATCH/raw.key" "$SCRATCH/other-key.qcow2" \
    >/dev/null || failed "qtpm-img create --tpm 1.2"
"$QTPM_IMG" create --passphrase-file "$SCRATCH/pass" "$SCRATCH/pass.qcow2" >/dev/null ||
    failed "qtpm-img create --passphrase-file"
for i in plain keyed other-key pass; do
    [ -f "$SCRATCH/$i.qcow2" ] && cp "$SCRATCH/$i.qcow2" "$out/fuzz-nvram/qtpm-img-$i"
done
cp "$out"/fuzz-nvram/qtpm-img-plain "$out/fuzz-qcow2/" 2>/dev/null

step "qtpm with libtpms: a started TPM, and migration streams to file:"
digest=$(printf 'fuzz' | sha256sum | cut -d' ' -f1)
for kind in plain keyed; do
    key=
    [ $kind = keyed ] && key=$SCRATCH/fuzz.key
    img=$SCRATCH/mig-$kind.qcow2
    if [ $kind = keyed ]; then
        "$QTPM_IMG" create --key-file "$key" "$img" >/dev/null
    else
        "$QTPM_IMG" create "$img" >/dev/null
    fi
    start_source "mig$kind" "$img" "$key" "$digest" >/dev/null 2>&1 ||
        { failed "qtpm $kind start-up"; continue; }
    for storage in non-shared; do
        f=$SCRATCH/stream-$kind-$storage
        migrate "mig$kind" "file:$f" "$storage" >/dev/null 2>&1
        if [ -s "$f" ]; then
            cp "$f" "$out/fuzz-migration-stream/qtpm-$kind-$storage"
        else
            failed "migrate to file: ($kind, $storage)"
        fi
        # A completed migration leaves the source paused: let it run again.
        qmpc "$SCRATCH/mig$kind.qmp" '{"execute": "cont"}' >/dev/null 2>&1
    done
    qmpc "$SCRATCH/mig$kind.qmp" '{"execute": "quit"}' >/dev/null 2>&1
    pid_var=PID_mig$kind
    wait "${!pid_var}" 2>/dev/null
    cp "$img" "$out/fuzz-nvram/qtpm-started-$kind"
done

step "swtpm_setup and swtpm: state files and migration blobs"
for kind in plain key pwd; do
    d=$SCRATCH/swtpm-$kind
    mkdir -p "$d"
    args=()
    case $kind in
    key) printf '00112233445566778899aabbccddeeff' >"$SCRATCH/swtpm.key"
         args=(--keyfile "$SCRATCH/swtpm.key"); sargs=(--key "file=$SCRATCH/swtpm.key,mode=aes-cbc") ;;
    pwd) printf 'swtpm pass' >"$SCRATCH/swtpm.pwd"
         args=(--pwdfile "$SCRATCH/swtpm.pwd"); sargs=(--key "pwdfile=$SCRATCH/swtpm.pwd") ;;
    *) sargs=() ;;
    esac
    swtpm_setup --tpm2 --tpmstate "$d" --config /dev/null "${args[@]}" >"$SCRATCH/setup.log" 2>&1 ||
        { failed "swtpm_setup ($kind): $(tail -1 "$SCRATCH/setup.log")"; continue; }
    cp "$d/tpm2-00.permall" "$out/fuzz-swtpm-blob/swtpm_setup-$kind-permall"
    swtpm socket --tpm2 --tpmstate "dir=$d" "${sargs[@]}" \
        --ctrl "type=unixio,path=$d/ctrl" --server "type=unixio,path=$d/data" \
        --flags not-need-init,startup-clear >/dev/null 2>&1 &
    spid=$!
    bg_pid $spid
    wait_for_file "$d/ctrl" 50
    for t in permanent volatile; do
        swtpm_ioctl --unix "$d/ctrl" --save $t "$out/fuzz-swtpm-blob/swtpm-$kind-$t" \
            >/dev/null 2>&1 || failed "swtpm_ioctl --save $t ($kind)"
    done
    swtpm_ioctl --unix "$d/ctrl" -s >/dev/null 2>&1
    wait $spid 2>/dev/null
    [ -f "$d/tpm2-00.volatilestate" ] &&
        cp "$d/tpm2-00.volatilestate" "$out/fuzz-swtpm-blob/swtpm-$kind-volatilestate"
done
printf '00112233445566778899aabbccddeeff\n' >"$out/fuzz-swtpm-blob/key-hex"

step "qtpm -export swtpm under QEMU 7.2: control requests and sealed blobs"
DIR=$SCRATCH/vm
mkdir -p "$DIR"
IMG=$SCRATCH/export.qcow2
KEY=$SCRATCH/fuzz.key
"$QTPM_IMG" create --key-file "$KEY" "$IMG" >/dev/null
# strace records every control read of qtpm with its bytes.
QTPM_REAL=$QTPM
cat >"$SCRATCH/qtpm-traced" <<EOT
#!/bin/sh
exec strace -f -qq -xx -s 70000 -e trace=recvmsg,read -o "$DIR/ctrl.trace" "$QTPM_REAL" "\$@"
EOT
chmod +x "$SCRATCH/qtpm-traced"
QTPM=$SCRATCH/qtpm-traced
. tests/interop/qemu-vm-lib.sh
if start_vm; then
    # Running, SeaBIOS starts the TPM up through the TIS: data-channel traffic.
    qemu_qmp '{"execute": "cont"}' >/dev/null 2>&1
    sleep 2
    qemu_qmp '{"execute": "system_reset"}' >/dev/null 2>&1
    sleep 1
    tracee=$(pgrep -P "$QTPM_PID")
    stop_vm >/dev/null 2>&1
    # Under strace, qtpm may outlive QEMU: end it so the image is free.
    [ -n "$tracee" ] && kill "$tracee" 2>/dev/null
    wait "$QTPM_PID" 2>/dev/null
else
    failed "QEMU 7.2 against qtpm -export"
fi
# Each recvmsg's bytes become one read in fuzz-swtpm-codec's control part.
python3 - "$DIR/ctrl.trace" "$out/fuzz-swtpm-codec/qemu-7.2-session" <<'PY' ||
import re, sys
reads = []
data = b''
for line in open(sys.argv[1]):
    n = re.search(r'\) = (\d+)$', line.strip())
    if not n or int(n.group(1)) == 0:
        continue
    m = re.search(r'recvmsg\(\d+, \{msg_name=[^,]*, msg_namelen=\d+, msg_iov=\[\{iov_base="((?:\\x[0-9a-f]{2})*)"', line)
    if m:
        reads.append(bytes.fromhex(m.group(1).replace('\\x', ''))[:int(n.group(1))])
        continue
    # The data channel: reads that start with a TPM 2.0 command tag.
    m = re.search(r'read\(\d+, "((?:\\x[0-9a-f]{2})*)"', line)
    if m:
        b = bytes.fromhex(m.group(1).replace('\\x', ''))[:int(n.group(1))]
        if b[:2] in (b'\x80\x01', b'\x80\x02'):
            data += b
if not reads:
    sys.exit("no control reads in the trace")
ctrl = b''.join(bytes([min(len(r), 255)]) + r[:255] for r in reads)
split = (len(ctrl) + 63) // 64
out = bytes([min(split, 255)]) + ctrl
out += b'\x00' * (split * 64 - len(ctrl))
out += data if data else bytes.fromhex('80010000000c000001440000')
open(sys.argv[2], 'wb').write(out)
PY
    failed "control requests from the QEMU session"
QTPM=$QTPM_REAL
# The export seals the blobs it hands out under the image's key.
rm -f "$DIR/ctrl.sock"
"$QTPM" -drive "file=$IMG,if=none,id=d0" -object "secret,id=k0,file=$KEY,format=raw" \
    -tpmdev libtpms,id=tpm0,nvram=d0,key-secret=k0 \
    -export "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:$DIR/ctrl.sock" >>"$DIR/qtpm2.log" 2>&1 &
epid=$!
bg_pid $epid
if wait_for_file "$DIR/ctrl.sock" 100; then
    swtpm_ioctl --unix "$DIR/ctrl.sock" -i >/dev/null 2>&1
    for t in permanent volatile; do
        swtpm_ioctl --unix "$DIR/ctrl.sock" --save $t "$out/fuzz-swtpm-blob/qtpm-sealed-$t" \
            >/dev/null 2>&1 || failed "swtpm_ioctl --save $t from qtpm"
    done
    swtpm_ioctl --unix "$DIR/ctrl.sock" -s >/dev/null 2>&1
    wait $epid 2>/dev/null
else
    failed "qtpm -export: $(tail -1 "$DIR/qtpm2.log")"
fi

step "libvirt 9.0's swtpm command lines"
argv() { local f=$out/fuzz-swtpm-compat/$1; shift; printf '%s\0' "$@" >"$f"; truncate -s -1 "$f"; }
argv socket-libvirt socket --ctrl type=unixio,path=/run/libvirt/qemu/swtpm/1-vm-swtpm.sock,mode=0600 \
    --tpmstate dir=/var/lib/libvirt/swtpm/uuid/tpm2,mode=0600 \
    --log file=/var/log/swtpm/libvirt/qemu/vm-swtpm.log --terminate --tpm2
argv socket-libvirt-key socket --ctrl type=unixio,path=/s.sock,mode=0600 \
    --tpmstate dir=/d/tpm2,mode=0600 --key pwdfd=27,mode=aes-256-cbc \
    --migration-key pwdfd=28,mode=aes-256-cbc --migration release-lock-outgoing,incoming \
    --pid file=/run/vm.pid --terminate --tpm2 --flags startup-clear
argv setup-libvirt --tpm2 --tpm-state /var/lib/libvirt/swtpm/uuid/tpm2 --vmid vm:uuid \
    --logfile /var/log/swtpm/libvirt/qemu/vm-swtpm.log --createek --create-ek-cert \
    --create-platform-cert --lock-nvram --not-overwrite --pwdfile-fd 27 --cipher aes-256-cbc
argv setup-caps --print-capabilities
argv ioctl-stop --unix /run/libvirt/qemu/swtpm/1-vm-swtpm.sock -s
argv ioctl-info --unix /s.sock --info 0x7 -l 3
if [ -x "$BUILD/swtpm-compat/swtpm" ]; then
    "$BUILD/swtpm-compat/swtpm" socket --print-capabilities >/dev/null ||
        failed "the swtpm front door"
fi

for t in "$out"/*; do
    echo "make-corpus: $(basename "$t"): $(ls "$t" | wc -l) inputs, $(du -sh "$t" | cut -f1)"
done
exit $status
