#!/bin/bash
# After a keyed non-shared migration, a core dump of the source and of the
# target (both run with -dumpable on) holds no piece of the key: the stream
# codec's keys, the store's and the secret's live in pages left out of dumps,
# and the migration's buffers are wiped. docs/keys.md "Where to keep it".
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"

KA=$SCRATCH/key-a

# The core files are found by name in the process's directory; a host
# that hands cores to a collector (core_pattern a pipe) is not changed.
CORES_HERE=yes
[ "$(cat /proc/sys/kernel/core_pattern)" = core ] || CORES_HERE=no
ulimit -c unlimited
CORES=$SCRATCH/cores
mkdir -p "$CORES/src" "$CORES/dst"

# core_of NAME PID: makes PID dump core (in $CORES/NAME, where it was
# started) and sets CORE to the file's name. Not in a subshell: only this
# shell can wait for PID, and the core is complete once it has.
core_of() {
    kill -ABRT "$2"
    wait "$2" 2>/dev/null
    CORE=$(find "$CORES/$1" -mindepth 1 -name 'core*' | head -1)
}

# key_absent CORE IMAGE: neither the key nor any 16 bytes of it are in CORE,
# which is a real dump of qtpm's memory: it holds IMAGE's path.
key_absent() {
    [ -s "$1" ] || { diag "no core file"; return 1; }
    grep -qaF "$2" "$1" || { diag "$1 does not hold $2: not qtpm's memory"; return 1; }
    python3 - "$1" "$KA" <<'EOF'
import sys
core = open(sys.argv[1], 'rb').read()
key = open(sys.argv[2], 'rb').read()
hits = sum(core.count(key[i:i + 16]) for i in range(0, len(key) - 15))
print("# %d pieces of the key in the %d-byte core" % (hits, len(core)))
sys.exit(0 if hits == 0 else 1)
EOF
}

src_img=$(new_image src "$KA")
dst_img=$(new_image dst "$KA")
cd "$CORES/src" || exit 1
start_qtpm src "$src_img" "$KA" -dumpable on
wait_qmp src
tpm src tpm2_startup -c
tpm src tpm2_pcrextend \
    "16:sha256=0000000000000000000000000000000000000000000000000000000000000003"
nv_counter_define src
tpm src tpm2_nvincrement "$NV_COUNTER" -C o >/dev/null
pcr=$(pcr16 src)
cd "$CORES/dst" || exit 1
start_qtpm dst "$dst_img" "$KA" -dumpable on -incoming "unix:$SCRATCH/dst.mig"
wait_for_file "$SCRATCH/dst.mig" 100
cd "$SCRATCH" || exit 1

migrate src "unix:$SCRATCH/dst.mig" non-shared >/dev/null
check "the keyed non-shared migration completed" \
    test "$(query_migrate dst status)" = completed
check "the target has the source's PCR 16" test "$(pcr16 dst)" = "$pcr"
check "the target has the source's NV counter" test "$(nv_counter dst)" = 1

if [ "$CORES_HERE" = yes ]; then
    core_of dst "$PID_dst"
    check "the target's core holds no piece of the key" key_absent "$CORE" "$dst_img"
    core_of src "$PID_src"
    check "the source's core holds no piece of the key" key_absent "$CORE" "$src_img"
else
    diag "core_pattern is '$(cat /proc/sys/kernel/core_pattern)', not 'core': the core files are checked only where they land beside the process"
fi
done_testing
