/*
 * swtpm protocol codec (export/swtpm/swtpm-codec.c): every control command,
 * short, long and garbage bodies, unknown codes, answers byte for byte, and
 * data-channel framing; sealed state blobs (swtpm-blob-seal.c) opened,
 * refused under another key and refused when damaged in any byte. Runs in
 * the sanitizer build.
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "crypto/key.h"
#include "export/swtpm-blob-seal.h"
#include "export/swtpm-codec.h"

/* A request: code, then @body_len bytes of @body. */
static uint8_t *make_req(uint32_t cmd, const uint8_t *body, size_t body_len,
                         size_t *len)
{
    uint8_t *buf = g_malloc(SWTPM_CTRL_CODE_SIZE + body_len);

    stl_be_p(buf, cmd);
    if (body_len) {
        memcpy(buf + SWTPM_CTRL_CODE_SIZE, body, body_len);
    }
    *len = SWTPM_CTRL_CODE_SIZE + body_len;
    return buf;
}

/* The body QEMU 7.2 (or a careful client) sends for each command. */
typedef struct ValidReq {
    uint32_t cmd;
    uint8_t body[32];
    size_t len;
    bool exact;         /* one byte more is refused */
} ValidReq;

static const ValidReq VALID[] = {
    { SWTPM_CMD_GET_CAPABILITY, {0}, 0, false },
    { SWTPM_CMD_INIT, {0, 0, 0, 1}, 4, true },
    { SWTPM_CMD_SHUTDOWN, {0}, 0, true },
    { SWTPM_CMD_GET_TPMESTABLISHED, {0}, 0, true },
    { SWTPM_CMD_SET_LOCALITY, {3, 0, 0, 0}, 4, false },
    { SWTPM_CMD_HASH_START, {0}, 0, true },
    { SWTPM_CMD_HASH_DATA, {0, 0, 0, 3, 'a', 'b', 'c'}, 7, true },
    { SWTPM_CMD_HASH_END, {0}, 0, true },
    { SWTPM_CMD_CANCEL_TPM_CMD, {0}, 0, true },
    { SWTPM_CMD_STORE_VOLATILE, {0}, 0, true },
    { SWTPM_CMD_RESET_TPMESTABLISHED, {2, 0, 0, 0}, 4, false },
    { SWTPM_CMD_GET_STATEBLOB, {0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 5}, 12, false },
    { SWTPM_CMD_SET_STATEBLOB,
      {0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4, 9, 8, 7, 6}, 16, true },
    { SWTPM_CMD_STOP, {0}, 0, true },
    { SWTPM_CMD_GET_CONFIG, {0}, 0, true },
    { SWTPM_CMD_SET_DATAFD, {0}, 0, false },
    { SWTPM_CMD_SET_BUFFERSIZE, {0, 0, 0x10, 0}, 4, false },
    { SWTPM_CMD_GET_INFO, {0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0}, 16,
      false },
    { SWTPM_CMD_LOCK_STORAGE, {0, 0, 0, 100}, 4, false },
};

static void check_fields(const ValidReq *v, const SwtpmCtrlRequest *r,
                         const uint8_t *buf)
{
    switch (v->cmd) {
    case SWTPM_CMD_INIT:
        g_assert_cmphex(r->u.init_flags, ==, SWTPM_INIT_FLAG_DELETE_VOLATILE);
        break;
    case SWTPM_CMD_SET_LOCALITY:
        g_assert_cmpuint(r->u.locality, ==, 3);
        break;
    case SWTPM_CMD_RESET_TPMESTABLISHED:
        g_assert_cmpuint(r->u.locality, ==, 2);
        break;
    case SWTPM_CMD_HASH_DATA:
        g_assert_cmpuint(r->u.hash_data.length, ==, 3);
        g_assert_true(r->u.hash_data.data == buf + 8);
        break;
    case SWTPM_CMD_GET_STATEBLOB:
        g_assert_cmpuint(r->u.get_state.flags, ==, SWTPM_STATE_FLAG_DECRYPTED);
        g_assert_cmpuint(r->u.get_state.type, ==, SWTPM_BLOB_TYPE_SAVESTATE);
        g_assert_cmpuint(r->u.get_state.offset, ==, 5);
        break;
    case SWTPM_CMD_SET_STATEBLOB:
        g_assert_cmpuint(r->u.set_state.flags, ==, SWTPM_STATE_FLAG_ENCRYPTED);
        g_assert_cmpuint(r->u.set_state.type, ==, SWTPM_BLOB_TYPE_PERMANENT);
        g_assert_cmpuint(r->u.set_state.length, ==, 4);
        g_assert_cmpmem(r->u.set_state.data, 4, "\x09\x08\x07\x06", 4);
        break;
    case SWTPM_CMD_SET_BUFFERSIZE:
        g_assert_cmpuint(r->u.buffersize, ==, 4096);
        break;
    case SWTPM_CMD_GET_INFO:
        g_assert_cmpuint(r->u.get_info.flags, ==, 7);
        g_assert_cmpuint(r->u.get_info.offset, ==, 1);
        break;
    case SWTPM_CMD_LOCK_STORAGE:
        g_assert_cmpuint(r->u.lock_retries, ==, 100);
        break;
    }
}

static void test_every_command(void)
{
    g_assert_cmpuint(G_N_ELEMENTS(VALID), ==, SWTPM_CMD_LAST);
    for (size_t i = 0; i < G_N_ELEMENTS(VALID); i++) {
        const ValidReq *v = &VALID[i];
        size_t len;
        g_autofree uint8_t *buf = make_req(v->cmd, v->body, v->len, &len);
        SwtpmCtrlRequest r;

        g_assert_cmpint(swtpm_ctrl_parse(buf, len, &r), ==, SWTPM_PARSE_OK);
        g_assert_cmphex(r.cmd, ==, v->cmd);
        g_assert_nonnull(swtpm_ctrl_cmd_name(v->cmd));
        check_fields(v, &r, buf);
    }
}

/* Every prefix of a valid request waits for more, and asks for no more than it needs. */
static void test_short(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(VALID); i++) {
        const ValidReq *v = &VALID[i];
        size_t len;
        g_autofree uint8_t *buf = make_req(v->cmd, v->body, v->len, &len);
        size_t min_len = len;

        if (v->cmd == SWTPM_CMD_SET_LOCALITY ||
            v->cmd == SWTPM_CMD_RESET_TPMESTABLISHED) {
            min_len = SWTPM_CTRL_CODE_SIZE + 1;
        }
        for (size_t l = 0; l < min_len; l++) {
            SwtpmCtrlRequest r;

            g_assert_cmpint(swtpm_ctrl_parse(buf, l, &r), ==,
                            SWTPM_PARSE_NEED_MORE);
            g_assert_cmpuint(r.needed, >, l);
            g_assert_cmpuint(r.needed, <=, len);
        }
    }
}

static void test_long(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(VALID); i++) {
        const ValidReq *v = &VALID[i];
        uint8_t body[64] = {0};
        size_t len;
        g_autofree uint8_t *buf = NULL;
        SwtpmCtrlRequest r;
        SwtpmParseStatus st;

        memcpy(body, v->body, v->len);
        body[v->len] = 0x5a;
        buf = make_req(v->cmd, body, v->len + 1, &len);
        st = swtpm_ctrl_parse(buf, len, &r);
        if (v->exact) {
            g_assert_cmpint(st, ==, SWTPM_PARSE_ERROR);
            g_assert_cmphex(r.result, ==, SWTPM_RES_BAD_PARAMETER);
        } else {
            g_assert_cmpint(st, ==, SWTPM_PARSE_OK);
            check_fields(v, &r, buf);
        }
    }
}

static void test_unknown(void)
{
    static const uint32_t codes[] = { 0, 0x14, 0x100, 0x80000001, 0xffffffff };

    for (size_t i = 0; i < G_N_ELEMENTS(codes); i++) {
        size_t len;
        g_autofree uint8_t *buf = make_req(codes[i], (const uint8_t *)"xyz", 3,
                                           &len);
        SwtpmCtrlRequest r;

        g_assert_null(swtpm_ctrl_cmd_name(codes[i]));
        g_assert_cmpuint(swtpm_ctrl_cmd_cap(codes[i]), ==, 0);
        g_assert_cmpint(swtpm_ctrl_parse(buf, len, &r), ==, SWTPM_PARSE_ERROR);
        g_assert_cmphex(r.result, ==, SWTPM_RES_BAD_ORDINAL);
        g_assert_cmphex(r.cmd, ==, codes[i]);
    }
}

/* An announced length above the limit is refused before its data comes. */
static void test_oversized(void)
{
    const uint32_t cmds[] = { SWTPM_CMD_SET_STATEBLOB, SWTPM_CMD_HASH_DATA };

    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        uint8_t body[12] = {0};
        size_t off = cmds[i] == SWTPM_CMD_SET_STATEBLOB ? 8 : 0;
        size_t hdr = cmds[i] == SWTPM_CMD_SET_STATEBLOB ? 12 : 4;
        uint32_t sizes[] = { SWTPM_CTRL_DATA_MAX + 1, 0xffffffff };

        for (size_t j = 0; j < G_N_ELEMENTS(sizes); j++) {
            size_t len;
            g_autofree uint8_t *buf = NULL;
            SwtpmCtrlRequest r;

            stl_be_p(body + off, sizes[j]);
            buf = make_req(cmds[i], body, hdr, &len);
            g_assert_cmpint(swtpm_ctrl_parse(buf, len, &r), ==,
                            SWTPM_PARSE_ERROR);
            g_assert_cmphex(r.result, ==, SWTPM_RES_SIZE);
        }
        /* At the limit it waits for the data. */
        {
            size_t len;
            g_autofree uint8_t *buf = NULL;
            SwtpmCtrlRequest r;

            stl_be_p(body + off, SWTPM_CTRL_DATA_MAX);
            buf = make_req(cmds[i], body, hdr, &len);
            g_assert_cmpint(swtpm_ctrl_parse(buf, len, &r), ==,
                            SWTPM_PARSE_NEED_MORE);
            g_assert_cmpuint(r.needed, ==, 4 + hdr + SWTPM_CTRL_DATA_MAX);
        }
    }
}

/* Random bytes: any verdict, never a read outside the buffer (ASan). */
static void test_garbage(void)
{
    GRand *rand = g_rand_new_with_seed(0x5317);

    for (int i = 0; i < 20000; i++) {
        size_t len = g_rand_int_range(rand, 0, 40);
        g_autofree uint8_t *buf = g_malloc(len ? len : 1);
        SwtpmCtrlRequest r;
        SwtpmDataFrame f;
        SwtpmParseStatus st;

        for (size_t j = 0; j < len; j++) {
            buf[j] = g_rand_int(rand);
        }
        if (len >= 4 && (i & 1)) {
            stl_be_p(buf, g_rand_int_range(rand, 0, 0x15));
        }
        st = swtpm_ctrl_parse(buf, len, &r);
        if (st == SWTPM_PARSE_NEED_MORE) {
            g_assert_cmpuint(r.needed, >, len);
        } else if (st == SWTPM_PARSE_ERROR) {
            g_assert_cmphex(r.result, !=, SWTPM_RES_SUCCESS);
        }
        st = swtpm_data_parse(buf, len, 4096, &f);
        if (st == SWTPM_PARSE_OK) {
            g_assert_cmpuint(f.frame_len, <=, len);
            g_assert_cmpuint(f.cmd_offset + f.cmd_len, ==, f.frame_len);
        }
    }
    g_rand_free(rand);
}

static void test_encoders(void)
{
    uint8_t out[32];

    g_assert_cmpuint(swtpm_ctrl_encode_result(out, 3, 1), ==, 0);
    g_assert_cmpuint(swtpm_ctrl_encode_result(out, 4, SWTPM_RES_RETRY), ==, 4);
    g_assert_cmpmem(out, 4, "\x00\x00\x08\x00", 4);

    g_assert_cmpuint(swtpm_ctrl_encode_caps(out, 7, 1), ==, 0);
    g_assert_cmpuint(swtpm_ctrl_encode_caps(out, 8, SWTPM_CAP_INIT |
                                                    SWTPM_CAP_LOCK_STORAGE),
                     ==, 8);
    g_assert_cmpmem(out, 8, "\x00\x00\x00\x00\x00\x01\x00\x01", 8);

    memset(out, 0xff, sizeof(out));
    g_assert_cmpuint(swtpm_ctrl_encode_established(out, 7, 0, true), ==, 0);
    g_assert_cmpuint(swtpm_ctrl_encode_established(out, 8, 0, true), ==, 8);
    g_assert_cmpmem(out, 8, "\x00\x00\x00\x00\x01\x00\x00\x00", 8);

    g_assert_cmpuint(swtpm_ctrl_encode_config(out, 8, 0,
                                              SWTPM_CONFIG_FLAG_FILE_KEY),
                     ==, 8);
    g_assert_cmpmem(out, 8, "\x00\x00\x00\x00\x00\x00\x00\x01", 8);

    g_assert_cmpuint(swtpm_ctrl_encode_info_header(out, 11, 0, 1, 1), ==, 0);
    g_assert_cmpuint(swtpm_ctrl_encode_info_header(out, 12, 0, 0x123, 0x45), ==, 12);
    g_assert_cmpmem(out, 12, "\x00\x00\x00\x00\x00\x00\x01\x23\x00\x00\x00\x45", 12);

    g_assert_cmpuint(swtpm_ctrl_encode_buffersize(out, 15, 0, 1, 2, 3), ==, 0);
    g_assert_cmpuint(swtpm_ctrl_encode_buffersize(out, 16, 0, 4096, 1024, 4096),
                     ==, 16);
    g_assert_cmpmem(out, 16,
                    "\x00\x00\x00\x00\x00\x00\x10\x00"
                    "\x00\x00\x04\x00\x00\x00\x10\x00", 16);

    g_assert_cmpuint(swtpm_ctrl_encode_stateblob_header(out, 15, 0, 0, 0, 0),
                     ==, 0);
    g_assert_cmpuint(swtpm_ctrl_encode_stateblob_header(out, 16, 0x800, 2,
                                                        0x1234, 0x1234),
                     ==, SWTPM_GET_STATE_RESP_HDR_SIZE);
    g_assert_cmpmem(out, 16,
                    "\x00\x00\x08\x00\x00\x00\x00\x02"
                    "\x00\x00\x12\x34\x00\x00\x12\x34", 16);
}

static const uint8_t GETRANDOM[12] = {
    0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 16,
};

static void test_data_raw(void)
{
    SwtpmDataFrame f;

    for (size_t l = 0; l < sizeof(GETRANDOM); l++) {
        g_assert_cmpint(swtpm_data_parse(GETRANDOM, l, 4096, &f), ==,
                        SWTPM_PARSE_NEED_MORE);
        g_assert_cmpuint(f.needed, >, l);
    }
    g_assert_cmpint(swtpm_data_parse(GETRANDOM, sizeof(GETRANDOM), 4096, &f),
                    ==, SWTPM_PARSE_OK);
    g_assert_false(f.tcg_header);
    g_assert_cmpuint(f.cmd_offset, ==, 0);
    g_assert_cmpuint(f.cmd_len, ==, 12);
    g_assert_cmpuint(f.frame_len, ==, 12);
    /* Too large for the buffer, or smaller than a header. */
    g_assert_cmpint(swtpm_data_parse(GETRANDOM, sizeof(GETRANDOM), 11, &f), ==,
                    SWTPM_PARSE_ERROR);
    {
        uint8_t bad[10] = { 0x80, 0x01, 0, 0, 0, 9 };

        g_assert_cmpint(swtpm_data_parse(bad, sizeof(bad), 4096, &f), ==,
                        SWTPM_PARSE_ERROR);
    }
}

static void test_data_tcg(void)
{
    uint8_t buf[9 + sizeof(GETRANDOM)];
    uint8_t out[8];
    SwtpmDataFrame f;

    stl_be_p(buf, SWTPM_TCG_SEND_COMMAND);
    buf[4] = 3;
    stl_be_p(buf + 5, sizeof(GETRANDOM));
    memcpy(buf + 9, GETRANDOM, sizeof(GETRANDOM));
    for (size_t l = 0; l < sizeof(buf); l++) {
        g_assert_cmpint(swtpm_data_parse(buf, l, 4096, &f), ==,
                        SWTPM_PARSE_NEED_MORE);
    }
    g_assert_cmpint(swtpm_data_parse(buf, sizeof(buf), 4096, &f), ==,
                    SWTPM_PARSE_OK);
    g_assert_true(f.tcg_header);
    g_assert_cmpuint(f.locality, ==, 3);
    g_assert_cmpuint(f.cmd_offset, ==, 9);
    g_assert_cmpuint(f.cmd_len, ==, 12);
    g_assert_cmpuint(f.frame_len, ==, sizeof(buf));
    stl_be_p(buf + 5, 5000);
    g_assert_cmpint(swtpm_data_parse(buf, sizeof(buf), 4096, &f), ==,
                    SWTPM_PARSE_ERROR);

    g_assert_cmpuint(swtpm_data_encode_tcg_prefix(out, 4, 0x0a), ==, 4);
    g_assert_cmpmem(out, 4, "\x00\x00\x00\x0a", 4);
    g_assert_cmpuint(swtpm_data_encode_tcg_trailer(out, 3), ==, 0);
    g_assert_cmpuint(swtpm_data_encode_tcg_trailer(out, 4), ==, 4);
    g_assert_cmpmem(out, 4, "\x00\x00\x00\x00", 4);
}

static void test_caps(void)
{
    g_assert_cmphex(swtpm_ctrl_cmd_cap(SWTPM_CMD_GET_CAPABILITY), ==, 0);
    g_assert_cmphex(swtpm_ctrl_cmd_cap(SWTPM_CMD_INIT), ==, SWTPM_CAP_INIT);
    g_assert_cmphex(swtpm_ctrl_cmd_cap(SWTPM_CMD_HASH_DATA), ==,
                    SWTPM_CAP_HASHING);
    g_assert_cmphex(swtpm_ctrl_cmd_cap(SWTPM_CMD_SET_DATAFD), ==,
                    SWTPM_CAP_SET_DATAFD);
    g_assert_cmphex(swtpm_ctrl_cmd_cap(SWTPM_CMD_LOCK_STORAGE), ==,
                    SWTPM_CAP_LOCK_STORAGE);
}

static const uint8_t KEY_A[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t KEY_B[32] = "0123456789abcdef0123456789abcdeF";
static const QCryptoKey RAW_A = { QCRYPTO_KEY_RAW, KEY_A, sizeof(KEY_A) };
static const QCryptoKey RAW_B = { QCRYPTO_KEY_RAW, KEY_B, sizeof(KEY_B) };
static const uint8_t PLAIN[] = "permanent state: seeds, NV index 0x01500016 payload";

static uint8_t *seal_plain(const QCryptoKey *key, uint32_t type, size_t *len)
{
    g_autoptr(SwtpmSealKeys) k = swtpm_seal_keys_new();
    g_autoptr(GError) err = NULL;
    uint8_t *sealed = swtpm_blob_seal(k, key, type, PLAIN, sizeof(PLAIN), len,
                                      &err);

    g_assert_no_error(err);
    g_assert_nonnull(sealed);
    return sealed;
}

static SwtpmSealStatus open_sealed(const QCryptoKey *key, uint32_t type,
                                   const uint8_t *in, size_t len)
{
    g_autoptr(SwtpmSealKeys) k = swtpm_seal_keys_new();
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    SwtpmSealStatus st = swtpm_blob_open(k, key, type, in, len, &plain,
                                         &plain_len);

    if (st == SWTPM_SEAL_OK) {
        g_assert_cmpmem(plain, plain_len, PLAIN, sizeof(PLAIN));
    } else {
        g_assert_null(plain);
        g_assert_cmpuint(plain_len, ==, 0);
    }
    qcrypto_free_wiped(&plain, plain_len);
    return st;
}

static void test_seal_roundtrip(void)
{
    size_t len;
    g_autofree uint8_t *sealed = seal_plain(&RAW_A, SWTPM_BLOB_TYPE_PERMANENT,
                                            &len);
    g_autofree uint8_t *again = NULL;
    size_t again_len;

    g_assert_cmpuint(len, ==, sizeof(PLAIN) + SWTPM_SEAL_OVERHEAD);
    g_assert_cmpmem(sealed, 8, SWTPM_SEAL_MAGIC, 8);
    /* No run of the plaintext survives sealing. */
    g_assert_null(memmem(sealed, len, PLAIN, 8));
    g_assert_cmpint(open_sealed(&RAW_A, SWTPM_BLOB_TYPE_PERMANENT, sealed, len),
                    ==, SWTPM_SEAL_OK);
    /* A fresh nonce each time: the same state never seals to the same bytes. */
    again = seal_plain(&RAW_A, SWTPM_BLOB_TYPE_PERMANENT, &again_len);
    g_assert_cmpuint(again_len, ==, len);
    g_assert_false(memcmp(again, sealed, len) == 0);
}

static void test_seal_wrong_key(void)
{
    static const uint8_t pass[] = "a passphrase";
    QCryptoKey pp = { QCRYPTO_KEY_PASSPHRASE, pass, sizeof(pass) - 1 };
    QCryptoKey none = { QCRYPTO_KEY_NONE, NULL, 0 };
    size_t len;
    g_autofree uint8_t *sealed = seal_plain(&RAW_A, SWTPM_BLOB_TYPE_VOLATILE,
                                            &len);

    g_assert_cmpint(open_sealed(&RAW_B, SWTPM_BLOB_TYPE_VOLATILE, sealed, len),
                    ==, SWTPM_SEAL_WRONG_KEY);
    g_assert_cmpint(open_sealed(&pp, SWTPM_BLOB_TYPE_VOLATILE, sealed, len),
                    ==, SWTPM_SEAL_WRONG_KEY);
    g_assert_cmpint(open_sealed(&none, SWTPM_BLOB_TYPE_VOLATILE, sealed, len),
                    ==, SWTPM_SEAL_WRONG_KEY);
}

static void test_seal_passphrase(void)
{
    static const uint8_t pass[] = "a passphrase";
    static const uint8_t other[] = "another passphrase";
    QCryptoKey pp = { QCRYPTO_KEY_PASSPHRASE, pass, sizeof(pass) - 1 };
    QCryptoKey po = { QCRYPTO_KEY_PASSPHRASE, other, sizeof(other) - 1 };
    g_autoptr(SwtpmSealKeys) k = swtpm_seal_keys_new();
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *a = NULL, *b = NULL;
    size_t alen, blen;

    /* Two blobs from one export share the salt: one stretching for both. */
    a = swtpm_blob_seal(k, &pp, SWTPM_BLOB_TYPE_PERMANENT, PLAIN, sizeof(PLAIN),
                        &alen, &err);
    g_assert_no_error(err);
    b = swtpm_blob_seal(k, &pp, SWTPM_BLOB_TYPE_SAVESTATE, PLAIN, sizeof(PLAIN),
                        &blen, &err);
    g_assert_no_error(err);
    g_assert_cmpmem(a + 20, 20, b + 20, 20);
    g_assert_cmpint(open_sealed(&pp, SWTPM_BLOB_TYPE_PERMANENT, a, alen), ==,
                    SWTPM_SEAL_OK);
    g_assert_cmpint(open_sealed(&po, SWTPM_BLOB_TYPE_SAVESTATE, b, blen), ==,
                    SWTPM_SEAL_WRONG_KEY);
    g_assert_cmpint(open_sealed(&RAW_A, SWTPM_BLOB_TYPE_SAVESTATE, b, blen), ==,
                    SWTPM_SEAL_WRONG_KEY);
}

static void test_seal_damaged(void)
{
    size_t len;
    g_autofree uint8_t *sealed = seal_plain(&RAW_A, SWTPM_BLOB_TYPE_PERMANENT,
                                            &len);
    g_autofree uint8_t *copy = g_memdup2(sealed, len);

    /* Another type: a permanent blob cannot pose as the volatile one. */
    g_assert_cmpint(open_sealed(&RAW_A, SWTPM_BLOB_TYPE_VOLATILE, sealed, len),
                    ==, SWTPM_SEAL_DAMAGED);
    for (size_t cut = 0; cut < len; cut++) {
        g_assert_cmpint(open_sealed(&RAW_A, SWTPM_BLOB_TYPE_PERMANENT, sealed,
                                    cut), ==, SWTPM_SEAL_DAMAGED);
    }
    /*
     * Every flipped byte is refused: in the salt or key check value as
     * another key, anywhere else as damage.
     */
    for (size_t i = 0; i < len; i++) {
        SwtpmSealStatus st;

        copy[i] ^= 0x40;
        st = open_sealed(&RAW_A, SWTPM_BLOB_TYPE_PERMANENT, copy, len);
        if (i >= 24 && i < 56) {
            g_assert_cmpint(st, ==, SWTPM_SEAL_WRONG_KEY);
        } else {
            g_assert_cmpint(st, ==, SWTPM_SEAL_DAMAGED);
        }
        copy[i] ^= 0x40;
    }
    g_assert_cmpint(open_sealed(&RAW_A, SWTPM_BLOB_TYPE_PERMANENT, copy, len),
                    ==, SWTPM_SEAL_OK);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-codec/every-command", test_every_command);
    g_test_add_func("/swtpm-codec/short", test_short);
    g_test_add_func("/swtpm-codec/long", test_long);
    g_test_add_func("/swtpm-codec/unknown", test_unknown);
    g_test_add_func("/swtpm-codec/oversized", test_oversized);
    g_test_add_func("/swtpm-codec/garbage", test_garbage);
    g_test_add_func("/swtpm-codec/encoders", test_encoders);
    g_test_add_func("/swtpm-codec/caps", test_caps);
    g_test_add_func("/swtpm-codec/data-raw", test_data_raw);
    g_test_add_func("/swtpm-codec/data-tcg", test_data_tcg);
    g_test_add_func("/swtpm-codec/seal-roundtrip", test_seal_roundtrip);
    g_test_add_func("/swtpm-codec/seal-wrong-key", test_seal_wrong_key);
    g_test_add_func("/swtpm-codec/seal-passphrase", test_seal_passphrase);
    g_test_add_func("/swtpm-codec/seal-damaged", test_seal_damaged);
    return g_test_run();
}
