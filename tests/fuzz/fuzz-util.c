/*
 * Shared pieces of the libFuzzer targets (docs/fuzzing.md).
 */
#include "fuzz-util.h"
#include <sys/mman.h>
#include "exec/memory.h"
#include "hw/tpm/tpm_tis.h"
#include "sysemu/tpm_backend.h"

static const uint8_t raw_key_bytes[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
const QCryptoKey fuzz_raw_key = {
    .kind = QCRYPTO_KEY_RAW, .data = raw_key_bytes, .len = sizeof(raw_key_bytes),
};

const char *fuzz_image_file(const uint8_t *data, size_t len)
{
    static int fd = -1;
    static char name[64];

    /* A memfd: no disk I/O per input, and nothing left behind on a crash. */
    if (fd < 0) {
        fd = memfd_create("qtpm-fuzz-image", MFD_CLOEXEC);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, len, 0) != (ssize_t)len) {
        perror("fuzz image");
        abort();
    }
    return name;
}

uint8_t fuzz_u8(FuzzInput *in)
{
    uint8_t v = 0;

    if (in->left) {
        v = *in->p++;
        in->left--;
    }
    return v;
}

uint32_t fuzz_u32(FuzzInput *in)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        v |= (uint32_t)fuzz_u8(in) << (8 * i);
    }
    return v;
}

const uint8_t *fuzz_bytes(FuzzInput *in, size_t max, size_t *len)
{
    const uint8_t *p = in->p;

    *len = MIN(max, in->left);
    in->p += *len;
    in->left -= *len;
    return p;
}

static TPMTISState *fuzz_tis;

bool fuzz_tis_create(TPMBackend *be)
{
    g_autoptr(GError) err = NULL;

    fuzz_tis = tpm_tis_create(be, 5, &err);
    if (!fuzz_tis) {
        fprintf(stderr, "fuzz: tpm-tis: %s\n", err->message);
        return false;
    }
    return true;
}

void fuzz_tis_run(TPMBackend *be, const uint8_t *data, size_t len)
{
    FuzzInput in = { data, len };

    while (in.left) {
        uint8_t op = fuzz_u8(&in);
        unsigned size = 1u << ((op >> 1) & 3);
        unsigned loc = ((op >> 3) & 7) % TPM_TIS_NUM_LOCALITIES;
        uint32_t off = (fuzz_u8(&in) | (fuzz_u8(&in) << 8)) & 0xfff;
        uint64_t addr = TPM_TIS_ADDR(loc, off);

        if (op & 1) {
            uint64_t val = 0;

            for (unsigned i = 0; i < size; i++) {
                val |= (uint64_t)fuzz_u8(&in) << (8 * i);
            }
            address_space_stn(addr, size, val);
        } else {
            address_space_ldn(addr, size);
        }
        if (op & 0x40) {
            /* Let a completed command reach the device, as a guest's poll would. */
            tpm_backend_finish_sync(be);
            while (g_main_context_iteration(NULL, FALSE)) {
            }
        }
    }
    tpm_backend_finish_sync(be);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    tpm_tis_reset(fuzz_tis);
}
