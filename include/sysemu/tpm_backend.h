/*
 * TPM backends: the TPM behind a frontend (tpm-tis). One worker thread per
 * backend runs commands; completion is handed back to the GLib main loop.
 * See docs/design.md "Backends".
 */
#ifndef SYSEMU_TPM_BACKEND_H
#define SYSEMU_TPM_BACKEND_H

#include "qemu/osdep.h"
#include "crypto/key.h"
#include "qemu/tpm-blob.h"

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

/* tpm_backend_init(): swtpm's CMD_INIT flags, as the socket protocol has them. */
typedef enum TPMBackendInitFlags {
    /* Remove the stored volatile state once the TPM has started from it. */
    TPM_BACKEND_INIT_DELETE_VOLATILE = 1u << 0,
} TPMBackendInitFlags;

/* One blob of a tpm_backend_store_state_blobs() commit. */
typedef struct TPMStateBlobUpdate {
    TPMStateBlobType type;
    const uint8_t *data;    /* NULL: the store must not hold this blob */
    size_t len;
} TPMStateBlobUpdate;

/* Where a backend keeps its durable state; for migration's checks. */
typedef struct TPMStorageInfo {
    uint8_t uuid[16];       /* the image's identity (docs/nvram-format.md) */
    uint64_t generation;    /* of the directory in use */
    const char *name;       /* for messages: the image's file name */
} TPMStorageInfo;

/* What query-tpm shows of a backend (tpm_backend_query). */
typedef struct TPMBackendInfo {
    const char *id;
    const char *type;
    const char *model;      /* the frontend using it; NULL when none does */
    GHashTable *options;    /* "key" -> "value"; tpm_backend_info_clear frees */
} TPMBackendInfo;

/*
 * A backend type. Every operation that touches the TPM's library or its store
 * runs on the backend's worker thread, with the main thread waiting, through
 * the tpm_backend_* wrapper of the same name (docs/design.md "Backends" has
 * the table). A backend fills only what it supports; the wrappers answer for
 * the rest with a sentence naming the backend.
 */
typedef struct TPMBackendClass {
    const char *type;        /* "libtpms", "null" */
    const char *desc;
    const struct QemuOptDesc *opts;  /* -tpmdev TYPE's keys (qemu/option.h) */

    /*
     * Main thread, at startup, before the worker exists: read the options
     * ("key=value" pairs, already validated against @opts) and open what
     * the backend needs.
     */
    int (*init)(TPMBackend *tb, GHashTable *opts, GError **errp);
    /*
     * Worker: (re)start the TPM with a command buffer of @buffersize bytes
     * (swtpm's CMD_INIT); @flags are TPMBackendInitFlags. Runs before the
     * machine runs and after every reset.
     */
    int (*startup_tpm)(TPMBackend *tb, size_t buffersize, unsigned flags,
                       GError **errp);
    /*
     * Worker: runs one command and writes its response into cmd->out (at
     * most cmd->out_len bytes); never fails, a TPM that cannot answer gets
     * a fatal-error response (tpm_util.h).
     */
    void (*handle_request)(TPMBackend *tb, TPMBackendCmd *cmd);
    /* Any thread: ask the running command to stop early. */
    void (*cancel_cmd)(TPMBackend *tb);
    /*
     * Worker: stop the TPM until the next startup_tpm; its durable state
     * stays in the store (platform reset, swtpm's CMD_STOP). shutdown is
     * the power-off at exit.
     */
    void (*stop)(TPMBackend *tb);
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
    /* Worker. */
    int (*reset_tpm_established_flag)(TPMBackend *tb, uint8_t locality);

    /*
     * Worker. get: the TPM's current blob in libtpms's encoding; 1 with a
     * g_malloc'ed buffer, 0 when there is none, -1 on error. set: only
     * while the TPM is stopped; the next startup_tpm starts from it.
     */
    int (*get_state_blob)(TPMBackend *tb, TPMStateBlobType type,
                          uint8_t **data, size_t *len, GError **errp);
    int (*set_state_blob)(TPMBackend *tb, TPMStateBlobType type,
                          const uint8_t *data, size_t len, GError **errp);
    /* Worker: make the TPM's volatile state durable (CMD_STORE_VOLATILE). */
    int (*store_volatile)(TPMBackend *tb, GError **errp);
    /*
     * Worker, TPM running: the locality-4 measurement sequence of a
     * dynamic launch (CMD_HASH_START, CMD_HASH_DATA, CMD_HASH_END). Each
     * returns the TPM's result code (0: success), -1 when the TPM is not
     * running.
     */
    int (*hash_start)(TPMBackend *tb);
    int (*hash_data)(TPMBackend *tb, const uint8_t *data, size_t len);
    int (*hash_end)(TPMBackend *tb);
    /*
     * Worker: the TPM's description as libtpms's JSON (TPMLIB_GetInfo,
     * swtpm's CMD_GET_INFO) for TPMLIB_INFO_* @flags; a g_malloc'ed string.
     */
    int (*get_info)(TPMBackend *tb, uint64_t flags, char **json, GError **errp);

    /*
     * Worker: the shared-storage hand-off (CMD_LOCK_STORAGE). lock: become
     * the store's owner, waiting up to @timeout_ms for the owner lock, and
     * activate the image. unlock: inactivate the image (flushed), then give
     * the owner lock up; the store stays open as a reader.
     */
    int (*lock_storage)(TPMBackend *tb, int timeout_ms, GError **errp);
    int (*unlock_storage)(TPMBackend *tb, GError **errp);
    /* Worker: identity and generation of the durable state. */
    int (*get_storage_info)(TPMBackend *tb, TPMStorageInfo *info,
                            GError **errp);
    /* Worker: verify every stored blob (CRC and, with a key, its tag). */
    int (*check_storage)(TPMBackend *tb, GError **errp);
    /*
     * Worker: 1 when the store's current blob of @type is exactly @data
     * (plaintext), 0 when it differs or is absent, -1 on error. The stored
     * plaintext stays inside the backend.
     */
    int (*stored_blob_equal)(TPMBackend *tb, TPMStateBlobType type,
                             const uint8_t *data, size_t len, GError **errp);
    /*
     * Worker, owner only, TPM stopped: one durable commit that makes the
     * stored blobs of the given types exactly @blobs.
     */
    int (*store_state_blobs)(TPMBackend *tb, const TPMStateBlobUpdate *blobs,
                             size_t n, GError **errp);
    /*
     * Main thread: the key that seals the TPM's state outside the store
     * (the migration stream): the secret that opens the store. Kind NONE
     * without one; @key->data stays valid while the backend exists.
     */
    int (*get_state_key)(TPMBackend *tb, QCryptoKey *key, GError **errp);
    /* Main thread: "key": "value" pairs for query-tpm's options. */
    void (*query)(TPMBackend *tb, GHashTable *options);
} TPMBackendClass;

typedef void (*TPMRequestCompleted)(void *opaque, int ret);

const TPMBackendClass *tpm_backend_find_class(const char *type);
/* NULL-terminated list of backend classes, for -tpmdev help. */
const TPMBackendClass *const *tpm_backend_classes(void);

/*
 * Checks @opts against the table of backend type @type: its keys and
 * values, nothing that needs a file. tpm_backend_new does it too; the
 * command line calls it first so that a bad -tpmdev fails before any
 * file is opened.
 */
bool tpm_backend_check_opts(const char *type, GHashTable *opts, GError **errp);
TPMBackend *tpm_backend_new(const char *type, const char *id, GHashTable *opts,
                            GError **errp);
TPMBackend *tpm_backend_find(const char *id);
void tpm_backend_free(TPMBackend *tb);
const char *tpm_backend_get_id(TPMBackend *tb);

void tpm_backend_set_frontend(TPMBackend *tb, const char *model,
                              TPMRequestCompleted cb, void *opaque);
/*
 * Worker thread, right after a command ran and before its completion goes
 * to the main loop: a frontend that owns its client's socket while a
 * command is in flight may send the answer from here, so that the answer
 * does not wait for the main loop to wake up. The completion still
 * follows on the main loop, as without a hook.
 */
typedef void (*TPMRequestAnswer)(void *opaque, TPMBackendCmd *cmd);
void tpm_backend_set_answer_hook(TPMBackend *tb, TPMRequestAnswer fn, void *opaque);
/*
 * A frontend whose client sends one command, waits for the answer and sends
 * the next can let the worker read the client's fd itself: the command
 * then reaches the TPM without a hop from the main loop to the worker.
 *
 * Worker thread: @fd is readable (or hung up). The callback reads it, runs
 * what it read with tpm_backend_run_cmd_on_worker() and answers; it
 * returns false to stop the watch (and then hands the fd back to the main
 * loop on its own). Not called while the backend is paused; jobs the main
 * loop queues (state operations, stop, init) run between two calls.
 */
typedef bool (*TPMWorkerFdFunc)(TPMBackend *tb, void *opaque);
/*
 * Main thread: the worker watches @fd and calls @fn; with @fn NULL it
 * stops. Returns once the worker has taken the change: after a stop, @fn
 * is not running and does not run again.
 */
void tpm_backend_set_worker_fd(TPMBackend *tb, int fd, TPMWorkerFdFunc fn,
                               void *opaque);
/* Worker thread, from a TPMWorkerFdFunc: runs @cmd (tpm_backend_cancel_cmd reaches it). */
void tpm_backend_run_cmd_on_worker(TPMBackend *tb, TPMBackendCmd *cmd);
/* Main thread: start the TPM (tpm_backend_init with no flags). */
int tpm_backend_startup_tpm(TPMBackend *tb, size_t buffersize, GError **errp);
int tpm_backend_init(TPMBackend *tb, size_t buffersize, unsigned flags,
                     GError **errp);
/* Main thread: queue @cmd; completion arrives through the frontend's callback. */
void tpm_backend_deliver_request(TPMBackend *tb, TPMBackendCmd *cmd);
void tpm_backend_cancel_cmd(TPMBackend *tb);
/* Main thread: waits for an in-flight command to finish (no callback lost). */
void tpm_backend_finish_sync(TPMBackend *tb);
/* Platform reset: a held request is dropped, the TPM stops (class stop). */
void tpm_backend_reset(TPMBackend *tb);
/* Stops the TPM after the in-flight command; held requests stay held. */
void tpm_backend_stop(TPMBackend *tb);
bool tpm_backend_had_startup_error(TPMBackend *tb);
TPMVersion tpm_backend_get_tpm_version(TPMBackend *tb);
size_t tpm_backend_get_buffer_size(TPMBackend *tb);
bool tpm_backend_get_tpm_established_flag(TPMBackend *tb);
int tpm_backend_reset_tpm_established_flag(TPMBackend *tb, uint8_t locality);

/*
 * Main thread: runs @fn(tb, opaque) on the worker thread, after any
 * in-flight command, and waits for it. Backends use it for anything that
 * must touch their library (libtpms is single-threaded) from outside a
 * command.
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

/* Main thread: the class operations of the same name, run on the worker. */
int tpm_backend_get_state_blob(TPMBackend *tb, TPMStateBlobType type,
                               uint8_t **data, size_t *len, GError **errp);
int tpm_backend_set_state_blob(TPMBackend *tb, TPMStateBlobType type,
                               const uint8_t *data, size_t len,
                               GError **errp);
int tpm_backend_store_volatile(TPMBackend *tb, GError **errp);
/* The TPM's result code (0: success), or -1 with @errp set. */
int tpm_backend_hash_start(TPMBackend *tb, GError **errp);
int tpm_backend_hash_data(TPMBackend *tb, const uint8_t *data, size_t len,
                          GError **errp);
int tpm_backend_hash_end(TPMBackend *tb, GError **errp);
/* Whether the backend has the hash sequence (swtpm's PTM_CAP_HASHING). */
bool tpm_backend_has_hashing(TPMBackend *tb);
int tpm_backend_get_info(TPMBackend *tb, uint64_t flags, char **json,
                         GError **errp);
/* Whether the backend describes itself (swtpm's PTM_CAP_GET_INFO). */
bool tpm_backend_has_info(TPMBackend *tb);
int tpm_backend_lock_storage(TPMBackend *tb, int timeout_ms, GError **errp);
int tpm_backend_unlock_storage(TPMBackend *tb, GError **errp);
int tpm_backend_get_storage_info(TPMBackend *tb, TPMStorageInfo *info,
                                 GError **errp);
int tpm_backend_check_storage(TPMBackend *tb, GError **errp);
int tpm_backend_stored_blob_equal(TPMBackend *tb, TPMStateBlobType type,
                                  const uint8_t *data, size_t len,
                                  GError **errp);
int tpm_backend_store_state_blobs(TPMBackend *tb,
                                  const TPMStateBlobUpdate *blobs, size_t n,
                                  GError **errp);
/* Whether the backend keeps durable state that can be handed over. */
bool tpm_backend_has_storage(TPMBackend *tb);
int tpm_backend_get_state_key(TPMBackend *tb, QCryptoKey *key, GError **errp);

/* Main thread: fills @info (tpm_backend_info_clear releases it). */
void tpm_backend_query(TPMBackend *tb, TPMBackendInfo *info);
void tpm_backend_info_clear(TPMBackendInfo *info);

/*
 * Migration target (-incoming): backends created while this is set open
 * their state without owning it (the source still does) and startup_tpm
 * leaves the TPM stopped. tpm_backend_incoming_done() ends that for @tb;
 * the next tpm_backend_startup_tpm() starts the TPM (from blobs given with
 * tpm_backend_set_state_blob, or from the store).
 */
void tpm_backend_set_incoming(bool incoming);
void tpm_backend_incoming_done(TPMBackend *tb);

/* Every backend created with tpm_backend_new, in creation order. */
GList *tpm_backend_list(void);
/* Main thread, at exit: power-off of every backend, then free them all
 * (tpm_backend_free powers a backend off too). */
void tpm_backend_shutdown_all(void);

#endif
