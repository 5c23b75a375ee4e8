/*
 * Migration channels: QEMU-style URIs and the blocking I/O the migration
 * threads do on them. docs/migration.md §1.
 */
#ifndef MIGRATION_CHANNEL_H
#define MIGRATION_CHANNEL_H

#include "qemu/osdep.h"

typedef enum MigUriKind {
    MIG_URI_UNIX,
    MIG_URI_TCP,
    MIG_URI_FD,
    MIG_URI_FILE,
    MIG_URI_DEFER,
} MigUriKind;

typedef struct MigUri {
    MigUriKind kind;
    char *path; /* unix, file */
    char *host; /* tcp */
    char *port; /* tcp */
    int fd;     /* fd */
} MigUri;

/* Pure: parses "unix:PATH", "tcp:HOST:PORT" ("[v6]:PORT"), "fd:N", "file:PATH", "defer".
 */
bool mig_uri_parse(const char *uri, MigUri *out, GError **errp);
void mig_uri_clear(MigUri *u);
/* Whether the channel carries the target's reply (sockets and fds). */
bool mig_uri_has_return_path(const MigUri *u);

/* Source: a connected socket, the inherited fd, or a new file. */
int mig_channel_connect(const MigUri *u, GError **errp);
/*
 * Target: for unix/tcp a listening socket (@listening true), for fd the fd,
 * for file the opened file (@listening false).
 */
int mig_channel_listen(const MigUri *u, bool *listening, GError **errp);
/* Blocks until a client connects; closes @lfd. */
int mig_channel_accept(int lfd, GError **errp);

/* Blocking writes and reads of exactly @len bytes; EINTR is retried. */
int mig_write_full(int fd, const void *buf, size_t len, GError **errp);
/*
 * Returns len on success, 0 on EOF before the first byte, -1 on error or EOF
 * after some bytes (errp names it). @timeout_ms < 0 waits forever.
 */
ssize_t mig_read_full(int fd, void *buf, size_t len, int timeout_ms, GError **errp);

#endif
