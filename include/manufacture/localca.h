/*
 * A local certificate authority in a directory, laid out as swtpm-localca
 * keeps it, that issues the TPM's EK and platform certificates (GnuTLS).
 * Profile and layout: docs/manufacture.md.
 */
#ifndef MANUFACTURE_LOCALCA_H
#define MANUFACTURE_LOCALCA_H

#include "qemu/osdep.h"

typedef struct LocalCA LocalCA;

typedef enum LocalCACertType {
    LOCALCA_CERT_EK,
    LOCALCA_CERT_PLATFORM,
} LocalCACertType;

/* The public key a certificate is issued for, as the TPM returned it. */
typedef struct LocalCAPublicKey {
    bool ecc;                   /* false: RSA; true: EC NIST P-256 */
    const uint8_t *rsa_n;       /* modulus, big-endian */
    size_t rsa_n_len;
    uint32_t rsa_e;             /* 0 means 65537, as in TPMS_RSA_PARMS */
    const uint8_t *ecc_x, *ecc_y;
    size_t ecc_x_len, ecc_y_len;
} LocalCAPublicKey;

/*
 * Opens the CA in @dir, creating the directory and the CA (root and
 * signing CA) under the directory's lock when they are not there yet;
 * @created says whether it did.
 */
LocalCA *localca_open(const char *dir, bool *created, GError **errp);
void localca_free(LocalCA *ca);

/*
 * Issues a DER certificate of @type for @key; @vmid (may be NULL) names
 * the subject. Returns a g_malloc'ed buffer in @der.
 */
int localca_issue(LocalCA *ca, LocalCACertType type, const LocalCAPublicKey *key,
                  const char *vmid, uint8_t **der, size_t *der_len,
                  GError **errp);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LocalCA, localca_free)

#endif
