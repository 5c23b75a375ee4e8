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

GHashTable *qemu_opts_parse(const char *str, const char *implied_key,
                            GError **errp)
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
        if (first && implied_key && !eq) {
            if (!opts_add(opts, implied_key, elem->str, errp)) {
                return NULL;
            }
            first = false;
            continue;
        }
        first = false;
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

bool qemu_opts_check_keys(GHashTable *opts, const char *const *allowed,
                          const char *what, GError **errp)
{
    g_autofree const char **keys =
        (const char **)g_hash_table_get_keys_as_array(opts, NULL);
    guint n = g_strv_length((char **)keys);

    qsort(keys, n, sizeof(*keys), opts_compare_keys);
    for (guint i = 0; i < n; i++) {
        if (!g_strv_contains(allowed, keys[i])) {
            g_autofree char *list = g_strjoinv(", ", (char **)allowed);
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' is not a parameter of %s (expected: %s)",
                        keys[i], what, list);
            return false;
        }
    }
    return true;
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
