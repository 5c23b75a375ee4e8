/*
 * monitor/qmp.c without sockets: JSON framing and command dispatch, with
 * malformed and hostile input, and the machine's commands behind it.
 */
#include "qemu/osdep.h"
#include "monitor/qmp.h"
#include "sysemu/qmp-cmds.h"
#include "sysemu/runstate.h"
#include "sysemu/tpm_backend.h"

#include <json-glib/json-glib.h>

typedef struct Collected {
    GPtrArray *texts;     /* "T:<json>" or "E:<error>" */
} Collected;

static void collect(const char *json, size_t len, const char *error,
                    void *opaque)
{
    Collected *c = opaque;

    if (error) {
        g_ptr_array_add(c->texts, g_strdup_printf("E:%s", error));
    } else {
        g_ptr_array_add(c->texts, g_strdup_printf("T:%.*s", (int)len, json));
    }
}

static GPtrArray *frame(const char *input, size_t chunk)
{
    Collected c = { g_ptr_array_new_with_free_func(g_free) };
    QmpStreamParser *p = qmp_stream_parser_new(collect, &c);
    size_t len = strlen(input);

    for (size_t off = 0; off < len; off += chunk) {
        qmp_stream_parser_feed(p, input + off, MIN(chunk, len - off));
    }
    qmp_stream_parser_flush(p);
    qmp_stream_parser_free(p);
    return c.texts;
}

static void test_framing_splits(void)
{
    const char *in = "{\"execute\": \"a\"}\n  {\"execute\": \"b\", "
                     "\"arguments\": {\"x\": [1, {\"y\": \"}{][\"}]}}"
                     "{\"q\": \"\\\"}\"}";
    /* Whatever the chunking, the same three texts come out. */
    static const size_t chunks[] = { 1, 2, 3, 7, 4096 };

    for (unsigned i = 0; i < G_N_ELEMENTS(chunks); i++) {
        g_autoptr(GPtrArray) t = frame(in, chunks[i]);
        g_assert_cmpuint(t->len, ==, 3);
        g_assert_cmpstr(t->pdata[0], ==, "T:{\"execute\": \"a\"}");
        g_assert_cmpstr(t->pdata[1], ==,
                        "T:{\"execute\": \"b\", \"arguments\": {\"x\": "
                        "[1, {\"y\": \"}{][\"}]}}");
        g_assert_cmpstr(t->pdata[2], ==, "T:{\"q\": \"\\\"}\"}");
    }
}

static void test_framing_stray_and_scalars(void)
{
    g_autoptr(GPtrArray) t = frame("} 42 \"a b\" ]{}", 1);

    g_assert_cmpuint(t->len, ==, 5);
    g_assert_true(g_str_has_prefix(t->pdata[0], "E:JSON parse error"));
    g_assert_cmpstr(t->pdata[1], ==, "T:42");
    g_assert_cmpstr(t->pdata[2], ==, "T:\"a b\"");
    g_assert_true(g_str_has_prefix(t->pdata[3], "E:JSON parse error"));
    g_assert_cmpstr(t->pdata[4], ==, "T:{}");
}

static void test_framing_limits(void)
{
    GString *deep = g_string_new(NULL);
    g_autoptr(GPtrArray) t1 = NULL;
    g_autoptr(GPtrArray) t2 = NULL;
    g_autofree char *big = NULL;

    for (int i = 0; i < QMP_MAX_DEPTH + 10; i++) {
        g_string_append_c(deep, '[');
    }
    g_string_append(deep, "\n{\"execute\": \"after\"}");
    t1 = frame(deep->str, 100);
    g_assert_cmpuint(t1->len, ==, 2);
    g_assert_cmpstr(t1->pdata[0], ==, "E:JSON parse error, nesting too deep");
    g_assert_cmpstr(t1->pdata[1], ==, "T:{\"execute\": \"after\"}");
    g_string_free(deep, TRUE);

    big = g_strdup_printf("{\"a\": \"%0*d\"}\n{}", QMP_MAX_MESSAGE, 0);
    t2 = frame(big, 65536);
    g_assert_cmpuint(t2->len, ==, 2);
    g_assert_cmpstr(t2->pdata[0], ==, "E:JSON parse error, message too large");
    g_assert_cmpstr(t2->pdata[1], ==, "T:{}");
}

static JsonObject *parse_reply(const char *reply, JsonParser *parser)
{
    g_assert_nonnull(reply);
    g_assert_true(json_parser_load_from_data(parser, reply, -1, NULL));
    g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
    return json_node_get_object(json_parser_get_root(parser));
}

/* Dispatches @json and checks an error reply of @klass containing @desc. */
static void expect_error(QmpSession *s, const char *json, const char *klass,
                         const char *desc)
{
    g_autofree char *reply = qmp_session_dispatch(s, json, strlen(json), NULL);
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *o = parse_reply(reply, parser);
    JsonObject *e;

    g_assert_true(json_object_has_member(o, "error"));
    e = json_object_get_object_member(o, "error");
    g_assert_cmpstr(json_object_get_string_member(e, "class"), ==, klass);
    if (!strstr(json_object_get_string_member(e, "desc"), desc)) {
        g_error("reply %s lacks '%s'", reply, desc);
    }
}

/* Dispatches @json and returns the "return" member as JSON text. */
static char *expect_return(QmpSession *s, const char *json)
{
    g_autofree char *reply = qmp_session_dispatch(s, json, strlen(json), NULL);
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *o = parse_reply(reply, parser);
    g_autoptr(JsonGenerator) gen = json_generator_new();

    if (!json_object_has_member(o, "return")) {
        g_error("expected a return for %s, got %s", json, reply);
    }
    json_generator_set_root(gen, json_object_get_member(o, "return"));
    return json_generator_to_data(gen, NULL);
}

static QmpSession *negotiated_session(void)
{
    QmpSession *s = qmp_session_new();
    g_autofree char *r = expect_return(s, "{\"execute\": \"qmp_capabilities\"}");

    g_assert_cmpstr(r, ==, "{}");
    g_assert_true(qmp_session_negotiated(s));
    return s;
}

static void test_capabilities_first(void)
{
    QmpSession *s = qmp_session_new();

    expect_error(s, "{\"execute\": \"query-status\"}", "CommandNotFound",
                 "Expecting capabilities negotiation with 'qmp_capabilities'");
    g_assert_false(qmp_session_negotiated(s));
    expect_error(s, "{\"execute\": \"qmp_capabilities\", \"arguments\": "
                 "{\"enable\": [\"oob\"]}}", "GenericError",
                 "Parameter 'enable' is unexpected");
    g_free(expect_return(s, "{\"execute\": \"qmp_capabilities\"}"));
    expect_error(s, "{\"execute\": \"qmp_capabilities\"}", "CommandNotFound",
                 "already complete");
    qmp_session_free(s);
}

static void test_malformed(void)
{
    QmpSession *s = negotiated_session();
    static const char *const bad_json[] = {
        "{", "{\"execute\": }", "{\"execute\" \"x\"}", "nul", "{'a': 1",
        "\xff\xfe", "{\"a\": \"\xc3\x28\"}",
    };
    g_autofree char *err_reply = NULL;

    for (unsigned i = 0; i < G_N_ELEMENTS(bad_json); i++) {
        expect_error(s, bad_json[i], "GenericError", "JSON parse error");
    }
    expect_error(s, "[1, 2]", "GenericError", "QMP input must be a JSON object");
    expect_error(s, "42", "GenericError", "QMP input must be a JSON object");
    expect_error(s, "{}", "GenericError", "QMP input lacks member 'execute'");
    expect_error(s, "{\"execute\": 1}", "GenericError",
                 "'execute' must be a string");
    expect_error(s, "{\"execute\": \"query-status\", \"arguments\": []}",
                 "GenericError", "'arguments' must be an object");
    expect_error(s, "{\"execute\": \"query-status\", \"foo\": 1}",
                 "GenericError", "QMP input member 'foo' is unexpected");
    expect_error(s, "{\"execute\": \"no-such-command\"}", "CommandNotFound",
                 "The command no-such-command has not been found");
    expect_error(s, "{\"execute\": \"query-status\", \"arguments\": "
                 "{\"x\": 1}}", "GenericError", "Parameter 'x' is unexpected");
    /* A NUL inside the text is refused, not truncated. */
    err_reply = qmp_session_dispatch(s, "{\"execute\": \"quit\"}\0x", 21,
                                     NULL);
    g_assert_nonnull(strstr(err_reply, "JSON parse error"));
    g_assert_false(qemu_shutdown_requested());
    qmp_session_free(s);
}

static void test_framing_error_reply(void)
{
    QmpSession *s = negotiated_session();
    g_autofree char *r = qmp_session_dispatch(s, NULL, 0,
                                              "JSON parse error, x");

    g_assert_cmpstr(r, ==, "{\"error\": {\"class\": \"GenericError\", "
                    "\"desc\": \"JSON parse error, x\"}}");
    qmp_session_free(s);
}

static void test_id_echo(void)
{
    QmpSession *s = negotiated_session();
    static const char *const ids[] = {
        "7", "\"abc\"", "{\"a\":[1,2]}", "null",
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(ids); i++) {
        g_autofree char *in = g_strdup_printf(
            "{\"execute\": \"query-name\", \"id\": %s}", ids[i]);
        g_autofree char *reply = qmp_session_dispatch(s, in, strlen(in), NULL);
        g_autofree char *bad = g_strdup_printf(
            "{\"execute\": \"nope\", \"id\": %s}", ids[i]);
        g_autofree char *err = qmp_session_dispatch(s, bad, strlen(bad), NULL);
        g_autofree char *want = g_strdup_printf(", \"id\": %s}", ids[i]);

        g_assert_true(g_str_has_suffix(reply, want));
        g_assert_true(g_str_has_suffix(err, want));
    }
    qmp_session_free(s);
}

static void test_queries(void)
{
    QmpSession *s = negotiated_session();
    g_autofree char *version = expect_return(s, "{\"execute\": \"query-version\"}");
    g_autofree char *models = expect_return(s, "{\"execute\": \"query-tpm-models\"}");
    g_autofree char *types = expect_return(s, "{\"execute\": \"query-tpm-types\"}");
    g_autofree char *name1 = expect_return(s, "{\"execute\": \"query-name\"}");
    g_autofree char *name2 = NULL;
    g_autofree char *cmds = expect_return(s, "{\"execute\": \"query-commands\"}");

    g_assert_nonnull(strstr(version, "\"qemu\":{\"micro\":"));
    g_assert_nonnull(strstr(version, "\"package\":\"qtpm " QTPM_VERSION "\""));
    g_assert_cmpstr(models, ==, "[\"tpm-tis\"]");
    g_assert_cmpstr(types, ==, "[\"libtpms\",\"null\"]");
    g_assert_cmpstr(name1, ==, "{}");
    qemu_set_vm_name("vm \"one\"");
    name2 = expect_return(s, "{\"execute\": \"query-name\"}");
    g_assert_cmpstr(name2, ==, "{\"name\":\"vm \\\"one\\\"\"}");
    qemu_set_vm_name(NULL);
    g_assert_nonnull(strstr(cmds, "{\"name\":\"query-tpm\"}"));
    g_assert_nonnull(strstr(cmds, "{\"name\":\"qmp_capabilities\"}"));
    qmp_session_free(s);
}

static void test_query_tpm(void)
{
    QmpSession *s = negotiated_session();
    g_autoptr(GHashTable) opts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autofree char *empty = expect_return(s, "{\"execute\": \"query-tpm\"}");
    g_autofree char *one = NULL;
    TPMBackend *tb;

    g_assert_cmpstr(empty, ==, "[]");
    g_hash_table_insert(opts, g_strdup("type"), g_strdup("null"));
    g_hash_table_insert(opts, g_strdup("id"), g_strdup("tpm0"));
    tb = tpm_backend_new("null", "tpm0", opts, NULL);
    g_assert_nonnull(tb);
    tpm_backend_set_frontend(tb, "tpm-tis", NULL, NULL);
    one = expect_return(s, "{\"execute\": \"query-tpm\"}");
    g_assert_cmpstr(one, ==, "[{\"model\":\"tpm-tis\",\"id\":\"tpm0\","
                    "\"options\":{\"type\":\"null\",\"data\":"
                    "{\"version\":\"2.0\"}}}]");
    tpm_backend_free(tb);
    qmp_session_free(s);
}

static void reset_counter(void *opaque)
{
    (*(int *)opaque)++;
}

static void test_run_state(void)
{
    QmpSession *s = negotiated_session();
    int resets = 0;
    g_autofree char *st = NULL;

    runstate_set(RUN_STATE_PRELAUNCH);
    st = expect_return(s, "{\"execute\": \"query-status\"}");
    g_assert_cmpstr(st, ==, "{\"status\":\"prelaunch\",\"singlestep\":false,"
                    "\"running\":false}");
    g_free(expect_return(s, "{\"execute\": \"stop\"}"));
    g_assert_cmpint(runstate_get(), ==, RUN_STATE_PRELAUNCH);
    g_free(expect_return(s, "{\"execute\": \"cont\"}"));
    g_assert_true(runstate_is_running());
    g_free(expect_return(s, "{\"execute\": \"stop\"}"));
    g_assert_cmpint(runstate_get(), ==, RUN_STATE_PAUSED);
    g_free(expect_return(s, "{\"execute\": \"cont\"}"));
    g_assert_true(runstate_is_running());

    runstate_set(RUN_STATE_INMIGRATE);
    expect_error(s, "{\"execute\": \"cont\"}", "GenericError",
                 "Migration is not finalized yet");
    runstate_set(RUN_STATE_RUNNING);

    qemu_register_reset(reset_counter, &resets);
    g_free(expect_return(s, "{\"execute\": \"system_reset\"}"));
    /* The reset runs from the main loop, after the reply. */
    g_assert_cmpint(resets, ==, 0);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    g_assert_cmpint(resets, ==, 1);
    qemu_unregister_reset(reset_counter, &resets);

    g_assert_false(qemu_shutdown_requested());
    g_free(expect_return(s, "{\"execute\": \"quit\"}"));
    g_assert_true(qemu_shutdown_requested());
    qmp_session_free(s);
}

static char *cmd_fails_generic(const char *args, GError **errp)
{
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_FAILED, "it failed");
    return NULL;
}

static char *cmd_fails_not_found(const char *args, GError **errp)
{
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND, "no such thing");
    return NULL;
}

static char *cmd_echo(const char *args, GError **errp)
{
    return g_strdup(args);
}

static void test_registered_command(void)
{
    QmpSession *s = negotiated_session();
    g_autofree char *r1 = NULL;
    g_autofree char *r2 = NULL;

    qmp_register_command("x-fail", cmd_fails_generic);
    qmp_register_command("x-missing", cmd_fails_not_found);
    qmp_register_command("x-echo", cmd_echo);
    expect_error(s, "{\"execute\": \"x-fail\"}", "GenericError", "it failed");
    expect_error(s, "{\"execute\": \"x-missing\"}", "CommandNotFound",
                 "no such thing");
    r1 = expect_return(s, "{\"execute\": \"x-echo\"}");
    g_assert_cmpstr(r1, ==, "{}");
    r2 = expect_return(s, "{\"execute\": \"x-echo\", \"arguments\": "
                       "{\"uri\": \"unix:/a,b\"}}");
    g_assert_cmpstr(r2, ==, "{\"uri\":\"unix:/a,b\"}");
    qmp_unregister_command("x-fail");
    qmp_unregister_command("x-missing");
    qmp_unregister_command("x-echo");
    expect_error(s, "{\"execute\": \"x-echo\"}", "CommandNotFound",
                 "has not been found");
    qmp_session_free(s);
}

static void test_events(void)
{
    g_autofree char *e1 = qmp_build_event("STOP", NULL);
    g_autofree char *e2 = qmp_build_event("RESET", "{\"guest\": false}");
    g_autoptr(JsonParser) p1 = json_parser_new();
    g_autoptr(JsonParser) p2 = json_parser_new();
    JsonObject *o1 = parse_reply(e1, p1);
    JsonObject *o2 = parse_reply(e2, p2);
    JsonObject *ts = json_object_get_object_member(o1, "timestamp");

    g_assert_cmpstr(json_object_get_string_member(o1, "event"), ==, "STOP");
    g_assert_false(json_object_has_member(o1, "data"));
    g_assert_cmpint(json_object_get_int_member(ts, "seconds"), >, 1600000000);
    g_assert_cmpint(json_object_get_int_member(ts, "microseconds"), <,
                    1000000);
    g_assert_false(json_object_get_boolean_member(
        json_object_get_object_member(o2, "data"), "guest"));
}

static void test_greeting(void)
{
    g_autofree char *g = qmp_greeting();
    g_autoptr(JsonParser) p = json_parser_new();
    JsonObject *o = json_object_get_object_member(parse_reply(g, p), "QMP");

    g_assert_cmpuint(json_array_get_length(
        json_object_get_array_member(o, "capabilities")), ==, 0);
    g_assert_cmpstr(json_object_get_string_member(
        json_object_get_object_member(o, "version"), "package"), ==,
        "qtpm " QTPM_VERSION);
}

/* Random bytes through framing and dispatch: replies, never a crash. */
static void test_random_input(void)
{
    QmpSession *s = negotiated_session();
    GRand *r = g_rand_new_with_seed(4711);
    static const char alphabet[] = "{}[]\":,\\ \n0123456789abcdeflnrstux-";

    for (int round = 0; round < 2000; round++) {
        Collected c = { g_ptr_array_new_with_free_func(g_free) };
        QmpStreamParser *p = qmp_stream_parser_new(collect, &c);
        char buf[256];
        int n = g_rand_int_range(r, 1, sizeof(buf));

        for (int i = 0; i < n; i++) {
            buf[i] = g_rand_boolean(r)
                         ? alphabet[g_rand_int_range(r, 0, sizeof(alphabet) - 1)]
                         : (char)g_rand_int_range(r, 0, 256);
        }
        qmp_stream_parser_feed(p, buf, n);
        qmp_stream_parser_flush(p);
        for (guint i = 0; i < c.texts->len; i++) {
            const char *t = c.texts->pdata[i];
            g_autofree char *reply =
                t[0] == 'T' ? qmp_session_dispatch(s, t + 2, strlen(t + 2), NULL)
                            : qmp_session_dispatch(s, NULL, 0, t + 2);
            g_assert_true(g_str_has_prefix(reply, "{\"error\"") ||
                          g_str_has_prefix(reply, "{\"return\""));
        }
        qmp_stream_parser_free(p);
        g_ptr_array_unref(c.texts);
    }
    g_rand_free(r);
    g_assert_false(qemu_shutdown_requested());
    qmp_session_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qmp_init_commands();
    qemu_register_system_commands();
    g_test_add_func("/qmp/random-input", test_random_input);
    g_test_add_func("/qmp/framing/splits", test_framing_splits);
    g_test_add_func("/qmp/framing/stray-and-scalars",
                    test_framing_stray_and_scalars);
    g_test_add_func("/qmp/framing/limits", test_framing_limits);
    g_test_add_func("/qmp/capabilities-first", test_capabilities_first);
    g_test_add_func("/qmp/framing-error-reply", test_framing_error_reply);
    g_test_add_func("/qmp/id-echo", test_id_echo);
    g_test_add_func("/qmp/queries", test_queries);
    g_test_add_func("/qmp/query-tpm", test_query_tpm);
    g_test_add_func("/qmp/registered-command", test_registered_command);
    g_test_add_func("/qmp/events", test_events);
    g_test_add_func("/qmp/greeting", test_greeting);
    g_test_add_func("/qmp/malformed", test_malformed);
    g_test_add_func("/qmp/run-state", test_run_state);
    return g_test_run();
}
