/*
 * QEMU-style option strings: "value,key=value,key=value", where ",," is a
 * literal comma. The first element may omit "key=" when an implied key is
 * given (e.g. -tpmdev libtpms,id=t0 implies "type").
 */
#ifndef QEMU_OPTION_H
#define QEMU_OPTION_H

#include "qemu/osdep.h"

/*
 * Returns a GHashTable of g_strdup'ed keys and values, or NULL with @errp set.
 * A key given twice, an empty key or an element without "=" (other than the
 * implied first one) is an error. Empty elements (a trailing comma) are
 * ignored.
 */
GHashTable *qemu_opts_parse(const char *str, const char *implied_key,
                            GError **errp);
/* Parses "on/off/yes/no/true/false"; false with @errp set on bad input. */
bool qemu_opt_get_bool(GHashTable *opts, const char *key, bool def, bool *out,
                       GError **errp);
/* Fails naming the first key of @opts that is not in the NULL-terminated @allowed. */
bool qemu_opts_check_keys(GHashTable *opts, const char *const *allowed,
                          const char *what, GError **errp);

/* The value of @key, or NULL. */
const char *qemu_opt_get(GHashTable *opts, const char *key);
/* Parses a decimal or 0x-prefixed unsigned number within [@min, @max]. */
bool qemu_opt_get_number(GHashTable *opts, const char *key, uint64_t def,
                         uint64_t min, uint64_t max, uint64_t *out,
                         GError **errp);
/* Escapes "," as ",," so @value can be put back into an option string. */
char *qemu_opt_escape(const char *value);

#endif
