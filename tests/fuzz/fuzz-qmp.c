/*
 * QMP from a hostile client: the input is the byte stream of one
 * connection, fed to the stream parser in pieces (each piece's length is the
 * byte before it), and every message it frames is dispatched in one session
 * with the system commands registered, as the monitor does. Every reply is
 * one JSON object on one line.
 */
#include "fuzz-util.h"
#include "monitor/qmp.h"
#include "sysemu/qmp-cmds.h"

static void on_message(const char *json, size_t len, const char *error, void *opaque)
{
    QmpSession *s = opaque;
    g_autofree char *reply = qmp_session_dispatch(s, json, len, error);

    if (!reply || reply[0] != '{' || strchr(reply, '\n')) {
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    qmp_init_commands();
    qemu_register_system_commands();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    QmpSession *s = qmp_session_new();
    QmpStreamParser *p = qmp_stream_parser_new(on_message, s);
    FuzzInput in = { data, size };

    g_free(qmp_greeting());

    while (in.left) {
        size_t n;
        const uint8_t *piece = fuzz_bytes(&in, fuzz_u8(&in) + 1, &n);

        qmp_stream_parser_feed(p, (const char *)piece, n);
    }
    qmp_stream_parser_flush(p);
    qmp_stream_parser_free(p);
    qmp_session_free(s);
    return 0;
}
