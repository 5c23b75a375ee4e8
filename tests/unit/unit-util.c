/*
 * Helpers shared by the unit tests; see unit-util.h.
 */
#include "qemu/osdep.h"

#include "unit-util.h"

void unit_remove_dir(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        unlink(p);
    }
    rmdir(dir);
}

void unit_patch(const char *path, off_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, bytes, n, off), ==, (ssize_t)n);
    close(fd);
}

void unit_patch_be64(const char *path, off_t off, uint64_t v)
{
    uint8_t b[8];

    for (int i = 7; i >= 0; i--) {
        b[i] = v & 0xff;
        v >>= 8;
    }
    unit_patch(path, off, b, 8);
}

void unit_patch_be32(const char *path, off_t off, uint32_t v)
{
    uint8_t b[4] = { v >> 24, v >> 16, v >> 8, v };

    unit_patch(path, off, b, 4);
}

uint64_t unit_read_be64(const char *path, off_t off)
{
    uint8_t b[8];
    uint64_t v = 0;
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, b, 8, off), ==, 8);
    close(fd);
    for (int i = 0; i < 8; i++) {
        v = v << 8 | b[i];
    }
    return v;
}
