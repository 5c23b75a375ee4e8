/*
 * swtpm state files: decode and encode the blob header and TLV body.
 * Format: docs/swtpm-state.md. Every read is bounds-checked against the
 * buffer the caller handed in; nothing here trusts a length from the file.
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/swtpm-blob.h"

#include <nettle/aes.h>
#include <nettle/cbc.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/pbkdf2.h>
#include <nettle/sha2.h>

/*
 * Keys and plaintext TPM state are overwritten before their memory is
 * freed or goes out of scope; explicit_bzero is a store the compiler keeps
 * where a memset before free may be dropped. (This layer sits below
 * crypto/, so qcrypto_memwipe is not at hand.)
 */
static void swtpm_wipe(void *p, size_t len)
{
    explicit_bzero(p, len);
}

#define AES_BLOCK 16

/* docs/swtpm-state.md "Blob header" */
bool swtpm_blob_parse_header(const uint8_t *buf, size_t len, const char *what,
                             SwtpmBlobHeader *hdr, GError **errp)
{
    const uint16_t known = SWTPM_BLOB_FLAG_ENCRYPTED |
                           SWTPM_BLOB_FLAG_ENCRYPTED_256BIT_KEY;

    if (len < SWTPM_BLOB_HEADER_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s' is %zu bytes long, shorter than a swtpm blob "
                    "header (%d bytes)", what, len, SWTPM_BLOB_HEADER_SIZE);
        return false;
    }
    hdr->version = buf[0];
    hdr->min_version = buf[1];
    hdr->hdrsize = lduw_be_p(buf + 2);
    hdr->flags = lduw_be_p(buf + 4);
    hdr->totlen = ldl_be_p(buf + 6);

    if (hdr->totlen != len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': the swtpm blob header gives a length of %" PRIu32
                    " bytes but the file has %zu", what, hdr->totlen, len);
        return false;
    }
    if (hdr->hdrsize != SWTPM_BLOB_HEADER_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': the swtpm blob header size is %u, expected %d",
                    what, hdr->hdrsize, SWTPM_BLOB_HEADER_SIZE);
        return false;
    }
    if (hdr->min_version == 0) {
        /* swtpm never writes it; outside the HMAC, it is a flipped bit. */
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': the swtpm blob header's minimum version is 0, which "
                    "swtpm never writes", what);
        return false;
    }
    if (hdr->min_version > SWTPM_BLOB_VERSION || hdr->version == 0 ||
        hdr->min_version > hdr->version) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s': swtpm blob header version %u (minimum %u) is not "
                    "supported; versions 1 and 2 are", what, hdr->version,
                    hdr->min_version);
        return false;
    }
    if (hdr->version > SWTPM_BLOB_VERSION) {
        /* swtpm itself reads no body format beyond version 2 */
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s': swtpm blob header version %u is not supported; "
                    "versions 1 and 2 are", what, hdr->version);
        return false;
    }
    if (hdr->flags & (SWTPM_BLOB_FLAG_MIGRATION_ENCRYPTED |
                      SWTPM_BLOB_FLAG_MIGRATION_DATA |
                      SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s' is a swtpm migration blob (flags 0x%04x), not a "
                    "state file", what, hdr->flags);
        return false;
    }
    if (hdr->flags & ~known) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s': unknown swtpm blob header flags 0x%04x", what,
                    hdr->flags & ~known);
        return false;
    }
    if (!(hdr->flags & SWTPM_BLOB_FLAG_ENCRYPTED) &&
        (hdr->flags & SWTPM_BLOB_FLAG_ENCRYPTED_256BIT_KEY)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': swtpm blob header flags 0x%04x name a key size "
                    "but no encryption", what, hdr->flags);
        return false;
    }
    return true;
}

/* docs/swtpm-state.md "TLV body" */
int swtpm_tlv_find(const uint8_t *buf, size_t len, uint16_t tag,
                   const char *what, SwtpmTlv *out, GError **errp)
{
    size_t off = 0;
    bool found = false;

    while (off < len) {
        uint16_t t;
        uint32_t l;

        if (len - off < SWTPM_TLV_HEADER_SIZE) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "'%s': truncated TLV header at offset %zu", what,
                        off + SWTPM_BLOB_HEADER_SIZE);
            return -1;
        }
        t = lduw_be_p(buf + off);
        l = ldl_be_p(buf + off + 2);
        off += SWTPM_TLV_HEADER_SIZE;
        if (l > len - off) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "'%s': TLV with tag %u at offset %zu claims %" PRIu32
                        " bytes but only %zu follow", what, t,
                        off - SWTPM_TLV_HEADER_SIZE + SWTPM_BLOB_HEADER_SIZE,
                        l, len - off);
            return -1;
        }
        if (t == tag && !found) {
            out->tag = t;
            out->length = l;
            out->value = buf + off;
            found = true;
        }
        off += l;
    }
    return found ? 1 : 0;
}

static bool tlv_require(const uint8_t *body, size_t blen, uint16_t tag,
                        const char *what, const char *name, SwtpmTlv *out,
                        GError **errp)
{
    int r = swtpm_tlv_find(body, blen, tag, what, out, errp);

    if (r == 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s' has no %s (TLV tag %u)", what, name, tag);
    }
    return r == 1;
}

/*
 * AES-128 or AES-256 (by the key's length) in CBC mode. A NULL @iv_in
 * is the all-zero IV of swtpm files that carry no IV.
 */
static void aes_cbc(const SwtpmKey *key, bool encrypt, const uint8_t *iv_in,
                    const uint8_t *src, size_t len, uint8_t *dst)
{
    uint8_t iv[AES_BLOCK] = { 0 };
    union {
        struct aes128_ctx aes128;
        struct aes256_ctx aes256;
    } ctx;
    nettle_cipher_func *cipher;

    if (iv_in) {
        memcpy(iv, iv_in, AES_BLOCK);
    }
    if (key->len == 32) {
        if (encrypt) {
            aes256_set_encrypt_key(&ctx.aes256, key->bytes);
            cipher = (nettle_cipher_func *)aes256_encrypt;
        } else {
            aes256_set_decrypt_key(&ctx.aes256, key->bytes);
            cipher = (nettle_cipher_func *)aes256_decrypt;
        }
    } else {
        if (encrypt) {
            aes128_set_encrypt_key(&ctx.aes128, key->bytes);
            cipher = (nettle_cipher_func *)aes128_encrypt;
        } else {
            aes128_set_decrypt_key(&ctx.aes128, key->bytes);
            cipher = (nettle_cipher_func *)aes128_decrypt;
        }
    }
    if (encrypt) {
        cbc_encrypt(&ctx, cipher, AES_BLOCK, iv, len, dst, src);
    } else {
        cbc_decrypt(&ctx, cipher, AES_BLOCK, iv, len, dst, src);
    }
    swtpm_wipe(&ctx, sizeof(ctx));
}

/* swtpm keys its HMAC with the AES key itself and covers ciphertext || IV. */
static void swtpm_hmac(const SwtpmKey *key, const uint8_t *ct, size_t ct_len,
                       const uint8_t *iv, size_t iv_len,
                       uint8_t mac[SWTPM_HMAC_SIZE])
{
    struct hmac_sha256_ctx ctx;

    hmac_sha256_set_key(&ctx, key->len, key->bytes);
    hmac_sha256_update(&ctx, ct_len, ct);
    if (iv) {
        hmac_sha256_update(&ctx, iv_len, iv);
    }
    hmac_sha256_digest(&ctx, SWTPM_HMAC_SIZE, mac);
    swtpm_wipe(&ctx, sizeof(ctx));
}

/*
 * Decrypts and strips swtpm's padding: pad bytes all equal the pad length,
 * which is 1..key length (swtpm pads to a multiple of the key length).
 */
static bool decrypt_unpad(const SwtpmKey *key, const uint8_t *iv,
                          const uint8_t *ct, size_t ct_len, const char *what,
                          int bad_code, uint8_t **out,
                          size_t *out_len, GError **errp)
{
    uint8_t *pt;
    unsigned pad, bad = 0;

    if (ct_len < key->len || ct_len % AES_BLOCK) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': encrypted data of %zu bytes is not a whole number "
                    "of AES blocks of at least the key length", what, ct_len);
        return false;
    }
    pt = g_malloc(ct_len);
    aes_cbc(key, false, iv, ct, ct_len, pt);
    pad = pt[ct_len - 1];
    if (pad == 0 || pad > key->len) {
        bad = 1;
    } else {
        for (size_t i = ct_len - pad; i < ct_len; i++) {
            bad |= pt[i] != pad;
        }
    }
    if (bad) {
        swtpm_wipe(pt, ct_len);
        g_free(pt);
        g_set_error(errp, QTPM_ERROR, bad_code,
                    "'%s': bad padding after decryption", what);
        return false;
    }
    *out = pt;
    *out_len = ct_len - pad;
    return true;
}

/*
 * State files and migration blobs seal the same way, under their own tags:
 * TAG_ENCRYPTED_DATA / TAG_IVEC_ENCRYPTED_DATA with the state key,
 * TAG_ENCRYPTED_MIGRATION_DATA / TAG_IVEC_ENCRYPTED_MIGRATION_DATA with the
 * migration key; TAG_HMAC is shared.
 */
static bool decode_encrypted_tlvs(const uint8_t *body, size_t blen,
                                  const SwtpmKey *key, uint16_t tag_data,
                                  uint16_t tag_iv, const char *what,
                                  uint8_t **out, size_t *out_len,
                                  GError **errp)
{
    SwtpmTlv hmac, ct, iv = { 0 };
    uint8_t mac[SWTPM_HMAC_SIZE];
    int r;

    if (!tlv_require(body, blen, SWTPM_TAG_HMAC, what, "HMAC", &hmac, errp) ||
        !tlv_require(body, blen, tag_data, what, "encrypted data", &ct,
                     errp)) {
        return false;
    }
    r = swtpm_tlv_find(body, blen, tag_iv, what, &iv, errp);
    if (r < 0) {
        return false;
    }
    if (hmac.length != SWTPM_HMAC_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': the HMAC is %" PRIu32 " bytes, expected %d", what,
                    hmac.length, SWTPM_HMAC_SIZE);
        return false;
    }
    /* swtpm's IV is as long as its key; AES-CBC uses the first block */
    if (r == 1 && iv.length != key->len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': the IV is %" PRIu32 " bytes, expected %zu", what,
                    iv.length, key->len);
        return false;
    }
    swtpm_hmac(key, ct.value, ct.length, r == 1 ? iv.value : NULL, iv.length,
               mac);
    if (!memeql_sec(mac, hmac.value, SWTPM_HMAC_SIZE)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "'%s': HMAC check failed: wrong swtpm key or a damaged "
                    "file", what);
        return false;
    }
    /* The HMAC matched: a bad pad now means swtpm wrote a bad file. */
    return decrypt_unpad(key, r == 1 ? iv.value : NULL, ct.value, ct.length,
                         what, QTPM_ERROR_CORRUPT, out, out_len,
                         errp);
}

/* Version 1: AES-CBC with a zero IV over SHA-256(data) || data. */
static bool decode_encrypted_v1(const uint8_t *body, size_t blen,
                                const SwtpmKey *key, const char *what,
                                uint8_t **out, size_t *out_len, GError **errp)
{
    uint8_t *pt;
    size_t pt_len;
    uint8_t digest[SHA256_DIGEST_SIZE];
    struct sha256_ctx ctx;

    if (!decrypt_unpad(key, NULL, body, blen, what, QTPM_ERROR_WRONG_KEY,
                       &pt, &pt_len, errp)) {
        return false;
    }
    if (pt_len < SHA256_DIGEST_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "'%s': hash check failed: wrong swtpm key or a damaged "
                    "file", what);
        swtpm_wipe(pt, pt_len);
        g_free(pt);
        return false;
    }
    sha256_init(&ctx);
    sha256_update(&ctx, pt_len - SHA256_DIGEST_SIZE, pt + SHA256_DIGEST_SIZE);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    if (!memeql_sec(digest, pt, SHA256_DIGEST_SIZE)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "'%s': hash check failed: wrong swtpm key or a damaged "
                    "file", what);
        swtpm_wipe(pt, pt_len);
        g_free(pt);
        return false;
    }
    *out_len = pt_len - SHA256_DIGEST_SIZE;
    *out = g_memdup2(pt + SHA256_DIGEST_SIZE, *out_len);
    swtpm_wipe(pt, pt_len);
    g_free(pt);
    return true;
}

bool swtpm_blob_is_encrypted(const uint8_t *buf, size_t len)
{
    SwtpmBlobHeader hdr;

    return swtpm_blob_parse_header(buf, len, "", &hdr, NULL) &&
           (hdr.flags & SWTPM_BLOB_FLAG_ENCRYPTED);
}

size_t swtpm_blob_key_length(const uint8_t *buf, size_t len)
{
    SwtpmBlobHeader hdr;

    if (!swtpm_blob_parse_header(buf, len, "", &hdr, NULL) ||
        !(hdr.flags & SWTPM_BLOB_FLAG_ENCRYPTED)) {
        return 0;
    }
    return (hdr.flags & SWTPM_BLOB_FLAG_ENCRYPTED_256BIT_KEY) ? 32 : 16;
}

bool swtpm_blob_decode(const uint8_t *buf, size_t len, const SwtpmKey *key,
                       const char *what, uint8_t **out, size_t *out_len,
                       GError **errp)
{
    SwtpmBlobHeader hdr;
    const uint8_t *body;
    size_t blen;
    size_t need;

    if (!swtpm_blob_parse_header(buf, len, what, &hdr, errp)) {
        return false;
    }
    body = buf + SWTPM_BLOB_HEADER_SIZE;
    blen = len - SWTPM_BLOB_HEADER_SIZE;

    if (!(hdr.flags & SWTPM_BLOB_FLAG_ENCRYPTED)) {
        SwtpmTlv data;

        if (key) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' is not encrypted, but a swtpm key was given",
                        what);
            return false;
        }
        if (hdr.version == 1) {
            *out = g_memdup2(body, blen);
            *out_len = blen;
            return true;
        }
        if (!tlv_require(body, blen, SWTPM_TAG_DATA, what, "data", &data,
                         errp)) {
            return false;
        }
        *out = g_memdup2(data.value, data.length);
        *out_len = data.length;
        return true;
    }

    if (!key) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NO_KEY,
                    "'%s' is encrypted and no swtpm key was given", what);
        return false;
    }
    need = (hdr.flags & SWTPM_BLOB_FLAG_ENCRYPTED_256BIT_KEY) ? 32 : 16;
    if (key->len != need) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "'%s' is encrypted with a %zu-bit key but the swtpm key "
                    "given has %zu bits", what, need * 8, key->len * 8);
        return false;
    }
    if (hdr.version == 1) {
        return decode_encrypted_v1(body, blen, key, what, out, out_len, errp);
    }
    return decode_encrypted_tlvs(body, blen, key, SWTPM_TAG_ENCRYPTED_DATA,
                                 SWTPM_TAG_IVEC_ENCRYPTED_DATA, what, out,
                                 out_len, errp);
}

bool swtpm_blob_is_migration(const uint8_t *buf, size_t len)
{
    return len >= SWTPM_BLOB_HEADER_SIZE &&
           lduw_be_p(buf + 2) == SWTPM_BLOB_HEADER_SIZE &&
           ldl_be_p(buf + 6) == len &&
           (lduw_be_p(buf + 4) & (SWTPM_BLOB_FLAG_MIGRATION_DATA |
                                  SWTPM_BLOB_FLAG_MIGRATION_ENCRYPTED));
}

/* The migration key of the size the blob's header names, or NULL. */
static const SwtpmKey *migration_key_for(const SwtpmMigrationKey *mkey,
                                         uint16_t flags)
{
    const SwtpmKey *k = (flags & SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY)
                        ? &mkey->aes256 : &mkey->aes128;

    return k->len ? k : NULL;
}

/*
 * swtpm_nvstore.c's SWTPM_NVRAM_GetStateBlob wraps, SetStateBlob unwraps:
 * docs/swtpm-state.md "Migration blobs".
 */
bool swtpm_blob_decode_migration_key(const uint8_t *buf, size_t len,
                                     const SwtpmMigrationKey *mkey,
                                     const char *what, uint8_t **out,
                                     size_t *out_len, GError **errp)
{
    const uint16_t known = SWTPM_BLOB_FLAG_MIGRATION_DATA |
                           SWTPM_BLOB_FLAG_MIGRATION_ENCRYPTED |
                           SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY;
    const uint8_t *body = buf + SWTPM_BLOB_HEADER_SIZE;
    size_t blen = len - SWTPM_BLOB_HEADER_SIZE;
    g_autofree uint8_t *opened = NULL;
    size_t opened_len = 0;
    const SwtpmKey *key;
    SwtpmTlv mig, data;
    uint16_t flags;
    bool ok;

    if (!swtpm_blob_is_migration(buf, len)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s' is not a swtpm migration blob", what);
        return false;
    }
    flags = lduw_be_p(buf + 4);
    if (buf[1] == 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': the swtpm blob header's minimum version is 0, which "
                    "swtpm never writes", what);
        return false;
    }
    if (buf[0] != SWTPM_BLOB_VERSION || buf[1] > SWTPM_BLOB_VERSION) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s': swtpm migration blob version %u is not supported; "
                    "version 2 is", what, buf[0]);
        return false;
    }
    if (flags & (SWTPM_BLOB_FLAG_ENCRYPTED |
                 SWTPM_BLOB_FLAG_ENCRYPTED_256BIT_KEY)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s' is still encrypted under swtpm's state key", what);
        return false;
    }
    if (flags & ~known) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s': unknown swtpm blob header flags 0x%04x", what,
                    flags & ~known);
        return false;
    }
    if (!(flags & SWTPM_BLOB_FLAG_MIGRATION_ENCRYPTED)) {
        if (flags & SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "'%s': swtpm blob header flags 0x%04x name a "
                        "migration key size but no encryption", what, flags);
            return false;
        }
        if (!tlv_require(body, blen, SWTPM_TAG_MIGRATION_DATA, what,
                         "migration data", &mig, errp) ||
            !tlv_require(mig.value, mig.length, SWTPM_TAG_DATA, what, "data",
                         &data, errp)) {
            return false;
        }
        *out = g_memdup2(data.value, data.length);
        *out_len = data.length;
        return true;
    }

    if (!(flags & SWTPM_BLOB_FLAG_MIGRATION_DATA)) {
        /* swtpm sets both; the header is outside the HMAC. */
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': swtpm blob header flags 0x%04x seal migration data "
                    "but do not name it", what, flags);
        return false;
    }
    if (!mkey) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NO_KEY,
                    "'%s' is sealed under swtpm's migration key and no "
                    "migration key was given", what);
        return false;
    }
    key = migration_key_for(mkey, flags);
    if (!key) {
        size_t need = (flags & SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY) ? 32 : 16;

        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "'%s' is sealed under a %zu-bit swtpm migration key but "
                    "the key given has %zu bits", what, need * 8,
                    (need == 32 ? mkey->aes128.len : mkey->aes256.len) * 8);
        return false;
    }
    if (!decode_encrypted_tlvs(body, blen, key,
                               SWTPM_TAG_ENCRYPTED_MIGRATION_DATA,
                               SWTPM_TAG_IVEC_ENCRYPTED_MIGRATION_DATA, what,
                               &opened, &opened_len, errp)) {
        return false;
    }
    /* Under the seal: the state file's TLVs, as in the plain form. */
    ok = tlv_require(opened, opened_len, SWTPM_TAG_DATA, what, "data", &data,
                     errp);
    if (ok) {
        *out = g_memdup2(data.value, data.length);
        *out_len = data.length;
    }
    swtpm_wipe(opened, opened_len);
    return ok;
}

bool swtpm_blob_decode_migration(const uint8_t *buf, size_t len,
                                 const char *what, uint8_t **out,
                                 size_t *out_len, GError **errp)
{
    if (swtpm_blob_is_migration(buf, len) &&
        (lduw_be_p(buf + 4) & (SWTPM_BLOB_FLAG_MIGRATION_ENCRYPTED |
                               SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY))) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s' is sealed under a swtpm migration key", what);
        return false;
    }
    return swtpm_blob_decode_migration_key(buf, len, NULL, what, out, out_len,
                                           errp);
}

static uint8_t *put_tlv(uint8_t *p, uint16_t tag, const uint8_t *v,
                        uint32_t len)
{
    stw_be_p(p, tag);
    stl_be_p(p + 2, len);
    memcpy(p + SWTPM_TLV_HEADER_SIZE, v, len);
    return p + SWTPM_TLV_HEADER_SIZE + len;
}

static void put_header(uint8_t *p, uint16_t flags, uint32_t totlen)
{
    p[0] = SWTPM_BLOB_VERSION;
    p[1] = 1;   /* what swtpm writes: version 1 readers may try */
    stw_be_p(p + 2, SWTPM_BLOB_HEADER_SIZE);
    stw_be_p(p + 4, flags);
    stl_be_p(p + 6, totlen);
}

uint8_t *swtpm_blob_encode_plain(const uint8_t *data, size_t len,
                                 size_t *out_len)
{
    size_t total = SWTPM_BLOB_HEADER_SIZE + SWTPM_TLV_HEADER_SIZE + len;
    uint8_t *buf;

    g_return_val_if_fail(len <= UINT32_MAX - 64, NULL);
    buf = g_malloc(total);
    put_header(buf, 0, total);
    put_tlv(buf + SWTPM_BLOB_HEADER_SIZE, SWTPM_TAG_DATA, data, len);
    *out_len = total;
    return buf;
}

/*
 * AES-CBC with the key's size, swtpm's padding to the key length, and
 * HMAC-SHA256 over ciphertext || IV: the three TLVs in the order swtpm
 * writes them (data, HMAC, IV), at @p. Returns the end.
 */
static size_t encrypted_tlvs_size(size_t len, const SwtpmKey *key)
{
    return 3 * SWTPM_TLV_HEADER_SIZE + len + key->len - len % key->len +
           SWTPM_HMAC_SIZE + key->len;
}

static uint8_t *put_encrypted_tlvs(uint8_t *p, const uint8_t *data, size_t len,
                                   const SwtpmKey *key, const uint8_t *iv,
                                   uint16_t tag_data, uint16_t tag_iv)
{
    size_t pad = key->len - len % key->len, ct_len = len + pad;
    uint8_t *pt = g_malloc(ct_len), *ct = g_malloc(ct_len);
    uint8_t mac[SWTPM_HMAC_SIZE];

    memcpy(pt, data, len);
    memset(pt + len, (int)pad, pad);
    aes_cbc(key, true, iv, pt, ct_len, ct);
    swtpm_wipe(pt, ct_len);
    g_free(pt);
    swtpm_hmac(key, ct, ct_len, iv, key->len, mac);
    p = put_tlv(p, tag_data, ct, ct_len);
    p = put_tlv(p, SWTPM_TAG_HMAC, mac, SWTPM_HMAC_SIZE);
    p = put_tlv(p, tag_iv, iv, key->len);
    g_free(ct);
    return p;
}

uint8_t *swtpm_blob_encode_encrypted(const uint8_t *data, size_t len,
                                     const SwtpmKey *key, const uint8_t *iv,
                                     size_t *out_len)
{
    size_t total;
    uint8_t *buf;
    uint16_t flags = SWTPM_BLOB_FLAG_ENCRYPTED;

    g_return_val_if_fail(key->len == 16 || key->len == 32, NULL);
    g_return_val_if_fail(len <= UINT32_MAX - 256, NULL);
    if (key->len == 32) {
        flags |= SWTPM_BLOB_FLAG_ENCRYPTED_256BIT_KEY;
    }
    total = SWTPM_BLOB_HEADER_SIZE + encrypted_tlvs_size(len, key);
    buf = g_malloc(total);
    put_header(buf, flags, total);
    put_encrypted_tlvs(buf + SWTPM_BLOB_HEADER_SIZE, data, len, key, iv,
                       SWTPM_TAG_ENCRYPTED_DATA, SWTPM_TAG_IVEC_ENCRYPTED_DATA);
    *out_len = total;
    return buf;
}

uint8_t *swtpm_blob_encode_migration(const uint8_t *data, size_t len,
                                     const SwtpmKey *key, const uint8_t *iv,
                                     size_t *out_len)
{
    size_t inner = SWTPM_TLV_HEADER_SIZE + len, total;
    uint16_t flags = SWTPM_BLOB_FLAG_MIGRATION_DATA;
    uint8_t *tlv, *buf;

    g_return_val_if_fail(!key || key->len == 16 || key->len == 32, NULL);
    g_return_val_if_fail(len <= UINT32_MAX - 256, NULL);
    tlv = g_malloc(inner);
    put_tlv(tlv, SWTPM_TAG_DATA, data, len);
    if (key) {
        flags |= SWTPM_BLOB_FLAG_MIGRATION_ENCRYPTED;
        if (key->len == 32) {
            flags |= SWTPM_BLOB_FLAG_MIGRATION_256BIT_KEY;
        }
        total = SWTPM_BLOB_HEADER_SIZE + encrypted_tlvs_size(inner, key);
        buf = g_malloc(total);
        put_encrypted_tlvs(buf + SWTPM_BLOB_HEADER_SIZE, tlv, inner, key, iv,
                           SWTPM_TAG_ENCRYPTED_MIGRATION_DATA,
                           SWTPM_TAG_IVEC_ENCRYPTED_MIGRATION_DATA);
    } else {
        total = SWTPM_BLOB_HEADER_SIZE + SWTPM_TLV_HEADER_SIZE + inner;
        buf = g_malloc(total);
        put_tlv(buf + SWTPM_BLOB_HEADER_SIZE, SWTPM_TAG_MIGRATION_DATA, tlv,
                inner);
    }
    put_header(buf, flags, total);
    swtpm_wipe(tlv, inner);
    g_free(tlv);
    *out_len = total;
    return buf;
}

static bool parse_hex_key(const uint8_t *buf, size_t len, const char *what,
                          SwtpmKey *key, GError **errp)
{
    size_t i = 0, digits = 0;

    if (len >= 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
        i = 2;
    }
    for (; i < len && g_ascii_xdigit_value(buf[i]) >= 0; i++, digits++) {
        if (digits / 2 >= SWTPM_KEY_MAX) {
            break;
        }
        if (digits % 2) {
            key->bytes[digits / 2] |= g_ascii_xdigit_value(buf[i]);
        } else {
            key->bytes[digits / 2] = g_ascii_xdigit_value(buf[i]) << 4;
        }
    }
    for (; i < len; i++) {
        if (!g_ascii_isspace(buf[i])) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s': a hex swtpm key holds 32 or 64 hex digits, "
                        "found an unexpected character at byte %zu", what, i);
            return false;
        }
    }
    if (digits != 32 && digits != 64) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': a hex swtpm key holds 32 or 64 hex digits, found "
                    "%zu", what, digits);
        return false;
    }
    key->len = digits / 2;
    return true;
}

bool swtpm_key_parse(const uint8_t *buf, size_t len, SwtpmKeyFormat format,
                     const char *what, SwtpmKey *key, GError **errp)
{
    swtpm_wipe(key, sizeof(*key));
    if (format == SWTPM_KEY_FORMAT_HEX) {
        if (!parse_hex_key(buf, len, what, key, errp)) {
            swtpm_wipe(key, sizeof(*key));
            return false;
        }
        return true;
    }
    if (len != 16 && len != 32) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': a binary swtpm key is 16 or 32 bytes, the file has "
                    "%zu", what, len);
        return false;
    }
    memcpy(key->bytes, buf, len);
    key->len = len;
    return true;
}

void swtpm_key_from_passphrase(const uint8_t *pass, size_t len, SwtpmKdf kdf,
                               size_t keylen, SwtpmKey *key)
{
    /* swtpm's fixed salt and iteration count (src/swtpm/key.c) */
    static const uint8_t salt[] = { 's', 'w', 't', 'p', 'm' };

    g_assert(keylen == 16 || keylen == 32);
    swtpm_wipe(key, sizeof(*key));
    if (kdf == SWTPM_KDF_SHA512) {
        struct sha512_ctx ctx;
        uint8_t digest[SHA512_DIGEST_SIZE];

        sha512_init(&ctx);
        sha512_update(&ctx, len, pass);
        sha512_digest(&ctx, sizeof(digest), digest);
        memcpy(key->bytes, digest, keylen);
        swtpm_wipe(digest, sizeof(digest));
        swtpm_wipe(&ctx, sizeof(ctx));
    } else {
        pbkdf2_hmac_sha512(len, pass, 1000, sizeof(salt), salt, keylen,
                           key->bytes);
    }
    key->len = keylen;
}

void swtpm_migration_key_from_passphrase(const uint8_t *pass, size_t len,
                                         SwtpmKdf kdf, SwtpmMigrationKey *mkey)
{
    swtpm_key_from_passphrase(pass, len, kdf, 16, &mkey->aes128);
    swtpm_key_from_passphrase(pass, len, kdf, 32, &mkey->aes256);
}

void swtpm_migration_key_from_key(const SwtpmKey *key, SwtpmMigrationKey *mkey)
{
    swtpm_wipe(mkey, sizeof(*mkey));
    if (key->len == 32) {
        mkey->aes256 = *key;
    } else {
        mkey->aes128 = *key;
    }
}
