/*
 * The swtpm-, swtpm_setup- and swtpm_ioctl-compatible front doors: their
 * command lines as pure functions (parsed into structures, translated into
 * qtpm's and qtpm-img's argument vectors), so that every option is unit
 * tested without running anything. docs/swtpm-compat.md has the tables.
 */
#ifndef SWTPM_COMPAT_H
#define SWTPM_COMPAT_H

#include "qemu/osdep.h"

/* Where a key or passphrase comes from. */
typedef enum SwtpmKeyKind {
    SWTPM_KEY_NONE,
    SWTPM_KEY_RAW,          /* file= / fd=: the AES key itself */
    SWTPM_KEY_PASSPHRASE,   /* pwdfile= / pwdfd= */
} SwtpmKeyKind;

typedef struct SwtpmKeySpec {
    SwtpmKeyKind kind;
    char *file;             /* file= or pwdfile=; NULL when from a fd */
    int fd;                 /* fd= or pwdfd=; -1 when from a file */
    bool hex;               /* format=hex (raw keys) */
    bool remove;            /* remove=true: unlink the file once read */
} SwtpmKeySpec;

typedef enum SwtpmSockKind {
    SWTPM_SOCK_NONE,
    SWTPM_SOCK_UNIX,
    SWTPM_SOCK_TCP,
} SwtpmSockKind;

/* `swtpm socket ...` */
typedef struct SwtpmSocketOpts {
    bool print_capabilities;
    bool help;
    bool version;
    bool tpm2;
    SwtpmSockKind ctrl_kind;
    char *ctrl_path;        /* unixio */
    char *ctrl_mode;        /* octal text, as given */
    char *ctrl_uid;
    char *ctrl_gid;
    char *ctrl_host;        /* tcp */
    char *ctrl_port;
    SwtpmSockKind server_kind;
    char *server_path;
    char *server_host;
    char *server_port;
    char *state_dir;        /* dir= or backend-uri=dir:// */
    char *state_file;       /* backend-uri=file:// */
    char *state_mode;       /* octal text; NULL: keep the image's mode */
    char *log_file;         /* file=, or /proc/self/fd/N for fd= */
    bool log_off;           /* file=- */
    bool log_truncate;
    int log_level;
    char *pid_file;
    SwtpmKeySpec key;
    SwtpmKeySpec migration_key;
    bool terminate;
    bool daemon;
    char *runas;
    bool mig_incoming;              /* --migration incoming */
    bool mig_release_lock_outgoing; /* --migration release-lock-outgoing */
} SwtpmSocketOpts;

/* `swtpm_setup ...` */
typedef struct SwtpmSetupOpts {
    bool print_capabilities;
    bool help;
    bool version;
    bool tpm2;
    char *state_dir;
    char *state_file;
    char *vmid;
    char *logfile;
    bool createek;
    bool create_ek_cert;
    bool create_platform_cert;
    bool lock_nvram;
    bool overwrite;
    bool not_overwrite;
    SwtpmKeySpec key;       /* --pwdfile / --pwdfile-fd (passphrase only) */
    char *runas;
} SwtpmSetupOpts;

typedef enum SwtpmIoctlCmd {
    SWTPM_IOCTL_NONE,
    SWTPM_IOCTL_CAPS,           /* -c */
    SWTPM_IOCTL_INIT,           /* -i */
    SWTPM_IOCTL_STOP,           /* --stop */
    SWTPM_IOCTL_SHUTDOWN,       /* -s */
    SWTPM_IOCTL_ESTABLISHED,    /* -e */
    SWTPM_IOCTL_RESET_EST,      /* -r LOC */
    SWTPM_IOCTL_LOCALITY,       /* -l LOC */
    SWTPM_IOCTL_CANCEL,         /* -C */
    SWTPM_IOCTL_VOLATILE,       /* -v */
    SWTPM_IOCTL_CONFIG,         /* -g */
    SWTPM_IOCTL_BUFFERSIZE,     /* -b SIZE */
    SWTPM_IOCTL_INFO,           /* --info FLAGS */
    SWTPM_IOCTL_LOCK_STORAGE,   /* --lock-storage RETRIES */
} SwtpmIoctlCmd;

/* `swtpm_ioctl ...` */
typedef struct SwtpmIoctlOpts {
    bool help;
    bool version;
    SwtpmIoctlCmd cmd;
    char *unix_path;
    char *tcp;              /* HOST:PORT as given */
    uint32_t arg;           /* locality, buffer size or retries */
    uint64_t info_flags;
} SwtpmIoctlOpts;

/*
 * Parsers: each accepted option fills the structure; anything else fails
 * with one sentence naming the option. argv[0] is the program.
 */
bool swtpm_socket_parse(int argc, char **argv, SwtpmSocketOpts *o,
                        GError **errp);
bool swtpm_setup_parse(int argc, char **argv, SwtpmSetupOpts *o,
                       GError **errp);
bool swtpm_ioctl_parse(int argc, char **argv, SwtpmIoctlOpts *o,
                       GError **errp);
void swtpm_socket_opts_clear(SwtpmSocketOpts *o);
void swtpm_setup_opts_clear(SwtpmSetupOpts *o);
void swtpm_ioctl_opts_clear(SwtpmIoctlOpts *o);

/* "D/tpm2-00.qcow2" (TPM 2.0) or "D/tpm-00.qcow2", or the file:// path. */
char *swtpm_compat_image_path(const char *state_dir, const char *state_file,
                              bool tpm2);

/*
 * qtpm's argument vector for @o, NULL-terminated (g_strfreev it).
 * @qtpm is the program, @image the state image, @key_path a file that
 * holds the --key's bytes (raw key or passphrase), NULL without --key.
 */
char **swtpm_socket_qtpm_argv(const SwtpmSocketOpts *o, const char *qtpm,
                              const char *image, const char *key_path);

/* `qtpm-img create` for a swtpm_setup run; @key_path as above. */
char **swtpm_setup_create_argv(const SwtpmSetupOpts *o, const char *qtpm_img,
                               const char *image, const char *key_path);
/*
 * `qtpm-img manufacture` for a swtpm_setup run, or NULL when no option
 * asks for an EK or certificates (nothing to manufacture).
 */
char **swtpm_setup_manufacture_argv(const SwtpmSetupOpts *o,
                                    const char *qtpm_img, const char *ca_dir,
                                    const char *image, const char *key_path);

/* The --print-capabilities answers: one JSON object, no newline. */
const char *swtpm_socket_capabilities_json(void);
const char *swtpm_setup_capabilities_json(void);

/* QEMU's option syntax doubles commas inside a value. */
char *swtpm_compat_escape_commas(const char *s);

#endif
