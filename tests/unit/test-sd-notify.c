/*
 * util/sd-notify.c: the datagram a service manager receives on
 * $NOTIFY_SOCKET, abstract names, and the sentences its errors make.
 */
#include "qemu/osdep.h"
#include "qemu/sd-notify.h"
#include "unit-util.h"

/* A datagram socket bound at @sa, as systemd's notify socket is. */
static int bind_receiver(const struct sockaddr_un *sa, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(bind(fd, (const struct sockaddr *)sa, len), ==, 0);
    return fd;
}

/* The next datagram on @fd, which must come at once. */
static char *receive(int fd)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

    g_assert_cmpint(n, >, 0);
    return g_strndup(buf, n);
}

static void test_ready_and_stopping(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-sd-notify-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "notify", NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *first = NULL, *second = NULL;
    struct sockaddr_un sa;
    socklen_t len;
    char extra;
    int fd;

    g_assert_true(qemu_sd_notify_address(path, &sa, &len, &err));
    g_assert_no_error(err);
    fd = bind_receiver(&sa, len);
    g_setenv("NOTIFY_SOCKET", path, TRUE);
    g_assert_true(qemu_sd_notify("READY=1", &err));
    g_assert_true(qemu_sd_notify("STOPPING=1", &err));
    g_assert_no_error(err);
    /* One datagram per call, exactly the state's bytes, no NUL. */
    first = receive(fd);
    second = receive(fd);
    g_assert_cmpstr(first, ==, "READY=1");
    g_assert_cmpstr(second, ==, "STOPPING=1");
    g_assert_cmpint(recv(fd, &extra, 1, MSG_DONTWAIT), ==, -1);
    g_unsetenv("NOTIFY_SOCKET");
    close(fd);
    unit_remove_dir(dir);
}

static void test_abstract_name(void)
{
    g_autofree char *name = g_strdup_printf("@qtpm-test-sd-notify-%d",
                                            (int)getpid());
    g_autoptr(GError) err = NULL;
    g_autofree char *got = NULL;
    struct sockaddr_un sa;
    socklen_t len;
    int fd;

    g_assert_true(qemu_sd_notify_address(name, &sa, &len, &err));
    /* The leading NUL, then the name without '@' and without a NUL. */
    g_assert_cmpint(sa.sun_path[0], ==, 0);
    g_assert_cmpint(len, ==, offsetof(struct sockaddr_un, sun_path) +
                    strlen(name));
    g_assert_cmpmem(sa.sun_path + 1, strlen(name) - 1, name + 1,
                    strlen(name) - 1);
    fd = bind_receiver(&sa, len);
    g_setenv("NOTIFY_SOCKET", name, TRUE);
    g_assert_true(qemu_sd_notify("READY=1", &err));
    g_assert_no_error(err);
    got = receive(fd);
    g_assert_cmpstr(got, ==, "READY=1");
    g_unsetenv("NOTIFY_SOCKET");
    close(fd);
}

static void test_not_under_a_manager(void)
{
    g_autoptr(GError) err = NULL;

    g_unsetenv("NOTIFY_SOCKET");
    g_assert_true(qemu_sd_notify("READY=1", &err));
    g_setenv("NOTIFY_SOCKET", "", TRUE);
    g_assert_true(qemu_sd_notify("READY=1", &err));
    g_assert_no_error(err);
    g_unsetenv("NOTIFY_SOCKET");
}

static void test_bad_names(void)
{
    g_autofree char *longname = g_strnfill(200, 'x');
    g_autofree char *longpath = g_strconcat("/", longname, NULL);
    g_autoptr(GError) err = NULL;
    struct sockaddr_un sa;
    socklen_t len;

    g_assert_false(qemu_sd_notify_address("run/notify", &sa, &len, &err));
    g_assert_cmpstr(err->message, ==,
                    "NOTIFY_SOCKET 'run/notify' is not an absolute path or an "
                    "'@' name");
    g_clear_error(&err);
    g_assert_false(qemu_sd_notify_address("@", &sa, &len, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(qemu_sd_notify_address(longpath, &sa, &len, &err));
    g_assert_true(g_str_has_suffix(err->message,
                                   "is too long for a unix socket"));
    g_clear_error(&err);

    /* Set but unusable: nothing listens there. */
    g_setenv("NOTIFY_SOCKET", "/nonexistent/qtpm-notify", TRUE);
    g_assert_false(qemu_sd_notify("READY=1", &err));
    g_assert_cmpstr(err->message, ==,
                    "cannot notify the service manager at NOTIFY_SOCKET "
                    "'/nonexistent/qtpm-notify': No such file or directory");
    g_unsetenv("NOTIFY_SOCKET");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sd-notify/ready-and-stopping", test_ready_and_stopping);
    g_test_add_func("/sd-notify/abstract-name", test_abstract_name);
    g_test_add_func("/sd-notify/not-under-a-manager", test_not_under_a_manager);
    g_test_add_func("/sd-notify/bad-names", test_bad_names);
    return g_test_run();
}
