/*
 * Options every TPM backend shares.
 */
#include "qemu/osdep.h"
#include "sysemu/tpm_options.h"

/* Index order is tpm_backend_versions[]'s. */
const char *const tpm_backend_version_choices[] = { "2.0", "1.2", NULL };
static const TPMVersion tpm_backend_versions[] = {
    TPM_VERSION_2_0, TPM_VERSION_1_2,
};

TPMVersion tpm_backend_opt_version(GHashTable *opts, TPMVersion def)
{
    const char *v = qemu_opt_get(opts, "version");

    for (unsigned i = 0; v && i < G_N_ELEMENTS(tpm_backend_versions); i++) {
        if (!strcmp(v, tpm_backend_version_choices[i])) {
            return tpm_backend_versions[i];
        }
    }
    return def;
}
