/*
 * The null TPM backend: answers every command with a failure response, so a
 * guest sees a TPM that exists but does not work. It keeps no state: the
 * state and storage operations report that (tpm_backend.c), and migration
 * refuses it.
 */
#include "qemu/osdep.h"
#include "qemu/option.h"
#include "sysemu/tpm_options.h"
#include "sysemu/tpm_util.h"
#include "tpm_backend_int.h"

typedef struct TPMNullState {
    TPMVersion version;
} TPMNullState;

static const QemuOptDesc tpm_null_opts[] = {
    TPM_BACKEND_OPT_TYPE_ID,
    TPM_BACKEND_OPT_VERSION,
    QEMU_OPT_DESC_END
};

static int tpm_null_init(TPMBackend *tb, GHashTable *opts, GError **errp)
{
    TPMNullState *s;

    s = g_new0(TPMNullState, 1);
    s->version = tpm_backend_opt_version(opts, TPM_VERSION_2_0);
    tb->opaque = s;
    return 0;
}

static void tpm_null_handle_request(TPMBackend *tb, TPMBackendCmd *cmd)
{
    TPMNullState *s = tb->opaque;

    tpm_util_write_fatal_error_response(cmd->out, cmd->out_len, s->version);
}

static TPMVersion tpm_null_get_tpm_version(TPMBackend *tb)
{
    return ((TPMNullState *)tb->opaque)->version;
}

static size_t tpm_null_get_buffer_size(TPMBackend *tb)
{
    return 4096;
}

static void tpm_null_query(TPMBackend *tb, GHashTable *out)
{
    TPMNullState *s = tb->opaque;

    g_hash_table_insert(out, g_strdup("version"),
                        g_strdup(s->version == TPM_VERSION_1_2 ? "1.2"
                                                               : "2.0"));
}

static void tpm_null_finalize(TPMBackend *tb)
{
    g_free(tb->opaque);
    tb->opaque = NULL;
}

const TPMBackendClass tpm_null_class = {
    .type = "null",
    .desc = "answers every command with a failure response",
    .opts = tpm_null_opts,
    .init = tpm_null_init,
    .handle_request = tpm_null_handle_request,
    .finalize = tpm_null_finalize,
    .get_tpm_version = tpm_null_get_tpm_version,
    .get_buffer_size = tpm_null_get_buffer_size,
    .query = tpm_null_query,
};
