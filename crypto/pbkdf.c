/*
 * PBKDF2-HMAC-SHA256 through nettle.
 */
#include "qemu/osdep.h"

#include <nettle/pbkdf2.h>

#include "crypto/pbkdf.h"

void qcrypto_pbkdf2_sha256(const uint8_t *pass, size_t pass_len,
                           const uint8_t *salt, size_t salt_len,
                           uint32_t iterations, uint8_t *out, size_t out_len)
{
    pbkdf2_hmac_sha256(pass_len, pass, iterations, salt_len, salt, out_len, out);
}
