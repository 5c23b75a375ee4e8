/*
 * TPM frontends: the device models through which a guest (or a test) reaches
 * a TPM backend, e.g. tpm-tis. Each model registers a class; the machine
 * creates devices through it, and migration and query-tpm find the devices
 * and their saved state through the list of created frontends.
 * docs/design.md "Frontends".
 */
#ifndef SYSEMU_TPM_FRONTEND_H
#define SYSEMU_TPM_FRONTEND_H

#include "sysemu/tpm_backend.h"

typedef struct TPMFrontendClass {
    const char *model;              /* -device driver=, e.g. "tpm-tis" */
    const char *desc;               /* -device help's description */
    const char *help;               /* --help's line for -device MODEL */
    /* -device MODEL's keys (qemu/option.h), driver, id and tpmdev included. */
    const struct QemuOptDesc *opts;

    /*
     * Main thread: the device on @be, connected as its frontend, from
     * @props that passed @opts; its first platform reset starts the TPM
     * (tpm_backend_startup_tpm), and a failure there is returned in @errp.
     */
    void *(*create)(TPMBackend *be, GHashTable *props, GError **errp);
    void (*destroy)(void *dev);
    /* Platform reset: the device's reset state, and the TPM restarted. */
    void (*reset)(void *dev);

    /*
     * Migration: the device's state travels in the stream section of this
     * name (docs/migration-stream.md). save: the backend must be idle;
     * load: validates everything and leaves the device unchanged on error.
     */
    const char *state_section;
    void (*save_state)(void *dev, GByteArray *out);
    int (*load_state)(void *dev, const uint8_t *buf, size_t len,
                      GError **errp);
} TPMFrontendClass;

/* A created device of some frontend class. */
typedef struct TPMFrontend TPMFrontend;

/* NULL-terminated list of frontend classes, for -device help. */
const TPMFrontendClass *const *tpm_frontend_classes(void);
const TPMFrontendClass *tpm_frontend_find_class(const char *model);

/*
 * Creates a @model device on @be from its -device @props. The device is
 * listed by tpm_frontend_list() until tpm_frontend_free().
 */
TPMFrontend *tpm_frontend_new(const char *model, TPMBackend *be,
                              GHashTable *props, GError **errp);
void tpm_frontend_free(TPMFrontend *fe);
void tpm_frontend_reset(TPMFrontend *fe);
const TPMFrontendClass *tpm_frontend_get_class(TPMFrontend *fe);
TPMBackend *tpm_frontend_get_backend(TPMFrontend *fe);
/* Every frontend created with tpm_frontend_new, in creation order. */
GList *tpm_frontend_list(void);

void tpm_frontend_save_state(TPMFrontend *fe, GByteArray *out);
int tpm_frontend_load_state(TPMFrontend *fe, const uint8_t *buf, size_t len,
                            GError **errp);

#endif
