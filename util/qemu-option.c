/*
 * QEMU-style option strings ("type,key=value,...", ",," escapes a comma).
 */
#include "qemu/osdep.h"
#include "qemu/option.h"

/*
 * Reads one element of @p up to an unescaped ',' or the end, unescaping
 * ",," into ",". Returns the position after the element (after its comma).
 */
static const char *opts_next_element(const char *p, GString *out)
{
    g_string_truncate(out, 0);
    while (*p) {
        if (*p == ',') {
            if (p[1] == ',') {
                g_string_append_c(out, ',');
                p += 2;
                continue;
            }
            return p + 1;
        }
        g_string_append_c(out, *p++);
    }
    return p;
}

static bool opts_add(GHashTable *opts, const char *key, const char *value,
                     GError **errp)
{
    if (g_hash_table_contains(opts, key)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "parameter '%s' is given twice", key);
        return false;
    }
    g_hash_table_insert(opts, g_strdup(key), g_strdup(value));
    return true;
}

/*
 * QEMU's spellings of a boolean without "=": "noKEY" is KEY=off for a
 * boolean entry of @desc, any other word is WORD=on (an unknown WORD is
 * then named by the table's check).
 */
static bool opts_add_flag(GHashTable *opts, const QemuOptDesc *desc,
                          const char *word, GError **errp)
{
    const QemuOptDesc *d =
        g_str_has_prefix(word, "no") ? qemu_opt_desc_find(desc, word + 2) : NULL;

    if (d && d->type == QEMU_OPT_BOOL) {
        return opts_add(opts, d->name, "off", errp);
    }
    return opts_add(opts, word, "on", errp);
}

/* qemu_opts_parse; with @flags, qemu_opts_parse_flags's spellings too. */
static GHashTable *opts_parse(const char *str, const char *implied_key,
                              const QemuOptDesc *flags, GError **errp)
{
    g_autoptr(GHashTable) opts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GString) elem = g_string_new(NULL);
    const char *p = str ? str : "";
    bool first = true;

    while (*p) {
        p = opts_next_element(p, elem);
        const char *eq = strchr(elem->str, '=');

        if (elem->len == 0) {
            if (first && implied_key) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                            "the %s is missing", implied_key);
                return NULL;
            }
            first = false;
            continue;
        }
        if (first && implied_key && (!eq || flags)) {
            if (!opts_add(opts, implied_key, elem->str, errp)) {
                return NULL;
            }
            first = false;
            continue;
        }
        first = false;
        if (!eq && flags) {
            if (!opts_add_flag(opts, flags, elem->str, errp)) {
                return NULL;
            }
            continue;
        }
        if (!eq) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "parameter '%s' has no value (expected %s=VALUE)",
                        elem->str, elem->str);
            return NULL;
        }
        if (eq == elem->str) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' has an empty parameter name", elem->str);
            return NULL;
        }
        g_autofree char *key = g_strndup(elem->str, eq - elem->str);
        if (!opts_add(opts, key, eq + 1, errp)) {
            return NULL;
        }
    }
    return g_steal_pointer(&opts);
}

GHashTable *qemu_opts_parse(const char *str, const char *implied_key,
                            GError **errp)
{
    return opts_parse(str, implied_key, NULL, errp);
}

GHashTable *qemu_opts_parse_flags(const char *str, const QemuOptDesc *desc,
                                  GError **errp)
{
    const QemuOptDesc *implied = desc;

    while (implied->name && !implied->implied) {
        implied++;
    }
    return opts_parse(str, implied->name, desc, errp);
}

const char *qemu_opt_get(GHashTable *opts, const char *key)
{
    return opts ? g_hash_table_lookup(opts, key) : NULL;
}

bool qemu_opt_get_bool(GHashTable *opts, const char *key, bool def, bool *out,
                       GError **errp)
{
    static const char *const yes[] = { "on", "yes", "true", NULL };
    static const char *const no[] = { "off", "no", "false", NULL };
    const char *v = qemu_opt_get(opts, key);

    if (!v) {
        *out = def;
        return true;
    }
    if (g_strv_contains(yes, v)) {
        *out = true;
        return true;
    }
    if (g_strv_contains(no, v)) {
        *out = false;
        return true;
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "parameter '%s' expects 'on' or 'off', not '%s'", key, v);
    return false;
}

bool qemu_opt_get_number(GHashTable *opts, const char *key, uint64_t def,
                         uint64_t min, uint64_t max, uint64_t *out,
                         GError **errp)
{
    const char *v = qemu_opt_get(opts, key);
    guint64 n;

    if (!v) {
        *out = def;
        return true;
    }
    char *end = NULL;
    errno = 0;
    /* Base 0 takes "0x10" as well as "16"; a sign is not a digit. */
    n = g_ascii_strtoull(v, &end, 0);
    if (!g_ascii_isdigit(*v) || errno || *end) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "parameter '%s' expects a number, not '%s'", key, v);
        return false;
    }
    if (n < min || n > max) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "parameter '%s' is %s, outside %" PRIu64 "..%" PRIu64,
                    key, v, min, max);
        return false;
    }
    *out = n;
    return true;
}

static int opts_compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const QemuOptDesc *qemu_opt_desc_find(const QemuOptDesc *desc, const char *name)
{
    for (; desc && desc->name; desc++) {
        if (!strcmp(desc->name, name)) {
            return desc;
        }
    }
    return NULL;
}

const char *qemu_opts_find_unknown(GHashTable *opts, const QemuOptDesc *desc)
{
    g_autofree const char **keys =
        (const char **)g_hash_table_get_keys_as_array(opts, NULL);
    guint n = g_strv_length((char **)keys);

    /* Sorted, so that the key an error names does not depend on hashing. */
    qsort(keys, n, sizeof(*keys), opts_compare_keys);
    for (guint i = 0; i < n; i++) {
        if (!qemu_opt_desc_find(desc, keys[i])) {
            return keys[i];
        }
    }
    return NULL;
}

bool qemu_opts_check_names(GHashTable *opts, const QemuOptDesc *desc,
                           const char *what, GError **errp)
{
    const char *unknown = qemu_opts_find_unknown(opts, desc);
    g_autoptr(GString) expected = NULL;

    if (!unknown) {
        return true;
    }
    expected = g_string_new(NULL);
    for (const QemuOptDesc *d = desc; d && d->name; d++) {
        g_string_append_printf(expected, "%s%s", expected->len ? ", " : "",
                               d->name);
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "'%s' is not a parameter of %s (expected: %s)", unknown, what,
                expected->str);
    return false;
}

/* "a, b or c", as error sentences list the allowed values. */
static char *desc_choices_sentence(const QemuOptDesc *d)
{
    GString *s = g_string_new(NULL);

    for (int i = 0; d->choices[i]; i++) {
        if (i > 0) {
            g_string_append(s, d->choices[i + 1] ? ", " : " or ");
        }
        g_string_append(s, d->choices[i]);
    }
    return g_string_free(s, FALSE);
}

static bool opt_check_value(GHashTable *opts, const QemuOptDesc *d,
                            GError **errp)
{
    const char *v = qemu_opt_get(opts, d->name);
    uint64_t n;
    bool b;

    if (!v && !d->required) {
        return true;
    }
    /* An empty value is no value only where one is required. */
    if (!v || (!*v && d->required)) {
        if (d->missing_hint) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "parameter '%s' is missing (%s)", d->name,
                        d->missing_hint);
        } else {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "parameter '%s' is missing", d->name);
        }
        return false;
    }
    switch (d->type) {
    case QEMU_OPT_BOOL:
        return qemu_opt_get_bool(opts, d->name, false, &b, errp);
    case QEMU_OPT_NUMBER:
        return qemu_opt_get_number(opts, d->name, 0, d->min, d->max, &n, errp);
    case QEMU_OPT_STRING:
        break;
    }
    if (d->choices && !g_strv_contains(d->choices, v)) {
        g_autofree char *list = desc_choices_sentence(d);

        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "%s '%s' is not %s", d->name, v, list);
        return false;
    }
    return true;
}

bool qemu_opts_check_values(GHashTable *opts, const QemuOptDesc *desc,
                            GError **errp)
{
    for (const QemuOptDesc *d = desc; d && d->name; d++) {
        if (!opt_check_value(opts, d, errp)) {
            return false;
        }
    }
    return true;
}

bool qemu_opts_validate(GHashTable *opts, const QemuOptDesc *desc,
                        const char *what, GError **errp)
{
    return qemu_opts_check_names(opts, desc, what, errp) &&
           qemu_opts_check_values(opts, desc, errp);
}

char *qemu_opt_desc_choices(const QemuOptDesc *desc, const char *name,
                            const char *sep)
{
    static const char *const bools[] = { "on", "off", NULL };
    const QemuOptDesc *d = qemu_opt_desc_find(desc, name);

    if (!d) {
        return NULL;
    }
    if (d->type == QEMU_OPT_BOOL) {
        return g_strjoinv(sep, (char **)bools);
    }
    if (d->choices) {
        return g_strjoinv(sep, (char **)d->choices);
    }
    return NULL;
}

/* "PATH", "qcow2|raw", "on|off", "N": what a synopsis shows for the value. */
static char *desc_value_name(const QemuOptDesc *d)
{
    char *choices;

    if (d->value_name) {
        return g_strdup(d->value_name);
    }
    choices = qemu_opt_desc_choices(d, d->name, "|");
    if (choices) {
        return choices;
    }
    return g_strdup(d->type == QEMU_OPT_NUMBER ? "N" : "STRING");
}

void qemu_opts_print_synopsis(GString *out, const QemuOptDesc *desc)
{
    for (const QemuOptDesc *d = desc; d && d->name; d++) {
        g_autofree char *value = NULL;
        const char *sep = out->len ? "," : "";

        if (d->implied) {
            continue;
        }
        value = desc_value_name(d);
        if (d->required) {
            g_string_append_printf(out, "%s%s=%s", sep, d->name, value);
        } else {
            g_string_append_printf(out, "[%s%s=%s]", sep, d->name, value);
        }
    }
}

void qemu_opts_print_help(GString *out, const QemuOptDesc *desc)
{
    for (const QemuOptDesc *d = desc; d && d->name; d++) {
        g_autoptr(GString) line = g_string_new(NULL);
        g_autoptr(GPtrArray) notes = NULL;
        g_autofree char *value = NULL;

        if (d->implied) {
            continue;
        }
        value = desc_value_name(d);
        g_string_printf(line, "  %s=%s", d->name, value);
        notes = g_ptr_array_new_with_free_func(g_free);
        if (d->type == QEMU_OPT_NUMBER) {
            g_ptr_array_add(notes, g_strdup_printf("%" PRIu64 "..%" PRIu64,
                                                   d->min, d->max));
        }
        if (d->required) {
            g_ptr_array_add(notes, g_strdup("required"));
        } else if (d->def_value_str) {
            g_ptr_array_add(notes, g_strdup_printf("default: %s",
                                                   d->def_value_str));
        }
        if (d->help || notes->len) {
            /* The text in a column of its own, as --help has it. */
            g_string_append_printf(line, "%*s", MAX(1, 27 - (int)line->len), "");
            g_string_append(line, d->help ? d->help : "");
        }
        if (notes->len) {
            g_autofree char *joined = NULL;

            g_ptr_array_add(notes, NULL);
            joined = g_strjoinv(", ", (char **)notes->pdata);
            g_string_append_printf(line, "%s(%s)", d->help ? " " : "", joined);
        }
        g_string_append_printf(out, "%s\n", line->str);
    }
}

char *qemu_opt_escape(const char *value)
{
    GString *s = g_string_new(NULL);

    for (const char *p = value; *p; p++) {
        g_string_append_c(s, *p);
        if (*p == ',') {
            g_string_append_c(s, ',');
        }
    }
    return g_string_free(s, FALSE);
}
