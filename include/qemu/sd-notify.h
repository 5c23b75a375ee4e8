/*
 * systemd's readiness notification (sd_notify(3), docs/libvirt.md
 * "Readiness"): one datagram of newline-separated VAR=VALUE assignments
 * to the unix socket that $NOTIFY_SOCKET names. A unit of Type=notify is
 * "started" only once READY=1 arrives, so units ordered after qtpm (a
 * libvirt domain) find its socket listening. A few lines instead of
 * libsystemd.
 */
#ifndef QEMU_SD_NOTIFY_H
#define QEMU_SD_NOTIFY_H

#include "qemu/osdep.h"

#include <sys/socket.h>
#include <sys/un.h>

/*
 * Pure: the address that @name (a $NOTIFY_SOCKET value) names, "/PATH" or
 * "@NAME" (Linux's abstract namespace), with its length in *@len. Fails
 * with "NOTIFY_SOCKET 'NAME' is not an absolute path or an '@' name", or
 * "... is too long for a unix socket".
 */
bool qemu_sd_notify_address(const char *name, struct sockaddr_un *sa,
                            socklen_t *len, GError **errp);

/*
 * Sends @state ("READY=1", "STOPPING=1") when $NOTIFY_SOCKET is set; true
 * without sending anything when it is not (not started by a service
 * manager). Fails with "cannot notify the service manager at
 * NOTIFY_SOCKET 'NAME': REASON".
 */
bool qemu_sd_notify(const char *state, GError **errp);

#endif
