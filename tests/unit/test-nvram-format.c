/*
 * The NVRAM store's parsers (nvram/nvram-format.c) on hostile input:
 * random buffers, random mutations of valid structures, short buffers and
 * crafted fields. They must never crash, read out of bounds (this test runs
 * in the sanitizer build) or accept what the format forbids.
 */
#include "qemu/osdep.h"
#include "qemu/crc32.h"
#include "qemu/bswap.h"

#include "nvram/nvram.h"
#include "nvram/nvram-format.h"

static const uint8_t uuid[16] = { 1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12,
                                  13, 14, 15, 16 };
static const uint8_t mac_key[32] = { 7 };

static void valid_header(uint8_t *block)
{
    NvramHeader h = { .version = 1, .tpm_version = 2 };

    memcpy(h.uuid, uuid, 16);
    nvram_header_encode(&h, block);
}

static void valid_dir(uint8_t *slot, bool encrypted, unsigned n)
{
    NvramDirectory d = { .slot_index = 0, .generation = 9, .n_entries = n };

    memcpy(d.uuid, uuid, 16);
    if (encrypted) {
        d.key.cipher = NVRAM_CIPHER_AES256_GCM;
        d.key.kdf = NVRAM_KDF_PBKDF2_SHA256;
        d.key.kdf_iterations = 600000;
        memset(d.key.kdf_salt, 0x5a, sizeof(d.key.kdf_salt));
        memset(d.key.key_check, 0xc3, sizeof(d.key.key_check));
    }
    for (unsigned i = 0; i < n; i++) {
        NvramDirEntry *e = &d.entries[i];
        e->type = i + 1;
        e->offset = NVRAM_DATA_OFFSET + i * 256 * 1024;
        e->length = 100 + i * 50000;
        e->crc32 = 0x12345678 + i;
        e->generation = 9 - i;
        if (encrypted) {
            memset(e->nonce, 0x11 * (i + 1), sizeof(e->nonce));
            memset(e->tag, 0x22 * (i + 1), sizeof(e->tag));
        }
    }
    nvram_dir_encode(&d, encrypted ? mac_key : NULL, slot);
}

static void fix_dir_crc(uint8_t *slot)
{
    stl_be_p(slot + 1020, qemu_crc32(slot, 1020));
}

static void test_header_roundtrip(void)
{
    uint8_t block[NVRAM_BLOCK_SIZE];
    NvramHeader h;
    NvramHeaderReport rep = { 0 };

    valid_header(block);
    g_assert_true(nvram_header_parse(block, sizeof(block), &h, &rep, NULL));
    g_assert_null(rep.problem);
    g_assert_cmpmem(h.uuid, 16, uuid, 16);
    g_assert_cmpuint(h.tpm_version, ==, 2);

    /* Each copy alone suffices; the report names the other. */
    block[30] ^= 1;
    g_assert_true(nvram_header_parse(block, sizeof(block), &h, &rep, NULL));
    g_assert_false(rep.copy_ok[0]);
    g_assert_true(rep.copy_ok[1]);
    g_assert_nonnull(strstr(rep.problem, "header copy 0"));
    g_free(rep.problem);
}

static void test_header_errors(void)
{
    uint8_t block[NVRAM_BLOCK_SIZE] = { 0 };
    NvramHeader h;
    GError *err = NULL;

    g_assert_false(nvram_header_parse(block, sizeof(block), &h, NULL, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_NOT_FOUND);
    g_clear_error(&err);

    /* Short buffers are zero-padded, never over-read. */
    valid_header(block);
    for (size_t len = 0; len <= 130; len++) {
        uint8_t *copy = g_memdup2(block, len ? len : 1);
        bool ok = nvram_header_parse(copy, len, &h, NULL, &err);
        g_assert_cmpint(ok, ==, len >= NVRAM_HEADER_SIZE);
        g_clear_error(&err);
        g_free(copy);
    }

    /* A newer version with a valid CRC in both copies is unsupported. */
    for (int c = 0; c < 2; c++) {
        uint8_t *p = block + c * NVRAM_HEADER_COPY_STRIDE;
        stl_be_p(p + 8, 2);
        stl_be_p(p + 124, qemu_crc32(p, 124));
    }
    g_assert_false(nvram_header_parse(block, sizeof(block), &h, NULL, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(err->message, "newer"));
    g_clear_error(&err);

    /* Fields v1 fixes: every layout field and flag changed, CRC fixed. */
    static const struct { unsigned off; uint32_t val; int code; } cases[] = {
        { 8, 0, QTPM_ERROR_CORRUPT },
        { 12, 256, QTPM_ERROR_CORRUPT },
        { 16, 2, QTPM_ERROR_UNSUPPORTED },
        { 44, 512, QTPM_ERROR_CORRUPT },
        { 52, 4097, QTPM_ERROR_CORRUPT },
        { 60, 0, QTPM_ERROR_CORRUPT },
        { 64, 8192, QTPM_ERROR_CORRUPT },
        { 72, 0, QTPM_ERROR_CORRUPT },
        { 40, 0x03000000, QTPM_ERROR_CORRUPT },
        { 100, 1, QTPM_ERROR_CORRUPT },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        valid_header(block);
        for (int c = 0; c < 2; c++) {
            uint8_t *p = block + c * NVRAM_HEADER_COPY_STRIDE;
            stl_be_p(p + cases[i].off, cases[i].val);
            stl_be_p(p + 124, qemu_crc32(p, 124));
        }
        g_assert_false(nvram_header_parse(block, sizeof(block), &h, NULL, &err));
        g_assert_error(err, QTPM_ERROR, cases[i].code);
        g_clear_error(&err);
    }
}

static void test_dir_roundtrip(void)
{
    uint8_t slot[NVRAM_SLOT_SIZE];
    NvramDirectory d;
    GError *err = NULL;

    for (int enc = 0; enc < 2; enc++) {
        for (unsigned n = 0; n <= TPM_STATE_BLOB_TYPE_MAX; n++) {
            valid_dir(slot, enc, n);
            g_assert_true(nvram_dir_parse(slot, sizeof(slot), 0, uuid, &d, &err));
            g_assert_no_error(err);
            g_assert_cmpuint(d.n_entries, ==, n);
            g_assert_cmpuint(d.generation, ==, 9);
            g_assert_cmpint(nvram_dir_mac_ok(slot, sizeof(slot), mac_key), ==, enc);
            /* Wrong slot, wrong image, short buffer. */
            g_assert_false(nvram_dir_parse(slot, sizeof(slot), 1, uuid, &d, &err));
            g_clear_error(&err);
            {
                uint8_t other[16] = { 0 };
                g_assert_false(nvram_dir_parse(slot, sizeof(slot), 0, other, &d, &err));
                g_clear_error(&err);
            }
            g_assert_false(nvram_dir_parse(slot, NVRAM_SLOT_SIZE - 1, 0, uuid, &d, &err));
            g_clear_error(&err);
        }
    }
}

/* Crafted entries and key records, each with a valid CRC: all refused. */
static void test_dir_crafted(void)
{
    uint8_t slot[NVRAM_SLOT_SIZE];
    NvramDirectory d;
    GError *err = NULL;
    const unsigned e0 = 112, e1 = 112 + 64;
    static const struct { unsigned off; uint32_t val; bool enc; } cases[] = {
        { 12, 9, false },               /* too many entries */
        { 12, 3, false },               /* more entries than written */
        { 16, 0x80000000, false },      /* generation beyond INT64_MAX */
        { 20, 0, false },               /* generation 0 */
        { e0, 0, false },               /* unknown type */
        { e0, 4, false },
        { e0 + 4, 1, false },           /* flags */
        { e0 + 12, 12288 + 1, false },  /* unaligned offset */
        { e0 + 12, 4096, false },       /* inside the slots */
        { e0 + 8, 0x10000, false },     /* beyond NVRAM_MAX_OFFSET */
        { e0 + 16, 0, false },          /* length 0 */
        { e0 + 16, 5u << 20, false },   /* too long */
        { e0 + 28, 10, false },         /* entry generation > directory's */
        { e0 + 28, 0, false },
        { e0 + 32, 1, false },          /* nonce in a plain store */
        { e1, 1, false },               /* duplicate type */
        { e1 + 12, 12288, false },      /* overlapping extents */
        { 40, 0x02000000, false },      /* unknown cipher */
        { 40, 0x01000000, false },      /* cipher without KDF */
        { 40, 0x00010000, false },      /* KDF without cipher */
        { 44, 999, true },              /* too few iterations */
        { 44, 100000001, true },
        { 40, 0x01030000, true },       /* unknown KDF */
        { 40, 0x01010000, true },       /* raw key with a salt */
        { 42 - 2, 0x01020001, true },   /* reserved byte */
        { 984, 1, false },              /* a MAC in a plain store */
        { 1016, 1, false },             /* reserved */
        { 2000, 1, false },             /* padding of the slot block */
        { 0, 0x51545051, false },       /* magic */
        { 8, 1, false },                /* slot index */
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        valid_dir(slot, cases[i].enc, 2);
        stl_be_p(slot + cases[i].off, cases[i].val);
        if (cases[i].off < 1020) {
            fix_dir_crc(slot);
        }
        if (nvram_dir_parse(slot, sizeof(slot), 0, uuid, &d, &err)) {
            g_error("crafted case %zu (offset %u = 0x%x) was accepted", i,
                    cases[i].off, cases[i].val);
        }
        g_assert_error(err, QTPM_ERROR, QTPM_ERROR_CORRUPT);
        g_clear_error(&err);
    }
}

/* Random bytes, and random mutations of valid structures with fixed CRCs. */
static void test_random(void)
{
    GRand *r = g_rand_new_with_seed(20261127);
    uint8_t buf[NVRAM_BLOCK_SIZE];
    NvramHeader h;
    NvramDirectory d;

    for (int i = 0; i < 20000; i++) {
        size_t len = g_rand_int_range(r, 0, sizeof(buf) + 1);
        uint8_t *p;
        bool ok;
        int mode = i % 4;

        if (mode == 0) {
            for (size_t k = 0; k < sizeof(buf); k++) {
                buf[k] = g_rand_int(r);
            }
        } else if (mode == 1) {
            valid_header(buf);
        } else {
            valid_dir(buf, mode == 3, g_rand_int_range(r, 0, 4));
        }
        if (mode) {
            int flips = g_rand_int_range(r, 1, 6);
            for (int k = 0; k < flips; k++) {
                unsigned off = mode == 1 ? g_rand_int_range(r, 0, 128)
                                         : g_rand_int_range(r, 0, 1020);
                buf[off] = g_rand_int(r);
            }
            if (mode == 1) {
                stl_be_p(buf + 124, qemu_crc32(buf, 124));
            } else if (g_rand_boolean(r)) {
                fix_dir_crc(buf);
            }
        }
        /* An exact-size heap copy lets the sanitizer catch any over-read. */
        p = g_memdup2(buf, len ? len : 1);
        ok = nvram_header_parse(p, len, &h, NULL, NULL);
        if (ok) {
            g_assert_true(h.tpm_version == 1 || h.tpm_version == 2);
        }
        ok = nvram_dir_parse(p, len, 0, mode ? uuid : buf + 24, &d, NULL);
        if (ok) {
            g_assert_cmpuint(d.n_entries, <=, NVRAM_DIR_MAX_ENTRIES);
            for (unsigned k = 0; k < d.n_entries; k++) {
                g_assert_cmpuint(d.entries[k].offset, >=, NVRAM_DATA_OFFSET);
                g_assert_cmpuint(d.entries[k].length, <=, NVRAM_MAX_BLOB_LEN);
                g_assert_cmpuint(d.entries[k].generation, <=, d.generation);
            }
            nvram_dir_mac_ok(p, len, mac_key);
        }
        g_free(p);
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/nvram-format/header/roundtrip", test_header_roundtrip);
    g_test_add_func("/nvram-format/header/errors", test_header_errors);
    g_test_add_func("/nvram-format/dir/roundtrip", test_dir_roundtrip);
    g_test_add_func("/nvram-format/dir/crafted", test_dir_crafted);
    g_test_add_func("/nvram-format/random", test_random);
    return g_test_run();
}
