# shellcheck shell=bash
# Shell helpers for tests that run a real libvirt (Debian 12's 9.0, the
# monolithic libvirtd with virtlogd) on a private runtime, and TCG domains
# that boot the test guest of tests/guest/. Source it after lib.sh.
#
# libvirt's QEMU driver keeps its state in paths fixed at build time
# (/run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt,
# /etc/libvirt/qemu for defined domains and its qemu.conf, /var/log/swtpm
# and /var/lib/swtpm-localca for emulated TPMs); libvirtd.conf and qemu.conf
# can move the sockets and logs, not those. So the daemons run in a private
# mount namespace in which each of those folders is a bind mount of a
# folder under $LV_DIR, and in a private network namespace, so that no
# bridge or firewall rule of libvirt's network drivers reaches the host. A
# host's own libvirt, if one runs, keeps its files and never sees ours.
# Where one of those folders does not exist yet, the mount point (and the
# folders above it) are made for the run and removed by libvirt_stop, so
# nothing is left on the host. virsh talks to our libvirtd through
# its socket, whose file is reachable outside the namespace at
# $LV_DIR/run/libvirt/libvirt-sock.
#
#   LV_DIR            the private root (under $SCRATCH)
#   LV_URI            qemu:///system?socket=... for virsh
#   LIBVIRTD_PATH     PATH of libvirtd (and so of the programs it runs);
#                     set it before libvirt_start
#   LV_QEMU_CONF      extra lines for qemu.conf; set before libvirt_start
#   LV_LIBVIRTD_WRAPPER  a command libvirtd runs under (e.g. LV_REAPER);
#                     set before libvirt_start
#
# libvirt tells a TPM emulator that died at start-up from a slow one by
# kill(pid, 0) on the daemonized process. Under an init that reaps late or
# not at all (some containers) a dead one stays a zombie for a while, and
# libvirt waits out its second and says "swtpm socket did not show up"
# instead of the emulator's error. LV_REAPER (tini -s, a subreaper) reaps
# libvirtd's orphans at once, as systemd does on a host.
#
# libvirt_start; lv_guest_files; lv_define NAME TPM_XML; lv_start NAME;
# lv_wait_shutoff NAME; lv_guest_ok NAME tis|crb; lv_destroy NAME;
# lv_undefine NAME [ARGS]; libvirt_stop (also run at exit).

LV_DIR=$SCRATCH/libvirt
LV_URI=
LV_VIRTLOGD_PID=
LV_LIBVIRTD_PID=
LIBVIRTD_PATH=${LIBVIRTD_PATH:-/usr/sbin:/usr/bin:/sbin:/bin}
LV_QEMU_CONF=${LV_QEMU_CONF:-}
LV_LIBVIRTD_WRAPPER=${LV_LIBVIRTD_WRAPPER:-}
LV_REAPER="tini -s --"
LV_PRIVATE_DIRS="/etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt \
/var/cache/libvirt /var/log/swtpm /var/lib/swtpm-localca"
_lv_domains=()

# QEMU runs as libvirt's QEMU user (libvirt-qemu on Debian), which must
# reach the guest's files, the console and a TPM socket under $SCRATCH.
chmod 0711 "$SCRATCH"

# lv_virsh ARGS...: virsh on the private libvirtd.
lv_virsh() { virsh -q -c "$LV_URI" "$@"; }

# _lv_skeleton HOSTDIR PRIVDIR: PRIVDIR gets HOSTDIR's folders (two levels,
# no files) with their owners and modes, as the packages made them.
_lv_skeleton() {
    local host=$1 priv=$2 d
    mkdir -p "$priv"
    [ -d "$host" ] || return 0
    chown --reference="$host" "$priv"
    chmod --reference="$host" "$priv"
    (cd "$host" && find . -mindepth 1 -maxdepth 2 -type d) | while read -r d; do
        mkdir -p "$priv/$d"
        chown --reference="$host/$d" "$priv/$d"
        chmod --reference="$host/$d" "$priv/$d"
    done
}

_lv_write_config() {
    local etc=$LV_DIR/etc/libvirt
    mkdir -p "$etc/qemu"
    # Sockets stay at their default place inside the namespace (the bind
    # mount of $LV_DIR/run/libvirt); no TCP, no polkit.
    cat >"$etc/libvirtd.conf" <<EOF
listen_tls = 0
listen_tcp = 0
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "2:file:$LV_DIR/log/libvirtd.log"
EOF
    cat >"$etc/virtlogd.conf" <<EOF
log_outputs = "2:file:$LV_DIR/log/virtlogd.log"
EOF
    # QEMU as Debian runs it (libvirt-qemu, DAC labelling on), but without
    # cgroups (no host cgroup folders) and without a MAC driver (no host
    # AppArmor profiles).
    cat >"$etc/qemu.conf" <<EOF
security_driver = "none"
cgroup_controllers = [ ]
$LV_QEMU_CONF
EOF
    chmod 0600 "$etc/qemu.conf"
}

# Mount points are shared by every libvirt test that runs at the same time
# (tests/run.sh runs two at once), and removing one that another test's
# namespace has a mount on would detach that mount. So the folders made for
# any run are listed in $_LV_STATE/made, each running test has a file
# $_LV_STATE/run.PID, and the last test to stop (no run file left whose
# process lives) removes the listed folders and $_LV_STATE. $_LV_STATE is
# under /run, root's; every change to it happens under a short flock on
# /run, released before any daemon starts, so no daemon inherits it.
_LV_STATE=/run/qtpm-test-libvirt

# _lv_state_lock / _lv_state_unlock: the short mutex (at most 60 s wait).
_lv_state_lock() {
    exec {_lv_lock_fd}</run
    flock -w 60 "$_lv_lock_fd" || { diag "the lock on /run stayed taken for 60 s"; return 1; }
}
_lv_state_unlock() {
    flock -u "$_lv_lock_fd"
    exec {_lv_lock_fd}<&-
}

# _lv_make_mount_point DIR: mkdir -p, listing each folder it made.
_lv_make_mount_point() {
    local d=$1 missing=()
    while [ ! -e "$d" ] && [ "$d" != / ]; do
        missing=("$d" "${missing[@]}")
        d=$(dirname "$d")
    done
    for d in "${missing[@]}"; do
        mkdir "$d" && printf '%s\n' "$d" >>"$_LV_STATE/made"
    done
}

# _lv_make_mount_points DIR...: the folders, and this test's run file.
_lv_make_mount_points() {
    local d
    _lv_state_lock || return 1
    mkdir -p -m 0700 "$_LV_STATE"
    : >"$_LV_STATE/run.$$"
    for d in "$@"; do
        _lv_make_mount_point "$d"
    done
    _lv_state_unlock
}

# _lv_remove_mount_points: this test's run file goes, and when no other
# test runs, every folder made for one, innermost first, if still empty (on
# the host they always are: the mounts were only ever in the daemons'
# namespaces).
_lv_remove_mount_points() {
    local d f others=0
    [ -e "$_LV_STATE/run.$$" ] || return 0
    _lv_state_lock || return 1
    rm -f "$_LV_STATE/run.$$"
    for f in "$_LV_STATE"/run.*; do
        [ -e "$f" ] || continue
        if kill -0 "${f##*/run.}" 2>/dev/null; then
            others=1
        else
            rm -f "$f"      # a test that died without its exit trap
        fi
    done
    if [ "$others" = 0 ]; then
        if [ -f "$_LV_STATE/made" ]; then
            sort -r -u "$_LV_STATE/made" | while IFS= read -r d; do
                rmdir "$d" 2>/dev/null
            done
        fi
        rm -f "$_LV_STATE/made"
        rmdir "$_LV_STATE"
    fi
    _lv_state_unlock
}

# libvirt_start: virtlogd, then libvirtd in the same namespaces; returns
# once libvirtd answers. Sets LV_URI, LV_VIRTLOGD_PID, LV_LIBVIRTD_PID.
libvirt_start() {
    local d mounts="" i
    mkdir -p "$LV_DIR/log"
    for d in $LV_PRIVATE_DIRS; do
        [ "$d" = /etc/libvirt ] && { mkdir -p "$LV_DIR$d"; continue; }
        _lv_skeleton "$d" "$LV_DIR$d"
    done
    _lv_write_config
    # shellcheck disable=SC2086
    _lv_make_mount_points $LV_PRIVATE_DIRS || return 1
    for d in $LV_PRIVATE_DIRS; do
        mounts="$mounts mount --bind '$LV_DIR$d' '$d' &&"
    done
    LV_URI="qemu:///system?socket=$LV_DIR/run/libvirt/libvirt-sock"

    unshare --mount --propagation private --net -- \
        sh -c "$mounts exec virtlogd -f '$LV_DIR/etc/libvirt/virtlogd.conf' \
            -p '$LV_DIR/run/virtlogd.pid'" >"$LV_DIR/log/virtlogd.out" 2>&1 &
    LV_VIRTLOGD_PID=$!
    bg_pid "$LV_VIRTLOGD_PID"
    wait_for_file "$LV_DIR/run/libvirt/virtlogd-sock" 100 ||
        { diag "virtlogd did not start: $(cat "$LV_DIR/log/virtlogd.out")"; return 1; }

    # shellcheck disable=SC2086
    nsenter --target "$LV_VIRTLOGD_PID" --mount --net -- \
        env -i PATH="$LIBVIRTD_PATH" HOME=/root LANG=C.UTF-8 \
        $LV_LIBVIRTD_WRAPPER libvirtd -f "$LV_DIR/etc/libvirt/libvirtd.conf" \
        -p "$LV_DIR/run/libvirtd.pid" >"$LV_DIR/log/libvirtd.out" 2>&1 &
    LV_LIBVIRTD_PID=$!
    bg_pid "$LV_LIBVIRTD_PID"
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$LV_LIBVIRTD_PID" 2>/dev/null; then
            diag "libvirtd exited: $(cat "$LV_DIR/log/libvirtd.out")"
            return 1
        fi
        [ -S "$LV_DIR/run/libvirt/libvirt-sock" ] &&
            lv_virsh uri >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    diag "libvirtd does not answer: $(tail -5 "$LV_DIR/log/libvirtd.log")"
    return 1
}

# _lv_stop_pid PID: SIGTERM, up to 10 s, then SIGKILL.
_lv_stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# libvirt_stop: every domain this test defined is destroyed and undefined,
# a QEMU that outlived libvirtd is killed by its pid file, then libvirtd and
# virtlogd stop and the mount points this run made go. Safe to call twice.
libvirt_stop() {
    local name pid
    if [ -n "$LV_LIBVIRTD_PID" ] && kill -0 "$LV_LIBVIRTD_PID" 2>/dev/null; then
        for name in "${_lv_domains[@]}"; do
            lv_virsh destroy "$name" >/dev/null 2>&1
            lv_virsh undefine --nvram --keep-tpm "$name" >/dev/null 2>&1
        done
    fi
    _lv_stop_pid "$LV_LIBVIRTD_PID"
    LV_LIBVIRTD_PID=
    for pid in "$LV_DIR"/run/libvirt/qemu/*.pid; do
        [ -f "$pid" ] && _lv_stop_pid "$(cat "$pid")"
    done
    _lv_stop_pid "$LV_VIRTLOGD_PID"
    LV_VIRTLOGD_PID=
    _lv_domains=()
    _lv_remove_mount_points
}
trap 'libvirt_stop; cleanup' EXIT

# lv_guest_files: the guest kernel and initramfs (tests/guest/), copied to
# $LV_DIR/guest so that libvirt's relabelling of them never touches the
# build folder. Sets LV_KERNEL, LV_INITRD.
lv_guest_files() {
    "$SRC_PATH/tests/guest/build-guest.sh" "$BUILD" >"$LV_DIR/build-guest.log" 2>&1 ||
        { sed 's/^/# /' "$LV_DIR/build-guest.log"; return 1; }
    mkdir -p "$LV_DIR/guest"
    chmod 0755 "$LV_DIR" "$LV_DIR/guest"
    LV_KERNEL=$LV_DIR/guest/vmlinuz
    LV_INITRD=$LV_DIR/guest/initramfs.cpio.gz
    cp "$BUILD/guest/vmlinuz" "$LV_KERNEL"
    cp "$BUILD/guest/initramfs.cpio.gz" "$LV_INITRD"
    chmod 0644 "$LV_KERNEL" "$LV_INITRD"
}

# lv_domain_xml NAME TPM_XML: a TCG q35 domain without disks or network
# that boots the test guest, its serial console to $LV_DIR/NAME.console.
# The guest powers off when it is done, which ends the domain.
lv_domain_xml() {
    local name=$1 tpm=$2
    cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$LV_KERNEL</kernel>
    <initrd>$LV_INITRD</initrd>
    <cmdline>quiet console=ttyS0 panic=-1</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'>
      <source path='$LV_DIR/$name.console'/>
      <target port='0'/>
    </serial>
    $tpm
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# lv_define NAME TPM_XML: defines the domain (XML kept in $LV_DIR/NAME.xml).
lv_define() {
    lv_domain_xml "$1" "$2" >"$LV_DIR/$1.xml"
    lv_virsh define "$LV_DIR/$1.xml" >"$LV_DIR/$1.virsh" 2>&1 ||
        { sed 's/^/# /' "$LV_DIR/$1.virsh"; return 1; }
    _lv_domains+=("$1")
}

# lv_start NAME: virsh start, with a fresh console file; virsh's output in
# $LV_DIR/NAME.virsh (the test reads libvirt's error from it).
lv_start() {
    rm -f "$LV_DIR/$1.console"
    lv_virsh start "$1" >"$LV_DIR/$1.virsh" 2>&1
}

# lv_state NAME: the domain's state as virsh says it ("running", "shut off").
lv_state() { lv_virsh domstate "$1" 2>/dev/null | head -n 1; }

# lv_wait_console NAME PATTERN [SECONDS]: waits until the console has a
# line matching PATTERN (grep -E).
lv_wait_console() {
    local i n=$((${3:-120} * 10))
    for ((i = 0; i < n; i++)); do
        grep -aqE "$2" "$LV_DIR/$1.console" 2>/dev/null && return 0
        sleep 0.1
    done
    diag "no '$2' on $1's console after ${3:-120}s"
    return 1
}

# lv_wait_shutoff NAME [SECONDS]: waits until the domain is shut off (the
# guest powered off or the domain was destroyed).
lv_wait_shutoff() {
    local i n=$((${2:-120} * 10))
    for ((i = 0; i < n; i++)); do
        [ "$(lv_state "$1")" = "shut off" ] && return 0
        sleep 0.1
    done
    diag "$1 is still $(lv_state "$1") after ${2:-120}s"
    return 1
}

# lv_guest_ok NAME tis|crb: the guest's console says what boot-guest.sh
# requires: the kernel's driver for MODEL bound tpm0 and TPM2_GetRandom(8)
# through /dev/tpm0 answered rc 0. Its QTPM-GUEST lines go to the TAP log.
lv_guest_ok() {
    local name=$1 driver=tpm_$2 con=$LV_DIR/$1.console
    grep -a '^QTPM-GUEST: ' "$con" 2>/dev/null | tr -d '\r' | sed 's/^/# /'
    grep -aq "^QTPM-GUEST: tpm0 bound driver=$driver " "$con" &&
        grep -aq '^QTPM-GUEST: size=00000014 rc=00000000' "$con"
}

# lv_destroy NAME: virsh destroy, and the domain is shut off.
lv_destroy() {
    lv_virsh destroy "$1" >"$LV_DIR/$1.virsh" 2>&1 && lv_wait_shutoff "$1" 30
}

# lv_undefine NAME [ARGS...]: virsh undefine with ARGS (e.g. --keep-tpm).
lv_undefine() {
    local name=$1 d
    shift
    lv_virsh undefine "$@" "$name" >"$LV_DIR/$name.virsh" 2>&1 || return 1
    for d in "${!_lv_domains[@]}"; do
        [ "${_lv_domains[d]}" = "$name" ] && unset '_lv_domains[d]'
    done
    return 0
}

# lv_log: the last lines of libvirtd's log, for a diagnosis.
lv_log() { tail -n "${1:-20}" "$LV_DIR/log/libvirtd.log" | sed 's/^/# /'; }

# lv_host_export IMAGE [key|passphrase FILE]: the image served to tpm2-tools
# through a TCP export while its domain is shut off (a free port pair); TPM
# started with CMD_INIT and TPM2_Startup. Sets HOST_PID, HOST_CTRL and
# TPM2TOOLS_TCTI.
lv_host_export() {
    local img=$1 kind=${2:-} file=${3:-} port try i secret=() tpmdev=libtpms,id=tpm0,nvram=d0
    if [ -n "$kind" ]; then
        secret=(-object "secret,id=k0,file=$file,format=raw")
        tpmdev=$tpmdev,$kind-secret=k0
    fi
    for ((try = 0; try < 20; try++)); do
        port=$((20000 + (RANDOM % 20000) * 2))
        "$QTPM" -drive "file=$img,if=none,id=d0" "${secret[@]}" -tpmdev "$tpmdev" \
            -export "swtpm,id=e0,tpmdev=tpm0,ctrl=tcp:127.0.0.1:$((port + 1)),data=tcp:127.0.0.1:$port" \
            >"$SCRATCH/host-qtpm.log" 2>&1 &
        HOST_PID=$!
        bg_pid "$HOST_PID"
        HOST_CTRL=127.0.0.1:$((port + 1))
        export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$port
        for ((i = 0; i < 100; i++)); do
            timeout 10 swtpm_ioctl --tcp "$HOST_CTRL" -i >/dev/null 2>&1 &&
                timeout 30 tpm2_startup -c 2>/dev/null && return 0
            kill -0 "$HOST_PID" 2>/dev/null || break
            sleep 0.1
        done
        # Another program may hold the port pair: try another one.
        kill "$HOST_PID" 2>/dev/null
        wait "$HOST_PID" 2>/dev/null
        grep -q 'Address already in use' "$SCRATCH/host-qtpm.log" || break
    done
    diag "the host export did not start: $(cat "$SCRATCH/host-qtpm.log")"
    return 1
}

# lv_host_stop: CMD_SHUTDOWN to lv_host_export's qtpm, which exits 0.
lv_host_stop() {
    timeout 30 swtpm_ioctl --tcp "$HOST_CTRL" -s >/dev/null &&
        wait_exit "$HOST_PID" && [ "$WAIT_STATUS" -eq 0 ]
}
