#!/bin/bash
# Builds the test guest once: Debian's kernel and a busybox initramfs whose
# /init is tests/guest/init.sh.
#   tests/guest/build-guest.sh BUILD_DIR
# Leaves BUILD_DIR/guest/vmlinuz and BUILD_DIR/guest/initramfs.cpio.gz; the
# kernel package stays in BUILD_DIR/guest/cache so a rebuild needs no network.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: build-guest.sh BUILD_DIR}
OUT=$BUILD/guest
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# TPM drivers the guest needs, in load order, when the kernel has them as
# modules (Debian's 6.1 builds them in).
TPM_MODULES="tpm tpm_tis_core tpm_tis tpm_crb"

die() {
    echo "build-guest: $*" >&2
    exit 1
}

up_to_date() {
    local f
    [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initramfs.cpio.gz" ] || return 1
    for f in "$SRC/tests/guest/build-guest.sh" "$SRC/tests/guest/init.sh" /bin/busybox; do
        [ "$f" -nt "$OUT/initramfs.cpio.gz" ] && return 1
    done
    return 0
}

# Prints the load order of the modules named in $TPM_MODULES that are not
# built in, dependencies first, and copies them (uncompressed) to $2.
collect_modules() {
    local moddir=$1 dest=$2 m line deps dep i seen=" "
    local -a order=()
    for m in $TPM_MODULES; do
        if grep -qE "/$m\.ko(\.[a-z]+)?\$" "$moddir/modules.builtin" 2>/dev/null; then
            continue
        fi
        line=$(grep -m 1 -E "(^|/)$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep") ||
            die "module $m is neither built in nor in modules.dep"
        # modules.dep lists what a module needs nearest first: load from the end.
        read -r -a deps <<<"${line#*:}"
        for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
            order+=("${deps[i]}")
        done
        order+=("${line%%:*}")
    done
    for dep in "${order[@]}"; do
        case "$seen" in *" $dep "*) continue ;; esac
        seen="$seen$dep "
        local name
        name=$(basename "$dep")
        case "$name" in
        *.ko.xz) xz -dc "$moddir/$dep" >"$dest/${name%.xz}" ;;
        *.ko.zst) zstd -qdc "$moddir/$dep" >"$dest/${name%.zst}" ;;
        *.ko.gz) gzip -dc "$moddir/$dep" >"$dest/${name%.gz}" ;;
        *) cp "$moddir/$dep" "$dest/$name" ;;
        esac
        echo "${name%.ko*}.ko"
    done
}

build() {
    local deb unpack krel staging
    "$SRC/scripts/install-deps.sh" --guest-kernel "$OUT/cache"
    deb=$(printf '%s\n' "$OUT"/cache/linux-image-*.deb | sort -V | tail -n 1)
    if ! dpkg-deb --info "$deb" >/dev/null 2>&1; then
        rm -f "$deb"
        die "$deb was damaged and is removed; run again"
    fi
    [ -x /bin/busybox ] || die "/bin/busybox is missing; install busybox-static"

    unpack=$OUT/unpack
    rm -rf "$unpack"
    dpkg-deb -x "$deb" "$unpack"
    krel=$(find "$unpack/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
    [ -f "$unpack/boot/vmlinuz-$krel" ] || die "no vmlinuz-$krel in $deb"

    staging=$OUT/initramfs
    rm -rf "$staging"
    mkdir -p "$staging"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,modules}
    cp /bin/busybox "$staging/bin/busybox"
    ln -s busybox "$staging/bin/sh"
    cp "$SRC/tests/guest/init.sh" "$staging/init"
    chmod 755 "$staging/init"
    collect_modules "$unpack/lib/modules/$krel" "$staging/modules" >"$staging/modules/order"
    # TPM2_GetRandom(8) and TPM2_Startup(SU_CLEAR), raw command bytes.
    printf '\200\001\000\000\000\014\000\000\001\173\000\010' >"$staging/getrandom.bin"
    printf '\200\001\000\000\000\014\000\000\001\104\000\000' >"$staging/startup.bin"

    (cd "$staging" && find . -print0 | LC_ALL=C sort -z |
        cpio --null --create --format=newc --owner=0:0 --quiet) |
        gzip -9n >"$OUT/initramfs.cpio.gz.tmp"
    cp "$unpack/boot/vmlinuz-$krel" "$OUT/vmlinuz.tmp"
    echo "$krel" >"$OUT/kernel-release"
    mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
    mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
    local mods
    mods=$(tr '\n' ' ' <"$staging/modules/order")
    echo "build-guest: kernel $krel, initramfs $(stat -c %s "$OUT/initramfs.cpio.gz")" \
        "bytes, TPM modules: ${mods:-none, built in}"
    # The unpacked package is ~400 MB of modules the guest does not use.
    rm -rf "$unpack" "$staging"
}

# Tests may run side by side; one builds, the others wait for it.
exec 9>"$OUT/.lock"
flock 9
up_to_date || build
