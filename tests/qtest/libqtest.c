/*
 * libqtest: drives a qtpm process over its qtest and QMP sockets.
 */
#include "qemu/osdep.h"
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "hw/irq.h"
#include "qemu/sockets.h"
#include "libqtest.h"

typedef struct QTestConn {
    int fd;
    GString *buf;
} QTestConn;

struct QTestState {
    GPid pid;
    bool exited;
    int wstatus;
    char *dir;
    QTestConn qtest;
    QTestConn qmp;
    bool irq_level[IOAPIC_NUM_PINS];
    GQueue events; /* JsonNode* */
};

/*
 * The qtpm of the build this test belongs to (BUILD/tests/qtest/test-x ->
 * BUILD/qtpm), so a sanitizer build's test drives the sanitizer build's
 * qtpm; else $BUILD/qtpm.
 */
char *qtest_qtpm_binary(void)
{
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    const char *build = g_getenv("BUILD");

    if (self) {
        g_autofree char *dir = g_path_get_dirname(self);
        char *bin = g_build_filename(dir, "..", "..", "qtpm", NULL);
        if (g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
            return bin;
        }
        g_free(bin);
    }
    return g_build_filename(build && *build ? build : "build", "qtpm", NULL);
}

char *qtest_scratch_dir(void)
{
    g_autoptr(GError) err = NULL;
    char *dir = g_dir_make_tmp("qtpm-qtest-XXXXXX", &err);

    g_assert_no_error(err);
    return dir;
}

static void qtest_child_setup(gpointer data)
{
    /* qtpm dies with the test; its stdout must not mix with TAP. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(2, 1);
}

static bool qtest_child_alive(QTestState *s)
{
    if (!s->exited && waitpid(s->pid, &s->wstatus, WNOHANG) == s->pid) {
        s->exited = true;
    }
    return !s->exited;
}

static int qtest_connect_unix(QTestState *s, const char *path)
{
    gint64 deadline = g_get_monotonic_time() + QTEST_REPLY_TIMEOUT_S * G_TIME_SPAN_SECOND;

    g_assert_true(qemu_socket_check_unix_path(path, NULL));
    for (;;) {
        int fd = qemu_unix_connect(path, NULL);
        if (fd >= 0) {
            return fd;
        }
        if (!qtest_child_alive(s)) {
            g_error("qtpm exited (status 0x%x) before '%s' accepted", s->wstatus, path);
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("qtpm did not listen on '%s'", path);
        }
        g_usleep(10 * 1000);
    }
}

/* One line from @c without its "\r\n"; g_error on EOF or timeout. */
static char *qtest_conn_readline(QTestState *s, QTestConn *c)
{
    gint64 deadline = g_get_monotonic_time() + QTEST_REPLY_TIMEOUT_S * G_TIME_SPAN_SECOND;

    for (;;) {
        char *nl = memchr(c->buf->str, '\n', c->buf->len);
        char tmp[4096];
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        ssize_t n;

        if (nl) {
            size_t len = nl - c->buf->str;
            char *line =
                g_strndup(c->buf->str, len > 0 && nl[-1] == '\r' ? len - 1 : len);
            g_string_erase(c->buf, 0, len + 1);
            return line;
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("no reply from qtpm within %d s", QTEST_REPLY_TIMEOUT_S);
        }
        if (poll(&pfd, 1, 1000) <= 0) {
            continue;
        }
        n = read(c->fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            qtest_child_alive(s);
            g_error("qtpm closed the connection (exited: %d, status 0x%x)", s->exited,
                    s->wstatus);
        }
        g_string_append_len(c->buf, tmp, n);
    }
}

static void qtest_conn_send(QTestConn *c, const char *str)
{
    size_t len = strlen(str);

    if (qemu_write_full(c->fd, str, len) != (ssize_t)len) {
        g_error("cannot send to qtpm: %s", g_strerror(errno));
    }
}

/* ---- qtest --------------------------------------------------------------- */

static bool qtest_handle_async(QTestState *s, const char *line)
{
    int pin;

    if (sscanf(line, "IRQ raise %d", &pin) == 1 && pin >= 0 && pin < IOAPIC_NUM_PINS) {
        s->irq_level[pin] = true;
        return true;
    }
    if (sscanf(line, "IRQ lower %d", &pin) == 1 && pin >= 0 && pin < IOAPIC_NUM_PINS) {
        s->irq_level[pin] = false;
        return true;
    }
    return false;
}

static char *qtest_vcmd(QTestState *s, const char *fmt, va_list ap)
{
    g_autofree char *line = g_strdup_vprintf(fmt, ap);
    g_autofree char *req = g_strconcat(line, "\n", NULL);

    qtest_conn_send(&s->qtest, req);
    for (;;) {
        char *reply = qtest_conn_readline(s, &s->qtest);
        if (!qtest_handle_async(s, reply)) {
            return reply;
        }
        g_free(reply);
    }
}

char *qtest_cmd(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    char *reply;

    va_start(ap, fmt);
    reply = qtest_vcmd(s, fmt, ap);
    va_end(ap);
    return reply;
}

/* A request that must be answered "OK[ value]"; returns the value part. */
static char *qtest_ok(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static char *qtest_ok(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *reply = NULL;

    va_start(ap, fmt);
    reply = qtest_vcmd(s, fmt, ap);
    va_end(ap);
    if (strcmp(reply, "OK") == 0) {
        return g_strdup("");
    }
    if (!g_str_has_prefix(reply, "OK ")) {
        g_error("qtest request answered '%s'", reply);
    }
    return g_strdup(reply + 3);
}

static uint64_t qtest_readn(QTestState *s, char size, uint64_t addr)
{
    g_autofree char *val = qtest_ok(s, "read%c 0x%" PRIx64, size, addr);
    char *end;
    uint64_t v = g_ascii_strtoull(val, &end, 0);

    if (end == val || *end) {
        g_error("read%c: bad value '%s'", size, val);
    }
    return v;
}

uint8_t qtest_readb(QTestState *s, uint64_t addr)
{
    return qtest_readn(s, 'b', addr);
}

uint16_t qtest_readw(QTestState *s, uint64_t addr)
{
    return qtest_readn(s, 'w', addr);
}

uint32_t qtest_readl(QTestState *s, uint64_t addr)
{
    return qtest_readn(s, 'l', addr);
}

uint64_t qtest_readq(QTestState *s, uint64_t addr)
{
    return qtest_readn(s, 'q', addr);
}

static void qtest_writen(QTestState *s, char size, uint64_t addr, uint64_t val)
{
    g_free(qtest_ok(s, "write%c 0x%" PRIx64 " 0x%" PRIx64, size, addr, val));
}

void qtest_writeb(QTestState *s, uint64_t addr, uint8_t val)
{
    qtest_writen(s, 'b', addr, val);
}

void qtest_writew(QTestState *s, uint64_t addr, uint16_t val)
{
    qtest_writen(s, 'w', addr, val);
}

void qtest_writel(QTestState *s, uint64_t addr, uint32_t val)
{
    qtest_writen(s, 'l', addr, val);
}

void qtest_writeq(QTestState *s, uint64_t addr, uint64_t val)
{
    qtest_writen(s, 'q', addr, val);
}

void qtest_memread(QTestState *s, uint64_t addr, void *buf, size_t len)
{
    g_autofree char *hex = qtest_ok(s, "read 0x%" PRIx64 " %zu", addr, len);
    uint8_t *p = buf;

    if (strlen(hex) != 2 + 2 * len || strncmp(hex, "0x", 2) != 0) {
        g_error("read: bad reply '%s'", hex);
    }
    for (size_t i = 0; i < len; i++) {
        p[i] = g_ascii_xdigit_value(hex[2 + 2 * i]) << 4 |
               g_ascii_xdigit_value(hex[3 + 2 * i]);
    }
}

void qtest_memwrite(QTestState *s, uint64_t addr, const void *buf, size_t len)
{
    g_autoptr(GString) hex = g_string_new("0x");
    const uint8_t *p = buf;

    for (size_t i = 0; i < len; i++) {
        g_string_append_printf(hex, "%02x", p[i]);
    }
    g_free(qtest_ok(s, "write 0x%" PRIx64 " %zu %s", addr, len, hex->str));
}

void qtest_bufread(QTestState *s, uint64_t addr, void *buf, size_t len)
{
    g_autofree char *b64 = qtest_ok(s, "b64read 0x%" PRIx64 " %zu", addr, len);
    gsize out_len;
    g_autofree guchar *data = g_base64_decode(b64, &out_len);

    g_assert_cmpuint(out_len, ==, len);
    memcpy(buf, data, len);
}

void qtest_bufwrite(QTestState *s, uint64_t addr, const void *buf, size_t len)
{
    g_autofree char *b64 = g_base64_encode(buf, len);

    g_free(qtest_ok(s, "b64write 0x%" PRIx64 " %zu %s", addr, len, b64));
}

void qtest_memset(QTestState *s, uint64_t addr, uint8_t pattern, size_t len)
{
    g_free(qtest_ok(s, "memset 0x%" PRIx64 " %zu 0x%02x", addr, len, pattern));
}

void qtest_irq_intercept_in(QTestState *s, const char *path)
{
    g_free(qtest_ok(s, "irq_intercept_in %s", path));
}

bool qtest_get_irq(QTestState *s, int pin)
{
    g_assert_cmpint(pin, >=, 0);
    g_assert_cmpint(pin, <, IOAPIC_NUM_PINS);
    return s->irq_level[pin];
}

/* ---- QMP ----------------------------------------------------------------- */

static JsonNode *qtest_qmp_read(QTestState *s)
{
    g_autofree char *line = qtest_conn_readline(s, &s->qmp);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    JsonNode *root;

    if (!json_parser_load_from_data(parser, line, -1, &err)) {
        g_error("QMP: '%s' is not JSON: %s", line, err->message);
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_error("QMP: '%s' is not an object", line);
    }
    return json_node_copy(root);
}

JsonObject *qtest_qdict(JsonNode *node)
{
    return node && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

/* The next reply, queueing the events that come before it. */
static JsonNode *qtest_qmp_reply(QTestState *s)
{
    for (;;) {
        JsonNode *n = qtest_qmp_read(s);
        JsonObject *o = qtest_qdict(n);
        if (json_object_has_member(o, "event")) {
            g_queue_push_tail(&s->events, n);
            continue;
        }
        return n;
    }
}

JsonNode *qtest_qmp(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;
    g_autofree char *line = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_strdelimit(msg, "'", '"');
    line = g_strconcat(msg, "\n", NULL);
    qtest_conn_send(&s->qmp, line);
    return qtest_qmp_reply(s);
}

static bool qtest_is_event(JsonNode *n, const char *name)
{
    return g_strcmp0(
               json_object_get_string_member_with_default(qtest_qdict(n), "event", NULL),
               name) == 0;
}

JsonNode *qtest_qmp_eventwait(QTestState *s, const char *name)
{
    for (GList *l = s->events.head; l; l = l->next) {
        if (qtest_is_event(l->data, name)) {
            JsonNode *n = l->data;
            g_queue_delete_link(&s->events, l);
            return n;
        }
    }
    for (;;) {
        JsonNode *n = qtest_qmp_read(s);
        if (qtest_is_event(n, name)) {
            return n;
        }
        g_queue_push_tail(&s->events, n);
    }
}

static void qtest_qmp_handshake(QTestState *s)
{
    JsonNode *greeting = qtest_qmp_read(s);
    JsonNode *reply;

    g_assert_true(json_object_has_member(qtest_qdict(greeting), "QMP"));
    json_node_unref(greeting);
    reply = qtest_qmp(s, "{'execute': 'qmp_capabilities'}");
    g_assert_true(json_object_has_member(qtest_qdict(reply), "return"));
    json_node_unref(reply);
}

/* ---- Process ------------------------------------------------------------- */

static void qtest_spawn(QTestState *s, const char *bin, const char *args,
                        const char *qtest_sock, const char *qmp_sock)
{
    g_autofree char *cmdline = g_strdup_printf(
        "%s %s -qtest unix:%s,server=on,wait=off -qmp unix:%s,server=on,wait=off", bin,
        args ? args : "", qtest_sock, qmp_sock);
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) err = NULL;

    if (!g_shell_parse_argv(cmdline, NULL, &argv, &err) ||
        !g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
                       qtest_child_setup,
                       NULL, &s->pid, &err)) {
        g_error("cannot start '%s': %s", cmdline, err->message);
    }
    if (g_test_verbose()) {
        g_printerr("# started: %s\n", cmdline);
    }
}

QTestState *qtest_init(const char *args)
{
    g_autofree char *bin = qtest_qtpm_binary();

    return qtest_init_binary(bin, args);
}

QTestState *qtest_init_binary(const char *binary, const char *args)
{
    QTestState *s = g_new0(QTestState, 1);
    g_autofree char *qtest_sock = NULL;
    g_autofree char *qmp_sock = NULL;

    s->dir = qtest_scratch_dir();
    qtest_sock = g_build_filename(s->dir, "qtest.sock", NULL);
    qmp_sock = g_build_filename(s->dir, "qmp.sock", NULL);
    g_queue_init(&s->events);
    s->qtest.buf = g_string_new(NULL);
    s->qmp.buf = g_string_new(NULL);
    qtest_spawn(s, binary, args, qtest_sock, qmp_sock);
    s->qtest.fd = qtest_connect_unix(s, qtest_sock);
    s->qmp.fd = qtest_connect_unix(s, qmp_sock);
    qtest_qmp_handshake(s);
    return s;
}

QTestState *qtest_initf(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *args = NULL;

    va_start(ap, fmt);
    args = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return qtest_init(args);
}

void qtest_reconnect(QTestState *s)
{
    g_autofree char *path = g_build_filename(s->dir, "qtest.sock", NULL);

    close(s->qtest.fd);
    g_string_truncate(s->qtest.buf, 0);
    memset(s->irq_level, 0, sizeof(s->irq_level));
    s->qtest.fd = qtest_connect_unix(s, path);
}

pid_t qtest_pid(QTestState *s)
{
    return s->pid;
}

int qtest_wait_exit(QTestState *s)
{
    gint64 deadline = g_get_monotonic_time() + QTEST_REPLY_TIMEOUT_S * G_TIME_SPAN_SECOND;

    while (qtest_child_alive(s)) {
        if (g_get_monotonic_time() > deadline) {
            g_error("qtpm did not exit within %d s", QTEST_REPLY_TIMEOUT_S);
        }
        g_usleep(10 * 1000);
    }
    return s->wstatus;
}

static void qtest_remove_dir(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        unlink(path);
    }
    rmdir(dir);
}

void qtest_quit(QTestState *s)
{
    if (!s) {
        return;
    }
    if (qtest_child_alive(s)) {
        kill(s->pid, SIGTERM);
        qtest_wait_exit(s);
    }
    g_spawn_close_pid(s->pid);
    close(s->qtest.fd);
    close(s->qmp.fd);
    g_string_free(s->qtest.buf, TRUE);
    g_string_free(s->qmp.buf, TRUE);
    g_queue_clear_full(&s->events, (GDestroyNotify)json_node_unref);
    qtest_remove_dir(s->dir);
    g_free(s->dir);
    g_free(s);
}
