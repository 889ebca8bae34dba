/* cgroup layout detection, controller presence, and where a container's cgroup lives. */
#include "config.h"

#include "crisp-cgroups.h"
#include "crisp-error.h"
#include "cgroups-private.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <unistd.h>
#include <string.h>
#include <sys/statfs.h>

#define MAX_PARENT_LEN 4096

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

gboolean
crisp_cgroups_move_pid (CrispCgroups *cg, const char *rel_path, pid_t pid, GError **error)
{
  if (!crisp_cgroups_check_rel_path (rel_path, error))
    return FALSE;
  if (cg->mode == CRISP_CGROUP_MODE_V2)
    return move_in_hierarchy (cg->root, rel_path, pid, error);
  /* v1: every mounted hierarchy (named ones like systemd too); hybrid adds "unified". */
  g_autoptr (GDir) d = g_dir_open (cg->root, 0, error);
  if (d == NULL)
    return FALSE;
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *h = g_build_filename (cg->root, name, NULL);
      g_autofree char *procs = g_build_filename (h, "cgroup.procs", NULL);
      if (g_file_test (h, G_FILE_TEST_IS_SYMLINK) || !g_file_test (procs, G_FILE_TEST_EXISTS))
        continue; /* cpu -> cpu,cpuacct links, and controllers listed but not mounted */
      if (!move_in_hierarchy (h, rel_path, pid, error))
        return FALSE;
    }
  return TRUE;
}
