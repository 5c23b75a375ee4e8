/*
 * Run state of the qtpm machine: the main loop, -S, stop/cont, reset, quit.
 */
#ifndef SYSEMU_RUNSTATE_H
#define SYSEMU_RUNSTATE_H

#include "qemu/osdep.h"

typedef enum RunState {
    RUN_STATE_PRELAUNCH,
    RUN_STATE_RUNNING,
    RUN_STATE_PAUSED,
    RUN_STATE_INMIGRATE,
    RUN_STATE_FINISH_MIGRATE,
    RUN_STATE_POSTMIGRATE,
    RUN_STATE_SHUTDOWN,
} RunState;

RunState runstate_get(void);
void runstate_set(RunState s);
const char *runstate_name(RunState s);
bool runstate_is_running(void);

/* Stop / continue the machine; emit STOP / RESUME. */
void vm_stop(void);
int vm_start(GError **errp);
/* Platform reset (QMP system_reset): emits RESET, resets devices. */
void qemu_system_reset_request(void);
/* QMP quit / signals: emits SHUTDOWN and leaves the main loop. */
void qemu_system_shutdown_request(const char *reason);
GMainLoop *qemu_main_loop(void);
const char *qemu_get_vm_name(void);

#endif
