/*
 * The migration stream decoder (docs/migration-stream.md) on hostile bytes,
 * whole and pushed the way the channel reads it, without a key and with a
 * raw key; the TIS device state a decoded stream carries is then loaded into
 * a TIS in front of the null backend, as the migration target does.
 */
#include "fuzz-util.h"
#include "hw/tpm/tpm_tis.h"
#include "migration/stream.h"
#include "qemu/option.h"
#include "sysemu/tpm_backend.h"

static TPMTISState *tis;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GHashTable) o = qemu_opts_parse("null,id=tpm0", "type", &err);
    TPMBackend *be = o ? tpm_backend_new("null", "tpm0", o, &err) : NULL;

    tis = be ? tpm_tis_create(be, 5, &err) : NULL;
    if (!tis) {
        fprintf(stderr, "fuzz-migration-stream: %s\n", err->message);
        abort();
    }
    return 0;
}

/* The channel's way: exactly what the decoder asks for, push by push. */
static MigStreamContents *decode_incremental(const uint8_t *data, size_t size,
                                             const QCryptoKey *key)
{
    MigStreamDecoder *d = mig_stream_decoder_new(key);
    MigStreamContents *c = NULL;
    size_t need;

    while ((need = mig_stream_decoder_need(d)) != 0 && need <= size) {
        if (mig_stream_decoder_push(d, data, need, NULL) < 0) {
            break;
        }
        mig_stream_decoder_header(d);
        data += need;
        size -= need;
    }
    if (mig_stream_decoder_done(d)) {
        c = mig_stream_decoder_steal(d);
    }
    mig_stream_decoder_free(d);
    return c;
}

static void load_device_state(MigStreamContents *c)
{
    GBytes *b = c->section[MIG_SECTION_TIS];

    if (b) {
        gsize len;
        const uint8_t *p = g_bytes_get_data(b, &len);

        tpm_tis_load_state(tis, p, len, NULL);
        tpm_tis_reset(tis);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QCryptoKey *keys[] = { NULL, &fuzz_raw_key };
    MigStreamHeader h;

    mig_stream_header_parse(data, size, &h, NULL);
    for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
        MigStreamContents *c = NULL;

        if (mig_stream_decode(data, size, keys[k], &c, NULL) == 0) {
            load_device_state(c);
            mig_stream_contents_free(c);
        }
        c = decode_incremental(data, size, keys[k]);
        if (c) {
            mig_stream_contents_free(c);
        }
    }
    /* A TIS section on its own, as the device loads it. */
    if (tpm_tis_load_state(tis, data, size, NULL) == 0) {
        tpm_tis_reset(tis);
    }
    return 0;
}
