/* One port-forward session over SPDY/3.1 (portforward.k8s.io): the client opens a pair of
 * streams per connection, `error` and `data`, both carrying `port` and `requestID`
 * headers. For each complete pair crisp connects to 127.0.0.1:<port> inside the pod's
 * network namespace (from a short-lived thread that enters it, so no thread of the pool
 * ever changes namespace) and copies bytes both ways; a failure goes to the error stream.
 * Blocking I/O in the connection's thread, bounded pairs and buffers. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crisp-base.h"
#include "pkg/streaming/codec-glib.h"
#include "streaming.h"

#define MAX_PAIRS 128
#define CHUNK 32768

typedef struct
{
  char *request_id;
  guint16 port;
  guint32 error_id, data_id;
  int conn; /* -1 until connected, or after the end */
  gboolean started, client_fin;
} Pair;

typedef struct
{
  int fd;
  int netns; /* -1: the host's */
  CrispSpdy *spdy;
  CrispBuf *out;
  GPtrArray *pairs; /* Pair */
  gboolean client_gone;
} Session;

static void
pair_free (gpointer p)
{
  Pair *pair = p;
  if (pair->conn >= 0)
    close (pair->conn);
  g_free (pair->request_id);
  g_free (pair);
}

static int
flush_out (Session *s)
{
  int r = crisp_streaming_send_all (s->fd, s->out->data, s->out->len);
  crisp_buf_consume (s->out, s->out->len);
  if (r < 0)
    s->client_gone = TRUE;
  return r;
}

typedef struct
{
  int netns;
  guint16 port;
  int result; /* fd or -errno */
} Dial;

static gpointer
dial_thread (gpointer data)
{
  Dial *d = data;
  if (d->netns >= 0 && setns (d->netns, CLONE_NEWNET) < 0)
    {
      d->result = -errno;
      return NULL;
    }
  _cleanup_close_ int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = { .sin_family = AF_INET,
                              .sin_port = htons (d->port),
                              .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    d->result = -errno;
  else
    d->result = take_fd (&fd);
  return NULL; /* the thread ends here, with whatever namespace it entered */
}

/* A TCP connection to 127.0.0.1:port in the pod's network namespace, or -errno. */
static int
dial (Session *s, guint16 port)
{
  Dial d = { s->netns, port, -EIO };
  GThread *t = g_thread_try_new ("crisp-dial", dial_thread, &d, NULL);
  if (t == NULL)
    return -EAGAIN;
  g_thread_join (t);
  return d.result;
}

static Pair *
find_pair (Session *s, const char *request_id, guint32 stream_id)
{
  for (guint i = 0; i < s->pairs->len; i++)
    {
      Pair *p = s->pairs->pdata[i];
      if ((request_id && g_strcmp0 (p->request_id, request_id) == 0)
          || (stream_id && (p->data_id == stream_id || p->error_id == stream_id)))
        return p;
    }
  return NULL;
}

static void
end_pair (Session *s, Pair *p, const char *error)
{
  if (error && p->error_id)
    crisp_spdy_put_data (s->out, p->error_id, 0, error, strlen (error));
  if (p->error_id)
    crisp_spdy_put_data (s->out, p->error_id, CRISP_SPDY_FLAG_FIN, NULL, 0);
  if (p->data_id)
    crisp_spdy_put_data (s->out, p->data_id, CRISP_SPDY_FLAG_FIN, NULL, 0);
  g_ptr_array_remove (s->pairs, p);
}

static void
start_pair (Session *s, Pair *p)
{
  p->started = TRUE;
  int fd = dial (s, p->port);
  if (fd < 0)
    {
      g_autofree char *msg
          = g_strdup_printf ("error forwarding port %u to pod: %s", p->port, g_strerror (-fd));
      end_pair (s, p, msg);
      return;
    }
  p->conn = fd;
}

static void
on_syn_stream (Session *s, const CrispSpdyFrame *f)
{
  const char *type = crisp_spdy_header (f, "streamtype");
  const char *port_s = crisp_spdy_header (f, "port");
  const char *rid = crisp_spdy_header (f, "requestid");
  guint64 port = 0;
  gboolean is_data = g_strcmp0 (type, "data") == 0, is_error = g_strcmp0 (type, "error") == 0;
  if ((!is_data && !is_error) || port_s == NULL
      || !g_ascii_string_to_unsigned (port_s, 10, 1, 65535, &port, NULL))
    {
      crisp_spdy_put_rst_stream (s->out, f->stream_id, CRISP_SPDY_RST_REFUSED_STREAM);
      return;
    }
  /* Clients older than requestID send the error stream just before its data stream. */
  g_autofree char *key = rid ? g_strdup (rid) : g_strdup_printf ("#%u", (f->stream_id - 1) / 4);
  Pair *p = find_pair (s, key, 0);
  if (p == NULL)
    {
      if (s->pairs->len >= MAX_PAIRS)
        {
          crisp_spdy_put_rst_stream (s->out, f->stream_id, CRISP_SPDY_RST_REFUSED_STREAM);
          return;
        }
      p = g_new0 (Pair, 1);
      p->request_id = g_steal_pointer (&key);
      p->port = port;
      p->conn = -1;
      g_ptr_array_add (s->pairs, p);
    }
  guint32 *slot = is_data ? &p->data_id : &p->error_id;
  if (*slot != 0 || p->port != port)
    {
      crisp_spdy_put_rst_stream (s->out, f->stream_id, CRISP_SPDY_RST_PROTOCOL_ERROR);
      return;
    }
  *slot = f->stream_id;
  const char *none[] = { NULL };
  crisp_spdy_put_headers (s->spdy, s->out, CRISP_SPDY_SYN_REPLY, 0, f->stream_id, none);
  if (p->data_id && p->error_id && !p->started)
    start_pair (s, p);
}

static int
on_frame (const CrispSpdyFrame *f, gpointer data)
{
  Session *s = data;
  Pair *p;
  switch (f->type)
    {
    case CRISP_SPDY_SYN_STREAM:
      on_syn_stream (s, f);
      return 0;
    case CRISP_SPDY_DATA:
      p = find_pair (s, NULL, f->stream_id);
      if (p == NULL || f->stream_id != p->data_id || p->conn < 0)
        return 0;
      crisp_streaming_send_all (p->conn, f->data, f->len);
      if (f->flags & CRISP_SPDY_FLAG_FIN)
        {
          p->client_fin = TRUE;
          shutdown (p->conn, SHUT_WR);
        }
      return 0;
    case CRISP_SPDY_RST_STREAM:
      p = find_pair (s, NULL, f->stream_id);
      if (p != NULL)
        g_ptr_array_remove (s->pairs, p);
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

static void
pump_client (Session *s)
{
  guint8 buf[CHUNK];
  ssize_t n = recv (s->fd, buf, sizeof buf, 0);
  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0 || crisp_spdy_feed (s->spdy, buf, n, on_frame, s) < 0)
    s->client_gone = TRUE;
  flush_out (s);
}

static void
pump_conn (Session *s, Pair *p)
{
  guint8 buf[CHUNK];
  ssize_t n = recv (p->conn, buf, sizeof buf, 0);
  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0)
    {
      end_pair (s, p, NULL);
      return;
    }
  crisp_spdy_put_data (s->out, p->data_id, 0, buf, n);
}

void
crisp_streaming_serve_port_forward (int fd, CrispPortForwardRequest *req, const guint8 *leftover,
                                    gsize leftover_len)
{
  g_autoptr (CrispSpdy) spdy = crisp_spdy_new ();
  g_auto (CrispBuf) out = CRISP_BUF_INIT;
  if (spdy == NULL)
    return;
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func (pair_free);
  _cleanup_close_ int netns = -1;
  if (req->net_ns != NULL && (netns = open (req->net_ns, O_RDONLY | O_CLOEXEC)) < 0)
    return;
  Session s = { .fd = fd, .netns = netns, .spdy = spdy, .out = &out, .pairs = pairs };
  if (leftover_len > 0 && crisp_spdy_feed (spdy, leftover, leftover_len, on_frame, &s) < 0)
    return;
  flush_out (&s);
  while (!s.client_gone)
    {
      struct pollfd p[MAX_PAIRS + 1] = { { fd, POLLIN, 0 } };
      Pair *which[MAX_PAIRS + 1] = { NULL };
      guint n = 1;
      for (guint i = 0; i < pairs->len && n < G_N_ELEMENTS (p); i++)
        {
          Pair *pair = pairs->pdata[i];
          if (pair->conn >= 0)
            {
              which[n] = pair;
              p[n++] = (struct pollfd){ pair->conn, POLLIN, 0 };
            }
        }
      if (poll (p, n, -1) < 0 && errno != EINTR)
        break;
      /* Connections first: pairs ended by the client below would leave stale entries. */
      for (guint i = 1; i < n; i++)
        if (p[i].revents)
          pump_conn (&s, which[i]);
      flush_out (&s);
      if (p[0].revents)
        pump_client (&s);
    }
}
