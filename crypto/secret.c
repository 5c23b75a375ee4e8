/*
 * Secrets given on the command line (-object secret,...), QEMU style.
 * A secret only holds bytes; what they must look like (a 32-byte key, a
 * passphrase) is for its user to check.
 */
#include "qemu/osdep.h"

#include "crypto/secret.h"
#include "qemu/option.h"

struct QCryptoSecret {
    char *id;
    uint8_t *data;
    size_t len;
};

/* id -> QCryptoSecret; main loop only. */
static GHashTable *secret_registry;

void qcrypto_memwipe(void *p, size_t len)
{
    volatile uint8_t *v = p;

    while (len--) {
        *v++ = 0;
    }
}

void qcrypto_free_wiped(uint8_t **p, size_t len)
{
    if (*p) {
        qcrypto_memwipe(*p, len);
        g_free(*p);
        *p = NULL;
    }
}

static void secret_wipe_bytes(uint8_t *data, size_t len)
{
    if (data) {
        qcrypto_memwipe(data, len);
        g_free(data);
    }
}

/* Files often end with a newline that is not part of an encoded secret. */
static size_t trim_trailing_space(const uint8_t *data, size_t len)
{
    while (len > 0 && g_ascii_isspace(data[len - 1])) {
        len--;
    }
    return len;
}

static bool secret_decode_hex(const char *id, const uint8_t *in, size_t len,
                              uint8_t **out, size_t *out_len, GError **errp)
{
    uint8_t *buf;

    if (len % 2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s': hex data has an odd number of digits (%zu)", id,
                    len);
        return false;
    }
    buf = g_malloc(len / 2 + 1);
    for (size_t i = 0; i < len; i += 2) {
        int hi = g_ascii_xdigit_value(in[i]);
        int lo = g_ascii_xdigit_value(in[i + 1]);
        if (hi < 0 || lo < 0) {
            secret_wipe_bytes(buf, len / 2 + 1);
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "secret '%s': hex data has a non-hex character at "
                        "offset %zu", id, hi < 0 ? i : i + 1);
            return false;
        }
        buf[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *out = buf;
    *out_len = len / 2;
    return true;
}

static bool base64_char_ok(uint8_t c)
{
    return g_ascii_isalnum(c) || c == '+' || c == '/';
}

static bool secret_decode_base64(const char *id, const uint8_t *in, size_t len,
                                 uint8_t **out, size_t *out_len, GError **errp)
{
    size_t pad = 0;
    g_autofree char *text = NULL;
    gsize n;

    /* g_base64_decode() skips bad characters silently: validate first. */
    while (pad < 2 && pad < len && in[len - 1 - pad] == '=') {
        pad++;
    }
    for (size_t i = 0; i < len - pad; i++) {
        if (!base64_char_ok(in[i])) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "secret '%s': base64 data has an invalid character at "
                        "offset %zu", id, i);
            return false;
        }
    }
    if (len == 0 || len % 4 != 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s': base64 data is %zu characters long, not a "
                    "multiple of 4", id, len);
        return false;
    }
    text = g_strndup((const char *)in, len);
    *out = g_base64_decode(text, &n);
    *out_len = n;
    qcrypto_memwipe(text, len);
    return true;
}

static bool secret_read_file(const char *id, const char *path, uint8_t **data,
                             size_t *len, GError **errp)
{
    GError *local_err = NULL;
    gchar *contents = NULL;
    gsize n = 0;

    if (!g_file_get_contents(path, &contents, &n, &local_err)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "secret '%s': %s", id,
                    local_err->message);
        g_error_free(local_err);
        return false;
    }
    *data = (uint8_t *)contents;
    *len = n;
    return true;
}

static const char *const secret_format_choices[] = {
    "raw", "base64", "hex", NULL
};

const QemuOptDesc qcrypto_secret_opts[] = {
    { .name = "qom-type", .type = QEMU_OPT_STRING, .implied = true },
    {
        .name = "id", .type = QEMU_OPT_STRING, .value_name = "ID",
        .required = true, .help = "the secret's id, for key-secret= and the like",
    },
    {
        .name = "file", .type = QEMU_OPT_STRING, .value_name = "PATH",
        .help = "a file holding the secret (or data=)",
    },
    {
        .name = "data", .type = QEMU_OPT_STRING, .value_name = "STRING",
        .help = "the secret itself (or file=)",
    },
    {
        .name = "format", .type = QEMU_OPT_STRING,
        .choices = secret_format_choices, .def_value_str = "raw",
        .help = "how the file or the string encodes the bytes",
    },
    QEMU_OPT_DESC_END
};

/* Value errors name the secret, as every other error about it does. */
static bool secret_check_values(const char *id, GHashTable *opts,
                                GError **errp)
{
    if (!qemu_opts_check_values(opts, qcrypto_secret_opts, errp)) {
        if (id && *id) {
            g_prefix_error(errp, "secret '%s': ", id);
        }
        return false;
    }
    return true;
}

bool qcrypto_secret_check_opts(GHashTable *opts, GError **errp)
{
    return qemu_opts_check_names(opts, qcrypto_secret_opts, "-object secret",
                                 errp) &&
           secret_check_values(g_hash_table_lookup(opts, "id"), opts, errp);
}

QCryptoSecret *qcrypto_secret_new(GHashTable *opts, GError **errp)
{
    const char *id = g_hash_table_lookup(opts, "id");
    const char *file = g_hash_table_lookup(opts, "file");
    const char *data = g_hash_table_lookup(opts, "data");
    const char *format = g_hash_table_lookup(opts, "format");
    uint8_t *raw = NULL, *decoded = NULL;
    size_t raw_len = 0, decoded_len = 0;
    QCryptoSecret *s;
    bool ok;

    if (!id || !*id) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret: the property 'id' is required");
        return NULL;
    }
    if (qcrypto_secret_lookup(id)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s': an object with this id already exists", id);
        return NULL;
    }
    if (!!file == !!data) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s': give exactly one of 'file' and 'data'", id);
        return NULL;
    }
    if (!secret_check_values(id, opts, errp)) {
        return NULL;
    }
    if (!format) {
        format = "raw";
    }

    if (file) {
        if (!secret_read_file(id, file, &raw, &raw_len, errp)) {
            return NULL;
        }
    } else {
        raw_len = strlen(data);
        raw = g_memdup2(data, raw_len + 1);
    }

    if (!strcmp(format, "raw")) {
        decoded = raw;
        decoded_len = raw_len;
        raw = NULL;
        ok = true;
    } else {
        size_t n = trim_trailing_space(raw, raw_len);
        if (!strcmp(format, "hex")) {
            ok = secret_decode_hex(id, raw, n, &decoded, &decoded_len, errp);
        } else {
            ok = secret_decode_base64(id, raw, n, &decoded, &decoded_len, errp);
        }
    }
    secret_wipe_bytes(raw, raw_len);
    if (!ok) {
        return NULL;
    }
    if (decoded_len == 0) {
        secret_wipe_bytes(decoded, 0);
        if (file) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "secret '%s': file '%s' holds no secret", id, file);
        } else {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "secret '%s': the data is empty", id);
        }
        return NULL;
    }

    s = g_new0(QCryptoSecret, 1);
    s->id = g_strdup(id);
    s->data = decoded;
    s->len = decoded_len;
    if (!secret_registry) {
        secret_registry = g_hash_table_new(g_str_hash, g_str_equal);
    }
    g_hash_table_insert(secret_registry, s->id, s);
    return s;
}

QCryptoSecret *qcrypto_secret_lookup(const char *id)
{
    if (!secret_registry || !id) {
        return NULL;
    }
    return g_hash_table_lookup(secret_registry, id);
}

const uint8_t *qcrypto_secret_data(QCryptoSecret *s, size_t *len)
{
    *len = s->len;
    return s->data;
}

static void secret_destroy(QCryptoSecret *s)
{
    secret_wipe_bytes(s->data, s->len);
    g_free(s->id);
    g_free(s);
}

void qcrypto_secret_free(QCryptoSecret *s)
{
    if (!s) {
        return;
    }
    if (secret_registry && g_hash_table_lookup(secret_registry, s->id) == s) {
        g_hash_table_remove(secret_registry, s->id);
    }
    secret_destroy(s);
}

void qcrypto_secret_free_all(void)
{
    GHashTableIter iter;
    gpointer value;

    if (!secret_registry) {
        return;
    }
    g_hash_table_iter_init(&iter, secret_registry);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        g_hash_table_iter_remove(&iter);
        secret_destroy(value);
    }
    g_hash_table_destroy(secret_registry);
    secret_registry = NULL;
}
