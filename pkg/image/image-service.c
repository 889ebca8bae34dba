/* The image service: records + storage + registry client behind one lock. */
#include "config.h"

#include "image-service.h"
#include "image-pull-private.h"
#include "reference.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <string.h>

/* A record whose layers are not all in the store (a store restored from elsewhere, a
 * disk repaired) names an image no container could run: it goes, the kubelet pulls again. */
static gboolean
drop_incomplete (CrispImageService *svc, GError **error)
{
  g_autoptr (GPtrArray) all = crisp_image_store_list (svc->records);
  for (guint i = 0; i < all->len; i++)
    {
      CrispImage *img = all->pdata[i];
      for (guint j = 0; j < img->diff_ids->len; j++)
        {
          if (crisp_storage_has_layer (svc->storage, img->diff_ids->pdata[j]))
            continue;
          g_warning ("image %s: layer %s is missing from the store, forgetting the image", img->id,
                     (char *) img->diff_ids->pdata[j]);
          g_autofree char *id = g_strdup (img->id);
          if (!crisp_image_store_delete (svc->records, id, error))
            return FALSE;
          break;
        }
    }
  return TRUE;
}

CrispImageService *
crisp_image_service_new (const char *storage_root, const char *registries_dir, int max_downloads,
                         GError **error)
{
  crisp_registry_global_init ();
  g_autoptr (CrispImageService) svc = g_new0 (CrispImageService, 1);
  g_mutex_init (&svc->lock);
  g_cond_init (&svc->cond);
  svc->inflight = g_hash_table_new (g_str_hash, g_str_equal);
  svc->inflight_layers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  svc->registries_dir = g_strdup (registries_dir);
  svc->max_downloads = CLAMP (max_downloads, 1, 64);
  svc->storage = crisp_storage_open (storage_root, error);
  if (svc->storage == NULL)
    return NULL;
  int dirfd = crisp_storage_open_subdir (svc->storage, "images", error);
  if (dirfd < 0)
    return NULL;
  svc->records = crisp_image_store_load (dirfd, error);
  if (svc->records == NULL || !drop_incomplete (svc, error)
      || !crisp_image_service_gc (svc, TRUE, error))
    return NULL;
  return g_steal_pointer (&svc);
}

void
crisp_image_service_free (CrispImageService *svc)
{
  if (svc == NULL)
    return;
  crisp_image_store_free (svc->records);
  crisp_storage_free (svc->storage);
  g_hash_table_unref (svc->inflight);
  g_hash_table_unref (svc->inflight_layers);
  g_free (svc->registries_dir);
  g_mutex_clear (&svc->lock);
  g_cond_clear (&svc->cond);
  g_free (svc);
}

void
crisp_image_service_set_in_use_func (CrispImageService *svc, CrispImageInUseFunc fn, gpointer data)
{
  g_mutex_lock (&svc->lock);
  svc->in_use = fn;
  svc->in_use_data = data;
  g_mutex_unlock (&svc->lock);
}

/* Prunes every layer no record needs (crisp_storage_prune_locked () says what
 * `every_object` adds). Takes the service lock. */
gboolean
crisp_image_service_gc (CrispImageService *svc, gboolean every_object, GError **error)
{
  g_autoptr (GHashTable) keep = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  /* the repo lock first (records are saved under it too, see image-pull.c), then the
   * records only for the snapshot: lookups never wait for a prune */
  crisp_storage_lock (svc->storage);
  g_mutex_lock (&svc->lock);
  g_autoptr (GPtrArray) all = crisp_image_store_list (svc->records);
  for (guint i = 0; i < all->len; i++)
    {
      CrispImage *img = all->pdata[i];
      for (guint j = 0; j < img->diff_ids->len; j++)
        g_hash_table_add (keep, g_strdup (img->diff_ids->pdata[j]));
    }
  g_mutex_unlock (&svc->lock);
  guint removed = 0;
  gboolean ok = crisp_storage_prune_locked (svc->storage, keep, every_object, &removed, error);
  crisp_storage_unlock (svc->storage);
  if (!ok)
    return FALSE;
  if (removed > 0)
    g_debug ("pruned %u unused layers", removed);
  return TRUE;
}

static gboolean
is_id_prefix (const char *s)
{
  size_t len = strlen (s);
  return len >= 12 && len <= 64 && crisp_id_is_valid_len (s, 0);
}

/* Under the lock. Borrowed. */
static CrispImage *
find_locked (CrispImageService *svc, const char *image, GError **error)
{
  if (crisp_digest_is_valid (image))
    return crisp_image_store_get (svc->records, image);
  g_autoptr (GPtrArray) all = crisp_image_store_list (svc->records);
  if (is_id_prefix (image))
    {
      CrispImage *found = NULL;
      for (guint i = 0; i < all->len; i++)
        if (g_str_has_prefix (((CrispImage *) all->pdata[i])->id + 7, image))
          {
            if (found != NULL)
              return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                                   "image ID prefix '%s' is ambiguous", image),
                      NULL);
            found = all->pdata[i];
          }
      if (found != NULL)
        return found;
    }
  g_autoptr (CrispImageRef) ref = crisp_image_ref_parse (image, error);
  if (ref == NULL)
    return NULL;
  g_autofree char *tagged = crisp_image_ref_tagged (ref);
  g_autofree char *digested = ref->digest ? crisp_image_ref_digested (ref, NULL) : NULL;
  for (guint i = 0; i < all->len; i++)
    {
      CrispImage *img = all->pdata[i];
      if (digested ? crisp_strv_contains (img->repo_digests, digested)
                   : crisp_strv_contains (img->repo_tags, tagged))
        return img;
    }
  return NULL;
}

CrispImage *
crisp_image_service_find (CrispImageService *svc, const char *image, GError **error)
{
  g_mutex_lock (&svc->lock);
  CrispImage *img = find_locked (svc, image, error);
  CrispImage *copy = img ? crisp_image_copy (img) : NULL;
  g_mutex_unlock (&svc->lock);
  return copy;
}

GPtrArray *
crisp_image_service_list (CrispImageService *svc, const char *filter)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_image_free);
  g_mutex_lock (&svc->lock);
  if (filter != NULL && *filter != '\0')
    {
      CrispImage *img = find_locked (svc, filter, NULL);
      if (img != NULL)
        g_ptr_array_add (out, crisp_image_copy (img));
    }
  else
    {
      g_autoptr (GPtrArray) all = crisp_image_store_list (svc->records);
      for (guint i = 0; i < all->len; i++)
        g_ptr_array_add (out, crisp_image_copy (all->pdata[i]));
    }
  g_mutex_unlock (&svc->lock);
  return out;
}

static gboolean
remove_locked (CrispImageService *svc, const char *image, GError **error)
{
  g_autoptr (GError) local = NULL;
  CrispImage *img = find_locked (svc, image, &local);
  if (img == NULL && local != NULL)
    return g_propagate_error (error, g_steal_pointer (&local)), FALSE;
  if (img == NULL)
    return TRUE; /* CRI: removing an absent image succeeds */
  if (svc->in_use != NULL && svc->in_use (img->id, svc->in_use_data))
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "image '%s' (%s) is in use by a container", image, img->id);
  g_autofree char *id = g_strdup (img->id);
  return crisp_image_store_delete (svc->records, id, error);
}

gboolean
crisp_image_service_remove (CrispImageService *svc, const char *image, GError **error)
{
  g_mutex_lock (&svc->lock);
  gboolean ok = remove_locked (svc, image, error);
  g_mutex_unlock (&svc->lock);
  /* the record is gone for good: a crash from here on leaves only what the prune at the
   * next start finds */
  return ok && crisp_image_service_gc (svc, FALSE, error);
}

gboolean
crisp_image_service_fs_usage (CrispImageService *svc, char **out_mountpoint, guint64 *out_bytes,
                              guint64 *out_inodes, GError **error)
{
  if (!crisp_storage_usage (svc->storage, out_bytes, out_inodes, error))
    return FALSE;
  *out_mountpoint = g_strdup (crisp_storage_root (svc->storage));
  return TRUE;
}

gboolean
crisp_image_service_mount_rootfs_idmapped (CrispImageService *svc, const char *image,
                                           const char *upper_dir, const char *work_dir,
                                           const char *target, int userns_fd, const char *stage,
                                           GError **error)
{
  g_autoptr (CrispImage) img = crisp_image_service_find (svc, image, error);
  if (img == NULL)
    return (error && *error)
               ? FALSE
               : crisp_throw (error, CRISP_ERROR_NOT_FOUND, "image '%s' not found", image);
  g_ptr_array_add (img->diff_ids, NULL);
  const char *const *ids = (const char *const *) img->diff_ids->pdata;
  if (userns_fd < 0)
    return crisp_storage_mount_layers (svc->storage, ids, upper_dir, work_dir, target, error);
  return crisp_storage_mount_layers_idmapped (svc->storage, ids, upper_dir, work_dir, target,
                                              userns_fd, stage, error);
}

gboolean
crisp_image_service_mount_rootfs (CrispImageService *svc, const char *image, const char *upper_dir,
                                  const char *work_dir, const char *target, GError **error)
{
  return crisp_image_service_mount_rootfs_idmapped (svc, image, upper_dir, work_dir, target, -1,
                                                    NULL, error);
}

gboolean
crisp_image_service_unmount_rootfs (const char *target, GError **error)
{
  return crisp_storage_unmount (target, error);
}

int
crisp_image_service_open_rootfs (CrispImageService *svc, const char *image, GError **error)
{
  g_autoptr (CrispImage) img = crisp_image_service_find (svc, image, error);
  if (img == NULL)
    return ((error && *error)
                ? FALSE
                : crisp_throw (error, CRISP_ERROR_NOT_FOUND, "image '%s' not found", image)),
           -1;
  g_ptr_array_add (img->diff_ids, NULL);
  return crisp_storage_open_layers (svc->storage, (const char *const *) img->diff_ids->pdata,
                                    error);
}
