/* Helpers shared by the cgroups sources. */
#pragma once

#include <glib.h>

/* A decimal number at the start of text, followed by nothing or a newline. */
gboolean crisp_cgroups_parse_u64 (const char *text, guint64 *out_value);

/* rel_path is relative, non-empty and has no "." or ".." components. */
gboolean crisp_cgroups_check_rel_path (const char *rel_path, GError **error);
