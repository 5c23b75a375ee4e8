/*
 * NVRAM store: the TPM's state blobs in a block device.
 * Format, commit protocol and crash reasoning: docs/nvram-format.md.
 * This file opens, loads, describes and checks the store and holds its
 * locks; nvram-int.h lists what the other nvram-*.c files do.
 */
#include "qemu/osdep.h"
#include "crypto/secret.h"

#include "nvram-int.h"

/* A reader holds the access lock for one read; wait that out generously. */
#define NVRAM_ACCESS_LOCK_TIMEOUT_MS 30000

int nvram_access_lock(NvramStore *s, BdrvLockMode mode, GError **errp)
{
    GError *local_err = NULL;

    if (bdrv_lock_id(s->bs, NVRAM_LOCK_ID_ACCESS, mode, NVRAM_ACCESS_LOCK_TIMEOUT_MS,
                     &local_err) < 0) {
        g_propagate_prefixed_error(errp, local_err, "NVRAM access lock: ");
        return -1;
    }
    /*
     * Whoever does not own the store may be looking at an image another
     * process commits to: cached format metadata (qcow2 L2 tables) is stale.
     */
    if (!s->owner && bdrv_invalidate_cache(s->bs, errp) < 0) {
        bdrv_unlock_id(s->bs, NVRAM_LOCK_ID_ACCESS);
        return -1;
    }
    return 0;
}

void nvram_access_unlock(NvramStore *s)
{
    bdrv_unlock_id(s->bs, NVRAM_LOCK_ID_ACCESS);
}

static int owner_lock(NvramStore *s, int timeout_ms, GError **errp)
{
    BdrvLockConflict holder;
    GError *local_err = NULL;

    if (bdrv_lock_id_conflict(s->bs, NVRAM_LOCK_ID_OWNER, BDRV_LOCK_EXCLUSIVE,
                              timeout_ms, &holder, &local_err) < 0) {
        if (local_err->code == QTPM_ERROR_LOCKED) {
            g_autofree char *who = holder.pid > 0
                ? g_strdup_printf(" by pid %ld", (long)holder.pid)
                : g_strdup("");
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_LOCKED,
                        "'%s' is in use by another qtpm (owner lock held%s)", s->name,
                        who);
            g_error_free(local_err);
        } else {
            g_propagate_error(errp, local_err);
        }
        return -1;
    }
    return 0;
}

int nvram_check_open_options(BlockDriverState *bs, const NvramOpenOptions *opts,
                             GError **errp)
{
    const char *name = bdrv_get_filename(bs);
    const QCryptoKey *k = &opts->key;

    switch (k->kind) {
    case QCRYPTO_KEY_NONE:
        return 0;
    case QCRYPTO_KEY_RAW:
        if (k->len != 32) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s': the key is %zu bytes, a raw key is 32 bytes", name,
                        k->len);
            return -1;
        }
        return 0;
    case QCRYPTO_KEY_PASSPHRASE:
        if (k->len == 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s': the passphrase is empty", name);
            return -1;
        }
        return 0;
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID, "'%s': unknown key kind",
                name);
    return -1;
}

/* Reads the header; formats or refuses an image that has none. */
static int nvram_open_header(NvramStore *s, const NvramOpenOptions *opts,
                             bool *formatted, GError **errp)
{
    uint8_t block[NVRAM_BLOCK_SIZE] = { 0 };
    GError *local_err = NULL;
    int64_t len = bdrv_getlength(s->bs, errp);
    bool blank;

    *formatted = false;
    if (len < 0) {
        return -1;
    }
    if (len > 0 &&
        bdrv_pread(s->bs, 0, MIN(len, NVRAM_BLOCK_SIZE), block, errp) < 0) {
        return -1;
    }
    if (nvram_header_parse(block, sizeof(block), &s->hdr, NULL, &local_err)) {
        return 0;
    }
    if (local_err->code != QTPM_ERROR_NOT_FOUND &&
        local_err->code != QTPM_ERROR_CORRUPT) {
        g_propagate_prefixed_error(errp, local_err, "'%s': ", s->name);
        return -1;
    }
    if (nvram_image_holds_no_state(s, &blank, errp) < 0) {
        g_clear_error(&local_err);
        return -1;
    }
    if (!blank) {
        if (local_err->code == QTPM_ERROR_CORRUPT) {
            g_propagate_prefixed_error(errp, local_err, "'%s': ", s->name);
        } else {
            g_clear_error(&local_err);
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                        "'%s' holds data but no qtpm NVRAM header; refusing to use or "
                        "overwrite it", s->name);
        }
        return -1;
    }
    g_clear_error(&local_err);
    if (!s->owner || !opts->format_blank) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "'%s' is blank: it holds no NVRAM store yet", s->name);
        return -1;
    }
    if (bdrv_format_is_probed(s->bs) && !strcmp(bdrv_get_format_name(s->bs), "raw") &&
        !opts->format_probed_raw) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "'%s' is %snot a qcow2 image, and format=raw was not given: it "
                    "is not formatted as a new TPM store", s->name,
                    len == 0 ? "empty (0 bytes), " : "");
        return -1;
    }
    if (nvram_format_blank(s, opts, errp) < 0) {
        g_prefix_error(errp, "'%s': formatting the NVRAM store failed: ", s->name);
        return -1;
    }
    *formatted = true;
    s->formatted = true;
    return 0;
}

NvramStore *nvram_open(BlockDriverState *bs, const NvramOpenOptions *opts,
                       GError **errp)
{
    NvramStore *s;
    NvramSelection sel;
    bool formatted;
    bool rewrite_dir = false;
    int ret;

    if (nvram_check_open_options(bs, opts, errp) < 0) {
        return NULL;
    }
    if (opts->owner && opts->allow_no_key) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': an owner must open the store with its key",
                    bdrv_get_filename(bs));
        return NULL;
    }
    /* s->keys holds the derived keys: locked, out of core dumps. */
    s = qcrypto_secure_alloc(sizeof(*s));
    s->bs = bs;
    s->name = bdrv_get_filename(bs);
    s->allow_no_key = opts->allow_no_key;
    s->accept_rollback = opts->accept_rollback && opts->owner;
    s->key_kind = opts->key.kind;
    if (opts->key.kind != QCRYPTO_KEY_NONE) {
        s->key_data = qcrypto_secure_alloc(opts->key.len);
        memcpy(s->key_data, opts->key.data, opts->key.len);
        s->key_len = opts->key.len;
    }

    if (opts->owner) {
        if (owner_lock(s, opts->lock_timeout_ms, errp) < 0) {
            nvram_close(s);
            return NULL;
        }
        s->owner = true;
    }
    if (nvram_access_lock(s, opts->owner ? BDRV_LOCK_EXCLUSIVE : BDRV_LOCK_SHARED,
                          errp) < 0) {
        nvram_close(s);
        return NULL;
    }
    ret = nvram_open_header(s, opts, &formatted, errp);
    if (ret == 0 && !formatted) {
        ret = nvram_select(s, &sel, errp);
        if (ret == 0) {
            nvram_adopt_selection(s, &sel);
            rewrite_dir = s->owner && sel.in_use_copy_damaged;
            nvram_selection_clear(&sel);
        }
    }
    nvram_access_unlock(s);
    /* Opening read the image: the first commit starts with a clean page cache. */
    s->page_cache_stale = true;
    s->file_len = bdrv_get_file_length(bs, NULL);
    /*
     * Section 4a. The damaged generation an accepted rollback leaves is
     * overwritten by the intact state committed again past it. A damaged
     * copy of the directory in use: the same state committed twice, so that
     * both slots are written anew. Each is an ordinary commit, after which a
     * crash gives this state either way.
     */
    if (ret == 0 && s->rolled_back_from) {
        ret = nvram_commit_again(s, s->rolled_back_from, errp);
    }
    for (int i = 0; ret == 0 && rewrite_dir && i < 2; i++) {
        ret = nvram_commit_again(s, 0, errp);
    }
    if (ret < 0) {
        nvram_close(s);
        return NULL;
    }
    return s;
}

void nvram_close(NvramStore *s)
{
    if (!s) {
        return;
    }
    if (s->owner) {
        bdrv_unlock_id(s->bs, NVRAM_LOCK_ID_OWNER);
    }
    qcrypto_secure_free(s->key_data, s->key_len);
    qcrypto_secure_free(s, sizeof(*s));
}

bool nvram_type_valid(NvramStore *s, TPMStateBlobType type, GError **errp)
{
    if (type < 1 || type > TPM_STATE_BLOB_TYPE_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': unknown NVRAM blob type %d", s->name, (int)type);
        return false;
    }
    return true;
}

bool nvram_need_key_for_data(NvramStore *s, GError **errp)
{
    if (s->dir.key.cipher != NVRAM_CIPHER_NONE && !s->keys.valid) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NO_KEY,
                    "'%s' is encrypted, but no key was given", s->name);
        return false;
    }
    return true;
}

/* A reader's consistent re-read under the shared access lock. */
static int reader_refresh(NvramStore *s, NvramSelection *sel, GError **errp)
{
    int ret;

    if (nvram_access_lock(s, BDRV_LOCK_SHARED, errp) < 0) {
        return -1;
    }
    ret = nvram_select(s, sel, errp);
    nvram_access_unlock(s);
    if (ret == 0) {
        nvram_adopt_selection(s, sel);
    }
    return ret;
}

int nvram_load(NvramStore *s, TPMStateBlobType type, uint8_t **data, size_t *len,
               GError **errp)
{
    const NvramDirEntry *e;
    uint8_t *stored = NULL;
    unsigned idx;
    bool ok;

    *data = NULL;
    *len = 0;
    if (!nvram_type_valid(s, type, errp)) {
        return -1;
    }
    if (!s->owner) {
        NvramSelection sel;
        if (reader_refresh(s, &sel, errp) < 0) {
            return -1;
        }
        if (!nvram_need_key_for_data(s, errp)) {
            nvram_selection_clear(&sel);
            return -1;
        }
        e = nvram_dir_find(&sel.dir, type, &idx);
        if (e) {
            *data = sel.plain[idx];
            *len = sel.plain_len[idx];
            sel.plain[idx] = NULL;
        }
        nvram_selection_clear(&sel);
        return e ? 1 : 0;
    }

    e = nvram_dir_find(&s->dir, type, NULL);
    if (!e) {
        return 0;
    }
    if (nvram_read_stored_blob(s, e, &stored, errp) < 0) {
        g_prefix_error(errp, "'%s': ", s->name);
        return -1;
    }
    ok = nvram_blob_crc_ok(e, stored, errp) &&
         nvram_blob_open(s, &s->dir, &s->keys, e, stored, data, errp);
    g_free(stored);
    if (!ok) {
        g_prefix_error(errp, "'%s': ", s->name);
        return -1;
    }
    *len = e->length;
    return 1;
}

int nvram_get_info(NvramStore *s, NvramInfo *info, GError **errp)
{
    memset(info, 0, sizeof(*info));
    if (!s->owner) {
        NvramSelection sel;
        if (reader_refresh(s, &sel, errp) < 0) {
            return -1;
        }
        nvram_selection_clear(&sel);
    }
    info->format_version = s->hdr.version;
    info->encrypted = s->dir.key.cipher != NVRAM_CIPHER_NONE;
    info->passphrase = s->dir.key.kdf == NVRAM_KDF_PBKDF2_SHA256;
    info->kdf_iterations = s->dir.key.kdf_iterations;
    info->tpm_version = s->hdr.tpm_version;
    memcpy(info->uuid, s->hdr.uuid, NVRAM_UUID_LEN);
    info->generation = s->dir.generation;
    info->slot = s->slot;
    info->key_checked = info->encrypted && s->keys.valid;
    info->other_problem = s->other_problem;
    info->other_generation = s->other_generation;
    g_strlcpy(info->other_cause, s->other_cause, sizeof(info->other_cause));
    info->ordered = nvram_is_ordered(s);
    info->rolled_back_from = s->rolled_back_from;
    info->formatted = s->formatted;
    for (unsigned i = 0; i < s->dir.n_entries && i < TPM_STATE_BLOB_TYPE_MAX; i++) {
        const NvramDirEntry *e = &s->dir.entries[i];
        info->blobs[i].type = e->type;
        info->blobs[i].offset = e->offset;
        info->blobs[i].length = e->length;
        info->blobs[i].crc32 = e->crc32;
        info->blobs[i].generation = e->generation;
    }
    info->n_blobs = MIN(s->dir.n_entries, TPM_STATE_BLOB_TYPE_MAX);
    return 0;
}

int nvram_check(NvramStore *s, GError **errp)
{
    uint8_t block[NVRAM_BLOCK_SIZE];
    NvramHeaderReport report = { 0 };
    NvramHeader h;
    NvramSelection sel;
    int ret;

    if (nvram_access_lock(s, BDRV_LOCK_SHARED, errp) < 0) {
        return -1;
    }
    ret = bdrv_pread(s->bs, 0, NVRAM_BLOCK_SIZE, block, errp);
    if (ret == 0) {
        nvram_header_parse(block, sizeof(block), &h, &report, NULL);
        if (report.problem) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT, "'%s': %s", s->name,
                        report.problem);
            ret = -1;
        } else if (memcmp(h.uuid, s->hdr.uuid, NVRAM_UUID_LEN) ||
                   h.tpm_version != s->hdr.tpm_version) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "'%s': the header changed since the store was opened", s->name);
            ret = -1;
        }
        g_free(report.problem);
    }
    if (ret == 0) {
        ret = nvram_select(s, &sel, errp);
        if (ret == 0) {
            if (s->owner && (sel.slot != s->slot ||
                             sel.dir.generation != s->dir.generation)) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                            "'%s': the directory in use (slot %c, generation %"
                            PRIu64 ") is damaged; slot %c (generation %" PRIu64
                            ") verifies", s->name, nvram_slot_name(s->slot),
                            s->dir.generation, nvram_slot_name(sel.slot),
                            sel.dir.generation);
                ret = -1;
            } else if (sel.in_use_copy_damaged) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                            "'%s': one copy of the directory in use (slot %c, "
                            "generation %" PRIu64 ") does not verify; the other is "
                            "intact, and the owner's next open writes it again",
                            s->name, nvram_slot_name(sel.slot), sel.dir.generation);
                ret = -1;
            } else if (sel.other_problem) {
                g_autofree char *gen = sel.other_generation
                    ? g_strdup_printf(" (generation %" PRIu64 ")", sel.other_generation)
                    : g_strdup("");
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                            "'%s': slot %c%s is not usable (%s): an interrupted "
                            "commit or damage; slot %c (generation %" PRIu64
                            ") is in use", s->name, nvram_slot_name(!sel.slot), gen,
                            sel.other_cause, nvram_slot_name(sel.slot),
                            sel.dir.generation);
                ret = -1;
            }
            if (!s->owner) {
                nvram_adopt_selection(s, &sel);
            }
            nvram_selection_clear(&sel);
        }
    }
    nvram_access_unlock(s);
    return ret < 0 ? -1 : 0;
}

void nvram_release_owner(NvramStore *s)
{
    if (s->owner) {
        bdrv_unlock_id(s->bs, NVRAM_LOCK_ID_OWNER);
        s->owner = false;
    }
}

int nvram_acquire_owner(NvramStore *s, int timeout_ms, GError **errp)
{
    NvramSelection sel;

    if (s->owner) {
        return 0;
    }
    if (owner_lock(s, timeout_ms, errp) < 0) {
        return -1;
    }
    /* Someone else may have committed while we did not own the store. */
    if (reader_refresh(s, &sel, errp) < 0) {
        bdrv_unlock_id(s->bs, NVRAM_LOCK_ID_OWNER);
        return -1;
    }
    nvram_selection_clear(&sel);
    s->owner = true;
    return 0;
}

const uint8_t *nvram_get_uuid(NvramStore *s)
{
    return s->hdr.uuid;
}
