/*
 * qcow2 driver internals. Format and write ordering: docs/qcow2.md.
 */
#ifndef BLOCK_QCOW2_H
#define BLOCK_QCOW2_H

#include "qemu/osdep.h"
#include "qemu/bswap.h"

#include "block/block_int.h"

#define QCOW_MAGIC 0x514649fbu

/*
 * The on-disk header (docs/qcow2.md section 1), field names as in QEMU's
 * docs/interop/qcow2.txt and block/qcow2.h, all big endian. Its field
 * values are converted in one place each way: qcow2_parse_header into a
 * Qcow2Header, qcow2_header_to_disk back; the rest of the driver works on
 * the Qcow2Header and uses this struct for offsets (QCOW2_HEADER_SPAN).
 */
typedef struct __attribute__((packed)) QCowHeader {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    /* version 3 */
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    /* present when header_length > QCOW2_V3_HEADER_LENGTH */
    uint8_t compression_type;
    uint8_t padding[7];
} QCowHeader;

#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_V3_HEADER_LENGTH 104

G_STATIC_ASSERT(offsetof(QCowHeader, incompatible_features) ==
                QCOW2_V2_HEADER_LENGTH);
G_STATIC_ASSERT(offsetof(QCowHeader, compression_type) ==
                QCOW2_V3_HEADER_LENGTH);
G_STATIC_ASSERT(sizeof(QCowHeader) == 112);

/* The header bytes from field @first through field @last, as (start, end). */
#define QCOW2_HEADER_SPAN(first, last) \
    offsetof(QCowHeader, first), \
    offsetof(QCowHeader, last) + sizeof(((QCowHeader *)0)->last)

/* A header extension's leading bytes; data and padding to 8 follow. */
typedef struct __attribute__((packed)) QCowExtension {
    uint32_t magic;
    uint32_t len;
} QCowExtension;

G_STATIC_ASSERT(sizeof(QCowExtension) == 8);

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_REFCOUNT_ORDER 6

/* Same implementation limits as QEMU (docs/interop/qcow2.txt notes). */
#define QCOW2_MAX_L1_BYTES (32 * 1024 * 1024)
#define QCOW2_MAX_REFTABLE_BYTES (8 * 1024 * 1024)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_VIRTUAL_SIZE (UINT64_C(1) << 56)

/* incompatible_features */
#define QCOW2_INCOMPAT_DIRTY (UINT64_C(1) << 0)
#define QCOW2_INCOMPAT_CORRUPT (UINT64_C(1) << 1)
#define QCOW2_INCOMPAT_DATA_FILE (UINT64_C(1) << 2)
#define QCOW2_INCOMPAT_COMPRESSION (UINT64_C(1) << 3)
#define QCOW2_INCOMPAT_EXTL2 (UINT64_C(1) << 4)
/* compatible_features */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (UINT64_C(1) << 0)

/* header extension types */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

#define QCOW2_FEATURE_NAME_LEN 46

/* One entry of the feature name table extension. */
typedef struct __attribute__((packed)) Qcow2FeatureNameEntry {
    uint8_t type;   /* 0 incompatible, 1 compatible, 2 autoclear */
    uint8_t bit;
    char name[QCOW2_FEATURE_NAME_LEN];
} Qcow2FeatureNameEntry;

G_STATIC_ASSERT(sizeof(Qcow2FeatureNameEntry) == 48);

/* The fixed part of a snapshot table entry; id, name and extra data follow. */
typedef struct __attribute__((packed)) QCowSnapshotHeader {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    uint16_t id_str_size;
    uint16_t name_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint32_t vm_state_size;
    uint32_t extra_data_size;
} QCowSnapshotHeader;

G_STATIC_ASSERT(sizeof(QCowSnapshotHeader) == 40);

/* L1, L2 and refcount table entries are big-endian u64 */
#define L1E_SIZE sizeof(uint64_t)
#define L2E_SIZE sizeof(uint64_t)
#define REFTABLE_ENTRY_SIZE sizeof(uint64_t)

/* L1/L2 entry bits */
#define QCOW_OFLAG_COPIED (UINT64_C(1) << 63)
#define QCOW_OFLAG_COMPRESSED (UINT64_C(1) << 62)
#define QCOW_OFLAG_ZERO (UINT64_C(1) << 0)
#define L1E_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L1E_RESERVED_MASK UINT64_C(0x7f000000000001ff)
#define L2E_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L2E_STD_RESERVED_MASK UINT64_C(0x3f000000000001fe)
#define REFT_OFFSET_MASK UINT64_C(0xfffffffffffffe00)
#define REFT_RESERVED_MASK UINT64_C(0x1ff)

#define QCOW2_COMPRESSED_SECTOR_SIZE 512

#define QCOW2_L2_CACHE_SIZE 16
#define QCOW2_REFBLOCK_CACHE_SIZE 8

/*
 * The fixed header as the driver keeps it: the fields it uses, in host byte
 * order, named as in QCowHeader. Fields a version 2 header lacks hold the
 * values the spec implies for it.
 */
typedef struct Qcow2Header {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
} Qcow2Header;

typedef struct Qcow2Feature {
    uint8_t type;   /* 0 incompatible, 1 compatible, 2 autoclear */
    uint8_t bit;
    char name[QCOW2_FEATURE_NAME_LEN + 1];
} Qcow2Feature;

typedef struct Qcow2CacheEntry {
    uint64_t offset;   /* 0: empty slot */
    uint64_t lru;
    uint8_t *data;
} Qcow2CacheEntry;

typedef struct Qcow2Cache {
    const char *what;  /* "L2 table", "refcount block" */
    int nb;
    size_t table_size;
    uint64_t lru_counter;
    Qcow2CacheEntry *entries;
} Qcow2Cache;

typedef struct Qcow2Free {
    uint64_t offset;
    uint64_t bytes;
} Qcow2Free;

typedef struct BDRVQcow2State {
    Qcow2Header hdr;
    uint32_t cluster_bits;
    uint64_t cluster_size;
    uint32_t l2_bits;         /* log2 of entries per L2 table */
    uint64_t l2_size;         /* entries per L2 table */
    uint32_t refcount_order;
    uint32_t refcount_bits;
    uint64_t refcount_max;
    uint32_t rb_bits;         /* log2 of entries per refcount block */
    uint64_t rb_entries;

    uint64_t *l1_table;       /* host byte order */
    uint32_t l1_size;
    uint64_t l1_table_offset;

    uint64_t *refcount_table; /* host byte order */
    uint64_t refcount_table_size;  /* entries */
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;

    uint64_t snapshots_offset;
    uint64_t snapshots_size;  /* bytes of the snapshot table */

    uint64_t size;            /* virtual size */
    int64_t file_size;        /* grows as we write past it */

    Qcow2Feature *features;
    int nb_features;

    Qcow2Cache l2_cache;
    Qcow2Cache refblock_cache;
    uint64_t free_cluster_index;
    GArray *pending_frees;    /* of Qcow2Free, applied after a flush */

    uint64_t decompressed_entry;  /* L2 entry of decompressed_cluster, 0: none */
    uint8_t *decompressed_cluster;

    bool autoclear_done;
    bool broken;              /* metadata could not be reloaded after an error */
} BDRVQcow2State;

/* qcow2.c. The two parsers are pure functions over the first cluster. */
int qcow2_parse_header(const uint8_t *buf, size_t len, Qcow2Header *h,
                       const char *name, GError **errp);
/* The on-disk form of @h; fields Qcow2Header does not keep are zero. */
void qcow2_header_to_disk(const Qcow2Header *h, QCowHeader *be);
int qcow2_parse_extensions(const uint8_t *buf, size_t start, size_t end,
                           Qcow2Feature **features, int *nb_features,
                           const char *name, GError **errp);
bool qcow2_check_overlap(BDRVQcow2State *s, uint64_t offset, uint64_t bytes,
                         const char **what);
bool qcow2_check_table(BlockDriverState *bs, const char *what,
                       uint64_t offset, uint64_t bytes, bool check_overlap,
                       GError **errp);
int qcow2_reload_metadata(BlockDriverState *bs, GError **errp);
int qcow2_write_header_fields(BlockDriverState *bs, const Qcow2Header *h,
                              size_t start, size_t end, GError **errp);
int qcow2_write_table_entry(BlockDriverState *bs, uint64_t table_offset,
                            uint64_t *table, uint64_t index, uint64_t entry,
                            GError **errp);

/* qcow2-cache.c */
void qcow2_cache_init(Qcow2Cache *c, const char *what, int nb,
                      size_t table_size);
void qcow2_cache_destroy(Qcow2Cache *c);
/* Returns the cached table at @offset, reading it unless @fresh (then zeroed). */
uint8_t *qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset,
                         bool fresh, GError **errp);
void qcow2_cache_put(Qcow2Cache *c, uint64_t offset, const uint8_t *data);
void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset);
void qcow2_cache_clear(Qcow2Cache *c);

/* qcow2-refcount.c */
int qcow2_get_refcount(BlockDriverState *bs, uint64_t cluster_index,
                       uint64_t *refcount, GError **errp);
int64_t qcow2_alloc_clusters(BlockDriverState *bs, uint64_t nb_clusters,
                             GError **errp);
void qcow2_free_later(BlockDriverState *bs, uint64_t offset, uint64_t bytes);
int qcow2_apply_pending_frees(BlockDriverState *bs, GError **errp);
int qcow2_update_refcount_range(BlockDriverState *bs, uint64_t offset,
                                uint64_t bytes, int delta, GError **errp);
uint64_t qcow2_refcount_entry_get(const uint8_t *block, uint32_t order,
                                  uint64_t index);
void qcow2_refcount_entry_set(uint8_t *block, uint32_t order, uint64_t index,
                              uint64_t value);

/* qcow2-cluster.c */
int qcow2_get_l2_entry(BlockDriverState *bs, uint64_t guest_offset,
                       uint64_t *entry, GError **errp);
int qcow2_read_cluster(BlockDriverState *bs, uint64_t entry,
                       uint64_t offset_in_cluster, uint64_t bytes,
                       uint8_t *buf, GError **errp);
int qcow2_write_clusters(BlockDriverState *bs, uint64_t offset,
                         uint64_t bytes, const uint8_t *buf, GError **errp);
int qcow2_zero_clusters(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                        GError **errp);
int qcow2_grow_l1_table(BlockDriverState *bs, uint64_t min_size,
                        uint64_t new_virtual_size, GError **errp);
void qcow2_parse_compressed(BDRVQcow2State *s, uint64_t entry,
                            uint64_t *coffset, uint64_t *csize);

static inline void qcow2_note_file_end(BDRVQcow2State *s, uint64_t end)
{
    if ((int64_t)end > s->file_size) {
        s->file_size = end;
    }
}

static inline uint64_t qcow2_start_of_cluster(BDRVQcow2State *s, uint64_t o)
{
    return o & ~(s->cluster_size - 1);
}

#endif
