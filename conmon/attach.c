/* The attach socket: SOCK_SEQPACKET clients that receive the container's output as tagged
 * packets and send stdin, resize and close-stdin packets.  Slow clients miss packets rather
 * than slow the container down. */
#include "config.h"

#include "conmon.h"

#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static void
client_drop (Monitor *m, AttachClient *c)
{
  monitor_unwatch_close (m, &c->src);
  if (!c->attached)
    return;
  c->attached = false;
  /* CRI stdin_once: the first attach session to end closes the container's stdin. */
  if (m->opt.stdin_once && !m->attach_detached_once)
    {
      m->attach_detached_once = true;
      stdio_close_stdin (m);
    }
}

static void
handle_packet (Monitor *m, const unsigned char *buf, size_t len)
{
  switch (buf[0])
    {
    case CRISP_MONITOR_STREAM_STDIN:
      stdio_write_stdin (m, (const char *) buf + 1, len - 1);
      break;
    case CRISP_MONITOR_ATTACH_RESIZE:
      if (len >= 5)
        {
          uint16_t rc[2];
          memcpy (rc, buf + 1, sizeof rc);
          stdio_resize (m, rc[0], rc[1]);
        }
      break;
    case CRISP_MONITOR_ATTACH_CLOSE_STDIN:
      /* A client closing its input ends only its own input, unless the container was made
       * with stdin_once: then the first client to finish closes the container's stdin. */
      if (m->opt.stdin_once && !m->attach_detached_once)
        {
          m->attach_detached_once = true;
          stdio_close_stdin (m);
        }
      break;
    default: /* a newer client's packet type: ignored */
      break;
    }
}

static void
on_client (Monitor *m, MonitorSource *src, uint32_t events)
{
  AttachClient *c = &m->attach[src->index];
  /* Input is read into the output buffer's tail half: output is never pending between
   * handlers, so the two cannot collide. */
  unsigned char *buf = (unsigned char *) m->io_buf;
  if (events & EPOLLIN)
    {
      ssize_t n = recv (src->fd, buf, MONITOR_IO_CHUNK, MSG_DONTWAIT);
      if (n > 0)
        return handle_packet (m, buf, (size_t) n);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      return client_drop (m, c);
    }
  if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))
    client_drop (m, c);
}

static uint32_t
client_events (Monitor *m)
{
  return m->in_pending_len > 0 ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP;
}

static void
on_listen (Monitor *m, MonitorSource *src, uint32_t events)
{
  int fd = accept4 (src->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  for (int i = 0; i < MONITOR_ATTACH_MAX; i++)
    if (m->attach[i].src.fd < 0)
      {
        m->attach[i].src.index = i;
        if (monitor_watch (m, &m->attach[i].src, fd, on_client, client_events (m)) < 0)
          break;
        m->attach[i].attached = true;
        return;
      }
  close (fd); /* full: the client sees its connection closed */
}

int
attach_setup (Monitor *m)
{
  for (int i = 0; i < MONITOR_ATTACH_MAX; i++)
    m->attach[i].src.fd = -1;
  int fd = monitor_bind_unix (m, CRISP_MONITOR_SOCKET_ATTACH, SOCK_SEQPACKET, 8);
  if (fd < 0)
    return fd;
  return monitor_watch (m, &m->attach_src, fd, on_listen, EPOLLIN);
}

void
attach_broadcast (Monitor *m, char *tagged, size_t len)
{
  for (int i = 0; i < MONITOR_ATTACH_MAX; i++)
    if (m->attach[i].src.fd >= 0)
      {
        ssize_t n = send (m->attach[i].src.fd, tagged, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
          client_drop (m, &m->attach[i]);
      }
}

void
attach_pause_input (Monitor *m, bool paused)
{
  for (int i = 0; i < MONITOR_ATTACH_MAX; i++)
    if (m->attach[i].src.fd >= 0)
      monitor_rewatch (m, &m->attach[i].src, client_events (m));
}

/* At the container's exit: clients see end of stream; new ones are refused. */
void
attach_close_all (Monitor *m)
{
  for (int i = 0; i < MONITOR_ATTACH_MAX; i++)
    monitor_unwatch_close (m, &m->attach[i].src);
  monitor_unwatch_close (m, &m->attach_src);
}
