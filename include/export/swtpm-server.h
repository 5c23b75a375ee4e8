/*
 * -export swtpm: a TPM backend served over swtpm's control and data socket
 * protocol, as QEMU's -tpmdev emulator and tpm2-tss's swtpm TCTI speak it.
 * The server is the backend's frontend: TPM commands reach it through
 * tpm_backend_deliver_request. docs/swtpm-protocol.md, docs/qtpm.md.
 */
#ifndef EXPORT_SWTPM_SERVER_H
#define EXPORT_SWTPM_SERVER_H

#include "qemu/osdep.h"

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
/* Every export made with swtpm_export_new, freed (at exit). */
void swtpm_export_free_all(void);

#endif
