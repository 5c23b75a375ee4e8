/*
 * Manufacture: the endorsement keys, their certificates and the platform
 * certificate of a TPM 2.0, as swtpm_setup --createek --create-ek-cert
 * --create-platform-cert --lock-nvram makes them, written into a qtpm
 * store in one commit. docs/manufacture.md.
 */
#ifndef MANUFACTURE_MANUFACTURE_H
#define MANUFACTURE_MANUFACTURE_H

#include "qemu/osdep.h"
#include "nvram/nvram.h"

#define TPM_MANUFACTURE_EK_RSA_HANDLE       0x81010001u
#define TPM_MANUFACTURE_EK_ECC_HANDLE       0x81010002u
#define TPM_MANUFACTURE_EK_RSA_CERT_INDEX   0x01c00002u
#define TPM_MANUFACTURE_EK_ECC_CERT_INDEX   0x01c0000au
#define TPM_MANUFACTURE_PLATFORM_CERT_INDEX 0x01c08000u

typedef struct TPMManufactureOptions {
    const char *ca_dir;     /* the local CA (created on first use) */
    const char *vmid;       /* the certificates' subject CN; NULL: "unknown" */
    const char *name;       /* the image, for messages */
    bool ek_cert;
    bool platform_cert;
    bool lock_nvram;
    bool overwrite;         /* a fresh TPM in place of one with an EK */
} TPMManufactureOptions;

/*
 * Manufactures the TPM 2.0 whose state @store (opened as owner) holds and
 * commits the result once; on any error the store is as it was. On success
 * @made (if not NULL) gets one line per thing made, a NULL-terminated
 * g_strfreev array.
 *
 * For a tool: the TPM runs on the process's one libtpms backend, and the
 * -drive registry is emptied at the end (the scratch store is a drive).
 */
int tpm_manufacture(NvramStore *store, const TPMManufactureOptions *opts,
                    char ***made, GError **errp);

#endif
