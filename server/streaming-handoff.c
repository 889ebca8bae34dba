/* Exec and attach sessions leave crisp here: the connection, the answer to its upgrade and
 * the bytes already read go to the container's monitor (SESSION, monitor-protocol.h), which
 * serves the session in a child of its own, so the session outlives crisp. */
#include "config.h"

#include <string.h>

#include "crisp-base.h"
#include "monitor-client.h"
#include "streaming.h"

void
crisp_streaming_hand_off (int fd, const CrispUpgrade *u, CrispExecRequest *req,
                          const guint8 *response, gsize response_len, const guint8 *leftover,
                          gsize leftover_len)
{
  guint32 flags = (req->in ? CRISP_MONITOR_SESSION_STDIN : 0)
                  | (req->out ? CRISP_MONITOR_SESSION_STDOUT : 0)
                  | (req->err ? CRISP_MONITOR_SESSION_STDERR : 0)
                  | (req->tty ? CRISP_MONITOR_SESSION_TTY : 0)
                  | (u->base64 ? CRISP_MONITOR_SESSION_BASE64 : 0);
  CrispMonitorSessionRequest r = {
    .kind = req->attach ? CRISP_MONITOR_SESSION_ATTACH : CRISP_MONITOR_SESSION_EXEC,
    .framing = u->websocket ? CRISP_MONITOR_FRAMING_WEBSOCKET : CRISP_MONITOR_FRAMING_SPDY,
    .version = u->version,
    .flags = flags,
    .response_len = (guint32) response_len,
    .leftover_len = (guint32) leftover_len,
  };
  char why[512] = "";
  pid_t pid = 0;
  _cleanup_close_ int ctl = -1;
  int e = crisp_monitor_connect (req->monitor_dir, &ctl);
  if (e == 0)
    e = crisp_monitor_session (ctl, fd, &r, (const char *const *) req->cmd, response, leftover,
                               &pid, why, sizeof why);
  if (e == 0)
    {
      g_debug ("%s session on container %s: served by monitor child %d",
               req->attach ? "attach" : "exec", req->container_id, (int) pid);
      return;
    }
  if (e == -E2BIG)
    return crisp_streaming_send_status (fd, "400 Bad Request",
                                        "the command is too long for a streaming session\n");
  g_autofree char *body
      = g_strdup_printf ("container %s: its monitor cannot serve the %s session: %s\n",
                         req->container_id, req->attach ? "attach" : "exec",
                         *why                                 ? why
                         : e == -ENOENT || e == -ECONNREFUSED ? "the container is not running"
                                                              : g_strerror (-e));
  crisp_streaming_send_status (fd, "503 Service Unavailable", body);
}
