/* Layer import: one pass over the (decompressed) tar stream that writes file contents
 * into the ostree repo, builds the layer's ostree commit, and builds the layer's
 * metadata tree (what overlayfs mounts). The tar is hostile: paths are confined,
 * nothing is followed through a symlink, sizes and counts are bounded. */
#include "config.h"

#include "storage-private.h"
#include "sha256.h"
#include "crisp-base.h"
#include "crisp-error.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define READ_CHUNK (128 * 1024)

typedef struct
{
  char *path;
  struct timespec mtime;
} DirTime;

typedef struct
{
  CrispStorage *store;
  GCancellable *cancellable;
  struct archive *raw;   /* the decompressing reader: one entry, the whole tar */
  struct archive *tar;   /* reads the tar from `raw` */
  CrispSha256 *diff_sum; /* of the uncompressed stream */
  guint64 total;
  int meta_fd; /* staging metadata tree root */
  OstreeMutableTree *mtree;
  char *default_dirmeta;
  GHashTable *files;   /* path -> ostree checksum, regular files of this layer */
  GArray *dir_times;   /* DirTime, applied at the end */
  GPtrArray *specials; /* devices and FIFOs (ostree cannot hold them) */
  guint entries;
  char *buf;      /* the decompressed block handed to the tar reader */
  char *file_buf; /* file data copied out of the tar reader: never the same as buf */
} Import;

static void
dir_time_clear (gpointer p)
{
  g_free (((DirTime *) p)->path);
}

static void
import_clear (Import *imp)
{
  if (imp->tar)
    archive_read_free (imp->tar);
  if (imp->raw)
    archive_read_free (imp->raw);
  g_clear_pointer (&imp->diff_sum, crisp_sha256_free);
  crisp_closep (&imp->meta_fd);
  g_clear_object (&imp->mtree);
  g_clear_pointer (&imp->default_dirmeta, g_free);
  g_clear_pointer (&imp->files, g_hash_table_unref);
  g_clear_pointer (&imp->dir_times, g_array_unref);
  g_clear_pointer (&imp->specials, g_ptr_array_unref);
  g_clear_pointer (&imp->buf, g_free);
  g_clear_pointer (&imp->file_buf, g_free);
}

/* Feeds the tar reader with the decompressed stream, hashing it on the way. */
static la_ssize_t
read_raw (struct archive *a, void *data, const void **out_buf)
{
  Import *imp = data;
  la_ssize_t n = archive_read_data (imp->raw, imp->buf, READ_CHUNK);
  if (n < 0)
    {
      archive_set_error (a, EIO, "decompressing: %s", archive_error_string (imp->raw));
      return -1;
    }
  imp->total += n;
  if (imp->total > CRISP_LAYER_MAX_BYTES)
    {
      archive_set_error (a, EFBIG, "more than %" G_GUINT64_FORMAT " bytes uncompressed",
                         (guint64) CRISP_LAYER_MAX_BYTES);
      return -1;
    }
  crisp_sha256_update (imp->diff_sum, imp->buf, n);
  *out_buf = imp->buf;
  return n;
}

static gboolean
open_readers (Import *imp, int fd, GError **error)
{
  imp->buf = g_malloc (READ_CHUNK);
  imp->file_buf = g_malloc (READ_CHUNK);
  imp->raw = archive_read_new ();
  archive_read_support_filter_gzip (imp->raw);
  archive_read_support_filter_zstd (imp->raw);
  archive_read_support_format_raw (imp->raw);
  struct archive_entry *e;
  if (archive_read_open_fd (imp->raw, fd, READ_CHUNK) != ARCHIVE_OK
      || archive_read_next_header (imp->raw, &e) != ARCHIVE_OK)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer: %s",
                        archive_error_string (imp->raw));
  imp->tar = archive_read_new ();
  archive_read_support_format_tar (imp->tar);
  if (archive_read_open (imp->tar, imp, NULL, read_raw, NULL) != ARCHIVE_OK)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer is not a tar: %s",
                        archive_error_string (imp->tar));
  return TRUE;
}

/* Splits an entry name into safe components: leading '/' and './' dropped, '..' refused.
 * An empty array is the layer root. */
static GPtrArray *
split_entry_path (const char *name, GError **error)
{
  if (name == NULL || strlen (name) > CRISP_LAYER_MAX_PATH)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                         "layer entry with a missing or "
                         "overlong name"),
            NULL);
  g_autoptr (GPtrArray) parts = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) split = g_strsplit (name, "/", -1);
  for (char **p = split; *p; p++)
    {
      if (**p == '\0' || g_str_equal (*p, "."))
        continue;
      if (g_str_equal (*p, ".."))
        return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                             "layer entry '%s': '..' is not allowed", name),
                NULL);
      if (strlen (*p) > 255)
        return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                             "layer entry '%s': name component too long", name),
                NULL);
      g_ptr_array_add (parts, g_strdup (*p));
    }
  return g_steal_pointer (&parts);
}

static char *
join_parts (GPtrArray *parts, guint n)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%s", i ? "/" : "", (char *) parts->pdata[i]);
  return g_string_free (s, FALSE);
}

/* Opens the directory holding the entry's last component inside the metadata tree,
 * creating missing parents (0755, like every unpacker) and never following a symlink. */
static int
open_parent (Import *imp, GPtrArray *parts, const char *name, GError **error)
{
  _cleanup_close_ int cur = openat (imp->meta_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (guint i = 0; cur >= 0 && i + 1 < parts->len; i++)
    {
      const char *comp = parts->pdata[i];
      int next = openat (cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0 && errno == ENOENT)
        {
          if (mkdirat (cur, comp, 0755) < 0)
            return (crisp_throw_errno (error, errno, "layer entry '%s': creating parent", name),
                    -1);
          next = openat (cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
      if (next < 0 && (errno == ELOOP || errno == ENOTDIR))
        return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                             "layer entry '%s': '%s' is not a directory (a path through a symlink "
                             "is not allowed)",
                             name, comp),
                -1);
      if (next < 0)
        return (crisp_throw_errno (error, errno, "layer entry '%s'", name), -1);
      close (cur);
      cur = next;
    }
  if (cur < 0)
    return (crisp_throw_errno (error, errno, "opening the metadata tree"), -1);
  return take_fd (&cur);
}

/* Makes room for a new entry: whatever this layer put there before goes. */
static gboolean
clear_slot (int dfd, const char *leaf, gboolean keep_dir, const char *name, GError **error)
{
  struct stat st;
  if (fstatat (dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return TRUE;
  if (S_ISDIR (st.st_mode) && keep_dir)
    return TRUE;
  if (unlinkat (dfd, leaf, S_ISDIR (st.st_mode) ? AT_REMOVEDIR : 0) < 0)
    return crisp_throw_errno (error, errno, "layer entry '%s': replacing", name);
  return TRUE;
}

static gboolean
xattr_allowed (const char *name)
{
  /* overlayfs' own attributes from an image would redirect or hide files */
  return !g_str_has_prefix (name, "trusted.overlay.") && !g_str_has_prefix (name, "user.overlay.");
}

/* The entry's xattrs as ostree wants them (a(ayay)), and applied to fd/path. */
static GVariant *
entry_xattrs (struct archive_entry *e, const char *name, GError **error)
{
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ayay)"));
  archive_entry_xattr_reset (e);
  const char *xname;
  const void *value;
  size_t size;
  while (archive_entry_xattr_next (e, &xname, &value, &size) == ARCHIVE_OK)
    {
      if (!xattr_allowed (xname))
        continue;
      if (size > CRISP_LAYER_MAX_XATTR)
        {
          g_variant_builder_clear (&b);
          return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                               "layer entry '%s': xattr %s too large", name, xname),
                  NULL);
        }
      g_variant_builder_add (&b, "(@ay@ay)", g_variant_new_bytestring (xname),
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, value, size, 1));
    }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static gboolean
apply_xattrs (int fd, GVariant *xattrs, const char *name, GError **error)
{
  for (gsize i = 0; i < g_variant_n_children (xattrs); i++)
    {
      g_autoptr (GVariant) k = NULL, v = NULL;
      g_variant_get_child (xattrs, i, "(@ay@ay)", &k, &v);
      gsize len;
      const void *data = g_variant_get_fixed_array (v, &len, 1);
      if (fsetxattr (fd, g_variant_get_bytestring (k), data, len, 0) < 0 && errno != ENOTSUP)
        return crisp_throw_errno (error, errno, "layer entry '%s': xattr %s", name,
                                  g_variant_get_bytestring (k));
    }
  return TRUE;
}

static struct timespec
entry_mtime (struct archive_entry *e)
{
  struct timespec ts = { archive_entry_mtime (e), archive_entry_mtime_nsec (e) };
  return ts;
}

static gboolean
set_owner_mode_time (int fd, struct archive_entry *e, const char *name, GError **error)
{
  struct timespec ts[2] = { entry_mtime (e), entry_mtime (e) };
  if (fchown (fd, archive_entry_uid (e), archive_entry_gid (e)) < 0
      || fchmod (fd, archive_entry_perm (e) & 07777) < 0 || futimens (fd, ts) < 0)
    return crisp_throw_errno (error, errno, "layer entry '%s': setting metadata", name);
  return TRUE;
}

/* A conflict in the commit's tree (a file where the layer has a directory) is the
 * layer's fault, not an I/O failure. */
static gboolean
tree_conflict (GError **error, const char *name)
{
  if (error == NULL || *error == NULL || (*error)->domain == CRISP_ERROR)
    return FALSE;
  g_autofree char *msg = g_strdup ((*error)->message);
  g_clear_error (error);
  return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer entry '%s': %s", name, msg);
}

/* ostree side: a subtree of the commit for the entry's parent. */
static OstreeMutableTree *
mtree_parent (Import *imp, GPtrArray *parts, GError **error)
{
  /* walked by hand: ostree 2022.7's ensure_parent_dirs leaks the name of every
   * directory it creates (LeakSanitizer in the sanitizer build) */
  g_autoptr (OstreeMutableTree) cur = g_object_ref (imp->mtree);
  for (guint i = 0; i + 1 < parts->len; i++)
    {
      g_autoptr (OstreeMutableTree) next = NULL;
      if (!ostree_mutable_tree_ensure_dir (cur, parts->pdata[i], &next, error))
        return NULL;
      if (ostree_mutable_tree_get_metadata_checksum (next) == NULL)
        ostree_mutable_tree_set_metadata_checksum (next, imp->default_dirmeta);
      g_set_object (&cur, next);
    }
  return g_steal_pointer (&cur);
}

static char *
write_dirmeta (Import *imp, guint32 uid, guint32 gid, guint32 mode, GVariant *xattrs,
               GError **error)
{
  g_autoptr (GFileInfo) info = g_file_info_new ();
  g_file_info_set_attribute_uint32 (info, "standard::type", G_FILE_TYPE_DIRECTORY);
  g_file_info_set_attribute_uint32 (info, "unix::uid", uid);
  g_file_info_set_attribute_uint32 (info, "unix::gid", gid);
  g_file_info_set_attribute_uint32 (info, "unix::mode", S_IFDIR | (mode & 07777));
  g_autoptr (GVariant) meta = g_variant_ref_sink (ostree_create_directory_metadata (info, xattrs));
  g_autofree guchar *csum = NULL;
  if (!ostree_repo_write_metadata (imp->store->repo, OSTREE_OBJECT_TYPE_DIR_META, NULL, meta, &csum,
                                   imp->cancellable, error))
    return NULL;
  return ostree_checksum_from_bytes (csum);
}

static gboolean
import_dir (Import *imp, struct archive_entry *e, GPtrArray *parts, const char *name,
            GVariant *xattrs, GError **error)
{
  g_autofree char *dirmeta = write_dirmeta (imp, archive_entry_uid (e), archive_entry_gid (e),
                                            archive_entry_perm (e), xattrs, error);
  if (dirmeta == NULL)
    return FALSE;
  g_autoptr (OstreeMutableTree) sub = NULL;
  _cleanup_close_ int fd = -1;
  if (parts->len == 0)
    {
      sub = g_object_ref (imp->mtree);
      fd = openat (imp->meta_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
  else
    {
      const char *leaf = parts->pdata[parts->len - 1];
      _cleanup_close_ int dfd = open_parent (imp, parts, name, error);
      if (dfd < 0 || !clear_slot (dfd, leaf, TRUE, name, error))
        return FALSE;
      g_autoptr (OstreeMutableTree) parent = mtree_parent (imp, parts, error);
      if (parent == NULL || !ostree_mutable_tree_ensure_dir (parent, leaf, &sub, error))
        return tree_conflict (error, name);
      if (mkdirat (dfd, leaf, 0700) < 0 && errno != EEXIST)
        return crisp_throw_errno (error, errno, "layer entry '%s': mkdir", name);
      fd = openat (dfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
  if (fd < 0)
    return crisp_throw_errno (error, errno, "layer entry '%s': opening", name);
  ostree_mutable_tree_set_metadata_checksum (sub, dirmeta);
  DirTime dt = { join_parts (parts, parts->len), entry_mtime (e) };
  g_array_append_val (imp->dir_times, dt);
  return set_owner_mode_time (fd, e, name, error) && apply_xattrs (fd, xattrs, name, error);
}

/* Streams the entry's data into an ostree content object; returns its checksum. */
static char *
write_regfile (Import *imp, struct archive_entry *e, GVariant *xattrs, const char *name,
               GError **error)
{
  gint64 size = archive_entry_size (e);
  if (size < 0 || (guint64) size > CRISP_LAYER_MAX_BYTES)
    return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer entry '%s': bad size", name),
            NULL);
  g_autoptr (OstreeContentWriter) w = ostree_repo_write_regfile (
      imp->store->repo, NULL, archive_entry_uid (e), archive_entry_gid (e),
      S_IFREG | (archive_entry_perm (e) & 07777), (guint64) size, xattrs, error);
  if (w == NULL)
    return NULL;
  gint64 left = size;
  while (left > 0)
    {
      la_ssize_t n = archive_read_data (imp->tar, imp->file_buf, MIN (left, READ_CHUNK));
      if (n <= 0)
        return (crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer entry '%s': %s", name,
                             n < 0 ? archive_error_string (imp->tar) : "truncated"),
                NULL);
      if (!g_output_stream_write_all (G_OUTPUT_STREAM (w), imp->file_buf, n, NULL, imp->cancellable,
                                      error))
        return NULL;
      left -= n;
    }
  return ostree_content_writer_finish (w, imp->cancellable, error);
}

/* The metadata-tree file: empty, sparse, the entry's metadata, and for data a
 * metacopy marker with a redirect to the object in the repo. */
static gboolean
make_meta_file (int dfd, struct archive_entry *e, GPtrArray *parts, const char *name,
                const char *checksum, GVariant *xattrs, GError **error)
{
  const char *leaf = parts->pdata[parts->len - 1];
  if (!clear_slot (dfd, leaf, FALSE, name, error))
    return FALSE;
  _cleanup_close_ int fd
      = openat (dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "layer entry '%s': creating", name);
  gint64 size = archive_entry_size (e);
  if (size > 0)
    {
      g_autofree char *redirect = g_strdup_printf ("/%.2s/%s.file", checksum, checksum + 2);
      if (ftruncate (fd, size) < 0 || fsetxattr (fd, "trusted.overlay.metacopy", "", 0, 0) < 0
          || fsetxattr (fd, "trusted.overlay.redirect", redirect, strlen (redirect), 0) < 0)
        return crisp_throw_errno (error, errno, "layer entry '%s': metadata file", name);
    }
  return apply_xattrs (fd, xattrs, name, error) && set_owner_mode_time (fd, e, name, error);
}

static gboolean
import_file (Import *imp, struct archive_entry *e, GPtrArray *parts, const char *name,
             GVariant *xattrs, GError **error)
{
  if (parts->len == 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "layer entry '%s': the root is not a file", name);
  _cleanup_close_ int dfd = open_parent (imp, parts, name, error);
  if (dfd < 0)
    return FALSE;
  g_autofree char *checksum = write_regfile (imp, e, xattrs, name, error);
  if (checksum == NULL)
    return crisp_prefix_error (error, "layer entry '%s': ", name);
  g_autoptr (OstreeMutableTree) parent = mtree_parent (imp, parts, error);
  if (parent == NULL
      || !ostree_mutable_tree_replace_file (parent, parts->pdata[parts->len - 1], checksum, error))
    return tree_conflict (error, name);
  if (!make_meta_file (dfd, e, parts, name, checksum, xattrs, error))
    return FALSE;
  g_hash_table_replace (imp->files, join_parts (parts, parts->len), g_steal_pointer (&checksum));
  return TRUE;
}

static gboolean
import_symlink (Import *imp, struct archive_entry *e, GPtrArray *parts, const char *name,
                GError **error)
{
  const char *target = archive_entry_symlink (e);
  if (parts->len == 0 || target == NULL || strlen (target) > CRISP_LAYER_MAX_PATH)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer entry '%s': bad symlink", name);
  _cleanup_close_ int dfd = open_parent (imp, parts, name, error);
  const char *leaf = parts->pdata[parts->len - 1];
  if (dfd < 0 || !clear_slot (dfd, leaf, FALSE, name, error))
    return FALSE;
  g_autofree char *checksum
      = ostree_repo_write_symlink (imp->store->repo, NULL, archive_entry_uid (e),
                                   archive_entry_gid (e), NULL, target, imp->cancellable, error);
  if (checksum == NULL)
    return FALSE;
  g_autoptr (OstreeMutableTree) parent = mtree_parent (imp, parts, error);
  if (parent == NULL || !ostree_mutable_tree_replace_file (parent, leaf, checksum, error))
    return tree_conflict (error, name);
  struct timespec ts[2] = { entry_mtime (e), entry_mtime (e) };
  if (symlinkat (target, dfd, leaf) < 0
      || fchownat (dfd, leaf, archive_entry_uid (e), archive_entry_gid (e), AT_SYMLINK_NOFOLLOW) < 0
      || utimensat (dfd, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return crisp_throw_errno (error, errno, "layer entry '%s': symlink", name);
  return TRUE;
}

/* Hard links only to a regular file this same layer already holds: anything else
 * (outside the layer, a directory, a lower layer) is refused. */
static gboolean
import_hardlink (Import *imp, struct archive_entry *e, GPtrArray *parts, const char *name,
                 GError **error)
{
  g_autoptr (GPtrArray) tparts = split_entry_path (archive_entry_hardlink (e), error);
  if (tparts == NULL || parts->len == 0)
    return crisp_prefix_error (error, "hard link '%s': ", name);
  g_autofree char *tpath = join_parts (tparts, tparts->len);
  const char *checksum = g_hash_table_lookup (imp->files, tpath);
  if (checksum == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "layer entry '%s': hard link to '%s', which is not a file of this layer",
                        name, archive_entry_hardlink (e));
  const char *leaf = parts->pdata[parts->len - 1];
  _cleanup_close_ int tdfd = open_parent (imp, tparts, name, error);
  _cleanup_close_ int dfd = tdfd >= 0 ? open_parent (imp, parts, name, error) : -1;
  if (dfd < 0 || !clear_slot (dfd, leaf, FALSE, name, error))
    return FALSE;
  g_autoptr (OstreeMutableTree) parent = mtree_parent (imp, parts, error);
  if (parent == NULL || !ostree_mutable_tree_replace_file (parent, leaf, checksum, error))
    return tree_conflict (error, name);
  if (linkat (tdfd, tparts->pdata[tparts->len - 1], dfd, leaf, 0) < 0)
    return crisp_throw_errno (error, errno, "layer entry '%s': link", name);
  g_hash_table_replace (imp->files, join_parts (parts, parts->len), g_strdup (checksum));
  return TRUE;
}

/* Devices and FIFOs live only in the metadata tree (recorded in the commit metadata);
 * the device cgroup, not the image, decides whether a container may open them. */
static gboolean
import_special (Import *imp, struct archive_entry *e, GPtrArray *parts, const char *name,
                GError **error)
{
  if (parts->len == 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer entry '%s': bad type", name);
  _cleanup_close_ int dfd = open_parent (imp, parts, name, error);
  const char *leaf = parts->pdata[parts->len - 1];
  if (dfd < 0 || !clear_slot (dfd, leaf, FALSE, name, error))
    return FALSE;
  mode_t type = archive_entry_filetype (e);
  dev_t dev
      = type == AE_IFIFO ? 0 : makedev (archive_entry_rdevmajor (e), archive_entry_rdevminor (e));
  struct timespec ts[2] = { entry_mtime (e), entry_mtime (e) };
  if (mknodat (dfd, leaf, type | (archive_entry_perm (e) & 07777), dev) < 0
      || fchownat (dfd, leaf, archive_entry_uid (e), archive_entry_gid (e), AT_SYMLINK_NOFOLLOW) < 0
      || fchmodat (dfd, leaf, archive_entry_perm (e) & 07777, 0) < 0
      || utimensat (dfd, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return crisp_throw_errno (error, errno, "layer entry '%s': mknod", name);
  g_ptr_array_add (imp->specials, join_parts (parts, parts->len));
  return TRUE;
}

/* `.wh.<name>` hides name of lower layers (an overlay whiteout), `.wh..wh..opq` makes
 * the directory opaque. Returns FALSE with *handled unset when not a whiteout. */
static gboolean
import_whiteout (Import *imp, GPtrArray *parts, const char *name, gboolean *handled, GError **error)
{
  const char *leaf = parts->len ? parts->pdata[parts->len - 1] : "";
  *handled = g_str_has_prefix (leaf, ".wh.");
  if (!*handled)
    return TRUE;
  _cleanup_close_ int dfd = open_parent (imp, parts, name, error);
  if (dfd < 0)
    return FALSE;
  if (g_str_equal (leaf, ".wh..wh..opq"))
    {
      if (fsetxattr (dfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
        return crisp_throw_errno (error, errno, "layer entry '%s': opaque", name);
      return TRUE;
    }
  const char *hidden = leaf + strlen (".wh.");
  if (g_str_has_prefix (leaf, ".wh..wh.") || *hidden == '\0')
    return TRUE; /* aufs bookkeeping (.wh..wh.plnk and the like), ignoring */
  if (!clear_slot (dfd, hidden, FALSE, name, error))
    return FALSE;
  if (mknodat (dfd, hidden, S_IFCHR | 0000, makedev (0, 0)) < 0)
    return crisp_throw_errno (error, errno, "layer entry '%s': whiteout", name);
  return TRUE;
}

static gboolean
import_entry (Import *imp, struct archive_entry *e, GError **error)
{
  const char *name = archive_entry_pathname (e);
  g_autoptr (GPtrArray) parts = split_entry_path (name, error);
  if (parts == NULL)
    return FALSE;
  if (++imp->entries > CRISP_LAYER_MAX_ENTRIES)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer has more than %d entries",
                        CRISP_LAYER_MAX_ENTRIES);
  if (archive_entry_hardlink (e) != NULL)
    return import_hardlink (imp, e, parts, name, error);
  gboolean handled = FALSE;
  if (archive_entry_filetype (e) == AE_IFREG
      && (!import_whiteout (imp, parts, name, &handled, error) || handled))
    return handled;
  g_autoptr (GVariant) xattrs = entry_xattrs (e, name, error);
  if (xattrs == NULL)
    return FALSE;
  switch (archive_entry_filetype (e))
    {
    case AE_IFDIR:
      return import_dir (imp, e, parts, name, xattrs, error);
    case AE_IFREG:
      return import_file (imp, e, parts, name, xattrs, error);
    case AE_IFLNK:
      return import_symlink (imp, e, parts, name, error);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      return import_special (imp, e, parts, name, error);
    default:
      g_debug ("layer entry '%s': unsupported type %o, ignoring", name, archive_entry_filetype (e));
      return TRUE;
    }
}

/* Directory mtimes last: creating their children changed them. Deepest first. */
static gboolean
apply_dir_times (Import *imp, GError **error)
{
  for (guint i = imp->dir_times->len; i-- > 0;)
    {
      DirTime *dt = &g_array_index (imp->dir_times, DirTime, i);
      struct timespec ts[2] = { dt->mtime, dt->mtime };
      if (utimensat (imp->meta_fd, *dt->path ? dt->path : ".", ts, AT_SYMLINK_NOFOLLOW) < 0)
        return crisp_throw_errno (error, errno, "layer directory '%s': mtime", dt->path);
    }
  return TRUE;
}

static gboolean
walk_tar (Import *imp, GError **error)
{
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header (imp->tar, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)
    {
      if (g_cancellable_set_error_if_cancelled (imp->cancellable, error))
        return FALSE;
      if (!import_entry (imp, e, error))
        return FALSE;
    }
  if (r != ARCHIVE_EOF)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer tar: %s",
                        archive_error_string (imp->tar));
  /* the rest of the stream (tar padding) still belongs to the diff ID */
  const void *unused;
  la_ssize_t n;
  while ((n = read_raw (imp->tar, imp, &unused)) > 0)
    ;
  if (n < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "layer: %s",
                        archive_error_string (imp->tar));
  return apply_dir_times (imp, error);
}

static gboolean
commit_layer (Import *imp, const char *hex, GError **error)
{
  g_autoptr (GFile) root = NULL;
  if (!ostree_repo_write_mtree (imp->store->repo, imp->mtree, &root, imp->cancellable, error))
    return FALSE;
  GVariantBuilder meta;
  g_variant_builder_init (&meta, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (
      &meta, "{sv}", "crisp.special-files",
      g_variant_new_strv ((const char *const *) imp->specials->pdata, imp->specials->len));
  g_autofree char *commit = NULL;
  g_autofree char *ref = g_strconcat (CRISP_LAYER_REF_PREFIX, hex, NULL);
  g_autoptr (GVariant) metadata = g_variant_ref_sink (g_variant_builder_end (&meta));
  if (!ostree_repo_write_commit (imp->store->repo, NULL, hex, NULL, metadata,
                                 OSTREE_REPO_FILE (root), &commit, imp->cancellable, error))
    return FALSE;
  ostree_repo_transaction_set_ref (imp->store->repo, NULL, ref, commit);
  return ostree_repo_commit_transaction (imp->store->repo, NULL, imp->cancellable, error);
}

static gboolean
check_diff_id (Import *imp, const char *diff_id, GError **error)
{
  g_autofree char *got = crisp_sha256_digest (imp->diff_sum);
  if (!g_str_equal (got, diff_id))
    return crisp_throw (error, CRISP_ERROR_DATA_LOSS,
                        "layer content has digest %s, the image config says %s (diff ID mismatch)",
                        got, diff_id);
  return TRUE;
}

static gboolean
import_locked (Import *imp, int fd, const char *diff_id, const char *staging, GError **error)
{
  const char *hex = crisp_storage_diff_hex (diff_id);
  if (mkdirat (imp->store->tmp_fd, staging, 0755) < 0)
    return crisp_throw_errno (error, errno, "creating %s", staging);
  imp->meta_fd = openat (imp->store->tmp_fd, staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  imp->default_dirmeta = write_dirmeta (imp, 0, 0, 0755, NULL, error);
  if (imp->meta_fd < 0 || imp->default_dirmeta == NULL)
    return FALSE;
  ostree_mutable_tree_set_metadata_checksum (imp->mtree, imp->default_dirmeta);
  if (!open_readers (imp, fd, error) || !walk_tar (imp, error)
      || !check_diff_id (imp, diff_id, error) || !commit_layer (imp, hex, error))
    return FALSE;
  if (renameat (imp->store->tmp_fd, staging, imp->store->layers_fd, hex) < 0 && errno != ENOTEMPTY
      && errno != EEXIST)
    return crisp_throw_errno (error, errno, "installing layer %s", diff_id);
  return TRUE;
}

gboolean
crisp_storage_import_layer (CrispStorage *store, int fd, const char *diff_id,
                            GCancellable *cancellable, GError **error)
{
  if (crisp_storage_diff_hex (diff_id) == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "bad diff ID '%s'", diff_id);
  g_autofree char *staging = g_strdup_printf ("layer-%s", crisp_storage_diff_hex (diff_id));
  Import imp = { .store = store, .cancellable = cancellable, .meta_fd = -1 };
  imp.diff_sum = crisp_sha256_new ();
  imp.mtree = ostree_mutable_tree_new ();
  imp.files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  imp.dir_times = g_array_new (FALSE, FALSE, sizeof (DirTime));
  g_array_set_clear_func (imp.dir_times, dir_time_clear);
  imp.specials = g_ptr_array_new_with_free_func (g_free);
  g_mutex_lock (&store->repo_lock);
  gboolean ok = crisp_storage_has_layer (store, diff_id);
  if (!ok)
    {
      ok = ostree_repo_prepare_transaction (store->repo, NULL, cancellable, error)
           && import_locked (&imp, fd, diff_id, staging, error);
      if (!ok)
        ostree_repo_abort_transaction (store->repo, NULL, NULL);
      crisp_storage_rm_rf_at (store->tmp_fd, staging);
    }
  g_mutex_unlock (&store->repo_lock);
  import_clear (&imp);
  return ok;
}
