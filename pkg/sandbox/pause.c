/* The pause process: PID 1 of a pod's shared PID namespace, started inside the pod's pinned
 * namespaces and detached (double fork) so a daemon restart does not touch it.  Identified
 * across restarts by pid and start time, so a recycled pid is never killed. */
#include "config.h"

#include "sandbox-private.h"

#include "crisp-base.h"
#include "crisp-error.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>

typedef struct
{
  int fds[4]; /* user first: the others are owned by it */
  const char *exe;
  int pid_pipe;
  int err_pipe;
} PauseArgs;

/* Runs in the intermediate child: enter the namespaces, make the PID namespace, fork PID 1. */
static void
pause_intermediate (PauseArgs *a)
{
  static const int types[4] = { CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS };
  for (int i = 0; i < 4; i++)
    if (a->fds[i] >= 0 && setns (a->fds[i], types[i]) < 0)
      _exit (10 + i);
  if (unshare (CLONE_NEWPID) < 0)
    _exit (13);
  setsid ();
  pid_t pid = fork ();
  if (pid < 0)
    _exit (14);
  if (pid == 0)
    {
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      char *const argv[] = { (char *) "crisp-pause", NULL };
      char *const envp[] = { NULL };
      execve (a->exe, argv, envp);
      int err = errno;
      (void) !write (a->err_pipe, &err, sizeof err);
      _exit (127);
    }
  (void) !write (a->pid_pipe, &pid, sizeof pid);
  _exit (0);
}

static int
open_ns (const char *path)
{
  return path ? open (path, O_RDONLY | O_CLOEXEC) : -1;
}

static gboolean
read_child_pid (int pid_fd, int err_fd, pid_t *out_pid, GError **error)
{
  pid_t pid = 0;
  int err = 0;
  ssize_t n = read (pid_fd, &pid, sizeof pid);
  if (n != (ssize_t) sizeof pid)
    return crisp_throw (error, CRISP_ERROR_INTERNAL, "starting the pause process failed");
  /* EOF on the close-on-exec pipe means exec succeeded. */
  if (read (err_fd, &err, sizeof err) == (ssize_t) sizeof err)
    return crisp_throw_errno (error, err, "executing the pause process");
  *out_pid = pid;
  return TRUE;
}

gboolean
crisp_ns_start_pause (const char *pause_path, const char *user, const char *net, const char *ipc,
                      const char *uts, const char *pid_pin, int *out_pid, guint64 *out_start_time,
                      GError **error)
{
  PauseArgs a
      = { { open_ns (user), open_ns (net), open_ns (ipc), open_ns (uts) }, pause_path, -1, -1 };
  int pp[2] = { -1, -1 }, ep[2] = { -1, -1 };
  gboolean ok = FALSE;
  pid_t pid = -1, pause_pid = 0;
  if (pipe2 (pp, O_CLOEXEC) < 0 || pipe2 (ep, O_CLOEXEC) < 0)
    crisp_throw_errno (error, errno, "pipe");
  else if ((pid = fork ()) < 0)
    crisp_throw_errno (error, errno, "fork");
  else if (pid == 0)
    {
      a.pid_pipe = pp[1];
      a.err_pipe = ep[1];
      pause_intermediate (&a);
    }
  else
    {
      close (pp[1]);
      close (ep[1]);
      pp[1] = ep[1] = -1;
      int status = 0;
      while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
      ok = read_child_pid (pp[0], ep[0], &pause_pid, error);
      if (!ok && WIFEXITED (status) && WEXITSTATUS (status) != 0)
        g_prefix_error (error, "(helper status %d) ", WEXITSTATUS (status));
    }
  for (int i = 0; i < 4; i++)
    if (a.fds[i] >= 0)
      close (a.fds[i]);
  for (int i = 0; i < 2; i++)
    {
      if (pp[i] >= 0)
        close (pp[i]);
      if (ep[i] >= 0)
        close (ep[i]);
    }
  if (!ok)
    return FALSE;
  *out_pid = pause_pid;
  *out_start_time = crisp_proc_start_time (pause_pid);
  return crisp_ns_pin_pid (pause_pid, pid_pin, error);
}

gboolean
crisp_ns_pin_pid (int pid, const char *pid_pin, GError **error)
{
  char src[64];
  snprintf (src, sizeof src, "/proc/%d/ns/pid", pid);
  int fd = open (pid_pin, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
  if (fd < 0)
    return crisp_throw_errno (error, errno, "creating namespace pin '%s'", pid_pin);
  close (fd);
  if (mount (src, pid_pin, NULL, MS_BIND, NULL) < 0)
    return crisp_throw_errno (error, errno, "pinning the PID namespace at '%s'", pid_pin);
  return TRUE;
}

int
crisp_ns_stop_pause (int pid, guint64 start_time)
{
  if (pid <= 0)
    return 0;
  _cleanup_close_ int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (pidfd < 0)
    return errno == ESRCH ? 0 : -errno;
  /* With the pidfd held the pid cannot be recycled under us: check it is still ours. */
  if (crisp_proc_start_time (pid) != start_time)
    return 0;
  if (syscall (SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
    return -errno;
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
  int n = poll (&pfd, 1, 10000);
  return n == 1 ? 0 : -ETIMEDOUT;
}
