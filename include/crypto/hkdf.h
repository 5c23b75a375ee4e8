/*
 * HMAC-SHA256 and HKDF-SHA256 (RFC 5869), nettle underneath.
 */
#ifndef CRYPTO_HKDF_H
#define CRYPTO_HKDF_H

#include "qemu/osdep.h"

#define QCRYPTO_SHA256_LEN 32

void qcrypto_hmac_sha256(const uint8_t *key, size_t key_len,
                         const uint8_t *data, size_t len,
                         uint8_t out[QCRYPTO_SHA256_LEN]);

/*
 * Extract with @salt, then expand with @info into @out_len bytes
 * (at most 255 * 32). Returns false when @out_len is too large.
 */
bool qcrypto_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
                         const uint8_t *salt, size_t salt_len,
                         const uint8_t *info, size_t info_len,
                         uint8_t *out, size_t out_len);

/* Constant-time equality of two buffers of @len bytes. */
bool qcrypto_mem_equal(const void *a, const void *b, size_t len);

#endif
