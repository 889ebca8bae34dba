/* One exec session over SPDY/3.1 (remotecommand channel.k8s.io v1-v4, no tty): waits for
 * the client's streams, runs `<runtime> --root <root> exec <id> <cmd...>` as crisp's child
 * with pipes, copies stdin/stdout/stderr between the streams and the pipes, and reports
 * the exit on the error stream (a metav1.Status in v4, plain text before). Blocking I/O in
 * the connection's own thread; every read is bounded by a fixed buffer. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crisp-base.h"
#include "pkg/streaming/spdy.h"
#include "streaming.h"

#define STREAMS_TIMEOUT_MS 30000
#define CHUNK 32768
#define KILL_GRACE_MS 5000

typedef struct
{
  int fd;
  const char *protocol;
  CrispExecRequest *req;
  CrispSpdy *spdy;
  GByteArray *out; /* frames waiting to be sent */
  guint32 error_id, stdin_id, stdout_id, stderr_id, resize_id;
  int child_stdin; /* -1 when closed or not requested */
  gboolean client_gone;
} Session;

static int
flush_out (Session *s)
{
  const guint8 *p = s->out->data;
  gsize len = s->out->len;
  while (len > 0)
    {
      ssize_t n = send (s->fd, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_byte_array_set_size (s->out, 0);
          s->client_gone = TRUE;
          return -errno;
        }
      p += n;
      len -= n;
    }
  g_byte_array_set_size (s->out, 0);
  return 0;
}

static void
close_stdin (Session *s)
{
  if (s->child_stdin >= 0)
    close (s->child_stdin);
  s->child_stdin = -1;
}

static int
write_stdin (Session *s, const guint8 *p, gsize len)
{
  while (len > 0 && s->child_stdin >= 0)
    {
      ssize_t n = write (s->child_stdin, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          close_stdin (s); /* the command closed its stdin: drop the rest */
          return 0;
        }
      p += n;
      len -= n;
    }
  return 0;
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
        return crisp_spdy_put_headers (s->spdy, s->out, CRISP_SPDY_SYN_REPLY, 0, f->stream_id, none)
                   ? 0
                   : -ENOMEM;
      }
    case CRISP_SPDY_DATA:
      if (f->stream_id != 0 && f->stream_id == s->stdin_id)
        {
          write_stdin (s, f->data, f->len);
          if (f->flags & CRISP_SPDY_FLAG_FIN)
            close_stdin (s);
        }
      return 0; /* resize and anything else: no tty, nothing to resize */
    case CRISP_SPDY_RST_STREAM:
      if (f->stream_id == s->stdin_id)
        close_stdin (s);
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

static GPid
spawn_exec (Session *s, int *out_fd, int *err_fd, GError **error)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, s->req->runtime_path);
  g_ptr_array_add (argv, "--root");
  g_ptr_array_add (argv, s->req->runtime_root);
  g_ptr_array_add (argv, "exec");
  g_ptr_array_add (argv, s->req->container_id);
  for (char **c = s->req->cmd; *c; c++)
    g_ptr_array_add (argv, *c);
  g_ptr_array_add (argv, NULL);
  GSpawnFlags flags = G_SPAWN_DO_NOT_REAP_CHILD | (s->req->in ? 0 : G_SPAWN_STDIN_FROM_DEV_NULL);
  GPid pid = 0;
  if (!g_spawn_async_with_pipes (NULL, (char **) argv->pdata, NULL, flags, NULL, NULL, &pid,
                                 s->req->in ? &s->child_stdin : NULL, out_fd, err_fd, error))
    return 0;
  return pid;
}

/* Copies one pipe's chunk to its stream (or drops it if the client did not ask for it). */
static gboolean
pump_pipe (Session *s, int fd, guint32 stream_id)
{
  guint8 buf[CHUNK];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && errno == EINTR)
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

/* Copies until both output pipes end; stops the command if the client goes away. */
static void
copy_loop (Session *s, GPid pid, int out_fd, int err_fd)
{
  gint64 kill_at = 0;
  while (out_fd >= 0 || err_fd >= 0)
    {
      struct pollfd p[3] = { { s->client_gone ? -1 : s->fd, POLLIN, 0 },
                             { out_fd, POLLIN, 0 },
                             { err_fd, POLLIN, 0 } };
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
      if (poll (p, 3, kill_at ? 200 : -1) < 0 && errno != EINTR)
        break;
      if (p[0].revents)
        pump_client (s);
      if (p[1].revents && !pump_pipe (s, out_fd, s->stdout_id))
        {
          close (out_fd);
          out_fd = -1;
        }
      if (p[2].revents && !pump_pipe (s, err_fd, s->stderr_id))
        {
          close (err_fd);
          err_fd = -1;
        }
    }
  if (out_fd >= 0)
    close (out_fd);
  if (err_fd >= 0)
    close (err_fd);
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
  if (g_str_equal (s->protocol, "v4.channel.k8s.io"))
    msg = failure ? g_strdup_printf ("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                                     "\"status\":\"Failure\",\"message\":\"%s\"}",
                                     failure)
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

void
crisp_streaming_serve_exec (int fd, const char *protocol, CrispExecRequest *req,
                            const guint8 *leftover, gsize leftover_len)
{
  g_autoptr (CrispSpdy) spdy = crisp_spdy_new ();
  g_autoptr (GByteArray) out = g_byte_array_new ();
  Session s = { .fd = fd, .protocol = protocol, .req = req, .spdy = spdy, .out = out,
                .child_stdin = -1 };
  if (leftover_len > 0
      && (crisp_spdy_feed (spdy, leftover, leftover_len, on_frame, &s) < 0 || flush_out (&s) < 0))
    return;
  if (!wait_streams (&s))
    return;
  g_autoptr (GError) error = NULL;
  int out_fd = -1, err_fd = -1;
  GPid pid = spawn_exec (&s, &out_fd, &err_fd, &error);
  if (pid == 0)
    {
      g_warning ("exec in container '%s': %s", req->container_id, error->message);
      finish (&s, -1, "starting the OCI runtime failed");
      linger (&s);
      return;
    }
  copy_loop (&s, pid, out_fd, err_fd);
  close_stdin (&s);
  int status = 0;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  g_spawn_close_pid (pid);
  finish (&s, exit_code_of (status), NULL);
  linger (&s);
}
