/*
 * Key material handed between the modules that hold a secret and those that
 * encrypt with it (the NVRAM store, the migration stream).
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

#endif
