/*
 * The swtpm socket server on the GLib main loop: one control client at a
 * time, a data channel passed with CMD_SET_DATAFD or accepted on data=, and
 * TPM commands delivered to the backend as its frontend. Framing and byte
 * order are the codec's (swtpm-codec.c); this file does the I/O and maps
 * control commands onto the backend's operations.
 */
#include "qemu/osdep.h"
#include <glib-unix.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include "crypto/key.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/option.h"
#include "qemu/sockets.h"
#include "qemu/swtpm-blob.h"
#include "sysemu/runstate.h"
#include "sysemu/tpm_backend.h"
#include "sysemu/tpm_util.h"
#include "export/swtpm-blob-seal.h"
#include "export/swtpm-codec.h"
#include "export/swtpm-migration-key.h"
#include "export/swtpm-server.h"

#define SWTPM_EXPORT_MODEL "swtpm-export"
#define SWTPM_BUFFER_MIN 1024
#define SWTPM_BUFFER_MAX 4096
/* A connection's input block at first: a TPM command or a small request. */
#define SWTPM_CONN_BUF_INITIAL 8192
#define SWTPM_LOCK_RETRY_MS 10
/*
 * Shared-storage migration: how long a target waits for the source to hand
 * the owner lock over, the same 3 s QEMU gives a failed source to relock.
 */
#define SWTPM_MIGRATION_LOCK_WAIT_MS 3000
/*
 * Answers a client has not taken yet: no more than this, and no stall longer
 * than this, or the client is dropped rather than held in memory.
 */
#define SWTPM_SEND_QUEUE_MAX (2 * 1024 * 1024)
#define SWTPM_SEND_STALL_MS 5000

/*
 * What the server implements; GET_CAPABILITY reports exactly this, less
 * what the backend lacks (export_caps).
 */
#define SWTPM_EXPORT_CAPS                                                  \
    (SWTPM_CAP_INIT | SWTPM_CAP_SHUTDOWN | SWTPM_CAP_GET_TPMESTABLISHED |  \
     SWTPM_CAP_SET_LOCALITY | SWTPM_CAP_CANCEL_TPM_CMD |                   \
     SWTPM_CAP_STORE_VOLATILE | SWTPM_CAP_RESET_TPMESTABLISHED |           \
     SWTPM_CAP_GET_STATEBLOB | SWTPM_CAP_SET_STATEBLOB | SWTPM_CAP_STOP |  \
     SWTPM_CAP_GET_CONFIG | SWTPM_CAP_SET_DATAFD |                         \
     SWTPM_CAP_SET_BUFFERSIZE | SWTPM_CAP_LOCK_STORAGE | SWTPM_CAP_HASHING | \
     SWTPM_CAP_GET_INFO)

static const char *const export_types[] = { "swtpm", NULL };

const QemuOptDesc swtpm_export_opts[] = {
    { .name = "type", .type = QEMU_OPT_STRING, .choices = export_types,
      .implied = true, .required = true },
    { .name = "id", .type = QEMU_OPT_STRING, .value_name = "ID",
      .required = true, .help = "the export's name" },
    { .name = "tpmdev", .type = QEMU_OPT_STRING, .value_name = "ID",
      .required = true, .missing_hint = "(the id of a -tpmdev)",
      .help = "the -tpmdev to export" },
    { .name = "ctrl", .type = QEMU_OPT_STRING,
      .value_name = "unix:PATH|tcp:HOST:PORT", .required = true,
      .help = "the control channel's listening socket" },
    { .name = "data", .type = QEMU_OPT_STRING,
      .value_name = "unix:PATH|tcp:HOST:PORT",
      .help = "a listening socket for the data channel (else CMD_SET_DATAFD)" },
    { .name = "mode", .type = QEMU_OPT_STRING, .value_name = "OCTAL",
      .help = "permissions of the unix control socket" },
    { .name = "uid", .type = QEMU_OPT_NUMBER, .value_name = "UID",
      .max = UINT32_MAX - 1, .help = "owner of the unix control socket" },
    { .name = "gid", .type = QEMU_OPT_NUMBER, .value_name = "GID",
      .max = UINT32_MAX - 1, .help = "group of the unix control socket" },
    { .name = "terminate", .type = QEMU_OPT_BOOL, .def_value_str = "off",
      .help = "exit when the control client goes away" },
    { .name = "incoming", .type = QEMU_OPT_BOOL, .def_value_str = "off",
      .help = "migration target on shared storage: read the image, take it "
              "when QEMU's state arrives" },
    { .name = "release-lock-outgoing", .type = QEMU_OPT_BOOL,
      .def_value_str = "off",
      .help = "migration source on shared storage: hand the image over once "
              "QEMU has read the state" },
    SWTPM_MIGRATION_KEY_OPTS,
    QEMU_OPT_DESC_END
};

/*
 * One connection: a control client or the data channel. Answers are written
 * without blocking; what the socket does not take at once waits in @out, and
 * no request is read while it does.
 */
typedef struct SwtpmConn {
    struct SwtpmExport *export;
    const char *name;       /* "control" or "data", for the log */
    int fd;
    guint watch;
    GByteArray *buf;        /* bytes of the request being received */
    guint buf_cap;          /* what buf holds without moving */
    GByteArray *out;        /* answer bytes not yet written, from out_off */
    guint out_off;
    guint out_watch;
    guint out_stall;
} SwtpmConn;

struct SwtpmExport {
    char *id;
    TPMBackend *be;
    QemuSocketAddr ctrl_addr;
    QemuSocketAddr data_addr;
    bool has_data_listener;
    bool terminate;

    int ctrl_listen_fd;
    guint ctrl_listen_watch;
    int data_listen_fd;
    guint data_listen_watch;
    SwtpmConn ctrl;
    SwtpmConn data;
    guint ctrl_deadline;

    bool tpm_running;
    /*
     * Blob types whose SET_STATEBLOB was refused since the client connected:
     * INIT would start the TPM without them, a fresh TPM in place of the one
     * that was to arrive.
     */
    unsigned refused_blobs;
    /* Blob types set since the client connected, for query-tpm. */
    unsigned set_blobs;
    bool data_passed;
    SwtpmSealKeys *seal_keys;
    /* Shared-storage migration (docs/swtpm-protocol.md "Shared storage"). */
    bool mig_incoming;          /* incoming=on */
    bool mig_release;           /* release-lock-outgoing=on */
    bool awaiting_image;        /* a target that does not own its store yet */
    bool image_unused;          /* taken, but no TPM command since: may go back */
    bool permanent_checked;     /* the permanent blob equals the image's */
    bool state_arrived;         /* some SET_STATEBLOB since the lock was taken */
    bool handed_over;           /* a source that released its store */
    /* A swtpm source's --migration-key (swtpm-migration-key=), or NULL. */
    SwtpmMigrationKey *swtpm_mkey;
    char *swtpm_mkey_id;
    uint8_t locality;
    uint32_t buffersize;

    /* The command in flight on the data channel. */
    bool cmd_in_flight;
    bool cmd_tcg_header;
    TPMBackendCmd cmd;
    uint8_t *cmd_in;
    uint8_t *cmd_out;
    uint32_t cmd_sent;      /* bytes of the answer the worker has sent */

    /*
     * The worker reads the data channel itself (docs/design.md "Backends"):
     * while @data_on_worker, only the worker touches data.fd, data.buf and
     * the cmd_* fields; the main loop takes the channel back before it
     * changes anything the data path reads.
     */
    bool data_on_worker;
    GSource *data_back;     /* the worker gave the channel back */
    GByteArray *data_rest;  /* worker: answer bytes the socket did not take */
    bool data_failed;       /* worker: the answer could not be sent */
};

static GList *swtpm_exports;

static void conn_init(SwtpmConn *c, SwtpmExport *e, const char *name)
{
    c->export = e;
    c->name = name;
    c->fd = -1;
    c->watch = 0;
    c->buf = g_byte_array_sized_new(SWTPM_CONN_BUF_INITIAL);
    c->buf_cap = SWTPM_CONN_BUF_INITIAL;
    c->out = g_byte_array_new();
    c->out_off = 0;
    c->out_watch = 0;
    c->out_stall = 0;
}

/*
 * A connection's input may hold a state blob (CMD_SET_STATEBLOB) or a TPM
 * command: it never moves to a bigger block without the old one wiped (a
 * GByteArray would realloc and free the copy as it is), and what is
 * consumed is wiped.
 */
static void conn_buf_append(SwtpmConn *c, const uint8_t *data, size_t len)
{
    if (c->buf->len + len > c->buf_cap) {
        guint cap = MAX(c->buf_cap * 2, c->buf->len + len);
        GByteArray *bigger = g_byte_array_sized_new(cap);

        g_byte_array_append(bigger, c->buf->data, c->buf->len);
        qcrypto_memwipe(c->buf->data, c->buf->len);
        g_byte_array_unref(c->buf);
        c->buf = bigger;
        c->buf_cap = cap;
    }
    g_byte_array_append(c->buf, data, len);
}

static void conn_buf_consume(SwtpmConn *c, size_t len)
{
    guint old_len = c->buf->len;

    g_byte_array_remove_range(c->buf, 0, len);
    qcrypto_memwipe(c->buf->data + c->buf->len, old_len - c->buf->len);
}

static void conn_buf_clear(SwtpmConn *c)
{
    qcrypto_memwipe(c->buf->data, c->buf->len);
    g_byte_array_set_size(c->buf, 0);
}

/* The queue may hold a state blob: wipe it. */
static void conn_drop_queue(SwtpmConn *c)
{
    if (c->out_watch) {
        g_source_remove(c->out_watch);
        c->out_watch = 0;
    }
    if (c->out_stall) {
        g_source_remove(c->out_stall);
        c->out_stall = 0;
    }
    qcrypto_memwipe(c->out->data, c->out->len);
    g_byte_array_set_size(c->out, 0);
    c->out_off = 0;
}

static bool conn_pending(SwtpmConn *c)
{
    return c->out->len > 0;
}

static void conn_close(SwtpmConn *c)
{
    if (c->watch) {
        g_source_remove(c->watch);
        c->watch = 0;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    conn_drop_queue(c);
    conn_buf_clear(c);
}

static bool parse_mode(const char *text, mode_t *mode, GError **errp)
{
    char *end;
    guint64 v;

    errno = 0;
    v = g_ascii_strtoull(text, &end, 8);
    if (!*text || *end || errno || v > 07777) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "mode=%s is not an octal file mode", text);
        return false;
    }
    *mode = v;
    return true;
}

bool swtpm_export_check_opts(GHashTable *opts, GError **errp)
{
    QemuSocketAddr addr = { 0 };
    const char *mode = qemu_opt_get(opts, "mode");
    bool unix_ctrl;
    mode_t m;

    if (!qemu_opts_validate(opts, swtpm_export_opts, "-export swtpm", errp)) {
        return false;
    }
    if (!qemu_socket_parse(qemu_opt_get(opts, "ctrl"), &addr, errp)) {
        return false;
    }
    unix_ctrl = addr.kind == QEMU_SOCKET_UNIX;
    if (unix_ctrl && !qemu_socket_check_unix_path(addr.path, errp)) {
        qemu_socket_addr_clear(&addr);
        return false;
    }
    qemu_socket_addr_clear(&addr);
    if (mode && !parse_mode(mode, &m, errp)) {
        return false;
    }
    if (!unix_ctrl && (mode || qemu_opt_get(opts, "uid") ||
                       qemu_opt_get(opts, "gid"))) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "mode=, uid= and gid= need a unix control socket");
        return false;
    }
    if (qemu_opt_get(opts, "data")) {
        if (!qemu_socket_parse(qemu_opt_get(opts, "data"), &addr, errp)) {
            return false;
        }
        if (addr.kind == QEMU_SOCKET_UNIX &&
            !qemu_socket_check_unix_path(addr.path, errp)) {
            qemu_socket_addr_clear(&addr);
            return false;
        }
        qemu_socket_addr_clear(&addr);
    }
    return swtpm_migration_key_check_opts(opts, errp);
}

/* ---- Answers ------------------------------------------------------------ */

static void conn_resume(SwtpmConn *c);
static gboolean conn_stalled(gpointer opaque);
static gboolean conn_writable(gint fd, GIOCondition cond, gpointer opaque);

static void conn_arm_stall(SwtpmConn *c, guint ms)
{
    if (c->out_stall) {
        g_source_remove(c->out_stall);
    }
    c->out_stall = g_timeout_add(ms, conn_stalled, c);
}

/* Writes what the socket takes now; false (errno set) if the connection failed. */
static bool conn_flush(SwtpmConn *c)
{
    while (c->out_off < c->out->len) {
        ssize_t n = send(c->fd, c->out->data + c->out_off,
                         c->out->len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EPIPE;
            }
            return false;
        }
        c->out_off += n;
        if (c->out_stall) {
            /* A client that takes its answers, however slowly, keeps them. */
            conn_arm_stall(c, SWTPM_SEND_STALL_MS);
        }
    }
    conn_drop_queue(c);
    return true;
}

/*
 * Queues an answer and writes what the socket takes. False (errno set) if the
 * connection failed; a client that lets its answers pile up is dropped from
 * the main loop a moment later, not here in the middle of a request.
 */
static bool conn_send(SwtpmConn *c, const void *buf, size_t len)
{
    bool waiting = conn_pending(c);
    int saved;

    if (c->fd < 0 || !len) {
        return true;
    }
    if (c->out->len - c->out_off + len > SWTPM_SEND_QUEUE_MAX) {
        conn_drop_queue(c);
        conn_arm_stall(c, 0);
        if (c->watch) {
            g_source_remove(c->watch);
            c->watch = 0;
        }
        return true;
    }
    g_byte_array_append(c->out, buf, len);
    if (waiting) {
        return true;
    }
    if (!conn_flush(c)) {
        saved = errno;
        conn_drop_queue(c);
        errno = saved;
        return false;
    }
    if (conn_pending(c) && !c->out_watch) {
        c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT | G_IO_HUP | G_IO_ERR,
                                     conn_writable, c);
        conn_arm_stall(c, SWTPM_SEND_STALL_MS);
        if (c->watch) {
            g_source_remove(c->watch);
            c->watch = 0;
        }
    }
    return true;
}

static void ctrl_send(SwtpmExport *e, const void *buf, size_t len)
{
    if (!conn_send(&e->ctrl, buf, len)) {
        qemu_log_warning("-export id=%s: cannot answer the control client: %s",
                         e->id, g_strerror(errno));
    }
}

static void ctrl_send_result(SwtpmExport *e, uint32_t result)
{
    uint8_t out[4];

    ctrl_send(e, out, swtpm_ctrl_encode_result(out, sizeof(out), result));
}

static uint32_t result_of(int ret)
{
    return ret < 0 ? SWTPM_RES_FAIL : SWTPM_RES_SUCCESS;
}

/* A backend error becomes a log line; the client gets only the code. */
static uint32_t log_result(SwtpmExport *e, const char *what, int ret,
                           GError *err)
{
    if (ret < 0 && err) {
        qemu_log_warning("-export id=%s: %s: %s", e->id, what, err->message);
    }
    return result_of(ret);
}

/* ---- Data channel ------------------------------------------------------- */

static void data_process(SwtpmExport *e);
static void data_resume(SwtpmExport *e);
static void mig_image_used(SwtpmExport *e);
static gboolean data_ready(gint fd, GIOCondition cond, gpointer opaque);

static void data_watch(SwtpmExport *e)
{
    if (e->data.fd >= 0 && !e->data.watch && !conn_pending(&e->data) &&
        !e->data_on_worker) {
        e->data.watch = g_unix_fd_add(e->data.fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                      data_ready, e);
    }
}

static gboolean data_listen_ready(gint fd, GIOCondition cond, gpointer opaque);

static void data_listen_watch(SwtpmExport *e)
{
    if (e->data_listen_fd >= 0 && !e->data_listen_watch) {
        e->data_listen_watch = g_unix_fd_add(e->data_listen_fd, G_IO_IN,
                                             data_listen_ready, e);
    }
}

static void data_worker_detach(SwtpmExport *e);

static void data_close(SwtpmExport *e)
{
    data_worker_detach(e);
    if (e->cmd_in_flight) {
        /* Its completion has nobody to answer: let it find nothing to do. */
        e->cmd_in_flight = false;
        tpm_backend_finish_sync(e->be);
    }
    conn_close(&e->data);
    e->data_passed = false;
    data_listen_watch(e);
}

static void data_send_response(SwtpmExport *e, const uint8_t *resp,
                               uint32_t len)
{
    uint8_t pre[4], post[4];
    bool ok = true;

    if (e->cmd_tcg_header) {
        swtpm_data_encode_tcg_prefix(pre, sizeof(pre), len);
        ok = conn_send(&e->data, pre, sizeof(pre));
    }
    ok = ok && conn_send(&e->data, resp, len);
    if (ok && e->cmd_tcg_header) {
        swtpm_data_encode_tcg_trailer(post, sizeof(post));
        ok = conn_send(&e->data, post, sizeof(post));
    }
    if (!ok) {
        conn_close(&e->data);
        data_listen_watch(e);
    }
}

static TPMVersion export_tpm_version(SwtpmExport *e)
{
    return tpm_backend_get_tpm_version(e->be) == TPM_VERSION_1_2
               ? TPM_VERSION_1_2 : TPM_VERSION_2_0;
}

/* The answer's length; a response too short to be one becomes a fatal error. */
static uint32_t export_response_len(SwtpmExport *e)
{
    uint32_t len = 0;

    if (e->cmd.out_len >= TPM_HEADER_SIZE) {
        len = MIN(e->cmd.out_len,
                  tpm_util_get_size_from_buffer(e->cmd.out, e->cmd.out_len));
    }
    if (len < TPM_HEADER_SIZE) {
        tpm_util_write_fatal_error_response(e->cmd_out, TPM_HEADER_SIZE,
                                            export_tpm_version(e));
        len = TPM_HEADER_SIZE;
    }
    return len;
}

/*
 * Worker: the command ran; send what the socket takes of a raw answer now,
 * rather than after the main loop has woken up for the completion (one
 * thread hop less per command). While a command is in flight the main loop
 * neither reads, writes nor closes the data channel (data_close and
 * swtpm_export_free wait for the worker first), and nothing is queued on
 * it; the completion sends whatever is left, as it does for framed answers.
 */
static void export_answer_from_worker(void *opaque, TPMBackendCmd *cmd)
{
    SwtpmExport *e = opaque;
    uint32_t len;
    ssize_t n;

    e->cmd_sent = 0;
    if (e->cmd_tcg_header || e->data.fd < 0 || conn_pending(&e->data)) {
        return;
    }
    len = export_response_len(e);
    do {
        n = send(e->data.fd, e->cmd_out, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        e->cmd_sent = n;
    }
}

/* Main loop: the backend answered e->cmd. */
static void export_request_completed(void *opaque, int ret)
{
    SwtpmExport *e = opaque;
    uint32_t len, sent = e->cmd_sent;

    if (!e->cmd_in_flight) {
        return;
    }
    e->cmd_in_flight = false;
    e->cmd_sent = 0;
    if (ret != 0) {
        e->cmd.out_len = 0;
    }
    len = export_response_len(e);
    if (e->data.fd >= 0) {
        if (sent < len) {
            data_send_response(e, e->cmd_out + sent, len - sent);
        }
        data_resume(e);
    }
}

/* Runs the first whole command in the data buffer, if there is one. */
static void data_process(SwtpmExport *e)
{
    uint32_t max = SWTPM_BUFFER_MAX;
    SwtpmDataFrame f;
    SwtpmParseStatus st;

    if (e->cmd_in_flight || e->data.fd < 0 || conn_pending(&e->data) ||
        e->data_on_worker) {
        return;
    }
    st = swtpm_data_parse(e->data.buf->data, e->data.buf->len, max, &f);
    if (st == SWTPM_PARSE_NEED_MORE) {
        return;
    }
    if (st == SWTPM_PARSE_ERROR) {
        qemu_log_warning("-export id=%s: a TPM command with a bad size field; "
                         "closing the data channel", e->id);
        if (e->data.watch) {
            g_source_remove(e->data.watch);
            e->data.watch = 0;
        }
        data_close(e);
        return;
    }
    e->cmd_tcg_header = f.tcg_header;
    if (f.tcg_header) {
        e->locality = f.locality;
    }
    memcpy(e->cmd_in, e->data.buf->data + f.cmd_offset, f.cmd_len);
    conn_buf_consume(&e->data, f.frame_len);
    if (!e->tpm_running || e->handed_over) {
        /*
         * How QEMU tells TPM 1.2 from 2.0 before CMD_INIT: the tag. A source
         * that handed its image over must not run what would write it.
         */
        tpm_util_write_fatal_error_response(e->cmd_out, TPM_HEADER_SIZE,
                                            export_tpm_version(e));
        data_send_response(e, e->cmd_out, TPM_HEADER_SIZE);
        data_process(e);
        return;
    }
    e->cmd = (TPMBackendCmd){
        .locality = e->locality,
        .in = e->cmd_in,
        .in_len = f.cmd_len,
        .out = e->cmd_out,
        .out_len = max,
    };
    e->cmd_in_flight = true;
    mig_image_used(e);
    /* No more reads until the answer is out: one command at a time. */
    if (e->data.watch) {
        g_source_remove(e->data.watch);
        e->data.watch = 0;
    }
    tpm_backend_deliver_request(e->be, &e->cmd);
}

static gboolean data_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    SwtpmExport *e = opaque;
    uint8_t chunk[4096];
    ssize_t n;

    n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        e->data.watch = 0;
        data_close(e);
        return G_SOURCE_REMOVE;
    }
    conn_buf_append(&e->data, chunk, n);
    data_process(e);
    return e->data.watch ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void data_attach(SwtpmExport *e, int fd)
{
    e->data.fd = fd;
    conn_buf_clear(&e->data);
    data_resume(e);
}

static gboolean data_listen_retry(gpointer opaque)
{
    SwtpmExport *e = opaque;

    e->data_listen_watch = 0;
    if (e->data.fd < 0) {
        data_listen_watch(e);
    }
    return G_SOURCE_REMOVE;
}

static gboolean data_listen_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    SwtpmExport *e = opaque;
    int client = qemu_socket_accept(fd);

    if (client < 0) {
        /* Out of descriptors: wait instead of spinning. */
        return qemu_socket_accept_back_off(&e->data_listen_watch, data_listen_retry, e)
            ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
    }
    if (e->data.fd >= 0) {
        close(client);
        return G_SOURCE_CONTINUE;
    }
    data_attach(e, client);
    /* One data client at a time, as swtpm. */
    e->data_listen_watch = 0;
    return G_SOURCE_REMOVE;
}

/*
 * ---- The data channel on the worker ----
 *
 * Once the TPM runs, a data channel carries nothing but TPM commands, one
 * at a time: the worker reads it, runs the command and writes the answer,
 * and the main loop is not woken at all. Everything else goes back to the
 * main loop's path above: a TPM that is not running, a source that handed
 * its image over, a bad frame, a hang-up, an answer the socket does not
 * take at once. Control commands take the channel back first (they change
 * the locality, the running state and the image the data path reads), all
 * but CMD_CANCEL_TPM_CMD, which must reach the command the worker runs.
 */

typedef enum DataStep {
    DATA_STEP_DONE,         /* answered; look for the next command */
    DATA_STEP_MORE,         /* no whole command yet: keep reading */
    DATA_STEP_BACK,         /* the main loop must take over */
} DataStep;

/* Worker: the main loop takes the channel back (data_back_dispatch). */
static bool data_hand_back(SwtpmExport *e)
{
    g_source_set_ready_time(e->data_back, 0);
    return false;
}

/* Worker: sends a framed or raw answer; what the socket does not take waits. */
static DataStep data_answer_on_worker(SwtpmExport *e, uint32_t len)
{
    uint8_t pre[4], post[4];
    struct iovec iov[3];
    int n_iov = 0;
    size_t total = 0, off;
    ssize_t n;

    if (e->cmd_tcg_header) {
        swtpm_data_encode_tcg_prefix(pre, sizeof(pre), len);
        iov[n_iov++] = (struct iovec){ pre, sizeof(pre) };
    }
    iov[n_iov++] = (struct iovec){ e->cmd_out, len };
    if (e->cmd_tcg_header) {
        swtpm_data_encode_tcg_trailer(post, sizeof(post));
        iov[n_iov++] = (struct iovec){ post, sizeof(post) };
    }
    for (int i = 0; i < n_iov; i++) {
        total += iov[i].iov_len;
    }
    do {
        n = sendmsg(e->data.fd, &(struct msghdr){ .msg_iov = iov,
                                                  .msg_iovlen = n_iov },
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        e->data_failed = true;
        return DATA_STEP_BACK;
    }
    if (n == (ssize_t)total) {
        return DATA_STEP_DONE;
    }
    off = MAX(n, 0);
    for (int i = 0; i < n_iov; i++) {
        if (off < iov[i].iov_len) {
            g_byte_array_append(e->data_rest, (uint8_t *)iov[i].iov_base + off,
                                iov[i].iov_len - off);
            off = 0;
        } else {
            off -= iov[i].iov_len;
        }
    }
    return DATA_STEP_BACK;
}

/* Worker: runs the first whole command in the buffer, as data_process does. */
static DataStep data_step_on_worker(SwtpmExport *e)
{
    SwtpmDataFrame f;

    switch (swtpm_data_parse(e->data.buf->data, e->data.buf->len,
                             SWTPM_BUFFER_MAX, &f)) {
    case SWTPM_PARSE_NEED_MORE:
        return DATA_STEP_MORE;
    case SWTPM_PARSE_ERROR:
        return DATA_STEP_BACK;  /* the main loop's data_process says why */
    default:
        break;
    }
    e->cmd_tcg_header = f.tcg_header;
    if (f.tcg_header) {
        e->locality = f.locality;
    }
    memcpy(e->cmd_in, e->data.buf->data + f.cmd_offset, f.cmd_len);
    conn_buf_consume(&e->data, f.frame_len);
    e->cmd = (TPMBackendCmd){
        .locality = e->locality,
        .in = e->cmd_in,
        .in_len = f.cmd_len,
        .out = e->cmd_out,
        .out_len = SWTPM_BUFFER_MAX,
    };
    mig_image_used(e);
    tpm_backend_run_cmd_on_worker(e->be, &e->cmd);
    return data_answer_on_worker(e, export_response_len(e));
}

/* Worker: the data socket is readable. */
static bool data_ready_on_worker(TPMBackend *tb, void *opaque)
{
    SwtpmExport *e = opaque;
    uint8_t chunk[4096];
    DataStep step;
    ssize_t n;

    do {
        n = read(e->data.fd, chunk, sizeof(chunk));
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return true;
    }
    if (n <= 0) {
        /* The main loop reads the hang-up again and closes the channel. */
        return data_hand_back(e);
    }
    conn_buf_append(&e->data, chunk, n);
    do {
        step = data_step_on_worker(e);
    } while (step == DATA_STEP_DONE);
    return step == DATA_STEP_MORE || data_hand_back(e);
}

/* Main loop: the channel is the main loop's again, with what the worker left. */
static void data_worker_detach(SwtpmExport *e)
{
    bool failed;

    if (!e->data_on_worker) {
        return;
    }
    tpm_backend_set_worker_fd(e->be, -1, NULL, NULL);
    e->data_on_worker = false;
    g_source_set_ready_time(e->data_back, -1);
    failed = e->data_failed;
    e->data_failed = false;
    if (!failed && e->data_rest->len) {
        failed = !conn_send(&e->data, e->data_rest->data, e->data_rest->len);
    }
    g_byte_array_set_size(e->data_rest, 0);
    if (failed) {
        data_close(e);
    }
}

/* Main loop: hands the channel to the worker if only TPM commands can come. */
static bool data_worker_attach(SwtpmExport *e)
{
    if (e->data_on_worker || e->data.fd < 0 || !e->tpm_running ||
        e->handed_over || e->cmd_in_flight || conn_pending(&e->data) ||
        tpm_backend_get_tpm_version(e->be) == TPM_VERSION_UNSPEC) {
        return false;
    }
    if (e->data.watch) {
        g_source_remove(e->data.watch);
        e->data.watch = 0;
    }
    e->data_on_worker = true;
    tpm_backend_set_worker_fd(e->be, e->data.fd, data_ready_on_worker, e);
    return true;
}

/*
 * Main loop: the data channel goes on: a whole command already buffered
 * runs here, the rest on the worker if it can.
 */
static void data_resume(SwtpmExport *e)
{
    data_watch(e);
    data_process(e);
    data_worker_attach(e);
}

static gboolean data_back_ready(gpointer opaque)
{
    SwtpmExport *e = opaque;

    if (e->data_on_worker) {
        /* Not data_resume: the worker just said it cannot go on. */
        data_worker_detach(e);
        data_watch(e);
        data_process(e);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean data_back_dispatch(GSource *source, GSourceFunc cb,
                                   gpointer opaque)
{
    g_source_set_ready_time(source, -1);
    return cb(opaque);
}

static GSourceFuncs data_back_funcs = {
    .dispatch = data_back_dispatch,
};

/* ---- Shared-storage migration ------------------------------------------ */

/*
 * The hand-off of docs/swtpm-protocol.md "Shared storage": a target
 * (incoming=on) reads the image until QEMU's state arrives, then owns it; a
 * source (release-lock-outgoing=on) gives it up once QEMU has read the state,
 * and takes it back with CMD_LOCK_STORAGE. Never two owners: the store's
 * owner lock is the only way to write.
 */

/* Target: become the store's owner; the TPM now starts from it. */
static bool mig_take_image(SwtpmExport *e, const char *what)
{
    g_autoptr(GError) err = NULL;

    if (!e->awaiting_image) {
        return true;
    }
    if (tpm_backend_lock_storage(e->be, SWTPM_MIGRATION_LOCK_WAIT_MS, &err) < 0) {
        qemu_log_warning("-export id=%s: %s: the source has not handed the "
                         "image over within %d ms (%s)", e->id, what,
                         SWTPM_MIGRATION_LOCK_WAIT_MS, err->message);
        return false;
    }
    tpm_backend_incoming_done(e->be);
    e->awaiting_image = false;
    e->image_unused = true;
    e->state_arrived = false;
    e->permanent_checked = false;
    return true;
}

/*
 * Target: hand a taken but unused image back (TPM stopped, image flushed and
 * inactive, owner lock released), so a failing migration's source can
 * relock. Blobs that arrived are forgotten.
 */
static void mig_give_image_back(SwtpmExport *e)
{
    g_autoptr(GError) err = NULL;

    if (!e->mig_incoming || e->awaiting_image || !e->image_unused) {
        return;
    }
    tpm_backend_stop(e->be);
    e->tpm_running = false;
    for (int t = TPM_STATE_BLOB_PERMANENT; t <= TPM_STATE_BLOB_SAVESTATE; t++) {
        tpm_backend_set_state_blob(e->be, (TPMStateBlobType)t, NULL, 0, NULL);
    }
    if (tpm_backend_unlock_storage(e->be, &err) < 0) {
        qemu_log_warning("-export id=%s: cannot give the image back to the "
                         "migration source: %s", e->id, err->message);
        return;
    }
    e->awaiting_image = true;
    e->image_unused = false;
    qemu_log_warning("-export id=%s: the migrated state was not used; the "
                     "image is handed back to the migration source", e->id);
}

/* Target, CMD_SET_STATEBLOB: 0 to go on, or the result that refuses @data. */
static uint32_t mig_blob_arrives(SwtpmExport *e, uint32_t type,
                                 const uint8_t *data, size_t len)
{
    g_autoptr(GError) err = NULL;
    int same;

    if (!e->mig_incoming) {
        return SWTPM_RES_SUCCESS;
    }
    if (!mig_take_image(e, "CMD_SET_STATEBLOB")) {
        return SWTPM_RES_FAIL;
    }
    if (!e->image_unused) {
        return SWTPM_RES_SUCCESS;
    }
    e->state_arrived = true;
    if (type != TPM_STATE_BLOB_PERMANENT) {
        return SWTPM_RES_SUCCESS;
    }
    /*
     * On shared storage the source's permanent state is in the image
     * already: libtpms writes it whenever it changes, and QEMU stopped the
     * VM before reading it. Different bytes mean another image, an old
     * stream, or a source that wrote after the hand-off.
     */
    same = tpm_backend_stored_blob_equal(e->be, TPM_STATE_BLOB_PERMANENT, data,
                                         len, &err);
    if (same <= 0) {
        if (same < 0) {
            qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: %s", e->id,
                             err->message);
        } else {
            qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: the permanent "
                             "state blob is not the permanent state in the "
                             "shared image (a copy of the image, an old "
                             "stream, or a source that wrote after the "
                             "hand-off)", e->id);
        }
        mig_give_image_back(e);
        return SWTPM_RES_FAIL;
    }
    e->permanent_checked = true;
    return SWTPM_RES_SUCCESS;
}

/* Target, CMD_INIT: 0 to go on, or the result that refuses it. */
static uint32_t mig_before_init(SwtpmExport *e)
{
    if (!e->mig_incoming) {
        return SWTPM_RES_SUCCESS;
    }
    if (!mig_take_image(e, "CMD_INIT")) {
        return SWTPM_RES_FAIL;
    }
    if (e->image_unused && e->state_arrived && !e->permanent_checked) {
        qemu_log_warning("-export id=%s: CMD_INIT: refused: state blobs "
                         "arrived without the permanent one, which must match "
                         "the shared image", e->id);
        mig_give_image_back(e);
        return SWTPM_RES_FAIL;
    }
    return SWTPM_RES_SUCCESS;
}

static void mig_after_init(SwtpmExport *e, uint32_t result)
{
    if (result != SWTPM_RES_SUCCESS) {
        mig_give_image_back(e);
    }
}

/* Target: QEMU runs the migrated VM; the image is ours for good. */
static void mig_image_used(SwtpmExport *e)
{
    e->image_unused = false;
}

/*
 * Source, after CMD_GET_STATEBLOB of @type was answered @result: QEMU reads
 * savestate last, so then the image goes. Returns the result to send.
 */
static uint32_t mig_blob_read(SwtpmExport *e, uint32_t type, uint32_t result)
{
    g_autoptr(GError) err = NULL;

    if (!e->mig_release || e->handed_over ||
        type != TPM_STATE_BLOB_SAVESTATE ||
        (result != SWTPM_RES_SUCCESS && result != SWTPM_RES_RETRY)) {
        return result;
    }
    if (tpm_backend_unlock_storage(e->be, &err) < 0) {
        qemu_log_warning("-export id=%s: CMD_GET_STATEBLOB: cannot hand the "
                         "image over: %s", e->id, err->message);
        return SWTPM_RES_FAIL;
    }
    e->handed_over = true;
    return result;
}

/* Source: commands that would write the image it no longer owns. */
static bool mig_refuses(SwtpmExport *e, uint32_t cmd)
{
    if (!e->handed_over) {
        return false;
    }
    switch (cmd) {
    case SWTPM_CMD_INIT:
    case SWTPM_CMD_SET_STATEBLOB:
    case SWTPM_CMD_STORE_VOLATILE:
    case SWTPM_CMD_RESET_TPMESTABLISHED:
    case SWTPM_CMD_HASH_START:
    case SWTPM_CMD_HASH_DATA:
    case SWTPM_CMD_HASH_END:
        qemu_log_warning("-export id=%s: %s: refused: the image was handed "
                         "over to the migration target (CMD_LOCK_STORAGE "
                         "takes it back)", e->id, swtpm_ctrl_cmd_name(cmd));
        return true;
    default:
        return false;
    }
}

/* Source taking its image back: its running TPM must still be the image's. */
static bool mig_image_still_ours(SwtpmExport *e)
{
    g_autoptr(GError) err = NULL;
    uint8_t *perm = NULL;
    size_t len = 0;
    int same;

    if (!e->tpm_running) {
        return true;
    }
    same = tpm_backend_get_state_blob(e->be, TPM_STATE_BLOB_PERMANENT, &perm,
                                      &len, &err);
    if (same > 0) {
        same = tpm_backend_stored_blob_equal(e->be, TPM_STATE_BLOB_PERMANENT,
                                             perm, len, &err);
    }
    qcrypto_free_wiped(&perm, len);
    if (same < 0) {
        qemu_log_warning("-export id=%s: CMD_LOCK_STORAGE: %s", e->id,
                         err->message);
    } else if (same == 0) {
        qemu_log_warning("-export id=%s: CMD_LOCK_STORAGE: refused: the "
                         "image's permanent state changed while it was handed "
                         "over; this TPM no longer matches it", e->id);
    }
    return same > 0;
}

/* CMD_LOCK_STORAGE: QEMU's source after a failed migration, among others. */
static uint32_t mig_lock_storage(SwtpmExport *e, uint32_t retries)
{
    g_autoptr(GError) err = NULL;
    int ret;

    if (!tpm_backend_has_storage(e->be)) {
        return SWTPM_RES_FAIL;
    }
    ret = tpm_backend_lock_storage(
        e->be, (int)MIN(retries, 100000u) * SWTPM_LOCK_RETRY_MS, &err);
    if (ret < 0) {
        return log_result(e, "CMD_LOCK_STORAGE", ret, err);
    }
    if (e->awaiting_image) {
        tpm_backend_incoming_done(e->be);
        e->awaiting_image = false;
        e->image_unused = true;
        e->state_arrived = e->permanent_checked = false;
    }
    if (e->handed_over) {
        if (!mig_image_still_ours(e)) {
            tpm_backend_unlock_storage(e->be, NULL);
            return SWTPM_RES_FAIL;
        }
        e->handed_over = false;
    }
    return SWTPM_RES_SUCCESS;
}

/* Reads the options; a target checks its key over the whole store. */
static bool mig_setup(SwtpmExport *e, GHashTable *opts, GError **errp)
{
    if (!qemu_opt_get_bool(opts, "incoming", false, &e->mig_incoming, errp) ||
        !qemu_opt_get_bool(opts, "release-lock-outgoing", false,
                           &e->mig_release, errp)) {
        return false;
    }
    if ((e->mig_incoming || e->mig_release) &&
        !tpm_backend_has_storage(e->be)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "incoming= and release-lock-outgoing= need a -tpmdev with "
                    "state storage, and tpmdev=%s has none",
                    tpm_backend_get_id(e->be));
        return false;
    }
    if (!e->mig_incoming) {
        return true;
    }
    /* Every blob, the permanent state's included, opens under our key. */
    if (tpm_backend_check_storage(e->be, errp) < 0) {
        return false;
    }
    e->awaiting_image = true;
    return true;
}

/* ---- Control commands ---------------------------------------------------- */

static uint32_t ctrl_init(SwtpmExport *e, uint32_t flags)
{
    g_autoptr(GError) err = NULL;
    uint32_t result;
    int ret;

    if (e->refused_blobs) {
        qemu_log_warning("-export id=%s: CMD_INIT: refused: a state blob was "
                         "refused and the TPM would start without it", e->id);
        return SWTPM_RES_FAIL;
    }
    if (mig_before_init(e) != SWTPM_RES_SUCCESS) {
        return SWTPM_RES_FAIL;
    }
    if (e->tpm_running) {
        tpm_backend_stop(e->be);
        e->tpm_running = false;
    }
    ret = tpm_backend_init(e->be, e->buffersize,
                           flags & SWTPM_INIT_FLAG_DELETE_VOLATILE
                               ? TPM_BACKEND_INIT_DELETE_VOLATILE : 0,
                           &err);
    e->tpm_running = ret == 0;
    result = log_result(e, "CMD_INIT", ret, err);
    mig_after_init(e, result);
    return result;
}

static void ctrl_stop(SwtpmExport *e)
{
    tpm_backend_stop(e->be);
    e->tpm_running = false;
}

static void ctrl_set_buffersize(SwtpmExport *e, uint32_t size)
{
    uint8_t out[16];
    uint32_t in_use;

    if (size && e->tpm_running) {
        ctrl_send_result(e, SWTPM_RES_BAD_ORDINAL);
        return;
    }
    if (size) {
        e->buffersize = CLAMP(size, SWTPM_BUFFER_MIN, SWTPM_BUFFER_MAX);
    }
    in_use = e->tpm_running ? tpm_backend_get_buffer_size(e->be) : e->buffersize;
    ctrl_send(e, out, swtpm_ctrl_encode_buffersize(out, sizeof(out),
                                                   SWTPM_RES_SUCCESS, in_use,
                                                   SWTPM_BUFFER_MIN,
                                                   SWTPM_BUFFER_MAX));
}

/* The backend's key, or false when its state is not under one. */
static bool export_get_key(SwtpmExport *e, QCryptoKey *key)
{
    *key = (QCryptoKey){ 0 };
    return tpm_backend_get_state_key(e->be, key, NULL) == 0 &&
           key->kind != QCRYPTO_KEY_NONE;
}

static bool export_has_key(SwtpmExport *e)
{
    QCryptoKey key;

    return export_get_key(e, &key);
}

/*
 * Under a key a blob leaves only sealed, whatever PTM_STATE_FLAG_DECRYPTED
 * asks: QEMU always asks for plaintext and writes it into its migration
 * stream. Replaces *@data by the sealed blob.
 */
static int export_seal_blob(SwtpmExport *e, const QCryptoKey *key,
                            uint32_t type, uint8_t **data, size_t *len,
                            GError **errp)
{
    uint8_t *sealed;
    size_t sealed_len;

    sealed = swtpm_blob_seal(e->seal_keys, key, type, *data, *len, &sealed_len,
                             errp);
    qcrypto_free_wiped(data, *len);
    *len = 0;
    if (!sealed) {
        return -1;
    }
    *data = sealed;
    *len = sealed_len;
    return 0;
}

static void ctrl_get_stateblob(SwtpmExport *e, const SwtpmCtrlRequest *r)
{
    g_autoptr(GError) err = NULL;
    uint8_t hdr[SWTPM_GET_STATE_RESP_HDR_SIZE];
    uint8_t *data = NULL, *answer;
    uint32_t type = r->u.get_state.type, off = r->u.get_state.offset;
    uint32_t result = SWTPM_RES_SUCCESS, len = 0, flags = 0;
    size_t blob_len = 0;
    QCryptoKey key;
    int ret;

    if (type < SWTPM_BLOB_TYPE_PERMANENT || type > SWTPM_BLOB_TYPE_SAVESTATE) {
        result = SWTPM_RES_BAD_PARAMETER;
    } else {
        ret = tpm_backend_get_state_blob(e->be, (TPMStateBlobType)type, &data,
                                         &blob_len, &err);
        if (ret > 0 && export_get_key(e, &key)) {
            ret = export_seal_blob(e, &key, type, &data, &blob_len, &err);
            ret = ret < 0 ? ret : 1;
            flags = SWTPM_STATE_FLAG_ENCRYPTED;
        }
        if (ret < 0) {
            result = log_result(e, "CMD_GET_STATEBLOB", ret, err);
            flags = 0;
        } else if (ret == 0) {
            result = SWTPM_RES_RETRY;
        } else if (off < blob_len) {
            len = blob_len - off;
        }
        result = mig_blob_read(e, type, result);
        if (result != SWTPM_RES_SUCCESS) {
            len = 0;
            flags = 0;
        }
    }
    swtpm_ctrl_encode_stateblob_header(hdr, sizeof(hdr), result, flags, len,
                                       len);
    /*
     * One write for header and data: clients such as swtpm_ioctl take an
     * answer from a single read.
     */
    answer = g_malloc(sizeof(hdr) + len);
    memcpy(answer, hdr, sizeof(hdr));
    if (len) {
        memcpy(answer + sizeof(hdr), data + off, len);
    }
    ctrl_send(e, answer, sizeof(hdr) + len);
    qcrypto_free_wiped(&answer, sizeof(hdr) + len);
    qcrypto_free_wiped(&data, blob_len);
}

/* Opens a sealed blob into *@plain, or logs why not (one sentence). */
static bool export_open_blob(SwtpmExport *e, uint32_t type, const uint8_t *in,
                             size_t len, uint8_t **plain, size_t *plain_len)
{
    const char *label = tpm_state_blob_label((TPMStateBlobType)type);
    QCryptoKey key;

    if (!export_get_key(e, &key)) {
        qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: the %s state blob "
                         "is sealed and tpmdev=%s has no key to open it",
                         e->id, label, tpm_backend_get_id(e->be));
        return false;
    }
    switch (swtpm_blob_open(e->seal_keys, &key, type, in, len, plain,
                            plain_len)) {
    case SWTPM_SEAL_OK:
        return true;
    case SWTPM_SEAL_WRONG_KEY:
        qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: the %s state blob "
                         "was sealed under another key", e->id, label);
        return false;
    case SWTPM_SEAL_DAMAGED:
    default:
        qemu_log_warning("-export id=%s: CMD_SET_STATEBLOB: the sealed %s "
                         "state blob is damaged", e->id, label);
        return false;
    }
}

static uint32_t ctrl_set_stateblob(SwtpmExport *e, const SwtpmCtrlRequest *r)
{
    g_autoptr(GError) err = NULL;
    uint32_t type = r->u.set_state.type;
    const uint8_t *data = r->u.set_state.data;
    size_t len = r->u.set_state.length;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    uint32_t result;
    int ret;

    if (e->tpm_running) {
        return SWTPM_RES_BAD_ORDINAL;
    }
    if (type < SWTPM_BLOB_TYPE_PERMANENT || type > SWTPM_BLOB_TYPE_SAVESTATE) {
        return SWTPM_RES_BAD_PARAMETER;
    }
    if (r->u.set_state.flags & SWTPM_STATE_FLAG_ENCRYPTED) {
        if (!export_open_blob(e, type, data, len, &plain, &plain_len)) {
            e->refused_blobs |= 1u << type;
            return SWTPM_RES_DECRYPT_ERROR;
        }
        data = plain;
        len = plain_len;
    } else if (swtpm_blob_is_migration(data, len)) {
        /* A VM coming from swtpm: its blobs carry swtpm's wrapping. */
        uint32_t res = swtpm_migration_key_open_blob(
            e->id, e->swtpm_mkey, e->swtpm_mkey_id,
            tpm_state_blob_label((TPMStateBlobType)type), data, len, &plain,
            &plain_len);

        if (res != SWTPM_RES_SUCCESS) {
            e->refused_blobs |= 1u << type;
            return res;
        }
        data = plain;
        len = plain_len;
    }
    result = mig_blob_arrives(e, type, data, len);
    if (result != SWTPM_RES_SUCCESS) {
        qcrypto_free_wiped(&plain, plain_len);
        e->refused_blobs |= 1u << type;
        return result;
    }
    ret = tpm_backend_set_state_blob(e->be, (TPMStateBlobType)type, data, len,
                                     &err);
    qcrypto_free_wiped(&plain, plain_len);
    if (ret == 0) {
        e->refused_blobs &= ~(1u << type);
        e->set_blobs |= 1u << type;
    }
    return log_result(e, "CMD_SET_STATEBLOB", ret, err);
}

static uint32_t ctrl_set_datafd(SwtpmExport *e, int *fd)
{
    struct stat st;

    if (e->data.fd >= 0) {
        return SWTPM_RES_IOERROR;
    }
    if (*fd < 0 || fstat(*fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        return SWTPM_RES_BAD_PARAMETER;
    }
    data_attach(e, *fd);
    e->data_passed = true;
    *fd = -1;
    return SWTPM_RES_SUCCESS;
}

/* CMD_HASH_*: the TPM's own result code goes back, as swtpm passes on libtpms's. */
static uint32_t ctrl_hash(SwtpmExport *e, const SwtpmCtrlRequest *r)
{
    g_autoptr(GError) err = NULL;
    int ret;

    switch (r->cmd) {
    case SWTPM_CMD_HASH_START:
        ret = tpm_backend_hash_start(e->be, &err);
        break;
    case SWTPM_CMD_HASH_DATA:
        ret = tpm_backend_hash_data(e->be, r->u.hash_data.data,
                                    r->u.hash_data.length, &err);
        break;
    default:
        ret = tpm_backend_hash_end(e->be, &err);
        break;
    }
    if (ret < 0) {
        return log_result(e, swtpm_ctrl_cmd_name(r->cmd), ret, err);
    }
    return ret;
}

/*
 * CMD_GET_INFO: the JSON text with its NUL, from @offset, as swtpm sends it;
 * a client whose text does not fit one answer asks again further on.
 */
static void ctrl_get_info(SwtpmExport *e, const SwtpmCtrlRequest *r)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *json = NULL;
    g_autofree uint8_t *out = NULL;
    uint64_t flags = r->u.get_info.flags;
    uint32_t off = r->u.get_info.offset;
    size_t total, len;

    if (tpm_backend_get_info(e->be, flags, &json, &err) < 0) {
        ctrl_send_result(e, log_result(e, "CMD_GET_INFO", -1, err));
        return;
    }
    total = strlen(json) + 1;
    if (off >= total - 1) {
        ctrl_send_result(e, SWTPM_RES_BAD_PARAMETER);
        return;
    }
    len = MIN(total - off, SWTPM_GET_INFO_CHUNK_MAX);
    /* One write: swtpm_ioctl takes the answer from a single read. */
    out = g_malloc(SWTPM_GET_INFO_RESP_HDR_SIZE + len);
    swtpm_ctrl_encode_info_header(out, SWTPM_GET_INFO_RESP_HDR_SIZE,
                                  SWTPM_RES_SUCCESS, total, len);
    memcpy(out + SWTPM_GET_INFO_RESP_HDR_SIZE, json + off, len);
    ctrl_send(e, out, SWTPM_GET_INFO_RESP_HDR_SIZE + len);
}

/* Needs a running TPM (swtpm answers TPM_BAD_ORDINAL otherwise). */
static bool needs_running(uint32_t cmd)
{
    switch (cmd) {
    case SWTPM_CMD_GET_TPMESTABLISHED:
    case SWTPM_CMD_RESET_TPMESTABLISHED:
    case SWTPM_CMD_CANCEL_TPM_CMD:
    case SWTPM_CMD_STORE_VOLATILE:
    case SWTPM_CMD_GET_STATEBLOB:
    case SWTPM_CMD_HASH_START:
    case SWTPM_CMD_HASH_DATA:
    case SWTPM_CMD_HASH_END:
        return true;
    default:
        return false;
    }
}

static uint64_t export_caps(SwtpmExport *e)
{
    uint64_t caps = SWTPM_EXPORT_CAPS;

    if (!tpm_backend_has_hashing(e->be)) {
        caps &= ~SWTPM_CAP_HASHING;
    }
    if (!tpm_backend_has_info(e->be)) {
        caps &= ~SWTPM_CAP_GET_INFO;
    }
    /* The TCG/mssim header is TPM 2.0's. */
    if (export_tpm_version(e) != TPM_VERSION_2_0) {
        caps &= ~SWTPM_CAP_SEND_COMMAND_HEADER;
    } else {
        caps |= SWTPM_CAP_SEND_COMMAND_HEADER;
    }
    return caps;
}

static void ctrl_dispatch(SwtpmExport *e, const SwtpmCtrlRequest *r, int *fd)
{
    g_autoptr(GError) err = NULL;
    uint8_t out[8];
    uint64_t cap = swtpm_ctrl_cmd_cap(r->cmd);

    if (cap && !(export_caps(e) & cap)) {
        ctrl_send_result(e, SWTPM_RES_BAD_ORDINAL);
        return;
    }
    if (needs_running(r->cmd) && !e->tpm_running) {
        ctrl_send_result(e, SWTPM_RES_BAD_ORDINAL);
        return;
    }
    if (mig_refuses(e, r->cmd)) {
        ctrl_send_result(e, SWTPM_RES_FAIL);
        return;
    }
    switch (r->cmd) {
    case SWTPM_CMD_GET_CAPABILITY:
        ctrl_send(e, out, swtpm_ctrl_encode_caps(out, sizeof(out), export_caps(e)));
        break;
    case SWTPM_CMD_INIT:
        ctrl_send_result(e, ctrl_init(e, r->u.init_flags));
        break;
    case SWTPM_CMD_STOP:
        ctrl_stop(e);
        ctrl_send_result(e, SWTPM_RES_SUCCESS);
        break;
    case SWTPM_CMD_SHUTDOWN:
        ctrl_stop(e);
        ctrl_send_result(e, SWTPM_RES_SUCCESS);
        qemu_system_shutdown_request("host-qmp-quit");
        break;
    case SWTPM_CMD_GET_TPMESTABLISHED:
        ctrl_send(e, out, swtpm_ctrl_encode_established(
                              out, sizeof(out), SWTPM_RES_SUCCESS,
                              tpm_backend_get_tpm_established_flag(e->be)));
        break;
    case SWTPM_CMD_SET_LOCALITY:
        if (r->u.locality > 4) {
            ctrl_send_result(e, SWTPM_RES_BAD_LOCALITY);
            break;
        }
        e->locality = r->u.locality;
        ctrl_send_result(e, SWTPM_RES_SUCCESS);
        break;
    case SWTPM_CMD_RESET_TPMESTABLISHED:
        if (r->u.locality > 4) {
            ctrl_send_result(e, SWTPM_RES_BAD_LOCALITY);
            break;
        }
        ctrl_send_result(e, result_of(tpm_backend_reset_tpm_established_flag(
                                e->be, r->u.locality)));
        break;
    case SWTPM_CMD_HASH_START:
    case SWTPM_CMD_HASH_DATA:
    case SWTPM_CMD_HASH_END:
        ctrl_send_result(e, ctrl_hash(e, r));
        break;
    case SWTPM_CMD_CANCEL_TPM_CMD:
        tpm_backend_cancel_cmd(e->be);
        ctrl_send_result(e, SWTPM_RES_SUCCESS);
        break;
    case SWTPM_CMD_STORE_VOLATILE: {
        int ret = tpm_backend_store_volatile(e->be, &err);

        ctrl_send_result(e, log_result(e, "CMD_STORE_VOLATILE", ret, err));
        break;
    }
    case SWTPM_CMD_GET_STATEBLOB:
        ctrl_get_stateblob(e, r);
        break;
    case SWTPM_CMD_SET_STATEBLOB:
        ctrl_send_result(e, ctrl_set_stateblob(e, r));
        break;
    case SWTPM_CMD_GET_CONFIG:
        ctrl_send(e, out, swtpm_ctrl_encode_config(
                              out, sizeof(out), SWTPM_RES_SUCCESS,
                              export_has_key(e) ? SWTPM_CONFIG_FLAG_FILE_KEY
                                                : 0));
        break;
    case SWTPM_CMD_SET_DATAFD:
        ctrl_send_result(e, ctrl_set_datafd(e, fd));
        break;
    case SWTPM_CMD_SET_BUFFERSIZE:
        ctrl_set_buffersize(e, r->u.buffersize);
        break;
    case SWTPM_CMD_GET_INFO:
        ctrl_get_info(e, r);
        break;
    case SWTPM_CMD_LOCK_STORAGE:
        ctrl_send_result(e, mig_lock_storage(e, r->u.lock_retries));
        break;
    default:
        ctrl_send_result(e, SWTPM_RES_BAD_ORDINAL);
        break;
    }
}

/* ---- Control channel ----------------------------------------------------- */

/*
 * The data channel comes back from the worker for the command, which may
 * change what the data path reads (the locality, the running TPM, the
 * image), and goes back once it is answered. CMD_CANCEL_TPM_CMD must reach
 * the command the worker runs, so it leaves the channel where it is.
 */
static void ctrl_dispatch_data_aside(SwtpmExport *e, const SwtpmCtrlRequest *r,
                                     int *fd)
{
    if (r->cmd == SWTPM_CMD_CANCEL_TPM_CMD) {
        ctrl_dispatch(e, r, fd);
        return;
    }
    data_worker_detach(e);
    ctrl_dispatch(e, r, fd);
    data_resume(e);
}

static gboolean ctrl_listen_ready(gint fd, GIOCondition cond, gpointer opaque);

static void ctrl_listen_watch(SwtpmExport *e)
{
    if (e->ctrl_listen_fd >= 0 && !e->ctrl_listen_watch) {
        e->ctrl_listen_watch = g_unix_fd_add(e->ctrl_listen_fd, G_IO_IN,
                                             ctrl_listen_ready, e);
    }
}

static gboolean ctrl_ready(gint fd, GIOCondition cond, gpointer opaque);

static void ctrl_watch(SwtpmExport *e)
{
    if (e->ctrl.fd >= 0 && !e->ctrl.watch && !conn_pending(&e->ctrl)) {
        e->ctrl.watch = g_unix_fd_add(e->ctrl.fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                      ctrl_ready, e);
    }
}

static void ctrl_client_gone(SwtpmExport *e)
{
    if (e->ctrl_deadline) {
        g_source_remove(e->ctrl_deadline);
        e->ctrl_deadline = 0;
    }
    conn_close(&e->ctrl);
    /* A target whose QEMU went away before using the image gives it back. */
    mig_give_image_back(e);
    /* The next client decides afresh what the TPM starts from. */
    e->refused_blobs = 0;
    e->set_blobs = 0;
    if (e->terminate) {
        qemu_system_shutdown_request("host-qmp-quit");
        return;
    }
    ctrl_listen_watch(e);
}

/* A request still partial after swtpm's deadline: refuse it, drop the client. */
static gboolean ctrl_deadline_passed(gpointer opaque)
{
    SwtpmExport *e = opaque;

    e->ctrl_deadline = 0;
    ctrl_send_result(e, SWTPM_RES_BAD_PARAMETER);
    ctrl_client_gone(e);
    return G_SOURCE_REMOVE;
}

static gboolean ctrl_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    SwtpmExport *e = opaque;
    g_autoptr(GError) err = NULL;
    uint8_t chunk[4096];
    SwtpmCtrlRequest r;
    SwtpmParseStatus st;
    int passed_fd = -1;
    ssize_t n;

    n = qemu_socket_recv_fd(fd, chunk, sizeof(chunk), &passed_fd, &err);
    if (n <= 0) {
        e->ctrl.watch = 0;
        ctrl_client_gone(e);
        return G_SOURCE_REMOVE;
    }
    if (!e->ctrl.buf->len) {
        e->ctrl_deadline = g_timeout_add(SWTPM_CTRL_DEADLINE_MS,
                                         ctrl_deadline_passed, e);
    }
    conn_buf_append(&e->ctrl, chunk, n);
    st = swtpm_ctrl_parse(e->ctrl.buf->data, e->ctrl.buf->len, &r);
    if (st == SWTPM_PARSE_NEED_MORE) {
        if (passed_fd >= 0) {
            close(passed_fd);
        }
        return G_SOURCE_CONTINUE;
    }
    g_source_remove(e->ctrl_deadline);
    e->ctrl_deadline = 0;
    if (st == SWTPM_PARSE_ERROR) {
        ctrl_send_result(e, r.result);
        if (r.result == SWTPM_RES_SIZE) {
            /* The announced data would follow: no way back into step. */
            if (passed_fd >= 0) {
                close(passed_fd);
            }
            e->ctrl.watch = 0;
            ctrl_client_gone(e);
            return G_SOURCE_REMOVE;
        }
    } else {
        ctrl_dispatch_data_aside(e, &r, &passed_fd);
    }
    if (passed_fd >= 0) {
        close(passed_fd);
    }
    conn_buf_clear(&e->ctrl);
    /* An answer still queued stops the reading (conn_send). */
    return e->ctrl.watch ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* ---- Queued answers ------------------------------------------------------ */

/* The queue drained, or failed and was dropped: read requests again. */
static void conn_resume(SwtpmConn *c)
{
    SwtpmExport *e = c->export;

    if (c == &e->ctrl) {
        ctrl_watch(e);
    } else {
        data_resume(e);
    }
}

static gboolean conn_writable(gint fd, GIOCondition cond, gpointer opaque)
{
    SwtpmConn *c = opaque;
    guint self = c->out_watch;

    c->out_watch = 0;
    if (!conn_flush(c)) {
        /* Reading again finds the hang-up and closes the channel. */
        conn_drop_queue(c);
        conn_resume(c);
        return G_SOURCE_REMOVE;
    }
    if (conn_pending(c)) {
        c->out_watch = self;
        return G_SOURCE_CONTINUE;
    }
    conn_resume(c);
    return G_SOURCE_REMOVE;
}

static gboolean conn_stalled(gpointer opaque)
{
    SwtpmConn *c = opaque;
    SwtpmExport *e = c->export;

    c->out_stall = 0;
    qemu_log_warning("-export id=%s: the %s client does not take its answers; "
                     "disconnecting it", e->id, c->name);
    if (c == &e->ctrl) {
        ctrl_client_gone(e);
    } else {
        data_close(e);
    }
    return G_SOURCE_REMOVE;
}

static gboolean ctrl_listen_retry(gpointer opaque)
{
    SwtpmExport *e = opaque;

    e->ctrl_listen_watch = 0;
    if (e->ctrl.fd < 0) {
        ctrl_listen_watch(e);
    }
    return G_SOURCE_REMOVE;
}

static gboolean ctrl_listen_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    SwtpmExport *e = opaque;
    int client = qemu_socket_accept(fd);

    if (client < 0) {
        /*
         * Out of descriptors: the connection stays queued and the socket
         * readable, so wait instead of spinning.
         */
        return qemu_socket_accept_back_off(&e->ctrl_listen_watch, ctrl_listen_retry, e)
            ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
    }
    e->ctrl.fd = client;
    conn_buf_clear(&e->ctrl);
    ctrl_watch(e);
    /* One control client after another, as swtpm. */
    e->ctrl_listen_watch = 0;
    return G_SOURCE_REMOVE;
}

/* ---- Creation ------------------------------------------------------------ */

static bool ctrl_set_owner(SwtpmExport *e, GHashTable *opts, GError **errp)
{
    const char *path = e->ctrl_addr.path;
    const char *mode = qemu_opt_get(opts, "mode");
    uint64_t uid, gid;
    mode_t m;

    if (e->ctrl_addr.kind != QEMU_SOCKET_UNIX) {
        return true;
    }
    if (mode) {
        if (!parse_mode(mode, &m, errp)) {
            return false;
        }
        if (chmod(path, m) < 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "cannot set the mode of '%s': %s", path,
                        g_strerror(errno));
            return false;
        }
    }
    if (!qemu_opt_get_number(opts, "uid", UINT32_MAX, 0, UINT32_MAX, &uid,
                             errp) ||
        !qemu_opt_get_number(opts, "gid", UINT32_MAX, 0, UINT32_MAX, &gid,
                             errp)) {
        return false;
    }
    /* (uid_t)-1 leaves the owner as it is, as chown(2) defines. */
    if ((uid != UINT32_MAX || gid != UINT32_MAX) &&
        chown(path, (uid_t)uid, (gid_t)gid) < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "cannot set the owner of '%s': %s", path, g_strerror(errno));
        return false;
    }
    return true;
}

SwtpmExport *swtpm_export_new(GHashTable *opts, GError **errp)
{
    const char *tpmdev = qemu_opt_get(opts, "tpmdev");
    TPMBackend *be = tpm_backend_find(tpmdev);
    SwtpmExport *e;
    bool terminate = false;

    if (!swtpm_export_check_opts(opts, errp) ||
        !qemu_opt_get_bool(opts, "terminate", false, &terminate, errp)) {
        return NULL;
    }
    if (!be) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "tpmdev=%s names no -tpmdev", tpmdev);
        return NULL;
    }
    e = g_new0(SwtpmExport, 1);
    e->id = g_strdup(qemu_opt_get(opts, "id"));
    e->be = be;
    e->terminate = terminate;
    e->buffersize = SWTPM_BUFFER_MAX;
    e->ctrl_listen_fd = e->data_listen_fd = -1;
    conn_init(&e->ctrl, e, "control");
    conn_init(&e->data, e, "data");
    e->seal_keys = swtpm_seal_keys_new();
    e->swtpm_mkey_id = g_strdup(qemu_opt_get(opts, "swtpm-migration-key"));
    e->cmd_in = g_malloc(SWTPM_BUFFER_MAX);
    e->cmd_out = g_malloc(SWTPM_BUFFER_MAX);
    e->data_rest = g_byte_array_new();
    e->data_back = g_source_new(&data_back_funcs, sizeof(GSource));
    g_source_set_callback(e->data_back, data_back_ready, e, NULL);
    g_source_set_name(e->data_back, "swtpm-data-back");
    g_source_attach(e->data_back, NULL);
    swtpm_exports = g_list_append(swtpm_exports, e);
    /* Before the socket exists: a wrong key must stop QEMU connecting. */
    if (!mig_setup(e, opts, errp)) {
        swtpm_export_free(e);
        return NULL;
    }

    if (!swtpm_migration_key_load(opts, &e->swtpm_mkey, errp)) {
        swtpm_export_free(e);
        return NULL;
    }
    qemu_socket_parse(qemu_opt_get(opts, "ctrl"), &e->ctrl_addr, NULL);
    e->ctrl_listen_fd = qemu_socket_listen(&e->ctrl_addr, 1, errp);
    if (e->ctrl_listen_fd < 0 || !ctrl_set_owner(e, opts, errp)) {
        swtpm_export_free(e);
        return NULL;
    }
    if (qemu_opt_get(opts, "data")) {
        qemu_socket_parse(qemu_opt_get(opts, "data"), &e->data_addr, NULL);
        e->has_data_listener = true;
        e->data_listen_fd = qemu_socket_listen(&e->data_addr, 1, errp);
        if (e->data_listen_fd < 0) {
            swtpm_export_free(e);
            return NULL;
        }
        data_listen_watch(e);
    }
    tpm_backend_set_frontend(be, SWTPM_EXPORT_MODEL, export_request_completed, e);
    tpm_backend_set_answer_hook(be, export_answer_from_worker, e);
    ctrl_listen_watch(e);
    return e;
}

static void remove_listener(int *fd, guint *watch, QemuSocketAddr *addr)
{
    if (*watch) {
        g_source_remove(*watch);
        *watch = 0;
    }
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
        if (addr->kind == QEMU_SOCKET_UNIX && addr->path) {
            unlink(addr->path);
        }
    }
}

void swtpm_export_free(SwtpmExport *e)
{
    if (!e) {
        return;
    }
    swtpm_exports = g_list_remove(swtpm_exports, e);
    data_worker_detach(e);
    if (e->cmd_in_flight) {
        e->cmd_in_flight = false;
        tpm_backend_finish_sync(e->be);
    }
    if (e->ctrl_deadline) {
        g_source_remove(e->ctrl_deadline);
    }
    conn_close(&e->ctrl);
    conn_close(&e->data);
    conn_buf_clear(&e->ctrl);
    conn_buf_clear(&e->data);
    g_byte_array_unref(e->ctrl.buf);
    g_byte_array_unref(e->data.buf);
    g_byte_array_unref(e->ctrl.out);
    g_byte_array_unref(e->data.out);
    remove_listener(&e->ctrl_listen_fd, &e->ctrl_listen_watch, &e->ctrl_addr);
    remove_listener(&e->data_listen_fd, &e->data_listen_watch, &e->data_addr);
    tpm_backend_set_frontend(e->be, NULL, NULL, NULL);
    tpm_backend_set_answer_hook(e->be, NULL, NULL);
    qemu_socket_addr_clear(&e->ctrl_addr);
    qemu_socket_addr_clear(&e->data_addr);
    swtpm_seal_keys_free(e->seal_keys);
    swtpm_migration_key_free(e->swtpm_mkey);
    g_free(e->swtpm_mkey_id);
    g_free(e->cmd_in);
    g_free(e->cmd_out);
    g_byte_array_unref(e->data_rest);
    g_source_destroy(e->data_back);
    g_source_unref(e->data_back);
    g_free(e->id);
    g_free(e);
}

void swtpm_export_free_all(void)
{
    while (swtpm_exports) {
        swtpm_export_free(swtpm_exports->data);
    }
}

/* ---- query-tpm ------------------------------------------------------------ */

/*
 * The peer of a connected socket: its credentials for a unix socket (for a
 * socketpair QEMU passed, QEMU's own), its address for TCP.
 */
static void peer_query(int fd, SwtpmPeerInfo *p)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    char host[INET6_ADDRSTRLEN];

    *p = (SwtpmPeerInfo){ .connected = fd >= 0 };
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
        return;
    }
    if (ss.ss_family == AF_UNIX) {
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
            p->has_cred = true;
            p->pid = cred.pid;
            p->uid = cred.uid;
            p->gid = cred.gid;
        }
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

        p->host = g_strdup(inet_ntop(AF_INET, &in->sin_addr, host,
                                     sizeof(host)));
        p->port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

        p->host = g_strdup(inet_ntop(AF_INET6, &in6->sin6_addr, host,
                                     sizeof(host)));
        p->port = ntohs(in6->sin6_port);
    }
}

/* A listener as clients reach it: for TCP the port it is bound to. */
static char *listener_name(const QemuSocketAddr *addr, int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int port = -1;

    if (addr->kind == QEMU_SOCKET_TCP && fd >= 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    if (port >= 0) {
        return g_strdup_printf("tcp:%s:%d", addr->host, port);
    }
    if (addr->kind == QEMU_SOCKET_UNIX) {
        return g_strdup_printf("unix:%s", addr->path);
    }
    return g_strdup_printf("tcp:%s:%s", addr->host, addr->port);
}

bool swtpm_export_query(const char *tpmdev, SwtpmExportInfo *info)
{
    for (GList *l = swtpm_exports; l; l = l->next) {
        SwtpmExport *e = l->data;

        if (strcmp(tpm_backend_get_id(e->be), tpmdev) != 0) {
            continue;
        }
        *info = (SwtpmExportInfo){ 0 };
        info->id = g_strdup(e->id);
        info->ctrl = listener_name(&e->ctrl_addr, e->ctrl_listen_fd);
        if (e->has_data_listener) {
            info->data = listener_name(&e->data_addr, e->data_listen_fd);
        }
        info->tpm_running = e->tpm_running;
        peer_query(e->ctrl.fd, &info->client);
        peer_query(e->data.fd, &info->data_channel);
        info->data_passed = e->data.fd >= 0 && e->data_passed;
        info->blobs_set = e->set_blobs;
        info->blobs_refused = e->refused_blobs;
        return true;
    }
    return false;
}

void swtpm_export_info_clear(SwtpmExportInfo *info)
{
    g_free(info->id);
    g_free(info->ctrl);
    g_free(info->data);
    g_free(info->client.host);
    g_free(info->data_channel.host);
    *info = (SwtpmExportInfo){ 0 };
}
