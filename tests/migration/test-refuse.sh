#!/bin/bash
# A target refuses what it must not accept, and the source keeps its TPM:
# wrong and missing keys (refused before the target listens), a stream sealed
# with another key, and damaged streams (flipped bit, absurd length, unknown
# section, truncation) on the wire and in files. docs/migration.md §3-4.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/migration-lib.sh"

KA=$SCRATCH/key-a
KB=$SCRATCH/key-b

img=$(new_image src "$KA")
start_source src "$img" "$KA" 0000000000000000000000000000000000000000000000000000000000000002
pcr=$(pcr16 src)

# source_intact LABEL: the source failed its migration with a reason, runs,
# and answers TPM commands with its state.
source_intact() {
    local label=$1
    check "$label: source query-migrate failed" \
        test "$(query_migrate src status)" = failed
    check "$label: the reason is given" test -n "$(query_migrate src error-desc)"
    diag "$label: error-desc: $(query_migrate src error-desc)"
    check "$label: source runs" test "$(runstate src)" = running
    check "$label: source answers TPM commands" tpm src tpm2_getrandom 8 -o /dev/null
    check "$label: source PCR 16 unchanged" test "$(pcr16 src)" = "$pcr"
}

# --- wrong and missing key on a shared-storage target -----------------------
for k in wrong missing; do
    sum=$(image_sum "$img")
    if [ $k = wrong ]; then tkey=$KB; else tkey=""; fi
    start_qtpm "t$k" "$img" "$tkey" -incoming "unix:$SCRATCH/$k.mig"
    wait_exit "$(eval echo \$PID_t$k)" 100
    check "$k key: target exits with status 1" test "$EXIT_STATUS" = 1
    diag "$k key: target says: $(cat "$SCRATCH/t$k.err")"
    if [ $k = wrong ]; then
        check "$k key: the sentence names the wrong key" grep -qi 'wrong key' "$SCRATCH/t$k.err"
    else
        check "$k key: the sentence names the missing key" grep -qi 'no key' "$SCRATCH/t$k.err"
    fi
    check "$k key: the target never listened" test ! -e "$SCRATCH/$k.mig"
    migrate src "unix:$SCRATCH/$k.mig" >/dev/null
    source_intact "$k key"
    check "$k key: the image is unchanged" test "$(image_sum "$img")" = "$sum"
done

# --- non-shared target whose own image opens with its key, but the stream ---
# --- was sealed with another one ---------------------------------------------
other=$(new_image other "$KB")
start_qtpm tother "$other" "$KB" -incoming "unix:$SCRATCH/other.mig"
wait_for_file "$SCRATCH/other.mig" 100
migrate src "unix:$SCRATCH/other.mig" >/dev/null
wait_exit "$PID_tother" 100
check "stream key: target exits with status 1" test "$EXIT_STATUS" = 1
check "stream key: it names the key-check mismatch" \
    grep -q 'does not match' "$SCRATCH/tother.err"
source_intact "stream key"
check "stream key: the source names the target's reason" \
    grep -q 'does not match' <(query_migrate src error-desc)

# --- damaged streams through a relay -----------------------------------------
# Header: 128 bytes; the first section's type is at 128, its length at 136.
damage() {
    local label=$1
    shift
    start_qtpm "t$label" "$img" "$KA" -incoming "unix:$SCRATCH/$label.mig"
    wait_for_file "$SCRATCH/$label.mig" 100
    "$MTOOL" relay "$SCRATCH/$label.relay" "$SCRATCH/$label.mig" "$@" &
    bg_pid $!
    wait_for_file "$SCRATCH/$label.relay" 100
    migrate src "unix:$SCRATCH/$label.relay" >/dev/null
    wait_exit "$(eval echo \$PID_t$label)" 100
    check "$label: target exits with status 1" test "$EXIT_STATUS" = 1
    diag "$label: target says: $(cat "$SCRATCH/t$label.err")"
    check "$label: one sentence on stderr" test "$(wc -l < "$SCRATCH/t$label.err")" = 1
    source_intact "$label"
}
damage flip flip 200
check "flip: the target saw the CRC or tag" grep -qiE 'CRC|authentication' "$SCRATCH/tflip.err"
damage length set32 136 0x7fffffff
check "length: the target refused the length" grep -q 'length' "$SCRATCH/tlength.err"
damage unknown set32 128 0x77
check "unknown: the target named the unknown section" \
    grep -q 'unknown section type 0x77' "$SCRATCH/tunknown.err"
damage truncated cut 300
check "truncated: the target saw the early end" grep -q 'ended' "$SCRATCH/ttruncated.err"
damage header flip 20
check "header: the target saw the header CRC" grep -q 'header CRC' "$SCRATCH/theader.err"

# --- damaged files ----------------------------------------------------------
# A file migration has no return path: the source completes. Its stream,
# damaged, must be refused by a target reading it.
img2=$(new_image filesrc "$KA")
start_qtpm fsrc "$img2" "$KA"
wait_qmp fsrc
tpm fsrc tpm2_startup -c
migrate fsrc "file:$SCRATCH/stream.bin" non-shared >/dev/null
check "file: the source completed" test "$(query_migrate fsrc status)" = completed
kill "$PID_fsrc"
wait "$PID_fsrc" 2>/dev/null
size=$(stat -c %s "$SCRATCH/stream.bin")
file_case() {
    local label=$1 f=$SCRATCH/$1.bin timg
    cp "$SCRATCH/stream.bin" "$f"
    shift
    "$@" "$f"
    timg=$(new_image "f$label" "$KA")
    local sum
    sum=$(image_sum "$timg")
    start_qtpm "f$label" "$timg" "$KA" -incoming "file:$f"
    wait_exit "$(eval echo \$PID_f$label)" 100
    check "file $label: target exits with status 1" test "$EXIT_STATUS" = 1
    diag "file $label: $(cat "$SCRATCH/f$label.err")"
    check "file $label: its image is unchanged" test "$(image_sum "$timg")" = "$sum"
}
# flip_at OFFSET HEXMASK FILE / put32 OFFSET HEX8 FILE
flip_at() {
    printf '%02x' $((0x$(xxd -s "$1" -l 1 -p "$3") ^ 0x$2)) | xxd -r -p |
        dd of="$3" bs=1 seek="$1" conv=notrunc status=none
}
put32() { printf "$2" | xxd -r -p | dd of="$3" bs=1 seek="$1" conv=notrunc status=none; }
file_case truncated truncate -s $((size - 7))
file_case empty truncate -s 0
file_case flipped flip_at 400 04
file_case absurd put32 136 ffffff00
file_case unknown put32 128 00001234
file_case lastbyte flip_at $((size - 1)) 80
# The undamaged file works.
good=$(new_image fgood "$KA")
start_qtpm fgood "$good" "$KA" -incoming "file:$SCRATCH/stream.bin"
wait_qmp fgood
for i in $(seq 1 50); do
    [ "$(query_migrate fgood status)" = completed ] && break
    sleep 0.1
done
check "file: the undamaged stream is accepted" test "$(query_migrate fgood status)" = completed
check "file: the target answers" tpm fgood tpm2_getrandom 8 -o /dev/null

# --- -incoming defer and migrate-incoming ---------------------------------------
start_qtpm tdefer "$img" "$KA" -incoming defer
wait_qmp tdefer
check "defer: nothing listens yet" test ! -e "$SCRATCH/defer.mig"
check "defer: migrate-incoming accepted" grep -q return <(qmpc "$SCRATCH/tdefer.qmp" \
    "{\"execute\": \"migrate-incoming\", \"arguments\": {\"uri\": \"unix:$SCRATCH/defer.mig\"}}")
wait_for_file "$SCRATCH/defer.mig" 100
check "defer: a second migrate-incoming is refused" grep -q error <(qmpc "$SCRATCH/tdefer.qmp" \
    "{\"execute\": \"migrate-incoming\", \"arguments\": {\"uri\": \"unix:$SCRATCH/x.mig\"}}")
migrate src "unix:$SCRATCH/defer.mig" >/dev/null
check "defer: migration completed" test "$(query_migrate src status)" = completed
check "defer: PCR 16 arrived" test "$(pcr16 tdefer)" = "$pcr"
check "a bad URI is refused by migrate" grep -q error <(qmpc "$SCRATCH/tdefer.qmp" \
    '{"execute": "migrate", "arguments": {"uri": "nonsense:1"}}')

# --- tcp: the same hand-off over a TCP socket -------------------------------
port=$((20000 + RANDOM % 30000))
start_qtpm ttcp "$img" "$KA" -incoming "tcp:127.0.0.1:$port"
for i in $(seq 1 100); do
    [ "$(query_migrate ttcp status 2>/dev/null)" = setup ] && break
    sleep 0.1
done
migrate tdefer "tcp:127.0.0.1:$port" >/dev/null
check "tcp: migration completed" test "$(query_migrate tdefer status)" = completed
check "tcp: PCR 16 arrived" test "$(pcr16 ttcp)" = "$pcr"

done_testing
