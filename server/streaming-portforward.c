/* Port-forward connections stay in crisp (pkg/streaming/portforward.c serves them; they end
 * with crisp).  What is crisp's here is reaching into the pod: each forwarded connection is
 * made to 127.0.0.1:<port> from a short-lived thread that enters the pod's network namespace,
 * so no thread of the pool ever changes namespace. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crisp-base.h"
#include "pkg/streaming/portforward.h"
#include "streaming.h"

typedef struct
{
  int netns; /* -1: the host's */
  guint16 port;
  int result; /* fd or -errno */
} Dial;

static gpointer
dial_thread (gpointer data)
{
  Dial *d = data;
  if (d->netns >= 0 && setns (d->netns, CLONE_NEWNET) < 0)
    {
      d->result = -errno;
      return NULL;
    }
  _cleanup_close_ int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = { .sin_family = AF_INET,
                              .sin_port = htons (d->port),
                              .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    d->result = -errno;
  else
    d->result = take_fd (&fd);
  return NULL; /* the thread ends here, with whatever namespace it entered */
}

static int
dial (guint16 port, void *data)
{
  Dial d = { *(int *) data, port, -EIO };
  GThread *t = g_thread_try_new ("crisp-dial", dial_thread, &d, NULL);
  if (t == NULL)
    return -EAGAIN;
  g_thread_join (t);
  return d.result;
}

void
crisp_streaming_serve_port_forward (int fd, CrispPortForwardRequest *req, const CrispUpgrade *u,
                                    const char *response, const guint8 *leftover,
                                    gsize leftover_len)
{
  _cleanup_close_ int netns = -1;
  if (req->net_ns != NULL && (netns = open (req->net_ns, O_RDONLY | O_CLOEXEC)) < 0)
    {
      g_autofree char *body = g_strdup_printf ("pod %s: its network namespace %s: %s\n",
                                               req->pod_id, req->net_ns, g_strerror (errno));
      return crisp_streaming_send_status (fd, "503 Service Unavailable", body);
    }
  if (crisp_send_all (fd, response, strlen (response)) < 0)
    return;
  CrispPortForwardSession s = {
    .fd = fd,
    .websocket = u->websocket,
    .base64 = u->base64,
    .ports = u->ports,
    .n_ports = u->n_ports,
    .pod_id = req->pod_id,
    .leftover = leftover,
    .leftover_len = leftover_len,
    .dial = dial,
    .dial_data = &netns,
  };
  crisp_port_forward_serve (&s);
}
