/*
 * swtpm_ioctl: a client of the control channel (docs/swtpm-protocol.md),
 * with swtpm_ioctl's options and output lines. libvirt stops its TPM with
 * `swtpm_ioctl --unix PATH -s`. docs/swtpm-compat.md.
 */
#include "qemu/osdep.h"

#include "export/swtpm-codec.h"
#include "qemu/error-report.h"
#include "qemu/sockets.h"
#include "swtpm-compat-run.h"

/* An answer that takes longer is a server that no longer answers. */
#define IOCTL_TIMEOUT_MS 30000

static void usage(void)
{
    printf("Usage: swtpm_ioctl (--unix PATH | --tcp HOST:PORT) COMMAND\n"
           "qtpm's swtpm_ioctl-compatible front door (docs/swtpm-compat.md)\n"
           "  -c  capabilities       -i  CMD_INIT          -s  CMD_SHUTDOWN\n"
           "  --stop CMD_STOP        -e  tpmEstablished    -r LOC  reset it\n"
           "  -l LOC  set locality   -C  cancel command    -v  store volatile\n"
           "  -g  configuration      -b SIZE  buffer size  --info FLAGS\n"
           "  --lock-storage RETRIES --version  --help\n");
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int connect_ctrl(const SwtpmIoctlOpts *o, GError **errp)
{
    QemuSocketAddr addr = { 0 };
    int fd;

    if (o->unix_path) {
        addr.kind = QEMU_SOCKET_UNIX;
        addr.path = g_strdup(o->unix_path);
    } else if (!qemu_socket_parse_tcp(o->tcp, &addr, errp)) {
        return -1;
    }
    fd = qemu_socket_connect(&addr, errp);
    qemu_socket_addr_clear(&addr);
    return fd;
}

static bool transact(int fd, const SwtpmIoctlOpts *o, uint32_t info_offset,
                     uint8_t *ans, size_t ans_len, GError **errp)
{
    uint8_t req[32];
    size_t n = swtpm_ioctl_encode(o, info_offset, req, sizeof(req));
    const char *name = swtpm_ctrl_cmd_name(swtpm_ioctl_code(o->cmd));

    if (qemu_write_full(fd, req, n) != (ssize_t)n) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "cannot send CMD_%s: %s", name,
                    g_strerror(errno));
        return false;
    }
    if (qemu_read_full_timeout(fd, ans, ans_len, IOCTL_TIMEOUT_MS) !=
        (ssize_t)ans_len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "no complete answer to CMD_%s",
                    name);
        return false;
    }
    return true;
}

/* GET_INFO answers in chunks; the text is printed as it arrives. */
static bool get_info(int fd, const SwtpmIoctlOpts *o, GError **errp)
{
    uint32_t offset = 0, total;

    do {
        uint8_t hdr[SWTPM_GET_INFO_RESP_HDR_SIZE];
        g_autofree uint8_t *text = NULL;
        uint32_t res, len;

        if (!transact(fd, o, offset, hdr, sizeof(hdr), errp)) {
            return false;
        }
        res = be32(hdr);
        total = be32(hdr + 4);
        len = be32(hdr + 8);
        if (res != 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "TPM result from PTM_GET_INFO: 0x%x", res);
            return false;
        }
        if (len > SWTPM_GET_INFO_CHUNK_MAX || len > total - offset ||
            (len == 0 && offset < total)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "PTM_GET_INFO: invalid length %u", len);
            return false;
        }
        text = g_malloc(len + 1);
        if (qemu_read_full_timeout(fd, text, len, IOCTL_TIMEOUT_MS) != (ssize_t)len) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                        "no complete answer to CMD_GET_INFO");
            return false;
        }
        text[len] = 0;
        printf("%s", (char *)text);
        offset += len;
    } while (offset < total);
    printf("\n");
    return true;
}

int main(int argc, char **argv)
{
    SwtpmIoctlOpts o;
    g_autoptr(GError) err = NULL;
    uint8_t ans[16];
    uint32_t res;
    int fd;

    error_set_progname("swtpm_ioctl");
    if (!swtpm_ioctl_parse(argc, argv, &o, &err)) {
        error_report_err(g_steal_pointer(&err));
        return 1;
    }
    if (o.help) {
        usage();
        return 0;
    }
    if (o.version) {
        printf("TPM emulator control tool version %s (qtpm's swtpm_ioctl front "
               "door)\n", QTPM_VERSION);
        return 0;
    }
    fd = connect_ctrl(&o, &err);
    if (fd < 0) {
        error_report_err(g_steal_pointer(&err));
        return 1;
    }
    if (o.cmd == SWTPM_IOCTL_INFO) {
        bool ok = get_info(fd, &o, &err);

        close(fd);
        if (!ok) {
            error_report_err(g_steal_pointer(&err));
        }
        return ok ? 0 : 1;
    }
    if (!transact(fd, &o, 0, ans, swtpm_ioctl_answer_size(o.cmd), &err)) {
        close(fd);
        error_report_err(g_steal_pointer(&err));
        return 1;
    }
    close(fd);
    res = be32(ans);
    if (o.cmd == SWTPM_IOCTL_CAPS) {
        /* A u64 on the wire; swtpm_ioctl prints the low 32 bits. */
        printf("ptm capability is 0x%x\n", be32(ans + 4));
        return 0;
    }
    if (res != 0) {
        error_report("TPM result from PTM_%s: 0x%x",
                     swtpm_ctrl_cmd_name(swtpm_ioctl_code(o.cmd)), res);
        return 1;
    }
    switch (o.cmd) {
    case SWTPM_IOCTL_ESTABLISHED:
        printf("tpmEstablished is %d\n", ans[4]);
        break;
    case SWTPM_IOCTL_CONFIG:
        printf("ptm configuration flags: 0x%x\n", be32(ans + 4));
        break;
    case SWTPM_IOCTL_BUFFERSIZE:
        printf("TPM buffersize: %u\nminimum size  : %u\nmaximum size  : %u\n",
               be32(ans + 4), be32(ans + 8), be32(ans + 12));
        break;
    default:
        break;
    }
    swtpm_ioctl_opts_clear(&o);
    return 0;
}
