/*
 * What the front doors share at run time: keys read once and handed to
 * children through memory files, the programs they run, the log file,
 * --runas, and swtpm_ioctl's request and answer encoding.
 */
#ifndef SWTPM_COMPAT_RUN_H
#define SWTPM_COMPAT_RUN_H

#include "swtpm-compat.h"

/* A key's bytes, wiped when freed. */
typedef struct CompatSecret {
    uint8_t *data;
    size_t len;
    int memfd;              /* -1 until compat_secret_to_memfd */
    char *path;             /* "/proc/self/fd/N" of memfd */
} CompatSecret;

/*
 * Reads the key of @k once (from its file or its descriptor, which is then
 * closed); a raw key is decoded (format=hex) and must be 32 bytes. With
 * remove=true the file is unlinked once read.
 */
bool compat_secret_read(const char *opt, const SwtpmKeySpec *k,
                        CompatSecret *s, GError **errp);
/*
 * Puts the bytes into an anonymous memory file that exec'd programs and
 * children inherit, so that each reads the same bytes from s->path and
 * the secret never touches a disk or an argument vector.
 */
bool compat_secret_to_memfd(CompatSecret *s, GError **errp);
void compat_secret_clear(CompatSecret *s);

/*
 * A qtpm program for a front door: the build tree's when the front door
 * runs from BUILD/swtpm-compat/, else the installed one in bindir.
 */
char *compat_find_program(const char *name);

/* Also append every error line to @path (NULL: stderr only). */
void compat_set_logfile(const char *path);
void compat_log(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* error_report() and the same line in the log file. */
void compat_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Switches to @user (root only); errors name --runas. */
bool compat_runas(const char *user, GError **errp);

/*
 * Runs @argv to completion with the descriptors left open (so that
 * /proc/self/fd/N paths reach it); its output goes to stderr and the log.
 */
bool compat_run(char **argv, GError **errp);

/* swtpm_ioctl's wire format (docs/swtpm-protocol.md). */
size_t swtpm_ioctl_encode(const SwtpmIoctlOpts *o, uint32_t info_offset,
                          uint8_t *out, size_t out_len);
/* The fixed answer size of @cmd; for GET_INFO the header only. */
size_t swtpm_ioctl_answer_size(SwtpmIoctlCmd cmd);
/* The control command code of @cmd. */
uint32_t swtpm_ioctl_code(SwtpmIoctlCmd cmd);

#endif
