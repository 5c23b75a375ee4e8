/*
 * qcow2_create: a fresh, empty version 3 image (docs/qcow2.md §7).
 */
#include "qemu/osdep.h"

#include "qcow2.h"

/* The default suits a TPM state image of a few MiB (docs/qcow2.md §7). */
#define QCOW2_DEFAULT_CLUSTER_SIZE 4096
#define QCOW2_DEFAULT_REFCOUNT_BITS 16

int qcow2_create(const char *filename, uint64_t size,
                 const Qcow2CreateOptions *opts, GError **errp)
{
    uint64_t cs = opts && opts->cluster_size ? opts->cluster_size
                                             : QCOW2_DEFAULT_CLUSTER_SIZE;
    int rbits = opts && opts->refcount_bits ? opts->refcount_bits
                                            : QCOW2_DEFAULT_REFCOUNT_BITS;
    mode_t mode = opts && opts->mode ? opts->mode : 0644;
    uint32_t cluster_bits, refcount_order;
    uint64_t l1_size, l1_clusters, rt_clusters = 1, nb_rb = 1, total = 0;
    uint64_t rb_entries;
    g_autofree uint8_t *img = NULL;
    BlockDriverState *bs;
    Qcow2Header h;
    QCowHeader be;
    int ret;

    if (cs < 512 || cs > 2 * 1024 * 1024 || (cs & (cs - 1))) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': cluster size %" PRIu64 " is not a power of two "
                    "from 512 to 2M", filename, cs);
        return -EINVAL;
    }
    if (rbits < 1 || rbits > 64 || (rbits & (rbits - 1))) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': refcount bits %d is not a power of two from 1 to "
                    "64", filename, rbits);
        return -EINVAL;
    }
    if (size % 512 || size > QCOW2_MAX_VIRTUAL_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': image size %" PRIu64 " is not a multiple of 512 "
                    "up to 2^56", filename, size);
        return -EINVAL;
    }
    cluster_bits = __builtin_ctzll(cs);
    refcount_order = __builtin_ctz(rbits);
    rb_entries = cs * 8 / rbits;
    l1_size = DIV_ROUND_UP(size, cs * (cs / L2E_SIZE));
    if (l1_size * L1E_SIZE > QCOW2_MAX_L1_BYTES) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': image size %" PRIu64 " needs an L1 table larger "
                    "than %d bytes with %" PRIu64 "-byte clusters",
                    filename, size, QCOW2_MAX_L1_BYTES, cs);
        return -EINVAL;
    }
    l1_clusters = DIV_ROUND_UP(l1_size * L1E_SIZE, cs);

    /* header, refcount table, refcount blocks, L1: all counted. */
    for (int i = 0; i < 16; i++) {
        total = 1 + rt_clusters + nb_rb + l1_clusters;
        nb_rb = DIV_ROUND_UP(total, rb_entries);
        rt_clusters = DIV_ROUND_UP(nb_rb * REFTABLE_ENTRY_SIZE, cs);
    }
    total = 1 + rt_clusters + nb_rb + l1_clusters;

    img = g_malloc0(total * cs);
    h = (Qcow2Header) {
        .magic = QCOW_MAGIC,
        .version = 3,
        .cluster_bits = cluster_bits,
        .size = size,
        .l1_size = l1_size,
        .l1_table_offset = l1_size ? (1 + rt_clusters + nb_rb) * cs : 0,
        .refcount_table_offset = cs,
        .refcount_table_clusters = rt_clusters,
        .refcount_order = refcount_order,
        .header_length = QCOW2_V3_HEADER_LENGTH,
    };
    qcow2_header_to_disk(&h, &be);
    memcpy(img, &be, QCOW2_V3_HEADER_LENGTH);
    for (uint64_t b = 0; b < nb_rb; b++) {
        uint64_t block_off = (1 + rt_clusters + b) * cs;

        stq_be_p(img + cs + b * REFTABLE_ENTRY_SIZE, block_off);
        for (uint64_t c = b * rb_entries;
             c < MIN(total, (b + 1) * rb_entries); c++) {
            qcow2_refcount_entry_set(img + block_off, refcount_order,
                                     c - b * rb_entries, 1);
        }
    }

    /*
     * One open, holding the locks of a read-write open from before the file
     * is emptied until the image is complete: an image that QEMU or qtpm
     * uses is refused and left as it was, and no other opener can see the
     * file empty or half-written.
     */
    ret = bdrv_open_create(filename, mode, &bs, errp);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_truncate(bs, total * cs, errp);
    if (ret == 0) {
        ret = bdrv_pwrite(bs, 0, total * cs, img, errp);
    }
    if (ret == 0) {
        ret = bdrv_flush(bs, errp);
    }
    bdrv_close(bs);
    return ret;
}
