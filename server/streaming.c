/* The streaming server's HTTP/1.1 front end: it reads exactly one bounded request head per
 * connection, checks the path and the single-use token, negotiates the remotecommand
 * protocol, answers `101 Switching Protocols` to SPDY/3.1 (or an HTTP error) and hands
 * the socket to the session. Each connection runs in a worker thread of a bounded pool. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "crisp-base.h"
#include "crisp-error.h"
#include "monitor-protocol.h"
#include "pkg/streaming/ws.h"
#include "streaming.h"

#define HEAD_MAX 8192
#define HEAD_TIMEOUT_MS 10000
#define MAX_SESSIONS 64
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

/* The remotecommand versions crisp speaks, most preferred first. */
static const char *const exec_protocols[]
    = { "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
        "v2.channel.k8s.io", "channel.k8s.io",    NULL };

static const char *const port_forward_protocols[] = { "portforward.k8s.io", NULL };

/* The same over WebSocket (Sec-WebSocket-Protocol), most preferred first. */
static const char *const ws_exec_protocols[]
    = { "v5.channel.k8s.io", "v4.channel.k8s.io",     "v4.base64.channel.k8s.io",
        "channel.k8s.io",    "base64.channel.k8s.io", NULL };

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

typedef struct
{
  char *method, *path;
  GPtrArray *protocols;    /* every X-Stream-Protocol-Version value offered */
  GPtrArray *ws_protocols; /* every Sec-WebSocket-Protocol value offered */
  gboolean upgrade_spdy, upgrade_ws;
  char *ws_key, *ws_version;
} Head;

static void
head_clear (Head *h)
{
  g_free (h->method);
  g_free (h->path);
  g_free (h->ws_key);
  g_free (h->ws_version);
  if (h->protocols)
    g_ptr_array_unref (h->protocols);
  if (h->ws_protocols)
    g_ptr_array_unref (h->ws_protocols);
}

int
crisp_streaming_send_all (int fd, const void *buf, gsize len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      p += n;
      len -= n;
    }
  return 0;
}

void
crisp_streaming_send_status (int fd, const char *status, const char *body)
{
  g_autofree char *msg = g_strdup_printf ("HTTP/1.1 %s\r\nContent-Type: text/plain\r\n"
                                          "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                          status, strlen (body), body);
  crisp_streaming_send_all (fd, msg, strlen (msg));
}

/* Reads until the blank line ending the head; bytes after it are kept in *rest. */
static int
read_head (int fd, GByteArray *buf, gsize *head_len)
{
  gint64 deadline = g_get_monotonic_time () + HEAD_TIMEOUT_MS * 1000;
  while (buf->len < HEAD_MAX)
    {
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      struct pollfd p = { fd, POLLIN, 0 };
      if (left_ms <= 0 || poll (&p, 1, (int) left_ms) == 0)
        return -ETIMEDOUT;
      guint8 chunk[1024];
      ssize_t n = recv (fd, chunk, MIN (sizeof chunk, HEAD_MAX - buf->len), 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return n < 0 ? -errno : -ECONNRESET;
      g_byte_array_append (buf, chunk, n);
      const guint8 *end = memmem (buf->data, buf->len, "\r\n\r\n", 4);
      if (end != NULL)
        {
          *head_len = end - buf->data + 4;
          return 0;
        }
    }
  return -EMSGSIZE;
}

static void
add_list_values (GPtrArray *out, const char *value)
{
  g_auto (GStrv) parts = g_strsplit (value, ",", 16);
  for (char **p = parts; *p; p++)
    {
      char *v = g_strstrip (*p);
      if (*v)
        g_ptr_array_add (out, g_strdup (v));
    }
}

static gboolean
parse_head (const char *text, Head *h)
{
  g_auto (GStrv) lines = g_strsplit (text, "\r\n", 128);
  if (lines[0] == NULL)
    return FALSE;
  g_auto (GStrv) req = g_strsplit (lines[0], " ", 4);
  if (g_strv_length (req) != 3 || !g_str_has_prefix (req[2], "HTTP/1."))
    return FALSE;
  h->method = g_strdup (req[0]);
  h->path = g_strndup (req[1], strcspn (req[1], "?")); /* the token is all that counts */
  h->protocols = g_ptr_array_new_with_free_func (g_free);
  h->ws_protocols = g_ptr_array_new_with_free_func (g_free);
  for (char **l = lines + 1; *l && **l; l++)
    {
      char *colon = strchr (*l, ':');
      if (colon == NULL)
        return FALSE;
      *colon = '\0';
      char *value = g_strstrip (colon + 1);
      if (g_ascii_strcasecmp (*l, "X-Stream-Protocol-Version") == 0)
        add_list_values (h->protocols, value);
      else if (g_ascii_strcasecmp (*l, "Sec-WebSocket-Protocol") == 0)
        add_list_values (h->ws_protocols, value);
      else if (g_ascii_strcasecmp (*l, "Sec-WebSocket-Key") == 0 && h->ws_key == NULL)
        h->ws_key = g_strdup (value);
      else if (g_ascii_strcasecmp (*l, "Sec-WebSocket-Version") == 0 && h->ws_version == NULL)
        h->ws_version = g_strdup (value);
      else if (g_ascii_strcasecmp (*l, "Upgrade") == 0)
        {
          h->upgrade_spdy = h->upgrade_spdy || strstr (value, "SPDY/3.1") != NULL;
          h->upgrade_ws = h->upgrade_ws || g_ascii_strcasecmp (value, "websocket") == 0;
        }
    }
  return TRUE;
}

/* The first protocol of the client's list that crisp speaks; "" when the client offered
 * none at all (the original, unversioned protocol); NULL when none matches. */
static const char *
negotiate (GPtrArray *offered, const char *const *supported)
{
  if (offered->len == 0)
    return "";
  for (guint i = 0; i < offered->len; i++)
    for (const char *const *s = supported; *s; s++)
      if (strcmp (offered->pdata[i], *s) == 0)
        return *s;
  return NULL;
}

static void
serve_connection (CrispStreaming *self, int fd)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  gsize head_len = 0;
  int r = read_head (fd, buf, &head_len);
  if (r == -EMSGSIZE)
    return crisp_streaming_send_status (fd, "431 Request Header Fields Too Large",
                                        "request head too large\n");
  if (r < 0)
    return;
  g_autofree char *text = g_strndup ((const char *) buf->data, head_len);
  Head h = { 0 };
  gboolean ok = parse_head (text, &h);
  const char *token = ok ? h.path : NULL;
  if (!ok || !(g_str_equal (h.method, "GET") || g_str_equal (h.method, "POST")))
    {
      head_clear (&h);
      return crisp_streaming_send_status (fd, "400 Bad Request",
                                          "malformed or unsupported request\n");
    }
  gboolean exec = g_str_has_prefix (token, "/exec/") || g_str_has_prefix (token, "/attach/");
  if (!exec && !g_str_has_prefix (token, "/portforward/"))
    {
      head_clear (&h);
      return crisp_streaming_send_status (fd, "404 Not Found", "unknown path\n");
    }
  if (!h.upgrade_spdy && !h.upgrade_ws)
    {
      head_clear (&h);
      return crisp_streaming_send_status (fd, "400 Bad Request",
                                          "an upgrade to SPDY/3.1 or websocket is required\n");
    }
  gboolean ws = !h.upgrade_spdy;
  char accept[29];
  if (ws
      && (h.ws_key == NULL || h.ws_version == NULL || !g_str_equal (h.ws_version, "13")
          || crisp_ws_accept_key (h.ws_key, accept) < 0))
    {
      head_clear (&h);
      return crisp_streaming_send_status (
          fd, "400 Bad Request",
          "a WebSocket upgrade needs Sec-WebSocket-Version 13 and a valid Sec-WebSocket-Key\n");
    }
  const char *kind = !exec ? "portforward" : token[1] == 'e' ? "exec" : "attach";
  GDestroyNotify destroy = exec ? (GDestroyNotify) crisp_exec_request_free
                                : (GDestroyNotify) crisp_port_forward_request_free;
  gpointer req = crisp_stream_tokens_take (self->tokens, kind, token + strlen (kind) + 2);
  const char *protocol = ws     ? negotiate (h.ws_protocols, ws_exec_protocols)
                         : exec ? negotiate (h.protocols, exec_protocols)
                                : negotiate (h.protocols, port_forward_protocols);
  head_clear (&h);
  if (req == NULL)
    return crisp_streaming_send_status (fd, "404 Not Found", "unknown, used or expired token\n");
  if (ws && !exec)
    {
      destroy (req);
      return crisp_streaming_send_status (fd, "501 Not Implemented",
                                          "port-forward over WebSocket is not supported yet; "
                                          "use SPDY/3.1\n");
    }
  if (protocol == NULL || (!exec && *protocol == '\0'))
    {
      destroy (req);
      return crisp_streaming_send_status (fd, "403 Forbidden",
                                          ws ? "no supported Sec-WebSocket-Protocol offered\n"
                                             : "no supported X-Stream-Protocol-Version offered\n");
    }
  g_autofree char *reply
      = ws ? g_strdup_printf ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                              "Upgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                              accept, *protocol ? "Sec-WebSocket-Protocol: " : "", protocol,
                              *protocol ? "\r\n" : "")
           : g_strdup_printf ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                              "Upgrade: SPDY/3.1\r\n%s%s%s\r\n",
                              *protocol ? "X-Stream-Protocol-Version: " : "", protocol,
                              *protocol ? "\r\n" : "");
  if (exec)
    crisp_streaming_hand_off (fd, ws ? CRISP_MONITOR_FRAMING_WEBSOCKET : CRISP_MONITOR_FRAMING_SPDY,
                              protocol, req, (const guint8 *) reply, strlen (reply),
                              buf->data + head_len, buf->len - head_len);
  else if (crisp_streaming_send_all (fd, reply, strlen (reply)) == 0)
    crisp_streaming_serve_port_forward (fd, req, buf->data + head_len, buf->len - head_len);
  destroy (req);
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
