/*
 * The TIS device model in-process: registers, locality arbitration, the
 * command state machine, interrupts, saved state and hostile MMIO, driven
 * through the address space in front of the null backend (whose answer to
 * every command is a 10-byte TPM failure response).
 */
#include "qemu/osdep.h"
#include "exec/memory.h"
#include "hw/irq.h"
#include "hw/tpm/tpm_tis.h"
#include "qemu/option.h"
#include "sysemu/tpm_frontend.h"

#define IRQ_PIN 5

static const uint8_t TPM2_STARTUP[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};
static const uint8_t TPM2_FAILURE[10] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01,
};
static const uint8_t TPM12_FAILURE[10] = {
    0x00, 0xc4, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x09,
};

typedef struct Fixture {
    TPMBackend *be;
    TPMTISState *tis;
} Fixture;

static uint8_t rb(int l, uint32_t reg)
{
    return address_space_ldn(TPM_TIS_ADDR(l, reg), 1);
}

static uint32_t rl(int l, uint32_t reg)
{
    return address_space_ldn(TPM_TIS_ADDR(l, reg), 4);
}

static void wb(int l, uint32_t reg, uint8_t v)
{
    address_space_stn(TPM_TIS_ADDR(l, reg), 1, v);
}

static void wl(int l, uint32_t reg, uint32_t v)
{
    address_space_stn(TPM_TIS_ADDR(l, reg), 4, v);
}

static void fixture_setup_version(Fixture *f, const char *version)
{
    g_autoptr(GHashTable) opts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GError) err = NULL;

    g_hash_table_insert(opts, g_strdup("type"), g_strdup("null"));
    g_hash_table_insert(opts, g_strdup("id"), g_strdup("tpm0"));
    g_hash_table_insert(opts, g_strdup("version"), g_strdup(version));
    f->be = tpm_backend_new("null", "tpm0", opts, &err);
    g_assert_no_error(err);
    f->tis = tpm_tis_create(f->be, IRQ_PIN, &err);
    g_assert_no_error(err);
    g_assert_true(tpm_tis_find() == f->tis);
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    fixture_setup_version(f, data ? data : "2.0");
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    tpm_tis_destroy(f->tis);
    tpm_backend_free(f->be);
    g_assert_null(tpm_tis_find());
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 0);
}

/* Runs the main loop until locality @l shows dataAvail (10 s upper bound). */
static uint32_t wait_data_available(int l)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    uint32_t sts;

    for (;;) {
        sts = rl(l, TPM_TIS_REG_STS);
        if (sts & TPM_TIS_STS_DATA_AVAILABLE) {
            return sts;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(1000);
        }
    }
}

static void request_locality(int l)
{
    wb(l, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    g_assert_cmphex(rb(l, TPM_TIS_REG_ACCESS) & TPM_TIS_ACCESS_ACTIVE_LOCALITY, ==,
                    TPM_TIS_ACCESS_ACTIVE_LOCALITY);
}

static void send_command(int l, const uint8_t *cmd, size_t len)
{
    wb(l, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    for (size_t i = 0; i < len; i++) {
        wb(l, TPM_TIS_REG_DATA_FIFO, cmd[i]);
    }
    wb(l, TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO);
}

static void read_response(int l, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = rb(l, TPM_TIS_REG_DATA_FIFO);
    }
}

static void test_registers(Fixture *f, gconstpointer data)
{
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        g_assert_cmphex(rl(l, TPM_TIS_REG_DID_VID), ==, 0x00011014);
        g_assert_cmphex(rl(l, TPM_TIS_REG_RID), ==, 0x01);
        g_assert_cmphex(rl(l, TPM_TIS_REG_INTF_CAPABILITY), ==,
                        TPM_TIS_CAPABILITIES_SUPPORTED2_0);
        g_assert_cmphex(rl(l, TPM_TIS_REG_INTERFACE_ID), ==,
                        TPM_TIS_IFACE_ID_SUPPORTED_FLAGS2_0);
        g_assert_cmphex(rl(l, TPM_TIS_REG_INT_VECTOR), ==, IRQ_PIN);
        g_assert_cmphex(rl(l, TPM_TIS_REG_INT_ENABLE), ==,
                        TPM_TIS_INT_POLARITY_LOW_LEVEL);
        g_assert_cmphex(rb(l, TPM_TIS_REG_ACCESS), ==,
                        TPM_TIS_ACCESS_TPM_REG_VALID_STS |
                            TPM_TIS_ACCESS_TPM_ESTABLISHMENT);
        /* STS and the FIFO belong to the active locality only. */
        g_assert_cmphex(rl(l, TPM_TIS_REG_STS), ==, 0xffffffff);
        g_assert_cmphex(rb(l, TPM_TIS_REG_DATA_FIFO), ==, 0xff);
        /* Unimplemented offsets float high; the byte lanes of DID_VID split. */
        g_assert_cmphex(rl(l, 0x40), ==, 0xffffffff);
        g_assert_cmphex(rb(l, TPM_TIS_REG_DID_VID + 2), ==, 0x01);
        g_assert_cmphex(address_space_ldn(TPM_TIS_ADDR(l, TPM_TIS_REG_DID_VID), 2), ==,
                        0x1014);
    }
    /* Just past the last locality is unmapped bus. */
    g_assert_cmphex(address_space_ldn(TPM_TIS_ADDR(5, TPM_TIS_REG_DID_VID), 4), ==,
                    0xffffffff);
    /* A 64-bit read is split in two dwords: DID_VID then RID. */
    g_assert_cmphex(address_space_ldn(TPM_TIS_ADDR(0, TPM_TIS_REG_DID_VID), 8), ==,
                    0x0000000100011014ULL);
    /* INT_VECTOR is hard-wired; writes to read-only registers change nothing. */
    request_locality(0);
    wl(0, TPM_TIS_REG_INT_VECTOR, 9);
    wl(0, TPM_TIS_REG_DID_VID, 0);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_VECTOR), ==, IRQ_PIN);
    g_assert_cmphex(rl(0, TPM_TIS_REG_DID_VID), ==, 0x00011014);
}

static void test_tpm12_registers(Fixture *f, gconstpointer data)
{
    uint8_t resp[10];

    g_assert_cmphex(rl(0, TPM_TIS_REG_INTF_CAPABILITY), ==,
                    TPM_TIS_CAPABILITIES_SUPPORTED1_3);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INTERFACE_ID), ==, 0xffffffff);
    request_locality(0);
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & TPM_TIS_STS_TPM_FAMILY_MASK, ==,
                    TPM_TIS_STS_TPM_FAMILY1_2);
    send_command(0, TPM2_STARTUP, sizeof(TPM2_STARTUP));
    wait_data_available(0);
    read_response(0, resp, sizeof(resp));
    g_assert_cmpmem(resp, sizeof(resp), TPM12_FAILURE, sizeof(TPM12_FAILURE));
    /* commandCancel and resetEstablishment do not exist in the 1.2 STS. */
    wl(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_CANCEL);
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==, TPM_TIS_STS_VALID);
}

static void test_localities(Fixture *f, gconstpointer data)
{
    const uint8_t idle =
        TPM_TIS_ACCESS_TPM_REG_VALID_STS | TPM_TIS_ACCESS_TPM_ESTABLISHMENT;

    for (int l = 0; l < 4; l++) {
        wb(l, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
        g_assert_cmphex(rb(l, TPM_TIS_REG_ACCESS), ==,
                        idle | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        g_assert_cmphex(rl(l, TPM_TIS_REG_STS) & TPM_TIS_STS_TPM_FAMILY_MASK, ==,
                        TPM_TIS_STS_TPM_FAMILY2_0);
        wb(l, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        g_assert_cmphex(rb(l, TPM_TIS_REG_ACCESS), ==, idle);
    }
    /* Locality 4 is the platform's: software writes there are ignored. */
    wb(4, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    g_assert_cmphex(rb(4, TPM_TIS_REG_ACCESS), ==, idle);
    wb(4, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_SEIZE);
    g_assert_cmphex(rb(4, TPM_TIS_REG_ACCESS), ==, idle);
}

static void test_pending_and_release(Fixture *f, gconstpointer data)
{
    const uint8_t idle =
        TPM_TIS_ACCESS_TPM_REG_VALID_STS | TPM_TIS_ACCESS_TPM_ESTABLISHMENT;

    request_locality(1);
    wb(0, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    wb(3, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    g_assert_cmphex(rb(1, TPM_TIS_REG_ACCESS), ==,
                    idle | TPM_TIS_ACCESS_ACTIVE_LOCALITY |
                        TPM_TIS_ACCESS_PENDING_REQUEST);
    g_assert_cmphex(rb(0, TPM_TIS_REG_ACCESS), ==,
                    idle | TPM_TIS_ACCESS_REQUEST_USE | TPM_TIS_ACCESS_PENDING_REQUEST);
    /* Release: the highest waiting locality (3) wins, then 0. */
    wb(1, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    g_assert_cmphex(rb(3, TPM_TIS_REG_ACCESS), ==,
                    idle | TPM_TIS_ACCESS_ACTIVE_LOCALITY |
                        TPM_TIS_ACCESS_PENDING_REQUEST);
    g_assert_cmphex(rb(1, TPM_TIS_REG_ACCESS), ==, idle | TPM_TIS_ACCESS_PENDING_REQUEST);
    /* A waiting locality may withdraw its request. */
    wb(0, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    g_assert_cmphex(rb(0, TPM_TIS_REG_ACCESS), ==, idle);
    g_assert_cmphex(rb(3, TPM_TIS_REG_ACCESS), ==, idle | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    wb(3, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        g_assert_cmphex(rb(l, TPM_TIS_REG_ACCESS), ==, idle);
    }
}

static void test_seize(Fixture *f, gconstpointer data)
{
    const uint8_t idle =
        TPM_TIS_ACCESS_TPM_REG_VALID_STS | TPM_TIS_ACCESS_TPM_ESTABLISHMENT;

    request_locality(2);
    /* A lower locality cannot seize. */
    wb(1, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_SEIZE);
    g_assert_cmphex(rb(2, TPM_TIS_REG_ACCESS), ==, idle | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    g_assert_cmphex(rb(1, TPM_TIS_REG_ACCESS), ==, idle);
    /* A higher one can; the loser sees beenSeized until it clears it. */
    wb(3, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_SEIZE);
    g_assert_cmphex(rb(3, TPM_TIS_REG_ACCESS), ==, idle | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    g_assert_cmphex(rb(2, TPM_TIS_REG_ACCESS), ==, idle | TPM_TIS_ACCESS_BEEN_SEIZED);
    wb(2, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_BEEN_SEIZED);
    g_assert_cmphex(rb(2, TPM_TIS_REG_ACCESS), ==, idle);
    wb(3, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    g_assert_cmphex(rb(3, TPM_TIS_REG_ACCESS), ==, idle);
}

static void test_transmit(Fixture *f, gconstpointer data)
{
    uint32_t sts;
    uint16_t bcount;
    uint8_t resp[10];

    request_locality(0);
    sts = rl(0, TPM_TIS_REG_STS);
    g_assert_cmphex(sts & 0xff, ==, 0);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(sts), ==, 4096);
    g_assert_cmphex(rb(0, TPM_TIS_REG_STS + 1), ==, 0xff); /* byte read: capped */
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==, TPM_TIS_STS_COMMAND_READY);
    bcount = 4096;
    for (size_t i = 0; i < sizeof(TPM2_STARTUP); i++) {
        wb(0, TPM_TIS_REG_DATA_FIFO, TPM2_STARTUP[i]);
        sts = rl(0, TPM_TIS_REG_STS);
        g_assert_cmphex(sts & 0xff, ==,
                        i + 1 < sizeof(TPM2_STARTUP)
                            ? TPM_TIS_STS_EXPECT | TPM_TIS_STS_VALID
                            : TPM_TIS_STS_VALID);
        g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(sts), ==, --bcount);
    }
    /* Bytes after the complete command are dropped. */
    wb(0, TPM_TIS_REG_DATA_FIFO, 0x55);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(rl(0, TPM_TIS_REG_STS)), ==, bcount);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO);
    sts = wait_data_available(0);
    g_assert_cmphex(sts & 0xff, ==, TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(sts), ==, 10);
    for (int i = 0; i < 10; i++) {
        resp[i] = rb(0, TPM_TIS_REG_DATA_FIFO);
        sts = rl(0, TPM_TIS_REG_STS);
        if (i < 9) {
            g_assert_cmphex(sts & 0xff, ==,
                            TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE);
            g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(sts), ==, 9 - i);
        }
    }
    g_assert_cmpmem(resp, sizeof(resp), TPM2_FAILURE, sizeof(TPM2_FAILURE));
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==, TPM_TIS_STS_VALID);
    /* Reading past the response gives the no-data byte. */
    g_assert_cmphex(rb(0, TPM_TIS_REG_DATA_FIFO), ==, TPM_TIS_NO_DATA_BYTE);
}

static void test_dword_fifo_and_retry(Fixture *f, gconstpointer data)
{
    uint8_t resp[12];

    request_locality(0);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    /* Whole dwords through DATA_FIFO and XDATA_FIFO. */
    address_space_write(TPM_TIS_ADDR(0, TPM_TIS_REG_DATA_FIFO), TPM2_STARTUP, 4);
    address_space_write(TPM_TIS_ADDR(0, TPM_TIS_REG_DATA_XFIFO), TPM2_STARTUP + 4, 8);
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==, TPM_TIS_STS_VALID);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO);
    wait_data_available(0);
    address_space_read(TPM_TIS_ADDR(0, TPM_TIS_REG_DATA_XFIFO), resp, 8);
    g_assert_cmpmem(resp, 8, TPM2_FAILURE, 8);
    /* responseRetry: the whole response again from its first byte. */
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_RESPONSE_RETRY);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(rl(0, TPM_TIS_REG_STS)), ==, 10);
    for (int i = 0; i < 3; i++) {
        uint32_t v = rl(0, TPM_TIS_REG_DATA_FIFO);
        memcpy(resp + 4 * i, &(uint8_t[4]){v, v >> 8, v >> 16, v >> 24}, 4);
    }
    g_assert_cmpmem(resp, 10, TPM2_FAILURE, 10);
    g_assert_cmphex(resp[10], ==, 0xff);
    g_assert_cmphex(resp[11], ==, 0xff);
    /* commandReady from completion goes straight to ready. */
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==, TPM_TIS_STS_COMMAND_READY);
    /* Several action bits at once do nothing, as in QEMU. */
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO | TPM_TIS_STS_RESPONSE_RETRY);
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==, TPM_TIS_STS_COMMAND_READY);
}

static void test_abort_during_execution(Fixture *f, gconstpointer data)
{
    uint32_t sts;

    request_locality(0);
    send_command(0, TPM2_STARTUP, sizeof(TPM2_STARTUP));
    /* The completion has not reached the main loop yet: still executing. */
    sts = rl(0, TPM_TIS_REG_STS);
    g_assert_cmphex(sts & 0xff, ==, TPM_TIS_STS_VALID);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    /* The abort completes with the command: ready again, no response. */
    for (int i = 0; i < 1000 && !(rl(0, TPM_TIS_REG_STS) & TPM_TIS_STS_COMMAND_READY);
         i++) {
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(1000);
        }
    }
    sts = rl(0, TPM_TIS_REG_STS);
    g_assert_cmphex(sts & 0xff, ==, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(sts), ==, 4096);
    /* The interface works afterwards. */
    send_command(0, TPM2_STARTUP, sizeof(TPM2_STARTUP));
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(wait_data_available(0)), ==, 10);
}

static void test_abort_during_reception(Fixture *f, gconstpointer data)
{
    request_locality(0);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    for (int i = 0; i < 7; i++) {
        wb(0, TPM_TIS_REG_DATA_FIFO, TPM2_STARTUP[i]);
    }
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(rl(0, TPM_TIS_REG_STS)), ==, 4096 - 7);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(rl(0, TPM_TIS_REG_STS)), ==, 4096);
    /* tpmGo while bytes are still expected does nothing. */
    wb(0, TPM_TIS_REG_DATA_FIFO, 0x80);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO);
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==,
                    TPM_TIS_STS_VALID | TPM_TIS_STS_EXPECT);
}

/* Releasing while the TPM executes takes effect when the command ends. */
static void test_release_during_execution(Fixture *f, gconstpointer data)
{
    const uint8_t idle =
        TPM_TIS_ACCESS_TPM_REG_VALID_STS | TPM_TIS_ACCESS_TPM_ESTABLISHMENT;

    for (int waiter = -1; waiter <= 2; waiter += 3) {
        request_locality(0);
        send_command(0, TPM2_STARTUP, sizeof(TPM2_STARTUP));
        wb(0, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        g_assert_cmphex(rb(0, TPM_TIS_REG_ACCESS), ==,
                        idle | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        /* The FIFO still belongs to the command: nobody else gets in. */
        wb(1, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
        g_assert_cmphex(rb(1, TPM_TIS_REG_ACCESS) & TPM_TIS_ACCESS_ACTIVE_LOCALITY, ==,
                        0);
        wb(1, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        if (waiter >= 0) {
            wb(waiter, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
        }
        tpm_backend_finish_sync(f->be);
        g_assert_cmphex(rb(0, TPM_TIS_REG_ACCESS), ==, idle);
        for (int l = 1; l < TPM_TIS_NUM_LOCALITIES; l++) {
            g_assert_cmphex(rb(l, TPM_TIS_REG_ACCESS), ==,
                            idle | (l == waiter ? TPM_TIS_ACCESS_ACTIVE_LOCALITY : 0));
        }
        if (waiter >= 0) {
            send_command(waiter, TPM2_STARTUP, sizeof(TPM2_STARTUP));
            g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(wait_data_available(waiter)), ==,
                             10);
            wb(waiter, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
        }
    }
}

static void test_oversize_command(Fixture *f, gconstpointer data)
{
    uint8_t hdr[6] = {0x80, 0x01, 0x00, 0x01, 0x00, 0x00}; /* 65536 bytes */

    request_locality(0);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    address_space_write(TPM_TIS_ADDR(0, TPM_TIS_REG_DATA_FIFO), hdr, 4);
    address_space_write(TPM_TIS_ADDR(0, TPM_TIS_REG_DATA_FIFO), hdr + 4, 2);
    for (int i = 6; i < 5000; i++) {
        wb(0, TPM_TIS_REG_DATA_FIFO, 0);
    }
    /* The buffer is full: expect is dropped and the command can be sent. */
    g_assert_cmphex(rl(0, TPM_TIS_REG_STS) & 0xff, ==, TPM_TIS_STS_VALID);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(rl(0, TPM_TIS_REG_STS)), ==, 0);
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(wait_data_available(0)), ==, 10);
}

static void test_interrupts(Fixture *f, gconstpointer data)
{
    uint32_t all = TPM_TIS_INT_ENABLED | TPM_TIS_INTERRUPTS_SUPPORTED;

    request_locality(0);
    wl(0, TPM_TIS_REG_INT_ENABLE, all | TPM_TIS_INT_POLARITY_LOW_LEVEL);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_ENABLE), ==,
                    all | TPM_TIS_INT_POLARITY_LOW_LEVEL);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 0);

    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_STATUS), ==, TPM_TIS_INT_COMMAND_READY);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 1);
    /* Write-1-to-clear; other bits stay. */
    wl(0, TPM_TIS_REG_INT_STATUS, 0);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_STATUS), ==, TPM_TIS_INT_COMMAND_READY);
    wl(0, TPM_TIS_REG_INT_STATUS, TPM_TIS_INT_COMMAND_READY);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_STATUS), ==, 0);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 0);

    for (size_t i = 0; i < sizeof(TPM2_STARTUP); i++) {
        wb(0, TPM_TIS_REG_DATA_FIFO, TPM2_STARTUP[i]);
    }
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO);
    wait_data_available(0);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_STATUS), ==,
                    TPM_TIS_INT_DATA_AVAILABLE | TPM_TIS_INT_STS_VALID);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 1);
    /* Only the active locality may clear its status. */
    wl(1, TPM_TIS_REG_INT_STATUS, 0xffffffff);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_STATUS), !=, 0);
    wb(0, TPM_TIS_REG_INT_STATUS, TPM_TIS_INT_DATA_AVAILABLE | TPM_TIS_INT_STS_VALID);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 0);

    /* Disabling the global enable drops a pending line. */
    wb(0, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 1);
    wl(0, TPM_TIS_REG_INT_ENABLE, TPM_TIS_INTERRUPTS_SUPPORTED);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 0);
    wl(0, TPM_TIS_REG_INT_STATUS, 0xff);
}

static void test_locality_change_interrupt(Fixture *f, gconstpointer data)
{
    request_locality(0);
    wl(0, TPM_TIS_REG_INT_ENABLE, TPM_TIS_INT_ENABLED | TPM_TIS_INT_LOCALITY_CHANGED);
    request_locality(0);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_STATUS), ==, 0);
    /* Locality 1 takes over when 0 releases; its own enable decides. */
    wb(1, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    wb(0, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    g_assert_cmphex(rl(1, TPM_TIS_REG_INT_STATUS), ==, 0);
    wl(1, TPM_TIS_REG_INT_ENABLE, TPM_TIS_INT_ENABLED | TPM_TIS_INT_LOCALITY_CHANGED);
    wb(1, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    wb(0, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    g_assert_cmphex(rl(0, TPM_TIS_REG_INT_STATUS), ==, TPM_TIS_INT_LOCALITY_CHANGED);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 1);
    wl(0, TPM_TIS_REG_INT_STATUS, TPM_TIS_INT_LOCALITY_CHANGED);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 0);
}

static void test_reset(Fixture *f, gconstpointer data)
{
    request_locality(2);
    wl(2, TPM_TIS_REG_INT_ENABLE, TPM_TIS_INT_ENABLED | TPM_TIS_INTERRUPTS_SUPPORTED);
    wb(2, TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 1);
    tpm_tis_reset(f->tis);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 0);
    g_assert_cmphex(rb(2, TPM_TIS_REG_ACCESS), ==,
                    TPM_TIS_ACCESS_TPM_REG_VALID_STS | TPM_TIS_ACCESS_TPM_ESTABLISHMENT);
    g_assert_cmphex(rl(2, TPM_TIS_REG_INT_ENABLE), ==, TPM_TIS_INT_POLARITY_LOW_LEVEL);
    request_locality(2);
    g_assert_cmphex(rl(2, TPM_TIS_REG_STS) & 0xff, ==, 0);
}

static GByteArray *save(TPMTISState *s)
{
    GByteArray *b = g_byte_array_new();

    tpm_tis_save_state(s, b);
    return b;
}

/* A mid-transfer state: response half read, interrupts enabled, a waiter. */
static void make_busy_state(void)
{
    request_locality(1);
    wl(1, TPM_TIS_REG_INT_ENABLE, TPM_TIS_INT_ENABLED | TPM_TIS_INTERRUPTS_SUPPORTED);
    send_command(1, TPM2_STARTUP, sizeof(TPM2_STARTUP));
    wait_data_available(1);
    for (int i = 0; i < 4; i++) {
        rb(1, TPM_TIS_REG_DATA_FIFO);
    }
    wb(0, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
}

static void test_state_roundtrip(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) saved = NULL;
    g_autoptr(GByteArray) again = NULL;
    g_autoptr(GError) err = NULL;
    uint8_t rest[6];

    make_busy_state();
    saved = save(f->tis);
    g_assert_cmpuint(saved->len, ==, 20 + 5 * 18 + 4096);
    g_assert_cmpmem(saved->data, 4, "QTIS", 4);
    tpm_tis_reset(f->tis);
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 0);
    g_assert_cmpint(tpm_tis_load_state(f->tis, saved->data, saved->len, &err), ==, 0);
    g_assert_no_error(err);
    again = save(f->tis);
    g_assert_cmpmem(again->data, again->len, saved->data, saved->len);
    /* The restored device carries on where it was. */
    g_assert_cmpint(qemu_get_irq_pin(IRQ_PIN), ==, 1);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(rl(1, TPM_TIS_REG_STS)), ==, 6);
    read_response(1, rest, sizeof(rest));
    g_assert_cmpmem(rest, 6, TPM2_FAILURE + 4, 6);
    g_assert_cmphex(rb(1, TPM_TIS_REG_ACCESS) & TPM_TIS_ACCESS_PENDING_REQUEST, !=, 0);
}

/*
 * A command held by a paused backend is saved in EXECUTION; loading that
 * state into a reset device runs the command there.
 */
static void test_state_with_held_command(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) saved = NULL;
    g_autoptr(GError) err = NULL;
    uint8_t resp[10];

    request_locality(0);
    tpm_backend_pause(f->be);
    send_command(0, TPM2_STARTUP, sizeof(TPM2_STARTUP));
    saved = save(f->tis);
    g_assert_cmpuint(saved->data[20], ==, 3); /* locality 0: EXECUTION */
    tpm_tis_reset(f->tis);
    tpm_backend_resume(f->be);
    g_assert_cmphex(rb(0, TPM_TIS_REG_ACCESS) & TPM_TIS_ACCESS_ACTIVE_LOCALITY, ==, 0);
    g_assert_cmpint(tpm_tis_load_state(f->tis, saved->data, saved->len, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(TPM_TIS_STS_BURST_COUNT(wait_data_available(0)), ==, 10);
    read_response(0, resp, sizeof(resp));
    g_assert_cmpmem(resp, sizeof(resp), TPM2_FAILURE, sizeof(TPM2_FAILURE));
}

/* Every single-byte corruption and every truncation loads or fails cleanly. */
static void test_state_hostile(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) saved = NULL;
    g_autoptr(GByteArray) before = NULL;
    static const uint8_t values[] = {0x00, 0x01, 0x05, 0x7f, 0x80, 0xfe, 0xff};
    guint rejected = 0;

    make_busy_state();
    saved = save(f->tis);
    before = save(f->tis);
    for (guint len = 0; len < saved->len; len += (len < 200 ? 1 : 509)) {
        g_autoptr(GError) err = NULL;
        g_assert_cmpint(tpm_tis_load_state(f->tis, saved->data, len, &err), ==, -1);
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
    }
    /* The header and the locality records are where the meaning is. */
    for (guint off = 0; off < 20 + 5 * 18; off++) {
        for (size_t v = 0; v < ARRAY_SIZE(values); v++) {
            g_autoptr(GByteArray) bad = g_byte_array_sized_new(saved->len);
            g_autoptr(GError) err = NULL;
            g_autoptr(GByteArray) after = NULL;

            g_byte_array_append(bad, saved->data, saved->len);
            if (bad->data[off] == values[v]) {
                continue;
            }
            bad->data[off] = values[v];
            if (tpm_tis_load_state(f->tis, bad->data, bad->len, &err) < 0) {
                g_assert_nonnull(err);
                after = save(f->tis);
                g_assert_cmpmem(after->data, after->len, before->data, before->len);
                rejected++;
            } else {
                /* Accepted: the device must still work, then go back. */
                g_assert_no_error(err);
                g_assert_cmpint(tpm_tis_load_state(f->tis, saved->data, saved->len, NULL),
                                ==, 0);
            }
        }
    }
    g_test_message("%u corruptions rejected", rejected);
    g_assert_cmpuint(rejected, >, 500);
}

static void test_hostile_mmio(Fixture *f, gconstpointer data)
{
    static const uint32_t offsets[] = {
        0x00, 0x01, 0x08, 0x0b, 0x0c, 0x10, 0x14, 0x18, 0x19,  0x1a,  0x1b,  0x24,
        0x25, 0x27, 0x30, 0x80, 0x83, 0xbc, 0xbf, 0xc0, 0xf00, 0xf04, 0xffc,
    };
    GRand *rand = g_rand_new_with_seed(20261127);
    uint8_t resp[10];

    for (int i = 0; i < 20000; i++) {
        int l = g_rand_int_range(rand, 0, TPM_TIS_NUM_LOCALITIES);
        uint64_t addr =
            TPM_TIS_ADDR(l, offsets[g_rand_int_range(rand, 0, ARRAY_SIZE(offsets))]);
        unsigned size = 1u << g_rand_int_range(rand, 0, 4);
        uint64_t val = ((uint64_t)g_rand_int(rand) << 32) | g_rand_int(rand);

        if (g_rand_boolean(rand)) {
            address_space_ldn(addr, size);
        } else {
            address_space_stn(addr, size, val);
        }
        if (i % 64 == 0) {
            g_main_context_iteration(NULL, FALSE);
        }
    }
    g_rand_free(rand);
    /* Let anything in flight finish, then reset and transmit normally. */
    tpm_backend_finish_sync(f->be);
    tpm_tis_reset(f->tis);
    request_locality(0);
    send_command(0, TPM2_STARTUP, sizeof(TPM2_STARTUP));
    wait_data_available(0);
    read_response(0, resp, sizeof(resp));
    g_assert_cmpmem(resp, sizeof(resp), TPM2_FAILURE, sizeof(TPM2_FAILURE));
}

static void test_create_errors(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_null(tpm_tis_create(NULL, 5, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_clear_error(&err);
    {
        Fixture f;
        fixture_setup_version(&f, "2.0");
        g_assert_null(tpm_tis_create(f.be, 5, &err));
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
        g_clear_error(&err);
        fixture_teardown(&f, NULL);
    }
}

/* tpm-tis through the frontend registry, as the machine and migration see it. */
static void test_frontend_class(void)
{
    g_autoptr(GHashTable) bopts = qemu_opts_parse("null,id=tpm0", "type", NULL);
    g_autoptr(GHashTable) props = qemu_opts_parse("tpm-tis,tpmdev=tpm0,irq=7", "driver",
                                                  NULL);
    g_autoptr(GByteArray) saved = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    const TPMFrontendClass *fc = tpm_frontend_find_class("tpm-tis");
    TPMBackend *be = tpm_backend_new("null", "tpm0", bopts, &err);
    TPMFrontend *fe;

    g_assert_no_error(err);
    g_assert_nonnull(fc);
    g_assert_true(tpm_frontend_classes()[0] == fc);
    g_assert_cmpstr(fc->state_section, ==, "TIS");
    g_assert_null(tpm_frontend_new("tpm-crb", be, props, &err));
    g_assert_cmpstr(err->message, ==, "'tpm-crb' is not a device model (see -device help)");
    g_clear_error(&err);

    fe = tpm_frontend_new("tpm-tis", be, props, &err);
    g_assert_no_error(err);
    g_assert_true(tpm_frontend_get_class(fe) == fc);
    g_assert_true(tpm_frontend_get_backend(fe) == be);
    g_assert_true(tpm_frontend_list()->data == fe);
    g_assert_nonnull(tpm_tis_find());
    wb(0, TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    g_assert_cmpint(qemu_get_irq_pin(7), ==, 0);
    tpm_frontend_save_state(fe, saved);
    tpm_frontend_reset(fe);
    g_assert_false(rb(0, TPM_TIS_REG_ACCESS) & TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    g_assert_cmpint(tpm_frontend_load_state(fe, saved->data, saved->len, &err), ==, 0);
    g_assert_true(rb(0, TPM_TIS_REG_ACCESS) & TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    tpm_frontend_free(fe);
    g_assert_null(tpm_frontend_list());
    g_assert_null(tpm_tis_find());
    tpm_backend_free(be);
}

#define ADD(name, fn, data)                                                              \
    g_test_add("/tpm-tis/" name, Fixture, data, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("registers", test_registers, NULL);
    ADD("tpm12-registers", test_tpm12_registers, "1.2");
    ADD("localities", test_localities, NULL);
    ADD("pending-and-release", test_pending_and_release, NULL);
    ADD("seize", test_seize, NULL);
    ADD("transmit", test_transmit, NULL);
    ADD("dword-fifo-and-retry", test_dword_fifo_and_retry, NULL);
    ADD("abort-during-execution", test_abort_during_execution, NULL);
    ADD("abort-during-reception", test_abort_during_reception, NULL);
    ADD("release-during-execution", test_release_during_execution, NULL);
    ADD("oversize-command", test_oversize_command, NULL);
    ADD("interrupts", test_interrupts, NULL);
    ADD("locality-change-interrupt", test_locality_change_interrupt, NULL);
    ADD("reset", test_reset, NULL);
    ADD("state-roundtrip", test_state_roundtrip, NULL);
    ADD("state-with-held-command", test_state_with_held_command, NULL);
    ADD("state-hostile", test_state_hostile, NULL);
    ADD("hostile-mmio", test_hostile_mmio, NULL);
    g_test_add_func("/tpm-tis/create-errors", test_create_errors);
    g_test_add_func("/tpm-tis/frontend-class", test_frontend_class);
    return g_test_run();
}
