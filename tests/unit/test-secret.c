/*
 * crypto/secret.c: -object secret with data= and file=, formats raw, hex and
 * base64, strict decoding, the registry by id, the size limit, pipes and
 * descriptors, and the locked, undumpable memory the bytes live in.
 */
#include "qemu/osdep.h"

#include <sys/mman.h>

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

/* Exactly the limit is taken; one byte more is refused, from a file or data=. */
static void test_size_limit(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-secret-XXXXXX", NULL);
    g_autofree char *at = g_build_filename(dir, "at-limit", NULL);
    g_autofree char *over = g_build_filename(dir, "over-limit", NULL);
    g_autofree char *big = g_malloc(QCRYPTO_SECRET_MAX_LEN + 2);
    GError *err = NULL;
    size_t len;

    memset(big, 'a', QCRYPTO_SECRET_MAX_LEN + 1);
    big[QCRYPTO_SECRET_MAX_LEN + 1] = 0;
    g_assert_true(g_file_set_contents(at, big, QCRYPTO_SECRET_MAX_LEN, NULL));
    g_assert_true(g_file_set_contents(over, big, QCRYPTO_SECRET_MAX_LEN + 1, NULL));
    g_assert_nonnull(make(&err, "id", "at", "file", at, NULL));
    qcrypto_secret_data(qcrypto_secret_lookup("at"), &len);
    g_assert_cmpuint(len, ==, QCRYPTO_SECRET_MAX_LEN);
    assert_fails("holds more than 8192 bytes, the limit for a secret",
                 make(&err, "id", "over", "file", over, NULL), &err);
    assert_fails("the data holds more than 8192 bytes",
                 make(&err, "id", "over", "data", big, NULL), &err);
    big[QCRYPTO_SECRET_MAX_LEN] = 0;
    g_assert_nonnull(make(&err, "id", "data-at", "data", big, NULL));
    assert_fails("holds more than 8192 bytes",
                 make(&err, "id", "zero", "file", "/dev/zero", NULL), &err);
    qcrypto_secret_free_all();
    unlink(at);
    unlink(over);
    rmdir(dir);
}

/*
 * A FIFO nobody writes to is refused at once; a pipe with a writer, an
 * inherited pipe as /dev/fd/N and a memfd as /proc/self/fd/N (the swtpm
 * front doors' way) are read.
 */
static void test_pipes_and_fds(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-secret-XXXXXX", NULL);
    g_autofree char *fifo = g_build_filename(dir, "fifo", NULL);
    g_autofree char *path = NULL;
    GError *err = NULL;
    int fds[2], mfd;
    gint64 t0;

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    t0 = g_get_monotonic_time();
    assert_fails("is a pipe that nothing was written to",
                 make(&err, "id", "f", "file", fifo, NULL), &err);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, G_USEC_PER_SEC);

    g_assert_cmpint(pipe(fds), ==, 0);
    g_assert_cmpint(write(fds[1], "from a pipe\n", 12), ==, 12);
    close(fds[1]);
    path = g_strdup_printf("/dev/fd/%d", fds[0]);
    g_assert_nonnull(make(&err, "id", "p", "file", path, NULL));
    assert_secret("p", "from a pipe\n", 12);
    close(fds[0]);

    mfd = memfd_create("secret", MFD_CLOEXEC);
    g_assert_cmpint(mfd, >=, 0);
    g_assert_cmpint(write(mfd, "6d656d6664", 10), ==, 10);
    g_free(path);
    path = g_strdup_printf("/proc/self/fd/%d", mfd);
    g_assert_nonnull(make(&err, "id", "m", "file", path, "format", "hex", NULL));
    assert_secret("m", "memfd", 5);
    close(mfd);

    qcrypto_secret_free_all();
    unlink(fifo);
    rmdir(dir);
}

/* The VmFlags of the mapping holding @p, from /proc/self/smaps. */
static char *vm_flags_of(const void *p)
{
    g_autofree char *smaps = NULL;
    g_auto(GStrv) lines = NULL;
    bool inside = false;

    g_assert_true(g_file_get_contents("/proc/self/smaps", &smaps, NULL, NULL));
    lines = g_strsplit(smaps, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long lo, hi;

        if (sscanf(*l, "%lx-%lx ", &lo, &hi) == 2) {
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        } else if (inside && g_str_has_prefix(*l, "VmFlags:")) {
            return g_strdup(*l);
        }
    }
    return NULL;
}

/* A secret's bytes sit in pages marked "dd" (not dumped). */
static void test_secure_memory(void)
{
    GError *err = NULL;
    g_autofree char *flags = NULL;
    const uint8_t *d;
    uint8_t *p;
    size_t len;

    g_assert_nonnull(make(&err, "id", "s", "data", "c2VjcmV0", "format", "base64",
                          NULL));
    d = qcrypto_secret_data(qcrypto_secret_lookup("s"), &len);
    g_assert_cmpmem(d, len, "secret", 6);
    flags = vm_flags_of(d);
    g_assert_nonnull(flags);
    g_assert_nonnull(strstr(flags, " dd"));
    qcrypto_secret_free_all();

    p = qcrypto_secure_alloc(100);
    for (int i = 0; i < 100; i++) {
        g_assert_cmpint(p[i], ==, 0);
    }
    memset(p, 0x5a, 100);
    qcrypto_secure_free(p, 100);
    qcrypto_secure_free(NULL, 0);
}

/* qcrypto_memwipe zeroes what it is given, and nothing (NULL) when empty. */
static void test_memwipe(void)
{
    uint8_t buf[64];

    memset(buf, 0xa5, sizeof(buf));
    qcrypto_memwipe(buf + 1, 62);
    g_assert_cmpuint(buf[0], ==, 0xa5);
    g_assert_cmpuint(buf[63], ==, 0xa5);
    for (int i = 1; i < 63; i++) {
        g_assert_cmpuint(buf[i], ==, 0);
    }
    qcrypto_memwipe(NULL, 0);
    qcrypto_memwipe(buf, 0);
    g_assert_cmpuint(buf[0], ==, 0xa5);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/secret/memwipe", test_memwipe);
    g_test_add_func("/secret/data-formats", test_data_formats);
    g_test_add_func("/secret/file", test_file);
    g_test_add_func("/secret/bad-input", test_bad_input);
    g_test_add_func("/secret/size-limit", test_size_limit);
    g_test_add_func("/secret/pipes-and-fds", test_pipes_and_fds);
    g_test_add_func("/secret/secure-memory", test_secure_memory);
    return g_test_run();
}
