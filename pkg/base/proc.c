/* Process identity and random ids: the libc helpers pods and containers share. */
#include "config.h"

#include "crisp-base.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* The start time in a /proc/PID/stat text, or 0 for a zombie or a text that does not parse. */
static unsigned long long
stat_start_time (const char *buf)
{
  /* The command name may hold spaces and parentheses: fields resume after the last ')'. */
  const char *p = strrchr (buf, ')');
  if (p == NULL || p[1] == '\0')
    return 0;
  unsigned long long start = 0;
  char state = 0;
  /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
   * cstime priority nice threads itrealvalue starttime */
  if (sscanf (p + 2,
              "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
              "%*d %llu",
              &state, &start)
      != 2)
    return 0;
  /* A zombie is gone for every caller: its parent (often pid 1) may reap it late. */
  if (state == 'Z' || state == 'X')
    return 0;
  return start;
}

static unsigned long long
start_time_at (int procfd)
{
  _cleanup_free_ char *buf = NULL;
  if (crisp_read_all_at (procfd, "stat", 4096, &buf, NULL) < 0)
    return 0;
  return stat_start_time (buf);
}

/* /proc/PID as a directory fd: it stays bound to the process it was opened for, whose files
 * read through it fail once that process is gone, whoever gets its pid next. */
static int
open_proc_dir (pid_t pid)
{
  char path[32];
  if (pid <= 0)
    return -ESRCH;
  snprintf (path, sizeof path, "/proc/%d", (int) pid);
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd >= 0 ? fd : errno == ENOENT ? -ESRCH : -errno;
}

unsigned long long
crisp_proc_start_time (pid_t pid)
{
  _cleanup_close_ int fd = open_proc_dir (pid);
  return fd < 0 ? 0 : start_time_at (fd);
}

static int
parse_kb (const char *text, uint64_t *out_bytes)
{
  char *end = NULL;
  errno = 0;
  unsigned long long kb = strtoull (text, &end, 10);
  if (errno != 0 || end == text || kb > UINT64_MAX / 1024)
    return -EINVAL;
  *out_bytes = (uint64_t) kb * 1024;
  return 0;
}

/* The value of the "KEY N kB" line of file `name`, in bytes. */
static int
read_kb_at (int procfd, const char *name, const char *key, uint64_t *out_bytes)
{
  _cleanup_free_ char *buf = NULL;
  int r = crisp_read_all_at (procfd, name, 64 * 1024, &buf, NULL);
  if (r < 0)
    return r;
  size_t klen = strlen (key);
  for (const char *line = buf; line != NULL;)
    {
      if (strncmp (line, key, klen) == 0)
        return parse_kb (line + klen, out_bytes);
      line = strchr (line, '\n');
      line = line ? line + 1 : NULL;
    }
  return -ENOENT;
}

int
crisp_proc_rss (pid_t pid, unsigned long long start_time, uint64_t *out_bytes)
{
  _cleanup_close_ int fd = open_proc_dir (pid);
  if (fd < 0)
    return fd;
  unsigned long long now = start_time_at (fd);
  if (now == 0 || (start_time != 0 && now != start_time))
    return -ESRCH;
  uint64_t bytes = 0;
  /* smaps_rollup (Linux 4.14) counts what status rounds per memory kind. */
  int r = read_kb_at (fd, "smaps_rollup", "Rss:", &bytes);
  if (r < 0)
    r = read_kb_at (fd, "status", "VmRSS:", &bytes);
  if (r < 0)
    return start_time_at (fd) == 0 ? -ESRCH : r;
  *out_bytes = bytes;
  return 0;
}

int
crisp_random_hex_id (char out[65])
{
  unsigned char raw[32];
  size_t got = 0;
  while (got < sizeof raw)
    {
      ssize_t n = getrandom (raw + got, sizeof raw - got, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      got += (size_t) n;
    }
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof raw; i++)
    {
      out[2 * i] = hex[raw[i] >> 4];
      out[2 * i + 1] = hex[raw[i] & 15];
    }
  out[64] = '\0';
  return 0;
}
