/*
 * swtpm: the `swtpm socket` front door. It parses swtpm's command line,
 * reads the keys once, finds (or, in an empty state directory, creates)
 * the qtpm image, and then execs qtpm with the equivalent options. Exec
 * rather than a child: the pid that libvirt records and signals is then
 * qtpm's, and descriptors libvirt passed (the pid-file lock) stay with it.
 * docs/swtpm-compat.md.
 */
#include "qemu/osdep.h"

#include "qemu/error-report.h"
#include "swtpm-compat-run.h"

static void usage(void)
{
    printf("Usage: swtpm socket [OPTIONS]\n"
           "qtpm's swtpm-compatible front door (docs/swtpm-compat.md); runs qtpm\n"
           "  --tpmstate dir=DIR[,mode=0600] | backend-uri=dir://DIR|file://PATH\n"
           "  --ctrl type=unixio,path=PATH[,mode=0600][,uid=UID][,gid=GID]\n"
           "  --ctrl type=tcp,port=PORT[,bindaddr=ADDR]\n"
           "  --server type=unixio,path=PATH | type=tcp,port=PORT[,bindaddr=ADDR]\n"
           "  --tpm2                TPM 2.0 (default: TPM 1.2)\n"
           "  --key file=F|fd=N|pwdfile=F|pwdfd=N[,format=hex|binary]"
           "[,mode=aes-256-cbc][,remove][,kdf=pbkdf2]\n"
           "  --migration-key ...   the same key as --key\n"
           "  --migration [incoming][,release-lock-outgoing]  shared storage\n"
           "  --log file=F|fd=N[,level=N][,truncate]\n"
           "  --pid file=F  --terminate  --daemon  --runas USER\n"
           "  --print-capabilities  --version  --help\n");
}

/* The state directory holds swtpm's own files (no qtpm image yet). */
static bool has_swtpm_state(const char *dir, bool tpm2)
{
    g_autofree char *f = g_build_filename(dir, tpm2 ? "tpm2-00.permall"
                                                    : "tpm-00.permall", NULL);

    return g_file_test(f, G_FILE_TEST_EXISTS);
}

/*
 * swtpm starts a fresh TPM in an empty state directory, and its documented
 * examples rely on that; qtpm does the same, but only where there is no
 * TPM state of any kind, and says so in the log. An image that exists is
 * always used as it is (qtpm itself refuses one that lost its state).
 */
static bool prepare_image(const SwtpmSocketOpts *o, const char *image,
                          const CompatSecret *key)
{
    g_autofree char *qtpm_img = compat_find_program("qtpm-img");
    g_autofree char *dir = o->state_dir ? g_strdup(o->state_dir)
                                        : g_path_get_dirname(o->state_file);
    g_autoptr(GError) err = NULL;
    GPtrArray *a;
    bool ok;

    if (g_file_test(image, G_FILE_TEST_EXISTS)) {
        return true;
    }
    /*
     * A target on shared storage takes over the source's image; a fresh
     * TPM there would be a different TPM under the migrated guest.
     */
    if (o->mig_incoming) {
        compat_fail("--migration incoming: '%s' does not exist; an incoming "
                    "migration on shared storage continues the source's image",
                    image);
        return false;
    }
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        compat_fail("--tpmstate: '%s' is not a directory", dir);
        return false;
    }
    if (o->state_dir && has_swtpm_state(o->state_dir, o->tpm2)) {
        compat_fail("--tpmstate: '%s' holds swtpm's state files but no qtpm image; "
                    "import them first with 'qtpm-img import --swtpm-dir %s %s'",
                    o->state_dir, o->state_dir, image);
        return false;
    }
    a = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(a, g_strdup(qtpm_img));
    g_ptr_array_add(a, g_strdup("create"));
    g_ptr_array_add(a, g_strdup("--tpm"));
    g_ptr_array_add(a, g_strdup(o->tpm2 ? "2.0" : "1.2"));
    if (o->key.kind != SWTPM_KEY_NONE) {
        g_ptr_array_add(a, g_strdup(o->key.kind == SWTPM_KEY_RAW
                                    ? "--key-file" : "--passphrase-file"));
        g_ptr_array_add(a, g_strdup(key->path));
    }
    g_ptr_array_add(a, g_strdup(image));
    g_ptr_array_add(a, NULL);
    ok = compat_run((char **)a->pdata, &err);
    g_ptr_array_unref(a);
    if (!ok) {
        compat_fail("%s", err->message);
        return false;
    }
    compat_log("no TPM state in '%s': created a fresh TPM in '%s'", dir, image);
    return true;
}

static bool same_secret(const CompatSecret *a, const CompatSecret *b)
{
    return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

int main(int argc, char **argv)
{
    SwtpmSocketOpts o;
    g_autoptr(GError) err = NULL;
    CompatSecret key = { .memfd = -1 }, migkey = { .memfd = -1 };
    g_autofree char *image = NULL;
    g_autofree char *qtpm = NULL;
    char **qargv;

    error_set_progname("swtpm");
    if (!swtpm_socket_parse(argc, argv, &o, &err)) {
        error_report_err(g_steal_pointer(&err));
        return 1;
    }
    if (o.help) {
        usage();
        return 0;
    }
    if (o.version) {
        printf("TPM emulator version %s (qtpm's swtpm front door)\n", QTPM_VERSION);
        return 0;
    }
    if (o.print_capabilities) {
        printf("%s\n", swtpm_socket_capabilities_json());
        return 0;
    }
    if (o.runas && !compat_runas(o.runas, &err)) {
        error_report_err(g_steal_pointer(&err));
        return 1;
    }
    if (o.log_file) {
        if (o.log_truncate && truncate(o.log_file, 0) < 0 && errno != ENOENT) {
            error_report("--log: cannot truncate '%s': %s", o.log_file,
                         g_strerror(errno));
            return 1;
        }
        compat_set_logfile(o.log_file);
    }
    if (o.key.kind != SWTPM_KEY_NONE &&
        (!compat_secret_read("--key", &o.key, &key, &err) ||
         !compat_secret_to_memfd(&key, &err))) {
        compat_fail("%s", err->message);
        return 1;
    }
    if (o.migration_key.kind != SWTPM_KEY_NONE) {
        if (!compat_secret_read("--migration-key", &o.migration_key, &migkey,
                                &err)) {
            compat_fail("%s", err->message);
            return 1;
        }
        /*
         * qtpm seals the state blobs it migrates under keys derived from
         * the state's own key, so only that key can be the migration key
         * (libvirt passes the same secret twice).
         */
        if (o.migration_key.kind != o.key.kind || !same_secret(&key, &migkey)) {
            compat_fail("--migration-key: qtpm seals migrated state with the "
                        "--key, so the migration key must be the same key");
            return 1;
        }
        compat_secret_clear(&migkey);
    }
    image = swtpm_compat_image_path(o.state_dir, o.state_file, o.tpm2);
    if (!prepare_image(&o, image, &key)) {
        return 1;
    }
    if (o.state_mode) {
        if (chmod(image, (mode_t)g_ascii_strtoull(o.state_mode, NULL, 8)) < 0) {
            compat_fail("--tpmstate: cannot set mode %s on '%s': %s", o.state_mode,
                        image, g_strerror(errno));
            return 1;
        }
    }
    qtpm = compat_find_program("qtpm");
    qargv = swtpm_socket_qtpm_argv(&o, qtpm, image, key.path);
    /* The key's bytes live on in the memory file only. */
    if (key.data) {
        explicit_bzero(key.data, key.len);
    }
    execv(qtpm, qargv);
    compat_fail("cannot run '%s': %s", qtpm, g_strerror(errno));
    return 1;
}
