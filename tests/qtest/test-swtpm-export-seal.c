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
#include <sys/wait.h>
#include "qemu/bswap.h"
#include "qemu/sockets.h"
#include "qtpm-export-util.h"

#define CMD_INIT 0x02
#define CMD_GET_STATEBLOB 0x0c
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
    g_assert_cmpint(qtpm_spawn_export(argv, e->ctrl, true, &e->pid), ==, -1);
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

/* GET_STATEBLOB as QEMU asks it; the blob (g_free), its size and flags. */
static uint8_t *get_blob(Export *e, uint32_t type, size_t *len, uint32_t *flags)
{
    uint8_t body[12], hdr[16];
    uint8_t *blob;

    stl_be_p(body, FLAG_DECRYPTED);
    stl_be_p(body + 4, type);
    stl_be_p(body + 8, 0);
    qtpm_ctrl_send(e->fd, CMD_GET_STATEBLOB, body, sizeof(body));
    qtpm_recv(e->fd, hdr, sizeof(hdr));
    g_assert_cmphex(ldl_be_p(hdr), ==, 0);
    *flags = ldl_be_p(hdr + 4);
    *len = ldl_be_p(hdr + 12);
    g_assert_cmpuint(*len, ==, ldl_be_p(hdr + 8));
    blob = g_malloc(*len);
    qtpm_recv(e->fd, blob, *len);
    return blob;
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
    g_autofree char *before = qtpm_file_sha256(t->img);
    g_autofree char *after = NULL;
    uint32_t zero = 0;

    g_assert_cmphex(qtpm_ctrl_u32(t->fd, CMD_STOP, NULL, 0), ==, 0);
    g_assert_cmphex(qtpm_ctrl_set_blob(t->fd, 1, FLAG_ENCRYPTED, blob, len), ==,
                    RES_DECRYPT_ERROR);
    g_assert_cmphex(qtpm_ctrl_u32(t->fd, CMD_INIT, &zero, 1), ==, RES_FAIL);
    g_assert_cmphex(qtpm_ctrl_u32(t->fd, CMD_INIT, &zero, 1), ==, RES_FAIL);
    after = qtpm_file_sha256(t->img);
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
    g_assert_cmphex(qtpm_ctrl_u32(src.fd, CMD_INIT, &zero, 1), ==, 0);
    perm = get_blob(&src, 1, &perm_len, &flags);
    g_assert_cmphex(flags, ==, FLAG_ENCRYPTED);
    g_assert_cmpmem(perm, 8, "QTPMSBLB", 8);
    export_stop(&src);

    /* An unkeyed source: libtpms's plain blob, flags 0, as swtpm. */
    export_start(&src, NULL);
    g_assert_cmphex(qtpm_ctrl_u32(src.fd, CMD_INIT, &zero, 1), ==, 0);
    plain = get_blob(&src, 1, &plain_len, &flags);
    g_assert_cmphex(flags, ==, 0);
    g_assert_false(plain_len >= 8 && !memcmp(plain, "QTPMSBLB", 8));
    export_stop(&src);

    /* Another key: refused; a new client starts from its own state. */
    export_start(&dst, key_b);
    refused(&dst, perm, perm_len);
    close(dst.fd);
    export_connect(&dst);
    g_assert_cmphex(qtpm_ctrl_u32(dst.fd, CMD_INIT, &zero, 1), ==, 0);
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
    g_assert_cmphex(qtpm_ctrl_set_blob(dst.fd, 1, FLAG_ENCRYPTED, perm, perm_len), ==, 0);
    g_assert_cmphex(qtpm_ctrl_u32(dst.fd, CMD_INIT, &zero, 1), ==, 0);
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
