/*
 * Helpers shared by the unit tests: scratch directories, poking bytes into
 * image files behind the block layer's back, and the host's page cache.
 */
#ifndef UNIT_UTIL_H
#define UNIT_UTIL_H

#include "qemu/osdep.h"

/* Removes the files in @dir, then @dir itself (one level, as tests make). */
void unit_remove_dir(const char *dir);

/* Overwrites @n bytes at @off of @path; the test fails if it cannot. */
void unit_patch(const char *path, off_t off, const void *bytes, size_t n);
void unit_patch_be64(const char *path, off_t off, uint64_t v);
void unit_patch_be32(const char *path, off_t off, uint32_t v);

/* Reads a big-endian field of @path; the test fails if it cannot. */
uint64_t unit_read_be64(const char *path, off_t off);

/*
 * How many of the pages that hold bytes [@off, @off + @len) of @path the
 * host caches (mincore), without reading them.
 */
size_t unit_resident_pages(const char *path, uint64_t off, size_t len);

/*
 * Whether @path's file system keeps a page cache that POSIX_FADV_DONTNEED
 * can empty: not tmpfs or ramfs, whose pages are the data itself.
 */
bool unit_page_cache_droppable(const char *path);

#endif
