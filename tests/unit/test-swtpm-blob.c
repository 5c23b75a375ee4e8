/*
 * swtpm state-file decoder and encoder (util/swtpm-blob.c), including
 * hostile inputs: this test runs in the sanitizer build.
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/swtpm-blob.h"

#include <nettle/hmac.h>

static const char *W = "tpm2-00.permall";

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = g_malloc(len ? len : 1);

    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
    }
    return p;
}

static void make_key(SwtpmKey *k, size_t len, uint8_t base)
{
    memset(k, 0, sizeof(*k));
    for (size_t i = 0; i < len; i++) {
        k->bytes[i] = base + i;
    }
    k->len = len;
}

static const uint8_t IV[32] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

static const size_t LENGTHS[] = { 0, 1, 15, 16, 31, 32, 33, 1000, 4096 };

static void test_plain_roundtrip(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(LENGTHS); i++) {
        size_t len = LENGTHS[i], flen, olen;
        g_autofree uint8_t *data = pattern(len, i);
        g_autofree uint8_t *file = swtpm_blob_encode_plain(data, len, &flen);
        g_autofree uint8_t *out = NULL;
        GError *err = NULL;

        g_assert_cmpuint(flen, ==, len + SWTPM_BLOB_HEADER_SIZE +
                                   SWTPM_TLV_HEADER_SIZE);
        g_assert_cmpuint(file[0], ==, 2);
        g_assert_cmpuint(file[1], ==, 1);
        g_assert_false(swtpm_blob_is_encrypted(file, flen));
        g_assert_true(swtpm_blob_decode(file, flen, NULL, W, &out, &olen,
                                        &err));
        g_assert_no_error(err);
        g_assert_cmpmem(out, olen, data, len);
    }
}

static void test_encrypted_roundtrip(void)
{
    for (size_t ks = 16; ks <= 32; ks += 16) {
        SwtpmKey key;

        make_key(&key, ks, 0x40);
        for (size_t i = 0; i < ARRAY_SIZE(LENGTHS); i++) {
            size_t len = LENGTHS[i], flen, olen;
            g_autofree uint8_t *data = pattern(len, i);
            g_autofree uint8_t *file =
                swtpm_blob_encode_encrypted(data, len, &key, IV, &flen);
            g_autofree uint8_t *out = NULL;
            GError *err = NULL;
            size_t ct = len + ks - len % ks;

            g_assert_cmpuint(flen, ==, SWTPM_BLOB_HEADER_SIZE +
                             3 * SWTPM_TLV_HEADER_SIZE + ct + 32 + ks);
            g_assert_cmpuint(file[5], ==, ks == 32 ? 0x09 : 0x01);
            g_assert_true(swtpm_blob_is_encrypted(file, flen));
            /* the ciphertext is not the plaintext */
            if (len >= 16) {
                g_assert_cmpint(memcmp(file + 16, data, 16), !=, 0);
            }
            g_assert_true(swtpm_blob_decode(file, flen, &key, W, &out, &olen,
                                            &err));
            g_assert_no_error(err);
            g_assert_cmpmem(out, olen, data, len);
        }
    }
}

static void expect_fail(const uint8_t *file, size_t flen, const SwtpmKey *key,
                        int code)
{
    uint8_t *out = (uint8_t *)"untouched";
    size_t olen = 4242;
    GError *err = NULL;

    g_assert_false(swtpm_blob_decode(file, flen, key, W, &out, &olen, &err));
    g_assert_error(err, QTPM_ERROR, code);
    /* every sentence names the file */
    g_assert_nonnull(strstr(err->message, W));
    g_assert_cmpstr((char *)out, ==, "untouched");
    g_assert_cmpuint(olen, ==, 4242);
    g_error_free(err);
}

static void test_key_errors(void)
{
    SwtpmKey key, other, short_key;
    size_t flen, plen;
    g_autofree uint8_t *data = pattern(200, 1);
    g_autofree uint8_t *file = NULL, *plain = NULL;

    make_key(&key, 32, 1);
    make_key(&other, 32, 2);
    make_key(&short_key, 16, 1);
    file = swtpm_blob_encode_encrypted(data, 200, &key, IV, &flen);
    plain = swtpm_blob_encode_plain(data, 200, &plen);

    expect_fail(file, flen, &other, QTPM_ERROR_WRONG_KEY);
    expect_fail(file, flen, NULL, QTPM_ERROR_NO_KEY);
    expect_fail(file, flen, &short_key, QTPM_ERROR_WRONG_KEY);
    expect_fail(plain, plen, &key, QTPM_ERROR_INVALID);
}

static uint8_t *hdr_only(uint8_t ver, uint8_t minv, uint16_t hsz,
                         uint16_t flags, uint32_t tot, const uint8_t *body,
                         size_t blen, size_t *flen)
{
    uint8_t *b = g_malloc(10 + blen);

    b[0] = ver;
    b[1] = minv;
    b[2] = hsz >> 8;
    b[3] = hsz;
    b[4] = flags >> 8;
    b[5] = flags;
    b[6] = tot >> 24;
    b[7] = tot >> 16;
    b[8] = tot >> 8;
    b[9] = tot;
    if (blen) {
        memcpy(b + 10, body, blen);
    }
    *flen = 10 + blen;
    return b;
}

static void test_bad_headers(void)
{
    static const uint8_t body[] = { 0, 1, 0, 0, 0, 2, 'h', 'i' };
    struct {
        uint8_t ver, minv;
        uint16_t hsz, flags;
        int32_t totdelta;
        int code;
    } cases[] = {
        { 2, 1, 10, 0, 1, QTPM_ERROR_CORRUPT },       /* totlen too big */
        { 2, 1, 10, 0, -1, QTPM_ERROR_CORRUPT },      /* totlen too small */
        { 2, 1, 12, 0, 0, QTPM_ERROR_CORRUPT },       /* hdrsize */
        { 2, 1, 0, 0, 0, QTPM_ERROR_CORRUPT },
        { 3, 3, 10, 0, 0, QTPM_ERROR_UNSUPPORTED },   /* min_version */
        { 3, 1, 10, 0, 0, QTPM_ERROR_UNSUPPORTED },   /* version */
        { 0, 1, 10, 0, 0, QTPM_ERROR_UNSUPPORTED },
        { 2, 0, 10, 0, 0, QTPM_ERROR_CORRUPT },       /* min_version 0 */
        { 1, 2, 10, 0, 0, QTPM_ERROR_UNSUPPORTED },   /* min > version */
        { 2, 1, 10, 0x02, 0, QTPM_ERROR_UNSUPPORTED },/* migration */
        { 2, 1, 10, 0x04, 0, QTPM_ERROR_UNSUPPORTED },
        { 2, 1, 10, 0x10, 0, QTPM_ERROR_UNSUPPORTED },
        { 2, 1, 10, 0x100, 0, QTPM_ERROR_UNSUPPORTED },
        { 2, 1, 10, 0x08, 0, QTPM_ERROR_CORRUPT },    /* 256 bit, not enc */
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        size_t flen;
        g_autofree uint8_t *f = hdr_only(cases[i].ver, cases[i].minv,
                                         cases[i].hsz, cases[i].flags,
                                         18 + cases[i].totdelta, body,
                                         sizeof(body), &flen);
        expect_fail(f, flen, NULL, cases[i].code);
    }
    /* shorter than a header, down to nothing */
    for (size_t n = 0; n < 10; n++) {
        static const uint8_t h[10] = { 2, 1, 0, 10, 0, 0, 0, 0, 0, 10 };
        expect_fail(n ? h : NULL, n, NULL, QTPM_ERROR_CORRUPT);
    }
}

static void test_bad_tlv(void)
{
    static const struct {
        uint8_t body[16];
        size_t len;
    } cases[] = {
        { { 0, 1, 0, 0 }, 4 },                          /* truncated header */
        { { 0, 1, 0xff, 0xff, 0xff, 0xff, 1 }, 7 },     /* huge length */
        { { 0, 1, 0, 0, 0, 3, 'a', 'b' }, 8 },          /* runs past end */
        { { 0, 1, 0, 0, 0, 1, 'a', 0 }, 8 },            /* trailing byte */
        { { 0, 9, 0, 0, 0, 1, 'a' }, 7 },               /* no data tag */
        { { 0 }, 0 },                                   /* empty body */
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        size_t flen;
        g_autofree uint8_t *f = hdr_only(2, 1, 10, 0, 10 + cases[i].len,
                                         cases[i].body, cases[i].len, &flen);
        expect_fail(f, flen, NULL, QTPM_ERROR_CORRUPT);
    }
}

/* Builds an encrypted v2 file from parts, to damage one part at a time. */
static uint8_t *build_enc(const SwtpmKey *key, const uint8_t *ct,
                          size_t ct_len, const uint8_t *mac, size_t mac_len,
                          size_t iv_len, bool with_mac, size_t *flen)
{
    GByteArray *b = g_byte_array_new();
    static const uint8_t zero_mac[64];
    uint8_t t[6];
    size_t tot;

    g_byte_array_set_size(b, 10);
#define TLV(tag, p, l) do { \
        t[0] = 0; t[1] = (tag); t[2] = (l) >> 24; t[3] = (l) >> 16; \
        t[4] = (l) >> 8; t[5] = (l); \
        g_byte_array_append(b, t, 6); g_byte_array_append(b, (p), (l)); \
    } while (0)
    TLV(2, ct, ct_len);
    if (with_mac) {
        TLV(3, mac ? mac : zero_mac, mac_len);
    }
    if (iv_len) {
        TLV(6, IV, iv_len);
    }
#undef TLV
    tot = b->len;
    b->data[0] = 2;
    b->data[1] = 1;
    b->data[2] = 0;
    b->data[3] = 10;
    b->data[4] = 0;
    b->data[5] = key->len == 32 ? 9 : 1;
    b->data[6] = tot >> 24;
    b->data[7] = tot >> 16;
    b->data[8] = tot >> 8;
    b->data[9] = tot;
    *flen = tot;
    return g_byte_array_free(b, false);
}

static void test_bad_encrypted_parts(void)
{
    SwtpmKey key;
    uint8_t ct[64] = { 0 };
    size_t flen;

    make_key(&key, 32, 9);
    /* no HMAC */
    g_autofree uint8_t *a = build_enc(&key, ct, 64, NULL, 32, 32, false, &flen);
    expect_fail(a, flen, &key, QTPM_ERROR_CORRUPT);
    /* HMAC of the wrong size */
    g_autofree uint8_t *b = build_enc(&key, ct, 64, NULL, 20, 32, true, &flen);
    expect_fail(b, flen, &key, QTPM_ERROR_CORRUPT);
    /* IV of the wrong size */
    g_autofree uint8_t *c = build_enc(&key, ct, 64, NULL, 32, 16, true, &flen);
    expect_fail(c, flen, &key, QTPM_ERROR_CORRUPT);
    /* a zero HMAC: never matches */
    g_autofree uint8_t *d = build_enc(&key, ct, 64, NULL, 32, 32, true, &flen);
    expect_fail(d, flen, &key, QTPM_ERROR_WRONG_KEY);
}

/*
 * A file with a valid HMAC over a ciphertext whose padding is bad is
 * refused as damaged, never unpadded out of bounds. CBC lets us cut a
 * ciphertext after any block and keep a valid prefix of the plaintext.
 */
static void test_bad_padding_under_valid_hmac(void)
{
    static const uint8_t last[] = { 0, 33, 4, 64, 255 };
    SwtpmKey key;

    make_key(&key, 32, 3);
    for (size_t v = 0; v < ARRAY_SIZE(last); v++) {
        uint8_t pt[64];
        size_t flen, elen;
        g_autofree uint8_t *enc = NULL, *f = NULL;
        struct hmac_sha256_ctx h;
        uint8_t mac[32];

        memset(pt, 0xAA, sizeof(pt));
        pt[63] = last[v];
        enc = swtpm_blob_encode_encrypted(pt, 64, &key, IV, &elen);
        /* encrypted data TLV value starts at 16; keep its first 64 bytes */
        hmac_sha256_set_key(&h, 32, key.bytes);
        hmac_sha256_update(&h, 64, enc + 16);
        hmac_sha256_update(&h, 32, IV);
        hmac_sha256_digest(&h, 32, mac);
        f = build_enc(&key, enc + 16, 64, mac, 32, 32, true, &flen);
        expect_fail(f, flen, &key, QTPM_ERROR_CORRUPT);
    }
    /* ciphertext not whole blocks, or shorter than the key, under a valid
     * HMAC */
    for (size_t n = 0; n < 80; n += 8) {
        uint8_t ct[80] = { 0 };
        size_t flen;
        g_autofree uint8_t *f = NULL;
        struct hmac_sha256_ctx h;
        uint8_t mac[32];

        if (n >= 32 && n % 16 == 0) {
            continue;
        }
        hmac_sha256_set_key(&h, 32, key.bytes);
        hmac_sha256_update(&h, n, ct);
        hmac_sha256_update(&h, 32, IV);
        hmac_sha256_digest(&h, 32, mac);
        f = build_enc(&key, ct, n, mac, 32, 32, true, &flen);
        expect_fail(f, flen, &key, QTPM_ERROR_CORRUPT);
    }
}

/*
 * Every single-bit flip of an encrypted file either is refused or yields
 * exactly the original data: damaged bytes are never returned.
 */
static void test_bitflips_encrypted(void)
{
    SwtpmKey key;
    size_t flen;
    g_autofree uint8_t *data = pattern(300, 5);
    g_autofree uint8_t *file = NULL;
    unsigned refused = 0;

    make_key(&key, 32, 0x77);
    file = swtpm_blob_encode_encrypted(data, 300, &key, IV, &flen);
    for (size_t bit = 0; bit < flen * 8; bit++) {
        uint8_t *out = NULL;
        size_t olen = 0;
        GError *err = NULL;

        file[bit / 8] ^= 1u << (bit % 8);
        if (swtpm_blob_decode(file, flen, &key, W, &out, &olen, &err)) {
            g_assert_cmpmem(out, olen, data, 300);
            g_free(out);
        } else {
            g_assert_nonnull(err);
            g_error_free(err);
            refused++;
        }
        file[bit / 8] ^= 1u << (bit % 8);
    }
    /* min_version 0 is no version swtpm writes: that flip is refused too */
    g_assert_cmpuint(refused, ==, flen * 8);
}

static void test_version1(void)
{
    SwtpmKey key;
    g_autofree uint8_t *data = pattern(100, 2);
    uint8_t *out = NULL;
    size_t olen, flen;
    GError *err = NULL;

    /* plain v1: the body is the data */
    g_autofree uint8_t *p = hdr_only(1, 1, 10, 0, 110, data, 100, &flen);
    g_assert_true(swtpm_blob_decode(p, flen, NULL, W, &out, &olen, &err));
    g_assert_cmpmem(out, olen, data, 100);
    g_free(out);

    /*
     * encrypted v1: AES-CBC, zero IV, over SHA-256(data) || data. Built with
     * the v2 encoder's ciphertext under a zero IV: the v2 TLV is dropped.
     */
    make_key(&key, 16, 0x10);
    {
        static const uint8_t zero_iv[32];
        uint8_t hashed[132];
        size_t v2len;
        g_autofree uint8_t *v2 = NULL;
        g_autofree uint8_t *v1 = NULL;
        struct { uint32_t l; } ct;

        /* SHA-256 of data computed via a known-good route: GLib */
        GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
        gsize dl = 32;
        g_checksum_update(ck, data, 100);
        g_checksum_get_digest(ck, hashed, &dl);
        g_checksum_free(ck);
        memcpy(hashed + 32, data, 100);
        v2 = swtpm_blob_encode_encrypted(hashed, 132, &key, zero_iv, &v2len);
        ct.l = ((uint32_t)v2[12] << 24) | (v2[13] << 16) | (v2[14] << 8) |
               v2[15];
        v1 = hdr_only(1, 1, 10, 1, 10 + ct.l, v2 + 16, ct.l, &flen);
        g_assert_true(swtpm_blob_decode(v1, flen, &key, W, &out, &olen,
                                        &err));
        g_assert_no_error(err);
        g_assert_cmpmem(out, olen, data, 100);
        g_free(out);

        /* a wrong key fails the hash (or the pad) */
        key.bytes[0] ^= 1;
        expect_fail(v1, flen, &key, QTPM_ERROR_WRONG_KEY);
    }
}

/* Random bytes and random damage: no crash, no read out of bounds. */
static void test_fuzz(void)
{
    GRand *r = g_rand_new_with_seed(1234);
    SwtpmKey key;
    size_t flen;
    g_autofree uint8_t *data = pattern(500, 9);
    g_autofree uint8_t *good = NULL;

    make_key(&key, 32, 0x55);
    good = swtpm_blob_encode_encrypted(data, 500, &key, IV, &flen);
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = g_rand_int_range(r, 0, flen + 1);
        g_autofree uint8_t *buf = g_malloc(len ? len : 1);
        uint8_t *out = NULL;
        size_t olen;
        bool ok;

        if (iter % 2) {
            for (size_t i = 0; i < len; i++) {
                buf[i] = g_rand_int(r);
            }
        } else {
            memcpy(buf, good, len);
            for (int n = g_rand_int_range(r, 0, 4); n > 0 && len; n--) {
                buf[g_rand_int_range(r, 0, len)] = g_rand_int(r);
            }
        }
        if (len >= 10 && g_rand_boolean(r)) {
            /* keep totlen honest so the parser goes deeper */
            buf[6] = len >> 24;
            buf[7] = len >> 16;
            buf[8] = len >> 8;
            buf[9] = len;
        }
        ok = swtpm_blob_decode(buf, len, (iter & 2) ? &key : NULL, W, &out,
                               &olen, NULL);
        if (ok) {
            g_free(out);
        }
        SwtpmTlv t;
        (void)swtpm_tlv_find(buf, len, (uint16_t)(iter % 8), W, &t, NULL);
    }
    g_rand_free(r);
}

static void test_key_parse(void)
{
    SwtpmKey k;
    GError *err = NULL;
    const char *hex64 =
        "0x000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n";
    const char *hex32 = "000102030405060708090a0b0c0d0e0f";

    g_assert_true(swtpm_key_parse((const uint8_t *)hex64, strlen(hex64),
                                  SWTPM_KEY_FORMAT_HEX, "k", &k, &err));
    g_assert_cmpuint(k.len, ==, 32);
    for (int i = 0; i < 32; i++) {
        g_assert_cmpuint(k.bytes[i], ==, i);
    }
    g_assert_true(swtpm_key_parse((const uint8_t *)hex32, strlen(hex32),
                                  SWTPM_KEY_FORMAT_HEX, "k", &k, &err));
    g_assert_cmpuint(k.len, ==, 16);

    static const char *bad_hex[] = {
        "", "0x", "00010203", "000102030405060708090a0b0c0d0e0",
        "000102030405060708090a0b0c0d0e0g",
        "000102030405060708090a0b0c0d0e0f junk",
        "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f00",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_hex); i++) {
        g_assert_false(swtpm_key_parse((const uint8_t *)bad_hex[i],
                                       strlen(bad_hex[i]),
                                       SWTPM_KEY_FORMAT_HEX, "k.hex", &k,
                                       &err));
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
        g_assert_nonnull(strstr(err->message, "k.hex"));
        g_clear_error(&err);
        g_assert_cmpuint(k.len, ==, 0);
    }

    uint8_t bin[40] = { 0 };
    g_assert_true(swtpm_key_parse(bin, 32, SWTPM_KEY_FORMAT_BINARY, "k", &k,
                                  &err));
    g_assert_cmpuint(k.len, ==, 32);
    g_assert_true(swtpm_key_parse(bin, 16, SWTPM_KEY_FORMAT_BINARY, "k", &k,
                                  &err));
    g_assert_cmpuint(k.len, ==, 16);
    for (size_t n = 0; n < 40; n++) {
        if (n == 16 || n == 32) {
            continue;
        }
        g_assert_false(swtpm_key_parse(bin, n, SWTPM_KEY_FORMAT_BINARY, "k",
                                       &k, &err));
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
        g_clear_error(&err);
    }
}

static void expect_key_hex(const SwtpmKey *k, const char *hex)
{
    g_autofree char *got = g_malloc0(k->len * 2 + 1);

    for (size_t i = 0; i < k->len; i++) {
        sprintf(got + 2 * i, "%02x", k->bytes[i]);
    }
    g_assert_cmpstr(got, ==, hex);
}

/* Known answers from an independent PBKDF2 / SHA-512 (Python's hashlib). */
static void test_key_from_passphrase(void)
{
    static const uint8_t pass[] = "swtpm passphrase";
    SwtpmKey k;

    swtpm_key_from_passphrase(pass, sizeof(pass) - 1, SWTPM_KDF_PBKDF2, 32,
                              &k);
    expect_key_hex(&k, "1b5c4861537213fc8b6e15c20e06ffc0"
                       "fb9087597ca714f13cdd32cccceee806");
    swtpm_key_from_passphrase(pass, sizeof(pass) - 1, SWTPM_KDF_PBKDF2, 16,
                              &k);
    expect_key_hex(&k, "1b5c4861537213fc8b6e15c20e06ffc0");
    swtpm_key_from_passphrase(pass, sizeof(pass) - 1, SWTPM_KDF_SHA512, 32,
                              &k);
    expect_key_hex(&k, "15add1e4af760f12304202d60dae7530"
                       "cb07a8f5a7c686772a418d25671b5350");
}

static void test_key_length(void)
{
    SwtpmKey k16, k32;
    uint8_t d[40] = { 0 };
    size_t flen;

    make_key(&k16, 16, 1);
    make_key(&k32, 32, 1);
    g_autofree uint8_t *a = swtpm_blob_encode_encrypted(d, 40, &k16, IV, &flen);
    g_assert_cmpuint(swtpm_blob_key_length(a, flen), ==, 16);
    g_autofree uint8_t *b = swtpm_blob_encode_encrypted(d, 40, &k32, IV, &flen);
    g_assert_cmpuint(swtpm_blob_key_length(b, flen), ==, 32);
    g_autofree uint8_t *c = swtpm_blob_encode_plain(d, 40, &flen);
    g_assert_cmpuint(swtpm_blob_key_length(c, flen), ==, 0);
    g_assert_cmpuint(swtpm_blob_key_length(c, 5), ==, 0);
}

/* A blob as swtpm 0.7.1's CMD_GET_STATEBLOB (DECRYPTED) hands it out. */
static uint8_t *migration_blob(const uint8_t *data, size_t len, uint16_t flags,
                               size_t *out_len)
{
    size_t total = SWTPM_BLOB_HEADER_SIZE + 2 * SWTPM_TLV_HEADER_SIZE + len;
    uint8_t *b = g_malloc(total);

    b[0] = 2;
    b[1] = 1;
    stw_be_p(b + 2, SWTPM_BLOB_HEADER_SIZE);
    stw_be_p(b + 4, flags);
    stl_be_p(b + 6, total);
    stw_be_p(b + 10, SWTPM_TAG_MIGRATION_DATA);
    stl_be_p(b + 12, SWTPM_TLV_HEADER_SIZE + len);
    stw_be_p(b + 16, SWTPM_TAG_DATA);
    stl_be_p(b + 18, len);
    memcpy(b + 22, data, len);
    *out_len = total;
    return b;
}

static void test_migration_blob(void)
{
    /* libtpms's own blobs: a version, then the magic where hdrsize would be */
    static const uint8_t libtpms[16] = { 0x00, 0x01, 0xab, 0x36, 0x47, 0x23 };
    g_autofree uint8_t *data = pattern(1000, 3);
    g_autofree uint8_t *state = NULL;
    size_t blen, slen, olen;
    g_autofree uint8_t *b = migration_blob(data, 1000, 0x04, &blen);
    GError *err = NULL;

    g_assert_true(swtpm_blob_is_migration(b, blen));
    for (size_t len = 0; len <= blen; len++) {
        g_autofree uint8_t *out = NULL;
        bool ok = swtpm_blob_decode_migration(b, len, W, &out, &olen, NULL);

        g_assert_true(ok == (len == blen));
        if (ok) {
            g_assert_cmpmem(out, olen, data, 1000);
        }
    }
    g_assert_false(swtpm_blob_is_migration(libtpms, sizeof(libtpms)));
    state = swtpm_blob_encode_plain(data, 1000, &slen);
    g_assert_false(swtpm_blob_is_migration(state, slen));

    /* sealed under --migration-key, or still under the state key */
    for (uint16_t flags = 0x02; flags <= 0x20; flags <<= 1) {
        g_autofree uint8_t *s = migration_blob(data, 16, flags | 0x04, &blen);
        g_autofree uint8_t *out = NULL;

        if (flags == 0x04) {
            continue;
        }
        g_assert_false(swtpm_blob_decode_migration(s, blen, W, &out, &olen,
                                                   &err));
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED);
        g_clear_error(&err);
    }
    /* no TAG_DATA inside the migration TLV */
    g_autofree uint8_t *n = migration_blob(data, 16, 0x04, &blen);
    g_autofree uint8_t *nout = NULL;
    stw_be_p(n + 16, SWTPM_TAG_HMAC);
    g_assert_false(swtpm_blob_decode_migration(n, blen, W, &nout, &olen, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
    g_clear_error(&err);
}

static bool decode_mkey(const uint8_t *b, size_t len,
                        const SwtpmMigrationKey *mk, uint8_t **out,
                        size_t *olen, GError **errp)
{
    return swtpm_blob_decode_migration_key(b, len, mk, W, out, olen, errp);
}

/* The plain form the encoder writes is the one swtpm 0.7.1 hands out. */
static void test_migration_encode_plain(void)
{
    g_autofree uint8_t *data = pattern(1000, 5);
    size_t alen, blen, olen;
    g_autofree uint8_t *a = migration_blob(data, 1000, 0x04, &alen);
    g_autofree uint8_t *b = swtpm_blob_encode_migration(data, 1000, NULL, NULL,
                                                        &blen);
    g_autofree uint8_t *out = NULL;

    g_assert_cmpmem(a, alen, b, blen);
    g_assert_true(decode_mkey(b, blen, NULL, &out, &olen, NULL));
    g_assert_cmpmem(out, olen, data, 1000);
}

/* Sealed under a key file's key of either size: every length round-trips. */
static void test_migration_sealed_roundtrip(void)
{
    for (size_t klen = 16; klen <= 32; klen += 16) {
        SwtpmKey k;
        SwtpmMigrationKey mk;

        make_key(&k, klen, 0x40);
        swtpm_migration_key_from_key(&k, &mk);
        for (size_t i = 0; i < G_N_ELEMENTS(LENGTHS); i++) {
            g_autofree uint8_t *data = pattern(LENGTHS[i], 9);
            g_autofree uint8_t *out = NULL;
            size_t blen, olen;
            g_autofree uint8_t *b = swtpm_blob_encode_migration(
                data, LENGTHS[i], &k, IV, &blen);

            g_assert_true(swtpm_blob_is_migration(b, blen));
            g_assert_cmphex(lduw_be_p(b + 4), ==,
                            klen == 32 ? 0x16 : 0x06);
            /* nothing of the plaintext shows under the seal */
            if (LENGTHS[i] >= 16) {
                g_assert_null(memmem(b, blen, data, 16));
            }
            g_assert_true(decode_mkey(b, blen, &mk, &out, &olen, NULL));
            g_assert_cmpmem(out, olen, data, LENGTHS[i]);
        }
    }
}

/* No key, another key, a key of the other size: refused with the cause. */
static void test_migration_sealed_refused(void)
{
    g_autofree uint8_t *data = pattern(500, 2);
    SwtpmKey k, other, k16;
    SwtpmMigrationKey mk, mk_other, mk16;
    size_t blen, olen;
    GError *err = NULL;
    uint8_t *out = NULL;

    make_key(&k, 32, 1);
    make_key(&other, 32, 2);
    make_key(&k16, 16, 1);
    swtpm_migration_key_from_key(&k, &mk);
    swtpm_migration_key_from_key(&other, &mk_other);
    swtpm_migration_key_from_key(&k16, &mk16);
    g_autofree uint8_t *b = swtpm_blob_encode_migration(data, 500, &k, IV,
                                                        &blen);

    g_assert_false(decode_mkey(b, blen, NULL, &out, &olen, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_NO_KEY);
    g_clear_error(&err);
    g_assert_false(decode_mkey(b, blen, &mk_other, &out, &olen, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_WRONG_KEY);
    g_clear_error(&err);
    g_assert_false(decode_mkey(b, blen, &mk16, &out, &olen, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_WRONG_KEY);
    g_assert_nonnull(strstr(err->message, "256-bit"));
    g_clear_error(&err);
    /* the key-less decoder keeps refusing sealed blobs as before */
    g_assert_false(swtpm_blob_decode_migration(b, blen, W, &out, &olen, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED);
    g_clear_error(&err);
    /* a plain blob decodes whatever key is given */
    g_autofree uint8_t *p = swtpm_blob_encode_migration(data, 500, NULL, NULL,
                                                        &blen);
    g_assert_true(decode_mkey(p, blen, &mk, &out, &olen, NULL));
    g_assert_cmpmem(out, olen, data, 500);
    g_free(out);
}

/*
 * Every single-bit flip is refused. swtpm's header is in the clear and
 * outside its HMAC, and swtpm itself reads neither min_version's lowest bit
 * (1 to 0) nor the MIGRATION_DATA flag; qtpm refuses min_version 0 and a
 * sealed blob without MIGRATION_DATA, neither of which swtpm writes.
 */
static void test_migration_sealed_bitflips(void)
{
    g_autofree uint8_t *data = pattern(100, 4);
    SwtpmKey k;
    SwtpmMigrationKey mk;
    size_t blen, olen;

    make_key(&k, 16, 7);
    swtpm_migration_key_from_key(&k, &mk);
    g_autofree uint8_t *b = swtpm_blob_encode_migration(data, 100, &k, IV,
                                                        &blen);
    for (size_t bit = 0; bit < blen * 8; bit++) {
        uint8_t *out = NULL;

        b[bit / 8] ^= 1u << (bit % 8);
        g_assert_false(decode_mkey(b, blen, &mk, &out, &olen, NULL));
        g_assert_null(out);
        b[bit / 8] ^= 1u << (bit % 8);
    }
}

/*
 * The two header values swtpm never writes get their own sentences: a
 * minimum version of 0 (state file and migration blob alike) and a sealed
 * migration blob whose flags do not name migration data.
 */
static void test_header_values_swtpm_never_writes(void)
{
    g_autofree uint8_t *data = pattern(100, 6);
    SwtpmKey k;
    SwtpmMigrationKey mk;
    size_t flen, blen, olen;
    uint8_t *out = NULL;
    GError *err = NULL;

    make_key(&k, 16, 9);
    g_autofree uint8_t *f = swtpm_blob_encode_encrypted(data, 100, &k, IV, &flen);
    f[1] = 0;
    g_assert_false(swtpm_blob_decode(f, flen, &k, W, &out, &olen, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message, "minimum version is 0, which swtpm never writes"));
    g_assert_nonnull(strstr(err->message, W));
    g_clear_error(&err);

    swtpm_migration_key_from_key(&k, &mk);
    g_autofree uint8_t *b = swtpm_blob_encode_migration(data, 100, &k, IV, &blen);
    b[1] = 0;
    g_assert_false(decode_mkey(b, blen, &mk, &out, &olen, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message, "minimum version is 0"));
    g_clear_error(&err);
    b[1] = 1;
    b[5] &= ~SWTPM_BLOB_FLAG_MIGRATION_DATA;
    g_assert_false(decode_mkey(b, blen, &mk, &out, &olen, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message, "seal migration data but do not name it"));
    g_assert_null(out);
    g_clear_error(&err);
}

/*
 * swtpm derives one key of mode='s size from a passphrase; qtpm derives both
 * and lets the blob's header choose. Both KDFs give a 16-byte key that is
 * the 32-byte key's first half, and each opens what it sealed.
 */
static void test_migration_passphrase(void)
{
    static const uint8_t pass[] = "migration passphrase\n";
    g_autofree uint8_t *data = pattern(300, 8);

    for (int kdf = SWTPM_KDF_PBKDF2; kdf <= SWTPM_KDF_SHA512; kdf++) {
        SwtpmMigrationKey mk, wrong;
        SwtpmKey k16, k32;

        swtpm_migration_key_from_passphrase(pass, sizeof(pass) - 1, kdf, &mk);
        swtpm_key_from_passphrase(pass, sizeof(pass) - 1, kdf, 16, &k16);
        swtpm_key_from_passphrase(pass, sizeof(pass) - 1, kdf, 32, &k32);
        g_assert_cmpmem(mk.aes128.bytes, mk.aes128.len, k16.bytes, 16);
        g_assert_cmpmem(mk.aes256.bytes, mk.aes256.len, k32.bytes, 32);
        g_assert_cmpmem(k16.bytes, 16, k32.bytes, 16);
        /* the trailing newline is part of the passphrase, as in swtpm */
        swtpm_migration_key_from_passphrase(pass, sizeof(pass) - 2, kdf,
                                            &wrong);
        for (int i = 0; i < 2; i++) {
            const SwtpmKey *k = i ? &k32 : &k16;
            g_autofree uint8_t *out = NULL;
            size_t blen, olen;
            GError *err = NULL;
            g_autofree uint8_t *b = swtpm_blob_encode_migration(data, 300, k,
                                                                IV, &blen);

            g_assert_true(decode_mkey(b, blen, &mk, &out, &olen, NULL));
            g_assert_cmpmem(out, olen, data, 300);
            g_assert_false(decode_mkey(b, blen, &wrong, &out, &olen, &err));
            g_assert_error(err, QTPM_ERROR, QTPM_ERROR_WRONG_KEY);
            g_clear_error(&err);
        }
    }
}

/* Truncations and arbitrary bytes never crash and never decode. */
static void test_migration_sealed_truncated(void)
{
    g_autofree uint8_t *data = pattern(64, 6);
    SwtpmKey k;
    SwtpmMigrationKey mk;
    size_t blen, olen;

    make_key(&k, 32, 3);
    swtpm_migration_key_from_key(&k, &mk);
    g_autofree uint8_t *b = swtpm_blob_encode_migration(data, 64, &k, IV,
                                                        &blen);
    for (size_t len = 0; len < blen; len++) {
        g_autofree uint8_t *copy = g_memdup2(b, len ? len : 1);
        uint8_t *out = NULL;

        /* a header that agrees with the shorter length */
        if (len >= SWTPM_BLOB_HEADER_SIZE) {
            stl_be_p(copy + 6, len);
        }
        g_assert_false(decode_mkey(copy, len, &mk, &out, &olen, NULL));
    }
}

/* Mutated and random migration blobs, plain and sealed, through the decoder. */
static void test_migration_fuzz(void)
{
    GRand *r = g_rand_new_with_seed(4321);
    g_autofree uint8_t *data = pattern(300, 1);
    SwtpmKey k;
    SwtpmMigrationKey mk;
    size_t slen, plen;

    make_key(&k, 32, 0x21);
    swtpm_migration_key_from_key(&k, &mk);
    g_autofree uint8_t *sealed = swtpm_blob_encode_migration(data, 300, &k, IV,
                                                             &slen);
    g_autofree uint8_t *plain = swtpm_blob_encode_migration(data, 300, NULL,
                                                            NULL, &plen);
    for (int iter = 0; iter < 20000; iter++) {
        const uint8_t *good = (iter & 4) ? sealed : plain;
        size_t glen = (iter & 4) ? slen : plen;
        size_t len = g_rand_int_range(r, 0, glen + 1);
        g_autofree uint8_t *buf = g_malloc(len ? len : 1);
        uint8_t *out = NULL;
        size_t olen;

        if (iter % 2) {
            for (size_t i = 0; i < len; i++) {
                buf[i] = g_rand_int(r);
            }
        } else {
            memcpy(buf, good, len);
            for (int n = g_rand_int_range(r, 0, 4); n > 0 && len; n--) {
                buf[g_rand_int_range(r, 0, len)] = g_rand_int(r);
            }
        }
        if (len >= SWTPM_BLOB_HEADER_SIZE && g_rand_boolean(r)) {
            stw_be_p(buf + 2, SWTPM_BLOB_HEADER_SIZE);
            stl_be_p(buf + 6, len);
        }
        if (decode_mkey(buf, len, (iter & 2) ? &mk : NULL, &out, &olen,
                        NULL)) {
            g_free(out);
        }
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-blob/plain-roundtrip", test_plain_roundtrip);
    g_test_add_func("/swtpm-blob/encrypted-roundtrip",
                    test_encrypted_roundtrip);
    g_test_add_func("/swtpm-blob/key-errors", test_key_errors);
    g_test_add_func("/swtpm-blob/bad-headers", test_bad_headers);
    g_test_add_func("/swtpm-blob/bad-tlv", test_bad_tlv);
    g_test_add_func("/swtpm-blob/bad-encrypted-parts",
                    test_bad_encrypted_parts);
    g_test_add_func("/swtpm-blob/padding", test_bad_padding_under_valid_hmac);
    g_test_add_func("/swtpm-blob/bitflips-encrypted", test_bitflips_encrypted);
    g_test_add_func("/swtpm-blob/version1", test_version1);
    g_test_add_func("/swtpm-blob/fuzz", test_fuzz);
    g_test_add_func("/swtpm-blob/key-parse", test_key_parse);
    g_test_add_func("/swtpm-blob/key-from-passphrase",
                    test_key_from_passphrase);
    g_test_add_func("/swtpm-blob/key-length", test_key_length);
    g_test_add_func("/swtpm-blob/migration-blob", test_migration_blob);
    g_test_add_func("/swtpm-blob/migration-encode-plain",
                    test_migration_encode_plain);
    g_test_add_func("/swtpm-blob/migration-sealed-roundtrip",
                    test_migration_sealed_roundtrip);
    g_test_add_func("/swtpm-blob/migration-sealed-refused",
                    test_migration_sealed_refused);
    g_test_add_func("/swtpm-blob/header-values-swtpm-never-writes",
                    test_header_values_swtpm_never_writes);
    g_test_add_func("/swtpm-blob/migration-sealed-bitflips",
                    test_migration_sealed_bitflips);
    g_test_add_func("/swtpm-blob/migration-sealed-truncated",
                    test_migration_sealed_truncated);
    g_test_add_func("/swtpm-blob/migration-fuzz", test_migration_fuzz);
    g_test_add_func("/swtpm-blob/migration-passphrase",
                    test_migration_passphrase);
    return g_test_run();
}
