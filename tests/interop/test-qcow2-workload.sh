#!/bin/bash
# qcow2 interop: images made by Debian's qemu-img in every layout we claim to
# support get a seeded random workload of writes through our driver
# (build/qtpm-io), mirrored into a raw file with dd. Afterwards `qemu-img
# check` must find no errors and no leaks, and `qemu-img convert -O raw`
# must equal the mirror. docs/qcow2.md.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/qcow2-lib.sh"

SEED=${QCOW2_SEED:-20261127}
SIZE=$((8 * 1024 * 1024))

# rand N: sets R to a pseudo-random number in [0, N) from bash's seeded
# $RANDOM (no subshell, so the sequence stays the seed's).
rand() { R=$(( ((RANDOM << 15) | RANDOM) % $1 )); }

# mirror_write FILE OFF LEN BYTE: the counterpart of 'write -P BYTE' (and of
# 'write -z' with BYTE 0), queued and applied by mirror_apply with perl, so
# the mirror does not depend on any of our code.
mirror_write() { echo "$2 $3 $4" >>"$1.ops"; }
mirror_apply() {
    perl -e 'open(my $f, "+<", $ARGV[0]) or die; binmode $f;
             open(my $o, "<", "$ARGV[0].ops") or die;
             while (<$o>) { my ($off, $len, $pat) = split;
                 seek($f, $off, 0); print $f chr($pat) x $len; }
             close($f) or die;' "$1" && rm -f "$1.ops"
}

# workload IMG MIRROR NOPS: NOPS random writes (1 in 8 a zero write),
# applied to IMG through qtpm-io in one run and to MIRROR.
workload() {
    local img=$1 mirror=$2 nops=$3 cmds=() i off len pat kind
    for ((i = 0; i < nops; i++)); do
        rand 8; kind=$R
        rand 4
        case $R in
        0) rand 4096; len=$((1 + R)) ;;
        1) rand 70000; len=$((1 + R)) ;;
        2) rand 8; len=$(( (1 + R) * 512 )) ;;
        3) rand 300000; len=$((1 + R)) ;;
        esac
        rand $((SIZE - len)); off=$R
        if [ "$kind" -eq 0 ]; then
            cmds+=(-c "write -z $off $len")
            mirror_write "$mirror" "$off" "$len" 0
        else
            rand 255; pat=$((1 + R))
            cmds+=(-c "write -P $pat $off $len")
            mirror_write "$mirror" "$off" "$len" "$pat"
        fi
        # Flush now and then, so deferred frees happen mid-run too.
        [ $((i % 17)) -eq 16 ] && cmds+=(-c flush)
    done
    mirror_apply "$mirror" &&
        "$QTPM_IO" -f qcow2 "${cmds[@]}" "$img" >"$SCRATCH/io.out" 2>&1
}

# run_case NAME OPTIONS: one image layout.
run_case() {
    local name=$1 opts=$2
    local img=$SCRATCH/$name.qcow2 mirror=$SCRATCH/$name.raw
    RANDOM=$SEED
    if ! qemu-img create -q -f qcow2 -o "$opts" "$img" $SIZE; then
        not_ok "$name: qemu-img create -o $opts"
        return
    fi
    truncate -s $SIZE "$mirror"
    # Some data written by QEMU first, so our writes also hit allocated
    # clusters (in place and partial).
    qemu-io -f qcow2 -c "write -P 0x5a 1M 200k" -c "write -P 0x6b 5000 3000" \
        "$img" >/dev/null
    mirror_write "$mirror" $((1024 * 1024)) $((200 * 1024)) $((0x5a))
    mirror_write "$mirror" 5000 3000 $((0x6b))
    mirror_apply "$mirror"
    check "$name: seeded workload through qtpm-io" workload "$img" "$mirror" 60
    grep -q '^qtpm-io' "$SCRATCH/io.out" && diag "$(tail -3 "$SCRATCH/io.out")"
    check "$name: qemu-img check: no errors, no leaks" check_clean "$img"
    check "$name: contents equal the mirror" same_as_raw "$img" "$mirror"
    # A second round on the image as we left it.
    check "$name: second workload" workload "$img" "$mirror" 30
    check "$name: still clean" check_clean "$img"
    check "$name: still equal" same_as_raw "$img" "$mirror"
}

# 512-byte clusters: many refcount blocks; with 64-bit refcounts a block
# covers 64 clusters and the one-cluster table 2 MiB, so the table grows.
run_case c512 cluster_size=512
run_case c512rc64 cluster_size=512,refcount_bits=64
run_case c4k cluster_size=4k
run_case c64k cluster_size=64k
run_case c2M cluster_size=2M
run_case compat010 compat=0.10
run_case compat11 compat=1.1,cluster_size=4k
run_case rc1 refcount_bits=1,cluster_size=4k
run_case rc16 refcount_bits=16,cluster_size=4k
run_case rc64 refcount_bits=64,cluster_size=4k
run_case lazy lazy_refcounts=on,cluster_size=4k
run_case prealloc preallocation=metadata,cluster_size=4k
run_case prealloc64k preallocation=metadata

done_testing
