/*
 * qtpm block layer: the "file" protocol driver (POSIX files).
 *
 * Besides I/O it owns the file locks, all of them open file description (OFD)
 * locks so that they work between two opens in one process and vanish with
 * the process (docs/block-layer.md "Locks"):
 *  - qtpm lock ids: one byte each at FILE_LOCK_QTPM_BASE + id;
 *  - QEMU permission bytes (QEMU's block/file-posix.c): 100 + bit for every
 *    permission held, 200 + bit for every permission not shared, all F_RDLCK.
 */
#include "qemu/osdep.h"

#include <sys/file.h>

#include "block/block_int.h"

#define FILE_LOCK_QTPM_BASE 0x10000

/* QEMU's RAW_LOCK_PERM_BASE / RAW_LOCK_SHARED_BASE */
#define FILE_LOCK_QEMU_PERM_BASE 100
#define FILE_LOCK_QEMU_SHARED_BASE 200

/* QEMU's BLK_PERM_* bits (include/block/block-common.h, QEMU 7.2) */
enum {
    QEMU_PERM_CONSISTENT_READ = 0x01,
    QEMU_PERM_WRITE = 0x02,
    QEMU_PERM_WRITE_UNCHANGED = 0x04,
    QEMU_PERM_RESIZE = 0x08,
    QEMU_PERM_ALL = 0x0f,
};
#define QEMU_PERM_COUNT 4

/* How often a waiting lock request retries. */
#define FILE_LOCK_POLL_MS 5

/*
 * A write past the blocks the file has reserved first reserves them up to
 * the next FILE_RESERVE_STEP (fallocate with FALLOC_FL_KEEP_SIZE: blocks
 * beyond the end of the file, which its length does not show). A store that
 * grows a cluster at a time, flushing between, then still lies in a few
 * extents, and rewriting it costs what rewriting one contiguous file costs
 * (docs/benchmarks.md, section 1).
 */
#define FILE_RESERVE_STEP (1 << 20)

typedef struct BDRVFileState {
    int fd;
    int64_t reserved_end;   /* blocks up to here are the file's or reserved */
} BDRVFileState;

/* F_OFD_SETLK on one byte; returns 0 or -errno. */
static int file_ofd_setlk(int fd, off_t start, short type)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = start,
        .l_len = 1,
        .l_type = type,
    };

    if (fcntl(fd, F_OFD_SETLK, &fl) == -1) {
        return -errno;
    }
    return 0;
}

/*
 * Would a lock of @type on byte @start conflict with someone else's?
 * Returns 1 (conflict, *pid set when known), 0 (free) or -errno.
 */
static int file_ofd_test(int fd, off_t start, short type, pid_t *pid)
{
    struct flock fl = {
        .l_whence = SEEK_SET,
        .l_start = start,
        .l_len = 1,
        .l_type = type,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) == -1) {
        return -errno;
    }
    if (fl.l_type == F_UNLCK) {
        return 0;
    }
    if (pid) {
        *pid = fl.l_pid;
    }
    return 1;
}

static void file_set_locked_error(BlockDriverState *bs, pid_t pid,
                                  const char *detail, GError **errp)
{
    g_autofree char *who = pid > 0 ? g_strdup_printf(" (pid %ld)", (long)pid)
                                   : g_strdup("");

    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_LOCKED,
                "'%s' is locked by another process%s%s", bs->filename,
                detail ? detail : "", who);
}

/*
 * Takes the QEMU permission bytes for this open and checks nobody else holds
 * bytes that conflict with them, in QEMU's order (apply, then check), so that
 * two openers racing each other cannot both succeed.
 */
static int file_apply_qemu_locks(BlockDriverState *bs, int fd, GError **errp)
{
    uint64_t perm, shared;
    int ret;

    if (bs->read_only) {
        /*
         * Like qemu-io -r: a reader shares everything. Readers get their
         * consistency from the qtpm access lock, and must be able to look at
         * an image that a running qtpm writes.
         */
        perm = QEMU_PERM_CONSISTENT_READ;
        shared = QEMU_PERM_ALL;
    } else {
        perm = QEMU_PERM_CONSISTENT_READ | QEMU_PERM_WRITE |
               QEMU_PERM_WRITE_UNCHANGED | QEMU_PERM_RESIZE;
        shared = QEMU_PERM_CONSISTENT_READ | QEMU_PERM_WRITE_UNCHANGED;
    }

    for (int i = 0; i < QEMU_PERM_COUNT; i++) {
        uint64_t bit = 1ULL << i;

        if (perm & bit) {
            ret = file_ofd_setlk(fd, FILE_LOCK_QEMU_PERM_BASE + i, F_RDLCK);
        } else {
            ret = 0;
        }
        if (ret == 0 && !(shared & bit)) {
            ret = file_ofd_setlk(fd, FILE_LOCK_QEMU_SHARED_BASE + i, F_RDLCK);
        }
        if (ret == -EAGAIN || ret == -EACCES) {
            file_set_locked_error(bs, 0, " (QEMU or qtpm is writing it)",
                                  errp);
            return -EBUSY;
        }
        if (ret < 0) {
            bdrv_set_error_errno(errp, bs, ret, "could not take a lock");
            return ret;
        }
    }

    for (int i = 0; i < QEMU_PERM_COUNT; i++) {
        uint64_t bit = 1ULL << i;
        pid_t pid = 0;

        /* Someone who does not share a permission we hold... */
        ret = (perm & bit)
            ? file_ofd_test(fd, FILE_LOCK_QEMU_SHARED_BASE + i, F_WRLCK, &pid)
            : 0;
        /* ...or someone who holds a permission we do not share. */
        if (ret == 0 && !(shared & bit)) {
            ret = file_ofd_test(fd, FILE_LOCK_QEMU_PERM_BASE + i, F_WRLCK,
                                &pid);
        }
        if (ret > 0) {
            file_set_locked_error(bs, pid, " (QEMU or qtpm is writing it)",
                                  errp);
            return -EBUSY;
        }
        if (ret < 0) {
            bdrv_set_error_errno(errp, bs, ret, "could not test a lock");
            return ret;
        }
    }
    return 0;
}

/* Opens bs->filename into s->fd; only regular files are images. */
static int file_open_regular(BlockDriverState *bs, int flags, mode_t mode,
                             const char *what, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    struct stat st;
    int ret;

    s->fd = open(bs->filename, flags | O_CLOEXEC, mode);
    if (s->fd < 0) {
        ret = -errno;
        bdrv_set_error_errno(errp, bs, ret, "%s", what);
        return ret;
    }
    if (fstat(s->fd, &st) < 0) {
        ret = -errno;
        bdrv_set_error_errno(errp, bs, ret, "could not stat");
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        bdrv_set_error(errp, bs, QTPM_ERROR_UNSUPPORTED,
                       "not a regular file");
        ret = -EINVAL;
        goto fail;
    }
    s->reserved_end = st.st_size;
    return 0;

fail:
    close(s->fd);
    s->fd = -1;
    return ret;
}

static int file_open(BlockDriverState *bs, const char *filename,
                     const BlockOpenOptions *opts, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    int ret;

    ret = file_open_regular(bs, opts->read_only ? O_RDONLY : O_RDWR, 0,
                            "could not open", errp);
    if (ret < 0) {
        return ret;
    }
    if (!opts->no_locking && !bs->inactive) {
        ret = file_apply_qemu_locks(bs, s->fd, errp);
        if (ret < 0) {
            goto fail;
        }
    }
    return 0;

fail:
    close(s->fd);
    s->fd = -1;
    return ret;
}

static void file_drop_qemu_locks(int fd)
{
    for (int i = 0; i < QEMU_PERM_COUNT; i++) {
        file_ofd_setlk(fd, FILE_LOCK_QEMU_PERM_BASE + i, F_UNLCK);
        file_ofd_setlk(fd, FILE_LOCK_QEMU_SHARED_BASE + i, F_UNLCK);
    }
}

static int file_set_active(BlockDriverState *bs, bool active, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    int ret = 0;

    if (active) {
        ret = file_apply_qemu_locks(bs, s->fd, errp);
    }
    if (!active || ret < 0) {
        file_drop_qemu_locks(s->fd);
    }
    return ret;
}

static void file_close(BlockDriverState *bs)
{
    BDRVFileState *s = bs->opaque;

    /* Closing the last descriptor of the OFD drops all its locks. */
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* Reads past the end of the file return zeros, as in QEMU. */
static int file_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      void *buf, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    uint8_t *p = buf;

    while (bytes > 0) {
        ssize_t n = pread(s->fd, p, MIN(bytes, (int64_t)SSIZE_MAX), offset);

        if (n < 0) {
            int err = errno;

            if (err == EINTR) {
                continue;
            }
            bdrv_set_error_errno(errp, bs, err,
                                 "read of %" PRId64 " bytes at offset %" PRId64
                                 " failed", bytes, offset);
            return -err;
        }
        if (n == 0) {
            memset(p, 0, bytes);
            break;
        }
        p += n;
        offset += n;
        bytes -= n;
    }
    return 0;
}

/*
 * Only a hint: without the reservation the write allocates as it goes. A
 * write that starts past the mark (a sparse write, or a hostile image's
 * cluster offset) reserves from its own start, never the hole before it.
 */
static void file_reserve(BDRVFileState *s, int64_t offset, int64_t end)
{
    int64_t start = MAX(s->reserved_end, offset);
    int64_t target = QEMU_ALIGN_UP(end, FILE_RESERVE_STEP);

    if (fallocate(s->fd, FALLOC_FL_KEEP_SIZE, start, target - start) < 0 &&
        errno != EOPNOTSUPP) {
        return;
    }
    if (start == s->reserved_end) {
        s->reserved_end = target;
    }
}

static int file_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       const void *buf, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    const uint8_t *p = buf;

    if (offset + bytes > s->reserved_end) {
        file_reserve(s, offset, offset + bytes);
    }
    while (bytes > 0) {
        ssize_t n = pwrite(s->fd, p, MIN(bytes, (int64_t)SSIZE_MAX), offset);

        if (n < 0) {
            int err = errno;

            if (err == EINTR) {
                continue;
            }
            bdrv_set_error_errno(errp, bs, err,
                                 "write of %" PRId64 " bytes at offset %"
                                 PRId64 " failed", bytes, offset);
            return -err;
        }
        if (n == 0) {
            bdrv_set_error_errno(errp, bs, ENOSPC,
                                 "write of %" PRId64 " bytes at offset %"
                                 PRId64 " failed", bytes, offset);
            return -ENOSPC;
        }
        p += n;
        offset += n;
        bytes -= n;
    }
    return 0;
}

static int file_flush(BlockDriverState *bs, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    int ret;

    bs->flush_count++;
    do {
        ret = fdatasync(s->fd);
    } while (ret < 0 && errno == EINTR);
    if (ret < 0) {
        ret = -errno;
        bdrv_set_error_errno(errp, bs, ret, "flush failed");
        return ret;
    }
    return 0;
}

static void file_drop_page_cache(BlockDriverState *bs)
{
    BDRVFileState *s = bs->opaque;

    /* Only a hint: a file system without page cache advice just keeps them. */
    (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
}

static int64_t file_getlength(BlockDriverState *bs, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        int err = errno;

        bdrv_set_error_errno(errp, bs, err, "could not stat");
        return -err;
    }
    return st.st_size;
}

static int file_truncate(BlockDriverState *bs, int64_t size, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    int ret;

    do {
        ret = ftruncate(s->fd, size);
    } while (ret < 0 && errno == EINTR);
    if (ret < 0) {
        ret = -errno;
        bdrv_set_error_errno(errp, bs, ret,
                             "could not resize to %" PRId64 " bytes", size);
        return ret;
    }
    /* Shrinking frees the reserved blocks too; growing adds a hole. */
    s->reserved_end = MIN(s->reserved_end, size);
    return 0;
}

/*
 * Opens for creating: O_CREAT but never O_TRUNC, which would empty the file
 * before we know whether someone uses it. The node stays open with the
 * locks of a read-write open, so the caller empties and writes it under
 * them.
 */
static int file_create(BlockDriverState *bs, mode_t mode, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    int ret;

    ret = file_open_regular(bs, O_RDWR | O_CREAT, mode, "cannot create", errp);
    if (ret < 0) {
        return ret;
    }
    ret = file_apply_qemu_locks(bs, s->fd, errp);
    if (ret < 0) {
        file_close(bs);
    }
    return ret;
}

static int file_lock(BlockDriverState *bs, unsigned id, BdrvLockMode mode,
                     int timeout_ms, BdrvLockConflict *conflict, GError **errp)
{
    BDRVFileState *s = bs->opaque;
    off_t byte = FILE_LOCK_QTPM_BASE + id;
    short type = mode == BDRV_LOCK_EXCLUSIVE ? F_WRLCK : F_RDLCK;
    int64_t deadline = g_get_monotonic_time() +
                       (timeout_ms > 0 ? (int64_t)timeout_ms * 1000 : 0);
    int ret;

    if (type == F_WRLCK && bs->read_only) {
        bdrv_set_error(errp, bs, QTPM_ERROR_INVALID,
                       "an exclusive lock needs the image open read-write");
        return -EBADF;
    }
    for (;;) {
        ret = file_ofd_setlk(s->fd, byte, type);
        if (ret == 0) {
            return 0;
        }
        if (ret != -EAGAIN && ret != -EACCES) {
            bdrv_set_error_errno(errp, bs, ret, "could not take lock %u", id);
            return ret;
        }
        if (timeout_ms > 0) {
            int64_t left = deadline - g_get_monotonic_time();

            if (left <= 0) {
                break;
            }
            g_usleep(MIN(left, FILE_LOCK_POLL_MS * 1000));
        } else if (timeout_ms == 0) {
            break;
        } else {
            g_usleep(FILE_LOCK_POLL_MS * 1000);
        }
    }
    file_ofd_test(s->fd, byte, type, &conflict->pid);
    file_set_locked_error(bs, conflict->pid, NULL, errp);
    return -EBUSY;
}

static void file_unlock(BlockDriverState *bs, unsigned id)
{
    BDRVFileState *s = bs->opaque;

    file_ofd_setlk(s->fd, FILE_LOCK_QTPM_BASE + id, F_UNLCK);
}

const BlockDriver bdrv_file = {
    .format_name = "file",
    .instance_size = sizeof(BDRVFileState),
    .is_protocol = true,
    .bdrv_open = file_open,
    .bdrv_close = file_close,
    .bdrv_create = file_create,
    .bdrv_pread = file_pread,
    .bdrv_pwrite = file_pwrite,
    .bdrv_pwrite_zeroes = bdrv_pwrite_zeroes_fallback,
    .bdrv_flush = file_flush,
    .bdrv_getlength = file_getlength,
    .bdrv_truncate = file_truncate,
    .bdrv_lock = file_lock,
    .bdrv_unlock = file_unlock,
    .bdrv_set_active = file_set_active,
    .bdrv_drop_page_cache = file_drop_page_cache,
};
