/*
 * qtpm's tpm-tis next to QEMU's: the same qtest requests go to Debian's
 * qemu-system-x86_64 (tpm-tis with swtpm behind -tpmdev emulator) and to
 * qtpm (libtpms on a blank image), and every reply must be the same. This
 * is what "register values and behaviour match QEMU's tpm-tis" means, checked
 * directly. Known, documented differences (docs/tis.md) are kept out of the
 * request mix: FIFO data is zero (QEMU truncates paramSize to 16 bits) and
 * interrupt lines are not compared. The same checks run a second time with
 * qtpm -export swtpm behind QEMU's tpm-tis instead of swtpm.
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "qtpm-export-util.h"
#include "tpm-tis-util.h"

/* What sits behind QEMU's -tpmdev emulator. */
typedef enum Behind {
    BEHIND_SWTPM,
    BEHIND_QTPM,        /* qtpm -export swtpm on an image of its own */
} Behind;

typedef struct Pair {
    Behind behind;
    GPid swtpm;
    char *swtpm_dir;
    QtpmExport export;
    QTestState *qemu;
    TisMachine qtpm;
} Pair;

/* Test data: which TPM version, and what is behind QEMU. */
#define PAIR_DATA(tpm2, behind) GINT_TO_POINTER((tpm2) | (behind) << 1)
#define PAIR_TPM2(data) (GPOINTER_TO_INT(data) & 1)
#define PAIR_BEHIND(data) ((Behind)(GPOINTER_TO_INT(data) >> 1))

static void wait_for_path(const char *path)
{
    gint64 end = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;

    while (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10 * 1000);
    }
}

static void swtpm_child_setup(gpointer data)
{
    /* swtpm dies with the test, and keeps quiet. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void pair_start_swtpm(Pair *p, bool tpm2)
{
    g_autofree char *state = NULL;
    g_autofree char *ctrl = NULL;
    g_autofree char *args = NULL;
    g_autoptr(GError) err = NULL;

    p->swtpm_dir = qtest_scratch_dir();
    state = g_strdup_printf("dir=%s", p->swtpm_dir);
    ctrl = g_strdup_printf("type=unixio,path=%s/ctrl", p->swtpm_dir);
    {
        const char *argv[] = {"swtpm",  "socket", "--tpmstate",           state,
                              "--ctrl", ctrl,     tpm2 ? "--tpm2" : NULL, NULL};
        g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                    G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                        G_SPAWN_STDOUT_TO_DEV_NULL |
                                        G_SPAWN_STDERR_TO_DEV_NULL,
                                    swtpm_child_setup, NULL, &p->swtpm, &err));
        g_assert_no_error(err);
    }
    g_free(ctrl);
    ctrl = g_build_filename(p->swtpm_dir, "ctrl", NULL);
    wait_for_path(ctrl);
    args =
        g_strdup_printf("-machine q35 -S -nodefaults -display none -qtest-log /dev/null "
                        "-chardev socket,id=c,path=%s -tpmdev emulator,id=t0,chardev=c "
                        "-device tpm-tis,tpmdev=t0",
                        ctrl);
    p->qemu = qtest_init_binary("qemu-system-x86_64", args);
}

static void pair_start(Pair *p, bool tpm2, Behind behind)
{
    p->behind = behind;
    if (behind == BEHIND_QTPM) {
        qtpm_export_init(&p->export, tpm2 ? "2.0" : "1.2");
        qtpm_export_start(&p->export);
        p->qemu = qtpm_export_qemu(&p->export, "tpm-tis");
    } else {
        pair_start_swtpm(p, tpm2);
    }
    tis_machine_start(&p->qtpm, tpm2 ? "2.0" : "1.2", NULL);
}

static void pair_stop(Pair *p)
{
    g_autoptr(GDir) d = NULL;
    const char *name;

    qtest_quit(p->qemu);
    tis_machine_stop(&p->qtpm);
    if (p->behind == BEHIND_QTPM) {
        /* QEMU's CMD_SHUTDOWN on its way out ends qtpm. */
        g_assert_cmpint(qtpm_export_wait(&p->export), ==, 0);
        qtpm_export_cleanup(&p->export);
        return;
    }
    kill(p->swtpm, SIGTERM);
    waitpid(p->swtpm, NULL, 0);
    g_spawn_close_pid(p->swtpm);
    d = g_dir_open(p->swtpm_dir, 0, NULL);
    while (d && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(p->swtpm_dir, name, NULL);
        unlink(path);
    }
    rmdir(p->swtpm_dir);
    g_free(p->swtpm_dir);
}

/* Sends @line to both; fails the test if the replies differ. */
static char *both(Pair *p, const char *line)
{
    g_autofree char *a = qtest_cmd(p->qemu, "%s", line);
    char *b = qtest_cmd(p->qtpm.qts, "%s", line);

    if (strcmp(a, b) != 0) {
        g_error("'%s': QEMU answered '%s', qtpm '%s'", line, a, b);
    }
    return b;
}

static void both_void(Pair *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void both_void(Pair *p, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *line = NULL;

    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_free(both(p, line));
}

/* All registers with state, every locality. */
static void compare_registers(Pair *p)
{
    static const uint32_t regs[] = {
        TPM_TIS_REG_ACCESS,
        TPM_TIS_REG_STS,
        TPM_TIS_REG_INT_ENABLE,
        TPM_TIS_REG_INT_STATUS,
    };

    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        for (size_t r = 0; r < ARRAY_SIZE(regs); r++) {
            both_void(p, "readl 0x%" PRIx64, TIS_REG(l, regs[r]));
        }
    }
}

static void random_op(Pair *p, GRand *rand)
{
    static const uint32_t offsets[] = {
        0x00, 0x01, 0x08, 0x09, 0x0c, 0x10, 0x11, 0x14, 0x18,  0x19,  0x1a,  0x1b,
        0x24, 0x25, 0x26, 0x30, 0x80, 0x82, 0xbc, 0xbf, 0xf00, 0xf02, 0xf04, 0x40,
    };
    static const uint8_t access_vals[] = {0x02, 0x20, 0x08, 0x10, 0x22,
                                          0x0a, 0x30, 0xff, 0x00, 0x12};
    /* commandReady, responseRetry, both, nothing...; never tpmGo or resetEstablishment.
     */
    static const uint8_t sts_vals[] = {0x40, 0x02, 0x42, 0x00, 0x80};
    uint32_t off = offsets[g_rand_int_range(rand, 0, ARRAY_SIZE(offsets))];
    uint64_t addr = TIS_REG(g_rand_int_range(rand, 0, 5), off);
    const char *sizes = "bwlq";

    if (g_rand_int_range(rand, 0, 100) < 45) {
        both_void(p, "read%c 0x%" PRIx64, sizes[g_rand_int_range(rand, 0, 4)], addr);
    } else if (off <= 0x01) {
        both_void(p, "writeb 0x%" PRIx64 " 0x%x", addr,
                  access_vals[g_rand_int_range(rand, 0, ARRAY_SIZE(access_vals))]);
    } else if (off == 0x1b) {
        both_void(p, "writeb 0x%" PRIx64 " 0x1", addr); /* commandCancel, idle */
    } else if (off >= 0x18 && off <= 0x1a) {
        both_void(p, "writeb 0x%" PRIx64 " 0x%x", addr,
                  sts_vals[g_rand_int_range(rand, 0, ARRAY_SIZE(sts_vals))]);
    } else if (off >= 0x24 && off <= 0xbf) {
        both_void(p, "write%c 0x%" PRIx64 " 0x0", sizes[g_rand_int_range(rand, 0, 3)],
                  addr);
    } else {
        both_void(p, "write%c 0x%" PRIx64 " 0x%x", g_rand_boolean(rand) ? 'b' : 'l', addr,
                  g_rand_int(rand));
    }
}

static void test_random_registers(gconstpointer data)
{
    bool tpm2 = PAIR_TPM2(data);
    GRand *rand = g_rand_new_with_seed(tpm2 ? 0x2020 : 0x1212);
    Pair p;

    pair_start(&p, tpm2, PAIR_BEHIND(data));
    compare_registers(&p);
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        static const uint32_t fixed[] = {
            TPM_TIS_REG_INT_VECTOR,   TPM_TIS_REG_INTF_CAPABILITY,
            TPM_TIS_REG_INTERFACE_ID, TPM_TIS_REG_DID_VID,
            TPM_TIS_REG_RID,
        };
        for (size_t r = 0; r < ARRAY_SIZE(fixed); r++) {
            both_void(&p, "readl 0x%" PRIx64, TIS_REG(l, fixed[r]));
        }
    }
    /* ACCESS and STS of every locality after each access; all of them now and then. */
    for (int i = 0; i < 800; i++) {
        random_op(&p, rand);
        for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
            both_void(&p, "readl 0x%" PRIx64, TIS_REG(l, TPM_TIS_REG_STS));
            both_void(&p, "readb 0x%" PRIx64, TIS_REG(l, TPM_TIS_REG_ACCESS));
        }
        if (i % 16 == 0) {
            compare_registers(&p);
        }
    }
    compare_registers(&p);
    g_rand_free(rand);
    pair_stop(&p);
}

/* TPM2_Startup byte by byte, STS after every step, and the response. */
static void test_transmit(gconstpointer data)
{
    Pair p;
    const uint64_t fifo = TIS_REG(0, TPM_TIS_REG_DATA_FIFO);
    const uint64_t sts = TIS_REG(0, TPM_TIS_REG_STS);

    pair_start(&p, true, PAIR_BEHIND(data));
    both_void(&p, "writeb 0x%" PRIx64 " 0x%x", TIS_REG(0, TPM_TIS_REG_ACCESS),
              TPM_TIS_ACCESS_REQUEST_USE);
    both_void(&p, "writeb 0x%" PRIx64 " 0x%x", sts, TPM_TIS_STS_COMMAND_READY);
    for (size_t i = 0; i < sizeof(TPM2_STARTUP_CLEAR); i++) {
        both_void(&p, "writeb 0x%" PRIx64 " 0x%x", fifo, TPM2_STARTUP_CLEAR[i]);
        both_void(&p, "readl 0x%" PRIx64, sts);
    }
    both_void(&p, "writeb 0x%" PRIx64 " 0x%x", sts, TPM_TIS_STS_TPM_GO);
    tis_wait_sts(p.qemu, 0, TPM_TIS_STS_DATA_AVAILABLE, TPM_TIS_STS_DATA_AVAILABLE);
    tis_wait_sts(p.qtpm.qts, 0, TPM_TIS_STS_DATA_AVAILABLE, TPM_TIS_STS_DATA_AVAILABLE);
    for (int i = 0; i < 12; i++) {
        both_void(&p, "readl 0x%" PRIx64, sts);
        both_void(&p, "readb 0x%" PRIx64, fifo);
    }
    both_void(&p, "writeb 0x%" PRIx64 " 0x%x", sts, TPM_TIS_STS_RESPONSE_RETRY);
    both_void(&p, "read 0x%" PRIx64 " 10", TIS_REG(0, TPM_TIS_REG_DATA_XFIFO));
    both_void(&p, "writeb 0x%" PRIx64 " 0x%x", sts, TPM_TIS_STS_COMMAND_READY);
    compare_registers(&p);
    pair_stop(&p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/tpm-tis-qemu/random-registers/tpm2",
                         PAIR_DATA(1, BEHIND_SWTPM), test_random_registers);
    g_test_add_data_func("/tpm-tis-qemu/random-registers/tpm12",
                         PAIR_DATA(0, BEHIND_SWTPM), test_random_registers);
    g_test_add_data_func("/tpm-tis-qemu/transmit", PAIR_DATA(1, BEHIND_SWTPM),
                         test_transmit);
    g_test_add_data_func("/tpm-tis-qemu/qtpm-export/random-registers/tpm2",
                         PAIR_DATA(1, BEHIND_QTPM), test_random_registers);
    g_test_add_data_func("/tpm-tis-qemu/qtpm-export/random-registers/tpm12",
                         PAIR_DATA(0, BEHIND_QTPM), test_random_registers);
    g_test_add_data_func("/tpm-tis-qemu/qtpm-export/transmit", PAIR_DATA(1, BEHIND_QTPM),
                         test_transmit);
    return g_test_run();
}
