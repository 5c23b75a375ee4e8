/*
 * backends/tpm/tpm_backend.c and backends/tpm/: the worker thread, completions on the
 * main loop, pause/resume, the null backend's responses, and the libtpms
 * backend's start-up rules over a real NVRAM store.
 */
#include "qemu/osdep.h"
#include "block/blkdebug.h"
#include "crypto/secret.h"
#include "nvram/nvram.h"
#include <sys/socket.h>
#include "qemu/bswap.h"
#include "qemu/option.h"
#include "qemu/sockets.h"
#include "sysemu/blockdev.h"
#include "sysemu/tpm_backend.h"
#include "sysemu/tpm_util.h"
#include "../../backends/tpm/tpm_backend_int.h"

typedef struct Completion {
    int calls;
    int ret;
} Completion;

static void on_completed(void *opaque, int ret)
{
    Completion *c = opaque;

    c->calls++;
    c->ret = ret;
}

static GHashTable *opts(const char *str, const char *implied)
{
    g_autoptr(GError) err = NULL;
    GHashTable *o = qemu_opts_parse(str, implied, &err);

    g_assert_no_error(err);
    return o;
}

static TPMBackend *new_backend(const char *str, GError **errp)
{
    g_autoptr(GHashTable) o = opts(str, "type");

    return tpm_backend_new(qemu_opt_get(o, "type"), qemu_opt_get(o, "id"), o,
                           errp);
}

/* Delivers @cmd and runs the main loop until the completion arrives. */
static void run_command(TPMBackend *tb, TPMBackendCmd *cmd, Completion *c)
{
    int before = c->calls;
    gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;

    tpm_backend_deliver_request(tb, cmd);
    while (c->calls == before) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_cmpint(c->calls, ==, before + 1);
    g_assert_null(tb->cmd);
}

static const uint8_t tpm2_startup_clear[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};
static const uint8_t tpm12_get_random[] = {
    0x00, 0xc1, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x46,
    0x00, 0x00, 0x00, 0x08,
};

static void test_null_responses(void)
{
    static const struct {
        const char *opts;
        const uint8_t *cmd;
        size_t len;
        uint8_t want[10];
    } cases[] = {
        { "null,id=n20", tpm2_startup_clear, sizeof(tpm2_startup_clear),
          { 0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01 } },
        { "null,id=n12,version=1.2", tpm12_get_random,
          sizeof(tpm12_get_random),
          { 0x00, 0xc4, 0, 0, 0, 10, 0, 0, 0, 0x09 } },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        Completion c = { 0 };
        uint8_t out[4096];
        TPMBackendCmd cmd = {
            .in = cases[i].cmd, .in_len = cases[i].len,
            .out = out, .out_len = sizeof(out),
        };
        TPMBackend *tb = new_backend(cases[i].opts, NULL);

        g_assert_nonnull(tb);
        tpm_backend_set_frontend(tb, "tpm-tis", on_completed, &c);
        g_assert_cmpint(tpm_backend_startup_tpm(tb, 4096, NULL), ==, 0);
        memset(out, 0xee, sizeof(out));
        run_command(tb, &cmd, &c);
        g_assert_cmpmem(out, 10, cases[i].want, 10);
        g_assert_cmpuint(out[10], ==, 0xee);
        g_assert_false(cmd.selftest_done);
        tpm_backend_free(tb);
    }
}

static void test_null_options(void)
{
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;
    TPMBackend *tb = new_backend("null,id=dup", NULL);

    g_assert_null(new_backend("null,id=x,path=/dev/tpm0", &e1));
    g_assert_nonnull(strstr(e1->message, "'path' is not a parameter"));
    g_assert_null(new_backend("null,id=x,version=3", &e2));
    g_assert_null(new_backend("null,id=dup", &e3));
    g_assert_nonnull(strstr(e3->message, "'dup' already exists"));
    g_assert_true(tpm_backend_find("dup") == tb);
    tpm_backend_free(tb);
    g_assert_null(tpm_backend_find("dup"));
}

/* A held command runs only on resume; its completion arrives once. */
static void test_pause_resume(void)
{
    Completion c = { 0 };
    uint8_t out[64];
    TPMBackendCmd cmd = {
        .in = tpm2_startup_clear, .in_len = sizeof(tpm2_startup_clear),
        .out = out, .out_len = sizeof(out),
    };
    TPMBackend *tb = new_backend("null,id=p", NULL);

    tpm_backend_set_frontend(tb, "tpm-tis", on_completed, &c);
    tpm_backend_pause(tb);
    memset(out, 0, sizeof(out));
    tpm_backend_deliver_request(tb, &cmd);
    tpm_backend_finish_sync(tb);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    g_assert_cmpint(c.calls, ==, 0);
    g_assert_cmpuint(out[9], ==, 0);
    tpm_backend_resume(tb);
    tpm_backend_finish_sync(tb);
    g_assert_cmpint(c.calls, ==, 1);
    g_assert_cmpuint(out[9], ==, 0x01);
    /* finish_sync delivered it; the main loop must not deliver it again. */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    g_assert_cmpint(c.calls, ==, 1);
    tpm_backend_free(tb);
}

static int sync_counter(TPMBackend *tb, void *opaque)
{
    g_assert_true(g_thread_self() != opaque);
    return 42;
}

static void test_run_sync_on_worker(void)
{
    TPMBackend *tb = new_backend("null,id=s", NULL);

    g_assert_cmpint(tpm_backend_run_sync(tb, sync_counter, g_thread_self()),
                    ==, 42);
    tpm_backend_free(tb);
}

/* What the worker's fd callback saw: which thread, how often, the answer. */
typedef struct WorkerFd {
    int sv[2];
    GThread *main;
    GThread *ran_on;
    gint calls;                 /* atomic */
    bool stop_after_one;
} WorkerFd;

static bool worker_fd_ready(TPMBackend *tb, void *opaque)
{
    WorkerFd *w = opaque;
    uint8_t in[64], out[64];
    TPMBackendCmd cmd = { .in = in, .out = out, .out_len = sizeof(out) };
    ssize_t n = read(w->sv[1], in, sizeof(in));

    g_assert_cmpint(n, >, 0);
    cmd.in_len = n;
    w->ran_on = g_thread_self();
    tpm_backend_run_cmd_on_worker(tb, &cmd);
    /* Counted before the answer goes out: the test reads the count after it. */
    g_atomic_int_inc(&w->calls);
    g_assert_cmpint(write(w->sv[1], out, 10), ==, 10);
    return !w->stop_after_one;
}

/* One command through the fd and its answer; false if none came in 200 ms. */
static bool worker_fd_roundtrip(WorkerFd *w, uint8_t *resp)
{
    g_assert_cmpint(write(w->sv[0], tpm2_startup_clear,
                          sizeof(tpm2_startup_clear)), ==,
                    sizeof(tpm2_startup_clear));
    return qemu_read_full_timeout(w->sv[0], resp, 10, 200) == 10;
}

/*
 * A fd the worker watches: its callback runs on the worker and answers
 * without the main loop; clearing it returns only when it cannot run any
 * more; a pause stops the watch until resume; a callback that returns
 * false is not called again.
 */
static void test_worker_fd(void)
{
    TPMBackend *tb = new_backend("null,id=w", NULL);
    WorkerFd w = { .main = g_thread_self() };
    uint8_t resp[10];
    uint8_t junk[64];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, w.sv),
                    ==, 0);
    tpm_backend_set_worker_fd(tb, w.sv[1], worker_fd_ready, &w);
    g_assert_true(worker_fd_roundtrip(&w, resp));
    g_assert_cmphex(ldl_be_p(resp + 6), ==, 0x101);  /* null: TPM_RC_FAILURE */
    g_assert_true(w.ran_on != w.main);
    g_assert_cmpint(g_atomic_int_get(&w.calls), ==, 1);

    tpm_backend_pause(tb);
    g_assert_false(worker_fd_roundtrip(&w, resp));
    g_assert_cmpint(g_atomic_int_get(&w.calls), ==, 1);
    tpm_backend_resume(tb);
    g_assert_cmpint(qemu_read_full_timeout(w.sv[0], resp, 10, 10000), ==, 10);
    g_assert_cmpint(g_atomic_int_get(&w.calls), ==, 2);

    tpm_backend_set_worker_fd(tb, -1, NULL, NULL);
    g_assert_false(worker_fd_roundtrip(&w, resp));
    g_assert_cmpint(g_atomic_int_get(&w.calls), ==, 2);
    g_assert_cmpint(read(w.sv[1], junk, sizeof(junk)), ==,
                    sizeof(tpm2_startup_clear));

    w.stop_after_one = true;
    tpm_backend_set_worker_fd(tb, w.sv[1], worker_fd_ready, &w);
    g_assert_true(worker_fd_roundtrip(&w, resp));
    g_assert_false(worker_fd_roundtrip(&w, resp));
    g_assert_cmpint(g_atomic_int_get(&w.calls), ==, 3);
    /* Jobs still run while the worker watches nothing. */
    g_assert_cmpint(tpm_backend_run_sync(tb, sync_counter, g_thread_self()),
                    ==, 42);
    tpm_backend_free(tb);
    close(w.sv[0]);
    close(w.sv[1]);
}

/* The null backend keeps no state: the storage operations say so. */
static void test_null_no_storage(void)
{
    g_autoptr(GError) err = NULL;
    TPMBackend *tb = new_backend("null,id=n", NULL);
    TPMStorageInfo info;
    QCryptoKey key;

    g_assert_false(tpm_backend_has_storage(tb));
    g_assert_cmpint(tpm_backend_init(tb, 4096, TPM_BACKEND_INIT_DELETE_VOLATILE,
                                     &err), ==, 0);
    g_assert_cmpint(tpm_backend_get_storage_info(tb, &info, &err), ==, -1);
    g_assert_cmpstr(err->message, ==, "TPM backend 'n' (null) has no state storage");
    g_clear_error(&err);
    g_assert_cmpint(tpm_backend_lock_storage(tb, 0, &err), ==, -1);
    g_clear_error(&err);
    g_assert_cmpint(tpm_backend_store_volatile(tb, &err), ==, -1);
    g_clear_error(&err);
    g_assert_cmpint(tpm_backend_get_state_key(tb, &key, &err), ==, 0);
    g_assert_cmpint(key.kind, ==, QCRYPTO_KEY_NONE);
    tpm_backend_free(tb);
}

/* ---- libtpms over a real store ------------------------------------------- */

typedef struct Fixture {
    char *dir;
    char *img;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    f->dir = g_dir_make_tmp("qtpm-backend-XXXXXX", &err);
    g_assert_no_error(err);
    f->img = g_build_filename(f->dir, "tpm.qcow2", NULL);
    g_assert_cmpint(qcow2_create(f->img, 1 << 20, NULL, &err), ==, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    drive_close_all();
    qcrypto_secret_free_all();
    unlink(f->img);
    rmdir(f->dir);
    g_free(f->img);
    g_free(f->dir);
}

static void add_drive(Fixture *f)
{
    g_autofree char *s = g_strdup_printf("file=%s,if=none,id=drive0", f->img);
    g_autoptr(GHashTable) o = opts(s, NULL);
    g_autoptr(GError) err = NULL;

    g_assert_nonnull(drive_new(o, false, &err));
}

static void add_secret(const char *id, const char *hex)
{
    g_autofree char *s = g_strdup_printf("id=%s,data=%s,format=hex", id, hex);
    g_autoptr(GHashTable) o = opts(s, NULL);
    g_autoptr(GError) err = NULL;

    g_assert_nonnull(qcrypto_secret_new(o, &err));
}

#define KEY_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static uint32_t libtpms_command(TPMBackend *tb, const uint8_t *in, size_t len)
{
    Completion c = { 0 };
    uint8_t out[4096];
    TPMBackendCmd cmd = { .in = in, .in_len = len, .out = out,
                          .out_len = sizeof(out) };

    tpm_backend_set_frontend(tb, "tpm-tis", on_completed, &c);
    run_command(tb, &cmd, &c);
    return tpm_util_get_code_from_buffer(out, sizeof(out));
}

static void test_libtpms_lifecycle(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) err2 = NULL;
    TPMStorageInfo info;
    TPMBackend *tb;

    add_drive(f);
    add_secret("keyA", KEY_A);
    add_secret("keyB", KEY_B);
    tb = new_backend("libtpms,id=t,nvram=drive0,key-secret=keyA", &err);
    g_assert_no_error(err);
    g_assert_cmpint(tpm_backend_get_tpm_version(tb), ==, TPM_VERSION_2_0);
    /* The backend owns a store and reports it through its storage operations. */
    g_assert_true(tpm_backend_has_storage(tb));
    g_assert_cmpint(tpm_backend_get_storage_info(tb, &info, &err), ==, 0);
    g_assert_cmpuint(info.generation, >=, 1);
    g_assert_cmpint(tpm_backend_startup_tpm(tb, 4096, &err), ==, 0);
    g_assert_cmpuint(tpm_backend_get_buffer_size(tb), ==, 4096);
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0);
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0x100);
    /* A second libtpms backend in the same process is refused. */
    g_assert_null(new_backend("libtpms,id=t2,nvram=drive0", &err2));
    g_assert_nonnull(strstr(err2->message, "only one libtpms backend"));
    /* A platform reset: the TPM wants Startup again. */
    tpm_backend_reset(tb);
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0x101);
    g_assert_cmpint(tpm_backend_startup_tpm(tb, 4096, &err), ==, 0);
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0);
    tpm_backend_shutdown_all();
    drive_close_all();

    /* Reopen: the wrong key is refused when the backend is created. */
    add_drive(f);
    g_clear_error(&err);
    g_assert_null(new_backend("libtpms,id=t,nvram=drive0,key-secret=keyB",
                              &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_WRONG_KEY);
    g_clear_error(&err);
    g_assert_null(new_backend("libtpms,id=t,nvram=drive0,key-secret=keyA,"
                              "version=1.2", &err));
    g_assert_nonnull(strstr(err->message, "holds TPM 2.0 state"));
    g_clear_error(&err);
    tb = new_backend("libtpms,id=t,nvram=drive0,key-secret=keyA", &err);
    g_assert_no_error(err);
    g_assert_cmpint(tpm_backend_startup_tpm(tb, 4096, &err), ==, 0);
    tpm_backend_free(tb);
}

/* A store that held state but lost its permanent blob is not a new TPM. */
static void test_libtpms_lost_permanent_state(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    NvramOpenOptions o = { .owner = true, .format_blank = true,
                           .tpm_version = 2 };
    NvramStore *store;
    BlockDriverState *bs;
    TPMBackend *tb;
    static const uint8_t junk[16] = { 1 };

    add_drive(f);
    bs = drive_get_by_id("drive0");
    store = nvram_open(bs, &o, &err);
    g_assert_no_error(err);
    g_assert_cmpint(nvram_store(store, TPM_STATE_BLOB_VOLATILE, junk,
                                sizeof(junk), &err), ==, 0);
    g_assert_cmpint(nvram_delete(store, TPM_STATE_BLOB_VOLATILE, &err), ==, 0);
    nvram_close(store);

    tb = new_backend("libtpms,id=t,nvram=drive0", &err);
    g_assert_no_error(err);
    g_assert_cmpint(tpm_backend_startup_tpm(tb, 4096, &err), ==, -1);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message, "has no permanent state"));
    g_assert_true(tpm_backend_had_startup_error(tb));
    tpm_backend_free(tb);
}

/* A store error inside libtpms's start-up stops it with the store's sentence. */
static void test_libtpms_store_error_at_startup(Fixture *f,
                                                gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    BlockOpenOptions bo = { .format = "qcow2", .blkdebug = true };
    BlockDriverState *bs = bdrv_open(f->img, &bo, &err);
    TPMBackend *tb;

    g_assert_no_error(err);
    g_assert_true(drive_add("drive0", bs, &err));
    tb = new_backend("libtpms,id=t,nvram=drive0", &err);
    g_assert_no_error(err);
    /* Manufacturing the new TPM stores its permanent state: fail that. */
    blkdebug_fail_write(bdrv_get_blkdebug(bs), 1);
    /* No warning: the error is start-up's own, said once (GTest would abort). */
    g_assert_cmpint(tpm_backend_startup_tpm(tb, 4096, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_true(strstr(err->message, f->img) != NULL);
    g_assert_null(strstr(err->message, "TPM_RESULT"));
    g_assert_true(tpm_backend_had_startup_error(tb));
    tpm_backend_free(tb);
}

/* State blobs out of a running TPM and into a stopped one (migration). */
static void test_libtpms_state_blobs(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *perm = NULL;
    g_autofree uint8_t *vol = NULL;
    size_t perm_len = 0, vol_len = 0;
    TPMBackend *tb;

    add_drive(f);
    tb = new_backend("libtpms,id=t,nvram=drive0", &err);
    g_assert_no_error(err);
    tpm_backend_startup_tpm(tb, 4096, &err);
    g_assert_no_error(err);
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0);
    g_assert_cmpint(tpm_backend_get_state_blob(tb, TPM_STATE_BLOB_PERMANENT,
                                               &perm, &perm_len, &err), ==, 1);
    g_assert_cmpint(tpm_backend_get_state_blob(tb, TPM_STATE_BLOB_VOLATILE,
                                               &vol, &vol_len, &err), ==, 1);
    g_assert_cmpuint(perm_len, >, 0);
    g_assert_cmpuint(vol_len, >, 0);
    g_assert_cmpint(tpm_backend_set_state_blob(tb, TPM_STATE_BLOB_VOLATILE,
                                               vol, vol_len, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "is running"));
    g_clear_error(&err);
    tpm_backend_reset(tb);
    g_assert_cmpint(tpm_backend_set_state_blob(tb, TPM_STATE_BLOB_PERMANENT,
                                               perm, perm_len, &err), ==, 0);
    g_assert_cmpint(tpm_backend_set_state_blob(tb, TPM_STATE_BLOB_VOLATILE,
                                               vol, vol_len, &err), ==, 0);
    tpm_backend_startup_tpm(tb, 4096, &err);
    g_assert_no_error(err);
    /* The volatile state came back: the TPM is already started. */
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0x100);
    tpm_backend_free(tb);
}

/*
 * The swtpm-style state operations: the volatile state made durable comes
 * back at the next start, and DELETE_VOLATILE makes that start its last one;
 * the storage can be handed away and taken back.
 */
static void test_libtpms_store_volatile(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TPMStorageInfo before, after;
    TPMBackend *tb;

    add_drive(f);
    tb = new_backend("libtpms,id=t,nvram=drive0", &err);
    g_assert_no_error(err);
    g_assert_cmpint(tpm_backend_startup_tpm(tb, 4096, &err), ==, 0);
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0);
    g_assert_cmpint(tpm_backend_get_storage_info(tb, &before, &err), ==, 0);
    g_assert_cmpint(tpm_backend_store_volatile(tb, &err), ==, 0);
    g_assert_cmpint(tpm_backend_get_storage_info(tb, &after, &err), ==, 0);
    g_assert_cmpuint(after.generation, >, before.generation);
    g_assert_cmpmem(after.uuid, 16, before.uuid, 16);
    g_assert_cmpint(tpm_backend_check_storage(tb, &err), ==, 0);

    tpm_backend_stop(tb);
    g_assert_cmpint(tpm_backend_init(tb, 4096, TPM_BACKEND_INIT_DELETE_VOLATILE,
                                     &err), ==, 0);
    /* Started from the stored volatile state: already past Startup. */
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0x100);
    tpm_backend_stop(tb);
    g_assert_cmpint(tpm_backend_init(tb, 4096, 0, &err), ==, 0);
    g_assert_cmphex(libtpms_command(tb, tpm2_startup_clear,
                                    sizeof(tpm2_startup_clear)), ==, 0);

    /* Hand the storage away and take it back. */
    g_assert_cmpint(tpm_backend_unlock_storage(tb, &err), ==, 0);
    g_assert_cmpint(tpm_backend_lock_storage(tb, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(tpm_backend_store_volatile(tb, &err), ==, 0);
    g_assert_no_error(err);
    tpm_backend_free(tb);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tpm-backend/null/responses", test_null_responses);
    g_test_add_func("/tpm-backend/null/options", test_null_options);
    g_test_add_func("/tpm-backend/pause-resume", test_pause_resume);
    g_test_add_func("/tpm-backend/run-sync", test_run_sync_on_worker);
    g_test_add_func("/tpm-backend/worker-fd", test_worker_fd);
    g_test_add_func("/tpm-backend/null/no-storage", test_null_no_storage);
    g_test_add("/tpm-backend/libtpms/lifecycle", Fixture, NULL, fixture_setup,
               test_libtpms_lifecycle, fixture_teardown);
    g_test_add("/tpm-backend/libtpms/lost-permanent-state", Fixture, NULL,
               fixture_setup, test_libtpms_lost_permanent_state,
               fixture_teardown);
    g_test_add("/tpm-backend/libtpms/store-error-at-startup", Fixture, NULL,
               fixture_setup, test_libtpms_store_error_at_startup,
               fixture_teardown);
    g_test_add("/tpm-backend/libtpms/state-blobs", Fixture, NULL,
               fixture_setup, test_libtpms_state_blobs, fixture_teardown);
    g_test_add("/tpm-backend/libtpms/store-volatile", Fixture, NULL,
               fixture_setup, test_libtpms_store_volatile, fixture_teardown);
    return g_test_run();
}
