/* Fuzz target: arbitrary bytes as WebSocket frames from a client (fed in two pieces, the
 * split from the first byte), every message run through both channel decoders. Then an
 * invariant: the input as channel data, encoded by crisp_ws_put_channel (the second byte picks
 * the framing and channel), masked the way a client would send it and fed back, decodes to the
 * same channel and bytes. libc only, like the codec. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkg/streaming/ws.h"

typedef struct
{
  CrispBuf scratch;
  int messages;
  uint8_t channel;
  CrispBuf data; /* of the last message that decoded */
  bool base64;
} Seen;

static int
on_message (const CrispWsMessage *msg, void *user_data)
{
  Seen *s = user_data;
  uint8_t channel;
  const uint8_t *data;
  size_t len;
  s->messages++;
  if (msg->len > 0 && msg->data == NULL)
    abort ();
  if (crisp_ws_channel_decode (s->base64, msg, &s->scratch, &channel, &data, &len) == 0)
    {
      s->channel = channel;
      s->data.len = 0;
      if (crisp_buf_append (&s->data, data, len) < 0)
        return -ENOMEM;
    }
  (void) crisp_ws_channel_decode (!s->base64, msg, &s->scratch, &channel, &data, &len);
  return 0;
}

static int
feed_split (const uint8_t *buf, size_t len, size_t split, Seen *seen)
{
  CrispWs *ws = crisp_ws_new ();
  if (ws == NULL)
    return -ENOMEM;
  split = split < len ? split : len;
  int r = crisp_ws_feed (ws, buf, split, on_message, seen);
  if (r == 0)
    r = crisp_ws_feed (ws, buf + split, len - split, on_message, seen);
  crisp_ws_free (ws);
  return r;
}

static void
check (bool ok, const char *what)
{
  if (!ok)
    {
      fprintf (stderr, "fuzz-ws: invariant broken: %s\n", what);
      abort ();
    }
}

/* The server frame put_channel wrote, sent back as a client would: same opcode, masked.
 * Returns the payload's length. */
static size_t
mask_frame (const CrispBuf *server, const uint8_t mask[4], CrispBuf *client)
{
  check (server->len >= 2 && (server->data[0] & 0xf0) == 0x80 && !(server->data[1] & 0x80),
         "a final, unmasked server frame");
  size_t head = 2;
  uint64_t len = server->data[1];
  if (len >= 126)
    {
      head = len == 126 ? 4 : 10;
      check (server->len >= head, "a whole extended length");
      len = 0;
      for (size_t i = 2; i < head; i++)
        len = len << 8 | server->data[i];
    }
  check (len == server->len - head, "the length field matches the payload");
  check (crisp_ws_put_frame (client, server->data[0] & 0x0f, true, mask, server->data + head,
                             (size_t) len)
             == 0,
         "masking encoder");
  return (size_t) len;
}

static void
round_trip (const uint8_t *data, size_t size, bool base64, uint8_t channel, size_t split)
{
  CrispBuf server = CRISP_BUF_INIT, client = CRISP_BUF_INIT;
  check (crisp_ws_put_channel (&server, base64, channel, data, size) == 0, "put_channel");
  const uint8_t mask[4] = { size > 0 ? data[0] : 1, 0x5a, (uint8_t) size, channel };
  size_t payload = mask_frame (&server, mask, &client);
  Seen seen = { .base64 = base64 };
  int r = feed_split (client.data, client.len, split, &seen);
  if (payload <= CRISP_WS_MAX_MESSAGE) /* larger ones are refused, rightly */
    {
      check (r == 0 && seen.messages == 1, "one message back");
      check (seen.channel == channel, "the same channel");
      check (seen.data.len == size && (size == 0 || memcmp (seen.data.data, data, size) == 0),
             "the same bytes");
    }
  crisp_buf_clear (&seen.scratch);
  crisp_buf_clear (&seen.data);
  crisp_buf_clear (&server);
  crisp_buf_clear (&client);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  size_t split = data[0];
  bool base64 = data[1] & 1;
  uint8_t channel = base64 ? (data[1] >> 1) % 10 : data[1] >> 1 | (data[1] & 0x80);
  Seen seen = { .base64 = base64 };
  (void) feed_split (data + 2, size - 2, split, &seen);
  crisp_buf_clear (&seen.scratch);
  crisp_buf_clear (&seen.data);
  round_trip (data + 2, size - 2, base64, channel, split);
  return 0;
}
