/*
 * The local CA: a root and a signing CA in a directory, swtpm-localca's
 * layout, and the TCG certificates they issue. GnuTLS builds and signs
 * every certificate; only the values GnuTLS has no type for are written as
 * DER here (der_*). docs/manufacture.md has the profile and the layout.
 */
#include "qemu/osdep.h"
#include "manufacture/localca.h"
#include "crypto/random.h"

#include <fcntl.h>
#include <sys/file.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#define LOCALCA_ROOT_KEY "swtpm-localca-rootca-privkey.pem"
#define LOCALCA_ROOT_CERT "swtpm-localca-rootca-cert.pem"
#define LOCALCA_SIGN_KEY "signkey.pem"
#define LOCALCA_SIGN_CERT "issuercert.pem"
#define LOCALCA_LOCK ".lock.swtpm-localca"
#define LOCALCA_KEY_BITS 2048
#define LOCALCA_CA_DAYS 3650
#define LOCALCA_SERIAL_LEN 16

/* The attributes swtpm_setup writes by default (docs/manufacture.md). */
#define TPM_MANUFACTURER "id:00001014"
#define TPM_MODEL "swtpm"
#define TPM_VERSION_STR "id:20191023"
#define TPM_SPEC_FAMILY "2.0"
#define TPM_SPEC_LEVEL 0
#define TPM_SPEC_REVISION 164
#define PLATFORM_MANUFACTURER "QEMU"
#define PLATFORM_MODEL "QEMU"
#define PLATFORM_VERSION "1.0"

#define OID_TPM_MANUFACTURER "2.23.133.2.1"
#define OID_TPM_MODEL "2.23.133.2.2"
#define OID_TPM_VERSION "2.23.133.2.3"
#define OID_PLATFORM_MANUFACTURER "2.23.133.5.1.1"
#define OID_PLATFORM_MODEL "2.23.133.5.1.4"
#define OID_PLATFORM_VERSION "2.23.133.5.1.5"
#define OID_KP_EK_CERT "2.23.133.8.1"
#define OID_KP_PLATFORM_CERT "2.23.133.8.2"
#define OID_SUBJECT_ALT_NAME "2.5.29.17"
#define OID_SUBJECT_DIR_ATTRS "2.5.29.9"

struct LocalCA {
    char *dir;
    gnutls_x509_crt_t cert;     /* the signing (intermediate) CA */
    gnutls_privkey_t key;
};

static bool gnutls_ok(int rc, const char *what, GError **errp)
{
    if (rc < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED, "%s failed: %s", what,
                    gnutls_strerror(rc));
        return false;
    }
    return true;
}

/* ---- DER for what GnuTLS has no type for ------------------------------ */

/* Appends a DER TLV; every value here is far below 64 KiB. */
static void der_tlv(GByteArray *out, uint8_t tag, const uint8_t *v, size_t len)
{
    uint8_t hdr[4] = { tag };
    size_t n = 2;

    g_assert(len <= 0xffff);
    if (len < 0x80) {
        hdr[1] = len;
    } else if (len <= 0xff) {
        hdr[1] = 0x81;
        hdr[2] = len;
        n = 3;
    } else {
        hdr[1] = 0x82;
        hdr[2] = len >> 8;
        hdr[3] = len;
        n = 4;
    }
    g_byte_array_append(out, hdr, n);
    g_byte_array_append(out, v, len);
}

static void der_wrap(GByteArray *out, uint8_t tag, GByteArray *inner)
{
    der_tlv(out, tag, inner->data, inner->len);
}

static void der_utf8(GByteArray *out, const char *s)
{
    der_tlv(out, 0x0c, (const uint8_t *)s, strlen(s));
}

/* A non-negative INTEGER below 2^31, minimal length. */
static void der_uint(GByteArray *out, uint32_t v)
{
    uint8_t b[5];
    size_t n = 0;

    for (int shift = 24; shift >= 0; shift -= 8) {
        if (n || (v >> shift) & 0xff || shift == 0) {
            if (!n && (v >> shift) & 0x80) {
                b[n++] = 0;
            }
            b[n++] = v >> shift;
        }
    }
    der_tlv(out, 0x02, b, n);
}

/* SubjectDirectoryAttributes with the TPM specification (TCG EK profile). */
static GByteArray *der_tpm_specification(void)
{
    static const uint8_t oid_tpm_spec[] = { 0x67, 0x81, 0x05, 0x02, 0x10 };
    g_autoptr(GByteArray) spec = g_byte_array_new();
    g_autoptr(GByteArray) set = g_byte_array_new();
    g_autoptr(GByteArray) attr = g_byte_array_new();
    g_autoptr(GByteArray) attrs = g_byte_array_new();
    GByteArray *out = g_byte_array_new();

    der_utf8(spec, TPM_SPEC_FAMILY);
    der_uint(spec, TPM_SPEC_LEVEL);
    der_uint(spec, TPM_SPEC_REVISION);
    der_wrap(set, 0x30, spec);
    der_tlv(attr, 0x06, oid_tpm_spec, sizeof(oid_tpm_spec));
    der_wrap(attr, 0x31, set);
    der_wrap(attrs, 0x30, attr);
    der_wrap(out, 0x30, attrs);
    return out;
}

/* ---- files ----------------------------------------------------------- */

static bool write_file(const char *path, const void *data, size_t len, int mode,
                       GError **errp)
{
    GError *local = NULL;

    if (!g_file_set_contents_full(path, data, len,
                                  G_FILE_SET_CONTENTS_CONSISTENT |
                                  G_FILE_SET_CONTENTS_DURABLE, mode, &local)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "%s", local->message);
        g_error_free(local);
        return false;
    }
    return true;
}

static bool read_file(const char *path, gnutls_datum_t *out, GError **errp)
{
    GError *local = NULL;
    char *data;
    gsize len;

    if (!g_file_get_contents(path, &data, &len, &local)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "%s", local->message);
        g_error_free(local);
        return false;
    }
    out->data = (unsigned char *)data;
    out->size = len;
    return true;
}

static void datum_wipe(gnutls_datum_t *d)
{
    if (d->data) {
        explicit_bzero(d->data, d->size);
        g_free(d->data);
    }
    d->data = NULL;
    d->size = 0;
}

/* ---- CA certificates --------------------------------------------------- */

static bool set_random_serial(gnutls_x509_crt_t crt, GError **errp)
{
    uint8_t serial[LOCALCA_SERIAL_LEN];

    if (qcrypto_random_bytes(serial, sizeof(serial), errp) < 0) {
        return false;
    }
    /* positive, and no leading zero byte for DER's minimal INTEGER */
    serial[0] = (serial[0] & 0x7f) | 0x40;
    return gnutls_ok(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)),
                     "setting a serial number", errp);
}

static bool set_key_ids(gnutls_x509_crt_t crt, gnutls_pubkey_t pub,
                        gnutls_x509_crt_t issuer, GError **errp)
{
    uint8_t id[64];
    size_t len = sizeof(id);

    if (pub) {
        if (!gnutls_ok(gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA1, id,
                                                &len), "a key id", errp) ||
            !gnutls_ok(gnutls_x509_crt_set_subject_key_id(crt, id, len),
                       "setting the subject key id", errp)) {
            return false;
        }
    }
    if (issuer) {
        unsigned int critical;

        len = sizeof(id);
        if (!gnutls_ok(gnutls_x509_crt_get_subject_key_id(issuer, id, &len,
                                                          &critical),
                       "the issuer's key id", errp) ||
            !gnutls_ok(gnutls_x509_crt_set_authority_key_id(crt, id, len),
                       "setting the authority key id", errp)) {
            return false;
        }
    }
    return true;
}

/*
 * A CA certificate for @key named CN=@cn, signed by @issuer/@issuer_key
 * (NULL: self-signed).
 */
static gnutls_x509_crt_t make_ca_cert(gnutls_privkey_t key, const char *cn,
                                      gnutls_x509_crt_t issuer,
                                      gnutls_privkey_t issuer_key,
                                      GError **errp)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_pubkey_t pub = NULL;
    time_t now = time(NULL);
    bool ok;

    ok = gnutls_ok(gnutls_x509_crt_init(&crt), "a certificate", errp) &&
         gnutls_ok(gnutls_pubkey_init(&pub), "a public key", errp) &&
         gnutls_ok(gnutls_pubkey_import_privkey(pub, key, 0, 0),
                   "the CA's public key", errp) &&
         gnutls_ok(gnutls_x509_crt_set_version(crt, 3), "version", errp) &&
         set_random_serial(crt, errp) &&
         gnutls_ok(gnutls_x509_crt_set_pubkey(crt, pub), "public key", errp) &&
         gnutls_ok(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME,
                                                 0, cn, strlen(cn)),
                   "subject", errp) &&
         gnutls_ok(gnutls_x509_crt_set_activation_time(crt, now), "validity",
                   errp) &&
         gnutls_ok(gnutls_x509_crt_set_expiration_time(
                       crt, now + (time_t)LOCALCA_CA_DAYS * 24 * 3600),
                   "validity", errp) &&
         gnutls_ok(gnutls_x509_crt_set_basic_constraints(crt, 1, -1),
                   "basic constraints", errp) &&
         gnutls_ok(gnutls_x509_crt_set_key_usage(
                       crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN),
                   "key usage", errp) &&
         set_key_ids(crt, pub, issuer, errp) &&
         gnutls_ok(gnutls_x509_crt_privkey_sign(crt, issuer ? issuer : crt,
                                                issuer_key ? issuer_key : key,
                                                GNUTLS_DIG_SHA256, 0),
                   "signing the CA certificate", errp);
    gnutls_pubkey_deinit(pub);
    if (!ok) {
        gnutls_x509_crt_deinit(crt);
        return NULL;
    }
    return crt;
}

static bool write_key(gnutls_privkey_t key, const char *path, GError **errp)
{
    gnutls_x509_privkey_t xkey = NULL;
    gnutls_datum_t pem = { 0 };
    bool ok;

    ok = gnutls_ok(gnutls_privkey_export_x509(key, &xkey), "exporting a key",
                   errp) &&
         gnutls_ok(gnutls_x509_privkey_export2_pkcs8(xkey, GNUTLS_X509_FMT_PEM,
                                                     NULL, GNUTLS_PKCS_PLAIN,
                                                     &pem),
                   "encoding a key", errp) &&
         write_file(path, pem.data, pem.size, 0600, errp);
    if (pem.data) {
        explicit_bzero(pem.data, pem.size);
        gnutls_free(pem.data);
    }
    gnutls_x509_privkey_deinit(xkey);
    return ok;
}

static bool write_cert(gnutls_x509_crt_t crt, const char *path, GError **errp)
{
    gnutls_datum_t pem = { 0 };
    bool ok;

    ok = gnutls_ok(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem),
                   "encoding a certificate", errp) &&
         write_file(path, pem.data, pem.size, 0644, errp);
    gnutls_free(pem.data);
    return ok;
}

static gnutls_privkey_t generate_key(GError **errp)
{
    gnutls_privkey_t key = NULL;

    if (!gnutls_ok(gnutls_privkey_init(&key), "a private key", errp)) {
        return NULL;
    }
    if (!gnutls_ok(gnutls_privkey_generate(key, GNUTLS_PK_RSA, LOCALCA_KEY_BITS,
                                           0), "generating a CA key", errp)) {
        gnutls_privkey_deinit(key);
        return NULL;
    }
    return key;
}

/*
 * Makes the root and the signing CA. The signing CA's certificate is
 * written last: it is what localca_load looks for, so a crash before it
 * leaves a CA that the next use makes again.
 */
static bool create_ca(LocalCA *ca, GError **errp)
{
    g_autofree char *root_key_path = g_build_filename(ca->dir, LOCALCA_ROOT_KEY, NULL);
    g_autofree char *root_cert_path = g_build_filename(ca->dir, LOCALCA_ROOT_CERT, NULL);
    g_autofree char *sign_key_path = g_build_filename(ca->dir, LOCALCA_SIGN_KEY, NULL);
    g_autofree char *sign_cert_path = g_build_filename(ca->dir, LOCALCA_SIGN_CERT, NULL);
    gnutls_privkey_t root_key = NULL;
    gnutls_x509_crt_t root = NULL;
    bool ok;

    ok = (root_key = generate_key(errp)) &&
         (root = make_ca_cert(root_key, "swtpm-localca-rootca", NULL, NULL,
                              errp)) &&
         (ca->key = generate_key(errp)) &&
         (ca->cert = make_ca_cert(ca->key, "swtpm-localca", root, root_key,
                                  errp)) &&
         write_key(root_key, root_key_path, errp) &&
         write_cert(root, root_cert_path, errp) &&
         write_key(ca->key, sign_key_path, errp) &&
         write_cert(ca->cert, sign_cert_path, errp);
    gnutls_x509_crt_deinit(root);
    gnutls_privkey_deinit(root_key);
    return ok;
}

/*
 * 1: loaded; 0: not there, or half made (a crash during create_ca): made
 * anew; -1: error. A CA that is there but cannot be read is an error, never
 * replaced: certificates it issued must stay verifiable.
 */
static int load_ca(LocalCA *ca, GError **errp)
{
    g_autofree char *key_path = g_build_filename(ca->dir, LOCALCA_SIGN_KEY, NULL);
    g_autofree char *cert_path = g_build_filename(ca->dir, LOCALCA_SIGN_CERT, NULL);
    gnutls_datum_t key = { 0 }, cert = { 0 };
    int ret = -1;

    if (!g_file_test(key_path, G_FILE_TEST_EXISTS) ||
        !g_file_test(cert_path, G_FILE_TEST_EXISTS)) {
        return 0;
    }
    if (!read_file(key_path, &key, errp) || !read_file(cert_path, &cert, errp)) {
        goto out;
    }
    if (gnutls_privkey_init(&ca->key) < 0 ||
        gnutls_privkey_import_x509_raw(ca->key, &key, GNUTLS_X509_FMT_PEM, NULL,
                                       0) < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is not a PEM private key", key_path);
        goto out;
    }
    if (gnutls_x509_crt_init(&ca->cert) < 0 ||
        gnutls_x509_crt_import(ca->cert, &cert, GNUTLS_X509_FMT_PEM) < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is not a PEM certificate", cert_path);
        goto out;
    }
    ret = 1;
out:
    datum_wipe(&key);
    datum_wipe(&cert);
    return ret;
}

void localca_free(LocalCA *ca)
{
    if (!ca) {
        return;
    }
    gnutls_x509_crt_deinit(ca->cert);
    gnutls_privkey_deinit(ca->key);
    g_free(ca->dir);
    g_free(ca);
}

LocalCA *localca_open(const char *dir, bool *created, GError **errp)
{
    g_autoptr(LocalCA) ca = g_new0(LocalCA, 1);
    g_autofree char *lock_path = g_build_filename(dir, LOCALCA_LOCK, NULL);
    int fd, r;

    ca->dir = g_strdup(dir);
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "CA directory '%s': could not create it: %s", dir,
                    g_strerror(errno));
        return NULL;
    }
    fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "CA directory '%s': could not open its lock file: %s", dir,
                    g_strerror(errno));
        return NULL;
    }
    /* Two first uses at once must make one CA, not two halves of two. */
    while ((r = flock(fd, LOCK_EX)) < 0 && errno == EINTR) {
    }
    if (r < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "CA directory '%s': could not lock it: %s", dir,
                    g_strerror(errno));
        close(fd);
        return NULL;
    }
    *created = false;
    r = load_ca(ca, errp);
    if (r == 0) {
        *created = true;
        GError *local = NULL;

        if (!create_ca(ca, &local)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "CA directory '%s': could not create the CA: %s", dir,
                        local->message);
            g_error_free(local);
            r = -1;
        }
    }
    close(fd);  /* releases the lock */
    return r < 0 ? NULL : g_steal_pointer(&ca);
}

/* ---- issued certificates ----------------------------------------------- */

/*
 * The directoryName of the TCG attributes: one RDN per attribute, each a
 * UTF8String (GnuTLS knows no string type for these OIDs, so the value
 * goes in as DER), built on a scratch certificate's subject.
 */
static bool tcg_directory_name(const char *const attrs[][2], size_t n,
                               gnutls_datum_t *out, GError **errp)
{
    gnutls_x509_crt_t tmp = NULL;
    gnutls_datum_t raw = { 0 };
    bool ok = gnutls_ok(gnutls_x509_crt_init(&tmp), "a certificate", errp);

    for (size_t i = 0; ok && i < n; i++) {
        g_autoptr(GByteArray) v = g_byte_array_new();

        der_utf8(v, attrs[i][1]);
        ok = gnutls_ok(gnutls_x509_crt_set_dn_by_oid(tmp, attrs[i][0], 1,
                                                     v->data, v->len),
                       "a TCG attribute", errp);
    }
    ok = ok && gnutls_ok(gnutls_x509_crt_get_raw_dn(tmp, &raw), "a name", errp);
    if (ok) {
        out->data = g_memdup2(raw.data, raw.size);
        out->size = raw.size;
    }
    gnutls_free(raw.data);
    gnutls_x509_crt_deinit(tmp);
    return ok;
}

static bool set_tcg_san(gnutls_x509_crt_t crt, LocalCACertType type,
                        GError **errp)
{
    static const char *const tpm_attrs[][2] = {
        { OID_TPM_MANUFACTURER, TPM_MANUFACTURER },
        { OID_TPM_MODEL, TPM_MODEL },
        { OID_TPM_VERSION, TPM_VERSION_STR },
    };
    static const char *const platform_attrs[][2] = {
        { OID_PLATFORM_MANUFACTURER, PLATFORM_MANUFACTURER },
        { OID_PLATFORM_MODEL, PLATFORM_MODEL },
        { OID_PLATFORM_VERSION, PLATFORM_VERSION },
    };
    gnutls_datum_t dn = { 0 };
    g_autoptr(GByteArray) name = g_byte_array_new();
    g_autoptr(GByteArray) ext = g_byte_array_new();
    bool ok;

    /*
     * GeneralNames { directoryName [4] EXPLICIT Name }: GnuTLS's encoder of
     * alternative names fails on a directoryName, so the two headers are
     * written here around the Name that GnuTLS made.
     */
    ok = tcg_directory_name(type == LOCALCA_CERT_EK ? tpm_attrs : platform_attrs,
                            3, &dn, errp);
    if (ok) {
        der_tlv(name, 0xa4, dn.data, dn.size);
        der_wrap(ext, 0x30, name);
        ok = gnutls_ok(gnutls_x509_crt_set_extension_by_oid(crt, OID_SUBJECT_ALT_NAME,
                                                            ext->data, ext->len, 1),
                       "setting the subject alternative name", errp);
    }
    g_free(dn.data);
    return ok;
}

static bool import_public_key(gnutls_pubkey_t pub, const LocalCAPublicKey *k,
                              GError **errp)
{
    if (k->ecc) {
        gnutls_datum_t x = { (unsigned char *)k->ecc_x, k->ecc_x_len };
        gnutls_datum_t y = { (unsigned char *)k->ecc_y, k->ecc_y_len };

        return gnutls_ok(gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_SECP256R1,
                                                      &x, &y),
                         "the EK's EC public key", errp);
    } else {
        uint32_t e = k->rsa_e ? k->rsa_e : 65537;
        uint8_t eb[4] = { e >> 24, e >> 16, e >> 8, e };
        size_t skip = 0;
        gnutls_datum_t n = { (unsigned char *)k->rsa_n, k->rsa_n_len };
        gnutls_datum_t ed;

        while (skip < 3 && !eb[skip]) {
            skip++;
        }
        ed.data = eb + skip;
        ed.size = 4 - skip;
        return gnutls_ok(gnutls_pubkey_import_rsa_raw(pub, &n, &ed),
                         "the EK's RSA public key", errp);
    }
}

int localca_issue(LocalCA *ca, LocalCACertType type, const LocalCAPublicKey *key,
                  const char *vmid, uint8_t **der, size_t *der_len,
                  GError **errp)
{
    g_autofree char *cn = g_strdup(vmid ? vmid : "unknown");
    gnutls_x509_crt_t crt = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t out = { 0 };
    g_autoptr(GByteArray) sda = NULL;
    bool ok;

    ok = gnutls_ok(gnutls_x509_crt_init(&crt), "a certificate", errp) &&
         gnutls_ok(gnutls_pubkey_init(&pub), "a public key", errp) &&
         import_public_key(pub, key, errp) &&
         /* a point off the curve or a bad modulus gets no certificate */
         gnutls_ok(gnutls_pubkey_verify_params(pub), "checking the EK's public key",
                   errp) &&
         gnutls_ok(gnutls_x509_crt_set_version(crt, 3), "version", errp) &&
         set_random_serial(crt, errp) &&
         gnutls_ok(gnutls_x509_crt_set_activation_time(crt, time(NULL)),
                   "validity", errp) &&
         /* (time_t)-1: GeneralizedTime 99991231235959Z, no expiry */
         gnutls_ok(gnutls_x509_crt_set_expiration_time(crt, (time_t)-1),
                   "validity", errp) &&
         gnutls_ok(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME,
                                                 0, cn, strlen(cn)),
                   "--vmid as the subject", errp) &&
         gnutls_ok(gnutls_x509_crt_set_pubkey(crt, pub), "public key", errp) &&
         set_tcg_san(crt, type, errp) &&
         gnutls_ok(gnutls_x509_crt_set_basic_constraints(crt, 0, -1),
                   "basic constraints", errp);
    if (ok && type == LOCALCA_CERT_EK) {
        sda = der_tpm_specification();
        ok = gnutls_ok(gnutls_x509_crt_set_extension_by_oid(
                           crt, OID_SUBJECT_DIR_ATTRS, sda->data, sda->len, 0),
                       "the TPM specification", errp);
    }
    ok = ok && set_key_ids(crt, NULL, ca->cert, errp) &&
         gnutls_ok(gnutls_x509_crt_set_key_usage(
                       crt, key->ecc ? GNUTLS_KEY_KEY_AGREEMENT
                                     : GNUTLS_KEY_KEY_ENCIPHERMENT),
                   "key usage", errp) &&
         gnutls_ok(gnutls_x509_crt_set_key_purpose_oid(
                       crt, type == LOCALCA_CERT_EK ? OID_KP_EK_CERT
                                                    : OID_KP_PLATFORM_CERT, 0),
                   "extended key usage", errp) &&
         gnutls_ok(gnutls_x509_crt_privkey_sign(crt, ca->cert, ca->key,
                                                GNUTLS_DIG_SHA256, 0),
                   "signing the certificate", errp) &&
         gnutls_ok(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out),
                   "encoding the certificate", errp);
    if (ok) {
        *der = g_memdup2(out.data, out.size);
        *der_len = out.size;
    }
    gnutls_free(out.data);
    gnutls_pubkey_deinit(pub);
    gnutls_x509_crt_deinit(crt);
    return ok ? 0 : -1;
}
