/*
 * The guest's physical address space (include/exec/memory.h).
 *
 * A flat list of non-overlapping MMIO regions. Accesses are little-endian
 * and split the way QEMU's memory core splits them for a device that does
 * not accept unaligned accesses: each piece is the largest naturally aligned
 * power of two that fits the remaining length and the region's
 * max_access_size. Bytes outside every region read as 0xff and ignore
 * writes, as on a bus with nothing behind an address.
 */
#include "qemu/osdep.h"
#include "exec/memory.h"

struct MemoryRegion {
    char *name;
    uint64_t base;
    uint64_t size;
    const MemoryRegionOps *ops;
    void *opaque;
};

static GPtrArray *regions;

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

MemoryRegion *memory_region_add(const char *name, uint64_t base, uint64_t size,
                                const MemoryRegionOps *ops, void *opaque)
{
    MemoryRegion *mr;

    if (size == 0 || base + size < base || !ops || !ops->read || !ops->write) {
        return NULL;
    }
    if (!regions) {
        regions = g_ptr_array_new();
    }
    for (guint i = 0; i < regions->len; i++) {
        MemoryRegion *other = g_ptr_array_index(regions, i);
        if (ranges_overlap(base, size, other->base, other->size)) {
            return NULL;
        }
    }
    mr = g_new0(MemoryRegion, 1);
    mr->name = g_strdup(name);
    mr->base = base;
    mr->size = size;
    mr->ops = ops;
    mr->opaque = opaque;
    g_ptr_array_add(regions, mr);
    return mr;
}

void memory_region_del(MemoryRegion *mr)
{
    if (!mr) {
        return;
    }
    if (regions) {
        g_ptr_array_remove(regions, mr);
    }
    g_free(mr->name);
    g_free(mr);
}

static MemoryRegion *memory_region_lookup(uint64_t addr)
{
    if (!regions) {
        return NULL;
    }
    for (guint i = 0; i < regions->len; i++) {
        MemoryRegion *mr = g_ptr_array_index(regions, i);
        if (addr >= mr->base && addr - mr->base < mr->size) {
            return mr;
        }
    }
    return NULL;
}

/* Bytes from @addr that no region claims, at most @len. */
static uint64_t unmapped_run(uint64_t addr, uint64_t len)
{
    uint64_t run = len;

    if (regions) {
        for (guint i = 0; i < regions->len; i++) {
            MemoryRegion *mr = g_ptr_array_index(regions, i);
            if (mr->base > addr && mr->base - addr < run) {
                run = mr->base - addr;
            }
        }
    }
    return run;
}

static unsigned max_access(const MemoryRegion *mr)
{
    unsigned max = mr->ops->max_access_size;

    return (max == 1 || max == 2 || max == 4) ? max : 8;
}

static unsigned min_access(const MemoryRegion *mr)
{
    unsigned min = mr->ops->min_access_size;

    return (min == 2 || min == 4 || min == 8) ? min : 1;
}

/* The size of the next access at region offset @off with @len bytes left. */
static unsigned access_size(const MemoryRegion *mr, uint64_t off, uint64_t len)
{
    unsigned size = max_access(mr);

    while (size > 1 && (size > len || off % size != 0)) {
        size >>= 1;
    }
    return size;
}

static uint64_t region_read(MemoryRegion *mr, uint64_t off, unsigned size)
{
    unsigned min = min_access(mr);
    uint64_t aligned, val;

    if (size >= min) {
        return mr->ops->read(mr->opaque, off, size);
    }
    /* A narrow access to a wide-only region: read the container, pick bytes. */
    aligned = QEMU_ALIGN_DOWN(off, min);
    if (mr->size - aligned < min) {
        return UINT64_MAX;
    }
    val = mr->ops->read(mr->opaque, aligned, min);
    return val >> ((off - aligned) * 8);
}

static void region_write(MemoryRegion *mr, uint64_t off, uint64_t val, unsigned size)
{
    unsigned min = min_access(mr);
    uint64_t aligned, mask, shift, old;

    if (size >= min) {
        mr->ops->write(mr->opaque, off, val, size);
        return;
    }
    aligned = QEMU_ALIGN_DOWN(off, min);
    if (mr->size - aligned < min) {
        return;
    }
    shift = (off - aligned) * 8;
    mask = ((UINT64_C(1) << (size * 8)) - 1) << shift;
    old = mr->ops->read(mr->opaque, aligned, min);
    mr->ops->write(mr->opaque, aligned, (old & ~mask) | ((val << shift) & mask), min);
}

static void store_le(uint8_t *buf, uint64_t val, unsigned size)
{
    for (unsigned i = 0; i < size; i++) {
        buf[i] = val >> (8 * i);
    }
}

static uint64_t load_le(const uint8_t *buf, unsigned size)
{
    uint64_t val = 0;

    for (unsigned i = 0; i < size; i++) {
        val |= (uint64_t)buf[i] << (8 * i);
    }
    return val;
}

void address_space_read(uint64_t addr, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        MemoryRegion *mr = memory_region_lookup(addr);
        uint64_t n;

        if (!mr) {
            n = unmapped_run(addr, len);
            memset(p, 0xff, n);
        } else {
            uint64_t off = addr - mr->base;
            uint64_t left = MIN(len, mr->size - off);
            n = access_size(mr, off, left);
            store_le(p, region_read(mr, off, n), n);
        }
        p += n;
        addr += n;
        len -= n;
    }
}

void address_space_write(uint64_t addr, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        MemoryRegion *mr = memory_region_lookup(addr);
        uint64_t n;

        if (!mr) {
            n = unmapped_run(addr, len);
        } else {
            uint64_t off = addr - mr->base;
            uint64_t left = MIN(len, mr->size - off);
            n = access_size(mr, off, left);
            region_write(mr, off, load_le(p, n), n);
        }
        p += n;
        addr += n;
        len -= n;
    }
}

uint64_t address_space_ldn(uint64_t addr, unsigned size)
{
    uint8_t buf[8];

    if (size == 0 || size > 8) {
        return UINT64_MAX;
    }
    address_space_read(addr, buf, size);
    return load_le(buf, size);
}

void address_space_stn(uint64_t addr, unsigned size, uint64_t val)
{
    uint8_t buf[8];

    if (size == 0 || size > 8) {
        return;
    }
    store_le(buf, val, size);
    address_space_write(addr, buf, size);
}
