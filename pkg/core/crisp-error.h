/* crisp's one error domain.  Its codes equal the gRPC status codes, so server/ turns a
 * GError into a status without a table. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRISP_ERROR (crisp_error_quark ())
GQuark crisp_error_quark (void);

typedef enum
{
  CRISP_ERROR_CANCELLED = 1,
  CRISP_ERROR_UNKNOWN = 2,
  CRISP_ERROR_INVALID_ARGUMENT = 3,
  CRISP_ERROR_DEADLINE_EXCEEDED = 4,
  CRISP_ERROR_NOT_FOUND = 5,
  CRISP_ERROR_ALREADY_EXISTS = 6,
  CRISP_ERROR_PERMISSION_DENIED = 7,
  CRISP_ERROR_RESOURCE_EXHAUSTED = 8,
  CRISP_ERROR_FAILED_PRECONDITION = 9,
  CRISP_ERROR_ABORTED = 10,
  CRISP_ERROR_OUT_OF_RANGE = 11,
  CRISP_ERROR_UNIMPLEMENTED = 12,
  CRISP_ERROR_INTERNAL = 13,
  CRISP_ERROR_UNAVAILABLE = 14,
  CRISP_ERROR_DATA_LOSS = 15,
  CRISP_ERROR_UNAUTHENTICATED = 16,
} CrispErrorCode;

/* Sets error and returns FALSE, for `return crisp_throw (error, CODE, "...")`. */
gboolean crisp_throw (GError **error, CrispErrorCode code, const char *fmt, ...)
    G_GNUC_PRINTF (3, 4);

/* Sets an error from -errno (or errno) with a message prefix, returns FALSE. */
gboolean crisp_throw_errno (GError **error, int err, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* Prefixes an existing error's message; returns FALSE. */
gboolean crisp_prefix_error (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* Maps any GError to the gRPC status code it should travel as. */
CrispErrorCode crisp_error_to_code (const GError *error);

/* The gRPC name of status code `code` ("OK", "NOT_FOUND" ...); "UNKNOWN" for a code gRPC does
 * not define. */
const char *crisp_error_code_name (int code);

G_END_DECLS
