/*
 * qtpm block layer: the generic part. Opens a driver stack, checks every
 * public request once (bounds, read-only, alignment) and keeps the lock
 * nesting counters. See docs/block-layer.md.
 */
#include "qemu/osdep.h"

#include <stdarg.h>

#include "block/block_int.h"

/* How many bytes the format probe looks at. */
#define BDRV_PROBE_BYTES 512

static const BlockDriver *const bdrv_formats[] = {
    &bdrv_qcow2,
    &bdrv_raw,
};

void bdrv_set_error(GError **errp, BlockDriverState *bs, int code,
                    const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, QTPM_ERROR, code, "'%s': %s", bs->filename, msg);
}

void bdrv_set_error_errno(GError **errp, BlockDriverState *bs, int err,
                          const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (err < 0) {
        err = -err;
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "'%s': %s: %s", bs->filename,
                msg, g_strerror(err));
}

static BlockDriverState *bdrv_new_node(const BlockDriver *drv,
                                       const char *filename,
                                       const BlockOpenOptions *opts,
                                       BlockDriverState *file)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->drv = drv;
    bs->opaque = drv->instance_size ? g_malloc0(drv->instance_size) : NULL;
    bs->file = file;
    bs->filename = g_strdup(filename);
    bs->read_only = opts->read_only;
    bs->no_locking = opts->no_locking;
    bs->inactive = opts->inactive && !opts->read_only;
    bs->request_alignment = 1;
    return bs;
}

static void bdrv_free_node(BlockDriverState *bs)
{
    g_free(bs->opaque);
    g_free(bs->filename);
    g_free(bs);
}

/* Opens one node; on failure frees it (but not @file). */
static BlockDriverState *bdrv_open_node(const BlockDriver *drv,
                                        const char *filename,
                                        const BlockOpenOptions *opts,
                                        BlockDriverState *file, GError **errp)
{
    BlockDriverState *bs = bdrv_new_node(drv, filename, opts, file);

    if (drv->bdrv_open(bs, filename, opts, errp) < 0) {
        bdrv_free_node(bs);
        return NULL;
    }
    if (bs->request_alignment == 0) {
        bs->request_alignment = 1;
    }
    return bs;
}

static void bdrv_close_chain(BlockDriverState *bs)
{
    while (bs) {
        BlockDriverState *below = bs->file;

        if (bs->drv->bdrv_close) {
            bs->drv->bdrv_close(bs);
        }
        bdrv_free_node(bs);
        bs = below;
    }
}

static const BlockDriver *bdrv_find_format(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(bdrv_formats); i++) {
        if (strcmp(bdrv_formats[i]->format_name, name) == 0) {
            return bdrv_formats[i];
        }
    }
    return NULL;
}

static const BlockDriver *bdrv_probe_format(BlockDriverState *file,
                                            GError **errp)
{
    uint8_t buf[BDRV_PROBE_BYTES] = { 0 };
    int64_t len = file->drv->bdrv_getlength(file, errp);
    int n;
    const BlockDriver *best = &bdrv_raw;
    int best_score = 0;

    if (len < 0) {
        return NULL;
    }
    n = (int)MIN(len, (int64_t)sizeof(buf));
    if (n > 0 && file->drv->bdrv_pread(file, 0, n, buf, errp) < 0) {
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(bdrv_formats); i++) {
        const BlockDriver *drv = bdrv_formats[i];
        int score;

        if (!drv->bdrv_probe) {
            continue;
        }
        score = drv->bdrv_probe(buf, n, file->filename);
        if (score > best_score) {
            best_score = score;
            best = drv;
        }
    }
    return best;
}

BlockDriverState *bdrv_open(const char *filename, const BlockOpenOptions *opts,
                            GError **errp)
{
    static const BlockOpenOptions default_opts;
    BlockDriverState *file, *bs;
    const BlockDriver *fmt;
    bool probed;

    if (!opts) {
        opts = &default_opts;
    }
    if (opts->format && strcmp(opts->format, "auto") != 0) {
        fmt = bdrv_find_format(opts->format);
        if (!fmt) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                        "'%s': unknown format '%s'", filename, opts->format);
            return NULL;
        }
    } else {
        fmt = NULL;
    }

    file = bdrv_open_node(&bdrv_file, filename, opts, NULL, errp);
    if (!file) {
        return NULL;
    }
    if (opts->blkdebug) {
        BlockDriverState *dbg = bdrv_open_node(&bdrv_blkdebug, filename, opts,
                                               file, errp);
        if (!dbg) {
            bdrv_close_chain(file);
            return NULL;
        }
        file = dbg;
    }
    probed = !fmt;
    if (!fmt) {
        fmt = bdrv_probe_format(file, errp);
        if (!fmt) {
            bdrv_close_chain(file);
            return NULL;
        }
    }
    bs = bdrv_open_node(fmt, filename, opts, file, errp);
    if (!bs) {
        bdrv_close_chain(file);
        return NULL;
    }
    bs->format_probed = probed;
    /* A format driver may open read-only on its own (e.g. a corrupt image). */
    return bs;
}

void bdrv_close(BlockDriverState *bs)
{
    if (bs) {
        bdrv_close_chain(bs);
    }
}

int bdrv_open_create(const char *filename, mode_t mode,
                     BlockDriverState **pbs, GError **errp)
{
    static const BlockOpenOptions create_opts = { .format = "raw" };
    BlockDriverState *file = bdrv_new_node(&bdrv_file, filename, &create_opts,
                                           NULL);
    BlockDriverState *bs;
    int ret;

    *pbs = NULL;
    ret = bdrv_file.bdrv_create(file, mode, errp);
    if (ret < 0) {
        bdrv_free_node(file);
        return ret;
    }
    bs = bdrv_open_node(&bdrv_raw, filename, &create_opts, file, errp);
    if (!bs) {
        bdrv_close_chain(file);
        return -EIO;
    }
    /* Only now, under the locks just taken (bdrv_truncate never shrinks). */
    ret = bdrv_file_truncate(bs, 0, errp);
    if (ret < 0) {
        bdrv_close_chain(bs);
        return ret;
    }
    *pbs = bs;
    return 0;
}

int bdrv_create_file(const char *filename, mode_t mode, GError **errp)
{
    BlockDriverState *bs;
    int ret = bdrv_open_create(filename, mode, &bs, errp);

    if (ret == 0) {
        bdrv_close(bs);
    }
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Request checks */

static int bdrv_check_request(BlockDriverState *bs, int64_t offset,
                              int64_t bytes, bool write, GError **errp)
{
    int64_t len;

    if (write && bs->read_only) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "the image is open read-only");
        return -EACCES;
    }
    if (write && bs->inactive) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "the image is inactive (another process may own it)");
        return -EACCES;
    }
    if (offset < 0 || bytes < 0 || offset > INT64_MAX - bytes) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "invalid request: offset %" PRId64 ", length %" PRId64,
                       offset, bytes);
        return -EINVAL;
    }
    len = bs->drv->bdrv_getlength(bs, errp);
    if (len < 0) {
        return (int)len;
    }
    if (offset + bytes > len) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "%s of %" PRId64 " bytes at offset %" PRId64
                       " is past the end of the disk (%" PRId64 " bytes)",
                       write ? "write" : "read", bytes, offset, len);
        return -EINVAL;
    }
    return 0;
}

static bool bdrv_is_aligned(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    uint32_t align = bs->request_alignment;

    return align <= 1 ||
           (QEMU_IS_ALIGNED(offset, align) && QEMU_IS_ALIGNED(bytes, align));
}

/*
 * A buffer for the whole aligned blocks around [@offset, @offset + @bytes),
 * which start at *@start and end at *@end; NULL when memory runs out.
 */
static uint8_t *bdrv_bounce_new(BlockDriverState *bs, int64_t offset,
                                int64_t bytes, bool write, int64_t *start,
                                int64_t *end, GError **errp)
{
    uint32_t align = bs->request_alignment;
    uint8_t *bounce;

    *start = QEMU_ALIGN_DOWN(offset, align);
    *end = QEMU_ALIGN_UP(offset + bytes, align);
    bounce = g_try_malloc(*end - *start);
    if (!bounce) {
        bdrv_set_error(errp, bs, QTPM_ERROR_FAILED,
                       "out of memory for a %" PRId64 "-byte %s",
                       *end - *start, write ? "write" : "read");
    }
    return bounce;
}

/* Reads an unaligned range through a bounce buffer of whole aligned blocks. */
static int bdrv_read_unaligned(BlockDriverState *bs, int64_t offset,
                               int64_t bytes, void *buf, GError **errp)
{
    int64_t start, end;
    g_autofree uint8_t *bounce = bdrv_bounce_new(bs, offset, bytes, false,
                                                 &start, &end, errp);
    int ret;

    if (!bounce) {
        return -ENOMEM;
    }
    ret = bs->drv->bdrv_pread(bs, start, end - start, bounce, errp);
    if (ret < 0) {
        return ret;
    }
    memcpy(buf, bounce + (offset - start), bytes);
    return 0;
}

/*
 * Read-modify-write for an unaligned write: only the first and last aligned
 * blocks are read back, then the whole aligned range is written at once.
 */
static int bdrv_write_unaligned(BlockDriverState *bs, int64_t offset,
                                int64_t bytes, const void *buf, GError **errp)
{
    uint32_t align = bs->request_alignment;
    int64_t start, end;
    g_autofree uint8_t *bounce = bdrv_bounce_new(bs, offset, bytes, true,
                                                 &start, &end, errp);
    int ret;

    if (!bounce) {
        return -ENOMEM;
    }
    if (start != offset) {
        ret = bs->drv->bdrv_pread(bs, start, align, bounce, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (end != offset + bytes && (end - align > start || start == offset)) {
        ret = bs->drv->bdrv_pread(bs, end - align, align,
                                  bounce + (end - align - start), errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (buf) {
        memcpy(bounce + (offset - start), buf, bytes);
    } else {
        memset(bounce + (offset - start), 0, bytes);
    }
    return bs->drv->bdrv_pwrite(bs, start, end - start, bounce, errp);
}

int bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
               GError **errp)
{
    int ret = bdrv_check_request(bs, offset, bytes, false, errp);

    if (ret < 0) {
        return ret;
    }
    if (bytes == 0) {
        return 0;
    }
    if (!bdrv_is_aligned(bs, offset, bytes)) {
        return bdrv_read_unaligned(bs, offset, bytes, buf, errp);
    }
    return bs->drv->bdrv_pread(bs, offset, bytes, buf, errp);
}

int bdrv_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                const void *buf, GError **errp)
{
    int ret = bdrv_check_request(bs, offset, bytes, true, errp);

    if (ret < 0) {
        return ret;
    }
    if (bytes == 0) {
        return 0;
    }
    if (!bdrv_is_aligned(bs, offset, bytes)) {
        return bdrv_write_unaligned(bs, offset, bytes, buf, errp);
    }
    return bs->drv->bdrv_pwrite(bs, offset, bytes, buf, errp);
}

int bdrv_pwrite_zeroes_fallback(BlockDriverState *bs, int64_t offset,
                                int64_t bytes, GError **errp)
{
    const int64_t chunk_max = 1024 * 1024;
    g_autofree uint8_t *zeroes = g_malloc0(MIN(bytes, chunk_max));

    while (bytes > 0) {
        int64_t n = MIN(bytes, chunk_max);
        int ret = bs->drv->bdrv_pwrite(bs, offset, n, zeroes, errp);

        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

int bdrv_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       GError **errp)
{
    uint32_t align = bs->request_alignment;
    int64_t head_end, tail_start;
    int ret = bdrv_check_request(bs, offset, bytes, true, errp);

    if (ret < 0) {
        return ret;
    }
    if (bytes == 0) {
        return 0;
    }
    /* Unaligned head and tail go through read-modify-write. */
    head_end = MIN(QEMU_ALIGN_UP(offset, align), offset + bytes);
    tail_start = MAX(QEMU_ALIGN_DOWN(offset + bytes, align), head_end);
    if (head_end > offset) {
        ret = bdrv_write_unaligned(bs, offset, head_end - offset, NULL, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (tail_start > head_end) {
        if (bs->drv->bdrv_pwrite_zeroes) {
            ret = bs->drv->bdrv_pwrite_zeroes(bs, head_end,
                                              tail_start - head_end, errp);
        } else {
            ret = bdrv_pwrite_zeroes_fallback(bs, head_end,
                                              tail_start - head_end, errp);
        }
        if (ret < 0) {
            return ret;
        }
    }
    if (offset + bytes > tail_start) {
        ret = bdrv_write_unaligned(bs, tail_start, offset + bytes - tail_start,
                                   NULL, errp);
    }
    return ret;
}

int bdrv_flush(BlockDriverState *bs, GError **errp)
{
    if (bs->read_only) {
        return 0;
    }
    /* A driver without its own flush has nothing cached: flush below it. */
    while (!bs->drv->bdrv_flush && bs->file) {
        bs = bs->file;
    }
    if (!bs->drv->bdrv_flush) {
        return 0;
    }
    return bs->drv->bdrv_flush(bs, errp);
}

int64_t bdrv_getlength(BlockDriverState *bs, GError **errp)
{
    return bs->drv->bdrv_getlength(bs, errp);
}

int bdrv_truncate(BlockDriverState *bs, int64_t size, GError **errp)
{
    int64_t len;

    if (bs->read_only) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "the image is open read-only");
        return -EACCES;
    }
    if (bs->inactive) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "the image is inactive (another process may own it)");
        return -EACCES;
    }
    if (!bs->drv->bdrv_truncate) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "format '%s' cannot be resized",
                       bs->drv->format_name);
        return -ENOTSUP;
    }
    len = bs->drv->bdrv_getlength(bs, errp);
    if (len < 0) {
        return (int)len;
    }
    if (size < len) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "cannot shrink the disk from %" PRId64 " to %" PRId64
                       " bytes", len, size);
        return -ENOTSUP;
    }
    if (!QEMU_IS_ALIGNED(size, bs->request_alignment)) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "new size %" PRId64 " is not a multiple of %" PRIu32,
                       size, bs->request_alignment);
        return -EINVAL;
    }
    if (size == len) {
        return 0;
    }
    return bs->drv->bdrv_truncate(bs, size, errp);
}

const char *bdrv_get_filename(BlockDriverState *bs)
{
    return bs->filename;
}

const char *bdrv_get_format_name(BlockDriverState *bs)
{
    return bs->drv->format_name;
}

bool bdrv_format_is_probed(BlockDriverState *bs)
{
    return bs->format_probed;
}

bool bdrv_is_read_only(BlockDriverState *bs)
{
    return bs->read_only;
}

static BlockDriverState *bdrv_protocol_node(BlockDriverState *bs)
{
    while (bs->file && !bs->drv->is_protocol) {
        bs = bs->file;
    }
    return bs;
}

uint64_t bdrv_get_flush_count(BlockDriverState *bs)
{
    return bdrv_protocol_node(bs)->flush_count;
}

void bdrv_drop_page_cache(BlockDriverState *bs)
{
    BlockDriverState *proto = bdrv_protocol_node(bs);

    if (proto->drv->bdrv_drop_page_cache) {
        proto->drv->bdrv_drop_page_cache(proto);
    }
}

int64_t bdrv_get_file_length(BlockDriverState *bs, GError **errp)
{
    return bdrv_getlength(bdrv_protocol_node(bs), errp);
}

void bdrv_get_info(BlockDriverState *bs, GString *info)
{
    GError *err = NULL;
    int64_t len = bdrv_getlength(bs, &err);
    int64_t file_len = bdrv_getlength(bdrv_protocol_node(bs), NULL);

    g_string_append_printf(info, "image: %s\n", bs->filename);
    g_string_append_printf(info, "file format: %s\n", bs->drv->format_name);
    if (len >= 0) {
        g_string_append_printf(info, "virtual size: %" PRId64 "\n", len);
    } else {
        g_string_append_printf(info, "virtual size: unknown (%s)\n",
                               err->message);
        g_clear_error(&err);
    }
    if (file_len >= 0) {
        g_string_append_printf(info, "file length: %" PRId64 "\n", file_len);
    }
    g_string_append_printf(info, "read-only: %s\n",
                           bs->read_only ? "yes" : "no");
    g_string_append_printf(info, "locking: %s\n",
                           bs->no_locking ? "off" : "on");
    for (BlockDriverState *n = bs; n; n = n->file) {
        if (n->drv->bdrv_get_info) {
            n->drv->bdrv_get_info(n, info);
        }
    }
}

static void bdrv_set_inactive_all(BlockDriverState *bs, bool inactive)
{
    for (; bs; bs = bs->file) {
        bs->inactive = inactive;
    }
}

int bdrv_activate(BlockDriverState *bs, GError **errp)
{
    BlockDriverState *proto = bdrv_protocol_node(bs);
    int ret;

    if (bs->read_only || !bs->inactive) {
        return 0;
    }
    if (!bs->no_locking && proto->drv->bdrv_set_active) {
        ret = proto->drv->bdrv_set_active(proto, true, errp);
        if (ret < 0) {
            return ret;
        }
    }
    ret = bdrv_invalidate_cache(bs, errp);
    if (ret < 0) {
        if (!bs->no_locking && proto->drv->bdrv_set_active) {
            proto->drv->bdrv_set_active(proto, false, NULL);
        }
        return ret;
    }
    bdrv_set_inactive_all(bs, false);
    return 0;
}

int bdrv_inactivate(BlockDriverState *bs, GError **errp)
{
    BlockDriverState *proto = bdrv_protocol_node(bs);
    int ret;

    if (bs->read_only || bs->inactive) {
        return 0;
    }
    ret = bdrv_flush(bs, errp);
    if (ret < 0) {
        return ret;
    }
    bdrv_set_inactive_all(bs, true);
    if (!bs->no_locking && proto->drv->bdrv_set_active) {
        return proto->drv->bdrv_set_active(proto, false, errp);
    }
    return 0;
}

bool bdrv_is_inactive(BlockDriverState *bs)
{
    return bs->inactive;
}

int bdrv_invalidate_cache(BlockDriverState *bs, GError **errp)
{
    for (; bs; bs = bs->file) {
        if (bs->drv->bdrv_invalidate_cache) {
            int ret = bs->drv->bdrv_invalidate_cache(bs, errp);

            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

BlkdebugState *bdrv_get_blkdebug(BlockDriverState *bs)
{
    for (; bs; bs = bs->file) {
        if (bs->drv == &bdrv_blkdebug) {
            return bs->opaque;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Calls on the node below, for format drivers */

static BlockDriverState *bdrv_below(BlockDriverState *bs, GError **errp)
{
    if (!bs->file) {
        bdrv_set_error(errp, bs, QTPM_ERROR_FAILED,
                       "driver '%s' has no file below it",
                       bs->drv->format_name);
    }
    return bs->file;
}

/*
 * Format drivers write their metadata through here, so this is where an
 * inactive image (owned by another process) is kept safe from them too.
 */
static int bdrv_check_writable(BlockDriverState *bs, BlockDriverState *file,
                               GError **errp)
{
    if (file->read_only) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "the image is open read-only");
        return -EACCES;
    }
    if (file->inactive) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "the image is inactive (another process may own it)");
        return -EACCES;
    }
    return 0;
}

int bdrv_file_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                    void *buf, GError **errp)
{
    BlockDriverState *file = bdrv_below(bs, errp);

    if (!file) {
        return -EINVAL;
    }
    if (offset < 0 || bytes < 0) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "invalid read: offset %" PRId64 ", length %" PRId64,
                       offset, bytes);
        return -EINVAL;
    }
    if (bytes == 0) {
        return 0;
    }
    return file->drv->bdrv_pread(file, offset, bytes, buf, errp);
}

int bdrv_file_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                     const void *buf, GError **errp)
{
    BlockDriverState *file = bdrv_below(bs, errp);

    if (!file) {
        return -EINVAL;
    }
    if (bdrv_check_writable(bs, file, errp) < 0) {
        return -EACCES;
    }
    if (offset < 0 || bytes < 0) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "invalid write: offset %" PRId64 ", length %" PRId64,
                       offset, bytes);
        return -EINVAL;
    }
    if (bytes == 0) {
        return 0;
    }
    return file->drv->bdrv_pwrite(file, offset, bytes, buf, errp);
}

int bdrv_file_flush(BlockDriverState *bs, GError **errp)
{
    BlockDriverState *file = bdrv_below(bs, errp);

    if (!file) {
        return -EINVAL;
    }
    if (file->read_only || !file->drv->bdrv_flush) {
        return 0;
    }
    return file->drv->bdrv_flush(file, errp);
}

int64_t bdrv_file_getlength(BlockDriverState *bs, GError **errp)
{
    BlockDriverState *file = bdrv_below(bs, errp);

    if (!file) {
        return -EINVAL;
    }
    return file->drv->bdrv_getlength(file, errp);
}

int bdrv_file_truncate(BlockDriverState *bs, int64_t size, GError **errp)
{
    BlockDriverState *file = bdrv_below(bs, errp);

    if (!file) {
        return -EINVAL;
    }
    if (bdrv_check_writable(bs, file, errp) < 0) {
        return -EACCES;
    }
    if (!file->drv->bdrv_truncate) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "driver '%s' cannot be resized",
                       file->drv->format_name);
        return -ENOTSUP;
    }
    return file->drv->bdrv_truncate(file, size, errp);
}

/* ------------------------------------------------------------------------ */
/* Locks: nesting is counted here, the protocol driver holds the real lock. */

int bdrv_lock_id(BlockDriverState *bs, unsigned id, BdrvLockMode mode,
                 int timeout_ms, GError **errp)
{
    return bdrv_lock_id_conflict(bs, id, mode, timeout_ms, NULL, errp);
}

int bdrv_lock_id_conflict(BlockDriverState *bs, unsigned id, BdrvLockMode mode,
                          int timeout_ms, BdrvLockConflict *conflict,
                          GError **errp)
{
    BdrvLockConflict unused;
    BlockDriverState *proto;
    int ret;

    if (!conflict) {
        conflict = &unused;
    }
    memset(conflict, 0, sizeof(*conflict));

    if (id >= BDRV_LOCK_ID_MAX) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "lock id %u is out of range (0..%d)", id,
                       BDRV_LOCK_ID_MAX - 1);
        return -EINVAL;
    }
    if (mode != BDRV_LOCK_SHARED && mode != BDRV_LOCK_EXCLUSIVE) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID, "invalid lock mode %d",
                       (int)mode);
        return -EINVAL;
    }
    if (bs->no_locking) {
        return 0;
    }
    if (bs->lock_depth[id] > 0 &&
        (bs->lock_mode[id] == BDRV_LOCK_EXCLUSIVE || mode == BDRV_LOCK_SHARED)) {
        bs->lock_depth[id]++;
        return 0;
    }
    proto = bdrv_protocol_node(bs);
    if (!proto->drv->bdrv_lock) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "driver '%s' does not support locks",
                       proto->drv->format_name);
        return -ENOTSUP;
    }
    /* Either a first lock or a conversion from shared to exclusive. */
    ret = proto->drv->bdrv_lock(proto, id, mode, timeout_ms, conflict, errp);
    if (ret < 0) {
        return ret;
    }
    bs->lock_mode[id] = mode;
    bs->lock_depth[id]++;
    return 0;
}

void bdrv_unlock_id(BlockDriverState *bs, unsigned id)
{
    BlockDriverState *proto;

    if (id >= BDRV_LOCK_ID_MAX || bs->no_locking || bs->lock_depth[id] == 0) {
        return;
    }
    if (--bs->lock_depth[id] > 0) {
        return;
    }
    proto = bdrv_protocol_node(bs);
    if (proto->drv->bdrv_unlock) {
        proto->drv->bdrv_unlock(proto, id);
    }
}

int bdrv_lock(BlockDriverState *bs, BdrvLockMode mode, int timeout_ms,
              GError **errp)
{
    return bdrv_lock_id(bs, 0, mode, timeout_ms, errp);
}

void bdrv_unlock(BlockDriverState *bs)
{
    bdrv_unlock_id(bs, 0);
}
