/* Fuzz target: arbitrary bytes as a SPDY/3.1 session from a client, fed in two pieces (the
 * split point from the first byte) so frames straddling reads are exercised too. libc only,
 * like the codec. */
#include "config.h"

#include <stdint.h>

#include "pkg/streaming/spdy.h"

static int
on_frame (const CrispSpdyFrame *frame, void *data)
{
  (void) crisp_spdy_header (frame, "streamtype");
  *(size_t *) data += frame->len;
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  size_t split = (size_t) data[0] < size - 1 ? (size_t) data[0] : size - 1;
  CrispSpdy *spdy = crisp_spdy_new ();
  if (spdy == NULL)
    return 0;
  size_t total = 0;
  if (crisp_spdy_feed (spdy, data + 1, split, on_frame, &total) == 0)
    crisp_spdy_feed (spdy, data + 1 + split, size - 1 - split, on_frame, &total);
  crisp_spdy_free (spdy);
  return 0;
}
