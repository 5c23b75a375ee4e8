/*
 * PBKDF2-HMAC-SHA256 through nettle.
 */
#include "qemu/osdep.h"

#include <nettle/hmac.h>
#include <nettle/pbkdf2.h>

#include "crypto/pbkdf.h"
#include "crypto/secret.h"

void qcrypto_pbkdf2_sha256(const uint8_t *pass, size_t pass_len,
                           const uint8_t *salt, size_t salt_len,
                           uint32_t iterations, uint8_t *out, size_t out_len)
{
    /*
     * nettle's pbkdf2_hmac_sha256() keeps the HMAC state keyed with the
     * passphrase on its stack and leaves it there; this one is wiped.
     */
    struct hmac_sha256_ctx ctx;

    hmac_sha256_set_key(&ctx, pass_len, pass);
    pbkdf2(&ctx, (nettle_hash_update_func *)hmac_sha256_update,
           (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE,
           iterations, salt_len, salt, out_len, out);
    qcrypto_memwipe(&ctx, sizeof(ctx));
}
