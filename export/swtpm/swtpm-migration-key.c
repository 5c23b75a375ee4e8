/*
 * swtpm-migration-key=: a swtpm source's --migration-key on the target, and
 * the opening of the blobs it sealed. The key is parsed or derived once, at
 * start-up, so a bad secret stops qtpm before its control socket exists and
 * SET_STATEBLOB does no key stretching.
 */
#include "qemu/osdep.h"
#include "crypto/key.h"
#include "crypto/secret.h"
#include "qemu/bswap.h"
#include "qemu/log.h"
#include "qemu/option.h"
#include "qemu/swtpm-blob.h"
#include "export/swtpm-codec.h"
#include "export/swtpm-migration-key.h"

const char *const swtpm_migration_key_formats[] = {
    "binary", "hex", "passphrase", NULL
};
const char *const swtpm_migration_key_kdfs[] = { "pbkdf2", "sha512", NULL };

bool swtpm_migration_key_check_opts(GHashTable *opts, GError **errp)
{
    const char *format = qemu_opt_get(opts, "swtpm-migration-key-format");

    if (!qemu_opt_get(opts, "swtpm-migration-key")) {
        if (format || qemu_opt_get(opts, "swtpm-migration-key-kdf")) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "swtpm-migration-key-format= and "
                        "swtpm-migration-key-kdf= need swtpm-migration-key=");
            return false;
        }
        return true;
    }
    if (qemu_opt_get(opts, "swtpm-migration-key-kdf") &&
        g_strcmp0(format, "passphrase") != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "swtpm-migration-key-kdf= needs "
                    "swtpm-migration-key-format=passphrase");
        return false;
    }
    return true;
}

bool swtpm_migration_key_load(GHashTable *opts, SwtpmMigrationKey **out,
                              GError **errp)
{
    const char *id = qemu_opt_get(opts, "swtpm-migration-key");
    const char *format = qemu_opt_get(opts, "swtpm-migration-key-format");
    const char *kdf = qemu_opt_get(opts, "swtpm-migration-key-kdf");
    QCryptoSecret *secret;
    const uint8_t *bytes;
    SwtpmMigrationKey *mkey;
    SwtpmKey key = { 0 };
    size_t len;

    *out = NULL;
    if (!id) {
        return true;
    }
    secret = qcrypto_secret_lookup(id);
    if (!secret) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "swtpm-migration-key=%s names no -object secret", id);
        return false;
    }
    bytes = qcrypto_secret_data(secret, &len);
    /* Its own pages: swtpm's key, or the keys derived from its passphrase. */
    mkey = qcrypto_secure_alloc(sizeof(SwtpmMigrationKey));
    if (g_strcmp0(format, "passphrase") == 0) {
        swtpm_migration_key_from_passphrase(
            bytes, len,
            g_strcmp0(kdf, "sha512") == 0 ? SWTPM_KDF_SHA512 : SWTPM_KDF_PBKDF2,
            mkey);
        *out = mkey;
        return true;
    }
    if (!swtpm_key_parse(bytes, len,
                         g_strcmp0(format, "hex") == 0 ? SWTPM_KEY_FORMAT_HEX
                                                       : SWTPM_KEY_FORMAT_BINARY,
                         id, &key, errp)) {
        /* "swtpm-migration-key='ID': a binary swtpm key is ..." */
        g_prefix_error(errp, "swtpm-migration-key=");
        qcrypto_memwipe(&key, sizeof(key));
        swtpm_migration_key_free(mkey);
        return false;
    }
    swtpm_migration_key_from_key(&key, mkey);
    qcrypto_memwipe(&key, sizeof(key));
    *out = mkey;
    return true;
}

void swtpm_migration_key_free(SwtpmMigrationKey *mkey)
{
    qcrypto_secure_free(mkey, sizeof(*mkey));
}

static bool blob_is_sealed(const uint8_t *in, size_t len)
{
    return len >= SWTPM_BLOB_HEADER_SIZE &&
           (lduw_be_p(in + 4) & SWTPM_BLOB_FLAG_MIGRATION_ENCRYPTED);
}

uint32_t swtpm_migration_key_open_blob(const char *export_id,
                                       const SwtpmMigrationKey *mkey,
                                       const char *key_id, const char *label,
                                       const uint8_t *in, size_t len,
                                       uint8_t **plain, size_t *plain_len)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *what = g_strdup_printf("the swtpm %s state blob", label);

    if (swtpm_blob_decode_migration_key(in, len, mkey, what, plain, plain_len,
                                        &err)) {
        return SWTPM_RES_SUCCESS;
    }
    if (g_error_matches(err, QTPM_ERROR, QTPM_ERROR_NO_KEY)) {
        qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: the %s state blob "
                         "is sealed under swtpm's migration key and the export "
                         "has no swtpm-migration-key=", export_id, label);
    } else if (g_error_matches(err, QTPM_ERROR, QTPM_ERROR_WRONG_KEY)) {
        bool wide = lduw_be_p(in + 4) & SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY;

        if ((wide ? mkey->aes256.len : mkey->aes128.len) == 0) {
            qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: the %s state "
                             "blob is sealed under a %d-bit swtpm migration "
                             "key but swtpm-migration-key=%s holds a %d-bit "
                             "key", export_id, label, wide ? 256 : 128, key_id,
                             wide ? 128 : 256);
        } else {
            qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: the %s state "
                             "blob does not open under swtpm-migration-key=%s: "
                             "a wrong key or a damaged blob", export_id, label,
                             key_id);
        }
    } else {
        qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: %s", export_id,
                         err->message);
    }
    /*
     * Damage under swtpm's seal cannot be told from a wrong key, so every
     * refusal of a sealed blob is swtpm's own answer for a wrong key.
     */
    return blob_is_sealed(in, len) ? SWTPM_RES_DECRYPT_ERROR : SWTPM_RES_FAIL;
}
