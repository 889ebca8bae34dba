/* The SPDY/3.1 framing layer: frame headers, header blocks and their zlib streams. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "spdy-private.h"

struct _CrispSpdy
{
  CrispBuf in; /* bytes received but not yet a whole frame */
  z_stream inflate, deflate;
  bool failed;
};

CrispSpdy *
crisp_spdy_new (void)
{
  CrispSpdy *self = calloc (1, sizeof *self);
  if (self == NULL)
    return NULL;
  if (inflateInit (&self->inflate) != Z_OK)
    {
      free (self);
      return NULL;
    }
  if (deflateInit (&self->deflate, Z_DEFAULT_COMPRESSION) != Z_OK)
    {
      inflateEnd (&self->inflate);
      free (self);
      return NULL;
    }
  if (deflateSetDictionary (&self->deflate, crisp_spdy_dictionary, CRISP_SPDY_DICTIONARY_SIZE)
      != Z_OK)
    {
      crisp_spdy_free (self);
      return NULL;
    }
  return self;
}

void
crisp_spdy_free (CrispSpdy *self)
{
  if (self == NULL)
    return;
  inflateEnd (&self->inflate);
  deflateEnd (&self->deflate);
  crisp_buf_clear (&self->in);
  free (self);
}

static uint32_t
get32 (const uint8_t *p)
{
  return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static void
set32 (uint8_t *p, uint32_t v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static int
put32 (CrispBuf *out, uint32_t v)
{
  uint8_t b[4];
  set32 (b, v);
  return crisp_buf_append (out, b, 4);
}

static void
strv_free (char **v)
{
  for (char **p = v; p && *p; p++)
    free (*p);
  free (v);
}

/* Inflates one header block into `out` (at most CRISP_SPDY_MAX_HEADER_BLOCK bytes). The
 * stream continues across blocks; each block ends with a sync flush. */
static int
inflate_block (CrispSpdy *self, const uint8_t *in, size_t len, CrispBuf *out)
{
  self->inflate.next_in = (Bytef *) in;
  self->inflate.avail_in = len;
  uint8_t chunk[4096];
  while (self->inflate.avail_in > 0)
    {
      self->inflate.next_out = chunk;
      self->inflate.avail_out = sizeof chunk;
      int r = inflate (&self->inflate, Z_SYNC_FLUSH);
      if (r == Z_NEED_DICT)
        {
          if (inflateSetDictionary (&self->inflate, crisp_spdy_dictionary,
                                    CRISP_SPDY_DICTIONARY_SIZE)
              != Z_OK)
            return -EPROTO;
          continue;
        }
      if (r == Z_MEM_ERROR)
        return -ENOMEM;
      if (r != Z_OK && r != Z_BUF_ERROR)
        return -EPROTO;
      size_t produced = sizeof chunk - self->inflate.avail_out;
      if (out->len + produced > CRISP_SPDY_MAX_HEADER_BLOCK)
        return -EMSGSIZE;
      int e = crisp_buf_append (out, chunk, produced);
      if (e < 0)
        return e;
      if (r == Z_BUF_ERROR && produced == 0)
        break;
    }
  return 0;
}

/* Parses the uncompressed block: a count, then length-prefixed names and values, into a
 * NULL-terminated array of 2n malloc'd strings. */
static int
parse_block (const uint8_t *p, size_t len, char ***out_headers)
{
  if (len < 4)
    return -EPROTO;
  uint32_t n = get32 (p);
  if (n > CRISP_SPDY_MAX_HEADERS)
    return -EMSGSIZE;
  char **v = calloc (2 * (size_t) n + 1, sizeof (char *));
  if (v == NULL)
    return -ENOMEM;
  size_t off = 4;
  for (uint32_t i = 0; i < 2 * n; i++)
    {
      uint32_t l = len - off < 4 ? 0 : get32 (p + off);
      if (len - off < 4 || l > len - off - 4 || (i % 2 == 0 && l == 0))
        {
          strv_free (v);
          return -EPROTO;
        }
      off += 4;
      v[i] = strndup ((const char *) p + off, l);
      if (v[i] == NULL)
        {
          strv_free (v);
          return -ENOMEM;
        }
      off += l;
    }
  *out_headers = v;
  return 0;
}

static int
decode_headers (CrispSpdy *self, const uint8_t *block, size_t len, CrispSpdyFrame *f)
{
  CrispBuf plain = CRISP_BUF_INIT;
  int r = inflate_block (self, block, len, &plain);
  if (r == 0)
    r = parse_block (plain.data, plain.len, &f->headers);
  crisp_buf_clear (&plain);
  return r;
}

/* Decodes one control frame's payload into f. Unknown types are left with type 0xffff. */
static int
decode_control (CrispSpdy *self, uint16_t type, const uint8_t *p, size_t len, CrispSpdyFrame *f)
{
  f->type = type;
  switch (type)
    {
    case CRISP_SPDY_SYN_STREAM:
      if (len < 10)
        return -EPROTO;
      f->stream_id = get32 (p) & 0x7fffffff;
      f->associated_id = get32 (p + 4) & 0x7fffffff;
      return decode_headers (self, p + 10, len - 10, f);
    case CRISP_SPDY_SYN_REPLY:
    case CRISP_SPDY_HEADERS:
      if (len < 4)
        return -EPROTO;
      f->stream_id = get32 (p) & 0x7fffffff;
      return decode_headers (self, p + 4, len - 4, f);
    case CRISP_SPDY_RST_STREAM:
    case CRISP_SPDY_WINDOW_UPDATE:
      if (len != 8)
        return -EPROTO;
      f->stream_id = get32 (p) & 0x7fffffff;
      f->value = get32 (p + 4) & (type == CRISP_SPDY_WINDOW_UPDATE ? 0x7fffffff : 0xffffffff);
      return 0;
    case CRISP_SPDY_PING:
      if (len != 4)
        return -EPROTO;
      f->value = get32 (p);
      return 0;
    case CRISP_SPDY_GOAWAY:
      if (len != 8)
        return -EPROTO;
      f->stream_id = get32 (p) & 0x7fffffff;
      f->value = get32 (p + 4);
      return 0;
    case CRISP_SPDY_SETTINGS:
      /* A count and 8-byte entries; crisp honours none of them. */
      if (len < 4 || (len - 4) / 8 < get32 (p) || (len - 4) % 8 != 0)
        return -EPROTO;
      return 0;
    default:
      f->type = 0xffff; /* the spec says: ignore unknown control frames */
      return 0;
    }
}

/* Decodes the frame at the start of the buffer, if whole; returns its size, 0 if more
 * bytes are needed, or a negative errno. */
static long
next_frame (CrispSpdy *self, const uint8_t *p, size_t avail, CrispSpdyFrameFunc fn, void *data)
{
  if (avail < 8)
    return 0;
  uint32_t len = get32 (p + 4) & 0xffffff;
  if (len > CRISP_SPDY_MAX_FRAME)
    return -EMSGSIZE;
  if (avail - 8 < len)
    return 0;
  CrispSpdyFrame f = { .flags = p[4] };
  int r;
  if (p[0] & 0x80)
    {
      if ((((p[0] & 0x7f) << 8) | p[1]) != CRISP_SPDY_VERSION)
        return -EPROTO;
      r = decode_control (self, (p[2] << 8) | p[3], p + 8, len, &f);
    }
  else
    {
      f.type = CRISP_SPDY_DATA;
      f.stream_id = get32 (p);
      f.data = p + 8;
      f.len = len;
      r = 0;
    }
  if (r == 0 && f.type != 0xffff)
    r = fn (&f, data);
  strv_free (f.headers);
  return r < 0 ? r : (long) len + 8;
}

int
crisp_spdy_feed (CrispSpdy *self, const uint8_t *buf, size_t len, CrispSpdyFrameFunc fn,
                 void *user_data)
{
  if (self->failed)
    return -EPROTO;
  int r = crisp_buf_append (&self->in, buf, len);
  if (r < 0)
    {
      self->failed = true;
      return r;
    }
  size_t off = 0;
  /* An empty buffer may have no storage at all: NULL + 0 is undefined behaviour. */
  while (off < self->in.len)
    {
      long n = next_frame (self, self->in.data + off, self->in.len - off, fn, user_data);
      if (n < 0)
        {
          self->failed = true;
          return (int) n;
        }
      if (n == 0)
        break;
      off += n;
    }
  crisp_buf_consume (&self->in, off);
  return 0;
}

const char *
crisp_spdy_header (const CrispSpdyFrame *frame, const char *name)
{
  for (char **h = frame->headers; h && h[0] && h[1]; h += 2)
    if (strcasecmp (h[0], name) == 0)
      return h[1];
  return NULL;
}

/* Every frame starts with a 32-bit word (DATA: the stream id; control: 1, the version and
 * the type), 8 bits of flags and a 24-bit length. */
static void
frame_head (uint8_t b[8], uint32_t word, uint8_t flags, uint32_t len)
{
  set32 (b, word);
  set32 (b + 4, len); /* its top byte is overwritten by the flags */
  b[4] = flags;
}

static uint32_t
control_word (uint16_t type)
{
  return 0x80000000u | (uint32_t) CRISP_SPDY_VERSION << 16 | type;
}

int
crisp_spdy_put_data (CrispBuf *out, uint32_t stream_id, uint8_t flags, const void *data, size_t len)
{
  if (len > CRISP_SPDY_MAX_FRAME)
    return -EMSGSIZE;
  int r = crisp_buf_reserve (out, 8 + len);
  if (r < 0)
    return r;
  uint8_t b[8];
  frame_head (b, stream_id & 0x7fffffff, flags, len);
  crisp_buf_append (out, b, 8);
  crisp_buf_append (out, data, len);
  return 0;
}

/* Compresses `plain` onto the end of `out` with the session's stream, ending in a sync
 * flush. */
static int
deflate_block (CrispSpdy *self, const CrispBuf *plain, CrispBuf *out)
{
  self->deflate.next_in = plain->data;
  self->deflate.avail_in = plain->len;
  bool first = true;
  do
    {
      int r = crisp_buf_reserve (out, 4096);
      if (r < 0)
        return r;
      self->deflate.next_out = out->data + out->len;
      self->deflate.avail_out = 4096;
      r = deflate (&self->deflate, Z_SYNC_FLUSH);
      /* Z_BUF_ERROR after a full chunk: everything was already flushed. */
      if (r != Z_OK && (first || r != Z_BUF_ERROR))
        return -EIO;
      out->len += 4096 - self->deflate.avail_out;
      first = false;
    }
  while (self->deflate.avail_out == 0);
  return 0;
}

static int
header_block (const char *const *headers, CrispBuf *plain)
{
  size_t n = 0;
  while (headers && headers[2 * n] && headers[2 * n + 1])
    n++;
  int r = put32 (plain, n);
  for (size_t i = 0; r == 0 && i < 2 * n; i++)
    {
      size_t l = strlen (headers[i]);
      if (l > CRISP_SPDY_MAX_HEADER_BLOCK)
        return -EMSGSIZE;
      r = put32 (plain, l);
      if (r == 0)
        r = crisp_buf_append (plain, headers[i], l);
    }
  return r;
}

static int
headers_frame (CrispSpdy *self, CrispBuf *frame, CrispSpdyType type, uint8_t flags,
               uint32_t stream_id, const char *const *headers)
{
  CrispBuf plain = CRISP_BUF_INIT;
  int r = header_block (headers, &plain);
  if (r < 0)
    {
      crisp_buf_clear (&plain);
      return r;
    }
  /* Control head (filled in last), stream id, and for SYN_STREAM associated stream 0,
   * priority 0, slot 0. */
  uint8_t body[18] = { 0 };
  size_t body_len = type == CRISP_SPDY_SYN_STREAM ? 18 : 12;
  set32 (body + 8, stream_id & 0x7fffffff);
  r = crisp_buf_append (frame, body, body_len);
  if (r == 0)
    r = deflate_block (self, &plain, frame);
  crisp_buf_clear (&plain);
  if (r == 0 && frame->len - 8 > CRISP_SPDY_MAX_FRAME)
    r = -EMSGSIZE;
  if (r == 0)
    frame_head (frame->data, control_word (type), flags, frame->len - 8);
  return r;
}

int
crisp_spdy_put_headers (CrispSpdy *self, CrispBuf *out, CrispSpdyType type, uint8_t flags,
                        uint32_t stream_id, const char *const *headers)
{
  CrispBuf frame = CRISP_BUF_INIT;
  int r = headers_frame (self, &frame, type, flags, stream_id, headers);
  if (r == 0)
    r = crisp_buf_append (out, frame.data, frame.len);
  crisp_buf_clear (&frame);
  return r;
}

/* A control frame whose payload is one or two 32-bit words. */
static int
put_control (CrispBuf *out, uint16_t type, uint32_t a, const uint32_t *b)
{
  uint8_t f[16];
  uint32_t len = b ? 8 : 4;
  frame_head (f, control_word (type), 0, len);
  set32 (f + 8, a);
  if (b)
    set32 (f + 12, *b);
  return crisp_buf_append (out, f, 8 + len);
}

int
crisp_spdy_put_rst_stream (CrispBuf *out, uint32_t stream_id, uint32_t status)
{
  return put_control (out, CRISP_SPDY_RST_STREAM, stream_id & 0x7fffffff, &status);
}

int
crisp_spdy_put_ping (CrispBuf *out, uint32_t id)
{
  return put_control (out, CRISP_SPDY_PING, id, NULL);
}

int
crisp_spdy_put_goaway (CrispBuf *out, uint32_t last_stream_id, uint32_t status)
{
  return put_control (out, CRISP_SPDY_GOAWAY, last_stream_id & 0x7fffffff, &status);
}
