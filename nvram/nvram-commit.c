/*
 * NVRAM store commits (docs/nvram-format.md section 4): new blobs into free
 * space, the new directory into the other slot, one flush. Store, delete and
 * rekey are commits.
 */
#include "qemu/osdep.h"
#include "crypto/secret.h"

#include "nvram-int.h"

#define NVRAM_GROW_STEP (64 * 1024)

int nvram_ensure_disk_size(NvramStore *s, uint64_t end, GError **errp)
{
    int64_t len = bdrv_getlength(s->bs, errp);

    if (len < 0) {
        return -1;
    }
    if ((uint64_t)len >= end) {
        return 0;
    }
    return bdrv_truncate(s->bs, QEMU_ALIGN_UP(end, NVRAM_GROW_STEP), errp);
}

typedef struct Extent {
    uint64_t start, end;
} Extent;

/* First fit in the data area around @used (live extents and this commit's). */
static uint64_t alloc_extent(const Extent *used, unsigned n_used, uint64_t len)
{
    uint64_t start = NVRAM_DATA_OFFSET;
    bool moved = true;

    while (moved) {
        moved = false;
        for (unsigned i = 0; i < n_used; i++) {
            if (start < used[i].end && used[i].start < start + len) {
                start = used[i].end;
                moved = true;
            }
        }
    }
    return start;
}

static int commit_validate(NvramStore *s, const NvramBlobUpdate *updates, size_t n,
                           GError **errp)
{
    bool seen[TPM_STATE_BLOB_TYPE_MAX + 1] = { false };

    if (!s->owner) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': the NVRAM store is open for reading only", s->name);
        return -1;
    }
    if (!nvram_need_key_for_data(s, errp)) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!nvram_type_valid(s, updates[i].type, errp)) {
            return -1;
        }
        if (seen[updates[i].type]) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s': blob %s appears twice in one commit", s->name,
                        tpm_state_blob_label(updates[i].type));
            return -1;
        }
        seen[updates[i].type] = true;
        if (updates[i].len > NVRAM_MAX_BLOB_LEN ||
            (updates[i].len && !updates[i].data)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s': blob %s of %zu bytes is too large (at most %u)",
                        s->name, tpm_state_blob_label(updates[i].type), updates[i].len,
                        NVRAM_MAX_BLOB_LEN);
            return -1;
        }
    }
    return 0;
}

/* A commit being prepared: the new directory and the bytes of its new blobs. */
typedef struct NvramCommit {
    NvramDirectory d;
    uint8_t *sealed[NVRAM_DIR_MAX_ENTRIES];     /* new blobs only */
    uint64_t end;                               /* end of the data area it uses */
} NvramCommit;

static void commit_free(NvramCommit *c)
{
    for (unsigned i = 0; i < NVRAM_DIR_MAX_ENTRIES; i++) {
        if (c->sealed[i]) {
            /* Plain stores hold TPM state here in the clear; ciphertext needs no wiping. */
            if (c->d.key.cipher == NVRAM_CIPHER_NONE) {
                qcrypto_memwipe(c->sealed[i], c->d.entries[i].length);
            }
            g_free(c->sealed[i]);
        }
    }
}

/* The next directory: unchanged entries kept, new blobs sealed for it. */
static int commit_build(NvramStore *s, NvramCommit *c, const NvramBlobUpdate *updates,
                        size_t n, const NvramKeyRecord *rec, const NvramKeys *keys,
                        GError **errp)
{
    NvramDirectory *d = &c->d;

    d->slot_index = !s->slot;
    d->generation = s->dir.generation + 1;
    memcpy(d->uuid, s->hdr.uuid, NVRAM_UUID_LEN);
    d->key = *rec;
    for (TPMStateBlobType type = TPM_STATE_BLOB_PERMANENT;
         type <= TPM_STATE_BLOB_TYPE_MAX; type++) {
        const NvramBlobUpdate *u = NULL;
        const NvramDirEntry *cur = nvram_dir_find(&s->dir, type, NULL);
        NvramDirEntry *e = &d->entries[d->n_entries];

        for (size_t i = 0; i < n; i++) {
            if (updates[i].type == type) {
                u = &updates[i];
            }
        }
        if (!u) {
            if (cur) {
                *e = *cur;
                d->n_entries++;
            }
            continue;
        }
        if (u->len == 0) {
            continue;   /* deleted */
        }
        e->type = type;
        if (nvram_blob_seal(s, d, keys, e, u->data, u->len, &c->sealed[d->n_entries],
                            errp) < 0) {
            return -1;
        }
        d->n_entries++;
    }
    return 0;
}

/*
 * Places the new blobs in free space (section 4 "Free space"): around the
 * extents of the directory in use, which stays intact until the new one is
 * durable. Largest first, so that small blobs fill holes instead of
 * splitting them.
 */
static void commit_place(NvramStore *s, NvramCommit *c)
{
    Extent used[2 * NVRAM_DIR_MAX_ENTRIES];
    unsigned n_used = 0;

    for (unsigned i = 0; i < s->dir.n_entries; i++) {
        const NvramDirEntry *e = &s->dir.entries[i];
        used[n_used].start = e->offset;
        used[n_used].end = e->offset + nvram_extent_len(e->length);
        n_used++;
    }
    for (;;) {
        NvramDirEntry *big = NULL;
        for (unsigned i = 0; i < c->d.n_entries; i++) {
            NvramDirEntry *e = &c->d.entries[i];
            if (c->sealed[i] && !e->offset && (!big || e->length > big->length)) {
                big = e;
            }
        }
        if (!big) {
            break;
        }
        big->offset = alloc_extent(used, n_used, nvram_extent_len(big->length));
        used[n_used].start = big->offset;
        used[n_used].end = big->offset + nvram_extent_len(big->length);
        n_used++;
    }
    c->end = NVRAM_DATA_OFFSET;
    for (unsigned i = 0; i < c->d.n_entries; i++) {
        const NvramDirEntry *e = &c->d.entries[i];
        c->end = MAX(c->end, e->offset + nvram_extent_len(e->length));
    }
}

/* Steps 2 to 4 of the commit protocol, under the exclusive access lock. */
static int commit_write(NvramStore *s, NvramCommit *c, const uint8_t *slot,
                        GError **errp)
{
    int64_t len;

    if (nvram_ensure_disk_size(s, c->end, errp) < 0) {
        return -1;
    }
    if (s->page_cache_stale) {
        /*
         * Clean pages go; dirty ones (a commit that failed before its flush)
         * stay, and are written back as they would be anyway.
         */
        bdrv_drop_page_cache(s->bs);
        s->page_cache_stale = false;
    }
    for (unsigned i = 0; i < c->d.n_entries; i++) {
        if (c->sealed[i] && bdrv_pwrite(s->bs, c->d.entries[i].offset,
                                        c->d.entries[i].length, c->sealed[i],
                                        errp) < 0) {
            return -1;
        }
    }
    if (nvram_is_ordered(s)) {
        /*
         * Section 4a: the blobs are durable before any directory names them,
         * so a readable directory whose blobs fail is damage, never an
         * interrupted commit.
         */
        bool wrote_blob = false;
        for (unsigned i = 0; i < c->d.n_entries; i++) {
            wrote_blob |= c->sealed[i] != NULL;
        }
        if (wrote_blob && bdrv_flush(s->bs, errp) < 0) {
            return -1;
        }
    } else if (!nvram_dir_find(&s->dir, TPM_STATE_BLOB_PERMANENT, NULL) &&
               nvram_dir_find(&c->d, TPM_STATE_BLOB_PERMANENT, NULL) &&
               bdrv_flush(s->bs, errp) < 0) {
        /*
         * A commit that brings the permanent blob into a directory without one
         * makes the blob durable first, so that a directory naming a permanent
         * blob that fails is always damage, never an interrupted commit, and
         * open never falls back to a state without the permanent blob.
         */
        return -1;
    }
    if (bdrv_pwrite(s->bs, nvram_slot_offset(c->d.slot_index), NVRAM_SLOT_SIZE, slot,
                    errp) < 0) {
        return -1;
    }
    /* The commit is durable, and acknowledged, when this flush returns. */
    if (bdrv_flush(s->bs, errp) < 0) {
        return -1;
    }
    /* A file that grew was allocated by writes of a cluster at a time. */
    len = bdrv_get_file_length(s->bs, NULL);
    if (len != s->file_len) {
        s->page_cache_stale = true;
        s->file_len = len;
    }
    return 0;
}

/*
 * One commit: @updates over the current blobs, into slot !s->slot with the
 * key record @rec and @keys (the current ones unless rekeying).
 */
static int commit_with_keys(NvramStore *s, const NvramBlobUpdate *updates, size_t n,
                            const NvramKeyRecord *rec, const NvramKeys *keys,
                            uint64_t at_least, GError **errp)
{
    NvramCommit c = { 0 };
    uint8_t slot[NVRAM_SLOT_SIZE];
    int ret = -1;

    if (commit_build(s, &c, updates, n, rec, keys, errp) < 0) {
        goto out;
    }
    c.d.generation = MAX(c.d.generation, at_least + 1);
    commit_place(s, &c);
    if (nvram_is_ordered(s)) {
        nvram_dir_encode_ordered(&c.d, rec->cipher != NVRAM_CIPHER_NONE
                                 ? keys->dir_mac : NULL, slot);
    } else {
        nvram_dir_encode(&c.d, rec->cipher != NVRAM_CIPHER_NONE ? keys->dir_mac : NULL,
                         slot);
    }
    if (nvram_access_lock(s, BDRV_LOCK_EXCLUSIVE, errp) < 0) {
        goto out;
    }
    ret = commit_write(s, &c, slot, errp) < 0 ? -1 : 0;
    nvram_access_unlock(s);
    if (ret == 0) {
        s->dir = c.d;
        s->slot = c.d.slot_index;
        s->other_problem = false;
        s->other_generation = 0;
        s->other_cause[0] = 0;
    }
out:
    commit_free(&c);
    if (ret < 0) {
        g_prefix_error(errp, "'%s': NVRAM commit failed: ", s->name);
    }
    return ret;
}

int nvram_commit(NvramStore *s, const NvramBlobUpdate *updates, size_t n,
                 GError **errp)
{
    if (commit_validate(s, updates, n, errp) < 0) {
        return -1;
    }
    return commit_with_keys(s, updates, n, &s->dir.key, &s->keys, 0, errp);
}

int nvram_commit_again(NvramStore *s, uint64_t at_least, GError **errp)
{
    if (commit_validate(s, NULL, 0, errp) < 0) {
        return -1;
    }
    return commit_with_keys(s, NULL, 0, &s->dir.key, &s->keys, at_least, errp);
}

int nvram_store(NvramStore *s, TPMStateBlobType type, const uint8_t *data, size_t len,
                GError **errp)
{
    NvramBlobUpdate u = { .type = type, .data = data, .len = len };

    return nvram_commit(s, &u, 1, errp);
}

int nvram_delete(NvramStore *s, TPMStateBlobType type, GError **errp)
{
    NvramBlobUpdate u = { .type = type, .data = NULL, .len = 0 };

    return nvram_commit(s, &u, 1, errp);
}

int nvram_rekey(NvramStore *s, const QCryptoKey *new_key, uint32_t kdf_iterations,
                GError **errp)
{
    NvramOpenOptions check = { .key = *new_key };
    NvramBlobUpdate updates[TPM_STATE_BLOB_TYPE_MAX];
    uint8_t *plain[TPM_STATE_BLOB_TYPE_MAX] = { NULL };
    size_t plain_len[TPM_STATE_BLOB_TYPE_MAX] = { 0 };
    NvramKeyRecord rec;
    NvramKeys keys = { 0 };
    size_t n = 0;
    int ret = -1;

    if (commit_validate(s, NULL, 0, errp) < 0 ||
        nvram_check_open_options(s->bs, &check, errp) < 0 ||
        nvram_key_record_new(s, new_key->kind, kdf_iterations, &rec, errp) < 0) {
        return -1;
    }
    if (new_key->kind != QCRYPTO_KEY_NONE) {
        if (nvram_keys_derive(s, new_key->kind, new_key->data, new_key->len, &rec, &keys,
                              errp) < 0) {
            return -1;
        }
        nvram_key_check_value(&keys, s->hdr.uuid, rec.key_check);
    }
    for (TPMStateBlobType type = TPM_STATE_BLOB_PERMANENT;
         type <= TPM_STATE_BLOB_TYPE_MAX; type++) {
        int r = nvram_load(s, type, &plain[n], &plain_len[n], errp);
        if (r < 0) {
            goto out;
        }
        if (r > 0) {
            updates[n].type = type;
            updates[n].data = plain[n];
            updates[n].len = plain_len[n];
            n++;
        }
    }
    ret = commit_with_keys(s, updates, n, &rec, &keys, 0, errp);
    if (ret == 0) {
        nvram_keys_wipe(&s->keys);
        s->keys = keys;
        qcrypto_secure_free(s->key_data, s->key_len);
        s->key_kind = new_key->kind;
        s->key_data = NULL;
        if (new_key->len) {
            s->key_data = qcrypto_secure_alloc(new_key->len);
            memcpy(s->key_data, new_key->data, new_key->len);
        }
        s->key_len = new_key->len;
    }
out:
    for (size_t i = 0; i < TPM_STATE_BLOB_TYPE_MAX; i++) {
        if (plain[i]) {
            qcrypto_memwipe(plain[i], plain_len[i]);
            g_free(plain[i]);
        }
    }
    if (ret < 0) {
        nvram_keys_wipe(&keys);
    }
    return ret;
}
