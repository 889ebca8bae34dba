/* Signal names as images, the CRI and Docker spell them: one table for the whole tree, and the
 * numbers 1..64 with the real-time range named the way Docker and containerd name it. */
#include "config.h"

#include "crisp-base.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RTMIN CRISP_SIGNAL_RTMIN
#define RTMAX CRISP_SIGNAL_MAX

/* Canonical names first: crisp_signal_format gives the first name of a number. */
static const struct
{
  const char *name;
  int number;
} names[] = {
  { "HUP", SIGHUP },
  { "INT", SIGINT },
  { "QUIT", SIGQUIT },
  { "ILL", SIGILL },
  { "TRAP", SIGTRAP },
  { "ABRT", SIGABRT },
  { "BUS", SIGBUS },
  { "FPE", SIGFPE },
  { "KILL", SIGKILL },
  { "USR1", SIGUSR1 },
  { "SEGV", SIGSEGV },
  { "USR2", SIGUSR2 },
  { "PIPE", SIGPIPE },
  { "ALRM", SIGALRM },
  { "TERM", SIGTERM },
  { "STKFLT", SIGSTKFLT },
  { "CHLD", SIGCHLD },
  { "CONT", SIGCONT },
  { "STOP", SIGSTOP },
  { "TSTP", SIGTSTP },
  { "TTIN", SIGTTIN },
  { "TTOU", SIGTTOU },
  { "URG", SIGURG },
  { "XCPU", SIGXCPU },
  { "XFSZ", SIGXFSZ },
  { "VTALRM", SIGVTALRM },
  { "PROF", SIGPROF },
  { "WINCH", SIGWINCH },
  { "IO", SIGIO },
  { "PWR", SIGPWR },
  { "SYS", SIGSYS },
  /* aliases */
  { "IOT", SIGIOT },
  { "CLD", SIGCHLD },
  { "POLL", SIGPOLL },
};

/* A decimal number of 1 or 2 digits, nothing else; -1 otherwise. */
static int
small_number (const char *s)
{
  if (s[0] < '0' || s[0] > '9')
    return -1;
  if (s[1] == '\0')
    return s[0] - '0';
  if (s[1] < '0' || s[1] > '9' || s[2] != '\0')
    return -1;
  return (s[0] - '0') * 10 + (s[1] - '0');
}

/* "RTMIN", "RTMIN+n", "RTMAX", "RTMAX-n" (prefix already stripped); -1 otherwise. */
static int
realtime (const char *s)
{
  int n = 0;
  if (strncasecmp (s, "RTMIN", 5) == 0)
    {
      if (s[5] != '\0' && (s[5] != '+' || (n = small_number (s + 6)) < 0))
        return -1;
      return RTMIN + n <= RTMAX ? RTMIN + n : -1;
    }
  if (strncasecmp (s, "RTMAX", 5) == 0)
    {
      if (s[5] != '\0' && (s[5] != '-' || (n = small_number (s + 6)) < 0))
        return -1;
      return RTMAX - n >= RTMIN ? RTMAX - n : -1;
    }
  return -1;
}

int
crisp_signal_parse (const char *s, int *out_signal)
{
  if (s == NULL)
    return -EINVAL;
  int sig = -1;
  if (s[0] >= '0' && s[0] <= '9')
    {
      /* At most 3 digits, so "0064" is refused rather than overflowing a longer run. */
      size_t len = strspn (s, "0123456789");
      if (s[len] == '\0' && len <= 3)
        sig = atoi (s);
      if (sig < 1 || sig > CRISP_SIGNAL_MAX)
        return -EINVAL;
      *out_signal = sig;
      return 0;
    }
  const char *bare = strncasecmp (s, "SIG", 3) == 0 ? s + 3 : s;
  for (size_t i = 0; i < CRISP_N_ELEMENTS (names) && sig < 0; i++)
    if (strcasecmp (bare, names[i].name) == 0)
      sig = names[i].number;
  if (sig < 0)
    sig = realtime (bare);
  if (sig < 0)
    return -EINVAL;
  *out_signal = sig;
  return 0;
}

int
crisp_signal_format (int sig, char out[CRISP_SIGNAL_NAME_MAX])
{
  if (sig < 1 || sig > CRISP_SIGNAL_MAX)
    return -EINVAL;
  for (size_t i = 0; i < CRISP_N_ELEMENTS (names); i++)
    if (names[i].number == sig)
      return snprintf (out, CRISP_SIGNAL_NAME_MAX, "SIG%s", names[i].name), 0;
  /* Docker's and bash's split: RTMIN+0..15, then RTMAX-14..0. */
  if (sig < RTMIN)
    snprintf (out, CRISP_SIGNAL_NAME_MAX, "%d", sig);
  else if (sig == RTMIN)
    snprintf (out, CRISP_SIGNAL_NAME_MAX, "SIGRTMIN");
  else if (sig == RTMAX)
    snprintf (out, CRISP_SIGNAL_NAME_MAX, "SIGRTMAX");
  else if (sig - RTMIN <= 15)
    snprintf (out, CRISP_SIGNAL_NAME_MAX, "SIGRTMIN+%d", sig - RTMIN);
  else
    snprintf (out, CRISP_SIGNAL_NAME_MAX, "SIGRTMAX-%d", RTMAX - sig);
  return 0;
}
