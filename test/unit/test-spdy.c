/* Unit tests for pkg/streaming: the SPDY/3.1 codec fed hand-built frames (header blocks
 * compressed here with zlib and the SPDY/3 dictionary, independently of the encoder), and
 * the token store. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <zlib.h>

#include "pkg/streaming/codec-glib.h"
#include "pkg/streaming/spdy-private.h"
#include "crisp-error.h"
#include "pkg/streaming/tokens.h"

typedef struct
{
  GPtrArray *frames; /* copies of CrispSpdyFrame, headers joined as "n=v;" */
} Seen;

typedef struct
{
  guint16 type;
  guint8 flags;
  guint32 stream_id, value;
  char *headers;
  GBytes *data;
} Copy;

static void
copy_free (gpointer p)
{
  Copy *c = p;
  g_free (c->headers);
  g_bytes_unref (c->data);
  g_free (c);
}

static int
record (const CrispSpdyFrame *f, gpointer data)
{
  Seen *seen = data;
  Copy *c = g_new0 (Copy, 1);
  c->type = f->type;
  c->flags = f->flags;
  c->stream_id = f->stream_id;
  c->value = f->value;
  GString *h = g_string_new ("");
  for (char **p = f->headers; p && p[0] && p[1]; p += 2)
    g_string_append_printf (h, "%s=%s;", p[0], p[1]);
  c->headers = g_string_free (h, FALSE);
  c->data = g_bytes_new (f->data, f->len);
  g_ptr_array_add (seen->frames, c);
  return 0;
}

static void
put32 (GByteArray *a, guint32 v)
{
  guint8 b[4] = { v >> 24, v >> 16, v >> 8, v };
  g_byte_array_append (a, b, 4);
}

static void
put_str (GByteArray *a, const char *s)
{
  put32 (a, strlen (s));
  g_byte_array_append (a, (const guint8 *) s, strlen (s));
}

/* A zlib stream as a SPDY peer keeps it: one per session, sync-flushed per block. */
static GByteArray *
compress_block (z_stream *z, GByteArray *plain)
{
  GByteArray *out = g_byte_array_new ();
  guint8 buf[8192];
  z->next_in = plain->data;
  z->avail_in = plain->len;
  z->next_out = buf;
  z->avail_out = sizeof buf;
  g_assert_cmpint (deflate (z, Z_SYNC_FLUSH), ==, Z_OK);
  g_byte_array_append (out, buf, sizeof buf - z->avail_out);
  return out;
}

static GByteArray *
syn_stream (z_stream *z, guint32 id, const char *type)
{
  g_autoptr (GByteArray) plain = g_byte_array_new ();
  put32 (plain, 2);
  put_str (plain, "streamtype");
  put_str (plain, type);
  put_str (plain, "port");
  put_str (plain, "8080");
  g_autoptr (GByteArray) block = compress_block (z, plain);
  GByteArray *f = g_byte_array_new ();
  guint8 head[4] = { 0x80, 3, 0, 1 };
  g_byte_array_append (f, head, 4);
  put32 (f, (guint32) (10 + block->len)); /* flags 0 */
  put32 (f, id);
  put32 (f, 0);
  guint8 prio[2] = { 0, 0 };
  g_byte_array_append (f, prio, 2);
  g_byte_array_append (f, block->data, block->len);
  return f;
}

static void
deflate_init (z_stream *z)
{
  memset (z, 0, sizeof *z);
  g_assert_cmpint (deflateInit (z, Z_DEFAULT_COMPRESSION), ==, Z_OK);
  g_assert_cmpint (deflateSetDictionary (z, crisp_spdy_dictionary, CRISP_SPDY_DICTIONARY_SIZE), ==,
                   Z_OK);
}

static void
test_dictionary_checksum (void)
{
  /* The spec's dictionary is identified by its Adler-32, which zlib streams carry. */
  g_assert_cmpuint (adler32 (1, crisp_spdy_dictionary, CRISP_SPDY_DICTIONARY_SIZE), ==,
                    3821447106u);
}

static void
test_syn_streams_byte_by_byte (void)
{
  z_stream z;
  deflate_init (&z);
  g_autoptr (GByteArray) all = syn_stream (&z, 1, "error");
  g_autoptr (GByteArray) second = syn_stream (&z, 3, "stdout");
  g_byte_array_append (all, second->data, second->len);
  guint8 data[] = { 0, 0, 0, 3, 1, 0, 0, 2, 'h', 'i' };
  g_byte_array_append (all, data, sizeof data);
  deflateEnd (&z);

  Seen seen = { g_ptr_array_new_with_free_func (copy_free) };
  g_autoptr (CrispSpdy) spdy = crisp_spdy_new ();
  for (guint i = 0; i < all->len; i++)
    g_assert_cmpint (crisp_spdy_feed (spdy, all->data + i, 1, record, &seen), ==, 0);
  g_assert_cmpuint (seen.frames->len, ==, 3);
  Copy *a = seen.frames->pdata[0], *b = seen.frames->pdata[1], *d = seen.frames->pdata[2];
  g_assert_cmpuint (a->type, ==, CRISP_SPDY_SYN_STREAM);
  g_assert_cmpuint (a->stream_id, ==, 1);
  g_assert_cmpstr (a->headers, ==, "streamtype=error;port=8080;");
  g_assert_cmpuint (b->stream_id, ==, 3);
  g_assert_cmpstr (b->headers, ==, "streamtype=stdout;port=8080;");
  g_assert_cmpuint (d->type, ==, CRISP_SPDY_DATA);
  g_assert_cmpuint (d->stream_id, ==, 3);
  g_assert_cmpuint (d->flags, ==, CRISP_SPDY_FLAG_FIN);
  g_assert_cmpmem (g_bytes_get_data (d->data, NULL), g_bytes_get_size (d->data), "hi", 2);
  g_ptr_array_unref (seen.frames);
}

static void
test_control_frames (void)
{
  guint8 in[] = {
    0x80, 3, 0, 6,  0, 0, 0, 4,  0, 0, 0, 7,                         /* PING 7 */
    0x80, 3, 0, 3,  0, 0, 0, 8,  0, 0, 0, 5, 0, 0, 0, 5,             /* RST 5 CANCEL */
    0x80, 3, 0, 4,  0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 1, 0, /* SETTINGS */
    0x80, 3, 0, 42, 0, 0, 0, 2,  9, 9,                               /* unknown: skipped */
    0x80, 3, 0, 7,  0, 0, 0, 8,  0, 0, 0, 9, 0, 0, 0, 0,             /* GOAWAY 9 */
  };
  Seen seen = { g_ptr_array_new_with_free_func (copy_free) };
  g_autoptr (CrispSpdy) spdy = crisp_spdy_new ();
  g_assert_cmpint (crisp_spdy_feed (spdy, in, sizeof in, record, &seen), ==, 0);
  g_assert_cmpuint (seen.frames->len, ==, 4);
  Copy *c = seen.frames->pdata[0];
  g_assert_cmpuint (c->type, ==, CRISP_SPDY_PING);
  g_assert_cmpuint (c->value, ==, 7);
  c = seen.frames->pdata[1];
  g_assert_cmpuint (c->type, ==, CRISP_SPDY_RST_STREAM);
  g_assert_cmpuint (c->stream_id, ==, 5);
  g_assert_cmpuint (c->value, ==, 5);
  g_assert_cmpuint (((Copy *) seen.frames->pdata[2])->type, ==, CRISP_SPDY_SETTINGS);
  c = seen.frames->pdata[3];
  g_assert_cmpuint (c->type, ==, CRISP_SPDY_GOAWAY);
  g_assert_cmpuint (c->stream_id, ==, 9);
  g_ptr_array_unref (seen.frames);
}

static void
test_encoder_round_trip (void)
{
  g_autoptr (CrispSpdy) enc = crisp_spdy_new ();
  g_auto (CrispBuf) out = CRISP_BUF_INIT;
  const char *h1[] = { "streamtype", "stdin", NULL };
  const char *none[] = { NULL };
  g_assert_cmpint (crisp_spdy_put_headers (enc, &out, CRISP_SPDY_SYN_STREAM, 0, 5, h1), ==, 0);
  g_assert_cmpint (crisp_spdy_put_headers (enc, &out, CRISP_SPDY_SYN_REPLY, 0, 5, none), ==, 0);
  g_assert_cmpint (crisp_spdy_put_data (&out, 5, CRISP_SPDY_FLAG_FIN, "xyz", 3), ==, 0);
  g_assert_cmpint (crisp_spdy_put_ping (&out, 2), ==, 0);
  g_assert_cmpint (crisp_spdy_put_rst_stream (&out, 5, CRISP_SPDY_RST_CANCEL), ==, 0);
  g_assert_cmpint (crisp_spdy_put_goaway (&out, 5, 0), ==, 0);
  /* The reply to SYN_STREAM on the wire: version 3, type 2, stream id, then a block. */
  Seen seen = { g_ptr_array_new_with_free_func (copy_free) };
  g_autoptr (CrispSpdy) dec = crisp_spdy_new ();
  g_assert_cmpint (crisp_spdy_feed (dec, out.data, out.len, record, &seen), ==, 0);
  g_assert_cmpuint (seen.frames->len, ==, 6);
  g_assert_cmpstr (((Copy *) seen.frames->pdata[0])->headers, ==, "streamtype=stdin;");
  g_assert_cmpuint (((Copy *) seen.frames->pdata[1])->type, ==, CRISP_SPDY_SYN_REPLY);
  g_assert_cmpstr (((Copy *) seen.frames->pdata[1])->headers, ==, "");
  g_assert_cmpuint (((Copy *) seen.frames->pdata[2])->flags, ==, CRISP_SPDY_FLAG_FIN);
  g_assert_cmpuint (((Copy *) seen.frames->pdata[3])->value, ==, 2);
  g_assert_cmpuint (((Copy *) seen.frames->pdata[4])->value, ==, CRISP_SPDY_RST_CANCEL);
  g_assert_cmpuint (((Copy *) seen.frames->pdata[5])->type, ==, CRISP_SPDY_GOAWAY);
  g_ptr_array_unref (seen.frames);
}

/* Header blocks larger than one deflate chunk, over one compression stream, and the bound on
 * DATA frames the encoder shares with the decoder. */
static void
test_encoder_large_blocks (void)
{
  g_autoptr (CrispSpdy) enc = crisp_spdy_new ();
  g_autoptr (CrispSpdy) dec = crisp_spdy_new ();
  g_auto (CrispBuf) out = CRISP_BUF_INIT;
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  g_autofree char *noise = g_malloc (20001);
  for (guint i = 0; i < 20000; i++)
    noise[i] = 'a' + g_rand_int_range (rand, 0, 26);
  noise[20000] = '\0';
  const char *h[] = { "x-noise", noise, NULL };
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (crisp_spdy_put_headers (enc, &out, CRISP_SPDY_HEADERS, 0, 1 + 2 * i, h), ==,
                     0);
  Seen seen = { g_ptr_array_new_with_free_func (copy_free) };
  g_assert_cmpint (crisp_spdy_feed (dec, out.data, out.len, record, &seen), ==, 0);
  g_assert_cmpuint (seen.frames->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      Copy *c = seen.frames->pdata[i];
      g_assert_cmpuint (c->stream_id, ==, 1 + 2 * i);
      g_assert_cmpuint (strlen (c->headers), ==, strlen ("x-noise=;") + 20000);
    }
  g_ptr_array_unref (seen.frames);
  size_t before = out.len;
  g_assert_cmpint (crisp_spdy_put_data (&out, 1, 0, noise, CRISP_SPDY_MAX_FRAME + 1), ==,
                   -EMSGSIZE);
  g_assert_cmpuint (out.len, ==, before);
}

static void
feed_expect (const guint8 *in, gsize len, int want)
{
  Seen seen = { g_ptr_array_new_with_free_func (copy_free) };
  g_autoptr (CrispSpdy) spdy = crisp_spdy_new ();
  g_assert_cmpint (crisp_spdy_feed (spdy, in, len, record, &seen), ==, want);
  if (want < 0) /* a failed session stays failed */
    g_assert_cmpint (crisp_spdy_feed (spdy, in, 0, record, &seen), ==, -EPROTO);
  g_ptr_array_unref (seen.frames);
}

static void
test_garbage_is_refused (void)
{
  guint8 v2[] = { 0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1 };
  feed_expect (v2, sizeof v2, -EPROTO);
  guint8 huge[] = { 0, 0, 0, 1, 0, 0xff, 0xff, 0xff };
  feed_expect (huge, sizeof huge, -EMSGSIZE);
  guint8 bad_zlib[] = { 0x80, 3, 0, 2, 0, 0, 0, 8, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef };
  feed_expect (bad_zlib, sizeof bad_zlib, -EPROTO);
  guint8 short_ping[] = { 0x80, 3, 0, 6, 0, 0, 0, 2, 0, 0 };
  feed_expect (short_ping, sizeof short_ping, -EPROTO);
  guint8 partial[] = { 0x80, 3, 0, 6, 0, 0, 0, 4, 0 }; /* incomplete: waits */
  feed_expect (partial, sizeof partial, 0);
}

static void
test_header_count_bound (void)
{
  z_stream z;
  deflate_init (&z);
  g_autoptr (GByteArray) plain = g_byte_array_new ();
  put32 (plain, 100000); /* claims far more pairs than it holds or crisp allows */
  g_autoptr (GByteArray) block = compress_block (&z, plain);
  deflateEnd (&z);
  g_autoptr (GByteArray) f = g_byte_array_new ();
  guint8 head[4] = { 0x80, 3, 0, 2 };
  g_byte_array_append (f, head, 4);
  put32 (f, 4 + block->len);
  put32 (f, 1);
  g_byte_array_append (f, block->data, block->len);
  feed_expect (f->data, f->len, -EMSGSIZE);
}

static void
test_tokens_single_use (void)
{
  g_autoptr (CrispStreamTokens) t = crisp_stream_tokens_new (2, 60 * G_USEC_PER_SEC);
  g_autoptr (GError) error = NULL;
  g_autofree char *a = crisp_stream_tokens_put (t, "exec", g_strdup ("A"), g_free, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (strlen (a), ==, 64);
  g_autofree char *b = crisp_stream_tokens_put (t, "exec", g_strdup ("B"), g_free, &error);
  g_assert_cmpstr (a, !=, b);
  g_autofree char *c = crisp_stream_tokens_put (t, "exec", g_strdup ("C"), g_free, &error);
  g_assert_null (c);
  g_assert_error (error, CRISP_ERROR, CRISP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_null (crisp_stream_tokens_take (t, "attach", a)); /* wrong kind */
  g_autofree char *got = crisp_stream_tokens_take (t, "exec", a);
  g_assert_cmpstr (got, ==, "A");
  g_assert_null (crisp_stream_tokens_take (t, "exec", a)); /* used */
  g_assert_null (crisp_stream_tokens_take (t, "exec", "nope"));
  g_assert_cmpuint (crisp_stream_tokens_count (t), ==, 1);
}

static void
test_tokens_expire (void)
{
  g_autoptr (CrispStreamTokens) t = crisp_stream_tokens_new (10, 1000);
  g_autofree char *a = crisp_stream_tokens_put (t, "exec", g_strdup ("A"), g_free, NULL);
  g_assert_nonnull (a);
  g_usleep (5000);
  g_assert_null (crisp_stream_tokens_take (t, "exec", a));
  g_assert_cmpuint (crisp_stream_tokens_count (t), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/spdy/dictionary", test_dictionary_checksum);
  g_test_add_func ("/spdy/syn-streams-byte-by-byte", test_syn_streams_byte_by_byte);
  g_test_add_func ("/spdy/control-frames", test_control_frames);
  g_test_add_func ("/spdy/encoder-round-trip", test_encoder_round_trip);
  g_test_add_func ("/spdy/encoder-large-blocks", test_encoder_large_blocks);
  g_test_add_func ("/spdy/garbage", test_garbage_is_refused);
  g_test_add_func ("/spdy/header-count-bound", test_header_count_bound);
  g_test_add_func ("/tokens/single-use", test_tokens_single_use);
  g_test_add_func ("/tokens/expire", test_tokens_expire);
  return g_test_run ();
}
