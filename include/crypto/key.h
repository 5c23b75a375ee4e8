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

/*
 * Memory for key material: its own pages, locked in RAM when RLIMIT_MEMLOCK
 * allows (so they are never swapped), left out of core dumps
 * (MADV_DONTDUMP) and of a child's copy (MADV_WIPEONFORK). Zero-filled;
 * never NULL (aborts on mmap failure as g_malloc does).
 */
void *qcrypto_secure_alloc(size_t len);
/* Wipes and unmaps what qcrypto_secure_alloc(@len) returned; NULL is a no-op. */
void qcrypto_secure_free(void *p, size_t len);

#endif
