/*
 * QMP server: QEMU's machine protocol over a unix socket, on the GLib main
 * loop. Framing and dispatch are pure functions over buffers (fuzzable);
 * the socket code only moves bytes. Protocol subset: docs/qmp.md.
 */
#include "qemu/osdep.h"
#include "monitor/qmp.h"
#include "qemu/error-report.h"
#include "qemu/event-sink.h"
#include "qemu/log.h"
#include "qemu/option.h"
#include "qemu/sockets.h"

#include <gio/gio.h>
#include <sys/socket.h>
#include <json-glib/json-glib.h>

/* ---- framing ----------------------------------------------------------- */

struct QmpStreamParser {
    QmpMessageFunc cb;
    void *opaque;
    GString *buf;
    int depth;
    bool in_string;
    bool escape;
    bool scalar;      /* a top-level text that is not an object or array */
    bool overflow;    /* the current text was too large: drop it */
};

QmpStreamParser *qmp_stream_parser_new(QmpMessageFunc cb, void *opaque)
{
    QmpStreamParser *p = g_new0(QmpStreamParser, 1);

    p->cb = cb;
    p->opaque = opaque;
    p->buf = g_string_new(NULL);
    return p;
}

void qmp_stream_parser_free(QmpStreamParser *p)
{
    if (p) {
        g_string_free(p->buf, TRUE);
        g_free(p);
    }
}

static void parser_reset(QmpStreamParser *p)
{
    g_string_truncate(p->buf, 0);
    p->depth = 0;
    p->in_string = false;
    p->escape = false;
    p->scalar = false;
    p->overflow = false;
}

static void parser_emit(QmpStreamParser *p)
{
    g_autofree char *text = g_strndup(p->buf->str, p->buf->len);
    size_t len = p->buf->len;

    parser_reset(p);
    p->cb(text, len, NULL, p->opaque);
}

static void parser_error(QmpStreamParser *p, const char *msg)
{
    parser_reset(p);
    p->cb(NULL, 0, msg, p->opaque);
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* One byte while inside a text: strings, nesting, the end of the text. */
static void parser_feed_inside(QmpStreamParser *p, char c)
{
    if (p->in_string) {
        if (p->escape) {
            p->escape = false;
        } else if (c == '\\') {
            p->escape = true;
        } else if (c == '"') {
            p->in_string = false;
        }
        return;
    }
    switch (c) {
    case '"':
        p->in_string = true;
        break;
    case '{':
    case '[':
        if (!p->scalar && ++p->depth > QMP_MAX_DEPTH) {
            parser_error(p, "JSON parse error, nesting too deep");
            p->overflow = true;
        }
        break;
    case '}':
    case ']':
        if (!p->scalar && --p->depth == 0) {
            parser_emit(p);
        }
        break;
    default:
        break;
    }
}

void qmp_stream_parser_feed(QmpStreamParser *p, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];

        if (p->overflow) {
            /* Skip the rest of an oversized text up to a line end. */
            p->overflow = c != '\n';
            continue;
        }
        if (p->buf->len == 0) {
            /* Between texts. */
            if (is_json_space(c)) {
                continue;
            }
            if (c == '}' || c == ']') {
                parser_error(p, "JSON parse error, unexpected closing bracket");
                continue;
            }
            p->scalar = c != '{' && c != '[';
        } else if (p->scalar && !p->in_string &&
                   (is_json_space(c) || c == '{' || c == '[')) {
            /* A scalar text ends where whitespace or a new text starts. */
            parser_emit(p);
            i--;
            continue;
        }
        if (p->buf->len >= QMP_MAX_MESSAGE) {
            parser_error(p, "JSON parse error, message too large");
            p->overflow = c != '\n';
            continue;
        }
        g_string_append_c(p->buf, c);
        parser_feed_inside(p, c);
    }
}

void qmp_stream_parser_flush(QmpStreamParser *p)
{
    if (p->buf->len && p->scalar && !p->in_string) {
        parser_emit(p);
    }
}

/* ---- commands and dispatch --------------------------------------------- */

static GHashTable *qmp_commands;   /* name -> QmpCommandHandler */

void qmp_register_command(const char *name, QmpCommandHandler handler)
{
    if (!qmp_commands) {
        qmp_commands = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             NULL);
    }
    g_hash_table_insert(qmp_commands, g_strdup(name), handler);
}

void qmp_unregister_command(const char *name)
{
    if (qmp_commands) {
        g_hash_table_remove(qmp_commands, name);
    }
}

GList *qmp_command_names(void)
{
    GList *l = qmp_commands ? g_hash_table_get_keys(qmp_commands) : NULL;

    return g_list_sort(l, (GCompareFunc)strcmp);
}

struct QmpSession {
    bool negotiated;
};

QmpSession *qmp_session_new(void)
{
    qmp_init_commands();
    return g_new0(QmpSession, 1);
}

void qmp_session_free(QmpSession *s)
{
    g_free(s);
}

bool qmp_session_negotiated(QmpSession *s)
{
    return s->negotiated;
}

static char *json_node_to_string(JsonNode *node)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();

    json_generator_set_root(gen, node);
    return json_generator_to_data(gen, NULL);
}

static char *json_quote(const char *str)
{
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_VALUE);

    json_node_set_string(node, str);
    return json_node_to_string(node);
}

static char *qmp_reply(const char *ret_json, const char *id_json)
{
    if (id_json) {
        return g_strdup_printf("{\"return\": %s, \"id\": %s}", ret_json,
                               id_json);
    }
    return g_strdup_printf("{\"return\": %s}", ret_json);
}

static char *qmp_error_reply(const char *klass, const char *desc,
                             const char *id_json)
{
    g_autofree char *d = json_quote(desc);

    if (id_json) {
        return g_strdup_printf("{\"error\": {\"class\": \"%s\", \"desc\": %s}, "
                               "\"id\": %s}", klass, d, id_json);
    }
    return g_strdup_printf("{\"error\": {\"class\": \"%s\", \"desc\": %s}}",
                           klass, d);
}

bool qmp_args_check_none(const char *args_json, GError **errp)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;
    GList *members;

    if (!args_json || !*args_json) {
        return true;
    }
    if (!json_parser_load_from_data(parser, args_json, -1, NULL) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "Invalid parameter type, expected: object");
        return false;
    }
    obj = json_node_get_object(json_parser_get_root(parser));
    members = json_object_get_members(obj);
    if (members) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "Parameter '%s' is unexpected", (char *)members->data);
        g_list_free(members);
        return false;
    }
    return true;
}

/* Checks the members of a command object as QEMU does. */
static bool qmp_check_input(JsonObject *obj, const char **command,
                            const char **error)
{
    g_autoptr(GList) members = json_object_get_members(obj);
    JsonNode *exec = json_object_get_member(obj, "execute");
    JsonNode *args = json_object_get_member(obj, "arguments");

    for (GList *l = members; l; l = l->next) {
        const char *m = l->data;
        if (strcmp(m, "execute") && strcmp(m, "arguments") &&
            strcmp(m, "id")) {
            *error = m;
            return false;
        }
    }
    if (!exec) {
        *error = NULL;
        *command = NULL;
        return false;
    }
    if (!JSON_NODE_HOLDS_VALUE(exec) ||
        json_node_get_value_type(exec) != G_TYPE_STRING) {
        *error = "execute";
        *command = "";
        return false;
    }
    if (args && !JSON_NODE_HOLDS_OBJECT(args)) {
        *error = "arguments";
        *command = "";
        return false;
    }
    *command = json_node_get_string(exec);
    return true;
}

static char *qmp_run_command(QmpSession *s, const char *name,
                             JsonNode *args, const char *id_json)
{
    QmpCommandHandler handler;
    g_autofree char *args_json = NULL;
    g_autofree char *ret = NULL;
    g_autoptr(GError) err = NULL;

    if (!strcmp(name, "qmp_capabilities")) {
        if (s->negotiated) {
            return qmp_error_reply("CommandNotFound",
                                   "Capabilities negotiation is already "
                                   "complete, command ignored", id_json);
        }
        if (args && json_object_get_size(json_node_get_object(args)) > 0) {
            g_autoptr(GList) m =
                json_object_get_members(json_node_get_object(args));
            g_autofree char *desc =
                g_strdup_printf("Parameter '%s' is unexpected",
                                (char *)m->data);
            return qmp_error_reply("GenericError", desc, id_json);
        }
        s->negotiated = true;
        return qmp_reply("{}", id_json);
    }
    if (!s->negotiated) {
        return qmp_error_reply("CommandNotFound",
                               "Expecting capabilities negotiation with "
                               "'qmp_capabilities'", id_json);
    }
    handler = qmp_commands ? g_hash_table_lookup(qmp_commands, name) : NULL;
    if (!handler) {
        g_autofree char *desc =
            g_strdup_printf("The command %s has not been found", name);
        return qmp_error_reply("CommandNotFound", desc, id_json);
    }
    args_json = args ? json_node_to_string(args) : g_strdup("{}");
    ret = handler(args_json, &err);
    if (!ret) {
        const char *klass = "GenericError";
        if (err && g_error_matches(err, QTPM_ERROR, QTPM_ERROR_NOT_FOUND)) {
            klass = "CommandNotFound";
        }
        return qmp_error_reply(klass, err ? err->message : "command failed",
                               id_json);
    }
    return qmp_reply(ret, id_json);
}

char *qmp_session_dispatch(QmpSession *s, const char *json, size_t len,
                           const char *error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *id_json = NULL;
    JsonNode *root, *args;
    JsonObject *obj;
    const char *command = NULL, *bad = NULL;

    if (error) {
        return qmp_error_reply("GenericError", error, NULL);
    }
    if (len > G_MAXSSIZE || memchr(json, '\0', len) ||
        !json_parser_load_from_data(parser, json, len, &err)) {
        g_autofree char *desc =
            g_strdup_printf("JSON parse error, %s",
                            err ? err->message : "invalid input");
        return qmp_error_reply("GenericError", desc, NULL);
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        return qmp_error_reply("GenericError",
                               "QMP input must be a JSON object", NULL);
    }
    obj = json_node_get_object(root);
    if (json_object_has_member(obj, "id")) {
        id_json = json_node_to_string(json_object_get_member(obj, "id"));
    }
    if (!qmp_check_input(obj, &command, &bad)) {
        g_autofree char *desc = NULL;
        if (!command && !bad) {
            desc = g_strdup("QMP input lacks member 'execute'");
        } else if (!command) {
            desc = g_strdup_printf("QMP input member '%s' is unexpected", bad);
        } else if (!strcmp(bad, "execute")) {
            desc = g_strdup("QMP input member 'execute' must be a string");
        } else {
            desc = g_strdup("QMP input member 'arguments' must be an object");
        }
        return qmp_error_reply("GenericError", desc, id_json);
    }
    args = json_object_get_member(obj, "arguments");
    return qmp_run_command(s, command, args, id_json);
}

char *qmp_version_info(void)
{
    unsigned major = 0, minor = 0, micro = 0;

    sscanf(QTPM_VERSION, "%u.%u.%u", &major, &minor, &micro);
    return g_strdup_printf("{\"qemu\": {\"micro\": %u, \"minor\": %u, "
                           "\"major\": %u}, \"package\": \"qtpm "
                           QTPM_VERSION "\"}", micro, minor, major);
}

char *qmp_greeting(void)
{
    g_autofree char *version = qmp_version_info();

    return g_strdup_printf("{\"QMP\": {\"version\": %s, \"capabilities\": "
                           "[]}}", version);
}

char *qmp_build_event(const char *name, const char *data_json)
{
    gint64 now = g_get_real_time();
    g_autofree char *n = json_quote(name);
    g_autofree char *data = data_json ? g_strdup_printf(", \"data\": %s",
                                                        data_json)
                                      : g_strdup("");

    /* As QEMU: an event without data has no "data" member. */
    return g_strdup_printf("{\"timestamp\": {\"seconds\": %" PRId64 ", "
                           "\"microseconds\": %" PRId64 "}, \"event\": %s%s}",
                           now / G_USEC_PER_SEC, now % G_USEC_PER_SEC, n,
                           data);
}

/* ---- the protocol's own commands --------------------------------------- */

static char *qmp_query_version(const char *args, GError **errp)
{
    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    return qmp_version_info();
}

static char *qmp_query_commands(const char *args, GError **errp)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(GList) names = NULL;

    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    names = qmp_command_names();
    json_builder_begin_array(b);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, "qmp_capabilities");
    json_builder_end_object(b);
    for (GList *l = names; l; l = l->next) {
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, l->data);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    root = json_builder_get_root(b);
    return json_node_to_string(root);
}

void qmp_init_commands(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    qmp_register_command("query-version", qmp_query_version);
    qmp_register_command("query-commands", qmp_query_commands);
}

/* ---- the socket server ------------------------------------------------- */

/*
 * As QEMU's monitor: a bounded number of clients at a time; further
 * connections wait in the listen backlog until one leaves.
 */
#define QMP_MAX_CLIENTS 4
/*
 * Replies and events a client has not read yet. Far above any reply
 * (query-commands is a few KiB); a client that lets this fill stopped
 * reading and is disconnected rather than allowed to hold the main loop.
 */
#define QMP_OUT_MAX (256 * 1024)

typedef struct QmpClient {
    GSocketConnection *conn;
    GSocket *sock;
    QmpSession *session;
    QmpStreamParser *parser;
    GSource *source;
    GSource *out_source;
    GByteArray *out;
    bool closing;
} QmpClient;

static GSocket *qmp_listen_socket;
static GSource *qmp_listen_source;
static guint qmp_backoff_timer;
static bool qmp_accept_failing;     /* said once until an accept succeeds */
static char *qmp_socket_path;
static GList *qmp_clients;

static void qmp_listen_watch(void);

static void qmp_client_close(QmpClient *c)
{
    qmp_clients = g_list_remove(qmp_clients, c);
    if (c->source) {
        g_source_destroy(c->source);
        g_source_unref(c->source);
    }
    if (c->out_source) {
        g_source_destroy(c->out_source);
        g_source_unref(c->out_source);
    }
    g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
    g_object_unref(c->conn);
    g_object_unref(c->sock);
    g_byte_array_unref(c->out);
    qmp_stream_parser_free(c->parser);
    qmp_session_free(c->session);
    g_free(c);
    /* A place is free: take the next waiting connection. */
    qmp_listen_watch();
}

/* Stops everything for @c; its source finds the shutdown and closes it. */
static void qmp_client_drop(QmpClient *c)
{
    c->closing = true;
    g_byte_array_set_size(c->out, 0);
    g_socket_shutdown(c->sock, TRUE, TRUE, NULL);
}

/* Writes what the socket takes now; false when the connection failed. */
static bool qmp_client_flush(QmpClient *c)
{
    while (c->out->len) {
        ssize_t n = send(g_socket_get_fd(c->sock), c->out->data, c->out->len,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n <= 0) {
            return false;
        }
        g_byte_array_remove_range(c->out, 0, n);
    }
    return true;
}

static gboolean qmp_client_writable(GSocket *sock, GIOCondition cond,
                                    gpointer opaque)
{
    QmpClient *c = opaque;

    if (!qmp_client_flush(c)) {
        qmp_client_drop(c);
    }
    if (c->out->len) {
        return G_SOURCE_CONTINUE;
    }
    g_source_unref(c->out_source);
    c->out_source = NULL;
    return G_SOURCE_REMOVE;
}

/*
 * Queues one line and writes what the socket takes, never blocking: the
 * main loop also runs the TPM and qtest.
 */
static void qmp_client_send(QmpClient *c, const char *line)
{
    size_t len = strlen(line);

    if (c->closing) {
        return;
    }
    qemu_log_mask(LOG_QMP, "qmp out: %s", line);
    if (c->out->len + len + 2 > QMP_OUT_MAX) {
        qemu_log_warning("-qmp: a client does not read its replies (%u bytes "
                         "waiting); disconnecting it", c->out->len);
        qmp_client_drop(c);
        return;
    }
    g_byte_array_append(c->out, (const guint8 *)line, len);
    g_byte_array_append(c->out, (const guint8 *)"\r\n", 2);
    if (!qmp_client_flush(c)) {
        qmp_client_drop(c);
        return;
    }
    if (c->out->len && !c->out_source) {
        c->out_source = g_socket_create_source(c->sock, G_IO_OUT, NULL);
        g_source_set_callback(c->out_source, G_SOURCE_FUNC(qmp_client_writable),
                              c, NULL);
        g_source_attach(c->out_source, NULL);
    }
}

/*
 * The events of start-up, emitted before the monitor listened (the store's
 * fallback to an older state): the first client to negotiate capabilities
 * receives them, with their own timestamps. Every other event reaches, as
 * in QEMU, the clients negotiated at that moment.
 */
static GPtrArray *qmp_early_events;
static bool qmp_any_negotiated;
static bool qmp_sink_adding;

static void qmp_early_events_flush(QmpClient *c)
{
    qmp_any_negotiated = true;
    if (qmp_early_events) {
        for (guint i = 0; i < qmp_early_events->len; i++) {
            qmp_client_send(c, g_ptr_array_index(qmp_early_events, i));
        }
        g_clear_pointer(&qmp_early_events, g_ptr_array_unref);
    }
}

static void qmp_client_message(const char *json, size_t len,
                               const char *error, void *opaque)
{
    QmpClient *c = opaque;
    g_autofree char *reply = NULL;

    if (c->closing) {
        return;
    }
    if (json) {
        qemu_log_mask(LOG_QMP, "qmp in: %.*s", (int)MIN(len, 4096), json);
    }
    reply = qmp_session_dispatch(c->session, json, len, error);
    if (reply) {
        qmp_client_send(c, reply);
    }
    if (!qmp_any_negotiated && qmp_session_negotiated(c->session)) {
        qmp_early_events_flush(c);
    }
}

static gboolean qmp_client_readable(GSocket *sock, GIOCondition cond,
                                    gpointer opaque)
{
    QmpClient *c = opaque;
    g_autoptr(GError) err = NULL;
    char buf[4096];
    gssize n;

    n = g_socket_receive(sock, buf, sizeof(buf), NULL, &err);
    if (n < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0 || c->closing) {
        if (!c->closing) {
            qmp_stream_parser_flush(c->parser);
        }
        c->source = (g_source_unref(c->source), NULL);
        qmp_client_close(c);
        return G_SOURCE_REMOVE;
    }
    qmp_stream_parser_feed(c->parser, buf, n);
    if (c->closing) {
        c->source = (g_source_unref(c->source), NULL);
        qmp_client_close(c);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void qmp_client_new(GSocket *sock)
{
    QmpClient *c = g_new0(QmpClient, 1);
    g_autofree char *greeting = qmp_greeting();

    c->sock = g_object_ref(sock);
    c->conn = g_socket_connection_factory_create_connection(sock);
    c->out = g_byte_array_new();
    c->session = qmp_session_new();
    c->parser = qmp_stream_parser_new(qmp_client_message, c);
    qmp_clients = g_list_append(qmp_clients, c);
    g_socket_set_blocking(sock, FALSE);
    qmp_client_send(c, greeting);
    c->source = g_socket_create_source(sock, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                       NULL);
    g_source_set_callback(c->source, G_SOURCE_FUNC(qmp_client_readable), c,
                          NULL);
    g_source_attach(c->source, NULL);
}

static void qmp_listen_unwatch(void)
{
    if (qmp_listen_source) {
        g_source_destroy(qmp_listen_source);
        g_source_unref(qmp_listen_source);
        qmp_listen_source = NULL;
    }
}

static gboolean qmp_backoff_done(gpointer opaque)
{
    qmp_backoff_timer = 0;
    qmp_listen_watch();
    return G_SOURCE_REMOVE;
}

static gboolean qmp_accept(GSocket *listen, GIOCondition cond, gpointer opaque)
{
    int fd = qemu_socket_accept(g_socket_get_fd(listen));
    GSocket *sock;

    if (fd < 0) {
        if (qemu_socket_accept_should_back_off(errno)) {
            /* The connection stays queued; retrying now would spin. */
            if (!qmp_accept_failing) {
                qemu_log_warning("-qmp: cannot accept a client: %s; trying "
                                 "again every %d ms", g_strerror(errno),
                                 QEMU_SOCKET_ACCEPT_BACKOFF_MS);
                qmp_accept_failing = true;
            }
            qmp_listen_unwatch();
            qmp_backoff_timer = g_timeout_add(QEMU_SOCKET_ACCEPT_BACKOFF_MS,
                                              qmp_backoff_done, NULL);
            return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
    }
    qmp_accept_failing = false;
    sock = g_socket_new_from_fd(fd, NULL);
    if (!sock) {
        close(fd);
        return G_SOURCE_CONTINUE;
    }
    qmp_client_new(sock);
    g_object_unref(sock);
    if (g_list_length(qmp_clients) >= QMP_MAX_CLIENTS) {
        qmp_listen_unwatch();
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* Watches the listening socket unless it is full or backing off. */
static void qmp_listen_watch(void)
{
    if (!qmp_listen_socket || qmp_listen_source || qmp_backoff_timer ||
        g_list_length(qmp_clients) >= QMP_MAX_CLIENTS) {
        return;
    }
    qmp_listen_source = g_socket_create_source(qmp_listen_socket, G_IO_IN,
                                               NULL);
    g_source_set_callback(qmp_listen_source, G_SOURCE_FUNC(qmp_accept), NULL,
                          NULL);
    g_source_attach(qmp_listen_source, NULL);
}

const QemuOptDesc qmp_opts[] = {
    {
        .name = "path", .type = QEMU_OPT_STRING, .implied = true,
        .value_name = "unix:PATH",
    },
    QEMU_OPT_DESC_SOCKET_SERVER,
    QEMU_OPT_DESC_END
};

/* Parses "unix:PATH[,server=on][,wait=off]". */
static char *qmp_parse_spec(const char *spec, bool *wait, GError **errp)
{
    g_autoptr(GHashTable) opts = qemu_opts_parse(spec, "path", errp);
    const char *path;
    bool server;

    if (!opts || !qemu_opts_validate(opts, qmp_opts, "-qmp", errp)) {
        return NULL;
    }
    path = qemu_opt_get(opts, "path");
    if (!path || !g_str_has_prefix(path, "unix:") || !path[5]) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is not unix:PATH (the only QMP transport)",
                    path ? path : "");
        return NULL;
    }
    if (!qemu_opt_get_bool(opts, "server", true, &server, errp) ||
        !qemu_opt_get_bool(opts, "wait", true, wait, errp)) {
        return NULL;
    }
    if (!server) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "server=off is not supported (qtpm listens for QMP "
                    "clients)");
        return NULL;
    }
    if (!qemu_socket_check_unix_path(path + 5, errp)) {
        return NULL;
    }
    /* Absolute, so that it is still found for unlink after -daemonize. */
    return g_canonicalize_filename(path + 5, NULL);
}

bool qmp_check_spec(const char *spec, GError **errp)
{
    bool wait;
    g_autofree char *path = qmp_parse_spec(spec, &wait, errp);
    g_autofree char *dir = NULL;

    if (!path) {
        return false;
    }
    dir = g_path_get_dirname(path);
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "'%s': the folder does not exist", dir);
        return false;
    }
    return true;
}

static void qmp_event_sink(const char *name, const char *data_json,
                           void *opaque)
{
    if (qmp_sink_adding) {
        /* Replayed from start-up, before anyone could connect. */
        if (!qmp_early_events) {
            qmp_early_events = g_ptr_array_new_with_free_func(g_free);
        }
        g_ptr_array_add(qmp_early_events, qmp_build_event(name, data_json));
        return;
    }
    qmp_send_event(name, data_json);
}

int qmp_server_start(const char *spec, bool (*cancelled)(void), GError **errp)
{
    QemuSocketAddr addr = { .kind = QEMU_SOCKET_UNIX };
    g_autofree char *path = NULL;
    bool wait = true;
    int fd;

    path = qmp_parse_spec(spec, &wait, errp);
    if (!path) {
        return -1;
    }
    if (qmp_listen_socket) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "only one -qmp is supported");
        return -1;
    }
    qmp_init_commands();
    addr.path = path;
    addr.name = g_strdup_printf("'%s'", path);
    /* GLib's own backlog for a GSocket. */
    fd = qemu_socket_listen(&addr, 10, errp);
    g_free(addr.name);
    if (fd < 0) {
        return -1;
    }
    qmp_listen_socket = g_socket_new_from_fd(fd, errp);
    if (!qmp_listen_socket) {
        close(fd);
        unlink(path);
        return -1;
    }
    qmp_socket_path = g_steal_pointer(&path);
    g_socket_set_blocking(qmp_listen_socket, FALSE);
    qmp_listen_watch();
    qmp_sink_adding = true;
    qemu_event_sink_add(qmp_event_sink, NULL);
    qmp_sink_adding = false;
    if (wait) {
        /*
         * As QEMU: wait=on holds start-up until the first client connects.
         * The main context runs meanwhile, so signals still end qtpm.
         */
        error_report("-qmp: waiting for a connection on %s", qmp_socket_path);
        while (!qmp_clients && !(cancelled && cancelled())) {
            g_main_context_iteration(NULL, TRUE);
        }
    }
    return 0;
}

void qmp_server_stop(void)
{
    if (qmp_listen_socket) {
        qemu_event_sink_remove(qmp_event_sink, NULL);
    }
    if (qmp_listen_socket) {
        g_socket_close(qmp_listen_socket, NULL);
        g_clear_object(&qmp_listen_socket);
    }
    while (qmp_clients) {
        qmp_client_close(qmp_clients->data);
    }
    qmp_listen_unwatch();
    if (qmp_backoff_timer) {
        g_source_remove(qmp_backoff_timer);
        qmp_backoff_timer = 0;
    }
    if (qmp_socket_path) {
        unlink(qmp_socket_path);
        g_clear_pointer(&qmp_socket_path, g_free);
    }
}

void qmp_send_event(const char *name, const char *data_json)
{
    g_autofree char *line = NULL;

    if (!qmp_clients) {
        return;
    }
    line = qmp_build_event(name, data_json);
    for (GList *l = qmp_clients; l; l = l->next) {
        QmpClient *c = l->data;
        /* As QEMU: events only reach clients past capabilities negotiation. */
        if (qmp_session_negotiated(c->session)) {
            qmp_client_send(c, line);
        }
    }
}
