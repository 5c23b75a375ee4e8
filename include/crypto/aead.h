/*
 * AES-256-GCM (GnuTLS) with a 96-bit nonce and a 128-bit tag.
 */
#ifndef CRYPTO_AEAD_H
#define CRYPTO_AEAD_H

#include "qemu/osdep.h"

#define QCRYPTO_AEAD_KEY_LEN 32
#define QCRYPTO_AEAD_NONCE_LEN 12
#define QCRYPTO_AEAD_TAG_LEN 16

/* Encrypts @len bytes of @in into @out (may be the same buffer). */
void qcrypto_aead_encrypt(const uint8_t key[QCRYPTO_AEAD_KEY_LEN],
                          const uint8_t nonce[QCRYPTO_AEAD_NONCE_LEN],
                          const uint8_t *ad, size_t ad_len,
                          const uint8_t *in, size_t len, uint8_t *out,
                          uint8_t tag[QCRYPTO_AEAD_TAG_LEN]);

/*
 * Decrypts and checks the tag in constant time. On a tag mismatch returns
 * false and leaves @out wiped, so unauthenticated plaintext never escapes.
 */
bool qcrypto_aead_decrypt(const uint8_t key[QCRYPTO_AEAD_KEY_LEN],
                          const uint8_t nonce[QCRYPTO_AEAD_NONCE_LEN],
                          const uint8_t *ad, size_t ad_len,
                          const uint8_t *in, size_t len, uint8_t *out,
                          const uint8_t tag[QCRYPTO_AEAD_TAG_LEN]);

#endif
