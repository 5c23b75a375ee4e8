/*
 * -d ITEMS and -D LOGFILE: optional trace output, off by default.
 */
#ifndef QEMU_LOG_H
#define QEMU_LOG_H

#include "qemu/osdep.h"

#define LOG_TPM (1u << 0)     /* each TPM command: locality, ordinal, result */
#define LOG_QMP (1u << 1)     /* QMP input and output lines */

extern unsigned qemu_loglevel;

static inline bool qemu_loglevel_mask(unsigned mask)
{
    return (qemu_loglevel & mask) != 0;
}

/* Writes one line (a newline is added) when @mask is enabled. */
void qemu_log_mask(unsigned mask, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/*
 * Something the user should know although qtpm goes on. A GLib warning
 * (GTest can expect it); the handler (qemu_log_init) prints it as one
 * line "PROG: warning: ..." (PROG from error_set_progname) on stderr, and
 * in the -D log when there is one.
 * Safe from any thread.
 */
void qemu_log_warning(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Installs the handler that renders GLib warnings and messages as above. */
void qemu_log_init(void);
/* "tpm,qmp", "all", "none"; false with @errp naming an unknown item. */
bool qemu_str_to_log_mask(const char *str, unsigned *mask, GError **errp);
/* The items and what they log, one per line, for -d help. */
void qemu_print_log_usage(FILE *f);
void qemu_set_log(unsigned mask);
/*
 * Sends trace lines to @filename (appending), or to stderr when NULL;
 * warnings go to stderr and to @filename.
 */
bool qemu_set_log_filename(const char *filename, GError **errp);
void qemu_log_close(void);

#endif
