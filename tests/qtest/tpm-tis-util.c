/*
 * Helpers for the TIS qtest suites (tpm-tis-util.h).
 */
#include "qemu/osdep.h"
#include "tpm-tis-util.h"

const uint8_t TPM2_STARTUP_CLEAR[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};

const uint8_t TPM2_GETRANDOM_8[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x08,
};

/* An RSA-2048 storage key under the owner hierarchy: a second or so of work. */
const uint8_t TPM2_CREATEPRIMARY_RSA2048[67] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x43, 0x00, 0x00, 0x01, 0x31, /* header */
    0x40, 0x00, 0x00, 0x01,                                     /* TPM_RH_OWNER */
    0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09,             /* password session */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, /* inSensitive */
    0x00, 0x1a, 0x00, 0x01, 0x00, 0x0b, 0x00, 0x03, 0x00, 0x72,       /* inPublic: RSA */
    0x00, 0x00, 0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10,       /* AES-128-CFB */
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                   /* 2048 bits */
    0x00, 0x00,                                                       /* outsideInfo */
    0x00, 0x00, 0x00, 0x00,                                           /* creationPCR */
};

const uint8_t TPM12_STARTUP_CLEAR[12] = {
    0x00, 0xc1, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x99, 0x00, 0x01,
};

static void tis_make_image(const char *path)
{
    g_autofree char *cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 1M", path);
    g_autoptr(GError) err = NULL;
    int status;

    if (!g_spawn_command_line_sync(cmd, NULL, NULL, &status, &err) ||
        !g_spawn_check_wait_status(status, &err)) {
        g_error("%s: %s", cmd, err->message);
    }
}

void tis_machine_start(TisMachine *m, const char *version, const char *extra)
{
    g_autofree char *img = NULL;

    m->dir = qtest_scratch_dir();
    if (g_str_has_prefix(version, "null")) {
        m->qts = qtest_initf("-tpmdev null,id=tpm0%s -device tpm-tis,tpmdev=tpm0 %s",
                             strcmp(version, "null-1.2") == 0 ? ",version=1.2" : "",
                             extra ? extra : "");
        return;
    }
    img = g_build_filename(m->dir, "tpm.qcow2", NULL);
    tis_make_image(img);
    m->qts = qtest_initf("-drive file=%s,if=none,id=drv0 "
                         "-tpmdev libtpms,id=tpm0,nvram=drv0,version=%s "
                         "-device tpm-tis,tpmdev=tpm0 %s",
                         img, version, extra ? extra : "");
}

void tis_machine_stop(TisMachine *m)
{
    g_autoptr(GDir) d = NULL;
    const char *name;

    qtest_quit(m->qts);
    m->qts = NULL;
    d = g_dir_open(m->dir, 0, NULL);
    while (d && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(m->dir, name, NULL);
        unlink(path);
    }
    rmdir(m->dir);
    g_clear_pointer(&m->dir, g_free);
}

uint8_t tis_access(QTestState *s, int l)
{
    return qtest_readb(s, TIS_REG(l, TPM_TIS_REG_ACCESS));
}

uint32_t tis_sts(QTestState *s, int l)
{
    return qtest_readl(s, TIS_REG(l, TPM_TIS_REG_STS));
}

void tis_request_locality(QTestState *s, int l)
{
    qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_REQUEST_USE);
    g_assert_cmphex(tis_access(s, l) & TPM_TIS_ACCESS_ACTIVE_LOCALITY, ==,
                    TPM_TIS_ACCESS_ACTIVE_LOCALITY);
}

void tis_release_locality(QTestState *s, int l)
{
    qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_ACCESS), TPM_TIS_ACCESS_ACTIVE_LOCALITY);
}

uint32_t tis_wait_sts(QTestState *s, int l, uint32_t mask, uint32_t value)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;

    for (;;) {
        uint32_t sts = tis_sts(s, l);
        if ((sts & mask) == value) {
            return sts;
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("STS of locality %d stuck at 0x%08x (want 0x%x under mask 0x%x)", l,
                    sts, value, mask);
        }
        g_usleep(200);
    }
}

void tis_send(QTestState *s, int l, const uint8_t *cmd, size_t len)
{
    size_t off = 0;

    qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_STS), TPM_TIS_STS_COMMAND_READY);
    tis_wait_sts(s, l, TPM_TIS_STS_COMMAND_READY, TPM_TIS_STS_COMMAND_READY);
    while (off < len) {
        size_t burst = TPM_TIS_STS_BURST_COUNT(tis_sts(s, l));
        size_t n = MIN(MIN(burst, len - off), 64);

        g_assert_cmpuint(burst, >, 0);
        for (size_t i = 0; i < n; i += 4) {
            size_t chunk = MIN(4, n - i);
            qtest_memwrite(s, TIS_REG(l, TPM_TIS_REG_DATA_XFIFO), cmd + off + i, chunk);
        }
        off += n;
    }
    g_assert_cmphex(tis_sts(s, l) & (TPM_TIS_STS_VALID | TPM_TIS_STS_EXPECT), ==,
                    TPM_TIS_STS_VALID);
    qtest_writeb(s, TIS_REG(l, TPM_TIS_REG_STS), TPM_TIS_STS_TPM_GO);
}

size_t tis_recv(QTestState *s, int l, uint8_t *buf, size_t size)
{
    uint32_t want = TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE;
    uint32_t sts = tis_wait_sts(s, l, want, want);
    size_t off = 0;

    while (sts & TPM_TIS_STS_DATA_AVAILABLE) {
        size_t burst = TPM_TIS_STS_BURST_COUNT(sts);
        g_assert_cmpuint(burst, >, 0);
        g_assert_cmpuint(off + burst, <=, size);
        /* Up to a dword per access; XDATA_FIFO takes any offset inside it. */
        for (size_t i = 0; i < burst; i += 4) {
            qtest_memread(s, TIS_REG(l, TPM_TIS_REG_DATA_XFIFO), buf + off + i,
                          MIN(4, burst - i));
        }
        off += burst;
        sts = tis_sts(s, l);
    }
    g_assert_cmpuint(off, >=, 10);
    g_assert_cmpuint(tis_be32(buf + 2), ==, off);
    return off;
}

uint32_t tis_transmit(QTestState *s, int l, const uint8_t *cmd, size_t len, uint8_t *resp,
                      size_t size, size_t *resp_len)
{
    size_t n;

    tis_send(s, l, cmd, len);
    n = tis_recv(s, l, resp, size);
    if (resp_len) {
        *resp_len = n;
    }
    return tis_be32(resp + 6);
}
