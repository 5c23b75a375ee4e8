#include "qemu/osdep.h"

G_DEFINE_QUARK(qtpm-error-quark, qtpm_error)
