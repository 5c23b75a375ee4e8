/*
 * qtpm block layer: blkdebug, a filter driver that injects faults between a
 * format driver and its file (include/block/blkdebug.h).
 */
#include "qemu/osdep.h"

#include "block/blkdebug.h"
#include "block/block_int.h"

typedef struct BlkdebugLogEntry {
    BlkdebugWrite w;
    uint8_t *old_data;
    uint8_t *new_data;
} BlkdebugLogEntry;

struct BlkdebugState {
    BlockDriverState *bs;       /* the blkdebug node itself */
    unsigned writes;
    unsigned flushes_done;
    unsigned flushes;           /* flush requests, failed ones too */
    /* Armed faults: the absolute write/flush number they fire on, 0 = off */
    unsigned fail_write_at;
    unsigned fail_flush_at;
    unsigned tear_write_at;
    int64_t tear_keep_bytes;
    unsigned crash_write_at;
    bool crashed;
    int64_t flushed_length;     /* file length at the last completed flush */
    GPtrArray *log;             /* BlkdebugLogEntry, since the last flush */
};

static void blkdebug_log_entry_free(gpointer p)
{
    BlkdebugLogEntry *e = p;

    g_free(e->old_data);
    g_free(e->new_data);
    g_free(e);
}

static int blkdebug_open(BlockDriverState *bs, const char *filename,
                         const BlockOpenOptions *opts, GError **errp)
{
    BlkdebugState *bd = bs->opaque;

    (void)filename;
    (void)opts;
    bd->bs = bs;
    bd->log = g_ptr_array_new_with_free_func(blkdebug_log_entry_free);
    bd->flushed_length = bdrv_file_getlength(bs, errp);
    if (bd->flushed_length < 0) {
        g_ptr_array_free(bd->log, true);
        return (int)bd->flushed_length;
    }
    bs->request_alignment = bs->file->request_alignment;
    return 0;
}

static void blkdebug_close(BlockDriverState *bs)
{
    BlkdebugState *bd = bs->opaque;

    g_ptr_array_free(bd->log, true);
}

static int blkdebug_eio(BlockDriverState *bs, const char *what, GError **errp)
{
    bdrv_set_error_errno(errp, bs, EIO, "%s (blkdebug)", what);
    return -EIO;
}

static int blkdebug_check_crashed(BlockDriverState *bs, GError **errp)
{
    BlkdebugState *bd = bs->opaque;

    if (bd->crashed) {
        return blkdebug_eio(bs, "I/O after a simulated crash", errp);
    }
    return 0;
}

static int blkdebug_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                          void *buf, GError **errp)
{
    int ret = blkdebug_check_crashed(bs, errp);

    if (ret < 0) {
        return ret;
    }
    return bdrv_file_pread(bs, offset, bytes, buf, errp);
}

/* Writes @bytes of @buf (NULL: zeros) and records the write in the log. */
static int blkdebug_do_write(BlockDriverState *bs, int64_t offset,
                             int64_t bytes, const void *buf, GError **errp)
{
    BlkdebugState *bd = bs->opaque;
    BlkdebugLogEntry *e;
    int ret;

    if (bytes == 0) {
        return 0;
    }
    e = g_new0(BlkdebugLogEntry, 1);
    e->old_data = g_malloc(bytes);
    e->new_data = buf ? g_memdup2(buf, bytes) : g_malloc0(bytes);
    ret = bdrv_file_pread(bs, offset, bytes, e->old_data, errp);
    if (ret == 0) {
        ret = bdrv_file_pwrite(bs, offset, bytes, e->new_data, errp);
    }
    if (ret < 0) {
        blkdebug_log_entry_free(e);
        return ret;
    }
    e->w.offset = offset;
    e->w.bytes = bytes;
    e->w.old_data = e->old_data;
    e->w.new_data = e->new_data;
    g_ptr_array_add(bd->log, e);
    return 0;
}

static int blkdebug_write(BlockDriverState *bs, int64_t offset, int64_t bytes,
                          const void *buf, GError **errp)
{
    BlkdebugState *bd = bs->opaque;
    unsigned n;
    int ret = blkdebug_check_crashed(bs, errp);

    if (ret < 0) {
        return ret;
    }
    n = ++bd->writes;
    if (n == bd->fail_write_at) {
        bd->fail_write_at = 0;
        return blkdebug_eio(bs, "injected write error", errp);
    }
    if (n == bd->crash_write_at) {
        bd->crash_write_at = 0;
        bd->crashed = true;
        return blkdebug_eio(bs, "simulated crash before a write", errp);
    }
    if (n == bd->tear_write_at) {
        bd->tear_write_at = 0;
        ret = blkdebug_do_write(bs, offset, MIN(bytes, bd->tear_keep_bytes),
                                buf, errp);
        bd->crashed = true;
        if (ret < 0) {
            return ret;
        }
        return blkdebug_eio(bs, "simulated crash in a torn write", errp);
    }
    return blkdebug_do_write(bs, offset, bytes, buf, errp);
}

static int blkdebug_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const void *buf, GError **errp)
{
    return blkdebug_write(bs, offset, bytes, buf, errp);
}

static int blkdebug_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                  int64_t bytes, GError **errp)
{
    return blkdebug_write(bs, offset, bytes, NULL, errp);
}

static int blkdebug_flush(BlockDriverState *bs, GError **errp)
{
    BlkdebugState *bd = bs->opaque;
    int64_t len;
    int ret = blkdebug_check_crashed(bs, errp);

    if (ret < 0) {
        return ret;
    }
    if (++bd->flushes == bd->fail_flush_at) {
        bd->fail_flush_at = 0;
        return blkdebug_eio(bs, "injected flush error", errp);
    }
    ret = bdrv_file_flush(bs, errp);
    if (ret < 0) {
        return ret;
    }
    len = bdrv_file_getlength(bs, errp);
    if (len < 0) {
        return (int)len;
    }
    bd->flushed_length = len;
    bd->flushes_done++;
    g_ptr_array_set_size(bd->log, 0);
    return 0;
}

static int64_t blkdebug_getlength(BlockDriverState *bs, GError **errp)
{
    int ret = blkdebug_check_crashed(bs, errp);

    if (ret < 0) {
        return ret;
    }
    return bdrv_file_getlength(bs, errp);
}

static int blkdebug_truncate(BlockDriverState *bs, int64_t size, GError **errp)
{
    int ret = blkdebug_check_crashed(bs, errp);

    if (ret < 0) {
        return ret;
    }
    return bdrv_file_truncate(bs, size, errp);
}

static void blkdebug_get_info(BlockDriverState *bs, GString *info)
{
    BlkdebugState *bd = bs->opaque;

    g_string_append_printf(info, "blkdebug: %u writes, %u flushes, "
                           "%u unflushed writes%s\n", bd->writes,
                           bd->flushes_done, bd->log->len,
                           bd->crashed ? ", crashed" : "");
}

const BlockDriver bdrv_blkdebug = {
    .format_name = "blkdebug",
    .instance_size = sizeof(BlkdebugState),
    .is_filter = true,
    .bdrv_open = blkdebug_open,
    .bdrv_close = blkdebug_close,
    .bdrv_pread = blkdebug_pread,
    .bdrv_pwrite = blkdebug_pwrite,
    .bdrv_pwrite_zeroes = blkdebug_pwrite_zeroes,
    .bdrv_flush = blkdebug_flush,
    .bdrv_getlength = blkdebug_getlength,
    .bdrv_truncate = blkdebug_truncate,
    .bdrv_get_info = blkdebug_get_info,
};

/* ------------------------------------------------------------------------ */
/* The scripting API */

void blkdebug_fail_write(BlkdebugState *bd, unsigned n)
{
    bd->fail_write_at = n ? bd->writes + n : 0;
}

void blkdebug_fail_flush(BlkdebugState *bd, unsigned n)
{
    bd->fail_flush_at = n ? bd->flushes + n : 0;
}

void blkdebug_tear_write(BlkdebugState *bd, unsigned n, int64_t keep_bytes)
{
    bd->tear_write_at = n ? bd->writes + n : 0;
    bd->tear_keep_bytes = MAX(keep_bytes, 0);
}

void blkdebug_crash_at_write(BlkdebugState *bd, unsigned n)
{
    bd->crash_write_at = n ? bd->writes + n : 0;
}

unsigned blkdebug_write_count(BlkdebugState *bd)
{
    return bd->writes;
}

unsigned blkdebug_flush_count(BlkdebugState *bd)
{
    return bd->flushes_done;
}

unsigned blkdebug_unflushed_count(BlkdebugState *bd)
{
    return bd->log->len;
}

const BlkdebugWrite *blkdebug_unflushed_write(BlkdebugState *bd,
                                              unsigned index)
{
    BlkdebugLogEntry *e;

    if (index >= bd->log->len) {
        return NULL;
    }
    e = g_ptr_array_index(bd->log, index);
    return &e->w;
}

bool blkdebug_is_crashed(BlkdebugState *bd)
{
    return bd->crashed;
}

int blkdebug_power_loss(BlkdebugState *bd, BlkdebugLoseFn lose, void *opaque,
                        GError **errp)
{
    BlockDriverState *bs = bd->bs;
    unsigned n = bd->log->len;
    g_autofree bool *lost = g_new0(bool, n ? n : 1);
    int64_t new_length = bd->flushed_length;
    int64_t cur_length;
    int ret;

    bd->crashed = true;
    for (unsigned i = 0; i < n; i++) {
        BlkdebugLogEntry *e = g_ptr_array_index(bd->log, i);

        lost[i] = lose(i, &e->w, opaque);
        if (!lost[i]) {
            new_length = MAX(new_length, e->w.offset + e->w.bytes);
        }
    }
    /* Back to the state at the last flush, newest write first... */
    for (unsigned i = n; i-- > 0;) {
        BlkdebugLogEntry *e = g_ptr_array_index(bd->log, i);

        ret = bdrv_file_pwrite(bs, e->w.offset, e->w.bytes, e->old_data, errp);
        if (ret < 0) {
            return ret;
        }
    }
    /* ...then forward again with only the writes that survive. */
    for (unsigned i = 0; i < n; i++) {
        BlkdebugLogEntry *e = g_ptr_array_index(bd->log, i);

        if (lost[i]) {
            continue;
        }
        ret = bdrv_file_pwrite(bs, e->w.offset, e->w.bytes, e->new_data, errp);
        if (ret < 0) {
            return ret;
        }
    }
    cur_length = bdrv_file_getlength(bs, errp);
    if (cur_length < 0) {
        return (int)cur_length;
    }
    if (cur_length > new_length) {
        ret = bdrv_file_truncate(bs, new_length, errp);
        if (ret < 0) {
            return ret;
        }
    }
    g_ptr_array_set_size(bd->log, 0);
    return 0;
}

static bool blkdebug_lose_by_mask(unsigned index, const BlkdebugWrite *w,
                                  void *opaque)
{
    uint64_t mask = *(uint64_t *)opaque;

    (void)w;
    return index < 64 && (mask & (1ULL << index));
}

int blkdebug_power_loss_mask(BlkdebugState *bd, uint64_t lose_mask,
                             GError **errp)
{
    return blkdebug_power_loss(bd, blkdebug_lose_by_mask, &lose_mask, errp);
}

void blkdebug_reset(BlkdebugState *bd)
{
    GError *err = NULL;
    int64_t len;

    bd->writes = 0;
    bd->flushes = 0;
    bd->flushes_done = 0;
    bd->fail_write_at = 0;
    bd->fail_flush_at = 0;
    bd->tear_write_at = 0;
    bd->crash_write_at = 0;
    bd->crashed = false;
    g_ptr_array_set_size(bd->log, 0);
    len = bdrv_file_getlength(bd->bs, &err);
    if (len >= 0) {
        bd->flushed_length = len;
    }
    g_clear_error(&err);
}
