/*
 * PBKDF2-HMAC-SHA256 (RFC 8018) for passphrases.
 */
#ifndef CRYPTO_PBKDF_H
#define CRYPTO_PBKDF_H

#include "qemu/osdep.h"

#define QCRYPTO_PBKDF2_DEFAULT_ITERATIONS 600000
/*
 * The most iterations an image or a stream may ask for: 10 million, about
 * 17 times the default (OWASP's 2023 figure for PBKDF2-HMAC-SHA256) and
 * above what cryptsetup's 2-second benchmark picks on a fast CPU; a few
 * seconds here (docs/keys.md). A count above it is refused before any work.
 */
#define QCRYPTO_PBKDF2_MAX_ITERATIONS 10000000
/* The fewest a new passphrase may be given (qtpm-img rekey, docs/keys.md). */
#define QCRYPTO_PBKDF2_MIN_ITERATIONS 100000

void qcrypto_pbkdf2_sha256(const uint8_t *pass, size_t pass_len,
                           const uint8_t *salt, size_t salt_len,
                           uint32_t iterations, uint8_t *out, size_t out_len);

#endif
