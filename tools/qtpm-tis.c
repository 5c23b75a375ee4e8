/*
 * qtpm-tis: a TPM TIS driver on the far side of a qtest connection.
 *
 * Reads raw TPM commands from stdin, runs each through the TIS FIFO
 * interface of the device behind a qtest socket (QEMU's or qtpm's), and
 * writes the raw responses to stdout. That is the contract of tpm2-tss's
 * "cmd" TCTI, which starts this program once and keeps both pipes open for
 * many commands:
 *
 *   tpm2_getrandom -T "cmd:build/qtpm-tis --qtest q.sock" 8
 *
 * Data moves in bursts through XDATA_FIFO with multi-byte qtest "read" and
 * "write" lines, and writes are posted, so a command costs about eight round
 * trips whatever its size. Protocol and register use: docs/qtpm-tis.md.
 */
#include "qemu/osdep.h"

#include <signal.h>
#include <sys/socket.h>

#include "hw/tpm/tpm_tis_regs.h"
#include "qemu/error-report.h"
#include "qemu/sockets.h"
#include "sysemu/tpm_util.h"

/* XDATA_FIFO spans 0x80..0xbf; a longer MMIO access would run past it. */
#define TPM_TIS_XFIFO_SIZE (TPM_TIS_REG_DATA_XFIFO_END + 4 - TPM_TIS_REG_DATA_XFIFO)

/* Larger than any TPM's buffer; only bounds what a garbled size can ask. */
#define TPM_MAX_MESSAGE_SIZE 65536
/* Longer than any reply to the lines we send (a 64-byte read: 135 bytes). */
#define QTEST_MAX_REPLY_LINE 4096

/*
 * Register and FIFO writes are posted, as on a bus: their lines wait in
 * @posted and go out with the next read (or flush), whose round trip also
 * brings their "OK"s back. A command thus costs about eight round trips.
 */
typedef struct TisClient {
    int fd;
    GString *inbuf;         /* bytes received but not yet consumed */
    GString *posted;        /* write lines not sent yet */
    GPtrArray *posted_cmds; /* the same lines, for error messages */
    uint64_t base;          /* MMIO address of the chosen locality */
    int locality;
    int timeout_ms;
} TisClient;

/* ---- qtest line protocol ---- */

static int qtest_send_line(TisClient *c, const char *line, GError **errp)
{
    size_t len = strlen(line);

    if (qemu_write_full(c->fd, line, len) != (ssize_t)len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "writing to the qtest socket failed: %s", g_strerror(errno));
        return -1;
    }
    return 0;
}

/* Returns the next line without its newline, g_free'd by the caller. */
static char *qtest_recv_line(TisClient *c, GError **errp)
{
    for (;;) {
        char *nl = memchr(c->inbuf->str, '\n', c->inbuf->len);
        if (nl) {
            size_t len = nl - c->inbuf->str;
            char *line = g_strndup(c->inbuf->str, len);
            g_string_erase(c->inbuf, 0, len + 1);
            return line;
        }
        if (c->inbuf->len > QTEST_MAX_REPLY_LINE) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "the qtest server sent a line longer than %d bytes",
                        QTEST_MAX_REPLY_LINE);
            return NULL;
        }
        char buf[4096];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "the qtest server closed the connection%s%s", n < 0 ? ": " : "",
                        n < 0 ? g_strerror(errno) : "");
            return NULL;
        }
        g_string_append_len(c->inbuf, buf, n);
    }
}

/*
 * Reads the reply to one command (@cmd names it in errors) and returns the
 * text after "OK", possibly empty. Asynchronous "IRQ raise N" / "IRQ lower N"
 * lines may come first when a client intercepted IRQs; they are skipped.
 */
static char *qtest_reply(TisClient *c, const char *cmd, GError **errp)
{
    for (;;) {
        g_autofree char *line = qtest_recv_line(c, errp);
        if (!line) {
            return NULL;
        }
        if (g_str_has_prefix(line, "IRQ ")) {
            continue;
        }
        if (strcmp(line, "OK") == 0) {
            return g_strdup("");
        }
        if (g_str_has_prefix(line, "OK ")) {
            return g_strdup(line + 3);
        }
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "the qtest server answered '%s' to '%s'", line, cmd);
        return NULL;
    }
}

/* Queues a write line (@cmd, taken over) to go out with the next read. */
static void qtest_post(TisClient *c, char *cmd)
{
    g_string_append(c->posted, cmd);
    g_string_append_c(c->posted, '\n');
    g_ptr_array_add(c->posted_cmds, cmd);
}

/*
 * Sends the posted lines followed by @lines (complete lines, or "") in one
 * write, and consumes the posted lines' replies; the replies to @lines are
 * next in the stream.
 */
static int qtest_send_after_posted(TisClient *c, const char *lines, GError **errp)
{
    g_autoptr(GPtrArray) cmds = c->posted_cmds;

    c->posted_cmds = g_ptr_array_new_with_free_func(g_free);
    g_string_append(c->posted, lines);
    int ret = qtest_send_line(c, c->posted->str, errp);
    g_string_truncate(c->posted, 0);
    for (guint i = 0; ret == 0 && i < cmds->len; i++) {
        g_autofree char *r = qtest_reply(c, cmds->pdata[i], errp);
        ret = r ? 0 : -1;
    }
    return ret;
}

/* Sends what is posted and waits for its replies. */
static int qtest_flush(TisClient *c, GError **errp)
{
    return c->posted_cmds->len ? qtest_send_after_posted(c, "", errp) : 0;
}

/* A command that returns a value: posted writes go first, in the same write. */
static char *qtest_command(TisClient *c, GError **errp, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static char *qtest_command(TisClient *c, GError **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *line_out = g_strconcat(cmd, "\n", NULL);

    if (qtest_send_after_posted(c, line_out, errp) < 0) {
        return NULL;
    }
    return qtest_reply(c, cmd, errp);
}

static int tis_readl(TisClient *c, unsigned reg, uint32_t *val, GError **errp)
{
    uint64_t addr = c->base + reg;
    g_autofree char *r = qtest_command(c, errp, "readl 0x%" PRIx64, addr);
    char *end;

    if (!r) {
        return -1;
    }
    errno = 0;
    uint64_t v = g_ascii_strtoull(r, &end, 16);
    if (errno || end == r || *end || v > UINT32_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "the qtest server answered 'OK %s' to a readl", r);
        return -1;
    }
    *val = v;
    return 0;
}

/* Posted: a failure shows at the next read or flush. */
static void tis_write_reg(TisClient *c, const char *op, unsigned reg, uint32_t val)
{
    qtest_post(c, g_strdup_printf("%s 0x%" PRIx64 " 0x%x", op, c->base + reg, val));
}

/* Posted XDATA_FIFO writes of up to 64 bytes each. */
static void tis_fifo_write(TisClient *c, const uint8_t *buf, size_t len)
{
    for (size_t off = 0; off < len; off += TPM_TIS_XFIFO_SIZE) {
        size_t n = MIN(len - off, (size_t)TPM_TIS_XFIFO_SIZE);
        GString *line = g_string_new(NULL);
        g_string_append_printf(line, "write 0x%" PRIx64 " 0x%zx 0x",
                               c->base + TPM_TIS_REG_DATA_XFIFO, n);
        for (size_t i = 0; i < n; i++) {
            g_string_append_printf(line, "%02x", buf[off + i]);
        }
        qtest_post(c, g_string_free(line, FALSE));
    }
}

static int parse_read_reply(const char *r, uint8_t *buf, size_t len, GError **errp)
{
    if (strlen(r) != 2 + 2 * len || r[0] != '0' || r[1] != 'x') {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "the qtest server answered a %zu-byte read with '%.40s'", len, r);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        int hi = g_ascii_xdigit_value(r[2 + 2 * i]);
        int lo = g_ascii_xdigit_value(r[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "the qtest server answered a read with a "
                        "non-hex digit");
            return -1;
        }
        buf[i] = hi << 4 | lo;
    }
    return 0;
}

static int tis_fifo_read(TisClient *c, uint8_t *buf, size_t len, GError **errp)
{
    g_autoptr(GString) lines = g_string_new(NULL);

    for (size_t off = 0; off < len; off += TPM_TIS_XFIFO_SIZE) {
        g_string_append_printf(lines, "read 0x%" PRIx64 " 0x%zx\n",
                               c->base + TPM_TIS_REG_DATA_XFIFO,
                               MIN(len - off, (size_t)TPM_TIS_XFIFO_SIZE));
    }
    if (qtest_send_after_posted(c, lines->str, errp) < 0) {
        return -1;
    }
    for (size_t off = 0; off < len; off += TPM_TIS_XFIFO_SIZE) {
        g_autofree char *r = qtest_reply(c, "read", errp);
        if (!r ||
            parse_read_reply(r, buf + off, MIN(len - off, (size_t)TPM_TIS_XFIFO_SIZE),
                             errp) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- TIS driver ---- */

typedef struct Deadline {
    gint64 end;
    gint64 delay_us;
} Deadline;

static Deadline deadline_start(int timeout_ms)
{
    return (Deadline){g_get_monotonic_time() + (gint64)timeout_ms * 1000, 0};
}

/*
 * false once the deadline passed. Backs off from immediate re-polls to 2 ms
 * so quick commands finish quickly and slow ones (RSA key generation) do not
 * flood the qtest server.
 */
static bool deadline_wait(Deadline *d)
{
    if (g_get_monotonic_time() > d->end) {
        return false;
    }
    if (d->delay_us) {
        g_usleep(d->delay_us);
    }
    d->delay_us = d->delay_us ? MIN(d->delay_us * 2, 2000) : 20;
    return true;
}

/*
 * STS of a locality that is not the active one reads as all-ones, which
 * would look like every bit set: another locality took over (seize).
 */
static int tis_read_sts(TisClient *c, uint32_t *sts, GError **errp)
{
    if (tis_readl(c, TPM_TIS_REG_STS, sts, errp) < 0) {
        return -1;
    }
    if (*sts == UINT32_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "locality %d lost the TPM (STS reads all-ones)", c->locality);
        return -1;
    }
    return 0;
}

/* Polls STS until @ready accepts it; the last value read stays in @sts. */
static int tis_wait_sts(TisClient *c, bool (*ready)(uint32_t sts), uint32_t *sts,
                        const char *what, GError **errp)
{
    Deadline d = deadline_start(c->timeout_ms);

    do {
        if (tis_read_sts(c, sts, errp) < 0) {
            return -1;
        }
        if (ready(*sts)) {
            return 0;
        }
    } while (deadline_wait(&d));
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                "locality %d: %s within %d ms (STS 0x%08x)", c->locality, what,
                c->timeout_ms, *sts);
    return -1;
}

static bool sts_command_ready(uint32_t sts)
{
    return sts & TPM_TIS_STS_COMMAND_READY;
}

/*
 * stsValid is not required while sending: QEMU's device leaves it clear in
 * the ready state.
 */
static bool sts_can_send(uint32_t sts)
{
    return TPM_TIS_STS_BURST_COUNT(sts) != 0;
}

static bool sts_response_ready(uint32_t sts)
{
    return (sts & TPM_TIS_STS_VALID) && (sts & TPM_TIS_STS_DATA_AVAILABLE);
}

/* Either more bytes to read now, or the response has ended. */
static bool sts_can_receive(uint32_t sts)
{
    return !(sts & TPM_TIS_STS_DATA_AVAILABLE) || TPM_TIS_STS_BURST_COUNT(sts) != 0;
}

/*
 * A request for the locality we already hold is ignored by the device, so
 * there is no need to read ACCESS first.
 */
static int tis_request_locality(TisClient *c, GError **errp)
{
    const uint32_t active =
        TPM_TIS_ACCESS_TPM_REG_VALID_STS | TPM_TIS_ACCESS_ACTIVE_LOCALITY;
    Deadline d = deadline_start(c->timeout_ms);
    uint32_t access;

    tis_write_reg(c, "writeb", TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    do {
        if (tis_readl(c, TPM_TIS_REG_ACCESS, &access, errp) < 0) {
            return -1;
        }
        if ((access & active) == active) {
            return 0;
        }
    } while (deadline_wait(&d));
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                "locality %d was not granted within %d ms (ACCESS 0x%02x)", c->locality,
                c->timeout_ms, access & 0xff);
    return -1;
}

/*
 * An address with no device reads as all-ones on a bus (qtpm) or as zeros
 * (QEMU's q35); without this check both would look like a locality that is
 * never granted.
 */
static int tis_probe(TisClient *c, GError **errp)
{
    uint32_t did_vid;

    if (tis_readl(c, TPM_TIS_REG_DID_VID, &did_vid, errp) < 0) {
        return -1;
    }
    if (did_vid == 0 || did_vid == UINT32_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "no TPM TIS device answers at 0x%" PRIx64, c->base);
        return -1;
    }
    return 0;
}

static void tis_relinquish_locality(TisClient *c)
{
    tis_write_reg(c, "writeb", TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
}

static int tis_send(TisClient *c, const uint8_t *cmd, size_t len, GError **errp)
{
    uint32_t sts;
    size_t done = 0;

    tis_write_reg(c, "writel", TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    if (tis_wait_sts(c, sts_command_ready, &sts, "the TPM did not become ready", errp) <
        0) {
        return -1;
    }
    /* The STS value that showed commandReady also carries a burst count. */
    while (done < len) {
        if ((done || !sts_can_send(sts)) &&
            tis_wait_sts(c, sts_can_send, &sts, "the burst count stayed 0", errp) < 0) {
            return -1;
        }
        if (done && !(sts & TPM_TIS_STS_EXPECT)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                        "locality %d: the TPM stopped expecting data after "
                        "%zu of %zu command bytes",
                        c->locality, done, len);
            return -1;
        }
        size_t n = MIN(len - done, (size_t)TPM_TIS_STS_BURST_COUNT(sts));
        tis_fifo_write(c, cmd + done, n);
        done += n;
    }
    if (tis_read_sts(c, &sts, errp) < 0) {
        return -1;
    }
    if (!(sts & TPM_TIS_STS_VALID) || (sts & TPM_TIS_STS_EXPECT)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "locality %d: the TPM still expects data after the whole "
                    "%zu-byte command (STS 0x%08x)",
                    c->locality, len, sts);
        return -1;
    }
    tis_write_reg(c, "writel", TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO);
    return 0;
}

/* Reads the response into @rsp, sized by its header. */
static int tis_recv(TisClient *c, GByteArray *rsp, GError **errp)
{
    uint32_t sts;
    size_t want = TPM_HEADER_SIZE;

    if (tis_wait_sts(c, sts_response_ready, &sts, "no response arrived", errp) < 0) {
        return -1;
    }
    g_byte_array_set_size(rsp, 0);
    /*
     * The burst count is what may be read before STS must be looked at
     * again; the STS value that showed dataAvail already carries one, which
     * usually covers the whole response.
     */
    size_t avail = TPM_TIS_STS_BURST_COUNT(sts);
    while (rsp->len < want) {
        if (avail == 0) {
            if (tis_wait_sts(c, sts_can_receive, &sts, "the burst count stayed 0", errp) <
                0) {
                return -1;
            }
            if (!(sts & TPM_TIS_STS_DATA_AVAILABLE)) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                            "locality %d: the response ended after %u of %zu "
                            "bytes",
                            c->locality, rsp->len, want);
                return -1;
            }
            avail = TPM_TIS_STS_BURST_COUNT(sts);
        }
        size_t n = MIN(want - rsp->len, avail);
        size_t old_len = rsp->len;
        g_byte_array_set_size(rsp, old_len + n);
        if (tis_fifo_read(c, rsp->data + old_len, n, errp) < 0) {
            return -1;
        }
        avail -= n;
        if (want == TPM_HEADER_SIZE && rsp->len == TPM_HEADER_SIZE) {
            want = tpm_util_get_size_from_buffer(rsp->data, rsp->len);
            if (want < TPM_HEADER_SIZE || want > TPM_MAX_MESSAGE_SIZE) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                            "locality %d: the response header gives size %zu",
                            c->locality, want);
                return -1;
            }
        }
    }
    if (tis_read_sts(c, &sts, errp) < 0) {
        return -1;
    }
    if (!(sts & TPM_TIS_STS_VALID) || (sts & TPM_TIS_STS_DATA_AVAILABLE)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "locality %d: the TPM has more data than the response "
                    "header's %zu bytes (STS 0x%08x)",
                    c->locality, want, sts);
        return -1;
    }
    return 0;
}

static int tis_transmit(TisClient *c, const uint8_t *cmd, size_t len, GByteArray *rsp,
                        GError **errp)
{
    if (tis_request_locality(c, errp) < 0 || tis_send(c, cmd, len, errp) < 0 ||
        tis_recv(c, rsp, errp) < 0) {
        return -1;
    }
    /* commandReady frees the response buffer; then give the locality back. */
    tis_write_reg(c, "writel", TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    tis_relinquish_locality(c);
    return qtest_flush(c, errp);
}

/*
 * After a failure: abort any command and release the locality (or withdraw
 * the request), quietly. Replies still owed to lines sent before the failure
 * come first in the stream and are read as the replies to these.
 */
static void tis_abandon(TisClient *c)
{
    g_string_truncate(c->posted, 0);
    g_ptr_array_set_size(c->posted_cmds, 0);
    tis_write_reg(c, "writel", TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    tis_relinquish_locality(c);
    qtest_flush(c, NULL);
}

/* ---- stdin / stdout ---- */

/* Returns the bytes read; fewer than @len only at end of file. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len, GError **errp)
{
    ssize_t n = qemu_read_full(fd, buf, len);

    if (n < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "reading a command from stdin failed: %s", g_strerror(errno));
        return -1;
    }
    return n;
}

static int write_full(int fd, const uint8_t *buf, size_t len, GError **errp)
{
    if (qemu_write_full(fd, buf, len) != (ssize_t)len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "writing a response to stdout failed: %s", g_strerror(errno));
        return -1;
    }
    return 0;
}

/* Returns 1 with a command in @cmd, 0 at a clean end of input, -1 on error. */
static int read_command(GByteArray *cmd, GError **errp)
{
    uint8_t hdr[TPM_HEADER_SIZE];
    ssize_t n = read_full(STDIN_FILENO, hdr, sizeof(hdr), errp);

    if (n <= 0) {
        return n;
    }
    if (n < TPM_HEADER_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "stdin ended inside a command header (%zd of %d bytes)", n,
                    TPM_HEADER_SIZE);
        return -1;
    }
    uint32_t size = tpm_util_get_size_from_buffer(hdr, sizeof(hdr));
    if (size < TPM_HEADER_SIZE || size > TPM_MAX_MESSAGE_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "a command on stdin gives size %u (must be %d..%d)", size,
                    TPM_HEADER_SIZE, TPM_MAX_MESSAGE_SIZE);
        return -1;
    }
    g_byte_array_set_size(cmd, size);
    memcpy(cmd->data, hdr, TPM_HEADER_SIZE);
    n = read_full(STDIN_FILENO, cmd->data + TPM_HEADER_SIZE, size - TPM_HEADER_SIZE,
                  errp);
    if (n < 0) {
        return -1;
    }
    if ((size_t)n < size - TPM_HEADER_SIZE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "stdin ended inside a %u-byte command", size);
        return -1;
    }
    return 1;
}

/* ---- main ---- */

static int qtest_connect(const char *path, GError **errp)
{
    QemuSocketAddr addr = {
        .kind = QEMU_SOCKET_UNIX,
        .path = (char *)path,
    };
    int fd;

    if (strlen(path) > qemu_socket_unix_path_max()) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "qtest socket path '%s' is too long", path);
        return -1;
    }
    addr.name = g_strdup_printf("qtest socket '%s'", path);
    fd = qemu_socket_connect(&addr, errp);
    g_free(addr.name);
    return fd;
}

static int run(TisClient *c, GError **errp)
{
    g_autoptr(GByteArray) cmd = g_byte_array_new();
    g_autoptr(GByteArray) rsp = g_byte_array_new();

    if (tis_probe(c, errp) < 0) {
        return -1;
    }
    for (;;) {
        int r = read_command(cmd, errp);
        if (r <= 0) {
            return r;
        }
        if (tis_transmit(c, cmd->data, cmd->len, rsp, errp) < 0) {
            tis_abandon(c);
            return -1;
        }
        if (write_full(STDOUT_FILENO, rsp->data, rsp->len, errp) < 0) {
            return -1;
        }
    }
}

static int fail(const char *msg)
{
    error_report("%s", msg);
    return 1;
}

int main(int argc, char **argv)
{
    g_autofree char *qtest_path = NULL;
    int locality = 0;
    int timeout_ms = 120000;
    gboolean version = FALSE;
    GOptionEntry entries[] = {
        {"qtest", 'q', 0, G_OPTION_ARG_FILENAME, &qtest_path,
         "qtest unix socket of the device host (required)", "PATH"},
        {"locality", 'l', 0, G_OPTION_ARG_INT, &locality,
         "TIS locality to use, 0..4 (default 0)", "N"},
        {"timeout", 't', 0, G_OPTION_ARG_INT, &timeout_ms,
         "longest wait for a locality, readiness or a response, in ms "
         "(default 120000)",
         "MS"},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version and exit",
         NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- run raw TPM commands from stdin through a TPM TIS device over qtest");
    g_autoptr(GError) err = NULL;

    error_set_progname("qtpm-tis");
    g_option_context_set_summary(ctx,
                                 "Use as a tpm2-tss \"cmd\" TCTI:\n"
                                 "  tpm2_getrandom -T \"cmd:qtpm-tis --qtest q.sock\" 8");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        return fail(err->message);
    }
    if (version) {
        printf("qtpm-tis %s\n", QTPM_VERSION);
        return 0;
    }
    if (argc > 1) {
        g_autofree char *msg = g_strdup_printf("unexpected argument '%s'", argv[1]);
        return fail(msg);
    }
    if (!qtest_path) {
        return fail("--qtest PATH is required");
    }
    if (locality < 0 || locality >= TPM_TIS_NUM_LOCALITIES) {
        g_autofree char *msg = g_strdup_printf("--locality %d is out of range (0..%d)",
                                               locality, TPM_TIS_NUM_LOCALITIES - 1);
        return fail(msg);
    }
    if (timeout_ms <= 0) {
        g_autofree char *msg = g_strdup_printf(
            "--timeout %d must be a positive number of milliseconds", timeout_ms);
        return fail(msg);
    }
    signal(SIGPIPE, SIG_IGN);

    TisClient c = {
        .inbuf = g_string_new(NULL),
        .posted = g_string_new(NULL),
        .posted_cmds = g_ptr_array_new_with_free_func(g_free),
        .base = TPM_TIS_ADDR(locality, 0),
        .locality = locality,
        .timeout_ms = timeout_ms,
    };
    c.fd = qtest_connect(qtest_path, &err);
    int ret = 0;
    if (c.fd < 0 || run(&c, &err) < 0) {
        ret = fail(err->message);
    }
    if (c.fd >= 0) {
        close(c.fd);
    }
    g_string_free(c.inbuf, TRUE);
    g_string_free(c.posted, TRUE);
    g_ptr_array_free(c.posted_cmds, TRUE);
    return ret;
}
