/*
 * hw/core/runstate.c: run states, change handlers, reset and shutdown
 * requests.
 */
#include "qemu/osdep.h"
#include "sysemu/runstate.h"

static void test_names(void)
{
    static const RunState all[] = {
        RUN_STATE_PRELAUNCH, RUN_STATE_RUNNING, RUN_STATE_PAUSED,
        RUN_STATE_INMIGRATE, RUN_STATE_FINISH_MIGRATE, RUN_STATE_POSTMIGRATE,
        RUN_STATE_SHUTDOWN,
    };
    RunState r;

    for (unsigned i = 0; i < G_N_ELEMENTS(all); i++) {
        g_assert_true(runstate_from_name(runstate_name(all[i]), &r));
        g_assert_cmpint(r, ==, all[i]);
    }
    g_assert_cmpstr(runstate_name(RUN_STATE_FINISH_MIGRATE), ==,
                    "finish-migrate");
    g_assert_false(runstate_from_name("debug", &r));
    g_assert_cmpstr(runstate_name((RunState)99), ==, "unknown");
}

typedef struct Seen {
    int calls;
    bool running;
    RunState state;
} Seen;

static void on_change(void *opaque, bool running, RunState state)
{
    Seen *s = opaque;

    s->calls++;
    s->running = running;
    s->state = state;
}

static void test_stop_start(void)
{
    Seen seen = { 0 };
    g_autoptr(GError) err = NULL;

    runstate_set(RUN_STATE_PRELAUNCH);
    qemu_add_vm_change_state_handler(on_change, &seen);
    vm_stop();                      /* not running: nothing happens */
    g_assert_cmpint(seen.calls, ==, 0);
    g_assert_cmpint(vm_start(NULL), ==, 0);
    g_assert_cmpint(seen.calls, ==, 1);
    g_assert_true(seen.running);
    g_assert_cmpint(vm_start(NULL), ==, 0);   /* already running */
    g_assert_cmpint(seen.calls, ==, 1);
    vm_stop();
    g_assert_cmpint(seen.calls, ==, 2);
    g_assert_false(seen.running);
    g_assert_cmpint(seen.state, ==, RUN_STATE_PAUSED);

    runstate_set(RUN_STATE_POSTMIGRATE);
    g_assert_cmpint(vm_start(&err), ==, -1);
    g_assert_nonnull(strstr(err->message, "migrated away"));
    g_assert_cmpint(runstate_get(), ==, RUN_STATE_POSTMIGRATE);
    qemu_del_vm_change_state_handler(on_change, &seen);
    runstate_set(RUN_STATE_RUNNING);
    g_assert_cmpint(seen.calls, ==, 3);
}

static void append_a(void *opaque)
{
    g_string_append_c(opaque, 'a');
}

static void append_b(void *opaque)
{
    g_string_append_c(opaque, 'b');
}

static void test_reset_handlers(void)
{
    g_autoptr(GString) order = g_string_new(NULL);

    qemu_register_reset(append_a, order);
    qemu_register_reset(append_b, order);
    qemu_system_reset("host-qmp-system-reset");
    g_assert_cmpstr(order->str, ==, "ab");
    qemu_unregister_reset(append_a, order);
    qemu_system_reset_request();
    qemu_system_reset_request();    /* one pending reset, not two */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    g_assert_cmpstr(order->str, ==, "abb");
    qemu_unregister_reset(append_b, order);
}

static void test_name(void)
{
    g_assert_null(qemu_get_vm_name());
    qemu_set_vm_name("vm1");
    g_assert_cmpstr(qemu_get_vm_name(), ==, "vm1");
    qemu_set_vm_name(NULL);
    g_assert_null(qemu_get_vm_name());
}

/* Runs last: a shutdown cannot be undone. */
static void test_shutdown(void)
{
    g_autoptr(GString) order = g_string_new(NULL);

    qemu_register_reset(append_a, order);
    g_assert_false(qemu_shutdown_requested());
    qemu_system_reset_request();
    qemu_system_shutdown_request("host-signal");
    qemu_system_shutdown_request("host-qmp-quit");
    g_assert_true(qemu_shutdown_requested());
    /* Returns: the pending reset runs first, then the shutdown ends the loop. */
    qemu_main_loop_run();
    g_assert_cmpstr(order->str, ==, "a");
    /* Once shut down, running the loop again returns at once. */
    qemu_main_loop_run();
    qemu_unregister_reset(append_a, order);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/runstate/names", test_names);
    g_test_add_func("/runstate/stop-start", test_stop_start);
    g_test_add_func("/runstate/reset-handlers", test_reset_handlers);
    g_test_add_func("/runstate/name", test_name);
    g_test_add_func("/runstate/shutdown", test_shutdown);
    return g_test_run();
}
