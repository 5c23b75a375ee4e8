/*
 * The TPM's state blobs, as libtpms names them: one type for the backends,
 * the NVRAM store (its directory entries carry these values on disk) and
 * migration.
 */
#ifndef QEMU_TPM_BLOB_H
#define QEMU_TPM_BLOB_H

#include "qemu/osdep.h"

typedef enum TPMStateBlobType {
    TPM_STATE_BLOB_PERMANENT = 1,   /* libtpms "permall" */
    TPM_STATE_BLOB_VOLATILE = 2,    /* libtpms "volatilestate" */
    TPM_STATE_BLOB_SAVESTATE = 3,   /* libtpms "savestate" */
} TPMStateBlobType;
#define TPM_STATE_BLOB_TYPE_MAX 3

/* libtpms's name of the blob ("permall", ...), or NULL. */
const char *tpm_state_blob_name(TPMStateBlobType type);

/*
 * How sentences and tools name the blob ("permanent", "volatile",
 * "savestate"), or "unknown".
 */
const char *tpm_state_blob_label(TPMStateBlobType type);

#endif
