/*
 * NVRAM store on-disk structures: encoders and parsers (docs/nvram-format.md
 * sections 2 and 3). Pure functions over bounded buffers; every field read
 * from a buffer is checked before it is used.
 */
#include "qemu/osdep.h"
#include "qemu/crc32.h"
#include "qemu/bswap.h"

#include "crypto/hkdf.h"
#include "nvram/nvram.h"
#include "nvram/nvram-format.h"

static const uint8_t header_magic[NVRAM_MAGIC_LEN] = NVRAM_HEADER_MAGIC;
static const uint8_t dir_magic[NVRAM_MAGIC_LEN] = NVRAM_DIR_MAGIC;
static const uint8_t blob_ad_magic[NVRAM_MAGIC_LEN] = NVRAM_BLOB_AD_MAGIC;

bool nvram_buffer_is_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i]) {
            return false;
        }
    }
    return true;
}

/* ---- header (section 2) ---- */

void nvram_header_encode(const NvramHeader *h, uint8_t *block)
{
    uint8_t copy[NVRAM_HEADER_SIZE] = { 0 };

    memcpy(copy + NVRAM_HDR_OFF_MAGIC, header_magic, NVRAM_MAGIC_LEN);
    stl_be_p(copy + NVRAM_HDR_OFF_VERSION, NVRAM_FORMAT_VERSION);
    stl_be_p(copy + NVRAM_HDR_OFF_HEADER_SIZE, NVRAM_HEADER_SIZE);
    stl_be_p(copy + NVRAM_HDR_OFF_INCOMPAT_FLAGS, h->incompat_flags);
    stl_be_p(copy + NVRAM_HDR_OFF_COMPAT_FLAGS, h->compat_flags);
    memcpy(copy + NVRAM_HDR_OFF_UUID, h->uuid, NVRAM_UUID_LEN);
    copy[NVRAM_HDR_OFF_TPM_VERSION] = h->tpm_version;
    stl_be_p(copy + NVRAM_HDR_OFF_BLOCK_SIZE, NVRAM_BLOCK_SIZE);
    stq_be_p(copy + NVRAM_HDR_OFF_SLOT_A_OFFSET, NVRAM_SLOT_A_OFFSET);
    stq_be_p(copy + NVRAM_HDR_OFF_SLOT_B_OFFSET, NVRAM_SLOT_B_OFFSET);
    stl_be_p(copy + NVRAM_HDR_OFF_SLOT_SIZE, NVRAM_SLOT_SIZE);
    stq_be_p(copy + NVRAM_HDR_OFF_DATA_OFFSET, NVRAM_DATA_OFFSET);
    stl_be_p(copy + NVRAM_HDR_OFF_HEADER_CRC, qemu_crc32(copy, NVRAM_HDR_OFF_HEADER_CRC));

    memset(block, 0, NVRAM_BLOCK_SIZE);
    for (int i = 0; i < NVRAM_HEADER_COPIES; i++) {
        memcpy(block + i * NVRAM_HEADER_COPY_STRIDE, copy, sizeof(copy));
    }
}

/* Parses one 128-byte copy. Returns a QtpmErrorCode-ish result via errp. */
static bool header_copy_parse(const uint8_t *c, NvramHeader *h, GError **errp)
{
    uint32_t version, crc, stored_crc;

    if (memcmp(c + NVRAM_HDR_OFF_MAGIC, header_magic, NVRAM_MAGIC_LEN) != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND, "no header magic");
        return false;
    }
    version = ldl_be_p(c + NVRAM_HDR_OFF_VERSION);
    stored_crc = ldl_be_p(c + NVRAM_HDR_OFF_HEADER_CRC);
    crc = qemu_crc32(c, NVRAM_HDR_OFF_HEADER_CRC);
    if (version > NVRAM_FORMAT_VERSION && crc == stored_crc) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "format version %" PRIu32 " is newer than the version this "
                    "qtpm supports (%d)", version, NVRAM_FORMAT_VERSION);
        return false;
    }
    if (crc != stored_crc) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "header CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08"
                    PRIx32 ")", stored_crc, crc);
        return false;
    }
    if (version != NVRAM_FORMAT_VERSION) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "header has an invalid format version %" PRIu32, version);
        return false;
    }
    if (ldl_be_p(c + NVRAM_HDR_OFF_INCOMPAT_FLAGS) & ~NVRAM_INCOMPAT_KNOWN) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "header has unknown incompatible feature flags 0x%08" PRIx32,
                    ldl_be_p(c + NVRAM_HDR_OFF_INCOMPAT_FLAGS) &
                    ~NVRAM_INCOMPAT_KNOWN);
        return false;
    }
    if (ldl_be_p(c + NVRAM_HDR_OFF_HEADER_SIZE) != NVRAM_HEADER_SIZE ||
        ldl_be_p(c + NVRAM_HDR_OFF_BLOCK_SIZE) != NVRAM_BLOCK_SIZE ||
        ldq_be_p(c + NVRAM_HDR_OFF_SLOT_A_OFFSET) != NVRAM_SLOT_A_OFFSET ||
        ldq_be_p(c + NVRAM_HDR_OFF_SLOT_B_OFFSET) != NVRAM_SLOT_B_OFFSET ||
        ldl_be_p(c + NVRAM_HDR_OFF_SLOT_SIZE) != NVRAM_SLOT_SIZE ||
        ldq_be_p(c + NVRAM_HDR_OFF_DATA_OFFSET) != NVRAM_DATA_OFFSET) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "header describes a layout that format version 1 does not use");
        return false;
    }
    if (c[NVRAM_HDR_OFF_TPM_VERSION] != 1 && c[NVRAM_HDR_OFF_TPM_VERSION] != 2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "header names TPM version %u (1 or 2 expected)",
                    c[NVRAM_HDR_OFF_TPM_VERSION]);
        return false;
    }
    if (!nvram_buffer_is_zero(c + NVRAM_HDR_OFF_RESERVED1,
                              NVRAM_HDR_OFF_BLOCK_SIZE - NVRAM_HDR_OFF_RESERVED1) ||
        !nvram_buffer_is_zero(c + NVRAM_HDR_OFF_RESERVED2,
                              NVRAM_HDR_OFF_HEADER_CRC - NVRAM_HDR_OFF_RESERVED2)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "header has non-zero reserved bytes");
        return false;
    }
    h->version = version;
    h->incompat_flags = ldl_be_p(c + NVRAM_HDR_OFF_INCOMPAT_FLAGS);
    h->compat_flags = ldl_be_p(c + NVRAM_HDR_OFF_COMPAT_FLAGS);
    memcpy(h->uuid, c + NVRAM_HDR_OFF_UUID, NVRAM_UUID_LEN);
    h->tpm_version = c[NVRAM_HDR_OFF_TPM_VERSION];
    return true;
}

bool nvram_header_parse(const uint8_t *block, size_t len, NvramHeader *h,
                        NvramHeaderReport *report, GError **errp)
{
    uint8_t buf[NVRAM_BLOCK_SIZE] = { 0 };
    GError *errs[NVRAM_HEADER_COPIES] = { NULL };
    NvramHeader parsed[NVRAM_HEADER_COPIES];
    int use = -1;
    bool padding_ok = true;
    GString *problem = g_string_new(NULL);
    bool ok;

    memset(parsed, 0, sizeof(parsed));
    memcpy(buf, block, MIN(len, sizeof(buf)));
    for (int i = 0; i < NVRAM_HEADER_COPIES; i++) {
        const uint8_t *c = buf + i * NVRAM_HEADER_COPY_STRIDE;
        if (header_copy_parse(c, &parsed[i], &errs[i]) && use < 0) {
            use = i;
        }
        if (!nvram_buffer_is_zero(c + NVRAM_HEADER_SIZE,
                                  NVRAM_HEADER_COPY_STRIDE - NVRAM_HEADER_SIZE)) {
            padding_ok = false;
        }
    }
    if (use >= 0) {
        for (int i = 0; i < NVRAM_HEADER_COPIES; i++) {
            if (!errs[i] && memcmp(&parsed[i], &parsed[use], sizeof(NvramHeader))) {
                g_set_error(&errs[i], QTPM_ERROR, QTPM_ERROR_CORRUPT,
                            "header copy differs from copy %d", use);
            }
        }
    }
    for (int i = 0; i < NVRAM_HEADER_COPIES; i++) {
        if (errs[i]) {
            g_string_append_printf(problem, "%sheader copy %d: %s",
                                   problem->len ? "; " : "", i, errs[i]->message);
        }
    }
    if (!padding_ok) {
        g_string_append_printf(problem, "%sheader block has non-zero bytes outside "
                               "the header copies", problem->len ? "; " : "");
    }

    if (use >= 0) {
        *h = parsed[use];
        ok = true;
    } else {
        /* Report the most telling cause: a newer version beats damage. */
        int code = QTPM_ERROR_NOT_FOUND;
        const char *msg = "no NVRAM header magic";
        for (int i = NVRAM_HEADER_COPIES - 1; i >= 0; i--) {
            if (errs[i]->code == QTPM_ERROR_UNSUPPORTED ||
                (errs[i]->code == QTPM_ERROR_CORRUPT && code == QTPM_ERROR_NOT_FOUND)) {
                code = errs[i]->code;
                msg = errs[i]->message;
            }
        }
        if (code == QTPM_ERROR_CORRUPT) {
            g_set_error(errp, QTPM_ERROR, code, "NVRAM header damaged (%s)",
                        problem->str);
        } else {
            g_set_error_literal(errp, QTPM_ERROR, code, msg);
        }
        ok = false;
    }
    if (report) {
        for (int i = 0; i < NVRAM_HEADER_COPIES; i++) {
            report->copy_ok[i] = !errs[i];
        }
        report->padding_ok = padding_ok;
        report->problem = problem->len ? g_strdup(problem->str) : NULL;
    }
    for (int i = 0; i < NVRAM_HEADER_COPIES; i++) {
        g_clear_error(&errs[i]);
    }
    g_string_free(problem, TRUE);
    return ok;
}

/* ---- directory (section 3) ---- */

static void entry_encode(const NvramDirEntry *e, uint8_t *p)
{
    memset(p, 0, NVRAM_ENTRY_SIZE);
    stl_be_p(p + NVRAM_ENTRY_OFF_TYPE, e->type);
    stl_be_p(p + NVRAM_ENTRY_OFF_FLAGS, 0);
    stq_be_p(p + NVRAM_ENTRY_OFF_OFFSET, e->offset);
    stl_be_p(p + NVRAM_ENTRY_OFF_LENGTH, e->length);
    stl_be_p(p + NVRAM_ENTRY_OFF_CRC32, e->crc32);
    stq_be_p(p + NVRAM_ENTRY_OFF_GENERATION, e->generation);
    memcpy(p + NVRAM_ENTRY_OFF_NONCE, e->nonce, NVRAM_NONCE_LEN);
    memcpy(p + NVRAM_ENTRY_OFF_TAG, e->tag, NVRAM_TAG_LEN);
}

void nvram_dir_encode(NvramDirectory *d, const uint8_t *mac_key, uint8_t *slot)
{
    memset(slot, 0, NVRAM_SLOT_SIZE);
    memcpy(slot + NVRAM_DIR_OFF_MAGIC, dir_magic, NVRAM_MAGIC_LEN);
    stl_be_p(slot + NVRAM_DIR_OFF_SLOT_INDEX, d->slot_index);
    stl_be_p(slot + NVRAM_DIR_OFF_N_ENTRIES, d->n_entries);
    stq_be_p(slot + NVRAM_DIR_OFF_GENERATION, d->generation);
    memcpy(slot + NVRAM_DIR_OFF_UUID, d->uuid, NVRAM_UUID_LEN);
    slot[NVRAM_DIR_OFF_CIPHER] = d->key.cipher;
    slot[NVRAM_DIR_OFF_KDF] = d->key.kdf;
    stl_be_p(slot + NVRAM_DIR_OFF_KDF_ITERATIONS, d->key.kdf_iterations);
    memcpy(slot + NVRAM_DIR_OFF_KDF_SALT, d->key.kdf_salt, NVRAM_SALT_LEN);
    memcpy(slot + NVRAM_DIR_OFF_KEY_CHECK, d->key.key_check, NVRAM_KEY_CHECK_LEN);
    for (unsigned i = 0; i < d->n_entries && i < NVRAM_DIR_MAX_ENTRIES; i++) {
        entry_encode(&d->entries[i], slot + NVRAM_DIR_OFF_ENTRIES + i * NVRAM_ENTRY_SIZE);
    }
    if (mac_key) {
        qcrypto_hmac_sha256(mac_key, 32, slot, NVRAM_DIR_OFF_DIR_MAC, d->mac);
    } else {
        memset(d->mac, 0, sizeof(d->mac));
    }
    memcpy(slot + NVRAM_DIR_OFF_DIR_MAC, d->mac, NVRAM_MAC_LEN);
    stl_be_p(slot + NVRAM_DIR_OFF_DIR_CRC, qemu_crc32(slot, NVRAM_DIR_OFF_DIR_CRC));
}

bool nvram_dir_mac_ok(const uint8_t *slot, size_t len, const uint8_t *mac_key)
{
    uint8_t mac[NVRAM_MAC_LEN];
    bool ok;

    if (len < NVRAM_DIR_SIZE) {
        return false;
    }
    qcrypto_hmac_sha256(mac_key, 32, slot, NVRAM_DIR_OFF_DIR_MAC, mac);
    ok = qcrypto_mem_equal(mac, slot + NVRAM_DIR_OFF_DIR_MAC, NVRAM_MAC_LEN);
    return ok;
}

static bool key_record_parse(const uint8_t *slot, NvramKeyRecord *k, GError **errp)
{
    k->cipher = slot[NVRAM_DIR_OFF_CIPHER];
    k->kdf = slot[NVRAM_DIR_OFF_KDF];
    k->kdf_iterations = ldl_be_p(slot + NVRAM_DIR_OFF_KDF_ITERATIONS);
    memcpy(k->kdf_salt, slot + NVRAM_DIR_OFF_KDF_SALT, NVRAM_SALT_LEN);
    memcpy(k->key_check, slot + NVRAM_DIR_OFF_KEY_CHECK, NVRAM_KEY_CHECK_LEN);

    if (!nvram_buffer_is_zero(slot + NVRAM_DIR_OFF_RESERVED1,
                              NVRAM_DIR_OFF_KDF_ITERATIONS - NVRAM_DIR_OFF_RESERVED1)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "key record has non-zero reserved bytes");
        return false;
    }
    switch (k->cipher) {
    case NVRAM_CIPHER_NONE:
        /* Iterations, salt and key check: the rest of the key record. */
        if (k->kdf != NVRAM_KDF_NONE ||
            !nvram_buffer_is_zero(slot + NVRAM_DIR_OFF_KDF_ITERATIONS,
                                  NVRAM_DIR_OFF_ENTRIES - NVRAM_DIR_OFF_KDF_ITERATIONS)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "key record of a plain store is not empty");
            return false;
        }
        return true;
    case NVRAM_CIPHER_AES256_GCM:
        break;
    default:
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "unknown cipher %u in the key record", k->cipher);
        return false;
    }
    if (k->kdf == NVRAM_KDF_RAW) {
        if (k->kdf_iterations || !nvram_buffer_is_zero(k->kdf_salt, NVRAM_SALT_LEN)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "key record of a raw key has KDF parameters");
            return false;
        }
    } else if (k->kdf == NVRAM_KDF_PBKDF2_SHA256) {
        if (k->kdf_iterations < NVRAM_PBKDF2_MIN_ITERATIONS ||
            k->kdf_iterations > NVRAM_PBKDF2_MAX_ITERATIONS) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "key record has %" PRIu32 " PBKDF2 iterations (%d to %d "
                        "allowed)", k->kdf_iterations, NVRAM_PBKDF2_MIN_ITERATIONS,
                        NVRAM_PBKDF2_MAX_ITERATIONS);
            return false;
        }
    } else {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "unknown key derivation %u in the key record", k->kdf);
        return false;
    }
    return true;
}

static bool entry_parse(const uint8_t *p, unsigned i, bool encrypted,
                        uint64_t dir_generation, NvramDirEntry *e, GError **errp)
{
    e->type = ldl_be_p(p + NVRAM_ENTRY_OFF_TYPE);
    e->offset = ldq_be_p(p + NVRAM_ENTRY_OFF_OFFSET);
    e->length = ldl_be_p(p + NVRAM_ENTRY_OFF_LENGTH);
    e->crc32 = ldl_be_p(p + NVRAM_ENTRY_OFF_CRC32);
    e->generation = ldq_be_p(p + NVRAM_ENTRY_OFF_GENERATION);
    memcpy(e->nonce, p + NVRAM_ENTRY_OFF_NONCE, NVRAM_NONCE_LEN);
    memcpy(e->tag, p + NVRAM_ENTRY_OFF_TAG, NVRAM_TAG_LEN);

    if (e->type < 1 || e->type > TPM_STATE_BLOB_TYPE_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory entry %u has an unknown blob type %" PRIu32, i, e->type);
        return false;
    }
    if (ldl_be_p(p + NVRAM_ENTRY_OFF_FLAGS) || ldl_be_p(p + NVRAM_ENTRY_OFF_RESERVED)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory entry %u has non-zero flags or reserved bytes", i);
        return false;
    }
    if (e->offset < NVRAM_DATA_OFFSET || e->offset > NVRAM_MAX_OFFSET ||
        !QEMU_IS_ALIGNED(e->offset, NVRAM_BLOCK_SIZE)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory entry %u has an invalid offset 0x%" PRIx64, i,
                    e->offset);
        return false;
    }
    if (e->length == 0 || e->length > NVRAM_MAX_BLOB_LEN) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory entry %u has an invalid length %" PRIu32, i, e->length);
        return false;
    }
    if (e->generation == 0 || e->generation > dir_generation) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory entry %u has generation %" PRIu64 " outside 1..%"
                    PRIu64, i, e->generation, dir_generation);
        return false;
    }
    /* Nonce, reserved and tag. */
    if (!encrypted && !nvram_buffer_is_zero(p + NVRAM_ENTRY_OFF_NONCE,
                                            NVRAM_ENTRY_SIZE - NVRAM_ENTRY_OFF_NONCE)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory entry %u of a plain store has a nonce or tag", i);
        return false;
    }
    return true;
}

/* One directory of NVRAM_DIR_SIZE bytes followed by @pad zero bytes. */
static bool dir_record_parse(const uint8_t *slot, size_t pad, unsigned slot_index,
                             const uint8_t uuid[NVRAM_UUID_LEN], NvramDirectory *d,
                             GError **errp)
{
    uint32_t crc, stored_crc, n;

    stored_crc = ldl_be_p(slot + NVRAM_DIR_OFF_DIR_CRC);
    crc = qemu_crc32(slot, NVRAM_DIR_OFF_DIR_CRC);
    if (crc != stored_crc) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08"
                    PRIx32 ")", stored_crc, crc);
        return false;
    }
    if (memcmp(slot + NVRAM_DIR_OFF_MAGIC, dir_magic, NVRAM_MAGIC_LEN) != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT, "no directory magic");
        return false;
    }
    if (!nvram_buffer_is_zero(slot + NVRAM_DIR_SIZE, pad) ||
        ldl_be_p(slot + NVRAM_DIR_OFF_RESERVED3) != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory slot has non-zero bytes outside the directory");
        return false;
    }
    memset(d, 0, sizeof(*d));
    d->slot_index = ldl_be_p(slot + NVRAM_DIR_OFF_SLOT_INDEX);
    if (d->slot_index != slot_index) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory belongs in slot %" PRIu32 ", not slot %u",
                    d->slot_index, slot_index);
        return false;
    }
    d->generation = ldq_be_p(slot + NVRAM_DIR_OFF_GENERATION);
    if (d->generation == 0 || d->generation > INT64_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory has an invalid generation %" PRIu64, d->generation);
        return false;
    }
    memcpy(d->uuid, slot + NVRAM_DIR_OFF_UUID, NVRAM_UUID_LEN);
    if (memcmp(d->uuid, uuid, NVRAM_UUID_LEN) != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory belongs to another image (UUID mismatch)");
        return false;
    }
    if (!key_record_parse(slot, &d->key, errp)) {
        return false;
    }
    memcpy(d->mac, slot + NVRAM_DIR_OFF_DIR_MAC, NVRAM_MAC_LEN);
    if (d->key.cipher == NVRAM_CIPHER_NONE &&
        !nvram_buffer_is_zero(d->mac, NVRAM_MAC_LEN)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory of a plain store has a MAC");
        return false;
    }
    n = ldl_be_p(slot + NVRAM_DIR_OFF_N_ENTRIES);
    if (n > NVRAM_DIR_MAX_ENTRIES) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory has %" PRIu32 " entries (at most %d)", n,
                    NVRAM_DIR_MAX_ENTRIES);
        return false;
    }
    if (!nvram_buffer_is_zero(slot + NVRAM_DIR_OFF_ENTRIES + n * NVRAM_ENTRY_SIZE,
                              NVRAM_DIR_OFF_DIR_MAC - NVRAM_DIR_OFF_ENTRIES -
                              n * NVRAM_ENTRY_SIZE)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory has non-zero bytes after its %" PRIu32 " entries", n);
        return false;
    }
    d->n_entries = n;
    for (unsigned i = 0; i < n; i++) {
        NvramDirEntry *e = &d->entries[i];
        if (!entry_parse(slot + NVRAM_DIR_OFF_ENTRIES + i * NVRAM_ENTRY_SIZE, i,
                         d->key.cipher != NVRAM_CIPHER_NONE, d->generation, e,
                         errp)) {
            return false;
        }
        for (unsigned j = 0; j < i; j++) {
            const NvramDirEntry *o = &d->entries[j];
            if (o->type == e->type) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                            "directory entries %u and %u both hold blob type %"
                            PRIu32, j, i, e->type);
                return false;
            }
            if (e->offset < o->offset + nvram_extent_len(o->length) &&
                o->offset < e->offset + nvram_extent_len(e->length)) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                            "directory entries %u and %u overlap", j, i);
                return false;
            }
        }
    }
    return true;
}

bool nvram_dir_parse(const uint8_t *slot, size_t len, unsigned slot_index,
                     const uint8_t uuid[NVRAM_UUID_LEN], NvramDirectory *d,
                     GError **errp)
{
    if (len < NVRAM_SLOT_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory slot is truncated (%zu bytes)", len);
        return false;
    }
    return dir_record_parse(slot, NVRAM_SLOT_SIZE - NVRAM_DIR_SIZE, slot_index, uuid,
                            d, errp);
}

bool nvram_dir_parse_ordered(const uint8_t *slot, size_t len, unsigned slot_index,
                             const uint8_t uuid[NVRAM_UUID_LEN], NvramDirectory *d,
                             bool copy_ok[NVRAM_DIR_COPIES], unsigned *used_copy,
                             GError **errp)
{
    NvramDirectory copies[NVRAM_DIR_COPIES];
    GError *errs[NVRAM_DIR_COPIES] = { NULL };
    bool ok[NVRAM_DIR_COPIES];
    int use = -1;

    if (len < NVRAM_SLOT_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory slot is truncated (%zu bytes)", len);
        return false;
    }
    for (int i = 0; i < NVRAM_DIR_COPIES; i++) {
        ok[i] = dir_record_parse(slot + i * NVRAM_DIR_COPY_STRIDE,
                                 NVRAM_DIR_COPY_STRIDE - NVRAM_DIR_SIZE, slot_index,
                                 uuid, &copies[i], &errs[i]);
        if (copy_ok) {
            copy_ok[i] = ok[i];
        }
        if (ok[i] && (use < 0 || copies[i].generation > copies[use].generation)) {
            use = i;
        }
    }
    if (use >= 0) {
        *d = copies[use];
        if (used_copy) {
            *used_copy = use;
        }
    } else {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "%s in copy 0; copy 1: %s",
                    errs[0]->message, errs[1]->message);
    }
    for (int i = 0; i < NVRAM_DIR_COPIES; i++) {
        g_clear_error(&errs[i]);
    }
    return use >= 0;
}

void nvram_dir_encode_ordered(NvramDirectory *d, const uint8_t *mac_key, uint8_t *slot)
{
    nvram_dir_encode(d, mac_key, slot);
    memcpy(slot + NVRAM_DIR_COPY_STRIDE, slot, NVRAM_DIR_SIZE);
}

void nvram_blob_ad(const uint8_t uuid[NVRAM_UUID_LEN], uint32_t type,
                   uint64_t generation, uint8_t *ad)
{
    memcpy(ad + NVRAM_AD_OFF_MAGIC, blob_ad_magic, NVRAM_MAGIC_LEN);
    memcpy(ad + NVRAM_AD_OFF_UUID, uuid, NVRAM_UUID_LEN);
    stl_be_p(ad + NVRAM_AD_OFF_TYPE, type);
    stq_be_p(ad + NVRAM_AD_OFF_GENERATION, generation);
}
