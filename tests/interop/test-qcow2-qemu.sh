#!/bin/bash
# qcow2 interop with Debian's qemu-io / qemu-img: data QEMU wrote reads back
# through our driver, compressed images read right (and take our writes),
# and internal snapshots survive our writes (copy-on-write). docs/qcow2.md.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/qcow2-lib.sh"

# mirror_write FILE OFF LEN BYTE: what 'write -P BYTE OFF LEN' does, in perl.
mirror_write() {
    perl -e 'open(my $f, "+<", $ARGV[0]) or die; binmode $f;
             seek($f, $ARGV[1], 0); print $f chr($ARGV[3]) x $ARGV[2];
             close($f) or die;' "$@"
}

# qio ARGS...: qtpm-io with its chatter kept out of the TAP stream.
qio() { "$QTPM_IO" "$@" >"$SCRATCH/qio.out" 2>&1; }

# Our writes (plain numbers: the mirror takes them too), applied to the
# image through qtpm-io and to a mirror.
OUR_WRITES=("write -P 0x11 1000 70000" "write -P 0x22 $((3 * 1024 * 1024)) 4096"
            "write -P 0x33 $((2 * 1024 * 1024 - 100)) 300"
            "write -z $((512 * 1024)) $((128 * 1024))" "write -P 0x44 0 1")
our_writes() {
    local img=$1 mirror=$2 cmds=() w
    for w in "${OUR_WRITES[@]}"; do
        cmds+=(-c "$w")
        set -- $w
        if [ "$2" = -z ]; then
            mirror_write "$mirror" "$3" "$4" 0
        else
            mirror_write "$mirror" "$4" "$5" $(($3))
        fi
    done
    "$QTPM_IO" -f qcow2 "${cmds[@]}" "$img" >/dev/null
}

# --- data written by qemu-io reads back through ours ---
for opts in cluster_size=64k cluster_size=512 compat=0.10; do
    img=$SCRATCH/qio.qcow2
    qemu-img create -q -f qcow2 -o $opts "$img" 4M
    qemu-io -f qcow2 -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 100000 5000' \
        -c 'write -P 0xef 3M 1M' "$img" >/dev/null
    check "$opts: qemu-io data reads back through qtpm-io" \
        qio -f qcow2 -r -c 'read -P 0xab 0 64k' \
        -c 'read -P 0xcd 100000 5000' -c 'read -P 0xef 3M 1M' \
        -c 'read -P 0 64k 30000' -c 'read -P 0 2M 1M' "$img"
    check_fails "$opts: a wrong pattern is noticed" \
        qio -f qcow2 -r -c 'read -P 0xac 0 64k' "$img"
done

# --- zero clusters (v3 zero flag) written by QEMU read as zeros ---
img=$SCRATCH/zero.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4k "$img" 1M
qemu-io -f qcow2 -c 'write -P 0x77 0 64k' -c 'write -z 8k 16k' "$img" >/dev/null
check "qemu-io zero clusters read as zeros" \
    qio -f qcow2 -r -c 'read -P 0x77 0 8k' -c 'read -P 0 8k 16k' \
    -c 'read -P 0x77 24k 40k' "$img"

# --- compressed images: read, then take partial writes ---
for cs in 512 4k 64k; do
    src=$SCRATCH/src.raw
    img=$SCRATCH/comp.qcow2
    truncate -s 4M "$src"
    # Compressible but not uniform: text lines, a pattern run, zeros.
    perl -e 'open(my $f, "+<", $ARGV[0]) or die;
             for my $i (0 .. 40000) { print $f "qtpm line $i of a compressed image\n"; }
             seek($f, 3 * 1024 * 1024, 0); print $f chr(0x5c) x 300000;' "$src"
    qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=$cs "$src" "$img"
    nc=$(qemu-img check "$img" 2>&1 | sed -n 's/.*, \([0-9.]*\)% compressed.*/\1/p')
    check "cluster_size $cs: the image really holds compressed clusters ($nc%)" \
        test "${nc%%.*}" -gt 0
    check "cluster_size $cs: compressed data reads right" \
        qio -f qcow2 -r -c 'read -P 0x5c 3M 300000' \
        -c "read -P 0 $((3 * 1024 * 1024 + 300000)) 100000" "$img"
    qemu-img convert -q -f qcow2 -O raw "$img" "$SCRATCH/conv.raw"
    check "cluster_size $cs: qemu agrees with the source" cmp "$SCRATCH/conv.raw" "$src"
    check "cluster_size $cs: writes into compressed clusters" our_writes "$img" "$src"
    check "cluster_size $cs: check clean after writes" check_clean "$img"
    check "cluster_size $cs: contents equal the mirror" same_as_raw "$img" "$src"
done

# --- internal snapshots: our writes copy on write, s1 stays intact ---
for opts in cluster_size=64k cluster_size=4k cluster_size=512 compat=0.10; do
    img=$SCRATCH/snap.qcow2
    before=$SCRATCH/before.raw
    after=$SCRATCH/after.raw
    rm -f "$img" "$before" "$after"
    qemu-img create -q -f qcow2 -o $opts "$img" 4M
    qemu-io -f qcow2 -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 3M 64k' \
        "$img" >/dev/null
    truncate -s 4M "$before"
    mirror_write "$before" 0 $((1024 * 1024)) $((0xab))
    mirror_write "$before" $((3 * 1024 * 1024)) 65536 $((0xcd))
    cp "$before" "$after"
    qemu-img snapshot -c s1 "$img"
    check "$opts: writes after 'snapshot -c s1'" our_writes "$img" "$after"
    check "$opts: check clean with the snapshot" check_clean "$img"
    check "$opts: active image has our writes" same_as_raw "$img" "$after"
    # A second round: now the clusters are ours (COPIED), written in place.
    check "$opts: second round of writes" our_writes "$img" "$after"
    check "$opts: still clean" check_clean "$img"
    check "$opts: still equal" same_as_raw "$img" "$after"
    qemu-img snapshot -a s1 "$img"
    check "$opts: 'snapshot -a s1' brings back the old bytes" same_as_raw "$img" "$before"
    check "$opts: check clean after revert" check_clean "$img"
    qemu-img snapshot -d s1 "$img"
    check "$opts: check clean after deleting s1" check_clean "$img"
done

# --- a dirty image (QEMU died with lazy refcounts on) ---
img=$SCRATCH/dirty.qcow2
qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4k "$img" 1M
# qemu-io's 'abort' ends the process without writing refcounts back.
bash -c 'qemu-io -f qcow2 -c "write -P 0x42 0 64k" -c abort "$1"; true' _ "$img" \
    >/dev/null 2>&1
check "qemu-io abort left the image dirty" \
    test "$(od -A n -t x1 -j 79 -N 1 "$img" | tr -d ' ')" = 01
check_fails "a dirty image is refused read-write" qio -f qcow2 -c 'read 0 1' "$img"
check "the refusal names the cause and the repair" \
    grep -q "image is dirty.*qemu-img check -r all" "$SCRATCH/qio.out"
check "a dirty image reads right read-only" \
    qio -f qcow2 -r -c 'read -P 0x42 0 64k' -c 'read -P 0 64k 64k' "$img"
qemu-img check -q -r all "$img" >/dev/null 2>&1
check "after 'qemu-img check -r all' our writes work" \
    qio -f qcow2 -c 'write -P 0x43 4k 4k' -c 'read -P 0x42 0 4k' "$img"
check "and the image stays clean" check_clean "$img"

done_testing
