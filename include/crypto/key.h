/*
 * Key material handed to the NVRAM store and the migration stream. The kind
 * values are on the wire (migration stream header): never renumber them.
 */
#ifndef CRYPTO_KEY_H
#define CRYPTO_KEY_H

#include "qemu/osdep.h"

typedef enum QCryptoKeyKind {
    QCRYPTO_KEY_NONE = 0,
    QCRYPTO_KEY_RAW,          /* 32 bytes */
    QCRYPTO_KEY_PASSPHRASE,   /* stretched with PBKDF2-HMAC-SHA256 and a salt */
} QCryptoKeyKind;

typedef struct QCryptoKey {
    QCryptoKeyKind kind;
    const uint8_t *data;
    size_t len;
} QCryptoKey;

/* Overwrites @len bytes at @p in a way the compiler keeps (crypto/secret.c). */
void qcrypto_memwipe(void *p, size_t len);
/* Wipes @len bytes at *@p, frees them and sets *@p to NULL. */
void qcrypto_free_wiped(uint8_t **p, size_t len);

#endif
