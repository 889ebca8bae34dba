/* CheckpointContainer through the OCI runtime's checkpoint (CRIU), written as the archive
 * CRI-O and containerd write (container-checkpoint-archive.c), and the check CreateContainer
 * makes on an image that is such a checkpoint, and what a restore makes of one (see
 * docs/checkpoint.md). */
#include "config.h"

#include "container-private.h"

#include "crisp-base.h"

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

/* The image config.dump names (its id, else its name); NOT_FOUND unless it is pulled. */
static CrispImage *
find_image (CrispContainerService *svc, const CrispRestore *restore, GError **error)
{
  JsonObject *o = json_node_get_object (restore->config);
  const char *keys[] = { "rootfsImageRef", "rootfsImageName", "rootfsImage" };
  const char *named = NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      const char *ref = json_object_get_string_member_with_default (o, keys[i], NULL);
      if (ref == NULL || *ref == '\0' || strlen (ref) > 4096)
        continue;
      named = named ? named : ref;
      CrispImage *img = crisp_image_service_find (svc->images, ref, NULL);
      if (img != NULL)
        return img;
    }
  if (named == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s: config.dump names no image (rootfsImageRef, rootfsImageName)",
                        restore->what),
           NULL;
  return crisp_throw (error, CRISP_ERROR_NOT_FOUND,
                      "image '%.256s' that %s was made from is not found: pull it first", named,
                      restore->what),
         NULL;
}

gboolean
crisp_container_check_checkpoint_image (CrispContainerService *svc, const char *image,
                                        CrispRestore **out_restore, GError **error)
{
  g_autoptr (CrispRestore) restore = g_new0 (CrispRestore, 1);
  restore->content = -1;
  *out_restore = NULL;
  if (*image == '/')
    {
      if (!crisp_container_checkpoint_read_archive (image, &restore->config, &restore->spec, error))
        return FALSE;
      restore->archive = g_strdup (image);
      restore->what = g_strdup_printf ("checkpoint archive '%s'", image);
      restore->image = find_image (svc, restore, error);
      if (restore->image == NULL)
        return FALSE;
    }
  else
    {
      g_autoptr (CrispImage) img = crisp_image_service_find (svc->images, image, NULL);
      g_autofree char *name = img ? checkpoint_name_of (img) : NULL;
      if (name == NULL)
        return TRUE;
      restore->what
          = g_strdup_printf ("image '%s' (a checkpoint of container '%.256s')", image, name);
      /* The image's files (the archive's members) through a read-only mount attached
       * nowhere: it goes with the fd, whatever happens to crisp. */
      restore->content = crisp_image_service_open_rootfs (svc->images, img->id, error);
      if (restore->content < 0)
        return crisp_prefix_error (error, "reading %s: ", restore->what);
      if (!crisp_container_checkpoint_read_dir (restore->content, restore->what, &restore->config,
                                                &restore->spec, error))
        return FALSE;
      restore->image = find_image (svc, restore, error);
      if (restore->image == NULL)
        return FALSE;
    }
  if (!criu_usable (svc, error))
    return crisp_prefix_error (error, "restoring %s: ", restore->what);
  *out_restore = g_steal_pointer (&restore);
  return TRUE;
}

/* rootfs-diff.tar and deleted.files, unpacked in dirfd, applied in the mounted rootfs. */
static gboolean
apply_changes (int dirfd, const char *rootfs, const char *what, GError **error)
{
  _cleanup_close_ int rootfd = open (rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return crisp_throw_errno (error, errno, "opening the root filesystem '%s'", rootfs);
  _cleanup_close_ int tarfd = openat (dirfd, "rootfs-diff.tar", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (tarfd < 0 && errno != ENOENT)
    return crisp_throw_errno (error, errno, "%s: opening rootfs-diff.tar", what);
  g_autofree char *diff = g_strdup_printf ("%s: rootfs-diff.tar", what);
  if (tarfd >= 0 && !crisp_container_restore_apply_diff (rootfd, tarfd, diff, error))
    return FALSE;
  if (!crisp_container_restore_remove_deleted (rootfd, dirfd, "deleted.files", error))
    return crisp_prefix_error (error, "%s: ", what);
  /* Applied: only CRIU's images are needed from now on. */
  unlinkat (dirfd, "rootfs-diff.tar", 0);
  unlinkat (dirfd, "deleted.files", 0);
  return TRUE;
}

gboolean
crisp_container_restore_prepare (CrispContainerService *svc, CrispContainer *c,
                                 const CrispRestore *restore, const char *rootfs, GError **error)
{
  /* In the container's directory on disk, not in the run directory's tmpfs: CRIU's images
   * hold the process's memory. The directory goes with the container. */
  g_autofree char *dir = crisp_container_root_path (svc, c->id, "restore");
  if (mkdir (dir, 0700) < 0)
    return crisp_throw_errno (error, errno, "creating '%s'", dir);
  _cleanup_close_ int dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0 || mkdirat (dirfd, "work", 0700) < 0)
    return crisp_throw_errno (error, errno, "creating '%s/work'", dir);
  if (!(restore->archive != NULL
            ? crisp_container_restore_unpack (restore->archive, dirfd, error)
            : crisp_container_restore_unpack_dir (restore->content, restore->what, dirfd, error))
      || !apply_changes (dirfd, rootfs, restore->what, error))
    return FALSE;
  struct stat st;
  if (fstatat (dirfd, "checkpoint", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "%s has no checkpoint/ directory of CRIU images", restore->what);
  c->restore_images = g_build_filename (dir, "checkpoint", NULL);
  return TRUE;
}

void
crisp_container_restore_finished (CrispContainer *c)
{
  g_autofree char *dir = g_path_get_dirname (c->restore_images);
  int r = crisp_store_rm_rf_at (AT_FDCWD, dir);
  if (r < 0 && r != -ENOENT)
    g_warning ("container '%s': removing the restored checkpoint '%s': %s", c->id, dir,
               g_strerror (-r));
}
