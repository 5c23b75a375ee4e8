/*
 * -export swtpm's swtpm-migration-key=: the key a swtpm source was started
 * with (--migration-key), so that the state blobs it seals open on a qtpm
 * target. It only opens blobs coming in; what qtpm hands out is sealed
 * under the backend's own key (swtpm-blob-seal.h). docs/swtpm-protocol.md
 * "SET_STATEBLOB", docs/swtpm-state.md "Migration blobs".
 */
#ifndef EXPORT_SWTPM_MIGRATION_KEY_H
#define EXPORT_SWTPM_MIGRATION_KEY_H

#include "qemu/osdep.h"
#include "qemu/swtpm-blob.h"

/* The option table's entries for swtpm-migration-key and its companions. */
#define SWTPM_MIGRATION_KEY_OPTS                                              \
    { .name = "swtpm-migration-key", .type = QEMU_OPT_STRING,                 \
      .value_name = "ID", .missing_hint = "(the id of a -object secret)",     \
      .help = "a -object secret holding a swtpm source's --migration-key" },  \
    { .name = "swtpm-migration-key-format", .type = QEMU_OPT_STRING,          \
      .choices = swtpm_migration_key_formats, .def_value_str = "binary",      \
      .help = "the secret is the key (binary, hex) or a passphrase" },        \
    { .name = "swtpm-migration-key-kdf", .type = QEMU_OPT_STRING,             \
      .choices = swtpm_migration_key_kdfs, .def_value_str = "pbkdf2",         \
      .help = "swtpm's kdf= for a passphrase" }

extern const char *const swtpm_migration_key_formats[];
extern const char *const swtpm_migration_key_kdfs[];

/* The companions only with swtpm-migration-key=, kdf only for a passphrase. */
bool swtpm_migration_key_check_opts(GHashTable *opts, GError **errp);

/*
 * Main thread, after the secrets are loaded: the key named by
 * swtpm-migration-key= (parsed or derived now), or NULL in *@out when the
 * option is absent. Free with swtpm_migration_key_free.
 */
bool swtpm_migration_key_load(GHashTable *opts, SwtpmMigrationKey **out,
                              GError **errp);
void swtpm_migration_key_free(SwtpmMigrationKey *mkey);

/*
 * A state blob that a swtpm source handed to QEMU (plain, or sealed under
 * its --migration-key), opened into the libtpms blob in *@plain. Returns
 * the control channel's result: success; TPM_DECRYPT_ERROR for a sealed
 * blob that does not open (no key, wrong key, damage); TPM_FAIL for
 * anything else malformed. A refusal is one warning line naming the
 * export, the blob and the cause.
 */
uint32_t swtpm_migration_key_open_blob(const char *export_id,
                                       const SwtpmMigrationKey *mkey,
                                       const char *key_id, const char *label,
                                       const uint8_t *in, size_t len,
                                       uint8_t **plain, size_t *plain_len);

#endif
