/*
 * Migration channels (docs/migration.md §1): URI parsing and the blocking
 * socket and file I/O that runs on the migration threads.
 */
#include "qemu/osdep.h"

#include "migration/channel.h"
#include "qemu/sockets.h"

static bool parse_tcp(const char *rest, MigUri *out, GError **errp)
{
    QemuSocketAddr addr;

    if (!qemu_socket_parse_tcp(rest, &addr, NULL)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration URI 'tcp:%s' is not tcp:HOST:PORT", rest);
        return false;
    }
    out->host = g_steal_pointer(&addr.host);
    out->port = g_steal_pointer(&addr.port);
    return true;
}

bool mig_uri_parse(const char *uri, MigUri *out, GError **errp)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (!uri) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID, "missing migration URI");
        return false;
    }
    if (!strcmp(uri, "defer")) {
        out->kind = MIG_URI_DEFER;
        return true;
    }
    if (g_str_has_prefix(uri, "unix:") && uri[5]) {
        if (!qemu_socket_check_unix_path(uri + 5, NULL)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration URI '%s': socket path too long", uri);
            return false;
        }
        out->kind = MIG_URI_UNIX;
        out->path = g_strdup(uri + 5);
        return true;
    }
    if (g_str_has_prefix(uri, "file:") && uri[5]) {
        out->kind = MIG_URI_FILE;
        out->path = g_strdup(uri + 5);
        return true;
    }
    if (g_str_has_prefix(uri, "tcp:")) {
        out->kind = MIG_URI_TCP;
        return parse_tcp(uri + 4, out, errp);
    }
    if (g_str_has_prefix(uri, "fd:")) {
        char *end;
        long v;

        errno = 0;
        v = strtol(uri + 3, &end, 10);
        if (!uri[3] || *end || errno || v < 0 || v > INT_MAX) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration URI '%s': not a file descriptor number", uri);
            return false;
        }
        out->kind = MIG_URI_FD;
        out->fd = (int)v;
        return true;
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "migration URI '%s' is not unix:PATH, tcp:HOST:PORT, fd:N, "
                "file:PATH or defer",
                uri);
    return false;
}

void mig_uri_clear(MigUri *u)
{
    g_clear_pointer(&u->path, g_free);
    g_clear_pointer(&u->host, g_free);
    g_clear_pointer(&u->port, g_free);
}

bool mig_uri_has_return_path(const MigUri *u)
{
    return u->kind == MIG_URI_UNIX || u->kind == MIG_URI_TCP || u->kind == MIG_URI_FD;
}

/* A connected or listening socket for unix: and tcp: URIs. */
static int mig_socket(const MigUri *u, bool listen_side, GError **errp)
{
    QemuSocketAddr addr = {
        .kind = u->kind == MIG_URI_UNIX ? QEMU_SOCKET_UNIX : QEMU_SOCKET_TCP,
        .path = u->path,
        .host = u->host,
        .port = u->port,
    };
    int fd = listen_side ? qemu_socket_listen(&addr, 1, errp)
                         : qemu_socket_connect(&addr, errp);

    if (fd < 0) {
        g_prefix_error(errp, "migration: ");
    }
    return fd;
}

/* Is the regular file behind @fd also open on another descriptor of ours? */
static bool open_elsewhere(int fd)
{
    struct stat st, o;
    const char *name;
    bool found = false;
    GDir *d;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        return false;
    }
    d = g_dir_open("/proc/self/fd", 0, NULL);
    if (!d) {
        return false;
    }
    while (!found && (name = g_dir_read_name(d))) {
        int other = atoi(name);

        found = other != fd && fstat(other, &o) == 0 && S_ISREG(o.st_mode) &&
                o.st_dev == st.st_dev && o.st_ino == st.st_ino;
    }
    g_dir_close(d);
    return found;
}

/*
 * fd:N must be a descriptor qtpm inherited. Every descriptor qtpm opens
 * itself is close-on-exec (the image among them), and an inherited one
 * cannot be: refusing those keeps the stream from landing on the image.
 */
static int inherited_fd(int fd, GError **errp)
{
    int flags = fcntl(fd, F_GETFD);

    if (flags < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: fd:%d is not an open file descriptor", fd);
        return -1;
    }
    if (flags & FD_CLOEXEC) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: fd:%d is one of qtpm's own descriptors, not an "
                    "inherited one", fd);
        return -1;
    }
    return fd;
}

int mig_channel_connect(const MigUri *u, GError **errp)
{
    int fd;

    switch (u->kind) {
    case MIG_URI_UNIX:
    case MIG_URI_TCP:
        return mig_socket(u, false, errp);
    case MIG_URI_FD:
        return inherited_fd(u->fd, errp);
    case MIG_URI_FILE:
        /* Truncated only once it is known not to be a file qtpm has open. */
        fd = open(u->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "migration: cannot create '%s': %s", u->path, g_strerror(errno));
            return -1;
        }
        if (open_elsewhere(fd)) {
            close(fd);
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "migration: '%s' is a file qtpm has open (its image?); "
                        "refusing to overwrite it", u->path);
            return -1;
        }
        if (ftruncate(fd, 0) < 0) {
            int e = errno;
            close(fd);
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "migration: cannot truncate '%s': %s", u->path, g_strerror(e));
            return -1;
        }
        return fd;
    case MIG_URI_DEFER:
        break;
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "migration: 'defer' is only valid for -incoming");
    return -1;
}

int mig_channel_listen(const MigUri *u, bool *listening, GError **errp)
{
    int fd;

    *listening = false;
    switch (u->kind) {
    case MIG_URI_UNIX:
    case MIG_URI_TCP:
        fd = mig_socket(u, true, errp);
        *listening = fd >= 0;
        return fd;
    case MIG_URI_FD:
        return inherited_fd(u->fd, errp);
    case MIG_URI_FILE:
        fd = open(u->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "migration: cannot open '%s': %s", u->path, g_strerror(errno));
        }
        return fd;
    case MIG_URI_DEFER:
        break;
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "migration: cannot listen on 'defer'");
    return -1;
}

int mig_channel_accept(int lfd, GError **errp)
{
    int fd = qemu_socket_accept(lfd);

    if (fd < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: accept failed: %s",
                    g_strerror(errno));
    }
    close(lfd);
    return fd;
}

int mig_write_full(int fd, const void *buf, size_t len, GError **errp)
{
    if (qemu_write_full(fd, buf, len) != (ssize_t)len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: write failed: %s",
                    g_strerror(errno));
        return -1;
    }
    return 0;
}

ssize_t mig_read_full(int fd, void *buf, size_t len, int timeout_ms, GError **errp)
{
    ssize_t done = qemu_read_full_timeout(fd, buf, len, timeout_ms);

    if (done < 0 && errno == ETIMEDOUT) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: no data for %d ms",
                    timeout_ms);
        return -1;
    }
    if (done < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: read failed: %s",
                    g_strerror(errno));
        return -1;
    }
    if (done > 0 && (size_t)done < len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "migration: the stream ended after %zd of %zu bytes", done, len);
        return -1;
    }
    return done;
}
