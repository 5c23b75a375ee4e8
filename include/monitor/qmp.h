/*
 * QMP server (QEMU Machine Protocol) over a unix socket; json-glib.
 * Commands: docs/qmp.md.
 */
#ifndef MONITOR_QMP_H
#define MONITOR_QMP_H

#include "qemu/osdep.h"

/* @spec: "unix:PATH,server=on,wait=off". */
int qmp_server_start(const char *spec, GError **errp);
void qmp_server_stop(void);
/* Sends {"event": NAME, "data": DATA_JSON or {}, "timestamp": ...} to every client. */
void qmp_send_event(const char *name, const char *data_json);

/*
 * Registers a command. @handler gets the "arguments" object as a JSON string
 * (or "{}") and returns a JSON value string for "return", or NULL with
 * @errp set (the error's message becomes "desc"; class GenericError unless
 * the code is QTPM_ERROR_NOT_FOUND → CommandNotFound).
 */
typedef char *(*QmpCommandHandler)(const char *args_json, GError **errp);
void qmp_register_command(const char *name, QmpCommandHandler handler);

#endif
