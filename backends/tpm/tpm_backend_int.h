/*
 * The backend object as backends/tpm/ sees it. Backend types read @id,
 * @opaque and @incoming; everything else belongs to the core
 * (tpm_backend.c) and its worker thread.
 */
#ifndef BACKENDS_TPM_TPM_BACKEND_INT_H
#define BACKENDS_TPM_TPM_BACKEND_INT_H

#include "sysemu/tpm_backend.h"

struct TPMBackend {
    const TPMBackendClass *klass;
    char *id;
    void *opaque;                    /* the backend type's own state */
    bool incoming;                   /* see tpm_backend_set_incoming() */

    TPMRequestCompleted completed;   /* frontend callback, main loop */
    void *completed_opaque;
    TPMRequestAnswer answer;         /* frontend hook, worker */
    void *answer_opaque;
    const char *model;               /* frontend model, e.g. "tpm-tis" */
    struct TPMBackendWorker *worker;
    TPMBackendCmd *cmd;              /* in flight, or NULL */
    bool had_startup_error;
    bool paused;                     /* tpm_backend_pause() */
    TPMBackendCmd *held_cmd;         /* delivered while paused */
};

#endif
