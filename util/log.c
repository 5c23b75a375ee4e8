/*
 * Trace output for -d / -D. One mutex serialises lines from the main loop
 * and the TPM worker thread.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"

#include <stdarg.h>

unsigned qemu_loglevel;
static FILE *log_file;
static GMutex log_lock;

static const struct {
    const char *name;
    unsigned mask;
    const char *help;
} log_items[] = {
    { "tpm", LOG_TPM, "TPM commands: locality, ordinal, response code" },
    { "qmp", LOG_QMP, "QMP input and output" },
};

static FILE *log_out(void)
{
    return log_file ? log_file : stderr;
}

void qemu_log_mask(unsigned mask, const char *fmt, ...)
{
    va_list ap;
    FILE *f;

    if (!qemu_loglevel_mask(mask)) {
        return;
    }
    g_mutex_lock(&log_lock);
    f = log_out();
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
    g_mutex_unlock(&log_lock);
}

void qemu_log_warning(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_logv(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, fmt, ap);
    va_end(ap);
}

bool qemu_str_to_log_mask(const char *str, unsigned *mask, GError **errp)
{
    g_auto(GStrv) items = g_strsplit(str, ",", -1);
    unsigned m = 0;

    for (int i = 0; items[i]; i++) {
        bool found = false;

        if (!strcmp(items[i], "all")) {
            for (unsigned j = 0; j < G_N_ELEMENTS(log_items); j++) {
                m |= log_items[j].mask;
            }
            continue;
        }
        if (!strcmp(items[i], "none")) {
            continue;
        }
        for (unsigned j = 0; j < G_N_ELEMENTS(log_items); j++) {
            if (!strcmp(items[i], log_items[j].name)) {
                m |= log_items[j].mask;
                found = true;
            }
        }
        if (!found) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' is not a log item (see -d help)", items[i]);
            return false;
        }
    }
    *mask = m;
    return true;
}

void qemu_print_log_usage(FILE *f)
{
    fprintf(f, "Log items (comma separated):\n");
    for (unsigned j = 0; j < G_N_ELEMENTS(log_items); j++) {
        fprintf(f, "%-10s %s\n", log_items[j].name, log_items[j].help);
    }
    fprintf(f, "%-10s %s\n", "all", "every item above");
    fprintf(f, "%-10s %s\n", "none", "nothing");
}

void qemu_set_log(unsigned mask)
{
    qemu_loglevel = mask;
}

static void log_glib_handler(const gchar *domain, GLogLevelFlags level,
                             const gchar *message, gpointer opaque)
{
    const char *what = (level & G_LOG_LEVEL_ERROR) ? "error"
                     : (level & G_LOG_LEVEL_CRITICAL) ? "critical"
                     : (level & G_LOG_LEVEL_WARNING) ? "warning"
                     : "message";

    if (level & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)) {
        return;
    }
    g_mutex_lock(&log_lock);
    /* The user sees it on stderr; the -D log keeps it with the trace. */
    fprintf(stderr, "%s: %s: %s\n", error_get_progname(), what, message);
    fflush(stderr);
    if (log_file) {
        fprintf(log_file, "%s: %s: %s\n", error_get_progname(), what, message);
        fflush(log_file);
    }
    g_mutex_unlock(&log_lock);
}

void qemu_log_init(void)
{
    g_log_set_default_handler(log_glib_handler, NULL);
}

bool qemu_set_log_filename(const char *filename, GError **errp)
{
    FILE *f;

    if (!filename) {
        qemu_log_close();
        return true;
    }
    f = fopen(filename, "a");
    if (!f) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "'%s': %s", filename,
                    g_strerror(errno));
        return false;
    }
    qemu_log_close();
    g_mutex_lock(&log_lock);
    log_file = f;
    g_mutex_unlock(&log_lock);
    qemu_log_init();
    return true;
}

void qemu_log_close(void)
{
    g_mutex_lock(&log_lock);
    if (log_file) {
        fclose(log_file);
        log_file = NULL;
    }
    g_mutex_unlock(&log_lock);
}
