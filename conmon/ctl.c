/* The control channel: resize, log reopen and exec requests from crisp on a SOCK_SEQPACKET
 * socket.  An exec runs `runtime exec` and streams its output back as it comes, bounded, with a
 * timeout, so an ExecSync probe costs no extra monitor process. */
#include "config.h"

#include "conmon.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define EXEC_PACKET (sizeof (CrispMonitorMsg) + CRISP_MONITOR_OUTPUT_CHUNK)

static void on_exec_output (Monitor *m, MonitorSource *src, uint32_t events);

static int
reply (CtlClient *c, uint32_t type, int32_t arg0, int32_t arg1)
{
  CrispMonitorMsg msg = { CRISP_MONITOR_PROTOCOL_VERSION, type, arg0, arg1 };
  return send (c->src.fd, &msg, sizeof msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Kills the exec'd process (its pid is in the runtime's pid file) and the runtime. */
static void
exec_kill (Monitor *m, CtlClient *c)
{
  char name[32];
  _cleanup_free_ char *buf = NULL;
  snprintf (name, sizeof name, "exec-%d.pid", c->seq);
  if (crisp_read_all_at (m->state_dirfd, name, 64, &buf, NULL) == 0)
    {
      long pid = strtol (buf, NULL, 10);
      if (pid > 1)
        kill ((pid_t) pid, SIGKILL);
    }
  if (c->exec_pid > 0 && !c->exec_reaped)
    kill (c->direct ? -c->exec_pid : c->exec_pid, SIGKILL);
}

static void
exec_reset (Monitor *m, CtlClient *c)
{
  char name[32];
  snprintf (name, sizeof name, "exec-%d.pid", c->seq);
  unlinkat (m->state_dirfd, name, 0);
  for (int i = 0; i < 2; i++)
    monitor_unwatch_close (m, &c->out[i]);
  c->exec_pid = 0;
  c->exec_reaped = c->timed_out = c->truncated = c->direct = false;
  c->deadline_ns = 0;
  c->pending_len = 0;
}

/* With every slot taken, connections wait in the listen backlog (crisp's connect has a
 * timeout) instead of being accepted and closed. */
static void
listen_pause (Monitor *m, bool paused)
{
  monitor_rewatch (m, &m->ctl_src, paused ? 0 : EPOLLIN);
}

static void
client_drop (Monitor *m, CtlClient *c)
{
  if (c->exec_pid > 0)
    exec_kill (m, c);
  exec_reset (m, c);
  monitor_unwatch_close (m, &c->src);
  free (c->pending);
  c->pending = NULL;
  listen_pause (m, false);
}

/* Output paused for a client that cannot take more: the pipes leave the epoll set (a closed
 * pipe would otherwise report HUP forever) and the client is watched for room. */
static void
exec_pause (Monitor *m, CtlClient *c, bool paused)
{
  for (int i = 0; i < 2; i++)
    if (c->out[i].fd >= 0)
      {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->out[i] };
        epoll_ctl (m->epfd, paused ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, c->out[i].fd, &ev);
      }
  monitor_rewatch (m, &c->src, paused ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* Sends one packet, or keeps it when the socket is full: the client is then paused until the
 * socket has room (output packets and the final EXEC_EXIT alike). */
static void
exec_send (Monitor *m, CtlClient *c, const void *pkt, size_t len)
{
  if (send (c->src.fd, pkt, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
    return;
  if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
    return client_drop (m, c);
  if (c->pending == NULL && (c->pending = malloc (EXEC_PACKET)) == NULL)
    return client_drop (m, c);
  memcpy (c->pending, pkt, len);
  c->pending_len = len;
  exec_pause (m, c, true);
}

static void
exec_maybe_finish (Monitor *m, CtlClient *c)
{
  if (!c->exec_reaped || c->pending_len > 0 || c->out[0].fd >= 0 || c->out[1].fd >= 0)
    return;
  int st = c->exec_status;
  uint32_t flags = (c->timed_out ? CRISP_MONITOR_EXEC_FLAG_TIMED_OUT : 0)
                   | (c->truncated ? CRISP_MONITOR_EXEC_FLAG_TRUNCATED : 0);
  CrispMonitorMsg msg = { CRISP_MONITOR_PROTOCOL_VERSION, CRISP_MONITOR_MSG_EXEC_EXIT,
                          WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st),
                          (int32_t) flags };
  exec_reset (m, c);
  /* The last output may just have filled the socket: the exit waits for room like it. */
  exec_send (m, c, &msg, sizeof msg);
}

/* Reads one chunk of an exec's output: -1 at its end, 0 when nothing came. */
static int
exec_read (Monitor *m, CtlClient *c, int stream)
{
  MonitorSource *src = &c->out[stream];
  char *pkt = m->io_buf;
  ssize_t n = read (src->fd, pkt + sizeof (CrispMonitorMsg), CRISP_MONITOR_OUTPUT_CHUNK);
  if (n < 0 && errno == EINTR)
    return 0;
  /* Once the runtime is reaped, an empty pipe is the end even if a background process of the
   * exec still holds it open. */
  if (n == 0 || (n < 0 && (errno != EAGAIN || c->exec_reaped)))
    {
      monitor_unwatch_close (m, src);
      return -1;
    }
  if (n < 0)
    return 0;
  uint32_t room = c->output_max - c->sent[stream];
  if ((uint32_t) n > room)
    c->truncated = true, n = (ssize_t) room;
  if (n == 0)
    return 1; /* over the bound: read and dropped */
  c->sent[stream] += (uint32_t) n;
  CrispMonitorMsg msg
      = { CRISP_MONITOR_PROTOCOL_VERSION, CRISP_MONITOR_MSG_EXEC_OUTPUT, stream + 1, 0 };
  memcpy (pkt, &msg, sizeof msg);
  exec_send (m, c, pkt, sizeof msg + (size_t) n);
  return 1;
}

static void
exec_drain (Monitor *m, CtlClient *c)
{
  /* Bounded: a process that keeps writing is served again by the loop. */
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 256 && c->src.fd >= 0 && c->pending_len == 0 && c->out[i].fd >= 0; k++)
      if (exec_read (m, c, i) <= 0 && !c->exec_reaped)
        break;
  if (c->src.fd >= 0)
    exec_maybe_finish (m, c);
}

static void
on_exec_output (Monitor *m, MonitorSource *src, uint32_t events)
{
  CtlClient *c = &m->ctl[src->index / 2];
  /* A pipe's event from the same wakeup as the send that paused the client: its data waits
   * (one packet is kept at most). */
  if (c->pending_len > 0)
    return;
  exec_read (m, c, src->index % 2);
  if (c->src.fd >= 0)
    exec_maybe_finish (m, c);
}

/* The runtime's exec command line, the one way anything is run in the container (ExecSync
 * and streaming sessions alike): `runtime [--root R] exec --pid-file P [--env E]... ID args...`.
 * `args` and `env` are argc and envc consecutive NUL-terminated strings.  malloc'd, pointing
 * into the arguments. */
const char **
ctl_exec_argv (Monitor *m, const char *pidpath, const char *args, uint32_t argc, const char *env,
               uint32_t envc)
{
  const char **argv = calloc (16 + 2 * (size_t) envc + argc, sizeof *argv);
  if (argv == NULL)
    return NULL;
  int n = 0;
  argv[n++] = m->opt.runtime;
  if (m->opt.runtime_root)
    argv[n++] = "--root", argv[n++] = m->opt.runtime_root;
  argv[n++] = "exec";
  argv[n++] = "--pid-file";
  argv[n++] = pidpath;
  for (uint32_t i = 0; i < envc; i++, env += strlen (env) + 1)
    argv[n++] = "--env", argv[n++] = env;
  argv[n++] = m->opt.id; /* runc and crun stop parsing options after the id */
  for (uint32_t i = 0; i < argc; i++, args += strlen (args) + 1)
    argv[n++] = args;
  argv[n] = NULL;
  return argv;
}

/* true when buf[0..len) is exactly n NUL-terminated strings. */
bool
ctl_strings_ok (const char *buf, size_t len, size_t n)
{
  size_t nstr = 0;
  for (size_t i = 0; i < len; i++)
    nstr += buf[i] == '\0';
  return nstr == n && (len == 0 || buf[len - 1] == '\0');
}

/* Checks the EXEC payload and builds the runtime's argv (malloc'd, pointing into buf). */
static int
exec_build_argv (Monitor *m, const char *pidpath, const char *buf, size_t len,
                 const CrispMonitorExecRequest *req, const char ***out_argv)
{
  if (req->argc == 0 || req->flags != 0
      || !ctl_strings_ok (buf, len, (size_t) req->argc + req->envc))
    return -EINVAL;
  const char *env = buf;
  for (uint32_t i = 0; i < req->argc; i++)
    env += strlen (env) + 1;
  *out_argv = ctl_exec_argv (m, pidpath, buf, req->argc, env, req->envc);
  return *out_argv ? 0 : -ENOMEM;
}

static int
exec_start (Monitor *m, CtlClient *c, const char *payload, size_t len)
{
  CrispMonitorExecRequest req = { 0 };
  if (len < sizeof req)
    return -EINVAL;
  memcpy (&req, payload, sizeof req);
  if (m->phase != PHASE_RUNNING)
    return -ESRCH;
  c->seq = ++m->exec_seq;
  char pidpath[PATH_MAX];
  if (snprintf (pidpath, sizeof pidpath, "%s/exec-%d.pid", m->opt.state_dir, c->seq)
      >= (int) sizeof pidpath)
    return -ENAMETOOLONG;
  const char **argv = NULL;
  const char *strings = payload + sizeof req;
  int r = exec_build_argv (m, pidpath, strings, len - sizeof req, &req, &argv);
  if (r < 0)
    return r;
  int p[2][2] = { { -1, -1 }, { -1, -1 } };
  if (pipe2 (p[0], O_CLOEXEC) < 0 || pipe2 (p[1], O_CLOEXEC) < 0)
    r = -errno;
  int fds[3] = { -1, p[0][1], p[1][1] };
  c->direct = exec_direct_available (m);
  /* the request: argc strings, then envc */
  const char *env = strings;
  for (uint32_t i = 0; i < req.argc; i++)
    env += strlen (env) + 1;
  if (r == 0 && c->direct)
    r = exec_direct_spawn (m, strings, req.argc, env, req.envc, fds, &c->exec_pid);
  else if (r == 0)
    r = lifecycle_spawn_runtime (m, argv, fds, &c->exec_pid);
  free (argv);
  for (int i = 0; i < 2; i++)
    {
      if (p[i][1] >= 0)
        close (p[i][1]);
      if (r < 0 && p[i][0] >= 0)
        close (p[i][0]);
      if (r < 0)
        continue;
      crisp_fd_set_nonblock (p[i][0], true);
      c->out[i].index = (int) (c - m->ctl) * 2 + i;
      monitor_watch (m, &c->out[i], p[i][0], on_exec_output, EPOLLIN);
    }
  if (r < 0)
    return r;
  c->output_max = req.output_max ? req.output_max : CRISP_MONITOR_EXEC_OUTPUT_MAX_DEFAULT;
  c->sent[0] = c->sent[1] = 0;
  c->deadline_ns = req.timeout_ms ? monitor_now_ns () + req.timeout_ms * 1000000ull : 0;
  return 0;
}

/* A REPLY with a message naming the problem. */
static void
reply_error (CtlClient *c, int err, const char *text)
{
  CrispMonitorMsg msg = { CRISP_MONITOR_PROTOCOL_VERSION, CRISP_MONITOR_MSG_REPLY, err, 0 };
  struct iovec iov[2] = { { &msg, sizeof msg }, { (void *) text, strlen (text) } };
  struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
  sendmsg (c->src.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* `fd`: a descriptor passed with the request, or -1; this function owns it. */
static void
handle_request (Monitor *m, CtlClient *c, const char *buf, size_t len, int fd)
{
  CrispMonitorMsg msg;
  memcpy (&msg, buf, sizeof msg);
  int r;
  if (msg.type != CRISP_MONITOR_MSG_SESSION && fd >= 0)
    close (fd), fd = -1;
  if (c->exec_pid > 0 || c->pending_len > 0)
    {
      if (fd >= 0)
        close (fd);
      return (void) reply (c, CRISP_MONITOR_MSG_REPLY, -EBUSY, 0);
    }
  switch (msg.type)
    {
    case CRISP_MONITOR_MSG_VERSION:
      return (void) reply (c, CRISP_MONITOR_MSG_REPLY, 0, CRISP_MONITOR_PROTOCOL_VERSION);
    case CRISP_MONITOR_MSG_RESIZE:
      r = msg.arg0 < 0 || msg.arg1 < 0 ? -EINVAL : stdio_resize (m, msg.arg0, msg.arg1);
      return (void) reply (c, CRISP_MONITOR_MSG_REPLY, r, 0);
    case CRISP_MONITOR_MSG_REOPEN_LOG:
      r = m->opt.log_path ? crisp_cri_log_reopen (&m->log, m->opt.log_path) : -ENOENT;
      return (void) reply (c, CRISP_MONITOR_MSG_REPLY, r, 0);
    case CRISP_MONITOR_MSG_EXEC:
      r = exec_start (m, c, buf + sizeof msg, len - sizeof msg);
      if (r < 0)
        reply (c, CRISP_MONITOR_MSG_REPLY, r, 0);
      return;
    case CRISP_MONITOR_MSG_SESSION:
      {
        pid_t pid = 0;
        const char *why = NULL;
        r = session_open (m, buf + sizeof msg, len - sizeof msg, fd, &pid, &why);
        if (r < 0)
          return reply_error (c, r, why ? why : strerror (-r));
        return (void) reply (c, CRISP_MONITOR_MSG_REPLY, 0, (int32_t) pid);
      }
    default: /* reserved or newer than us */
      return (void) reply (c, CRISP_MONITOR_MSG_REPLY, -EOPNOTSUPP, 0);
    }
}

static void
on_client (Monitor *m, MonitorSource *src, uint32_t events)
{
  CtlClient *c = &m->ctl[src->index];
  if ((events & EPOLLOUT) && c->pending_len > 0)
    {
      if (send (src->fd, c->pending, c->pending_len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
            client_drop (m, c);
          return;
        }
      c->pending_len = 0;
      exec_pause (m, c, false);
      return exec_drain (m, c);
    }
  if (!(events & EPOLLIN))
    return events & (EPOLLHUP | EPOLLERR) ? client_drop (m, c) : (void) 0;
  union
  {
    struct cmsghdr align;
    char buf[CMSG_SPACE (4 * sizeof (int))];
  } control;
  struct iovec iov = { m->io_buf, sizeof m->io_buf };
  struct msghdr mh = { .msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf };
  ssize_t n = recvmsg (src->fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  /* Keep the first descriptor passed; close any other (and all of them on an error). */
  int fd = -1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR (&mh); n > 0 && cm; cm = CMSG_NXTHDR (&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
      {
        size_t k = (cm->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        int fds[4];
        memcpy (fds, CMSG_DATA (cm), k * sizeof (int));
        for (size_t i = 0; i < k; i++)
          if (fd < 0)
            fd = fds[i];
          else
            close (fds[i]);
      }
  bool bad = n <= 0 || (size_t) n > sizeof m->io_buf || (size_t) n < sizeof (CrispMonitorMsg)
             || (mh.msg_flags & MSG_CTRUNC);
  if (bad && fd >= 0)
    close (fd), fd = -1;
  if (n <= 0)
    return client_drop (m, c);
  if ((size_t) n > sizeof m->io_buf)
    return (void) reply (c, CRISP_MONITOR_MSG_REPLY, -EMSGSIZE, 0);
  if ((size_t) n < sizeof (CrispMonitorMsg) || (mh.msg_flags & MSG_CTRUNC))
    return (void) reply (c, CRISP_MONITOR_MSG_REPLY, -EBADMSG, 0);
  handle_request (m, c, m->io_buf, (size_t) n, fd);
}

static void
on_listen (Monitor *m, MonitorSource *src, uint32_t events)
{
  int slot = -1;
  for (int i = 0; i < MONITOR_CTL_MAX && slot < 0; i++)
    if (m->ctl[i].src.fd < 0)
      slot = i;
  if (slot < 0)
    return listen_pause (m, true);
  int fd = accept4 (src->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  m->ctl[slot].src.index = slot;
  if (monitor_watch (m, &m->ctl[slot].src, fd, on_client, EPOLLIN) < 0)
    {
      close (fd);
      m->ctl[slot].src.fd = -1;
    }
}

int
ctl_setup (Monitor *m)
{
  for (int i = 0; i < MONITOR_CTL_MAX; i++)
    m->ctl[i].src.fd = m->ctl[i].out[0].fd = m->ctl[i].out[1].fd = -1;
  int fd = monitor_bind_unix (m, CRISP_MONITOR_SOCKET_CTL, SOCK_SEQPACKET, 64);
  if (fd < 0)
    return fd;
  return monitor_watch (m, &m->ctl_src, fd, on_listen, EPOLLIN);
}

bool
ctl_on_child_exit (Monitor *m, pid_t pid, int status)
{
  if (session_on_child_exit (m, pid))
    return true;
  for (int i = 0; i < MONITOR_CTL_MAX; i++)
    {
      CtlClient *c = &m->ctl[i];
      if (c->exec_pid != pid || c->exec_reaped)
        continue;
      c->exec_reaped = true;
      c->exec_status = status;
      c->deadline_ns = 0;
      if (c->pending_len == 0)
        exec_drain (m, c);
      return true;
    }
  return false;
}

void
ctl_tick (Monitor *m, uint64_t now)
{
  for (int i = 0; i < MONITOR_CTL_MAX; i++)
    {
      CtlClient *c = &m->ctl[i];
      if (c->deadline_ns == 0 || now < c->deadline_ns)
        continue;
      c->deadline_ns = 0;
      c->timed_out = true;
      exec_kill (m, c);
    }
}

uint64_t
ctl_next_deadline (Monitor *m)
{
  uint64_t d = 0;
  for (int i = 0; i < MONITOR_CTL_MAX; i++)
    if (m->ctl[i].deadline_ns && (!d || m->ctl[i].deadline_ns < d))
      d = m->ctl[i].deadline_ns;
  return d;
}
