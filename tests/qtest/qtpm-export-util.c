/*
 * qtpm behind an unmodified QEMU (see qtpm-export-util.h).
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "qtpm-export-util.h"

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
    g_autoptr(GError) err = NULL;
    const char *argv[] = {
        qtpm, "-drive", drive, "-tpmdev", "libtpms,id=tpm0,nvram=d0",
        "-export", exp, NULL,
    };
    gint64 end = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;

    unlink(e->ctrl);
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL,
                                child_setup, NULL, &e->qtpm, &err));
    g_assert_no_error(err);
    while (!g_file_test(e->ctrl, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(waitpid(e->qtpm, NULL, WNOHANG), ==, 0);
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10 * 1000);
    }
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
