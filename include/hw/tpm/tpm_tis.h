/*
 * TPM TIS (TCG PC Client TIS 1.3 / PTP FIFO) device model.
 * Registers: docs/tis.md.
 */
#ifndef HW_TPM_TPM_TIS_H
#define HW_TPM_TPM_TIS_H

#include "hw/tpm/tpm_tis_regs.h"
#include "sysemu/tpm_backend.h"

/* Version of the byte layout written by tpm_tis_save_state (docs/tis.md). */
#define TPM_TIS_STATE_VERSION 1

/* The -device driver name of the frontend class. */
#define TPM_TIS_MODEL "tpm-tis"

typedef struct TPMTISState TPMTISState;

/*
 * Maps the device at TPM_TIS_ADDR_BASE, connects it to @be (as its frontend)
 * and performs the first platform reset, which starts the TPM up
 * (tpm_backend_startup_tpm); a startup failure is returned in @errp.
 */
TPMTISState *tpm_tis_create(TPMBackend *be, int irq, GError **errp);
void tpm_tis_destroy(TPMTISState *s);
/* Platform reset: all localities released, state idle, backend reset. */
void tpm_tis_reset(TPMTISState *s);
/* The one tpm-tis device of the machine, or NULL. */
TPMTISState *tpm_tis_find(void);

/*
 * Migration: the complete register and buffer state, versioned and
 * self-describing (byte layout: docs/tis.md "Saved state"). The backend must
 * be idle (tpm_backend_finish_sync) before saving. Loading validates every
 * field and leaves the device unchanged on error.
 */
void tpm_tis_save_state(TPMTISState *s, GByteArray *out);
int tpm_tis_load_state(TPMTISState *s, const uint8_t *buf, size_t len,
                       GError **errp);

#endif
