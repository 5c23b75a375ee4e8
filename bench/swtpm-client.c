/*
 * A small client of swtpm's socket protocol for the benchmarks, and the
 * floors it is compared with (docs/benchmarks.md, section 5):
 *
 *   swtpm-client tpm CTRL DATA N [shutdown]   round trips to a TPM server
 *   swtpm-client echo-server PATH             the trivial server: echoes
 *   swtpm-client echo DATA N                  round trips to the echo server
 *   swtpm-client libtpms N                    TPMLIB_Process in this process
 *   swtpm-client flush FILE N LEN@OFF|sync... pwrite each LEN@OFF, fdatasync at
 *                                            each sync and at the end
 *   swtpm-client first-answer CTRL -- CMD...  start CMD, time to its first
 *                                             CMD_GET_CAPABILITY answer
 *
 * CTRL and DATA are unix socket paths. Latencies are wall clock
 * (CLOCK_MONOTONIC) around one request and its whole answer; each timed
 * phase prints "NAME n=N median M p99 P us".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>
#include <libtpms/tpm_types.h>

/* swtpm control commands (tpm_ioctl.h) */
#define CMD_GET_CAPABILITY 0x01
#define CMD_INIT 0x02
#define CMD_SHUTDOWN 0x03

#define TPM_MAX_ANSWER 4096

static const uint8_t cmd_startup[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};
static const uint8_t cmd_getrandom16[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x10,
};
/* NV_DefineSpace 0x01500016 under the owner, empty password: an 8-byte
 * counter, owner and auth read/write (as tpm2_nvdefine -a "nt=counter|...") */
static const uint8_t cmd_nv_define[] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x01, 0x2a,
    0x40, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00,
    0x00, 0x0e, 0x01, 0x50, 0x00, 0x16, 0x00, 0x0b, 0x00, 0x06, 0x00, 0x16,
    0x00, 0x00, 0x00, 0x08,
};
static const uint8_t cmd_nv_increment[] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x34,
    0x40, 0x00, 0x00, 0x01, 0x01, 0x50, 0x00, 0x16,
    0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
};
/* PCR_Extend of PCR 16 with one sha256 digest; the digest's bytes follow */
static const uint8_t cmd_pcr_extend_head[] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x41, 0x00, 0x00, 0x01, 0x82,
    0x00, 0x00, 0x00, 0x10,
    0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x0b,
};
#define PCR_EXTEND_LEN (sizeof(cmd_pcr_extend_head) + 32)

static void die(const char *what)
{
    fprintf(stderr, "swtpm-client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    printf("%s n=%d median %.1f p99 %.1f us\n", name, n, v[(n - 1) / 2],
           v[(int)((n - 1) * 0.99 + 0.5)]);
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        die("socket");
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die("write");
        }
        p += n;
        len -= n;
    }
}

static bool read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/* One TPM command and its answer (length from the answer's header); returns
 * the response code. The echo server's answer is the command itself. */
static uint32_t transact(int fd, const uint8_t *cmd, size_t len)
{
    uint8_t rsp[TPM_MAX_ANSWER];
    uint32_t size;

    write_all(fd, cmd, len);
    if (!read_all(fd, rsp, 10)) {
        fprintf(stderr, "swtpm-client: the data channel closed\n");
        exit(1);
    }
    size = be32(rsp + 2);
    if (size < 10 || size > sizeof(rsp) || !read_all(fd, rsp + 10, size - 10)) {
        fprintf(stderr, "swtpm-client: bad answer (size %u)\n", size);
        exit(1);
    }
    return be32(rsp + 6);
}

static uint32_t ctrl_cmd(int fd, uint32_t code, const void *body, size_t len,
                         void *answer, size_t alen)
{
    uint8_t req[8] = { code >> 24, code >> 16, code >> 8, code };

    memcpy(req + 4, body, len);
    write_all(fd, req, 4 + len);
    if (!read_all(fd, answer, alen)) {
        fprintf(stderr, "swtpm-client: control command 0x%x: no answer\n", code);
        exit(1);
    }
    return alen >= 4 ? be32(answer) : 0;
}

static void pcr_extend_cmd(uint8_t *cmd, int i)
{
    memcpy(cmd, cmd_pcr_extend_head, sizeof(cmd_pcr_extend_head));
    memset(cmd + sizeof(cmd_pcr_extend_head), i & 0xff, 32);
}

typedef uint32_t (*TransactFn)(void *opaque, const uint8_t *cmd, size_t len);

static uint32_t socket_transact(void *opaque, const uint8_t *cmd, size_t len)
{
    return transact(*(int *)opaque, cmd, len);
}

/* The three timed phases, the same for every server. */
static void run_phases(TransactFn fn, void *opaque, int n, bool tpm)
{
    double *v = calloc(n, sizeof(*v));
    uint8_t pcr[PCR_EXTEND_LEN];
    uint32_t rc;

    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        rc = fn(opaque, cmd_getrandom16, sizeof(cmd_getrandom16));
        v[i] = now_us() - t0;
        if (tpm && rc != 0) {
            fprintf(stderr, "swtpm-client: GetRandom: TPM rc 0x%x\n", rc);
            exit(1);
        }
    }
    report("getrandom16", v, n);
    for (int i = 0; i < n; i++) {
        pcr_extend_cmd(pcr, i);
        double t0 = now_us();
        rc = fn(opaque, pcr, sizeof(pcr));
        v[i] = now_us() - t0;
        if (tpm && rc != 0) {
            fprintf(stderr, "swtpm-client: PCR_Extend: TPM rc 0x%x\n", rc);
            exit(1);
        }
    }
    report("pcr_extend", v, n);
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        rc = fn(opaque, cmd_nv_increment, sizeof(cmd_nv_increment));
        v[i] = now_us() - t0;
        if (tpm && rc != 0) {
            fprintf(stderr, "swtpm-client: NV_Increment: TPM rc 0x%x\n", rc);
            exit(1);
        }
    }
    report("nv_increment", v, n);
    free(v);
}

/* TPM2_Startup and the NV counter; a TPM that has them already says so
 * (TPM_RC_INITIALIZE, TPM_RC_NV_DEFINED), which is fine. */
static void prepare(TransactFn fn, void *opaque)
{
    uint32_t rc = fn(opaque, cmd_startup, sizeof(cmd_startup));

    if (rc != 0 && rc != 0x100) {
        fprintf(stderr, "swtpm-client: TPM2_Startup: TPM rc 0x%x\n", rc);
        exit(1);
    }
    rc = fn(opaque, cmd_nv_define, sizeof(cmd_nv_define));
    if (rc != 0 && rc != 0x14c) {
        fprintf(stderr, "swtpm-client: NV_DefineSpace: TPM rc 0x%x\n", rc);
        exit(1);
    }
}

static int mode_tpm(const char *ctrl_path, const char *data_path, int n, bool shutdown)
{
    uint8_t res[4];
    uint32_t flags = 0;
    int ctrl = unix_connect(ctrl_path), data;

    if (ctrl < 0) {
        die(ctrl_path);
    }
    if (ctrl_cmd(ctrl, CMD_INIT, &flags, 4, res, 4) != 0) {
        fprintf(stderr, "swtpm-client: CMD_INIT: result 0x%x\n", be32(res));
        return 1;
    }
    data = unix_connect(data_path);
    if (data < 0) {
        die(data_path);
    }
    prepare(socket_transact, &data);
    run_phases(socket_transact, &data, n, true);
    close(data);
    if (shutdown) {
        ctrl_cmd(ctrl, CMD_SHUTDOWN, NULL, 0, res, 4);
    }
    close(ctrl);
    return 0;
}

static _Noreturn void mode_echo_server(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint8_t buf[TPM_MAX_ANSWER];

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(lfd, 1) < 0) {
        die(path);
    }
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        ssize_t n;

        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("accept");
        }
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            write_all(fd, buf, n);
        }
        close(fd);
    }
}

static int mode_echo(const char *data_path, int n)
{
    int data = unix_connect(data_path);

    if (data < 0) {
        die(data_path);
    }
    run_phases(socket_transact, &data, n, false);
    close(data);
    return 0;
}

/* libtpms in process. The NV callbacks keep nothing: loads find no state
 * (a fresh TPM) and stores return at once, the bare cost of the TPM. */
static TPM_RESULT bare_nvram_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT bare_nvram_loaddata(unsigned char **data, uint32_t *length,
                                      uint32_t tpm_number, const char *name)
{
    return TPM_RETRY;
}

static size_t bare_stored_bytes;
static unsigned bare_stores;

static TPM_RESULT bare_nvram_storedata(const unsigned char *data, uint32_t length,
                                       uint32_t tpm_number, const char *name)
{
    bare_stored_bytes += length;
    bare_stores++;
    return TPM_SUCCESS;
}

static TPM_RESULT bare_nvram_deletename(uint32_t tpm_number, const char *name,
                                        TPM_BOOL mustExist)
{
    return TPM_SUCCESS;
}

static uint32_t libtpms_transact(void *opaque, const uint8_t *cmd, size_t len)
{
    static unsigned char *rbuf;
    static uint32_t rbuf_size;
    uint32_t rlen = 0;
    unsigned char req[TPM_MAX_ANSWER];

    /* TPMLIB_Process may write into the request buffer */
    memcpy(req, cmd, len);
    if (TPMLIB_Process(&rbuf, &rlen, &rbuf_size, req, len) != TPM_SUCCESS || rlen < 10) {
        fprintf(stderr, "swtpm-client: TPMLIB_Process failed\n");
        exit(1);
    }
    return be32(rbuf + 6);
}

static int mode_libtpms(int n)
{
    static struct libtpms_callbacks cbs = {
        .sizeOfStruct = sizeof(struct libtpms_callbacks),
        .tpm_nvram_init = bare_nvram_init,
        .tpm_nvram_loaddata = bare_nvram_loaddata,
        .tpm_nvram_storedata = bare_nvram_storedata,
        .tpm_nvram_deletename = bare_nvram_deletename,
    };

    if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
        TPMLIB_RegisterCallbacks(&cbs) != TPM_SUCCESS ||
        TPMLIB_MainInit() != TPM_SUCCESS) {
        fprintf(stderr, "swtpm-client: libtpms does not start\n");
        return 1;
    }
    prepare(libtpms_transact, NULL);
    bare_stored_bytes = 0;
    bare_stores = 0;
    run_phases(libtpms_transact, NULL, n, true);
    printf("libtpms_stores %u bytes %zu\n", bare_stores, bare_stored_bytes);
    TPMLIB_Terminate();
    return 0;
}

/* The flushes a durable store needs, without the store: each iteration
 * pwrites every LEN@OFF extent (bytes changed each time), fdatasyncs where
 * the list says "sync" (an ordered commit's first group), and at the end. */
static int mode_flush(const char *file, int n, int nseg, char **segs)
{
    size_t *len = calloc(nseg, sizeof(*len)), max = 0;
    off_t *off = calloc(nseg, sizeof(*off));
    double *v = calloc(n, sizeof(*v));
    int fd = open(file, O_RDWR | O_CLOEXEC);
    uint8_t *buf;

    if (fd < 0) {
        die(file);
    }
    for (int s = 0; s < nseg; s++) {
        unsigned long long l, o;

        if (!strcmp(segs[s], "sync")) {
            continue;           /* len[s] stays 0: a flush */
        }
        if (sscanf(segs[s], "%llu@%llu", &l, &o) != 2 || l == 0) {
            fprintf(stderr, "swtpm-client: extent '%s' is not LEN@OFFSET or sync\n",
                    segs[s]);
            return 1;
        }
        len[s] = l;
        off[s] = o;
        max = len[s] > max ? len[s] : max;
    }
    buf = malloc(max ? max : 1);
    for (int i = 0; i < n; i++) {
        memset(buf, i & 0xff, max);
        double t0 = now_us();
        for (int s = 0; s < nseg; s++) {
            if (!len[s]) {
                if (fdatasync(fd) < 0) {
                    die("fdatasync");
                }
            } else if (pwrite(fd, buf, len[s], off[s]) != (ssize_t)len[s]) {
                die("pwrite");
            }
        }
        if (fdatasync(fd) < 0) {
            die("fdatasync");
        }
        v[i] = now_us() - t0;
    }
    report("pwrite_fdatasync", v, n);
    close(fd);
    return 0;
}

/* Start CMD; connect to CTRL until it listens; the time from fork to the
 * whole answer of CMD_GET_CAPABILITY. CMD_SHUTDOWN then ends the server. */
static int mode_first_answer(const char *ctrl_path, char **argv)
{
    double t0 = now_us(), t1;
    uint8_t caps[8], res[4];
    int fd, status;
    pid_t pid;

    unlink(ctrl_path);
    pid = fork();
    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    for (int tries = 0; (fd = unix_connect(ctrl_path)) < 0; tries++) {
        if (tries > 20000 || waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "swtpm-client: %s never listened\n", ctrl_path);
            kill(pid, SIGKILL);
            return 1;
        }
        usleep(250);
    }
    ctrl_cmd(fd, CMD_GET_CAPABILITY, NULL, 0, caps, sizeof(caps));
    t1 = now_us();
    ctrl_cmd(fd, CMD_SHUTDOWN, NULL, 0, res, sizeof(res));
    close(fd);
    for (int i = 0; waitpid(pid, &status, WNOHANG) != pid; i++) {
        if (i == 5000) {
            kill(pid, SIGKILL);
        }
        usleep(1000);
    }
    printf("%.3f\n", (t1 - t0) / 1000);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: swtpm-client tpm CTRL DATA N [shutdown] | echo-server PATH |\n"
            "       echo DATA N | libtpms N | flush FILE N LEN@OFF|sync... |\n"
            "       first-answer CTRL -- CMD ARGS...\n");
    exit(2);
}

/* A count of iterations: a positive decimal number, or the usage. */
static int count_arg(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || n < 1 || n > 10000000) {
        fprintf(stderr, "swtpm-client: '%s' is not a count from 1 to 10000000\n", s);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage();
    }
    if (!strcmp(argv[1], "tpm") && (argc == 5 || argc == 6)) {
        return mode_tpm(argv[2], argv[3], count_arg(argv[4]),
                        argc == 6 && !strcmp(argv[5], "shutdown"));
    }
    if (!strcmp(argv[1], "echo-server") && argc == 3) {
        mode_echo_server(argv[2]);
    }
    if (!strcmp(argv[1], "echo") && argc == 4) {
        return mode_echo(argv[2], count_arg(argv[3]));
    }
    if (!strcmp(argv[1], "libtpms") && argc == 3) {
        return mode_libtpms(count_arg(argv[2]));
    }
    if (!strcmp(argv[1], "flush") && argc >= 5) {
        return mode_flush(argv[2], count_arg(argv[3]), argc - 4, argv + 4);
    }
    if (!strcmp(argv[1], "first-answer") && argc >= 5 && !strcmp(argv[3], "--")) {
        return mode_first_answer(argv[2], argv + 4);
    }
    usage();
}
