/*
 * Secrets given on the command line, QEMU style:
 *   -object secret,id=ID,file=PATH[,format=raw|base64|hex]
 *   -object secret,id=ID,data=STRING[,format=raw|base64|hex]
 * The bytes are wiped when the secret is freed and never logged.
 */
#ifndef CRYPTO_SECRET_H
#define CRYPTO_SECRET_H

#include "qemu/osdep.h"
#include "crypto/key.h"
#include "qemu/option.h"

typedef struct QCryptoSecret QCryptoSecret;

/*
 * The most bytes a secret's file or data= may hold before decoding; a
 * larger one is refused without reading further (a key or a passphrase
 * is far below it; /dev/zero never ends).
 */
#define QCRYPTO_SECRET_MAX_LEN 8192

/* -object secret's keys, "qom-type" included. */
extern const QemuOptDesc qcrypto_secret_opts[];
/* Checks -object secret's options without loading anything. */
bool qcrypto_secret_check_opts(GHashTable *opts, GError **errp);

/* @opts: the object's properties ("id", "file"/"data", "format"). */
QCryptoSecret *qcrypto_secret_new(GHashTable *opts, GError **errp);
QCryptoSecret *qcrypto_secret_lookup(const char *id);
const uint8_t *qcrypto_secret_data(QCryptoSecret *s, size_t *len);
void qcrypto_secret_free(QCryptoSecret *s);
void qcrypto_secret_free_all(void);

#endif
