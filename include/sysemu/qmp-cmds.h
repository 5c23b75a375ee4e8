/*
 * The machine's QMP commands (system/qmp-cmds.c), registered by qtpm's
 * start-up next to the monitor's own.
 */
#ifndef SYSEMU_QMP_CMDS_H
#define SYSEMU_QMP_CMDS_H

#include "qemu/osdep.h"

/* stop, cont, system_reset, quit, query-status, query-name, query-tpm*; idempotent. */
void qemu_register_system_commands(void);

#endif
