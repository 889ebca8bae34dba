/* crisp-conmon: command line, the epoll loop and its small helpers.  The monitor's life is in
 * lifecycle.c; stdio, attach, control and OOM each have their own file. */
#include "config.h"

#include "conmon.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>

/* Set once the monitor has left crisp: its stderr is /dev/null from then on. */
static bool log_to_syslog;

void
monitor_log (const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (buf, sizeof buf - 1, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  if (n > (int) sizeof buf - 2)
    n = (int) sizeof buf - 2;
  if (log_to_syslog)
    {
      syslog (LOG_DAEMON | LOG_WARNING, "%s", buf);
      return;
    }
  buf[n++] = '\n';
  (void) !write (STDERR_FILENO, "crisp-conmon: ", 14);
  (void) !write (STDERR_FILENO, buf, (size_t) n);
}

uint64_t
monitor_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

int
monitor_watch (Monitor *m, MonitorSource *src, int fd, MonitorHandler h, uint32_t events)
{
  *src = (MonitorSource){ .fd = fd, .handler = h, .events = events, .index = src->index };
  struct epoll_event ev = { .events = events, .data.ptr = src };
  return epoll_ctl (m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int
monitor_rewatch (Monitor *m, MonitorSource *src, uint32_t events)
{
  if (src->fd < 0 || src->events == events)
    return 0;
  src->events = events;
  struct epoll_event ev = { .events = events, .data.ptr = src };
  return epoll_ctl (m->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
}

void
monitor_unwatch_close (Monitor *m, MonitorSource *src)
{
  if (src->fd < 0)
    return;
  epoll_ctl (m->epfd, EPOLL_CTL_DEL, src->fd, NULL);
  close (src->fd);
  src->fd = -1;
  src->handler = NULL;
}

/* Binds a listening unix socket in the state dir.  The path goes through the dir's
 * descriptor in /proc so a deep state dir never hits the 108-byte sun_path limit. */
int
monitor_bind_unix (Monitor *m, const char *name, int type, int backlog)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (snprintf (addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", m->state_dirfd, name)
      >= (int) sizeof addr.sun_path)
    return -ENAMETOOLONG;
  _cleanup_close_ int fd = socket (AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  unlinkat (m->state_dirfd, name, 0);
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (fd, backlog) < 0)
    return -errno;
  return take_fd (&fd);
}

ssize_t
monitor_recv_with_fd (int sock, void *buf, size_t size, int *out_fd)
{
  union
  {
    struct cmsghdr align;
    char buf[CMSG_SPACE (sizeof (int))];
  } control;
  struct iovec iov = { buf, size };
  struct msghdr mh = { .msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf };
  ssize_t n;
  *out_fd = -1;
  while ((n = recvmsg (sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
    ;
  if (n < 0)
    return -errno;
  struct cmsghdr *c = CMSG_FIRSTHDR (&mh);
  if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
      && c->cmsg_len == CMSG_LEN (sizeof (int)))
    memcpy (out_fd, CMSG_DATA (c), sizeof (int));
  return n;
}

static uint64_t
next_deadline (Monitor *m)
{
  uint64_t d = ctl_next_deadline (m);
  if (m->partial_deadline_ns && (!d || m->partial_deadline_ns < d))
    d = m->partial_deadline_ns;
  if (m->drain_deadline_ns && (!d || m->drain_deadline_ns < d))
    d = m->drain_deadline_ns;
  if (m->oom_recheck_ns && (!d || m->oom_recheck_ns < d))
    d = m->oom_recheck_ns;
  return d;
}

static int
monitor_run (Monitor *m)
{
  struct epoll_event ev[16];
  while (m->phase != PHASE_DONE)
    {
      uint64_t deadline = next_deadline (m), now = monitor_now_ns ();
      int timeout = -1;
      if (deadline)
        timeout = deadline <= now ? 0 : (int) ((deadline - now + 999999) / 1000000);
      int n = epoll_wait (m->epfd, ev, (int) CRISP_N_ELEMENTS (ev), timeout);
      if (n < 0 && errno != EINTR)
        return -errno;
      for (int i = 0; i < n; i++)
        {
          MonitorSource *src = ev[i].data.ptr;
          if (src->handler != NULL)
            src->handler (m, src, ev[i].events);
        }
      lifecycle_tick (m, monitor_now_ns ());
    }
  return 0;
}

static void
usage (void)
{
  static const char text[]
      = "usage: crisp-conmon --id ID --bundle DIR --state-dir DIR --runtime PATH\n"
        "  [--runtime-root DIR] [--log-path FILE] [--log-max-line N] [--terminal] [--stdin]\n"
        "  [--stdin-once] [--no-delete] [--restore DIR --restore-work DIR] --sync-fd N\n"
        "   or: crisp-conmon --standby --sync-fd N [-- ROOM]\n"
        "Runs and watches one container for crisp; see docs/monitor-protocol.md.\n";
  (void) !write (STDERR_FILENO, text, sizeof text - 1);
}

static int
parse_uint (const char *s, unsigned long max, unsigned long *out)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul (s, &end, 10);
  if (errno || end == s || *end || v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

/* standby NULL: the options of an ASSIGN, which may not name the sync socket again. */
static int
parse_args (MonitorOptions *o, int argc, char **argv, bool *standby)
{
  enum
  {
    OPT_ID = 256,
    OPT_BUNDLE,
    OPT_STATE,
    OPT_RUNTIME,
    OPT_ROOT,
    OPT_LOG,
    OPT_MAXLINE,
    OPT_TTY,
    OPT_STDIN,
    OPT_ONCE,
    OPT_NODEL,
    OPT_RESTORE,
    OPT_RESTORE_WORK,
    OPT_SYNC,
    OPT_STANDBY,
    OPT_HELP
  };
  static const struct option opts[] = {
    { "id", 1, NULL, OPT_ID },
    { "bundle", 1, NULL, OPT_BUNDLE },
    { "state-dir", 1, NULL, OPT_STATE },
    { "runtime", 1, NULL, OPT_RUNTIME },
    { "runtime-root", 1, NULL, OPT_ROOT },
    { "log-path", 1, NULL, OPT_LOG },
    { "log-max-line", 1, NULL, OPT_MAXLINE },
    { "terminal", 0, NULL, OPT_TTY },
    { "stdin", 0, NULL, OPT_STDIN },
    { "stdin-once", 0, NULL, OPT_ONCE },
    { "no-delete", 0, NULL, OPT_NODEL },
    { "restore", 1, NULL, OPT_RESTORE },
    { "restore-work", 1, NULL, OPT_RESTORE_WORK },
    { "sync-fd", 1, NULL, OPT_SYNC },
    { "standby", 0, NULL, OPT_STANDBY },
    { "help", 0, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
  };
  unsigned long v;
  opterr = 0;
  for (int c; (c = getopt_long (argc, argv, "", opts, NULL)) != -1;)
    switch (c)
      {
      case OPT_ID:
        o->id = optarg;
        break;
      case OPT_BUNDLE:
        o->bundle = optarg;
        break;
      case OPT_STATE:
        o->state_dir = optarg;
        break;
      case OPT_RUNTIME:
        o->runtime = optarg;
        break;
      case OPT_ROOT:
        o->runtime_root = optarg;
        break;
      case OPT_LOG:
        o->log_path = optarg;
        break;
      case OPT_TTY:
        o->terminal = true;
        break;
      case OPT_STDIN:
        o->stdin_open = true;
        break;
      case OPT_ONCE:
        o->stdin_once = true;
        break;
      case OPT_NODEL:
        o->no_delete = true;
        break;
      case OPT_RESTORE:
        o->restore_images = optarg;
        break;
      case OPT_RESTORE_WORK:
        o->restore_work = optarg;
        break;
      case OPT_MAXLINE:
        if (parse_uint (optarg, 1u << 24, &v) < 0 || v < 64)
          return -EINVAL;
        o->log_max_line = v;
        break;
      case OPT_SYNC:
        if (standby == NULL || parse_uint (optarg, INT_MAX, &v) < 0 || v < 3)
          return -EINVAL;
        o->sync_fd = (int) v;
        break;
      case OPT_STANDBY:
        if (standby == NULL)
          return -EINVAL;
        *standby = true;
        break;
      default:
        return -EINVAL;
      }
  /* A standby monitor learns everything else from its ASSIGN; its one operand is room for
   * the command line it shows once assigned. */
  if (standby != NULL && *standby)
    return argc - optind <= 1 && o->sync_fd >= 0 && !o->id && !o->bundle && !o->state_dir
                   && !o->runtime && !o->runtime_root && !o->log_path && !o->restore_images
                   && !o->restore_work && !o->log_max_line && !o->terminal && !o->stdin_open
                   && !o->stdin_once && !o->no_delete
               ? 0
               : -EINVAL;
  if (optind != argc || !o->id || !o->bundle || !o->state_dir || !o->runtime || o->sync_fd < 0
      || !o->restore_images != !o->restore_work)
    return -EINVAL;
  return 0;
}

/* Closes every inherited descriptor but 0-2 and the sync socket. */
static void
close_inherited (int keep)
{
  if (keep > 3)
    close_range (3, (unsigned) keep - 1, 0);
  close_range ((unsigned) keep + 1, ~0u, 0);
  if (keep < 0)
    close_range (3, ~0u, 0);
}

/* Shows the assigned options in place of the standby's own (as `ps` and crisp's search for a
 * lost container's monitor read them): written over the command line's memory, which the
 * standby's operand made room for; whole options only, NULs after them. */
static void
show_options (int argc, char **argv, const char *opts, size_t len)
{
  if (argc < 2)
    return;
  char *start = argv[1], *end = argv[argc - 1] + strlen (argv[argc - 1]);
  size_t room = (size_t) (end - start), n = 0;
  while (n < len && n + strlen (opts + n) < room)
    n += strlen (opts + n) + 1;
  memcpy (start, opts, n);
  memset (start + n, 0, room - n);
}

/* A standby monitor, detached ahead of need: tells crisp its pid, then waits for the options
 * that make it one container's monitor.  1: crisp let it go (closed the socket, or is gone). */
static int
standby_wait (Monitor *m, int main_argc, char **main_argv)
{
  /* Static: the options point into it for the rest of the monitor's life. */
  static char packet[CRISP_MONITOR_MSG_MAX];
  static char *argv[40];
  if (lifecycle_sync_send (m, CRISP_MONITOR_MSG_STANDBY, (int32_t) getpid (),
                           CRISP_MONITOR_PROTOCOL_VERSION, NULL, 0)
      < 0)
    return 1;
  CrispMonitorMsg msg;
  ssize_t n;
  while ((n = recv (m->opt.sync_fd, packet, sizeof packet, 0)) < 0 && errno == EINTR)
    ;
  if (n <= 0)
    return 1;
  if ((size_t) n <= sizeof msg)
    return -EBADMSG;
  memcpy (&msg, packet, sizeof msg);
  if (msg.type != CRISP_MONITOR_MSG_ASSIGN || packet[n - 1] != '\0')
    return -EBADMSG;
  int argc = 0;
  argv[argc++] = (char *) "crisp-conmon";
  for (char *p = packet + sizeof msg; p < packet + n; p += strlen (p) + 1)
    {
      if (argc == (int) CRISP_N_ELEMENTS (argv) - 1)
        return -E2BIG;
      argv[argc++] = p;
    }
  argv[argc] = NULL;
  optind = 0; /* getopt starts over */
  int r = parse_args (&m->opt, argc, argv, NULL);
  if (r == 0)
    show_options (main_argc, main_argv, packet + sizeof msg, (size_t) n - sizeof msg);
  return r;
}

int
main (int argc, char **argv)
{
  /* Static, not on the stack: its buffers are zero pages until used, where initialising a
   * local would dirty all of them. */
  static Monitor m;
  m.opt.sync_fd = m.opt.runtime_fd = m.epfd = m.state_dirfd = m.oom_cgroup_fd = -1;
  bool standby = false;
  if (parse_args (&m.opt, argc, argv, &standby) < 0)
    {
      usage ();
      return 2;
    }
  close_inherited (m.opt.sync_fd);
  /* Inherited without close-on-exec (that is how it got here): the runtime must not get it,
   * or `runc create` hands it on to its init, which holds it until the container starts. */
  if (m.opt.sync_fd >= 0 && fcntl (m.opt.sync_fd, F_SETFD, FD_CLOEXEC) < 0)
    return 1;
  int r = lifecycle_daemonize (&m);
  if (r != 0)
    return r < 0 ? 1 : 0; /* > 0: a parent whose part is done */
  log_to_syslog = true;
  openlog ("crisp-conmon", LOG_PID, LOG_DAEMON);
  if (standby && (r = standby_wait (&m, argc, argv)) != 0)
    {
      if (r > 0)
        return 0;
      char why[96];
      int n = snprintf (why, sizeof why, "crisp-conmon: a standby monitor's options: %s",
                        strerror (-r));
      lifecycle_sync_send (&m, CRISP_MONITOR_MSG_FAILED, r, 0, why, (size_t) n);
      monitor_log ("%s", why);
      return 1;
    }
  r = lifecycle_start (&m);
  if (r == 0)
    r = monitor_run (&m);
  if (r < 0)
    monitor_log ("container '%s': %s", m.opt.id, strerror (-r));
  return r < 0 ? 1 : m.exit_code;
}
