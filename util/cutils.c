/*
 * Small string helpers shared by tools and option parsing.
 */
#include "qemu/osdep.h"

/*
 * Sizes as qemu-img and qemu-io take them: a decimal number with an optional
 * suffix b (bytes), k, M, G, T, P, E (powers of 1024, either case), or a
 * 0x-prefixed hexadecimal number without suffix.
 */
bool qemu_strtosz(const char *str, uint64_t *result)
{
    const char *p = str;
    uint64_t value = 0;
    unsigned shift = 0;

    if (!str || !*str) {
        return false;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
        if (!g_ascii_isxdigit(*p)) {
            return false;
        }
        for (; g_ascii_isxdigit(*p); p++) {
            if (value > (UINT64_MAX >> 4)) {
                return false;
            }
            value = (value << 4) | (uint64_t)g_ascii_xdigit_value(*p);
        }
        if (*p) {
            return false;
        }
        *result = value;
        return true;
    }
    if (!g_ascii_isdigit(*p)) {
        return false;
    }
    for (; g_ascii_isdigit(*p); p++) {
        unsigned digit = (unsigned)(*p - '0');

        if (value > (UINT64_MAX - digit) / 10) {
            return false;
        }
        value = value * 10 + digit;
    }
    switch (g_ascii_tolower(*p)) {
    case '\0':
    case 'b':
        shift = 0;
        break;
    case 'k':
        shift = 10;
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    case 't':
        shift = 40;
        break;
    case 'p':
        shift = 50;
        break;
    case 'e':
        shift = 60;
        break;
    default:
        return false;
    }
    if (*p && p[1]) {
        return false;
    }
    if (shift && value > (UINT64_MAX >> shift)) {
        return false;
    }
    *result = value << shift;
    return true;
}
