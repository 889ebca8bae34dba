/* A container's root filesystem: overlayfs over the layers' metadata trees with the
 * repo's objects as the data-only layer (the new mount API, so the number of layers is
 * not limited by the size of a mount option string). */
#include "config.h"

#include "storage-private.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>

static gboolean
set_string (int fsfd, const char *key, const char *value, GError **error)
{
  if (fsconfig (fsfd, FSCONFIG_SET_STRING, key, value, 0) < 0)
    return crisp_throw_errno (error, errno, "overlay option %s=%s", key, value);
  return TRUE;
}

static gboolean
add_lowers (CrispStorage *store, int fsfd, const char *const *diff_ids, GError **error)
{
  guint n = diff_ids ? g_strv_length ((char **) diff_ids) : 0;
  if (n == 0)
    {
      /* overlayfs needs one lower layer; an image without layers gets an empty one */
      g_autofree char *empty = g_build_filename (store->root, "empty", NULL);
      if (g_mkdir_with_parents (empty, 0755) < 0)
        return crisp_throw_errno (error, errno, "creating %s", empty);
      return set_string (fsfd, "lowerdir+", empty, error);
    }
  for (guint i = n; i-- > 0;)
    {
      const char *hex = crisp_storage_diff_hex (diff_ids[i]);
      if (hex == NULL || !crisp_storage_has_layer (store, diff_ids[i]))
        return crisp_throw (error, CRISP_ERROR_NOT_FOUND, "layer %s is not in the store",
                            diff_ids[i]);
      g_autofree char *path = g_build_filename (store->root, "layers", hex, NULL);
      if (!set_string (fsfd, "lowerdir+", path, error))
        return FALSE;
    }
  return set_string (fsfd, "datadir+", store->objects_path, error);
}

gboolean
crisp_storage_mount_layers (CrispStorage *store, const char *const *diff_ids, const char *upper_dir,
                            const char *work_dir, const char *target, GError **error)
{
  _cleanup_close_ int fsfd = fsopen ("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    return crisp_throw_errno (error, errno, "fsopen overlay");
  if (!add_lowers (store, fsfd, diff_ids, error))
    return crisp_prefix_error (error, "mounting %s: ", target);
  if (upper_dir != NULL
      && (!set_string (fsfd, "upperdir", upper_dir, error)
          || !set_string (fsfd, "workdir", work_dir, error)))
    return FALSE;
  if (!set_string (fsfd, "metacopy", "on", error) || !set_string (fsfd, "redirect_dir", "on", error)
      || !set_string (fsfd, "index", "off", error))
    return FALSE;
  if (fsconfig (fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return crisp_throw_errno (error, errno, "creating the overlay for %s", target);
  _cleanup_close_ int mfd = fsmount (fsfd, FSMOUNT_CLOEXEC, upper_dir ? 0 : MOUNT_ATTR_RDONLY);
  if (mfd < 0)
    return crisp_throw_errno (error, errno, "fsmount for %s", target);
  if (move_mount (mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return crisp_throw_errno (error, errno, "mounting the root filesystem at %s", target);
  return TRUE;
}

gboolean
crisp_storage_unmount (const char *target, GError **error)
{
  if (umount2 (target, UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    return crisp_throw_errno (error, errno, "unmounting %s", target);
  return TRUE;
}
