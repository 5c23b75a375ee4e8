/*
 * NVRAM store: the TPM's state blobs in a block device, behind a two-slot
 * CRC32 directory, optionally sealed with AES-256-GCM.
 * On-disk format: docs/nvram-format.md.
 */
#ifndef NVRAM_NVRAM_H
#define NVRAM_NVRAM_H

#include "block/block.h"
#include "crypto/key.h"
#include "qemu/tpm-blob.h"

typedef struct NvramStore NvramStore;

typedef struct NvramOpenOptions {
    QCryptoKey key;
    /*
     * true: take the owner lock (exclusive, held until close) so this
     * process may commit. false: a reader (migration target before
     * switchover, qtpm-img info/check) that takes only the shared access lock
     * around each consistent read and never writes.
     */
    bool owner;
    /* Blank image: format it (owner only); false refuses a blank image. */
    bool format_blank;
    /*
     * A blank image whose format was guessed as raw (bdrv_format_is_probed)
     * is not formatted unless this is set: only a command whose purpose is
     * to write a new store into the file it names (qtpm-img import) sets it.
     */
    bool format_probed_raw;
    /* TPM family recorded when formatting: 1 = TPM 1.2, 2 = TPM 2.0. */
    int tpm_version;
    /* PBKDF2 iterations when formatting with a passphrase; 0 = default. */
    uint32_t kdf_iterations;
    /* How long to wait for the owner / access locks (ms; 0 = try once). */
    int lock_timeout_ms;
    /*
     * Readers only: open an encrypted image without its key (qtpm-img info
     * and check). CRCs are verified, tags and the key are not; load refuses.
     */
    bool allow_no_key;
    /*
     * Owner only: when the newest directory of an `ordered` image is damaged
     * (docs/nvram-format.md 4a), go back to the newest one that verifies and
     * commit it as the next generation, instead of refusing. The damaged
     * generation is lost; NvramInfo.rolled_back_from names it.
     */
    bool accept_rollback;
} NvramOpenOptions;

/* Block layer lock ids (bdrv_lock_id) used by the store; docs/nvram-format.md 7. */
#define NVRAM_LOCK_ID_OWNER 1
#define NVRAM_LOCK_ID_ACCESS 2

typedef struct NvramBlobInfo {
    TPMStateBlobType type;
    uint64_t offset;        /* in the virtual disk */
    uint32_t length;        /* stored bytes (ciphertext when encrypted) */
    uint32_t crc32;         /* of the stored bytes */
    uint64_t generation;    /* directory generation that wrote it */
} NvramBlobInfo;

/* Room for NvramInfo.other_cause (longer causes are cut). */
#define NVRAM_CAUSE_MAX 256

typedef struct NvramInfo {
    uint32_t format_version;
    bool encrypted;
    bool passphrase;        /* key derived with PBKDF2 */
    uint32_t kdf_iterations;
    int tpm_version;
    uint8_t uuid[16];
    uint64_t generation;    /* of the directory in use */
    int slot;               /* 0 = A, 1 = B */
    unsigned n_blobs;
    NvramBlobInfo blobs[TPM_STATE_BLOB_TYPE_MAX];
    bool key_checked;       /* a key was given and verified */
    /*
     * The other slot, when it is damaged or newer than the slot in use
     * (an interrupted commit, or damage): its generation (0 if unreadable).
     * other_problem is false on a clean image.
     */
    bool other_problem;
    uint64_t other_generation;
    /*
     * Why the other slot is not usable, in the store's words (e.g.
     * "directory CRC mismatch (...)"); empty when other_problem is false.
     */
    char other_cause[NVRAM_CAUSE_MAX];
    /* Ordered commits (docs/nvram-format.md 4a): damage is never undone silently. */
    bool ordered;
    /* Set after an open with accept_rollback went back: the generation lost. */
    uint64_t rolled_back_from;
    /* This open formatted a blank image (a new, empty store). */
    bool formatted;
} NvramInfo;

typedef struct NvramBlobUpdate {
    TPMStateBlobType type;
    const uint8_t *data;    /* NULL with len 0 deletes the blob */
    size_t len;
} NvramBlobUpdate;

/*
 * Opens the store on @bs: checks the header, picks the newest directory slot
 * whose CRCs and tags verify, and checks the key, before anything is
 * written. A blank image is formatted when opts->format_blank allows it.
 * Errors: QTPM_ERROR_WRONG_KEY, _NO_KEY, _LOCKED, _CORRUPT, _INVALID,
 * _UNSUPPORTED, each with a sentence naming the image.
 */
NvramStore *nvram_open(BlockDriverState *bs, const NvramOpenOptions *opts,
                       GError **errp);
void nvram_close(NvramStore *s);

/*
 * Loads the current version of a blob into a g_malloc'ed buffer (plaintext).
 * Returns 1 when loaded, 0 when the blob does not exist, -1 on error.
 */
int nvram_load(NvramStore *s, TPMStateBlobType type, uint8_t **data, size_t *len,
               GError **errp);
/* One commit with one flush; durable when it returns 0. Owner only. */
int nvram_store(NvramStore *s, TPMStateBlobType type, const uint8_t *data,
                size_t len, GError **errp);
int nvram_commit(NvramStore *s, const NvramBlobUpdate *updates, size_t n,
                 GError **errp);
int nvram_delete(NvramStore *s, TPMStateBlobType type, GError **errp);
/* Re-reads the on-disk state (readers) and describes it. */
int nvram_get_info(NvramStore *s, NvramInfo *info, GError **errp);
/*
 * Verifies every blob of the current directory (CRC and, with a key, tag).
 * Returns 0 clean, -1 with @errp naming the first damage found.
 */
int nvram_check(NvramStore *s, GError **errp);
/* Gives up / takes back the owner lock (migration hand-off). */
void nvram_release_owner(NvramStore *s);
int nvram_acquire_owner(NvramStore *s, int timeout_ms, GError **errp);
const uint8_t *nvram_get_uuid(NvramStore *s);

/*
 * Re-encrypts every blob under @new_key (QCRYPTO_KEY_NONE removes encryption)
 * as one commit; @kdf_iterations applies to a passphrase (0 = default).
 * Owner only, and the store must have been opened with its current key.
 */
int nvram_rekey(NvramStore *s, const QCryptoKey *new_key, uint32_t kdf_iterations,
                GError **errp);

#endif
