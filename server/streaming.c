/* The streaming server's HTTP/1.1 front end: it reads exactly one bounded request head per
 * connection, has pkg/streaming/upgrade.c judge it, takes the single-use token, and hands
 * the socket on: exec and attach to the container's monitor, port-forward to a session in
 * this thread.  Each connection runs in a worker thread of a bounded pool. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "crisp-base.h"
#include "crisp-error.h"
#include "monitor-protocol.h"
#include "streaming.h"

#define HEAD_TIMEOUT_MS 10000
#define MAX_SESSIONS 64
#define LISTEN_BACKLOG 1024
#define TOKENS_MAX 1000
#define TOKEN_TTL_US (60 * G_USEC_PER_SEC)

struct _CrispStreaming
{
  GSocketService *service;
  CrispStreamTokens *tokens;
  char *host; /* as it goes into URLs: IPv6 in brackets */
  guint16 port;
  gint active; /* connections being served (atomic) */
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

/* Reads until the blank line ending the head; returns its length (the bytes after it stay in
 * buf), or -errno. */
static gssize
read_head (int fd, GByteArray *buf)
{
  gint64 deadline = g_get_monotonic_time () + HEAD_TIMEOUT_MS * 1000;
  for (;;)
    {
      gssize end = crisp_upgrade_head_end (buf->data, buf->len);
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
destroy_request (CrispUpgrade *u, gpointer req)
{
  if (u->kind == CRISP_STREAM_PORT_FORWARD)
    crisp_port_forward_request_free (req);
  else
    crisp_exec_request_free (req);
}

static void
serve_connection (CrispStreaming *self, int fd)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  gssize head_len = read_head (fd, buf);
  if (head_len == -EMSGSIZE)
    return crisp_streaming_send_status (fd, "431 Request Header Fields Too Large",
                                        "request head too large\n");
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
      else if (pf)
        crisp_streaming_serve_port_forward (fd, req, u, reply, rest, rest_len);
      else
        crisp_streaming_hand_off (fd, u, req, (const guint8 *) reply, reply_len, rest, rest_len);
    }
  destroy_request (u, req);
}

static gboolean
on_run (GThreadedSocketService *service, GSocketConnection *conn, GObject *source, gpointer data)
{
  GSocket *sock = g_socket_connection_get_socket (conn);
  CrispStreaming *self = data;
  g_socket_set_blocking (sock, TRUE);
  g_atomic_int_inc (&self->active);
  serve_connection (self, g_socket_get_fd (sock));
  g_atomic_int_dec_and_test (&self->active);
  g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
  return TRUE;
}

CrispStreaming *
crisp_streaming_new (const char *address, int port, GError **error)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);
  if (inet == NULL)
    return crisp_throw (error, CRISP_ERROR_INVALID_ARGUMENT,
                        "streaming address '%s' is not an IP address", address),
           NULL;
  g_autoptr (GSocketAddress) want = g_inet_socket_address_new (inet, port);
  GSocketService *service = g_threaded_socket_service_new (MAX_SESSIONS);
  /* GLib's default backlog is 10: a burst of clients (a rollout's exec probes, kubectl in a
   * loop) would overflow it while the pool is busy, and the kernel drops their handshakes. */
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (service), LISTEN_BACKLOG);
  g_autoptr (GSocketAddress) got = NULL;
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), want, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &got, error))
    {
      g_object_unref (service);
      return crisp_prefix_error (error, "streaming server on %s:%d: ", address, port), NULL;
    }
  CrispStreaming *self = g_new0 (CrispStreaming, 1);
  self->service = service;
  self->tokens = crisp_stream_tokens_new (TOKENS_MAX, TOKEN_TTL_US);
  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (got));
  self->host = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6
                   ? g_strdup_printf ("[%s]", address)
                   : g_strdup (address);
  g_signal_connect (service, "run", G_CALLBACK (on_run), self);
  g_socket_service_start (service);
  return self;
}

void
crisp_streaming_free (CrispStreaming *self)
{
  if (self == NULL)
    return;
  g_socket_service_stop (self->service);
  g_socket_listener_close (G_SOCKET_LISTENER (self->service));
  /* A connection still being served may yet look up its token: at shutdown the process
   * exits right after this, so leave the state to it rather than pull it from under it. */
  if (g_atomic_int_get (&self->active) > 0)
    return;
  g_object_unref (self->service);
  crisp_stream_tokens_free (self->tokens);
  g_free (self->host);
  g_free (self);
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
