/*
 * One line per error on stderr, prefixed with the program's name.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"

static const char *progname = "qtpm";

void error_set_progname(const char *name)
{
    progname = g_intern_string(name);
}

const char *error_get_progname(void)
{
    return progname;
}

void error_vreport(const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);

    /* One write, so that lines from two threads never interleave. */
    g_printerr("%s: %s\n", progname, msg);
}

void error_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vreport(fmt, ap);
    va_end(ap);
}

void error_report_err(GError *err)
{
    error_report("%s", err ? err->message : "failed");
    if (err) {
        g_error_free(err);
    }
}
