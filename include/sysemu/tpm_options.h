/*
 * Options every TPM backend shares, so that a key means the same for each.
 */
#ifndef SYSEMU_TPM_OPTIONS_H
#define SYSEMU_TPM_OPTIONS_H

#include "qemu/osdep.h"
#include "qemu/option.h"
#include "sysemu/tpm_backend.h"

extern const char *const tpm_backend_version_choices[];

/* The first keys of every backend's table: -tpmdev TYPE,id=ID. */
#define TPM_BACKEND_OPT_TYPE_ID                                         \
    { .name = "type", .type = QEMU_OPT_STRING, .implied = true,         \
      .help = "the backend type (-tpmdev help lists them)" },           \
    { .name = "id", .type = QEMU_OPT_STRING, .value_name = "ID",        \
      .required = true, .help = "the backend's id, for -device tpmdev=" }

/*
 * version=: one description for every backend. A libtpms TPM without it
 * keeps the family its store was formatted for; see
 * tpm_backend_opt_version().
 */
#define TPM_BACKEND_OPT_VERSION                                          \
    { .name = "version", .type = QEMU_OPT_STRING,                        \
      .choices = tpm_backend_version_choices, .def_value_str = "2.0",    \
      .help = "the TPM family; unless given, a libtpms store that "     \
              "holds state keeps its own" }

/*
 * The version= of options validated against a table holding
 * TPM_BACKEND_OPT_VERSION, or @def when it is not given.
 */
TPMVersion tpm_backend_opt_version(GHashTable *opts, TPMVersion def);

#endif
