/*
 * TPM command and response header helpers shared by backends and frontends.
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "sysemu/tpm_util.h"

void tpm_util_write_fatal_error_response(uint8_t *out, uint32_t out_len,
                                         TPMVersion version)
{
    uint16_t tag = version == TPM_VERSION_1_2 ? TPM_TAG_RSP_COMMAND
                                              : TPM2_ST_NO_SESSIONS;
    uint32_t rc = version == TPM_VERSION_1_2 ? TPM_FAIL_1_2 : TPM2_RC_FAILURE;

    if (out_len < TPM_HEADER_SIZE) {
        return;
    }
    stw_be_p(out, tag);
    stl_be_p(out + 2, TPM_HEADER_SIZE);
    stl_be_p(out + 6, rc);
}

uint32_t tpm_util_get_size_from_buffer(const uint8_t *buf, size_t len)
{
    if (len < TPM_HEADER_SIZE) {
        return 0;
    }
    return ldl_be_p(buf + 2);
}

uint32_t tpm_util_get_code_from_buffer(const uint8_t *buf, size_t len)
{
    if (len < TPM_HEADER_SIZE) {
        return 0;
    }
    return ldl_be_p(buf + 6);
}
