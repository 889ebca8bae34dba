/* SHA-1 (FIPS 180-4 section 6.1), written for the WebSocket handshake. */
#include "config.h"

#include <string.h>

#include "sha1.h"

static uint32_t
rol (uint32_t x, int n)
{
  return (x << n) | (x >> (32 - n));
}

static void
compress (uint32_t h[5], const uint8_t p[64])
{
  uint32_t w[80];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 | (uint32_t) p[4 * i + 2] << 8
           | p[4 * i + 3];
  for (int i = 16; i < 80; i++)
    w[i] = rol (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; i++)
    {
      uint32_t f, k;
      if (i < 20)
        f = (b & c) | (~b & d), k = 0x5a827999;
      else if (i < 40)
        f = b ^ c ^ d, k = 0x6ed9eba1;
      else if (i < 60)
        f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
      else
        f = b ^ c ^ d, k = 0xca62c1d6;
      uint32_t t = rol (a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rol (b, 30);
      b = a;
      a = t;
    }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

void
crisp_sha1_init (CrispSha1 *c)
{
  static const uint32_t iv[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
  memcpy (c->h, iv, sizeof iv);
  c->total = 0;
  c->used = 0;
}

void
crisp_sha1_update (CrispSha1 *c, const void *data, size_t len)
{
  const uint8_t *p = data;
  c->total += len;
  while (len > 0)
    {
      size_t n = 64 - c->used < len ? 64 - c->used : len;
      memcpy (c->block + c->used, p, n);
      c->used += n;
      p += n;
      len -= n;
      if (c->used == 64)
        {
          compress (c->h, c->block);
          c->used = 0;
        }
    }
}

void
crisp_sha1_final (CrispSha1 *c, uint8_t out[CRISP_SHA1_LEN])
{
  uint64_t bits = c->total * 8;
  uint8_t pad[72] = { 0x80 };
  /* 0x80, zeros up to 56 mod 64, then the length in bits, big-endian. */
  size_t n = (c->used < 56 ? 56 : 120) - c->used;
  for (int i = 0; i < 8; i++)
    pad[n + i] = bits >> (56 - 8 * i);
  crisp_sha1_update (c, pad, n + 8);
  for (int i = 0; i < 5; i++)
    for (int k = 0; k < 4; k++)
      out[4 * i + k] = c->h[i] >> (24 - 8 * k);
}
