/*
 * qtest_process_line: the protocol parser over a test memory region, and
 * malformed lines answered with FAIL rather than a crash.
 */
#include "qemu/osdep.h"
#include "exec/memory.h"
#include "hw/irq.h"
#include "sysemu/qtest.h"

#define RAM_BASE 0x10000
#define RAM_SIZE 0x1000
#define NARROW_BASE 0x20000 /* a region that takes at most 4-byte accesses */

static uint8_t ram[RAM_SIZE];
static GString *narrow_log;

static uint64_t ram_read(void *opaque, uint64_t addr, unsigned size)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)ram[addr + i] << (8 * i);
    }
    return v;
}

static void ram_write(void *opaque, uint64_t addr, uint64_t val, unsigned size)
{
    for (unsigned i = 0; i < size; i++) {
        ram[addr + i] = val >> (8 * i);
    }
}

static const MemoryRegionOps ram_ops = {
    .read = ram_read,
    .write = ram_write,
    .min_access_size = 1,
    .max_access_size = 8,
};

static uint64_t narrow_read(void *opaque, uint64_t addr, unsigned size)
{
    g_string_append_printf(narrow_log, "r%u@%" PRIx64 " ", size, addr);
    return size >= 4 ? 0x44332211u : 0x44332211u & ((1u << (8 * size)) - 1);
}

static void narrow_write(void *opaque, uint64_t addr, uint64_t val, unsigned size)
{
    g_string_append_printf(narrow_log, "w%u@%" PRIx64 "=%" PRIx64 " ", size, addr, val);
}

static const MemoryRegionOps narrow_ops = {
    .read = narrow_read,
    .write = narrow_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

/* The reply to @line, as one string. */
static char *run(const char *line)
{
    GString *reply = g_string_new(NULL);

    qtest_process_line(line, reply);
    return g_string_free(reply, FALSE);
}

static void assert_reply(const char *line, const char *expected)
{
    g_autofree char *got = run(line);

    g_assert_cmpstr(got, ==, expected);
}

static void assert_fail(const char *line)
{
    g_autofree char *got = run(line);

    if (!g_str_has_prefix(got, "FAIL ") || !g_str_has_suffix(got, "\n") ||
        strchr(got, '\n') != got + strlen(got) - 1) {
        g_error("line '%s' gave '%s', not one FAIL line", line, got);
    }
}

static void test_read_write_sizes(void)
{
    memset(ram, 0, sizeof(ram));
    assert_reply("writeb 0x10000 0x1ab", "OK\n"); /* truncated to a byte */
    assert_reply("readb 0x10000", "OK 0x00000000000000ab\n");
    assert_reply("writew 0x10002 0xbeef", "OK\n");
    assert_reply("readw 0x10002", "OK 0x000000000000beef\n");
    assert_reply("readb 0x10003", "OK 0x00000000000000be\n");
    assert_reply("writel 65540 0x12345678", "OK\n"); /* decimal address */
    assert_reply("readl 0x10004", "OK 0x0000000012345678\n");
    assert_reply("writeq 0x10008 0x0102030405060708", "OK\n");
    assert_reply("readq 0x10008", "OK 0x0102030405060708\n");
    g_assert_cmpint(ram[8], ==, 0x08); /* little-endian */
    assert_reply("readl 0x1000c", "OK 0x0000000001020304\n");
}

static void test_unmapped(void)
{
    assert_reply("readq 0x0", "OK 0xffffffffffffffff\n");
    assert_reply("readb 0xfffffffffffffff0", "OK 0x00000000000000ff\n");
    assert_reply("writel 0x100 0x0", "OK\n");
    assert_reply("readl 0x100", "OK 0x00000000ffffffff\n");
    /* A read that straddles the region's end: mapped bytes then all-ones. */
    memset(ram, 0x5a, sizeof(ram));
    assert_reply("read 0x10ffe 4", "OK 0x5a5affff\n");
    assert_reply("read 0xfffe 4", "OK 0xffff5a5a\n");
}

static void test_buffers(void)
{
    memset(ram, 0, sizeof(ram));
    assert_reply("write 0x10010 4 0xdeadbeef", "OK\n");
    assert_reply("read 0x10010 4", "OK 0xdeadbeef\n");
    /* Short data is zero-filled; extra data is ignored. */
    assert_reply("write 0x10010 4 0xaa", "OK\n");
    assert_reply("read 0x10010 4", "OK 0xaa000000\n");
    assert_reply("write 0x10010 2 0x11223344", "OK\n");
    assert_reply("read 0x10010 4", "OK 0x11220000\n");
    assert_reply("write 0x10010 0 0x", "OK\n");
    assert_reply("b64write 0x10020 3 AQID", "OK\n");
    assert_reply("read 0x10020 3", "OK 0x010203\n");
    assert_reply("b64read 0x10020 3", "OK AQID\n");
    assert_reply("b64read 0x10020 0", "OK \n");
    assert_reply("memset 0x10030 5 0x7f", "OK\n");
    assert_reply("read 0x1002f 7", "OK 0x007f7f7f7f7f00\n");
    assert_reply("memset 0x10030 0 1", "OK\n");
}

static void test_access_splitting(void)
{
    g_string_truncate(narrow_log, 0);
    assert_reply("readq 0x20000", "OK 0x4433221144332211\n");
    g_assert_cmpstr(narrow_log->str, ==, "r4@0 r4@4 ");

    g_string_truncate(narrow_log, 0);
    assert_reply("write 0x20001 7 0x01020304050607", "OK\n");
    g_assert_cmpstr(narrow_log->str, ==, "w1@1=1 w2@2=302 w4@4=7060504 ");

    g_string_truncate(narrow_log, 0);
    assert_reply("writew 0x20003 0xaabb", "OK\n");
    g_assert_cmpstr(narrow_log->str, ==, "w1@3=bb w1@4=aa ");
}

static void test_irq_intercept(void)
{
    assert_fail("irq_intercept_in /machine/pci/nothing");
    assert_fail("irq_intercept_out ioapic");
    /* Level changes before interception are not reported. */
    assert_reply("set_irq_in ioapic unnamed-gpio-in 7 1", "OK\n");
    assert_reply("set_irq_in ioapic unnamed-gpio-in 7 0", "OK\n");
    assert_reply("irq_intercept_in ioapic", "OK\n");
    assert_reply("irq_intercept_in /machine/q35/ioapic", "OK\n");
    assert_reply("set_irq_in ioapic unnamed-gpio-in 5 1", "IRQ raise 5\nOK\n");
    g_assert_cmpint(qemu_get_irq_pin(5), ==, 1);
    assert_reply("set_irq_in ioapic unnamed-gpio-in 5 1", "OK\n");
    assert_reply("set_irq_in /machine/i440fx/ioapic unnamed-gpio-in 5 0",
                 "IRQ lower 5\nOK\n");
    assert_fail("set_irq_in ioapic unnamed-gpio-in 24 1");
    assert_fail("set_irq_in ioapic named 1 1");
    /* A level change outside a request reaches no client and is not lost. */
    qemu_set_irq_pin(6, 1);
    assert_reply("set_irq_in ioapic unnamed-gpio-in 6 0", "IRQ lower 6\nOK\n");
}

static void test_misc_commands(void)
{
    assert_reply("endianness", "OK little\n");
    assert_reply("endianness\r", "OK little\n");
    assert_reply("  readb   0x10030  ", "OK 0x000000000000007f\n");
    assert_reply("inb 0x60", "OK 0x00ff\n");
    assert_reply("inl 0x60", "OK 0xffffffff\n");
    assert_reply("outw 0x60 0x1234", "OK\n");
    assert_fail("inb 0x10000");
    assert_reply("clock_step 100", "OK 100\n");
    assert_reply("clock_step 0x10", "OK 116\n");
    assert_fail("clock_step");
    assert_fail("clock_step 0");
    assert_fail("clock_step -5");
    assert_reply("clock_set 50", "FAIL 116\n");
    assert_reply("clock_set 1000", "OK 1000\n");
}

static void test_malformed(void)
{
    static const char *const lines[] = {
        "",
        "   ",
        "\t",
        "readb",
        "readb zz",
        "readb 0x10000 extra",
        "readb -1",
        "readb 0x1ffffffffffffffffff",
        "readb 0x",
        "readb 12abc",
        "writeb 0x10",
        "writeb 0x10 x",
        "writeq 0x10 18446744073709551616",
        "read",
        "read 0x10",
        "read 0x10000 0",
        "read 0x10000 99999999999",
        "read 0x10000 -1",
        "write 0x10000 4",
        "write 0x10000 4 1234",
        "write 0x10000 4 0xzz",
        "write 0x10000 4 0x123",
        "write 0x10000 4 0x12 extra",
        "b64read 0x10000",
        "b64write 0x10000 4 !!!!",
        "b64write 0x10000 4 A=BC",
        "memset 0x10000 4 256",
        "memset 0x10000 4",
        "memset 0x10000 2000000 1",
        "irq_intercept_in",
        "irq_intercept_in a b",
        "set_irq_in ioapic",
        "clock_set",
        "clock_set x",
        "frobnicate",
        "READB 0x10000",
        "readx 0x10000",
        "r",
        "in",
        "outq 0x60 1",
        "\x01\x02\xff\xfe",
        "readb\x7f 1",
        "module_load a b",
    };

    for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
        assert_fail(lines[i]);
    }
}

static void test_unknown_command_is_quoted(void)
{
    g_autofree char *got = run("frobnicate 1 2");

    g_assert_cmpstr(got, ==, "FAIL Unknown command 'frobnicate'\n");
}

/* Random token soup: every line gets exactly one OK/FAIL line (plus IRQs). */
static void test_random_lines(void)
{
    static const char *const tokens[] = {
        "readb",
        "readw",
        "readl",
        "readq",
        "writeb",
        "writeq",
        "read",
        "write",
        "b64read",
        "b64write",
        "memset",
        "irq_intercept_in",
        "set_irq_in",
        "ioapic",
        "unnamed-gpio-in",
        "clock_step",
        "clock_set",
        "endianness",
        "0x10000",
        "0x10ff8",
        "0x20000",
        "0",
        "1",
        "5",
        "4096",
        "0xffffffffffffffff",
        "0x",
        "0xdeadbeef",
        "AQID",
        "==",
        "-",
        "\t",
        "x",
        "0x1g",
    };
    GRand *rand = g_rand_new_with_seed(4242);

    for (int i = 0; i < 3000; i++) {
        g_autoptr(GString) line = g_string_new(NULL);
        g_autofree char *got = NULL;
        int n = g_rand_int_range(rand, 0, 6);
        char **lines;
        guint nlines;

        for (int j = 0; j < n; j++) {
            g_string_append(line, tokens[g_rand_int_range(rand, 0, ARRAY_SIZE(tokens))]);
            g_string_append_c(line, ' ');
        }
        got = run(line->str);
        g_assert_true(g_str_has_suffix(got, "\n"));
        lines = g_strsplit(got, "\n", -1);
        nlines = g_strv_length(lines) - 1;
        for (guint k = 0; k + 1 < nlines; k++) {
            g_assert_true(g_str_has_prefix(lines[k], "IRQ "));
        }
        g_assert_true(g_str_has_prefix(lines[nlines - 1], "OK") ||
                      g_str_has_prefix(lines[nlines - 1], "FAIL"));
        g_strfreev(lines);
    }
    g_rand_free(rand);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    narrow_log = g_string_new(NULL);
    g_assert_nonnull(memory_region_add("ram", RAM_BASE, RAM_SIZE, &ram_ops, NULL));
    g_assert_nonnull(memory_region_add("narrow", NARROW_BASE, 8, &narrow_ops, NULL));
    g_assert_null(memory_region_add("overlap", RAM_BASE + 8, 8, &ram_ops, NULL));

    g_test_add_func("/qtest-proto/read-write-sizes", test_read_write_sizes);
    g_test_add_func("/qtest-proto/unmapped", test_unmapped);
    g_test_add_func("/qtest-proto/buffers", test_buffers);
    g_test_add_func("/qtest-proto/access-splitting", test_access_splitting);
    g_test_add_func("/qtest-proto/irq-intercept", test_irq_intercept);
    g_test_add_func("/qtest-proto/misc-commands", test_misc_commands);
    g_test_add_func("/qtest-proto/malformed", test_malformed);
    g_test_add_func("/qtest-proto/unknown-command", test_unknown_command_is_quoted);
    g_test_add_func("/qtest-proto/random-lines", test_random_lines);
    return g_test_run();
}
