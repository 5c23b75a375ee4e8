/*
 * AES-256-GCM through nettle. The tag is compared in constant time and
 * plaintext is wiped when it does not match.
 */
#include "qemu/osdep.h"

#include <nettle/gcm.h>
#include <nettle/memops.h>

#include "crypto/aead.h"
#include "crypto/secret.h"

static void aead_start(struct gcm_aes256_ctx *ctx,
                       const uint8_t key[QCRYPTO_AEAD_KEY_LEN],
                       const uint8_t nonce[QCRYPTO_AEAD_NONCE_LEN],
                       const uint8_t *ad, size_t ad_len)
{
    gcm_aes256_set_key(ctx, key);
    gcm_aes256_set_iv(ctx, QCRYPTO_AEAD_NONCE_LEN, nonce);
    if (ad_len) {
        gcm_aes256_update(ctx, ad_len, ad);
    }
}

void qcrypto_aead_encrypt(const uint8_t key[QCRYPTO_AEAD_KEY_LEN],
                          const uint8_t nonce[QCRYPTO_AEAD_NONCE_LEN],
                          const uint8_t *ad, size_t ad_len,
                          const uint8_t *in, size_t len, uint8_t *out,
                          uint8_t tag[QCRYPTO_AEAD_TAG_LEN])
{
    struct gcm_aes256_ctx ctx;

    aead_start(&ctx, key, nonce, ad, ad_len);
    if (len) {
        gcm_aes256_encrypt(&ctx, len, out, in);
    }
    gcm_aes256_digest(&ctx, QCRYPTO_AEAD_TAG_LEN, tag);
    qcrypto_memwipe(&ctx, sizeof(ctx));
}

bool qcrypto_aead_decrypt(const uint8_t key[QCRYPTO_AEAD_KEY_LEN],
                          const uint8_t nonce[QCRYPTO_AEAD_NONCE_LEN],
                          const uint8_t *ad, size_t ad_len,
                          const uint8_t *in, size_t len, uint8_t *out,
                          const uint8_t tag[QCRYPTO_AEAD_TAG_LEN])
{
    struct gcm_aes256_ctx ctx;
    uint8_t computed[QCRYPTO_AEAD_TAG_LEN];
    bool ok;

    aead_start(&ctx, key, nonce, ad, ad_len);
    if (len) {
        gcm_aes256_decrypt(&ctx, len, out, in);
    }
    gcm_aes256_digest(&ctx, QCRYPTO_AEAD_TAG_LEN, computed);
    ok = memeql_sec(computed, tag, QCRYPTO_AEAD_TAG_LEN);
    qcrypto_memwipe(&ctx, sizeof(ctx));
    qcrypto_memwipe(computed, sizeof(computed));
    if (!ok && len) {
        qcrypto_memwipe(out, len);
    }
    return ok;
}
