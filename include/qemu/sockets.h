/*
 * Sockets and full-length I/O: unix and TCP listen/connect, reads and
 * writes that finish what they start, and SCM_RIGHTS descriptor passing.
 * One copy of each for every server and client in the tree.
 */
#ifndef QEMU_SOCKETS_H
#define QEMU_SOCKETS_H

#include "qemu/osdep.h"

typedef enum QemuSocketKind {
    QEMU_SOCKET_UNIX,
    QEMU_SOCKET_TCP,
} QemuSocketKind;

typedef struct QemuSocketAddr {
    QemuSocketKind kind;
    char *path;     /* unix */
    char *host;     /* tcp; never empty after qemu_socket_parse_tcp */
    char *port;     /* tcp */
    /*
     * How errors name the socket, as its users know it ("qtest socket
     * '/run/q.sock'"); NULL for "unix:PATH" or "tcp:HOST:PORT".
     */
    char *name;
} QemuSocketAddr;

/* The longest unix socket path, without its terminating NUL. */
size_t qemu_socket_unix_path_max(void);
/* Fails with "socket path 'PATH' is too long for a unix socket". */
bool qemu_socket_check_unix_path(const char *path, GError **errp);

/* Pure: "unix:PATH" or "tcp:HOST:PORT" ("tcp:[V6]:PORT"; no host: localhost). */
bool qemu_socket_parse(const char *str, QemuSocketAddr *addr, GError **errp);
/* Pure: "HOST:PORT" or "[V6]:PORT" (the text after "tcp:"). */
bool qemu_socket_parse_tcp(const char *hostport, QemuSocketAddr *addr,
                           GError **errp);
void qemu_socket_addr_clear(QemuSocketAddr *addr);
/* @addr's name in error messages (see QemuSocketAddr.name); g_free it. */
char *qemu_socket_addr_name(const QemuSocketAddr *addr);

/*
 * A listening socket (close-on-exec), or -1 with "cannot listen on NAME:
 * REASON". A stale unix socket at the path is replaced, as in QEMU; any
 * other file there is kept and makes listening fail.
 */
int qemu_socket_listen(const QemuSocketAddr *addr, int backlog, GError **errp);
/* A connected socket, or -1 with "cannot connect to NAME: REASON". */
int qemu_socket_connect(const QemuSocketAddr *addr, GError **errp);
/* Shorthands for a unix path; errors name it "unix:PATH". */
int qemu_unix_listen(const char *path, int backlog, GError **errp);
int qemu_unix_connect(const char *path, GError **errp);
/* One client (close-on-exec), retrying EINTR; -1 with errno set otherwise. */
int qemu_socket_accept(int listen_fd);
/*
 * Whether an accept() failure with @err will repeat while the listening
 * socket stays readable (no file descriptors or memory left): the caller
 * stops watching it for QEMU_SOCKET_ACCEPT_BACKOFF_MS instead of spinning.
 */
bool qemu_socket_accept_should_back_off(int err);
#define QEMU_SOCKET_ACCEPT_BACKOFF_MS 200
/*
 * For a listening watch's callback after qemu_socket_accept failed: when
 * the failure calls for a back-off, schedules @retry in
 * QEMU_SOCKET_ACCEPT_BACKOFF_MS with its source id in *@watch (the timer
 * takes the watch's place, and its removal at exit) and returns true: the
 * callback then returns G_SOURCE_REMOVE. False: keep the watch.
 */
bool qemu_socket_accept_back_off(guint *watch, GSourceFunc retry, gpointer opaque);

/*
 * Blocking transfers of @count bytes that retry EINTR and short transfers,
 * as QEMU's. qemu_write_full returns @count, or fewer with errno set on
 * error; a write to a socket raises no SIGPIPE. qemu_read_full returns
 * @count, fewer at end of file, or -1 with errno set on error.
 */
ssize_t qemu_write_full(int fd, const void *buf, size_t count);
ssize_t qemu_read_full(int fd, void *buf, size_t count);
/*
 * As qemu_read_full, but waits at most @timeout_ms (< 0: forever) for each
 * piece of data; -1 with errno ETIMEDOUT when none came in time.
 */
ssize_t qemu_read_full_timeout(int fd, void *buf, size_t count, int timeout_ms);

/*
 * Sends @len (>= 1) bytes on the unix socket @sock with descriptor @fd
 * attached (SCM_RIGHTS); -1 with @errp set.
 */
int qemu_socket_send_fd(int sock, const void *buf, size_t len, int fd,
                        GError **errp);
/*
 * Receives up to @len bytes; a descriptor that came with them lands in
 * *@fd (close-on-exec), else *@fd is -1. Returns the bytes received (0 at
 * end of file), -1 with @errp set. More than one descriptor is refused and
 * all of them are closed.
 */
ssize_t qemu_socket_recv_fd(int sock, void *buf, size_t len, int *fd,
                            GError **errp);

#endif
