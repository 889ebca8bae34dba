/* The format version of the state crisp keeps on disk: one `version` file at the top of the
 * root and of the run-root.  docs/state.md describes the layout and the rules. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The state format this build reads and writes.  Version 1 is also what crisp wrote before
 * the version file existed, so a directory without the file is read as version 1. */
#define CRISP_STATE_VERSION 1
#define CRISP_STATE_VERSION_FILE "version"

/* Brings the state in `dir` from one version to the next; it must be safe to run again if a
 * crash interrupts it (the version file is written only after it returned TRUE). */
typedef gboolean (*CrispStateMigrateFunc) (const char *dir, GError **error);

/* Checks the version of the state in `dir` (an existing directory) against `known`, the newest
 * version this build understands.  A higher version, or a version file that does not parse,
 * is refused with FAILED_PRECONDITION and a message naming the file and both versions: the
 * state is never read by a crisp that could misread it.  A lower one is migrated step by
 * step: migrations[v - 1] brings version v to v + 1 (NULL entries, or migrations NULL: nothing
 * to change but the number), and the version file is rewritten atomically after each step.
 * `out_found` (may be NULL) gets the version found before any migration. */
gboolean crisp_state_version_check (const char *dir, guint known,
                                    const CrispStateMigrateFunc *migrations, guint *out_found,
                                    GError **error);

G_END_DECLS
