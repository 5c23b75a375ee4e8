/*
 * qtpm: a QEMU-style virtual TPM. The program lives in system/vl.c so that
 * tests link the same code.
 */
#include "qemu/osdep.h"
#include "migration/migration.h"
#include "sysemu/sysemu.h"

int main(int argc, char **argv)
{
    /* qtpm_main's weak reference alone would not link the module. */
    migration_module_init();
    return qtpm_main(argc, argv);
}
