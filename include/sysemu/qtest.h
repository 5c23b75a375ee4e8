/*
 * qtest server: QEMU's line protocol over a unix socket or stdio.
 * Supported commands: docs/qtest.md.
 */
#ifndef SYSEMU_QTEST_H
#define SYSEMU_QTEST_H

#include "qemu/osdep.h"
#include "qemu/option.h"

/*
 * @spec: "unix:PATH[,server=on][,wait=off]" or "stdio"; qtpm listens on
 * PATH whether or not server=on is given. wait=on (the default, as in
 * QEMU) blocks until the first client connects. Adds sources to the
 * default main context.
 */
int qtest_server_start(const char *spec, GError **errp);
/* The keys of -qtest unix:PATH: server, wait. */
extern const QemuOptDesc qtest_opts[];
/* Checks @spec's syntax and path length, without creating anything. */
bool qtest_check_spec(const char *spec, GError **errp);
void qtest_server_stop(void);

/*
 * Called on the main loop when the stdio client's stdin reaches end of
 * file (a socket client that leaves just makes room for the next one).
 */
void qtest_server_set_close_handler(void (*fn)(void *opaque), void *opaque);

/*
 * Pure line handler (for fuzzing and unit tests): handles one line without
 * its newline; appends the reply line(s), each ending in "\n", to @reply.
 */
void qtest_process_line(const char *line, GString *reply);

#endif
