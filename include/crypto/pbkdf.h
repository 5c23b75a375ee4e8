/*
 * PBKDF2-HMAC-SHA256 (RFC 8018) for passphrases.
 */
#ifndef CRYPTO_PBKDF_H
#define CRYPTO_PBKDF_H

#include "qemu/osdep.h"

#define QCRYPTO_PBKDF2_DEFAULT_ITERATIONS 600000

void qcrypto_pbkdf2_sha256(const uint8_t *pass, size_t pass_len,
                           const uint8_t *salt, size_t salt_len,
                           uint32_t iterations, uint8_t *out, size_t out_len);

#endif
