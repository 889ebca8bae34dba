/* Readiness and stopping notifications to systemd. */
#pragma once

#include <glib.h>

/* Sends e.g. "READY=1"; returns 1 if sent, 0 without $NOTIFY_SOCKET, -errno on failure. */
int crisp_notify (const char *state);
