/*
 * QMP server (QEMU Machine Protocol) over a unix socket; json-glib.
 * Commands: docs/qmp.md. The monitor is the protocol and its dispatch
 * only: commands are registered by the modules that own them, and events
 * reach it through the event sink (qemu/event-sink.h).
 */
#ifndef MONITOR_QMP_H
#define MONITOR_QMP_H

#include "qemu/osdep.h"
#include "qemu/option.h"

/*
 * @spec: "unix:PATH[,server=on][,wait=off]". With wait=on it returns once
 * the first client connected, or once @cancelled (may be NULL) returns
 * true; it is asked after each main-loop iteration. From here on events
 * emitted through the event sink reach the clients.
 */
int qmp_server_start(const char *spec, bool (*cancelled)(void), GError **errp);
/* -qmp's keys: unix:PATH (implied), server, wait. */
extern const QemuOptDesc qmp_opts[];
/* Checks @spec (syntax, path length, folder) without creating anything. */
bool qmp_check_spec(const char *spec, GError **errp);
void qmp_server_stop(void);
/*
 * Sends {"timestamp": ..., "event": NAME, "data": DATA_JSON} to every client
 * past capabilities negotiation; no "data" member when @data_json is NULL.
 */
void qmp_send_event(const char *name, const char *data_json);

/*
 * Registers a command. @handler gets the "arguments" object as a JSON string
 * (or "{}") and returns a JSON value string for "return", or NULL with
 * @errp set (the error's message becomes "desc"; class GenericError unless
 * the code is QTPM_ERROR_NOT_FOUND → CommandNotFound).
 */
typedef char *(*QmpCommandHandler)(const char *args_json, GError **errp);
void qmp_register_command(const char *name, QmpCommandHandler handler);
void qmp_unregister_command(const char *name);
/* The registered command names, sorted; free the list (not the names). */
GList *qmp_command_names(void);

/* Fails with "Parameter 'X' is unexpected" unless @args_json is {} or empty. */
bool qmp_args_check_none(const char *args_json, GError **errp);

/* Registers the protocol's own commands (query-version, query-commands); idempotent. */
void qmp_init_commands(void);

/*
 * JSON framing, a pure parser over untrusted bytes (docs/qmp.md
 * "Framing"): splits a byte stream into top-level JSON texts by counting
 * brackets outside strings. @cb gets each complete text, or @error (and
 * no text) for input that cannot be a JSON text: a stray closing bracket,
 * a text over QMP_MAX_MESSAGE bytes, nesting over QMP_MAX_DEPTH.
 */
#define QMP_MAX_MESSAGE (1024 * 1024)
#define QMP_MAX_DEPTH 1024
typedef void (*QmpMessageFunc)(const char *json, size_t len,
                               const char *error, void *opaque);
typedef struct QmpStreamParser QmpStreamParser;
QmpStreamParser *qmp_stream_parser_new(QmpMessageFunc cb, void *opaque);
void qmp_stream_parser_feed(QmpStreamParser *p, const char *data, size_t len);
/* End of input: a pending scalar text is delivered. */
void qmp_stream_parser_flush(QmpStreamParser *p);
void qmp_stream_parser_free(QmpStreamParser *p);

/*
 * One QMP session's command handling, without I/O (for tests and fuzzing).
 * qmp_session_dispatch returns the reply (one JSON object, no newline),
 * g_malloc'ed. @error is a framing error from the stream parser (@json is
 * then ignored).
 */
typedef struct QmpSession QmpSession;
QmpSession *qmp_session_new(void);
void qmp_session_free(QmpSession *s);
bool qmp_session_negotiated(QmpSession *s);
char *qmp_session_dispatch(QmpSession *s, const char *json, size_t len,
                           const char *error);
/* query-version's value, also the greeting's "version". */
char *qmp_version_info(void);
/* The greeting sent to every new client. */
char *qmp_greeting(void);
/* Builds an event line (no newline) with the current time. */
char *qmp_build_event(const char *name, const char *data_json);

#endif
