/*
 * Plaintext TPM state and key material are wiped before their heap memory
 * goes back to the allocator: the migration stream's decoded sections
 * (migration/stream.c), the export's sealed blobs
 * (export/swtpm/swtpm-blob-seal.c) and swtpm's CBC-sealed files and
 * migration blobs (util/swtpm-blob.c).
 *
 * The test binary replaces free() and realloc(): while a check runs, every
 * block handed back is searched for a marker planted in the plaintext, and
 * every realloc moves its block, so a copy left behind by growing a buffer
 * is found too. The sanitizer build brings its own allocator, so the checks
 * need the plain build.
 */
#include "qemu/osdep.h"
#include "crypto/key.h"
#include "export/swtpm-blob-seal.h"
#include "migration/stream.h"
#include "qemu/swtpm-blob.h"

#include <malloc.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define WIPE_OWN_ALLOCATOR 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WIPE_OWN_ALLOCATOR 1
#endif

#define MARK_LEN 32

static uint8_t mark[MARK_LEN];
static volatile int scanning;
static volatile int leaks;

#ifndef WIPE_OWN_ALLOCATOR
extern void __libc_free(void *p);
extern void *__libc_malloc(size_t n);
extern void *__libc_realloc(void *p, size_t n);

void free(void *p)
{
    if (p && scanning && memmem(p, malloc_usable_size(p), mark, MARK_LEN)) {
        leaks++;
    }
    __libc_free(p);
}

void *realloc(void *p, size_t n)
{
    void *q;

    if (!scanning || !p || n == 0) {
        return __libc_realloc(p, n);
    }
    q = __libc_malloc(n);
    if (q) {
        memcpy(q, p, MIN(n, malloc_usable_size(p)));
        free(p);
    }
    return q;
}
#endif

static bool allocator_hooked(void)
{
#ifdef WIPE_OWN_ALLOCATOR
    g_test_skip("the sanitizer's allocator replaces free(); run the plain build");
    return false;
#else
    return true;
#endif
}

static void scan_begin(void)
{
    leaks = 0;
    scanning = 1;
}

/* How many freed blocks held the marker since scan_begin. */
static int scan_end(void)
{
    scanning = 0;
    return leaks;
}

/* @len bytes of TPM-state-like data with the marker in the middle. */
static uint8_t *plaintext(size_t len)
{
    uint8_t *p = g_malloc(len);

    g_assert_cmpuint(len, >=, 2 * MARK_LEN);
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 13 + 5);
    }
    memcpy(p + len / 2, mark, MARK_LEN);
    return p;
}

/* Frees test-owned copies with the scan off: they are not under test. */
static void free_unscanned(uint8_t *p, size_t len)
{
    qcrypto_free_wiped(&p, len);
}

/* The hook finds a marker in a block freed plain, none after a wipe. */
static void test_hook_sees_plain_free(void)
{
    uint8_t *p;

    if (!allocator_hooked()) {
        return;
    }
    p = plaintext(256);
    scan_begin();
    g_free(p);
    g_assert_cmpint(scan_end(), ==, 1);

    p = plaintext(256);
    scan_begin();
    qcrypto_free_wiped(&p, 256);
    g_assert_cmpint(scan_end(), ==, 0);

    /* A moving realloc leaves the old block behind: seen too. */
    p = plaintext(256);
    scan_begin();
    p = g_realloc(p, 64 * 1024);
    g_assert_cmpint(scan_end(), ==, 1);
    free_unscanned(p, 64 * 1024);
}

static const uint8_t raw_key[32] = {
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
    0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
    0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
};
static const QCryptoKey mig_key = { QCRYPTO_KEY_RAW, raw_key, 32 };
static const QCryptoKey mig_passphrase = {
    QCRYPTO_KEY_PASSPHRASE, (const uint8_t *)"a migration passphrase", 22,
};

static GBytes *bytes_with_mark(size_t len)
{
    return g_bytes_new_take(plaintext(len), len);
}

/* A non-shared stream whose permanent section carries the marker. */
static GByteArray *encode_stream(const QCryptoKey *key)
{
    g_autoptr(MigStreamContents) c = mig_stream_contents_new();
    g_autoptr(GError) err = NULL;
    GByteArray *out = g_byte_array_new();

    c->header.storage = MIG_STORAGE_NON_SHARED;
    c->header.tpm_version = 2;
    c->header.generation = 7;
    memset(c->header.image_uuid, 0x5a, sizeof(c->header.image_uuid));
    c->header.kdf_iterations = key && key->kind == QCRYPTO_KEY_PASSPHRASE ? 1000 : 0;
    c->section[MIG_SECTION_TIS] = bytes_with_mark(300);
    c->section[MIG_SECTION_TPM_VOLATILE] = bytes_with_mark(2000);
    c->section[MIG_SECTION_TPM_PERMANENT] = bytes_with_mark(48 * 1024);
    g_assert_cmpint(mig_stream_encode(c, key, out, &err), ==, 0);
    return out;
}

static void free_stream(GByteArray *s)
{
    qcrypto_memwipe(s->data, s->len);
    g_byte_array_unref(s);
}

static void check_stream_decode_wipes(const QCryptoKey *key)
{
    GByteArray *s = encode_stream(key);
    MigStreamContents *c = NULL;
    g_autoptr(GError) err = NULL;
    gsize len;

    scan_begin();
    g_assert_cmpint(mig_stream_decode(s->data, s->len, key, &c, &err), ==, 0);
    g_bytes_get_data(c->section[MIG_SECTION_TPM_PERMANENT], &len);
    g_assert_cmpuint(len, ==, 48 * 1024);
    mig_stream_contents_free(c);
    g_assert_cmpint(scan_end(), ==, 0);

    /*
     * A stream that fails at its end: the sections decoded before it are
     * freed with the decoder.
     */
    s->data[s->len - 1] ^= 1;
    scan_begin();
    g_assert_cmpint(mig_stream_decode(s->data, s->len, key, &c, &err), <, 0);
    g_assert_cmpint(scan_end(), ==, 0);
    free_stream(s);
}

static void test_stream_plain(void)
{
    if (allocator_hooked()) {
        check_stream_decode_wipes(NULL);
    }
}

static void test_stream_keyed(void)
{
    if (allocator_hooked()) {
        check_stream_decode_wipes(&mig_key);
    }
}

static void test_stream_passphrase(void)
{
    if (allocator_hooked()) {
        check_stream_decode_wipes(&mig_passphrase);
    }
}

/* The export's seal: opening, and a refused open, leave no plaintext. */
static void test_seal_open_wipes(void)
{
    g_autoptr(SwtpmSealKeys) k = swtpm_seal_keys_new();
    g_autoptr(GError) err = NULL;
    uint8_t *in, *sealed, *out = NULL;
    size_t sealed_len, out_len;

    if (!allocator_hooked()) {
        return;
    }
    in = plaintext(16 * 1024);
    scan_begin();
    sealed = swtpm_blob_seal(k, &mig_key, 1, in, 16 * 1024, &sealed_len, &err);
    g_assert_nonnull(sealed);
    g_assert_cmpint(swtpm_blob_open(k, &mig_key, 1, sealed, sealed_len, &out,
                                    &out_len), ==, SWTPM_SEAL_OK);
    g_assert_cmpmem(out, out_len, in, 16 * 1024);
    qcrypto_free_wiped(&out, out_len);
    /* A failing tag: the buffer decrypted into is wiped before it goes. */
    sealed[sealed_len - 1] ^= 1;
    g_assert_cmpint(swtpm_blob_open(k, &mig_key, 1, sealed, sealed_len, &out,
                                    &out_len), ==, SWTPM_SEAL_DAMAGED);
    g_assert_null(out);
    g_assert_cmpint(scan_end(), ==, 0);
    g_free(sealed);
    free_unscanned(in, 16 * 1024);
}

static void swtpm_key(SwtpmKey *k, size_t len)
{
    memset(k, 0, sizeof(*k));
    for (size_t i = 0; i < len; i++) {
        k->bytes[i] = 0x40 + i;
    }
    k->len = len;
}

static const uint8_t iv[32] = { 0x99 };

/* swtpm's CBC files: the decrypted and unpadded buffers are wiped. */
static void test_swtpm_file_wipes(void)
{
    g_autoptr(GError) err = NULL;
    uint8_t *in, *blob, *out = NULL;
    size_t blob_len, out_len;
    SwtpmKey key;

    if (!allocator_hooked()) {
        return;
    }
    swtpm_key(&key, 32);
    in = plaintext(8 * 1024);
    scan_begin();
    blob = swtpm_blob_encode_encrypted(in, 8 * 1024, &key, iv, &blob_len);
    g_assert_true(swtpm_blob_decode(blob, blob_len, &key, "permall", &out,
                                    &out_len, &err));
    g_assert_cmpmem(out, out_len, in, 8 * 1024);
    qcrypto_free_wiped(&out, out_len);
    g_assert_cmpint(scan_end(), ==, 0);
    g_free(blob);
    free_unscanned(in, 8 * 1024);
}

/* swtpm's migration blobs, plain and under a 128- and a 256-bit key. */
static void test_swtpm_migration_wipes(void)
{
    SwtpmMigrationKey *mkey = qcrypto_secure_alloc(sizeof(*mkey));
    size_t key_lens[] = { 0, 16, 32 };

    if (!allocator_hooked()) {
        qcrypto_secure_free(mkey, sizeof(*mkey));
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(key_lens); i++) {
        g_autoptr(GError) err = NULL;
        uint8_t *in = plaintext(8 * 1024), *blob, *out = NULL;
        size_t blob_len, out_len;
        SwtpmKey key;

        swtpm_key(&key, key_lens[i] ? key_lens[i] : 16);
        swtpm_migration_key_from_key(&key, mkey);
        scan_begin();
        blob = swtpm_blob_encode_migration(in, 8 * 1024, key_lens[i] ? &key : NULL,
                                           iv, &blob_len);
        g_assert_true(swtpm_blob_decode_migration_key(blob, blob_len, mkey,
                                                      "permanent", &out,
                                                      &out_len, &err));
        g_assert_cmpmem(out, out_len, in, 8 * 1024);
        qcrypto_free_wiped(&out, out_len);
        g_assert_cmpint(scan_end(), ==, 0);
        if (key_lens[i]) {
            g_free(blob);
        } else {
            free_unscanned(blob, blob_len);
        }
        free_unscanned(in, 8 * 1024);
        qcrypto_memwipe(&key, sizeof(key));
    }
    qcrypto_secure_free(mkey, sizeof(*mkey));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < MARK_LEN; i++) {
        mark[i] = (uint8_t)g_random_int();
    }
    g_test_add_func("/wipe/hook-sees-plain-free", test_hook_sees_plain_free);
    g_test_add_func("/wipe/migration-stream/plain", test_stream_plain);
    g_test_add_func("/wipe/migration-stream/keyed", test_stream_keyed);
    g_test_add_func("/wipe/migration-stream/passphrase", test_stream_passphrase);
    g_test_add_func("/wipe/swtpm-seal/open", test_seal_open_wipes);
    g_test_add_func("/wipe/swtpm-blob/file", test_swtpm_file_wipes);
    g_test_add_func("/wipe/swtpm-blob/migration", test_swtpm_migration_wipes);
    return g_test_run();
}
