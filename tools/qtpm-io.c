/*
 * qtpm-io: exercise the block layer from the command line, like qemu-io.
 *
 *   qtpm-io [-f FORMAT] [-r] [-U] [--blkdebug] [--inactive] [-c CMD]... FILE
 *
 * Commands run in order; the first failure prints one sentence and exits 1.
 * See docs/block-layer.md "qtpm-io".
 */
#include "qemu/osdep.h"

#include "block/blkdebug.h"
#include "block/block.h"
#include "qemu/error-report.h"

#define QTPM_IO_DEFAULT_PATTERN 0xcd

typedef struct QtpmIOCommand {
    const char *name;
    const char *args;
    int min_args;
    int max_args;
    bool (*run)(BlockDriverState *bs, int argc, char **argv, GError **errp);
} QtpmIOCommand;

static void io_error(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void io_error(GError **errp, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(errp, QTPM_ERROR, QTPM_ERROR_INVALID, msg);
}

static bool parse_size(const char *str, const char *what, int64_t *out,
                       GError **errp)
{
    uint64_t v;

    if (!qemu_strtosz(str, &v) || v > INT64_MAX) {
        io_error(errp, "invalid %s '%s'", what, str);
        return false;
    }
    *out = (int64_t)v;
    return true;
}

static bool parse_uint(const char *str, const char *what, uint64_t max,
                       uint64_t *out, GError **errp)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(str, 10, 0, max, &v, NULL)) {
        if (!(str[0] == '0' && (str[1] == 'x' || str[1] == 'X') &&
              qemu_strtosz(str, &v) && v <= max)) {
            io_error(errp, "invalid %s '%s'", what, str);
            return false;
        }
    }
    *out = v;
    return true;
}

/*
 * Options shared by read and write: -P PATTERN, -z (write only), -v (read
 * only, hex dump). Leaves the positional arguments in *argc / *argv.
 */
typedef struct IOFlags {
    int pattern;    /* -1: none */
    bool zero;
    bool dump;
} IOFlags;

static bool parse_io_flags(const char *cmd, const char *allowed, int *argc,
                           char ***argv, IOFlags *flags, GError **errp)
{
    int i = 1;

    flags->pattern = -1;
    flags->zero = false;
    flags->dump = false;
    while (i < *argc && (*argv)[i][0] == '-' && (*argv)[i][1] &&
           !g_ascii_isdigit((*argv)[i][1])) {
        const char *opt = (*argv)[i];

        if (strlen(opt) != 2 || !strchr(allowed, opt[1])) {
            io_error(errp, "%s: unknown option '%s'", cmd, opt);
            return false;
        }
        if (opt[1] == 'P') {
            uint64_t v;

            if (i + 1 >= *argc) {
                io_error(errp, "%s: -P needs a pattern byte", cmd);
                return false;
            }
            if (!parse_uint((*argv)[i + 1], "pattern", 255, &v, errp)) {
                return false;
            }
            flags->pattern = (int)v;
            i += 2;
            continue;
        }
        if (opt[1] == 'z') {
            flags->zero = true;
        } else if (opt[1] == 'v') {
            flags->dump = true;
        }
        i++;
    }
    *argc -= i - 1;
    *argv += i - 1;
    return true;
}

static void dump_hex(const uint8_t *buf, int64_t offset, int64_t len)
{
    for (int64_t i = 0; i < len; i += 16) {
        printf("%08" PRIx64 ":", (uint64_t)(offset + i));
        for (int64_t j = i; j < i + 16 && j < len; j++) {
            printf(" %02x", buf[j]);
        }
        printf("\n");
    }
}

static bool cmd_read(BlockDriverState *bs, int argc, char **argv,
                     GError **errp)
{
    IOFlags flags;
    int64_t offset, len;
    g_autofree uint8_t *buf = NULL;

    if (!parse_io_flags("read", "Pv", &argc, &argv, &flags, errp)) {
        return false;
    }
    if (argc != 3) {
        io_error(errp, "read: usage: read [-P PATTERN] [-v] OFFSET LENGTH");
        return false;
    }
    if (!parse_size(argv[1], "offset", &offset, errp) ||
        !parse_size(argv[2], "length", &len, errp)) {
        return false;
    }
    buf = g_try_malloc(len ? len : 1);
    if (!buf) {
        io_error(errp, "read: cannot allocate %" PRId64 " bytes", len);
        return false;
    }
    if (bdrv_pread(bs, offset, len, buf, errp) < 0) {
        return false;
    }
    if (flags.pattern >= 0) {
        for (int64_t i = 0; i < len; i++) {
            if (buf[i] != flags.pattern) {
                io_error(errp, "pattern verification failed at offset %"
                         PRId64 ": found 0x%02x, expected 0x%02x",
                         offset + i, buf[i], flags.pattern);
                return false;
            }
        }
    }
    if (flags.dump) {
        dump_hex(buf, offset, len);
    }
    printf("read %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n", len,
           len, offset);
    return true;
}

static bool cmd_write(BlockDriverState *bs, int argc, char **argv,
                      GError **errp)
{
    IOFlags flags;
    int64_t offset, len;
    g_autofree uint8_t *buf = NULL;

    if (!parse_io_flags("write", "Pz", &argc, &argv, &flags, errp)) {
        return false;
    }
    if (argc != 3) {
        io_error(errp,
                 "write: usage: write [-P PATTERN] [-z] OFFSET LENGTH");
        return false;
    }
    if (flags.zero && flags.pattern >= 0) {
        io_error(errp, "write: -z and -P cannot be used together");
        return false;
    }
    if (!parse_size(argv[1], "offset", &offset, errp) ||
        !parse_size(argv[2], "length", &len, errp)) {
        return false;
    }
    if (flags.zero) {
        if (bdrv_pwrite_zeroes(bs, offset, len, errp) < 0) {
            return false;
        }
    } else {
        buf = g_try_malloc(len ? len : 1);
        if (!buf) {
            io_error(errp, "write: cannot allocate %" PRId64 " bytes", len);
            return false;
        }
        memset(buf, flags.pattern >= 0 ? flags.pattern
                                       : QTPM_IO_DEFAULT_PATTERN, len);
        if (bdrv_pwrite(bs, offset, len, buf, errp) < 0) {
            return false;
        }
    }
    printf("wrote %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n", len,
           len, offset);
    return true;
}

static bool cmd_flush(BlockDriverState *bs, int argc, char **argv,
                      GError **errp)
{
    return bdrv_flush(bs, errp) == 0;
}

/* lock [-i ID] shared|exclusive [TIMEOUT_MS]; unlock [-i ID] */
static bool parse_lock_id(int *argc, char ***argv, unsigned *id,
                          GError **errp)
{
    uint64_t v;

    *id = 0;
    if (*argc >= 3 && strcmp((*argv)[1], "-i") == 0) {
        if (!parse_uint((*argv)[2], "lock id", BDRV_LOCK_ID_MAX - 1, &v,
                        errp)) {
            return false;
        }
        *id = (unsigned)v;
        *argc -= 2;
        *argv += 2;
    }
    return true;
}

static bool cmd_lock(BlockDriverState *bs, int argc, char **argv,
                     GError **errp)
{
    unsigned id;
    BdrvLockMode mode;
    int64_t timeout = 0;

    if (!parse_lock_id(&argc, &argv, &id, errp)) {
        return false;
    }
    if (argc < 2 || argc > 3) {
        io_error(errp, "lock: usage: lock [-i ID] shared|exclusive "
                 "[TIMEOUT_MS]");
        return false;
    }
    if (strcmp(argv[1], "shared") == 0) {
        mode = BDRV_LOCK_SHARED;
    } else if (strcmp(argv[1], "exclusive") == 0) {
        mode = BDRV_LOCK_EXCLUSIVE;
    } else {
        io_error(errp, "lock: mode must be 'shared' or 'exclusive', not '%s'",
                 argv[1]);
        return false;
    }
    if (argc == 3) {
        if (strcmp(argv[2], "-1") == 0) {
            timeout = -1;
        } else {
            uint64_t v;

            if (!parse_uint(argv[2], "timeout", INT_MAX, &v, errp)) {
                return false;
            }
            timeout = (int64_t)v;
        }
    }
    if (bdrv_lock_id(bs, id, mode, (int)timeout, errp) < 0) {
        return false;
    }
    printf("locked %s (id %u)\n", argv[1], id);
    return true;
}

static bool cmd_unlock(BlockDriverState *bs, int argc, char **argv,
                       GError **errp)
{
    unsigned id;

    if (!parse_lock_id(&argc, &argv, &id, errp)) {
        return false;
    }
    if (argc != 1) {
        io_error(errp, "unlock: usage: unlock [-i ID]");
        return false;
    }
    bdrv_unlock_id(bs, id);
    printf("unlocked (id %u)\n", id);
    return true;
}

static bool cmd_sleep(BlockDriverState *bs, int argc, char **argv,
                      GError **errp)
{
    uint64_t ms;

    if (!parse_uint(argv[1], "sleep time", UINT32_MAX, &ms, errp)) {
        return false;
    }
    g_usleep(ms * 1000);
    return true;
}

static bool cmd_length(BlockDriverState *bs, int argc, char **argv,
                       GError **errp)
{
    int64_t len = bdrv_getlength(bs, errp);

    if (len < 0) {
        return false;
    }
    printf("%" PRId64 "\n", len);
    return true;
}

static bool cmd_info(BlockDriverState *bs, int argc, char **argv,
                     GError **errp)
{
    g_autoptr(GString) info = g_string_new("");

    bdrv_get_info(bs, info);
    fputs(info->str, stdout);
    return true;
}

static bool cmd_activate(BlockDriverState *bs, int argc, char **argv,
                         GError **errp)
{
    if (bdrv_activate(bs, errp) < 0) {
        return false;
    }
    printf("activated\n");
    return true;
}

static bool cmd_inactivate(BlockDriverState *bs, int argc, char **argv,
                           GError **errp)
{
    if (bdrv_inactivate(bs, errp) < 0) {
        return false;
    }
    printf("inactivated\n");
    return true;
}

static bool cmd_truncate(BlockDriverState *bs, int argc, char **argv,
                         GError **errp)
{
    int64_t size;

    if (!parse_size(argv[1], "size", &size, errp)) {
        return false;
    }
    if (bdrv_truncate(bs, size, errp) < 0) {
        return false;
    }
    printf("truncated to %" PRId64 " bytes\n", size);
    return true;
}

static bool blkdebug_arg(char **argv, int argc, int i, const char *what,
                         uint64_t max, uint64_t *out, GError **errp)
{
    if (i >= argc) {
        io_error(errp, "blkdebug %s: missing %s", argv[1], what);
        return false;
    }
    return parse_uint(argv[i], what, max, out, errp);
}

static bool cmd_blkdebug(BlockDriverState *bs, int argc, char **argv,
                         GError **errp)
{
    BlkdebugState *bd = bdrv_get_blkdebug(bs);
    const char *verb = argv[1];
    uint64_t n, k;

    if (!bd) {
        io_error(errp, "blkdebug: '%s' was not opened with --blkdebug",
                 bdrv_get_filename(bs));
        return false;
    }
    if (strcmp(verb, "fail-write") == 0) {
        if (!blkdebug_arg(argv, argc, 2, "write number", UINT_MAX, &n, errp)) {
            return false;
        }
        blkdebug_fail_write(bd, (unsigned)n);
    } else if (strcmp(verb, "fail-flush") == 0) {
        if (!blkdebug_arg(argv, argc, 2, "flush number", UINT_MAX, &n, errp)) {
            return false;
        }
        blkdebug_fail_flush(bd, (unsigned)n);
    } else if (strcmp(verb, "tear-write") == 0) {
        int64_t keep;

        if (!blkdebug_arg(argv, argc, 2, "write number", UINT_MAX, &n, errp)) {
            return false;
        }
        if (argc < 4) {
            io_error(errp, "blkdebug tear-write: missing byte count");
            return false;
        }
        if (!parse_size(argv[3], "byte count", &keep, errp)) {
            return false;
        }
        blkdebug_tear_write(bd, (unsigned)n, keep);
    } else if (strcmp(verb, "crash-write") == 0) {
        if (!blkdebug_arg(argv, argc, 2, "write number", UINT_MAX, &n, errp)) {
            return false;
        }
        blkdebug_crash_at_write(bd, (unsigned)n);
    } else if (strcmp(verb, "power-loss") == 0) {
        if (!blkdebug_arg(argv, argc, 2, "mask", UINT64_MAX, &k, errp)) {
            return false;
        }
        if (blkdebug_power_loss_mask(bd, k, errp) < 0) {
            return false;
        }
    } else if (strcmp(verb, "status") == 0) {
        printf("blkdebug: %u writes, %u flushes, %u unflushed writes%s\n",
               blkdebug_write_count(bd), blkdebug_flush_count(bd),
               blkdebug_unflushed_count(bd),
               blkdebug_is_crashed(bd) ? ", crashed" : "");
        return true;
    } else if (strcmp(verb, "reset") == 0) {
        blkdebug_reset(bd);
    } else {
        io_error(errp, "blkdebug: unknown action '%s'", verb);
        return false;
    }
    if (argc > (strcmp(verb, "tear-write") == 0 ? 4 :
                strcmp(verb, "reset") == 0 ? 2 : 3)) {
        io_error(errp, "blkdebug %s: too many arguments", verb);
        return false;
    }
    return true;
}

static const QtpmIOCommand qtpm_io_commands[] = {
    { "read", "[-P PATTERN] [-v] OFFSET LENGTH", 2, 5, cmd_read },
    { "write", "[-P PATTERN] [-z] OFFSET LENGTH", 2, 5, cmd_write },
    { "flush", "", 0, 0, cmd_flush },
    { "lock", "[-i ID] shared|exclusive [TIMEOUT_MS]", 1, 4, cmd_lock },
    { "unlock", "[-i ID]", 0, 2, cmd_unlock },
    { "sleep", "MS", 1, 1, cmd_sleep },
    { "length", "", 0, 0, cmd_length },
    { "info", "", 0, 0, cmd_info },
    { "truncate", "SIZE", 1, 1, cmd_truncate },
    { "activate", "", 0, 0, cmd_activate },
    { "inactivate", "", 0, 0, cmd_inactivate },
    { "blkdebug", "fail-write N | fail-flush N | tear-write N BYTES | "
      "crash-write N | power-loss MASK | status | reset", 1, 3, cmd_blkdebug },
};

static bool run_command(BlockDriverState *bs, const char *line, GError **errp)
{
    g_auto(GStrv) argv = NULL;
    GError *parse_err = NULL;
    int argc;

    if (!g_shell_parse_argv(line, &argc, &argv, &parse_err)) {
        io_error(errp, "cannot parse command '%s': %s", line,
                 parse_err->message);
        g_error_free(parse_err);
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(qtpm_io_commands); i++) {
        const QtpmIOCommand *c = &qtpm_io_commands[i];

        if (strcmp(argv[0], c->name) != 0) {
            continue;
        }
        if (argc - 1 < c->min_args || argc - 1 > c->max_args) {
            io_error(errp, "%s: usage: %s %s", c->name, c->name, c->args);
            return false;
        }
        return c->run(bs, argc, argv, errp);
    }
    io_error(errp, "unknown command '%s'", argv[0]);
    return false;
}

int main(int argc, char **argv)
{
    g_autofree char *format = NULL;
    g_auto(GStrv) commands = NULL;
    gboolean read_only = FALSE, no_locking = FALSE, blkdebug = FALSE;
    gboolean inactive = FALSE;
    GOptionEntry entries[] = {
        { "format", 'f', 0, G_OPTION_ARG_STRING, &format,
          "image format: qcow2, raw or auto (default)", "FORMAT" },
        { "read-only", 'r', 0, G_OPTION_ARG_NONE, &read_only,
          "open the image read-only", NULL },
        { "force-share", 'U', 0, G_OPTION_ARG_NONE, &no_locking,
          "no locking (locking=off)", NULL },
        { "blkdebug", 0, 0, G_OPTION_ARG_NONE, &blkdebug,
          "insert the blkdebug fault-injection layer", NULL },
        { "inactive", 0, 0, G_OPTION_ARG_NONE, &inactive,
          "open read-write but inactive (no QEMU lock bytes, no writes "
          "until 'activate')", NULL },
        { "cmd", 'c', 0, G_OPTION_ARG_STRING_ARRAY, &commands,
          "run CMD (repeatable, run in order)", "CMD" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("FILE");
    GError *err = NULL;
    BlockDriverState *bs;
    BlockOpenOptions opts = { 0 };
    int ret = 0;

    error_set_progname("qtpm-io");
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx,
        "Commands: read [-P PATTERN] [-v] OFF LEN, write [-P PATTERN] [-z] "
        "OFF LEN,\n  flush, lock [-i ID] shared|exclusive [TIMEOUT_MS], "
        "unlock [-i ID], sleep MS,\n  length, info, truncate SIZE, activate, "
        "inactivate,\n  blkdebug ACTION ARGS.\n  Sizes take k/M/G suffixes.");
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        error_report_err(err);
        return 1;
    }
    if (argc != 2) {
        error_report("expected one image file name (try --help)");
        return 1;
    }

    opts.format = format;
    opts.read_only = read_only;
    opts.no_locking = no_locking;
    opts.blkdebug = blkdebug;
    opts.inactive = inactive;
    bs = bdrv_open(argv[1], &opts, &err);
    if (!bs) {
        error_report_err(err);
        return 1;
    }
    for (int i = 0; commands && commands[i]; i++) {
        if (!run_command(bs, commands[i], &err)) {
            error_report_err(err);
            ret = 1;
            break;
        }
    }
    bdrv_close(bs);
    return ret;
}
