/*
 * qtest server: QEMU's line protocol over a unix socket or stdio.
 * Supported commands: docs/qtest.md.
 */
#ifndef SYSEMU_QTEST_H
#define SYSEMU_QTEST_H

#include "qemu/osdep.h"

/* @spec: "unix:PATH[,server=on][,wait=off]" or "stdio". Adds sources to the default main context. */
int qtest_server_start(const char *spec, GError **errp);
void qtest_server_stop(void);

/*
 * Pure line handler (for fuzzing and unit tests): handles one line without
 * its newline; appends the reply line(s), each ending in "\n", to @reply.
 */
void qtest_process_line(const char *line, GString *reply);

#endif
