/* Running a helper program to completion from any thread: its stdin fed, its stdout and
 * stderr collected within a bound, its exit waited for, all in the calling thread (no helper
 * threads, no main loop), so that many can run at once from a pool of workers. */
#include "config.h"

#include "crisp-base.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
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

/* What the child of spawn_piped needs. */
typedef struct
{
  const char *path;
  char *const *argv;
  char *const *envp;
  int in, out, err;
  pid_t parent;
} ChildArgs;

/* The child, between its start and exec: it dies with the thread that waits for it, so that
 * a crisp killed mid-call leaves no helper still changing things behind its successor. */
static int
exec_child (void *data)
{
  const ChildArgs *a = data;
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid () != a->parent)
    _exit (127);
  if (dup2 (a->in, 0) < 0 || dup2 (a->out, 1) < 0 || dup2 (a->err, 2) < 0)
    _exit (127);
  /* Everything crisp opens is close-on-exec; this keeps a library's slip out of the helper
   * as well. */
  close_range (3, ~0u, 0);
  sigset_t none;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  execve (a->path, a->argv, a->envp);
  _exit (127);
}

typedef struct
{
  int (*fn) (void *);
  void *data;
} Trampoline;

/* First in a child that shares crisp's memory (not its descriptors or signal handlers): no
 * handler of crisp's may ever run there, so every caught signal goes back to its default
 * (all are blocked until then). crisp ignores SIGPIPE; its children must not. */
static int
trampoline (void *data)
{
  const Trampoline *t = data;
  for (int sig = 1; sig < _NSIG; sig++)
    {
      struct sigaction sa;
      if (sig == SIGKILL || sig == SIGSTOP || sigaction (sig, NULL, &sa) < 0)
        continue;
      /* One call per signal, not two, where nothing is to change: about 1 us each here. */
      if (sa.sa_handler == SIG_DFL || (sa.sa_handler == SIG_IGN && sig != SIGPIPE))
        continue;
      struct sigaction dfl = { .sa_handler = SIG_DFL };
      sigaction (sig, &dfl, NULL);
    }
  return t->fn (t->data);
}

#define CHILD_STACK_SIZE (64 * 1024)

pid_t
crisp_vfork_call (int (*fn) (void *), void *data)
{
  Trampoline t = { fn, data };
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  /* The sanitizers cannot follow a child running on a stack of its own in shared memory
   * (AddressSanitizer reports the stack's old poison): a plain fork there. */
  pid_t pid = fork ();
  if (pid == 0)
    _exit (trampoline (&t));
  return pid;
#else
  void *stack = mmap (NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED)
    return -1;
  sigset_t all, old;
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  pid_t pid = clone (trampoline, (char *) stack + CHILD_STACK_SIZE,
                     CLONE_VM | CLONE_VFORK | SIGCHLD, &t);
  int e = errno;
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  munmap (stack, CHILD_STACK_SIZE);
  errno = e;
  return pid;
#endif
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
  ChildArgs a = { path, argv, envp, in[0], out[1], err[1], getpid () };
  pid_t pid = crisp_vfork_call (exec_child, &a);
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
