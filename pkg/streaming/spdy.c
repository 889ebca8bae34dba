/* The SPDY/3.1 framing layer: frame headers, header blocks and their zlib streams. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "spdy-private.h"

struct _CrispSpdy
{
  GByteArray *in; /* bytes received but not yet a whole frame */
  z_stream inflate, deflate;
  gboolean inflate_ok, deflate_ok;
  gboolean failed;
};

CrispSpdy *
crisp_spdy_new (void)
{
  CrispSpdy *self = g_new0 (CrispSpdy, 1);
  self->in = g_byte_array_new ();
  self->inflate_ok = inflateInit (&self->inflate) == Z_OK;
  self->deflate_ok
      = deflateInit (&self->deflate, Z_DEFAULT_COMPRESSION) == Z_OK
        && deflateSetDictionary (&self->deflate, crisp_spdy_dictionary, CRISP_SPDY_DICTIONARY_SIZE)
               == Z_OK;
  return self;
}

void
crisp_spdy_free (CrispSpdy *self)
{
  if (self == NULL)
    return;
  if (self->inflate_ok)
    inflateEnd (&self->inflate);
  deflateEnd (&self->deflate);
  g_byte_array_unref (self->in);
  g_free (self);
}

static guint32
get32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static void
put32 (GByteArray *out, guint32 v)
{
  guint8 b[4] = { v >> 24, v >> 16, v >> 8, v };
  g_byte_array_append (out, b, 4);
}

/* Inflates one header block into `out` (at most CRISP_SPDY_MAX_HEADER_BLOCK bytes). The
 * stream continues across blocks; each block ends with a sync flush. */
static int
inflate_block (CrispSpdy *self, const guint8 *in, gsize len, GByteArray *out)
{
  if (!self->inflate_ok)
    return -ENOMEM;
  self->inflate.next_in = (Bytef *) in;
  self->inflate.avail_in = len;
  guint8 chunk[4096];
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
      if (r != Z_OK && r != Z_BUF_ERROR)
        return -EPROTO;
      gsize produced = sizeof chunk - self->inflate.avail_out;
      if (out->len + produced > CRISP_SPDY_MAX_HEADER_BLOCK)
        return -EMSGSIZE;
      g_byte_array_append (out, chunk, produced);
      if (r == Z_BUF_ERROR && produced == 0)
        break;
    }
  return 0;
}

/* Parses the uncompressed block: a count, then length-prefixed names and values. */
static int
parse_block (const guint8 *p, gsize len, char ***headers)
{
  if (len < 4)
    return -EPROTO;
  guint32 n = get32 (p);
  if (n > CRISP_SPDY_MAX_HEADERS)
    return -EMSGSIZE;
  gsize off = 4;
  g_autoptr (GPtrArray) v = g_ptr_array_new_with_free_func (g_free);
  for (guint32 i = 0; i < 2 * n; i++)
    {
      if (len - off < 4)
        return -EPROTO;
      guint32 l = get32 (p + off);
      off += 4;
      if (l > len - off || (i % 2 == 0 && l == 0))
        return -EPROTO;
      g_ptr_array_add (v, g_strndup ((const char *) p + off, l));
      off += l;
    }
  g_ptr_array_add (v, NULL);
  *headers = (char **) g_ptr_array_free (g_steal_pointer (&v), FALSE);
  return 0;
}

static int
decode_headers (CrispSpdy *self, const guint8 *block, gsize len, CrispSpdyFrame *f)
{
  g_autoptr (GByteArray) plain = g_byte_array_new ();
  int r = inflate_block (self, block, len, plain);
  if (r < 0)
    return r;
  return parse_block (plain->data, plain->len, &f->headers);
}

/* Decodes one control frame's payload into f. Unknown types are left with type 0xffff. */
static int
decode_control (CrispSpdy *self, guint16 type, const guint8 *p, gsize len, CrispSpdyFrame *f)
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
static gssize
next_frame (CrispSpdy *self, const guint8 *p, gsize avail, CrispSpdyFrameFunc fn, gpointer data)
{
  if (avail < 8)
    return 0;
  guint32 len = get32 (p + 4) & 0xffffff;
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
  g_strfreev (f.headers);
  return r < 0 ? r : (gssize) len + 8;
}

int
crisp_spdy_feed (CrispSpdy *self, const guint8 *buf, gsize len, CrispSpdyFrameFunc fn,
                 gpointer user_data)
{
  if (self->failed)
    return -EPROTO;
  g_byte_array_append (self->in, buf, len);
  gsize off = 0;
  /* An empty array may have no storage at all: NULL + 0 is undefined behaviour. */
  while (off < self->in->len)
    {
      gssize n = next_frame (self, self->in->data + off, self->in->len - off, fn, user_data);
      if (n < 0)
        {
          self->failed = TRUE;
          return (int) n;
        }
      if (n == 0)
        break;
      off += n;
    }
  g_byte_array_remove_range (self->in, 0, off);
  return 0;
}

const char *
crisp_spdy_header (const CrispSpdyFrame *frame, const char *name)
{
  for (char **h = frame->headers; h && h[0] && h[1]; h += 2)
    if (g_ascii_strcasecmp (h[0], name) == 0)
      return h[1];
  return NULL;
}

static void
put_control_head (GByteArray *out, guint16 type, guint8 flags, guint32 len)
{
  guint8 b[8] = { 0x80, CRISP_SPDY_VERSION, type >> 8, type, flags, len >> 16, len >> 8, len };
  g_byte_array_append (out, b, 8);
}

void
crisp_spdy_put_data (GByteArray *out, guint32 stream_id, guint8 flags, const void *data, gsize len)
{
  g_return_if_fail (len <= CRISP_SPDY_MAX_FRAME);
  put32 (out, stream_id & 0x7fffffff);
  guint8 b[4] = { flags, len >> 16, len >> 8, len };
  g_byte_array_append (out, b, 4);
  if (len > 0)
    g_byte_array_append (out, data, len);
}

static gboolean
deflate_block (CrispSpdy *self, GByteArray *plain, GByteArray *out)
{
  if (!self->deflate_ok)
    return FALSE;
  self->deflate.next_in = plain->data;
  self->deflate.avail_in = plain->len;
  guint8 chunk[4096];
  do
    {
      self->deflate.next_out = chunk;
      self->deflate.avail_out = sizeof chunk;
      if (deflate (&self->deflate, Z_SYNC_FLUSH) != Z_OK)
        return FALSE;
      g_byte_array_append (out, chunk, sizeof chunk - self->deflate.avail_out);
    }
  while (self->deflate.avail_out == 0);
  return TRUE;
}

gboolean
crisp_spdy_put_headers (CrispSpdy *self, GByteArray *out, CrispSpdyType type, guint8 flags,
                        guint32 stream_id, const char *const *headers)
{
  g_autoptr (GByteArray) plain = g_byte_array_new ();
  guint n = headers ? g_strv_length ((char **) headers) / 2 : 0;
  put32 (plain, n);
  for (guint i = 0; i < 2 * n; i++)
    {
      put32 (plain, strlen (headers[i]));
      g_byte_array_append (plain, (const guint8 *) headers[i], strlen (headers[i]));
    }
  g_autoptr (GByteArray) body = g_byte_array_new ();
  put32 (body, stream_id & 0x7fffffff);
  if (type == CRISP_SPDY_SYN_STREAM)
    {
      guint8 rest[6] = { 0 }; /* associated stream 0, priority 0, slot 0 */
      g_byte_array_append (body, rest, sizeof rest);
    }
  if (!deflate_block (self, plain, body))
    return FALSE;
  put_control_head (out, type, flags, body->len);
  g_byte_array_append (out, body->data, body->len);
  return TRUE;
}

void
crisp_spdy_put_rst_stream (GByteArray *out, guint32 stream_id, guint32 status)
{
  put_control_head (out, CRISP_SPDY_RST_STREAM, 0, 8);
  put32 (out, stream_id & 0x7fffffff);
  put32 (out, status);
}

void
crisp_spdy_put_ping (GByteArray *out, guint32 id)
{
  put_control_head (out, CRISP_SPDY_PING, 0, 4);
  put32 (out, id);
}

void
crisp_spdy_put_goaway (GByteArray *out, guint32 last_stream_id, guint32 status)
{
  put_control_head (out, CRISP_SPDY_GOAWAY, 0, 8);
  put32 (out, last_stream_id & 0x7fffffff);
  put32 (out, status);
}
