/*
 * qtpm behind an unmodified QEMU: Debian's qemu-system-x86_64 with
 * -tpmdev emulator talks swtpm's control and data protocol to
 * qtpm -export swtpm on a fresh image, and a test drives QEMU's own
 * tpm-tis over qtest. TPM2_Startup and TPM2_GetRandom get good answers,
 * and an NV index defined through QEMU is still in the image after both
 * processes are restarted. The same through QEMU's tpm-crb, and a TPM 1.2
 * image behind QEMU's tpm-tis.
 */
#include "qemu/osdep.h"
#include "qtpm-export-util.h"
#include "tpm-tis-util.h"

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

typedef struct Export {
    QtpmExport qtpm;
    QTestState *qemu;
} Export;

/* qtpm exporting the image's TPM, then QEMU with @device in front of it. */
static void export_start(Export *e, const char *device)
{
    qtpm_export_start(&e->qtpm);
    e->qemu = qtpm_export_qemu(&e->qtpm, device);
}

/* QEMU exits (CMD_SHUTDOWN on its way out), and so does qtpm. */
static void export_stop(Export *e)
{
    qtest_quit(e->qemu);
    e->qemu = NULL;
    g_assert_cmpint(qtpm_export_wait(&e->qtpm), ==, 0);
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

    qtpm_export_init(&e.qtpm, "2.0");
    export_start(&e, "tpm-tis");
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
    export_start(&e, "tpm-tis");
    tis_request_locality(e.qemu, 0);
    g_assert_cmphex(transmit(&e, TPM2_STARTUP_CLEAR, sizeof(TPM2_STARTUP_CLEAR),
                             resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmphex(transmit(&e, TPM2_NV_READPUBLIC, sizeof(TPM2_NV_READPUBLIC),
                             resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmphex(tis_be32(resp + 12), ==, NV_INDEX);
    export_stop(&e);
    qtpm_export_cleanup(&e.qtpm);
}

/*
 * QEMU's tpm-crb (TCG PC Client Platform TPM Profile, CRB interface), at
 * its fixed address; names as in the specification.
 */
#define CRB_BASE 0xfed40000ULL
#define CRB_LOC_STATE (CRB_BASE + 0x00)
#define CRB_LOC_CTRL (CRB_BASE + 0x08)
#define CRB_LOC_STS (CRB_BASE + 0x0c)
#define CRB_INTF_ID (CRB_BASE + 0x30)
#define CRB_CTRL_REQ (CRB_BASE + 0x40)
#define CRB_CTRL_STS (CRB_BASE + 0x44)
#define CRB_CTRL_START (CRB_BASE + 0x4c)
#define CRB_CTRL_CMD_SIZE (CRB_BASE + 0x58)
#define CRB_CTRL_CMD_LADDR (CRB_BASE + 0x5c)
#define CRB_CTRL_RSP_SIZE (CRB_BASE + 0x64)
#define CRB_CTRL_RSP_ADDR (CRB_BASE + 0x68)

#define CRB_LOC_CTRL_REQUEST_ACCESS 0x1
#define CRB_LOC_STATE_LOC_ASSIGNED 0x2
#define CRB_LOC_STATE_REG_VALID_STS 0x80
#define CRB_LOC_STS_GRANTED 0x1
#define CRB_CTRL_REQ_CMD_READY 0x1
#define CRB_CTRL_STS_TPM_STS 0x1
#define CRB_CTRL_STS_TPM_IDLE 0x2
#define CRB_START_INVOKE 0x1

#define CRB_INTF_TYPE_CRB 0x1       /* InterfaceType, bits 3:0 */
#define CRB_INTF_VERSION_CRB 0x1    /* InterfaceVersion, bits 7:4 */
#define CRB_INTF_CAP_CRB (1u << 14)
#define CRB_INTF_VID_IBM 0x1014     /* VID, bits 47:32, QEMU's */

/* QEMU's CRB registers take accesses of at most 4 bytes: 64-bit ones in two. */
static uint64_t crb_readq(QTestState *s, uint64_t addr)
{
    return qtest_readl(s, addr) | (uint64_t)qtest_readl(s, addr + 4) << 32;
}

/* Requests locality 0 and waits until it is granted. */
static void crb_request_locality(QTestState *s)
{
    gint64 end = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;

    qtest_writel(s, CRB_LOC_CTRL, CRB_LOC_CTRL_REQUEST_ACCESS);
    while (!(qtest_readl(s, CRB_LOC_STS) & CRB_LOC_STS_GRANTED)) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(1000);
    }
    g_assert_cmphex(qtest_readl(s, CRB_LOC_STATE) &
                        (CRB_LOC_STATE_LOC_ASSIGNED | CRB_LOC_STATE_REG_VALID_STS),
                    ==, CRB_LOC_STATE_LOC_ASSIGNED | CRB_LOC_STATE_REG_VALID_STS);
}

/*
 * Writes @cmd into the command buffer the CRB registers name, starts it and
 * waits until the TPM clears Start; the response code from the header.
 */
static uint32_t crb_transmit(QTestState *s, const uint8_t *cmd, size_t len,
                             uint8_t *resp, size_t size, size_t *resp_len)
{
    uint64_t cmd_addr = qtest_readl(s, CRB_CTRL_CMD_LADDR);
    uint64_t rsp_addr = crb_readq(s, CRB_CTRL_RSP_ADDR);
    gint64 end = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;
    uint8_t hdr[10];
    size_t n;

    g_assert_cmpuint(len, <=, qtest_readl(s, CRB_CTRL_CMD_SIZE));
    qtest_writel(s, CRB_CTRL_REQ, CRB_CTRL_REQ_CMD_READY);
    g_assert_cmphex(qtest_readl(s, CRB_CTRL_STS) & CRB_CTRL_STS_TPM_IDLE, ==, 0);
    qtest_memwrite(s, cmd_addr, cmd, len);
    qtest_writel(s, CRB_CTRL_START, CRB_START_INVOKE);
    while (qtest_readl(s, CRB_CTRL_START) & CRB_START_INVOKE) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(1000);
    }
    g_assert_cmphex(qtest_readl(s, CRB_CTRL_STS) & CRB_CTRL_STS_TPM_STS, ==, 0);
    qtest_memread(s, rsp_addr, hdr, sizeof(hdr));
    n = tis_be32(hdr + 2);
    g_assert_cmpuint(n, >=, sizeof(hdr));
    g_assert_cmpuint(n, <=, MIN(size, qtest_readl(s, CRB_CTRL_RSP_SIZE)));
    qtest_memread(s, rsp_addr, resp, n);
    *resp_len = n;
    return tis_be32(resp + 6);
}

/*
 * QEMU's tpm-crb with qtpm behind it: the interface identifies itself as a
 * CRB, and TPM2_Startup and TPM2_GetRandom go through its command buffer.
 */
static void test_crb_getrandom(void)
{
    Export e = { 0 };
    uint8_t resp[4096];
    size_t len = 0;
    uint64_t intf;

    qtpm_export_init(&e.qtpm, "2.0");
    export_start(&e, "tpm-crb");
    intf = crb_readq(e.qemu, CRB_INTF_ID);
    g_assert_cmphex(intf & 0xf, ==, CRB_INTF_TYPE_CRB);
    g_assert_cmphex((intf >> 4) & 0xf, ==, CRB_INTF_VERSION_CRB);
    g_assert_cmphex(intf & CRB_INTF_CAP_CRB, ==, CRB_INTF_CAP_CRB);
    g_assert_cmphex((intf >> 32) & 0xffff, ==, CRB_INTF_VID_IBM);
    crb_request_locality(e.qemu);
    g_assert_cmphex(crb_transmit(e.qemu, TPM2_STARTUP_CLEAR, sizeof(TPM2_STARTUP_CLEAR),
                                 resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmpuint(len, ==, 10);
    g_assert_cmphex(crb_transmit(e.qemu, TPM2_GETRANDOM_16, sizeof(TPM2_GETRANDOM_16),
                                 resp, sizeof(resp), &len), ==, TPM_RC_SUCCESS);
    g_assert_cmpuint(len, ==, 10 + 2 + 16);
    g_assert_cmpuint((resp[10] << 8) | resp[11], ==, 16);
    export_stop(&e);
    qtpm_export_cleanup(&e.qtpm);
}

/* TPM_GetCapability(TPM_CAP_VERSION_VAL): a TPM_CAP_VERSION_INFO. */
static const uint8_t TPM12_GETCAP_VERSION_VAL[18] = {
    0x00, 0xc1, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x65,
    0x00, 0x00, 0x00, 0x1a,                         /* TPM_CAP_VERSION_VAL */
    0x00, 0x00, 0x00, 0x00,                         /* subCapSize */
};

#define TPM_TAG_RSP_COMMAND 0x00c4
#define TPM_TAG_CAP_VERSION_INFO 0x0030
/* TIS interface version in INTF_CAPABILITY bits 30:28, as QEMU sets it. */
#define TIS_INTF_VERSION_1_3 2
#define TIS_INTF_VERSION_1_3_FOR_TPM2_0 3

/*
 * A TPM 1.2 image behind QEMU: QEMU tells the version from the answer to
 * its probe and presents a TPM 1.2 TIS; TPM_Startup and TPM_GetCapability
 * get TPM 1.2 answers. After both processes restart, TPM_Startup(ST_CLEAR)
 * still works on the same image (the TPM's permanent state was kept).
 */
static void test_tpm12(void)
{
    Export e = { 0 };
    uint8_t resp[4096];
    size_t len = 0;

    qtpm_export_init(&e.qtpm, "1.2");
    export_start(&e, "tpm-tis");
    g_assert_cmpuint((qtest_readl(e.qemu, TIS_REG(0, TPM_TIS_REG_INTF_CAPABILITY)) >> 28)
                         & 7, ==, TIS_INTF_VERSION_1_3);
    tis_request_locality(e.qemu, 0);
    g_assert_cmphex(transmit(&e, TPM12_STARTUP_CLEAR, sizeof(TPM12_STARTUP_CLEAR),
                             resp, sizeof(resp), &len), ==, 0);
    g_assert_cmpuint(len, ==, 10);
    g_assert_cmphex((resp[0] << 8) | resp[1], ==, TPM_TAG_RSP_COMMAND);
    g_assert_cmphex(transmit(&e, TPM12_GETCAP_VERSION_VAL,
                             sizeof(TPM12_GETCAP_VERSION_VAL), resp, sizeof(resp),
                             &len), ==, 0);
    g_assert_cmphex((resp[0] << 8) | resp[1], ==, TPM_TAG_RSP_COMMAND);
    g_assert_cmpuint(len, >=, 14 + 6);
    g_assert_cmphex((resp[14] << 8) | resp[15], ==, TPM_TAG_CAP_VERSION_INFO);
    g_assert_cmpuint(resp[16], ==, 1);
    g_assert_cmpuint(resp[17], ==, 2);
    export_stop(&e);

    export_start(&e, "tpm-tis");
    g_assert_cmpuint((qtest_readl(e.qemu, TIS_REG(0, TPM_TIS_REG_INTF_CAPABILITY)) >> 28)
                         & 7, ==, TIS_INTF_VERSION_1_3);
    tis_request_locality(e.qemu, 0);
    g_assert_cmphex(transmit(&e, TPM12_STARTUP_CLEAR, sizeof(TPM12_STARTUP_CLEAR),
                             resp, sizeof(resp), &len), ==, 0);
    export_stop(&e);
    qtpm_export_cleanup(&e.qtpm);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-export-qemu/startup-getrandom-nv",
                    test_startup_getrandom_nv);
    g_test_add_func("/swtpm-export-qemu/crb-getrandom", test_crb_getrandom);
    g_test_add_func("/swtpm-export-qemu/tpm12", test_tpm12);
    return g_test_run();
}
