/* The CRI log writer: record framing, line splitting and log reopen.  Records are gathered
 * into one writev per batch; a line that fits and arrives whole is never copied. */
#include "config.h"

#include "cri-log.h"

#include "crisp-base.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#define IOV_BATCH 64 /* 4 iovecs a record */

typedef struct
{
  struct iovec iov[IOV_BATCH];
  int n;
  char prefix[CRISP_CRI_LOG_TIME_LEN + sizeof " stdout "];
  size_t prefix_len;
} Batch;

int
crisp_cri_log_init (CrispCriLog *log, int fd, size_t max_line)
{
  if (max_line == 0)
    max_line = CRISP_CRI_LOG_MAX_LINE_DEFAULT;
  /* One allocation; pages a short-lined container never touches stay unbacked. */
  char *buf = malloc (2 * max_line);
  if (buf == NULL)
    return -ENOMEM;
  *log = (CrispCriLog){ .fd = fd, .max_line = max_line, .pending = { buf, buf + max_line } };
  return 0;
}

void
crisp_cri_log_destroy (CrispCriLog *log)
{
  free (log->pending[0]);
  log->pending[0] = log->pending[1] = NULL;
  if (log->fd >= 0)
    close (log->fd);
  log->fd = -1;
}

int
crisp_cri_log_reopen (CrispCriLog *log, const char *path)
{
  int fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0640);
  if (fd < 0)
    return -errno;
  if (log->fd >= 0)
    close (log->fd);
  log->fd = fd;
  return 0;
}

static void
put_digits (char *p, unsigned v, int width)
{
  for (int i = width - 1; i >= 0; i--, v /= 10)
    p[i] = (char) ('0' + v % 10);
}

void
crisp_cri_log_format_time (char buf[CRISP_CRI_LOG_TIME_LEN + 1], const struct timespec *t)
{
  /* Civil date from days since the epoch (proleptic Gregorian, 400-year eras); done by hand
   * because gmtime_r may load time zone data and allocate. */
  int64_t secs = t->tv_sec, days = secs / 86400, rem = secs % 86400;
  if (rem < 0)
    rem += 86400, days--;
  int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  int64_t y = yoe + era * 400 + (m <= 2);

  memcpy (buf, "0000-00-00T00:00:00.000000000Z", CRISP_CRI_LOG_TIME_LEN + 1);
  put_digits (buf, (unsigned) y, 4);
  put_digits (buf + 5, (unsigned) m, 2);
  put_digits (buf + 8, (unsigned) d, 2);
  put_digits (buf + 11, (unsigned) (rem / 3600), 2);
  put_digits (buf + 14, (unsigned) (rem / 60 % 60), 2);
  put_digits (buf + 17, (unsigned) (rem % 60), 2);
  put_digits (buf + 20, (unsigned) t->tv_nsec, 9);
}

static void
batch_init (Batch *b, int stream, const struct timespec *now)
{
  crisp_cri_log_format_time (b->prefix, now);
  const char *name = stream == CRISP_CRI_LOG_STDOUT ? " stdout " : " stderr ";
  memcpy (b->prefix + CRISP_CRI_LOG_TIME_LEN, name, 8);
  b->prefix_len = CRISP_CRI_LOG_TIME_LEN + 8;
  b->n = 0;
}

static int
batch_flush (CrispCriLog *log, Batch *b)
{
  struct iovec *iov = b->iov;
  int n = b->n;
  b->n = 0;
  while (n > 0 && log->fd >= 0)
    {
      ssize_t w = writev (log->fd, iov, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -errno;
      /* A short write to a regular file (disk full): resume where it stopped. */
      while (n > 0 && (size_t) w >= iov->iov_len)
        w -= (ssize_t) iov->iov_len, iov++, n--;
      if (n > 0)
        iov->iov_base = (char *) iov->iov_base + w, iov->iov_len -= (size_t) w;
    }
  return 0;
}

static int
batch_add (CrispCriLog *log, Batch *b, bool full, const char *data, size_t len)
{
  int r = 0;
  if (b->n + 4 > IOV_BATCH)
    r = batch_flush (log, b);
  b->iov[b->n++] = (struct iovec){ b->prefix, b->prefix_len };
  b->iov[b->n++] = (struct iovec){ (void *) (full ? "F " : "P "), 2 };
  b->iov[b->n++] = (struct iovec){ (void *) data, len };
  b->iov[b->n++] = (struct iovec){ (void *) "\n", 1 };
  return r;
}

/* Emits the pending buffer as one record and writes it out at once, since the buffer is about
 * to be reused. */
static int
emit_pending (CrispCriLog *log, Batch *b, int stream, bool full)
{
  int r = batch_add (log, b, full, log->pending[stream], log->pending_len[stream]);
  int r2 = batch_flush (log, b);
  log->pending_len[stream] = 0;
  return r < 0 ? r : r2;
}

/* Feeds one segment without newline (then ended by one when eol) through the line buffer. */
static int
write_segment (CrispCriLog *log, Batch *b, int stream, const char *seg, size_t len, bool eol)
{
  size_t max = log->max_line;
  int r = 0;
  for (;;)
    {
      size_t *plen = &log->pending_len[stream];
      if (*plen == 0 && len > max)
        {
          r = batch_add (log, b, false, seg, max); /* more follows: a P record, no copy */
          seg += max, len -= max;
          continue;
        }
      if (*plen == 0 && eol)
        return batch_add (log, b, true, seg, len); /* the common case: a whole line */
      if (len > 0 && *plen == max)
        {
          r = emit_pending (log, b, stream, false);
          continue;
        }
      size_t take = len < max - *plen ? len : max - *plen;
      memcpy (log->pending[stream] + *plen, seg, take);
      *plen += take, seg += take, len -= take;
      if (len == 0)
        return eol ? emit_pending (log, b, stream, true) : r;
    }
}

int
crisp_cri_log_write (CrispCriLog *log, int stream, const char *buf, size_t len,
                     const struct timespec *now)
{
  Batch b;
  batch_init (&b, stream, now);
  int r = 0;
  while (len > 0)
    {
      const char *nl = memchr (buf, '\n', len);
      size_t seg = nl ? (size_t) (nl - buf) : len;
      int r2 = write_segment (log, &b, stream, buf, seg, nl != NULL);
      if (r2 < 0)
        r = r2;
      seg += nl ? 1 : 0;
      buf += seg, len -= seg;
    }
  int r2 = batch_flush (log, &b);
  return r < 0 ? r : r2;
}

int
crisp_cri_log_flush (CrispCriLog *log, int stream, const struct timespec *now)
{
  if (log->pending_len[stream] == 0)
    return 0;
  Batch b;
  batch_init (&b, stream, now);
  return emit_pending (log, &b, stream, false);
}
