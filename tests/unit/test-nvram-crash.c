/*
 * Crash consistency of the NVRAM store's commits (docs/nvram-format.md
 * section 4), with blkdebug between the format driver and the file: for
 * every write of a commit, a torn write, and power loss dropping subsets of
 * the unflushed writes. After each crash the image reopens, and holds
 * exactly the old state or exactly the new one.
 */
#include "qemu/osdep.h"

#include "block/blkdebug.h"
#include "test-nvram-util.h"

typedef struct CrashCase {
    const char *format;
    bool encrypted;
    size_t plen;            /* permanent blob size */
    bool both;              /* the commit replaces both blobs, else only permanent */
} CrashCase;

typedef struct State {
    uint8_t *p, *v;
    size_t plen, vlen;
} State;

typedef struct Crash {
    const CrashCase *c;
    TestImage t;
    uint8_t *baseline;
    gsize baseline_len;
    State old, new;
    unsigned runs;
} Crash;

static void state_make(State *st, size_t plen, size_t vlen, unsigned seed)
{
    st->plen = plen;
    st->vlen = vlen;
    st->p = test_blob(plen, seed);
    st->v = test_blob(vlen, seed + 1000);
}

static void state_free(State *st)
{
    g_free(st->p);
    g_free(st->v);
}

static NvramStore *open_store(BlockDriverState *bs, const Crash *cr, bool owner,
                              GError **errp)
{
    NvramOpenOptions o = test_opts(owner, cr->c->encrypted);

    return nvram_open(bs, &o, errp);
}

static int commit_state(NvramStore *s, const Crash *cr, const State *st, GError **errp)
{
    NvramBlobUpdate u[2] = { { TPM_STATE_BLOB_PERMANENT, st->p, st->plen },
                             { TPM_STATE_BLOB_VOLATILE, st->v, st->vlen } };

    return nvram_commit(s, u, cr->c->both ? 2 : 1, errp);
}

static bool state_is(NvramStore *s, const State *st)
{
    return test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, st->p, st->plen) &&
           test_blob_equals(s, TPM_STATE_BLOB_VOLATILE, st->v, st->vlen);
}

/* Old state: two commits, so both slots are in use, then the baseline bytes. */
static void crash_setup(Crash *cr, const CrashCase *c)
{
    BlockDriverState *bs;
    NvramStore *s;
    State first;
    GError *err = NULL;

    memset(cr, 0, sizeof(*cr));
    cr->c = c;
    test_image_new(&cr->t, c->format);
    state_make(&first, c->plen, 3000, 1);
    state_make(&cr->old, c->plen - 100, 2900, 2);
    state_make(&cr->new, c->plen - 50, 3100, 3);
    if (!c->both) {
        g_free(cr->new.v);
        cr->new.v = g_memdup2(cr->old.v, cr->old.vlen);
        cr->new.vlen = cr->old.vlen;
    }
    bs = test_bdrv_open(&cr->t, false, false);
    s = open_store(bs, cr, true, &err);
    g_assert_no_error(err);
    g_assert_cmpint(commit_state(s, cr, &first, &err), ==, 0);
    {
        NvramBlobUpdate u[2] = { { TPM_STATE_BLOB_PERMANENT, cr->old.p, cr->old.plen },
                                 { TPM_STATE_BLOB_VOLATILE, cr->old.v, cr->old.vlen } };
        g_assert_cmpint(nvram_commit(s, u, 2, &err), ==, 0);
    }
    g_assert_no_error(err);
    nvram_close(s);
    bdrv_close(bs);
    state_free(&first);
    cr->baseline = test_file_read(cr->t.path, &cr->baseline_len);
}

static void crash_teardown(Crash *cr)
{
    state_free(&cr->old);
    state_free(&cr->new);
    g_free(cr->baseline);
    test_image_free(&cr->t);
}

/* Baseline bytes back, then the store opened over blkdebug. */
static NvramStore *crash_begin(Crash *cr, BlockDriverState **bsp, BlkdebugState **bdp)
{
    GError *err = NULL;
    NvramStore *s;

    test_file_write(cr->t.path, cr->baseline, cr->baseline_len);
    *bsp = test_bdrv_open(&cr->t, true, false);
    *bdp = bdrv_get_blkdebug(*bsp);
    g_assert_nonnull(*bdp);
    s = open_store(*bsp, cr, true, &err);
    g_assert_no_error(err);
    blkdebug_reset(*bdp);
    return s;
}

/*
 * After a crash: the image opens (as a reader and as an owner), holds the
 * old or the new state, the new one when @want_new, and takes a commit.
 */
static void crash_verify(Crash *cr, int want_new, const char *what)
{
    BlockDriverState *bs = test_bdrv_open(&cr->t, false, false);
    GError *err = NULL;
    NvramStore *s = open_store(bs, cr, true, &err);
    bool is_old, is_new;

    if (!s) {
        g_error("%s: reopen failed: %s", what, err->message);
    }
    is_old = state_is(s, &cr->old);
    is_new = state_is(s, &cr->new);
    if (!is_old && !is_new) {
        g_error("%s: the state is neither the old nor the new one", what);
    }
    if (want_new >= 0 && is_new != (bool)want_new) {
        g_error("%s: expected the %s state", what, want_new ? "new" : "old");
    }
    g_assert_cmpint(commit_state(s, cr, &cr->new, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(state_is(s, &cr->new));
    nvram_close(s);
    bdrv_close(bs);
    cr->runs++;
}

/*
 * The commit with its @flush-th flush failing: how many writes it made in
 * all and how many since the flush before (those a power loss may drop).
 * Returns false when the commit has fewer flushes (it succeeded).
 */
static bool crash_measure(Crash *cr, unsigned flush, unsigned *unflushed,
                          unsigned *writes, int64_t *sizes, unsigned max)
{
    BlockDriverState *bs;
    BlkdebugState *bd;
    NvramStore *s = crash_begin(cr, &bs, &bd);
    GError *err = NULL;
    bool failed;

    blkdebug_fail_flush(bd, flush);
    failed = commit_state(s, cr, &cr->new, &err) < 0;
    g_clear_error(&err);
    *writes = blkdebug_write_count(bd);
    *unflushed = blkdebug_unflushed_count(bd);
    g_assert_cmpuint(*writes, <=, max);
    for (unsigned i = 0; i < *unflushed && failed; i++) {
        sizes[*writes - *unflushed + i] = blkdebug_unflushed_write(bd, i)->bytes;
    }
    nvram_close(s);
    bdrv_close(bs);
    return failed;
}

static void crash_torn(Crash *cr, unsigned index, int64_t keep, int want_new)
{
    BlockDriverState *bs;
    BlkdebugState *bd;
    NvramStore *s = crash_begin(cr, &bs, &bd);
    GError *err = NULL;
    g_autofree char *what = g_strdup_printf("%s write %u torn after %" PRId64 " bytes",
                                            cr->t.path, index, keep);

    blkdebug_tear_write(bd, index, keep);
    g_assert_cmpint(commit_state(s, cr, &cr->new, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_true(blkdebug_is_crashed(bd));
    nvram_close(s);
    bdrv_close(bs);
    /*
     * A torn blob write leaves the old state; the directory write torn
     * inside its unused tail may still complete the commit.
     */
    crash_verify(cr, want_new, what);
}

/*
 * Power loss at the @flush-th flush of the commit, dropping the unflushed
 * writes in @lose_mask. @want_new: 0 when the directory was not written yet
 * (only the old state may come back), else -1 (either), 1 with nothing lost
 * at the last flush.
 */
static void crash_power_loss(Crash *cr, unsigned flush, uint64_t lose_mask, unsigned n,
                             int want_new)
{
    BlockDriverState *bs;
    BlkdebugState *bd;
    NvramStore *s = crash_begin(cr, &bs, &bd);
    GError *err = NULL;
    g_autofree char *what = g_strdup_printf("%s power loss at flush %u, lost writes 0x%"
                                            PRIx64, cr->t.path, flush, lose_mask);

    blkdebug_fail_flush(bd, flush);
    g_assert_cmpint(commit_state(s, cr, &cr->new, &err), ==, -1);
    g_clear_error(&err);
    g_assert_cmpuint(blkdebug_unflushed_count(bd), ==, n);
    g_assert_cmpint(blkdebug_power_loss_mask(bd, lose_mask, &err), ==, 0);
    g_assert_no_error(err);
    nvram_close(s);
    bdrv_close(bs);
    crash_verify(cr, want_new, what);
}

static void crash_power_losses(Crash *cr, unsigned flush, unsigned n, bool last)
{
    if (n <= 8) {
        for (uint64_t m = 0; m < (1ULL << n); m++) {
            crash_power_loss(cr, flush, m, n, !last ? 0 : m == 0 ? 1 : -1);
        }
    } else {
        GRand *r = g_rand_new_with_seed(4242 + n);
        uint64_t all = n == 64 ? ~0ULL : (1ULL << n) - 1;
        crash_power_loss(cr, flush, 0, n, last ? 1 : 0);
        crash_power_loss(cr, flush, all, n, last ? -1 : 0);
        for (int i = 0; i < 128; i++) {
            uint64_t m = (uint64_t)g_rand_int(r) << 32 | g_rand_int(r);
            crash_power_loss(cr, flush, m & all, n, last ? -1 : 0);
        }
        g_rand_free(r);
    }
}

static void test_crash(gconstpointer data)
{
    const CrashCase *c = data;
    Crash cr;
    int64_t sizes[64];
    unsigned unflushed[16], writes = 0, flushes = 0;

    crash_setup(&cr, c);
    /* Each flush of the commit in turn: ordered images have two. */
    while (crash_measure(&cr, flushes + 1, &unflushed[flushes], &writes, sizes,
                         G_N_ELEMENTS(sizes))) {
        g_assert_cmpuint(unflushed[flushes], >=, 1);
        flushes++;
        g_assert_cmpuint(flushes, <, G_N_ELEMENTS(unflushed));
    }
    g_assert_cmpuint(flushes, >=, 2);
    /* The last write before the last flush is the directory. */
    g_assert_cmpint(sizes[writes - 1], ==, NVRAM_SLOT_SIZE);
    g_assert_cmpuint(unflushed[flushes - 1], ==, 1);

    for (unsigned i = 0; i < writes; i++) {
        int64_t keeps[] = { 0, 1, sizes[i] / 2, sizes[i] - 1 };
        for (size_t k = 0; k < G_N_ELEMENTS(keeps); k++) {
            if (keeps[k] < sizes[i] && (k == 0 || keeps[k] > keeps[k - 1])) {
                crash_torn(&cr, i + 1, keeps[k], i + 1 < writes ? 0 : -1);
            }
        }
    }
    for (unsigned f = 0; f < flushes; f++) {
        crash_power_losses(&cr, f + 1, unflushed[f], f + 1 == flushes);
    }
    g_test_message("%s: %u writes and %u flushes per commit, %u crashes", c->format,
                   writes, flushes, cr.runs);
    crash_teardown(&cr);
}

/* A crash at any write of the format of a blank image leaves it blank or formatted. */
static void test_crash_format(gconstpointer data)
{
    const char *format = data;
    bool encrypted = false;

    for (int round = 0; round < 2; round++, encrypted = true) {
        for (unsigned i = 1; i <= 8; i++) {
            TestImage t;
            BlockDriverState *bs;
            BlkdebugState *bd;
            NvramOpenOptions o = test_opts(true, encrypted);
            GError *err = NULL;
            NvramStore *s;
            unsigned writes;

            test_image_new(&t, format);
            bs = test_bdrv_open(&t, true, false);
            bd = bdrv_get_blkdebug(bs);
            blkdebug_reset(bd);
            blkdebug_tear_write(bd, i, 100);
            s = nvram_open(bs, &o, &err);
            writes = blkdebug_write_count(bd);
            if (s) {
                /* The format had fewer than i writes. */
                g_assert_no_error(err);
                nvram_close(s);
            }
            g_clear_error(&err);
            bdrv_close(bs);

            bs = test_bdrv_open(&t, false, false);
            s = nvram_open(bs, &o, &err);
            if (!s) {
                g_error("%s: reopen after a crash at format write %u failed: %s",
                        format, i, err->message);
            }
            g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, NULL, 0));
            nvram_close(s);
            bdrv_close(bs);
            test_image_free(&t);
            if (writes < i) {
                break;
            }
        }
    }
}

/*
 * Exactly one of the old key and the new passphrase opens the image after a
 * crash during a rekey, and the state is intact under it.
 */
static void rekey_verify(Crash *cr, const QCryptoKey *new_key, int want_new,
                         const char *what)
{
    NvramOpenOptions with_old = test_opts(true, true);
    NvramOpenOptions with_new = test_opts(true, false);
    BlockDriverState *bs = test_bdrv_open(&cr->t, false, false);
    GError *e1 = NULL, *e2 = NULL;
    NvramStore *s_old, *s_new;

    with_new.key = *new_key;
    s_old = nvram_open(bs, &with_old, &e1);
    if (s_old) {
        g_assert_true(state_is(s_old, &cr->old));
        nvram_close(s_old);
    }
    s_new = nvram_open(bs, &with_new, &e2);
    if (s_new) {
        g_assert_true(state_is(s_new, &cr->old));
        nvram_close(s_new);
    }
    if (!!s_old == !!s_new) {
        g_error("%s: %s", what, s_old ? "both keys open the image"
                                       : "neither key opens the image");
    }
    if (want_new >= 0 && !!s_new != want_new) {
        g_error("%s: expected the %s key", what, want_new ? "new" : "old");
    }
    g_clear_error(&e1);
    g_clear_error(&e2);
    bdrv_close(bs);
    cr->runs++;
}

static void test_crash_rekey(gconstpointer data)
{
    static const CrashCase c = { "raw", true, 5000, true };
    const char *format = data;
    QCryptoKey pass = { QCRYPTO_KEY_PASSPHRASE, (const uint8_t *)"new passphrase", 14 };
    CrashCase cc = c;
    Crash cr;
    unsigned n;
    GError *err = NULL;

    cc.format = format;
    crash_setup(&cr, &cc);
    /* Count the rekey's writes. */
    {
        BlockDriverState *bs;
        BlkdebugState *bd;
        NvramStore *s = crash_begin(&cr, &bs, &bd);
        blkdebug_fail_flush(bd, 2);
        g_assert_cmpint(nvram_rekey(s, &pass, 1000, &err), ==, -1);
        g_clear_error(&err);
        n = blkdebug_write_count(bd);
        g_assert_cmpuint(blkdebug_unflushed_count(bd), ==, 1);
        g_assert_cmpuint(n, >=, 3);
        g_assert_cmpuint(n, <=, 64);
        nvram_close(s);
        bdrv_close(bs);
    }
    for (unsigned i = 1; i <= n; i++) {
        BlockDriverState *bs;
        BlkdebugState *bd;
        NvramStore *s = crash_begin(&cr, &bs, &bd);
        g_autofree char *what = g_strdup_printf("rekey write %u torn", i);
        blkdebug_tear_write(bd, i, 1);
        g_assert_cmpint(nvram_rekey(s, &pass, 1000, &err), ==, -1);
        g_clear_error(&err);
        nvram_close(s);
        bdrv_close(bs);
        rekey_verify(&cr, &pass, 0, what);
    }
    /* Flush 1 follows the blobs, flush 2 the directory (section 4a). */
    for (unsigned flush = 1; flush <= 2; flush++) {
        unsigned lost_max = flush == 1 ? n - 1 : 1;
        for (uint64_t m = 0; m < (lost_max <= 8 ? (1ULL << lost_max) : 64); m++) {
            BlockDriverState *bs;
            BlkdebugState *bd;
            NvramStore *s = crash_begin(&cr, &bs, &bd);
            uint64_t mask = lost_max <= 8 ? m
                                          : m * 0x9e3779b97f4a7c15ULL >> (64 - lost_max);
            g_autofree char *what = g_strdup_printf("rekey power loss at flush %u, "
                                                    "lost 0x%" PRIx64, flush, mask);
            blkdebug_fail_flush(bd, flush);
            g_assert_cmpint(nvram_rekey(s, &pass, 1000, &err), ==, -1);
            g_clear_error(&err);
            g_assert_cmpuint(blkdebug_unflushed_count(bd), ==, lost_max);
            g_assert_cmpint(blkdebug_power_loss_mask(bd, mask, &err), ==, 0);
            g_assert_no_error(err);
            nvram_close(s);
            bdrv_close(bs);
            rekey_verify(&cr, &pass, flush == 2 && mask == 0 ? 1 : 0, what);
        }
    }
    g_test_message("%s: rekey has %u writes, %u crashes", format, n, cr.runs);
    crash_teardown(&cr);
}

/* ---- damage to an acknowledged commit (docs/nvram-format.md 4a) ---- */

/* The old state, then the new one acknowledged; returns the new image bytes. */
static uint8_t *damage_setup(Crash *cr, const CrashCase *c, gsize *len, NvramInfo *info)
{
    BlockDriverState *bs;
    NvramStore *s;
    GError *err = NULL;

    crash_setup(cr, c);
    bs = test_bdrv_open(&cr->t, false, false);
    s = open_store(bs, cr, true, &err);
    g_assert_no_error(err);
    g_assert_cmpint(commit_state(s, cr, &cr->new, &err), ==, 0);
    g_assert_cmpint(nvram_get_info(s, info, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(info->ordered);
    nvram_close(s);
    bdrv_close(bs);
    return test_file_read(cr->t.path, len);
}

/* Writes @len bytes at @off of the virtual disk, through the format driver. */
static void disk_write(Crash *cr, uint64_t off, const uint8_t *buf, size_t len)
{
    BlockDriverState *bs = test_bdrv_open(&cr->t, false, false);
    GError *err = NULL;

    g_assert_cmpint(bdrv_pwrite(bs, off, len, buf, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(bs);
}

static void disk_flip(Crash *cr, uint64_t off)
{
    BlockDriverState *bs = test_bdrv_open(&cr->t, false, false);
    GError *err = NULL;
    uint8_t c;

    g_assert_cmpint(bdrv_pread(bs, off, 1, &c, &err), ==, 0);
    c ^= 0x20;
    g_assert_cmpint(bdrv_pwrite(bs, off, 1, &c, &err), ==, 0);
    g_assert_no_error(err);
    bdrv_close(bs);
}

/*
 * Opening as owner (and as reader) is refused with the damage sentence, and
 * the image is byte-identical afterwards.
 */
static void assert_damage_refused(Crash *cr, uint64_t damaged_gen, const char *what)
{
    gsize before_len, after_len;
    g_autofree uint8_t *before = test_file_read(cr->t.path, &before_len);
    g_autofree uint8_t *after = NULL;
    g_autofree char *want = g_strdup_printf("NVRAM generation %" PRIu64 " (slot ",
                                            damaged_gen);
    g_autofree char *intact = g_strdup_printf("generation %" PRIu64 " (slot ",
                                              damaged_gen - 1);

    for (int owner = 1; owner >= 0; owner--) {
        BlockDriverState *bs = test_bdrv_open(&cr->t, false, false);
        GError *err = NULL;
        NvramStore *s = open_store(bs, cr, owner, &err);

        if (s) {
            g_error("%s: the damaged image opened (%s)", what,
                    state_is(s, &cr->old) ? "old state: a silent rollback" : "?");
        }
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
        if (!strstr(err->message, want) || !strstr(err->message, "is damaged") ||
            !strstr(err->message, intact) || !strstr(err->message, "is intact") ||
            !strstr(err->message, "--accept-rollback")) {
            g_error("%s: unexpected refusal: %s", what, err->message);
        }
        g_error_free(err);
        bdrv_close(bs);
    }
    after = test_file_read(cr->t.path, &after_len);
    g_assert_cmpuint(before_len, ==, after_len);
    g_assert_true(memcmp(before, after, before_len) == 0);
}

/* A flipped byte in every block of every blob the newest directory names. */
static void test_damage_blobs(gconstpointer data)
{
    const CrashCase *c = data;
    Crash cr;
    NvramInfo info;
    gsize len;
    g_autofree uint8_t *img = damage_setup(&cr, c, &len, &info);
    unsigned tried = 0;

    for (unsigned b = 0; b < info.n_blobs; b++) {
        if (info.blobs[b].generation != info.generation) {
            continue;   /* kept from an older commit */
        }
        for (uint64_t off = 0; off < info.blobs[b].length; off += NVRAM_BLOCK_SIZE) {
            g_autofree char *what = g_strdup_printf("%s: blob %d byte %" PRIu64,
                                                    cr.t.path, info.blobs[b].type, off);
            test_file_write(cr.t.path, img, len);
            disk_flip(&cr, info.blobs[b].offset + off + 7 % info.blobs[b].length);
            assert_damage_refused(&cr, info.generation, what);
            tried++;
        }
    }
    g_assert_cmpuint(tried, >=, 1);
    g_test_message("%s: %u damaged blocks refused", c->format, tried);
    crash_teardown(&cr);
}

/* A flipped bit in either copy of the newest directory: repaired, never rolled back. */
static void test_damage_directory_copy(gconstpointer data)
{
    const CrashCase *c = data;
    Crash cr;
    NvramInfo info;
    gsize len;
    g_autofree uint8_t *img = damage_setup(&cr, c, &len, &info);
    uint64_t slot = info.slot ? NVRAM_SLOT_B_OFFSET : NVRAM_SLOT_A_OFFSET;

    for (int copy = 0; copy < NVRAM_DIR_COPIES; copy++) {
        static const unsigned fields[] = { 3, NVRAM_DIR_OFF_GENERATION + 7,
                                           NVRAM_DIR_OFF_ENTRIES + 20,
                                           NVRAM_DIR_OFF_DIR_CRC };
        for (size_t f = 0; f < G_N_ELEMENTS(fields); f++) {
            BlockDriverState *bs;
            NvramStore *s;
            NvramInfo after;
            GError *err = NULL;

            test_file_write(cr.t.path, img, len);
            disk_flip(&cr, slot + copy * NVRAM_DIR_COPY_STRIDE + fields[f]);
            /* A reader sees the new state and reports the damaged copy. */
            bs = test_bdrv_open(&cr.t, false, false);
            s = open_store(bs, &cr, false, &err);
            g_assert_no_error(err);
            g_assert_true(state_is(s, &cr.new));
            g_assert_cmpint(nvram_check(s, &err), ==, -1);
            g_assert_nonnull(strstr(err->message, "one copy of the directory in use"));
            g_clear_error(&err);
            nvram_close(s);
            /* The owner writes it again into both slots, and check is clean. */
            s = open_store(bs, &cr, true, &err);
            g_assert_no_error(err);
            g_assert_true(state_is(s, &cr.new));
            g_assert_cmpint(nvram_get_info(s, &after, &err), ==, 0);
            g_assert_cmpuint(after.generation, ==, info.generation + 2);
            g_assert_cmpint(nvram_check(s, &err), ==, 0);
            g_assert_no_error(err);
            nvram_close(s);
            bdrv_close(bs);
        }
    }
    crash_teardown(&cr);
}

/*
 * The host file cut at every 4 KiB: refused (image unchanged) or, when the
 * cut spares everything the newest state needs, the new state. Never the
 * old state, never a fresh TPM.
 */
static void test_damage_truncate(gconstpointer data)
{
    const CrashCase *c = data;
    Crash cr;
    NvramInfo info;
    gsize len;
    g_autofree uint8_t *img = damage_setup(&cr, c, &len, &info);
    unsigned refused = 0, opened = 0;

    for (gsize cut = 0; cut < len; cut += NVRAM_BLOCK_SIZE) {
        g_autofree char *what = g_strdup_printf("%s cut at %zu", cr.t.path, (size_t)cut);
        BlockOpenOptions bo = { .format = NULL };
        GError *err = NULL;
        BlockDriverState *bs;
        NvramStore *s = NULL;
        g_autofree uint8_t *after = NULL;
        gsize after_len;

        test_file_write(cr.t.path, img, cut);
        /* Probed, as qtpm opens a -drive without format=. */
        bs = bdrv_open(cr.t.path, &bo, &err);
        if (bs) {
            NvramOpenOptions o = test_opts(true, c->encrypted);
            s = nvram_open(bs, &o, &err);
        }
        if (s) {
            if (!state_is(s, &cr.new)) {
                g_error("%s: opened with %s", what,
                        state_is(s, &cr.old) ? "the old state" : "another state");
            }
            opened++;
            nvram_close(s);
        } else {
            g_assert_nonnull(err);
            if (strstr(err->message, "is blank")) {
                g_error("%s: taken as blank: %s", what, err->message);
            }
            refused++;
            after = test_file_read(cr.t.path, &after_len);
            g_assert_cmpuint(after_len, ==, cut);
            g_assert_true(memcmp(after, img, cut) == 0);
        }
        g_clear_error(&err);
        bdrv_close(bs);
    }
    g_assert_cmpuint(refused, >=, 1);
    g_test_message("%s: %u cuts refused, %u spared the new state", c->format, refused,
                   opened);
    crash_teardown(&cr);
}

/* The repair flow: refused, then accepted by name, then an ordinary image. */
static void test_accept_rollback(gconstpointer data)
{
    const CrashCase *c = data;
    Crash cr;
    NvramInfo info, after;
    gsize len;
    g_autofree uint8_t *img = damage_setup(&cr, c, &len, &info);
    NvramOpenOptions o = test_opts(true, c->encrypted);
    BlockDriverState *bs;
    NvramStore *s;
    GError *err = NULL;
    uint8_t zero[NVRAM_BLOCK_SIZE] = { 0 };
    const NvramBlobInfo *p = NULL;

    for (unsigned b = 0; b < info.n_blobs; b++) {
        if (info.blobs[b].type == TPM_STATE_BLOB_PERMANENT) {
            p = &info.blobs[b];
        }
    }
    g_assert_nonnull(p);
    disk_write(&cr, p->offset, zero, MIN(sizeof(zero), p->length));
    assert_damage_refused(&cr, info.generation, "zeroed permanent blob");

    /* A reader is never allowed to roll back. */
    bs = test_bdrv_open(&cr.t, false, false);
    o.owner = false;
    o.accept_rollback = true;
    g_assert_null(nvram_open(bs, &o, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
    g_clear_error(&err);

    o.owner = true;
    s = nvram_open(bs, &o, &err);
    g_assert_no_error(err);
    g_assert_true(state_is(s, &cr.old));
    g_assert_cmpint(nvram_get_info(s, &after, &err), ==, 0);
    g_assert_cmpuint(after.rolled_back_from, ==, info.generation);
    g_assert_cmpuint(after.generation, ==, info.generation + 1);
    nvram_close(s);

    /* Now an ordinary image holding the old state. */
    o.accept_rollback = false;
    s = nvram_open(bs, &o, &err);
    g_assert_no_error(err);
    g_assert_true(state_is(s, &cr.old));
    g_assert_cmpint(nvram_check(s, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(commit_state(s, &cr, &cr.new, &err), ==, 0);
    g_assert_true(state_is(s, &cr.new));
    nvram_close(s);
    bdrv_close(bs);
    crash_teardown(&cr);
}

/*
 * An image made before ordered commits keeps its rules: one flush, and the
 * old state when the newest blobs fail.
 */
static void test_unordered_image(gconstpointer data)
{
    const char *format = data;
    TestImage t;
    NvramOpenOptions o = test_opts(true, true);
    BlockDriverState *bs;
    NvramStore *s;
    NvramInfo info;
    GError *err = NULL;
    g_autofree uint8_t *p1 = test_blob(5000, 1);
    g_autofree uint8_t *p2 = test_blob(5000, 2);
    uint8_t zero[64] = { 0 };
    uint64_t flushes;

    test_image_new(&t, format);
    bs = test_bdrv_open(&t, false, false);
    nvram_close(nvram_open(bs, &o, &err));
    g_assert_no_error(err);
    bdrv_close(bs);
    test_store_make_unordered(&t);

    bs = test_bdrv_open(&t, false, false);
    s = nvram_open(bs, &o, &err);
    g_assert_no_error(err);
    /* Past the growth of the disk and the allocation of its clusters. */
    for (int i = 0; i < 6; i++) {
        g_assert_cmpint(nvram_store(s, TPM_STATE_BLOB_PERMANENT, i % 2 ? p2 : p1, 5000,
                                    &err), ==, 0);
    }
    g_assert_cmpint(nvram_store(s, TPM_STATE_BLOB_PERMANENT, p1, 5000, &err), ==, 0);
    flushes = bdrv_get_flush_count(bs);
    g_assert_cmpint(nvram_store(s, TPM_STATE_BLOB_PERMANENT, p2, 5000, &err), ==, 0);
    g_assert_cmpuint(bdrv_get_flush_count(bs), ==, flushes + 1);
    g_assert_cmpint(nvram_get_info(s, &info, &err), ==, 0);
    g_assert_false(info.ordered);
    nvram_close(s);
    g_assert_cmpint(bdrv_pwrite(bs, info.blobs[0].offset, sizeof(zero), zero, &err), ==, 0);

    s = nvram_open(bs, &o, &err);
    g_assert_no_error(err);
    g_assert_true(test_blob_equals(s, TPM_STATE_BLOB_PERMANENT, p1, 5000));
    g_assert_cmpint(nvram_get_info(s, &info, &err), ==, 0);
    g_assert_true(info.other_problem);
    nvram_close(s);
    bdrv_close(bs);
    test_image_free(&t);
}

int main(int argc, char **argv)
{
    static const char *formats[] = { "raw", "qcow2" };
    static CrashCase cases[16];
    int n = 0;

    g_test_init(&argc, &argv, NULL);
    for (int f = 0; f < 2; f++) {
        for (int enc = 0; enc < 2; enc++) {
            for (int large = 0; large < 2; large++) {
                for (int both = 0; both < 2; both++) {
                    CrashCase *c = &cases[n++];
                    g_autofree char *path = NULL;
                    c->format = formats[f];
                    c->encrypted = enc;
                    c->plen = large ? TEST_LARGE_BLOB : 1200;
                    c->both = both;
                    path = g_strdup_printf("/nvram-crash/%s/%s/%s/%s", formats[f],
                                           enc ? "encrypted" : "plain",
                                           large ? "large" : "small",
                                           both ? "two-blobs" : "one-blob");
                    g_test_add_data_func(path, c, test_crash);
                }
            }
        }
        {
            g_autofree char *path = g_strdup_printf("/nvram-crash/%s/format", formats[f]);
            g_test_add_data_func(path, formats[f], test_crash_format);
        }
        {
            g_autofree char *path = g_strdup_printf("/nvram-crash/%s/rekey", formats[f]);
            g_test_add_data_func(path, formats[f], test_crash_rekey);
        }
        {
            g_autofree char *path = g_strdup_printf("/nvram-crash/%s/unordered-image",
                                                    formats[f]);
            g_test_add_data_func(path, formats[f], test_unordered_image);
        }
        for (int large = 0; large < 2; large++) {
            static CrashCase damage[4];
            CrashCase *c = &damage[f * 2 + large];
            static const struct { const char *name; GTestDataFunc fn; } tests[] = {
                { "blobs", test_damage_blobs },
                { "directory-copy", test_damage_directory_copy },
                { "truncate", test_damage_truncate },
                { "accept-rollback", test_accept_rollback },
            };
            c->format = formats[f];
            c->encrypted = true;
            c->plen = large ? TEST_LARGE_BLOB : 1200;
            c->both = true;
            for (size_t i = 0; i < G_N_ELEMENTS(tests); i++) {
                g_autofree char *path = g_strdup_printf("/nvram-crash/%s/damage/%s/%s",
                                                        formats[f],
                                                        large ? "large" : "small",
                                                        tests[i].name);
                g_test_add_data_func(path, c, tests[i].fn);
            }
        }
    }
    return g_test_run();
}
