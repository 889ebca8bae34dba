/* `crisp status`: what the running daemon says about itself over its CRI socket. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Asks the daemon on socket_path (Version, Status, ListPodSandbox, ListContainers,
 * ImageFsInfo), prints a report (text, or JSON when json) and returns the exit status: 0 when
 * it answered and is ready, 1 when a condition is false or a call failed, 2 when it cannot be
 * reached. */
int crisp_status_main (const char *socket_path, gboolean json);

G_END_DECLS
