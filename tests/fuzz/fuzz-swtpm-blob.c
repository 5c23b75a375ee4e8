/*
 * swtpm state blobs on hostile bytes (docs/swtpm-blobs.md): state files,
 * plain and under a 128- or 256-bit state key; migration blobs, plain and
 * under swtpm's migration key; key files in both formats; and the blobs the
 * export seals for QEMU (export/swtpm/swtpm-blob-seal.c), opened under a raw
 * key for each blob type.
 */
#include "fuzz-util.h"
#include "export/swtpm-blob-seal.h"
#include "qemu/swtpm-blob.h"

static SwtpmSealKeys *seal_keys;
static SwtpmKey key128, key256;
static SwtpmMigrationKey mkey;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    seal_keys = swtpm_seal_keys_new();
    key128.len = 16;
    memset(key128.bytes, 0x11, 16);
    key256.len = 32;
    memset(key256.bytes, 0x22, 32);
    mkey.aes128 = key128;
    mkey.aes256 = key256;
    return 0;
}

static void take(bool ok, uint8_t *out)
{
    if (ok) {
        g_free(out);
    }
}

static void state_file(const uint8_t *data, size_t size)
{
    const SwtpmKey *keys[] = { NULL, &key128, &key256 };
    SwtpmBlobHeader hdr;

    swtpm_blob_parse_header(data, size, "state", &hdr, NULL);
    swtpm_blob_is_encrypted(data, size);
    swtpm_blob_key_length(data, size);
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        uint8_t *out = NULL;
        size_t len;

        take(swtpm_blob_decode(data, size, keys[i], "state", &out, &len, NULL), out);
    }
}

static void migration_blob(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL;
    size_t len;

    swtpm_blob_is_migration(data, size);
    take(swtpm_blob_decode_migration(data, size, "blob", &out, &len, NULL), out);
    out = NULL;
    take(swtpm_blob_decode_migration_key(data, size, &mkey, "blob", &out, &len, NULL),
         out);
}

static void key_file(const uint8_t *data, size_t size)
{
    SwtpmKey k;

    swtpm_key_parse(data, size, SWTPM_KEY_FORMAT_BINARY, "key", &k, NULL);
    swtpm_key_parse(data, size, SWTPM_KEY_FORMAT_HEX, "key", &k, NULL);
}

static void sealed_blob(const uint8_t *data, size_t size)
{
    for (uint32_t type = 1; type <= 3; type++) {
        uint8_t *out = NULL;
        size_t len;

        if (swtpm_blob_open(seal_keys, &fuzz_raw_key, type, data, size, &out, &len) ==
            SWTPM_SEAL_OK) {
            g_free(out);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    state_file(data, size);
    migration_blob(data, size);
    key_file(data, size);
    sealed_blob(data, size);
    return 0;
}
