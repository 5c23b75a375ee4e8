/*
 * qtpm behind an unmodified QEMU (see qtpm-export-util.h).
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "qemu/bswap.h"
#include "qemu/sockets.h"
#include "qtpm-export-util.h"

#define CMD_SET_STATEBLOB 0x0d
#define CMD_SET_DATAFD 0x10

static void child_setup(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void run_sync(const char *cmd)
{
    g_autoptr(GError) err = NULL;
    int status;

    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, &err));
    g_assert_no_error(err);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
}

int qtpm_spawn_export(const char *const *argv, const char *ctrl, bool quiet,
                      GPid *pid)
{
    g_autoptr(GError) err = NULL;
    gint64 end = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;
    GSpawnFlags flags = G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL;
    int status;

    if (quiet) {
        flags |= G_SPAWN_STDERR_TO_DEV_NULL;
    }
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL, flags, child_setup,
                                NULL, pid, &err));
    g_assert_no_error(err);
    while (!g_file_test(ctrl, G_FILE_TEST_EXISTS)) {
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            *pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10 * 1000);
    }
    return -1;
}

char *qtpm_file_sha256(const char *path)
{
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);
}

void qtpm_export_init(QtpmExport *e, const char *version)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *cmd = NULL;

    e->dir = qtest_scratch_dir();
    e->img = g_build_filename(e->dir, "tpm.qcow2", NULL);
    e->ctrl = g_build_filename(e->dir, "ctrl.sock", NULL);
    if (strcmp(version, "2.0") == 0) {
        /* A blank qcow2 that qtpm formats on first use. */
        cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 1M", e->img);
    } else {
        /* qtpm-img sits next to qtpm. */
        cmd = g_strdup_printf("%s-img create --tpm %s %s", qtpm, version, e->img);
    }
    run_sync(cmd);
}

void qtpm_export_start(QtpmExport *e)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *drive = g_strdup_printf("file=%s,if=none,id=d0", e->img);
    g_autofree char *exp = g_strdup_printf("swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s",
                                           e->ctrl);
    const char *argv[] = {
        qtpm, "-drive", drive, "-tpmdev", "libtpms,id=tpm0,nvram=d0",
        "-export", exp, NULL,
    };

    unlink(e->ctrl);
    g_assert_cmpint(qtpm_spawn_export(argv, e->ctrl, false, &e->qtpm), ==, -1);
}

QTestState *qtpm_export_qemu(QtpmExport *e, const char *device)
{
    g_autofree char *args = NULL;

    args = g_strdup_printf("-machine q35 -S -nodefaults -display none "
                           "-qtest-log /dev/null "
                           "-chardev socket,id=chrtpm,path=%s "
                           "-tpmdev emulator,id=tpm0,chardev=chrtpm "
                           "-device %s,tpmdev=tpm0", e->ctrl, device);
    return qtest_init_binary("qemu-system-x86_64", args);
}

int qtpm_export_wait(QtpmExport *e)
{
    gint64 end = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;
    int status = 0;

    while (waitpid(e->qtpm, &status, WNOHANG) == 0) {
        if (g_get_monotonic_time() > end) {
            kill(e->qtpm, SIGKILL);
            waitpid(e->qtpm, &status, 0);
            g_spawn_close_pid(e->qtpm);
            return -1;
        }
        g_usleep(10 * 1000);
    }
    g_spawn_close_pid(e->qtpm);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void qtpm_export_cleanup(QtpmExport *e)
{
    g_autoptr(GDir) d = g_dir_open(e->dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(e->dir, name, NULL);
        unlink(path);
    }
    rmdir(e->dir);
    g_clear_pointer(&e->dir, g_free);
    g_clear_pointer(&e->img, g_free);
    g_clear_pointer(&e->ctrl, g_free);
}

void qtpm_send(int fd, const void *buf, size_t len)
{
    g_assert_cmpint(qemu_write_full(fd, buf, len), ==, len);
}

void qtpm_recv(int fd, void *buf, size_t len)
{
    g_assert_cmpint(qemu_read_full_timeout(fd, buf, len, 10000), ==, len);
}

void qtpm_ctrl_send(int fd, uint32_t cmd, const void *body, size_t len)
{
    /* One write, so that the server sees the request as one client would send it. */
    g_autofree uint8_t *buf = g_malloc(len + 4);

    stl_be_p(buf, cmd);
    if (len) {
        memcpy(buf + 4, body, len);
    }
    qtpm_send(fd, buf, len + 4);
}

uint32_t qtpm_ctrl_result(int fd)
{
    uint8_t r[4];

    qtpm_recv(fd, r, sizeof(r));
    return ldl_be_p(r);
}

uint32_t qtpm_ctrl(int fd, uint32_t cmd, const void *body, size_t len)
{
    qtpm_ctrl_send(fd, cmd, body, len);
    return qtpm_ctrl_result(fd);
}

uint32_t qtpm_ctrl_u32(int fd, uint32_t cmd, const uint32_t *args, int n)
{
    uint8_t body[12];

    g_assert_cmpint(n, <=, 3);
    for (int i = 0; i < n; i++) {
        stl_be_p(body + 4 * i, args[i]);
    }
    return qtpm_ctrl(fd, cmd, body, 4 * n);
}

uint32_t qtpm_ctrl_set_blob(int fd, uint32_t type, uint32_t flags,
                            const uint8_t *blob, size_t len)
{
    g_autofree uint8_t *body = g_malloc(12 + len);

    stl_be_p(body, flags);
    stl_be_p(body + 4, type);
    stl_be_p(body + 8, len);
    memcpy(body + 12, blob, len);
    return qtpm_ctrl(fd, CMD_SET_STATEBLOB, body, 12 + len);
}

int qtpm_ctrl_set_datafd(int fd)
{
    g_autoptr(GError) err = NULL;
    uint8_t req[4];
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==,
                    0);
    stl_be_p(req, CMD_SET_DATAFD);
    g_assert_cmpint(qemu_socket_send_fd(fd, req, 4, sv[1], &err), ==, 0);
    g_assert_no_error(err);
    close(sv[1]);
    g_assert_cmphex(qtpm_ctrl_result(fd), ==, 0);
    return sv[0];
}

size_t qtpm_data_recv(int fd, uint8_t *resp, size_t size)
{
    uint32_t rlen;

    g_assert_cmpuint(size, >=, 10);
    g_assert_cmpint(qemu_read_full_timeout(fd, resp, 10, 30000), ==, 10);
    rlen = ldl_be_p(resp + 2);
    g_assert_cmpuint(rlen, >=, 10);
    g_assert_cmpuint(rlen, <=, size);
    g_assert_cmpint(qemu_read_full_timeout(fd, resp + 10, rlen - 10, 30000), ==,
                    rlen - 10);
    return rlen;
}

size_t qtpm_data_transmit(int fd, const uint8_t *cmd, size_t len, uint8_t *resp,
                          size_t size)
{
    qtpm_send(fd, cmd, len);
    return qtpm_data_recv(fd, resp, size);
}

uint32_t qtpm_tpm_cmd(int fd, const uint8_t *cmd, size_t len)
{
    uint8_t resp[4096];

    qtpm_data_transmit(fd, cmd, len, resp, sizeof(resp));
    return ldl_be_p(resp + 6);
}
