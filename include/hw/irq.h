/*
 * Interrupt lines of the machine's interrupt controller ("ioapic", 24 pins).
 * A qtest client that sent "irq_intercept_in ioapic" sees every level
 * change as "IRQ raise N" / "IRQ lower N".
 */
#ifndef HW_IRQ_H
#define HW_IRQ_H

#include "qemu/osdep.h"

#define IOAPIC_NUM_PINS 24

typedef void (*IRQObserver)(void *opaque, int pin, int level);

void qemu_set_irq_pin(int pin, int level);
int qemu_get_irq_pin(int pin);
void qemu_irq_set_observer(IRQObserver fn, void *opaque);

#endif
