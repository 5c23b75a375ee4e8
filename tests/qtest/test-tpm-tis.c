/*
 * The tpm-tis device of build/qtpm over qtest, with a libtpms TPM 2.0 on a
 * blank qcow2 image: registers, locality arbitration, transmission,
 * interrupts and the IRQ line, responseRetry, cancel, abort, reset, and a
 * seeded run of hostile MMIO after which the interface still works.
 */
#include "qemu/osdep.h"
#include "tpm-tis-util.h"

static const uint8_t TPM2_STARTUP_OK[10] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00,
};

typedef void (*TisTestFn)(QTestState *s);

static void run_with_machine(gconstpointer data)
{
    TisMachine m;

    tis_machine_start(&m, "2.0", NULL);
    ((TisTestFn)data)(m.qts);
    tis_machine_stop(&m);
}

static void startup(QTestState *s, int l)
{
    uint8_t resp[64];

    g_assert_cmphex(tis_transmit(s, l, TPM2_STARTUP_CLEAR, sizeof(TPM2_STARTUP_CLEAR),
                                 resp, sizeof(resp), NULL),
                    ==, TPM_RC_SUCCESS);
}

static void test_registers(QTestState *s)
{
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        g_assert_cmphex(tis_access(s, l), ==, TIS_ACCESS_IDLE);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_INTF_CAPABILITY)), ==,
                        TPM_TIS_CAPABILITIES_SUPPORTED2_0);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_INTERFACE_ID)), ==,
                        TPM_TIS_IFACE_ID_SUPPORTED_FLAGS2_0);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_DID_VID)), ==, 0x00011014);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_RID)), ==, 0x01);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_INT_VECTOR)), ==, 5);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_INT_ENABLE)), ==,
                        TPM_TIS_INT_POLARITY_LOW_LEVEL);
        g_assert_cmphex(tis_sts(s, l), ==, 0xffffffff);
    }
    /* A 64-bit read splits into DID_VID and RID; outside the device: all-ones. */
    g_assert_cmphex(qtest_readq(s, TIS_REG(0, TPM_TIS_REG_DID_VID)), ==,
                    0x0000000100011014ULL);
    g_assert_cmphex(qtest_readl(s, TPM_TIS_ADDR_BASE + TPM_TIS_ADDR_SIZE), ==,
                    0xffffffff);
    g_assert_cmphex(qtest_readl(s, TPM_TIS_ADDR_BASE - 4), ==, 0xffffffff);
}

/* Request and relinquish each locality; locality 4 ignores software. */
static void test_localities(QTestState *s)
{
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_REQUEST_USE);
        if (l == 4) {
            g_assert_cmphex(tis_access(s, l), ==, TIS_ACCESS_IDLE);
            continue;
        }
        g_assert_cmphex(tis_access(s, l), ==,
                        TIS_ACCESS_IDLE | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        g_assert_cmphex(tis_sts(s, l) & TPM_TIS_STS_TPM_FAMILY_MASK, ==,
                        TPM_TIS_STS_TPM_FAMILY2_0);
        for (int o = 0; o < TPM_TIS_NUM_LOCALITIES; o++) {
            if (o != l) {
                g_assert_cmphex(tis_access(s, o), ==, TIS_ACCESS_IDLE);
                g_assert_cmphex(tis_sts(s, o), ==, 0xffffffff);
            }
        }
        tis_release_locality(s, l);
        g_assert_cmphex(tis_access(s, l), ==, TIS_ACCESS_IDLE);
    }
}

/* A waiting locality shows requestUse; everyone else sees pendingRequest. */
static void test_pending_request(QTestState *s)
{
    tis_request_locality(s, 0);
    for (int l = 1; l < 4; l++) {
        qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_REQUEST_USE);
        g_assert_cmphex(tis_access(s, l), ==,
                        TIS_ACCESS_IDLE | TPM_TIS_ACCESS_REQUEST_USE |
                            (l > 1 ? TPM_TIS_ACCESS_PENDING_REQUEST : 0));
        g_assert_cmphex(tis_access(s, 0), ==,
                        TIS_ACCESS_IDLE | TPM_TIS_ACCESS_ACTIVE_LOCALITY |
                            TPM_TIS_ACCESS_PENDING_REQUEST);
    }
    /* Release hands over to the highest requester: 3, then 2, then 1. */
    for (int l = 3, prev = 0; l >= 1; prev = l, l--) {
        tis_release_locality(s, prev);
        g_assert_cmphex(tis_access(s, l) &
                            (TPM_TIS_ACCESS_ACTIVE_LOCALITY | TPM_TIS_ACCESS_REQUEST_USE),
                        ==, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        g_assert_cmphex(tis_access(s, l) & TPM_TIS_ACCESS_PENDING_REQUEST, ==,
                        l > 1 ? TPM_TIS_ACCESS_PENDING_REQUEST : 0);
    }
    tis_release_locality(s, 1);
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        g_assert_cmphex(tis_access(s, l), ==, TIS_ACCESS_IDLE);
    }
}

static void test_seize(QTestState *s)
{
    for (int locty = 0; locty < 3; locty++) {
        tis_request_locality(s, locty);
        for (int l = 0; l < locty; l++) {
            /* Lower localities cannot seize. */
            qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_SEIZE);
            g_assert_cmphex(tis_access(s, locty) & TPM_TIS_ACCESS_ACTIVE_LOCALITY, ==,
                            TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        }
        for (int l = locty + 1; l < 4; l++) {
            /* Higher ones can; the loser sees beenSeized until it clears it. */
            qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_SEIZE);
            g_assert_cmphex(tis_access(s, l), ==,
                            TIS_ACCESS_IDLE | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
            g_assert_cmphex(tis_access(s, l - 1), ==,
                            TIS_ACCESS_IDLE | TPM_TIS_ACCESS_BEEN_SEIZED);
            qtest_writeb(s, TIS_REG(l - 1, TPM_TIS_REG_ACCESS),
                         TPM_TIS_ACCESS_BEEN_SEIZED);
            g_assert_cmphex(tis_access(s, l - 1), ==, TIS_ACCESS_IDLE);
        }
        tis_release_locality(s, 3);
        for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
            g_assert_cmphex(tis_access(s, l), ==, TIS_ACCESS_IDLE);
        }
    }
}

/* QEMU's tpm-tis-test transmit check: STS and burst count at every byte. */
static void test_transmit_bytewise(QTestState *s)
{
    uint8_t resp[10];
    uint32_t sts;
    uint32_t bcount;

    tis_request_locality(s, 0);
    sts = tis_sts(s, 0);
    g_assert_cmphex(sts & 0xff, ==, 0);
    g_assert_cmphex(sts & TPM_TIS_STS_TPM_FAMILY_MASK, ==, TPM_TIS_STS_TPM_FAMILY2_0);
    bcount = TPM_TIS_STS_BURST_COUNT(sts);
    g_assert_cmpuint(bcount, >=, 128);

    qtest_writel(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(tis_sts(s, 0) & 0xff, ==, TPM_TIS_STS_COMMAND_READY);
    for (size_t i = 0; i < sizeof(TPM2_STARTUP_CLEAR); i++) {
        qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO), TPM2_STARTUP_CLEAR[i]);
        sts = tis_sts(s, 0);
        g_assert_cmphex(sts & 0xff, ==,
                        i + 1 < sizeof(TPM2_STARTUP_CLEAR)
                            ? TPM_TIS_STS_EXPECT | TPM_TIS_STS_VALID
                            : TPM_TIS_STS_VALID);
        g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(sts), ==, --bcount);
    }
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_TPM_GO);
    sts = tis_wait_sts(s, 0, TPM_TIS_STS_DATA_AVAILABLE, TPM_TIS_STS_DATA_AVAILABLE);
    g_assert_cmphex(sts & 0xff, ==, TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE);
    bcount = TPM_TIS_STS_BURST_COUNT(sts);
    g_assert_cmpuint(bcount, ==, sizeof(resp));
    for (size_t i = 0; i < sizeof(resp); i++) {
        resp[i] = qtest_readb(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO));
        sts = tis_sts(s, 0);
        if (i + 1 < sizeof(resp)) {
            g_assert_cmphex(sts & 0xff, ==,
                            TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE);
            g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(sts), ==, --bcount);
        } else {
            g_assert_cmphex(sts & 0xff, ==, TPM_TIS_STS_VALID);
        }
    }
    g_assert_cmpmem(resp, sizeof(resp), TPM2_STARTUP_OK, sizeof(TPM2_STARTUP_OK));
    /* A read with no data left returns the no-data byte. */
    g_assert_cmphex(qtest_readb(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO)), ==,
                    TPM_TIS_NO_DATA_BYTE);
    tis_release_locality(s, 0);
    g_assert_cmphex(tis_access(s, 0), ==, TIS_ACCESS_IDLE);
}

/* Bursts through XDATA_FIFO, "read"/"write" and "b64read"/"b64write". */
static void test_transmit_bursts(QTestState *s)
{
    uint8_t resp[64];
    size_t len;

    tis_request_locality(s, 0);
    startup(s, 0);
    g_assert_cmphex(tis_transmit(s, 0, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8), resp,
                                 sizeof(resp), &len),
                    ==, TPM_RC_SUCCESS);
    g_assert_cmpuint(len, ==, 20);
    g_assert_cmphex(resp[10] << 8 | resp[11], ==, 8);

    /* The same command written with b64write in one dword and two words. */
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    qtest_bufwrite(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO), TPM2_GETRANDOM_8, 4);
    qtest_bufwrite(s, TIS_REG(0, TPM_TIS_REG_DATA_XFIFO), TPM2_GETRANDOM_8 + 4, 4);
    qtest_writew(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO), 0x7b01);
    qtest_writew(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO), 0x0800);
    g_assert_cmphex(tis_sts(s, 0) & 0xff, ==, TPM_TIS_STS_VALID);
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_TPM_GO);
    tis_wait_sts(s, 0, TPM_TIS_STS_DATA_AVAILABLE, TPM_TIS_STS_DATA_AVAILABLE);
    qtest_bufread(s, TIS_REG(0, TPM_TIS_REG_DATA_XFIFO), resp, 4);
    g_assert_cmphex(tis_be32(resp), ==, 0x80010000);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(tis_sts(s, 0)), ==, 16);
    qtest_memread(s, TIS_REG(0, TPM_TIS_REG_DATA_XFIFO), resp + 4, 4);
    g_assert_cmpuint(tis_be32(resp + 2), ==, 20);
    g_assert_cmpuint(tis_be32(resp + 6), ==, TPM_RC_SUCCESS);
}

static void test_response_retry(QTestState *s)
{
    uint8_t first[20], again[20];

    tis_request_locality(s, 0);
    startup(s, 0);
    tis_send(s, 0, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8));
    g_assert_cmpuint(tis_recv(s, 0, first, sizeof(first)), ==, 20);
    g_assert_cmphex(tis_sts(s, 0) & 0xff, ==, TPM_TIS_STS_VALID);
    /* responseRetry rewinds to the first byte of the same response. */
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_RESPONSE_RETRY);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(tis_sts(s, 0)), ==, 20);
    g_assert_cmpuint(tis_recv(s, 0, again, sizeof(again)), ==, 20);
    g_assert_cmpmem(first, sizeof(first), again, sizeof(again));
    /* Half-way through works too. */
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_RESPONSE_RETRY);
    qtest_memread(s, TIS_REG(0, TPM_TIS_REG_DATA_XFIFO), again, 4);
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_RESPONSE_RETRY);
    g_assert_cmpuint(tis_recv(s, 0, again, sizeof(again)), ==, 20);
    g_assert_cmpmem(first, sizeof(first), again, sizeof(again));
}

static void clear_int_status(QTestState *s, int l, uint32_t bits)
{
    qtest_writel(s, TIS_REG(l, TPM_TIS_REG_INT_STATUS), bits);
    g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_INT_STATUS)) & bits, ==, 0);
}

static void test_interrupts(QTestState *s)
{
    uint32_t enable = TPM_TIS_INT_ENABLED | TPM_TIS_INT_POLARITY_LOW_LEVEL |
                      TPM_TIS_INTERRUPTS_SUPPORTED;
    uint8_t resp[64];

    qtest_irq_intercept_in(s, "ioapic");
    tis_request_locality(s, 0);
    qtest_writel(s, TIS_REG(0, TPM_TIS_REG_INT_ENABLE), enable);
    g_assert_cmphex(qtest_readl(s, TIS_REG(0, TPM_TIS_REG_INT_ENABLE)), ==, enable);
    g_assert_false(qtest_get_irq(s, 5));

    /* localityChange: released and requested again. */
    tis_release_locality(s, 0);
    tis_request_locality(s, 0);
    g_assert_cmphex(qtest_readl(s, TIS_REG(0, TPM_TIS_REG_INT_STATUS)), ==,
                    TPM_TIS_INT_LOCALITY_CHANGED);
    g_assert_true(qtest_get_irq(s, 5));
    /* Writing 0 clears nothing; writing the bit clears it and drops the line. */
    qtest_writel(s, TIS_REG(0, TPM_TIS_REG_INT_STATUS), 0);
    g_assert_true(qtest_get_irq(s, 5));
    clear_int_status(s, 0, TPM_TIS_INT_LOCALITY_CHANGED);
    g_assert_false(qtest_get_irq(s, 5));

    /* commandReady. */
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(qtest_readl(s, TIS_REG(0, TPM_TIS_REG_INT_STATUS)), ==,
                    TPM_TIS_INT_COMMAND_READY);
    g_assert_true(qtest_get_irq(s, 5));
    clear_int_status(s, 0, TPM_TIS_INT_COMMAND_READY);
    g_assert_false(qtest_get_irq(s, 5));

    /* dataAvail and stsValid arrive with the response, from the main loop. */
    for (size_t i = 0; i < sizeof(TPM2_STARTUP_CLEAR); i++) {
        qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO), TPM2_STARTUP_CLEAR[i]);
    }
    g_assert_false(qtest_get_irq(s, 5));
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_TPM_GO);
    tis_wait_sts(s, 0, TPM_TIS_STS_DATA_AVAILABLE, TPM_TIS_STS_DATA_AVAILABLE);
    g_assert_true(qtest_get_irq(s, 5));
    g_assert_cmphex(qtest_readl(s, TIS_REG(0, TPM_TIS_REG_INT_STATUS)), ==,
                    TPM_TIS_INT_DATA_AVAILABLE | TPM_TIS_INT_STS_VALID);
    /* Another locality cannot clear them. */
    qtest_writel(s, TIS_REG(1, TPM_TIS_REG_INT_STATUS), 0xffffffff);
    g_assert_true(qtest_get_irq(s, 5));
    clear_int_status(s, 0, TPM_TIS_INT_DATA_AVAILABLE);
    g_assert_true(qtest_get_irq(s, 5));
    clear_int_status(s, 0, TPM_TIS_INT_STS_VALID);
    g_assert_false(qtest_get_irq(s, 5));

    /* Reading the last byte raises stsValid again. */
    g_assert_cmpuint(tis_recv(s, 0, resp, sizeof(resp)), ==, 10);
    g_assert_cmphex(qtest_readl(s, TIS_REG(0, TPM_TIS_REG_INT_STATUS)), ==,
                    TPM_TIS_INT_STS_VALID);
    g_assert_true(qtest_get_irq(s, 5));
    /* Clearing the global enable lowers the line; status stays. */
    qtest_writel(s, TIS_REG(0, TPM_TIS_REG_INT_ENABLE), TPM_TIS_INTERRUPTS_SUPPORTED);
    g_assert_false(qtest_get_irq(s, 5));
    qtest_writel(s, TIS_REG(0, TPM_TIS_REG_INT_ENABLE), enable);
    g_assert_true(qtest_get_irq(s, 5));
    clear_int_status(s, 0, TPM_TIS_INTERRUPTS_SUPPORTED);
    g_assert_false(qtest_get_irq(s, 5));
}

/*
 * commandCancel while TPM2_CreatePrimary generates an RSA key. Whether the
 * TPM stops early depends on when the cancel lands; either way it answers
 * with TPM_RC_CANCELED or a key, and the interface is ready afterwards.
 */
static void test_cancel(QTestState *s)
{
    static uint8_t resp[TPM_TIS_BUFFER_MAX];
    uint32_t rc;
    int cancelled = 0;

    tis_request_locality(s, 0);
    startup(s, 0);
    for (int i = 0; i < 3; i++) {
        tis_send(s, 0, TPM2_CREATEPRIMARY_RSA2048, sizeof(TPM2_CREATEPRIMARY_RSA2048));
        qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS + 3),
                     TPM_TIS_STS_COMMAND_CANCEL >> 24);
        tis_recv(s, 0, resp, sizeof(resp));
        rc = tis_be32(resp + 6);
        if (rc != TPM_RC_SUCCESS) {
            g_assert_cmphex(rc, ==, TPM_RC_CANCELED);
            cancelled++;
        }
        /* Cancel when nothing executes does nothing. */
        qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS + 3),
                     TPM_TIS_STS_COMMAND_CANCEL >> 24);
        g_assert_cmphex(tis_sts(s, 0) & 0xff, ==, TPM_TIS_STS_VALID);
    }
    g_test_message("%d of 3 key generations cancelled", cancelled);
    g_assert_cmphex(tis_transmit(s, 0, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8), resp,
                                 sizeof(resp), NULL),
                    ==, TPM_RC_SUCCESS);
}

/* commandReady during execution aborts: no response, ready for the next. */
static void test_abort(QTestState *s)
{
    uint8_t resp[64];
    uint32_t sts;

    tis_request_locality(s, 0);
    startup(s, 0);
    tis_send(s, 0, TPM2_CREATEPRIMARY_RSA2048, sizeof(TPM2_CREATEPRIMARY_RSA2048));
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    sts = tis_wait_sts(s, 0, TPM_TIS_STS_COMMAND_READY, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(sts & 0xff, ==, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(qtest_readb(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO)), ==,
                    TPM_TIS_NO_DATA_BYTE);
    g_assert_cmphex(tis_transmit(s, 0, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8), resp,
                                 sizeof(resp), NULL),
                    ==, TPM_RC_SUCCESS);

    /* Abort during reception drops the partial command. */
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    qtest_memwrite(s, TIS_REG(0, TPM_TIS_REG_DATA_FIFO), TPM2_GETRANDOM_8, 4);
    g_assert_cmphex(tis_sts(s, 0) & 0xff, ==, TPM_TIS_STS_VALID | TPM_TIS_STS_EXPECT);
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(tis_sts(s, 0) & 0xff, ==, TPM_TIS_STS_COMMAND_READY);

    /* A seize during execution: the seizer gets the interface after it. */
    tis_send(s, 0, TPM2_CREATEPRIMARY_RSA2048, sizeof(TPM2_CREATEPRIMARY_RSA2048));
    qtest_writeb(s, TIS_REG(2, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_SEIZE);
    for (gint64 end = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;
         !(tis_access(s, 2) & TPM_TIS_ACCESS_ACTIVE_LOCALITY);) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(500);
    }
    g_assert_cmphex(tis_access(s, 0), ==, TIS_ACCESS_IDLE | TPM_TIS_ACCESS_BEEN_SEIZED);
    g_assert_cmphex(tis_transmit(s, 2, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8), resp,
                                 sizeof(resp), NULL),
                    ==, TPM_RC_SUCCESS);
}

/* QMP system_reset: localities released, the TPM needs TPM2_Startup again. */
static void test_reset(QTestState *s)
{
    uint8_t resp[64];
    JsonNode *r;

    tis_request_locality(s, 0);
    startup(s, 0);
    g_assert_cmphex(tis_transmit(s, 0, TPM2_STARTUP_CLEAR, sizeof(TPM2_STARTUP_CLEAR),
                                 resp, sizeof(resp), NULL),
                    ==, TPM_RC_INITIALIZE);
    qtest_writel(s, TIS_REG(0, TPM_TIS_REG_INT_ENABLE),
                 TPM_TIS_INT_ENABLED | TPM_TIS_INT_DATA_AVAILABLE);
    qtest_writeb(s, TIS_REG(2, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_REQUEST_USE);

    r = qtest_qmp(s, "{'execute': 'system_reset'}");
    g_assert_true(json_object_has_member(qtest_qdict(r), "return"));
    json_node_unref(r);
    json_node_unref(qtest_qmp_eventwait(s, "RESET"));

    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        g_assert_cmphex(tis_access(s, l) & ~TPM_TIS_ACCESS_TPM_ESTABLISHMENT, ==,
                        TPM_TIS_ACCESS_TPM_REG_VALID_STS);
        g_assert_cmphex(qtest_readl(s, TIS_REG(l, TPM_TIS_REG_INT_ENABLE)), ==,
                        TPM_TIS_INT_POLARITY_LOW_LEVEL);
    }
    tis_request_locality(s, 0);
    g_assert_cmphex(tis_sts(s, 0) & 0xff, ==, 0);
    g_assert_cmphex(tis_transmit(s, 0, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8), resp,
                                 sizeof(resp), NULL),
                    ==, TPM_RC_INITIALIZE);
    startup(s, 0);
}

/* An oversize command fills the buffer and is refused by the TPM. */
static void test_oversize_command(QTestState *s)
{
    static uint8_t cmd[TPM_TIS_BUFFER_MAX + 64];
    uint8_t resp[64];
    size_t off = 0;

    tis_request_locality(s, 0);
    startup(s, 0);
    memcpy(cmd, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8));
    cmd[2] = 0x00;
    cmd[3] = 0x01; /* paramSize 0x10000c: more than the buffer holds */
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    while (off < sizeof(cmd)) {
        qtest_memwrite(s, TIS_REG(0, TPM_TIS_REG_DATA_XFIFO), cmd + off, 4);
        off += 4;
    }
    g_assert_cmphex(tis_sts(s, 0) & 0xff, ==, TPM_TIS_STS_VALID);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(tis_sts(s, 0)), ==, 0);
    qtest_writeb(s, TIS_REG(0, TPM_TIS_REG_STS), TPM_TIS_STS_TPM_GO);
    g_assert_cmpuint(tis_recv(s, 0, resp, sizeof(resp)), ==, 10);
    g_assert_cmphex(tis_be32(resp + 6), !=, TPM_RC_SUCCESS);
    g_assert_cmphex(tis_transmit(s, 0, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8), resp,
                                 sizeof(resp), NULL),
                    ==, TPM_RC_SUCCESS);
}

static const uint32_t hostile_offsets[] = {
    0x00, 0x01, 0x08, 0x0a, 0x0c, 0x10, 0x13, 0x14, 0x18, 0x19, 0x1a,  0x1b,  0x24,
    0x25, 0x26, 0x27, 0x30, 0x80, 0x81, 0x9c, 0xbc, 0xbf, 0xc0, 0xf00, 0xf04, 0xffc,
};

static void hostile_op(QTestState *s, GRand *rand)
{
    int l = g_rand_int_range(rand, 0, TPM_TIS_NUM_LOCALITIES);
    uint64_t addr = TIS_REG(
        l, hostile_offsets[g_rand_int_range(rand, 0, ARRAY_SIZE(hostile_offsets))]);
    uint64_t val = (uint64_t)g_rand_int(rand) << 32 | g_rand_int(rand);
    uint8_t buf[16];
    int kind = g_rand_int_range(rand, 0, 10);
    size_t len = g_rand_int_range(rand, 1, sizeof(buf) + 1);

    switch (kind) {
    case 0 ... 3: {
        static const char sizes[] = "bwlq";
        g_free(qtest_cmd(s, "read%c 0x%" PRIx64, sizes[kind], addr));
        break;
    }
    case 4 ... 7: {
        static const char sizes[] = "bwlq";
        g_autofree char *r =
            qtest_cmd(s, "write%c 0x%" PRIx64 " 0x%" PRIx64, sizes[kind - 4], addr, val);
        g_assert_cmpstr(r, ==, "OK");
        break;
    }
    case 8:
        qtest_memread(s, addr, buf, len);
        break;
    default:
        for (size_t i = 0; i < len; i++) {
            buf[i] = g_rand_int(rand);
        }
        qtest_memwrite(s, addr, buf, len);
        break;
    }
}

/* Take the interface back from whatever state the hostile run left. */
static void recover(QTestState *s)
{
    for (int l = 0; l < 4; l++) {
        qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_ACCESS),
                     TPM_TIS_ACCESS_ACTIVE_LOCALITY | TPM_TIS_ACCESS_BEEN_SEIZED);
    }
    for (gint64 end = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;;) {
        qtest_writeb(s, TIS_REG(3, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_SEIZE);
        if (tis_access(s, 3) & TPM_TIS_ACCESS_ACTIVE_LOCALITY) {
            break;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(500);
    }
    qtest_writel(s, TIS_REG(3, TPM_TIS_REG_INT_ENABLE), 0);
    qtest_writeb(s, TIS_REG(3, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    tis_wait_sts(s, 3, TPM_TIS_STS_COMMAND_READY, TPM_TIS_STS_COMMAND_READY);
}

/* Seeded random MMIO of every size over all localities; then a clean GetRandom. */
static void test_hostile_mmio(QTestState *s)
{
    const char *seed_env = g_getenv("QTPM_HOSTILE_SEED");
    guint32 seed = seed_env ? (guint32)g_ascii_strtoull(seed_env, NULL, 0) : 0x715f00d;
    GRand *rand = g_rand_new_with_seed(seed);
    uint8_t resp[64];
    size_t len;
    uint32_t rc;

    g_test_message("hostile MMIO seed 0x%x (set QTPM_HOSTILE_SEED to replay)", seed);
    tis_request_locality(s, 0);
    startup(s, 0);
    tis_release_locality(s, 0);
    for (int i = 0; i < 5000; i++) {
        hostile_op(s, rand);
    }
    g_rand_free(rand);
    recover(s);
    tis_release_locality(s, 3);
    tis_request_locality(s, 0);
    rc = tis_transmit(s, 0, TPM2_GETRANDOM_8, sizeof(TPM2_GETRANDOM_8), resp,
                      sizeof(resp), &len);
    g_assert_cmphex(rc, ==, TPM_RC_SUCCESS);
    g_assert_cmpuint(len, ==, 20);
    g_assert_cmpuint(resp[10] << 8 | resp[11], ==, 8);
}

#define ADD(name, fn)                                                                    \
    g_test_add_data_func("/tpm-tis/" name, (gconstpointer)(fn), run_with_machine)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("registers", test_registers);
    ADD("localities", test_localities);
    ADD("pending-request", test_pending_request);
    ADD("seize", test_seize);
    ADD("transmit-bytewise", test_transmit_bytewise);
    ADD("transmit-bursts", test_transmit_bursts);
    ADD("response-retry", test_response_retry);
    ADD("interrupts", test_interrupts);
    ADD("cancel", test_cancel);
    ADD("abort", test_abort);
    ADD("reset", test_reset);
    ADD("oversize-command", test_oversize_command);
    ADD("hostile-mmio", test_hostile_mmio);
    return g_test_run();
}
