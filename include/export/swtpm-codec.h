/*
 * swtpm's control and data channel protocol as pure functions over buffers:
 * requests are parsed, answers encoded, nothing here does I/O.
 * docs/swtpm-protocol.md has the byte tables.
 */
#ifndef EXPORT_SWTPM_CODEC_H
#define EXPORT_SWTPM_CODEC_H

#include "qemu/osdep.h"

/* Control commands (tpm_ioctl.h's CMD_*). */
typedef enum SwtpmCtrlCmd {
    SWTPM_CMD_GET_CAPABILITY = 0x01,
    SWTPM_CMD_INIT = 0x02,
    SWTPM_CMD_SHUTDOWN = 0x03,
    SWTPM_CMD_GET_TPMESTABLISHED = 0x04,
    SWTPM_CMD_SET_LOCALITY = 0x05,
    SWTPM_CMD_HASH_START = 0x06,
    SWTPM_CMD_HASH_DATA = 0x07,
    SWTPM_CMD_HASH_END = 0x08,
    SWTPM_CMD_CANCEL_TPM_CMD = 0x09,
    SWTPM_CMD_STORE_VOLATILE = 0x0a,
    SWTPM_CMD_RESET_TPMESTABLISHED = 0x0b,
    SWTPM_CMD_GET_STATEBLOB = 0x0c,
    SWTPM_CMD_SET_STATEBLOB = 0x0d,
    SWTPM_CMD_STOP = 0x0e,
    SWTPM_CMD_GET_CONFIG = 0x0f,
    SWTPM_CMD_SET_DATAFD = 0x10,
    SWTPM_CMD_SET_BUFFERSIZE = 0x11,
    SWTPM_CMD_GET_INFO = 0x12,
    SWTPM_CMD_LOCK_STORAGE = 0x13,
} SwtpmCtrlCmd;

#define SWTPM_CMD_FIRST SWTPM_CMD_GET_CAPABILITY
#define SWTPM_CMD_LAST SWTPM_CMD_LOCK_STORAGE

/* Result codes (ptm_res: TPM 1.2 result codes). */
#define SWTPM_RES_SUCCESS 0x00
#define SWTPM_RES_BAD_PARAMETER 0x03
#define SWTPM_RES_FAIL 0x09
#define SWTPM_RES_BAD_ORDINAL 0x0a
#define SWTPM_RES_SIZE 0x17
#define SWTPM_RES_IOERROR 0x1f
#define SWTPM_RES_DECRYPT_ERROR 0x21
#define SWTPM_RES_BAD_LOCALITY 0x3d
#define SWTPM_RES_RETRY 0x800

/* GET_CAPABILITY bits. */
#define SWTPM_CAP_INIT (1ull << 0)
#define SWTPM_CAP_SHUTDOWN (1ull << 1)
#define SWTPM_CAP_GET_TPMESTABLISHED (1ull << 2)
#define SWTPM_CAP_SET_LOCALITY (1ull << 3)
#define SWTPM_CAP_HASHING (1ull << 4)
#define SWTPM_CAP_CANCEL_TPM_CMD (1ull << 5)
#define SWTPM_CAP_STORE_VOLATILE (1ull << 6)
#define SWTPM_CAP_RESET_TPMESTABLISHED (1ull << 7)
#define SWTPM_CAP_GET_STATEBLOB (1ull << 8)
#define SWTPM_CAP_SET_STATEBLOB (1ull << 9)
#define SWTPM_CAP_STOP (1ull << 10)
#define SWTPM_CAP_GET_CONFIG (1ull << 11)
#define SWTPM_CAP_SET_DATAFD (1ull << 12)
#define SWTPM_CAP_SET_BUFFERSIZE (1ull << 13)
#define SWTPM_CAP_GET_INFO (1ull << 14)
#define SWTPM_CAP_SEND_COMMAND_HEADER (1ull << 15)
#define SWTPM_CAP_LOCK_STORAGE (1ull << 16)

/* The capability bit that advertises @cmd, or 0 for one without a bit. */
uint64_t swtpm_ctrl_cmd_cap(uint32_t cmd);
/* "INIT", "SET_DATAFD", ...; NULL for an unknown code. */
const char *swtpm_ctrl_cmd_name(uint32_t cmd);

#define SWTPM_INIT_FLAG_DELETE_VOLATILE (1u << 0)
#define SWTPM_STATE_FLAG_DECRYPTED (1u << 0)
#define SWTPM_STATE_FLAG_ENCRYPTED (1u << 1)
#define SWTPM_BLOB_TYPE_PERMANENT 1
#define SWTPM_BLOB_TYPE_VOLATILE 2
#define SWTPM_BLOB_TYPE_SAVESTATE 3
#define SWTPM_CONFIG_FLAG_FILE_KEY 0x1
#define SWTPM_CONFIG_FLAG_MIGRATION_KEY 0x2

/* The most data a SET_STATEBLOB or HASH_DATA request may announce. */
#define SWTPM_CTRL_DATA_MAX (1u << 20)
/* The code word in front of every request. */
#define SWTPM_CTRL_CODE_SIZE 4
/* swtpm's deadline for a whole request, from its first byte. */
#define SWTPM_CTRL_DEADLINE_MS 500

typedef enum SwtpmParseStatus {
    SWTPM_PARSE_OK,         /* a whole request */
    SWTPM_PARSE_NEED_MORE,  /* short: wait for more bytes */
    SWTPM_PARSE_ERROR,      /* answer with SwtpmCtrlRequest.result */
} SwtpmParseStatus;

/* A parsed control request; pointers point into the parsed buffer. */
typedef struct SwtpmCtrlRequest {
    uint32_t cmd;
    /* SWTPM_PARSE_ERROR: the result code to answer with. */
    uint32_t result;
    /* SWTPM_PARSE_NEED_MORE: the length the request needs so far. */
    size_t needed;
    union {
        uint32_t init_flags;        /* INIT */
        uint8_t locality;           /* SET_LOCALITY, RESET_TPMESTABLISHED */
        uint32_t buffersize;        /* SET_BUFFERSIZE */
        uint32_t lock_retries;      /* LOCK_STORAGE */
        struct {
            uint32_t flags, type, offset;
        } get_state;                /* GET_STATEBLOB */
        struct {
            uint32_t flags, type, length;
            const uint8_t *data;
        } set_state;                /* SET_STATEBLOB */
        struct {
            uint32_t length;
            const uint8_t *data;
        } hash_data;                /* HASH_DATA */
        struct {
            uint64_t flags;
            uint32_t offset;
        } get_info;                 /* GET_INFO */
    } u;
} SwtpmCtrlRequest;

/*
 * Parses the control request that is @buf[0..@len): all the bytes that have
 * arrived since the request began (the channel carries one request at a
 * time). Short: NEED_MORE with req->needed. A body of the wrong size, a
 * field out of range or an unknown code: ERROR with req->result (and
 * req->cmd set when the code was there). An oversized announced length is
 * ERROR with SWTPM_RES_SIZE before its data arrives.
 */
SwtpmParseStatus swtpm_ctrl_parse(const uint8_t *buf, size_t len,
                                  SwtpmCtrlRequest *req);

/*
 * Answers, encoded into @out (@out_len bytes). Each returns the length
 * written, or 0 when @out is too small (nothing written then).
 */
size_t swtpm_ctrl_encode_result(uint8_t *out, size_t out_len, uint32_t result);
size_t swtpm_ctrl_encode_caps(uint8_t *out, size_t out_len, uint64_t caps);
size_t swtpm_ctrl_encode_established(uint8_t *out, size_t out_len,
                                     uint32_t result, bool established);
size_t swtpm_ctrl_encode_config(uint8_t *out, size_t out_len, uint32_t result,
                                uint32_t flags);
size_t swtpm_ctrl_encode_buffersize(uint8_t *out, size_t out_len,
                                    uint32_t result, uint32_t buffersize,
                                    uint32_t minsize, uint32_t maxsize);
/* The 16-byte header of a GET_STATEBLOB answer; @length bytes follow it. */
#define SWTPM_GET_STATE_RESP_HDR_SIZE 16
size_t swtpm_ctrl_encode_stateblob_header(uint8_t *out, size_t out_len,
                                          uint32_t result, uint32_t flags,
                                          uint32_t totlength, uint32_t length);

/*
 * The 12-byte header of a GET_INFO answer (res, totlength, length); @length
 * bytes of the JSON text follow it.
 */
#define SWTPM_GET_INFO_RESP_HDR_SIZE 12
/* GET_INFO flags: what the JSON object holds. */
#define SWTPM_INFO_TPMSPECIFICATION (1ull << 0)
#define SWTPM_INFO_TPMATTRIBUTES (1ull << 1)
/* swtpm's ptm_getinfo answer buffer: the most text one answer carries. */
#define SWTPM_GET_INFO_CHUNK_MAX (3 * 4096)
size_t swtpm_ctrl_encode_info_header(uint8_t *out, size_t out_len,
                                     uint32_t result, uint32_t totlength,
                                     uint32_t length);

/*
 * The data channel. A TPM command is framed by its header's size field;
 * with the TCG/mssim header (TPM 2.0) it is wrapped as in the table of
 * docs/swtpm-protocol.md.
 */
#define SWTPM_TPM_HEADER_SIZE 10
#define SWTPM_TCG_SEND_COMMAND 8
#define SWTPM_TCG_HEADER_SIZE 9
#define SWTPM_TCG_TRAILER_SIZE 4

typedef struct SwtpmDataFrame {
    bool tcg_header;        /* wrapped: answer with the mssim framing */
    uint8_t locality;       /* from the TCG header; 0 when raw */
    size_t cmd_offset;      /* where the TPM command starts in the buffer */
    uint32_t cmd_len;
    size_t frame_len;       /* the bytes the frame takes in all */
    size_t needed;          /* SWTPM_PARSE_NEED_MORE */
} SwtpmDataFrame;

/*
 * One frame at the start of @buf[0..@len) whose TPM command may be at most
 * @max_cmd bytes. ERROR when a size is below a header or above @max_cmd:
 * the channel cannot be resynchronised then.
 */
SwtpmParseStatus swtpm_data_parse(const uint8_t *buf, size_t len,
                                  uint32_t max_cmd, SwtpmDataFrame *frame);
/* The mssim framing around a response of @resp_len bytes. */
size_t swtpm_data_encode_tcg_prefix(uint8_t *out, size_t out_len,
                                    uint32_t resp_len);
size_t swtpm_data_encode_tcg_trailer(uint8_t *out, size_t out_len);

#endif
