/*
 * qcow2 open and I/O on a hostile image: the whole input is the image file.
 * What is read and written is chosen from the input's CRC, so the corpus
 * stays plain images that qemu-img can open too. Every open and access
 * either works or fails with an error; none may crash, hang or leak.
 */
#include "fuzz-util.h"
#include "block/block.h"
#include "qemu/crc32.h"

static void exercise(BlockDriverState *bs, uint32_t seed)
{
    g_autoptr(GError) err = NULL;
    int64_t len = bdrv_getlength(bs, NULL);
    uint8_t buf[8192];
    int64_t offs[4];

    if (len <= 0) {
        return;
    }
    offs[0] = 0;
    offs[1] = (seed % (uint64_t)len) & ~511ll;
    offs[2] = len > (int64_t)sizeof(buf) ? len - sizeof(buf) : 0;
    offs[3] = (seed * 2654435761u) % (uint64_t)len;
    for (int i = 0; i < 4; i++) {
        int64_t n = MIN((int64_t)sizeof(buf), len - offs[i]);

        bdrv_pread(bs, offs[i], n, buf, NULL);
    }
    if (bdrv_is_read_only(bs)) {
        return;
    }
    /* A write allocates (L2 tables, refcount blocks) in the hostile metadata. */
    memset(buf, seed & 0xff, sizeof(buf));
    bdrv_pwrite(bs, offs[1], MIN((int64_t)sizeof(buf), len - offs[1]), buf, NULL);
    bdrv_pwrite(bs, offs[3], MIN(700, len - offs[3]), buf, NULL);
    bdrv_pwrite_zeroes(bs, offs[2], MIN(4096, len - offs[2]), NULL);
    bdrv_flush(bs, NULL);
    bdrv_pread(bs, offs[1], MIN((int64_t)sizeof(buf), len - offs[1]), buf, NULL);
    if (seed & 1) {
        bdrv_truncate(bs, len + 65536, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t seed = qemu_crc32(data, size);

    for (int ro = 1; ro >= 0; ro--) {
        BlockOpenOptions o = { .format = "qcow2", .read_only = ro, .no_locking = true };
        const char *file = fuzz_image_file(data, size);
        BlockDriverState *bs = bdrv_open(file, &o, NULL);

        if (!bs) {
            return 0;
        }
        exercise(bs, seed);
        bdrv_close(bs);
    }
    return 0;
}
