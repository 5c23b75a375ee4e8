/*
 * Random bytes from the kernel (getrandom(2)), for keys, salts and nonces.
 */
#ifndef CRYPTO_RANDOM_H
#define CRYPTO_RANDOM_H

#include "qemu/osdep.h"

/* Fills @buf with @len random bytes. 0 on success, -1 with @errp set. */
int qcrypto_random_bytes(void *buf, size_t len, GError **errp);

#endif
