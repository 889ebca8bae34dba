/* Standard base64 with padding. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>

#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
crisp_base64_encode_to (char *dst, const uint8_t *src, size_t len)
{
  for (; len >= 3; len -= 3, src += 3, dst += 4)
    {
      uint32_t v = (uint32_t) src[0] << 16 | (uint32_t) src[1] << 8 | src[2];
      for (int k = 0; k < 4; k++)
        dst[k] = alphabet[(v >> (18 - 6 * k)) & 63];
    }
  if (len == 0)
    return;
  uint32_t v = (uint32_t) src[0] << 16 | (len == 2 ? (uint32_t) src[1] << 8 : 0);
  dst[0] = alphabet[v >> 18];
  dst[1] = alphabet[(v >> 12) & 63];
  dst[2] = len == 2 ? alphabet[(v >> 6) & 63] : '=';
  dst[3] = '=';
}

int
crisp_base64_encode (CrispBuf *out, const uint8_t *src, size_t len)
{
  if (len == 0)
    return 0;
  if (len > SIZE_MAX / 2)
    return -ENOMEM;
  int r = crisp_buf_reserve (out, CRISP_BASE64_LEN (len));
  if (r < 0)
    return r;
  crisp_base64_encode_to ((char *) out->data + out->len, src, len);
  out->len += CRISP_BASE64_LEN (len);
  return 0;
}

static int
value_of (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes one group of four characters into up to three bytes; returns how many, or -EINVAL.
 * Padding is allowed only in the last group. */
static int
decode_group (const char *s, bool last, uint8_t b[3])
{
  int pad = (s[3] == '=') + (s[3] == '=' && s[2] == '=');
  if (pad > 0 && !last)
    return -EINVAL;
  uint32_t v = 0;
  for (int k = 0; k < 4 - pad; k++)
    {
      int x = value_of (s[k]);
      if (x < 0)
        return -EINVAL;
      v |= (uint32_t) x << (18 - 6 * k);
    }
  b[0] = v >> 16;
  b[1] = v >> 8;
  b[2] = v;
  return 3 - pad;
}

int
crisp_base64_decode (CrispBuf *out, const char *src, size_t len)
{
  if (len % 4 != 0)
    return -EINVAL;
  int r = crisp_buf_reserve (out, len / 4 * 3);
  if (r < 0)
    return r;
  size_t n = 0;
  for (size_t i = 0; i < len; i += 4)
    {
      int k = decode_group (src + i, i + 4 == len, out->data + out->len + n);
      if (k < 0)
        return k;
      n += k;
    }
  out->len += n;
  return 0;
}
