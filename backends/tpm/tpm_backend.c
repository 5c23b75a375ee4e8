/*
 * TPM backend core: the class registry, and one worker thread per backend
 * that runs commands and backend calls in order. Completions go back to the
 * GLib main loop through a per-backend source. docs/design.md "Backends".
 */
#include "qemu/osdep.h"
#include <poll.h>
#include <sys/eventfd.h>
#include "qemu/log.h"
#include "qemu/option.h"
#include "sysemu/tpm_util.h"
#include "tpm_backend_int.h"

extern const TPMBackendClass tpm_libtpms_class;
extern const TPMBackendClass tpm_null_class;

static const TPMBackendClass *const tpm_classes[] = {
    &tpm_libtpms_class,
    &tpm_null_class,
    NULL,
};

static GList *tpm_backends;
static bool tpm_backends_incoming;

typedef enum TPMJobKind {
    TPM_JOB_CMD,
    TPM_JOB_SYNC,
    TPM_JOB_QUIT,
} TPMJobKind;

typedef struct TPMJob {
    TPMJobKind kind;
    TPMBackendCmd *cmd;
    TPMBackendSyncFunc fn;
    void *opaque;
    int ret;
    bool done;
} TPMJob;

typedef struct TPMCompletionSource {
    GSource source;
    TPMBackend *tb;
} TPMCompletionSource;

typedef struct TPMBackendWorker {
    GThread *thread;
    GMutex lock;
    GCond cond;
    GQueue jobs;
    int wakeup_fd;            /* eventfd: a job was queued */
    bool cmd_busy;            /* a TPM_JOB_CMD is queued or running */
    gint completion_pending;  /* atomic: a command finished, not delivered */
    GSource *completion;
    /* Worker only (changed by jobs): tpm_backend_set_worker_fd(). */
    int poll_fd;
    TPMWorkerFdFunc poll_fn;
    void *poll_opaque;
    bool poll_paused;         /* tpm_backend_pause() */
    gint direct_cmd;          /* atomic: a command from poll_fn is running */
} TPMBackendWorker;

const TPMBackendClass *const *tpm_backend_classes(void)
{
    return tpm_classes;
}

const TPMBackendClass *tpm_backend_find_class(const char *type)
{
    for (int i = 0; tpm_classes[i]; i++) {
        if (!g_strcmp0(tpm_classes[i]->type, type)) {
            return tpm_classes[i];
        }
    }
    return NULL;
}

TPMBackend *tpm_backend_find(const char *id)
{
    for (GList *l = tpm_backends; l; l = l->next) {
        TPMBackend *tb = l->data;
        if (!g_strcmp0(tb->id, id)) {
            return tb;
        }
    }
    return NULL;
}

GList *tpm_backend_list(void)
{
    return tpm_backends;
}

static void tpm_backend_log_cmd(TPMBackend *tb, TPMBackendCmd *c)
{
    if (qemu_loglevel_mask(LOG_TPM)) {
        qemu_log_mask(LOG_TPM, "tpm %s: locality %u command 0x%x (%u bytes) "
                      "-> response 0x%x (%u bytes)", tb->id, c->locality,
                      tpm_util_get_code_from_buffer(c->in, c->in_len),
                      c->in_len,
                      tpm_util_get_code_from_buffer(c->out, c->out_len),
                      tpm_util_get_size_from_buffer(c->out, c->out_len));
    }
}

/* Main thread: hands a finished command's result to the frontend. */
static void tpm_backend_deliver_completion(TPMBackend *tb)
{
    TPMBackendWorker *w = tb->worker;

    if (!g_atomic_int_compare_and_exchange(&w->completion_pending, 1, 0)) {
        return;
    }
    if (tb->cmd) {
        tpm_backend_log_cmd(tb, tb->cmd);
    }
    tb->cmd = NULL;
    if (tb->completed) {
        tb->completed(tb->completed_opaque, 0);
    }
}

static gboolean completion_prepare(GSource *source, gint *timeout)
{
    TPMCompletionSource *cs = (TPMCompletionSource *)source;

    *timeout = -1;
    return g_atomic_int_get(&cs->tb->worker->completion_pending) != 0;
}

static gboolean completion_check(GSource *source)
{
    return completion_prepare(source, &(gint){ 0 });
}

static gboolean completion_dispatch(GSource *source, GSourceFunc cb,
                                    gpointer data)
{
    tpm_backend_deliver_completion(((TPMCompletionSource *)source)->tb);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs completion_funcs = {
    .prepare = completion_prepare,
    .check = completion_check,
    .dispatch = completion_dispatch,
};

/*
 * Worker, with no job queued: sleeps until one is, or until the watched fd
 * is readable. Jobs go first, so that a job that stops the watch runs
 * before the fd is looked at again.
 */
static void tpm_backend_worker_wait(TPMBackend *tb)
{
    TPMBackendWorker *w = tb->worker;
    struct pollfd p[2] = {
        { .fd = w->wakeup_fd, .events = POLLIN },
        { .fd = w->poll_fd, .events = POLLIN },
    };
    nfds_t n = w->poll_fd >= 0 && !w->poll_paused ? 2 : 1;
    uint64_t count;

    if (poll(p, n, -1) <= 0) {
        return;
    }
    if (p[0].revents) {
        if (read(w->wakeup_fd, &count, sizeof(count)) < 0) {
            /* EAGAIN: another wake-up was read already; nothing lost. */
        }
        return;
    }
    if (n == 2 && p[1].revents && !w->poll_fn(tb, w->poll_opaque)) {
        w->poll_fd = -1;
        w->poll_fn = NULL;
        w->poll_opaque = NULL;
    }
}

static gpointer tpm_backend_worker_thread(gpointer data)
{
    TPMBackend *tb = data;
    TPMBackendWorker *w = tb->worker;

    for (;;) {
        g_mutex_lock(&w->lock);
        TPMJob *job = g_queue_pop_head(&w->jobs);
        g_mutex_unlock(&w->lock);

        if (!job) {
            tpm_backend_worker_wait(tb);
            continue;
        }

        switch (job->kind) {
        case TPM_JOB_CMD:
            tb->klass->handle_request(tb, job->cmd);
            if (tb->answer) {
                tb->answer(tb->answer_opaque, job->cmd);
            }
            g_free(job);
            g_mutex_lock(&w->lock);
            w->cmd_busy = false;
            g_atomic_int_set(&w->completion_pending, 1);
            g_mutex_unlock(&w->lock);
            /* Woken after the unlock, a waiter does not block on the mutex. */
            g_cond_broadcast(&w->cond);
            g_main_context_wakeup(NULL);
            break;
        case TPM_JOB_SYNC:
            job->ret = job->fn(tb, job->opaque);
            g_mutex_lock(&w->lock);
            job->done = true;
            g_mutex_unlock(&w->lock);
            g_cond_broadcast(&w->cond);
            break;
        case TPM_JOB_QUIT:
            g_free(job);
            return NULL;
        }
    }
}

static void tpm_backend_queue_job(TPMBackend *tb, TPMJob *job)
{
    TPMBackendWorker *w = tb->worker;

    g_mutex_lock(&w->lock);
    if (job->kind == TPM_JOB_CMD) {
        w->cmd_busy = true;
    }
    g_queue_push_tail(&w->jobs, job);
    g_mutex_unlock(&w->lock);
    /* After the unlock: the worker wakes to a free mutex, not into a wait. */
    if (eventfd_write(w->wakeup_fd, 1) < 0) {
        /* Only a counter at its maximum fails, and then the worker is awake. */
    }
}

int tpm_backend_run_sync(TPMBackend *tb, TPMBackendSyncFunc fn, void *opaque)
{
    TPMBackendWorker *w = tb->worker;
    TPMJob job = { .kind = TPM_JOB_SYNC, .fn = fn, .opaque = opaque };

    tpm_backend_queue_job(tb, &job);
    g_mutex_lock(&w->lock);
    while (!job.done) {
        g_cond_wait(&w->cond, &w->lock);
    }
    g_mutex_unlock(&w->lock);
    return job.ret;
}

static bool tpm_backend_worker_start(TPMBackend *tb, GError **errp)
{
    TPMBackendWorker *w;
    g_autofree char *name = NULL;
    int wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    if (wakeup_fd < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "TPM backend '%s': cannot create its worker's eventfd: %s",
                    tb->id, g_strerror(errno));
        return false;
    }
    w = g_new0(TPMBackendWorker, 1);
    name = g_strdup_printf("tpm-%s", tb->id);
    g_mutex_init(&w->lock);
    g_cond_init(&w->cond);
    g_queue_init(&w->jobs);
    w->wakeup_fd = wakeup_fd;
    w->poll_fd = -1;
    tb->worker = w;
    w->completion = g_source_new(&completion_funcs,
                                 sizeof(TPMCompletionSource));
    ((TPMCompletionSource *)w->completion)->tb = tb;
    g_source_set_name(w->completion, "tpm-completion");
    g_source_attach(w->completion, NULL);
    w->thread = g_thread_new(name, tpm_backend_worker_thread, tb);
    return true;
}

static void tpm_backend_worker_stop(TPMBackend *tb)
{
    TPMBackendWorker *w = tb->worker;
    TPMJob *job = g_new0(TPMJob, 1);

    if (!w) {
        return;
    }
    job->kind = TPM_JOB_QUIT;
    tpm_backend_queue_job(tb, job);
    g_thread_join(w->thread);
    g_source_destroy(w->completion);
    g_source_unref(w->completion);
    close(w->wakeup_fd);
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->cond);
    g_free(w);
    tb->worker = NULL;
}

static const TPMBackendClass *tpm_backend_check_class(const char *type,
                                                      GError **errp)
{
    const TPMBackendClass *klass = tpm_backend_find_class(type);

    if (!klass) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is not a TPM backend type (see -tpmdev help)",
                    type ? type : "");
    }
    return klass;
}

static bool tpm_backend_validate(const TPMBackendClass *klass, GHashTable *opts,
                                 GError **errp)
{
    g_autofree char *what = NULL;

    if (!klass->opts) {
        return true;
    }
    what = g_strdup_printf("-tpmdev %s", klass->type);
    return qemu_opts_validate(opts, klass->opts, what, errp);
}

bool tpm_backend_check_opts(const char *type, GHashTable *opts, GError **errp)
{
    const TPMBackendClass *klass = tpm_backend_check_class(type, errp);

    return klass && tpm_backend_validate(klass, opts, errp);
}

/*
 * The generic layer checks a request once, before the driver, as the block
 * layer does: a backend's init reads options that its table has allowed.
 */
TPMBackend *tpm_backend_new(const char *type, const char *id, GHashTable *opts,
                            GError **errp)
{
    const TPMBackendClass *klass = tpm_backend_check_class(type, errp);
    TPMBackend *tb;

    if (!klass) {
        return NULL;
    }
    if (!id || !*id) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "parameter 'id' is missing");
        return NULL;
    }
    if (tpm_backend_find(id)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "a TPM backend with id '%s' already exists", id);
        return NULL;
    }
    if (!tpm_backend_validate(klass, opts, errp)) {
        return NULL;
    }
    tb = g_new0(TPMBackend, 1);
    tb->klass = klass;
    tb->id = g_strdup(id);
    tb->incoming = tpm_backends_incoming;
    if (klass->init && klass->init(tb, opts, errp) < 0) {
        g_free(tb->id);
        g_free(tb);
        return NULL;
    }
    if (!tpm_backend_worker_start(tb, errp)) {
        if (tb->klass->finalize) {
            tb->klass->finalize(tb);
        }
        g_free(tb->id);
        g_free(tb);
        return NULL;
    }
    tpm_backends = g_list_append(tpm_backends, tb);
    return tb;
}

static int tpm_backend_shutdown_on_worker(TPMBackend *tb, void *opaque);

void tpm_backend_free(TPMBackend *tb)
{
    if (!tb) {
        return;
    }
    tpm_backend_finish_sync(tb);
    /* Power-off first: the library must not stay initialised without us. */
    if (tb->klass->shutdown && tb->worker) {
        tpm_backend_run_sync(tb, tpm_backend_shutdown_on_worker, NULL);
    }
    tpm_backend_worker_stop(tb);
    if (tb->klass->finalize) {
        tb->klass->finalize(tb);
    }
    tpm_backends = g_list_remove(tpm_backends, tb);
    g_free(tb->id);
    g_free(tb);
}

void tpm_backend_set_frontend(TPMBackend *tb, const char *model,
                              TPMRequestCompleted cb, void *opaque)
{
    tb->model = model;
    tb->completed = cb;
    tb->completed_opaque = opaque;
}

void tpm_backend_set_answer_hook(TPMBackend *tb, TPMRequestAnswer fn, void *opaque)
{
    tb->answer = fn;
    tb->answer_opaque = opaque;
}

typedef struct TPMStartupArgs {
    size_t buffersize;
    unsigned flags;
    GError *err;
} TPMStartupArgs;

static int tpm_backend_startup_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStartupArgs *a = opaque;

    return tb->klass->startup_tpm(tb, a->buffersize, a->flags, &a->err);
}

int tpm_backend_init(TPMBackend *tb, size_t buffersize, unsigned flags,
                     GError **errp)
{
    TPMStartupArgs a = { .buffersize = buffersize, .flags = flags };
    int ret = 0;

    if (!tb->klass->startup_tpm) {
        return 0;
    }
    tpm_backend_finish_sync(tb);
    ret = tpm_backend_run_sync(tb, tpm_backend_startup_on_worker, &a);
    tb->had_startup_error = ret < 0;
    if (ret < 0) {
        if (!a.err) {
            g_set_error(&a.err, QTPM_ERROR, QTPM_ERROR_FAILED,
                        "the TPM failed to start");
        }
        g_propagate_error(errp, a.err);
    } else {
        g_clear_error(&a.err);
    }
    return ret;
}

int tpm_backend_startup_tpm(TPMBackend *tb, size_t buffersize, GError **errp)
{
    return tpm_backend_init(tb, buffersize, 0, errp);
}

void tpm_backend_deliver_request(TPMBackend *tb, TPMBackendCmd *cmd)
{
    TPMJob *job;

    if (tb->cmd) {
        qemu_log_warning("TPM backend '%s': a command is already in flight; "
                         "the new one is dropped", tb->id);
        return;
    }
    tb->cmd = cmd;
    if (tb->paused) {
        tb->held_cmd = cmd;
        return;
    }
    job = g_new0(TPMJob, 1);
    job->kind = TPM_JOB_CMD;
    job->cmd = cmd;
    tpm_backend_queue_job(tb, job);
}

void tpm_backend_cancel_cmd(TPMBackend *tb)
{
    if (tb->held_cmd) {
        /* Not started yet: it runs on resume and the TPM sees no cancel. */
        return;
    }
    if ((tb->cmd || (tb->worker && g_atomic_int_get(&tb->worker->direct_cmd))) &&
        tb->klass->cancel_cmd) {
        tb->klass->cancel_cmd(tb);
    }
}

typedef struct TPMWorkerFdArgs {
    int fd;
    TPMWorkerFdFunc fn;
    void *opaque;
    int paused;                 /* -1: leave as it is */
} TPMWorkerFdArgs;

static int tpm_backend_set_fd_on_worker(TPMBackend *tb, void *opaque)
{
    TPMWorkerFdArgs *a = opaque;
    TPMBackendWorker *w = tb->worker;

    if (a->paused >= 0) {
        w->poll_paused = a->paused;
        return 0;
    }
    w->poll_fd = a->fd;
    w->poll_fn = a->fn;
    w->poll_opaque = a->opaque;
    return 0;
}

void tpm_backend_set_worker_fd(TPMBackend *tb, int fd, TPMWorkerFdFunc fn,
                               void *opaque)
{
    TPMWorkerFdArgs a = { .fd = fn ? fd : -1, .fn = fn, .opaque = opaque,
                          .paused = -1 };

    if (tb->worker) {
        tpm_backend_run_sync(tb, tpm_backend_set_fd_on_worker, &a);
    }
}

static void tpm_backend_pause_worker_fd(TPMBackend *tb, bool paused)
{
    TPMWorkerFdArgs a = { .fd = -1, .paused = paused };

    if (tb->worker) {
        tpm_backend_run_sync(tb, tpm_backend_set_fd_on_worker, &a);
    }
}

void tpm_backend_run_cmd_on_worker(TPMBackend *tb, TPMBackendCmd *cmd)
{
    TPMBackendWorker *w = tb->worker;

    g_atomic_int_set(&w->direct_cmd, 1);
    tb->klass->handle_request(tb, cmd);
    g_atomic_int_set(&w->direct_cmd, 0);
    tpm_backend_log_cmd(tb, cmd);
}

void tpm_backend_finish_sync(TPMBackend *tb)
{
    TPMBackendWorker *w = tb->worker;

    if (!w) {
        return;
    }
    g_mutex_lock(&w->lock);
    while (w->cmd_busy) {
        g_cond_wait(&w->cond, &w->lock);
    }
    g_mutex_unlock(&w->lock);
    tpm_backend_deliver_completion(tb);
}

static int tpm_backend_stop_on_worker(TPMBackend *tb, void *opaque)
{
    tb->klass->stop(tb);
    return 0;
}

void tpm_backend_stop(TPMBackend *tb)
{
    tpm_backend_finish_sync(tb);
    if (tb->klass->stop) {
        tpm_backend_run_sync(tb, tpm_backend_stop_on_worker, NULL);
    }
}

void tpm_backend_reset(TPMBackend *tb)
{
    tpm_backend_finish_sync(tb);
    if (tb->held_cmd) {
        /* A reset drops a request that never reached the TPM. */
        tb->held_cmd = NULL;
        tb->cmd = NULL;
    }
    tpm_backend_stop(tb);
    tb->had_startup_error = false;
}

static int tpm_backend_shutdown_on_worker(TPMBackend *tb, void *opaque)
{
    tb->klass->shutdown(tb);
    return 0;
}

void tpm_backend_shutdown_all(void)
{
    while (tpm_backends) {
        tpm_backend_free(tpm_backends->data);
    }
}

bool tpm_backend_had_startup_error(TPMBackend *tb)
{
    return tb->had_startup_error;
}

TPMVersion tpm_backend_get_tpm_version(TPMBackend *tb)
{
    return tb->klass->get_tpm_version ? tb->klass->get_tpm_version(tb)
                                      : TPM_VERSION_UNSPEC;
}

size_t tpm_backend_get_buffer_size(TPMBackend *tb)
{
    return tb->klass->get_buffer_size ? tb->klass->get_buffer_size(tb) : 4096;
}

bool tpm_backend_get_tpm_established_flag(TPMBackend *tb)
{
    return tb->klass->get_tpm_established_flag &&
           tb->klass->get_tpm_established_flag(tb);
}

typedef struct TPMEstablishedArgs {
    uint8_t locality;
} TPMEstablishedArgs;

static int tpm_backend_reset_established_on_worker(TPMBackend *tb,
                                                   void *opaque)
{
    TPMEstablishedArgs *a = opaque;

    return tb->klass->reset_tpm_established_flag(tb, a->locality);
}

int tpm_backend_reset_tpm_established_flag(TPMBackend *tb, uint8_t locality)
{
    TPMEstablishedArgs a = { .locality = locality };

    if (!tb->klass->reset_tpm_established_flag) {
        return 0;
    }
    return tpm_backend_run_sync(tb, tpm_backend_reset_established_on_worker,
                                &a);
}

void tpm_backend_pause(TPMBackend *tb)
{
    tb->paused = true;
    tpm_backend_finish_sync(tb);
    tpm_backend_pause_worker_fd(tb, true);
}

void tpm_backend_resume(TPMBackend *tb)
{
    TPMBackendCmd *cmd = tb->held_cmd;

    tb->paused = false;
    tpm_backend_pause_worker_fd(tb, false);
    if (cmd) {
        TPMJob *job = g_new0(TPMJob, 1);

        tb->held_cmd = NULL;
        job->kind = TPM_JOB_CMD;
        job->cmd = cmd;
        tpm_backend_queue_job(tb, job);
    }
}

/* The arguments of one state operation on the worker, and its error. */
typedef struct TPMStateOpArgs {
    TPMStateBlobType type;
    uint8_t **data;
    size_t *len;
    const uint8_t *in;
    size_t in_len;
    int timeout_ms;
    TPMStorageInfo *info;
    const TPMStateBlobUpdate *blobs;
    size_t n_blobs;
    uint64_t info_flags;
    char **json;
    GError *err;
} TPMStateOpArgs;

static int tpm_backend_get_blob_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStateOpArgs *a = opaque;

    return tb->klass->get_state_blob(tb, a->type, a->data, a->len, &a->err);
}

static int tpm_backend_set_blob_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStateOpArgs *a = opaque;

    return tb->klass->set_state_blob(tb, a->type, a->in, a->in_len, &a->err);
}

static int tpm_backend_store_volatile_on_worker(TPMBackend *tb, void *opaque)
{
    return tb->klass->store_volatile(tb, &((TPMStateOpArgs *)opaque)->err);
}

static int tpm_backend_hash_start_on_worker(TPMBackend *tb, void *opaque)
{
    return tb->klass->hash_start(tb);
}

static int tpm_backend_hash_data_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStateOpArgs *a = opaque;

    return tb->klass->hash_data(tb, a->in, a->in_len);
}

static int tpm_backend_hash_end_on_worker(TPMBackend *tb, void *opaque)
{
    return tb->klass->hash_end(tb);
}

static int tpm_backend_get_info_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStateOpArgs *a = opaque;

    return tb->klass->get_info(tb, a->info_flags, a->json, &a->err);
}

static int tpm_backend_lock_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStateOpArgs *a = opaque;

    return tb->klass->lock_storage(tb, a->timeout_ms, &a->err);
}

static int tpm_backend_unlock_on_worker(TPMBackend *tb, void *opaque)
{
    return tb->klass->unlock_storage(tb, &((TPMStateOpArgs *)opaque)->err);
}

static int tpm_backend_storage_info_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStateOpArgs *a = opaque;

    return tb->klass->get_storage_info(tb, a->info, &a->err);
}

static int tpm_backend_check_on_worker(TPMBackend *tb, void *opaque)
{
    return tb->klass->check_storage(tb, &((TPMStateOpArgs *)opaque)->err);
}

static int tpm_backend_blob_equal_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStateOpArgs *a = opaque;

    return tb->klass->stored_blob_equal(tb, a->type, a->in, a->in_len, &a->err);
}

static int tpm_backend_store_blobs_on_worker(TPMBackend *tb, void *opaque)
{
    TPMStateOpArgs *a = opaque;

    return tb->klass->store_state_blobs(tb, a->blobs, a->n_blobs, &a->err);
}

/*
 * Runs a state operation on the worker after the in-flight command. @what
 * names what a backend without the operation lacks.
 */
static int tpm_backend_run_state_op(TPMBackend *tb, bool supported,
                                    const char *what, TPMBackendSyncFunc fn,
                                    TPMStateOpArgs *a, GError **errp)
{
    int ret;

    if (!supported) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "TPM backend '%s' (%s) has no %s", tb->id,
                    tb->klass->type, what);
        return -1;
    }
    tpm_backend_finish_sync(tb);
    ret = tpm_backend_run_sync(tb, fn, a);
    if (ret < 0) {
        if (!a->err) {
            g_set_error(&a->err, QTPM_ERROR, QTPM_ERROR_FAILED,
                        "TPM backend '%s' failed", tb->id);
        }
        g_propagate_error(errp, a->err);
    } else {
        g_clear_error(&a->err);
    }
    return ret;
}

int tpm_backend_get_state_blob(TPMBackend *tb, TPMStateBlobType type,
                               uint8_t **data, size_t *len, GError **errp)
{
    TPMStateOpArgs a = { .type = type, .data = data, .len = len };

    return tpm_backend_run_state_op(tb, tb->klass->get_state_blob,
                                    "state blobs",
                                    tpm_backend_get_blob_on_worker, &a, errp);
}

int tpm_backend_set_state_blob(TPMBackend *tb, TPMStateBlobType type,
                               const uint8_t *data, size_t len,
                               GError **errp)
{
    TPMStateOpArgs a = { .type = type, .in = data, .in_len = len };

    return tpm_backend_run_state_op(tb, tb->klass->set_state_blob,
                                    "state blobs",
                                    tpm_backend_set_blob_on_worker, &a, errp);
}

int tpm_backend_store_volatile(TPMBackend *tb, GError **errp)
{
    TPMStateOpArgs a = { 0 };

    return tpm_backend_run_state_op(tb, tb->klass->store_volatile,
                                    "state storage",
                                    tpm_backend_store_volatile_on_worker, &a,
                                    errp);
}

int tpm_backend_hash_start(TPMBackend *tb, GError **errp)
{
    TPMStateOpArgs a = { 0 };

    return tpm_backend_run_state_op(tb, tb->klass->hash_start, "hashing",
                                    tpm_backend_hash_start_on_worker, &a, errp);
}

int tpm_backend_hash_data(TPMBackend *tb, const uint8_t *data, size_t len,
                          GError **errp)
{
    TPMStateOpArgs a = { .in = data, .in_len = len };

    return tpm_backend_run_state_op(tb, tb->klass->hash_data, "hashing",
                                    tpm_backend_hash_data_on_worker, &a, errp);
}

int tpm_backend_hash_end(TPMBackend *tb, GError **errp)
{
    TPMStateOpArgs a = { 0 };

    return tpm_backend_run_state_op(tb, tb->klass->hash_end, "hashing",
                                    tpm_backend_hash_end_on_worker, &a, errp);
}

int tpm_backend_lock_storage(TPMBackend *tb, int timeout_ms, GError **errp)
{
    TPMStateOpArgs a = { .timeout_ms = timeout_ms };

    return tpm_backend_run_state_op(tb, tb->klass->lock_storage,
                                    "state storage",
                                    tpm_backend_lock_on_worker, &a, errp);
}

int tpm_backend_unlock_storage(TPMBackend *tb, GError **errp)
{
    TPMStateOpArgs a = { 0 };

    return tpm_backend_run_state_op(tb, tb->klass->unlock_storage,
                                    "state storage",
                                    tpm_backend_unlock_on_worker, &a, errp);
}

int tpm_backend_get_storage_info(TPMBackend *tb, TPMStorageInfo *info,
                                 GError **errp)
{
    TPMStateOpArgs a = { .info = info };

    memset(info, 0, sizeof(*info));
    return tpm_backend_run_state_op(tb, tb->klass->get_storage_info,
                                    "state storage",
                                    tpm_backend_storage_info_on_worker, &a,
                                    errp);
}

int tpm_backend_check_storage(TPMBackend *tb, GError **errp)
{
    TPMStateOpArgs a = { 0 };

    return tpm_backend_run_state_op(tb, tb->klass->check_storage,
                                    "state storage",
                                    tpm_backend_check_on_worker, &a, errp);
}

int tpm_backend_stored_blob_equal(TPMBackend *tb, TPMStateBlobType type,
                                  const uint8_t *data, size_t len,
                                  GError **errp)
{
    TPMStateOpArgs a = { .type = type, .in = data, .in_len = len };

    return tpm_backend_run_state_op(tb, tb->klass->stored_blob_equal,
                                    "state storage",
                                    tpm_backend_blob_equal_on_worker, &a, errp);
}

int tpm_backend_store_state_blobs(TPMBackend *tb,
                                  const TPMStateBlobUpdate *blobs, size_t n,
                                  GError **errp)
{
    TPMStateOpArgs a = { .blobs = blobs, .n_blobs = n };

    return tpm_backend_run_state_op(tb, tb->klass->store_state_blobs,
                                    "state storage",
                                    tpm_backend_store_blobs_on_worker, &a,
                                    errp);
}

bool tpm_backend_has_storage(TPMBackend *tb)
{
    return tb->klass->get_storage_info != NULL;
}

bool tpm_backend_has_hashing(TPMBackend *tb)
{
    return tb->klass->hash_start && tb->klass->hash_data && tb->klass->hash_end;
}

int tpm_backend_get_info(TPMBackend *tb, uint64_t flags, char **json,
                         GError **errp)
{
    TPMStateOpArgs a = { .info_flags = flags, .json = json };

    *json = NULL;
    return tpm_backend_run_state_op(tb, tb->klass->get_info, "description",
                                    tpm_backend_get_info_on_worker, &a, errp);
}

bool tpm_backend_has_info(TPMBackend *tb)
{
    return tb->klass->get_info != NULL;
}

int tpm_backend_get_state_key(TPMBackend *tb, QCryptoKey *key, GError **errp)
{
    memset(key, 0, sizeof(*key));
    key->kind = QCRYPTO_KEY_NONE;
    return tb->klass->get_state_key ? tb->klass->get_state_key(tb, key, errp)
                                    : 0;
}

const char *tpm_backend_get_id(TPMBackend *tb)
{
    return tb->id;
}

void tpm_backend_query(TPMBackend *tb, TPMBackendInfo *info)
{
    info->id = tb->id;
    info->type = tb->klass->type;
    info->model = tb->model;
    info->options = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          g_free);
    if (tb->klass->query) {
        tb->klass->query(tb, info->options);
    }
}

void tpm_backend_info_clear(TPMBackendInfo *info)
{
    g_clear_pointer(&info->options, g_hash_table_unref);
}

void tpm_backend_set_incoming(bool incoming)
{
    tpm_backends_incoming = incoming;
}

void tpm_backend_incoming_done(TPMBackend *tb)
{
    tb->incoming = false;
}
