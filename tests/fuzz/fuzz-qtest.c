/*
 * qtest from a hostile client, through the server's socket framing: each
 * input is one connection to the qtest server's unix socket, written in
 * pieces (each piece's length is the byte before it) while the main loop
 * runs, then closed. Lines reach qtest_process_line and through it the
 * address space, where a TIS sits in front of the null backend. A thread
 * drains the replies, as a client reading them would.
 */
#include "fuzz-util.h"
#include <sys/socket.h>
#include <sys/un.h>
#include "hw/tpm/tpm_tis.h"
#include "qemu/option.h"
#include "sysemu/qtest.h"
#include "sysemu/tpm_backend.h"

static char *scratch;
static char *sock_path;
static TPMBackend *backend;

static void remove_scratch(void)
{
    qtest_server_stop();
    unlink(sock_path);
    rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GHashTable) o = qemu_opts_parse("null,id=tpm0", "type", &err);
    g_autofree char *spec = NULL;

    backend = o ? tpm_backend_new("null", "tpm0", o, &err) : NULL;
    scratch = backend ? g_dir_make_tmp("qtpm-fuzz-XXXXXX", &err) : NULL;
    if (!scratch || !fuzz_tis_create(backend)) {
        fprintf(stderr, "fuzz-qtest: %s\n", err ? err->message : "no device");
        abort();
    }
    sock_path = g_build_filename(scratch, "qtest.sock", NULL);
    spec = g_strdup_printf("unix:%s,server=on,wait=off", sock_path);
    if (qtest_server_start(spec, &err) < 0) {
        fprintf(stderr, "fuzz-qtest: %s\n", err->message);
        abort();
    }
    atexit(remove_scratch);
    return 0;
}

static gint reader_done;

static gpointer drain_replies(gpointer opaque)
{
    int fd = GPOINTER_TO_INT(opaque);
    char buf[65536];

    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    g_atomic_int_set(&reader_done, 1);
    return NULL;
}

static int connect_client(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_strlcpy(sa.sun_path, sock_path, sizeof(sa.sun_path));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("fuzz-qtest: connect");
        abort();
    }
    return fd;
}

/* Writes all of @p, letting the server read whenever the socket is full. */
static void send_piece(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (w > 0) {
            p += w;
            n -= w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return;
        }
        g_main_context_iteration(NULL, FALSE);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = connect_client();
    int reader_fd = dup(fd);
    FuzzInput in = { data, size };
    GThread *reader;

    g_atomic_int_set(&reader_done, 0);
    reader = g_thread_new("replies", drain_replies, GINT_TO_POINTER(reader_fd));

    while (in.left) {
        size_t n;
        const uint8_t *piece = fuzz_bytes(&in, fuzz_u8(&in) + 1, &n);

        send_piece(fd, piece, n);
        while (g_main_context_iteration(NULL, FALSE)) {
        }
    }
    shutdown(fd, SHUT_WR);
    /* The server sees the end, answers what is left and closes its side. */
    while (!g_atomic_int_get(&reader_done)) {
        /* Not blocking: the reader's end comes after the server's last event. */
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(50);
        }
    }
    g_thread_join(reader);
    close(reader_fd);
    close(fd);
    tpm_backend_finish_sync(backend);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    return 0;
}
