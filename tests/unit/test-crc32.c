/*
 * Unit tests for util/crc32.c: qemu_crc32 is zlib's crc32, at every length
 * and alignment the folding code has its own path for, and in pieces.
 */
#include "qemu/osdep.h"

#include <zlib.h>

#include "qemu/crc32.h"

static uint32_t zlib_crc32(const uint8_t *buf, size_t len)
{
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, len);
}

/* The check value of the CRC-32/ISO-HDLC catalogue entry. */
static void test_crc32_check_value(void)
{
    g_assert_cmphex(qemu_crc32((const uint8_t *)"123456789", 9), ==, 0xcbf43926);
    g_assert_cmphex(qemu_crc32(NULL, 0), ==, 0);
}

static void test_crc32_matches_zlib(void)
{
    g_autofree uint8_t *buf = g_malloc(256 * 1024 + 64);
    GRand *r = g_rand_new_with_seed(11);

    for (size_t i = 0; i < 256 * 1024 + 64; i++) {
        buf[i] = g_rand_int(r);
    }
    /* Every short length and alignment, then lengths around the fold sizes. */
    for (size_t off = 0; off < 64; off++) {
        for (size_t len = 0; len <= 300; len++) {
            g_assert_cmphex(qemu_crc32(buf + off, len), ==, zlib_crc32(buf + off, len));
        }
    }
    for (int i = 0; i < 200; i++) {
        size_t off = g_rand_int_range(r, 0, 64);
        size_t len = g_rand_int_range(r, 0, 256 * 1024);

        g_assert_cmphex(qemu_crc32(buf + off, len), ==, zlib_crc32(buf + off, len));
    }
    g_assert_cmphex(qemu_crc32(buf, 177152), ==, zlib_crc32(buf, 177152));
    g_rand_free(r);
}

static void test_crc32_update_in_pieces(void)
{
    g_autofree uint8_t *buf = g_malloc(70000);
    uint32_t whole, crc = 0;
    size_t pos = 0;

    for (size_t i = 0; i < 70000; i++) {
        buf[i] = (uint8_t)(i * 131 + 7);
    }
    whole = qemu_crc32(buf, 70000);
    g_assert_cmphex(whole, ==, zlib_crc32(buf, 70000));
    for (size_t step = 1; pos < 70000; step = step * 3 + 1) {
        size_t n = MIN(step, 70000 - pos);

        crc = qemu_crc32_update(crc, buf + pos, n);
        pos += n;
    }
    g_assert_cmphex(crc, ==, whole);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crc32/check-value", test_crc32_check_value);
    g_test_add_func("/crc32/matches-zlib", test_crc32_matches_zlib);
    g_test_add_func("/crc32/update-in-pieces", test_crc32_update_in_pieces);
    return g_test_run();
}
