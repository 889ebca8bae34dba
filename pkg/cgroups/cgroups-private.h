/* Helpers shared by the cgroups sources. */
#pragma once

#include <glib.h>

/* A decimal number at the start of text, followed by nothing or a newline. */
gboolean crisp_cgroups_parse_u64 (const char *text, guint64 *out_value);

/* The number in dir/file (as crisp_cgroups_parse_u64); FALSE when missing or not a number. */
gboolean crisp_cgroups_read_u64 (const char *dir, const char *file, guint64 *out_value);

/* The text of dir/file; NULL when unreadable. */
char *crisp_cgroups_read_text (const char *dir, const char *file);

/* rel_path is relative, non-empty and has no "." or ".." components. */
gboolean crisp_cgroups_check_rel_path (const char *rel_path, GError **error);
