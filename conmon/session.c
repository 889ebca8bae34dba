/* Streaming exec and attach sessions owned by the monitor.  crisp checks the token,
 * negotiates the protocol and passes the client's connection here (SESSION on the control
 * socket); each session is served by a child of the monitor (pkg/streaming/remotecommand.c),
 * so it outlives crisp, and a slow or hostile client can stall or crash only its own child,
 * never the monitor's loop that carries the container's stdio, log and exit.  While no
 * session is open nothing here holds any memory. */
#include "config.h"

#include "conmon.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "monitor-client.h"
#include "pkg/streaming/remotecommand.h"

/* In the child: serve the session, then leave without running the monitor's exit path. */
static void __attribute__ ((noreturn))
serve (Monitor *m, const CrispMonitorSessionRequest *req, const char *args, const uint8_t *tail,
       int fd, const char *pidpath)
{
  sigset_t none;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  signal (SIGCHLD, SIG_DFL);
  signal (SIGPIPE, SIG_IGN); /* every write to a peer checks its result */
  prctl (PR_SET_NAME, "conmon-session", 0, 0, 0);
  /* Keep the client's connection (as fd 3) and nothing else of the monitor's: above all not
   * the container's stdin, whose end of file must not wait for this child. */
  if (fd != 3 && (dup3 (fd, 3, O_CLOEXEC) < 0))
    _exit (1);
  close_range (4, ~0u, 0);
  CrispRcSession s = {
    .fd = 3,
    .framing = req->framing,
    .version = req->version,
    .flags = req->flags,
    .response = tail,
    .response_len = req->response_len,
    .leftover = tail + req->response_len,
    .leftover_len = req->leftover_len,
    .attach_fd = -1,
  };
  const char **argv = NULL;
  if (req->kind == CRISP_MONITOR_SESSION_EXEC)
    {
      argv = ctl_exec_argv (m, pidpath, args, req->argc, NULL, 0);
      if (argv == NULL)
        _exit (1);
      s.argv = (char *const *) argv;
      s.pid_file = pidpath;
    }
  else if (crisp_monitor_connect_socket (m->opt.state_dir, CRISP_MONITOR_SOCKET_ATTACH,
                                         &s.attach_fd)
           < 0)
    s.attach_fd = -1;
  if (req->kind == CRISP_MONITOR_SESSION_ATTACH && s.attach_fd < 0)
    {
      /* The container exited between the check and now: the session ends at once, as an
       * attach to a container that exits does. */
      s.argv = NULL;
    }
  crisp_rc_serve (&s);
  if (s.attach_fd >= 0)
    close (s.attach_fd);
  if (s.pid_file)
    unlink (s.pid_file);
  _exit (0);
}

static int
check_request (Monitor *m, const char *payload, size_t len, CrispMonitorSessionRequest *req,
               const char **why)
{
  if (len < sizeof *req)
    return *why = "short session request", -EINVAL;
  memcpy (req, payload, sizeof *req);
  const char *rest = payload + sizeof *req;
  size_t rest_len = len - sizeof *req;
  if (req->kind != CRISP_MONITOR_SESSION_EXEC && req->kind != CRISP_MONITOR_SESSION_ATTACH)
    return *why = "unknown session kind", -EINVAL;
  if (req->framing != CRISP_MONITOR_FRAMING_SPDY && req->framing != CRISP_MONITOR_FRAMING_WEBSOCKET)
    return *why = "unknown session framing", -EINVAL;
  if (req->version < 1 || req->version > 5 || req->flags >= 32u
      || req->response_len > CRISP_MONITOR_SESSION_RESPONSE_MAX
      || (size_t) req->response_len + req->leftover_len > rest_len)
    return *why = "malformed session request", -EINVAL;
  size_t strings = rest_len - req->response_len - req->leftover_len;
  bool exec = req->kind == CRISP_MONITOR_SESSION_EXEC;
  if ((exec && req->argc == 0) || (!exec && req->argc != 0)
      || !ctl_strings_ok (rest, strings, req->argc))
    return *why = "malformed session command", -EINVAL;
  if (m->phase != PHASE_RUNNING)
    return *why = "the container is not running", -ESRCH;
  return 0;
}

int
session_open (Monitor *m, const char *payload, size_t len, int fd, pid_t *out_pid, const char **why)
{
  _cleanup_close_ int client = fd;
  CrispMonitorSessionRequest req;
  if (client < 0)
    return *why = "no connection was passed with the session request", -EBADF;
  int r = check_request (m, payload, len, &req, why);
  if (r < 0)
    return r;
  int slot = -1;
  for (int i = 0; i < CRISP_MONITOR_SESSIONS_MAX && slot < 0; i++)
    if (m->sessions[i] == 0)
      slot = i;
  if (slot < 0)
    return *why = "too many streaming sessions on this container", -EBUSY;
  char pidpath[PATH_MAX];
  if (snprintf (pidpath, sizeof pidpath, "%s/session-%d.pid", m->opt.state_dir, ++m->session_seq)
      >= (int) sizeof pidpath)
    return *why = "state directory path too long", -ENAMETOOLONG;
  const char *args = payload + sizeof req;
  size_t strings = len - sizeof req - req.response_len - req.leftover_len;
  const uint8_t *tail = (const uint8_t *) args + strings;
  pid_t pid = fork ();
  if (pid < 0)
    return *why = "fork failed", -errno;
  if (pid == 0)
    serve (m, &req, args, tail, client, pidpath);
  m->sessions[slot] = pid;
  *out_pid = pid;
  return 0;
}

bool
session_on_child_exit (Monitor *m, pid_t pid)
{
  for (int i = 0; i < CRISP_MONITOR_SESSIONS_MAX; i++)
    if (m->sessions[i] == pid)
      {
        m->sessions[i] = 0;
        return true;
      }
  return false;
}
