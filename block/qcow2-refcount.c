/*
 * qcow2 refcounts: lookup, cluster allocation, refcount block creation,
 * refcount table growth and deferred frees. docs/qcow2.md sections 4 and 5.
 */
#include "qemu/osdep.h"

#include "qcow2.h"

uint64_t qcow2_refcount_entry_get(const uint8_t *block, uint32_t order,
                                  uint64_t index)
{
    if (order < 3) {
        uint32_t bits = 1u << order;
        uint64_t bit = index * bits;

        /* Sub-byte widths: entry 0 is the least significant bits. */
        return (block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    } else {
        uint32_t bytes = 1u << (order - 3);
        const uint8_t *p = block + index * bytes;
        uint64_t v = 0;

        for (uint32_t i = 0; i < bytes; i++) {
            v = v << 8 | p[i];
        }
        return v;
    }
}

void qcow2_refcount_entry_set(uint8_t *block, uint32_t order, uint64_t index,
                              uint64_t value)
{
    if (order < 3) {
        uint32_t bits = 1u << order;
        uint64_t bit = index * bits;
        uint8_t mask = ((1u << bits) - 1) << (bit % 8);

        block[bit / 8] = (block[bit / 8] & ~mask) |
                         ((value << (bit % 8)) & mask);
    } else {
        uint32_t bytes = 1u << (order - 3);
        uint8_t *p = block + index * bytes;

        for (int i = bytes - 1; i >= 0; i--) {
            p[i] = value & 0xff;
            value >>= 8;
        }
    }
}

/* The bytes of a refcount block that hold entry @index. */
static void qcow2_refcount_entry_span(uint32_t order, uint64_t index,
                                      uint64_t *start, uint64_t *len)
{
    if (order < 3) {
        *start = (index << order) / 8;
        *len = 1;
    } else {
        *len = 1u << (order - 3);
        *start = index * *len;
    }
}

/* Loads the refcount block of refcount table entry @rt_index (must be set). */
static uint8_t *qcow2_load_refblock(BlockDriverState *bs, uint64_t rt_index,
                                    GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t entry = s->refcount_table[rt_index];
    uint64_t offset = entry & REFT_OFFSET_MASK;
    g_autofree char *what = NULL;

    if (entry & REFT_RESERVED_MASK) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "refcount table entry %" PRIu64 " (0x%" PRIx64
                       ") is not cluster aligned", rt_index, entry);
        return NULL;
    }
    what = g_strdup_printf("refcount block %" PRIu64, rt_index);
    if (!qcow2_check_table(bs, what, offset, s->cluster_size, true, errp)) {
        return NULL;
    }
    return qcow2_cache_get(bs, &s->refblock_cache, offset, false, errp);
}

int qcow2_get_refcount(BlockDriverState *bs, uint64_t cluster_index,
                       uint64_t *refcount, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t rt_index = cluster_index >> s->rb_bits;
    uint8_t *block;

    if (rt_index >= s->refcount_table_size ||
        (s->refcount_table[rt_index] & REFT_OFFSET_MASK) == 0) {
        *refcount = 0;
        return 0;
    }
    block = qcow2_load_refblock(bs, rt_index, errp);
    if (!block) {
        return -EINVAL;
    }
    *refcount = qcow2_refcount_entry_get(block, s->refcount_order,
                                         cluster_index & (s->rb_entries - 1));
    return 0;
}

/*
 * A cluster with refcount 0 that holds active metadata means the refcounts
 * are corrupt: refuse rather than hand it out.
 */
static bool qcow2_check_free_cluster(BlockDriverState *bs, uint64_t index,
                                     GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const char *what;

    if (qcow2_check_overlap(s, index << s->cluster_bits, s->cluster_size,
                            &what)) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "cluster 0x%" PRIx64 " holds the %s but its refcount "
                       "is 0", index << s->cluster_bits, what);
        return false;
    }
    return true;
}

/*
 * Creates the missing refcount block of table entry @rt_index. It is
 * self-describing: it lives in the first cluster of its own range that is
 * not in [avoid_start, avoid_end) (clusters about to be allocated), and
 * counts itself.
 */
static int qcow2_create_refblock(BlockDriverState *bs, uint64_t rt_index,
                                 uint64_t avoid_start, uint64_t avoid_end,
                                 GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t first = rt_index << s->rb_bits;
    uint64_t last = first + s->rb_entries - 1;
    uint64_t loc = first;
    g_autofree uint8_t *block = NULL;
    uint64_t offset;

    int ret = 0;

    if (loc >= avoid_start && loc < avoid_end) {
        loc = avoid_end;
    }
    if (loc > last) {
        /*
         * The run being allocated covers this block's whole range: take the
         * range's first cluster anyway (a valid, self-describing block) and
         * tell the caller to put the run elsewhere.
         */
        loc = first;
        ret = 1;
    }
    if (!qcow2_check_free_cluster(bs, loc, errp)) {
        return -EINVAL;
    }
    offset = loc << s->cluster_bits;
    block = g_malloc0(s->cluster_size);
    qcow2_refcount_entry_set(block, s->refcount_order, loc - first, 1);
    if (bdrv_file_pwrite(bs, offset, s->cluster_size, block, errp) < 0) {
        return -EIO;
    }
    qcow2_note_file_end(s, offset + s->cluster_size);
    /*
     * Ordering: the block must be durable before the table entry that makes
     * it count, or a crash could leave a referenced block of garbage.
     * Happens once per rb_entries clusters.
     */
    if (bdrv_file_flush(bs, errp) < 0) {
        return -EIO;
    }
    if (qcow2_write_table_entry(bs, s->refcount_table_offset,
                                s->refcount_table, rt_index, offset, errp) < 0) {
        return -EIO;
    }
    qcow2_cache_put(&s->refblock_cache, offset, block);
    return ret;
}

/*
 * Grows the refcount table so that it covers cluster @last_cluster.
 * The new table and the refcount blocks for every new table entry go to an
 * area starting at max(old coverage, @reserve_end); the new blocks count
 * the area. See docs/qcow2.md section 4.
 */
static int qcow2_grow_refcount_table(BlockDriverState *bs,
                                     uint64_t last_cluster,
                                     uint64_t reserve_end, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old_entries = s->refcount_table_size;
    uint64_t area_start = MAX(old_entries << s->rb_bits, reserve_end);
    uint64_t table_clusters = s->refcount_table_clusters;
    uint64_t nb_blocks = 0, entries = old_entries;
    uint64_t area_end, table_bytes;
    g_autofree uint64_t *new_table = NULL;
    g_autofree uint8_t *buf = NULL;
    Qcow2Header h;
    uint64_t old_offset = s->refcount_table_offset;
    uint64_t old_clusters = s->refcount_table_clusters;

    for (int iter = 0; iter < 64; iter++) {
        uint64_t need_entries, need_clusters;

        area_end = area_start + table_clusters + nb_blocks;
        need_entries = (MAX(last_cluster, area_end - 1) >> s->rb_bits) + 1;
        need_clusters = DIV_ROUND_UP(need_entries * REFTABLE_ENTRY_SIZE,
                                     s->cluster_size);
        /* Double the table to keep growth rare. */
        need_clusters = MAX(need_clusters,
                            MIN(2 * old_clusters,
                                QCOW2_MAX_REFTABLE_BYTES / s->cluster_size));
        if (need_clusters == table_clusters &&
            need_entries - old_entries == nb_blocks) {
            entries = need_entries;
            break;
        }
        table_clusters = need_clusters;
        nb_blocks = need_entries - old_entries;
    }
    if (entries == old_entries ||
        table_clusters * s->cluster_size > QCOW2_MAX_REFTABLE_BYTES) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "the refcount table cannot grow beyond %d bytes",
                       QCOW2_MAX_REFTABLE_BYTES);
        return -ENOSPC;
    }
    area_end = area_start + table_clusters + nb_blocks;
    table_bytes = table_clusters * s->cluster_size;
    for (uint64_t c = area_start; c < area_end; c++) {
        if (!qcow2_check_free_cluster(bs, c, errp)) {
            return -EINVAL;
        }
    }

    /* The new refcount blocks, right after the new table. */
    buf = g_malloc0(s->cluster_size);
    new_table = g_malloc0(table_bytes);
    for (uint64_t i = 0; i < old_entries; i++) {
        new_table[i] = s->refcount_table[i];
    }
    for (uint64_t b = 0; b < nb_blocks; b++) {
        uint64_t rt_index = old_entries + b;
        uint64_t first = rt_index << s->rb_bits;
        uint64_t block_cluster = area_start + table_clusters + b;

        memset(buf, 0, s->cluster_size);
        for (uint64_t c = MAX(first, area_start);
             c < MIN(first + s->rb_entries, area_end); c++) {
            qcow2_refcount_entry_set(buf, s->refcount_order, c - first, 1);
        }
        if (bdrv_file_pwrite(bs, block_cluster << s->cluster_bits,
                             s->cluster_size, buf, errp) < 0) {
            return -EIO;
        }
        new_table[rt_index] = block_cluster << s->cluster_bits;
    }
    {
        g_autofree uint8_t *raw = g_malloc0(table_bytes);

        for (uint64_t i = 0; i < entries; i++) {
            stq_be_p(raw + i * REFTABLE_ENTRY_SIZE, new_table[i]);
        }
        if (bdrv_file_pwrite(bs, area_start << s->cluster_bits, table_bytes,
                             raw, errp) < 0) {
            return -EIO;
        }
    }
    qcow2_note_file_end(s, area_end << s->cluster_bits);
    /* Ordering: the new table and blocks are durable before the header
     * points to them (rare: once per table growth). */
    if (bdrv_file_flush(bs, errp) < 0) {
        return -EIO;
    }
    h = s->hdr;
    h.refcount_table_offset = area_start << s->cluster_bits;
    h.refcount_table_clusters = table_clusters;
    if (qcow2_write_header_fields(bs, &h,
                                  QCOW2_HEADER_SPAN(refcount_table_offset,
                                                    refcount_table_clusters),
                                  errp) < 0) {
        return -EIO;
    }
    g_free(s->refcount_table);
    s->refcount_table = g_steal_pointer(&new_table);
    s->refcount_table_offset = area_start << s->cluster_bits;
    s->refcount_table_clusters = table_clusters;
    s->refcount_table_size = table_bytes / REFTABLE_ENTRY_SIZE;
    s->hdr = h;
    /* The old table loses its reference once the header switch is durable. */
    qcow2_free_later(bs, old_offset, old_clusters * s->cluster_size);
    return 0;
}

/*
 * Makes sure refcount blocks exist for every cluster in [start, end).
 * Returns 1 when a block had to go inside [start, end): pick another run.
 */
static int qcow2_ensure_refblocks(BlockDriverState *bs, uint64_t start,
                                  uint64_t end, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t first_rt = start >> s->rb_bits;
    uint64_t last_rt = (end - 1) >> s->rb_bits;

    if (last_rt >= s->refcount_table_size) {
        int ret = qcow2_grow_refcount_table(bs, end - 1, end, errp);

        if (ret < 0) {
            return ret;
        }
    }
    for (uint64_t i = first_rt; i <= last_rt; i++) {
        if ((s->refcount_table[i] & REFT_OFFSET_MASK) == 0) {
            int ret = qcow2_create_refblock(bs, i, start, end, errp);

            if (ret != 0) {
                return ret;
            }
        }
    }
    return 0;
}

/* Adds @delta to the refcount of one cluster whose refcount block exists. */
static int qcow2_update_refcount(BlockDriverState *bs, uint64_t cluster_index,
                                 int delta, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t rt_index = cluster_index >> s->rb_bits;
    uint64_t index = cluster_index & (s->rb_entries - 1);
    uint64_t rc, start, len;
    uint8_t *block;

    if (rt_index >= s->refcount_table_size ||
        (s->refcount_table[rt_index] & REFT_OFFSET_MASK) == 0) {
        if (delta < 0) {
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "cluster 0x%" PRIx64 " is in use but has no "
                           "refcount block", cluster_index << s->cluster_bits);
            return -EINVAL;
        }
        /* A single cluster never covers a whole range (rb_entries >= 8). */
        if (qcow2_ensure_refblocks(bs, cluster_index, cluster_index + 1,
                                   errp) < 0) {
            return -EIO;
        }
    }
    block = qcow2_load_refblock(bs, rt_index, errp);
    if (!block) {
        return -EIO;
    }
    rc = qcow2_refcount_entry_get(block, s->refcount_order, index);
    if ((delta < 0 && rc < (uint64_t)-delta) ||
        (delta > 0 && rc + delta > s->refcount_max)) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "refcount of cluster 0x%" PRIx64 " would %s",
                       cluster_index << s->cluster_bits,
                       delta < 0 ? "drop below zero" : "overflow");
        return -EINVAL;
    }
    rc += delta;
    qcow2_refcount_entry_set(block, s->refcount_order, index, rc);
    qcow2_refcount_entry_span(s->refcount_order, index, &start, &len);
    if (bdrv_file_pwrite(bs, (s->refcount_table[rt_index] & REFT_OFFSET_MASK) +
                         start, len, block + start, errp) < 0) {
        /* The cached block no longer matches the file. */
        qcow2_cache_discard(&s->refblock_cache,
                            s->refcount_table[rt_index] & REFT_OFFSET_MASK);
        return -EIO;
    }
    if (rc == 0 && cluster_index < s->free_cluster_index) {
        s->free_cluster_index = cluster_index;
    }
    return 0;
}

int qcow2_update_refcount_range(BlockDriverState *bs, uint64_t offset,
                                uint64_t bytes, int delta, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t first, last;

    if (bytes == 0) {
        return 0;
    }
    first = offset >> s->cluster_bits;
    last = (offset + bytes - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        int ret = qcow2_update_refcount(bs, c, delta, errp);

        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/*
 * A run too long to fit between self-describing refcount blocks (more
 * clusters than a block covers, over ranges without blocks): it goes right
 * after the clusters the refcount table covers, and a table growth puts the
 * blocks for it behind it (docs/qcow2.md section 4).
 */
static int64_t qcow2_alloc_area_at_end(BlockDriverState *bs,
                                       uint64_t nb_clusters, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t start = s->refcount_table_size << s->rb_bits;

    for (uint64_t c = start; c < start + nb_clusters; c++) {
        if (!qcow2_check_free_cluster(bs, c, errp)) {
            return -EINVAL;
        }
    }
    if (qcow2_grow_refcount_table(bs, start + nb_clusters - 1,
                                  start + nb_clusters, errp) < 0) {
        return -EIO;
    }
    for (uint64_t c = start; c < start + nb_clusters; c++) {
        if (qcow2_update_refcount(bs, c, 1, errp) < 0) {
            return -EIO;
        }
    }
    return (int64_t)(start << s->cluster_bits);
}

/*
 * Allocates @nb_clusters contiguous clusters, first fit from the free
 * cluster hint, and writes their refcounts (1). Returns the byte offset.
 * The refcounts are written before the caller references the clusters
 * (docs/qcow2.md "Write ordering" rule 1).
 */
int64_t qcow2_alloc_clusters(BlockDriverState *bs, uint64_t nb_clusters,
                             GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t start, run;
    uint64_t limit = QCOW2_MAX_VIRTUAL_SIZE >> s->cluster_bits;
    int ret;

    start = s->free_cluster_index;
    run = 0;
    while (run < nb_clusters) {
        uint64_t c = start + run, rc;

        if (c >= limit) {
            bdrv_set_error(errp, bs, QTPM_ERROR_FAILED,
                           "no free cluster below 2^56 bytes");
            return -ENOSPC;
        }
        if (qcow2_get_refcount(bs, c, &rc, errp) < 0) {
            return -EIO;
        }
        if (rc != 0) {
            if (run == 0 && start == s->free_cluster_index) {
                s->free_cluster_index = c + 1;
            }
            start = c + 1;
            run = 0;
            continue;
        }
        if (!qcow2_check_free_cluster(bs, c, errp)) {
            return -EINVAL;
        }
        run++;
    }
    ret = qcow2_ensure_refblocks(bs, start, start + nb_clusters, errp);
    if (ret < 0) {
        return -EIO;
    }
    if (ret == 1) {
        return qcow2_alloc_area_at_end(bs, nb_clusters, errp);
    }
    /* Creating refcount blocks may have used clusters of the run's range
     * only outside [start, start + nb_clusters), so the run is still free. */
    for (uint64_t c = start; c < start + nb_clusters; c++) {
        if (qcow2_update_refcount(bs, c, 1, errp) < 0) {
            return -EIO;
        }
    }
    if (start == s->free_cluster_index) {
        s->free_cluster_index = start + nb_clusters;
    }
    return (int64_t)(start << s->cluster_bits);
}

void qcow2_free_later(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Free f = { .offset = offset, .bytes = bytes };

    g_array_append_val(s->pending_frees, f);
}

/*
 * Applies the queued refcount decrements. Called right after a flush made
 * the L2/L1 updates that dropped the references durable (rule 5): a crash
 * before these writes reach the disk only leaks the clusters.
 */
int qcow2_apply_pending_frees(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    GArray *frees = s->pending_frees;
    int ret = 0;

    s->pending_frees = g_array_new(false, false, sizeof(Qcow2Free));
    for (guint i = 0; i < frees->len; i++) {
        Qcow2Free *f = &g_array_index(frees, Qcow2Free, i);
        uint64_t first = f->offset >> s->cluster_bits;
        uint64_t last = (f->offset + f->bytes - 1) >> s->cluster_bits;

        if (ret < 0) {
            break;
        }
        for (uint64_t c = first; c <= last; c++) {
            uint64_t rc;

            ret = qcow2_update_refcount(bs, c, -1, errp);
            if (ret < 0) {
                break;
            }
            if (qcow2_get_refcount(bs, c, &rc, NULL) == 0 && rc == 0) {
                /* The cluster may come back as anything: forget it. */
                qcow2_cache_discard(&s->l2_cache, c << s->cluster_bits);
                s->decompressed_entry = 0;
            }
        }
    }
    g_array_free(frees, true);
    return ret;
}
