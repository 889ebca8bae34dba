/* Namespace pins and the forked helpers that work inside a pod's namespaces: a child
 * unshares and bind-mounts its own /proc/self/ns/<type> onto files under <run_root>/ns, so no
 * helper process has to outlive the call.  Children only make system calls (the daemon is
 * multi-threaded), and report -errno and the failing step through a pipe. */
#include "config.h"

#include "sandbox-private.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

typedef int (*ChildFunc) (void *data, int *out_step);

typedef struct
{
  ChildFunc fn;
  void *data;
  pid_t parent;
  int out; /* the pipe's write end */
} ChildCall;

static int
child_call (void *data)
{
  const ChildCall *c = data;
  int res[2] = { 0, -1 };
  /* Neither this child nor what it holds may outlive a crisp killed meanwhile. */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid () != c->parent)
    _exit (1);
  res[0] = c->fn (c->data, &res[1]);
  (void) !write (c->out, res, sizeof res);
  _exit (0);
}

/* Runs fn in a child (crisp_vfork_call: it makes system calls only); returns its result,
 * with the step that failed in *out_step. */
static int
run_in_child (ChildFunc fn, void *data, int *out_step)
{
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return -errno;
  ChildCall call = { fn, data, getpid (), p[1] };
  pid_t pid = crisp_vfork_call (child_call, &call);
  int r = pid < 0 ? -errno : 0;
  close (p[1]);
  if (pid < 0)
    {
      close (p[0]);
      return r;
    }
  int res[2] = { -EIO, -1 };
  ssize_t n;
  do
    n = read (p[0], res, sizeof res);
  while (n < 0 && errno == EINTR);
  close (p[0]);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (n != (ssize_t) sizeof res)
    return -EIO;
  *out_step = res[1];
  return res[0];
}

int
crisp_ns_dir_prepare (const char *dir)
{
  int r = crisp_mkdir_p (dir, 0700);
  if (r < 0)
    return r;
  /* A private mount of its own, so pins neither propagate to peers (where they would keep
   * namespaces alive after we unmount ours) nor receive mounts from elsewhere. */
  if (mount (NULL, dir, NULL, MS_PRIVATE, NULL) == 0)
    return 0;
  if (errno != EINVAL)
    return -errno;
  if (mount (dir, dir, NULL, MS_BIND, NULL) < 0)
    return -errno;
  if (mount (NULL, dir, NULL, MS_PRIVATE, NULL) < 0)
    return -errno;
  return 0;
}

int
crisp_ns_dir_release (const char *dir)
{
  /* Only when empty: the pins of running pods must survive a daemon restart. */
  if (rmdir (dir) == 0)
    return 0;
  if (errno == ENOENT)
    return 0;
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  if (d != NULL && g_dir_read_name (d) != NULL)
    return -ENOTEMPTY;
  if (umount2 (dir, MNT_DETACH) < 0)
    return -errno;
  return rmdir (dir) < 0 ? -errno : 0;
}

typedef struct
{
  int flags;
  const char *hostname;
  const char *src[3];
  const char *dst[3];
  int n;
  int n_bind; /* how many of them the child binds itself */
} PinArgs;

/* A new network namespace has only "lo", and down. CNI configs need not include the loopback
 * plugin (containerd and CRI-O bring lo up themselves), and without it 127.0.0.1 is routed out
 * of the pod: port-forward and local health checks would hang. */
static int
loopback_up (void)
{
  _cleanup_close_ int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = { 0 };
  memcpy (ifr.ifr_name, "lo", 3);
  if (s < 0 || ioctl (s, SIOCGIFFLAGS, &ifr) < 0)
    return -errno;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  return ioctl (s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

static int
pin_child (void *data, int *out_step)
{
  PinArgs *a = data;
  *out_step = 0;
  if (unshare (a->flags) < 0)
    return -errno;
  *out_step = 1;
  if (a->hostname != NULL && sethostname (a->hostname, strlen (a->hostname)) < 0)
    return -errno;
  *out_step = 2 + a->n;
  int r = (a->flags & CLONE_NEWNET) ? loopback_up () : 0;
  if (r < 0)
    return r;
  for (int i = 0; i < a->n_bind; i++)
    {
      *out_step = 2 + i;
      if (mount (a->src[i], a->dst[i], NULL, MS_BIND, NULL) < 0)
        return -errno;
    }
  return 0;
}

static int
create_pin_file (const char *path)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
  if (fd < 0)
    return -errno;
  close (fd);
  return 0;
}

static void
add_pin (PinArgs *a, int flag, const char *src, const char *dst)
{
  if (dst == NULL)
    return;
  a->flags |= flag;
  a->src[a->n] = src;
  a->dst[a->n] = dst;
  a->n++;
}

gboolean
crisp_ns_pin (const char *net, const char *ipc, const char *uts, const char *hostname,
              GError **error)
{
  PinArgs a = { 0 };
  add_pin (&a, CLONE_NEWNET, "/proc/self/ns/net", net);
  add_pin (&a, CLONE_NEWIPC, "/proc/self/ns/ipc", ipc);
  add_pin (&a, CLONE_NEWUTS, "/proc/self/ns/uts", uts);
  a.hostname = uts ? hostname : NULL;
  a.n_bind = a.n;
  if (a.n == 0)
    return TRUE;
  for (int i = 0; i < a.n; i++)
    {
      int r = create_pin_file (a.dst[i]);
      if (r < 0)
        return crisp_throw_errno (error, r, "creating namespace pin '%s'", a.dst[i]);
    }
  int step = -1;
  int r = run_in_child (pin_child, &a, &step);
  if (r < 0)
    {
      static const char *const steps[] = { "unshare", "sethostname" };
      return crisp_throw_errno (error, r, "pinning namespaces (%s%s)",
                                step >= 0 && step < 2 ? steps[step]
                                : step == 2 + a.n     ? "bringing up lo"
                                                      : "bind mount ",
                                step >= 2 && step - 2 < a.n ? a.dst[step - 2] : "");
    }
  return TRUE;
}

/* ---- a pod's user namespace ----
 * The child makes the user namespace and waits while crisp writes its maps (only a process
 * outside it may map host ids); then, with every capability inside it, it makes net, ipc and
 * uts, which the new user namespace therefore owns: container root may mount sysfs and set
 * namespaced sysctls there.  The child cannot bind-mount in the host's mount namespace any
 * more, so crisp pins all four from /proc/<child>/ns and only then lets the child go. */

static int
read_result (int fd, int *out_step)
{
  int res[2] = { -EIO, -1 };
  ssize_t n;
  do
    n = read (fd, res, sizeof res);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t) sizeof res)
    return -EIO;
  *out_step = res[1];
  return res[0];
}

static void
send_result (int fd, int r, int step)
{
  int res[2] = { r, step };
  (void) !write (fd, res, sizeof res);
}

static G_GNUC_NORETURN void
userns_child (const PinArgs *a, int up, int down, pid_t parent)
{
  char go;
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid () != parent)
    _exit (1);
  if (unshare (CLONE_NEWUSER) < 0)
    send_result (up, -errno, 0), _exit (0);
  send_result (up, 0, 0);
  if (read (down, &go, 1) != 1) /* the maps are written */
    _exit (0);
  int step = 0;
  int r = pin_child ((void *) a, &step);
  send_result (up, r, step);
  while (read (down, &go, 1) < 0 && errno == EINTR) /* until crisp has pinned them */
    ;
  _exit (0);
}

static int
write_map (pid_t pid, const char *file, const char *map)
{
  char path[64];
  g_snprintf (path, sizeof path, "/proc/%d/%s", (int) pid, file);
  _cleanup_close_ int fd = open (path, O_WRONLY | O_CLOEXEC);
  /* The kernel takes a map in one write, and only once. */
  if (fd < 0 || write (fd, map, strlen (map)) != (ssize_t) strlen (map))
    return -errno;
  return 0;
}

typedef struct
{
  const PinArgs *pins;
  const char *user;
  const char *uid_map;
  const char *gid_map;
  const char *net, *ipc, *uts;
} UsernsArgs;

static gboolean
userns_pin_from (pid_t pid, const UsernsArgs *u, int up, int down, GError **error)
{
  static const char *const kinds[] = { "net", "ipc", "uts" };
  int step = -1;
  int r = read_result (up, &step);
  if (r < 0)
    return crisp_throw_errno (error, r, "creating the pod's user namespace");
  if ((r = write_map (pid, "uid_map", u->uid_map)) < 0
      || (r = write_map (pid, "gid_map", u->gid_map)) < 0)
    return crisp_throw_errno (error, r, "writing the user namespace's id maps");
  if (write (down, "g", 1) != 1)
    return crisp_throw_errno (error, errno, "waking the namespace helper");
  r = read_result (up, &step);
  /* pin_child's steps when it binds nothing itself */
  static const char *const steps[] = { "unshare", "sethostname", "bringing up lo" };
  if (r < 0)
    return crisp_throw_errno (error, r, "creating namespaces inside the pod's user namespace (%s)",
                              step >= 0 && step < 3 ? steps[step] : "helper lost");
  g_autofree char *src = g_strdup_printf ("/proc/%d/ns/user", (int) pid);
  if (mount (src, u->user, NULL, MS_BIND, NULL) < 0)
    return crisp_throw_errno (error, errno, "pinning '%s'", u->user);
  const char *dst[] = { u->net, u->ipc, u->uts };
  for (gsize k = 0; k < G_N_ELEMENTS (kinds); k++)
    {
      if (dst[k] == NULL)
        continue;
      g_free (src);
      src = g_strdup_printf ("/proc/%d/ns/%s", (int) pid, kinds[k]);
      if (mount (src, dst[k], NULL, MS_BIND, NULL) < 0)
        return crisp_throw_errno (error, errno, "pinning '%s'", dst[k]);
    }
  return TRUE;
}

static gboolean
pin_with_userns (const UsernsArgs *u, GError **error)
{
  int up[2], down[2];
  if (pipe2 (up, O_CLOEXEC) < 0)
    return crisp_throw_errno (error, errno, "pipe");
  if (pipe2 (down, O_CLOEXEC) < 0)
    {
      int e = errno;
      close (up[0]);
      close (up[1]);
      return crisp_throw_errno (error, e, "pipe");
    }
  pid_t parent = getpid ();
  pid_t pid = fork ();
  if (pid == 0)
    {
      close (up[0]);
      close (down[1]);
      userns_child (u->pins, up[1], down[0], parent);
    }
  int e = errno;
  close (up[1]);
  close (down[0]);
  gboolean ok = pid < 0 ? crisp_throw_errno (error, e, "fork")
                        : userns_pin_from (pid, u, up[0], down[1], error);
  close (up[0]);
  close (down[1]); /* the helper exits on EOF */
  if (pid > 0)
    while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
      ;
  return ok;
}

gboolean
crisp_ns_pin_userns (const char *user, const char *uid_map, const char *gid_map, const char *net,
                     const char *ipc, const char *uts, const char *hostname, GError **error)
{
  PinArgs a = { 0 };
  /* The child only unshares; the sources are crisp's business (pinned from outside). */
  add_pin (&a, CLONE_NEWNET, NULL, net);
  add_pin (&a, CLONE_NEWIPC, NULL, ipc);
  add_pin (&a, CLONE_NEWUTS, NULL, uts);
  a.hostname = uts ? hostname : NULL;
  a.n_bind = 0;
  const char *all[] = { user, net, ipc, uts };
  for (gsize i = 0; i < G_N_ELEMENTS (all); i++)
    {
      int r = all[i] ? create_pin_file (all[i]) : 0;
      if (r < 0)
        return crisp_throw_errno (error, r, "creating namespace pin '%s'", all[i]);
    }
  UsernsArgs u = { &a, user, uid_map, gid_map, net, ipc, uts };
  return pin_with_userns (&u, error);
}

int
crisp_ns_unpin (const char *path)
{
  if (path == NULL)
    return 0;
  int r = 0;
  if (umount2 (path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    r = -errno;
  if (unlink (path) < 0 && errno != ENOENT && r == 0)
    r = -errno;
  return r;
}

gboolean
crisp_ns_is_pinned (const char *path)
{
  struct statfs sfs;
  return path != NULL && statfs (path, &sfs) == 0 && sfs.f_type == NSFS_MAGIC;
}

typedef struct
{
  int net_fd;
  int ipc_fd;
  const char *const *paths;
  const char *const *values;
} SysctlArgs;

static int
sysctl_child (void *data, int *out_step)
{
  SysctlArgs *a = data;
  *out_step = -1;
  if (a->net_fd >= 0 && setns (a->net_fd, CLONE_NEWNET) < 0)
    return -errno;
  if (a->ipc_fd >= 0 && setns (a->ipc_fd, CLONE_NEWIPC) < 0)
    return -errno;
  int dfd = open ("/proc/sys", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -errno;
  for (int i = 0; a->paths[i] != NULL; i++)
    {
      *out_step = i;
      /* The value is data for this one file: nothing here splits it, so '+', '=' or a
       * newline in it can never reach another key (CVE-2022-0811). */
      int fd = openat (dfd, a->paths[i], O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0)
        return -errno;
      int r = crisp_write_all (fd, a->values[i], strlen (a->values[i]));
      close (fd);
      if (r < 0)
        return r;
    }
  return 0;
}

static int
open_ns (const char *path)
{
  if (path == NULL)
    return -1;
  return open (path, O_RDONLY | O_CLOEXEC);
}

gboolean
crisp_ns_write_sysctls (const char *net_ns, const char *ipc_ns, const char *const *paths,
                        const char *const *values, GError **error)
{
  if (paths == NULL || paths[0] == NULL)
    return TRUE;
  _cleanup_close_ int net_fd = open_ns (net_ns);
  _cleanup_close_ int ipc_fd = open_ns (ipc_ns);
  if ((net_ns && net_fd < 0) || (ipc_ns && ipc_fd < 0))
    return crisp_throw_errno (error, errno, "opening pod namespaces");
  SysctlArgs a = { net_fd, ipc_fd, paths, values };
  int step = -1;
  int r = run_in_child (sysctl_child, &a, &step);
  if (r < 0 && step >= 0)
    {
      g_autofree char *key = g_strdelimit (g_strdup (paths[step]), "/", '.');
      /* The kernel refusing a value is the caller's mistake. */
      if (r == -EINVAL || r == -ENOENT || r == -ERANGE)
        return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                            "sysctl '%s': value '%s' refused: %s", key, values[step],
                            g_strerror (-r));
      return crisp_throw_errno (error, r, "setting sysctl '%s'", key);
    }
  if (r < 0)
    return crisp_throw_errno (error, r, "entering pod namespaces for sysctls");
  return TRUE;
}
