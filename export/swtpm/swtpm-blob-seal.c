/*
 * Sealed state blobs: AES-256-GCM under keys derived from the backend's key
 * for this purpose alone, so a blob in QEMU's migration stream is useless
 * without the key and cannot be replayed as a blob of another type.
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/key.h"
#include "crypto/pbkdf.h"
#include "crypto/random.h"
#include "export/swtpm-blob-seal.h"
#include "export/swtpm-codec.h"

#define LABEL_SEAL "qtpm swtpm state blob v1 seal"
#define LABEL_KCV "qtpm swtpm state blob v1 key-check"
#define SEAL_SALT_LEN 16
#define SEAL_KCV_LEN 16

typedef struct __attribute__((packed)) SwtpmSealHeader {
    char magic[8];
    uint32_t version;
    uint32_t type;
    uint8_t key_kind;
    uint8_t zero[3];
    uint32_t iterations;
    uint8_t salt[SEAL_SALT_LEN];
    uint8_t kcv[SEAL_KCV_LEN];
    uint8_t nonce[QCRYPTO_AEAD_NONCE_LEN];
    uint32_t length;
} SwtpmSealHeader;

G_STATIC_ASSERT(sizeof(SwtpmSealHeader) == SWTPM_SEAL_HEADER_SIZE);
G_STATIC_ASSERT(SWTPM_SEAL_OVERHEAD ==
                SWTPM_SEAL_HEADER_SIZE + QCRYPTO_AEAD_TAG_LEN);
G_STATIC_ASSERT(SWTPM_SEAL_PLAIN_MAX + SWTPM_SEAL_OVERHEAD == SWTPM_CTRL_DATA_MAX);

#define FIELD(field) offsetof(SwtpmSealHeader, field)

struct SwtpmSealKeys {
    bool valid;
    QCryptoKeyKind kind;
    uint32_t iterations;
    uint8_t salt[SEAL_SALT_LEN];
    /* HMAC of the key under the salt: which key these were derived from. */
    uint8_t key_id[QCRYPTO_SHA256_LEN];
    uint8_t seal[QCRYPTO_AEAD_KEY_LEN];
    uint8_t kcv[SEAL_KCV_LEN];
};

SwtpmSealKeys *swtpm_seal_keys_new(void)
{
    /* Its own pages: the derived sealing key lives as long as the export. */
    return qcrypto_secure_alloc(sizeof(SwtpmSealKeys));
}

void swtpm_seal_keys_free(SwtpmSealKeys *k)
{
    qcrypto_secure_free(k, sizeof(*k));
}

static bool key_usable(const QCryptoKey *key)
{
    return (key->kind == QCRYPTO_KEY_RAW && key->len == QCRYPTO_AEAD_KEY_LEN) ||
           (key->kind == QCRYPTO_KEY_PASSPHRASE && key->len > 0);
}

/* Makes @k hold the keys of @key for @salt and @iterations. */
static void seal_keys_derive(SwtpmSealKeys *k, const QCryptoKey *key,
                             const uint8_t salt[SEAL_SALT_LEN],
                             uint32_t iterations)
{
    uint8_t key_id[QCRYPTO_SHA256_LEN];
    uint8_t stretched[QCRYPTO_AEAD_KEY_LEN];
    const uint8_t *ikm = key->data;
    size_t ikm_len = key->len;

    qcrypto_hmac_sha256(salt, SEAL_SALT_LEN, key->data, key->len, key_id);
    if (k->valid && k->kind == key->kind && k->iterations == iterations &&
        !memcmp(k->salt, salt, SEAL_SALT_LEN) &&
        qcrypto_mem_equal(k->key_id, key_id, sizeof(key_id))) {
        return;
    }
    if (key->kind == QCRYPTO_KEY_PASSPHRASE) {
        qcrypto_pbkdf2_sha256(key->data, key->len, salt, SEAL_SALT_LEN,
                              iterations, stretched, sizeof(stretched));
        ikm = stretched;
        ikm_len = sizeof(stretched);
    }
    qcrypto_hkdf_sha256(ikm, ikm_len, salt, SEAL_SALT_LEN,
                        (const uint8_t *)LABEL_SEAL, strlen(LABEL_SEAL),
                        k->seal, sizeof(k->seal));
    qcrypto_hkdf_sha256(ikm, ikm_len, salt, SEAL_SALT_LEN,
                        (const uint8_t *)LABEL_KCV, strlen(LABEL_KCV),
                        k->kcv, sizeof(k->kcv));
    qcrypto_memwipe(stretched, sizeof(stretched));
    k->kind = key->kind;
    k->iterations = iterations;
    memcpy(k->salt, salt, SEAL_SALT_LEN);
    memcpy(k->key_id, key_id, sizeof(key_id));
    k->valid = true;
}

uint8_t *swtpm_blob_seal(SwtpmSealKeys *k, const QCryptoKey *key, uint32_t type,
                         const uint8_t *in, size_t len, size_t *out_len,
                         GError **errp)
{
    uint8_t salt[SEAL_SALT_LEN];
    uint32_t iterations;
    uint8_t *out, *p;

    if (!key_usable(key)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "the key cannot seal state blobs");
        return NULL;
    }
    if (len > SWTPM_SEAL_PLAIN_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "a state blob of %zu bytes is too large to seal", len);
        return NULL;
    }
    iterations = key->kind == QCRYPTO_KEY_PASSPHRASE
                     ? QCRYPTO_PBKDF2_DEFAULT_ITERATIONS : 0;
    if (k->valid && k->kind == key->kind && k->iterations == iterations) {
        /* The export's salt; seal_keys_derive checks the key is the same. */
        memcpy(salt, k->salt, sizeof(salt));
    } else if (qcrypto_random_bytes(salt, sizeof(salt), errp) < 0) {
        return NULL;
    }
    seal_keys_derive(k, key, salt, iterations);

    out = g_malloc0(SWTPM_SEAL_OVERHEAD + len);
    memcpy(out + FIELD(magic), SWTPM_SEAL_MAGIC, 8);
    stl_be_p(out + FIELD(version), SWTPM_SEAL_VERSION);
    stl_be_p(out + FIELD(type), type);
    out[FIELD(key_kind)] = key->kind;
    stl_be_p(out + FIELD(iterations), iterations);
    memcpy(out + FIELD(salt), salt, SEAL_SALT_LEN);
    memcpy(out + FIELD(kcv), k->kcv, SEAL_KCV_LEN);
    if (qcrypto_random_bytes(out + FIELD(nonce), QCRYPTO_AEAD_NONCE_LEN,
                             errp) < 0) {
        g_free(out);
        return NULL;
    }
    stl_be_p(out + FIELD(length), len);
    p = out + SWTPM_SEAL_HEADER_SIZE;
    qcrypto_aead_encrypt(k->seal, out + FIELD(nonce), out,
                         SWTPM_SEAL_HEADER_SIZE, in, len, p, p + len);
    *out_len = SWTPM_SEAL_OVERHEAD + len;
    return out;
}

/* The header's own checks, before any key is derived. */
static bool header_valid(const uint8_t *in, size_t len, uint32_t type)
{
    static const uint8_t zero[3];
    uint32_t n, iterations;

    if (len < SWTPM_SEAL_OVERHEAD ||
        memcmp(in + FIELD(magic), SWTPM_SEAL_MAGIC, 8) ||
        ldl_be_p(in + FIELD(version)) != SWTPM_SEAL_VERSION ||
        ldl_be_p(in + FIELD(type)) != type ||
        memcmp(in + FIELD(zero), zero, sizeof(zero))) {
        return false;
    }
    n = ldl_be_p(in + FIELD(length));
    if (n > SWTPM_SEAL_PLAIN_MAX || len - SWTPM_SEAL_OVERHEAD != n) {
        return false;
    }
    iterations = ldl_be_p(in + FIELD(iterations));
    switch (in[FIELD(key_kind)]) {
    case QCRYPTO_KEY_RAW:
        return iterations == 0;
    case QCRYPTO_KEY_PASSPHRASE:
        return iterations > 0 && iterations <= SWTPM_SEAL_ITERATIONS_MAX;
    default:
        return false;
    }
}

SwtpmSealStatus swtpm_blob_open(SwtpmSealKeys *k, const QCryptoKey *key,
                                uint32_t type, const uint8_t *in, size_t len,
                                uint8_t **out, size_t *out_len)
{
    uint32_t n;
    uint8_t *plain;

    *out = NULL;
    *out_len = 0;
    if (!header_valid(in, len, type)) {
        return SWTPM_SEAL_DAMAGED;
    }
    if (!key_usable(key) || in[FIELD(key_kind)] != key->kind) {
        return SWTPM_SEAL_WRONG_KEY;
    }
    seal_keys_derive(k, key, in + FIELD(salt), ldl_be_p(in + FIELD(iterations)));
    if (!qcrypto_mem_equal(k->kcv, in + FIELD(kcv), SEAL_KCV_LEN)) {
        return SWTPM_SEAL_WRONG_KEY;
    }
    n = ldl_be_p(in + FIELD(length));
    plain = g_malloc(n ? n : 1);
    if (!qcrypto_aead_decrypt(k->seal, in + FIELD(nonce), in,
                              SWTPM_SEAL_HEADER_SIZE,
                              in + SWTPM_SEAL_HEADER_SIZE, n, plain,
                              in + SWTPM_SEAL_HEADER_SIZE + n)) {
        qcrypto_free_wiped(&plain, n);
        return SWTPM_SEAL_DAMAGED;
    }
    *out = plain;
    *out_len = n;
    return SWTPM_SEAL_OK;
}
