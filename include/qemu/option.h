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

/* The value of @key, or NULL. */
const char *qemu_opt_get(GHashTable *opts, const char *key);
/* Parses a decimal or 0x-prefixed unsigned number within [@min, @max]. */
bool qemu_opt_get_number(GHashTable *opts, const char *key, uint64_t def,
                         uint64_t min, uint64_t max, uint64_t *out,
                         GError **errp);
/* Escapes "," as ",," so @value can be put back into an option string. */
char *qemu_opt_escape(const char *value);

/*
 * Descriptor tables: each option (-drive, -tpmdev libtpms, ...) describes its
 * keys once, in the module that uses them; the same table validates the
 * parsed options and prints the help texts, so the two cannot drift.
 */
typedef enum QemuOptType {
    QEMU_OPT_STRING,    /* any text; @choices limits it */
    QEMU_OPT_BOOL,      /* on/off, yes/no, true/false */
    QEMU_OPT_NUMBER,    /* decimal or 0x-prefixed, within [@min, @max] */
} QemuOptType;

typedef struct QemuOptDesc {
    const char *name;
    QemuOptType type;
    /* Shown for the value in a synopsis ("file=PATH"); choices, on|off or N
     * when NULL. */
    const char *value_name;
    const char *const *choices;     /* allowed values, NULL-terminated */
    const char *def_value_str;      /* the default, for help only */
    const char *help;
    uint64_t min, max;              /* QEMU_OPT_NUMBER */
    bool required;                  /* given, and not empty */
    /* Appended to the error for a missing required key: "(the id of a
     * -drive)". */
    const char *missing_hint;
    /* The key of the option's first element (-tpmdev TYPE): it selects the
     * table, so help does not list it. */
    bool implied;
} QemuOptDesc;

/* Tables end with an entry whose name is NULL. */
#define QEMU_OPT_DESC_END { .name = NULL }

/*
 * qemu_opts_parse for a chardev-style option (-qtest unix:PATH,...), with
 * QEMU's spellings: the first element is always the value of @desc's
 * implied key (a path may hold '='), and an element without '=' is a
 * boolean, "KEY" meaning KEY=on and "noKEY" KEY=off ("server", "nowait").
 */
GHashTable *qemu_opts_parse_flags(const char *str, const QemuOptDesc *desc,
                                  GError **errp);
/*
 * The first key of @opts, in sorted order, that @desc does not describe,
 * or NULL; valid while @opts is. For an option that words its own error.
 */
const char *qemu_opts_find_unknown(GHashTable *opts, const QemuOptDesc *desc);
/*
 * Fails naming qemu_opts_find_unknown's key:
 * "'%s' is not a parameter of @what (expected: ...)".
 */
bool qemu_opts_check_names(GHashTable *opts, const QemuOptDesc *desc,
                           const char *what, GError **errp);
/*
 * Checks the values @desc describes, in table order: required keys present
 * and not empty, booleans, numbers in range, values among the choices.
 */
bool qemu_opts_check_values(GHashTable *opts, const QemuOptDesc *desc,
                            GError **errp);
/* Both checks: names first, then values. */
bool qemu_opts_validate(GHashTable *opts, const QemuOptDesc *desc,
                        const char *what, GError **errp);
/* The entry for @name, or NULL. */
const QemuOptDesc *qemu_opt_desc_find(const QemuOptDesc *desc, const char *name);

/*
 * Appends "key=VALUE,...[,key=VALUE]" for every key but the implied one;
 * optional keys in brackets. Separated by ',' from what @out holds already.
 */
void qemu_opts_print_synopsis(GString *out, const QemuOptDesc *desc);
/* One line per key but the implied one: "  key=VALUE  help (default: X)". */
void qemu_opts_print_help(GString *out, const QemuOptDesc *desc);
/*
 * The values @name takes, separated by @sep ("qcow2 raw"), or NULL for a
 * key that takes any text or number.
 */
char *qemu_opt_desc_choices(const QemuOptDesc *desc, const char *name,
                            const char *sep);

/*
 * The keys of a listening socket server (-qmp, -qtest): QEMU's server= and
 * wait=; qtpm only listens, so server=on is the default and the only mode.
 */
#define QEMU_OPT_DESC_SOCKET_SERVER                                      \
    {                                                                    \
        .name = "server", .type = QEMU_OPT_BOOL, .value_name = "on",     \
        .def_value_str = "on", .help = "qtpm listens; the only mode",    \
    },                                                                   \
    {                                                                    \
        .name = "wait", .type = QEMU_OPT_BOOL, .value_name = "off",      \
        .def_value_str = "on",                                           \
        .help = "do not wait for the first client",                      \
    }

#endif
