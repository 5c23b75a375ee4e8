/*
 * qtpm block layer: the "raw" format driver. The virtual disk is the file.
 */
#include "qemu/osdep.h"

#include "block/block_int.h"

static int raw_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)buf;
    (void)buf_size;
    (void)filename;
    /* Anything is a raw image; every real format must score higher. */
    return 1;
}

static int raw_open(BlockDriverState *bs, const char *filename,
                    const BlockOpenOptions *opts, GError **errp)
{
    (void)filename;
    (void)opts;
    (void)errp;
    bs->request_alignment = bs->file->request_alignment;
    return 0;
}

static int raw_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                     void *buf, GError **errp)
{
    return bdrv_file_pread(bs, offset, bytes, buf, errp);
}

static int raw_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      const void *buf, GError **errp)
{
    return bdrv_file_pwrite(bs, offset, bytes, buf, errp);
}

static int raw_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                             int64_t bytes, GError **errp)
{
    BlockDriverState *file = bs->file;

    return file->drv->bdrv_pwrite_zeroes(file, offset, bytes, errp);
}

static int raw_flush(BlockDriverState *bs, GError **errp)
{
    return bdrv_file_flush(bs, errp);
}

static int64_t raw_getlength(BlockDriverState *bs, GError **errp)
{
    return bdrv_file_getlength(bs, errp);
}

static int raw_truncate(BlockDriverState *bs, int64_t size, GError **errp)
{
    return bdrv_file_truncate(bs, size, errp);
}

const BlockDriver bdrv_raw = {
    .format_name = "raw",
    .bdrv_probe = raw_probe,
    .bdrv_open = raw_open,
    .bdrv_pread = raw_pread,
    .bdrv_pwrite = raw_pwrite,
    .bdrv_pwrite_zeroes = raw_pwrite_zeroes,
    .bdrv_flush = raw_flush,
    .bdrv_getlength = raw_getlength,
    .bdrv_truncate = raw_truncate,
};
