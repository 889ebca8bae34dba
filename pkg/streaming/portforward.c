/* Port-forward sessions over SPDY/3.1 streams or WebSocket channels: see portforward.h.
 * Blocking I/O in the caller's thread, one poll loop over the client and the pod connections;
 * pairs, request ids and buffers are bounded.  libc only. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portforward.h"
#include "spdy.h"
#include "ws.h"

#define MAX_PAIRS 128
#define CHUNK 32768
#define REQUEST_ID_MAX 63

typedef struct
{
  bool used; /* the slot holds a pair (SPDY: while its streams live; WebSocket: always) */
  bool started, done;
  uint16_t port;
  char request_id[REQUEST_ID_MAX + 1]; /* SPDY */
  uint32_t error_id, data_id;          /* SPDY stream ids */
  int conn;                            /* -1 until connected, and after the end */
} Pair;

typedef struct
{
  const CrispPortForwardSession *cfg;
  CrispSpdy *spdy;
  CrispWs *ws;
  CrispBuf out, scratch;
  Pair pairs[MAX_PAIRS];
  bool gone; /* the session is over: flush what is queued and stop */
} Session;

static void
flush_out (Session *s)
{
  if (s->out.len > 0 && crisp_send_all (s->cfg->fd, s->out.data, s->out.len) < 0)
    s->gone = true;
  crisp_buf_consume (&s->out, s->out.len);
}

static void
close_conn (Pair *p)
{
  if (p->conn >= 0)
    close (p->conn);
  p->conn = -1;
}

static void
start_pair (Session *s, Pair *p, char *why, size_t why_size)
{
  p->started = true;
  int fd = s->cfg->dial (p->port, s->cfg->dial_data);
  if (fd >= 0)
    {
      p->conn = fd;
      return;
    }
  snprintf (why, why_size, "error forwarding port %u to pod %s: %s", p->port,
            s->cfg->pod_id ? s->cfg->pod_id : "", strerror (-fd));
}

/* ---- SPDY ---- */

static Pair *
spdy_find (Session *s, const char *request_id, uint32_t stream_id)
{
  for (size_t i = 0; i < MAX_PAIRS; i++)
    {
      Pair *p = &s->pairs[i];
      if (p->used
          && ((request_id && strcmp (p->request_id, request_id) == 0)
              || (stream_id && (p->data_id == stream_id || p->error_id == stream_id))))
        return p;
    }
  return NULL;
}

static void
spdy_end_pair (Session *s, Pair *p, const char *error)
{
  if (error && p->error_id)
    crisp_spdy_put_data (&s->out, p->error_id, 0, error, strlen (error));
  if (p->error_id)
    crisp_spdy_put_data (&s->out, p->error_id, CRISP_SPDY_FLAG_FIN, NULL, 0);
  if (p->data_id)
    crisp_spdy_put_data (&s->out, p->data_id, CRISP_SPDY_FLAG_FIN, NULL, 0);
  close_conn (p);
  memset (p, 0, sizeof *p);
  p->conn = -1;
}

static void
spdy_on_syn_stream (Session *s, const CrispSpdyFrame *f)
{
  const char *type = crisp_spdy_header (f, "streamtype");
  const char *port_s = crisp_spdy_header (f, "port");
  const char *rid = crisp_spdy_header (f, "requestid");
  bool is_data = type && strcmp (type, "data") == 0;
  bool is_error = type && strcmp (type, "error") == 0;
  char *end = NULL;
  unsigned long port = port_s ? strtoul (port_s, &end, 10) : 0;
  if ((!is_data && !is_error) || port_s == NULL || *port_s < '0' || *port_s > '9' || *end
      || port < 1 || port > 65535 || (rid && strlen (rid) > REQUEST_ID_MAX))
    {
      crisp_spdy_put_rst_stream (&s->out, f->stream_id, CRISP_SPDY_RST_REFUSED_STREAM);
      return;
    }
  /* Clients older than requestID send the error stream just before its data stream. */
  char key[REQUEST_ID_MAX + 1];
  if (rid)
    snprintf (key, sizeof key, "%s", rid);
  else
    snprintf (key, sizeof key, "#%u", (f->stream_id - 1) / 4);
  Pair *p = spdy_find (s, key, 0);
  if (p == NULL)
    {
      for (size_t i = 0; i < MAX_PAIRS && p == NULL; i++)
        if (!s->pairs[i].used)
          p = &s->pairs[i];
      if (p == NULL)
        {
          crisp_spdy_put_rst_stream (&s->out, f->stream_id, CRISP_SPDY_RST_REFUSED_STREAM);
          return;
        }
      memset (p, 0, sizeof *p);
      p->used = true;
      p->conn = -1;
      p->port = (uint16_t) port;
      snprintf (p->request_id, sizeof p->request_id, "%s", key);
    }
  uint32_t *slot = is_data ? &p->data_id : &p->error_id;
  if (*slot != 0 || p->port != port)
    {
      crisp_spdy_put_rst_stream (&s->out, f->stream_id, CRISP_SPDY_RST_PROTOCOL_ERROR);
      return;
    }
  *slot = f->stream_id;
  const char *none[] = { NULL };
  crisp_spdy_put_headers (s->spdy, &s->out, CRISP_SPDY_SYN_REPLY, 0, f->stream_id, none);
  if (p->data_id && p->error_id && !p->started)
    {
      char why[256] = "";
      start_pair (s, p, why, sizeof why);
      if (p->conn < 0)
        spdy_end_pair (s, p, why);
    }
}

static int
spdy_on_frame (const CrispSpdyFrame *f, void *data)
{
  Session *s = data;
  Pair *p;
  switch (f->type)
    {
    case CRISP_SPDY_SYN_STREAM:
      spdy_on_syn_stream (s, f);
      return 0;
    case CRISP_SPDY_DATA:
      p = spdy_find (s, NULL, f->stream_id);
      if (p == NULL || f->stream_id != p->data_id || p->conn < 0)
        return 0;
      crisp_send_all (p->conn, f->data, f->len);
      if (f->flags & CRISP_SPDY_FLAG_FIN)
        shutdown (p->conn, SHUT_WR);
      return 0;
    case CRISP_SPDY_RST_STREAM:
      p = spdy_find (s, NULL, f->stream_id);
      if (p != NULL)
        {
          close_conn (p);
          memset (p, 0, sizeof *p);
          p->conn = -1;
        }
      return 0;
    case CRISP_SPDY_PING:
      crisp_spdy_put_ping (&s->out, f->value);
      return 0;
    case CRISP_SPDY_GOAWAY:
      s->gone = true;
      return 0;
    default:
      return 0;
    }
}

/* ---- WebSocket ---- */

static void
ws_put (Session *s, uint8_t channel, const void *data, size_t len)
{
  if (crisp_ws_put_channel (&s->out, s->cfg->base64, channel, data, len) < 0)
    s->gone = true;
}

/* Ends a port; once every port has ended, the session closes. */
static void
ws_end_port (Session *s, Pair *p)
{
  close_conn (p);
  p->done = true;
  for (size_t i = 0; i < s->cfg->n_ports; i++)
    if (!s->pairs[i].done)
      return;
  crisp_ws_put_close (&s->out, CRISP_WS_CLOSE_NORMAL, NULL);
  s->gone = true;
}

static int
ws_on_message (const CrispWsMessage *msg, void *data)
{
  Session *s = data;
  uint8_t channel;
  const uint8_t *payload;
  size_t len;
  switch (msg->opcode)
    {
    case CRISP_WS_CLOSE:
      crisp_ws_put_close (&s->out, CRISP_WS_CLOSE_NORMAL, NULL);
      s->gone = true;
      return -ECONNRESET; /* nothing after a CLOSE */
    case CRISP_WS_PING:
      crisp_ws_put (&s->out, CRISP_WS_PONG, msg->data, msg->len);
      return 0;
    case CRISP_WS_PONG:
      return 0;
    default:
      s->scratch.len = 0;
      if (crisp_ws_channel_decode (s->cfg->base64, msg, &s->scratch, &channel, &payload, &len)
          < 0)
        return -EPROTO;
      /* Data for a port's data channel goes to its connection; anything else (the error
       * channels, unknown channels, a port already done) is dropped, as the kubelet does. */
      if (channel % 2 == 0 && channel / 2 < s->cfg->n_ports)
        {
          Pair *p = &s->pairs[channel / 2];
          if (p->conn >= 0 && len > 0 && crisp_send_all (p->conn, payload, len) < 0)
            ws_end_port (s, p);
        }
      return 0;
    }
}

static void
ws_start (Session *s)
{
  for (size_t i = 0; i < s->cfg->n_ports; i++)
    {
      Pair *p = &s->pairs[i];
      p->used = true;
      p->port = s->cfg->ports[i];
      uint8_t le[2] = { p->port & 0xff, p->port >> 8 };
      ws_put (s, 2 * i, le, 2);
      ws_put (s, 2 * i + 1, le, 2);
    }
  flush_out (s);
  for (size_t i = 0; i < s->cfg->n_ports && !s->gone; i++)
    {
      char why[256] = "";
      start_pair (s, &s->pairs[i], why, sizeof why);
      if (s->pairs[i].conn < 0)
        {
          ws_put (s, 2 * i + 1, why, strlen (why));
          ws_end_port (s, &s->pairs[i]);
        }
    }
}

/* ---- the loop ---- */

static void
feed (Session *s, const uint8_t *buf, size_t len)
{
  if (s->ws == NULL)
    {
      if (crisp_spdy_feed (s->spdy, buf, len, spdy_on_frame, s) < 0)
        s->gone = true;
      return;
    }
  int r = crisp_ws_feed (s->ws, buf, len, ws_on_message, s);
  if (r == -EPROTO || r == -EMSGSIZE)
    crisp_ws_put_close (&s->out,
                        r == -EMSGSIZE ? CRISP_WS_CLOSE_TOO_BIG : CRISP_WS_CLOSE_PROTOCOL_ERROR,
                        "bad frame");
  if (r < 0)
    s->gone = true;
}

static void
pump_client (Session *s)
{
  uint8_t buf[CHUNK];
  ssize_t n = recv (s->cfg->fd, buf, sizeof buf, 0);
  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0)
    s->gone = true;
  else
    feed (s, buf, n);
}

static void
pump_conn (Session *s, Pair *p, size_t index)
{
  uint8_t buf[CHUNK];
  ssize_t n = recv (p->conn, buf, sizeof buf, 0);
  if (n < 0 && errno == EINTR)
    return;
  if (s->ws != NULL)
    {
      if (n <= 0)
        ws_end_port (s, p);
      else
        ws_put (s, 2 * index, buf, n);
      return;
    }
  if (n <= 0)
    spdy_end_pair (s, p, NULL);
  else
    crisp_spdy_put_data (&s->out, p->data_id, 0, buf, n);
}

void
crisp_port_forward_serve (const CrispPortForwardSession *cfg)
{
  Session *s = calloc (1, sizeof *s);
  if (s == NULL)
    return;
  s->cfg = cfg;
  for (size_t i = 0; i < MAX_PAIRS; i++)
    s->pairs[i].conn = -1;
  if (cfg->websocket)
    s->ws = cfg->n_ports <= MAX_PAIRS / 2 ? crisp_ws_new () : NULL;
  else
    s->spdy = crisp_spdy_new ();
  if (s->ws == NULL && s->spdy == NULL)
    goto out;
  if (s->ws != NULL)
    ws_start (s);
  if (!s->gone && cfg->leftover_len > 0)
    feed (s, cfg->leftover, cfg->leftover_len);
  flush_out (s);
  while (!s->gone)
    {
      struct pollfd p[MAX_PAIRS + 1] = { { cfg->fd, POLLIN, 0 } };
      size_t which[MAX_PAIRS + 1];
      nfds_t n = 1;
      for (size_t i = 0; i < MAX_PAIRS; i++)
        if (s->pairs[i].conn >= 0)
          {
            which[n] = i;
            p[n++] = (struct pollfd){ s->pairs[i].conn, POLLIN, 0 };
          }
      if (poll (p, n, -1) < 0 && errno != EINTR)
        break;
      /* Connections first: the client's frames may end pairs and reuse their slots. */
      for (nfds_t i = 1; i < n && !s->gone; i++)
        if (p[i].revents && s->pairs[which[i]].conn == p[i].fd)
          pump_conn (s, &s->pairs[which[i]], which[i]);
      flush_out (s);
      if (p[0].revents && !s->gone)
        pump_client (s);
      flush_out (s);
    }
out:
  for (size_t i = 0; i < MAX_PAIRS; i++)
    close_conn (&s->pairs[i]);
  if (s->spdy)
    crisp_spdy_free (s->spdy);
  if (s->ws)
    crisp_ws_free (s->ws);
  crisp_buf_clear (&s->out);
  crisp_buf_clear (&s->scratch);
  free (s);
}
