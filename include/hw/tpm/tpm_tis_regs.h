/*
 * TPM TIS registers and bits (TCG PC Client TIS 1.3 / PTP FIFO interface),
 * named as in the specification; values as QEMU's tpm-tis. Shared by the
 * device model and by TIS drivers (tools/qtpm-tis.c, tests). docs/tis.md.
 */
#ifndef HW_TPM_TPM_TIS_REGS_H
#define HW_TPM_TPM_TIS_REGS_H

#include "qemu/osdep.h"

#define TPM_TIS_ADDR_BASE 0xFED40000ULL
#define TPM_TIS_NUM_LOCALITIES 5
#define TPM_TIS_LOCALITY_SHIFT 12
#define TPM_TIS_ADDR_SIZE 0x5000
#define TPM_TIS_IRQ 5

/* Register offsets inside one locality's 4 KiB page (docs/tis.md). */
#define TPM_TIS_REG_ACCESS          0x00
#define TPM_TIS_REG_INT_ENABLE      0x08
#define TPM_TIS_REG_INT_VECTOR      0x0c
#define TPM_TIS_REG_INT_STATUS      0x10
#define TPM_TIS_REG_INTF_CAPABILITY 0x14
#define TPM_TIS_REG_STS             0x18
#define TPM_TIS_REG_DATA_FIFO       0x24
#define TPM_TIS_REG_INTERFACE_ID    0x30
#define TPM_TIS_REG_DATA_XFIFO      0x80
#define TPM_TIS_REG_DATA_XFIFO_END  0xbc
#define TPM_TIS_REG_DID_VID         0xf00
#define TPM_TIS_REG_RID             0xf04

/* The guest address of register @reg of locality @l. */
#define TPM_TIS_ADDR(l, reg) \
    ((uint64_t)(TPM_TIS_ADDR_BASE + ((uint64_t)(l) << TPM_TIS_LOCALITY_SHIFT) + (reg)))

#define TPM_TIS_ACCESS_TPM_REG_VALID_STS (1u << 7)
#define TPM_TIS_ACCESS_ACTIVE_LOCALITY   (1u << 5)
#define TPM_TIS_ACCESS_BEEN_SEIZED       (1u << 4)
#define TPM_TIS_ACCESS_SEIZE             (1u << 3)
#define TPM_TIS_ACCESS_PENDING_REQUEST   (1u << 2)
#define TPM_TIS_ACCESS_REQUEST_USE       (1u << 1)
#define TPM_TIS_ACCESS_TPM_ESTABLISHMENT (1u << 0)

#define TPM_TIS_STS_TPM_FAMILY_MASK         (3u << 26)
#define TPM_TIS_STS_TPM_FAMILY1_2           (0u << 26)
#define TPM_TIS_STS_TPM_FAMILY2_0           (1u << 26)
#define TPM_TIS_STS_RESET_ESTABLISHMENT_BIT (1u << 25)
#define TPM_TIS_STS_COMMAND_CANCEL          (1u << 24)
#define TPM_TIS_STS_VALID                   (1u << 7)
#define TPM_TIS_STS_COMMAND_READY           (1u << 6)
#define TPM_TIS_STS_TPM_GO                  (1u << 5)
#define TPM_TIS_STS_DATA_AVAILABLE          (1u << 4)
#define TPM_TIS_STS_EXPECT                  (1u << 3)
#define TPM_TIS_STS_SELFTEST_DONE           (1u << 2)
#define TPM_TIS_STS_RESPONSE_RETRY          (1u << 1)
#define TPM_TIS_BURST_COUNT_SHIFT           8
#define TPM_TIS_BURST_COUNT(x)              ((uint32_t)(x) << TPM_TIS_BURST_COUNT_SHIFT)
#define TPM_TIS_STS_BURST_COUNT(sts)        (((sts) >> TPM_TIS_BURST_COUNT_SHIFT) & 0xffff)

#define TPM_TIS_INT_ENABLED            (1u << 31)
#define TPM_TIS_INT_DATA_AVAILABLE     (1u << 0)
#define TPM_TIS_INT_STS_VALID          (1u << 1)
#define TPM_TIS_INT_LOCALITY_CHANGED   (1u << 2)
#define TPM_TIS_INT_COMMAND_READY      (1u << 7)
#define TPM_TIS_INT_POLARITY_MASK      (3u << 3)
#define TPM_TIS_INT_POLARITY_LOW_LEVEL (1u << 3)
#define TPM_TIS_INTERRUPTS_SUPPORTED \
    (TPM_TIS_INT_LOCALITY_CHANGED | TPM_TIS_INT_DATA_AVAILABLE | \
     TPM_TIS_INT_STS_VALID | TPM_TIS_INT_COMMAND_READY)

#define TPM_TIS_CAP_INTERFACE_VERSION1_3            (2u << 28)
#define TPM_TIS_CAP_INTERFACE_VERSION1_3_FOR_TPM2_0 (3u << 28)
#define TPM_TIS_CAP_DATA_TRANSFER_64B               (3u << 9)
#define TPM_TIS_CAP_BURST_COUNT_DYNAMIC             (0u << 8)
#define TPM_TIS_CAP_INTERRUPT_LOW_LEVEL             (1u << 4)
#define TPM_TIS_CAPABILITIES_SUPPORTED1_3 \
    (TPM_TIS_CAP_INTERRUPT_LOW_LEVEL | TPM_TIS_CAP_BURST_COUNT_DYNAMIC | \
     TPM_TIS_CAP_DATA_TRANSFER_64B | TPM_TIS_CAP_INTERFACE_VERSION1_3 | \
     TPM_TIS_INTERRUPTS_SUPPORTED)
#define TPM_TIS_CAPABILITIES_SUPPORTED2_0 \
    (TPM_TIS_CAP_INTERRUPT_LOW_LEVEL | TPM_TIS_CAP_BURST_COUNT_DYNAMIC | \
     TPM_TIS_CAP_DATA_TRANSFER_64B | TPM_TIS_CAP_INTERFACE_VERSION1_3_FOR_TPM2_0 | \
     TPM_TIS_INTERRUPTS_SUPPORTED)

#define TPM_TIS_IFACE_ID_INTERFACE_TIS1_3   0xfu
#define TPM_TIS_IFACE_ID_INTERFACE_FIFO     0x0u
#define TPM_TIS_IFACE_ID_INTERFACE_VER_FIFO (0u << 4)
#define TPM_TIS_IFACE_ID_CAP_5_LOCALITIES   (1u << 8)
#define TPM_TIS_IFACE_ID_CAP_TIS_SUPPORTED  (1u << 13)
#define TPM_TIS_IFACE_ID_INT_SEL_LOCK       (1u << 19)
#define TPM_TIS_IFACE_ID_SUPPORTED_FLAGS1_3 (TPM_TIS_IFACE_ID_INTERFACE_TIS1_3 | (~0u << 4))
#define TPM_TIS_IFACE_ID_SUPPORTED_FLAGS2_0 \
    (TPM_TIS_IFACE_ID_INTERFACE_FIFO | TPM_TIS_IFACE_ID_INTERFACE_VER_FIFO | \
     TPM_TIS_IFACE_ID_CAP_5_LOCALITIES | TPM_TIS_IFACE_ID_CAP_TIS_SUPPORTED)

#define TPM_TIS_TPM_DID      0x0001
#define TPM_TIS_TPM_VID      0x1014   /* IBM, as QEMU */
#define TPM_TIS_TPM_RID      0x01
#define TPM_TIS_NO_DATA_BYTE 0xff
#define TPM_TIS_NO_LOCALITY  0xff
#define TPM_TIS_BUFFER_MAX   4096

#endif
