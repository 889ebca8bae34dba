/* systemd's notify protocol, without libsystemd: one datagram to $NOTIFY_SOCKET. */
#include "config.h"

#include "notify.h"

#include "crisp-base.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int
crisp_notify (const char *state)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");
  if (path == NULL || *path == '\0')
    return 0;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  size_t len = strlen (path);
  if (len >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
    return -EINVAL;
  memcpy (sa.sun_path, path, len);
  if (path[0] == '@') /* systemd's own socket may be abstract; we only ever send to it */
    sa.sun_path[0] = '\0';
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  socklen_t salen = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + len);
  if (sendto (fd, state, strlen (state), MSG_NOSIGNAL, (struct sockaddr *) &sa, salen) < 0)
    return -errno;
  return 1;
}
