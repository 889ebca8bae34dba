/* The container's stdio: pipes or the pty master received on the console socket, output fanned
 * out to the CRI log and the attach clients, stdin fed without ever blocking the loop. */
#include "config.h"

#include "conmon.h"

#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

/* How long a line without its newline waits for the rest before it is logged as P. */
#define PARTIAL_FLUSH_NS (100ull * 1000000u)

static void on_output (Monitor *m, MonitorSource *src, uint32_t events);
static void on_stdin_writable (Monitor *m, MonitorSource *src, uint32_t events);

static void
on_console (Monitor *m, MonitorSource *src, uint32_t events)
{
  stdio_take_console (m, -1);
}

static int
setup_pipes (Monitor *m)
{
  for (int i = 0; i < 2; i++)
    {
      int p[2];
      if (pipe2 (p, O_CLOEXEC) < 0)
        return -errno;
      m->child_fds[i + 1] = p[1];
      m->out[i].index = i;
      crisp_fd_set_nonblock (p[0], true);
      int r = monitor_watch (m, &m->out[i], p[0], on_output, EPOLLIN);
      if (r < 0)
        return r;
    }
  if (!m->opt.stdin_open)
    return 0;
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return -errno;
  m->child_fds[0] = p[0];
  crisp_fd_set_nonblock (p[1], true);
  return monitor_watch (m, &m->in, p[1], on_stdin_writable, 0);
}

int
stdio_setup (Monitor *m)
{
  m->out[0].fd = m->out[1].fd = m->in.fd = m->console_src.fd = -1;
  m->child_fds[0] = m->child_fds[1] = m->child_fds[2] = -1;
  int logfd = -1;
  if (m->opt.log_path)
    {
      logfd = open (m->opt.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
      if (logfd < 0)
        return -errno;
    }
  int r = crisp_cri_log_init (&m->log, logfd, m->opt.log_max_line);
  if (r < 0)
    return r;
  if (!m->opt.terminal)
    return setup_pipes (m);
  /* The runtime dials the console socket as a stream socket (runc and crun alike). */
  int fd = monitor_bind_unix (m, CRISP_MONITOR_SOCKET_CONSOLE, SOCK_STREAM, 1);
  if (fd < 0)
    return fd;
  return monitor_watch (m, &m->console_src, fd, on_console, EPOLLIN);
}

/* Receives the pty master the runtime sends over the console socket. */
static int
recv_master (int listen_fd)
{
  _cleanup_close_ int conn = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0)
    return -errno;
  char name[256];
  int fd;
  ssize_t n = monitor_recv_with_fd (conn, name, sizeof name, &fd);
  if (n < 0)
    return (int) n;
  return fd >= 0 ? fd : -EBADMSG;
}

int
stdio_take_console (Monitor *m, int master)
{
  if (master < 0 && m->console_src.fd >= 0)
    master = recv_master (m->console_src.fd);
  if (master == -EAGAIN)
    return master; /* not here yet: the runtime may still connect */
  monitor_unwatch_close (m, &m->console_src);
  unlinkat (m->state_dirfd, CRISP_MONITOR_SOCKET_CONSOLE, 0);
  if (master < 0)
    {
      monitor_log ("container '%s': no terminal from the runtime: %s", m->opt.id,
                   strerror (-master));
      return master;
    }
  crisp_fd_set_nonblock (master, true);
  m->out[0].index = 0;
  int r = monitor_watch (m, &m->out[0], master, on_output, EPOLLIN);
  if (r < 0 || !m->opt.stdin_open)
    return r;
  /* A second descriptor for the same master, so input and output have their own epoll
   * registrations. */
  int in = fcntl (master, F_DUPFD_CLOEXEC, 3);
  if (in < 0)
    return -errno;
  return monitor_watch (m, &m->in, in, on_stdin_writable, 0);
}

void
stdio_runtime_started (Monitor *m)
{
  for (int i = 0; i < 3; i++)
    if (m->child_fds[i] >= 0)
      {
        close (m->child_fds[i]);
        m->child_fds[i] = -1;
      }
}

static void
output_eof (Monitor *m, MonitorSource *src)
{
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  crisp_cri_log_flush (&m->log, src->index, &now);
  monitor_unwatch_close (m, src);
}

/* Reads one chunk: -1 at end of stream, 0 when nothing is there, else the bytes handled. */
static ssize_t
read_output (Monitor *m, MonitorSource *src)
{
  ssize_t n = read (src->fd, m->io_buf + 1, MONITOR_IO_CHUNK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (n <= 0) /* EOF, or EIO from a master whose terminal is closed */
    {
      output_eof (m, src);
      return -1;
    }
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  int r = crisp_cri_log_write (&m->log, src->index, m->io_buf + 1, (size_t) n, &now);
  if (r < 0)
    monitor_log ("container '%s': writing log: %s", m->opt.id, strerror (-r));
  if (crisp_cri_log_has_pending (&m->log) && m->partial_deadline_ns == 0)
    m->partial_deadline_ns = monitor_now_ns () + PARTIAL_FLUSH_NS;
  m->io_buf[0]
      = (char) (src->index == 0 ? CRISP_MONITOR_STREAM_STDOUT : CRISP_MONITOR_STREAM_STDERR);
  attach_broadcast (m, m->io_buf, (size_t) n + 1);
  return n;
}

static void
on_output (Monitor *m, MonitorSource *src, uint32_t events)
{
  read_output (m, src);
}

bool
stdio_drained (Monitor *m)
{
  return m->out[0].fd < 0 && m->out[1].fd < 0;
}

/* After the container's exit: takes what is already buffered, bounded so that a writer that
 * outlived the container cannot hold the monitor here. */
void
stdio_drain_now (Monitor *m)
{
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 64 && m->out[i].fd >= 0; k++)
      if (read_output (m, &m->out[i]) <= 0)
        break;
}

void
stdio_flush_partial (Monitor *m)
{
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  for (int i = 0; i < 2; i++)
    crisp_cri_log_flush (&m->log, i, &now);
  m->partial_deadline_ns = 0;
}

static void
close_stdin_now (Monitor *m)
{
  if (m->opt.terminal && m->in.fd >= 0)
    {
      /* A terminal has no half-close: the line discipline's end-of-file character is the
       * equivalent, and the master stays open for the output. */
      (void) !write (m->in.fd, "\x04", 1);
    }
  monitor_unwatch_close (m, &m->in);
  m->in_pending_len = 0;
  attach_pause_input (m, false);
}

void
stdio_close_stdin (Monitor *m)
{
  if (m->in_pending_len > 0)
    m->in_close_when_drained = true;
  else
    close_stdin_now (m);
}

/* Writes what it can now; the rest waits in in_pending while the attach clients' input is
 * paused, so a container that does not read its stdin never blocks the monitor. */
void
stdio_write_stdin (Monitor *m, const char *buf, size_t len)
{
  if (m->in.fd < 0 || len == 0)
    return;
  if (m->in_pending_len == 0)
    {
      ssize_t n = write (m->in.fd, buf, len);
      if (n < 0 && errno != EAGAIN && errno != EINTR)
        return close_stdin_now (m);
      n = n < 0 ? 0 : n;
      buf += n, len -= (size_t) n;
      if (len == 0)
        return;
    }
  if (len > sizeof m->in_pending - m->in_pending_len)
    len = sizeof m->in_pending - m->in_pending_len; /* cannot happen while input is paused */
  memcpy (m->in_pending + m->in_pending_len, buf, len);
  m->in_pending_len += len;
  monitor_rewatch (m, &m->in, EPOLLOUT);
  attach_pause_input (m, true);
}

static void
on_stdin_writable (Monitor *m, MonitorSource *src, uint32_t events)
{
  if (events & (EPOLLERR | EPOLLHUP))
    return close_stdin_now (m); /* the container closed its end */
  ssize_t n = write (src->fd, m->in_pending, m->in_pending_len);
  if (n < 0 && errno != EAGAIN && errno != EINTR)
    return close_stdin_now (m);
  if (n > 0)
    {
      memmove (m->in_pending, m->in_pending + n, m->in_pending_len - (size_t) n);
      m->in_pending_len -= (size_t) n;
    }
  if (m->in_pending_len > 0)
    return;
  monitor_rewatch (m, &m->in, 0);
  attach_pause_input (m, false);
  if (m->in_close_when_drained)
    close_stdin_now (m);
}

int
stdio_resize (Monitor *m, unsigned rows, unsigned cols)
{
  if (!m->opt.terminal || m->out[0].fd < 0)
    return -ENOTTY;
  struct winsize ws = { .ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols };
  return ioctl (m->out[0].fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}
