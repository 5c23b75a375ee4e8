/*
 * qtpm block layer: the driver interface. Only block/ includes this.
 */
#ifndef BLOCK_BLOCK_INT_H
#define BLOCK_BLOCK_INT_H

#include "block/block.h"

typedef struct BlockDriver BlockDriver;

struct BlockDriver {
    const char *format_name;
    size_t instance_size;
    bool is_protocol;     /* opens a file name itself (file) */
    bool is_filter;       /* sits over another node and passes it through (blkdebug) */

    /* Scores how likely @buf (the first bytes of the file) is this format. */
    int (*bdrv_probe)(const uint8_t *buf, int buf_size, const char *filename);

    /* Protocol drivers: open @filename. Others: bs->file is already open. */
    int (*bdrv_open)(BlockDriverState *bs, const char *filename,
                     const BlockOpenOptions *opts, GError **errp);
    void (*bdrv_close)(BlockDriverState *bs);
    /*
     * Protocol drivers: open bs->filename read-write like bdrv_open, creating
     * it with @mode if it does not exist, but never emptying it. The node
     * holds the locks of a read-write open when this returns, so an image
     * that another process uses is refused before anything changes; the
     * caller empties and writes it under those locks (bdrv_open_create).
     */
    int (*bdrv_create)(BlockDriverState *bs, mode_t mode, GError **errp);

    /* Requests arrive checked: inside the disk, aligned to bs->request_alignment. */
    int (*bdrv_pread)(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      void *buf, GError **errp);
    int (*bdrv_pwrite)(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       const void *buf, GError **errp);
    int (*bdrv_pwrite_zeroes)(BlockDriverState *bs, int64_t offset,
                              int64_t bytes, GError **errp);
    int (*bdrv_flush)(BlockDriverState *bs, GError **errp);
    int64_t (*bdrv_getlength)(BlockDriverState *bs, GError **errp);
    int (*bdrv_truncate)(BlockDriverState *bs, int64_t size, GError **errp);
    void (*bdrv_get_info)(BlockDriverState *bs, GString *info);

    /*
     * Protocol drivers only; format drivers pass locks down to bs->file.
     * @conflict is never NULL; fill it when someone else holds the lock.
     */
    int (*bdrv_lock)(BlockDriverState *bs, unsigned id, BdrvLockMode mode,
                     int timeout_ms, BdrvLockConflict *conflict, GError **errp);
    void (*bdrv_unlock)(BlockDriverState *bs, unsigned id);

    /* Protocol drivers: take (true) or drop (false) the QEMU permission bytes. */
    int (*bdrv_set_active)(BlockDriverState *bs, bool active, GError **errp);
    /* Format drivers: forget cached metadata (bdrv_invalidate_cache). */
    int (*bdrv_invalidate_cache)(BlockDriverState *bs, GError **errp);
    /* Protocol drivers: drop the host's clean cached pages (bdrv_drop_page_cache). */
    void (*bdrv_drop_page_cache)(BlockDriverState *bs);
};

struct BlockDriverState {
    const BlockDriver *drv;
    void *opaque;                 /* driver state, drv->instance_size bytes */
    BlockDriverState *file;       /* the node below, NULL for protocol drivers */
    char *filename;
    bool read_only;
    bool no_locking;
    uint32_t request_alignment;   /* set by the driver in bdrv_open; default 1 */
    uint64_t flush_count;

    /* lock nesting, per lock id (generic layer) */
    unsigned lock_depth[BDRV_LOCK_ID_MAX];
    BdrvLockMode lock_mode[BDRV_LOCK_ID_MAX];

    /* Open for writing but not yet allowed to write (BlockOpenOptions.inactive). */
    bool inactive;

    /* The format was guessed by probing, not named by the caller. */
    bool format_probed;
};

extern const BlockDriver bdrv_file;
extern const BlockDriver bdrv_raw;
extern const BlockDriver bdrv_qcow2;
extern const BlockDriver bdrv_blkdebug;

/*
 * Opens @filename as an empty raw image in *@pbs, for writing a new image:
 * created with @mode if it does not exist, refused with QTPM_ERROR_LOCKED
 * (-EBUSY) and left as it was if another open writes it, otherwise emptied.
 * The locks are held from before the file is emptied until bdrv_close(), so
 * no other open sees the file between empty and complete. 0 or -errno.
 */
int bdrv_open_create(const char *filename, mode_t mode,
                     BlockDriverState **pbs, GError **errp);

/*
 * Calls on the node below (bs->file), skipping the public request checks:
 * format drivers use these for their metadata and data I/O.
 */
int bdrv_file_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                    void *buf, GError **errp);
int bdrv_file_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                     const void *buf, GError **errp);
int bdrv_file_flush(BlockDriverState *bs, GError **errp);
int64_t bdrv_file_getlength(BlockDriverState *bs, GError **errp);
int bdrv_file_truncate(BlockDriverState *bs, int64_t size, GError **errp);

/*
 * Zero writes for drivers without a zeroing operation of their own: the
 * driver's bdrv_pwrite with a zeroed buffer, in bounded chunks.
 */
int bdrv_pwrite_zeroes_fallback(BlockDriverState *bs, int64_t offset,
                                int64_t bytes, GError **errp);

/* Formats a GError from an errno value: "'FILE': WHAT: strerror". */
void bdrv_set_error_errno(GError **errp, BlockDriverState *bs, int err,
                          const char *fmt, ...) G_GNUC_PRINTF(4, 5);
void bdrv_set_error(GError **errp, BlockDriverState *bs, int code,
                    const char *fmt, ...) G_GNUC_PRINTF(4, 5);

#endif
