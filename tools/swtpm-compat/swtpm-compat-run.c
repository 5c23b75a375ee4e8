/*
 * Run-time helpers of the swtpm front doors (swtpm-compat-run.h).
 */
#include "qemu/osdep.h"

#include <grp.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "export/swtpm-codec.h"
#include "qemu/error-report.h"
#include "swtpm-compat-run.h"

#define COMPAT_ERROR g_quark_from_static_string("swtpm-compat-error")
/* More than any key or passphrase; a bigger input is a mistake. */
#define COMPAT_SECRET_MAX 4096
#define COMPAT_READ_CHUNK 512

static char *compat_logfile;

static bool read_fd_all(int fd, GByteArray *out, GError **errp)
{
    uint8_t buf[COMPAT_READ_CHUNK];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            g_set_error(errp, COMPAT_ERROR, 0, "cannot read from descriptor %d: %s",
                        fd, g_strerror(errno));
            return false;
        }
        if (n == 0) {
            return true;
        }
        g_byte_array_append(out, buf, n);
        explicit_bzero(buf, sizeof(buf));
        if (out->len > COMPAT_SECRET_MAX) {
            g_set_error(errp, COMPAT_ERROR, 0, "descriptor %d holds more than %d "
                        "bytes; that is no key", fd, COMPAT_SECRET_MAX);
            return false;
        }
    }
}

static void wipe_array(GByteArray *a)
{
    explicit_bzero(a->data, a->len);
    g_byte_array_unref(a);
}

bool compat_secret_read(const char *opt, const SwtpmKeySpec *k,
                        CompatSecret *s, GError **errp)
{
    GByteArray *raw;
    g_autoptr(GError) err = NULL;
    const char *what = k->file;
    g_autofree char *fdname = NULL;

    memset(s, 0, sizeof(*s));
    s->memfd = -1;
    if (k->file) {
        char *contents = NULL;
        gsize n = 0;

        if (!g_file_get_contents(k->file, &contents, &n, &err)) {
            g_set_error(errp, COMPAT_ERROR, 0, "%s: %s", opt, err->message);
            return false;
        }
        /* Taken, not copied: one buffer to wipe. */
        raw = g_byte_array_new_take((uint8_t *)contents, n);
    } else {
        /*
         * Room for the largest input read_fd_all accepts, so the array
         * never moves: a realloc would free a copy of the secret unwiped.
         */
        raw = g_byte_array_sized_new(COMPAT_SECRET_MAX + COMPAT_READ_CHUNK);
        fdname = g_strdup_printf("descriptor %d", k->fd);
        what = fdname;
        if (!read_fd_all(k->fd, raw, &err)) {
            g_set_error(errp, COMPAT_ERROR, 0, "%s: %s", opt, err->message);
            wipe_array(raw);
            return false;
        }
        close(k->fd);
    }
    if (raw->len == 0) {
        g_set_error(errp, COMPAT_ERROR, 0, "%s: %s is empty", opt, what);
        wipe_array(raw);
        return false;
    }
    if (k->kind == SWTPM_KEY_RAW && k->hex) {
        /* swtpm takes 64 hex digits, trailing white space ignored. */
        size_t n = raw->len;
        uint8_t key[32];

        while (n > 0 && g_ascii_isspace(raw->data[n - 1])) {
            n--;
        }
        if (n != 64) {
            g_set_error(errp, COMPAT_ERROR, 0, "%s: %s holds %zu hex digits; "
                        "qtpm's store needs a 256-bit key (64 digits)", opt, what, n);
            wipe_array(raw);
            return false;
        }
        for (size_t i = 0; i < 32; i++) {
            int hi = g_ascii_xdigit_value(raw->data[2 * i]);
            int lo = g_ascii_xdigit_value(raw->data[2 * i + 1]);

            if (hi < 0 || lo < 0) {
                g_set_error(errp, COMPAT_ERROR, 0, "%s: %s is not a hex key", opt,
                            what);
                explicit_bzero(key, sizeof(key));
                wipe_array(raw);
                return false;
            }
            key[i] = hi << 4 | lo;
        }
        explicit_bzero(raw->data, raw->len);
        g_byte_array_set_size(raw, 0);
        g_byte_array_append(raw, key, sizeof(key));
        explicit_bzero(key, sizeof(key));
    } else if (k->kind == SWTPM_KEY_RAW && raw->len != 32) {
        g_set_error(errp, COMPAT_ERROR, 0, "%s: %s holds %u bytes; qtpm's store "
                    "needs a 256-bit key (32 bytes)", opt, what, raw->len);
        wipe_array(raw);
        return false;
    }
    if (k->file && k->remove && unlink(k->file) < 0) {
        g_set_error(errp, COMPAT_ERROR, 0, "%s: cannot remove '%s': %s", opt,
                    k->file, g_strerror(errno));
        wipe_array(raw);
        return false;
    }
    s->len = raw->len;
    s->data = g_byte_array_free(raw, FALSE);
    return true;
}

bool compat_secret_to_memfd(CompatSecret *s, GError **errp)
{
    /* Not close-on-exec: the programs we run read it through /proc. */
    int fd = memfd_create("qtpm-secret", 0);

    if (fd < 0) {
        g_set_error(errp, COMPAT_ERROR, 0, "cannot create a memory file for the "
                    "key: %s", g_strerror(errno));
        return false;
    }
    for (size_t off = 0; off < s->len;) {
        ssize_t n = write(fd, s->data + off, s->len - off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_set_error(errp, COMPAT_ERROR, 0, "cannot write the key to a memory "
                        "file: %s", g_strerror(errno));
            close(fd);
            return false;
        }
        off += n;
    }
    s->memfd = fd;
    s->path = g_strdup_printf("/proc/self/fd/%d", fd);
    return true;
}

void compat_secret_clear(CompatSecret *s)
{
    if (s->data) {
        explicit_bzero(s->data, s->len);
        g_free(s->data);
    }
    if (s->memfd >= 0) {
        close(s->memfd);
    }
    g_free(s->path);
    memset(s, 0, sizeof(*s));
    s->memfd = -1;
}

char *compat_find_program(const char *name)
{
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *dir = exe ? g_path_get_dirname(exe) : NULL;

    if (dir && !strcmp(dir, QTPM_COMPAT_BUILD_DIR "/swtpm-compat")) {
        return g_build_filename(QTPM_COMPAT_BUILD_DIR, name, NULL);
    }
    return g_build_filename(QTPM_COMPAT_BINDIR, name, NULL);
}

void compat_set_logfile(const char *path)
{
    g_free(compat_logfile);
    compat_logfile = g_strdup(path);
}

static void log_line(const char *line)
{
    FILE *f;

    if (!compat_logfile) {
        return;
    }
    f = fopen(compat_logfile, "a");
    if (f) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
}

/* @msg as one line of the log file, after the program's name. */
static void log_msg(const char *msg)
{
    g_autofree char *line = g_strdup_printf("%s: %s", error_get_progname(), msg);

    log_line(line);
}

void compat_log(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    log_msg(msg);
}

void compat_fail(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_report("%s", msg);
    log_msg(msg);
}

bool compat_runas(const char *user, GError **errp)
{
    struct passwd *pw = getpwnam(user);

    if (!pw) {
        guint64 uid;

        if (g_ascii_string_to_unsigned(user, 10, 0, UINT32_MAX, &uid, NULL)) {
            pw = getpwuid((uid_t)uid);
        }
    }
    if (!pw) {
        g_set_error(errp, COMPAT_ERROR, 0, "--runas: no user '%s'", user);
        return false;
    }
    if (pw->pw_uid == getuid() && pw->pw_uid == geteuid()) {
        return true;
    }
    if (geteuid() != 0) {
        g_set_error(errp, COMPAT_ERROR, 0, "--runas %s: only root can change the "
                    "user", user);
        return false;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        g_set_error(errp, COMPAT_ERROR, 0, "--runas %s: cannot switch to the user: "
                    "%s", user, g_strerror(errno));
        return false;
    }
    return true;
}

static void pass_output(const char *text, FILE *to)
{
    g_auto(GStrv) lines = NULL;

    if (!text || !*text) {
        return;
    }
    fputs(text, to);
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (**l) {
            log_line(*l);
        }
    }
}

bool compat_run(char **argv, GError **errp)
{
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status;

    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_LEAVE_DESCRIPTORS_OPEN, NULL, NULL,
                      &out, &err, &status, errp)) {
        return false;
    }
    pass_output(out, stdout);
    pass_output(err, stderr);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_set_error(errp, COMPAT_ERROR, 0, "'%s %s' failed (exit status %d)",
                    argv[0], argv[1] ? argv[1] : "",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return false;
    }
    return true;
}

static const uint32_t ioctl_codes[] = {
    [SWTPM_IOCTL_CAPS] = SWTPM_CMD_GET_CAPABILITY,
    [SWTPM_IOCTL_INIT] = SWTPM_CMD_INIT,
    [SWTPM_IOCTL_STOP] = SWTPM_CMD_STOP,
    [SWTPM_IOCTL_SHUTDOWN] = SWTPM_CMD_SHUTDOWN,
    [SWTPM_IOCTL_ESTABLISHED] = SWTPM_CMD_GET_TPMESTABLISHED,
    [SWTPM_IOCTL_RESET_EST] = SWTPM_CMD_RESET_TPMESTABLISHED,
    [SWTPM_IOCTL_LOCALITY] = SWTPM_CMD_SET_LOCALITY,
    [SWTPM_IOCTL_CANCEL] = SWTPM_CMD_CANCEL_TPM_CMD,
    [SWTPM_IOCTL_VOLATILE] = SWTPM_CMD_STORE_VOLATILE,
    [SWTPM_IOCTL_CONFIG] = SWTPM_CMD_GET_CONFIG,
    [SWTPM_IOCTL_BUFFERSIZE] = SWTPM_CMD_SET_BUFFERSIZE,
    [SWTPM_IOCTL_INFO] = SWTPM_CMD_GET_INFO,
    [SWTPM_IOCTL_LOCK_STORAGE] = SWTPM_CMD_LOCK_STORAGE,
};

uint32_t swtpm_ioctl_code(SwtpmIoctlCmd cmd)
{
    return cmd < ARRAY_SIZE(ioctl_codes) ? ioctl_codes[cmd] : 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

size_t swtpm_ioctl_encode(const SwtpmIoctlOpts *o, uint32_t info_offset,
                          uint8_t *out, size_t out_len)
{
    size_t n = SWTPM_CTRL_CODE_SIZE;

    if (out_len < 24 || swtpm_ioctl_code(o->cmd) == 0) {
        return 0;
    }
    put_be32(out, swtpm_ioctl_code(o->cmd));
    switch (o->cmd) {
    case SWTPM_IOCTL_INIT:
        /* swtpm_ioctl -i drops a stored volatile state, as swtpm's does. */
        put_be32(out + n, SWTPM_INIT_FLAG_DELETE_VOLATILE);
        n += 4;
        break;
    case SWTPM_IOCTL_RESET_EST:
    case SWTPM_IOCTL_LOCALITY:
        out[n++] = (uint8_t)o->arg;
        break;
    case SWTPM_IOCTL_BUFFERSIZE:
    case SWTPM_IOCTL_LOCK_STORAGE:
        put_be32(out + n, o->arg);
        n += 4;
        break;
    case SWTPM_IOCTL_INFO:
        put_be32(out + n, (uint32_t)(o->info_flags >> 32));
        put_be32(out + n + 4, (uint32_t)o->info_flags);
        put_be32(out + n + 8, info_offset);
        put_be32(out + n + 12, 0);
        n += 16;
        break;
    default:
        break;
    }
    return n;
}

size_t swtpm_ioctl_answer_size(SwtpmIoctlCmd cmd)
{
    switch (cmd) {
    case SWTPM_IOCTL_CAPS:
    case SWTPM_IOCTL_ESTABLISHED:
    case SWTPM_IOCTL_CONFIG:
        return 8;
    case SWTPM_IOCTL_BUFFERSIZE:
        return 16;
    case SWTPM_IOCTL_INFO:
        return SWTPM_GET_INFO_RESP_HDR_SIZE;
    case SWTPM_IOCTL_NONE:
        return 0;
    default:
        return 4;
    }
}
