/*
 * Manufacture of a TPM 2.0: EKs from the TCG default templates, their
 * certificates and a platform certificate in NV, write-locked.
 *
 * The TPM runs on a scratch store, not on the image: libtpms stores its
 * permanent state after every command that changes NV, and each store is
 * a commit, so working on the image itself would leave half a manufacture
 * behind on any failure. The result goes into the image in one commit at
 * the end. docs/manufacture.md has the commands and the byte layouts.
 */
#include "qemu/osdep.h"
#include "manufacture/manufacture.h"
#include "manufacture/localca.h"
#include "block/block.h"
#include "crypto/random.h"
#include "crypto/secret.h"
#include "nvram/nvram.h"
#include "sysemu/blockdev.h"
#include "sysemu/tpm_backend.h"

#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM2_ST_SESSIONS    0x8002
#define TPM2_CC_EVICT_CONTROL   0x120
#define TPM2_CC_NV_DEFINE_SPACE 0x12a
#define TPM2_CC_CREATE_PRIMARY  0x131
#define TPM2_CC_NV_WRITE        0x137
#define TPM2_CC_NV_WRITE_LOCK   0x138
#define TPM2_CC_STARTUP         0x144
#define TPM2_CC_SHUTDOWN        0x145
#define TPM2_CC_FLUSH_CONTEXT   0x165
#define TPM2_CC_READ_PUBLIC     0x173
#define TPM2_SU_CLEAR       0x0000
#define TPM2_RS_PW          0x40000009
#define TPM2_RH_OWNER       0x40000001
#define TPM2_RH_ENDORSEMENT 0x4000000b
#define TPM2_RH_PLATFORM    0x4000000c
#define TPM2_RC_INITIALIZE  0x100
/* TPM_RC_HANDLE for the first handle: nothing at that handle */
#define TPM2_RC_HANDLE_1    0x18b
#define TPM2_RC_NV_DEFINED  0x14c
#define TPM2_ALG_RSA    0x0001
#define TPM2_ALG_SHA256 0x000b
#define TPM2_ALG_NULL   0x0010
#define TPM2_ALG_ECC    0x0023
#define TPM2_ALG_AES    0x0006
#define TPM2_ALG_CFB    0x0043
#define TPM2_ECC_NIST_P256 0x0003

/* fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy |
 * restricted | decrypt: templates L-1 and L-2 */
#define EK_OBJECT_ATTRIBUTES 0x000300b2
/* PLATFORMCREATE | NO_DA | AUTHREAD | OWNERREAD | PPREAD | WRITEDEFINE |
 * PPWRITE, as swtpm_setup defines its certificate indices */
#define CERT_NV_ATTRIBUTES 0x42072001
#define NV_WRITE_CHUNK 768
#define BUFFER_SIZE 4096
#define SCRATCH_DRIVE "qtpm-manufacture"
#define SCRATCH_KEY "qtpm-manufacture-key"

/* TPM2_PolicySecret(TPM_RH_ENDORSEMENT), the EK templates' authPolicy. */
static const uint8_t ek_auth_policy[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
    0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
    0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

/* The running scratch TPM. */
typedef struct Mfg {
    const TPMManufactureOptions *opts;
    TPMBackend *tb;
    QCryptoSecret *key;
    char *dir;
    char *path;
    bool done;
    uint8_t out[BUFFER_SIZE];
    size_t out_len;
    GPtrArray *made;
} Mfg;

/* An EK's public key, copied out of CreatePrimary's answer. */
typedef struct EKPublic {
    bool ecc;
    uint32_t exponent;
    GBytes *unique_a;   /* RSA: modulus; ECC: x */
    GBytes *unique_b;   /* ECC: y */
} EKPublic;

static void ek_public_clear(EKPublic *ek)
{
    g_clear_pointer(&ek->unique_a, g_bytes_unref);
    g_clear_pointer(&ek->unique_b, g_bytes_unref);
}

/* ---- marshalling ---------------------------------------------------- */

static void put16(GByteArray *b, uint16_t v)
{
    uint8_t x[2] = { v >> 8, v };

    g_byte_array_append(b, x, 2);
}

static void put32(GByteArray *b, uint32_t v)
{
    uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

    g_byte_array_append(b, x, 4);
}

static GByteArray *cmd_new(uint16_t tag, uint32_t cc)
{
    GByteArray *b = g_byte_array_new();

    put16(b, tag);
    put32(b, 0);        /* size, set by cmd_finish */
    put32(b, cc);
    return b;
}

/* The password session with an empty password (docs/manufacture.md). */
static void put_pw_session(GByteArray *b)
{
    put32(b, 9);
    put32(b, TPM2_RS_PW);
    put16(b, 0);
    g_byte_array_append(b, (const uint8_t[]){ 0 }, 1);
    put16(b, 0);
}

/* A bounded reader over a response. */
typedef struct Reader {
    const uint8_t *p;
    size_t left;
    bool bad;
} Reader;

static const uint8_t *get_bytes(Reader *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static uint16_t get16(Reader *r)
{
    const uint8_t *p = get_bytes(r, 2);

    return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static uint32_t get32(Reader *r)
{
    const uint8_t *p = get_bytes(r, 4);

    return p ? (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3] : 0;
}

static GBytes *get_tpm2b(Reader *r)
{
    uint16_t n = get16(r);
    const uint8_t *p = get_bytes(r, n);

    return p ? g_bytes_new(p, n) : NULL;
}

/* ---- the scratch TPM ---------------------------------------------------- */

static void mfg_completed(void *opaque, int ret)
{
    Mfg *m = opaque;

    m->done = true;
}

/*
 * Sends @cmd (its size field filled in here) and waits for the answer in
 * m->out. Returns the TPM's response code, or -1 with @errp set.
 */
static int64_t mfg_transact(Mfg *m, GByteArray *cmd, GError **errp)
{
    TPMBackendCmd c = {
        .locality = 0,
        .in = cmd->data,
        .in_len = cmd->len,
        .out = m->out,
        .out_len = sizeof(m->out),
    };
    uint32_t size;

    cmd->data[2] = cmd->len >> 24;
    cmd->data[3] = cmd->len >> 16;
    cmd->data[4] = cmd->len >> 8;
    cmd->data[5] = cmd->len;
    m->done = false;
    memset(m->out, 0, 10);
    tpm_backend_deliver_request(m->tb, &c);
    while (!m->done) {
        g_main_context_iteration(NULL, TRUE);
    }
    size = (uint32_t)m->out[2] << 24 | m->out[3] << 16 | m->out[4] << 8 | m->out[5];
    if (size < 10 || size > sizeof(m->out)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "the TPM gave a malformed response (size %u)", size);
        return -1;
    }
    m->out_len = size;
    return (uint32_t)m->out[6] << 24 | m->out[7] << 16 | m->out[8] << 8 | m->out[9];
}

/* mfg_transact for a command that must succeed; @what names it. */
static bool mfg_call(Mfg *m, GByteArray *cmd, const char *what, GError **errp)
{
    g_autoptr(GByteArray) owned = cmd;
    int64_t rc = mfg_transact(m, owned, errp);

    if (rc < 0) {
        return false;
    }
    if (rc != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "'%s': %s failed with TPM response code 0x%" PRIx64,
                    m->opts->name, what, rc);
        return false;
    }
    return true;
}

/*
 * Scratch store: a qcow2 image in a private directory, encrypted under a
 * key that exists only in this process, so the TPM's state never lies on
 * disk in plaintext.
 */
static bool mfg_scratch_open(Mfg *m, GError **errp)
{
    Qcow2CreateOptions co = { .mode = 0600 };
    BlockOpenOptions bo = { .format = "qcow2" };
    g_autoptr(GHashTable) sopts = NULL;
    g_autoptr(GHashTable) topts = NULL;
    g_autofree char *hex = NULL;
    uint8_t raw[32];
    BlockDriverState *bs;
    GError *local = NULL;

    m->dir = g_dir_make_tmp("qtpm-manufacture-XXXXXX", &local);
    if (!m->dir) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "could not make a scratch directory: %s", local->message);
        g_error_free(local);
        return false;
    }
    m->path = g_build_filename(m->dir, "scratch.qcow2", NULL);
    if (qcow2_create(m->path, 1024 * 1024, &co, errp) < 0) {
        return false;
    }
    bs = bdrv_open(m->path, &bo, errp);
    if (!bs) {
        return false;
    }
    if (!drive_add(SCRATCH_DRIVE, bs, errp)) {
        bdrv_close(bs);
        return false;
    }
    if (qcrypto_random_bytes(raw, sizeof(raw), errp) < 0) {
        return false;
    }
    /* The scratch store is formatted here, so the TPM start is no news. */
    {
        NvramOpenOptions no = {
            .key = { .kind = QCRYPTO_KEY_RAW, .data = raw, .len = sizeof(raw) },
            .owner = true,
            .format_blank = true,
            .tpm_version = 2,
        };
        NvramStore *ns = nvram_open(bs, &no, errp);
        if (!ns) {
            explicit_bzero(raw, sizeof(raw));
            return false;
        }
        nvram_close(ns);
    }
    hex = g_malloc(sizeof(raw) * 2 + 1);
    for (size_t i = 0; i < sizeof(raw); i++) {
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    explicit_bzero(raw, sizeof(raw));
    sopts = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(sopts, "id", SCRATCH_KEY);
    g_hash_table_insert(sopts, "data", hex);
    g_hash_table_insert(sopts, "format", "hex");
    m->key = qcrypto_secret_new(sopts, errp);
    explicit_bzero(hex, strlen(hex));
    if (!m->key) {
        return false;
    }
    topts = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(topts, "type", "libtpms");
    g_hash_table_insert(topts, "id", "manufacture");
    g_hash_table_insert(topts, "nvram", SCRATCH_DRIVE);
    g_hash_table_insert(topts, "key-secret", SCRATCH_KEY);
    m->tb = tpm_backend_new("libtpms", "manufacture", topts, errp);
    if (!m->tb) {
        return false;
    }
    tpm_backend_set_frontend(m->tb, "manufacture", mfg_completed, m);
    return true;
}

static void mfg_scratch_close(Mfg *m)
{
    if (m->tb) {
        tpm_backend_free(m->tb);
        m->tb = NULL;
    }
    drive_close_all();
    qcrypto_secret_free(m->key);
    m->key = NULL;
    if (m->path) {
        unlink(m->path);
    }
    if (m->dir) {
        rmdir(m->dir);
    }
    g_clear_pointer(&m->path, g_free);
    g_clear_pointer(&m->dir, g_free);
    explicit_bzero(m->out, sizeof(m->out));
}

/* ---- TPM commands ---------------------------------------------------- */

static bool tpm2_startup(Mfg *m, GError **errp)
{
    GByteArray *c = cmd_new(TPM2_ST_NO_SESSIONS, TPM2_CC_STARTUP);
    int64_t rc;

    put16(c, TPM2_SU_CLEAR);
    rc = mfg_transact(m, c, errp);
    g_byte_array_unref(c);
    /* TPM_RC_INITIALIZE: already started, which is what we want */
    if (rc != 0 && rc != TPM2_RC_INITIALIZE && rc >= 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "'%s': TPM2_Startup failed with TPM response code 0x%" PRIx64,
                    m->opts->name, rc);
        return false;
    }
    return rc >= 0;
}

static bool tpm2_shutdown(Mfg *m, GError **errp)
{
    GByteArray *c = cmd_new(TPM2_ST_NO_SESSIONS, TPM2_CC_SHUTDOWN);

    put16(c, TPM2_SU_CLEAR);
    return mfg_call(m, c, "TPM2_Shutdown", errp);
}

/* 1: an object is at @handle; 0: none; -1: error. */
static int tpm2_object_exists(Mfg *m, uint32_t handle, GError **errp)
{
    g_autoptr(GByteArray) c = cmd_new(TPM2_ST_NO_SESSIONS, TPM2_CC_READ_PUBLIC);
    int64_t rc;

    put32(c, handle);
    rc = mfg_transact(m, c, errp);
    if (rc < 0) {
        return -1;
    }
    if (rc == TPM2_RC_HANDLE_1) {
        return 0;
    }
    if (rc != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "'%s': TPM2_ReadPublic of 0x%08x failed with TPM response "
                    "code 0x%" PRIx64, m->opts->name, handle, rc);
        return -1;
    }
    return 1;
}

/* TPMT_PUBLIC of template L-1 (RSA 2048) or L-2 (ECC NIST P-256). */
static void put_ek_template(GByteArray *b, bool ecc)
{
    static const uint8_t zeros[256];

    put16(b, ecc ? TPM2_ALG_ECC : TPM2_ALG_RSA);
    put16(b, TPM2_ALG_SHA256);
    put32(b, EK_OBJECT_ATTRIBUTES);
    put16(b, sizeof(ek_auth_policy));
    g_byte_array_append(b, ek_auth_policy, sizeof(ek_auth_policy));
    put16(b, TPM2_ALG_AES);
    put16(b, 128);
    put16(b, TPM2_ALG_CFB);
    put16(b, TPM2_ALG_NULL);        /* scheme */
    if (ecc) {
        put16(b, TPM2_ECC_NIST_P256);
        put16(b, TPM2_ALG_NULL);    /* kdf */
        put16(b, 32);
        g_byte_array_append(b, zeros, 32);
        put16(b, 32);
        g_byte_array_append(b, zeros, 32);
    } else {
        put16(b, 2048);
        put32(b, 0);                /* exponent: the default, 65537 */
        put16(b, 256);
        g_byte_array_append(b, zeros, 256);
    }
}

/* Reads the public key out of a TPMT_PUBLIC of one of the templates. */
static bool parse_ek_public(Reader *r, bool ecc, EKPublic *ek, GError **errp)
{
    uint16_t type = get16(r), alg;
    g_autoptr(GBytes) policy = NULL;

    get16(r);           /* nameAlg */
    get32(r);           /* objectAttributes */
    policy = get_tpm2b(r);
    alg = get16(r);
    if (alg != TPM2_ALG_NULL) {
        get32(r);       /* keyBits, mode */
    }
    alg = get16(r);
    if (alg != TPM2_ALG_NULL) {
        get16(r);       /* the scheme's hash */
    }
    ek->ecc = ecc;
    if (ecc) {
        get16(r);       /* curveID */
        if (get16(r) != TPM2_ALG_NULL) {
            get16(r);
        }
        ek->unique_a = get_tpm2b(r);
        ek->unique_b = get_tpm2b(r);
    } else {
        get16(r);       /* keyBits */
        ek->exponent = get32(r);
        ek->unique_a = get_tpm2b(r);
    }
    if (r->bad || type != (ecc ? TPM2_ALG_ECC : TPM2_ALG_RSA) || !ek->unique_a ||
        !g_bytes_get_size(ek->unique_a) ||
        (ecc && (!ek->unique_b || !g_bytes_get_size(ek->unique_b)))) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "TPM2_CreatePrimary returned a malformed %s public key",
                    ecc ? "ECC" : "RSA");
        ek_public_clear(ek);
        return false;
    }
    return true;
}

/* CreatePrimary in the endorsement hierarchy; the transient handle. */
static bool tpm2_create_ek(Mfg *m, bool ecc, uint32_t *handle, EKPublic *ek,
                           GError **errp)
{
    GByteArray *c = cmd_new(TPM2_ST_SESSIONS, TPM2_CC_CREATE_PRIMARY);
    g_autoptr(GByteArray) pub = g_byte_array_new();
    Reader r;

    put32(c, TPM2_RH_ENDORSEMENT);
    put_pw_session(c);
    put16(c, 4);        /* inSensitive: empty userAuth and data */
    put16(c, 0);
    put16(c, 0);
    put_ek_template(pub, ecc);
    put16(c, pub->len);
    g_byte_array_append(c, pub->data, pub->len);
    put16(c, 0);        /* outsideInfo */
    put32(c, 0);        /* creationPCR: none */
    if (!mfg_call(m, c, ecc ? "TPM2_CreatePrimary (ECC EK)"
                            : "TPM2_CreatePrimary (RSA EK)", errp)) {
        return false;
    }
    r = (Reader) { m->out + 10, m->out_len - 10, false };
    *handle = get32(&r);
    get32(&r);          /* parameterSize */
    get16(&r);          /* outPublic.size */
    return parse_ek_public(&r, ecc, ek, errp);
}

static bool tpm2_evict_control(Mfg *m, uint32_t transient, uint32_t persistent,
                               GError **errp)
{
    GByteArray *c = cmd_new(TPM2_ST_SESSIONS, TPM2_CC_EVICT_CONTROL);
    g_autofree char *what = g_strdup_printf("TPM2_EvictControl to 0x%08x",
                                            persistent);

    put32(c, TPM2_RH_OWNER);
    put32(c, transient);
    put_pw_session(c);
    put32(c, persistent);
    return mfg_call(m, c, what, errp);
}

static bool tpm2_flush_context(Mfg *m, uint32_t handle, GError **errp)
{
    GByteArray *c = cmd_new(TPM2_ST_NO_SESSIONS, TPM2_CC_FLUSH_CONTEXT);

    put32(c, handle);
    return mfg_call(m, c, "TPM2_FlushContext", errp);
}

static bool tpm2_nv_define(Mfg *m, uint32_t index, uint16_t size, GError **errp)
{
    g_autoptr(GByteArray) c = cmd_new(TPM2_ST_SESSIONS, TPM2_CC_NV_DEFINE_SPACE);
    int64_t rc;

    put32(c, TPM2_RH_PLATFORM);
    put_pw_session(c);
    put16(c, 0);        /* the index's auth: empty */
    put16(c, 14);       /* TPM2B_NV_PUBLIC */
    put32(c, index);
    put16(c, TPM2_ALG_SHA256);
    put32(c, CERT_NV_ATTRIBUTES);
    put16(c, 0);        /* authPolicy */
    put16(c, size);
    rc = mfg_transact(m, c, errp);
    if (rc == TPM2_RC_NV_DEFINED) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': the TPM already has NV index 0x%08x; --overwrite "
                    "manufactures a fresh TPM in its place", m->opts->name, index);
    } else if (rc > 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "'%s': TPM2_NV_DefineSpace of 0x%08x failed with TPM "
                    "response code 0x%" PRIx64, m->opts->name, index, rc);
    }
    return rc == 0;
}

static bool tpm2_nv_write(Mfg *m, uint32_t index, const uint8_t *data,
                          size_t len, GError **errp)
{
    g_autofree char *what = g_strdup_printf("TPM2_NV_Write of 0x%08x", index);

    for (size_t off = 0; off < len; off += NV_WRITE_CHUNK) {
        size_t n = MIN(NV_WRITE_CHUNK, len - off);
        GByteArray *c = cmd_new(TPM2_ST_SESSIONS, TPM2_CC_NV_WRITE);

        put32(c, TPM2_RH_PLATFORM);
        put32(c, index);
        put_pw_session(c);
        put16(c, n);
        g_byte_array_append(c, data + off, n);
        put16(c, off);
        if (!mfg_call(m, c, what, errp)) {
            return false;
        }
    }
    return true;
}

static bool tpm2_nv_write_lock(Mfg *m, uint32_t index, GError **errp)
{
    GByteArray *c = cmd_new(TPM2_ST_SESSIONS, TPM2_CC_NV_WRITE_LOCK);
    g_autofree char *what = g_strdup_printf("TPM2_NV_WriteLock of 0x%08x",
                                            index);

    put32(c, TPM2_RH_PLATFORM);
    put32(c, index);
    put_pw_session(c);
    return mfg_call(m, c, what, errp);
}

/* ---- the steps ---------------------------------------------------- */

static bool make_ek(Mfg *m, bool ecc, EKPublic *ek, GError **errp)
{
    uint32_t persistent = ecc ? TPM_MANUFACTURE_EK_ECC_HANDLE
                              : TPM_MANUFACTURE_EK_RSA_HANDLE;
    uint32_t handle;

    if (!tpm2_create_ek(m, ecc, &handle, ek, errp)) {
        return false;
    }
    if (!tpm2_evict_control(m, handle, persistent, errp) ||
        !tpm2_flush_context(m, handle, errp)) {
        ek_public_clear(ek);
        return false;
    }
    g_ptr_array_add(m->made, g_strdup_printf(
        "created %s endorsement key at persistent handle 0x%08x",
        ecc ? "ECC NIST P-256" : "RSA 2048", persistent));
    return true;
}

static bool write_cert(Mfg *m, LocalCA *ca, LocalCACertType type,
                       const EKPublic *ek, uint32_t index, const char *what,
                       GError **errp)
{
    LocalCAPublicKey k = { .ecc = ek->ecc, .rsa_e = ek->exponent };
    g_autofree uint8_t *der = NULL;
    size_t len = 0;
    gsize a_len, b_len = 0;

    if (ek->ecc) {
        k.ecc_x = g_bytes_get_data(ek->unique_a, &a_len);
        k.ecc_x_len = a_len;
        k.ecc_y = g_bytes_get_data(ek->unique_b, &b_len);
        k.ecc_y_len = b_len;
    } else {
        k.rsa_n = g_bytes_get_data(ek->unique_a, &a_len);
        k.rsa_n_len = a_len;
    }
    if (localca_issue(ca, type, &k, m->opts->vmid, &der, &len, errp) < 0) {
        return false;
    }
    if (len > UINT16_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "the %s (%zu bytes) does not fit an NV index", what, len);
        return false;
    }
    if (!tpm2_nv_define(m, index, len, errp) ||
        !tpm2_nv_write(m, index, der, len, errp) ||
        (m->opts->lock_nvram && !tpm2_nv_write_lock(m, index, errp))) {
        return false;
    }
    g_ptr_array_add(m->made, g_strdup_printf(
        "wrote the %s (%zu bytes) to NV index 0x%08x%s", what, len, index,
        m->opts->lock_nvram ? ", write-locked" : ""));
    return true;
}

/* Everything on the running scratch TPM; @perm gets its permanent state. */
static bool mfg_run(Mfg *m, LocalCA *ca, uint8_t **perm, size_t *perm_len,
                    GError **errp)
{
    const TPMManufactureOptions *o = m->opts;
    EKPublic rsa = { 0 }, ecc = { 0 };
    bool ok = false;
    int r;

    if (!tpm2_startup(m, errp)) {
        return false;
    }
    r = tpm2_object_exists(m, TPM_MANUFACTURE_EK_RSA_HANDLE, errp);
    if (r < 0) {
        return false;
    }
    if (r > 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': the TPM already has an endorsement key at 0x%08x; "
                    "--overwrite manufactures a fresh TPM in its place",
                    o->name, TPM_MANUFACTURE_EK_RSA_HANDLE);
        return false;
    }
    if (make_ek(m, false, &rsa, errp) && make_ek(m, true, &ecc, errp) &&
        (!o->ek_cert ||
         (write_cert(m, ca, LOCALCA_CERT_EK, &rsa, TPM_MANUFACTURE_EK_RSA_CERT_INDEX,
                     "RSA EK certificate", errp) &&
          write_cert(m, ca, LOCALCA_CERT_EK, &ecc, TPM_MANUFACTURE_EK_ECC_CERT_INDEX,
                     "ECC EK certificate", errp))) &&
        (!o->platform_cert ||
         write_cert(m, ca, LOCALCA_CERT_PLATFORM, &rsa,
                    TPM_MANUFACTURE_PLATFORM_CERT_INDEX, "platform certificate",
                    errp)) &&
        tpm2_shutdown(m, errp)) {
        r = tpm_backend_get_state_blob(m->tb, TPM_STATE_BLOB_PERMANENT, perm,
                                       perm_len, errp);
        if (r == 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                        "the manufactured TPM has no permanent state");
        }
        ok = r > 0;
    }
    ek_public_clear(&rsa);
    ek_public_clear(&ecc);
    return ok;
}

/* The image's TPM family and, unless it is to be replaced, its state. */
static bool load_image_state(NvramStore *store, const TPMManufactureOptions *o,
                             uint8_t **perm, size_t *len, GError **errp)
{
    NvramInfo info;

    if (nvram_get_info(store, &info, errp) < 0) {
        return false;
    }
    if (info.tpm_version != 2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s' holds a TPM 1.2; manufacture makes the endorsement "
                    "keys and certificates of a TPM 2.0 only", o->name);
        return false;
    }
    *perm = NULL;
    *len = 0;
    return o->overwrite || nvram_load(store, TPM_STATE_BLOB_PERMANENT, perm, len,
                                      errp) >= 0;
}

int tpm_manufacture(NvramStore *store, const TPMManufactureOptions *opts,
                    char ***made, GError **errp)
{
    Mfg m = { .opts = opts };
    g_autoptr(LocalCA) ca = NULL;
    uint8_t *old = NULL, *perm = NULL;
    size_t old_len = 0, perm_len = 0;
    bool ok = false, ca_created = false;

    m.made = g_ptr_array_new_with_free_func(g_free);
    if (!load_image_state(store, opts, &old, &old_len, errp)) {
        goto out;
    }
    /* the CA first: if it cannot be made, nothing of the TPM is touched */
    if ((opts->ek_cert || opts->platform_cert) &&
        !(ca = localca_open(opts->ca_dir, &ca_created, errp))) {
        goto out;
    }
    if (ca_created) {
        g_ptr_array_add(m.made, g_strdup_printf("created a local CA in '%s'",
                                                opts->ca_dir));
    }
    if (!mfg_scratch_open(&m, errp) ||
        (old && tpm_backend_set_state_blob(m.tb, TPM_STATE_BLOB_PERMANENT, old,
                                           old_len, errp) < 0) ||
        tpm_backend_startup_tpm(m.tb, BUFFER_SIZE, errp) < 0 ||
        !mfg_run(&m, ca, &perm, &perm_len, errp)) {
        goto out;
    }
    mfg_scratch_close(&m);
    {
        /* the TPM's other state belongs to the TPM before manufacture */
        NvramBlobUpdate upd[] = {
            { TPM_STATE_BLOB_PERMANENT, perm, perm_len },
            { TPM_STATE_BLOB_VOLATILE, NULL, 0 },
            { TPM_STATE_BLOB_SAVESTATE, NULL, 0 },
        };

        ok = nvram_commit(store, upd, G_N_ELEMENTS(upd), errp) == 0;
    }
out:
    mfg_scratch_close(&m);
    if (old) {
        explicit_bzero(old, old_len);
        g_free(old);
    }
    if (perm) {
        explicit_bzero(perm, perm_len);
        g_free(perm);
    }
    if (ok && made) {
        g_ptr_array_add(m.made, NULL);
        *made = (char **)g_ptr_array_free(m.made, false);
    } else {
        g_ptr_array_free(m.made, true);
    }
    return ok ? 0 : -1;
}
