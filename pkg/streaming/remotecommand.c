/* A remotecommand session: channels over SPDY streams or WebSocket messages, the command (a
 * child running the OCI runtime's exec) or the monitor's attach socket on the other side, one
 * poll loop between them.  See remotecommand.h. */
#include "config.h"

#include "remotecommand.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "crisp-base.h"
#include "monitor-protocol.h"
#include "spdy.h"
#include "ws.h"

enum
{
  CH_STDIN = 0,
  CH_STDOUT = 1,
  CH_STDERR = 2,
  CH_ERROR = 3,
  CH_RESIZE = 4,
  N_CH = 5,
};

#define CHUNK (32 * 1024)
#define STREAMS_TIMEOUT_MS 30000
#define SIZE_WAIT_MS 1000 /* see waits_for_size () */
/* See serve_exec (). */
#define TTY_START_WAIT_MS 5000
#define TTY_AFTER_PID_FILE_MS 30
#define TTY_INPUT_HOLD_MS 300
#define KILL_GRACE_MS 5000
#define FLUSH_TIMEOUT_MS 5000
#define LINGER_MS 1000
/* Output is not read from the command (or the attach socket) while this much waits for the
 * client: the command waits for a slow client instead of the session's memory growing. */
#define OUT_HIGH (256 * 1024)
/* The client is not read while this much stdin waits for the command to take it. */
#define IN_HIGH (256 * 1024)
#define RESIZE_MAX 4096
/* Stdin packets to the attach socket: the monitor reads at most 32 KiB with the tag. */
#define ATTACH_CHUNK (16 * 1024)

typedef struct
{
  const CrispRcSession *req;
  int fd;
  bool ws, base64;
  CrispSpdy *spdy;
  CrispWs *wsc;
  CrispBuf out;     /* bytes for the client not yet sent */
  CrispBuf scratch; /* decoded base64 messages */
  uint32_t sid[N_CH];
  bool want[N_CH];
  bool client_gone; /* read error, EOF, GOAWAY or CLOSE: stop reading and stop the command */
  bool write_dead;  /* the client cannot be written to any more */
  bool closing;     /* a WebSocket CLOSE or SPDY GOAWAY is queued: nothing follows it */
  /* Stdin towards the command or the attach socket. */
  CrispBuf in;
  bool in_fin;  /* the client finished its stdin */
  bool started; /* the sink exists: stdin may flow */
  uint64_t in_hold_until; /* tty: typed-ahead input waits until then (see serve_exec) */
  bool hold_for_pid_file;  /* ... or, before that, until the runtime writes its pid file */
  int in_fd;    /* exec: the stdin pipe or a dup of the pty master; -1 when closed */
  int attach_fd;
  bool attach_close_sent;
  char resize[RESIZE_MAX];
  size_t resize_len;
  struct winsize size;
  int pty;
} Rc;

static uint64_t
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* ---- output towards the client ---- */

static void
put_channel (Rc *rc, int ch, const void *data, size_t len)
{
  if (rc->write_dead || rc->closing)
    return;
  int r = 0;
  if (rc->ws)
    r = crisp_ws_put_channel (&rc->out, rc->base64, (uint8_t) ch, data, len);
  else if (rc->sid[ch] != 0)
    r = crisp_spdy_put_data (&rc->out, rc->sid[ch], 0, data, len);
  if (r < 0)
    rc->write_dead = rc->client_gone = true;
}

/* Sends what the socket takes now. */
static void
send_out (Rc *rc)
{
  while (rc->out.len > 0 && !rc->write_dead)
    {
      ssize_t n = send (rc->fd, rc->out.data, rc->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n <= 0)
        {
          rc->write_dead = rc->client_gone = true;
          crisp_buf_clear (&rc->out);
          return;
        }
      crisp_buf_consume (&rc->out, (size_t) n);
    }
}

/* Waits (bounded) until everything queued is sent. */
static void
flush_out (Rc *rc, int timeout_ms)
{
  uint64_t deadline = now_ms () + (uint64_t) timeout_ms;
  while (rc->out.len > 0 && !rc->write_dead)
    {
      send_out (rc);
      uint64_t now = now_ms ();
      if (rc->out.len == 0 || now >= deadline)
        break;
      struct pollfd p = { rc->fd, POLLOUT, 0 };
      poll (&p, 1, (int) (deadline - now));
    }
}

/* ---- input from the client ---- */

static void
attach_packet (Rc *rc, uint8_t tag, const void *data, size_t len)
{
  uint8_t buf[1 + ATTACH_CHUNK];
  buf[0] = tag;
  if (len > 0)
    memcpy (buf + 1, data, len);
  while (rc->attach_fd >= 0 && send (rc->attach_fd, buf, len + 1, MSG_NOSIGNAL) < 0
         && errno == EINTR)
    ;
}

static void
close_in_fd (Rc *rc)
{
  if (rc->in_fd >= 0)
    close (rc->in_fd);
  rc->in_fd = -1;
}

/* Moves queued stdin to the command (what its pipe takes now) or to the attach socket. */
static void
flush_stdin (Rc *rc)
{
  if (!rc->started || (rc->in_hold_until != 0 && now_ms () < rc->in_hold_until))
    return;
  if (rc->attach_fd >= 0)
    {
      for (size_t off = 0; off < rc->in.len; off += ATTACH_CHUNK)
        attach_packet (rc, CRISP_MONITOR_STREAM_STDIN, rc->in.data + off,
                       rc->in.len - off < ATTACH_CHUNK ? rc->in.len - off : ATTACH_CHUNK);
      crisp_buf_consume (&rc->in, rc->in.len);
      if (rc->in_fin && !rc->attach_close_sent)
        {
          /* The monitor closes the container's stdin only for a stdinOnce container. */
          attach_packet (rc, CRISP_MONITOR_ATTACH_CLOSE_STDIN, NULL, 0);
          rc->attach_close_sent = true;
        }
      return;
    }
  while (rc->in_fd >= 0 && rc->in.len > 0)
    {
      ssize_t n = write (rc->in_fd, rc->in.data, rc->in.len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return;
      if (n <= 0)
        {
          close_in_fd (rc); /* the command closed its stdin: the rest is dropped */
          break;
        }
      crisp_buf_consume (&rc->in, (size_t) n);
    }
  if (rc->in_fd < 0)
    crisp_buf_consume (&rc->in, rc->in.len);
  else if (rc->in_fin && rc->in.len == 0)
    {
      if (rc->pty >= 0)
        {
          /* A terminal has no half-close: its end-of-file character is the equivalent. */
          struct termios t;
          char eof = tcgetattr (rc->pty, &t) == 0 ? (char) t.c_cc[VEOF] : 4;
          (void) !write (rc->in_fd, &eof, 1);
        }
      close_in_fd (rc);
    }
}

static int
on_stdin (Rc *rc, const uint8_t *p, size_t len)
{
  if (rc->in_fin || (rc->started && rc->attach_fd < 0 && rc->in_fd < 0))
    return 0; /* finished or closed: nobody reads it */
  if (rc->in.len + len > IN_HIGH + CRISP_WS_MAX_MESSAGE)
    return -ENOBUFS;
  if (crisp_buf_append (&rc->in, p, len) < 0)
    return -ENOMEM;
  flush_stdin (rc);
  return 0;
}

static void
on_stdin_fin (Rc *rc)
{
  rc->in_fin = true;
  flush_stdin (rc);
}

static void
apply_size (Rc *rc)
{
  if (rc->size.ws_row == 0)
    return;
  if (rc->pty >= 0)
    ioctl (rc->pty, TIOCSWINSZ, &rc->size);
  uint16_t rowcol[2] = { rc->size.ws_row, rc->size.ws_col };
  if (rc->attach_fd >= 0 && rc->started)
    attach_packet (rc, CRISP_MONITOR_ATTACH_RESIZE, rowcol, sizeof rowcol);
}

static const char *
find_key (const char *p, const char *end, const char *key)
{
  size_t kl = strlen (key);
  for (; p + kl + 2 <= end; p++)
    if (*p == '"' && memcmp (p + 1, key, kl) == 0 && p[kl + 1] == '"')
      {
        p += kl + 2;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
          p++;
        if (p >= end || *p != ':')
          return NULL;
        for (p++; p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'); p++)
          ;
        return p;
      }
  return NULL;
}

static bool
parse_dim (const char *obj, size_t len, const char *key, uint16_t *out)
{
  const char *end = obj + len;
  const char *p = find_key (obj, end, key);
  if (p == NULL || p >= end || *p < '0' || *p > '9')
    return false;
  unsigned long v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; p++)
    if ((v = v * 10 + (unsigned long) (*p - '0')) > 65535)
      return false;
  if (v == 0)
    return false;
  *out = (uint16_t) v;
  return true;
}

bool
crisp_rc_parse_size (const char *obj, size_t len, uint16_t *width, uint16_t *height)
{
  return parse_dim (obj, len, "Width", width) && parse_dim (obj, len, "Height", height);
}

/* Applies every complete {"Width":..,"Height":..} object received on the resize channel (the
 * client writes one object per size change, possibly split across messages). */
static void
on_resize (Rc *rc, const uint8_t *p, size_t len)
{
  if (rc->resize_len + len > sizeof rc->resize)
    rc->resize_len = 0; /* garbage: start over rather than grow */
  if (len > sizeof rc->resize)
    return;
  memcpy (rc->resize + rc->resize_len, p, len);
  rc->resize_len += len;
  char *close;
  while ((close = memchr (rc->resize, '}', rc->resize_len)) != NULL)
    {
      size_t n = (size_t) (close - rc->resize) + 1;
      uint16_t w, h;
      if (crisp_rc_parse_size (rc->resize, n, &w, &h))
        {
          rc->size = (struct winsize){ .ws_row = h, .ws_col = w };
          apply_size (rc);
        }
      memmove (rc->resize, rc->resize + n, rc->resize_len - n);
      rc->resize_len -= n;
    }
}

static int
on_channel (Rc *rc, uint8_t ch, const uint8_t *data, size_t len)
{
  switch (ch)
    {
    case CH_STDIN:
      return rc->want[CH_STDIN] ? on_stdin (rc, data, len) : 0;
    case CH_RESIZE:
      on_resize (rc, data, len);
      return 0;
    case CRISP_WS_CHANNEL_CLOSE:
      /* v5: the client closes one of its channels; only stdin means anything here. */
      if (rc->req->version >= 5 && len >= 1 && data[0] == CH_STDIN)
        on_stdin_fin (rc);
      return 0;
    default:
      return 0; /* channels the client may not write are ignored, like the kubelet does */
    }
}

static int
on_ws_message (const CrispWsMessage *msg, void *data)
{
  Rc *rc = data;
  switch (msg->opcode)
    {
    case CRISP_WS_PING:
      return crisp_ws_put (&rc->out, CRISP_WS_PONG, msg->data, msg->len);
    case CRISP_WS_PONG:
      return 0;
    case CRISP_WS_CLOSE:
      /* RFC 6455 section 5.5.1: a CLOSE is answered with a CLOSE, and nothing follows. */
      if (!rc->closing && !rc->write_dead)
        crisp_ws_put_close (&rc->out, CRISP_WS_CLOSE_NORMAL, "");
      rc->closing = rc->client_gone = true;
      return 0;
    default:
      {
        uint8_t ch;
        const uint8_t *p;
        size_t len;
        int r = crisp_ws_channel_decode (rc->base64, msg, &rc->scratch, &ch, &p, &len);
        if (r == 0)
          r = on_channel (rc, ch, p, len);
        crisp_buf_clear (&rc->scratch);
        return r;
      }
    }
}

static int
channel_of_type (const char *type)
{
  static const char *const names[N_CH] = { "stdin", "stdout", "stderr", "error", "resize" };
  for (int i = 0; type != NULL && i < N_CH; i++)
    if (strcmp (type, names[i]) == 0)
      return i;
  return -1;
}

static int
on_spdy_frame (const CrispSpdyFrame *f, void *data)
{
  Rc *rc = data;
  switch (f->type)
    {
    case CRISP_SPDY_SYN_STREAM:
      {
        int ch = channel_of_type (crisp_spdy_header (f, "streamtype"));
        if (ch < 0 || !rc->want[ch] || rc->sid[ch] != 0 || f->stream_id == 0)
          return crisp_spdy_put_rst_stream (&rc->out, f->stream_id, CRISP_SPDY_RST_REFUSED_STREAM);
        rc->sid[ch] = f->stream_id;
        const char *none[] = { NULL };
        int r = crisp_spdy_put_headers (rc->spdy, &rc->out, CRISP_SPDY_SYN_REPLY, 0, f->stream_id,
                                        none);
        if (r == 0 && ch == CH_STDIN && (f->flags & CRISP_SPDY_FLAG_FIN))
          on_stdin_fin (rc);
        return r;
      }
    case CRISP_SPDY_DATA:
      for (int ch = 0; ch < N_CH; ch++)
        if (f->stream_id != 0 && f->stream_id == rc->sid[ch])
          {
            int r = on_channel (rc, (uint8_t) ch, f->data, f->len);
            if (r == 0 && ch == CH_STDIN && (f->flags & CRISP_SPDY_FLAG_FIN))
              on_stdin_fin (rc);
            return r;
          }
      return 0;
    case CRISP_SPDY_RST_STREAM:
      if (f->stream_id != 0 && f->stream_id == rc->sid[CH_STDIN])
        {
          crisp_buf_consume (&rc->in, rc->in.len);
          on_stdin_fin (rc);
        }
      return 0;
    case CRISP_SPDY_PING:
      return crisp_spdy_put_ping (&rc->out, f->value);
    case CRISP_SPDY_GOAWAY:
      rc->client_gone = true;
      return 0;
    default:
      return 0;
    }
}

static int
feed (Rc *rc, const uint8_t *buf, size_t len)
{
  return rc->ws ? crisp_ws_feed (rc->wsc, buf, len, on_ws_message, rc)
                : crisp_spdy_feed (rc->spdy, buf, len, on_spdy_frame, rc);
}

/* Handles client bytes; a protocol error (hostile framing) ends this session only, with a
 * close frame (WebSocket) or GOAWAY (SPDY) that says so. */
static void
handle_input (Rc *rc, const uint8_t *buf, size_t n)
{
  int r = feed (rc, buf, n);
  if (r < 0)
    {
      rc->client_gone = true;
      if (rc->ws && !rc->write_dead)
        crisp_ws_put_close (&rc->out,
                            r == -EMSGSIZE ? CRISP_WS_CLOSE_TOO_BIG : CRISP_WS_CLOSE_PROTOCOL_ERROR,
                            r == -EMSGSIZE ? "message too big" : "protocol error");
      else if (!rc->ws)
        crisp_spdy_put_goaway (&rc->out, 0, 1);
      rc->closing = true;
    }
}

/* Reads what the client sent and handles it; marks the client gone at its end. */
static void
pump_client (Rc *rc)
{
  uint8_t buf[CHUNK];
  ssize_t n = recv (rc->fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
    return;
  if (n <= 0)
    {
      rc->client_gone = true;
      return;
    }
  handle_input (rc, buf, (size_t) n);
  send_out (rc);
}

static bool
streams_ready (Rc *rc)
{
  if (rc->ws)
    return true; /* every channel exists from the start */
  for (int ch = 0; ch < N_CH; ch++)
    if (rc->want[ch] && ch != CH_RESIZE && rc->sid[ch] == 0)
      return false;
  return true;
}

/* With a tty the runtime's exec runs in the foreground on our pty and keeps its own pty for
 * the command: it reads our size when it starts and hears of later sizes by SIGWINCH, handled
 * apart from its copying of stdin.  A size that arrives just after the start can so reach the
 * command later than the input typed after it (`stty size` then sees 0 0).  Clients send the
 * size first, so an exec with a tty waits a moment for it before it starts. */
static bool
waits_for_size (Rc *rc)
{
  /* SPDY clients may open the resize stream (v3 on) just after the others. */
  return rc->req->argv != NULL && (rc->req->flags & CRISP_MONITOR_SESSION_TTY)
         && rc->size.ws_row == 0 && (rc->ws || rc->req->version >= 3);
}

static bool
wait_streams (Rc *rc)
{
  uint64_t deadline = now_ms () + STREAMS_TIMEOUT_MS, size_deadline = 0;
  while (!rc->client_gone)
    {
      uint64_t now = now_ms ();
      if (!streams_ready (rc))
        ;
      else if (size_deadline == 0 && waits_for_size (rc))
        deadline = size_deadline = now + SIZE_WAIT_MS;
      else if (size_deadline == 0 || !waits_for_size (rc) || now >= size_deadline)
        break;
      if (now >= deadline)
        return false;
      struct pollfd p = { rc->fd, POLLIN | (rc->out.len ? POLLOUT : 0), 0 };
      int r = poll (&p, 1, (int) (deadline - now));
      if (r < 0 && errno != EINTR)
        return false;
      if (p.revents & POLLOUT)
        send_out (rc);
      if (p.revents & (POLLIN | POLLHUP | POLLERR))
        pump_client (rc);
    }
  return !rc->client_gone;
}

/* ---- the end ---- */

size_t
crisp_rc_status_message (uint32_t version, int code, const char *failure, char *buf, size_t size)
{
  int n = 0;
  if (version >= 4 && failure != NULL)
    {
      /* The failure is crisp's own text: no quotes or backslashes to escape, but be safe. */
      char clean[512];
      size_t j = 0;
      for (size_t i = 0; failure[i] && j + 1 < sizeof clean; i++)
        clean[j++] = failure[i] == '"' || failure[i] == '\\' || (unsigned char) failure[i] < 0x20
                         ? ' '
                         : failure[i];
      clean[j] = '\0';
      n = snprintf (buf, size,
                    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                    "\"status\":\"Failure\",\"message\":\"%s\",\"reason\":\"InternalError\"}",
                    clean);
    }
  else if (version >= 4 && code == 0)
    n = snprintf (buf, size,
                  "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                  "\"status\":\"Success\"}");
  else if (version >= 4)
    n = snprintf (buf, size,
                  "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                  "\"status\":\"Failure\",\"message\":\"command terminated with non-zero exit "
                  "code: %d\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{"
                  "\"reason\":\"ExitCode\",\"message\":\"%d\"}]}}",
                  code, code);
  else if (failure != NULL)
    n = snprintf (buf, size, "%s", failure);
  else if (code != 0)
    n = snprintf (buf, size, "command terminated with non-zero exit code: %d", code);
  if (n < 0)
    return 0;
  return (size_t) n < size ? (size_t) n : size - 1;
}

/* The exit on the error channel, then the end of every channel, then a bounded flush, a
 * half-close and a short linger so the client reads everything before the socket closes. */
static void
finish (Rc *rc, int code, const char *failure)
{
  char msg[1024];
  size_t n = crisp_rc_status_message (rc->req->version, code, failure, msg, sizeof msg);
  if (n > 0)
    put_channel (rc, CH_ERROR, msg, n);
  if (rc->write_dead)
    return;
  if (rc->closing)
    ; /* the CLOSE or GOAWAY already queued ends it */
  else if (rc->ws)
    crisp_ws_put_close (&rc->out, CRISP_WS_CLOSE_NORMAL, "");
  else
    for (int ch = 0; ch < N_CH; ch++)
      if (rc->sid[ch] != 0 && ch != CH_STDIN && ch != CH_RESIZE)
        crisp_spdy_put_data (&rc->out, rc->sid[ch], CRISP_SPDY_FLAG_FIN, NULL, 0);
  flush_out (rc, FLUSH_TIMEOUT_MS);
  shutdown (rc->fd, SHUT_WR);
  uint64_t deadline = now_ms () + LINGER_MS;
  uint8_t buf[4096];
  for (;;)
    {
      uint64_t now = now_ms ();
      struct pollfd p = { rc->fd, POLLIN, 0 };
      if (now >= deadline || poll (&p, 1, (int) (deadline - now)) <= 0
          || recv (rc->fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
        return;
    }
}

/* ---- exec ---- */

static int
open_pty (int *slave)
{
  int master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[128];
  if (master < 0)
    return -errno;
  if (grantpt (master) < 0 || unlockpt (master) < 0 || ptsname_r (master, name, sizeof name) != 0
      || (*slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
    {
      int e = errno;
      close (master);
      return -e;
    }
  return master;
}

/* Starts the runtime: with a tty on a pty the session opens (the runtime, seeing a terminal,
 * makes the command's own pty and copies between the two, passing on size changes), else on
 * pipes.  fds[]: stdout, stderr (pipes, read ends) or -1. */
static pid_t
spawn_exec (Rc *rc, int fds[2])
{
  const CrispRcSession *s = rc->req;
  bool tty = s->flags & CRISP_MONITOR_SESSION_TTY;
  bool in = s->flags & CRISP_MONITOR_SESSION_STDIN;
  size_t argc = 0;
  while (s->argv[argc])
    argc++;
  char **argv = calloc (argc + 2, sizeof *argv);
  if (argv == NULL)
    return -ENOMEM;
  /* `exec` is followed by its options: --tty goes right after it. */
  size_t j = 0;
  for (size_t i = 0; i < argc; i++)
    {
      argv[j++] = s->argv[i];
      if (tty && strcmp (s->argv[i], "exec") == 0 && j == i + 1)
        argv[j++] = (char *) "--tty";
    }
  int slave = -1, pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
  int r = 0;
  if (tty)
    r = rc->pty = open_pty (&slave);
  if (tty && r >= 0)
    apply_size (rc); /* before the runtime starts: it reads the size once, at its start */
  else if ((in && pipe2 (pin, O_CLOEXEC) < 0) || pipe2 (pout, O_CLOEXEC) < 0
           || pipe2 (perr, O_CLOEXEC) < 0)
    r = -errno;
  pid_t pid = r < 0 ? r : fork ();
  if (pid == 0)
    {
      sigset_t all;
      sigemptyset (&all);
      sigprocmask (SIG_SETMASK, &all, NULL);
      signal (SIGPIPE, SIG_DFL);
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (tty)
        {
          setsid ();
          ioctl (slave, TIOCSCTTY, 0);
          dup2 (slave, 0), dup2 (slave, 1), dup2 (slave, 2);
        }
      else
        dup2 (in ? pin[0] : null, 0), dup2 (pout[1], 1), dup2 (perr[1], 2);
      execv (argv[0], argv);
      _exit (127);
    }
  if (pid < 0 && r == 0)
    r = -errno;
  free (argv);
  int *ends[] = { &slave, &pin[0], &pout[1], &perr[1] };
  for (size_t i = 0; i < CRISP_N_ELEMENTS (ends); i++)
    if (*ends[i] >= 0)
      close (*ends[i]);
  if (r < 0)
    {
      int *rest[] = { &pin[1], &pout[0], &perr[0], &rc->pty };
      for (size_t i = 0; i < CRISP_N_ELEMENTS (rest); i++)
        if (*rest[i] >= 0)
          close (*rest[i]), *rest[i] = -1;
      return r;
    }
  fds[0] = tty ? fcntl (rc->pty, F_DUPFD_CLOEXEC, 3) : pout[0];
  fds[1] = perr[0];
  rc->in_fd = tty && in ? fcntl (rc->pty, F_DUPFD_CLOEXEC, 3) : pin[1];
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0)
      crisp_fd_set_nonblock (fds[i], true);
  if (rc->in_fd >= 0)
    crisp_fd_set_nonblock (rc->in_fd, true);
  return pid;
}

static void
kill_exec (Rc *rc, pid_t pid, int sig)
{
  if (sig == SIGKILL && rc->req->pid_file != NULL)
    {
      _cleanup_free_ char *buf = NULL;
      if (crisp_read_all_at (AT_FDCWD, rc->req->pid_file, 64, &buf, NULL) == 0)
        {
          long p = strtol (buf, NULL, 10);
          if (p > 1)
            kill ((pid_t) p, SIGKILL);
        }
    }
  kill (pid, sig); /* runc forwards SIGTERM and SIGHUP to the command */
}

/* Copies one chunk of the command's output to its channel.  false at its end (EOF, or EIO
 * from a pty whose other side is gone). */
static bool
pump_output (Rc *rc, int fd, int ch)
{
  uint8_t buf[CHUNK];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  if (rc->want[ch] && !rc->client_gone)
    put_channel (rc, ch, buf, (size_t) n);
  return true;
}

static int
exit_code_of (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return 255;
}

static int
serve_exec (Rc *rc)
{
  int fds[2] = { -1, -1 };
  pid_t pid = spawn_exec (rc, fds); /* applies a size that came with the streams */
  if (pid < 0)
    {
      finish (rc, -1, "starting the OCI runtime's exec failed");
      return pid;
    }
  apply_size (rc);
  rc->started = true;
  /* With a tty, runc sets our pty raw, starts the command, starts copying our pty to the
   * command's, writes the pid file and only then gives the command's pty its size: input that
   * came before then could be echoed twice, or reach a command that asks for its size before
   * it has one.  Input waits until the pid file is there and a moment more (or, without one,
   * a fixed while); input that comes later flows at once. */
  if (rc->req->flags & CRISP_MONITOR_SESSION_TTY)
    {
      rc->hold_for_pid_file = rc->req->pid_file != NULL;
      rc->in_hold_until
          = now_ms () + (rc->hold_for_pid_file ? TTY_START_WAIT_MS : TTY_INPUT_HOLD_MS);
    }
  flush_stdin (rc);
  int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  /* With a tty the runtime's own messages go to the terminal, so stderr is stdout. */
  int out_ch[2] = { CH_STDOUT, CH_STDERR };
  bool reaped = false;
  int status = 0;
  uint64_t kill_at = 0;
  while (fds[0] >= 0 || fds[1] >= 0 || !reaped)
    {
      if (rc->hold_for_pid_file && access (rc->req->pid_file, F_OK) == 0)
        {
          rc->hold_for_pid_file = false;
          rc->in_hold_until = now_ms () + TTY_AFTER_PID_FILE_MS;
          apply_size (rc); /* once more, now that runc passes changes on */
        }
      if (rc->in_hold_until != 0 && now_ms () >= rc->in_hold_until)
        {
          rc->hold_for_pid_file = false;
          rc->in_hold_until = 0;
          flush_stdin (rc);
        }
      if (rc->client_gone && kill_at == 0)
        {
          /* A terminal whose user left hangs up (an interactive shell ignores SIGTERM);
           * otherwise the command is asked to stop, then killed after the grace. */
          kill_exec (rc, pid, rc->req->flags & CRISP_MONITOR_SESSION_TTY ? SIGHUP : SIGTERM);
          kill_at = now_ms () + KILL_GRACE_MS;
        }
      if (kill_at != 0 && now_ms () >= kill_at && !reaped)
        {
          kill_exec (rc, pid, SIGKILL);
          kill_at = UINT64_MAX;
        }
      bool out_full = rc->out.len >= OUT_HIGH && !rc->client_gone;
      struct pollfd p[5] = {
        { rc->client_gone ? -1 : rc->fd,
          (rc->in.len >= IN_HIGH ? 0 : POLLIN) | (rc->out.len ? POLLOUT : 0), 0 },
        { out_full ? -1 : fds[0], POLLIN, 0 },
        { out_full ? -1 : fds[1], POLLIN, 0 },
        { rc->in.len > 0 && rc->in_hold_until == 0 ? rc->in_fd : -1, POLLOUT, 0 },
        { reaped ? -1 : pidfd, POLLIN, 0 },
      };
      /* Without a pidfd, look for the runtime's exit now and then. */
      int timeout = kill_at != 0 && kill_at != UINT64_MAX ? 200 : pidfd < 0 ? 200 : -1;
      if (rc->in_hold_until != 0)
        timeout = 20;
      if (reaped && !out_full)
        timeout = 0; /* only what is already in the pipes is still copied */
      int r = poll (p, CRISP_N_ELEMENTS (p), timeout);
      if (r < 0 && errno != EINTR)
        break;
      if (p[0].revents & POLLOUT)
        send_out (rc);
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        pump_client (rc);
      if (p[3].revents)
        flush_stdin (rc);
      for (int i = 0; i < 2; i++)
        if (p[i + 1].revents && !pump_output (rc, fds[i], out_ch[i]))
          close (fds[i]), fds[i] = -1;
      if (!reaped && (pidfd < 0 || p[4].revents) && waitpid (pid, &status, WNOHANG) == pid)
        reaped = true;
      /* Once the runtime is gone, an empty pipe is the end even if a background process of
       * the command still holds it open. */
      if (reaped && r == 0 && !out_full)
        for (int i = 0; i < 2; i++)
          if (fds[i] >= 0)
            close (fds[i]), fds[i] = -1;
      if (rc->client_gone && rc->write_dead && reaped)
        break;
    }
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0)
      close (fds[i]);
  if (pidfd >= 0)
    close (pidfd);
  close_in_fd (rc);
  if (rc->pty >= 0)
    close (rc->pty), rc->pty = -1;
  while (!reaped && waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  int code = exit_code_of (status);
  finish (rc, code, NULL);
  return code;
}

/* ---- attach ---- */

static int
serve_attach (Rc *rc)
{
  bool tty = rc->req->flags & CRISP_MONITOR_SESSION_TTY;
  if (rc->attach_fd < 0)
    {
      finish (rc, -1, "the container is not running");
      return -ESRCH;
    }
  rc->started = true;
  apply_size (rc);
  flush_stdin (rc);
  uint8_t *buf = malloc (1 + CRISP_MONITOR_MSG_MAX);
  if (buf == NULL)
    return -ENOMEM;
  while (!rc->client_gone)
    {
      bool out_full = rc->out.len >= OUT_HIGH;
      struct pollfd p[2] = {
        { rc->fd, POLLIN | (rc->out.len ? POLLOUT : 0), 0 },
        { out_full ? -1 : rc->attach_fd, POLLIN, 0 },
      };
      if (poll (p, 2, -1) < 0 && errno != EINTR)
        break;
      if (p[0].revents & POLLOUT)
        send_out (rc);
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        pump_client (rc);
      if (p[1].revents)
        {
          ssize_t n = recv (rc->attach_fd, buf, 1 + CRISP_MONITOR_MSG_MAX, MSG_DONTWAIT);
          if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
          if (n <= 0)
            break; /* the container exited */
          int ch = buf[0] == CRISP_MONITOR_STREAM_STDOUT   ? CH_STDOUT
                   : buf[0] == CRISP_MONITOR_STREAM_STDERR ? (tty ? CH_STDOUT : CH_STDERR)
                                                           : -1;
          if (ch >= 0 && n > 1 && rc->want[ch])
            put_channel (rc, ch, buf + 1, (size_t) n - 1);
          send_out (rc);
        }
    }
  free (buf);
  finish (rc, 0, NULL);
  return 0;
}

int
crisp_rc_serve (const CrispRcSession *s)
{
  Rc rc = {
    .req = s,
    .fd = s->fd,
    .ws = s->framing == CRISP_MONITOR_FRAMING_WEBSOCKET,
    .base64 = s->flags & CRISP_MONITOR_SESSION_BASE64,
    .in_fd = -1,
    .attach_fd = s->attach_fd,
    .pty = -1,
  };
  bool tty = s->flags & CRISP_MONITOR_SESSION_TTY;
  rc.want[CH_STDIN] = s->flags & CRISP_MONITOR_SESSION_STDIN;
  rc.want[CH_STDOUT] = s->flags & CRISP_MONITOR_SESSION_STDOUT;
  rc.want[CH_STDERR] = (s->flags & CRISP_MONITOR_SESSION_STDERR) && !tty;
  rc.want[CH_ERROR] = true;
  rc.want[CH_RESIZE] = true;
  int r = -ENOMEM;
  if (rc.ws ? (rc.wsc = crisp_ws_new ()) == NULL : (rc.spdy = crisp_spdy_new ()) == NULL)
    goto out;
  crisp_fd_set_nonblock (rc.fd, true);
  r = crisp_buf_append (&rc.out, s->response, s->response_len);
  if (r == 0 && rc.ws)
    {
      /* Like the kubelet: one empty message on the lowest channel written, to tell the
       * client the session is established. */
      int first = rc.want[CH_STDOUT] ? CH_STDOUT : rc.want[CH_STDERR] ? CH_STDERR : CH_ERROR;
      put_channel (&rc, first, NULL, 0);
    }
  if (r == 0 && s->leftover_len > 0)
    handle_input (&rc, s->leftover, s->leftover_len);
  send_out (&rc);
  if (r < 0 || !wait_streams (&rc))
    {
      flush_out (&rc, 1000);
      r = r < 0 ? r : -ECONNABORTED;
      goto out;
    }
  r = s->argv != NULL ? serve_exec (&rc) : serve_attach (&rc);
out:
  crisp_buf_clear (&rc.out);
  crisp_buf_clear (&rc.in);
  crisp_buf_clear (&rc.scratch);
  if (rc.spdy)
    crisp_spdy_free (rc.spdy);
  if (rc.wsc)
    crisp_ws_free (rc.wsc);
  close (rc.fd);
  return r;
}
