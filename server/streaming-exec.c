/* One exec session over SPDY/3.1 (remotecommand channel.k8s.io v1-v4): waits for the
 * client's streams, runs `<runtime> --root <root> exec [--tty] <id> <cmd...>` as crisp's
 * child with pipes (or, with a tty, on a pty crisp opens),
 * copies stdin/stdout/stderr between the streams and the child, applies resize messages,
 * and reports the exit on the error stream (a metav1.Status in v4, plain text before).
 * Blocking I/O in the connection's own thread; every read is bounded by a fixed buffer. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "crisp-base.h"
#include "monitor-client.h"
#include "monitor-protocol.h"
#include "pkg/streaming/codec-glib.h"
#include "streaming.h"

#define STREAMS_TIMEOUT_MS 30000
#define CHUNK 32768
#define KILL_GRACE_MS 5000
#define RESIZE_MAX 4096
/* The client is not read while this much stdin waits for the command to take it: the
 * command's pace holds the client back instead of crisp's memory. */
#define STDIN_HIGH (256 * 1024)

typedef struct
{
  int fd;
  const char *protocol;
  CrispExecRequest *req;
  CrispSpdy *spdy;
  CrispBuf *out; /* frames waiting to be sent */
  guint32 error_id, stdin_id, stdout_id, stderr_id, resize_id;
  int child_stdin;         /* -1 when closed or not requested; a dup of the pty master with a tty */
  int pty;                 /* the pty master, or -1 */
  int attach;              /* Attach: the monitor's attach socket, or -1 */
  gboolean started;        /* the command runs: stdin goes to child_stdin from now on */
  GByteArray *early_stdin; /* stdin not yet taken by the command (bounded, see STDIN_HIGH) */
  gboolean early_fin;      /* the client finished stdin: close it once early_stdin drains */
  GString *resize;         /* resize messages not yet complete */
  struct winsize size;     /* the last size asked for; applied when the pty arrives */
  gboolean client_gone;
} Session;

static int
flush_out (Session *s)
{
  int r = crisp_streaming_send_all (s->fd, s->out->data, s->out->len);
  crisp_buf_consume (s->out, s->out->len);
  if (r < 0)
    s->client_gone = TRUE;
  return r;
}

static void
close_stdin (Session *s)
{
  if (s->child_stdin >= 0)
    close (s->child_stdin);
  s->child_stdin = -1;
}

/* One tagged packet to the monitor's attach socket; a monitor gone away ends it. */
static void
attach_send (Session *s, guint8 tag, const void *data, gsize len)
{
  guint8 buf[1 + CRISP_MONITOR_OUTPUT_CHUNK];
  buf[0] = tag;
  if (len > 0) /* CLOSE_STDIN has no data (and memcpy must not see NULL) */
    memcpy (buf + 1, data, len);
  while (s->attach >= 0 && send (s->attach, buf, len + 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
    ;
}

/* Writes what the non-blocking stdin pipe (or pty) takes now; closes it once the client
 * finished stdin and everything went in. A command that closed its stdin drops the rest. */
static void
flush_stdin (Session *s)
{
  while (s->child_stdin >= 0 && s->early_stdin->len > 0)
    {
      ssize_t n = write (s->child_stdin, s->early_stdin->data, s->early_stdin->len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return;
      if (n < 0)
        {
          close_stdin (s);
          break;
        }
      g_byte_array_remove_range (s->early_stdin, 0, n);
    }
  if (s->child_stdin < 0 || s->early_fin)
    {
      g_byte_array_set_size (s->early_stdin, 0);
      close_stdin (s);
    }
}

static int
write_stdin (Session *s, const guint8 *p, gsize len)
{
  if (s->started && s->attach >= 0)
    {
      for (gsize off = 0; off < len; off += CRISP_MONITOR_OUTPUT_CHUNK)
        attach_send (s, CRISP_MONITOR_STREAM_STDIN, p + off,
                     MIN (len - off, CRISP_MONITOR_OUTPUT_CHUNK));
      return 0;
    }
  if (s->started && s->child_stdin < 0)
    return 0; /* closed: nobody reads it */
  if (s->early_stdin->len + len > STDIN_HIGH + CRISP_SPDY_MAX_FRAME)
    return -ENOBUFS;
  g_byte_array_append (s->early_stdin, p, len);
  if (s->started)
    flush_stdin (s);
  return 0;
}

static void
apply_size (Session *s)
{
  if (s->pty >= 0 && s->size.ws_row > 0)
    ioctl (s->pty, TIOCSWINSZ, &s->size);
  guint16 rc[2] = { s->size.ws_row, s->size.ws_col };
  if (s->attach >= 0 && s->size.ws_row > 0)
    attach_send (s, CRISP_MONITOR_ATTACH_RESIZE, rc, sizeof rc);
}

/* Applies every complete {"Width":..,"Height":..} object received on the resize stream
 * (the client writes one JSON object per terminal size change). */
static void
on_resize (Session *s, const guint8 *p, gsize len)
{
  if (s->resize->len + len > RESIZE_MAX)
    g_string_truncate (s->resize, 0); /* garbage: start over rather than grow */
  g_string_append_len (s->resize, (const char *) p, len);
  char *end;
  while ((end = strchr (s->resize->str, '}')) != NULL)
    {
      gsize n = end - s->resize->str + 1;
      g_autofree char *obj = g_strndup (s->resize->str, n);
      g_string_erase (s->resize, 0, n);
      g_autoptr (JsonParser) parser = json_parser_new ();
      if (!json_parser_load_from_data (parser, obj, -1, NULL)
          || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        continue;
      JsonObject *o = json_node_get_object (json_parser_get_root (parser));
      gint64 w = json_object_get_int_member_with_default (o, "Width", 0);
      gint64 h = json_object_get_int_member_with_default (o, "Height", 0);
      if (w > 0 && h > 0)
        {
          s->size
              = (struct winsize){ .ws_row = MIN (h, G_MAXUINT16), .ws_col = MIN (w, G_MAXUINT16) };
          apply_size (s);
        }
    }
}

static guint32 *
slot_for (Session *s, const char *type)
{
  if (type == NULL)
    return NULL;
  if (g_str_equal (type, "error"))
    return &s->error_id;
  if (g_str_equal (type, "stdin") && s->req->in)
    return &s->stdin_id;
  if (g_str_equal (type, "stdout") && s->req->out)
    return &s->stdout_id;
  if (g_str_equal (type, "stderr") && s->req->err && !s->req->tty)
    return &s->stderr_id;
  if (g_str_equal (type, "resize"))
    return &s->resize_id;
  return NULL;
}

static int
on_frame (const CrispSpdyFrame *f, gpointer data)
{
  Session *s = data;
  switch (f->type)
    {
    case CRISP_SPDY_SYN_STREAM:
      {
        guint32 *slot = slot_for (s, crisp_spdy_header (f, "streamtype"));
        if (slot == NULL || *slot != 0 || f->stream_id == 0)
          {
            crisp_spdy_put_rst_stream (s->out, f->stream_id, CRISP_SPDY_RST_REFUSED_STREAM);
            return 0;
          }
        *slot = f->stream_id;
        const char *none[] = { NULL };
        return crisp_spdy_put_headers (s->spdy, s->out, CRISP_SPDY_SYN_REPLY, 0, f->stream_id,
                                       none);
      }
    case CRISP_SPDY_DATA:
      if (f->stream_id != 0 && f->stream_id == s->stdin_id)
        {
          if (write_stdin (s, f->data, f->len) < 0)
            return -ENOBUFS;
          if (f->flags & CRISP_SPDY_FLAG_FIN)
            {
              s->early_fin = TRUE;
              if (s->started && s->attach >= 0)
                attach_send (s, CRISP_MONITOR_ATTACH_CLOSE_STDIN, NULL, 0);
              else if (s->started)
                flush_stdin (s);
            }
        }
      if (f->stream_id != 0 && f->stream_id == s->resize_id)
        on_resize (s, f->data, f->len);
      return 0;
    case CRISP_SPDY_RST_STREAM:
      if (f->stream_id == s->stdin_id)
        {
          g_byte_array_set_size (s->early_stdin, 0);
          close_stdin (s);
        }
      return 0;
    case CRISP_SPDY_PING:
      crisp_spdy_put_ping (s->out, f->value);
      return 0;
    case CRISP_SPDY_GOAWAY:
      s->client_gone = TRUE;
      return 0;
    default:
      return 0;
    }
}

/* Reads what the client sent and handles its frames; FALSE once the client is gone. */
static gboolean
pump_client (Session *s)
{
  guint8 buf[CHUNK];
  ssize_t n = recv (s->fd, buf, sizeof buf, 0);
  if (n < 0 && errno == EINTR)
    return TRUE;
  if (n <= 0 || crisp_spdy_feed (s->spdy, buf, n, on_frame, s) < 0)
    {
      s->client_gone = TRUE;
      return FALSE;
    }
  return flush_out (s) == 0 && !s->client_gone;
}

static gboolean
streams_ready (Session *s)
{
  return s->error_id != 0 && (!s->req->in || s->stdin_id != 0)
         && (!s->req->out || s->stdout_id != 0)
         && (!s->req->err || s->req->tty || s->stderr_id != 0);
}

static gboolean
wait_streams (Session *s)
{
  gint64 deadline = g_get_monotonic_time () + STREAMS_TIMEOUT_MS * 1000;
  while (!streams_ready (s))
    {
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      struct pollfd p = { s->fd, POLLIN, 0 };
      if (left_ms <= 0 || poll (&p, 1, (int) left_ms) <= 0 || !pump_client (s))
        return FALSE;
    }
  return TRUE;
}

/* A pty pair for a tty exec: the runtime gets the slave as its stdio and controlling
 * terminal and, seeing a terminal, makes its own pty for the command and copies between
 * the two, forwarding size changes (SIGWINCH on our slave) to it. runc refuses
 * --console-socket unless it detaches, and a detached exec leaves crisp no exit status. */
static int
open_pty (int *slave)
{
  _cleanup_close_ int master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[128];
  if (master < 0 || grantpt (master) < 0 || unlockpt (master) < 0
      || ptsname_r (master, name, sizeof name) != 0)
    return -1;
  *slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0)
    return -1;
  return take_fd (&master);
}

/* In the child before exec: a new session whose controlling terminal is the slave. */
static void
child_tty_setup (gpointer data)
{
  int slave = GPOINTER_TO_INT (data);
  setsid ();
  ioctl (slave, TIOCSCTTY, 0);
  dup2 (slave, 0);
  dup2 (slave, 1);
  dup2 (slave, 2);
}

static GPid
spawn_exec (Session *s, int slave, int *out_fd, int *err_fd, GError **error)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, s->req->runtime_path);
  g_ptr_array_add (argv, "--root");
  g_ptr_array_add (argv, s->req->runtime_root);
  g_ptr_array_add (argv, "exec");
  if (slave >= 0)
    g_ptr_array_add (argv, "--tty");
  g_ptr_array_add (argv, s->req->container_id);
  for (char **c = s->req->cmd; *c; c++)
    g_ptr_array_add (argv, *c);
  g_ptr_array_add (argv, NULL);
  GPid pid = 0;
  char **args = (char **) argv->pdata;
  if (slave >= 0)
    return g_spawn_async (NULL, args, NULL, G_SPAWN_DO_NOT_REAP_CHILD, child_tty_setup,
                          GINT_TO_POINTER (slave), &pid, error)
               ? pid
               : 0;
  GSpawnFlags flags = G_SPAWN_DO_NOT_REAP_CHILD | (s->req->in ? 0 : G_SPAWN_STDIN_FROM_DEV_NULL);
  if (!g_spawn_async_with_pipes (NULL, args, NULL, flags, NULL, NULL, &pid,
                                 s->req->in ? &s->child_stdin : NULL, out_fd, err_fd, error))
    return 0;
  return pid;
}

/* Copies one chunk from a pipe or the pty to its stream (dropped if the client did not ask
 * for it). FALSE at the end (EOF, or EIO from a pty whose other side is gone). */
static gboolean
pump_pipe (Session *s, int fd, guint32 stream_id)
{
  guint8 buf[CHUNK];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return TRUE;
  if (n <= 0)
    return FALSE;
  if (stream_id != 0 && !s->client_gone)
    {
      crisp_spdy_put_data (s->out, stream_id, 0, buf, n);
      flush_out (s);
    }
  return TRUE;
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* Copies until the runtime's pipes or pty end; stops the command if the client goes away.
 * fds: stdout pipe, stderr pipe, pty master (each may be -1). Sets *reaped if it collected
 * the runtime's exit into *status. */
static void
copy_loop (Session *s, GPid pid, int fds[3], int *status, gboolean *reaped)
{
  /* With a tty, the runtime's own output (its errors) goes to stdout: there is no stderr. */
  guint32 ids[3] = { s->stdout_id, s->stderr_id, s->stdout_id };
  gint64 kill_at = 0;
  while (fds[0] >= 0 || fds[1] >= 0 || fds[2] >= 0)
    {
      gboolean stdin_full = s->early_stdin->len >= STDIN_HIGH;
      struct pollfd p[5] = { { s->client_gone || stdin_full ? -1 : s->fd, POLLIN, 0 } };
      for (int i = 0; i < 3; i++)
        p[i + 1] = (struct pollfd){ fds[i], POLLIN, 0 };
      p[4] = (struct pollfd){ s->early_stdin->len > 0 ? s->child_stdin : -1, POLLOUT, 0 };
      if (s->client_gone && kill_at == 0)
        {
          kill (pid, SIGTERM); /* runc forwards it to the command */
          kill_at = g_get_monotonic_time () + KILL_GRACE_MS * 1000;
        }
      if (kill_at != 0 && g_get_monotonic_time () >= kill_at)
        {
          kill (pid, SIGKILL);
          break;
        }
      /* With a pty, the end of its output is EIO once the runtime is gone; a quiet pty is
       * also checked for the runtime's exit, in case something else holds the slave. */
      int r = poll (p, 5, kill_at || fds[2] >= 0 ? 200 : -1);
      if (r < 0 && errno != EINTR)
        break;
      if (r == 0 && fds[2] >= 0 && waitpid (pid, status, WNOHANG) == pid)
        {
          *reaped = TRUE;
          break;
        }
      if (p[4].revents)
        flush_stdin (s);
      if (p[0].revents)
        pump_client (s);
      for (int i = 0; i < 3; i++)
        if (p[i + 1].revents && !pump_pipe (s, fds[i], ids[i]))
          close_fd (&fds[i]);
    }
  for (int i = 0; i < 3; i++)
    close_fd (&fds[i]);
}

static char *
status_json (int code)
{
  if (code == 0)
    return g_strdup ("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                     "\"status\":\"Success\"}");
  return g_strdup_printf (
      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
      "\"message\":\"command terminated with non-zero exit code: %d\","
      "\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\","
      "\"message\":\"%d\"}]}}",
      code, code);
}

/* The exit on the error stream, then FIN on every stream crisp writes. */
static void
finish (Session *s, int code, const char *failure)
{
  g_autofree char *msg = NULL;
  g_autofree char *escaped = failure ? g_strescape (failure, NULL) : NULL;
  if (g_str_equal (s->protocol, "v4.channel.k8s.io"))
    msg = failure ? g_strdup_printf ("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                                     "\"status\":\"Failure\",\"message\":\"%s\"}",
                                     escaped)
                  : status_json (code);
  else if (failure || code != 0)
    msg = failure ? g_strdup (failure)
                  : g_strdup_printf ("command terminated with non-zero exit code: %d", code);
  if (msg && s->error_id)
    crisp_spdy_put_data (s->out, s->error_id, 0, msg, strlen (msg));
  guint32 ids[] = { s->error_id, s->stdout_id, s->stderr_id };
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    if (ids[i])
      crisp_spdy_put_data (s->out, ids[i], CRISP_SPDY_FLAG_FIN, NULL, 0);
  if (!s->client_gone)
    flush_out (s);
}

/* Lets the client read everything before the socket closes: a close with unread input
 * would reset the connection and could discard what crisp sent last. */
static void
linger (Session *s)
{
  shutdown (s->fd, SHUT_WR);
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;
  guint8 buf[4096];
  for (;;)
    {
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      struct pollfd p = { s->fd, POLLIN, 0 };
      if (left_ms <= 0 || poll (&p, 1, (int) left_ms) <= 0 || recv (s->fd, buf, sizeof buf, 0) <= 0)
        return;
    }
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

/* Bridges the attach socket and the streams until the container's output ends (it
 * exited) or the client leaves. */
static void
attach_loop (Session *s)
{
  guint32 err_id = s->req->tty ? s->stdout_id : s->stderr_id;
  while (!s->client_gone)
    {
      struct pollfd p[2] = { { s->fd, POLLIN, 0 }, { s->attach, POLLIN, 0 } };
      if (poll (p, 2, -1) < 0 && errno != EINTR)
        return;
      if (p[1].revents)
        {
          guint8 buf[1 + CRISP_MONITOR_MSG_MAX];
          ssize_t n = recv (s->attach, buf, sizeof buf, 0);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            return;
          guint32 id = buf[0] == CRISP_MONITOR_STREAM_STDOUT   ? s->stdout_id
                       : buf[0] == CRISP_MONITOR_STREAM_STDERR ? err_id
                                                               : 0;
          if (id != 0 && n > 1)
            {
              crisp_spdy_put_data (s->out, id, 0, buf + 1, n - 1);
              flush_out (s);
            }
        }
      if (p[0].revents)
        pump_client (s);
    }
}

static void
serve_attach (Session *s)
{
  int r
      = crisp_monitor_connect_socket (s->req->attach_dir, CRISP_MONITOR_SOCKET_ATTACH, &s->attach);
  if (r < 0)
    {
      s->attach = -1;
      g_autofree char *msg = g_strdup_printf ("attaching to container %s: %s", s->req->container_id,
                                              g_strerror (-r));
      finish (s, -1, msg);
      return;
    }
  s->started = TRUE;
  apply_size (s);
  write_stdin (s, s->early_stdin->data, s->early_stdin->len);
  g_byte_array_set_size (s->early_stdin, 0);
  if (s->early_fin)
    attach_send (s, CRISP_MONITOR_ATTACH_CLOSE_STDIN, NULL, 0);
  attach_loop (s);
  close (s->attach);
  s->attach = -1;
  finish (s, 0, NULL);
}

void
crisp_streaming_serve_exec (int fd, const char *protocol, CrispExecRequest *req,
                            const guint8 *leftover, gsize leftover_len)
{
  g_autoptr (CrispSpdy) spdy = crisp_spdy_new ();
  g_auto (CrispBuf) out = CRISP_BUF_INIT;
  if (spdy == NULL)
    return;
  g_autoptr (GString) resize = g_string_new (NULL);
  g_autoptr (GByteArray) early_stdin = g_byte_array_new ();
  Session s = { .fd = fd,
                .protocol = protocol,
                .req = req,
                .spdy = spdy,
                .out = &out,
                .child_stdin = -1,
                .pty = -1,
                .attach = -1,
                .resize = resize,
                .early_stdin = early_stdin };
  if (leftover_len > 0
      && (crisp_spdy_feed (spdy, leftover, leftover_len, on_frame, &s) < 0 || flush_out (&s) < 0))
    return;
  if (!wait_streams (&s))
    return;
  if (req->attach_dir != NULL)
    {
      serve_attach (&s);
      linger (&s);
      return;
    }
  g_autoptr (GError) error = NULL;
  _cleanup_close_ int slave = -1;
  if (req->tty && (s.pty = open_pty (&slave)) < 0)
    {
      finish (&s, -1, "opening a pty failed");
      linger (&s);
      return;
    }
  apply_size (&s); /* a size that arrived with the streams */
  int fds[3] = { -1, -1, s.pty };
  GPid pid = spawn_exec (&s, slave, &fds[0], &fds[1], &error);
  close_fd (&slave);
  if (pid == 0)
    {
      close_fd (&fds[2]);
      g_warning ("exec in container '%s': %s", req->container_id, error->message);
      finish (&s, -1, "starting the OCI runtime failed");
      linger (&s);
      return;
    }
  if (s.pty >= 0 && req->in)
    s.child_stdin = fcntl (s.pty, F_DUPFD_CLOEXEC, 3);
  if (s.child_stdin >= 0)
    fcntl (s.child_stdin, F_SETFL, fcntl (s.child_stdin, F_GETFL) | O_NONBLOCK);
  s.started = TRUE;
  if (req->in)
    flush_stdin (&s);
  int status = 0;
  gboolean reaped = FALSE;
  copy_loop (&s, pid, fds, &status, &reaped);
  s.pty = -1; /* closed by copy_loop */
  close_stdin (&s);
  while (!reaped && waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  g_spawn_close_pid (pid);
  finish (&s, exit_code_of (status), NULL);
  linger (&s);
}
