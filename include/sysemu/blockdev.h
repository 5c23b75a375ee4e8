/*
 * -drive: block devices opened from the command line, found by id.
 */
#ifndef SYSEMU_BLOCKDEV_H
#define SYSEMU_BLOCKDEV_H

#include "block/block.h"
#include "qemu/option.h"

/* -drive's keys. */
extern const QemuOptDesc qemu_drive_opts[];

/*
 * Opens the drive described by @opts ("file", "if=none", "id", "format",
 * "locking", "read-only"). @inactive opens it without QEMU's write
 * permission bytes (a migration target, until it owns the image). Errors
 * name the cause; the caller names the option.
 */
BlockDriverState *drive_new(GHashTable *opts, bool inactive, GError **errp);
/* Checks @opts without opening anything (used before the first open). */
bool drive_check_opts(GHashTable *opts, GError **errp);
BlockDriverState *drive_get_by_id(const char *id);
/* Registers an image opened elsewhere (tests: with a blkdebug layer). */
bool drive_add(const char *id, BlockDriverState *bs, GError **errp);
const char *drive_get_id(BlockDriverState *bs);
void drive_close_all(void);

#endif
