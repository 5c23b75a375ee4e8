/*
 * Secrets given on the command line (-object secret,...), QEMU style.
 * A secret only holds bytes; what they must look like (a 32-byte key, a
 * passphrase) is for its user to check.
 */
#include "qemu/osdep.h"

#include <sys/mman.h>

#include "crypto/secret.h"
#include "qemu/option.h"

struct QCryptoSecret {
    char *id;
    uint8_t *data;      /* qcrypto_secure_alloc(alloc_len) */
    size_t len;
    size_t alloc_len;
};

/* id -> QCryptoSecret; main loop only. */
static GHashTable *secret_registry;

void qcrypto_memwipe(void *p, size_t len)
{
    /* A memset the compiler may not drop, at memset's speed; p may be NULL. */
    if (len) {
        explicit_bzero(p, len);
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

static size_t secure_map_len(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    return MAX((len + page - 1) / page * page, page);
}

void *qcrypto_secure_alloc(size_t len)
{
    size_t n = secure_map_len(len);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);

    if (p == MAP_FAILED) {
        g_error("qcrypto_secure_alloc: cannot map %zu bytes: %s", n,
                g_strerror(errno));
    }
    /*
     * Best effort: a low RLIMIT_MEMLOCK only costs the no-swap promise;
     * the dump exclusion does not depend on it.
     */
    (void)mlock(p, n);
    (void)madvise(p, n, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
    (void)madvise(p, n, MADV_WIPEONFORK);
#endif
    return p;
}

void qcrypto_secure_free(void *p, size_t len)
{
    size_t n = secure_map_len(len);

    if (!p) {
        return;
    }
    qcrypto_memwipe(p, n);
    munlock(p, n);
    munmap(p, n);
}

static void secret_wipe_bytes(uint8_t *data, size_t len)
{
    qcrypto_secure_free(data, len);
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
                              uint8_t **out, size_t *out_len, size_t *alloc_len,
                              GError **errp)
{
    uint8_t *buf;

    if (len % 2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s': hex data has an odd number of digits (%zu)", id,
                    len);
        return false;
    }
    buf = qcrypto_secure_alloc(len / 2 + 1);
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
    *alloc_len = len / 2 + 1;
    return true;
}

static bool base64_char_ok(uint8_t c)
{
    return g_ascii_isalnum(c) || c == '+' || c == '/';
}

static bool secret_decode_base64(const char *id, const uint8_t *in, size_t len,
                                 uint8_t **out, size_t *out_len, size_t *alloc_len,
                                 GError **errp)
{
    size_t pad = 0;
    gint state = 0;
    guint save = 0;

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
    /* Decoded straight into locked memory: no copy on the heap. */
    *alloc_len = len / 4 * 3 + 3;
    *out = qcrypto_secure_alloc(*alloc_len);
    *out_len = g_base64_decode_step((const char *)in, len, *out, &state, &save);
    qcrypto_memwipe(&save, sizeof(save));
    return true;
}

/*
 * Opens without blocking, so that a FIFO nobody writes to reads as empty
 * at once instead of holding start-up in open(); a pipe or FIFO with a
 * writer (libvirt's, /dev/fd/N) is then read blocking until its writer
 * closes it. At most QCRYPTO_SECRET_MAX_LEN + 1 bytes are ever read.
 */
static int secret_open(const char *id, const char *path, bool *is_pipe,
                       GError **errp)
{
    struct stat st;
    int fd, flags;

    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "secret '%s': cannot open '%s': %s", id, path,
                    g_strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "secret '%s': cannot read '%s': %s", id, path,
                    S_ISDIR(st.st_mode) ? "it is a folder" : g_strerror(errno));
        close(fd);
        return -1;
    }
    *is_pipe = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
    flags = fcntl(fd, F_GETFL);
    if (flags >= 0) {
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    return fd;
}

static bool secret_read_file(const char *id, const char *path, uint8_t **data,
                             size_t *len, size_t *alloc_len, GError **errp)
{
    size_t cap = QCRYPTO_SECRET_MAX_LEN + 1, n = 0;
    bool is_pipe = false;
    uint8_t *buf;
    int fd = secret_open(id, path, &is_pipe, errp);

    if (fd < 0) {
        return false;
    }
    buf = qcrypto_secure_alloc(cap);
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "secret '%s': cannot read '%s': %s", id, path,
                        g_strerror(errno));
            goto fail;
        }
        if (r == 0) {
            break;
        }
        n += r;
    }
    if (n == cap) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s': '%s' holds more than %d bytes, the limit "
                    "for a secret", id, path, QCRYPTO_SECRET_MAX_LEN);
        goto fail;
    }
    if (n == 0 && is_pipe) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s': '%s' is a pipe that nothing was written to "
                    "(no writer, or it closed empty)", id, path);
        goto fail;
    }
    close(fd);
    *data = buf;
    *len = n;
    *alloc_len = cap;
    return true;

fail:
    close(fd);
    qcrypto_secure_free(buf, cap);
    return false;
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
    size_t raw_len = 0, raw_alloc = 0, decoded_len = 0, decoded_alloc = 0;
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
        if (!secret_read_file(id, file, &raw, &raw_len, &raw_alloc, errp)) {
            return NULL;
        }
    } else {
        raw_len = strlen(data);
        if (raw_len > QCRYPTO_SECRET_MAX_LEN) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "secret '%s': the data holds more than %d bytes, the "
                        "limit for a secret", id, QCRYPTO_SECRET_MAX_LEN);
            return NULL;
        }
        raw_alloc = raw_len + 1;
        raw = qcrypto_secure_alloc(raw_alloc);
        memcpy(raw, data, raw_len);
    }

    if (!strcmp(format, "raw")) {
        decoded = raw;
        decoded_len = raw_len;
        decoded_alloc = raw_alloc;
        raw = NULL;
        ok = true;
    } else {
        size_t n = trim_trailing_space(raw, raw_len);
        if (!strcmp(format, "hex")) {
            ok = secret_decode_hex(id, raw, n, &decoded, &decoded_len,
                                   &decoded_alloc, errp);
        } else {
            ok = secret_decode_base64(id, raw, n, &decoded, &decoded_len,
                                      &decoded_alloc, errp);
        }
    }
    secret_wipe_bytes(raw, raw_alloc);
    if (!ok) {
        return NULL;
    }
    if (decoded_len == 0) {
        secret_wipe_bytes(decoded, decoded_alloc);
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
    s->alloc_len = decoded_alloc;
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
    secret_wipe_bytes(s->data, s->alloc_len);
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
