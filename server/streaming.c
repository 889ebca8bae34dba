/* The streaming server's HTTP/1.1 front end: it reads exactly one bounded request head per
 * connection, has pkg/streaming/upgrade.c judge it, takes the single-use token, and hands
 * the socket on: exec and attach to the container's monitor, port-forward to a session in a
 * thread of its own.  One thread accepts; each connection's head is read in a worker thread of
 * a bounded pool. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crisp-base.h"
#include "crisp-error.h"
#include "crisp-tsan.h"
#include "monitor-protocol.h"
#include "streaming.h"

#define HEAD_TIMEOUT_MS 10000
#define MAX_SESSIONS 64
#define LISTEN_BACKLOG 1024
#define MAX_PORT_FORWARDS 256
#define TOKENS_MAX 1000
#define TOKEN_TTL_US (60 * G_USEC_PER_SEC)

struct _CrispStreaming
{
  int listen_fd;
  GThread *acceptor; /* accepts connections and queues them on the pool */
  GThreadPool *pool; /* MAX_SESSIONS threads read heads and hand connections on */
  CrispStreamTokens *tokens;
  char *host; /* as it goes into URLs: IPv6 in brackets */
  guint16 port;
  gint stopping;      /* atomic */
  gint active;        /* connections and port-forward sessions being served (atomic) */
  gint port_forwards; /* port-forward sessions, each in a thread of its own (atomic) */
};

void
crisp_port_forward_request_free (CrispPortForwardRequest *req)
{
  if (req == NULL)
    return;
  g_free (req->pod_id);
  g_free (req->net_ns);
  g_free (req);
}

void
crisp_exec_request_free (CrispExecRequest *req)
{
  if (req == NULL)
    return;
  g_free (req->container_id);
  g_free (req->monitor_dir);
  g_strfreev (req->cmd);
  g_free (req);
}

void
crisp_streaming_send_status (int fd, const char *status, const char *body)
{
  g_autofree char *msg = g_strdup_printf ("HTTP/1.1 %s\r\nContent-Type: text/plain\r\n"
                                          "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                          status, strlen (body), body);
  crisp_send_all (fd, msg, strlen (msg));
}

gssize
crisp_streaming_read_head (int fd, GByteArray *buf)
{
  gint64 deadline = g_get_monotonic_time () + HEAD_TIMEOUT_MS * 1000;
  for (;;)
    {
      gssize end = crisp_upgrade_head_end (buf->data, buf->len);
      if (end == -EMSGSIZE)
        crisp_streaming_send_status (fd, "431 Request Header Fields Too Large",
                                     "request head too large\n");
      if (end != 0)
        return end;
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      struct pollfd p = { fd, POLLIN, 0 };
      if (left_ms <= 0 || poll (&p, 1, (int) left_ms) == 0)
        return -ETIMEDOUT;
      guint8 chunk[1024];
      ssize_t n = recv (fd, chunk, MIN (sizeof chunk, CRISP_UPGRADE_HEAD_MAX - buf->len), 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return n < 0 ? -errno : -ECONNRESET;
      g_byte_array_append (buf, chunk, n);
    }
}

static void
destroy_request (CrispStreamKind kind, gpointer req)
{
  if (kind == CRISP_STREAM_PORT_FORWARD)
    crisp_port_forward_request_free (req);
  else
    crisp_exec_request_free (req);
}

/* A port-forward session lasts as long as `kubectl port-forward` runs, hours maybe: it gets a
 * thread of its own (at most MAX_PORT_FORWARDS at once) rather than holding one of the pool's,
 * which would leave no thread for exec and attach hand-offs after 64 of them. */
typedef struct
{
  CrispStreaming *self;
  int fd;
  CrispPortForwardRequest *req;
  CrispUpgrade *u;
  char *reply;
  GBytes *rest;
} PortForwardJob;

static gpointer
port_forward_thread (gpointer data)
{
  PortForwardJob *j = data;
  gsize n;
  const guint8 *rest = g_bytes_get_data (j->rest, &n);
  crisp_streaming_serve_port_forward (j->fd, j->req, j->u, j->reply, rest, n);
  close (j->fd);
  crisp_port_forward_request_free (j->req);
  g_free (j->u);
  g_free (j->reply);
  g_bytes_unref (j->rest);
  CrispStreaming *self = j->self;
  g_free (j);
  g_atomic_int_dec_and_test (&self->port_forwards);
  g_atomic_int_dec_and_test (&self->active); /* the last touch of self */
  return NULL;
}

/* Starts the session in its own thread, which then owns req and u; FALSE (and an HTTP error
 * answered) when it cannot. */
static gboolean
start_port_forward (CrispStreaming *self, int fd, CrispPortForwardRequest *req, CrispUpgrade *u,
                    const char *reply, const guint8 *rest, gsize rest_len)
{
  if (g_atomic_int_add (&self->port_forwards, 1) >= MAX_PORT_FORWARDS)
    {
      g_atomic_int_dec_and_test (&self->port_forwards);
      crisp_streaming_send_status (fd, "503 Service Unavailable",
                                   "too many port-forward sessions at once\n");
      return FALSE;
    }
  PortForwardJob *j = g_new0 (PortForwardJob, 1);
  *j = (PortForwardJob){ self, fcntl (fd, F_DUPFD_CLOEXEC, 3), req, u, g_strdup (reply),
                         g_bytes_new (rest, rest_len) };
  g_atomic_int_inc (&self->active);
  GThread *t = j->fd < 0 ? NULL : g_thread_try_new ("crisp-pf", port_forward_thread, j, NULL);
  if (t != NULL)
    {
      g_thread_unref (t);
      return TRUE;
    }
  if (j->fd >= 0)
    close (j->fd);
  g_free (j->reply);
  g_bytes_unref (j->rest);
  g_free (j);
  g_atomic_int_dec_and_test (&self->active);
  g_atomic_int_dec_and_test (&self->port_forwards);
  crisp_streaming_send_status (fd, "503 Service Unavailable",
                               "no thread for the port-forward session\n");
  return FALSE;
}

static void
serve_connection (CrispStreaming *self, int fd)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  gssize head_len = crisp_streaming_read_head (fd, buf);
  if (head_len < 0)
    return;
  g_autofree CrispUpgrade *u = g_new (CrispUpgrade, 1);
  crisp_upgrade_parse ((const char *) buf->data, head_len, u);
  if (u->status != 101)
    return crisp_streaming_send_status (fd, u->status_line, u->message);
  gpointer req = crisp_stream_tokens_take (self->tokens, u->kind_name, u->token);
  if (req == NULL)
    return crisp_streaming_send_status (fd, "404 Not Found", "unknown, used or expired token\n");
  gboolean pf = u->kind == CRISP_STREAM_PORT_FORWARD;
  CrispStreamKind kind = u->kind;
  if (u->protocol == NULL)
    crisp_streaming_send_status (fd, "403 Forbidden",
                                 u->websocket ? "no supported Sec-WebSocket-Protocol offered\n"
                                              : "no supported X-Stream-Protocol-Version offered\n");
  else if (pf && u->websocket
           && !crisp_upgrade_set_ports (u, ((CrispPortForwardRequest *) req)->ports,
                                        ((CrispPortForwardRequest *) req)->n_ports))
    crisp_streaming_send_status (fd, u->status_line, u->message);
  else
    {
      char reply[512];
      gsize reply_len = crisp_upgrade_response (u, reply, sizeof reply);
      const guint8 *rest = buf->data + head_len;
      gsize rest_len = buf->len - head_len;
      if (reply_len == 0)
        crisp_streaming_send_status (fd, "500 Internal Server Error", "answer too long\n");
      else if (pf && start_port_forward (self, fd, req, u, reply, rest, rest_len))
        {
          req = NULL; /* the session's thread owns them now */
          u = NULL;
        }
      else if (!pf)
        crisp_streaming_hand_off (fd, u, req, (const guint8 *) reply, reply_len, rest, rest_len);
    }
  if (req != NULL)
    destroy_request (kind, req);
}

/* One accepted connection, in a thread of the pool. */
static void
serve_job (gpointer data, gpointer user_data)
{
  CrispStreaming *self = user_data;
  int fd = GPOINTER_TO_INT (data) - 1;
  CRISP_TSAN_ACQUIRE (&self->pool); /* the acceptor's accept4 of fd came first */
  serve_connection (self, fd);
  close (fd);
  g_atomic_int_dec_and_test (&self->active);
}

/* Accepts with a plain blocking accept4 () in a thread of its own (GLib's GSocketListener
 * crashed in its accept callback under a burst of 120 connections, GLib 2.74) and queues each
 * connection on the pool, whose queue has no bound: the backlog and the pool bound the work. */
static gpointer
accept_thread (gpointer data)
{
  CrispStreaming *self = data;
  while (!g_atomic_int_get (&self->stopping))
    {
      int fd = accept4 (self->listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            {
              g_warning ("streaming server: accept: %s; retrying", g_strerror (errno));
              g_usleep (100 * 1000);
              continue;
            }
          if (!g_atomic_int_get (&self->stopping))
            g_warning ("streaming server: accept: %s; no more connections", g_strerror (errno));
          break;
        }
      g_atomic_int_inc (&self->active);
      CRISP_TSAN_RELEASE (&self->pool); /* GLib's queue hands fd over out of TSan's sight */
      g_thread_pool_push (self->pool, GINT_TO_POINTER (fd + 1), NULL);
    }
  return NULL;
}

static int
listen_on (GInetAddress *inet, int port, guint16 *bound, GError **error)
{
  g_autoptr (GSocketAddress) want = g_inet_socket_address_new (inet, port);
  struct sockaddr_storage ss;
  socklen_t len = (socklen_t) g_socket_address_get_native_size (want);
  if (!g_socket_address_to_native (want, &ss, sizeof ss, error))
    return -1;
  _cleanup_close_ int fd = socket (ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
      || bind (fd, (struct sockaddr *) &ss, len) < 0 || listen (fd, LISTEN_BACKLOG) < 0)
    return crisp_throw_errno (error, -errno, "listening"), -1;
  len = sizeof ss;
  if (getsockname (fd, (struct sockaddr *) &ss, &len) < 0)
    return crisp_throw_errno (error, -errno, "getsockname"), -1;
  *bound = ntohs (ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                           : ((struct sockaddr_in *) &ss)->sin_port);
  return take_fd (&fd);
}

CrispStreaming *
crisp_streaming_new (const char *address, int port, GError **error)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);
  if (inet == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "streaming address '%s' is not an IP address", address),
           NULL;
  guint16 bound = 0;
  int fd = listen_on (inet, port, &bound, error);
  if (fd < 0)
    return crisp_prefix_error (error, "streaming server on %s:%d: ", address, port), NULL;
  CrispStreaming *self = g_new0 (CrispStreaming, 1);
  self->listen_fd = fd;
  self->tokens = crisp_stream_tokens_new (TOKENS_MAX, TOKEN_TTL_US);
  self->port = bound;
  self->host = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6
                   ? g_strdup_printf ("[%s]", address)
                   : g_strdup (address);
  self->pool = g_thread_pool_new (serve_job, self, MAX_SESSIONS, FALSE, error);
  self->acceptor
      = self->pool ? g_thread_try_new ("crisp-stream-accept", accept_thread, self, error) : NULL;
  if (self->acceptor == NULL)
    {
      if (self->pool)
        g_thread_pool_free (self->pool, TRUE, FALSE);
      close (self->listen_fd);
      crisp_stream_tokens_free (self->tokens);
      g_free (self->host);
      g_free (self);
      return crisp_prefix_error (error, "streaming server: "), NULL;
    }
  return self;
}

void
crisp_streaming_free (CrispStreaming *self)
{
  if (self == NULL)
    return;
  g_atomic_int_set (&self->stopping, 1);
  shutdown (self->listen_fd, SHUT_RDWR); /* wakes the acceptor: accept4 fails */
  g_thread_join (self->acceptor);
  close (self->listen_fd);
  /* A connection still being served may yet look up its token: at shutdown the process
   * exits right after this, so leave the state to it rather than pull it from under it. */
  if (g_atomic_int_get (&self->active) > 0)
    return;
  g_thread_pool_free (self->pool, FALSE, TRUE);
  crisp_stream_tokens_free (self->tokens);
  g_free (self->host);
  g_free (self);
}

guint
crisp_streaming_active (CrispStreaming *self)
{
  return (guint) g_atomic_int_get (&self->active);
}

CrispStreamTokens *
crisp_streaming_tokens (CrispStreaming *self)
{
  return self->tokens;
}

char *
crisp_streaming_url (CrispStreaming *self, const char *kind, const char *token)
{
  return g_strdup_printf ("http://%s:%u/%s/%s", self->host, self->port, kind, token);
}
