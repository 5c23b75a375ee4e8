/*
 * Unit tests for blkdebug (block/blkdebug.c): injected errors, torn writes,
 * crashes and power loss over a raw image.
 */
#include "qemu/osdep.h"

#include "block/blkdebug.h"
#include "block/block.h"

#define DISK_SIZE 8192

typedef struct Fixture {
    char *dir;
    char *path;
    BlockDriverState *bs;
    BlkdebugState *bd;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *zero = g_malloc0(DISK_SIZE);
    BlockOpenOptions opts = { .format = "raw", .blkdebug = true };
    GError *err = NULL;

    f->dir = g_dir_make_tmp("qtpm-test-blkdebug.XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->path = g_build_filename(f->dir, "disk.raw", NULL);
    g_assert_true(g_file_set_contents(f->path, (const char *)zero, DISK_SIZE,
                                      NULL));
    f->bs = bdrv_open(f->path, &opts, &err);
    g_assert_no_error(err);
    f->bd = bdrv_get_blkdebug(f->bs);
    g_assert_nonnull(f->bd);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    bdrv_close(f->bs);
    unlink(f->path);
    rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

static int write_pattern(Fixture *f, int64_t off, int64_t len, uint8_t pat)
{
    g_autofree uint8_t *buf = g_malloc(len);
    GError *err = NULL;
    int ret;

    memset(buf, pat, len);
    ret = bdrv_pwrite(f->bs, off, len, buf, &err);
    if (ret < 0) {
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message, f->path));
        g_error_free(err);
    } else {
        g_assert_no_error(err);
    }
    return ret;
}

/* The file's bytes as they are on disk, read without blkdebug. */
static uint8_t *disk_contents(Fixture *f, gsize *len)
{
    char *contents;

    g_assert_true(g_file_get_contents(f->path, &contents, len, NULL));
    return (uint8_t *)contents;
}

static void assert_range(const uint8_t *buf, int64_t off, int64_t len,
                         uint8_t pat)
{
    for (int64_t i = off; i < off + len; i++) {
        if (buf[i] != pat) {
            g_error("byte %" PRId64 " is 0x%02x, expected 0x%02x", i, buf[i],
                    pat);
        }
    }
}

static void test_no_blkdebug(void)
{
    g_autofree char *dir = g_dir_make_tmp("qtpm-test-blkdebug.XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "d.raw", NULL);
    BlockDriverState *bs;

    g_assert_true(g_file_set_contents(path, "x", 1, NULL));
    bs = bdrv_open(path, NULL, NULL);
    g_assert_nonnull(bs);
    g_assert_null(bdrv_get_blkdebug(bs));
    bdrv_close(bs);
    unlink(path);
    rmdir(dir);
}

static void test_counts(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    const BlkdebugWrite *w;

    g_assert_cmpuint(blkdebug_write_count(f->bd), ==, 0);
    g_assert_cmpint(write_pattern(f, 0, 512, 1), ==, 0);
    g_assert_cmpint(write_pattern(f, 1000, 10, 2), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(f->bs, 2048, 512, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(blkdebug_write_count(f->bd), ==, 3);
    g_assert_cmpuint(blkdebug_unflushed_count(f->bd), ==, 3);
    w = blkdebug_unflushed_write(f->bd, 1);
    g_assert_nonnull(w);
    g_assert_cmpint(w->offset, ==, 1000);
    g_assert_cmpint(w->bytes, ==, 10);
    g_assert_cmpint(w->old_data[0], ==, 0);
    g_assert_cmpint(w->new_data[9], ==, 2);
    g_assert_null(blkdebug_unflushed_write(f->bd, 3));

    g_assert_cmpint(bdrv_flush(f->bs, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(blkdebug_flush_count(f->bd), ==, 1);
    g_assert_cmpuint(bdrv_get_flush_count(f->bs), ==, 1);
    g_assert_cmpuint(blkdebug_unflushed_count(f->bd), ==, 0);
    g_assert_cmpuint(blkdebug_write_count(f->bd), ==, 3);

    blkdebug_reset(f->bd);
    g_assert_cmpuint(blkdebug_write_count(f->bd), ==, 0);
    g_assert_cmpuint(blkdebug_flush_count(f->bd), ==, 0);
}

static void test_fail_write(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *disk = NULL;
    gsize len;

    g_assert_cmpint(write_pattern(f, 0, 512, 1), ==, 0);
    blkdebug_fail_write(f->bd, 2);
    g_assert_cmpint(write_pattern(f, 512, 512, 2), ==, 0);
    g_assert_cmpint(write_pattern(f, 1024, 512, 3), ==, -EIO);
    /* One shot: the next write works again. */
    g_assert_cmpint(write_pattern(f, 1536, 512, 4), ==, 0);
    g_assert_false(blkdebug_is_crashed(f->bd));
    g_assert_cmpuint(blkdebug_write_count(f->bd), ==, 4);

    disk = disk_contents(f, &len);
    assert_range(disk, 0, 512, 1);
    assert_range(disk, 512, 512, 2);
    assert_range(disk, 1024, 512, 0);
    assert_range(disk, 1536, 512, 4);
}

static void test_fail_flush(Fixture *f, gconstpointer data)
{
    GError *err = NULL;

    g_assert_cmpint(write_pattern(f, 0, 512, 1), ==, 0);
    blkdebug_fail_flush(f->bd, 1);
    g_assert_cmpint(bdrv_flush(f->bs, &err), ==, -EIO);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, f->path));
    g_clear_error(&err);
    /* The write is still unflushed; the failed flush never reached the file. */
    g_assert_cmpuint(blkdebug_unflushed_count(f->bd), ==, 1);
    g_assert_cmpuint(bdrv_get_flush_count(f->bs), ==, 0);
    g_assert_cmpint(bdrv_flush(f->bs, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(blkdebug_unflushed_count(f->bd), ==, 0);
    g_assert_cmpuint(bdrv_get_flush_count(f->bs), ==, 1);
}

static void assert_crashed(Fixture *f)
{
    uint8_t buf[16];
    GError *err = NULL;

    g_assert_true(blkdebug_is_crashed(f->bd));
    g_assert_cmpint(bdrv_pread(f->bs, 0, 16, buf, &err), <, 0);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_IO);
    g_clear_error(&err);
    g_assert_cmpint(write_pattern(f, 0, 16, 9), ==, -EIO);
    g_assert_cmpint(bdrv_flush(f->bs, &err), <, 0);
    g_clear_error(&err);
}

static void test_tear_write(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *disk = NULL;
    gsize len;

    blkdebug_tear_write(f->bd, 2, 1000);
    g_assert_cmpint(write_pattern(f, 4096, 512, 1), ==, 0);
    g_assert_cmpint(write_pattern(f, 0, 4096, 0xaa), ==, -EIO);
    assert_crashed(f);
    g_assert_cmpuint(blkdebug_unflushed_count(f->bd), ==, 2);
    g_assert_cmpint(blkdebug_unflushed_write(f->bd, 1)->bytes, ==, 1000);

    disk = disk_contents(f, &len);
    g_assert_cmpuint(len, ==, DISK_SIZE);
    assert_range(disk, 0, 1000, 0xaa);
    assert_range(disk, 1000, 3096, 0);
    assert_range(disk, 4096, 512, 1);

    /* reset ends the crash. */
    blkdebug_reset(f->bd);
    g_assert_cmpint(write_pattern(f, 0, 16, 3), ==, 0);
}

static void test_crash_at_write(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *disk = NULL;
    gsize len;

    g_assert_cmpint(write_pattern(f, 0, 512, 1), ==, 0);
    /* Counted from the call: the next write. */
    blkdebug_crash_at_write(f->bd, 1);
    g_assert_cmpint(write_pattern(f, 512, 512, 2), ==, -EIO);
    assert_crashed(f);
    disk = disk_contents(f, &len);
    assert_range(disk, 0, 512, 1);
    assert_range(disk, 512, 512, 0);
}

/* Three unflushed writes, A overlapping B, C apart, over a flushed base. */
static void write_abc(Fixture *f)
{
    GError *err = NULL;

    g_assert_cmpint(write_pattern(f, 0, 4096, 7), ==, 0);
    g_assert_cmpint(bdrv_flush(f->bs, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(write_pattern(f, 0, 512, 1), ==, 0);     /* A */
    g_assert_cmpint(write_pattern(f, 256, 512, 2), ==, 0);   /* B */
    g_assert_cmpint(write_pattern(f, 2048, 512, 3), ==, 0);  /* C */
    g_assert_cmpuint(blkdebug_unflushed_count(f->bd), ==, 3);
}

static void test_power_loss_masks(Fixture *f, gconstpointer data)
{
    /* For each subset of {A, B, C} lost, the disk a power loss leaves. */
    for (uint64_t mask = 0; mask < 8; mask++) {
        g_autofree uint8_t *disk = NULL;
        GError *err = NULL;
        gsize len;
        bool lose_a = mask & 1, lose_b = mask & 2, lose_c = mask & 4;

        blkdebug_reset(f->bd);
        write_abc(f);
        g_assert_cmpint(blkdebug_power_loss_mask(f->bd, mask, &err), ==, 0);
        g_assert_no_error(err);
        assert_crashed(f);

        disk = disk_contents(f, &len);
        g_assert_cmpuint(len, ==, DISK_SIZE);
        assert_range(disk, 0, 256, lose_a ? 7 : 1);
        assert_range(disk, 256, 256, lose_b ? (lose_a ? 7 : 1) : 2);
        assert_range(disk, 512, 256, lose_b ? 7 : 2);
        assert_range(disk, 768, 2048 - 768, 7);
        assert_range(disk, 2048, 512, lose_c ? 7 : 3);
        assert_range(disk, 2560, 4096 - 2560, 7);
        assert_range(disk, 4096, DISK_SIZE - 4096, 0);
    }
}

static bool lose_offsets_above_1k(unsigned index, const BlkdebugWrite *w,
                                  void *opaque)
{
    unsigned *calls = opaque;

    g_assert_cmpuint(index, ==, *calls);
    (*calls)++;
    return w->offset >= 1024;
}

static void test_power_loss_callback(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *disk = NULL;
    unsigned calls = 0;
    GError *err = NULL;
    gsize len;

    write_abc(f);
    g_assert_cmpint(blkdebug_power_loss(f->bd, lose_offsets_above_1k, &calls,
                                        &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(calls, ==, 3);
    disk = disk_contents(f, &len);
    assert_range(disk, 0, 256, 1);
    assert_range(disk, 256, 512, 2);
    assert_range(disk, 2048, 512, 7);
}

static void test_power_loss_after_crash(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *disk = NULL;
    GError *err = NULL;
    gsize len;

    /* Crash in a torn write, then lose the earlier unflushed write too. */
    g_assert_cmpint(write_pattern(f, 0, 4096, 7), ==, 0);
    g_assert_cmpint(bdrv_flush(f->bs, &err), ==, 0);
    g_assert_cmpint(write_pattern(f, 0, 512, 1), ==, 0);
    blkdebug_tear_write(f->bd, 1, 100);
    g_assert_cmpint(write_pattern(f, 1024, 512, 2), ==, -EIO);
    g_assert_cmpint(blkdebug_power_loss_mask(f->bd, 1, &err), ==, 0);
    g_assert_no_error(err);
    disk = disk_contents(f, &len);
    assert_range(disk, 0, 1024, 7);
    assert_range(disk, 1024, 100, 2);
    assert_range(disk, 1124, 4096 - 1124, 7);
}

static void test_power_loss_undoes_growth(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *disk = NULL;
    GError *err = NULL;
    gsize len;

    g_assert_cmpint(bdrv_flush(f->bs, &err), ==, 0);
    g_assert_cmpint(bdrv_truncate(f->bs, 2 * DISK_SIZE, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(write_pattern(f, 0, 512, 1), ==, 0);
    g_assert_cmpint(write_pattern(f, DISK_SIZE, 512, 2), ==, 0);

    /* Keeping the write past the old end keeps the file that long. */
    g_assert_cmpint(blkdebug_power_loss_mask(f->bd, 1, &err), ==, 0);
    disk = disk_contents(f, &len);
    g_assert_cmpuint(len, ==, DISK_SIZE + 512);
    assert_range(disk, 0, 512, 0);
    assert_range(disk, DISK_SIZE, 512, 2);
    g_free(g_steal_pointer(&disk));

    /* Losing it brings the file back to its flushed length. */
    blkdebug_reset(f->bd);
    g_assert_cmpint(bdrv_truncate(f->bs, 2 * DISK_SIZE, &err), ==, 0);
    g_assert_cmpint(write_pattern(f, DISK_SIZE + 512, 512, 3), ==, 0);
    g_assert_cmpint(blkdebug_power_loss_mask(f->bd, 1, &err), ==, 0);
    g_assert_no_error(err);
    disk = disk_contents(f, &len);
    g_assert_cmpuint(len, ==, DISK_SIZE + 512);
}

static void test_zero_writes_recorded(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *disk = NULL;
    GError *err = NULL;
    gsize len;

    g_assert_cmpint(write_pattern(f, 0, 1024, 5), ==, 0);
    g_assert_cmpint(bdrv_flush(f->bs, &err), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(f->bs, 0, 1024, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(blkdebug_unflushed_count(f->bd), ==, 1);
    g_assert_cmpint(blkdebug_power_loss_mask(f->bd, 1, &err), ==, 0);
    disk = disk_contents(f, &len);
    assert_range(disk, 0, 1024, 5);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/blkdebug/absent", test_no_blkdebug);
#define ADD(name, fn) \
    g_test_add("/blkdebug/" name, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    ADD("counts", test_counts);
    ADD("fail-write", test_fail_write);
    ADD("fail-flush", test_fail_flush);
    ADD("tear-write", test_tear_write);
    ADD("crash-at-write", test_crash_at_write);
    ADD("power-loss/masks", test_power_loss_masks);
    ADD("power-loss/callback", test_power_loss_callback);
    ADD("power-loss/after-crash", test_power_loss_after_crash);
    ADD("power-loss/undoes-growth", test_power_loss_undoes_growth);
    ADD("power-loss/zero-writes", test_zero_writes_recorded);
#undef ADD
    return g_test_run();
}
