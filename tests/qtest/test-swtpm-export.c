/*
 * qtpm -export swtpm spoken to directly, as a hostile or careless control
 * client would: QEMU 7.2's start-up sequence byte by byte, a TPM command
 * before CMD_INIT, wrong-size and unknown requests, a request that stalls
 * past the deadline, a passed descriptor that is not a socket, the
 * "no such blob" answer of GET_STATEBLOB, and a client that never reads its
 * answers. Runs in the sanitizer build.
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "qemu/bswap.h"
#include "qemu/sockets.h"
#include "qtpm-export-util.h"

typedef struct Server {
    char *dir;
    char *ctrl;
    GPid pid;
    int fd;             /* the control connection */
    int data;           /* our end of the data channel, or -1 */
} Server;

static void server_connect(Server *s)
{
    g_autoptr(GError) err = NULL;

    s->fd = qemu_unix_connect(s->ctrl, &err);
    g_assert_no_error(err);
}

static void server_start(Server *s, const char *tpmdev)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *exp = NULL;

    s->dir = qtest_scratch_dir();
    s->ctrl = g_build_filename(s->dir, "ctrl.sock", NULL);
    s->data = -1;
    exp = g_strdup_printf("swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s,mode=0600",
                          s->ctrl);
    {
        const char *argv[] = { qtpm, "-tpmdev", tpmdev, "-export", exp, NULL };

        g_assert_cmpint(qtpm_spawn_export(argv, s->ctrl, true, &s->pid), ==, -1);
    }
    server_connect(s);
}

static void server_stop(Server *s)
{
    if (s->pid) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    close(s->fd);
    if (s->data >= 0) {
        close(s->data);
    }
    unlink(s->ctrl);
    rmdir(s->dir);
    g_free(s->ctrl);
    g_free(s->dir);
}

static const uint8_t READCLOCK[10] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x81,
};
static const uint8_t STARTUP[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};

/* What QEMU 7.2 sends at start-up, in its order. */
static void test_qemu_sequence(void)
{
    Server s;
    uint8_t resp[4096], caps[8], bs[16], est[8], body[12];
    size_t len;

    server_start(&s, "null,id=tpm0");
    s.data = qtpm_ctrl_set_datafd(s.fd);
    /* Before CMD_INIT: a TPM 2.0 failure, whose tag tells QEMU the version. */
    len = qtpm_data_transmit(s.data, READCLOCK, sizeof(READCLOCK), resp, sizeof(resp));
    g_assert_cmpuint(len, ==, 10);
    g_assert_cmphex(lduw_be_p(resp), ==, 0x8001);
    g_assert_cmphex(ldl_be_p(resp + 6), ==, 0x101);

    qtpm_ctrl_send(s.fd, 0x01, NULL, 0);
    qtpm_recv(s.fd, caps, 8);
    g_assert_cmphex(ldq_be_p(caps) & 0x1, ==, 0x1);         /* INIT */
    g_assert_cmphex(ldq_be_p(caps) & 0x10, ==, 0);          /* no HASHING */
    g_assert_cmphex(ldq_be_p(caps) & (1u << 15), ==, 1u << 15);
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x0e, NULL, 0), ==, 0);        /* STOP */

    stl_be_p(body, 0);
    qtpm_ctrl_send(s.fd, 0x11, body, 4);
    qtpm_recv(s.fd, bs, 16);
    g_assert_cmphex(ldl_be_p(bs), ==, 0);
    g_assert_cmpuint(ldl_be_p(bs + 4), ==, 4096);
    stl_be_p(body, 4096);
    qtpm_ctrl_send(s.fd, 0x11, body, 4);
    qtpm_recv(s.fd, bs, 16);
    g_assert_cmpuint(ldl_be_p(bs + 4), ==, 4096);
    g_assert_cmpuint(ldl_be_p(bs + 8), <=, 4096);

    stl_be_p(body, 0);
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x02, body, 4), ==, 0);        /* INIT */
    qtpm_ctrl_send(s.fd, 0x04, NULL, 0);
    qtpm_recv(s.fd, est, 8);
    g_assert_cmphex(ldl_be_p(est), ==, 0);
    /* QEMU sends the whole 4-byte union for SET_LOCALITY. */
    memset(body, 0, 4);
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x05, body, 4), ==, 0);
    body[0] = 5;
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x05, body, 4), ==, 0x3d);     /* BAD_LOCALITY */

    /* The null backend answers, now through the backend. */
    len = qtpm_data_transmit(s.data, STARTUP, sizeof(STARTUP), resp, sizeof(resp));
    g_assert_cmpuint(len, ==, 10);
    g_assert_cmphex(lduw_be_p(resp), ==, 0x8001);

    /* GET_STATEBLOB of a backend without state: an error, header whole. */
    memset(body, 0, 12);
    stl_be_p(body + 4, 1);
    qtpm_ctrl_send(s.fd, 0x0c, body, 12);
    qtpm_recv(s.fd, bs, 16);
    g_assert_cmphex(ldl_be_p(bs), !=, 0);
    g_assert_cmpuint(ldl_be_p(bs + 12), ==, 0);

    g_assert_cmphex(qtpm_ctrl(s.fd, 0x03, NULL, 0), ==, 0);        /* SHUTDOWN */
    {
        int status;

        g_assert_cmpint(waitpid(s.pid, &status, 0), ==, s.pid);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    s.pid = 0;
    server_stop(&s);
}

static void test_bad_requests(void)
{
    Server s;
    uint8_t body[16] = { 0 };
    uint8_t resp[16];
    int devnull;
    g_autoptr(GError) err = NULL;
    gint64 t0;

    server_start(&s, "null,id=tpm0");
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x14, NULL, 0), ==, 0x0a);     /* unknown */
    g_assert_cmphex(qtpm_ctrl(s.fd, 0xffffffff, body, 8), ==, 0x0a);
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x0e, body, 1), ==, 0x03);     /* STOP + 1 */
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x02, body, 5), ==, 0x03);     /* INIT + 1 */
    /* Not implemented, not advertised. */
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x06, NULL, 0), ==, 0x0a);
    /* Needs a running TPM. */
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x0a, NULL, 0), ==, 0x0a);
    /* Announcing too much: TPM_SIZE, and the client is dropped. */
    stl_be_p(body + 8, 0xfffffff0);
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x0d, body, 12), ==, 0x17);
    g_assert_cmpint(qemu_read_full_timeout(s.fd, resp, 1, 5000), ==, 0);
    close(s.fd);

    /* The next client is served; one that stalls mid-request is refused. */
    server_connect(&s);
    t0 = g_get_monotonic_time();
    qtpm_ctrl_send(s.fd, 0x02, body, 2);
    g_assert_cmphex(qtpm_ctrl_result(s.fd), ==, 0x03);
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 400 * 1000);
    g_assert_cmpint(qemu_read_full_timeout(s.fd, resp, 1, 5000), ==, 0);
    close(s.fd);

    /* A passed descriptor that is not a socket. */
    server_connect(&s);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    stl_be_p(body, 0x10);
    g_assert_cmpint(qemu_socket_send_fd(s.fd, body, 4, devnull, &err), ==, 0);
    g_assert_no_error(err);
    close(devnull);
    g_assert_cmphex(qtpm_ctrl_result(s.fd), ==, 0x03);
    /* No descriptor at all. */
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x10, NULL, 0), ==, 0x03);
    /* A second data channel. */
    s.data = qtpm_ctrl_set_datafd(s.fd);
    {
        int sv[2];
        uint8_t req[4];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
        stl_be_p(req, 0x10);
        g_assert_cmpint(qemu_socket_send_fd(s.fd, req, 4, sv[1], &err), ==, 0);
        close(sv[0]);
        close(sv[1]);
        g_assert_cmphex(qtpm_ctrl_result(s.fd), ==, 0x1f);
    }
    /* Still answering. */
    qtpm_ctrl_send(s.fd, 0x01, NULL, 0);
    qtpm_recv(s.fd, resp, 8);
    server_stop(&s);
}

/* A libtpms TPM without a savestate blob: swtpm's "retry" result. */
/* A qcow2 image for a libtpms backend, in a scratch directory of its own. */
static char *image_create(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    g_autofree char *cmd = NULL;
    char *img = g_build_filename(dir, "tpm.qcow2", NULL);
    int status;

    cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 1M", img);
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    return img;
}

static void image_remove(const char *img)
{
    g_autofree char *dir = g_path_get_dirname(img);

    unlink(img);
    rmdir(dir);
}

/* server_start takes one -tpmdev argument; this one adds the drive. */
static void server_start_image(Server *s, const char *img)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *drive = g_strdup_printf("file=%s,if=none,id=d0", img);
    g_autofree char *exp = NULL;
    const char *argv[8];

    s->dir = qtest_scratch_dir();
    s->ctrl = g_build_filename(s->dir, "ctrl.sock", NULL);
    s->data = -1;
    exp = g_strdup_printf("swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s", s->ctrl);
    argv[0] = qtpm;
    argv[1] = "-drive";
    argv[2] = drive;
    argv[3] = "-tpmdev";
    argv[4] = "libtpms,id=tpm0,nvram=d0";
    argv[5] = "-export";
    argv[6] = exp;
    argv[7] = NULL;
    g_assert_cmpint(qtpm_spawn_export(argv, s->ctrl, false, &s->pid), ==, -1);
    server_connect(s);
}

static void test_no_such_blob(void)
{
    Server s;
    g_autofree char *img = image_create();
    uint8_t body[12] = { 0 }, hdr[16];

    server_start_image(&s, img);
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x02, body, 4), ==, 0);        /* INIT */
    stl_be_p(body + 4, 3);                                  /* savestate */
    qtpm_ctrl_send(s.fd, 0x0c, body, 12);
    qtpm_recv(s.fd, hdr, 16);
    g_assert_cmphex(ldl_be_p(hdr), ==, 0x800);
    g_assert_cmpuint(ldl_be_p(hdr + 8), ==, 0);
    g_assert_cmpuint(ldl_be_p(hdr + 12), ==, 0);
    /* The permanent blob exists and comes whole. */
    stl_be_p(body + 4, 1);
    qtpm_ctrl_send(s.fd, 0x0c, body, 12);
    qtpm_recv(s.fd, hdr, 16);
    g_assert_cmphex(ldl_be_p(hdr), ==, 0);
    g_assert_cmpuint(ldl_be_p(hdr + 12), >, 0);
    g_assert_cmpuint(ldl_be_p(hdr + 12), ==, ldl_be_p(hdr + 8));
    {
        g_autofree uint8_t *blob = g_malloc(ldl_be_p(hdr + 12));

        qtpm_recv(s.fd, blob, ldl_be_p(hdr + 12));
    }
    qtpm_ctrl_send(s.fd, 0x01, NULL, 0);
    qtpm_recv(s.fd, hdr, 8);
    server_stop(&s);
    image_remove(img);
}

/* The permanent blob on a fresh control connection: header, then the blob. */
static uint8_t *get_permanent_blob(Server *s, uint32_t *len)
{
    uint8_t body[12] = { 0 }, hdr[16];
    uint8_t *blob;

    stl_be_p(body + 4, 1);
    qtpm_ctrl_send(s->fd, 0x0c, body, 12);
    qtpm_recv(s->fd, hdr, 16);
    g_assert_cmphex(ldl_be_p(hdr), ==, 0);
    *len = ldl_be_p(hdr + 12);
    g_assert_cmpuint(*len, >, 0);
    blob = g_malloc(*len);
    qtpm_recv(s->fd, blob, *len);
    return blob;
}

/*
 * A control client that asks for the permanent blob again and again and
 * never reads the answers: the data channel keeps being served meanwhile,
 * the client is dropped, the next one is served the same blob, and the image
 * does not change.
 */
static void test_stuck_client(void)
{
    Server s;
    g_autofree char *img = image_create();
    g_autofree uint8_t *blob = NULL, *again = NULL;
    g_autofree char *image_before = NULL, *image_after = NULL;
    gsize image_len_before, image_len_after;
    uint8_t body[12] = { 0 }, req[16] = { 0 }, resp[4096], chunk[4096];
    uint32_t blob_len, again_len;
    gint64 end;
    size_t len;
    ssize_t n;
    int stuck;

    server_start_image(&s, img);
    g_assert_cmphex(qtpm_ctrl(s.fd, 0x02, body, 4), ==, 0);        /* INIT */
    s.data = qtpm_ctrl_set_datafd(s.fd);
    len = qtpm_data_transmit(s.data, STARTUP, sizeof(STARTUP), resp, sizeof(resp));
    g_assert_cmpuint(len, ==, 10);
    blob = get_permanent_blob(&s, &blob_len);
    g_assert_true(g_file_get_contents(img, &image_before, &image_len_before,
                                      NULL));

    /* One request per read, so that each one is taken and answered. */
    stl_be_p(req, 0x0c);
    stl_be_p(req + 8, 1);                                   /* permanent */
    end = g_get_monotonic_time() + 2 * G_TIME_SPAN_SECOND;
    while (g_get_monotonic_time() < end) {
        n = send(s.fd, req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL);
        g_assert_true(n == sizeof(req) || (n < 0 && errno == EAGAIN));
        len = qtpm_data_transmit(s.data, READCLOCK, sizeof(READCLOCK), resp,
                                 sizeof(resp));
        g_assert_cmpuint(len, >=, 10);
    }

    /* Its successor waits in the listen backlog until it is dropped. */
    stuck = s.fd;
    server_connect(&s);
    again = get_permanent_blob(&s, &again_len);
    g_assert_cmpuint(again_len, ==, blob_len);
    g_assert_cmpmem(again, again_len, blob, blob_len);
    len = qtpm_data_transmit(s.data, READCLOCK, sizeof(READCLOCK), resp, sizeof(resp));
    g_assert_cmpuint(len, >=, 10);
    /*
     * What had been written before the drop, then the end: a reset, as the
     * requests it sent after its reading stopped were never taken.
     */
    do {
        n = qemu_read_full_timeout(stuck, chunk, sizeof(chunk), 10000);
    } while (n == sizeof(chunk));
    g_assert_true(n >= 0 || errno == ECONNRESET);
    close(stuck);

    g_assert_true(g_file_get_contents(img, &image_after, &image_len_after,
                                      NULL));
    g_assert_cmpmem(image_after, image_len_after, image_before,
                    image_len_before);
    server_stop(&s);
    image_remove(img);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-export/qemu-sequence", test_qemu_sequence);
    g_test_add_func("/swtpm-export/bad-requests", test_bad_requests);
    g_test_add_func("/swtpm-export/no-such-blob", test_no_such_blob);
    g_test_add_func("/swtpm-export/stuck-client", test_stuck_client);
    return g_test_run();
}
