/*
 * -drive: the command line's block devices, by id.
 */
#include "qemu/osdep.h"
#include "qemu/option.h"
#include "sysemu/blockdev.h"
#include "sysemu/runstate.h"

typedef struct DriveInfo {
    char *id;
    BlockDriverState *bs;
} DriveInfo;

static GList *drives;

static const char *const drive_keys[] = {
    "file", "if", "id", "format", "locking", "read-only", NULL,
};

bool drive_check_opts(GHashTable *opts, GError **errp)
{
    const char *id = qemu_opt_get(opts, "id");
    const char *iface = qemu_opt_get(opts, "if");
    const char *format = qemu_opt_get(opts, "format");
    bool b;

    if (!qemu_opts_check_keys(opts, drive_keys, "-drive", errp)) {
        return false;
    }
    if (!id || !*id) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "parameter 'id' is missing");
        return false;
    }
    if (!qemu_opt_get(opts, "file") || !*qemu_opt_get(opts, "file")) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "parameter 'file' is missing");
        return false;
    }
    if (iface && strcmp(iface, "none")) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "if=%s is not supported (only if=none: the drive is "
                    "used by a -tpmdev)", iface);
        return false;
    }
    if (format && strcmp(format, "qcow2") && strcmp(format, "raw")) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "format '%s' is not qcow2 or raw", format);
        return false;
    }
    if (!qemu_opt_get_bool(opts, "locking", true, &b, errp) ||
        !qemu_opt_get_bool(opts, "read-only", false, &b, errp)) {
        return false;
    }
    return true;
}

BlockDriverState *drive_new(GHashTable *opts, GError **errp)
{
    BlockOpenOptions bo = { 0 };
    bool locking, read_only;
    BlockDriverState *bs;
    const char *id = qemu_opt_get(opts, "id");

    if (!drive_check_opts(opts, errp)) {
        return NULL;
    }
    if (drive_get_by_id(id)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "a drive with id '%s' already exists", id);
        return NULL;
    }
    qemu_opt_get_bool(opts, "locking", true, &locking, NULL);
    qemu_opt_get_bool(opts, "read-only", false, &read_only, NULL);
    bo.format = qemu_opt_get(opts, "format");
    bo.read_only = read_only;
    bo.no_locking = !locking;
    /* A migration target must not take QEMU's write permission bytes yet. */
    bo.inactive = runstate_get() == RUN_STATE_INMIGRATE;
    bs = bdrv_open(qemu_opt_get(opts, "file"), &bo, errp);
    if (!bs) {
        return NULL;
    }
    drive_add(id, bs, NULL);
    return bs;
}

bool drive_add(const char *id, BlockDriverState *bs, GError **errp)
{
    DriveInfo *di;

    if (drive_get_by_id(id)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "a drive with id '%s' already exists", id);
        return false;
    }
    di = g_new0(DriveInfo, 1);
    di->id = g_strdup(id);
    di->bs = bs;
    drives = g_list_append(drives, di);
    return true;
}

BlockDriverState *drive_get_by_id(const char *id)
{
    for (GList *l = drives; l; l = l->next) {
        DriveInfo *di = l->data;
        if (!g_strcmp0(di->id, id)) {
            return di->bs;
        }
    }
    return NULL;
}

const char *drive_get_id(BlockDriverState *bs)
{
    for (GList *l = drives; l; l = l->next) {
        DriveInfo *di = l->data;
        if (di->bs == bs) {
            return di->id;
        }
    }
    return NULL;
}

void drive_close_all(void)
{
    while (drives) {
        DriveInfo *di = drives->data;

        drives = g_list_delete_link(drives, drives);
        bdrv_close(di->bs);
        g_free(di->id);
        g_free(di);
    }
}
