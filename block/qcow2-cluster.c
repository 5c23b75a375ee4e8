/*
 * qcow2 cluster mapping: L1/L2 lookups, reads of every cluster kind,
 * allocating writes, zero clusters and L1 growth. docs/qcow2.md §3 and §5.
 */
#include "qemu/osdep.h"

#include <zlib.h>

#include "qcow2.h"

void qcow2_parse_compressed(BDRVQcow2State *s, uint64_t entry,
                            uint64_t *coffset, uint64_t *csize)
{
    uint32_t x = 62 - (s->cluster_bits - 8);
    uint64_t nb_sectors;

    *coffset = entry & ((1ULL << x) - 1);
    nb_sectors = ((entry >> x) & ((1ULL << (s->cluster_bits - 8)) - 1)) + 1;
    *csize = nb_sectors * QCOW2_COMPRESSED_SECTOR_SIZE -
             (*coffset & (QCOW2_COMPRESSED_SECTOR_SIZE - 1));
}

static bool qcow2_entry_is_compressed(uint64_t entry)
{
    return entry & QCOW_OFLAG_COMPRESSED;
}

/* Reads as zeros without touching the file: unallocated or zero flag. */
static bool qcow2_entry_reads_zero(BDRVQcow2State *s, uint64_t entry)
{
    if (qcow2_entry_is_compressed(entry)) {
        return false;
    }
    return (entry & L2E_OFFSET_MASK) == 0 || (entry & QCOW_OFLAG_ZERO);
}

/* Validates an L2 entry read from the file. */
static int qcow2_check_l2_entry(BlockDriverState *bs, uint64_t guest_offset,
                                uint64_t entry, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (qcow2_entry_is_compressed(entry)) {
        uint64_t coffset, csize;

        if (entry & QCOW_OFLAG_COPIED) {
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "compressed L2 entry 0x%" PRIx64 " for guest "
                           "offset 0x%" PRIx64 " has the COPIED flag", entry,
                           guest_offset);
            return -EINVAL;
        }
        qcow2_parse_compressed(s, entry, &coffset, &csize);
        if (coffset >= QCOW2_MAX_VIRTUAL_SIZE ||
            coffset >= (uint64_t)s->file_size || coffset < s->cluster_size) {
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "compressed cluster for guest offset 0x%" PRIx64
                           " at 0x%" PRIx64 " is outside the file's data "
                           "area", guest_offset, coffset);
            return -EINVAL;
        }
        return 0;
    }
    if (entry & L2E_STD_RESERVED_MASK) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "L2 entry 0x%" PRIx64 " for guest offset 0x%" PRIx64
                       " has reserved bits set", entry, guest_offset);
        return -EINVAL;
    }
    if ((entry & QCOW_OFLAG_ZERO) && s->hdr.version < 3) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "L2 entry 0x%" PRIx64 " for guest offset 0x%" PRIx64
                       " has the zero flag in a version 2 image", entry,
                       guest_offset);
        return -EINVAL;
    }
    if ((entry & L2E_OFFSET_MASK) & (s->cluster_size - 1)) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "data cluster offset 0x%" PRIx64 " for guest offset "
                       "0x%" PRIx64 " is not cluster aligned",
                       entry & L2E_OFFSET_MASK, guest_offset);
        return -EINVAL;
    }
    if ((entry & L2E_OFFSET_MASK) == 0 && (entry & QCOW_OFLAG_COPIED)) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "L2 entry 0x%" PRIx64 " for guest offset 0x%" PRIx64
                       " is COPIED without a cluster", entry, guest_offset);
        return -EINVAL;
    }
    if ((entry & L2E_OFFSET_MASK) != 0 &&
        (entry & L2E_OFFSET_MASK) < s->cluster_size) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "data cluster for guest offset 0x%" PRIx64
                       " overlaps the header", guest_offset);
        return -EINVAL;
    }
    return 0;
}

/* The L2 table offset of L1 entry @l1_index, validated; 0 when unallocated. */
static int qcow2_get_l2_offset(BlockDriverState *bs, uint64_t l1_index,
                               uint64_t *l2_offset, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t e;

    if (l1_index >= s->l1_size) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "guest cluster beyond the L1 table (index %" PRIu64
                       ")", l1_index);
        return -EINVAL;
    }
    e = s->l1_table[l1_index];
    if (e & L1E_RESERVED_MASK) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "L1 entry %" PRIu64 " (0x%" PRIx64 ") has reserved "
                       "bits set or is not cluster aligned", l1_index, e);
        return -EINVAL;
    }
    *l2_offset = e & L1E_OFFSET_MASK;
    if (*l2_offset &&
        !qcow2_check_table(bs, "L2 table", *l2_offset, s->cluster_size, true,
                           errp)) {
        return -EINVAL;
    }
    return 0;
}

int qcow2_get_l2_entry(BlockDriverState *bs, uint64_t guest_offset,
                       uint64_t *entry, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t gci = guest_offset >> s->cluster_bits;
    uint64_t l2_offset;
    uint8_t *table;

    *entry = 0;
    if (qcow2_get_l2_offset(bs, gci >> s->l2_bits, &l2_offset, errp) < 0) {
        return -EINVAL;
    }
    if (!l2_offset) {
        return 0;
    }
    table = qcow2_cache_get(bs, &s->l2_cache, l2_offset, false, errp);
    if (!table) {
        return -EIO;
    }
    *entry = ldq_be_p(table + (gci & (s->l2_size - 1)) * L2E_SIZE);
    return qcow2_check_l2_entry(bs, guest_offset, *entry, errp);
}

/* Inflates the compressed cluster of @entry into s->decompressed_cluster. */
static int qcow2_decompress_cluster(BlockDriverState *bs, uint64_t entry,
                                    GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t coffset, csize, len;
    g_autofree uint8_t *in = NULL;
    z_stream z;
    int ret;

    if (s->decompressed_entry == entry) {
        return 0;
    }
    qcow2_parse_compressed(s, entry, &coffset, &csize);
    if (coffset >= (uint64_t)s->file_size) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "compressed cluster at 0x%" PRIx64 " is outside the "
                       "file", coffset);
        return -EINVAL;
    }
    len = MIN(csize, (uint64_t)s->file_size - coffset);
    in = g_malloc(len);
    if (bdrv_file_pread(bs, coffset, len, in, errp) < 0) {
        return -EIO;
    }
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -12) != Z_OK) {
        bdrv_set_error(errp, bs, QTPM_ERROR_FAILED,
                       "cannot initialise zlib");
        return -ENOMEM;
    }
    z.next_in = in;
    z.avail_in = len;
    z.next_out = s->decompressed_cluster;
    z.avail_out = s->cluster_size;
    ret = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    /* The data may end before the last sector does: a full cluster of
     * output is what counts. */
    if ((ret != Z_STREAM_END && ret != Z_BUF_ERROR) || z.avail_out != 0) {
        s->decompressed_entry = 0;
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "compressed cluster at 0x%" PRIx64 " is corrupt",
                       coffset);
        return -EINVAL;
    }
    s->decompressed_entry = entry;
    return 0;
}

/*
 * A data cluster that starts at or past the end of the file was lost (the
 * image was truncated): qemu-img check reports it as an error, and reading
 * it as zeros would hand the layer above zeros for data it wrote. The file
 * length is asked again first, since another process may have grown it.
 * The tail of a cluster cut short reads as zeros (file layer), as in QEMU.
 */
static int qcow2_read_data_cluster(BlockDriverState *bs, uint64_t host_offset,
                                   uint64_t offset_in_cluster, uint64_t bytes,
                                   uint8_t *buf, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (host_offset >= (uint64_t)s->file_size) {
        int64_t len = bdrv_file_getlength(bs, errp);

        if (len < 0) {
            return (int)len;
        }
        s->file_size = MAX(s->file_size, len);
        if (host_offset >= (uint64_t)len) {
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "data cluster at 0x%" PRIx64 " lies past the end "
                           "of the file (0x%" PRIx64 " bytes): the image was "
                           "truncated", host_offset, (uint64_t)len);
            return -EIO;
        }
    }
    return bdrv_file_pread(bs, host_offset + offset_in_cluster, bytes, buf,
                           errp);
}

int qcow2_read_cluster(BlockDriverState *bs, uint64_t entry,
                       uint64_t offset_in_cluster, uint64_t bytes,
                       uint8_t *buf, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (qcow2_entry_is_compressed(entry)) {
        if (qcow2_decompress_cluster(bs, entry, errp) < 0) {
            return -EIO;
        }
        memcpy(buf, s->decompressed_cluster + offset_in_cluster, bytes);
        return 0;
    }
    if (qcow2_entry_reads_zero(s, entry)) {
        memset(buf, 0, bytes);
        return 0;
    }
    return qcow2_read_data_cluster(bs, entry & L2E_OFFSET_MASK,
                                   offset_in_cluster, bytes, buf, errp);
}

/* The host bytes an allocated entry holds a reference to, for freeing. */
static bool qcow2_entry_host_range(BDRVQcow2State *s, uint64_t entry,
                                   uint64_t *offset, uint64_t *bytes)
{
    if (qcow2_entry_is_compressed(entry)) {
        qcow2_parse_compressed(s, entry, offset, bytes);
        return true;
    }
    *offset = entry & L2E_OFFSET_MASK;
    *bytes = s->cluster_size;
    return *offset != 0;
}

/* ------------------------------------------------------------------------ */
/* Allocating writes */

typedef struct Qcow2NewL2 {
    uint64_t l1_index;
    uint64_t offset;       /* the new table's cluster */
    uint64_t old_offset;   /* the shared table it replaces, or 0 */
    uint8_t *table;
} Qcow2NewL2;

typedef struct Qcow2L2Update {
    uint64_t l2_offset;
    uint64_t l2_index;
    uint64_t entry;
} Qcow2L2Update;

/*
 * In-place overwrites of clusters that lie next to each other in the file
 * go out as one write: a request is contiguous in the guest, and the store
 * rewrites the same extents every commit, so the steady state is one write
 * per request instead of one per cluster.
 */
typedef struct Qcow2InPlaceRun {
    uint64_t host;
    const uint8_t *buf;
    uint64_t bytes;
} Qcow2InPlaceRun;

typedef struct Qcow2WriteCtx {
    GArray *new_l2;    /* Qcow2NewL2 */
    GArray *updates;   /* Qcow2L2Update */
    GArray *frees;     /* Qcow2Free */
    Qcow2InPlaceRun run;
} Qcow2WriteCtx;

static void qcow2_write_ctx_init(Qcow2WriteCtx *w)
{
    w->new_l2 = g_array_new(false, false, sizeof(Qcow2NewL2));
    w->updates = g_array_new(false, false, sizeof(Qcow2L2Update));
    w->frees = g_array_new(false, false, sizeof(Qcow2Free));
    w->run = (Qcow2InPlaceRun) { 0 };
}

static int qcow2_write_run(BlockDriverState *bs, Qcow2WriteCtx *w, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2InPlaceRun r = w->run;

    if (!r.bytes) {
        return 0;
    }
    w->run.bytes = 0;
    if (bdrv_file_pwrite(bs, r.host, r.bytes, r.buf, errp) < 0) {
        return -EIO;
    }
    qcow2_note_file_end(s, r.host + r.bytes);
    return 0;
}

/* Adds an in-place overwrite to the pending run, writing the run first if
 * this one does not continue it. */
static int qcow2_queue_in_place(BlockDriverState *bs, Qcow2WriteCtx *w,
                                uint64_t host, const uint8_t *buf, uint64_t bytes,
                                GError **errp)
{
    Qcow2InPlaceRun *r = &w->run;

    if (r->bytes && r->host + r->bytes == host && r->buf + r->bytes == buf) {
        r->bytes += bytes;
        return 0;
    }
    if (qcow2_write_run(bs, w, errp) < 0) {
        return -EIO;
    }
    *r = (Qcow2InPlaceRun) { host, buf, bytes };
    return 0;
}

static void qcow2_write_ctx_free(Qcow2WriteCtx *w)
{
    for (guint i = 0; i < w->new_l2->len; i++) {
        g_free(g_array_index(w->new_l2, Qcow2NewL2, i).table);
    }
    g_array_free(w->new_l2, true);
    g_array_free(w->updates, true);
    g_array_free(w->frees, true);
}

static Qcow2NewL2 *qcow2_find_new_l2(Qcow2WriteCtx *w, uint64_t l1_index)
{
    for (guint i = 0; i < w->new_l2->len; i++) {
        Qcow2NewL2 *n = &g_array_index(w->new_l2, Qcow2NewL2, i);

        if (n->l1_index == l1_index) {
            return n;
        }
    }
    return NULL;
}

/*
 * Starts a new L2 table for @l1_index: empty, or a copy of the shared table
 * at @old_offset with COPIED cleared (its clusters are shared too).
 */
static Qcow2NewL2 *qcow2_start_new_l2(BlockDriverState *bs, Qcow2WriteCtx *w,
                                      uint64_t l1_index, uint64_t old_offset,
                                      GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2NewL2 n = { .l1_index = l1_index, .old_offset = old_offset };
    int64_t off;

    n.table = g_malloc0(s->cluster_size);
    if (old_offset) {
        uint8_t *old = qcow2_cache_get(bs, &s->l2_cache, old_offset, false,
                                       errp);

        if (!old) {
            g_free(n.table);
            return NULL;
        }
        for (uint64_t i = 0; i < s->l2_size; i++) {
            stq_be_p(n.table + i * L2E_SIZE,
                       ldq_be_p(old + i * L2E_SIZE) & ~QCOW_OFLAG_COPIED);
        }
    }
    off = qcow2_alloc_clusters(bs, 1, errp);
    if (off < 0) {
        g_free(n.table);
        return NULL;
    }
    n.offset = off;
    g_array_append_val(w->new_l2, n);
    return &g_array_index(w->new_l2, Qcow2NewL2, w->new_l2->len - 1);
}

/* Writes one guest cluster's part of a request (phase 1 of §5). */
static int qcow2_write_one_cluster(BlockDriverState *bs, Qcow2WriteCtx *w,
                                   uint64_t offset, uint64_t bytes,
                                   const uint8_t *buf, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t gci = offset >> s->cluster_bits;
    uint64_t l1_index = gci >> s->l2_bits;
    uint64_t l2_index = gci & (s->l2_size - 1);
    uint64_t in = offset & (s->cluster_size - 1);
    Qcow2NewL2 *nl2 = qcow2_find_new_l2(w, l1_index);
    uint64_t l2_offset = 0, entry = 0, old_off, old_bytes;
    g_autofree uint8_t *cbuf = NULL;
    const uint8_t *data = buf;
    int64_t host;

    if (nl2) {
        /* Copied from a shared table: not validated yet. */
        entry = ldq_be_p(nl2->table + l2_index * L2E_SIZE);
        if (qcow2_check_l2_entry(bs, offset, entry, errp) < 0) {
            return -EINVAL;
        }
    } else {
        if (qcow2_get_l2_offset(bs, l1_index, &l2_offset, errp) < 0) {
            return -EINVAL;
        }
        if (l2_offset) {
            if (qcow2_get_l2_entry(bs, offset, &entry, errp) < 0) {
                return -EINVAL;
            }
        }
        if (!(s->l1_table[l1_index] & QCOW_OFLAG_COPIED) || !l2_offset) {
            nl2 = qcow2_start_new_l2(bs, w, l1_index, l2_offset, errp);
            if (!nl2) {
                return -EIO;
            }
            entry &= ~QCOW_OFLAG_COPIED;
        }
    }

    if (!nl2 && (entry & QCOW_OFLAG_COPIED) &&
        !qcow2_entry_is_compressed(entry) &&
        !qcow2_entry_reads_zero(s, entry)) {
        /* Allocated, ours alone: overwrite in place, no metadata. */
        const char *what;
        uint64_t h = entry & L2E_OFFSET_MASK;

        if (qcow2_check_overlap(s, h, s->cluster_size, &what)) {
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "data cluster at 0x%" PRIx64 " overlaps the %s",
                           h, what);
            return -EINVAL;
        }
        return qcow2_queue_in_place(bs, w, h + in, buf, bytes, errp);
    }

    /* The file sees the writes in request order. */
    if (qcow2_write_run(bs, w, errp) < 0) {
        return -EIO;
    }
    /* Copy-on-write into a new cluster: old data, decompressed or zeros. */
    if (bytes != s->cluster_size) {
        cbuf = g_malloc(s->cluster_size);
        if (qcow2_read_cluster(bs, entry, 0, s->cluster_size, cbuf,
                               errp) < 0) {
            return -EIO;
        }
        memcpy(cbuf + in, buf, bytes);
        data = cbuf;
    }
    host = qcow2_alloc_clusters(bs, 1, errp);
    if (host < 0) {
        return -EIO;
    }
    if (bdrv_file_pwrite(bs, host, s->cluster_size, data, errp) < 0) {
        return -EIO;
    }
    qcow2_note_file_end(s, host + s->cluster_size);
    if (nl2) {
        stq_be_p(nl2->table + l2_index * L2E_SIZE,
                   (uint64_t)host | QCOW_OFLAG_COPIED);
    } else {
        Qcow2L2Update u = { l2_offset, l2_index,
                            (uint64_t)host | QCOW_OFLAG_COPIED };

        g_array_append_val(w->updates, u);
    }
    if (qcow2_entry_host_range(s, entry, &old_off, &old_bytes)) {
        Qcow2Free f = { old_off, old_bytes };

        g_array_append_val(w->frees, f);
    }
    return 0;
}

static int qcow2_write_l2_entry(BlockDriverState *bs, uint64_t l2_offset,
                                uint64_t l2_index, uint64_t entry,
                                GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t *table = qcow2_cache_get(bs, &s->l2_cache, l2_offset, false, errp);

    if (!table) {
        return -EIO;
    }
    stq_be_p(table + l2_index * L2E_SIZE, entry);
    if (bdrv_file_pwrite(bs, l2_offset + l2_index * L2E_SIZE, L2E_SIZE,
                         table + l2_index * L2E_SIZE, errp) < 0) {
        qcow2_cache_discard(&s->l2_cache, l2_offset);
        return -EIO;
    }
    return 0;
}

/* Phase 2 of §5: point L2/L1 entries at what phase 1 wrote, queue frees. */
static int qcow2_link_clusters(BlockDriverState *bs, Qcow2WriteCtx *w,
                               GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    for (guint i = 0; i < w->updates->len; i++) {
        Qcow2L2Update *u = &g_array_index(w->updates, Qcow2L2Update, i);

        if (qcow2_write_l2_entry(bs, u->l2_offset, u->l2_index, u->entry,
                                 errp) < 0) {
            return -EIO;
        }
    }
    for (guint i = 0; i < w->new_l2->len; i++) {
        Qcow2NewL2 *n = &g_array_index(w->new_l2, Qcow2NewL2, i);

        if (qcow2_write_table_entry(bs, s->l1_table_offset, s->l1_table,
                                    n->l1_index, n->offset | QCOW_OFLAG_COPIED,
                                    errp) < 0) {
            return -EIO;
        }
        qcow2_cache_put(&s->l2_cache, n->offset, n->table);
        if (n->old_offset) {
            qcow2_free_later(bs, n->old_offset, s->cluster_size);
        }
    }
    for (guint i = 0; i < w->frees->len; i++) {
        Qcow2Free *f = &g_array_index(w->frees, Qcow2Free, i);

        qcow2_free_later(bs, f->offset, f->bytes);
    }
    return 0;
}

int qcow2_write_clusters(BlockDriverState *bs, uint64_t offset,
                         uint64_t bytes, const uint8_t *buf, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2WriteCtx w;
    int ret = 0;

    qcow2_write_ctx_init(&w);
    /*
     * Phase 1: data in place, or refcount increments, cluster data and
     * complete new L2 tables for everything that needs a new cluster.
     * Nothing written so far is referenced by the image yet.
     */
    while (bytes > 0) {
        uint64_t n = MIN(bytes, s->cluster_size -
                                    (offset & (s->cluster_size - 1)));

        ret = qcow2_write_one_cluster(bs, &w, offset, n, buf, errp);
        if (ret < 0) {
            goto out;
        }
        offset += n;
        buf += n;
        bytes -= n;
    }
    ret = qcow2_write_run(bs, &w, errp);
    if (ret < 0) {
        goto out;
    }
    for (guint i = 0; i < w.new_l2->len; i++) {
        Qcow2NewL2 *n = &g_array_index(w.new_l2, Qcow2NewL2, i);

        if (bdrv_file_pwrite(bs, n->offset, s->cluster_size, n->table,
                             errp) < 0) {
            ret = -EIO;
            goto out;
        }
        qcow2_note_file_end(s, n->offset + s->cluster_size);
    }
    if (w.new_l2->len == 0 && w.updates->len == 0) {
        goto out;   /* steady state: pure overwrite, no barrier */
    }
    /*
     * Ordering barrier (docs/qcow2.md "Write ordering" rule 3): refcount
     * increments, cluster data and new L2 tables must be durable before any
     * L2/L1 entry points to them, or a crash could expose a cluster with
     * refcount 0 or garbage contents. One flush for the whole request.
     */
    ret = bdrv_file_flush(bs, errp);
    if (ret < 0) {
        goto out;
    }
    /* Phase 2: link; the old clusters lose their references after the
     * next flush (rule 5). */
    ret = qcow2_link_clusters(bs, &w, errp);
out:
    qcow2_write_ctx_free(&w);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Zero writes (docs/qcow2.md "Zero writes") */

static int qcow2_write_zero_buffer(BlockDriverState *bs, uint64_t offset,
                                   uint64_t bytes, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *zero = g_malloc0(s->cluster_size);

    while (bytes > 0) {
        uint64_t n = MIN(bytes, s->cluster_size -
                                    (offset & (s->cluster_size - 1)));
        int ret = qcow2_write_clusters(bs, offset, n, zero, errp);

        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* One whole cluster: the zero flag where the L2 table is ours. */
static int qcow2_zero_one_cluster(BlockDriverState *bs, uint64_t offset,
                                  GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t gci = offset >> s->cluster_bits;
    uint64_t l1_index = gci >> s->l2_bits;
    uint64_t l2_offset, entry, new_entry, old_off, old_bytes;

    if (qcow2_get_l2_offset(bs, l1_index, &l2_offset, errp) < 0) {
        return -EINVAL;
    }
    if (!l2_offset) {
        return 0;   /* unallocated: already zeros (no backing file) */
    }
    if (qcow2_get_l2_entry(bs, offset, &entry, errp) < 0) {
        return -EINVAL;
    }
    if (entry == 0 || ((entry & QCOW_OFLAG_ZERO) &&
                       !qcow2_entry_is_compressed(entry) &&
                       !(entry & L2E_OFFSET_MASK))) {
        return 0;
    }
    if (s->hdr.version < 3 ||
        !(s->l1_table[l1_index] & QCOW_OFLAG_COPIED)) {
        return qcow2_write_zero_buffer(bs, offset, s->cluster_size, errp);
    }
    if (!qcow2_entry_is_compressed(entry) && (entry & QCOW_OFLAG_COPIED)) {
        /* Keep the allocation; a later write reallocates it. */
        return qcow2_write_l2_entry(bs, l2_offset, gci & (s->l2_size - 1),
                                    entry | QCOW_OFLAG_ZERO, errp);
    }
    new_entry = QCOW_OFLAG_ZERO;
    if (qcow2_write_l2_entry(bs, l2_offset, gci & (s->l2_size - 1), new_entry,
                             errp) < 0) {
        return -EIO;
    }
    if (qcow2_entry_host_range(s, entry, &old_off, &old_bytes)) {
        qcow2_free_later(bs, old_off, old_bytes);
    }
    return 0;
}

int qcow2_zero_clusters(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                        GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    while (bytes > 0) {
        uint64_t in = offset & (s->cluster_size - 1);
        uint64_t n = MIN(bytes, s->cluster_size - in);
        int ret;

        if (n == s->cluster_size) {
            ret = qcow2_zero_one_cluster(bs, offset, errp);
        } else {
            ret = qcow2_write_zero_buffer(bs, offset, n, errp);
        }
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* L1 growth (docs/qcow2.md "Growth") */

int qcow2_grow_l1_table(BlockDriverState *bs, uint64_t min_size,
                        uint64_t new_virtual_size, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t bytes = min_size * L1E_SIZE;
    uint64_t clusters = DIV_ROUND_UP(bytes, s->cluster_size);
    g_autofree uint8_t *raw = NULL;
    g_autofree uint64_t *table = NULL;
    uint64_t old_offset = s->l1_table_offset;
    uint64_t old_bytes = (uint64_t)s->l1_size * L1E_SIZE;
    Qcow2Header h;
    int64_t off;

    if (bytes > QCOW2_MAX_L1_BYTES) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "virtual size %" PRIu64 " needs an L1 table larger "
                       "than %d bytes", new_virtual_size, QCOW2_MAX_L1_BYTES);
        return -EINVAL;
    }
    off = qcow2_alloc_clusters(bs, clusters, errp);
    if (off < 0) {
        return -EIO;
    }
    raw = g_malloc0(clusters * s->cluster_size);
    table = g_new0(uint64_t, min_size);
    for (uint64_t i = 0; i < s->l1_size; i++) {
        table[i] = s->l1_table[i];
        stq_be_p(raw + i * L1E_SIZE, s->l1_table[i]);
    }
    if (bdrv_file_pwrite(bs, off, clusters * s->cluster_size, raw, errp) < 0) {
        return -EIO;
    }
    qcow2_note_file_end(s, off + clusters * s->cluster_size);
    /* Ordering: the new table is durable before the header points to it. */
    if (bdrv_file_flush(bs, errp) < 0) {
        return -EIO;
    }
    /* size, crypt_method (0), l1_size and l1_table_offset: one write. */
    h = s->hdr;
    h.size = new_virtual_size;
    h.l1_size = min_size;
    h.l1_table_offset = off;
    if (qcow2_write_header_fields(bs, &h,
                                  QCOW2_HEADER_SPAN(size, l1_table_offset),
                                  errp) < 0) {
        return -EIO;
    }
    g_free(s->l1_table);
    s->l1_table = g_steal_pointer(&table);
    s->l1_size = min_size;
    s->l1_table_offset = off;
    s->size = new_virtual_size;
    s->hdr = h;
    if (old_bytes) {
        qcow2_free_later(bs, old_offset, old_bytes);
    }
    return 0;
}
