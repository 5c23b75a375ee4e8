/*
 * Unit tests for the qcow2 driver (block/qcow2*.c): create, read/write
 * through the block layer, flush budget, zero writes, growth, feature bits
 * and crash consistency with blkdebug. Images are checked with Debian's
 * qemu-img (qemu-utils), the reference implementation.
 */
#include "qemu/osdep.h"

#include "block/blkdebug.h"
#include "block/block_int.h"

#include "unit-util.h"

typedef struct Fixture {
    char *dir;
    char *path;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("qtpm-test-qcow2.XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->path = g_build_filename(f->dir, "tpm.qcow2", NULL);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    unit_remove_dir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

/* Runs a command; returns its exit status, output in *out (may be NULL). */
static int run(char **out, const char *first, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *o = NULL, *e = NULL;
    GError *err = NULL;
    const char *a;
    va_list ap;
    int status;

    g_ptr_array_add(argv, (gpointer)first);
    va_start(ap, first);
    while ((a = va_arg(ap, const char *))) {
        g_ptr_array_add(argv, (gpointer)a);
    }
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL,
                               G_SPAWN_SEARCH_PATH, NULL, NULL, &o, &e,
                               &status, &err));
    g_assert_no_error(err);
    if (out) {
        *out = g_strconcat(o, e, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* qemu-img check: 0 clean, 2 corrupt, 3 leaks only. */
static int qemu_img_check(const char *path, char **out)
{
    return run(out, "qemu-img", "check", "-f", "qcow2", path, NULL);
}

static void assert_check_clean(const char *path)
{
    g_autofree char *out = NULL;
    int rc = qemu_img_check(path, &out);

    if (rc != 0 || strstr(out, "leaked")) {
        g_test_message("%s", out);
    }
    g_assert_cmpint(rc, ==, 0);
    g_assert_null(strstr(out, "leaked"));
}

static BlockDriverState *open_img(const char *path, bool read_only,
                                  bool blkdebug, GError **errp)
{
    BlockOpenOptions opts = {
        .format = "qcow2",
        .read_only = read_only,
        .no_locking = true,
        .blkdebug = blkdebug,
    };

    return bdrv_open(path, &opts, errp);
}

static BlockDriverState *open_ok(const char *path)
{
    GError *err = NULL;
    BlockDriverState *bs = open_img(path, false, false, &err);

    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

static void create_ok(const char *path, uint64_t size, uint32_t cluster_size,
                      int refcount_bits)
{
    Qcow2CreateOptions o = { .cluster_size = cluster_size,
                             .refcount_bits = refcount_bits };
    GError *err = NULL;

    g_assert_cmpint(qcow2_create(path, size, &o, &err), ==, 0);
    g_assert_no_error(err);
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = seed >> 16;
    }
}

static void write_ok(BlockDriverState *bs, int64_t off, int64_t len,
                     const uint8_t *buf)
{
    GError *err = NULL;

    g_assert_cmpint(bdrv_pwrite(bs, off, len, buf, &err), ==, 0);
    g_assert_no_error(err);
}

static void read_expect(BlockDriverState *bs, int64_t off, int64_t len,
                        const uint8_t *expect)
{
    g_autofree uint8_t *buf = g_malloc(len);
    GError *err = NULL;

    g_assert_cmpint(bdrv_pread(bs, off, len, buf, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(memcmp(buf, expect, len) == 0);
}

static int64_t file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_size;
}

/* ------------------------------------------------------------------------ */

static void test_create_default(Fixture *f, gconstpointer data)
{
    g_autofree char *out = NULL;
    g_autoptr(GString) info = g_string_new(NULL);
    BlockDriverState *bs;

    create_ok(f->path, 4 * 1024 * 1024, 0, 0);
    assert_check_clean(f->path);
    g_assert_cmpint(run(&out, "qemu-img", "info", f->path, NULL), ==, 0);
    g_assert_nonnull(strstr(out, "cluster_size: 4096"));
    g_assert_nonnull(strstr(out, "compat: 1.1"));
    g_assert_nonnull(strstr(out, "refcount bits: 16"));
    g_assert_nonnull(strstr(out, "virtual size: 4 MiB"));

    bs = open_ok(f->path);
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "qcow2");
    g_assert_cmpint(bdrv_getlength(bs, NULL), ==, 4 * 1024 * 1024);
    bdrv_get_info(bs, info);
    g_assert_nonnull(strstr(info->str, "cluster_size: 4096\n"));
    g_assert_nonnull(strstr(info->str, "version: 3\n"));
    g_assert_nonnull(strstr(info->str, "refcount_bits: 16\n"));
    bdrv_close(bs);
}

static void test_create_mode(Fixture *f, gconstpointer data)
{
    Qcow2CreateOptions o = { .mode = 0600 };
    struct stat st;
    mode_t old = umask(022);

    g_assert_cmpint(qcow2_create(f->path, 1024 * 1024, &o, NULL), ==, 0);
    umask(old);
    g_assert_cmpint(stat(f->path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

static void test_create_bad_options(Fixture *f, gconstpointer data)
{
    Qcow2CreateOptions o = { .cluster_size = 3000 };
    GError *err = NULL;

    g_assert_cmpint(qcow2_create(f->path, 1024 * 1024, &o, &err), <, 0);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "cluster size 3000"));
    g_clear_error(&err);
    o.cluster_size = 0;
    o.refcount_bits = 12;
    g_assert_cmpint(qcow2_create(f->path, 1024 * 1024, &o, &err), <, 0);
    g_assert_nonnull(strstr(err->message, "refcount bits 12"));
    g_clear_error(&err);
}

/*
 * Creating over an image that a read-write open holds (here, or QEMU or
 * qtpm in another process) is refused with the lock error and leaves the
 * image as it was; once the holder closes it, creating works.
 */
static void test_create_locked(Fixture *f, gconstpointer data)
{
    BlockOpenOptions opts = { .format = "qcow2" };
    g_autofree char *before = NULL, *after = NULL;
    gsize before_len, after_len;
    uint8_t buf[4096];
    BlockDriverState *bs;
    GError *err = NULL;

    create_ok(f->path, 1024 * 1024, 0, 0);
    bs = bdrv_open(f->path, &opts, &err);
    g_assert_no_error(err);
    fill(buf, sizeof(buf), 7);
    write_ok(bs, 0, sizeof(buf), buf);
    g_assert_cmpint(bdrv_flush(bs, NULL), ==, 0);
    g_assert_true(g_file_get_contents(f->path, &before, &before_len, NULL));

    g_assert_cmpint(qcow2_create(f->path, 2 * 1024 * 1024, NULL, &err), <, 0);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_LOCKED);
    g_assert_nonnull(strstr(err->message, f->path));
    g_assert_nonnull(strstr(err->message, "locked by another process"));
    g_clear_error(&err);
    g_assert_true(g_file_get_contents(f->path, &after, &after_len, NULL));
    g_assert_cmpuint(after_len, ==, before_len);
    g_assert_true(memcmp(before, after, before_len) == 0);
    read_expect(bs, 0, sizeof(buf), buf);
    bdrv_close(bs);

    create_ok(f->path, 2 * 1024 * 1024, 0, 0);
    assert_check_clean(f->path);
    bs = open_ok(f->path);
    g_assert_cmpint(bdrv_getlength(bs, NULL), ==, 2 * 1024 * 1024);
    bdrv_close(bs);
}

typedef struct CreateWatcher {
    const char *path;
    int64_t complete_len;
    gint stop;
    gint opens;        /* read-write opens that got the locks */
    gint incomplete;   /* ...of which saw a file that was not a whole image */
} CreateWatcher;

/* Opens the image read-write, as another process would, again and again. */
static gpointer create_watcher_thread(gpointer opaque)
{
    static const BlockOpenOptions raw_opts = { .format = "raw" };
    CreateWatcher *w = opaque;

    while (!g_atomic_int_get(&w->stop)) {
        BlockDriverState *bs = bdrv_open(w->path, &raw_opts, NULL);

        if (bs) {
            g_atomic_int_inc(&w->opens);
            if (bdrv_getlength(bs, NULL) != w->complete_len) {
                g_atomic_int_inc(&w->incomplete);
            }
            bdrv_close(bs);
        }
    }
    return NULL;
}

/*
 * Creating holds the locks from before the file is emptied until the image
 * is complete: an opener that gets the locks sees the old image or the new
 * one, never an empty or half-written file, and a create that loses the
 * race leaves the old image in place.
 */
static void test_create_holds_locks(Fixture *f, gconstpointer data)
{
    CreateWatcher w = { .path = f->path };
    struct stat st;
    GThread *t;
    int created = 0;

    create_ok(f->path, 1024 * 1024, 0, 0);
    g_assert_cmpint(stat(f->path, &st), ==, 0);
    w.complete_len = st.st_size;
    t = g_thread_new("watcher", create_watcher_thread, &w);
    for (int i = 0; i < 300; i++) {
        GError *err = NULL;

        if (qcow2_create(f->path, 1024 * 1024, NULL, &err) == 0) {
            created++;
        } else {
            /* Refused: the old image is still whole. */
            g_assert_error(err, QTPM_ERROR, QTPM_ERROR_LOCKED);
            g_clear_error(&err);
            g_assert_cmpint(stat(f->path, &st), ==, 0);
            g_assert_cmpint(st.st_size, ==, w.complete_len);
        }
    }
    g_atomic_int_set(&w.stop, 1);
    g_thread_join(t);
    g_test_message("%d creates, %d watcher opens", created,
                   g_atomic_int_get(&w.opens));
    g_assert_cmpint(g_atomic_int_get(&w.incomplete), ==, 0);
    g_assert_cmpint(stat(f->path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, w.complete_len);
    assert_check_clean(f->path);
}

/* Our images, in several layouts, written through us, pass qemu-img check
 * and qemu sees our data. */
static void test_create_write_check(Fixture *f, gconstpointer data)
{
    static const struct {
        uint32_t cs;
        int rbits;
    } layouts[] = { { 512, 16 }, { 4096, 1 }, { 4096, 64 }, { 65536, 16 },
                    { 2 * 1024 * 1024, 16 }, { 512, 64 } };
    const int64_t size = 8 * 1024 * 1024;
    g_autofree uint8_t *mirror = g_malloc0(size);
    g_autofree char *raw = g_build_filename(f->dir, "out.raw", NULL);

    for (size_t i = 0; i < ARRAY_SIZE(layouts); i++) {
        BlockDriverState *bs;
        g_autofree char *contents = NULL;
        gsize len;
        uint32_t seed = 42 + i;

        memset(mirror, 0, size);
        create_ok(f->path, size, layouts[i].cs, layouts[i].rbits);
        bs = open_ok(f->path);
        for (int n = 0; n < 40; n++) {
            int64_t off, l;

            seed = seed * 1103515245 + 12345;
            off = (seed >> 4) % (size - 200000);
            seed = seed * 1103515245 + 12345;
            l = 1 + (seed >> 8) % 200000;
            fill(mirror + off, l, seed);
            write_ok(bs, off, l, mirror + off);
        }
        read_expect(bs, 0, size, mirror);
        bdrv_close(bs);
        assert_check_clean(f->path);
        g_assert_cmpint(run(NULL, "qemu-img", "convert", "-f", "qcow2", "-O",
                            "raw", f->path, raw, NULL), ==, 0);
        g_assert_true(g_file_get_contents(raw, &contents, &len, NULL));
        g_assert_cmpint(len, ==, size);
        g_assert_true(memcmp(contents, mirror, size) == 0);
    }
}

/*
 * The flush budget of docs/qcow2.md "Write ordering": overwriting allocated
 * clusters needs no flush of ours; allocating needs one barrier.
 */
static void test_flush_budget(Fixture *f, gconstpointer data)
{
    uint8_t buf[8192];
    BlockDriverState *bs;
    uint64_t n;

    create_ok(f->path, 1024 * 1024, 0, 0);
    bs = open_ok(f->path);
    fill(buf, sizeof(buf), 1);

    n = bdrv_get_flush_count(bs);
    write_ok(bs, 4096, sizeof(buf), buf);
    g_assert_cmpuint(bdrv_get_flush_count(bs) - n, ==, 1);
    g_assert_cmpint(bdrv_flush(bs, NULL), ==, 0);
    g_assert_cmpuint(bdrv_get_flush_count(bs) - n, ==, 2);

    /* Steady state: data writes only, the caller's flush is the only one. */
    n = bdrv_get_flush_count(bs);
    for (int i = 0; i < 10; i++) {
        buf[0] = i;
        write_ok(bs, 4096 + i * 100, sizeof(buf) - 1000, buf);
    }
    g_assert_cmpuint(bdrv_get_flush_count(bs) - n, ==, 0);
    g_assert_cmpint(bdrv_flush(bs, NULL), ==, 0);
    g_assert_cmpuint(bdrv_get_flush_count(bs) - n, ==, 1);
    bdrv_close(bs);
    assert_check_clean(f->path);
}

static void test_zero_writes(Fixture *f, gconstpointer data)
{
    g_autofree uint8_t *buf = g_malloc(65536);
    g_autofree uint8_t *zero = g_malloc0(65536);
    BlockDriverState *bs;
    int64_t before;
    GError *err = NULL;

    create_ok(f->path, 1024 * 1024, 4096, 0);
    bs = open_ok(f->path);
    fill(buf, 65536, 7);
    write_ok(bs, 0, 65536, buf);
    g_assert_cmpint(bdrv_flush(bs, NULL), ==, 0);
    before = file_size(f->path);

    /* Whole clusters get the zero flag, partial ones zero bytes. */
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 4096 + 100, 3 * 4096, &err), ==, 0);
    g_assert_no_error(err);
    memset(buf + 4096 + 100, 0, 3 * 4096);
    read_expect(bs, 0, 65536, buf);
    /* Zeroing unallocated space allocates nothing. */
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 512 * 1024, 128 * 1024, &err), ==,
                    0);
    read_expect(bs, 512 * 1024, 65536, zero);
    /* Writing into a zeroed cluster brings back only the new bytes. */
    write_ok(bs, 8192 + 10, 5, (const uint8_t *)"hello");
    memcpy(buf + 8192 + 10, "hello", 5);
    read_expect(bs, 0, 65536, buf);
    bdrv_close(bs);
    g_assert_cmpint(file_size(f->path), <=, before + 4096);
    assert_check_clean(f->path);

    bs = open_ok(f->path);
    read_expect(bs, 0, 65536, buf);
    bdrv_close(bs);
}

static void test_truncate_grow(Fixture *f, gconstpointer data)
{
    uint8_t buf[1000];
    g_autofree char *out = NULL;
    BlockDriverState *bs;
    GError *err = NULL;

    /* 512-byte clusters: one L2 table maps 32 KiB, so 64 MiB needs a
     * bigger L1 table than 1 MiB had. */
    create_ok(f->path, 1024 * 1024, 512, 0);
    bs = open_ok(f->path);
    fill(buf, sizeof(buf), 3);
    write_ok(bs, 1000, sizeof(buf), buf);
    g_assert_cmpint(bdrv_truncate(bs, 64 * 1024 * 1024, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_getlength(bs, NULL), ==, 64 * 1024 * 1024);
    write_ok(bs, 64 * 1024 * 1024 - sizeof(buf), sizeof(buf), buf);
    read_expect(bs, 1000, sizeof(buf), buf);
    g_assert_cmpint(bdrv_truncate(bs, 1024 * 1024, &err), <, 0);
    g_assert_nonnull(strstr(err->message, "shrink"));
    g_clear_error(&err);
    bdrv_close(bs);
    assert_check_clean(f->path);
    g_assert_cmpint(run(&out, "qemu-io", "-f", "qcow2", "-c",
                        "read -v 67107840 8", f->path, NULL), ==, 0);

    bs = open_ok(f->path);
    read_expect(bs, 64 * 1024 * 1024 - sizeof(buf), sizeof(buf), buf);
    /* 1 GiB: the new L1 table (256 KiB) is longer than the range one
     * refcount block covers (128 KiB), so it cannot sit between
     * self-describing blocks. */
    g_assert_cmpint(bdrv_truncate(bs, 1024 * 1024 * 1024, &err), ==, 0);
    g_assert_no_error(err);
    write_ok(bs, 1000 * 1024 * 1024, sizeof(buf), buf);
    read_expect(bs, 1000, sizeof(buf), buf);
    bdrv_close(bs);
    assert_check_clean(f->path);
    bs = open_ok(f->path);
    read_expect(bs, 1000 * 1024 * 1024, sizeof(buf), buf);
    read_expect(bs, 64 * 1024 * 1024 - sizeof(buf), sizeof(buf), buf);
    bdrv_close(bs);
}

/* ------------------------------------------------------------------------ */
/* Feature bits (docs/qcow2.md §2) */

static void expect_open_error(const char *path, bool read_only,
                              const char *needle)
{
    GError *err = NULL;
    BlockDriverState *bs = open_img(path, read_only, false, &err);

    g_assert_null(bs);
    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_test_message("error: %s (wanted '%s')", err->message, needle);
    }
    g_assert_nonnull(strstr(err->message, needle));
    g_assert_nonnull(strstr(err->message, path));
    g_error_free(err);
}

static void expect_open_ok(const char *path, bool read_only)
{
    GError *err = NULL;
    BlockDriverState *bs = open_img(path, read_only, false, &err);

    g_assert_no_error(err);
    bdrv_close(bs);
}

static void test_incompatible_bits(Fixture *f, gconstpointer data)
{
    static const struct {
        uint64_t bits;
        const char *needle;
        bool ro_ok;
    } cases[] = {
        { 1 << 0, "dirty", true },
        { 1 << 1, "corrupt", true },
        { 1 << 2, "external data file", false },
        { 1 << 3, "compression type", false },
        { 1 << 4, "extended L2 entries", false },
        { 1 << 9, "unknown incompatible feature bit 9", false },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        create_ok(f->path, 1024 * 1024, 0, 0);
        unit_patch_be64(f->path, 72, cases[i].bits);
        expect_open_error(f->path, false, cases[i].needle);
        if (cases[i].ro_ok) {
            expect_open_ok(f->path, true);
        } else {
            expect_open_error(f->path, true, cases[i].needle);
        }
    }
}

static void test_refused_features(Fixture *f, gconstpointer data)
{
    uint8_t zstd = 1;

    create_ok(f->path, 1024 * 1024, 0, 0);
    unit_patch_be64(f->path, 8, 4096 + 512);
    unit_patch_be32(f->path, 16, 4);
    expect_open_error(f->path, true, "backing files are not supported");

    create_ok(f->path, 1024 * 1024, 0, 0);
    unit_patch_be32(f->path, 32, 2);
    expect_open_error(f->path, true, "encryption (crypt_method 2)");

    /* compression_type zstd: header_length 112 with the byte at 104. */
    create_ok(f->path, 1024 * 1024, 0, 0);
    unit_patch_be32(f->path, 100, 112);
    unit_patch_be64(f->path, 72, 1 << 3);
    unit_patch(f->path, 104, &zstd, 1);
    expect_open_error(f->path, true, "zstd");

    /* A qemu-img image with zstd, if this qemu-img can make one. */
    if (run(NULL, "qemu-img", "create", "-q", "-f", "qcow2", "-o",
            "compression_type=zstd", f->path, "1M", NULL) == 0) {
        expect_open_error(f->path, true, "zstd");
    }
    g_assert_cmpint(run(NULL, "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                        "extended_l2=on", f->path, "1M", NULL), ==, 0);
    expect_open_error(f->path, true, "extended L2 entries");
}

/* An unknown bit named in the feature name table is named in the error. */
static void test_feature_table_name(Fixture *f, gconstpointer data)
{
    uint8_t ext[8 + 48] = { 0 };

    create_ok(f->path, 1024 * 1024, 0, 0);
    /* header extension right after the 104-byte header */
    ext[0] = 0x68; ext[1] = 0x03; ext[2] = 0xf8; ext[3] = 0x57;
    ext[7] = 48;
    ext[8] = 0;           /* incompatible */
    ext[9] = 12;          /* bit 12 */
    memcpy(ext + 10, "time travel", 11);
    unit_patch(f->path, 104, ext, sizeof(ext));
    unit_patch_be64(f->path, 72, 1 << 12);
    expect_open_error(f->path, true, "'time travel' (bit 12)");
}

static void test_autoclear_cleared_on_write(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs;
    uint8_t buf[16];

    g_assert_cmpint(run(NULL, "qemu-img", "create", "-q", "-f", "qcow2",
                        f->path, "1M", NULL), ==, 0);
    unit_patch_be64(f->path, 88, 1 << 5);
    bs = open_ok(f->path);
    g_assert_cmpint(bdrv_pread(bs, 0, sizeof(buf), buf, NULL), ==, 0);
    g_assert_cmpuint(unit_read_be64(f->path, 88), ==, 1 << 5);
    memset(buf, 0x42, sizeof(buf));
    write_ok(bs, 0, sizeof(buf), buf);
    g_assert_cmpuint(unit_read_be64(f->path, 88), ==, 0);
    bdrv_close(bs);
    assert_check_clean(f->path);
}

/* lazy_refcounts images (clean) are written with eager refcounts. */
static void test_lazy_refcounts(Fixture *f, gconstpointer data)
{
    BlockDriverState *bs;
    uint8_t buf[5000];

    g_assert_cmpint(run(NULL, "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                        "lazy_refcounts=on", f->path, "1M", NULL), ==, 0);
    bs = open_ok(f->path);
    fill(buf, sizeof(buf), 9);
    write_ok(bs, 70000, sizeof(buf), buf);
    bdrv_close(bs);
    g_assert_cmpuint(unit_read_be64(f->path, 72), ==, 0);  /* never dirty */
    g_assert_cmpuint(unit_read_be64(f->path, 80), ==, 1);  /* bit kept */
    assert_check_clean(f->path);
}

/* ------------------------------------------------------------------------ */
/* Crash consistency (docs/qcow2.md "Write ordering") */

/* A workload touching every metadata path: allocation, new L2 tables,
 * copy-on-write after a snapshot, partial clusters, zero writes, frees. */
static void crash_workload(BlockDriverState *bs)
{
    uint8_t buf[3000];

    fill(buf, sizeof(buf), 11);
    bdrv_pwrite(bs, 100, sizeof(buf), buf, NULL);
    bdrv_pwrite(bs, 40000, 600, buf, NULL);
    bdrv_flush(bs, NULL);
    bdrv_pwrite(bs, 700000, sizeof(buf), buf, NULL);
    bdrv_pwrite_zeroes(bs, 4096, 8192, NULL);
    bdrv_pwrite(bs, 3000, 2000, buf + 5, NULL);
    bdrv_flush(bs, NULL);
    bdrv_pwrite(bs, 65536 * 3 + 10, 200, buf + 9, NULL);
}

static void make_crash_base(Fixture *f, const char *base)
{
    uint8_t buf[4096];
    BlockDriverState *bs;

    /* 512-byte clusters and 64-bit refcounts: the workload also creates
     * refcount blocks and grows the refcount table. */
    create_ok(base, 1024 * 1024, 512, 64);
    bs = open_ok(base);
    memset(buf, 0x5a, sizeof(buf));
    for (int i = 0; i < 8; i++) {
        write_ok(bs, i * 65536, sizeof(buf), buf);
    }
    bdrv_close(bs);
    g_assert_cmpint(run(NULL, "qemu-img", "snapshot", "-c", "s1", base, NULL),
                    ==, 0);
    assert_check_clean(base);
}

static void copy_file(const char *from, const char *to)
{
    g_autofree char *c = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(from, &c, &len, NULL));
    g_assert_true(g_file_set_contents(to, c, len, NULL));
}

/* After the crash: qemu-img finds at most leaks, and data flushed before
 * the workload (the 0x5a clusters the workload does not touch) is intact. */
static void assert_after_crash(const char *path)
{
    g_autofree char *out = NULL;
    uint8_t expect[4096];
    BlockDriverState *bs;
    int rc = qemu_img_check(path, &out);

    if (rc != 0 && rc != 3) {
        g_test_message("%s", out);
    }
    g_assert_true(rc == 0 || rc == 3);
    memset(expect, 0x5a, sizeof(expect));
    bs = open_ok(path);
    read_expect(bs, 65536 * 5, sizeof(expect), expect);
    bdrv_close(bs);
    g_assert_cmpint(run(NULL, "qemu-img", "snapshot", "-a", "s1", path, NULL),
                    ==, 0);
    bs = open_ok(path);
    read_expect(bs, 0, sizeof(expect), expect);
    read_expect(bs, 65536 * 3, sizeof(expect), expect);
    bdrv_close(bs);
}

static void test_crash_at_every_write(Fixture *f, gconstpointer data)
{
    g_autofree char *base = g_build_filename(f->dir, "base.qcow2", NULL);
    BlockDriverState *bs;
    unsigned total;
    GError *err = NULL;

    make_crash_base(f, base);
    copy_file(base, f->path);
    bs = open_img(f->path, false, true, &err);
    g_assert_no_error(err);
    crash_workload(bs);
    total = blkdebug_write_count(bdrv_get_blkdebug(bs));
    bdrv_close(bs);
    g_assert_cmpuint(total, >, 20);
    assert_check_clean(f->path);

    for (unsigned n = 1; n <= total; n++) {
        copy_file(base, f->path);
        bs = open_img(f->path, false, true, &err);
        g_assert_no_error(err);
        blkdebug_crash_at_write(bdrv_get_blkdebug(bs), n);
        crash_workload(bs);
        g_assert_true(blkdebug_is_crashed(bdrv_get_blkdebug(bs)));
        bdrv_close(bs);
        assert_after_crash(f->path);
    }
}

/* Power loss: any subset of the writes since the last flush is lost. */
static void test_power_loss(Fixture *f, gconstpointer data)
{
    g_autofree char *base = g_build_filename(f->dir, "base.qcow2", NULL);
    uint32_t seed = 77;

    make_crash_base(f, base);
    for (int round = 0; round < 24; round++) {
        BlockDriverState *bs;
        BlkdebugState *bd;
        GError *err = NULL;
        uint64_t mask;
        unsigned n;

        copy_file(base, f->path);
        bs = open_img(f->path, false, true, &err);
        g_assert_no_error(err);
        bd = bdrv_get_blkdebug(bs);
        crash_workload(bs);
        n = blkdebug_unflushed_count(bd);
        g_assert_cmpuint(n, >, 0);
        seed = seed * 1103515245 + 12345;
        mask = round == 0 ? ~0ULL : ((uint64_t)seed << 32 | (seed * 7u));
        g_assert_cmpint(blkdebug_power_loss_mask(bd, mask, &err), ==, 0);
        g_assert_no_error(err);
        bdrv_close(bs);
        assert_after_crash(f->path);
    }
}

/* A write that fails leaves a usable driver and a consistent image. */
static void test_failed_write_recovers(Fixture *f, gconstpointer data)
{
    uint8_t buf[5000];
    BlockDriverState *bs;
    GError *err = NULL;

    create_ok(f->path, 1024 * 1024, 4096, 0);
    bs = open_img(f->path, false, true, &err);
    g_assert_no_error(err);
    fill(buf, sizeof(buf), 5);
    blkdebug_fail_write(bdrv_get_blkdebug(bs), 2);
    g_assert_cmpint(bdrv_pwrite(bs, 10000, sizeof(buf), buf, &err), <, 0);
    g_assert_nonnull(err);
    g_clear_error(&err);
    write_ok(bs, 10000, sizeof(buf), buf);
    read_expect(bs, 10000, sizeof(buf), buf);
    bdrv_close(bs);
    {
        g_autofree char *out = NULL;
        int rc = qemu_img_check(f->path, &out);

        g_assert_true(rc == 0 || rc == 3);
    }
    bs = open_ok(f->path);
    read_expect(bs, 10000, sizeof(buf), buf);
    bdrv_close(bs);
}

/*
 * Overwriting allocated clusters writes each run of host-contiguous
 * clusters once, in request order, and nothing else: a request over
 * clusters allocated out of order splits where the host offsets jump.
 */
static void test_overwrite_coalesces(Fixture *f, gconstpointer data)
{
    enum { CL = 4096 };
    uint8_t buf[9 * CL];
    BlockDriverState *bs;
    BlkdebugState *bd;
    GError *err = NULL;

    create_ok(f->path, 1024 * 1024, CL, 0);
    bs = open_ok(f->path);
    fill(buf, sizeof(buf), 3);
    /* Guest clusters 9, then 1..8 and 10: host order 9, 1..8, 10. */
    write_ok(bs, 9 * CL, CL, buf);
    write_ok(bs, CL + 100, sizeof(buf), buf);
    bdrv_close(bs);

    bs = open_img(f->path, false, true, &err);
    g_assert_no_error(err);
    bd = bdrv_get_blkdebug(bs);
    blkdebug_reset(bd);
    fill(buf, sizeof(buf), 4);
    write_ok(bs, CL + 100, 8 * CL - 100, buf);
    g_assert_cmpuint(blkdebug_write_count(bd), ==, 1);
    g_assert_cmpuint(blkdebug_flush_count(bd), ==, 0);

    /* 1..8 contiguous, 9 before them, 10 after 8: three writes. */
    blkdebug_reset(bd);
    write_ok(bs, CL + 100, sizeof(buf), buf);
    g_assert_cmpuint(blkdebug_write_count(bd), ==, 3);
    g_assert_cmpuint(blkdebug_flush_count(bd), ==, 0);
    read_expect(bs, CL + 100, sizeof(buf), buf);
    bdrv_close(bs);
    assert_check_clean(f->path);
    bs = open_ok(f->path);
    read_expect(bs, CL + 100, sizeof(buf), buf);
    bdrv_close(bs);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) \
    g_test_add("/qcow2/" name, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    ADD("create/default", test_create_default);
    ADD("create/mode", test_create_mode);
    ADD("create/bad-options", test_create_bad_options);
    ADD("create/locked", test_create_locked);
    ADD("create/holds-locks", test_create_holds_locks);
    ADD("create/write-check", test_create_write_check);
    ADD("write/flush-budget", test_flush_budget);
    ADD("write/overwrite-coalesces", test_overwrite_coalesces);
    ADD("write/zeroes", test_zero_writes);
    ADD("write/truncate-grow", test_truncate_grow);
    ADD("features/incompatible", test_incompatible_bits);
    ADD("features/refused", test_refused_features);
    ADD("features/name-table", test_feature_table_name);
    ADD("features/autoclear", test_autoclear_cleared_on_write);
    ADD("features/lazy-refcounts", test_lazy_refcounts);
    ADD("crash/every-write", test_crash_at_every_write);
    ADD("crash/power-loss", test_power_loss);
    ADD("crash/failed-write", test_failed_write_recovers);
    return g_test_run();
}
