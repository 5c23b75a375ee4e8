/*
 * NVRAM store keys (docs/nvram-format.md section 5): the subkeys derived
 * from the user's key, the key check value, key records, and the AES-GCM
 * sealing of blobs.
 */
#include "qemu/osdep.h"
#include "qemu/crc32.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/pbkdf.h"
#include "crypto/random.h"
#include "crypto/secret.h"

#include "nvram-int.h"

static const char label_blob[] = "qtpm nvram v1 blob key";
static const char label_check[] = "qtpm nvram v1 key check";
static const char label_dir_mac[] = "qtpm nvram v1 directory mac";
static const char key_check_text[] = "qtpm nvram key check";

static void subkey(const NvramKeys *k, const uint8_t *uuid, const char *label,
                   uint8_t *out, size_t len)
{
    qcrypto_hkdf_sha256(k->ikm, sizeof(k->ikm), uuid, NVRAM_UUID_LEN,
                        (const uint8_t *)label, strlen(label), out, len);
}

void nvram_key_check_value(const NvramKeys *k, const uint8_t *uuid,
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
int nvram_keys_derive(NvramStore *s, const QCryptoKeyKind kind, const uint8_t *key,
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
        /* The count is the image's word: a crafted one must not hold us. */
        if (rec->kdf_iterations > QCRYPTO_PBKDF2_MAX_ITERATIONS) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' asks for %" PRIu32 " PBKDF2 iterations, more than "
                        "the %d qtpm accepts", s->name, rec->kdf_iterations,
                        QCRYPTO_PBKDF2_MAX_ITERATIONS);
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

/* Derives for @rec, reusing s->keys while the record's KDF is unchanged (slow PBKDF2). */
static int keys_for_record(NvramStore *s, const NvramKeyRecord *rec, NvramKeys *out,
                           GError **errp)
{
    if (s->keys.valid && s->keys.kdf == rec->kdf &&
        s->keys.kdf_iterations == rec->kdf_iterations &&
        !memcmp(s->keys.kdf_salt, rec->kdf_salt, NVRAM_SALT_LEN)) {
        *out = s->keys;
        return 0;
    }
    return nvram_keys_derive(s, s->key_kind, s->key_data, s->key_len, rec, out, errp);
}

void nvram_keys_wipe(NvramKeys *k)
{
    qcrypto_memwipe(k, sizeof(*k));
}

/* Decrypts and authenticates one blob; @plain gets a g_malloc'ed copy. */
bool nvram_blob_open(NvramStore *s, const NvramDirectory *d, const NvramKeys *k,
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

/*
 * The key checks made on the newest slot whose CRCs verify. Their failures
 * are about the key, not about the image, so they end the open.
 */
int nvram_keys_check(NvramStore *s, const NvramDirectory *d, NvramKeys *keys,
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
    nvram_key_check_value(keys, s->hdr.uuid, kcv);
    ok = qcrypto_mem_equal(kcv, d->key.key_check, sizeof(kcv));
    qcrypto_memwipe(kcv, sizeof(kcv));
    if (!ok) {
        nvram_keys_wipe(keys);
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "'%s': wrong key (the key check value does not match)", s->name);
        return -1;
    }
    return 0;
}

int nvram_key_record_new(NvramStore *s, QCryptoKeyKind kind, uint32_t iterations,
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

/* Encrypts (or copies) one blob for generation @gen into a new buffer. */
int nvram_blob_seal(NvramStore *s, const NvramDirectory *d, const NvramKeys *k,
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
