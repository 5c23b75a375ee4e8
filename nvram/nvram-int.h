/*
 * NVRAM store internals shared by the files of nvram/; not for users of the store,
 * who see include/nvram/nvram.h only. docs/nvram-format.md is the format.
 *
 *   nvram.c         open, close, load, info, check, the owner and access locks
 *   nvram-keys.c    key check value, subkeys, key records, AEAD seal and open
 *   nvram-slot.c    consistent read of both directory slots, choosing one
 *   nvram-create.c  recognising a blank image and formatting it
 *   nvram-commit.c  commit, store, delete, rekey, growing the disk
 *   nvram-format.c  pure encoders and parsers of the on-disk structures
 */
#ifndef NVRAM_NVRAM_INT_H
#define NVRAM_NVRAM_INT_H

#include "qemu/osdep.h"
#include "block/block.h"
#include "nvram/nvram.h"
#include "nvram/nvram-format.h"

/* The subkeys derived from the user's key for one key record (section 5). */
typedef struct NvramKeys {
    bool valid;
    uint8_t kdf;
    uint32_t kdf_iterations;
    uint8_t kdf_salt[NVRAM_SALT_LEN];
    uint8_t ikm[32];
    uint8_t blob[32];
    uint8_t check[32];
    uint8_t dir_mac[32];
} NvramKeys;

struct NvramStore {
    BlockDriverState *bs;
    const char *name;
    bool owner;
    bool allow_no_key;
    bool accept_rollback;
    NvramHeader hdr;
    NvramDirectory dir;     /* the directory in use */
    int slot;
    bool other_problem;
    uint64_t other_generation;
    char other_cause[NVRAM_CAUSE_MAX];
    uint64_t rolled_back_from;  /* accept_rollback: the damaged generation left */
    bool formatted;             /* this open formatted a blank image */
    QCryptoKeyKind key_kind;
    uint8_t *key_data;
    size_t key_len;
    NvramKeys keys;         /* derived for dir.key when the image is encrypted */
    /*
     * The host caches pages of the image that reads or allocating writes
     * made: the next commit drops them first (bdrv_drop_page_cache), and
     * from then on its blob writes make the cached pages themselves.
     */
    bool page_cache_stale;
    int64_t file_len;       /* the image file's length after the last commit */
};

/* What a consistent read of both slots found. */
typedef struct NvramSelection {
    NvramDirectory dir;
    int slot;
    uint8_t *plain[NVRAM_DIR_MAX_ENTRIES];  /* per entry; NULL without a key */
    size_t plain_len[NVRAM_DIR_MAX_ENTRIES];
    NvramKeys keys;
    bool other_problem;
    uint64_t other_generation;
    char other_cause[NVRAM_CAUSE_MAX];     /* why the other slot is unusable */
    bool in_use_copy_damaged;   /* `ordered`: one copy of the chosen slot fails */
    uint64_t rolled_back_from;  /* accept_rollback: the damaged newest generation */
} NvramSelection;

static inline bool nvram_is_ordered(const NvramStore *s)
{
    return s->hdr.incompat_flags & NVRAM_INCOMPAT_ORDERED;
}

static inline char nvram_slot_name(int slot)
{
    return slot ? 'B' : 'A';
}

static inline uint64_t nvram_slot_offset(unsigned slot)
{
    return slot ? NVRAM_SLOT_B_OFFSET : NVRAM_SLOT_A_OFFSET;
}

/* nvram.c */
int nvram_access_lock(NvramStore *s, BdrvLockMode mode, GError **errp);
void nvram_access_unlock(NvramStore *s);
int nvram_check_open_options(BlockDriverState *bs, const NvramOpenOptions *opts,
                             GError **errp);
bool nvram_type_valid(NvramStore *s, TPMStateBlobType type, GError **errp);
bool nvram_need_key_for_data(NvramStore *s, GError **errp);

/* nvram-keys.c */
void nvram_key_check_value(const NvramKeys *k, const uint8_t *uuid,
                           uint8_t out[NVRAM_KEY_CHECK_LEN]);
int nvram_keys_derive(NvramStore *s, const QCryptoKeyKind kind, const uint8_t *key,
                      size_t key_len, const NvramKeyRecord *rec, NvramKeys *out,
                      GError **errp);
void nvram_keys_wipe(NvramKeys *k);
bool nvram_blob_open(NvramStore *s, const NvramDirectory *d, const NvramKeys *k,
                     const NvramDirEntry *e, const uint8_t *stored, uint8_t **plain,
                     GError **errp);
int nvram_keys_check(NvramStore *s, const NvramDirectory *d, NvramKeys *keys,
                     GError **errp);
int nvram_key_record_new(NvramStore *s, QCryptoKeyKind kind, uint32_t iterations,
                         NvramKeyRecord *rec, GError **errp);
int nvram_blob_seal(NvramStore *s, const NvramDirectory *d, const NvramKeys *k,
                    NvramDirEntry *e, const uint8_t *data, size_t len,
                    uint8_t **out, GError **errp);

/* nvram-slot.c */
void nvram_selection_clear(NvramSelection *sel);
int nvram_read_stored_blob(NvramStore *s, const NvramDirEntry *e, uint8_t **buf,
                           GError **errp);
bool nvram_blob_crc_ok(const NvramDirEntry *e, const uint8_t *stored, GError **errp);
const NvramDirEntry *nvram_dir_find(const NvramDirectory *d, TPMStateBlobType type,
                                    unsigned *index);
int nvram_select(NvramStore *s, NvramSelection *sel, GError **errp);
void nvram_adopt_selection(NvramStore *s, NvramSelection *sel);

/* nvram-create.c */
int nvram_image_holds_no_state(NvramStore *s, bool *none, GError **errp);
int nvram_format_blank(NvramStore *s, const NvramOpenOptions *opts, GError **errp);

/* nvram-commit.c */
int nvram_ensure_disk_size(NvramStore *s, uint64_t end, GError **errp);
/*
 * The current state again as a commit without new blobs, as generation
 * MAX(current, @at_least) + 1: rewrites a damaged directory (section 4a).
 */
int nvram_commit_again(NvramStore *s, uint64_t at_least, GError **errp);

#endif
