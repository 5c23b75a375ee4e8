/*
 * nvram/nvram.c: the store's API, the open matrix (keys, blank and
 * foreign images, newer versions, damage), disk use, one flush per commit,
 * bit flips, replayed and swapped blobs, and the owner/access locks.
 */
#include "qemu/osdep.h"

#include <signal.h>
#include <sys/wait.h>
#include <zlib.h>

#include "crypto/hkdf.h"
#include "crypto/secret.h"
#include "test-nvram-util.h"
#include "unit-util.h"

static NvramStore *open_ok(BlockDriverState *bs, const NvramOpenOptions *o)
{
    GError *err = NULL;
    NvramStore *s = nvram_open(bs, o, &err);

    g_assert_no_error(err);
    g_assert_nonnull(s);
    return s;
}

static void store_ok(NvramStore *s, TPMStateBlobType type, const uint8_t *d, size_t len)
{
    GError *err = NULL;

    g_assert_cmpint(nvram_store(s, type, d, len, &err), ==, 0);
    g_assert_no_error(err);
}

/* Opens @t with @o and expects @code and @needle, and the file unchanged. */
static void assert_open_refused(TestImage *t, const NvramOpenOptions *o, int code,
                                const char *needle)
{
    g_autofree char *before = test_file_sha256(t->path);
    g_autofree char *after = NULL;
    BlockDriverState *bs = test_bdrv_open(t, false, false);
    GError *err = NULL;
    NvramStore *s = nvram_open(bs, o, &err);

    g_assert_null(s);
    g_assert_error(err, QTPM_ERROR, code);
    if (!strstr(err->message, needle) || !strstr(err->message, t->path)) {
        g_error("message '%s' lacks '%s' or the image name", err->message, needle);
    }
    g_error_free(err);
    bdrv_close(bs);
    after = test_file_sha256(t->path);
    g_assert_cmpstr(before, ==, after);
}

static void test_basic(gconstpointer data)
{
    const char *format = data;
    TestImage t;
    BlockDriverState *bs;
    NvramStore *s;
    NvramOpenOptions o = test_opts(true, false);
    g_autofree uint8_t *p1 = test_blob(3000, 1);
    g_autofree uint8_t *v1 = test_blob(500, 2);
    NvramInfo info;
    GError *err = NULL;

    test_image_new(&t, format);
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, NULL, 0));
    store_ok(s, TPM_STATE_BLOB_PERMANENT, p1, 3000);
    store_ok(s, TPM_STATE_BLOB_VOLATILE, v1, 500);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p1, 3000));
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_VOLATILE, v1, 500));
    g_assert_cmpint(nvram_get_info(s, &info, &err), ==, 0);
    g_assert_cmpuint(info.format_version, ==, 1);
    g_assert_false(info.encrypted);
    g_assert_cmpint(info.tpm_version, ==, 2);
    g_assert_cmpuint(info.generation, ==, 3);
    g_assert_cmpuint(info.n_blobs, ==, 2);
    g_assert_cmpint(nvram_check(s, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(nvram_delete(s, TPM_STATE_BLOB_VOLATILE, &err), ==, 0);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_VOLATILE, NULL, 0));
    /* Bad requests are refused as sentences, nothing is written. */
    {
        uint8_t *d;
        size_t l;
        g_assert_cmpint(nvram_load(s, 7, &d, &l, &err), ==, -1);
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
        g_clear_error(&err);
        NvramBlobUpdate dup[2] = { { TPM_STATE_BLOB_VOLATILE, v1, 5 },
                                   { TPM_STATE_BLOB_VOLATILE, v1, 6 } };
        g_assert_cmpint(nvram_commit(s, dup, 2, &err), ==, -1);
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
        g_clear_error(&err);
    }
    nvram_close(s);
    bdrv_close(bs);

    /* A reader sees the same state, and cannot commit. */
    bs = test_bdrv_open(&t, false, false);
    o = test_opts(false, false);
    s = open_ok(bs, &o);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p1, 3000));
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_VOLATILE, NULL, 0));
    g_assert_cmpint(nvram_store(s, TPM_STATE_BLOB_VOLATILE, v1, 500, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_clear_error(&err);
    nvram_close(s);
    bdrv_close(bs);
    test_image_free(&t);
}

/* Several blobs in one commit, large blobs, and bounded disk use. */
static void test_large_and_bounded(gconstpointer data)
{
    const char *format = data;
    TestImage t;
    BlockDriverState *bs;
    NvramStore *s;
    NvramOpenOptions o = test_opts(true, true);
    int64_t len_after_warmup = 0;
    GError *err = NULL;

    test_image_new(&t, format);
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    for (unsigned i = 0; i < 40; i++) {
        g_autofree uint8_t *p = test_blob(TEST_LARGE_BLOB - (i % 3) * 1000, i);
        g_autofree uint8_t *v = test_blob(9000 + i, 1000 + i);
        NvramBlobUpdate u[2] = {
            { TPM_STATE_BLOB_PERMANENT, p, TEST_LARGE_BLOB - (i % 3) * 1000 },
            { TPM_STATE_BLOB_VOLATILE, v, 9000 + i },
        };
        g_assert_cmpint(nvram_commit(s, u, 2, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p, u[0].len));
        g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_VOLATILE, v, u[1].len));
        if (i == 19) {
            len_after_warmup = bdrv_getlength(bs, &err);
        }
    }
    /*
     * Space is reused: the last 20 of 40 commits did not grow the disk, and
     * it holds no more than about three copies of the state.
     */
    g_assert_cmpint(bdrv_getlength(bs, &err), ==, len_after_warmup);
    g_assert_cmpint(len_after_warmup, <=,
                    NVRAM_DATA_OFFSET + 3 * (TEST_LARGE_BLOB + 4096 + 9040 + 4096) + 65536);
    nvram_close(s);
    bdrv_close(bs);

    bs = test_bdrv_open(&t, false, false);
    o = test_opts(false, true);
    s = open_ok(bs, &o);
    {
        g_autofree uint8_t *p = test_blob(TEST_LARGE_BLOB - (39 % 3) * 1000, 39);
        g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p,
                                       TEST_LARGE_BLOB - (39 % 3) * 1000));
    }
    nvram_close(s);
    bdrv_close(bs);
    test_image_free(&t);
}

/*
 * After a warm-up that allocates both generations, every commit of a large
 * and a small blob, and every store of the small one alone, makes exactly
 * @flushes flushes.
 */
static void assert_flushes_per_commit(BlockDriverState *bs, NvramStore *s,
                                      uint64_t flushes)
{
    g_autofree uint8_t *p = test_blob(TEST_LARGE_BLOB, 3);
    g_autofree uint8_t *v = test_blob(4000, 4);
    GError *err = NULL;

    for (int i = 0; i < 6; i++) {
        store_ok(s, TPM_STATE_BLOB_PERMANENT, p, TEST_LARGE_BLOB);
        store_ok(s, TPM_STATE_BLOB_VOLATILE, v, 4000);
    }
    for (int i = 0; i < 20; i++) {
        uint64_t before = bdrv_get_flush_count(bs);
        NvramBlobUpdate u[2] = { { TPM_STATE_BLOB_PERMANENT, p, TEST_LARGE_BLOB },
                                 { TPM_STATE_BLOB_VOLATILE, v, 4000 } };
        if (i % 2) {
            store_ok(s, TPM_STATE_BLOB_VOLATILE, v, 4000);
        } else {
            g_assert_cmpint(nvram_commit(s, u, 2, &err), ==, 0);
        }
        g_assert_cmpuint(bdrv_get_flush_count(bs), ==, before + flushes);
    }
}

/* Steady state of an image made before ordered commits: one flush per commit. */
static void test_one_flush_per_commit(gconstpointer data)
{
    const char *format = data;
    TestImage t;
    BlockDriverState *bs;
    NvramStore *s;
    NvramOpenOptions o = test_opts(true, true);

    test_image_new(&t, format);
    bs = test_bdrv_open(&t, false, false);
    nvram_close(open_ok(bs, &o));
    bdrv_close(bs);
    test_store_make_unordered(&t);
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    assert_flushes_per_commit(bs, s, 1);
    nvram_close(s);
    bdrv_close(bs);
    test_image_free(&t);
}

/*
 * Steady state of an ordered image (docs/nvram-format.md 4a): two flushes per
 * commit, the blobs durable before the directory that names them.
 */
static void test_two_flushes_per_commit(gconstpointer data)
{
    const char *format = data;
    TestImage t;
    BlockDriverState *bs;
    NvramStore *s;
    NvramOpenOptions o = test_opts(true, true);

    test_image_new(&t, format);
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    assert_flushes_per_commit(bs, s, 2);
    nvram_close(s);
    bdrv_close(bs);
    test_image_free(&t);
}

static NvramBlobInfo permanent_info(NvramStore *s)
{
    NvramInfo info;
    GError *err = NULL;

    g_assert_cmpint(nvram_get_info(s, &info, &err), ==, 0);
    for (unsigned i = 0; i < info.n_blobs; i++) {
        if (info.blobs[i].type == TPM_STATE_BLOB_PERMANENT) {
            return info.blobs[i];
        }
    }
    g_assert_not_reached();
}

/*
 * The first commit after the store read the image drops the host's cached
 * pages before it writes (the pages reads made cost more to write back than
 * those a large write makes itself); later commits keep the pages their
 * own writes made. Raw, so that virtual offsets are file offsets.
 */
static void test_page_cache_dropped_after_reads(void)
{
    TestImage t;
    BlockDriverState *bs;
    NvramStore *s;
    NvramOpenOptions o = test_opts(true, true);
    g_autofree uint8_t *p = test_blob(TEST_LARGE_BLOB, 21);
    g_autofree uint8_t *data = NULL;
    g_autofree uint8_t *all = NULL;
    NvramBlobInfo loaded, first;
    size_t len, pages;
    gsize n;

    test_image_new(&t, "raw");
    if (!unit_page_cache_droppable(t.path)) {
        test_image_free(&t);
        g_test_skip("the scratch folder is on tmpfs, which has no page cache to drop");
        return;
    }
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    for (int i = 0; i < 4; i++) {
        p[i] ^= 1;
        store_ok(s, TPM_STATE_BLOB_PERMANENT, p, TEST_LARGE_BLOB);
    }
    nvram_close(s);
    bdrv_close(bs);

    /* Everything cached, as reads leave it. */
    all = test_file_read(t.path, &n);
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    g_assert_cmpint(test_load(s, TPM_STATE_BLOB_PERMANENT, &data, &len), ==, 1);
    loaded = permanent_info(s);
    pages = unit_resident_pages(t.path, loaded.offset, loaded.length);
    g_assert_cmpuint(pages, >, 0);

    p[7] ^= 1;
    store_ok(s, TPM_STATE_BLOB_PERMANENT, p, TEST_LARGE_BLOB);
    first = permanent_info(s);
    g_assert_cmpuint(first.offset, !=, loaded.offset);
    g_assert_cmpuint(unit_resident_pages(t.path, loaded.offset, loaded.length), ==, 0);

    p[8] ^= 1;
    store_ok(s, TPM_STATE_BLOB_PERMANENT, p, TEST_LARGE_BLOB);
    g_assert_cmpuint(permanent_info(s).offset, ==, loaded.offset);
    pages = (first.offset + first.length + 4095) / 4096 - first.offset / 4096;
    g_assert_cmpuint(unit_resident_pages(t.path, first.offset, first.length), ==, pages);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p, TEST_LARGE_BLOB));
    nvram_close(s);
    bdrv_close(bs);
    test_image_free(&t);
}

/* Makes an image with a formatted store (optionally encrypted) and one blob. */
static void make_store(TestImage *t, const char *format, const NvramOpenOptions *o)
{
    BlockDriverState *bs;
    NvramStore *s;
    g_autofree uint8_t *p = test_blob(2000, 7);

    test_image_new(t, format);
    bs = test_bdrv_open(t, false, false);
    s = open_ok(bs, o);
    store_ok(s, TPM_STATE_BLOB_PERMANENT, p, 2000);
    nvram_close(s);
    bdrv_close(bs);
}

static void test_open_matrix(gconstpointer data)
{
    const char *format = data;
    TestImage t;
    NvramOpenOptions enc = test_opts(true, true), plain = test_opts(true, false);
    NvramOpenOptions o;
    uint8_t wrong[32];
    g_autofree uint8_t *p = test_blob(2000, 7);

    /* Encrypted image: right key, wrong key, no key, a passphrase instead. */
    make_store(&t, format, &enc);
    {
        BlockDriverState *bs = test_bdrv_open(&t, false, false);
        NvramStore *s = open_ok(bs, &enc);
        NvramInfo info;
        g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p, 2000));
        g_assert_cmpint(nvram_get_info(s, &info, NULL), ==, 0);
        g_assert_true(info.encrypted);
        g_assert_true(info.key_checked);
        nvram_close(s);
        bdrv_close(bs);
    }
    memcpy(wrong, test_key, 32);
    wrong[0] ^= 1;
    o = enc;
    o.key.data = wrong;
    assert_open_refused(&t, &o, QTPM_ERROR_WRONG_KEY, "wrong key");
    o = enc;
    o.owner = false;
    o.key.data = wrong;
    assert_open_refused(&t, &o, QTPM_ERROR_WRONG_KEY, "wrong key");
    assert_open_refused(&t, &plain, QTPM_ERROR_NO_KEY, "no key was given");
    o = enc;
    o.key.kind = QCRYPTO_KEY_PASSPHRASE;
    assert_open_refused(&t, &o, QTPM_ERROR_WRONG_KEY, "wrong key");
    o = enc;
    o.key.len = 31;
    assert_open_refused(&t, &o, QTPM_ERROR_INVALID, "a raw key is 32 bytes");
    /* Readers may look at CRCs without the key, but get no data. */
    {
        BlockDriverState *bs = test_bdrv_open(&t, false, false);
        NvramOpenOptions r = test_opts(false, false);
        NvramStore *s;
        GError *err = NULL;
        uint8_t *d;
        size_t l;
        r.allow_no_key = true;
        s = open_ok(bs, &r);
        g_assert_cmpint(nvram_check(s, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpint(nvram_load(s, TPM_STATE_BLOB_PERMANENT, &d, &l, &err), ==, -1);
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_NO_KEY);
        g_clear_error(&err);
        nvram_close(s);
        bdrv_close(bs);
    }
    test_image_free(&t);

    /* Plain image opened with a key. */
    make_store(&t, format, &plain);
    assert_open_refused(&t, &enc, QTPM_ERROR_INVALID, "not encrypted");
    test_image_free(&t);

    /* Passphrase image. */
    o = test_opts(true, false);
    o.key.kind = QCRYPTO_KEY_PASSPHRASE;
    o.key.data = (const uint8_t *)"correct horse";
    o.key.len = 13;
    o.kdf_iterations = 1000;
    make_store(&t, format, &o);
    {
        BlockDriverState *bs = test_bdrv_open(&t, false, false);
        NvramStore *s = open_ok(bs, &o);
        NvramInfo info;
        g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p, 2000));
        g_assert_cmpint(nvram_get_info(s, &info, NULL), ==, 0);
        g_assert_true(info.passphrase);
        g_assert_cmpuint(info.kdf_iterations, ==, 1000);
        nvram_close(s);
        bdrv_close(bs);
    }
    o.key.data = (const uint8_t *)"correct horsf";
    assert_open_refused(&t, &o, QTPM_ERROR_WRONG_KEY, "wrong key");
    assert_open_refused(&t, &enc, QTPM_ERROR_WRONG_KEY, "wrong key");
    test_image_free(&t);

    /* Blank image: a reader, or an owner not allowed to format, refuse. */
    test_image_new(&t, format);
    o = test_opts(false, false);
    assert_open_refused(&t, &o, QTPM_ERROR_NOT_FOUND, "blank");
    o = test_opts(true, false);
    o.format_blank = false;
    assert_open_refused(&t, &o, QTPM_ERROR_NOT_FOUND, "blank");
    test_image_free(&t);
}

/* A raw image holding anything but our store is never overwritten. */
static void test_foreign_image(void)
{
    TestImage t;
    g_autofree uint8_t *junk = g_malloc0(65536);
    NvramOpenOptions o = test_opts(true, false);

    test_image_new(&t, "raw");
    junk[60000] = 1;    /* far from anything the store's layout uses */
    test_file_write(t.path, junk, 65536);
    assert_open_refused(&t, &o, QTPM_ERROR_NOT_FOUND, "no qtpm NVRAM header");
    o = test_opts(true, true);
    assert_open_refused(&t, &o, QTPM_ERROR_NOT_FOUND, "no qtpm NVRAM header");
    test_image_free(&t);
}

static void rewrite_header_version(uint8_t *file, uint32_t version)
{
    for (int c = 0; c < NVRAM_HEADER_COPIES; c++) {
        uint8_t *h = file + c * NVRAM_HEADER_COPY_STRIDE;
        uint32_t crc;
        h[8] = version >> 24;
        h[9] = version >> 16;
        h[10] = version >> 8;
        h[11] = version;
        crc = crc32(0, h, 124);
        h[124] = crc >> 24;
        h[125] = crc >> 16;
        h[126] = crc >> 8;
        h[127] = crc;
    }
}

static void test_newer_version_and_damage(void)
{
    TestImage t;
    NvramOpenOptions o = test_opts(true, false);
    gsize len;
    g_autofree uint8_t *orig = NULL;
    g_autofree uint8_t *f = NULL;

    make_store(&t, "raw", &o);
    orig = test_file_read(t.path, &len);

    f = g_memdup2(orig, len);
    rewrite_header_version(f, 2);
    test_file_write(t.path, f, len);
    assert_open_refused(&t, &o, QTPM_ERROR_UNSUPPORTED, "newer");

    /* Both directory slots damaged (both copies of each): refused, naming both. */
    memcpy(f, orig, len);
    f[NVRAM_SLOT_A_OFFSET + 20] ^= 1;
    f[NVRAM_SLOT_B_OFFSET + 20] ^= 1;
    f[NVRAM_SLOT_A_OFFSET + NVRAM_DIR_COPY_STRIDE + 20] ^= 1;
    f[NVRAM_SLOT_B_OFFSET + NVRAM_DIR_COPY_STRIDE + 20] ^= 1;
    test_file_write(t.path, f, len);
    assert_open_refused(&t, &o, QTPM_ERROR_CORRUPT, "slot A: directory CRC mismatch");
    assert_open_refused(&t, &o, QTPM_ERROR_CORRUPT, "slot B:");

    /* Both header copies damaged. */
    memcpy(f, orig, len);
    f[30] ^= 4;
    f[NVRAM_HEADER_COPY_STRIDE + 30] ^= 4;
    test_file_write(t.path, f, len);
    assert_open_refused(&t, &o, QTPM_ERROR_CORRUPT, "header");

    /* Damage under a running owner: load fails, it does not say "absent". */
    test_file_write(t.path, orig, len);
    {
        BlockDriverState *bs = test_bdrv_open(&t, false, false);
        NvramStore *s = open_ok(bs, &o);
        NvramInfo info;
        uint8_t *d = NULL;
        size_t l = 0;
        GError *err = NULL;
        int fd;
        uint8_t c;

        g_assert_cmpint(nvram_get_info(s, &info, NULL), ==, 0);
        g_assert_cmpuint(info.n_blobs, ==, 1);
        fd = open(t.path, O_RDWR);
        g_assert_cmpint(pread(fd, &c, 1, info.blobs[0].offset + 5), ==, 1);
        c ^= 0x10;
        g_assert_cmpint(pwrite(fd, &c, 1, info.blobs[0].offset + 5), ==, 1);
        close(fd);
        g_assert_cmpint(nvram_load(s, TPM_STATE_BLOB_PERMANENT, &d, &l, &err), ==, -1);
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
        g_assert_nonnull(strstr(err->message, "CRC mismatch"));
        g_assert_null(d);
        g_clear_error(&err);
        g_assert_cmpint(nvram_check(s, &err), ==, -1);
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
        g_clear_error(&err);
        nvram_close(s);
        bdrv_close(bs);
    }

    /* The permanent blob lost: an error, never an empty TPM. */
    memcpy(f, orig, len);
    memset(f + NVRAM_DATA_OFFSET, 0, len - NVRAM_DATA_OFFSET);
    test_file_write(t.path, f, len);
    assert_open_refused(&t, &o, QTPM_ERROR_CORRUPT, "blob permanent");
    test_image_free(&t);
}

/*
 * An image with two slots in use: slot B = generation 2 {P1, V1} and
 * slot A = generation 3 {P2, V1}. Returns the live extents of slot A.
 */
typedef struct FlipImage {
    TestImage t;
    uint8_t *bytes;
    gsize len;
    uint8_t *p1, *p2, *v1;
    size_t plen, vlen;
    NvramInfo info;
} FlipImage;

static void flip_image_make(FlipImage *fi, bool encrypted, size_t plen)
{
    NvramOpenOptions o = test_opts(true, encrypted);
    BlockDriverState *bs;
    NvramStore *s;
    NvramBlobUpdate u[2];

    fi->plen = plen;
    fi->vlen = 700;
    fi->p1 = test_blob(plen, 11);
    fi->p2 = test_blob(plen, 12);
    fi->v1 = test_blob(fi->vlen, 13);
    test_image_new(&fi->t, "raw");
    bs = test_bdrv_open(&fi->t, false, false);
    s = open_ok(bs, &o);
    u[0] = (NvramBlobUpdate){ TPM_STATE_BLOB_PERMANENT, fi->p1, plen };
    u[1] = (NvramBlobUpdate){ TPM_STATE_BLOB_VOLATILE, fi->v1, fi->vlen };
    g_assert_cmpint(nvram_commit(s, u, 2, NULL), ==, 0);
    store_ok(s, TPM_STATE_BLOB_PERMANENT, fi->p2, plen);
    g_assert_cmpint(nvram_get_info(s, &fi->info, NULL), ==, 0);
    g_assert_cmpint(fi->info.slot, ==, 0);
    nvram_close(s);
    bdrv_close(bs);
    fi->bytes = test_file_read(fi->t.path, &fi->len);
}

static void flip_image_free(FlipImage *fi)
{
    test_image_free(&fi->t);
    g_free(fi->bytes);
    g_free(fi->p1);
    g_free(fi->p2);
    g_free(fi->v1);
}

/* Flips one bit of the file in place (no fsync: the tests reopen at once). */
static void flip_file_bit(const char *path, uint64_t bit)
{
    int fd = open(path, O_RDWR);
    uint8_t c;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, &c, 1, bit / 8), ==, 1);
    c ^= 1 << (bit % 8);
    g_assert_cmpint(pwrite(fd, &c, 1, bit / 8), ==, 1);
    close(fd);
}

/*
 * With bit @bit of the image flipped: open fails, or check fails; loads
 * return only genuine versions (P2/P1, V1), never corrupted bytes.
 */
static void flip_and_verify(FlipImage *fi, bool encrypted, uint64_t bit)
{
    NvramOpenOptions o = test_opts(false, encrypted);
    BlockDriverState *bs;
    NvramStore *s;
    GError *err = NULL;

    flip_file_bit(fi->t.path, bit);

    bs = test_bdrv_open(&fi->t, false, false);
    s = nvram_open(bs, &o, &err);
    if (!s) {
        g_assert_nonnull(err);
        g_error_free(err);
        bdrv_close(bs);
        flip_file_bit(fi->t.path, bit);
        return;
    }
    if (nvram_check(s, &err) == 0) {
        g_error("flip of bit %" PRIu64 " (byte 0x%" PRIx64 ") went undetected", bit,
                bit / 8);
    }
    g_clear_error(&err);
    {
        uint8_t *d = NULL;
        size_t l = 0;
        int r = test_load(s, TPM_STATE_BLOB_PERMANENT, &d, &l);
        if (r > 0) {
            g_assert_true((l == fi->plen && !memcmp(d, fi->p2, l)) ||
                          (l == fi->plen && !memcmp(d, fi->p1, l)));
        }
        g_free(d);
        r = test_load(s, TPM_STATE_BLOB_VOLATILE, &d, &l);
        if (r > 0) {
            g_assert_true(l == fi->vlen && !memcmp(d, fi->v1, l));
        }
        g_free(d);
    }
    nvram_close(s);
    bdrv_close(bs);
    flip_file_bit(fi->t.path, bit);
}

static void test_bit_flips(gconstpointer data)
{
    bool encrypted = GPOINTER_TO_INT(data);
    FlipImage fi;
    GRand *rand = g_rand_new_with_seed(1234);

    flip_image_make(&fi, encrypted, 1500);
    for (int c = 0; c < NVRAM_HEADER_COPIES; c++) {
        for (uint64_t b = 0; b < NVRAM_HEADER_SIZE * 8; b++) {
            flip_and_verify(&fi, encrypted, c * NVRAM_HEADER_COPY_STRIDE * 8 + b);
        }
    }
    for (int slot = 0; slot < 2; slot++) {
        uint64_t base = (slot ? NVRAM_SLOT_B_OFFSET : NVRAM_SLOT_A_OFFSET) * 8;
        for (uint64_t b = 0; b < NVRAM_DIR_SIZE * 8; b++) {
            flip_and_verify(&fi, encrypted, base + b);
        }
        /* The unused rest of the slot block is checked too. */
        for (int i = 0; i < 64; i++) {
            flip_and_verify(&fi, encrypted,
                            base + NVRAM_DIR_SIZE * 8 +
                            g_rand_int_range(rand, 0, (NVRAM_SLOT_SIZE - NVRAM_DIR_SIZE) * 8));
        }
    }
    /* Sampled bits of the live blobs (slot A's). */
    for (unsigned i = 0; i < fi.info.n_blobs; i++) {
        const NvramBlobInfo *b = &fi.info.blobs[i];
        for (int k = 0; k < 200; k++) {
            flip_and_verify(&fi, encrypted,
                            b->offset * 8 + g_rand_int_range(rand, 0, b->length * 8));
        }
    }
    g_rand_free(rand);
    flip_image_free(&fi);
}

/* The directory MAC key, as the store derives it (docs/nvram-format.md 5). */
static void dir_mac_key(const uint8_t *uuid, uint8_t out[32])
{
    const char *label = "qtpm nvram v1 directory mac";

    qcrypto_hkdf_sha256(test_key, 32, uuid, 16, (const uint8_t *)label, strlen(label),
                        out, 32);
}

/*
 * The tampered directory slot is never used: open fails, or it uses the
 * other slot, whose blobs are genuine, and check reports the damage.
 */
static void open_expect_rejected(FlipImage *fi, int tampered_slot)
{
    NvramOpenOptions o = test_opts(false, true);
    BlockDriverState *bs = test_bdrv_open(&fi->t, false, false);
    GError *err = NULL;
    NvramStore *s = nvram_open(bs, &o, &err);

    if (s) {
        NvramInfo info;
        g_assert_cmpint(nvram_get_info(s, &info, NULL), ==, 0);
        g_assert_cmpint(info.slot, !=, tampered_slot);
        g_assert_cmpint(info.other_problem, ==, info.other_cause[0] != 0);
        g_assert_cmpint(nvram_check(s, &err), ==, -1);
        /* The cause is data: the same words check's sentence gives. */
        g_assert_true(!info.other_problem || strstr(err->message, info.other_cause));
        g_clear_error(&err);
        g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT,
                                       info.slot == 0 ? fi->p2 : fi->p1, fi->plen));
        g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_VOLATILE, fi->v1, fi->vlen));
        nvram_close(s);
    } else {
        g_clear_error(&err);
    }
    bdrv_close(bs);
}

/*
 * Replay and swap, done by someone who can even recompute the directory
 * MAC: the GCM tags (nonce, and AD binding type and generation) still fail.
 */
static void test_replay_and_swap(void)
{
    FlipImage fi;
    NvramDirectory d;
    uint8_t mac_key[32];
    g_autofree uint8_t *f = NULL;
    const uint8_t *uuid;
    NvramDirEntry *pe = NULL, *ve = NULL;
    const NvramDirEntry *old_pe = NULL;
    NvramDirectory old;

    flip_image_make(&fi, true, 1500);
    uuid = fi.bytes + 24;
    dir_mac_key(uuid, mac_key);
    g_assert_true(nvram_dir_parse_ordered(fi.bytes + NVRAM_SLOT_A_OFFSET,
                                          NVRAM_SLOT_SIZE, 0, uuid, &d, NULL, NULL,
                                          NULL));
    g_assert_true(nvram_dir_parse_ordered(fi.bytes + NVRAM_SLOT_B_OFFSET,
                                          NVRAM_SLOT_SIZE, 1, uuid, &old, NULL, NULL,
                                          NULL));
    for (unsigned i = 0; i < d.n_entries; i++) {
        if (d.entries[i].type == TPM_STATE_BLOB_PERMANENT) {
            pe = &d.entries[i];
        } else {
            ve = &d.entries[i];
        }
    }
    for (unsigned i = 0; i < old.n_entries; i++) {
        if (old.entries[i].type == TPM_STATE_BLOB_PERMANENT) {
            old_pe = &old.entries[i];
        }
    }
    g_assert_nonnull(pe);
    g_assert_nonnull(ve);
    g_assert_nonnull(old_pe);
    g_assert_cmpuint(pe->offset, !=, old_pe->offset);

    /* 1. The older ciphertext of P copied over the current one, CRC fixed. */
    f = g_memdup2(fi.bytes, fi.len);
    memcpy(f + pe->offset, fi.bytes + old_pe->offset, old_pe->length);
    {
        NvramDirectory x = d;
        for (unsigned i = 0; i < x.n_entries; i++) {
            if (x.entries[i].type == TPM_STATE_BLOB_PERMANENT) {
                x.entries[i].crc32 = old_pe->crc32;
            }
        }
        nvram_dir_encode(&x, mac_key, f + NVRAM_SLOT_A_OFFSET);
    }
    test_file_write(fi.t.path, f, fi.len);
    open_expect_rejected(&fi, 0);

    /* 2. Same without the key: the MAC no longer matches. */
    memcpy(f, fi.bytes, fi.len);
    memcpy(f + pe->offset, fi.bytes + old_pe->offset, old_pe->length);
    {
        NvramDirectory x = d;
        for (unsigned i = 0; i < x.n_entries; i++) {
            if (x.entries[i].type == TPM_STATE_BLOB_PERMANENT) {
                x.entries[i].crc32 = old_pe->crc32;
            }
        }
        nvram_dir_encode(&x, NULL, f + NVRAM_SLOT_A_OFFSET);
        memcpy(f + NVRAM_SLOT_A_OFFSET + NVRAM_DIR_MAC_OFFSET, d.mac, 32);
        {
            uint32_t crc = crc32(0, f + NVRAM_SLOT_A_OFFSET, 1020);
            uint8_t *c = f + NVRAM_SLOT_A_OFFSET + 1020;
            c[0] = crc >> 24;
            c[1] = crc >> 16;
            c[2] = crc >> 8;
            c[3] = crc;
        }
    }
    test_file_write(fi.t.path, f, fi.len);
    open_expect_rejected(&fi, 0);

    /* 3. Permanent and volatile swapped (types exchanged), MAC recomputed. */
    memcpy(f, fi.bytes, fi.len);
    {
        NvramDirectory x = d;
        for (unsigned i = 0; i < x.n_entries; i++) {
            x.entries[i].type = x.entries[i].type == TPM_STATE_BLOB_PERMANENT
                ? TPM_STATE_BLOB_VOLATILE : TPM_STATE_BLOB_PERMANENT;
        }
        nvram_dir_encode(&x, mac_key, f + NVRAM_SLOT_A_OFFSET);
    }
    test_file_write(fi.t.path, f, fi.len);
    open_expect_rejected(&fi, 0);

    /* 4. The current directory copied into the other slot's place. */
    memcpy(f, fi.bytes, fi.len);
    memcpy(f + NVRAM_SLOT_B_OFFSET, fi.bytes + NVRAM_SLOT_A_OFFSET, NVRAM_SLOT_SIZE);
    test_file_write(fi.t.path, f, fi.len);
    open_expect_rejected(&fi, 1);

    /* 5. The older directory (slot B) written over the newer one in slot A. */
    memcpy(f, fi.bytes, fi.len);
    {
        NvramDirectory x = old;
        x.slot_index = 0;
        nvram_dir_encode(&x, NULL, f + NVRAM_SLOT_A_OFFSET);
    }
    test_file_write(fi.t.path, f, fi.len);
    open_expect_rejected(&fi, 0);

    qcrypto_memwipe(mac_key, sizeof(mac_key));
    flip_image_free(&fi);
}

/*
 * An owner lock held with a classic POSIX lock (which, unlike an OFD lock,
 * has a pid) is reported with that pid, from the block layer's data.
 */
static void test_owner_lock_pid(void)
{
    TestImage t;
    NvramOpenOptions o = test_opts(true, false);
    BlockDriverState *bs;
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = 0x10000 + NVRAM_LOCK_ID_OWNER,   /* docs/block-layer.md "Locks" */
        .l_len = 1,
        .l_type = F_WRLCK,
    };
    g_autofree char *want = g_strdup_printf("(owner lock held by pid %ld)",
                                            (long)getpid());
    GError *err = NULL;
    int fd;

    make_store(&t, "raw", &o);
    fd = open(t.path, O_RDWR | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_SETLK, &fl), ==, 0);
    bs = test_bdrv_open(&t, false, false);
    g_assert_null(nvram_open(bs, &o, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_LOCKED);
    g_assert_nonnull(strstr(err->message, want));
    g_clear_error(&err);
    close(fd);
    nvram_close(open_ok(bs, &o));
    bdrv_close(bs);
    test_image_free(&t);
}

/* Two owners: the second is refused at once, naming the owner lock. */
static void test_owner_lock(gconstpointer data)
{
    const char *format = data;
    TestImage t;
    NvramOpenOptions o = test_opts(true, false);
    NvramOpenOptions r = test_opts(false, false);
    BlockDriverState *bs1, *bs2;
    NvramStore *s1, *rd;
    GError *err = NULL;
    g_autofree uint8_t *p = test_blob(100, 1);

    make_store(&t, format, &o);
    bs1 = test_bdrv_open(&t, false, false);
    s1 = open_ok(bs1, &o);

    /* A second writer is refused by the block layer's QEMU lock bytes... */
    {
        BlockOpenOptions bo = { .format = format };
        g_assert_null(bdrv_open(t.path, &bo, &err));
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_LOCKED);
        g_clear_error(&err);
    }
    /* ...and one that got past them (inactive, like a migration target) by ours. */
    bs2 = test_bdrv_open(&t, false, true);
    g_assert_null(nvram_open(bs2, &o, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_LOCKED);
    g_assert_nonnull(strstr(err->message, "owner lock"));
    g_assert_nonnull(strstr(err->message, t.path));
    g_clear_error(&err);

    /* Another process is refused the same way. */
    {
        pid_t pid = fork();
        int status;
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
            BlockDriverState *cbs = test_bdrv_open(&t, false, true);
            GError *cerr = NULL;
            NvramStore *cs = nvram_open(cbs, &o, &cerr);
            _exit(!cs && g_error_matches(cerr, QTPM_ERROR, QTPM_ERROR_LOCKED) &&
                  strstr(cerr->message, "owner lock") ? 0 : 1);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    }

    /* A reader is welcome while the owner runs, and sees its commits. */
    rd = open_ok(bs2, &r);
    store_ok(s1, TPM_STATE_BLOB_VOLATILE, p, 100);
    {
        uint8_t *d = NULL;
        size_t l = 0;
        int r = nvram_load(rd, TPM_STATE_BLOB_VOLATILE, &d, &l, &err);
        if (r != 1) {
            g_error("reader load: %d %s", r, err ? err->message : "");
        }
        g_assert_cmpmem(d, l, p, 100);
        g_free(d);
    }
    g_assert_cmpint(nvram_check(rd, &err), ==, 0);
    g_assert_no_error(err);

    /* Hand-off: the owner lets go, the other side takes over. */
    g_assert_cmpint(nvram_acquire_owner(rd, 0, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_LOCKED);
    g_clear_error(&err);
    nvram_release_owner(s1);
    g_assert_cmpint(nvram_acquire_owner(rd, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(nvram_acquire_owner(s1, 0, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_LOCKED);
    g_clear_error(&err);

    nvram_close(rd);
    nvram_close(s1);
    bdrv_close(bs2);
    bdrv_close(bs1);
    test_image_free(&t);
}

/* Blob @type of commit @k; its first 4 bytes say k. */
static uint8_t *reader_blob(TPMStateBlobType type, unsigned k, size_t *len)
{
    uint8_t *b;

    *len = type == TPM_STATE_BLOB_PERMANENT ? 3000 + (k % 50) * 1001 : 100 + k % 7;
    b = test_blob(*len, k * 4 + type);
    b[0] = k >> 24;
    b[1] = k >> 16;
    b[2] = k >> 8;
    b[3] = k;
    return b;
}

/* The commit @d belongs to, or -1 when it is no whole blob of any commit. */
static int reader_blob_commit(TPMStateBlobType type, const uint8_t *d, size_t len)
{
    unsigned k;
    size_t want_len;
    g_autofree uint8_t *want = NULL;

    if (len < 4) {
        return -1;
    }
    k = (unsigned)d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3];
    if (k > 100000) {
        return -1;
    }
    want = reader_blob(type, k, &want_len);
    return want_len == len && !memcmp(want, d, len) ? (int)k : -1;
}

/*
 * A reader process reads while the owner commits two blobs at a time:
 * every read is one whole commit, never a mix or a torn state.
 */
static void test_reader_during_commits(gconstpointer data)
{
    const char *format = data;
    /* Upper bounds only: the reader stops once it has seen enough commits. */
    enum { WANT_SEEN = 20, MAX_READS = 100000, MAX_COMMITS = 20000 };
    TestImage t;
    NvramOpenOptions o = test_opts(true, true);
    BlockDriverState *bs;
    NvramStore *s;
    int go[2];
    pid_t pid;
    int status;

    test_image_new(&t, format);
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    {
        size_t pl, vl;
        g_autofree uint8_t *p = reader_blob(TPM_STATE_BLOB_PERMANENT, 0, &pl);
        g_autofree uint8_t *v = reader_blob(TPM_STATE_BLOB_VOLATILE, 0, &vl);
        NvramBlobUpdate u[2] = { { TPM_STATE_BLOB_PERMANENT, p, pl },
                                 { TPM_STATE_BLOB_VOLATILE, v, vl } };
        g_assert_cmpint(nvram_commit(s, u, 2, NULL), ==, 0);
    }
    g_assert_cmpint(pipe(go), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        BlockDriverState *rbs = test_bdrv_open(&t, false, true);
        NvramOpenOptions r = test_opts(false, true);
        NvramStore *rs = nvram_open(rbs, &r, NULL);
        char c = 0;
        int reads = 0;

        if (!rs) {
            _exit(2);
        }
        close(go[0]);
        g_assert_cmpint(write(go[1], &c, 1), ==, 1);
        close(go[1]);
        /* Whole blobs only, and time never runs backwards. */
        int last_p = 0, last_v = 0, seen = 0;
        for (reads = 0; seen < WANT_SEEN; reads++) {
            uint8_t *p = NULL, *v = NULL;
            size_t pl = 0, vl = 0;
            int kp, kv;
            if (reads == MAX_READS) {
                _exit(5);
            }
            if (nvram_load(rs, TPM_STATE_BLOB_PERMANENT, &p, &pl, NULL) != 1 ||
                nvram_load(rs, TPM_STATE_BLOB_VOLATILE, &v, &vl, NULL) != 1) {
                _exit(3);
            }
            kp = reader_blob_commit(TPM_STATE_BLOB_PERMANENT, p, pl);
            kv = reader_blob_commit(TPM_STATE_BLOB_VOLATILE, v, vl);
            if (kp < last_p || kv < last_v || kv < kp) {
                _exit(4);
            }
            seen += kp > last_p;
            last_p = kp;
            last_v = kv;
            g_free(p);
            g_free(v);
        }
        nvram_close(rs);
        bdrv_close(rbs);
        _exit(0);
    }
    close(go[1]);
    {
        char c;
        g_assert_cmpint(read(go[0], &c, 1), ==, 1);
        close(go[0]);
    }
    for (unsigned k = 1; waitpid(pid, &status, WNOHANG) == 0; k++) {
        size_t pl, vl;
        g_autofree uint8_t *p = reader_blob(TPM_STATE_BLOB_PERMANENT, k, &pl);
        g_autofree uint8_t *v = reader_blob(TPM_STATE_BLOB_VOLATILE, k, &vl);
        NvramBlobUpdate u[2] = { { TPM_STATE_BLOB_PERMANENT, p, pl },
                                 { TPM_STATE_BLOB_VOLATILE, v, vl } };
        GError *err = NULL;
        if (k > MAX_COMMITS) {
            kill(pid, SIGKILL);
            g_error("the reader saw fewer than %d commits in %d", WANT_SEEN, MAX_COMMITS);
        }
        g_assert_cmpint(nvram_commit(s, u, 2, &err), ==, 0);
        g_assert_no_error(err);
    }
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    nvram_close(s);
    bdrv_close(bs);
    test_image_free(&t);
}

/* Rekey (raw key -> passphrase -> plain -> raw key). */
static void test_rekey(void)
{
    TestImage t;
    NvramOpenOptions o = test_opts(true, true);
    QCryptoKey pass = { QCRYPTO_KEY_PASSPHRASE, (const uint8_t *)"a passphrase", 12 };
    QCryptoKey none = { QCRYPTO_KEY_NONE, NULL, 0 };
    QCryptoKey raw = { QCRYPTO_KEY_RAW, test_key, 32 };
    g_autofree uint8_t *p = test_blob(5000, 21);
    g_autofree uint8_t *v = test_blob(300, 22);
    BlockDriverState *bs;
    NvramStore *s;
    NvramInfo info;
    GError *err = NULL;

    test_image_new(&t, "raw");
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    store_ok(s, TPM_STATE_BLOB_PERMANENT, p, 5000);
    store_ok(s, TPM_STATE_BLOB_VOLATILE, v, 300);

    g_assert_cmpint(nvram_rekey(s, &pass, 1000, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p, 5000));
    g_assert_cmpint(nvram_get_info(s, &info, NULL), ==, 0);
    g_assert_true(info.encrypted && info.passphrase);
    nvram_close(s);
    bdrv_close(bs);

    /* The old key is now wrong; the passphrase opens it. */
    assert_open_refused(&t, &o, QTPM_ERROR_WRONG_KEY, "wrong key");
    o.key = pass;
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_VOLATILE, v, 300));
    g_assert_cmpint(nvram_rekey(s, &none, 0, &err), ==, 0);
    g_assert_cmpint(nvram_get_info(s, &info, NULL), ==, 0);
    g_assert_false(info.encrypted);
    g_assert_cmpint(nvram_rekey(s, &raw, 0, &err), ==, 0);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p, 5000));
    nvram_close(s);
    bdrv_close(bs);

    /* Back on the first key. */
    o = test_opts(true, true);
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p, 5000));
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_VOLATILE, v, 300));
    nvram_close(s);
    bdrv_close(bs);
    test_image_free(&t);
}

/*
 * The newest slot, written under a new key, has a damaged blob; the older
 * slot is under the old key. The new key is the right one: the refusal
 * names the damage, not a wrong key.
 */
static void test_damage_after_rekey(void)
{
    TestImage t;
    NvramOpenOptions o = test_opts(true, true);
    QCryptoKey pass = { QCRYPTO_KEY_PASSPHRASE, (const uint8_t *)"a passphrase", 12 };
    g_autofree uint8_t *p = test_blob(3000, 31);
    g_autofree uint8_t *img = NULL;
    BlockDriverState *bs;
    NvramStore *s;
    NvramInfo info;
    GError *err = NULL;
    gsize len;

    test_image_new(&t, "raw");
    bs = test_bdrv_open(&t, false, false);
    s = open_ok(bs, &o);
    store_ok(s, TPM_STATE_BLOB_PERMANENT, p, 3000);
    g_assert_cmpint(nvram_rekey(s, &pass, 1000, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(nvram_get_info(s, &info, NULL), ==, 0);
    g_assert_cmpuint(info.n_blobs, ==, 1);
    nvram_close(s);
    bdrv_close(bs);

    img = test_file_read(t.path, &len);
    g_assert_cmpuint(info.blobs[0].offset + 10, <, len);
    img[info.blobs[0].offset + 10] ^= 0x01;
    test_file_write(t.path, img, len);

    o.key = pass;
    assert_open_refused(&t, &o, QTPM_ERROR_CORRUPT, "CRC mismatch");
    test_image_free(&t);
}

int main(int argc, char **argv)
{
    static const char *formats[] = { "raw", "qcow2" };

    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        const char *f = formats[i];
        g_autofree char *p1 = g_strdup_printf("/nvram/%s/basic", f);
        g_autofree char *p2 = g_strdup_printf("/nvram/%s/large-and-bounded", f);
        g_autofree char *p3 = g_strdup_printf("/nvram/%s/one-flush-per-commit", f);
        g_autofree char *p4 = g_strdup_printf("/nvram/%s/open-matrix", f);
        g_autofree char *p5 = g_strdup_printf("/nvram/%s/owner-lock", f);
        g_autofree char *p6 = g_strdup_printf("/nvram/%s/reader-during-commits", f);
        g_test_add_data_func(p1, f, test_basic);
        g_test_add_data_func(p2, f, test_large_and_bounded);
        g_test_add_data_func(p3, f, test_one_flush_per_commit);
        {
            g_autofree char *p = g_strdup_printf("/nvram/%s/two-flushes-per-commit", f);
            g_test_add_data_func(p, f, test_two_flushes_per_commit);
        }
        g_test_add_data_func(p4, f, test_open_matrix);
        g_test_add_data_func(p5, f, test_owner_lock);
        g_test_add_data_func(p6, f, test_reader_during_commits);
    }
    g_test_add_func("/nvram/raw/foreign-image", test_foreign_image);
    g_test_add_func("/nvram/raw/page-cache-dropped-after-reads",
                    test_page_cache_dropped_after_reads);
    g_test_add_func("/nvram/raw/owner-lock-pid", test_owner_lock_pid);
    g_test_add_func("/nvram/raw/newer-version-and-damage", test_newer_version_and_damage);
    g_test_add_data_func("/nvram/raw/bit-flips/plain", GINT_TO_POINTER(0), test_bit_flips);
    g_test_add_data_func("/nvram/raw/bit-flips/encrypted", GINT_TO_POINTER(1),
                         test_bit_flips);
    g_test_add_func("/nvram/raw/replay-and-swap", test_replay_and_swap);
    g_test_add_func("/nvram/raw/rekey", test_rekey);
    g_test_add_func("/nvram/raw/damage-after-rekey", test_damage_after_rekey);
    return g_test_run();
}
