/* The mounts crisp makes for a container besides its root filesystem, each staged at
 * <run>/<id>/mounts/<n> (n: the mount's index in the request) and bound into the container by
 * the spec: an image volume (the image's layers, an overlay without an upper layer) and a
 * recursive read-only bind (the host tree cloned and made read-only through every submount,
 * which needs nothing of the OCI runtime). In a pod with a user namespace every bind is staged
 * so, id-mapped through the pod's namespace, and the transient id-mapped view of the image
 * store the root filesystem is built from passes through there too. Whatever is mounted there
 * is undone by the same walk of that directory, whether a removal, a failed create or a kill
 * left it. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "pkg/image/image-service.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define MOUNTS_DIR "mounts"
/* Mounts stacked on one staging point that a removal takes off before giving up. */
#define MAX_STACKED 16

static gboolean
resolve_image (CrispContainerService *svc, const Runtime__V1__Mount *m, char **out_id,
               GError **error)
{
  g_autoptr (CrispImage) img = crisp_image_service_find (svc->images, m->image->image, error);
  if (img == NULL)
    return (error && *error) ? crisp_prefix_error (error, "mount '%s': ", m->container_path)
                             : crisp_throw (error, CRISP_ERROR_NOT_FOUND,
                                            "mount '%s': image '%s' not found: pull it first",
                                            m->container_path, m->image->image);
  *out_id = g_strdup (img->id);
  return TRUE;
}

gboolean
crisp_container_resolve_mounts (CrispContainerService *svc, CrispContainer *c, CrispPod *pod,
                                GError **error)
{
  const Runtime__V1__ContainerConfig *cfg = c->config;
  if (!crisp_oci_check_mounts (cfg, crisp_pod_userns (pod), error))
    return FALSE;
  g_autoptr (GStrvBuilder) ids = g_strv_builder_new ();
  gboolean any = FALSE;
  for (gsize i = 0; i < cfg->n_mounts; i++)
    {
      g_autofree char *id = NULL;
      if (crisp_oci_mount_kind (cfg->mounts[i]) == CRISP_OCI_MOUNT_IMAGE
          && !resolve_image (svc, cfg->mounts[i], &id, error))
        return FALSE;
      any |= id != NULL;
      g_strv_builder_add (ids, id ? id : "");
    }
  g_strfreev (c->mount_images);
  c->mount_images = any ? g_strv_builder_end (ids) : NULL;
  return TRUE;
}

gboolean
crisp_container_uses_image (const CrispContainer *c, const char *image_id)
{
  return g_strcmp0 (c->image_id, image_id) == 0
         || (c->mount_images != NULL
             && g_strv_contains ((const char *const *) c->mount_images, image_id));
}

/* The directory of the image volume's image_sub_path, found inside the read-only mount at
 * root without leaving it; the overlay cannot change, so the path stays what was checked. */
static gboolean
resolve_sub_path (const char *root, const Runtime__V1__Mount *m, char **out_path, GError **error)
{
  _cleanup_close_ int rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return crisp_throw_errno (error, errno, "opening '%s'", root);
  _cleanup_close_ int fd = crisp_openat2 (rootfd, m->image_sub_path, O_PATH | O_CLOEXEC, 0,
                                          RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
  if (fd < 0)
    return crisp_throw (error,
                        fd == -ENOENT ? CRISP_ERROR_NOT_FOUND : CRISP_ERROR_INVALID_ARGUMENT,
                        "mount '%s': image_sub_path '%s' in image '%s': %s", m->container_path,
                        m->image_sub_path, m->image->image, g_strerror (-fd));
  g_autofree char *link = g_strdup_printf ("/proc/self/fd/%d", fd);
  g_autofree char *path = g_file_read_link (link, error);
  g_autofree char *prefix = g_strconcat (root, "/", NULL);
  if (path == NULL || !g_str_has_prefix (path, prefix))
    return (error && *error) ? FALSE
                             : crisp_throw (error, CRISP_ERROR_INTERNAL,
                                            "mount '%s': image_sub_path '%s' resolved outside "
                                            "the image",
                                            m->container_path, m->image_sub_path);
  *out_path = g_steal_pointer (&path);
  return TRUE;
}

static gboolean
stage_image (CrispContainerService *svc, const Runtime__V1__Mount *m, const char *image_id,
             const char *target, int userns_fd, char **out_source, GError **error)
{
  g_autofree char *layers = g_strconcat (target, "-layers", NULL);
  if (mkdir (target, 0700) < 0)
    return crisp_throw_errno (error, errno, "creating '%s'", target);
  if (!crisp_image_service_mount_rootfs_idmapped (svc->images, image_id, NULL, NULL, target,
                                                  userns_fd, layers, error))
    return crisp_prefix_error (error, "mount '%s' of image '%s': ", m->container_path,
                               m->image->image);
  if (m->image_sub_path != NULL && m->image_sub_path[0] != '\0')
    return resolve_sub_path (target, m, out_source, error);
  *out_source = g_strdup (target);
  return TRUE;
}

/* The clone of host_path with all its submounts, every one read-only and private, not yet
 * attached anywhere: -1 on failure. */
static int
clone_tree (const Runtime__V1__Mount *m, int userns_fd, GError **error)
{
  _cleanup_close_ int tree
      = open_tree (AT_FDCWD, m->host_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0)
    return crisp_throw (error,
                        errno == ENOENT ? CRISP_ERROR_INVALID_ARGUMENT : CRISP_ERROR_INTERNAL,
                        "mount '%s': host_path '%s': %s", m->container_path, m->host_path,
                        g_strerror (errno)),
           -1;
  struct mount_attr attr = {
    .attr_set
    = (m->recursive_read_only ? MOUNT_ATTR_RDONLY : 0) | (userns_fd >= 0 ? MOUNT_ATTR_IDMAP : 0),
    .userns_fd = userns_fd >= 0 ? (guint64) userns_fd : 0,
    .propagation = MS_PRIVATE,
  };
  if (userns_fd >= 0
      && mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
    return crisp_throw (error,
                        errno == EINVAL ? CRISP_ERROR_INVALID_ARGUMENT : CRISP_ERROR_INTERNAL,
                        "mount '%s': host_path '%s' cannot be id-mapped into the pod's user "
                        "namespace (every filesystem under it must support id-mapped mounts, "
                        "and none may be id-mapped already): %s",
                        m->container_path, m->host_path, g_strerror (errno)),
           -1;
  if (userns_fd < 0
      && mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
    return crisp_throw (error,
                        errno == ENOSYS ? CRISP_ERROR_FAILED_PRECONDITION : CRISP_ERROR_INTERNAL,
                        "mount '%s': recursive_read_only needs mount_setattr (Linux 5.12) to make "
                        "every submount of '%s' read-only: %s",
                        m->container_path, m->host_path, g_strerror (errno)),
           -1;
  return take_fd (&tree);
}

static gboolean
make_file (const char *path)
{
  _cleanup_close_ int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  return fd >= 0;
}

/* A clone of host_path with its submounts, read-only throughout for recursive_read_only,
 * id-mapped through the pod's user namespace when there is one, attached at target. */
static gboolean
stage_tree (const Runtime__V1__Mount *m, const char *target, int userns_fd, char **out_source,
            GError **error)
{
  _cleanup_close_ int tree = clone_tree (m, userns_fd, error);
  struct stat st;
  if (tree < 0)
    return FALSE;
  if (fstat (tree, &st) < 0)
    return crisp_throw_errno (error, errno, "mount '%s'", m->container_path);
  /* The staging point is of the tree's kind: a bind of a file needs a file under it. */
  if (S_ISDIR (st.st_mode) ? mkdir (target, 0700) < 0 : !make_file (target))
    return crisp_throw_errno (error, errno, "creating '%s'", target);
  if (move_mount (tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return crisp_throw_errno (error, errno, "mount '%s': attaching the read-only tree at '%s'",
                              m->container_path, target);
  *out_source = g_strdup (target);
  return TRUE;
}

gboolean
crisp_container_stage_mounts (CrispContainerService *svc, CrispContainer *c, int userns_fd,
                              GPtrArray **out_sources, GError **error)
{
  const Runtime__V1__ContainerConfig *cfg = c->config;
  g_autoptr (GPtrArray) sources = g_ptr_array_new_full (cfg->n_mounts, g_free);
  g_autofree char *dir = crisp_container_run_path (svc, c->id, MOUNTS_DIR);
  for (gsize i = 0; i < cfg->n_mounts; i++)
    {
      const Runtime__V1__Mount *m = cfg->mounts[i];
      CrispOciMountKind kind = crisp_oci_mount_kind (m);
      char *source = NULL;
      g_autofree char *target = g_strdup_printf ("%s/%" G_GSIZE_FORMAT, dir, i);
      gboolean staged = kind != CRISP_OCI_MOUNT_BIND || userns_fd >= 0;
      if (staged && mkdir (dir, 0700) < 0 && errno != EEXIST)
        return crisp_throw_errno (error, errno, "creating '%s'", dir);
      if ((kind == CRISP_OCI_MOUNT_IMAGE
           && !stage_image (svc, m, c->mount_images[i], target, userns_fd, &source, error))
          || (kind != CRISP_OCI_MOUNT_IMAGE && staged
              && !stage_tree (m, target, userns_fd, &source, error)))
        return FALSE;
      g_ptr_array_add (sources, source);
    }
  *out_sources = g_steal_pointer (&sources);
  return TRUE;
}

gboolean
crisp_container_mount_rootfs (CrispContainerService *svc, CrispContainer *c, const char *rootfs,
                              int userns_fd, GError **error)
{
  g_autofree char *upper = crisp_container_root_path (svc, c->id, "upper");
  g_autofree char *work = crisp_container_root_path (svc, c->id, "work");
  g_autofree char *dir = crisp_container_run_path (svc, c->id, MOUNTS_DIR);
  g_autofree char *stage = g_build_filename (dir, "rootfs-layers", NULL);
  if (userns_fd >= 0 && mkdir (dir, 0700) < 0 && errno != EEXIST)
    return crisp_throw_errno (error, errno, "creating '%s'", dir);
  return crisp_image_service_mount_rootfs_idmapped (svc->images, c->image_id, upper, work, rootfs,
                                                    userns_fd, stage, error);
}

/* Takes every mount off path (a retried create may have stacked more than one). */
static gboolean
unmount_all (const char *path, GError **error)
{
  for (int i = 0; i < MAX_STACKED; i++)
    if (umount2 (path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
      return errno == EINVAL || errno == ENOENT
                 ? TRUE
                 : crisp_throw_errno (error, errno, "unmounting '%s'", path);
  return crisp_throw (error, CRISP_ERROR_INTERNAL, "'%s' is still mounted after %d unmounts", path,
                      MAX_STACKED);
}

gboolean
crisp_container_unstage_mounts (CrispContainerService *svc, const char *id, GError **error)
{
  g_autofree char *dir = crisp_container_run_path (svc, id, MOUNTS_DIR);
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &local);
  if (d == NULL)
    return g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
               ? TRUE
               : crisp_throw (error, CRISP_ERROR_INTERNAL, "%s", local->message);
  for (const char *name; (name = g_dir_read_name (d)) != NULL;)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (!unmount_all (path, error))
        return FALSE;
    }
  return TRUE;
}
