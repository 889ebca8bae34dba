/* The WebSocket framing layer (RFC 6455 section 5) for the server side, the handshake's
 * accept key, and the Kubernetes channel framings over it. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "sha1.h"
#include "ws.h"

/* Client bytes are taken this many at a time, each piece parsed before the next is buffered:
 * a bad frame head is refused after at most this much input past it, whatever one feed
 * holds. */
#define FEED_STEP (64 * 1024)
/* The reassembly buffer is freed after a message larger than this, not kept for the next. */
#define KEEP_CAPACITY (64 * 1024)
#define CONTROL_MAX 125

struct CrispWs
{
  CrispBuf in;        /* bytes received but not yet a whole frame */
  CrispBuf msg;       /* the data message being reassembled, unmasked */
  uint8_t msg_opcode; /* TEXT or BINARY while a fragmented message is open, else 0 */
  bool failed, closed;
};

typedef struct
{
  bool fin;
  uint8_t opcode;
  size_t head_len; /* through the masking key */
  size_t len;      /* payload */
  const uint8_t *mask;
} FrameHead;

CrispWs *
crisp_ws_new (void)
{
  return calloc (1, sizeof (CrispWs));
}

void
crisp_ws_free (CrispWs *self)
{
  if (self == NULL)
    return;
  crisp_buf_clear (&self->in);
  crisp_buf_clear (&self->msg);
  free (self);
}

static bool
is_control (uint8_t opcode)
{
  return opcode & 0x8;
}

/* The first two bytes: reserved bits, opcode, fragmentation and masking rules. */
static int
check_start (const CrispWs *self, const uint8_t *p)
{
  bool fin = p[0] & 0x80;
  uint8_t opcode = p[0] & 0x0f;
  if (p[0] & 0x70)
    return -EPROTO; /* no extension was negotiated */
  switch (opcode)
    {
    case CRISP_WS_CONTINUATION:
      return self->msg_opcode != 0 ? 0 : -EPROTO;
    case CRISP_WS_TEXT:
    case CRISP_WS_BINARY:
      return self->msg_opcode == 0 ? 0 : -EPROTO;
    case CRISP_WS_CLOSE:
    case CRISP_WS_PING:
    case CRISP_WS_PONG:
      return fin ? 0 : -EPROTO;
    default:
      return -EPROTO;
    }
}

/* Parses a frame head: 1 when whole (in *h), 0 when more bytes are needed, or -errno. The
 * payload length is checked against the bounds as soon as it is known, before any of the
 * payload is waited for. */
static int
parse_head (const CrispWs *self, const uint8_t *p, size_t avail, FrameHead *h)
{
  if (avail < 2)
    return 0;
  int r = check_start (self, p);
  if (r < 0)
    return r;
  if (!(p[1] & 0x80))
    return -EPROTO; /* client frames must be masked */
  uint64_t len = p[1] & 0x7f;
  size_t n = 2;
  if (len >= 126)
    {
      n = len == 126 ? 4 : 10;
      if (avail < n)
        return 0;
      len = 0;
      for (size_t i = 2; i < n; i++)
        len = len << 8 | p[i];
      if (len >> 63)
        return -EPROTO;
    }
  uint8_t opcode = p[0] & 0x0f;
  if (is_control (opcode) && len > CONTROL_MAX)
    return -EPROTO;
  if (!is_control (opcode) && len > CRISP_WS_MAX_MESSAGE - self->msg.len)
    return -EMSGSIZE;
  if (avail < n + 4)
    return 0;
  *h = (FrameHead){
    .fin = p[0] & 0x80, .opcode = opcode, .head_len = n + 4, .len = (size_t) len, .mask = p + n
  };
  return 1;
}

/* Masking and unmasking are the same XOR. */
static void
xor_mask (uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4])
{
  for (size_t i = 0; i < len; i++)
    dst[i] = src[i] ^ mask[i % 4];
}

static const uint8_t empty[1];

/* Adds a data frame's payload to the message; reports the message when it is whole. */
static int
on_data (CrispWs *self, const FrameHead *h, const uint8_t *payload, CrispWsMessageFunc fn,
         void *user_data)
{
  int r = crisp_buf_reserve (&self->msg, h->len);
  if (r < 0)
    return r;
  if (h->len > 0) /* an empty buffer may have no storage: NULL + 0 is undefined */
    xor_mask (self->msg.data + self->msg.len, payload, h->len, h->mask);
  self->msg.len += h->len;
  if (h->opcode != CRISP_WS_CONTINUATION)
    self->msg_opcode = h->opcode;
  if (!h->fin)
    return 0;
  CrispWsMessage m = { .opcode = self->msg_opcode,
                       .data = self->msg.len > 0 ? self->msg.data : empty,
                       .len = self->msg.len };
  self->msg_opcode = 0;
  r = fn (&m, user_data);
  if (self->msg.cap > KEEP_CAPACITY)
    crisp_buf_clear (&self->msg);
  else
    self->msg.len = 0;
  return r;
}

/* The codes a peer may send (RFC 6455 section 7.4 and the IANA registry); 1005, 1006 and
 * 1015 are for reporting only and never go on the wire. */
static bool
close_code_is_valid (uint16_t code)
{
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014)
         || (code >= 3000 && code <= 4999);
}

static int
on_control (CrispWs *self, const FrameHead *h, const uint8_t *payload, CrispWsMessageFunc fn,
            void *user_data)
{
  uint8_t buf[CONTROL_MAX];
  xor_mask (buf, payload, h->len, h->mask);
  CrispWsMessage m = { .opcode = h->opcode, .data = buf, .len = h->len };
  if (h->opcode == CRISP_WS_CLOSE)
    {
      self->closed = true;
      m.close_code = 1005;
      if (h->len == 1)
        return -EPROTO;
      if (h->len >= 2)
        {
          m.close_code = (uint16_t) (buf[0] << 8 | buf[1]);
          if (!close_code_is_valid (m.close_code))
            return -EPROTO;
          m.data = buf + 2;
          m.len = h->len - 2;
        }
    }
  return fn (&m, user_data);
}

/* Handles the frame at the start of p, if whole: returns its size, 0 when more bytes are
 * needed, or -errno. */
static long
next_frame (CrispWs *self, const uint8_t *p, size_t avail, CrispWsMessageFunc fn, void *user_data)
{
  FrameHead h;
  int r = parse_head (self, p, avail, &h);
  if (r <= 0)
    return r;
  if (avail - h.head_len < h.len)
    return 0;
  const uint8_t *payload = p + h.head_len;
  r = is_control (h.opcode) ? on_control (self, &h, payload, fn, user_data)
                            : on_data (self, &h, payload, fn, user_data);
  return r < 0 ? r : (long) (h.head_len + h.len);
}

static int
drain (CrispWs *self, CrispWsMessageFunc fn, void *user_data)
{
  size_t off = 0;
  while (off < self->in.len && !self->closed)
    {
      long n = next_frame (self, self->in.data + off, self->in.len - off, fn, user_data);
      if (n < 0)
        return (int) n;
      if (n == 0)
        break;
      off += n;
    }
  crisp_buf_consume (&self->in, off);
  return 0;
}

int
crisp_ws_feed (CrispWs *self, const uint8_t *buf, size_t len, CrispWsMessageFunc fn,
               void *user_data)
{
  if (self->failed)
    return -EPROTO;
  while (len > 0 && !self->closed)
    {
      size_t n = len < FEED_STEP ? len : FEED_STEP;
      int r = crisp_buf_append (&self->in, buf, n);
      if (r == 0)
        r = drain (self, fn, user_data);
      if (r < 0)
        {
          self->failed = true;
          return r;
        }
      buf += n;
      len -= n;
    }
  if (self->closed)
    crisp_buf_clear (&self->in); /* whatever follows a CLOSE is ignored */
  return 0;
}

/* The head of a frame with `len` bytes of payload, masked when mask is not NULL. */
static size_t
frame_head (uint8_t b[14], uint8_t opcode, bool fin, const uint8_t *mask, size_t len)
{
  size_t n = 2;
  b[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126)
    b[1] = (uint8_t) len;
  else
    {
      int bytes = len <= 0xffff ? 2 : 8;
      b[1] = bytes == 2 ? 126 : 127;
      for (int i = 0; i < bytes; i++)
        b[n++] = (uint8_t) ((uint64_t) len >> (8 * (bytes - 1 - i)));
    }
  if (mask != NULL)
    {
      b[1] |= 0x80;
      memcpy (b + n, mask, 4);
      n += 4;
    }
  return n;
}

static bool
opcode_is_valid (uint8_t opcode)
{
  return opcode <= CRISP_WS_BINARY || (opcode >= CRISP_WS_CLOSE && opcode <= CRISP_WS_PONG);
}

int
crisp_ws_put_frame (CrispBuf *out, uint8_t opcode, bool fin, const uint8_t *mask, const void *data,
                    size_t len)
{
  if (!opcode_is_valid (opcode))
    return -EINVAL;
  if (is_control (opcode) && len > CONTROL_MAX)
    return -EMSGSIZE;
  if (len > SIZE_MAX / 2)
    return -ENOMEM;
  uint8_t head[14];
  size_t n = frame_head (head, opcode, fin, mask, len);
  int r = crisp_buf_reserve (out, n + len);
  if (r < 0)
    return r;
  crisp_buf_append (out, head, n);
  if (len == 0)
    return 0;
  if (mask != NULL)
    xor_mask (out->data + out->len, data, len, mask);
  else
    memcpy (out->data + out->len, data, len);
  out->len += len;
  return 0;
}

int
crisp_ws_put (CrispBuf *out, CrispWsOpcode opcode, const void *data, size_t len)
{
  if (opcode == CRISP_WS_CONTINUATION)
    return -EINVAL;
  return crisp_ws_put_frame (out, opcode, true, NULL, data, len);
}

int
crisp_ws_put_close (CrispBuf *out, uint16_t code, const char *reason)
{
  uint8_t payload[CONTROL_MAX] = { code >> 8, code & 0xff };
  size_t n = reason ? strlen (reason) : 0;
  if (n > CONTROL_MAX - 2)
    {
      n = CONTROL_MAX - 2;
      while (n > 0 && ((uint8_t) reason[n] & 0xc0) == 0x80)
        n--; /* do not cut a UTF-8 sequence */
    }
  if (n > 0)
    memcpy (payload + 2, reason, n);
  return crisp_ws_put_frame (out, CRISP_WS_CLOSE, true, NULL, payload, n + 2);
}

int
crisp_ws_accept_key (const char *key, char out[29])
{
  CrispBuf raw = CRISP_BUF_INIT;
  size_t len = strlen (key);
  int r = len == 24 ? crisp_base64_decode (&raw, key, len) : -EINVAL;
  bool ok = r == 0 && raw.len == 16;
  crisp_buf_clear (&raw);
  if (!ok)
    return r == -ENOMEM ? r : -EINVAL;
  CrispSha1 sha;
  uint8_t digest[CRISP_SHA1_LEN];
  crisp_sha1_init (&sha);
  crisp_sha1_update (&sha, key, len);
  crisp_sha1_update (&sha, CRISP_WS_GUID, strlen (CRISP_WS_GUID));
  crisp_sha1_final (&sha, digest);
  crisp_base64_encode_to (out, digest, sizeof digest);
  out[28] = '\0';
  return 0;
}

/* A server frame whose payload is a one-byte prefix and, base64-encoded or not, data. */
int
crisp_ws_put_channel (CrispBuf *out, bool base64, uint8_t channel, const void *data, size_t len)
{
  if (base64 && channel > 9)
    return -EINVAL;
  if (len > SIZE_MAX / 2)
    return -ENOMEM;
  size_t payload = 1 + (base64 ? CRISP_BASE64_LEN (len) : len);
  uint8_t head[14];
  size_t n = frame_head (head, base64 ? CRISP_WS_TEXT : CRISP_WS_BINARY, true, NULL, payload);
  int r = crisp_buf_reserve (out, n + payload);
  if (r < 0)
    return r;
  uint8_t prefix = base64 ? '0' + channel : channel;
  crisp_buf_append (out, head, n);
  crisp_buf_append (out, &prefix, 1);
  if (base64)
    crisp_base64_encode (out, data, len);
  else
    crisp_buf_append (out, data, len);
  return 0;
}

int
crisp_ws_channel_decode (bool base64, const CrispWsMessage *msg, CrispBuf *scratch,
                         uint8_t *channel, const uint8_t **data, size_t *len)
{
  if (msg->len == 0 || msg->opcode != (base64 ? CRISP_WS_TEXT : CRISP_WS_BINARY))
    return -EPROTO;
  if (!base64)
    {
      *channel = msg->data[0];
      *data = msg->data + 1;
      *len = msg->len - 1;
      return 0;
    }
  if (msg->data[0] < '0' || msg->data[0] > '9')
    return -EPROTO;
  scratch->len = 0;
  int r = crisp_base64_decode (scratch, (const char *) msg->data + 1, msg->len - 1);
  if (r < 0)
    return r == -EINVAL ? -EPROTO : r;
  *channel = msg->data[0] - '0';
  *data = scratch->len > 0 ? scratch->data : empty;
  *len = scratch->len;
  return 0;
}
