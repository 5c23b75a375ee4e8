/*
 * qtpm: a QEMU-style virtual TPM. The program lives in system/vl.c so that
 * tests link the same code.
 */
#include "qemu/osdep.h"
#include "migration/migration.h"
#include "sysemu/sysemu.h"

int main(int argc, char **argv)
{
    /*
     * A strong reference: qtpm_main's weak one alone would not pull the
     * migration module out of libqtpm.a.
     */
    migration_init();
    return qtpm_main(argc, argv);
}
