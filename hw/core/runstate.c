/*
 * Run state of the machine: -S, stop/cont, system_reset, quit and signals.
 * docs/design.md "Run state".
 */
#include "qemu/osdep.h"
#include "qemu/event-sink.h"
#include "sysemu/runstate.h"

#include <glib-unix.h>
#include <signal.h>

static RunState current_run_state = RUN_STATE_PRELAUNCH;
static GMainLoop *main_loop;
static char *vm_name;
static bool shutdown_requested;
static bool shutdown_done;       /* SHUTDOWN sent; the main loop must end */
static char *shutdown_reason;
static guint reset_idle_id;

static GList *reset_handlers;
static GList *change_handlers;

static const char *const run_state_names[] = {
    [RUN_STATE_PRELAUNCH] = "prelaunch",
    [RUN_STATE_RUNNING] = "running",
    [RUN_STATE_PAUSED] = "paused",
    [RUN_STATE_INMIGRATE] = "inmigrate",
    [RUN_STATE_FINISH_MIGRATE] = "finish-migrate",
    [RUN_STATE_POSTMIGRATE] = "postmigrate",
    [RUN_STATE_SHUTDOWN] = "shutdown",
};

const char *runstate_name(RunState s)
{
    if ((unsigned)s >= ARRAY_SIZE(run_state_names)) {
        return "unknown";
    }
    return run_state_names[s];
}

bool runstate_from_name(const char *name, RunState *out)
{
    for (unsigned i = 0; i < ARRAY_SIZE(run_state_names); i++) {
        if (!g_strcmp0(run_state_names[i], name)) {
            *out = i;
            return true;
        }
    }
    return false;
}

RunState runstate_get(void)
{
    return current_run_state;
}

bool runstate_is_running(void)
{
    return current_run_state == RUN_STATE_RUNNING;
}

typedef struct HandlerEntry {
    void *fn;
    void *opaque;
} HandlerEntry;

static GList *handler_add(GList *list, void *fn, void *opaque)
{
    HandlerEntry *e = g_new0(HandlerEntry, 1);

    e->fn = fn;
    e->opaque = opaque;
    return g_list_append(list, e);
}

static GList *handler_del(GList *list, void *fn, void *opaque)
{
    for (GList *l = list; l; l = l->next) {
        HandlerEntry *e = l->data;
        if (e->fn == fn && e->opaque == opaque) {
            g_free(e);
            return g_list_delete_link(list, l);
        }
    }
    return list;
}

void runstate_set(RunState s)
{
    if (s == current_run_state) {
        return;
    }
    current_run_state = s;
    for (GList *l = change_handlers; l;) {
        HandlerEntry *e = l->data;
        l = l->next;   /* a handler may remove itself */
        ((VMChangeStateHandler *)e->fn)(e->opaque, s == RUN_STATE_RUNNING, s);
    }
}

void qemu_add_vm_change_state_handler(VMChangeStateHandler *fn, void *opaque)
{
    change_handlers = handler_add(change_handlers, fn, opaque);
}

void qemu_del_vm_change_state_handler(VMChangeStateHandler *fn, void *opaque)
{
    change_handlers = handler_del(change_handlers, fn, opaque);
}

void qemu_register_reset(QEMUResetHandler *fn, void *opaque)
{
    reset_handlers = handler_add(reset_handlers, fn, opaque);
}

void qemu_unregister_reset(QEMUResetHandler *fn, void *opaque)
{
    reset_handlers = handler_del(reset_handlers, fn, opaque);
}

void vm_stop(void)
{
    if (!runstate_is_running()) {
        return;
    }
    runstate_set(RUN_STATE_PAUSED);
    qemu_event_emit("STOP", NULL);
}

int vm_start(GError **errp)
{
    switch (current_run_state) {
    case RUN_STATE_RUNNING:
        return 0;
    case RUN_STATE_PRELAUNCH:
    case RUN_STATE_PAUSED:
        runstate_set(RUN_STATE_RUNNING);
        qemu_event_emit("RESUME", NULL);
        return 0;
    case RUN_STATE_INMIGRATE:
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "Migration is not finalized yet");
        return -1;
    case RUN_STATE_FINISH_MIGRATE:
    case RUN_STATE_POSTMIGRATE:
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "the TPM state has been migrated away; this instance "
                    "no longer owns it");
        return -1;
    case RUN_STATE_SHUTDOWN:
    default:
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "the machine is shutting down");
        return -1;
    }
}

void qemu_system_reset(const char *reason)
{
    g_autofree char *data = NULL;

    for (GList *l = reset_handlers; l; l = l->next) {
        HandlerEntry *e = l->data;
        ((QEMUResetHandler *)e->fn)(e->opaque);
    }
    data = g_strdup_printf("{\"guest\": false, \"reason\": \"%s\"}", reason);
    qemu_event_emit("RESET", data);
}

static gboolean reset_idle(gpointer opaque)
{
    reset_idle_id = 0;
    qemu_system_reset("host-qmp-system-reset");
    return G_SOURCE_REMOVE;
}

void qemu_system_reset_request(void)
{
    if (!reset_idle_id) {
        reset_idle_id = g_idle_add_full(G_PRIORITY_HIGH, reset_idle, NULL, NULL);
    }
}

static gboolean shutdown_idle(gpointer opaque)
{
    g_autofree char *data =
        g_strdup_printf("{\"guest\": false, \"reason\": \"%s\"}",
                        shutdown_reason);

    qemu_event_emit("SHUTDOWN", data);
    shutdown_done = true;
    if (main_loop) {
        g_main_loop_quit(main_loop);
    }
    return G_SOURCE_REMOVE;
}

void qemu_system_shutdown_request(const char *reason)
{
    if (shutdown_requested) {
        return;
    }
    shutdown_requested = true;
    shutdown_reason = g_strdup(reason ? reason : "host-qmp-quit");
    g_idle_add_full(G_PRIORITY_HIGH, shutdown_idle, NULL, NULL);
}

bool qemu_shutdown_requested(void)
{
    return shutdown_requested;
}

GMainLoop *qemu_main_loop(void)
{
    if (!main_loop) {
        main_loop = g_main_loop_new(NULL, FALSE);
    }
    return main_loop;
}

void qemu_main_loop_run(void)
{
    GMainLoop *loop = qemu_main_loop();

    /*
     * A shutdown carried out by a main context iteration before the loop
     * ran (e.g. while -qmp wait=on waited for its client) already quit.
     */
    if (!shutdown_done) {
        g_main_loop_run(loop);
    }
}

const char *qemu_get_vm_name(void)
{
    return vm_name;
}

void qemu_set_vm_name(const char *name)
{
    g_free(vm_name);
    vm_name = g_strdup(name);
}

static gboolean signal_shutdown(gpointer opaque)
{
    qemu_system_shutdown_request("host-signal");
    return G_SOURCE_CONTINUE;
}

void qemu_init_signals(void)
{
    signal(SIGPIPE, SIG_IGN);
    g_unix_signal_add(SIGTERM, signal_shutdown, NULL);
    g_unix_signal_add(SIGINT, signal_shutdown, NULL);
    g_unix_signal_add(SIGHUP, signal_shutdown, NULL);
}
