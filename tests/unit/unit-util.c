/*
 * Helpers shared by the unit tests; see unit-util.h.
 */
#include "qemu/osdep.h"

#include <sys/mman.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "qemu/bswap.h"
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

    stq_be_p(b, v);
    unit_patch(path, off, b, 8);
}

void unit_patch_be32(const char *path, off_t off, uint32_t v)
{
    uint8_t b[4];

    stl_be_p(b, v);
    unit_patch(path, off, b, 4);
}

uint64_t unit_read_be64(const char *path, off_t off)
{
    uint8_t b[8];
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, b, 8, off), ==, 8);
    close(fd);
    return ldq_be_p(b);
}

size_t unit_resident_pages(const char *path, uint64_t off, size_t len)
{
    size_t page = sysconf(_SC_PAGESIZE), first = off / page;
    size_t n = (off + len + page - 1) / page - first, count = 0;
    g_autofree unsigned char *vec = g_malloc(n);
    int fd = open(path, O_RDONLY);
    void *p;

    g_assert_cmpint(fd, >=, 0);
    p = mmap(NULL, n * page, PROT_READ, MAP_SHARED, fd, first * page);
    g_assert_true(p != MAP_FAILED);
    g_assert_cmpint(mincore(p, n * page, vec), ==, 0);
    for (size_t i = 0; i < n; i++) {
        count += vec[i] & 1;
    }
    munmap(p, n * page);
    close(fd);
    return count;
}

bool unit_page_cache_droppable(const char *path)
{
    struct statfs st;

    g_assert_cmpint(statfs(path, &st), ==, 0);
    return st.f_type != TMPFS_MAGIC && st.f_type != RAMFS_MAGIC;
}
