/* Logging set-up: GLib structured logging, journald when stderr is the journal. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* level: "error", "warning", "info" or "debug"; returns FALSE for anything else. */
gboolean crisp_log_parse_level (const char *level, GLogLevelFlags *out_threshold);
void crisp_log_setup (const char *level);
void crisp_log_set_level (const char *level);

G_END_DECLS
