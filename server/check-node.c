/* `crisp check` on the node itself: the state directories, overlayfs where images will live,
 * and the kernel features crisp uses.  Nothing is created on the real paths except the
 * overlay probe's private directory, removed again. */
#include "config.h"

#include "check.h"

#include "crisp-base.h"
#include "crisp-cgroups.h"
#include "pkg/storage/storage.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* path itself, or its nearest ancestor that exists (a file in the way included). */
static char *
existing_ancestor (const char *path)
{
  g_autofree char *p = g_strdup (path);
  struct stat st;
  while (lstat (p, &st) < 0 && (errno == ENOENT || errno == ENOTDIR) && strcmp (p, "/") != 0)
    {
      char *parent = g_path_get_dirname (p);
      g_free (p);
      p = parent;
    }
  return g_steal_pointer (&p);
}

void
crisp_check_state_dir (CrispCheck *check, const char *name, const char *path, const char *setting)
{
  g_autofree char *existing = existing_ancestor (path);
  g_autofree char *fix = g_strdup_printf ("make '%s' a writable directory, or set %s to a path "
                                          "on a writable filesystem",
                                          existing, setting);
  struct stat st;
  if (stat (existing, &st) < 0)
    return crisp_check_report (check, name, CRISP_CHECK_PROBLEM, fix, "'%s' cannot be examined: %s",
                               existing, g_strerror (errno));
  if (!S_ISDIR (st.st_mode))
    return crisp_check_report (check, name, CRISP_CHECK_PROBLEM, fix,
                               "'%s' is not a directory, so '%s' cannot be created", existing,
                               path);
  if (access (existing, W_OK | X_OK) < 0)
    return crisp_check_report (
        check, name, CRISP_CHECK_PROBLEM, fix, "'%s' is not writable (%s), so '%s' cannot be %s",
        existing, g_strerror (errno), path, g_str_equal (existing, path) ? "used" : "created");
  if (g_str_equal (existing, path))
    crisp_check_report (check, name, CRISP_CHECK_OK, NULL, "'%s' is a writable directory", path);
  else
    crisp_check_report (check, name, CRISP_CHECK_OK, NULL,
                        "'%s' will be created in the writable directory '%s'", path, existing);
}

static gboolean
overlay_listed (void)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents ("/proc/filesystems", &text, NULL, NULL))
    return FALSE;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      const char *tab = strrchr (*l, '\t');
      if (g_strcmp0 (tab ? tab + 1 : *l, "overlay") == 0)
        return TRUE;
    }
  return FALSE;
}

/* As root, a real overlay in the directory the storage root is (or will be) in; otherwise
 * what /proc/filesystems says. */
void
crisp_check_overlay (CrispCheck *check, const char *root)
{
  const char *name = "storage.overlay";
  g_autofree char *dir = existing_ancestor (root);
  gboolean listed = overlay_listed ();
  if (geteuid () != 0 || !g_file_test (dir, G_FILE_TEST_IS_DIR) || access (dir, W_OK) < 0)
    {
      const char *why = geteuid () != 0 ? "not root" : "no writable directory to try it in";
      if (listed)
        return crisp_check_report (check, name, CRISP_CHECK_OK, NULL,
                                   "overlay is in /proc/filesystems (not mounted: %s)", why);
      return crisp_check_report (check, name, CRISP_CHECK_WARNING,
                                 "load it (modprobe overlay) and run crisp check as root",
                                 "overlay is not in /proc/filesystems (not mounted: %s)", why);
    }
  g_autoptr (GError) error = NULL;
  if (!crisp_storage_probe_overlay (dir, &error))
    return crisp_check_report (
        check, name, CRISP_CHECK_PROBLEM,
        "put root on a filesystem overlayfs takes as upper layer (ext4, xfs with ftype=1, btrfs) "
        "on a kernel whose overlayfs has metacopy and data-only layers (lowerdir+, datadir+)",
        "an overlay like a container's root filesystem cannot be made in '%s': %s", dir,
        error->message);
  crisp_check_report (check, name, CRISP_CHECK_OK, NULL,
                      "an overlay with metacopy and a data-only layer works in '%s'", dir);
}

static void
check_pidfd (CrispCheck *check)
{
  _cleanup_close_ int fd = (int) syscall (SYS_pidfd_open, getpid (), 0);
  if (fd >= 0)
    return crisp_check_report (check, "kernel.pidfd", CRISP_CHECK_OK, NULL, "pidfd_open works");
  crisp_check_report (check, "kernel.pidfd", CRISP_CHECK_PROBLEM,
                      "use Linux 5.3 or later, and allow pidfd_open to crisp",
                      "pidfd_open: %s: crisp waits on container processes through pidfds",
                      g_strerror (errno));
}

static const char *const required_controllers[] = { "cpu", "memory", "pids", NULL };

/* The controllers the kernel has enabled, from /proc/cgroups. */
static GPtrArray *
enabled_controllers (void)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *text = NULL;
  if (!g_file_get_contents ("/proc/cgroups", &text, NULL, NULL))
    return names;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      g_auto (GStrv) f = g_strsplit (*l, "\t", -1);
      if (f[0] != NULL && f[0][0] != '#' && g_strv_length (f) == 4 && g_str_equal (f[3], "1"))
        g_ptr_array_add (names, g_strdup (f[0]));
    }
  return names;
}

static const char *
mode_description (CrispCgroupMode mode)
{
  switch (mode)
    {
    case CRISP_CGROUP_MODE_V1:
      return "v1: controllers under /sys/fs/cgroup/<controller>";
    case CRISP_CGROUP_MODE_HYBRID:
      return "hybrid: v1 controllers under /sys/fs/cgroup/<controller>, v2 at "
             "/sys/fs/cgroup/unified";
    case CRISP_CGROUP_MODE_V2:
      return "v2: unified at /sys/fs/cgroup";
    }
  return "unknown";
}

static void
check_controllers (CrispCheck *check, CrispCgroups *cg)
{
  g_autoptr (GPtrArray) enabled = enabled_controllers ();
  g_autoptr (GString) mounted = g_string_new (NULL);
  g_autoptr (GString) unmounted = g_string_new (NULL);
  for (guint i = 0; i < enabled->len; i++)
    {
      const char *c = enabled->pdata[i];
      GString *s = crisp_cgroups_has_controller (cg, c) ? mounted : unmounted;
      g_string_append_printf (s, "%s%s", s->len ? ", " : "", c);
    }
  crisp_check_report (check, "kernel.cgroups", CRISP_CHECK_OK, NULL, "%s; controllers %s",
                      mode_description (cg->mode), mounted->str);
  for (const char *const *c = required_controllers; *c; c++)
    if (!crisp_cgroups_has_controller (cg, *c))
      crisp_check_report (check, "kernel.cgroups", CRISP_CHECK_PROBLEM,
                          "mount it (v1: a hierarchy at /sys/fs/cgroup/<controller>; v2: enable "
                          "it in the root's cgroup.subtree_control)",
                          "the '%s' controller crisp limits containers with is not mounted", *c);
  if (unmounted->len > 0)
    crisp_check_report (check, "kernel.cgroups", CRISP_CHECK_WARNING,
                        "mount them, or give containers no limits that need them",
                        "enabled in the kernel but not usable by containers here: %s (a "
                        "container with limits on them fails to start)",
                        unmounted->str);
}

static void
check_cgroups (CrispCheck *check, const CrispConfig *cfg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CrispCgroups) cg = crisp_cgroups_new (NULL, &error);
  if (cg == NULL)
    return crisp_check_report (check, "kernel.cgroups", CRISP_CHECK_PROBLEM,
                               "mount cgroup2 at /sys/fs/cgroup (or the v1 hierarchies in a "
                               "tmpfs there)",
                               "%s", error->message);
  check_controllers (check, cg);
  if (cfg != NULL && g_strcmp0 (cfg->cgroup_driver, "systemd") == 0
      && !g_file_test ("/run/systemd/system", G_FILE_TEST_IS_DIR))
    crisp_check_report (check, "kernel.cgroups", CRISP_CHECK_PROBLEM,
                        "set cgroup-driver = cgroupfs in [runtime], and the kubelet's "
                        "cgroupDriver to match",
                        "cgroup-driver is systemd, but systemd does not run this node");
}

static void
check_metacopy (CrispCheck *check)
{
  const char *name = "kernel.overlay-metacopy";
  if (g_file_test ("/sys/module/overlay/parameters/metacopy", G_FILE_TEST_EXISTS))
    return crisp_check_report (check, name, CRISP_CHECK_OK, NULL, "overlayfs has metacopy");
  if (!g_file_test ("/sys/module/overlay", G_FILE_TEST_IS_DIR))
    return crisp_check_report (check, name, CRISP_CHECK_WARNING,
                               "load it (modprobe overlay) and check again",
                               "the overlay module is not loaded, so metacopy is unknown");
  crisp_check_report (check, name, CRISP_CHECK_PROBLEM,
                      "use a kernel whose overlayfs has metacopy (Linux 4.19 or later)",
                      "overlayfs has no metacopy: crisp stacks image layers with metacopy=on");
}

static void
check_idmapped_mounts (CrispCheck *check)
{
  const char *name = "kernel.idmapped-mounts";
  /* Invalid on purpose: any answer but ENOSYS means the call exists. */
  if (syscall (SYS_mount_setattr, -1, NULL, 0, NULL, (size_t) 0) < 0 && errno == ENOSYS)
    return crisp_check_report (check, name, CRISP_CHECK_WARNING,
                               "use Linux 5.12 or later for pods in user namespaces",
                               "mount_setattr is not available: no idmapped mounts");
  crisp_check_report (check, name, CRISP_CHECK_OK, NULL, "mount_setattr is available");
}

void
crisp_check_kernel (CrispCheck *check, const CrispConfig *cfg)
{
  check_pidfd (check);
  check_cgroups (check, cfg);
  check_metacopy (check);
  check_idmapped_mounts (check);
}
