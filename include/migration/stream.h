/*
 * Migration stream codec: pure encoder and decoder over buffers.
 * Format: docs/migration-stream.md.
 */
#ifndef MIGRATION_STREAM_H
#define MIGRATION_STREAM_H

#include "qemu/osdep.h"
#include "crypto/key.h"

#define MIG_STREAM_MAGIC "QTPM-MIG"
#define MIG_STREAM_MAGIC_SIZE 8
#define MIG_STREAM_VERSION 1
#define MIG_HEADER_SIZE 128
#define MIG_SECTION_HEADER_SIZE 16
#define MIG_SECTION_CRC_SIZE 4
#define MIG_UUID_SIZE 16
#define MIG_SALT_SIZE 32
#define MIG_KEY_CHECK_SIZE 32
#define MIG_SEAL_NONCE_SIZE 12
#define MIG_SEAL_TAG_SIZE 16
#define MIG_SEAL_OVERHEAD (MIG_SEAL_NONCE_SIZE + MIG_SEAL_TAG_SIZE)
#define MIG_KDF_ITERATIONS_MIN 1000
#define MIG_KDF_ITERATIONS_MAX 2097152
#define MIG_KDF_ITERATIONS_DEFAULT 10000

/* Header flags */
#define MIG_FLAG_ENCRYPTED (1u << 0)
#define MIG_FLAG_SOURCE_RUNNING (1u << 1)
#define MIG_FLAGS_KNOWN (MIG_FLAG_ENCRYPTED | MIG_FLAG_SOURCE_RUNNING)

/* Section flags */
#define MIG_SECTION_SEALED (1u << 0)

typedef enum MigSectionType {
    MIG_SECTION_TIS = 1,
    MIG_SECTION_TPM_VOLATILE = 2,
    MIG_SECTION_TPM_PERMANENT = 3,
    MIG_SECTION_TPM_SAVESTATE = 4,
    MIG_SECTION_END = 0x454e4421, /* "END!" */
} MigSectionType;
#define MIG_SECTION_DATA_MAX 4 /* highest data section type */

typedef enum MigStorageMode {
    MIG_STORAGE_AUTO = 0,
    MIG_STORAGE_SHARED = 1,
    MIG_STORAGE_NON_SHARED = 2,
} MigStorageMode;

/*
 * The bytes on the wire (docs/migration-stream.md sections 1 and 2): packed,
 * every integer big endian. The codec reads and writes fields by these names;
 * the assertions pin the layout to the document's tables.
 */
typedef struct __attribute__((packed)) MigWireHeader {
    char magic[MIG_STREAM_MAGIC_SIZE];
    uint32_t version;
    uint32_t header_length;
    uint32_t flags;
    uint32_t storage;
    uint32_t tpm_version;
    uint8_t image_uuid[MIG_UUID_SIZE];
    uint64_t generation;
    uint32_t key_kind;
    uint32_t kdf_iterations;
    uint8_t stream_salt[MIG_SALT_SIZE];
    uint8_t key_check[MIG_KEY_CHECK_SIZE];
    uint32_t header_crc;      /* CRC32 of every byte before it */
} MigWireHeader;

G_STATIC_ASSERT(offsetof(MigWireHeader, image_uuid) == 28);
G_STATIC_ASSERT(offsetof(MigWireHeader, generation) == 44);
G_STATIC_ASSERT(offsetof(MigWireHeader, stream_salt) == 60);
G_STATIC_ASSERT(offsetof(MigWireHeader, header_crc) == 124);
G_STATIC_ASSERT(sizeof(MigWireHeader) == MIG_HEADER_SIZE);

/* Followed by @length payload bytes and a CRC32 of header and payload. */
typedef struct __attribute__((packed)) MigWireSection {
    uint32_t type;
    uint32_t seq;
    uint32_t length;
    uint32_t sflags;
} MigWireSection;

G_STATIC_ASSERT(sizeof(MigWireSection) == MIG_SECTION_HEADER_SIZE);

/* The decoded header, host byte order. */
typedef struct MigStreamHeader {
    uint32_t version;
    uint32_t flags;
    MigStorageMode storage;
    uint32_t tpm_version;
    uint8_t image_uuid[MIG_UUID_SIZE];
    uint64_t generation;
    uint32_t key_kind; /* QCryptoKeyKind */
    uint32_t kdf_iterations;
    uint8_t stream_salt[MIG_SALT_SIZE];
    uint8_t key_check[MIG_KEY_CHECK_SIZE];
} MigStreamHeader;

/* A decoded (or to-be-encoded) stream: header and plaintext sections. */
typedef struct MigStreamContents {
    MigStreamHeader header;
    GBytes *section[MIG_SECTION_DATA_MAX + 1]; /* indexed by type; NULL if absent */
} MigStreamContents;

const char *mig_section_type_name(uint32_t type);
const char *mig_storage_mode_name(MigStorageMode mode);
/* "auto", "shared", "non-shared"; false on anything else. */
bool mig_storage_mode_parse(const char *s, MigStorageMode *mode);
/* Largest plaintext payload of a section type, 0 for unknown types. */
size_t mig_section_max_len(uint32_t type);

MigStreamContents *mig_stream_contents_new(void);
void mig_stream_contents_free(MigStreamContents *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigStreamContents, mig_stream_contents_free)

/*
 * Encoder. @hdr supplies flags (ENCRYPTED is set from @key), storage,
 * tpm_version, image_uuid, generation and, for a passphrase,
 * kdf_iterations (0 = default); salt and key-check value are generated.
 * @key NULL or kind QCRYPTO_KEY_NONE: an unencrypted stream.
 */
typedef struct MigStreamEncoder MigStreamEncoder;
MigStreamEncoder *mig_stream_encoder_new(const MigStreamHeader *hdr, const QCryptoKey *key,
                                         GError **errp);
void mig_stream_encoder_free(MigStreamEncoder *e);
const MigStreamHeader *mig_stream_encoder_header(MigStreamEncoder *e);
void mig_stream_encode_header(MigStreamEncoder *e, GByteArray *out);
int mig_stream_encode_section(MigStreamEncoder *e, MigSectionType type,
                              const uint8_t *data, size_t len, GByteArray *out,
                              GError **errp);
int mig_stream_encode_end(MigStreamEncoder *e, GByteArray *out, GError **errp);
/* Whole stream: header, the present sections in type order, END. */
int mig_stream_encode(const MigStreamContents *c, const QCryptoKey *key, GByteArray *out,
                      GError **errp);

/*
 * Incremental decoder: ask how many bytes the next unit takes, read exactly
 * that many, push them. Nothing is allocated for a section before its length
 * has been checked against its type's bound. The header push verifies the key
 * (QTPM_ERROR_WRONG_KEY / _NO_KEY) before any section is read.
 * @key NULL or kind QCRYPTO_KEY_NONE: the target holds no key.
 */
typedef struct MigStreamDecoder MigStreamDecoder;
MigStreamDecoder *mig_stream_decoder_new(const QCryptoKey *key);
void mig_stream_decoder_free(MigStreamDecoder *d);
/* Bytes the next push must carry; 0 once END was accepted or after an error. */
size_t mig_stream_decoder_need(MigStreamDecoder *d);
int mig_stream_decoder_push(MigStreamDecoder *d, const uint8_t *buf, size_t len,
                            GError **errp);
/* The verified header, or NULL before the header push succeeded. */
const MigStreamHeader *mig_stream_decoder_header(MigStreamDecoder *d);
bool mig_stream_decoder_done(MigStreamDecoder *d);
/* After done: the decoded contents (caller owns). */
MigStreamContents *mig_stream_decoder_steal(MigStreamDecoder *d);

/* Whole buffer (tests, fuzzing); trailing bytes after END are an error. */
int mig_stream_decode(const uint8_t *buf, size_t len, const QCryptoKey *key,
                      MigStreamContents **out, GError **errp);

/* Pure header codec (docs/migration-stream.md section 1). */
void mig_stream_header_pack(const MigStreamHeader *h, uint8_t *buf);
int mig_stream_header_parse(const uint8_t *buf, size_t len, MigStreamHeader *h,
                            GError **errp);

#endif
