/*
 * swtpm's socket protocol: parsing control requests and data frames,
 * encoding answers. Pure functions over bounded buffers (the fuzzing
 * surface of the export); docs/swtpm-protocol.md has the byte tables.
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "export/swtpm-codec.h"

/*
 * The wire layouts, restating docs/swtpm-protocol.md's tables: fields are
 * read at offsetof() of these structures, so a table and its code cannot
 * drift apart without a failed build.
 */
typedef struct __attribute__((packed)) SwtpmWireInitReq {
    uint32_t init_flags;
} SwtpmWireInitReq;

typedef struct __attribute__((packed)) SwtpmWireLocReq {
    uint8_t loc;
} SwtpmWireLocReq;

typedef struct __attribute__((packed)) SwtpmWireHashDataReq {
    uint32_t length;
    uint8_t data[];
} SwtpmWireHashDataReq;

typedef struct __attribute__((packed)) SwtpmWireGetStateReq {
    uint32_t state_flags;
    uint32_t type;
    uint32_t offset;
} SwtpmWireGetStateReq;

typedef struct __attribute__((packed)) SwtpmWireSetStateReq {
    uint32_t state_flags;
    uint32_t type;
    uint32_t length;
    uint8_t data[];
} SwtpmWireSetStateReq;

typedef struct __attribute__((packed)) SwtpmWireBufferSizeReq {
    uint32_t buffersize;
} SwtpmWireBufferSizeReq;

typedef struct __attribute__((packed)) SwtpmWireGetInfoReq {
    uint64_t flags;
    uint32_t offset;
    uint32_t pad;
} SwtpmWireGetInfoReq;

typedef struct __attribute__((packed)) SwtpmWireLockStorageReq {
    uint32_t retries;
} SwtpmWireLockStorageReq;

typedef struct __attribute__((packed)) SwtpmWireEstResp {
    uint32_t tpm_result;
    uint8_t bit;
    uint8_t pad[3];
} SwtpmWireEstResp;

typedef struct __attribute__((packed)) SwtpmWireConfigResp {
    uint32_t tpm_result;
    uint32_t flags;
} SwtpmWireConfigResp;

typedef struct __attribute__((packed)) SwtpmWireBufferSizeResp {
    uint32_t tpm_result;
    uint32_t buffersize;
    uint32_t minsize;
    uint32_t maxsize;
} SwtpmWireBufferSizeResp;

typedef struct __attribute__((packed)) SwtpmWireGetStateResp {
    uint32_t tpm_result;
    uint32_t state_flags;
    uint32_t totlength;
    uint32_t length;
} SwtpmWireGetStateResp;

typedef struct __attribute__((packed)) SwtpmWireGetInfoResp {
    uint32_t tpm_result;
    uint32_t totlength;
    uint32_t length;
} SwtpmWireGetInfoResp;

typedef struct __attribute__((packed)) SwtpmWireTcgHeader {
    uint32_t cmd;
    uint8_t locality;
    uint32_t length;
} SwtpmWireTcgHeader;

G_STATIC_ASSERT(sizeof(SwtpmWireInitReq) == 4);
G_STATIC_ASSERT(sizeof(SwtpmWireLocReq) == 1);
G_STATIC_ASSERT(sizeof(SwtpmWireHashDataReq) == 4);
G_STATIC_ASSERT(sizeof(SwtpmWireGetStateReq) == 12);
G_STATIC_ASSERT(sizeof(SwtpmWireSetStateReq) == 12);
G_STATIC_ASSERT(sizeof(SwtpmWireBufferSizeReq) == 4);
G_STATIC_ASSERT(sizeof(SwtpmWireGetInfoReq) == 16);
G_STATIC_ASSERT(sizeof(SwtpmWireLockStorageReq) == 4);
G_STATIC_ASSERT(sizeof(SwtpmWireEstResp) == 8);
G_STATIC_ASSERT(sizeof(SwtpmWireConfigResp) == 8);
G_STATIC_ASSERT(sizeof(SwtpmWireBufferSizeResp) == 16);
G_STATIC_ASSERT(sizeof(SwtpmWireGetStateResp) == SWTPM_GET_STATE_RESP_HDR_SIZE);
G_STATIC_ASSERT(sizeof(SwtpmWireGetInfoResp) == SWTPM_GET_INFO_RESP_HDR_SIZE);
G_STATIC_ASSERT(sizeof(SwtpmWireTcgHeader) == SWTPM_TCG_HEADER_SIZE);

#define FIELD(type, field) offsetof(type, field)

/* How a command's body is sized. */
typedef enum SwtpmBodyKind {
    BODY_ANY,       /* GET_CAPABILITY, SET_DATAFD: whatever came is ignored */
    BODY_EXACT,     /* exactly @size bytes */
    BODY_AT_LEAST,  /* @size bytes, more ignored (QEMU sends whole unions) */
    BODY_DATA,      /* a @size-byte header whose u32 at @len_off counts data */
} SwtpmBodyKind;

typedef struct SwtpmCmdDesc {
    const char *name;
    SwtpmBodyKind kind;
    uint32_t size;
    uint32_t len_off;
    uint64_t cap;
} SwtpmCmdDesc;

static const SwtpmCmdDesc swtpm_cmds[SWTPM_CMD_LAST + 1] = {
    [SWTPM_CMD_GET_CAPABILITY] = { "GET_CAPABILITY", BODY_ANY, 0, 0, 0 },
    [SWTPM_CMD_INIT] = { "INIT", BODY_EXACT, sizeof(SwtpmWireInitReq), 0,
                         SWTPM_CAP_INIT },
    [SWTPM_CMD_SHUTDOWN] = { "SHUTDOWN", BODY_EXACT, 0, 0, SWTPM_CAP_SHUTDOWN },
    [SWTPM_CMD_GET_TPMESTABLISHED] = { "GET_TPMESTABLISHED", BODY_EXACT, 0, 0,
                                       SWTPM_CAP_GET_TPMESTABLISHED },
    [SWTPM_CMD_SET_LOCALITY] = { "SET_LOCALITY", BODY_AT_LEAST,
                                 sizeof(SwtpmWireLocReq), 0,
                                 SWTPM_CAP_SET_LOCALITY },
    [SWTPM_CMD_HASH_START] = { "HASH_START", BODY_EXACT, 0, 0,
                               SWTPM_CAP_HASHING },
    [SWTPM_CMD_HASH_DATA] = { "HASH_DATA", BODY_DATA,
                              sizeof(SwtpmWireHashDataReq),
                              FIELD(SwtpmWireHashDataReq, length),
                              SWTPM_CAP_HASHING },
    [SWTPM_CMD_HASH_END] = { "HASH_END", BODY_EXACT, 0, 0, SWTPM_CAP_HASHING },
    [SWTPM_CMD_CANCEL_TPM_CMD] = { "CANCEL_TPM_CMD", BODY_EXACT, 0, 0,
                                   SWTPM_CAP_CANCEL_TPM_CMD },
    [SWTPM_CMD_STORE_VOLATILE] = { "STORE_VOLATILE", BODY_EXACT, 0, 0,
                                   SWTPM_CAP_STORE_VOLATILE },
    [SWTPM_CMD_RESET_TPMESTABLISHED] = { "RESET_TPMESTABLISHED", BODY_AT_LEAST,
                                         sizeof(SwtpmWireLocReq), 0,
                                         SWTPM_CAP_RESET_TPMESTABLISHED },
    [SWTPM_CMD_GET_STATEBLOB] = { "GET_STATEBLOB", BODY_AT_LEAST,
                                  sizeof(SwtpmWireGetStateReq), 0,
                                  SWTPM_CAP_GET_STATEBLOB },
    [SWTPM_CMD_SET_STATEBLOB] = { "SET_STATEBLOB", BODY_DATA,
                                  sizeof(SwtpmWireSetStateReq),
                                  FIELD(SwtpmWireSetStateReq, length),
                                  SWTPM_CAP_SET_STATEBLOB },
    [SWTPM_CMD_STOP] = { "STOP", BODY_EXACT, 0, 0, SWTPM_CAP_STOP },
    [SWTPM_CMD_GET_CONFIG] = { "GET_CONFIG", BODY_EXACT, 0, 0,
                               SWTPM_CAP_GET_CONFIG },
    [SWTPM_CMD_SET_DATAFD] = { "SET_DATAFD", BODY_ANY, 0, 0,
                               SWTPM_CAP_SET_DATAFD },
    [SWTPM_CMD_SET_BUFFERSIZE] = { "SET_BUFFERSIZE", BODY_AT_LEAST,
                                   sizeof(SwtpmWireBufferSizeReq), 0,
                                   SWTPM_CAP_SET_BUFFERSIZE },
    [SWTPM_CMD_GET_INFO] = { "GET_INFO", BODY_AT_LEAST,
                             sizeof(SwtpmWireGetInfoReq), 0,
                             SWTPM_CAP_GET_INFO },
    [SWTPM_CMD_LOCK_STORAGE] = { "LOCK_STORAGE", BODY_AT_LEAST,
                                 sizeof(SwtpmWireLockStorageReq), 0,
                                 SWTPM_CAP_LOCK_STORAGE },
};

static const SwtpmCmdDesc *swtpm_cmd_desc(uint32_t cmd)
{
    if (cmd < SWTPM_CMD_FIRST || cmd > SWTPM_CMD_LAST) {
        return NULL;
    }
    return &swtpm_cmds[cmd];
}

uint64_t swtpm_ctrl_cmd_cap(uint32_t cmd)
{
    const SwtpmCmdDesc *d = swtpm_cmd_desc(cmd);

    return d ? d->cap : 0;
}

const char *swtpm_ctrl_cmd_name(uint32_t cmd)
{
    const SwtpmCmdDesc *d = swtpm_cmd_desc(cmd);

    return d ? d->name : NULL;
}

static SwtpmParseStatus parse_error(SwtpmCtrlRequest *req, uint32_t result)
{
    req->result = result;
    return SWTPM_PARSE_ERROR;
}

static SwtpmParseStatus need_more(SwtpmCtrlRequest *req, size_t needed)
{
    req->needed = needed;
    return SWTPM_PARSE_NEED_MORE;
}

/* The body of a whole, correctly sized request into req->u. */
static void parse_fields(const uint8_t *body, size_t n, SwtpmCtrlRequest *req)
{
    switch (req->cmd) {
    case SWTPM_CMD_INIT:
        req->u.init_flags = ldl_be_p(body + FIELD(SwtpmWireInitReq, init_flags));
        break;
    case SWTPM_CMD_SET_LOCALITY:
    case SWTPM_CMD_RESET_TPMESTABLISHED:
        req->u.locality = body[FIELD(SwtpmWireLocReq, loc)];
        break;
    case SWTPM_CMD_HASH_DATA:
        req->u.hash_data.length =
            ldl_be_p(body + FIELD(SwtpmWireHashDataReq, length));
        req->u.hash_data.data = body + FIELD(SwtpmWireHashDataReq, data);
        break;
    case SWTPM_CMD_GET_STATEBLOB:
        req->u.get_state.flags =
            ldl_be_p(body + FIELD(SwtpmWireGetStateReq, state_flags));
        req->u.get_state.type = ldl_be_p(body + FIELD(SwtpmWireGetStateReq, type));
        req->u.get_state.offset =
            ldl_be_p(body + FIELD(SwtpmWireGetStateReq, offset));
        break;
    case SWTPM_CMD_SET_STATEBLOB:
        req->u.set_state.flags =
            ldl_be_p(body + FIELD(SwtpmWireSetStateReq, state_flags));
        req->u.set_state.type = ldl_be_p(body + FIELD(SwtpmWireSetStateReq, type));
        req->u.set_state.length =
            ldl_be_p(body + FIELD(SwtpmWireSetStateReq, length));
        req->u.set_state.data = body + FIELD(SwtpmWireSetStateReq, data);
        break;
    case SWTPM_CMD_SET_BUFFERSIZE:
        req->u.buffersize =
            ldl_be_p(body + FIELD(SwtpmWireBufferSizeReq, buffersize));
        break;
    case SWTPM_CMD_GET_INFO:
        req->u.get_info.flags = ldq_be_p(body + FIELD(SwtpmWireGetInfoReq, flags));
        req->u.get_info.offset =
            ldl_be_p(body + FIELD(SwtpmWireGetInfoReq, offset));
        break;
    case SWTPM_CMD_LOCK_STORAGE:
        req->u.lock_retries =
            ldl_be_p(body + FIELD(SwtpmWireLockStorageReq, retries));
        break;
    default:
        break;
    }
    (void)n;
}

SwtpmParseStatus swtpm_ctrl_parse(const uint8_t *buf, size_t len,
                                  SwtpmCtrlRequest *req)
{
    const SwtpmCmdDesc *d;
    const uint8_t *body = buf + SWTPM_CTRL_CODE_SIZE;
    size_t n;

    memset(req, 0, sizeof(*req));
    if (len < SWTPM_CTRL_CODE_SIZE) {
        return need_more(req, SWTPM_CTRL_CODE_SIZE);
    }
    req->cmd = ldl_be_p(buf);
    n = len - SWTPM_CTRL_CODE_SIZE;
    d = swtpm_cmd_desc(req->cmd);
    if (!d) {
        return parse_error(req, SWTPM_RES_BAD_ORDINAL);
    }
    if (n < d->size) {
        return need_more(req, SWTPM_CTRL_CODE_SIZE + d->size);
    }
    switch (d->kind) {
    case BODY_ANY:
    case BODY_AT_LEAST:
        break;
    case BODY_EXACT:
        if (n != d->size) {
            return parse_error(req, SWTPM_RES_BAD_PARAMETER);
        }
        break;
    case BODY_DATA: {
        uint32_t data_len = ldl_be_p(body + d->len_off);

        if (data_len > SWTPM_CTRL_DATA_MAX) {
            return parse_error(req, SWTPM_RES_SIZE);
        }
        if (n < d->size + (size_t)data_len) {
            return need_more(req, SWTPM_CTRL_CODE_SIZE + d->size + data_len);
        }
        if (n > d->size + (size_t)data_len) {
            return parse_error(req, SWTPM_RES_BAD_PARAMETER);
        }
        break;
    }
    }
    parse_fields(body, n, req);
    return SWTPM_PARSE_OK;
}

size_t swtpm_ctrl_encode_result(uint8_t *out, size_t out_len, uint32_t result)
{
    if (out_len < sizeof(uint32_t)) {
        return 0;
    }
    stl_be_p(out, result);
    return sizeof(uint32_t);
}

size_t swtpm_ctrl_encode_caps(uint8_t *out, size_t out_len, uint64_t caps)
{
    if (out_len < sizeof(uint64_t)) {
        return 0;
    }
    stq_be_p(out, caps);
    return sizeof(uint64_t);
}

size_t swtpm_ctrl_encode_established(uint8_t *out, size_t out_len,
                                     uint32_t result, bool established)
{
    if (out_len < sizeof(SwtpmWireEstResp)) {
        return 0;
    }
    memset(out, 0, sizeof(SwtpmWireEstResp));
    stl_be_p(out + FIELD(SwtpmWireEstResp, tpm_result), result);
    out[FIELD(SwtpmWireEstResp, bit)] = established;
    return sizeof(SwtpmWireEstResp);
}

size_t swtpm_ctrl_encode_config(uint8_t *out, size_t out_len, uint32_t result,
                                uint32_t flags)
{
    if (out_len < sizeof(SwtpmWireConfigResp)) {
        return 0;
    }
    stl_be_p(out + FIELD(SwtpmWireConfigResp, tpm_result), result);
    stl_be_p(out + FIELD(SwtpmWireConfigResp, flags), flags);
    return sizeof(SwtpmWireConfigResp);
}

size_t swtpm_ctrl_encode_info_header(uint8_t *out, size_t out_len,
                                     uint32_t result, uint32_t totlength,
                                     uint32_t length)
{
    if (out_len < sizeof(SwtpmWireGetInfoResp)) {
        return 0;
    }
    stl_be_p(out + FIELD(SwtpmWireGetInfoResp, tpm_result), result);
    stl_be_p(out + FIELD(SwtpmWireGetInfoResp, totlength), totlength);
    stl_be_p(out + FIELD(SwtpmWireGetInfoResp, length), length);
    return sizeof(SwtpmWireGetInfoResp);
}

size_t swtpm_ctrl_encode_buffersize(uint8_t *out, size_t out_len,
                                    uint32_t result, uint32_t buffersize,
                                    uint32_t minsize, uint32_t maxsize)
{
    if (out_len < sizeof(SwtpmWireBufferSizeResp)) {
        return 0;
    }
    stl_be_p(out + FIELD(SwtpmWireBufferSizeResp, tpm_result), result);
    stl_be_p(out + FIELD(SwtpmWireBufferSizeResp, buffersize), buffersize);
    stl_be_p(out + FIELD(SwtpmWireBufferSizeResp, minsize), minsize);
    stl_be_p(out + FIELD(SwtpmWireBufferSizeResp, maxsize), maxsize);
    return sizeof(SwtpmWireBufferSizeResp);
}

size_t swtpm_ctrl_encode_stateblob_header(uint8_t *out, size_t out_len,
                                          uint32_t result, uint32_t flags,
                                          uint32_t totlength, uint32_t length)
{
    if (out_len < sizeof(SwtpmWireGetStateResp)) {
        return 0;
    }
    stl_be_p(out + FIELD(SwtpmWireGetStateResp, tpm_result), result);
    stl_be_p(out + FIELD(SwtpmWireGetStateResp, state_flags), flags);
    stl_be_p(out + FIELD(SwtpmWireGetStateResp, totlength), totlength);
    stl_be_p(out + FIELD(SwtpmWireGetStateResp, length), length);
    return sizeof(SwtpmWireGetStateResp);
}

static SwtpmParseStatus data_need_more(SwtpmDataFrame *frame, size_t needed)
{
    frame->needed = needed;
    return SWTPM_PARSE_NEED_MORE;
}

SwtpmParseStatus swtpm_data_parse(const uint8_t *buf, size_t len,
                                  uint32_t max_cmd, SwtpmDataFrame *frame)
{
    size_t off = 0;
    uint32_t size;

    memset(frame, 0, sizeof(*frame));
    if (len < sizeof(uint32_t)) {
        return data_need_more(frame, sizeof(uint32_t));
    }
    if (ldl_be_p(buf) == SWTPM_TCG_SEND_COMMAND) {
        if (len < SWTPM_TCG_HEADER_SIZE) {
            return data_need_more(frame, SWTPM_TCG_HEADER_SIZE);
        }
        frame->tcg_header = true;
        frame->locality = buf[FIELD(SwtpmWireTcgHeader, locality)];
        size = ldl_be_p(buf + FIELD(SwtpmWireTcgHeader, length));
        if (size < SWTPM_TPM_HEADER_SIZE || size > max_cmd) {
            return SWTPM_PARSE_ERROR;
        }
        off = SWTPM_TCG_HEADER_SIZE;
    } else {
        if (len < SWTPM_TPM_HEADER_SIZE) {
            return data_need_more(frame, SWTPM_TPM_HEADER_SIZE);
        }
        /* tag u16, then the command's size u32 */
        size = ldl_be_p(buf + 2);
        if (size < SWTPM_TPM_HEADER_SIZE || size > max_cmd) {
            return SWTPM_PARSE_ERROR;
        }
    }
    if (len < off + size) {
        return data_need_more(frame, off + size);
    }
    frame->cmd_offset = off;
    frame->cmd_len = size;
    frame->frame_len = off + size;
    return SWTPM_PARSE_OK;
}

size_t swtpm_data_encode_tcg_prefix(uint8_t *out, size_t out_len,
                                    uint32_t resp_len)
{
    if (out_len < sizeof(uint32_t)) {
        return 0;
    }
    stl_be_p(out, resp_len);
    return sizeof(uint32_t);
}

size_t swtpm_data_encode_tcg_trailer(uint8_t *out, size_t out_len)
{
    if (out_len < SWTPM_TCG_TRAILER_SIZE) {
        return 0;
    }
    stl_be_p(out, 0);
    return SWTPM_TCG_TRAILER_SIZE;
}
