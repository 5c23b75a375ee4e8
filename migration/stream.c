/*
 * Migration stream codec (docs/migration-stream.md). Pure functions over
 * buffers: no I/O, no global state, so fuzzers and unit tests call it
 * directly.
 */
#include "qemu/osdep.h"
#include "qemu/crc32.h"


#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/pbkdf.h"
#include "crypto/key.h"
#include "crypto/random.h"
#include "migration/stream.h"

/*
 * Associated data of a sealed payload (docs/migration-stream.md section 4):
 * binds it to this stream's image, its place and the header's mode.
 */
typedef struct __attribute__((packed)) MigWireSealAD {
    char magic[MIG_STREAM_MAGIC_SIZE];
    uint8_t image_uuid[MIG_UUID_SIZE];
    uint32_t type;
    uint32_t seq;
    uint32_t flags;
    uint32_t storage;
} MigWireSealAD;

G_STATIC_ASSERT(sizeof(MigWireSealAD) == 40);

G_STATIC_ASSERT(MIG_SEAL_NONCE_SIZE == QCRYPTO_AEAD_NONCE_LEN);
G_STATIC_ASSERT(MIG_SEAL_TAG_SIZE == QCRYPTO_AEAD_TAG_LEN);

/* The END section's payload: how many sections came before it. */
typedef struct __attribute__((packed)) MigWireEnd {
    uint32_t count;
} MigWireEnd;

G_STATIC_ASSERT(sizeof(MigWireEnd) == 4);

#define LABEL_SEAL "qtpm migration v1 seal"
#define LABEL_KCV "qtpm migration v1 key-check"

/* ---- names and bounds ---- */

const char *mig_section_type_name(uint32_t type)
{
    switch (type) {
    case MIG_SECTION_TIS:
        return "TIS";
    case MIG_SECTION_TPM_VOLATILE:
        return "TPM_VOLATILE";
    case MIG_SECTION_TPM_PERMANENT:
        return "TPM_PERMANENT";
    case MIG_SECTION_TPM_SAVESTATE:
        return "TPM_SAVESTATE";
    case MIG_SECTION_END:
        return "END";
    default:
        return "unknown";
    }
}

const char *mig_storage_mode_name(MigStorageMode mode)
{
    switch (mode) {
    case MIG_STORAGE_AUTO:
        return "auto";
    case MIG_STORAGE_SHARED:
        return "shared";
    case MIG_STORAGE_NON_SHARED:
        return "non-shared";
    }
    return "unknown";
}

bool mig_storage_mode_parse(const char *s, MigStorageMode *mode)
{
    static const MigStorageMode all[] = {
        MIG_STORAGE_AUTO,
        MIG_STORAGE_SHARED,
        MIG_STORAGE_NON_SHARED,
    };

    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        if (s && strcmp(s, mig_storage_mode_name(all[i])) == 0) {
            *mode = all[i];
            return true;
        }
    }
    return false;
}

size_t mig_section_max_len(uint32_t type)
{
    switch (type) {
    case MIG_SECTION_TIS:
        return 64 * 1024;
    case MIG_SECTION_TPM_VOLATILE:
    case MIG_SECTION_TPM_SAVESTATE:
        return 1024 * 1024;
    case MIG_SECTION_TPM_PERMANENT:
        return 4 * 1024 * 1024;
    case MIG_SECTION_END:
        return 4;
    default:
        return 0;
    }
}

/*
 * A decoded section is plaintext TPM state (the permanent blob holds the
 * TPM's seeds): its GBytes wipes the bytes when the last reference goes.
 */
typedef struct MigWipedBuf {
    size_t len;
    uint8_t data[];
} MigWipedBuf;

static MigWipedBuf *mig_wiped_buf_new(size_t len)
{
    MigWipedBuf *b = g_malloc(sizeof(*b) + (len ? len : 1));

    b->len = len;
    return b;
}

static void mig_wiped_buf_free(gpointer opaque)
{
    MigWipedBuf *b = opaque;

    qcrypto_memwipe(b->data, b->len);
    g_free(b);
}

static GBytes *mig_wiped_buf_to_bytes(MigWipedBuf *b)
{
    return g_bytes_new_with_free_func(b->data, b->len, mig_wiped_buf_free, b);
}

MigStreamContents *mig_stream_contents_new(void)
{
    return g_new0(MigStreamContents, 1);
}

void mig_stream_contents_free(MigStreamContents *c)
{
    if (!c) {
        return;
    }
    for (int i = 0; i <= MIG_SECTION_DATA_MAX; i++) {
        if (c->section[i]) {
            g_bytes_unref(c->section[i]);
        }
    }
    g_free(c);
}

/* ---- header ---- */

void mig_stream_header_pack(const MigStreamHeader *h, uint8_t *buf)
{
    MigWireHeader w = {
        .version = GUINT32_TO_BE(h->version),
        .header_length = GUINT32_TO_BE(MIG_HEADER_SIZE),
        .flags = GUINT32_TO_BE(h->flags),
        .storage = GUINT32_TO_BE(h->storage),
        .tpm_version = GUINT32_TO_BE(h->tpm_version),
        .generation = GUINT64_TO_BE(h->generation),
        .key_kind = GUINT32_TO_BE(h->key_kind),
        .kdf_iterations = GUINT32_TO_BE(h->kdf_iterations),
    };

    memcpy(w.magic, MIG_STREAM_MAGIC, sizeof(w.magic));
    memcpy(w.image_uuid, h->image_uuid, sizeof(w.image_uuid));
    memcpy(w.stream_salt, h->stream_salt, sizeof(w.stream_salt));
    memcpy(w.key_check, h->key_check, sizeof(w.key_check));
    w.header_crc = GUINT32_TO_BE(qemu_crc32((const uint8_t *)&w,
                                            offsetof(MigWireHeader, header_crc)));
    memcpy(buf, &w, sizeof(w));
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

static int header_check_key_fields(const MigStreamHeader *h, GError **errp)
{
    bool encrypted = h->flags & MIG_FLAG_ENCRYPTED;

    if (h->key_kind > QCRYPTO_KEY_PASSPHRASE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "migration stream: unknown key kind %u", h->key_kind);
        return -1;
    }
    if (encrypted != (h->key_kind != QCRYPTO_KEY_NONE)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: header key kind %u contradicts its "
                    "encrypted flag",
                    h->key_kind);
        return -1;
    }
    if (h->key_kind == QCRYPTO_KEY_PASSPHRASE) {
        if (h->kdf_iterations < MIG_KDF_ITERATIONS_MIN ||
            h->kdf_iterations > MIG_KDF_ITERATIONS_MAX) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration stream: KDF iteration count %u is outside "
                        "%u..%u",
                        h->kdf_iterations, MIG_KDF_ITERATIONS_MIN,
                        MIG_KDF_ITERATIONS_MAX);
            return -1;
        }
    } else if (h->kdf_iterations != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: KDF iteration count %u without a "
                    "passphrase",
                    h->kdf_iterations);
        return -1;
    }
    if (!encrypted && (!all_zero(h->stream_salt, MIG_SALT_SIZE) ||
                       !all_zero(h->key_check, MIG_KEY_CHECK_SIZE))) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: unencrypted header carries key "
                    "material");
        return -1;
    }
    return 0;
}

int mig_stream_header_parse(const uint8_t *buf, size_t len, MigStreamHeader *h,
                            GError **errp)
{
    MigWireHeader w;
    uint32_t hlen, crc, stored_crc, storage;

    if (len < MIG_HEADER_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: header truncated (%zu of %d bytes)", len,
                    MIG_HEADER_SIZE);
        return -1;
    }
    memcpy(&w, buf, sizeof(w));
    if (memcmp(w.magic, MIG_STREAM_MAGIC, sizeof(w.magic)) != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: bad magic (not a qtpm migration "
                    "stream)");
        return -1;
    }
    memset(h, 0, sizeof(*h));
    h->version = GUINT32_FROM_BE(w.version);
    if (h->version != MIG_STREAM_VERSION) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "migration stream: unsupported version %u", h->version);
        return -1;
    }
    hlen = GUINT32_FROM_BE(w.header_length);
    if (hlen != MIG_HEADER_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: header length %u is not %d", hlen,
                    MIG_HEADER_SIZE);
        return -1;
    }
    crc = qemu_crc32(buf, offsetof(MigWireHeader, header_crc));
    stored_crc = GUINT32_FROM_BE(w.header_crc);
    if (crc != stored_crc) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "migration stream: header CRC mismatch (stored 0x%08x, "
                    "computed 0x%08x)",
                    stored_crc, crc);
        return -1;
    }
    h->flags = GUINT32_FROM_BE(w.flags);
    if (h->flags & ~MIG_FLAGS_KNOWN) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "migration stream: unknown header flags 0x%x",
                    h->flags & ~MIG_FLAGS_KNOWN);
        return -1;
    }
    storage = GUINT32_FROM_BE(w.storage);
    if (storage > MIG_STORAGE_NON_SHARED) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: unknown storage mode %u", storage);
        return -1;
    }
    h->storage = storage;
    h->tpm_version = GUINT32_FROM_BE(w.tpm_version);
    if (h->tpm_version != 1 && h->tpm_version != 2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: unknown TPM version %u", h->tpm_version);
        return -1;
    }
    memcpy(h->image_uuid, w.image_uuid, sizeof(h->image_uuid));
    h->generation = GUINT64_FROM_BE(w.generation);
    h->key_kind = GUINT32_FROM_BE(w.key_kind);
    h->kdf_iterations = GUINT32_FROM_BE(w.kdf_iterations);
    memcpy(h->stream_salt, w.stream_salt, sizeof(h->stream_salt));
    memcpy(h->key_check, w.key_check, sizeof(h->key_check));
    return header_check_key_fields(h, errp);
}

/* ---- keys ---- */

typedef struct MigKeys {
    bool keyed;
    uint8_t seal[QCRYPTO_AEAD_KEY_LEN];
    uint8_t kcv[MIG_KEY_CHECK_SIZE];
} MigKeys;

static bool key_present(const QCryptoKey *key)
{
    return key && key->kind != QCRYPTO_KEY_NONE;
}

static int derive_keys(const MigStreamHeader *h, const QCryptoKey *key, MigKeys *k,
                       GError **errp)
{
    uint8_t ikm[32];
    const uint8_t *ikm_p;
    size_t ikm_len;
    uint8_t info[64];
    size_t llen;

    memset(k, 0, sizeof(*k));
    if (key->kind == QCRYPTO_KEY_RAW) {
        if (key->len != 32) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration: raw key must be 32 bytes, not %zu", key->len);
            return -1;
        }
        ikm_p = key->data;
        ikm_len = key->len;
    } else if (key->kind == QCRYPTO_KEY_PASSPHRASE) {
        if (key->len == 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration: empty passphrase");
            return -1;
        }
        qcrypto_pbkdf2_sha256(key->data, key->len, h->stream_salt, MIG_SALT_SIZE,
                              h->kdf_iterations, ikm, sizeof(ikm));
        ikm_p = ikm;
        ikm_len = sizeof(ikm);
    } else {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: unknown key kind %d", key->kind);
        return -1;
    }

    llen = strlen(LABEL_SEAL);
    memcpy(info, LABEL_SEAL, llen);
    memcpy(info + llen, h->image_uuid, MIG_UUID_SIZE);
    qcrypto_hkdf_sha256(ikm_p, ikm_len, h->stream_salt, MIG_SALT_SIZE, info,
                        llen + MIG_UUID_SIZE, k->seal, sizeof(k->seal));
    llen = strlen(LABEL_KCV);
    memcpy(info, LABEL_KCV, llen);
    memcpy(info + llen, h->image_uuid, MIG_UUID_SIZE);
    qcrypto_hkdf_sha256(ikm_p, ikm_len, h->stream_salt, MIG_SALT_SIZE, info,
                        llen + MIG_UUID_SIZE, k->kcv, sizeof(k->kcv));
    qcrypto_memwipe(ikm, sizeof(ikm));
    k->keyed = true;
    return 0;
}

static void build_ad(const MigStreamHeader *h, uint32_t type, uint32_t seq,
                     MigWireSealAD *ad)
{
    memcpy(ad->magic, MIG_STREAM_MAGIC, sizeof(ad->magic));
    memcpy(ad->image_uuid, h->image_uuid, sizeof(ad->image_uuid));
    ad->type = GUINT32_TO_BE(type);
    ad->seq = GUINT32_TO_BE(seq);
    ad->flags = GUINT32_TO_BE(h->flags);
    ad->storage = GUINT32_TO_BE(h->storage);
}

/*
 * Which data sections a stream must / may carry for its storage mode
 * (docs/migration-stream.md §2).
 */
static bool section_allowed(MigStorageMode storage, uint32_t type)
{
    switch (type) {
    case MIG_SECTION_TIS:
    case MIG_SECTION_TPM_VOLATILE:
        return true;
    case MIG_SECTION_TPM_PERMANENT:
    case MIG_SECTION_TPM_SAVESTATE:
        return storage != MIG_STORAGE_SHARED;
    default:
        return false;
    }
}

static bool section_required(MigStorageMode storage, uint32_t type)
{
    switch (type) {
    case MIG_SECTION_TIS:
    case MIG_SECTION_TPM_VOLATILE:
        return true;
    case MIG_SECTION_TPM_PERMANENT:
        return storage != MIG_STORAGE_SHARED;
    default:
        return false;
    }
}

/* ---- encoder ---- */

struct MigStreamEncoder {
    MigStreamHeader hdr;
    MigKeys keys;
    uint32_t seq;
    bool seen[MIG_SECTION_DATA_MAX + 1];
    bool ended;
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigStreamEncoder, mig_stream_encoder_free)

MigStreamEncoder *mig_stream_encoder_new(const MigStreamHeader *hdr, const QCryptoKey *key,
                                         GError **errp)
{
    /* Its own pages: the encoder holds the stream's sealing key. */
    g_autoptr(MigStreamEncoder) e = qcrypto_secure_alloc(sizeof(MigStreamEncoder));

    e->hdr = *hdr;
    e->hdr.version = MIG_STREAM_VERSION;
    e->hdr.flags &= ~MIG_FLAG_ENCRYPTED;
    memset(e->hdr.stream_salt, 0, MIG_SALT_SIZE);
    memset(e->hdr.key_check, 0, MIG_KEY_CHECK_SIZE);
    if (e->hdr.tpm_version != 1 && e->hdr.tpm_version != 2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: unknown TPM version %u", e->hdr.tpm_version);
        return NULL;
    }
    if (e->hdr.storage > MIG_STORAGE_NON_SHARED) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: unknown storage mode %u", e->hdr.storage);
        return NULL;
    }
    if (!key_present(key)) {
        e->hdr.key_kind = QCRYPTO_KEY_NONE;
        e->hdr.kdf_iterations = 0;
        return g_steal_pointer(&e);
    }
    e->hdr.flags |= MIG_FLAG_ENCRYPTED;
    e->hdr.key_kind = key->kind;
    if (key->kind == QCRYPTO_KEY_PASSPHRASE) {
        if (e->hdr.kdf_iterations == 0) {
            e->hdr.kdf_iterations = MIG_KDF_ITERATIONS_DEFAULT;
        }
        if (e->hdr.kdf_iterations < MIG_KDF_ITERATIONS_MIN ||
            e->hdr.kdf_iterations > MIG_KDF_ITERATIONS_MAX) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration: KDF iteration count %u is outside %u..%u",
                        e->hdr.kdf_iterations, MIG_KDF_ITERATIONS_MIN,
                        MIG_KDF_ITERATIONS_MAX);
            return NULL;
        }
    } else {
        e->hdr.kdf_iterations = 0;
    }
    if (qcrypto_random_bytes(e->hdr.stream_salt, MIG_SALT_SIZE, errp) < 0 ||
        derive_keys(&e->hdr, key, &e->keys, errp) < 0) {
        return NULL;
    }
    memcpy(e->hdr.key_check, e->keys.kcv, MIG_KEY_CHECK_SIZE);
    return g_steal_pointer(&e);
}

void mig_stream_encoder_free(MigStreamEncoder *e)
{
    qcrypto_secure_free(e, sizeof(*e));
}

const MigStreamHeader *mig_stream_encoder_header(MigStreamEncoder *e)
{
    return &e->hdr;
}

void mig_stream_encode_header(MigStreamEncoder *e, GByteArray *out)
{
    uint8_t buf[MIG_HEADER_SIZE];

    mig_stream_header_pack(&e->hdr, buf);
    g_byte_array_append(out, buf, sizeof(buf));
}

static int encode_section_raw(MigStreamEncoder *e, uint32_t type, const uint8_t *data,
                              size_t len, GByteArray *out, GError **errp)
{
    size_t wire_len = len + (e->keys.keyed ? MIG_SEAL_OVERHEAD : 0);
    size_t start = out->len;
    MigWireSection hdr;
    uint32_t crc;

    if (len > mig_section_max_len(type)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: section %s of %zu bytes exceeds its %zu-byte "
                    "limit",
                    mig_section_type_name(type), len, mig_section_max_len(type));
        return -1;
    }
    hdr = (MigWireSection) {
        .type = GUINT32_TO_BE(type),
        .seq = GUINT32_TO_BE(e->seq),
        .length = GUINT32_TO_BE((uint32_t)wire_len),
        .sflags = GUINT32_TO_BE(e->keys.keyed ? MIG_SECTION_SEALED : 0),
    };
    g_byte_array_append(out, (const uint8_t *)&hdr, sizeof(hdr));

    if (e->keys.keyed) {
        uint8_t nonce[MIG_SEAL_NONCE_SIZE];
        MigWireSealAD ad;
        size_t pos;

        if (qcrypto_random_bytes(nonce, sizeof(nonce), errp) < 0) {
            g_byte_array_set_size(out, start);
            return -1;
        }
        build_ad(&e->hdr, type, e->seq, &ad);
        g_byte_array_append(out, nonce, sizeof(nonce));
        pos = out->len;
        g_byte_array_set_size(out, pos + len + MIG_SEAL_TAG_SIZE);
        qcrypto_aead_encrypt(e->keys.seal, nonce, (const uint8_t *)&ad,
                             sizeof(ad), data, len,
                             out->data + pos, out->data + pos + len);
    } else if (len > 0) {
        g_byte_array_append(out, data, len);
    }
    crc = GUINT32_TO_BE(qemu_crc32(out->data + start, out->len - start));
    g_byte_array_append(out, (const uint8_t *)&crc, sizeof(crc));
    e->seq++;
    return 0;
}

int mig_stream_encode_section(MigStreamEncoder *e, MigSectionType type,
                              const uint8_t *data, size_t len, GByteArray *out,
                              GError **errp)
{
    if (e->ended || type < 1 || type > MIG_SECTION_DATA_MAX || e->seen[type] ||
        !section_allowed(e->hdr.storage, type)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: section %s (type %u) cannot be added here "
                    "(storage %s)",
                    mig_section_type_name(type), type,
                    mig_storage_mode_name(e->hdr.storage));
        return -1;
    }
    if (encode_section_raw(e, type, data, len, out, errp) < 0) {
        return -1;
    }
    e->seen[type] = true;
    return 0;
}

int mig_stream_encode_end(MigStreamEncoder *e, GByteArray *out, GError **errp)
{
    MigWireEnd end;

    for (uint32_t t = 1; t <= MIG_SECTION_DATA_MAX; t++) {
        if (section_required(e->hdr.storage, t) && !e->seen[t]) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration: the stream lacks its %s section",
                        mig_section_type_name(t));
            return -1;
        }
    }
    end.count = GUINT32_TO_BE(e->seq);
    if (encode_section_raw(e, MIG_SECTION_END, (const uint8_t *)&end,
                           sizeof(end), out, errp) < 0) {
        return -1;
    }
    e->ended = true;
    return 0;
}

int mig_stream_encode(const MigStreamContents *c, const QCryptoKey *key, GByteArray *out,
                      GError **errp)
{
    MigStreamEncoder *e = mig_stream_encoder_new(&c->header, key, errp);
    int ret = -1;

    if (!e) {
        return -1;
    }
    mig_stream_encode_header(e, out);
    for (uint32_t t = 1; t <= MIG_SECTION_DATA_MAX; t++) {
        gsize len;
        const uint8_t *p;

        if (!c->section[t]) {
            continue;
        }
        p = g_bytes_get_data(c->section[t], &len);
        if (mig_stream_encode_section(e, t, p, len, out, errp) < 0) {
            goto out;
        }
    }
    ret = mig_stream_encode_end(e, out, errp);
out:
    mig_stream_encoder_free(e);
    return ret;
}

/* ---- decoder ---- */

typedef enum MigDecState {
    DEC_HEADER,
    DEC_SECTION_HEADER,
    DEC_SECTION_BODY,
    DEC_DONE,
    DEC_FAILED,
} MigDecState;

struct MigStreamDecoder {
    MigDecState state;
    bool have_key;
    QCryptoKeyKind key_kind;
    uint8_t *key_data;
    size_t key_len;
    MigKeys keys;
    MigStreamContents *c;
    uint32_t seq;
    /* The section whose body comes next. */
    MigWireSection cur_hdr;
    uint32_t cur_type;
    uint32_t cur_len;
};

MigStreamDecoder *mig_stream_decoder_new(const QCryptoKey *key)
{
    /* Its own pages: the decoder holds the key and the keys derived from it. */
    MigStreamDecoder *d = qcrypto_secure_alloc(sizeof(MigStreamDecoder));

    d->state = DEC_HEADER;
    d->c = mig_stream_contents_new();
    if (key_present(key)) {
        d->have_key = true;
        d->key_kind = key->kind;
        d->key_data = qcrypto_secure_alloc(key->len);
        memcpy(d->key_data, key->data, key->len);
        d->key_len = key->len;
    }
    return d;
}

void mig_stream_decoder_free(MigStreamDecoder *d)
{
    if (!d) {
        return;
    }
    qcrypto_secure_free(d->key_data, d->key_len);
    mig_stream_contents_free(d->c);
    qcrypto_secure_free(d, sizeof(*d));
}

size_t mig_stream_decoder_need(MigStreamDecoder *d)
{
    switch (d->state) {
    case DEC_HEADER:
        return MIG_HEADER_SIZE;
    case DEC_SECTION_HEADER:
        return MIG_SECTION_HEADER_SIZE;
    case DEC_SECTION_BODY:
        return (size_t)d->cur_len + MIG_SECTION_CRC_SIZE;
    default:
        return 0;
    }
}

const MigStreamHeader *mig_stream_decoder_header(MigStreamDecoder *d)
{
    return d->state == DEC_HEADER || d->state == DEC_FAILED ? NULL : &d->c->header;
}

bool mig_stream_decoder_done(MigStreamDecoder *d)
{
    return d->state == DEC_DONE;
}

MigStreamContents *mig_stream_decoder_steal(MigStreamDecoder *d)
{
    MigStreamContents *c;

    if (d->state != DEC_DONE) {
        return NULL;
    }
    c = d->c;
    d->c = NULL;
    return c;
}

static int decoder_check_key(MigStreamDecoder *d, GError **errp)
{
    const MigStreamHeader *h = &d->c->header;
    QCryptoKey key = {
        .kind = d->key_kind,
        .data = d->key_data,
        .len = d->key_len,
    };

    if (!(h->flags & MIG_FLAG_ENCRYPTED)) {
        if (d->have_key) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                        "migration stream: the source sent TPM state "
                        "unencrypted but this target has a key configured");
            return -1;
        }
        return 0;
    }
    if (!d->have_key) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NO_KEY,
                    "migration stream: the TPM state is encrypted and no key "
                    "was given");
        return -1;
    }
    if ((uint32_t)d->key_kind != h->key_kind) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "migration stream: the source uses a %s, this target a %s",
                    h->key_kind == QCRYPTO_KEY_RAW ? "raw key" : "passphrase",
                    d->key_kind == QCRYPTO_KEY_RAW ? "raw key" : "passphrase");
        return -1;
    }
    if (derive_keys(h, &key, &d->keys, errp) < 0) {
        return -1;
    }
    if (!qcrypto_mem_equal(d->keys.kcv, h->key_check, MIG_KEY_CHECK_SIZE)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_WRONG_KEY,
                    "migration stream: the migration key does not match the "
                    "source's (key-check value differs)");
        return -1;
    }
    return 0;
}

static int decode_header(MigStreamDecoder *d, const uint8_t *buf, GError **errp)
{
    if (mig_stream_header_parse(buf, MIG_HEADER_SIZE, &d->c->header, errp) < 0) {
        return -1;
    }
    if (decoder_check_key(d, errp) < 0) {
        return -1;
    }
    d->state = DEC_SECTION_HEADER;
    return 0;
}

static int decode_section_header(MigStreamDecoder *d, const uint8_t *buf, GError **errp)
{
    const MigStreamHeader *h = &d->c->header;
    MigWireSection w;
    uint32_t type, seq, len, sflags;
    bool sealed = h->flags & MIG_FLAG_ENCRYPTED;
    size_t max;

    memcpy(&w, buf, sizeof(w));
    type = GUINT32_FROM_BE(w.type);
    seq = GUINT32_FROM_BE(w.seq);
    len = GUINT32_FROM_BE(w.length);
    sflags = GUINT32_FROM_BE(w.sflags);
    max = mig_section_max_len(type);
    if (max == 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: section %u has unknown section type "
                    "0x%x",
                    d->seq, type);
        return -1;
    }
    if (seq != d->seq) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: section %u (%s) carries sequence "
                    "number %u",
                    d->seq, mig_section_type_name(type), seq);
        return -1;
    }
    if (sflags & ~MIG_SECTION_SEALED) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "migration stream: section %u (%s) has unknown flags "
                    "0x%x",
                    d->seq, mig_section_type_name(type), sflags);
        return -1;
    }
    if (!!(sflags & MIG_SECTION_SEALED) != sealed) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: section %u (%s) is %s in an %s stream", d->seq,
                    mig_section_type_name(type), sealed ? "not sealed" : "sealed",
                    sealed ? "encrypted" : "unencrypted");
        return -1;
    }
    if (sealed) {
        max += MIG_SEAL_OVERHEAD;
    }
    if (len > max || (sealed && len < MIG_SEAL_OVERHEAD)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: section %u (%s) length %u is outside "
                    "0..%zu",
                    d->seq, mig_section_type_name(type), len, max);
        return -1;
    }
    if (type != MIG_SECTION_END) {
        if (!section_allowed(h->storage, type)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration stream: section %u (%s) is not allowed "
                        "with %s storage",
                        d->seq, mig_section_type_name(type),
                        mig_storage_mode_name(h->storage));
            return -1;
        }
        if (d->c->section[type]) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration stream: section %u duplicates the %s "
                        "section",
                        d->seq, mig_section_type_name(type));
            return -1;
        }
    } else if (len != sizeof(MigWireEnd) + (sealed ? MIG_SEAL_OVERHEAD : 0)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: END section length %u is not %d", len,
                    (int)sizeof(MigWireEnd) + (sealed ? MIG_SEAL_OVERHEAD : 0));
        return -1;
    }
    d->cur_hdr = w;
    d->cur_type = type;
    d->cur_len = len;
    d->state = DEC_SECTION_BODY;
    return 0;
}

static int decoder_finish(MigStreamDecoder *d, const uint8_t *payload, GError **errp)
{
    MigWireEnd end;
    uint32_t n;

    memcpy(&end, payload, sizeof(end));
    n = GUINT32_FROM_BE(end.count);

    if (n != d->seq) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: END counts %u sections, %u were sent", n, d->seq);
        return -1;
    }
    for (uint32_t t = 1; t <= MIG_SECTION_DATA_MAX; t++) {
        if (section_required(d->c->header.storage, t) && !d->c->section[t]) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration stream: the %s section is missing",
                        mig_section_type_name(t));
            return -1;
        }
    }
    d->state = DEC_DONE;
    return 0;
}

static int decode_section_body(MigStreamDecoder *d, const uint8_t *buf, GError **errp)
{
    uint32_t stored;
    uint32_t crc;
    MigWipedBuf *plain;
    int ret;

    memcpy(&stored, buf + d->cur_len, sizeof(stored));
    stored = GUINT32_FROM_BE(stored);
    crc = qemu_crc32_update(0, (const uint8_t *)&d->cur_hdr, sizeof(d->cur_hdr));
    crc = qemu_crc32_update(crc, buf, d->cur_len);
    if (crc != stored) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "migration stream: section %u (%s): CRC mismatch "
                    "(stored 0x%08x, computed 0x%08x)",
                    d->seq, mig_section_type_name(d->cur_type), stored, crc);
        return -1;
    }

    if (d->keys.keyed) {
        MigWireSealAD ad;

        plain = mig_wiped_buf_new(d->cur_len - MIG_SEAL_OVERHEAD);
        build_ad(&d->c->header, d->cur_type, d->seq, &ad);
        if (!qcrypto_aead_decrypt(d->keys.seal, buf, (const uint8_t *)&ad,
                                  sizeof(ad),
                                  buf + MIG_SEAL_NONCE_SIZE, plain->len, plain->data,
                                  buf + MIG_SEAL_NONCE_SIZE + plain->len)) {
            mig_wiped_buf_free(plain);
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "migration stream: section %u (%s): authentication "
                        "failed",
                        d->seq, mig_section_type_name(d->cur_type));
            return -1;
        }
    } else {
        plain = mig_wiped_buf_new(d->cur_len);
        memcpy(plain->data, buf, plain->len);
    }

    if (d->cur_type == MIG_SECTION_END) {
        ret = decoder_finish(d, plain->data, errp);
        mig_wiped_buf_free(plain);
        return ret;
    }
    d->c->section[d->cur_type] = mig_wiped_buf_to_bytes(plain);
    d->seq++;
    d->state = DEC_SECTION_HEADER;
    return 0;
}

int mig_stream_decoder_push(MigStreamDecoder *d, const uint8_t *buf, size_t len,
                            GError **errp)
{
    size_t need = mig_stream_decoder_need(d);
    int ret;

    if (need == 0 || len != need) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID, "migration stream: %s",
                    need == 0 ? "data after the end of the stream"
                              : "internal framing error");
        d->state = DEC_FAILED;
        return -1;
    }
    switch (d->state) {
    case DEC_HEADER:
        ret = decode_header(d, buf, errp);
        break;
    case DEC_SECTION_HEADER:
        ret = decode_section_header(d, buf, errp);
        break;
    case DEC_SECTION_BODY:
        ret = decode_section_body(d, buf, errp);
        break;
    default:
        ret = -1;
        break;
    }
    if (ret < 0) {
        d->state = DEC_FAILED;
    }
    return ret;
}

int mig_stream_decode(const uint8_t *buf, size_t len, const QCryptoKey *key,
                      MigStreamContents **out, GError **errp)
{
    MigStreamDecoder *d = mig_stream_decoder_new(key);
    size_t pos = 0;
    int ret = -1;

    *out = NULL;
    while (!mig_stream_decoder_done(d)) {
        size_t need = mig_stream_decoder_need(d);

        if (need > len - pos) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration stream: truncated at byte %zu (%zu more "
                        "bytes expected, %zu left)",
                        pos, need, len - pos);
            goto out;
        }
        if (mig_stream_decoder_push(d, buf + pos, need, errp) < 0) {
            goto out;
        }
        pos += need;
    }
    if (pos != len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration stream: %zu bytes after the end marker", len - pos);
        goto out;
    }
    *out = mig_stream_decoder_steal(d);
    ret = 0;
out:
    mig_stream_decoder_free(d);
    return ret;
}
