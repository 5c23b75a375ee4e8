/*
 * swtpm_setup: the front door that libvirt runs once per TPM. It makes the
 * qtpm image with `qtpm-img create` and, when asked for an EK or
 * certificates, runs `qtpm-img manufacture` on it, both on a temporary
 * name that is renamed into place only when everything succeeded: a
 * failed or interrupted setup never leaves a half-made TPM under the
 * image's name. docs/swtpm-compat.md.
 */
#include "qemu/osdep.h"

#include "qemu/error-report.h"
#include "swtpm-compat-run.h"

#define COMPAT_DEFAULT_CA_DIR "/var/lib/qtpm/localca"

static void usage(void)
{
    printf("Usage: swtpm_setup [OPTIONS]\n"
           "qtpm's swtpm_setup-compatible front door (docs/swtpm-compat.md)\n"
           "  --tpm-state DIR|dir://DIR|file://PATH   (alias --tpmstate)\n"
           "  --tpm2                   TPM 2.0 (default: TPM 1.2, no EK)\n"
           "  --createek --create-ek-cert --create-platform-cert --lock-nvram\n"
           "  --vmid ID  --logfile FILE  --runas USER\n"
           "  --pwdfile FILE | --pwdfile-fd N  [--cipher aes-128-cbc|aes-256-cbc]\n"
           "  --overwrite | --not-overwrite\n"
           "  --print-capabilities  --version  --help\n"
           "The local CA lives in $QTPM_CA_DIR (default " COMPAT_DEFAULT_CA_DIR ").\n");
}

static bool fsync_path(const char *path, GError **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) < 0) {
        g_set_error(errp, g_quark_from_static_string("swtpm-compat-error"), 0,
                    "cannot flush '%s': %s", path, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    close(fd);
    return true;
}

static bool make_image(const SwtpmSetupOpts *o, const char *image,
                       const CompatSecret *key, GError **errp)
{
    g_autofree char *qtpm_img = compat_find_program("qtpm-img");
    g_autofree char *tmp = g_strdup_printf("%s.new", image);
    g_autofree char *dir = g_path_get_dirname(image);
    const char *ca_dir = g_getenv("QTPM_CA_DIR");
    g_auto(GStrv) create = NULL;
    g_auto(GStrv) manufacture = NULL;

    if (!ca_dir || !*ca_dir) {
        ca_dir = COMPAT_DEFAULT_CA_DIR;
    }
    /* Left by an interrupted run of ours: never anyone's state. */
    if (unlink(tmp) < 0 && errno != ENOENT) {
        g_set_error(errp, g_quark_from_static_string("swtpm-compat-error"), 0,
                    "cannot remove '%s': %s", tmp, g_strerror(errno));
        return false;
    }
    create = swtpm_setup_create_argv(o, qtpm_img, tmp, key->path);
    manufacture = swtpm_setup_manufacture_argv(o, qtpm_img, ca_dir, tmp, key->path);
    if (!compat_run(create, errp) ||
        (manufacture && !compat_run(manufacture, errp)) ||
        !fsync_path(tmp, errp)) {
        unlink(tmp);
        return false;
    }
    if (rename(tmp, image) < 0) {
        g_set_error(errp, g_quark_from_static_string("swtpm-compat-error"), 0,
                    "cannot rename '%s' to '%s': %s", tmp, image, g_strerror(errno));
        unlink(tmp);
        return false;
    }
    return fsync_path(dir, errp);
}

int main(int argc, char **argv)
{
    SwtpmSetupOpts o;
    g_autoptr(GError) err = NULL;
    CompatSecret key = { .memfd = -1 };
    g_autofree char *image = NULL;
    g_autofree char *dir = NULL;
    bool exists;

    error_set_progname("swtpm_setup");
    if (!swtpm_setup_parse(argc, argv, &o, &err)) {
        error_report_err(g_steal_pointer(&err));
        return 1;
    }
    if (o.help) {
        usage();
        return 0;
    }
    if (o.version) {
        printf("TPM emulator setup tool version %s (qtpm's swtpm_setup front door)\n",
               QTPM_VERSION);
        return 0;
    }
    if (o.print_capabilities) {
        printf("%s\n", swtpm_setup_capabilities_json());
        return 0;
    }
    if (o.runas && !compat_runas(o.runas, &err)) {
        error_report_err(g_steal_pointer(&err));
        return 1;
    }
    compat_set_logfile(o.logfile);
    image = swtpm_compat_image_path(o.state_dir, o.state_file, o.tpm2);
    dir = g_path_get_dirname(image);
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        compat_fail("--tpm-state: '%s' is not a directory", dir);
        return 1;
    }
    exists = g_file_test(image, G_FILE_TEST_EXISTS);
    if (!exists && o.state_dir && !o.overwrite) {
        g_autofree char *permall = g_build_filename(
            o.state_dir, o.tpm2 ? "tpm2-00.permall" : "tpm-00.permall", NULL);

        if (g_file_test(permall, G_FILE_TEST_EXISTS)) {
            compat_fail("'%s' holds swtpm's state files but no qtpm image; import "
                        "them with 'qtpm-img import --swtpm-dir %s %s'",
                        o.state_dir, o.state_dir, image);
            return 1;
        }
    }
    if (exists && o.not_overwrite) {
        compat_fail("'%s' already holds TPM state; not overwritten "
                    "(--not-overwrite)", image);
        return 0;
    }
    if (exists && !o.overwrite) {
        compat_fail("'%s' already holds TPM state; give --overwrite to replace it "
                    "or --not-overwrite to keep it", image);
        return 1;
    }
    /* Read once: a descriptor can be read only once, the children are two. */
    if (o.key.kind != SWTPM_KEY_NONE &&
        (!compat_secret_read(o.key.file ? "--pwdfile" : "--pwdfile-fd", &o.key,
                             &key, &err) ||
         !compat_secret_to_memfd(&key, &err))) {
        compat_fail("%s", err->message);
        return 1;
    }
    if (!make_image(&o, image, &key, &err)) {
        compat_fail("%s; '%s' was left as it was", err->message, image);
        compat_secret_clear(&key);
        return 1;
    }
    compat_secret_clear(&key);
    compat_log("set up TPM %s state in '%s'%s", o.tpm2 ? "2.0" : "1.2", image,
               exists ? " (the old state was replaced)" : "");
    swtpm_setup_opts_clear(&o);
    return 0;
}
