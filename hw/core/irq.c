/*
 * Interrupt lines of the machine's I/O APIC (include/hw/irq.h).
 *
 * A pin holds a level; devices set it, and one observer (the qtest server)
 * hears about every call so it can report level changes to its client.
 * Devices run on the main loop only, so no locking.
 */
#include "qemu/osdep.h"
#include "hw/irq.h"

static int irq_levels[IOAPIC_NUM_PINS];
static IRQObserver irq_observer;
static void *irq_observer_opaque;

void qemu_set_irq_pin(int pin, int level)
{
    if (pin < 0 || pin >= IOAPIC_NUM_PINS) {
        return;
    }
    irq_levels[pin] = level ? 1 : 0;
    if (irq_observer) {
        irq_observer(irq_observer_opaque, pin, irq_levels[pin]);
    }
}

int qemu_get_irq_pin(int pin)
{
    if (pin < 0 || pin >= IOAPIC_NUM_PINS) {
        return 0;
    }
    return irq_levels[pin];
}

void qemu_irq_set_observer(IRQObserver fn, void *opaque)
{
    irq_observer = fn;
    irq_observer_opaque = opaque;
}
