/*
 * Helpers for the TIS qtest suites: starting qtpm with a TPM behind a
 * tpm-tis device, and a TIS driver (locality, transmit) over qtest.
 */
#ifndef TESTS_QTEST_TPM_TIS_UTIL_H
#define TESTS_QTEST_TPM_TIS_UTIL_H

#include "libqtest.h"
#include "hw/tpm/tpm_tis.h"

#define TIS_REG(l, reg) TPM_TIS_ADDR(l, reg)

/* ACCESS of a locality nobody uses (TPM not established yet). */
#define TIS_ACCESS_IDLE (TPM_TIS_ACCESS_TPM_REG_VALID_STS | TPM_TIS_ACCESS_TPM_ESTABLISHMENT)

typedef struct TisMachine {
    QTestState *qts;
    char *dir;          /* holds the image; removed by tis_machine_stop */
} TisMachine;

/*
 * Starts qtpm with -tpmdev libtpms over a blank qcow2 image made by
 * qemu-img (@version "2.0" or "1.2"), or -tpmdev null when @version is
 * "null" / "null-1.2". @extra is appended to the command line.
 */
void tis_machine_start(TisMachine *m, const char *version, const char *extra);
void tis_machine_stop(TisMachine *m);

uint8_t tis_access(QTestState *s, int l);
uint32_t tis_sts(QTestState *s, int l);
void tis_request_locality(QTestState *s, int l);
void tis_release_locality(QTestState *s, int l);
/* Polls STS of @l until (sts & mask) == value (upper bound: 60 s). */
uint32_t tis_wait_sts(QTestState *s, int l, uint32_t mask, uint32_t value);
/* Writes @cmd in bursts and sets tpmGo (locality @l must be active). */
void tis_send(QTestState *s, int l, const uint8_t *cmd, size_t len);
/* Waits for dataAvail and reads the response; returns its length. */
size_t tis_recv(QTestState *s, int l, uint8_t *buf, size_t size);
/* tis_send + tis_recv; the response code from the header. */
uint32_t tis_transmit(QTestState *s, int l, const uint8_t *cmd, size_t len, uint8_t *resp,
                      size_t size, size_t *resp_len);

static inline uint32_t tis_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

extern const uint8_t TPM2_STARTUP_CLEAR[12];
extern const uint8_t TPM2_GETRANDOM_8[12];
extern const uint8_t TPM2_CREATEPRIMARY_RSA2048[67];
extern const uint8_t TPM12_STARTUP_CLEAR[12];

#define TPM_RC_SUCCESS 0x000
#define TPM_RC_INITIALIZE 0x100
#define TPM_RC_FAILURE 0x101
#define TPM_RC_CANCELED 0x909

#endif
