#!/bin/busybox sh
# shellcheck shell=dash
# /init of the test guest's initramfs. It shows what the kernel sees of the
# TPM, sends TPM2_GetRandom(8) through /dev/tpm0 and powers off. Every line
# that boot-guest.sh reads starts with "QTPM-GUEST: ".
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

say() { echo "QTPM-GUEST: $*"; }
finish() {
    say "done uptime=$(cut -d' ' -f1 /proc/uptime)s"
    poweroff -f
}

say "kernel $(uname -r)"

# Drivers built as modules come with their dependencies, listed in load
# order by build-guest.sh.
if [ -s /modules/order ]; then
    while read -r ko; do
        insmod "/modules/$ko" || say "insmod $ko failed"
    done </modules/order
fi

# The driver binds during boot (or at insmod), usually before we look.
tries=0
while [ ! -e /sys/class/tpm/tpm0 ] && [ $tries -lt 50 ]; do
    sleep 0.2
    tries=$((tries + 1))
done
dmesg | grep -i tpm | sed 's/^/QTPM-GUEST: dmesg: /'
if [ ! -e /sys/class/tpm/tpm0 ] || [ ! -c /dev/tpm0 ]; then
    say "no tpm0"
    finish
fi
sys=/sys/class/tpm/tpm0
driver=$(basename "$(readlink $sys/device/driver)")
say "tpm0 bound driver=$driver version=$(cat $sys/tpm_version_major 2>/dev/null)"
for f in $sys/device/firmware_node/hid $sys/device/description; do
    [ -r "$f" ] && say "$(basename "$f")=$(cat "$f")"
done
[ -r $sys/pcr-sha256/0 ] && say "pcr-sha256/0=$(cat $sys/pcr-sha256/0)"

# One command, one write(2) and one read(2) on the same open file, as the
# character device wants them.
tpm_send() {
    exec 3<>/dev/tpm0
    dd if="$1" bs=4096 count=1 >&3 2>/dev/null
    dd bs=4096 count=1 <&3 2>/dev/null >/tmp/resp
    exec 3>&-
    hex=$(od -An -v -tx1 /tmp/resp | tr -d ' \n')
    rc=$(echo "$hex" | cut -c13-20)
}
tpm_send /getrandom.bin
if [ "$rc" = 00000100 ]; then
    # TPM_RC_INITIALIZE: nobody sent TPM2_Startup yet.
    say "startup needed"
    tpm_send /startup.bin
    say "startup rc=$rc"
    tpm_send /getrandom.bin
fi
say "getrandom response=$hex"
say "size=$(echo "$hex" | cut -c5-12) rc=$rc"
finish
