/*
 * The qtpm program: command line and machine start-up (system/vl.c).
 * Command line reference: docs/qtpm.md.
 */
#ifndef SYSEMU_SYSEMU_H
#define SYSEMU_SYSEMU_H

#include "qemu/osdep.h"

/*
 * -incoming URI: the migration module's part of start-up. Set with
 * qtpm_set_incoming_hooks() before qtpm_main() runs. Without hooks,
 * -incoming is refused.
 *
 * Order with -incoming (docs/design.md "Start-up"): secrets, @prepare
 * (enters the "inmigrate" run state), drives (opened inactive); backends are created with tpm_backend_set_incoming(true) (the
 * store is opened and its key checked, but not owned; the TPM does not
 * start); the device is created; the run state is "inmigrate"; the qtest
 * and QMP sockets listen; then @start, which may accept the stream from
 * the main loop or a thread and must finish with tpm_backend_incoming_done,
 * tpm_backend_startup_tpm and runstate changes of its own.
 */
typedef struct QtpmIncomingHooks {
    int (*prepare)(const char *uri, GError **errp);
    int (*start)(const char *uri, GError **errp);
} QtpmIncomingHooks;
void qtpm_set_incoming_hooks(const QtpmIncomingHooks *hooks);

/*
 * Weak: defined by the migration module; qtpm_main calls it first, when it
 * is linked in, so the module registers its hooks and QMP commands. A weak
 * reference does not pull a module out of libqtpm.a: main() references the
 * module strongly (migration_module_init).
 */
void migration_init(void) __attribute__((weak));

/* The whole program; returns the exit status. */
int qtpm_main(int argc, char **argv);

#endif
