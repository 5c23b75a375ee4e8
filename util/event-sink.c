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

/*
 * Events of start-up, emitted before any sink exists (the store's fallback
 * to an older state is found before the monitor listens): kept, a bounded
 * number, for the first sink.
 */
#define EARLY_EVENTS_MAX 16

typedef struct EarlyEvent {
    char *name;
    char *data_json;
} EarlyEvent;

static GPtrArray *early_events;
static bool sink_added;

static void early_event_free(gpointer p)
{
    EarlyEvent *ev = p;

    g_free(ev->name);
    g_free(ev->data_json);
    g_free(ev);
}
void qemu_event_sink_add(QemuEventFunc *fn, void *opaque)
{
    EventSink *s = g_new0(EventSink, 1);

    s->fn = fn;
    s->opaque = opaque;
    event_sinks = g_list_append(event_sinks, s);
    if (!sink_added) {
        sink_added = true;
        if (early_events) {
            for (guint i = 0; i < early_events->len; i++) {
                EarlyEvent *ev = g_ptr_array_index(early_events, i);

                fn(ev->name, ev->data_json, opaque);
            }
            g_clear_pointer(&early_events, g_ptr_array_unref);
        }
    }
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
    if (!sink_added) {
        EarlyEvent *ev;

        if (!early_events) {
            early_events = g_ptr_array_new_with_free_func(early_event_free);
        }
        if (early_events->len >= EARLY_EVENTS_MAX) {
            return;
        }
        ev = g_new0(EarlyEvent, 1);
        ev->name = g_strdup(name);
        ev->data_json = g_strdup(data_json);
        g_ptr_array_add(early_events, ev);
        return;
    }
    for (GList *l = event_sinks; l;) {
        EventSink *s = l->data;

        l = l->next;    /* a sink may remove itself */
        s->fn(name, data_json, s->opaque);
    }
}
