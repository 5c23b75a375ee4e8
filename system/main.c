/*
 * qtpm: a QEMU-style virtual TPM. The program lives in system/vl.c so that
 * tests link the same code.
 */
#include "qemu/osdep.h"
#include "sysemu/sysemu.h"

int main(int argc, char **argv)
{
    return qtpm_main(argc, argv);
}
