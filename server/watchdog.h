/* systemd's watchdog: WATCHDOG=1 while the main loop and the worker pool both answer. */
#pragma once

#include "server.h"

G_BEGIN_DECLS

typedef struct _CrispWatchdog CrispWatchdog;

/* Starts pinging at half of $WATCHDOG_USEC; NULL when systemd asked for no watchdog, or asked
 * another process ($WATCHDOG_PID). */
CrispWatchdog *crisp_watchdog_start (CrispGrpc *grpc);
void crisp_watchdog_free (CrispWatchdog *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispWatchdog, crisp_watchdog_free)

G_END_DECLS
