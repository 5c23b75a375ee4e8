/*
 * crypto/secret.c: -object secret with data= and file=, formats raw, hex and
 * base64, strict decoding, the registry by id.
 */
#include "qemu/osdep.h"

#include "crypto/secret.h"


static QCryptoSecret *make(GError **err, const char *first, ...)
{
    GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);
    QCryptoSecret *s;
    va_list ap;

    va_start(ap, first);
    for (const char *k = first; k; k = va_arg(ap, const char *)) {
        g_hash_table_insert(h, (char *)k, va_arg(ap, char *));
    }
    va_end(ap);
    s = qcrypto_secret_new(h, err);
    g_hash_table_destroy(h);
    return s;
}

static void assert_secret(const char *id, const void *want, size_t want_len)
{
    QCryptoSecret *s = qcrypto_secret_lookup(id);
    size_t len;
    const uint8_t *d;

    g_assert_nonnull(s);
    d = qcrypto_secret_data(s, &len);
    g_assert_cmpmem(d, len, want, want_len);
}

/* @errp is read after @s was made: arguments are evaluated in any order. */
static void assert_fails(const char *substring, QCryptoSecret *s, GError **errp)
{
    g_assert_null(s);
    g_assert_error(*errp, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_assert_nonnull(strstr((*errp)->message, substring));
    g_clear_error(errp);
}

static void test_data_formats(void)
{
    GError *err = NULL;
    uint8_t key[32];

    for (int i = 0; i < 32; i++) {
        key[i] = i;
    }
    g_assert_nonnull(make(&err, "id", "r", "data", "hello", NULL));
    assert_secret("r", "hello", 5);
    g_assert_nonnull(make(&err, "id", "h", "format", "hex", "data",
                          "000102030405060708090a0b0c0d0e0f"
                          "101112131415161718191A1B1C1D1E1F", NULL));
    assert_secret("h", key, 32);
    g_assert_nonnull(make(&err, "id", "b", "format", "base64", "data",
                          "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", NULL));
    assert_secret("b", key, 32);
    g_assert_no_error(err);
    qcrypto_secret_free(qcrypto_secret_lookup("r"));
    g_assert_null(qcrypto_secret_lookup("r"));
    qcrypto_secret_free_all();
    g_assert_null(qcrypto_secret_lookup("h"));
    g_assert_null(qcrypto_secret_lookup("b"));
}

static void test_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("qtpm-secret.XXXXXX", NULL);
    g_autofree char *raw = g_build_filename(dir, "raw", NULL);
    g_autofree char *hex = g_build_filename(dir, "hex", NULL);
    g_autofree char *b64 = g_build_filename(dir, "b64", NULL);
    g_autofree char *empty = g_build_filename(dir, "empty", NULL);
    g_autofree char *missing = g_build_filename(dir, "missing", NULL);
    uint8_t bin[4] = { 0, 0xff, '\n', 7 };
    GError *err = NULL;

    g_assert_true(g_file_set_contents(raw, (char *)bin, 4, NULL));
    g_assert_true(g_file_set_contents(hex, "00ff0a07\n", -1, NULL));
    g_assert_true(g_file_set_contents(b64, "AP8KBw==\n", -1, NULL));
    g_assert_true(g_file_set_contents(empty, "", 0, NULL));

    g_assert_nonnull(make(&err, "id", "f1", "file", raw, NULL));
    assert_secret("f1", bin, 4);    /* raw keeps every byte, newline too */
    g_assert_nonnull(make(&err, "id", "f2", "file", hex, "format", "hex", NULL));
    assert_secret("f2", bin, 4);
    g_assert_nonnull(make(&err, "id", "f3", "file", b64, "format", "base64", NULL));
    assert_secret("f3", bin, 4);
    g_assert_no_error(err);

    assert_fails("holds no secret", make(&err, "id", "e", "file", empty, NULL), &err);
    g_assert_null(make(&err, "id", "m", "file", missing, NULL));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_IO);
    g_assert_nonnull(strstr(err->message, "secret 'm'"));
    g_clear_error(&err);

    qcrypto_secret_free_all();
    unlink(raw);
    unlink(hex);
    unlink(b64);
    unlink(empty);
    rmdir(dir);
}

static void test_bad_input(void)
{
    GError *err = NULL;

    assert_fails("'id' is required", make(&err, "data", "x", NULL), &err);
    assert_fails("exactly one of", make(&err, "id", "a", NULL), &err);
    assert_fails("exactly one of", make(&err, "id", "a", "data", "x", "file", "/x",
                                        NULL), &err);
    assert_fails("format 'pem'", make(&err, "id", "a", "data", "x", "format", "pem",
                                      NULL), &err);
    assert_fails("odd number", make(&err, "id", "a", "data", "abc", "format", "hex",
                                    NULL), &err);
    assert_fails("non-hex", make(&err, "id", "a", "data", "0g", "format", "hex", NULL), &err);
    assert_fails("invalid character", make(&err, "id", "a", "data", "AA*A",
                                           "format", "base64", NULL), &err);
    assert_fails("multiple of 4", make(&err, "id", "a", "data", "AAA", "format",
                                       "base64", NULL), &err);
    assert_fails("empty", make(&err, "id", "a", "data", "", NULL), &err);

    g_assert_nonnull(make(&err, "id", "dup", "data", "x", NULL));
    assert_fails("already exists", make(&err, "id", "dup", "data", "y", NULL), &err);
    assert_secret("dup", "x", 1);
    qcrypto_secret_free_all();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/secret/data-formats", test_data_formats);
    g_test_add_func("/secret/file", test_file);
    g_test_add_func("/secret/bad-input", test_bad_input);
    return g_test_run();
}
