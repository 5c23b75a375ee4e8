/*
 * swtpm state files: the blob header (version 1 and 2) and the
 * tag-length-value body that swtpm's "dir" backend writes as
 * tpm2-00.permall, tpm2-00.volatilestate and tpm2-00.savestate.
 * Byte tables: docs/swtpm-state.md.
 *
 * Pure functions over buffers with explicit bounds: no I/O, no globals, so
 * that a fuzz target can call them with any bytes.
 */
#ifndef QEMU_SWTPM_BLOB_H
#define QEMU_SWTPM_BLOB_H

#include "qemu/osdep.h"

/* docs/swtpm-state.md "Blob header" */
#define SWTPM_BLOB_HEADER_SIZE 10
#define SWTPM_BLOB_VERSION 2

#define SWTPM_BLOB_FLAG_ENCRYPTED 0x01
#define SWTPM_BLOB_FLAG_MIGRATION_ENCRYPTED 0x02
#define SWTPM_BLOB_FLAG_MIGRATION_DATA 0x04
#define SWTPM_BLOB_FLAG_ENCRYPTED_256BIT_KEY 0x08
#define SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY 0x10

/* docs/swtpm-state.md "TLV body" */
#define SWTPM_TAG_DATA 1
#define SWTPM_TAG_ENCRYPTED_DATA 2
#define SWTPM_TAG_HMAC 3
#define SWTPM_TAG_MIGRATION_DATA 4
#define SWTPM_TAG_ENCRYPTED_MIGRATION_DATA 5
#define SWTPM_TAG_IVEC_ENCRYPTED_DATA 6
#define SWTPM_TAG_IVEC_ENCRYPTED_MIGRATION_DATA 7

#define SWTPM_TLV_HEADER_SIZE 6
#define SWTPM_HMAC_SIZE 32
#define SWTPM_KEY_MAX 32

typedef struct SwtpmBlobHeader {
    uint8_t version;
    uint8_t min_version;
    uint16_t hdrsize;
    uint16_t flags;
    uint32_t totlen;
} SwtpmBlobHeader;

typedef struct SwtpmTlv {
    uint16_t tag;
    uint32_t length;
    const uint8_t *value;   /* points into the parsed buffer */
} SwtpmTlv;

/* A swtpm state key: AES-128 (16 bytes) or AES-256 (32 bytes). */
typedef struct SwtpmKey {
    uint8_t bytes[SWTPM_KEY_MAX];
    size_t len;
} SwtpmKey;

typedef enum SwtpmKdf {
    SWTPM_KDF_PBKDF2,   /* swtpm's default: PBKDF2-HMAC-SHA512 */
    SWTPM_KDF_SHA512,   /* the first bytes of SHA-512(passphrase) */
} SwtpmKdf;

typedef enum SwtpmKeyFormat {
    SWTPM_KEY_FORMAT_BINARY,
    SWTPM_KEY_FORMAT_HEX,
} SwtpmKeyFormat;

/*
 * Parses and checks the header at the start of @buf (the whole file).
 * @what names the file in error sentences.
 */
bool swtpm_blob_parse_header(const uint8_t *buf, size_t len, const char *what,
                             SwtpmBlobHeader *hdr, GError **errp);

/*
 * Checks that @buf (the body after the header) is a well-formed sequence of
 * TLVs with no trailing bytes, and finds the first one with @tag.
 * Returns 1 found, 0 not found, -1 malformed.
 */
int swtpm_tlv_find(const uint8_t *buf, size_t len, uint16_t tag,
                   const char *what, SwtpmTlv *out, GError **errp);

/*
 * Decodes a whole swtpm state file into the libtpms blob it holds
 * (g_malloc'ed into @out). @key may be NULL. An encrypted file needs the key
 * (QTPM_ERROR_NO_KEY); a key that fails its HMAC gives QTPM_ERROR_WRONG_KEY;
 * a plain file given a key gives QTPM_ERROR_INVALID, because the caller
 * believed it encrypted. Anything malformed gives QTPM_ERROR_CORRUPT.
 */
bool swtpm_blob_decode(const uint8_t *buf, size_t len, const SwtpmKey *key,
                       const char *what, uint8_t **out, size_t *out_len,
                       GError **errp);

/*
 * Whether @buf is a state blob as swtpm's CMD_GET_STATEBLOB hands it out: a
 * blob header with the migration flags, its size matching @len. libtpms's
 * own blobs never start like one (their magic sits where hdrsize is).
 */
bool swtpm_blob_is_migration(const uint8_t *buf, size_t len);

/*
 * Decodes a plain blob from swtpm's CMD_GET_STATEBLOB (DECRYPTED, no
 * --migration-key; swtpm_blob_decode_migration_key with no key): the migration TLV around the state file's TLVs, into
 * the libtpms blob it holds. Blobs sealed under swtpm's migration key or
 * still under its state key give QTPM_ERROR_UNSUPPORTED; anything malformed
 * QTPM_ERROR_CORRUPT.
 */
bool swtpm_blob_decode_migration(const uint8_t *buf, size_t len,
                                 const char *what, uint8_t **out,
                                 size_t *out_len, GError **errp);

/*
 * swtpm's --migration-key. A key file holds one key, whose size is the
 * cipher's; a passphrase gives a key of either size (mode= decides in
 * swtpm), so both are kept and the blob's header picks. An empty slot has
 * len 0.
 */
typedef struct SwtpmMigrationKey {
    SwtpmKey aes128;
    SwtpmKey aes256;
} SwtpmMigrationKey;

/*
 * Decodes a blob from swtpm's CMD_GET_STATEBLOB (DECRYPTED), plain or
 * sealed under swtpm's --migration-key, into the libtpms blob it holds.
 * @mkey may be NULL. A sealed blob without a key gives QTPM_ERROR_NO_KEY;
 * one whose HMAC fails under the key, or sealed under a key size @mkey does
 * not have, QTPM_ERROR_WRONG_KEY (swtpm's format cannot tell a wrong key
 * from damage under the seal); a blob still under swtpm's state key
 * QTPM_ERROR_UNSUPPORTED; anything malformed QTPM_ERROR_CORRUPT.
 */
bool swtpm_blob_decode_migration_key(const uint8_t *buf, size_t len,
                                     const SwtpmMigrationKey *mkey,
                                     const char *what, uint8_t **out,
                                     size_t *out_len, GError **errp);

/*
 * A blob as swtpm's CMD_GET_STATEBLOB hands it out with DECRYPTED: plain
 * (@key NULL) or sealed under the migration key @key exactly as swtpm seals
 * it, @iv holding key->len bytes.
 */
uint8_t *swtpm_blob_encode_migration(const uint8_t *data, size_t len,
                                     const SwtpmKey *key, const uint8_t *iv,
                                     size_t *out_len);

/*
 * A migration key from a passphrase (swtpm's --migration-key pwdfile= or
 * pwdfd=): both sizes, derived as swtpm_key_from_passphrase does.
 */
void swtpm_migration_key_from_passphrase(const uint8_t *pass, size_t len,
                                         SwtpmKdf kdf, SwtpmMigrationKey *mkey);
/* A migration key from one key (swtpm's --migration-key file= or fd=). */
void swtpm_migration_key_from_key(const SwtpmKey *key, SwtpmMigrationKey *mkey);

/* Whether the file's header says it is encrypted (false on a bad header). */
bool swtpm_blob_is_encrypted(const uint8_t *buf, size_t len);

/* A version 2 plain file (header + one TAG_DATA) that swtpm loads. */
uint8_t *swtpm_blob_encode_plain(const uint8_t *data, size_t len,
                                 size_t *out_len);

/*
 * A version 2 encrypted file as swtpm writes it: AES-CBC with the key's
 * size, padded to the key length, HMAC-SHA256 keyed with the key over
 * ciphertext || IV. @iv holds key->len bytes (swtpm's IV length).
 */
uint8_t *swtpm_blob_encode_encrypted(const uint8_t *data, size_t len,
                                     const SwtpmKey *key, const uint8_t *iv,
                                     size_t *out_len);

/*
 * Parses a key file's contents as swtpm's --key format=hex|binary reads it:
 * binary is exactly 16 or 32 bytes; hex is 32 or 64 hex digits, an optional
 * leading "0x" and trailing white space.
 */
bool swtpm_key_parse(const uint8_t *buf, size_t len, SwtpmKeyFormat format,
                     const char *what, SwtpmKey *key, GError **errp);


/*
 * Derives a @keylen-byte (16 or 32) key from a passphrase file's contents as
 * swtpm's --key pwdfile=F,kdf=... does: PBKDF2-HMAC-SHA512 with the salt
 * "swtpm" and 1000 iterations, or a truncated SHA-512.
 */
void swtpm_key_from_passphrase(const uint8_t *pass, size_t len, SwtpmKdf kdf,
                               size_t keylen, SwtpmKey *key);

/*
 * The key length a file was encrypted with (16 or 32), from its header;
 * 0 when the header is bad or the file is not encrypted.
 */
size_t swtpm_blob_key_length(const uint8_t *buf, size_t len);

#endif
