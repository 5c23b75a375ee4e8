/*
 * Names of the TPM's state blobs (include/qemu/tpm-blob.h).
 */
#include "qemu/osdep.h"
#include "qemu/tpm-blob.h"

static const struct {
    const char *name;       /* libtpms's */
    const char *label;      /* ours, in messages and qtpm-img's output */
} tpm_state_blobs[TPM_STATE_BLOB_TYPE_MAX + 1] = {
    [TPM_STATE_BLOB_PERMANENT] = { "permall", "permanent" },
    [TPM_STATE_BLOB_VOLATILE] = { "volatilestate", "volatile" },
    [TPM_STATE_BLOB_SAVESTATE] = { "savestate", "savestate" },
};

static bool tpm_state_blob_known(TPMStateBlobType type)
{
    return type >= TPM_STATE_BLOB_PERMANENT && type <= TPM_STATE_BLOB_TYPE_MAX;
}

const char *tpm_state_blob_name(TPMStateBlobType type)
{
    return tpm_state_blob_known(type) ? tpm_state_blobs[type].name : NULL;
}

const char *tpm_state_blob_label(TPMStateBlobType type)
{
    return tpm_state_blob_known(type) ? tpm_state_blobs[type].label : "unknown";
}
