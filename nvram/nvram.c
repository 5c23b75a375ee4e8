/*
 * NVRAM store: the TPM's state blobs in a block device.
 * Format, commit protocol and crash reasoning: docs/nvram-format.md.
 * Structures are encoded and parsed in nvram-format.c; this file does
 * the I/O, the locks, the key handling and the slot choice.
 */
#include "qemu/osdep.h"
#include "qemu/crc32.h"

#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/pbkdf.h"
#include "crypto/random.h"
#include "crypto/secret.h"
#include "nvram/nvram.h"
#include "nvram/nvram-format.h"

#define NVRAM_GROW_STEP (64 * 1024)
/* A reader holds the access lock for one read; wait that out generously. */
#define NVRAM_ACCESS_LOCK_TIMEOUT_MS 30000
#define NVRAM_BLANK_SCAN_CHUNK (1024 * 1024)

static const char label_blob[] = "qtpm nvram v1 blob key";
static const char label_check[] = "qtpm nvram v1 key check";
static const char label_dir_mac[] = "qtpm nvram v1 directory mac";
static const char key_check_text[] = "qtpm nvram key check";

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
    int lock_timeout_ms;
    NvramHeader hdr;
    NvramDirectory dir;     /* the directory in use */
    int slot;
    bool other_problem;
    uint64_t other_generation;
    char *other_reason;
    QCryptoKeyKind key_kind;
    uint8_t *key_data;
    size_t key_len;
    NvramKeys keys;         /* derived for dir.key when the image is encrypted */
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
    char *other_reason;
} NvramSelection;

static const uint64_t slot_offsets[2] = { NVRAM_SLOT_A_OFFSET, NVRAM_SLOT_B_OFFSET };

static char slot_name(int slot)
{
    return slot ? 'B' : 'A';
}

static void keys_wipe(NvramKeys *k)
{
    qcrypto_memwipe(k, sizeof(*k));
}

static void selection_clear(NvramSelection *sel)
{
    for (int i = 0; i < NVRAM_DIR_MAX_ENTRIES; i++) {
        if (sel->plain[i]) {
            qcrypto_memwipe(sel->plain[i], sel->plain_len[i]);
            g_free(sel->plain[i]);
        }
    }
    g_free(sel->other_reason);
    keys_wipe(&sel->keys);
    memset(sel, 0, sizeof(*sel));
}

/* ---- keys (docs/nvram-format.md section 5) ---- */

static void subkey(const NvramKeys *k, const uint8_t *uuid, const char *label,
                   uint8_t *out, size_t len)
{
    qcrypto_hkdf_sha256(k->ikm, sizeof(k->ikm), uuid, NVRAM_UUID_LEN,
                        (const uint8_t *)label, strlen(label), out, len);
}

static void key_check_value(const NvramKeys *k, const uint8_t *uuid,
                            uint8_t out[NVRAM_KEY_CHECK_LEN])
{
    uint8_t msg[sizeof(key_check_text) - 1 + NVRAM_UUID_LEN];

    memcpy(msg, key_check_text, sizeof(key_check_text) - 1);
    memcpy(msg + sizeof(key_check_text) - 1, uuid, NVRAM_UUID_LEN);
    qcrypto_hmac_sha256(k->check, sizeof(k->check), msg, sizeof(msg), out);
}

/*
 * Derives the subkeys of @rec from the user's key. A mismatch between the
 * kind of key given and the kind the image wants is a wrong key.
 */
static int keys_derive(NvramStore *s, const QCryptoKeyKind kind, const uint8_t *key,
                       size_t key_len, const NvramKeyRecord *rec, NvramKeys *out,
                       GError **errp)
{
    memset(out, 0, sizeof(*out));
    if (rec->kdf == NVRAM_KDF_RAW) {
        if (kind != QCRYPTO_KEY_RAW) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                        "'%s': wrong key: the image is encrypted with a raw key, "
                        "but a passphrase was given", s->name);
            return -1;
        }
        memcpy(out->ikm, key, 32);
    } else {
        if (kind != QCRYPTO_KEY_PASSPHRASE) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                        "'%s': wrong key: the image is protected by a passphrase, "
                        "but a raw key was given", s->name);
            return -1;
        }
        qcrypto_pbkdf2_sha256(key, key_len, rec->kdf_salt, NVRAM_SALT_LEN,
                              rec->kdf_iterations, out->ikm, sizeof(out->ikm));
    }
    out->kdf = rec->kdf;
    out->kdf_iterations = rec->kdf_iterations;
    memcpy(out->kdf_salt, rec->kdf_salt, NVRAM_SALT_LEN);
    subkey(out, s->hdr.uuid, label_blob, out->blob, sizeof(out->blob));
    subkey(out, s->hdr.uuid, label_check, out->check, sizeof(out->check));
    subkey(out, s->hdr.uuid, label_dir_mac, out->dir_mac, sizeof(out->dir_mac));
    out->valid = true;
    return 0;
}

/* Derives for @rec, reusing s->keys when the record's KDF is unchanged (PBKDF2 is slow). */
static int keys_for_record(NvramStore *s, const NvramKeyRecord *rec, NvramKeys *out,
                           GError **errp)
{
    if (s->keys.valid && s->keys.kdf == rec->kdf &&
        s->keys.kdf_iterations == rec->kdf_iterations &&
        !memcmp(s->keys.kdf_salt, rec->kdf_salt, NVRAM_SALT_LEN)) {
        *out = s->keys;
        return 0;
    }
    return keys_derive(s, s->key_kind, s->key_data, s->key_len, rec, out, errp);
}

/* ---- reading ---- */

static int read_stored_blob(NvramStore *s, const NvramDirEntry *e, uint8_t **buf,
                            GError **errp)
{
    int64_t disk_len = bdrv_getlength(s->bs, errp);
    uint8_t *p;

    if (disk_len < 0) {
        return -1;
    }
    if (e->offset + e->length > (uint64_t)disk_len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "blob %s at 0x%" PRIx64 " (%" PRIu32 " bytes) extends past the "
                    "end of the disk", tpm_state_blob_label(e->type), e->offset,
                    e->length);
        return -1;
    }
    p = g_malloc(e->length);
    if (bdrv_pread(s->bs, e->offset, e->length, p, errp) < 0) {
        g_free(p);
        return -1;
    }
    *buf = p;
    return 0;
}

static bool blob_crc_ok(const NvramDirEntry *e, const uint8_t *stored, GError **errp)
{
    uint32_t crc = qemu_crc32(stored, e->length);

    if (crc != e->crc32) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "blob %s (generation %" PRIu64 ") CRC mismatch (directory "
                    "0x%08" PRIx32 ", data 0x%08" PRIx32 ")",
                    tpm_state_blob_label(e->type), e->generation, e->crc32, crc);
        return false;
    }
    return true;
}

/* Decrypts and authenticates one blob; @plain gets a g_malloc'ed copy. */
static bool blob_open(NvramStore *s, const NvramDirectory *d, const NvramKeys *k,
                      const NvramDirEntry *e, const uint8_t *stored, uint8_t **plain,
                      GError **errp)
{
    uint8_t ad[NVRAM_BLOB_AD_LEN];
    uint8_t *out = g_malloc(e->length);

    if (d->key.cipher == NVRAM_CIPHER_NONE) {
        memcpy(out, stored, e->length);
        *plain = out;
        return true;
    }
    nvram_blob_ad(s->hdr.uuid, e->type, e->generation, ad);
    if (!qcrypto_aead_decrypt(k->blob, e->nonce, ad, sizeof(ad), stored, e->length,
                              out, e->tag)) {
        g_free(out);
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "blob %s (generation %" PRIu64 ") fails authentication",
                    tpm_state_blob_label(e->type), e->generation);
        return false;
    }
    *plain = out;
    return true;
}

static const NvramDirEntry *dir_find(const NvramDirectory *d, TPMStateBlobType type,
                                     unsigned *index)
{
    for (unsigned i = 0; i < d->n_entries; i++) {
        if (d->entries[i].type == (uint32_t)type) {
            if (index) {
                *index = i;
            }
            return &d->entries[i];
        }
    }
    return NULL;
}

/* Reads and CRC-checks every blob of @d; @stored[i] are g_malloc'ed. */
static bool read_dir_blobs(NvramStore *s, const NvramDirectory *d, uint8_t **stored,
                           GError **errp)
{
    for (unsigned i = 0; i < d->n_entries; i++) {
        if (read_stored_blob(s, &d->entries[i], &stored[i], errp) < 0) {
            return false;
        }
        if (!blob_crc_ok(&d->entries[i], stored[i], errp)) {
            return false;
        }
    }
    return true;
}

static void free_blobs(uint8_t **bufs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        g_free(bufs[i]);
        bufs[i] = NULL;
    }
}

/*
 * The key checks made on the newest slot whose CRCs verify. Their failures
 * are about the key, not about the image, so they end the open.
 */
static int check_key_against(NvramStore *s, const NvramDirectory *d, NvramKeys *keys,
                             GError **errp)
{
    bool encrypted = d->key.cipher != NVRAM_CIPHER_NONE;
    uint8_t kcv[NVRAM_KEY_CHECK_LEN];
    bool ok;

    if (!encrypted) {
        if (s->key_kind != QCRYPTO_KEY_NONE) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' is not encrypted, but a key was given", s->name);
            return -1;
        }
        return 0;
    }
    if (s->key_kind == QCRYPTO_KEY_NONE) {
        if (s->allow_no_key) {
            return 0;
        }
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NO_KEY,
                    "'%s' is encrypted, but no key was given", s->name);
        return -1;
    }
    if (keys_for_record(s, &d->key, keys, errp) < 0) {
        return -1;
    }
    key_check_value(keys, s->hdr.uuid, kcv);
    ok = qcrypto_mem_equal(kcv, d->key.key_check, sizeof(kcv));
    qcrypto_memwipe(kcv, sizeof(kcv));
    if (!ok) {
        keys_wipe(keys);
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "'%s': wrong key (the key check value does not match)", s->name);
        return -1;
    }
    return 0;
}

/* An older slot tried after the newest was rejected: same checks, but not final. */
static bool older_key_ok(NvramStore *s, const NvramDirectory *d, NvramKeys *keys,
                         GError **errp)
{
    GError *local_err = NULL;

    if (check_key_against(s, d, keys, &local_err) < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT, "%s", local_err->message);
        g_error_free(local_err);
        return false;
    }
    return true;
}

/* MAC and tags of a candidate whose key checked out. */
static bool verify_sealed(NvramStore *s, const uint8_t *raw, const NvramDirectory *d,
                          const NvramKeys *keys, uint8_t **stored, NvramSelection *sel,
                          GError **errp)
{
    if (d->key.cipher == NVRAM_CIPHER_NONE) {
        for (unsigned i = 0; i < d->n_entries; i++) {
            sel->plain[i] = g_memdup2(stored[i], d->entries[i].length);
            sel->plain_len[i] = d->entries[i].length;
        }
        return true;
    }
    if (!keys->valid) {
        return true;    /* allow_no_key: CRCs only */
    }
    if (!nvram_dir_mac_ok(raw, NVRAM_SLOT_SIZE, keys->dir_mac)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory fails authentication (MAC mismatch)");
        return false;
    }
    for (unsigned i = 0; i < d->n_entries; i++) {
        if (!blob_open(s, d, keys, &d->entries[i], stored[i], &sel->plain[i], errp)) {
            return false;
        }
        sel->plain_len[i] = d->entries[i].length;
    }
    return true;
}

/* What reading one directory slot found. */
typedef struct SlotScan {
    uint8_t raw[NVRAM_SLOT_SIZE];
    NvramDirectory dir;
    bool zero;              /* never written */
    bool parsed;            /* CRC and structure verify: a candidate */
    GError *reason;         /* why it is not usable */
} SlotScan;

static int scan_slots(NvramStore *s, SlotScan *slots, GError **errp)
{
    for (int i = 0; i < 2; i++) {
        SlotScan *sc = &slots[i];
        GError *local_err = NULL;

        if (bdrv_pread(s->bs, slot_offsets[i], NVRAM_SLOT_SIZE, sc->raw,
                       &local_err) < 0) {
            g_propagate_prefixed_error(errp, local_err,
                                       "'%s': cannot read directory slot %c: ",
                                       s->name, slot_name(i));
            return -1;
        }
        sc->zero = nvram_buffer_is_zero(sc->raw, NVRAM_SLOT_SIZE);
        if (sc->zero) {
            g_set_error(&sc->reason, QTPM_ERROR, QTPM_ERROR_CORRUPT, "empty slot");
        } else {
            sc->parsed = nvram_dir_parse(sc->raw, NVRAM_SLOT_SIZE, i, s->hdr.uuid,
                                         &sc->dir, &sc->reason);
        }
    }
    return 0;
}

static void wipe_plain(NvramSelection *sel)
{
    for (int j = 0; j < NVRAM_DIR_MAX_ENTRIES; j++) {
        if (sel->plain[j]) {
            qcrypto_memwipe(sel->plain[j], sel->plain_len[j]);
            g_clear_pointer(&sel->plain[j], g_free);
        }
    }
}

/*
 * Tries candidate @sc. Returns 1 when it is valid (sel filled), 0 when it is
 * not (sc->reason set), -1 when the key is refused (@errp set: final).
 * @key_decided: whether an earlier candidate already had the key checked.
 */
static int try_candidate(NvramStore *s, SlotScan *sc, bool *key_decided,
                         NvramSelection *sel, GError **errp)
{
    uint8_t *stored[NVRAM_DIR_MAX_ENTRIES] = { NULL };
    NvramKeys keys = { 0 };
    bool ok = read_dir_blobs(s, &sc->dir, stored, &sc->reason);

    if (ok && !*key_decided) {
        *key_decided = true;
        if (check_key_against(s, &sc->dir, &keys, errp) < 0) {
            free_blobs(stored, sc->dir.n_entries);
            return -1;
        }
    } else if (ok) {
        ok = older_key_ok(s, &sc->dir, &keys, &sc->reason);
    }
    ok = ok && verify_sealed(s, sc->raw, &sc->dir, &keys, stored, sel, &sc->reason);
    free_blobs(stored, sc->dir.n_entries);
    if (!ok) {
        wipe_plain(sel);
        keys_wipe(&keys);
        return 0;
    }
    sel->keys = keys;
    return 1;
}

/* For nvram_check: the slot not in use should be empty or an older directory. */
static void describe_other_slot(const SlotScan *slots, int chosen, NvramSelection *sel)
{
    int o = !chosen;
    const SlotScan *other = &slots[o];
    g_autofree char *gen = NULL;

    /* An older, valid directory whose blobs were reused is normal. */
    if (other->zero ||
        (other->parsed && other->dir.generation < slots[chosen].dir.generation)) {
        return;
    }
    sel->other_problem = true;
    sel->other_generation = other->parsed ? other->dir.generation : 0;
    gen = other->parsed
        ? g_strdup_printf(" (generation %" PRIu64 ")", other->dir.generation)
        : g_strdup("");
    sel->other_reason = g_strdup_printf(
        "slot %c%s is not usable (%s): an interrupted commit or damage; "
        "slot %c (generation %" PRIu64 ") is in use", slot_name(o), gen,
        other->reason ? other->reason->message : "?", slot_name(chosen),
        slots[chosen].dir.generation);
}

/*
 * The newest slot was rejected for damage and the key did not open the
 * older one. When the key is the newest slot's, the key is right and the
 * state is damaged: say so instead of "wrong key".
 */
static void explain_older_key_refused(NvramStore *s, const SlotScan *newer, int newer_idx,
                                      const SlotScan *older, int older_idx, GError **errp)
{
    NvramKeys keys = { 0 };
    bool newer_key = check_key_against(s, &newer->dir, &keys, NULL) == 0 &&
                     newer->dir.key.cipher != NVRAM_CIPHER_NONE;

    keys_wipe(&keys);
    if (!newer_key || !errp || !*errp) {
        return;
    }
    g_clear_error(errp);
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                "'%s': no usable NVRAM directory (slot %c, generation %" PRIu64
                ", under this key: %s; slot %c, generation %" PRIu64
                ", is under an earlier key)", s->name, slot_name(newer_idx),
                newer->dir.generation,
                newer->reason ? newer->reason->message : "damaged",
                slot_name(older_idx), older->dir.generation);
}

/*
 * A consistent read of the directory slots (docs/nvram-format.md section 4,
 * "Open: choosing a slot"). The caller holds the access lock.
 */
static int nvram_select(NvramStore *s, NvramSelection *sel, GError **errp)
{
    SlotScan slots[2] = { 0 };
    int order[2] = { 0, 1 };
    bool key_decided = false;
    int chosen = -1;
    int ret = -1;

    memset(sel, 0, sizeof(*sel));
    if (scan_slots(s, slots, errp) < 0) {
        goto out;
    }
    if (slots[0].parsed && slots[1].parsed &&
        slots[1].dir.generation > slots[0].dir.generation) {
        order[0] = 1;
        order[1] = 0;
    }
    for (int k = 0; k < 2 && chosen < 0; k++) {
        SlotScan *sc = &slots[order[k]];
        const SlotScan *newer = &slots[order[0]];
        int r;

        if (!sc->parsed) {
            continue;
        }
        if (k == 1 && newer->parsed &&
            dir_find(&newer->dir, TPM_STATE_BLOB_PERMANENT, NULL) &&
            !dir_find(&sc->dir, TPM_STATE_BLOB_PERMANENT, NULL)) {
            /* See commit_write(): that newer permanent blob was durable. */
            g_set_error(&sc->reason, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "holds no permanent blob, and the newer slot's permanent "
                        "blob is damaged: refusing to start from an empty state");
            continue;
        }
        r = try_candidate(s, sc, &key_decided, sel, errp);
        if (r < 0) {
            if (k == 1 && newer->parsed) {
                explain_older_key_refused(s, newer, order[0], sc, order[1], errp);
            }
            selection_clear(sel);
            goto out;
        }
        if (r > 0) {
            chosen = order[k];
        }
    }
    if (chosen < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': no usable NVRAM directory (slot A: %s; slot B: %s)", s->name,
                    slots[0].reason ? slots[0].reason->message : "not tried",
                    slots[1].reason ? slots[1].reason->message : "not tried");
        goto out;
    }
    sel->dir = slots[chosen].dir;
    sel->slot = chosen;
    describe_other_slot(slots, chosen, sel);
    ret = 0;
out:
    g_clear_error(&slots[0].reason);
    g_clear_error(&slots[1].reason);
    return ret;
}

static void store_adopt_selection(NvramStore *s, NvramSelection *sel)
{
    s->dir = sel->dir;
    s->slot = sel->slot;
    if (sel->keys.valid) {
        keys_wipe(&s->keys);
        s->keys = sel->keys;
    }
    s->other_problem = sel->other_problem;
    s->other_generation = sel->other_generation;
    g_free(s->other_reason);
    s->other_reason = g_strdup(sel->other_reason);
}

/* ---- locks ---- */

static int access_lock(NvramStore *s, BdrvLockMode mode, GError **errp)
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

static void access_unlock(NvramStore *s)
{
    bdrv_unlock_id(s->bs, NVRAM_LOCK_ID_ACCESS);
}

static int owner_lock(NvramStore *s, int timeout_ms, GError **errp)
{
    GError *local_err = NULL;

    if (bdrv_lock_id(s->bs, NVRAM_LOCK_ID_OWNER, BDRV_LOCK_EXCLUSIVE, timeout_ms,
                     &local_err) < 0) {
        if (local_err->code == QTPM_ERROR_LOCKED) {
            /* The block layer names the holder when the kernel knows it. */
            const char *pid = strstr(local_err->message, "(pid ");
            g_autofree char *who = pid ? g_strndup(pid + 1, strcspn(pid + 1, ")"))
                                       : NULL;
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_LOCKED,
                        "'%s' is in use by another qtpm (owner lock held%s%s)", s->name,
                        who ? " by " : "", who ? who : "");
            g_error_free(local_err);
        } else {
            g_propagate_error(errp, local_err);
        }
        return -1;
    }
    return 0;
}

/* ---- formatting a blank image (section 6) ---- */

/*
 * Is @p (@len bytes) empty, or what an interrupted write of a structure
 * starting with @magic and @used bytes long could leave? That is: (a prefix
 * of) the magic, then zeros, or the whole magic, anything up to @used, zeros.
 */
static bool is_torn_structure(const uint8_t *p, size_t len, const char *magic,
                              size_t used)
{
    size_t n = 0;

    while (n < 8 && p[n] == (uint8_t)magic[n]) {
        n++;
    }
    if (n < 8) {
        return nvram_buffer_is_zero(p + n, len - n);
    }
    return nvram_buffer_is_zero(p + used, len - used);
}

/*
 * Blank, or left so by an interrupted format (section 6): at most a header
 * block and slot A as a torn or complete format writes them, and nothing
 * else. Such an image holds no TPM state, so formatting it loses nothing.
 */
static bool first_chunk_holds_no_state(uint8_t *buf, int64_t n)
{
    NvramDirectory d;

    if (n < NVRAM_DATA_OFFSET) {
        return false;   /* the layout needs more than this, so it is not ours */
    }
    for (int i = 0; i < NVRAM_HEADER_COPIES; i++) {
        uint8_t *c = buf + i * NVRAM_HEADER_COPY_STRIDE;
        if (!is_torn_structure(c, NVRAM_HEADER_COPY_STRIDE, "QTPMNVRM",
                               NVRAM_HEADER_SIZE)) {
            return false;
        }
    }
    if (!is_torn_structure(buf + NVRAM_SLOT_A_OFFSET, NVRAM_SLOT_SIZE, "QTPMDIR1",
                           NVRAM_DIR_SIZE)) {
        return false;
    }
    if (nvram_dir_parse(buf + NVRAM_SLOT_A_OFFSET, NVRAM_SLOT_SIZE, 0,
                        buf + NVRAM_SLOT_A_OFFSET + 24, &d, NULL) && d.n_entries) {
        return false;
    }
    memset(buf, 0, NVRAM_SLOT_A_OFFSET + NVRAM_SLOT_SIZE);
    return true;
}

static int image_holds_no_state(NvramStore *s, bool *none, GError **errp)
{
    int64_t len = bdrv_getlength(s->bs, errp);
    g_autofree uint8_t *buf = NULL;

    if (len < 0) {
        return -1;
    }
    buf = g_malloc(NVRAM_BLANK_SCAN_CHUNK);
    for (int64_t off = 0; off < len; off += NVRAM_BLANK_SCAN_CHUNK) {
        int64_t n = MIN(NVRAM_BLANK_SCAN_CHUNK, len - off);
        if (bdrv_pread(s->bs, off, n, buf, errp) < 0) {
            return -1;
        }
        if (off == 0 && !nvram_buffer_is_zero(buf, MIN(n, NVRAM_DATA_OFFSET)) &&
            !first_chunk_holds_no_state(buf, n)) {
            *none = false;
            return 0;
        }
        if (!nvram_buffer_is_zero(buf, n)) {
            *none = false;
            return 0;
        }
    }
    *none = true;
    return 0;
}

static int ensure_disk_size(NvramStore *s, uint64_t end, GError **errp)
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

static int key_record_new(NvramStore *s, QCryptoKeyKind kind, uint32_t iterations,
                          NvramKeyRecord *rec, GError **errp)
{
    memset(rec, 0, sizeof(*rec));
    if (kind == QCRYPTO_KEY_NONE) {
        return 0;
    }
    rec->cipher = NVRAM_CIPHER_AES256_GCM;
    if (kind == QCRYPTO_KEY_RAW) {
        rec->kdf = NVRAM_KDF_RAW;
        return 0;
    }
    rec->kdf = NVRAM_KDF_PBKDF2_SHA256;
    rec->kdf_iterations = iterations ? iterations : QCRYPTO_PBKDF2_DEFAULT_ITERATIONS;
    if (rec->kdf_iterations < NVRAM_PBKDF2_MIN_ITERATIONS ||
        rec->kdf_iterations > NVRAM_PBKDF2_MAX_ITERATIONS) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': %" PRIu32 " PBKDF2 iterations is outside %d..%d", s->name,
                    rec->kdf_iterations, NVRAM_PBKDF2_MIN_ITERATIONS,
                    NVRAM_PBKDF2_MAX_ITERATIONS);
        return -1;
    }
    return qcrypto_random_bytes(rec->kdf_salt, NVRAM_SALT_LEN, errp);
}

static int nvram_format(NvramStore *s, const NvramOpenOptions *opts, GError **errp)
{
    uint8_t block[NVRAM_BLOCK_SIZE];
    NvramDirectory d = { 0 };
    NvramKeys keys = { 0 };
    int tpm_version = opts->tpm_version ? opts->tpm_version : 2;

    if (tpm_version != 1 && tpm_version != 2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': TPM version %d is not 1 (1.2) or 2 (2.0)", s->name,
                    tpm_version);
        return -1;
    }
    memset(&s->hdr, 0, sizeof(s->hdr));
    s->hdr.version = NVRAM_FORMAT_VERSION;
    s->hdr.tpm_version = tpm_version;
    if (qcrypto_random_bytes(s->hdr.uuid, NVRAM_UUID_LEN, errp) < 0) {
        return -1;
    }
    s->hdr.uuid[6] = (s->hdr.uuid[6] & 0x0f) | 0x40;
    s->hdr.uuid[8] = (s->hdr.uuid[8] & 0x3f) | 0x80;

    d.slot_index = 0;
    d.generation = 1;
    memcpy(d.uuid, s->hdr.uuid, NVRAM_UUID_LEN);
    if (key_record_new(s, s->key_kind, opts->kdf_iterations, &d.key, errp) < 0) {
        return -1;
    }
    if (s->key_kind != QCRYPTO_KEY_NONE) {
        if (keys_derive(s, s->key_kind, s->key_data, s->key_len, &d.key, &keys,
                        errp) < 0) {
            return -1;
        }
        key_check_value(&keys, s->hdr.uuid, d.key.key_check);
    }

    /* Slot A is durable before the header exists: see section 6. */
    nvram_dir_encode(&d, keys.valid ? keys.dir_mac : NULL, block);
    if (ensure_disk_size(s, NVRAM_DATA_OFFSET, errp) < 0 ||
        bdrv_pwrite(s->bs, NVRAM_SLOT_A_OFFSET, NVRAM_SLOT_SIZE, block, errp) < 0 ||
        bdrv_flush(s->bs, errp) < 0) {
        keys_wipe(&keys);
        return -1;
    }
    nvram_header_encode(&s->hdr, block);
    if (bdrv_pwrite(s->bs, 0, NVRAM_BLOCK_SIZE, block, errp) < 0 ||
        bdrv_flush(s->bs, errp) < 0) {
        keys_wipe(&keys);
        return -1;
    }
    s->dir = d;
    s->slot = 0;
    keys_wipe(&s->keys);
    s->keys = keys;
    return 0;
}

/* ---- open / close ---- */

static int check_open_options(BlockDriverState *bs, const NvramOpenOptions *opts,
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
    if (local_err->code != QTPM_ERROR_NOT_FOUND && local_err->code != QTPM_ERROR_CORRUPT) {
        g_propagate_prefixed_error(errp, local_err, "'%s': ", s->name);
        return -1;
    }
    if (image_holds_no_state(s, &blank, errp) < 0) {
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
    if (nvram_format(s, opts, errp) < 0) {
        g_prefix_error(errp, "'%s': formatting the NVRAM store failed: ", s->name);
        return -1;
    }
    *formatted = true;
    return 0;
}

NvramStore *nvram_open(BlockDriverState *bs, const NvramOpenOptions *opts,
                       GError **errp)
{
    NvramStore *s;
    NvramSelection sel;
    bool formatted;
    int ret;

    if (check_open_options(bs, opts, errp) < 0) {
        return NULL;
    }
    if (opts->owner && opts->allow_no_key) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': an owner must open the store with its key",
                    bdrv_get_filename(bs));
        return NULL;
    }
    s = g_new0(NvramStore, 1);
    s->bs = bs;
    s->name = bdrv_get_filename(bs);
    s->allow_no_key = opts->allow_no_key;
    s->lock_timeout_ms = opts->lock_timeout_ms;
    s->key_kind = opts->key.kind;
    if (opts->key.kind != QCRYPTO_KEY_NONE) {
        s->key_data = g_memdup2(opts->key.data, opts->key.len);
        s->key_len = opts->key.len;
    }

    if (opts->owner) {
        if (owner_lock(s, opts->lock_timeout_ms, errp) < 0) {
            nvram_close(s);
            return NULL;
        }
        s->owner = true;
    }
    if (access_lock(s, opts->owner ? BDRV_LOCK_EXCLUSIVE : BDRV_LOCK_SHARED, errp) < 0) {
        nvram_close(s);
        return NULL;
    }
    ret = nvram_open_header(s, opts, &formatted, errp);
    if (ret == 0 && !formatted) {
        ret = nvram_select(s, &sel, errp);
        if (ret == 0) {
            store_adopt_selection(s, &sel);
            selection_clear(&sel);
        }
    }
    access_unlock(s);
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
    if (s->key_data) {
        qcrypto_memwipe(s->key_data, s->key_len);
        g_free(s->key_data);
    }
    keys_wipe(&s->keys);
    g_free(s->other_reason);
    g_free(s);
}

/* ---- load ---- */

static bool type_valid(NvramStore *s, TPMStateBlobType type, GError **errp)
{
    if (type < 1 || type > TPM_STATE_BLOB_TYPE_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': unknown NVRAM blob type %d", s->name, (int)type);
        return false;
    }
    return true;
}

static bool need_key_for_data(NvramStore *s, GError **errp)
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

    if (access_lock(s, BDRV_LOCK_SHARED, errp) < 0) {
        return -1;
    }
    ret = nvram_select(s, sel, errp);
    access_unlock(s);
    if (ret == 0) {
        store_adopt_selection(s, sel);
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
    if (!type_valid(s, type, errp)) {
        return -1;
    }
    if (!s->owner) {
        NvramSelection sel;
        if (reader_refresh(s, &sel, errp) < 0) {
            return -1;
        }
        if (!need_key_for_data(s, errp)) {
            selection_clear(&sel);
            return -1;
        }
        e = dir_find(&sel.dir, type, &idx);
        if (e) {
            *data = sel.plain[idx];
            *len = sel.plain_len[idx];
            sel.plain[idx] = NULL;
        }
        selection_clear(&sel);
        return e ? 1 : 0;
    }

    e = dir_find(&s->dir, type, NULL);
    if (!e) {
        return 0;
    }
    if (read_stored_blob(s, e, &stored, errp) < 0) {
        g_prefix_error(errp, "'%s': ", s->name);
        return -1;
    }
    ok = blob_crc_ok(e, stored, errp) &&
         blob_open(s, &s->dir, &s->keys, e, stored, data, errp);
    g_free(stored);
    if (!ok) {
        g_prefix_error(errp, "'%s': ", s->name);
        return -1;
    }
    *len = e->length;
    return 1;
}

/* ---- commit (section 4) ---- */

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
    if (!need_key_for_data(s, errp)) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!type_valid(s, updates[i].type, errp)) {
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

/* Encrypts (or copies) one blob for generation @gen into a new buffer. */
static int seal_blob(NvramStore *s, const NvramDirectory *d, const NvramKeys *k,
                     NvramDirEntry *e, const uint8_t *data, size_t len,
                     uint8_t **out, GError **errp)
{
    uint8_t *buf = g_malloc(len);

    e->length = len;
    e->generation = d->generation;
    memset(e->nonce, 0, sizeof(e->nonce));
    memset(e->tag, 0, sizeof(e->tag));
    if (d->key.cipher == NVRAM_CIPHER_NONE) {
        memcpy(buf, data, len);
    } else {
        uint8_t ad[NVRAM_BLOB_AD_LEN];
        if (qcrypto_random_bytes(e->nonce, NVRAM_NONCE_LEN, errp) < 0) {
            g_free(buf);
            return -1;
        }
        nvram_blob_ad(s->hdr.uuid, e->type, e->generation, ad);
        qcrypto_aead_encrypt(k->blob, e->nonce, ad, sizeof(ad), data, len, buf, e->tag);
    }
    e->crc32 = qemu_crc32(buf, len);
    *out = buf;
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
            /* Plain stores hold TPM state here in the clear. */
            qcrypto_memwipe(c->sealed[i], c->d.entries[i].length);
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
    for (TPMStateBlobType type = TPM_STATE_BLOB_PERMANENT; type <= TPM_STATE_BLOB_TYPE_MAX;
         type++) {
        const NvramBlobUpdate *u = NULL;
        const NvramDirEntry *cur = dir_find(&s->dir, type, NULL);
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
        if (seal_blob(s, d, keys, e, u->data, u->len, &c->sealed[d->n_entries],
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
    if (ensure_disk_size(s, c->end, errp) < 0) {
        return -1;
    }
    for (unsigned i = 0; i < c->d.n_entries; i++) {
        if (c->sealed[i] && bdrv_pwrite(s->bs, c->d.entries[i].offset,
                                        c->d.entries[i].length, c->sealed[i],
                                        errp) < 0) {
            return -1;
        }
    }
    /*
     * A commit that brings the permanent blob into a directory without one
     * makes the blob durable first, so that a directory naming a permanent
     * blob that fails is always damage, never an interrupted commit, and
     * open never falls back to a state without the permanent blob.
     */
    if (!dir_find(&s->dir, TPM_STATE_BLOB_PERMANENT, NULL) &&
        dir_find(&c->d, TPM_STATE_BLOB_PERMANENT, NULL) && bdrv_flush(s->bs, errp) < 0) {
        return -1;
    }
    if (bdrv_pwrite(s->bs, slot_offsets[c->d.slot_index], NVRAM_SLOT_SIZE, slot,
                    errp) < 0) {
        return -1;
    }
    /* The one flush: the commit is durable, and acknowledged, when it returns. */
    return bdrv_flush(s->bs, errp);
}

/*
 * One commit: @updates over the current blobs, into slot !s->slot with the
 * key record @rec and @keys (the current ones unless rekeying).
 */
static int commit_with_keys(NvramStore *s, const NvramBlobUpdate *updates, size_t n,
                            const NvramKeyRecord *rec, const NvramKeys *keys,
                            GError **errp)
{
    NvramCommit c = { 0 };
    uint8_t slot[NVRAM_SLOT_SIZE];
    int ret = -1;

    if (commit_build(s, &c, updates, n, rec, keys, errp) < 0) {
        goto out;
    }
    commit_place(s, &c);
    nvram_dir_encode(&c.d, rec->cipher != NVRAM_CIPHER_NONE ? keys->dir_mac : NULL,
                     slot);
    if (access_lock(s, BDRV_LOCK_EXCLUSIVE, errp) < 0) {
        goto out;
    }
    ret = commit_write(s, &c, slot, errp) < 0 ? -1 : 0;
    access_unlock(s);
    if (ret == 0) {
        s->dir = c.d;
        s->slot = c.d.slot_index;
        s->other_problem = false;
        s->other_generation = 0;
        g_clear_pointer(&s->other_reason, g_free);
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
    return commit_with_keys(s, updates, n, &s->dir.key, &s->keys, errp);
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
        check_open_options(s->bs, &check, errp) < 0 ||
        key_record_new(s, new_key->kind, kdf_iterations, &rec, errp) < 0) {
        return -1;
    }
    if (new_key->kind != QCRYPTO_KEY_NONE) {
        if (keys_derive(s, new_key->kind, new_key->data, new_key->len, &rec, &keys,
                        errp) < 0) {
            return -1;
        }
        key_check_value(&keys, s->hdr.uuid, rec.key_check);
    }
    for (TPMStateBlobType type = TPM_STATE_BLOB_PERMANENT; type <= TPM_STATE_BLOB_TYPE_MAX;
         type++) {
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
    ret = commit_with_keys(s, updates, n, &rec, &keys, errp);
    if (ret == 0) {
        keys_wipe(&s->keys);
        s->keys = keys;
        if (s->key_data) {
            qcrypto_memwipe(s->key_data, s->key_len);
            g_free(s->key_data);
        }
        s->key_kind = new_key->kind;
        s->key_data = new_key->len ? g_memdup2(new_key->data, new_key->len) : NULL;
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
        keys_wipe(&keys);
    }
    return ret;
}

/* ---- info / check / ownership ---- */

int nvram_get_info(NvramStore *s, NvramInfo *info, GError **errp)
{
    memset(info, 0, sizeof(*info));
    if (!s->owner) {
        NvramSelection sel;
        if (reader_refresh(s, &sel, errp) < 0) {
            return -1;
        }
        selection_clear(&sel);
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

    if (access_lock(s, BDRV_LOCK_SHARED, errp) < 0) {
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
                            ") verifies", s->name, slot_name(s->slot),
                            s->dir.generation, slot_name(sel.slot),
                            sel.dir.generation);
                ret = -1;
            } else if (sel.other_problem) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT, "'%s': %s", s->name,
                            sel.other_reason);
                ret = -1;
            }
            if (!s->owner) {
                store_adopt_selection(s, &sel);
            }
            selection_clear(&sel);
        }
    }
    access_unlock(s);
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
    selection_clear(&sel);
    s->owner = true;
    return 0;
}

const uint8_t *nvram_get_uuid(NvramStore *s)
{
    return s->hdr.uuid;
}

int nvram_derive_key(NvramStore *s, const char *label, uint8_t *out, size_t out_len,
                     GError **errp)
{
    if (!s->keys.valid) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NO_KEY,
                    "'%s': no key to derive '%s' from", s->name, label);
        return -1;
    }
    if (!qcrypto_hkdf_sha256(s->keys.ikm, sizeof(s->keys.ikm), s->hdr.uuid,
                             NVRAM_UUID_LEN, (const uint8_t *)label, strlen(label), out,
                             out_len)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': cannot derive %zu bytes for '%s'", s->name, out_len, label);
        return -1;
    }
    return 0;
}
