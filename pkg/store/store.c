/* The record store: <root>/<id>/<name> JSON files, atomic writes, 0700 directories, and a
 * loader that quarantines what it cannot trust instead of failing. */
#include "config.h"

#include "store.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define QUARANTINE_DIR ".quarantine"
#define TRASH_DIR ".trash"

struct _CrispStore
{
  char *path;
  int dirfd;
};

CrispStore *
crisp_store_open (const char *path, GError **error)
{
  int r = crisp_mkdir_p (path, 0700);
  if (r < 0)
    return crisp_throw_errno (error, r, "creating store '%s'", path), NULL;
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "opening store '%s'", path), NULL;
  /* The records hold pod configuration (labels, annotations): nobody else reads them. */
  if (fchmod (fd, 0700) < 0)
    {
      crisp_throw_errno (error, errno, "chmod store '%s'", path);
      close (fd);
      return NULL;
    }
  CrispStore *store = g_new0 (CrispStore, 1);
  store->path = g_strdup (path);
  store->dirfd = fd;
  return store;
}

void
crisp_store_free (CrispStore *store)
{
  if (store == NULL)
    return;
  close (store->dirfd);
  g_free (store->path);
  g_free (store);
}

const char *
crisp_store_path (CrispStore *store)
{
  return store->path;
}

char *
crisp_store_object_path (CrispStore *store, const char *id)
{
  return g_build_filename (store->path, id, NULL);
}

static gboolean
check_names (const char *id, const char *name, GError **error)
{
  if (!crisp_id_is_valid_len (id, 0))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "invalid object id '%s'", id);
  if (name != NULL && (*name == '\0' || *name == '.' || strchr (name, '/') != NULL))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "invalid record name '%s'", name);
  return TRUE;
}

static int
open_object (CrispStore *store, const char *id, gboolean create)
{
  if (create && mkdirat (store->dirfd, id, 0700) < 0 && errno != EEXIST)
    return -errno;
  int fd = openat (store->dirfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  return fd < 0 ? -errno : fd;
}

gboolean
crisp_store_save_sync (CrispStore *store, const char *id, const char *name, JsonNode *node,
                       gboolean durable, GError **error)
{
  if (!check_names (id, name, error))
    return FALSE;
  _cleanup_close_ int fd = open_object (store, id, TRUE);
  if (fd < 0)
    return crisp_throw_errno (error, fd, "creating record directory for '%s'", id);
  gsize len = 0;
  g_autofree char *text = json_to_string (node, FALSE);
  len = strlen (text);
  int r = durable ? crisp_write_file_atomic_at (fd, name, text, len, 0600)
                  : crisp_write_file_replace_at (fd, name, text, len, 0600);
  if (r < 0)
    return crisp_throw_errno (error, r, "writing record '%s/%s'", id, name);
  return TRUE;
}

gboolean
crisp_store_save (CrispStore *store, const char *id, const char *name, JsonNode *node,
                  GError **error)
{
  return crisp_store_save_sync (store, id, name, node, TRUE, error);
}

/* As crisp_store_load; with `empty` given, a record that is there but empty sets it instead
 * of an error. */
static JsonNode *
load_record (CrispStore *store, const char *id, const char *name, gboolean *empty, GError **error)
{
  if (!check_names (id, name, error))
    return NULL;
  _cleanup_close_ int fd = open_object (store, id, FALSE);
  if (fd < 0)
    return crisp_throw_errno (error, fd, "opening record directory '%s'", id), NULL;
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  int r = crisp_read_all_at (fd, name, CRISP_STORE_MAX_RECORD, &buf, &len);
  if (r == -EFBIG)
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "record '%s/%s' is too large", id, name),
           NULL;
  if (r < 0)
    return crisp_throw_errno (error, r, "reading record '%s/%s'", id, name), NULL;
  if (len == 0 && empty != NULL)
    return *empty = TRUE, NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (JsonNode) node = json_from_string (buf, &local);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS, "record '%s/%s' is not a JSON object%s%s", id,
                        name, local ? ": " : "", local ? local->message : ""),
           NULL;
  return g_steal_pointer (&node);
}

JsonNode *
crisp_store_load (CrispStore *store, const char *id, const char *name, GError **error)
{
  return load_record (store, id, name, NULL, error);
}

gboolean
crisp_store_delete (CrispStore *store, const char *id, const char *name, GError **error)
{
  if (!check_names (id, name, error))
    return FALSE;
  _cleanup_close_ int fd = open_object (store, id, FALSE);
  if (fd == -ENOENT)
    return TRUE;
  if (fd < 0)
    return crisp_throw_errno (error, fd, "opening record directory '%s'", id);
  if (unlinkat (fd, name, 0) < 0 && errno != ENOENT)
    return crisp_throw_errno (error, errno, "deleting record '%s/%s'", id, name);
  return TRUE;
}

static int rm_rf_at (int dirfd, const char *name, GCancellable *cancellable);

static int
rm_children (int fd, dev_t dev, GCancellable *cancellable)
{
  DIR *d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return -errno;
    }
  int ret = 0;
  struct dirent *de;
  while (ret != -ECANCELED && (de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (g_cancellable_is_cancelled (cancellable))
        {
          ret = -ECANCELED;
          break;
        }
      struct stat st;
      if (fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      int r = 0;
      if (S_ISDIR (st.st_mode))
        r = st.st_dev != dev ? -EBUSY : rm_rf_at (dirfd (d), de->d_name, cancellable);
      else if (unlinkat (dirfd (d), de->d_name, 0) < 0 && errno != ENOENT)
        r = -errno;
      if (r < 0 && (ret == 0 || r == -ECANCELED))
        ret = r;
    }
  closedir (d);
  return ret;
}

static int
rm_rf_at (int dirfd, const char *name, GCancellable *cancellable)
{
  struct stat st;
  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR (st.st_mode))
    return unlinkat (dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
  int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  struct stat dst;
  if (fstat (fd, &dst) < 0 || dst.st_dev != st.st_dev)
    {
      close (fd);
      return -EBUSY;
    }
  int r = rm_children (fd, st.st_dev, cancellable);
  if (r < 0)
    return r;
  if (unlinkat (dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return -errno;
  return 0;
}

int
crisp_store_rm_rf_at (int dirfd, const char *name)
{
  return rm_rf_at (dirfd, name, NULL);
}

gboolean
crisp_store_remove (CrispStore *store, const char *id, GError **error)
{
  if (!check_names (id, NULL, error))
    return FALSE;
  int r = crisp_store_rm_rf_at (store->dirfd, id);
  if (r < 0)
    return crisp_throw_errno (error, r, "removing '%s/%s'", store->path, id);
  return TRUE;
}

gboolean
crisp_store_quarantine (CrispStore *store, const char *id, GError **error)
{
  if (mkdirat (store->dirfd, QUARANTINE_DIR, 0700) < 0 && errno != EEXIST)
    return crisp_throw_errno (error, errno, "creating '%s/" QUARANTINE_DIR "'", store->path);
  g_autofree char *dest
      = g_strdup_printf (QUARANTINE_DIR "/%s.%" G_GINT64_FORMAT, id, g_get_real_time ());
  if (renameat (store->dirfd, id, store->dirfd, dest) < 0)
    return crisp_throw_errno (error, errno, "quarantining '%s/%s'", store->path, id);
  return TRUE;
}

static void
load_one (CrispStore *store, const char *id, const char *name, CrispStoreLoadFunc fn, gpointer data,
          GPtrArray *problems)
{
  g_autoptr (GError) error = NULL;
  /* Records are written whole and renamed into place, so only a power loss leaves an empty
   * one: the rename reached the disk and the data of a record not forced to it did not.
   * Nothing it was to say counted for anything yet, as if it had never been written. */
  gboolean empty = FALSE;
  g_autoptr (JsonNode) node = load_record (store, id, name, &empty, &error);
  if (node != NULL && fn (id, node, data, &error))
    return;
  if (node == NULL)
    fn (id, NULL, data, NULL);
  /* No record at all: a crash between creating the directory and the first record's rename
   * (what is left is empty directories and a temporary file), or during a removal.  Neither
   * holds anything worth keeping, so it is finished rather than quarantined. */
  if (node == NULL && (empty || g_error_matches (error, CRISP_ERROR, CRISP_ERROR_NOT_FOUND)))
    {
      int r = crisp_store_rm_rf_at (store->dirfd, id);
      g_autofree char *what
          = empty
                ? g_strdup_printf ("record '%s' is empty (written just before a power loss)", name)
                : g_strdup_printf ("no record '%s'", name);
      if (problems != NULL)
        g_ptr_array_add (problems, g_strdup_printf ("%s/%s: %s, %s%s", store->path, id, what,
                                                    r < 0 ? "not removed: " : "removed",
                                                    r < 0 ? g_strerror (-r) : ""));
      return;
    }
  g_autoptr (GError) qerror = NULL;
  gboolean moved = crisp_store_quarantine (store, id, &qerror);
  if (problems != NULL)
    g_ptr_array_add (problems, g_strdup_printf ("%s/%s: %s; %s%s", store->path, id,
                                                error ? error->message : "rejected",
                                                moved ? "moved to " QUARANTINE_DIR : "not moved: ",
                                                moved ? "" : qerror->message));
}

gboolean
crisp_store_load_all (CrispStore *store, const char *name, CrispStoreLoadFunc fn, gpointer data,
                      GPtrArray *problems, GError **error)
{
  int fd = openat (store->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "reading store '%s'", store->path);
  DIR *d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return crisp_throw_errno (error, errno, "reading store '%s'", store->path);
    }
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      if (de->d_name[0] == '.')
        continue;
      if (!crisp_id_is_valid_len (de->d_name, 0))
        {
          if (problems != NULL)
            g_ptr_array_add (problems, g_strdup_printf ("%s/%s: not an object id, ignoring",
                                                        store->path, de->d_name));
          continue;
        }
      g_ptr_array_add (ids, g_strdup (de->d_name));
    }
  closedir (d);
  for (guint i = 0; i < ids->len; i++)
    load_one (store, ids->pdata[i], name, fn, data, problems);
  return TRUE;
}

/* The trash: objects whose removal was decided and made durable, and whose contents are
 * deleted later (by the caller's background work, or at the next start). */

static int
open_trash (CrispStore *store, gboolean create)
{
  if (create && mkdirat (store->dirfd, TRASH_DIR, 0700) < 0 && errno != EEXIST)
    return -errno;
  int fd = openat (store->dirfd, TRASH_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  return fd < 0 ? -errno : fd;
}

gboolean
crisp_store_retire (CrispStore *store, const char *id, GError **error)
{
  if (!check_names (id, NULL, error))
    return FALSE;
  _cleanup_close_ int trash = open_trash (store, TRUE);
  if (trash < 0)
    return crisp_throw_errno (error, trash, "opening '%s/" TRASH_DIR "'", store->path);
  int r = renameat (store->dirfd, id, trash, id) < 0 ? -errno : 0;
  /* Only a crash after a rename that no fsync made durable leaves the same id in both places:
   * the store's copy is the one that counts, the trash's an older one. */
  if ((r == -EEXIST || r == -ENOTEMPTY) && (r = rm_rf_at (trash, id, NULL)) == 0)
    r = renameat (store->dirfd, id, trash, id) < 0 ? -errno : 0;
  if (r < 0)
    return crisp_throw_errno (error, r, "moving '%s/%s' to the trash", store->path, id);
  /* One directory, one fsync: the journal commits a rename whole, and what matters is that
   * the object is gone from the root, so that it is never loaded again. */
  if (fsync (store->dirfd) < 0)
    return crisp_throw_errno (error, errno, "syncing '%s'", store->path);
  return TRUE;
}

char *
crisp_store_trash_path (CrispStore *store, const char *id)
{
  return g_build_filename (store->path, TRASH_DIR, id, NULL);
}

GPtrArray *
crisp_store_trash_list (CrispStore *store)
{
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);
  int fd = open_trash (store, FALSE); /* none yet: nothing was ever retired */
  DIR *d = fd < 0 ? NULL : fdopendir (fd);
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return ids;
    }
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    if (crisp_id_is_valid_len (de->d_name, 0))
      g_ptr_array_add (ids, g_strdup (de->d_name));
  closedir (d);
  return ids;
}

JsonNode *
crisp_store_trash_load (CrispStore *store, const char *id, const char *name, GError **error)
{
  g_autofree char *root = g_build_filename (store->path, TRASH_DIR, NULL);
  g_autoptr (CrispStore) trash = crisp_store_open (root, error);
  return trash ? crisp_store_load (trash, id, name, error) : NULL;
}

gboolean
crisp_store_trash_remove (CrispStore *store, const char *id, GCancellable *cancellable,
                          GError **error)
{
  if (!check_names (id, NULL, error))
    return FALSE;
  _cleanup_close_ int trash = open_trash (store, FALSE);
  int r = trash == -ENOENT ? 0 : trash < 0 ? trash : rm_rf_at (trash, id, cancellable);
  if (r < 0)
    return crisp_throw_errno (error, r, "removing '%s/" TRASH_DIR "/%s'", store->path, id);
  return TRUE;
}
