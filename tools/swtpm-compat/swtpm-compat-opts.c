/*
 * Command lines of the swtpm front doors: pure parsers and the argument
 * vectors they translate into. Nothing here opens a file or runs a
 * program, so tests/unit/test-swtpm-compat.c covers every option.
 */
#include "qemu/osdep.h"

#include "qemu/error-report.h"
#include "swtpm-compat.h"

#define COMPAT_ERROR g_quark_from_static_string("swtpm-compat-error")

typedef enum OptArg {
    OPT_NONE,
    OPT_REQUIRED,
} OptArg;

/*
 * One option of a front door. @refused, when set, is why qtpm cannot honour
 * it: the option is recognised and refused with that sentence.
 */
typedef struct CompatOpt {
    const char *name;       /* without dashes */
    char short_name;        /* 0: none */
    OptArg arg;
    int id;
    const char *refused;
} CompatOpt;

static void compat_error(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void compat_error(GError **errp, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* An argument quoted back may hold a newline: the error stays one line. */
    for (char *c = msg; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *c = '?';
        }
    }
    g_set_error_literal(errp, COMPAT_ERROR, 0, msg);
}

/*
 * The next option of @argv at *@i: long ("--name", "--name=value"), short
 * ("-x", "-x value") or, with @long_only (swtpm_ioctl's getopt_long_only),
 * "-name". Sets *@value for an option that takes one.
 */
static const CompatOpt *next_opt(const CompatOpt *table, bool long_only,
                                 int argc, char **argv, int *i,
                                 const char **value, GError **errp)
{
    const char *a = argv[*i];
    g_autofree char *name = NULL;
    const char *inline_value = NULL;
    const CompatOpt *o = NULL;

    *value = NULL;
    if (a[0] != '-' || a[1] == '\0') {
        compat_error(errp, "'%s': unexpected argument (see --help)", a);
        return NULL;
    }
    if (a[1] == '-' || long_only) {
        const char *n = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(n, '=');

        name = eq ? g_strndup(n, eq - n) : g_strdup(n);
        inline_value = eq ? eq + 1 : NULL;
        for (const CompatOpt *t = table; t->name; t++) {
            if (!strcmp(t->name, name)) {
                o = t;
                break;
            }
        }
    }
    if (!o && a[1] != '-' && a[2] == '\0') {
        for (const CompatOpt *t = table; t->name; t++) {
            if (t->short_name == a[1]) {
                o = t;
                break;
            }
        }
    }
    if (!o) {
        compat_error(errp, "%s: unknown option (see --help)", a);
        return NULL;
    }
    if (o->arg == OPT_NONE && inline_value) {
        compat_error(errp, "--%s takes no value", o->name);
        return NULL;
    }
    if (o->arg == OPT_REQUIRED && !inline_value) {
        if (*i + 1 >= argc) {
            compat_error(errp, "--%s needs a value", o->name);
            return NULL;
        }
        inline_value = argv[++*i];
    }
    if (o->refused) {
        compat_error(errp, "--%s: %s", o->name, o->refused);
        return NULL;
    }
    *value = inline_value;
    return o;
}

/* swtpm's "key=value,key,..." parameters. */
typedef struct Param {
    char *key;
    char *value;            /* NULL for a bare key */
} Param;

static void param_free(gpointer p)
{
    Param *x = p;

    g_free(x->key);
    g_free(x->value);
    g_free(x);
}

/*
 * Splits @value into parameters; each must be one of @known (a
 * NULL-terminated list) and appear once.
 */
static GPtrArray *parse_params(const char *opt, const char *value,
                               const char *const *known, GError **errp)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(param_free);
    g_auto(GStrv) parts = g_strsplit(value, ",", -1);

    for (char **p = parts; *p; p++) {
        const char *eq = strchr(*p, '=');
        g_autofree char *key = eq ? g_strndup(*p, eq - *p) : g_strdup(*p);
        bool ok = false;
        Param *x;

        if (!**p) {
            compat_error(errp, "--%s: empty parameter in '%s'", opt, value);
            return NULL;
        }
        for (const char *const *k = known; *k; k++) {
            ok |= !strcmp(*k, key);
        }
        if (!ok) {
            compat_error(errp, "--%s: unknown parameter '%s'", opt, key);
            return NULL;
        }
        for (guint j = 0; j < out->len; j++) {
            if (!strcmp(((Param *)out->pdata[j])->key, key)) {
                compat_error(errp, "--%s: parameter '%s' given twice", opt, key);
                return NULL;
            }
        }
        x = g_new0(Param, 1);
        x->key = g_steal_pointer(&key);
        x->value = eq ? g_strdup(eq + 1) : NULL;
        g_ptr_array_add(out, x);
    }
    return g_steal_pointer(&out);
}

static const Param *param_get(GPtrArray *params, const char *key)
{
    for (guint j = 0; j < params->len; j++) {
        Param *x = params->pdata[j];

        if (!strcmp(x->key, key)) {
            return x;
        }
    }
    return NULL;
}

/* The value of @key, which must have one; NULL when absent. */
static bool param_value(const char *opt, GPtrArray *params, const char *key,
                        const char **out, GError **errp)
{
    const Param *x = param_get(params, key);

    *out = NULL;
    if (!x) {
        return true;
    }
    if (!x->value || !*x->value) {
        compat_error(errp, "--%s: parameter '%s' needs a value", opt, key);
        return false;
    }
    *out = x->value;
    return true;
}

static bool parse_fd(const char *opt, const char *key, const char *s, int *fd,
                     GError **errp)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(s, 10, 0, INT_MAX, &v, NULL)) {
        compat_error(errp, "--%s: %s='%s' is not a file descriptor", opt, key, s);
        return false;
    }
    *fd = (int)v;
    return true;
}

static bool check_octal(const char *opt, const char *key, const char *s,
                        GError **errp)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(s, 8, 0, 07777, &v, NULL)) {
        compat_error(errp, "--%s: %s='%s' is not an octal file mode", opt, key, s);
        return false;
    }
    return true;
}

static bool check_port(const char *opt, const char *s, GError **errp)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(s, 10, 1, 65535, &v, NULL)) {
        compat_error(errp, "--%s: port='%s' is not a TCP port", opt, s);
        return false;
    }
    return true;
}

static bool parse_bool(const char *opt, const char *key, const char *s, bool *out,
                       GError **errp)
{
    if (!s || !strcmp(s, "true")) {
        *out = true;
    } else if (!strcmp(s, "false")) {
        *out = false;
    } else {
        compat_error(errp, "--%s: %s='%s' is neither true nor false", opt, key, s);
        return false;
    }
    return true;
}

static bool set_once(const char *opt, char **field, const char *value,
                     GError **errp)
{
    if (*field) {
        compat_error(errp, "--%s given twice", opt);
        return false;
    }
    *field = g_strdup(value);
    return true;
}

/*
 * --key / --migration-key: file=|fd=|pwdfile=|pwdfd=, format=, mode=,
 * remove=, kdf=. Every cipher mode is accepted because qtpm's store
 * encrypts with AES-256-GCM whatever swtpm would have used; a raw key must
 * then be a 256-bit one, which the front door checks once it has the bytes.
 */
static bool parse_key(const char *opt, const char *value, SwtpmKeySpec *k,
                      GError **errp)
{
    static const char *const known[] = {
        "file", "fd", "pwdfile", "pwdfd", "format", "mode", "remove", "kdf", NULL
    };
    g_autoptr(GPtrArray) p = NULL;
    const char *file, *fd, *pwdfile, *pwdfd, *format, *mode, *kdf;
    int sources;

    if (k->kind != SWTPM_KEY_NONE) {
        compat_error(errp, "--%s given twice", opt);
        return false;
    }
    p = parse_params(opt, value, known, errp);
    if (!p || !param_value(opt, p, "file", &file, errp) ||
        !param_value(opt, p, "fd", &fd, errp) ||
        !param_value(opt, p, "pwdfile", &pwdfile, errp) ||
        !param_value(opt, p, "pwdfd", &pwdfd, errp) ||
        !param_value(opt, p, "format", &format, errp) ||
        !param_value(opt, p, "mode", &mode, errp) ||
        !param_value(opt, p, "kdf", &kdf, errp)) {
        return false;
    }
    sources = !!file + !!fd + !!pwdfile + !!pwdfd;
    if (sources != 1) {
        compat_error(errp, "--%s needs exactly one of file=, fd=, pwdfile=, pwdfd=",
                     opt);
        return false;
    }
    k->fd = -1;
    k->kind = (file || fd) ? SWTPM_KEY_RAW : SWTPM_KEY_PASSPHRASE;
    if ((fd && !parse_fd(opt, "fd", fd, &k->fd, errp)) ||
        (pwdfd && !parse_fd(opt, "pwdfd", pwdfd, &k->fd, errp))) {
        return false;
    }
    k->file = g_strdup(file ? file : pwdfile);
    if (format) {
        if (k->kind != SWTPM_KEY_RAW) {
            compat_error(errp, "--%s: format= applies to file= and fd= keys only",
                         opt);
            return false;
        }
        if (!strcmp(format, "hex")) {
            k->hex = true;
        } else if (strcmp(format, "binary")) {
            compat_error(errp, "--%s: format='%s' is neither hex nor binary",
                         opt, format);
            return false;
        }
    }
    if (mode && strcmp(mode, "aes-cbc") && strcmp(mode, "aes-128-cbc") &&
        strcmp(mode, "aes-256-cbc")) {
        compat_error(errp, "--%s: mode='%s' is not one of aes-cbc, aes-128-cbc, "
                     "aes-256-cbc", opt, mode);
        return false;
    }
    if (mode && k->kind == SWTPM_KEY_RAW && strcmp(mode, "aes-256-cbc")) {
        compat_error(errp, "--%s: mode=%s takes a 128-bit key, but qtpm's store "
                     "needs a 256-bit key (use mode=aes-256-cbc)", opt, mode);
        return false;
    }
    if (kdf) {
        if (k->kind != SWTPM_KEY_PASSPHRASE) {
            compat_error(errp, "--%s: kdf= applies to pwdfile= and pwdfd= only", opt);
            return false;
        }
        if (strcmp(kdf, "pbkdf2")) {
            compat_error(errp, "--%s: kdf=%s is not supported; qtpm derives keys "
                         "from passphrases with PBKDF2 only (kdf=pbkdf2)", opt, kdf);
            return false;
        }
    }
    if (param_get(p, "remove")) {
        if (!k->file) {
            compat_error(errp, "--%s: remove= applies to a key read from a file", opt);
            return false;
        }
        if (!parse_bool(opt, "remove", param_get(p, "remove")->value, &k->remove,
                        errp)) {
            return false;
        }
    }
    return true;
}

static void key_clear(SwtpmKeySpec *k)
{
    g_free(k->file);
    memset(k, 0, sizeof(*k));
    k->fd = -1;
}

/* "unixio" or "tcp" with their parameters, for --ctrl and --server. */
static bool parse_channel(const char *opt, const char *value, bool is_ctrl,
                          SwtpmSockKind *kind, char **path, char **mode,
                          char **uid, char **gid, char **host, char **port,
                          GError **errp)
{
    static const char *const ctrl_known[] = {
        "type", "path", "mode", "uid", "gid", "port", "bindaddr", "ifname",
        "fd", "clientfd", "terminate", NULL
    };
    static const char *const server_known[] = {
        "type", "path", "mode", "uid", "gid", "port", "bindaddr", "ifname",
        "fd", "disconnect", NULL
    };
    g_autoptr(GPtrArray) p = NULL;
    const char *type, *v;

    if (*kind != SWTPM_SOCK_NONE) {
        compat_error(errp, "--%s given twice", opt);
        return false;
    }
    p = parse_params(opt, value, is_ctrl ? ctrl_known : server_known, errp);
    if (!p || !param_value(opt, p, "type", &type, errp)) {
        return false;
    }
    if (!type) {
        compat_error(errp, "--%s: parameter 'type' is missing (unixio or tcp)", opt);
        return false;
    }
    for (const char *const *r = (const char *const[]){
             "fd", "clientfd", "terminate", "disconnect", "ifname", NULL }; *r; r++) {
        if (param_get(p, *r)) {
            compat_error(errp, "--%s: '%s' is not supported by qtpm's export "
                         "(it listens on a path or a TCP port it opens itself)",
                         opt, *r);
            return false;
        }
    }
    if (!strcmp(type, "unixio")) {
        *kind = SWTPM_SOCK_UNIX;
        if (param_get(p, "port") || param_get(p, "bindaddr")) {
            compat_error(errp, "--%s: port= and bindaddr= belong to type=tcp", opt);
            return false;
        }
        if (!param_value(opt, p, "path", &v, errp)) {
            return false;
        }
        if (!v) {
            compat_error(errp, "--%s: type=unixio needs path=", opt);
            return false;
        }
        *path = g_strdup(v);
        if (!is_ctrl && (param_get(p, "mode") || param_get(p, "uid") ||
                         param_get(p, "gid"))) {
            compat_error(errp, "--%s: mode=, uid= and gid= are supported on the "
                         "--ctrl socket only", opt);
            return false;
        }
        if (!param_value(opt, p, "mode", &v, errp) ||
            (v && !check_octal(opt, "mode", v, errp))) {
            return false;
        }
        if (mode) {
            *mode = g_strdup(v);
        }
        if (!param_value(opt, p, "uid", &v, errp)) {
            return false;
        }
        if (uid) {
            *uid = g_strdup(v);
        }
        if (!param_value(opt, p, "gid", &v, errp)) {
            return false;
        }
        if (gid) {
            *gid = g_strdup(v);
        }
        return true;
    }
    if (!strcmp(type, "tcp")) {
        *kind = SWTPM_SOCK_TCP;
        for (const char *const *r = (const char *const[]){
                 "path", "mode", "uid", "gid", NULL }; *r; r++) {
            if (param_get(p, *r)) {
                compat_error(errp, "--%s: '%s' belongs to type=unixio", opt, *r);
                return false;
            }
        }
        if (!param_value(opt, p, "port", &v, errp)) {
            return false;
        }
        if (!v) {
            compat_error(errp, "--%s: type=tcp needs port=", opt);
            return false;
        }
        if (!check_port(opt, v, errp)) {
            return false;
        }
        *port = g_strdup(v);
        if (!param_value(opt, p, "bindaddr", &v, errp)) {
            return false;
        }
        *host = g_strdup(v ? v : "127.0.0.1");
        return true;
    }
    compat_error(errp, "--%s: type='%s' is not supported (unixio or tcp)", opt, type);
    return false;
}

/* --tpmstate dir=D,mode=M | backend-uri=dir://D|file://P,mode=M */
static bool parse_tpmstate(const char *value, SwtpmSocketOpts *o, GError **errp)
{
    static const char *const known[] = {
        "dir", "mode", "backend-uri", "lock", NULL
    };
    g_autoptr(GPtrArray) p = NULL;
    const char *dir, *mode, *uri;

    if (o->state_dir || o->state_file) {
        compat_error(errp, "--tpmstate given twice");
        return false;
    }
    p = parse_params("tpmstate", value, known, errp);
    if (!p || !param_value("tpmstate", p, "dir", &dir, errp) ||
        !param_value("tpmstate", p, "mode", &mode, errp) ||
        !param_value("tpmstate", p, "backend-uri", &uri, errp)) {
        return false;
    }
    if (param_get(p, "lock")) {
        compat_error(errp, "--tpmstate: 'lock' is not needed: qtpm always locks "
                     "its image (OFD locks, as QEMU takes them)");
        return false;
    }
    if (!!dir + !!uri != 1) {
        compat_error(errp, "--tpmstate needs exactly one of dir= and backend-uri=");
        return false;
    }
    if (mode && !check_octal("tpmstate", "mode", mode, errp)) {
        return false;
    }
    if (uri) {
        if (g_str_has_prefix(uri, "dir://") && uri[6]) {
            dir = uri + 6;
        } else if (g_str_has_prefix(uri, "file://") && uri[7]) {
            o->state_file = g_strdup(uri + 7);
        } else {
            compat_error(errp, "--tpmstate: backend-uri='%s' is neither dir://PATH "
                         "nor file://PATH", uri);
            return false;
        }
    }
    if (dir) {
        o->state_dir = g_strdup(dir);
    }
    o->state_mode = g_strdup(mode);
    return true;
}

/* --log file=F|fd=N,level=N,truncate */
static bool parse_log(const char *value, SwtpmSocketOpts *o, GError **errp)
{
    static const char *const known[] = {
        "file", "fd", "level", "prefix", "truncate", NULL
    };
    g_autoptr(GPtrArray) p = NULL;
    const char *file, *fd, *level;
    guint64 lv;
    int n;

    if (o->log_file || o->log_off) {
        compat_error(errp, "--log given twice");
        return false;
    }
    p = parse_params("log", value, known, errp);
    if (!p || !param_value("log", p, "file", &file, errp) ||
        !param_value("log", p, "fd", &fd, errp) ||
        !param_value("log", p, "level", &level, errp)) {
        return false;
    }
    if (param_get(p, "prefix")) {
        compat_error(errp, "--log: 'prefix' is not supported; qtpm's log lines "
                     "have a fixed form");
        return false;
    }
    if (!!file + !!fd != 1) {
        compat_error(errp, "--log needs exactly one of file= and fd=");
        return false;
    }
    if (level) {
        if (!g_ascii_string_to_unsigned(level, 10, 0, 1000, &lv, NULL)) {
            compat_error(errp, "--log: level='%s' is not a number", level);
            return false;
        }
        o->log_level = (int)lv;
    } else {
        o->log_level = 1;
    }
    if (param_get(p, "truncate") && param_get(p, "truncate")->value) {
        compat_error(errp, "--log: 'truncate' takes no value");
        return false;
    }
    o->log_truncate = param_get(p, "truncate") != NULL;
    if (fd) {
        if (!parse_fd("log", "fd", fd, &n, errp)) {
            return false;
        }
        o->log_file = g_strdup_printf("/proc/self/fd/%d", n);
    } else if (!strcmp(file, "-")) {
        o->log_off = true;
    } else {
        o->log_file = g_strdup(file);
    }
    return true;
}

static bool parse_pid(const char *value, SwtpmSocketOpts *o, GError **errp)
{
    static const char *const known[] = { "file", "fd", NULL };
    g_autoptr(GPtrArray) p = parse_params("pid", value, known, errp);
    const char *file;

    if (!p || !param_value("pid", p, "file", &file, errp)) {
        return false;
    }
    if (param_get(p, "fd")) {
        compat_error(errp, "--pid: fd= is not supported; qtpm writes and removes "
                     "its pid file by name (use file=)");
        return false;
    }
    if (!file) {
        compat_error(errp, "--pid needs file=");
        return false;
    }
    return set_once("pid", &o->pid_file, file, errp);
}

static bool parse_flags(const char *value, GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(value, ",", -1);

    for (char **f = parts; *f; f++) {
        if (!strcmp(*f, "not-need-init") || g_str_has_prefix(*f, "startup-")) {
            compat_error(errp, "--flags: '%s' is not supported: qtpm's export starts "
                         "the TPM only when the client sends CMD_INIT, as QEMU does",
                         *f);
        } else if (!strcmp(*f, "disable-auto-shutdown")) {
            compat_error(errp, "--flags: 'disable-auto-shutdown' is not supported: "
                         "qtpm never sends TPM2_Shutdown on its own");
        } else {
            compat_error(errp, "--flags: unknown flag '%s'", *f);
        }
        return false;
    }
    compat_error(errp, "--flags needs a value");
    return false;
}

/*
 * --migration [incoming][,release-lock-outgoing]: the hand-over of an image
 * on shared storage, which qtpm's export does with its own options of the
 * same names (docs/swtpm-protocol.md, "Shared storage").
 */
static bool parse_migration(const char *value, SwtpmSocketOpts *o, GError **errp)
{
    static const char *const known[] = {
        "incoming", "release-lock-outgoing", NULL
    };
    g_autoptr(GPtrArray) p = NULL;

    if (o->mig_incoming || o->mig_release_lock_outgoing) {
        compat_error(errp, "--migration given twice");
        return false;
    }
    p = parse_params("migration", value, known, errp);
    if (!p) {
        return false;
    }
    for (guint j = 0; j < p->len; j++) {
        const Param *x = p->pdata[j];

        if (x->value) {
            compat_error(errp, "--migration: '%s' takes no value", x->key);
            return false;
        }
    }
    o->mig_incoming = param_get(p, "incoming") != NULL;
    o->mig_release_lock_outgoing = param_get(p, "release-lock-outgoing") != NULL;
    return true;
}

/* swtpm's options, "swtpm socket" first. */
enum {
    SO_DAEMON = 1, SO_HELP, SO_VERSION, SO_SERVER, SO_RUNAS, SO_TERMINATE,
    SO_LOG, SO_KEY, SO_MIGKEY, SO_PID, SO_TPMSTATE, SO_CTRL, SO_FLAGS, SO_TPM2,
    SO_MIGRATION, SO_PRINTCAPS,
};

static const CompatOpt socket_opts[] = {
    { "daemon", 'd', OPT_NONE, SO_DAEMON, NULL },
    { "help", 'h', OPT_NONE, SO_HELP, NULL },
    { "version", 0, OPT_NONE, SO_VERSION, NULL },
    { "server", 0, OPT_REQUIRED, SO_SERVER, NULL },
    { "runas", 'r', OPT_REQUIRED, SO_RUNAS, NULL },
    { "terminate", 't', OPT_NONE, SO_TERMINATE, NULL },
    { "log", 0, OPT_REQUIRED, SO_LOG, NULL },
    { "key", 0, OPT_REQUIRED, SO_KEY, NULL },
    { "migration-key", 0, OPT_REQUIRED, SO_MIGKEY, NULL },
    { "pid", 0, OPT_REQUIRED, SO_PID, NULL },
    { "tpmstate", 0, OPT_REQUIRED, SO_TPMSTATE, NULL },
    { "ctrl", 0, OPT_REQUIRED, SO_CTRL, NULL },
    { "flags", 0, OPT_REQUIRED, SO_FLAGS, NULL },
    { "tpm2", 0, OPT_NONE, SO_TPM2, NULL },
    { "migration", 0, OPT_REQUIRED, SO_MIGRATION, NULL },
    { "print-capabilities", 0, OPT_NONE, SO_PRINTCAPS, NULL },
    { "port", 'p', OPT_REQUIRED, 0,
      "is not supported; give the data channel with --server type=tcp,port=" },
    { "fd", 'f', OPT_REQUIRED, 0,
      "is not supported; qtpm opens its sockets itself (--server, --ctrl)" },
    { "chroot", 'R', OPT_REQUIRED, 0, "is not supported by qtpm" },
    { "locality", 0, OPT_REQUIRED, 0,
      "is not supported: qtpm's export takes the locality QEMU sets and refuses "
      "none" },
    { "seccomp", 0, OPT_REQUIRED, 0, "is not supported by qtpm" },
    { "print-states", 0, OPT_NONE, 0,
      "is not supported: qtpm keeps its state in one image (see qtpm-img info)" },
    { "profile", 0, OPT_REQUIRED, 0, "is not supported by qtpm's libtpms backend" },
    { "print-profiles", 0, OPT_NONE, 0, "is not supported by qtpm" },
    { "print-info", 0, OPT_REQUIRED, 0, "is not supported by qtpm" },
    { "pcap", 0, OPT_REQUIRED, 0, "is not supported by qtpm" },
    { "vtpm-proxy", 0, OPT_NONE, 0, "is not supported by qtpm" },
    { NULL },
};

static bool swtpm_socket_parse_all(int argc, char **argv, SwtpmSocketOpts *o,
                        GError **errp)
{
    int i = 1;

    memset(o, 0, sizeof(*o));
    o->key.fd = o->migration_key.fd = -1;
    if (argc < 2 || strcmp(argv[1], "socket")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            o->help = true;
            return true;
        }
        if (argc >= 2 && !strcmp(argv[1], "--version")) {
            o->version = true;
            return true;
        }
        compat_error(errp, "'%s': only the 'socket' interface is supported "
                     "(chardev and cuse are not)", argc >= 2 ? argv[1] : "");
        return false;
    }
    for (i = 2; i < argc; i++) {
        const char *v;
        const CompatOpt *opt = next_opt(socket_opts, false, argc, argv, &i, &v, errp);
        bool ok = true;

        if (!opt) {
            return false;
        }
        switch (opt->id) {
        case SO_DAEMON:
            o->daemon = true;
            break;
        case SO_HELP:
            o->help = true;
            break;
        case SO_VERSION:
            o->version = true;
            break;
        case SO_SERVER:
            ok = parse_channel("server", v, false, &o->server_kind, &o->server_path,
                               NULL, NULL, NULL, &o->server_host, &o->server_port,
                               errp);
            break;
        case SO_RUNAS:
            ok = set_once("runas", &o->runas, v, errp);
            break;
        case SO_TERMINATE:
            o->terminate = true;
            break;
        case SO_LOG:
            ok = parse_log(v, o, errp);
            break;
        case SO_KEY:
            ok = parse_key("key", v, &o->key, errp);
            break;
        case SO_MIGKEY:
            ok = parse_key("migration-key", v, &o->migration_key, errp);
            break;
        case SO_PID:
            ok = parse_pid(v, o, errp);
            break;
        case SO_TPMSTATE:
            ok = parse_tpmstate(v, o, errp);
            break;
        case SO_CTRL:
            ok = parse_channel("ctrl", v, true, &o->ctrl_kind, &o->ctrl_path,
                               &o->ctrl_mode, &o->ctrl_uid, &o->ctrl_gid,
                               &o->ctrl_host, &o->ctrl_port, errp);
            break;
        case SO_FLAGS:
            ok = parse_flags(v, errp);
            break;
        case SO_TPM2:
            o->tpm2 = true;
            break;
        case SO_MIGRATION:
            ok = parse_migration(v, o, errp);
            break;
        case SO_PRINTCAPS:
            o->print_capabilities = true;
            break;
        }
        if (!ok) {
            return false;
        }
    }
    if (o->help || o->version || o->print_capabilities) {
        return true;
    }
    if (o->ctrl_kind == SWTPM_SOCK_NONE) {
        compat_error(errp, "--ctrl is required: qtpm's export serves swtpm's "
                     "control channel");
        return false;
    }
    if (!o->state_dir && !o->state_file) {
        compat_error(errp, "--tpmstate is required: qtpm never runs a TPM "
                     "without durable state");
        return false;
    }
    if (o->migration_key.kind != SWTPM_KEY_NONE && o->key.kind == SWTPM_KEY_NONE) {
        compat_error(errp, "--migration-key needs --key with the same key: qtpm "
                     "seals the state it migrates with the state's own key");
        return false;
    }
    return true;
}

void swtpm_socket_opts_clear(SwtpmSocketOpts *o)
{
    g_free(o->ctrl_path);
    g_free(o->ctrl_mode);
    g_free(o->ctrl_uid);
    g_free(o->ctrl_gid);
    g_free(o->ctrl_host);
    g_free(o->ctrl_port);
    g_free(o->server_path);
    g_free(o->server_host);
    g_free(o->server_port);
    g_free(o->state_dir);
    g_free(o->state_file);
    g_free(o->state_mode);
    g_free(o->log_file);
    g_free(o->pid_file);
    g_free(o->runas);
    key_clear(&o->key);
    key_clear(&o->migration_key);
    memset(o, 0, sizeof(*o));
}

/* On failure nothing stays allocated: the caller clears only what parsed. */
bool swtpm_socket_parse(int argc, char **argv, SwtpmSocketOpts *o,
                        GError **errp)
{
    if (!swtpm_socket_parse_all(argc, argv, o, errp)) {
        swtpm_socket_opts_clear(o);
        return false;
    }
    return true;
}

/* swtpm_setup's options. */
enum {
    SE_TPMSTATE = 1, SE_TPM2, SE_CREATEEK, SE_EKCERT, SE_PLATCERT, SE_LOCK,
    SE_VMID, SE_PWDFILE, SE_PWDFD, SE_CIPHER, SE_RUNAS, SE_LOGFILE,
    SE_OVERWRITE, SE_NOT_OVERWRITE, SE_VERSION, SE_PRINTCAPS, SE_HELP,
};

static const CompatOpt setup_opts[] = {
    { "tpm-state", 0, OPT_REQUIRED, SE_TPMSTATE, NULL },
    { "tpmstate", 0, OPT_REQUIRED, SE_TPMSTATE, NULL },
    { "tpm2", 0, OPT_NONE, SE_TPM2, NULL },
    { "createek", 0, OPT_NONE, SE_CREATEEK, NULL },
    { "create-ek-cert", 0, OPT_NONE, SE_EKCERT, NULL },
    { "create-platform-cert", 0, OPT_NONE, SE_PLATCERT, NULL },
    { "lock-nvram", 0, OPT_NONE, SE_LOCK, NULL },
    { "vmid", 0, OPT_REQUIRED, SE_VMID, NULL },
    { "pwdfile", 0, OPT_REQUIRED, SE_PWDFILE, NULL },
    { "pwdfile-fd", 0, OPT_REQUIRED, SE_PWDFD, NULL },
    { "cipher", 0, OPT_REQUIRED, SE_CIPHER, NULL },
    { "runas", 0, OPT_REQUIRED, SE_RUNAS, NULL },
    { "logfile", 0, OPT_REQUIRED, SE_LOGFILE, NULL },
    { "overwrite", 0, OPT_NONE, SE_OVERWRITE, NULL },
    { "not-overwrite", 0, OPT_NONE, SE_NOT_OVERWRITE, NULL },
    { "version", 0, OPT_NONE, SE_VERSION, NULL },
    { "print-capabilities", 0, OPT_NONE, SE_PRINTCAPS, NULL },
    { "help", 'h', OPT_NONE, SE_HELP, NULL },
    { "config", 0, OPT_REQUIRED, 0,
      "is not supported: qtpm makes certificates itself, with the local CA in "
      "QTPM_CA_DIR (docs/swtpm-compat.md), and reads no swtpm_setup.conf" },
    { "create-config-files", 0, OPT_NONE, 0,
      "is not supported: qtpm's swtpm_setup needs no configuration files" },
    { "ecc", 0, OPT_NONE, 0,
      "is not supported: qtpm-img manufacture makes an RSA 2048 and an ECC "
      "NIST P-256 EK from the TCG default templates, with no choice" },
    { "decryption", 0, OPT_NONE, 0,
      "is not supported: the EKs follow the TCG default templates" },
    { "allow-signing", 0, OPT_NONE, 0,
      "is not supported: the EKs follow the TCG default templates" },
    { "pcr-banks", 0, OPT_REQUIRED, 0,
      "is not supported: the TPM keeps libtpms's default PCR banks" },
    { "rsa-keysize", 0, OPT_REQUIRED, 0,
      "is not supported: the RSA EK is RSA 2048 (TCG default template)" },
    { "display", 0, OPT_NONE, 0,
      "is not supported; inspect the image with qtpm-img info" },
    { "reconfigure", 0, OPT_NONE, 0, "is not supported by qtpm" },
    { "keyfile", 0, OPT_REQUIRED, 0,
      "is not supported; give a passphrase with --pwdfile or --pwdfile-fd" },
    { "keyfile-fd", 0, OPT_REQUIRED, 0,
      "is not supported; give a passphrase with --pwdfile or --pwdfile-fd" },
    { "tpm", 0, OPT_REQUIRED, 0,
      "is not supported: qtpm manufactures the TPM itself, without swtpm" },
    { "swtpm_ioctl", 0, OPT_REQUIRED, 0,
      "is not supported: qtpm manufactures the TPM itself, without swtpm" },
    { "create-spk", 0, OPT_NONE, 0, "is not supported by qtpm" },
    { "take-ownership", 0, OPT_NONE, 0, "is not supported by qtpm (TPM 1.2)" },
    { "ownerpass", 0, OPT_REQUIRED, 0, "is not supported by qtpm (TPM 1.2)" },
    { "owner-well-known", 0, OPT_NONE, 0, "is not supported by qtpm (TPM 1.2)" },
    { "srkpass", 0, OPT_REQUIRED, 0, "is not supported by qtpm (TPM 1.2)" },
    { "srk-well-known", 0, OPT_NONE, 0, "is not supported by qtpm (TPM 1.2)" },
    { "write-ek-cert-files", 0, OPT_REQUIRED, 0,
      "is not supported; read the certificates from NV with tpm2_getekcertificate" },
    { "tcsd-system-ps-file", 0, OPT_REQUIRED, 0, "is not supported by qtpm" },
    { "profile", 0, OPT_REQUIRED, 0, "is not supported by qtpm" },
    { "profile-name", 0, OPT_REQUIRED, 0, "is not supported by qtpm" },
    { NULL },
};

/* --tpm-state DIR | dir://DIR | file://PATH */
static bool parse_setup_state(const char *v, SwtpmSetupOpts *o, GError **errp)
{
    if (o->state_dir || o->state_file) {
        compat_error(errp, "--tpm-state given twice");
        return false;
    }
    if (g_str_has_prefix(v, "file://") && v[7]) {
        o->state_file = g_strdup(v + 7);
    } else if (g_str_has_prefix(v, "dir://") && v[6]) {
        o->state_dir = g_strdup(v + 6);
    } else if (strstr(v, "://")) {
        compat_error(errp, "--tpm-state: '%s' is neither a directory, dir://PATH "
                     "nor file://PATH", v);
        return false;
    } else {
        o->state_dir = g_strdup(v);
    }
    return true;
}

static bool swtpm_setup_parse_all(int argc, char **argv, SwtpmSetupOpts *o,
                                  GError **errp)
{
    bool have_cipher = false;

    memset(o, 0, sizeof(*o));
    o->key.fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *v;
        const CompatOpt *opt = next_opt(setup_opts, false, argc, argv, &i, &v, errp);
        bool ok = true;

        if (!opt) {
            return false;
        }
        switch (opt->id) {
        case SE_TPMSTATE:
            ok = parse_setup_state(v, o, errp);
            break;
        case SE_TPM2:
            o->tpm2 = true;
            break;
        case SE_CREATEEK:
            o->createek = true;
            break;
        case SE_EKCERT:
            o->create_ek_cert = true;
            break;
        case SE_PLATCERT:
            o->create_platform_cert = true;
            break;
        case SE_LOCK:
            o->lock_nvram = true;
            break;
        case SE_VMID:
            ok = set_once("vmid", &o->vmid, v, errp);
            break;
        case SE_PWDFILE:
        case SE_PWDFD:
            if (o->key.kind != SWTPM_KEY_NONE) {
                compat_error(errp, "--pwdfile and --pwdfile-fd: give one passphrase");
                return false;
            }
            o->key.kind = SWTPM_KEY_PASSPHRASE;
            if (opt->id == SE_PWDFILE) {
                o->key.file = g_strdup(v);
            } else {
                ok = parse_fd("pwdfile-fd", "fd", v, &o->key.fd, errp);
            }
            break;
        case SE_CIPHER:
            if (strcmp(v, "aes-128-cbc") && strcmp(v, "aes-256-cbc")) {
                compat_error(errp, "--cipher: '%s' is neither aes-128-cbc nor "
                             "aes-256-cbc", v);
                return false;
            }
            have_cipher = true;
            break;
        case SE_RUNAS:
            ok = set_once("runas", &o->runas, v, errp);
            break;
        case SE_LOGFILE:
            ok = set_once("logfile", &o->logfile, v, errp);
            break;
        case SE_OVERWRITE:
            o->overwrite = true;
            break;
        case SE_NOT_OVERWRITE:
            o->not_overwrite = true;
            break;
        case SE_VERSION:
            o->version = true;
            break;
        case SE_PRINTCAPS:
            o->print_capabilities = true;
            break;
        case SE_HELP:
            o->help = true;
            break;
        }
        if (!ok) {
            return false;
        }
    }
    if (o->help || o->version || o->print_capabilities) {
        return true;
    }
    if (!o->state_dir && !o->state_file) {
        compat_error(errp, "--tpm-state is required");
        return false;
    }
    if (o->overwrite && o->not_overwrite) {
        compat_error(errp, "--overwrite and --not-overwrite exclude each other");
        return false;
    }
    if (have_cipher && o->key.kind == SWTPM_KEY_NONE) {
        compat_error(errp, "--cipher needs --pwdfile or --pwdfile-fd");
        return false;
    }
    if (!o->tpm2 && (o->createek || o->create_ek_cert ||
                     o->create_platform_cert || o->lock_nvram)) {
        compat_error(errp, "--createek, --create-ek-cert, --create-platform-cert "
                     "and --lock-nvram are supported for TPM 2.0 only (--tpm2)");
        return false;
    }
    return true;
}

void swtpm_setup_opts_clear(SwtpmSetupOpts *o)
{
    g_free(o->state_dir);
    g_free(o->state_file);
    g_free(o->vmid);
    g_free(o->logfile);
    g_free(o->runas);
    key_clear(&o->key);
    memset(o, 0, sizeof(*o));
}

/* On failure nothing stays allocated: the caller clears only what parsed. */
bool swtpm_setup_parse(int argc, char **argv, SwtpmSetupOpts *o, GError **errp)
{
    if (!swtpm_setup_parse_all(argc, argv, o, errp)) {
        swtpm_setup_opts_clear(o);
        return false;
    }
    return true;
}

/* swtpm_ioctl's options (getopt_long_only: "-c" and "--c" alike). */
enum {
    IO_UNIX = 100, IO_TCP, IO_VERSION, IO_HELP,
};

static const CompatOpt ioctl_opts[] = {
    { "unix", 0, OPT_REQUIRED, IO_UNIX, NULL },
    { "tcp", 0, OPT_REQUIRED, IO_TCP, NULL },
    { "c", 0, OPT_NONE, SWTPM_IOCTL_CAPS, NULL },
    { "i", 0, OPT_NONE, SWTPM_IOCTL_INIT, NULL },
    { "stop", 0, OPT_NONE, SWTPM_IOCTL_STOP, NULL },
    { "s", 0, OPT_NONE, SWTPM_IOCTL_SHUTDOWN, NULL },
    { "e", 0, OPT_NONE, SWTPM_IOCTL_ESTABLISHED, NULL },
    { "r", 0, OPT_REQUIRED, SWTPM_IOCTL_RESET_EST, NULL },
    { "v", 0, OPT_NONE, SWTPM_IOCTL_VOLATILE, NULL },
    { "C", 0, OPT_NONE, SWTPM_IOCTL_CANCEL, NULL },
    { "l", 0, OPT_REQUIRED, SWTPM_IOCTL_LOCALITY, NULL },
    { "g", 0, OPT_NONE, SWTPM_IOCTL_CONFIG, NULL },
    { "b", 0, OPT_REQUIRED, SWTPM_IOCTL_BUFFERSIZE, NULL },
    { "info", 0, OPT_REQUIRED, SWTPM_IOCTL_INFO, NULL },
    { "lock-storage", 0, OPT_REQUIRED, SWTPM_IOCTL_LOCK_STORAGE, NULL },
    { "version", 0, OPT_NONE, IO_VERSION, NULL },
    { "help", 0, OPT_NONE, IO_HELP, NULL },
    { "tpm-device", 0, OPT_REQUIRED, 0,
      "is not supported: qtpm has no CUSE device (use --unix or --tcp)" },
    { "h", 0, OPT_REQUIRED, 0,
      "is not supported; QEMU's TIS measures at locality 4 through the data "
      "channel" },
    { "save", 0, OPT_REQUIRED, 0,
      "is not supported; copy the state with qtpm-img export or dump" },
    { "load", 0, OPT_REQUIRED, 0,
      "is not supported; load state with qtpm-img import" },
    { NULL },
};

/* Decimal, or hexadecimal with 0x, as swtpm_ioctl's strtoul(..., 0). */
static bool parse_number(const char *s, guint64 max, guint64 *out)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        return s[2] && g_ascii_string_to_unsigned(s + 2, 16, 0, max, out, NULL);
    }
    return g_ascii_string_to_unsigned(s, 10, 0, max, out, NULL);
}

static bool parse_u32(const char *opt, const char *s, uint32_t max, uint32_t *out,
                      GError **errp)
{
    guint64 v;

    if (!parse_number(s, max, &v)) {
        compat_error(errp, "-%s: '%s' is not a number from 0 to %u", opt, s, max);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool swtpm_ioctl_parse_all(int argc, char **argv, SwtpmIoctlOpts *o,
                                  GError **errp)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *v;
        const CompatOpt *opt;

        if (argv[i][0] != '-') {
            compat_error(errp, "'%s': qtpm has no CUSE device (use --unix or --tcp)",
                         argv[i]);
            return false;
        }
        opt = next_opt(ioctl_opts, true, argc, argv, &i, &v, errp);
        if (!opt) {
            return false;
        }
        switch (opt->id) {
        case IO_UNIX:
            if (o->unix_path || o->tcp) {
                compat_error(errp, "--unix and --tcp: give one control channel");
                return false;
            }
            o->unix_path = g_strdup(v);
            continue;
        case IO_TCP:
            if (o->unix_path || o->tcp) {
                compat_error(errp, "--unix and --tcp: give one control channel");
                return false;
            }
            o->tcp = g_strdup(v);
            continue;
        case IO_VERSION:
            o->version = true;
            continue;
        case IO_HELP:
            o->help = true;
            continue;
        }
        if (o->cmd != SWTPM_IOCTL_NONE) {
            compat_error(errp, "only one command may be given");
            return false;
        }
        o->cmd = opt->id;
        switch (o->cmd) {
        case SWTPM_IOCTL_RESET_EST:
        case SWTPM_IOCTL_LOCALITY:
            if (!parse_u32(opt->name, v, 4, &o->arg, errp)) {
                return false;
            }
            break;
        case SWTPM_IOCTL_BUFFERSIZE:
            if (!parse_u32(opt->name, v, UINT32_MAX, &o->arg, errp)) {
                return false;
            }
            break;
        case SWTPM_IOCTL_LOCK_STORAGE:
            if (!parse_u32(opt->name, v, UINT32_MAX, &o->arg, errp)) {
                return false;
            }
            break;
        case SWTPM_IOCTL_INFO: {
            guint64 f;

            if (!parse_number(v, UINT64_MAX, &f)) {
                compat_error(errp, "--info: '%s' is not a number", v);
                return false;
            }
            o->info_flags = f;
            break;
        }
        default:
            break;
        }
    }
    if (o->help || o->version) {
        return true;
    }
    if (o->cmd == SWTPM_IOCTL_NONE) {
        compat_error(errp, "no command given (see --help)");
        return false;
    }
    if (!o->unix_path && !o->tcp) {
        compat_error(errp, "no control channel given (--unix PATH or --tcp "
                     "HOST:PORT)");
        return false;
    }
    return true;
}

void swtpm_ioctl_opts_clear(SwtpmIoctlOpts *o)
{
    g_free(o->unix_path);
    g_free(o->tcp);
    memset(o, 0, sizeof(*o));
}

/* On failure nothing stays allocated: the caller clears only what parsed. */
bool swtpm_ioctl_parse(int argc, char **argv, SwtpmIoctlOpts *o, GError **errp)
{
    if (!swtpm_ioctl_parse_all(argc, argv, o, errp)) {
        swtpm_ioctl_opts_clear(o);
        return false;
    }
    return true;
}

char *swtpm_compat_image_path(const char *state_dir, const char *state_file,
                              bool tpm2)
{
    if (state_file) {
        return g_strdup(state_file);
    }
    return g_build_filename(state_dir, tpm2 ? "tpm2-00.qcow2" : "tpm-00.qcow2",
                            NULL);
}

char *swtpm_compat_escape_commas(const char *s)
{
    GString *out = g_string_new(NULL);

    for (; *s; s++) {
        if (*s == ',') {
            g_string_append_c(out, ',');
        }
        g_string_append_c(out, *s);
    }
    return g_string_free(out, FALSE);
}

static void add_sock(GString *s, const char *key, SwtpmSockKind kind,
                     const char *path, const char *host, const char *port)
{
    g_autofree char *p = NULL;

    if (kind == SWTPM_SOCK_UNIX) {
        p = swtpm_compat_escape_commas(path);
        g_string_append_printf(s, ",%s=unix:%s", key, p);
    } else {
        p = swtpm_compat_escape_commas(host);
        g_string_append_printf(s, strchr(host, ':') ? ",%s=tcp:[%s]:%s"
                                                    : ",%s=tcp:%s:%s",
                               key, p, port);
    }
}

char **swtpm_socket_qtpm_argv(const SwtpmSocketOpts *o, const char *qtpm,
                              const char *image, const char *key_path)
{
    GPtrArray *a = g_ptr_array_new();
    g_autofree char *img = swtpm_compat_escape_commas(image);
    GString *tpmdev = g_string_new("libtpms,id=tpm0,nvram=drive0");
    GString *export = g_string_new("swtpm,id=swtpm0,tpmdev=tpm0");

    g_ptr_array_add(a, g_strdup(qtpm));
    g_ptr_array_add(a, g_strdup("-drive"));
    g_ptr_array_add(a, g_strdup_printf("file=%s,if=none,id=drive0,format=qcow2",
                                       img));
    g_string_append_printf(tpmdev, ",version=%s", o->tpm2 ? "2.0" : "1.2");
    if (o->key.kind != SWTPM_KEY_NONE) {
        g_autofree char *kp = swtpm_compat_escape_commas(key_path);

        g_ptr_array_add(a, g_strdup("-object"));
        g_ptr_array_add(a, g_strdup_printf("secret,id=key0,file=%s,format=raw",
                                           kp));
        g_string_append(tpmdev, o->key.kind == SWTPM_KEY_RAW
                                ? ",key-secret=key0" : ",passphrase-secret=key0");
    }
    g_ptr_array_add(a, g_strdup("-tpmdev"));
    g_ptr_array_add(a, g_string_free(tpmdev, FALSE));

    add_sock(export, "ctrl", o->ctrl_kind, o->ctrl_path, o->ctrl_host,
             o->ctrl_port);
    if (o->ctrl_mode) {
        g_string_append_printf(export, ",mode=%s", o->ctrl_mode);
    }
    if (o->ctrl_uid) {
        g_string_append_printf(export, ",uid=%s", o->ctrl_uid);
    }
    if (o->ctrl_gid) {
        g_string_append_printf(export, ",gid=%s", o->ctrl_gid);
    }
    if (o->server_kind != SWTPM_SOCK_NONE) {
        add_sock(export, "data", o->server_kind, o->server_path, o->server_host,
                 o->server_port);
    }
    if (o->terminate) {
        g_string_append(export, ",terminate=on");
    }
    if (o->mig_incoming) {
        g_string_append(export, ",incoming=on");
    }
    if (o->mig_release_lock_outgoing) {
        g_string_append(export, ",release-lock-outgoing=on");
    }
    g_ptr_array_add(a, g_strdup("-export"));
    g_ptr_array_add(a, g_string_free(export, FALSE));

    if (o->log_file) {
        g_ptr_array_add(a, g_strdup("-D"));
        g_ptr_array_add(a, g_strdup(o->log_file));
        /* swtpm turns on libtpms's debug output from level 5. */
        if (o->log_level >= 5) {
            g_ptr_array_add(a, g_strdup("-d"));
            g_ptr_array_add(a, g_strdup("tpm"));
        }
    }
    if (o->pid_file) {
        g_ptr_array_add(a, g_strdup("-pidfile"));
        g_ptr_array_add(a, g_strdup(o->pid_file));
    }
    if (o->daemon) {
        g_ptr_array_add(a, g_strdup("-daemonize"));
    }
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

static void add_key_arg(GPtrArray *a, const SwtpmSetupOpts *o,
                        const char *key_path)
{
    if (o->key.kind == SWTPM_KEY_PASSPHRASE) {
        g_ptr_array_add(a, g_strdup("--passphrase-file"));
        g_ptr_array_add(a, g_strdup(key_path));
    }
}

char **swtpm_setup_create_argv(const SwtpmSetupOpts *o, const char *qtpm_img,
                               const char *image, const char *key_path)
{
    GPtrArray *a = g_ptr_array_new();

    g_ptr_array_add(a, g_strdup(qtpm_img));
    g_ptr_array_add(a, g_strdup("create"));
    g_ptr_array_add(a, g_strdup("--tpm"));
    g_ptr_array_add(a, g_strdup(o->tpm2 ? "2.0" : "1.2"));
    add_key_arg(a, o, key_path);
    g_ptr_array_add(a, g_strdup(image));
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

char **swtpm_setup_manufacture_argv(const SwtpmSetupOpts *o,
                                    const char *qtpm_img, const char *ca_dir,
                                    const char *image, const char *key_path)
{
    GPtrArray *a;

    /* swtpm_setup makes the EK for each of these; manufacture always does. */
    if (!o->createek && !o->create_ek_cert && !o->create_platform_cert &&
        !o->lock_nvram) {
        return NULL;
    }
    a = g_ptr_array_new();
    g_ptr_array_add(a, g_strdup(qtpm_img));
    g_ptr_array_add(a, g_strdup("manufacture"));
    add_key_arg(a, o, key_path);
    g_ptr_array_add(a, g_strdup("--ca-dir"));
    g_ptr_array_add(a, g_strdup(ca_dir));
    if (o->vmid) {
        g_ptr_array_add(a, g_strdup("--vmid"));
        g_ptr_array_add(a, g_strdup(o->vmid));
    }
    if (!o->create_ek_cert) {
        g_ptr_array_add(a, g_strdup("--no-ek-cert"));
    }
    if (!o->create_platform_cert) {
        g_ptr_array_add(a, g_strdup("--no-platform-cert"));
    }
    if (!o->lock_nvram) {
        g_ptr_array_add(a, g_strdup("--no-lock-nvram"));
    }
    g_ptr_array_add(a, g_strdup(image));
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

/*
 * Exactly what is implemented, so that libvirt enables nothing else:
 * cmdarg-pwd-fd (--key pwdfd=), cmdarg-key-fd (--key fd=) and
 * cmdarg-migration (--migration, the export's shared-storage hand-over)
 * are; flags-opt-startup and cmdarg-print-states are not.
 */
const char *swtpm_socket_capabilities_json(void)
{
    return "{ \"type\": \"swtpm\", \"features\": [ \"tpm-1.2\", \"tpm-2.0\", "
           "\"tpm-send-command-header\", \"cmdarg-key-fd\", \"cmdarg-pwd-fd\", "
           "\"cmdarg-migration\", \"nvram-backend-dir\", \"nvram-backend-file\" ], "
           "\"version\": \"" QTPM_VERSION "\" }";
}

/*
 * TPM 2.0 only: TPM 1.2 images are made plain, without the EK that
 * libvirt asks for, so "tpm-1.2" would promise what is refused.
 */
const char *swtpm_setup_capabilities_json(void)
{
    return "{ \"type\": \"swtpm_setup\", \"features\": [ \"tpm-2.0\", "
           "\"cmdarg-pwdfile-fd\" ], \"version\": \"" QTPM_VERSION "\" }";
}
