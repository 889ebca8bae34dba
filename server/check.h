/* `crisp check`: the node checks run without a daemon, and the report they make (one line per
 * check with ok, warning or problem, and for each problem the fix). */
#pragma once

#include <glib.h>

#include "pkg/config/crisp-config.h"

G_BEGIN_DECLS

typedef enum
{
  CRISP_CHECK_OK,
  CRISP_CHECK_WARNING,
  CRISP_CHECK_PROBLEM,
} CrispCheckStatus;

typedef struct
{
  GPtrArray *results; /* CrispCheckResult*, in the order they were made */
} CrispCheck;

/* Records one check's outcome under a stable name ("runtime.runc"); fix (NULL for OK) says
 * what to change. */
void crisp_check_report (CrispCheck *check, const char *name, CrispCheckStatus status,
                         const char *fix, const char *fmt, ...) G_GNUC_PRINTF (5, 6);

/* check-node.c: a state directory crisp creates at start-up (path itself, or its nearest
 * existing ancestor, must be a writable directory); setting names the key to change. */
void crisp_check_state_dir (CrispCheck *check, const char *name, const char *path,
                            const char *setting);
/* check-node.c: overlayfs on the storage root's filesystem. */
void crisp_check_overlay (CrispCheck *check, const char *root);
/* check-node.c: the kernel features crisp uses, and the cgroup layout. */
void crisp_check_kernel (CrispCheck *check, const CrispConfig *cfg);

/* Runs every check, prints the report (text, or JSON when json) and returns the exit status:
 * 1 when there is a problem, else 0.  cfg is NULL when loading it failed with config_error;
 * the checks that need it are then left out. */
int crisp_check_main (const CrispConfig *cfg, const GError *config_error,
                      GPtrArray *config_warnings, gboolean json);

G_END_DECLS
