/*
 * Unit tests for util/cutils.c.
 */
#include "qemu/osdep.h"

#include "block/block.h"

static void test_strtosz_valid(void)
{
    static const struct {
        const char *str;
        uint64_t value;
    } cases[] = {
        { "0", 0 },
        { "512", 512 },
        { "512b", 512 },
        { "4k", 4096 },
        { "4K", 4096 },
        { "1M", 1 << 20 },
        { "1m", 1 << 20 },
        { "2G", 2ULL << 30 },
        { "3T", 3ULL << 40 },
        { "1P", 1ULL << 50 },
        { "7E", 7ULL << 60 },
        { "0x1000", 0x1000 },
        { "0XfF", 0xff },
        { "18446744073709551615", UINT64_MAX },
        { "0xffffffffffffffff", UINT64_MAX },
        { "16777215T", 16777215ULL << 40 },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        uint64_t v = 12345;

        g_assert_true(qemu_strtosz(cases[i].str, &v));
        g_assert_cmpuint(v, ==, cases[i].value);
    }
}

static void test_strtosz_invalid(void)
{
    static const char *const cases[] = {
        "", "k", "-1", " 1", "1 ", "1kk", "1x", "1.5k", "0x", "0x1k",
        "0xg", "18446744073709551616", "16E", "16777216T",
        "0x10000000000000000", "+4", "4KiB",
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        uint64_t v = 12345;

        if (qemu_strtosz(cases[i], &v)) {
            g_error("'%s' was accepted as %" PRIu64, cases[i], v);
        }
        g_assert_cmpuint(v, ==, 12345);
    }
    g_assert_false(qemu_strtosz(NULL, NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cutils/strtosz/valid", test_strtosz_valid);
    g_test_add_func("/cutils/strtosz/invalid", test_strtosz_invalid);
    return g_test_run();
}
