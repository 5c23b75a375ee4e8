/*
 * The NVRAM store on a hostile image (the whole input is a qcow2 or raw image
 * file): open, load every blob, get_info and check, as a reader with and
 * without the key, and as the owner with and without it, which then commits
 * and deletes. Each step works or fails with an error; none may crash, hang
 * or leak.
 */
#include "fuzz-util.h"
#include "block/block.h"
#include "nvram/nvram.h"
#include "qemu/crc32.h"

static void read_all(NvramStore *s)
{
    NvramInfo info;

    for (int t = TPM_STATE_BLOB_PERMANENT; t <= TPM_STATE_BLOB_TYPE_MAX; t++) {
        uint8_t *d = NULL;
        size_t l = 0;

        if (nvram_load(s, t, &d, &l, NULL) > 0) {
            g_free(d);
        }
    }
    nvram_get_info(s, &info, NULL);
    nvram_check(s, NULL);
}

static void write_some(NvramStore *s, uint32_t seed)
{
    static uint8_t blob[5000];
    NvramBlobUpdate up[2] = {
        { .type = TPM_STATE_BLOB_PERMANENT, .data = blob, .len = 100 + seed % 4900 },
        { .type = TPM_STATE_BLOB_VOLATILE, .data = blob, .len = seed % 700 },
    };

    memset(blob, seed, sizeof(blob));
    if (nvram_commit(s, up, 2, NULL) == 0) {
        read_all(s);
    }
    nvram_delete(s, TPM_STATE_BLOB_VOLATILE, NULL);
    nvram_store(s, TPM_STATE_BLOB_SAVESTATE, blob, 64, NULL);
    read_all(s);
}

static void one_open(const uint8_t *data, size_t size, bool owner, bool keyed,
                     uint32_t seed)
{
    static const char *const formats[] = { "qcow2", "raw" };
    BlockOpenOptions bo = { .format = formats[seed >> 31], .read_only = !owner };
    NvramOpenOptions no = {
        .owner = owner,
        .tpm_version = 2,
        .allow_no_key = !owner && !keyed,
        .format_blank = owner && (seed & 2),
    };
    BlockDriverState *bs = bdrv_open(fuzz_image_file(data, size), &bo, NULL);
    NvramStore *s;

    if (!bs) {
        return;
    }
    if (keyed) {
        no.key = fuzz_raw_key;
    }
    s = nvram_open(bs, &no, NULL);
    if (s) {
        read_all(s);
        if (owner) {
            write_some(s, seed);
        }
        nvram_close(s);
    }
    bdrv_close(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t seed = qemu_crc32(data, size);

    for (int i = 0; i < 4; i++) {
        one_open(data, size, i & 2, i & 1, seed);
    }
    return 0;
}
