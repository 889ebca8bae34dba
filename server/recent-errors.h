/* The last RPCs that failed, for `crisp status`: a ring of fixed size, fed by the one place
 * where an error becomes a gRPC status and read by verbose Status. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRISP_RECENT_ERRORS_MAX 50
/* Longer messages are cut (at a character boundary) and end in "…". */
#define CRISP_RECENT_ERROR_MESSAGE_MAX 512

typedef struct _CrispRecentErrors CrispRecentErrors;

CrispRecentErrors *crisp_recent_errors_new (guint capacity);
void crisp_recent_errors_free (CrispRecentErrors *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CrispRecentErrors, crisp_recent_errors_free)

/* Records a failure of `method` with gRPC status `code`, now; the oldest goes when the ring is
 * full.  From any thread; self may be NULL (nothing is kept). */
void crisp_recent_errors_add (CrispRecentErrors *self, const char *method, int code,
                              const char *message);

/* A JSON array, newest first, of {"time" (RFC 3339, UTC), "method", "code" (its gRPC name),
 * "message"}. */
char *crisp_recent_errors_to_json (CrispRecentErrors *self);

G_END_DECLS
