/*
 * Migration stream codec: round trips, key checks, and hostile streams
 * (docs/migration-stream.md).
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"

#include <zlib.h>

#include "migration/stream.h"

static const uint8_t raw_key_a[32] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};
static const uint8_t raw_key_b[32] = {[0] = 0xff, [31] = 0x01};

static const QCryptoKey key_a = {QCRYPTO_KEY_RAW, raw_key_a, 32};
static const QCryptoKey key_b = {QCRYPTO_KEY_RAW, raw_key_b, 32};
static const QCryptoKey pass_a = {
    QCRYPTO_KEY_PASSPHRASE,
    (const uint8_t *)"correct horse",
    13,
};
static const QCryptoKey pass_b = {
    QCRYPTO_KEY_PASSPHRASE,
    (const uint8_t *)"battery staple",
    14,
};

/* A recognisable plaintext marker; it must never appear in a keyed stream. */
#define SECRET_MARK "SEEDSEEDSEEDSEED"

static GBytes *pattern_bytes(size_t len, uint8_t seed)
{
    uint8_t *p = g_malloc(len ? len : 1);

    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(seed + i * 7);
    }
    if (len >= strlen(SECRET_MARK)) {
        memcpy(p, SECRET_MARK, strlen(SECRET_MARK));
    }
    return g_bytes_new_take(p, len);
}

static MigStreamContents *sample_contents(MigStorageMode storage)
{
    MigStreamContents *c = mig_stream_contents_new();

    c->header.storage = storage;
    c->header.tpm_version = 2;
    c->header.flags = MIG_FLAG_SOURCE_RUNNING;
    c->header.generation = 42;
    for (int i = 0; i < 16; i++) {
        c->header.image_uuid[i] = 0xa0 + i;
    }
    c->section[MIG_SECTION_TIS] = pattern_bytes(300, 1);
    c->section[MIG_SECTION_TPM_VOLATILE] = pattern_bytes(200, 2);
    if (storage != MIG_STORAGE_SHARED) {
        c->section[MIG_SECTION_TPM_PERMANENT] = pattern_bytes(500, 3);
    }
    return c;
}

static GByteArray *encode_sample(MigStorageMode storage, const QCryptoKey *key)
{
    g_autoptr(MigStreamContents) c = sample_contents(storage);
    GByteArray *out = g_byte_array_new();
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(mig_stream_encode(c, key, out, &err), ==, 0);
    g_assert_no_error(err);
    return out;
}

static void assert_same_sections(const MigStreamContents *a, const MigStreamContents *b)
{
    for (int t = 1; t <= MIG_SECTION_DATA_MAX; t++) {
        g_assert_true(!a->section[t] == !b->section[t]);
        if (a->section[t]) {
            g_assert_true(g_bytes_equal(a->section[t], b->section[t]));
        }
    }
}

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);

    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return true;
        }
    }
    return false;
}

static void fix_header_crc(uint8_t *buf)
{
    stl_be_p(buf + 124, (uint32_t)crc32(0, buf, 124));
}

/* Appends an unsealed section with a correct CRC. */
static void append_section(GByteArray *out, uint32_t type, uint32_t seq,
                           const uint8_t *data, uint32_t len)
{
    size_t start = out->len;
    uint8_t hdr[16], crc[4];

    stl_be_p(hdr, type);
    stl_be_p(hdr + 4, seq);
    stl_be_p(hdr + 8, len);
    stl_be_p(hdr + 12, 0);
    g_byte_array_append(out, hdr, 16);
    g_byte_array_append(out, data, len);
    stl_be_p(crc, (uint32_t)crc32(0, out->data + start, out->len - start));
    g_byte_array_append(out, crc, 4);
}

static void append_header(GByteArray *out, MigStorageMode storage)
{
    MigStreamHeader h = {
        .version = MIG_STREAM_VERSION, .storage = storage, .tpm_version = 2};
    uint8_t buf[MIG_HEADER_SIZE];

    mig_stream_header_pack(&h, buf);
    g_byte_array_append(out, buf, sizeof(buf));
}

static void append_end(GByteArray *out, uint32_t seq, uint32_t count)
{
    uint8_t n[4];

    stl_be_p(n, count);
    append_section(out, MIG_SECTION_END, seq, n, 4);
}

static void assert_decode_fails(const uint8_t *buf, size_t len, const QCryptoKey *key,
                                int code, const char *msg_part)
{
    MigStreamContents *c = (MigStreamContents *)0x1;
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(mig_stream_decode(buf, len, key, &c, &err), ==, -1);
    g_assert_null(c);
    g_assert_nonnull(err);
    if (code >= 0) {
        g_assert_error(err, QTPM_ERROR, code);
    }
    if (msg_part && !strstr(err->message, msg_part)) {
        g_error("error '%s' lacks '%s'", err->message, msg_part);
    }
}

/* ---- round trips ---- */

static void roundtrip(MigStorageMode storage, const QCryptoKey *key)
{
    g_autoptr(MigStreamContents) in = sample_contents(storage);
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(MigStreamContents) back = NULL;
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(mig_stream_encode(in, key, out, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(mig_stream_decode(out->data, out->len, key, &back, &err), ==, 0);
    g_assert_no_error(err);
    assert_same_sections(in, back);
    g_assert_cmpmem(back->header.image_uuid, 16, in->header.image_uuid, 16);
    g_assert_cmpuint(back->header.generation, ==, 42);
    g_assert_cmpuint(back->header.storage, ==, storage);
    g_assert_cmpuint(back->header.tpm_version, ==, 2);
    g_assert_true(back->header.flags & MIG_FLAG_SOURCE_RUNNING);
    g_assert_cmpint(!!(back->header.flags & MIG_FLAG_ENCRYPTED), ==, key != NULL);
    /* Plaintext visible exactly when there is no key. */
    g_assert_cmpint(contains(out->data, out->len, SECRET_MARK), ==, key == NULL);
}

static void test_roundtrip_plain(void)
{
    roundtrip(MIG_STORAGE_AUTO, NULL);
    roundtrip(MIG_STORAGE_SHARED, NULL);
    roundtrip(MIG_STORAGE_NON_SHARED, NULL);
}

static void test_roundtrip_raw_key(void)
{
    roundtrip(MIG_STORAGE_AUTO, &key_a);
    roundtrip(MIG_STORAGE_SHARED, &key_a);
    roundtrip(MIG_STORAGE_NON_SHARED, &key_a);
}

static void test_roundtrip_passphrase(void)
{
    roundtrip(MIG_STORAGE_NON_SHARED, &pass_a);
}

static void test_fresh_salt_and_nonces(void)
{
    g_autoptr(GByteArray) a = encode_sample(MIG_STORAGE_AUTO, &key_a);
    g_autoptr(GByteArray) b = encode_sample(MIG_STORAGE_AUTO, &key_a);

    g_assert_cmpuint(a->len, ==, b->len);
    /* Salt differs, so key-check value and all ciphertext differ. */
    g_assert_true(memcmp(a->data + 60, b->data + 60, 64) != 0);
    g_assert_true(
        memcmp(a->data + MIG_HEADER_SIZE + 16, b->data + MIG_HEADER_SIZE + 16, 40) != 0);
}

static void test_empty_payload(void)
{
    g_autoptr(MigStreamContents) in = sample_contents(MIG_STORAGE_SHARED);
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(MigStreamContents) back = NULL;

    g_bytes_unref(in->section[MIG_SECTION_TIS]);
    in->section[MIG_SECTION_TIS] = g_bytes_new(NULL, 0);
    g_assert_cmpint(mig_stream_encode(in, &key_a, out, NULL), ==, 0);
    g_assert_cmpint(mig_stream_decode(out->data, out->len, &key_a, &back, NULL), ==, 0);
    g_assert_cmpuint(g_bytes_get_size(back->section[MIG_SECTION_TIS]), ==, 0);
}

/* ---- encoder refusals ---- */

static void test_encoder_rules(void)
{
    MigStreamHeader h = {.storage = MIG_STORAGE_SHARED, .tpm_version = 2};
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    uint8_t b[8] = {0};
    MigStreamEncoder *e = mig_stream_encoder_new(&h, NULL, &err);

    g_assert_no_error(err);
    /* The permanent state never travels in a shared-storage stream. */
    g_assert_cmpint(
        mig_stream_encode_section(e, MIG_SECTION_TPM_PERMANENT, b, 8, out, &err), ==, -1);
    g_clear_error(&err);
    g_assert_cmpint(mig_stream_encode_section(e, MIG_SECTION_TIS, b, 8, out, &err), ==,
                    0);
    g_assert_cmpint(mig_stream_encode_section(e, MIG_SECTION_TIS, b, 8, out, &err), ==,
                    -1);
    g_clear_error(&err);
    /* Missing the volatile state. */
    g_assert_cmpint(mig_stream_encode_end(e, out, &err), ==, -1);
    g_clear_error(&err);
    g_assert_cmpint(mig_stream_encode_section(e, 9, b, 8, out, &err), ==, -1);
    g_clear_error(&err);
    {
        g_autofree uint8_t *big = g_malloc0(64 * 1024 + 1);
        g_assert_cmpint(mig_stream_encode_section(e, MIG_SECTION_TPM_VOLATILE, big,
                                                  2 * 1024 * 1024, out, &err),
                        ==, -1);
        g_clear_error(&err);
    }
    mig_stream_encoder_free(e);

    h.tpm_version = 3;
    g_assert_null(mig_stream_encoder_new(&h, NULL, &err));
    g_clear_error(&err);
    h.tpm_version = 2;
    h.kdf_iterations = 5;
    g_assert_null(mig_stream_encoder_new(&h, &pass_a, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
}

/* ---- keys ---- */

static void test_wrong_key_before_sections(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_AUTO, &key_a);
    MigStreamDecoder *d = mig_stream_decoder_new(&key_b);
    g_autoptr(GError) err = NULL;

    /* The header alone is enough to refuse: no section byte is consumed. */
    g_assert_cmpuint(mig_stream_decoder_need(d), ==, MIG_HEADER_SIZE);
    g_assert_cmpint(mig_stream_decoder_push(d, s->data, MIG_HEADER_SIZE, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_WRONG_KEY);
    g_assert_nonnull(strstr(err->message, "does not match"));
    g_assert_cmpuint(mig_stream_decoder_need(d), ==, 0);
    g_assert_null(mig_stream_decoder_header(d));
    mig_stream_decoder_free(d);

    assert_decode_fails(s->data, s->len, &key_b, QTPM_ERROR_WRONG_KEY, "does not match");
}

static void test_missing_key(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_AUTO, &key_a);
    QCryptoKey none = {QCRYPTO_KEY_NONE, NULL, 0};

    assert_decode_fails(s->data, s->len, NULL, QTPM_ERROR_NO_KEY, "no key");
    assert_decode_fails(s->data, s->len, &none, QTPM_ERROR_NO_KEY, NULL);
}

static void test_key_on_target_plain_stream(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_AUTO, NULL);

    /* A keyed target never accepts TPM state that travelled in plaintext. */
    assert_decode_fails(s->data, s->len, &key_a, QTPM_ERROR_WRONG_KEY, "unencrypted");
}

static void test_passphrase_mismatch(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_AUTO, &pass_a);

    assert_decode_fails(s->data, s->len, &pass_b, QTPM_ERROR_WRONG_KEY, "does not match");
    assert_decode_fails(s->data, s->len, &key_a, QTPM_ERROR_WRONG_KEY, "passphrase");
}

static void test_downgrade_refused(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_AUTO, &key_a);

    /* Clearing ENCRYPTED (and fixing the CRC) contradicts the key kind. */
    stl_be_p(s->data + 16, ldl_be_p(s->data + 16) & ~MIG_FLAG_ENCRYPTED);
    fix_header_crc(s->data);
    assert_decode_fails(s->data, s->len, NULL, QTPM_ERROR_INVALID, "contradicts");
    assert_decode_fails(s->data, s->len, &key_a, QTPM_ERROR_INVALID, NULL);
}

static void test_header_binding(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_AUTO, &key_a);

    /* Storage mode is in every section's associated data. */
    stl_be_p(s->data + 20, MIG_STORAGE_NON_SHARED);
    fix_header_crc(s->data);
    assert_decode_fails(s->data, s->len, &key_a, QTPM_ERROR_CORRUPT,
                        "authentication failed");
}

/* ---- hostile streams ---- */

static void test_truncated_everywhere(void)
{
    const QCryptoKey *keys[] = {NULL, &key_a};

    for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
        g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_SHARED, keys[k]);

        for (size_t n = 0; n < s->len; n++) {
            assert_decode_fails(s->data, n, keys[k], -1, NULL);
        }
    }
}

static void test_trailing_bytes(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_SHARED, NULL);
    uint8_t z = 0;

    g_byte_array_append(s, &z, 1);
    assert_decode_fails(s->data, s->len, NULL, QTPM_ERROR_INVALID,
                        "after the end marker");
}

static void test_bit_flips_everywhere(void)
{
    const QCryptoKey *keys[] = {NULL, &key_a};

    for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
        g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_SHARED, keys[k]);

        for (size_t i = 0; i < s->len * 8; i++) {
            s->data[i / 8] ^= 1u << (i % 8);
            assert_decode_fails(s->data, s->len, keys[k], -1, NULL);
            s->data[i / 8] ^= 1u << (i % 8);
        }
    }
}

static void test_absurd_lengths(void)
{
    static const uint32_t lens[] = {
        0xffffffff,
        0x80000000,
        64 * 1024 + 1,
        64 * 1024 + 29,
    };
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_SHARED, NULL);

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        MigStreamDecoder *d = mig_stream_decoder_new(NULL);
        g_autoptr(GError) err = NULL;
        uint8_t sh[16];

        g_assert_cmpint(mig_stream_decoder_push(d, s->data, MIG_HEADER_SIZE, NULL), ==,
                        0);
        memcpy(sh, s->data + MIG_HEADER_SIZE, 16);
        stl_be_p(sh + 8, lens[i]);
        /* Refused from the 16-byte section header, before any allocation. */
        g_assert_cmpint(mig_stream_decoder_push(d, sh, 16, &err), ==, -1);
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
        g_assert_nonnull(strstr(err->message, "length"));
        g_assert_cmpuint(mig_stream_decoder_need(d), ==, 0);
        mig_stream_decoder_free(d);
    }

    /* The permanent blob may be 4 MiB but not more. */
    {
        g_autoptr(GByteArray) m = g_byte_array_new();
        uint8_t hdr[16];

        append_header(m, MIG_STORAGE_NON_SHARED);
        stl_be_p(hdr, MIG_SECTION_TPM_PERMANENT);
        stl_be_p(hdr + 4, 0);
        stl_be_p(hdr + 8, 4 * 1024 * 1024 + 1);
        stl_be_p(hdr + 12, 0);
        g_byte_array_append(m, hdr, 16);
        assert_decode_fails(m->data, m->len, NULL, QTPM_ERROR_INVALID, "outside");
    }
    /* A sealed section shorter than nonce + tag. */
    {
        g_autoptr(GByteArray) k = encode_sample(MIG_STORAGE_SHARED, &key_a);
        stl_be_p(k->data + MIG_HEADER_SIZE + 8, 27);
        assert_decode_fails(k->data, k->len, &key_a, QTPM_ERROR_INVALID, "outside");
    }
}

static void test_unknown_section(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint8_t b[8] = {0};

    append_header(m, MIG_STORAGE_SHARED);
    append_section(m, 7, 0, b, 8);
    append_end(m, 1, 1);
    assert_decode_fails(m->data, m->len, NULL, QTPM_ERROR_INVALID,
                        "unknown section type 0x7");
}

static void test_reordered_sections(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint8_t b[8] = {0};

    /* Sections swapped (each with a valid CRC): the sequence numbers give
     * it away. */
    append_header(m, MIG_STORAGE_SHARED);
    append_section(m, MIG_SECTION_TPM_VOLATILE, 1, b, 8);
    append_section(m, MIG_SECTION_TIS, 0, b, 8);
    append_end(m, 2, 2);
    assert_decode_fails(m->data, m->len, NULL, QTPM_ERROR_INVALID, "sequence number");
}

static void test_other_order_is_fine(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    g_autoptr(MigStreamContents) c = NULL;
    uint8_t b[8] = {1, 2, 3};

    append_header(m, MIG_STORAGE_SHARED);
    append_section(m, MIG_SECTION_TPM_VOLATILE, 0, b, 8);
    append_section(m, MIG_SECTION_TIS, 1, b, 3);
    append_end(m, 2, 2);
    g_assert_cmpint(mig_stream_decode(m->data, m->len, NULL, &c, NULL), ==, 0);
    g_assert_cmpuint(g_bytes_get_size(c->section[MIG_SECTION_TIS]), ==, 3);
}

static void test_duplicate_sections(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint8_t b[8] = {0};

    append_header(m, MIG_STORAGE_SHARED);
    append_section(m, MIG_SECTION_TIS, 0, b, 8);
    append_section(m, MIG_SECTION_TIS, 1, b, 8);
    append_section(m, MIG_SECTION_TPM_VOLATILE, 2, b, 8);
    append_end(m, 3, 3);
    assert_decode_fails(m->data, m->len, NULL, QTPM_ERROR_INVALID, "duplicates");
}

static void test_replayed_sealed_section(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_SHARED, &key_a);
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint32_t tis_len = ldl_be_p(s->data + MIG_HEADER_SIZE + 8);
    size_t tis_total = 16 + tis_len + 4;
    uint8_t *copy;

    /* Header, TIS, then the TIS again re-numbered as section 1 with a
     * fresh CRC: the CRC passes, the tag (seq in the AD) does not. */
    g_byte_array_append(m, s->data, MIG_HEADER_SIZE + tis_total);
    g_byte_array_append(m, s->data + MIG_HEADER_SIZE, tis_total);
    copy = m->data + MIG_HEADER_SIZE + tis_total;
    stl_be_p(copy, MIG_SECTION_TPM_VOLATILE);
    stl_be_p(copy + 4, 1);
    stl_be_p(copy + tis_total - 4, (uint32_t)crc32(0, copy, tis_total - 4));
    assert_decode_fails(m->data, m->len, &key_a, QTPM_ERROR_CORRUPT,
                        "authentication failed");
}

static void test_missing_required_section(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    g_autoptr(GByteArray) n = g_byte_array_new();
    uint8_t b[8] = {0};

    append_header(m, MIG_STORAGE_SHARED);
    append_section(m, MIG_SECTION_TIS, 0, b, 8);
    append_end(m, 1, 1);
    assert_decode_fails(m->data, m->len, NULL, QTPM_ERROR_INVALID,
                        "TPM_VOLATILE section is missing");

    /* Non-shared storage needs the permanent state. */
    append_header(n, MIG_STORAGE_NON_SHARED);
    append_section(n, MIG_SECTION_TIS, 0, b, 8);
    append_section(n, MIG_SECTION_TPM_VOLATILE, 1, b, 8);
    append_end(n, 2, 2);
    assert_decode_fails(n->data, n->len, NULL, QTPM_ERROR_INVALID,
                        "TPM_PERMANENT section is missing");
}

static void test_permanent_in_shared_stream(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint8_t b[8] = {0};

    append_header(m, MIG_STORAGE_SHARED);
    append_section(m, MIG_SECTION_TPM_PERMANENT, 0, b, 8);
    append_end(m, 1, 1);
    assert_decode_fails(m->data, m->len, NULL, QTPM_ERROR_INVALID,
                        "not allowed with shared storage");
}

static void test_end_count_and_length(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    g_autoptr(GByteArray) n = g_byte_array_new();
    uint8_t b[8] = {0};

    append_header(m, MIG_STORAGE_SHARED);
    append_section(m, MIG_SECTION_TIS, 0, b, 8);
    append_section(m, MIG_SECTION_TPM_VOLATILE, 1, b, 8);
    append_end(m, 2, 5);
    assert_decode_fails(m->data, m->len, NULL, QTPM_ERROR_INVALID, "END counts 5");

    append_header(n, MIG_STORAGE_SHARED);
    append_section(n, MIG_SECTION_TIS, 0, b, 8);
    append_section(n, MIG_SECTION_TPM_VOLATILE, 1, b, 8);
    append_section(n, MIG_SECTION_END, 2, b, 3);
    assert_decode_fails(n->data, n->len, NULL, QTPM_ERROR_INVALID, "END");
}

static void test_sealed_flag_mismatch(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();
    uint8_t b[8] = {0};
    size_t pos;

    append_header(m, MIG_STORAGE_SHARED);
    pos = m->len;
    append_section(m, MIG_SECTION_TIS, 0, b, 8);
    stl_be_p(m->data + pos + 12, MIG_SECTION_SEALED);
    stl_be_p(m->data + pos + 24, (uint32_t)crc32(0, m->data + pos, 24));
    assert_decode_fails(m->data, m->len, NULL, QTPM_ERROR_INVALID,
                        "sealed in an unencrypted stream");
}

static void test_bad_headers(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_SHARED, NULL);
    struct {
        size_t off;
        uint32_t val;
        int code;
        const char *msg;
    } cases[] = {
        {8, 2, QTPM_ERROR_UNSUPPORTED, "version 2"},
        {12, 256, QTPM_ERROR_INVALID, "header length"},
        {16, 0x80, QTPM_ERROR_UNSUPPORTED, "flags"},
        {20, 3, QTPM_ERROR_INVALID, "storage mode"},
        {24, 7, QTPM_ERROR_INVALID, "TPM version"},
        {52, 9, QTPM_ERROR_UNSUPPORTED, "key kind"},
        {56, 1000, QTPM_ERROR_INVALID, "iteration"},
        {70, 1, QTPM_ERROR_INVALID, "key material"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autoptr(GByteArray) c = g_byte_array_new();

        g_byte_array_append(c, s->data, s->len);
        stl_be_p(c->data + cases[i].off, cases[i].val);
        fix_header_crc(c->data);
        assert_decode_fails(c->data, c->len, NULL, cases[i].code, cases[i].msg);
    }
    /* Bad magic, bad CRC. */
    {
        g_autoptr(GByteArray) c = g_byte_array_new();
        g_byte_array_append(c, s->data, s->len);
        c->data[0] = 'X';
        assert_decode_fails(c->data, c->len, NULL, QTPM_ERROR_INVALID, "magic");
        c->data[0] = 'Q';
        c->data[30] ^= 1;
        assert_decode_fails(c->data, c->len, NULL, QTPM_ERROR_CORRUPT, "header CRC");
    }
    /* Passphrase header with an absurd iteration count. */
    {
        g_autoptr(GByteArray) p = encode_sample(MIG_STORAGE_SHARED, &pass_a);
        stl_be_p(p->data + 56, 0xffffffff);
        fix_header_crc(p->data);
        assert_decode_fails(p->data, p->len, &pass_a, QTPM_ERROR_INVALID, "iteration");
    }
}

static void test_push_misuse(void)
{
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_SHARED, NULL);
    MigStreamDecoder *d = mig_stream_decoder_new(NULL);
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(mig_stream_decoder_push(d, s->data, 10, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_null(mig_stream_decoder_steal(d));
    mig_stream_decoder_free(d);
}

static void test_random_garbage(void)
{
    GRand *r = g_rand_new_with_seed(5);
    g_autoptr(GByteArray) s = encode_sample(MIG_STORAGE_AUTO, &key_a);

    for (int i = 0; i < 3000; i++) {
        g_autoptr(GByteArray) m = g_byte_array_new();
        MigStreamContents *c = NULL;
        int flips = g_rand_int_range(r, 1, 8);

        g_byte_array_append(m, s->data, s->len);
        for (int f = 0; f < flips; f++) {
            m->data[g_rand_int_range(r, 0, m->len)] = g_rand_int(r);
        }
        if (g_rand_boolean(r)) {
            g_byte_array_set_size(m, g_rand_int_range(r, 0, m->len + 1));
        }
        /* Must return cleanly; a CRC collision may even decode. */
        if (mig_stream_decode(m->data, m->len, &key_a, &c, NULL) == 0) {
            mig_stream_contents_free(c);
        }
    }
    for (int i = 0; i < 2000; i++) {
        size_t len = g_rand_int_range(r, 0, 600);
        g_autofree uint8_t *b = g_malloc(len + 1);

        for (size_t j = 0; j < len; j++) {
            b[j] = g_rand_int(r);
        }
        if (len >= 8 && g_rand_boolean(r)) {
            memcpy(b, MIG_STREAM_MAGIC, 8);
        }
        assert_decode_fails(b, len, NULL, -1, NULL);
    }
    g_rand_free(r);
}

static void test_names(void)
{
    MigStorageMode m;

    g_assert_true(mig_storage_mode_parse("non-shared", &m));
    g_assert_cmpint(m, ==, MIG_STORAGE_NON_SHARED);
    g_assert_false(mig_storage_mode_parse("both", &m));
    g_assert_false(mig_storage_mode_parse(NULL, &m));
    g_assert_cmpstr(mig_section_type_name(MIG_SECTION_END), ==, "END");
    g_assert_cmpuint(mig_section_max_len(99), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration-stream/roundtrip/plain", test_roundtrip_plain);
    g_test_add_func("/migration-stream/roundtrip/raw-key", test_roundtrip_raw_key);
    g_test_add_func("/migration-stream/roundtrip/passphrase", test_roundtrip_passphrase);
    g_test_add_func("/migration-stream/roundtrip/fresh-salt", test_fresh_salt_and_nonces);
    g_test_add_func("/migration-stream/roundtrip/empty-payload", test_empty_payload);
    g_test_add_func("/migration-stream/encoder-rules", test_encoder_rules);
    g_test_add_func("/migration-stream/key/wrong-before-sections",
                    test_wrong_key_before_sections);
    g_test_add_func("/migration-stream/key/missing", test_missing_key);
    g_test_add_func("/migration-stream/key/plain-stream-keyed-target",
                    test_key_on_target_plain_stream);
    g_test_add_func("/migration-stream/key/passphrase-mismatch",
                    test_passphrase_mismatch);
    g_test_add_func("/migration-stream/key/downgrade", test_downgrade_refused);
    g_test_add_func("/migration-stream/key/header-binding", test_header_binding);
    g_test_add_func("/migration-stream/hostile/truncated", test_truncated_everywhere);
    g_test_add_func("/migration-stream/hostile/trailing", test_trailing_bytes);
    g_test_add_func("/migration-stream/hostile/bit-flips", test_bit_flips_everywhere);
    g_test_add_func("/migration-stream/hostile/absurd-lengths", test_absurd_lengths);
    g_test_add_func("/migration-stream/hostile/unknown-section", test_unknown_section);
    g_test_add_func("/migration-stream/hostile/reordered", test_reordered_sections);
    g_test_add_func("/migration-stream/order-free", test_other_order_is_fine);
    g_test_add_func("/migration-stream/hostile/duplicate", test_duplicate_sections);
    g_test_add_func("/migration-stream/hostile/replayed-sealed",
                    test_replayed_sealed_section);
    g_test_add_func("/migration-stream/hostile/missing-required",
                    test_missing_required_section);
    g_test_add_func("/migration-stream/hostile/permanent-in-shared",
                    test_permanent_in_shared_stream);
    g_test_add_func("/migration-stream/hostile/end", test_end_count_and_length);
    g_test_add_func("/migration-stream/hostile/sealed-flag", test_sealed_flag_mismatch);
    g_test_add_func("/migration-stream/hostile/headers", test_bad_headers);
    g_test_add_func("/migration-stream/push-misuse", test_push_misuse);
    g_test_add_func("/migration-stream/hostile/random", test_random_garbage);
    g_test_add_func("/migration-stream/names", test_names);
    return g_test_run();
}
