/*
 * manufacture/localca.c: the CA directory made once and reused, and the
 * certificates it issues read back with GnuTLS, byte for byte where
 * docs/manufacture.md spells the DER out.
 */
#include "qemu/osdep.h"

#include "manufacture/localca.h"
#include "unit-util.h"

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

/* GeneralNames { directoryName { tpmManufacturer, tpmModel, tpmVersion } } */
static const uint8_t ek_san[] = {
    0x30, 0x46, 0xa4, 0x44, 0x30, 0x42,
    0x31, 0x16, 0x30, 0x14, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x01,
    0x0c, 0x0b, 'i', 'd', ':', '0', '0', '0', '0', '1', '0', '1', '4',
    0x31, 0x10, 0x30, 0x0e, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x02,
    0x0c, 0x05, 's', 'w', 't', 'p', 'm',
    0x31, 0x16, 0x30, 0x14, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x03,
    0x0c, 0x0b, 'i', 'd', ':', '2', '0', '1', '9', '1', '0', '2', '3',
};

/* SubjectDirectoryAttributes { tpmSpecification { "2.0", 0, 164 } } */
static const uint8_t ek_sda[] = {
    0x30, 0x19, 0x30, 0x17, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10,
    0x31, 0x0e, 0x30, 0x0c, 0x0c, 0x03, '2', '.', '0',
    0x02, 0x01, 0x00, 0x02, 0x02, 0x00, 0xa4,
};

typedef struct Fixture {
    char *dir;
    char *ca_dir;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("qtpm-localca-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->ca_dir = g_build_filename(f->dir, "ca", NULL);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    unit_remove_dir(f->ca_dir);
    unit_remove_dir(f->dir);
    g_free(f->ca_dir);
    g_free(f->dir);
}

static char *ca_file(Fixture *f, const char *name)
{
    return g_build_filename(f->ca_dir, name, NULL);
}

static gnutls_x509_crt_t load_pem_cert(const char *path)
{
    g_autofree char *pem = NULL;
    gsize len;
    gnutls_datum_t d;
    gnutls_x509_crt_t crt;

    g_assert_true(g_file_get_contents(path, &pem, &len, NULL));
    d = (gnutls_datum_t) { (unsigned char *)pem, len };
    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), ==, 0);
    return crt;
}

static void test_ca_created_once(Fixture *f, gconstpointer data)
{
    static const struct { const char *name; int mode; } files[] = {
        { "swtpm-localca-rootca-privkey.pem", 0600 },
        { "swtpm-localca-rootca-cert.pem", 0644 },
        { "signkey.pem", 0600 },
        { "issuercert.pem", 0644 },
    };
    g_autoptr(GError) err = NULL;
    g_autofree char *issuer = ca_file(f, "issuercert.pem");
    g_autofree char *before = NULL, *after = NULL;
    gnutls_x509_crt_t root, sign;
    unsigned int status = 1;
    bool created = false;
    LocalCA *ca;

    ca = localca_open(f->ca_dir, &created, &err);
    g_assert_no_error(err);
    g_assert_true(created);
    localca_free(ca);
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *p = ca_file(f, files[i].name);
        struct stat st;

        g_assert_cmpint(stat(p, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, files[i].mode);
    }
    g_assert_true(g_file_get_contents(issuer, &before, NULL, NULL));

    ca = localca_open(f->ca_dir, &created, &err);
    g_assert_no_error(err);
    g_assert_false(created);
    localca_free(ca);
    g_assert_true(g_file_get_contents(issuer, &after, NULL, NULL));
    g_assert_cmpstr(before, ==, after);

    /* the signing CA: a CA, signed by the root */
    {
        g_autofree char *rp = ca_file(f, "swtpm-localca-rootca-cert.pem");
        unsigned int critical = 0;

        root = load_pem_cert(rp);
        sign = load_pem_cert(issuer);
        g_assert_cmpint(gnutls_x509_crt_verify(sign, &root, 1, 0, &status), ==, 0);
        g_assert_cmpuint(status, ==, 0);
        g_assert_cmpint(gnutls_x509_crt_get_basic_constraints(sign, &critical, NULL,
                                                              NULL), ==, 1);
        g_assert_cmpuint(critical, ==, 1);
        gnutls_x509_crt_deinit(root);
        gnutls_x509_crt_deinit(sign);
    }
}

/* A half-made CA (no issuercert.pem) is made again. */
static void test_ca_half_made(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *issuer = ca_file(f, "issuercert.pem");
    bool created = false;
    LocalCA *ca = localca_open(f->ca_dir, &created, &err);

    g_assert_no_error(err);
    localca_free(ca);
    g_assert_cmpint(unlink(issuer), ==, 0);
    ca = localca_open(f->ca_dir, &created, &err);
    g_assert_no_error(err);
    g_assert_true(created);
    g_assert_true(g_file_test(issuer, G_FILE_TEST_EXISTS));
    localca_free(ca);
}

static void test_ca_refused(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autofree char *key = ca_file(f, "signkey.pem");
    g_autofree char *file = g_build_filename(f->dir, "file", NULL);
    g_autofree char *under_file = g_build_filename(file, "ca", NULL);
    bool created;
    LocalCA *ca = localca_open(f->ca_dir, &created, &e1);

    g_assert_no_error(e1);
    localca_free(ca);
    g_assert_true(g_file_set_contents(key, "not a key\n", -1, NULL));
    g_assert_null(localca_open(f->ca_dir, &created, &e1));
    g_assert_nonnull(strstr(e1->message, "signkey.pem' is not a PEM private key"));

    g_assert_true(g_file_set_contents(file, "", 0, NULL));
    g_assert_null(localca_open(under_file, &created, &e2));
    g_assert_nonnull(strstr(e2->message, "could not create it"));
    unlink(file);
}

/* Issues a certificate of @type for a fresh key of @algo; checks it all. */
static void check_issue(Fixture *f, LocalCACertType type, gnutls_pk_algorithm_t algo)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *issuer = ca_file(f, "issuercert.pem");
    g_autofree char *rootp = ca_file(f, "swtpm-localca-rootca-cert.pem");
    g_autofree uint8_t *der = NULL;
    gnutls_datum_t n = { 0 }, e = { 0 }, x = { 0 }, y = { 0 }, got_a = { 0 },
                   got_b = { 0 };
    gnutls_x509_crt_t chain[2], root, crt;
    gnutls_privkey_t priv;
    gnutls_pubkey_t pub, got_pub;
    gnutls_ecc_curve_t curve;
    LocalCAPublicKey k = { .ecc = algo == GNUTLS_PK_ECDSA };
    uint8_t ext[512];
    size_t ext_len = sizeof(ext), der_len = 0;
    unsigned int critical = 0, status = 1, usage = 0;
    char cn[64], oid[64];
    size_t cn_len = sizeof(cn), oid_len = sizeof(oid);
    bool created;
    LocalCA *ca = localca_open(f->ca_dir, &created, &err);
    gnutls_datum_t d;

    g_assert_no_error(err);
    g_assert_cmpint(gnutls_privkey_init(&priv), ==, 0);
    g_assert_cmpint(gnutls_privkey_generate(priv, algo,
                                            k.ecc ? GNUTLS_CURVE_TO_BITS(
                                                        GNUTLS_ECC_CURVE_SECP256R1)
                                                  : 2048, 0), ==, 0);
    g_assert_cmpint(gnutls_pubkey_init(&pub), ==, 0);
    g_assert_cmpint(gnutls_pubkey_import_privkey(pub, priv, 0, 0), ==, 0);
    if (k.ecc) {
        g_assert_cmpint(gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y,
                                                      GNUTLS_EXPORT_FLAG_NO_LZ), ==, 0);
        k.ecc_x = x.data;
        k.ecc_x_len = x.size;
        k.ecc_y = y.data;
        k.ecc_y_len = y.size;
    } else {
        g_assert_cmpint(gnutls_pubkey_export_rsa_raw2(pub, &n, &e,
                                                      GNUTLS_EXPORT_FLAG_NO_LZ), ==, 0);
        g_assert_cmpmem(e.data, e.size, "\x01\x00\x01", 3);
        k.rsa_n = n.data;
        k.rsa_n_len = n.size;
        k.rsa_e = 0;        /* the TPM's "default exponent" */
    }
    g_assert_cmpint(localca_issue(ca, type, &k, "vm-x:42", &der, &der_len, &err),
                    ==, 0);
    g_assert_no_error(err);

    d = (gnutls_datum_t) { der, der_len };
    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_get_version(crt), ==, 3);

    /* the chain: leaf, signing CA, root */
    chain[0] = crt;
    chain[1] = load_pem_cert(issuer);
    root = load_pem_cert(rootp);
    g_assert_cmpint(gnutls_x509_crt_list_verify(chain, 2, &root, 1, NULL, 0, 0,
                                                &status), ==, 0);
    g_assert_cmpuint(status, ==, 0);

    /* the key is the one given */
    g_assert_cmpint(gnutls_pubkey_init(&got_pub), ==, 0);
    g_assert_cmpint(gnutls_pubkey_import_x509(got_pub, crt, 0), ==, 0);
    if (k.ecc) {
        g_assert_cmpint(gnutls_pubkey_export_ecc_raw2(got_pub, &curve, &got_a, &got_b,
                                                      GNUTLS_EXPORT_FLAG_NO_LZ), ==, 0);
        g_assert_cmpint(curve, ==, GNUTLS_ECC_CURVE_SECP256R1);
        g_assert_cmpmem(got_a.data, got_a.size, x.data, x.size);
        g_assert_cmpmem(got_b.data, got_b.size, y.data, y.size);
    } else {
        g_assert_cmpint(gnutls_pubkey_export_rsa_raw2(got_pub, &got_a, &got_b,
                                                      GNUTLS_EXPORT_FLAG_NO_LZ), ==, 0);
        g_assert_cmpmem(got_a.data, got_a.size, n.data, n.size);
        g_assert_cmpmem(got_b.data, got_b.size, "\x01\x00\x01", 3);
    }

    g_assert_cmpint(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                                  0, cn, &cn_len), ==, 0);
    g_assert_cmpstr(cn, ==, "vm-x:42");
    /* 99991231235959Z: no expiry */
    g_assert_cmpint(gnutls_x509_crt_get_expiration_time(crt), ==, 253402300799);

    /* the TCG extensions, byte for byte where docs/manufacture.md has them */
    g_assert_cmpint(gnutls_x509_crt_get_extension_by_oid(crt, "2.5.29.17", 0, ext,
                                                         &ext_len, &critical), ==, 0);
    g_assert_cmpuint(critical, ==, 1);
    if (type == LOCALCA_CERT_EK) {
        g_assert_cmpmem(ext, ext_len, ek_san, sizeof(ek_san));
        ext_len = sizeof(ext);
        g_assert_cmpint(gnutls_x509_crt_get_extension_by_oid(crt, "2.5.29.9", 0, ext,
                                                             &ext_len, &critical),
                        ==, 0);
        g_assert_cmpuint(critical, ==, 0);
        g_assert_cmpmem(ext, ext_len, ek_sda, sizeof(ek_sda));
    } else {
        /* platformManufacturer's OID opens the directoryName */
        static const uint8_t oid_pm[] = { 0x06, 0x06, 0x67, 0x81, 0x05, 0x05, 0x01, 0x01 };

        g_assert_nonnull(memmem(ext, ext_len, oid_pm, sizeof(oid_pm)));
        ext_len = sizeof(ext);
        g_assert_cmpint(gnutls_x509_crt_get_extension_by_oid(crt, "2.5.29.9", 0, ext,
                                                             &ext_len, &critical),
                        ==, GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
    }
    g_assert_cmpint(gnutls_x509_crt_get_basic_constraints(crt, &critical, NULL, NULL),
                    ==, 0);     /* CA:FALSE */
    g_assert_cmpuint(critical, ==, 1);
    g_assert_cmpint(gnutls_x509_crt_get_key_usage(crt, &usage, &critical), ==, 0);
    g_assert_cmpuint(critical, ==, 1);
    g_assert_cmpuint(usage, ==, k.ecc ? GNUTLS_KEY_KEY_AGREEMENT
                                      : GNUTLS_KEY_KEY_ENCIPHERMENT);
    g_assert_cmpint(gnutls_x509_crt_get_key_purpose_oid(crt, 0, oid, &oid_len,
                                                        &critical), ==, 0);
    g_assert_cmpstr(oid, ==, type == LOCALCA_CERT_EK ? "2.23.133.8.1" : "2.23.133.8.2");

    gnutls_free(n.data);
    gnutls_free(e.data);
    gnutls_free(x.data);
    gnutls_free(y.data);
    gnutls_free(got_a.data);
    gnutls_free(got_b.data);
    gnutls_pubkey_deinit(got_pub);
    gnutls_pubkey_deinit(pub);
    gnutls_privkey_deinit(priv);
    gnutls_x509_crt_deinit(chain[1]);
    gnutls_x509_crt_deinit(root);
    gnutls_x509_crt_deinit(crt);
    localca_free(ca);
}

static void test_issue_rsa_ek(Fixture *f, gconstpointer data)
{
    check_issue(f, LOCALCA_CERT_EK, GNUTLS_PK_RSA);
}

static void test_issue_ecc_ek(Fixture *f, gconstpointer data)
{
    check_issue(f, LOCALCA_CERT_EK, GNUTLS_PK_ECDSA);
}

static void test_issue_platform(Fixture *f, gconstpointer data)
{
    check_issue(f, LOCALCA_CERT_PLATFORM, GNUTLS_PK_RSA);
}

/* A point that is not on P-256 is refused, not certified. */
static void test_issue_bad_point(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *der = NULL;
    static const uint8_t one[32] = { [31] = 1 };
    LocalCAPublicKey k = {
        .ecc = true, .ecc_x = one, .ecc_x_len = 32, .ecc_y = one, .ecc_y_len = 32,
    };
    size_t len = 0;
    bool created;
    LocalCA *ca = localca_open(f->ca_dir, &created, &err);

    g_assert_no_error(err);
    g_assert_cmpint(localca_issue(ca, LOCALCA_CERT_EK, &k, NULL, &der, &len, &err),
                    ==, -1);
    g_assert_nonnull(err);
    g_assert_null(der);
    localca_free(ca);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
    g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/localca/created-once", test_ca_created_once);
    ADD("/localca/half-made", test_ca_half_made);
    ADD("/localca/refused", test_ca_refused);
    ADD("/localca/issue/rsa-ek", test_issue_rsa_ek);
    ADD("/localca/issue/ecc-ek", test_issue_ecc_ek);
    ADD("/localca/issue/platform", test_issue_platform);
    ADD("/localca/issue/bad-point", test_issue_bad_point);
    return g_test_run();
}
