/* The store's directories and repo, pins, prune and disk usage. */
#include "config.h"

#include "storage-private.h"
#include "crisp-base.h"
#include "crisp-error.h"
#include "crisp-tsan.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const char *
crisp_storage_diff_hex (const char *diff_id)
{
  if (diff_id == NULL || !g_str_has_prefix (diff_id, "sha256:") || strlen (diff_id) != 71)
    return NULL;
  const char *hex = diff_id + 7;
  return crisp_id_is_valid_len (hex, 64) ? hex : NULL;
}

int
crisp_storage_rm_rf_at (int dfd, const char *name)
{
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR (st.st_mode))
    return unlinkat (dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  DIR *d = fdopendir (fd);
  if (d == NULL)
    {
      int r = -errno;
      close (fd);
      return r;
    }
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      r = crisp_storage_rm_rf_at (dirfd (d), de->d_name);
  closedir (d);
  if (r < 0)
    return r;
  return unlinkat (dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

static int
open_subdir_at (int dfd, const char *name)
{
  if (mkdirat (dfd, name, 0700) < 0 && errno != EEXIST)
    return -errno;
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int
crisp_storage_open_subdir (CrispStorage *store, const char *name, GError **error)
{
  int fd = open_subdir_at (store->root_fd, name);
  if (fd < 0)
    return (crisp_throw_errno (error, fd, "opening %s/%s", store->root, name), -1);
  return fd;
}

/* Clears tmp/ (what an interrupted import or download left). */
static gboolean
clean_tmp (CrispStorage *store, GError **error)
{
  int r = crisp_storage_rm_rf_at (store->root_fd, "tmp");
  if (r < 0)
    return crisp_throw_errno (error, r, "removing %s/tmp", store->root);
  store->tmp_fd = crisp_storage_open_subdir (store, "tmp", error);
  return store->tmp_fd >= 0;
}

static gboolean
open_repo (CrispStorage *store, GError **error)
{
  struct stat st;
  if (fstatat (store->root_fd, "repo/config", &st, 0) == 0)
    store->repo = ostree_repo_open_at (store->root_fd, "repo", NULL, error);
  else
    store->repo
        = ostree_repo_create_at (store->root_fd, "repo", OSTREE_REPO_MODE_BARE, NULL, NULL, error);
  if (store->repo == NULL)
    return crisp_prefix_error (error, "ostree repo %s/repo: ", store->root);
  store->objects_path = g_build_filename (store->root, "repo", "objects", NULL);
  return TRUE;
}

/* Removes one tree a prune moved into tmp/; a crash leaves it to clean_tmp (). */
static void
reap_tree (gpointer name, gpointer user_data)
{
  CrispStorage *store = user_data;
  CRISP_TSAN_ACQUIRE (name);
  int r = crisp_storage_rm_rf_at (store->tmp_fd, name);
  if (r < 0)
    g_warning ("removing %s/tmp/%s: %s", store->root, (char *) name, g_strerror (-r));
  g_free (name);
  g_mutex_lock (&store->reap_lock);
  if (--store->reaping == 0)
    g_cond_broadcast (&store->reaped);
  g_mutex_unlock (&store->reap_lock);
}

void
crisp_storage_settle (CrispStorage *store)
{
  g_mutex_lock (&store->reap_lock);
  while (store->reaping > 0)
    g_cond_wait (&store->reaped, &store->reap_lock);
  g_mutex_unlock (&store->reap_lock);
}

CrispStorage *
crisp_storage_open (const char *root, GError **error)
{
  int r = crisp_mkdir_p (root, 0700);
  if (r < 0)
    return (crisp_throw_errno (error, r, "creating %s", root), NULL);
  g_autoptr (CrispStorage) store = g_new0 (CrispStorage, 1);
  store->root = g_strdup (root);
  store->layers_fd = store->tmp_fd = -1;
  g_mutex_init (&store->repo_lock);
  g_mutex_init (&store->pin_lock);
  g_mutex_init (&store->reap_lock);
  g_cond_init (&store->reaped);
  store->pins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  store->reaper = g_thread_pool_new (reap_tree, store, 1, FALSE, NULL);
  store->root_fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (store->root_fd < 0)
    return (crisp_throw_errno (error, errno, "opening %s", root), NULL);
  if (fchmod (store->root_fd, 0700) < 0)
    return (crisp_throw_errno (error, errno, "chmod %s", root), NULL);
  store->layers_fd = crisp_storage_open_subdir (store, "layers", error);
  if (store->layers_fd < 0 || !clean_tmp (store, error) || !open_repo (store, error))
    return NULL;
  return g_steal_pointer (&store);
}

void
crisp_storage_free (CrispStorage *store)
{
  if (store == NULL)
    return;
  if (store->reaper != NULL)
    g_thread_pool_free (store->reaper, FALSE, TRUE); /* runs what is queued first */
  /* Every removal is over; the lock is taken again so that what its thread wrote is seen to
   * come before the free (GLib's pool joins its threads where ThreadSanitizer cannot see). */
  crisp_storage_settle (store);
  g_free (store->root);
  g_free (store->objects_path);
  crisp_closep (&store->root_fd);
  crisp_closep (&store->layers_fd);
  crisp_closep (&store->tmp_fd);
  g_clear_object (&store->repo);
  g_mutex_clear (&store->repo_lock);
  g_mutex_clear (&store->pin_lock);
  g_mutex_clear (&store->reap_lock);
  g_cond_clear (&store->reaped);
  g_hash_table_unref (store->pins);
  g_free (store);
}

const char *
crisp_storage_root (CrispStorage *store)
{
  return store->root;
}

gboolean
crisp_storage_has_layer (CrispStorage *store, const char *diff_id)
{
  const char *hex = crisp_storage_diff_hex (diff_id);
  struct stat st;
  return hex != NULL && fstatat (store->layers_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0
         && S_ISDIR (st.st_mode);
}

int
crisp_storage_open_tmpfile (CrispStorage *store, GError **error)
{
  int fd = openat (store->tmp_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return (crisp_throw_errno (error, errno, "creating a temporary file in %s/tmp", store->root),
            -1);
  return fd;
}

void
crisp_storage_pin (CrispStorage *store, const char *diff_id)
{
  g_mutex_lock (&store->pin_lock);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (store->pins, diff_id));
  g_hash_table_replace (store->pins, g_strdup (diff_id), GUINT_TO_POINTER (n + 1));
  g_mutex_unlock (&store->pin_lock);
}

void
crisp_storage_unpin (CrispStorage *store, const char *diff_id)
{
  g_mutex_lock (&store->pin_lock);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (store->pins, diff_id));
  if (n <= 1)
    g_hash_table_remove (store->pins, diff_id);
  else
    g_hash_table_replace (store->pins, g_strdup (diff_id), GUINT_TO_POINTER (n - 1));
  g_mutex_unlock (&store->pin_lock);
}

/* Drops one layer: the metadata tree first (the layer stops existing: renamed into tmp/,
 * removed there in the background, or at the next open after a crash), then its ref. */
static gboolean
remove_layer (CrispStorage *store, const char *hex, GError **error)
{
  g_autofree char *gone = g_strdup_printf ("gone-%" G_GUINT64_FORMAT "-%s", ++store->gone_seq, hex);
  if (renameat (store->layers_fd, hex, store->tmp_fd, gone) == 0)
    {
      g_mutex_lock (&store->reap_lock);
      store->reaping++;
      g_mutex_unlock (&store->reap_lock);
      /* The name passes to the reaper through GLib's queue, whose lock TSan cannot see. */
      CRISP_TSAN_RELEASE (gone);
      CRISP_TSAN_IGNORE_BEGIN ();
      g_thread_pool_push (store->reaper, g_steal_pointer (&gone), NULL);
      CRISP_TSAN_IGNORE_END ();
    }
  else if (errno != ENOENT)
    return crisp_throw_errno (error, errno, "removing layer %s", hex);
  g_autofree char *ref = g_strconcat (CRISP_LAYER_REF_PREFIX, hex, NULL);
  return ostree_repo_set_ref_immediate (store->repo, NULL, ref, NULL, NULL, error);
}

/* Every layer the store knows: metadata trees and refs (a crash may leave either alone). */
static GHashTable *
list_layers (CrispStorage *store, GError **error)
{
  g_autoptr (GHashTable) all = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) refs = NULL;
  if (!ostree_repo_list_refs_ext (store->repo, "layer", &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, NULL,
                                  error))
    return NULL;
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, refs);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      const char *name = key;
      if (g_str_has_prefix (name, CRISP_LAYER_REF_PREFIX))
        name += strlen (CRISP_LAYER_REF_PREFIX);
      g_hash_table_add (all, g_strdup (name));
    }
  g_autofree char *layers = g_build_filename (store->root, "layers", NULL);
  g_autoptr (GDir) ld = g_dir_open (layers, 0, error);
  if (ld == NULL)
    return NULL;
  const char *name;
  while ((name = g_dir_read_name (ld)) != NULL)
    g_hash_table_add (all, g_strdup (name));
  return g_steal_pointer (&all);
}

void
crisp_storage_lock (CrispStorage *store)
{
  g_mutex_lock (&store->repo_lock);
}

void
crisp_storage_unlock (CrispStorage *store)
{
  g_mutex_unlock (&store->repo_lock);
}

/* The objects reachable from the commits the refs in `refs` (name -> checksum) point to,
 * skipping the names in `skip`; into `reachable`. */
static gboolean
reach_refs (CrispStorage *store, GHashTable *refs, GHashTable *skip, GHashTable *reachable,
            GError **error)
{
  GHashTableIter it;
  gpointer name, commit;
  g_hash_table_iter_init (&it, refs);
  while (g_hash_table_iter_next (&it, &name, &commit))
    if ((skip == NULL || !g_hash_table_contains (skip, name))
        && !ostree_repo_traverse_commit_union (store->repo, commit, 0, reachable, NULL, error))
      return FALSE;
  return TRUE;
}

/* Deletes the objects only the refs named in `gone` reached: the repo's other objects are
 * not listed. `refs` is every ref (name -> checksum) as it was before those went. */
static gboolean
delete_objects_of (CrispStorage *store, GHashTable *refs, GHashTable *gone, GError **error)
{
  g_autoptr (GHashTable) dropped = ostree_repo_traverse_new_reachable ();
  g_autoptr (GHashTable) kept = ostree_repo_traverse_new_reachable ();
  GHashTableIter it;
  gpointer name;
  g_hash_table_iter_init (&it, gone);
  while (g_hash_table_iter_next (&it, &name, NULL))
    {
      const char *commit = g_hash_table_lookup (refs, name);
      if (commit != NULL
          && !ostree_repo_traverse_commit_union (store->repo, commit, 0, dropped, NULL, error))
        return FALSE;
    }
  if (g_hash_table_size (dropped) == 0)
    return TRUE;
  if (!reach_refs (store, refs, gone, kept, error))
    return FALSE;
  g_hash_table_iter_init (&it, dropped);
  gpointer key;
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      if (g_hash_table_contains (kept, key))
        continue;
      const char *checksum;
      OstreeObjectType type;
      ostree_object_name_deserialize (key, &checksum, &type);
      g_autoptr (GError) local = NULL;
      if (!ostree_repo_delete_object (store->repo, type, checksum, NULL, &local)
          && !g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return g_propagate_error (error, g_steal_pointer (&local)), FALSE;
    }
  return TRUE;
}

gboolean
crisp_storage_prune_locked (CrispStorage *store, GHashTable *keep, gboolean every_object,
                            guint *out_removed, GError **error)
{
  guint removed = 0;
  g_autoptr (GHashTable) all = list_layers (store, error);
  g_autoptr (GHashTable) refs = NULL;
  g_autoptr (GHashTable) gone = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gboolean ok = all != NULL
                && (every_object || ostree_repo_list_refs (store->repo, NULL, &refs, NULL, error));
  GHashTableIter it;
  gpointer key;
  if (ok)
    g_hash_table_iter_init (&it, all);
  while (ok && g_hash_table_iter_next (&it, &key, NULL))
    {
      g_autofree char *diff_id = g_strconcat ("sha256:", (char *) key, NULL);
      if (g_hash_table_contains (keep, diff_id))
        continue;
      /* the pin lock held from the check to the removal: a pull that pins the layer
       * meanwhile waits, then finds it gone and imports it again */
      g_mutex_lock (&store->pin_lock);
      gboolean pinned = g_hash_table_contains (store->pins, diff_id);
      if (!pinned)
        ok = remove_layer (store, key, error);
      g_mutex_unlock (&store->pin_lock);
      if (pinned)
        continue;
      g_hash_table_add (gone, g_strconcat (CRISP_LAYER_REF_PREFIX, (char *) key, NULL));
      removed++;
    }
  gint total = 0, pruned = 0;
  guint64 freed = 0;
  /* every object at start and after a failed pull: a crash or an error mid-import can
   * leave objects no commit references; otherwise only what the removed layers held */
  if (ok && every_object)
    ok = ostree_repo_prune (store->repo, OSTREE_REPO_PRUNE_FLAGS_REFS_ONLY, -1, &total, &pruned,
                            &freed, NULL, error);
  else if (ok)
    ok = delete_objects_of (store, refs, gone, error);
  if (ok && out_removed)
    *out_removed = removed;
  return ok;
}

static int
usage_at (int dfd, const char *name, GHashTable *seen, guint64 *bytes, guint64 *inodes)
{
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -errno;
  if (st.st_nlink > 1 && !S_ISDIR (st.st_mode))
    {
      g_autofree char *key
          = g_strdup_printf ("%lu:%lu", (unsigned long) st.st_dev, (unsigned long) st.st_ino);
      if (!g_hash_table_add (seen, g_steal_pointer (&key)))
        return 0;
    }
  *bytes += (guint64) st.st_blocks * 512;
  *inodes += 1;
  if (!S_ISDIR (st.st_mode))
    return 0;
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (d == NULL)
    {
      crisp_closep (&fd);
      return 0;
    }
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      r = usage_at (dirfd (d), de->d_name, seen, bytes, inodes);
  closedir (d);
  return r;
}

gboolean
crisp_storage_usage (CrispStorage *store, guint64 *out_bytes, guint64 *out_inodes, GError **error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint64 bytes = 0, inodes = 0;
  int r = usage_at (store->root_fd, ".", seen, &bytes, &inodes);
  if (r < 0)
    return crisp_throw_errno (error, r, "measuring %s", store->root);
  *out_bytes = bytes;
  *out_inodes = inodes;
  return TRUE;
}
