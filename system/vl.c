/*
 * The qtpm program: command line, start-up order, main loop, clean exit.
 *
 * Start-up order is the point of the design (docs/design.md "Start-up"):
 * everything the command line says is checked first; then secrets, drives,
 * and the NVRAM store with its key are opened and verified before anything
 * is written; then libtpms starts; only then do sockets accept clients.
 * Any failure is one sentence naming the option, and exit status 1.
 */
#include "qemu/osdep.h"
#include "crypto/secret.h"
#include "export/swtpm-server.h"
#include "migration/migration.h"
#include "monitor/qmp.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/option.h"
#include "qemu/sd-notify.h"
#include "sysemu/blockdev.h"
#include "sysemu/qmp-cmds.h"
#include "sysemu/qtest.h"
#include "sysemu/runstate.h"
#include "sysemu/sysemu.h"
#include "sysemu/tpm_backend.h"
#include "sysemu/tpm_frontend.h"

#include <sys/prctl.h>
#include <sys/wait.h>

/* One -drive, -tpmdev, -device or -object: its text and parsed options. */
typedef struct QtpmOptArg {
    const char *option;     /* "-drive" */
    char *text;
    GHashTable *opts;
} QtpmOptArg;

typedef struct QtpmConfig {
    GPtrArray *objects;
    GPtrArray *drives;
    GPtrArray *tpmdevs;
    GPtrArray *devices;
    GPtrArray *exports;
    const char *qtest;
    const char *qmp;
    const char *name;
    const char *pidfile;
    const char *logfile;
    const char *log_items;
    const char *incoming;
    bool start_stopped;
    bool daemonize;
    bool dumpable;
    bool secret_data_seen;  /* some -object secret had data= */
} QtpmConfig;

static char *pidfile_written;
static int daemon_pipe = -1;

static void opt_arg_free(gpointer p)
{
    QtpmOptArg *a = p;

    if (a->opts) {
        g_hash_table_unref(a->opts);
    }
    g_free(a->text);
    g_free(a);
}

/* "-tpmdev id=tpm0" when the id is known, else the option as given. */
static char *opt_arg_name(const QtpmOptArg *a)
{
    const char *id = a->opts ? qemu_opt_get(a->opts, "id") : NULL;

    if (id) {
        return g_strdup_printf("%s id=%s", a->option, id);
    }
    if (!strcmp(a->option, "-object")) {
        return g_strdup(a->option);     /* its text may hold data=SECRET */
    }
    return g_strdup_printf("%s %s", a->option, a->text);
}

static void report_error(const char *what, GError *err)
{
    if (what) {
        error_report("%s: %s", what, err ? err->message : "failed");
    } else {
        error_report("%s", err ? err->message : "failed");
    }
}

static void report_opt_error(const QtpmOptArg *a, GError *err)
{
    g_autofree char *name = opt_arg_name(a);

    report_error(name, err);
}

static void print_version(void)
{
    printf("qtpm version " QTPM_VERSION "\n"
           "A QEMU-style virtual TPM (TIS) on libtpms with its state in a "
           "qcow2 image.\n");
}

/* -name's keys: "-name NAME" or "-name guest=NAME", as QEMU. */
static const QemuOptDesc name_opts[] = {
    { .name = "guest", .type = QEMU_OPT_STRING, .implied = true },
    QEMU_OPT_DESC_END
};

/* One line of --help: the usage, and the text in a column of its own. */
static void print_usage_line(GString *out, const char *usage, const char *help)
{
    if (strlen(usage) < 16) {
        g_string_append_printf(out, "%-16s%s\n", usage, help);
    } else {
        g_string_append_printf(out, "%s\n%16s%s\n", usage, "", help);
    }
}

/* "-tpmdev libtpms,id=ID,...": the option, its type and its table's keys. */
static void print_opts_usage(GString *out, const char *option,
                             const char *type, const QemuOptDesc *desc,
                             const char *help)
{
    g_autoptr(GString) usage = g_string_new(type);

    qemu_opts_print_synopsis(usage, desc);
    g_string_prepend(usage, " ");
    g_string_prepend(usage, option);
    print_usage_line(out, usage->str, help);
}

static void print_storage_help(GString *out)
{
    const TPMBackendClass *const *c = tpm_backend_classes();
    const TPMFrontendClass *const *f = tpm_frontend_classes();

    print_opts_usage(out, "-drive", NULL, qemu_drive_opts,
                     "a block device holding the TPM state");
    print_opts_usage(out, "-object", "secret", qcrypto_secret_opts,
                     "a secret (key or passphrase)");
    for (int i = 0; c[i]; i++) {
        print_opts_usage(out, "-tpmdev", c[i]->type, c[i]->opts, c[i]->desc);
    }
    print_usage_line(out, "-tpmdev help", "list the TPM backend types");
    for (int i = 0; f[i]; i++) {
        print_opts_usage(out, "-device", f[i]->model, f[i]->opts, f[i]->help);
    }
    print_usage_line(out, "-device help", "list the device models");
    print_usage_line(out, "-tpmdev TYPE,help", "list the parameters of a type "
                     "(-device and -object too)");
}

static void print_tpmdev_help(void)
{
    const TPMBackendClass *const *c = tpm_backend_classes();

    printf("Supported TPM types (choose only one):\n");
    for (int i = 0; c[i]; i++) {
        printf("%10s   %s\n", c[i]->type, c[i]->desc);
    }
}

static void print_device_help(void)
{
    const TPMFrontendClass *const *c = tpm_frontend_classes();

    printf("TPM devices:\n");
    for (int i = 0; c[i]; i++) {
        g_autoptr(GString) props = g_string_new(NULL);

        qemu_opts_print_synopsis(props, c[i]->opts);
        printf("name \"%s\", desc \"%s\", properties %s (-device %s,help "
               "describes them)\n", c[i]->model, c[i]->desc, props->str,
               c[i]->model);
    }
}

static void print_object_help(void)
{
    g_autoptr(GString) usage = g_string_new(NULL);

    qemu_opts_print_synopsis(usage, qcrypto_secret_opts);
    printf("List of user creatable objects:\n"
           "  secret   %s\n", usage->str);
}

/* "-tpmdev libtpms,help": the keys of one type, from its table. */
static void print_type_help(const char *type, const QemuOptDesc *desc)
{
    g_autoptr(GString) out = g_string_new(NULL);

    g_string_append_printf(out, "%s options:\n", type);
    qemu_opts_print_help(out, desc);
    fputs(out->str, stdout);
}

static bool opt_wants_help(const char *text)
{
    return !strcmp(text, "help") || !strcmp(text, "?") ||
           g_str_has_suffix(text, ",help") || g_str_has_suffix(text, ",?");
}

typedef enum {
    OPT_DRIVE, OPT_TPMDEV, OPT_DEVICE, OPT_OBJECT, OPT_QTEST, OPT_QMP,
    OPT_S, OPT_NAME, OPT_PIDFILE, OPT_DAEMONIZE, OPT_LOGFILE, OPT_LOG,
    OPT_VERSION, OPT_HELP, OPT_INCOMING, OPT_NODEFAULTS, OPT_DISPLAY,
    OPT_EXPORT, OPT_DUMPABLE,
} QtpmOptionIndex;

/*
 * The command line's options, in --help order. @args is the argument shown
 * in --help, followed by the synopsis of @keys when the option has a
 * table; -drive, -object, -tpmdev and -device print theirs per type
 * instead (print_storage_help).
 */
static const struct {
    const char *name;
    bool has_arg;
    QtpmOptionIndex index;
    const char *args;
    const char *help;
    const QemuOptDesc *keys;
} qtpm_options[] = {
    { "drive", true, OPT_DRIVE },
    { "object", true, OPT_OBJECT },
    { "tpmdev", true, OPT_TPMDEV },
    { "device", true, OPT_DEVICE },
    { "qtest", true, OPT_QTEST, "unix:PATH[,server=on][,wait=off] | stdio",
      "the qtest server that reaches the device" },
    { "qmp", true, OPT_QMP, "unix:PATH", "the QMP monitor", qmp_opts },
    { "export", true, OPT_EXPORT, "swtpm",
      "serve a -tpmdev over swtpm's socket protocol (-export help)",
      swtpm_export_opts },
    { "S", false, OPT_S, NULL, "start stopped (QMP cont starts the machine)" },
    { "name", true, OPT_NAME, "NAME", "the machine's name (query-name)" },
    { "pidfile", true, OPT_PIDFILE, "FILE", "write the process id to FILE" },
    { "daemonize", false, OPT_DAEMONIZE, NULL,
      "detach after start-up succeeded" },
    { "D", true, OPT_LOGFILE, "LOGFILE", "write log output to LOGFILE" },
    { "d", true, OPT_LOG, "ITEM,...", "enable log items (-d help lists them)" },
    { "incoming", true, OPT_INCOMING, "URI",
      "wait for an incoming migration" },
    { "nodefaults", false, OPT_NODEFAULTS, NULL,
      "accepted; qtpm creates no default devices" },
    { "display", true, OPT_DISPLAY, "none", "accepted; qtpm has no display" },
    { "dumpable", true, OPT_DUMPABLE, "on|off",
      "allow core dumps and same-user ptrace, for debugging (default off)" },
    { "h", false, OPT_HELP, NULL, "this text" },
    { "help", false, OPT_HELP },
    { "version", false, OPT_VERSION, NULL, "the version" },
};

static void print_help(void)
{
    g_autoptr(GString) out = g_string_new("usage: qtpm [options]\n"
                                          "\n"
                                          "Storage and TPM:\n");

    print_storage_help(out);
    g_string_append(out, "\nControl:\n");
    for (unsigned i = 0; i < G_N_ELEMENTS(qtpm_options); i++) {
        g_autofree char *usage = NULL;

        if (!qtpm_options[i].help) {
            continue;   /* in print_storage_help, or an alias */
        }
        if (qtpm_options[i].index == OPT_HELP) {
            usage = g_strdup("-h, --help");
        } else if (qtpm_options[i].index == OPT_VERSION) {
            usage = g_strdup("--version");
        } else {
            g_autoptr(GString) args = g_string_new(qtpm_options[i].args);

            qemu_opts_print_synopsis(args, qtpm_options[i].keys);
            usage = g_strdup_printf("-%s%s%s", qtpm_options[i].name,
                                    args->len ? " " : "", args->str);
        }
        print_usage_line(out, usage, qtpm_options[i].help);
    }
    g_string_append(out, "\nReference: docs/qtpm.md\n");
    fputs(out->str, stdout);
}

/* Parses the text of a -drive/-tpmdev/-device/-object into @list. */
static bool add_opt_arg(GPtrArray *list, const char *option, const char *text,
                        const char *implied, GError **errp)
{
    QtpmOptArg *a = g_new0(QtpmOptArg, 1);

    a->option = option;
    a->text = g_strdup(text);
    g_ptr_array_add(list, a);
    a->opts = qemu_opts_parse(text, implied, errp);
    return a->opts != NULL;
}

static void config_free(QtpmConfig *c)
{
    g_ptr_array_unref(c->objects);
    g_ptr_array_unref(c->drives);
    g_ptr_array_unref(c->tpmdevs);
    g_ptr_array_unref(c->devices);
    g_ptr_array_unref(c->exports);
}

/* The table of -drive, or of the -tpmdev/-device/-object type @type. */
static const QemuOptDesc *opts_table(QtpmOptionIndex index, const char *type)
{
    const TPMBackendClass *k;
    const TPMFrontendClass *f;

    switch (index) {
    case OPT_DRIVE:
        return qemu_drive_opts;
    case OPT_TPMDEV:
        k = type ? tpm_backend_find_class(type) : NULL;
        return k ? k->opts : NULL;
    case OPT_DEVICE:
        f = type ? tpm_frontend_find_class(type) : NULL;
        return f ? f->opts : NULL;
    case OPT_OBJECT:
        return !g_strcmp0(type, "secret") ? qcrypto_secret_opts : NULL;
    default:
        return NULL;
    }
}

/* "help" lists the types; "TYPE,help" the keys of one type (-drive: its keys). */
static void print_list_help(QtpmOptionIndex index, const char *text)
{
    g_autofree char *type = g_strndup(text, strcspn(text, ","));
    const QemuOptDesc *desc;

    if (index == OPT_DRIVE) {
        print_type_help("-drive", qemu_drive_opts);
        return;
    }
    desc = strchr(text, ',') ? opts_table(index, type) : NULL;
    if (desc) {
        print_type_help(type, desc);
        return;
    }
    switch (index) {
    case OPT_TPMDEV:
        print_tpmdev_help();
        break;
    case OPT_DEVICE:
        print_device_help();
        break;
    case OPT_OBJECT:
        print_object_help();
        break;
    default:
        print_help();
        break;
    }
}

/* KEY=help lists the values KEY takes, as QEMU's format=help does. */
static int print_value_help(QtpmOptionIndex index, const char *option,
                            const char *implied, GHashTable *opts)
{
    const QemuOptDesc *desc =
        opts_table(index, implied ? qemu_opt_get(opts, implied) : NULL);

    for (const QemuOptDesc *d = desc; d && d->name; d++) {
        g_autofree char *choices = qemu_opt_desc_choices(desc, d->name, " ");

        if (choices && !g_strcmp0(qemu_opt_get(opts, d->name), "help")) {
            printf("%s %s= takes: %s\n", option, d->name, choices);
            return 1;
        }
    }
    return 0;
}

/* -drive, -tpmdev, -device, -object: "key=value,..." into the config. */
static int parse_opts_option(QtpmConfig *c, QtpmOptionIndex index,
                             const char *val)
{
    static const char *const opt_names[] = {
        [OPT_DRIVE] = "-drive", [OPT_TPMDEV] = "-tpmdev",
        [OPT_DEVICE] = "-device", [OPT_OBJECT] = "-object",
    };
    static const char *const implied_keys[] = {
        [OPT_DRIVE] = NULL, [OPT_TPMDEV] = "type",
        [OPT_DEVICE] = "driver", [OPT_OBJECT] = "qom-type",
    };
    GPtrArray *lists[] = {
        [OPT_DRIVE] = c->drives, [OPT_TPMDEV] = c->tpmdevs,
        [OPT_DEVICE] = c->devices, [OPT_OBJECT] = c->objects,
    };
    g_autoptr(GError) err = NULL;

    if (opt_wants_help(val)) {
        print_list_help(index, val);
        return 1;
    }
    if (!add_opt_arg(lists[index], opt_names[index], val, implied_keys[index],
                     &err)) {
        if (index == OPT_OBJECT) {
            /* The text may hold data=SECRET: never echo it. */
            error_report("%s: %s", opt_names[index], err->message);
        } else {
            error_report("%s %s: %s", opt_names[index], val, err->message);
        }
        return -1;
    }
    return print_value_help(index, opt_names[index], implied_keys[index],
                            ((QtpmOptArg *)g_ptr_array_index(
                                lists[index], lists[index]->len - 1))->opts);
}

static int parse_name(QtpmConfig *c, const char *val)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GHashTable) o = qemu_opts_parse(val, "guest", &err);

    if (!o || !qemu_opts_validate(o, name_opts, "-name", &err)) {
        error_report("-name %s: %s", val, err->message);
        return -1;
    }
    /* "-name NAME" or "-name guest=NAME" as QEMU. */
    c->name = g_intern_string(qemu_opt_get(o, "guest"));
    return 0;
}

/* -export TYPE,...; "help" and "swtpm,help" print the keys. */
static int parse_export(QtpmConfig *c, const char *val)
{
    g_autoptr(GError) err = NULL;

    if (opt_wants_help(val)) {
        print_type_help("-export swtpm", swtpm_export_opts);
        return 1;
    }
    if (!add_opt_arg(c->exports, "-export", val, "type", &err)) {
        error_report("-export %s: %s", val, err->message);
        return -1;
    }
    return 0;
}

/* One option; 1 when a help or version text was printed, -1 on error. */
static int parse_option(QtpmConfig *c, QtpmOptionIndex index, const char *val)
{
    switch (index) {
    case OPT_DRIVE:
    case OPT_TPMDEV:
    case OPT_DEVICE:
    case OPT_OBJECT:
        return parse_opts_option(c, index, val);
    case OPT_NAME:
        return parse_name(c, val);
    case OPT_QTEST:
    case OPT_QMP: {
        const char **slot = index == OPT_QTEST ? &c->qtest : &c->qmp;
        const char *opt = index == OPT_QTEST ? "-qtest" : "-qmp";

        if (opt_wants_help(val)) {
            g_autofree char *what = g_strdup_printf("%s unix:PATH", opt);

            print_type_help(what, index == OPT_QTEST ? qtest_opts : qmp_opts);
            return 1;
        }
        if (*slot) {
            error_report("%s %s: only one %s is supported", opt, val, opt);
            return -1;
        }
        *slot = val;
        break;
    }
    case OPT_EXPORT:
        return parse_export(c, val);
    case OPT_S:
        c->start_stopped = true;
        break;
    case OPT_PIDFILE:
        c->pidfile = val;
        break;
    case OPT_DAEMONIZE:
        c->daemonize = true;
        break;
    case OPT_LOGFILE:
        c->logfile = val;
        break;
    case OPT_LOG:
        if (!strcmp(val, "help") || !strcmp(val, "?")) {
            qemu_print_log_usage(stdout);
            return 1;
        }
        c->log_items = val;
        break;
    case OPT_VERSION:
        print_version();
        return 1;
    case OPT_HELP:
        print_help();
        return 1;
    case OPT_INCOMING:
        c->incoming = val;
        break;
    case OPT_NODEFAULTS:
        break;
    case OPT_DUMPABLE:
        if (!strcmp(val, "on")) {
            c->dumpable = true;
        } else if (!strcmp(val, "off")) {
            c->dumpable = false;
        } else {
            error_report("-dumpable %s: give 'on' or 'off'", val);
            return -1;
        }
        break;
    case OPT_DISPLAY:
        if (strcmp(val, "none")) {
            error_report("-display %s: qtpm has no display; only 'none' "
                         "is accepted", val);
            return -1;
        }
        break;
    }
    return 0;
}

/*
 * Overwrites the value of every data= key of an -object argument in place.
 * The kernel shows /proc/PID/cmdline from this memory, so the secret leaves
 * the process list once parsed (it was readable until then: hence the
 * warning). Keys are split on ',' with ",," escaping one, as the parser does.
 */
static bool scrub_secret_data_arg(char *arg)
{
    bool found = false;
    char *p = arg;

    while (*p) {
        bool is_data = g_str_has_prefix(p, "data=");
        char *v = p + (is_data ? strlen("data=") : 0);

        while (*v && !(v[0] == ',' && v[1] != ',')) {
            if (v[0] == ',') {
                if (is_data) {
                    v[0] = v[1] = 'x';
                }
                v += 2;
                continue;
            }
            if (is_data) {
                *v = 'x';
            }
            v++;
        }
        found |= is_data;
        p = *v ? v + 1 : v;
    }
    return found;
}

/* Returns 1 when a help or version text was printed (exit 0). */
static int parse_command_line(int argc, char **argv, QtpmConfig *c)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *name = arg + 1;
        const char *val = NULL;
        unsigned k;
        int r;

        if (arg[0] != '-' || !arg[1]) {
            error_report("%s: not an option (options start with '-'; "
                         "see -h)", arg);
            return -1;
        }
        if (name[0] == '-') {
            name++;   /* --version, --help */
        }
        for (k = 0; k < G_N_ELEMENTS(qtpm_options); k++) {
            if (!strcmp(name, qtpm_options[k].name)) {
                break;
            }
        }
        if (k == G_N_ELEMENTS(qtpm_options)) {
            error_report("%s: invalid option (see -h)", arg);
            return -1;
        }
        if (qtpm_options[k].has_arg) {
            if (i + 1 >= argc) {
                error_report("%s: requires an argument", arg);
                return -1;
            }
            val = argv[++i];
        }
        r = parse_option(c, qtpm_options[k].index, val);
        if (qtpm_options[k].index == OPT_OBJECT && scrub_secret_data_arg(argv[i])) {
            c->secret_data_seen = true;
        }
        if (r != 0) {
            return r;
        }
    }
    return 0;
}

static QtpmOptArg *find_opt_arg(GPtrArray *list, const char *id)
{
    for (guint i = 0; i < list->len; i++) {
        QtpmOptArg *a = list->pdata[i];
        if (!g_strcmp0(qemu_opt_get(a->opts, "id"), id)) {
            return a;
        }
    }
    return NULL;
}

static bool check_ids(GPtrArray *list)
{
    for (guint i = 0; i < list->len; i++) {
        QtpmOptArg *a = list->pdata[i];
        const char *id = qemu_opt_get(a->opts, "id");
        g_autoptr(GError) err = NULL;

        if (!id || !*id) {
            g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "parameter 'id' is missing");
            report_opt_error(a, err);
            return false;
        }
        if (find_opt_arg(list, id) != a) {
            g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "id '%s' is used twice", id);
            report_opt_error(a, err);
            return false;
        }
    }
    return true;
}

static bool check_tpmdev_refs(QtpmConfig *c, QtpmOptArg *a)
{
    static const char *const refs[] = { "key-secret", "passphrase-secret" };
    const char *type = qemu_opt_get(a->opts, "type");
    const char *nvram = qemu_opt_get(a->opts, "nvram");
    g_autoptr(GError) err = NULL;

    if (!type) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "the backend type is missing (see -tpmdev help)");
    } else if (!tpm_backend_check_opts(type, a->opts, &err)) {
        /* Now, not in tpm_backend_new: start-up step 1 opens no file. */
    } else if (nvram && !find_opt_arg(c->drives, nvram)) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "nvram=%s names no -drive (no -drive with id '%s')", nvram,
                    nvram);
    }
    for (unsigned i = 0; !err && i < G_N_ELEMENTS(refs); i++) {
        const char *sid = qemu_opt_get(a->opts, refs[i]);
        QtpmOptArg *obj = sid ? find_opt_arg(c->objects, sid) : NULL;

        if (sid && !obj) {
            g_set_error(&err, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                        "%s=%s names no -object secret", refs[i], sid);
        }
    }
    if (err) {
        report_opt_error(a, err);
        return false;
    }
    return true;
}

static bool check_device(QtpmConfig *c, QtpmOptArg *a)
{
    const char *driver = qemu_opt_get(a->opts, "driver");
    const char *tpmdev = qemu_opt_get(a->opts, "tpmdev");
    const TPMFrontendClass *fc = driver ? tpm_frontend_find_class(driver) : NULL;
    g_autofree char *what = driver ? g_strdup_printf("-device %s", driver) : NULL;
    g_autoptr(GError) err = NULL;

    if (!driver) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "the device model is missing (see -device help)");
    } else if (!fc) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is not a device model (see -device help)", driver);
    } else if (!qemu_opts_validate(a->opts, fc->opts, what, &err)) {
        /* err set */
    } else if (!find_opt_arg(c->tpmdevs, tpmdev)) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "tpmdev=%s names no -tpmdev", tpmdev);
    } else if (c->devices->len > 1) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "only one %s device is supported", driver);
    }
    if (err) {
        g_autofree char *name = g_strdup_printf("-device %s", a->text);
        report_error(name, err);
        return false;
    }
    return true;
}

/*
 * An -export with incoming=on is a migration target on shared storage: like
 * -incoming, its image is read, not owned, until the state arrives.
 */
static bool export_incoming(QtpmConfig *c)
{
    for (guint i = 0; i < c->exports->len; i++) {
        QtpmOptArg *a = c->exports->pdata[i];
        bool incoming = false;

        if (qemu_opt_get_bool(a->opts, "incoming", false, &incoming, NULL) &&
            incoming) {
            return true;
        }
    }
    return false;
}

/* A -tpmdev has one frontend: a -device or an -export. */
static bool check_export(QtpmConfig *c, QtpmOptArg *a)
{
    const char *tpmdev = qemu_opt_get(a->opts, "tpmdev");
    g_autoptr(GError) err = NULL;

    if (!swtpm_export_check_opts(a->opts, &err)) {
        /* err set */
    } else if (!find_opt_arg(c->tpmdevs, tpmdev)) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "tpmdev=%s names no -tpmdev", tpmdev);
    } else {
        for (guint i = 0; i < c->devices->len && !err; i++) {
            QtpmOptArg *d = c->devices->pdata[i];

            if (!g_strcmp0(qemu_opt_get(d->opts, "tpmdev"), tpmdev)) {
                g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                            "tpmdev=%s is used by -device %s already", tpmdev,
                            qemu_opt_get(d->opts, "driver"));
            }
        }
        for (guint i = 0; i < c->exports->len && !err; i++) {
            QtpmOptArg *x = c->exports->pdata[i];

            if (x != a && !g_strcmp0(qemu_opt_get(x->opts, "tpmdev"), tpmdev)) {
                g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                            "tpmdev=%s is exported twice", tpmdev);
            }
        }
        if (!err && c->incoming && export_incoming(c)) {
            /* Two hand-offs of one image: the stream's and QEMU's. */
            g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "incoming=on and -incoming exclude each other");
        }
    }
    if (err) {
        report_opt_error(a, err);
        return false;
    }
    return true;
}

/* Files created after the TPM started must not fail for a missing folder. */
static bool check_writable_folder(const char *path, GError **errp)
{
    g_autofree char *dir = g_path_get_dirname(path);

    if (access(dir, W_OK) < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "'%s': %s", dir,
                    g_strerror(errno));
        return false;
    }
    return true;
}

/* Everything that can be checked without opening a file. */
static bool check_config(QtpmConfig *c)
{
    g_autoptr(GError) err = NULL;
    unsigned mask;

    for (guint i = 0; i < c->objects->len; i++) {
        QtpmOptArg *a = c->objects->pdata[i];
        const char *type = qemu_opt_get(a->opts, "qom-type");

        if (g_strcmp0(type, "secret")) {
            g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' is not an object type (only 'secret')",
                        type ? type : "");
            report_opt_error(a, err);
            return false;
        }
        if (!qcrypto_secret_check_opts(a->opts, &err)) {
            report_opt_error(a, err);
            return false;
        }
    }
    if (!check_ids(c->objects) || !check_ids(c->drives) ||
        !check_ids(c->tpmdevs) || !check_ids(c->exports)) {
        return false;
    }
    for (guint i = 0; i < c->drives->len; i++) {
        QtpmOptArg *a = c->drives->pdata[i];
        if (!drive_check_opts(a->opts, &err)) {
            report_opt_error(a, err);
            return false;
        }
    }
    for (guint i = 0; i < c->tpmdevs->len; i++) {
        if (!check_tpmdev_refs(c, c->tpmdevs->pdata[i])) {
            return false;
        }
    }
    for (guint i = 0; i < c->devices->len; i++) {
        if (!check_device(c, c->devices->pdata[i])) {
            return false;
        }
    }
    for (guint i = 0; i < c->exports->len; i++) {
        if (!check_export(c, c->exports->pdata[i])) {
            return false;
        }
    }
    if (c->log_items && !qemu_str_to_log_mask(c->log_items, &mask, &err)) {
        report_error("-d", err);
        return false;
    }
    if (c->qtest && !qtest_check_spec(c->qtest, &err)) {
        g_autofree char *name = g_strdup_printf("-qtest %s", c->qtest);
        report_error(name, err);
        return false;
    }
    if (c->qmp && !qmp_check_spec(c->qmp, &err)) {
        g_autofree char *name = g_strdup_printf("-qmp %s", c->qmp);
        report_error(name, err);
        return false;
    }
    if (c->pidfile && !check_writable_folder(c->pidfile, &err)) {
        g_autofree char *name = g_strdup_printf("-pidfile %s", c->pidfile);
        report_error(name, err);
        return false;
    }
    if (c->daemonize && c->qtest && !strcmp(c->qtest, "stdio")) {
        error_report("-daemonize: a daemon has no stdio for -qtest stdio");
        return false;
    }
    return true;
}

/*
 * Forks; the parent waits for the child to report that start-up succeeded
 * (one byte on a pipe) and exits with its status, so errors still reach the
 * caller's terminal and exit code.
 */
static int daemonize_start(void)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) < 0) {
        error_report("-daemonize: pipe: %s", g_strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        error_report("-daemonize: fork: %s", g_strerror(errno));
        return -1;
    }
    if (pid > 0) {
        char status = 1;
        int wstatus;

        close(fds[1]);
        if (read(fds[0], &status, 1) != 1) {
            /* The child died before reporting: reap it for its status. */
            waitpid(pid, &wstatus, 0);
            _exit(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) ? 
                  WEXITSTATUS(wstatus) : 1);
        }
        _exit(status);
    }
    close(fds[0]);
    daemon_pipe = fds[1];
    setsid();
    return 0;
}

static void daemonize_finish(void)
{
    char ok = 0;
    int fd;

    if (daemon_pipe < 0) {
        return;
    }
    if (chdir("/") < 0) {
        /* Paths were all opened already; stay where we are. */
    }
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) {
            close(fd);
        }
    }
    if (write(daemon_pipe, &ok, 1) != 1) {
        /* The parent is gone; nobody to tell. */
    }
    close(daemon_pipe);
    daemon_pipe = -1;
}

/* Does @path exist with contents a stale pid file cannot have? */
static bool holds_other_data(const char *path)
{
    char buf[24];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return false;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n <= 0) {
        return false;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (!g_ascii_isdigit(buf[i]) && buf[i] != '\n') {
            return true;
        }
    }
    return n == (ssize_t)sizeof(buf);
}

static bool write_pidfile(const char *path)
{
    g_autofree char *text = g_strdup_printf("%d\n", (int)getpid());
    g_autoptr(GError) err = NULL;

    /* Replaced and later deleted: never a file that is not a pid file. */
    if (holds_other_data(path)) {
        error_report("-pidfile %s: the file exists and holds no process id; "
                     "refusing to replace it", path);
        return false;
    }
    if (!g_file_set_contents(path, text, -1, &err)) {
        error_report("-pidfile %s: %s", path, err->message);
        return false;
    }
    pidfile_written = g_canonicalize_filename(path, NULL);
    return true;
}

/*
 * -D appends to its file, and the log is opened before the drives: a log
 * file that is one of the images (by any name) would have lines appended
 * to the TPM's state.
 */
static bool check_logfile(const QtpmConfig *c)
{
    struct stat log_st, st;

    if (!c->logfile || stat(c->logfile, &log_st) < 0) {
        return true;
    }
    for (guint i = 0; i < c->drives->len; i++) {
        const QtpmOptArg *a = c->drives->pdata[i];
        const char *file = qemu_opt_get(a->opts, "file");

        if (file && stat(file, &st) == 0 && st.st_dev == log_st.st_dev &&
            st.st_ino == log_st.st_ino) {
            error_report("-D %s: the file is the image of -drive id=%s; "
                         "refusing to write the log into it", c->logfile,
                         qemu_opt_get(a->opts, "id"));
            return false;
        }
    }
    return true;
}

static void frontend_reset_handler(void *opaque)
{
    tpm_frontend_reset(opaque);
}

static void qtest_stdio_closed(void *opaque)
{
    qemu_system_shutdown_request("host-qmp-quit");
}

/* The copies the option parser made of data=: the secret has its own. */
static void wipe_secret_data(GHashTable *opts)
{
    char *data = g_hash_table_lookup(opts, "data");

    if (data) {
        qcrypto_memwipe(data, strlen(data));
    }
}

static bool create_objects(QtpmConfig *c)
{
    for (guint i = 0; i < c->objects->len; i++) {
        QtpmOptArg *a = c->objects->pdata[i];
        g_autoptr(GError) err = NULL;
        bool ok;
        g_autoptr(GHashTable) props =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        GHashTableIter it;
        gpointer k, v;

        /* The secret takes its own properties; qom-type is ours. */
        g_hash_table_iter_init(&it, a->opts);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            if (strcmp(k, "qom-type")) {
                g_hash_table_insert(props, g_strdup(k), g_strdup(v));
            }
        }
        ok = qcrypto_secret_new(props, &err) != NULL;
        wipe_secret_data(props);
        wipe_secret_data(a->opts);
        if (a->text && qemu_opt_get(a->opts, "data")) {
            qcrypto_memwipe(a->text, strlen(a->text));
        }
        if (!ok) {
            report_opt_error(a, err);
            return false;
        }
    }
    return true;
}

static bool create_drives(QtpmConfig *c)
{
    bool inactive = c->incoming != NULL || export_incoming(c);

    for (guint i = 0; i < c->drives->len; i++) {
        QtpmOptArg *a = c->drives->pdata[i];
        g_autoptr(GError) err = NULL;

        /* A migration target must not take QEMU's write permission bytes yet. */
        if (!drive_new(a->opts, inactive, &err)) {
            report_opt_error(a, err);
            return false;
        }
    }
    return true;
}

static bool create_tpmdevs(QtpmConfig *c)
{
    for (guint i = 0; i < c->tpmdevs->len; i++) {
        QtpmOptArg *a = c->tpmdevs->pdata[i];
        g_autoptr(GError) err = NULL;

        if (!tpm_backend_new(qemu_opt_get(a->opts, "type"),
                             qemu_opt_get(a->opts, "id"), a->opts, &err)) {
            report_opt_error(a, err);
            return false;
        }
    }
    return true;
}

static bool create_devices(QtpmConfig *c)
{
    for (guint i = 0; i < c->devices->len; i++) {
        QtpmOptArg *a = c->devices->pdata[i];
        const char *tpmdev = qemu_opt_get(a->opts, "tpmdev");
        TPMBackend *be = tpm_backend_find(tpmdev);
        g_autoptr(GError) err = NULL;
        TPMFrontend *fe;

        fe = tpm_frontend_new(qemu_opt_get(a->opts, "driver"), be, a->opts, &err);
        if (!fe) {
            if (be && tpm_backend_had_startup_error(be)) {
                /* The TPM itself did not start: name the -tpmdev. */
                g_autofree char *name = g_strdup_printf("-tpmdev id=%s",
                                                        tpmdev);
                report_error(name, err);
            } else {
                g_autofree char *name = g_strdup_printf("-device %s",
                                                        a->text);
                report_error(name, err);
            }
            return false;
        }
        qemu_register_reset(frontend_reset_handler, fe);
    }
    return true;
}

static bool start_servers(QtpmConfig *c)
{
    g_autoptr(GError) err = NULL;

    if (c->qtest) {
        if (qtest_server_start(c->qtest, &err) < 0) {
            g_autofree char *name = g_strdup_printf("-qtest %s", c->qtest);
            report_error(name, err);
            return false;
        }
        if (!strcmp(c->qtest, "stdio")) {
            qtest_server_set_close_handler(qtest_stdio_closed, NULL);
        }
    }
    if (c->qmp && qmp_server_start(c->qmp, qemu_shutdown_requested, &err) < 0) {
        g_autofree char *name = g_strdup_printf("-qmp %s", c->qmp);
        report_error(name, err);
        return false;
    }
    for (guint i = 0; i < c->exports->len; i++) {
        QtpmOptArg *a = c->exports->pdata[i];

        if (!swtpm_export_new(a->opts, &err)) {
            report_opt_error(a, err);
            return false;
        }
    }
    return true;
}

/*
 * A unit of Type=notify (contrib/systemd/qtpm@.service) counts as started
 * on READY=1, sent once every socket listens; a failure to tell it is
 * worth a warning, not the TPM.
 */
static void notify_service_manager(const char *state)
{
    g_autoptr(GError) err = NULL;

    if (!qemu_sd_notify(state, &err)) {
        qemu_log_warning("%s", err->message);
    }
}

static void machine_cleanup(void)
{
    qmp_server_stop();
    qtest_server_stop();
    swtpm_export_free_all();
    while (tpm_frontend_list()) {
        TPMFrontend *fe = tpm_frontend_list()->data;

        qemu_unregister_reset(frontend_reset_handler, fe);
        tpm_frontend_free(fe);
    }
    /* Power-off: no volatile state is saved (docs/design.md). */
    tpm_backend_shutdown_all();
    drive_close_all();
    qcrypto_secret_free_all();
    if (pidfile_written) {
        unlink(pidfile_written);
        g_clear_pointer(&pidfile_written, g_free);
    }
    qemu_log_close();
}

static bool machine_init(QtpmConfig *c)
{
    g_autoptr(GError) err = NULL;

    if (!create_objects(c)) {
        return false;
    }
    if (c->incoming) {
        /*
         * The source owns the store until the stream says otherwise: the
         * drives open inactive and the backends as readers.
         */
        if (migration_incoming_prepare(c->incoming, &err) < 0) {
            g_autofree char *name = g_strdup_printf("-incoming %s",
                                                    c->incoming);
            report_error(name, err);
            return false;
        }
        tpm_backend_set_incoming(true);
    }
    if (export_incoming(c)) {
        tpm_backend_set_incoming(true);
    }
    if (!create_drives(c)) {
        return false;
    }
    if (!create_tpmdevs(c) || !create_devices(c)) {
        return false;
    }
    tpm_backend_set_incoming(false);
    if (c->incoming) {
        runstate_set(RUN_STATE_INMIGRATE);
    } else {
        runstate_set(c->start_stopped ? RUN_STATE_PRELAUNCH
                                      : RUN_STATE_RUNNING);
    }
    return true;
}

/*
 * Until the main loop can take a signal, SIGTERM and SIGINT end start-up
 * wherever it is: blocked opening or reading a secret's pipe, stretching a
 * passphrase, formatting. Nothing is half-written by stopping here (the
 * store's commits and qcow2's update order are crash-safe) and no socket
 * file or pid file exists yet.
 */
static void startup_signal(int sig)
{
    static const char msg_term[] = "qtpm: terminating on signal 15 during start-up\n";
    static const char msg_int[] = "qtpm: terminating on signal 2 during start-up\n";
    const char *msg = sig == SIGTERM ? msg_term : msg_int;
    size_t len = sig == SIGTERM ? sizeof(msg_term) - 1 : sizeof(msg_int) - 1;

    if (write(STDERR_FILENO, msg, len) < 0) {
        /* Nowhere left to say it. */
    }
    _exit(1);
}

static void startup_signals_install(void)
{
    struct sigaction sa = { .sa_handler = startup_signal };

    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocked open() or read() must not resume. */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static bool machine_start_servers(QtpmConfig *c)
{
    g_autoptr(GError) err = NULL;

    /* From here signals are requests the main context carries out. */
    qemu_init_signals();
    if (!start_servers(c)) {
        return false;
    }
    if (c->incoming && migration_incoming_setup(c->incoming, &err) < 0) {
        g_autofree char *name = g_strdup_printf("-incoming %s", c->incoming);
        report_error(name, err);
        return false;
    }
    return true;
}

int qtpm_main(int argc, char **argv)
{
    QtpmConfig c = {
        .objects = g_ptr_array_new_with_free_func(opt_arg_free),
        .drives = g_ptr_array_new_with_free_func(opt_arg_free),
        .tpmdevs = g_ptr_array_new_with_free_func(opt_arg_free),
        .devices = g_ptr_array_new_with_free_func(opt_arg_free),
        .exports = g_ptr_array_new_with_free_func(opt_arg_free),
    };
    g_autoptr(GError) err = NULL;
    int ret = 1, r;

    /*
     * Before anything holds a key: a core dump or a same-user ptrace or
     * /proc/PID/mem read would show it and libtpms's seeds (-dumpable on
     * undoes this for debugging).
     */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    error_set_progname("qtpm");
    qemu_log_init();
    migration_init();
    qmp_init_commands();
    qemu_register_system_commands();
    r = parse_command_line(argc, argv, &c);
    if (r != 0 || !check_config(&c)) {
        config_free(&c);
        return r > 0 ? 0 : 1;
    }
    if (c.log_items) {
        unsigned mask = 0;
        qemu_str_to_log_mask(c.log_items, &mask, NULL);
        qemu_set_log(mask);
    }
    if (!check_logfile(&c)) {
        config_free(&c);
        return 1;
    }
    if (c.logfile && !qemu_set_log_filename(c.logfile, &err)) {
        report_error("-D", err);
        config_free(&c);
        return 1;
    }
    if (c.secret_data_seen) {
        qemu_log_warning("-object secret: data= shows the secret to other "
                         "users in the process list until qtpm has parsed it; "
                         "give it with file= instead");
    }
    if (c.dumpable) {
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    qemu_set_vm_name(c.name);
    if (c.daemonize && daemonize_start() < 0) {
        config_free(&c);
        return 1;
    }
    startup_signals_install();
    if (machine_init(&c) && machine_start_servers(&c) &&
        (!c.pidfile || write_pidfile(c.pidfile))) {
        daemonize_finish();
        notify_service_manager("READY=1");
        qemu_main_loop_run();
        notify_service_manager("STOPPING=1");
        ret = 0;
    }
    machine_cleanup();
    config_free(&c);
    return ret;
}
