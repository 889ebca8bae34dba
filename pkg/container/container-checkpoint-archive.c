/* The checkpoint archive: the files written beside CRIU's images (the container's spec and
 * metadata, its root filesystem changes), the archive written into place whole, and the
 * check of an archive given to CreateContainer (hostile input, never extracted). */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIFF_MAX_DEPTH 256
#define DIFF_MAX_ENTRIES 1000000
/* Bounds on an archive CreateContainer is given: members, and the JSON files read whole. */
#define ARCHIVE_MAX_MEMBERS 1000000
#define ARCHIVE_JSON_MAX (4 * 1024 * 1024)

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Writes the data of the open file fd into the archive. */
static gboolean
copy_data (struct archive *a, int fd, GError **error)
{
  char buf[65536];
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return crisp_throw_errno (error, errno, "reading a file for the archive");
      if (n == 0)
        return TRUE;
      if (archive_write_data (a, buf, (size_t) n) != n)
        return crisp_throw (error, CRISP_ERROR_INTERNAL, "writing the archive: %s",
                            archive_error_string (a));
    }
}

/* One member: name, the metadata of st, and for a regular file its data from fd, for a
 * symbolic link its target. */
static gboolean
add_member (struct archive *a, const char *name, const struct stat *st, int fd, const char *target,
            GError **error)
{
  struct archive_entry *e = archive_entry_new ();
  archive_entry_copy_stat (e, st);
  archive_entry_set_pathname (e, name);
  if (target != NULL)
    archive_entry_set_symlink (e, target);
  if (!S_ISREG (st->st_mode))
    archive_entry_set_size (e, 0);
  int r = archive_write_header (a, e);
  archive_entry_free (e);
  if (r != ARCHIVE_OK)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "archiving '%s': %s", name,
                        archive_error_string (a));
  return !S_ISREG (st->st_mode) || copy_data (a, fd, error);
}

/* The names in directory dirfd but "." and "..", sorted (archives come out the same each
 * time); what names the directory in an error. */
static GPtrArray *
list_names (int dirfd, const char *what, GError **error)
{
  int fd = fcntl (dirfd, F_DUPFD_CLOEXEC, 3);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (d == NULL)
    {
      int e = errno;
      if (fd >= 0)
        close (fd);
      return crisp_throw_errno (error, e, "listing '/%s'", what), NULL;
    }
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      g_ptr_array_add (names, g_strdup (de->d_name));
  closedir (d);
  g_ptr_array_sort (names, (GCompareFunc) compare_names);
  return names;
}

typedef struct
{
  struct archive *tar;
  JsonBuilder *deleted; /* an open array */
  dev_t dev;            /* the root filesystem's: nothing mounted on it is taken */
  guint64 members;
} DiffWalk;

static gboolean diff_dir (DiffWalk *w, int upperfd, int mergedfd, const char *rel, int depth,
                          GError **error);

/* One entry of the upper directory: a whiteout is a deleted file, anything else is taken as
 * the container sees it (the upper file of a metacopy copy-up holds no data). */
static gboolean
diff_entry (DiffWalk *w, int upperfd, int mergedfd, const char *name, const char *rel, int depth,
            GError **error)
{
  struct stat ust, st;
  g_autofree char *path = *rel ? g_strconcat (rel, "/", name, NULL) : g_strdup (name);
  if (fstatat (upperfd, name, &ust, AT_SYMLINK_NOFOLLOW) < 0)
    return crisp_throw_errno (error, errno, "reading the writable layer at '%s'", path);
  if (S_ISCHR (ust.st_mode) && ust.st_rdev == 0)
    {
      json_builder_add_string_value (w->deleted, path);
      return TRUE;
    }
  if (fstatat (mergedfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != w->dev)
    return TRUE;
  if (++w->members > DIFF_MAX_ENTRIES)
    return crisp_throw (error, CRISP_ERROR_RESOURCE_EXHAUSTED,
                        "the writable layer has more than %d entries", DIFF_MAX_ENTRIES);
  if (S_ISLNK (st.st_mode))
    {
      char target[PATH_MAX];
      ssize_t n = readlinkat (mergedfd, name, target, sizeof target - 1);
      if (n < 0)
        return crisp_throw_errno (error, errno, "reading the link '%s'", path);
      target[n] = '\0';
      return add_member (w->tar, path, &st, -1, target, error);
    }
  if (S_ISREG (st.st_mode))
    {
      _cleanup_close_ int fd = openat (mergedfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return crisp_throw_errno (error, errno, "opening '%s'", path);
      return add_member (w->tar, path, &st, fd, NULL, error);
    }
  if (!add_member (w->tar, path, &st, -1, NULL, error))
    return FALSE;
  if (!S_ISDIR (st.st_mode) || !S_ISDIR (ust.st_mode))
    return TRUE;
  if (depth >= DIFF_MAX_DEPTH)
    return crisp_throw (error, CRISP_ERROR_RESOURCE_EXHAUSTED,
                        "the writable layer nests deeper than %d directories", DIFF_MAX_DEPTH);
  _cleanup_close_ int usub
      = openat (upperfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  _cleanup_close_ int msub
      = openat (mergedfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (usub < 0 || msub < 0)
    return crisp_throw_errno (error, errno, "opening directory '%s'", path);
  return diff_dir (w, usub, msub, path, depth + 1, error);
}

static gboolean
diff_dir (DiffWalk *w, int upperfd, int mergedfd, const char *rel, int depth, GError **error)
{
  g_autoptr (GPtrArray) names = list_names (upperfd, rel, error);
  gboolean ok = names != NULL;
  for (guint i = 0; ok && i < names->len; i++)
    ok = diff_entry (w, upperfd, mergedfd, names->pdata[i], rel, depth, error);
  return ok;
}

static gboolean
write_json_file (const char *dir, const char *name, JsonNode *node, GError **error)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, node);
  gsize len = 0;
  g_autofree char *text = json_generator_to_data (gen, &len);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  return g_file_set_contents (path, text, (gssize) len, error)
         || crisp_prefix_error (error, "writing '%s': ", path);
}

/* rootfs-diff.tar (what the container changed in its root filesystem) and deleted.files
 * (the paths it removed), in work. */
static gboolean
write_rootfs_diff (CrispContainerService *svc, CrispContainer *c, const char *work, GError **error)
{
  g_autofree char *upper = crisp_container_root_path (svc, c->id, "upper");
  g_autofree char *merged = crisp_container_run_path (svc, c->id, "rootfs");
  _cleanup_close_ int upperfd = open (upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_close_ int mergedfd = open (merged, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (upperfd < 0 || mergedfd < 0 || fstat (mergedfd, &st) < 0)
    return crisp_throw_errno (error, errno, "opening the root filesystem of '%s'", c->id);
  g_autofree char *tar_path = g_build_filename (work, "rootfs-diff.tar", NULL);
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  if (archive_write_open_filename (a, tar_path) != ARCHIVE_OK)
    {
      crisp_throw (error, CRISP_ERROR_INTERNAL, "creating '%s': %s", tar_path,
                   archive_error_string (a));
      archive_write_free (a);
      return FALSE;
    }
  g_autoptr (JsonBuilder) deleted = json_builder_new ();
  json_builder_begin_array (deleted);
  DiffWalk w = { a, deleted, st.st_dev, 0 };
  gboolean ok = diff_dir (&w, upperfd, mergedfd, "", 0, error);
  if (archive_write_close (a) != ARCHIVE_OK && ok)
    ok = crisp_throw (error, CRISP_ERROR_INTERNAL, "writing '%s': %s", tar_path,
                      archive_error_string (a));
  archive_write_free (a);
  json_builder_end_array (deleted);
  g_autoptr (JsonNode) list = json_builder_get_root (deleted);
  return ok && write_json_file (work, "deleted.files", list, error);
}

static char *
rfc3339 (gint64 ns)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (ns / 1000000000);
  if (t == NULL)
    return g_strdup ("1970-01-01T00:00:00Z");
  g_autofree char *base = g_date_time_format (t, "%Y-%m-%dT%H:%M:%S");
  return g_strdup_printf ("%s.%09" G_GINT64_FORMAT "Z", base, ns % 1000000000);
}

/* config.dump: what checkpointctl and CRI-O read about the container. */
static gboolean
write_config_dump (CrispContainer *c, const char *work, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *created = rfc3339 (c->created_at);
  g_autofree char *now = rfc3339 (g_get_real_time () * 1000);
  const char *image = c->config->image ? c->config->image->image : c->image_ref;
  json_builder_begin_object (b);
  const char *pairs[][2] = {
    { "id", c->id },
    { "name", c->name },
    { "rootfsImage", image },
    { "rootfsImageRef", c->image_id },
    { "rootfsImageName", image },
    { "runtime", c->runtime },
    { "createdTime", created },
    { "checkpointedTime", now },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (pairs); i++)
    {
      json_builder_set_member_name (b, pairs[i][0]);
      json_builder_add_string_value (b, pairs[i][1] ? pairs[i][1] : "");
    }
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return write_json_file (work, "config.dump", root, error);
}

/* Copies file src to dst (both paths in crisp's own directories). */
static gboolean
copy_file (const char *src, const char *dst, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  return (g_file_get_contents (src, &text, &len, error)
          && g_file_set_contents (dst, text, (gssize) len, error))
         || crisp_prefix_error (error, "copying '%s': ", src);
}

/* Adds every member of directory dirfd (crisp's own work directory) under prefix. */
static gboolean
add_tree (struct archive *a, int dirfd, const char *prefix, GError **error)
{
  g_autoptr (GPtrArray) names = list_names (dirfd, prefix, error);
  gboolean ok = names != NULL;
  for (guint i = 0; ok && i < names->len; i++)
    {
      const char *base = names->pdata[i];
      if (!*prefix && strcmp (base, "criu") == 0)
        continue;
      g_autofree char *name = *prefix ? g_strconcat (prefix, "/", base, NULL) : g_strdup (base);
      _cleanup_close_ int sub = openat (dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      struct stat st;
      if (sub < 0 || fstat (sub, &st) < 0)
        ok = crisp_throw_errno (error, errno, "opening '%s'", name);
      else if (S_ISREG (st.st_mode) || S_ISDIR (st.st_mode))
        ok = add_member (a, name, &st, sub, NULL, error)
             && (!S_ISDIR (st.st_mode) || add_tree (a, sub, name, error));
    }
  return ok;
}

/* The archive, written as an unnamed file in the location's directory and linked there only
 * once complete: a failure or a kill leaves no partial archive under any name. */
gboolean
crisp_container_checkpoint_write_archive (const char *work, int dirfd, const char *base,
                                          const char *location, GError **error)
{
  _cleanup_close_ int workfd = open (work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_close_ int fd = openat (dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR))
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "the filesystem of location '%s' has no unnamed files (O_TMPFILE), "
                        "which crisp needs to write an archive whole or not at all",
                        location);
  if (workfd < 0 || fd < 0)
    return crisp_throw_errno (error, errno, "creating the archive for '%s'", location);
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  gboolean ok = archive_write_open_fd (a, fd) == ARCHIVE_OK
                || crisp_throw (error, CRISP_ERROR_INTERNAL, "%s", archive_error_string (a));
  ok = ok && add_tree (a, workfd, "", error);
  if (archive_write_close (a) != ARCHIVE_OK && ok)
    ok = crisp_throw (error, CRISP_ERROR_INTERNAL, "writing '%s': %s", location,
                      archive_error_string (a));
  archive_write_free (a);
  if (!ok)
    return FALSE;
  if (fsync (fd) < 0)
    return crisp_throw_errno (error, errno, "writing '%s'", location);
  char proc[64];
  g_snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  /* linkat cannot replace: an existing archive is replaced by a rename of a linked name. */
  g_autofree char *tmp = g_strdup_printf (".%s.crisp-%d", base, (int) getpid ());
  (void) unlinkat (dirfd, tmp, 0);
  if (linkat (AT_FDCWD, proc, dirfd, tmp, AT_SYMLINK_FOLLOW) < 0)
    return crisp_throw_errno (error, errno, "linking '%s'", location);
  if (renameat (dirfd, tmp, dirfd, base) < 0)
    {
      int e = errno;
      (void) unlinkat (dirfd, tmp, 0);
      return crisp_throw_errno (error, e, "renaming into '%s'", location);
    }
  return fsync (dirfd) == 0 || crisp_throw_errno (error, errno, "syncing '%s'", location);
}

/* CRIU's statistics and log, when it wrote them, go beside its images. */
static gboolean
copy_criu_file (const char *work, const char *name, GError **error)
{
  g_autofree char *src = g_build_filename (work, "criu", name, NULL);
  g_autofree char *dst = g_build_filename (work, name, NULL);
  return !g_file_test (src, G_FILE_TEST_IS_REGULAR) || copy_file (src, dst, error);
}

gboolean
crisp_container_checkpoint_write_files (CrispContainerService *svc, CrispContainer *c,
                                        const char *work, GError **error)
{
  g_autofree char *spec = crisp_container_run_path (svc, c->id, "config.json");
  g_autofree char *spec_dump = g_build_filename (work, "spec.dump", NULL);
  return copy_file (spec, spec_dump, error) && write_config_dump (c, work, error)
         && write_rootfs_diff (svc, c, work, error) && copy_criu_file (work, "stats-dump", error)
         && copy_criu_file (work, "dump.log", error);
}

/* config.dump or spec.dump (name) of the checkpoint what, read whole into s: a JSON object,
 * into *out when out is not NULL. */
static gboolean
parse_dump (const char *what, const char *name, GString *s, JsonNode **out, GError **error)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, s->str, (gssize) s->len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: %s is not a JSON object", what,
                        name);
  if (out != NULL)
    {
      g_clear_pointer (out, json_node_unref); /* a repeated member: the last counts, as in tar */
      *out = json_node_copy (json_parser_get_root (p));
    }
  return TRUE;
}

static gboolean
dump_too_large (const char *what, const char *name, GError **error)
{
  return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: %s is larger than %d bytes", what,
                      name, ARCHIVE_JSON_MAX);
}

/* Reads member data of at most ARCHIVE_JSON_MAX bytes as a JSON object, into *out when out is
 * not NULL. */
static gboolean
read_json_member (struct archive *a, const char *what, const char *name, JsonNode **out,
                  GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  char buf[65536];
  la_ssize_t n;
  while ((n = archive_read_data (a, buf, sizeof buf)) > 0)
    {
      if (s->len + (gsize) n > ARCHIVE_JSON_MAX)
        return dump_too_large (what, name, error);
      g_string_append_len (s, buf, n);
    }
  if (n < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: %s: %s", what, name,
                        archive_error_string (a));
  return parse_dump (what, name, s, out, error);
}

/* What a checkpoint lacks of the members found (1: config.dump, 2: spec.dump, 4: checkpoint/),
 * or NULL. */
static const char *
lacking (guint found)
{
  return !(found & 1)   ? "config.dump"
         : !(found & 2) ? "spec.dump"
         : !(found & 4) ? "the checkpoint/ directory of CRIU images"
                        : NULL;
}

/* Checks one member's name; notes the members a checkpoint must have. */
static gboolean
check_member (struct archive *a, struct archive_entry *e, const char *path, guint *found,
              JsonNode **dumps, GError **error)
{
  const char *name = archive_entry_pathname (e);
  if (name == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "checkpoint archive '%s': a member has no name", path);
  g_autofree char *clean = crisp_container_checkpoint_member_name (name);
  if (clean == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "checkpoint archive '%s': member '%.256s' escapes the archive", path,
                        archive_entry_pathname (e));
  const char *link = archive_entry_hardlink (e);
  while (link != NULL && g_str_has_prefix (link, "./"))
    link += 2;
  if (link != NULL && !crisp_path_is_clean (link, FALSE))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "checkpoint archive '%s': member '%.256s' links outside the archive", path,
                        clean);
  gboolean regular = archive_entry_filetype (e) == AE_IFREG;
  if (g_str_equal (clean, "config.dump") || g_str_equal (clean, "spec.dump"))
    {
      if (!regular)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "checkpoint archive '%s': %s is not a regular file", path, clean);
      gboolean config = g_str_equal (clean, "config.dump");
      *found |= config ? 1 : 2;
      g_autofree char *what = g_strdup_printf ("checkpoint archive '%s'", path);
      return read_json_member (a, what, clean, dumps ? &dumps[config ? 0 : 1] : NULL, error);
    }
  if (g_str_equal (clean, "checkpoint") || g_str_has_prefix (clean, "checkpoint/"))
    *found |= 4;
  return TRUE;
}

/* Reads every member header of the archive at path (hostile: nothing is extracted). */
gboolean
crisp_container_checkpoint_read_archive (const char *path, JsonNode **out_config,
                                         JsonNode **out_spec, GError **error)
{
  JsonNode *dumps[2] = { NULL, NULL };
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (fd < 0 && errno == ENOENT)
    return crisp_throw (error, CRISP_ERROR_NOT_FOUND, "checkpoint archive '%s' does not exist",
                        path);
  if (fd < 0 || fstat (fd, &st) < 0)
    return crisp_throw_errno (error, errno, "checkpoint archive '%s'", path);
  if (!S_ISREG (st.st_mode))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "checkpoint archive '%s' is not a regular file", path);
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  archive_read_support_filter_gzip (a);
  archive_read_support_filter_zstd (a);
  gboolean ok = archive_read_open_fd (a, fd, 65536) == ARCHIVE_OK
                || crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                                "checkpoint archive '%s' is not a tar archive: %s", path,
                                archive_error_string (a));
  guint found = 0, members = 0;
  struct archive_entry *e;
  int r = ARCHIVE_OK;
  while (ok && (r = archive_read_next_header (a, &e)) == ARCHIVE_OK)
    ok = (++members <= ARCHIVE_MAX_MEMBERS
          || crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "checkpoint archive '%s' has more than %d members", path,
                          ARCHIVE_MAX_MEMBERS))
         && check_member (a, e, path, &found, dumps, error);
  if (ok && r != ARCHIVE_EOF)
    ok = crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                      "checkpoint archive '%s' is not a valid tar archive: %s", path,
                      archive_error_string (a));
  archive_read_free (a);
  if (ok && lacking (found) != NULL)
    ok = crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                      "'%s' is not a checkpoint archive: it lacks %s", path, lacking (found));
  if (ok && out_config != NULL)
    *out_config = g_steal_pointer (&dumps[0]);
  if (ok && out_spec != NULL)
    *out_spec = g_steal_pointer (&dumps[1]);
  g_clear_pointer (&dumps[0], json_node_unref);
  g_clear_pointer (&dumps[1], json_node_unref);
  return ok;
}

gboolean
crisp_container_checkpoint_check_archive (const char *path, GError **error)
{
  return crisp_container_checkpoint_read_archive (path, NULL, NULL, error);
}

/* config.dump or spec.dump of a directory: a regular file (a link is not followed), read
 * whole within the bound, a JSON object. */
static gboolean
read_json_file (int dirfd, const char *what, const char *name, guint *found, JsonNode **out,
                GError **error)
{
  /* Looked at before it is opened: a device node is never opened. */
  struct stat st;
  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT || crisp_throw_errno (error, errno, "%s: reading %s", what, name);
  _cleanup_close_ int fd
      = S_ISREG (st.st_mode)
            ? openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            : -1;
  if (fd >= 0 && fstat (fd, &st) < 0)
    return crisp_throw_errno (error, errno, "%s: opening %s", what, name);
  if (fd < 0 && S_ISREG (st.st_mode) && errno != ELOOP)
    return crisp_throw_errno (error, errno, "%s: opening %s", what, name);
  if (fd < 0 || !S_ISREG (st.st_mode))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s: %s is not a regular file", what,
                        name);
  if (st.st_size > ARCHIVE_JSON_MAX)
    return dump_too_large (what, name, error);
  g_autoptr (GString) s = g_string_sized_new ((gsize) st.st_size + 1);
  char buf[65536];
  ssize_t n;
  while ((n = read (fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    {
      if (n < 0)
        continue;
      if (s->len + (gsize) n > ARCHIVE_JSON_MAX)
        return dump_too_large (what, name, error);
      g_string_append_len (s, buf, n);
    }
  if (n < 0)
    return crisp_throw_errno (error, errno, "%s: reading %s", what, name);
  *found |= g_str_equal (name, "config.dump") ? 1 : 2;
  return parse_dump (what, name, s, out, error);
}

gboolean
crisp_container_checkpoint_read_dir (int dirfd, const char *what, JsonNode **out_config,
                                     JsonNode **out_spec, GError **error)
{
  g_autoptr (JsonNode) config = NULL;
  g_autoptr (JsonNode) spec = NULL;
  guint found = 0;
  struct stat st;
  if (fstatat (dirfd, "checkpoint", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode))
    found |= 4;
  if (!read_json_file (dirfd, what, "config.dump", &found, &config, error)
      || !read_json_file (dirfd, what, "spec.dump", &found, &spec, error))
    return FALSE;
  if (lacking (found) != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "%s is not a checkpoint: it lacks %s",
                        what, lacking (found));
  if (out_config != NULL)
    *out_config = g_steal_pointer (&config);
  if (out_spec != NULL)
    *out_spec = g_steal_pointer (&spec);
  return TRUE;
}
