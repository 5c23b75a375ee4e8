/*
 * qtpm behind an unmodified QEMU: a qtpm process exporting a TPM image
 * with -export swtpm on a unix control socket, and Debian's
 * qemu-system-x86_64 reaching it with -tpmdev emulator.
 */
#ifndef TESTS_QTEST_QTPM_EXPORT_UTIL_H
#define TESTS_QTEST_QTPM_EXPORT_UTIL_H

#include "libqtest.h"

typedef struct QtpmExport {
    char *dir;          /* the image and the control socket */
    char *img;
    char *ctrl;
    GPid qtpm;
} QtpmExport;

/* A scratch folder with a fresh TPM image of @version ("2.0" or "1.2"). */
void qtpm_export_init(QtpmExport *e, const char *version);
/* Starts qtpm exporting the image; returns once the control socket exists. */
void qtpm_export_start(QtpmExport *e);
/*
 * QEMU with -tpmdev emulator on the export and the device @device
 * ("tpm-tis" or "tpm-crb") in front of it, stopped (-S) under qtest.
 */
QTestState *qtpm_export_qemu(QtpmExport *e, const char *device);
/* Waits up to 30 s for qtpm to exit (killing it then); its exit status or -1. */
int qtpm_export_wait(QtpmExport *e);
/* Removes the scratch folder. */
void qtpm_export_cleanup(QtpmExport *e);

#endif
