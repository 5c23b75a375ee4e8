/*
 * qcow2 format driver: header, open/close, request paths and the vtable.
 * Format, feature handling and write ordering: docs/qcow2.md, which follows
 * QEMU's docs/interop/qcow2.txt.
 */
#include "qemu/osdep.h"

#include "qcow2.h"

/* ------------------------------------------------------------------------ */
/* Header parsing: pure functions over the first cluster (docs/qcow2.md §1) */

static const char *qcow2_feature_name(const Qcow2Feature *features, int nb,
                                      uint8_t type, uint8_t bit)
{
    for (int i = 0; i < nb; i++) {
        if (features[i].type == type && features[i].bit == bit &&
            features[i].name[0]) {
            return features[i].name;
        }
    }
    return NULL;
}

int qcow2_parse_header(const uint8_t *buf, size_t len, Qcow2Header *h,
                       const char *name, GError **errp)
{
    QCowHeader be = { 0 };
    uint64_t cluster_size;

    memset(h, 0, sizeof(*h));
    if (len < QCOW2_V2_HEADER_LENGTH) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': file is too short for a qcow2 header (%zu bytes)",
                    name, len);
        return -EINVAL;
    }
    /* Fields past @len stay zero; they are only read once @len covers them. */
    memcpy(&be, buf, MIN(len, sizeof(be)));
    h->magic = GUINT32_FROM_BE(be.magic);
    h->version = GUINT32_FROM_BE(be.version);
    h->backing_file_offset = GUINT64_FROM_BE(be.backing_file_offset);
    h->cluster_bits = GUINT32_FROM_BE(be.cluster_bits);
    h->size = GUINT64_FROM_BE(be.size);
    h->crypt_method = GUINT32_FROM_BE(be.crypt_method);
    h->l1_size = GUINT32_FROM_BE(be.l1_size);
    h->l1_table_offset = GUINT64_FROM_BE(be.l1_table_offset);
    h->refcount_table_offset = GUINT64_FROM_BE(be.refcount_table_offset);
    h->refcount_table_clusters = GUINT32_FROM_BE(be.refcount_table_clusters);
    h->nb_snapshots = GUINT32_FROM_BE(be.nb_snapshots);
    h->snapshots_offset = GUINT64_FROM_BE(be.snapshots_offset);

    if (h->magic != QCOW_MAGIC) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': bad qcow2 magic 0x%08x", name, h->magic);
        return -EINVAL;
    }
    if (h->version != 2 && h->version != 3) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s': qcow2 version %u is not supported (only 2 and 3)",
                    name, h->version);
        return -ENOTSUP;
    }
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': cluster_bits %u is out of range (%d..%d)", name,
                    h->cluster_bits, QCOW2_MIN_CLUSTER_BITS,
                    QCOW2_MAX_CLUSTER_BITS);
        return -EINVAL;
    }
    cluster_size = 1ULL << h->cluster_bits;
    if (h->version == 2) {
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_LENGTH;
        return 0;
    }
    if (len < QCOW2_V3_HEADER_LENGTH) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': file is too short for a qcow2 v3 header (%zu "
                    "bytes)", name, len);
        return -EINVAL;
    }
    h->incompatible_features = GUINT64_FROM_BE(be.incompatible_features);
    h->compatible_features = GUINT64_FROM_BE(be.compatible_features);
    h->autoclear_features = GUINT64_FROM_BE(be.autoclear_features);
    h->refcount_order = GUINT32_FROM_BE(be.refcount_order);
    h->header_length = GUINT32_FROM_BE(be.header_length);
    if (h->header_length < QCOW2_V3_HEADER_LENGTH ||
        h->header_length % 8 != 0 || h->header_length > cluster_size) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': header_length %u is invalid (a multiple of 8, "
                    "from %d to the cluster size)", name, h->header_length,
                    QCOW2_V3_HEADER_LENGTH);
        return -EINVAL;
    }
    if (h->header_length > len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': header_length %u runs past the end of the file",
                    name, h->header_length);
        return -EINVAL;
    }
    if (h->refcount_order > QCOW2_MAX_REFCOUNT_ORDER) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': refcount_order %u is out of range (0..%d)", name,
                    h->refcount_order, QCOW2_MAX_REFCOUNT_ORDER);
        return -EINVAL;
    }
    if (h->header_length > QCOW2_V3_HEADER_LENGTH) {
        h->compression_type = be.compression_type;
    }
    return 0;
}

void qcow2_header_to_disk(const Qcow2Header *h, QCowHeader *be)
{
    *be = (QCowHeader) {
        .magic = GUINT32_TO_BE(h->magic),
        .version = GUINT32_TO_BE(h->version),
        .backing_file_offset = GUINT64_TO_BE(h->backing_file_offset),
        .cluster_bits = GUINT32_TO_BE(h->cluster_bits),
        .size = GUINT64_TO_BE(h->size),
        .crypt_method = GUINT32_TO_BE(h->crypt_method),
        .l1_size = GUINT32_TO_BE(h->l1_size),
        .l1_table_offset = GUINT64_TO_BE(h->l1_table_offset),
        .refcount_table_offset = GUINT64_TO_BE(h->refcount_table_offset),
        .refcount_table_clusters = GUINT32_TO_BE(h->refcount_table_clusters),
        .nb_snapshots = GUINT32_TO_BE(h->nb_snapshots),
        .snapshots_offset = GUINT64_TO_BE(h->snapshots_offset),
        .incompatible_features = GUINT64_TO_BE(h->incompatible_features),
        .compatible_features = GUINT64_TO_BE(h->compatible_features),
        .autoclear_features = GUINT64_TO_BE(h->autoclear_features),
        .refcount_order = GUINT32_TO_BE(h->refcount_order),
        .header_length = GUINT32_TO_BE(h->header_length),
        .compression_type = h->compression_type,
    };
}

/*
 * Walks the header extensions from @start to @end (the end of the first
 * cluster or of the file) and keeps the feature name table.
 */
int qcow2_parse_extensions(const uint8_t *buf, size_t start, size_t end,
                           Qcow2Feature **features, int *nb_features,
                           const char *name, GError **errp)
{
    size_t off = start;

    *features = NULL;
    *nb_features = 0;
    while (off + sizeof(QCowExtension) <= end) {
        QCowExtension ext;
        uint32_t type, elen;

        memcpy(&ext, buf + off, sizeof(ext));
        type = GUINT32_FROM_BE(ext.magic);
        elen = GUINT32_FROM_BE(ext.len);
        if (type == QCOW2_EXT_END) {
            break;
        }
        if (elen > end - off - sizeof(ext)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "'%s': header extension 0x%08x at offset %zu has "
                        "length %u, past the end of the first cluster",
                        name, type, off, elen);
            g_clear_pointer(features, g_free);
            *nb_features = 0;
            return -EINVAL;
        }
        if (type == QCOW2_EXT_FEATURE_TABLE && !*features) {
            int n = elen / sizeof(Qcow2FeatureNameEntry);

            *features = g_new0(Qcow2Feature, MAX(n, 1));
            for (int i = 0; i < n; i++) {
                Qcow2FeatureNameEntry e;

                memcpy(&e, buf + off + sizeof(ext) + i * sizeof(e), sizeof(e));
                (*features)[i].type = e.type;
                (*features)[i].bit = e.bit;
                memcpy((*features)[i].name, e.name, QCOW2_FEATURE_NAME_LEN);
                (*features)[i].name[QCOW2_FEATURE_NAME_LEN] = '\0';
            }
            *nb_features = n;
        }
        off += sizeof(ext) + QEMU_ALIGN_UP((uint64_t)elen, 8);
    }
    return 0;
}

/* Refuses features we do not implement (docs/qcow2.md §2). */
static int qcow2_check_features(BlockDriverState *bs, const Qcow2Header *h,
                                const Qcow2Feature *features, int nb,
                                GError **errp)
{
    uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT |
                     QCOW2_INCOMPAT_DATA_FILE | QCOW2_INCOMPAT_COMPRESSION |
                     QCOW2_INCOMPAT_EXTL2;
    uint64_t unknown = h->incompatible_features & ~known;

    if (h->backing_file_offset != 0) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "backing files are not supported");
        return -ENOTSUP;
    }
    if (h->crypt_method != 0) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "qcow2 encryption (crypt_method %u) is not supported",
                       h->crypt_method);
        return -ENOTSUP;
    }
    if (unknown) {
        int bit = __builtin_ctzll(unknown);
        const char *fname = qcow2_feature_name(features, nb, 0, bit);

        if (fname) {
            bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                           "unsupported incompatible feature '%s' (bit %d)",
                           fname, bit);
        } else {
            bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                           "unknown incompatible feature bit %d", bit);
        }
        return -ENOTSUP;
    }
    if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "external data files are not supported");
        return -ENOTSUP;
    }
    if ((h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) ||
        h->compression_type != 0) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "compression type %s is not supported (only zlib)",
                       h->compression_type == 1 ? "zstd" : "other than zlib");
        return -ENOTSUP;
    }
    if (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "extended L2 entries are not supported");
        return -ENOTSUP;
    }
    if ((h->incompatible_features & QCOW2_INCOMPAT_CORRUPT) && !bs->read_only) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "image is marked corrupt; open it read-only or repair "
                       "it with 'qemu-img check -r all'");
        return -EINVAL;
    }
    if ((h->incompatible_features & QCOW2_INCOMPAT_DIRTY) && !bs->read_only) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "image is dirty (lazy refcounts were not written "
                       "back); repair it with 'qemu-img check -r all'");
        return -ENOTSUP;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Bounds and overlap checks */

bool qcow2_check_overlap(BDRVQcow2State *s, uint64_t offset, uint64_t bytes,
                         const char **what)
{
    struct {
        uint64_t start, len;
        const char *name;
    } areas[] = {
        { 0, s->cluster_size, "header" },
        { s->l1_table_offset, (uint64_t)s->l1_size * L1E_SIZE, "L1 table" },
        { s->refcount_table_offset,
          (uint64_t)s->refcount_table_clusters << s->cluster_bits,
          "refcount table" },
        { s->snapshots_offset, s->snapshots_size, "snapshot table" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(areas); i++) {
        if (areas[i].len && offset < areas[i].start + areas[i].len &&
            areas[i].start < offset + bytes) {
            *what = areas[i].name;
            return true;
        }
    }
    return false;
}

bool qcow2_check_table(BlockDriverState *bs, const char *what,
                       uint64_t offset, uint64_t bytes, bool check_overlap,
                       GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const char *other;

    if (offset & (s->cluster_size - 1)) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "%s offset 0x%" PRIx64 " is not cluster aligned",
                       what, offset);
        return false;
    }
    if (offset > (uint64_t)s->file_size ||
        bytes > (uint64_t)s->file_size - offset) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "%s at 0x%" PRIx64 " (%" PRIu64 " bytes) is past the "
                       "end of the file", what, offset, bytes);
        return false;
    }
    if (check_overlap && qcow2_check_overlap(s, offset, bytes, &other)) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "%s at 0x%" PRIx64 " overlaps the %s", what, offset,
                       other);
        return false;
    }
    return true;
}

/*
 * Writes the on-disk bytes [@start, @end) (QCOW2_HEADER_SPAN) of @h, so an
 * update touches only the fields it changes and every extension survives.
 */
int qcow2_write_header_fields(BlockDriverState *bs, const Qcow2Header *h,
                              size_t start, size_t end, GError **errp)
{
    QCowHeader be;

    g_assert(start < end && end <= sizeof(be));
    qcow2_header_to_disk(h, &be);
    if (bdrv_file_pwrite(bs, start, end - start, (const uint8_t *)&be + start,
                         errp) < 0) {
        return -EIO;
    }
    return 0;
}

/*
 * Sets entry @index of the L1 or refcount table at @table_offset on disk,
 * then in @table, its copy in memory: memory never runs ahead of the file.
 */
int qcow2_write_table_entry(BlockDriverState *bs, uint64_t table_offset,
                            uint64_t *table, uint64_t index, uint64_t entry,
                            GError **errp)
{
    uint64_t be = GUINT64_TO_BE(entry);

    G_STATIC_ASSERT(L1E_SIZE == sizeof(be) && REFTABLE_ENTRY_SIZE == sizeof(be));
    if (bdrv_file_pwrite(bs, table_offset + index * sizeof(be), sizeof(be), &be,
                         errp) < 0) {
        return -EIO;
    }
    table[index] = entry;
    return 0;
}

/* Reads a table of big-endian u64 into host order. */
static uint64_t *qcow2_read_table(BlockDriverState *bs, uint64_t offset,
                                  uint64_t entries, uint64_t alloc_entries,
                                  GError **errp)
{
    g_autofree uint64_t *t = g_new0(uint64_t, MAX(alloc_entries, 1));

    if (entries &&
        bdrv_file_pread(bs, offset, entries * sizeof(*t), t, errp) < 0) {
        return NULL;
    }
    for (uint64_t i = 0; i < entries; i++) {
        t[i] = GUINT64_FROM_BE(t[i]);
    }
    return g_steal_pointer(&t);
}

/* Walks the snapshot table to learn its size (we only need its extent). */
static int qcow2_measure_snapshots(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = s->hdr.snapshots_offset, total = 0, end = 0;

    s->snapshots_offset = 0;
    s->snapshots_size = 0;
    if (s->hdr.nb_snapshots == 0) {
        return 0;
    }
    if (s->hdr.nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "nb_snapshots %u is too large (at most %d)",
                       s->hdr.nb_snapshots, QCOW2_MAX_SNAPSHOTS);
        return -EINVAL;
    }
    if (!qcow2_check_table(bs, "snapshot table", off,
                           sizeof(QCowSnapshotHeader), false, errp)) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < s->hdr.nb_snapshots; i++) {
        QCowSnapshotHeader e;
        uint64_t len;

        if (off + total + sizeof(e) > (uint64_t)s->file_size) {
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "snapshot table entry %u is past the end of the "
                           "file", i);
            return -EINVAL;
        }
        if (bdrv_file_pread(bs, off + total, sizeof(e), &e, errp) < 0) {
            return -EIO;
        }
        len = sizeof(e) + (uint64_t)GUINT32_FROM_BE(e.extra_data_size) +
              GUINT16_FROM_BE(e.id_str_size) + GUINT16_FROM_BE(e.name_size);
        /* QEMU does not write the padding of the last entry. */
        end = total + len;
        total += QEMU_ALIGN_UP(len, 8);
        if (total > 64 * 1024 * 1024) {
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "snapshot table is larger than 64 MiB");
            return -EINVAL;
        }
    }
    if (!qcow2_check_table(bs, "snapshot table", off, end, false, errp)) {
        return -EINVAL;
    }
    s->snapshots_offset = off;
    s->snapshots_size = total;
    return 0;
}

/* A table the header points at: checked as any table, and past the header. */
static bool qcow2_check_header_table(BlockDriverState *bs, const char *what,
                                     uint64_t offset, uint64_t bytes,
                                     GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (!qcow2_check_table(bs, what, offset, bytes, false, errp)) {
        return false;
    }
    if (offset < s->cluster_size) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "%s at 0x%" PRIx64 " overlaps the header", what, offset);
        return false;
    }
    return true;
}

/* Checks sizes, offsets and overlaps of the header's tables (§1). */
static int qcow2_check_header_tables(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Header *h = &s->hdr;
    uint64_t l1_needed;
    const char *other;
    int ret;

    if (h->size > QCOW2_MAX_VIRTUAL_SIZE) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "virtual size %" PRIu64 " is too large", h->size);
        return -EINVAL;
    }
    s->size = h->size;
    l1_needed = DIV_ROUND_UP(h->size, s->cluster_size << s->l2_bits);
    if ((uint64_t)h->l1_size * L1E_SIZE > QCOW2_MAX_L1_BYTES) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "L1 size %u is too large (at most %d bytes)",
                       h->l1_size, QCOW2_MAX_L1_BYTES);
        return -EINVAL;
    }
    if (h->l1_size < l1_needed) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "L1 size %u is too small for virtual size %" PRIu64,
                       h->l1_size, h->size);
        return -EINVAL;
    }
    if (h->refcount_table_clusters == 0 ||
        ((uint64_t)h->refcount_table_clusters << s->cluster_bits) >
            QCOW2_MAX_REFTABLE_BYTES) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "refcount_table_clusters %u is out of range (1 to %d "
                       "bytes)", h->refcount_table_clusters,
                       QCOW2_MAX_REFTABLE_BYTES);
        return -EINVAL;
    }

    /* Set the extents first so that the overlap checks see all of them. */
    s->l1_size = h->l1_size;
    s->l1_table_offset = h->l1_table_offset;
    s->refcount_table_offset = h->refcount_table_offset;
    s->refcount_table_clusters = h->refcount_table_clusters;
    s->refcount_table_size =
        ((uint64_t)h->refcount_table_clusters << s->cluster_bits) /
        REFTABLE_ENTRY_SIZE;
    s->snapshots_offset = 0;
    s->snapshots_size = 0;

    if (!qcow2_check_header_table(bs, "refcount table",
                                  s->refcount_table_offset,
                                  (uint64_t)s->refcount_table_clusters
                                      << s->cluster_bits, errp)) {
        return -EINVAL;
    }
    if (s->l1_size) {
        if (!qcow2_check_header_table(bs, "L1 table", s->l1_table_offset,
                                      (uint64_t)s->l1_size * L1E_SIZE, errp)) {
            return -EINVAL;
        }
        s->l1_size = 0;
        if (qcow2_check_overlap(s, h->l1_table_offset,
                                (uint64_t)h->l1_size * L1E_SIZE, &other)) {
            s->l1_size = h->l1_size;
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "L1 table at 0x%" PRIx64 " overlaps the %s",
                           h->l1_table_offset, other);
            return -EINVAL;
        }
        s->l1_size = h->l1_size;
    }
    ret = qcow2_measure_snapshots(bs, errp);
    if (ret < 0) {
        return ret;
    }
    if (s->snapshots_size) {
        uint64_t off = s->snapshots_offset, sz = s->snapshots_size;

        s->snapshots_size = 0;
        if (qcow2_check_overlap(s, off, sz, &other)) {
            bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                           "snapshot table at 0x%" PRIx64 " overlaps the %s",
                           off, other);
            return -EINVAL;
        }
        s->snapshots_size = sz;
    }

    return 0;
}

/* Validates the header against the file and loads the L1 and refcount tables. */
static int qcow2_load_metadata(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Header *h = &s->hdr;
    g_autofree uint8_t *buf = NULL;
    Qcow2Feature *features = NULL;
    int nb_features = 0, ret;
    uint64_t len;
    uint8_t first[sizeof(QCowHeader)];

    s->file_size = bdrv_file_getlength(bs, errp);
    if (s->file_size < 0) {
        return -EIO;
    }
    len = MIN((uint64_t)s->file_size, sizeof(first));
    memset(first, 0, sizeof(first));
    if (bdrv_file_pread(bs, 0, len, first, errp) < 0) {
        return -EIO;
    }
    ret = qcow2_parse_header(first, len, h, bs->filename, errp);
    if (ret < 0) {
        return ret;
    }
    if (s->l2_cache.nb && h->cluster_bits != s->cluster_bits) {
        bdrv_set_error(errp, bs, QTPM_ERROR_CORRUPT,
                       "cluster_bits changed from %u to %u while open",
                       s->cluster_bits, h->cluster_bits);
        return -EINVAL;
    }
    s->cluster_bits = h->cluster_bits;
    s->cluster_size = 1ULL << h->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    s->l2_size = 1ULL << s->l2_bits;
    s->refcount_order = h->refcount_order;
    s->refcount_bits = 1u << h->refcount_order;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX
                                             : (1ULL << s->refcount_bits) - 1;
    s->rb_bits = s->cluster_bits + 3 - s->refcount_order;
    s->rb_entries = 1ULL << s->rb_bits;

    /* The whole first cluster, for the header and its extensions. */
    len = MIN((uint64_t)s->file_size, s->cluster_size);
    buf = g_malloc0(s->cluster_size);
    if (bdrv_file_pread(bs, 0, len, buf, errp) < 0) {
        return -EIO;
    }
    ret = qcow2_parse_header(buf, len, h, bs->filename, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_parse_extensions(buf, h->header_length, len, &features,
                                 &nb_features, bs->filename, errp);
    if (ret < 0) {
        return ret;
    }
    g_free(s->features);
    s->features = features;
    s->nb_features = nb_features;
    ret = qcow2_check_features(bs, h, features, nb_features, errp);
    if (ret < 0) {
        return ret;
    }

    ret = qcow2_check_header_tables(bs, errp);
    if (ret < 0) {
        return ret;
    }

    g_free(s->l1_table);
    s->l1_table = qcow2_read_table(bs, s->l1_table_offset, s->l1_size,
                                   s->l1_size, errp);
    if (!s->l1_table) {
        return -EIO;
    }
    g_free(s->refcount_table);
    s->refcount_table = qcow2_read_table(bs, s->refcount_table_offset,
                                         s->refcount_table_size,
                                         s->refcount_table_size, errp);
    if (!s->refcount_table) {
        return -EIO;
    }
    qcow2_cache_clear(&s->l2_cache);
    qcow2_cache_clear(&s->refblock_cache);
    s->free_cluster_index = 0;
    s->decompressed_entry = 0;
    return 0;
}

int qcow2_reload_metadata(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = qcow2_load_metadata(bs, errp);

    s->broken = ret < 0;
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Driver callbacks */

static int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    QCowHeader be;
    uint32_t version;

    if (buf_size < (int)offsetof(QCowHeader, backing_file_offset)) {
        return 0;
    }
    memcpy(&be, buf, offsetof(QCowHeader, backing_file_offset));
    version = GUINT32_FROM_BE(be.version);
    if (GUINT32_FROM_BE(be.magic) == QCOW_MAGIC &&
        (version == 2 || version == 3)) {
        return 100;
    }
    return 0;
}

static void qcow2_free_state(BDRVQcow2State *s)
{
    g_clear_pointer(&s->l1_table, g_free);
    g_clear_pointer(&s->refcount_table, g_free);
    g_clear_pointer(&s->features, g_free);
    g_clear_pointer(&s->decompressed_cluster, g_free);
    if (s->pending_frees) {
        g_array_free(s->pending_frees, true);
        s->pending_frees = NULL;
    }
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->refblock_cache);
}

static int qcow2_open(BlockDriverState *bs, const char *filename,
                      const BlockOpenOptions *opts, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    s->pending_frees = g_array_new(false, false, sizeof(Qcow2Free));
    ret = qcow2_load_metadata(bs, errp);
    if (ret < 0) {
        qcow2_free_state(s);
        return ret;
    }
    qcow2_cache_init(&s->l2_cache, "L2 table", QCOW2_L2_CACHE_SIZE,
                     s->cluster_size);
    qcow2_cache_init(&s->refblock_cache, "refcount block",
                     QCOW2_REFBLOCK_CACHE_SIZE, s->cluster_size);
    s->decompressed_cluster = g_malloc(s->cluster_size);
    bs->request_alignment = 1;
    return 0;
}

/* After a failed write the caches may disagree with the file: reload. */
static int qcow2_recover(BlockDriverState *bs, int ret)
{
    qcow2_reload_metadata(bs, NULL);
    return ret < 0 ? ret : -EIO;
}

static int qcow2_flush(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (bs->read_only) {
        return 0;
    }
    if (bdrv_file_flush(bs, errp) < 0) {
        return -EIO;
    }
    if (s->pending_frees->len == 0 || s->broken || bs->inactive) {
        return 0;
    }
    /*
     * The references dropped before this flush are durable now: the
     * decrements may follow (docs/qcow2.md "Write ordering" rule 5). They
     * are flushed too, so that nothing of ours is still in flight when the
     * caller hands the image to another process; only updates that freed
     * clusters pay for this second flush.
     */
    if (qcow2_apply_pending_frees(bs, errp) < 0) {
        return qcow2_recover(bs, -EIO);
    }
    return bdrv_file_flush(bs, errp);
}

static void qcow2_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    if (!bs->read_only && !bs->inactive && !s->broken) {
        qcow2_flush(bs, NULL);
    }
    qcow2_free_state(s);
}

static int qcow2_invalidate_cache(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    /* Another process may have changed everything: queued frees of ours
     * would be stale (dropping them can only leak). */
    g_array_set_size(s->pending_frees, 0);
    s->autoclear_done = false;
    return qcow2_reload_metadata(bs, errp);
}

/* Clears autoclear bits once per open, before the first write (§2). */
static int qcow2_prepare_write(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Header h;

    if (s->broken) {
        bdrv_set_error(errp, bs, QTPM_ERROR_IO,
                       "an earlier write failed and the metadata could not "
                       "be reloaded; reopen the image");
        return -EIO;
    }
    if (s->autoclear_done) {
        return 0;
    }
    if (s->hdr.version >= 3 && s->hdr.autoclear_features) {
        h = s->hdr;
        h.autoclear_features = 0;
        if (qcow2_write_header_fields(bs, &h,
                                      QCOW2_HEADER_SPAN(autoclear_features,
                                                        autoclear_features),
                                      errp) < 0) {
            return -EIO;
        }
        /* Ordering: no change may reach the disk while the bits still
         * claim that the data they guard is consistent. */
        if (bdrv_file_flush(bs, errp) < 0) {
            return -EIO;
        }
        s->hdr = h;
    }
    s->autoclear_done = true;
    return 0;
}

static int qcow2_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       void *buf, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t *p = buf;

    if (s->broken) {
        bdrv_set_error(errp, bs, QTPM_ERROR_IO,
                       "an earlier write failed and the metadata could not "
                       "be reloaded; reopen the image");
        return -EIO;
    }
    while (bytes > 0) {
        uint64_t in = offset & (s->cluster_size - 1);
        uint64_t n = MIN((uint64_t)bytes, s->cluster_size - in);
        uint64_t entry;

        if (qcow2_get_l2_entry(bs, offset, &entry, errp) < 0 ||
            qcow2_read_cluster(bs, entry, in, n, p, errp) < 0) {
            return -EIO;
        }
        p += n;
        offset += n;
        bytes -= n;
    }
    return 0;
}

static int qcow2_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                        const void *buf, GError **errp)
{
    int ret = qcow2_prepare_write(bs, errp);

    if (ret < 0) {
        return ret;
    }
    ret = qcow2_write_clusters(bs, offset, bytes, buf, errp);
    return ret < 0 ? qcow2_recover(bs, ret) : 0;
}

static int qcow2_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                               int64_t bytes, GError **errp)
{
    int ret = qcow2_prepare_write(bs, errp);

    if (ret < 0) {
        return ret;
    }
    ret = qcow2_zero_clusters(bs, offset, bytes, errp);
    return ret < 0 ? qcow2_recover(bs, ret) : 0;
}

static int64_t qcow2_getlength(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    return (int64_t)s->size;
}

static int qcow2_truncate(BlockDriverState *bs, int64_t size, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_needed;
    Qcow2Header h;
    int ret;

    if (size < 0 || (uint64_t)size < s->size) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "shrinking a qcow2 image is not supported");
        return -ENOTSUP;
    }
    if ((uint64_t)size > QCOW2_MAX_VIRTUAL_SIZE) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "size %" PRId64 " is too large", size);
        return -EINVAL;
    }
    ret = qcow2_prepare_write(bs, errp);
    if (ret < 0) {
        return ret;
    }
    l1_needed = DIV_ROUND_UP((uint64_t)size, s->cluster_size << s->l2_bits);
    if (l1_needed > s->l1_size) {
        ret = qcow2_grow_l1_table(bs, l1_needed, (uint64_t)size, errp);
        return ret < 0 ? qcow2_recover(bs, ret) : 0;
    }
    h = s->hdr;
    h.size = size;
    if (qcow2_write_header_fields(bs, &h, QCOW2_HEADER_SPAN(size, size),
                                  errp) < 0) {
        return -EIO;
    }
    s->size = size;
    s->hdr = h;
    return 0;
}

static void qcow2_get_info(BlockDriverState *bs, GString *info)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2Header *h = &s->hdr;

    g_string_append_printf(info, "format: qcow2\n");
    g_string_append_printf(info, "version: %u\n", h->version);
    g_string_append_printf(info, "compat: %s\n",
                           h->version == 2 ? "0.10" : "1.1");
    g_string_append_printf(info, "cluster_size: %" PRIu64 "\n",
                           s->cluster_size);
    g_string_append_printf(info, "refcount_bits: %u\n", s->refcount_bits);
    g_string_append_printf(info, "virtual_size: %" PRIu64 "\n", s->size);
    g_string_append_printf(info, "l1_size: %u\n", s->l1_size);
    g_string_append_printf(info, "snapshots: %u\n", h->nb_snapshots);
    g_string_append_printf(info, "incompatible: 0x%" PRIx64 "\n",
                           h->incompatible_features);
    g_string_append_printf(info, "compatible: 0x%" PRIx64 "\n",
                           h->compatible_features);
    g_string_append_printf(info, "autoclear: 0x%" PRIx64 "\n",
                           h->autoclear_features);
    g_string_append_printf(info, "lazy_refcounts: %s\n",
                           h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS
                               ? "true" : "false");
    g_string_append_printf(info, "dirty: %s\n",
                           h->incompatible_features & QCOW2_INCOMPAT_DIRTY
                               ? "true" : "false");
    g_string_append_printf(info, "corrupt: %s\n",
                           h->incompatible_features & QCOW2_INCOMPAT_CORRUPT
                               ? "true" : "false");
    for (int i = 0; i < s->nb_features; i++) {
        static const char *const kinds[] = { "incompatible", "compatible",
                                             "autoclear" };
        const Qcow2Feature *f = &s->features[i];

        uint64_t bits = f->type == 0 ? h->incompatible_features
                        : f->type == 1 ? h->compatible_features
                        : f->type == 2 ? h->autoclear_features : 0;

        if (f->name[0] && f->bit < 64 && (bits >> f->bit) & 1) {
            g_string_append_printf(info, "feature: %s bit %u: %s\n",
                                   f->type < 3 ? kinds[f->type] : "unknown",
                                   f->bit, f->name);
        }
    }
}

const BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .instance_size = sizeof(BDRVQcow2State),
    .bdrv_probe = qcow2_probe,
    .bdrv_open = qcow2_open,
    .bdrv_close = qcow2_close,
    .bdrv_pread = qcow2_pread,
    .bdrv_pwrite = qcow2_pwrite,
    .bdrv_pwrite_zeroes = qcow2_pwrite_zeroes,
    .bdrv_flush = qcow2_flush,
    .bdrv_getlength = qcow2_getlength,
    .bdrv_truncate = qcow2_truncate,
    .bdrv_get_info = qcow2_get_info,
    .bdrv_invalidate_cache = qcow2_invalidate_cache,
};
