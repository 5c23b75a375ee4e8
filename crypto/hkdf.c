/*
 * HMAC-SHA256 and HKDF-SHA256 (RFC 5869) through nettle.
 */
#include "qemu/osdep.h"

#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "crypto/hkdf.h"
#include "crypto/secret.h"

void qcrypto_hmac_sha256(const uint8_t *key, size_t key_len,
                         const uint8_t *data, size_t len,
                         uint8_t out[QCRYPTO_SHA256_LEN])
{
    struct hmac_sha256_ctx ctx;

    hmac_sha256_set_key(&ctx, key_len, key);
    hmac_sha256_update(&ctx, len, data);
    hmac_sha256_digest(&ctx, QCRYPTO_SHA256_LEN, out);
    qcrypto_memwipe(&ctx, sizeof(ctx));
}

bool qcrypto_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
                         const uint8_t *salt, size_t salt_len,
                         const uint8_t *info, size_t info_len,
                         uint8_t *out, size_t out_len)
{
    struct hmac_sha256_ctx ctx;
    uint8_t prk[QCRYPTO_SHA256_LEN];
    static const uint8_t zero_salt[QCRYPTO_SHA256_LEN];

    if (out_len > 255 * QCRYPTO_SHA256_LEN) {
        return false;
    }
    /* RFC 5869: no salt means a string of HashLen zeros. */
    if (salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof(zero_salt);
    }
    hmac_sha256_set_key(&ctx, salt_len, salt);
    hkdf_extract(&ctx, (nettle_hash_update_func *)hmac_sha256_update,
                 (nettle_hash_digest_func *)hmac_sha256_digest,
                 QCRYPTO_SHA256_LEN, ikm_len, ikm, prk);
    hmac_sha256_set_key(&ctx, sizeof(prk), prk);
    hkdf_expand(&ctx, (nettle_hash_update_func *)hmac_sha256_update,
                (nettle_hash_digest_func *)hmac_sha256_digest,
                QCRYPTO_SHA256_LEN, info_len, info, out_len, out);
    qcrypto_memwipe(prk, sizeof(prk));
    qcrypto_memwipe(&ctx, sizeof(ctx));
    return true;
}

bool qcrypto_mem_equal(const void *a, const void *b, size_t len)
{
    return memeql_sec(a, b, len) != 0;
}
