/*
 * TPM TIS device model: the TCG PC Client TIS 1.3 / PTP FIFO interface.
 *
 * Five localities at TPM_TIS_ADDR_BASE + locality * 0x1000. Registers and
 * the state machine are described in docs/tis.md; where the TCG
 * specification leaves a choice, values and behaviour follow QEMU's
 * tpm-tis device so that guests and tests written for it work unchanged.
 *
 * Everything here runs on the main loop. The backend runs commands on its
 * worker thread and hands completion back through tpm_tis_request_completed.
 */
#include "qemu/osdep.h"
#include "exec/memory.h"
#include "hw/irq.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/option.h"
#include "hw/tpm/tpm_tis.h"
#include "sysemu/tpm_frontend.h"
#include "sysemu/tpm_util.h"

/* The command/response state of one locality (docs/tis.md "States"). */
typedef enum TPMTISFifoState {
    TPM_TIS_STATE_IDLE = 0,
    TPM_TIS_STATE_READY,
    TPM_TIS_STATE_COMPLETION,
    TPM_TIS_STATE_EXECUTION,
    TPM_TIS_STATE_RECEPTION,
    TPM_TIS_STATE__MAX,
} TPMTISFifoState;

typedef struct TPMLocality {
    TPMTISFifoState state;
    uint8_t access; /* SEIZE is kept here but never shown to the guest */
    uint32_t sts;   /* without the burst count, which is computed */
    uint32_t iface_id;
    uint32_t inte;
    uint32_t ints;
} TPMLocality;

struct TPMTISState {
    TPMBackend *be;
    MemoryRegion *mmio;
    int irq_num;

    TPMVersion be_tpm_version;
    uint32_t be_buffer_size;

    /* Command bytes while receiving, response bytes after completion. */
    uint8_t buffer[TPM_TIS_BUFFER_MAX];
    uint16_t rw_offset;
    uint16_t resp_len;

    uint8_t active_locty;
    uint8_t aborting_locty; /* locality whose command is being aborted */
    uint8_t next_locty;     /* locality that becomes active after abort */
    TPMLocality loc[TPM_TIS_NUM_LOCALITIES];

    TPMBackendCmd cmd;
    uint8_t cmd_out[TPM_TIS_BUFFER_MAX];
    bool cmd_in_flight;
};

static TPMTISState *tpm_tis_device;

static bool tpm_tis_valid_locty(uint8_t locty)
{
    return locty < TPM_TIS_NUM_LOCALITIES;
}

/*
 * Replace the STS flags, keeping selfTestDone (a cached TPM fact, set once
 * until reset) and the TPM family bits.
 */
static void tpm_tis_sts_set(TPMLocality *l, uint32_t flags)
{
    l->sts &= TPM_TIS_STS_SELFTEST_DONE | TPM_TIS_STS_TPM_FAMILY_MASK;
    l->sts |= flags;
}

/* ---- Interrupts ---------------------------------------------------------- */

static bool tpm_tis_irq_asserted(TPMTISState *s)
{
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        TPMLocality *loc = &s->loc[l];
        if ((loc->inte & TPM_TIS_INT_ENABLED) && (loc->ints & loc->inte)) {
            return true;
        }
    }
    return false;
}

/* The line is the OR of every locality's enabled, pending interrupts. */
static void tpm_tis_update_irq(TPMTISState *s)
{
    qemu_set_irq_pin(s->irq_num, tpm_tis_irq_asserted(s));
}

static void tpm_tis_raise_irq(TPMTISState *s, uint8_t locty, uint32_t irqmask)
{
    TPMLocality *l;

    if (!tpm_tis_valid_locty(locty)) {
        return;
    }
    l = &s->loc[locty];
    if ((l->inte & TPM_TIS_INT_ENABLED) && (l->inte & irqmask)) {
        l->ints |= l->inte & irqmask;
        tpm_tis_update_irq(s);
    }
}

/* ---- Locality arbitration ------------------------------------------------ */

/* Does a locality other than @locty wait for use (pendingRequest)? */
static bool tpm_tis_other_request_use(TPMTISState *s, uint8_t locty)
{
    for (uint8_t l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        if (l != locty && (s->loc[l].access & TPM_TIS_ACCESS_REQUEST_USE)) {
            return true;
        }
    }
    return false;
}

static void tpm_tis_new_active_locality(TPMTISState *s, uint8_t new_locty)
{
    bool change = s->active_locty != new_locty;

    if (change && tpm_tis_valid_locty(s->active_locty)) {
        bool seize = tpm_tis_valid_locty(new_locty) &&
                     (s->loc[new_locty].access & TPM_TIS_ACCESS_SEIZE);
        TPMLocality *old = &s->loc[s->active_locty];

        old->access &= ~TPM_TIS_ACCESS_ACTIVE_LOCALITY;
        if (seize) {
            old->access |= TPM_TIS_ACCESS_BEEN_SEIZED;
        } else {
            old->access &= ~TPM_TIS_ACCESS_REQUEST_USE;
        }
    }

    s->active_locty = new_locty;
    if (tpm_tis_valid_locty(new_locty)) {
        s->loc[new_locty].access |= TPM_TIS_ACCESS_ACTIVE_LOCALITY;
        s->loc[new_locty].access &= ~(TPM_TIS_ACCESS_REQUEST_USE | TPM_TIS_ACCESS_SEIZE);
    }
    if (change) {
        tpm_tis_raise_irq(s, s->active_locty, TPM_TIS_INT_LOCALITY_CHANGED);
    }
}

/* The highest locality that set requestUse, or TPM_TIS_NO_LOCALITY. */
static uint8_t tpm_tis_highest_request_use(TPMTISState *s)
{
    for (int l = TPM_TIS_NUM_LOCALITIES - 1; l >= 0; l--) {
        if (s->loc[l].access & TPM_TIS_ACCESS_REQUEST_USE) {
            return l;
        }
    }
    return TPM_TIS_NO_LOCALITY;
}

/* An abort (or a release) waits for the executing command to end. */
static bool tpm_tis_abort_pending(const TPMTISState *s)
{
    return tpm_tis_valid_locty(s->next_locty) || tpm_tis_valid_locty(s->aborting_locty);
}

/* The aborted command is gone; hand the interface to next_locty. */
static void tpm_tis_abort(TPMTISState *s)
{
    s->rw_offset = 0;

    /* A release that waited for the TPM goes to whoever asked meanwhile. */
    if (!tpm_tis_valid_locty(s->next_locty)) {
        s->next_locty = tpm_tis_highest_request_use(s);
    }

    if (s->aborting_locty == s->next_locty) {
        TPMLocality *l = &s->loc[s->aborting_locty];
        l->state = TPM_TIS_STATE_READY;
        tpm_tis_sts_set(l, TPM_TIS_STS_COMMAND_READY);
        tpm_tis_raise_irq(s, s->aborting_locty, TPM_TIS_INT_COMMAND_READY);
    }
    tpm_tis_new_active_locality(s, s->next_locty);
    s->next_locty = TPM_TIS_NO_LOCALITY;
    s->aborting_locty = TPM_TIS_NO_LOCALITY;
}

/*
 * Abort the current command of @locty (or of nobody: TPM_TIS_NO_LOCALITY)
 * and make @new_locty active afterwards. A command the TPM is executing is
 * cancelled first; the abort then completes in tpm_tis_request_completed.
 */
static void tpm_tis_prep_abort(TPMTISState *s, uint8_t locty, uint8_t new_locty)
{
    s->aborting_locty = locty;
    s->next_locty = new_locty;

    if (s->cmd_in_flight) {
        tpm_backend_cancel_cmd(s->be);
        return;
    }
    tpm_tis_abort(s);
}

/*
 * activeLocality written as 1: the owner relinquishes (the highest waiting
 * locality takes over), anybody else withdraws its request.
 * Returns false when the new active locality is decided by an abort.
 */
static bool tpm_tis_access_relinquish(TPMTISState *s, uint8_t locty, uint8_t *active)
{
    uint8_t next;

    if (s->active_locty != locty) {
        s->loc[locty].access &= ~TPM_TIS_ACCESS_REQUEST_USE;
        return true;
    }
    next = tpm_tis_highest_request_use(s);
    if (tpm_tis_valid_locty(next)) {
        tpm_tis_prep_abort(s, locty, next);
        return false;
    }
    if (s->cmd_in_flight) {
        /*
         * Nobody may use the FIFO (which holds the command) before the TPM
         * is done with it: the release completes with the command.
         */
        tpm_tis_prep_abort(s, locty, TPM_TIS_NO_LOCALITY);
        return false;
    }
    *active = TPM_TIS_NO_LOCALITY;
    return true;
}

static bool tpm_tis_higher_seize_pending(TPMTISState *s, uint8_t locty)
{
    for (uint8_t l = locty + 1; l < TPM_TIS_NUM_LOCALITIES; l++) {
        if (s->loc[l].access & TPM_TIS_ACCESS_SEIZE) {
            return true;
        }
    }
    return false;
}

/*
 * Seize: granted when no locality is active or @locty is higher than the
 * active one, and no higher locality is seizing already.
 * Returns false when the new active locality is decided by an abort.
 */
static bool tpm_tis_access_seize(TPMTISState *s, uint8_t locty)
{
    if (tpm_tis_valid_locty(s->active_locty) && locty <= s->active_locty) {
        return true;
    }
    if ((s->loc[locty].access & TPM_TIS_ACCESS_SEIZE) ||
        tpm_tis_higher_seize_pending(s, locty)) {
        return true;
    }
    for (uint8_t l = 0; l < locty; l++) {
        s->loc[l].access &= ~TPM_TIS_ACCESS_SEIZE;
    }
    s->loc[locty].access |= TPM_TIS_ACCESS_SEIZE;
    tpm_tis_prep_abort(s, s->active_locty, locty);
    return false;
}

static void tpm_tis_access_request_use(TPMTISState *s, uint8_t locty, uint8_t *active)
{
    if (s->active_locty == locty) {
        return;
    }
    if (tpm_tis_valid_locty(s->active_locty)) {
        s->loc[locty].access |= TPM_TIS_ACCESS_REQUEST_USE;
    } else {
        *active = locty;
    }
}

static void tpm_tis_write_access(TPMTISState *s, uint8_t locty, uint32_t val)
{
    uint8_t active = s->active_locty;
    bool set_new_locty = true;

    if (val & TPM_TIS_ACCESS_SEIZE) {
        val &= ~(TPM_TIS_ACCESS_REQUEST_USE | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    }
    if (val & TPM_TIS_ACCESS_ACTIVE_LOCALITY) {
        set_new_locty = tpm_tis_access_relinquish(s, locty, &active);
    }
    if (val & TPM_TIS_ACCESS_BEEN_SEIZED) {
        s->loc[locty].access &= ~TPM_TIS_ACCESS_BEEN_SEIZED;
    }
    if (val & TPM_TIS_ACCESS_SEIZE) {
        set_new_locty = tpm_tis_access_seize(s, locty) && set_new_locty;
    }
    if (val & TPM_TIS_ACCESS_REQUEST_USE) {
        tpm_tis_access_request_use(s, locty, &active);
    }
    if (set_new_locty) {
        tpm_tis_new_active_locality(s, active);
    }
}

/* ---- Command execution --------------------------------------------------- */

static void tpm_tis_tpm_send(TPMTISState *s, uint8_t locty)
{
    s->loc[locty].state = TPM_TIS_STATE_EXECUTION;
    s->cmd = (TPMBackendCmd){
        .locality = locty,
        .in = s->buffer,
        .in_len = s->rw_offset,
        .out = s->cmd_out,
        .out_len = s->be_buffer_size,
    };
    s->cmd_in_flight = true;
    tpm_backend_deliver_request(s->be, &s->cmd);
}

/* A response too short to carry a header becomes the TPM's failure code. */
static void tpm_tis_write_fatal_response(TPMTISState *s)
{
    /* A backend that names no TPM version is answered in TPM 1.2 form. */
    TPMVersion v = s->be_tpm_version == TPM_VERSION_2_0 ? TPM_VERSION_2_0
                                                         : TPM_VERSION_1_2;

    tpm_util_write_fatal_error_response(s->buffer, sizeof(s->buffer), v);
    s->resp_len = TPM_HEADER_SIZE;
}

static void tpm_tis_take_response(TPMTISState *s)
{
    uint32_t len = MIN(s->cmd.out_len, s->be_buffer_size);

    if (len >= TPM_HEADER_SIZE) {
        len = MIN(len, tpm_util_get_size_from_buffer(s->cmd_out, len));
    }
    if (len < TPM_HEADER_SIZE) {
        tpm_tis_write_fatal_response(s);
        return;
    }
    memcpy(s->buffer, s->cmd_out, len);
    s->resp_len = len;
}

/* Main loop: the backend finished (or cancelled) the command in s->cmd. */
static void tpm_tis_request_completed(void *opaque, int ret)
{
    TPMTISState *s = opaque;
    uint8_t locty = s->cmd.locality;

    if (!s->cmd_in_flight || !tpm_tis_valid_locty(locty)) {
        return;
    }
    s->cmd_in_flight = false;

    if (s->cmd.selftest_done) {
        for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
            s->loc[l].sts |= TPM_TIS_STS_SELFTEST_DONE;
        }
    }
    if (ret != 0) {
        s->cmd.out_len = 0;
    }
    tpm_tis_take_response(s);
    tpm_tis_sts_set(&s->loc[locty], TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE);
    s->loc[locty].state = TPM_TIS_STATE_COMPLETION;
    s->rw_offset = 0;

    if (tpm_tis_abort_pending(s)) {
        tpm_tis_abort(s);
    }
    tpm_tis_raise_irq(s, locty, TPM_TIS_INT_DATA_AVAILABLE | TPM_TIS_INT_STS_VALID);
}

/* ---- STS ----------------------------------------------------------------- */

static void tpm_tis_command_ready(TPMTISState *s, uint8_t locty)
{
    TPMLocality *l = &s->loc[locty];

    switch (l->state) {
    case TPM_TIS_STATE_READY:
        s->rw_offset = 0;
        break;
    case TPM_TIS_STATE_IDLE:
        tpm_tis_sts_set(l, TPM_TIS_STS_COMMAND_READY);
        l->state = TPM_TIS_STATE_READY;
        tpm_tis_raise_irq(s, locty, TPM_TIS_INT_COMMAND_READY);
        break;
    case TPM_TIS_STATE_EXECUTION:
    case TPM_TIS_STATE_RECEPTION:
        tpm_tis_prep_abort(s, locty, locty);
        break;
    case TPM_TIS_STATE_COMPLETION:
        s->rw_offset = 0;
        l->state = TPM_TIS_STATE_READY;
        if (!(l->sts & TPM_TIS_STS_COMMAND_READY)) {
            tpm_tis_sts_set(l, TPM_TIS_STS_COMMAND_READY);
            tpm_tis_raise_irq(s, locty, TPM_TIS_INT_COMMAND_READY);
        }
        l->sts &= ~TPM_TIS_STS_DATA_AVAILABLE;
        break;
    default:
        break;
    }
}

static void tpm_tis_tpm_go(TPMTISState *s, uint8_t locty)
{
    TPMLocality *l = &s->loc[locty];

    if (l->state == TPM_TIS_STATE_RECEPTION && !(l->sts & TPM_TIS_STS_EXPECT)) {
        tpm_tis_tpm_send(s, locty);
    }
}

static void tpm_tis_response_retry(TPMTISState *s, uint8_t locty)
{
    TPMLocality *l = &s->loc[locty];

    if (l->state == TPM_TIS_STATE_COMPLETION) {
        s->rw_offset = 0;
        tpm_tis_sts_set(l, TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE);
    }
}

/* commandCancel and resetEstablishment exist only in the TPM 2.0 STS. */
static void tpm_tis_sts_tpm2_bits(TPMTISState *s, uint8_t locty, uint32_t val)
{
    if ((val & TPM_TIS_STS_COMMAND_CANCEL) &&
        s->loc[locty].state == TPM_TIS_STATE_EXECUTION && s->cmd_in_flight) {
        tpm_backend_cancel_cmd(s->be);
    }
    if ((val & TPM_TIS_STS_RESET_ESTABLISHMENT_BIT) && (locty == 3 || locty == 4)) {
        tpm_backend_reset_tpm_established_flag(s->be, locty);
    }
}

static void tpm_tis_write_sts(TPMTISState *s, uint8_t locty, uint32_t val)
{
    if (s->be_tpm_version == TPM_VERSION_2_0) {
        tpm_tis_sts_tpm2_bits(s, locty, val);
    }
    /* Exactly one action bit per write, as in QEMU; combinations do nothing. */
    switch (val & (TPM_TIS_STS_COMMAND_READY | TPM_TIS_STS_TPM_GO |
                   TPM_TIS_STS_RESPONSE_RETRY)) {
    case TPM_TIS_STS_COMMAND_READY:
        tpm_tis_command_ready(s, locty);
        break;
    case TPM_TIS_STS_TPM_GO:
        tpm_tis_tpm_go(s, locty);
        break;
    case TPM_TIS_STS_RESPONSE_RETRY:
        tpm_tis_response_retry(s, locty);
        break;
    default:
        break;
    }
}

static uint32_t tpm_tis_read_sts(TPMTISState *s, uint8_t locty, unsigned size)
{
    TPMLocality *l = &s->loc[locty];
    uint32_t avail;

    if (l->sts & TPM_TIS_STS_DATA_AVAILABLE) {
        avail = s->resp_len - MIN(s->rw_offset, s->resp_len);
    } else {
        avail = s->be_buffer_size - MIN(s->rw_offset, s->be_buffer_size);
        /* A byte read must not show 0x00 for 0x100 free bytes. */
        if (size == 1 && avail > 0xff) {
            avail = 0xff;
        }
    }
    return TPM_TIS_BURST_COUNT(avail) | l->sts;
}

/* ---- FIFO ---------------------------------------------------------------- */

static uint8_t tpm_tis_data_read(TPMTISState *s, uint8_t locty)
{
    TPMLocality *l = &s->loc[locty];
    uint8_t ret;

    if (l->state != TPM_TIS_STATE_COMPLETION || !(l->sts & TPM_TIS_STS_DATA_AVAILABLE) ||
        s->rw_offset >= s->resp_len) {
        return TPM_TIS_NO_DATA_BYTE;
    }
    ret = s->buffer[s->rw_offset++];
    if (s->rw_offset >= s->resp_len) {
        tpm_tis_sts_set(l, TPM_TIS_STS_VALID);
        tpm_tis_raise_irq(s, locty, TPM_TIS_INT_STS_VALID);
    }
    return ret;
}

static uint32_t tpm_tis_fifo_read(TPMTISState *s, uint8_t locty, uint64_t addr,
                                  unsigned size)
{
    uint32_t val = 0;

    /* An access never reaches past the 4-byte FIFO register. */
    size = MIN(size, 4 - (addr & 3));
    for (unsigned i = 0; i < size; i++) {
        val |= (uint32_t)tpm_tis_data_read(s, locty) << (8 * i);
    }
    return val;
}

static void tpm_tis_fifo_check_complete(TPMTISState *s, uint8_t locty)
{
    TPMLocality *l = &s->loc[locty];
    bool need_irq;

    if (s->rw_offset <= 5 || !(l->sts & TPM_TIS_STS_EXPECT)) {
        return;
    }
    need_irq = !(l->sts & TPM_TIS_STS_VALID);
    /* paramSize is complete once 6 bytes are in, before the whole header. */
    if (tpm_util_get_size_from_buffer(s->buffer, sizeof(s->buffer)) > s->rw_offset) {
        tpm_tis_sts_set(l, TPM_TIS_STS_EXPECT | TPM_TIS_STS_VALID);
    } else {
        tpm_tis_sts_set(l, TPM_TIS_STS_VALID);
    }
    if (need_irq) {
        tpm_tis_raise_irq(s, locty, TPM_TIS_INT_STS_VALID);
    }
}

static void tpm_tis_fifo_write(TPMTISState *s, uint8_t locty, uint64_t addr, uint64_t val,
                               unsigned size)
{
    TPMLocality *l = &s->loc[locty];

    if (l->state != TPM_TIS_STATE_READY && l->state != TPM_TIS_STATE_RECEPTION) {
        return; /* idle, executing or holding a response: byte dropped */
    }
    if (l->state == TPM_TIS_STATE_READY) {
        l->state = TPM_TIS_STATE_RECEPTION;
        tpm_tis_sts_set(l, TPM_TIS_STS_EXPECT | TPM_TIS_STS_VALID);
    }
    size = MIN(size, 4 - (addr & 3));
    while ((l->sts & TPM_TIS_STS_EXPECT) && size > 0) {
        if (s->rw_offset >= s->be_buffer_size) {
            /* Overflow: stop expecting; the TPM will reject the command. */
            tpm_tis_sts_set(l, TPM_TIS_STS_VALID);
            break;
        }
        s->buffer[s->rw_offset++] = val;
        val >>= 8;
        size--;
    }
    tpm_tis_fifo_check_complete(s, locty);
}

/* ---- Register dispatch --------------------------------------------------- */

static bool tpm_tis_is_fifo(uint32_t offset)
{
    return offset == TPM_TIS_REG_DATA_FIFO ||
           (offset >= TPM_TIS_REG_DATA_XFIFO && offset <= TPM_TIS_REG_DATA_XFIFO_END);
}

static uint32_t tpm_tis_read_access(TPMTISState *s, uint8_t locty)
{
    uint32_t val = s->loc[locty].access & ~TPM_TIS_ACCESS_SEIZE;

    if (tpm_tis_other_request_use(s, locty)) {
        val |= TPM_TIS_ACCESS_PENDING_REQUEST;
    }
    if (!tpm_backend_get_tpm_established_flag(s->be)) {
        val |= TPM_TIS_ACCESS_TPM_ESTABLISHMENT;
    }
    return val;
}

static uint32_t tpm_tis_capability(TPMTISState *s)
{
    switch (s->be_tpm_version) {
    case TPM_VERSION_1_2:
        return TPM_TIS_CAPABILITIES_SUPPORTED1_3;
    case TPM_VERSION_2_0:
        return TPM_TIS_CAPABILITIES_SUPPORTED2_0;
    default:
        return 0;
    }
}

/* A whole 32-bit register at @offset (aligned to 4). */
static uint32_t tpm_tis_read_reg(TPMTISState *s, uint8_t locty, uint32_t offset,
                                 unsigned size)
{
    switch (offset) {
    case TPM_TIS_REG_ACCESS:
        return tpm_tis_read_access(s, locty);
    case TPM_TIS_REG_INT_ENABLE:
        return s->loc[locty].inte;
    case TPM_TIS_REG_INT_VECTOR:
        return s->irq_num;
    case TPM_TIS_REG_INT_STATUS:
        return s->loc[locty].ints;
    case TPM_TIS_REG_INTF_CAPABILITY:
        return tpm_tis_capability(s);
    case TPM_TIS_REG_STS:
        return s->active_locty == locty ? tpm_tis_read_sts(s, locty, size) : 0xffffffff;
    case TPM_TIS_REG_INTERFACE_ID:
        return s->loc[locty].iface_id;
    case TPM_TIS_REG_DID_VID:
        return ((uint32_t)TPM_TIS_TPM_DID << 16) | TPM_TIS_TPM_VID;
    case TPM_TIS_REG_RID:
        return TPM_TIS_TPM_RID;
    default:
        return 0xffffffff;
    }
}

static uint64_t tpm_tis_mmio_read(void *opaque, uint64_t addr, unsigned size)
{
    TPMTISState *s = opaque;
    uint8_t locty = addr >> TPM_TIS_LOCALITY_SHIFT;
    uint32_t offset = addr & 0xffc;
    uint64_t mask = size >= 4 ? 0xffffffff : (UINT64_C(1) << (size * 8)) - 1;
    uint32_t val;

    if (!tpm_tis_valid_locty(locty) || tpm_backend_had_startup_error(s->be)) {
        return 0;
    }
    if (tpm_tis_is_fifo(offset)) {
        if (s->active_locty != locty) {
            return 0xffffffff & mask;
        }
        return tpm_tis_fifo_read(s, locty, addr, size) & mask;
    }
    val = tpm_tis_read_reg(s, locty, offset, size);
    return (val >> ((addr & 3) * 8)) & mask;
}

static void tpm_tis_write_int_enable(TPMTISState *s, uint8_t locty, uint32_t val,
                                     uint32_t keep)
{
    TPMLocality *l = &s->loc[locty];

    l->inte &= keep;
    l->inte |= val & (TPM_TIS_INT_ENABLED | TPM_TIS_INT_POLARITY_MASK |
                      TPM_TIS_INTERRUPTS_SUPPORTED);
    tpm_tis_update_irq(s);
}

static void tpm_tis_write_int_status(TPMTISState *s, uint8_t locty, uint32_t val)
{
    s->loc[locty].ints &= ~(val & TPM_TIS_INTERRUPTS_SUPPORTED);
    tpm_tis_update_irq(s);
}

static void tpm_tis_write_interface_id(TPMTISState *s, uint32_t val)
{
    if (val & TPM_TIS_IFACE_ID_INT_SEL_LOCK) {
        for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
            s->loc[l].iface_id |= TPM_TIS_IFACE_ID_INT_SEL_LOCK;
        }
    }
}

/*
 * @val is the access's value shifted to its place in the 32-bit register;
 * @keep has the bits the access does not cover.
 */
static void tpm_tis_write_reg(TPMTISState *s, uint8_t locty, uint32_t offset,
                              uint32_t val, uint32_t keep)
{
    if (offset == TPM_TIS_REG_ACCESS) {
        tpm_tis_write_access(s, locty, val);
        return;
    }
    if (offset == TPM_TIS_REG_INTERFACE_ID) {
        tpm_tis_write_interface_id(s, val);
        return;
    }
    if (s->active_locty != locty) {
        return; /* the rest belongs to the active locality only */
    }
    switch (offset) {
    case TPM_TIS_REG_INT_ENABLE:
        tpm_tis_write_int_enable(s, locty, val, keep);
        break;
    case TPM_TIS_REG_INT_STATUS:
        tpm_tis_write_int_status(s, locty, val);
        break;
    case TPM_TIS_REG_STS:
        tpm_tis_write_sts(s, locty, val);
        break;
    default:
        break; /* INT_VECTOR is hard-wired; the rest is read-only */
    }
}

static void tpm_tis_mmio_write(void *opaque, uint64_t addr, uint64_t val, unsigned size)
{
    TPMTISState *s = opaque;
    uint8_t locty = addr >> TPM_TIS_LOCALITY_SHIFT;
    uint32_t offset = addr & 0xffc;
    unsigned shift = (addr & 3) * 8;
    uint32_t mask = size >= 4 ? 0xffffffff : (1u << (size * 8)) - 1;

    /* Locality 4 belongs to the platform's hardware, never to software. */
    if (locty >= 4 || tpm_backend_had_startup_error(s->be)) {
        return;
    }
    val &= mask;
    if (tpm_tis_is_fifo(offset)) {
        if (s->active_locty == locty) {
            tpm_tis_fifo_write(s, locty, addr, val, size);
        }
        return;
    }
    tpm_tis_write_reg(s, locty, offset, (uint32_t)val << shift, ~(mask << shift));
}

static const MemoryRegionOps tpm_tis_memory_ops = {
    .read = tpm_tis_mmio_read,
    .write = tpm_tis_mmio_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

/* ---- Life cycle ---------------------------------------------------------- */

static void tpm_tis_reset_locality(TPMTISState *s, TPMLocality *l)
{
    l->access = TPM_TIS_ACCESS_TPM_REG_VALID_STS;
    switch (s->be_tpm_version) {
    case TPM_VERSION_1_2:
        l->sts = TPM_TIS_STS_TPM_FAMILY1_2;
        l->iface_id = TPM_TIS_IFACE_ID_SUPPORTED_FLAGS1_3;
        break;
    case TPM_VERSION_2_0:
        l->sts = TPM_TIS_STS_TPM_FAMILY2_0;
        l->iface_id = TPM_TIS_IFACE_ID_SUPPORTED_FLAGS2_0;
        break;
    default:
        l->sts = 0;
        l->iface_id = 0;
        break;
    }
    l->inte = TPM_TIS_INT_POLARITY_LOW_LEVEL;
    l->ints = 0;
    l->state = TPM_TIS_STATE_IDLE;
}

static int tpm_tis_reset_common(TPMTISState *s, GError **errp)
{
    /* A command still running finishes (its callback runs) before the reset. */
    if (s->cmd_in_flight) {
        tpm_backend_finish_sync(s->be);
        s->cmd_in_flight = false;
    }
    s->be_tpm_version = tpm_backend_get_tpm_version(s->be);
    s->be_buffer_size = MIN(tpm_backend_get_buffer_size(s->be), TPM_TIS_BUFFER_MAX);
    tpm_backend_reset(s->be);

    s->active_locty = TPM_TIS_NO_LOCALITY;
    s->next_locty = TPM_TIS_NO_LOCALITY;
    s->aborting_locty = TPM_TIS_NO_LOCALITY;
    s->rw_offset = 0;
    s->resp_len = 0;
    memset(s->buffer, 0, sizeof(s->buffer));
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        tpm_tis_reset_locality(s, &s->loc[l]);
    }
    tpm_tis_update_irq(s);
    return tpm_backend_startup_tpm(s->be, s->be_buffer_size, errp);
}

void tpm_tis_reset(TPMTISState *s)
{
    g_autoptr(GError) err = NULL;

    if (tpm_tis_reset_common(s, &err) < 0) {
        /* The device now answers as QEMU's does after a startup error. */
        error_report("tpm-tis: %s", err ? err->message : "TPM startup failed");
    }
}

TPMTISState *tpm_tis_create(TPMBackend *be, int irq, GError **errp)
{
    TPMTISState *s;

    if (!be) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "tpm-tis: no TPM backend given");
        return NULL;
    }
    if (irq < 0 || irq >= IOAPIC_NUM_PINS) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "tpm-tis: irq %d is not an I/O APIC pin (0..%d)", irq,
                    IOAPIC_NUM_PINS - 1);
        return NULL;
    }
    if (tpm_tis_device) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "tpm-tis: only one tpm-tis device is supported");
        return NULL;
    }
    s = g_new0(TPMTISState, 1);
    s->be = be;
    s->irq_num = irq;
    s->mmio = memory_region_add("tpm-tis-mmio", TPM_TIS_ADDR_BASE, TPM_TIS_ADDR_SIZE,
                                &tpm_tis_memory_ops, s);
    if (!s->mmio) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "tpm-tis: address range 0x%" PRIx64 "+0x%x is already in use",
                    (uint64_t)TPM_TIS_ADDR_BASE, TPM_TIS_ADDR_SIZE);
        g_free(s);
        return NULL;
    }
    tpm_backend_set_frontend(be, TPM_TIS_MODEL, tpm_tis_request_completed, s);
    tpm_tis_device = s;
    if (tpm_tis_reset_common(s, errp) < 0) {
        tpm_tis_destroy(s);
        return NULL;
    }
    return s;
}

void tpm_tis_destroy(TPMTISState *s)
{
    if (!s) {
        return;
    }
    if (s->cmd_in_flight) {
        tpm_backend_finish_sync(s->be);
    }
    tpm_backend_set_frontend(s->be, NULL, NULL, NULL);
    memory_region_del(s->mmio);
    if (tpm_tis_device == s) {
        tpm_tis_device = NULL;
    }
    qemu_set_irq_pin(s->irq_num, 0);
    g_free(s);
}

TPMTISState *tpm_tis_find(void)
{
    return tpm_tis_device;
}

/* ---- Saved state (docs/tis.md "Saved state") ----------------------------- */

#define TPM_TIS_STATE_MAGIC "QTIS"
#define TPM_TIS_STATE_HDR_LEN 20
#define TPM_TIS_STATE_LOC_LEN 18

static void put_u8(GByteArray *out, uint8_t v)
{
    g_byte_array_append(out, &v, 1);
}

static void put_be16(GByteArray *out, uint16_t v)
{
    uint8_t b[2];

    stw_be_p(b, v);
    g_byte_array_append(out, b, 2);
}

static void put_be32(GByteArray *out, uint32_t v)
{
    uint8_t b[4];

    stl_be_p(b, v);
    g_byte_array_append(out, b, 4);
}

void tpm_tis_save_state(TPMTISState *s, GByteArray *out)
{
    if (s->cmd_in_flight) {
        tpm_backend_finish_sync(s->be);
    }
    g_byte_array_append(out, (const uint8_t *)TPM_TIS_STATE_MAGIC, 4);
    put_be16(out, TPM_TIS_STATE_VERSION);
    put_u8(out, s->be_tpm_version);
    put_u8(out, s->active_locty);
    put_u8(out, s->aborting_locty);
    put_u8(out, s->next_locty);
    put_be16(out, s->rw_offset);
    put_be16(out, s->resp_len);
    put_be32(out, s->be_buffer_size);
    put_be16(out, 0); /* reserved */
    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        TPMLocality *loc = &s->loc[l];
        put_u8(out, loc->state);
        put_u8(out, loc->access);
        put_be32(out, loc->sts);
        put_be32(out, loc->iface_id);
        put_be32(out, loc->inte);
        put_be32(out, loc->ints);
    }
    g_byte_array_append(out, s->buffer, s->be_buffer_size);
}

/* The read position; tpm_tis_load_state checks the length first. */
typedef struct TISLoadCtx {
    const uint8_t *p;
} TISLoadCtx;

static uint8_t get_u8(TISLoadCtx *c)
{
    return *c->p++;
}

static uint16_t get_be16(TISLoadCtx *c)
{
    uint16_t v = lduw_be_p(c->p);

    c->p += 2;
    return v;
}

static uint32_t get_be32(TISLoadCtx *c)
{
    uint32_t v = ldl_be_p(c->p);

    c->p += 4;
    return v;
}

static bool tis_bad(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool tis_bad(GError **errp, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT, "tpm-tis state: %s", msg);
    return false;
}

static bool tpm_tis_locty_field_ok(uint8_t v)
{
    return tpm_tis_valid_locty(v) || v == TPM_TIS_NO_LOCALITY;
}

static bool tpm_tis_check_locality(TPMTISState *s, const TPMTISState *n, int i,
                                   GError **errp)
{
    const TPMLocality *l = &n->loc[i];
    uint32_t family = s->be_tpm_version == TPM_VERSION_2_0 ? TPM_TIS_STS_TPM_FAMILY2_0
                                                           : TPM_TIS_STS_TPM_FAMILY1_2;
    uint32_t sts_bits = TPM_TIS_STS_TPM_FAMILY_MASK | TPM_TIS_STS_VALID |
                        TPM_TIS_STS_COMMAND_READY | TPM_TIS_STS_DATA_AVAILABLE |
                        TPM_TIS_STS_EXPECT | TPM_TIS_STS_SELFTEST_DONE;
    uint32_t access_bits = TPM_TIS_ACCESS_TPM_REG_VALID_STS |
                           TPM_TIS_ACCESS_ACTIVE_LOCALITY | TPM_TIS_ACCESS_BEEN_SEIZED |
                           TPM_TIS_ACCESS_SEIZE | TPM_TIS_ACCESS_REQUEST_USE;
    uint32_t inte_bits =
        TPM_TIS_INT_ENABLED | TPM_TIS_INT_POLARITY_MASK | TPM_TIS_INTERRUPTS_SUPPORTED;
    bool active = n->active_locty == i;

    if (l->state >= TPM_TIS_STATE__MAX) {
        return tis_bad(errp, "locality %d has unknown state %u", i, l->state);
    }
    if (l->state == TPM_TIS_STATE_EXECUTION && !active) {
        return tis_bad(errp, "locality %d executes a command but is not active", i);
    }
    if ((l->access & ~access_bits) || !(l->access & TPM_TIS_ACCESS_TPM_REG_VALID_STS) ||
        !!(l->access & TPM_TIS_ACCESS_ACTIVE_LOCALITY) != active) {
        return tis_bad(errp,
                       "locality %d ACCESS 0x%02x does not match the active "
                       "locality %u",
                       i, l->access, n->active_locty);
    }
    if ((l->sts & ~sts_bits) || (l->sts & TPM_TIS_STS_TPM_FAMILY_MASK) != family) {
        return tis_bad(errp,
                       "locality %d STS 0x%08x has unknown bits or the wrong "
                       "TPM family",
                       i, l->sts);
    }
    if ((l->inte & ~inte_bits) || (l->ints & ~TPM_TIS_INTERRUPTS_SUPPORTED)) {
        return tis_bad(errp,
                       "locality %d interrupt registers 0x%08x/0x%08x have "
                       "unknown bits",
                       i, l->inte, l->ints);
    }
    if ((l->iface_id & ~TPM_TIS_IFACE_ID_INT_SEL_LOCK) !=
        (s->loc[i].iface_id & ~TPM_TIS_IFACE_ID_INT_SEL_LOCK)) {
        return tis_bad(errp, "locality %d INTERFACE_ID 0x%08x does not fit this TPM", i,
                       l->iface_id);
    }
    return true;
}

/*
 * All localities share one buffer (as in QEMU), so a locality that lost the
 * interface may still show dataAvail for bytes another one has replaced;
 * reads stay bounded by resp_len, so only the bounds are checked here.
 */
static bool tpm_tis_check_offsets(const TPMTISState *n, GError **errp)
{
    if (n->rw_offset > n->be_buffer_size || n->resp_len > n->be_buffer_size) {
        return tis_bad(errp,
                       "FIFO offset %u or response length %u beyond the buffer "
                       "size %u",
                       n->rw_offset, n->resp_len, n->be_buffer_size);
    }
    /* A pending abort waits for the executing command; nothing else waits. */
    if (tpm_tis_abort_pending(n) &&
        (!tpm_tis_valid_locty(n->active_locty) ||
         n->loc[n->active_locty].state != TPM_TIS_STATE_EXECUTION)) {
        return tis_bad(errp, "an abort (%u to %u) is pending, but no command runs",
                       n->aborting_locty, n->next_locty);
    }
    for (int i = 0; i < TPM_TIS_NUM_LOCALITIES; i++) {
        if (n->loc[i].state == TPM_TIS_STATE_COMPLETION && n->resp_len < TPM_HEADER_SIZE) {
            return tis_bad(errp, "locality %d holds a response of only %u bytes", i,
                           n->resp_len);
        }
    }
    return true;
}

static bool tpm_tis_parse_header(TPMTISState *s, TPMTISState *n, TISLoadCtx *c,
                                 GError **errp)
{
    uint16_t version;
    uint8_t tpm_version;

    if (memcmp(c->p, TPM_TIS_STATE_MAGIC, 4) != 0) {
        return tis_bad(errp, "bad magic");
    }
    c->p += 4;
    version = get_be16(c);
    if (version != TPM_TIS_STATE_VERSION) {
        return tis_bad(errp, "version %u is not supported (expected %u)", version,
                       TPM_TIS_STATE_VERSION);
    }
    tpm_version = get_u8(c);
    n->active_locty = get_u8(c);
    n->aborting_locty = get_u8(c);
    n->next_locty = get_u8(c);
    n->rw_offset = get_be16(c);
    n->resp_len = get_be16(c);
    n->be_buffer_size = get_be32(c);
    c->p += 2;
    if (tpm_version != s->be_tpm_version || n->be_buffer_size != s->be_buffer_size) {
        return tis_bad(errp,
                       "saved for TPM version %u with a %u-byte buffer, this TPM "
                       "is version %u with %u bytes",
                       tpm_version, n->be_buffer_size, s->be_tpm_version,
                       s->be_buffer_size);
    }
    if (!tpm_tis_locty_field_ok(n->active_locty) ||
        !tpm_tis_locty_field_ok(n->aborting_locty) ||
        !tpm_tis_locty_field_ok(n->next_locty)) {
        return tis_bad(errp, "locality fields %u/%u/%u are out of range", n->active_locty,
                       n->aborting_locty, n->next_locty);
    }
    return true;
}

int tpm_tis_load_state(TPMTISState *s, const uint8_t *buf, size_t len, GError **errp)
{
    g_autofree TPMTISState *n = g_new0(TPMTISState, 1);
    TISLoadCtx c = {buf};
    size_t want;

    if (!buf || len < TPM_TIS_STATE_HDR_LEN) {
        tis_bad(errp, "%zu bytes is too short for the header", len);
        return -1;
    }
    if (!tpm_tis_parse_header(s, n, &c, errp)) {
        return -1;
    }
    want = TPM_TIS_STATE_HDR_LEN + TPM_TIS_NUM_LOCALITIES * TPM_TIS_STATE_LOC_LEN +
           n->be_buffer_size;
    if (len != want) {
        tis_bad(errp, "length %zu, expected %zu", len, want);
        return -1;
    }
    for (int i = 0; i < TPM_TIS_NUM_LOCALITIES; i++) {
        TPMLocality *l = &n->loc[i];
        l->state = get_u8(&c);
        l->access = get_u8(&c);
        l->sts = get_be32(&c);
        l->iface_id = get_be32(&c);
        l->inte = get_be32(&c);
        l->ints = get_be32(&c);
        if (!tpm_tis_check_locality(s, n, i, errp)) {
            return -1;
        }
    }
    if (!tpm_tis_check_offsets(n, errp)) {
        return -1;
    }

    if (s->cmd_in_flight) {
        tpm_backend_finish_sync(s->be);
    }
    /* Everything checked: only now touch the device. */
    s->active_locty = n->active_locty;
    s->aborting_locty = n->aborting_locty;
    s->next_locty = n->next_locty;
    s->rw_offset = n->rw_offset;
    s->resp_len = n->resp_len;
    memcpy(s->loc, n->loc, sizeof(s->loc));
    memset(s->buffer, 0, sizeof(s->buffer));
    memcpy(s->buffer, c.p, s->be_buffer_size);
    tpm_tis_update_irq(s);
    /* A command that had not run yet on the source runs here. */
    if (tpm_tis_valid_locty(s->active_locty) &&
        s->loc[s->active_locty].state == TPM_TIS_STATE_EXECUTION) {
        tpm_tis_tpm_send(s, s->active_locty);
    }
    return 0;
}

/* ---- The tpm-tis frontend class ------------------------------------------- */

static const char *const tpm_tis_driver_choices[] = { TPM_TIS_MODEL, NULL };

/* -device tpm-tis's keys. */
static const QemuOptDesc tpm_tis_opts[] = {
    {
        .name = "driver", .type = QEMU_OPT_STRING, .implied = true,
        .choices = tpm_tis_driver_choices,
    },
    {
        .name = "tpmdev", .type = QEMU_OPT_STRING, .value_name = "ID",
        .required = true, .help = "the -tpmdev behind the device",
    },
    {
        .name = "irq", .type = QEMU_OPT_NUMBER, .min = 0,
        .max = IOAPIC_NUM_PINS - 1, .def_value_str = G_STRINGIFY(TPM_TIS_IRQ),
        .help = "the I/O APIC pin",
    },
    {
        .name = "id", .type = QEMU_OPT_STRING, .value_name = "ID",
        .help = "the device's id",
    },
    QEMU_OPT_DESC_END
};

static void *tpm_tis_frontend_create(TPMBackend *be, GHashTable *props, GError **errp)
{
    uint64_t irq;

    if (!qemu_opt_get_number(props, "irq", TPM_TIS_IRQ, 0, IOAPIC_NUM_PINS - 1, &irq,
                             errp)) {
        return NULL;
    }
    return tpm_tis_create(be, irq, errp);
}

static void tpm_tis_frontend_destroy(void *dev)
{
    tpm_tis_destroy(dev);
}

static void tpm_tis_frontend_reset(void *dev)
{
    tpm_tis_reset(dev);
}

static void tpm_tis_frontend_save_state(void *dev, GByteArray *out)
{
    tpm_tis_save_state(dev, out);
}

static int tpm_tis_frontend_load_state(void *dev, const uint8_t *buf, size_t len,
                                       GError **errp)
{
    return tpm_tis_load_state(dev, buf, len, errp);
}

const TPMFrontendClass tpm_tis_frontend_class = {
    .model = TPM_TIS_MODEL,
    .desc = "TPM TIS interface at 0xfed40000",
    .help = "the TIS device at 0xfed40000",
    .opts = tpm_tis_opts,
    .create = tpm_tis_frontend_create,
    .destroy = tpm_tis_frontend_destroy,
    .reset = tpm_tis_frontend_reset,
    .state_section = "TIS",
    .save_state = tpm_tis_frontend_save_state,
    .load_state = tpm_tis_frontend_load_state,
};
