/* The crisp error domain and its helpers. */
#include "config.h"

#include "crisp-error.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>

/* Not G_DEFINE_QUARK: it caches the quark in a plain static, which two worker threads failing
 * their first calls at the same moment both read and write (a data race ThreadSanitizer reports);
 * an atomic cache is the same cost. */
GQuark
crisp_error_quark (void)
{
  static gint cached;
  GQuark q = (GQuark) g_atomic_int_get (&cached);
  if (G_UNLIKELY (q == 0))
    {
      q = g_quark_from_static_string ("crisp-error-quark");
      g_atomic_int_set (&cached, (gint) q);
    }
  return q;
}

gboolean
crisp_throw (GError **error, CrispErrorCode code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, CRISP_ERROR, code, msg);
  return FALSE;
}

static CrispErrorCode
code_for_errno (int err)
{
  switch (err)
    {
    case ENOENT:
      return CRISP_ERROR_NOT_FOUND;
    case EEXIST:
      return CRISP_ERROR_ALREADY_EXISTS;
    case EINVAL:
    case ENAMETOOLONG:
      return CRISP_ERROR_INVALID_ARGUMENT;
    case EACCES:
    case EPERM:
      return CRISP_ERROR_PERMISSION_DENIED;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return CRISP_ERROR_RESOURCE_EXHAUSTED;
    case ETIMEDOUT:
      return CRISP_ERROR_DEADLINE_EXCEEDED;
    default:
      return CRISP_ERROR_INTERNAL;
    }
}

gboolean
crisp_throw_errno (GError **error, int err, const char *fmt, ...)
{
  if (err < 0)
    err = -err;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, CRISP_ERROR, code_for_errno (err), "%s: %s", msg, g_strerror (err));
  return FALSE;
}

gboolean
crisp_prefix_error (GError **error, const char *fmt, ...)
{
  if (error == NULL || *error == NULL)
    return FALSE;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *prefix = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_prefix_error (error, "%s", prefix);
  return FALSE;
}

CrispErrorCode
crisp_error_to_code (const GError *error)
{
  if (error == NULL)
    return CRISP_ERROR_UNKNOWN;
  if (error->domain == CRISP_ERROR && error->code >= CRISP_ERROR_CANCELLED
      && error->code <= CRISP_ERROR_UNAUTHENTICATED)
    return (CrispErrorCode) error->code;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return CRISP_ERROR_CANCELLED;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return CRISP_ERROR_DEADLINE_EXCEEDED;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)
      || g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    return CRISP_ERROR_NOT_FOUND;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    return CRISP_ERROR_ALREADY_EXISTS;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT))
    return CRISP_ERROR_INVALID_ARGUMENT;
  return CRISP_ERROR_INTERNAL;
}

/* Indexed by code. */
static const char *const code_names[] = {
  "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
  "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
  "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
  "DATA_LOSS", "UNAUTHENTICATED",
};

const char *
crisp_error_code_name (int code)
{
  return code >= 0 && code < (int) G_N_ELEMENTS (code_names) ? code_names[code] : "UNKNOWN";
}
