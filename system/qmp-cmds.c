/*
 * The machine's QMP commands (docs/qmp.md "Commands"): run state, name and
 * TPM queries. Each returns the "return" value as a JSON text; the monitor
 * only dispatches to them.
 */
#include "qemu/osdep.h"
#include "export/swtpm-server.h"
#include "monitor/qmp.h"
#include "qemu/tpm-blob.h"
#include "sysemu/qmp-cmds.h"
#include "sysemu/runstate.h"
#include "sysemu/tpm_backend.h"
#include "sysemu/tpm_frontend.h"

#include <json-glib/json-glib.h>

static char *builder_to_string(JsonBuilder *b)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = json_builder_get_root(b);

    json_generator_set_root(gen, root);
    return json_generator_to_data(gen, NULL);
}

static char *qmp_query_status(const char *args, GError **errp)
{
    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    return g_strdup_printf("{\"status\": \"%s\", \"singlestep\": false, "
                           "\"running\": %s}", runstate_name(runstate_get()),
                           runstate_is_running() ? "true" : "false");
}

static char *qmp_query_name(const char *args, GError **errp)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    json_builder_begin_object(b);
    if (qemu_get_vm_name()) {
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, qemu_get_vm_name());
    }
    json_builder_end_object(b);
    return builder_to_string(b);
}

static void add_peer_info(JsonBuilder *b, const char *name,
                          const SwtpmPeerInfo *p, const char *via)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "connected");
    json_builder_add_boolean_value(b, p->connected);
    if (via) {
        json_builder_set_member_name(b, "via");
        json_builder_add_string_value(b, via);
    }
    if (p->has_cred) {
        json_builder_set_member_name(b, "pid");
        json_builder_add_int_value(b, p->pid);
        json_builder_set_member_name(b, "uid");
        json_builder_add_int_value(b, p->uid);
        json_builder_set_member_name(b, "gid");
        json_builder_add_int_value(b, p->gid);
    }
    if (p->host) {
        json_builder_set_member_name(b, "host");
        json_builder_add_string_value(b, p->host);
        json_builder_set_member_name(b, "port");
        json_builder_add_int_value(b, p->port);
    }
    json_builder_end_object(b);
}

static void add_blob_list(JsonBuilder *b, const char *name, unsigned mask)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (int t = TPM_STATE_BLOB_PERMANENT; t <= TPM_STATE_BLOB_TYPE_MAX; t++) {
        if (mask & (1u << t)) {
            json_builder_add_string_value(b, tpm_state_blob_label(t));
        }
    }
    json_builder_end_array(b);
}

/* An exported TPM's entry also says who is connected: docs/qmp.md. */
static void add_export_info(JsonBuilder *b, const char *tpmdev)
{
    SwtpmExportInfo x;
    const char *via = NULL;

    if (!swtpm_export_query(tpmdev, &x)) {
        return;
    }
    if (x.data_channel.connected) {
        via = x.data_passed ? "set-datafd" : "listener";
    }
    json_builder_set_member_name(b, "export");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "swtpm");
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, x.id);
    json_builder_set_member_name(b, "ctrl");
    json_builder_add_string_value(b, x.ctrl);
    if (x.data) {
        json_builder_set_member_name(b, "data");
        json_builder_add_string_value(b, x.data);
    }
    json_builder_set_member_name(b, "tpm-running");
    json_builder_add_boolean_value(b, x.tpm_running);
    add_peer_info(b, "client", &x.client, NULL);
    add_peer_info(b, "data-channel", &x.data_channel, via);
    if (x.blobs_set || x.blobs_refused) {
        json_builder_set_member_name(b, "state-blobs");
        json_builder_begin_object(b);
        add_blob_list(b, "set", x.blobs_set);
        add_blob_list(b, "refused", x.blobs_refused);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);
    swtpm_export_info_clear(&x);
}

static void add_tpm_info(JsonBuilder *b, const TPMBackendInfo *info)
{
    g_autoptr(GList) keys =
        g_list_sort(g_hash_table_get_keys(info->options), (GCompareFunc)strcmp);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "model");
    json_builder_add_string_value(b, info->model);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, info->id);
    json_builder_set_member_name(b, "options");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, info->type);
    json_builder_set_member_name(b, "data");
    json_builder_begin_object(b);
    for (GList *l = keys; l; l = l->next) {
        json_builder_set_member_name(b, l->data);
        json_builder_add_string_value(b, g_hash_table_lookup(info->options, l->data));
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
    add_export_info(b, info->id);
    json_builder_end_object(b);
}

static char *qmp_query_tpm(const char *args, GError **errp)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    json_builder_begin_array(b);
    for (GList *l = tpm_backend_list(); l; l = l->next) {
        TPMBackendInfo info;

        tpm_backend_query(l->data, &info);
        /* As QEMU: a TPM is listed once a frontend device uses it. */
        if (info.model) {
            add_tpm_info(b, &info);
        }
        tpm_backend_info_clear(&info);
    }
    json_builder_end_array(b);
    return builder_to_string(b);
}

static char *qmp_query_tpm_models(const char *args, GError **errp)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    const TPMFrontendClass *const *classes = tpm_frontend_classes();

    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    json_builder_begin_array(b);
    for (int i = 0; classes[i]; i++) {
        json_builder_add_string_value(b, classes[i]->model);
    }
    json_builder_end_array(b);
    return builder_to_string(b);
}

static char *qmp_query_tpm_types(const char *args, GError **errp)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    const TPMBackendClass *const *classes = tpm_backend_classes();

    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    json_builder_begin_array(b);
    for (int i = 0; classes[i]; i++) {
        json_builder_add_string_value(b, classes[i]->type);
    }
    json_builder_end_array(b);
    return builder_to_string(b);
}

static char *qmp_stop(const char *args, GError **errp)
{
    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    if (runstate_get() == RUN_STATE_PRELAUNCH) {
        /* As QEMU: stop before the first cont keeps the machine unstarted. */
        return g_strdup("{}");
    }
    vm_stop();
    return g_strdup("{}");
}

static char *qmp_cont(const char *args, GError **errp)
{
    if (!qmp_args_check_none(args, errp) || vm_start(errp) < 0) {
        return NULL;
    }
    return g_strdup("{}");
}

static char *qmp_system_reset(const char *args, GError **errp)
{
    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    qemu_system_reset_request();
    return g_strdup("{}");
}

static char *qmp_quit(const char *args, GError **errp)
{
    if (!qmp_args_check_none(args, errp)) {
        return NULL;
    }
    qemu_system_shutdown_request("host-qmp-quit");
    return g_strdup("{}");
}

void qemu_register_system_commands(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    qmp_register_command("query-status", qmp_query_status);
    qmp_register_command("query-name", qmp_query_name);
    qmp_register_command("query-tpm", qmp_query_tpm);
    qmp_register_command("query-tpm-models", qmp_query_tpm_models);
    qmp_register_command("query-tpm-types", qmp_query_tpm_types);
    qmp_register_command("stop", qmp_stop);
    qmp_register_command("cont", qmp_cont);
    qmp_register_command("system_reset", qmp_system_reset);
    qmp_register_command("quit", qmp_quit);
}
