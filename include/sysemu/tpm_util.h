/*
 * Helpers for TPM command and response headers (TPM 1.2 and 2.0 share the
 * layout: tag u16, size u32, ordinal or return code u32, big-endian).
 */
#ifndef SYSEMU_TPM_UTIL_H
#define SYSEMU_TPM_UTIL_H

#include "sysemu/tpm_backend.h"

#define TPM_HEADER_SIZE 10

#define TPM_TAG_RQU_COMMAND 0x00c1
#define TPM_TAG_RSP_COMMAND 0x00c4
#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM_FAIL_1_2 0x9
#define TPM2_RC_FAILURE 0x101

/*
 * Writes a failure response into @out (@out_len bytes): for @version 1.2
 * TPM_FAIL with TPM_TAG_RSP_COMMAND, for 2.0 TPM_RC_FAILURE with
 * TPM_ST_NO_SESSIONS. Writes nothing when @out_len < 10.
 */
void tpm_util_write_fatal_error_response(uint8_t *out, uint32_t out_len,
                                         TPMVersion version);
/* The size field of a header, or 0 when @len < 10. */
uint32_t tpm_util_get_size_from_buffer(const uint8_t *buf, size_t len);
/* Ordinal (command) or return code (response), or 0 when @len < 10. */
uint32_t tpm_util_get_code_from_buffer(const uint8_t *buf, size_t len);

#endif
