/* Unit tests for pkg/streaming's WebSocket codec: client frames built by hand or with the
 * masking encoder, the RFC 6455 examples, the bounds, the handshake key, and the Kubernetes
 * channel framings. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "pkg/streaming/base64.h"
#include "pkg/streaming/codec-glib.h"
#include "pkg/streaming/sha1.h"

static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

typedef struct
{
  guint8 opcode;
  guint16 close_code;
  GBytes *data;
} Msg;

static void
msg_free (gpointer p)
{
  Msg *m = p;
  g_bytes_unref (m->data);
  g_free (m);
}

static int
record (const CrispWsMessage *msg, void *data)
{
  Msg *m = g_new0 (Msg, 1);
  m->opcode = msg->opcode;
  m->close_code = msg->close_code;
  g_assert_nonnull (msg->data);
  m->data = g_bytes_new (msg->data, msg->len);
  g_ptr_array_add (data, m);
  return 0;
}

static GPtrArray *
seen_new (void)
{
  return g_ptr_array_new_with_free_func (msg_free);
}

static void
assert_msg (GPtrArray *seen, guint i, guint8 opcode, const void *data, gsize len)
{
  g_assert_cmpuint (i, <, seen->len);
  Msg *m = seen->pdata[i];
  g_assert_cmpuint (m->opcode, ==, opcode);
  g_assert_cmpmem (g_bytes_get_data (m->data, NULL), g_bytes_get_size (m->data), data, len);
}

/* Feeds `in` whole to a new codec and expects `want`; a failed codec stays failed. */
static GPtrArray *
feed_expect (const void *in, gsize len, int want)
{
  GPtrArray *seen = seen_new ();
  g_autoptr (CrispWs) ws = crisp_ws_new ();
  g_assert_cmpint (crisp_ws_feed (ws, in, len, record, seen), ==, want);
  if (want < 0)
    g_assert_cmpint (crisp_ws_feed (ws, (const uint8_t *) "", 0, record, seen), ==, -EPROTO);
  return seen;
}

static void
put_client (CrispBuf *b, guint8 opcode, gboolean fin, const void *data, gsize len)
{
  g_assert_cmpint (crisp_ws_put_frame (b, opcode, fin, mask, data, len), ==, 0);
}

static void
test_sha1_vectors (void)
{
  struct
  {
    const char *in;
    const char *hex;
  } v[] = {
    { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
    { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    {
      CrispSha1 c;
      guint8 d[CRISP_SHA1_LEN];
      crisp_sha1_init (&c);
      crisp_sha1_update (&c, v[i].in, strlen (v[i].in));
      crisp_sha1_final (&c, d);
      g_autofree char *hex = g_malloc0 (41);
      for (guint k = 0; k < CRISP_SHA1_LEN; k++)
        g_snprintf (hex + 2 * k, 3, "%02x", d[k]);
      g_assert_cmpstr (hex, ==, v[i].hex);
    }
  /* A million 'a' in uneven pieces: every block boundary case. */
  CrispSha1 c;
  guint8 d[CRISP_SHA1_LEN];
  g_autofree char *a = g_malloc (1000);
  memset (a, 'a', 1000);
  crisp_sha1_init (&c);
  for (guint done = 0, step = 1; done < 1000000; done += step, step = step % 997 + 1)
    crisp_sha1_update (&c, a, MIN (step, 1000000 - done));
  crisp_sha1_final (&c, d);
  const guint8 want[] = { 0x34, 0xaa, 0x97, 0x3c, 0xd4, 0xc4, 0xda, 0xa4, 0xf6, 0x1e,
                          0xeb, 0x2b, 0xdb, 0xad, 0x27, 0x31, 0x65, 0x34, 0x01, 0x6f };
  g_assert_cmpmem (d, sizeof d, want, sizeof want);
}

static void
test_base64 (void)
{
  /* RFC 4648 section 10. */
  const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
  const char *enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
  for (guint i = 0; i < G_N_ELEMENTS (plain); i++)
    {
      g_auto (CrispBuf) e = CRISP_BUF_INIT;
      g_auto (CrispBuf) d = CRISP_BUF_INIT;
      g_assert_cmpint (crisp_base64_encode (&e, (const guint8 *) plain[i], strlen (plain[i])), ==,
                       0);
      g_assert_cmpmem (e.data, e.len, enc[i], strlen (enc[i]));
      g_assert_cmpint (crisp_base64_decode (&d, enc[i], strlen (enc[i])), ==, 0);
      g_assert_cmpmem (d.data, d.len, plain[i], strlen (plain[i]));
    }
  const char *bad[] = { "Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "=AAA", "Zm9v Zm9v", "Zg=a" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_auto (CrispBuf) d = CRISP_BUF_INIT;
      g_assert_cmpint (crisp_base64_decode (&d, bad[i], strlen (bad[i])), ==, -EINVAL);
      g_assert_cmpuint (d.len, ==, 0);
    }
  /* Every byte value survives. */
  guint8 all[256];
  for (guint i = 0; i < 256; i++)
    all[i] = i;
  g_auto (CrispBuf) e = CRISP_BUF_INIT;
  g_auto (CrispBuf) d = CRISP_BUF_INIT;
  g_assert_cmpint (crisp_base64_encode (&e, all, sizeof all), ==, 0);
  g_autofree char *glib = g_base64_encode (all, sizeof all);
  g_assert_cmpmem (e.data, e.len, glib, strlen (glib));
  g_assert_cmpint (crisp_base64_decode (&d, (const char *) e.data, e.len), ==, 0);
  g_assert_cmpmem (d.data, d.len, all, sizeof all);
}

static void
test_accept_key (void)
{
  char out[29];
  /* RFC 6455 section 1.3 (checked against Python's hashlib and base64). */
  g_assert_cmpint (crisp_ws_accept_key ("dGhlIHNhbXBsZSBub25jZQ==", out), ==, 0);
  g_assert_cmpstr (out, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const char *bad[] = { "", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==x",
                        "dGhlIHNhbXBsZSBub25jZQ!=", "dGhlIHNhbXBsZSBub25jZQab" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_cmpint (crisp_ws_accept_key (bad[i], out), ==, -EINVAL);
}

static void
test_rfc_examples (void)
{
  /* Section 5.7: a single-frame masked text message, fed a byte at a time. */
  const guint8 hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
  g_autoptr (GPtrArray) seen = seen_new ();
  g_autoptr (CrispWs) ws = crisp_ws_new ();
  for (guint i = 0; i < sizeof hello; i++)
    g_assert_cmpint (crisp_ws_feed (ws, hello + i, 1, record, seen), ==, 0);
  g_assert_cmpuint (seen->len, ==, 1);
  assert_msg (seen, 0, CRISP_WS_TEXT, "Hello", 5);
  /* The masking encoder writes exactly that frame. */
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  put_client (&b, CRISP_WS_TEXT, TRUE, "Hello", 5);
  g_assert_cmpmem (b.data, b.len, hello, sizeof hello);
  /* Server frames: unmasked, and the three length forms. */
  b.len = 0;
  g_assert_cmpint (crisp_ws_put (&b, CRISP_WS_TEXT, "Hello", 5), ==, 0);
  const guint8 plain[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
  g_assert_cmpmem (b.data, b.len, plain, sizeof plain);
  g_autofree guint8 *big = g_malloc0 (65536);
  b.len = 0;
  g_assert_cmpint (crisp_ws_put (&b, CRISP_WS_BINARY, big, 256), ==, 0);
  const guint8 h16[] = { 0x82, 0x7e, 0x01, 0x00 };
  g_assert_cmpmem (b.data, 4, h16, 4);
  g_assert_cmpuint (b.len, ==, 4 + 256);
  b.len = 0;
  g_assert_cmpint (crisp_ws_put (&b, CRISP_WS_BINARY, big, 65536), ==, 0);
  const guint8 h64[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0 };
  g_assert_cmpmem (b.data, 10, h64, 10);
  g_assert_cmpuint (b.len, ==, 10 + 65536);
}

static void
test_lengths_round_trip (void)
{
  const gsize sizes[] = { 0, 1, 125, 126, 127, 65535, 65536, 200000, CRISP_WS_MAX_MESSAGE };
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  g_autofree guint8 *data = g_malloc (CRISP_WS_MAX_MESSAGE);
  for (gsize i = 0; i < CRISP_WS_MAX_MESSAGE; i++)
    data[i] = (guint8) (i * 7 + i / 256);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    put_client (&b, CRISP_WS_BINARY, TRUE, data, sizes[i]);
  g_autoptr (GPtrArray) seen = feed_expect (b.data, b.len, 0);
  g_assert_cmpuint (seen->len, ==, G_N_ELEMENTS (sizes));
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    assert_msg (seen, i, CRISP_WS_BINARY, data, sizes[i]);
}

static void
test_fragments_and_interleaved_control (void)
{
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  put_client (&b, CRISP_WS_TEXT, FALSE, "Hel", 3);
  put_client (&b, CRISP_WS_PING, TRUE, "p1", 2);
  put_client (&b, CRISP_WS_CONTINUATION, FALSE, "", 0);
  put_client (&b, CRISP_WS_PONG, TRUE, NULL, 0);
  put_client (&b, CRISP_WS_CONTINUATION, TRUE, "lo", 2);
  put_client (&b, CRISP_WS_BINARY, FALSE, "\x01", 1);
  put_client (&b, CRISP_WS_CONTINUATION, TRUE, "\x02", 1);
  g_autoptr (GPtrArray) seen = seen_new ();
  g_autoptr (CrispWs) ws = crisp_ws_new ();
  /* In uneven pieces, so frame heads and payloads straddle feeds. */
  for (gsize off = 0, step = 1; off < b.len; off += step, step = step % 5 + 1)
    g_assert_cmpint (crisp_ws_feed (ws, b.data + off, MIN (step, b.len - off), record, seen), ==,
                     0);
  g_assert_cmpuint (seen->len, ==, 4);
  assert_msg (seen, 0, CRISP_WS_PING, "p1", 2);
  assert_msg (seen, 1, CRISP_WS_PONG, "", 0);
  assert_msg (seen, 2, CRISP_WS_TEXT, "Hello", 5);
  assert_msg (seen, 3, CRISP_WS_BINARY, "\x01\x02", 2);
}

static void
test_fragmentation_rules (void)
{
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  put_client (&b, CRISP_WS_PING, FALSE, "x", 1); /* control frames are final */
  g_ptr_array_unref (feed_expect (b.data, b.len, -EPROTO));
  b.len = 0;
  put_client (&b, CRISP_WS_CONTINUATION, TRUE, "x", 1); /* nothing to continue */
  g_ptr_array_unref (feed_expect (b.data, b.len, -EPROTO));
  b.len = 0;
  put_client (&b, CRISP_WS_TEXT, FALSE, "x", 1);
  put_client (&b, CRISP_WS_BINARY, TRUE, "y", 1); /* a new message inside one */
  g_ptr_array_unref (feed_expect (b.data, b.len, -EPROTO));
  /* A control frame over 125 bytes: its head alone is refused. */
  const guint8 long_ping[] = { 0x89, 0xfe, 0x00, 0x7e };
  g_ptr_array_unref (feed_expect (long_ping, sizeof long_ping, -EPROTO));
  g_assert_cmpint (crisp_ws_put (&b, CRISP_WS_PING, "", 126), ==, -EMSGSIZE);
  g_assert_cmpint (crisp_ws_put (&b, CRISP_WS_CONTINUATION, "", 0), ==, -EINVAL);
}

static void
test_close (void)
{
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  put_client (&b, CRISP_WS_CLOSE, TRUE,
              "\x03\xe8"
              "bye",
              5);
  put_client (&b, CRISP_WS_TEXT, TRUE, "after", 5); /* never reported */
  g_autoptr (GPtrArray) seen = seen_new ();
  g_autoptr (CrispWs) ws = crisp_ws_new ();
  g_assert_cmpint (crisp_ws_feed (ws, b.data, b.len, record, seen), ==, 0);
  g_assert_cmpint (crisp_ws_feed (ws, b.data, b.len, record, seen), ==, 0);
  g_assert_cmpuint (seen->len, ==, 1);
  assert_msg (seen, 0, CRISP_WS_CLOSE, "bye", 3);
  g_assert_cmpuint (((Msg *) seen->pdata[0])->close_code, ==, 1000);

  b.len = 0;
  put_client (&b, CRISP_WS_CLOSE, TRUE, NULL, 0);
  g_autoptr (GPtrArray) empty = feed_expect (b.data, b.len, 0);
  assert_msg (empty, 0, CRISP_WS_CLOSE, "", 0);
  g_assert_cmpuint (((Msg *) empty->pdata[0])->close_code, ==, 1005);

  b.len = 0;
  put_client (&b, CRISP_WS_CLOSE, TRUE, "\x0f\xa0", 2); /* 4000: for applications */
  g_autoptr (GPtrArray) app = feed_expect (b.data, b.len, 0);
  g_assert_cmpuint (((Msg *) app->pdata[0])->close_code, ==, 4000);

  /* A one-byte payload, and codes that never go on the wire or are unassigned. */
  const char *bad[]
      = { "\x03", "\x03\xed", "\x03\xee", "\x03\xe7", "\x03\xf7", "\x0b\xb7", "\x13\x88" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      b.len = 0;
      put_client (&b, CRISP_WS_CLOSE, TRUE, bad[i], i == 0 ? 1 : 2);
      g_ptr_array_unref (feed_expect (b.data, b.len, -EPROTO));
    }
}

static void
test_put_close (void)
{
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  g_assert_cmpint (crisp_ws_put_close (&b, CRISP_WS_CLOSE_NORMAL, NULL), ==, 0);
  const guint8 plain[] = { 0x88, 0x02, 0x03, 0xe8 };
  g_assert_cmpmem (b.data, b.len, plain, sizeof plain);
  /* A long reason is cut to fit, not through a UTF-8 sequence: after "xx", two-byte characters
   * occupy bytes 2-3, ..., 122-123, so the one that straddles the 123-byte limit goes whole. */
  GString *reason = g_string_new ("xx");
  for (guint i = 0; i < 62; i++)
    g_string_append (reason, "\xc3\xa9");
  b.len = 0;
  g_assert_cmpint (crisp_ws_put_close (&b, CRISP_WS_CLOSE_TOO_BIG, reason->str), ==, 0);
  g_assert_cmpuint (b.data[1], ==, 2 + 122);
  g_assert_cmpuint (b.len, ==, 2 + 2 + 122);
  g_assert_true (g_utf8_validate ((const char *) b.data + 4, 122, NULL));
  /* A reason of plain ASCII is cut at the limit exactly. */
  g_string_assign (reason, "");
  for (guint i = 0; i < 200; i++)
    g_string_append_c (reason, 'r');
  b.len = 0;
  g_assert_cmpint (crisp_ws_put_close (&b, CRISP_WS_CLOSE_TOO_BIG, reason->str), ==, 0);
  g_assert_cmpuint (b.len, ==, 2 + 125);
  g_string_free (reason, TRUE);
}

static void
test_oversize (void)
{
  /* A head that announces one byte more than the bound, no payload yet: refused at once. */
  const guint8 big[] = { 0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0x01 };
  g_ptr_array_unref (feed_expect (big, sizeof big, -EMSGSIZE));
  /* The same in the 64-bit form with the top bit set. */
  const guint8 huge[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0x01 };
  g_ptr_array_unref (feed_expect (huge, sizeof huge, -EPROTO));
  /* Fragments that add up to more. */
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  g_autofree guint8 *data = g_malloc0 (CRISP_WS_MAX_MESSAGE);
  put_client (&b, CRISP_WS_BINARY, FALSE, data, CRISP_WS_MAX_MESSAGE - 1);
  put_client (&b, CRISP_WS_CONTINUATION, FALSE, data, 1);
  const guint8 one_more[] = { 0x80, 0x81 }; /* head only */
  crisp_buf_append (&b, one_more, sizeof one_more);
  g_ptr_array_unref (feed_expect (b.data, b.len, -EMSGSIZE));
}

static void
test_malformed (void)
{
  const guint8 unmasked[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
  g_ptr_array_unref (feed_expect (unmasked, sizeof unmasked, -EPROTO));
  for (guint rsv = 0x10; rsv <= 0x40; rsv <<= 1)
    {
      const guint8 f[] = { 0x81 | rsv, 0x80, 1, 2, 3, 4 };
      g_ptr_array_unref (feed_expect (f, sizeof f, -EPROTO));
    }
  const guint8 opcodes[] = { 3, 7, 0xb, 0xf };
  for (guint i = 0; i < G_N_ELEMENTS (opcodes); i++)
    {
      const guint8 f[] = { 0x80 | opcodes[i], 0x80, 1, 2, 3, 4 };
      g_ptr_array_unref (feed_expect (f, sizeof f, -EPROTO));
    }
  /* Two bytes of a head are enough to refuse it. */
  const guint8 partial[] = { 0x81, 0x05 };
  g_ptr_array_unref (feed_expect (partial, sizeof partial, -EPROTO));
  const guint8 waits[] = { 0x81, 0x85, 1 };
  g_ptr_array_unref (feed_expect (waits, sizeof waits, 0));
}

static int
refuse (const CrispWsMessage *msg, void *data)
{
  return -ECANCELED;
}

static void
test_callback_error_stops (void)
{
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  put_client (&b, CRISP_WS_TEXT, TRUE, "a", 1);
  g_autoptr (CrispWs) ws = crisp_ws_new ();
  g_assert_cmpint (crisp_ws_feed (ws, b.data, b.len, refuse, NULL), ==, -ECANCELED);
  g_assert_cmpint (crisp_ws_feed (ws, b.data, b.len, refuse, NULL), ==, -EPROTO);
}

/* Decodes the one message a client frame holds. */
static int
decode_one (const CrispBuf *frame, gboolean base64, CrispBuf *scratch, guint8 *channel,
            GBytes **out)
{
  g_autoptr (GPtrArray) seen = feed_expect (frame->data, frame->len, 0);
  g_assert_cmpuint (seen->len, ==, 1);
  Msg *m = seen->pdata[0];
  gsize len;
  CrispWsMessage msg = { .opcode = m->opcode, .data = g_bytes_get_data (m->data, &len) };
  msg.len = len;
  const guint8 *data;
  int r = crisp_ws_channel_decode (base64, &msg, scratch, channel, &data, &len);
  if (r == 0)
    *out = g_bytes_new (data, len);
  return r;
}

static void
test_binary_channels (void)
{
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  g_assert_cmpint (crisp_ws_put_channel (&b, FALSE, 1, "out", 3), ==, 0);
  const guint8 want[] = { 0x82, 0x04, 0x01, 'o', 'u', 't' };
  g_assert_cmpmem (b.data, b.len, want, sizeof want);

  b.len = 0;
  put_client (&b, CRISP_WS_BINARY, TRUE, "\x00stdin", 6);
  g_auto (CrispBuf) scratch = CRISP_BUF_INIT;
  guint8 channel = 99;
  g_autoptr (GBytes) data = NULL;
  g_assert_cmpint (decode_one (&b, FALSE, &scratch, &channel, &data), ==, 0);
  g_assert_cmpuint (channel, ==, 0);
  g_assert_cmpmem (g_bytes_get_data (data, NULL), g_bytes_get_size (data), "stdin", 5);

  /* Wrong opcode for the framing, and an empty message. */
  b.len = 0;
  put_client (&b, CRISP_WS_TEXT, TRUE, "0abc", 4);
  g_assert_cmpint (decode_one (&b, FALSE, &scratch, &channel, &data), ==, -EPROTO);
  b.len = 0;
  put_client (&b, CRISP_WS_BINARY, TRUE, NULL, 0);
  g_assert_cmpint (decode_one (&b, FALSE, &scratch, &channel, &data), ==, -EPROTO);
}

static void
test_v5_close_channel (void)
{
  /* v5.channel.k8s.io: channel 255 carries the channel the peer closes (stdin, 0). */
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  const guint8 stdin_channel = 0;
  g_assert_cmpint (crisp_ws_put_channel (&b, FALSE, CRISP_WS_CHANNEL_CLOSE, &stdin_channel, 1), ==,
                   0);
  const guint8 want[] = { 0x82, 0x02, 0xff, 0x00 };
  g_assert_cmpmem (b.data, b.len, want, sizeof want);
  b.len = 0;
  put_client (&b, CRISP_WS_BINARY, TRUE, "\xff\x00", 2);
  g_auto (CrispBuf) scratch = CRISP_BUF_INIT;
  guint8 channel = 0;
  g_autoptr (GBytes) data = NULL;
  g_assert_cmpint (decode_one (&b, FALSE, &scratch, &channel, &data), ==, 0);
  g_assert_cmpuint (channel, ==, CRISP_WS_CHANNEL_CLOSE);
  g_assert_cmpmem (g_bytes_get_data (data, NULL), g_bytes_get_size (data), "\x00", 1);
}

static void
test_base64_channels (void)
{
  g_auto (CrispBuf) b = CRISP_BUF_INIT;
  g_assert_cmpint (crisp_ws_put_channel (&b, TRUE, 2, "hello", 5), ==, 0);
  const char want[] = "\x81\x09"
                      "2aGVsbG8=";
  g_assert_cmpmem (b.data, b.len, want, sizeof want - 1);
  g_assert_cmpint (crisp_ws_put_channel (&b, TRUE, 10, "x", 1), ==, -EINVAL);
  g_assert_cmpuint (b.len, ==, sizeof want - 1);

  g_auto (CrispBuf) scratch = CRISP_BUF_INIT;
  guint8 channel = 0;
  b.len = 0;
  put_client (&b, CRISP_WS_TEXT, TRUE, "1aGk=", 5);
  g_autoptr (GBytes) hi = NULL;
  g_assert_cmpint (decode_one (&b, TRUE, &scratch, &channel, &hi), ==, 0);
  g_assert_cmpuint (channel, ==, 1);
  g_assert_cmpmem (g_bytes_get_data (hi, NULL), g_bytes_get_size (hi), "hi", 2);

  b.len = 0;
  put_client (&b, CRISP_WS_TEXT, TRUE, "0", 1); /* channel 0, no data */
  g_autoptr (GBytes) none = NULL;
  g_assert_cmpint (decode_one (&b, TRUE, &scratch, &channel, &none), ==, 0);
  g_assert_cmpuint (channel, ==, 0);
  g_assert_cmpuint (g_bytes_get_size (none), ==, 0);

  const char *bad[] = { "a"
                        "aGk=",
                        "1aGk", "1aG!=", "" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      b.len = 0;
      put_client (&b, CRISP_WS_TEXT, TRUE, bad[i], strlen (bad[i]));
      GBytes *unused = NULL;
      g_assert_cmpint (decode_one (&b, TRUE, &scratch, &channel, &unused), ==, -EPROTO);
      g_assert_null (unused);
    }
  b.len = 0;
  put_client (&b, CRISP_WS_BINARY, TRUE, "1aGk=", 5); /* base64 framing is TEXT */
  GBytes *unused = NULL;
  g_assert_cmpint (decode_one (&b, TRUE, &scratch, &channel, &unused), ==, -EPROTO);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ws/sha1", test_sha1_vectors);
  g_test_add_func ("/ws/base64", test_base64);
  g_test_add_func ("/ws/accept-key", test_accept_key);
  g_test_add_func ("/ws/rfc-examples", test_rfc_examples);
  g_test_add_func ("/ws/lengths", test_lengths_round_trip);
  g_test_add_func ("/ws/fragments", test_fragments_and_interleaved_control);
  g_test_add_func ("/ws/fragmentation-rules", test_fragmentation_rules);
  g_test_add_func ("/ws/close", test_close);
  g_test_add_func ("/ws/put-close", test_put_close);
  g_test_add_func ("/ws/oversize", test_oversize);
  g_test_add_func ("/ws/malformed", test_malformed);
  g_test_add_func ("/ws/callback-error", test_callback_error_stops);
  g_test_add_func ("/ws/channels/binary", test_binary_channels);
  g_test_add_func ("/ws/channels/v5-close", test_v5_close_channel);
  g_test_add_func ("/ws/channels/base64", test_base64_channels);
  return g_test_run ();
}
