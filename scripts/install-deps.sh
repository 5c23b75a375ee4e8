#!/bin/sh
# Installs the Debian packages qtpm needs to build, test and run its demo.
# As root it runs apt-get; otherwise it prints the apt-get line and stops.
set -e
PKGS="gcc make pkg-config libglib2.0-dev libtpms-dev zlib1g-dev nettle-dev \
libjson-glib-dev qemu-utils tpm2-tools libtss2-tcti-cmd0 swtpm swtpm-tools \
qemu-system-x86 clang libclang-rt-14-dev valgrind openssl xxd socat jq \
libtss2-tcti-swtpm0 hyperfine strace"

missing=""
for p in $PKGS; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"ok installed") ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

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
