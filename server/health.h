/* What verbose Status says about crisp's own health: its container monitors and the RPCs that
 * failed lately. */
#pragma once

#include "server.h"

G_BEGIN_DECLS

/* How the Status handler adds one info entry (key static, value JSON, taken). */
typedef void (*CrispInfoAdd) (GPtrArray *info, const char *key, char *value);

/* Adds "monitors" ([{"containerId", "pid", "alive", "rssBytes"}]) and "recentErrors" (see
 * crisp_recent_errors_to_json) to info. */
void crisp_health_add_info (CrispServer *self, GPtrArray *info, CrispInfoAdd add);

G_END_DECLS
