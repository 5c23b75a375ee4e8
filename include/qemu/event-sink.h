/*
 * Machine events (STOP, RESUME, RESET, SHUTDOWN, ...) from the modules that
 * cause them to whoever reports them, without either knowing the other:
 * the QMP monitor subscribes, run state and migration emit.
 */
#ifndef QEMU_EVENT_SINK_H
#define QEMU_EVENT_SINK_H

#include "qemu/osdep.h"

/* @data_json is the event's "data" object as JSON text, or NULL for none. */
typedef void QemuEventFunc(const char *name, const char *data_json,
                           void *opaque);

/*
 * The first sink added also receives the events emitted before it (at most
 * 16, in order): start-up's.
 */
void qemu_event_sink_add(QemuEventFunc *fn, void *opaque);
void qemu_event_sink_remove(QemuEventFunc *fn, void *opaque);
/* Calls every sink, in the order they were added; main loop only. */
void qemu_event_emit(const char *name, const char *data_json);

#endif
