/*
 * The libtpms TPM backend: a TPM 2.0 or 1.2 from libtpms whose state blobs
 * live in the NVRAM store (nvram/nvram.c) of a -drive.
 *
 * libtpms is one global instance and not thread-safe: every TPMLIB_* call
 * and every NV callback runs on the backend's worker thread
 * (backends/tpm/tpm_backend.c). Only TPMLIB_CancelCommand is called from the main
 * thread, which is what it exists for. docs/design.md "Backends".
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/event-sink.h"
#include "qemu/log.h"
#include "qemu/option.h"
#include "crypto/secret.h"
#include "nvram/nvram.h"
#include "sysemu/blockdev.h"
#include "sysemu/tpm_options.h"
#include "sysemu/tpm_util.h"
#include "tpm_backend_int.h"

#include <glib-unix.h>
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_memory.h>
#include <libtpms/tpm_nvfilename.h>
#include <libtpms/tpm_tis.h>

#define TPM2_CC_SELF_TEST 0x143
#define TPM_ORD_CONTINUE_SELF_TEST 0x53

typedef struct TPMLibtpmsState {
    TPMBackend *tb;
    TPMVersion version;
    char *nvram_id;
    char *secret_id;
    bool passphrase;
    BlockDriverState *bs;
    NvramStore *store;
    bool formatted;           /* this start formatted a blank image */

    /* Worker thread only. */
    bool running;
    size_t buffersize_wanted;
    uint8_t locality;
    unsigned char *rbuf;      /* libtpms's response buffer, reused */
    uint32_t rbuf_size;
    GError *nv_error;         /* first store error since it was cleared */
    struct {
        uint8_t *data;
        size_t len;
        bool set;
    } incoming[TPM_STATE_BLOB_SAVESTATE + 1];   /* by TPMStateBlobType */

    /* Written by the worker, read by the main thread. */
    gint established;
    gint buffer_size;
} TPMLibtpmsState;

/* libtpms has one instance per process, and so do its callbacks. */
static TPMLibtpmsState *libtpms_state;

static const enum TPMLIB_StateType libtpms_state_type[] = {
    [TPM_STATE_BLOB_PERMANENT] = TPMLIB_STATE_PERMANENT,
    [TPM_STATE_BLOB_VOLATILE] = TPMLIB_STATE_VOLATILE,
    [TPM_STATE_BLOB_SAVESTATE] = TPMLIB_STATE_SAVE_STATE,
};

static TPMStateBlobType libtpms_blob_type(const char *name)
{
    if (!strcmp(name, TPM_PERMANENT_ALL_NAME)) {
        return TPM_STATE_BLOB_PERMANENT;
    }
    if (!strcmp(name, TPM_VOLATILESTATE_NAME)) {
        return TPM_STATE_BLOB_VOLATILE;
    }
    if (!strcmp(name, TPM_SAVESTATE_NAME)) {
        return TPM_STATE_BLOB_SAVESTATE;
    }
    return 0;
}

/*
 * Keeps the first store error. While the TPM runs, each one is logged; during
 * start-up the first becomes start-up's own error, so it is not said twice.
 */
static void libtpms_nv_error(TPMLibtpmsState *s, GError *err)
{
    if (s->running) {
        qemu_log_warning("TPM backend '%s': %s", s->tb->id, err->message);
    }
    if (!s->nv_error) {
        s->nv_error = err;
    } else {
        g_error_free(err);
    }
}

/* 1 when the store holds a blob of @type, 0 when not, -1 on error. */
static int libtpms_store_holds(TPMLibtpmsState *s, TPMStateBlobType type,
                               GError **errp)
{
    NvramInfo info;

    if (nvram_get_info(s->store, &info, errp) < 0) {
        return -1;
    }
    for (unsigned i = 0; i < info.n_blobs && i < TPM_STATE_BLOB_TYPE_MAX; i++) {
        if (info.blobs[i].type == type) {
            return 1;
        }
    }
    return 0;
}

static TPM_RESULT libtpms_nvram_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT libtpms_nvram_loaddata(unsigned char **data,
                                         uint32_t *length,
                                         uint32_t tpm_number,
                                         const char *name)
{
    TPMLibtpmsState *s = libtpms_state;
    TPMStateBlobType type = libtpms_blob_type(name);
    GError *err = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret;

    *data = NULL;
    *length = 0;
    if (!type) {
        qemu_log_warning("libtpms asked for an unknown state blob '%s'", name);
        return TPM_FAIL;
    }
    ret = nvram_load(s->store, type, &buf, &len, &err);
    if (ret < 0) {
        libtpms_nv_error(s, err);
        return TPM_FAIL;
    }
    if (ret == 0) {
        /* TPM_RETRY tells libtpms there is no such state (a new TPM). */
        return TPM_RETRY;
    }
    if (len > UINT32_MAX || TPM_Malloc(data, len) != TPM_SUCCESS) {
        qcrypto_memwipe(buf, len);
        g_free(buf);
        return TPM_FAIL;
    }
    memcpy(*data, buf, len);
    *length = len;
    qcrypto_memwipe(buf, len);
    g_free(buf);
    return TPM_SUCCESS;
}

static TPM_RESULT libtpms_nvram_storedata(const unsigned char *data,
                                          uint32_t length,
                                          uint32_t tpm_number,
                                          const char *name)
{
    TPMLibtpmsState *s = libtpms_state;
    TPMStateBlobType type = libtpms_blob_type(name);
    GError *err = NULL;

    if (!type) {
        qemu_log_warning("libtpms stores an unknown state blob '%s'", name);
        return TPM_FAIL;
    }
    if (nvram_store(s->store, type, data, length, &err) < 0) {
        libtpms_nv_error(s, err);
        return TPM_FAIL;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT libtpms_nvram_deletename(uint32_t tpm_number,
                                           const char *name,
                                           TPM_BOOL must_exist)
{
    TPMLibtpmsState *s = libtpms_state;
    TPMStateBlobType type = libtpms_blob_type(name);
    GError *err = NULL;
    int present;

    if (!type) {
        return must_exist ? TPM_FAIL : TPM_SUCCESS;
    }
    present = libtpms_store_holds(s, type, &err);
    if (present < 0) {
        libtpms_nv_error(s, err);
        return TPM_FAIL;
    }
    if (!present) {
        /* Deleting nothing must not cost a commit. */
        return must_exist ? TPM_FAIL : TPM_SUCCESS;
    }
    if (nvram_delete(s->store, type, &err) < 0) {
        libtpms_nv_error(s, err);
        return TPM_FAIL;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT libtpms_io_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT libtpms_io_getlocality(TPM_MODIFIER_INDICATOR *locality,
                                         uint32_t tpm_number)
{
    *locality = libtpms_state ? libtpms_state->locality : 0;
    return TPM_SUCCESS;
}

static TPM_RESULT libtpms_io_getphysicalpresence(TPM_BOOL *pp,
                                                 uint32_t tpm_number)
{
    *pp = FALSE;
    return TPM_SUCCESS;
}

static struct libtpms_callbacks libtpms_cbs = {
    .sizeOfStruct = sizeof(struct libtpms_callbacks),
    .tpm_nvram_init = libtpms_nvram_init,
    .tpm_nvram_loaddata = libtpms_nvram_loaddata,
    .tpm_nvram_storedata = libtpms_nvram_storedata,
    .tpm_nvram_deletename = libtpms_nvram_deletename,
    .tpm_io_init = libtpms_io_init,
    .tpm_io_getlocality = libtpms_io_getlocality,
    .tpm_io_getphysicalpresence = libtpms_io_getphysicalpresence,
};

/* The key from key-secret= (32 raw bytes) or passphrase-secret=. */
static int libtpms_get_key(TPMLibtpmsState *s, QCryptoKey *key, GError **errp)
{
    QCryptoSecret *secret;
    size_t len;
    const uint8_t *data;

    key->kind = QCRYPTO_KEY_NONE;
    if (!s->secret_id) {
        return 0;
    }
    secret = qcrypto_secret_lookup(s->secret_id);
    if (!secret) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "no -object secret with id '%s'", s->secret_id);
        return -1;
    }
    data = qcrypto_secret_data(secret, &len);
    if (!s->passphrase && len != 32) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s' is %zu bytes; key-secret needs a 32-byte "
                    "key (use passphrase-secret for a passphrase)",
                    s->secret_id, len);
        return -1;
    }
    if (s->passphrase && len == 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "secret '%s' is empty", s->secret_id);
        return -1;
    }
    key->kind = s->passphrase ? QCRYPTO_KEY_PASSPHRASE : QCRYPTO_KEY_RAW;
    key->data = data;
    key->len = len;
    return 0;
}

/* @str as a JSON string, quotes included. */
static char *json_quote(const char *str)
{
    GString *q = g_string_new("\"");

    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if (*p == '"' || *p == '\\') {
            g_string_append_printf(q, "\\%c", *p);
        } else if (*p < 0x20) {
            g_string_append_printf(q, "\\u%04x", *p);
        } else {
            g_string_append_c(q, *p);
        }
    }
    g_string_append_c(q, '"');
    return g_string_free(q, false);
}

/*
 * The same fact for a management tool: TPM_STATE_FALLBACK (docs/qmp.md). It
 * happens before the monitor listens; the first QMP client receives it.
 */
static void libtpms_event_state_fallback(TPMLibtpmsState *s, const NvramInfo *info,
                                         const char *cause)
{
    g_autofree char *id = json_quote(s->tb->id);
    g_autofree char *drive = json_quote(s->nvram_id);
    g_autofree char *why = json_quote(cause);
    g_autofree char *data = NULL;

    data = g_strdup_printf("{\"id\": %s, \"drive\": %s, \"slot\": \"%c\", "
                           "\"generation\": %" PRIu64 ", \"unusable-slot\": \"%c\", "
                           "\"cause\": %s}",
                           id, drive, info->slot ? 'B' : 'A', info->generation,
                           info->slot ? 'A' : 'B', why);
    qemu_event_emit("TPM_STATE_FALLBACK", data);
}

/*
 * The store fell back to an older directory because the newer (or not
 * provably older) slot is unusable: an interrupted commit or damage. The TPM
 * starts from older state, so the user must hear of it, with the store's
 * cause.
 */
static void libtpms_warn_other_slot(TPMLibtpmsState *s, const NvramInfo *info)
{
    g_autofree char *gen = NULL;
    char in_use = info->slot ? 'B' : 'A';
    char other = info->slot ? 'A' : 'B';
    const char *cause = info->other_cause[0]
        ? info->other_cause
        : "it holds no directory newer than the one in use";

    gen = info->other_generation
        ? g_strdup_printf(" (generation %" PRIu64 ")", info->other_generation)
        : g_strdup("");
    qemu_log_warning("-drive id=%s: slot %c%s is not usable (%s); the TPM "
                     "state of generation %" PRIu64 " in slot %c is in use",
                     s->nvram_id, other, gen, cause, info->generation, in_use);
    libtpms_event_state_fallback(s, info, cause);
}

static int libtpms_open_store(TPMLibtpmsState *s, GError **errp)
{
    NvramOpenOptions o = { 0 };
    NvramInfo info;
    BlockDriverState *bs = drive_get_by_id(s->nvram_id);

    if (!bs) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "no -drive with id '%s' (nvram=%s)", s->nvram_id,
                    s->nvram_id);
        return -1;
    }
    if (bdrv_is_read_only(bs) && !s->tb->incoming) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "-drive id=%s is read-only, but the TPM must write its "
                    "state", s->nvram_id);
        return -1;
    }
    if (libtpms_get_key(s, &o.key, errp) < 0) {
        return -1;
    }
    /* A migration target reads the store; the source still owns it. */
    o.owner = !s->tb->incoming;
    o.format_blank = !s->tb->incoming;
    o.tpm_version = s->version == TPM_VERSION_1_2 ? 1 : 2;
    o.lock_timeout_ms = 0;
    s->bs = bs;
    s->store = nvram_open(bs, &o, errp);
    if (!s->store) {
        return -1;
    }
    if (nvram_get_info(s->store, &info, errp) < 0) {
        return -1;
    }
    if (o.owner && info.other_problem) {
        libtpms_warn_other_slot(s, &info);
    }
    s->formatted = o.owner && info.formatted;
    if (s->version == TPM_VERSION_UNSPEC) {
        s->version = info.tpm_version == 1 ? TPM_VERSION_1_2
                                           : TPM_VERSION_2_0;
    } else if ((s->version == TPM_VERSION_1_2) != (info.tpm_version == 1)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' holds TPM %s state, not TPM %s",
                    bdrv_get_filename(bs),
                    info.tpm_version == 1 ? "1.2" : "2.0",
                    s->version == TPM_VERSION_1_2 ? "1.2" : "2.0");
        return -1;
    }
    return 0;
}

/* Forgets a blob given by set_state_blob, wiping its bytes. */
static void libtpms_drop_incoming(TPMLibtpmsState *s, unsigned type)
{
    if (s->incoming[type].data) {
        qcrypto_memwipe(s->incoming[type].data, s->incoming[type].len);
        g_free(s->incoming[type].data);
    }
    s->incoming[type].data = NULL;
    s->incoming[type].len = 0;
    s->incoming[type].set = false;
}

static void libtpms_state_free(TPMLibtpmsState *s)
{
    if (s->store) {
        nvram_close(s->store);
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(s->incoming); i++) {
        libtpms_drop_incoming(s, i);
    }
    if (s->nv_error) {
        g_error_free(s->nv_error);
    }
    TPM_Free(s->rbuf);
    g_free(s->nvram_id);
    g_free(s->secret_id);
    if (libtpms_state == s) {
        libtpms_state = NULL;
    }
    g_free(s);
}

static const QemuOptDesc tpm_libtpms_opts[] = {
    TPM_BACKEND_OPT_TYPE_ID,
    {
        .name = "nvram", .type = QEMU_OPT_STRING, .value_name = "DRIVE_ID",
        .required = true, .missing_hint = "the id of a -drive",
        .help = "the -drive that holds the TPM's state",
    },
    TPM_BACKEND_OPT_VERSION,
    {
        .name = "key-secret", .type = QEMU_OPT_STRING,
        .value_name = "SECRET_ID",
        .help = "a 32-byte -object secret: the store's AES-256 key",
    },
    {
        .name = "passphrase-secret", .type = QEMU_OPT_STRING,
        .value_name = "SECRET_ID",
        .help = "a -object secret holding a passphrase (not with key-secret)",
    },
    QEMU_OPT_DESC_END
};

/*
 * libtpms's own error lines ("Entering failure mode", unmarshalling
 * errors) go to its debug descriptor, or raw to stderr without one. They
 * come through a pipe into qtpm's log instead, with qtpm's prefix and the
 * -tpmdev's name. Both ends are non-blocking: the worker never waits on a
 * full pipe (a line is lost instead), and the main loop reads what is there.
 */
static int libtpms_debug_fds[2] = { -1, -1 };
static guint libtpms_debug_watch;
static GString *libtpms_debug_partial;
static char *libtpms_debug_name;

static void libtpms_debug_drain(void)
{
    char buf[1024];
    ssize_t n;
    char *nl;

    if (libtpms_debug_fds[0] < 0) {
        return;
    }
    while ((n = read(libtpms_debug_fds[0], buf, sizeof(buf))) > 0 ||
           (n < 0 && errno == EINTR)) {
        if (n > 0) {
            g_string_append_len(libtpms_debug_partial, buf, n);
        }
    }
    while ((nl = strchr(libtpms_debug_partial->str, '\n'))) {
        size_t len = nl - libtpms_debug_partial->str;

        if (len) {
            qemu_log_warning("-tpmdev id=%s: %.*s", libtpms_debug_name, (int)len,
                             libtpms_debug_partial->str);
        }
        g_string_erase(libtpms_debug_partial, 0, len + 1);
    }
    /* A line longer than any libtpms writes: say it as it is. */
    if (libtpms_debug_partial->len > 4096) {
        qemu_log_warning("-tpmdev id=%s: %s", libtpms_debug_name,
                         libtpms_debug_partial->str);
        g_string_truncate(libtpms_debug_partial, 0);
    }
}

static gboolean libtpms_debug_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    libtpms_debug_drain();
    return G_SOURCE_CONTINUE;
}

static void libtpms_debug_start(const char *id)
{
    if (libtpms_debug_fds[0] >= 0 ||
        pipe2(libtpms_debug_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        return;     /* without the pipe libtpms writes to stderr as before */
    }
    libtpms_debug_partial = g_string_new(NULL);
    libtpms_debug_name = g_strdup(id);
    TPMLIB_SetDebugFD(libtpms_debug_fds[1]);
    /* Level 0: only the lines libtpms always prints (its errors). */
    TPMLIB_SetDebugLevel(0);
    libtpms_debug_watch = g_unix_fd_add(libtpms_debug_fds[0], G_IO_IN,
                                        libtpms_debug_readable, NULL);
}

static void libtpms_debug_stop(void)
{
    if (libtpms_debug_fds[0] < 0) {
        return;
    }
    libtpms_debug_drain();
    g_source_remove(libtpms_debug_watch);
    libtpms_debug_watch = 0;
    TPMLIB_SetDebugFD(-1);
    close(libtpms_debug_fds[0]);
    close(libtpms_debug_fds[1]);
    libtpms_debug_fds[0] = libtpms_debug_fds[1] = -1;
    g_string_free(libtpms_debug_partial, TRUE);
    libtpms_debug_partial = NULL;
    g_clear_pointer(&libtpms_debug_name, g_free);
}

static int tpm_libtpms_init(TPMBackend *tb, GHashTable *opts, GError **errp)
{
    const char *key_secret = qemu_opt_get(opts, "key-secret");
    const char *pass_secret = qemu_opt_get(opts, "passphrase-secret");
    TPMLibtpmsState *s;

    if (libtpms_state) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "only one libtpms backend per process (libtpms is "
                    "single-instance); '%s' is already one",
                    libtpms_state->tb->id);
        return -1;
    }
    if (key_secret && pass_secret) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "key-secret and passphrase-secret exclude each other");
        return -1;
    }
    s = g_new0(TPMLibtpmsState, 1);
    s->tb = tb;
    s->nvram_id = g_strdup(qemu_opt_get(opts, "nvram"));
    s->secret_id = g_strdup(key_secret ? key_secret : pass_secret);
    s->passphrase = pass_secret != NULL;
    s->buffer_size = 4096;
    /* Unspecified: the store's family decides (libtpms_open_store). */
    s->version = tpm_backend_opt_version(opts, TPM_VERSION_UNSPEC);
    if (libtpms_open_store(s, errp) < 0) {
        libtpms_state_free(s);
        return -1;
    }
    tb->opaque = s;
    libtpms_state = s;
    libtpms_debug_start(tb->id);
    return 0;
}

/*
 * A store that has committed before (generation > 1) or holds other blobs
 * but has no permanent state lost it: starting would silently manufacture a
 * new TPM (new seeds, no keys) over the old one.
 */
static int libtpms_check_store(TPMLibtpmsState *s, GError **errp)
{
    NvramInfo info;
    bool have_permanent = false;

    if (s->incoming[TPM_STATE_BLOB_PERMANENT].set) {
        return 0;
    }
    if (nvram_get_info(s->store, &info, errp) < 0) {
        return -1;
    }
    for (unsigned i = 0; i < info.n_blobs && i < TPM_STATE_BLOB_TYPE_MAX; i++) {
        have_permanent |= info.blobs[i].type == TPM_STATE_BLOB_PERMANENT;
    }
    if (!have_permanent && (info.n_blobs > 0 || info.generation > 1)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "-drive id=%s: the store has held TPM state "
                    "(generation %" PRIu64 ") but has no permanent state; "
                    "refusing to start a new TPM over it",
                    s->nvram_id, info.generation);
        return -1;
    }
    return 0;
}

/* Hands blobs given by set_state_blob to libtpms before MainInit. */
static int libtpms_apply_incoming(TPMLibtpmsState *s, GError **errp)
{
    for (int i = TPM_STATE_BLOB_PERMANENT; i <= TPM_STATE_BLOB_SAVESTATE;
         i++) {
        TPM_RESULT rc;

        if (!s->incoming[i].set) {
            continue;
        }
        rc = TPMLIB_SetState(libtpms_state_type[i], s->incoming[i].data,
                             s->incoming[i].len);
        libtpms_drop_incoming(s, i);
        if (rc != TPM_SUCCESS) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "libtpms refused the %s state blob (TPM_RESULT "
                        "0x%x)", tpm_state_blob_label(i), rc);
            return -1;
        }
    }
    return 0;
}

static void libtpms_update_established(TPMLibtpmsState *s)
{
    TPM_BOOL est = FALSE;

    if (TPM_IO_TpmEstablished_Get(&est) == TPM_SUCCESS) {
        g_atomic_int_set(&s->established, est ? 1 : 0);
    }
}

static void libtpms_terminate(TPMLibtpmsState *s)
{
    if (s->running) {
        TPMLIB_Terminate();
        s->running = false;
    }
}

/* libtpms has read the volatile state at MainInit; it must not be read twice. */
static int libtpms_delete_volatile(TPMLibtpmsState *s, GError **errp)
{
    int present = libtpms_store_holds(s, TPM_STATE_BLOB_VOLATILE, errp);

    if (present <= 0) {
        return present;
    }
    return nvram_delete(s->store, TPM_STATE_BLOB_VOLATILE, errp);
}

static int tpm_libtpms_startup_tpm(TPMBackend *tb, size_t buffersize,
                                   unsigned flags, GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;
    uint32_t min = 0, max = 0, actual;
    TPM_RESULT rc;

    if (s->running && buffersize == s->buffersize_wanted) {
        return 0;
    }
    if (tb->incoming) {
        /* The TPM starts when the migration stream has arrived. */
        libtpms_terminate(s);
        return 0;
    }
    libtpms_terminate(s);
    if (libtpms_check_store(s, errp) < 0) {
        return -1;
    }
    rc = TPMLIB_ChooseTPMVersion(s->version == TPM_VERSION_1_2
                                     ? TPMLIB_TPM_VERSION_1_2
                                     : TPMLIB_TPM_VERSION_2);
    if (rc == TPM_SUCCESS) {
        rc = TPMLIB_RegisterCallbacks(&libtpms_cbs);
    }
    if (rc != TPM_SUCCESS) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "libtpms does not support TPM %s (TPM_RESULT 0x%x)",
                    s->version == TPM_VERSION_1_2 ? "1.2" : "2.0", rc);
        return -1;
    }
    actual = TPMLIB_SetBufferSize(buffersize, &min, &max);
    if (libtpms_apply_incoming(s, errp) < 0) {
        return -1;
    }
    g_clear_error(&s->nv_error);
    rc = TPMLIB_MainInit();
    if (rc == TPM_SUCCESS && s->nv_error) {
        /*
         * libtpms may go on after a failed store (e.g. of a newly
         * manufactured TPM's state), but a TPM whose state is not durable
         * must not start.
         */
        rc = TPM_FAIL;
    }
    if (rc != TPM_SUCCESS) {
        if (s->nv_error) {
            g_propagate_error(errp, g_steal_pointer(&s->nv_error));
        } else {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "-drive id=%s: libtpms could not start the TPM from "
                        "its state (TPM_RESULT 0x%x)", s->nvram_id, rc);
        }
        TPMLIB_Terminate();
        return -1;
    }
    if (s->formatted) {
        /* A new TPM where there was none is news, never a silent event. */
        error_report("-drive id=%s: '%s' was blank: formatted a new NVRAM store, "
                     "and the TPM starts new in it", s->nvram_id,
                     bdrv_get_filename(s->bs));
        s->formatted = false;
    }
    s->running = true;
    s->buffersize_wanted = buffersize;
    g_atomic_int_set(&s->buffer_size, actual);
    libtpms_update_established(s);
    if (flags & TPM_BACKEND_INIT_DELETE_VOLATILE) {
        return libtpms_delete_volatile(s, errp);
    }
    return 0;
}

static bool libtpms_selftest_done(const TPMBackendCmd *cmd, TPMVersion v)
{
    uint32_t ord = tpm_util_get_code_from_buffer(cmd->in, cmd->in_len);
    uint32_t rc = tpm_util_get_code_from_buffer(cmd->out, cmd->out_len);

    if (rc != 0) {
        return false;
    }
    return v == TPM_VERSION_1_2 ? ord == TPM_ORD_CONTINUE_SELF_TEST
                                : ord == TPM2_CC_SELF_TEST;
}

static void tpm_libtpms_handle_request(TPMBackend *tb, TPMBackendCmd *cmd)
{
    TPMLibtpmsState *s = tb->opaque;
    uint32_t rlen = 0;
    TPM_RESULT rc;

    cmd->selftest_done = false;
    if (!s->running || cmd->in_len < TPM_HEADER_SIZE) {
        tpm_util_write_fatal_error_response(cmd->out, cmd->out_len,
                                            s->version);
        return;
    }
    s->locality = cmd->locality;
    rc = TPMLIB_Process(&s->rbuf, &rlen, &s->rbuf_size,
                        (unsigned char *)cmd->in, cmd->in_len);
    if (rc != TPM_SUCCESS || rlen < TPM_HEADER_SIZE || rlen > cmd->out_len) {
        qemu_log_warning("TPM backend '%s': libtpms failed a command "
                         "(TPM_RESULT 0x%x, %u response bytes)", tb->id, rc,
                         rlen);
        tpm_util_write_fatal_error_response(cmd->out, cmd->out_len,
                                            s->version);
        return;
    }
    memcpy(cmd->out, s->rbuf, rlen);
    cmd->selftest_done = libtpms_selftest_done(cmd, s->version);
    libtpms_update_established(s);
}

static void tpm_libtpms_cancel_cmd(TPMBackend *tb)
{
    TPMLIB_CancelCommand();
}

static void tpm_libtpms_stop(TPMBackend *tb)
{
    libtpms_terminate(tb->opaque);
}

static void tpm_libtpms_finalize(TPMBackend *tb)
{
    libtpms_debug_stop();
    libtpms_state_free(tb->opaque);
    tb->opaque = NULL;
}

static TPMVersion tpm_libtpms_get_tpm_version(TPMBackend *tb)
{
    return ((TPMLibtpmsState *)tb->opaque)->version;
}

static size_t tpm_libtpms_get_buffer_size(TPMBackend *tb)
{
    return g_atomic_int_get(&((TPMLibtpmsState *)tb->opaque)->buffer_size);
}

static bool tpm_libtpms_get_established(TPMBackend *tb)
{
    return g_atomic_int_get(&((TPMLibtpmsState *)tb->opaque)->established);
}

static int tpm_libtpms_reset_established(TPMBackend *tb, uint8_t locality)
{
    TPMLibtpmsState *s = tb->opaque;
    TPM_RESULT rc;

    if (!s->running) {
        return -1;
    }
    s->locality = locality;
    rc = TPM_IO_TpmEstablished_Reset();
    libtpms_update_established(s);
    return rc == TPM_SUCCESS ? 0 : -1;
}

static int tpm_libtpms_get_state_blob(TPMBackend *tb, TPMStateBlobType type,
                                      uint8_t **data, size_t *len,
                                      GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;
    unsigned char *buf = NULL;
    uint32_t blen = 0;
    TPM_RESULT rc;

    if (type < TPM_STATE_BLOB_PERMANENT || type > TPM_STATE_BLOB_SAVESTATE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "unknown TPM state blob type %d", type);
        return -1;
    }
    if (!s->running) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "TPM backend '%s' is not running", tb->id);
        return -1;
    }
    rc = TPMLIB_GetState(libtpms_state_type[type], &buf, &blen);
    if (rc == TPM_RETRY || (rc == TPM_SUCCESS && blen == 0)) {
        TPM_Free(buf);
        return 0;
    }
    if (rc != TPM_SUCCESS) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "libtpms could not produce its %s state (TPM_RESULT "
                    "0x%x)", tpm_state_blob_label(type), rc);
        return -1;
    }
    *data = g_memdup2(buf, blen);
    *len = blen;
    qcrypto_memwipe(buf, blen);
    TPM_Free(buf);
    return 1;
}

static int tpm_libtpms_set_state_blob(TPMBackend *tb, TPMStateBlobType type,
                                      const uint8_t *data, size_t len,
                                      GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;

    if (type < TPM_STATE_BLOB_PERMANENT || type > TPM_STATE_BLOB_SAVESTATE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "unknown TPM state blob type %d", type);
        return -1;
    }
    if (s->running) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "TPM backend '%s' is running; reset it before setting "
                    "state", tb->id);
        return -1;
    }
    libtpms_drop_incoming(s, type);
    s->incoming[type].data = len ? g_memdup2(data, len) : NULL;
    s->incoming[type].len = len;
    s->incoming[type].set = true;
    return 0;
}

static int tpm_libtpms_store_volatile(TPMBackend *tb, GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;
    g_autofree uint8_t *blob = NULL;
    size_t len = 0;
    int ret;

    ret = tpm_libtpms_get_state_blob(tb, TPM_STATE_BLOB_VOLATILE, &blob, &len,
                                     errp);
    if (ret <= 0) {
        return ret;
    }
    ret = nvram_store(s->store, TPM_STATE_BLOB_VOLATILE, blob, len, errp);
    qcrypto_memwipe(blob, len);
    return ret;
}

/* libtpms's _TPM_Hash_* interface, which a dynamic launch drives. */
static int tpm_libtpms_hash_start(TPMBackend *tb)
{
    TPMLibtpmsState *s = tb->opaque;

    if (!s->running) {
        return -1;
    }
    return TPM_IO_Hash_Start();
}

static int tpm_libtpms_hash_data(TPMBackend *tb, const uint8_t *data,
                                 size_t len)
{
    TPMLibtpmsState *s = tb->opaque;

    if (!s->running) {
        return -1;
    }
    return TPM_IO_Hash_Data(data, len);
}

static int tpm_libtpms_hash_end(TPMBackend *tb)
{
    TPMLibtpmsState *s = tb->opaque;
    TPM_RESULT rc;

    if (!s->running) {
        return -1;
    }
    rc = TPM_IO_Hash_End();
    /* A dynamic launch sets the established bit. */
    libtpms_update_established(s);
    return rc;
}

static int tpm_libtpms_get_info(TPMBackend *tb, uint64_t flags, char **json,
                                GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;
    char *info;

    /* Stopped, libtpms may still have another version chosen. */
    if (!s->running &&
        TPMLIB_ChooseTPMVersion(s->version == TPM_VERSION_1_2
                                    ? TPMLIB_TPM_VERSION_1_2
                                    : TPMLIB_TPM_VERSION_2) != TPM_SUCCESS) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "libtpms cannot select the TPM's version");
        return -1;
    }
    info = TPMLIB_GetInfo(flags);
    if (!info) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "libtpms has no description of the TPM");
        return -1;
    }
    *json = g_strdup(info);
    free(info);
    return 0;
}

static int tpm_libtpms_lock_storage(TPMBackend *tb, int timeout_ms,
                                    GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;

    if (nvram_acquire_owner(s->store, timeout_ms, errp) < 0) {
        g_prefix_error(errp, "taking the owner lock of '%s': ",
                       bdrv_get_filename(s->bs));
        return -1;
    }
    if (bdrv_activate(s->bs, errp) < 0) {
        nvram_release_owner(s->store);
        return -1;
    }
    return 0;
}

/* The image goes inactive first (flushed), then the owner lock goes. */
static int tpm_libtpms_unlock_storage(TPMBackend *tb, GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;

    if (bdrv_inactivate(s->bs, errp) < 0) {
        return -1;
    }
    nvram_release_owner(s->store);
    return 0;
}

static int tpm_libtpms_get_storage_info(TPMBackend *tb, TPMStorageInfo *out,
                                        GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;
    NvramInfo info;

    if (nvram_get_info(s->store, &info, errp) < 0) {
        return -1;
    }
    memcpy(out->uuid, nvram_get_uuid(s->store), sizeof(out->uuid));
    out->generation = info.generation;
    out->name = bdrv_get_filename(s->bs);
    return 0;
}

static int tpm_libtpms_check_storage(TPMBackend *tb, GError **errp)
{
    return nvram_check(((TPMLibtpmsState *)tb->opaque)->store, errp);
}

static int tpm_libtpms_stored_blob_equal(TPMBackend *tb, TPMStateBlobType type,
                                         const uint8_t *data, size_t len,
                                         GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;
    uint8_t *stored = NULL;
    size_t stored_len = 0;
    int ret;

    ret = nvram_load(s->store, type, &stored, &stored_len, errp);
    if (ret <= 0) {
        return ret;
    }
    ret = stored_len == len && memcmp(stored, data, len) == 0;
    qcrypto_free_wiped(&stored, stored_len);
    return ret;
}

/* Blobs given without data are deleted, and cost nothing when absent. */
static int tpm_libtpms_store_state_blobs(TPMBackend *tb,
                                         const TPMStateBlobUpdate *blobs,
                                         size_t n, GError **errp)
{
    TPMLibtpmsState *s = tb->opaque;
    g_autofree NvramBlobUpdate *u = g_new0(NvramBlobUpdate, n);
    size_t count = 0;

    for (size_t i = 0; i < n; i++) {
        TPMStateBlobType type = blobs[i].type;

        if (!blobs[i].data) {
            int present = libtpms_store_holds(s, type, errp);

            if (present < 0) {
                return -1;
            }
            if (!present) {
                continue;
            }
        }
        u[count].type = type;
        u[count].data = blobs[i].data;
        u[count].len = blobs[i].data ? blobs[i].len : 0;
        count++;
    }
    return nvram_commit(s->store, u, count, errp);
}

static int tpm_libtpms_get_state_key(TPMBackend *tb, QCryptoKey *key,
                                     GError **errp)
{
    return libtpms_get_key(tb->opaque, key, errp);
}

static void tpm_libtpms_query(TPMBackend *tb, GHashTable *out)
{
    TPMLibtpmsState *s = tb->opaque;

    g_hash_table_insert(out, g_strdup("nvram"), g_strdup(s->nvram_id));
    g_hash_table_insert(out, g_strdup("version"),
                        g_strdup(s->version == TPM_VERSION_1_2 ? "1.2"
                                                               : "2.0"));
    if (s->secret_id) {
        g_hash_table_insert(out, g_strdup(s->passphrase ? "passphrase-secret"
                                                        : "key-secret"),
                            g_strdup(s->secret_id));
    }
}

const TPMBackendClass tpm_libtpms_class = {
    .type = "libtpms",
    .desc = "a libtpms TPM whose state lives in a -drive",
    .opts = tpm_libtpms_opts,
    .init = tpm_libtpms_init,
    .startup_tpm = tpm_libtpms_startup_tpm,
    .handle_request = tpm_libtpms_handle_request,
    .cancel_cmd = tpm_libtpms_cancel_cmd,
    .stop = tpm_libtpms_stop,
    .shutdown = tpm_libtpms_stop,
    .finalize = tpm_libtpms_finalize,
    .get_tpm_version = tpm_libtpms_get_tpm_version,
    .get_buffer_size = tpm_libtpms_get_buffer_size,
    .get_tpm_established_flag = tpm_libtpms_get_established,
    .reset_tpm_established_flag = tpm_libtpms_reset_established,
    .get_state_blob = tpm_libtpms_get_state_blob,
    .set_state_blob = tpm_libtpms_set_state_blob,
    .store_volatile = tpm_libtpms_store_volatile,
    .hash_start = tpm_libtpms_hash_start,
    .hash_data = tpm_libtpms_hash_data,
    .hash_end = tpm_libtpms_hash_end,
    .get_info = tpm_libtpms_get_info,
    .lock_storage = tpm_libtpms_lock_storage,
    .unlock_storage = tpm_libtpms_unlock_storage,
    .get_storage_info = tpm_libtpms_get_storage_info,
    .check_storage = tpm_libtpms_check_storage,
    .stored_blob_equal = tpm_libtpms_stored_blob_equal,
    .store_state_blobs = tpm_libtpms_store_state_blobs,
    .get_state_key = tpm_libtpms_get_state_key,
    .query = tpm_libtpms_query,
};
