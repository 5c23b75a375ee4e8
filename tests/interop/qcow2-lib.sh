# Helpers for the scripts that check our qcow2 images with Debian's qemu-img.
# Source after tests/lib.sh (it uses diag and $SCRATCH).

# check_clean IMG: qemu-img check reports no errors and no leaks (its exit
# status is 2 for corruptions and 3 for leaks).
check_clean() {
    local out
    out=$(qemu-img check "$1" 2>&1) || { diag "$out"; return 1; }
    if echo "$out" | grep -qE 'leaked|ERROR|corruptions'; then
        diag "$out"
        return 1
    fi
}

# same_as_raw IMG RAW: the guest-visible contents of IMG equal the file RAW.
same_as_raw() {
    qemu-img convert -f qcow2 -O raw "$1" "$SCRATCH/conv.raw" &&
        cmp "$SCRATCH/conv.raw" "$2"
}
