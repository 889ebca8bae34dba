/* Running a helper program to completion from any thread: its stdin fed, its stdout and
 * stderr collected within a bound, its exit waited for, all in the calling thread (no helper
 * threads, no main loop), so that many can run at once from a pool of workers. */
#include "config.h"

#include "crisp-base.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/wait.h>

void
crisp_spawn_result_clear (CrispSpawnResult *r)
{
  free (r->out);
  free (r->err);
  *r = (CrispSpawnResult){ 0 };
}

typedef struct
{
  int fd;
  char *buf;
  size_t len;
} Sink;

/* Reads what is there; 0 at EOF (fd closed), 1 for more to come, -errno. */
static int
sink_read (Sink *s, size_t max)
{
  char chunk[16384];
  ssize_t n = read (s->fd, chunk, sizeof chunk);
  if (n < 0)
    return errno == EINTR || errno == EAGAIN ? 1 : -errno;
  if (n == 0)
    {
      close (s->fd);
      s->fd = -1;
      return 0;
    }
  if (s->len + (size_t) n > max)
    return -EFBIG;
  char *grown = realloc (s->buf, s->len + (size_t) n + 1);
  if (grown == NULL)
    return -ENOMEM;
  s->buf = grown;
  memcpy (s->buf + s->len, chunk, (size_t) n);
  s->len += (size_t) n;
  s->buf[s->len] = '\0';
  return 1;
}

static int
spawn_piped (const char *path, char *const argv[], char *const envp[], int fds[3], pid_t *out_pid)
{
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
  if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (out, O_CLOEXEC) < 0 || pipe2 (err, O_CLOEXEC) < 0)
    {
      int r = -errno;
      for (int i = 0; i < 2; i++)
        {
          crisp_closep (&in[i]);
          crisp_closep (&out[i]);
          crisp_closep (&err[i]);
        }
      return r;
    }
  /* fork, not posix_spawn: the child must die with the thread that waits for it, so that a
   * crisp killed mid-call leaves no helper still changing things behind its successor. Only
   * async-signal-safe calls between fork and exec. */
  pid_t parent = getpid ();
  pid_t pid = fork ();
  if (pid == 0)
    {
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      struct sigaction dfl = { .sa_handler = SIG_DFL };
      sigaction (SIGPIPE, &dfl, NULL); /* crisp ignores it; its helpers must not */
      if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid () != parent)
        _exit (127);
      if (dup2 (in[0], 0) < 0 || dup2 (out[1], 1) < 0 || dup2 (err[1], 2) < 0)
        _exit (127);
      execve (path, argv, envp);
      _exit (127);
    }
  int r = pid < 0 ? errno : 0;
  *out_pid = pid;
  close (in[0]);
  close (out[1]);
  close (err[1]);
  if (r != 0)
    {
      close (in[1]);
      close (out[0]);
      close (err[0]);
      return -r;
    }
  fds[0] = in[1];
  fds[1] = out[0];
  fds[2] = err[0];
  return 0;
}

/* The poll loop: feeds stdin, drains stdout and stderr, watches cancel_fd. */
static int
communicate (int fds[3], const char *input, size_t input_len, size_t max, int cancel_fd, Sink *out,
             Sink *err)
{
  size_t written = 0;
  if (input_len == 0)
    {
      close (fds[0]);
      fds[0] = -1;
    }
  else
    crisp_fd_set_nonblock (fds[0], true);
  while (out->fd >= 0 || err->fd >= 0)
    {
      struct pollfd p[4] = {
        { .fd = out->fd, .events = POLLIN },
        { .fd = err->fd, .events = POLLIN },
        { .fd = fds[0], .events = POLLOUT },
        { .fd = cancel_fd, .events = POLLIN },
      };
      if (poll (p, 4, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return -errno;
        }
      if (p[3].revents & POLLIN)
        return -ECANCELED;
      if (p[2].revents & (POLLOUT | POLLERR | POLLHUP))
        {
          ssize_t n = write (fds[0], input + written, input_len - written);
          if (n > 0)
            written += (size_t) n;
          if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input_len)
            {
              close (fds[0]);
              fds[0] = -1;
            }
        }
      int r = 1;
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        r = sink_read (out, max);
      if (r >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
        r = sink_read (err, max);
      if (r < 0)
        return r;
    }
  return 0;
}

int
crisp_spawn_communicate (const char *path, char *const argv[], char *const envp[],
                         const char *input, size_t input_len, size_t max_output, int cancel_fd,
                         CrispSpawnResult *result)
{
  int fds[3] = { -1, -1, -1 };
  pid_t pid = 0;
  int r = spawn_piped (path, argv, envp, fds, &pid);
  if (r < 0)
    return r;
  Sink out = { fds[1], NULL, 0 }, err = { fds[2], NULL, 0 };
  r = communicate (fds, input, input_len, max_output, cancel_fd, &out, &err);
  if (r < 0)
    kill (pid, SIGKILL);
  crisp_closep (&fds[0]);
  crisp_closep (&out.fd);
  crisp_closep (&err.fd);
  int status = 0;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      {
        r = r < 0 ? r : -errno;
        break;
      }
  if (r < 0)
    {
      free (out.buf);
      free (err.buf);
      return r;
    }
  *result = (CrispSpawnResult){ out.buf, out.len, err.buf, err.len, status };
  return 0;
}
