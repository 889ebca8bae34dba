/* crisp-pause: PID 1 of a pod's shared PID namespace.  It holds the namespace open, reaps
 * orphans re-parented to it, and exits on SIGTERM or SIGINT.  libc only. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void
on_term (int sig)
{
  (void) sig;
  _exit (0);
}

static void
on_child (int sig)
{
  (void) sig;
  int saved = errno;
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  errno = saved;
}

int
main (void)
{
  struct sigaction term = { .sa_handler = on_term };
  struct sigaction child = { .sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART };
  sigaction (SIGTERM, &term, NULL);
  sigaction (SIGINT, &term, NULL);
  sigaction (SIGCHLD, &child, NULL);
  if (getpid () != 1)
    return 2;
  for (;;)
    pause ();
}
