/* Process identity and random ids: the libc helpers pods and containers share. */
#include "config.h"

#include "crisp-base.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

unsigned long long
crisp_proc_start_time (pid_t pid)
{
  char path[64], buf[1024];
  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return 0;
  size_t n = fread (buf, 1, sizeof buf - 1, f);
  fclose (f);
  buf[n] = '\0';
  /* The command name may hold spaces and parentheses: fields resume after the last ')'. */
  char *p = strrchr (buf, ')');
  if (p == NULL)
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
