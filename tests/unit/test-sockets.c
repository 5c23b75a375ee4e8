/*
 * util/sockets.c: listen and connect over unix and TCP, full-length reads
 * and writes, descriptor passing, and the sentences its errors make.
 */
#include "qemu/osdep.h"
#include "qemu/sockets.h"
#include "unit-util.h"

#include <netinet/in.h>
#include <sys/socket.h>

static char *scratch_path(const char *name)
{
    g_autofree char *dir = g_dir_make_tmp("test-sockets-XXXXXX", NULL);

    g_assert_nonnull(dir);
    return g_build_filename(dir, name, NULL);
}

static void remove_scratch(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);

    unit_remove_dir(dir);
}

/* Accepts on @lfd, sends from the client @cfd and reads it on the server. */
static void check_roundtrip(int lfd, int cfd)
{
    char buf[6] = "";
    int sfd = qemu_socket_accept(lfd);

    g_assert_cmpint(sfd, >=, 0);
    g_assert_cmpint(qemu_write_full(cfd, "hello", 5), ==, 5);
    g_assert_cmpint(qemu_read_full(sfd, buf, 5), ==, 5);
    g_assert_cmpstr(buf, ==, "hello");
    close(sfd);
}

static void test_unix_listen_connect(void)
{
    g_autofree char *path = scratch_path("s.sock");
    g_autoptr(GError) err = NULL;
    int lfd, cfd;

    lfd = qemu_unix_listen(path, 1, &err);
    g_assert_no_error(err);
    /* A socket left behind (here: still bound) is replaced on listen. */
    close(lfd);
    lfd = qemu_unix_listen(path, 1, &err);
    g_assert_no_error(err);
    cfd = qemu_unix_connect(path, &err);
    g_assert_no_error(err);
    g_assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
    check_roundtrip(lfd, cfd);
    close(cfd);
    close(lfd);
    /* The socket is made under a temporary name first; none is left over. */
    {
        g_autofree char *dir = g_path_get_dirname(path);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;
        int n = 0;

        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d))) {
            g_assert_cmpstr(name, ==, "s.sock");
            n++;
        }
        g_assert_cmpint(n, ==, 1);
    }
    remove_scratch(path);
}

static void test_tcp_listen_connect(void)
{
    QemuSocketAddr addr;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    g_autoptr(GError) err = NULL;
    int lfd, cfd;
    uint16_t port;

    g_assert_true(qemu_socket_parse("tcp:127.0.0.1:0", &addr, &err));
    lfd = qemu_socket_listen(&addr, 1, &err);
    g_assert_no_error(err);
    g_assert_cmpint(getsockname(lfd, (struct sockaddr *)&ss, &len), ==, 0);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    g_free(addr.port);
    addr.port = g_strdup_printf("%u", port);
    cfd = qemu_socket_connect(&addr, &err);
    g_assert_no_error(err);
    check_roundtrip(lfd, cfd);
    close(cfd);
    close(lfd);
    qemu_socket_addr_clear(&addr);
}

static void test_parse(void)
{
    QemuSocketAddr a;
    g_autoptr(GError) err = NULL;
    g_autofree char *name = NULL;
    g_autofree char *long_path = g_strnfill(qemu_socket_unix_path_max() + 1, 'x');
    g_autofree char *long_uri = g_strconcat("unix:", long_path, NULL);

    g_assert_true(qemu_socket_parse("tcp:[::1]:4444", &a, NULL));
    g_assert_cmpstr(a.host, ==, "::1");
    g_assert_cmpstr(a.port, ==, "4444");
    qemu_socket_addr_clear(&a);
    g_assert_true(qemu_socket_parse("tcp::4444", &a, NULL));
    g_assert_cmpstr(a.host, ==, "localhost");
    name = qemu_socket_addr_name(&a);
    g_assert_cmpstr(name, ==, "tcp:localhost:4444");
    qemu_socket_addr_clear(&a);

    g_assert_false(qemu_socket_parse("tcp:host", &a, &err));
    g_assert_cmpstr(err->message, ==, "'host' is not HOST:PORT");
    g_clear_error(&err);
    g_assert_false(qemu_socket_parse("tcp:host:80x", &a, &err));
    g_clear_error(&err);
    g_assert_false(qemu_socket_parse("tcp:[::1:80", &a, &err));
    g_clear_error(&err);
    g_assert_false(qemu_socket_parse("udp:x", &a, &err));
    g_assert_cmpstr(err->message, ==, "'udp:x' is not unix:PATH or tcp:HOST:PORT");
    g_clear_error(&err);
    g_assert_false(qemu_socket_parse(long_uri, &a, &err));
    g_assert_nonnull(strstr(err->message, "is too long for a unix socket"));
}

static void test_errors(void)
{
    g_autofree char *path = scratch_path("none.sock");
    g_autofree char *expect = g_strdup_printf(
        "cannot connect to unix:%s: No such file or directory", path);
    g_autofree char *named = g_strdup_printf(
        "cannot connect to qtest socket '%s': No such file or directory", path);
    g_autofree char *contents = NULL;
    QemuSocketAddr addr = { .kind = QEMU_SOCKET_UNIX, .path = path };
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(qemu_unix_connect(path, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_IO);
    g_assert_cmpstr(err->message, ==, expect);
    g_clear_error(&err);

    addr.name = g_strdup_printf("qtest socket '%s'", path);
    g_assert_cmpint(qemu_socket_connect(&addr, &err), ==, -1);
    g_assert_cmpstr(err->message, ==, named);
    g_clear_error(&err);
    g_free(addr.name);

    /* A regular file at the path is never replaced. */
    g_assert_true(g_file_set_contents(path, "precious", -1, NULL));
    g_assert_cmpint(qemu_unix_listen(path, 1, &err), ==, -1);
    g_assert_true(g_str_has_prefix(err->message, "cannot listen on unix:"));
    g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "precious");
    remove_scratch(path);
}

/* Writes @data to @fd a few bytes at a time, from another thread. */
typedef struct Trickle {
    int fd;
    const char *data;
} Trickle;

static gpointer trickle(gpointer opaque)
{
    Trickle *t = opaque;

    for (size_t i = 0; t->data[i]; i += 3) {
        size_t n = MIN(3, strlen(t->data + i));
        g_assert_cmpint(write(t->fd, t->data + i, n), ==, n);
        g_usleep(1000);
    }
    close(t->fd);
    return NULL;
}

static void test_short_reads(void)
{
    static const char msg[] = "a message in short pieces";
    Trickle t = { .data = msg };
    char buf[64] = "";
    int sv[2];
    GThread *th;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    t.fd = sv[1];
    th = g_thread_new("trickle", trickle, &t);
    /* All of it despite the pieces, then fewer bytes at end of file. */
    g_assert_cmpint(qemu_read_full(sv[0], buf, 10), ==, 10);
    g_assert_cmpint(qemu_read_full(sv[0], buf + 10, sizeof(buf) - 10), ==,
                    strlen(msg) - 10);
    g_assert_cmpstr(buf, ==, msg);
    g_thread_join(th);
    close(sv[0]);
}

static void test_read_timeout(void)
{
    char buf[4];
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    g_assert_cmpint(qemu_write_full(sv[1], "ab", 2), ==, 2);
    errno = 0;
    g_assert_cmpint(qemu_read_full_timeout(sv[0], buf, 4, 50), ==, -1);
    g_assert_cmpint(errno, ==, ETIMEDOUT);
    close(sv[1]);
    close(sv[0]);
}

/* A write to a peer that is gone fails with EPIPE, not with SIGPIPE. */
static void test_write_no_sigpipe(void)
{
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    close(sv[1]);
    errno = 0;
    g_assert_cmpint(qemu_write_full(sv[0], "x", 1), <, 1);
    g_assert_cmpint(errno, ==, EPIPE);
    close(sv[0]);
}

static void test_fd_passing(void)
{
    g_autoptr(GError) err = NULL;
    char buf[8] = "", data[8] = "";
    int sv[2], pipefd[2], got = -2;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    g_assert_cmpint(pipe(pipefd), ==, 0);
    g_assert_cmpint(qemu_socket_send_fd(sv[0], "fd!", 3, pipefd[1], &err), ==, 0);
    g_assert_no_error(err);
    close(pipefd[1]);
    g_assert_cmpint(qemu_socket_recv_fd(sv[1], buf, sizeof(buf), &got, &err),
                    ==, 3);
    g_assert_no_error(err);
    g_assert_cmpstr(buf, ==, "fd!");
    g_assert_cmpint(got, >=, 0);
    g_assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
    /* The descriptor that arrived is the pipe's write end. */
    g_assert_cmpint(qemu_write_full(got, "through", 7), ==, 7);
    close(got);
    g_assert_cmpint(qemu_read_full(pipefd[0], data, 7), ==, 7);
    g_assert_cmpstr(data, ==, "through");
    close(pipefd[0]);

    /* Plain data: no descriptor. */
    g_assert_cmpint(qemu_write_full(sv[0], "xy", 2), ==, 2);
    g_assert_cmpint(qemu_socket_recv_fd(sv[1], buf, sizeof(buf), &got, &err),
                    ==, 2);
    g_assert_cmpint(got, ==, -1);

    /* End of file. */
    close(sv[0]);
    g_assert_cmpint(qemu_socket_recv_fd(sv[1], buf, sizeof(buf), &got, &err),
                    ==, 0);
    g_assert_cmpint(got, ==, -1);
    close(sv[1]);

    g_assert_cmpint(qemu_socket_send_fd(sv[1], "x", 1, 0, &err), ==, -1);
    g_assert_true(g_str_has_prefix(err->message, "cannot send a file descriptor: "));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sockets/unix", test_unix_listen_connect);
    g_test_add_func("/sockets/tcp", test_tcp_listen_connect);
    g_test_add_func("/sockets/parse", test_parse);
    g_test_add_func("/sockets/errors", test_errors);
    g_test_add_func("/sockets/short-reads", test_short_reads);
    g_test_add_func("/sockets/read-timeout", test_read_timeout);
    g_test_add_func("/sockets/write-no-sigpipe", test_write_no_sigpipe);
    g_test_add_func("/sockets/fd-passing", test_fd_passing);
    return g_test_run();
}
