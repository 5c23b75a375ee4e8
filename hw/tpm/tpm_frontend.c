/*
 * The registry of TPM frontend classes and of the devices created from them.
 * docs/design.md "Frontends".
 */
#include "qemu/osdep.h"
#include "sysemu/tpm_frontend.h"

extern const TPMFrontendClass tpm_tis_frontend_class;

static const TPMFrontendClass *const tpm_frontend_class_list[] = {
    &tpm_tis_frontend_class,
    NULL,
};

struct TPMFrontend {
    const TPMFrontendClass *klass;
    TPMBackend *be;
    void *dev;
};

static GList *tpm_frontends;

const TPMFrontendClass *const *tpm_frontend_classes(void)
{
    return tpm_frontend_class_list;
}

const TPMFrontendClass *tpm_frontend_find_class(const char *model)
{
    for (int i = 0; tpm_frontend_class_list[i]; i++) {
        if (!g_strcmp0(tpm_frontend_class_list[i]->model, model)) {
            return tpm_frontend_class_list[i];
        }
    }
    return NULL;
}

TPMFrontend *tpm_frontend_new(const char *model, TPMBackend *be,
                              GHashTable *props, GError **errp)
{
    const TPMFrontendClass *klass = tpm_frontend_find_class(model);
    TPMFrontend *fe;
    void *dev;

    if (!klass) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is not a device model (see -device help)",
                    model ? model : "");
        return NULL;
    }
    dev = klass->create(be, props, errp);
    if (!dev) {
        return NULL;
    }
    fe = g_new0(TPMFrontend, 1);
    fe->klass = klass;
    fe->be = be;
    fe->dev = dev;
    tpm_frontends = g_list_append(tpm_frontends, fe);
    return fe;
}

void tpm_frontend_free(TPMFrontend *fe)
{
    if (!fe) {
        return;
    }
    tpm_frontends = g_list_remove(tpm_frontends, fe);
    fe->klass->destroy(fe->dev);
    g_free(fe);
}

void tpm_frontend_reset(TPMFrontend *fe)
{
    fe->klass->reset(fe->dev);
}

const TPMFrontendClass *tpm_frontend_get_class(TPMFrontend *fe)
{
    return fe->klass;
}

TPMBackend *tpm_frontend_get_backend(TPMFrontend *fe)
{
    return fe->be;
}

GList *tpm_frontend_list(void)
{
    return tpm_frontends;
}

void tpm_frontend_save_state(TPMFrontend *fe, GByteArray *out)
{
    fe->klass->save_state(fe->dev, out);
}

int tpm_frontend_load_state(TPMFrontend *fe, const uint8_t *buf, size_t len,
                            GError **errp)
{
    return fe->klass->load_state(fe->dev, buf, len, errp);
}
