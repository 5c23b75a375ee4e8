/*
 * Migration channels (docs/migration.md §1): URI parsing and the blocking
 * socket and file I/O that runs on the migration threads.
 */
#include "qemu/osdep.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "migration/channel.h"

static bool parse_tcp(const char *rest, MigUri *out, GError **errp)
{
    const char *colon;

    if (rest[0] == '[') {
        const char *end = strchr(rest, ']');
        if (!end || end[1] != ':') {
            goto bad;
        }
        out->host = g_strndup(rest + 1, end - rest - 1);
        colon = end + 1;
    } else {
        colon = strrchr(rest, ':');
        if (!colon) {
            goto bad;
        }
        out->host = g_strndup(rest, colon - rest);
    }
    if (!colon[1]) {
        goto bad;
    }
    for (const char *p = colon + 1; *p; p++) {
        if (!g_ascii_isdigit(*p)) {
            goto bad;
        }
    }
    out->port = g_strdup(colon + 1);
    if (!*out->host) {
        g_free(out->host);
        out->host = g_strdup("localhost");
    }
    return true;
bad:
    g_clear_pointer(&out->host, g_free);
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "migration URI 'tcp:%s' is not tcp:HOST:PORT", rest);
    return false;
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
        if (strlen(uri + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
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

static int unix_socket(const char *path, bool listen_side, GError **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int e;

    if (fd < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "migration: cannot create a socket: %s", g_strerror(errno));
        return -1;
    }
    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    if (listen_side) {
        /* A stale socket is replaced; any other file makes bind fail. */
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(path);
        }
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0) {
            return fd;
        }
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        return fd;
    }
    e = errno;
    close(fd);
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: cannot %s unix:%s: %s",
                listen_side ? "listen on" : "connect to", path, g_strerror(e));
    return -1;
}

static int tcp_socket(const MigUri *u, bool listen_side, GError **errp)
{
    struct addrinfo hints = {0}, *res = NULL;
    int fd = -1, rc, err = 0;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = listen_side ? AI_PASSIVE : 0;
    rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: cannot resolve '%s:%s': %s", u->host, u->port,
                    gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int one = 1;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (listen_side) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0) {
                break;
            }
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: cannot %s tcp:%s:%s: %s",
                    listen_side ? "listen on" : "connect to", u->host, u->port,
                    g_strerror(err));
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
        return unix_socket(u->path, false, errp);
    case MIG_URI_TCP:
        return tcp_socket(u, false, errp);
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
        fd = unix_socket(u->path, true, errp);
        *listening = fd >= 0;
        return fd;
    case MIG_URI_TCP:
        fd = tcp_socket(u, true, errp);
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
    int fd;

    do {
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: accept failed: %s",
                    g_strerror(errno));
    }
    close(lfd);
    return fd;
}

int mig_write_full(int fd, const void *buf, size_t len, GError **errp)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK) {
            n = write(fd, p, len);
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: write failed: %s",
                        g_strerror(errno));
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}

ssize_t mig_read_full(int fd, void *buf, size_t len, int timeout_ms, GError **errp)
{
    uint8_t *p = buf;
    size_t done = 0;
    gint64 deadline =
        timeout_ms < 0 ? -1 : g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (done < len) {
        ssize_t n;

        if (deadline >= 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            gint64 left = (deadline - g_get_monotonic_time()) / 1000;
            int rc;

            if (left < 0) {
                left = 0;
            }
            rc = poll(&pfd, 1, (int)left);
            if (rc < 0 && errno == EINTR) {
                continue;
            }
            if (rc == 0) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                            "migration: no data for %d ms", timeout_ms);
                return -1;
            }
        }
        n = read(fd, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "migration: read failed: %s",
                        g_strerror(errno));
            return -1;
        }
        if (n == 0) {
            if (done == 0) {
                return 0;
            }
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "migration: the stream ended after %zu of %zu bytes", done, len);
            return -1;
        }
        done += n;
    }
    return (ssize_t)len;
}
