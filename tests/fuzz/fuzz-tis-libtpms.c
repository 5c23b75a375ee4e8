/*
 * TIS MMIO from a hostile guest in front of libtpms, whose state is a keyed
 * store on a qcow2 image in a scratch folder: commands that reach the TPM
 * run to completion, so the TPM's own parser gets the guest's bytes too
 * (sequence format: tests/fuzz/fuzz-util.h, fuzz_tis_run).
 */
#include "fuzz-util.h"
#include "block/block.h"
#include "crypto/secret.h"
#include "qemu/option.h"
#include "sysemu/blockdev.h"
#include "sysemu/tpm_backend.h"

static TPMBackend *backend;
static char *scratch;

static void remove_scratch(void)
{
    g_autofree char *img = g_build_filename(scratch, "tpm.qcow2", NULL);

    unlink(img);
    rmdir(scratch);
}

static bool setup(GError **errp)
{
    g_autofree char *img = NULL;
    g_autofree char *drive = NULL;
    g_autoptr(GHashTable) d = NULL;
    g_autoptr(GHashTable) k = NULL;
    g_autoptr(GHashTable) b = NULL;

    scratch = g_dir_make_tmp("qtpm-fuzz-XXXXXX", errp);
    if (!scratch) {
        return false;
    }
    atexit(remove_scratch);
    img = g_build_filename(scratch, "tpm.qcow2", NULL);
    if (qcow2_create(img, 1 << 20, NULL, errp) < 0) {
        return false;
    }
    drive = g_strdup_printf("file=%s,if=none,id=drive0", img);
    d = qemu_opts_parse(drive, NULL, errp);
    if (!d || !drive_new(d, false, errp)) {
        return false;
    }
    k = qemu_opts_parse("id=key0,format=hex,data=000102030405060708090a0b0c0d0e0f"
                        "101112131415161718191a1b1c1d1e1f", NULL, errp);
    if (!k || !qcrypto_secret_new(k, errp)) {
        return false;
    }
    b = qemu_opts_parse("libtpms,id=tpm0,nvram=drive0,key-secret=key0", "type", errp);
    if (!b) {
        return false;
    }
    backend = tpm_backend_new("libtpms", "tpm0", b, errp);
    return backend != NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_autoptr(GError) err = NULL;

    if (!setup(&err) || !fuzz_tis_create(backend)) {
        fprintf(stderr, "fuzz-tis-libtpms: %s\n", err ? err->message : "no device");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_tis_run(backend, data, size);
    return 0;
}
