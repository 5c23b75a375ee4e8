/*
 * Test helper for tests/migration (built by migration-lib.sh; plain C, no
 * project code, so it also talks to a broken qtpm):
 *
 *   migration-tool qmp SOCKET JSON [UNTIL]
 *       QMP: negotiates, sends JSON, prints the reply line; with UNTIL also
 *       prints every following line up to one containing UNTIL (events;
 *       "a|b" stops at a line containing a or b). Exit 1 on a timeout.
 *   migration-tool qtest SOCKET LINE...
 *       qtest: sends each line and prints its reply line.
 *   migration-tool relay LISTEN TARGET MODE [ARG [VALUE]]
 *       accepts one connection on unix socket LISTEN, connects to unix
 *       socket TARGET and forwards both ways, damaging or stopping the
 *       source-to-target bytes by MODE:
 *         pass            forward unchanged
 *         flip OFFSET     flip bit 0 of the byte at OFFSET
 *         set32 OFF VAL   overwrite the big-endian u32 at OFF with VAL
 *         cut N           forward N bytes, then close both sides
 *         stall N         forward N bytes, then nothing; when the target
 *                         goes away, close the source side
 *         hold-reply      forward everything, never forward the target's
 *                         reply
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char inbuf[1 << 20];
static size_t inlen;

static int unix_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror(path);
        exit(1);
    }
    return fd;
}

static int unix_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        perror(path);
        exit(1);
    }
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        c += w;
        n -= w;
    }
}

/* The next line (without newline) into @line; 0 on EOF or after @deadline. */
static int next_line(int fd, char *line, size_t max, time_t deadline)
{
    for (;;) {
        char *nl = memchr(inbuf, '\n', inlen);
        if (nl) {
            size_t n = nl - inbuf;
            size_t take = n < max ? n : max - 1;
            memcpy(line, inbuf, take);
            line[take] = 0;
            memmove(inbuf, nl + 1, inlen - n - 1);
            inlen -= n + 1;
            return 1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - time(NULL));
        if (left <= 0 || poll(&p, 1, left * 1000) <= 0) {
            return 0;
        }
        ssize_t r = read(fd, inbuf + inlen, sizeof(inbuf) - inlen - 1);
        if (r <= 0) {
            return 0;
        }
        inlen += r;
    }
}

static int contains_any(const char *line, const char *alternatives)
{
    char *copy = strdup(alternatives), *save = NULL;
    int found = 0;

    for (char *t = strtok_r(copy, "|", &save); t && !found;
         t = strtok_r(NULL, "|", &save)) {
        found = strstr(line, t) != NULL;
    }
    free(copy);
    return found;
}

static int do_qmp(int argc, char **argv)
{
    static char line[1 << 20];
    time_t deadline = time(NULL) + 60;
    const char *cap = "{\"execute\": \"qmp_capabilities\"}\n";
    int fd, got_reply = 0;

    if (argc < 4) {
        return 2;
    }
    fd = unix_connect(argv[2]);
    if (!next_line(fd, line, sizeof(line), deadline)) {
        return 1;
    }
    write_all(fd, cap, strlen(cap));
    while (next_line(fd, line, sizeof(line), deadline) && !strstr(line, "\"return\"")) {
    }
    write_all(fd, argv[3], strlen(argv[3]));
    write_all(fd, "\n", 1);
    while (next_line(fd, line, sizeof(line), deadline)) {
        int is_reply =
            !strncmp(line, "{\"return\"", 9) || !strncmp(line, "{\"error\"", 8);
        if (is_reply && !got_reply) {
            puts(line);
            got_reply = 1;
            if (argc < 5) {
                return 0;
            }
            continue;
        }
        if (argc >= 5) {
            puts(line);
            if (contains_any(line, argv[4])) {
                return 0;
            }
        }
    }
    return 1;
}

static int do_qtest(int argc, char **argv)
{
    static char line[65536];
    time_t deadline = time(NULL) + 30;
    int fd;

    if (argc < 4) {
        return 2;
    }
    fd = unix_connect(argv[2]);
    for (int i = 3; i < argc; i++) {
        write_all(fd, argv[i], strlen(argv[i]));
        write_all(fd, "\n", 1);
        do {
            if (!next_line(fd, line, sizeof(line), deadline)) {
                return 1;
            }
        } while (!strncmp(line, "IRQ", 3));
        puts(line);
    }
    return 0;
}

static int do_relay(int argc, char **argv)
{
    const char *mode = argc > 4 ? argv[4] : "pass";
    long long arg = argc > 5 ? strtoll(argv[5], NULL, 0) : 0;
    uint32_t val = argc > 6 ? (uint32_t)strtoul(argv[6], NULL, 0) : 0;
    int lfd, src, dst;
    long long pos = 0;
    int src_open = 1, dst_open = 1;
    char buf[65536];

    if (argc < 5) {
        return 2;
    }
    lfd = unix_listen(argv[2]);
    src = accept(lfd, NULL, NULL);
    close(lfd);
    dst = unix_connect(argv[3]);
    while (src_open || dst_open) {
        struct pollfd p[2] = {
            {.fd = src_open ? src : -1, .events = POLLIN},
            {.fd = dst_open ? dst : -1, .events = POLLIN},
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 1;
        }
        if (p[0].revents) {
            ssize_t n = read(src, buf, sizeof(buf));
            if (n <= 0) {
                src_open = 0;
                shutdown(dst, SHUT_WR);
                continue;
            }
            for (ssize_t i = 0; i < n; i++) {
                long long at = pos + i;
                if (!strcmp(mode, "flip") && at == arg) {
                    buf[i] ^= 1;
                }
                if (!strcmp(mode, "set32") && at >= arg && at < arg + 4) {
                    buf[i] = (char)(val >> (8 * (3 - (at - arg))));
                }
            }
            if ((!strcmp(mode, "cut") || !strcmp(mode, "stall")) && pos + n > arg) {
                ssize_t keep = pos < arg ? (ssize_t)(arg - pos) : 0;
                write_all(dst, buf, keep);
                pos += n;
                if (!strcmp(mode, "cut")) {
                    close(src);
                    close(dst);
                    return 0;
                }
                continue;
            }
            write_all(dst, buf, n);
            pos += n;
        }
        if (p[1].revents) {
            ssize_t n = read(dst, buf, sizeof(buf));
            if (n <= 0) {
                dst_open = 0;
                if (strcmp(mode, "hold-reply")) {
                    close(src);
                    src_open = 0;
                }
                continue;
            }
            if (strcmp(mode, "hold-reply")) {
                write_all(src, buf, n);
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "qmp")) {
        return do_qmp(argc, argv);
    }
    if (argc >= 2 && !strcmp(argv[1], "qtest")) {
        return do_qtest(argc, argv);
    }
    if (argc >= 2 && !strcmp(argv[1], "relay")) {
        return do_relay(argc, argv);
    }
    fprintf(stderr, "usage: migration-tool qmp|qtest|relay ...\n");
    return 2;
}
