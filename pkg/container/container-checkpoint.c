/* CheckpointContainer through the OCI runtime's checkpoint (CRIU), written as the archive
 * CRI-O and containerd write, and the check CreateContainer makes on an image that is such a
 * checkpoint. Restoring one is refused with the reason (see docs/checkpoint.md). */
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
#include <sys/timerfd.h>
#include <unistd.h>

extern char **environ;

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CrispSpawnResult, crisp_spawn_result_clear)

/* How long a `criu check` verdict is trusted: a kernel does not change while crisp runs, but
 * an installed or removed criu is seen within this. */
#define CRIU_CHECK_CACHE_US (60 * G_USEC_PER_SEC)
#define CRIU_CHECK_TIMEOUT_S 20
#define TOOL_OUTPUT_MAX (256 * 1024)
/* The most of CRIU's or the runtime's words an error message carries. */
#define REASON_MAX 1024
#define CHECKPOINT_TIMEOUT_DEFAULT_S 300
#define CHECKPOINT_TIMEOUT_MAX_S 3600
#define LOCATION_MAX 4095
#define DIFF_MAX_DEPTH 256
#define DIFF_MAX_ENTRIES 1000000
/* Bounds on an archive CreateContainer is given: members, and the JSON files read whole. */
#define ARCHIVE_MAX_MEMBERS 1000000
#define ARCHIVE_JSON_MAX (4 * 1024 * 1024)
/* The annotation CRI-O (and checkpointctl build) put on an image made from a checkpoint. */
#define CHECKPOINT_ANNOTATION "io.kubernetes.cri-o.annotations.checkpoint.name"

/* Runs argv[0] (a path) with its output bounded, killed after timeout_s. */
static int
run_bounded (char *const argv[], int timeout_s, CrispSpawnResult *res)
{
  _cleanup_close_ int tfd = timerfd_create (CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (tfd < 0)
    return -errno;
  struct itimerspec its = { .it_value = { .tv_sec = timeout_s } };
  if (timerfd_settime (tfd, 0, &its, NULL) < 0)
    return -errno;
  return crisp_spawn_communicate (argv[0], argv, environ, NULL, 0, TOOL_OUTPUT_MAX, tfd, res);
}

/* A tool's words for an error message: its non-empty lines, trimmed, joined by "; ", cut to
 * REASON_MAX bytes from the end (the last lines say what failed). */
static char *
reason_of (const char *out, const char *err)
{
  g_autofree char *all = g_strconcat (out ? out : "", "\n", err ? err : "", NULL);
  g_auto (GStrv) lines = g_strsplit (all, "\n", -1);
  g_autoptr (GString) s = g_string_new (NULL);
  for (char **l = lines; *l; l++)
    {
      g_strstrip (*l);
      if (**l == '\0')
        continue;
      if (s->len)
        g_string_append (s, "; ");
      g_string_append (s, *l);
    }
  if (s->len > REASON_MAX)
    g_string_erase (s, 0, s->len - REASON_MAX);
  for (gsize i = 0; i < s->len; i++)
    if ((guchar) s->str[i] < 0x20 || (guchar) s->str[i] >= 0x7f)
      s->str[i] = '?';
  return s->len ? g_string_free (g_steal_pointer (&s), FALSE) : g_strdup ("(no output)");
}

static char *
find_criu (void)
{
  char *path = g_find_program_in_path ("criu");
  if (path == NULL && access ("/usr/sbin/criu", X_OK) == 0)
    path = g_strdup ("/usr/sbin/criu");
  return path;
}

/* NULL when CRIU works here, else why not. */
static char *
criu_probe (void)
{
  g_autofree char *criu = find_criu ();
  if (criu == NULL)
    return g_strdup ("checkpoint and restore need CRIU, and criu is not installed (Debian's "
                     "package 'criu')");
  char *argv[] = { criu, (char *) "check", NULL };
  g_auto (CrispSpawnResult) res = { 0 };
  int r = run_bounded (argv, CRIU_CHECK_TIMEOUT_S, &res);
  if (r == -ECANCELED)
    return g_strdup_printf ("'%s check' did not finish in %d s", criu, CRIU_CHECK_TIMEOUT_S);
  if (r < 0)
    return g_strdup_printf ("running '%s check': %s", criu, g_strerror (-r));
  if (WIFEXITED (res.status) && WEXITSTATUS (res.status) == 0)
    return NULL;
  g_autofree char *why = reason_of (res.out, res.err);
  return g_strdup_printf ("CRIU cannot checkpoint or restore on this machine: 'criu check' "
                          "failed: %s",
                          why);
}

/* FAILED_PRECONDITION with CRIU's reason unless it works; the verdict is kept a minute. */
static gboolean
criu_usable (CrispContainerService *svc, GError **error)
{
  gint64 now = g_get_monotonic_time ();
  g_mutex_lock (&svc->lock);
  gboolean fresh = svc->criu_checked_at != 0 && now - svc->criu_checked_at < CRIU_CHECK_CACHE_US;
  g_autofree char *problem = fresh ? g_strdup (svc->criu_problem) : NULL;
  g_mutex_unlock (&svc->lock);
  if (!fresh)
    {
      problem = criu_probe ();
      g_mutex_lock (&svc->lock);
      g_free (svc->criu_problem);
      svc->criu_problem = g_strdup (problem);
      svc->criu_checked_at = now;
      g_mutex_unlock (&svc->lock);
    }
  if (problem != NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "%s", problem);
  return TRUE;
}

/* The directory the archive goes to (an fd) and its name there. The file itself may exist
 * only as a regular file, which is replaced. */
static gboolean
open_location (const char *location, int *out_dirfd, char **out_base, GError **error)
{
  if (location == NULL || *location == '\0')
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "location is empty");
  if (strlen (location) > LOCATION_MAX)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "location is longer than %d bytes",
                        LOCATION_MAX);
  if (!crisp_path_is_clean (location, TRUE))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "location '%s' must be an absolute path without '.', '..' or empty "
                        "components",
                        location);
  g_autofree char *dir = g_path_get_dirname (location);
  _cleanup_close_ int dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "location '%s': directory '%s': %s",
                        location, dir, g_strerror (errno));
  g_autofree char *base = g_path_get_basename (location);
  struct stat st;
  if (fstatat (dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG (st.st_mode))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "location '%s' exists and is not a regular file (%s)", location,
                        S_ISDIR (st.st_mode) ? "a directory" : "not replaced");
  *out_dirfd = take_fd (&dirfd);
  *out_base = g_steal_pointer (&base);
  return TRUE;
}

/* The last lines of CRIU's log in dir (at most REASON_MAX bytes), or NULL. */
static char *
log_tail (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) < 0)
    return NULL;
  char buf[REASON_MAX + 1];
  off_t from = st.st_size > REASON_MAX ? st.st_size - REASON_MAX : 0;
  ssize_t n = pread (fd, buf, REASON_MAX, from);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  const char *start = from > 0 && strchr (buf, '\n') ? strchr (buf, '\n') + 1 : buf;
  return reason_of (start, NULL);
}

static gboolean
run_checkpoint (CrispContainer *c, const char *work, gint64 timeout, GError **error)
{
  g_autofree char *images = g_build_filename (work, "checkpoint", NULL);
  g_autofree char *criu_dir = g_build_filename (work, "criu", NULL);
  if (mkdir (images, 0700) < 0 || mkdir (criu_dir, 0700) < 0)
    return crisp_throw_errno (error, errno, "creating '%s'", work);
  g_autofree char *criu = find_criu (); /* the one criu_usable checked */
  if (criu == NULL)
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION, "criu is not installed");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, c->runtime_path);
  if (c->runtime_root)
    {
      g_ptr_array_add (argv, (char *) "--root");
      g_ptr_array_add (argv, c->runtime_root);
    }
  g_ptr_array_add (argv, (char *) "--criu");
  g_ptr_array_add (argv, criu);
  const char *const args[]
      = { "checkpoint", "--image-path", images, "--work-path", criu_dir, "--leave-running" };
  for (gsize i = 0; i < G_N_ELEMENTS (args); i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, c->id);
  g_ptr_array_add (argv, NULL);
  int secs
      = timeout > 0 ? (int) MIN (timeout, CHECKPOINT_TIMEOUT_MAX_S) : CHECKPOINT_TIMEOUT_DEFAULT_S;
  g_auto (CrispSpawnResult) res = { 0 };
  int r = run_bounded ((char *const *) argv->pdata, secs, &res);
  if (r == -ECANCELED)
    return crisp_throw (error, CRISP_ERROR_DEADLINE_EXCEEDED,
                        "checkpointing container '%s' took longer than %d s", c->id, secs);
  if (r < 0)
    return crisp_throw_errno (error, r, "running '%s checkpoint'", c->runtime_path);
  if (WIFEXITED (res.status) && WEXITSTATUS (res.status) == 0)
    return TRUE;
  g_autofree char *said = reason_of (res.out, res.err);
  g_autofree char *dump = log_tail (criu_dir, "dump.log");
  return crisp_throw (error, CRISP_ERROR_INTERNAL,
                      "'%s checkpoint' failed for container '%s': %s%s%s", c->runtime_path, c->id,
                      said, dump ? "; CRIU's dump.log ends: " : "", dump ? dump : "");
}

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
  int fd = dup (dirfd);
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

static gboolean
checkpoint_locked (CrispContainerService *svc, CrispContainer *c, const char *location, int dirfd,
                   const char *base, gint64 timeout, GError **error)
{
  g_autofree char *work = crisp_container_run_path (svc, c->id, "checkpoint");
  g_autofree char *run = crisp_container_run_path (svc, c->id, NULL);
  _cleanup_close_ int runfd = open (run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (runfd < 0)
    return crisp_throw_errno (error, errno, "opening '%s'", run);
  int r = crisp_store_rm_rf_at (runfd, "checkpoint"); /* what a kill left */
  if ((r < 0 && r != -ENOENT) || mkdir (work, 0700) < 0)
    return crisp_throw_errno (error, r < 0 && r != -ENOENT ? -r : errno, "creating '%s'", work);
  gboolean ok = run_checkpoint (c, work, timeout, error)
                && crisp_container_checkpoint_write_files (svc, c, work, error)
                && crisp_container_checkpoint_write_archive (work, dirfd, base, location, error);
  r = crisp_store_rm_rf_at (runfd, "checkpoint");
  if (r < 0 && r != -ENOENT)
    g_warning ("container '%s': removing '%s': %s", c->id, work, g_strerror (-r));
  return ok;
}

gboolean
crisp_container_service_checkpoint (CrispContainerService *svc, const char *id,
                                    const char *location, gint64 timeout, GError **error)
{
  _cleanup_close_ int dirfd = -1;
  g_autofree char *base = NULL;
  if (!open_location (location, &dirfd, &base, error))
    return FALSE;
  g_autoptr (CrispContainer) c = crisp_container_lookup (svc, id, error);
  if (c == NULL)
    return FALSE;
  g_mutex_lock (&c->op_lock);
  crisp_container_update (svc, c);
  CrispContainerState state = crisp_container_get_state (svc, c);
  gboolean ok = state == CRISP_CONTAINER_RUNNING
                || crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                                "container '%s' is %s: only a running container can be "
                                "checkpointed",
                                c->id, crisp_container_state_to_string (state));
  ok = ok && criu_usable (svc, error)
       && checkpoint_locked (svc, c, location, dirfd, base, timeout, error);
  g_mutex_unlock (&c->op_lock);
  return ok;
}

/* Reads member data of at most ARCHIVE_JSON_MAX bytes as a JSON object. */
static gboolean
read_json_member (struct archive *a, const char *path, const char *name, GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  char buf[65536];
  la_ssize_t n;
  while ((n = archive_read_data (a, buf, sizeof buf)) > 0)
    {
      if (s->len + (gsize) n > ARCHIVE_JSON_MAX)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "checkpoint archive '%s': %s is larger than %d bytes", path, name,
                            ARCHIVE_JSON_MAX);
      g_string_append_len (s, buf, n);
    }
  if (n < 0)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "checkpoint archive '%s': %s: %s",
                        path, name, archive_error_string (a));
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, s->str, (gssize) s->len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "checkpoint archive '%s': %s is not a JSON object", path, name);
  return TRUE;
}

/* Checks one member's name; notes the members a checkpoint must have. */
static gboolean
check_member (struct archive *a, struct archive_entry *e, const char *path, guint *found,
              GError **error)
{
  const char *name = archive_entry_pathname (e);
  if (name == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "checkpoint archive '%s': a member has no name", path);
  while (g_str_has_prefix (name, "./"))
    name += 2;
  g_autofree char *clean = g_strdup (name);
  gsize len = strlen (clean);
  while (len > 0 && clean[len - 1] == '/')
    clean[--len] = '\0';
  if (len > 0 && !crisp_path_is_clean (clean, FALSE))
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
      *found |= g_str_equal (clean, "config.dump") ? 1 : 2;
      return read_json_member (a, path, clean, error);
    }
  if (g_str_equal (clean, "checkpoint") || g_str_has_prefix (clean, "checkpoint/"))
    *found |= 4;
  return TRUE;
}

/* Reads every member header of the archive at path (hostile: nothing is extracted). */
static gboolean
check_archive (const char *path, GError **error)
{
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
         && check_member (a, e, path, &found, error);
  if (ok && r != ARCHIVE_EOF)
    ok = crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                      "checkpoint archive '%s' is not a valid tar archive: %s", path,
                      archive_error_string (a));
  archive_read_free (a);
  if (ok && found != 7)
    ok = crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                      "'%s' is not a checkpoint archive: it lacks %s", path,
                      !(found & 1)   ? "config.dump"
                      : !(found & 2) ? "spec.dump"
                                     : "the checkpoint/ directory of CRIU images");
  return ok;
}

/* Whether an image's manifest carries the checkpoint annotation; its value then. */
static char *
checkpoint_name_of (const CrispImage *img)
{
  if (img->manifest_json == NULL || strstr (img->manifest_json, CHECKPOINT_ANNOTATION) == NULL)
    return NULL;
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, img->manifest_json, -1, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
    return NULL;
  JsonObject *m = json_node_get_object (json_parser_get_root (p));
  JsonNode *ann = json_object_get_member (m, "annotations");
  if (ann == NULL || !JSON_NODE_HOLDS_OBJECT (ann))
    return NULL;
  JsonNode *v = json_object_get_member (json_node_get_object (ann), CHECKPOINT_ANNOTATION);
  return v && JSON_NODE_HOLDS_VALUE (v) && json_node_get_value_type (v) == G_TYPE_STRING
             ? g_strdup (json_node_get_string (v))
             : NULL;
}

gboolean
crisp_container_check_checkpoint_image (CrispContainerService *svc, const char *image,
                                        GError **error)
{
  g_autofree char *what = NULL;
  if (*image == '/')
    {
      if (!check_archive (image, error))
        return FALSE;
      what = g_strdup_printf ("checkpoint archive '%s'", image);
    }
  else
    {
      g_autoptr (CrispImage) img = crisp_image_service_find (svc->images, image, NULL);
      g_autofree char *name = img ? checkpoint_name_of (img) : NULL;
      if (name == NULL)
        return TRUE;
      what = g_strdup_printf ("image '%s' (a checkpoint of container '%.256s')", image, name);
    }
  if (!criu_usable (svc, error))
    return crisp_prefix_error (error, "restoring %s: ", what);
  return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                      "restoring %s is not supported yet: crisp's monitor cannot run the "
                      "runtime's restore, so a checkpoint cannot become a container",
                      what);
}
