/*
 * Common includes for every qtpm source file. Include it first.
 */
#ifndef QEMU_OSDEP_H
#define QEMU_OSDEP_H

#include "config-host.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib.h>

#define QEMU_ALIGN_DOWN(n, m) ((n) / (m) * (m))
#define QEMU_ALIGN_UP(n, m) QEMU_ALIGN_DOWN((n) + (m) - 1, (m))
#define QEMU_IS_ALIGNED(n, m) (((n) % (m)) == 0)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

/* The GError domain of every qtpm error. */
#define QTPM_ERROR qtpm_error_quark()
GQuark qtpm_error_quark(void);

typedef enum {
    QTPM_ERROR_FAILED,      /* generic failure */
    QTPM_ERROR_IO,          /* an I/O error from the OS */
    QTPM_ERROR_LOCKED,      /* a lock is held by someone else */
    QTPM_ERROR_INVALID,     /* bad input: option, image, stream */
    QTPM_ERROR_CORRUPT,     /* data failed a check (CRC, tag, bounds) */
    QTPM_ERROR_WRONG_KEY,   /* the key does not open this image */
    QTPM_ERROR_NO_KEY,      /* the image is encrypted and no key was given */
    QTPM_ERROR_UNSUPPORTED, /* a feature or version we do not implement */
    QTPM_ERROR_NOT_FOUND,   /* a named thing does not exist */
} QtpmErrorCode;

#endif
