/*
 * Helpers shared by the NVRAM store tests: scratch images, opening, and
 * comparing the stored state with what a test expects.
 */
#ifndef TEST_NVRAM_UTIL_H
#define TEST_NVRAM_UTIL_H

#include "qemu/osdep.h"

#include "block/block.h"
#include "nvram/nvram.h"
#include "nvram/nvram-format.h"

/* libtpms's largest TPM 2.0 permall is about 173 KB. */
#define TEST_LARGE_BLOB (173 * 1024)

typedef struct TestImage {
    char *dir;
    char *path;
    const char *format;     /* "raw" or "qcow2" */
} TestImage;

static const uint8_t test_key[32] = {
    0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67,
    0x89, 0xab, 0xcd, 0xef, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87,
    0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
};

static G_GNUC_UNUSED void test_image_new(TestImage *t, const char *format)
{
    GError *err = NULL;

    t->dir = g_dir_make_tmp("qtpm-test-nvram.XXXXXX", NULL);
    g_assert_nonnull(t->dir);
    t->format = format;
    t->path = g_build_filename(t->dir, !strcmp(format, "raw") ? "tpm.raw" : "tpm.qcow2",
                               NULL);
    if (!strcmp(format, "raw")) {
        g_assert_true(g_file_set_contents(t->path, "", 0, NULL));
    } else {
        g_assert_cmpint(qcow2_create(t->path, 64 * 1024, NULL, &err), ==, 0);
        g_assert_no_error(err);
    }
}

static G_GNUC_UNUSED void test_image_free(TestImage *t)
{
    unlink(t->path);
    rmdir(t->dir);
    g_free(t->path);
    g_free(t->dir);
}

static G_GNUC_UNUSED BlockDriverState *test_bdrv_open(TestImage *t, bool blkdebug,
                                                      bool inactive)
{
    BlockOpenOptions o = { .format = t->format, .blkdebug = blkdebug,
                           .inactive = inactive };
    GError *err = NULL;
    BlockDriverState *bs = bdrv_open(t->path, &o, &err);

    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

static G_GNUC_UNUSED NvramOpenOptions test_opts(bool owner, bool encrypted)
{
    NvramOpenOptions o = {
        .owner = owner,
        .format_blank = owner,
        .tpm_version = 2,
    };
    if (encrypted) {
        o.key.kind = QCRYPTO_KEY_RAW;
        o.key.data = test_key;
        o.key.len = sizeof(test_key);
    }
    return o;
}

/* A blob whose every byte depends on @seed, so versions never look alike. */
static G_GNUC_UNUSED uint8_t *test_blob(size_t len, unsigned seed)
{
    uint8_t *b = g_malloc(len);
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345;
        b[i] = x >> 16;
    }
    return b;
}

static G_GNUC_UNUSED uint8_t *test_file_read(const char *path, gsize *len)
{
    char *c = NULL;

    g_assert_true(g_file_get_contents(path, &c, len, NULL));
    return (uint8_t *)c;
}

/* Rewrites the file without g_file_set_contents's fsync: tests reopen at once. */
static G_GNUC_UNUSED void test_file_write(const char *path, const uint8_t *buf,
                                          gsize len)
{
    FILE *f = fopen(path, "wb");

    g_assert_nonnull(f);
    g_assert_cmpuint(fwrite(buf, 1, len, f), ==, len);
    g_assert_cmpint(fclose(f), ==, 0);
}

static G_GNUC_UNUSED char *test_file_sha256(const char *path)
{
    gsize len;
    g_autofree uint8_t *c = test_file_read(path, &len);

    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, c, len);
}

/* Loads @type: returns 1/0/-1 like nvram_load, data g_malloc'ed. */
static G_GNUC_UNUSED int test_load(NvramStore *s, TPMStateBlobType type, uint8_t **data,
                                   size_t *len)
{
    GError *err = NULL;
    int r = nvram_load(s, type, data, len, &err);

    if (r < 0) {
        g_assert_nonnull(err);
        g_error_free(err);
    } else {
        g_assert_no_error(err);
    }
    return r;
}

static G_GNUC_UNUSED bool test_blob_equals(NvramStore *s, TPMStateBlobType type,
                                           const uint8_t *want, size_t want_len)
{
    uint8_t *d = NULL;
    size_t len = 0;
    int r = test_load(s, type, &d, &len);
    bool eq;

    if (r < 0) {
        return false;
    }
    if (!want) {
        g_free(d);
        return r == 0;
    }
    eq = r == 1 && len == want_len && !memcmp(d, want, len);
    g_free(d);
    return eq;
}

/*
 * Turns a store that was just formatted (generation 1, no blobs) into one
 * made before ordered commits: no `ordered` flag, one directory copy.
 */
static G_GNUC_UNUSED void test_store_make_unordered(TestImage *t)
{
    BlockDriverState *bs = test_bdrv_open(t, false, false);
    uint8_t block[NVRAM_BLOCK_SIZE];
    NvramHeader h;
    GError *err = NULL;

    g_assert_cmpint(bdrv_pread(bs, 0, sizeof(block), block, &err), ==, 0);
    g_assert_true(nvram_header_parse(block, sizeof(block), &h, NULL, &err));
    g_assert_true(h.incompat_flags & NVRAM_INCOMPAT_ORDERED);
    h.incompat_flags = 0;
    nvram_header_encode(&h, block);
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(block), block, &err), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, NVRAM_SLOT_A_OFFSET, sizeof(block), block, &err),
                    ==, 0);
    memset(block + NVRAM_DIR_COPY_STRIDE, 0, NVRAM_DIR_SIZE);
    g_assert_cmpint(bdrv_pwrite(bs, NVRAM_SLOT_A_OFFSET, sizeof(block), block, &err),
                    ==, 0);
    g_assert_cmpint(bdrv_flush(bs, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(bs);
}

#endif
