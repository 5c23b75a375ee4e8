#!/bin/sh
# Installs the Debian packages qtpm needs to build, test and run its demo.
# As root it runs apt-get; otherwise it prints the apt-get line and stops.
#   scripts/install-deps.sh                    the packages
#   scripts/install-deps.sh --guest-kernel DIR also a Debian kernel package for
#                                              the test guest, cached in DIR
set -e
KERNEL_DIR=
if [ "${1:-}" = --guest-kernel ]; then
    KERNEL_DIR=${2:?"usage: $0 --guest-kernel DIR"}
fi
PKGS="gcc make pkg-config libglib2.0-dev libtpms-dev zlib1g-dev nettle-dev \
libjson-glib-dev libgnutls28-dev libisal-dev qemu-utils tpm2-tools libtss2-tcti-cmd0 swtpm swtpm-tools \
qemu-system-x86 clang libclang-rt-14-dev valgrind openssl xxd socat jq \
libtss2-tcti-swtpm0 hyperfine strace busybox-static cpio python3 \
libvirt-daemon-system libvirt-clients tini"

missing=""
for p in $PKGS; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"ok installed") ;;
    *) missing="$missing $p" ;;
    esac
done
# The kernel the test guest boots: the one Debian's linux-image-amd64 points
# to (the release's current kernel), else the newest versioned generic one.
# It is fetched once; apt-get download needs no root and installs nothing.
kernel_package() {
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }')
    if [ -z "$kpkg" ]; then
        kpkg=$(apt-cache pkgnames linux-image- 2>/dev/null |
            grep -E '^linux-image-[0-9][^ ]*-amd64$' |
            grep -vE -- '-(cloud|rt)-amd64$' | sort -V | tail -n 1)
    fi
    echo "$kpkg"
}

fetch_guest_kernel() {
    set -- "$KERNEL_DIR"/linux-image-*.deb
    [ -f "$1" ] && return 0
    pkg=$(kernel_package)
    if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        pkg=$(kernel_package)
    fi
    if [ -z "$pkg" ]; then
        echo "qtpm: apt-cache knows no linux-image-*-amd64 package; run apt-get update" >&2
        exit 1
    fi
    echo "qtpm: fetching $pkg for the test guest"
    mkdir -p "$KERNEL_DIR"
    # As root apt drops to _apt for downloads, which may not write here.
    (cd "$KERNEL_DIR" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "$pkg")
}

if [ -z "$missing" ]; then
    [ -n "$KERNEL_DIR" ] && fetch_guest_kernel
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "qtpm: missing Debian packages; run as root:" >&2
    echo "  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
echo "qtpm: installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
[ -n "$KERNEL_DIR" ] && fetch_guest_kernel
exit 0
