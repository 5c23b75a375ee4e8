/*
 * swtpm-migration-key= on qtpm -export swtpm, spoken to directly: blobs
 * wrapped and sealed as a swtpm source's CMD_GET_STATEBLOB hands them out
 * (state_flags 0, the seal in the blob's own header) open under the key
 * file's key or the passphrase's, and the TPM starts from them. Sealed under
 * another key, the other key size, without a key on the export, damaged or
 * cut short: TPM_DECRYPT_ERROR, the image byte-identical, and CMD_INIT fails
 * until a good blob is set. A bad secret stops qtpm before its socket
 * exists. docs/swtpm-protocol.md "SET_STATEBLOB", docs/swtpm-state.md.
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/wait.h>
#include "qemu/bswap.h"
#include "qemu/sockets.h"
#include "qemu/swtpm-blob.h"
#include "qtpm-export-util.h"

#define CMD_INIT 0x02
#define CMD_GET_STATEBLOB 0x0c
#define CMD_STOP 0x0e
#define FLAG_DECRYPTED 1
#define RES_FAIL 0x09
#define RES_DECRYPT_ERROR 0x21
#define BLOB_PERMANENT 1

static const uint8_t IV[32] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
static const char PASSPHRASE[] = "a swtpm migration passphrase\n";

typedef struct Export {
    char *dir;
    char *img;
    char *ctrl;
    GPid pid;
    int fd;
} Export;

/*
 * qtpm on a fresh image in @dir; @secret_file, when given, is the -object
 * secret that swtpm-migration-key= names, with @extra after it. Returns
 * qtpm's exit status if it exits before its socket exists, else -1.
 */
static int export_start(Export *e, const char *secret_file, const char *extra)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *bindir = g_path_get_dirname(qtpm);
    g_autofree char *cmd = NULL, *drive = NULL, *exp = NULL, *secret = NULL;
    const char *argv[12];
    int n = 0, status;

    e->dir = qtest_scratch_dir();
    e->img = g_build_filename(e->dir, "tpm.qcow2", NULL);
    e->ctrl = g_build_filename(e->dir, "ctrl.sock", NULL);
    e->fd = -1;
    cmd = g_strdup_printf("%s/qtpm-img create %s", bindir, e->img);
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    drive = g_strdup_printf("file=%s,if=none,id=d0", e->img);
    exp = g_strdup_printf("swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s%s%s", e->ctrl,
                          secret_file ? ",swtpm-migration-key=mk" : "",
                          extra ? extra : "");
    argv[n++] = qtpm;
    if (secret_file) {
        secret = g_strdup_printf("secret,id=mk,file=%s,format=raw",
                                 secret_file);
        argv[n++] = "-object";
        argv[n++] = secret;
    }
    argv[n++] = "-drive";
    argv[n++] = drive;
    argv[n++] = "-tpmdev";
    argv[n++] = "libtpms,id=tpm0,nvram=d0";
    argv[n++] = "-export";
    argv[n++] = exp;
    argv[n] = NULL;
    status = qtpm_spawn_export(argv, e->ctrl, true, &e->pid);
    if (status != -1) {
        return status;
    }
    g_autoptr(GError) err = NULL;
    e->fd = qemu_unix_connect(e->ctrl, &err);
    g_assert_no_error(err);
    return -1;
}

static void export_stop(Export *e)
{
    if (e->pid) {
        kill(e->pid, SIGTERM);
        waitpid(e->pid, NULL, 0);
    }
    if (e->fd >= 0) {
        close(e->fd);
    }
    unlink(e->ctrl);
    unlink(e->img);
    rmdir(e->dir);
    g_free(e->ctrl);
    g_free(e->img);
    g_free(e->dir);
}

static uint32_t init_tpm(Export *e)
{
    uint32_t zero = 0;

    return qtpm_ctrl_u32(e->fd, CMD_INIT, &zero, 1);
}

/* The permanent blob of a fresh unkeyed TPM: libtpms's own bytes. */
static uint8_t *plain_permanent_blob(size_t *len)
{
    uint8_t body[12], hdr[16];
    uint8_t *blob;
    Export src;

    g_assert_cmpint(export_start(&src, NULL, NULL), ==, -1);
    g_assert_cmphex(init_tpm(&src), ==, 0);
    stl_be_p(body, FLAG_DECRYPTED);
    stl_be_p(body + 4, BLOB_PERMANENT);
    stl_be_p(body + 8, 0);
    qtpm_ctrl_send(src.fd, CMD_GET_STATEBLOB, body, sizeof(body));
    qtpm_recv(src.fd, hdr, sizeof(hdr));
    g_assert_cmphex(ldl_be_p(hdr), ==, 0);
    g_assert_cmphex(ldl_be_p(hdr + 4), ==, 0);
    *len = ldl_be_p(hdr + 12);
    blob = g_malloc(*len);
    qtpm_recv(src.fd, blob, *len);
    export_stop(&src);
    return blob;
}

/* As swtpm sends it: state_flags 0, the seal named in the blob's header. */
static uint32_t set_blob(Export *e, const uint8_t *blob, size_t len)
{
    return qtpm_ctrl_set_blob(e->fd, BLOB_PERMANENT, 0, blob, len);
}

/* @e refuses @blob with TPM_DECRYPT_ERROR; INIT fails; the image as it was. */
static void refused(Export *e, const uint8_t *blob, size_t len)
{
    g_autofree char *before = qtpm_file_sha256(e->img);
    g_autofree char *after = NULL;

    g_assert_cmphex(qtpm_ctrl_u32(e->fd, CMD_STOP, NULL, 0), ==, 0);
    g_assert_cmphex(set_blob(e, blob, len), ==, RES_DECRYPT_ERROR);
    g_assert_cmphex(init_tpm(e), ==, RES_FAIL);
    after = qtpm_file_sha256(e->img);
    g_assert_cmpstr(before, ==, after);
}

static char *write_file(const char *dir, const char *name, const void *data,
                        size_t len)
{
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, data, len, NULL));
    return path;
}

static void make_key(SwtpmKey *k, size_t len, uint8_t base)
{
    memset(k, 0, sizeof(*k));
    for (size_t i = 0; i < len; i++) {
        k->bytes[i] = base + i * 3;
    }
    k->len = len;
}

/* A key file's key: opens what it sealed; everything else is refused. */
static void test_key_file(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    g_autofree uint8_t *plain = NULL;
    size_t plain_len, len, other_len, short_len;
    SwtpmKey key, other, k16;
    Export t;

    plain = plain_permanent_blob(&plain_len);
    make_key(&key, 32, 0x10);
    make_key(&other, 32, 0x20);
    make_key(&k16, 16, 0x10);
    g_autofree char *key_file = write_file(dir, "mkey", key.bytes, 32);
    g_autofree uint8_t *sealed = swtpm_blob_encode_migration(
        plain, plain_len, &key, IV, &len);
    g_autofree uint8_t *wrong = swtpm_blob_encode_migration(
        plain, plain_len, &other, IV, &other_len);
    g_autofree uint8_t *narrow = swtpm_blob_encode_migration(
        plain, plain_len, &k16, IV, &short_len);
    g_autofree uint8_t *damaged = g_memdup2(sealed, len);
    g_autofree uint8_t *cut = g_memdup2(sealed, len - 7);

    damaged[len / 2] ^= 0x40;
    stl_be_p(cut + 6, len - 7);

    g_assert_cmpint(export_start(&t, key_file, NULL), ==, -1);
    refused(&t, wrong, other_len);
    refused(&t, narrow, short_len);
    refused(&t, damaged, len);
    refused(&t, cut, len - 7);
    g_assert_cmphex(set_blob(&t, sealed, len), ==, 0);
    g_assert_cmphex(init_tpm(&t), ==, 0);
    export_stop(&t);

    /* hex, as swtpm's default format=hex reads it */
    GString *h = g_string_new("0x");
    for (int i = 0; i < 32; i++) {
        g_string_append_printf(h, "%02x", key.bytes[i]);
    }
    g_string_append_c(h, '\n');
    g_autofree char *hex_file = write_file(dir, "mkey.hex", h->str, h->len);
    g_string_free(h, true);
    g_assert_cmpint(export_start(&t, hex_file,
                                 ",swtpm-migration-key-format=hex"), ==, -1);
    g_assert_cmphex(qtpm_ctrl_u32(t.fd, CMD_STOP, NULL, 0), ==, 0);
    g_assert_cmphex(set_blob(&t, sealed, len), ==, 0);
    g_assert_cmphex(init_tpm(&t), ==, 0);
    export_stop(&t);

    /* no swtpm-migration-key=: a sealed blob is refused, a plain one taken */
    g_autofree uint8_t *wrapped = swtpm_blob_encode_migration(
        plain, plain_len, NULL, NULL, &len);
    g_autofree uint8_t *sealed2 = swtpm_blob_encode_migration(
        plain, plain_len, &key, IV, &other_len);
    g_assert_cmpint(export_start(&t, NULL, NULL), ==, -1);
    refused(&t, sealed2, other_len);
    g_assert_cmphex(set_blob(&t, wrapped, len), ==, 0);
    g_assert_cmphex(init_tpm(&t), ==, 0);
    export_stop(&t);

    unlink(key_file);
    unlink(hex_file);
    rmdir(dir);
}

/* A passphrase: either key size opens; the other KDF does not. */
static void test_passphrase(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    g_autofree char *pass_file = write_file(dir, "pass", PASSPHRASE,
                                            sizeof(PASSPHRASE) - 1);
    g_autofree uint8_t *plain = NULL;
    size_t plain_len;
    Export t;

    plain = plain_permanent_blob(&plain_len);
    for (size_t klen = 16; klen <= 32; klen += 16) {
        SwtpmKey k;
        size_t len;

        swtpm_key_from_passphrase((const uint8_t *)PASSPHRASE,
                                  sizeof(PASSPHRASE) - 1, SWTPM_KDF_SHA512,
                                  klen, &k);
        g_autofree uint8_t *sealed = swtpm_blob_encode_migration(
            plain, plain_len, &k, IV, &len);

        /* the default KDF, pbkdf2, makes another key */
        g_assert_cmpint(export_start(&t, pass_file,
                                     ",swtpm-migration-key-format=passphrase"),
                        ==, -1);
        refused(&t, sealed, len);
        export_stop(&t);

        g_assert_cmpint(export_start(&t, pass_file,
                                     ",swtpm-migration-key-format=passphrase"
                                     ",swtpm-migration-key-kdf=sha512"),
                        ==, -1);
        g_assert_cmphex(qtpm_ctrl_u32(t.fd, CMD_STOP, NULL, 0), ==, 0);
        g_assert_cmphex(set_blob(&t, sealed, len), ==, 0);
        g_assert_cmphex(init_tpm(&t), ==, 0);
        export_stop(&t);
    }
    unlink(pass_file);
    rmdir(dir);
}

/* A secret that is no key, or options that do not fit: exit 1, no socket. */
static void test_bad_options(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    g_autofree char *odd = write_file(dir, "odd", "0123456789", 10);
    Export t;

    g_assert_cmpint(export_start(&t, odd, NULL), ==, 1);
    g_assert_false(g_file_test(t.ctrl, G_FILE_TEST_EXISTS));
    export_stop(&t);
    g_assert_cmpint(export_start(&t, odd, ",swtpm-migration-key-format=hex"),
                    ==, 1);
    export_stop(&t);
    g_assert_cmpint(export_start(&t, odd, ",swtpm-migration-key-kdf=sha512"),
                    ==, 1);
    export_stop(&t);
    g_assert_cmpint(export_start(&t, NULL,
                                 ",swtpm-migration-key-format=passphrase"),
                    ==, 1);
    export_stop(&t);
    unlink(odd);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-export/migration-key/key-file", test_key_file);
    g_test_add_func("/swtpm-export/migration-key/passphrase", test_passphrase);
    g_test_add_func("/swtpm-export/migration-key/bad-options",
                    test_bad_options);
    return g_test_run();
}
