/*
 * Live migration of the TPM: source and target state machines, QMP
 * commands, the shared-storage hand-off. docs/migration.md.
 */
#ifndef MIGRATION_MIGRATION_H
#define MIGRATION_MIGRATION_H

#include "qemu/osdep.h"

typedef enum MigrationStatus {
    MIGRATION_STATUS_NONE,
    MIGRATION_STATUS_SETUP,
    MIGRATION_STATUS_ACTIVE,
    MIGRATION_STATUS_COMPLETED,
    MIGRATION_STATUS_FAILED,
    MIGRATION_STATUS_CANCELLED,
} MigrationStatus;

const char *migration_status_name(MigrationStatus s);

/*
 * Registers the QMP commands migrate, migrate_cancel, query-migrate and
 * migrate-incoming. Idempotent.
 */
void migration_init(void);

/*
 * -incoming, start-up step 5, before the drives are opened and the TPM
 * backends created: checks the URI and puts the machine into the inmigrate
 * run state (drives then open inactive; the caller creates the backends
 * with tpm_backend_set_incoming(true)).
 */
int migration_incoming_prepare(const char *uri, GError **errp);
/* Whether -incoming was given and the incoming migration has not finished. */
bool migration_incoming_pending(void);

/*
 * -incoming, after the TPM devices exist and the servers listen: verifies
 * the key against the whole image (docs/migration.md §3) and only then
 * listens on the URI (nothing for "defer"). The stream is accepted from the
 * main loop; the TPM starts and the run state changes when it has arrived.
 * On error the caller prints the message and exits 1; no socket exists yet.
 */
int migration_incoming_setup(const char *uri, GError **errp);

#endif
