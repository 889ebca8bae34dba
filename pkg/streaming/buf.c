/* CrispBuf: the growable byte buffer the libc codecs append their output to, and the one
 * blocking send that drains such output. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"

int
crisp_buf_reserve (CrispBuf *b, size_t n)
{
  if (n <= b->cap - b->len)
    return 0;
  if (n > SIZE_MAX - b->len)
    return -ENOMEM;
  size_t want = b->len + n;
  size_t cap = b->cap > 0 ? b->cap : 64;
  while (cap < want)
    cap = cap > SIZE_MAX / 2 ? want : cap * 2;
  uint8_t *p = realloc (b->data, cap);
  if (p == NULL)
    return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int
crisp_buf_append (CrispBuf *b, const void *data, size_t n)
{
  if (n == 0)
    return 0;
  int r = crisp_buf_reserve (b, n);
  if (r < 0)
    return r;
  memcpy (b->data + b->len, data, n);
  b->len += n;
  return 0;
}

void
crisp_buf_consume (CrispBuf *b, size_t n)
{
  if (n >= b->len)
    {
      b->len = 0;
      return;
    }
  memmove (b->data, b->data + n, b->len - n);
  b->len -= n;
}

void
crisp_buf_clear (CrispBuf *b)
{
  free (b->data);
  *b = (CrispBuf) CRISP_BUF_INIT;
}

int
crisp_send_all (int fd, const void *data, size_t len)
{
  const uint8_t *p = data;
  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      p += n;
      len -= (size_t) n;
    }
  return 0;
}
