/*
 * Sealed state blobs over qtpm -export swtpm, spoken to directly: a keyed
 * export hands blobs out sealed whatever PTM_STATE_FLAG_DECRYPTED asks; a
 * target refuses a blob under another key, without a key, or damaged, with
 * TPM_DECRYPT_ERROR and its image byte-identical, and CMD_INIT then fails
 * instead of starting a fresh TPM, until the blob is set or the client
 * reconnects. docs/swtpm-protocol.md "SET_STATEBLOB".
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "qemu/bswap.h"
#include "qemu/sockets.h"
#include "libqtest.h"

#define CMD_INIT 0x02
#define CMD_GET_STATEBLOB 0x0c
#define CMD_SET_STATEBLOB 0x0d
#define CMD_STOP 0x0e
#define FLAG_DECRYPTED 1
#define FLAG_ENCRYPTED 2
#define RES_FAIL 0x09
#define RES_DECRYPT_ERROR 0x21

typedef struct Export {
    char *dir;
    char *img;
    char *ctrl;
    GPid pid;
    int fd;
} Export;

static void child_setup(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void run(const char *cmd)
{
    int status;

    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
}

static void export_connect(Export *e)
{
    g_autoptr(GError) err = NULL;

    e->fd = qemu_unix_connect(e->ctrl, &err);
    g_assert_no_error(err);
}

/* A fresh image under @key (a file of 32 bytes, or NULL) and its export. */
static void export_start(Export *e, const char *key)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *bindir = g_path_get_dirname(qtpm);
    g_autofree char *cmd = NULL, *drive = NULL, *exp = NULL, *secret = NULL;
    g_autofree char *tpmdev = NULL;
    gint64 end = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;
    const char *argv[12];
    int n = 0;

    e->dir = qtest_scratch_dir();
    e->img = g_build_filename(e->dir, "tpm.qcow2", NULL);
    e->ctrl = g_build_filename(e->dir, "ctrl.sock", NULL);
    cmd = g_strdup_printf("%s/qtpm-img create %s%s %s", bindir,
                          key ? "--key-file " : "", key ? key : "", e->img);
    run(cmd);
    drive = g_strdup_printf("file=%s,if=none,id=d0", e->img);
    exp = g_strdup_printf("swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s", e->ctrl);
    tpmdev = g_strdup_printf("libtpms,id=tpm0,nvram=d0%s",
                             key ? ",key-secret=k0" : "");
    argv[n++] = qtpm;
    if (key) {
        secret = g_strdup_printf("secret,id=k0,file=%s,format=raw", key);
        argv[n++] = "-object";
        argv[n++] = secret;
    }
    argv[n++] = "-drive";
    argv[n++] = drive;
    argv[n++] = "-tpmdev";
    argv[n++] = tpmdev;
    argv[n++] = "-export";
    argv[n++] = exp;
    argv[n] = NULL;
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                child_setup, NULL, &e->pid, NULL));
    while (!g_file_test(e->ctrl, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(waitpid(e->pid, NULL, WNOHANG), ==, 0);
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10 * 1000);
    }
    export_connect(e);
}

static void export_stop(Export *e)
{
    kill(e->pid, SIGTERM);
    waitpid(e->pid, NULL, 0);
    close(e->fd);
    unlink(e->ctrl);
    unlink(e->img);
    rmdir(e->dir);
    g_free(e->ctrl);
    g_free(e->img);
    g_free(e->dir);
}

static uint32_t recv_result(Export *e)
{
    uint8_t r[4];

    g_assert_cmpint(qemu_read_full_timeout(e->fd, r, 4, 10000), ==, 4);
    return ldl_be_p(r);
}

static uint32_t ctrl_u32(Export *e, uint32_t cmd, const uint32_t *args, int n)
{
    uint8_t buf[16];

    stl_be_p(buf, cmd);
    for (int i = 0; i < n; i++) {
        stl_be_p(buf + 4 + 4 * i, args[i]);
    }
    g_assert_cmpint(qemu_write_full(e->fd, buf, 4 + 4 * n), ==, 4 + 4 * n);
    return recv_result(e);
}

/* GET_STATEBLOB as QEMU asks it; the blob (g_free), its size and flags. */
static uint8_t *get_blob(Export *e, uint32_t type, size_t *len, uint32_t *flags)
{
    uint8_t req[16], hdr[16];
    uint8_t *blob;

    stl_be_p(req, CMD_GET_STATEBLOB);
    stl_be_p(req + 4, FLAG_DECRYPTED);
    stl_be_p(req + 8, type);
    stl_be_p(req + 12, 0);
    g_assert_cmpint(qemu_write_full(e->fd, req, 16), ==, 16);
    g_assert_cmpint(qemu_read_full_timeout(e->fd, hdr, 16, 10000), ==, 16);
    g_assert_cmphex(ldl_be_p(hdr), ==, 0);
    *flags = ldl_be_p(hdr + 4);
    *len = ldl_be_p(hdr + 12);
    g_assert_cmpuint(*len, ==, ldl_be_p(hdr + 8));
    blob = g_malloc(*len);
    g_assert_cmpint(qemu_read_full_timeout(e->fd, blob, *len, 10000), ==, *len);
    return blob;
}

static uint32_t set_blob(Export *e, uint32_t type, uint32_t flags,
                         const uint8_t *blob, size_t len)
{
    g_autofree uint8_t *req = g_malloc(16 + len);

    stl_be_p(req, CMD_SET_STATEBLOB);
    stl_be_p(req + 4, flags);
    stl_be_p(req + 8, type);
    stl_be_p(req + 12, len);
    memcpy(req + 16, blob, len);
    g_assert_cmpint(qemu_write_full(e->fd, req, 16 + len), ==, 16 + len);
    return recv_result(e);
}

static char *image_digest(Export *e)
{
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(e->img, &data, &len, NULL));
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);
}

static char *write_key(const char *dir, const char *name, uint8_t fill)
{
    char *path = g_build_filename(dir, name, NULL);
    uint8_t key[32];

    memset(key, fill, sizeof(key));
    g_assert_true(g_file_set_contents(path, (char *)key, sizeof(key), NULL));
    return path;
}

/* The target refuses @blob; INIT then fails; the image is untouched. */
static void refused(Export *t, const uint8_t *blob, size_t len)
{
    g_autofree char *before = image_digest(t);
    g_autofree char *after = NULL;
    uint32_t zero = 0;

    g_assert_cmphex(ctrl_u32(t, CMD_STOP, NULL, 0), ==, 0);
    g_assert_cmphex(set_blob(t, 1, FLAG_ENCRYPTED, blob, len), ==,
                    RES_DECRYPT_ERROR);
    g_assert_cmphex(ctrl_u32(t, CMD_INIT, &zero, 1), ==, RES_FAIL);
    g_assert_cmphex(ctrl_u32(t, CMD_INIT, &zero, 1), ==, RES_FAIL);
    after = image_digest(t);
    g_assert_cmpstr(before, ==, after);
}

static void test_sealed_blobs(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    g_autofree char *key_a = write_key(dir, "a.key", 0xa5);
    g_autofree char *key_b = write_key(dir, "b.key", 0x5a);
    g_autofree uint8_t *perm = NULL, *plain = NULL, *damaged = NULL;
    size_t perm_len, plain_len;
    uint32_t flags, zero = 0;
    Export src, dst;

    /* A keyed source: sealed, whatever DECRYPTED asks. */
    export_start(&src, key_a);
    g_assert_cmphex(ctrl_u32(&src, CMD_INIT, &zero, 1), ==, 0);
    perm = get_blob(&src, 1, &perm_len, &flags);
    g_assert_cmphex(flags, ==, FLAG_ENCRYPTED);
    g_assert_cmpmem(perm, 8, "QTPMSBLB", 8);
    export_stop(&src);

    /* An unkeyed source: libtpms's plain blob, flags 0, as swtpm. */
    export_start(&src, NULL);
    g_assert_cmphex(ctrl_u32(&src, CMD_INIT, &zero, 1), ==, 0);
    plain = get_blob(&src, 1, &plain_len, &flags);
    g_assert_cmphex(flags, ==, 0);
    g_assert_false(plain_len >= 8 && !memcmp(plain, "QTPMSBLB", 8));
    export_stop(&src);

    /* Another key: refused; a new client starts from its own state. */
    export_start(&dst, key_b);
    refused(&dst, perm, perm_len);
    close(dst.fd);
    export_connect(&dst);
    g_assert_cmphex(ctrl_u32(&dst, CMD_INIT, &zero, 1), ==, 0);
    export_stop(&dst);

    /* No key: refused. */
    export_start(&dst, NULL);
    refused(&dst, perm, perm_len);
    export_stop(&dst);

    /* The right key, a damaged blob: refused until the good one is set. */
    damaged = g_memdup2(perm, perm_len);
    damaged[perm_len - 1] ^= 1;
    export_start(&dst, key_a);
    refused(&dst, damaged, perm_len);
    g_assert_cmphex(set_blob(&dst, 1, FLAG_ENCRYPTED, perm, perm_len), ==, 0);
    g_assert_cmphex(ctrl_u32(&dst, CMD_INIT, &zero, 1), ==, 0);
    export_stop(&dst);

    unlink(key_a);
    unlink(key_b);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-export/sealed-blobs", test_sealed_blobs);
    return g_test_run();
}
