/*
 * QEMU-style option strings: "value,key=value,key=value", where ",," is a
 * literal comma. The first element may omit "key=" when an implied key is
 * given (e.g. -tpmdev libtpms,id=t0 implies "type").
 */
#ifndef QEMU_OPTION_H
#define QEMU_OPTION_H

#include "qemu/osdep.h"

/* Returns a GHashTable of g_strdup'ed keys and values, or NULL with @errp set. */
GHashTable *qemu_opts_parse(const char *str, const char *implied_key,
                            GError **errp);
/* Parses "on/off/yes/no/true/false"; false with @errp set on bad input. */
bool qemu_opt_get_bool(GHashTable *opts, const char *key, bool def, bool *out,
                       GError **errp);
/* Fails naming the first key of @opts that is not in the NULL-terminated @allowed. */
bool qemu_opts_check_keys(GHashTable *opts, const char *const *allowed,
                          const char *what, GError **errp);

#endif
