/*
 * Sockets and full-length I/O (include/qemu/sockets.h).
 */
#include "qemu/osdep.h"
#include "qemu/sockets.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

size_t qemu_socket_unix_path_max(void)
{
    return sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
}

bool qemu_socket_check_unix_path(const char *path, GError **errp)
{
    if (strlen(path) > qemu_socket_unix_path_max()) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "socket path '%s' is too long for a unix socket", path);
        return false;
    }
    return true;
}

bool qemu_socket_parse_tcp(const char *hostport, QemuSocketAddr *addr,
                           GError **errp)
{
    g_autofree char *host = NULL;
    const char *colon;

    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');

        if (!end || end[1] != ':') {
            goto bad;
        }
        host = g_strndup(hostport + 1, end - hostport - 1);
        colon = end + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon) {
            goto bad;
        }
        host = g_strndup(hostport, colon - hostport);
    }
    if (!colon[1]) {
        goto bad;
    }
    for (const char *p = colon + 1; *p; p++) {
        if (!g_ascii_isdigit(*p)) {
            goto bad;
        }
    }
    memset(addr, 0, sizeof(*addr));
    addr->kind = QEMU_SOCKET_TCP;
    addr->host = *host ? g_steal_pointer(&host) : g_strdup("localhost");
    addr->port = g_strdup(colon + 1);
    return true;
bad:
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "'%s' is not HOST:PORT", hostport);
    return false;
}

bool qemu_socket_parse(const char *str, QemuSocketAddr *addr, GError **errp)
{
    if (g_str_has_prefix(str, "unix:") && str[5]) {
        if (!qemu_socket_check_unix_path(str + 5, errp)) {
            return false;
        }
        memset(addr, 0, sizeof(*addr));
        addr->kind = QEMU_SOCKET_UNIX;
        addr->path = g_strdup(str + 5);
        return true;
    }
    if (g_str_has_prefix(str, "tcp:")) {
        return qemu_socket_parse_tcp(str + 4, addr, errp);
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "'%s' is not unix:PATH or tcp:HOST:PORT", str);
    return false;
}

void qemu_socket_addr_clear(QemuSocketAddr *addr)
{
    g_clear_pointer(&addr->path, g_free);
    g_clear_pointer(&addr->host, g_free);
    g_clear_pointer(&addr->port, g_free);
    g_clear_pointer(&addr->name, g_free);
}

char *qemu_socket_addr_name(const QemuSocketAddr *addr)
{
    if (addr->name) {
        return g_strdup(addr->name);
    }
    if (addr->kind == QEMU_SOCKET_UNIX) {
        return g_strdup_printf("unix:%s", addr->path);
    }
    return g_strdup_printf("tcp:%s:%s", addr->host, addr->port);
}

static void socket_error(const QemuSocketAddr *addr, const char *verb, int err,
                         GError **errp)
{
    g_autofree char *name = qemu_socket_addr_name(addr);

    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "cannot %s %s: %s", verb, name,
                g_strerror(err));
}

/*
 * Binds @fd to @path and listens, so that @path appears only once it
 * accepts connections: a client that waits for the file (a test, libvirt
 * with an external TPM) must not meet a socket that refuses it. The socket
 * is bound under a temporary name beside @path, then linked to @path, which
 * (unlike a rename) never replaces a file that is there; a path too long for
 * that is bound directly.
 */
static int unix_bind_listen(int fd, const char *path, int backlog)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    g_autofree char *tmp = g_strdup_printf("%s.%ld.tmp", path, (long)getpid());
    int err;

    if (strlen(tmp) >= sizeof(sa.sun_path)) {
        strcpy(sa.sun_path, path);
        return bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? listen(fd, backlog) : -1;
    }
    strcpy(sa.sun_path, tmp);
    unlink(tmp);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        return -1;
    }
    err = listen(fd, backlog) == 0 && link(tmp, path) == 0 ? 0 : errno;
    unlink(tmp);
    errno = err;
    return err ? -1 : 0;
}

static int unix_socket(const QemuSocketAddr *addr, bool listen_side, int backlog,
                       GError **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, err;

    if (!qemu_socket_check_unix_path(addr->path, errp)) {
        return -1;
    }
    strcpy(sa.sun_path, addr->path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "cannot create a socket: %s", g_strerror(errno));
        return -1;
    }
    if (listen_side) {
        /* Left over by a process that died; it would make bind fail. */
        if (lstat(addr->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(addr->path);
        }
        if (unix_bind_listen(fd, addr->path, backlog) == 0) {
            return fd;
        }
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        return fd;
    }
    err = errno;
    close(fd);
    socket_error(addr, listen_side ? "listen on" : "connect to", err, errp);
    return -1;
}

static int tcp_socket(const QemuSocketAddr *addr, bool listen_side, int backlog,
                      GError **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = listen_side ? AI_PASSIVE : 0,
    };
    struct addrinfo *res = NULL;
    int fd = -1, rc, err = 0;

    rc = getaddrinfo(addr->host, addr->port, &hints, &res);
    if (rc != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "cannot resolve '%s:%s': %s", addr->host, addr->port,
                    gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int one = 1;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (listen_side) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
                listen(fd, backlog) == 0) {
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
        socket_error(addr, listen_side ? "listen on" : "connect to", err, errp);
    }
    return fd;
}

int qemu_socket_listen(const QemuSocketAddr *addr, int backlog, GError **errp)
{
    if (addr->kind == QEMU_SOCKET_UNIX) {
        return unix_socket(addr, true, backlog, errp);
    }
    return tcp_socket(addr, true, backlog, errp);
}

int qemu_socket_connect(const QemuSocketAddr *addr, GError **errp)
{
    if (addr->kind == QEMU_SOCKET_UNIX) {
        return unix_socket(addr, false, 0, errp);
    }
    return tcp_socket(addr, false, 0, errp);
}

int qemu_unix_listen(const char *path, int backlog, GError **errp)
{
    QemuSocketAddr addr = { .kind = QEMU_SOCKET_UNIX, .path = (char *)path };

    return unix_socket(&addr, true, backlog, errp);
}

int qemu_unix_connect(const char *path, GError **errp)
{
    QemuSocketAddr addr = { .kind = QEMU_SOCKET_UNIX, .path = (char *)path };

    return unix_socket(&addr, false, 0, errp);
}

int qemu_socket_accept(int listen_fd)
{
    int fd;

    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

bool qemu_socket_accept_back_off(guint *watch, GSourceFunc retry, gpointer opaque)
{
    if (!qemu_socket_accept_should_back_off(errno)) {
        return false;
    }
    *watch = g_timeout_add(QEMU_SOCKET_ACCEPT_BACKOFF_MS, retry, opaque);
    return true;
}

bool qemu_socket_accept_should_back_off(int err)
{
    /*
     * The pending connection stays queued, so poll() reports the socket
     * readable again at once; only time (a client or another process
     * closing something) can make the next accept() succeed.
     */
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

ssize_t qemu_write_full(int fd, const void *buf, size_t count)
{
    const uint8_t *p = buf;
    size_t done = 0;
    bool is_socket = true;

    while (done < count) {
        ssize_t n = -1;

        if (is_socket) {
            n = send(fd, p + done, count - done, MSG_NOSIGNAL);
            if (n < 0 && errno == ENOTSOCK) {
                is_socket = false;
            }
        }
        if (!is_socket) {
            n = write(fd, p + done, count - done);
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        done += n;
    }
    return done;
}

static ssize_t read_full(int fd, void *buf, size_t count, int timeout_ms)
{
    uint8_t *p = buf;
    size_t done = 0;
    gint64 deadline = timeout_ms < 0 ? -1
                      : g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (done < count) {
        ssize_t n;

        if (deadline >= 0) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            gint64 left = MAX(deadline - g_get_monotonic_time(), 0) / 1000;
            int rc = poll(&pfd, 1, (int)left);

            if (rc < 0 && errno == EINTR) {
                continue;
            }
            if (rc < 0) {
                return -1;
            }
            if (rc == 0) {
                errno = ETIMEDOUT;
                return -1;
            }
        }
        n = read(fd, p + done, count - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            break;
        }
        done += n;
    }
    return done;
}

ssize_t qemu_read_full(int fd, void *buf, size_t count)
{
    return read_full(fd, buf, count, -1);
}

ssize_t qemu_read_full_timeout(int fd, void *buf, size_t count, int timeout_ms)
{
    return read_full(fd, buf, count, timeout_ms);
}

int qemu_socket_send_fd(int sock, const void *buf, size_t len, int fd,
                        GError **errp)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    struct cmsghdr *cmsg;
    ssize_t n;

    memset(&control, 0, sizeof(control));
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "cannot send a file descriptor: %s", g_strerror(errno));
        return -1;
    }
    /* The descriptor went with the first byte; the rest is plain data. */
    if ((size_t)n < len &&
        qemu_write_full(sock, (const uint8_t *)buf + n, len - n) !=
            (ssize_t)(len - n)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "cannot send a file descriptor: %s", g_strerror(errno));
        return -1;
    }
    return 0;
}

/* Closes every descriptor in @msg's SCM_RIGHTS messages; returns how many. */
static int close_received_fds(struct msghdr *msg, int *first)
{
    int count = 0;

    *first = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        size_t n;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (count++ == 0) {
                *first = fd;
            } else {
                close(fd);
            }
        }
    }
    return count;
}

ssize_t qemu_socket_recv_fd(int sock, void *buf, size_t len, int *fd,
                            GError **errp)
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    ssize_t n;
    int count;

    *fd = -1;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "cannot receive a message: %s", g_strerror(errno));
        return -1;
    }
    count = close_received_fds(&msg, fd);
    if (count > 1 || (msg.msg_flags & MSG_CTRUNC)) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "a message carried more than one file descriptor");
        return -1;
    }
    return n;
}
