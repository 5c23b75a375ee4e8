/*
 * qtpm-img: create, inspect, check, re-key, import, export and manufacture
 * qtpm state images. Manual: docs/qtpm-img.md.
 *
 * Every command reads and checks all its inputs (key files, swtpm files)
 * before it opens the image for writing, and the NVRAM store checks the key
 * before it writes, so an error leaves the image as it was.
 */
#include "qemu/osdep.h"
#include "block/block.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"
#include "crypto/pbkdf.h"
#include "crypto/secret.h"
#include "manufacture/manufacture.h"
#include "nvram/nvram.h"
#include "qemu/error-report.h"
#include "qemu/swtpm-blob.h"

#include <json-glib/json-glib.h>
#include <sys/prctl.h>

#define EXIT_DAMAGED 2
#define DEFAULT_SIZE (1024 * 1024)
/* Readers wait out a commit in progress; a commit takes milliseconds. */
#define READER_LOCK_TIMEOUT_MS 30000

typedef struct KeyOptions {
    char *file;
    char *format;
    char *passphrase_file;
} KeyOptions;

/* A key for the NVRAM store and the secret that holds its bytes. */
typedef struct LoadedKey {
    QCryptoSecret *secret;
    QCryptoKey key;
} LoadedKey;

/* Prints the error as the one line every failure gives; returns 1. */
static int report(GError *err)
{
    error_report_err(err);
    return 1;
}

static int fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vreport(fmt, ap);
    va_end(ap);
    return 1;
}

static void loaded_key_clear(LoadedKey *k)
{
    qcrypto_secret_free(k->secret);
    k->secret = NULL;
    memset(&k->key, 0, sizeof(k->key));
}

/*
 * Loads the key options into an QCryptoKey (QCRYPTO_KEY_NONE without any).
 * @prefix is "" or "new-": the option names the sentences cite.
 */
static bool load_key(const KeyOptions *o, const char *prefix, LoadedKey *out,
                     GError **errp)
{
    g_autoptr(GHashTable) opts = NULL;
    g_autofree char *id = NULL;
    const uint8_t *data;
    size_t len;
    bool pass = o->passphrase_file != NULL;

    memset(out, 0, sizeof(*out));
    if (o->file && o->passphrase_file) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "give either --%skey-file or --%spassphrase-file, not both",
                    prefix, prefix);
        return false;
    }
    if (o->format && !o->file) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--%skey-format needs --%skey-file", prefix, prefix);
        return false;
    }
    if (!o->file && !o->passphrase_file) {
        out->key.kind = QCRYPTO_KEY_NONE;
        return true;
    }
    if (o->format && strcmp(o->format, "raw") && strcmp(o->format, "hex") &&
        strcmp(o->format, "base64")) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--%skey-format '%s' is not raw, hex or base64", prefix,
                    o->format);
        return false;
    }

    /* the secret's id prefixes its error sentences: name the option */
    id = g_strdup_printf("--%s%s", prefix,
                         pass ? "passphrase-file" : "key-file");
    opts = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(opts, "id", id);
    g_hash_table_insert(opts, "file", pass ? o->passphrase_file : o->file);
    g_hash_table_insert(opts, "format",
                        pass ? "raw" : (o->format ? o->format : "raw"));
    out->secret = qcrypto_secret_new(opts, errp);
    if (!out->secret) {
        return false;
    }
    data = qcrypto_secret_data(out->secret, &len);
    if (!pass && len != 32) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': a key is 32 bytes, this one has %zu", o->file, len);
        loaded_key_clear(out);
        return false;
    }
    out->key.kind = pass ? QCRYPTO_KEY_PASSPHRASE : QCRYPTO_KEY_RAW;
    out->key.data = data;
    out->key.len = len;
    return true;
}

static GOptionEntry *key_entries(KeyOptions *o)
{
    GOptionEntry e[] = {
        { "key-file", 0, 0, G_OPTION_ARG_FILENAME, &o->file,
          "the image's 32-byte key", "FILE" },
        { "key-format", 0, 0, G_OPTION_ARG_STRING, &o->format,
          "raw (default), hex or base64", "FMT" },
        { "passphrase-file", 0, 0, G_OPTION_ARG_FILENAME,
          &o->passphrase_file, "the image's passphrase", "FILE" },
        { NULL },
    };
    return g_memdup2(e, sizeof(e));
}

static void key_options_free(KeyOptions *o)
{
    g_free(o->file);
    g_free(o->format);
    g_free(o->passphrase_file);
}

/* Parses the options of one command; leaves the operands in argv. */
static bool parse_args(const char *cmd, const char *operands,
                       GOptionEntry *entries, KeyOptions *keys, int *argc,
                       char ***argv, int n_operands, GError **errp)
{
    g_autofree char *param = g_strdup_printf("%s %s", cmd, operands);
    GOptionContext *ctx = g_option_context_new(param);
    g_autofree GOptionEntry *ke = keys ? key_entries(keys) : NULL;
    bool ok;

    g_option_context_set_help_enabled(ctx, true);
    if (entries) {
        g_option_context_add_main_entries(ctx, entries, NULL);
    }
    if (ke) {
        GOptionGroup *g = g_option_group_new("key", "Key options:",
                                             "Show key options", NULL, NULL);
        g_option_group_add_entries(g, ke);
        g_option_context_add_group(ctx, g);
    }
    ok = g_option_context_parse(ctx, argc, argv, errp);
    g_option_context_free(ctx);
    if (!ok) {
        return false;
    }
    for (int i = 1; i < *argc; i++) {
        if ((*argv)[i][0] == '-' && (*argv)[i][1] && strcmp((*argv)[i], "-")) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "%s: unknown option '%s'", cmd, (*argv)[i]);
            return false;
        }
    }
    if (*argc - 1 != n_operands) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "%s takes %s (see 'qtpm-img %s --help')", cmd, operands,
                    cmd);
        return false;
    }
    return true;
}

static bool parse_tpm_version(const char *s, int *out, GError **errp)
{
    if (!s || !strcmp(s, "2.0") || !strcmp(s, "2")) {
        *out = 2;
    } else if (!strcmp(s, "1.2")) {
        *out = 1;
    } else {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--tpm '%s' is not 2.0 or 1.2", s);
        return false;
    }
    return true;
}

static const char *tpm_version_str(int v)
{
    return v == 1 ? "1.2" : v == 2 ? "2.0" : "unknown";
}

/* Opens @path and the store in it; an owner opens it writable. */
static NvramStore *open_store(const char *path, const NvramOpenOptions *o,
                              BlockDriverState **bsp, GError **errp)
{
    BlockOpenOptions bo = { .format = NULL, .read_only = !o->owner };
    BlockDriverState *bs = bdrv_open(path, &bo, errp);
    NvramStore *s;

    if (!bs) {
        return NULL;
    }
    s = nvram_open(bs, o, errp);
    if (!s) {
        bdrv_close(bs);
        return NULL;
    }
    *bsp = bs;
    return s;
}

/*
 * Opens the store as a reader: shared access lock only, never writes.
 * @metadata_only: an encrypted image may open without its key (CRCs only).
 */
static NvramStore *open_reader(const char *path, const QCryptoKey *key,
                               bool metadata_only, BlockDriverState **bsp,
                               GError **errp)
{
    NvramOpenOptions o = {
        .key = *key,
        .owner = false,
        .format_blank = false,
        .lock_timeout_ms = READER_LOCK_TIMEOUT_MS,
        .allow_no_key = metadata_only && key->kind == QCRYPTO_KEY_NONE,
    };

    return open_store(path, &o, bsp, errp);
}

/* Opens the store as its owner; a store a running qtpm owns is refused. */
static NvramStore *open_owner(const char *path, const QCryptoKey *key,
                              bool format_blank, int tpm_version,
                              BlockDriverState **bsp, GError **errp)
{
    NvramOpenOptions o = {
        .key = *key,
        .owner = true,
        .format_blank = format_blank,
        /* create and import name the file they make a store in. */
        .format_probed_raw = format_blank,
        .tpm_version = tpm_version,
        .lock_timeout_ms = 0,
    };

    return open_store(path, &o, bsp, errp);
}

static void close_store(NvramStore *s, BlockDriverState *bs)
{
    if (s) {
        nvram_close(s);
    }
    if (bs) {
        bdrv_close(bs);
    }
}

/* ---- create ---------------------------------------------------------- */

typedef struct NewImage {
    bool created;       /* we made the file: remove it on failure */
    bool was_empty;     /* it existed with 0 bytes: truncate it back */
} NewImage;

static bool image_exists(const char *path, bool *empty)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        return false;
    }
    *empty = S_ISREG(st.st_mode) && st.st_size == 0;
    return true;
}

static void undo_new_image(const char *path, const NewImage *ni)
{
    if (ni->was_empty) {
        if (truncate(path, 0) < 0) {
            error_report("could not truncate '%s' back to 0 bytes: %s", path,
                         g_strerror(errno));
        }
    } else if (ni->created) {
        unlink(path);
    }
}

/*
 * Creates a qcow2 image with a formatted store and returns it opened as
 * owner. On failure nothing is left behind.
 */
static NvramStore *create_image(const char *path, uint64_t size,
                                int tpm_version, const QCryptoKey *key,
                                NewImage *ni, BlockDriverState **bsp,
                                GError **errp)
{
    Qcow2CreateOptions co = { .mode = 0600 };
    NvramStore *s;
    bool empty = false;

    memset(ni, 0, sizeof(*ni));
    if (image_exists(path, &empty)) {
        if (!empty) {
            g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                        "'%s' already exists and is not empty; refusing to "
                        "overwrite it", path);
            return NULL;
        }
        ni->was_empty = true;
    }
    if (qcow2_create(path, size, &co, errp) < 0) {
        if (!ni->was_empty) {
            unlink(path);
        }
        return NULL;
    }
    ni->created = true;
    if (chmod(path, 0600) < 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO,
                    "'%s': could not set mode 0600: %s", path,
                    g_strerror(errno));
        undo_new_image(path, ni);
        return NULL;
    }
    s = open_owner(path, key, true, tpm_version, bsp, errp);
    if (!s) {
        undo_new_image(path, ni);
    }
    return s;
}

static bool parse_size(const char *s, uint64_t *size, GError **errp)
{
    if (!s) {
        *size = DEFAULT_SIZE;
        return true;
    }
    if (!qemu_strtosz(s, size) || *size == 0) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--size '%s' is not a size (like 1M)", s);
        return false;
    }
    return true;
}

static int cmd_create(int argc, char **argv)
{
    KeyOptions ko = { 0 };
    g_autofree char *tpm = NULL, *size_str = NULL;
    GOptionEntry e[] = {
        { "tpm", 0, 0, G_OPTION_ARG_STRING, &tpm, "2.0 (default) or 1.2",
          "VER" },
        { "size", 0, 0, G_OPTION_ARG_STRING, &size_str,
          "virtual size (default 1M; the store grows when it must)", "SIZE" },
        { NULL },
    };
    GError *err = NULL;
    LoadedKey lk = { 0 };
    BlockDriverState *bs = NULL;
    NvramStore *s;
    NewImage ni;
    uint64_t size;
    int ver;
    int ret = 1;

    if (!parse_args("create", "IMAGE", e, &ko, &argc, &argv, 1, &err) ||
        !parse_tpm_version(tpm, &ver, &err) ||
        !parse_size(size_str, &size, &err) ||
        !load_key(&ko, "", &lk, &err)) {
        goto out;
    }
    s = create_image(argv[1], size, ver, &lk.key, &ni, &bs, &err);
    if (s) {
        close_store(s, bs);
        ret = 0;
    }
out:
    loaded_key_clear(&lk);
    key_options_free(&ko);
    return err ? report(err) : ret;
}

/* ---- info ------------------------------------------------------------ */

static const char *key_kind_str(const NvramInfo *info)
{
    if (!info->encrypted) {
        return "none";
    }
    return info->passphrase ? "passphrase" : "raw";
}

static void format_uuid(const uint8_t *u, char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
             u[10], u[11], u[12], u[13], u[14], u[15]);
}

static void print_info_human(const char *path, BlockDriverState *bs,
                             const NvramInfo *info)
{
    char uuid[37];

    format_uuid(info->uuid, uuid);
    printf("image: %s\n", path);
    printf("file format: %s\n", bdrv_get_format_name(bs));
    printf("store format version: %" PRIu32 "\n", info->format_version);
    if (!info->encrypted) {
        printf("encryption: none\n");
    } else if (info->passphrase) {
        printf("encryption: AES-256-GCM, passphrase (PBKDF2-HMAC-SHA256, "
               "%" PRIu32 " iterations)\n", info->kdf_iterations);
    } else {
        printf("encryption: AES-256-GCM, raw key\n");
    }
    printf("TPM version: %s\n", tpm_version_str(info->tpm_version));
    printf("uuid: %s\n", uuid);
    printf("generation: %" PRIu64 " (directory slot %c)\n", info->generation,
           info->slot ? 'B' : 'A');
    printf("blobs: %u\n", info->n_blobs);
    for (unsigned i = 0; i < info->n_blobs; i++) {
        const NvramBlobInfo *b = &info->blobs[i];
        printf("  %-10s offset 0x%" PRIx64 " length %" PRIu32
               " crc32 0x%08" PRIx32 " generation %" PRIu64 "\n",
               tpm_state_blob_label(b->type), b->offset, b->length, b->crc32,
               b->generation);
    }
}

static void print_info_json(const char *path, BlockDriverState *bs,
                            const NvramInfo *info)
{
    g_autoptr(JsonBuilder) jb = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;
    char uuid[37];

    format_uuid(info->uuid, uuid);
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "filename");
    json_builder_add_string_value(jb, path);
    json_builder_set_member_name(jb, "format");
    json_builder_add_string_value(jb, bdrv_get_format_name(bs));
    json_builder_set_member_name(jb, "format-version");
    json_builder_add_int_value(jb, info->format_version);
    json_builder_set_member_name(jb, "encrypted");
    json_builder_add_boolean_value(jb, info->encrypted);
    json_builder_set_member_name(jb, "key");
    json_builder_add_string_value(jb, key_kind_str(info));
    if (info->encrypted && info->passphrase) {
        json_builder_set_member_name(jb, "kdf-iterations");
        json_builder_add_int_value(jb, info->kdf_iterations);
    }
    json_builder_set_member_name(jb, "tpm-version");
    json_builder_add_string_value(jb, tpm_version_str(info->tpm_version));
    json_builder_set_member_name(jb, "uuid");
    json_builder_add_string_value(jb, uuid);
    json_builder_set_member_name(jb, "generation");
    json_builder_add_int_value(jb, (gint64)info->generation);
    json_builder_set_member_name(jb, "slot");
    json_builder_add_string_value(jb, info->slot ? "B" : "A");
    json_builder_set_member_name(jb, "blobs");
    json_builder_begin_array(jb);
    for (unsigned i = 0; i < info->n_blobs; i++) {
        const NvramBlobInfo *b = &info->blobs[i];
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "type");
        json_builder_add_string_value(jb, tpm_state_blob_label(b->type));
        json_builder_set_member_name(jb, "offset");
        json_builder_add_int_value(jb, (gint64)b->offset);
        json_builder_set_member_name(jb, "length");
        json_builder_add_int_value(jb, b->length);
        json_builder_set_member_name(jb, "crc32");
        json_builder_add_int_value(jb, b->crc32);
        json_builder_set_member_name(jb, "generation");
        json_builder_add_int_value(jb, (gint64)b->generation);
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);
    json_builder_end_object(jb);

    root = json_builder_get_root(jb);
    json_generator_set_pretty(gen, true);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, NULL);
    printf("%s\n", text);
}

static int cmd_info(int argc, char **argv)
{
    KeyOptions ko = { 0 };
    g_autofree char *output = NULL;
    GOptionEntry e[] = {
        { "output", 0, 0, G_OPTION_ARG_STRING, &output,
          "human (default) or json", "FMT" },
        { NULL },
    };
    GError *err = NULL;
    LoadedKey lk = { 0 };
    BlockDriverState *bs = NULL;
    NvramStore *s = NULL;
    NvramInfo info;
    bool json = false;

    if (!parse_args("info", "IMAGE", e, &ko, &argc, &argv, 1, &err)) {
        goto out;
    }
    if (output && !strcmp(output, "json")) {
        json = true;
    } else if (output && strcmp(output, "human")) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--output '%s' is not human or json", output);
        goto out;
    }
    if (!load_key(&ko, "", &lk, &err)) {
        goto out;
    }
    s = open_reader(argv[1], &lk.key, true, &bs, &err);
    if (!s || nvram_get_info(s, &info, &err) < 0) {
        goto out;
    }
    if (json) {
        print_info_json(argv[1], bs, &info);
    } else {
        print_info_human(argv[1], bs, &info);
    }
out:
    close_store(s, bs);
    loaded_key_clear(&lk);
    key_options_free(&ko);
    return err ? report(err) : 0;
}

/* ---- check ----------------------------------------------------------- */

/*
 * check --repair: opens as the owner, which rewrites a damaged copy of the
 * directory in use; with --accept-rollback, an image whose newest
 * generation is damaged goes back to the newest intact one.
 */
static int check_repair(const char *path, const QCryptoKey *key, bool accept_rollback,
                        GError **errp)
{
    NvramOpenOptions o = {
        .key = *key,
        .owner = true,
        .accept_rollback = accept_rollback,
    };
    BlockDriverState *bs = NULL;
    NvramStore *s = open_store(path, &o, &bs, errp);
    NvramInfo info;
    int ret = -1;

    if (!s) {
        return -1;
    }
    if (nvram_get_info(s, &info, errp) == 0 && nvram_check(s, errp) == 0) {
        if (info.rolled_back_from) {
            printf("'%s': generation %" PRIu64 " was damaged and is lost; the "
                   "newest intact state is now generation %" PRIu64 ".\n", path,
                   info.rolled_back_from, info.generation);
        }
        printf("No errors were found on the image.\n");
        ret = 0;
    }
    close_store(s, bs);
    return ret;
}

static int cmd_check(int argc, char **argv)
{
    KeyOptions ko = { 0 };
    gboolean repair = false, accept_rollback = false;
    GOptionEntry e[] = {
        { "repair", 0, 0, G_OPTION_ARG_NONE, &repair,
          "rewrite a damaged copy of the directory in use (opens the image as its "
          "owner)", NULL },
        { "accept-rollback", 0, 0, G_OPTION_ARG_NONE, &accept_rollback,
          "with --repair: when the newest state is damaged, go back to the newest "
          "intact one, losing the damaged generation", NULL },
        { NULL },
    };
    GError *err = NULL;
    LoadedKey lk = { 0 };
    BlockDriverState *bs = NULL;
    NvramStore *s = NULL;
    int ret = 0;

    if (!parse_args("check", "IMAGE", e, &ko, &argc, &argv, 1, &err) ||
        !load_key(&ko, "", &lk, &err)) {
        goto out;
    }
    if (accept_rollback && !repair) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--accept-rollback goes with --repair");
        goto out;
    }
    if (repair) {
        check_repair(argv[1], &lk.key, accept_rollback, &err);
        goto out;
    }
    s = open_reader(argv[1], &lk.key, true, &bs, &err);
    if (s && nvram_check(s, &err) == 0) {
        NvramInfo info;

        if (nvram_get_info(s, &info, &err) == 0) {
            printf("No errors were found on the image.%s\n",
                   info.encrypted && lk.key.kind == QCRYPTO_KEY_NONE
                   ? " (CRCs only: the authentication tags need the key)"
                   : "");
        }
    }
out:
    close_store(s, bs);
    loaded_key_clear(&lk);
    key_options_free(&ko);
    if (err) {
        ret = g_error_matches(err, QTPM_ERROR, QTPM_ERROR_CORRUPT) ?
              EXIT_DAMAGED : 1;
        report(err);
    }
    return ret;
}

/* ---- rekey ----------------------------------------------------------- */

static int cmd_rekey(int argc, char **argv)
{
    KeyOptions ko = { 0 }, nko = { 0 };
    gboolean remove_key = false;
    gint iterations = 0;
    GOptionEntry e[] = {
        { "new-key-file", 0, 0, G_OPTION_ARG_FILENAME, &nko.file,
          "the new 32-byte key", "FILE" },
        { "new-key-format", 0, 0, G_OPTION_ARG_STRING, &nko.format,
          "raw (default), hex or base64", "FMT" },
        { "new-passphrase-file", 0, 0, G_OPTION_ARG_FILENAME,
          &nko.passphrase_file, "the new passphrase", "FILE" },
        { "remove-key", 0, 0, G_OPTION_ARG_NONE, &remove_key,
          "store the state unencrypted", NULL },
        { "kdf-iterations", 0, 0, G_OPTION_ARG_INT, &iterations,
          "PBKDF2 iterations for a new passphrase (default: the store's "
          "default)",
          "N" },
        { NULL },
    };
    GError *err = NULL;
    LoadedKey lk = { 0 }, nlk = { 0 };
    BlockDriverState *bs = NULL;
    NvramStore *s = NULL;
    int choices;

    if (!parse_args("rekey", "IMAGE", e, &ko, &argc, &argv, 1, &err)) {
        goto out;
    }
    choices = !!nko.file + !!nko.passphrase_file + !!remove_key;
    if (choices != 1) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "rekey needs exactly one of --new-key-file, "
                    "--new-passphrase-file and --remove-key");
        goto out;
    }
    if (iterations < 0 || (iterations && !nko.passphrase_file)) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--kdf-iterations is a positive count and goes with "
                    "--new-passphrase-file");
        goto out;
    }
    if (iterations && iterations < QCRYPTO_PBKDF2_MIN_ITERATIONS) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--kdf-iterations %d is too few to slow down a guessed "
                    "passphrase (at least %d)", iterations,
                    QCRYPTO_PBKDF2_MIN_ITERATIONS);
        goto out;
    }
    if (iterations > QCRYPTO_PBKDF2_MAX_ITERATIONS) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--kdf-iterations %d is more than the %d qtpm accepts",
                    iterations, QCRYPTO_PBKDF2_MAX_ITERATIONS);
        goto out;
    }
    if (!load_key(&ko, "", &lk, &err) || !load_key(&nko, "new-", &nlk, &err)) {
        goto out;
    }
    s = open_owner(argv[1], &lk.key, false, 0, &bs, &err);
    if (!s) {
        goto out;
    }
    if (!remove_key && lk.key.kind == nlk.key.kind &&
        lk.key.len == nlk.key.len &&
        qcrypto_mem_equal(lk.key.data, nlk.key.data, lk.key.len)) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': the new key is the current key", argv[1]);
        goto out;
    }
    if (remove_key && lk.key.kind == QCRYPTO_KEY_NONE) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is not encrypted; there is no key to remove",
                    argv[1]);
        goto out;
    }
    nvram_rekey(s, &nlk.key, (uint32_t)iterations, &err);
out:
    close_store(s, bs);
    loaded_key_clear(&lk);
    loaded_key_clear(&nlk);
    key_options_free(&ko);
    key_options_free(&nko);
    return err ? report(err) : 0;
}

/* ---- swtpm files ----------------------------------------------------- */

/* swtpm's dir backend: tpm2-00.NAME for TPM 2.0, tpm-00.NAME for 1.2. */
static char *swtpm_path(const char *dir, int tpm_version, const char *suffix)
{
    return g_strdup_printf("%s/%s-00.%s", dir,
                           tpm_version == 2 ? "tpm2" : "tpm", suffix);
}

/* The options naming swtpm's key, as swtpm's --key file=|pwdfile= takes it. */
typedef struct SwtpmKeyOptions {
    char *file;
    char *format;
    char *pwd_file;
    char *kdf;
} SwtpmKeyOptions;

/* A swtpm key, or the passphrase it is derived from once its size is known. */
typedef struct SwtpmKeySource {
    bool given;
    SwtpmKey key;           /* from a key file */
    uint8_t *pass;          /* from a passphrase file */
    size_t pass_len;
    SwtpmKdf kdf;
} SwtpmKeySource;

static void swtpm_key_options_add(GArray *entries, SwtpmKeyOptions *o,
                                  const char *what)
{
    GOptionEntry e[] = {
        { "swtpm-key-file", 0, 0, G_OPTION_ARG_FILENAME, &o->file, what,
          "FILE" },
        { "swtpm-key-format", 0, 0, G_OPTION_ARG_STRING, &o->format,
          "binary (default) or hex, as swtpm's format=", "FMT" },
        { "swtpm-pwd-file", 0, 0, G_OPTION_ARG_FILENAME, &o->pwd_file,
          "swtpm's --key pwdfile=", "FILE" },
        { "swtpm-kdf", 0, 0, G_OPTION_ARG_STRING, &o->kdf,
          "pbkdf2 (default) or sha512, as swtpm's kdf=", "KDF" },
    };
    g_array_append_vals(entries, e, ARRAY_SIZE(e));
}

static void swtpm_key_options_free(SwtpmKeyOptions *o)
{
    g_free(o->file);
    g_free(o->format);
    g_free(o->pwd_file);
    g_free(o->kdf);
}

static void swtpm_key_source_clear(SwtpmKeySource *src)
{
    if (src->pass) {
        qcrypto_memwipe(src->pass, src->pass_len);
        g_free(src->pass);
    }
    qcrypto_memwipe(src, sizeof(*src));
}

static bool read_secret_file(const char *file, uint8_t **buf, size_t *len,
                             GError **errp)
{
    GError *local = NULL;
    gchar *contents = NULL;
    gsize n = 0;

    if (!g_file_get_contents(file, &contents, &n, &local)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "%s", local->message);
        g_error_free(local);
        return false;
    }
    *buf = (uint8_t *)contents;
    *len = n;
    return true;
}

static bool load_swtpm_key(const SwtpmKeyOptions *o, SwtpmKeySource *src,
                           GError **errp)
{
    uint8_t *buf;
    size_t len;
    bool ok;

    memset(src, 0, sizeof(*src));
    if (o->file && o->pwd_file) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "give either --swtpm-key-file or --swtpm-pwd-file, not "
                    "both");
        return false;
    }
    if ((o->format && !o->file) || (o->kdf && !o->pwd_file)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--%s needs --%s",
                    o->format && !o->file ? "swtpm-key-format" : "swtpm-kdf",
                    o->format && !o->file ? "swtpm-key-file"
                                          : "swtpm-pwd-file");
        return false;
    }
    if (o->format && strcmp(o->format, "binary") && strcmp(o->format, "hex")) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--swtpm-key-format '%s' is not hex or binary", o->format);
        return false;
    }
    if (o->kdf && strcmp(o->kdf, "pbkdf2") && strcmp(o->kdf, "sha512")) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--swtpm-kdf '%s' is not pbkdf2 or sha512", o->kdf);
        return false;
    }
    if (o->pwd_file) {
        if (!read_secret_file(o->pwd_file, &src->pass, &src->pass_len,
                              errp)) {
            return false;
        }
        src->kdf = o->kdf && !strcmp(o->kdf, "sha512") ? SWTPM_KDF_SHA512
                                                        : SWTPM_KDF_PBKDF2;
        src->given = true;
        return true;
    }
    if (!o->file) {
        return true;
    }
    if (!read_secret_file(o->file, &buf, &len, errp)) {
        return false;
    }
    ok = swtpm_key_parse(buf, len,
                         o->format && !strcmp(o->format, "hex")
                         ? SWTPM_KEY_FORMAT_HEX : SWTPM_KEY_FORMAT_BINARY,
                         o->file, &src->key, errp);
    qcrypto_memwipe(buf, len);
    g_free(buf);
    src->given = ok;
    return ok;
}

/*
 * The key for one swtpm file: a passphrase yields a key of the size the
 * file's header names (AES-256 when the header names none). NULL: no key.
 */
static const SwtpmKey *swtpm_key_for(SwtpmKeySource *src, const uint8_t *buf,
                                     size_t len)
{
    size_t keylen;

    if (!src->given) {
        return NULL;
    }
    if (src->pass) {
        keylen = buf ? swtpm_blob_key_length(buf, len) : 0;
        swtpm_key_from_passphrase(src->pass, src->pass_len, src->kdf,
                                  keylen ? keylen : 32, &src->key);
    }
    return &src->key;
}

typedef struct SwtpmState {
    int tpm_version;
    uint8_t *data[TPM_STATE_BLOB_TYPE_MAX + 1];
    size_t len[TPM_STATE_BLOB_TYPE_MAX + 1];
} SwtpmState;

static void swtpm_state_clear(SwtpmState *st)
{
    for (int i = 0; i <= TPM_STATE_BLOB_TYPE_MAX; i++) {
        if (st->data[i]) {
            qcrypto_memwipe(st->data[i], st->len[i]);
            g_free(st->data[i]);
        }
    }
    memset(st, 0, sizeof(*st));
}

static bool detect_swtpm_version(const char *dir, int *version, GError **errp)
{
    g_autofree char *p2 = swtpm_path(dir, 2, "permall");
    g_autofree char *p1 = swtpm_path(dir, 1, "permall");
    bool has2 = g_file_test(p2, G_FILE_TEST_EXISTS);
    bool has1 = g_file_test(p1, G_FILE_TEST_EXISTS);

    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "'%s' is not a directory", dir);
        return false;
    }
    if (has1 && has2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' holds both TPM 2.0 and TPM 1.2 state; import "
                    "needs exactly one", dir);
        return false;
    }
    if (!has1 && !has2) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "'%s' holds no swtpm state (no tpm2-00.permall or "
                    "tpm-00.permall)", dir);
        return false;
    }
    *version = has2 ? 2 : 1;
    return true;
}

/* Reads and decodes one state file; a missing optional file is no error. */
static bool read_swtpm_file(const char *path, bool required,
                            SwtpmKeySource *src, uint8_t **data, size_t *len,
                            GError **errp)
{
    g_autofree char *buf = NULL;
    gsize n = 0;
    GError *local = NULL;

    if (!g_file_get_contents(path, &buf, &n, &local)) {
        if (!required &&
            g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_error_free(local);
            return true;
        }
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "%s", local->message);
        g_error_free(local);
        return false;
    }
    if (!swtpm_blob_decode((uint8_t *)buf, n,
                           swtpm_key_for(src, (uint8_t *)buf, n), path, data,
                           len, errp)) {
        return false;
    }
    if (*len == 0) {
        g_free(*data);
        *data = NULL;
    }
    return true;
}

/* Reads and decodes every state file of @dir before anything is written. */
static bool read_swtpm_dir(const char *dir, SwtpmKeySource *src,
                           SwtpmState *st, GError **errp)
{
    memset(st, 0, sizeof(*st));
    if (!detect_swtpm_version(dir, &st->tpm_version, errp)) {
        return false;
    }
    for (TPMStateBlobType t = TPM_STATE_BLOB_PERMANENT; t <= TPM_STATE_BLOB_TYPE_MAX;
         t++) {
        g_autofree char *path = swtpm_path(dir, st->tpm_version,
                                           tpm_state_blob_name(t));

        if (!read_swtpm_file(path, t == TPM_STATE_BLOB_PERMANENT, src,
                             &st->data[t], &st->len[t], errp)) {
            swtpm_state_clear(st);
            return false;
        }
    }
    if (!st->data[TPM_STATE_BLOB_PERMANENT]) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s': the permanent state file is empty", dir);
        swtpm_state_clear(st);
        return false;
    }
    return true;
}

/* ---- import ---------------------------------------------------------- */

static bool store_is_empty(NvramStore *s, const char *path, int tpm_version,
                           GError **errp)
{
    NvramInfo info;

    if (nvram_get_info(s, &info, errp) < 0) {
        return false;
    }
    if (info.tpm_version != tpm_version) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is a TPM %s image but the swtpm state is TPM %s",
                    path, tpm_version_str(info.tpm_version),
                    tpm_version_str(tpm_version));
        return false;
    }
    if (info.n_blobs) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' already holds TPM state; import only fills a new "
                    "or blank image", path);
        return false;
    }
    return true;
}

/*
 * The image to import into: created as by 'create' when it does not exist
 * (or is empty), else opened as owner; a blank image is formatted, a store
 * that holds state is refused.
 */
static NvramStore *open_import_target(const char *path, uint64_t size,
                                      int tpm_version, const QCryptoKey *key,
                                      NewImage *ni, BlockDriverState **bsp,
                                      GError **errp)
{
    NvramStore *s;
    bool empty = false;

    memset(ni, 0, sizeof(*ni));
    if (!image_exists(path, &empty) || empty) {
        return create_image(path, size, tpm_version, key, ni, bsp, errp);
    }
    s = open_owner(path, key, true, tpm_version, bsp, errp);
    if (s && !store_is_empty(s, path, tpm_version, errp)) {
        close_store(s, *bsp);
        *bsp = NULL;
        return NULL;
    }
    return s;
}

static int cmd_import(int argc, char **argv)
{
    KeyOptions ko = { 0 };
    SwtpmKeyOptions sko = { 0 };
    g_autofree char *dir = NULL, *tpm = NULL, *size_str = NULL;
    GOptionEntry e[] = {
        { "swtpm-dir", 0, 0, G_OPTION_ARG_FILENAME, &dir,
          "swtpm's --tpmstate dir", "DIR" },
        { "tpm", 0, 0, G_OPTION_ARG_STRING, &tpm,
          "for a new image: must match the swtpm state", "VER" },
        { "size", 0, 0, G_OPTION_ARG_STRING, &size_str,
          "for a new image: virtual size (default 1M)", "SIZE" },
    };
    g_autoptr(GArray) entries = g_array_new(true, true, sizeof(GOptionEntry));
    GError *err = NULL;
    LoadedKey lk = { 0 };
    SwtpmKeySource src = { 0 };
    SwtpmState st = { 0 };
    BlockDriverState *bs = NULL;
    NvramStore *s = NULL;
    NewImage ni = { 0 };
    NvramBlobUpdate upd[TPM_STATE_BLOB_TYPE_MAX];
    size_t n = 0;
    uint64_t size;
    int ver = 0;

    g_array_append_vals(entries, e, ARRAY_SIZE(e));
    swtpm_key_options_add(entries, &sko, "swtpm's --key file= (AES-128/256)");
    if (!parse_args("import", "IMAGE", (GOptionEntry *)entries->data, &ko,
                    &argc, &argv, 1, &err)) {
        goto out;
    }
    if (!dir) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "import needs --swtpm-dir");
        goto out;
    }
    if ((tpm && !parse_tpm_version(tpm, &ver, &err)) ||
        !parse_size(size_str, &size, &err) ||
        !load_swtpm_key(&sko, &src, &err) ||
        !read_swtpm_dir(dir, &src, &st, &err) ||
        !load_key(&ko, "", &lk, &err)) {
        goto out;
    }
    if (ver && ver != st.tpm_version) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "--tpm %s does not match the TPM %s state in '%s'", tpm,
                    tpm_version_str(st.tpm_version), dir);
        goto out;
    }
    s = open_import_target(argv[1], size, st.tpm_version, &lk.key, &ni, &bs,
                           &err);
    if (!s) {
        goto out;
    }
    for (int t = 1; t <= TPM_STATE_BLOB_TYPE_MAX; t++) {
        if (st.data[t]) {
            upd[n++] = (NvramBlobUpdate) { t, st.data[t], st.len[t] };
        }
    }
    nvram_commit(s, upd, n, &err);
out:
    close_store(s, bs);
    if (err) {
        undo_new_image(argv[argc - 1], &ni);
    }
    swtpm_state_clear(&st);
    swtpm_key_source_clear(&src);
    swtpm_key_options_free(&sko);
    loaded_key_clear(&lk);
    key_options_free(&ko);
    return err ? report(err) : 0;
}

/* ---- export ---------------------------------------------------------- */

static bool write_private_file(const char *path, const uint8_t *data,
                               size_t len, int mode, GError **errp)
{
    GError *local = NULL;

    if (!g_file_set_contents_full(path, (const char *)data, len,
                                  G_FILE_SET_CONTENTS_CONSISTENT |
                                  G_FILE_SET_CONTENTS_DURABLE, mode,
                                  &local)) {
        g_set_error(errp, QTPM_ERROR, QTPM_ERROR_IO, "%s", local->message);
        g_error_free(local);
        return false;
    }
    return true;
}

/* Refuses a folder that already holds swtpm state of either TPM family. */
static bool swtpm_dir_is_free(const char *dir, GError **errp)
{
    for (TPMStateBlobType t = TPM_STATE_BLOB_PERMANENT; t <= TPM_STATE_BLOB_TYPE_MAX;
         t++) {
        for (int v = 1; v <= 2; v++) {
            g_autofree char *p = swtpm_path(dir, v, tpm_state_blob_name(t));
            if (g_file_test(p, G_FILE_TEST_EXISTS)) {
                g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                            "'%s' already exists; export writes only into "
                            "a directory without swtpm state", p);
                return false;
            }
        }
    }
    return true;
}

/* Writes one state file, plain or encrypted with a fresh random IV. */
static bool write_swtpm_file(const char *path, const uint8_t *data,
                             size_t len, SwtpmKeySource *src, GError **errp)
{
    const SwtpmKey *key = swtpm_key_for(src, NULL, 0);
    g_autofree uint8_t *file = NULL;
    uint8_t iv[SWTPM_KEY_MAX];
    size_t flen;

    if (key) {
        if (qcrypto_random_bytes(iv, key->len, errp) < 0) {
            return false;
        }
        file = swtpm_blob_encode_encrypted(data, len, key, iv, &flen);
    } else {
        file = swtpm_blob_encode_plain(data, len, &flen);
    }
    return write_private_file(path, file, flen, 0640, errp);
}

static int cmd_export(int argc, char **argv)
{
    KeyOptions ko = { 0 };
    SwtpmKeyOptions sko = { 0 };
    g_autofree char *dir = NULL;
    GOptionEntry e[] = {
        { "swtpm-dir", 0, 0, G_OPTION_ARG_FILENAME, &dir,
          "directory for swtpm's --tpmstate dir", "DIR" },
    };
    g_autoptr(GArray) entries = g_array_new(true, true, sizeof(GOptionEntry));
    GError *err = NULL;
    LoadedKey lk = { 0 };
    SwtpmKeySource src = { 0 };
    BlockDriverState *bs = NULL;
    NvramStore *s = NULL;
    NvramInfo info;
    uint8_t *data[TPM_STATE_BLOB_TYPE_MAX + 1] = { 0 };
    size_t len[TPM_STATE_BLOB_TYPE_MAX + 1] = { 0 };

    g_array_append_vals(entries, e, ARRAY_SIZE(e));
    swtpm_key_options_add(entries, &sko,
                          "encrypt the files for swtpm's --key file=");
    if (!parse_args("export", "IMAGE", (GOptionEntry *)entries->data, &ko,
                    &argc, &argv, 1, &err)) {
        goto out;
    }
    if (!dir) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "export needs --swtpm-dir");
        goto out;
    }
    if (!load_swtpm_key(&sko, &src, &err) || !load_key(&ko, "", &lk, &err)) {
        goto out;
    }
    s = open_reader(argv[1], &lk.key, false, &bs, &err);
    if (!s || nvram_get_info(s, &info, &err) < 0) {
        goto out;
    }
    for (int t = 1; t <= TPM_STATE_BLOB_TYPE_MAX; t++) {
        if (nvram_load(s, t, &data[t], &len[t], &err) < 0) {
            goto out;
        }
    }
    if (!data[TPM_STATE_BLOB_PERMANENT]) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "'%s' holds no TPM state to export", argv[1]);
        goto out;
    }
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_IO,
                    "could not create '%s': %s", dir, g_strerror(errno));
        goto out;
    }
    if (!swtpm_dir_is_free(dir, &err)) {
        goto out;
    }
    for (TPMStateBlobType t = TPM_STATE_BLOB_PERMANENT; t <= TPM_STATE_BLOB_TYPE_MAX;
         t++) {
        g_autofree char *p = swtpm_path(dir, info.tpm_version, tpm_state_blob_name(t));

        if (data[t] && !write_swtpm_file(p, data[t], len[t], &src, &err)) {
            goto out;
        }
    }
out:
    close_store(s, bs);
    for (int t = 0; t <= TPM_STATE_BLOB_TYPE_MAX; t++) {
        if (data[t]) {
            qcrypto_memwipe(data[t], len[t]);
            g_free(data[t]);
        }
    }
    swtpm_key_source_clear(&src);
    swtpm_key_options_free(&sko);
    loaded_key_clear(&lk);
    key_options_free(&ko);
    return err ? report(err) : 0;
}


static bool parse_blob_type(const char *s, TPMStateBlobType *t, GError **errp)
{
    for (*t = TPM_STATE_BLOB_PERMANENT; s && *t <= TPM_STATE_BLOB_TYPE_MAX; (*t)++) {
        if (!strcmp(s, tpm_state_blob_label(*t))) {
            return true;
        }
    }
    g_set_error(errp, QTPM_ERROR, QTPM_ERROR_INVALID,
                "--blob %s%s%sis not permanent, volatile or savestate",
                s ? "'" : "", s ? s : "(missing) ", s ? "' " : "");
    return false;
}

/* Do @a and @b name one existing file? */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;

    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int cmd_dump(int argc, char **argv)
{
    KeyOptions ko = { 0 };
    g_autofree char *blob = NULL;
    GOptionEntry e[] = {
        { "blob", 0, 0, G_OPTION_ARG_STRING, &blob,
          "permanent, volatile or savestate", "TYPE" },
        { NULL },
    };
    GError *err = NULL;
    LoadedKey lk = { 0 };
    BlockDriverState *bs = NULL;
    NvramStore *s = NULL;
    TPMStateBlobType t;
    uint8_t *data = NULL;
    size_t len = 0;
    int r;

    if (!parse_args("dump", "IMAGE OUT", e, &ko, &argc, &argv, 2, &err) ||
        !parse_blob_type(blob, &t, &err) || !load_key(&ko, "", &lk, &err)) {
        goto out;
    }
    if (strcmp(argv[2], "-") && same_file(argv[1], argv[2])) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "'%s' is the image itself; refusing to write a blob over it",
                    argv[2]);
        goto out;
    }
    s = open_reader(argv[1], &lk.key, false, &bs, &err);
    if (!s) {
        goto out;
    }
    r = nvram_load(s, t, &data, &len, &err);
    if (r == 0) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_NOT_FOUND,
                    "'%s' holds no %s blob", argv[1], blob);
    }
    if (r <= 0) {
        goto out;
    }
    if (!strcmp(argv[2], "-")) {
        if (fwrite(data, 1, len, stdout) != len || fflush(stdout)) {
            g_set_error(&err, QTPM_ERROR, QTPM_ERROR_IO,
                        "writing to standard output failed");
        }
    } else {
        write_private_file(argv[2], data, len, 0600, &err);
    }
out:
    close_store(s, bs);
    if (data) {
        qcrypto_memwipe(data, len);
        g_free(data);
    }
    loaded_key_clear(&lk);
    key_options_free(&ko);
    return err ? report(err) : 0;
}

/* ---- manufacture ------------------------------------------------------ */

static int cmd_manufacture(int argc, char **argv)
{
    KeyOptions ko = { 0 };
    g_autofree char *ca_dir = NULL, *vmid = NULL;
    gboolean no_ek_cert = false, no_platform_cert = false;
    gboolean no_lock_nvram = false, overwrite = false;
    GOptionEntry e[] = {
        { "ca-dir", 0, 0, G_OPTION_ARG_FILENAME, &ca_dir,
          "the local CA's directory (created on first use)", "DIR" },
        { "vmid", 0, 0, G_OPTION_ARG_STRING, &vmid,
          "the certificates' subject (CN=STRING)", "STRING" },
        { "no-ek-cert", 0, 0, G_OPTION_ARG_NONE, &no_ek_cert,
          "no EK certificates", NULL },
        { "no-platform-cert", 0, 0, G_OPTION_ARG_NONE, &no_platform_cert,
          "no platform certificate", NULL },
        { "no-lock-nvram", 0, 0, G_OPTION_ARG_NONE, &no_lock_nvram,
          "leave the certificate indices writable", NULL },
        { "overwrite", 0, 0, G_OPTION_ARG_NONE, &overwrite,
          "a fresh TPM in place of one that has an EK", NULL },
        { NULL },
    };
    GError *err = NULL;
    LoadedKey lk = { 0 };
    BlockDriverState *bs = NULL;
    NvramStore *s = NULL;
    g_auto(GStrv) made = NULL;
    TPMManufactureOptions mo;

    if (!parse_args("manufacture", "IMAGE", e, &ko, &argc, &argv, 1, &err)) {
        goto out;
    }
    if (!ca_dir) {
        g_set_error(&err, QTPM_ERROR, QTPM_ERROR_INVALID,
                    "manufacture needs --ca-dir");
        goto out;
    }
    if (!load_key(&ko, "", &lk, &err)) {
        goto out;
    }
    s = open_owner(argv[1], &lk.key, false, 0, &bs, &err);
    if (!s) {
        goto out;
    }
    mo = (TPMManufactureOptions) {
        .ca_dir = ca_dir,
        .vmid = vmid,
        .name = argv[1],
        .ek_cert = !no_ek_cert,
        .platform_cert = !no_platform_cert,
        .lock_nvram = !no_lock_nvram,
        .overwrite = overwrite,
    };
    if (tpm_manufacture(s, &mo, &made, &err) == 0) {
        for (char **l = made; *l; l++) {
            printf("%s\n", *l);
        }
    }
out:
    close_store(s, bs);
    loaded_key_clear(&lk);
    key_options_free(&ko);
    return err ? report(err) : 0;
}

/* ---- main ------------------------------------------------------------ */

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *synopsis;
} commands[] = {
    { "create", cmd_create,
      "create [--tpm 2.0|1.2] [--size SIZE] [KEY] IMAGE" },
    { "info", cmd_info, "info [--output human|json] [KEY] IMAGE" },
    { "check", cmd_check, "check [--repair [--accept-rollback]] [KEY] IMAGE" },
    { "rekey", cmd_rekey,
      "rekey [KEY] (--new-key-file F [--new-key-format FMT] | "
      "--new-passphrase-file F | --remove-key) IMAGE" },
    { "import", cmd_import,
      "import --swtpm-dir DIR [SWTPM-KEY] [--tpm 2.0|1.2] [--size SIZE] "
      "[KEY] IMAGE" },
    { "export", cmd_export,
      "export --swtpm-dir DIR [SWTPM-KEY] [KEY] IMAGE" },
    { "dump", cmd_dump,
      "dump --blob permanent|volatile|savestate [KEY] IMAGE OUT" },
    { "manufacture", cmd_manufacture,
      "manufacture [KEY] --ca-dir DIR [--vmid STRING] [--no-ek-cert]\n"
      "      [--no-platform-cert] [--no-lock-nvram] [--overwrite] IMAGE" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: qtpm-img COMMAND [OPTIONS] ARGS\n\ncommands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        fprintf(f, "  %s\n", commands[i].synopsis);
    }
    fprintf(f, "\nKEY: --key-file FILE [--key-format raw|hex|base64] | "
            "--passphrase-file FILE\n"
            "SWTPM-KEY: --swtpm-key-file FILE [--swtpm-key-format binary|hex] "
            "|\n           --swtpm-pwd-file FILE [--swtpm-kdf pbkdf2|sha512]\n"
            "Exit status: 0 success, 1 error, 2 check found damage.\n"
            "See docs/qtpm-img.md.\n");
}

int main(int argc, char **argv)
{
    /* Keys and TPM state pass through here: no core dump, no same-user ptrace. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    error_set_progname("qtpm-img");
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        if (!strcmp(argv[1], commands[i].name)) {
            int ret = commands[i].fn(argc - 1, argv + 1);
            qcrypto_secret_free_all();
            return ret;
        }
    }
    return fail("unknown command '%s' (try 'qtpm-img --help')", argv[1]);
}
