/*
 * Hostile qcow2 images: every bad header field, table offset and entry must
 * give one clear error naming the file and the cause, never a crash, and
 * leave the file as it was. Runs under ASan/UBSan (tests/sanitizer-tests).
 * docs/qcow2.md §1 and §3 list the checks.
 */
#include "qemu/osdep.h"

#include "block/block_int.h"

#include "unit-util.h"

#define CS 4096

typedef struct Fixture {
    char *dir;
    char *path;
} Fixture;

/* Where things are in the base image (read back from the file). */
typedef struct Layout {
    uint64_t l1_offset;
    uint64_t rt_offset;
    uint64_t l2_offset;
    uint64_t rb_offset;
    uint64_t data_offset;   /* host cluster of guest offset 0 */
    int64_t file_size;
} Layout;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("qtpm-test-qcow2c.XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->path = g_build_filename(f->dir, "bad.qcow2", NULL);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    unit_remove_dir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

/* A valid 1 MiB image with 4 KiB clusters and data at guest offset 0. */
static Layout make_base(const char *path)
{
    Qcow2CreateOptions o = { .cluster_size = CS };
    BlockOpenOptions opts = { .format = "qcow2", .no_locking = true };
    uint8_t buf[CS];
    GError *err = NULL;
    BlockDriverState *bs;
    struct stat st;
    Layout l;

    g_assert_cmpint(qcow2_create(path, 1024 * 1024, &o, &err), ==, 0);
    bs = bdrv_open(path, &opts, &err);
    g_assert_no_error(err);
    memset(buf, 0x3c, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, &err), ==, 0);
    bdrv_close(bs);

    l.l1_offset = unit_read_be64(path, 40);
    l.rt_offset = unit_read_be64(path, 48);
    l.l2_offset = unit_read_be64(path, l.l1_offset) & 0x00fffffffffffe00ULL;
    l.rb_offset = unit_read_be64(path, l.rt_offset);
    l.data_offset = unit_read_be64(path, l.l2_offset) & 0x00fffffffffffe00ULL;
    g_assert_cmpint(stat(path, &st), ==, 0);
    l.file_size = st.st_size;
    g_assert_cmpuint(l.l2_offset, !=, 0);
    g_assert_cmpuint(l.data_offset, !=, 0);
    return l;
}

static char *slurp(const char *path, gsize *len)
{
    char *c = NULL;

    g_assert_true(g_file_get_contents(path, &c, len, NULL));
    return c;
}

typedef enum { OP_OPEN_RW, OP_OPEN_RO, OP_READ, OP_WRITE } Op;

/*
 * Runs @op on the patched image and asserts one error that names the file
 * and contains @needle, and that the file did not change.
 */
static void expect_error(const char *path, Op op, int64_t offset,
                         const char *needle)
{
    BlockOpenOptions opts = { .format = "qcow2", .no_locking = true,
                              .read_only = op == OP_OPEN_RO ||
                                           op == OP_READ };
    g_autofree char *before = NULL, *after = NULL;
    gsize blen, alen;
    GError *err = NULL;
    BlockDriverState *bs;
    uint8_t buf[CS];
    int ret = 0;

    before = slurp(path, &blen);
    bs = bdrv_open(path, &opts, &err);
    if (op == OP_OPEN_RW || op == OP_OPEN_RO) {
        g_assert_null(bs);
    } else {
        g_assert_no_error(err);
        g_assert_nonnull(bs);
        memset(buf, 0x99, sizeof(buf));
        if (op == OP_READ) {
            ret = bdrv_pread(bs, offset, sizeof(buf), buf, &err);
        } else {
            ret = bdrv_pwrite(bs, offset, sizeof(buf), buf, &err);
        }
        g_assert_cmpint(ret, <, 0);
        bdrv_close(bs);
    }
    g_assert_nonnull(err);
    g_test_message("error: %s", err->message);
    if (!strstr(err->message, needle)) {
        g_test_message("wanted '%s'", needle);
    }
    g_assert_nonnull(strstr(err->message, needle));
    g_assert_nonnull(strstr(err->message, path));
    g_assert_null(strchr(err->message, '\n'));
    g_error_free(err);

    after = slurp(path, &alen);
    g_assert_cmpuint(alen, ==, blen);
    g_assert_true(memcmp(before, after, blen) == 0);
}

/* ------------------------------------------------------------------------ */
/* Header */

static void test_truncated(Fixture *f, gconstpointer data)
{
    make_base(f->path);
    g_assert_cmpint(truncate(f->path, 50), ==, 0);
    expect_error(f->path, OP_OPEN_RO, 0, "too short for a qcow2 header");
    make_base(f->path);
    g_assert_cmpint(truncate(f->path, 100), ==, 0);
    expect_error(f->path, OP_OPEN_RO, 0, "too short for a qcow2 v3 header");
    /* Header intact, tables cut off. */
    make_base(f->path);
    g_assert_cmpint(truncate(f->path, CS + 100), ==, 0);
    expect_error(f->path, OP_OPEN_RO, 0, "past the end of the file");
    make_base(f->path);
    g_assert_cmpint(truncate(f->path, 0), ==, 0);
    expect_error(f->path, OP_OPEN_RO, 0, "too short");
}

/*
 * A data cluster that the L2 table names but the file no longer holds (the
 * image was truncated) is an error, as qemu-img check says, not zeros: the
 * NVRAM store above must not mistake lost state for a never-written area.
 */
static void test_truncated_data(Fixture *f, gconstpointer data)
{
    Layout l = make_base(f->path);

    g_assert_cmpuint(l.data_offset + CS, ==, l.file_size);
    g_assert_cmpint(truncate(f->path, l.data_offset), ==, 0);
    expect_error(f->path, OP_READ, 0, "past the end of the file");
    /* A cluster cut short still reads: its missing tail is zeros. */
    make_base(f->path);
    g_assert_cmpint(truncate(f->path, l.data_offset + 512), ==, 0);
    {
        BlockOpenOptions opts = { .format = "qcow2", .no_locking = true,
                                  .read_only = true };
        GError *err = NULL;
        BlockDriverState *bs = bdrv_open(f->path, &opts, &err);
        uint8_t buf[CS];

        g_assert_no_error(err);
        g_assert_cmpint(bdrv_pread(bs, 0, CS, buf, &err), ==, 0);
        g_assert_cmpint(buf[0], ==, 0x3c);
        g_assert_cmpint(buf[CS - 1], ==, 0);
        bdrv_close(bs);
    }
}

static void test_bad_magic_version(Fixture *f, gconstpointer data)
{
    make_base(f->path);
    unit_patch_be32(f->path, 0, 0x514649fa);
    expect_error(f->path, OP_OPEN_RO, 0, "bad qcow2 magic");
    make_base(f->path);
    unit_patch_be32(f->path, 4, 4);
    expect_error(f->path, OP_OPEN_RO, 0, "version 4");
    make_base(f->path);
    unit_patch_be32(f->path, 4, 0xffffffff);
    expect_error(f->path, OP_OPEN_RO, 0, "version 4294967295");
}

static void test_cluster_bits(Fixture *f, gconstpointer data)
{
    static const uint32_t bad[] = { 0, 8, 22, 63, 64, 0xffffffff };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        make_base(f->path);
        unit_patch_be32(f->path, 20, bad[i]);
        expect_error(f->path, OP_OPEN_RO, 0, "cluster_bits");
    }
}

static void test_header_length(Fixture *f, gconstpointer data)
{
    static const uint32_t bad[] = { 0, 72, 100, 108 + 1, CS + 8, 0xfffffff8 };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        make_base(f->path);
        unit_patch_be32(f->path, 100, bad[i]);
        expect_error(f->path, OP_OPEN_RO, 0, "header_length");
    }
}

static void test_refcount_order(Fixture *f, gconstpointer data)
{
    make_base(f->path);
    unit_patch_be32(f->path, 96, 7);
    expect_error(f->path, OP_OPEN_RO, 0, "refcount_order 7");
    make_base(f->path);
    unit_patch_be32(f->path, 96, 0x80000000);
    expect_error(f->path, OP_OPEN_RO, 0, "refcount_order");
}

static void test_absurd_sizes(Fixture *f, gconstpointer data)
{
    make_base(f->path);
    unit_patch_be32(f->path, 36, 0xffffffff);
    expect_error(f->path, OP_OPEN_RO, 0, "L1 size 4294967295 is too large");
    make_base(f->path);
    unit_patch_be32(f->path, 36, 0);
    expect_error(f->path, OP_OPEN_RO, 0, "L1 size 0 is too small");
    make_base(f->path);
    unit_patch_be64(f->path, 24, 1ULL << 62);
    expect_error(f->path, OP_OPEN_RO, 0, "virtual size");
    make_base(f->path);
    unit_patch_be64(f->path, 24, 1ULL << 40);   /* L1 of 1 entry cannot map it */
    expect_error(f->path, OP_OPEN_RO, 0, "too small for virtual size");
    make_base(f->path);
    unit_patch_be32(f->path, 56, 0);
    expect_error(f->path, OP_OPEN_RO, 0, "refcount_table_clusters 0");
    make_base(f->path);
    unit_patch_be32(f->path, 56, 0xffffffff);
    expect_error(f->path, OP_OPEN_RO, 0, "refcount_table_clusters");
    make_base(f->path);
    unit_patch_be32(f->path, 56, 1000);   /* plausible count, past EOF */
    expect_error(f->path, OP_OPEN_RO, 0, "refcount table at");
    make_base(f->path);
    unit_patch_be32(f->path, 60, 0x7fffffff);
    expect_error(f->path, OP_OPEN_RO, 0, "nb_snapshots");
}

static void test_table_offsets(Fixture *f, gconstpointer data)
{
    Layout l = make_base(f->path);

    unit_patch_be64(f->path, 40, l.file_size + CS);
    expect_error(f->path, OP_OPEN_RO, 0, "L1 table at");
    make_base(f->path);
    unit_patch_be64(f->path, 40, 0xffffffffffff0000ULL);
    expect_error(f->path, OP_OPEN_RO, 0, "past the end of the file");
    make_base(f->path);
    unit_patch_be64(f->path, 40, l.l1_offset + 8);
    expect_error(f->path, OP_OPEN_RO, 0, "L1 table offset 0x");
    make_base(f->path);
    unit_patch_be64(f->path, 48, l.rt_offset + 512);
    expect_error(f->path, OP_OPEN_RO, 0, "not cluster aligned");
    make_base(f->path);
    unit_patch_be64(f->path, 48, l.file_size + 100 * CS);
    expect_error(f->path, OP_OPEN_RO, 0, "refcount table at");
    make_base(f->path);
    unit_patch_be64(f->path, 64, l.file_size + CS);
    unit_patch_be32(f->path, 60, 1);
    expect_error(f->path, OP_OPEN_RO, 0, "snapshot table");
}

static void test_overlaps(Fixture *f, gconstpointer data)
{
    Layout l = make_base(f->path);

    unit_patch_be64(f->path, 40, l.rt_offset);
    expect_error(f->path, OP_OPEN_RO, 0, "overlaps the refcount table");
    make_base(f->path);
    unit_patch_be64(f->path, 40, 0);
    expect_error(f->path, OP_OPEN_RO, 0, "overlaps the header");
    make_base(f->path);
    unit_patch_be64(f->path, 48, 0);
    expect_error(f->path, OP_OPEN_RO, 0, "overlaps the header");
    make_base(f->path);
    unit_patch_be64(f->path, 64, l.l1_offset);
    unit_patch_be32(f->path, 60, 1);
    expect_error(f->path, OP_OPEN_RO, 0, "overlaps the L1 table");
    /* An L2 table where the L1 or refcount table lives. */
    make_base(f->path);
    unit_patch_be64(f->path, l.l1_offset, l.l1_offset | 1ULL << 63);
    expect_error(f->path, OP_READ, 0, "overlaps the L1 table");
    make_base(f->path);
    unit_patch_be64(f->path, l.l1_offset, l.rt_offset | 1ULL << 63);
    expect_error(f->path, OP_READ, 0, "overlaps the refcount table");
    /* A refcount block on top of the L1 table. */
    make_base(f->path);
    unit_patch_be64(f->path, l.rt_offset, l.l1_offset);
    expect_error(f->path, OP_WRITE, 512 * 1024, "refcount block 0 at");
    /* A data cluster on top of the L1 table is never written. */
    make_base(f->path);
    unit_patch_be64(f->path, l.l2_offset, l.l1_offset | 1ULL << 63);
    expect_error(f->path, OP_WRITE, 0, "overlaps the L1 table");
}

static void test_header_extensions(Fixture *f, gconstpointer data)
{
    uint8_t ext[8] = { 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x10, 0x00 };

    make_base(f->path);
    unit_patch(f->path, 104, ext, sizeof(ext));   /* 4096 bytes: past the cluster */
    expect_error(f->path, OP_OPEN_RO, 0, "header extension 0x12345678");
    ext[4] = 0xff;
    ext[6] = 0;
    make_base(f->path);
    unit_patch(f->path, 104, ext, sizeof(ext));
    expect_error(f->path, OP_OPEN_RO, 0, "past the end of the first cluster");
}

/* ------------------------------------------------------------------------ */
/* Entries (found on access) */

static void test_l1_entries(Fixture *f, gconstpointer data)
{
    Layout l = make_base(f->path);

    unit_patch_be64(f->path, l.l1_offset, (l.file_size + 10 * CS) | 1ULL << 63);
    expect_error(f->path, OP_READ, 0, "L2 table at");
    make_base(f->path);
    unit_patch_be64(f->path, l.l1_offset, 0x1234);
    expect_error(f->path, OP_READ, 0, "L1 entry 0 (0x1234)");
    make_base(f->path);
    unit_patch_be64(f->path, l.l1_offset, l.l2_offset + 512);
    expect_error(f->path, OP_READ, 0, "not cluster aligned");
    make_base(f->path);
    unit_patch_be64(f->path, l.l1_offset, l.l2_offset | 1ULL << 60);
    expect_error(f->path, OP_WRITE, 0, "reserved bits");
}

static void test_l2_entries(Fixture *f, gconstpointer data)
{
    Layout l = make_base(f->path);

    unit_patch_be64(f->path, l.l2_offset, (l.data_offset + 512) | 1ULL << 63);
    expect_error(f->path, OP_READ, 0, "is not cluster aligned");
    make_base(f->path);
    unit_patch_be64(f->path, l.l2_offset, l.data_offset | 1ULL << 63 | 1ULL << 58);
    expect_error(f->path, OP_READ, 0, "reserved bits set");
    make_base(f->path);
    unit_patch_be64(f->path, l.l2_offset, 1ULL << 63);
    expect_error(f->path, OP_READ, 0, "COPIED without a cluster");
    make_base(f->path);
    unit_patch_be64(f->path, l.l2_offset, 512ULL | 1ULL << 63);
    expect_error(f->path, OP_WRITE, 0, "not cluster aligned");
}

static void test_refcount_entries(Fixture *f, gconstpointer data)
{
    Layout l = make_base(f->path);

    /* Allocation needs the refcount block. */
    unit_patch_be64(f->path, l.rt_offset, l.file_size + 50 * CS);
    expect_error(f->path, OP_WRITE, 512 * 1024, "refcount block 0 at");
    make_base(f->path);
    unit_patch_be64(f->path, l.rt_offset, l.rb_offset + 8);
    expect_error(f->path, OP_WRITE, 512 * 1024, "refcount table entry 0");
    /* All refcounts 0: the allocator would hand out the header. */
    make_base(f->path);
    {
        uint8_t zero[CS] = { 0 };

        unit_patch(f->path, l.rb_offset, zero, sizeof(zero));
    }
    expect_error(f->path, OP_WRITE, 512 * 1024,
                 "holds the header but its refcount is 0");
}

static void test_compressed(Fixture *f, gconstpointer data)
{
    /* cluster_bits 12: offset in bits 0..57, extra sectors in 58..61 */
    Layout l = make_base(f->path);
    uint64_t c = 1ULL << 62;
    uint8_t junk[512];

    memset(junk, 0xff, sizeof(junk));
    unit_patch(f->path, l.data_offset, junk, sizeof(junk));
    unit_patch_be64(f->path, l.l2_offset, c | l.data_offset);
    expect_error(f->path, OP_READ, 0, "compressed cluster at 0x");
    expect_error(f->path, OP_READ, 0, "is corrupt");
    make_base(f->path);
    unit_patch_be64(f->path, l.l2_offset, c | (l.file_size + 100));
    expect_error(f->path, OP_READ, 0, "outside the file");
    make_base(f->path);
    unit_patch_be64(f->path, l.l2_offset, c | 1ULL << 63 | l.data_offset);
    expect_error(f->path, OP_WRITE, 0, "has the COPIED flag");
    make_base(f->path);
    unit_patch_be64(f->path, l.l2_offset, c | 15ULL << 58 | 100);
    expect_error(f->path, OP_READ, 0, "outside the file");
    /* Valid deflate that stops short of a cluster. */
    make_base(f->path);
    {
        uint8_t stored[] = { 0x01, 0x04, 0x00, 0xfb, 0xff, 'a', 'b', 'c',
                             'd' };

        unit_patch(f->path, l.data_offset, stored, sizeof(stored));
    }
    unit_patch_be64(f->path, l.l2_offset, c | l.data_offset);
    expect_error(f->path, OP_READ, 0, "is corrupt");
    /* Writing over a corrupt compressed cluster fails the same way. */
    expect_error(f->path, OP_WRITE, 100, "is corrupt");
    /* ... also under a shared L2 table (L1 entry without COPIED), which is
     * copied before the write. */
    make_base(f->path);
    unit_patch_be64(f->path, l.l1_offset, l.l2_offset);
    unit_patch_be64(f->path, l.l2_offset, c | (l.file_size + 100));
    expect_error(f->path, OP_WRITE, 100, "outside the file");
    make_base(f->path);
    unit_patch_be64(f->path, l.l1_offset, l.l2_offset);
    unit_patch_be64(f->path, l.l2_offset + 8, c | (l.file_size + 1000000));
    {
        BlockOpenOptions opts = { .format = "qcow2", .no_locking = true };
        g_autofree uint8_t *buf = g_malloc0(3 * CS);
        GError *err = NULL;
        BlockDriverState *bs = bdrv_open(f->path, &opts, &err);

        g_assert_no_error(err);
        /* Cluster 0 is fine, cluster 1 is not: one error, no crash. */
        g_assert_cmpint(bdrv_pwrite(bs, 100, 2 * CS, buf, &err), <, 0);
        g_assert_nonnull(strstr(err->message, "outside the file"));
        g_clear_error(&err);
        bdrv_close(bs);
    }
}

/* Checks one request's outcome: failure <=> one error naming the file. */
static void assert_outcome(const char *path, int ret, GError **err)
{
    if (ret < 0) {
        g_assert_nonnull(*err);
        g_assert_nonnull(strstr((*err)->message, path));
        g_assert_null(strchr((*err)->message, '\n'));
    } else {
        g_assert_no_error(*err);
    }
    g_clear_error(err);
}

/*
 * Random byte changes anywhere in the metadata of a valid image: every open,
 * read, write and flush either works or fails with one sentence naming the
 * file; nothing crashes (ASan/UBSan in the sanitizer run).
 */
static void test_random_mutations(Fixture *f, gconstpointer data)
{
    g_autofree char *base = g_build_filename(f->dir, "base.qcow2", NULL);
    g_autofree char *pristine = NULL;
    g_autofree uint8_t *buf = g_malloc(256 * 1024);
    gsize len;
    Layout l = make_base(base);
    uint64_t meta_end = MAX(l.l2_offset, l.rb_offset) + CS;
    const char *env_seed = g_getenv("QCOW2_MUTATION_SEED");
    uint32_t seed = env_seed ? strtoul(env_seed, NULL, 0) : 2026;
    int opened = 0, failed_io = 0;

    g_autofree char *snap = NULL;
    gsize snap_len;
    char *argv[] = { (char *)"qemu-img", (char *)"snapshot", (char *)"-c",
                     (char *)"s1", base, NULL };
    int status;

    pristine = slurp(base, &len);
    /* The same image with an internal snapshot: shared tables, COW paths. */
    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH |
                               G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                               NULL, &status, NULL));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snap = slurp(base, &snap_len);
    unlink(base);
    for (int round = 0; round < 1000; round++) {
        BlockOpenOptions opts = { .format = "qcow2", .no_locking = true };
        GError *err = NULL;
        BlockDriverState *bs;
        int nflips;

        if (round % 2) {
            g_assert_true(g_file_set_contents(f->path, pristine, len, NULL));
            meta_end = MAX(l.l2_offset, l.rb_offset) + CS;
        } else {
            g_assert_true(g_file_set_contents(f->path, snap, snap_len, NULL));
            meta_end = snap_len;
        }
        seed = seed * 1103515245 + 12345;
        nflips = 1 + (seed >> 16) % 4;
        for (int i = 0; i < nflips; i++) {
            uint8_t b;
            uint64_t off;

            seed = seed * 1103515245 + 12345;
            /* Mostly the fields that matter: header, table entries. */
            if ((seed >> 8) % 4 == 0) {
                off = (seed >> 12) % 112;
            } else {
                off = (seed >> 12) % meta_end;
                off = off / CS * CS + ((seed >> 3) % 64);
            }
            seed = seed * 1103515245 + 12345;
            b = seed >> 16;
            unit_patch(f->path, off, &b, 1);
        }
        bs = bdrv_open(f->path, &opts, &err);
        if (!bs) {
            assert_outcome(f->path, -1, &err);
            continue;
        }
        opened++;
        memset(buf, 0x71, 256 * 1024);
        failed_io += bdrv_pread(bs, 0, 256 * 1024, buf, &err) < 0;
        assert_outcome(f->path, err ? -1 : 0, &err);
        assert_outcome(f->path,
                       bdrv_pwrite(bs, 1000, 10000, buf, &err), &err);
        assert_outcome(f->path,
                       bdrv_pwrite(bs, 600 * 1024, 3 * CS, buf, &err), &err);
        assert_outcome(f->path,
                       bdrv_pwrite_zeroes(bs, 0, 2 * CS, &err), &err);
        assert_outcome(f->path, bdrv_flush(bs, &err), &err);
        assert_outcome(f->path, bdrv_pread(bs, 0, 256 * 1024, buf, &err),
                       &err);
        bdrv_close(bs);
    }
    g_test_message("%d of 1000 mutated images opened, %d reads failed",
                   opened, failed_io);
    /* The mutations must reach the request paths, not only the header. */
    g_assert_cmpint(opened, >=, 300);
    g_assert_cmpint(failed_io, >=, 30);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) \
    g_test_add("/qcow2-corrupt/" name, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    ADD("truncated", test_truncated);
    ADD("truncated-data", test_truncated_data);
    ADD("magic-version", test_bad_magic_version);
    ADD("cluster-bits", test_cluster_bits);
    ADD("header-length", test_header_length);
    ADD("refcount-order", test_refcount_order);
    ADD("absurd-sizes", test_absurd_sizes);
    ADD("table-offsets", test_table_offsets);
    ADD("overlaps", test_overlaps);
    ADD("header-extensions", test_header_extensions);
    ADD("l1-entries", test_l1_entries);
    ADD("l2-entries", test_l2_entries);
    ADD("refcount-entries", test_refcount_entries);
    ADD("compressed", test_compressed);
    ADD("random-mutations", test_random_mutations);
    return g_test_run();
}
