/*
 * tpm-tis in front of other TPMs (libtpms TPM 1.2, the null backend) and
 * the qtest server itself: malformed requests, clients one after another,
 * another IRQ pin.
 */
#include "qemu/osdep.h"
#include "tpm-tis-util.h"

static const uint8_t TPM12_OK[10] = {
    0x00, 0xc4, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t TPM12_FAIL[10] = {
    0x00, 0xc4, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x09,
};
static const uint8_t TPM2_FAIL[10] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01,
};

#define TPM_INVALID_POSTINIT 0x26

static void check_tpm12_registers(QTestState *s)
{
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        g_assert_cmphex(tis_access(s, l), ==, TIS_ACCESS_IDLE);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_INTF_CAPABILITY)), ==,
                        TPM_TIS_CAPABILITIES_SUPPORTED1_3);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_INTERFACE_ID)), ==,
                        TPM_TIS_IFACE_ID_SUPPORTED_FLAGS1_3);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_DID_VID)), ==, 0x00011014);
    }
    tis_request_locality(s, 0);
    g_assert_cmphex(tis_sts(s, 0) & (TPM_TIS_STS_TPM_FAMILY_MASK | 0xff), ==,
                    TPM_TIS_STS_TPM_FAMILY1_2);
}

static void test_tpm12(void)
{
    TisMachine m;
    uint8_t resp[64];
    size_t len;

    tis_machine_start(&m, "1.2", NULL);
    check_tpm12_registers(m.qts);
    g_assert_cmphex(tis_transmit(m.qts, 0, TPM12_STARTUP_CLEAR,
                                 sizeof(TPM12_STARTUP_CLEAR), resp, sizeof(resp), &len),
                    ==, 0);
    g_assert_cmpmem(resp, len, TPM12_OK, sizeof(TPM12_OK));
    g_assert_cmphex(tis_transmit(m.qts, 0, TPM12_STARTUP_CLEAR,
                                 sizeof(TPM12_STARTUP_CLEAR), resp, sizeof(resp), NULL),
                    ==, TPM_INVALID_POSTINIT);
    /* The 1.2 STS has no commandCancel: writing it changes nothing. */
    qtest_writeb(m.qts, TIS_REG(0, TPM_TIS_REG_STS + 3),
                 TPM_TIS_STS_COMMAND_CANCEL >> 24);
    g_assert_cmphex(tis_sts(m.qts, 0) & 0xff, ==, TPM_TIS_STS_VALID);
    tis_machine_stop(&m);
}

static void test_null_tpm2(void)
{
    TisMachine m;
    uint8_t resp[64];
    size_t len;

    tis_machine_start(&m, "null", NULL);
    g_assert_cmphex(qtest_readl(m.qts, TIS_REG(0, TPM_TIS_REG_INTF_CAPABILITY)), ==,
                    TPM_TIS_CAPABILITIES_SUPPORTED2_0);
    tis_request_locality(m.qts, 0);
    for (int i = 0; i < 2; i++) {
        g_assert_cmphex(tis_transmit(m.qts, 0, TPM2_STARTUP_CLEAR,
                                     sizeof(TPM2_STARTUP_CLEAR), resp, sizeof(resp),
                                     &len),
                        ==, TPM_RC_FAILURE);
        g_assert_cmpmem(resp, len, TPM2_FAIL, sizeof(TPM2_FAIL));
    }
    tis_machine_stop(&m);
}

static void test_null_tpm12(void)
{
    TisMachine m;
    uint8_t resp[64];
    size_t len;

    tis_machine_start(&m, "null-1.2", NULL);
    check_tpm12_registers(m.qts);
    tis_transmit(m.qts, 0, TPM12_STARTUP_CLEAR, sizeof(TPM12_STARTUP_CLEAR), resp,
                 sizeof(resp), &len);
    g_assert_cmpmem(resp, len, TPM12_FAIL, sizeof(TPM12_FAIL));
    tis_machine_stop(&m);
}

static void assert_fail(QTestState *s, const char *line)
{
    g_autofree char *reply = qtest_cmd(s, "%s", line);

    if (!g_str_has_prefix(reply, "FAIL")) {
        g_error("'%s' answered '%s', not FAIL", line, reply);
    }
}

static void test_qtest_protocol(void)
{
    static const char *const bad[] = {
        "",
        "readb",
        "readb 0xfed4000g",
        "writel 0xfed40000",
        "read 0xfed40000 0",
        "write 0xfed40024 4 0xnothex",
        "b64write 0xfed40024 4 ***",
        "memset 1 2",
        "irq_intercept_in /machine/nowhere",
        "teleport 0x0",
        "clock_step",
        "readq -1",
    };
    TisMachine m;
    g_autofree char *r = NULL;
    uint8_t buf[8];

    tis_machine_start(&m, "null", NULL);
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_fail(m.qts, bad[i]);
    }
    r = qtest_cmd(m.qts, "endianness");
    g_assert_cmpstr(r, ==, "OK little");
    g_clear_pointer(&r, g_free);
    /* A line longer than any request gets one FAIL; the next line works. */
    {
        g_autofree char *huge = g_strnfill(5 * 1024 * 1024, 'a');
        r = qtest_cmd(m.qts, "write 0xfed40024 1 0x%s", huge);
        g_assert_cmpstr(r, ==, "FAIL line too long");
        g_clear_pointer(&r, g_free);
    }
    r = qtest_cmd(m.qts, "endianness");
    g_assert_cmpstr(r, ==, "OK little");
    /* Nothing else on the bus: all-ones, writes vanish. */
    qtest_writel(m.qts, 0x1000, 0);
    g_assert_cmphex(qtest_readl(m.qts, 0x1000), ==, 0xffffffff);
    qtest_memset(m.qts, 0x2000, 0, 8);
    qtest_memread(m.qts, 0xfed3fffe, buf, 4);
    g_assert_cmphex(buf[0] & buf[1], ==, 0xff);
    g_assert_cmphex(buf[2] | buf[3] << 8, ==, TIS_ACCESS_IDLE);
    qtest_irq_intercept_in(m.qts, "/machine/q35/ioapic");

    /* Clients one after another share the machine's state. */
    tis_request_locality(m.qts, 2);
    qtest_reconnect(m.qts);
    g_assert_cmphex(tis_access(m.qts, 2), ==,
                    TIS_ACCESS_IDLE | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    assert_fail(m.qts, "readw");
    qtest_reconnect(m.qts);
    tis_release_locality(m.qts, 2);
    g_assert_cmphex(tis_access(m.qts, 2), ==, TIS_ACCESS_IDLE);
    tis_machine_stop(&m);
}

/* -device tpm-tis,irq=10: INT_VECTOR and the line follow. */
static void test_irq_pin(void)
{
    QTestState *s = qtest_init("-tpmdev null,id=tpm0 -device tpm-tis,tpmdev=tpm0,irq=10");

    qtest_irq_intercept_in(s, "ioapic");
    g_assert_cmphex(qtest_readl(s, TIS_REG(0, TPM_TIS_REG_INT_VECTOR)), ==, 10);
    tis_request_locality(s, 0);
    qtest_writel(s, TIS_REG(0, TPM_TIS_REG_INT_ENABLE),
                 TPM_TIS_INT_ENABLED | TPM_TIS_INT_COMMAND_READY);
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    g_assert_true(qtest_get_irq(s, 10));
    g_assert_false(qtest_get_irq(s, 5));
    qtest_writel(s, TIS_REG(0, TPM_TIS_REG_INT_STATUS), TPM_TIS_INT_COMMAND_READY);
    g_assert_false(qtest_get_irq(s, 10));
    qtest_quit(s);
}

/* -qtest stdio: requests on stdin, replies on stdout, end of file quits. */
static void test_qtest_stdio(void)
{
    g_autofree char *bin = qtest_qtpm_binary();
    g_autofree char *cmd = g_strdup_printf(
        "printf 'readl 0xfed40f00\\nwriteb 0xfed40000 2\\nreadb 0xfed40000\\nnope\\n' | "
        "%s -tpmdev null,id=tpm0 -device tpm-tis,tpmdev=tpm0 -qtest stdio",
        bin);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    g_autofree char *out = NULL;
    g_autoptr(GError) err = NULL;
    int status;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &out, NULL,
                               &status, &err));
    g_assert_no_error(err);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_cmpstr(out, ==,
                    "OK 0x0000000000011014\nOK\nOK 0x00000000000000a1\n"
                    "FAIL Unknown command 'nope'\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tpm-tis-variants/tpm12", test_tpm12);
    g_test_add_func("/tpm-tis-variants/null-tpm2", test_null_tpm2);
    g_test_add_func("/tpm-tis-variants/null-tpm12", test_null_tpm12);
    g_test_add_func("/tpm-tis-variants/qtest-protocol", test_qtest_protocol);
    g_test_add_func("/tpm-tis-variants/irq-pin", test_irq_pin);
    g_test_add_func("/tpm-tis-variants/qtest-stdio", test_qtest_stdio);
    return g_test_run();
}
