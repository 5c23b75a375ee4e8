/*
 * The export's data channel once the TPM runs: the backend's worker reads,
 * runs and answers the commands itself (docs/design.md "The swtpm export's
 * data channel on the worker"). Shown here: the main thread is not woken
 * per command; control commands between data commands (locality, STOP,
 * INIT, GET_STATEBLOB) keep their meaning and order; a cancel does not wait
 * for the command it cancels; the channel still closes on a bad frame.
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "qemu/bswap.h"
#include "qemu/sockets.h"
#include "qtpm-export-util.h"

#define CMD_INIT            0x02
#define CMD_SET_LOCALITY    0x05
#define CMD_CANCEL_TPM_CMD  0x09
#define CMD_GET_STATEBLOB   0x0c
#define CMD_STOP            0x0e
#define CMD_SHUTDOWN        0x03

typedef struct Server {
    char *dir;
    char *img;
    char *ctrl;
    GPid pid;
    int fd;             /* the control connection */
    int data;           /* our end of the data channel */
} Server;

static const uint8_t STARTUP[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};
static const uint8_t GETRANDOM16[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x10,
};
/* TPM2_CreatePrimary in the owner hierarchy, RSA 2048: a long command. */
static const uint8_t CREATEPRIMARY_RSA[] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x43, 0x00, 0x00, 0x01, 0x31,
    0x40, 0x00, 0x00, 0x01,                         /* TPM_RH_OWNER */
    0x00, 0x00, 0x00, 0x09,                         /* auth area size */
    0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x01, 0x00, 0x00, /* password */
    0x00, 0x04, 0x00, 0x00, 0x00, 0x00,             /* inSensitive */
    0x00, 0x1a,                                     /* inPublic size */
    0x00, 0x01, 0x00, 0x0b,                         /* RSA, SHA-256 */
    0x00, 0x03, 0x00, 0x72,                         /* restricted decrypt */
    0x00, 0x00,                                     /* authPolicy */
    0x00, 0x06, 0x00, 0x80, 0x00, 0x43,             /* AES-128-CFB */
    0x00, 0x10, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, /* null scheme, 2048 */
    0x00, 0x00,                                     /* unique */
    0x00, 0x00,                                     /* outsideInfo */
    0x00, 0x00, 0x00, 0x00,                         /* creationPCR */
};

static void server_start(Server *s)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *drive = NULL;
    g_autofree char *exp = NULL;
    g_autofree char *cmd = NULL;
    g_autoptr(GError) err = NULL;
    int status;

    s->dir = qtest_scratch_dir();
    s->img = g_build_filename(s->dir, "tpm.qcow2", NULL);
    s->ctrl = g_build_filename(s->dir, "ctrl.sock", NULL);
    cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 1M", s->img);
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    drive = g_strdup_printf("file=%s,if=none,id=d0", s->img);
    exp = g_strdup_printf("swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s", s->ctrl);
    {
        const char *argv[] = { qtpm, "-drive", drive, "-tpmdev",
                               "libtpms,id=tpm0,nvram=d0", "-export", exp,
                               NULL };

        g_assert_cmpint(qtpm_spawn_export(argv, s->ctrl, false, &s->pid), ==, -1);
    }
    s->fd = qemu_unix_connect(s->ctrl, &err);
    g_assert_no_error(err);
}

static void server_running(Server *s)
{
    server_start(s);
    s->data = qtpm_ctrl_set_datafd(s->fd);
    g_assert_cmphex(qtpm_ctrl_u32(s->fd, CMD_INIT, (uint32_t[]){ 0 }, 1), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(s->data, STARTUP, sizeof(STARTUP)), ==, 0);
}

static void server_stop(Server *s)
{
    int status;

    g_assert_cmphex(qtpm_ctrl(s->fd, CMD_SHUTDOWN, NULL, 0), ==, 0);
    g_assert_cmpint(waitpid(s->pid, &status, 0), ==, s->pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    close(s->fd);
    close(s->data);
    unlink(s->img);
    rmdir(s->dir);
    g_free(s->img);
    g_free(s->ctrl);
    g_free(s->dir);
}

/* Context switches of qtpm's main thread so far. */
static unsigned long main_thread_switches(Server *s)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%d/status", s->pid,
                                            s->pid);
    g_autofree char *text = NULL;
    unsigned long vol = 0, invol = 0;
    const char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strstr(text, "\nvoluntary_ctxt_switches:");
    g_assert_nonnull(p);
    vol = strtoul(p + strlen("\nvoluntary_ctxt_switches:"), NULL, 10);
    p = strstr(text, "\nnonvoluntary_ctxt_switches:");
    g_assert_nonnull(p);
    invol = strtoul(p + strlen("\nnonvoluntary_ctxt_switches:"), NULL, 10);
    return vol + invol;
}

/*
 * 500 commands wake the main thread for none of them: it sleeps through
 * them (a few switches for timers and the log are allowed).
 */
static void test_main_thread_sleeps(void)
{
    Server s;
    unsigned long before, after;

    server_running(&s);
    before = main_thread_switches(&s);
    for (int i = 0; i < 500; i++) {
        g_assert_cmphex(qtpm_tpm_cmd(s.data, GETRANDOM16, sizeof(GETRANDOM16)),
                        ==, 0);
    }
    after = main_thread_switches(&s);
    g_test_message("main thread: %lu context switches over 500 commands",
                   after - before);
    g_assert_cmpuint(after - before, <, 50);
    server_stop(&s);
}

/*
 * Control commands between data commands: each one takes the channel back
 * and gives it back after its answer, so their order with the TPM
 * commands is the client's.
 */
static void test_control_between_commands(void)
{
    Server s;
    uint8_t resp[8192];
    uint32_t rlen;

    server_running(&s);
    /* Locality 5 is refused, 3 taken; commands still run. */
    g_assert_cmphex(qtpm_ctrl(s.fd, CMD_SET_LOCALITY, (uint8_t[]){ 5 }, 1), ==, 0x3d);
    g_assert_cmphex(qtpm_ctrl(s.fd, CMD_SET_LOCALITY, (uint8_t[]){ 3 }, 1), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(s.data, GETRANDOM16, sizeof(GETRANDOM16)), ==, 0);
    g_assert_cmphex(qtpm_ctrl(s.fd, CMD_SET_LOCALITY, (uint8_t[]){ 0 }, 1), ==, 0);

    /* Between two commands the worker ran, the permanent blob reads. */
    {
        uint8_t body[16];

        stl_be_p(body, CMD_GET_STATEBLOB);
        stl_be_p(body + 4, 0);      /* flags */
        stl_be_p(body + 8, 1);      /* TPM_BLOB_TYPE_PERMANENT */
        stl_be_p(body + 12, 0);     /* offset */
        g_assert_cmpint(qemu_write_full(s.fd, body, 16), ==, 16);
        g_assert_cmphex(qtpm_ctrl_result(s.fd), ==, 0);
        g_assert_cmpint(qemu_read_full_timeout(s.fd, resp, 12, 10000), ==, 12);
        rlen = ldl_be_p(resp + 8);
        g_assert_cmpuint(rlen, >, 0);
        g_assert_cmpuint(rlen, <=, sizeof(resp));
        g_assert_cmpint(qemu_read_full_timeout(s.fd, resp, rlen, 10000), ==,
                        rlen);
    }
    /* STOP: the next command gets the not-running error, on the main loop. */
    g_assert_cmphex(qtpm_ctrl(s.fd, CMD_STOP, NULL, 0), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(s.data, GETRANDOM16, sizeof(GETRANDOM16)), ==,
                    0x101);
    /* INIT again: the worker has the channel again, the TPM its state. */
    g_assert_cmphex(qtpm_ctrl_u32(s.fd, CMD_INIT, (uint32_t[]){ 0 }, 1), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(s.data, STARTUP, sizeof(STARTUP)), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(s.data, GETRANDOM16, sizeof(GETRANDOM16)), ==, 0);
    server_stop(&s);
}

/*
 * CMD_CANCEL_TPM_CMD while the worker runs a long command is answered at
 * once, and the command ends as the TPM decides (done or TPM_RC_CANCELED).
 */
static void test_cancel_while_running(void)
{
    Server s;
    uint8_t resp[4096];
    uint32_t rc;

    server_running(&s);
    g_assert_cmpint(qemu_write_full(s.data, CREATEPRIMARY_RSA,
                                    sizeof(CREATEPRIMARY_RSA)), ==,
                    sizeof(CREATEPRIMARY_RSA));
    g_assert_cmphex(qtpm_ctrl(s.fd, CMD_CANCEL_TPM_CMD, NULL, 0), ==, 0);
    qtpm_data_recv(s.data, resp, sizeof(resp));
    rc = ldl_be_p(resp + 6);
    g_assert_true(rc == 0 || rc == 0x909);
    g_assert_cmphex(qtpm_tpm_cmd(s.data, GETRANDOM16, sizeof(GETRANDOM16)), ==, 0);
    server_stop(&s);
}

/* A frame with a bad size still closes the data channel, not the server. */
static void test_bad_frame_closes(void)
{
    Server s;
    uint8_t bad[10] = { 0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0x7b };
    uint8_t b;

    server_running(&s);
    g_assert_cmpint(qemu_write_full(s.data, bad, sizeof(bad)), ==, sizeof(bad));
    g_assert_cmpint(qemu_read_full_timeout(s.data, &b, 1, 10000), ==, 0);
    close(s.data);
    s.data = qtpm_ctrl_set_datafd(s.fd);
    g_assert_cmphex(qtpm_tpm_cmd(s.data, GETRANDOM16, sizeof(GETRANDOM16)), ==, 0);
    server_stop(&s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-export-worker/main-thread-sleeps",
                    test_main_thread_sleeps);
    g_test_add_func("/swtpm-export-worker/control-between-commands",
                    test_control_between_commands);
    g_test_add_func("/swtpm-export-worker/cancel-while-running",
                    test_cancel_while_running);
    g_test_add_func("/swtpm-export-worker/bad-frame-closes",
                    test_bad_frame_closes);
    return g_test_run();
}
