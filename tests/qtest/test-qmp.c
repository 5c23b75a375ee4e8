/*
 * QMP against a running qtpm: every command, events, run state, errors and
 * malformed input on the socket, and a TPM that answers through the TIS
 * while QMP stays usable.
 */
#include "qemu/osdep.h"
#include "block/block.h"
#include "libqtest.h"
#include "qemu/sockets.h"

#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define TIS(reg) (0xFED40000ULL + (reg))
#define TIS_ACCESS 0x00
#define TIS_STS 0x18
#define TIS_FIFO 0x24
#define TIS_DID_VID 0xF00

#define STS_VALID 0x80
#define STS_COMMAND_READY 0x40
#define STS_TPM_GO 0x20
#define STS_DATA_AVAILABLE 0x10

/* A libtpms TPM on a fresh plain qcow2 image in @dir. */
static QTestState *start_libtpms(const char *dir, const char *extra)
{
    g_autofree char *img = g_build_filename(dir, "tpm.qcow2", NULL);
    g_autoptr(GError) err = NULL;

    if (!g_file_test(img, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(qcow2_create(img, 1 << 20, NULL, &err), ==, 0);
    }
    return qtest_initf("-drive file=%s,if=none,id=drive0 "
                       "-tpmdev libtpms,id=tpm0,nvram=drive0 "
                       "-device tpm-tis,tpmdev=tpm0 %s", img, extra);
}

static void remove_dir(const char *dir)
{
    g_autofree char *img = g_build_filename(dir, "tpm.qcow2", NULL);

    unlink(img);
    rmdir(dir);
}

/* The "return" member of a reply, failing the test on an error. */
static JsonNode *qmp_return(JsonNode *reply)
{
    JsonObject *o = qtest_qdict(reply);

    if (!json_object_has_member(o, "return")) {
        g_autoptr(JsonGenerator) gen = json_generator_new();
        json_generator_set_root(gen, reply);
        g_error("expected a return: %s", json_generator_to_data(gen, NULL));
    }
    return json_object_get_member(o, "return");
}

static char *qmp_return_text(QTestState *s, const char *cmd)
{
    JsonNode *reply = qtest_qmp(s, "%s", cmd);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    char *text;

    json_generator_set_root(gen, qmp_return(reply));
    text = json_generator_to_data(gen, NULL);
    json_node_unref(reply);
    return text;
}

static void expect_qmp_error(QTestState *s, const char *cmd,
                             const char *klass, const char *desc)
{
    JsonNode *reply = qtest_qmp(s, "%s", cmd);
    JsonObject *e = json_object_get_object_member(qtest_qdict(reply), "error");

    g_assert_nonnull(e);
    g_assert_cmpstr(json_object_get_string_member(e, "class"), ==, klass);
    g_assert_nonnull(strstr(json_object_get_string_member(e, "desc"), desc));
    json_node_unref(reply);
}

static void expect_status(QTestState *s, const char *status, bool running)
{
    g_autofree char *st = qmp_return_text(s, "{'execute': 'query-status'}");
    g_autofree char *want = g_strdup_printf(
        "{\"status\":\"%s\",\"singlestep\":false,\"running\":%s}", status,
        running ? "true" : "false");

    g_assert_cmpstr(st, ==, want);
}

static void event_has_timestamp(JsonNode *ev)
{
    JsonObject *ts = json_object_get_object_member(qtest_qdict(ev), "timestamp");

    g_assert_nonnull(ts);
    g_assert_cmpint(json_object_get_int_member(ts, "seconds"), >, 1600000000);
    g_assert_cmpint(json_object_get_int_member(ts, "microseconds"), <, 1000000);
}

/* ---- a minimal TIS driver ------------------------------------------------ */

static void tis_wait_sts(QTestState *s, uint32_t mask, uint32_t want)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;

    while ((qtest_readl(s, TIS(TIS_STS)) & mask) != want) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

static void tis_send(QTestState *s, const uint8_t *cmd, size_t len)
{
    qtest_writeb(s, TIS(TIS_ACCESS), 0x02);             /* requestUse */
    g_assert_cmphex(qtest_readb(s, TIS(TIS_ACCESS)) & 0x20, ==, 0x20);
    qtest_writel(s, TIS(TIS_STS), STS_COMMAND_READY);
    tis_wait_sts(s, STS_COMMAND_READY, STS_COMMAND_READY);
    for (size_t i = 0; i < len; i++) {
        qtest_writeb(s, TIS(TIS_FIFO), cmd[i]);
    }
    qtest_writel(s, TIS(TIS_STS), STS_TPM_GO);
}

/* Reads the response; returns its response code. */
static uint32_t tis_receive(QTestState *s)
{
    uint8_t hdr[10];
    uint32_t size, rc;

    tis_wait_sts(s, STS_VALID | STS_DATA_AVAILABLE,
                 STS_VALID | STS_DATA_AVAILABLE);
    for (int i = 0; i < 10; i++) {
        hdr[i] = qtest_readb(s, TIS(TIS_FIFO));
    }
    size = (uint32_t)hdr[2] << 24 | hdr[3] << 16 | hdr[4] << 8 | hdr[5];
    rc = (uint32_t)hdr[6] << 24 | hdr[7] << 16 | hdr[8] << 8 | hdr[9];
    g_assert_cmpuint(size, >=, 10);
    g_assert_cmpuint(size, <=, 4096);
    for (uint32_t i = 10; i < size; i++) {
        qtest_readb(s, TIS(TIS_FIFO));
    }
    qtest_writel(s, TIS(TIS_STS), STS_COMMAND_READY);
    qtest_writeb(s, TIS(TIS_ACCESS), 0x20);             /* relinquish */
    return rc;
}

static uint32_t tis_transmit(QTestState *s, const uint8_t *cmd, size_t len)
{
    tis_send(s, cmd, len);
    return tis_receive(s);
}

static const uint8_t tpm2_startup_clear[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};
#define TPM_RC_INITIALIZE 0x100

/* TPM2_CreatePrimary, owner hierarchy, RSA-2048 storage key: slow. */
static const uint8_t tpm2_create_primary_rsa[] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x43, 0x00, 0x00, 0x01, 0x31,
    0x40, 0x00, 0x00, 0x01,                               /* TPM_RH_OWNER */
    0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09,       /* password session */
    0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x04, 0x00, 0x00, 0x00, 0x00,                   /* inSensitive */
    0x00, 0x1a, 0x00, 0x01, 0x00, 0x0b,                   /* RSA, SHA256 */
    0x00, 0x03, 0x04, 0x72, 0x00, 0x00,                   /* attributes, policy */
    0x00, 0x06, 0x00, 0x80, 0x00, 0x43,                   /* AES-128-CFB */
    0x00, 0x10, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,       /* 2048 bits */
    0x00, 0x00,                                           /* unique */
    0x00, 0x00,                                           /* outsideInfo */
    0x00, 0x00, 0x00, 0x00,                               /* creationPCR */
};

/* ---- tests ---------------------------------------------------------------- */

static void test_queries(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    QTestState *s = start_libtpms(dir, "-name vm0");
    g_autofree char *version = qmp_return_text(s, "{'execute': 'query-version'}");
    g_autofree char *name = qmp_return_text(s, "{'execute': 'query-name'}");
    g_autofree char *tpm = qmp_return_text(s, "{'execute': 'query-tpm'}");
    g_autofree char *models = qmp_return_text(s, "{'execute': 'query-tpm-models'}");
    g_autofree char *types = qmp_return_text(s, "{'execute': 'query-tpm-types'}");
    g_autofree char *cmds = qmp_return_text(s, "{'execute': 'query-commands'}");

    g_assert_nonnull(strstr(version, "\"package\":\"qtpm "));
    g_assert_nonnull(strstr(version, "\"major\":"));
    g_assert_cmpstr(name, ==, "{\"name\":\"vm0\"}");
    g_assert_cmpstr(tpm, ==, "[{\"model\":\"tpm-tis\",\"id\":\"tpm0\",\"options\":"
                    "{\"type\":\"libtpms\",\"data\":{\"nvram\":\"drive0\","
                    "\"version\":\"2.0\"}}}]");
    g_assert_cmpstr(models, ==, "[\"tpm-tis\"]");
    g_assert_cmpstr(types, ==, "[\"libtpms\",\"null\"]");
    g_assert_nonnull(strstr(cmds, "\"system_reset\""));
    expect_status(s, "running", true);
    expect_qmp_error(s, "{'execute': 'no-such'}", "CommandNotFound",
                     "The command no-such has not been found");
    expect_qmp_error(s, "{'execute': 'qmp_capabilities'}", "CommandNotFound",
                     "already complete");
    expect_qmp_error(s, "{'execute': 'stop', 'arguments': {'now': true}}",
                     "GenericError", "Parameter 'now' is unexpected");
    qtest_quit(s);
    remove_dir(dir);
}

static void test_stop_cont(void)
{
    QTestState *s = qtest_init("-tpmdev null,id=t -device tpm-tis,tpmdev=t");
    JsonNode *ev;

    json_node_unref(qtest_qmp(s, "{'execute': 'stop'}"));
    ev = qtest_qmp_eventwait(s, "STOP");
    event_has_timestamp(ev);
    g_assert_false(json_object_has_member(qtest_qdict(ev), "data"));
    json_node_unref(ev);
    expect_status(s, "paused", false);
    /* The device's registers stay reachable while stopped, as in QEMU. */
    g_assert_cmphex(qtest_readl(s, TIS(TIS_DID_VID)), ==, 0x00011014);
    json_node_unref(qtest_qmp(s, "{'execute': 'cont'}"));
    ev = qtest_qmp_eventwait(s, "RESUME");
    event_has_timestamp(ev);
    json_node_unref(ev);
    expect_status(s, "running", true);
    qtest_quit(s);
}

static void test_start_stopped(void)
{
    QTestState *s = qtest_init("-tpmdev null,id=t -device tpm-tis,tpmdev=t -S");

    expect_status(s, "prelaunch", false);
    json_node_unref(qtest_qmp(s, "{'execute': 'stop'}"));
    expect_status(s, "prelaunch", false);
    json_node_unref(qtest_qmp(s, "{'execute': 'cont'}"));
    json_node_unref(qtest_qmp_eventwait(s, "RESUME"));
    expect_status(s, "running", true);
    qtest_quit(s);
}

static void test_null_backend(void)
{
    QTestState *s = qtest_init("-tpmdev null,id=t -device tpm-tis,tpmdev=t");
    g_autofree char *tpm = qmp_return_text(s, "{'execute': 'query-tpm'}");

    g_assert_cmpuint(tis_transmit(s, tpm2_startup_clear,
                                  sizeof(tpm2_startup_clear)), ==, 0x101);
    g_assert_cmpstr(tpm, ==, "[{\"model\":\"tpm-tis\",\"id\":\"t\",\"options\":"
                    "{\"type\":\"null\",\"data\":{\"version\":\"2.0\"}}}]");
    qtest_quit(s);
}

/* system_reset restarts the TPM as a platform reset: Startup is due again. */
static void test_system_reset(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    QTestState *s = start_libtpms(dir, "");
    JsonNode *ev;
    JsonObject *data;

    g_assert_cmpuint(tis_transmit(s, tpm2_startup_clear,
                                  sizeof(tpm2_startup_clear)), ==, 0);
    g_assert_cmpuint(tis_transmit(s, tpm2_startup_clear,
                                  sizeof(tpm2_startup_clear)), ==,
                     TPM_RC_INITIALIZE);
    qtest_writeb(s, TIS(TIS_ACCESS), 0x02);
    g_assert_cmphex(qtest_readb(s, TIS(TIS_ACCESS)) & 0x20, ==, 0x20);

    json_node_unref(qtest_qmp(s, "{'execute': 'system_reset'}"));
    ev = qtest_qmp_eventwait(s, "RESET");
    event_has_timestamp(ev);
    data = json_object_get_object_member(qtest_qdict(ev), "data");
    g_assert_false(json_object_get_boolean_member(data, "guest"));
    g_assert_cmpstr(json_object_get_string_member(data, "reason"), ==,
                    "host-qmp-system-reset");
    json_node_unref(ev);

    /* The reset released the locality and the TPM needs Startup again. */
    g_assert_cmphex(qtest_readb(s, TIS(TIS_ACCESS)) & 0x20, ==, 0);
    g_assert_cmpuint(tis_transmit(s, tpm2_startup_clear,
                                  sizeof(tpm2_startup_clear)), ==, 0);
    qtest_quit(s);
    remove_dir(dir);
}

/* A slow command runs on the worker: QMP answers while it runs. */
static void test_responsive_during_command(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    QTestState *s = start_libtpms(dir, "");

    g_assert_cmpuint(tis_transmit(s, tpm2_startup_clear,
                                  sizeof(tpm2_startup_clear)), ==, 0);
    tis_send(s, tpm2_create_primary_rsa, sizeof(tpm2_create_primary_rsa));
    expect_status(s, "running", true);
    g_assert_cmphex(qtest_readl(s, TIS(TIS_DID_VID)), ==, 0x00011014);
    g_assert_cmpuint(tis_receive(s), ==, 0);
    qtest_quit(s);
    remove_dir(dir);
}

static void test_quit(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    QTestState *s = start_libtpms(dir, "");
    JsonNode *ev;
    JsonObject *data;
    int status;

    g_assert_cmpuint(tis_transmit(s, tpm2_startup_clear,
                                  sizeof(tpm2_startup_clear)), ==, 0);
    g_free(qmp_return_text(s, "{'execute': 'quit'}"));
    ev = qtest_qmp_eventwait(s, "SHUTDOWN");
    event_has_timestamp(ev);
    data = json_object_get_object_member(qtest_qdict(ev), "data");
    g_assert_cmpstr(json_object_get_string_member(data, "reason"), ==,
                    "host-qmp-quit");
    json_node_unref(ev);
    status = qtest_wait_exit(s);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    qtest_quit(s);

    /* The state survived: the same image starts again. */
    s = start_libtpms(dir, "");
    g_assert_cmpuint(tis_transmit(s, tpm2_startup_clear,
                                  sizeof(tpm2_startup_clear)), ==, 0);
    qtest_quit(s);
    remove_dir(dir);
}

static void test_sigterm(void)
{
    QTestState *s = qtest_init("-tpmdev null,id=t -device tpm-tis,tpmdev=t");
    JsonNode *ev;
    int status;

    kill(qtest_pid(s), SIGTERM);
    ev = qtest_qmp_eventwait(s, "SHUTDOWN");
    g_assert_cmpstr(json_object_get_string_member(
        json_object_get_object_member(qtest_qdict(ev), "data"), "reason"), ==,
        "host-signal");
    json_node_unref(ev);
    status = qtest_wait_exit(s);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    qtest_quit(s);
}

/* ---- raw socket: what libqtest would never send ------------------------------ */

typedef struct RawQmp {
    GPid pid;
    int fd;
    char *dir;
    char *sock;
    GString *buf;
} RawQmp;

static int raw_connect(const char *path)
{
    g_autoptr(GError) err = NULL;
    int fd = qemu_unix_connect(path, &err);

    g_assert_no_error(err);
    return fd;
}

static void raw_child_setup(gpointer data)
{
    /* qtpm must not outlive a test that failed half-way. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void raw_start(RawQmp *r)
{
    g_autofree char *bin = qtest_qtpm_binary();
    g_autofree char *qmp = NULL;
    g_autoptr(GError) err = NULL;
    gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;

    r->dir = qtest_scratch_dir();
    r->sock = g_build_filename(r->dir, "qmp.sock", NULL);
    qmp = g_strdup_printf("unix:%s,server=on,wait=off", r->sock);
    {
        char *argv[] = { bin, "-tpmdev", "null,id=t", "-device",
                         "tpm-tis,tpmdev=t", "-qmp", qmp, NULL };
        g_assert_true(g_spawn_async(NULL, argv, NULL,
                                    G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL,
                                    raw_child_setup, NULL, &r->pid, &err));
    }
    while (!g_file_test(r->sock, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
    r->buf = g_string_new(NULL);
    r->fd = raw_connect(r->sock);
}

static char *raw_readline_fd(int fd, GString *buf)
{
    for (;;) {
        char *nl = memchr(buf->str, '\n', buf->len);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char tmp[4096];
        ssize_t n;

        if (nl) {
            char *line = g_strndup(buf->str, nl - buf->str);
            g_string_erase(buf, 0, nl - buf->str + 1);
            g_strchomp(line);
            return line;
        }
        g_assert_cmpint(poll(&p, 1, QTEST_REPLY_TIMEOUT_S * 1000), ==, 1);
        n = read(fd, tmp, sizeof(tmp));
        if (n <= 0) {
            return NULL;
        }
        g_string_append_len(buf, tmp, n);
    }
}

static char *raw_readline(RawQmp *r)
{
    return raw_readline_fd(r->fd, r->buf);
}

static void raw_send(RawQmp *r, const char *text)
{
    g_assert_cmpint(write(r->fd, text, strlen(text)), ==, strlen(text));
}

static void raw_expect(RawQmp *r, const char *text, const char *want)
{
    g_autofree char *line = NULL;

    raw_send(r, text);
    line = raw_readline(r);
    g_assert_nonnull(line);
    if (!strstr(line, want)) {
        g_error("sent %s, got %s, expected %s", text, line, want);
    }
}

static void raw_stop(RawQmp *r)
{
    int status;

    close(r->fd);
    kill(r->pid, SIGTERM);
    g_assert_cmpint(waitpid(r->pid, &status, 0), ==, r->pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_assert_false(g_file_test(r->sock, G_FILE_TEST_EXISTS));
    rmdir(r->dir);
    g_free(r->dir);
    g_free(r->sock);
    g_string_free(r->buf, TRUE);
}

static void test_raw_protocol(void)
{
    RawQmp r;
    g_autofree char *greeting = NULL;

    raw_start(&r);
    greeting = raw_readline(&r);
    g_assert_true(g_str_has_prefix(greeting, "{\"QMP\": {\"version\": {\"qemu\": "));
    g_assert_true(g_str_has_suffix(greeting, "\"capabilities\": []}}"));

    raw_expect(&r, "{\"execute\": \"query-status\"}\n",
               "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
               "\"Expecting capabilities negotiation with 'qmp_capabilities'\"}}");
    raw_expect(&r, "{\"execute\": \"qmp_capabilities\", \"id\": \"c1\"}\n",
               "{\"return\": {}, \"id\": \"c1\"}");
    /* Malformed input gets an error reply and the session goes on. */
    raw_expect(&r, "{\"execute\": }\n", "\"desc\": \"JSON parse error");
    raw_expect(&r, "]\n", "\"desc\": \"JSON parse error");
    raw_expect(&r, "[1, 2]\n", "QMP input must be a JSON object");
    raw_expect(&r, "\"just a string\"\n", "QMP input must be a JSON object");
    raw_expect(&r, "{\"exec\": \"quit\"}\n", "QMP input member 'exec' is unexpected");
    raw_expect(&r, "{\"execute\": [\"quit\"]}\n", "'execute' must be a string");
    raw_expect(&r, "{\"execute\": \"\xff\xfe\"}\n", "JSON parse error");
    /* A command split over writes, and two in one write. */
    raw_send(&r, "{\"execute\":");
    raw_expect(&r, " \"query-name\", \"id\": 1}", "{\"return\": {}, \"id\": 1}");
    raw_expect(&r, "{\"execute\": \"query-name\", \"id\": 2}"
               "{\"execute\": \"query-name\", \"id\": 3}",
               "{\"return\": {}, \"id\": 2}");
    g_free(raw_readline(&r));
    raw_expect(&r, "{\"execute\": \"query-status\"}",
               "{\"return\": {\"status\": \"running\"");
    raw_stop(&r);
}

static void test_events_reach_negotiated_clients(void)
{
    RawQmp r;
    GString *buf2 = g_string_new(NULL);
    int fd2;
    g_autofree char *g1 = NULL;
    g_autofree char *g2 = NULL;
    g_autofree char *line = NULL;
    g_autofree char *line2 = NULL;

    raw_start(&r);
    g1 = raw_readline(&r);
    fd2 = raw_connect(r.sock);
    g2 = raw_readline_fd(fd2, buf2);
    g_assert_true(g_str_has_prefix(g2, "{\"QMP\""));
    raw_expect(&r, "{\"execute\": \"qmp_capabilities\"}", "{\"return\": {}}");
    raw_expect(&r, "{\"execute\": \"stop\"}", "\"event\": \"STOP\"");
    line = raw_readline(&r);
    g_assert_cmpstr(line, ==, "{\"return\": {}}");
    /* The second client has not negotiated: it saw no event. */
    g_assert_cmpint(write(fd2, "{\"execute\": \"qmp_capabilities\"}", 31), ==, 31);
    line2 = raw_readline_fd(fd2, buf2);
    g_assert_cmpstr(line2, ==, "{\"return\": {}}");
    /* A client that leaves in the middle of a message harms nobody. */
    g_assert_cmpint(write(fd2, "{\"execute\": \"qu", 15), ==, 15);
    close(fd2);
    raw_expect(&r, "{\"execute\": \"cont\"}", "\"event\": \"RESUME\"");
    g_string_free(buf2, TRUE);
    raw_stop(&r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/queries", test_queries);
    g_test_add_func("/qmp/stop-cont", test_stop_cont);
    g_test_add_func("/qmp/start-stopped", test_start_stopped);
    g_test_add_func("/qmp/null-backend", test_null_backend);
    g_test_add_func("/qmp/system-reset", test_system_reset);
    g_test_add_func("/qmp/responsive-during-command",
                    test_responsive_during_command);
    g_test_add_func("/qmp/quit", test_quit);
    g_test_add_func("/qmp/sigterm", test_sigterm);
    g_test_add_func("/qmp/raw-protocol", test_raw_protocol);
    g_test_add_func("/qmp/events-negotiated-only",
                    test_events_reach_negotiated_clients);
    return g_test_run();
}
