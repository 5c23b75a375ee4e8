/*
 * Errors for the user: one line "PROG: message" on stderr, PROG set once
 * by each program (qtpm, qtpm-img, ...).
 */
#ifndef QEMU_ERROR_REPORT_H
#define QEMU_ERROR_REPORT_H

#include "qemu/osdep.h"

#include <stdarg.h>

/* The name error lines start with; "qtpm" until a program sets its own. */
void error_set_progname(const char *name);
const char *error_get_progname(void);

void error_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void error_vreport(const char *fmt, va_list ap) G_GNUC_PRINTF(1, 0);
/* Prints @err's message ("failed" for NULL) and frees @err. */
void error_report_err(GError *err);

#endif
