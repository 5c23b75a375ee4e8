/*
 * Big-endian loads and stores on byte buffers, QEMU's names. Every on-disk
 * and on-wire format of qtpm is big-endian (see the byte tables in docs/).
 */
#ifndef QEMU_BSWAP_H
#define QEMU_BSWAP_H

#include <stdint.h>

static inline void stw_be_p(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}

static inline void stl_be_p(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static inline void stq_be_p(uint8_t *p, uint64_t v)
{
    stl_be_p(p, v >> 32);
    stl_be_p(p + 4, (uint32_t)v);
}

static inline uint16_t lduw_be_p(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t ldl_be_p(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t ldq_be_p(const uint8_t *p)
{
    return (uint64_t)ldl_be_p(p) << 32 | ldl_be_p(p + 4);
}

#endif
