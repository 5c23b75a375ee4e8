/*
 * NVRAM store: recognising a blank image (or one an interrupted format
 * left) and formatting it (docs/nvram-format.md section 6).
 */
#include "qemu/osdep.h"
#include "crypto/random.h"

#include "nvram-int.h"

#define NVRAM_BLANK_SCAN_CHUNK (1024 * 1024)
/*
 * Proving an image blank reads its whole virtual disk, and a small hostile
 * qcow2 file can claim exabytes of zeros: a headerless disk larger than any
 * TPM state needs is refused rather than scanned for hours.
 */
#define NVRAM_BLANK_SCAN_MAX (64 * 1024 * 1024)

/*
 * Is @p (@len bytes) empty, or what an interrupted write of a structure
 * starting with @magic and @used bytes long could leave? That is: (a prefix
 * of) the magic, then zeros, or the whole magic, anything up to @used, zeros.
 */
static bool is_torn_structure(const uint8_t *p, size_t len, const char *magic,
                              size_t used)
{
    size_t n = 0;

    while (n < NVRAM_MAGIC_LEN && p[n] == (uint8_t)magic[n]) {
        n++;
    }
    if (n < NVRAM_MAGIC_LEN) {
        return nvram_buffer_is_zero(p + n, len - n);
    }
    return nvram_buffer_is_zero(p + used, len - used);
}

/*
 * Blank, or left so by an interrupted format (section 6): at most a header
 * block and slot A as a torn or complete format writes them, and nothing
 * else. Such an image holds no TPM state, so formatting it loses nothing.
 */
static bool first_chunk_holds_no_state(uint8_t *buf, int64_t n)
{
    NvramDirectory d;

    if (n < NVRAM_DATA_OFFSET) {
        return false;   /* the layout needs more than this, so it is not ours */
    }
    for (int i = 0; i < NVRAM_HEADER_COPIES; i++) {
        uint8_t *c = buf + i * NVRAM_HEADER_COPY_STRIDE;
        if (!is_torn_structure(c, NVRAM_HEADER_COPY_STRIDE, NVRAM_HEADER_MAGIC,
                               NVRAM_HEADER_SIZE)) {
            return false;
        }
    }
    /* Either format's slot A: one directory, or two copies (section 4a). */
    for (int i = 0; i < NVRAM_DIR_COPIES; i++) {
        uint8_t *c = buf + NVRAM_SLOT_A_OFFSET + i * NVRAM_DIR_COPY_STRIDE;
        if (!is_torn_structure(c, NVRAM_DIR_COPY_STRIDE, NVRAM_DIR_MAGIC,
                               NVRAM_DIR_SIZE)) {
            return false;
        }
    }
    if (nvram_dir_parse_ordered(buf + NVRAM_SLOT_A_OFFSET, NVRAM_SLOT_SIZE, 0,
                                buf + NVRAM_SLOT_A_OFFSET + NVRAM_DIR_OFF_UUID, &d, NULL,
                                NULL, NULL) &&
        d.n_entries) {
        return false;
    }
    memset(buf, 0, NVRAM_SLOT_A_OFFSET + NVRAM_SLOT_SIZE);
    return true;
}

int nvram_image_holds_no_state(NvramStore *s, bool *none, GError **errp)
{
    int64_t len = bdrv_getlength(s->bs, errp);
    g_autofree uint8_t *buf = NULL;

    if (len < 0) {
        return -1;
    }
    if (len > NVRAM_BLANK_SCAN_MAX) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "'%s' has no qtpm NVRAM header and its virtual disk (%" PRId64
                    " bytes) is larger than a blank TPM image may be (%d MiB); "
                    "refusing to use or format it", s->name, len,
                    NVRAM_BLANK_SCAN_MAX / (1024 * 1024));
        return -1;
    }
    buf = g_malloc(NVRAM_BLANK_SCAN_CHUNK);
    for (int64_t off = 0; off < len; off += NVRAM_BLANK_SCAN_CHUNK) {
        int64_t n = MIN(NVRAM_BLANK_SCAN_CHUNK, len - off);
        if (bdrv_pread(s->bs, off, n, buf, errp) < 0) {
            return -1;
        }
        if (off == 0 && !nvram_buffer_is_zero(buf, MIN(n, NVRAM_DATA_OFFSET)) &&
            !first_chunk_holds_no_state(buf, n)) {
            *none = false;
            return 0;
        }
        if (!nvram_buffer_is_zero(buf, n)) {
            *none = false;
            return 0;
        }
    }
    *none = true;
    return 0;
}

int nvram_format_blank(NvramStore *s, const NvramOpenOptions *opts, GError **errp)
{
    uint8_t block[NVRAM_BLOCK_SIZE];
    NvramDirectory d = { 0 };
    NvramKeys keys = { 0 };
    int tpm_version = opts->tpm_version ? opts->tpm_version : 2;

    if (tpm_version != 1 && tpm_version != 2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': TPM version %d is not 1 (1.2) or 2 (2.0)", s->name,
                    tpm_version);
        return -1;
    }
    memset(&s->hdr, 0, sizeof(s->hdr));
    s->hdr.version = NVRAM_FORMAT_VERSION;
    s->hdr.incompat_flags = NVRAM_INCOMPAT_ORDERED;
    s->hdr.tpm_version = tpm_version;
    if (qcrypto_random_bytes(s->hdr.uuid, NVRAM_UUID_LEN, errp) < 0) {
        return -1;
    }
    s->hdr.uuid[6] = (s->hdr.uuid[6] & 0x0f) | 0x40;
    s->hdr.uuid[8] = (s->hdr.uuid[8] & 0x3f) | 0x80;

    d.slot_index = 0;
    d.generation = 1;
    memcpy(d.uuid, s->hdr.uuid, NVRAM_UUID_LEN);
    if (nvram_key_record_new(s, s->key_kind, opts->kdf_iterations, &d.key, errp) < 0) {
        return -1;
    }
    if (s->key_kind != QCRYPTO_KEY_NONE) {
        if (nvram_keys_derive(s, s->key_kind, s->key_data, s->key_len, &d.key, &keys,
                              errp) < 0) {
            return -1;
        }
        nvram_key_check_value(&keys, s->hdr.uuid, d.key.key_check);
    }

    /* Slot A is durable before the header exists: see section 6. */
    nvram_dir_encode_ordered(&d, keys.valid ? keys.dir_mac : NULL, block);
    if (nvram_ensure_disk_size(s, NVRAM_DATA_OFFSET, errp) < 0 ||
        bdrv_pwrite(s->bs, NVRAM_SLOT_A_OFFSET, NVRAM_SLOT_SIZE, block, errp) < 0 ||
        bdrv_flush(s->bs, errp) < 0) {
        nvram_keys_wipe(&keys);
        return -1;
    }
    nvram_header_encode(&s->hdr, block);
    if (bdrv_pwrite(s->bs, 0, NVRAM_BLOCK_SIZE, block, errp) < 0 ||
        bdrv_flush(s->bs, errp) < 0) {
        nvram_keys_wipe(&keys);
        return -1;
    }
    s->dir = d;
    s->slot = 0;
    nvram_keys_wipe(&s->keys);
    s->keys = keys;
    nvram_keys_wipe(&keys);
    return 0;
}
