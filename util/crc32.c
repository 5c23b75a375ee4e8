#include "qemu/osdep.h"
#include "qemu/crc32.h"

#include <zlib.h>

uint32_t qemu_crc32(const uint8_t *buf, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);

    /* zlib takes uInt lengths. */
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

        crc = crc32(crc, buf, n);
        buf += n;
        len -= n;
    }
    return (uint32_t)crc;
}
