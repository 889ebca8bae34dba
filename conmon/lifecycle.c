/* The monitor's life: leaving crisp (its own session, a fork, subreaper), the start handshake,
 * `runtime create`, reaping, the exit file, `runtime delete`. */
#include "config.h"

#include "conmon.h"

#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define DRAIN_TIMEOUT_NS (2ull * 1000000000u)
#define ERROR_MAX 2048

extern char **environ;

int
lifecycle_daemonize (Monitor *m)
{
  /* The monitor must be neither crisp's child nor a session leader (no terminal may ever
   * become its controlling one).  The first process makes a session of its own and forks
   * once: its child is the monitor.  A first process that leads its process group without
   * leading a session (a shell's job) cannot: its child makes the session and forks again. */
  bool leader = setsid () >= 0 || getsid (0) == getpid ();
  pid_t p = fork ();
  if (p < 0)
    return -errno;
  if (p > 0 && leader)
    return 1; /* the monitor exists: when crisp's waitpid returns, its HELLO is on the way */
  if (p > 0)
    {
      /* Waits for the middle one, for the same reason. */
      int st;
      while (waitpid (p, &st, 0) < 0)
        if (errno != EINTR)
          return -errno;
      return WIFEXITED (st) && WEXITSTATUS (st) == 0 ? 1 : -ECHILD;
    }
  if (!leader)
    {
      if (setsid () < 0)
        _exit (1);
      p = fork ();
      if (p != 0)
        _exit (p < 0 ? 1 : 0);
    }
  /* Orphans of the container (its init's reparented children, runc's helpers) come to us. */
  prctl (PR_SET_CHILD_SUBREAPER, 1);
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3 && null >= 0; fd++)
    dup2 (null, fd); /* dup2 clears O_CLOEXEC on 0-2: the runtime gets them when unmapped */
  if (null > 2)
    close (null);
  (void) !chdir ("/");
  /* A container OOM must not take its monitor.  Without CAP_SYS_RESOURCE lowering the score
   * fails with EACCES; the monitor then runs at the default, which is not an error. */
  int fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      (void) !write (fd, "-1000", 5);
      close (fd);
    }
  return 0;
}

int
lifecycle_sync_send (Monitor *m, uint32_t type, int32_t arg0, int32_t arg1, const char *text,
                     size_t len)
{
  if (m->opt.sync_fd < 0)
    return -EPIPE;
  CrispMonitorMsg msg = { CRISP_MONITOR_PROTOCOL_VERSION, type, arg0, arg1 };
  struct iovec iov[2] = { { &msg, sizeof msg }, { (void *) text, text ? len : 0 } };
  struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
  return sendmsg (m->opt.sync_fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void
sync_close (Monitor *m)
{
  if (m->opt.sync_fd >= 0)
    close (m->opt.sync_fd);
  m->opt.sync_fd = -1;
}

/* Blocks until crisp says GO; crisp going away first means nothing is to be created.  GO
 * may carry one descriptor, the runtime's sealed copy; one on any other packet is closed. */
static int
sync_wait_go (Monitor *m)
{
  CrispMonitorMsg msg;
  for (;;)
    {
      int fd;
      ssize_t n = monitor_recv_with_fd (m->opt.sync_fd, &msg, sizeof msg, &fd);
      if (n < 0)
        return (int) n;
      if (n == 0)
        return -ECONNRESET;
      bool go = (size_t) n >= sizeof msg && msg.type == CRISP_MONITOR_MSG_GO;
      if (go && fd >= 0 && m->opt.runtime_fd < 0)
        m->opt.runtime_fd = fd;
      else if (fd >= 0)
        close (fd);
      if (go)
        return 0;
    }
}

int
lifecycle_spawn_runtime (Monitor *m, const char *const *argv, const int fds[3], pid_t *out_pid)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset (&none);
  sigfillset (&all);
  posix_spawn_file_actions_init (&fa);
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0)
      posix_spawn_file_actions_adddup2 (&fa, fds[i], i);
  posix_spawnattr_init (&attr);
  /* The monitor blocks SIGCHLD for its signalfd and ignores SIGPIPE; the runtime and the
   * container it starts must not inherit either. */
  posix_spawnattr_setsigmask (&attr, &none);
  posix_spawnattr_setsigdefault (&attr, &all);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  /* The sealed copy is run through its /proc name (resolved before the exec closes it); should
   * that fail, the runtime's path serves as before.  argv[0] stays the path either way. */
  char copy[40];
  int r = -1;
  if (m->opt.runtime_fd >= 0)
    {
      snprintf (copy, sizeof copy, "/proc/self/fd/%d", m->opt.runtime_fd);
      r = posix_spawn (out_pid, copy, &fa, &attr, (char *const *) argv, environ);
    }
  if (r != 0)
    r = posix_spawn (out_pid, m->opt.runtime, &fa, &attr, (char *const *) argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&attr);
  return -r;
}

/* Fills argv with `runtime [--root R] --log L --log-format json`; returns the count. */
static int
runtime_argv_prefix (Monitor *m, const char **argv, char *log_path, size_t log_size)
{
  int n = 0;
  argv[n++] = m->opt.runtime;
  if (m->opt.runtime_root)
    {
      argv[n++] = "--root";
      argv[n++] = m->opt.runtime_root;
    }
  snprintf (log_path, log_size, "%s/%s", m->opt.state_dir, CRISP_MONITOR_FILE_RUNTIME_LOG);
  argv[n++] = "--log";
  argv[n++] = log_path;
  argv[n++] = "--log-format";
  argv[n++] = "json";
  return n;
}

static int
spawn_create (Monitor *m)
{
  char log_path[PATH_MAX], pid_path[PATH_MAX], console[64];
  const char *argv[26];
  int n = runtime_argv_prefix (m, argv, log_path, sizeof log_path);
  if (snprintf (pid_path, sizeof pid_path, "%s/%s", m->opt.state_dir, CRISP_MONITOR_FILE_PID)
      >= (int) sizeof pid_path)
    return -ENAMETOOLONG;
  /* A restore is a create whose process comes from CRIU's images, already running when the
   * runtime returns; pid file, stdio and exit flow the same way. */
  if (m->opt.restore_images)
    {
      argv[n++] = "restore";
      argv[n++] = "--detach";
      argv[n++] = "--image-path";
      argv[n++] = m->opt.restore_images;
      argv[n++] = "--work-path";
      argv[n++] = m->opt.restore_work;
    }
  else
    argv[n++] = "create";
  argv[n++] = "--bundle";
  argv[n++] = m->opt.bundle;
  argv[n++] = "--pid-file";
  argv[n++] = pid_path;
  if (m->opt.terminal)
    {
      /* The runtime resolves our state dir through our own descriptor table: short, whatever
       * the state dir's length. */
      snprintf (console, sizeof console, "/proc/%d/fd/%d/%s", (int) getpid (), m->state_dirfd,
                CRISP_MONITOR_SOCKET_CONSOLE);
      argv[n++] = "--console-socket";
      argv[n++] = console;
    }
  argv[n++] = m->opt.id;
  argv[n] = NULL;
  int r = lifecycle_spawn_runtime (m, argv, m->child_fds, &m->create_pid);
  stdio_runtime_started (m);
  return r;
}

static int
setup_signals (Monitor *m)
{
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  /* Signals aimed at crisp's group do not reach us after setsid; one sent to us on purpose is
   * noted and ignored: the container, not a signal, decides when the monitor ends. */
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGHUP);
  sigaddset (&set, SIGQUIT);
  if (sigprocmask (SIG_BLOCK, &set, NULL) < 0)
    return -errno;
  signal (SIGPIPE, SIG_IGN);
  int fd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0)
    return -errno;
  return monitor_watch (m, &m->signal_src, fd, lifecycle_on_signal, EPOLLIN);
}

static int
setup (Monitor *m)
{
  m->state_dirfd = open (m->opt.state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (m->state_dirfd < 0)
    return -errno;
  m->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (m->epfd < 0)
    return -errno;
  int r = setup_signals (m);
  if (r == 0)
    r = stdio_setup (m);
  if (r == 0)
    r = attach_setup (m);
  if (r == 0)
    r = ctl_setup (m);
  return r;
}

int
lifecycle_start (Monitor *m)
{
  int r = lifecycle_sync_send (m, CRISP_MONITOR_MSG_HELLO, (int32_t) getpid (),
                               CRISP_MONITOR_PROTOCOL_VERSION, NULL, 0);
  if (r == 0)
    r = sync_wait_go (m);
  if (r < 0)
    return r; /* crisp is gone: nothing was created, nothing to report to */
  r = setup (m);
  if (r == 0)
    r = spawn_create (m);
  if (r < 0)
    {
      char msg[128];
      int n = snprintf (msg, sizeof msg, "crisp-conmon: setting up: %s", strerror (-r));
      lifecycle_sync_send (m, CRISP_MONITOR_MSG_FAILED, r, 0, msg, (size_t) n);
      return r;
    }
  m->phase = PHASE_WAIT_CREATE;
  return 0;
}

/* Pulls the last error message out of the runtime's json log ("msg":"..."), unescaping the
 * common escapes; returns its length. */
static size_t
runtime_error_message (Monitor *m, char *out, size_t size)
{
  _cleanup_free_ char *buf = NULL;
  size_t len = 0, n = 0;
  if (crisp_read_all_at (m->state_dirfd, CRISP_MONITOR_FILE_RUNTIME_LOG, 1 << 20, &buf, &len) < 0)
    return 0;
  const char *p = buf, *msg = NULL;
  while ((p = strstr (p, "\"msg\":")) != NULL)
    {
      p += 6;
      p += strspn (p, " ");
      if (*p == '"')
        msg = ++p;
    }
  if (msg == NULL)
    return 0;
  for (; *msg && *msg != '"' && n + 1 < size; msg++)
    {
      char c = *msg;
      if (c == '\\' && msg[1])
        {
          c = *++msg;
          c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        }
      out[n++] = c;
    }
  return n;
}

static void
write_info (Monitor *m)
{
  char buf[128];
  int n = snprintf (buf, sizeof buf, "version=%d\npid=%d\ncontainer_pid=%d\n",
                    CRISP_MONITOR_PROTOCOL_VERSION, (int) getpid (), (int) m->container_pid);
  /* Read by a crisp restarted while this monitor lives: a reboot ends both, so no fsync. */
  crisp_write_file_replace_at (m->state_dirfd, CRISP_MONITOR_FILE_INFO, buf, (size_t) n, 0600);
}

static void unlink_sockets (Monitor *m);

static void
create_failed (Monitor *m, int status)
{
  char msg[ERROR_MAX];
  size_t n = runtime_error_message (m, msg, sizeof msg);
  int code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
  if (n == 0)
    n = (size_t) snprintf (msg, sizeof msg, "%s %s exited with status %d", m->opt.runtime,
                           m->opt.restore_images ? "restore" : "create", code);
  lifecycle_sync_send (m, CRISP_MONITOR_MSG_FAILED, code, 0, msg, n);
  sync_close (m);
  unlink_sockets (m);
  m->exit_code = 1;
  m->phase = PHASE_DONE;
}

static void on_container_exit (Monitor *m, int status);

static void
on_create_exit (Monitor *m, int status)
{
  m->create_pid = 0;
  _cleanup_free_ char *buf = NULL;
  unsigned long pid = 0;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0
      || crisp_read_all_at (m->state_dirfd, CRISP_MONITOR_FILE_PID, 64, &buf, NULL) < 0
      || (pid = strtoul (buf, NULL, 10)) == 0)
    return create_failed (m, status);
  m->container_pid = (pid_t) pid;
  if (m->opt.terminal && m->out[0].fd < 0)
    stdio_take_console (m, -1); /* the runtime sent the master and left before we looked */
  write_info (m);
  /* crisp's CreateContainer answers on CREATED; the OOM watch is ready before this loop
   * handles anything else, the container's exit included. */
  lifecycle_sync_send (m, CRISP_MONITOR_MSG_CREATED, (int32_t) pid, 0, NULL, 0);
  sync_close (m);
  oom_setup (m);
  m->phase = PHASE_RUNNING;
  for (size_t i = 0; i < CRISP_N_ELEMENTS (m->early_reaped); i++)
    if (m->early_reaped[i].pid == m->container_pid)
      on_container_exit (m, m->early_reaped[i].status);
}

static void
on_container_exit (Monitor *m, int status)
{
  m->container_status = status;
  clock_gettime (CLOCK_REALTIME, &m->exited_at);
  m->phase = PHASE_DRAINING;
  m->drain_deadline_ns = monitor_now_ns () + DRAIN_TIMEOUT_NS;
  stdio_drain_now (m);
}

static void
on_child_exit (Monitor *m, pid_t pid, int status)
{
  if (pid == m->create_pid)
    on_create_exit (m, status);
  else if (pid == m->container_pid && m->phase == PHASE_RUNNING)
    on_container_exit (m, status);
  else if (pid == m->delete_pid)
    {
      m->delete_pid = 0;
      if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        monitor_log ("container '%s': runtime delete failed, ignoring", m->opt.id);
      m->phase = PHASE_DONE;
      unlink_sockets (m);
    }
  else if (!ctl_on_child_exit (m, pid, status) && m->phase == PHASE_WAIT_CREATE)
    {
      unsigned i = m->early_next++ % CRISP_N_ELEMENTS (m->early_reaped);
      m->early_reaped[i].pid = pid;
      m->early_reaped[i].status = status;
    }
}

void
lifecycle_on_signal (Monitor *m, MonitorSource *src, uint32_t events)
{
  struct signalfd_siginfo si;
  while (read (src->fd, &si, sizeof si) == (ssize_t) sizeof si)
    if (si.ssi_signo != SIGCHLD)
      monitor_log ("container '%s': got signal %u, ignoring", m->opt.id, si.ssi_signo);
  int status;
  pid_t pid;
  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    on_child_exit (m, pid, status);
}

static void
write_exit_file (Monitor *m)
{
  int st = m->container_status;
  int code = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
  char ts[CRISP_CRI_LOG_TIME_LEN + 1], buf[256];
  crisp_cri_log_format_time (ts, &m->exited_at);
  int n = snprintf (buf, sizeof buf,
                    "version=%d\nstatus=%d\nsignal=%d\noom_killed=%d\nexited_at_ns=%lld\n"
                    "exited_at=%s\n",
                    CRISP_MONITOR_PROTOCOL_VERSION, code, WIFSIGNALED (st) ? WTERMSIG (st) : 0,
                    m->oom_killed ? 1 : 0,
                    (long long) m->exited_at.tv_sec * 1000000000ll + m->exited_at.tv_nsec, ts);
  int r
      = crisp_write_file_atomic_at (m->state_dirfd, CRISP_MONITOR_FILE_EXIT, buf, (size_t) n, 0600);
  if (r < 0)
    monitor_log ("container '%s': writing exit file: %s", m->opt.id, strerror (-r));
}

static void
spawn_delete (Monitor *m)
{
  char log_path[PATH_MAX];
  const char *argv[16];
  int n = runtime_argv_prefix (m, argv, log_path, sizeof log_path);
  argv[n++] = "delete";
  argv[n++] = "--force";
  argv[n++] = m->opt.id;
  argv[n] = NULL;
  int fds[3] = { -1, -1, -1 };
  int r = lifecycle_spawn_runtime (m, argv, fds, &m->delete_pid);
  if (r < 0)
    {
      monitor_log ("container '%s': runtime delete: %s", m->opt.id, strerror (-r));
      m->phase = PHASE_DONE;
      unlink_sockets (m);
    }
}

static void
unlink_sockets (Monitor *m)
{
  unlinkat (m->state_dirfd, CRISP_MONITOR_SOCKET_ATTACH, 0);
  unlinkat (m->state_dirfd, CRISP_MONITOR_SOCKET_CTL, 0);
}

/* The container is gone and its output drained: flush, record, delete. */
static void
finish_exit (Monitor *m)
{
  m->drain_deadline_ns = 0;
  stdio_flush_partial (m);
  oom_check (m);
  write_exit_file (m);
  attach_close_all (m);
  if (m->opt.no_delete)
    {
      m->phase = PHASE_DONE;
      unlink_sockets (m);
      return;
    }
  m->phase = PHASE_DELETING;
  spawn_delete (m);
}

void
lifecycle_tick (Monitor *m, uint64_t now)
{
  if (m->partial_deadline_ns && now >= m->partial_deadline_ns)
    stdio_flush_partial (m);
  ctl_tick (m, now);
  oom_tick (m, now);
  if (m->phase == PHASE_DRAINING && (stdio_drained (m) || now >= m->drain_deadline_ns))
    finish_exit (m);
}
