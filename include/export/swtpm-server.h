/*
 * -export swtpm: a TPM backend served over swtpm's control and data socket
 * protocol, as QEMU's -tpmdev emulator and tpm2-tss's swtpm TCTI speak it.
 * The server is the backend's frontend: TPM commands reach it through
 * tpm_backend_deliver_request. docs/swtpm-protocol.md, docs/qtpm.md.
 */
#ifndef EXPORT_SWTPM_SERVER_H
#define EXPORT_SWTPM_SERVER_H

#include "qemu/osdep.h"
#include "qemu/option.h"

typedef struct SwtpmExport SwtpmExport;

/* -export swtpm's keys (qemu/option.h); "type" is the implied first key. */
extern const struct QemuOptDesc swtpm_export_opts[];

/*
 * Everything that needs no file and no backend: the keys against the
 * table, the ctrl= and data= socket specs, mode/uid/gid only with a unix
 * control socket.
 */
bool swtpm_export_check_opts(GHashTable *opts, GError **errp);

/*
 * Main thread: attaches to the -tpmdev named by tpmdev= as its frontend
 * and listens on ctrl= (and data=). The TPM stays stopped until a client
 * sends CMD_INIT.
 */
SwtpmExport *swtpm_export_new(GHashTable *opts, GError **errp);
void swtpm_export_free(SwtpmExport *e);

/* Who is on the other end of a channel, as the kernel tells it. */
typedef struct SwtpmPeerInfo {
    bool connected;
    bool has_cred;          /* unix socket: SO_PEERCRED */
    int64_t pid;
    int64_t uid;
    int64_t gid;
    char *host;             /* TCP: the client's address and port */
    int port;
} SwtpmPeerInfo;

/* What query-tpm shows of an export (docs/qmp.md "TPMInfo"). */
typedef struct SwtpmExportInfo {
    char *id;
    char *ctrl;             /* "unix:PATH" or "tcp:HOST:PORT", the bound port */
    char *data;             /* data= listener, or NULL (CMD_SET_DATAFD) */
    bool tpm_running;       /* between CMD_INIT and CMD_STOP/SHUTDOWN */
    SwtpmPeerInfo client;   /* the control client */
    SwtpmPeerInfo data_channel;
    bool data_passed;       /* the data channel came with CMD_SET_DATAFD */
    unsigned blobs_set;     /* 1 << TPMStateBlobType, SET_STATEBLOB since STOP */
    unsigned blobs_refused; /* 1 << TPMStateBlobType, refused and not set since */
} SwtpmExportInfo;

/*
 * Main thread: the export serving the backend named @tpmdev, into @info
 * (free with swtpm_export_info_clear); false when none does.
 */
bool swtpm_export_query(const char *tpmdev, SwtpmExportInfo *info);
void swtpm_export_info_clear(SwtpmExportInfo *info);
/* Every export made with swtpm_export_new, freed (at exit). */
void swtpm_export_free_all(void);

#endif
