/*
 * TIS MMIO from a hostile guest in front of the null backend: every access
 * size, locality and register offset, with commands completing between
 * accesses (sequence format: tests/fuzz/fuzz-util.h, fuzz_tis_run).
 */
#include "fuzz-util.h"
#include "qemu/option.h"
#include "sysemu/tpm_backend.h"

static TPMBackend *backend;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GHashTable) o = qemu_opts_parse("null,id=tpm0", "type", &err);

    backend = o ? tpm_backend_new("null", "tpm0", o, &err) : NULL;
    if (!backend || !fuzz_tis_create(backend)) {
        fprintf(stderr, "fuzz-tis-null: %s\n", err ? err->message : "no device");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_tis_run(backend, data, size);
    return 0;
}
