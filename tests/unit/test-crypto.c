/*
 * crypto/: AES-256-GCM, HMAC/HKDF-SHA256 and PBKDF2 against published test
 * vectors, and the failure behaviour of authenticated decryption.
 */
#include "qemu/osdep.h"

#include <nettle/gcm.h>

#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/pbkdf.h"
#include "crypto/random.h"
#include "crypto/secret.h"

static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *out = g_malloc0(n + 1);

    for (size_t i = 0; i < n; i++) {
        out[i] = g_ascii_xdigit_value(hex[2 * i]) << 4 |
                 g_ascii_xdigit_value(hex[2 * i + 1]);
    }
    if (len) {
        *len = n;
    }
    return out;
}

static void assert_hex(const uint8_t *buf, size_t len, const char *hex)
{
    size_t n;
    g_autofree uint8_t *want = unhex(hex, &n);

    g_assert_cmpuint(n, ==, len);
    g_assert_cmpmem(buf, len, want, n);
}

/* RFC 4231 test case 2. */
static void test_hmac_sha256(void)
{
    uint8_t mac[32];
    const char *data = "what do ya want for nothing?";

    qcrypto_hmac_sha256((const uint8_t *)"Jefe", 4, (const uint8_t *)data,
                        strlen(data), mac);
    assert_hex(mac, sizeof(mac),
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* RFC 5869 test case 1. */
static void test_hkdf_sha256(void)
{
    size_t ikm_len, salt_len, info_len;
    g_autofree uint8_t *ikm = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                                    &ikm_len);
    g_autofree uint8_t *salt = unhex("000102030405060708090a0b0c", &salt_len);
    g_autofree uint8_t *info = unhex("f0f1f2f3f4f5f6f7f8f9", &info_len);
    uint8_t okm[42];

    g_assert_true(qcrypto_hkdf_sha256(ikm, ikm_len, salt, salt_len, info, info_len,
                                      okm, sizeof(okm)));
    assert_hex(okm, sizeof(okm),
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
               "34007208d5b887185865");
    /* Different labels give unrelated subkeys; too long an output is refused. */
    {
        uint8_t a[32], b[32], big[1];
        qcrypto_hkdf_sha256(ikm, ikm_len, salt, salt_len, (const uint8_t *)"a", 1, a, 32);
        qcrypto_hkdf_sha256(ikm, ikm_len, salt, salt_len, (const uint8_t *)"b", 1, b, 32);
        g_assert_false(qcrypto_mem_equal(a, b, 32));
        g_assert_false(qcrypto_hkdf_sha256(ikm, ikm_len, salt, salt_len, NULL, 0, big,
                                           255 * 32 + 1));
    }
}

/* Widely published PBKDF2-HMAC-SHA256 vectors ("password", "salt"). */
static void test_pbkdf2_sha256(void)
{
    uint8_t dk[32];
    const uint8_t *pw = (const uint8_t *)"password";
    const uint8_t *salt = (const uint8_t *)"salt";

    qcrypto_pbkdf2_sha256(pw, 8, salt, 4, 1, dk, sizeof(dk));
    assert_hex(dk, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
    qcrypto_pbkdf2_sha256(pw, 8, salt, 4, 2, dk, sizeof(dk));
    assert_hex(dk, 32, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43");
    qcrypto_pbkdf2_sha256(pw, 8, salt, 4, 4096, dk, sizeof(dk));
    assert_hex(dk, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
}

/* GCM spec (McGrew/Viega) test cases 13 and 14: AES-256, zero key and IV. */
static void test_aead_vectors(void)
{
    uint8_t key[32] = { 0 }, nonce[12] = { 0 }, tag[16];
    uint8_t pt[16] = { 0 }, ct[16], back[16];

    qcrypto_aead_encrypt(key, nonce, NULL, 0, NULL, 0, NULL, tag);
    assert_hex(tag, 16, "530f8afbc74536b9a963b4f1c4cb738b");

    qcrypto_aead_encrypt(key, nonce, NULL, 0, pt, 16, ct, tag);
    assert_hex(ct, 16, "cea7403d4d606b6e074ec5d3baf39d18");
    assert_hex(tag, 16, "d0d1c8a799996bf0265b98b5d48ab919");
    g_assert_true(qcrypto_aead_decrypt(key, nonce, NULL, 0, ct, 16, back, tag));
    g_assert_cmpmem(back, 16, pt, 16);
}

/* Any change to ciphertext, tag, AD, nonce or key fails, and wipes the output. */
static void test_aead_tamper(void)
{
    uint8_t key[32], nonce[12], tag[16], bad[16];
    uint8_t ad[36];
    g_autofree uint8_t *pt = g_malloc(1000);
    g_autofree uint8_t *ct = g_malloc(1000);
    g_autofree uint8_t *out = g_malloc(1000);
    GError *err = NULL;

    g_assert_cmpint(qcrypto_random_bytes(key, sizeof(key), &err), ==, 0);
    g_assert_cmpint(qcrypto_random_bytes(nonce, sizeof(nonce), &err), ==, 0);
    g_assert_cmpint(qcrypto_random_bytes(pt, 1000, &err), ==, 0);
    memset(ad, 0xa5, sizeof(ad));
    qcrypto_aead_encrypt(key, nonce, ad, sizeof(ad), pt, 1000, ct, tag);
    g_assert_true(qcrypto_aead_decrypt(key, nonce, ad, sizeof(ad), ct, 1000, out, tag));
    g_assert_cmpmem(out, 1000, pt, 1000);

    for (int what = 0; what < 5; what++) {
        memcpy(bad, tag, 16);
        memset(out, 0x55, 1000);
        switch (what) {
        case 0: ct[500] ^= 1; break;
        case 1: bad[15] ^= 0x80; break;
        case 2: ad[35] ^= 1; break;
        case 3: nonce[0] ^= 1; break;
        case 4: key[31] ^= 1; break;
        }
        g_assert_false(qcrypto_aead_decrypt(key, nonce, ad, sizeof(ad), ct, 1000, out,
                                            bad));
        for (int i = 0; i < 1000; i++) {
            g_assert_cmpuint(out[i], ==, 0);
        }
        switch (what) {
        case 0: ct[500] ^= 1; break;
        case 2: ad[35] ^= 1; break;
        case 3: nonce[0] ^= 1; break;
        case 4: key[31] ^= 1; break;
        }
    }
}

static void test_random_and_wipe(void)
{
    uint8_t a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };

    g_assert_cmpint(qcrypto_random_bytes(a, 32, NULL), ==, 0);
    g_assert_cmpint(qcrypto_random_bytes(b, 32, NULL), ==, 0);
    g_assert_false(qcrypto_mem_equal(a, b, 32));
    qcrypto_memwipe(a, sizeof(a));
    g_assert_cmpmem(a, 32, zero, 32);
    g_assert_true(qcrypto_mem_equal(a, zero, 32));
}

/*
 * Blobs sealed by earlier builds went through nettle's GCM: the same bytes
 * must come out, in place and out of place, with and without associated
 * data, at a large blob's size and at odd lengths.
 */
static void test_aead_matches_nettle(void)
{
    static const size_t lens[] = { 1, 15, 16, 17, 4000, 177152, 177153 };
    uint8_t key[QCRYPTO_AEAD_KEY_LEN], nonce[QCRYPTO_AEAD_NONCE_LEN], ad[37];
    g_autofree uint8_t *pt = g_malloc(177153);
    g_autofree uint8_t *ct = g_malloc(177153);
    g_autofree uint8_t *ref = g_malloc(177153);
    g_autofree uint8_t *back = g_malloc(177153);
    GRand *r = g_rand_new_with_seed(5);

    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = g_rand_int(r);
    }
    for (size_t i = 0; i < sizeof(nonce); i++) {
        nonce[i] = g_rand_int(r);
    }
    for (size_t i = 0; i < sizeof(ad); i++) {
        ad[i] = g_rand_int(r);
    }
    for (size_t i = 0; i < 177153; i++) {
        pt[i] = g_rand_int(r);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        for (size_t ad_len = 0; ad_len <= sizeof(ad); ad_len += sizeof(ad)) {
            struct gcm_aes256_ctx ctx;
            uint8_t tag[QCRYPTO_AEAD_TAG_LEN], ref_tag[QCRYPTO_AEAD_TAG_LEN];
            size_t len = lens[i];

            gcm_aes256_set_key(&ctx, key);
            gcm_aes256_set_iv(&ctx, sizeof(nonce), nonce);
            gcm_aes256_update(&ctx, ad_len, ad);
            gcm_aes256_encrypt(&ctx, len, ref, pt);
            gcm_aes256_digest(&ctx, sizeof(ref_tag), ref_tag);

            qcrypto_aead_encrypt(key, nonce, ad, ad_len, pt, len, ct, tag);
            g_assert_true(memcmp(ct, ref, len) == 0);
            g_assert_true(memcmp(tag, ref_tag, sizeof(tag)) == 0);

            memcpy(back, pt, len);
            qcrypto_aead_encrypt(key, nonce, ad, ad_len, back, len, back, tag);
            g_assert_true(memcmp(back, ref, len) == 0);
            g_assert_true(qcrypto_aead_decrypt(key, nonce, ad, ad_len, back, len, back,
                                               ref_tag));
            g_assert_true(memcmp(back, pt, len) == 0);
        }
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crypto/hmac-sha256", test_hmac_sha256);
    g_test_add_func("/crypto/hkdf-sha256", test_hkdf_sha256);
    g_test_add_func("/crypto/pbkdf2-sha256", test_pbkdf2_sha256);
    g_test_add_func("/crypto/aead/vectors", test_aead_vectors);
    g_test_add_func("/crypto/aead/tamper", test_aead_tamper);
    g_test_add_func("/crypto/aead/matches-nettle", test_aead_matches_nettle);
    g_test_add_func("/crypto/random-and-wipe", test_random_and_wipe);
    return g_test_run();
}
