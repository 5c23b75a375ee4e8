/*
 * qtpm behind an unmodified QEMU: a qtpm process exporting a TPM image
 * with -export swtpm on a unix control socket, and Debian's
 * qemu-system-x86_64 reaching it with -tpmdev emulator. And a client of
 * the export's control and data channels for tests that speak the swtpm
 * protocol themselves (docs/swtpm-protocol.md): every helper asserts that
 * its bytes went out or came in whole.
 */
#ifndef TESTS_QTEST_QTPM_EXPORT_UTIL_H
#define TESTS_QTEST_QTPM_EXPORT_UTIL_H

#include "libqtest.h"

typedef struct QtpmExport {
    char *dir;          /* the image and the control socket */
    char *img;
    char *ctrl;
    GPid qtpm;
} QtpmExport;

/* A scratch folder with a fresh TPM image of @version ("2.0" or "1.2"). */
void qtpm_export_init(QtpmExport *e, const char *version);
/* Starts qtpm exporting the image; returns once the control socket exists. */
void qtpm_export_start(QtpmExport *e);
/*
 * QEMU with -tpmdev emulator on the export and the device @device
 * ("tpm-tis" or "tpm-crb") in front of it, stopped (-S) under qtest.
 */
QTestState *qtpm_export_qemu(QtpmExport *e, const char *device);
/* Waits up to 30 s for qtpm to exit (killing it then); its exit status or -1. */
int qtpm_export_wait(QtpmExport *e);
/* Removes the scratch folder. */
void qtpm_export_cleanup(QtpmExport *e);

/*
 * Spawns @argv (qtpm with its options) and waits up to 30 s for @ctrl, its
 * control socket, to appear; stderr goes to /dev/null when @quiet. Returns -1
 * once the socket exists, with the child in *@pid; or the exit status (128
 * when killed) if the child ended first, with *@pid 0.
 */
int qtpm_spawn_export(const char *const *argv, const char *ctrl, bool quiet,
                      GPid *pid);
/* The SHA-256 of the file at @path in hex (g_free), to show it unchanged. */
char *qtpm_file_sha256(const char *path);

/* Writes all of @buf to @fd. */
void qtpm_send(int fd, const void *buf, size_t len);
/* Reads exactly @len bytes from @fd, waiting at most 10 s. */
void qtpm_recv(int fd, void *buf, size_t len);
/* A control request: @cmd big-endian, then @len bytes of @body. */
void qtpm_ctrl_send(int fd, uint32_t cmd, const void *body, size_t len);
/* The 4-byte result code that starts every control response. */
uint32_t qtpm_ctrl_result(int fd);
/* A control request and its result code; the rest of the answer is unread. */
uint32_t qtpm_ctrl(int fd, uint32_t cmd, const void *body, size_t len);
/* A control request whose body is @n (at most 3) big-endian words. */
uint32_t qtpm_ctrl_u32(int fd, uint32_t cmd, const uint32_t *args, int n);
/* CMD_SET_STATEBLOB of @type with @flags and all of @blob in one request. */
uint32_t qtpm_ctrl_set_blob(int fd, uint32_t type, uint32_t flags,
                            const uint8_t *blob, size_t len);
/* CMD_SET_DATAFD with one end of a fresh socket pair; returns the other end. */
int qtpm_ctrl_set_datafd(int fd);
/*
 * Reads one TPM response from the data channel @fd into @resp, waiting at
 * most 30 s (a worker may be busy with a long command); its length.
 */
size_t qtpm_data_recv(int fd, uint8_t *resp, size_t size);
/* One TPM command on the data channel @fd; the response's length. */
size_t qtpm_data_transmit(int fd, const uint8_t *cmd, size_t len, uint8_t *resp,
                          size_t size);
/* One TPM command on the data channel @fd; the response code, the rest read. */
uint32_t qtpm_tpm_cmd(int fd, const uint8_t *cmd, size_t len);

#endif
