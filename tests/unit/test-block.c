/*
 * Unit tests for the generic block layer (block/block.c), the raw and file
 * drivers, and the file locks.
 */
#include "qemu/osdep.h"

#include "block/block_int.h"

#include "unit-util.h"

typedef struct Fixture {
    char *dir;
    char *path;
} Fixture;

static void make_file(const char *path, size_t size, uint8_t fill)
{
    g_autofree uint8_t *buf = g_malloc(size + 1);

    memset(buf, fill, size + 1);
    g_assert_true(g_file_set_contents(path, (const char *)buf, size, NULL));
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("qtpm-test-block.XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->path = g_build_filename(f->dir, "disk.raw", NULL);
    make_file(f->path, 64 * 1024, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    unit_remove_dir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

static BlockDriverState *open_raw(const char *path, bool read_only,
                                  bool no_locking, bool inactive)
{
    BlockOpenOptions opts = {
        .format = "raw",
        .read_only = read_only,
        .no_locking = no_locking,
        .inactive = inactive,
    };
    GError *err = NULL;
    BlockDriverState *bs = bdrv_open(path, &opts, &err);

    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

static void assert_error_names(GError *err, const char *path, int code,
                               const char *text)
{
    g_autofree char *quoted = g_strdup_printf("'%s'", path);

    g_assert_nonnull(err);
    g_assert_error(err, QTPM_ERROR, code);
    g_assert_nonnull(strstr(err->message, quoted));
    if (text) {
        g_assert_nonnull(strstr(err->message, text));
    }
}

/* ------------------------------------------------------------------------ */
/* Opening */

static void test_open_missing(Fixture *f, gconstpointer data)
{
    g_autofree char *path = g_build_filename(f->dir, "nope.raw", NULL);
    GError *err = NULL;

    g_assert_null(bdrv_open(path, NULL, &err));
    assert_error_names(err, path, QTPM_ERROR_IO, "No such file");
    g_error_free(err);
}

static void test_open_bad_format(Fixture *f, gconstpointer data)
{
    BlockOpenOptions opts = { .format = "vmdk" };
    GError *err = NULL;

    g_assert_null(bdrv_open(f->path, &opts, &err));
    assert_error_names(err, f->path, QTPM_ERROR_UNSUPPORTED, "vmdk");
    g_error_free(err);
}

static void test_open_probe_raw(Fixture *f, gconstpointer data)
{
    BlockOpenOptions opts = { .format = "auto" };
    BlockDriverState *bs;
    GError *err = NULL;

    make_file(f->path, 4096, 0x5a);
    bs = bdrv_open(f->path, &opts, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "raw");
    g_assert_cmpstr(bdrv_get_filename(bs), ==, f->path);
    g_assert_cmpint(bdrv_getlength(bs, &err), ==, 4096);
    bdrv_close(bs);

    /* An empty file probes as raw too. */
    make_file(f->path, 0, 0);
    bs = bdrv_open(f->path, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "raw");
    g_assert_cmpint(bdrv_getlength(bs, &err), ==, 0);
    bdrv_close(bs);
}

static void test_open_directory(Fixture *f, gconstpointer data)
{
    BlockOpenOptions opts = { .format = "raw", .read_only = true };
    GError *err = NULL;

    g_assert_null(bdrv_open(f->dir, &opts, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, f->dir));
    g_error_free(err);
}

/* ------------------------------------------------------------------------ */
/* Raw I/O and request checks */

static void test_raw_io(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs = open_raw(f->path, false, false, false);
    uint8_t wbuf[3000], rbuf[3000];
    g_autofree char *contents = NULL;
    gsize len;
    GError *err = NULL;

    for (size_t i = 0; i < sizeof(wbuf); i++) {
        wbuf[i] = (uint8_t)(i * 7 + 3);
    }
    g_assert_cmpint(bdrv_pwrite(bs, 1001, sizeof(wbuf), wbuf, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_pread(bs, 1001, sizeof(rbuf), rbuf, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpmem(wbuf, sizeof(wbuf), rbuf, sizeof(rbuf));

    /* Last byte of the disk, and zero-length requests at the very end. */
    g_assert_cmpint(bdrv_pwrite(bs, 65535, 1, wbuf, &err), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 65536, 0, rbuf, &err), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 65536, 0, wbuf, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(bs);

    /* The bytes are really in the file, at the same offsets. */
    g_assert_true(g_file_get_contents(f->path, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, 65536);
    g_assert_cmpmem(contents + 1001, sizeof(wbuf), wbuf, sizeof(wbuf));
    g_assert_cmpint((uint8_t)contents[65535], ==, wbuf[0]);
    g_assert_cmpint(contents[1000], ==, 0);
    g_assert_cmpint(contents[4001], ==, 0);
}

static void test_request_past_end(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs = open_raw(f->path, false, false, false);
    uint8_t buf[16] = { 0 };
    GError *err = NULL;

    g_assert_cmpint(bdrv_pread(bs, 65530, 16, buf, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "past the end");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_pwrite(bs, 65530, 16, buf, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "past the end");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 65536, 1, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "past the end");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_pread(bs, -1, 1, buf, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "invalid request");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_pread(bs, 0, -5, buf, &err), <, 0);
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_cmpint(bdrv_pread(bs, INT64_MAX, INT64_MAX, buf, &err), <, 0);
    g_assert_nonnull(err);
    g_clear_error(&err);
    /* A failed write leaves the file as it was: its length did not change. */
    g_assert_cmpint(bdrv_getlength(bs, &err), ==, 65536);
    bdrv_close(bs);
}

static void test_read_only(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs = open_raw(f->path, true, false, false);
    uint8_t buf[16] = { 0 };
    GError *err = NULL;

    g_assert_true(bdrv_is_read_only(bs));
    g_assert_cmpint(bdrv_pread(bs, 0, 16, buf, &err), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 16, buf, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "read-only");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 16, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "read-only");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_truncate(bs, 1 << 20, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "read-only");
    g_clear_error(&err);
    /* Flushing a read-only image has nothing to do and succeeds. */
    g_assert_cmpint(bdrv_flush(bs, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(bs);
}

static void test_zeroes_and_truncate(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs;
    uint8_t buf[4096];
    GError *err = NULL;

    make_file(f->path, 8192, 0xff);
    bs = open_raw(f->path, false, false, false);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 100, 3000, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_pread(bs, 0, 4096, buf, &err), ==, 0);
    for (int i = 0; i < 4096; i++) {
        g_assert_cmpint(buf[i], ==, (i >= 100 && i < 3100) ? 0 : 0xff);
    }

    g_assert_cmpint(bdrv_truncate(bs, 16384, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_getlength(bs, &err), ==, 16384);
    g_assert_cmpint(bdrv_pread(bs, 8192, 4096, buf, &err), ==, 0);
    for (int i = 0; i < 4096; i++) {
        g_assert_cmpint(buf[i], ==, 0);
    }
    g_assert_cmpint(bdrv_truncate(bs, 4096, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_UNSUPPORTED, "shrink");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_getlength(bs, &err), ==, 16384);
    bdrv_close(bs);
}

static void test_flush_count(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs = open_raw(f->path, false, false, false);
    uint8_t buf[512] = { 1 };
    GError *err = NULL;

    g_assert_cmpuint(bdrv_get_flush_count(bs), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, &err), ==, 0);
    g_assert_cmpuint(bdrv_get_flush_count(bs), ==, 0);
    g_assert_cmpint(bdrv_flush(bs, &err), ==, 0);
    g_assert_cmpuint(bdrv_get_flush_count(bs), ==, 1);
    g_assert_cmpint(bdrv_flush(bs, &err), ==, 0);
    g_assert_cmpuint(bdrv_get_flush_count(bs), ==, 2);
    g_assert_no_error(err);
    bdrv_close(bs);
}

static int64_t allocated_bytes(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return (int64_t)st.st_blocks * 512;
}

static int64_t file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_size;
}

/*
 * A write past the blocks the file has (here into the hole a resize made, as
 * the raw store grows) reserves them up to the next MiB without changing
 * the file's length; writes inside the reservation reserve nothing more.
 */
static void test_reserve_past_end(Fixture *f, gconstpointer data)
{
    g_autofree char *probe = g_build_filename(f->dir, "probe", NULL);
    BlockDriverState *bs;
    uint8_t buf[4096];
    GError *err = NULL;
    int fd;

    fd = open(probe, O_RDWR | O_CREAT, 0600);
    g_assert_cmpint(fd, >=, 0);
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096) < 0) {
        close(fd);
        g_test_skip("the scratch file system cannot reserve blocks");
        return;
    }
    close(fd);

    memset(buf, 0x5a, sizeof(buf));
    bs = open_raw(f->path, false, false, false);
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, &err), ==, 0);
    g_assert_cmpint(allocated_bytes(f->path), <=, 64 * 1024);

    g_assert_cmpint(bdrv_truncate(bs, 68 * 1024, &err), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 64 * 1024, sizeof(buf), buf, &err), ==, 0);
    g_assert_cmpint(file_size(f->path), ==, 68 * 1024);
    g_assert_cmpint(allocated_bytes(f->path), >=, 1024 * 1024);
    g_assert_cmpint(bdrv_getlength(bs, &err), ==, 68 * 1024);

    g_assert_cmpint(bdrv_truncate(bs, 516 * 1024, &err), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 512 * 1024, sizeof(buf), buf, &err), ==, 0);
    g_assert_cmpint(file_size(f->path), ==, 516 * 1024);
    g_assert_cmpint(allocated_bytes(f->path), <, 1024 * 1024 + 64 * 1024);

    g_assert_no_error(err);
    bdrv_close(bs);
}

/*
 * A write far past the end (a hostile image's cluster offset, or any
 * sparse write) reserves around itself only, never the hole before it.
 */
static void test_reserve_sparse_write(Fixture *f, gconstpointer data)
{
    const int64_t far = 4LL << 30;
    BlockDriverState *bs;
    uint8_t buf[4096];
    GError *err = NULL;

    memset(buf, 0x3c, sizeof(buf));
    bs = open_raw(f->path, false, false, false);
    g_assert_cmpint(bdrv_truncate(bs, far + sizeof(buf), &err), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, far, sizeof(buf), buf, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(file_size(f->path), ==, far + (int64_t)sizeof(buf));
    g_assert_cmpint(allocated_bytes(f->path), <=, 64 * 1024 + 2 * 1024 * 1024);
    bdrv_close(bs);
}

/* Dropping the page cache forgets clean pages and keeps the data. */
static void test_drop_page_cache(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs;
    g_autofree uint8_t *buf = g_malloc(64 * 1024);
    g_autofree uint8_t *back = g_malloc(64 * 1024);
    GError *err = NULL;

    if (!unit_page_cache_droppable(f->path)) {
        g_test_skip("the scratch folder is on tmpfs, which has no page cache to drop");
        return;
    }
    bs = open_raw(f->path, false, false, false);
    memset(buf, 0xc3, 64 * 1024);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 64 * 1024, buf, &err), ==, 0);
    g_assert_cmpint(bdrv_flush(bs, &err), ==, 0);
    g_assert_cmpuint(unit_resident_pages(f->path, 0, 64 * 1024), >, 0);
    bdrv_drop_page_cache(bs);
    g_assert_cmpuint(unit_resident_pages(f->path, 0, 64 * 1024), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, 64 * 1024, back, &err), ==, 0);
    g_assert_true(memcmp(buf, back, 64 * 1024) == 0);
    g_assert_no_error(err);
    bdrv_close(bs);
}

static void test_info(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs = open_raw(f->path, true, false, false);
    g_autoptr(GString) info = g_string_new("");

    bdrv_get_info(bs, info);
    g_assert_nonnull(strstr(info->str, "file format: raw\n"));
    g_assert_nonnull(strstr(info->str, "virtual size: 65536\n"));
    g_assert_nonnull(strstr(info->str, "read-only: yes\n"));
    bdrv_close(bs);

    /* Every node of the stack adds its lines. */
    {
        BlockOpenOptions opts = { .format = "raw", .blkdebug = true };
        GError *err = NULL;

        bs = bdrv_open(f->path, &opts, &err);
        g_assert_no_error(err);
        g_string_truncate(info, 0);
        bdrv_get_info(bs, info);
        g_assert_nonnull(strstr(info->str, "blkdebug: 0 writes"));
        bdrv_close(bs);
    }
}

/* ------------------------------------------------------------------------ */
/* Alignment: a memory-backed test driver that insists on 512-byte requests */

#define ALIGN_DISK_SIZE 8192

typedef struct AlignDisk {
    uint8_t data[ALIGN_DISK_SIZE];
    unsigned misaligned;    /* requests that arrived unaligned */
    unsigned reads, writes;
} AlignDisk;

static bool align_ok(int64_t offset, int64_t bytes)
{
    return offset % 512 == 0 && bytes % 512 == 0;
}

static int align_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       void *buf, GError **errp)
{
    AlignDisk *d = bs->opaque;

    d->misaligned += !align_ok(offset, bytes);
    d->reads++;
    memcpy(buf, d->data + offset, bytes);
    return 0;
}

static int align_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                        const void *buf, GError **errp)
{
    AlignDisk *d = bs->opaque;

    d->misaligned += !align_ok(offset, bytes);
    d->writes++;
    memcpy(d->data + offset, buf, bytes);
    return 0;
}

static int64_t align_getlength(BlockDriverState *bs, GError **errp)
{
    return ALIGN_DISK_SIZE;
}

static const BlockDriver align_driver = {
    .format_name = "align-test",
    .bdrv_pread = align_pread,
    .bdrv_pwrite = align_pwrite,
    .bdrv_getlength = align_getlength,
};

static BlockDriverState *align_bs_new(void)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);
    AlignDisk *d = g_new0(AlignDisk, 1);

    for (int i = 0; i < ALIGN_DISK_SIZE; i++) {
        d->data[i] = (uint8_t)(i / 512 + 1);
    }
    bs->drv = &align_driver;
    bs->opaque = d;
    bs->filename = g_strdup("align-test");
    bs->request_alignment = 512;
    return bs;
}

static void align_bs_free(BlockDriverState *bs)
{
    g_free(bs->opaque);
    g_free(bs->filename);
    g_free(bs);
}

static void test_alignment_rmw(void)
{
    BlockDriverState *bs = align_bs_new();
    AlignDisk *d = bs->opaque;
    uint8_t expect[ALIGN_DISK_SIZE];
    uint8_t buf[ALIGN_DISK_SIZE];
    static const struct { int64_t off, len; } cases[] = {
        { 0, 512 }, { 1, 1 }, { 511, 2 }, { 100, 1000 }, { 512, 1 },
        { 1000, 3000 }, { 8191, 1 }, { 7680, 512 }, { 3, 8189 }, { 0, 8192 },
        { 1024, 100 }, { 1100, 948 },
    };
    GError *err = NULL;

    memcpy(expect, d->data, sizeof(expect));
    for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
        int64_t off = cases[c].off, len = cases[c].len;

        for (int64_t i = 0; i < len; i++) {
            buf[i] = (uint8_t)(0x80 + c + i);
        }
        g_assert_cmpint(bdrv_pwrite(bs, off, len, buf, &err), ==, 0);
        g_assert_no_error(err);
        memcpy(expect + off, buf, len);
        g_assert_cmpmem(d->data, sizeof(d->data), expect, sizeof(expect));

        memset(buf, 0, sizeof(buf));
        g_assert_cmpint(bdrv_pread(bs, off, len, buf, &err), ==, 0);
        g_assert_cmpmem(buf, len, expect + off, len);

        g_assert_cmpint(bdrv_pwrite_zeroes(bs, off, len, &err), ==, 0);
        memset(expect + off, 0, len);
        g_assert_cmpmem(d->data, sizeof(d->data), expect, sizeof(expect));
    }
    /* The driver never saw an unaligned request. */
    g_assert_cmpuint(d->misaligned, ==, 0);
    g_assert_cmpuint(d->writes, >, 0);
    align_bs_free(bs);
}

static void test_alignment_whole_blocks_no_read(void)
{
    BlockDriverState *bs = align_bs_new();
    AlignDisk *d = bs->opaque;
    uint8_t buf[1024] = { 0 };
    GError *err = NULL;

    g_assert_cmpint(bdrv_pwrite(bs, 512, 1024, buf, &err), ==, 0);
    g_assert_cmpuint(d->reads, ==, 0);
    g_assert_cmpuint(d->writes, ==, 1);
    /* An unaligned write inside one block reads that block once. */
    g_assert_cmpint(bdrv_pwrite(bs, 600, 10, buf, &err), ==, 0);
    g_assert_cmpuint(d->reads, ==, 1);
    g_assert_cmpuint(d->writes, ==, 2);
    g_assert_no_error(err);
    align_bs_free(bs);
}

/* ------------------------------------------------------------------------ */
/* Locks between two opens in one process */

static void assert_locked_error(GError *err, const char *path)
{
    assert_error_names(err, path, QTPM_ERROR_LOCKED,
                       "is locked by another process");
}

static void test_lock_exclusive_vs_exclusive(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, false, false, false);
    BlockDriverState *b = open_raw(f->path, false, false, true);
    GError *err = NULL;

    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_EXCLUSIVE, 0, &err), <, 0);
    assert_locked_error(err, f->path);
    /* The kernel does not name the owner of an OFD lock: no made-up pid. */
    g_assert_null(strstr(err->message, "pid"));
    g_clear_error(&err);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_SHARED, 0, &err), <, 0);
    assert_locked_error(err, f->path);
    g_clear_error(&err);

    bdrv_unlock(a);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), <, 0);
    assert_locked_error(err, f->path);
    g_clear_error(&err);
    bdrv_close(b);
    /* Closing the holder frees its locks. */
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(a);
}

static void test_lock_shared(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, true, false, false);
    BlockDriverState *b = open_raw(f->path, true, false, false);
    BlockDriverState *w = open_raw(f->path, false, false, false);
    GError *err = NULL;

    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_lock(w, BDRV_LOCK_EXCLUSIVE, 0, &err), <, 0);
    assert_locked_error(err, f->path);
    g_clear_error(&err);
    bdrv_unlock(a);
    g_assert_cmpint(bdrv_lock(w, BDRV_LOCK_EXCLUSIVE, 0, &err), <, 0);
    g_clear_error(&err);
    bdrv_unlock(b);
    g_assert_cmpint(bdrv_lock(w, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_no_error(err);

    /* A read-only open cannot hold an exclusive lock. */
    bdrv_unlock(w);
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "read-write");
    g_clear_error(&err);
    bdrv_close(a);
    bdrv_close(b);
    bdrv_close(w);
}

static void test_lock_conversion(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, false, false, false);
    BlockDriverState *b = open_raw(f->path, false, false, true);
    GError *err = NULL;

    /* Shared -> exclusive while nobody else holds it. */
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    bdrv_unlock(b);
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_SHARED, 0, &err), <, 0);
    assert_locked_error(err, f->path);
    g_clear_error(&err);
    bdrv_unlock(a);
    bdrv_unlock(a);
    g_assert_cmpuint(a->lock_depth[0], ==, 0);

    /* Conversion refused while another holds it shared; stays shared. */
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), <, 0);
    assert_locked_error(err, f->path);
    g_clear_error(&err);
    g_assert_cmpuint(a->lock_depth[0], ==, 1);
    g_assert_cmpint(a->lock_mode[0], ==, BDRV_LOCK_SHARED);
    bdrv_unlock(b);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_EXCLUSIVE, 0, &err), <, 0);
    g_clear_error(&err);
    bdrv_unlock(a);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(a);
    bdrv_close(b);
}

static void test_lock_nesting(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, false, false, false);
    BlockDriverState *b = open_raw(f->path, false, false, true);
    GError *err = NULL;

    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    /* Shared inside exclusive keeps the exclusive lock. */
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(a->lock_depth[0], ==, 3);
    for (int i = 0; i < 2; i++) {
        bdrv_unlock(a);
        g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_SHARED, 0, &err), <, 0);
        assert_locked_error(err, f->path);
        g_clear_error(&err);
    }
    bdrv_unlock(a);
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_no_error(err);
    /* Unlocking more often than locking is harmless. */
    bdrv_unlock(a);
    g_assert_cmpuint(a->lock_depth[0], ==, 0);
    bdrv_close(a);
    bdrv_close(b);
}

static void test_lock_ids(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, false, false, false);
    BlockDriverState *b = open_raw(f->path, false, false, true);
    GError *err = NULL;

    g_assert_cmpint(bdrv_lock_id(a, 1, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    /* Other ids are independent. */
    g_assert_cmpint(bdrv_lock_id(b, 0, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_cmpint(bdrv_lock_id(b, 2, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_lock_id(b, 1, BDRV_LOCK_SHARED, 0, &err), <, 0);
    assert_locked_error(err, f->path);
    g_clear_error(&err);
    g_assert_cmpint(bdrv_lock_id(a, BDRV_LOCK_ID_MAX, BDRV_LOCK_SHARED, 0,
                                 &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "out of range");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_lock_id(a, 0, 0, 0, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "mode");
    g_clear_error(&err);
    bdrv_unlock_id(a, 1);
    g_assert_cmpint(bdrv_lock_id(b, 1, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(a);
    bdrv_close(b);
}

static void test_lock_timeout(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, false, false, false);
    BlockDriverState *b = open_raw(f->path, false, false, true);
    GError *err = NULL;
    gint64 start;

    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    start = g_get_monotonic_time();
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_EXCLUSIVE, 60, &err), <, 0);
    /* It waited (at least) its timeout before giving up. */
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 60 * 1000);
    assert_locked_error(err, f->path);
    g_clear_error(&err);
    bdrv_close(a);
    bdrv_close(b);
}

typedef struct UnlockLater {
    BlockDriverState *bs;
    gint released;
} UnlockLater;

static gpointer unlock_later_thread(gpointer opaque)
{
    UnlockLater *u = opaque;

    g_usleep(100 * 1000);
    g_atomic_int_set(&u->released, 1);
    bdrv_unlock(u->bs);
    return NULL;
}

static void test_lock_waiter_succeeds(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, false, false, false);
    BlockDriverState *b = open_raw(f->path, false, false, true);
    UnlockLater u = { .bs = a };
    GThread *t;
    GError *err = NULL;

    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    t = g_thread_new("unlock", unlock_later_thread, &u);
    /* A generous upper bound: the holder lets go after about 100 ms. */
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_EXCLUSIVE, 30000, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(g_atomic_int_get(&u.released), ==, 1);
    g_thread_join(t);

    /* Waiting forever works the same way. */
    u.bs = b;
    u.released = 0;
    t = g_thread_new("unlock", unlock_later_thread, &u);
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_SHARED, -1, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(g_atomic_int_get(&u.released), ==, 1);
    g_thread_join(t);
    bdrv_close(a);
    bdrv_close(b);
}

/* Is byte @off of @path locked by anyone (a conflicting F_WRLCK test)? */
static bool byte_locked(const char *path, off_t off)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = off, .l_len = 1, .l_type = F_WRLCK,
    };

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_OFD_GETLK, &fl), ==, 0);
    close(fd);
    return fl.l_type != F_UNLCK;
}

static void test_lock_off(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, false, false, false);
    BlockDriverState *b = open_raw(f->path, false, true, false);
    GError *err = NULL;

    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    /* locking=off: the lock call succeeds without taking anything. */
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_unlock(b);
    bdrv_close(a);
    g_assert_false(byte_locked(f->path, 0x10000));
    g_assert_cmpint(bdrv_lock(b, BDRV_LOCK_EXCLUSIVE, 0, &err), ==, 0);
    for (off_t off = 100; off < 104; off++) {
        g_assert_false(byte_locked(f->path, off));
        g_assert_false(byte_locked(f->path, off + 100));
    }
    g_assert_false(byte_locked(f->path, 0x10000));
    bdrv_close(b);
}

/* A classic POSIX lock names its owner, so the error can too. */
static void test_lock_error_pid(Fixture *f, gconstpointer data)
{
    BlockDriverState *a = open_raw(f->path, false, false, false);
    int fd = open(f->path, O_RDWR | O_CLOEXEC);
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = 0x10000, .l_len = 1,
        .l_type = F_WRLCK,
    };
    g_autofree char *pid = g_strdup_printf("(pid %ld)", (long)getpid());
    GError *err = NULL;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_SETLK, &fl), ==, 0);
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_SHARED, 0, &err), <, 0);
    assert_locked_error(err, f->path);
    g_assert_nonnull(strstr(err->message, pid));
    g_clear_error(&err);
    close(fd);
    g_assert_cmpint(bdrv_lock(a, BDRV_LOCK_SHARED, 0, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(a);
}

static void test_qemu_lock_bytes(Fixture *f, gconstpointer data)
{
    BlockDriverState *w, *r, *second;
    GError *err = NULL;

    /* A writer holds read, write, write-unchanged and resize (100..103) and
     * does not share write and resize (201, 203). */
    w = open_raw(f->path, false, false, false);
    for (off_t off = 100; off < 104; off++) {
        g_assert_true(byte_locked(f->path, off));
    }
    g_assert_false(byte_locked(f->path, 200));
    g_assert_true(byte_locked(f->path, 201));
    g_assert_false(byte_locked(f->path, 202));
    g_assert_true(byte_locked(f->path, 203));

    /* A second writer is refused at open; a reader is welcome. */
    {
        BlockOpenOptions opts = { .format = "raw" };

        second = bdrv_open(f->path, &opts, &err);
        g_assert_null(second);
        assert_error_names(err, f->path, QTPM_ERROR_LOCKED,
                           "is locked by another process "
                           "(QEMU or qtpm is writing it)");
        g_clear_error(&err);
    }
    r = open_raw(f->path, true, false, false);
    bdrv_close(w);

    /* A reader holds consistent-read only and shares everything. */
    g_assert_true(byte_locked(f->path, 100));
    for (off_t off = 101; off < 104; off++) {
        g_assert_false(byte_locked(f->path, off));
    }
    for (off_t off = 200; off < 204; off++) {
        g_assert_false(byte_locked(f->path, off));
    }
    w = open_raw(f->path, false, false, false);
    bdrv_close(w);
    bdrv_close(r);
    g_assert_false(byte_locked(f->path, 100));
}

static void test_inactive(Fixture *f, gconstpointer data)
{
    BlockDriverState *src = open_raw(f->path, false, false, false);
    BlockDriverState *dst = open_raw(f->path, false, false, true);
    uint8_t buf[512];
    GError *err = NULL;

    memset(buf, 0x42, sizeof(buf));
    g_assert_true(bdrv_is_inactive(dst));
    g_assert_cmpint(bdrv_pread(dst, 0, 512, buf, &err), ==, 0);
    g_assert_cmpint(bdrv_pwrite(dst, 0, 512, buf, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "inactive");
    g_clear_error(&err);
    /* Format drivers cannot write metadata behind the owner's back either. */
    g_assert_cmpint(bdrv_file_pwrite(dst, 0, 512, buf, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_INVALID, "inactive");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_file_truncate(dst, 1 << 20, &err), <, 0);
    g_clear_error(&err);
    /* The source still writes: activation fails and changes nothing. */
    g_assert_cmpint(bdrv_activate(dst, &err), <, 0);
    assert_error_names(err, f->path, QTPM_ERROR_LOCKED, "writing it");
    g_clear_error(&err);
    g_assert_true(bdrv_is_inactive(dst));
    g_assert_true(byte_locked(f->path, 201));

    /* Hand-off: the source steps back, the target takes over. */
    g_assert_cmpint(bdrv_inactivate(src, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(byte_locked(f->path, 101));
    g_assert_false(byte_locked(f->path, 201));
    g_assert_cmpint(bdrv_pwrite(src, 0, 512, buf, &err), <, 0);
    g_clear_error(&err);
    g_assert_cmpint(bdrv_activate(dst, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(bdrv_is_inactive(dst));
    g_assert_cmpint(bdrv_pwrite(dst, 0, 512, buf, &err), ==, 0);
    g_assert_true(byte_locked(f->path, 201));
    /* Fail-back is refused while the target is active. */
    g_assert_cmpint(bdrv_activate(src, &err), <, 0);
    g_clear_error(&err);
    bdrv_close(dst);
    g_assert_cmpint(bdrv_activate(src, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_pwrite(src, 0, 512, buf, &err), ==, 0);
    bdrv_close(src);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) \
    g_test_add("/block/" name, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    ADD("open/missing", test_open_missing);
    ADD("open/bad-format", test_open_bad_format);
    ADD("open/probe-raw", test_open_probe_raw);
    ADD("open/directory", test_open_directory);
    ADD("raw/io", test_raw_io);
    ADD("request/past-end", test_request_past_end);
    ADD("request/read-only", test_read_only);
    ADD("raw/zeroes-truncate", test_zeroes_and_truncate);
    ADD("flush-count", test_flush_count);
    ADD("file/reserve-past-end", test_reserve_past_end);
    ADD("file/reserve-sparse-write", test_reserve_sparse_write);
    ADD("file/drop-page-cache", test_drop_page_cache);
    ADD("info", test_info);
    g_test_add_func("/block/request/alignment-rmw", test_alignment_rmw);
    g_test_add_func("/block/request/alignment-no-extra-read",
                    test_alignment_whole_blocks_no_read);
    ADD("lock/exclusive", test_lock_exclusive_vs_exclusive);
    ADD("lock/shared", test_lock_shared);
    ADD("lock/conversion", test_lock_conversion);
    ADD("lock/nesting", test_lock_nesting);
    ADD("lock/ids", test_lock_ids);
    ADD("lock/timeout", test_lock_timeout);
    ADD("lock/waiter-succeeds", test_lock_waiter_succeeds);
    ADD("lock/off", test_lock_off);
    ADD("lock/error-pid", test_lock_error_pid);
    ADD("lock/qemu-bytes", test_qemu_lock_bytes);
    ADD("inactive", test_inactive);
#undef ADD
    return g_test_run();
}
