/*
 * The qtpm program: command line and machine start-up (system/vl.c).
 * Command line reference: docs/qtpm.md.
 */
#ifndef SYSEMU_SYSEMU_H
#define SYSEMU_SYSEMU_H

#include "qemu/osdep.h"

/* The whole program; returns the exit status. */
int qtpm_main(int argc, char **argv);

#endif
