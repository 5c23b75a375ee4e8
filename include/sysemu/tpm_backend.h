/*
 * TPM backends: the TPM behind a frontend (tpm-tis). One worker thread per
 * backend runs commands; completion is handed back to the GLib main loop.
 * See docs/design.md "Backends".
 */
#ifndef SYSEMU_TPM_BACKEND_H
#define SYSEMU_TPM_BACKEND_H

#include "qemu/osdep.h"
#include "sysemu/tpm_blob.h"

typedef enum TPMVersion {
    TPM_VERSION_UNSPEC = 0,
    TPM_VERSION_1_2 = 1,
    TPM_VERSION_2_0 = 2,
} TPMVersion;

/*
 * One command: @in/@in_len is the request; @out is a buffer of @out_len
 * bytes that the backend fills with the response (its header's size field
 * tells the frontend how many bytes are valid).
 */
typedef struct TPMBackendCmd {
    uint8_t locality;
    const uint8_t *in;
    uint32_t in_len;
    uint8_t *out;
    uint32_t out_len;
    bool selftest_done;
} TPMBackendCmd;

typedef struct TPMBackend TPMBackend;

typedef struct TPMBackendClass {
    const char *type;        /* "libtpms", "null" */
    const char *desc;
    size_t instance_size;    /* unused: a backend's state is tb->opaque */

    /*
     * Main thread, at startup, before the worker exists: parse options
     * ("key=value" pairs) and open what the backend needs.
     */
    int (*init)(TPMBackend *tb, GHashTable *opts, GError **errp);
    /*
     * Worker thread, with the main thread waiting for it: (re)start the TPM
     * with a command buffer of @buffersize bytes. Runs before the machine
     * runs and after every reset.
     */
    int (*startup_tpm)(TPMBackend *tb, size_t buffersize, GError **errp);
    /*
     * Worker thread: runs one command and writes its response into
     * cmd->out (at most cmd->out_len bytes); never fails, a TPM that cannot
     * answer gets a fatal-error response (tpm_util.h).
     */
    void (*handle_request)(TPMBackend *tb, TPMBackendCmd *cmd);
    /* Any thread: ask the running command to stop early. */
    void (*cancel_cmd)(TPMBackend *tb);
    /*
     * Worker thread, with the main thread waiting for it: platform reset
     * (the TPM stops until the next startup_tpm) or power-off.
     */
    void (*reset)(TPMBackend *tb);
    void (*shutdown)(TPMBackend *tb);
    /* Main thread, after the worker has stopped. */
    void (*finalize)(TPMBackend *tb);

    /* Main thread; the answers do not need the worker. */
    TPMVersion (*get_tpm_version)(TPMBackend *tb);
    size_t (*get_buffer_size)(TPMBackend *tb);
    /*
     * Main thread, must not wait for the worker (the TIS reads it on every
     * ACCESS read): a value the backend caches after each command.
     */
    bool (*get_tpm_established_flag)(TPMBackend *tb);
    /* Worker thread, with the main thread waiting for it. */
    int (*reset_tpm_established_flag)(TPMBackend *tb, uint8_t locality);
    /*
     * Worker thread (through tpm_backend_get/set_state_blob). get: the
     * TPM's current blob in libtpms's encoding; 1 with a g_malloc'ed
     * buffer, 0 when there is none, -1 on error. set: only while the TPM
     * is stopped (after tpm_backend_reset); the next startup_tpm starts
     * from it. For migration.
     */
    int (*get_state_blob)(TPMBackend *tb, TPMStateBlobType type,
                          uint8_t **data, size_t *len, GError **errp);
    int (*set_state_blob)(TPMBackend *tb, TPMStateBlobType type,
                          const uint8_t *data, size_t len, GError **errp);
    /* Any thread: the backend's NVRAM store, if it has one. */
    struct NvramStore *(*get_nvram)(TPMBackend *tb);
    /* "key": "value" pairs for query-tpm's options. */
    void (*fill_options)(TPMBackend *tb, GHashTable *out);
} TPMBackendClass;

typedef void (*TPMRequestCompleted)(void *opaque, int ret);

struct TPMBackend {
    const TPMBackendClass *klass;
    char *id;
    void *opaque;                    /* backend's own state */
    TPMRequestCompleted completed;   /* frontend callback, main loop */
    void *completed_opaque;
    const char *model;               /* frontend model, e.g. "tpm-tis" */
    struct TPMBackendWorker *worker; /* tpm_backend.c */
    TPMBackendCmd *cmd;              /* in flight, or NULL */
    bool had_startup_error;
    bool paused;                     /* tpm_backend_pause() */
    bool incoming;                   /* see tpm_backend_set_incoming() */
    TPMBackendCmd *held_cmd;         /* delivered while paused */
};

const TPMBackendClass *tpm_backend_find_class(const char *type);
/* NULL-terminated list of backend classes, for -tpmdev help. */
const TPMBackendClass *const *tpm_backend_classes(void);

TPMBackend *tpm_backend_new(const char *type, const char *id, GHashTable *opts,
                            GError **errp);
TPMBackend *tpm_backend_find(const char *id);
void tpm_backend_free(TPMBackend *tb);

void tpm_backend_set_frontend(TPMBackend *tb, const char *model,
                              TPMRequestCompleted cb, void *opaque);
int tpm_backend_startup_tpm(TPMBackend *tb, size_t buffersize, GError **errp);
/* Main thread: queue @cmd; completion arrives through tb->completed. */
void tpm_backend_deliver_request(TPMBackend *tb, TPMBackendCmd *cmd);
void tpm_backend_cancel_cmd(TPMBackend *tb);
/* Main thread: waits for an in-flight command to finish (no callback lost). */
void tpm_backend_finish_sync(TPMBackend *tb);
void tpm_backend_reset(TPMBackend *tb);
bool tpm_backend_had_startup_error(TPMBackend *tb);
TPMVersion tpm_backend_get_tpm_version(TPMBackend *tb);
size_t tpm_backend_get_buffer_size(TPMBackend *tb);
bool tpm_backend_get_tpm_established_flag(TPMBackend *tb);
int tpm_backend_reset_tpm_established_flag(TPMBackend *tb, uint8_t locality);

/*
 * Main thread: runs @fn(tb, opaque) on the worker thread, after any
 * in-flight command, and waits for it. Backends use it for anything that
 * must touch their library (libtpms is single-threaded) from outside a
 * command, e.g. migration getting or setting state blobs.
 */
typedef int (*TPMBackendSyncFunc)(TPMBackend *tb, void *opaque);
int tpm_backend_run_sync(TPMBackend *tb, TPMBackendSyncFunc fn, void *opaque);

/*
 * Main thread: stop the TPM for a migration switch-over. Waits for the
 * in-flight command (its completion is delivered) and holds any new request
 * until tpm_backend_resume(), which starts it. Independent of the run state:
 * TPM commands are otherwise processed while the machine is stopped too.
 */
void tpm_backend_pause(TPMBackend *tb);
void tpm_backend_resume(TPMBackend *tb);

/* Main thread: run the class's get/set_state_blob on the worker. */
int tpm_backend_get_state_blob(TPMBackend *tb, TPMStateBlobType type,
                               uint8_t **data, size_t *len, GError **errp);
int tpm_backend_set_state_blob(TPMBackend *tb, TPMStateBlobType type,
                               const uint8_t *data, size_t len,
                               GError **errp);

/*
 * Migration target (-incoming): backends created while this is set open
 * their state without owning it (the source still does) and startup_tpm
 * leaves the TPM stopped. tpm_backend_incoming_done() ends that for @tb;
 * the next tpm_backend_startup_tpm() starts the TPM (from blobs given with
 * tpm_backend_set_state_blob, or from the store).
 */
void tpm_backend_set_incoming(bool incoming);
void tpm_backend_incoming_done(TPMBackend *tb);

/* The NVRAM store of a libtpms backend, or NULL (other backends). */
struct NvramStore;
struct NvramStore *tpm_backend_get_nvram(TPMBackend *tb);

/* Every backend created with tpm_backend_new, in creation order. */
GList *tpm_backend_list(void);
/* Main thread, at exit: power-off of every backend, then free them all
 * (tpm_backend_free powers a backend off too). */
void tpm_backend_shutdown_all(void);

#endif
