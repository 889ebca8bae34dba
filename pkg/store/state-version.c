/* The state format version file: read it, refuse a newer one, migrate an older one. */
#include "config.h"

#include "state-version.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/* "N\n" (the newline optional): anything else is a file this build does not understand. */
static gboolean
parse_version (const char *buf, size_t len, guint *out)
{
  if (len > 0 && buf[len - 1] == '\n')
    len--;
  if (len == 0 || len > 10)
    return FALSE;
  guint64 v = 0;
  for (size_t i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (buf[i]))
        return FALSE;
      v = v * 10 + (guint64) (buf[i] - '0');
    }
  if (v == 0 || v > G_MAXUINT)
    return FALSE;
  *out = (guint) v;
  return TRUE;
}

/* The version in dirfd's version file; a missing file is version 1. */
static gboolean
read_version (int dirfd, const char *path, guint *out, GError **error)
{
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  int r = crisp_read_all_at (dirfd, CRISP_STATE_VERSION_FILE, 64, &buf, &len);
  if (r == -ENOENT)
    {
      *out = 1;
      return TRUE;
    }
  if (r < 0 && r != -EFBIG)
    return crisp_throw_errno (error, r, "reading '%s'", path);
  if (r < 0 || !parse_version (buf, len, out))
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "state version file '%s' does not hold a version number; refusing to "
                        "guess the format of the state it describes",
                        path);
  return TRUE;
}

static gboolean
write_version (int dirfd, const char *path, guint version, GError **error)
{
  char text[16];
  int len = snprintf (text, sizeof text, "%u\n", version);
  int r = crisp_write_file_atomic_at (dirfd, CRISP_STATE_VERSION_FILE, text, (size_t) len, 0600);
  if (r < 0)
    return crisp_throw_errno (error, r, "writing '%s'", path);
  return TRUE;
}

gboolean
crisp_state_version_check (const char *dir, guint known, const CrispStateMigrateFunc *migrations,
                           guint *out_found, GError **error)
{
  g_autofree char *path = g_build_filename (dir, CRISP_STATE_VERSION_FILE, NULL);
  _cleanup_close_ int dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return crisp_throw_errno (error, errno, "opening state directory '%s'", dir);
  guint version = 0;
  if (!read_version (dirfd, path, &version, error))
    return FALSE;
  if (version > known)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "'%s' says the state is format version %u, but this crisp knows only "
                        "versions up to %u: it was written by a newer crisp; run that one, or "
                        "move the state aside",
                        path, version, known);
  if (out_found != NULL)
    *out_found = version;
  gboolean exists = faccessat (dirfd, CRISP_STATE_VERSION_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
  for (; version < known; version++)
    {
      CrispStateMigrateFunc step = migrations ? migrations[version - 1] : NULL;
      if (step != NULL && !step (dir, error))
        return crisp_prefix_error (error, "migrating '%s' from state version %u to %u: ", dir,
                                   version, version + 1);
      if (!write_version (dirfd, path, version + 1, error))
        return FALSE;
      exists = TRUE;
    }
  return exists || write_version (dirfd, path, version, error);
}
