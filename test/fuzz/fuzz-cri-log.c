/* Fuzz target: crisp-conmon's CRI log writer fed a container's output in arbitrary pieces.
 * Byte 0 picks the line limit, bytes 1-8 the clock; then each piece is a header byte (bit 0:
 * the stream, the rest: its length, 0 meaning "flush that stream") and its bytes. Whatever
 * comes in, the file must parse back as records no longer than the limit that, joined per
 * stream, give back exactly the bytes written. */
#include "config.h"

#include "cri-log.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Checks one record's framing and appends its line content to its stream's text. */
static const char *
check_record (const char *p, const char *end, size_t max_line, GString *out[2])
{
  const size_t head = CRISP_CRI_LOG_TIME_LEN + sizeof " stdout F " - 1;
  g_assert ((size_t) (end - p) > head);
  g_assert (p[4] == '-' && p[7] == '-' && p[10] == 'T' && p[13] == ':' && p[16] == ':');
  g_assert (p[19] == '.' && p[29] == 'Z' && p[30] == ' ');
  int stream = memcmp (p + 31, "stdout ", 7) == 0 ? 0 : 1;
  g_assert (stream == 0 || memcmp (p + 31, "stderr ", 7) == 0);
  char tag = p[38];
  g_assert ((tag == 'F' || tag == 'P') && p[39] == ' ');
  const char *content = p + head;
  const char *nl = memchr (content, '\n', (size_t) (end - content));
  g_assert (nl != NULL);
  g_assert ((size_t) (nl - content) <= max_line);
  g_string_append_len (out[stream], content, nl - content);
  if (tag == 'F')
    g_string_append_c (out[stream], '\n');
  return nl + 1;
}

static void
check_file (int fd, size_t max_line, GString *in[2])
{
  off_t len = lseek (fd, 0, SEEK_END);
  g_autofree char *buf = g_malloc ((size_t) len + 1);
  g_assert (pread (fd, buf, (size_t) len, 0) == len);
  g_autoptr (GString) out0 = g_string_new (NULL);
  g_autoptr (GString) out1 = g_string_new (NULL);
  GString *out[2] = { out0, out1 };
  for (const char *p = buf; p < buf + len;)
    p = check_record (p, buf + len, max_line, out);
  for (int s = 0; s < 2; s++)
    g_assert (g_string_equal (in[s], out[s]));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static int fd = -1;
  if (fd < 0)
    fd = memfd_create ("cri-log", MFD_CLOEXEC);
  g_assert (fd >= 0 && ftruncate (fd, 0) == 0 && lseek (fd, 0, SEEK_SET) == 0);
  if (size < 9)
    return 0;
  size_t max_line = 1 + data[0] % 64;
  gint64 secs;
  memcpy (&secs, data + 1, sizeof secs);
  struct timespec now = { .tv_sec = secs % ((gint64) 1 << 40), .tv_nsec = data[1] * 3906250L };
  CrispCriLog log;
  g_assert (crisp_cri_log_init (&log, dup (fd), max_line) == 0);
  g_autoptr (GString) in0 = g_string_new (NULL);
  g_autoptr (GString) in1 = g_string_new (NULL);
  GString *in[2] = { in0, in1 };
  for (size_t i = 9; i < size;)
    {
      int stream = data[i] & 1;
      size_t len = MIN ((size_t) (data[i] >> 1), size - i - 1);
      i++;
      if (data[i - 1] >> 1 == 0)
        g_assert (crisp_cri_log_flush (&log, stream, &now) == 0);
      else
        g_assert (crisp_cri_log_write (&log, stream, (const char *) data + i, len, &now) == 0);
      g_string_append_len (in[stream], (const char *) data + i, (gssize) len);
      i += len;
    }
  for (int s = 0; s < 2; s++)
    g_assert (crisp_cri_log_flush (&log, s, &now) == 0);
  crisp_cri_log_destroy (&log);
  check_file (fd, max_line, in);
  return 0;
}
