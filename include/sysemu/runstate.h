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
/*
 * Both requests are carried out from the main loop (an idle source), after
 * the QMP reply to the command that asked for them has been sent, as in
 * QEMU: RESET runs every reset handler then emits RESET; a shutdown emits
 * SHUTDOWN {"guest": false, "reason": REASON} and leaves the main loop.
 * Reasons as QEMU's: "host-qmp-quit", "host-signal", "host-error".
 * Events go out through the event sink (qemu/event-sink.h).
 */
/* Platform reset (QMP system_reset): emits RESET, resets devices. */
void qemu_system_reset_request(void);
/* QMP quit / signals: emits SHUTDOWN and leaves the main loop. */
void qemu_system_shutdown_request(const char *reason);
GMainLoop *qemu_main_loop(void);
const char *qemu_get_vm_name(void);
void qemu_set_vm_name(const char *name);
/* Runs the main loop until a shutdown request (returns at once if one came). */
void qemu_main_loop_run(void);
bool qemu_shutdown_requested(void);
/* SIGTERM, SIGINT and SIGHUP request a shutdown with reason "host-signal". */
void qemu_init_signals(void);

/* Called by qemu_system_reset_request, in registration order. */
typedef void QEMUResetHandler(void *opaque);
void qemu_register_reset(QEMUResetHandler *fn, void *opaque);
void qemu_unregister_reset(QEMUResetHandler *fn, void *opaque);
/* Runs the reset handlers now and emits RESET (reason as QEMU's). */
void qemu_system_reset(const char *reason);

/* Called after every run state change (stop/cont, migration states). */
typedef void VMChangeStateHandler(void *opaque, bool running, RunState state);
void qemu_add_vm_change_state_handler(VMChangeStateHandler *fn, void *opaque);
void qemu_del_vm_change_state_handler(VMChangeStateHandler *fn, void *opaque);
/* Parses a name of runstate_name(); false when unknown. */
bool runstate_from_name(const char *name, RunState *out);

#endif
