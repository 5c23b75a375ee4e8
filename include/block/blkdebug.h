/*
 * blkdebug: fault injection between a format driver and its file, for tests.
 * Open with BlockOpenOptions.blkdebug and get the state with
 * bdrv_get_blkdebug(). See docs/block-layer.md "blkdebug".
 *
 * Every write (and zero write) the format driver sends to its file is counted.
 * "The Nth write" counts from the call that arms the fault: n = 1 is the next
 * write. Armed faults fire once.
 *
 * A crash (a torn write, blkdebug_crash_at_write() or a power loss) makes every
 * later read, write, flush and truncate through this layer fail with EIO, as
 * if the machine had stopped; close the image and reopen it without blkdebug
 * to look at what reached the disk.
 */
#ifndef BLOCK_BLKDEBUG_H
#define BLOCK_BLKDEBUG_H

#include "block/block.h"

/* One write since the last completed flush (the unflushed log). */
typedef struct BlkdebugWrite {
    int64_t offset;
    int64_t bytes;          /* bytes that reached the file */
    const uint8_t *old_data; /* the file's bytes before the write */
    const uint8_t *new_data;
} BlkdebugWrite;

/* The Nth write from now fails with EIO without touching the file. */
void blkdebug_fail_write(BlkdebugState *bd, unsigned n);
/* The Nth flush from now fails with EIO (the writes stay unflushed). */
void blkdebug_fail_flush(BlkdebugState *bd, unsigned n);
/*
 * The Nth write from now stores only its first @keep_bytes bytes, fails with
 * EIO, and the layer crashes.
 */
void blkdebug_tear_write(BlkdebugState *bd, unsigned n, int64_t keep_bytes);
/* The Nth write from now does not happen at all, and the layer crashes. */
void blkdebug_crash_at_write(BlkdebugState *bd, unsigned n);

/* Writes counted since open or blkdebug_reset() (failed and torn ones too). */
unsigned blkdebug_write_count(BlkdebugState *bd);
/* Flushes that completed since open or blkdebug_reset(). */
unsigned blkdebug_flush_count(BlkdebugState *bd);
/* Writes in the unflushed log; index 0 is the oldest. */
unsigned blkdebug_unflushed_count(BlkdebugState *bd);
const BlkdebugWrite *blkdebug_unflushed_write(BlkdebugState *bd,
                                              unsigned index);
bool blkdebug_is_crashed(BlkdebugState *bd);

/*
 * Power loss: the writes of the unflushed log for which @lose returns true
 * are undone on the file, the others stay; then the layer crashes.
 * The file is rebuilt as: the state at the last completed flush, plus the
 * kept writes in their original order (so overlapping writes come out as a
 * disk would have left them). Growth of the file by lost writes is undone.
 */
typedef bool (*BlkdebugLoseFn)(unsigned index, const BlkdebugWrite *w,
                               void *opaque);
int blkdebug_power_loss(BlkdebugState *bd, BlkdebugLoseFn lose, void *opaque,
                        GError **errp);
/* Same, bit i of @lose_mask set = unflushed write i is lost (i < 64). */
int blkdebug_power_loss_mask(BlkdebugState *bd, uint64_t lose_mask,
                             GError **errp);

/* Disarms all faults, clears the counters and the log; ends a crash. */
void blkdebug_reset(BlkdebugState *bd);

#endif
