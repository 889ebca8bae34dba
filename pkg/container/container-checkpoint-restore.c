/* The restore side of a checkpoint archive (hostile input): its CRIU images and root
 * filesystem changes unpacked without leaving their directories, and the new container's spec
 * given the checkpointed process. */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"
#include "pkg/store/store.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bounds on what an archive or its rootfs-diff.tar may unpack to. */
#define UNPACK_MAX_MEMBERS 1000000
#define UNPACK_MAX_BYTES (G_GUINT64_CONSTANT (64) << 30)
#define DELETED_FILES_MAX (64 << 20)
/* How deep a checkpoint given as a directory may nest. */
#define UNPACK_MAX_DEPTH 256

void
crisp_restore_free (CrispRestore *r)
{
  if (r == NULL)
    return;
  g_free (r->what);
  g_free (r->archive);
  if (r->content >= 0)
    close (r->content);
  g_clear_pointer (&r->config, json_node_unref);
  g_clear_pointer (&r->spec, json_node_unref);
  g_clear_pointer (&r->image, crisp_image_free);
  g_free (r);
}

/* A source of members: a tar (a), or a directory whose current regular file is open as
 * srcfd (a == NULL). Both feed the same checks and the same code that makes them. */
typedef struct
{
  struct archive *a;
  const char *what; /* for messages */
  guint64 members, bytes;
  int srcfd;
} Unpack;

static la_ssize_t
read_member (Unpack *u, char *buf, size_t size)
{
  if (u->a != NULL)
    return archive_read_data (u->a, buf, size);
  ssize_t n;
  while ((n = read (u->srcfd, buf, size)) < 0 && errno == EINTR)
    ;
  return n;
}

static struct archive *
open_tar (int fd, const char *what, GError **error)
{
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  archive_read_support_filter_gzip (a);
  archive_read_support_filter_zstd (a);
  if (archive_read_open_fd (a, fd, 65536) == ARCHIVE_OK)
    return a;
  crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is not a tar archive: %s", what,
               archive_error_string (a));
  archive_read_free (a);
  return NULL;
}

char *
crisp_container_checkpoint_member_name (const char *raw)
{
  while (g_str_has_prefix (raw, "./"))
    raw += 2;
  g_autofree char *name = g_strdup (raw);
  gsize len = strlen (name);
  while (len > 0 && name[len - 1] == '/')
    name[--len] = '\0';
  if (len >= PATH_MAX || (len > 0 && !crisp_path_is_clean (name, FALSE)))
    return NULL;
  return g_steal_pointer (&name);
}

/* A member's name (see above), or NULL with an error. */
static char *
member_name (Unpack *u, const char *raw, GError **error)
{
  char *name = raw ? crisp_container_checkpoint_member_name (raw) : NULL;
  if (name == NULL)
    crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: member '%.256s' escapes the archive",
                 u->what, raw ? raw : "(no name)");
  return name;
}

/* Copies the member's data into fd, within the unpack's byte bound. */
static gboolean
copy_data (Unpack *u, int fd, const char *name, GError **error)
{
  char buf[65536];
  la_ssize_t n;
  while ((n = read_member (u, buf, sizeof buf)) > 0)
    {
      u->bytes += (guint64) n;
      if (u->bytes > UNPACK_MAX_BYTES)
        return crisp_throw (error, CRISP_ERROR_RESOURCE_EXHAUSTED,
                            "%s unpacks to more than %" G_GUINT64_FORMAT " bytes", u->what,
                            UNPACK_MAX_BYTES);
      int r = crisp_write_all (fd, buf, (size_t) n);
      if (r < 0)
        return crisp_throw_errno (error, r, "%s: writing '%s'", u->what, name);
    }
  if (n < 0)
    return u->a != NULL ? crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: member '%s': %s",
                                       u->what, name, archive_error_string (u->a))
                        : crisp_throw_errno (error, errno, "%s: reading '%s'", u->what, name);
  return TRUE;
}

static gboolean
next_member (Unpack *u, struct archive_entry **e, gboolean *done, GError **error)
{
  int r = archive_read_next_header (u->a, e);
  *done = r == ARCHIVE_EOF;
  if (r != ARCHIVE_OK && r != ARCHIVE_EOF)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is not a valid tar archive: %s",
                        u->what, archive_error_string (u->a));
  if (!*done && ++u->members > UNPACK_MAX_MEMBERS)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s has more than %d members", u->what,
                        UNPACK_MAX_MEMBERS);
  return TRUE;
}

/* A member that cannot be made: what the archive asks is impossible (a parent that is a file
 * or a link, a hard link to nothing or to a directory ...) is the archive's fault. */
static gboolean
throw_member (Unpack *u, int r, const char *name, GError **error)
{
  if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP || r == -EXDEV || r == -EEXIST || r == -EISDIR
      || r == -EPERM || r == -EMLINK)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: member '%s' cannot be made: %s",
                        u->what, name, g_strerror (-r));
  return crisp_throw_errno (error, r, "%s: member '%s'", u->what, name);
}

/* Whether an archive member is one a restore needs: CRIU's images, the root filesystem's
 * changes and the deleted paths (config.dump and spec.dump were read already). */
static gboolean
wanted (const char *name)
{
  return g_str_equal (name, "checkpoint") || g_str_has_prefix (name, "checkpoint/")
         || g_str_equal (name, "rootfs-diff.tar") || g_str_equal (name, "deleted.files");
}

/* Creates one wanted member under destfd: only directories and regular files, each made new
 * (a repeated member fails), parents opened one component at a time without following links. */
static gboolean
unpack_member (Unpack *u, int destfd, struct archive_entry *e, const char *name, GError **error)
{
  mode_t type = archive_entry_filetype (e);
  gboolean top_file = g_str_equal (name, "rootfs-diff.tar") || g_str_equal (name, "deleted.files");
  if (archive_entry_hardlink (e) != NULL || (top_file && type != AE_IFREG))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: member '%s' is not a regular file", u->what, name);
  if (type != AE_IFDIR && type != AE_IFREG)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: member '%s' is neither a directory nor a regular file", u->what, name);
  g_autofree char *parent = g_path_get_dirname (name);
  g_autofree char *base = g_path_get_basename (name);
  _cleanup_close_ int pfd = -1;
  int r = g_str_equal (parent, ".") ? ((pfd = fcntl (destfd, F_DUPFD_CLOEXEC, 3)) < 0 ? -errno : 0)
                                    : crisp_open_dir_nofollow (destfd, parent, TRUE, 0700, &pfd);
  if (r < 0)
    return throw_member (u, r, name, error);
  if (type == AE_IFDIR)
    {
      if (mkdirat (pfd, base, 0700) < 0 && errno != EEXIST)
        return throw_member (u, -errno, name, error);
      _cleanup_close_ int dfd = -1;
      r = crisp_open_dir_nofollow (pfd, base, FALSE, 0, &dfd);
      return r == 0 || throw_member (u, r, name, error);
    }
  _cleanup_close_ int fd
      = openat (pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: member '%s' appears twice",
                        u->what, name);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "%s: creating '%s'", u->what, name);
  return copy_data (u, fd, name, error);
}

typedef gboolean (*MemberFunc) (Unpack *u, int fd, struct archive_entry *e, const char *name,
                                GError **error);

/* Reads every member of the tar in tarfd and hands each to fn with fd. */
static gboolean
walk_tar (int tarfd, const char *what, MemberFunc fn, int fd, GError **error)
{
  Unpack u = { open_tar (tarfd, what, error), what, 0, 0, -1 };
  if (u.a == NULL)
    return FALSE;
  gboolean ok = TRUE, done = FALSE;
  struct archive_entry *e;
  while (ok && (ok = next_member (&u, &e, &done, error)) && !done)
    {
      g_autofree char *name = member_name (&u, archive_entry_pathname (e), error);
      ok = name != NULL && fn (&u, fd, e, name, error);
    }
  archive_read_free (u.a);
  return ok;
}

static gboolean
unpack_wanted (Unpack *u, int destfd, struct archive_entry *e, const char *name, GError **error)
{
  return !wanted (name) || unpack_member (u, destfd, e, name, error);
}

gboolean
crisp_container_restore_unpack (const char *archive_path, int destfd, GError **error)
{
  g_autofree char *what = g_strdup_printf ("checkpoint archive '%s'", archive_path);
  _cleanup_close_ int fd = open (archive_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) < 0)
    return crisp_throw_errno (error, errno, "opening %s", what);
  if (!S_ISREG (st.st_mode))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is not a regular file", what);
  return walk_tar (fd, what, unpack_wanted, destfd, error);
}

static gboolean walk_dir (Unpack *u, int dirfd, const char *prefix, int depth, MemberFunc fn,
                          int fd, GError **error);

/* One entry of a directory source, described as a tar member would be (never followed when a
 * link) and handed to fn; a directory's entries follow it. */
static gboolean
walk_dir_entry (Unpack *u, int dirfd, const char *base, const char *prefix, int depth,
                MemberFunc fn, int fd, GError **error)
{
  g_autofree char *raw = *prefix ? g_strconcat (prefix, "/", base, NULL) : g_strdup (base);
  g_autofree char *name = member_name (u, raw, error);
  if (name == NULL)
    return FALSE;
  if (depth == 0 && !wanted (name))
    return TRUE; /* what a restore does not need is not even looked at */
  if (++u->members > UNPACK_MAX_MEMBERS)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s has more than %d members", u->what,
                        UNPACK_MAX_MEMBERS);
  struct stat st;
  if (fstatat (dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return crisp_throw_errno (error, errno, "%s: reading '%s'", u->what, name);
  _cleanup_close_ int src = -1;
  if (S_ISREG (st.st_mode) || S_ISDIR (st.st_mode))
    {
      src = openat (dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      struct stat now;
      if (src < 0 || fstat (src, &now) < 0)
        return crisp_throw_errno (error, errno, "%s: opening '%s'", u->what, name);
      if ((now.st_mode & S_IFMT) != (st.st_mode & S_IFMT))
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: member '%s' changed", u->what,
                            name);
    }
  struct archive_entry *e = archive_entry_new ();
  archive_entry_copy_stat (e, &st);
  archive_entry_set_pathname (e, name);
  u->srcfd = src;
  gboolean ok = fn (u, fd, e, name, error);
  u->srcfd = -1;
  archive_entry_free (e);
  if (!ok || !S_ISDIR (st.st_mode))
    return ok;
  if (depth >= UNPACK_MAX_DEPTH)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s nests deeper than %d directories",
                        u->what, UNPACK_MAX_DEPTH);
  return walk_dir (u, g_steal_fd (&src), name, depth + 1, fn, fd, error);
}

/* Every entry of the directory dirfd (taken and closed), under prefix. */
static gboolean
walk_dir (Unpack *u, int dirfd, const char *prefix, int depth, MemberFunc fn, int fd,
          GError **error)
{
  DIR *d = fdopendir (dirfd);
  if (d == NULL)
    {
      int e = errno;
      close (dirfd);
      return crisp_throw_errno (error, e, "%s: listing '%s'", u->what, *prefix ? prefix : "/");
    }
  gboolean ok = TRUE;
  struct dirent *de;
  while (ok && (errno = 0, de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      ok = walk_dir_entry (u, dirfd, de->d_name, prefix, depth, fn, fd, error);
  if (ok && errno != 0)
    ok = crisp_throw_errno (error, errno, "%s: listing '%s'", u->what, *prefix ? prefix : "/");
  closedir (d);
  return ok;
}

gboolean
crisp_container_restore_unpack_dir (int srcfd, const char *what, int destfd, GError **error)
{
  Unpack u = { NULL, what, 0, 0, -1 };
  int fd = openat (srcfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "%s: opening its files", what);
  return walk_dir (&u, fd, "", 0, unpack_wanted, destfd, error);
}

/* Opens the directory `path` names inside the root filesystem rootfd: links are followed as
 * the container would follow them, never out of it, and no mount is crossed. */
static int
open_in_root (int rootfd, const char *path, int *out_fd)
{
  int fd = crisp_openat2 (rootfd, *path ? path : ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
                          RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
  if (fd < 0)
    return fd;
  *out_fd = fd;
  return 0;
}

/* Makes room for a new entry `base` in pfd: whatever is there goes (a directory with all it
 * holds), as a layer's entry replaces what lay below it. */
static int
clear_entry (int pfd, const char *base)
{
  if (unlinkat (pfd, base, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR)
    return -errno;
  return crisp_store_rm_rf_at (pfd, base);
}

/* Owner, mode and times of an entry just made (a symbolic link: owner and times). */
static int
set_meta (int pfd, const char *base, struct archive_entry *e, mode_t type)
{
  const struct timespec ts[2] = {
    { archive_entry_mtime (e), archive_entry_mtime_nsec (e) },
    { archive_entry_mtime (e), archive_entry_mtime_nsec (e) },
  };
  uid_t uid = (uid_t) archive_entry_uid (e);
  gid_t gid = (gid_t) archive_entry_gid (e);
  if (type == AE_IFLNK)
    return fchownat (pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0
                   || utimensat (pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0
               ? -errno
               : 0;
  int flags = type == AE_IFDIR ? O_RDONLY | O_DIRECTORY : O_PATH;
  _cleanup_close_ int fd = openat (pfd, base, flags | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  /* chown before chmod: a chown clears set-id bits. An O_PATH fd is reached through /proc. */
  g_autofree char *proc = g_strdup_printf ("/proc/self/fd/%d", fd);
  mode_t mode = archive_entry_perm (e) & 07777;
  if (type == AE_IFDIR)
    return fchown (fd, uid, gid) < 0 || fchmod (fd, mode) < 0 || futimens (fd, ts) < 0 ? -errno : 0;
  return fchownat (fd, "", uid, gid, AT_EMPTY_PATH) < 0 || chmod (proc, mode) < 0
                 || utimensat (AT_FDCWD, proc, ts, 0) < 0
             ? -errno
             : 0;
}

/* One entry of rootfs-diff.tar, made in the root filesystem rootfd. */
static gboolean
apply_member (Unpack *u, int rootfd, struct archive_entry *e, const char *name, GError **error)
{
  if (*name == '\0')
    return TRUE; /* the root directory itself */
  g_autofree char *parent = g_path_get_dirname (name);
  g_autofree char *base = g_path_get_basename (name);
  _cleanup_close_ int pfd = -1;
  int r = open_in_root (rootfd, g_str_equal (parent, ".") ? "" : parent, &pfd);
  if (r < 0)
    return throw_member (u, r, name, error);
  mode_t type = archive_entry_filetype (e);
  const char *link = archive_entry_hardlink (e);
  if (type == AE_IFDIR)
    {
      struct stat st;
      if (fstatat (pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
        r = clear_entry (pfd, base);
      if (r == 0 && mkdirat (pfd, base, 0700) < 0 && errno != EEXIST)
        r = -errno;
    }
  else if ((r = clear_entry (pfd, base)) < 0)
    ;
  else if (link != NULL)
    {
      g_autofree char *target = member_name (u, link, error);
      if (target == NULL || *target == '\0')
        return crisp_prefix_error (error, "hard link '%s': ", name), FALSE;
      g_autofree char *tparent = g_path_get_dirname (target);
      g_autofree char *tbase = g_path_get_basename (target);
      _cleanup_close_ int tfd = -1;
      r = open_in_root (rootfd, g_str_equal (tparent, ".") ? "" : tparent, &tfd);
      if (r == 0 && linkat (tfd, tbase, pfd, base, 0) < 0)
        r = -errno;
      return r == 0 || throw_member (u, r, name, error);
    }
  else if (type == AE_IFREG)
    {
      _cleanup_close_ int fd
          = openat (pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0)
        return crisp_throw_errno (error, errno, "%s: creating '%s'", u->what, name);
      if (!copy_data (u, fd, name, error))
        return FALSE;
    }
  else if (type == AE_IFLNK)
    r = symlinkat (archive_entry_symlink (e) ? archive_entry_symlink (e) : "", pfd, base) < 0
            ? -errno
            : 0;
  else if (type == AE_IFIFO)
    r = mknodat (pfd, base, S_IFIFO | 0600, 0) < 0 ? -errno : 0;
  else
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: member '%s' is a device node or socket, which is not restored",
                        u->what, name);
  if (r == 0)
    r = set_meta (pfd, base, e, type);
  return r == 0 || throw_member (u, r, name, error);
}

gboolean
crisp_container_restore_apply_diff (int rootfd, int tarfd, const char *what, GError **error)
{
  return walk_tar (tarfd, what, apply_member, rootfd, error);
}

/* One path the container had deleted: removed inside the root filesystem (gone already is
 * fine). */
static gboolean
remove_deleted (int rootfd, const char *path, GError **error)
{
  const char *rel = path + strspn (path, "/");
  if (*rel == '\0' || strlen (rel) >= PATH_MAX || !crisp_path_is_clean (rel, FALSE))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "deleted.files: '%.256s' is not a clean path inside the container", path);
  g_autofree char *parent = g_path_get_dirname (rel);
  g_autofree char *base = g_path_get_basename (rel);
  _cleanup_close_ int pfd = -1;
  int r = open_in_root (rootfd, g_str_equal (parent, ".") ? "" : parent, &pfd);
  if (r == 0)
    r = clear_entry (pfd, base);
  if (r == -ENOENT || r == -ENOTDIR)
    return TRUE;
  return r == 0 || crisp_throw_errno (error, r, "deleted.files: removing '%s'", path);
}

gboolean
crisp_container_restore_remove_deleted (int rootfd, int dirfd, const char *name, GError **error)
{
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  int r = crisp_read_all_at (dirfd, name, DELETED_FILES_MAX, &text, &len);
  if (r == -ENOENT)
    return TRUE; /* CRI-O writes none when nothing was deleted */
  if (r == -EFBIG)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "deleted.files is larger than %d bytes", DELETED_FILES_MAX);
  if (r < 0)
    return crisp_throw_errno (error, r, "reading deleted.files");
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, text, (gssize) len, NULL)
      || !JSON_NODE_HOLDS_ARRAY (json_parser_get_root (p)))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "deleted.files is not a JSON list");
  JsonArray *list = json_node_get_array (json_parser_get_root (p));
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonNode *n = json_array_get_element (list, i);
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "deleted.files: entry %u is not a string", i);
      if (!remove_deleted (rootfd, json_node_get_string (n), error))
        return FALSE;
    }
  return TRUE;
}

static JsonObject *
object_member (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static gboolean
is_string_list (JsonNode *n, gboolean non_empty)
{
  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    return FALSE;
  JsonArray *a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
        return FALSE;
    }
  return !non_empty || json_array_get_length (a) > 0;
}

static gboolean
is_id (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64
         && json_node_get_int (n) >= 0 && json_node_get_int (n) < G_MAXUINT32;
}

static gboolean
get_terminal (JsonObject *process)
{
  JsonNode *n = json_object_get_member (process, "terminal");
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN
         && json_node_get_boolean (n);
}

/* The mounts whose place in a new pod is the new pod's own (CRI-O's list): a checkpoint's
 * other mounts must be mounts of the new container too, or CRIU could not find them. */
static gboolean
mount_is_pods_own (const char *dest)
{
  static const char *const own[]
      = { "/proc",          "/dev",         "/dev/pts",          "/dev/mqueue",   "/sys",
          "/sys/fs/cgroup", "/dev/shm",     "/etc/resolv.conf",  "/etc/hostname", "/etc/passwd",
          "/etc/group",     "/run/secrets", "/run/.containerenv" };
  for (gsize i = 0; i < G_N_ELEMENTS (own); i++)
    if (g_str_equal (dest, own[i]))
      return TRUE;
  return FALSE;
}

static GHashTable *
mount_destinations (JsonObject *spec)
{
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  JsonNode *n = json_object_get_member (spec, "mounts");
  JsonArray *a = n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
  for (guint i = 0; a && i < json_array_get_length (a); i++)
    {
      JsonNode *m = json_array_get_element (a, i);
      JsonObject *mo = JSON_NODE_HOLDS_OBJECT (m) ? json_node_get_object (m) : NULL;
      const char *dest
          = mo ? json_object_get_string_member_with_default (mo, "destination", NULL) : NULL;
      if (dest != NULL)
        g_hash_table_add (set, g_strdup (dest));
    }
  return set;
}

static gboolean
check_mounts (JsonObject *spec, JsonObject *dump, const char *what, GError **error)
{
  g_autoptr (GHashTable) have = mount_destinations (spec);
  g_autoptr (GHashTable) had = mount_destinations (dump);
  g_autoptr (GPtrArray) missing = g_ptr_array_new ();
  GHashTableIter it;
  gpointer dest;
  g_hash_table_iter_init (&it, had);
  while (g_hash_table_iter_next (&it, &dest, NULL))
    if (!mount_is_pods_own (dest) && !g_hash_table_contains (have, dest))
      g_ptr_array_add (missing, dest);
  if (missing->len == 0)
    return TRUE;
  g_ptr_array_sort (missing, (GCompareFunc) g_strcmp0);
  g_ptr_array_add (missing, NULL);
  g_autofree char *list = g_strjoinv ("', '", (char **) missing->pdata);
  return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                      "%s had mounts at '%.2048s', which the request does not give", what, list);
}

static gint64
uid_of (JsonObject *process)
{
  JsonObject *user = object_member (process, "user");
  JsonNode *n = user ? json_object_get_member (user, "uid") : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64
             ? json_node_get_int (n)
             : -1;
}

/* The request's word on the user holds for the checkpointed process as spec.dump gives it
 * (CRIU restores the credentials its images hold: this is what can be checked beforehand). */
static gboolean
check_user (JsonObject *process, JsonObject *dp, const CrispRestoreUser *want, const char *what,
            GError **error)
{
  gint64 had = uid_of (dp);
  if (want->user_fixed && had != uid_of (process))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s's process runs as uid %" G_GINT64_FORMAT
                        ", and the request asks for uid %" G_GINT64_FORMAT,
                        what, had, uid_of (process));
  return TRUE;
}

gboolean
crisp_container_restore_adapt_spec (JsonNode *spec, JsonNode *dump, const CrispRestoreUser *want,
                                    const char *what, GError **error)
{
  JsonObject *so = JSON_NODE_HOLDS_OBJECT (spec) ? json_node_get_object (spec) : NULL;
  JsonObject *dso = JSON_NODE_HOLDS_OBJECT (dump) ? json_node_get_object (dump) : NULL;
  JsonObject *process = object_member (so, "process");
  JsonObject *dp = object_member (dso, "process");
  if (process == NULL)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "the spec built has no process");
  JsonObject *user = object_member (dp, "user");
  JsonNode *cwd = dp ? json_object_get_member (dp, "cwd") : NULL;
  JsonNode *env = dp ? json_object_get_member (dp, "env") : NULL;
  if (dp == NULL || !is_string_list (json_object_get_member (dp, "args"), TRUE)
      || (env != NULL && !is_string_list (env, FALSE)) || cwd == NULL
      || json_node_get_value_type (cwd) != G_TYPE_STRING
      || !g_path_is_absolute (json_node_get_string (cwd)) || user == NULL || !is_id (user, "uid")
      || !is_id (user, "gid"))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s's spec.dump has no usable process (args, env, cwd, user.uid and "
                        "user.gid)",
                        what);
  if (get_terminal (dp) != get_terminal (process))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s was made of a container %s a terminal: the request's tty must be %s",
                        what, get_terminal (dp) ? "with" : "without",
                        get_terminal (dp) ? "true" : "false");
  if (!check_user (process, dp, want, what, error) || !check_mounts (so, dso, what, error))
    return FALSE;
  const char *const taken[] = { "args", "env", "cwd", "user" };
  for (gsize i = 0; i < G_N_ELEMENTS (taken); i++)
    {
      JsonNode *n = json_object_get_member (dp, taken[i]);
      if (n != NULL)
        json_object_set_member (process, taken[i], json_node_copy (n));
      else
        json_object_remove_member (process, taken[i]);
    }
  return TRUE;
}
