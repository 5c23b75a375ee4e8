/*
 * systemd's readiness notification (include/qemu/sd-notify.h).
 */
#include "qemu/osdep.h"
#include "qemu/sd-notify.h"
#include "qemu/sockets.h"

bool qemu_sd_notify_address(const char *name, struct sockaddr_un *sa,
                            socklen_t *len, GError **errp)
{
    size_t n = strlen(name);

    if (n < 2 || (name[0] != '/' && name[0] != '@')) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "NOTIFY_SOCKET '%s' is not an absolute path or an '@' name",
                    name);
        return false;
    }
    /* An abstract name has no terminating NUL, so it may use every byte. */
    if (n > qemu_socket_unix_path_max() + (name[0] == '@')) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "NOTIFY_SOCKET '%s' is too long for a unix socket", name);
        return false;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@') {
        sa->sun_path[0] = '\0';
    }
    /* Abstract names are as long as given; paths include their NUL. */
    *len = offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/');
    return true;
}

bool qemu_sd_notify(const char *state, GError **errp)
{
    const char *name = g_getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len;
    ssize_t sent;
    int fd;

    if (!name || !*name) {
        return true;
    }
    if (!qemu_sd_notify_address(name, &sa, &len, errp)) {
        return false;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        goto fail;
    }
    do {
        sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                      (struct sockaddr *)&sa, len);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        goto fail;
    }
    close(fd);
    return true;

fail:
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                "cannot notify the service manager at NOTIFY_SOCKET '%s': %s",
                name, g_strerror(errno));
    if (fd >= 0) {
        close(fd);
    }
    return false;
}
