/*
 * -export swtpm's shared-storage hand-off spoken to directly: two qtpm
 * processes on one image, as QEMU's source and target drive them
 * (docs/swtpm-protocol.md "Shared storage"). The options and their refusals;
 * a source that gave its image up after GET_STATEBLOB(savestate) refuses
 * what would write it until CMD_LOCK_STORAGE; a target that starts while the
 * source owns the image waits a bounded time for it, takes it only once it
 * is released, and from then on the source cannot relock.
 */
#include "qemu/osdep.h"
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "qemu/bswap.h"
#include "qemu/sockets.h"
#include "qtpm-export-util.h"

#define CMD_INIT 0x02
#define CMD_STORE_VOLATILE 0x0a
#define CMD_GET_STATEBLOB 0x0c
#define CMD_LOCK_STORAGE 0x13
#define RES_FAIL 0x09

typedef struct Peer {
    char *ctrl;
    GPid pid;
    int fd;             /* the control connection */
    int data;           /* our end of the data channel */
} Peer;

static const uint8_t STARTUP[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};
static const uint8_t GETRANDOM[12] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x08,
};

/* Runs qtpm with @args to its end; its exit status, its stderr in *@err. */
static int qtpm_run(const char *const *args, char **err)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    int status;

    g_ptr_array_add(argv, qtpm);
    for (; *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, 0, NULL, NULL,
                               NULL, err, &status, NULL));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *image_create(const char *dir)
{
    g_autofree char *cmd = NULL;
    char *img = g_build_filename(dir, "tpm.qcow2", NULL);
    int status;

    cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 1M", img);
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    return img;
}

static uint32_t lock_storage(Peer *p, uint32_t retries)
{
    uint8_t body[4];

    stl_be_p(body, retries);
    return qtpm_ctrl(p->fd, CMD_LOCK_STORAGE, body, sizeof(body));
}

/* qtpm exporting @img with the extra export keys @keys; connected. */
static void peer_start(Peer *p, const char *dir, const char *name,
                       const char *img, const char *keys)
{
    g_autofree char *qtpm = qtest_qtpm_binary();
    g_autofree char *drive = g_strdup_printf("file=%s,if=none,id=d0", img);
    g_autofree char *exp = NULL;
    g_autoptr(GError) err = NULL;
    const char *argv[] = { qtpm, "-drive", drive, "-tpmdev",
                           "libtpms,id=tpm0,nvram=d0", "-export", NULL, NULL };

    p->ctrl = g_strdup_printf("%s/%s.sock", dir, name);
    exp = g_strdup_printf("swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s,%s", p->ctrl,
                          keys);
    argv[6] = exp;
    g_assert_cmpint(qtpm_spawn_export(argv, p->ctrl, true, &p->pid), ==, -1);
    p->fd = qemu_unix_connect(p->ctrl, &err);
    g_assert_no_error(err);
    p->data = qtpm_ctrl_set_datafd(p->fd);
}

static void peer_stop(Peer *p)
{
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    close(p->fd);
    close(p->data);
    unlink(p->ctrl);
    g_free(p->ctrl);
}

/* GET_STATEBLOB of @type; the result, the blob in *@blob (NULL when none). */
static uint32_t get_blob(Peer *p, uint32_t type, uint8_t **blob, uint32_t *len)
{
    uint8_t body[12] = { 0 }, hdr[16];

    stl_be_p(body, 1);                          /* DECRYPTED, as QEMU asks */
    stl_be_p(body + 4, type);
    qtpm_ctrl_send(p->fd, CMD_GET_STATEBLOB, body, sizeof(body));
    qtpm_recv(p->fd, hdr, sizeof(hdr));
    *len = ldl_be_p(hdr + 12);
    *blob = NULL;
    if (*len) {
        *blob = g_malloc(*len);
        qtpm_recv(p->fd, *blob, *len);
    }
    return ldl_be_p(hdr);
}

static void test_options(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    g_autofree char *img = image_create(dir);
    g_autofree char *drive = g_strdup_printf("file=%s,if=none,id=d0", img);
    g_autofree char *ctrl_opt = g_strdup_printf(
        "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s/c.sock,incoming=maybe", dir);
    g_autofree char *null_opt = g_strdup_printf(
        "swtpm,id=e0,tpmdev=tpm0,ctrl=unix:%s/c.sock,incoming=on", dir);
    g_autofree char *out = NULL;
    const char *bad_bool[] = { "-drive", drive, "-tpmdev",
                               "libtpms,id=tpm0,nvram=d0", "-export", ctrl_opt,
                               NULL };
    const char *null_be[] = { "-tpmdev", "null,id=tpm0", "-export", null_opt,
                              NULL };
    const char *both[] = { "-drive", drive, "-tpmdev",
                           "libtpms,id=tpm0,nvram=d0", "-export", null_opt,
                           "-incoming", "unix:/nonexistent/m.sock", NULL };
    g_autofree char *sock = g_strdup_printf("%s/c.sock", dir);
    g_autofree char *help_out = NULL;

    g_assert_cmpint(qtpm_run(bad_bool, &out), ==, 1);
    g_assert_nonnull(strstr(out, "incoming"));
    g_assert_cmpint(strchr(out, '\n') - out + 1, ==, strlen(out));
    g_clear_pointer(&out, g_free);

    g_assert_cmpint(qtpm_run(null_be, &out), ==, 1);
    g_assert_nonnull(strstr(out, "need a -tpmdev with state storage"));
    g_assert_cmpint(strchr(out, '\n') - out + 1, ==, strlen(out));
    g_clear_pointer(&out, g_free);

    g_assert_cmpint(qtpm_run(both, &out), ==, 1);
    g_assert_nonnull(strstr(out, "incoming=on and -incoming exclude each other"));
    g_clear_pointer(&out, g_free);
    /* Refused before anything listened. */
    g_assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));

    {
        g_autofree char *qtpm = qtest_qtpm_binary();
        const char *argv[] = { qtpm, "-export", "help", NULL };
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL,
                                   &help_out, NULL, &status, NULL));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_nonnull(strstr(help_out, "incoming=on|off"));
        g_assert_nonnull(strstr(help_out, "release-lock-outgoing=on|off"));
    }
    unlink(img);
    rmdir(dir);
}

/*
 * A source hands its image over after the savestate blob; until
 * CMD_LOCK_STORAGE it refuses what would write, then the TPM works again.
 */
static void test_lock_storage_after_release(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    g_autofree char *img = image_create(dir);
    g_autofree uint8_t *perm = NULL, *vol = NULL, *save = NULL;
    uint8_t init[4] = { 0 };
    uint32_t plen, vlen, slen;
    Peer src;

    peer_start(&src, dir, "src", img, "release-lock-outgoing=on");
    g_assert_cmphex(qtpm_ctrl(src.fd, CMD_INIT, init, 4), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(src.data, STARTUP, sizeof(STARTUP)), ==, 0);

    /* Permanent and volatile keep the image; savestate hands it over. */
    g_assert_cmphex(get_blob(&src, 1, &perm, &plen), ==, 0);
    g_assert_cmphex(get_blob(&src, 2, &vol, &vlen), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(src.data, GETRANDOM, sizeof(GETRANDOM)), ==, 0);
    g_assert_cmphex(get_blob(&src, 3, &save, &slen), ==, 0x800);

    g_assert_cmphex(qtpm_tpm_cmd(src.data, GETRANDOM, sizeof(GETRANDOM)), !=, 0);
    g_assert_cmphex(qtpm_ctrl(src.fd, CMD_STORE_VOLATILE, NULL, 0), ==, RES_FAIL);
    g_assert_cmphex(qtpm_ctrl(src.fd, CMD_INIT, init, 4), ==, RES_FAIL);
    g_assert_cmphex(qtpm_ctrl_set_blob(src.fd, 2, 0, vol, vlen), ==, RES_FAIL);
    /* Blobs can still be read: the TPM runs, it only must not write. */
    g_clear_pointer(&perm, g_free);
    g_assert_cmphex(get_blob(&src, 1, &perm, &plen), ==, 0);

    g_assert_cmphex(lock_storage(&src, 0), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(src.data, GETRANDOM, sizeof(GETRANDOM)), ==, 0);
    g_assert_cmphex(qtpm_ctrl(src.fd, CMD_STORE_VOLATILE, NULL, 0), ==, 0);
    /* Owning already, LOCK_STORAGE succeeds at once (QEMU may send it again). */
    g_assert_cmphex(lock_storage(&src, 0), ==, 0);
    peer_stop(&src);
    unlink(img);
    rmdir(dir);
}

/*
 * Source and target on one image: the target starts while the source owns
 * it, waits a bounded time for it, and takes it only once it is handed over;
 * the source cannot take it back from a target that has it.
 */
static void test_hand_over(void)
{
    g_autofree char *dir = qtest_scratch_dir();
    g_autofree char *img = image_create(dir);
    g_autofree uint8_t *perm = NULL, *vol = NULL, *save = NULL;
    uint8_t init[4] = { 0 };
    uint32_t plen, vlen, slen;
    gint64 t0, waited;
    Peer src, dst;

    peer_start(&src, dir, "src", img, "release-lock-outgoing=on");
    g_assert_cmphex(qtpm_ctrl(src.fd, CMD_INIT, init, 4), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(src.data, STARTUP, sizeof(STARTUP)), ==, 0);
    peer_start(&dst, dir, "dst", img, "incoming=on");
    /* Before CMD_INIT a target answers as any export: a TPM failure. */
    g_assert_cmphex(qtpm_tpm_cmd(dst.data, GETRANDOM, sizeof(GETRANDOM)), !=, 0);

    g_assert_cmphex(get_blob(&src, 1, &perm, &plen), ==, 0);
    g_assert_cmphex(get_blob(&src, 2, &vol, &vlen), ==, 0);
    /* The source still owns the image: the target waits, then refuses. */
    t0 = g_get_monotonic_time();
    g_assert_cmphex(qtpm_ctrl_set_blob(dst.fd, 1, 0, perm, plen), ==, RES_FAIL);
    waited = (g_get_monotonic_time() - t0) / 1000;
    g_assert_cmpint(waited, >=, 2500);
    g_assert_cmpint(waited, <, 10000);
    /* ... and a refused blob leaves no TPM to start. */
    g_assert_cmphex(qtpm_ctrl(dst.fd, CMD_INIT, init, 4), ==, RES_FAIL);

    g_assert_cmphex(get_blob(&src, 3, &save, &slen), ==, 0x800);
    g_assert_cmphex(qtpm_ctrl_set_blob(dst.fd, 1, 0, perm, plen), ==, 0);
    g_assert_cmphex(qtpm_ctrl_set_blob(dst.fd, 2, 0, vol, vlen), ==, 0);
    init[3] = 1;                                /* DELETE_VOLATILE, as QEMU */
    g_assert_cmphex(qtpm_ctrl(dst.fd, CMD_INIT, init, 4), ==, 0);
    g_assert_cmphex(qtpm_tpm_cmd(dst.data, GETRANDOM, sizeof(GETRANDOM)), ==, 0);

    /* Never two owners: the source's relock times out while the target runs. */
    g_assert_cmphex(lock_storage(&src, 10), ==, RES_FAIL);
    g_assert_cmphex(qtpm_tpm_cmd(src.data, GETRANDOM, sizeof(GETRANDOM)), !=, 0);
    g_assert_cmphex(qtpm_tpm_cmd(dst.data, GETRANDOM, sizeof(GETRANDOM)), ==, 0);
    peer_stop(&dst);
    peer_stop(&src);
    unlink(img);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-export-shared/options", test_options);
    g_test_add_func("/swtpm-export-shared/lock-storage-after-release",
                    test_lock_storage_after_release);
    g_test_add_func("/swtpm-export-shared/hand-over", test_hand_over);
    return g_test_run();
}
