/*
 * qcow2 format driver. Format: docs/qcow2.md (subset of QEMU's
 * docs/interop/qcow2.txt).
 */
#include "qemu/osdep.h"

#include "block/block_int.h"

#define QCOW_MAGIC 0x514649fbu

static int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)filename;
    if (buf_size >= 8 && ((uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
                          (uint32_t)buf[2] << 8 | buf[3]) == QCOW_MAGIC) {
        return 100;
    }
    return 0;
}

static int qcow2_open(BlockDriverState *bs, const char *filename,
                      const BlockOpenOptions *opts, GError **errp)
{
    (void)opts;
    bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                   "'%s': qcow2 is not implemented yet", filename);
    return -ENOTSUP;
}

int qcow2_create(const char *filename, uint64_t size,
                 const Qcow2CreateOptions *opts, GError **errp)
{
    (void)size;
    (void)opts;
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                "'%s': qcow2 creation is not implemented yet", filename);
    return -ENOTSUP;
}

const BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .instance_size = 0,
    .bdrv_probe = qcow2_probe,
    .bdrv_open = qcow2_open,
};
