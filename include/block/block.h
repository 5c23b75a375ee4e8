/*
 * qtpm block layer: the public API. See docs/block-layer.md.
 *
 * A BlockDriverState is a stack of drivers: a format driver (qcow2, raw) over
 * an optional blkdebug layer over the protocol driver (file). Requests are
 * checked once in block.c (bounds, read-only, alignment) before any driver
 * sees them. Every function reports failure through a GError sentence that
 * names the file.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include "qemu/osdep.h"

typedef struct BlockDriverState BlockDriverState;
typedef struct BlkdebugState BlkdebugState;

typedef struct BlockOpenOptions {
    const char *format;   /* "qcow2", "raw" or NULL/"auto" to probe */
    bool read_only;
    bool no_locking;      /* locking=off: no QEMU lock bytes, bdrv_lock is a no-op */
    bool blkdebug;        /* insert a blkdebug layer between format and file */
    /*
     * Open read-write but inactive, like QEMU's incoming migration: no QEMU
     * permission bytes are taken and public writes are refused until
     * bdrv_activate(). Format drivers must not write while bs->inactive.
     */
    bool inactive;
} BlockOpenOptions;

BlockDriverState *bdrv_open(const char *filename, const BlockOpenOptions *opts,
                            GError **errp);
void bdrv_close(BlockDriverState *bs);

/* Any offset and length inside the virtual disk; 0 on success, -errno on failure. */
int bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
               GError **errp);
int bdrv_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                const void *buf, GError **errp);
/* Writes zeros; drivers may deallocate or mark zero clusters. */
int bdrv_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       GError **errp);
int bdrv_flush(BlockDriverState *bs, GError **errp);
int64_t bdrv_getlength(BlockDriverState *bs, GError **errp);
/* Grows the virtual disk to @size bytes (shrinking is refused). */
int bdrv_truncate(BlockDriverState *bs, int64_t size, GError **errp);

const char *bdrv_get_filename(BlockDriverState *bs);
const char *bdrv_get_format_name(BlockDriverState *bs);
/*
 * True when the format was guessed by probing (no format, or "auto"): a
 * probed "raw" means only that the file is not a known format, which is
 * no reason to write a new structure into it (QEMU's rule for guessed raw).
 */
bool bdrv_format_is_probed(BlockDriverState *bs);
bool bdrv_is_read_only(BlockDriverState *bs);

/* Number of flushes that reached the protocol driver since open (for tests). */
uint64_t bdrv_get_flush_count(BlockDriverState *bs);

/*
 * Asks the host to forget the clean pages it caches of the image's file
 * (POSIX_FADV_DONTNEED); dirty pages stay. Pages that a later large write
 * makes afresh are then cached as that write makes them, a few large folios,
 * whose write-back costs much less than that of the single pages reads and
 * cluster-sized allocating writes leave behind (docs/benchmarks.md, section
 * 1). A hint: it changes no data and cannot fail.
 */
void bdrv_drop_page_cache(BlockDriverState *bs);
/* The length of the image's file on the host (of the protocol node). */
int64_t bdrv_get_file_length(BlockDriverState *bs, GError **errp);

/*
 * Image information for tools. @info is a GString appended with "key: value"
 * lines (human) describing format-specific details.
 */
void bdrv_get_info(BlockDriverState *bs, GString *info);

/*
 * File locks (docs/block-layer.md "Locks"). Advisory, between processes and
 * between two opens in one process; released when the process dies.
 *
 * A lock id selects one byte of a range reserved for qtpm; each id has its own
 * nesting counter. bdrv_lock() is bdrv_lock_id() with id 0.
 * @timeout_ms: 0 tries once; > 0 waits up to that long; < 0 waits forever.
 * Taking a lock already held by this BlockDriverState increments the
 * counter; asking for EXCLUSIVE while holding SHARED converts the lock.
 */
typedef enum {
    BDRV_LOCK_SHARED = 1,
    BDRV_LOCK_EXCLUSIVE = 2,
} BdrvLockMode;

#define BDRV_LOCK_ID_MAX 8

int bdrv_lock(BlockDriverState *bs, BdrvLockMode mode, int timeout_ms,
              GError **errp);
void bdrv_unlock(BlockDriverState *bs);
int bdrv_lock_id(BlockDriverState *bs, unsigned id, BdrvLockMode mode,
                 int timeout_ms, GError **errp);

/* Who holds a lock that could not be taken (QTPM_ERROR_LOCKED). */
typedef struct BdrvLockConflict {
    pid_t pid;          /* 0 when the kernel does not say */
} BdrvLockConflict;

/* bdrv_lock_id() that also fills @conflict (zeroed first) when locked out. */
int bdrv_lock_id_conflict(BlockDriverState *bs, unsigned id, BdrvLockMode mode,
                          int timeout_ms, BdrvLockConflict *conflict,
                          GError **errp);
void bdrv_unlock_id(BlockDriverState *bs, unsigned id);

/*
 * Shared-storage hand-off (docs/block-layer.md "Inactive images"):
 * bdrv_inactivate() flushes, drops the QEMU permission bytes and refuses
 * writes from then on; bdrv_activate() takes the bytes again (failing if
 * another process writes the image), lets the format driver drop cached
 * metadata, and allows writes. qtpm lock ids are not touched by either.
 */
int bdrv_activate(BlockDriverState *bs, GError **errp);
int bdrv_inactivate(BlockDriverState *bs, GError **errp);
bool bdrv_is_inactive(BlockDriverState *bs);

/*
 * Drops metadata the format driver caches, so the next request re-reads it
 * from the file (another process may have changed the image).
 */
int bdrv_invalidate_cache(BlockDriverState *bs, GError **errp);

/* The blkdebug layer of @bs, or NULL when it was opened without one. */
BlkdebugState *bdrv_get_blkdebug(BlockDriverState *bs);

/* Parses "512", "4k", "1M", "2G" into bytes; false on bad input. */
bool qemu_strtosz(const char *str, uint64_t *result);

/*
 * Creates an empty file, or empties an existing one, through the file
 * driver and its locks: fails with QTPM_ERROR_LOCKED, leaving the file as
 * it was, when another open (here or in another process) writes it.
 * @mode applies to a new file.
 */
int bdrv_create_file(const char *filename, mode_t mode, GError **errp);

/*
 * Creates an empty qcow2 v3 image of @size virtual bytes, with the same
 * locks and errors as bdrv_create_file, held until the image is complete.
 * @cluster_size 0 picks the default (docs/qcow2.md "Create").
 */
typedef struct Qcow2CreateOptions {
    uint32_t cluster_size;
    int refcount_bits;   /* 0: default 16 */
    mode_t mode;         /* file mode for a new file; 0: 0644 */
} Qcow2CreateOptions;

int qcow2_create(const char *filename, uint64_t size,
                 const Qcow2CreateOptions *opts, GError **errp);

#endif
