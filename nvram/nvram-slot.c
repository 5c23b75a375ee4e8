/*
 * NVRAM store: a consistent read of both directory slots and the choice of
 * the one in use (docs/nvram-format.md section 4, "Open: choosing a slot").
 * The caller holds the access lock.
 */
#include "qemu/osdep.h"
#include "qemu/crc32.h"
#include "crypto/secret.h"

#include "nvram-int.h"

void nvram_selection_clear(NvramSelection *sel)
{
    for (int i = 0; i < NVRAM_DIR_MAX_ENTRIES; i++) {
        if (sel->plain[i]) {
            qcrypto_memwipe(sel->plain[i], sel->plain_len[i]);
            g_free(sel->plain[i]);
        }
    }
    nvram_keys_wipe(&sel->keys);
    memset(sel, 0, sizeof(*sel));
}

int nvram_read_stored_blob(NvramStore *s, const NvramDirEntry *e, uint8_t **buf,
                           GError **errp)
{
    int64_t disk_len = bdrv_getlength(s->bs, errp);
    uint8_t *p;

    if (disk_len < 0) {
        return -1;
    }
    if (e->offset + e->length > (uint64_t)disk_len) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "blob %s at 0x%" PRIx64 " (%" PRIu32 " bytes) extends past the "
                    "end of the disk", tpm_state_blob_label(e->type), e->offset,
                    e->length);
        return -1;
    }
    p = g_malloc(e->length);
    s->page_cache_stale = true;
    if (bdrv_pread(s->bs, e->offset, e->length, p, errp) < 0) {
        g_free(p);
        return -1;
    }
    *buf = p;
    return 0;
}

bool nvram_blob_crc_ok(const NvramDirEntry *e, const uint8_t *stored, GError **errp)
{
    uint32_t crc = qemu_crc32(stored, e->length);

    if (crc != e->crc32) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "blob %s (generation %" PRIu64 ") CRC mismatch (directory "
                    "0x%08" PRIx32 ", data 0x%08" PRIx32 ")",
                    tpm_state_blob_label(e->type), e->generation, e->crc32, crc);
        return false;
    }
    return true;
}

const NvramDirEntry *nvram_dir_find(const NvramDirectory *d, TPMStateBlobType type,
                                    unsigned *index)
{
    for (unsigned i = 0; i < d->n_entries; i++) {
        if (d->entries[i].type == (uint32_t)type) {
            if (index) {
                *index = i;
            }
            return &d->entries[i];
        }
    }
    return NULL;
}

/* Reads and CRC-checks every blob of @d; @stored[i] are g_malloc'ed. */
static bool read_dir_blobs(NvramStore *s, const NvramDirectory *d, uint8_t **stored,
                           GError **errp)
{
    for (unsigned i = 0; i < d->n_entries; i++) {
        if (nvram_read_stored_blob(s, &d->entries[i], &stored[i], errp) < 0) {
            return false;
        }
        if (!nvram_blob_crc_ok(&d->entries[i], stored[i], errp)) {
            return false;
        }
    }
    return true;
}

static void free_blobs(uint8_t **bufs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        g_free(bufs[i]);
        bufs[i] = NULL;
    }
}

/* An older slot tried after the newest was rejected: same checks, but not final. */
static bool older_key_ok(NvramStore *s, const NvramDirectory *d, NvramKeys *keys,
                         GError **errp)
{
    GError *local_err = NULL;

    if (nvram_keys_check(s, d, keys, &local_err) < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT, "%s", local_err->message);
        g_error_free(local_err);
        return false;
    }
    return true;
}

/* MAC and tags of a candidate whose key checked out. */
static bool verify_sealed(NvramStore *s, const uint8_t *raw, const NvramDirectory *d,
                          const NvramKeys *keys, uint8_t **stored, NvramSelection *sel,
                          GError **errp)
{
    if (d->key.cipher == NVRAM_CIPHER_NONE) {
        for (unsigned i = 0; i < d->n_entries; i++) {
            sel->plain[i] = g_memdup2(stored[i], d->entries[i].length);
            sel->plain_len[i] = d->entries[i].length;
        }
        return true;
    }
    if (!keys->valid) {
        return true;    /* allow_no_key: CRCs only */
    }
    if (!nvram_dir_mac_ok(raw, NVRAM_DIR_SIZE, keys->dir_mac)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "directory fails authentication (MAC mismatch)");
        return false;
    }
    for (unsigned i = 0; i < d->n_entries; i++) {
        if (!nvram_blob_open(s, d, keys, &d->entries[i], stored[i], &sel->plain[i],
                             errp)) {
            return false;
        }
        sel->plain_len[i] = d->entries[i].length;
    }
    return true;
}

/* What reading one directory slot found. */
typedef struct SlotScan {
    uint8_t raw[NVRAM_SLOT_SIZE];
    NvramDirectory dir;
    bool zero;              /* never written */
    bool parsed;            /* CRC and structure verify: a candidate */
    bool copy_ok[NVRAM_DIR_COPIES];    /* `ordered`: which copies verify */
    unsigned used_copy;     /* `ordered`: the copy dir came from */
    GError *reason;         /* why it is not usable */
} SlotScan;

/* The bytes of the directory a scan parsed (the copy it used). */
static const uint8_t *scan_dir_bytes(const SlotScan *sc)
{
    return sc->raw + sc->used_copy * NVRAM_DIR_COPY_STRIDE;
}

static int scan_slots(NvramStore *s, SlotScan *slots, GError **errp)
{
    for (int i = 0; i < 2; i++) {
        SlotScan *sc = &slots[i];
        GError *local_err = NULL;

        if (bdrv_pread(s->bs, nvram_slot_offset(i), NVRAM_SLOT_SIZE, sc->raw,
                       &local_err) < 0) {
            g_propagate_prefixed_error(errp, local_err,
                                       "'%s': cannot read directory slot %c: ",
                                       s->name, nvram_slot_name(i));
            return -1;
        }
        sc->zero = nvram_buffer_is_zero(sc->raw, NVRAM_SLOT_SIZE);
        if (sc->zero) {
            g_set_error(&sc->reason, QTPM_ERROR, QTPM_ERROR_CORRUPT, "empty slot");
        } else if (nvram_is_ordered(s)) {
            sc->parsed = nvram_dir_parse_ordered(sc->raw, NVRAM_SLOT_SIZE, i,
                                                 s->hdr.uuid, &sc->dir, sc->copy_ok,
                                                 &sc->used_copy, &sc->reason);
        } else {
            sc->parsed = nvram_dir_parse(sc->raw, NVRAM_SLOT_SIZE, i, s->hdr.uuid,
                                         &sc->dir, &sc->reason);
        }
    }
    return 0;
}

static void wipe_plain(NvramSelection *sel)
{
    for (int j = 0; j < NVRAM_DIR_MAX_ENTRIES; j++) {
        if (sel->plain[j]) {
            qcrypto_memwipe(sel->plain[j], sel->plain_len[j]);
            g_clear_pointer(&sel->plain[j], g_free);
        }
    }
}

/*
 * Tries candidate @sc. Returns 1 when it is valid (sel filled), 0 when it is
 * not (sc->reason set), -1 when the key is refused (@errp set: final).
 * @key_decided: whether an earlier candidate already had the key checked.
 */
static int try_candidate(NvramStore *s, SlotScan *sc, bool *key_decided,
                         NvramSelection *sel, GError **errp)
{
    uint8_t *stored[NVRAM_DIR_MAX_ENTRIES] = { NULL };
    NvramKeys keys = { 0 };
    bool ok = read_dir_blobs(s, &sc->dir, stored, &sc->reason);

    if (ok && !*key_decided) {
        *key_decided = true;
        if (nvram_keys_check(s, &sc->dir, &keys, errp) < 0) {
            free_blobs(stored, sc->dir.n_entries);
            return -1;
        }
    } else if (ok) {
        ok = older_key_ok(s, &sc->dir, &keys, &sc->reason);
    }
    ok = ok && verify_sealed(s, scan_dir_bytes(sc), &sc->dir, &keys, stored, sel,
                             &sc->reason);
    free_blobs(stored, sc->dir.n_entries);
    if (!ok) {
        wipe_plain(sel);
        nvram_keys_wipe(&keys);
        return 0;
    }
    sel->keys = keys;
    nvram_keys_wipe(&keys);
    return 1;
}

/* For nvram_check: the slot not in use should be empty or an older directory. */
static void describe_other_slot(NvramStore *s, const SlotScan *slots, int chosen,
                                NvramSelection *sel)
{
    const SlotScan *other = &slots[!chosen];
    bool both_copies = !nvram_is_ordered(s) ||
                       (other->copy_ok[0] && other->copy_ok[1]);

    if (nvram_is_ordered(s)) {
        sel->in_use_copy_damaged = !slots[chosen].copy_ok[0] ||
                                   !slots[chosen].copy_ok[1];
    }
    /* An older, valid directory whose blobs were reused is normal. */
    if (other->zero ||
        (other->parsed && both_copies &&
         other->dir.generation < slots[chosen].dir.generation)) {
        return;
    }
    if (other->parsed && !both_copies &&
        other->dir.generation < slots[chosen].dir.generation) {
        /* What a torn write of the slot leaves (section 4a). */
        sel->other_problem = true;
        sel->other_generation = other->dir.generation;
        g_strlcpy(sel->other_cause, "one directory copy does not verify",
                  sizeof(sel->other_cause));
        return;
    }
    sel->other_problem = true;
    sel->other_generation = other->parsed ? other->dir.generation : 0;
    g_strlcpy(sel->other_cause, other->reason ? other->reason->message : "?",
              sizeof(sel->other_cause));
}

/*
 * The newest slot was rejected for damage and the key did not open the
 * older one. When the key is the newest slot's, the key is right and the
 * state is damaged: say so instead of "wrong key".
 */
static void explain_older_key_refused(NvramStore *s, const SlotScan *newer, int newer_idx,
                                      const SlotScan *older, int older_idx, GError **errp)
{
    NvramKeys keys = { 0 };
    bool newer_key = nvram_keys_check(s, &newer->dir, &keys, NULL) == 0 &&
                     newer->dir.key.cipher != NVRAM_CIPHER_NONE;

    nvram_keys_wipe(&keys);
    if (!newer_key || !errp || !*errp) {
        return;
    }
    g_clear_error(errp);
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                "'%s': no usable NVRAM directory (slot %c, generation %" PRIu64
                ", under this key: %s; slot %c, generation %" PRIu64
                ", is under an earlier key)", s->name, nvram_slot_name(newer_idx),
                newer->dir.generation,
                newer->reason ? newer->reason->message : "damaged",
                nvram_slot_name(older_idx), older->dir.generation);
}

/*
 * A consistent read of the directory slots (docs/nvram-format.md section 4,
 * "Open: choosing a slot"). The caller holds the access lock.
 */
int nvram_select(NvramStore *s, NvramSelection *sel, GError **errp)
{
    SlotScan slots[2] = { 0 };
    int order[2] = { 0, 1 };
    bool key_decided = false;
    int chosen = -1;
    int damaged = -1;       /* the newest candidate, when it does not verify */
    int ret = -1;

    memset(sel, 0, sizeof(*sel));
    if (scan_slots(s, slots, errp) < 0) {
        goto out;
    }
    if (slots[0].parsed && slots[1].parsed &&
        slots[1].dir.generation > slots[0].dir.generation) {
        order[0] = 1;
        order[1] = 0;
    }
    for (int k = 0; k < 2 && chosen < 0; k++) {
        SlotScan *sc = &slots[order[k]];
        const SlotScan *newer = &slots[order[0]];
        int r;

        if (!sc->parsed) {
            continue;
        }
        if (k == 1 && newer->parsed &&
            nvram_dir_find(&newer->dir, TPM_STATE_BLOB_PERMANENT, NULL) &&
            !nvram_dir_find(&sc->dir, TPM_STATE_BLOB_PERMANENT, NULL)) {
            /* See commit_write(): that newer permanent blob was durable. */
            g_set_error(&sc->reason, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "holds no permanent blob, and the newer slot's permanent "
                        "blob is damaged: refusing to start from an empty state");
            continue;
        }
        r = try_candidate(s, sc, &key_decided, sel, errp);
        if (r < 0) {
            if (k == 1 && newer->parsed) {
                explain_older_key_refused(s, newer, order[0], sc, order[1], errp);
            }
            nvram_selection_clear(sel);
            goto out;
        }
        if (r > 0) {
            chosen = order[k];
        } else if (damaged < 0) {
            damaged = order[k];
        }
    }
    if (chosen < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                    "'%s': no usable NVRAM directory (slot A: %s; slot B: %s)", s->name,
                    slots[0].reason ? slots[0].reason->message : "not tried",
                    slots[1].reason ? slots[1].reason->message : "not tried");
        goto out;
    }
    if (damaged >= 0 && nvram_is_ordered(s) &&
        slots[damaged].dir.generation > slots[chosen].dir.generation) {
        /* Readable, so its blobs were durable before it: damage (section 4a). */
        if (!s->accept_rollback) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_CORRUPT,
                        "'%s': NVRAM generation %" PRIu64 " (slot %c) is damaged "
                        "(%s); generation %" PRIu64 " (slot %c) is intact: "
                        "'qtpm-img check --repair --accept-rollback %s' goes back "
                        "to it, losing generation %" PRIu64, s->name,
                        slots[damaged].dir.generation, nvram_slot_name(damaged),
                        slots[damaged].reason->message, slots[chosen].dir.generation,
                        nvram_slot_name(chosen), s->name,
                        slots[damaged].dir.generation);
            nvram_selection_clear(sel);
            goto out;
        }
        sel->rolled_back_from = slots[damaged].dir.generation;
    }
    sel->dir = slots[chosen].dir;
    sel->slot = chosen;
    describe_other_slot(s, slots, chosen, sel);
    ret = 0;
out:
    g_clear_error(&slots[0].reason);
    g_clear_error(&slots[1].reason);
    return ret;
}

void nvram_adopt_selection(NvramStore *s, NvramSelection *sel)
{
    s->dir = sel->dir;
    s->slot = sel->slot;
    if (sel->keys.valid) {
        nvram_keys_wipe(&s->keys);
        s->keys = sel->keys;
    }
    s->other_problem = sel->other_problem;
    s->other_generation = sel->other_generation;
    g_strlcpy(s->other_cause, sel->other_cause, sizeof(s->other_cause));
    if (sel->rolled_back_from) {
        s->rolled_back_from = sel->rolled_back_from;
    }
}
