/*
 * qtpm behind an unmodified QEMU: Debian's qemu-system-x86_64 with
 * -tpmdev emulator talks swtpm's control and data protocol to
 * qtpm -export swtpm on a fresh image, and a test drives QEMU's own
 * tpm-tis over qtest. TPM2_Startup and TPM2_GetRandom get good answers,
 * and an NV index defined through QEMU is still in the image after both
 * processes are restarted.
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "tpm-tis-util.h"

typedef struct Export {
    char *dir;          /* the image and the control socket */
    char *img;
    char *ctrl;
    GPid qtpm;
    QTestState *qemu;
} Export;

static const uint8_t TPM2_GETRANDOM_16[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x10,
};

#define NV_INDEX 0x01500001

/*
 * TPM2_NV_DefineSpace(owner, empty password session, no auth value):
 * index NV_INDEX, SHA-256, OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD, 8 bytes.
 */
static const uint8_t TPM2_NV_DEFINE[45] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x01, 0x2a,
    0x40, 0x00, 0x00, 0x01,                         /* TPM_RH_OWNER */
    0x00, 0x00, 0x00, 0x09,                         /* authorizationSize */
    0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, /* TPM_RS_PW */
    0x00, 0x00,                                     /* auth */
    0x00, 0x0e,                                     /* TPM2B_NV_PUBLIC */
    0x01, 0x50, 0x00, 0x01, 0x00, 0x0b,
    0x00, 0x06, 0x00, 0x06, 0x00, 0x00, 0x00, 0x08,
};

static const uint8_t TPM2_NV_READPUBLIC[14] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x01, 0x69,
    0x01, 0x50, 0x00, 0x01,
};

static void child_setup(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void wait_for_socket(const char *path, GPid pid)
{
    gint64 end = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;

    while (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(waitpid(pid, NULL, WNOHANG), ==, 0);
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10 * 1000);
    }
}

/* Waits up to 30 s for @pid to exit; kills it then. Its exit status. */
static int wait_for_exit(GPid pid)
{
    gint64 end = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;
    int status = 0;

    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (g_get_monotonic_time() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            g_spawn_close_pid(pid);
            return -1;
        }
        g_usleep(10 * 1000);
    }
    g_spawn_close_pid(pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void export_init(Export *e)
{
    g_autofree char *cmd = NULL;
    g_autoptr(GError) err = NULL;
    int status;

    e->dir = qtest_scratch_dir();
    e->img = g_build_filename(e->dir, "tpm.qcow2", NULL);
    e->ctrl = g_build_filename(e->dir, "ctrl.sock", NULL);
    cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 1M", e->img);
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, &err));
    g_assert_no_error(err);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
}

/* qtpm exporting the image's TPM, then QEMU with -tpmdev emulator on it. */
static void export_start(Export *e)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *drive = g_strdup_printf("file=%s,if=none,id=d0", e->img);
    g_autofree char *exp = g_strdup_printf("swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s",
                                           e->ctrl);
    g_autofree char *args = NULL;
    g_autoptr(GError) err = NULL;
    const char *argv[] = {
        qtpm, "-drive", drive, "-tpmdev", "libtpms,id=tpm0,nvram=d0",
        "-export", exp, NULL,
    };

    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL,
                                child_setup, NULL, &e->qtpm, &err));
    g_assert_no_error(err);
    wait_for_socket(e->ctrl, e->qtpm);
    args = g_strdup_printf("-machine q35 -S -nodefaults -display none "
                           "-qtest-log /dev/null "
                           "-chardev socket,id=chrtpm,path=%s "
                           "-tpmdev emulator,id=tpm0,chardev=chrtpm "
                           "-device tpm-tis,tpmdev=tpm0", e->ctrl);
    e->qemu = qtest_init_binary("qemu-system-x86_64", args);
}

/* QEMU exits (CMD_SHUTDOWN on its way out), and so does qtpm. */
static void export_stop(Export *e)
{
    qtest_quit(e->qemu);
    e->qemu = NULL;
    g_assert_cmpint(wait_for_exit(e->qtpm), ==, 0);
}

static void export_cleanup(Export *e)
{
    g_autoptr(GDir) d = g_dir_open(e->dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(e->dir, name, NULL);
        unlink(path);
    }
    rmdir(e->dir);
    g_free(e->dir);
    g_free(e->img);
    g_free(e->ctrl);
}

static uint32_t transmit(Export *e, const uint8_t *cmd, size_t len,
                         uint8_t *resp, size_t size, size_t *resp_len)
{
    return tis_transmit(e->qemu, 0, cmd, len, resp, size, resp_len);
}

static void test_startup_getrandom_nv(void)
{
    Export e = { 0 };
    uint8_t resp[4096];
    size_t len = 0;

    export_init(&e);
    export_start(&e);
    tis_request_locality(e.qemu, 0);
    g_assert_cmphex(transmit(&e, TPM2_STARTUP_CLEAR, sizeof(TPM2_STARTUP_CLEAR),
                             resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmpuint(len, ==, 10);
    g_assert_cmphex(transmit(&e, TPM2_GETRANDOM_16, sizeof(TPM2_GETRANDOM_16),
                             resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmpuint(len, ==, 10 + 2 + 16);
    g_assert_cmphex(resp[0], ==, 0x80);
    g_assert_cmpuint((resp[10] << 8) | resp[11], ==, 16);
    g_assert_cmphex(transmit(&e, TPM2_NV_DEFINE, sizeof(TPM2_NV_DEFINE), resp,
                             sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmphex(transmit(&e, TPM2_NV_READPUBLIC, sizeof(TPM2_NV_READPUBLIC),
                             resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    export_stop(&e);

    /* Both restarted on the same image: the index is there. */
    export_start(&e);
    tis_request_locality(e.qemu, 0);
    g_assert_cmphex(transmit(&e, TPM2_STARTUP_CLEAR, sizeof(TPM2_STARTUP_CLEAR),
                             resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmphex(transmit(&e, TPM2_NV_READPUBLIC, sizeof(TPM2_NV_READPUBLIC),
                             resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmphex(tis_be32(resp + 12), ==, NV_INDEX);
    export_stop(&e);
    export_cleanup(&e);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-export-qemu/startup-getrandom-nv",
                    test_startup_getrandom_nv);
    return g_test_run();
}
