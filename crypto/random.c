/*
 * Random bytes straight from the kernel: never GLib's PRNG for key
 * material, salts or nonces.
 */
#include "qemu/osdep.h"

#include <sys/random.h>

#include "crypto/random.h"

int qcrypto_random_bytes(void *buf, size_t len, GError **errp)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "getrandom: cannot read random bytes: %s",
                        g_strerror(errno));
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
