/*
 * NVRAM commit benchmark: N durable updates of a permall-sized blob plus a
 * small volatile blob through the NVRAM store on a fresh image, then N
 * updates of the volatile blob alone. Prints one line per phase: latency
 * (median/min/max/mean), commits/s, flushes per commit and file growth;
 * then the same writes timed on a fresh file (the baseline) and on the
 * image itself (the replay), right after each commit, in turns first.
 *
 *   nvram-commit DIR FORMAT N [key|plain] [both|full]
 * "full" runs the permall+volatile phase only, without the baseline and the
 * replay rounds (for instruction counts of the store alone).
 *
 * Built and run by bench/run.sh; not part of the library or the tests.
 */
#include "qemu/osdep.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "block/block.h"
#include "nvram/nvram.h"
#include "nvram/nvram-format.h"

#define PERMALL_LEN (173 * 1024)
#define VOLATILE_LEN 4000

static const uint8_t bench_key[32] = {
    0x5a, 0x17, 0x93, 0x2c, 0x61, 0xe4, 0x08, 0xbf, 0x3d, 0x90, 0x27, 0xc1,
    0x44, 0x7e, 0xa8, 0x15, 0xd2, 0x6b, 0x39, 0xf0, 0x82, 0x0c, 0x5e, 0xa3,
    0x71, 0xc8, 0x1f, 0x96, 0x4a, 0xe7, 0x2b, 0xd0,
};

static void fill(uint8_t *b, size_t len, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345;
        b[i] = x >> 16;
    }
}

static int64_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) < 0 ? -1 : (int64_t)st.st_size;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *label, double *lat, int n, uint64_t flushes,
                   int64_t size_before, int64_t size_after)
{
    double sum = 0;

    for (int i = 0; i < n; i++) {
        sum += lat[i];
    }
    qsort(lat, n, sizeof(*lat), cmp_double);
    printf("%-16s n=%-4d median %7.3f  min %7.3f  max %7.3f  mean %7.3f ms"
           "  %7.1f commits/s  %.2f flushes/commit  growth %+" PRId64 " B\n",
           label, n, lat[n / 2], lat[0], lat[n - 1], sum / n,
           n / (sum / 1000.0), (double)flushes / n, size_after - size_before);
}

/*
 * The baseline: what a commit of the same blobs needs at least, on a plain
 * file: each blob written, a flush (ordered commits), the 4096-byte
 * directory slot written, a flush. One round runs right after each commit,
 * so that both see the same load on a shared machine.
 */
typedef struct Baseline {
    int fd;
    char *path;
    const size_t *lens;
    int n_blobs;
    size_t total;
    uint8_t *buf;
    double *lat;
} Baseline;

static bool baseline_round(Baseline *b, int flushes, double *ms)
{
    int64_t t0 = g_get_monotonic_time();
    off_t off = 12288;

    for (int i = 0; i < b->n_blobs; i++) {
        if (pwrite(b->fd, b->buf + (off - 12288), b->lens[i], off) < 0) {
            return false;
        }
        off += QEMU_ALIGN_UP(b->lens[i], 4096);
    }
    if (flushes > 1 && fdatasync(b->fd) < 0) {
        return false;
    }
    b->buf[g_random_int_range(0, b->total)] ^= 1;
    if (pwrite(b->fd, b->buf + b->total, 4096, 4096) < 0 || fdatasync(b->fd) < 0) {
        return false;
    }
    if (ms) {
        *ms = (g_get_monotonic_time() - t0) / 1000.0;
    }
    return true;
}

static bool baseline_open(Baseline *b, const char *dir, const size_t *lens, int n_blobs,
                          int n)
{
    memset(b, 0, sizeof(*b));
    b->path = g_strdup_printf("%s/nvram-bench.baseline", dir);
    b->lens = lens;
    b->n_blobs = n_blobs;
    for (int i = 0; i < n_blobs; i++) {
        b->total += QEMU_ALIGN_UP(lens[i], 4096);
    }
    b->buf = g_malloc(b->total + 4096);
    fill(b->buf, b->total + 4096, 7);
    b->lat = g_new(double, n);
    b->fd = open(b->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (b->fd < 0 || ftruncate(b->fd, 12288 + b->total + 4096) < 0) {
        return false;
    }
    /* The first rounds allocate the file's blocks. */
    for (int i = 0; i < 4; i++) {
        if (!baseline_round(b, 2, NULL)) {
            return false;
        }
    }
    return true;
}

static void baseline_close(Baseline *b)
{
    if (b->fd >= 0) {
        close(b->fd);
    }
    unlink(b->path);
    g_free(b->path);
    g_free(b->buf);
    g_free(b->lat);
}

/*
 * The replay: the writes and flushes a commit made, made again right after
 * it on the image itself, through the block layer. Each blob the commit
 * wrote is read back (from the page cache, untimed) and written over
 * itself, then a flush (ordered commits), then the directory slot in use
 * over itself, then a flush. The bytes do not change, so neither does the
 * store. Against the commit, what is left out is only the store's own work
 * (sealing, CRCs, the directory, the locks); against the baseline file it
 * shares the image's blocks, extents and cached pages.
 */
typedef struct Replay {
    double *lat;
    uint64_t flushes;       /* made by the replay, not counted for the store */
} Replay;

static bool replay_round(Replay *r, BlockDriverState *bs, NvramStore *s, bool full,
                         int flushes, double *ms, GError **errp)
{
    NvramInfo info;
    uint8_t *buf[TPM_STATE_BLOB_TYPE_MAX] = { NULL };
    uint8_t slot[NVRAM_SLOT_SIZE];
    uint64_t slot_off;
    uint64_t f0 = bdrv_get_flush_count(bs);
    int64_t t0;
    bool ok = false;

    if (nvram_get_info(s, &info, errp) < 0) {
        return false;
    }
    slot_off = info.slot ? NVRAM_SLOT_B_OFFSET : NVRAM_SLOT_A_OFFSET;
    for (unsigned i = 0; i < info.n_blobs; i++) {
        if (!full && info.blobs[i].type != TPM_STATE_BLOB_VOLATILE) {
            continue;
        }
        buf[i] = g_malloc(info.blobs[i].length);
        if (bdrv_pread(bs, info.blobs[i].offset, info.blobs[i].length, buf[i], errp) < 0) {
            goto out;
        }
    }
    if (bdrv_pread(bs, slot_off, sizeof(slot), slot, errp) < 0) {
        goto out;
    }
    t0 = g_get_monotonic_time();
    for (unsigned i = 0; i < info.n_blobs; i++) {
        if (buf[i] && bdrv_pwrite(bs, info.blobs[i].offset, info.blobs[i].length,
                                  buf[i], errp) < 0) {
            goto out;
        }
    }
    if ((flushes > 1 && bdrv_flush(bs, errp) < 0) ||
        bdrv_pwrite(bs, slot_off, sizeof(slot), slot, errp) < 0 ||
        bdrv_flush(bs, errp) < 0) {
        goto out;
    }
    *ms = (g_get_monotonic_time() - t0) / 1000.0;
    ok = true;
out:
    r->flushes += bdrv_get_flush_count(bs) - f0;
    for (unsigned i = 0; i < TPM_STATE_BLOB_TYPE_MAX; i++) {
        g_free(buf[i]);
    }
    return ok;
}

static void report_replay(const char *label, Replay *r, double commit_median, int n)
{
    qsort(r->lat, n, sizeof(*r->lat), cmp_double);
    printf("%-16s replay: the same writes and flushes on the image itself, median "
           "%7.3f ms; commit/replay %.2fx\n", label, r->lat[n / 2],
           commit_median / r->lat[n / 2]);
}

static void report_baseline(const char *label, Baseline *b, double commit_median,
                            int flushes, int n)
{
    double base;

    qsort(b->lat, n, sizeof(*b->lat), cmp_double);
    base = b->lat[n / 2];
    printf("%-16s baseline: the same bytes in %d pwrite+fdatasync group(s), median "
           "%7.3f ms; commit/baseline %.2fx\n", label, flushes, base,
           commit_median / base);
}

int main(int argc, char **argv)
{
    const char *dir, *format;
    int n;
    bool keyed, full_only;
    g_autofree char *path = NULL;
    g_autofree uint8_t *perm = g_malloc(PERMALL_LEN);
    g_autofree uint8_t *vol = g_malloc(VOLATILE_LEN);
    g_autofree double *lat = NULL;
    BlockOpenOptions bo = { 0 };
    NvramOpenOptions no = { .owner = true, .format_blank = true, .tpm_version = 2 };
    BlockDriverState *bs;
    NvramStore *s;
    GError *err = NULL;
    int64_t size0, size1;
    uint64_t f0, flushes;
    Baseline base_full = { .fd = -1 }, base_vol = { .fd = -1 };
    Replay rep = { 0 };
    int per_commit = 2;

    if (argc < 4 || atoi(argv[3]) <= 0) {
        fprintf(stderr, "usage: nvram-commit DIR qcow2|raw N [key|plain] [both|full]\n");
        return 1;
    }
    dir = argv[1];
    format = argv[2];
    n = atoi(argv[3]);
    keyed = argc < 5 || strcmp(argv[4], "plain");
    full_only = argc > 5 && !strcmp(argv[5], "full");
    lat = g_new(double, n);
    rep.lat = g_new(double, n);
    path = g_strdup_printf("%s/nvram-bench.%s", dir, format);
    unlink(path);
    if (!strcmp(format, "qcow2")) {
        if (qcow2_create(path, 1024 * 1024, NULL, &err) < 0) {
            goto fail;
        }
    } else if (!g_file_set_contents(path, "", 0, &err)) {
        goto fail;
    }
    bo.format = format;
    bs = bdrv_open(path, &bo, &err);
    if (!bs) {
        goto fail;
    }
    if (keyed) {
        no.key.kind = QCRYPTO_KEY_RAW;
        no.key.data = bench_key;
        no.key.len = sizeof(bench_key);
    }
    s = nvram_open(bs, &no, &err);
    if (!s) {
        goto fail;
    }

    /* Warm-up: both directory slots and both blob areas get allocated. */
    for (int i = 0; i < 4; i++) {
        NvramBlobUpdate u[2] = { { TPM_STATE_BLOB_PERMANENT, perm, PERMALL_LEN },
                                 { TPM_STATE_BLOB_VOLATILE, vol, VOLATILE_LEN } };
        fill(perm, PERMALL_LEN, i);
        if (nvram_commit(s, u, 2, &err) < 0) {
            goto fail;
        }
    }

    {
        static const size_t full_lens[] = { PERMALL_LEN, VOLATILE_LEN };
        static const size_t vol_lens[] = { VOLATILE_LEN };
        NvramInfo info;

        if (nvram_get_info(s, &info, &err) < 0) {
            goto fail;
        }
        per_commit = info.ordered ? 2 : 1;
        if (!baseline_open(&base_full, dir, full_lens, 2, n) ||
            !baseline_open(&base_vol, dir, vol_lens, 1, n)) {
            goto fail_baseline;
        }
    }
    size0 = file_size(path);
    f0 = bdrv_get_flush_count(bs);
    for (int i = 0; i < n; i++) {
        NvramBlobUpdate u[2] = { { TPM_STATE_BLOB_PERMANENT, perm, PERMALL_LEN },
                                 { TPM_STATE_BLOB_VOLATILE, vol, VOLATILE_LEN } };
        int64_t t0;

        /* A few bytes change per update, as with a TPM NV write. */
        perm[(i * 7919) % PERMALL_LEN] ^= 1;
        vol[i % VOLATILE_LEN] ^= 1;
        t0 = g_get_monotonic_time();
        if (nvram_commit(s, u, 2, &err) < 0) {
            goto fail;
        }
        lat[i] = (g_get_monotonic_time() - t0) / 1000.0;
        if (full_only) {
            continue;
        }
        /* Every other round the other floor goes first. */
        if (i % 2 && !replay_round(&rep, bs, s, true, per_commit, &rep.lat[i], &err)) {
            goto fail;
        }
        if (!baseline_round(&base_full, per_commit, &base_full.lat[i])) {
            goto fail_baseline;
        }
        if (!(i % 2) && !replay_round(&rep, bs, s, true, per_commit, &rep.lat[i], &err)) {
            goto fail;
        }
    }
    size1 = file_size(path);
    flushes = bdrv_get_flush_count(bs) - f0 - rep.flushes;
    report("permall+volatile", lat, n, flushes, size0, size1);
    if (!full_only) {
        report_baseline("permall+volatile", &base_full, lat[n / 2], per_commit, n);
        report_replay("permall+volatile", &rep, lat[n / 2], n);
    }

    size0 = size1;
    rep.flushes = 0;
    f0 = bdrv_get_flush_count(bs);
    for (int i = 0; i < n && !full_only; i++) {
        int64_t t0;

        vol[i % VOLATILE_LEN] ^= 2;
        t0 = g_get_monotonic_time();
        if (nvram_store(s, TPM_STATE_BLOB_VOLATILE, vol, VOLATILE_LEN, &err) < 0) {
            goto fail;
        }
        lat[i] = (g_get_monotonic_time() - t0) / 1000.0;
        if (i % 2 && !replay_round(&rep, bs, s, false, per_commit, &rep.lat[i], &err)) {
            goto fail;
        }
        if (!baseline_round(&base_vol, per_commit, &base_vol.lat[i])) {
            goto fail_baseline;
        }
        if (!(i % 2) && !replay_round(&rep, bs, s, false, per_commit, &rep.lat[i], &err)) {
            goto fail;
        }
    }
    if (!full_only) {
        size1 = file_size(path);
        flushes = bdrv_get_flush_count(bs) - f0 - rep.flushes;
        report("volatile only", lat, n, flushes, size0, size1);
        report_baseline("volatile only", &base_vol, lat[n / 2], per_commit, n);
        report_replay("volatile only", &rep, lat[n / 2], n);
    }
    baseline_close(&base_full);
    baseline_close(&base_vol);

    nvram_close(s);
    bdrv_close(bs);
    unlink(path);
    return 0;

fail_baseline:
    fprintf(stderr, "nvram-commit: baseline file: %s\n", g_strerror(errno));
    unlink(path);
    return 1;

fail:
    fprintf(stderr, "nvram-commit: %s\n", err ? err->message : "failed");
    g_clear_error(&err);
    unlink(path);
    return 1;
}
