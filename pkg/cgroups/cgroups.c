/* cgroup layout detection, controller presence, and where a container's cgroup lives. */
#include "config.h"

#include "crisp-base.h"
#include "crisp-cgroups.h"
#include "crisp-error.h"
#include "cgroups-private.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/magic.h>
#include <unistd.h>
#include <string.h>
#include <sys/statfs.h>

#define MAX_PARENT_LEN 4096
/* How deep crisp_cgroups_remove walks below a container's cgroup. */
#define MAX_REMOVE_DEPTH 16

void
crisp_cgroups_free (CrispCgroups *cg)
{
  if (cg == NULL)
    return;
  g_free (cg->root);
  g_free (cg);
}

CrispCgroups *
crisp_cgroups_new_with_mode (const char *root, CrispCgroupMode mode)
{
  CrispCgroups *cg = g_new0 (CrispCgroups, 1);
  cg->root = g_strdup (root ? root : "/sys/fs/cgroup");
  cg->mode = mode;
  return cg;
}

static gboolean
fs_type_is (const char *path, long magic)
{
  struct statfs sfs;
  return statfs (path, &sfs) == 0 && (long) sfs.f_type == magic;
}

CrispCgroups *
crisp_cgroups_new (const char *root, GError **error)
{
  if (root == NULL)
    root = "/sys/fs/cgroup";
  g_autofree char *unified = g_build_filename (root, "unified", NULL);
  if (fs_type_is (root, CGROUP2_SUPER_MAGIC))
    return crisp_cgroups_new_with_mode (root, CRISP_CGROUP_MODE_V2);
  if (!fs_type_is (root, TMPFS_MAGIC))
    return crisp_throw (error, CRISP_ERROR_FAILED_PRECONDITION,
                        "'%s' is neither a cgroup2 mount nor a tmpfs of cgroup v1 hierarchies",
                        root),
           NULL;
  return crisp_cgroups_new_with_mode (root, fs_type_is (unified, CGROUP2_SUPER_MAGIC)
                                                ? CRISP_CGROUP_MODE_HYBRID
                                                : CRISP_CGROUP_MODE_V1);
}

const char *
crisp_cgroup_mode_to_string (CrispCgroupMode mode)
{
  switch (mode)
    {
    case CRISP_CGROUP_MODE_V1:
      return "v1";
    case CRISP_CGROUP_MODE_HYBRID:
      return "hybrid";
    case CRISP_CGROUP_MODE_V2:
      return "v2";
    }
  return "unknown";
}

static gboolean
word_in_list (const char *list, const char *word)
{
  g_auto (GStrv) words = g_strsplit_set (list, " \t\n", -1);
  return g_strv_contains ((const char *const *) words, word);
}

gboolean
crisp_cgroups_has_controller (CrispCgroups *cg, const char *controller)
{
  if (controller == NULL || strchr (controller, '/') != NULL || controller[0] == '.')
    return FALSE;
  if (cg->mode != CRISP_CGROUP_MODE_V2)
    {
      g_autofree char *dir = g_build_filename (cg->root, controller, NULL);
      return g_file_test (dir, G_FILE_TEST_IS_DIR);
    }
  g_autofree char *path = g_build_filename (cg->root, "cgroup.controllers", NULL);
  g_autofree char *list = NULL;
  return g_file_get_contents (path, &list, NULL, NULL) && word_in_list (list, controller);
}

static gboolean
check_parent (const char *parent, GError **error)
{
  if (strlen (parent) > MAX_PARENT_LEN)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "cgroup_parent is longer than %d",
                        MAX_PARENT_LEN);
  for (const char *p = parent; *p; p++)
    if (g_ascii_iscntrl (*p))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "cgroup_parent '%s' contains a control character", parent);
  g_auto (GStrv) parts = g_strsplit (parent, "/", -1);
  for (char **p = parts; *p; p++)
    if (g_str_equal (*p, "..") || g_str_equal (*p, "."))
      return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                          "cgroup_parent '%s' has a '%s' component", parent, *p);
  return TRUE;
}

/* "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice", as systemd nests slices. */
static char *
expand_slice (const char *slice, GError **error)
{
  if (!g_str_has_suffix (slice, ".slice") || strchr (slice, '/') != NULL
      || strlen (slice) <= strlen (".slice"))
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "cgroup_parent '%s' is not a systemd slice name", slice),
           NULL;
  if (g_str_equal (slice, "-.slice"))
    return g_strdup ("");
  g_autofree char *stem = g_strndup (slice, strlen (slice) - strlen (".slice"));
  if (stem[0] == '-' || g_str_has_suffix (stem, "-") || strstr (stem, "--") != NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "cgroup_parent '%s' is not a valid slice name", slice),
           NULL;
  g_autoptr (GString) path = g_string_new (NULL);
  for (const char *dash = strchr (stem, '-'); dash != NULL; dash = strchr (dash + 1, '-'))
    {
      g_string_append_len (path, stem, dash - stem);
      g_string_append (path, ".slice/");
    }
  g_string_append_printf (path, "%s.slice", stem);
  return g_string_free (g_steal_pointer (&path), FALSE);
}

static gboolean
systemd_paths (const char *parent, const char *id, char **out_oci, char **out_rel, GError **error)
{
  const char *slice = parent[0] ? parent : "system.slice";
  g_autofree char *expanded = expand_slice (slice, error);
  if (expanded == NULL)
    return FALSE;
  if (out_oci)
    *out_oci = g_strdup_printf ("%s:crisp:%s", slice, id);
  if (out_rel)
    *out_rel = expanded[0] ? g_strdup_printf ("%s/crisp-%s.scope", expanded, id)
                           : g_strdup_printf ("crisp-%s.scope", id);
  return TRUE;
}

gboolean
crisp_cgroups_container_path (CrispCgroupDriver driver, const char *parent, const char *id,
                              char **out_oci_path, char **out_rel_path, GError **error)
{
  if (id == NULL || id[0] == '\0' || strchr (id, '/') != NULL || strchr (id, ':') != NULL
      || g_str_equal (id, "..") || strlen (id) > 128)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT, "invalid container id '%s'",
                        id ? id : "");
  if (parent == NULL)
    parent = "";
  if (!check_parent (parent, error))
    return FALSE;
  if (driver == CRISP_CGROUP_DRIVER_SYSTEMD)
    return systemd_paths (parent, id, out_oci_path, out_rel_path, error);
  g_autofree char *trimmed = g_strdup (parent);
  g_strstrip (trimmed);
  const char *p = trimmed;
  while (*p == '/')
    p++;
  g_autofree char *rel
      = p[0] ? g_strdup_printf ("%s/crisp-%s", p, id) : g_strdup_printf ("crisp-%s", id);
  /* collapse doubled slashes a parent may carry */
  g_auto (GStrv) parts = g_strsplit (rel, "/", -1);
  g_autoptr (GString) clean = g_string_new (NULL);
  for (char **c = parts; *c; c++)
    if (**c)
      g_string_append_printf (clean, "%s%s", clean->len ? "/" : "", *c);
  if (out_oci_path)
    *out_oci_path = g_strdup_printf ("/%s", clean->str);
  if (out_rel_path)
    *out_rel_path = g_strdup (clean->str);
  return TRUE;
}

char *
crisp_cgroups_self_path (const char *controller, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local_error = NULL;
  if (!g_file_get_contents ("/proc/self/cgroup", &text, NULL, &local_error))
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "%s", local_error->message), NULL;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      /* hierarchy-id:controller-list:path */
      g_auto (GStrv) f = g_strsplit (*l, ":", 3);
      if (g_strv_length (f) != 3)
        continue;
      gboolean match = controller == NULL
                           ? f[1][0] == '\0' && g_str_equal (f[0], "0")
                           : word_in_list (g_strdelimit (f[1], ",", ' '), controller);
      if (match)
        return g_strdup (f[2]);
    }
  return crisp_throw (error, CRISP_ERROR_NOT_FOUND, "no '%s' entry in /proc/self/cgroup",
                      controller ? controller : "cgroup2"),
         NULL;
}

gboolean
crisp_cgroups_driver_from_string (const char *name, CrispCgroupDriver *out_driver, GError **error)
{
  if (g_strcmp0 (name, "cgroupfs") == 0)
    *out_driver = CRISP_CGROUP_DRIVER_CGROUPFS;
  else if (g_strcmp0 (name, "systemd") == 0)
    *out_driver = CRISP_CGROUP_DRIVER_SYSTEMD;
  else
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "cgroup driver '%s' is neither 'cgroupfs' nor 'systemd'", name ? name : "");
  return TRUE;
}

gboolean
crisp_cgroups_parent_path (CrispCgroupDriver driver, const char *parent, char **out_rel_path,
                           GError **error)
{
  /* the container path with a placeholder id, minus its last component */
  g_autofree char *rel = NULL;
  if (!crisp_cgroups_container_path (driver, parent, "x", NULL, &rel, error))
    return FALSE;
  char *slash = strrchr (rel, '/');
  *out_rel_path = slash ? g_strndup (rel, (gsize) (slash - rel)) : g_strdup ("");
  return TRUE;
}

/* v1 cpuset cgroups start with no CPUs and no memory nodes, and refuse tasks until given
 * some: each new level gets its parent's. */
static gboolean
fill_cpuset (const char *hierarchy, const char *rel_path, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (rel_path, "/", -1);
  g_autofree char *dir = g_strdup (hierarchy);
  for (char **p = parts; *p; p++)
    {
      if (**p == '\0')
        continue;
      g_autofree char *child = g_build_filename (dir, *p, NULL);
      const char *files[] = { "cpuset.cpus", "cpuset.mems" };
      for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
        {
          g_autofree char *mine = g_build_filename (child, files[i], NULL);
          g_autofree char *parents = g_build_filename (dir, files[i], NULL);
          g_autofree char *cur = NULL, *want = NULL;
          if (!g_file_get_contents (mine, &cur, NULL, NULL) || *g_strstrip (cur) != '\0')
            continue;
          if (!g_file_get_contents (parents, &want, NULL, error)
              || !g_file_set_contents_full (mine, want, -1, G_FILE_SET_CONTENTS_NONE, 0644, error))
            return FALSE;
        }
      g_free (dir);
      dir = g_steal_pointer (&child);
    }
  return TRUE;
}

/* Writes pid into <hierarchy>/<rel_path>/cgroup.procs, creating the cgroup. */
static gboolean
move_in_hierarchy (const char *hierarchy, const char *rel_path, pid_t pid, GError **error)
{
  g_autofree char *dir = g_build_filename (hierarchy, rel_path, NULL);
  if (g_mkdir_with_parents (dir, 0755) < 0)
    return crisp_throw_errno (error, errno, "creating cgroup '%s'", dir);
  g_autofree char *cpus = g_build_filename (hierarchy, "cpuset.cpus", NULL);
  if (g_file_test (cpus, G_FILE_TEST_EXISTS) && !fill_cpuset (hierarchy, rel_path, error))
    return FALSE;
  g_autofree char *procs = g_build_filename (dir, "cgroup.procs", NULL);
  g_autofree char *text = g_strdup_printf ("%d\n", (int) pid);
  int fd = open (procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "opening '%s'", procs);
  gboolean ok = write (fd, text, strlen (text)) == (ssize_t) strlen (text);
  int saved = errno;
  close (fd);
  if (!ok)
    return crisp_throw_errno (error, saved, "moving pid %d into '%s'", (int) pid, dir);
  return TRUE;
}

/* Every hierarchy's root directory: the root itself for V2; for v1 each mounted hierarchy
 * (named ones like systemd too; hybrid adds "unified"). */
static GPtrArray *
hierarchies (CrispCgroups *cg, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  if (cg->mode == CRISP_CGROUP_MODE_V2)
    {
      g_ptr_array_add (out, g_strdup (cg->root));
      return g_steal_pointer (&out);
    }
  g_autoptr (GDir) d = g_dir_open (cg->root, 0, error);
  if (d == NULL)
    return NULL;
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *h = g_build_filename (cg->root, name, NULL);
      g_autofree char *procs = g_build_filename (h, "cgroup.procs", NULL);
      if (g_file_test (h, G_FILE_TEST_IS_SYMLINK) || !g_file_test (procs, G_FILE_TEST_EXISTS))
        continue; /* cpu -> cpu,cpuacct links, and controllers listed but not mounted */
      g_ptr_array_add (out, g_steal_pointer (&h));
    }
  return g_steal_pointer (&out);
}

gboolean
crisp_cgroups_move_pid (CrispCgroups *cg, const char *rel_path, pid_t pid, GError **error)
{
  if (!crisp_cgroups_check_rel_path (rel_path, error))
    return FALSE;
  g_autoptr (GPtrArray) hs = hierarchies (cg, error);
  if (hs == NULL)
    return FALSE;
  for (guint i = 0; i < hs->len; i++)
    if (!move_in_hierarchy (hs->pdata[i], rel_path, pid, error))
      return FALSE;
  return TRUE;
}

/* SIGKILLs every process listed in dir's cgroup.procs; how many there were. */
static guint
kill_members (int dirfd)
{
  _cleanup_close_ int fd = openat (dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char buf[8192];
  ssize_t n = read (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  guint count = 0;
  for (char *line = buf, *next; line && *line; line = next)
    {
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      guint64 pid;
      if (g_ascii_string_to_unsigned (line, 10, 2, G_MAXINT32, &pid, NULL))
        {
          kill ((pid_t) pid, SIGKILL);
          count++;
        }
    }
  return count;
}

/* Removes the cgroup name below parentfd and every cgroup below it, deepest first, killing
 * what is still inside.  depth bounds a hostile tree made by the container itself. */
static int
remove_tree (int parentfd, const char *name, int depth, gint64 deadline)
{
  _cleanup_close_ int fd = openat (parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  if (depth > 0)
    {
      _cleanup_close_ int lfd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
      DIR *d = lfd < 0 ? NULL : fdopendir (lfd);
      if (d != NULL)
        {
          lfd = -1;
          g_autoptr (GPtrArray) children = g_ptr_array_new_with_free_func (g_free);
          struct dirent *e;
          while ((e = readdir (d)) != NULL)
            if (e->d_type == DT_DIR && strcmp (e->d_name, ".") != 0
                && strcmp (e->d_name, "..") != 0)
              g_ptr_array_add (children, g_strdup (e->d_name));
          closedir (d);
          for (guint i = 0; i < children->len; i++)
            {
              int r = remove_tree (fd, children->pdata[i], depth - 1, deadline);
              if (r < 0)
                return r;
            }
        }
    }
  for (;;)
    {
      if (unlinkat (parentfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
        return 0;
      /* EBUSY: processes still inside (a killed one takes a moment to leave). */
      if (errno != EBUSY || g_get_monotonic_time () > deadline)
        return -errno;
      kill_members (fd);
      g_usleep (5 * 1000);
    }
}

gboolean
crisp_cgroups_remove (CrispCgroups *cg, const char *rel_path, int timeout_ms, GError **error)
{
  if (!crisp_cgroups_check_rel_path (rel_path, error))
    return FALSE;
  g_autoptr (GPtrArray) hs = hierarchies (cg, error);
  if (hs == NULL)
    return FALSE;
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autofree char *dir = g_path_get_dirname (rel_path);
  g_autofree char *base = g_path_get_basename (rel_path);
  for (guint i = 0; i < hs->len; i++)
    {
      g_autofree char *parent = g_build_filename (hs->pdata[i], dir, NULL);
      _cleanup_close_ int pfd = open (parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (pfd < 0 && errno == ENOENT)
        continue;
      int r = pfd < 0 ? -errno : remove_tree (pfd, base, MAX_REMOVE_DEPTH, deadline);
      if (r < 0)
        return crisp_throw_errno (error, -r, "removing cgroup '%s/%s'", parent, base);
    }
  return TRUE;
}
