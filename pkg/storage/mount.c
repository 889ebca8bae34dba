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
#include <sys/stat.h>
#include <sys/syscall.h>

static gboolean
set_string (int fsfd, const char *key, const char *value, GError **error)
{
  if (fsconfig (fsfd, FSCONFIG_SET_STRING, key, value, 0) < 0)
    return crisp_throw_errno (error, errno, "overlay option %s=%s", key, value);
  return TRUE;
}

/* `base` stands for store->root in the layers' paths: the store itself, or an id-mapped view
 * of it. */
static gboolean
add_lowers (CrispStorage *store, const char *base, int fsfd, const char *const *diff_ids,
            GError **error)
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
      g_autofree char *path = g_build_filename (base, "layers", hex, NULL);
      if (!set_string (fsfd, "lowerdir+", path, error))
        return FALSE;
    }
  g_autofree char *objects
      = g_build_filename (base, store->objects_path + strlen (store->root), NULL);
  return set_string (fsfd, "datadir+", objects, error);
}

/* The upper layer, the options every container root filesystem gets, and the detached mount;
 * -1 on failure. */
static int
create_overlay (int fsfd, const char *upper_dir, const char *work_dir, const char *target,
                GError **error)
{
  if (upper_dir != NULL
      && (!set_string (fsfd, "upperdir", upper_dir, error)
          || !set_string (fsfd, "workdir", work_dir, error)))
    return -1;
  if (!set_string (fsfd, "metacopy", "on", error) || !set_string (fsfd, "redirect_dir", "on", error)
      || !set_string (fsfd, "index", "off", error))
    return -1;
  if (fsconfig (fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return crisp_throw_errno (error, errno, "creating the overlay for %s", target), -1;
  int mfd = fsmount (fsfd, FSMOUNT_CLOEXEC, upper_dir ? 0 : MOUNT_ATTR_RDONLY);
  if (mfd < 0)
    return crisp_throw_errno (error, errno, "fsmount for %s", target), -1;
  return mfd;
}

/* An overlay mount cannot itself be id-mapped; its layers can.  The store is cloned, mapped
 * through the user namespace and attached at `stage` just long enough for the overlay to take
 * its layers from there (overlayfs keeps private clones of its layers' mounts). */
static gboolean
stage_idmapped_store (CrispStorage *store, int userns_fd, const char *stage, GError **error)
{
  _cleanup_close_ int tree = open_tree (AT_FDCWD, store->root, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return crisp_throw_errno (error, errno, "cloning the mount of '%s'", store->root);
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP,
                             .userns_fd = (guint64) userns_fd,
                             .propagation = MS_PRIVATE };
  if (mount_setattr (tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return crisp_throw_errno (error, errno,
                              "id-mapping the layers in '%s' (the filesystem must support "
                              "id-mapped mounts)",
                              store->root);
  if (mkdir (stage, 0700) < 0 && errno != EEXIST)
    return crisp_throw_errno (error, errno, "creating '%s'", stage);
  if (move_mount (tree, "", AT_FDCWD, stage, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return crisp_throw_errno (error, errno, "attaching the id-mapped layers at '%s'", stage);
  return TRUE;
}

static gboolean
mount_layers_from (CrispStorage *store, const char *base, const char *const *diff_ids,
                   const char *upper_dir, const char *work_dir, const char *target, GError **error)
{
  _cleanup_close_ int fsfd = fsopen ("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    return crisp_throw_errno (error, errno, "fsopen overlay");
  if (!add_lowers (store, base, fsfd, diff_ids, error))
    return crisp_prefix_error (error, "mounting %s: ", target);
  _cleanup_close_ int mfd = create_overlay (fsfd, upper_dir, work_dir, target, error);
  if (mfd < 0)
    return FALSE;
  if (move_mount (mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return crisp_throw_errno (error, errno, "mounting the root filesystem at %s", target);
  return TRUE;
}

gboolean
crisp_storage_mount_layers (CrispStorage *store, const char *const *diff_ids, const char *upper_dir,
                            const char *work_dir, const char *target, GError **error)
{
  return mount_layers_from (store, store->root, diff_ids, upper_dir, work_dir, target, error);
}

int
crisp_storage_open_layers (CrispStorage *store, const char *const *diff_ids, GError **error)
{
  _cleanup_close_ int fsfd = fsopen ("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    return crisp_throw_errno (error, errno, "fsopen overlay"), -1;
  if (!add_lowers (store, store->root, fsfd, diff_ids, error))
    return crisp_prefix_error (error, "mounting the layers: "), -1;
  int mfd = create_overlay (fsfd, NULL, NULL, "a detached read-only view", error);
  /* Only read by crisp: nothing in it is a device, runs or gains privileges. */
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC };
  if (mfd >= 0 && mount_setattr (mfd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    {
      int e = errno;
      close (mfd);
      return crisp_throw_errno (error, e, "making the detached view of the layers nodev"), -1;
    }
  return mfd;
}

gboolean
crisp_storage_mount_layers_idmapped (CrispStorage *store, const char *const *diff_ids,
                                     const char *upper_dir, const char *work_dir,
                                     const char *target, int userns_fd, const char *stage,
                                     GError **error)
{
  gboolean ok = stage_idmapped_store (store, userns_fd, stage, error)
                && mount_layers_from (store, stage, diff_ids, upper_dir, work_dir, target, error);
  /* Whatever happened, the stage goes: a crash before this leaves it to the caller's cleanup. */
  if (umount2 (stage, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT && ok)
    return crisp_throw_errno (error, errno, "unmounting '%s'", stage);
  if (rmdir (stage) < 0 && errno != ENOENT && ok)
    return crisp_throw_errno (error, errno, "removing '%s'", stage);
  return ok;
}

gboolean
crisp_storage_unmount (const char *target, GError **error)
{
  if (umount2 (target, UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    return crisp_throw_errno (error, errno, "unmounting %s", target);
  return TRUE;
}

static gboolean
probe_overlay_in (const char *dir, GError **error)
{
  const char *subdirs[] = { "lower", "data", "upper", "work" };
  g_auto (GStrv) paths = g_new0 (char *, G_N_ELEMENTS (subdirs) + 1);
  for (gsize i = 0; i < G_N_ELEMENTS (subdirs); i++)
    {
      paths[i] = g_build_filename (dir, subdirs[i], NULL);
      if (mkdir (paths[i], 0700) < 0)
        return crisp_throw_errno (error, errno, "creating %s", paths[i]);
    }
  _cleanup_close_ int fsfd = fsopen ("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    return crisp_throw_errno (error, errno, "fsopen overlay");
  if (!set_string (fsfd, "lowerdir+", paths[0], error)
      || !set_string (fsfd, "datadir+", paths[1], error))
    return FALSE;
  /* Never attached anywhere: closing the descriptor is the unmount, whatever happens next. */
  _cleanup_close_ int mfd = create_overlay (fsfd, paths[2], paths[3], dir, error);
  return mfd >= 0;
}

gboolean
crisp_storage_probe_overlay (const char *parent, GError **error)
{
  g_autofree char *dir = g_build_filename (parent, ".crisp-overlay-probe-XXXXXX", NULL);
  if (g_mkdtemp (dir) == NULL)
    return crisp_throw_errno (error, errno, "creating a directory in %s", parent);
  gboolean works = probe_overlay_in (dir, error);
  g_autofree char *name = g_path_get_basename (dir);
  _cleanup_close_ int dfd = open (parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = dfd < 0 ? -errno : crisp_storage_rm_rf_at (dfd, name);
  if (r < 0 && works)
    return crisp_throw_errno (error, r, "removing %s", dir);
  return works;
}
