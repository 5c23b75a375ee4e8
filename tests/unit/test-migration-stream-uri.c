/*
 * Migration URIs (docs/migration.md §1) and the channel reply framing.
 */
#include "qemu/osdep.h"

#include <sys/socket.h>

#include "migration/channel.h"

static void test_uri_good(void)
{
    MigUri u;

    g_assert_true(mig_uri_parse("unix:/tmp/x.sock", &u, NULL));
    g_assert_cmpint(u.kind, ==, MIG_URI_UNIX);
    g_assert_cmpstr(u.path, ==, "/tmp/x.sock");
    g_assert_true(mig_uri_has_return_path(&u));
    mig_uri_clear(&u);

    g_assert_true(mig_uri_parse("tcp:127.0.0.1:4444", &u, NULL));
    g_assert_cmpint(u.kind, ==, MIG_URI_TCP);
    g_assert_cmpstr(u.host, ==, "127.0.0.1");
    g_assert_cmpstr(u.port, ==, "4444");
    mig_uri_clear(&u);

    g_assert_true(mig_uri_parse("tcp:[::1]:5", &u, NULL));
    g_assert_cmpstr(u.host, ==, "::1");
    g_assert_cmpstr(u.port, ==, "5");
    mig_uri_clear(&u);

    g_assert_true(mig_uri_parse("tcp::7", &u, NULL));
    g_assert_cmpstr(u.host, ==, "localhost");
    mig_uri_clear(&u);

    g_assert_true(mig_uri_parse("fd:3", &u, NULL));
    g_assert_cmpint(u.kind, ==, MIG_URI_FD);
    g_assert_cmpint(u.fd, ==, 3);
    mig_uri_clear(&u);

    g_assert_true(mig_uri_parse("file:/tmp/mig.bin", &u, NULL));
    g_assert_cmpint(u.kind, ==, MIG_URI_FILE);
    g_assert_false(mig_uri_has_return_path(&u));
    mig_uri_clear(&u);

    g_assert_true(mig_uri_parse("defer", &u, NULL));
    g_assert_cmpint(u.kind, ==, MIG_URI_DEFER);
    mig_uri_clear(&u);
}

static void test_uri_bad(void)
{
    static const char *const bad[] = {
        "",          "unix:",     "file:",          "tcp:",       "tcp:host",
        "tcp:host:", "tcp:h:12x", "tcp:[::1",       "tcp:[::1]5", "fd:",
        "fd:-1",     "fd:3x",     "fd:99999999999", "exec:cat",   "defer2",
        "UNIX:/x",
    };
    g_autofree char *longpath = g_strnfill(200, 'a');
    g_autofree char *longuri = g_strconcat("unix:/", longpath, NULL);

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        MigUri u;
        g_autoptr(GError) err = NULL;

        if (mig_uri_parse(bad[i], &u, &err)) {
            g_error("'%s' was accepted", bad[i]);
        }
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    }
    {
        MigUri u;
        g_autoptr(GError) err = NULL;
        g_assert_false(mig_uri_parse(longuri, &u, &err));
        g_assert_false(mig_uri_parse(NULL, &u, NULL));
    }
}

static void test_socketpair_io(void)
{
    int sv[2];
    uint8_t out[100000], in[100000];
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    for (size_t i = 0; i < sizeof(out); i++) {
        out[i] = i * 31;
    }
    /* Small enough for the socket buffer plus one read in between. */
    g_assert_cmpint(mig_write_full(sv[0], out, 1000, &err), ==, 0);
    g_assert_cmpint(mig_read_full(sv[1], in, 1000, 1000, &err), ==, 1000);
    g_assert_cmpmem(in, 1000, out, 1000);
    /* A short stream then EOF: an error naming the shortfall. */
    g_assert_cmpint(mig_write_full(sv[0], out, 10, &err), ==, 0);
    close(sv[0]);
    g_assert_cmpint(mig_read_full(sv[1], in, 20, 1000, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "10 of 20"));
    g_clear_error(&err);
    /* Clean EOF before the first byte. */
    g_assert_cmpint(mig_read_full(sv[1], in, 20, 1000, &err), ==, 0);
    close(sv[1]);
}

static void test_read_timeout(void)
{
    int sv[2];
    uint8_t b[4];
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    g_assert_cmpint(mig_read_full(sv[1], b, 4, 10, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_IO);
    close(sv[0]);
    close(sv[1]);
}

static void test_connect_refused(void)
{
    MigUri u;
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("mig-uri-XXXXXX", NULL);
    g_autofree char *uri = g_strdup_printf("unix:%s/none.sock", dir);

    g_assert_true(mig_uri_parse(uri, &u, NULL));
    g_assert_cmpint(mig_channel_connect(&u, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "cannot connect"));
    mig_uri_clear(&u);
    rmdir(dir);
}

/*
 * fd:N names a descriptor qtpm inherited. Its own (all close-on-exec, the
 * image among them) are refused, so "migrate fd:N" cannot write the stream
 * over the TPM's image.
 */
static void test_fd_own_refused(void)
{
    MigUri u;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) err2 = NULL;
    g_autofree char *uri = NULL;
    bool listening;
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    uri = g_strdup_printf("fd:%d", fd);
    g_assert_true(mig_uri_parse(uri, &u, NULL));
    g_assert_cmpint(mig_channel_connect(&u, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_assert_cmpint(mig_channel_listen(&u, &listening, &err2), ==, -1);
    g_assert_error(err2, QTPM_ERROR, QTPM_ERROR_INVALID);
    /* Without close-on-exec it is an inherited descriptor: accepted. */
    g_assert_cmpint(fcntl(fd, F_SETFD, 0), ==, 0);
    g_assert_cmpint(mig_channel_connect(&u, NULL), ==, fd);
    mig_uri_clear(&u);
    close(fd);
}

/*
 * file:PATH never truncates a file qtpm has open (its image): "migrate
 * file:tpm.qcow2" is refused. Any other file is replaced by the stream.
 */
static void test_file_open_refused(void)
{
    MigUri u;
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("mig-uri-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "image", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *data = NULL;
    gsize len;
    int held, fd;

    g_assert_true(g_file_set_contents(path, "state", 5, NULL));
    held = open(path, O_RDWR | O_CLOEXEC);
    g_assert_cmpint(held, >=, 0);
    g_assert_true(mig_uri_parse(uri, &u, NULL));
    g_assert_cmpint(mig_channel_connect(&u, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpmem(data, len, "state", 5);
    close(held);

    fd = mig_channel_connect(&u, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_clear_pointer(&data, g_free);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, ==, 0);
    mig_uri_clear(&u);
    unlink(path);
    rmdir(dir);
}

/* Listening on unix:PATH replaces a stale socket, never a regular file. */
static void test_listen_keeps_file(void)
{
    MigUri u;
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("mig-uri-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "image", NULL);
    g_autofree char *uri = g_strdup_printf("unix:%s", path);
    g_autofree char *data = NULL;
    bool listening;
    gsize len;

    g_assert_true(g_file_set_contents(path, "state", 5, NULL));
    g_assert_true(mig_uri_parse(uri, &u, NULL));
    g_assert_cmpint(mig_channel_listen(&u, &listening, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpmem(data, len, "state", 5);
    mig_uri_clear(&u);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration-uri/good", test_uri_good);
    g_test_add_func("/migration-uri/bad", test_uri_bad);
    g_test_add_func("/migration-uri/io", test_socketpair_io);
    g_test_add_func("/migration-uri/read-timeout", test_read_timeout);
    g_test_add_func("/migration-uri/connect-refused", test_connect_refused);
    g_test_add_func("/migration-uri/fd-own-refused", test_fd_own_refused);
    g_test_add_func("/migration-uri/file-open-refused", test_file_open_refused);
    g_test_add_func("/migration-uri/listen-keeps-file", test_listen_keeps_file);
    return g_test_run();
}
