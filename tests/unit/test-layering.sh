#!/bin/bash
# The layering of docs/design.md "Layers", checked on the source tree: which
# directory includes which, that no two directories include each other
# (directly or around a loop), and the rules of the house that a grep can
# prove. Headers are attributed to the directory that implements them.
. "$(dirname "$0")/../lib.sh"
cd "$SRC_PATH" 2>/dev/null || cd "$(dirname "$0")/../.."

SRC_DIRS="util crypto block nvram hw/core backends/tpm manufacture hw/tpm export/swtpm migration monitor system tools"

# owner HEADER: the source directory that implements HEADER (a path under
# include/), or nothing for a header the table does not know.
owner() {
    case "$1" in
    config-host.h) echo generated ;;
    qemu/*) echo util ;;
    crypto/*) echo crypto ;;
    block/*|sysemu/blockdev.h) echo block ;;
    nvram/*) echo nvram ;;
    hw/irq.h|exec/memory.h|sysemu/runstate.h) echo hw/core ;;
    sysemu/tpm_frontend.h) echo hw/tpm ;;
    sysemu/tpm_*) echo backends/tpm ;;
    hw/tpm/*) echo hw/tpm ;;
    export/*) echo export/swtpm ;;
    manufacture/*) echo manufacture ;;
    sysemu/*) echo system ;;
    migration/*) echo migration ;;
    monitor/*) echo monitor ;;
    esac
}

# dir_of FILE: the source directory FILE belongs to (headers by owner).
dir_of() {
    case "$1" in
    include/*) owner "${1#include/}" ;;
    *) dirname "$1" ;;
    esac
}

edges=$SCRATCH/edges
unknown=$SCRATCH/unknown
: >"$edges"
: >"$unknown"
for f in $(git ls-files -- $SRC_DIRS include | grep -E '\.[ch]$'); do
    from=$(dir_of "$f")
    [ -n "$from" ] || { echo "$f" >>"$unknown"; continue; }
    for h in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
        case "$f" in */*.[ch]) [ -e "$(dirname "$f")/$h" ] && continue ;; esac
        to=$(owner "$h")
        [ -n "$to" ] || { echo "$f: $h" >>"$unknown"; continue; }
        [ "$to" = generated ] && continue
        [ "$from" = "$to" ] || echo "$from $to" >>"$edges"
    done
done
sort -u -o "$edges" "$edges"
diag "directory includes (from -> to):"
while read -r a b; do diag "  $a -> $b"; done <"$edges"

check "every header has an owning directory" test ! -s "$unknown"
[ -s "$unknown" ] && while read -r l; do diag "unknown: $l"; done <"$unknown"

# tsort reads pairs "a b" (a before b) and reports a loop on stderr.
check "no include cycle between directories" \
    bash -c "tsort '$edges' 2>&1 >/dev/null | grep -q loop && exit 1 || exit 0"
tsort "$edges" 2>&1 >/dev/null | while read -r l; do diag "$l"; done

# The layers, bottom to top: what each directory may include besides itself
# (docs/design.md "Layers"). An arrow not listed here fails the test.
allowed() {
    case "$1" in
    util) echo "" ;;
    crypto|block|hw/core|monitor) echo "util" ;;
    nvram) echo "util crypto block" ;;
    backends/tpm) echo "util crypto block nvram" ;;
    hw/tpm) echo "util hw/core backends/tpm" ;;
    manufacture) echo "util crypto block nvram backends/tpm" ;;
    export/swtpm) echo "util crypto hw/core backends/tpm monitor" ;;
    migration) echo "util crypto hw/core backends/tpm hw/tpm monitor" ;;
    system) echo "util crypto block nvram hw/core backends/tpm hw/tpm export/swtpm migration monitor" ;;
    tools) echo "util crypto block nvram hw/core backends/tpm manufacture hw/tpm migration monitor" ;;
    tools/swtpm-compat) echo "util export/swtpm" ;;
    esac
}
while read -r a b; do
    case " $(allowed "$a") " in
    *" $b "*) ok "$a/ may include $b/" ;;
    *) not_ok "$a/ includes $b/, which is not below it" ;;
    esac
done <"$edges"
for d in migration monitor; do
    check "$d/ does not include crypto/secret.h" \
        bash -c "! git grep -l '#include \"crypto/secret.h\"' -- '$d/*.c'"
done

# Code outside hw/tpm/ reaches the TIS through the frontend interface; a TIS
# driver (qtpm-tis) includes only the register names.
check "no tpm_tis symbol outside hw/tpm/ and tests" \
    bash -c "! git grep -nw -E 'tpm_tis_[a-z_]+|TPMTIS[A-Za-z]*' -- '*.c' '*.h' ':!hw/tpm/' ':!include/hw/tpm/' ':!tests/' | grep -v ':#include '"
check "outside hw/tpm/, only the register names of the TIS are included" \
    bash -c "! git grep -n '#include \"hw/tpm/' -- '*.c' '*.h' ':!hw/tpm/' ':!include/hw/tpm/' ':!tests/' | grep -v 'hw/tpm/tpm_tis_regs.h'"

done_testing
