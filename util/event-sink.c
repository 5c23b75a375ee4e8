/*
 * The event sinks (include/qemu/event-sink.h).
 */
#include "qemu/osdep.h"
#include "qemu/event-sink.h"

typedef struct EventSink {
    QemuEventFunc *fn;
    void *opaque;
} EventSink;

static GList *event_sinks;

void qemu_event_sink_add(QemuEventFunc *fn, void *opaque)
{
    EventSink *s = g_new0(EventSink, 1);

    s->fn = fn;
    s->opaque = opaque;
    event_sinks = g_list_append(event_sinks, s);
}

void qemu_event_sink_remove(QemuEventFunc *fn, void *opaque)
{
    for (GList *l = event_sinks; l; l = l->next) {
        EventSink *s = l->data;

        if (s->fn == fn && s->opaque == opaque) {
            g_free(s);
            event_sinks = g_list_delete_link(event_sinks, l);
            return;
        }
    }
}

void qemu_event_emit(const char *name, const char *data_json)
{
    for (GList *l = event_sinks; l;) {
        EventSink *s = l->data;

        l = l->next;    /* a sink may remove itself */
        s->fn(name, data_json, s->opaque);
    }
}
