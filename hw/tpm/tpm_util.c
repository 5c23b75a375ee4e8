/*
 * TPM command and response header helpers shared by backends and frontends.
 */
#include "qemu/osdep.h"
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
    out[0] = tag >> 8;
    out[1] = tag;
    out[2] = 0;
    out[3] = 0;
    out[4] = 0;
    out[5] = TPM_HEADER_SIZE;
    out[6] = rc >> 24;
    out[7] = rc >> 16;
    out[8] = rc >> 8;
    out[9] = rc;
}

uint32_t tpm_util_get_size_from_buffer(const uint8_t *buf, size_t len)
{
    if (len < TPM_HEADER_SIZE) {
        return 0;
    }
    return (uint32_t)buf[2] << 24 | buf[3] << 16 | buf[4] << 8 | buf[5];
}

uint32_t tpm_util_get_code_from_buffer(const uint8_t *buf, size_t len)
{
    if (len < TPM_HEADER_SIZE) {
        return 0;
    }
    return (uint32_t)buf[6] << 24 | buf[7] << 16 | buf[8] << 8 | buf[9];
}
