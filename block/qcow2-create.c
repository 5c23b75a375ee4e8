/*
 * qcow2_create: a fresh, empty version 3 image (docs/qcow2.md §7).
 */
#include "qemu/osdep.h"

#include "qcow2.h"

/* The default suits a TPM state image of a few MiB (docs/qcow2.md §7). */
#define QCOW2_DEFAULT_CLUSTER_SIZE 4096
#define QCOW2_DEFAULT_REFCOUNT_BITS 16

static int qcow2_write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        buf += n;
        len -= n;
    }
    return 0;
}

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
    uint8_t *h;
    int fd, ret;

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
    l1_size = DIV_ROUND_UP(size, cs * (cs / 8));
    if (l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': image size %" PRIu64 " needs an L1 table larger "
                    "than %d bytes with %" PRIu64 "-byte clusters",
                    filename, size, QCOW2_MAX_L1_BYTES, cs);
        return -EINVAL;
    }
    l1_clusters = DIV_ROUND_UP(l1_size * 8, cs);

    /* header, refcount table, refcount blocks, L1: all counted. */
    for (int i = 0; i < 16; i++) {
        total = 1 + rt_clusters + nb_rb + l1_clusters;
        nb_rb = DIV_ROUND_UP(total, rb_entries);
        rt_clusters = DIV_ROUND_UP(nb_rb * 8, cs);
    }
    total = 1 + rt_clusters + nb_rb + l1_clusters;

    img = g_malloc0(total * cs);
    h = img;
    stl_be_p(h, QCOW_MAGIC);
    stl_be_p(h + 4, 3);
    stl_be_p(h + 20, cluster_bits);
    stq_be_p(h + 24, size);
    stl_be_p(h + 36, l1_size);
    stq_be_p(h + 40, l1_size ? (1 + rt_clusters + nb_rb) * cs : 0);
    stq_be_p(h + 48, cs);
    stl_be_p(h + 56, rt_clusters);
    stl_be_p(h + 96, refcount_order);
    stl_be_p(h + 100, QCOW2_V3_HEADER_LENGTH);
    for (uint64_t b = 0; b < nb_rb; b++) {
        uint64_t block_off = (1 + rt_clusters + b) * cs;

        stq_be_p(img + cs + b * 8, block_off);
        for (uint64_t c = b * rb_entries;
             c < MIN(total, (b + 1) * rb_entries); c++) {
            qcow2_refcount_entry_set(img + block_off, refcount_order,
                                     c - b * rb_entries, 1);
        }
    }

    fd = open(filename, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        ret = -errno;
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "'%s': cannot create: %s",
                    filename, g_strerror(-ret));
        return ret;
    }
    ret = qcow2_write_all(fd, img, total * cs);
    if (ret == 0 && fsync(fd) < 0) {
        ret = -errno;
    }
    if (close(fd) < 0 && ret == 0) {
        ret = -errno;
    }
    if (ret < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "'%s': cannot write: %s",
                    filename, g_strerror(-ret));
        return ret;
    }
    return 0;
}
