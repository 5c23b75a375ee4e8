/*
 * The swtpm-compatible command lines (tools/swtpm-compat/swtpm-compat-opts.c):
 * the input is an argument vector, arguments separated by NUL bytes, given
 * to each of the three parsers; what parses is translated into qtpm's and
 * qtpm-img's argument vectors and swtpm_ioctl's request, as the front doors
 * do. A refusal is one sentence on one line.
 */
#include "fuzz-util.h"
#include "../../tools/swtpm-compat/swtpm-compat.h"
#include "../../tools/swtpm-compat/swtpm-compat-run.h"

#define MAX_ARGS 40

static void one_line(GError *err)
{
    if (!err || !err->message[0] || strchr(err->message, '\n')) {
        abort();
    }
}

static void socket_cmdline(int argc, char **argv)
{
    SwtpmSocketOpts o;
    g_autoptr(GError) err = NULL;

    if (!swtpm_socket_parse(argc, argv, &o, &err)) {
        one_line(err);
        return;
    }
    /* As the front door: --help, --version and --print-capabilities end there. */
    if ((o.state_dir || o.state_file) &&
        !o.help && !o.version && !o.print_capabilities) {
        g_autofree char *img = swtpm_compat_image_path(o.state_dir, o.state_file,
                                                       o.tpm2);
        g_strfreev(swtpm_socket_qtpm_argv(&o, "qtpm", img, "/k"));
    }
    swtpm_socket_opts_clear(&o);
}

static void setup_cmdline(int argc, char **argv)
{
    SwtpmSetupOpts o;
    g_autoptr(GError) err = NULL;

    if (!swtpm_setup_parse(argc, argv, &o, &err)) {
        one_line(err);
        return;
    }
    if ((o.state_dir || o.state_file) &&
        !o.help && !o.version && !o.print_capabilities) {
        g_autofree char *img = swtpm_compat_image_path(o.state_dir, o.state_file,
                                                       o.tpm2);
        g_strfreev(swtpm_setup_create_argv(&o, "qtpm-img", img, "/k"));
        g_strfreev(swtpm_setup_manufacture_argv(&o, "qtpm-img", "/ca", img, "/k"));
    }
    swtpm_setup_opts_clear(&o);
}

static void ioctl_cmdline(int argc, char **argv)
{
    SwtpmIoctlOpts o;
    g_autoptr(GError) err = NULL;
    uint8_t req[64];

    if (!swtpm_ioctl_parse(argc, argv, &o, &err)) {
        one_line(err);
        return;
    }
    if (!o.help && !o.version) {
        swtpm_ioctl_encode(&o, 0, req, sizeof(req));
    }
    swtpm_ioctl_opts_clear(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[MAX_ARGS + 2];
    g_autofree char *copy = g_malloc(size + 1);
    int argc = 1;
    size_t start = 0;

    memcpy(copy, data, size);
    copy[size] = '\0';
    argv[0] = (char *)"prog";
    for (size_t i = 0; i <= size && argc <= MAX_ARGS; i++) {
        if (i == size || copy[i] == '\0') {
            if (i > start || i < size) {
                argv[argc++] = copy + start;
            }
            start = i + 1;
        }
    }
    argv[argc] = NULL;
    /* The parsers may permute argv as getopt does: each gets its own copy. */
    {
        char *a1[MAX_ARGS + 2], *a2[MAX_ARGS + 2], *a3[MAX_ARGS + 2];

        memcpy(a1, argv, sizeof(argv));
        memcpy(a2, argv, sizeof(argv));
        memcpy(a3, argv, sizeof(argv));
        socket_cmdline(argc, a1);
        setup_cmdline(argc, a2);
        ioctl_cmdline(argc, a3);
    }
    return 0;
}
