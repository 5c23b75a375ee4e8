/*
 * -drive: the command line's block devices, by id.
 */
#include "qemu/osdep.h"
#include "qemu/option.h"
#include "sysemu/blockdev.h"

typedef struct DriveInfo {
    char *id;
    BlockDriverState *bs;
} DriveInfo;

static GList *drives;

static const char *const drive_if_choices[] = { "none", NULL };
static const char *const drive_format_choices[] = { "qcow2", "raw", NULL };

const QemuOptDesc qemu_drive_opts[] = {
    {
        .name = "file", .type = QEMU_OPT_STRING, .value_name = "PATH",
        .required = true, .help = "the image",
    },
    {
        .name = "if", .type = QEMU_OPT_STRING, .choices = drive_if_choices,
        .def_value_str = "none", .help = "the drive is only used by a -tpmdev",
    },
    {
        .name = "id", .type = QEMU_OPT_STRING, .value_name = "ID",
        .required = true, .help = "the drive's id, for -tpmdev nvram=",
    },
    {
        .name = "format", .type = QEMU_OPT_STRING,
        .choices = drive_format_choices, .def_value_str = "probed",
        .help = "the image format",
    },
    {
        .name = "locking", .type = QEMU_OPT_BOOL, .def_value_str = "on",
        .help = "take QEMU's image locks (off is unsafe)",
    },
    {
        .name = "read-only", .type = QEMU_OPT_BOOL, .def_value_str = "off",
        .help = "open the image read-only",
    },
    QEMU_OPT_DESC_END
};

bool drive_check_opts(GHashTable *opts, GError **errp)
{
    const char *iface = qemu_opt_get(opts, "if");

    if (!qemu_opts_check_names(opts, qemu_drive_opts, "-drive", errp)) {
        return false;
    }
    /* Says why, where the table's sentence would only list "none". */
    if (iface && strcmp(iface, "none")) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "if=%s is not supported (only if=none: the drive is "
                    "used by a -tpmdev)", iface);
        return false;
    }
    return qemu_opts_check_values(opts, qemu_drive_opts, errp);
}

BlockDriverState *drive_new(GHashTable *opts, bool inactive, GError **errp)
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
    bo.inactive = inactive;
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
