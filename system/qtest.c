/*
 * qtest server: QEMU's qtest line protocol (docs/qtest.md).
 *
 * qtest_process_line() is the pure part: one request line in, reply lines
 * out, guest accesses through the address space. The server around it
 * listens on a unix socket (one client at a time, one after another) or
 * speaks on stdin/stdout, driven by GLib main-loop fd sources.
 */
#include "qemu/osdep.h"
#include <glib-unix.h>
#include "exec/memory.h"
#include "hw/irq.h"
#include "qemu/option.h"
#include "qemu/sockets.h"
#include "sysemu/qtest.h"

/* The largest read/write/memset; bounds what one line can make us allocate. */
#define QTEST_MAX_TRANSFER (1024 * 1024)
/* The longest request line we buffer: a maximal hex "write" plus slack. */
#define QTEST_MAX_LINE (2 * QTEST_MAX_TRANSFER + 256)

/* ---- IRQ interception ---------------------------------------------------- */

static bool irq_intercepted;
static int irq_reported[IOAPIC_NUM_PINS];
static GString *qtest_reply; /* the reply being built, during a request */
static int64_t qtest_clock_ns;

static void qtest_send_async(const char *line);

static void qtest_irq_observer(void *opaque, int pin, int level)
{
    g_autofree char *line = NULL;

    if (!irq_intercepted || pin < 0 || pin >= IOAPIC_NUM_PINS ||
        irq_reported[pin] == level) {
        return;
    }
    irq_reported[pin] = level;
    line = g_strdup_printf("IRQ %s %d\n", level ? "raise" : "lower", pin);
    if (qtest_reply) {
        g_string_append(qtest_reply, line);
    } else {
        qtest_send_async(line);
    }
}

/* The QOM paths under which QEMU's PC machines expose their I/O APIC. */
static bool qtest_is_ioapic_path(const char *path)
{
    static const char *const paths[] = {
        "ioapic",
        "/machine/ioapic",
        "/machine/q35/ioapic",
        "/machine/i440fx/ioapic",
    };

    for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
        if (strcmp(path, paths[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- Argument parsing ---------------------------------------------------- */

/* An unsigned number in C syntax (0x.., 0.., decimal), nothing after it. */
static bool qtest_parse_u64(const char *str, uint64_t *out)
{
    char *end;

    if (!str || !g_ascii_isdigit(str[0])) {
        return false;
    }
    errno = 0;
    *out = g_ascii_strtoull(str, &end, 0);
    return errno == 0 && end != str && *end == '\0';
}

static bool qtest_parse_i64(const char *str, int64_t *out)
{
    char *end;

    if (!str || !(g_ascii_isdigit(str[0]) || str[0] == '-')) {
        return false;
    }
    errno = 0;
    *out = g_ascii_strtoll(str, &end, 0);
    return errno == 0 && end != str && *end == '\0';
}

static void qtest_fail(GString *reply, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void qtest_fail(GString *reply, const char *fmt, ...)
{
    va_list ap;

    g_string_append(reply, "FAIL ");
    va_start(ap, fmt);
    g_string_append_vprintf(reply, fmt, ap);
    va_end(ap);
    g_string_append_c(reply, '\n');
}

static bool qtest_nargs(GString *reply, char **words, guint min, guint max)
{
    guint n = g_strv_length(words) - 1;

    if (n < min || n > max) {
        qtest_fail(reply, "%s: expected %u argument(s), got %u", words[0], min, n);
        return false;
    }
    return true;
}

/* ADDR and SIZE of read/write/b64read/b64write/memset. */
static bool qtest_parse_range(GString *reply, char **words, uint64_t *addr, uint64_t *len)
{
    if (!qtest_parse_u64(words[1], addr)) {
        qtest_fail(reply, "%s: bad address '%s'", words[0], words[1]);
        return false;
    }
    if (!qtest_parse_u64(words[2], len)) {
        qtest_fail(reply, "%s: bad size '%s'", words[0], words[2]);
        return false;
    }
    if (*len > QTEST_MAX_TRANSFER) {
        qtest_fail(reply, "%s: size %" PRIu64 " exceeds %d bytes", words[0], *len,
                   QTEST_MAX_TRANSFER);
        return false;
    }
    return true;
}

/* "0x" + hex pairs into @len bytes; missing bytes are zero, extra ignored. */
static bool qtest_decode_hex(const char *hex, uint8_t *data, uint64_t len)
{
    size_t n;

    if (hex[0] != '0' || (hex[1] != 'x' && hex[1] != 'X')) {
        return false;
    }
    hex += 2;
    n = strlen(hex);
    if (n % 2 != 0) {
        return false;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        if (i < len) {
            data[i] = (hi << 4) | lo;
        }
    }
    return true;
}

static bool qtest_is_base64(const char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && s[i] != '+' && s[i] != '/' &&
            !(s[i] == '=' && i >= n - 2)) {
            return false;
        }
    }
    return true;
}

/* ---- Commands ------------------------------------------------------------ */

static unsigned qtest_size_suffix(char c)
{
    switch (c) {
    case 'b':
        return 1;
    case 'w':
        return 2;
    case 'l':
        return 4;
    case 'q':
        return 8;
    default:
        return 0;
    }
}

static void qtest_cmd_readn(GString *reply, char **words, unsigned size)
{
    uint64_t addr;

    if (!qtest_nargs(reply, words, 1, 1)) {
        return;
    }
    if (!qtest_parse_u64(words[1], &addr)) {
        qtest_fail(reply, "%s: bad address '%s'", words[0], words[1]);
        return;
    }
    g_string_append_printf(reply, "OK 0x%016" PRIx64 "\n", address_space_ldn(addr, size));
}

static void qtest_cmd_writen(GString *reply, char **words, unsigned size)
{
    uint64_t addr, val;

    if (!qtest_nargs(reply, words, 2, 2)) {
        return;
    }
    if (!qtest_parse_u64(words[1], &addr)) {
        qtest_fail(reply, "%s: bad address '%s'", words[0], words[1]);
        return;
    }
    if (!qtest_parse_u64(words[2], &val)) {
        qtest_fail(reply, "%s: bad value '%s'", words[0], words[2]);
        return;
    }
    /* As in QEMU, the value is truncated to the access size. */
    address_space_stn(addr, size, val);
    g_string_append(reply, "OK\n");
}

static void qtest_cmd_read(GString *reply, char **words)
{
    g_autofree uint8_t *data = NULL;
    uint64_t addr, len;

    if (!qtest_nargs(reply, words, 2, 2) ||
        !qtest_parse_range(reply, words, &addr, &len)) {
        return;
    }
    if (len == 0) {
        qtest_fail(reply, "read: size must not be 0");
        return;
    }
    data = g_malloc(len);
    address_space_read(addr, data, len);
    g_string_append(reply, "OK 0x");
    for (uint64_t i = 0; i < len; i++) {
        g_string_append_printf(reply, "%02x", data[i]);
    }
    g_string_append_c(reply, '\n');
}

static void qtest_cmd_write(GString *reply, char **words)
{
    g_autofree uint8_t *data = NULL;
    uint64_t addr, len;

    if (!qtest_nargs(reply, words, 3, 3) ||
        !qtest_parse_range(reply, words, &addr, &len)) {
        return;
    }
    data = g_malloc0(len ? len : 1);
    if (!qtest_decode_hex(words[3], data, len)) {
        qtest_fail(reply, "write: data must be 0x followed by pairs of hex digits");
        return;
    }
    address_space_write(addr, data, len);
    g_string_append(reply, "OK\n");
}

static void qtest_cmd_b64read(GString *reply, char **words)
{
    g_autofree uint8_t *data = NULL;
    g_autofree char *b64 = NULL;
    uint64_t addr, len;

    if (!qtest_nargs(reply, words, 2, 2) ||
        !qtest_parse_range(reply, words, &addr, &len)) {
        return;
    }
    data = g_malloc(len ? len : 1);
    address_space_read(addr, data, len);
    b64 = g_base64_encode(data, len);
    g_string_append_printf(reply, "OK %s\n", b64);
}

static void qtest_cmd_b64write(GString *reply, char **words)
{
    g_autofree uint8_t *data = NULL;
    g_autofree uint8_t *decoded = NULL;
    uint64_t addr, len;
    gsize out_len = 0;

    if (!qtest_nargs(reply, words, 3, 3) ||
        !qtest_parse_range(reply, words, &addr, &len)) {
        return;
    }
    if (!qtest_is_base64(words[3])) {
        qtest_fail(reply, "b64write: data is not base64");
        return;
    }
    decoded = g_base64_decode(words[3], &out_len);
    data = g_malloc0(len ? len : 1);
    memcpy(data, decoded, MIN(out_len, len));
    address_space_write(addr, data, len);
    g_string_append(reply, "OK\n");
}

static void qtest_cmd_memset(GString *reply, char **words)
{
    g_autofree uint8_t *data = NULL;
    uint64_t addr, len, pattern;

    if (!qtest_nargs(reply, words, 3, 3) ||
        !qtest_parse_range(reply, words, &addr, &len)) {
        return;
    }
    if (!qtest_parse_u64(words[3], &pattern) || pattern > 0xff) {
        qtest_fail(reply, "memset: bad byte value '%s'", words[3]);
        return;
    }
    data = g_malloc(len ? len : 1);
    memset(data, (int)pattern, len);
    address_space_write(addr, data, len);
    g_string_append(reply, "OK\n");
}

static void qtest_cmd_irq_intercept_in(GString *reply, char **words)
{
    if (!qtest_nargs(reply, words, 1, 1)) {
        return;
    }
    if (!qtest_is_ioapic_path(words[1])) {
        qtest_fail(reply, "Unknown device");
        return;
    }
    if (!irq_intercepted) {
        irq_intercepted = true;
        qemu_irq_set_observer(qtest_irq_observer, NULL);
    }
    g_string_append(reply, "OK\n");
}

/* set_irq_in QOM-PATH NAME NUM LEVEL: drive an I/O APIC input pin. */
static void qtest_cmd_set_irq_in(GString *reply, char **words)
{
    uint64_t pin;
    int64_t level;

    if (!qtest_nargs(reply, words, 4, 4)) {
        return;
    }
    if (!qtest_is_ioapic_path(words[1]) || strcmp(words[2], "unnamed-gpio-in") != 0) {
        qtest_fail(reply, "Unknown device");
        return;
    }
    if (!qtest_parse_u64(words[3], &pin) || pin >= IOAPIC_NUM_PINS ||
        !qtest_parse_i64(words[4], &level)) {
        qtest_fail(reply, "set_irq_in: bad pin '%s' or level '%s'", words[3], words[4]);
        return;
    }
    qemu_set_irq_pin((int)pin, level != 0);
    g_string_append(reply, "OK\n");
}

/* Port I/O: the machine has no I/O ports, so reads float high. */
static void qtest_cmd_pio(GString *reply, char **words, bool is_in, unsigned size)
{
    uint64_t port, val;

    if (!qtest_nargs(reply, words, is_in ? 1 : 2, is_in ? 1 : 2)) {
        return;
    }
    if (!qtest_parse_u64(words[1], &port) || port > 0xffff ||
        (!is_in && !qtest_parse_u64(words[2], &val))) {
        qtest_fail(reply, "%s: bad port or value", words[0]);
        return;
    }
    if (is_in) {
        g_string_append_printf(reply, "OK 0x%04" PRIx64 "\n",
                               size == 4 ? 0xffffffffu : (UINT64_C(1) << (8 * size)) - 1);
    } else {
        g_string_append(reply, "OK\n");
    }
}

/* The virtual clock only moves when a client moves it; no timers wait on it. */
static void qtest_cmd_clock_step(GString *reply, char **words)
{
    int64_t ns;

    if (!qtest_nargs(reply, words, 0, 1)) {
        return;
    }
    if (!words[1]) {
        qtest_fail(reply, "cannot advance clock to the next deadline because there is "
                          "no pending deadline");
        return;
    }
    if (!qtest_parse_i64(words[1], &ns) || ns <= 0 || ns > INT64_MAX - qtest_clock_ns) {
        qtest_fail(reply, "could not advance time");
        return;
    }
    qtest_clock_ns += ns;
    g_string_append_printf(reply, "OK %" PRIi64 "\n", qtest_clock_ns);
}

static void qtest_cmd_clock_set(GString *reply, char **words)
{
    int64_t ns;

    if (!qtest_nargs(reply, words, 1, 1)) {
        return;
    }
    if (!qtest_parse_i64(words[1], &ns)) {
        qtest_fail(reply, "clock_set: bad time '%s'", words[1]);
        return;
    }
    if (ns > qtest_clock_ns) {
        qtest_clock_ns = ns;
    }
    g_string_append_printf(reply, "%s %" PRIi64 "\n",
                           ns == qtest_clock_ns ? "OK" : "FAIL", qtest_clock_ns);
}

/* readb/readw/readl/readq, writeb/..., inb/..., outb/... */
static bool qtest_dispatch_sized(GString *reply, char **words)
{
    const char *cmd = words[0];
    size_t n = strlen(cmd);
    unsigned size = n ? qtest_size_suffix(cmd[n - 1]) : 0;

    if (size == 0) {
        return false;
    }
    if (n == 5 && strncmp(cmd, "read", 4) == 0) {
        qtest_cmd_readn(reply, words, size);
    } else if (n == 6 && strncmp(cmd, "write", 5) == 0) {
        qtest_cmd_writen(reply, words, size);
    } else if (n == 3 && strncmp(cmd, "in", 2) == 0 && size <= 4) {
        qtest_cmd_pio(reply, words, true, size);
    } else if (n == 4 && strncmp(cmd, "out", 3) == 0 && size <= 4) {
        qtest_cmd_pio(reply, words, false, size);
    } else {
        return false;
    }
    return true;
}

static void qtest_dispatch(GString *reply, char **words)
{
    const char *cmd = words[0];

    if (qtest_dispatch_sized(reply, words)) {
        return;
    } else if (strcmp(cmd, "read") == 0) {
        qtest_cmd_read(reply, words);
    } else if (strcmp(cmd, "write") == 0) {
        qtest_cmd_write(reply, words);
    } else if (strcmp(cmd, "b64read") == 0) {
        qtest_cmd_b64read(reply, words);
    } else if (strcmp(cmd, "b64write") == 0) {
        qtest_cmd_b64write(reply, words);
    } else if (strcmp(cmd, "memset") == 0) {
        qtest_cmd_memset(reply, words);
    } else if (strcmp(cmd, "irq_intercept_in") == 0) {
        qtest_cmd_irq_intercept_in(reply, words);
    } else if (strcmp(cmd, "irq_intercept_out") == 0) {
        qtest_fail(reply, "Unknown device");
    } else if (strcmp(cmd, "set_irq_in") == 0) {
        qtest_cmd_set_irq_in(reply, words);
    } else if (strcmp(cmd, "endianness") == 0) {
        g_string_append(reply, "OK little\n");
    } else if (strcmp(cmd, "clock_step") == 0) {
        qtest_cmd_clock_step(reply, words);
    } else if (strcmp(cmd, "clock_set") == 0) {
        qtest_cmd_clock_set(reply, words);
    } else {
        g_autofree char *shown = g_strescape(cmd, NULL);
        qtest_fail(reply, "Unknown command '%.64s'", shown);
    }
}

void qtest_process_line(const char *line, GString *reply)
{
    g_autofree char *copy = g_strdup(line ? line : "");
    g_auto(GStrv) parts = NULL;
    g_autoptr(GPtrArray) words = g_ptr_array_new();
    GString *outer = qtest_reply;
    size_t n = strlen(copy);

    if (n > 0 && copy[n - 1] == '\r') {
        copy[n - 1] = '\0';
    }
    parts = g_strsplit_set(copy, " \t", -1);
    for (char **p = parts; *p; p++) {
        if (**p) {
            g_ptr_array_add(words, *p);
        }
    }
    g_ptr_array_add(words, NULL);
    if (!words->pdata[0]) {
        qtest_fail(reply, "empty command");
        return;
    }
    qtest_reply = reply;
    qtest_dispatch(reply, (char **)words->pdata);
    qtest_reply = outer;
}

/* ---- Server -------------------------------------------------------------- */

typedef struct QTestServer {
    char *path; /* unix socket path, or NULL for stdio */
    int listen_fd;
    guint listen_watch;
    int in_fd; /* client socket, or 0 for stdio */
    int out_fd;
    guint in_watch;
    GString *inbuf;
    bool discarding; /* dropping an overlong line up to its newline */
} QTestServer;

static QTestServer *qtest_server;
static void (*qtest_close_fn)(void *opaque);
static void *qtest_close_opaque;

static void qtest_write_all(int fd, const char *buf, size_t len)
{
    /* A short write means the peer went away; the read side notices. */
    qemu_write_full(fd, buf, len);
}

static void qtest_send_async(const char *line)
{
    if (qtest_server && qtest_server->out_fd >= 0) {
        qtest_write_all(qtest_server->out_fd, line, strlen(line));
    }
}

static void qtest_handle_inbuf(QTestServer *q)
{
    char *nl;

    while ((nl = memchr(q->inbuf->str, '\n', q->inbuf->len)) != NULL) {
        size_t len = nl - q->inbuf->str;
        g_autoptr(GString) reply = g_string_new(NULL);

        if (q->discarding) {
            q->discarding = false;
        } else {
            *nl = '\0';
            /* An embedded NUL ends the line early; the rest is ignored. */
            qtest_process_line(q->inbuf->str, reply);
            qtest_write_all(q->out_fd, reply->str, reply->len);
        }
        g_string_erase(q->inbuf, 0, len + 1);
    }
    if (q->discarding) {
        g_string_truncate(q->inbuf, 0); /* still inside the overlong line */
    } else if (q->inbuf->len > QTEST_MAX_LINE) {
        static const char msg[] = "FAIL line too long\n";
        qtest_write_all(q->out_fd, msg, sizeof(msg) - 1);
        g_string_truncate(q->inbuf, 0);
        q->discarding = true;
    }
}

static gboolean qtest_listen_ready(gint fd, GIOCondition cond, gpointer opaque);

static void qtest_client_closed(QTestServer *q)
{
    if (q->in_watch) {
        g_source_remove(q->in_watch);
        q->in_watch = 0;
    }
    if (q->path) {
        close(q->in_fd);
        q->in_fd = q->out_fd = -1;
        q->listen_watch = g_unix_fd_add(q->listen_fd, G_IO_IN, qtest_listen_ready, q);
    } else {
        q->in_fd = q->out_fd = -1;
        if (qtest_close_fn) {
            qtest_close_fn(qtest_close_opaque);
        }
    }
}

static gboolean qtest_client_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    QTestServer *q = opaque;
    char buf[4096];
    ssize_t n;

    n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        q->in_watch = 0;
        qtest_client_closed(q);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(q->inbuf, buf, n);
    qtest_handle_inbuf(q);
    return G_SOURCE_CONTINUE;
}

static void qtest_client_opened(QTestServer *q, int in_fd, int out_fd)
{
    memset(irq_reported, 0, sizeof(irq_reported));
    g_string_truncate(q->inbuf, 0);
    q->discarding = false;
    q->in_fd = in_fd;
    q->out_fd = out_fd;
    q->in_watch =
        g_unix_fd_add(in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, qtest_client_ready, q);
}

/* Accept one client; the listening watch sleeps until it disconnects. */
static bool qtest_accept(QTestServer *q)
{
    int fd = qemu_socket_accept(q->listen_fd);

    if (fd < 0) {
        return false;
    }
    qtest_client_opened(q, fd, fd);
    return true;
}

static gboolean qtest_listen_ready(gint fd, GIOCondition cond, gpointer opaque);

static gboolean qtest_listen_retry(gpointer opaque)
{
    QTestServer *q = opaque;

    q->listen_watch = g_unix_fd_add(q->listen_fd, G_IO_IN, qtest_listen_ready, q);
    return G_SOURCE_REMOVE;
}

static gboolean qtest_listen_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    QTestServer *q = opaque;

    if (!qtest_accept(q)) {
        /* Out of descriptors: wait instead of spinning. */
        return qemu_socket_accept_back_off(&q->listen_watch, qtest_listen_retry, q)
            ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
    }
    q->listen_watch = 0;
    return G_SOURCE_REMOVE;
}

const QemuOptDesc qtest_opts[] = {
    { .name = "path", .type = QEMU_OPT_STRING, .implied = true },
    QEMU_OPT_DESC_SOCKET_SERVER,
    QEMU_OPT_DESC_END
};

/*
 * "unix:PATH[,server=on|off][,wait=on|off]", with QEMU's spellings
 * "server" and "nowait". qtpm only listens, so server=on is the default,
 * as for -qmp.
 */
static int qtest_parse_unix_spec(const char *spec, char **path, bool *wait,
                                 GError **errp)
{
    const char *rest = spec + strlen("unix:");
    g_autoptr(GHashTable) opts = NULL;
    const char *unknown;
    bool server;

    if (!*rest || *rest == ',') {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID, "'%s' has no path",
                    spec);
        return -1;
    }
    opts = qemu_opts_parse_flags(rest, qtest_opts, errp);
    if (!opts) {
        return -1;
    }
    /* Named with the whole spec, as the user wrote it. */
    unknown = qemu_opts_find_unknown(opts, qtest_opts);
    if (unknown) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "unknown option '%s' in '%s'", unknown, spec);
        return -1;
    }
    if (!qemu_opts_validate(opts, qtest_opts, "-qtest", errp)) {
        return -1;
    }
    qemu_opt_get_bool(opts, "server", true, &server, NULL);
    qemu_opt_get_bool(opts, "wait", true, wait, NULL);
    if (!server) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "'%s': only server=on is supported", spec);
        return -1;
    }
    if (!qemu_socket_check_unix_path(qemu_opt_get(opts, "path"), errp)) {
        return -1;
    }
    *path = g_strdup(qemu_opt_get(opts, "path"));
    return 0;
}

/* Fills @path and @wait for "unix:..."; *@path stays NULL for stdio. */
static int qtest_parse_spec(const char *spec, char **path, bool *wait,
                            GError **errp)
{
    *path = NULL;
    *wait = false;
    if (spec && strcmp(spec, "stdio") == 0) {
        return 0;
    }
    if (spec && g_str_has_prefix(spec, "unix:")) {
        return qtest_parse_unix_spec(spec, path, wait, errp);
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "'%s' is neither 'unix:PATH[,server=on][,wait=off]' nor 'stdio'",
                spec ? spec : "");
    return -1;
}

bool qtest_check_spec(const char *spec, GError **errp)
{
    g_autofree char *path = NULL;
    bool wait;

    return qtest_parse_spec(spec, &path, &wait, errp) == 0;
}

static void qtest_server_free(QTestServer *q)
{
    if (q->in_watch) {
        g_source_remove(q->in_watch);
    }
    if (q->listen_watch) {
        g_source_remove(q->listen_watch);
    }
    if (q->path) {
        if (q->in_fd >= 0) {
            close(q->in_fd);
        }
        if (q->listen_fd >= 0) {
            close(q->listen_fd);
            unlink(q->path);
        }
    }
    g_string_free(q->inbuf, TRUE);
    g_free(q->path);
    g_free(q);
}

static int qtest_listen_unix(QTestServer *q, bool wait, GError **errp)
{
    QemuSocketAddr addr = {
        .kind = QEMU_SOCKET_UNIX,
        .path = q->path,
        .name = g_strdup_printf("'%s'", q->path),
    };

    q->listen_fd = qemu_socket_listen(&addr, 1, errp);
    g_free(addr.name);
    if (q->listen_fd < 0) {
        return -1;
    }
    if (wait) {
        /* As QEMU with wait=on: block until the first client connects. */
        if (!qtest_accept(q)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "accept on '%s': %s",
                        q->path, g_strerror(errno));
            return -1;
        }
    } else {
        q->listen_watch = g_unix_fd_add(q->listen_fd, G_IO_IN, qtest_listen_ready, q);
    }
    return 0;
}

int qtest_server_start(const char *spec, GError **errp)
{
    QTestServer *q;
    bool wait;

    if (qtest_server) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "only one qtest server can be started");
        return -1;
    }
    q = g_new0(QTestServer, 1);
    q->listen_fd = q->in_fd = q->out_fd = -1;
    q->inbuf = g_string_new(NULL);
    if (qtest_parse_spec(spec, &q->path, &wait, errp) < 0 ||
        (q->path && qtest_listen_unix(q, wait, errp) < 0)) {
        qtest_server_free(q);
        return -1;
    }
    if (!q->path) {
        qtest_client_opened(q, 0, 1);
    }
    qtest_server = q;
    return 0;
}

void qtest_server_stop(void)
{
    if (qtest_server) {
        qtest_server_free(qtest_server);
        qtest_server = NULL;
    }
}

void qtest_server_set_close_handler(void (*fn)(void *opaque), void *opaque)
{
    qtest_close_fn = fn;
    qtest_close_opaque = opaque;
}
