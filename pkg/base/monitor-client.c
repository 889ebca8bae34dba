/* The client half of the monitor protocol: spawning crisp-conmon (posix_spawn, so it is safe
 * in a threaded daemon), its start handshake, and control-socket requests. */
#include "config.h"

#include "crisp-base.h"
#include "monitor-client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#define DEFAULT_TIMEOUT_MS 60000
#define REQUEST_TIMEOUT_MS 10000
#define SYNC_FD 3
#define STANDBY_TITLE_ROOM 4096

extern char **environ;

/* Receives one packet within timeout_ms (< 0: no limit); returns its length. */
static ssize_t
recv_packet (int fd, void *buf, size_t size, int timeout_ms)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };
  int r;
  while ((r = poll (&p, 1, timeout_ms)) < 0 && errno == EINTR)
    ;
  if (r < 0)
    return -errno;
  if (r == 0)
    return -ETIMEDOUT;
  ssize_t n;
  while ((n = recv (fd, buf, size, 0)) < 0 && errno == EINTR)
    ;
  if (n < 0)
    return -errno;
  if ((size_t) n < sizeof (CrispMonitorMsg))
    return n == 0 ? -ECONNRESET : -EBADMSG;
  return n;
}

/* pass_fd >= 0: sent along with the packet (SCM_RIGHTS). */
static int
send_packet_fd (int fd, uint32_t type, int32_t arg0, int32_t arg1, const void *payload, size_t len,
                int pass_fd)
{
  CrispMonitorMsg msg = { CRISP_MONITOR_PROTOCOL_VERSION, type, arg0, arg1 };
  struct iovec iov[2] = { { &msg, sizeof msg }, { (void *) payload, len } };
  struct msghdr mh = { .msg_iov = iov, .msg_iovlen = payload ? 2 : 1 };
  union
  {
    struct cmsghdr h;
    char buf[CMSG_SPACE (sizeof (int))];
  } ctl;
  if (pass_fd >= 0)
    {
      memset (&ctl, 0, sizeof ctl);
      mh.msg_control = ctl.buf;
      mh.msg_controllen = sizeof ctl.buf;
      struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (cm), &pass_fd, sizeof (int));
    }
  ssize_t n;
  while ((n = sendmsg (fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
    ;
  return n < 0 ? -errno : 0;
}

static int
send_packet (int fd, uint32_t type, int32_t arg0, int32_t arg1, const void *payload, size_t len)
{
  return send_packet_fd (fd, type, arg0, arg1, payload, len, -1);
}

/* The options that describe cfg's container, into argv (room for 24); returns their count. */
static int
container_args (const CrispMonitorConfig *cfg, const char **argv, char *maxline, size_t size)
{
  int n = 0;
  const char *pairs[][2] = { { "--id", cfg->id },
                             { "--bundle", cfg->bundle },
                             { "--state-dir", cfg->state_dir },
                             { "--runtime", cfg->runtime },
                             { "--runtime-root", cfg->runtime_root },
                             { "--log-path", cfg->log_path },
                             { "--restore", cfg->restore_images },
                             { "--restore-work", cfg->restore_work } };
  for (size_t i = 0; i < CRISP_N_ELEMENTS (pairs); i++)
    if (pairs[i][1] != NULL)
      argv[n++] = pairs[i][0], argv[n++] = pairs[i][1];
  if (cfg->log_max_line)
    {
      snprintf (maxline, size, "%zu", cfg->log_max_line);
      argv[n++] = "--log-max-line", argv[n++] = maxline;
    }
  const struct
  {
    const char *name;
    bool on;
  } flags[] = { { "--terminal", cfg->terminal },
                { "--stdin", cfg->stdin_open },
                { "--stdin-once", cfg->stdin_once },
                { "--no-delete", cfg->no_delete } };
  for (size_t i = 0; i < CRISP_N_ELEMENTS (flags); i++)
    if (flags[i].on)
      argv[n++] = flags[i].name;
  return n;
}

/* cfg NULL: a standby monitor. */
static int
spawn_process (const char *conmon_path, const CrispMonitorConfig *cfg, int sync_fd, pid_t *out_pid)
{
  char maxline[32];
  /* A standby's operand: blanks its assigned options are later written over. */
  char room[STANDBY_TITLE_ROOM] = "";
  if (cfg == NULL)
    memset (room, ' ', sizeof room - 1);
  const char *argv[32];
  int n = 0;
  argv[n++] = conmon_path ? conmon_path : LIBEXECDIR "/crisp-conmon";
  if (cfg != NULL)
    n += container_args (cfg, argv + n, maxline, sizeof maxline);
  else
    argv[n++] = "--standby";
  argv[n++] = "--sync-fd";
  argv[n++] = "3";
  if (cfg == NULL)
    argv[n++] = "--", argv[n++] = room;
  argv[n] = NULL;

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset (&none);
  sigfillset (&all);
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, sync_fd, SYNC_FD); /* sync_fd != 3: see caller */
  posix_spawnattr_init (&attr);
  posix_spawnattr_setsigmask (&attr, &none);
  posix_spawnattr_setsigdefault (&attr, &all);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int r = posix_spawn (out_pid, argv[0], &fa, &attr, (char *const *) argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&attr);
  return -r;
}

/* The first process exits as soon as the monitor has detached. */
static int
wait_first (pid_t pid)
{
  int st;
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return -errno;
  return WIFEXITED (st) && WEXITSTATUS (st) == 0 ? 0 : -ECHILD;
}

/* FAILED: out->runtime_status and out->error from it, and -EIO. */
static int
take_failure (const char *buf, size_t n, CrispMonitorStarted *out)
{
  CrispMonitorMsg msg;
  memcpy (&msg, buf, sizeof msg);
  out->runtime_status = msg.arg0;
  size_t len = n - sizeof msg;
  if (len >= sizeof out->error)
    len = sizeof out->error - 1;
  memcpy (out->error, buf + sizeof msg, len);
  out->error[len] = '\0';
  return -EIO;
}

/* The monitor's HELLO (or, from a standby refusing its options, FAILED). */
static int
recv_hello (int fd, int timeout, CrispMonitorStarted *out)
{
  char buf[sizeof (CrispMonitorMsg) + sizeof out->error];
  CrispMonitorMsg msg;
  ssize_t n = recv_packet (fd, buf, sizeof buf, timeout);
  if (n < 0)
    return (int) n;
  memcpy (&msg, buf, sizeof msg);
  if (msg.type == CRISP_MONITOR_MSG_FAILED)
    return take_failure (buf, (size_t) n, out);
  if (msg.type != CRISP_MONITOR_MSG_HELLO || msg.arg0 <= 0)
    return -EPROTO;
  out->monitor_pid = msg.arg0;
  out->protocol_version = msg.arg1;
  return 0;
}

/* What `runtime create` came to: CREATED or FAILED. */
static int
recv_result (int fd, int timeout, CrispMonitorStarted *out)
{
  char buf[sizeof (CrispMonitorMsg) + sizeof out->error];
  CrispMonitorMsg msg;
  ssize_t n = recv_packet (fd, buf, sizeof buf - 1, timeout);
  if (n < 0)
    return (int) n;
  memcpy (&msg, buf, sizeof msg);
  if (msg.type == CRISP_MONITOR_MSG_CREATED && msg.arg0 > 0)
    {
      out->container_pid = msg.arg0;
      return 0;
    }
  if (msg.type != CRISP_MONITOR_MSG_FAILED)
    return -EPROTO;
  return take_failure (buf, (size_t) n, out);
}

/* The placement (before_go) and GO that let the monitor with that pid create; GO carries the
 * runtime's sealed copy, if any (a monitor older than that closes it and runs the path). */
static int
say_go (int fd, const CrispMonitorConfig *cfg, pid_t pid, CrispMonitorBeforeGo before_go,
        void *user_data)
{
  int r = before_go ? before_go (pid, user_data) : 0;
  if (r < 0)
    return r; /* closing the socket tells the monitor to leave */
  return send_packet_fd (fd, CRISP_MONITOR_MSG_GO, 0, 0, NULL, 0,
                         cfg->runtime_fd > 2 ? cfg->runtime_fd : -1);
}

/* HELLO, GO, then the result.  known_pid > 0 (a standby's): placed and told GO before its
 * HELLO, which must then name that pid. */
static int
handshake (int fd, const CrispMonitorConfig *cfg, int timeout, pid_t known_pid,
           CrispMonitorBeforeGo before_go, void *user_data, CrispMonitorStarted *out)
{
  int r = known_pid > 0 ? say_go (fd, cfg, known_pid, before_go, user_data) : 0;
  if (r == 0)
    r = recv_hello (fd, timeout, out);
  if (r == 0 && known_pid > 0 && out->monitor_pid != known_pid)
    r = -EPROTO;
  if (r == 0 && known_pid <= 0)
    r = say_go (fd, cfg, out->monitor_pid, before_go, user_data);
  return r < 0 ? r : recv_result (fd, timeout, out);
}

/* Spawns crisp-conmon (cfg NULL: a standby one) on a new sync socket, and waits for the
 * first process, which exits once the monitor has detached. */
static int
spawn_detached (const char *conmon_path, const CrispMonitorConfig *cfg, int *out_fd)
{
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  _cleanup_close_ int ours = sv[0], theirs = sv[1];
  if (theirs == SYNC_FD)
    {
      /* dup2 onto itself would keep O_CLOEXEC; any other number will do. */
      theirs = fcntl (sv[1], F_DUPFD_CLOEXEC, SYNC_FD + 1);
      close (sv[1]);
      if (theirs < 0)
        return -errno;
    }
  pid_t pid;
  int r = spawn_process (conmon_path, cfg, theirs, &pid);
  if (r < 0)
    return r;
  close (take_fd (&theirs));
  if ((r = wait_first (pid)) < 0)
    return r;
  *out_fd = take_fd (&ours);
  return 0;
}

static int
start_handshake (int fd, const CrispMonitorConfig *cfg, pid_t known_pid,
                 CrispMonitorBeforeGo before_go, void *user_data, CrispMonitorStarted *out)
{
  CrispMonitorStarted started = { 0 };
  int r = handshake (fd, cfg, cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS, known_pid,
                     before_go, user_data, &started);
  if (r == 0 || r == -EIO)
    *out = started;
  return r;
}

int
crisp_monitor_spawn (const CrispMonitorConfig *cfg, CrispMonitorBeforeGo before_go, void *user_data,
                     CrispMonitorStarted *out)
{
  if (cfg->id == NULL || cfg->bundle == NULL || cfg->state_dir == NULL || cfg->runtime == NULL)
    return -EINVAL;
  _cleanup_close_ int fd = -1;
  int r = spawn_detached (cfg->conmon_path, cfg, &fd);
  return r < 0 ? r : start_handshake (fd, cfg, 0, before_go, user_data, out);
}

int
crisp_monitor_standby_new (const char *conmon_path, int timeout_ms, CrispMonitorStandby *out)
{
  _cleanup_close_ int fd = -1;
  int r = spawn_detached (conmon_path, NULL, &fd);
  if (r < 0)
    return r;
  CrispMonitorMsg msg;
  ssize_t n = recv_packet (fd, &msg, sizeof msg, timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
  if (n < 0)
    return (int) n;
  if (msg.type != CRISP_MONITOR_MSG_STANDBY || msg.arg0 <= 0)
    return -EPROTO;
  out->pid = msg.arg0;
  out->fd = take_fd (&fd);
  return 0;
}

void
crisp_monitor_standby_release (CrispMonitorStandby *standby)
{
  if (standby->fd >= 0)
    close (standby->fd);
  standby->fd = -1;
  standby->pid = 0;
}

int
crisp_monitor_assign (CrispMonitorStandby *standby, const CrispMonitorConfig *cfg,
                      CrispMonitorBeforeGo before_go, void *user_data, CrispMonitorStarted *out)
{
  if (cfg->id == NULL || cfg->bundle == NULL || cfg->state_dir == NULL || cfg->runtime == NULL)
    return -EINVAL;
  if (standby->fd < 0)
    return -EBADF;
  _cleanup_close_ int fd = standby->fd;
  standby->fd = -1;
  char maxline[32];
  const char *argv[32];
  int argc = container_args (cfg, argv, maxline, sizeof maxline);
  size_t len = 0;
  for (int i = 0; i < argc; i++)
    len += strlen (argv[i]) + 1;
  if (len > CRISP_MONITOR_MSG_MAX - sizeof (CrispMonitorMsg))
    return -E2BIG;
  _cleanup_free_ char *payload = malloc (len);
  if (payload == NULL)
    return -ENOMEM;
  size_t off = 0;
  for (int i = 0; i < argc; i++)
    {
      size_t l = strlen (argv[i]) + 1;
      memcpy (payload + off, argv[i], l);
      off += l;
    }
  /* A standby monitor that died meanwhile fails here, before anything depends on it. */
  int r = send_packet (fd, CRISP_MONITOR_MSG_ASSIGN, 0, 0, payload, len);
  if (r < 0)
    return r == -EPIPE || r == -ECONNRESET ? -ESRCH : r;
  /* Its pid is known: while it reads its options, crisp places it and says GO, which it
   * reads right after its HELLO. */
  return start_handshake (fd, cfg, standby->pid, before_go, user_data, out);
}

int
crisp_monitor_connect (const char *state_dir, int *out_fd)
{
  return crisp_monitor_connect_socket (state_dir, CRISP_MONITOR_SOCKET_CTL, out_fd);
}

int
crisp_monitor_connect_socket (const char *state_dir, const char *name, int *out_fd)
{
  _cleanup_close_ int dirfd = open (state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return -errno;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  snprintf (addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, name);
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  /* A connect to a full backlog waits for the monitor to accept; a hung monitor must not
   * hold the caller's thread for ever (the send timeout bounds connect on unix sockets). */
  struct timeval tv = { REQUEST_TIMEOUT_MS / 1000, 0 };
  if (setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
    return -errno;
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    return errno == EAGAIN ? -ETIMEDOUT : -errno;
  *out_fd = take_fd (&fd);
  return 0;
}

/* One request answered by one REPLY. */
static int
request (int fd, uint32_t type, int32_t arg0, int32_t arg1, int32_t *out_arg1)
{
  CrispMonitorMsg msg;
  int r = send_packet (fd, type, arg0, arg1, NULL, 0);
  if (r < 0)
    return r;
  ssize_t n = recv_packet (fd, &msg, sizeof msg, REQUEST_TIMEOUT_MS);
  if (n < 0)
    return (int) n;
  if (msg.type != CRISP_MONITOR_MSG_REPLY)
    return -EPROTO;
  if (msg.arg0 < 0)
    return msg.arg0;
  if (out_arg1)
    *out_arg1 = msg.arg1;
  return 0;
}

int
crisp_monitor_version (int fd, int *out_version)
{
  int32_t v = 0;
  int r = request (fd, CRISP_MONITOR_MSG_VERSION, 0, 0, &v);
  if (r == 0)
    *out_version = v;
  return r;
}

int
crisp_monitor_resize (int fd, unsigned rows, unsigned cols)
{
  if (rows > UINT16_MAX || cols > UINT16_MAX)
    return -EINVAL;
  return request (fd, CRISP_MONITOR_MSG_RESIZE, (int32_t) rows, (int32_t) cols, NULL);
}

int
crisp_monitor_reopen_log (int fd)
{
  return request (fd, CRISP_MONITOR_MSG_REOPEN_LOG, 0, 0, NULL);
}

/* Packs the EXEC payload: the request struct, then argv and envp as NUL-terminated strings. */
static int
exec_payload (const char *const *argv, const char *const *envp, uint32_t timeout_ms,
              uint32_t output_max, char *buf, size_t size, size_t *out_len)
{
  CrispMonitorExecRequest req = { timeout_ms, output_max, 0, 0, 0 };
  size_t len = sizeof req;
  for (int pass = 0; pass < 2; pass++)
    for (const char *const *s = pass ? envp : argv; s && *s; s++)
      {
        size_t l = strlen (*s) + 1;
        if (len + l > size)
          return -E2BIG;
        memcpy (buf + len, *s, l);
        len += l;
        *(pass ? &req.envc : &req.argc) += 1;
      }
  if (req.argc == 0)
    return -EINVAL;
  memcpy (buf, &req, sizeof req);
  *out_len = len;
  return 0;
}

static int
append (char **buf, size_t *len, const char *data, size_t n)
{
  char *nb = realloc (*buf, *len + n + 1);
  if (nb == NULL)
    return -ENOMEM;
  memcpy (nb + *len, data, n);
  *len += n;
  nb[*len] = '\0';
  *buf = nb;
  return 0;
}

int
crisp_monitor_exec (int fd, const char *const *argv, const char *const *envp, uint32_t timeout_ms,
                    uint32_t output_max, CrispMonitorExecResult *out)
{
  size_t len;
  _cleanup_free_ char *buf = malloc (CRISP_MONITOR_MSG_MAX);
  if (buf == NULL)
    return -ENOMEM;
  int r = exec_payload (argv, envp, timeout_ms, output_max, buf,
                        CRISP_MONITOR_MSG_MAX - sizeof (CrispMonitorMsg), &len);
  if (r == 0)
    r = send_packet (fd, CRISP_MONITOR_MSG_EXEC, 0, 0, buf, len);
  if (r < 0)
    return r;
  /* The monitor enforces timeout_ms; ours only guards against a monitor gone silent. */
  int wait_ms = timeout_ms ? (int) (timeout_ms > 3600000 ? 3600000 : timeout_ms) + 30000 : -1;
  CrispMonitorExecResult res = { 0 };
  for (;;)
    {
      CrispMonitorMsg msg;
      ssize_t n = recv_packet (fd, buf, CRISP_MONITOR_MSG_MAX, wait_ms);
      if (n < 0)
        r = (int) n;
      else
        memcpy (&msg, buf, sizeof msg);
      if (r == 0 && msg.type == CRISP_MONITOR_MSG_EXEC_OUTPUT)
        {
          const char *data = buf + sizeof msg;
          size_t dlen = (size_t) n - sizeof msg;
          r = msg.arg0 == CRISP_MONITOR_STREAM_STDERR ? append (&res.err, &res.err_len, data, dlen)
                                                      : append (&res.out, &res.out_len, data, dlen);
          if (r == 0)
            continue;
        }
      else if (r == 0 && msg.type == CRISP_MONITOR_MSG_EXEC_EXIT)
        {
          res.exit_code = msg.arg0;
          res.timed_out = (msg.arg1 & CRISP_MONITOR_EXEC_FLAG_TIMED_OUT) != 0;
          res.truncated = (msg.arg1 & CRISP_MONITOR_EXEC_FLAG_TRUNCATED) != 0;
          *out = res;
          return 0;
        }
      else if (r == 0)
        r = msg.type == CRISP_MONITOR_MSG_REPLY && msg.arg0 < 0 ? msg.arg0 : -EPROTO;
      crisp_monitor_exec_result_clear (&res);
      return r;
    }
}

void
crisp_monitor_exec_result_clear (CrispMonitorExecResult *result)
{
  free (result->out);
  free (result->err);
  *result = (CrispMonitorExecResult){ 0 };
}

void
crisp_monitor_exec_result_fit (CrispMonitorExecResult *result, size_t max)
{
  size_t out = result->out_len, err = result->err_len;
  if (out + err <= max)
    return;
  size_t half = max / 2;
  if (out <= half)
    err = max - out;
  else if (err <= half)
    out = max - err;
  else
    out = half, err = max - half;
  result->truncated = true;
  result->out_len = out;
  result->err_len = err;
  /* The buffers hold len + 1 bytes (append keeps them NUL-terminated). */
  if (result->out)
    result->out[out] = '\0';
  if (result->err)
    result->err[err] = '\0';
}

int
crisp_monitor_session (int fd, int client_fd, const CrispMonitorSessionRequest *req,
                       const char *const *argv, const void *response, const void *leftover,
                       pid_t *out_pid, char *why, size_t why_size)
{
  if (why_size > 0)
    why[0] = '\0';
  _cleanup_free_ char *buf = malloc (CRISP_MONITOR_MSG_MAX);
  if (buf == NULL)
    return -ENOMEM;
  CrispMonitorSessionRequest r = *req;
  CrispMonitorMsg msg = { CRISP_MONITOR_PROTOCOL_VERSION, CRISP_MONITOR_MSG_SESSION, 0, 0 };
  size_t len = sizeof msg + sizeof r;
  r.argc = 0;
  for (const char *const *s = argv; s && *s; s++, r.argc++)
    {
      size_t l = strlen (*s) + 1;
      if (len + l > CRISP_MONITOR_MSG_MAX)
        return -E2BIG;
      memcpy (buf + len, *s, l);
      len += l;
    }
  if (len + r.response_len + r.leftover_len > CRISP_MONITOR_MSG_MAX)
    return -E2BIG;
  if (r.response_len)
    memcpy (buf + len, response, r.response_len);
  len += r.response_len;
  if (r.leftover_len)
    memcpy (buf + len, leftover, r.leftover_len);
  len += r.leftover_len;
  memcpy (buf + sizeof msg, &r, sizeof r);
  int sent = send_packet_fd (fd, msg.type, 0, 0, buf + sizeof msg, len - sizeof msg, client_fd);
  if (sent < 0)
    return sent;
  ssize_t got = recv_packet (fd, buf, CRISP_MONITOR_MSG_MAX, REQUEST_TIMEOUT_MS);
  if (got < 0)
    return (int) got;
  memcpy (&msg, buf, sizeof msg);
  if (msg.type != CRISP_MONITOR_MSG_REPLY)
    return -EBADMSG;
  if (msg.arg0 < 0)
    {
      size_t tl = (size_t) got - sizeof msg;
      if (why_size > 0)
        {
          tl = tl < why_size - 1 ? tl : why_size - 1;
          memcpy (why, buf + sizeof msg, tl);
          why[tl] = '\0';
        }
      return msg.arg0;
    }
  if (out_pid)
    *out_pid = msg.arg1;
  return 0;
}
