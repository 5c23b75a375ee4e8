/*
 * TPM backends: the TPM behind a frontend (tpm-tis). One worker thread per
 * backend runs commands; completion is handed back to the GLib main loop.
 * See docs/design.md "Backends".
 */
#ifndef SYSEMU_TPM_BACKEND_H
#define SYSEMU_TPM_BACKEND_H

#include "qemu/osdep.h"

typedef enum TPMVersion {
    TPM_VERSION_UNSPEC = 0,
    TPM_VERSION_1_2 = 1,
    TPM_VERSION_2_0 = 2,
} TPMVersion;

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
    size_t instance_size;

    /* Main thread, at startup: parse options ("key=value" pairs). */
    int (*init)(TPMBackend *tb, GHashTable *opts, GError **errp);
    /* Main thread, before the machine runs and on reset; worker idle. */
    int (*startup_tpm)(TPMBackend *tb, size_t buffersize, GError **errp);
    /* Worker thread: runs one command, fills cmd->out/out_len. */
    void (*handle_request)(TPMBackend *tb, TPMBackendCmd *cmd);
    /* Any thread: ask the running command to stop early. */
    void (*cancel_cmd)(TPMBackend *tb);
    /* Main thread, worker idle: platform reset or power-off. */
    void (*reset)(TPMBackend *tb);
    void (*shutdown)(TPMBackend *tb);
    void (*finalize)(TPMBackend *tb);

    TPMVersion (*get_tpm_version)(TPMBackend *tb);
    size_t (*get_buffer_size)(TPMBackend *tb);
    bool (*get_tpm_established_flag)(TPMBackend *tb);
    int (*reset_tpm_established_flag)(TPMBackend *tb, uint8_t locality);
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

#endif
