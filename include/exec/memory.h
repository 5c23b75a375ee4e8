/*
 * The guest's physical address space: MMIO regions that the qtest server
 * reads and writes. Unmapped addresses read as all-ones and ignore writes.
 */
#ifndef EXEC_MEMORY_H
#define EXEC_MEMORY_H

#include "qemu/osdep.h"

typedef struct MemoryRegionOps {
    /* @size is 1, 2, 4 or 8; @addr is relative to the region's base. */
    uint64_t (*read)(void *opaque, uint64_t addr, unsigned size);
    void (*write)(void *opaque, uint64_t addr, uint64_t val, unsigned size);
    unsigned min_access_size;   /* larger/smaller accesses are split/combined */
    unsigned max_access_size;
} MemoryRegionOps;

typedef struct MemoryRegion MemoryRegion;

MemoryRegion *memory_region_add(const char *name, uint64_t base, uint64_t size,
                                const MemoryRegionOps *ops, void *opaque);
void memory_region_del(MemoryRegion *mr);

/*
 * Little-endian guest accesses of any length; each byte run inside a region
 * goes to its ops in accesses the region accepts.
 */
void address_space_read(uint64_t addr, void *buf, size_t len);
void address_space_write(uint64_t addr, const void *buf, size_t len);
uint64_t address_space_ldn(uint64_t addr, unsigned size);
void address_space_stn(uint64_t addr, unsigned size, uint64_t val);

#endif
