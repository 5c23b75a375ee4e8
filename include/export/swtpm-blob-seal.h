/*
 * Sealed swtpm state blobs: what a keyed qtpm hands out with
 * CMD_GET_STATEBLOB and takes back with CMD_SET_STATEBLOB. Pure functions
 * over buffers (plus the random salt and nonces); docs/swtpm-protocol.md
 * "Sealed state blob" has the byte table.
 */
#ifndef EXPORT_SWTPM_BLOB_SEAL_H
#define EXPORT_SWTPM_BLOB_SEAL_H

#include "qemu/osdep.h"
#include "crypto/key.h"

#define SWTPM_SEAL_MAGIC "QTPMSBLB"
#define SWTPM_SEAL_VERSION 1
#define SWTPM_SEAL_HEADER_SIZE 72
#define SWTPM_SEAL_OVERHEAD (SWTPM_SEAL_HEADER_SIZE + 16)
/*
 * The largest plain blob a sealed one may carry: the sealed blob must fit
 * in one SET_STATEBLOB (SWTPM_CTRL_DATA_MAX, 1 MiB).
 */
#define SWTPM_SEAL_PLAIN_MAX ((1u << 20) - SWTPM_SEAL_OVERHEAD)
/* Above this a passphrase blob's iteration count is refused as damaged. */
#define SWTPM_SEAL_ITERATIONS_MAX 10000000u

typedef enum SwtpmSealStatus {
    SWTPM_SEAL_OK,
    SWTPM_SEAL_WRONG_KEY,     /* the key check value differs */
    SWTPM_SEAL_DAMAGED,       /* malformed, another type, or a failing tag */
} SwtpmSealStatus;

/*
 * Keys derived for one salt, kept so that a passphrase is stretched once
 * per export rather than once per blob. Wiped when freed.
 */
typedef struct SwtpmSealKeys SwtpmSealKeys;

SwtpmSealKeys *swtpm_seal_keys_new(void);
void swtpm_seal_keys_free(SwtpmSealKeys *k);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SwtpmSealKeys, swtpm_seal_keys_free)

/*
 * Seals @len bytes of the plain blob of @type under @key (raw or
 * passphrase). Returns the sealed blob (g_free) and its size in
 * *@out_len, or NULL with @errp set.
 */
uint8_t *swtpm_blob_seal(SwtpmSealKeys *k, const QCryptoKey *key, uint32_t type,
                         const uint8_t *in, size_t len, size_t *out_len,
                         GError **errp);

/*
 * Verifies and opens a sealed blob that came with SET_STATEBLOB of @type.
 * On SWTPM_SEAL_OK *@out (free with qcrypto_free_wiped) holds *@out_len
 * plain bytes; otherwise nothing is returned.
 */
SwtpmSealStatus swtpm_blob_open(SwtpmSealKeys *k, const QCryptoKey *key,
                                uint32_t type, const uint8_t *in, size_t len,
                                uint8_t **out, size_t *out_len);

#endif
