/*
 * CRC-32 (ISO-HDLC, zlib's crc32) of a buffer of any length (util/crc32.c). The NVRAM
 * directory and the migration stream use it (docs/nvram-format.md,
 * docs/migration-stream.md).
 */
#ifndef QEMU_CRC32_H
#define QEMU_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t qemu_crc32(const uint8_t *buf, size_t len);
/* The CRC-32 of the bytes so far (@crc, 0 at the start) extended by @buf. */
uint32_t qemu_crc32_update(uint32_t crc, const uint8_t *buf, size_t len);

#endif
