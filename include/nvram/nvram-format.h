/*
 * NVRAM store on-disk structures (docs/nvram-format.md): pure encoders and
 * parsers over buffers with explicit bounds, no I/O, so fuzz targets and
 * hostile-input tests can call them directly.
 */
#ifndef NVRAM_NVRAM_FORMAT_H
#define NVRAM_NVRAM_FORMAT_H

#include "qemu/osdep.h"
#include "qemu/crc32.h"

#define NVRAM_FORMAT_VERSION 1
#define NVRAM_BLOCK_SIZE 4096
#define NVRAM_HEADER_SIZE 128
#define NVRAM_HEADER_COPIES 2
#define NVRAM_HEADER_COPY_STRIDE 2048
#define NVRAM_SLOT_A_OFFSET 4096
#define NVRAM_SLOT_B_OFFSET 8192
#define NVRAM_SLOT_SIZE 4096
#define NVRAM_DIR_SIZE 1024
/* Feature `ordered` (section 4a): the directory's second copy in its slot. */
#define NVRAM_DIR_COPIES 2
#define NVRAM_DIR_COPY_STRIDE 2048
#define NVRAM_DATA_OFFSET 12288
#define NVRAM_DIR_MAX_ENTRIES 8
#define NVRAM_MAX_BLOB_LEN (4u * 1024 * 1024)
/* Blob offsets beyond this are refused (keeps offset + length far from overflow). */
#define NVRAM_MAX_OFFSET (1ULL << 48)
#define NVRAM_UUID_LEN 16
#define NVRAM_SALT_LEN 32
#define NVRAM_KEY_CHECK_LEN 32
#define NVRAM_MAC_LEN 32
#define NVRAM_NONCE_LEN 12
#define NVRAM_TAG_LEN 16
#define NVRAM_BLOB_AD_LEN 36
#define NVRAM_PBKDF2_MIN_ITERATIONS 1000
#define NVRAM_PBKDF2_MAX_ITERATIONS 100000000

#define NVRAM_HEADER_MAGIC "QTPMNVRM"
#define NVRAM_DIR_MAGIC "QTPMDIR1"
#define NVRAM_BLOB_AD_MAGIC "QTPMBLOB"
#define NVRAM_MAGIC_LEN 8

/*
 * Field offsets, named as in the byte tables of docs/nvram-format.md.
 * Integers are big-endian. The code reads and writes fields at these
 * offsets; the packed structures after them restate each table, and the
 * assertions pin every named offset to its field and every structure to
 * its size, so a field that moves or changes size fails the build.
 */

/* Header copy (section 2). */
#define NVRAM_HDR_OFF_MAGIC 0
#define NVRAM_HDR_OFF_VERSION 8
#define NVRAM_HDR_OFF_HEADER_SIZE 12
#define NVRAM_HDR_OFF_INCOMPAT_FLAGS 16
#define NVRAM_HDR_OFF_COMPAT_FLAGS 20
#define NVRAM_HDR_OFF_UUID 24
#define NVRAM_HDR_OFF_TPM_VERSION 40
#define NVRAM_HDR_OFF_RESERVED1 41         /* 3 bytes */
#define NVRAM_HDR_OFF_BLOCK_SIZE 44
#define NVRAM_HDR_OFF_SLOT_A_OFFSET 48
#define NVRAM_HDR_OFF_SLOT_B_OFFSET 56
#define NVRAM_HDR_OFF_SLOT_SIZE 64
#define NVRAM_HDR_OFF_DATA_OFFSET 68
#define NVRAM_HDR_OFF_RESERVED2 76         /* 48 bytes */
#define NVRAM_HDR_OFF_HEADER_CRC 124       /* CRC-32 of the bytes before it */

/* Directory slot (section 3). */
#define NVRAM_DIR_OFF_MAGIC 0
#define NVRAM_DIR_OFF_SLOT_INDEX 8
#define NVRAM_DIR_OFF_N_ENTRIES 12
#define NVRAM_DIR_OFF_GENERATION 16
#define NVRAM_DIR_OFF_UUID 24
#define NVRAM_DIR_OFF_CIPHER 40
#define NVRAM_DIR_OFF_KDF 41
#define NVRAM_DIR_OFF_RESERVED1 42         /* 2 bytes */
#define NVRAM_DIR_OFF_KDF_ITERATIONS 44
#define NVRAM_DIR_OFF_KDF_SALT 48
#define NVRAM_DIR_OFF_KEY_CHECK 80
#define NVRAM_DIR_OFF_ENTRIES 112
#define NVRAM_DIR_OFF_RESERVED2 624        /* 360 bytes */
#define NVRAM_DIR_OFF_DIR_MAC 984          /* covers the bytes before it */
#define NVRAM_DIR_OFF_RESERVED3 1016       /* 4 bytes */
#define NVRAM_DIR_OFF_DIR_CRC 1020         /* CRC-32 of the bytes before it */
#define NVRAM_DIR_MAC_OFFSET NVRAM_DIR_OFF_DIR_MAC

/* Directory entry (section 3). */
#define NVRAM_ENTRY_SIZE 64
#define NVRAM_ENTRY_OFF_TYPE 0
#define NVRAM_ENTRY_OFF_FLAGS 4
#define NVRAM_ENTRY_OFF_OFFSET 8
#define NVRAM_ENTRY_OFF_LENGTH 16
#define NVRAM_ENTRY_OFF_CRC32 20
#define NVRAM_ENTRY_OFF_GENERATION 24
#define NVRAM_ENTRY_OFF_NONCE 32
#define NVRAM_ENTRY_OFF_RESERVED 44        /* 4 bytes */
#define NVRAM_ENTRY_OFF_TAG 48

/* Associated data of a blob's tag (section 5). */
#define NVRAM_AD_OFF_MAGIC 0
#define NVRAM_AD_OFF_UUID 8
#define NVRAM_AD_OFF_TYPE 24
#define NVRAM_AD_OFF_GENERATION 28

/* The byte tables as packed structures: fields follow one another without gaps. */
typedef struct __attribute__((packed)) NvramWireHeader {
    char magic[NVRAM_MAGIC_LEN];
    uint32_t version;
    uint32_t header_size;
    uint32_t incompat_flags;
    uint32_t compat_flags;
    uint8_t uuid[NVRAM_UUID_LEN];
    uint8_t tpm_version;
    uint8_t reserved1[3];
    uint32_t block_size;
    uint64_t slot_a_offset;
    uint64_t slot_b_offset;
    uint32_t slot_size;
    uint64_t data_offset;
    uint8_t reserved2[48];
    uint32_t header_crc;
} NvramWireHeader;

typedef struct __attribute__((packed)) NvramWireEntry {
    uint32_t type;
    uint32_t flags;
    uint64_t offset;
    uint32_t length;
    uint32_t crc32;
    uint64_t generation;
    uint8_t nonce[NVRAM_NONCE_LEN];
    uint8_t reserved[4];
    uint8_t tag[NVRAM_TAG_LEN];
} NvramWireEntry;

typedef struct __attribute__((packed)) NvramWireDirectory {
    char magic[NVRAM_MAGIC_LEN];
    uint32_t slot_index;
    uint32_t n_entries;
    uint64_t generation;
    uint8_t uuid[NVRAM_UUID_LEN];
    uint8_t cipher;
    uint8_t kdf;
    uint8_t reserved1[2];
    uint32_t kdf_iterations;
    uint8_t kdf_salt[NVRAM_SALT_LEN];
    uint8_t key_check[NVRAM_KEY_CHECK_LEN];
    NvramWireEntry entries[NVRAM_DIR_MAX_ENTRIES];
    uint8_t reserved2[360];
    uint8_t dir_mac[NVRAM_MAC_LEN];
    uint8_t reserved3[4];
    uint32_t dir_crc;
} NvramWireDirectory;

typedef struct __attribute__((packed)) NvramWireBlobAd {
    char magic[NVRAM_MAGIC_LEN];
    uint8_t uuid[NVRAM_UUID_LEN];
    uint32_t type;
    uint64_t generation;
} NvramWireBlobAd;

G_STATIC_ASSERT(offsetof(NvramWireHeader, magic) == NVRAM_HDR_OFF_MAGIC);
G_STATIC_ASSERT(offsetof(NvramWireHeader, version) == NVRAM_HDR_OFF_VERSION);
G_STATIC_ASSERT(offsetof(NvramWireHeader, header_size) == NVRAM_HDR_OFF_HEADER_SIZE);
G_STATIC_ASSERT(offsetof(NvramWireHeader, incompat_flags) ==
                NVRAM_HDR_OFF_INCOMPAT_FLAGS);
G_STATIC_ASSERT(offsetof(NvramWireHeader, compat_flags) == NVRAM_HDR_OFF_COMPAT_FLAGS);
G_STATIC_ASSERT(offsetof(NvramWireHeader, uuid) == NVRAM_HDR_OFF_UUID);
G_STATIC_ASSERT(offsetof(NvramWireHeader, tpm_version) == NVRAM_HDR_OFF_TPM_VERSION);
G_STATIC_ASSERT(offsetof(NvramWireHeader, reserved1) == NVRAM_HDR_OFF_RESERVED1);
G_STATIC_ASSERT(offsetof(NvramWireHeader, block_size) == NVRAM_HDR_OFF_BLOCK_SIZE);
G_STATIC_ASSERT(offsetof(NvramWireHeader, slot_a_offset) ==
                NVRAM_HDR_OFF_SLOT_A_OFFSET);
G_STATIC_ASSERT(offsetof(NvramWireHeader, slot_b_offset) ==
                NVRAM_HDR_OFF_SLOT_B_OFFSET);
G_STATIC_ASSERT(offsetof(NvramWireHeader, slot_size) == NVRAM_HDR_OFF_SLOT_SIZE);
G_STATIC_ASSERT(offsetof(NvramWireHeader, data_offset) == NVRAM_HDR_OFF_DATA_OFFSET);
G_STATIC_ASSERT(offsetof(NvramWireHeader, reserved2) == NVRAM_HDR_OFF_RESERVED2);
G_STATIC_ASSERT(offsetof(NvramWireHeader, header_crc) == NVRAM_HDR_OFF_HEADER_CRC);
G_STATIC_ASSERT(sizeof(NvramWireHeader) == NVRAM_HEADER_SIZE);

G_STATIC_ASSERT(offsetof(NvramWireDirectory, magic) == NVRAM_DIR_OFF_MAGIC);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, slot_index) == NVRAM_DIR_OFF_SLOT_INDEX);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, n_entries) == NVRAM_DIR_OFF_N_ENTRIES);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, generation) == NVRAM_DIR_OFF_GENERATION);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, uuid) == NVRAM_DIR_OFF_UUID);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, cipher) == NVRAM_DIR_OFF_CIPHER);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, kdf) == NVRAM_DIR_OFF_KDF);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, reserved1) == NVRAM_DIR_OFF_RESERVED1);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, kdf_iterations) ==
                NVRAM_DIR_OFF_KDF_ITERATIONS);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, kdf_salt) == NVRAM_DIR_OFF_KDF_SALT);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, key_check) == NVRAM_DIR_OFF_KEY_CHECK);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, entries) == NVRAM_DIR_OFF_ENTRIES);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, reserved2) == NVRAM_DIR_OFF_RESERVED2);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, dir_mac) == NVRAM_DIR_OFF_DIR_MAC);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, reserved3) == NVRAM_DIR_OFF_RESERVED3);
G_STATIC_ASSERT(offsetof(NvramWireDirectory, dir_crc) == NVRAM_DIR_OFF_DIR_CRC);
G_STATIC_ASSERT(sizeof(NvramWireDirectory) == NVRAM_DIR_SIZE);

G_STATIC_ASSERT(offsetof(NvramWireEntry, type) == NVRAM_ENTRY_OFF_TYPE);
G_STATIC_ASSERT(offsetof(NvramWireEntry, flags) == NVRAM_ENTRY_OFF_FLAGS);
G_STATIC_ASSERT(offsetof(NvramWireEntry, offset) == NVRAM_ENTRY_OFF_OFFSET);
G_STATIC_ASSERT(offsetof(NvramWireEntry, length) == NVRAM_ENTRY_OFF_LENGTH);
G_STATIC_ASSERT(offsetof(NvramWireEntry, crc32) == NVRAM_ENTRY_OFF_CRC32);
G_STATIC_ASSERT(offsetof(NvramWireEntry, generation) == NVRAM_ENTRY_OFF_GENERATION);
G_STATIC_ASSERT(offsetof(NvramWireEntry, nonce) == NVRAM_ENTRY_OFF_NONCE);
G_STATIC_ASSERT(offsetof(NvramWireEntry, reserved) == NVRAM_ENTRY_OFF_RESERVED);
G_STATIC_ASSERT(offsetof(NvramWireEntry, tag) == NVRAM_ENTRY_OFF_TAG);
G_STATIC_ASSERT(sizeof(NvramWireEntry) == NVRAM_ENTRY_SIZE);

G_STATIC_ASSERT(offsetof(NvramWireBlobAd, magic) == NVRAM_AD_OFF_MAGIC);
G_STATIC_ASSERT(offsetof(NvramWireBlobAd, uuid) == NVRAM_AD_OFF_UUID);
G_STATIC_ASSERT(offsetof(NvramWireBlobAd, type) == NVRAM_AD_OFF_TYPE);
G_STATIC_ASSERT(offsetof(NvramWireBlobAd, generation) == NVRAM_AD_OFF_GENERATION);
G_STATIC_ASSERT(sizeof(NvramWireBlobAd) == NVRAM_BLOB_AD_LEN);

/* The layout of section 1: block 0, slot A, slot B, then the data area. */
G_STATIC_ASSERT(NVRAM_HEADER_COPIES * NVRAM_HEADER_COPY_STRIDE == NVRAM_BLOCK_SIZE);
G_STATIC_ASSERT(NVRAM_HEADER_SIZE <= NVRAM_HEADER_COPY_STRIDE);
G_STATIC_ASSERT(NVRAM_SLOT_A_OFFSET == NVRAM_BLOCK_SIZE);
G_STATIC_ASSERT(NVRAM_SLOT_B_OFFSET == NVRAM_SLOT_A_OFFSET + NVRAM_SLOT_SIZE);
G_STATIC_ASSERT(NVRAM_DATA_OFFSET == NVRAM_SLOT_B_OFFSET + NVRAM_SLOT_SIZE);
G_STATIC_ASSERT(NVRAM_SLOT_SIZE == NVRAM_BLOCK_SIZE);
G_STATIC_ASSERT(NVRAM_DIR_SIZE <= NVRAM_SLOT_SIZE);

/* Header incompat_flags (section 2). */
#define NVRAM_INCOMPAT_ORDERED (1u << 0)
#define NVRAM_INCOMPAT_KNOWN NVRAM_INCOMPAT_ORDERED

G_STATIC_ASSERT(NVRAM_DIR_COPIES * NVRAM_DIR_COPY_STRIDE == NVRAM_SLOT_SIZE);
G_STATIC_ASSERT(NVRAM_DIR_SIZE <= NVRAM_DIR_COPY_STRIDE);

enum {
    NVRAM_CIPHER_NONE = 0,
    NVRAM_CIPHER_AES256_GCM = 1,
};

enum {
    NVRAM_KDF_NONE = 0,
    NVRAM_KDF_RAW = 1,
    NVRAM_KDF_PBKDF2_SHA256 = 2,
};

typedef struct NvramHeader {
    uint32_t version;
    uint32_t incompat_flags;    /* NVRAM_INCOMPAT_* */
    uint32_t compat_flags;
    uint8_t uuid[NVRAM_UUID_LEN];
    uint8_t tpm_version;
} NvramHeader;

/* What the header block parse found, per copy, for nvram_check's report. */
typedef struct NvramHeaderReport {
    bool copy_ok[NVRAM_HEADER_COPIES];
    bool padding_ok;
    char *problem;      /* g_malloc'ed sentence when something is damaged */
} NvramHeaderReport;

typedef struct NvramKeyRecord {
    uint8_t cipher;
    uint8_t kdf;
    uint32_t kdf_iterations;
    uint8_t kdf_salt[NVRAM_SALT_LEN];
    uint8_t key_check[NVRAM_KEY_CHECK_LEN];
} NvramKeyRecord;

typedef struct NvramDirEntry {
    uint32_t type;
    uint64_t offset;
    uint32_t length;
    uint32_t crc32;
    uint64_t generation;
    uint8_t nonce[NVRAM_NONCE_LEN];
    uint8_t tag[NVRAM_TAG_LEN];
} NvramDirEntry;

typedef struct NvramDirectory {
    uint32_t slot_index;
    uint64_t generation;
    uint8_t uuid[NVRAM_UUID_LEN];
    NvramKeyRecord key;
    unsigned n_entries;
    NvramDirEntry entries[NVRAM_DIR_MAX_ENTRIES];
    uint8_t mac[NVRAM_MAC_LEN];
} NvramDirectory;

/* Fills a whole header block (NVRAM_BLOCK_SIZE bytes): both copies. */
void nvram_header_encode(const NvramHeader *h, uint8_t *block);

/*
 * Parses a header block of @len bytes (normally NVRAM_BLOCK_SIZE; shorter
 * buffers are treated as zero-padded). Uses the first copy that verifies.
 * Errors: QTPM_ERROR_NOT_FOUND (no magic in any copy), _UNSUPPORTED (a newer
 * version or unknown incompatible flags), _CORRUPT. @report may be NULL; when
 * given it is filled on success and failure (free report->problem).
 */
bool nvram_header_parse(const uint8_t *block, size_t len, NvramHeader *h,
                        NvramHeaderReport *report, GError **errp);

/* True when all @len bytes are zero. */
bool nvram_buffer_is_zero(const uint8_t *buf, size_t len);

/*
 * Fills a slot (NVRAM_SLOT_SIZE bytes) from @d. With @mac_key the dir_mac
 * is computed (and stored back into d->mac); without, it is zero.
 */
void nvram_dir_encode(NvramDirectory *d, const uint8_t *mac_key, uint8_t *slot);

/*
 * Parses a slot of @len bytes expected at @slot_index of the image with
 * @uuid: CRC, magic, structure, padding. Does not check the MAC (that needs a
 * key): see nvram_dir_mac_ok(). Errors are QTPM_ERROR_CORRUPT.
 */
bool nvram_dir_parse(const uint8_t *slot, size_t len, unsigned slot_index,
                     const uint8_t uuid[NVRAM_UUID_LEN], NvramDirectory *d,
                     GError **errp);

/*
 * The same for a slot of an `ordered` image (section 4a): each copy is
 * parsed on its own and @d is the readable copy of the higher generation.
 * @copy_ok (may be NULL) says which copies are readable; @used_copy which
 * one @d came from (its bytes are at slot + used_copy * NVRAM_DIR_COPY_STRIDE).
 * Fails when no copy is readable, naming each copy's cause.
 */
bool nvram_dir_parse_ordered(const uint8_t *slot, size_t len, unsigned slot_index,
                             const uint8_t uuid[NVRAM_UUID_LEN], NvramDirectory *d,
                             bool copy_ok[NVRAM_DIR_COPIES], unsigned *used_copy,
                             GError **errp);

/* Fills a slot of an `ordered` image: the directory of nvram_dir_encode twice. */
void nvram_dir_encode_ordered(NvramDirectory *d, const uint8_t *mac_key,
                              uint8_t *slot);

bool nvram_dir_mac_ok(const uint8_t *slot, size_t len, const uint8_t *mac_key);

/* The associated data of a blob's AES-GCM tag (NVRAM_BLOB_AD_LEN bytes). */
void nvram_blob_ad(const uint8_t uuid[NVRAM_UUID_LEN], uint32_t type,
                   uint64_t generation, uint8_t *ad);

/* Rounds a blob length up to whole blocks. */
static inline uint64_t nvram_extent_len(uint32_t length)
{
    return QEMU_ALIGN_UP((uint64_t)length, NVRAM_BLOCK_SIZE);
}

#endif
