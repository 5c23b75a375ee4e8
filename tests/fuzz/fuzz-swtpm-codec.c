/*
 * The swtpm socket server's codec (export/swtpm/swtpm-codec.c) on hostile
 * bytes: the input is split at its first byte into a control-channel part
 * and a data-channel part, each parsed the way the server consumes its
 * buffers, with answers encoded for what parsed; the whole input is also
 * parsed as one data channel.
 */
#include "fuzz-util.h"
#include "export/swtpm-codec.h"

static void answer(const SwtpmCtrlRequest *r)
{
    uint8_t out[64];

    swtpm_ctrl_cmd_name(r->cmd);
    swtpm_ctrl_cmd_cap(r->cmd);
    swtpm_ctrl_encode_result(out, sizeof(out), r->result);
    swtpm_ctrl_encode_caps(out, sizeof(out), 0x1fffff);
    swtpm_ctrl_encode_buffersize(out, sizeof(out), 0, r->u.buffersize, 128, 4096);
    swtpm_ctrl_encode_stateblob_header(out, sizeof(out), 0, 0, r->u.get_state.offset,
                                       r->u.get_state.type);
    swtpm_ctrl_encode_established(out, sizeof(out), 0, r->u.locality & 1);
    swtpm_ctrl_encode_config(out, sizeof(out), 0, r->u.init_flags);
}

/*
 * The server's way (swtpm-server.c): each read appends to the buffer, which
 * is parsed whole; an answered request, good or bad, empties it. The control
 * part is a run of reads, each a length byte and that many bytes.
 */
static void control(const uint8_t *p, size_t len)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    FuzzInput in = { p, len };

    while (in.left) {
        size_t n;
        const uint8_t *chunk = fuzz_bytes(&in, fuzz_u8(&in), &n);
        SwtpmCtrlRequest r;

        if (!n) {
            continue; /* a read of nothing is the peer gone, never parsed */
        }
        g_byte_array_append(buf, chunk, n);
        memset(&r, 0, sizeof(r));
        if (swtpm_ctrl_parse(buf->data, buf->len, &r) == SWTPM_PARSE_NEED_MORE) {
            if (r.needed <= buf->len) {
                abort(); /* asked for no more than it has: it would never answer */
            }
            continue;
        }
        answer(&r);
        g_byte_array_set_size(buf, 0);
    }
}

static void data_channel(const uint8_t *p, size_t len, uint32_t max)
{
    while (len) {
        SwtpmDataFrame f;
        uint8_t out[16];

        memset(&f, 0, sizeof(f));
        if (swtpm_data_parse(p, len, max, &f) != SWTPM_PARSE_OK) {
            return;
        }
        if (f.frame_len == 0 || f.frame_len > len ||
            f.cmd_offset + f.cmd_len > f.frame_len) {
            /* A frame the parser accepted must lie inside the buffer. */
            abort();
        }
        if (f.tcg_header) {
            swtpm_data_encode_tcg_prefix(out, sizeof(out), f.cmd_len);
            swtpm_data_encode_tcg_trailer(out, sizeof(out));
        }
        p += f.frame_len;
        len -= f.frame_len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t split;

    if (size < 1) {
        return 0;
    }
    split = MIN((size_t)data[0] * 64, size - 1);
    control(data + 1, split);
    data_channel(data + 1 + split, size - 1 - split, 4096);
    data_channel(data + 1, size - 1, SWTPM_CTRL_DATA_MAX);
    return 0;
}
