/*
 * Live migration of the TPM (docs/migration.md): the source and target state
 * machines, their QMP commands, and the shared-storage hand-off.
 *
 * The TPM is reached only through interfaces: the backend's state and
 * storage operations (sysemu/tpm_backend.h) and the device state that each
 * frontend saves into its own stream section (sysemu/tpm_frontend.h).
 *
 * Threads: the main loop owns every device, the TPM backend and the run
 * state. One migration thread per direction does only blocking
 * channel I/O and the pure stream codec, and reports back to the main loop
 * with idle callbacks (MigMsg).
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"

#include <json-glib/json-glib.h>
#include <sys/socket.h>

#include "migration/channel.h"
#include "migration/migration.h"
#include "migration/stream.h"
#include "monitor/qmp.h"
#include "qemu/event-sink.h"
#include "sysemu/runstate.h"
#include "sysemu/tpm_backend.h"
#include "sysemu/tpm_frontend.h"

/* docs/migration.md §4: bounded waits of each side. */
#define MIG_REPLY_TIMEOUT_MS 60000
#define MIG_OWNER_LOCK_TIMEOUT_MS 10000
#define MIG_STREAM_TIMEOUT_MS 60000
#define MIG_REPLY_MAGIC "QMRP"
#define MIG_REPLY_MAX 1024

typedef struct MigrationState {
    MigrationStatus status;
    char *error_desc;
    gint64 start_us;
    gint64 stop_us;
    gint64 total_ms;
    gint64 downtime_ms;
    bool have_total;
    bool have_downtime;

    /* Source */
    MigUri uri;
    MigStorageMode storage;
    int fd;
    bool was_running;
    bool switched_over;
    bool cancel_requested;
    GByteArray *stream;
    GThread *thread;
    TPMBackend *tb;
} MigrationState;

typedef enum MigMsgKind {
    MIG_MSG_SWITCHOVER, /* source: END is on the wire */
    MIG_MSG_DONE,       /* source: the target runs */
    MIG_MSG_FAILED,
    MIG_MSG_ACTIVE, /* target: a source connected */
    MIG_MSG_STREAM, /* target: the whole stream verified */
} MigMsgKind;

typedef struct MigMsg {
    MigMsgKind kind;
    GError *err;
    MigStreamContents *contents;
} MigMsg;

typedef struct MigIncoming {
    bool pending; /* -incoming given, not finished */
    bool started; /* listening / reading */
    MigUri uri;
    int lfd;
    bool listening;
    int fd;
    GThread *thread;
    TPMBackend *tb;
    bool owner_taken;
} MigIncoming;

/* The key that seals the stream, in the stream codec's type. */
static QCryptoKey mig_stream_key;
static MigrationState mig = {.fd = -1};
static MigIncoming incoming = {.lfd = -1, .fd = -1};

const char *migration_status_name(MigrationStatus s)
{
    static const char *const names[] = {
        [MIGRATION_STATUS_NONE] = "none",     [MIGRATION_STATUS_SETUP] = "setup",
        [MIGRATION_STATUS_ACTIVE] = "active", [MIGRATION_STATUS_COMPLETED] = "completed",
        [MIGRATION_STATUS_FAILED] = "failed", [MIGRATION_STATUS_CANCELLED] = "cancelled",
    };
    return s < ARRAY_SIZE(names) ? names[s] : "unknown";
}

/*
 * @tb's state must live in storage that can be handed over, and the stream
 * is sealed with the backend's own key: the secret that opens its store.
 */
static bool mig_resolve_state(TPMBackend *tb, GError **errp)
{
    memset(&mig_stream_key, 0, sizeof(mig_stream_key));
    if (!tpm_backend_has_storage(tb)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                    "migration: TPM backend '%s' keeps no state in an NVRAM "
                    "store and cannot migrate",
                    tpm_backend_get_id(tb));
        return false;
    }
    if (tpm_backend_get_state_key(tb, &mig_stream_key, errp) < 0) {
        g_prefix_error(errp, "migration: ");
        return false;
    }
    return true;
}

static const QCryptoKey *mig_key(void)
{
    return mig_stream_key.kind == QCRYPTO_KEY_NONE ? NULL : &mig_stream_key;
}

/* The stream section that carries @fe's device state. */
static bool mig_frontend_section(TPMFrontend *fe, MigSectionType *type, GError **errp)
{
    const char *name = tpm_frontend_get_class(fe)->state_section;

    for (uint32_t t = 1; t <= MIG_SECTION_DATA_MAX; t++) {
        if (name && !strcmp(mig_section_type_name(t), name)) {
            *type = t;
            return true;
        }
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                "migration: the stream has no section for the %s device",
                tpm_frontend_get_class(fe)->model);
    return false;
}

static void mig_set_status(MigrationStatus s)
{
    g_autofree char *data = NULL;

    mig.status = s;
    data = g_strdup_printf("{\"status\": \"%s\"}", migration_status_name(s));
    qemu_event_emit("MIGRATION", data);
}

static void mig_post(MigMsgKind kind, GError *err, MigStreamContents *c, GSourceFunc fn)
{
    MigMsg *msg = g_new0(MigMsg, 1);

    msg->kind = kind;
    msg->err = err;
    msg->contents = c;
    g_idle_add(fn, msg);
}

static void mig_msg_free(MigMsg *msg)
{
    if (msg->err) {
        g_error_free(msg->err);
    }
    mig_stream_contents_free(msg->contents);
    g_free(msg);
}

/*
 * The TPM behind the machine's frontend devices. The stream carries one
 * TPM's state, so every device must share one backend.
 */
static bool mig_find_tpm(TPMBackend **tb, GError **errp)
{
    GList *frontends = tpm_frontend_list();

    *tb = frontends ? tpm_frontend_get_backend(frontends->data) : NULL;
    if (!*tb) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: the machine has no TPM device");
        return false;
    }
    for (GList *l = frontends->next; l; l = l->next) {
        if (tpm_frontend_get_backend(l->data) != *tb) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_UNSUPPORTED,
                        "migration: the %s device uses a second TPM backend; "
                        "a stream carries the state of one",
                        tpm_frontend_get_class(l->data)->model);
            return false;
        }
    }
    return mig_resolve_state(*tb, errp);
}

/* ---- return path (docs/migration.md §2) ---- */

static void mig_send_reply(int fd, bool ok, const char *reason)
{
    size_t len = reason ? MIN(strlen(reason), MIG_REPLY_MAX) : 0;
    g_autofree uint8_t *buf = g_malloc(12 + len);

    memcpy(buf, MIG_REPLY_MAGIC, 4);
    stl_be_p(buf + 4, ok ? 0 : 1);
    stl_be_p(buf + 8, len);
    if (len) {
        memcpy(buf + 12, reason, len);
    }
    /* The source may be gone; the target's decision does not depend on it. */
    mig_write_full(fd, buf, 12 + len, NULL);
}

/* 0: the target runs; -1 with @errp: it failed, or no valid answer came. */
static int mig_read_reply(int fd, GError **errp)
{
    uint8_t hdr[12];
    char reason[MIG_REPLY_MAX + 1];
    uint32_t status, len;
    ssize_t n;

    n = mig_read_full(fd, hdr, sizeof(hdr), MIG_REPLY_TIMEOUT_MS, errp);
    if (n == 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "the target closed the connection without taking over");
        return -1;
    }
    if (n < 0) {
        g_prefix_error(errp, "waiting for the target: ");
        return -1;
    }
    status = ldl_be_p(hdr + 4);
    len = ldl_be_p(hdr + 8);
    if (memcmp(hdr, MIG_REPLY_MAGIC, 4) != 0 || status > 1 || len > MIG_REPLY_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "the target sent a malformed reply");
        return -1;
    }
    if (status == 0) {
        return 0;
    }
    if (len &&
        mig_read_full(fd, reason, len, MIG_REPLY_TIMEOUT_MS, NULL) != (ssize_t)len) {
        len = 0;
    }
    reason[len] = '\0';
    for (uint32_t i = 0; i < len; i++) {
        if (!g_ascii_isprint(reason[i])) {
            reason[i] = '?';
        }
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED, "the target failed: %s",
                len ? reason : "no reason given");
    return -1;
}

/* ---- source ---- */

static void mig_source_cleanup(void)
{
    if (mig.thread) {
        g_thread_join(mig.thread);
        mig.thread = NULL;
    }
    if (mig.fd >= 0) {
        close(mig.fd);
        mig.fd = -1;
    }
    if (mig.stream) {
        qcrypto_memwipe(mig.stream->data, mig.stream->len);
        g_byte_array_unref(mig.stream);
        mig.stream = NULL;
    }
    mig_uri_clear(&mig.uri);
}

static void mig_finish_times(void)
{
    gint64 now = g_get_monotonic_time();

    mig.total_ms = (now - mig.start_us) / 1000;
    mig.have_total = true;
    if (mig.stop_us) {
        mig.downtime_ms = (now - mig.stop_us) / 1000;
        mig.have_downtime = true;
    }
}

static void mig_source_failed_early(GError *err)
{
    g_free(mig.error_desc);
    mig.error_desc = g_strdup(err->message);
    mig_finish_times();
    mig_source_cleanup();
    mig_set_status(MIGRATION_STATUS_FAILED);
}

/*
 * Fail-back (docs/migration.md §4): take the image back if it was handed
 * over, then let the TPM and the machine run again.
 */
static void mig_source_fail_back(const GError *cause)
{
    g_autoptr(GError) err = NULL;
    bool cancelled = mig.cancel_requested && !mig.switched_over;

    g_free(mig.error_desc);
    mig.error_desc = NULL;
    if (mig.switched_over) {
        /* Lock first: a failing target inactivates before it unlocks. */
        if (tpm_backend_lock_storage(mig.tb, MIG_OWNER_LOCK_TIMEOUT_MS, &err) < 0) {
            mig.error_desc = g_strdup_printf(
                "%s; the source could not take its image back (%s) and stays "
                "stopped",
                cause->message, err->message);
            mig_finish_times();
            mig_source_cleanup();
            mig_set_status(MIGRATION_STATUS_FAILED);
            return;
        }
        mig.switched_over = false;
    }
    tpm_backend_resume(mig.tb);
    runstate_set(RUN_STATE_PAUSED);
    if (mig.was_running) {
        vm_start(NULL);
    }
    mig.error_desc = g_strdup(cancelled ? "migration cancelled" : cause->message);
    mig_finish_times();
    mig_source_cleanup();
    mig_set_status(cancelled ? MIGRATION_STATUS_CANCELLED : MIGRATION_STATUS_FAILED);
}

static void mig_source_complete(void)
{
    mig_finish_times();
    mig_source_cleanup();
    runstate_set(RUN_STATE_POSTMIGRATE);
    mig_set_status(MIGRATION_STATUS_COMPLETED);
}

/* S6: the image goes inactive first, then the owner lock is released. */
static int mig_source_switchover(GError **errp)
{
    if (tpm_backend_unlock_storage(mig.tb, errp) < 0) {
        return -1;
    }
    mig.switched_over = true;
    return 0;
}

static gboolean mig_source_event(gpointer opaque)
{
    MigMsg *msg = opaque;
    g_autoptr(GError) err = NULL;

    switch (msg->kind) {
    case MIG_MSG_SWITCHOVER:
        if (mig.cancel_requested) {
            break;
        }
        if (mig_source_switchover(&err) < 0) {
            /* The thread is waiting for a reply; make it fail. */
            g_prefix_error(&err, "switchover: ");
            g_free(mig.error_desc);
            mig.error_desc = g_strdup(err->message);
            shutdown(mig.fd, SHUT_RDWR);
        }
        break;
    case MIG_MSG_DONE:
        mig_source_complete();
        break;
    case MIG_MSG_FAILED:
    default:
        if (mig.error_desc) {
            /* The switchover's own failure is the real cause. */
            g_autoptr(GError) first =
                g_error_new_literal(QTPM_ERROR, QTPM_ERROR_FAILED, mig.error_desc);
            mig_source_fail_back(first);
        } else {
            mig_source_fail_back(msg->err);
        }
        break;
    }
    mig_msg_free(msg);
    return G_SOURCE_REMOVE;
}

static gpointer mig_source_thread(gpointer opaque)
{
    GError *err = NULL;

    if (mig_write_full(mig.fd, mig.stream->data, mig.stream->len, &err) < 0) {
        g_prefix_error(&err, "sending the TPM state: ");
        mig_post(MIG_MSG_FAILED, err, NULL, mig_source_event);
        return NULL;
    }
    mig_post(MIG_MSG_SWITCHOVER, NULL, NULL, mig_source_event);
    if (!mig_uri_has_return_path(&mig.uri)) {
        mig_post(MIG_MSG_DONE, NULL, NULL, mig_source_event);
        return NULL;
    }
    if (mig_read_reply(mig.fd, &err) < 0) {
        mig_post(MIG_MSG_FAILED, err, NULL, mig_source_event);
    } else {
        mig_post(MIG_MSG_DONE, NULL, NULL, mig_source_event);
    }
    return NULL;
}

/* The device state of every frontend, each in its own section. */
static int mig_source_encode_devices(MigStreamEncoder *e, GError **errp)
{
    for (GList *l = tpm_frontend_list(); l; l = l->next) {
        g_autoptr(GByteArray) state = g_byte_array_new();
        MigSectionType type;
        int ret;

        if (!mig_frontend_section(l->data, &type, errp)) {
            return -1;
        }
        tpm_frontend_save_state(l->data, state);
        ret = mig_stream_encode_section(e, type, state->data, state->len, mig.stream,
                                        errp);
        /* The device's buffer may hold a TPM response. */
        qcrypto_memwipe(state->data, state->len);
        if (ret < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * The stream is built by appending; a GByteArray that grew by realloc
 * would leave copies of unsealed TPM state behind in freed memory. Room
 * for the largest stream is reserved up front (pages never written are
 * never touched).
 */
static GByteArray *mig_stream_buffer_new(void)
{
    size_t n = MIG_HEADER_SIZE;

    for (uint32_t t = 1; t <= MIG_SECTION_DATA_MAX + 1; t++) {
        uint32_t type = t <= MIG_SECTION_DATA_MAX ? t : MIG_SECTION_END;

        n += MIG_SECTION_HEADER_SIZE + MIG_SEAL_OVERHEAD + mig_section_max_len(type) +
             MIG_SECTION_CRC_SIZE;
    }
    return g_byte_array_sized_new(n);
}

/* S3: the complete stream, built while the TPM is paused. */
static int mig_source_build_stream(TPMBackend *tb, GError **errp)
{
    MigStreamHeader h = {0};
    TPMStorageInfo info;
    MigStreamEncoder *e = NULL;
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc, ret = -1;

    if (tpm_backend_get_storage_info(tb, &info, errp) < 0) {
        return -1;
    }
    h.storage = mig.storage;
    h.tpm_version = tpm_backend_get_tpm_version(tb) == TPM_VERSION_1_2 ? 1 : 2;
    memcpy(h.image_uuid, info.uuid, sizeof(h.image_uuid));
    h.generation = info.generation;
    h.flags = mig.was_running ? MIG_FLAG_SOURCE_RUNNING : 0;
    e = mig_stream_encoder_new(&h, mig_key(), errp);
    if (!e) {
        return -1;
    }
    mig.stream = mig_stream_buffer_new();
    mig_stream_encode_header(e, mig.stream);

    if (mig_source_encode_devices(e, errp) < 0) {
        goto out;
    }
    rc = tpm_backend_get_state_blob(tb, TPM_STATE_BLOB_VOLATILE, &blob, &len, errp);
    if (rc < 0 || mig_stream_encode_section(e, MIG_SECTION_TPM_VOLATILE, blob,
                                            rc ? len : 0, mig.stream, errp) < 0) {
        goto out;
    }
    qcrypto_free_wiped(&blob, len);
    if (mig.storage != MIG_STORAGE_SHARED) {
        rc = tpm_backend_get_state_blob(tb, TPM_STATE_BLOB_PERMANENT, &blob, &len, errp);
        if (rc == 0) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                        "migration: the TPM has no permanent state");
        }
        if (rc <= 0 || mig_stream_encode_section(e, MIG_SECTION_TPM_PERMANENT, blob, len,
                                                 mig.stream, errp) < 0) {
            goto out;
        }
        qcrypto_free_wiped(&blob, len);
        rc = tpm_backend_get_state_blob(tb, TPM_STATE_BLOB_SAVESTATE, &blob, &len, errp);
        if (rc < 0 ||
            (rc == 1 && mig_stream_encode_section(e, MIG_SECTION_TPM_SAVESTATE, blob, len,
                                                  mig.stream, errp) < 0)) {
            goto out;
        }
    }
    ret = mig_stream_encode_end(e, mig.stream, errp);
out:
    qcrypto_free_wiped(&blob, len);
    mig_stream_encoder_free(e);
    return ret;
}

static int mig_source_start(const char *uri, MigStorageMode storage, GError **errp)
{
    TPMBackend *tb;
    g_autoptr(GError) err = NULL;

    if (mig.status == MIGRATION_STATUS_SETUP || mig.status == MIGRATION_STATUS_ACTIVE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "There's a migration process in progress");
        return -1;
    }
    if (incoming.pending) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "Guest is waiting for an incoming migration");
        return -1;
    }
    if (runstate_get() == RUN_STATE_POSTMIGRATE) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "the TPM state has been migrated away already");
        return -1;
    }
    if (!mig_find_tpm(&tb, errp)) {
        return -1;
    }
    mig_uri_clear(&mig.uri);
    if (!mig_uri_parse(uri, &mig.uri, errp)) {
        return -1;
    }
    if (mig.uri.kind == MIG_URI_DEFER) {
        mig_uri_clear(&mig.uri);
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migration: 'defer' is only valid for -incoming");
        return -1;
    }

    /* S1 */
    g_clear_pointer(&mig.error_desc, g_free);
    mig.have_total = mig.have_downtime = false;
    mig.stop_us = 0;
    mig.switched_over = mig.cancel_requested = false;
    mig.storage = storage;
    mig.tb = tb;
    mig.start_us = g_get_monotonic_time();
    mig_set_status(MIGRATION_STATUS_SETUP);
    mig.fd = mig_channel_connect(&mig.uri, &err);
    if (mig.fd < 0) {
        mig_source_failed_early(err);
        return 0;
    }

    /* S2 */
    mig_set_status(MIGRATION_STATUS_ACTIVE);
    mig.was_running = runstate_is_running();
    vm_stop();
    runstate_set(RUN_STATE_FINISH_MIGRATE);
    mig.stop_us = g_get_monotonic_time();
    tpm_backend_pause(tb);

    /* S3, S4 (every NV write of the TPM is already a flushed commit) */
    if (mig_source_build_stream(tb, &err) < 0) {
        mig_source_fail_back(err);
        return 0;
    }
    /* S5..S7 on the migration thread */
    mig.thread = g_thread_new("migration-out", mig_source_thread, NULL);
    return 0;
}

/* ---- target ---- */

static void G_GNUC_NORETURN mig_incoming_fail(const GError *err)
{
    if (incoming.owner_taken) {
        /* The source fails back: hand the image back the way it came. */
        tpm_backend_unlock_storage(incoming.tb, NULL);
        incoming.owner_taken = false;
    }
    mig_set_status(MIGRATION_STATUS_FAILED);
    if (incoming.fd >= 0 && mig_uri_has_return_path(&incoming.uri)) {
        mig_send_reply(incoming.fd, false, err->message);
    }
    error_report("-incoming: %s", err->message);
    exit(1);
}

static bool mig_incoming_check_mode(const MigStreamHeader *h, bool *shared,
                                    TPMBackend *tb, GError **errp)
{
    TPMStorageInfo info;
    bool same;
    int version = tpm_backend_get_tpm_version(tb) == TPM_VERSION_1_2 ? 1 : 2;

    if (tpm_backend_get_storage_info(tb, &info, errp) < 0) {
        return false;
    }
    same = memcmp(info.uuid, h->image_uuid, sizeof(info.uuid)) == 0;
    if (h->tpm_version != (uint32_t)version) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "the source runs a TPM %s, this target a TPM %s",
                    h->tpm_version == 1 ? "1.2" : "2.0", version == 1 ? "1.2" : "2.0");
        return false;
    }
    if (h->storage == MIG_STORAGE_SHARED && !same) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is not the source's image (UUIDs differ), but the "
                    "source migrates with shared storage",
                    info.name);
        return false;
    }
    *shared = same && h->storage != MIG_STORAGE_NON_SHARED;
    return true;
}

/* T4: take the image. */
static int mig_incoming_take_image(const MigStreamContents *c, bool shared,
                                   TPMBackend *tb, GError **errp)
{
    if (tpm_backend_lock_storage(tb, MIG_OWNER_LOCK_TIMEOUT_MS, errp) < 0) {
        return -1;
    }
    incoming.owner_taken = true;
    if (shared) {
        TPMStorageInfo info;

        if (tpm_backend_get_storage_info(tb, &info, errp) < 0) {
            return -1;
        }
        if (info.generation != c->header.generation) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' is at generation %" PRIu64 " but the source "
                        "stopped at %" PRIu64 " (a copy of the image, not "
                        "the same one? use storage non-shared)",
                        info.name, info.generation, c->header.generation);
            return -1;
        }
        return 0;
    } else {
        /* The stored state becomes the source's: no savestate if it had none. */
        GBytes *perm = c->section[MIG_SECTION_TPM_PERMANENT];
        GBytes *save = c->section[MIG_SECTION_TPM_SAVESTATE];
        TPMStateBlobUpdate u[2];
        gsize plen, slen = 0;

        u[0].type = TPM_STATE_BLOB_PERMANENT;
        u[0].data = g_bytes_get_data(perm, &plen);
        u[0].len = plen;
        u[1].type = TPM_STATE_BLOB_SAVESTATE;
        u[1].data = save ? g_bytes_get_data(save, &slen) : NULL;
        u[1].len = slen;
        return tpm_backend_store_state_blobs(tb, u, 2, errp);
    }
}

/* T5: give the TPM its volatile state, start it, load the devices. */
static int mig_incoming_load_devices(const MigStreamContents *c, TPMBackend *tb,
                                     GError **errp)
{
    GBytes *vol = c->section[MIG_SECTION_TPM_VOLATILE];
    size_t bufsize = tpm_backend_get_buffer_size(tb);
    const uint8_t *p;
    gsize len;

    tpm_backend_reset(tb);
    tpm_backend_incoming_done(tb);
    p = g_bytes_get_data(vol, &len);
    if (len > 0 &&
        tpm_backend_set_state_blob(tb, TPM_STATE_BLOB_VOLATILE, p, len, errp) < 0) {
        return -1;
    }
    if (tpm_backend_startup_tpm(tb, bufsize, errp) < 0) {
        return -1;
    }
    for (GList *l = tpm_frontend_list(); l; l = l->next) {
        MigSectionType type;
        GBytes *state;

        if (!mig_frontend_section(l->data, &type, errp)) {
            return -1;
        }
        state = c->section[type];
        p = state ? g_bytes_get_data(state, &len) : NULL;
        if (tpm_frontend_load_state(l->data, p, state ? len : 0, errp) < 0) {
            return -1;
        }
    }
    return 0;
}

static void mig_incoming_complete(const MigStreamContents *c)
{
    TPMBackend *tb = incoming.tb;

    /* T6: the reply goes first; a vanished source does not stop us. */
    if (incoming.fd >= 0) {
        if (mig_uri_has_return_path(&incoming.uri)) {
            mig_send_reply(incoming.fd, true, NULL);
        }
        close(incoming.fd);
        incoming.fd = -1;
    }
    incoming.pending = false;
    incoming.owner_taken = false;
    mig_finish_times();
    mig_set_status(MIGRATION_STATUS_COMPLETED);
    tpm_backend_resume(tb);
    runstate_set(RUN_STATE_PAUSED);
    if (c->header.flags & MIG_FLAG_SOURCE_RUNNING) {
        vm_start(NULL);
    }
}

static gboolean mig_incoming_event(gpointer opaque)
{
    MigMsg *msg = opaque;
    g_autoptr(GError) err = NULL;
    TPMBackend *tb;
    bool shared;

    if (incoming.thread) {
        if (msg->kind == MIG_MSG_ACTIVE) {
            mig_set_status(MIGRATION_STATUS_ACTIVE);
            mig_msg_free(msg);
            return G_SOURCE_REMOVE;
        }
        g_thread_join(incoming.thread);
        incoming.thread = NULL;
    }
    if (msg->kind == MIG_MSG_FAILED) {
        mig_incoming_fail(msg->err);
    }
    mig.stop_us = g_get_monotonic_time();
    if (!mig_find_tpm(&tb, &err) ||
        !mig_incoming_check_mode(&msg->contents->header, &shared, tb, &err) ||
        mig_incoming_take_image(msg->contents, shared, tb, &err) < 0 ||
        mig_incoming_load_devices(msg->contents, tb, &err) < 0) {
        mig_incoming_fail(err);
    }
    mig_incoming_complete(msg->contents);
    mig_msg_free(msg);
    return G_SOURCE_REMOVE;
}

/*
 * Makes *@buf hold at least @need bytes. An unsealed stream's sections are
 * TPM state, so a buffer too small is wiped and replaced, never realloc'd
 * (which would leave its bytes in freed memory). The old contents are not
 * kept: every read fills the buffer from its start.
 */
static void mig_incoming_buffer_reserve(uint8_t **buf, size_t *size, size_t need)
{
    if (need <= *size) {
        return;
    }
    qcrypto_free_wiped(buf, *size);
    *buf = g_malloc(need);
    *size = need;
}

/* T1..T3: accept, then read and verify the whole stream. */
static gpointer mig_incoming_thread(gpointer opaque)
{
    MigStreamDecoder *d = NULL;
    GError *err = NULL;
    uint8_t *buf = NULL;
    size_t buf_size = 0;

    if (incoming.listening) {
        incoming.fd = mig_channel_accept(incoming.lfd, &err);
        incoming.lfd = -1;
        if (incoming.fd < 0) {
            goto fail;
        }
    } else {
        incoming.fd = incoming.lfd;
        incoming.lfd = -1;
    }
    mig_post(MIG_MSG_ACTIVE, NULL, NULL, mig_incoming_event);
    d = mig_stream_decoder_new(mig_key());
    while (!mig_stream_decoder_done(d)) {
        size_t need = mig_stream_decoder_need(d);
        ssize_t n;

        mig_incoming_buffer_reserve(&buf, &buf_size, need);
        /* A source that stops sending is as good as gone. */
        n = mig_read_full(incoming.fd, buf, need, MIG_STREAM_TIMEOUT_MS, &err);
        if (n == 0) {
            g_set_error(&err, QTPM_ERROR, QTPM_ERROR_IO,
                        "the migration stream ended before its end marker");
        }
        if (n <= 0 || mig_stream_decoder_push(d, buf, need, &err) < 0) {
            goto fail;
        }
    }
    qcrypto_free_wiped(&buf, buf_size);
    mig_post(MIG_MSG_STREAM, NULL, mig_stream_decoder_steal(d), mig_incoming_event);
    mig_stream_decoder_free(d);
    return NULL;
fail:
    qcrypto_free_wiped(&buf, buf_size);
    mig_stream_decoder_free(d);
    mig_post(MIG_MSG_FAILED, err, NULL, mig_incoming_event);
    return NULL;
}

static int mig_incoming_start(GError **errp)
{
    incoming.lfd = mig_channel_listen(&incoming.uri, &incoming.listening, errp);
    if (incoming.lfd < 0) {
        return -1;
    }
    incoming.started = true;
    mig.start_us = g_get_monotonic_time();
    mig_set_status(MIGRATION_STATUS_SETUP);
    incoming.thread = g_thread_new("migration-in", mig_incoming_thread, NULL);
    return 0;
}

int migration_incoming_prepare(const char *uri, GError **errp)
{
    MigUri u;

    if (!mig_uri_parse(uri, &u, errp)) {
        return -1;
    }
    mig_uri_clear(&incoming.uri);
    incoming.uri = u;
    incoming.pending = true;
    runstate_set(RUN_STATE_INMIGRATE);
    return 0;
}

bool migration_incoming_pending(void)
{
    return incoming.pending;
}

int migration_incoming_setup(const char *uri, GError **errp)
{
    TPMBackend *tb;

    if (!incoming.pending && migration_incoming_prepare(uri, errp) < 0) {
        return -1;
    }
    if (!mig_find_tpm(&tb, errp)) {
        return -1;
    }
    incoming.tb = tb;
    /*
     * T0: the store was opened as a reader with our key; now every blob,
     * the permanent state included, must verify under it (docs/migration.md
     * §3) before anyone can connect.
     */
    if (tpm_backend_check_storage(tb, errp) < 0) {
        return -1;
    }
    /* Commands wait for the migrated state. */
    tpm_backend_pause(tb);
    if (incoming.uri.kind == MIG_URI_DEFER) {
        return 0;
    }
    return mig_incoming_start(errp);
}

/* ---- QMP ---- */

static JsonObject *mig_parse_args(const char *args_json, GError **errp)
{
    g_autoptr(JsonParser) p = json_parser_new();
    JsonNode *root;

    if (!json_parser_load_from_data(p, args_json ? args_json : "{}", -1, errp)) {
        return NULL;
    }
    root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID, "arguments must be an object");
        return NULL;
    }
    return json_object_ref(json_node_get_object(root));
}

static const char *mig_arg_string(JsonObject *o, const char *name, bool required,
                                  GError **errp)
{
    JsonNode *n = json_object_get_member(o, name);

    if (!n) {
        if (required) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID, "Parameter '%s' is missing",
                        name);
        }
        return NULL;
    }
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "Parameter '%s' expects a string", name);
        return NULL;
    }
    return json_node_get_string(n);
}

static bool mig_args_only(JsonObject *o, const char *const *allowed, GError **errp)
{
    g_autoptr(GList) members = json_object_get_members(o);

    for (GList *l = members; l; l = l->next) {
        if (!g_strv_contains(allowed, l->data)) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "Parameter '%s' is unexpected", (char *)l->data);
            return false;
        }
    }
    return true;
}

static char *qmp_migrate(const char *args_json, GError **errp)
{
    static const char *const allowed[] = {
        "uri", "storage", "detach", "blk", "inc", NULL,
    };
    g_autoptr(JsonObject) o = mig_parse_args(args_json, errp);
    const char *uri, *storage;
    MigStorageMode mode = MIG_STORAGE_AUTO;
    GError *err = NULL;

    if (!o || !mig_args_only(o, allowed, errp)) {
        return NULL;
    }
    uri = mig_arg_string(o, "uri", true, &err);
    storage = err ? NULL : mig_arg_string(o, "storage", false, &err);
    if (err) {
        g_propagate_error(errp, err);
        return NULL;
    }
    if (storage && !mig_storage_mode_parse(storage, &mode)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "Parameter 'storage' must be auto, shared or non-shared");
        return NULL;
    }
    if (mig_source_start(uri, mode, errp) < 0) {
        return NULL;
    }
    return g_strdup("{}");
}

static char *qmp_migrate_cancel(const char *args_json, GError **errp)
{
    if (!qmp_args_check_none(args_json, errp)) {
        return NULL;
    }
    if ((mig.status == MIGRATION_STATUS_SETUP || mig.status == MIGRATION_STATUS_ACTIVE) &&
        mig.thread && !mig.switched_over) {
        mig.cancel_requested = true;
        shutdown(mig.fd, SHUT_RDWR);
    }
    return g_strdup("{}");
}

static char *qmp_query_migrate(const char *args_json, GError **errp)
{
    g_autoptr(JsonBuilder) b = NULL;
    g_autoptr(JsonGenerator) gen = NULL;
    g_autoptr(JsonNode) root = NULL;

    if (!qmp_args_check_none(args_json, errp)) {
        return NULL;
    }
    if (mig.status == MIGRATION_STATUS_NONE) {
        return g_strdup("{}");
    }
    b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "status");
    json_builder_add_string_value(b, migration_status_name(mig.status));
    json_builder_set_member_name(b, "total-time");
    json_builder_add_int_value(b, mig.have_total
                                      ? mig.total_ms
                                      : (g_get_monotonic_time() - mig.start_us) / 1000);
    if (mig.have_downtime) {
        json_builder_set_member_name(b, "downtime");
        json_builder_add_int_value(b, mig.downtime_ms);
    }
    if (mig.status == MIGRATION_STATUS_FAILED && mig.error_desc) {
        json_builder_set_member_name(b, "error-desc");
        json_builder_add_string_value(b, mig.error_desc);
    }
    json_builder_end_object(b);
    gen = json_generator_new();
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    return json_generator_to_data(gen, NULL);
}

static char *qmp_migrate_incoming(const char *args_json, GError **errp)
{
    static const char *const allowed[] = {"uri", NULL};
    g_autoptr(JsonObject) o = mig_parse_args(args_json, errp);
    const char *uri;
    MigUri u;

    if (!o || !mig_args_only(o, allowed, errp) ||
        !(uri = mig_arg_string(o, "uri", true, errp))) {
        return NULL;
    }
    if (!incoming.pending || incoming.uri.kind != MIG_URI_DEFER || incoming.started) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED,
                    "The incoming migration has already been started or "
                    "qtpm was not started with -incoming defer");
        return NULL;
    }
    if (!mig_uri_parse(uri, &u, errp)) {
        return NULL;
    }
    if (u.kind == MIG_URI_DEFER) {
        mig_uri_clear(&u);
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "migrate-incoming needs a URI, not 'defer'");
        return NULL;
    }
    mig_uri_clear(&incoming.uri);
    incoming.uri = u;
    if (mig_incoming_start(errp) < 0) {
        return NULL;
    }
    return g_strdup("{}");
}

void migration_init(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    qmp_register_command("migrate", qmp_migrate);
    qmp_register_command("migrate_cancel", qmp_migrate_cancel);
    qmp_register_command("query-migrate", qmp_query_migrate);
    qmp_register_command("migrate-incoming", qmp_migrate_incoming);
}
